//! Strategic merge patch, with kustomize's (kyaml merge2) semantics:
//!
//! * maps merge recursively; `null` in the patch deletes the field;
//! * a list is associative when the schema names its merge key (the
//!   generated table for built-in kinds, the kustomization's `openapi`
//!   schema for custom ones); matching elements merge, and the result lists
//!   the patch's elements first, then the remaining original ones;
//! * other lists are replaced (lists of custom kinds without a schema
//!   included), except primitive lists whose strategy is `merge` (union);
//! * directives: `$patch: delete|replace|merge` on maps and list elements,
//!   `$setElementOrder/<field>`, `$retainKeys`, `$deleteFromPrimitiveList/<field>`.

use crate::smp_table;
use crate::yaml::{Map, Value};

/// Where list merge keys come from.
#[derive(Clone, Copy)]
pub enum Keys<'a> {
    /// Built-in Kubernetes kinds: the generated table.
    Builtin,
    /// A custom OpenAPI schema, rooted at the definition of the kind.
    Custom(&'a CustomSchema, &'a str),
    /// Kinds without a schema: every list is replaced.
    None,
}

impl Keys<'_> {
    fn lookup(&self, path: &[String]) -> (Option<String>, Option<String>) {
        match self {
            Keys::Builtin => {
                let (k, s) = smp_table::lookup(path);
                (k.map(str::to_string), s.map(str::to_string))
            }
            Keys::Custom(schema, root) => schema.lookup(root, path),
            Keys::None => (None, None),
        }
    }

    /// The fields kyaml matches the elements of the associative list at
    /// `path` on: the list-map keys when a built-in list has several (a
    /// container port is its containerPort and protocol), else the merge
    /// key.
    fn element_keys(&self, path: &[String]) -> Option<Vec<String>> {
        let key = self.lookup(path).0?;
        if let Keys::Builtin = self
            && let Some(ks) = smp_table::map_keys(path)
        {
            return Some(ks.iter().map(|k| k.to_string()).collect());
        }
        Some(vec![key])
    }
}

/// The values of an element's key fields (`""` for a missing one).
fn key_values(e: &Value, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| e.get(k).and_then(Value::scalar_string).unwrap_or_default())
        .collect()
}

/// kyaml's merge rebuilds every associative list of the target it walks
/// (all of them: it walks the whole object, not only the patched fields)
/// with one element per key: two `env` entries named `A` become one, in
/// the first one's place with the last one's content. Elements without any
/// key value are kept as they are. Applied to the target before a
/// strategic merge.
pub(crate) fn collapse_duplicates(obj: &mut Value, keys: Keys<'_>) {
    let mut path = Vec::new();
    collapse(obj, &mut path, keys);
}

fn collapse(v: &mut Value, path: &mut Vec<String>, keys: Keys<'_>) {
    match v {
        Value::Map(m) => {
            for (k, child) in m.0.iter_mut() {
                if matches!(child, Value::Map(_) | Value::Seq(_)) {
                    path.push(k.to_string());
                    collapse(child, path, keys);
                    path.pop();
                }
            }
        }
        Value::Seq(items) => {
            if path.is_empty() || !items.iter().all(|e| matches!(e, Value::Map(_))) {
                return;
            }
            let Some(ks) = keys.element_keys(path) else {
                return;
            };
            let mut seen: std::collections::HashMap<Vec<String>, usize> =
                std::collections::HashMap::new();
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            for e in std::mem::take(items) {
                let kv = key_values(&e, &ks);
                if kv.iter().all(String::is_empty) {
                    out.push(e);
                    continue;
                }
                match seen.get(&kv) {
                    Some(&i) => out[i] = e,
                    None => {
                        seen.insert(kv, out.len());
                        out.push(e);
                    }
                }
            }
            *items = out;
            for e in items.iter_mut() {
                collapse(e, path, keys);
            }
        }
        _ => {}
    }
}

/// API groups of built-in Kubernetes kinds (their merge keys are in
/// `smp_table`).
pub fn is_builtin_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps"
            | "batch"
            | "autoscaling"
            | "policy"
            | "extensions"
            | "networking.k8s.io"
            | "rbac.authorization.k8s.io"
            | "storage.k8s.io"
            | "admissionregistration.k8s.io"
            | "apiextensions.k8s.io"
            | "apiregistration.k8s.io"
            | "scheduling.k8s.io"
            | "coordination.k8s.io"
            | "discovery.k8s.io"
            | "certificates.k8s.io"
            | "node.k8s.io"
            | "events.k8s.io"
            | "flowcontrol.apiserver.k8s.io"
            | "resource.k8s.io"
            | "authentication.k8s.io"
            | "authorization.k8s.io"
            | "internal.apiserver.k8s.io"
            | "storagemigration.k8s.io"
    )
}

