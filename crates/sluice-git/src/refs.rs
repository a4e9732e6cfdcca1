//! Which remote ref a `GitRepository` wants, how it is found among the refs a
//! remote advertises, and how the resulting revision is spelled.
//!
//! Flux's precedence is `commit` > `name` > `semver` > `tag` > `branch`, and
//! `master` when no ref is given. Revisions are `<ref>@sha1:<hex>` where
//! `<ref>` is the branch name, the tag name, or the full ref name for `name`;
//! a bare commit gives `sha1:<hex>`.

use std::fmt;

use sluice_api::source::GitRepositoryRef;
pub use sluice_semver::{Constraint, ConstraintError, parse_lenient};

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
            let mut best: Option<(sluice_semver::Version, &RemoteRef)> = None;
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
