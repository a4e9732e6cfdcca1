//! A real OCI registry for tests: Debian's `docker-registry` (distribution
//! v2.8) on 127.0.0.1 with its own config file, filesystem storage in a
//! temporary directory and a free port; plus a local HTTP Helm repository.
//!
//! Variants ([`RegistryConfig`]): anonymous, basic auth (an htpasswd file
//! with a bcrypt entry), TLS (a CA and a server certificate made per
//! registry; optionally client certificates required, for mTLS), and a
//! Bearer token flow (a small token endpoint in front of an anonymous
//! registry: 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`,
//! tokens from `GET /token`, with basic auth when configured).
//!
//! Without TLS an in-process proxy sits in front of the registry and records
//! every request (method, path, status, response bytes), so tests can check
//! that a no-change poll is one manifest `HEAD`. With TLS the registry
//! serves directly and nothing is recorded.
//!
//! When the binary is missing, [`OciRegistry::start`] returns `None` after
//! printing why; tests then skip (`let Some(reg) = OciRegistry::start(..)
//! else { return };`). `scripts/install-deps` installs it.
//!
//! The servers run on their own threads and runtimes, so the helpers work
//! from plain `#[test]`s and from async tests alike; everything stops when
//! the handle is dropped.

use crate::free_port;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// Where the registry binary is: `$SLUICE_DOCKER_REGISTRY`, or Debian's
/// `/usr/bin/docker-registry`.
pub fn registry_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_DOCKER_REGISTRY") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let p = PathBuf::from("/usr/bin/docker-registry");
    p.is_file().then_some(p)
}

/// Which registry to start.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// htpasswd basic auth with this user and password.
    pub basic: Option<(String, String)>,
    /// Serve HTTPS with a per-registry CA.
    pub tls: bool,
    /// With `tls`: require a client certificate signed by the CA.
    pub client_certs: bool,
    /// A Bearer token flow in front of the registry.
    pub bearer: Option<BearerConfig>,
}

/// The token endpoint's behaviour.
#[derive(Clone, Debug)]
pub struct BearerConfig {
    /// Basic credentials the token endpoint requires (anonymous tokens
    /// when `None`, as ghcr.io gives for public images).
    pub credentials: Option<(String, String)>,
    /// `expires_in` of the tokens.
    pub expires_in: u64,
}

impl RegistryConfig {
    pub fn anonymous() -> RegistryConfig {
        RegistryConfig::default()
    }

    pub fn basic(user: &str, password: &str) -> RegistryConfig {
        RegistryConfig {
            basic: Some((user.into(), password.into())),
            ..RegistryConfig::default()
        }
    }

    pub fn tls() -> RegistryConfig {
        RegistryConfig {
            tls: true,
            ..RegistryConfig::default()
        }
    }

    pub fn mtls() -> RegistryConfig {
        RegistryConfig {
            tls: true,
            client_certs: true,
            ..RegistryConfig::default()
        }
    }

    /// Tokens for anyone (`credentials: None`) or for these credentials.
    pub fn bearer(credentials: Option<(&str, &str)>) -> RegistryConfig {
        RegistryConfig {
            bearer: Some(BearerConfig {
                credentials: credentials.map(|(u, p)| (u.into(), p.into())),
                expires_in: 300,
            }),
            ..RegistryConfig::default()
        }
    }
}

/// PEM material of a TLS registry.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    pub ca_pem: String,
    /// A client certificate and key signed by the CA (for mTLS).
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// One request the proxy forwarded (or answered itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub status: u16,
    /// Response body bytes.
    pub bytes: u64,
}

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<Seen>>,
}

impl Log {
    fn push(&self, s: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(s);
    }
}

/// A running registry. Dropping it stops the process and the proxy.
pub struct OciRegistry {
    child: Child,
    _dir: tempfile::TempDir,
    host: String,
    config: RegistryConfig,
    tls: Option<TlsMaterial>,
    log: Arc<Log>,
    proxy: Option<ProxyHandle>,
}

