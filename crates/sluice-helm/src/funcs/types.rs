//! sprig's defaults and reflection (`defaults.go`, `reflect.go`) and the
//! flow functions: `default`, `empty`, `coalesce`, `all`, `any`,
//! `ternary`, `typeOf`, `kindOf`, `deepEqual`, ...

use super::go::is_empty;
use super::{Spec, Value, arg_bool, arg_str, s, spec};

pub(super) const FUNCS: &[Spec] = &[
    spec!("hello", 0, Some(0), |_| Ok(s("Hello!"))),
    spec!("default", 1, None, |a| {
        // sprig: `given` is the variadic rest; nothing given, or an empty
        // first value, gives the default.
        match a.get(1) {
            Some(v) if !is_empty(v) => Ok(v.clone()),
            _ => Ok(a[0].clone()),
        }
    }),
    spec!("empty", 1, Some(1), |a| Ok(Value::Bool(is_empty(&a[0])))),
    spec!("coalesce", 0, None, |a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    }),
    spec!("all", 0, None, |a| Ok(Value::Bool(
        a.iter().all(|v| !is_empty(v))
    ))),
    spec!("any", 0, None, |a| Ok(Value::Bool(
        a.iter().any(|v| !is_empty(v))
    ))),
    spec!("ternary", 3, Some(3), |a| {
        Ok(if arg_bool(a, 2)? {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    spec!("typeOf", 1, Some(1), |a| Ok(s(a[0].type_name()))),
    spec!("typeIs", 2, Some(2), |a| {
        Ok(Value::Bool(arg_str(a, 0)? == a[1].type_name()))
    }),
    spec!("typeIsLike", 2, Some(2), |a| {
        let (want, got) = (arg_str(a, 0)?, a[1].type_name());
        Ok(Value::Bool(
            want == got || got.strip_prefix('*').is_some_and(|g| g == want),
        ))
    }),
    spec!("kindOf", 1, Some(1), |a| Ok(s(a[0].kind_name()))),
    spec!("kindIs", 2, Some(2), |a| {
        Ok(Value::Bool(arg_str(a, 0)? == a[1].kind_name()))
    }),
    spec!("deepEqual", 2, Some(2), |a| Ok(Value::Bool(a[0] == a[1]))),
];
