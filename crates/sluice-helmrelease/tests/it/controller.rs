//! The HelmRelease controller on the control plane: a chart from an OCIRepository's artifact
//! (served from the source storage on disk, as the in-process source controller serves it) is
//! installed, upgraded when its values change, its wait seen without holding the worker and
//! canceled by newer values, remediated by rollback when an upgrade's wait fails (the cause
//! named), stalled once retries are spent, uninstalled when the HelmRelease is deleted; fields
//! sluice does not implement are refused by name. A cause in the cluster (a StorageClass that
//! does not exist) stalls the release after it failed twice, instead of retrying forever.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_api::meta::{self, FluxObject};
use sluice_api::{ExternalArtifact, HelmRelease, OCIRepository};
use sluice_helmrelease::storage::Storage;
use sluice_testsupport::{TestNamespace, wait_for};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A chart with a ConfigMap and a Deployment whose pods are not Ready while
/// `values.stuck` is true (the test control plane's nodes honour
/// `sim.sluice.dev/ready: "false"`), and with `values.storageClass` a claim of that class
/// mounted by the pods.
fn chart_archive(dir: &Path) -> Vec<u8> {
    write(
        dir,
        "Chart.yaml",
        "apiVersion: v2\nname: greet\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    );
    write(
        dir,
        "values.yaml",
        "greeting: hello\nstuck: false\nstorageClass: \"\"\ntestImage: busybox\n",
    );
    write(
        dir,
        "templates/pvc.yaml",
        "{{- if .Values.storageClass }}\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {{ .Release.Name }}-data\n\
         spec:\n  storageClassName: {{ .Values.storageClass }}\n  accessModes: [ReadWriteOnce]\n\
         \x20 resources: {requests: {storage: 1Gi}}\n{{- end }}\n",
    );
    // Bad input on demand: a `fail`, a document that is not YAML, a template that calls itself
    // forever, an object the API server refuses.
    write(
        dir,
        "templates/bad.yaml",
        "{{- define \"loop\" }}{{ template \"loop\" . }}{{ end }}\n\
         {{- if .Values.failWith }}{{ fail .Values.failWith }}{{ end }}\n\
         {{- if .Values.badYaml }}\nkind: ConfigMap\nmetadata: [unclosed\n{{- end }}\n\
         {{- if .Values.recurse }}{{ template \"loop\" . }}{{ end }}\n\
         {{- if .Values.badName }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n{{- end }}\n",
    );
    write(
        dir,
        "templates/hook.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hooked\n  annotations:\n    \
         helm.sh/hook: post-install\ndata:\n  revision: {{ .Release.Revision | quote }}\n",
    );
    write(
        dir,
        "templates/tests/test.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\n\
         spec:\n  restartPolicy: Never\n  containers: [{name: t, image: {{ .Values.testImage | quote }}}]\n",
    );
    // A LoadBalancer Service, on demand (no load balancer gives the test control plane's an
    // address).
    write(
        dir,
        "templates/lb.yaml",
        "{{- if .Values.loadBalancer }}\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-lb\n\
         spec:\n  type: LoadBalancer\n  selector: {app: greet}\n  ports: [{port: 80, targetPort: 8080}]\n{{- end }}\n",
    );
    write(
        dir,
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n\
         data:\n  greeting: {{ .Values.greeting | quote }}\n",
    );
    write(
        dir,
        "templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n\
         spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: greet}\n  template:\n\
         \x20   metadata:\n      labels: {app: greet}\n\
         {{- if .Values.stuck }}\n      annotations: {sim.sluice.dev/ready: \"false\"}\n{{- end }}\n\
         \x20   spec:\n      containers: [{name: web, image: \"nginx:{{ .Values.greeting }}\"}]\n\
         {{- if .Values.storageClass }}\n      volumes: [{name: data, persistentVolumeClaim: {claimName: {{ .Release.Name }}-data}}]\n{{- end }}\n",
    );
    let chart = sluice_helm::chart::load_dir(dir, &Default::default()).unwrap();
    sluice_helm::package::package(&chart).unwrap()
}

/// (reason, message) of every Event about the object `name` in `ns`.
async fn events_about(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

fn ready_message(hr: &HelmRelease) -> String {
    meta::find_condition(hr.conditions(), meta::READY_CONDITION)
        .map(|c| format!("{} {}: {}", c.status, c.reason, c.message))
        .unwrap_or_default()
}

/// A namespace with the chart as an OCIRepository's artifact in a source storage on disk, and
/// the controller running for that namespace.
struct Fixture {
    client: kube::Client,
    ns: TestNamespace,
    name: String,
    digest: String,
    storage: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    controller: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Fixture {
    async fn start(prefix: &str) -> Fixture {
        Self::start_with(prefix, |_| sluice_runtime::Tenancy::default()).await
    }

    /// As [`Fixture::start`], the controller with the tenancy `tenancy` makes from the
    /// namespace's name.
    async fn start_with(
        prefix: &str,
        tenancy: impl FnOnce(&str) -> sluice_runtime::Tenancy,
    ) -> Fixture {
        let client = sluice_testsupport::client().await;
        for crd in sluice_api::crds() {
            sluice_testsupport::apply_crd(&client, &crd, "sluice-helmrelease-tests").await;
        }
        let ns = TestNamespace::create(&client, prefix).await;
        let name = ns.name().to_owned();
        let storage = tempfile::tempdir().unwrap();
        let chart_dir = tempfile::tempdir().unwrap();
        let archive = chart_archive(chart_dir.path());
        let rel = format!("ocirepository/{name}/greet/chart.tgz");
        write(storage.path(), &rel, "");
        std::fs::write(storage.path().join(&rel), &archive).unwrap();
        let digest = sluice_git::archive::digest_bytes(&archive);
        let repos: Api<OCIRepository> = Api::namespaced(client.clone(), &name);
        let repo: OCIRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "greet", "namespace": name},
            "spec": {"url": "oci://registry.example/charts/greet", "interval": "10m", "ref": {"tag": "0.1.0"}},
        }))
        .unwrap();
        repos.create(&PostParams::default(), &repo).await.unwrap();
        repos
            .patch_status(
                "greet",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"artifact": {
                    "path": rel, "url": format!("http://source.invalid/{rel}"),
                    "revision": format!("0.1.0@{digest}"), "digest": digest,
                    "lastUpdateTime": "2026-12-02T10:00:00Z",
                }}})),
            )
            .await
            .unwrap();
        let config = sluice_testsupport::config().await;
        let opts = sluice_helmrelease::Options {
            namespace: Some(name.clone()),
            storage_path: Some(storage.path().to_path_buf()),
            health_poll: Duration::from_millis(500),
            // Long enough that only the event of a dependency turning ready can wake a
            // dependent in time.
            requeue_dependency: Duration::from_secs(300),
            runtime: sluice_runtime::Runtime {
                tenancy: tenancy(&name),
                ..Default::default()
            },
            ..Default::default()
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let controller = tokio::spawn(sluice_helmrelease::run_until(config, opts, async move {
            let _ = stop_rx.await;
        }));
        Fixture {
            client,
            ns,
            name,
            digest,
            storage,
            stop,
            controller,
        }
    }

    /// Serves `archive` as the artifact of another OCIRepository, `repo`, at tag 1.0.0.
    async fn serve(&self, repo: &str, archive: &[u8]) {
        self.serve_tag(repo, archive, "1.0.0").await
    }

    /// Serves `archive` as the artifact of another OCIRepository, `repo`, at `tag` (the
    /// chart's version).
    async fn serve_tag(&self, repo: &str, archive: &[u8], tag: &str) {
        let rel = format!("ocirepository/{}/{repo}/chart.tgz", self.name);
        write(self.storage.path(), &rel, "");
        std::fs::write(self.storage.path().join(&rel), archive).unwrap();
        let digest = sluice_git::archive::digest_bytes(archive);
        let repos: Api<OCIRepository> = Api::namespaced(self.client.clone(), &self.name);
        let object: OCIRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": repo, "namespace": self.name},
            "spec": {"url": "oci://registry.example/charts/x", "interval": "10m", "ref": {"tag": tag}},
        }))
        .unwrap();
        repos.create(&PostParams::default(), &object).await.unwrap();
        repos
            .patch_status(
                repo,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"artifact": {
                    "path": rel, "url": format!("http://source.invalid/{rel}"),
                    "revision": format!("{tag}@{digest}"), "digest": digest,
                    "lastUpdateTime": "2026-12-02T10:00:00Z",
                }}})),
            )
            .await
            .unwrap();
    }

    /// Serves the chart in `dir` from OCIRepository `name` and creates HelmRelease `name` of
    /// it (release `name`, timeout 20s).
    async fn release_dir(&self, name: &str, dir: &Path) {
        let chart = sluice_helm::chart::load_dir(dir, &Default::default()).unwrap();
        self.serve(name, &sluice_helm::package::package(&chart).unwrap())
            .await;
        let spec = json!({"releaseName": name,
            "chartRef": {"kind": "OCIRepository", "name": name}});
        Api::<HelmRelease>::namespaced(self.client.clone(), &self.name)
            .create(
                &PostParams::default(),
                &helm_release(&self.name, name, "20s", spec),
            )
            .await
            .unwrap();
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.controller.await;
        self.ns.delete().await;
    }
}

