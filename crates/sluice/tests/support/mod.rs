//! Shared by the CLI tests: run the `sluice` binary against the local
//! control plane, install the CRDs, write Flux objects and their status as
//! a controller would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use sluice_api::{
    GitRepository, HelmChart, HelmRelease, HelmRepository, Kustomization, OCIRepository,
};
use sluice_testsupport::{TestNamespace, kubeconfig_path};

/// The result of one `sluice` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// Runs `sluice --kubeconfig <test control plane> args…` (no colour).
pub fn sluice(args: &[&str]) -> Run {
    sluice_in(None, args)
}

/// Like [`sluice`], in a working directory.
pub fn sluice_in(dir: Option<&Path>, args: &[&str]) -> Run {
    let kubeconfig = kubeconfig_path();
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    Run::from(cmd.output().expect("running sluice"))
}

/// A long-running `sluice … --kubeconfig <test control plane>` (`--watch`,
/// `-w`, `--follow`) whose stdout is read line by line; killed on drop.
pub struct Streaming {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Streaming {
    pub fn spawn(args: &[&str]) -> Streaming {
        use std::io::BufRead;
        let mut child = Command::new(bin())
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting sluice");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming { child, lines }
    }

    /// The next line satisfying `pred` within `timeout`, skipping others.
    pub fn next_matching(&self, timeout: Duration, pred: &dyn Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Runs `sluice --kubeconfig <test control plane> args…` with `input` on standard input and
/// `env` set (`delete` confirmations, `envsubst`).
pub fn sluice_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running sluice");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    Run::from(child.wait_with_output().expect("running sluice"))
}

/// Runs the binary without a kubeconfig flag (help, completion, export).
pub fn sluice_offline(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("running sluice"))
}

/// Installs the CRDs of `sluice_api::crds()` (server-side apply) and waits
/// until they are established.
/// Server-side applies `obj` (any kind), forcing conflicts, as an installer would.
pub async fn apply_object(client: &Client, obj: &Value) {
    let kind = obj["kind"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let (group, version) = match obj["apiVersion"].as_str().unwrap().rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let gvk = kube::api::GroupVersionKind::gvk(&group, &version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<kube::api::DynamicObject> =
        match (caps.scope, obj["metadata"]["namespace"].as_str()) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            _ => Api::all_with(client.clone(), &ar),
        };
    api.patch(
        name,
        &PatchParams::apply("sluice-install").force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {kind}/{name}: {e}"));
}

pub async fn install_crds(client: &Client) {
    for crd in sluice_api::crds() {
        sluice_testsupport::apply_crd(client, &crd, "sluice-test").await;
    }
}

/// A test namespace with the CRDs installed.
pub async fn setup(prefix: &str) -> (Client, TestNamespace) {
    let client = sluice_testsupport::client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, prefix).await;
    (client, ns)
}

/// Creates a GitRepository.
pub async fn git_repository(client: &Client, ns: &str, name: &str) {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    let obj = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"url": "https://example.invalid/repo.git", "interval": "1m", "ref": {"branch": "main"}},
    });
    api.patch(
        name,
        &PatchParams::apply("sluice-test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// Server-side applies a Flux object of the source group (`spec` as
/// given).
pub async fn source_object(client: &Client, kind: &str, ns: &str, name: &str, spec: Value) {
    let obj = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    let params = PatchParams::apply("sluice-test").force();
    match kind {
        "GitRepository" => apply_typed::<GitRepository>(client, ns, name, &obj, &params).await,
        "OCIRepository" => apply_typed::<OCIRepository>(client, ns, name, &obj, &params).await,
        "HelmRepository" => apply_typed::<HelmRepository>(client, ns, name, &obj, &params).await,
        "HelmChart" => apply_typed::<HelmChart>(client, ns, name, &obj, &params).await,
        other => panic!("not a source kind: {other}"),
    }
}

async fn apply_typed<K>(client: &Client, ns: &str, name: &str, obj: &Value, params: &PatchParams)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .patch(name, params, &Patch::Apply(obj))
        .await
        .unwrap();
}

/// Creates an OCIRepository following the `latest` tag.
pub async fn oci_repository(client: &Client, ns: &str, name: &str) {
    let spec = json!({"url": "oci://registry.invalid/manifests/app", "interval": "1m", "ref": {"tag": "latest"}});
    source_object(client, "OCIRepository", ns, name, spec).await;
}

/// Creates a Kustomization with `depends_on` (names in the same namespace).
pub async fn kustomization(
    client: &Client,
    ns: &str,
    name: &str,
    source: &str,
    depends_on: &[&str],
) {
    kustomization_from(client, ns, name, "GitRepository", source, depends_on).await;
}

/// Creates a HelmRelease of the chart in OCIRepository `source`, its spec merged with `extra`.
pub async fn helm_release(client: &Client, ns: &str, name: &str, source: &str, extra: Value) {
    let mut spec = json!({
        "interval": "10m",
        "chartRef": {"kind": "OCIRepository", "name": source},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    let obj = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    Api::<HelmRelease>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("sluice-test").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
}

/// [`kustomization`] from a source of kind `source_kind`.
pub async fn kustomization_from(
    client: &Client,
    ns: &str,
    name: &str,
    source_kind: &str,
    source: &str,
    depends_on: &[&str],
) {
    let api: Api<Kustomization> = Api::namespaced(client.clone(), ns);
    let mut spec = json!({
        "interval": "10m",
        "path": format!("./{name}"),
        "prune": true,
        "sourceRef": {"kind": source_kind, "name": source},
    });
    if !depends_on.is_empty() {
        spec["dependsOn"] = json!(
            depends_on
                .iter()
                .map(|d| json!({"name": d}))
                .collect::<Vec<_>>()
        );
    }
    let obj = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    api.patch(
        name,
        &PatchParams::apply("sluice-test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// A Ready condition.
pub fn condition(status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    })
}

/// Writes `status` on a Flux object as its controller would (merge patch
/// of the status subresource).
pub async fn write_status(client: &Client, kind: &str, ns: &str, name: &str, status: Value) {
    let patch = json!({ "status": status });
    match kind {
        "Kustomization" => patch_status::<Kustomization>(client, ns, name, &patch).await,
        "GitRepository" => patch_status::<GitRepository>(client, ns, name, &patch).await,
        "OCIRepository" => patch_status::<OCIRepository>(client, ns, name, &patch).await,
        "HelmRepository" => patch_status::<HelmRepository>(client, ns, name, &patch).await,
        "HelmChart" => patch_status::<HelmChart>(client, ns, name, &patch).await,
        "HelmRelease" => patch_status::<HelmRelease>(client, ns, name, &patch).await,
        other => panic!("no status writer for {other}"),
    }
}

async fn patch_status<K>(client: &Client, ns: &str, name: &str, patch: &Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// The revision a Ready object of `kind` has in these tests.
pub fn revision_of(kind: &str) -> &'static str {
    match kind {
        "OCIRepository" => {
            "latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        }
        "HelmRepository" => {
            "sha256:89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
        }
        "HelmChart" => "6.5.4",
        _ => "main@sha1:0123456789abcdef0123456789abcdef01234567",
    }
}

/// Marks a Flux object Ready (or not) for its current generation.
pub async fn set_ready(
    client: &Client,
    kind: &str,
    ns: &str,
    name: &str,
    ready: bool,
    message: &str,
) {
    let generation = generation(client, kind, ns, name).await;
    let (status, reason) = if ready {
        ("True", "ReconciliationSucceeded")
    } else {
        ("False", "ReconciliationFailed")
    };
    let mut st = json!({
        "observedGeneration": generation,
        "conditions": [condition(status, reason, message, generation)],
    });
    if kind == "Kustomization" && ready {
        st["lastAppliedRevision"] = json!("main@sha1:0123456789abcdef0123456789abcdef01234567");
    }
    if !matches!(kind, "Kustomization" | "HelmRelease") && ready {
        let path = format!("{}/x/y/0123.tar.gz", kind.to_lowercase());
        st["artifact"] = json!({
            "url": format!("http://source-controller/{path}"),
            "path": path,
            "revision": revision_of(kind),
            "digest": "sha256:0123",
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        });
    }
    write_status(client, kind, ns, name, st).await;
}

/// `metadata.generation` of a Flux object.
pub async fn generation(client: &Client, kind: &str, ns: &str, name: &str) -> i64 {
    object(client, kind, ns, name).await["metadata"]["generation"]
        .as_i64()
        .unwrap_or(1)
}

/// A Flux object as JSON.
pub async fn object(client: &Client, kind: &str, ns: &str, name: &str) -> Value {
    async fn get<K>(client: &Client, ns: &str, name: &str) -> Value
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + k8s_openapi::serde::Serialize
            + std::fmt::Debug,
    {
        let obj = Api::<K>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .unwrap();
        serde_json::to_value(obj).unwrap()
    }
    match kind {
        "Kustomization" => get::<Kustomization>(client, ns, name).await,
        "GitRepository" => get::<GitRepository>(client, ns, name).await,
        "OCIRepository" => get::<OCIRepository>(client, ns, name).await,
        "HelmRepository" => get::<HelmRepository>(client, ns, name).await,
        "HelmChart" => get::<HelmChart>(client, ns, name).await,
        "HelmRelease" => get::<HelmRelease>(client, ns, name).await,
        other => panic!("not a Flux kind: {other}"),
    }
}

/// The Flux objects of `kind` in `ns`, as JSON.
pub async fn objects(client: &Client, kind: &str, ns: &str) -> Vec<Value> {
    async fn list<K>(client: &Client, ns: &str) -> Vec<Value>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + k8s_openapi::serde::Serialize
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|o| serde_json::to_value(o).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
    match kind {
        "Kustomization" => list::<Kustomization>(client, ns).await,
        "GitRepository" => list::<GitRepository>(client, ns).await,
        "OCIRepository" => list::<OCIRepository>(client, ns).await,
        "HelmRepository" => list::<HelmRepository>(client, ns).await,
        "HelmChart" => list::<HelmChart>(client, ns).await,
        "HelmRelease" => list::<HelmRelease>(client, ns).await,
        other => panic!("not a Flux kind: {other}"),
    }
}

/// A stand-in for the controller: answers every reconcile request on
/// Kustomizations, HelmReleases and sources of `ns` with a Ready status (or a failure
/// when the object is named `broken`). Stops when dropped.
pub struct FakeController(tokio::task::JoinHandle<()>);

impl Drop for FakeController {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl FakeController {
    pub fn start(client: Client, ns: String) -> Self {
        FakeController(tokio::spawn(async move {
            loop {
                for kind in [
                    "Kustomization",
                    "GitRepository",
                    "OCIRepository",
                    "HelmRepository",
                    "HelmChart",
                    "HelmRelease",
                ] {
                    for o in objects(&client, kind, &ns).await {
                        let token = o["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
                            .as_str();
                        let handled = o["status"]["lastHandledReconcileAt"].as_str();
                        let suspended = o["spec"]["suspend"].as_bool().unwrap_or(false);
                        if token.is_none() || token == handled || suspended {
                            continue;
                        }
                        let name = o["metadata"]["name"].as_str().unwrap().to_string();
                        let generation = o["metadata"]["generation"].as_i64().unwrap_or(1);
                        let ok = name != "broken";
                        set_ready(&client, kind, &ns, &name, ok, if ok { "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567" } else { "kustomize build failed: missing resource" }).await;
                        write_status(
                            &client,
                            kind,
                            &ns,
                            &name,
                            json!({"lastHandledReconcileAt": token, "observedGeneration": generation}),
                        )
                        .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

/// A child process killed when dropped, so a failed assertion does not leave it running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sluice controller` on the host in the place of the installed Deployment's pod: watching
/// `ns`, impersonating the installed `sluice-reconciler` as the Deployment's does, its
/// artifacts in `dir/storage` and its log in `dir/controller.log`.
pub fn host_controller(ns: &str, dir: &std::path::Path) -> KillOnDrop {
    host_controller_at(ns, dir, "127.0.0.1:0")
}

/// [`host_controller`] serving artifacts at `storage_addr` (what the `source-controller`
/// Service gives every source controller in a cluster: one address, whichever runs).
pub fn host_controller_at(ns: &str, dir: &std::path::Path, storage_addr: &str) -> KillOnDrop {
    std::process::Command::new(bin())
        .args(["controller", "--watch-namespace", ns, "--reloader=false"])
        .args(["--reconciler-service-account=sluice-reconciler"])
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--storage-addr",
            storage_addr,
            "--enable-leader-election=false",
        ])
        .arg("--storage-path")
        .arg(dir.join("storage"))
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .env("RUNTIME_NAMESPACE", ns)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("controller.log")).unwrap())
        .spawn()
        .map(KillOnDrop)
        .expect("starting sluice controller")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    sluice_testsupport::repo_root()
}

/// One of Flux's controllers to run (`helm-controller`, `source-controller`,
/// ...): the binary `env` names, else the build `scripts/flux-reference` has
/// cached (never built here); `None` when there is neither.
pub fn flux_controller_bin(component: &str, env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env}={} is not a file", p.display());
        return Some(p);
    }
    let out = Command::new(repo_root().join("scripts/flux-reference"))
        .args(["path", component])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    path.is_file().then_some(path)
}

/// A controller process with its log in a file; killed on drop, the end of
/// its log printed when the test fails.
pub struct Proc {
    name: &'static str,
    child: std::process::Child,
    log: PathBuf,
}

impl Proc {
    pub fn start(name: &'static str, cmd: &mut Command, logs: &Path) -> Proc {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("creating the log file");
        let child = cmd
            .env("KUBECONFIG", kubeconfig_path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { name, child, log }
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() || exited.is_some() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!(
                "--- {} ({}; exited early: {exited:?}), last lines:",
                self.name,
                self.log.display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
