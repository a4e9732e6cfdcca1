//! Remote kustomize resources: the [`RemoteLoader`] that `sluice build` and
//! the Kustomization controller give the kustomize engine.
//!
//! Git repositories are fetched with gix ([`crate::fetch`]) into a
//! content-addressed cache:
//!
//! ```text
//! <cache>/<sha256(clone URL)>/url                    the clone URL (for humans)
//! <cache>/<sha256(clone URL)>/<commit>/              the checkout, submodules included
//! <cache>/<sha256(clone URL)>/<commit>-nosubmodules/ the checkout for ?submodules=false
//! <cache>/.work/                                     scratch for listings and fetches
//! ```
//!
//! A checkout is written under a temporary name and renamed into place, so
//! concurrent builds (threads or processes) never see half of one, and a
//! commit is checked out once. `?ref=` is resolved as `git fetch` would
//! (exact name, `refs/<ref>`, then tag, then branch; no ref: the remote's
//! `HEAD`) with a cheap ref listing; a full commit id already in the cache
//! needs no network at all.
//!
//! The cache is `$SLUICE_REMOTE_CACHE`, else `$XDG_CACHE_HOME/sluice/remote`,
//! else `~/.cache/sluice/remote` (else under the temp dir). Nothing removes
//! old checkouts yet; deleting the directory is always safe.
//!
//! Plain `http(s)://` files (`resources: - https://host/crds.yaml`) are
//! fetched with reqwest (redirects followed, 2xx required, at most
//! [`MAX_FILE_BYTES`], the whole download within the loader's HTTP timeout).
//!
//! Every error names the URL with its credentials hidden
//! ([`crate::fetch::redact_url`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sluice_kustomize::remote::{RemoteLoader, RepoSpec};

use crate::fetch::{self as git, Auth, FetchTarget, GitError};

/// The environment variable that overrides the cache directory.
pub const CACHE_ENV: &str = "SLUICE_REMOTE_CACHE";

/// Largest plain HTTP(S) resource accepted (16 MiB, the kustomize engine's
/// own bound on one file): a larger body is refused, not read to the end.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Default time allowed for downloading one plain HTTP(S) resource, from
/// connecting to the last byte.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// How deep nested submodules are followed.
const MAX_SUBMODULE_DEPTH: usize = 8;

/// Fetches remote bases with gix into a content-addressed cache, and plain
/// HTTP(S) files.
pub struct GitRemoteLoader {
    cache: PathBuf,
    auth: Auth,
    http_timeout: Duration,
    fetches: AtomicU64,
    listings: AtomicU64,
}