#[tokio::test]
async fn a_release_is_installed_upgraded_remediated_and_uninstalled() {
    let f = Fixture::start("hr-ctl").await;
    let (client, name, digest) = (f.client.clone(), f.name.clone(), f.digest.clone());

    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let hr: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "greet", "namespace": name},
        "spec": {
            "interval": "10m",
            "timeout": "6s",
            "chartRef": {"kind": "OCIRepository", "name": "greet"},
            "values": {"greeting": "hi"},
            "upgrade": {"remediation": {"retries": 1}},
        },
    }))
    .unwrap();
    // A HelmRelease that depends on it, created first: blocked, naming the dependency.
    let after: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "after", "namespace": name},
        "spec": {
            "interval": "10m",
            "chartRef": {"kind": "OCIRepository", "name": "greet"},
            "dependsOn": [{"name": "greet"}],
        },
    }))
    .unwrap();
    hrs.create(&PostParams::default(), &after).await.unwrap();
    // One whose source is not there yet (a Kustomization applying both at once): waited
    // for, without an event, as helm-controller only logs it.
    let early: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "early", "namespace": name},
        "spec": {"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "late"}},
    }))
    .unwrap();
    hrs.create(&PostParams::default(), &early).await.unwrap();
    let waiting = wait_for(&hrs, "early", Duration::from_secs(30), |hr| {
        ready_message(hr).starts_with("False ArtifactFailed")
    })
    .await;
    assert_eq!(
        ready_message(&waiting),
        format!(
            "False ArtifactFailed: could not get Source object: OCIRepository '{name}/late' not found"
        )
    );
    let blocked = wait_for(&hrs, "after", Duration::from_secs(30), |hr| {
        ready_message(hr).starts_with("False DependencyNotReady")
    })
    .await;
    assert_eq!(
        ready_message(&blocked),
        format!("False DependencyNotReady: dependency '{name}/greet' is not ready")
    );
    hrs.create(&PostParams::default(), &hr).await.unwrap();

    // Installed: Ready with Flux's message, history, the release Secret, the objects labelled.
    let installed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| hr.is_ready()).await;
    // As helm-controller: the chart from an OCIRepository carries 12 digits of its digest.
    let version = format!("0.1.0+{}", &digest["sha256:".len()..][..12]);
    assert_eq!(
        ready_message(&installed),
        format!(
            "True InstallSucceeded: Helm install succeeded for release {name}/greet.v1 with chart greet@{version}"
        )
    );
    let status = installed.status.clone().unwrap();
    let latest = status.latest().unwrap();
    assert_eq!((latest.version, latest.status.as_str()), (1, "deployed"));
    assert_eq!(latest.oci_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(
        status.last_attempted_revision_digest.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(status.inventory.as_ref().unwrap().entries.len(), 2);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &name);
    secrets.get("sh.helm.release.v1.greet.v1").await.unwrap();
    // The install is told once, after its wait (which may end in a later run), as
    // helm-controller tells it: what an Alert forwards to a chat.
    let told = events_about(&client, &name, "greet").await;
    let installs: Vec<_> = told
        .iter()
        .filter(|(r, _)| r == "InstallSucceeded")
        .collect();
    assert_eq!(
        installs,
        [&(
            "InstallSucceeded".to_string(),
            format!(
                "Helm install succeeded for release {name}/greet.v1 with chart greet@{version}"
            )
        )],
        "{told:?}"
    );
    let quiet = events_about(&client, &name, "early").await;
    assert!(
        quiet.is_empty(),
        "a missing source is not an event: {quiet:?}"
    );
    hrs.delete("early", &DeleteParams::default()).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let cm = cms.get("greet-greeting").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hi");
    let labels = cm.metadata.labels.unwrap();
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "greet");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
    assert!(
        cms.get_opt("greet-hooked").await.unwrap().is_some(),
        "the post-install hook ran"
    );

    // The dependent is woken by its dependency turning ready (not by the 5 minute requeue).
    wait_for(&hrs, "after", Duration::from_secs(60), |hr| hr.is_ready()).await;
    hrs.delete("after", &DeleteParams::default()).await.unwrap();

    // New values: upgraded to v2.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"greeting": "hey"}}}),
    )
    .await;
    let upgraded = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        hr.is_ready()
            && hr
                .status
                .as_ref()
                .and_then(|s| s.latest())
                .is_some_and(|s| s.version == 2)
    })
    .await;
    assert!(
        ready_message(&upgraded).contains("Helm upgrade succeeded for release"),
        "{}",
        ready_message(&upgraded)
    );
    // The revision it superseded is told so in the history, from the record the upgrade
    // rewrote (as helm-controller's storage observer), and its digest follows the record.
    let history = upgraded.status.as_ref().and_then(|s| s.history.clone());
    let v1 = history
        .iter()
        .flatten()
        .find(|s| s.version == 1)
        .expect("v1 in the history");
    assert_eq!(v1.status, "superseded", "{history:?}");
    assert_ne!(v1.digest, latest.digest, "{history:?}");
    assert_eq!(
        cms.get("greet-greeting").await.unwrap().data.unwrap()["greeting"],
        "hey"
    );

    // A wait does not hold the worker (Ready=Unknown, "waiting for ..."), and new values
    // cancel it: the waiting revision is recorded failed, the new one installed at once.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"greeting": "slow", "stuck": true}}}),
    )
    .await;
    let waiting = wait_for(&hrs, "greet", Duration::from_secs(30), |hr| {
        ready_message(hr).starts_with("Unknown Progressing: waiting for 1 object to become ready")
    })
    .await;
    assert!(ready_message(&waiting).contains(&format!("Deployment/{name}/greet")));
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"greeting": "fixed", "stuck": false}}}),
    )
    .await;
    let fixed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        hr.is_ready()
            && hr
                .status
                .as_ref()
                .and_then(|s| s.latest())
                .is_some_and(|s| s.version == 4)
    })
    .await;
    assert_eq!(fixed.status.as_ref().unwrap().upgrade_failures, None);
    let canceled = Storage::new(client.clone(), &name)
        .get("greet", 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(canceled.status(), sluice_helm::release::Status::Failed);
    let description = canceled.info.unwrap().description;
    assert!(
        description.contains("the wait was canceled"),
        "{description}"
    );
    assert_eq!(
        cms.get("greet-greeting").await.unwrap().data.unwrap()["greeting"],
        "fixed"
    );

    // An upgrade whose pods never become Ready: the wait fails naming the Deployment, the
    // release is rolled back, retried once, rolled back again, and then stalled.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"greeting": "stuck", "stuck": true}}}),
    )
    .await;
    let stalled = wait_for(&hrs, "greet", Duration::from_secs(120), |hr| {
        meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    let ready = ready_message(&stalled);
    assert!(ready.contains("exceeded maximum retries"), "{ready}");
    let status = stalled.status.clone().unwrap();
    assert_eq!(status.upgrade_failures, Some(2));
    let remediated = meta::find_condition(stalled.conditions(), "Remediated").unwrap();
    assert_eq!(remediated.reason, "RollbackSucceeded");
    let released = meta::find_condition(stalled.conditions(), "Released").unwrap();
    assert_eq!(released.reason, "UpgradeFailed");
    assert!(
        released.message.contains("timeout waiting for")
            && released
                .message
                .contains(&format!("Deployment/{name}/greet")),
        "{}",
        released.message
    );
    // Rolled back: the values of the last good revision are live again.
    assert_eq!(
        cms.get("greet-greeting").await.unwrap().data.unwrap()["greeting"],
        "fixed"
    );

    // A field sluice does not implement is refused by name.
    let refused: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "refused", "namespace": name},
        "spec": {
            "interval": "10m",
            "chartRef": {"kind": "OCIRepository", "name": "greet"},
            "install": {"serverSideApply": false},
        },
    }))
    .unwrap();
    hrs.create(&PostParams::default(), &refused).await.unwrap();
    let refused = wait_for(&hrs, "refused", Duration::from_secs(30), |hr| {
        meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    assert_eq!(
        ready_message(&refused),
        "False UnsupportedField: not supported by sluice yet: spec.install.serverSideApply: false"
    );

    // Deleted: uninstalled, records and objects gone.
    hrs.delete("greet", &DeleteParams::default()).await.unwrap();
    for _ in 0..100 {
        if hrs.get_opt("greet").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        hrs.get_opt("greet").await.unwrap().is_none(),
        "finalizer not removed"
    );
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_none());
    let left = secrets
        .list(&ListParams::default().labels("owner=helm,name=greet"))
        .await
        .unwrap();
    assert!(left.items.is_empty());

    f.stop().await;
}

