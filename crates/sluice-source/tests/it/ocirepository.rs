//! The OCIRepository controller against the local control plane and a real
//! registry (Debian's `docker-registry`, started per test by
//! `sluice_testsupport::oci_registry`). Every test skips, saying why, when
//! the registry binary is missing (`scripts/install-deps` installs it).

use std::time::Duration;

use base64::Engine;
use kube::Api;
use serde_json::json;
use sluice_api::meta;
use sluice_api::source::oci::OCIRepository;
use sluice_testsupport::forward_proxy::ForwardProxy;
use sluice_testsupport::oci_registry::{OciRegistry, RegistryConfig};
use sluice_testsupport::{TestNamespace, client, wait_for};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);
const KIND: &str = "OCIRepository";
const HELM_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

async fn setup(prefix: &str) -> (TestNamespace, Api<OCIRepository>, Harness) {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await;
    let api: Api<OCIRepository> = ns.api();
    let harness = Harness::start(&client, ns.name()).await;
    (ns, api, harness)
}

fn manifests(dir: &std::path::Path, marker: &str) {
    std::fs::create_dir_all(dir.join("apps")).unwrap();
    std::fs::write(
        dir.join("apps/cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  marker: {marker}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "docs\n").unwrap();
}

async fn wait_ready(api: &Api<OCIRepository>, name: &str) -> OCIRepository {
    wait_for(api, name, WAIT, ready).await
}

async fn wait_failed(api: &Api<OCIRepository>, name: &str, reason: &str) -> OCIRepository {
    wait_for(api, name, WAIT, |o| failed_with(o, reason)).await
}

#[tokio::test]
async fn tag_semver_and_digest_select_the_artifact_and_new_tags_are_picked_up() {
    let Some(reg) = OciRegistry::start(RegistryConfig::anonymous()) else {
        return;
    };
    let (ns, api, _h) = setup("oci-select").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    let v100 = reg.push_artifact("apps", "1.0.0", dir.path());
    manifests(dir.path(), "two");
    let v110 = reg.push_artifact("apps", "1.1.0", dir.path());
    reg.push_artifact("apps", "2.0.0-rc.1", dir.path());

    create_source(
        &api,
        KIND,
        "by-tag",
        json!({"url": reg.url("apps"), "interval": "10m",
        "insecure": true, "ref": {"tag": "1.0.0"}}),
    )
    .await;
    create_source(
        &api,
        KIND,
        "by-semver",
        json!({"url": reg.url("apps"), "interval": "10m",
        "insecure": true, "ref": {"semver": ">=1.0.0 <2.0.0"}}),
    )
    .await;
    let digest = v100.split('@').nth(1).unwrap().to_string();
    create_source(
        &api,
        KIND,
        "by-digest",
        json!({"url": reg.url("apps"), "interval": "10m",
        "insecure": true, "ref": {"digest": digest}}),
    )
    .await;

    let by_tag = wait_ready(&api, "by-tag").await;
    let a = artifact_of(&by_tag).unwrap();
    assert_eq!(a.revision, v100);
    assert_eq!(
        a.path,
        format!("ocirepository/{}/by-tag/{digest}.tar.gz", ns.name())
    );
    let (_, reason, message) = cond(&by_tag, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, meta::SUCCEEDED_REASON);
    assert_eq!(message, format!("stored artifact for digest '{v100}'"));
    // The artifact is served and holds the pushed files.
    let (code, body) = http_get(&a.url).await;
    assert_eq!(code, 200);
    let files = untar(&body);
    assert_eq!(
        String::from_utf8_lossy(&files["apps/cm.yaml"]),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  marker: one\n"
    );
    assert_eq!(
        a.metadata
            .as_ref()
            .and_then(|m| m.get("org.opencontainers.image.source"))
            .map(String::as_str),
        Some("https://example.com/sluice-test.git")
    );

    let by_semver = wait_ready(&api, "by-semver").await;
    assert_eq!(artifact_of(&by_semver).unwrap().revision, v110);
    let by_digest = wait_ready(&api, "by-digest").await;
    assert_eq!(artifact_of(&by_digest).unwrap().revision, digest);

    // A newer tag within the range is found on the next poll.
    manifests(dir.path(), "three");
    let v120 = reg.push_artifact("apps", "1.2.0", dir.path());
    request(&api, "by-semver").await;
    let updated = wait_for(&api, "by-semver", WAIT, |o| {
        artifact_of(o).is_some_and(|a| a.revision == v120)
    })
    .await;
    let files = untar(&http_get(&artifact_of(&updated).unwrap().url).await.1);
    assert!(String::from_utf8_lossy(&files["apps/cm.yaml"]).contains("three"));
}

#[tokio::test]
async fn a_poll_with_no_change_is_one_manifest_head_and_no_download() {
    let Some(reg) = OciRegistry::start(RegistryConfig::anonymous()) else {
        return;
    };
    let (_ns, api, _h) = setup("oci-poll").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    reg.push_artifact("apps", "latest", dir.path());
    create_source(
        &api,
        KIND,
        "apps",
        json!({"url": reg.url("apps"), "interval": "10m",
        "insecure": true}),
    )
    .await;
    let first = wait_ready(&api, "apps").await;
    assert!(
        reg.count("GET", "/blobs/") >= 1,
        "the first run downloads the layer"
    );

    reg.reset_requests();
    let token = request(&api, "apps").await;
    let polled = wait_for(&api, "apps", WAIT, |o| {
        json(o)["status"]["lastHandledReconcileAt"] == serde_json::Value::String(token.clone())
    })
    .await;
    assert_eq!(artifact_of(&polled), artifact_of(&first));
    let seen = reg.requests();
    let heads = reg.count("HEAD", "/manifests/latest");
    assert_eq!(heads, 1, "one manifest HEAD by tag: {seen:?}");
    assert_eq!(reg.count("GET", "/blobs/"), 0, "no blob download: {seen:?}");
    assert_eq!(
        reg.count("GET", "/manifests/"),
        0,
        "no manifest GET: {seen:?}"
    );
    let bytes: u64 = seen.iter().map(|s| s.bytes).sum();
    println!(
        "no-change poll: {} requests, {bytes} response bytes",
        seen.len()
    );
}

#[tokio::test]
async fn wrong_credentials_are_authentication_failed_without_the_secret() {
    let Some(reg) = OciRegistry::start(RegistryConfig::basic("flux", "s3cret-pw")) else {
        return;
    };
    let (ns, api, _h) = setup("oci-auth").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    let pushed = reg.push_artifact("apps", "v1", dir.path());

    secret_of_type(
        &ns,
        "creds",
        None,
        &[("username", "flux"), ("password", "wrong-pw-123")],
    )
    .await;
    create_source(
        &api,
        KIND,
        "apps",
        json!({"url": reg.url("apps"), "interval": "10m",
        "insecure": true, "ref": {"tag": "v1"}, "secretRef": {"name": "creds"}}),
    )
    .await;
    let failed = wait_failed(&api, "apps", meta::AUTHENTICATION_FAILED_REASON).await;
    let text = serde_json::to_string(&json(&failed)).unwrap();
    assert!(
        !text.contains("wrong-pw-123"),
        "the password leaked: {text}"
    );
    let (_, _, message) = cond(&failed, meta::FETCH_FAILED_CONDITION).unwrap();
    assert!(
        message.contains("failed to determine artifact digest"),
        "{message}"
    );

    // The right password, as a dockerconfigjson this time.
    let auth = base64::engine::general_purpose::STANDARD.encode("flux:s3cret-pw");
    let config = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host());
    secret_of_type(
        &ns,
        "creds",
        Some("kubernetes.io/dockerconfigjson"),
        &[(".dockerconfigjson", &config)],
    )
    .await;
    request(&api, "apps").await;
    let ok = wait_ready(&api, "apps").await;
    assert_eq!(artifact_of(&ok).unwrap().revision, pushed);
    assert!(cond(&ok, meta::FETCH_FAILED_CONDITION).is_none());

    // The client is kept between polls: a warm poll behind basic auth is
    // one authenticated manifest HEAD, no challenge round trip.
    assert_one_head_poll(&reg, &api, "apps", "/manifests/v1").await;
}

#[tokio::test]
async fn a_proxy_secret_sends_every_request_through_the_proxy() {
    let Some(reg) = OciRegistry::start(RegistryConfig::anonymous()) else {
        return;
    };
    let proxy = ForwardProxy::start(Some(("px", "px-s3cret")));
    let (ns, api, _h) = setup("oci-proxy").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    let pushed = reg.push_artifact("apps", "v1", dir.path());
    let spec = json!({"url": reg.url("apps"), "interval": "10m", "insecure": true,
        "ref": {"tag": "v1"}, "proxySecretRef": {"name": "proxy"}});

    // The Secret is missing: named, as Flux names it.
    create_source(&api, KIND, "apps", spec).await;
    let failed = wait_failed(&api, "apps", meta::AUTHENTICATION_FAILED_REASON).await;
    let (_, _, message) = cond(&failed, meta::FETCH_FAILED_CONDITION).unwrap();
    assert_eq!(
        message,
        format!(
            "failed to get proxy address: failed to get secret '{}/proxy': secrets \"proxy\" not found",
            ns.name()
        )
    );

    // A wrong password: the proxy refuses (407), the registry is never reached, and the
    // password is nowhere in the status.
    let proxy_secret = |password: &'static str| {
        let address = proxy.url();
        let ns = &ns;
        async move {
            let data = [
                ("address", address.as_str()),
                ("username", "px"),
                ("password", password),
            ];
            secret(ns, "proxy", &data).await;
        }
    };
    proxy_secret("wrong-pw-42").await;
    reg.reset_requests();
    request(&api, "apps").await;
    let failed = wait_for(&api, "apps", WAIT, |o| {
        cond(o, meta::FETCH_FAILED_CONDITION).is_some_and(|(_, _, m)| m.contains("407"))
    })
    .await;
    assert!(
        !serde_json::to_string(&json(&failed))
            .unwrap()
            .contains("wrong-pw-42")
    );
    assert!(reg.requests().is_empty(), "{:?}", reg.requests());
    assert!(
        proxy.seen().iter().all(|f| !f.forwarded),
        "{:?}",
        proxy.seen()
    );

    // The right one: every request goes through the proxy, and the artifact is pulled.
    proxy_secret("px-s3cret").await;
    request(&api, "apps").await;
    let ok = wait_ready(&api, "apps").await;
    assert_eq!(artifact_of(&ok).unwrap().revision, pushed);
    let through: Vec<_> = proxy.seen().into_iter().filter(|f| f.forwarded).collect();
    assert!(!through.is_empty());
    assert!(
        through
            .iter()
            .all(|f| f.url.starts_with(&format!("http://{}/v2/", reg.host()))),
        "{through:?}"
    );
    assert_eq!(reg.requests().len(), through.len(), "{:?}", reg.requests());
}

