//! How Flux reads versions in tags and semver constraints: Masterminds-style
//! constraints, lenient (Masterminds `NewVersion`) and strict (fluxcd/pkg
//! `version.ParseVersion`) version parsing, and Flux's OCIRepository tag
//! selection ([`latest_matching`]). Pure: no network, no Kubernetes.

use std::cmp::Ordering;

pub use semver::Version;

/// Parses a tag as a version the way Masterminds' `NewVersion` does: an
/// optional `v`, and missing minor/patch default to 0.
pub fn parse_lenient(tag: &str) -> Option<semver::Version> {
    let s = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    // Pad `1` and `1.2` (keeping any -pre/+build suffix).
    let split = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 2
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let padded = match parts.len() {
        1 => format!("{}.0.0{rest}", parts[0]),
        _ => format!("{}.{}.0{rest}", parts[0], parts[1]),
    };
    semver::Version::parse(&padded).ok()
}

/// A Masterminds-style semver constraint, mapped onto the `semver` crate.
///
/// Supported: `||` alternatives; comparators separated by spaces or commas
/// (all must hold); `=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `^`; wildcards
/// `1.x`, `1.2.*`, `*`; hyphen ranges `1.2 - 1.4.5`; a leading `v`.
/// A bare version means *exactly* that version (Masterminds), not Cargo's
/// caret. Differences from Masterminds are documented in the README.
#[derive(Clone, Debug)]
pub struct Constraint {
    alternatives: Vec<Vec<Comparator>>,
}

#[derive(Clone, Debug)]
enum Comparator {
    Req(semver::VersionReq),
    NotEqual(semver::Version),
}

#[derive(Debug, thiserror::Error)]
#[error("improper constraint: {0}")]
pub struct ConstraintError(String);

impl Constraint {
    pub fn parse(input: &str) -> Result<Constraint, ConstraintError> {
        let err = || ConstraintError(input.to_string());
        let mut alternatives = Vec::new();
        for alt in input.split("||") {
            let alt = alt.trim();
            if alt.is_empty() {
                return Err(err());
            }
            let tokens = tokenize(alt);
            let mut comparators = Vec::new();
            let mut i = 0;
            while i < tokens.len() {
                // Hyphen range: `a - b`.
                if i + 2 < tokens.len() && tokens[i + 1] == "-" {
                    let lo = strip_v(&tokens[i]);
                    let hi = strip_v(&tokens[i + 2]);
                    let req =
                        semver::VersionReq::parse(&format!(">={lo}, <={hi}")).map_err(|_| err())?;
                    comparators.push(Comparator::Req(req));
                    i += 3;
                    continue;
                }
                comparators.push(parse_comparator(&tokens[i]).ok_or_else(err)?);
                i += 1;
            }
            if comparators.is_empty() {
                return Err(err());
            }
            alternatives.push(comparators);
        }
        Ok(Constraint { alternatives })
    }

    pub fn matches(&self, v: &semver::Version) -> bool {
        self.alternatives.iter().any(|all| {
            all.iter().all(|c| match c {
                Comparator::Req(r) => r.matches(v),
                Comparator::NotEqual(n) => v != n,
            })
        })
    }
}

/// Splits `>= 1.0, <2` into `[">=1.0", "<2"]`: operators glue to the version
/// that follows them.
fn tokenize(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for raw in s.split([' ', ',', '\t']).filter(|t| !t.is_empty()) {
        if raw.chars().all(|c| "=!<>~^".contains(c)) {
            pending_op.push_str(raw);
            continue;
        }
        out.push(format!("{pending_op}{raw}"));
        pending_op.clear();
    }
    if !pending_op.is_empty() {
        out.push(pending_op);
    }
    out
}

fn strip_v(s: &str) -> &str {
    s.strip_prefix('v').unwrap_or(s)
}

fn parse_comparator(tok: &str) -> Option<Comparator> {
    let op_len = tok
        .find(|c: char| !"=!<>~^".contains(c))
        .unwrap_or(tok.len());
    let (op, ver) = tok.split_at(op_len);
    let ver = strip_v(ver);
    if ver.is_empty() {
        return None;
    }
    let op = match op {
        "~>" => "~",
        "==" => "=",
        other => other,
    };
    match op {
        "!=" => {
            let v = parse_lenient(ver)?;
            Some(Comparator::NotEqual(v))
        }
        // A bare version is an exact match in Masterminds; with wildcards or
        // missing parts `=` in the `semver` crate already means a range.
        "" | "=" if ver.split('.').any(|p| p == "*" || p == "x" || p == "X") => {
            semver::VersionReq::parse(ver).ok().map(Comparator::Req)
        }
        "" | "=" => semver::VersionReq::parse(&format!("={ver}"))
            .ok()
            .map(Comparator::Req),
        "~" | "^" | ">" | ">=" | "<" | "<=" => semver::VersionReq::parse(&format!("{op}{ver}"))
            .ok()
            .map(Comparator::Req),
        _ => None,
    }
}

