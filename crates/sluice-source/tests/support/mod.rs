//! Test helpers: Git repositories made with the `git` program, the CRD, and
//! a controller + artifact server per test. The smart-HTTP Git server
//! (`git http-backend`, optional basic auth, request counters) lives in
//! `sluice_testsupport::git_server` and is re-exported here.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use sluice_api::meta;
use sluice_source::api::GitRepository;
#[allow(unused_imports)] // not every test binary serves over HTTP
pub use sluice_testsupport::git_server::{GitServer, Repo, git};
use tokio::io::AsyncWriteExt;

/// Installs (server-side applies, forced) the GitRepository CRD of this
/// checkout and waits until it is established. Other test binaries may apply
/// the same CRD at the same time; a conflict is retried.
pub async fn install_crd(client: &Client) {
    let crd = sluice_api::crds().remove(0);
    sluice_testsupport::apply_crd(client, &crd, "sluice-source-tests").await;
    // Give discovery a moment to serve the new resource.
    let api: Api<GitRepository> = Api::all(client.clone());
    for _ in 0..50 {
        if api.list(&Default::default()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running controller (scoped to one namespace) and artifact server.
pub struct Harness {
    pub storage: tempfile::TempDir,
    pub artifact_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Harness {
    pub async fn start(client: &Client, namespace: &str) -> Harness {
        let storage = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let artifact_addr = listener.local_addr().unwrap();
        let router = sluice_source::artifact_router(storage.path());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let opts = sluice_source::Options {
            storage_path: storage.path().to_path_buf(),
            storage_adv_addr: artifact_addr.to_string(),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        };
        let c = client.clone();
        let controller = tokio::spawn(async move {
            if let Err(e) = sluice_source::run(c, opts).await {
                eprintln!("controller exited: {e:#}");
            }
        });
        Harness {
            storage,
            artifact_addr,
            tasks: vec![server, controller],
        }
    }
}

/// `(status, reason, message)` of a condition.
pub fn condition(gr: &GitRepository, type_: &str) -> Option<(String, String, String)> {
    gr.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn is_ready(gr: &GitRepository) -> bool {
    condition(gr, meta::READY_CONDITION).is_some_and(|c| c.0 == "True")
        && gr.status.as_ref().and_then(|s| s.observed_generation) == gr.metadata.generation
}

pub fn revision(gr: &GitRepository) -> Option<String> {
    gr.status
        .as_ref()?
        .artifact
        .as_ref()
        .map(|a| a.revision.clone())
}

/// Creates a GitRepository from JSON spec.
pub async fn create(
    api: &Api<GitRepository>,
    name: &str,
    spec: serde_json::Value,
) -> GitRepository {
    let obj: GitRepository = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    api.create(&Default::default(), &obj)
        .await
        .expect("creating GitRepository")
}

/// Sets `reconcile.fluxcd.io/requestedAt` to a fresh value and returns it.
pub async fn request_reconcile(api: &Api<GitRepository>, name: &str) -> String {
    let token = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let patch = serde_json::json!({"metadata": {"annotations": {meta::RECONCILE_REQUEST_ANNOTATION: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    token
}

/// Downloads `url` with a bare HTTP/1.1 GET (no client crate needed).
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let i = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..i]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = buf[i + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < i + 2 + n + 2 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

/// File names in a tar.gz.
pub fn tar_listing(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let mut names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Reads one file out of a tar.gz.
pub fn tar_file(data: &[u8], path: &str) -> Option<String> {
    use std::io::Read;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(data));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == path {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            return Some(s);
        }
    }
    None
}