/// Requests a reconcile and checks that it cost exactly one request: a
/// manifest HEAD on `manifest_path`.
async fn assert_one_head_poll(
    reg: &OciRegistry,
    api: &Api<OCIRepository>,
    name: &str,
    manifest_path: &str,
) {
    reg.reset_requests();
    let token = request(api, name).await;
    let polled = wait_for(api, name, WAIT, |o| {
        json(o)["status"]["lastHandledReconcileAt"] == serde_json::Value::String(token.clone())
    })
    .await;
    assert!(ready(&polled));
    let seen = reg.requests();
    assert_eq!(seen.len(), 1, "one request per no-change poll: {seen:?}");
    assert_eq!(reg.count("HEAD", manifest_path), 1, "{seen:?}");
}

#[tokio::test]
async fn a_token_registry_is_polled_with_one_head_once_warm() {
    // ghcr.io's shape: anonymous pulls still go through a Bearer token.
    let Some(reg) = OciRegistry::start(RegistryConfig::bearer(None)) else {
        return;
    };
    let (_ns, api, _h) = setup("oci-bearer").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    let pushed = reg.push_artifact("apps", "v1", dir.path());
    create_source(
        &api,
        KIND,
        "apps",
        json!({"url": reg.url("apps"), "interval": "10m", "insecure": true, "ref": {"tag": "v1"}}),
    )
    .await;
    let ok = wait_ready(&api, "apps").await;
    assert_eq!(artifact_of(&ok).unwrap().revision, pushed);
    assert_one_head_poll(&reg, &api, "apps", "/manifests/v1").await;
}

