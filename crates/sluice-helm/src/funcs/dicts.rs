//! sprig's dictionaries (`dict.go`), with dario.cat/mergo v1.0.1's map
//! merge for `merge`/`mergeOverwrite`.
//!
//! Maps are shared as Go's are: `set`, `unset` and `merge` change the map
//! they are given and return it. `keys` and `values` return the keys'
//! sorted order (Go's map order is random; charts sort with `sortAlpha`).

use std::collections::BTreeMap;

use super::go::{deep_copy, is_empty, strval};
use super::{FuncResult, Spec, Value, arg_map, arg_str, failed, s, spec};
use crate::template::Map;
use crate::template::value::MAX_VALUE_DEPTH;

pub(super) const FUNCS: &[Spec] = &[
    spec!("dict", 0, None, dict),
    spec!("get", 2, Some(2), |a| {
        let (m, k) = (arg_map(a, 0)?, arg_str(a, 1)?);
        Ok(m.get(k).unwrap_or_else(|| s("")))
    }),
    spec!("set", 3, Some(3), |a| {
        let (m, k) = (arg_map(a, 0)?, arg_str(a, 1)?);
        m.insert(k, a[2].clone());
        Ok(Value::Map(m.clone()))
    }),
    spec!("unset", 2, Some(2), |a| {
        let (m, k) = (arg_map(a, 0)?, arg_str(a, 1)?);
        m.remove(k);
        Ok(Value::Map(m.clone()))
    }),
    spec!("hasKey", 2, Some(2), |a| {
        let (m, k) = (arg_map(a, 0)?, arg_str(a, 1)?);
        Ok(Value::Bool(m.contains_key(k)))
    }),
    spec!("pluck", 1, None, |a| {
        let k = arg_str(a, 0)?;
        let mut out = Vec::new();
        for i in 1..a.len() {
            if let Some(v) = arg_map(a, i)?.get(k) {
                out.push(v);
            }
        }
        Ok(Value::list(out))
    }),
    spec!("keys", 0, None, |a| {
        let mut out = Vec::new();
        for i in 0..a.len() {
            out.extend(arg_map(a, i)?.keys().into_iter().map(s));
        }
        Ok(Value::list(out))
    }),
    spec!("values", 1, Some(1), |a| {
        Ok(Value::list(
            arg_map(a, 0)?
                .entries()
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        ))
    }),
    spec!("pick", 1, None, |a| {
        let m = arg_map(a, 0)?;
        let mut out = BTreeMap::new();
        for i in 1..a.len() {
            let k = arg_str(a, i)?;
            if let Some(v) = m.get(k) {
                out.insert(k.to_string(), v);
            }
        }
        Ok(Value::map(out))
    }),
    spec!("omit", 1, None, |a| {
        let m = arg_map(a, 0)?;
        let omit: Vec<&str> = (1..a.len())
            .map(|i| arg_str(a, i))
            .collect::<Result<_, _>>()?;
        Ok(Value::map(
            m.entries()
                .into_iter()
                .filter(|(k, _)| !omit.contains(&k.as_str()))
                .collect(),
        ))
    }),
    spec!("merge", 1, None, |a| merge_all(a, false)),
    spec!("mustMerge", 1, None, |a| merge_all(a, false)),
    spec!("mergeOverwrite", 1, None, |a| merge_all(a, true)),
    spec!("mustMergeOverwrite", 1, None, |a| merge_all(a, true)),
    spec!("deepCopy", 1, Some(1), |a| Ok(deep_copy(&a[0], 0))),
    spec!("mustDeepCopy", 1, Some(1), |a| Ok(deep_copy(&a[0], 0))),
    spec!("dig", 0, None, dig),
];

fn dict(a: &[Value]) -> FuncResult {
    let mut m = BTreeMap::new();
    for pair in a.chunks(2) {
        let k = strval(&pair[0]);
        m.insert(k, pair.get(1).cloned().unwrap_or_else(|| s("")));
    }
    Ok(Value::map(m))
}

fn merge_all(a: &[Value], overwrite: bool) -> FuncResult {
    let dst = arg_map(a, 0)?;
    // Every argument is checked before the destination changes.
    let srcs = (1..a.len())
        .map(|i| arg_map(a, i))
        .collect::<Result<Vec<_>, _>>()?;
    for src in srcs {
        merge_into(dst, src, overwrite, 0);
    }
    Ok(Value::Map(dst.clone()))
}

/// mergo's `deepMerge` for two `map[string]interface{}`: maps merge key by
/// key (in place, as Go's maps are references); otherwise the source value
/// is taken where the destination lacks the key or holds an empty value
/// (`nil`, `""`, `0`, `false`, empty list or map), and always with
/// `overwrite` (a nil source value included).
pub(crate) fn merge_into(dst: &Map, src: &Map, overwrite: bool, depth: usize) {
    if depth > MAX_VALUE_DEPTH || dst.ptr_eq(src) {
        return;
    }
    for (k, sv) in src.entries() {
        if matches!(sv, Value::Nil) {
            if overwrite {
                dst.insert(k, Value::Nil);
            }
            continue;
        }
        let dv = dst.get(&k);
        if let (Value::Map(sm), Some(Value::Map(dm))) = (&sv, &dv) {
            merge_into(dm, sm, overwrite, depth + 1);
            if !dm.is_empty() {
                continue;
            }
        }
        if overwrite || dv.as_ref().is_none_or(is_empty) {
            dst.insert(k, sv);
        }
    }
}

fn dig(a: &[Value]) -> FuncResult {
    if a.len() < 3 {
        return Err(failed("dig needs at least three arguments"));
    }
    // Go's panic for a failed type assertion names a nil interface `nil`.
    let conv = |v: &Value, want: &str| {
        let got = match v {
            Value::Nil => "nil",
            v => v.type_name(),
        };
        failed(format!(
            "interface conversion: interface {{}} is {got}, not {want}"
        ))
    };
    let last = &a[a.len() - 1];
    let Value::Map(first) = last else {
        return Err(conv(last, "map[string]interface {}"));
    };
    let default = &a[a.len() - 2];
    let mut names = Vec::with_capacity(a.len() - 2);
    for k in &a[..a.len() - 2] {
        match k {
            Value::String(k) => names.push(k.as_str()),
            other => return Err(conv(other, "string")),
        }
    }
    let mut m = first.clone();
    for (i, k) in names.iter().enumerate() {
        let Some(step) = m.get(k) else {
            return Ok(default.clone());
        };
        if i + 1 == names.len() {
            return Ok(step);
        }
        match step {
            Value::Map(next) => m = next,
            other => return Err(conv(&other, "map[string]interface {}")),
        }
    }
    Ok(default.clone())
}
