//! Go's builtin template functions (`text/template/funcs.go`): `and`, `or`,
//! `not`, `len`, `index`, `slice`, `print`, `printf`, `println`, `html`,
//! `js`, `urlquery`, `call` and the comparisons, with Go's errors.

use std::sync::Arc;

use super::FuncError;
use super::exec::EV;
use super::gofmt::{sprint, sprintf, sprintln};
use super::quote::is_print;
use super::value::Value;

const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Go's argument count check for the builtin's signature.
pub(crate) fn check_arity(name: &str, n: usize) -> Option<String> {
    let (want, variadic) = match name {
        "and" | "or" | "index" | "slice" | "eq" | "call" | "printf" => (1, true),
        "not" | "len" => (1, false),
        "ne" | "lt" | "le" | "gt" | "ge" => (2, false),
        _ => (0, true),
    };
    if variadic && n < want {
        return Some(format!(
            "wrong number of args for {name}: want at least {want} got {n}"
        ));
    }
    if !variadic && n != want {
        return Some(format!(
            "wrong number of args for {name}: want {want} got {n}"
        ));
    }
    None
}

fn failed(msg: impl Into<String>) -> FuncError {
    FuncError::Failed(msg.into())
}

pub(crate) fn call_builtin(name: &str, args: &[EV]) -> Result<EV, FuncError> {
    let vals = || args.iter().map(EV::to_value).collect::<Vec<_>>();
    let b = |x: bool| Ok(EV::Val(Value::Bool(x)));
    match name {
        "not" => b(!super::exec::truth(&args[0])),
        "len" => length(&args[0]).map(|n| EV::Val(Value::Int(n as i64))),
        "index" => index(&args[0], &args[1..]),
        "slice" => slice(&args[0], &args[1..]),
        "print" => Ok(EV::Val(Value::String(sprint(&vals())))),
        "println" => Ok(EV::Val(Value::String(sprintln(&vals())))),
        "printf" => {
            let v = vals();
            let f = v[0].as_str().unwrap_or_default().to_string();
            Ok(EV::Val(Value::String(sprintf(&f, &v[1..]))))
        }
        "html" => Ok(EV::Val(Value::String(html_escape(&eval_args(args))))),
        "js" => Ok(EV::Val(Value::String(js_escape(&eval_args(args))))),
        "urlquery" => Ok(EV::Val(Value::String(query_escape(&eval_args(args))))),
        "eq" => eq(&args[0], &args[1..]).and_then(b),
        "ne" => eq(&args[0], &args[1..2]).and_then(|x| b(!x)),
        "lt" => lt(&args[0], &args[1]).and_then(b),
        "le" => le(&args[0], &args[1]).and_then(b),
        "gt" => le(&args[0], &args[1]).and_then(|x| b(!x)),
        "ge" => lt(&args[0], &args[1]).and_then(|x| b(!x)),
        _ => Err(failed(format!("unknown builtin {name}"))),
    }
}

/// Go's `call`: templates here hold no function values, so every callee is
/// nil or not a function.
pub(crate) fn call(name: &str, args: &[EV]) -> Result<EV, FuncError> {
    match args.first().and_then(EV::concrete) {
        None => Err(failed("call of nil")),
        Some(v) => Err(failed(format!(
            "non-function {name} of type {}",
            v.type_name()
        ))),
    }
}

fn length(item: &EV) -> Result<usize, FuncError> {
    let v = match item {
        EV::Invalid => return Err(failed("reflect: call of reflect.Value.Type on zero Value")),
        EV::Iface(Value::Nil) | EV::Val(Value::Nil) => return Err(failed("len of nil pointer")),
        EV::Iface(v) | EV::Val(v) => v,
    };
    match v {
        Value::String(s) => Ok(s.len()),
        Value::List(l) => Ok(l.len()),
        Value::Map(m) => Ok(m.len()),
        Value::Bytes(b) => Ok(b.len()),
        Value::Object(o) => o
            .len()
            .ok_or_else(|| failed(format!("len of type {}", o.type_name()))),
        v => Err(failed(format!("len of type {}", v.type_name()))),
    }
}

fn index_arg(index: &EV, cap: usize) -> Result<usize, FuncError> {
    let x: i128 = match index.concrete() {
        Some(Value::Int(i)) => i128::from(*i),
        Some(Value::Uint(u)) => i128::from(*u),
        None => return Err(failed("cannot index slice/array with nil")),
        Some(v) => {
            return Err(failed(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            )));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(failed(format!("index out of range: {x}")));
    }
    Ok(x as usize)
}

