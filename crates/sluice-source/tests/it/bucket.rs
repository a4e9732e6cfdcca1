//! The Bucket controller against the local control plane and a real S3
//! server (Versity's gateway, `sluice_testsupport::s3_server`, which checks
//! every request's signature). Every test skips, saying why, when the
//! server is not built (`scripts/build-versitygw`; `make test` builds it).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Api;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_api::meta;
use sluice_api::source::bucket::Bucket;
use sluice_api::source::helm::HelmChart;
use sluice_testsupport::s3_server::S3Server;
use sluice_testsupport::{TestNamespace, client, wait_for};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);
const KIND: &str = "Bucket";

struct Env {
    ns: TestNamespace,
    buckets: Api<Bucket>,
    _h: Harness,
}

async fn setup(prefix: &str) -> Env {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await;
    let h = Harness::start(&client, ns.name()).await;
    Env {
        buckets: ns.api(),
        ns,
        _h: h,
    }
}

/// The revision Flux's index digester gives these keys and ETags.
fn flux_revision(index: &BTreeMap<String, String>) -> String {
    let mut lines = String::new();
    for (key, etag) in index {
        lines.push_str(&format!("{key} {etag}\n"));
    }
    let digest = Sha256::digest(lines.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn configmap(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{value}\"\n")
}

async fn keys(env: &Env, server: &S3Server) {
    secret(
        &env.ns,
        "s3-keys",
        &[
            ("accesskey", &server.access_key),
            ("secretkey", &server.secret_key),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_bucket_s_objects_become_an_artifact_with_flux_s_revision() {
    let Some(server) = S3Server::start().await else {
        return;
    };
    server.create_bucket("manifests").await;
    server
        .put("manifests", "apps/cm.yaml", configmap("app", "1"))
        .await;
    server
        .put("manifests", "apps/skip/cm.yaml", configmap("skipped", "1"))
        .await;
    server.put("manifests", "README.md", "docs\n").await;
    server
        .put("manifests", "infra/ns.yaml", "kind: Namespace\n")
        .await;
    server
        .put("manifests", ".sourceignore", "apps/skip/\n")
        .await;
    let env = setup("bucket").await;
    keys(&env, &server).await;
    create_source(
        &env.buckets,
        KIND,
        "all",
        json!({"bucketName": "manifests", "endpoint": server.endpoint(), "insecure": true,
        "interval": "10m", "secretRef": {"name": "s3-keys"}, "ignore": "*.md\n"}),
    )
    .await;
    create_source(
        &env.buckets,
        KIND,
        "apps",
        json!({"bucketName": "manifests", "endpoint": server.endpoint(), "insecure": true,
        "interval": "10m", "secretRef": {"name": "s3-keys"}, "prefix": "apps/"}),
    )
    .await;

    // The revision is Flux's digest of the kept keys and their ETags: the
    // `.sourceignore` object and `spec.ignore` leave out the rest.
    let etags = server.etags("manifests").await;
    let kept = |keys: &[&str]| -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| (k.to_string(), etags[*k].clone()))
            .collect()
    };
    let all = wait_for(&env.buckets, "all", WAIT, ready).await;
    let a = artifact_of(&all).unwrap();
    let revision = flux_revision(&kept(&["apps/cm.yaml", "infra/ns.yaml"]));
    assert_eq!(a.revision, revision);
    assert_eq!(
        a.path,
        format!(
            "bucket/{}/all/{}.tar.gz",
            env.ns.name(),
            revision.trim_start_matches("sha256:")
        )
    );
    let (_, reason, message) = cond(&all, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, meta::SUCCEEDED_REASON);
    assert_eq!(message, format!("stored artifact: revision '{revision}'"));
    assert_eq!(json(&all)["status"]["observedIgnore"], "*.md\n");
    let (code, body) = http_get(&a.url).await;
    assert_eq!(code, 200);
    let files = untar(&body);
    assert_eq!(
        files.keys().cloned().collect::<Vec<_>>(),
        ["apps/cm.yaml", "infra/ns.yaml"]
    );
    assert_eq!(
        String::from_utf8_lossy(&files["apps/cm.yaml"]),
        configmap("app", "1")
    );

    // A prefix lists less; the keys keep their full names.
    let apps = wait_for(&env.buckets, "apps", WAIT, ready).await;
    let b = artifact_of(&apps).unwrap();
    assert_eq!(b.revision, flux_revision(&kept(&["apps/cm.yaml"])));

    // Nothing moved: the same artifact, nothing downloaded again.
    request(&env.buckets, "all").await;
    let again = wait_for(&env.buckets, "all", WAIT, |o| {
        ready(o) && json(o)["status"]["lastHandledReconcileAt"].is_string()
    })
    .await;
    assert_eq!(artifact_of(&again), Some(a.clone()));

    // A changed object is a new revision with the new content; a deleted
    // one leaves it.
    server
        .put("manifests", "apps/cm.yaml", configmap("app", "2"))
        .await;
    server.delete("manifests", "infra/ns.yaml").await;
    let etags = server.etags("manifests").await;
    let revision = flux_revision(
        &[("apps/cm.yaml".to_string(), etags["apps/cm.yaml"].clone())]
            .into_iter()
            .collect(),
    );
    request(&env.buckets, "all").await;
    let moved = wait_for(&env.buckets, "all", WAIT, |o| {
        artifact_of(o).is_some_and(|a| a.revision == revision)
    })
    .await;
    let (code, body) = http_get(&artifact_of(&moved).unwrap().url).await;
    assert_eq!(code, 200);
    let files = untar(&body);
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), ["apps/cm.yaml"]);
    // status.url, as Flux's: the stable link to the latest artifact, which follows it.
    let latest = json(&moved)["status"]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        latest,
        format!("{}/latest.tar.gz", a.url.rsplit_once('/').unwrap().0)
    );
    let (code, linked) = http_get(&latest).await;
    assert_eq!(code, 200);
    assert_eq!(linked, body);
    assert_eq!(
        String::from_utf8_lossy(&files["apps/cm.yaml"]),
        configmap("app", "2")
    );
}

