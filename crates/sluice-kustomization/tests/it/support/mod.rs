//! Test helpers: Git repositories made with the `git` program, the CRDs, and
//! the source and Kustomization controllers running in-process, scoped to
//! the test's namespace.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use serde_json::{Value, json};
use sluice_api::meta::FluxObject;
use sluice_api::{GitRepository, Kustomization, OCIRepository};
use sluice_testsupport::git_server::GitServer;
use sluice_testsupport::{TestNamespace, client};

pub const WAIT: Duration = Duration::from_secs(120);

pub use sluice_testsupport::git_server::git;

/// A working clone plus the bare repository it pushes to.
pub struct Repo {
    _dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
    server: Option<GitServer>,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("repo.git");
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
            server: None,
        }
    }

    /// Serves the bare repository over smart HTTP (Flux's GitRepository
    /// schema only admits http(s) and ssh URLs).
    pub async fn serve(&mut self) {
        let root = self.bare.parent().unwrap().to_path_buf();
        self.server = Some(GitServer::start(&root, None).await);
    }

    pub fn url(&self) -> String {
        let server = self.server.as_ref().expect("Repo::serve first");
        server.url("repo")
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn remove(&self, path: &str) {
        let p = self.work.join(path);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// Commits everything, pushes `main` and returns the revision Flux
    /// writes (`main@sha1:<commit>`).
    pub fn commit(&self, msg: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&self.work, &["push", "-q", "--force", "origin", "main"]);
        format!("main@sha1:{}", git(&self.work, &["rev-parse", "HEAD"]))
    }
}

