//! Source revisions as Flux writes them: `<named pointer>@<algorithm>:<hash>`, e.g.
//! `main@sha1:5394cb7f48332b2de7c17dd8b8384bbc84b7e738`, `v1.2.3@sha1:…`,
//! `refs/pull/42/head@sha1:…`, or `sha1:…` when only a commit was asked for.

use std::fmt;
use std::str::FromStr;

/// A parsed revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revision {
    /// The branch, tag or reference name the hash was resolved from, if any.
    pub reference: Option<String>,
    /// The digest algorithm, e.g. `sha1` (Git) or `sha256`.
    pub algorithm: String,
    /// The hash, e.g. the commit SHA.
    pub hash: String,
}

/// Why a string is not a revision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid revision {0:?}: want [<reference>@]<algorithm>:<hash>")]
pub struct RevisionError(pub String);

fn is_algorithm(s: &str) -> bool {
    !s.is_empty()
        && s.split(['.', '+', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn is_hash(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

impl Revision {
    /// A revision of `reference` (a branch, tag or reference name, or none) at `hash`.
    pub fn new(reference: Option<&str>, algorithm: &str, hash: &str) -> Self {
        Self {
            reference: reference.filter(|r| !r.is_empty()).map(str::to_owned),
            algorithm: algorithm.to_owned(),
            hash: hash.to_owned(),
        }
    }

    /// A Git revision: `<reference>@sha1:<commit>`, or `sha1:<commit>` without a reference.
    pub fn git(reference: Option<&str>, commit: &str) -> Self {
        Self::new(reference, "sha1", commit)
    }

    /// Parses `<reference>@<algorithm>:<hash>` or `<algorithm>:<hash>`. Also reads the legacy
    /// Git form `<branch>/<40 hex digits>` written by Flux before v0.37.
    pub fn parse(revision: &str) -> Result<Self, RevisionError> {
        let invalid = || RevisionError(revision.to_owned());
        let (reference, digest) = match revision.rsplit_once('@') {
            Some((reference, digest)) => (Some(reference), digest),
            None => (None, revision),
        };
        if let Some((algorithm, hash)) = digest.split_once(':')
            && is_algorithm(algorithm)
            && is_hash(hash)
        {
            return Ok(Self::new(reference, algorithm, hash));
        }
        if reference.is_none()
            && let Some((branch, sha)) = revision.rsplit_once('/')
            && sha.len() == 40
            && sha.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Ok(Self::git(Some(branch), sha));
        }
        Err(invalid())
    }

    /// The `<algorithm>:<hash>` part.
    pub fn digest(&self) -> String {
        format!("{}:{}", self.algorithm, self.hash)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Some(reference) => write!(f, "{reference}@{}:{}", self.algorithm, self.hash),
            None => write!(f, "{}:{}", self.algorithm, self.hash),
        }
    }
}

impl FromStr for Revision {
    type Err = RevisionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738";

    #[test]
    fn branch_revision() {
        let r = Revision::git(Some("main"), SHA);
        assert_eq!(r.to_string(), format!("main@sha1:{SHA}"));
        assert_eq!(Revision::parse(&r.to_string()).unwrap(), r);
        assert_eq!(r.digest(), format!("sha1:{SHA}"));
    }

    #[test]
    fn reference_names_may_contain_slashes_and_at_signs() {
        let s = format!("refs/pull/42/head@sha1:{SHA}");
        let r = Revision::parse(&s).unwrap();
        assert_eq!(r.reference.as_deref(), Some("refs/pull/42/head"));
        assert_eq!(r.to_string(), s);

        let r = Revision::parse(&format!("feat@x@sha1:{SHA}")).unwrap();
        assert_eq!(r.reference.as_deref(), Some("feat@x"));
    }

    #[test]
    fn commit_only_revision() {
        let r = Revision::parse(&format!("sha1:{SHA}")).unwrap();
        assert_eq!(r.reference, None);
        assert_eq!(r.hash, SHA);
        assert_eq!(Revision::git(None, SHA).to_string(), format!("sha1:{SHA}"));
        assert_eq!(
            Revision::git(Some(""), SHA).to_string(),
            format!("sha1:{SHA}")
        );
    }

    #[test]
    fn sha256_and_tags() {
        let r = Revision::parse("v1.2.3@sha256:abcdef").unwrap();
        assert_eq!(r.reference.as_deref(), Some("v1.2.3"));
        assert_eq!(r.algorithm, "sha256");
    }

    #[test]
    fn legacy_form() {
        let r = Revision::parse(&format!("main/{SHA}")).unwrap();
        assert_eq!(r, Revision::git(Some("main"), SHA));
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "main",
            "main@",
            "main@sha1:",
            "@:",
            "main/abc",
            "SHA1:abc",
        ] {
            assert!(Revision::parse(s).is_err(), "{s:?}");
        }
    }
}
