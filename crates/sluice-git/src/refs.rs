//! Which remote ref a `GitRepository` wants, how it is found among the refs a
//! remote advertises, and how the resulting revision is spelled.
//!
//! Flux's precedence is `commit` > `name` > `semver` > `tag` > `branch`, and
//! `master` when no ref is given. Revisions are `<ref>@sha1:<hex>` where
//! `<ref>` is the branch name, the tag name, or the full ref name for `name`;
//! a bare commit gives `sha1:<hex>`.

use std::fmt;

use sluice_api::source::GitRepositoryRef;

/// The branch Flux uses when `spec.ref` is absent or empty.
pub const DEFAULT_BRANCH: &str = "master";

/// One ref as a remote advertises it, with tags peeled to their commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full name, like `refs/heads/main` or `refs/tags/v1.0.0`.
    pub name: String,
    /// The commit the ref ultimately points to (annotated tags peeled), hex.
    pub commit: String,
}

/// The ref a `GitRepository` asks for, after Flux's precedence is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// A commit, optionally on a branch (the branch is then fetched to reach it).
    Commit {
        sha: String,
        branch: Option<String>,
    },
    /// A full ref name such as `refs/pull/1/head` or `refs/heads/main`.
    Name(String),
    /// A semver constraint over the tags.
    Semver(String),
    Tag(String),
    Branch(String),
}

impl Wanted {
    /// Applies Flux's precedence: commit > name > semver > tag > branch.
    pub fn from_ref(r: Option<&GitRepositoryRef>) -> Wanted {
        let nonempty = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let Some(r) = r else {
            return Wanted::Branch(DEFAULT_BRANCH.to_string());
        };
        if let Some(sha) = nonempty(&r.commit) {
            return Wanted::Commit {
                sha: sha.to_ascii_lowercase(),
                branch: nonempty(&r.branch),
            };
        }
        if let Some(name) = nonempty(&r.name) {
            return Wanted::Name(name);
        }
        if let Some(semver) = nonempty(&r.semver) {
            return Wanted::Semver(semver);
        }
        if let Some(tag) = nonempty(&r.tag) {
            return Wanted::Tag(tag);
        }
        Wanted::Branch(nonempty(&r.branch).unwrap_or_else(|| DEFAULT_BRANCH.to_string()))
    }

    /// The ref prefixes a ref listing needs for this selection (the server
    /// filters on them), so a no-change poll transfers as little as possible.
    pub fn listing_prefixes(&self) -> Vec<String> {
        match self {
            Wanted::Commit {
                branch: Some(b), ..
            } => vec![format!("refs/heads/{b}")],
            Wanted::Commit { branch: None, .. } => vec![],
            Wanted::Name(n) => vec![n.clone()],
            Wanted::Semver(_) => vec!["refs/tags/".to_string()],
            Wanted::Tag(t) => vec![format!("refs/tags/{t}")],
            Wanted::Branch(b) => vec![format!("refs/heads/{b}")],
        }
    }

    /// Checks the spelling of the selection; `Err` is a spec error that no
    /// retry can fix.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Wanted::Commit { sha, .. } => {
                if sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(())
                } else {
                    Err(format!(
                        "invalid commit '{sha}': expected a full 40 character SHA-1 hex"
                    ))
                }
            }
            Wanted::Semver(c) => Constraint::parse(c).map(|_| ()).map_err(|e| e.to_string()),
            Wanted::Name(n) if !n.starts_with("refs/") && n != "HEAD" => {
                Err(format!("invalid ref name '{n}': must start with 'refs/'"))
            }
            _ => Ok(()),
        }
    }
}

/// What was selected on the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The full ref name to fetch, `None` for a bare commit.
    pub ref_name: Option<String>,
    /// The commit, hex.
    pub commit: String,
    /// Flux's revision string, like `main@sha1:<hex>`.
    pub revision: String,
}

/// Why no ref could be selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// The wanted ref is not on the remote (names the ref like Flux does).
    NotFound(String),
    /// No tag satisfies the semver constraint.
    NoSemverMatch(String),
    InvalidConstraint(String),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NotFound(r) => write!(f, "couldn't find remote ref \"{r}\""),
            SelectError::NoSemverMatch(c) => write!(f, "no match found for semver: {c}"),
            SelectError::InvalidConstraint(e) => write!(f, "{e}"),
        }
    }
}