#[tokio::test]
async fn a_cause_in_the_cluster_stalls_the_release_instead_of_looping() {
    let f = Fixture::start("hr-env").await;
    let name = f.name.clone();
    let hrs: Api<HelmRelease> = Api::namespaced(f.client.clone(), &name);
    let hr: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "greet", "namespace": name},
        "spec": {
            "interval": "10m",
            "timeout": "5s",
            "chartRef": {"kind": "OCIRepository", "name": "greet"},
            // Retried forever by Flux's helm-controller.
            "upgrade": {"remediation": {"retries": -1}},
        },
    }))
    .unwrap();
    hrs.create(&PostParams::default(), &hr).await.unwrap();
    wait_for(&hrs, "greet", Duration::from_secs(60), |hr| hr.is_ready()).await;

    // An upgrade whose claim names a StorageClass that does not exist: failed, rolled back,
    // retried, failed again with the same cause, rolled back, and then stalled naming it.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"storageClass": "missing"}}}),
    )
    .await;
    let stalled = wait_for(&hrs, "greet", Duration::from_secs(120), |hr| {
        meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    let ready = ready_message(&stalled);
    assert!(
        ready.contains(
            "stopped retrying: StorageClass \"missing\" does not exist failed the release 2 times"
        ),
        "{ready}"
    );
    let status = stalled.status.clone().unwrap();
    assert_eq!(status.upgrade_failures, Some(2));
    let remediated = meta::find_condition(stalled.conditions(), "Remediated").unwrap();
    assert_eq!(remediated.reason, "RollbackSucceeded");
    // And it stays stalled: no new revision while nothing changes.
    let revision = status.latest().unwrap().version;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = hrs.get("greet").await.unwrap();
    assert_eq!(still.status.unwrap().latest().unwrap().version, revision);

    // The cause fixed in the values: the next upgrade goes ahead at once.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"storageClass": ""}}}),
    )
    .await;
    wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        hr.is_ready() && !meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    f.stop().await;
}

fn condition(hr: &HelmRelease, kind: &str) -> String {
    meta::find_condition(hr.conditions(), kind)
        .map(|c| format!("{} {}: {}", c.status, c.reason, c.message))
        .unwrap_or_default()
}

/// HelmRelease `release` in `ns` of the fixture's chart, with `timeout`, its spec merged with
/// `spec`.
fn helm_release(ns: &str, release: &str, timeout: &str, spec: serde_json::Value) -> HelmRelease {
    let mut base = json!({
        "interval": "10m",
        "timeout": timeout,
        "chartRef": {"kind": "OCIRepository", "name": "greet"},
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": release, "namespace": ns}, "spec": base,
    }))
    .unwrap()
}

/// Merges `patch` into HelmRelease `name`.
async fn merge(hrs: &Api<HelmRelease>, name: &str, patch: serde_json::Value) {
    hrs.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

async fn request_reconcile(hrs: &Api<HelmRelease>, token: &str) {
    hrs.patch(
        "greet",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {meta::RECONCILE_REQUEST_ANNOTATION: token}}}),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn drift_is_reported_corrected_and_ignored_where_told_and_a_failed_upgrade_cleans_up() {
    let f = Fixture::start("hr-drift").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let hr = helm_release(
        &name,
        "greet",
        "5s",
        json!({
            "values": {"greeting": "hi"},
            "driftDetection": {
                "mode": "warn",
                "ignore": [{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}],
            },
            "install": {"disableHooks": true},
            "upgrade": {"cleanupOnFail": true},
        }),
    );
    hrs.create(&PostParams::default(), &hr).await.unwrap();
    let installed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| hr.is_ready()).await;
    assert_eq!(
        condition(&installed, "Drifted"),
        "False NoDriftDetected: No drift detected against the cluster state"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    assert!(
        cms.get_opt("greet-hooked").await.unwrap().is_none(),
        "install.disableHooks: the post-install hook did not run"
    );

    // Someone edits the ConfigMap and scales the Deployment (an ignored path): warn mode
    // reports the ConfigMap, counted as Flux counts it, and changes nothing.
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    cms.patch(
        "greet-greeting",
        &edit,
        &Patch::Merge(json!({"data": {"greeting": "edited"}})),
    )
    .await
    .unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &name);
    deployments
        .patch(
            "greet",
            &edit,
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    request_reconcile(&hrs, "drift-1").await;
    let drifted = wait_for(&hrs, "greet", Duration::from_secs(30), |hr| {
        condition(hr, "Drifted").starts_with("True")
    })
    .await;
    assert_eq!(
        condition(&drifted, "Drifted"),
        format!(
            "True DriftDetected: Cluster state of release {name}/greet.v1 has drifted from the desired \
             state:\nConfigMap/{name}/greet-greeting changed (0 additions, 1 changes, 0 removals)"
        )
    );
    assert!(drifted.is_ready(), "{}", ready_message(&drifted));
    assert_eq!(
        cms.get("greet-greeting").await.unwrap().data.unwrap()["greeting"],
        "edited"
    );

    // Enabled, and the ConfigMap deleted too: both corrected, the ignored replicas left alone,
    // no new revision.
    cms.delete("greet-greeting", &DeleteParams::default())
        .await
        .unwrap();
    merge(
        &hrs,
        "greet",
        json!({"spec": {"driftDetection": {"mode": "enabled"}}}),
    )
    .await;
    let corrected = wait_for(&hrs, "greet", Duration::from_secs(30), |hr| {
        condition(hr, "Drifted").starts_with("False") && hr.is_ready()
    })
    .await;
    assert_eq!(corrected.status.unwrap().latest().unwrap().version, 1);
    let cm = cms.get("greet-greeting").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hi");
    assert_eq!(
        cm.metadata.labels.unwrap()["helm.toolkit.fluxcd.io/name"],
        "greet"
    );
    let deployment = deployments.get("greet").await.unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(3));
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &name);
    let reasons: Vec<(String, String)> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect();
    let corrected_event = reasons
        .iter()
        .find(|(r, _)| r == "DriftCorrected")
        .unwrap_or_else(|| panic!("no DriftCorrected event: {reasons:?}"));
    assert_eq!(
        corrected_event.1,
        format!(
            "Cluster state of release {name}/greet.v1 has been corrected:\nConfigMap/{name}/greet-greeting created"
        )
    );

    // An upgrade whose claim cannot bind fails its wait; cleanupOnFail deletes the claim it
    // created.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"storageClass": "missing"}}}),
    )
    .await;
    let failed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        condition(hr, "Released").starts_with("False UpgradeFailed")
    })
    .await;
    assert!(
        condition(&failed, "Released").contains("StorageClass \"missing\""),
        "{}",
        condition(&failed, "Released")
    );
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), &name);
    let gone = claims
        .get_opt("greet-data")
        .await
        .unwrap()
        .is_none_or(|c| c.metadata.deletion_timestamp.is_some());
    assert!(gone, "the claim the failed upgrade created is deleted");
    f.stop().await;
}