pub fn configmap(name: &str, data: &[(&str, &str)]) -> String {
    let mut s = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (k, v) in data {
        s.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    if data.is_empty() {
        s.push_str("  {}\n");
    }
    s
}

pub async fn kube_config() -> Config {
    sluice_testsupport::config().await
}

/// Installs sluice's CRDs (server-side apply, idempotent; other tests may
/// do the same concurrently) and waits until they are served.
pub async fn install_crds(client: &Client) {
    for crd in sluice_api::crds() {
        sluice_testsupport::apply_crd(client, &crd, "sluice-kustomization-tests").await;
    }
    let api: Api<Kustomization> = Api::all(client.clone());
    for _ in 0..50 {
        if api.list(&Default::default()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A namespace with both controllers running in it.
pub struct Env {
    pub client: Client,
    pub ns: TestNamespace,
    pub storage: tempfile::TempDir,
    pub metrics: sluice_kustomization::Metrics,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Env {
    /// Namespace, CRDs, and both controllers (`requeue_dependency` 60 s, so
    /// anything faster is event-driven).
    pub async fn start(prefix: &str) -> Env {
        let mut env = Env::without_controllers(prefix).await;
        env.start_controllers().await;
        env
    }

    pub async fn without_controllers(prefix: &str) -> Env {
        let client = client().await;
        install_crds(&client).await;
        let ns = TestNamespace::create(&client, prefix).await;
        Env {
            client,
            ns,
            storage: tempfile::tempdir().unwrap(),
            metrics: sluice_kustomization::Metrics::default(),
            tasks: vec![],
        }
    }

    pub async fn start_controllers(&mut self) {
        self.start_source("127.0.0.1:1").await;
        self.start_kustomization(true).await;
    }

    /// Starts the artifact server; returns its address.
    pub async fn start_artifact_server(&mut self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = sluice_source::artifact_router(self.storage.path());
        self.tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        addr
    }

    pub async fn start_source(&mut self, advertised: &str) {
        let src = sluice_source::Options {
            storage_path: self.storage.path().to_path_buf(),
            storage_adv_addr: advertised.into(),
            namespace: Some(self.ns.name().to_string()),
            ..Default::default()
        };
        let c = self.client.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = sluice_source::run(c, src).await {
                eprintln!("source controller exited: {e:#}");
            }
        }));
    }

    /// `local`: read artifacts from the storage on disk, else download them.
    pub async fn start_kustomization(&mut self, local: bool) {
        let opts = self.kustomization_options(local);
        self.start_kustomization_with(opts).await;
    }

    /// The options [`Env::start_kustomization`] runs the controller with.
    pub fn kustomization_options(&self, local: bool) -> sluice_kustomization::Options {
        sluice_kustomization::Options {
            namespace: Some(self.ns.name().to_string()),
            storage_path: local.then(|| self.storage.path().to_path_buf()),
            requeue_dependency: Duration::from_secs(60),
            health_poll: Duration::from_millis(500),
            concurrency: 4,
            ..Default::default()
        }
    }

    /// Starts the Kustomization controller with `opts`.
    pub async fn start_kustomization_with(&mut self, opts: sluice_kustomization::Options) {
        let config = kube_config().await;
        let metrics = self.metrics.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = sluice_kustomization::run(config, opts, metrics).await {
                eprintln!("kustomization controller exited: {e:#}");
            }
        }));
    }

    pub fn name(&self) -> &str {
        self.ns.name()
    }

    pub fn ks_api(&self) -> Api<Kustomization> {
        self.ns.api()
    }

    pub async fn git_repository(&self, name: &str, repo: &mut Repo) {
        if repo.server.is_none() {
            repo.serve().await;
        }
        let api: Api<GitRepository> = self.ns.api();
        let obj: GitRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": repo.url(), "interval": "10m", "ref": {"branch": "main"}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }

    /// Asks the source controller to fetch now and waits for `revision`.
    pub async fn refresh_source(&self, name: &str, revision: &str) {
        let api: Api<GitRepository> = self.ns.api();
        request_reconcile(&api, name).await;
        sluice_testsupport::wait_for(&api, name, WAIT, |g| {
            g.artifact().is_some_and(|a| a.revision == revision)
        })
        .await;
    }

    /// An OCIRepository pulling `url` (`oci://…`, plain HTTP) with `reference`
    /// as its `spec.ref`.
    pub async fn oci_repository(&self, name: &str, url: &str, reference: Value) {
        let api: Api<OCIRepository> = self.ns.api();
        let obj: OCIRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": name},
            "spec": {"url": url, "interval": "10m", "insecure": true, "ref": reference}
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }

    /// Asks the source controller to pull the OCIRepository now and waits
    /// for `revision`.
    pub async fn refresh_oci(&self, name: &str, revision: &str) {
        let api: Api<OCIRepository> = self.ns.api();
        request_reconcile(&api, name).await;
        sluice_testsupport::wait_for(&api, name, WAIT, |o| {
            o.artifact().is_some_and(|a| a.revision == revision)
        })
        .await;
    }

    pub async fn kustomization(&self, name: &str, spec: Value) {
        self.kustomization_labelled(name, json!({}), spec).await
    }

    /// [`Env::kustomization`] with labels on the Kustomization itself.
    pub async fn kustomization_labelled(&self, name: &str, labels: Value, spec: Value) {
        let mut spec = spec;
        let s = spec.as_object_mut().unwrap();
        s.entry("interval").or_insert(json!("10m"));
        s.entry("prune").or_insert(json!(true));
        s.entry("targetNamespace").or_insert(json!(self.ns.name()));
        s.entry("sourceRef")
            .or_insert(json!({"kind": "GitRepository", "name": "repo"}));
        let obj: Kustomization = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }))
        .unwrap();
        self.ks_api()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    pub async fn patch_ks(&self, name: &str, patch: Value) {
        self.ks_api()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Waits until the Kustomization's Ready condition satisfies `pred`.
    pub async fn wait_ks(
        &self,
        name: &str,
        pred: impl Fn(&Kustomization) -> bool,
    ) -> Kustomization {
        sluice_testsupport::wait_for(&self.ks_api(), name, WAIT, pred).await
    }

    pub async fn wait_ready(&self, name: &str, revision: &str) -> Kustomization {
        self.wait_ks(name, |k| {
            k.is_ready()
                && k.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(revision)
        })
        .await
    }

    pub async fn wait_reason(&self, name: &str, reason: &str) -> Kustomization {
        self.wait_ks(name, |k| {
            ready(k).is_some_and(|c| c.0 == "False" && c.1 == reason)
        })
        .await
    }

    pub fn configmaps(&self) -> Api<k8s_openapi::api::core::v1::ConfigMap> {
        self.ns.api()
    }

    /// Waits until `check` holds, panicking after `timeout`.
    pub async fn eventually<F, Fut>(&self, what: &str, timeout: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

/// Sets `reconcile.fluxcd.io/requestedAt` on `name`.
pub async fn request_reconcile<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let token = format!("{:?}", std::time::SystemTime::now());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        ),
    )
    .await
    .unwrap();
}

/// (status, reason, message) of the Ready condition.
pub fn ready(k: &Kustomization) -> Option<(String, String, String)> {
    k.ready_condition()
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn ready_message(k: &Kustomization) -> String {
    ready(k).map(|c| c.2).unwrap_or_default()
}
