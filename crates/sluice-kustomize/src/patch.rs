//! Patches: strategic merge (`patchesStrategicMerge`, `patches`), JSON 6902
//! (`patchesJson6902`, `patches`), target selectors.

use crate::engine::{Loader, resources_from_text};
use crate::resource::{ResMap, Resource};
use crate::smp::{CustomSchema, Keys};
use crate::yaml::{Map, Value};
use crate::{Error, Result, smp};

/// A patch given inline rather than as a file path.
fn is_inline(s: &str) -> bool {
    s.contains('\n')
        || s.contains(": ")
        || s.trim_start().starts_with('[')
        || s.trim_start().starts_with('{')
}

pub fn load_smp_patches(ldr: &Loader, entries: &[Value]) -> Result<Vec<Resource>> {
    let mut out = Vec::new();
    for e in entries {
        let Some(s) = e.as_str() else {
            // An inline map patch.
            if let Value::Map(_) = e {
                out.push(Resource::new(e.clone()));
            }
            continue;
        };
        let (text, name) = if is_inline(s) {
            (s.to_string(), "inline patch".to_string())
        } else {
            (ldr.read_string(s)?, s.to_string())
        };
        let rs = resources_from_text(&text, &name)
            .map_err(|e| e.context(format!("loading patch {name}")))?;
        if rs.is_empty() {
            return Err(Error::msg(format!(
                "patch appears to be empty; file={name}"
            )));
        }
        out.extend(rs);
    }
    Ok(out)
}

/// Finds the unique resource that has (or had) `patch`'s id.
fn unique_target(rm: &ResMap, patch: &Resource) -> Result<usize> {
    let id = patch.cur_id();
    let matches: Vec<usize> = rm
        .list
        .iter()
        .enumerate()
        .filter(|(_, r)| r.cur_id().equals(&id) || r.prev_ids.iter().any(|p| p.equals(&id)))
        .map(|(i, _)| i)
        .collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => Err(Error::msg(format!(
            "no matches for Id {id}; failed to find unique target for patch {id}"
        ))),
        _ => Err(Error::msg(format!(
            "multiple matches for Id {id}; failed to find unique target for patch {id}"
        ))),
    }
}

/// A strategic merge of `patch` onto `dest` with the built-in kinds' list
/// merge keys (the fuzz targets' entry to the merge). `None`: the patch
/// deletes the object.
pub fn strategic_merge(dest: &Value, patch: &Value) -> Result<Option<Value>, String> {
    smp::merge_with(dest, patch, Keys::Builtin)
}

/// Applies a strategic merge patch to one resource, keeping its name, kind
/// and namespace unless the patch may change them.
pub fn apply_smp(
    r: &mut Resource,
    patch: &Value,
    allow_name: bool,
    allow_kind: bool,
    schema: Option<&CustomSchema>,
) -> Result<()> {
    let name = r.name();
    let ns = r.namespace();
    let kind = r.kind().to_string();
    if allow_name || allow_kind {
        r.store_previous_id();
    }
    let mut p = patch.clone();
    if let Some(m) = p.as_map_mut() {
        m.insert("apiVersion", Value::str(r.api_version()));
    }
    let gvk = r.gvk();
    let root = schema.and_then(|s| s.root_for(&gvk.group, &gvk.kind).map(|root| (s, root)));
    let keys = match root {
        Some((s, root)) => Keys::Custom(s, root),
        None if smp::is_builtin_group(&gvk.group) => Keys::Builtin,
        None => Keys::None,
    };
    smp::drop_empty_nulls(&mut r.obj, &mut r.empty_nulls, keys);
    smp::collapse_duplicates(&mut r.obj, keys);
    let merged = smp::merge_with(&r.obj, &p, keys).map_err(Error::msg)?;
    match merged {
        None => {
            r.obj = Value::Map(Map::new());
            return Ok(());
        }
        Some(v) => r.obj = v,
    }
    if r.is_empty() {
        return Ok(());
    }
    if !allow_kind {
        r.set_kind(&kind);
    }
    if !allow_name {
        r.set_name(&name);
    }
    if ns.is_empty() {
        if let Some(md) = r.obj.get_mut("metadata").and_then(Value::as_map_mut) {
            md.remove("namespace");
        }
    } else {
        r.set_namespace(&ns);
    }
    Ok(())
}

