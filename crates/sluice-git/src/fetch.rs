//! Git transport with gix: a cheap remote ref listing (ls-refs), a shallow
//! fetch of one ref or commit into a throw-away bare repository, and the
//! commit's tree streamed into a tar.gz.
//!
//! Everything here is blocking; the controller runs it on the blocking pool.
//! Repositories are opened *isolated* (no system/global git configuration,
//! no credential helpers, no prompts), so behaviour does not depend on the
//! host and no credential ever comes from anywhere but the Secret.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use crate::refs::RemoteRef;
use crate::sourceignore::{IGNORE_FILE, IgnoreRules};

/// Credentials and TLS/SSH material from the `secretRef`, as Flux reads it.
#[derive(Clone, Default)]
pub struct Auth {
    /// `username` / `password`.
    pub basic: Option<(String, String)>,
    /// `bearerToken` (sent as `Authorization: Bearer`).
    pub bearer_token: Option<String>,
    /// `ca.crt` (PEM), added to the trusted roots for https.
    pub ca_pem: Option<Vec<u8>>,
    /// `identity` (private key, PEM/OpenSSH) for ssh.
    pub ssh_identity: Option<Vec<u8>>,
    /// `password` of a passphrase-protected `identity`.
    pub ssh_passphrase: Option<String>,
    /// `known_hosts` for ssh; host keys are always verified.
    pub known_hosts: Option<Vec<u8>>,
    /// `spec.proxySecretRef`'s proxy for http(s) remotes (otherwise the process's
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` apply).
    pub proxy: Option<crate::proxy::Proxy>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field(
                "basic",
                &self.basic.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_pem", &self.ca_pem.is_some())
            .field(
                "ssh_identity",
                &self.ssh_identity.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "ssh_passphrase",
                &self.ssh_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("known_hosts", &self.known_hosts.is_some())
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl Auth {
    /// Secret values that must never appear in messages or logs.
    pub fn secret_values(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some((_, p)) = &self.basic
            && !p.is_empty()
        {
            v.push(p.clone());
        }
        if let Some(t) = &self.bearer_token
            && !t.is_empty()
        {
            v.push(t.clone());
        }
        if let Some(p) = &self.ssh_passphrase
            && !p.is_empty()
        {
            v.push(p.clone());
        }
        if let Some(p) = self.proxy.as_ref().and_then(|p| p.password.as_ref())
            && !p.is_empty()
        {
            v.push(p.clone());
        }
        v
    }

    /// Replaces any secret value in `msg` by `***`.
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        for s in self.secret_values() {
            out = out.replace(&s, "***");
        }
        out
    }
}

/// A failed Git operation, classified the way Flux reports it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GitError {
    pub kind: GitErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitErrorKind {
    /// The remote refused the credentials (or none were given but needed).
    Auth,
    /// Anything else: unreachable remote, protocol error, missing object...
    Operation,
}

impl From<std::io::Error> for GitError {
    fn from(e: std::io::Error) -> Self {
        GitError::op(format!("I/O: {e}"))
    }
}

impl GitError {
    fn op(message: impl Into<String>) -> GitError {
        GitError {
            kind: GitErrorKind::Operation,
            message: message.into(),
        }
    }
}

/// Renders an error with its whole source chain (`a: b: c`), skipping repeats.
pub use sluice_api::meta::error_chain;

fn classify(err: &gix::Error, auth: &Auth, context: &str) -> GitError {
    let text = error_chain(err);
    let lower = text.to_ascii_lowercase();
    let is_auth = err.is_unauthenticated()
        || lower.contains("were not accepted by the remote")
        || lower.contains("no credentials were returned")
        || lower.contains("permission denied (publickey")
        || lower.contains("authentication failed")
        || lower.contains("401 unauthorized")
        || lower.contains("403 forbidden");
    GitError {
        kind: if is_auth {
            GitErrorKind::Auth
        } else {
            GitErrorKind::Operation
        },
        message: auth.scrub(&format!("{context}: {text}")),
    }
}

/// Hides the credentials of every URL in `text` (a URL or a message that
/// quotes one): `https://user:pass@host` → `https://user:***@host`,
/// `https://TOKEN@host` → `https://***@host`; an ssh user is kept. The same
/// function as [`sluice_kustomize::remote::redact_url`], so the engine's
/// messages and ours agree.
pub fn redact_url(text: &str) -> String {
    sluice_kustomize::remote::redact_url(text)
}

pub use crate::ssh::MAX_SSH_CONNECT_TIMEOUT;

/// The transport a URL uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    Ssh,
    File,
}

/// Validates a `spec.url` as Flux accepts it (plus `file://` for local use).
pub fn parse_url(url: &str) -> Result<Scheme, String> {
    let parsed = gix::url::parse(url.as_bytes().as_bstr())
        .map_err(|e| format!("invalid URL '{}': {e}", redact_url(url)))?;
    let scheme = match parsed.scheme {
        gix::url::Scheme::Http => Scheme::Http,
        gix::url::Scheme::Https => Scheme::Https,
        gix::url::Scheme::Ssh => Scheme::Ssh,
        gix::url::Scheme::File if url.starts_with("file://") => Scheme::File,
        _ => {
            return Err(format!(
                "invalid URL '{}': scheme must be http, https, ssh or file",
                redact_url(url)
            ));
        }
    };
    if matches!(scheme, Scheme::Http | Scheme::Https | Scheme::Ssh)
        && parsed.host().is_none_or(str::is_empty)
    {
        return Err(format!("invalid URL '{}': no host", redact_url(url)));
    }
    Ok(scheme)
}

