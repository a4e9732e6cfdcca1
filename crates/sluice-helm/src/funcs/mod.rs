//! The template functions of Helm v4 (`pkg/engine/funcs.go` `funcMap()`):
//! sprig v3.3.0's `TxtFuncMap` without `env` and `expandenv`, plus Helm's
//! own (`toYaml`, `fromYaml`, `toJson`, `include`, `tpl`, `required`,
//! `lookup`, `fail`, ...), with sprig's semantics: its argument orders, its
//! conversions (`add` on `float64` values returns `int64`), its silent
//! fallbacks (`b64dec` of garbage returns the error text), and the errors
//! Go would report where sprig panics.
//!
//! Every function checks its arguments the way Go's `text/template` does
//! for the Go signature sprig declares (`wrong type for value; expected
//! int; got float64`), and bounds its work: a result over
//! [`MAX_RESULT_BYTES`] or a list over [`MAX_LIST_ITEMS`] is refused with
//! an error naming the function instead of exhausting memory. Functions
//! sluice does not implement fail naming themselves.
//!
//! Non-deterministic functions (`now`, `randAlphaNum`, `uuidv4`, `genCA`,
//! ...) read the clock and the OS random source; tests check their shape
//! (length, alphabet, PEM structure), never their value.

mod certs;
mod crypto;
mod dates;
mod dicts;
mod encoding;
pub(crate) mod go;
mod helm;
pub use helm::{WARN_END, WARN_START};
mod lists;
mod numeric;
mod paths;
mod regexes;
mod semver;
pub(crate) mod serial;
mod strings;
mod types;
mod urls;

use std::sync::Arc;

use crate::template::{CallCtx, FuncError, FuncMap, Map, Value};

/// The longest string (or encoded document) one function call may return.
pub const MAX_RESULT_BYTES: usize = 32 << 20;
/// The longest list one function call may build (`until`, `seq`, ...).
pub const MAX_LIST_ITEMS: usize = 1_000_000;

pub type FuncResult = Result<Value, FuncError>;

/// A function's implementation over evaluated arguments.
pub type RawFunc = fn(&[Value]) -> FuncResult;
/// One that needs the running template (`include`, `tpl`).
pub type CtxFunc = fn(&mut CallCtx<'_>, &[Value]) -> FuncResult;

#[derive(Clone, Copy)]
pub(crate) enum Impl {
    Plain(RawFunc),
    Ctx(CtxFunc),
}

/// One entry of the function map: its name, arity as Go's signature has it
/// (`max` `None` for variadic functions) and implementation.
#[derive(Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub min: usize,
    pub max: Option<usize>,
    /// Called only after [`Spec::check_arity`] (implementations index
    /// their arguments by position).
    pub(crate) func: Impl,
}

impl Spec {
    /// Whether the function needs the running template (`include`, `tpl`).
    pub fn needs_template(&self) -> bool {
        matches!(self.func, Impl::Ctx(_))
    }

    /// Go's arity check for this signature.
    pub fn check_arity(&self, got: usize) -> Result<(), FuncError> {
        match self.max {
            Some(m) if m == self.min && got != m => Err(FuncError::arity(self.name, m, got)),
            Some(m) if got < self.min || got > m => {
                Err(FuncError::arity_at_least(self.name, self.min, got))
            }
            None if got < self.min => Err(FuncError::arity_at_least(self.name, self.min, got)),
            _ => Ok(()),
        }
    }
}

/// Every function of Helm v4's map (sprig's `TxtFuncMap` without `env` and
/// `expandenv`, plus Helm's), as specs.
pub fn specs() -> Vec<Spec> {
    let mut out = Vec::new();
    for table in [
        strings::FUNCS,
        numeric::FUNCS,
        lists::FUNCS,
        dicts::FUNCS,
        types::FUNCS,
        encoding::FUNCS,
        regexes::FUNCS,
        dates::FUNCS,
        crypto::FUNCS,
        certs::FUNCS,
        paths::FUNCS,
        urls::FUNCS,
        serial::FUNCS,
        semver::FUNCS,
        helm::FUNCS,
    ] {
        out.extend_from_slice(table);
    }
    out
}

/// Helm's function map, every function registered (Helm's
/// `engine.funcMap()` with `include`, `tpl`, `required`, `fail` bound as
/// `initFunMap` binds them, `lookup` empty as in `helm template`, and
/// `getHostByName` empty as without `--enable-dns`).
pub fn helm_funcs() -> FuncMap {
    let mut m = FuncMap::new();
    for spec in specs() {
        m.insert(
            spec.name,
            Arc::new(move |ctx: &mut CallCtx<'_>, args: &[Value]| {
                spec.check_arity(args.len())?;
                match spec.func {
                    Impl::Plain(f) => f(args),
                    Impl::Ctx(f) => f(ctx, args),
                }
            }),
        );
    }
    m
}

