//! Test support for code that talks to Kubernetes.
//!
//! Every test of sluice that touches the API runs against a real control
//! plane (kube-apiserver, etcd, kube-controller-manager, kube-scheduler and
//! simulated nodes) started by `scripts/testenv`. This crate finds that
//! control plane and hands each test a [`kube::Client`] and a namespace of
//! its own.
//!
//! Where the control plane comes from:
//! - `SLUICE_TEST_KUBECONFIG` names the kubeconfig of a running instance
//!   (`make test` starts one instance for the whole run and sets it);
//! - otherwise the first test of a test binary starts a private instance with
//!   `scripts/testenv up --owner-pid <this process>`, so it is torn down when
//!   the test binary exits, however it exits.
//!
//! For tests of Git sources it also has [`git_server`], a smart-HTTP Git
//! server (`git http-backend`) with optional basic auth and request counters,
//! and [`ssh_server`], a private `sshd` serving Git over ssh. For OCI and
//! Helm sources, [`oci_registry`] starts a real registry (anonymous, basic
//! auth, TLS/mTLS or a Bearer token flow, with request counting) and a local
//! HTTP Helm repository. For Bucket sources, [`s3_server`] starts a real S3
//! server (Versity's gateway) that checks request signatures.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, Resource};
use serde_json::json;

pub mod bad_input;
mod certs;
pub mod forward_proxy;
pub mod git_server;
pub mod gitea;
pub mod kubelet;
pub mod oci_registry;
mod ports;
pub mod s3_server;
pub mod ssh_server;
pub mod static_http;

pub use ports::free_port;

/// Names the kubeconfig of an already running control plane to use.
pub const KUBECONFIG_ENV: &str = "SLUICE_TEST_KUBECONFIG";

/// Label put on every namespace made for a test, so leftovers are easy to find.
pub const TEST_NAMESPACE_LABEL: &str = "sluice.dev/test";

/// The repository root (this crate lives in `crates/sluice-testsupport`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

static KUBECONFIG: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Path of the kubeconfig for the control plane, starting one if needed.
///
/// Panics with the reason when no control plane can be had: a test that needs
/// Kubernetes must fail loudly rather than pass without it.
pub fn kubeconfig_path() -> PathBuf {
    let found = KUBECONFIG.get_or_init(|| locate_or_start().map_err(|e| format!("{e:#}")));
    match found {
        Ok(path) => path.clone(),
        Err(reason) => panic!("no Kubernetes control plane for this test: {reason}"),
    }
}

fn locate_or_start() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{KUBECONFIG_ENV}={} does not name a file", path.display());
        }
        return Ok(path);
    }
    start_private_instance()
}

/// Starts an instance owned by this process (`--owner-pid`): its watchdog
/// stops it when the test binary exits.
fn start_private_instance() -> Result<PathBuf> {
    let script = repo_root().join("scripts/testenv");
    let pid = std::process::id();
    let name = format!("cargo-test-{pid}");
    let output = Command::new(&script)
        .args(["up", "--name", &name, "--owner-pid", &pid.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "`{} up` failed ({}); set {KUBECONFIG_ENV} to use a running instance",
            script.display(),
            output.status
        );
    }
    parse_export_line(&String::from_utf8_lossy(&output.stdout))
}

/// Extracts the path from the `export KUBECONFIG=...` line that
/// `scripts/testenv up` prints.
pub fn parse_export_line(stdout: &str) -> Result<PathBuf> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("export KUBECONFIG="))
        .map(|p| PathBuf::from(p.trim_matches(|c| c == '"' || c == '\'')))
        .ok_or_else(|| {
            anyhow!("`scripts/testenv up` printed no `export KUBECONFIG=` line: {stdout:?}")
        })
}

/// A client for the test control plane. Build one per test: a client is tied
/// to the Tokio runtime it was made on, and each `#[tokio::test]` has its own.
pub async fn client() -> Client {
    try_client()
        .await
        .unwrap_or_else(|e| panic!("building a client for the test control plane: {e:#}"))
}

async fn try_client() -> Result<Client> {
    Ok(Client::try_from(try_config().await?)?)
}

/// The client configuration of the test control plane (for controllers run in a test).
pub async fn config() -> Config {
    try_config()
        .await
        .unwrap_or_else(|e| panic!("reading the test control plane's kubeconfig: {e:#}"))
}