/// The URL gix connects to: an ssh URL without a user logs in as `git`, as
/// Flux does (the conventional user of Git hosts).
fn connect_url(url: &str) -> String {
    if !matches!(parse_url(url), Ok(Scheme::Ssh)) {
        return url.to_string();
    }
    match gix::url::parse(url.as_bytes().as_bstr()) {
        Ok(mut parsed) if parsed.user().is_none() => {
            parsed.set_user(Some("git".into()));
            parsed.to_bstring().to_string()
        }
        _ => url.to_string(),
    }
}

fn open_options() -> gix::open::Options {
    gix::open::Options::isolated()
        .config_overrides(["protocol.version=2", "gitoxide.userAgent=sluice-source"])
}

fn init_bare(path: &Path) -> Result<gix::Repository, GitError> {
    gix::ThreadSafeRepository::init_opts(
        path,
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        open_options(),
    )
    .map(|r| r.to_thread_local())
    .map_err(|e| {
        GitError::op(format!(
            "initializing repository at {}: {}",
            path.display(),
            error_chain(&e)
        ))
    })
}

/// Opens (creating on first use) the scratch repository used for listings.
fn scratch_repo(work: &Path) -> Result<gix::Repository, GitError> {
    let path = work.join("scratch.git");
    if path.join("HEAD").is_file() {
        return gix::open_opts(&path, open_options())
            .map_err(|e| GitError::op(format!("opening {}: {}", path.display(), error_chain(&e))));
    }
    std::fs::create_dir_all(work)
        .map_err(|e| GitError::op(format!("creating {}: {e}", work.display())))?;
    // Initialize under a temporary name and rename, so concurrent first uses
    // never see a half-made repository.
    let tmp = tempfile::Builder::new()
        .prefix("scratch-")
        .tempdir_in(work)
        .map_err(|e| GitError::op(format!("creating scratch dir: {e}")))?;
    init_bare(tmp.path())?;
    let made = tmp.keep();
    if std::fs::rename(&made, &path).is_err() {
        let _ = std::fs::remove_dir_all(&made);
    }
    gix::open_opts(&path, open_options())
        .map_err(|e| GitError::op(format!("opening {}: {}", path.display(), error_chain(&e))))
}

type Connection<'r> = gix::remote::Connection<
    'r,
    'r,
    'r,
    Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
>;

/// Makes ring the process-wide rustls provider unless one is installed.
/// The https transport (reqwest) takes the process default and kube's client
/// uses ring, so this keeps one crypto provider in the process. Idempotent.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Connects to `remote` with our credentials and transport options; the
/// connection ends with an error at `deadline` at the latest (ssh: the
/// session thread ends it; http: every request, its body included, is
/// bounded by the time left).
fn connect<'r>(
    repo: &gix::Repository,
    remote: &'r gix::Remote<'r>,
    url: &str,
    auth: &Auth,
    deadline: Instant,
) -> Result<Connection<'r>, GitError> {
    let scheme = parse_url(url);
    let is_http = matches!(scheme, Ok(Scheme::Http | Scheme::Https));
    let parsed = || {
        gix::url::parse(url.as_bytes().as_bstr()).map_err(|e| {
            GitError::op(format!(
                "invalid URL '{}': {}",
                redact_url(url),
                error_chain(&e)
            ))
        })
    };
    let conn: Connection<'r> = if matches!(scheme, Ok(Scheme::Ssh)) {
        let parsed = parsed()?;
        let transport = crate::ssh::connect(&parsed, auth, deadline).map_err(|mut e| {
            e.message = auth.scrub(&format!(
                "unable to connect to '{}': {}",
                redact_url(url),
                e.message
            ));
            e
        })?;
        let boxed: Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send> =
            Box::new(transport);
        remote.to_connection_with_transport(boxed)
    } else if is_http {
        let parsed = parsed()?;
        let transport = http_transport::Transport::new_http(
            DeadlineHttp::new(deadline),
            parsed,
            gix::protocol::transport::Protocol::V2,
            false,
        );
        let boxed: Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send> =
            Box::new(transport);
        remote.to_connection_with_transport(boxed)
    } else {
        remote.connect(Direction::Fetch).map_err(|e| {
            classify(
                &e,
                auth,
                &format!("unable to connect to '{}'", redact_url(url)),
            )
        })?
    };
    let basic = auth.basic.clone();
    let conn = conn.with_credentials(move |action| match action {
        gix::credentials::helper::Action::Get(ctx) => match &basic {
            Some((username, password)) => Ok(Some(gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: username.clone(),
                    password: password.clone(),
                    oauth_refresh_token: None,
                },
                next: ctx.into(),
            })),
            None => Ok(None),
        },
        _ => Ok(None),
    });
    let mut conn = conn;
    if is_http {
        install_crypto_provider();
        let base = repo
            .transport_options(url.as_bytes().as_bstr(), None)
            .map_err(|e| GitError::op(format!("configuring transport: {}", error_chain(&e))))?;
        let mut opts: http_transport::Options = base
            .and_then(|b| b.downcast::<http_transport::Options>().ok())
            .map(|b| *b)
            .unwrap_or_default();
        if let Some(token) = &auth.bearer_token {
            opts.extra_headers
                .push(format!("Authorization: Bearer {token}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        opts.connect_timeout = Some(left.min(MAX_HTTP_CONNECT_TIMEOUT));
        let ca = auth.ca_pem.clone();
        let proxy = auth.proxy.clone();
        let backend = http_transport::reqwest::Options {
            // The client is made just before the first request. Its time
            // limit covers each whole request, the response body included
            // (reqwest's blocking client alone limits each read, which a
            // server sending a byte a second never exceeds); later requests
            // are cut to the time left by `DeadlineHttp`.
            configure_client: Some(Box::new(
                move |_gix_defaults: reqwest::blocking::ClientBuilder| {
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1));
                    let mut builder: reqwest::blocking::ClientBuilder = reqwest::Client::builder()
                        .timeout(left)
                        .connect_timeout(left.min(MAX_HTTP_CONNECT_TIMEOUT))
                        .http1_title_case_headers()
                        .into();
                    builder = builder.timeout(left);
                    if let Some(pem) = &ca {
                        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                            gix::error::ErrorExt::raise(gix::error::message!("invalid ca.crt: {e}"))
                        })?;
                        for c in certs {
                            builder = builder.add_root_certificate(c);
                        }
                    }
                    if let Some(p) = &proxy {
                        builder = p.apply(builder).map_err(|e| {
                            gix::error::ErrorExt::raise(gix::error::message!("{e}"))
                        })?;
                    }
                    Ok(builder)
                },
            )),
            configure_request: None,
        };
        opts.backend = Some(Arc::new(Mutex::new(backend)));
        conn = conn.with_transport_options(Box::new(opts));
    }
    Ok(conn)
}

