//! Flux's helm-controller beside sluice, end to end: sluice is the only
//! source-controller, and Flux's own helm-controller (v1.6.4, what Flux
//! v2.9.5 ships, built from Go modules by `scripts/flux-reference`) installs
//! and upgrades a HelmRelease whose chart comes from an OCIRepository that
//! sluice serves.
//!
//! 1. A chart (one ConfigMap template) is pushed to the test registry as
//!    `helm push` does, at 1.0.0 and at 1.1.0.
//! 2. `sluice controller` (the binary as users run it) and helm-controller
//!    run against the test control plane, both scoped to the test namespace.
//! 3. An OCIRepository (`layerSelector` with Helm's chart media type,
//!    `operation: copy`, `ref.tag: 1.0.0`) and a HelmRelease with
//!    `chartRef: {kind: OCIRepository}` and values: the release becomes
//!    Ready, at the pushed digest (helm-controller installs chart version
//!    `1.0.0+<12 hex digits of sluice's revision digest>`), and the
//!    ConfigMap holds the values given.
//! 4. The OCIRepository's tag changed to 1.1.0: sluice serves the new chart
//!    and helm-controller upgrades the release (revision 2, the new
//!    template's key appears).
//! 5. Takeover: helm-controller stops, `sluice controller --helmrelease`
//!    starts; asked to reconcile, it finds Flux's release in sync (the
//!    snapshot digests and values digest match), tested (Flux's `testHooks`)
//!    and without drift: no revision 3, no test run again, `Drifted=False`.
//! 6. New values: sluice upgrades to revision 3 and runs its test.
//! 7. And back: sluice stops, helm-controller starts again and finds
//!    sluice's release in sync, tested and without drift: no revision 4.
//!
//! The HelmRelease has `test.enable` (the chart has a test Pod) and
//! `driftDetection.mode: enabled`, so the snapshots' `testHooks` and each
//! side's drift detection against the other's release are checked too.
//!
//! Skipped, with a message, where the helm-controller binary is not built
//! (`make flux-reference`; `make test` never builds it), where Flux's
//! HelmRelease CRD (`../shared/flux-crds`) is absent, or where the registry
//! binary is not installed. `SLUICE_HELM_CONTROLLER_BIN` names the
//! helm-controller binary to run, and then nothing may skip the test (what
//! would skip it fails it); `SLUICE_BIN` names another sluice. Logs stay in
//! `target/tmp/flux-helm-controller-<pid>/`. `make helm-controller-check`
//! builds helm-controller (cached) and runs this test.

mod support;

use sluice_testsupport::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::Proc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use sluice_testsupport::oci_registry::{OciRegistry, RegistryConfig};
use sluice_testsupport::{TestNamespace, repo_root};

const CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const CONVERGE: Duration = Duration::from_secs(120);
const HELM_CONTROLLER_ENV: &str = "SLUICE_HELM_CONTROLLER_BIN";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_release_from_a_sluice_oci_repository_installs_and_upgrades() {
    let started = Instant::now();
    let note = |what: &str| {
        eprintln!(
            "[flux-helm-controller] [{:6.1}s] {what}",
            started.elapsed().as_secs_f64()
        )
    };
    let Some(helm_controller) = helm_controller_bin() else {
        eprintln!("skipped: helm-controller is not built; run make flux-reference");
        return;
    };
    // A binary named explicitly (make helm-controller-check) means the check
    // must run: what would skip it fails it instead.
    let strict = std::env::var_os(HELM_CONTROLLER_ENV).is_some_and(|v| !v.is_empty());
    let skip = |why: String| {
        assert!(!strict, "{HELM_CONTROLLER_ENV} is set, but {why}");
        eprintln!("skipped: {why}");
    };
    let crd_file = repo_root().join("../shared/flux-crds/helm.toolkit.fluxcd.io_helmreleases.yaml");
    if !crd_file.is_file() {
        skip(format!(
            "Flux's HelmRelease CRD is absent ({}; ../shared is not part of the project)",
            crd_file.display()
        ));
        return;
    }
    // Prints why when the registry binary is missing.
    let Some(registry) = OciRegistry::start(RegistryConfig::anonymous()) else {
        skip("there is no OCI registry for the chart".into());
        return;
    };

    // 1. The chart, twice (the push client is a blocking one: off the runtime).
    let work = tempfile::tempdir().expect("temporary directory");
    let (v1, v2) = std::thread::scope(|s| {
        s.spawn(|| {
            (
                registry.push_chart("charts", &chart_tgz(work.path(), "1.0.0", false)),
                registry.push_chart("charts", &chart_tgz(work.path(), "1.1.0", true)),
            )
        })
        .join()
        .expect("pushing the charts")
    });
    note(&format!("pushed {} and {}", v1.revision(), v2.revision()));

    // 2. The CRDs and the two controllers.
    let client = sluice_testsupport::client().await;
    for crd in sluice_api::crds() {
        sluice_testsupport::apply_crd(&client, &crd, "sluice-flux-helm-test").await;
    }
    let text = std::fs::read_to_string(&crd_file).expect("reading the HelmRelease CRD");
    let helm_crd: Value = serde_norway::from_str(&text).expect("the HelmRelease CRD is YAML");
    sluice_testsupport::apply_crd(&client, &helm_crd, "sluice-flux-helm-test").await;
    let ns = TestNamespace::create(&client, "fluxhelm").await;
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flux-helm-controller-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("creating the log directory");
    let storage = tempfile::tempdir().expect("temporary directory");
    let storage_addr = format!("127.0.0.1:{}", free_port());
    let _sluice = Proc::start(
        "sluice",
        Command::new(sluice_bin()).args([
            "--log-level",
            "info",
            "controller",
            "--watch-namespace",
            ns.name(),
            "--kustomization=false",
            "--reloader=false",
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--storage-path",
            path_str(storage.path()),
            "--storage-addr",
            &storage_addr,
            "--storage-adv-addr",
            &storage_addr,
        ]),
        &logs,
    );
    // helm-controller reads KUBECONFIG (controller-runtime's --kubeconfig is
    // not among its flags); RUNTIME_NAMESPACE with
    // --watch-all-namespaces=false keeps it to this test's namespace when
    // other tests share the control plane.
    let _helm = Proc::start(
        "helm-controller",
        Command::new(&helm_controller)
            .args([
                "--watch-all-namespaces=false",
                "--enable-leader-election=false",
                "--metrics-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--health-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--log-level",
                "debug",
                "--log-encoding",
                "console",
                "--concurrent",
                "2",
                "--requeue-dependency",
                "2s",
            ])
            .env("RUNTIME_NAMESPACE", ns.name()),
        &logs,
    );

    // 3. OCIRepository and HelmRelease.
    let oci = dynamic(
        &client,
        ns.name(),
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
    );
    let releases = dynamic(
        &client,
        ns.name(),
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
    );
    let repo_obj = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "demo"},
        "spec": {
            "interval": "10m",
            "url": registry.url("charts/demo"),
            "ref": {"tag": "1.0.0"},
            "insecure": true,
            "layerSelector": {"mediaType": CHART_MEDIA_TYPE, "operation": "copy"},
        },
    });
    create(&oci, repo_obj).await;
    let release_obj = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "demo"},
        "spec": {
            "interval": "10m",
            "timeout": "1m",
            "chartRef": {"kind": "OCIRepository", "name": "demo"},
            "values": {"greeting": "hello from sluice", "replicas": 3},
            "test": {"enable": true},
            "driftDetection": {"mode": "enabled"},
            "commonMetadata": {"labels": {"team": "demo"}},
            "postRenderers": [{"kustomize": {"patches": [{
                "target": {"kind": "ConfigMap"},
                "patch": "- op: add\n  path: /data/postRendered\n  value: \"yes\"\n",
            }]}}],
        },
    });
    create(&releases, release_obj).await;

    let repo = wait_until(&oci, "demo", "OCIRepository Ready at 1.0.0", |o| {
        ready(o) && o["status"]["artifact"]["revision"] == v1.revision().as_str()
    })
    .await;
    note(&format!(
        "OCIRepository Ready: {}",
        repo["status"]["artifact"]["url"]
    ));
    let url = repo["status"]["artifact"]["url"].as_str().unwrap_or("");
    assert!(
        url.starts_with(&format!("http://{storage_addr}/")),
        "the artifact is not served by this sluice: {url}"
    );

    // helm-controller appends the first 12 hex digits of the OCIRepository
    // revision's digest to the chart version (so that a moved tag is seen).
    let version1 = chart_version("1.0.0", &v1.digest);
    let hr = wait_until(&releases, "demo", "HelmRelease Ready at 1.0.0", |o| {
        ready(o)
            && o["status"]["observedGeneration"] == o["metadata"]["generation"]
            && o["status"]["history"][0]["chartVersion"] == version1.as_str()
    })
    .await;
    note("HelmRelease Ready (installed 1.0.0)");
    let latest = &hr["status"]["history"][0];
    assert_eq!(latest["status"], "deployed", "{latest:#}");
    assert_eq!(latest["version"], 1, "{latest:#}");
    assert_eq!(latest["chartName"], "demo", "{latest:#}");
    assert_eq!(latest["ociDigest"], v1.digest.as_str(), "{latest:#}");
    assert_eq!(
        hr["status"]["lastAttemptedRevisionDigest"],
        v1.digest.as_str(),
        "{:#}",
        hr["status"]
    );
    let cms = ns.api::<ConfigMap>();
    let data = configmap_data(&cms, "demo-settings").await;
    assert_eq!(data["greeting"], "hello from sluice", "{data:#}");
    assert_eq!(data["replicas"], "3", "{data:#}");
    assert_eq!(data["chartVersion"], version1.as_str(), "{data:#}");
    assert!(data.get("added").is_none(), "{data:#}");
    let secrets = ns.api::<Secret>();
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.demo.v1")
            .await
            .ok()
            .flatten()
            .is_some(),
        "no Helm release Secret for revision 1"
    );

    // 4. A new tag: sluice serves 1.1.0, helm-controller upgrades.
    let t = Instant::now();
    oci.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ref": {"tag": "1.1.0"}}})),
    )
    .await
    .expect("changing the OCIRepository's tag");
    wait_until(&oci, "demo", "OCIRepository Ready at 1.1.0", |o| {
        ready(o) && o["status"]["artifact"]["revision"] == v2.revision().as_str()
    })
    .await;
    let version2 = chart_version("1.1.0", &v2.digest);
    let hr = wait_until(&releases, "demo", "HelmRelease upgraded to 1.1.0", |o| {
        ready(o) && o["status"]["history"][0]["chartVersion"] == version2.as_str()
    })
    .await;
    note(&format!(
        "HelmRelease upgraded to 1.1.0 {:.1}s after the tag change",
        t.elapsed().as_secs_f64()
    ));
    let latest = &hr["status"]["history"][0];
    assert_eq!(latest["status"], "deployed", "{latest:#}");
    assert_eq!(latest["version"], 2, "{latest:#}");
    assert_eq!(latest["ociDigest"], v2.digest.as_str(), "{latest:#}");
    assert_eq!(hr["status"]["lastAttemptedReleaseAction"], "upgrade");
    let data = configmap_data(&cms, "demo-settings").await;
    assert_eq!(data["chartVersion"], version2.as_str(), "{data:#}");
    assert_eq!(data["added"], "in 1.1.0", "{data:#}");
    assert_eq!(data["greeting"], "hello from sluice", "{data:#}");

    // 5. Takeover: helm-controller stops, sluice's HelmRelease controller starts and, asked to
    //    reconcile, finds the release in sync: no new revision.
    drop(_helm);
    let digest2 = hr["status"]["history"][0]["digest"].clone();
    let sluice_helm = Proc::start(
        "sluice-helmrelease",
        Command::new(sluice_bin()).args([
            "--log-level",
            "debug",
            "controller",
            "--watch-namespace",
            ns.name(),
            "--source=false",
            "--kustomization=false",
            "--reloader=false",
            "--helmrelease",
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
        ]),
        &logs,
    );
    let handled = |token: &'static str| {
        move |o: &Value| o["status"]["lastHandledReconcileAt"] == token && ready(o)
    };
    request_reconcile(&releases, "takeover-1").await;
    let hr = wait_until(
        &releases,
        "demo",
        "taken over by sluice",
        handled("takeover-1"),
    )
    .await;
    note("taken over by sluice's HelmRelease controller");
    assert_eq!(
        hr["status"]["history"][0]["version"], 2,
        "{:#}",
        hr["status"]
    );
    assert_eq!(hr["status"]["history"][0]["digest"], digest2);
    assert_eq!(
        revisions(&secrets).await,
        [1, 2],
        "no new revision on takeover"
    );
    assert_tested_without_drift(&hr, "Flux's release, taken over");
    let flux_test_run = hr["status"]["history"][0]["testHooks"].clone();

    // 6. New values: sluice upgrades (revision 3), as helm-controller would.
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"greeting": "upgraded by sluice"}}})),
        )
        .await
        .expect("changing the values");
    let hr = wait_until(&releases, "demo", "upgraded by sluice", |o| {
        ready(o) && o["status"]["history"][0]["version"] == 3
    })
    .await;
    let data = configmap_data(&cms, "demo-settings").await;
    assert_eq!(data["greeting"], "upgraded by sluice", "{data:#}");
    assert_eq!(
        hr["status"]["history"][0]["chartVersion"],
        version2.as_str()
    );
    let hr = wait_until(&releases, "demo", "tested by sluice", |o| {
        condition(o, "TestSuccess")["status"] == "True" && o["status"]["history"][0]["version"] == 3
    })
    .await;
    assert_tested_without_drift(&hr, "sluice's upgrade");
    assert_ne!(
        hr["status"]["history"][1]["testHooks"],
        Value::Null,
        "revision 2's test run (Flux's) is kept in its snapshot"
    );
    assert_eq!(hr["status"]["history"][1]["testHooks"], flux_test_run);
    let digest3 = hr["status"]["history"][0]["digest"].clone();
    // The post-renderers ran on both sides, and sluice recorded the manifest and hooks Flux
    // would have: Flux's revision 2 with the new greeting is sluice's revision 3, byte for byte.
    assert_eq!(data["postRendered"], "yes", "{data:#}");
    let (flux2, sluice3) = (stored(&secrets, 2).await, stored(&secrets, 3).await);
    assert!(
        flux2.manifest.contains("    team: demo\n"),
        "{}",
        flux2.manifest
    );
    assert_eq!(
        flux2
            .manifest
            .replace("hello from sluice", "upgraded by sluice"),
        sluice3.manifest
    );
    let hooks = |r: &sluice_helm::release::Release| {
        r.hooks
            .iter()
            .map(|h| (h.path.clone(), h.manifest.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(hooks(&flux2), hooks(&sluice3));

    // 7. And back: sluice stops, helm-controller starts and finds sluice's release in sync.
    drop(sluice_helm);
    let _helm_again = Proc::start(
        "helm-controller-again",
        Command::new(&helm_controller)
            .args([
                "--watch-all-namespaces=false",
                "--enable-leader-election=false",
                "--metrics-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--health-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--log-encoding",
                "console",
            ])
            .env("RUNTIME_NAMESPACE", ns.name()),
        &logs,
    );
    request_reconcile(&releases, "back-1").await;
    let hr = wait_until(
        &releases,
        "demo",
        "handed back to helm-controller",
        handled("back-1"),
    )
    .await;
    note("handed back to Flux's helm-controller");
    assert_eq!(
        hr["status"]["history"][0]["version"], 3,
        "{:#}",
        hr["status"]
    );
    assert_eq!(hr["status"]["history"][0]["digest"], digest3);
    assert_eq!(
        revisions(&secrets).await,
        [1, 2, 3],
        "no new revision on the way back"
    );
    assert_tested_without_drift(&hr, "sluice's release, handed back");
    ns.delete().await;
}

fn condition<'a>(o: &'a Value, kind: &str) -> &'a Value {
    o["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// The latest revision's test ran and succeeded (its hook recorded in the snapshot), and the
/// release's drift detection found nothing.
fn assert_tested_without_drift(hr: &Value, what: &str) {
    let hooks = &hr["status"]["history"][0]["testHooks"];
    assert_eq!(
        hooks["demo-test"]["phase"], "Succeeded",
        "{what}: {:#}",
        hr["status"]
    );
    assert_eq!(
        condition(hr, "TestSuccess")["status"],
        "True",
        "{what}: {:#}",
        hr["status"]
    );
    assert_eq!(
        condition(hr, "Drifted")["reason"],
        "NoDriftDetected",
        "{what}: {:#}",
        hr["status"]
    );
}

/// Asks for a reconciliation as `flux reconcile` does.
async fn request_reconcile(api: &Api<DynamicObject>, token: &str) {
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        ),
    )
    .await
    .expect("requesting a reconciliation");
}

