//! Strategic merge patch, with kustomize's (kyaml merge2) semantics:
//!
//! * maps merge recursively; `null` in the patch deletes the field;
//! * lists of maps are associative when their elements carry one of the
//!   associative keys (`mountPath`, `devicePath`, `ip`, `type`,
//!   `topologyKey`, `name`, `containerPort`) or when the schema table names
//!   a merge key; matching elements merge, new ones are appended;
//! * other lists are replaced, except primitive lists whose schema strategy
//!   is `merge` (union);
//! * directives: `$patch: delete|replace|merge` on maps and list elements,
//!   `$setElementOrder/<field>`, `$retainKeys`, `$deleteFromPrimitiveList/<field>`.

use crate::smp_table;
use crate::yaml::{Map, Value};

const ASSOCIATIVE_KEYS: [&str; 7] = [
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "topologyKey",
    "name",
    "containerPort",
];

/// Applies `patch` to `dest`. Returns `None` when the patch deletes the
/// whole object.
pub fn merge(dest: &Value, patch: &Value) -> Result<Option<Value>, String> {
    let mut path = Vec::new();
    merge_value(Some(dest), patch, &mut path)
}

fn directive(m: &Map) -> Option<&str> {
    m.get("$patch").and_then(Value::as_str)
}

fn merge_value(
    dest: Option<&Value>,
    patch: &Value,
    path: &mut Vec<String>,
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
                        if let Some(v) = merge_value(None, v, &mut child(path, k))? {
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
                let merged = merge_value(out.get(k), pv, &mut p)?;
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
                let key = list_key(out.get(&f), None, &child(path, &f));
                if let Some(Value::Seq(items)) = out.get_mut(&f) {
                    reorder(items, &order, key.as_deref());
                }
            }
            if let Some(keep) = retain {
                out.0.retain(|(k, _)| keep.contains(k));
            }
            Ok(Some(Value::Map(out)))
        }
        Value::Seq(pl) => {
            let dl: &[Value] = match dest {
                Some(Value::Seq(d)) => d,
                _ => &[],
            };
            merge_list(dl, pl, path).map(|l| Some(Value::Seq(l)))
        }
        other => Ok(Some(other.clone())),
    }
}

fn child(path: &[String], k: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(k.to_string());
    p
}

fn assoc_key_of(first: Option<&Value>) -> Option<String> {
    let m = first?.as_map()?;
    ASSOCIATIVE_KEYS
        .iter()
        .find(|k| m.contains(k))
        .map(|k| k.to_string())
}

/// The merge key for a list: from the data (kyaml's associative keys),
/// else from the schema table.
fn list_key(dest: Option<&Value>, patch: Option<&[Value]>, path: &[String]) -> Option<String> {
    let from_dest = dest
        .and_then(Value::as_seq)
        .and_then(|s| assoc_key_of(s.first()));
    let from_patch = patch.and_then(|p| assoc_key_of(p.iter().find(|x| !is_directive_only(x))));
    if let Some(k) = from_dest.or(from_patch) {
        return Some(k);
    }
    let (key, _) = smp_table::lookup(path);
    key.map(str::to_string)
}

fn is_directive_only(v: &Value) -> bool {
    match v {
        Value::Map(m) => m.keys().all(|k| k.starts_with('$')),
        _ => false,
    }
}

fn merge_list(
    dest: &[Value],
    patch: &[Value],
    path: &mut Vec<String>,
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
            if let Some(v) = merge_value(None, e, path)? {
                out.push(v);
            }
        }
        return Ok(out);
    }
    let all_maps = patch.iter().all(|e| matches!(e, Value::Map(_)))
        && dest.iter().all(|e| matches!(e, Value::Map(_)));
    let key = if all_maps && !(patch.is_empty() && dest.is_empty()) {
        let dv = Value::Seq(dest.to_vec());
        list_key(Some(&dv), Some(patch), path)
    } else {
        None
    };
    if let Some(key) = key {
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
            if let Some(v) = merge_value(prior.as_ref(), pe, path)? {
                out.push(v);
            }
        }
        out.extend(rest.into_iter().flatten());
        return Ok(out);
    }
    let (_, strategy) = smp_table::lookup(path);
    if strategy == Some("merge")
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
        if let Some(v) = merge_value(None, e, path)? {
            out.push(v);
        }
    }
    Ok(out)
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