use gix::protocol::transport::client::blocking_io::http as http_transport;

/// The longest an HTTP connection may take to be established.
pub const MAX_HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// gix's reqwest transport with a deadline for the whole operation: no
/// request starts after it, and every request after the first is limited
/// to the time left (the first one is limited by the client, made with the
/// time left just before it is sent).
///
/// Limiting requests one by one is done with a request hook, which gix
/// takes as "headers were configured" and so stops following redirects;
/// gix follows them on the first request only, which is why the hook is
/// installed once that request is made.
struct DeadlineHttp {
    inner: http_transport::reqwest::Remote,
    deadline: Instant,
    requests: usize,
    backend: Option<Arc<Mutex<dyn std::any::Any + Send + Sync>>>,
}

impl DeadlineHttp {
    fn new(deadline: Instant) -> DeadlineHttp {
        DeadlineHttp {
            inner: http_transport::reqwest::Remote::default(),
            deadline,
            requests: 0,
            backend: None,
        }
    }

    fn before_request(&mut self) -> gix::error::Result<()> {
        if Instant::now() >= self.deadline {
            return Err(gix::error::ErrorExt::raise(gix::error::message!(
                "the operation's deadline passed (timed out)"
            )));
        }
        self.requests += 1;
        if self.requests == 2
            && let Some(backend) = &self.backend
            && let Ok(mut guard) = backend.lock()
            && let Some(options) = guard.downcast_mut::<http_transport::reqwest::Options>()
        {
            let deadline = self.deadline;
            options.configure_request = Some(Box::new(move |req| {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(gix::error::ErrorExt::raise(gix::error::message!(
                        "the operation's deadline passed (timed out)"
                    )));
                }
                *req.timeout_mut() = Some(left);
                Ok(())
            }));
        }
        Ok(())
    }
}

impl http_transport::Http for DeadlineHttp {
    type Headers = <http_transport::reqwest::Remote as http_transport::Http>::Headers;
    type ResponseBody = <http_transport::reqwest::Remote as http_transport::Http>::ResponseBody;
    type PostBody = <http_transport::reqwest::Remote as http_transport::Http>::PostBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::error::Result<http_transport::GetResponse<Self::Headers, Self::ResponseBody>> {
        self.before_request()?;
        self.inner.get(url, base_url, headers)
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        body: http_transport::PostBodyDataKind,
    ) -> gix::error::Result<
        http_transport::PostResponse<Self::Headers, Self::ResponseBody, Self::PostBody>,
    > {
        self.before_request()?;
        self.inner.post(url, base_url, headers, body)
    }

    fn configure(&mut self, config: &dyn std::any::Any) -> gix::error::Result<()> {
        if let Some(options) = config.downcast_ref::<http_transport::Options>() {
            self.backend = options.backend.clone();
        }
        self.inner.configure(config)
    }

    fn redirected_base_url(&self) -> Option<String> {
        self.inner.redirected_base_url()
    }
}

/// Lists the remote's refs under `prefixes` (server-side filtered), tags
/// peeled. This is the whole cost of a no-change poll. Fails once `timeout`
/// has passed, whatever the server does.
pub fn ls_refs(
    work: &Path,
    url: &str,
    auth: &Auth,
    prefixes: &[String],
    timeout: Duration,
) -> Result<Vec<RemoteRef>, GitError> {
    let deadline = deadline_after(timeout);
    std::fs::create_dir_all(work)
        .map_err(|e| GitError::op(format!("creating {}: {e}", work.display())))?;
    list(work, url, auth, prefixes, deadline).map_err(|e| finish_error(e, url, timeout, deadline))
}

