//! Flux `postBuild` variable substitution.
//!
//! Flux's kustomize-controller renders each object to YAML and runs it
//! through `github.com/fluxcd/pkg/envsubst` (a fork of drone/envsubst) with
//! the variables from `spec.postBuild.substitute` / `substituteFrom`. This
//! crate reimplements that dialect so sluice renders byte-for-byte what
//! Flux renders, including its quirks:
//!
//! - only `${...}` is expanded; a bare `$var` is left alone;
//! - `$$` before anything is an escape for `$` in plain text, so `$${var}`
//!   renders as the literal `${var}`;
//! - supported forms: `${var}`, `${var=d}`, `${var:=d}`, `${var:-d}`,
//!   `${var:?d}`, `${var:+d}` (all "value, or `d` when empty"),
//!   `${#var}`, `${var^}`, `${var^^}`, `${var,}`, `${var,,}`,
//!   `${var:pos}`, `${var:pos:len}`, `${var#pat}`, `${var##pat}`,
//!   `${var%pat}`, `${var%%pat}`, `${var/from/to}`, `${var//from/to}`,
//!   `${var/#from/to}`, `${var/%from/to}`; defaults and replacement
//!   arguments may nest `${...}`;
//! - `${var-d}` and `${var+d}` (no colon) are *not* supported by Flux's
//!   parser and fail with "missing closing brace" — as here;
//! - with `strict`, an unset variable is an error unless the operator
//!   supplies a fallback (`=`, `:=`, `:-`, `:?`, `:+`); without it, an
//!   unset variable is the empty string.
//!
//! What the caller does (as kustomize-controller does around envsubst):
//! skip objects labelled or annotated `kustomize.toolkit.fluxcd.io/substitute:
//! disabled`; skip substitution entirely when no variables are defined;
//! validate variable names with [`validate_var_names`]; strip newlines
//! from values loaded from ConfigMaps/Secrets and from inline `substitute`
//! entries ([`normalize_value`]).
//!
//! Errors carry the variable name and the line/column of the offending
//! `${`, never a variable value. Parsing and evaluation are linear in the
//! input and output; the glob-based trim operators are linear in the value
//! for ASCII values and patterns (see the README for the general bound).
//! Recursion is bounded and no input can make it panic.

mod funcs;
mod glob;
mod parse;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

pub use parse::ParseErrorKind;
use parse::{Func, Node};

/// Source of variable values.
pub trait Lookup {
    /// The value of `name`, or `None` when it is not defined.
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>>;
}

impl<S: BuildHasher> Lookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

impl<S: BuildHasher> Lookup for HashMap<&str, &str, S> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(*v))
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

impl Lookup for BTreeMap<&str, &str> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(*v))
    }
}

impl<T: Lookup + ?Sized> Lookup for &T {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        (**self).lookup(name)
    }
}

/// Adapts a closure `Fn(&str) -> Option<String>` into a [`Lookup`].
pub struct FnLookup<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Lookup for FnLookup<F> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        (self.0)(name).map(Cow::Owned)
    }
}

/// Substitution options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Fail on a variable that is not defined and has no fallback
    /// (Flux's `--feature-gates=StrictPostBuildSubstitutions=true`).
    pub strict: bool,
}

impl Options {
    /// Options with strict mode on.
    pub fn strict() -> Self {
        Options { strict: true }
    }
}

/// A location in the input: byte offset plus 1-based line and column
/// (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn locate(input: &str, offset: usize) -> Self {
        let offset = offset.min(input.len());
        let before = input.get(..offset).unwrap_or(input);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            offset,
            line: before.matches('\n').count() + 1,
            column: before.get(line_start..).map_or(0, |l| l.chars().count()) + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Substitution failure. Never contains a variable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Strict mode: the variable is not defined and the expression has no
    /// fallback. The text before the position mirrors Flux's message.
    #[error("variable not set (strict mode): \"{name}\" at {position}")]
    VariableNotSet { name: String, position: Position },
    /// Evaluating the expression would produce more than
    /// [`MAX_OUTPUT_BYTES`] (nested replace-all expressions grow
    /// exponentially).
    #[error(
        "substitution of \"{name}\" at {position} would produce more than {limit} bytes",
        limit = MAX_OUTPUT_BYTES
    )]
    TooLarge { name: String, position: Position },
    /// The input is not a valid template.
    #[error("{}", describe_parse(kind, variable.as_deref(), position))]
    Parse {
        kind: ParseErrorKind,
        /// Name of the variable in the failing expression, when known.
        variable: Option<String>,
        /// Where the failing `${` starts.
        position: Position,
    },
}

fn describe_parse(kind: &ParseErrorKind, variable: Option<&str>, position: &Position) -> String {
    match variable {
        Some(v) => format!("{kind} in expression for \"{v}\" at {position}"),
        None => format!("{kind} at {position}"),
    }
}