fn index(item: &EV, indexes: &[EV]) -> Result<EV, FuncError> {
    let Some(first) = item.concrete() else {
        return Err(failed("index of untyped nil"));
    };
    let mut item = EV::Val(first.clone());
    for ix in indexes {
        let v = match &item {
            EV::Iface(Value::Nil) | EV::Val(Value::Nil) | EV::Invalid => {
                return Err(failed("index of nil pointer"));
            }
            EV::Iface(v) | EV::Val(v) => v.clone(),
        };
        item = match &v {
            Value::List(l) => {
                let x = index_arg(ix, l.len())?;
                match l.get(x) {
                    Some(e) => EV::Iface(e.clone()),
                    None => return Err(failed("reflect: slice index out of range")),
                }
            }
            Value::Bytes(b) => {
                let x = index_arg(ix, b.len())?;
                match b.get(x) {
                    Some(e) => EV::Val(Value::Uint(u64::from(*e))),
                    None => return Err(failed("reflect: slice index out of range")),
                }
            }
            Value::String(s) => {
                let x = index_arg(ix, s.len())?;
                match s.as_bytes().get(x) {
                    Some(e) => EV::Val(Value::Uint(u64::from(*e))),
                    None => return Err(failed("reflect: string index out of range")),
                }
            }
            Value::Map(m) => {
                let key = match ix.concrete() {
                    Some(Value::String(k)) => k.clone(),
                    None => return Err(failed("value is nil; should be of type string")),
                    Some(k) => {
                        return Err(failed(format!(
                            "value has type {}; should be string",
                            k.type_name()
                        )));
                    }
                };
                EV::Iface(m.get(&key).unwrap_or(Value::Nil))
            }
            Value::Object(o) => match (ix.concrete(), o.range_entries()) {
                (Some(k), Some(entries)) => EV::Val(
                    entries
                        .into_iter()
                        .find(|(ek, _)| ek == k)
                        .map_or(Value::Nil, |(_, v)| v),
                ),
                _ => {
                    return Err(failed(format!(
                        "can't index item of type {}",
                        o.type_name()
                    )));
                }
            },
            v => {
                return Err(failed(format!(
                    "can't index item of type {}",
                    v.type_name()
                )));
            }
        };
    }
    Ok(item)
}

fn slice(item: &EV, indexes: &[EV]) -> Result<EV, FuncError> {
    let Some(v) = item.concrete() else {
        return Err(failed("slice of untyped nil"));
    };
    if indexes.len() > 3 {
        return Err(failed(format!("too many slice indexes: {}", indexes.len())));
    }
    let len = match v {
        Value::String(s) => {
            if indexes.len() == 3 {
                return Err(failed("cannot 3-index slice a string"));
            }
            s.len()
        }
        Value::List(l) => l.len(),
        Value::Bytes(b) => b.len(),
        v => {
            return Err(failed(format!(
                "can't slice item of type {}",
                v.type_name()
            )));
        }
    };
    let mut idx = [0, len, 0];
    for (i, ix) in indexes.iter().enumerate() {
        idx[i] = index_arg(ix, len)?;
    }
    if idx[0] > idx[1] {
        return Err(failed(format!(
            "invalid slice index: {} > {}",
            idx[0], idx[1]
        )));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(failed(format!(
            "invalid slice index: {} > {}",
            idx[1], idx[2]
        )));
    }
    let (a, b) = (idx[0], idx[1]);
    Ok(EV::Val(match v {
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[a..b]).into_owned())
        }
        Value::List(l) => Value::list(l[a..b].to_vec()),
        Value::Bytes(x) => Value::Bytes(Arc::from(&x[a..b])),
        _ => Value::Nil,
    }))
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: Option<&Value>) -> Kind {
    match v {
        Some(Value::Bool(_)) => Kind::Bool,
        Some(Value::Int(_)) => Kind::Int,
        Some(Value::Uint(_)) => Kind::Uint,
        Some(Value::Float(_)) => Kind::Float,
        Some(Value::String(_)) => Kind::String,
        _ => Kind::Invalid,
    }
}

fn tname(v: Option<&Value>) -> &str {
    v.map_or("<nil>", Value::type_name)
}

/// Go's reflect kind, for `canCompare`.
fn reflect_kind(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Nil) => "invalid",
        Some(Value::List(_) | Value::Bytes(_)) => "slice",
        Some(Value::Map(_)) => "map",
        Some(Value::Object(o)) => {
            if o.len().is_some() {
                "map"
            } else {
                "struct"
            }
        }
        Some(_) => "basic",
    }
}

