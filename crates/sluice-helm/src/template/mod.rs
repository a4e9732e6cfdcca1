//! Go's `text/template`, with Go's semantics and error messages: the
//! language Helm charts are written in.
//!
//! * [`value`]: [`Value`], what templates see (Go's `interface{}` as Helm
//!   hands values over), with Go's truth, `%v` printing and `%T` names.
//! * [`Templates`]: a set of named templates (Go's `*template.Template` and
//!   its associated templates): [`Templates::parse`] adds a file's
//!   templates (`define`s included), [`Templates::execute`] runs one.
//! * [`FuncMap`] / [`Func`]: functions callable from templates. Go's
//!   builtins (`and`, `or`, `not`, `len`, `index`, `slice`, `print`,
//!   `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `html`, `js`,
//!   `urlquery`, `call`) are part of the engine; a `FuncMap` entry of the
//!   same name replaces one, as in Go.
//!
//! Errors read as Go's: `template: x:1: function "foo" not defined`,
//! `template: x:1:5: executing "x" at <.a.b>: nil pointer evaluating
//! interface {}.b`.
//!
//! ## As Helm uses it
//!
//! Helm parses every file of a chart into one set (`Templates::parse(path,
//! text)`), sets `missingkey=zero` ([`MissingKey::Zero`]) and executes each
//! non-partial file by name; it then removes every `<no value>` from the
//! output (the renderer's job, not the engine's). `include` and `tpl` are
//! functions written on [`CallCtx`]: [`CallCtx::execute_template`] runs a
//! template of the current set (a `tpl` clone inside `tpl`), and
//! [`CallCtx::parse_and_execute`] is Go's `Clone` + `New(name).Parse` +
//! `Execute` (the `define`s of the text stay in the clone). Helm's own bound
//! on nested `include`s (1000 per name) lives in the function, with its
//! per-execution counts in [`CallCtx::state`]. The tests write both exactly
//! as Helm v4.2.4 does and compare them with Helm's code run by Go.
//!
//! ## Go's types, as far as templates can tell
//!
//! Evaluation keeps what Go's reflection shows: a value read out of a map or
//! list is of type `interface {}` (so `.a.b` on a string says `can't
//! evaluate field b in type interface {}`, and on a missing key under
//! `missingkey=zero` `nil pointer evaluating interface {}.b`), "no value"
//! (Go's invalid `reflect.Value`) differs from a nil interface, and a
//! pipeline's result is taken out of its interface, as in Go. Literal
//! numbers are `int` or `float64` by their spelling (`3`, `1.5`, `1e3`,
//! `'a'`). Functions receive plain [`Value`]s (no value as
//! [`Value::Nil`]) and report argument mistakes with [`FuncError::ArgType`]
//! and [`FuncError::Arity`], which the engine words as Go does.
//!
//! ## Bounds
//!
//! Parsing and execution recurse: they run on the caller's thread for the
//! first 256 KiB of stack and continue on a thread with a 256 MiB stack
//! (reserved, committed as used) where nesting goes deeper. Lists and maps
//! are dropped without recursion, however deep. Nested
//! `template`/`include`/`tpl`: [`Options::max_depth`] (Go: 100000); nested
//! `if`/`range`/`with`/`block`: 1000 per template; nested parentheses: 1000
//! (Go: 10000). Output: [`Options::max_output`], counting every byte
//! written, nested executions included. Work: [`Options::max_steps`]
//! (unbounded by default, as in Go). Printing and comparing values stop at
//! [`value::MAX_VALUE_DEPTH`] levels (a map can be made to contain itself).
//!
//! ## Not supported
//!
//! Custom delimiters; complex numbers (parsed as Go does, an error when
//! executed); Go values that have no [`Value`] form (channels, funcs,
//! pointers: `call` always fails, as no value is a function); typed maps
//! with non-string keys.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The maps of names the engine looks up on every parse and call (function
/// names, template names, interned identifiers): foldhash, randomly seeded
/// like std's SipHash but several times cheaper on short keys. SipHash was
/// a twentieth of a render's instructions.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`FastMap`].
pub(crate) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