/// `now + timeout`, or far ahead for a timeout too large to add.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// The last touch on every error leaving this module: URL credentials
/// hidden, and a failure at the deadline said to be a timeout, naming the
/// host.
fn finish_error(mut e: GitError, url: &str, timeout: Duration, deadline: Instant) -> GitError {
    // Whatever ends at the deadline ends a little after it (a killed ssh,
    // a request cut by its timer); a failure before it is not a timeout.
    let late = Instant::now() + Duration::from_millis(250) >= deadline;
    if late && e.kind == GitErrorKind::Operation {
        let host = gix::url::parse(url.as_bytes().as_bstr())
            .ok()
            .and_then(|u| {
                u.host().map(|h| match u.port {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_else(|| "the remote".to_string());
        e.message = format!(
            "timed out after {} waiting for {host}: {}",
            human_duration(timeout),
            e.message
        );
    }
    e.message = redact_url(&e.message);
    e
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn list(
    work: &Path,
    url: &str,
    auth: &Auth,
    prefixes: &[String],
    deadline: Instant,
) -> Result<Vec<RemoteRef>, GitError> {
    let shown = redact_url(url);
    let url = connect_url(url);
    let url = url.as_str();
    let repo = scratch_repo(work)?;
    // A trailing `/` lists everything below it.
    let specs: Vec<String> = prefixes
        .iter()
        .map(|p| {
            if p.ends_with('/') {
                format!("{p}*:{p}*")
            } else {
                p.clone()
            }
        })
        .collect();
    let remote = repo
        .remote_at(url)
        .map_err(|e| {
            GitError::op(format!(
                "invalid URL '{}': {}",
                redact_url(url),
                error_chain(&e)
            ))
        })?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(specs.iter().map(String::as_str), Direction::Fetch)
        .map_err(|e| GitError::op(format!("invalid ref: {}", error_chain(&e))))?;
    let conn = connect(&repo, &remote, url, auth, deadline)?;
    let (map, _handshake) = conn
        .ref_map(
            gix::progress::Discard,
            gix::remote::ref_map::Options::default(),
        )
        .map_err(|e| classify(&e, auth, &format!("unable to list remote for '{shown}'")))?;
    Ok(map.remote_refs.iter().filter_map(to_remote_ref).collect())
}

fn to_remote_ref(r: &gix::protocol::handshake::Ref) -> Option<RemoteRef> {
    let (name, target, peeled) = r.unpack();
    let commit = peeled.or(target)?;
    Some(RemoteRef {
        name: name.to_str_lossy().into_owned(),
        commit: commit.to_hex().to_string(),
    })
}

/// What to fetch.
#[derive(Clone, Debug)]
pub enum FetchTarget {
    /// A full ref name (`refs/heads/main`, `refs/tags/v1`, `refs/pull/1/head`).
    Ref(String),
    /// A commit id; `branch` is fetched in full as a fallback when the server
    /// does not serve unadvertised objects.
    Commit { sha: String, branch: Option<String> },
}

/// A fetched commit in a temporary bare repository (removed on drop).
pub struct Fetched {
    pub repo: gix::Repository,
    pub commit: gix::ObjectId,
    pub shallow: bool,
    _dir: tempfile::TempDir,
}

const LOCAL_REF: &str = "refs/sluice/target";

impl Fetched {
    /// What the fetched ref points at, unpeeled: an annotated tag's object,
    /// else the commit. `None` when a commit was fetched by id.
    pub fn ref_target(&self) -> Option<gix::ObjectId> {
        let r = self.repo.find_reference(LOCAL_REF).ok()?;
        r.target().try_id().map(|id| id.to_owned())
    }
}

/// Fetches `target` with depth 1 (full depth if the server cannot do
/// shallow) into a fresh bare repository under `work`. All attempts
/// together fail once `timeout` has passed, whatever the server does.
pub fn fetch(
    work: &Path,
    url: &str,
    auth: &Auth,
    target: &FetchTarget,
    timeout: Duration,
) -> Result<Fetched, GitError> {
    let deadline = deadline_after(timeout);
    fetch_until(work, url, auth, target, deadline)
        .map_err(|e| finish_error(e, url, timeout, deadline))
}

fn fetch_until(
    work: &Path,
    url: &str,
    auth: &Auth,
    target: &FetchTarget,
    deadline: Instant,
) -> Result<Fetched, GitError> {
    std::fs::create_dir_all(work)
        .map_err(|e| GitError::op(format!("creating {}: {e}", work.display())))?;
    let mut last_err = None;
    let attempts: Vec<(String, bool)> = match target {
        FetchTarget::Ref(name) => vec![
            (format!("+{name}:{LOCAL_REF}"), true),
            (format!("+{name}:{LOCAL_REF}"), false),
        ],
        FetchTarget::Commit { sha, branch } => {
            let mut v = vec![(sha.clone(), true)];
            match branch {
                Some(b) => v.push((format!("+refs/heads/{b}:refs/heads/{b}"), false)),
                None => v.push(("+refs/heads/*:refs/heads/*".to_string(), false)),
            }
            v
        }
    };
    for (spec, shallow) in attempts {
        // No new attempt once the time is up: the last error says why.
        if last_err.is_some() && Instant::now() >= deadline {
            break;
        }
        let dir = tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(work)
            .map_err(|e| GitError::op(format!("creating fetch dir: {e}")))?;
        let repo = init_bare(dir.path())?;
        let fetched = fetch_once(&repo, url, auth, &spec, shallow, deadline);
        match fetched {
            Ok(()) => {
                let commit = match target {
                    FetchTarget::Ref(_) => {
                        let mut r = repo.find_reference(LOCAL_REF).map_err(|e| {
                            GitError::op(format!("fetched ref missing: {}", error_chain(&e)))
                        })?;
                        let id = r.peel_to_id().map_err(|e| {
                            GitError::op(format!("peeling fetched ref: {}", error_chain(&e)))
                        })?;
                        peel_to_commit(&repo, id.detach())?
                    }
                    FetchTarget::Commit { sha, .. } => {
                        let id = gix::ObjectId::from_hex(sha.as_bytes())
                            .map_err(|e| GitError::op(format!("invalid commit '{sha}': {e}")))?;
                        if repo.find_object(id).is_err() {
                            last_err = Some(GitError::op(format!(
                                "commit '{sha}' not found on the remote"
                            )));
                            continue;
                        }
                        peel_to_commit(&repo, id)?
                    }
                };
                return Ok(Fetched {
                    repo,
                    commit,
                    shallow,
                    _dir: dir,
                });
            }
            Err(e) => {
                if e.kind == GitErrorKind::Auth {
                    return Err(e);
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| GitError::op("fetch failed")))
}

fn peel_to_commit(repo: &gix::Repository, id: gix::ObjectId) -> Result<gix::ObjectId, GitError> {
    let obj = repo
        .find_object(id)
        .map_err(|e| GitError::op(format!("object {id} missing: {}", error_chain(&e))))?;
    let commit = obj
        .peel_to_commit()
        .map_err(|e| GitError::op(format!("{id} is not a commit: {}", error_chain(&e))))?;
    Ok(commit.id)
}

fn fetch_once(
    repo: &gix::Repository,
    url: &str,
    auth: &Auth,
    spec: &str,
    shallow: bool,
    deadline: Instant,
) -> Result<(), GitError> {
    let ctx = format!("unable to fetch from '{}'", redact_url(url));
    let url = connect_url(url);
    let url = url.as_str();
    let remote = repo
        .remote_at(url)
        .map_err(|e| {
            GitError::op(format!(
                "invalid URL '{}': {}",
                redact_url(url),
                error_chain(&e)
            ))
        })?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs([spec], Direction::Fetch)
        .map_err(|e| GitError::op(format!("invalid refspec '{spec}': {}", error_chain(&e))))?;
    let conn = connect(repo, &remote, url, auth, deadline)?;
    let mut prepare = conn
        .prepare_fetch(
            gix::progress::Discard,
            gix::remote::ref_map::Options::default(),
        )
        .map_err(|e| classify(&e, auth, &ctx))?;
    if shallow {
        prepare = prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(NonZeroU32::MIN));
    }
    let interrupt = AtomicBool::new(false);
    prepare
        .receive(gix::progress::Discard, &interrupt)
        .map_err(|e| classify(&e, auth, &ctx))?;
    Ok(())
}

/// Facts about a written archive.
#[derive(Debug, Clone, Default)]
pub struct ArchiveStats {
    pub files: u64,
    pub bytes: u64,
}

/// Writes the tree of `commit` as a tar.gz to `out`, honouring Flux's
/// default exclusions, `.sourceignore` files and `spec.ignore`; only
/// `sparse` directories when given. Symlinks are skipped (Flux archives
/// regular files and directories only), and so are submodules unless
/// `submodules` has them checked out (`spec.recurseSubmodules`,
/// [`fetch_submodules`]): their trees are archived at their paths. The
/// archive is deterministic: sorted entries, zero times and owners.
pub fn archive_commit(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    submodules: &[Submodule],
    spec_ignore: Option<&str>,
    sparse: &[String],
    out: impl Write,
) -> Result<ArchiveStats, GitError> {
    let (repos, entries) = checked_out(repo, commit, submodules)?;
    let repo_of = |e: &Entry| repos[e.repo];
    let mut sourceignores: Vec<(String, String)> = entries
        .iter()
        .filter(|e| {
            e.kind == EntryKind::File
                && (e.path == IGNORE_FILE || e.path.ends_with(&format!("/{IGNORE_FILE}")))
        })
        .filter_map(|e| {
            let data = repo_of(e).find_object(e.id).ok()?.data.clone();
            let dir = e
                .path
                .rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_default();
            Some((dir, String::from_utf8_lossy(&data).into_owned()))
        })
        .collect();
    sourceignores.sort_by(|a, b| {
        a.0.split('/')
            .count()
            .cmp(&b.0.split('/').count())
            .then(a.0.cmp(&b.0))
    });
    let rules = IgnoreRules::new(&sourceignores, spec_ignore);
    let sparse = sparse_dirs(sparse);

    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut stats = ArchiveStats::default();
    let mut skipped_dirs: Vec<String> = Vec::new();
    for e in &entries {
        if skipped_dirs.iter().any(|d| {
            e.path.starts_with(d.as_str()) && e.path.as_bytes().get(d.len()) == Some(&b'/')
        }) {
            continue;
        }
        if !sparse.is_empty() && !in_sparse(&e.path, e.kind == EntryKind::Dir, &sparse) {
            if e.kind == EntryKind::Dir
                && !sparse
                    .iter()
                    .any(|s| s.starts_with(&format!("{}/", e.path)))
            {
                skipped_dirs.push(e.path.clone());
            }
            continue;
        }
        let is_dir = e.kind == EntryKind::Dir;
        if rules.is_ignored(&e.path, is_dir) {
            if is_dir {
                skipped_dirs.push(e.path.clone());
            }
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match e.kind {
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", e.path), std::io::empty())
                    .map_err(|err| GitError::op(format!("writing archive: {err}")))?;
            }
            EntryKind::File | EntryKind::Executable => {
                let obj = repo_of(e).find_object(e.id).map_err(|err| {
                    GitError::op(format!("reading {}: {}", e.path, error_chain(&err)))
                })?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if e.kind == EntryKind::Executable {
                    0o755
                } else {
                    0o644
                });
                header.set_size(obj.data.len() as u64);
                stats.files += 1;
                stats.bytes += obj.data.len() as u64;
                tar.append_data(&mut header, &e.path, obj.data.as_slice())
                    .map_err(|err| GitError::op(format!("writing archive: {err}")))?;
            }
            EntryKind::Gitlink | EntryKind::Other => {}
        }
    }
    let gz = tar
        .into_inner()
        .map_err(|e| GitError::op(format!("writing archive: {e}")))?;
    let mut out = gz
        .finish()
        .map_err(|e| GitError::op(format!("writing archive: {e}")))?;
    out.flush()
        .map_err(|e| GitError::op(format!("writing archive: {e}")))?;
    Ok(stats)
}

/// Writes the tree of `commit` (with checked-out `submodules`) into the
/// empty directory `dir`, only the `sparse` directories when given:
/// regular files (executables `0755`) and directories; symlinks and empty
/// gitlinks are left out, as the archive leaves them. For builds that add
/// to the tree before it is archived (`spec.include`).
pub fn checkout_commit(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    submodules: &[Submodule],
    sparse: &[String],
    dir: &Path,
) -> Result<ArchiveStats, GitError> {
    use std::os::unix::fs::PermissionsExt;
    let (repos, entries) = checked_out(repo, commit, submodules)?;
    let sparse = sparse_dirs(sparse);
    let io = |path: &str, e: std::io::Error| GitError::op(format!("checking out {path}: {e}"));
    let mut stats = ArchiveStats::default();
    for e in &entries {
        if !sparse.is_empty() && !in_sparse(&e.path, e.kind == EntryKind::Dir, &sparse) {
            continue;
        }
        let target = tree_path(dir, &e.path)
            .ok_or_else(|| GitError::op(format!("checking out {}: not a safe path", e.path)))?;
        match e.kind {
            EntryKind::Dir => std::fs::create_dir_all(&target).map_err(|err| io(&e.path, err))?,
            EntryKind::File | EntryKind::Executable => {
                let obj = repos[e.repo].find_object(e.id).map_err(|err| {
                    GitError::op(format!("reading {}: {}", e.path, error_chain(&err)))
                })?;
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|err| io(&e.path, err))?;
                }
                std::fs::write(&target, &obj.data).map_err(|err| io(&e.path, err))?;
                let mode = if e.kind == EntryKind::Executable {
                    0o755
                } else {
                    0o644
                };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(|err| io(&e.path, err))?;
                stats.files += 1;
                stats.bytes += obj.data.len() as u64;
            }
            EntryKind::Gitlink | EntryKind::Other => {}
        }
    }
    Ok(stats)
}

/// `dir/path` for a path of a tree: no empty, `.`, `..` or `.git`
/// segment (git refuses such trees too; nothing here follows a symlink).
fn tree_path(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || seg.eq_ignore_ascii_case(".git") {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

/// The repositories of a checkout (the fetched one, then each submodule's)
/// and every entry of `commit`'s tree, submodules walked in place.
fn checked_out<'r>(
    repo: &'r gix::Repository,
    commit: gix::ObjectId,
    submodules: &'r [Submodule],
) -> Result<(Vec<&'r gix::Repository>, Vec<Entry>), GitError> {
    let tree = tree_of(repo, commit)?;
    let mut repos: Vec<&gix::Repository> = vec![repo];
    repos.extend(submodules.iter().map(|s| &s.fetched.repo));
    let entries = list_tree(&repos, submodules, tree)?;
    Ok((repos, entries))
}

/// `spec.sparseCheckout` as paths without surrounding slashes (the root,
/// `.` or empty, means everything).
fn sparse_dirs(sparse: &[String]) -> Vec<String> {
    sparse
        .iter()
        .map(|s| s.trim_matches('/').to_string())
        .filter(|s| !s.is_empty() && s != ".")
        .collect()
}

fn in_sparse(path: &str, is_dir: bool, sparse: &[String]) -> bool {
    sparse.iter().any(|s| {
        path == s
            || path.starts_with(&format!("{s}/"))
            // A parent directory of a sparse path is kept (as a directory).
            || (is_dir && s.starts_with(&format!("{path}/")))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryKind {
    Dir,
    File,
    Executable,
    /// A submodule's commit: archived only when checked out.
    Gitlink,
    /// Symlinks: not archived.
    Other,
}

struct Entry {
    path: String,
    kind: EntryKind,
    id: gix::ObjectId,
    /// Which repository holds the object: 0 the fetched one, `n` the
    /// `n-1`th submodule.
    repo: usize,
}

/// The tree of `commit`.
fn tree_of(repo: &gix::Repository, commit: gix::ObjectId) -> Result<gix::ObjectId, GitError> {
    repo.find_commit(commit)
        .and_then(|c| c.tree_id().map(|t| t.detach()))
        .map_err(|e| GitError::op(format!("reading commit {commit}: {}", error_chain(&e))))
}

/// The whole tree, depth first, in Git's sorted order (parents before
/// children), checked-out submodules walked in place of their gitlinks.
fn list_tree(
    repos: &[&gix::Repository],
    submodules: &[Submodule],
    root: gix::ObjectId,
) -> Result<Vec<Entry>, GitError> {
    let mut out = Vec::new();
    walk(repos, submodules, 0, root, "", &mut out)?;
    Ok(out)
}

fn walk(
    repos: &[&gix::Repository],
    submodules: &[Submodule],
    repo_index: usize,
    id: gix::ObjectId,
    prefix: &str,
    out: &mut Vec<Entry>,
) -> Result<(), GitError> {
    let repo = repos[repo_index];
    let tree = repo
        .find_object(id)
        .and_then(|o| o.try_into_tree())
        .map_err(|e| GitError::op(format!("reading tree {id}: {}", error_chain(&e))))?;
    let decoded = tree
        .decode()
        .map_err(|e| GitError::op(format!("decoding tree {id}: {e}")))?;
    let mut subtrees = Vec::new();
    for entry in &decoded.entries {
        let name = entry.filename.to_str_lossy();
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let mode = entry.mode;
        let kind = if mode.is_tree() {
            EntryKind::Dir
        } else if mode.is_commit() {
            EntryKind::Gitlink
        } else if mode.is_link() {
            EntryKind::Other
        } else if mode.is_executable() {
            EntryKind::Executable
        } else {
            EntryKind::File
        };
        subtrees.push((path, kind, entry.oid.to_owned()));
    }
    drop(decoded);
    for (path, kind, oid) in subtrees {
        let checked_out = submodules
            .iter()
            .position(|s| s.path == path && s.commit == oid);
        if let Some(n) = checked_out {
            let sub = &submodules[n];
            out.push(Entry {
                path: path.clone(),
                kind: EntryKind::Dir,
                id: oid,
                repo: repo_index,
            });
            let tree = tree_of(&sub.fetched.repo, sub.fetched.commit)?;
            walk(repos, submodules, n + 1, tree, &path, out)?;
            continue;
        }
        out.push(Entry {
            path: path.clone(),
            kind,
            id: oid,
            repo: repo_index,
        });
        if kind == EntryKind::Dir {
            walk(repos, submodules, repo_index, oid, &path, out)?;
        }
    }
    Ok(())
}

/// A submodule checked out for the archive: its path in the outermost
/// tree, the commit its gitlink names, and that commit fetched.
pub struct Submodule {
    pub path: String,
    pub commit: gix::ObjectId,
    pub fetched: Fetched,
}

/// How deep submodules of submodules are followed (go-git's default, which
/// Flux uses).
pub const MAX_SUBMODULE_DEPTH: usize = 10;

/// Fetches the submodules of `fetched` (a commit of `url`) and theirs, as
/// `spec.recurseSubmodules` asks: each gitlink whose path `.gitmodules`
/// names is fetched from its URL (relative URLs resolved against the
/// parent's, as git does) at the commit the gitlink records, with the same
/// credentials. Gitlinks `.gitmodules` does not name are left empty, as git
/// leaves them. All of it within `timeout`.
pub fn fetch_submodules(
    work: &Path,
    url: &str,
    auth: &Auth,
    fetched: &Fetched,
    timeout: Duration,
) -> Result<Vec<Submodule>, GitError> {
    let deadline = deadline_after(timeout);
    let mut out = Vec::new();
    // (repository, commit, its URL, its path prefix, depth)
    let mut queue: Vec<(Option<usize>, String, String, usize)> =
        vec![(None, url.to_string(), String::new(), 1)];
    while let Some((index, parent_url, prefix, depth)) = queue.pop() {
        let (repo, commit) = match index {
            None => (&fetched.repo, fetched.commit),
            Some(i) => {
                let s: &Submodule = &out[i];
                (&s.fetched.repo, s.fetched.commit)
            }
        };
        let wanted = gitlinks(repo, commit)?;
        let mut found = Vec::new();
        for (path, sub_url, commit) in wanted {
            let sub_url = resolve_submodule_url(&parent_url, &sub_url);
            let full = if prefix.is_empty() {
                path.clone()
            } else {
                format!("{prefix}/{path}")
            };
            // A repository may not make the controller read its own disk:
            // a local submodule only under a local superproject.
            let local_parent = matches!(parse_url(url), Ok(Scheme::File));
            match parse_url(&sub_url) {
                Ok(Scheme::Http | Scheme::Https | Scheme::Ssh) => {}
                Ok(Scheme::File) if local_parent => {}
                _ => {
                    return Err(GitError::op(format!(
                        "failed to fetch submodule '{full}': its URL '{}' is not an http(s) or ssh URL",
                        redact_url(&sub_url)
                    )));
                }
            }
            let target = FetchTarget::Commit {
                sha: commit.to_hex().to_string(),
                branch: None,
            };
            let sub = fetch_until(work, &sub_url, auth, &target, deadline)
                .map_err(|e| finish_error(e, &sub_url, timeout, deadline))
                .map_err(|e| GitError {
                    message: format!("failed to fetch submodule '{full}': {}", e.message),
                    ..e
                })?;
            found.push((full, sub_url, commit, sub));
        }
        for (full, sub_url, commit, sub) in found {
            out.push(Submodule {
                path: full.clone(),
                commit,
                fetched: sub,
            });
            if depth < MAX_SUBMODULE_DEPTH {
                queue.push((Some(out.len() - 1), sub_url, full, depth + 1));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The gitlinks of `commit` that its `.gitmodules` names: (path, URL as
/// written, commit).
fn gitlinks(
    repo: &gix::Repository,
    commit: gix::ObjectId,
) -> Result<Vec<(String, String, gix::ObjectId)>, GitError> {
    let tree = tree_of(repo, commit)?;
    let entries = list_tree(&[repo], &[], tree)?;
    let Some(modules) = entries
        .iter()
        .find(|e| e.path == ".gitmodules" && e.kind != EntryKind::Dir)
    else {
        return Ok(Vec::new());
    };
    let data = repo
        .find_object(modules.id)
        .map_err(|e| GitError::op(format!("reading .gitmodules: {}", error_chain(&e))))?
        .data
        .clone();
    let text = String::from_utf8_lossy(&data);
    let config = gix::config::File::try_from(text.as_ref())
        .map_err(|e| GitError::op(format!("reading .gitmodules: {e}")))?;
    let mut out = Vec::new();
    for section in config.sections_by_name("submodule").into_iter().flatten() {
        let (Some(path), Some(url)) = (section.value("path"), section.value("url")) else {
            continue;
        };
        let path = path.to_str_lossy().trim_matches('/').to_string();
        let gitlink = entries
            .iter()
            .find(|e| e.path == path && e.kind == EntryKind::Gitlink);
        if let Some(link) = gitlink {
            out.push((path, url.to_str_lossy().into_owned(), link.id));
        }
    }
    Ok(out)
}

/// A submodule URL as git resolves it: `./x` and `../x` relative to the
/// superproject's URL (each `../` drops one path component), anything else
/// as written.
pub fn resolve_submodule_url(parent: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            if let Some(cut) = base.rfind('/')
                && !base[..cut].ends_with('/')
            {
                base.truncate(cut);
            }
            rest = r;
        } else {
            break;
        }
    }
    format!("{base}/{rest}")
}

/// Where listings and fetches keep their scratch state.
pub fn work_dir(storage: &Path) -> PathBuf {
    storage.join(".work")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submodule_urls_resolve_against_the_superprojects_as_git_does() {
        let parent = "https://git.example/org/app.git";
        assert_eq!(
            resolve_submodule_url(parent, "../lib.git"),
            "https://git.example/org/lib.git"
        );
        assert_eq!(
            resolve_submodule_url(parent, "../../other/lib.git"),
            "https://git.example/other/lib.git"
        );
        assert_eq!(
            resolve_submodule_url(parent, "./sub"),
            "https://git.example/org/app.git/sub"
        );
        assert_eq!(
            resolve_submodule_url("ssh://git@host/app/", "../lib"),
            "ssh://git@host/lib"
        );
        // Never past the host.
        assert_eq!(
            resolve_submodule_url("https://host/app", "../../../x"),
            "https://host/x"
        );
        assert_eq!(
            resolve_submodule_url(parent, "https://elsewhere/x.git"),
            "https://elsewhere/x.git"
        );
    }

    #[test]
    fn urls_are_validated() {
        assert_eq!(
            parse_url("https://github.com/fluxcd/flux2"),
            Ok(Scheme::Https)
        );
        assert_eq!(
            parse_url("http://127.0.0.1:8080/repo.git"),
            Ok(Scheme::Http)
        );
        assert_eq!(
            parse_url("ssh://git@github.com/fluxcd/flux2"),
            Ok(Scheme::Ssh)
        );
        assert_eq!(parse_url("file:///tmp/repo"), Ok(Scheme::File));
        assert!(parse_url("ftp://example.com/repo").is_err());
        assert!(parse_url("not a url at all").is_err());
        assert!(parse_url("/tmp/plain/path").is_err());
        assert!(parse_url("http://").is_err());
        assert!(parse_url("ssh://").is_err());
        assert!(parse_url("https://exa mple.com/x").is_err());
    }

    #[test]
    fn ssh_urls_without_a_user_log_in_as_git() {
        assert_eq!(
            connect_url("ssh://github.com/org/repo"),
            "ssh://git@github.com/org/repo"
        );
        assert_eq!(
            connect_url("ssh://127.0.0.1:2222/srv/r.git"),
            "ssh://git@127.0.0.1:2222/srv/r.git"
        );
        assert_eq!(connect_url("ssh://me@host/r.git"), "ssh://me@host/r.git");
        assert_eq!(
            connect_url("github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
        assert_eq!(connect_url("https://host/r.git"), "https://host/r.git");
        assert_eq!(connect_url("file:///srv/r.git"), "file:///srv/r.git");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://u:secret@host/r"),
            "https://u:***@host/r"
        );
        assert_eq!(redact_url("ssh://git@host/r"), "ssh://git@host/r");
        assert_eq!(redact_url("https://host/r"), "https://host/r");
    }

    #[test]
    fn errors_hide_tokens_and_say_when_they_timed_out() {
        let url = "https://ghp_TOKEN@git.example.com:8443/o/r.git";
        let e = GitError::op(format!("unable to list remote for '{url}': refused"));
        let late = finish_error(e.clone(), url, Duration::from_secs(3), Instant::now());
        assert!(!late.message.contains("ghp_TOKEN"), "{}", late.message);
        assert!(
            late.message
                .starts_with("timed out after 3s waiting for git.example.com:8443: "),
            "{}",
            late.message
        );
        let early = finish_error(
            e,
            url,
            Duration::from_secs(3),
            Instant::now() + Duration::from_secs(3),
        );
        assert!(!early.message.contains("timed out"), "{}", early.message);
        assert!(!early.message.contains("ghp_TOKEN"), "{}", early.message);
        assert_eq!(
            redact_url("https://TOKEN@host/r"),
            "https://***@host/r",
            "a token alone is hidden too"
        );
    }

    #[test]
    fn auth_debug_and_scrub_hide_secrets() {
        let a = Auth {
            basic: Some(("me".into(), "hunter2".into())),
            bearer_token: Some("tok-123".into()),
            ..Auth::default()
        };
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("tok-123"));
        assert_eq!(a.scrub("x hunter2 y tok-123"), "x *** y ***");
    }
}
