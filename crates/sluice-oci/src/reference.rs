//! `oci://host[:port]/path` URLs: the repository a source points at, and the
//! tag or digest an artifact URL (`oci://host/repo:tag`, as `flux push
//! artifact` takes) names.

use std::fmt;

use crate::error::{Error, Result};

/// The registry host Docker Hub repositories are served from (as
/// go-containerregistry spells it).
pub const DOCKER_HUB: &str = "index.docker.io";

/// A repository in a registry: `ghcr.io` + `org/app`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
}

/// A tag or a digest inside a repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Tag(String),
    /// `sha256:<hex>`.
    Digest(String),
}

impl Target {
    /// Reads `s` as a digest when it looks like one (`<alg>:<hex>`), else as
    /// a tag; both are validated.
    pub fn parse(s: &str) -> Result<Target> {
        if s.contains(':') {
            validate_digest(s)?;
            Ok(Target::Digest(s.to_string()))
        } else {
            validate_tag(s)?;
            Ok(Target::Tag(s.to_string()))
        }
    }

    /// What goes after `/manifests/` in the registry API.
    pub fn as_str(&self) -> &str {
        match self {
            Target::Tag(t) | Target::Digest(t) => t,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An artifact URL: a repository and the tag or digest in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactUrl {
    pub reference: Reference,
    pub target: Target,
}

impl ArtifactUrl {
    /// Parses `oci://host/repo:tag` or `oci://host/repo@sha256:<hex>`; with
    /// neither, the tag is `latest` (as go-containerregistry's default).
    pub fn parse(url: &str) -> Result<ArtifactUrl> {
        let rest = strip_scheme(url)?;
        let (repo_part, target) = if let Some((repo, digest)) = rest.split_once('@') {
            validate_digest(digest).map_err(|e| e.context(format!("invalid URL '{url}'")))?;
            (repo, Target::Digest(digest.to_string()))
        } else {
            let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
            match rest[last_slash..].rfind(':') {
                Some(i) if last_slash > 0 => {
                    let tag = &rest[last_slash + i + 1..];
                    validate_tag(tag).map_err(|e| e.context(format!("invalid URL '{url}'")))?;
                    (&rest[..last_slash + i], Target::Tag(tag.to_string()))
                }
                _ => (rest, Target::Tag("latest".to_string())),
            }
        };
        let reference =
            parse_repository(repo_part).map_err(|e| e.context(format!("invalid URL '{url}'")))?;
        Ok(ArtifactUrl { reference, target })
    }
}

impl fmt::Display for ArtifactUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Tag(t) => write!(f, "{}:{t}", self.reference),
            Target::Digest(d) => write!(f, "{}@{d}", self.reference),
        }
    }
}

impl Reference {
    /// Parses an OCIRepository / HelmRepository `url`: `oci://` followed by
    /// a registry host (with an optional port) and a repository path. A tag
    /// or digest is refused, as Flux does (`ref` selects those).
    pub fn parse(url: &str) -> Result<Reference> {
        let rest = strip_scheme(url)?;
        if rest.contains('@') {
            return Err(Error::invalid(format!(
                "invalid URL '{url}': URL must not contain a digest; use spec.ref.digest"
            )));
        }
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        if last_slash > 0
            && let Some(i) = rest[last_slash..].find(':')
        {
            return Err(Error::invalid(format!(
                "URL must not contain a tag; remove ':{}'",
                &rest[last_slash + i + 1..]
            )));
        }
        parse_repository(rest).map_err(|e| e.context(format!("invalid URL '{url}'")))
    }

    /// A reference from its parts, validated (`registry` is `host[:port]`).
    pub fn new(registry: &str, repository: &str) -> Result<Reference> {
        parse_repository(&format!("{registry}/{repository}"))
    }

    /// `host[:port]`; Docker Hub is `index.docker.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, like `org/app` (`library/nginx` on Docker Hub).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The repository one level down: `host/charts` + `podinfo` is
    /// `host/charts/podinfo` (how Helm names a chart under an `oci://` repository).
    pub fn join(&self, name: &str) -> Result<Reference> {
        Reference::new(&self.registry, &format!("{}/{name}", self.repository))
    }

    /// `oci://host/repo`.
    pub fn url(&self) -> String {
        format!("oci://{self}")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

fn strip_scheme(url: &str) -> Result<&str> {
    let Some(rest) = url.strip_prefix("oci://") else {
        return Err(Error::invalid(format!(
            "invalid URL '{url}': the URL must start with 'oci://'"
        )));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(Error::invalid(format!(
            "invalid URL '{url}': no registry host"
        )));
    }
    Ok(rest)
}

/// `host[:port]/path` (no tag) into a [`Reference`], as go-containerregistry
/// reads a repository name: a first component without a `.` or `:` (and not
/// `localhost`) is a Docker Hub repository.
fn parse_repository(s: &str) -> Result<Reference> {
    let (first, rest) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (registry, repository) = match (is_host, rest) {
        (true, Some(r)) => (first.to_ascii_lowercase(), r.to_string()),
        (true, None) => {
            return Err(Error::invalid(format!(
                "'{s}' names a registry but no repository"
            )));
        }
        (false, _) => (DOCKER_HUB.to_string(), s.to_string()),
    };
    let registry = match registry.as_str() {
        "docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    validate_host(&registry)?;
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    validate_repository(&repository)?;
    Ok(Reference {
        registry,
        repository,
    })
}

fn validate_host(host: &str) -> Result<()> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(Error::invalid(format!(
            "registry '{host}': invalid port '{p}'"
        )));
    }
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid registry host '{host}'")))
    }
}