impl std::fmt::Debug for GitRemoteLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRemoteLoader")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl GitRemoteLoader {
    /// A loader caching under `cache`.
    pub fn new(cache: impl Into<PathBuf>) -> GitRemoteLoader {
        GitRemoteLoader {
            cache: cache.into(),
            auth: Auth::default(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            fetches: AtomicU64::new(0),
            listings: AtomicU64::new(0),
        }
    }

    /// A loader caching in `$SLUICE_REMOTE_CACHE` or [`default_cache_dir`]
    /// (under the temp dir when that cannot be created, e.g. a read-only
    /// home in a container).
    pub fn from_env() -> GitRemoteLoader {
        if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
            return GitRemoteLoader::new(dir);
        }
        let dir = default_cache_dir();
        if std::fs::create_dir_all(&dir).is_ok() {
            GitRemoteLoader::new(dir)
        } else {
            GitRemoteLoader::new(std::env::temp_dir().join("sluice").join("remote"))
        }
    }

    /// Uses `auth` for every fetch (e.g. [`user_ssh_auth`]); by default
    /// none.
    pub fn with_auth(mut self, auth: Auth) -> GitRemoteLoader {
        self.auth = auth;
        self
    }

    /// The time allowed for downloading one plain HTTP(S) resource, from
    /// connecting to the last byte of the body (default
    /// [`DEFAULT_HTTP_TIMEOUT`]).
    pub fn with_http_timeout(mut self, timeout: Duration) -> GitRemoteLoader {
        self.http_timeout = timeout;
        self
    }

    /// Where checkouts are kept.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// Git fetches made so far (a cached commit costs none).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Remote ref listings made so far (a full commit id in the cache costs
    /// none).
    pub fn listings(&self) -> u64 {
        self.listings.load(Ordering::SeqCst)
    }

    /// The cache directory of one repository.
    pub fn repo_dir(&self, clone_url: &str) -> PathBuf {
        self.cache
            .join(crate::archive::hex(&Sha256::digest(clone_url.as_bytes())))
    }

    /// Makes `url` at `git_ref` (default: the remote's HEAD) available in
    /// the cache and returns the checkout's root.
    pub fn checkout(
        &self,
        url: &str,
        git_ref: Option<&str>,
        submodules: bool,
        timeout: Duration,
    ) -> Result<PathBuf, GitError> {
        let repo_dir = self.repo_dir(url);
        let suffix = if submodules { "" } else { "-nosubmodules" };
        let cached = |commit: &str| repo_dir.join(format!("{commit}{suffix}"));
        let work = self.cache.join(".work");
        let target = match git_ref {
            Some(r) if is_full_sha(r) => {
                let sha = r.to_ascii_lowercase();
                let d = cached(&sha);
                if d.is_dir() {
                    return Ok(d);
                }
                FetchTarget::Commit { sha, branch: None }
            }
            _ => {
                let (name, commit) = self.resolve(&work, url, git_ref, timeout)?;
                let d = cached(&commit);
                if d.is_dir() {
                    return Ok(d);
                }
                FetchTarget::Ref(name)
            }
        };
        let fetched = git::fetch(&work, url, &self.auth, &target, timeout)?;
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let commit = fetched.commit.to_hex().to_string();
        let dest = cached(&commit);
        if dest.is_dir() {
            return Ok(dest);
        }
        std::fs::create_dir_all(&repo_dir)?;
        let url_file = repo_dir.join("url");
        if !url_file.exists() {
            let _ = std::fs::write(&url_file, format!("{}\n", git::redact_url(url)));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&repo_dir)?;
        let subs = checkout_commit(&fetched.repo, fetched.commit, tmp.path())?;
        drop(fetched);
        if submodules && !subs.is_empty() {
            self.checkout_submodules(&work, url, tmp.path(), subs, timeout, 1)?;
        }
        let made = tmp.keep();
        if let Err(e) = std::fs::rename(&made, &dest) {
            let _ = std::fs::remove_dir_all(&made);
            // Another build put the same commit in place first.
            if !dest.is_dir() {
                return Err(GitError::from(e));
            }
        }
        Ok(dest)
    }

    /// Resolves `git_ref` to a full ref name and commit with one listing.
    fn resolve(
        &self,
        work: &Path,
        url: &str,
        git_ref: Option<&str>,
        timeout: Duration,
    ) -> Result<(String, String), GitError> {
        let candidates: Vec<String> = match git_ref {
            None => vec!["HEAD".into()],
            Some(r) if r == "HEAD" || r.starts_with("refs/") => vec![r.to_string()],
            Some(r) => vec![
                format!("refs/{r}"),
                format!("refs/tags/{r}"),
                format!("refs/heads/{r}"),
            ],
        };
        let refs = git::ls_refs(work, url, &self.auth, &candidates, timeout)?;
        self.listings.fetch_add(1, Ordering::SeqCst);
        for c in &candidates {
            if let Some(r) = refs.iter().find(|r| &r.name == c) {
                return Ok((r.name.clone(), r.commit.clone()));
            }
        }
        Err(GitError {
            kind: git::GitErrorKind::Operation,
            message: match git_ref {
                Some(r) => format!(
                    "couldn't find remote ref '{r}' in '{}' (a branch, a tag or a full commit id)",
                    git::redact_url(url)
                ),
                None => format!("remote '{}' has no HEAD", git::redact_url(url)),
            },
        })
    }

    /// Fetches the submodules of a checkout at `dir` (as `git submodule
    /// update --init --recursive` would): URLs from its `.gitmodules`,
    /// relative ones resolved against `super_url`.
    fn checkout_submodules(
        &self,
        work: &Path,
        super_url: &str,
        dir: &Path,
        subs: Vec<(String, gix::ObjectId)>,
        timeout: Duration,
        depth: usize,
    ) -> Result<(), GitError> {
        if depth > MAX_SUBMODULE_DEPTH {
            return Err(git_error(format!(
                "submodules nested deeper than {MAX_SUBMODULE_DEPTH} levels"
            )));
        }
        let modules = std::fs::read_to_string(dir.join(".gitmodules")).unwrap_or_default();
        let modules = parse_gitmodules(&modules);
        for (path, commit) in subs {
            let Some(url) = modules
                .iter()
                .find(|(p, _)| p.trim_matches('/') == path)
                .map(|(_, u)| u.clone())
            else {
                return Err(git_error(format!(
                    "submodule '{path}' has no URL in .gitmodules"
                )));
            };
            let url = resolve_submodule_url(super_url, &url);
            let sha = commit.to_hex().to_string();
            let fetched = git::fetch(
                work,
                &url,
                &self.auth,
                &FetchTarget::Commit { sha, branch: None },
                timeout,
            )
            .map_err(|e| git_error(format!("submodule '{path}': {}", e.message)))?;
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let sub_dir = dir.join(&path);
            let nested = checkout_commit(&fetched.repo, fetched.commit, &sub_dir)?;
            drop(fetched);
            if !nested.is_empty() {
                self.checkout_submodules(work, &url, &sub_dir, nested, timeout, depth + 1)?;
            }
        }
        Ok(())
    }

    /// GETs an `http(s)://` URL; a 2xx body is the file. The whole
    /// download (connecting, headers, body) must end within the HTTP
    /// timeout, however slowly the server sends, and the body may not
    /// exceed [`MAX_FILE_BYTES`]. Errors name the URL without credentials.
    pub fn get_file(&self, url: &str) -> Result<Vec<u8>, String> {
        self.get_file_within(url, self.http_timeout)
    }

    /// [`GitRemoteLoader::get_file`] within the shorter of `timeout` and
    /// the HTTP timeout.
    pub fn get_file_within(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        self.download(url, timeout.min(self.http_timeout))
            .map_err(|e| git::redact_url(&e))
    }

    fn download(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        git::install_crypto_provider();
        let deadline = git::deadline_after(timeout);
        let shown = git::redact_url(url);
        let timed_out = || {
            format!(
                "GET {shown}: timed out after {}s",
                timeout.as_secs_f64().ceil()
            )
        };
        // A timeout on the request bounds all of it, the body included;
        // the client's own one bounds each wait for data.
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(git::MAX_HTTP_CONNECT_TIMEOUT))
            .user_agent("sluice")
            .build()
            .map_err(|e| format!("HTTP client: {}", git::error_chain(&e)))?;
        let resp = client.get(url).timeout(timeout).send().map_err(|e| {
            if e.is_timeout() {
                timed_out()
            } else {
                format!("GET {shown}: {}", git::error_chain(&e))
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {shown}: HTTP status {status}"));
        }
        let too_large = || {
            format!(
                "GET {shown}: the file is larger than {} MiB, the most a remote resource may be",
                MAX_FILE_BYTES >> 20
            )
        };
        if resp.content_length().is_some_and(|n| n > MAX_FILE_BYTES) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        let mut resp = resp.take(MAX_FILE_BYTES + 1);
        loop {
            if Instant::now() >= deadline {
                return Err(timed_out());
            }
            match resp.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let text = git::error_chain(&e);
                    return Err(
                        if Instant::now() >= deadline || text.contains("timed out") {
                            timed_out()
                        } else {
                            format!("GET {shown}: reading the body: {text}")
                        },
                    );
                }
            }
            if body.len() as u64 > MAX_FILE_BYTES {
                return Err(too_large());
            }
        }
        Ok(body)
    }
}

