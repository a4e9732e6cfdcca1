//! sprig's `semver` and `semverCompare`: Masterminds semver v3.3.0's
//! `NewVersion` (`values::parse_version`) and its constraints, ported
//! (operators, partial versions and wildcards, hyphen ranges, `||`, and
//! its pre-release rule: a pre-release version satisfies a comparator only
//! when that comparator names a pre-release, so `>=1.19-0` admits
//! `v1.28.3-eks-4f4795d` and `>=1.19` does not).

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

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
        let constraints = Constraints::parse(c).map_err(failed)?;
        let parsed = parse_version(v).ok_or_else(invalid)?;
        Ok(Value::Bool(constraints.check(&parsed)))
    }),
];

fn invalid() -> FuncError {
    failed("Invalid Semantic Version")
}

/// Masterminds' `comparePrePart`.
fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        // A numeric part is lower than an alphanumeric one.
        (Err(_), Ok(_)) => Ordering::Greater,
        (Ok(_), Err(_)) => Ordering::Less,
        (Ok(a), Ok(b)) => {
            if a > b {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// Masterminds' `Version.Compare` (build metadata does not count).
pub(crate) fn compare(a: &ChartSemver, b: &ChartSemver) -> Ordering {
    let core = (a.major, a.minor, a.patch).cmp(&(b.major, b.minor, b.patch));
    if core != Ordering::Equal {
        return core;
    }
    match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let (sp, op): (Vec<&str>, Vec<&str>) =
                (a.pre.split('.').collect(), b.pre.split('.').collect());
            for i in 0..sp.len().max(op.len()) {
                let d = compare_pre_part(
                    sp.get(i).copied().unwrap_or(""),
                    op.get(i).copied().unwrap_or(""),
                );
                if d != Ordering::Equal {
                    return d;
                }
            }
            Ordering::Equal
        }
    }
}

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

struct Patterns {
    constraint: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

/// Go's `\s` (RE2's Perl class, ASCII only: no vertical tab, no Unicode spaces).
const WS: &str = r"[\t\n\f\r ]";

/// Masterminds' patterns, with Go's meaning: their classes are ASCII, and `\s` is Go's (Unicode
/// spaces and the vertical tab are not). Without Unicode classes they also compile in seven
/// eighths of the time (3.2M instructions instead of 3.7M, once per process, at the first
/// `semverCompare`).
static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    let re = |p: String| {
        regex::RegexBuilder::new(&p.replace(r"\s", WS))
            .unicode(false)
            .build()
            .ok()
    };
    Some(Patterns {
        constraint: re(format!(r"^\s*({OPS})\s*({CV})\s*$"))?,
        range: re(format!(r"\s*({CV})\s+-\s+({CV})\s*"))?,
        find: re(format!(r"({OPS})\s*({CV})"))?,
        valid: re(format!(
            r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$"
        ))?,
    })
});

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

struct Constraint {
    op: Op,
    con: ChartSemver,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

/// Masterminds' `Constraints`: alternatives (`||`) of comparators that must
/// all hold.
pub(crate) struct Constraints(Vec<Vec<Constraint>>);

fn is_x(p: &str) -> bool {
    matches!(p, "x" | "*" | "X")
}

impl Constraints {
    /// Masterminds' `NewConstraint`; errors read as its own.
    pub(crate) fn parse(c: &str) -> Result<Constraints, String> {
        let Some(p) = PATTERNS.as_ref() else {
            return Err("constraint Parser Error".into());
        };
        // Hyphen ranges become `>= a, <= b`.
        let mut text = c.to_string();
        let ranges: Vec<(String, String, String)> = p
            .range
            .captures_iter(c)
            .filter_map(|m| {
                Some((
                    m.get(0)?.as_str().to_string(),
                    m.get(1)?.as_str().to_string(),
                    m.get(11)?.as_str().to_string(),
                ))
            })
            .collect();
        for (all, a, b) in ranges {
            text = text.replacen(&all, &format!(">= {a}, <= {b} "), 1);
        }
        let mut ors = Vec::new();
        for seg in text.split("||") {
            if !p.valid.is_match(seg) {
                return Err(format!("improper constraint: {seg}"));
            }
            let mut tokens: Vec<&str> = p.find.find_iter(seg).map(|m| m.as_str()).collect();
            if tokens.is_empty() {
                tokens.push(seg);
            }
            let mut all = Vec::new();
            for t in tokens {
                all.push(Self::one(p, t)?);
            }
            ors.push(all);
        }
        Ok(Constraints(ors))
    }

