//! Test helpers: Git repositories made with the `git` program, the CRD, and
//! a controller + artifact server per test. The smart-HTTP Git server
//! (`git http-backend`, optional basic auth, request counters) lives in
//! `sluice_testsupport::git_server` and is re-exported here.

use std::net::SocketAddr;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use sluice_api::meta;
use sluice_source::api::GitRepository;
#[allow(unused_imports)] // not every test binary serves over HTTP
pub use sluice_testsupport::git_server::{GitServer, Repo, git};
use tokio::io::AsyncWriteExt;

/// Installs (server-side applies, forced) the source CRDs of this checkout
/// (GitRepository, OCIRepository, HelmRepository, HelmChart) and waits until
/// they are established. Other test binaries may apply the same CRDs at the
/// same time; a conflict is retried.
pub async fn install_crd(client: &Client) {
    for crd in sluice_api::crds() {
        if crd.spec.group == sluice_api::source::GROUP {
            sluice_testsupport::apply_crd(client, &crd, "sluice-source-tests").await;
        }
    }
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

/// Creates an object of any source kind from its kind and JSON spec.
pub async fn create_source<K>(api: &Api<K>, kind: &str, name: &str, spec: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    api.create(&Default::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating {kind} {name}: {e}"))
}

/// Merge-patches an object's spec.
pub async fn patch_spec<K>(api: &Api<K>, name: &str, spec: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({ "spec": spec })),
    )
    .await
    .unwrap_or_else(|e| panic!("patching {name}: {e}"));
}

/// Sets `reconcile.fluxcd.io/requestedAt` on an object of any kind.
pub async fn request<K>(api: &Api<K>, name: &str) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
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

/// An object of any kind as JSON, for status checks.
pub fn json<K: serde::Serialize>(obj: &K) -> serde_json::Value {
    serde_json::to_value(obj).unwrap()
}

/// `(status, reason, message)` of a condition of any kind.
pub fn cond<K: serde::Serialize>(obj: &K, type_: &str) -> Option<(String, String, String)> {
    let v = json(obj);
    v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Ready=True at the current generation.
pub fn ready<K: serde::Serialize>(obj: &K) -> bool {
    let v = json(obj);
    cond(obj, meta::READY_CONDITION).is_some_and(|c| c.0 == "True")
        && v["status"]["observedGeneration"] == v["metadata"]["generation"]
}

/// Ready=False with this reason (at any generation).
pub fn failed_with<K: serde::Serialize>(obj: &K, reason: &str) -> bool {
    cond(obj, meta::READY_CONDITION).is_some_and(|c| c.0 == "False" && c.1 == reason)
}

/// `status.artifact` of any kind.
pub fn artifact_of<K: serde::Serialize>(obj: &K) -> Option<sluice_api::meta::Artifact> {
    serde_json::from_value(json(obj)["status"]["artifact"].clone()).ok()
}

/// A chart archive as `helm package` lays it out: `<name>/Chart.yaml`,
/// `values.yaml` and a ConfigMap template using `.Values.greeting`.
pub fn chart_tgz(name: &str, version: &str, greeting: &str) -> Vec<u8> {
    let files = [
        (
            "Chart.yaml",
            format!("apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"1.0\"\n"),
        ),
        ("values.yaml", format!("greeting: {greeting}\n")),
        (
            "templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n".to_string(),
        ),
    ];
    tgz(&files
        .into_iter()
        .map(|(path, contents)| (format!("{name}/{path}"), contents.into_bytes()))
        .collect())
}

/// A `.tar.gz` of these files (path to contents).
pub fn tgz(files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// The files of a `.tar.gz`, path to contents (directories left out).
pub fn untar(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut out = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_dir() {
            continue;
        }
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, data);
    }
    out
}

/// Creates a Secret in `ns` with `data` (replacing one of the same name).
pub async fn secret(ns: &sluice_testsupport::TestNamespace, name: &str, data: &[(&str, &str)]) {
    secret_of_type(ns, name, None, data).await
}

/// [`secret`] of a given `type` (`kubernetes.io/dockerconfigjson`, ...).
pub async fn secret_of_type(
    ns: &sluice_testsupport::TestNamespace,
    name: &str,
    type_: Option<&str>,
    data: &[(&str, &str)],
) {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = ns.api();
    let data = data
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        type_: type_.map(str::to_string),
        data: Some(data),
        ..Default::default()
    };
    let _ = api.delete(name, &Default::default()).await;
    api.create(&Default::default(), &s)
        .await
        .unwrap_or_else(|e| panic!("creating Secret {name}: {e}"));
}