struct ProxyHandle {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        self.proxy.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OciRegistry {
    /// Starts a registry, or returns `None` (with a message on stderr) when
    /// the `docker-registry` binary is not installed.
    pub fn start(config: RegistryConfig) -> Option<OciRegistry> {
        let Some(binary) = registry_binary() else {
            eprintln!(
                "skipping: no OCI registry binary (/usr/bin/docker-registry, Debian's \
                 docker-registry package; scripts/install-deps installs it, or set \
                 SLUICE_DOCKER_REGISTRY)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: sluice-test-secret\n  relativeurls: true\n",
            root = dir.path().join("data").display(),
        );
        let mut tls = None;
        if config.tls {
            let material = make_tls(dir.path());
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            ));
            if config.client_certs {
                yaml.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    dir.path().join("ca.crt").display()
                ));
            }
            tls = Some(material);
        }
        if let Some((user, password)) = &config.basic {
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("writing htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: sluice-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, yaml).expect("writing the registry config");
        let log_path = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log_path).expect("registry log");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("registry log"))
            .stderr(log_file)
            .spawn()
            .expect("starting docker-registry");
        let mut reg = OciRegistry {
            child,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
            config: config.clone(),
            tls,
            log: Arc::new(Log::default()),
            proxy: None,
        };
        reg.wait_ready(port, &log_path);
        if !config.tls {
            let (host, handle) = start_proxy(port, config.bearer.clone(), reg.log.clone());
            reg.host = host;
            reg.proxy = Some(handle);
        }
        Some(reg)
    }

    fn wait_ready(&mut self, port: u16, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen within 20 s: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`, what clients connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `oci://127.0.0.1:PORT/<repo>`.
    pub fn url(&self, repo: &str) -> String {
        format!("oci://{}/{repo}", self.host)
    }

    pub fn reference(&self, repo: &str) -> sluice_oci::Reference {
        sluice_oci::Reference::new(&self.host, repo).expect("a valid repository name")
    }

    /// Where the registry keeps a blob's bytes (filesystem storage), for
    /// tests that corrupt one.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self._dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// Whether clients must use plain HTTP (`insecure`).
    pub fn is_plain_http(&self) -> bool {
        !self.config.tls
    }

    pub fn tls(&self) -> Option<&TlsMaterial> {
        self.tls.as_ref()
    }

    /// The credentials this registry accepts, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.config.basic.clone().or_else(|| {
            self.config
                .bearer
                .as_ref()
                .and_then(|b| b.credentials.clone())
        })
    }

    /// Client options that work against this registry: plain HTTP or its
    /// CA (and client certificate), its credentials.
    pub fn client_options(&self) -> sluice_oci::ClientOptions {
        let mut o = sluice_oci::ClientOptions {
            insecure: self.is_plain_http(),
            timeout: Duration::from_secs(30),
            ..sluice_oci::ClientOptions::default()
        };
        if let Some(t) = &self.tls {
            o.tls.ca_pem = Some(t.ca_pem.clone().into_bytes());
            if self.config.client_certs {
                o.tls.client_cert_pem = Some(t.client_cert_pem.clone().into_bytes());
                o.tls.client_key_pem = Some(t.client_key_pem.clone().into_bytes());
            }
        }
        if let Some((u, p)) = self.credentials() {
            o.keychain =
                sluice_oci::Keychain::with_credentials(sluice_oci::Credentials::basic(u, p));
        }
        o
    }

    pub fn client(&self) -> sluice_oci::Client {
        sluice_oci::Client::new(self.client_options()).expect("an OCI client")
    }

    /// Every request seen so far (plain-HTTP registries only).
    pub fn requests(&self) -> Vec<Seen> {
        self.log
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests had this method and a path containing `path_part`.
    pub fn count(&self, method: &str, path_part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|s| s.method == method && s.path.contains(path_part))
            .count()
    }

    /// Forgets the requests seen so far.
    pub fn reset_requests(&self) {
        self.log
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Pushes `dir` as a Flux artifact to `<repo>:<tag>`; returns
    /// `<tag>@sha256:<hex>`.
    pub fn push_artifact(&self, repo: &str, tag: &str, dir: &Path) -> String {
        push_artifact(self, repo, tag, dir)
    }

    /// Pushes a chart archive under `<base_repo>/<chart name>:<version>`, as
    /// `helm push`; returns the push result.
    pub fn push_chart(&self, base_repo: &str, chart_tgz: &[u8]) -> sluice_oci::artifact::Pushed {
        push_chart(self, base_repo, chart_tgz)
    }
}

