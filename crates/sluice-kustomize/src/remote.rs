//! Remote resources (`resources: - https://github.com/org/repo//dir?ref=v1`)
//! and plain HTTP(S) files (`resources: - https://example.com/crds.yaml`).
//!
//! The engine parses kustomize's remote-target syntax and asks a
//! [`RemoteLoader`] supplied by the caller for a local checkout (or for a
//! file's bytes); the crate itself does no network I/O (the sluice binary
//! plugs in its Git and HTTP clients from `sluice-source`).
//!
//! [`parse`] follows kustomize v5's `NewRepoSpecFromURL`: an optional
//! `git::` prefix (ignored), a scheme (`https://`, `http://`, `ssh://`,
//! `file://`) or scp-like `user@host:path` (also `github.com/...` without a
//! scheme), then the repository path and the kustomization root inside it,
//! split at `_git/<repo>`, `//`, or `.git`, else after two segments
//! (`org/repo`; a `file://` URL without a marker is all repository).
//! Query parameters: `ref` (or `version`; `ref` wins), `submodules`
//! (default true) and `timeout` (seconds or a Go duration; default 27s,
//! at most [`MAX_TIMEOUT`]).

use std::path::PathBuf;
use std::time::Duration;

/// kustomize's default for `?timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(27);

/// The longest `?timeout=` obeyed: a larger value (`?timeout=100000h`) is
/// lowered to this, so a repository cannot make a build wait on a remote
/// base for hours. A value too large to represent at all
/// (`?timeout=99999999999999999999h`) is malformed and, as in kustomize,
/// gives [`DEFAULT_TIMEOUT`].
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);

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
    /// Time allowed for fetching (`?timeout=`; default 27s, at most
    /// [`MAX_TIMEOUT`]).
    pub timeout: Duration,
}

impl RepoSpec {
    /// Whether the path inside the repository climbs out of it (`../x`),
    /// which kustomize refuses ("url path exits repo").
    pub fn path_exits_repo(&self) -> bool {
        let mut depth: i32 = 0;
        for c in self.path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    depth -= 1;
                    if depth < 0 {
                        return true;
                    }
                }
                _ => depth += 1,
            }
        }
        false
    }
}

/// Fetches repositories (and plain files) for remote resources.
pub trait RemoteLoader: Send + Sync {
    /// Makes `spec`'s repository available locally at the requested ref and
    /// returns the root of its checkout (the repository root, not
    /// `spec.path`).
    fn fetch(&self, spec: &RepoSpec) -> Result<PathBuf, String>;

    /// Fetches the body of an `http://` or `https://` URL named in
    /// `resources:` (kustomize reads such a URL as a file). An error should
    /// say what went wrong (e.g. the HTTP status).
    fn fetch_file(&self, url: &str) -> Result<Vec<u8>, String> {
        Err(format!(
            "fetching '{}': plain HTTP(S) resources are not supported by this loader",
            redact_url(url)
        ))
    }

    /// [`RemoteLoader::fetch_file`] within `timeout` at most (the time a
    /// build has left). Loaders with their own timeout should honour the
    /// shorter of the two; the default ignores it.
    fn fetch_file_within(
        &self,
        url: &str,
        timeout: std::time::Duration,
    ) -> Result<Vec<u8>, String> {
        let _ = timeout;
        self.fetch_file(url)
    }
}

