//! Remote resources (`resources: - https://github.com/org/repo//dir?ref=v1`).
//!
//! The engine parses kustomize's remote-target syntax and asks a
//! [`RemoteLoader`] supplied by the caller for a local checkout; the crate
//! itself does no network I/O (the sluice binary plugs in its Git client).

use std::path::PathBuf;

/// A parsed remote target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSpec {
    /// What to clone (`https://host/org/repo.git`, `git@host:org/repo`, ...).
    pub clone_url: String,
    /// Directory inside the repository to build (may be empty).
    pub path: String,
    /// Branch, tag or commit (`?ref=` or `?version=`), if given.
    pub git_ref: Option<String>,
    /// Whether to fetch submodules (`?submodules=`; default true).
    pub submodules: bool,
}

/// Fetches repositories for remote resources.
pub trait RemoteLoader: Send + Sync {
    /// Makes `spec`'s repository available locally at the requested ref and
    /// returns the root of its checkout.
    fn fetch(&self, spec: &RepoSpec) -> Result<PathBuf, String>;
}

/// Whether `s` names a remote target rather than a local path.
pub fn is_remote(s: &str) -> bool {
    parse(s).is_some()
}

/// Parses kustomize's remote target syntax; `None` for local paths.
pub fn parse(s: &str) -> Option<RepoSpec> {
    let s = s.strip_prefix("git::").unwrap_or(s);
    let (body, query) = match s.split_once('?') {
        Some((b, q)) => (b, q),
        None => (s, ""),
    };
    let mut git_ref = None;
    let mut submodules = true;
    for kv in query.split('&').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "ref" | "version" if !v.is_empty() => git_ref = Some(v.to_string()),
            "submodules" => submodules = v != "false",
            _ => {}
        }
    }
    // Scheme and host.
    let (prefix, rest) = if let Some(r) = body.strip_prefix("https://") {
        ("https://", r)
    } else if let Some(r) = body.strip_prefix("http://") {
        ("http://", r)
    } else if let Some(r) = body.strip_prefix("ssh://") {
        ("ssh://", r)
    } else if let Some(r) = body.strip_prefix("file://") {
        ("file://", r)
    } else if body.starts_with("git@") {
        ("", body)
    } else if body.starts_with("github.com/")
        || body.starts_with("gitlab.com/")
        || body.starts_with("bitbucket.org/")
    {
        ("https://", body)
    } else {
        return None;
    };
    // Split the repository from the path inside it.
    let (repo, path) = if let Some((scheme_host, after)) = split_double_slash(rest) {
        (scheme_host.to_string(), after.to_string())
    } else if let Some(i) = rest.find(".git/") {
        (rest[..i + 4].to_string(), rest[i + 5..].to_string())
    } else if rest.ends_with(".git") {
        (rest.to_string(), String::new())
    } else if prefix.is_empty() {
        // scp-like git@host:org/repo[/path...]
        let (host, after) = rest.split_once(':')?;
        let parts: Vec<&str> = after.splitn(3, '/').collect();
        if parts.len() < 2 {
            return None;
        }
        (
            format!("{host}:{}/{}", parts[0], parts[1]),
            parts.get(2).copied().unwrap_or("").to_string(),
        )
    } else {
        // host/org/repo[/path...]
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        if parts.len() < 3 {
            return None;
        }
        (
            format!("{}/{}/{}", parts[0], parts[1], parts[2]),
            parts.get(3).copied().unwrap_or("").to_string(),
        )
    };
    let path = path.trim_matches('/').to_string();
    Some(RepoSpec {
        clone_url: format!("{prefix}{repo}"),
        path,
        git_ref,
        submodules,
    })
}

/// Splits at the first `//` that follows the host.
fn split_double_slash(rest: &str) -> Option<(&str, &str)> {
    let i = rest.find("//")?;
    Some((&rest[..i], &rest[i + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kustomize_remote_targets() {
        let s = parse("https://github.com/org/repo//deploy/base?ref=v1.2.0").unwrap();
        assert_eq!(s.clone_url, "https://github.com/org/repo");
        assert_eq!(s.path, "deploy/base");
        assert_eq!(s.git_ref.as_deref(), Some("v1.2.0"));

        let s = parse("github.com/org/repo/deploy/base?version=main").unwrap();
        assert_eq!(s.clone_url, "https://github.com/org/repo");
        assert_eq!(s.path, "deploy/base");
        assert_eq!(s.git_ref.as_deref(), Some("main"));

        let s = parse("https://example.com/scm/repo.git/sub?ref=abc").unwrap();
        assert_eq!(s.clone_url, "https://example.com/scm/repo.git");
        assert_eq!(s.path, "sub");

        let s = parse("git@github.com:org/repo.git//x?ref=v1").unwrap();
        assert_eq!(s.clone_url, "git@github.com:org/repo.git");
        assert_eq!(s.path, "x");

        assert!(parse("../base").is_none());
        assert!(parse("deployment.yaml").is_none());
    }
}