impl RemoteLoader for GitRemoteLoader {
    fn fetch(&self, spec: &RepoSpec) -> Result<PathBuf, String> {
        self.checkout(
            &spec.clone_url,
            spec.git_ref.as_deref(),
            spec.submodules,
            spec.timeout,
        )
        .map_err(|e| git::redact_url(&e.message))
    }

    fn fetch_file(&self, url: &str) -> Result<Vec<u8>, String> {
        self.get_file(url)
    }

    fn fetch_file_within(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        self.get_file_within(url, timeout)
    }
}

/// ssh material from the user's `~/.ssh`, for the CLI (kustomize runs the
/// user's git): `known_hosts` and the first of the default keys
/// `id_ed25519`, `id_ecdsa`, `id_rsa` found. No agent and no passphrases:
/// the transport never prompts.
pub fn user_ssh_auth() -> Auth {
    let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) else {
        return Auth::default();
    };
    let ssh = PathBuf::from(home).join(".ssh");
    Auth {
        known_hosts: std::fs::read(ssh.join("known_hosts")).ok(),
        ssh_identity: ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .find_map(|k| std::fs::read(ssh.join(k)).ok()),
        ..Auth::default()
    }
}

/// Writes the tree of `commit` into the empty directory `dest`: files (with
/// their executable bit), directories and symlinks. Submodules are left as
/// empty directories; their `(path, commit)` are returned.
fn checkout_commit(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    dest: &Path,
) -> Result<Vec<(String, gix::ObjectId)>, GitError> {
    use gix::bstr::ByteSlice;
    use std::os::unix::fs::PermissionsExt;
    let entries = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| git_error(format!("reading commit {commit}: {}", git::error_chain(&e))))?
        .traverse()
        .breadthfirst
        .files()
        .map_err(|e| {
            git_error(format!(
                "reading the tree of {commit}: {}",
                git::error_chain(&e)
            ))
        })?;
    let mut submodules = Vec::new();
    for e in entries {
        let rel = e.filepath.to_str_lossy().into_owned();
        // Git refuses such paths too; never write outside `dest`.
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"))
        {
            return Err(git_error(format!("refusing the path '{rel}' in {commit}")));
        }
        let p = dest.join(&rel);
        let io = |err: std::io::Error| git_error(format!("writing {}: {err}", p.display()));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mode = e.mode;
        if mode.is_tree() {
            std::fs::create_dir_all(&p).map_err(io)?;
        } else if mode.is_commit() {
            std::fs::create_dir_all(&p).map_err(io)?;
            submodules.push((rel, e.oid));
        } else {
            let obj = repo
                .find_object(e.oid)
                .map_err(|err| git_error(format!("reading {rel}: {}", git::error_chain(&err))))?;
            if mode.is_link() {
                let target = String::from_utf8_lossy(&obj.data).into_owned();
                std::os::unix::fs::symlink(target, &p).map_err(io)?;
            } else {
                std::fs::write(&p, &obj.data).map_err(io)?;
                if mode.is_executable() {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                        .map_err(io)?;
                }
            }
        }
    }
    Ok(submodules)
}