    fn one(p: &Patterns, t: &str) -> Result<Constraint, String> {
        let m = p
            .constraint
            .captures(t)
            .ok_or_else(|| format!("improper constraint: {t}"))?;
        let g = |i: usize| m.get(i).map_or("", |x| x.as_str());
        let op = match g(1) {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            _ => Op::Caret,
        };
        let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
        let ver = if is_x(g(3)) || g(3).is_empty() {
            dirty = true;
            format!("0.0.0{}", g(6))
        } else if is_x(g(4).trim_start_matches('.')) || g(4).is_empty() {
            minor_dirty = true;
            dirty = true;
            format!("{}.0.0{}", g(3), g(6))
        } else if is_x(g(5).trim_start_matches('.')) || g(5).is_empty() {
            dirty = true;
            patch_dirty = true;
            format!("{}{}.0{}", g(3), g(4), g(6))
        } else {
            g(2).to_string()
        };
        let con = parse_version(&ver).ok_or_else(|| "constraint Parser Error".to_string())?;
        Ok(Constraint {
            op,
            con,
            minor_dirty,
            patch_dirty,
            dirty,
        })
    }

    /// Masterminds' `Constraints.Check`.
    pub(crate) fn check(&self, v: &ChartSemver) -> bool {
        self.0.iter().any(|all| all.iter().all(|c| c.check(v)))
    }
}

impl Constraint {
    fn check(&self, v: &ChartSemver) -> bool {
        let c = &self.con;
        // A pre-release only satisfies comparators that name one.
        // (An exact `!=` compares whole versions.)
        let exact_not_equal = self.op == Op::NotEqual && !self.dirty;
        if !exact_not_equal && !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_pre_part_all(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                compare(v, c) != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return compare(v, c) == Ordering::Greater;
                }
                if v.major > c.major {
                    true
                } else if v.major < c.major || self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    v.minor > c.minor
                } else {
                    compare(v, c) == Ordering::Greater
                }
            }
            Op::Less => compare(v, c) == Ordering::Less,
            Op::GreaterEqual => compare(v, c) != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return compare(v, c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    compare(v, c) == Ordering::Equal
                }
            }
            Op::Caret => {
                if compare(v, c) == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }

    fn tilde(&self, v: &ChartSemver) -> bool {
        let c = &self.con;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }
}