#[tokio::test]
async fn cel_expressions_gate_dependencies_and_judge_the_wait() {
    let f = Fixture::start("hr-cel").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let make = |release: &str, spec: serde_json::Value| helm_release(&name, release, "5s", spec);
    // A dependent whose readyExpr asks for a label the dependency does not have yet.
    let after = make(
        "after",
        json!({
            "releaseName": "after",
            "dependsOn": [{"name": "greet", "readyExpr": "has(dep.metadata.labels) && has(dep.metadata.labels.tier) && dep.metadata.labels.tier == 'db'"}],
        }),
    );
    hrs.create(&PostParams::default(), &after).await.unwrap();
    // A custom health check that fails ConfigMaps greeting "bad".
    let greet = make(
        "greet",
        json!({
            "values": {"greeting": "bad"},
            "healthCheckExprs": [{
                "apiVersion": "v1", "kind": "ConfigMap",
                "current": "data.greeting != 'bad'", "failed": "data.greeting == 'bad'",
            }],
        }),
    );
    hrs.create(&PostParams::default(), &greet).await.unwrap();
    let failed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        condition(hr, "Released").starts_with("False InstallFailed")
    })
    .await;
    let released = condition(&failed, "Released");
    assert!(released.contains("greet-greeting"), "{released}");
    let blocked = wait_for(&hrs, "after", Duration::from_secs(30), |hr| {
        ready_message(hr).starts_with("False DependencyNotReady")
    })
    .await;
    assert_eq!(
        ready_message(&blocked),
        format!(
            "False DependencyNotReady: dependency '{name}/greet' is not ready according to readyExpr eval"
        )
    );
    // The expression holds once the label is there, whatever greet's own readiness.
    merge(
        &hrs,
        "greet",
        json!({"metadata": {"labels": {"tier": "db"}}}),
    )
    .await;
    wait_for(&hrs, "after", Duration::from_secs(60), |hr| hr.is_ready()).await;

    // An expression that does not compile stalls, naming the field.
    let broken = make(
        "broken",
        json!({"dependsOn": [{"name": "greet", "readyExpr": "dep.metadata.("}]}),
    );
    hrs.create(&PostParams::default(), &broken).await.unwrap();
    let stalled = wait_for(&hrs, "broken", Duration::from_secs(30), |hr| {
        meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    let ready = ready_message(&stalled);
    assert!(
        ready.starts_with("False InvalidCELExpression: spec.dependsOn[0].readyExpr:"),
        "{ready}"
    );
    f.stop().await;
}

#[tokio::test]
async fn tests_run_after_a_release_and_a_failed_test_is_remediated() {
    let f = Fixture::start("hr-test").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let hr = helm_release(
        &name,
        "greet",
        "20s",
        json!({"test": {"enable": true}, "upgrade": {"remediation": {"retries": 1}}}),
    );
    hrs.create(&PostParams::default(), &hr).await.unwrap();
    // Installed, then tested at once: Ready tells the test's success, the snapshot its hook.
    let tested = wait_for(&hrs, "greet", Duration::from_secs(90), |hr| {
        hr.is_ready() && condition(hr, "TestSuccess").starts_with("True")
    })
    .await;
    let ready = ready_message(&tested);
    assert!(
        ready.starts_with(&format!(
            "True TestSucceeded: Helm test succeeded for release {name}/greet.v1 with chart greet@"
        )) && ready.ends_with(": 1 test hook completed successfully"),
        "{ready}"
    );
    let latest = tested.status.clone().unwrap().latest().cloned().unwrap();
    let hooks = latest.test_hooks.clone().unwrap();
    assert_eq!(hooks["greet-test"].phase.as_deref(), Some("Succeeded"));
    assert!(latest.has_been_tested());
    let stored = Storage::new(client.clone(), &name)
        .get("greet", 1)
        .await
        .unwrap()
        .unwrap();
    let hook = stored
        .hooks
        .iter()
        .find(|h| h.name == "greet-test")
        .unwrap();
    assert_eq!(hook.last_run.phase, "Succeeded");

    // An upgrade whose test fails: TestSuccess=False names the hook, the failure counts
    // against the upgrade's remediation, and the release is rolled back.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"testImage": "busybox-sim-crashloop"}}}),
    )
    .await;
    let remediated = wait_for(&hrs, "greet", Duration::from_secs(120), |hr| {
        condition(hr, "Remediated").starts_with("True RollbackSucceeded")
    })
    .await;
    let test = condition(&remediated, "TestSuccess");
    assert!(
        test.starts_with(&format!(
            "False TestFailed: Helm test failed for release {name}/greet.v2 with chart greet@"
        )) && test.contains("greet-test"),
        "{test}"
    );
    let status = remediated.status.clone().unwrap();
    assert!(status.upgrade_failures.unwrap_or(0) >= 1, "{status:?}");
    let failed = status
        .history
        .iter()
        .flatten()
        .find(|s| s.version == 2)
        .unwrap();
    assert_eq!(
        failed.test_hooks.as_ref().unwrap()["greet-test"]
            .phase
            .as_deref(),
        Some("Failed")
    );
    f.stop().await;
}