fn eq(a1: &EV, rest: &[EV]) -> Result<bool, FuncError> {
    let v1 = a1.concrete();
    if rest.is_empty() {
        return Err(failed("missing argument for comparison"));
    }
    let k1 = basic_kind(v1);
    for a in rest {
        let v2 = a.concrete();
        let k2 = basic_kind(v2);
        let t = if k1 != k2 {
            match (v1, v2) {
                (Some(Value::Int(i)), Some(Value::Uint(u))) => *i >= 0 && *i as u64 == *u,
                (Some(Value::Uint(u)), Some(Value::Int(i))) => *i >= 0 && *u == *i as u64,
                _ => {
                    if v1.is_some() && v2.is_some() {
                        return Err(failed(format!(
                            "incompatible types for comparison: {} and {}",
                            tname(v1),
                            tname(v2)
                        )));
                    }
                    false
                }
            }
        } else {
            match (v1, v2) {
                (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
                (Some(Value::Int(x)), Some(Value::Int(y))) => x == y,
                (Some(Value::Uint(x)), Some(Value::Uint(y))) => x == y,
                (Some(Value::Float(x)), Some(Value::Float(y))) => x == y,
                (Some(Value::String(x)), Some(Value::String(y))) => x == y,
                _ => {
                    let (r1, r2) = (reflect_kind(v1), reflect_kind(v2));
                    if r1 != r2 && r1 != "invalid" && r2 != "invalid" {
                        return Err(failed(format!(
                            "non-comparable types {}: {}, {}: {}",
                            fmt_s(v1),
                            tname(v1),
                            tname(v2),
                            v2.map_or("<invalid reflect.Value>".to_string(), Value::go_string)
                        )));
                    }
                    match (v1, v2) {
                        (None, None) => true,
                        (None, _) | (_, None) => false,
                        (Some(Value::Object(x)), Some(Value::Object(y))) if r1 == "struct" => {
                            Arc::ptr_eq(x, y)
                        }
                        (_, Some(y)) => {
                            return Err(failed(format!(
                                "non-comparable type {}: {}",
                                fmt_s(Some(y)),
                                y.type_name()
                            )));
                        }
                    }
                }
            }
        };
        if t {
            return Ok(true);
        }
    }
    Ok(false)
}

fn fmt_s(v: Option<&Value>) -> String {
    match v {
        None => "<invalid reflect.Value>".into(),
        Some(v) => sprintf("%s", std::slice::from_ref(v)),
    }
}

fn lt(a1: &EV, a2: &EV) -> Result<bool, FuncError> {
    let (v1, v2) = (a1.concrete(), a2.concrete());
    let (k1, k2) = (basic_kind(v1), basic_kind(v2));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err(failed("invalid type for comparison"));
    }
    if k1 != k2 {
        return match (v1, v2) {
            (Some(Value::Int(i)), Some(Value::Uint(u))) => Ok(*i < 0 || (*i as u64) < *u),
            (Some(Value::Uint(u)), Some(Value::Int(i))) => Ok(*i >= 0 && *u < *i as u64),
            _ => Err(failed(format!(
                "incompatible types for comparison: {} and {}",
                tname(v1),
                tname(v2)
            ))),
        };
    }
    match (v1, v2) {
        (Some(Value::Float(x)), Some(Value::Float(y))) => Ok(x < y),
        (Some(Value::Int(x)), Some(Value::Int(y))) => Ok(x < y),
        (Some(Value::Uint(x)), Some(Value::Uint(y))) => Ok(x < y),
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x < y),
        _ => Err(failed("invalid type for comparison")),
    }
}

fn le(a1: &EV, a2: &EV) -> Result<bool, FuncError> {
    if lt(a1, a2)? {
        return Ok(true);
    }
    eq(a1, std::slice::from_ref(a2))
}

/// Go's `evalArgs`: one string as is, else `fmt.Sprint` with no value
/// printed as `<no value>`.
fn eval_args(args: &[EV]) -> String {
    if let [EV::Iface(Value::String(s)) | EV::Val(Value::String(s))] = args {
        return s.clone();
    }
    let vals: Vec<Value> = args
        .iter()
        .map(|a| match a.concrete() {
            None => Value::String("<no value>".into()),
            Some(v) => v.clone(),
        })
        .collect();
    sprint(&vals)
}

/// Go's `HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() || is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
