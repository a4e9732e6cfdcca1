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
        let constraint = sluice_semver::Constraint::parse(&pad_prereleases(c))
            .map_err(|_| failed(format!("improper constraint: {c}")))?;
        let parsed = parse_version(v).ok_or_else(invalid)?;
        let sv = to_semver(&parsed).ok_or_else(invalid)?;
        Ok(Value::Bool(constraint.matches(&sv)))
    }),
];

/// Masterminds reads a partial version with a pre-release (`1.19-0`, the
/// idiom charts use to admit pre-release Kubernetes versions) as
/// `1.19.0-0`; sluice-semver wants the three parts written out.
fn pad_prereleases(c: &str) -> String {
    let b = c.as_bytes();
    let mut out = String::with_capacity(c.len() + 8);
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.' || b[i - 1] == b'-'));
        if !starts {
            out.push(char::from(b[i]));
            i += 1;
            continue;
        }
        // A version core: digits and dots.
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
            j += 1;
        }
        let core = &c[i..j];
        out.push_str(core);
        let parts = core.split('.').filter(|p| !p.is_empty()).count();
        if j < b.len() && b[j] == b'-' && parts < 3 && !core.ends_with('.') {
            for _ in parts..3 {
                out.push_str(".0");
            }
        }
        i = j;
    }
    out
}

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

/// Masterminds' `Version.Compare`: build metadata does not count.
fn compare(a: &ChartSemver, b: &ChartSemver) -> std::cmp::Ordering {
    match (to_semver(a), to_semver(b)) {
        (Some(x), Some(y)) => sluice_semver::compare(&x, &y),
        _ => (a.major, a.minor, a.patch).cmp(&(b.major, b.minor, b.patch)),
    }
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
            "Major"
                | "Minor"
                | "Patch"
                | "Prerelease"
                | "Metadata"
                | "Original"
                | "String"
                | "Compare"
                | "LessThan"
                | "GreaterThan"
                | "Equal"
        )
    }
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        if matches!(method, "Compare" | "LessThan" | "GreaterThan" | "Equal") {
            if args.len() != 1 {
                return Some(Err(FuncError::arity(method, 1, args.len())));
            }
            let other = match &args[0] {
                Value::Object(o) => o.as_any().downcast_ref::<Version>(),
                _ => None,
            };
            let Some(other) = other else {
                return Some(Err(FuncError::wrong_type("*semver.Version", &args[0])));
            };
            let ord = compare(&self.v, &other.v);
            return Some(Ok(match method {
                "Compare" => Value::Int(ord as i64),
                "LessThan" => Value::Bool(ord.is_lt()),
                "GreaterThan" => Value::Bool(ord.is_gt()),
                _ => Value::Bool(ord.is_eq()),
            }));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_partial_prereleases() {
        assert_eq!(pad_prereleases(">=1.19-0"), ">=1.19.0-0");
        assert_eq!(pad_prereleases(">= 1-0, <2.1.0-0"), ">= 1.0.0-0, <2.1.0-0");
        assert_eq!(pad_prereleases("1.2 - 1.4.5"), "1.2 - 1.4.5");
        assert_eq!(pad_prereleases("^1.2.0"), "^1.2.0");
    }
}