#[tokio::test]
async fn bad_input_fails_a_release_with_its_cause_and_nothing_else() {
    let f = Fixture::start("hr-bad").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    f.serve("garbage", b"this is not a gzipped tar archive")
        .await;
    let make = |release: &str, spec: serde_json::Value| helm_release(&name, release, "10s", spec);
    let cases = [
        (
            "garbage",
            json!({"chartRef": {"kind": "OCIRepository", "name": "garbage"}}),
            "Could not load chart",
        ),
        (
            "fails",
            json!({"values": {"failWith": "the database password is not set"}}),
            "the database password is not set",
        ),
        (
            "badyaml",
            json!({"values": {"badYaml": true}}),
            // Helm v4 reads the documents first for the post-renderers (helm-controller
            // always has its origin labels), hence its post-render wording; kyaml's go-yaml
            // v3 names the line the unclosed `[` is on.
            "error merging manifests: parsing greet/templates/bad.yaml: MalformedYAMLError: yaml: line 1: did not find expected ',' or ']'",
        ),
        (
            "recurse",
            json!({"values": {"recurse": true}}),
            "exceeded maximum template depth",
        ),
        (
            "badname",
            json!({"values": {"badName": true}}),
            "Not_A_Name",
        ),
        (
            "nosecret",
            json!({"valuesFrom": [{"kind": "Secret", "name": "absent"}]}),
            "secrets \"absent\" not found",
        ),
    ];
    for (release, spec, _) in &cases {
        let mut spec = spec.clone();
        spec["releaseName"] = json!(release);
        hrs.create(&PostParams::default(), &make(release, spec))
            .await
            .unwrap();
    }
    // A good one beside them is installed all the same.
    hrs.create(
        &PostParams::default(),
        &make("good", json!({"releaseName": "good"})),
    )
    .await
    .unwrap();
    wait_for(&hrs, "good", Duration::from_secs(90), |hr| hr.is_ready()).await;
    for (release, _, cause) in cases {
        let failed = wait_for(&hrs, release, Duration::from_secs(60), |hr| {
            ready_message(hr).starts_with("False")
        })
        .await;
        let ready = ready_message(&failed);
        assert!(ready.contains(cause), "{release}: {ready}");
    }
    // Nothing was left half-made: no release record for those that failed before applying.
    let storage = Storage::new(client.clone(), &name);
    for release in ["garbage", "nosecret"] {
        assert!(
            storage.history(release).await.unwrap().is_empty(),
            "{release}"
        );
    }
    f.stop().await;
}

/// A chart whose `values.schema.json` refers to its documents by URL, relative to its `$id`
/// (as bjw-s's app-template does with GitHub): the documents are fetched as Helm fetches them and
/// validate the values; a violation fails the upgrade naming the value, before anything is
/// written; `upgrade.disableSchemaValidation` lets the upgrade through. A document on a server
/// that cannot be reached fails the install naming it; `install.disableSchemaValidation` lets
/// it through.
#[tokio::test]
async fn schemas_that_refer_to_documents_by_url_validate_as_helms() {
    let f = Fixture::start("hr-schema").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let server = sluice_testsupport::static_http::StaticServer::start([(
        "/greet/schemas/port.json",
        r#"{"port": {"type": "integer", "minimum": 1}}"#,
    )]);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Chart.yaml",
        "apiVersion: v2\nname: schemed\nversion: 1.0.0\n",
    );
    write(dir.path(), "values.yaml", "port: 80\n");
    write(
        dir.path(),
        "values.schema.json",
        &format!(
            r#"{{"$id": "{}/greet/values.schema.json", "type": "object",
                "properties": {{"port": {{"$ref": "schemas/port.json#/port"}}}}}}"#,
            server.url
        ),
    );
    write(
        dir.path(),
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-port\n\
         data:\n  port: {{ .Values.port | quote }}\n",
    );
    f.release_dir("schemed", dir.path()).await;
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    wait_for(&hrs, "schemed", Duration::from_secs(90), |hr| hr.is_ready()).await;
    assert_eq!(server.hits(), 1, "the document is fetched once");

    merge(
        &hrs,
        "schemed",
        json!({"spec": {"values": {"port": "http"}}}),
    )
    .await;
    let failed = wait_for(&hrs, "schemed", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False")
    })
    .await;
    let ready = ready_message(&failed);
    assert!(
        ready.contains("values don't meet the specifications of the schema(s)")
            && ready.contains("- at '/port'"),
        "{ready}"
    );
    let storage = Storage::new(client.clone(), &name);
    assert_eq!(
        storage.history("schemed").await.unwrap().len(),
        1,
        "nothing written"
    );

    merge(
        &hrs,
        "schemed",
        json!({"spec": {"upgrade": {"disableSchemaValidation": true}}}),
    )
    .await;
    wait_for(&hrs, "schemed", Duration::from_secs(90), |hr| {
        hr.is_ready()
            && hr
                .status
                .as_ref()
                .and_then(|s| s.history.as_ref())
                .is_some_and(|h| h[0].version == 2)
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let cm = cms.get("schemed-port").await.unwrap();
    assert_eq!(cm.data.unwrap()["port"], "http");
    assert_eq!(server.hits(), 1, "kept, not fetched again");

    // A schema server that cannot be reached (an air-gapped cluster): the install fails
    // naming the document and why, nothing is written; without schema validation it installs.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreached = format!("http://127.0.0.1:{port}/greet/schemas/port.json");
    write(
        dir.path(),
        "values.schema.json",
        &format!(
            r#"{{"type": "object", "properties": {{"port": {{"$ref": "{unreached}#/port"}}}}}}"#
        ),
    );
    write(
        dir.path(),
        "Chart.yaml",
        "apiVersion: v2\nname: unreached\nversion: 1.0.0\n",
    );
    f.release_dir("unreached", dir.path()).await;
    let failed = wait_for(&hrs, "unreached", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False")
    })
    .await;
    let ready = ready_message(&failed);
    assert!(
        ready.contains(&format!("{unreached} (HTTP request failed"))
            && ready.contains("which could not be fetched"),
        "{ready}"
    );
    assert!(storage.history("unreached").await.unwrap().is_empty());
    merge(
        &hrs,
        "unreached",
        json!({"spec": {"install": {"disableSchemaValidation": true}}}),
    )
    .await;
    wait_for(&hrs, "unreached", Duration::from_secs(90), |hr| {
        hr.is_ready()
    })
    .await;
    assert!(cms.get_opt("unreached-port").await.unwrap().is_some());
    f.stop().await;
}