pub fn apply_smp_patches(
    rm: &mut ResMap,
    patches: &[Resource],
    schema: Option<&CustomSchema>,
) -> Result<()> {
    for p in patches {
        let i = unique_target(rm, p)?;
        apply_smp(&mut rm.list[i], &p.obj, false, false, schema)?;
    }
    rm.list.retain(|r| !r.is_empty());
    Ok(())
}

fn load_patch_text(ldr: &Loader, entry: &Value) -> Result<String> {
    let patch = entry
        .get("patch")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    let path = entry.get("path").and_then(Value::as_str).unwrap_or("");
    if patch.is_empty() && path.is_empty() {
        if let Some(v @ (Value::Map(_) | Value::Seq(_))) = entry.get("patch") {
            return Ok(crate::yaml::to_yaml(v));
        }
        return Err(Error::msg("must specify one of patch and path"));
    }
    if !patch.is_empty() && !path.is_empty() {
        return Err(Error::msg("patch and path can't be set at the same time"));
    }
    if !path.is_empty() {
        return ldr.read_string(path);
    }
    Ok(patch.to_string())
}

/// One `patches:` entry.
pub fn apply_patch_entry(
    ldr: &Loader,
    rm: &mut ResMap,
    entry: &Value,
    schema: Option<&CustomSchema>,
) -> Result<()> {
    let text = load_patch_text(ldr, entry)?;
    let docs = crate::yaml::parse_resources(&text).map_err(|e| Error::yaml("patch", e))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let opts = entry.get("options");
    let allow_name = matches!(
        opts.and_then(|o| o.get("allowNameChange")),
        Some(Value::Bool(true))
    );
    let allow_kind = matches!(
        opts.and_then(|o| o.get("allowKindChange")),
        Some(Value::Bool(true))
    );
    let target = entry.get("target");
    if docs.is_empty() {
        // An empty patch (blank, or comments only) is ignored.
        return Ok(());
    }
    if let [Value::Seq(ops)] = docs.as_slice() {
        let Some(target) = target else {
            return Err(Error::msg(format!(
                "must specify a target for JSON patch {text}"
            )));
        };
        let sel = Selector::from_value(target)?;
        let idx = select(rm, &sel)?;
        ldr.charge_patch(text.len().saturating_mul(idx.len()), "patch")?;
        for i in idx {
            let r = &mut rm.list[i];
            r.store_previous_id();
            json6902(&mut r.obj, ops)?;
        }
        return Ok(());
    }
    let mut patches = Vec::new();
    for d in docs {
        let mut out = Vec::new();
        crate::engine::resources_from_text(&crate::yaml::to_yaml(&d), "patch")
            .map(|v| out.extend(v))
            .ok();
        if out.is_empty() {
            patches.push(Resource::new(d));
        } else {
            patches.extend(out);
        }
    }
    match target {
        None => {
            for p in &patches {
                // kustomize's PatchTransformer names the patch (its
                // patchesStrategicMerge does not).
                let i = unique_target(rm, p).map_err(|e| {
                    Error::msg(format!(
                        "no resource matches strategic merge patch \"{}\": {e}",
                        p.org_id()
                    ))
                })?;
                apply_smp(&mut rm.list[i], &p.obj, allow_name, allow_kind, schema)?;
            }
        }
        Some(t) => {
            let sel = Selector::from_value(t)?;
            let idx = select(rm, &sel)?;
            ldr.charge_patch(text.len().saturating_mul(idx.len()), "patch")?;
            for i in idx {
                for p in &patches {
                    let r = &mut rm.list[i];
                    let mut pc = p.obj.clone();
                    if let Some(m) = pc.as_map_mut() {
                        let md = m.entry_map("metadata");
                        if let Some(mm) = md.as_map_mut() {
                            if !allow_name {
                                mm.insert("name", Value::str(r.name()));
                            }
                            let ns = r.namespace();
                            if ns.is_empty() {
                                mm.remove("namespace");
                            } else {
                                mm.insert("namespace", Value::str(ns));
                            }
                        }
                        if !allow_kind {
                            m.insert("kind", Value::str(r.kind()));
                        }
                    }
                    apply_smp(r, &pc, allow_name, allow_kind, schema)?;
                }
            }
        }
    }
    rm.list.retain(|r| !r.is_empty());
    Ok(())
}