/// The revisions of release `demo` in storage.
/// Revision `version` of release `demo` as stored.
async fn stored(secrets: &Api<Secret>, version: i64) -> sluice_helm::release::Release {
    let name = format!("sh.helm.release.v1.demo.v{version}");
    let secret = secrets
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("reading {name}: {e}"));
    let data = secret.data.unwrap_or_default();
    let record = data
        .get("release")
        .unwrap_or_else(|| panic!("{name} has no release"));
    sluice_helm::release::Release::decode(&record.0)
        .unwrap_or_else(|e| panic!("decoding {name}: {e}"))
}

async fn revisions(secrets: &Api<Secret>) -> Vec<i64> {
    let list = secrets
        .list(&kube::api::ListParams::default().labels("owner=helm,name=demo"))
        .await
        .expect("listing the release Secrets");
    let mut v: Vec<i64> = list
        .items
        .iter()
        .filter_map(|s| s.metadata.labels.as_ref()?.get("version")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// The chart version helm-controller installs from an OCIRepository at
/// `<version>@<digest>`: `<version>+<first 12 hex digits of the digest>`.
fn chart_version(version: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("{version}+{}", hex.get(..12).unwrap_or(hex))
}

/// The chart `demo` at `version`: one ConfigMap from the values (and, with
/// `extra`, a key only that version has), packed as `helm package` lays it
/// out (`demo/Chart.yaml`, …) with the system's `tar`.
fn chart_tgz(work: &Path, version: &str, extra: bool) -> Vec<u8> {
    let root = work.join(format!("chart-{version}"));
    let dir = root.join("demo");
    std::fs::create_dir_all(dir.join("templates")).expect("creating the chart directory");
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: demo\nversion: {version}\nappVersion: \"{version}\"\ntype: application\n"),
    )
    .expect("writing Chart.yaml");
    std::fs::write(dir.join("values.yaml"), "greeting: default\nreplicas: 1\n")
        .expect("writing values.yaml");
    let mut template = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  \
         greeting: {{ .Values.greeting | quote }}\n  replicas: {{ .Values.replicas | quote }}\n  \
         chartVersion: {{ .Chart.Version | quote }}\n",
    );
    if extra {
        template.push_str("  added: \"in 1.1.0\"\n");
    }
    std::fs::write(dir.join("templates/configmap.yaml"), template).expect("writing the template");
    std::fs::create_dir_all(dir.join("templates/tests")).expect("creating templates/tests");
    std::fs::write(
        dir.join("templates/tests/test.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    \
         helm.sh/hook: test\nspec:\n  restartPolicy: Never\n  containers:\n  - name: t\n    image: busybox\n",
    )
    .expect("writing the test hook");
    let out = root.join("demo.tgz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&root)
        .arg("demo")
        .status()
        .expect("running tar");
    assert!(status.success(), "tar failed: {status}");
    std::fs::read(&out).expect("reading the chart archive")
}

fn dynamic(
    client: &Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn create(api: &Api<DynamicObject>, obj: Value) {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let obj: DynamicObject = serde_json::from_value(obj).expect("a valid object");
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

fn ready(o: &Value) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Polls `name` until `done` holds; on timeout panics with the last status.
async fn wait_until(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + CONVERGE;
    let mut last = Value::Null;
    loop {
        if let Ok(Some(obj)) = api.get_opt(name).await {
            last = serde_json::to_value(&obj).unwrap_or(Value::Null);
            if done(&last) {
                return last;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {CONVERGE:?}; last status: {:#}",
            last["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn configmap_data(api: &Api<ConfigMap>, name: &str) -> Value {
    let cm = api
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("reading ConfigMap {name}: {e}"))
        .unwrap_or_else(|| panic!("ConfigMap {name} does not exist"));
    json!(cm.data.unwrap_or_default())
}

/// The helm-controller to run: `SLUICE_HELM_CONTROLLER_BIN`, else the build
/// `scripts/flux-reference` has cached (never built here).
fn helm_controller_bin() -> Option<PathBuf> {
    support::flux_controller_bin("helm-controller", HELM_CONTROLLER_ENV)
}

fn sluice_bin() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}