/// A HelmRelease without `serviceAccountName` acts as the reconciler (`sluice install`'s
/// `--reconciler-service-account`) in everything, its release storage included, as
/// helm-controller's impersonating client does; `--no-cross-namespace-refs` refuses a chart
/// source in another namespace before anything is read or made.
#[tokio::test]
async fn releases_act_as_the_reconciler_and_foreign_chart_sources_are_refused() {
    let f = Fixture::start_with("hr-tenancy", |ns| sluice_runtime::Tenancy {
        reconciler: Some(sluice_runtime::ServiceAccountRef {
            namespace: ns.to_owned(),
            name: "reconciler".into(),
        }),
        no_cross_namespace_refs: true,
        ..Default::default()
    })
    .await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    hrs.create(
        &PostParams::default(),
        &helm_release(&name, "greet", "30s", json!({})),
    )
    .await
    .unwrap();
    // The reconciler has no rights yet: refused as it, nothing written as the controller.
    let refused = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False")
    })
    .await;
    let message = ready_message(&refused);
    assert!(
        message.contains(&format!("system:serviceaccount:{name}:reconciler")),
        "{message}"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_none());

    // Given them (its storage's Secrets, what the chart makes), it releases.
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let meta = json!({"name": "reconciler", "namespace": name});
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(client.clone(), &name)
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": meta})).unwrap(),
        )
        .await
        .unwrap();
    let role = json!({"metadata": meta,
        "rules": [{"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["*"]}]});
    Api::<Role>::namespaced(client.clone(), &name)
        .create(&pp, &serde_json::from_value(role).unwrap())
        .await
        .unwrap();
    let binding = json!({"metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reconciler"},
        "subjects": [{"kind": "ServiceAccount", "name": "reconciler", "namespace": name}]});
    Api::<RoleBinding>::namespaced(client.clone(), &name)
        .create(&pp, &serde_json::from_value(binding).unwrap())
        .await
        .unwrap();
    request_reconcile(&hrs, "granted").await;
    wait_for(&hrs, "greet", Duration::from_secs(90), |hr| hr.is_ready()).await;
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_some());
    let stored = Storage::new(client.clone(), &name)
        .history("greet")
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);

    // A chart source in another namespace is refused, with helm-controller's words.
    hrs.create(
        &PostParams::default(),
        &helm_release(
            &name,
            "foreign",
            "30s",
            json!({"chartRef": {"kind": "OCIRepository", "name": "greet", "namespace": "default"}}),
        ),
    )
    .await
    .unwrap();
    let denied = wait_for(&hrs, "foreign", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False AccessDenied")
    })
    .await;
    assert_eq!(
        ready_message(&denied),
        "False AccessDenied: cross-namespace references are not allowed: cannot access \
         OCIRepository default/greet"
    );
    assert!(condition(&denied, "Stalled").starts_with("True AccessDenied"));

    // Deleted after the account it acts as (a namespace going away): the HelmRelease goes, the
    // release is left, as helm-controller does, instead of a finalizer that never clears.
    Api::<ServiceAccount>::namespaced(client.clone(), &name)
        .delete("reconciler", &DeleteParams::default())
        .await
        .unwrap();
    hrs.delete("greet", &DeleteParams::default()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hrs.get_opt("greet").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "greet is still there");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_some());
    f.stop().await;
}

#[tokio::test]
async fn a_chart_template_makes_a_helm_chart_that_goes_when_it_is_no_longer_wanted() {
    let f = Fixture::start("hr-tpl").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let hr: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "templated", "namespace": name},
        "spec": {
            "interval": "10m",
            "timeout": "30s",
            "releaseName": "greet",
            "chart": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {
                    "chart": "greet",
                    "version": "0.1.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                    "valuesFiles": ["values.yaml"],
                },
            },
        },
    }))
    .unwrap();
    hrs.create(&PostParams::default(), &hr).await.unwrap();

    // The HelmChart is made as helm-controller makes it; the release waits for its artifact.
    let chart_name = format!("{name}-templated");
    let charts: Api<sluice_api::HelmChart> = Api::namespaced(client.clone(), &name);
    let mut made = None;
    for _ in 0..100 {
        if let Some(c) = charts.get_opt(&chart_name).await.unwrap() {
            made = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let made = serde_json::to_value(made.expect("the HelmChart is made")).unwrap();
    assert_eq!(
        made["spec"],
        json!({
            "chart": "greet", "version": "0.1.x", "interval": "10m",
            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            "valuesFiles": ["values.yaml"],
            // Defaults the CRD fills in.
            "reconcileStrategy": "ChartVersion",
        }),
        "{made:#}"
    );
    assert_eq!(made["metadata"]["labels"]["team"], "a");
    assert_eq!(
        made["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"],
        "templated"
    );
    let waiting = wait_for(&hrs, "templated", Duration::from_secs(30), |hr| {
        ready_message(hr).contains("has no artifact yet")
    })
    .await;
    assert_eq!(
        waiting.status.unwrap().helm_chart.as_deref(),
        Some(format!("{name}/{chart_name}").as_str())
    );

    // The source controller's part: the chart as the HelmChart's artifact. The release is
    // woken by it and installed.
    let chart_dir = tempfile::tempdir().unwrap();
    let archive = chart_archive(chart_dir.path());
    let rel = format!("helmchart/{name}/{chart_name}/greet-0.1.0.tgz");
    write(f.storage.path(), &rel, "");
    std::fs::write(f.storage.path().join(&rel), &archive).unwrap();
    let digest = sluice_git::archive::digest_bytes(&archive);
    charts
        .patch_status(
            &chart_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"artifact": {
                "path": rel, "url": format!("http://source.invalid/{rel}"),
                "revision": "0.1.0", "digest": digest,
                "lastUpdateTime": "2026-12-02T10:00:00Z",
            }}})),
        )
        .await
        .unwrap();
    let installed = wait_for(&hrs, "templated", Duration::from_secs(60), |hr| {
        hr.is_ready()
    })
    .await;
    assert_eq!(
        ready_message(&installed),
        format!(
            "True InstallSucceeded: Helm install succeeded for release {name}/greet.v1 with chart greet@0.1.0"
        )
    );

    // Moved to a chartRef: the HelmChart is deleted and the status no longer names it.
    merge(
        &hrs,
        "templated",
        json!({"spec": {"chart": null, "chartRef": {"kind": "OCIRepository", "name": "greet"}}}),
    )
    .await;
    let moved = wait_for(&hrs, "templated", Duration::from_secs(60), |hr| {
        hr.is_ready() && hr.status.as_ref().is_some_and(|s| s.helm_chart.is_none())
    })
    .await;
    assert!(ready_message(&moved).contains("Helm upgrade succeeded"));
    assert!(charts.get_opt(&chart_name).await.unwrap().is_none());
    f.stop().await;
}

#[tokio::test]
async fn post_renderers_shape_the_release_and_a_change_of_them_upgrades() {
    use k8s_openapi::api::apps::v1::Deployment;
    let f = Fixture::start("hr-postrender").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &name);
    let renderers = |extra: &str| {
        json!([{"kustomize": {
            "images": [{"name": "nginx", "newName": "mirror.local/nginx"}],
            "patches": [
                {"target": {"kind": "ConfigMap", "name": ".*-greeting"},
                 "patch": format!("- op: add\n  path: /data/extra\n  value: \"{extra}\"\n")},
                {"target": {"kind": "Deployment"},
                 "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: any\n  annotations:\n    patched: \"yes\"\n"},
            ],
        }}])
    };
    let hr = helm_release(
        &name,
        "greet",
        "60s",
        json!({"postRenderers": renderers("1"), "commonMetadata": {"labels": {"team": "web"}}}),
    );
    hrs.create(&PostParams::default(), &hr).await.unwrap();
    let ready = wait_for(&hrs, "greet", Duration::from_secs(90), |hr| hr.is_ready()).await;
    let status = ready.status.clone().unwrap();
    assert_eq!(
        status.observed_post_renderers_digest,
        Some(sluice_helmrelease::digests::post_renderers(
            ready.spec.post_renderers.as_deref()
        ))
    );

    // What is applied is what the post-renderers made, hooks included (Helm v4's combined
    // strategy): the patches, the image, the common and origin labels.
    let greeting = cms.get("greet-greeting").await.unwrap();
    assert_eq!(greeting.data.as_ref().unwrap()["extra"], "1");
    let labels = greeting.metadata.labels.clone().unwrap();
    assert_eq!(labels["team"], "web");
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "greet");
    assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], name);
    let hooked = cms.get("greet-hooked").await.unwrap();
    assert_eq!(hooked.metadata.labels.unwrap()["team"], "web");
    let web = deployments.get("greet").await.unwrap();
    assert_eq!(web.metadata.annotations.unwrap()["patched"], "yes");
    let image = web.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(image, "mirror.local/nginx:hello");
    // And it is what the release records, as Flux records it.
    let storage = Storage::new(client.clone(), &name);
    let stored = storage.last("greet").await.unwrap().unwrap();
    assert!(
        stored.manifest.contains("  extra: \"1\"\n")
            && stored
                .manifest
                .contains("    helm.toolkit.fluxcd.io/name: greet\n")
            && stored
                .manifest
                .contains("image: mirror.local/nginx:hello\n"),
        "{}",
        stored.manifest
    );

    // New post-renderers are a new revision.
    merge(
        &hrs,
        "greet",
        json!({"spec": {"postRenderers": renderers("2")}}),
    )
    .await;
    wait_for(&hrs, "greet", Duration::from_secs(90), |hr| {
        hr.is_ready()
            && hr
                .status
                .as_ref()
                .and_then(|s| s.latest())
                .map(|s| s.version)
                == Some(2)
    })
    .await;
    assert_eq!(
        cms.get("greet-greeting").await.unwrap().data.unwrap()["extra"],
        "2"
    );

    // A post-renderer that fails names its cause; nothing is recorded.
    let broken = helm_release(
        &name,
        "broken",
        "60s",
        json!({"releaseName": "broken", "postRenderers": [{"kustomize": {"patches": [{
            "patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: absent\ndata:\n  a: b\n",
        }]}}]}),
    );
    hrs.create(&PostParams::default(), &broken).await.unwrap();
    let failed = wait_for(&hrs, "broken", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False")
    })
    .await;
    let message = ready_message(&failed);
    assert!(
        message.contains(
            "error while running post render on files: no resource matches strategic merge patch \"ConfigMap.v1.[noGrp]/absent.[noNs]\""
        ),
        "{message}"
    );
    assert!(storage.history("broken").await.unwrap().is_empty());
    f.stop().await;
}