/// One `patchesJson6902:` entry.
pub fn apply_json6902_entry(ldr: &Loader, rm: &mut ResMap, entry: &Value) -> Result<()> {
    let text = load_patch_text(ldr, entry)?;
    let ops = crate::yaml::parse_one(&text).map_err(|e| Error::yaml("json patch", e))?;
    let Value::Seq(ops) = ops else {
        return Err(Error::msg(format!(
            "json patch must be a list of operations: {text}"
        )));
    };
    let Some(target) = entry.get("target") else {
        return Err(Error::msg("must specify a target for JSON patch"));
    };
    let sel = Selector::from_value(target)?;
    let idx = select(rm, &sel)?;
    ldr.charge_patch(text.len().saturating_mul(idx.len()), "json patch")?;
    for i in idx {
        let r = &mut rm.list[i];
        r.store_previous_id();
        json6902(&mut r.obj, &ops)?;
    }
    Ok(())
}

/// A patch/replacement target selector.
#[derive(Debug, Default, Clone)]
pub struct Selector {
    pub group: Option<regex::Regex>,
    pub version: Option<regex::Regex>,
    pub kind: Option<regex::Regex>,
    pub name: Option<regex::Regex>,
    pub namespace: Option<regex::Regex>,
    pub label_selector: String,
    pub annotation_selector: String,
}

fn anchored(v: Option<&Value>) -> Result<Option<regex::Regex>> {
    match v.and_then(Value::scalar_string) {
        Some(s) if !s.is_empty() => regex::Regex::new(&format!("^(?:{s})$"))
            .map(Some)
            .map_err(|e| Error::msg(format!("invalid selector regex {s:?}: {e}"))),
        _ => Ok(None),
    }
}

impl Selector {
    pub fn from_value(v: &Value) -> Result<Selector> {
        Ok(Selector {
            group: anchored(v.get("group"))?,
            version: anchored(v.get("version"))?,
            kind: anchored(v.get("kind"))?,
            name: anchored(v.get("name"))?,
            namespace: anchored(v.get("namespace"))?,
            label_selector: v
                .get("labelSelector")
                .and_then(Value::scalar_string)
                .unwrap_or_default(),
            annotation_selector: v
                .get("annotationSelector")
                .and_then(Value::scalar_string)
                .unwrap_or_default(),
        })
    }

    pub fn matches(&self, r: &Resource) -> Result<bool> {
        let cur = r.cur_id();
        let org = r.org_id();
        let m = |re: &Option<regex::Regex>, s: &str| re.as_ref().is_none_or(|re| re.is_match(s));
        if !m(&self.namespace, org.effective_namespace())
            && !m(&self.namespace, cur.effective_namespace())
        {
            return Ok(false);
        }
        if !m(&self.name, &org.name) && !m(&self.name, &cur.name) {
            return Ok(false);
        }
        if !m(&self.group, &cur.gvk.group)
            || !m(&self.version, &cur.gvk.version)
            || !m(&self.kind, &cur.gvk.kind)
        {
            return Ok(false);
        }
        if !self.label_selector.is_empty()
            && !label_selector_matches(&self.label_selector, &r.labels())?
        {
            return Ok(false);
        }
        if !self.annotation_selector.is_empty()
            && !label_selector_matches(&self.annotation_selector, &r.annotations())?
        {
            return Ok(false);
        }
        Ok(true)
    }
}