mod builtins;
mod exec;
mod gofmt;
mod lex;
mod parse;
mod quote;
mod stack;
pub mod value;

#[cfg(test)]
mod lex_tests;
#[cfg(test)]
mod multi_tests;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod tests;

pub use value::{List, Map, Object, Value};

/// A function callable from a template. `args` are the evaluated arguments
/// (the piped value last, as Go passes it). Literal numbers arrive as
/// [`Value::Int`] when written as integers (`3`, `0x1F`, `'a'`) and as
/// [`Value::Float`] otherwise (`1.5`, `1e3`); Go would convert a constant to
/// the parameter's type, so a function taking a Go `float64` or `int` should
/// accept both for constants.
pub type Func = Arc<dyn Fn(&mut CallCtx<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// An error from a function call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FuncError {
    /// The function returned a Go error: printed by the engine as
    /// `error calling NAME: MESSAGE`.
    #[error("{0}")]
    Failed(String),
    /// The arguments do not fit the function's Go signature, detected
    /// before the call in Go (`wrong number of args for NAME: want 2 got
    /// 1`, `wrong type for value; expected string; got int`, `invalid
    /// value; expected string`): printed as is.
    #[error("{0}")]
    Args(String),
    /// Argument `index` (0-based, the piped value last) does not fit the Go
    /// parameter type `want` (`string`, `int`, `float64`, `bool`,
    /// `[]interface {}`, ...). The engine words it as Go does for that
    /// argument (`expected string; found 1` for a literal, `invalid value;
    /// expected string` for no value, `wrong type for value; expected
    /// string; got int` otherwise) and points at the argument.
    #[error("argument {index}: expected {want}")]
    ArgType { index: usize, want: String },
    /// The number of arguments does not fit: `want` (at least `want` when
    /// `variadic`). Printed as Go's `wrong number of args for NAME: want 1
    /// got 2`.
    #[error("wrong number of args: want {want}")]
    Arity { want: usize, variadic: bool },
}

impl FuncError {
    /// `wrong number of args for NAME: want WANT got GOT` (the engine
    /// fills in the name and count it called with).
    pub fn arity(_name: &str, want: usize, _got: usize) -> Self {
        FuncError::Arity {
            want,
            variadic: false,
        }
    }
    /// `wrong number of args for NAME: want at least WANT got GOT` (a
    /// variadic Go function).
    pub fn arity_at_least(_name: &str, want: usize, _got: usize) -> Self {
        FuncError::Arity {
            want,
            variadic: true,
        }
    }
    /// Argument `index` does not fit Go type `want`: see
    /// [`FuncError::ArgType`]. Prefer it to [`FuncError::wrong_type`], which
    /// cannot say which argument.
    pub fn arg_type(index: usize, want: &str) -> Self {
        FuncError::ArgType {
            index,
            want: want.to_string(),
        }
    }
    /// Go's argument check for a parameter of type `want` (`string`,
    /// `int`, `[]interface {}`, `map[string]interface {}`): `invalid value;
    /// expected string` for nil, `wrong type for value; expected string;
    /// got int` otherwise.
    pub fn wrong_type(want: &str, got: &Value) -> Self {
        match got {
            Value::Nil => FuncError::Args(format!("invalid value; expected {want}")),
            _ => FuncError::Args(format!(
                "wrong type for value; expected {want}; got {}",
                got.type_name()
            )),
        }
    }
}

/// Functions by name (Go's `template.FuncMap`).
#[derive(Clone, Default)]
pub struct FuncMap {
    funcs: FastMap<String, Func>,
}