/// An OpenAPI v2 schema given with the kustomization's `openapi.path`.
#[derive(Debug, Default)]
pub struct CustomSchema {
    defs: Map,
}

impl CustomSchema {
    pub fn parse(text: &str) -> Result<CustomSchema, String> {
        let v = crate::yaml::parse_one(text).map_err(|e| e.to_string())?;
        let defs = v
            .get("definitions")
            .and_then(Value::as_map)
            .cloned()
            .unwrap_or_default();
        Ok(CustomSchema { defs })
    }

    /// The definition describing `group`/`kind`, if any.
    pub fn root_for(&self, group: &str, kind: &str) -> Option<&str> {
        self.defs.iter().find_map(|(name, d)| {
            let gvks = d.get("x-kubernetes-group-version-kind")?.as_seq()?;
            gvks.iter()
                .any(|g| {
                    g.get_str("kind") == Some(kind) && g.get_str("group").unwrap_or("") == group
                })
                .then_some(name.as_str())
        })
    }

    /// Follows `$ref`s; `None` when one points outside this schema (to a
    /// built-in Kubernetes definition).
    fn resolve<'a>(&'a self, v: &'a Value) -> Option<&'a Value> {
        let mut cur = v;
        for _ in 0..32 {
            match cur.get_str("$ref") {
                Some(r) => cur = self.defs.get(r.trim_start_matches("#/definitions/"))?,
                None => return Some(cur),
            }
        }
        Some(cur)
    }

    fn lookup(&self, root: &str, path: &[String]) -> (Option<String>, Option<String>) {
        // Definitions the custom schema references but does not contain are
        // the built-in ones (kustomize adds custom schemas to its own).
        let builtin = || {
            let (k, s) = smp_table::lookup(path);
            (k.map(str::to_string), s.map(str::to_string))
        };
        let Some(mut cur) = self.defs.get(root) else {
            return (None, None);
        };
        for (i, seg) in path.iter().enumerate() {
            let Some(node) = self.resolve(cur) else {
                return builtin();
            };
            let Some(prop) = node.get("properties").and_then(|p| p.get(seg)) else {
                return (None, None);
            };
            let Some(prop) = self.resolve(prop) else {
                return builtin();
            };
            if i + 1 == path.len() {
                let key = prop
                    .get_str("x-kubernetes-patch-merge-key")
                    .map(str::to_string);
                let strategy = prop
                    .get_str("x-kubernetes-patch-strategy")
                    .map(str::to_string);
                return (key, strategy);
            }
            cur = match prop.get_str("type") {
                Some("array") => match prop.get("items") {
                    Some(items) => items,
                    None => return (None, None),
                },
                _ => prop,
            };
        }
        (None, None)
    }
}

/// Applies `patch` to `dest` with the built-in kinds' merge keys. Returns
/// `None` when the patch deletes the whole object.
#[cfg(test)]
pub fn merge(dest: &Value, patch: &Value) -> Result<Option<Value>, String> {
    merge_with(dest, patch, Keys::Builtin)
}

/// [`merge`] with an explicit source of list merge keys.
pub fn merge_with(dest: &Value, patch: &Value, keys: Keys<'_>) -> Result<Option<Value>, String> {
    let mut path = Vec::new();
    merge_value(Some(dest), patch, &mut path, keys)
}

/// kyaml's merge walks every field of the target, not only the patched
/// ones, and a field with no value at all (`key:`, not an explicit `null`)
/// that the patch does not set does not survive the walk. The walk goes
/// through maps and the elements of lists whose patch strategy is `merge`;
/// other lists are kept as they are. Drops those fields from `obj` (before
/// it is merged) and forgets their paths.
pub(crate) fn drop_empty_nulls(
    obj: &mut Value,
    paths: &mut crate::yaml::EmptyNulls,
    keys: Keys<'_>,
) {
    paths.retain(|p| !drop_empty_null(obj, p, keys));
}