pub fn select(rm: &ResMap, sel: &Selector) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for (i, r) in rm.list.iter().enumerate() {
        if sel.matches(r)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
/// `a notin (x)`, `a`, `!a`, comma-separated.
pub fn label_selector_matches(sel: &str, labels: &[(String, String)]) -> Result<bool> {
    let get = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.as_str())
    };
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in sel.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let ok = if let Some((k, v)) = p.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = p.split_once("==") {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, v)) = p.split_once('=') {
            get(k.trim()) == Some(v.trim())
        } else if let Some(idx) = p.find(" notin ") {
            let k = p[..idx].trim();
            let set = parse_set(&p[idx + 7..])?;
            get(k).is_none_or(|v| !set.iter().any(|s| s == v))
        } else if let Some(idx) = p.find(" in ") {
            let k = p[..idx].trim();
            let set = parse_set(&p[idx + 4..])?;
            get(k).is_some_and(|v| set.iter().any(|s| s == v))
        } else if let Some(k) = p.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(p).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn parse_set(s: &str) -> Result<Vec<String>> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| Error::msg(format!("invalid label selector set {s:?}")))?;
    Ok(inner
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect())
}

// ---------------------------------------------------------------------------
// JSON patch (RFC 6902)
// ---------------------------------------------------------------------------