/// Masterminds' `comparePrerelease` of two pre-release strings.
fn compare_pre_part_all(a: &str, b: &str) -> Ordering {
    let (sp, op): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..sp.len().max(op.len()) {
        let d = compare_pre_part(
            sp.get(i).copied().unwrap_or(""),
            op.get(i).copied().unwrap_or(""),
        );
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
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

    fn check(c: &str, v: &str) -> Option<bool> {
        Some(Constraints::parse(c).ok()?.check(&parse_version(v)?))
    }

    #[test]
    fn whitespace_in_constraints_is_gos() {
        // RE2's `\s` is space, tab, newline, form feed and carriage return only.
        assert!(PATTERNS.is_some());
        for c in [">= 1.0 ", "\t>= 1.0\n", ">=\r1.0\x0c, < 2"] {
            assert!(Constraints::parse(c).is_ok(), "{c:?}");
        }
        for c in [">= 1.0\u{a0}", "\u{2003}>= 1.0", ">= 1.0\x0b"] {
            let e = Constraints::parse(c).err().unwrap_or_default();
            assert!(e.starts_with("improper constraint"), "{c:?}: {e}");
        }
    }

    /// Cases from Masterminds semver v3.3.0's TestConstraintCheck.
    #[test]
    fn masterminds_constraints() {
        for (c, v, want) in [
            ("=2.0.0", "1.2.3", false),
            ("=2.0.0", "2.0.0", true),
            ("4.1", "4.1.0", true),
            ("!=4.1.0", "4.1.0", false),
            ("!=4.1.0", "4.1.1", true),
            ("!=4.1", "4.1.0", false),
            ("!=4.1", "5.1.0-alpha.1", false),
            ("!=4.1-alpha", "4.1.0", true),
            ("!=4.1", "5.1.0", true),
            ("<11", "0.1.0", true),
            ("<11", "11.1.0", false),
            ("<1.1", "0.1.0", true),
            ("<1.1", "1.1.0", false),
            ("<1.1", "1.1.1", false),
            ("<=11", "1.2.3", true),
            ("<=11", "12.2.3", false),
            ("<=11", "11.2.3", true),
            ("<=1.1", "1.2.3", false),
            ("<=1.1", "0.1.0", true),
            ("<=1.1", "1.1.0", true),
            ("<=1.1", "1.1.1", true),
            (">1.1", "4.1.0", true),
            (">1.1", "1.1.0", false),
            (">0", "0", false),
            (">0", "1", true),
            (">0", "0.0.1-alpha", false),
            (">0.0", "0.0.1-alpha", false),
            (">0-0", "0.0.1-alpha", false),
            (">0.0-0", "0.0.1-alpha", false),
            (">0", "0.0.0-alpha", false),
            (">0-0", "0.0.0-alpha", false),
            (">0.0.0-0", "0.0.0-alpha", true),
            (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
            (">1.2.3-alpha.1", "1.3.3-alpha.2", true),
            (">11", "11.1.0", false),
            (">11.1", "11.1.0", false),
            (">11.1", "11.1.1", false),
            (">11.1", "11.2.1", true),
            (">=11", "11.1.2", true),
            (">=11.1", "11.1.2", true),
            (">=11.1", "11.0.2", false),
            (">=1.1", "4.1.0", true),
            (">=1.1", "1.1.0", true),
            (">=1.1", "0.0.9", false),
            (">=0", "0.0.1-alpha", false),
            (">=0.0", "0.0.1-alpha", false),
            (">=0-0", "0.0.1-alpha", true),
            (">=0.0-0", "0.0.1-alpha", true),
            (">=0", "0.0.0-alpha", false),
            (">=0-0", "0.0.0-alpha", true),
            (">=0.0.0-0", "0.0.0-alpha", true),
            (">=0.0.0-0", "1.2.3", true),
            (">=0.0.0-0", "3.4.5-beta.1", true),
            ("<0", "0.0.0-alpha", false),
            ("<0-z", "0.0.0-alpha", true),
            (">=0", "0", true),
            ("=0", "1", false),
            ("*", "1", true),
            ("*", "4.5.6", true),
            ("*", "1.2.3-alpha.1", false),
            ("*-0", "1.2.3-alpha.1", true),
            ("2.*", "1", false),
            ("2.*", "3.4.5", false),
            ("2.*", "2.1.1", true),
            ("2.1.*", "2.1.1", true),
            ("2.1.*", "2.2.1", false),
            ("2", "1", false),
            ("2", "3.4.5", false),
            ("2", "2.1.1", true),
            ("2.1", "2.1.1", true),
            ("2.1", "2.2.1", false),
            ("~1.2.3", "1.2.4", true),
            ("~1.2.3", "1.3.4", false),
            ("~1.2", "1.2.4", true),
            ("~1.2", "1.3.4", false),
            ("~1", "1.2.4", true),
            ("~1", "2.3.4", false),
            ("~0.2.3", "0.2.5", true),
            ("~0.2.3", "0.3.5", false),
            ("~1.2.3-beta.2", "1.2.3-beta.4", true),
            ("~1.2.3-beta.2", "1.2.4-beta.2", true),
            ("~1.2.3-beta.2", "1.3.4-beta.2", false),
            ("^1.2.3", "1.8.9", true),
            ("^1.2.3", "2.8.9", false),
            ("^1.2.3", "1.2.1", false),
            ("^1.1.0", "2.1.0", false),
            ("^1.2.0", "2.2.1", false),
            ("^1.2.0", "1.2.1-alpha.1", false),
            ("^1.2.1-alpha.1", "1.2.1-alpha.1", true),
            ("^1.2.1-alpha.1", "1.2.1-alpha.2", true),
            ("^1.2.1-alpha.1", "1.3.1-alpha.2", true),
            ("^1.2.1-alpha.1", "2.2.1-alpha.2", false),
            ("^1.2", "1.8.9", true),
            ("^1.2", "2.8.9", false),
            ("^1", "1.8.9", true),
            ("^1", "2.8.9", false),
            ("^1.x", "1.1.1", true),
            ("^1.x", "2.1.1", false),
            ("^1.x", "1.1.1-beta1", false),
            ("^1.1.2-alpha", "1.2.1-beta1", true),
            ("^1.2.x-alpha", "1.1.1-beta1", false),
            ("^0.0.1", "0.0.1", true),
            ("^0.0.1", "0.3.1", false),
            ("^0.2.3", "0.2.5", true),
            ("^0.2.3", "0.5.6", false),
            ("^0.2", "0.2.5", true),
            ("^0.2", "0.5.6", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0", "0.0.3", true),
            ("^0.0", "0.1.4", false),
            ("^0.0", "1.0.4", false),
            ("^0", "0.2.3", true),
            ("^0", "1.1.4", false),
            ("^0.2.3-beta.2", "0.2.3-beta.4", true),
            ("^0.2.3-beta.2", "0.2.4-beta.2", true),
            ("^0.2.3-beta.2", "0.3.4-beta.2", false),
            ("^0.2.3-beta.2", "0.2.3-beta.1", false),
            // Charts' Kubernetes checks.
            (">=1.19-0", "v1.28.3-eks-4f4795d", true),
            (">=1.19", "v1.28.3-eks-4f4795d", false),
            (">= 1.2, < 1.4", "1.3.5", true),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            ("<1.4 || >2", "3.0.0", true),
        ] {
            assert_eq!(check(c, v), Some(want), "{c} {v}");
        }
        assert!(Constraints::parse("bad constraint").is_err());
        assert_eq!(
            Constraints::parse("").err().as_deref(),
            Some("improper constraint: ")
        );
    }
}