#[tokio::test]
async fn uninstall_waits_for_what_it_deleted_with_the_propagation_asked_for() {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    let f = Fixture::start("hr-uninstall").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &name);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &name);
    let owned_by = |rs: &ReplicaSet, deployment: &str| {
        rs.metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .starts_with(&format!("{deployment}-"))
    };
    for (release, propagation) in [("fore", "foreground"), ("orphan", "orphan")] {
        let hr = helm_release(
            &name,
            release,
            "60s",
            json!({"releaseName": release, "uninstall": {"deletionPropagation": propagation}}),
        );
        hrs.create(&PostParams::default(), &hr).await.unwrap();
    }
    for release in ["fore", "orphan"] {
        wait_for(&hrs, release, Duration::from_secs(90), |hr| hr.is_ready()).await;
    }
    for release in ["fore", "orphan"] {
        let rs = replica_sets.list(&ListParams::default()).await.unwrap();
        assert!(
            rs.items.iter().any(|r| owned_by(r, release)),
            "{release}: no ReplicaSet yet"
        );
    }

    // Foreground: the HelmRelease goes only once the Deployment and its ReplicaSets are gone
    // (the uninstall waited for the Deployment, which the API server keeps until its
    // dependents are deleted).
    hrs.delete("fore", &DeleteParams::default()).await.unwrap();
    for _ in 0..300 {
        if hrs.get_opt("fore").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        hrs.get_opt("fore").await.unwrap().is_none(),
        "finalizer not removed"
    );
    assert!(deployments.get_opt("fore").await.unwrap().is_none());
    let rs = replica_sets.list(&ListParams::default()).await.unwrap();
    assert!(
        !rs.items.iter().any(|r| owned_by(r, "fore")),
        "ReplicaSets of the foreground-deleted Deployment are left: {:?}",
        rs.items
            .iter()
            .map(|r| r.metadata.name.clone())
            .collect::<Vec<_>>()
    );

    // Orphan: the Deployment goes, its ReplicaSet stays, without the owner.
    hrs.delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    for _ in 0..300 {
        if hrs.get_opt("orphan").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        hrs.get_opt("orphan").await.unwrap().is_none(),
        "finalizer not removed"
    );
    assert!(deployments.get_opt("orphan").await.unwrap().is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rs = replica_sets.list(&ListParams::default()).await.unwrap();
    let orphaned: Vec<&ReplicaSet> = rs.items.iter().filter(|r| owned_by(r, "orphan")).collect();
    assert!(!orphaned.is_empty(), "the orphaned ReplicaSet was deleted");
    assert!(
        orphaned.iter().all(|r| r
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty())),
        "still owned"
    );
    f.stop().await;
}

#[tokio::test]
async fn the_legacy_wait_waits_for_a_load_balancer_and_stalls_naming_it() {
    let f = Fixture::start("hr-legacy").await;
    let name = f.name.clone();
    let hrs: Api<HelmRelease> = Api::namespaced(f.client.clone(), &name);
    // Helm 3's wait (waitStrategy: legacy) and a LoadBalancer Service on a cluster without a
    // load balancer: the k3s-with-servicelb-disabled Traefik case.
    let hr = helm_release(
        &name,
        "greet",
        "4s",
        json!({
            "waitStrategy": {"name": "legacy"},
            "install": {"remediation": {"retries": -1}},
            "values": {"loadBalancer": true},
        }),
    );
    hrs.create(&PostParams::default(), &hr).await.unwrap();
    let waiting = wait_for(&hrs, "greet", Duration::from_secs(30), |hr| {
        ready_message(hr).contains("waiting for")
    })
    .await;
    let ready = ready_message(&waiting);
    assert!(
        ready.contains(&format!("Service/{name}/greet-lb status: 'InProgress'")),
        "{ready}"
    );
    let stalled = wait_for(&hrs, "greet", Duration::from_secs(120), |hr| {
        meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    let ready = ready_message(&stalled);
    assert!(
        ready.contains(&format!(
            "stopped retrying: Service/{name}/greet-lb: no load balancer assigned an address to this LoadBalancer Service failed the release 2 times"
        )) && ready.contains("servicelb"),
        "{ready}"
    );
    // The same chart without the LoadBalancer is ready under the same rules (Deployment,
    // ConfigMap by Helm's legacy readiness).
    merge(
        &hrs,
        "greet",
        json!({"spec": {"values": {"loadBalancer": false}}}),
    )
    .await;
    wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        hr.is_ready() && !meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    f.stop().await;
}

#[tokio::test]
async fn the_traefik_chart_under_the_legacy_wait_stalls_on_its_load_balancer() {
    // The k3s homelab case: Traefik's chart (its LoadBalancer Service) on a cluster without a
    // load balancer (k3s with --disable=servicelb), Helm 3's wait, retried forever by Flux.
    let charts =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/helm/charts");
    if !charts.is_dir() {
        eprintln!(
            "the_traefik_chart_under_the_legacy_wait_stalls_on_its_load_balancer: skipped, ../shared/conformance/helm/charts is absent"
        );
        return;
    }
    let chart = sluice_helm::chart::load_dir(&charts.join("traefik"), &Default::default()).unwrap();
    let archive = sluice_helm::package::package(&chart).unwrap();
    let f = Fixture::start("hr-traefik").await;
    let name = f.name.clone();
    f.serve_tag("traefik", &archive, &chart.metadata.version)
        .await;
    let hrs: Api<HelmRelease> = Api::namespaced(f.client.clone(), &name);
    let hr: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "traefik", "namespace": name},
        "spec": {
            "interval": "10m",
            "timeout": "8s",
            "chartRef": {"kind": "OCIRepository", "name": "traefik"},
            "waitStrategy": {"name": "legacy"},
            "install": {"remediation": {"retries": -1}},
        },
    }))
    .unwrap();
    hrs.create(&PostParams::default(), &hr).await.unwrap();
    let stalled = wait_for(&hrs, "traefik", Duration::from_secs(180), |hr| {
        meta::is_condition_true(hr.conditions(), meta::STALLED_CONDITION)
    })
    .await;
    let ready = ready_message(&stalled);
    assert!(
        ready.contains(&format!(
            "stopped retrying: Service/{name}/traefik: no load balancer assigned an address"
        )) && ready.contains("--disable=servicelb"),
        "{ready}"
    );
    let released = condition(&stalled, "Released");
    assert!(
        released.contains("timeout waiting for")
            && released.contains(&format!("Service/{name}/traefik")),
        "{released}"
    );
    f.stop().await;
}