fn pointer(p: &str) -> Result<Vec<String>> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| Error::msg(format!("invalid JSON pointer {p:?}")))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// An array index as kustomize's JSON patch library (evanphx/json-patch
/// v4) reads one: Go's `Atoi`, negative indices counting from the end.
fn array_index(key: &str, len: usize) -> Option<usize> {
    let i: i64 = key.parse().ok()?;
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

fn get_ptr<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for s in path {
        cur = match cur {
            Value::Map(m) => m.get(s)?,
            Value::Seq(items) => items.get(array_index(s, items.len())?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_ptr_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match cur {
            Value::Map(m) => m.get_mut(s)?,
            Value::Seq(items) => {
                let i = array_index(s, items.len())?;
                items.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// `replace` as kustomize's JSON patch library does it: a missing last
/// key of an object is added, a missing array index or parent is an error.
fn op_replace(doc: &mut Value, path: &[String], val: Value, p: &str) -> Result<()> {
    let Some((last, parent)) = path.split_last() else {
        if !matches!(val, Value::Map(_) | Value::Seq(_)) {
            return Err(Error::msg(
                "replace operation value must be object or array: %!w(<nil>)",
            ));
        }
        *doc = val;
        return Ok(());
    };
    let parent = match get_ptr_mut(doc, parent) {
        Some(v @ (Value::Map(_) | Value::Seq(_))) => v,
        _ => {
            return Err(Error::msg(format!(
                "replace operation does not apply: doc is missing path: {p}: missing value"
            )));
        }
    };
    match parent {
        Value::Map(m) => m.insert(last.clone(), val),
        Value::Seq(items) => {
            let slot = array_index(last, items.len())
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| {
                    Error::msg(format!(
                        "replace operation does not apply: doc is missing key: {p}: missing value"
                    ))
                })?;
            *slot = val;
        }
        _ => {}
    }
    Ok(())
}

fn op_add(doc: &mut Value, path: &[String], val: Value, p: &str) -> Result<()> {
    let Some((last, parent)) = path.split_last() else {
        *doc = val;
        return Ok(());
    };
    let parent = get_ptr_mut(doc, parent).ok_or_else(|| {
        Error::msg(format!(
            "add operation does not apply: doc is missing path: \"{p}\""
        ))
    })?;
    match parent {
        Value::Map(m) => {
            m.insert(last.clone(), val);
            Ok(())
        }
        Value::Seq(items) => {
            if last == "-" {
                items.push(val);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| Error::msg(format!("invalid array index in {p}")))?;
            if i > items.len() {
                return Err(Error::msg(format!(
                    "add operation does not apply: index out of bounds: \"{p}\""
                )));
            }
            items.insert(i, val);
            Ok(())
        }
        _ => Err(Error::msg(format!("add operation does not apply: \"{p}\""))),
    }
}

fn op_remove(doc: &mut Value, path: &[String], p: &str) -> Result<Value> {
    let Some((last, parent)) = path.split_last() else {
        return Err(Error::msg("cannot remove the root"));
    };
    let missing = || {
        Error::msg(format!(
            "remove operation does not apply: doc is missing path: \"{p}\""
        ))
    };
    let parent = get_ptr_mut(doc, parent).ok_or_else(missing)?;
    match parent {
        Value::Map(m) => m.remove(last).ok_or_else(missing),
        Value::Seq(items) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= items.len() {
                return Err(missing());
            }
            Ok(items.remove(i))
        }
        _ => Err(missing()),
    }
}

/// What the `copy` operations of one JSON patch may copy, in the bytes
/// [`crate::yaml::weight`] estimates (each copy can double a document).
const MAX_JSON_PATCH_COPY: usize = crate::guard::MAX_PATCHED_BYTES as usize;

pub fn json6902(doc: &mut Value, ops: &[Value]) -> Result<()> {
    let mut copied = 0usize;
    for op in ops {
        let kind = op.get_str("op").unwrap_or("");
        let p = op
            .get("path")
            .and_then(Value::scalar_string)
            .unwrap_or_default();
        let path = pointer(&p)?;
        match kind {
            "add" => {
                let v = op.get("value").cloned().unwrap_or(Value::Null);
                op_add(doc, &path, v, &p)?;
            }
            "remove" => {
                op_remove(doc, &path, &p)?;
            }
            "replace" => {
                let v = op.get("value").cloned().unwrap_or(Value::Null);
                op_replace(doc, &path, v, &p)?;
            }
            "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::scalar_string)
                    .unwrap_or_default();
                let v = op_remove(doc, &pointer(&from)?, &from)?;
                op_add(doc, &path, v, &p)?;
            }
            "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::scalar_string)
                    .unwrap_or_default();
                let src = get_ptr(doc, &pointer(&from)?).ok_or_else(|| {
                    Error::msg(format!(
                        "copy operation does not apply: doc is missing from path: {from}"
                    ))
                })?;
                copied = copied.saturating_add(crate::yaml::weight(src));
                if copied > MAX_JSON_PATCH_COPY {
                    return Err(Error::Limit(format!(
                        "json patch: its copy operations copy more than {MAX_JSON_PATCH_COPY} bytes"
                    )));
                }
                let v = src.clone();
                op_add(doc, &path, v, &p)?;
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                if get_ptr(doc, &path) != Some(&want) {
                    return Err(Error::msg(format!("testing value {p} failed")));
                }
            }
            other => {
                return Err(Error::msg(format!(
                    "unexpected kind of JSON patch operation: {other:?}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::json6902;
    use crate::yaml::parse_one;

    fn patched(doc: &str, ops: &str) -> crate::Result<String> {
        let mut d = parse_one(doc).unwrap();
        let ops = parse_one(ops).unwrap();
        json6902(&mut d, ops.as_seq().unwrap())?;
        Ok(crate::yaml::to_yaml(&d))
    }

    // Expectations: kustomize v5.8.1 (evanphx/json-patch v4.13.0).
    #[test]
    fn replace_adds_a_missing_object_key() {
        let out = patched("a:\n  b: 1\n", "[{op: replace, path: /a/c, value: 2}]").unwrap();
        assert_eq!(out, "a:\n  b: 1\n  c: 2\n");
    }

    #[test]
    fn replace_counts_negative_indices_from_the_end() {
        let out = patched("a: [1, 2]\n", "[{op: replace, path: /a/-1, value: 3}]").unwrap();
        assert_eq!(out, "a:\n- 1\n- 3\n");
    }

    #[test]
    fn replace_refuses_missing_parents_and_indices() {
        let e = patched("a: {}\n", "[{op: replace, path: /b/c, value: 1}]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "replace operation does not apply: doc is missing path: /b/c: missing value"
        );
        let e = patched("a: [1]\n", "[{op: replace, path: /a/1, value: 1}]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "replace operation does not apply: doc is missing key: /a/1: missing value"
        );
        let e = patched("a: [1]\n", "[{op: replace, path: \"\", value: s}]").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("replace operation value must be object or array")
        );
    }
}
