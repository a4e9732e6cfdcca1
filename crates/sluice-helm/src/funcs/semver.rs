//! sprig's `semver` and `semverCompare` (Masterminds semver v3): versions
//! read as `NewVersion` reads them (`values::parse_version`), constraints
//! matched by sluice-semver.

use super::{Spec, Value, arg_str, failed, s, spec};
use crate::template::{FuncError, Object};
use crate::values::{ChartSemver, parse_version};

pub(super) const FUNCS: &[Spec] = &[
    spec!("semver", 1, Some(1), |a| {
        let v = arg_str(a, 0)?;
        let parsed = parse_version(v).ok_or_else(invalid)?;
        Ok(Value::object(Version {
            original: v.to_string(),
            v: parsed,
        }))
    }),
    spec!("semverCompare", 2, Some(2), |a| {
        let (c, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
        let constraint = sluice_semver::Constraint::parse(c).map_err(|e| failed(e.to_string()))?;
        let parsed = parse_version(v).ok_or_else(invalid)?;
        let sv = to_semver(&parsed).ok_or_else(invalid)?;
        Ok(Value::Bool(constraint.matches(&sv)))
    }),
];

fn invalid() -> FuncError {
    failed("Invalid Semantic Version")
}

fn to_semver(v: &ChartSemver) -> Option<semver::Version> {
    let mut out = semver::Version::new(v.major, v.minor, v.patch);
    if !v.pre.is_empty() {
        out.pre = semver::Prerelease::new(&v.pre).ok()?;
    }
    if !v.metadata.is_empty() {
        out.build = semver::BuildMetadata::new(&v.metadata).ok()?;
    }
    Some(out)
}

/// Masterminds' `*semver.Version`.
struct Version {
    original: String,
    v: ChartSemver,
}

impl Object for Version {
    fn type_name(&self) -> &str {
        "*semver.Version"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Major" | "Minor" | "Patch" | "Prerelease" | "Metadata" | "Original" | "String"
        )
    }
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        if self.has_method(method) && !args.is_empty() {
            return Some(Err(FuncError::arity(method, 0, args.len())));
        }
        Some(Ok(match method {
            "Major" => Value::Uint(self.v.major),
            "Minor" => Value::Uint(self.v.minor),
            "Patch" => Value::Uint(self.v.patch),
            "Prerelease" => s(&self.v.pre),
            "Metadata" => s(&self.v.metadata),
            "Original" => s(&self.original),
            "String" => s(self.v.to_string()),
            _ => return None,
        }))
    }
    fn display(&self) -> String {
        self.v.to_string()
    }
    fn to_value(&self) -> Option<Value> {
        Some(s(self.v.to_string()))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
