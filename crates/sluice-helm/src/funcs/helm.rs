//! Helm's own functions that `initFunMap` binds per render: `include`,
//! `tpl`, `required`, `fail`, `lookup` (empty: no cluster in `helm
//! template`) and `getHostByName` (empty without `--enable-dns`).

use super::{FuncResult, Spec, Value, arg_str, failed, s, spec};
use crate::template::{CallCtx, Error, FuncError};

/// Helm's bound on nested `include`s of one name (`recursionMaxNums`).
const RECURSION_MAX: usize = 1000;

/// Helm's `warnWrap`: the renderer finds messages between these markers
/// and reports them as `execution error at (...): MESSAGE`.
pub const WARN_START: &str = "HELM_ERR_START";
pub const WARN_END: &str = "HELM_ERR_END";

pub(super) const FUNCS: &[Spec] = &[
    spec!("include", 2, Some(2), ctx include),
    spec!("tpl", 2, Some(2), ctx tpl),
    spec!("required", 2, Some(2), |a| {
        let warn = arg_str(a, 0)?;
        match &a[1] {
            Value::Nil => Err(warn_wrap(warn)),
            Value::String(v) if v.is_empty() => Err(warn_wrap(warn)),
            v => Ok(v.clone()),
        }
    }),
    spec!("fail", 1, Some(1), |a| Err(warn_wrap(arg_str(a, 0)?))),
    spec!("lookup", 4, Some(4), |a| {
        for i in 0..4 {
            arg_str(a, i)?;
        }
        Ok(Value::map(Default::default()))
    }),
    spec!("getHostByName", 1, Some(1), |a| {
        arg_str(a, 0)?;
        Ok(s(""))
    }),
];

fn warn_wrap(msg: &str) -> FuncError {
    failed(format!("{WARN_START}{msg}{WARN_END}"))
}

/// Counts of the `include`s of each name in progress (Helm's
/// `includedNames`), per top-level execution.
#[derive(Default)]
struct Included(crate::template::FastMap<String, usize>);

fn exec_error(e: Error) -> FuncError {
    match e {
        Error::Parse(m) | Error::Exec(m) => FuncError::Failed(m),
    }
}

/// Helm's `include`: the named template's output, or its error; more than
/// 1000 nested includes of one name fail as Helm's do.
fn include(ctx: &mut CallCtx<'_>, a: &[Value]) -> FuncResult {
    let name = arg_str(a, 0)?.to_string();
    let data = a[1].clone();
    {
        let counts = &mut ctx.state::<Included>().0;
        let n = counts.entry(name.clone()).or_insert(0);
        if *n > RECURSION_MAX {
            return Err(failed(format!(
                "rendering template has a nested reference name: {name}: unable to execute template"
            )));
        }
        *n += 1;
    }
    let out = ctx.execute_template(&name, data);
    if let Some(n) = ctx.state::<Included>().0.get_mut(&name) {
        *n = n.saturating_sub(1);
    }
    out.map(s).map_err(exec_error)
}

/// Helm's `tpl`: `text` parsed into a clone of the current templates under
/// the root's name and executed with `data`; `<no value>` removed.
fn tpl(ctx: &mut CallCtx<'_>, a: &[Value]) -> FuncResult {
    let text = arg_str(a, 0)?.to_string();
    let data = a[1].clone();
    let name = ctx.root_name().to_string();
    match ctx.parse_and_execute(&name, &text, data) {
        Ok(out) => Ok(s(out.replace("<no value>", ""))),
        Err(Error::Parse(m)) => Err(failed(format!(
            "cannot parse template {}: {m}",
            super::go::quote(&text)
        ))),
        Err(Error::Exec(m)) => Err(failed(format!(
            "error during tpl function execution for {}: {m}",
            super::go::quote(&text)
        ))),
    }
}