#[tokio::test]
async fn failures_name_the_bucket_the_keys_or_the_field() {
    let Some(server) = S3Server::start().await else {
        return;
    };
    server.create_bucket("manifests").await;
    server
        .put("manifests", "cm.yaml", configmap("app", "1"))
        .await;
    let env = setup("bucket-fail").await;
    keys(&env, &server).await;
    secret(
        &env.ns,
        "wrong-keys",
        &[("accesskey", &server.access_key), ("secretkey", "not-it")],
    )
    .await;
    secret(&env.ns, "half-keys", &[("accesskey", &server.access_key)]).await;
    let spec = |extra: serde_json::Value| {
        let mut s = json!({"bucketName": "manifests", "endpoint": server.endpoint(),
            "insecure": true, "interval": "10m"});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    let cases = [
        (
            "wrong-keys",
            spec(json!({"secretRef": {"name": "wrong-keys"}})),
            "BucketOperationFailed",
            "failed to confirm existence of 'manifests' bucket: 403 Forbidden".to_string(),
        ),
        (
            "anonymous",
            spec(json!({})),
            "BucketOperationFailed",
            "failed to confirm existence of 'manifests' bucket: 403 Forbidden".to_string(),
        ),
        (
            "half-keys",
            spec(json!({"secretRef": {"name": "half-keys"}})),
            "AuthenticationFailed",
            "invalid 'half-keys' secret data: required fields 'accesskey' and 'secretkey'"
                .to_string(),
        ),
        (
            "no-secret",
            spec(json!({"secretRef": {"name": "absent"}})),
            "AuthenticationFailed",
            format!("failed to get secret '{}/absent'", env.ns.name()),
        ),
        (
            "no-bucket",
            spec(json!({"bucketName": "nope", "secretRef": {"name": "s3-keys"}})),
            "BucketOperationFailed",
            "bucket 'nope' not found".to_string(),
        ),
        (
            "gcp",
            spec(json!({"provider": "gcp"})),
            meta::UNSUPPORTED_FIELD_REASON,
            "spec.provider 'gcp' is not supported by sluice".to_string(),
        ),
        (
            "scheme",
            spec(json!({"endpoint": format!("http://{}", server.endpoint())})),
            meta::URL_INVALID_REASON,
            "has a scheme".to_string(),
        ),
    ];
    for (name, spec, _, _) in &cases {
        create_source(&env.buckets, KIND, name, spec.clone()).await;
    }
    for (name, _, reason, message) in &cases {
        let failed = wait_for(&env.buckets, name, WAIT, |o| failed_with(o, reason)).await;
        let (status, _, text) = cond(&failed, meta::READY_CONDITION).unwrap();
        assert_eq!(status, "False", "{name}");
        assert!(text.contains(message.as_str()), "{name}: {text}");
        assert!(artifact_of(&failed).is_none(), "{name}");
        // The secret key never shows.
        assert!(!text.contains(&server.secret_key), "{name}: {text}");
    }
    // A fix is picked up: the right keys make the first one ready.
    patch_spec(
        &env.buckets,
        "wrong-keys",
        json!({"secretRef": {"name": "s3-keys"}}),
    )
    .await;
    wait_for(&env.buckets, "wrong-keys", WAIT, ready).await;
}

#[tokio::test]
async fn a_chart_in_a_bucket_is_packaged_by_a_helm_chart() {
    let Some(server) = S3Server::start().await else {
        return;
    };
    server.create_bucket("charts").await;
    server
        .put(
            "charts",
            "hello/Chart.yaml",
            "apiVersion: v2\nname: hello\nversion: 0.3.0\n",
        )
        .await;
    server
        .put("charts", "hello/values.yaml", "greeting: bucket\n")
        .await;
    server
        .put(
            "charts",
            "hello/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\ndata:\n  greeting: {{ .Values.greeting }}\n",
        )
        .await;
    let env = setup("bucket-chart").await;
    keys(&env, &server).await;
    create_source(
        &env.buckets,
        KIND,
        "charts",
        json!({"bucketName": "charts", "endpoint": server.endpoint(), "insecure": true,
        "interval": "10m", "secretRef": {"name": "s3-keys"}}),
    )
    .await;
    let charts: Api<HelmChart> = env.ns.api();
    create_source(
        &charts,
        "HelmChart",
        "hello",
        json!({"chart": "hello", "interval": "10m", "reconcileStrategy": "Revision",
        "sourceRef": {"kind": "Bucket", "name": "charts"}}),
    )
    .await;
    let bucket = wait_for(&env.buckets, "charts", WAIT, ready).await;
    let revision = artifact_of(&bucket).unwrap().revision;
    let chart = wait_for(&charts, "hello", WAIT, ready).await;
    let (_, reason, message) = cond(&chart, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "ChartPackageSucceeded");
    // `reconcileStrategy: Revision` adds the bucket revision's first 12 hex
    // digits to the version, as Flux does for a Bucket.
    let hex = revision.trim_start_matches("sha256:");
    let version = format!("0.3.0+{}", &hex[..12]);
    assert_eq!(
        message,
        format!("packaged 'hello' chart with version '{version}'")
    );
    let a = artifact_of(&chart).unwrap();
    assert_eq!(a.revision, version);
    let (code, body) = http_get(&a.url).await;
    assert_eq!(code, 200);
    let files = untar(&body);
    assert_eq!(
        String::from_utf8_lossy(&files["hello/values.yaml"]),
        "greeting: bucket\n"
    );
    assert_eq!(
        json(&chart)["status"]["observedSourceArtifactRevision"],
        revision.as_str()
    );
}