/// Repository path components: lowercase alphanumerics separated by `.`,
/// `_`, `__` or dashes (the distribution grammar, simplified).
fn validate_repository(repo: &str) -> Result<()> {
    let bad = || {
        Error::invalid(format!(
            "invalid repository '{repo}': path components must be lowercase letters, digits and separators (. _ -)"
        ))
    };
    if repo.is_empty() || repo.len() > 255 {
        return Err(bad());
    }
    for comp in repo.split('/') {
        let bytes = comp.as_bytes();
        let starts_ends_alnum = bytes
            .first()
            .zip(bytes.last())
            .is_some_and(|(a, b)| is_lower_alnum(*a) && is_lower_alnum(*b));
        if !starts_ends_alnum
            || !bytes
                .iter()
                .all(|b| is_lower_alnum(*b) || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(bad());
        }
    }
    Ok(())
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid tag '{tag}': a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )))
    }
}

/// A digest: `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase.
pub fn validate_digest(digest: &str) -> Result<()> {
    let ok = match digest.split_once(':') {
        Some(("sha256", hex)) => is_hex(hex, 64),
        Some(("sha512", hex)) => is_hex(hex, 128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid digest '{digest}': expected sha256:<64 hex digits>"
        )))
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn repositories() {
        let r = Reference::parse("oci://ghcr.io/stefanprodan/manifests/podinfo").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "stefanprodan/manifests/podinfo");
        assert_eq!(r.to_string(), "ghcr.io/stefanprodan/manifests/podinfo");
        let r = Reference::parse("oci://127.0.0.1:5000/charts/").unwrap();
        assert_eq!((r.registry(), r.repository()), ("127.0.0.1:5000", "charts"));
        let r = Reference::parse("oci://localhost/app").unwrap();
        assert_eq!(r.registry(), "localhost");
        let r = Reference::parse("oci://docker.io/nginx").unwrap();
        assert_eq!(
            (r.registry(), r.repository()),
            (DOCKER_HUB, "library/nginx")
        );
        let r = Reference::parse("oci://stefanprodan/podinfo").unwrap();
        assert_eq!(
            (r.registry(), r.repository()),
            (DOCKER_HUB, "stefanprodan/podinfo")
        );
        assert_eq!(
            r.join("chart").unwrap().repository(),
            "stefanprodan/podinfo/chart"
        );
    }

    #[test]
    fn bad_repository_urls_say_why() {
        let e = Reference::parse("https://ghcr.io/x").unwrap_err();
        assert!(e.to_string().contains("must start with 'oci://'"), "{e}");
        let e = Reference::parse("oci://ghcr.io/org/app:v1").unwrap_err();
        assert_eq!(e.to_string(), "URL must not contain a tag; remove ':v1'");
        let e = Reference::parse(&format!("oci://ghcr.io/app@{D}")).unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
        let e = Reference::parse("oci://ghcr.io/Org/App").unwrap_err();
        assert!(
            e.to_string().contains("invalid repository 'Org/App'"),
            "{e}"
        );
        assert!(Reference::parse("oci://").is_err());
        assert!(Reference::parse("oci://ghcr.io").is_err());
        assert!(Reference::parse("oci://host:99999/x").is_err());
        assert!(Reference::parse("oci://ghcr.io/a//b").is_err());
    }

    #[test]
    fn artifact_urls() {
        let a = ArtifactUrl::parse("oci://localhost:5000/org/app:v1.0.0").unwrap();
        assert_eq!(a.reference.registry(), "localhost:5000");
        assert_eq!(a.reference.repository(), "org/app");
        assert_eq!(a.target, Target::Tag("v1.0.0".into()));
        assert_eq!(a.to_string(), "localhost:5000/org/app:v1.0.0");
        let a = ArtifactUrl::parse("oci://localhost:5000/org/app").unwrap();
        assert_eq!(a.target, Target::Tag("latest".into()));
        let a = ArtifactUrl::parse(&format!("oci://ghcr.io/org/app@{D}")).unwrap();
        assert_eq!(a.target, Target::Digest(D.into()));
        assert!(ArtifactUrl::parse("oci://ghcr.io/org/app:-bad").is_err());
        assert!(ArtifactUrl::parse("oci://ghcr.io/org/app@sha256:abc").is_err());
        assert_eq!(Target::parse("v1").unwrap(), Target::Tag("v1".into()));
        assert_eq!(Target::parse(D).unwrap(), Target::Digest(D.into()));
        assert!(Target::parse("md5:00").is_err());
    }
}
