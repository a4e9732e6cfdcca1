//! `replacements:` — copy a field from a source resource into targets.

use crate::engine::Loader;
use crate::patch::label_selector_matches;
use crate::resource::{Gvk, ResId, ResMap, Resource};
use crate::yaml::{Map, Value, resolve_plain_v3};
use crate::{Error, Result};

#[derive(Clone, Debug, Default)]
struct IdSel {
    gvk: Gvk,
    name: String,
    namespace: String,
    label_selector: String,
    annotation_selector: String,
}

impl IdSel {
    fn from_value(v: &Value) -> IdSel {
        let s = |k: &str| v.get(k).and_then(Value::scalar_string).unwrap_or_default();
        let mut gvk = Gvk {
            group: s("group"),
            version: s("version"),
            kind: s("kind"),
        };
        let api = s("apiVersion");
        if !api.is_empty() {
            let g = Gvk::from_api_version(&api, "");
            gvk.group = g.group;
            gvk.version = g.version;
        }
        IdSel {
            gvk,
            name: s("name"),
            namespace: s("namespace"),
            label_selector: s("labelSelector"),
            annotation_selector: s("annotationSelector"),
        }
    }
    fn selects_id(&self, id: &ResId) -> bool {
        (self.name.is_empty() || self.name == id.name || regex_match(&self.name, &id.name))
            && (self.namespace.is_empty() || regex_match(&self.namespace, &id.namespace) || {
                let s = ResId {
                    gvk: id.gvk.clone(),
                    name: String::new(),
                    namespace: self.namespace.clone(),
                };
                s.ns_equals(id)
            })
            && field_match(&self.gvk.group, &id.gvk.group)
            && field_match(&self.gvk.version, &id.gvk.version)
            && field_match(&self.gvk.kind, &id.gvk.kind)
    }
    fn selects_meta(&self, r: &Resource) -> Result<bool> {
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

#[derive(Clone, Debug, Default)]
struct Opts {
    delimiter: String,
    index: i64,
    create: bool,
}

fn opts(v: Option<&Value>) -> Opts {
    let Some(v) = v else { return Opts::default() };
    Opts {
        delimiter: v
            .get("delimiter")
            .and_then(Value::scalar_string)
            .unwrap_or_default(),
        index: match v.get("index") {
            Some(Value::Int(i)) => *i,
            _ => 0,
        },
        create: matches!(v.get("create"), Some(Value::Bool(true))),
    }
}

#[derive(Clone, Debug)]
struct Target {
    select: IdSel,
    reject: Vec<IdSel>,
    field_paths: Vec<String>,
    options: Opts,
}

#[derive(Clone, Debug)]
pub struct Replacement {
    source: IdSel,
    source_field: String,
    source_opts: Opts,
    targets: Vec<Target>,
}

fn parse_one(v: &Value) -> Result<Replacement> {
    let src = v
        .get("source")
        .ok_or_else(|| Error::msg("replacement must specify a source"))?;
    let mut targets = Vec::new();
    for t in v
        .get("targets")
        .and_then(Value::as_seq)
        .cloned()
        .unwrap_or_default()
    {
        let select = t
            .get("select")
            .ok_or_else(|| Error::msg("target must specify resources to select"))?;
        let mut field_paths: Vec<String> = t
            .get("fieldPaths")
            .and_then(Value::as_seq)
            .map(|s| s.iter().filter_map(Value::scalar_string).collect())
            .unwrap_or_default();
        if field_paths.is_empty() {
            field_paths.push("metadata.name".into());
        }
        targets.push(Target {
            select: IdSel::from_value(select),
            reject: t
                .get("reject")
                .and_then(Value::as_seq)
                .map(|s| s.iter().map(IdSel::from_value).collect())
                .unwrap_or_default(),
            field_paths,
            options: opts(t.get("options")),
        });
    }
    let mut field = src
        .get("fieldPath")
        .and_then(Value::scalar_string)
        .unwrap_or_default();
    if field.is_empty() {
        field = "metadata.name".into();
    }
    Ok(Replacement {
        source: IdSel::from_value(src),
        source_field: field,
        source_opts: opts(src.get("options")),
        targets,
    })
}

pub fn load(ldr: &Loader, entries: &[Value]) -> Result<Vec<Replacement>> {
    let mut out = Vec::new();
    for e in entries {
        if let Some(p) = e.get("path").and_then(Value::as_str) {
            let text = ldr.read_string(p)?;
            for d in crate::yaml::parse_all(&text).map_err(|er| Error::yaml(p, er))? {
                match d {
                    Value::Seq(items) => {
                        for i in items {
                            out.push(parse_one(&i)?);
                        }
                    }
                    Value::Null => {}
                    other => out.push(parse_one(&other)?),
                }
            }
        } else {
            out.push(parse_one(e)?);
        }
    }
    Ok(out)
}

fn ids(r: &Resource) -> Vec<ResId> {
    let mut v = vec![r.cur_id()];
    v.extend(r.prev_ids.iter().cloned());
    v
}

/// Splits a replacement's field path as kustomize (kyaml's
/// `SmarterPathSplitter`) does: on dots, `\.` escaping one; a bracketed
/// group with dots inside stays whole, keeping its brackets when it is a
/// `[k=v]` matcher and losing them when it names a key
/// (`metadata.annotations.[cert-manager.io/inject-ca-from]`). `a[k=v]`
/// is further split into `a`, `[k=v]`.
pub fn split(p: &str) -> Vec<String> {
    // PathSplitter: a leading dot is dropped, `\.` joins.
    let mut parts: Vec<&str> = p.split('.').collect();
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    let mut split: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        match split.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(part);
            }
            _ => split.push(part.to_string()),
        }
    }
    let mut out = Vec::with_capacity(split.len());
    let mut i = 0;
    while i < split.len() {
        let elem = &split[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut bracketed = vec![elem.as_str()];
            while i + 1 < split.len() {
                i += 1;
                bracketed.push(&split[i]);
                if split[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(".");
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else if let Some(open) = elem.find('[').filter(|&o| o > 0 && elem.ends_with(']')) {
            out.push(elem[..open].to_string());
            out.push(elem[open..].to_string());
        } else {
            out.push(elem.clone());
        }
        i += 1;
    }
    out.retain(|s| !s.is_empty());
    out
}

fn lookup<'a>(v: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for s in segs {
        cur = match (cur, s.strip_prefix('[').and_then(|x| x.strip_suffix(']'))) {
            (Value::Seq(items), Some(inner)) => {
                let (k, want) = inner.split_once('=')?;
                if k.is_empty() {
                    items
                        .iter()
                        .find(|it| it.scalar_string().as_deref() == Some(want))?
                } else {
                    items.iter().find(|it| {
                        it.get(k).and_then(Value::scalar_string).as_deref() == Some(want)
                    })?
                }
            }
            (Value::Seq(items), None) => items.get(s.parse::<usize>().ok()?)?,
            (Value::Map(m), None) => m.get(s)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Visits every node matching `segs` (wildcards `*`, matchers `[k=v]`),
/// creating missing map fields when `create` is set.
fn visit<F: FnMut(&mut Value) -> Result<()>>(
    v: &mut Value,
    segs: &[String],
    create: bool,
    f: &mut F,
) -> Result<()> {
    let Some((s, rest)) = segs.split_first() else {
        return f(v);
    };
    let inner = s.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
    match v {
        Value::Seq(items) => {
            if s == "*" {
                for it in items.iter_mut() {
                    visit(it, rest, create, f)?;
                }
            } else if let Some(inner) = inner {
                let Some((k, want)) = inner.split_once('=') else {
                    return Ok(());
                };
                let mut hit = false;
                for it in items.iter_mut() {
                    let m = if k.is_empty() {
                        it.scalar_string().as_deref() == Some(want)
                    } else {
                        it.get(k).and_then(Value::scalar_string).as_deref() == Some(want)
                    };
                    if m {
                        hit = true;
                        visit(it, rest, create, f)?;
                    }
                }
                if !hit && create && !k.is_empty() {
                    let mut m = Map::new();
                    m.insert(k, Value::str(want));
                    let mut nv = Value::Map(m);
                    visit(&mut nv, rest, create, f)?;
                    items.push(nv);
                }
            } else if let Ok(i) = s.parse::<usize>()
                && let Some(it) = items.get_mut(i)
            {
                visit(it, rest, create, f)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            if s == "*" {
                for (_, it) in m.0.iter_mut() {
                    visit(it, rest, create, f)?;
                }
                return Ok(());
            }
            if let Some(c) = m.get_mut(s) {
                if c.is_null() && create && !rest.is_empty() {
                    *c = if rest[0].starts_with('[') {
                        Value::Seq(Vec::new())
                    } else {
                        Value::Map(Map::new())
                    };
                }
                return visit(c, rest, create, f);
            }
            if create {
                let mut nv = if rest.is_empty() {
                    Value::Null
                } else if rest[0].starts_with('[') {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Map::new())
                };
                visit(&mut nv, rest, create, f)?;
                m.insert(s.clone(), nv);
            }
            Ok(())
        }
        Value::Null if create => {
            *v = Value::Map(Map::new());
            visit(v, segs, create, f)
        }
        _ => Ok(()),
    }
}

fn set_field(o: &Opts, target: &mut Value, value: &Value) -> Result<()> {
    let mut value = value.clone();
    if !o.delimiter.is_empty() {
        let Some(cur) = target
            .scalar_string()
            .filter(|_| !matches!(target, Value::Map(_) | Value::Seq(_)))
        else {
            return Err(Error::msg(
                "delimiter option can only be used with scalar nodes",
            ));
        };
        let mut parts: Vec<String> = cur
            .split(o.delimiter.as_str())
            .map(str::to_string)
            .collect();
        let v = value.scalar_string().unwrap_or_default();
        if o.index < 0 {
            parts.insert(0, v);
        } else if o.index as usize >= parts.len() {
            parts.push(v);
        } else {
            parts[o.index as usize] = v;
        }
        value = Value::str(parts.join(&o.delimiter));
    }
    let is_scalar = |v: &Value| !matches!(v, Value::Map(_) | Value::Seq(_));
    if is_scalar(target) && is_scalar(&value) {
        let s = value.scalar_string().unwrap_or_default();
        *target = match target {
            Value::Str(_) => Value::str(s),
            Value::Null => resolve_plain_v3(s),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => match resolve_plain_v3(s.clone()) {
                v @ (Value::Int(_) | Value::Float(_) | Value::Bool(_)) => v,
                _ => Value::str(s),
            },
            _ => Value::str(s),
        };
    } else {
        *target = value;
    }
    Ok(())
}

pub fn apply(rm: &mut ResMap, reps: &[Replacement]) -> Result<()> {
    for rep in reps {
        let mut matches = Vec::new();
        for (i, r) in rm.list.iter().enumerate() {
            if ids(r).iter().any(|id| rep.source.selects_id(id)) && rep.source.selects_meta(r)? {
                matches.push(i);
            }
        }
        if matches.len() > 1 {
            return Err(Error::msg(format!(
                "multiple matches for selector {}",
                sel_string(&rep.source)
            )));
        }
        let Some(&si) = matches.first() else {
            return Err(Error::msg(format!(
                "nothing selected by {}",
                sel_string(&rep.source)
            )));
        };
        let segs = split(&rep.source_field);
        let src = rm.list[si].obj.clone();
        let mut value = match lookup(&src, &segs) {
            Some(v) if !matches!(v, Value::Null) => v.clone(),
            _ => {
                return Err(Error::msg(format!(
                    "fieldPath `{}` is missing for replacement source {}",
                    rep.source_field,
                    sel_string(&rep.source)
                )));
            }
        };
        if !rep.source_opts.delimiter.is_empty() {
            let s = value.scalar_string().unwrap_or_default();
            let parts: Vec<&str> = s.split(rep.source_opts.delimiter.as_str()).collect();
            let i = rep.source_opts.index;
            if i < 0 || i as usize >= parts.len() {
                return Err(Error::msg(format!(
                    "options.index {i} is out of bounds for value {s}"
                )));
            }
            value = Value::str(parts[i as usize].to_string());
        }
        for t in &rep.targets {
            for r in rm.list.iter_mut() {
                let rids = ids(r);
                if !t.select.selects_meta(r)? {
                    continue;
                }
                if !rids.iter().any(|id| t.select.selects_id(id)) {
                    continue;
                }
                if t.reject.iter().any(|rj| {
                    rids.iter().any(|id| rj.selects_id(id))
                        && rj.selects_meta(r).unwrap_or(false)
                        && !rj_is_empty(rj)
                }) {
                    continue;
                }
                for fp in &t.field_paths {
                    let segs = split(fp);
                    let created_value = value.clone();
                    visit(&mut r.obj, &segs, t.options.create, &mut |node| {
                        if node.is_null() && t.options.create && t.options.delimiter.is_empty() {
                            *node = match &created_value {
                                Value::Str(s) => resolve_plain_v3(s.clone()),
                                other => other.clone(),
                            };
                            return Ok(());
                        }
                        set_field(&t.options, node, &created_value)
                    })?;
                }
            }
        }
    }
    Ok(())
}

fn rj_is_empty(s: &IdSel) -> bool {
    s.name.is_empty()
        && s.namespace.is_empty()
        && s.gvk == Gvk::default()
        && s.label_selector.is_empty()
        && s.annotation_selector.is_empty()
}

fn sel_string(s: &IdSel) -> String {
    let id = ResId {
        gvk: s.gvk.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
    };
    id.to_string()
}

/// Selector fields may be regular expressions (anchored).
fn regex_match(pat: &str, s: &str) -> bool {
    if !pat.chars().any(|c| ".*+?[](){}|^$\\".contains(c)) {
        return false;
    }
    regex::Regex::new(&format!("^(?:{pat})$")).is_ok_and(|re| re.is_match(s))
}

fn field_match(sel: &str, v: &str) -> bool {
    sel.is_empty() || sel == v || regex_match(sel, v)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_field_paths_like_kyaml() {
        assert_eq!(
            split("metadata.annotations.[cert-manager.io/inject-ca-from]"),
            ["metadata", "annotations", "cert-manager.io/inject-ca-from"]
        );
        assert_eq!(
            split("spec.containers.[name=a.b].image"),
            ["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(
            split("spec.containers[name=x].image"),
            ["spec", "containers", "[name=x]", "image"]
        );
        assert_eq!(split("data.a\\.b"), ["data", "a.b"]);
        assert_eq!(split(".spec.replicas"), ["spec", "replicas"]);
    }
}