/// Parses a tag the way fluxcd/pkg `version.ParseVersion` does (Flux's
/// OCIRepository and Helm chart tags): a strict `X.Y.Z[-pre][+build]` with an
/// optional leading `v`.
pub fn parse_strict(tag: &str) -> Option<semver::Version> {
    let s = tag.strip_prefix('v').unwrap_or(tag);
    semver::Version::parse(s).ok()
}

/// Orders versions as Masterminds does: build metadata does not count.
pub fn compare(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// How an OCI tag spells a version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagStyle {
    /// The tag is the version (Flux's default).
    #[default]
    Plain,
    /// A Helm chart: `helm push` writes the build metadata `+` as `_`
    /// (`1.0.0+build` is tagged `1.0.0_build`).
    Helm,
}

impl TagStyle {
    /// The version a tag spells in this style (`_` back to `+` for Helm).
    pub fn tag_to_version(self, tag: &str) -> String {
        match self {
            TagStyle::Plain => tag.to_string(),
            TagStyle::Helm => tag.replace('_', "+"),
        }
    }

    /// The tag a version is pushed under in this style (`+` to `_` for Helm).
    pub fn version_to_tag(self, version: &str) -> String {
        match self {
            TagStyle::Plain => version.to_string(),
            TagStyle::Helm => version.replace('+', "_"),
        }
    }
}

/// Why [`latest_matching`] selected nothing. The messages are Flux's.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SelectError {
    #[error("semver '{constraint}' parse error: {reason}")]
    InvalidConstraint { constraint: String, reason: String },
    #[error("invalid semverFilter '{filter}': {reason}")]
    InvalidFilter { filter: String, reason: String },
    #[error("no match found for semver: {constraint}")]
    NoMatch { constraint: String },
}

