//! Kustomizations whose source is a Bucket (`sourceRef.kind: Bucket`),
//! fetched by the in-process source controller from a real S3 server
//! (`sluice_testsupport::s3_server`: Versity's gateway, which checks
//! request signatures; the test skips, saying why, where it is not built).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use sluice_api::Bucket;
use sluice_testsupport::s3_server::S3Server;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_applies_a_bucket_and_follows_its_changes() {
    let Some(server) = S3Server::start().await else {
        return;
    };
    server.create_bucket("fleet").await;
    server
        .put("fleet", "apps/kustomization.yaml", "resources: [a.yaml]\n")
        .await;
    server
        .put("fleet", "apps/a.yaml", configmap("a", &[("v", "1")]))
        .await;
    let env = Env::start("ks-bucket").await;
    let secrets: Api<Secret> = env.ns.api();
    let data: BTreeMap<String, ByteString> = [
        ("accesskey", server.access_key.as_str()),
        ("secretkey", server.secret_key.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
    .collect();
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("s3-keys".into()),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let buckets: Api<Bucket> = env.ns.api();
    let bucket: Bucket = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "Bucket",
        "metadata": {"name": "fleet"},
        "spec": {"bucketName": "fleet", "endpoint": server.endpoint(), "insecure": true,
                 "interval": "10m", "secretRef": {"name": "s3-keys"}}
    }))
    .unwrap();
    buckets
        .create(&PostParams::default(), &bucket)
        .await
        .unwrap();
    env.kustomization(
        "apps",
        json!({"path": "./apps", "sourceRef": {"kind": "Bucket", "name": "fleet"}}),
    )
    .await;

    let revision = |b: &Bucket| b.artifact().map(|a| a.revision.clone());
    let first =
        sluice_testsupport::wait_for(&buckets, "fleet", WAIT, |b| revision(b).is_some()).await;
    let rev1 = revision(&first).unwrap();
    assert!(rev1.starts_with("sha256:"), "{rev1}");
    let ks = env.wait_ready("apps", &rev1).await;
    assert_eq!(ready_message(&ks), format!("Applied revision: {rev1}"));
    assert_eq!(
        env.configmaps().get("a").await.unwrap().data.unwrap()["v"],
        "1"
    );

    // A new object: once the Bucket has the new revision, the
    // Kustomization applies it at once (its interval is 10 minutes).
    server
        .put(
            "fleet",
            "apps/kustomization.yaml",
            "resources: [a.yaml, b.yaml]\n",
        )
        .await;
    server
        .put("fleet", "apps/b.yaml", configmap("b", &[("v", "2")]))
        .await;
    request_reconcile(&buckets, "fleet").await;
    let moved = sluice_testsupport::wait_for(&buckets, "fleet", WAIT, |b| {
        revision(b).is_some_and(|r| r != rev1)
    })
    .await;
    let rev2 = revision(&moved).unwrap();
    env.wait_ready("apps", &rev2).await;
    assert_eq!(
        env.configmaps().get("b").await.unwrap().data.unwrap()["v"],
        "2"
    );
}
