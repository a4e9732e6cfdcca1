//! sprig's lists (`list.go`): every function copies its input; the
//! `must...` forms and the plain ones fail alike (Go's plain forms panic,
//! which text/template reports as the call's error).

use std::borrow::Cow;

use super::go::is_empty;
use super::numeric::to_int64;
use super::{FuncResult, Spec, Value, arg_int, check_items, failed, spec};
use crate::template::FuncError;

pub(super) const FUNCS: &[Spec] = &[
    spec!("list", 0, None, |a| Ok(Value::list(a.to_vec()))),
    spec!("tuple", 0, None, |a| Ok(Value::list(a.to_vec()))),
    spec!("append", 2, Some(2), |a| push(&slices(a))),
    spec!("push", 2, Some(2), |a| push(&slices(a))),
    spec!("mustAppend", 2, Some(2), |a| push(&slices(a))),
    spec!("mustPush", 2, Some(2), |a| push(&slices(a))),
    spec!("prepend", 2, Some(2), |a| prepend(&slices(a))),
    spec!("mustPrepend", 2, Some(2), |a| prepend(&slices(a))),
    spec!("first", 1, Some(1), |a| first(&slices(a))),
    spec!("mustFirst", 1, Some(1), |a| first(&slices(a))),
    spec!("last", 1, Some(1), |a| last(&slices(a))),
    spec!("mustLast", 1, Some(1), |a| last(&slices(a))),
    spec!("rest", 1, Some(1), |a| rest(&slices(a))),
    spec!("mustRest", 1, Some(1), |a| rest(&slices(a))),
    spec!("initial", 1, Some(1), |a| initial(&slices(a))),
    spec!("mustInitial", 1, Some(1), |a| initial(&slices(a))),
    spec!("reverse", 1, Some(1), |a| reverse(&slices(a))),
    spec!("mustReverse", 1, Some(1), |a| reverse(&slices(a))),
    spec!("uniq", 1, Some(1), |a| uniq(&slices(a))),
    spec!("mustUniq", 1, Some(1), |a| uniq(&slices(a))),
    spec!("without", 1, None, |a| without(&slices(a))),
    spec!("mustWithout", 1, None, |a| without(&slices(a))),
    spec!("has", 2, Some(2), |a| has(&slices(a))),
    spec!("mustHas", 2, Some(2), |a| has(&slices(a))),
    spec!("slice", 1, None, |a| slice(&slices(a))),
    spec!("mustSlice", 1, None, |a| slice(&slices(a))),
    spec!("concat", 0, None, |a| concat(&slices(a))),
    spec!("chunk", 2, Some(2), |a| chunk(&slices(a))),
    spec!("mustChunk", 2, Some(2), |a| chunk(&slices(a))),
    spec!("compact", 1, Some(1), |a| compact(&slices(a))),
    spec!("mustCompact", 1, Some(1), |a| compact(&slices(a))),
];

/// The arguments, with each object of a named slice type (Helm's `VersionSet`) as the plain
/// list it is: sprig's list functions take `interface {}` and read it through reflection.
fn slices(a: &[Value]) -> Cow<'_, [Value]> {
    let is_slice = |v: &Value| matches!(v, Value::Object(o) if o.kind() == "slice");
    if !a.iter().any(is_slice) {
        return Cow::Borrowed(a);
    }
    Cow::Owned(
        a.iter()
            .map(|v| match v {
                Value::Object(o) if o.kind() == "slice" => o.to_value().unwrap_or(Value::Nil),
                v => v.clone(),
            })
            .collect(),
    )
}

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

/// The list argument, or sprig's error naming what it could not do.
fn list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], FuncError> {
    match v {
        Value::List(l) => Ok(l.as_slice()),
        Value::Nil => Err(failed(NIL_DEREF)),
        other => Err(failed(format!("{what} {}", other.kind_name()))),
    }
}

fn push(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot push on type")?;
    check_items("append", l.len() as u128 + 1)?;
    let mut out = l.to_vec();
    out.push(a[1].clone());
    Ok(Value::list(out))
}

fn prepend(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot prepend on type")?;
    check_items("prepend", l.len() as u128 + 1)?;
    let mut out = Vec::with_capacity(l.len() + 1);
    out.push(a[1].clone());
    out.extend_from_slice(l);
    Ok(Value::list(out))
}

fn first(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find first on type")?;
    Ok(l.first().cloned().unwrap_or(Value::Nil))
}

fn last(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find last on type")?;
    Ok(l.last().cloned().unwrap_or(Value::Nil))
}

fn rest(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find rest on type")?;
    Ok(Value::list(l.get(1..).unwrap_or(&[]).to_vec()))
}

fn initial(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find initial on type")?;
    Ok(Value::list(l[..l.len().saturating_sub(1)].to_vec()))
}

fn reverse(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find reverse on type")?;
    Ok(Value::list(l.iter().rev().cloned().collect()))
}

fn uniq(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find uniq on type")?;
    let mut out: Vec<Value> = Vec::new();
    for v in l {
        if !out.iter().any(|o| o == v) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn without(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot find without on type")?;
    let omit = &a[1..];
    Ok(Value::list(
        l.iter()
            .filter(|v| !omit.iter().any(|o| o == *v))
            .cloned()
            .collect(),
    ))
}

fn has(a: &[Value]) -> FuncResult {
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        Value::List(l) => Ok(Value::Bool(l.iter().any(|v| &a[0] == v))),
        other => Err(failed(format!(
            "Cannot find has on type {}",
            other.kind_name()
        ))),
    }
}

fn slice(a: &[Value]) -> FuncResult {
    let l = match &a[0] {
        Value::List(l) => l,
        Value::Nil => return Err(failed(NIL_DEREF)),
        other => {
            return Err(failed(format!(
                "list should be type of slice or array but {}",
                other.kind_name()
            )));
        }
    };
    if l.is_empty() {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map(to_int64).unwrap_or(0);
    let end = a.get(2).map(to_int64).unwrap_or(l.len() as i64);
    if start < 0 || end < start || end > l.len() as i64 {
        return Err(failed("reflect.Value.Slice: slice index out of bounds"));
    }
    Ok(Value::list(l[start as usize..end as usize].to_vec()))
}

fn concat(a: &[Value]) -> FuncResult {
    let mut total: u128 = 0;
    for v in a {
        total += list(v, "Cannot concat type")
            .map_err(|e| match v {
                Value::Nil => e,
                other => failed(format!("Cannot concat type {} as list", other.kind_name())),
            })?
            .len() as u128;
    }
    check_items("concat", total)?;
    let mut out = Vec::with_capacity(total as usize);
    for v in a {
        if let Value::List(l) = v {
            out.extend_from_slice(l);
        }
    }
    Ok(Value::list(out))
}

fn chunk(a: &[Value]) -> FuncResult {
    let size = arg_int(a, 0)?;
    let l = list(&a[1], "Cannot chunk type")?;
    if l.is_empty() && size > 0 {
        return Ok(Value::list(Vec::new()));
    }
    if size <= 0 {
        return Err(failed("runtime error: makeslice: len out of range"));
    }
    Ok(Value::list(
        l.chunks(size as usize)
            .map(|c| Value::list(c.to_vec()))
            .collect(),
    ))
}

fn compact(a: &[Value]) -> FuncResult {
    let l = list(&a[0], "Cannot compact on type")?;
    Ok(Value::list(
        l.iter().filter(|v| !is_empty(v)).cloned().collect(),
    ))
}