#[tokio::test]
async fn missing_tag_bad_media_type_and_unreachable_registry_keep_the_last_artifact() {
    let Some(reg) = OciRegistry::start(RegistryConfig::anonymous()) else {
        return;
    };
    let (_ns, api, _h) = setup("oci-fail").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    reg.push_artifact("apps", "v1", dir.path());
    create_source(
        &api,
        KIND,
        "apps",
        json!({"url": reg.url("apps"), "interval": "10m",
        "insecure": true, "ref": {"tag": "v1"}}),
    )
    .await;
    let good = artifact_of(&wait_ready(&api, "apps").await).unwrap();

    patch_spec(&api, "apps", json!({"ref": {"tag": "v9"}})).await;
    let failed = wait_failed(&api, "apps", "OCIArtifactPullFailed").await;
    let (_, _, message) = cond(&failed, meta::READY_CONDITION).unwrap();
    assert!(
        message.starts_with("failed to determine artifact digest:"),
        "{message}"
    );
    assert!(message.contains("v9"), "names the tag: {message}");
    assert_eq!(
        artifact_of(&failed).as_ref(),
        Some(&good),
        "the last artifact is kept"
    );

    patch_spec(
        &api,
        "apps",
        json!({"ref": {"tag": "v1"},
        "layerSelector": {"mediaType": HELM_LAYER}}),
    )
    .await;
    let failed = wait_failed(&api, "apps", "OCIArtifactLayerOperationFailed").await;
    let (_, _, message) = cond(&failed, meta::READY_CONDITION).unwrap();
    assert_eq!(
        message,
        format!("failed to find layer with media type '{HELM_LAYER}' in artifact")
    );
    assert_eq!(artifact_of(&failed).as_ref(), Some(&good));

    // The registry goes away.
    let url = reg.url("apps");
    drop(reg);
    patch_spec(&api, "apps", json!({"layerSelector": null, "url": url})).await;
    request(&api, "apps").await;
    let failed = wait_failed(&api, "apps", "OCIArtifactPullFailed").await;
    assert_eq!(artifact_of(&failed).as_ref(), Some(&good));
}

