//! Release records that sluice writes, read and acted on by the real Helm
//! (v4.2.4, built from its Go module by `scripts/build-helm`) against the
//! test control plane: what a cluster moving from sluice back to Flux or to
//! the `helm` CLI relies on.
//!
//! 1. A chart is rendered by `sluice_helm::render` with two sets of values,
//!    and revisions 1 (superseded) and 2 (deployed) are stored as Helm's
//!    Secrets driver stores them (`sluice_helm::release`: the Secret's name,
//!    type, labels and gzip + base64 JSON).
//! 2. `helm list`, `helm history`, `helm get values` and `helm get manifest`
//!    show them as sluice wrote them.
//! 3. `helm rollback` to revision 1 succeeds: Helm reads both records,
//!    creates the ConfigMap of revision 1 and stores revision 3, which
//!    `sluice_helm::release` reads back (deployed, "Rollback to 1", revision
//!    1's values); revision 2 is now superseded.
//!
//! Skipped, with a message, where helm is not built (`make helm-storage-check`
//! builds it, cached, and runs this test; `make test` never builds it).
//! `SLUICE_HELM_BIN` names the helm binary to run, and then nothing may skip
//! the test.

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;
use sluice_helm::release::{NewRevision, Release, Status};
use sluice_testsupport::{TestNamespace, kubeconfig_path};

const HELM_ENV: &str = "SLUICE_HELM_BIN";

