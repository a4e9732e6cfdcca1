//! Kustomizations whose source is an OCIRepository (`sourceRef.kind:
//! OCIRepository`), pulled by the in-process source controller from a real
//! registry (`sluice_testsupport::oci_registry`: Debian's docker-registry;
//! the tests skip, saying why, where it is not installed).

use std::path::Path;

use serde_json::json;
use sluice_api::meta::FluxObject;
use sluice_testsupport::oci_registry::{OciRegistry, RegistryConfig};

use crate::support::*;

/// A directory of manifests, as `flux push artifact` takes it.
fn manifests(dir: &Path, files: &[(&str, String)]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Pushes `dir` to `repo:tag` off the async runtime; returns the revision
/// (`<tag>@sha256:<hex>`) the OCIRepository records.
fn push(registry: &OciRegistry, repo: &str, tag: &str, dir: &Path) -> String {
    tokio::task::block_in_place(|| registry.push_artifact(repo, tag, dir))
}

fn start_registry() -> Option<OciRegistry> {
    tokio::task::block_in_place(|| OciRegistry::start(RegistryConfig::anonymous()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_applies_an_oci_artifact_and_follows_new_tags() {
    let Some(registry) = start_registry() else {
        return;
    };
    let env = Env::start("ks-oci").await;
    let work = tempfile::tempdir().unwrap();
    manifests(
        work.path(),
        &[
            ("apps/kustomization.yaml", "resources: [a.yaml]\n".into()),
            ("apps/a.yaml", configmap("a", &[("v", "1")])),
        ],
    );
    let rev1 = push(&registry, "manifests/app", "1.0.0", work.path());

    env.oci_repository(
        "app",
        &registry.url("manifests/app"),
        json!({"semver": ">=1.0.0"}),
    )
    .await;
    let source = json!({"kind": "OCIRepository", "name": "app"});
    env.kustomization("apps", json!({"path": "./apps", "sourceRef": source}))
        .await;
    // Same source, later in the chain: it waits for `apps` to apply each
    // revision first (Flux's rule), whatever the source kind.
    env.kustomization(
        "after",
        json!({"path": "./apps", "sourceRef": source, "dependsOn": [{"name": "apps"}],
               "nameSuffix": "-after"}),
    )
    .await;

    let ks = env.wait_ready("apps", &rev1).await;
    assert_eq!(ready_message(&ks), format!("Applied revision: {rev1}"));
    assert!(rev1.starts_with("1.0.0@sha256:"), "{rev1}");
    assert_eq!(
        env.configmaps().get("a").await.unwrap().data.unwrap()["v"],
        "1"
    );
    env.wait_ready("after", &rev1).await;
    assert!(env.configmaps().get("a-after").await.is_ok());

    // A new tag within the range: once the OCIRepository has it, its
    // Kustomizations apply it at once (their interval is 10 minutes).
    manifests(
        work.path(),
        &[
            (
                "apps/kustomization.yaml",
                "resources: [a.yaml, b.yaml]\n".into(),
            ),
            ("apps/a.yaml", configmap("a", &[("v", "2")])),
            ("apps/b.yaml", configmap("b", &[])),
        ],
    );
    let rev2 = push(&registry, "manifests/app", "1.1.0", work.path());
    assert_ne!(rev1, rev2);
    env.refresh_oci("app", &rev2).await;
    let ks = env.wait_ready("apps", &rev2).await;
    assert_eq!(ready_message(&ks), format!("Applied revision: {rev2}"));
    assert_eq!(
        env.configmaps().get("a").await.unwrap().data.unwrap()["v"],
        "2"
    );
    assert!(env.configmaps().get("b").await.is_ok());
    let after = env.wait_ready("after", &rev2).await;
    assert_eq!(
        after
            .status
            .as_ref()
            .and_then(|s| s.last_attempted_revision.as_deref()),
        Some(rev2.as_str())
    );
    assert!(env.configmaps().get("b-after").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oci_artifact_is_downloaded_when_the_storage_is_not_local() {
    let Some(registry) = start_registry() else {
        return;
    };
    let mut env = Env::without_controllers("ks-oci-dl").await;
    let addr = env.start_artifact_server().await;
    env.start_source(&addr.to_string()).await;
    env.start_kustomization(false).await;
    let work = tempfile::tempdir().unwrap();
    manifests(work.path(), &[("a.yaml", configmap("a", &[("v", "dl")]))]);
    let rev = push(&registry, "manifests/dl", "latest", work.path());
    env.oci_repository("app", &registry.url("manifests/dl"), json!({}))
        .await;
    env.kustomization(
        "apps",
        json!({"path": "./", "sourceRef": {"kind": "OCIRepository", "name": "app"}}),
    )
    .await;
    env.wait_ready("apps", &rev).await;
    assert_eq!(
        env.configmaps().get("a").await.unwrap().data.unwrap()["v"],
        "dl"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_oci_repository_is_named_until_it_exists() {
    let env = Env::start("ks-oci-missing").await;
    let ns = env.name().to_string();
    env.kustomization(
        "apps",
        json!({"path": "./", "sourceRef": {"kind": "OCIRepository", "name": "ghost"}}),
    )
    .await;
    let ks = env.wait_reason("apps", "ArtifactFailed").await;
    assert_eq!(
        ready_message(&ks),
        format!("Source 'OCIRepository/{ns}/ghost' not found")
    );

    // Created (and pulled): the Kustomization is woken by the new artifact,
    // not by its 10-minute interval.
    let Some(registry) = start_registry() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    manifests(work.path(), &[("a.yaml", configmap("a", &[("v", "late")]))]);
    let rev = push(&registry, "manifests/ghost", "v1", work.path());
    env.oci_repository(
        "ghost",
        &registry.url("manifests/ghost"),
        json!({"tag": "v1"}),
    )
    .await;
    let ks = env.wait_ready("apps", &rev).await;
    assert!(ks.is_ready());
}
