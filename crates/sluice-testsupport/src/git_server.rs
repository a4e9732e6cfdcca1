//! A smart-HTTP Git server for tests: `git http-backend` run as a CGI behind
//! a small axum server on 127.0.0.1, serving every bare repository under a
//! root directory (`<root>/<name>.git` is `http://ADDR/<name>.git`).
//!
//! Optional HTTP basic auth (anything else gets 401 with a
//! `WWW-Authenticate` challenge) and request counters (all requests,
//! rejected ones, protocol v2 `ls-refs` and `fetch` commands) let tests check
//! what a client sent, e.g. that a no-change poll only lists refs.
//!
//! ```no_run
//! # async fn f(root: &std::path::Path) {
//! use sluice_testsupport::git_server::GitServer;
//! let server = GitServer::start(root, Some(("flux", "secret"))).await;
//! let url = server.url("app"); // http://127.0.0.1:PORT/app.git
//! assert_eq!(server.counters.fetches(), 0);
//! # }
//! ```
//!
//! The server runs on the Tokio runtime of the test that starts it and stops
//! when the [`GitServer`] is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

/// Runs the `git` program in `dir` with a fixed identity and no global or
/// system configuration; returns its trimmed stdout and panics with its
/// stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What the server has seen so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Every request, including rejected ones.
    pub requests: AtomicU64,
    /// Requests rejected for missing or wrong basic auth.
    pub unauthorized: AtomicU64,
    /// Protocol v2 `command=ls-refs` requests.
    pub ls_refs: AtomicU64,
    /// Protocol v2 `command=fetch` requests.
    pub fetches: AtomicU64,
}

impl Counters {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    pub fn unauthorized(&self) -> u64 {
        self.unauthorized.load(Ordering::SeqCst)
    }
    pub fn ls_refs(&self) -> u64 {
        self.ls_refs.load(Ordering::SeqCst)
    }
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

struct ServerState {
    root: PathBuf,
    /// The expected `Authorization` header value, when auth is required.
    authorization: Option<String>,
    counters: Arc<Counters>,
}

/// A running server; stops when dropped.
pub struct GitServer {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
    /// With [`GitServer::start_tls`]: the HTTPS front and its CA (PEM).
    tls: Option<(SocketAddr, String, tokio::task::JoinHandle<()>)>,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some((_, _, t)) = &self.tls {
            t.abort();
        }
    }
}

impl GitServer {
    /// Serves the bare repositories under `root`; with `basic`, only to
    /// requests carrying that user name and password.
    pub async fn start(root: &Path, basic: Option<(&str, &str)>) -> GitServer {
        GitServer::start_with(root, basic, Router::new()).await
    }

    /// [`GitServer::start_tls`] with `api`'s routes answered before Git's (a
    /// Git hosting service's REST API beside its repositories).
    pub async fn start_tls_with(
        root: &Path,
        basic: Option<(&str, &str)>,
        api: Router,
    ) -> GitServer {
        GitServer::tls_front(GitServer::start_with(root, basic, api).await).await
    }

    async fn start_with(root: &Path, basic: Option<(&str, &str)>, api: Router) -> GitServer {
        use base64::Engine;
        let counters = Arc::new(Counters::default());
        let state = Arc::new(ServerState {
            root: root.to_path_buf(),
            authorization: basic.map(|(u, p)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            }),
            counters: counters.clone(),
        });
        let app = Router::new().fallback(cgi).with_state(state).merge(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test Git server");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GitServer {
            addr,
            counters,
            task,
            tls: None,
        }
    }

    /// [`GitServer::start`] served over HTTPS only (a TLS front on its own
    /// port, with a certificate for 127.0.0.1 from a CA made for it: see
    /// [`GitServer::ca_pem`]); [`GitServer::url`] gives `https://` URLs.
    pub async fn start_tls(root: &Path, basic: Option<(&str, &str)>) -> GitServer {
        GitServer::tls_front(GitServer::start(root, basic).await).await
    }

    async fn tls_front(mut server: GitServer) -> GitServer {
        use tokio_rustls::rustls;
        let (ca, cert) = crate::certs::ca_and_server();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key.serialize_der()).into(),
            )
            .expect("TLS server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test HTTPS front");
        let front = listener.local_addr().unwrap();
        let plain = server.addr;
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(mut backend) = tokio::net::TcpStream::connect(plain).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut backend).await;
                    }
                });
            }
        });
        server.tls = Some((front, ca.pem, task));
        server
    }

    /// The CA that signed the HTTPS certificate (a Secret's `ca.crt`), with
    /// [`GitServer::start_tls`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, pem, _)| pem.as_str())
    }

    /// `http://ADDR` (`https://` with TLS), without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.tls {
            Some((front, _, _)) => format!("https://{front}"),
            None => format!("http://{}", self.addr),
        }
    }

    /// The URL of `<root>/<repo>.git`.
    pub fn url(&self, repo: &str) -> String {
        format!("{}/{repo}.git", self.base_url())
    }
}

async fn cgi(
    State(st): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    st.counters.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(want) = &st.authorization {
        let got = headers.get("authorization").and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            st.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("WWW-Authenticate", "Basic realm=\"git\"")
                .body(Body::from("unauthorized"))
                .unwrap();
        }
    }
    if method == Method::POST {
        let text = String::from_utf8_lossy(&body);
        if text.contains("command=ls-refs") {
            st.counters.ls_refs.fetch_add(1, Ordering::SeqCst);
        } else if text.contains("command=fetch") {
            st.counters.fetches.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &st.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "test")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (header, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("git-protocol", "GIT_PROTOCOL"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(v) = headers.get(header).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    let mut child = cmd.spawn().expect("spawning git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
        let _ = stdin.shutdown().await;
    });
    let out = child.wait_with_output().await.expect("git http-backend");
    let _ = writer.await;
    cgi_response(&out.stdout)
}

/// Turns CGI output (headers, a blank line, the body) into a response.
fn cgi_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((i, n)) = split else {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("bad cgi output"))
            .unwrap();
    };
    let head = String::from_utf8_lossy(&raw[..i]);
    let mut resp = Response::builder();
    let mut status = 200u16;
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            status = v
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
        } else {
            resp = resp.header(k.trim(), v);
        }
    }
    resp.status(status)
        .body(Body::from(raw[i + n..].to_vec()))
        .unwrap()
}

/// A working clone plus the bare repository it pushes to.
pub struct Repo {
    pub _dir: tempfile::TempDir,
    /// The bare repository (what servers serve).
    pub bare: PathBuf,
    /// The working tree.
    pub work: PathBuf,
}

impl Repo {
    /// `root/<name>.git` bare plus a work tree on branch `main`.
    pub fn new(name: &str) -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("srv").join(format!("{name}.git"));
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "--bare", "-q", "-b", "main"]);
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Repo {
            _dir: dir,
            bare,
            work,
        }
    }

    /// Directory served by the HTTP server (parent of the bare repo).
    pub fn served_root(&self) -> PathBuf {
        self.bare.parent().unwrap().to_path_buf()
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Commits everything and returns the commit id.
    pub fn commit(&self, msg: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn push(&self, refspec: &str) {
        git(&self.work, &["push", "-q", "--force", "origin", refspec]);
    }

    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output_becomes_a_response() {
        let r = cgi_response(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = cgi_response(b"Content-Type: x\n\nbody");
        assert_eq!(r.status(), 200);
        assert_eq!(cgi_response(b"garbage").status(), 500);
    }
}