/// Pushes `dir` as a Flux artifact (revision `source`/`revision`
/// annotations set to test values); returns `<tag>@sha256:<hex>`.
pub fn push_artifact(registry: &OciRegistry, repo: &str, tag: &str, dir: &Path) -> String {
    off_runtime(|| {
        let meta = sluice_oci::artifact::Metadata {
            source: Some("https://example.com/sluice-test.git".into()),
            revision: Some(format!(
                "{tag}@sha1:0000000000000000000000000000000000000000"
            )),
            ..Default::default()
        };
        sluice_oci::artifact::push_artifact(
            &registry.client(),
            &registry.reference(repo),
            tag,
            dir,
            &meta,
            &[],
        )
        .unwrap_or_else(|e| panic!("pushing {dir:?} to {repo}:{tag}: {e}"))
        .revision()
    })
}

/// Runs blocking client work on a thread of its own: the blocking HTTP
/// client may not be created or dropped on an async runtime's thread, and
/// these helpers are called from async tests too.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Pushes a chart archive as `helm push <tgz> oci://host/<base_repo>`.
pub fn push_chart(
    registry: &OciRegistry,
    base_repo: &str,
    chart_tgz: &[u8],
) -> sluice_oci::artifact::Pushed {
    off_runtime(|| {
        sluice_oci::helm::push_chart(
            &registry.client(),
            &registry.reference(base_repo),
            chart_tgz,
        )
        .unwrap_or_else(|e| panic!("pushing a chart to {base_repo}: {e}"))
    })
}

fn make_tls(dir: &Path) -> TlsMaterial {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let (ca, server) = crate::certs::ca_and_server();
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client
        .distinguished_name
        .push(DnType::CommonName, "sluice test client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().expect("client key");
    let client_cert = client
        .signed_by(&client_key, &ca.issuer)
        .expect("client cert");

    std::fs::write(dir.join("ca.crt"), &ca.pem).expect("writing ca.crt");
    std::fs::write(dir.join("server.crt"), server.cert.pem()).expect("writing server.crt");
    std::fs::write(dir.join("server.key"), server.key.serialize_pem()).expect("server.key");
    TlsMaterial {
        ca_pem: ca.pem,
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

// ---- the counting (and token-checking) proxy ----

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    log: Arc<Log>,
    bearer: Option<BearerConfig>,
    /// Issued tokens and the scopes they grant.
    tokens: Mutex<HashMap<String, HashSet<String>>>,
    next_token: AtomicU64,
    /// `http://127.0.0.1:PORT` of the proxy itself (the token realm).
    public: Mutex<String>,
}

fn start_proxy(
    upstream_port: u16,
    bearer: Option<BearerConfig>,
    log: Arc<Log>,
) -> (String, ProxyHandle) {
    sluice_oci::install_crypto_provider();
    let (tx_addr, rx_addr) = std::sync::mpsc::channel::<SocketAddr>();
    let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding the proxy");
            let addr = listener.local_addr().expect("proxy address");
            let state = Arc::new(ProxyState {
                upstream: format!("http://127.0.0.1:{upstream_port}"),
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("proxy client"),
                log,
                bearer,
                tokens: Mutex::new(HashMap::new()),
                next_token: AtomicU64::new(1),
                public: Mutex::new(format!("http://{addr}")),
            });
            let app = Router::new().fallback(proxy).with_state(state);
            let _ = tx_addr.send(addr);
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx_stop.await;
                })
                .await;
        });
    });
    let addr = rx_addr
        .recv_timeout(Duration::from_secs(10))
        .expect("the proxy did not start");
    (
        addr.to_string(),
        ProxyHandle {
            shutdown: Some(tx_stop),
            thread: Some(thread),
        },
    )
}

/// The repository a `/v2/<name>/(manifests|blobs|tags)/…` path names.
fn repository_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some(i) = rest.rfind(marker) {
            return Some(rest[..i].to_string());
        }
    }
    None
}

fn basic_matches(headers: &HeaderMap, creds: &(String, String)) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.0, creds.1))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == want)
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn proxy(State(state): State<Arc<ProxyState>>, req: Request<Body>) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = handle(&state, req).await;
    let bytes = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    state.log.push(Seen {
        method: method.to_string(),
        path,
        status: resp.status().as_u16(),
        bytes,
    });
    resp
}

