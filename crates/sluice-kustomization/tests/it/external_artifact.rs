//! Kustomizations whose source is an ExternalArtifact (`sourceRef.kind:
//! ExternalArtifact`), behind Flux's `ExternalArtifact` feature gate. The
//! test plays the producer (a generator such as source-watcher): it serves
//! tarballs from a real HTTP server and writes the ExternalArtifact's status
//! through the status subresource, as a producer's controller does.

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_api::ExternalArtifact;
use sluice_api::meta::{FluxObject, STALLED_CONDITION};
use sluice_testsupport::static_http::StaticServer;

use crate::support::*;

/// A tar.gz of `files` (path, content), and its digest, as a producer stores it.
fn tarball(files: &[(&str, String)]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let mut bytes = Vec::new();
    sluice_git::archive::archive_all(dir.path(), &mut bytes).unwrap();
    let digest = sluice_git::archive::digest_bytes(&bytes);
    (bytes, digest)
}

/// Creates the ExternalArtifact `name` and writes its status: an artifact at `url` with
/// `revision` and `digest` (at `path`, which a consumer must not read from its own storage).
async fn produce(api: &Api<ExternalArtifact>, name: &str, artifact: serde_json::Value) {
    if api.get_opt(name).await.unwrap().is_none() {
        let ea: ExternalArtifact = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "ExternalArtifact",
            "metadata": {"name": name},
            "spec": {"sourceRef": {"apiVersion": "source.extensions.fluxcd.io/v1beta1",
                                   "kind": "ArtifactGenerator", "name": "monorepo"}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &ea).await.unwrap();
    }
    let status = json!({"status": {
        "artifact": artifact,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                        "message": "Artifact is ready",
                        "lastTransitionTime": "2026-12-08T00:00:00Z"}]
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn artifact(server: &StaticServer, file: &str, revision: &str, digest: &str) -> serde_json::Value {
    json!({
        "digest": digest,
        "lastUpdateTime": "2026-12-08T00:00:00Z",
        "path": format!("artifactgenerator/apps/monorepo/{file}"),
        "revision": revision,
        "url": format!("{}/{file}", server.url),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_feature_gate_a_kustomization_applies_an_external_artifact_and_follows_it() {
    let (v1, d1) = tarball(&[
        ("apps/kustomization.yaml", "resources: [a.yaml]\n".into()),
        ("apps/a.yaml", configmap("a", &[("v", "1")])),
    ]);
    let (v2, d2) = tarball(&[
        (
            "apps/kustomization.yaml",
            "resources: [a.yaml, b.yaml]\n".into(),
        ),
        ("apps/a.yaml", configmap("a", &[("v", "2")])),
        ("apps/b.yaml", configmap("b", &[("v", "2")])),
    ]);
    let server = StaticServer::start([("/v1.tar.gz", v1.clone()), ("/v2.tar.gz", v2)]);

    let mut env = Env::without_controllers("ks-ea").await;
    let mut opts = env.kustomization_options(true);
    opts.runtime.tenancy.external_artifacts = true;
    // The producer's path names a copy in sluice's own storage, where a Kustomization must
    // never look for an ExternalArtifact's artifact.
    let local = env
        .storage
        .path()
        .join("artifactgenerator/apps/monorepo/stale.tar.gz");
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, &v1).unwrap();
    env.start_kustomization_with(opts).await;

    let eas: Api<ExternalArtifact> = env.ns.api();
    produce(
        &eas,
        "monorepo-apps",
        artifact(&server, "v1.tar.gz", "v1.0.0", &d1),
    )
    .await;
    env.kustomization(
        "apps",
        json!({"path": "./apps", "prune": true,
               "sourceRef": {"kind": "ExternalArtifact", "name": "monorepo-apps"}}),
    )
    .await;
    let ks = env.wait_ready("apps", "v1.0.0").await;
    assert_eq!(ready_message(&ks), "Applied revision: v1.0.0");
    let a = env.configmaps().get("a").await.unwrap();
    assert_eq!(a.data.unwrap()["v"], "1");

    // The producer's next revision is applied at once (the interval is 10 minutes).
    produce(
        &eas,
        "monorepo-apps",
        artifact(&server, "v2.tar.gz", "v2.0.0", &d2),
    )
    .await;
    env.wait_ready("apps", "v2.0.0").await;
    assert_eq!(
        env.configmaps().get("a").await.unwrap().data.unwrap()["v"],
        "2"
    );
    assert_eq!(
        env.configmaps().get("b").await.unwrap().data.unwrap()["v"],
        "2"
    );

    // A digest that does not match what is served is refused, and nothing applied is lost.
    let wrong = format!("sha256:{}", "0".repeat(64));
    produce(
        &eas,
        "monorepo-apps",
        artifact(&server, "v1.tar.gz", "v3.0.0", &wrong),
    )
    .await;
    let ks = env
        .wait_ks("apps", |k| {
            ready_message(k).contains("computed digest doesn't match")
        })
        .await;
    assert_eq!(ready(&ks).map(|c| c.1), Some("ArtifactFailed".to_string()));
    assert_eq!(
        env.configmaps().get("b").await.unwrap().data.unwrap()["v"],
        "2"
    );

    // An artifact that is only in sluice's storage, at the producer's path, is not read from
    // there: the URL is what counts, and it is a 404.
    let mut stale = artifact(&server, "stale.tar.gz", "v4.0.0", &d1);
    stale["path"] = json!("artifactgenerator/apps/monorepo/stale.tar.gz");
    produce(&eas, "monorepo-apps", stale).await;
    let ks = env
        .wait_ks("apps", |k| ready_message(k).contains("404"))
        .await;
    assert!(
        ready_message(&ks).contains("failed to download artifact"),
        "{}",
        ready_message(&ks)
    );
    assert!(local.is_file());
}

#[tokio::test]
async fn without_the_feature_gate_an_external_artifact_is_access_denied() {
    let env = Env::start("ks-ea-gate").await;
    env.kustomization(
        "external",
        json!({"path": "./", "sourceRef": {"kind": "ExternalArtifact", "name": "src"}}),
    )
    .await;
    let ks = env.wait_reason("external", "AccessDenied").await;
    let ns = env.name();
    assert_eq!(
        ready_message(&ks),
        format!(
            "can't access 'ExternalArtifact/{ns}/src', ExternalArtifact feature gate is disabled"
        )
    );
    assert!(sluice_api::meta::is_condition_true(
        ks.conditions(),
        STALLED_CONDITION
    ));
}