/// The text of the control plane's kubeconfig (self-contained: its certificates are inline),
/// with its server replaced by `server` when given: what a test puts in a Secret for
/// `spec.kubeConfig`.
pub fn kubeconfig_text(server: Option<&str>) -> String {
    let path = kubeconfig_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    match server {
        None => text,
        Some(s) => text
            .lines()
            .map(|l| match l.find("server:") {
                Some(i) => format!("{}server: {s}\n", &l[..i]),
                None => format!("{l}\n"),
            })
            .collect(),
    }
}

async fn try_config() -> Result<Config> {
    let path = kubeconfig_path();
    let kubeconfig =
        Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

/// A namespace that belongs to one test.
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `sluice-t-<prefix>-<unique>` and waits until its `default`
    /// ServiceAccount exists, so Pods can be admitted straight away.
    pub async fn create(client: &Client, prefix: &str) -> Self {
        let name = unique_name(&format!("sluice-t-{prefix}"));
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(&sas, "default", Duration::from_secs(30), |_| true).await;
        TestNamespace {
            name,
            client: client.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A namespaced API for this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (without waiting for finalization).
    pub async fn delete(self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        if let Err(e) = api.delete(&self.name, &DeleteParams::background()).await {
            tracing::warn!(namespace = %self.name, "deleting test namespace: {e}");
        }
    }
}

/// A name unique within this machine for the life of the test run.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = (std::process::id() ^ nanos ^ n.wrapping_mul(2_654_435_761)) % 0xff_ffff;
    format!("{prefix}-{tag:06x}{n}")
}

/// Polls `name` every 100 ms until `ready` holds, and returns it. On timeout
/// it panics with the last state seen, which is what one needs to debug.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    ready: impl Fn(&K) -> bool,
) -> K
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned + serde::Serialize,
    <K as Resource>::DynamicType: Default,
{
    let start = Instant::now();
    let mut last: Option<K> = None;
    let mut last_err = None;
    while start.elapsed() < timeout {
        match api.get_opt(name).await {
            Ok(Some(obj)) => {
                if ready(&obj) {
                    return obj;
                }
                last = Some(obj);
            }
            Ok(None) => {}
            Err(e) => last_err = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = last
        .map(|o| serde_json::to_string_pretty(&json!(o)).unwrap_or_default())
        .unwrap_or_else(|| "never found".to_string());
    panic!(
        "timed out after {timeout:?} waiting for {} {name}; last error: {last_err:?}; last state:\n{state}",
        K::kind(&Default::default()),
    )
}

/// Server-side applies a CustomResourceDefinition (typed or JSON) under
/// `field_manager` and waits until it is Established. Tests running at the
/// same time may apply the same CRD: a conflict is retried.
pub async fn apply_crd(client: &Client, crd: &impl serde::Serialize, field_manager: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    let mut value = json!(crd);
    value["apiVersion"] = json!("apiextensions.k8s.io/v1");
    value["kind"] = json!("CustomResourceDefinition");
    let name = value["metadata"]["name"]
        .as_str()
        .expect("a CRD has a name")
        .to_owned();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut last = None;
    for _ in 0..10 {
        match crds
            .patch(
                &name,
                &PatchParams::apply(field_manager).force(),
                &Patch::Apply(&value),
            )
            .await
        {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if let Some(e) = last {
        panic!("applying CRD {name}: {e}");
    }
    wait_for(&crds, &name, Duration::from_secs(30), |c| {
        c.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_line_is_parsed() {
        let out = "starting...\nexport KUBECONFIG=/root/.cache/sluice/testenv/run/x/kubeconfig\n";
        assert_eq!(
            parse_export_line(out).unwrap(),
            PathBuf::from("/root/.cache/sluice/testenv/run/x/kubeconfig")
        );
        assert_eq!(
            parse_export_line("export KUBECONFIG='/a b'").unwrap(),
            PathBuf::from("/a b")
        );
    }

    #[test]
    fn missing_export_line_is_an_error() {
        assert!(parse_export_line("nothing here").is_err());
    }

    #[test]
    fn unique_names_are_unique_and_valid() {
        let a = unique_name("sluice-t-x");
        let b = unique_name("sluice-t-x");
        assert_ne!(a, b);
        assert!(
            a.len() <= 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn repo_root_holds_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
    }
}