async fn handle(state: &ProxyState, req: Request<Body>) -> Response {
    let path = req.uri().path().to_string();
    if let Some(bearer) = &state.bearer {
        if path == "/token" {
            return token(
                state,
                bearer,
                req.headers(),
                req.uri().query().unwrap_or(""),
            );
        }
        let action = if matches!(*req.method(), Method::GET | Method::HEAD) {
            "pull"
        } else {
            "push"
        };
        let repo = repository_of(&path);
        let needed = repo.as_ref().map(|r| format!("repository:{r}:{action}"));
        let granted = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| {
                let tokens = state
                    .tokens
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tokens.get(t).cloned()
            });
        let ok = match (&granted, &needed) {
            (Some(_), None) => true,
            (Some(g), Some(n)) => g.contains(n),
            (None, _) => false,
        };
        if !ok {
            let realm = state
                .public
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let mut challenge =
                format!(r#"Bearer realm="{realm}/token",service="sluice-test-registry""#);
            if let Some(r) = &repo {
                let actions = if action == "push" {
                    "pull,push"
                } else {
                    "pull"
                };
                challenge.push_str(&format!(r#",scope="repository:{r}:{actions}""#));
            }
            let mut resp = (
                StatusCode::UNAUTHORIZED,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert("www-authenticate", v);
            }
            return resp;
        }
    }
    if path.ends_with("/tags/list")
        && req.method() == Method::GET
        && let Some(n) = query_params(req.uri().query().unwrap_or(""))
            .iter()
            .find(|(k, _)| k == "n")
            .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        return paged_tags(state, req, &path, n).await;
    }
    forward(state, req, state.bearer.is_some()).await
}

/// Tag lists in pages of `n` after `last`, with a `Link` to the next page,
/// as distribution v3 and most hosted registries answer (v2.8 ignores `n`).
async fn paged_tags(state: &ProxyState, req: Request<Body>, path: &str, n: usize) -> Response {
    let last = query_params(req.uri().query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "last")
        .map(|(_, v)| v);
    let mut rb = state.http.get(format!("{}{path}", state.upstream));
    if state.bearer.is_none()
        && let Some(a) = req.headers().get("authorization")
    {
        rb = rb.header("authorization", a);
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        let mut out = Response::builder().status(status);
        for (k, v) in &headers {
            if !matches!(k.as_str(), "connection" | "transfer-encoding") {
                out = out.header(k, v);
            }
        }
        return out
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response());
    }
    let raw = resp.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    let mut tags: Vec<String> = body
        .get("tags")
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    let rest: Vec<String> = tags
        .into_iter()
        .filter(|t| last.as_ref().is_none_or(|l| t > l))
        .collect();
    let page: Vec<String> = rest.iter().take(n.max(1)).cloned().collect();
    let mut out = Response::builder()
        .status(200)
        .header("content-type", "application/json");
    if rest.len() > page.len()
        && let Some(l) = page.last()
    {
        out = out.header("link", format!(r#"<{path}?n={n}&last={l}>; rel="next""#));
    }
    let json = serde_json::json!({"name": body.get("name"), "tags": page}).to_string();
    out.header("content-length", json.len().to_string())
        .body(Body::from(json))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn token(state: &ProxyState, bearer: &BearerConfig, headers: &HeaderMap, query: &str) -> Response {
    if let Some(creds) = &bearer.credentials
        && !basic_matches(headers, creds)
    {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid credentials"}]}"#,
        )
            .into_response();
    }
    let mut granted = HashSet::new();
    for (k, v) in query_params(query) {
        if k != "scope" {
            continue;
        }
        // `repository:NAME:pull,push` grants each action.
        let mut parts = v.rsplitn(2, ':');
        let (Some(actions), Some(prefix)) = (parts.next(), parts.next()) else {
            continue;
        };
        for a in actions.split(',') {
            granted.insert(format!("{prefix}:{a}"));
        }
    }
    let n = state.next_token.fetch_add(1, Ordering::SeqCst);
    let value = format!("test-token-{n}");
    state
        .tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(value.clone(), granted);
    let body = serde_json::json!({
        "token": value,
        "access_token": value,
        "expires_in": bearer.expires_in,
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn forward(state: &ProxyState, req: Request<Body>, strip_auth: bool) -> Response {
    let (parts, body) = req.into_parts();
    let url = format!(
        "{}{}",
        state.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut rb = state.http.request(parts.method.clone(), &url);
    for (k, v) in &parts.headers {
        let name = k.as_str();
        if matches!(
            name,
            "host" | "connection" | "transfer-encoding" | "content-length"
        ) || (strip_auth && name == "authorization")
        {
            continue;
        }
        rb = rb.header(k, v);
    }
    let resp = match rb.body(body).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut out = Response::builder().status(status.as_u16());
    for (k, v) in &headers {
        if matches!(k.as_str(), "connection" | "transfer-encoding") {
            continue;
        }
        out = out.header(k, v);
    }
    out.body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

// ---- a local HTTP Helm repository ----

/// A local HTTP Helm repository: serves a directory (`index.yaml` and chart
/// `.tgz`s) on 127.0.0.1, optionally behind basic auth, counting requests
/// per path. Dropping it stops the server.
pub struct HelmRepoServer {
    addr: SocketAddr,
    dir: PathBuf,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    _proxy: ProxyHandle,
}

struct HelmState {
    dir: PathBuf,
    basic: Option<(String, String)>,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl HelmRepoServer {
    /// Serves `dir`; with `basic`, every request needs those credentials.
    pub fn start(dir: &Path, basic: Option<(&str, &str)>) -> HelmRepoServer {
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let state = Arc::new(HelmState {
            dir: dir.to_path_buf(),
            basic: basic.map(|(u, p)| (u.to_string(), p.to_string())),
            counts: counts.clone(),
        });
        let (tx_addr, rx_addr) = std::sync::mpsc::channel::<SocketAddr>();
        let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("helm repository runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("binding the helm repository");
                let _ = tx_addr.send(listener.local_addr().expect("address"));
                let app = Router::new().fallback(serve_file).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx_stop.await;
                    })
                    .await;
            });
        });
        let addr = rx_addr
            .recv_timeout(Duration::from_secs(10))
            .expect("the helm repository did not start");
        HelmRepoServer {
            addr,
            dir: dir.to_path_buf(),
            counts,
            _proxy: ProxyHandle {
                shutdown: Some(tx_stop),
                thread: Some(thread),
            },
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests for `path` (like `/index.yaml`) so far.
    pub fn count(&self, path: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests so far, all paths.
    pub fn total(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }

    /// Writes a chart archive into the served directory as
    /// `<name>-<version>.tgz` and rewrites `index.yaml` with every chart
    /// there (as `helm repo index`, URLs relative). Returns the file name.
    pub fn add_chart(&self, chart_tgz: &[u8]) -> String {
        let info = sluice_oci::helm::chart_info(chart_tgz).expect("a chart archive");
        let file = format!("{}-{}.tgz", info.name, info.version);
        std::fs::write(self.dir.join(&file), chart_tgz).expect("writing the chart");
        write_index(&self.dir);
        file
    }
}

/// Writes `dir/index.yaml` for the chart archives in `dir` (URLs relative,
/// sha256 digests, newest version first per chart).
pub fn write_index(dir: &Path) {
    use sha2::Digest as _;
    let mut entries: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("reading the chart directory")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    files.sort();
    for path in files {
        let data = std::fs::read(&path).expect("reading a chart");
        let info = sluice_oci::helm::chart_info(&data).expect("a chart archive");
        let mut entry = info.metadata.clone();
        if let Some(obj) = entry.as_object_mut() {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            obj.insert("urls".into(), serde_json::json!([file]));
            obj.insert(
                "digest".into(),
                serde_json::json!(format!("{:x}", sha2::Sha256::digest(&data))),
            );
            obj.insert("created".into(), serde_json::json!("2024-01-01T00:00:00Z"));
        }
        entries.entry(info.name.clone()).or_default().push(entry);
    }
    for versions in entries.values_mut() {
        versions.sort_by(|a, b| {
            let v = |x: &serde_json::Value| {
                x.get("version")
                    .and_then(|v| v.as_str())
                    .and_then(sluice_semver::parse_lenient)
            };
            v(b).cmp(&v(a))
        });
    }
    let index = serde_json::json!({
        "apiVersion": "v1",
        "entries": entries,
        "generated": "2024-01-01T00:00:00Z",
    });
    let yaml = serde_norway::to_string(&index).expect("index.yaml");
    std::fs::write(dir.join("index.yaml"), yaml).expect("writing index.yaml");
}

async fn serve_file(State(state): State<Arc<HelmState>>, req: Request<Body>) -> Response {
    let path = req.uri().path().to_string();
    *state
        .counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(path.clone())
        .or_default() += 1;
    if let Some(creds) = &state.basic
        && !basic_matches(req.headers(), creds)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", r#"Basic realm="helm""#)],
            "unauthorized",
        )
            .into_response();
    }
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(state.dir.join(rel)).await {
        Ok(data) => {
            let ct = if rel.ends_with(".yaml") {
                "application/x-yaml"
            } else {
                "application/octet-stream"
            };
            (StatusCode::OK, [("content-type", ct)], data).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