impl Error {
    /// The variable the error is about, if known.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Error::VariableNotSet { name, .. } | Error::TooLarge { name, .. } => Some(name),
            Error::Parse { variable, .. } => variable.as_deref(),
        }
    }

    /// Where in the input the error is.
    pub fn position(&self) -> Position {
        match self {
            Error::VariableNotSet { position, .. }
            | Error::TooLarge { position, .. }
            | Error::Parse { position, .. } => *position,
        }
    }
}

/// The most the expressions of one substitution may produce together,
/// nested ones included: 32 MiB, twice the largest manifest a build reads.
pub const MAX_OUTPUT_BYTES: usize = 32 << 20;

/// Expands every `${...}` expression in `input` using `vars`.
///
/// The whole input is parsed before anything is evaluated, so a syntax
/// error anywhere wins over a strict-mode error, as in Flux.
pub fn substitute<L: Lookup + ?Sized>(
    input: &str,
    vars: &L,
    opts: Options,
) -> Result<String, Error> {
    let nodes = parse::parse(input).map_err(|f| Error::Parse {
        kind: f.kind,
        variable: f.variable,
        position: Position::locate(input, f.offset),
    })?;
    let ev = Evaluator {
        input,
        vars,
        opts,
        produced: std::cell::Cell::new(0),
    };
    let mut out = String::with_capacity(input.len());
    for node in &nodes {
        ev.node(node, &mut out)?;
    }
    Ok(out)
}

struct Evaluator<'a, L: ?Sized> {
    input: &'a str,
    vars: &'a L,
    opts: Options,
    /// Bytes every expression evaluated so far produced (nested ones
    /// included): bounded by [`MAX_OUTPUT_BYTES`].
    produced: std::cell::Cell<usize>,
}

impl<L: Lookup + ?Sized> Evaluator<'_, L> {
    fn node(&self, node: &Node, out: &mut String) -> Result<(), Error> {
        match node {
            Node::Text(t) => {
                out.push_str(t);
                Ok(())
            }
            Node::Func(f) => self.func(f, out),
        }
    }

    fn func(&self, f: &Func, out: &mut String) -> Result<(), Error> {
        // Arguments are evaluated first, whether or not they are used, so
        // an unset variable inside an unused default still fails in strict
        // mode — as in Flux.
        let mut args = Vec::with_capacity(f.args.len());
        for a in &f.args {
            let mut buf = String::new();
            self.node(a, &mut buf)?;
            args.push(buf);
        }
        let (value, exists) = match self.vars.lookup(&f.param) {
            Some(v) => (v, true),
            None => (Cow::Borrowed(""), !self.opts.strict),
        };
        if !exists && !funcs::is_default_op(&f.op) {
            return Err(Error::VariableNotSet {
                name: f.param.clone(),
                position: Position::locate(self.input, f.start),
            });
        }
        // Bounded before anything is built: ten nested `${v//x/...}` of a
        // short value would otherwise take gigabytes.
        let bound = funcs::output_bound(&f.op, &value, &args);
        let produced = self.produced.get().saturating_add(bound);
        self.produced.set(produced);
        if produced > MAX_OUTPUT_BYTES || out.len().saturating_add(bound) > MAX_OUTPUT_BYTES {
            return Err(Error::TooLarge {
                name: f.param.clone(),
                position: Position::locate(self.input, f.start),
            });
        }
        out.push_str(&funcs::apply(&f.op, &value, &args));
        Ok(())
    }
}

/// The pattern Flux requires variable names to match.
pub const VAR_NAME_PATTERN: &str = "^[_[:alpha:]][_[:alpha:][:digit:]]*$";

/// A variable name that does not match [`VAR_NAME_PATTERN`]. The message is
/// Flux's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}' var name is invalid, must match '{pattern}'", pattern = VAR_NAME_PATTERN)]
pub struct InvalidVarName {
    pub name: String,
}

/// Whether `name` is a valid Flux substitution variable name (ASCII letter
/// or underscore, then ASCII letters, digits, underscores).
pub fn is_valid_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b == b'_' || b.is_ascii_alphabetic() => {}
        _ => return false,
    }
    bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// Checks the names of a substitution map, reporting the first invalid
/// one in iteration order (Flux iterates a Go map, so which one it reports
/// is unspecified; pass sorted names for a stable message).
pub fn validate_var_names<I, S>(names: I) -> Result<(), InvalidVarName>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for n in names {
        let n = n.as_ref();
        if !is_valid_var_name(n) {
            return Err(InvalidVarName { name: n.to_owned() });
        }
    }
    Ok(())
}

/// Flux strips every `\n` from substitution values when loading them.
pub fn normalize_value(value: &str) -> String {
    value.replace('\n', "")
}

/// Compiles the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests;