impl FuncMap {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, name: impl Into<String>, f: Func) {
        self.funcs.insert(name.into(), f);
    }
    /// Adds a closure as a function.
    pub fn add<F>(&mut self, name: impl Into<String>, f: F)
    where
        F: Fn(&mut CallCtx<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    {
        self.funcs.insert(name.into(), Arc::new(f));
    }
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.funcs.get(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.funcs.contains_key(name)
    }
    pub fn remove(&mut self, name: &str) -> Option<Func> {
        self.funcs.remove(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.funcs.keys().map(String::as_str)
    }
    pub fn extend(&mut self, other: FuncMap) {
        self.funcs.extend(other.funcs);
    }
}

/// What a missing map key gives (Go's `Option("missingkey=...")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// `missingkey=default`/`invalid`: no value; `<no value>` when printed;
    /// a field of it is no value again.
    #[default]
    Default,
    /// `missingkey=zero`, what Helm sets: the map's zero element, a nil
    /// `interface{}` (printed `<no value>`); a field of it is an error
    /// (`nil pointer evaluating interface {}.b`).
    Zero,
    /// `missingkey=error` (Helm's `--strict`): `map has no entry for key "x"`.
    Error,
}

/// Execution options and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub missing_key: MissingKey,
    /// Nesting of `template`, `include` and `tpl` calls (Go: 100000, which a
    /// default thread stack cannot hold; see [`DEFAULT_MAX_DEPTH`]).
    pub max_depth: usize,
    /// Bytes of output of one top-level execution, nested ones included.
    pub max_output: usize,
    /// Steps of one top-level execution (nodes walked and calls made),
    /// nested ones included. Go has no such bound (`u64::MAX` here by
    /// default); a fuzzer or a service with a time budget sets one.
    pub max_steps: u64,
}

/// The default nesting bound: enough for Helm's own bound on `include`
/// (1000 nested includes per name) to be reached first with up to ten
/// templates including each other.
pub const DEFAULT_MAX_DEPTH: usize = 10_000;
/// The default output bound: 64 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            missing_key: MissingKey::Default,
            max_depth: DEFAULT_MAX_DEPTH,
            max_output: DEFAULT_MAX_OUTPUT,
            max_steps: u64::MAX,
        }
    }
}

/// A parse or execution error, worded as Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `template: NAME:LINE: MESSAGE`.
    #[error("{0}")]
    Parse(String),
    /// `template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`, or
    /// a message without location (`template: no template "x" associated
    /// with template "y"`).
    #[error("{0}")]
    Exec(String),
}

/// What a function can ask of the engine running it: what Helm's
/// `include`, `tpl`, `required` and `fail` need.
pub struct CallCtx<'a> {
    pub(crate) host: &'a mut dyn Host,
}

/// The executor's side of [`CallCtx`].
pub(crate) trait Host {
    fn execute_template(&mut self, name: &str, data: Value) -> Result<String, Error>;
    fn parse_and_execute(&mut self, name: &str, text: &str, data: Value) -> Result<String, Error>;
    fn depth(&self) -> usize;
    fn root_name(&self) -> &str;
    fn options(&self) -> Options;
    fn state_map(&mut self) -> &mut FastMap<TypeId, Box<dyn Any + Send>>;
}