/// Hides the credentials of every URL in `text` (a URL, or a message that
/// quotes URLs), for errors and logs: `https://user:pass@host` becomes
/// `https://user:***@host`, and a bare token `https://TOKEN@host` becomes
/// `https://***@host` (a user name alone cannot be told from a token). The
/// user of an `ssh://` URL is no secret and is kept, as are scp-like
/// `git@host:path` addresses, which carry no password.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let before = &rest[..i];
        let scheme_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(j, c)| j + c.len_utf8());
        let scheme = before[scheme_start..].to_ascii_lowercase();
        let after = &rest[i + 3..];
        // The authority ends at the path, query or fragment, or where the
        // text around the URL resumes. Userinfo may hold any sub-delimiter,
        // so those do not end it; the last '@' ends the userinfo (redacting
        // too much rather than too little).
        let authority_len = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '`' | '<' | '>' | '\\') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        out.push_str(&rest[..i + 3]);
        match after[..authority_len].rfind('@') {
            Some(at) => {
                let userinfo = &after[..at];
                let is_ssh = matches!(scheme.as_str(), "ssh" | "git+ssh" | "ssh+git");
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None if is_ssh => out.push_str(userinfo),
                    None => out.push_str("***"),
                }
                out.push('@');
                rest = &after[at + 1..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// Whether `s` names a remote target rather than a local path.
pub fn is_remote(s: &str) -> bool {
    parse(s).is_some()
}

/// Whether `s` is an `http://` or `https://` URL (kustomize first tries to
/// read such an entry as a file).
pub fn is_http_url(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Whether a remote entry is unmistakably a Git repository: a `git::`
/// prefix, a non-HTTP scheme or scp-like form, an explicit repository
/// marker (`//`, `.git`, `_git/`), or a Git query parameter (`ref`,
/// `version`, `submodules`, `timeout`). Other `http(s)://` URLs are tried
/// as a file first, as kustomize does, and as a repository only if that
/// fails.
pub fn is_unmistakably_git(s: &str) -> bool {
    if parse(s).is_none() {
        return false;
    }
    if !is_http_url(s) {
        return true;
    }
    let (body, query) = s.split_once('?').unwrap_or((s, ""));
    let after_scheme = body.split_once("://").map(|(_, r)| r).unwrap_or(body);
    let path = after_scheme.split_once('/').map(|(_, p)| p).unwrap_or("");
    if path.contains("//")
        || path.contains("_git/")
        || path.split('/').any(|seg| seg.ends_with(".git"))
    {
        return true;
    }
    query.split('&').any(|kv| {
        let k = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
        matches!(k, "ref" | "version" | "submodules" | "timeout")
    })
}

/// Parses kustomize's remote target syntax; `None` for local paths and for
/// anything kustomize would not accept as a repository URL.
pub fn parse(s: &str) -> Option<RepoSpec> {
    if s.starts_with('/') {
        return None;
    }
    let (n, query) = s.split_once('?').unwrap_or((s, ""));
    let (git_ref, timeout, submodules) = parse_query(query);
    let (host, rest) = extract_host(n)?;
    let all_segments = host.starts_with("file://");
    let (repo, path) = split_repo_path(&rest, all_segments)?;
    let path = path.trim_matches('/').to_string();
    Some(RepoSpec {
        clone_url: format!("{host}{repo}"),
        path,
        git_ref,
        submodules,
        timeout,
    })
}

/// Strips `prefix` from `s` ignoring ASCII case.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Splits off the scheme, user name and host; returns the normalized
/// `scheme + user@ + host + separator` and the path after it.
fn extract_host(n: &str) -> Option<(String, String)> {
    let n = strip_prefix_ci(n, "git::").unwrap_or(n);
    let mut scheme = "";
    let mut n = n;
    for p in ["ssh://", "https://", "http://", "file://"] {
        if let Some(r) = strip_prefix_ci(n, p) {
            scheme = p;
            n = r;
            break;
        }
    }
    // A user name: a letter, then letters, digits and dashes, then '@'.
    let mut username = "";
    if let Some(at) = n.find('@') {
        let u = &n[..at];
        let mut chars = u.chars();
        if chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            username = &n[..=at];
            n = &n[at + 1..];
        }
    }
    let std_github =
        strip_prefix_ci(n, "github.com/").is_some() || strip_prefix_ci(n, "github.com:").is_some();
    let accept_scp = scheme.is_empty() && (!username.is_empty() || std_github);
    if scheme.is_empty() && !accept_scp {
        return None;
    }
    if scheme == "file://" {
        return Some((scheme.to_string(), format!("{username}{n}")));
    }
    let mut sep = n.find('/');
    if accept_scp
        && let Some(colon) = n.find(':')
        && (sep.is_none() || (colon > 0 && Some(colon) < sep))
    {
        sep = Some(colon);
    }
    let (mut host, rest) = match sep {
        Some(i) => (n[..=i].to_string(), n[i + 1..].to_string()),
        None => (n.to_string(), String::new()),
    };
    let mut scheme = scheme.to_string();
    let mut username = username.to_string();
    if std_github {
        if scheme.starts_with("ssh://") || !username.is_empty() {
            scheme = String::new();
            host = "github.com:".into();
        } else {
            scheme = "https://".into();
            username = String::new();
            host = "github.com/".into();
        }
    }
    if host.is_empty() {
        return None;
    }
    Some((format!("{scheme}{username}{host}"), rest))
}

/// Splits the repository path from the kustomization root inside it.
fn split_repo_path(n: &str, all_segments: bool) -> Option<(String, String)> {
    let (repo, path) = if let Some(i) = n.find("_git/") {
        let after = &n[i + 5..];
        let (name, sub) = after.split_once('/').unwrap_or((after, ""));
        (format!("{}{name}", &n[..i + 5]), sub.to_string())
    } else if let Some(i) = n.find("//") {
        (n[..i].to_string(), n[i + 2..].to_string())
    } else if let Some(i) = n.find(".git") {
        (n[..i + 4].to_string(), n[i + 4..].to_string())
    } else if all_segments {
        (n.to_string(), String::new())
    } else {
        let segs: Vec<&str> = n.split('/').collect();
        if segs.len() < 2 {
            return None;
        }
        (segs[..2].join("/"), segs[2..].join("/"))
    };
    if repo.is_empty() {
        return None;
    }
    Some((repo, path))
}

/// `ref`/`version`, `timeout` and `submodules` from a query string, with
/// kustomize's defaults for missing, empty or malformed values.
fn parse_query(query: &str) -> (Option<String>, Duration, bool) {
    let mut values: Vec<(String, String)> = Vec::new();
    for kv in query.split('&').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match (percent_decode(k), percent_decode(v)) {
            (Some(k), Some(v)) => values.push((k, v)),
            // Go's url.ParseQuery fails as a whole: all defaults.
            _ => return (None, DEFAULT_TIMEOUT, true),
        }
    }
    let get = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let git_ref = get("ref").or(get("version")).map(str::to_string);
    let timeout = get("timeout")
        .and_then(|t| match t.parse::<i64>() {
            Ok(secs) if secs > 0 => Some(Duration::from_secs(secs as u64)),
            Ok(_) => None,
            Err(_) => parse_go_duration(t),
        })
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(MAX_TIMEOUT);
    let submodules = get("submodules").and_then(parse_go_bool).unwrap_or(true);
    (git_ref, timeout, submodules)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration` for positive values (`90s`, `1m30s`, `1.5h`),
/// in whole nanoseconds with checked arithmetic: any input, however long or
/// large, gives a value or `None`, never a panic. Like Go, a duration past
/// `i64::MAX` nanoseconds (about 292 years) is an error (`None`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    // Fraction digits past this many cannot change the result in
    // nanoseconds (the largest unit, an hour, is 3.6e12 ns).
    const MAX_FRACTION_DIGITS: u32 = 18;
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (int_part, frac_part) = match rest[..num_len].split_once('.') {
            Some((i, f)) => (i, f),
            None => (&rest[..num_len], ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return None;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let mut int: u128 = 0;
        for d in int_part.bytes() {
            int = int
                .checked_mul(10)?
                .checked_add(u128::from(d.wrapping_sub(b'0')))?;
        }
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac_part.bytes().take(MAX_FRACTION_DIGITS as usize) {
            frac = frac * 10 + u128::from(d.wrapping_sub(b'0'));
            scale *= 10;
        }
        let part = int
            .checked_mul(unit_ns)?
            .checked_add(frac.checked_mul(unit_ns)? / scale)?;
        total = total.checked_add(part)?;
        if total > i64::MAX as u128 {
            return None;
        }
    }
    let nanos = u64::try_from(total).ok()?;
    (nanos > 0).then(|| Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, clone URL, path, ref)
    fn check(input: &str, clone_url: &str, path: &str, git_ref: Option<&str>) {
        let s = parse(input).unwrap_or_else(|| panic!("{input} did not parse"));
        assert_eq!(s.clone_url, clone_url, "clone URL of {input}");
        assert_eq!(s.path, path, "path of {input}");
        assert_eq!(s.git_ref.as_deref(), git_ref, "ref of {input}");
    }

    #[test]
    fn parses_github_forms() {
        check(
            "https://github.com/stakater/Reloader/deployments/kubernetes?ref=v1.0.10",
            "https://github.com/stakater/Reloader",
            "deployments/kubernetes",
            Some("v1.0.10"),
        );
        check(
            "https://github.com/org/repo//deploy/base?ref=v1.2.0",
            "https://github.com/org/repo",
            "deploy/base",
            Some("v1.2.0"),
        );
        check(
            "github.com/org/repo/deploy/base?version=main",
            "https://github.com/org/repo",
            "deploy/base",
            Some("main"),
        );
        check(
            "github.com/kubernetes-sigs/kustomize/examples/multibases/dev/?ref=v1.0.6",
            "https://github.com/kubernetes-sigs/kustomize",
            "examples/multibases/dev",
            Some("v1.0.6"),
        );
        check(
            "github.com:org/repo//x",
            "https://github.com/org/repo",
            "x",
            None,
        );
        check(
            "http://github.com/someorg/somerepo/somedir",
            "https://github.com/someorg/somerepo",
            "somedir",
            None,
        );
        check(
            "hTTps://gitHub.com/someorg/somerepo.git/somedir",
            "https://github.com/someorg/somerepo.git",
            "somedir",
            None,
        );
        check(
            "git@github.com:org/repo.git//x?ref=v1",
            "git@github.com:org/repo.git",
            "x",
            Some("v1"),
        );
        check(
            "git@github.com/someorg/somerepo/somepath",
            "git@github.com:someorg/somerepo",
            "somepath",
            None,
        );
        check(
            "ssh://git@github.com/kubernetes-sigs/kustomize//examples/multibases/dev?ref=v1.0.6",
            "git@github.com:kubernetes-sigs/kustomize",
            "examples/multibases/dev",
            Some("v1.0.6"),
        );
        check(
            "org-12345@github.com/kubernetes-sigs/kustomize",
            "org-12345@github.com:kubernetes-sigs/kustomize",
            "",
            None,
        );
        check(
            "git::git@github.com:org/repo",
            "git@github.com:org/repo",
            "",
            None,
        );
        check(
            "https://github.com/org/repo?ref=group/version",
            "https://github.com/org/repo",
            "",
            Some("group/version"),
        );
    }

    #[test]
    fn parses_other_hosts_and_schemes() {
        check(
            "https://example.com/scm/repo.git/sub?ref=abc",
            "https://example.com/scm/repo.git",
            "sub",
            Some("abc"),
        );
        check(
            "git::https://gitlab.com/org/repo//base?ref=v2",
            "https://gitlab.com/org/repo",
            "base",
            Some("v2"),
        );
        check(
            "https://git-codecommit.us-east-2.amazonaws.com/someorg/somerepo/somedir?ref=testbranch",
            "https://git-codecommit.us-east-2.amazonaws.com/someorg/somerepo",
            "somedir",
            Some("testbranch"),
        );
        check(
            "https://username@dev.azure.com/org/project/_git/repo//path/to/root",
            "https://username@dev.azure.com/org/project/_git/repo",
            "path/to/root",
            None,
        );
        check(
            "https://org.visualstudio.com/project/_git/repo/path/to/root?version=v1",
            "https://org.visualstudio.com/project/_git/repo",
            "path/to/root",
            Some("v1"),
        );
        check(
            "ssh://git@bitbucket.org/company/project.git//path?ref=branch",
            "ssh://git@bitbucket.org/company/project.git",
            "path",
            Some("branch"),
        );
        check(
            "ssh://git.example.com:7999/org/repo/dir",
            "ssh://git.example.com:7999/org/repo",
            "dir",
            None,
        );
        check(
            "git@gitlab2.sqtools.ru:infra/kubernetes/thanos-base.git?ref=v0.1.0",
            "git@gitlab2.sqtools.ru:infra/kubernetes/thanos-base.git",
            "",
            Some("v0.1.0"),
        );
        check(
            "git@gitlab.com:gitlab-tests/sample-project",
            "git@gitlab.com:gitlab-tests/sample-project",
            "",
            None,
        );
        check(
            "https://example.org/path/to/repo//examples/multibases/dev",
            "https://example.org/path/to/repo",
            "examples/multibases/dev",
            None,
        );
        check(
            "file:///tmp/repos/app//deploy/base?ref=v1",
            "file:///tmp/repos/app",
            "deploy/base",
            Some("v1"),
        );
        check(
            "file:///tmp/repos/app?ref=main",
            "file:///tmp/repos/app",
            "",
            Some("main"),
        );
        check(
            "git::file:///tmp/repos/app.git/deploy",
            "file:///tmp/repos/app.git",
            "deploy",
            None,
        );
    }

    #[test]
    fn refuses_what_kustomize_refuses() {
        for bad in [
            "/tmp",
            "../base",
            "deployment.yaml",
            "src/github.com/org/repo/path",
            "iauhsdiuashduas",
            "htxxxtp://github.com/",
            "ssh://git.example.com",
            "git::___",
            "https://host?ref=group/version/minor_version",
            "gh:org/repo",
            "https://github.com/thisisa404.yaml",
            "gitlab.com/org/repo",
        ] {
            assert!(parse(bad).is_none(), "{bad} should not parse");
        }
        let s = parse("https://github.com/org/repo.git//path/../../exits/repo").unwrap();
        assert!(s.path_exits_repo());
        let s = parse("https://github.com/org/repo.git//path/../stays").unwrap();
        assert!(!s.path_exits_repo());
    }

    #[test]
    fn query_parameters_follow_kustomize() {
        let q = |s: &str| parse_query(s);
        assert_eq!(q(""), (None, DEFAULT_TIMEOUT, true));
        assert_eq!(q("version=master&ref=v1.0.0").0.as_deref(), Some("v1.0.0"));
        assert_eq!(q("ref=v1.0.0&version=master").0.as_deref(), Some("v1.0.0"));
        assert_eq!(q("ref=&version=master").0.as_deref(), Some("master"));
        assert_eq!(
            q("ref=kustomize%2Fv4.5.7").0.as_deref(),
            Some("kustomize/v4.5.7")
        );
        assert!(q("version=master&submodules=").2);
        assert!(q("version=master&submodules=maybe").2);
        assert!(!q("version=master&submodules=false").2);
        assert!(!q("submodules=0").2);
        assert_eq!(q("timeout=").1, DEFAULT_TIMEOUT);
        assert_eq!(q("timeout=jiffy").1, DEFAULT_TIMEOUT);
        assert_eq!(q("timeout=0").1, DEFAULT_TIMEOUT);
        assert_eq!(q("timeout=0s").1, DEFAULT_TIMEOUT);
        assert_eq!(q("timeout=61").1, Duration::from_secs(61));
        assert_eq!(q("timeout=1m1s").1, Duration::from_secs(61));
        assert_eq!(q("timeout=0.1h").1, Duration::from_secs(360));
        assert_eq!(q("timeout=1.5h").1, MAX_TIMEOUT);
        assert_eq!(q("timeout=500ms").1, Duration::from_millis(500));
        // A malformed query yields all defaults, as Go's url.ParseQuery.
        assert_eq!(q("ref=v1&timeout=%zz"), (None, DEFAULT_TIMEOUT, true));
        let s = parse("https://github.com/org/repo?ref=v1&submodules=false&timeout=90").unwrap();
        assert!(!s.submodules);
        assert_eq!(s.timeout, Duration::from_secs(90));
    }

    #[test]
    fn huge_and_overflowing_timeouts_never_panic_and_are_capped() {
        let q = |s: &str| parse_query(s).1;
        // Too large for Go's duration: malformed, so the default.
        assert_eq!(q("timeout=99999999999999999999h"), DEFAULT_TIMEOUT);
        assert_eq!(q("timeout=99999999999999999999"), DEFAULT_TIMEOUT);
        assert_eq!(q(&format!("timeout={}s", "9".repeat(400))), DEFAULT_TIMEOUT);
        assert_eq!(q(&format!("timeout=1.{}h", "9".repeat(400))), MAX_TIMEOUT);
        assert_eq!(q("timeout=2562047h47m16.854775807s"), MAX_TIMEOUT);
        assert_eq!(q("timeout=2562047h47m16.854775808s"), DEFAULT_TIMEOUT);
        assert_eq!(
            q(&format!("timeout={}", "1h".repeat(3_000_000))),
            DEFAULT_TIMEOUT
        );
        // Representable but longer than the cap: the cap.
        assert_eq!(q("timeout=100000h"), MAX_TIMEOUT);
        assert_eq!(q("timeout=9223372036"), MAX_TIMEOUT);
        assert_eq!(q("timeout=11m"), MAX_TIMEOUT);
        assert_eq!(q("timeout=10m"), MAX_TIMEOUT);
        assert_eq!(q("timeout=9m59s"), Duration::from_secs(599));
        // Malformed numbers.
        for bad in [
            ".", "1..5s", "1.2.3s", ".s", "5", "h", "1h-1s", "-1s", "1e3s",
        ] {
            assert_eq!(
                parse_go_duration(bad),
                None,
                "{bad} should not parse as a duration"
            );
        }
        assert_eq!(parse_go_duration(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5.s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("1.000000001s"), Some(Duration::new(1, 1)));
        assert_eq!(
            parse_go_duration("1µs1ns"),
            Some(Duration::from_nanos(1001))
        );
        let s = parse("https://github.com/org/repo?ref=v1&timeout=99999999999999999999h").unwrap();
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let s = parse("https://github.com/org/repo?ref=v1&timeout=100000h").unwrap();
        assert_eq!(s.timeout, MAX_TIMEOUT);
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        let r = redact_url;
        assert_eq!(
            r("https://ghp_Secret123@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(
            r("https://user:hunter2@host/o/r.git"),
            "https://user:***@host/o/r.git"
        );
        assert_eq!(r("http://u:p@ss:w;rd@host:8080"), "http://u:***@host:8080");
        assert_eq!(r("ssh://git@host:22/r.git"), "ssh://git@host:22/r.git");
        assert_eq!(r("ssh://git:pw@host/r.git"), "ssh://git:***@host/r.git");
        assert_eq!(
            r("git@github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
        assert_eq!(r("https://host/a@b"), "https://host/a@b");
        assert_eq!(r("no url at all"), "no url at all");
        assert_eq!(
            r("GET 'https://TOKEN@h/x?ref=1': refused; then HTTPS://a:b@h2 said no"),
            "GET 'https://***@h/x?ref=1': refused; then HTTPS://a:***@h2 said no"
        );
        assert_eq!(r("x https://tok@h"), "x https://***@h");
        assert_eq!(r("日本://tok@h"), "日本://***@h");
        let e = DefaultOnly
            .fetch_file("https://TOKEN9@example.com/a.yaml")
            .unwrap_err();
        assert!(!e.contains("TOKEN9"), "{e}");
    }

    struct DefaultOnly;
    impl RemoteLoader for DefaultOnly {
        fn fetch(&self, _: &RepoSpec) -> Result<PathBuf, String> {
            Err("unused".into())
        }
    }

    #[test]
    fn tells_files_from_repositories() {
        assert!(is_http_url("https://example.com/a.yaml"));
        assert!(is_http_url("HTTP://example.com/a.yaml"));
        assert!(!is_http_url("github.com/org/repo"));
        assert!(is_unmistakably_git("github.com/org/repo"));
        assert!(is_unmistakably_git("git::https://example.com/org/repo"));
        assert!(is_unmistakably_git("https://example.com/org/repo//dir"));
        assert!(is_unmistakably_git("https://example.com/org/repo.git"));
        assert!(is_unmistakably_git(
            "https://github.com/stakater/Reloader/deployments/kubernetes?ref=v1.0.10"
        ));
        assert!(!is_unmistakably_git(
            "https://raw.githubusercontent.com/org/repo/v1/deploy/crds.yaml"
        ));
        assert!(!is_unmistakably_git(
            "https://github.com/org/repo/releases/download/v1/install.yaml"
        ));
        assert!(!is_unmistakably_git("https://example.com/crds.yaml"));
    }
}