#[tokio::test]
async fn a_helm_chart_layer_is_copied_as_it_is() {
    let Some(reg) = OciRegistry::start(RegistryConfig::anonymous()) else {
        return;
    };
    let (_ns, api, _h) = setup("oci-copy").await;
    let chart = chart_tgz("hello", "0.1.0", "hi");
    reg.push_chart("charts", &chart);
    create_source(
        &api,
        KIND,
        "hello",
        json!({"url": reg.url("charts/hello"), "interval": "10m",
        "insecure": true, "ref": {"semver": "0.x"},
        "layerSelector": {"mediaType": HELM_LAYER, "operation": "copy"}}),
    )
    .await;
    let ok = wait_ready(&api, "hello").await;
    let a = artifact_of(&ok).unwrap();
    assert!(a.revision.starts_with("0.1.0@sha256:"), "{}", a.revision);
    let (_, body) = http_get(&a.url).await;
    assert_eq!(body, chart, "copy stores the layer byte for byte");
    assert_eq!(
        json(&ok)["status"]["observedLayerSelector"],
        json!({"mediaType": HELM_LAYER, "operation": "copy"})
    );
}

#[tokio::test]
async fn tls_with_the_ca_from_cert_secret_ref() {
    let Some(reg) = OciRegistry::start(RegistryConfig::tls()) else {
        return;
    };
    let (ns, api, _h) = setup("oci-tls").await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "one");
    let pushed = reg.push_artifact("apps", "v1", dir.path());
    create_source(
        &api,
        KIND,
        "apps",
        json!({"url": reg.url("apps"), "interval": "10m",
        "ref": {"tag": "v1"}}),
    )
    .await;
    let failed = wait_failed(&api, "apps", "OCIArtifactPullFailed").await;
    let (_, _, message) = cond(&failed, meta::READY_CONDITION).unwrap();
    assert!(
        message.contains("certificate"),
        "an untrusted certificate is named: {message}"
    );

    let tls = reg.tls().unwrap();
    secret_of_type(&ns, "ca", None, &[("ca.crt", &tls.ca_pem)]).await;
    patch_spec(&api, "apps", json!({"certSecretRef": {"name": "ca"}})).await;
    let ok = wait_ready(&api, "apps").await;
    assert_eq!(artifact_of(&ok).unwrap().revision, pushed);
}

#[tokio::test]
async fn unsupported_provider_and_verify_are_refused_by_name() {
    let (_ns, api, _h) = setup("oci-unsupported").await;
    create_source(
        &api,
        KIND,
        "aws",
        json!({"url": "oci://123.dkr.ecr.us-east-1.amazonaws.com/x",
        "interval": "10m", "provider": "aws"}),
    )
    .await;
    let stalled = wait_failed(&api, "aws", meta::UNSUPPORTED_FIELD_REASON).await;
    assert!(cond(&stalled, meta::STALLED_CONDITION).is_some_and(|c| c.0 == "True"));
    let (_, _, message) = cond(&stalled, meta::READY_CONDITION).unwrap();
    assert!(message.contains("spec.provider 'aws'"), "{message}");

    create_source(
        &api,
        KIND,
        "signed",
        json!({"url": "oci://ghcr.io/org/x", "interval": "10m",
        "verify": {"provider": "cosign"}}),
    )
    .await;
    let stalled = wait_failed(&api, "signed", meta::UNSUPPORTED_FIELD_REASON).await;
    let (_, _, message) = cond(&stalled, meta::READY_CONDITION).unwrap();
    assert!(message.contains("spec.verify"), "{message}");
}