impl CallCtx<'_> {
    /// Runs the named template of the current set with `data` as dot and
    /// returns its output (Go's `t.ExecuteTemplate` into a buffer: Helm's
    /// `include`). The nesting counts toward [`Options::max_depth`].
    pub fn execute_template(&mut self, name: &str, data: Value) -> Result<String, Error> {
        self.host.execute_template(name, data)
    }
    /// Helm's `tpl`: clones the current set, parses `text` into the clone as
    /// template `name` (its `define`s go into the clone only, so that
    /// `include`s inside see them) and executes it with `data`. A parse
    /// error is [`Error::Parse`], an execution error [`Error::Exec`].
    pub fn parse_and_execute(
        &mut self,
        name: &str,
        text: &str,
        data: Value,
    ) -> Result<String, Error> {
        self.host.parse_and_execute(name, text, data)
    }
    /// How many `template`/`include`/`tpl` executions are nested here.
    pub fn depth(&self) -> usize {
        self.host.depth()
    }
    /// The name of the set's first template (Go's `t.Name()` of the set's
    /// root; Helm's `tpl` parses under it).
    pub fn root_name(&self) -> &str {
        self.host.root_name()
    }
    pub fn options(&self) -> Options {
        self.host.options()
    }
    /// Per-execution state of type `T`, created on first use and shared by
    /// every function called during one top-level execution (Helm's
    /// `include` counts nested names in such a map).
    pub fn state<T: Any + Send + Default>(&mut self) -> &mut T {
        let slot = self
            .host
            .state_map()
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        if !slot.is::<T>() {
            *slot = Box::new(T::default());
        }
        match slot.downcast_mut::<T>() {
            Some(t) => t,
            None => unreachable!("slot holds a T"),
        }
    }
}

/// A set of named templates sharing functions and options: Go's
/// `*template.Template` with its associated templates.
#[derive(Clone)]
pub struct Templates {
    set: Arc<exec::Set>,
}

impl Templates {
    /// An empty set named `name` (Go's `template.New(name).Funcs(funcs)`).
    pub fn new(name: &str, funcs: FuncMap) -> Self {
        Templates {
            set: Arc::new(exec::Set::new(name, Arc::new(funcs), Options::default())),
        }
    }

    pub fn with_options(mut self, options: Options) -> Self {
        Arc::make_mut(&mut self.set).options = options;
        self
    }

    pub fn options(&self) -> Options {
        self.set.options
    }

    /// Go's `t.New(name).Parse(text)`: parses `text` as template `name`; its
    /// `define`s and `block`s are added too. A template of the same name
    /// from an earlier call is replaced, unless the new body is empty
    /// (whitespace and comments). The templates keep a copy of `text`.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let set = Arc::make_mut(&mut self.set);
        let text = Arc::from(text);
        stack::enter(|| set.parse(name, &text).map(|_| ()))
    }

    /// Parses each `(name, text)` as [`Templates::parse`] would, in order,
    /// with the parsing itself spread over up to `threads` threads. On
    /// failure, the index of the first text that failed and its error. The
    /// templates share the texts (their plain parts are not copied).
    pub fn parse_all(
        &mut self,
        texts: &[(&str, Arc<str>)],
        threads: usize,
    ) -> Result<(), (usize, Error)> {
        Arc::make_mut(&mut self.set).parse_all(texts, threads)
    }

    /// Whether a template of that name is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.set.get(name).is_some()
    }

    /// The names of the defined templates, sorted.
    pub fn names(&self) -> Vec<String> {
        self.set.names()
    }

    /// Go's `t.ExecuteTemplate(w, name, data)` into a string. Deep
    /// nesting continues on a thread with a large stack (see the module
    /// documentation), so that the bounded recursion cannot overflow the
    /// caller's.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let Some(tree) = self.set.get(name).cloned() else {
            if name == self.set.root {
                return Err(Error::Exec(format!(
                    "template: {name}: {} is an incomplete or empty template",
                    quote::quote(name)
                )));
            }
            return Err(Error::Exec(format!(
                "template: no template {} associated with template {}",
                quote::quote(name),
                quote::quote(&self.set.root)
            )));
        };
        let set = self.set.clone();
        stack::enter(|| exec::Engine::new(set).run(&tree, data.clone()))
    }
}

/// Parses `text` as template `name` with `funcs` and executes it with
/// `data` under `options` (bounded depth and output): an entry point for
/// fuzzing.
pub fn parse_and_execute_bounded(
    name: &str,
    text: &str,
    funcs: FuncMap,
    data: &Value,
    options: Options,
) -> Result<String, Error> {
    let mut t = Templates::new(name, funcs).with_options(options);
    t.parse(name, text)?;
    t.execute(name, data)
}