/// Flux's revision spelling for a named ref and a commit.
pub fn revision_for(ref_name: Option<&str>, commit: &str) -> String {
    match ref_name {
        None => format!("sha1:{commit}"),
        Some(name) => {
            let short = name
                .strip_prefix("refs/heads/")
                .or_else(|| name.strip_prefix("refs/tags/"))
                .unwrap_or(name);
            format!("{short}@sha1:{commit}")
        }
    }
}

/// Flux's revision for a selection: branches and tags by short name, `name`
/// refs by full name, bare commits as `sha1:<hex>`, commit-on-branch as
/// `<branch>@sha1:<hex>`.
fn revision_of(wanted: &Wanted, ref_name: Option<&str>, commit: &str) -> String {
    match wanted {
        Wanted::Name(n) => format!("{n}@sha1:{commit}"),
        Wanted::Commit {
            branch: Some(b), ..
        } => format!("{b}@sha1:{commit}"),
        Wanted::Commit { branch: None, .. } => format!("sha1:{commit}"),
        _ => revision_for(ref_name, commit),
    }
}

/// Finds the wanted ref among `refs` (a remote listing).
pub fn select(wanted: &Wanted, refs: &[RemoteRef]) -> Result<Selected, SelectError> {
    let find = |full: &str| refs.iter().find(|r| r.name == full);
    match wanted {
        Wanted::Commit { sha, branch } => {
            // The commit is fetched by id; with a branch, the branch must exist.
            if let Some(b) = branch {
                let full = format!("refs/heads/{b}");
                if find(&full).is_none() {
                    return Err(SelectError::NotFound(full));
                }
            }
            Ok(Selected {
                ref_name: None,
                commit: sha.clone(),
                revision: revision_of(wanted, None, sha),
            })
        }
        Wanted::Name(n) => {
            let r = find(n).ok_or_else(|| SelectError::NotFound(n.clone()))?;
            Ok(Selected {
                ref_name: Some(r.name.clone()),
                commit: r.commit.clone(),
                revision: revision_of(wanted, None, &r.commit),
            })
        }
        Wanted::Tag(t) => {
            let full = format!("refs/tags/{t}");
            let r = find(&full).ok_or(SelectError::NotFound(full))?;
            Ok(Selected {
                ref_name: Some(r.name.clone()),
                commit: r.commit.clone(),
                revision: revision_of(wanted, Some(&r.name), &r.commit),
            })
        }
        Wanted::Branch(b) => {
            let full = format!("refs/heads/{b}");
            let r = find(&full).ok_or(SelectError::NotFound(full))?;
            Ok(Selected {
                ref_name: Some(r.name.clone()),
                commit: r.commit.clone(),
                revision: revision_of(wanted, Some(&r.name), &r.commit),
            })
        }
        Wanted::Semver(c) => {
            let constraint =
                Constraint::parse(c).map_err(|e| SelectError::InvalidConstraint(e.to_string()))?;
            let mut best: Option<(semver::Version, &RemoteRef)> = None;
            for r in refs {
                let Some(tag) = r.name.strip_prefix("refs/tags/") else {
                    continue;
                };
                let Some(v) = parse_lenient(tag) else {
                    continue;
                };
                if !constraint.matches(&v) {
                    continue;
                }
                // Highest version wins; on equal versions (v1.0.0 and 1.0.0)
                // the lexically greater tag wins, which is deterministic.
                let better = match &best {
                    None => true,
                    Some((bv, br)) => v > *bv || (v == *bv && r.name > br.name),
                };
                if better {
                    best = Some((v, r));
                }
            }
            let (_, r) = best.ok_or_else(|| SelectError::NoSemverMatch(c.clone()))?;
            Ok(Selected {
                ref_name: Some(r.name.clone()),
                commit: r.commit.clone(),
                revision: revision_of(wanted, Some(&r.name), &r.commit),
            })
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, commit: &str) -> RemoteRef {
        RemoteRef {
            name: name.to_string(),
            commit: commit.to_string(),
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn gref(
        branch: Option<&str>,
        tag: Option<&str>,
        semver: Option<&str>,
        name: Option<&str>,
        commit: Option<&str>,
    ) -> GitRepositoryRef {
        GitRepositoryRef {
            branch: branch.map(Into::into),
            tag: tag.map(Into::into),
            semver: semver.map(Into::into),
            name: name.map(Into::into),
            commit: commit.map(Into::into),
        }
    }

    #[test]
    fn precedence_is_commit_name_semver_tag_branch() {
        let all = gref(
            Some("dev"),
            Some("v1"),
            Some(">=1"),
            Some("refs/pull/1/head"),
            Some(A),
        );
        assert_eq!(
            Wanted::from_ref(Some(&all)),
            Wanted::Commit {
                sha: A.into(),
                branch: Some("dev".into())
            }
        );
        let no_commit = gref(
            Some("dev"),
            Some("v1"),
            Some(">=1"),
            Some("refs/pull/1/head"),
            None,
        );
        assert_eq!(
            Wanted::from_ref(Some(&no_commit)),
            Wanted::Name("refs/pull/1/head".into())
        );
        let no_name = gref(Some("dev"), Some("v1"), Some(">=1"), None, None);
        assert_eq!(
            Wanted::from_ref(Some(&no_name)),
            Wanted::Semver(">=1".into())
        );
        let no_semver = gref(Some("dev"), Some("v1"), None, None, None);
        assert_eq!(Wanted::from_ref(Some(&no_semver)), Wanted::Tag("v1".into()));
        let branch = gref(Some("dev"), None, None, None, Some(""));
        assert_eq!(
            Wanted::from_ref(Some(&branch)),
            Wanted::Branch("dev".into())
        );
        assert_eq!(Wanted::from_ref(None), Wanted::Branch("master".into()));
        assert_eq!(
            Wanted::from_ref(Some(&gref(None, None, None, None, None))),
            Wanted::Branch("master".into())
        );
    }

    #[test]
    fn revisions_are_spelled_like_flux() {
        let refs = vec![
            r("refs/heads/main", A),
            r("refs/tags/v1.0.0", B),
            r("refs/tags/v1.2.0", C),
            r("refs/tags/v2.0.0", A),
            r("refs/pull/7/head", C),
        ];
        let sel = |w: Wanted| select(&w, &refs).unwrap().revision;
        assert_eq!(sel(Wanted::Branch("main".into())), format!("main@sha1:{A}"));
        assert_eq!(
            sel(Wanted::Tag("v1.0.0".into())),
            format!("v1.0.0@sha1:{B}")
        );
        assert_eq!(sel(Wanted::Semver("~1".into())), format!("v1.2.0@sha1:{C}"));
        assert_eq!(
            sel(Wanted::Name("refs/pull/7/head".into())),
            format!("refs/pull/7/head@sha1:{C}")
        );
        assert_eq!(
            sel(Wanted::Commit {
                sha: B.into(),
                branch: None
            }),
            format!("sha1:{B}")
        );
        assert_eq!(
            sel(Wanted::Commit {
                sha: B.into(),
                branch: Some("main".into())
            }),
            format!("main@sha1:{B}")
        );
        assert_eq!(
            revision_for(Some("refs/heads/feature/x"), A),
            format!("feature/x@sha1:{A}")
        );
    }

    #[test]
    fn missing_refs_are_named() {
        let refs = vec![r("refs/heads/main", A)];
        let e = select(&Wanted::Branch("gone".into()), &refs).unwrap_err();
        assert_eq!(
            e.to_string(),
            "couldn't find remote ref \"refs/heads/gone\""
        );
        let e = select(&Wanted::Tag("v9".into()), &refs).unwrap_err();
        assert_eq!(e.to_string(), "couldn't find remote ref \"refs/tags/v9\"");
        let e = select(
            &Wanted::Commit {
                sha: A.into(),
                branch: Some("x".into()),
            },
            &refs,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "couldn't find remote ref \"refs/heads/x\"");
        let e = select(&Wanted::Semver(">=5".into()), &refs).unwrap_err();
        assert_eq!(e.to_string(), "no match found for semver: >=5");
    }

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
    fn semver_picks_the_highest_matching_tag() {
        let refs = vec![
            r("refs/tags/v1.0.0", A),
            r("refs/tags/1.1.0", B),
            r("refs/tags/v1.10.0", C),
            r("refs/tags/v2.0.0", A),
            r("refs/tags/latest", A),
            r("refs/heads/v9.0.0", A),
        ];
        let s = select(&Wanted::Semver("<2.0.0".into()), &refs).unwrap();
        assert_eq!(s.revision, format!("v1.10.0@sha1:{C}"));
        assert_eq!(s.ref_name.as_deref(), Some("refs/tags/v1.10.0"));
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
    fn commit_validation() {
        assert!(
            Wanted::Commit {
                sha: A.into(),
                branch: None
            }
            .validate()
            .is_ok()
        );
        assert!(
            Wanted::Commit {
                sha: "abc".into(),
                branch: None
            }
            .validate()
            .is_err()
        );
        assert!(Wanted::Name("main".into()).validate().is_err());
        assert!(Wanted::Semver("><".into()).validate().is_err());
    }
}