fn drop_empty_null(obj: &mut Value, path: &[crate::yaml::PathSeg], keys: Keys<'_>) -> bool {
    use crate::yaml::PathSeg;
    let Some((PathSeg::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let mut cur = obj;
    let mut fields: Vec<String> = Vec::new();
    for seg in parents {
        cur = match (seg, cur) {
            (PathSeg::Key(k), Value::Map(m)) => {
                fields.push(k.to_string());
                match m.get_mut(k) {
                    Some(v) => v,
                    None => return false,
                }
            }
            (PathSeg::Index(i), Value::Seq(items)) => {
                let (_, strategy) = keys.lookup(&fields);
                if !strategy.is_some_and(|s| s.split(',').any(|x| x == "merge")) {
                    return false;
                }
                match items.get_mut(*i) {
                    Some(v) => v,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match cur {
        Value::Map(m) if m.get(last).is_some_and(Value::is_null) => {
            m.remove(last);
            true
        }
        _ => false,
    }
}

fn directive(m: &Map) -> Option<&str> {
    m.get("$patch").and_then(Value::as_str)
}

fn merge_value(
    dest: Option<&Value>,
    patch: &Value,
    path: &mut Vec<String>,
    keys: Keys<'_>,
) -> Result<Option<Value>, String> {
    match patch {
        Value::Map(pm) => {
            match directive(pm) {
                Some("delete") => return Ok(None),
                Some("replace") => {
                    let mut out = Map::new();
                    for (k, v) in pm.iter() {
                        if k == "$patch" {
                            continue;
                        }
                        if let Some(v) = merge_value(None, v, &mut child(path, k), keys)? {
                            out.insert(k.clone(), v);
                        }
                    }
                    return Ok(Some(Value::Map(out)));
                }
                _ => {}
            }
            let mut out = match dest {
                Some(Value::Map(dm)) => dm.clone(),
                _ => Map::new(),
            };
            let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
            let mut deletes: Vec<(String, Vec<Value>)> = Vec::new();
            let mut retain: Option<Vec<String>> = None;
            for (k, pv) in pm.iter() {
                if k == "$patch" {
                    continue;
                }
                if let Some(f) = k.strip_prefix("$setElementOrder/") {
                    orders.push((f.to_string(), pv.as_seq().cloned().unwrap_or_default()));
                    continue;
                }
                if let Some(f) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    deletes.push((f.to_string(), pv.as_seq().cloned().unwrap_or_default()));
                    continue;
                }
                if k == "$retainKeys" {
                    retain = Some(
                        pv.as_seq()
                            .map(|s| s.iter().filter_map(Value::scalar_string).collect())
                            .unwrap_or_default(),
                    );
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                let mut p = child(path, k);
                let merged = merge_value(out.get(k), pv, &mut p, keys)?;
                match merged {
                    Some(v) => out.insert(k.clone(), v),
                    None => {
                        out.remove(k);
                    }
                }
            }
            for (f, vals) in deletes {
                if let Some(Value::Seq(items)) = out.get_mut(&f) {
                    items.retain(|x| !vals.contains(x));
                }
            }
            for (f, order) in orders {
                let key = keys.lookup(&child(path, &f)).0;
                if let Some(Value::Seq(items)) = out.get_mut(&f) {
                    reorder(items, &order, key.as_deref());
                }
            }
            if let Some(keep) = retain {
                out.0.retain(|(k, _)| keep.iter().any(|x| x == k));
            }
            Ok(Some(Value::Map(out)))
        }
        Value::Seq(pl) => {
            let dl: &[Value] = match dest {
                Some(Value::Seq(d)) => d,
                _ => &[],
            };
            merge_list(dl, pl, path, keys).map(|l| Some(Value::Seq(l)))
        }
        other => Ok(Some(other.clone())),
    }
}

fn child(path: &[String], k: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(k.to_string());
    p
}

fn merge_list(
    dest: &[Value],
    patch: &[Value],
    path: &mut Vec<String>,
    keys: Keys<'_>,
) -> Result<Vec<Value>, String> {
    // `$patch: replace` element: the list becomes the other elements.
    if patch
        .iter()
        .any(|e| e.as_map().and_then(directive) == Some("replace"))
    {
        let mut out = Vec::new();
        for e in patch {
            if e.as_map().and_then(directive) == Some("replace") {
                continue;
            }
            if let Some(v) = merge_value(None, e, path, keys)? {
                out.push(v);
            }
        }
        return Ok(out);
    }
    let all_maps = patch.iter().all(|e| matches!(e, Value::Map(_)))
        && dest.iter().all(|e| matches!(e, Value::Map(_)));
    let key = if all_maps && !(patch.is_empty() && dest.is_empty()) {
        keys.lookup(path).0
    } else {
        None
    };
    if let Some(key) = key {
        if let Some(ks) = keys.element_keys(path).filter(|ks| ks.len() > 1) {
            return merge_multi_key_list(dest, patch, &ks, path, keys);
        }
        // kyaml's order: the patch's elements first (merged with their
        // match), then the remaining elements of the original list.
        let mut rest: Vec<Option<Value>> = dest.iter().cloned().map(Some).collect();
        let mut out: Vec<Value> = Vec::new();
        for pe in patch {
            let Some(pm) = pe.as_map() else { continue };
            let kv = pm.get(&key).cloned();
            let pos = kv.as_ref().and_then(|kv| {
                rest.iter()
                    .position(|d| d.as_ref().and_then(|d| d.get(&key)) == Some(kv))
            });
            let prior = pos.and_then(|i| rest[i].take());
            if directive(pm) == Some("delete") {
                continue;
            }
            if let Some(v) = merge_value(prior.as_ref(), pe, path, keys)? {
                out.push(v);
            }
        }
        out.extend(rest.into_iter().flatten());
        return Ok(out);
    }
    let (_, strategy) = keys.lookup(path);
    if strategy
        .as_deref()
        .is_some_and(|s| s.split(',').any(|x| x == "merge"))
        && patch
            .iter()
            .all(|e| !matches!(e, Value::Map(_) | Value::Seq(_)))
    {
        let mut out = dest.to_vec();
        for e in patch {
            if !out.contains(e) {
                out.push(e.clone());
            }
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for e in patch {
        if let Some(v) = merge_value(None, e, path, keys)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// A list whose elements match on several keys (container ports:
/// containerPort and protocol). kyaml merges a matched element in its
/// place and puts new elements first. A patch element whose key values are
/// distinct from an original element's but compatible with them (port 9443
/// without protocol and 9443/TCP in the list, or the other way round) is
/// completed to the same values, then found nowhere: it is ignored,
/// `$patch: delete` included, and the original element is kept as it is.
fn merge_multi_key_list(
    dest: &[Value],
    patch: &[Value],
    ks: &[String],
    path: &mut Vec<String>,
    keys: Keys<'_>,
) -> Result<Vec<Value>, String> {
    let mut merged: Vec<Option<Value>> = dest.iter().cloned().map(Some).collect();
    let mut out = Vec::new();
    for pe in patch {
        let Some(pm) = pe.as_map() else { continue };
        let pv = key_values(pe, ks);
        let pos = if pv.iter().all(String::is_empty) {
            None
        } else {
            dest.iter().position(|d| key_values(d, ks) == pv)
        };
        match pos {
            Some(i) => {
                let prior = merged[i].take();
                if directive(pm) != Some("delete") {
                    merged[i] = merge_value(prior.as_ref(), pe, path, keys)?;
                }
            }
            None => {
                let ignored = dest.iter().any(|d| completes(&pv, &key_values(d, ks)));
                if ignored || directive(pm) == Some("delete") {
                    continue;
                }
                if let Some(v) = merge_value(None, pe, path, keys)? {
                    out.push(v);
                }
            }
        }
    }
    out.extend(merged.into_iter().flatten());
    Ok(out)
}

/// Whether two elements' key values are distinct but compatible: equal on
/// at least one key, and wherever they differ one of them has no value
/// (9443 and 9443/TCP). kyaml completes each from the other.
fn completes(a: &[String], b: &[String]) -> bool {
    let mut common = false;
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common |= !x.is_empty();
        } else if !x.is_empty() && !y.is_empty() {
            return false;
        }
    }
    common && a != b
}

fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut rest: Vec<Value> = std::mem::take(items);
    let mut out = Vec::new();
    for o in order {
        let oid = ident(o);
        if let Some(i) = rest.iter().position(|x| ident(x) == oid) {
            out.push(rest.remove(i));
        }
    }
    out.extend(rest);
    *items = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse_one, to_yaml};

    fn m(d: &str, p: &str) -> String {
        let r = merge(&parse_one(d).unwrap(), &parse_one(p).unwrap()).unwrap();
        r.map(|v| to_yaml(&v)).unwrap_or_default()
    }

    #[test]
    fn merges_containers_by_name() {
        let out = m(
            "spec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: y\n",
            "spec:\n  containers:\n  - name: b\n    image: z\n  - name: c\n    image: w\n",
        );
        assert_eq!(
            out,
            "spec:
  containers:
  - image: z
    name: b
  - image: w
    name: c
  - image: x
    name: a
"
        );
    }

    #[test]
    fn delete_directives() {
        let out = m(
            "spec:\n  containers:\n  - name: a\n  - name: b\n  x: 1\n  y: {a: 1}\n",
            "spec:\n  containers:\n  - name: a\n    $patch: delete\n  x: null\n  y:\n    $patch: delete\n",
        );
        assert_eq!(out, "spec:\n  containers:\n  - name: b\n");
    }

    #[test]
    fn replace_directive() {
        let out = m("a:\n  b: 1\n  c: 2\n", "a:\n  $patch: replace\n  d: 3\n");
        assert_eq!(out, "a:\n  d: 3\n");
    }
}