fn helm_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(HELM_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{HELM_ENV}={} is not a file", p.display());
        return Some(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let p = cache.join("sluice/helm-v4.2.4/helm");
    p.is_file().then_some(p)
}

fn write_chart(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: greet\nversion: 0.1.0\nappVersion: \"1.0\"\ndescription: A greeting\n",
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "greeting: hello\nreplicas: 1\n").unwrap();
    std::fs::write(
        dir.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n\
         data:\n  greeting: {{ .Values.greeting | quote }}\n  revision: {{ .Release.Revision | quote }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/NOTES.txt"),
        "Greeting {{ .Values.greeting }}.\n",
    )
    .unwrap();
}

/// Revision `version` of release `greet` as sluice stores it.
fn record(
    chart: &sluice_helm::chart::Chart,
    ns: &str,
    version: i64,
    greeting: &str,
    status: Status,
    time: &str,
) -> Release {
    let values = sluice_helm::values::load_values(format!("greeting: {greeting}\n").as_bytes())
        .expect("values");
    let opts = sluice_helm::render::Options {
        release_name: "greet".into(),
        namespace: ns.into(),
        revision: version,
        is_upgrade: version > 1,
        ..Default::default()
    };
    let rendered = sluice_helm::render::render(chart, &values, &opts).expect("renders");
    Release::new_revision(NewRevision {
        name: "greet",
        namespace: ns,
        version,
        chart,
        rendered: &rendered,
        config: values,
        first_deployed: "2026-12-01T10:00:00Z",
        last_deployed: time,
        status,
        description: if version == 1 {
            "Install complete"
        } else {
            "Upgrade complete"
        },
        apply_method: "ssa",
    })
}

async fn store(secrets: &kube::Api<Secret>, r: &Release) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(sluice_helm::release::storage_key(&r.name, r.version)),
            labels: Some(r.storage_labels(Some(1_764_583_200 + r.version), None)),
            ..ObjectMeta::default()
        },
        type_: Some(sluice_helm::release::SECRET_TYPE.into()),
        data: Some(
            [(
                sluice_helm::release::DATA_KEY.to_string(),
                ByteString(r.encode().expect("encodes").into_bytes()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("stores the record");
}

fn helm(bin: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig_path())
        .env("HELM_DRIVER", "secret")
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("sluice-helm-storage-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("sluice-helm-storage-config"),
        )
        .output()
        .expect("runs helm");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_lists_reads_and_rolls_back_releases_sluice_stored() {
    let Some(bin) = helm_bin() else {
        eprintln!("skipped: helm is not built; run make helm-storage-check");
        return;
    };
    let client = sluice_testsupport::client().await;
    let ns = TestNamespace::create(&client, "helmstore").await;
    let tmp = tempfile::tempdir().unwrap();
    write_chart(tmp.path());
    let chart = sluice_helm::chart::load_dir(tmp.path(), &Default::default()).expect("loads");

    let secrets: kube::Api<Secret> = ns.api();
    let v1 = record(
        &chart,
        ns.name(),
        1,
        "hello",
        Status::Superseded,
        "2026-12-01T10:00:00Z",
    );
    let v2 = record(
        &chart,
        ns.name(),
        2,
        "bonjour",
        Status::Deployed,
        "2026-12-01T11:00:00.25Z",
    );
    store(&secrets, &v1).await;
    store(&secrets, &v2).await;

    // helm list: the deployed revision, its chart and app version.
    let list: Value =
        serde_json::from_str(&helm(&bin, &["list", "-n", ns.name(), "-o", "json"])).unwrap();
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "greet");
    assert_eq!(list[0]["revision"], "2");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(list[0]["chart"], "greet-0.1.0");
    assert_eq!(list[0]["app_version"], "1.0");

    // helm history: both revisions, as stored.
    let history: Value = serde_json::from_str(&helm(
        &bin,
        &["history", "greet", "-n", ns.name(), "-o", "json"],
    ))
    .unwrap();
    let statuses: Vec<(i64, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["revision"].as_i64().unwrap(),
                h["status"].as_str().unwrap(),
                h["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "superseded", "Install complete"),
            (2, "deployed", "Upgrade complete")
        ]
    );

    // helm get: values and manifest of a revision.
    let values: Value = serde_json::from_str(&helm(
        &bin,
        &[
            "get",
            "values",
            "greet",
            "-n",
            ns.name(),
            "--revision",
            "1",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(values, serde_json::json!({"greeting": "hello"}));
    let manifest = helm(
        &bin,
        &[
            "get",
            "manifest",
            "greet",
            "-n",
            ns.name(),
            "--revision",
            "2",
        ],
    );
    assert_eq!(manifest.trim_end(), v2.manifest.trim_end());
    assert!(manifest.contains("greeting: \"bonjour\""), "{manifest}");
    let notes = helm(&bin, &["get", "notes", "greet", "-n", ns.name()]);
    assert!(notes.contains("Greeting bonjour."), "{notes}");

    // helm rollback to revision 1: Helm applies revision 1's manifest and
    // stores revision 3.
    helm(
        &bin,
        &["rollback", "greet", "1", "-n", ns.name(), "--wait=false"],
    );
    let cms: kube::Api<ConfigMap> = ns.api();
    let cm = cms
        .get("greet-greeting")
        .await
        .expect("the rollback created the ConfigMap");
    let data = cm.data.unwrap_or_default();
    assert_eq!(data.get("greeting").map(String::as_str), Some("hello"));
    assert_eq!(data.get("revision").map(String::as_str), Some("1"));

    let s3 = secrets
        .get("sh.helm.release.v1.greet.v3")
        .await
        .expect("helm stored revision 3");
    let labels = s3.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("owner").map(String::as_str), Some("helm"));
    assert_eq!(labels.get("status").map(String::as_str), Some("deployed"));
    let raw = &s3.data.unwrap_or_default()["release"].0;
    let v3 = Release::decode(raw).expect("sluice reads what helm stored");
    assert_eq!(v3.version, 3);
    assert_eq!(v3.status(), Status::Deployed);
    assert_eq!(v3.info.as_ref().unwrap().description, "Rollback to 1");
    assert_eq!(
        v3.config.get("greeting").and_then(|v| v.as_str()),
        Some("hello")
    );
    // Written back, Helm's record is the same bytes.
    let json = String::from_utf8(sluice_helm::release::record_json(raw).unwrap()).unwrap();
    assert_eq!(v3.to_json().unwrap(), json);
    let s2 = secrets.get("sh.helm.release.v1.greet.v2").await.unwrap();
    let v2_now = Release::decode(&s2.data.unwrap_or_default()["release"].0).unwrap();
    assert_eq!(v2_now.status(), Status::Superseded);
}
