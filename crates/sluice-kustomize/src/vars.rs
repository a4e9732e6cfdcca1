//! `vars:` and `$(VAR)` substitution.

use std::collections::HashMap;

use crate::engine::Acc;
use crate::fieldspec::{TransformerConfig, apply, split_path};
use crate::resource::{Gvk, ResId, ResMap};
use crate::yaml::Value;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct Var {
    pub name: String,
    pub gvk: Gvk,
    pub obj_name: String,
    pub namespace: String,
    pub field_path: String,
}

pub fn parse_vars(list: &[Value]) -> Result<Vec<Var>> {
    let mut out = Vec::new();
    for v in list {
        let s = |val: Option<&Value>, k: &str| {
            val.and_then(|x| x.get(k))
                .and_then(Value::scalar_string)
                .unwrap_or_default()
        };
        let objref = v.get("objref");
        let api_version = s(objref, "apiVersion");
        let mut gvk = Gvk::from_api_version(&api_version, &s(objref, "kind"));
        let g = s(objref, "group");
        if !g.is_empty() {
            gvk.group = g;
        }
        let ver = s(objref, "version");
        if !ver.is_empty() {
            gvk.version = ver;
        }
        let mut field_path = s(v.get("fieldref"), "fieldpath");
        if field_path.is_empty() {
            field_path = s(v.get("fieldref"), "fieldPath");
        }
        if field_path.is_empty() {
            field_path = "metadata.name".into();
        }
        out.push(Var {
            name: v
                .get("name")
                .and_then(Value::scalar_string)
                .unwrap_or_default(),
            gvk,
            obj_name: s(objref, "name"),
            namespace: s(objref, "namespace"),
            field_path,
        });
    }
    Ok(out)
}

fn var_matches(v: &Var, id: &ResId) -> bool {
    if !id.gvk.is_selected(&v.gvk) || id.name != v.obj_name {
        return false;
    }
    if !v.namespace.is_empty() || v.gvk.is_cluster_scoped() {
        let want = ResId {
            gvk: id.gvk.clone(),
            name: v.obj_name.clone(),
            namespace: v.namespace.clone(),
        };
        return want.ns_equals(id);
    }
    true
}

/// kustomize's `MergeVars`: records each var on the resource it refers to.
pub fn merge_vars(acc: &mut Acc, vars: Vec<Var>) -> Result<()> {
    for v in &vars {
        let matched: Vec<usize> = acc
            .rm
            .list
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                std::iter::once(r.cur_id())
                    .chain(r.prev_ids.iter().cloned())
                    .any(|id| var_matches(v, &id))
            })
            .map(|(i, _)| i)
            .collect();
        if matched.len() > 1 {
            return Err(Error::msg(format!(
                "found {} resId matches for var {} (unable to disambiguate)",
                matched.len(),
                v.name
            )));
        }
        if let Some(&i) = matched.first() {
            acc.rm.list[i].ref_vars.push(v.name.clone());
        }
    }
    merge_vars_only(acc, vars)
}

pub fn merge_vars_only(acc: &mut Acc, vars: Vec<Var>) -> Result<()> {
    for v in vars {
        if acc.vars.iter().any(|x| x.name == v.name) {
            return Err(Error::msg(format!("var '{}' already encountered", v.name)));
        }
        acc.vars.push(v);
    }
    Ok(())
}

/// Splits a var field path like `spec.containers[0].image` or
/// `spec.ports[name=http].port`.
pub fn split_field_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                if depth == 0 && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
                if depth == 0 {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '.' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn get_field<'a>(obj: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for s in segs {
        if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            let items = cur.as_seq()?;
            if let Some((k, v)) = inner.split_once('=') {
                cur = items
                    .iter()
                    .find(|it| it.get(k).and_then(Value::scalar_string).as_deref() == Some(v))?;
            } else {
                let i: usize = inner.parse().ok()?;
                cur = items.get(i)?;
            }
        } else {
            cur = cur.get(s)?;
        }
    }
    Some(cur)
}

/// `$(VAR)` expansion with kustomize's escaping (`$$`). When the whole
/// input is one reference the mapped value keeps its type.
pub fn expand(input: &str, map: &HashMap<String, Value>) -> Value {
    let b = input.as_bytes();
    let mut buf = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            buf.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let (read, is_var, advance) = match rest.as_bytes()[0] {
                b'$' => ("$".to_string(), false, 1),
                b'(' => match rest[1..].find(')') {
                    Some(end) => (rest[1..1 + end].to_string(), true, end + 2),
                    None => ("$(".to_string(), false, 1),
                },
                _ => {
                    let ch = rest
                        .chars()
                        .next()
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                    (format!("${ch}"), false, ch.len())
                }
            };
            if is_var {
                match map.get(&read) {
                    Some(val) => {
                        if input == format!("$({read})") {
                            return val.clone();
                        }
                        buf.push_str(&val.scalar_string().unwrap_or_default());
                    }
                    None => buf.push_str(&format!("$({read})")),
                }
            } else {
                buf.push_str(&read);
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        buf.push_str(&input[checkpoint..]);
    }
    Value::str(buf)
}

pub fn resolve_vars(rm: &mut ResMap, vars: &[Var], tc: &TransformerConfig) -> Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut map = HashMap::new();
    for v in vars {
        let mut found: Option<Value> = None;
        let mut count = 0;
        for r in &rm.list {
            if r.ref_vars.contains(&v.name) {
                let segs = split_field_path(&v.field_path);
                let val = get_field(&r.obj, &segs).ok_or_else(|| {
                    Error::msg(format!(
                        "field specified in var '{}' not found in corresponding resource",
                        v.name
                    ))
                })?;
                count += 1;
                if count > 1 {
                    return Err(Error::msg(format!(
                        "found {count} resId matches for var {} (unable to disambiguate)",
                        v.name
                    )));
                }
                found = Some(val.clone());
            }
        }
        match found {
            Some(val) => {
                map.insert(v.name.clone(), val);
            }
            None => {
                return Err(Error::msg(format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    v.name
                )));
            }
        }
    }
    let specs: Vec<(Gvk, Vec<String>)> = tc
        .var_reference
        .iter()
        .map(|f| (f.gvk.clone(), split_path(&f.path)))
        .collect();
    for r in rm.list.iter_mut() {
        let gvk = r.gvk();
        for (sel, path) in &specs {
            if !gvk.is_selected(sel) {
                continue;
            }
            apply(&mut r.obj, path, false, &mut |node| {
                match node {
                    Value::Str(s) => {
                        let nv = expand(s, &map);
                        *node = nv;
                    }
                    Value::Seq(items) => {
                        for it in items.iter_mut() {
                            if let Value::Str(s) = it {
                                *it = expand(s, &map);
                            }
                        }
                    }
                    Value::Map(m) => {
                        for (_, it) in m.0.iter_mut() {
                            if let Value::Str(s) = it {
                                *it = expand(s, &map);
                            }
                        }
                    }
                    _ => {}
                }
                Ok(())
            })
            .map_err(Error::msg)?;
        }
    }
    Ok(())
}