/// Calls a function that needs no template (tests, tools).
pub fn call(name: &str, args: &[Value]) -> FuncResult {
    let Some(spec) = specs().into_iter().find(|s| s.name == name) else {
        return Err(failed(format!("function {name:?} not defined")));
    };
    spec.check_arity(args.len())?;
    match spec.func {
        Impl::Plain(f) => f(args),
        Impl::Ctx(_) => Err(failed(format!("{name} needs a running template"))),
    }
}

// ---------------------------------------------------------------------------
// Argument conversion, as text/template converts to the Go parameter types
// sprig declares.
// ---------------------------------------------------------------------------

// The parameters below report a mismatch by its index and Go type (`FuncError::arg_type`):
// the engine words it as Go does for the argument given (a literal, `nil`, no value, or a
// value of another type) and points at that argument.

fn nth(args: &[Value], i: usize) -> &Value {
    static NIL: Value = Value::Nil;
    args.get(i).unwrap_or(&NIL)
}

/// A `string` parameter.
pub(crate) fn arg_str(args: &[Value], i: usize) -> Result<&str, FuncError> {
    match nth(args, i) {
        Value::String(s) => Ok(s),
        _ => Err(FuncError::arg_type(i, "string")),
    }
}

/// An `int` parameter (integer constants and `int` results; a `float64`
/// from values is refused as Go refuses it).
pub(crate) fn arg_int(args: &[Value], i: usize) -> Result<i64, FuncError> {
    match nth(args, i) {
        Value::Int(n) => Ok(*n),
        Value::Uint(n) => Ok(*n as i64),
        _ => Err(FuncError::arg_type(i, "int")),
    }
}

/// A `float64` parameter (an integer constant converts).
pub(crate) fn arg_float(args: &[Value], i: usize) -> Result<f64, FuncError> {
    match nth(args, i) {
        Value::Float(f) => Ok(*f),
        Value::Int(n) => Ok(*n as f64),
        _ => Err(FuncError::arg_type(i, "float64")),
    }
}

/// A `bool` parameter.
pub(crate) fn arg_bool(args: &[Value], i: usize) -> Result<bool, FuncError> {
    match nth(args, i) {
        Value::Bool(b) => Ok(*b),
        _ => Err(FuncError::arg_type(i, "bool")),
    }
}

/// A `map[string]interface{}` parameter. The engine words a mismatch as Go does for the
/// argument given, and calls again with an empty map where Go would pass a nil one (no value,
/// or the literal `nil`).
pub(crate) fn arg_map(args: &[Value], i: usize) -> Result<&Map, FuncError> {
    match nth(args, i) {
        Value::Map(m) => Ok(m),
        _ => Err(FuncError::arg_type(i, "map[string]interface {}")),
    }
}

fn too_large(name: &str, what: String) -> FuncError {
    FuncError::Failed(format!(
        "{name}: result too large ({what}); sluice bounds one call"
    ))
}

/// Refuses a string result over the limit.
pub(crate) fn check_len(name: &str, len: u128) -> Result<(), FuncError> {
    if len > MAX_RESULT_BYTES as u128 {
        return Err(too_large(
            name,
            format!("{len} bytes, limit {MAX_RESULT_BYTES}"),
        ));
    }
    Ok(())
}

/// Refuses a list result over the limit.
pub(crate) fn check_items(name: &str, n: u128) -> Result<(), FuncError> {
    if n > MAX_LIST_ITEMS as u128 {
        return Err(too_large(
            name,
            format!("{n} items, limit {MAX_LIST_ITEMS}"),
        ));
    }
    Ok(())
}

pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

pub(crate) fn failed(msg: impl Into<String>) -> FuncError {
    FuncError::Failed(msg.into())
}

/// A function sluice refuses, by name.
pub(crate) fn unsupported(name: &str, why: &str) -> FuncError {
    FuncError::Failed(format!(
        "function {name:?} is not supported by sluice: {why}"
    ))
}

/// Shorthand for a table entry.
macro_rules! spec {
    ($name:literal, $min:expr, $max:expr, ctx $f:expr) => {
        $crate::funcs::Spec {
            name: $name,
            min: $min,
            max: $max,
            func: $crate::funcs::Impl::Ctx($f),
        }
    };
    ($name:literal, $min:expr, $max:expr, $f:expr) => {
        $crate::funcs::Spec {
            name: $name,
            min: $min,
            max: $max,
            func: $crate::funcs::Impl::Plain($f),
        }
    };
}
pub(crate) use spec;