/// `$XDG_CACHE_HOME/sluice/remote`, else `~/.cache/sluice/remote`, else
/// `<temp>/sluice/remote`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("sluice").join("remote");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h)
            .join(".cache")
            .join("sluice")
            .join("remote");
    }
    std::env::temp_dir().join("sluice").join("remote")
}

fn git_error(message: String) -> GitError {
    GitError {
        kind: git::GitErrorKind::Operation,
        message,
    }
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `(path, url)` of each `[submodule "..."]` section of a `.gitmodules`.
fn parse_gitmodules(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(Option<String>, Option<String>)> = None;
    let mut flush = |cur: &mut Option<(Option<String>, Option<String>)>| {
        if let Some((Some(p), Some(u))) = cur.take() {
            out.push((p, u));
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            flush(&mut cur);
            if line.to_ascii_lowercase().starts_with("[submodule") {
                cur = Some((None, None));
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        if let Some(c) = cur.as_mut() {
            match k.trim().to_ascii_lowercase().as_str() {
                "path" => c.0 = Some(v),
                "url" => c.1 = Some(v),
                _ => {}
            }
        }
    }
    flush(&mut cur);
    out
}

/// Resolves a submodule URL against the superproject's, as git does for
/// `./x` and `../x`.
fn resolve_submodule_url(super_url: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = super_url.trim_end_matches('/').to_string();
    let mut rel = url;
    loop {
        if let Some(r) = rel.strip_prefix("./") {
            rel = r;
        } else if let Some(r) = rel.strip_prefix("../") {
            rel = r;
            // Drop the last path component (scp-like URLs split at ':').
            let cut = base.rfind(['/', ':']).unwrap_or(0);
            let keep_colon = base.as_bytes().get(cut) == Some(&b':');
            base.truncate(if keep_colon { cut + 1 } else { cut });
        } else {
            break;
        }
    }
    let sep = if base.ends_with(':') { "" } else { "/" };
    format!("{base}{sep}{rel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitmodules_and_relative_urls() {
        let m = parse_gitmodules(
            "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n[core]\n\tx = y\n[submodule \"b\"]\n\turl = https://h/b\n\tpath = b\n",
        );
        assert_eq!(
            m,
            vec![
                ("vendor/lib".to_string(), "../lib.git".to_string()),
                ("b".to_string(), "https://h/b".to_string())
            ]
        );
        assert_eq!(
            resolve_submodule_url("file:///srv/app.git", "../lib.git"),
            "file:///srv/lib.git"
        );
        assert_eq!(
            resolve_submodule_url("https://h/org/app/", "./sub"),
            "https://h/org/app/sub"
        );
        assert_eq!(
            resolve_submodule_url("git@h:org/app.git", "../../other/lib"),
            "git@h:other/lib"
        );
        assert_eq!(
            resolve_submodule_url("https://h/a", "https://x/y"),
            "https://x/y"
        );
    }

    #[test]
    fn cache_keys() {
        let l = GitRemoteLoader::new("/c");
        let d = l.repo_dir("https://github.com/org/repo");
        assert!(d.starts_with("/c"));
        assert_eq!(d.file_name().unwrap().len(), 64);
        assert_ne!(d, l.repo_dir("https://github.com/org/other"));
        assert!(is_full_sha("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_full_sha("0123456"));
        assert!(!is_full_sha("v1.0.0"));
    }
}