/// Flux's OCIRepository `ref.semver` (+ `ref.semverFilter`) selection: the
/// tags the filter regex matches (anywhere in the tag, as Go's
/// `MatchString`; an empty filter keeps all), parsed with [`parse_strict`]
/// after the [`TagStyle`] mapping, that satisfy `constraint`; the highest
/// wins (build metadata ignored; on equal versions the lexically greatest
/// tag). Returns the tag as it is in the registry.
pub fn latest_matching<'a, I, S>(
    tags: I,
    constraint: &str,
    filter: Option<&str>,
    style: TagStyle,
) -> Result<&'a str, SelectError>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let parsed = Constraint::parse(constraint).map_err(|e| SelectError::InvalidConstraint {
        constraint: constraint.to_string(),
        reason: e.to_string(),
    })?;
    let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => Some(
            regex::Regex::new(f).map_err(|e| SelectError::InvalidFilter {
                filter: f.to_string(),
                reason: e.to_string(),
            })?,
        ),
    };
    let mut best: Option<(semver::Version, &'a str)> = None;
    for tag in tags {
        let tag = tag.as_ref();
        if filter.as_ref().is_some_and(|re| !re.is_match(tag)) {
            continue;
        }
        let Some(v) = parse_strict(&style.tag_to_version(tag)) else {
            continue;
        };
        if !parsed.matches(&v) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((bv, bt)) => match compare(&v, bv) {
                Ordering::Greater => true,
                Ordering::Equal => tag > *bt,
                Ordering::Less => false,
            },
        };
        if better {
            best = Some((v, tag));
        }
    }
    best.map(|(_, t)| t).ok_or_else(|| SelectError::NoMatch {
        constraint: constraint.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_constraints_map_masterminds_forms() {
        let m = |c: &str, v: &str| {
            Constraint::parse(c)
                .unwrap()
                .matches(&parse_lenient(v).unwrap())
        };
        assert!(m(">=1.0.0 <2.0.0", "1.5.0"));
        assert!(!m(">=1.0.0 <2.0.0", "2.0.0"));
        assert!(m(">= 1.0.0, < 2.0.0", "1.0.0"));
        assert!(m("1.x", "1.9.3"));
        assert!(!m("1.x", "2.0.0"));
        assert!(m("1.2.*", "1.2.7"));
        assert!(m("~1.2", "1.2.9"));
        assert!(!m("~1.2", "1.3.0"));
        assert!(m("^1.2", "1.9.0"));
        assert!(!m("^1.2", "2.0.0"));
        assert!(m("1.2.3", "1.2.3"));
        assert!(
            !m("1.2.3", "1.2.4"),
            "a bare version is exact in Masterminds"
        );
        assert!(m("v1.2.3", "1.2.3"));
        assert!(m("1.2 - 1.4.5", "1.4.5"));
        assert!(!m("1.2 - 1.4.5", "1.4.6"));
        assert!(m("<1.0.0 || >=3.0.0", "3.1.0"));
        assert!(!m("<1.0.0 || >=3.0.0", "2.1.0"));
        assert!(m(">=1.0.0 != 1.5.0", "1.4.0"));
        assert!(!m(">=1.0.0 != 1.5.0", "1.5.0"));
        assert!(m("*", "7.0.0"));
        assert!(
            !m(">=1.0.0", "1.5.0-rc.1"),
            "prereleases need a prerelease constraint"
        );
        assert!(Constraint::parse("not a version").is_err());
        assert!(Constraint::parse("").is_err());
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(parse_lenient("v1").unwrap().to_string(), "1.0.0");
        assert_eq!(parse_lenient("1.2").unwrap().to_string(), "1.2.0");
        assert_eq!(
            parse_lenient("v1.2-rc.1").unwrap().to_string(),
            "1.2.0-rc.1"
        );
        assert!(parse_lenient("release").is_none());
    }

    #[test]
    fn strict_versions_need_three_parts() {
        assert_eq!(parse_strict("v1.2.3").unwrap().to_string(), "1.2.3");
        assert_eq!(
            parse_strict("1.2.3-rc.1+b").unwrap().to_string(),
            "1.2.3-rc.1+b"
        );
        assert!(parse_strict("1.2").is_none());
        assert!(parse_strict("v1").is_none());
        assert!(parse_strict("latest").is_none());
    }

    #[test]
    fn latest_matching_is_fluxs_oci_selection() {
        let tags = [
            "latest",
            "1.0.0",
            "v1.1.0",
            "1.2",
            "1.10.0",
            "2.0.0",
            "1.11.0-rc.1",
            "1.9.0-dev",
        ];
        let pick = |c: &str, f: Option<&str>| latest_matching(&tags, c, f, TagStyle::Plain);
        assert_eq!(pick("<2.0.0", None), Ok("1.10.0"));
        assert_eq!(pick("*", None), Ok("2.0.0"));
        assert_eq!(pick(">=1.0.0 <1.2.0", None), Ok("v1.1.0"));
        assert_eq!(pick("~1.11.0-0", None), Ok("1.11.0-rc.1"));
        // The filter is a regex matched anywhere in the tag.
        assert_eq!(pick(">=1.0.0", Some(r"^1\.")), Ok("1.10.0"));
        assert_eq!(pick("~1.9.0-0", Some("-dev$")), Ok("1.9.0-dev"));
        assert_eq!(pick(">=1.0.0", Some("")), Ok("2.0.0"));
        assert_eq!(
            pick(">=3", None).unwrap_err().to_string(),
            "no match found for semver: >=3"
        );
        assert!(matches!(
            pick("><", None),
            Err(SelectError::InvalidConstraint { .. })
        ));
        let e = pick("*", Some("(")).unwrap_err();
        assert!(matches!(e, SelectError::InvalidFilter { .. }), "{e}");
        let none: [&str; 0] = [];
        assert!(latest_matching(&none, "*", None, TagStyle::Plain).is_err());
    }

    #[test]
    fn latest_matching_ties_and_owned_tags() {
        let tags: Vec<String> = ["1.0.0", "v1.0.0", "1.0.0+a"].map(String::from).to_vec();
        assert_eq!(
            latest_matching(&tags, "1.0.0", None, TagStyle::Plain),
            Ok("v1.0.0")
        );
        assert_eq!(
            compare(
                &parse_strict("1.0.0+a").unwrap(),
                &parse_strict("1.0.0+b").unwrap()
            ),
            Ordering::Equal
        );
    }

    #[test]
    fn helm_tags_spell_build_metadata_with_underscore() {
        let tags = ["0.1.0", "0.1.1_build.2", "0.1.1_build.10", "0.2.0-rc_x"];
        assert_eq!(
            latest_matching(&tags, "~0.1", None, TagStyle::Helm),
            Ok("0.1.1_build.2"),
            "build metadata does not order; the lexically greatest tag wins a tie"
        );
        assert_eq!(TagStyle::Helm.version_to_tag("1.0.0+abc"), "1.0.0_abc");
        assert_eq!(TagStyle::Helm.tag_to_version("1.0.0_abc"), "1.0.0+abc");
        assert_eq!(TagStyle::Plain.version_to_tag("1.0.0+abc"), "1.0.0+abc");
        assert!(
            latest_matching(&["1.0.0_x"], "*", None, TagStyle::Plain).is_err(),
            "without the Helm mapping `_` is not a version"
        );
    }
}