/// Puts `kubeconfig` in Secret `name` under `value`.
async fn kubeconfig_secret(client: &kube::Client, ns: &str, name: &str, kubeconfig: &str) {
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": {"value": kubeconfig}});
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

/// `spec.kubeConfig`: every action, the release storage included, happens on the cluster the
/// Secret's kubeconfig names, with its identity (here the test control plane again, as its
/// admin: the reconciler this controller would otherwise act as has no rights and is never
/// assumed on another cluster); a wrong server in it fails the run, naming it; uninstall goes
/// there too.
#[tokio::test]
async fn a_kube_config_releases_on_the_cluster_it_names() {
    let f = Fixture::start_with("hr-remote", |ns| sluice_runtime::Tenancy {
        reconciler: Some(sluice_runtime::ServiceAccountRef {
            namespace: ns.to_owned(),
            name: "reconciler".into(),
        }),
        ..Default::default()
    })
    .await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let unreachable = sluice_testsupport::kubeconfig_text(Some("https://127.0.0.1:1"));
    kubeconfig_secret(&client, &name, "remote", &unreachable).await;
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    hrs.create(
        &PostParams::default(),
        &helm_release(
            &name,
            "greet",
            "30s",
            json!({"kubeConfig": {"secretRef": {"name": "remote"}}}),
        ),
    )
    .await
    .unwrap();
    let failed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False")
    })
    .await;
    let message = ready_message(&failed);
    assert!(message.contains("127.0.0.1:1"), "{message}");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_none());

    kubeconfig_secret(
        &client,
        &name,
        "remote",
        &sluice_testsupport::kubeconfig_text(None),
    )
    .await;
    request_reconcile(&hrs, "fixed").await;
    wait_for(&hrs, "greet", Duration::from_secs(90), |hr| hr.is_ready()).await;
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_some());
    let stored = Storage::new(client.clone(), &name)
        .history("greet")
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);

    hrs.delete("greet", &DeleteParams::default()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hrs.get_opt("greet").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "greet is still there");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        cms.get_opt("greet-greeting").await.unwrap().is_none(),
        "uninstalled on the cluster of the kubeconfig"
    );
    f.stop().await;
}

/// Writes ExternalArtifact `name`'s status as its producer would: the chart served at `url`.
async fn produce_chart(
    client: &kube::Client,
    ns: &str,
    name: &str,
    url: &str,
    revision: &str,
    digest: &str,
) {
    let eas: Api<ExternalArtifact> = Api::namespaced(client.clone(), ns);
    if eas.get_opt(name).await.unwrap().is_none() {
        let ea: ExternalArtifact = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
            "metadata": {"name": name, "namespace": ns}, "spec": {},
        }))
        .unwrap();
        eas.create(&PostParams::default(), &ea).await.unwrap();
    }
    eas.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"artifact": {
            // A path in sluice's storage that holds nothing: the URL is what is read.
            "path": format!("externalartifact/{ns}/{name}/chart.tgz"), "url": url,
            "revision": revision, "digest": digest, "lastUpdateTime": "2026-12-08T00:00:00Z",
        }}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn external_artifacts_are_charts_behind_the_feature_gate() {
    let f = Fixture::start_with("hr-ea", |_| sluice_runtime::Tenancy {
        external_artifacts: true,
        ..Default::default()
    })
    .await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let chart_dir = tempfile::tempdir().unwrap();
    let archive = chart_archive(chart_dir.path());
    let digest = sluice_git::archive::digest_bytes(&archive);
    let server = sluice_testsupport::static_http::StaticServer::start([("/greet.tgz", archive)]);
    let url = format!("{}/greet.tgz", server.url);
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);

    // A revision with a digest: the chart's version carries it, as from an OCIRepository.
    produce_chart(
        &client,
        &name,
        "by-digest",
        &url,
        &format!("latest@{digest}"),
        &digest,
    )
    .await;
    let spec = json!({"chartRef": {"kind": "ExternalArtifact", "name": "by-digest"}});
    hrs.create(
        &PostParams::default(),
        &helm_release(&name, "greet", "30s", spec),
    )
    .await
    .unwrap();
    let installed = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| hr.is_ready()).await;
    let version = format!("0.1.0+{}", &digest["sha256:".len()..][..12]);
    assert_eq!(
        ready_message(&installed),
        format!(
            "True InstallSucceeded: Helm install succeeded for release {name}/greet.v1 with chart greet@{version}"
        )
    );
    let latest = installed.status.clone().unwrap().latest().cloned().unwrap();
    // helm-controller records a revision that is not `<semver>@<digest>` whole.
    let recorded = format!("latest@{digest}");
    assert_eq!(latest.oci_digest.as_deref(), Some(recorded.as_str()));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    assert!(cms.get_opt("greet-greeting").await.unwrap().is_some());

    // A plain version as the revision: the chart's version is left as it is.
    produce_chart(&client, &name, "by-version", &url, "0.1.0", &digest).await;
    let spec = json!({"releaseName": "plain",
        "chartRef": {"kind": "ExternalArtifact", "name": "by-version"}});
    hrs.create(
        &PostParams::default(),
        &helm_release(&name, "plain", "30s", spec),
    )
    .await
    .unwrap();
    let plain = wait_for(&hrs, "plain", Duration::from_secs(60), |hr| hr.is_ready()).await;
    let latest = plain.status.clone().unwrap().latest().cloned().unwrap();
    assert_eq!(latest.chart_version, "0.1.0");
    assert_eq!(latest.oci_digest, None);

    // The producer's next artifact wakes the release at once (its interval is 10 minutes),
    // and one whose digest does not match what is served is refused.
    let wrong = format!("sha256:{}", "0".repeat(64));
    produce_chart(&client, &name, "by-version", &url, "0.1.1", &wrong).await;
    let refused = wait_for(&hrs, "plain", Duration::from_secs(60), |hr| {
        ready_message(hr).contains("computed digest doesn't match")
    })
    .await;
    assert!(
        ready_message(&refused).starts_with("False ArtifactFailed"),
        "{}",
        ready_message(&refused)
    );
    f.stop().await;
}

#[tokio::test]
async fn without_the_feature_gate_an_external_artifact_chart_is_access_denied() {
    let f = Fixture::start("hr-ea-gate").await;
    let (client, name) = (f.client.clone(), f.name.clone());
    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &name);
    let spec = json!({"chartRef": {"kind": "ExternalArtifact", "name": "generated"}});
    hrs.create(
        &PostParams::default(),
        &helm_release(&name, "greet", "30s", spec),
    )
    .await
    .unwrap();
    let denied = wait_for(&hrs, "greet", Duration::from_secs(60), |hr| {
        ready_message(hr).starts_with("False AccessDenied")
    })
    .await;
    assert_eq!(
        ready_message(&denied),
        format!(
            "False AccessDenied: can't access 'ExternalArtifact/{name}/generated', ExternalArtifact feature gate is disabled"
        )
    );
    assert!(condition(&denied, "Stalled").starts_with("True AccessDenied"));
    f.stop().await;
}
