//! Helm's Secrets driver, against the API server.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sluice_helm::chart::Metadata;
use sluice_helm::release::{Info, Release, Status, StoredChart};
use sluice_helmrelease::storage::{Storage, StorageError};
use sluice_testsupport::TestNamespace;

fn release(version: i64, status: Status, manifest: String) -> Release {
    Release {
        name: "podinfo".into(),
        namespace: "apps".into(),
        version,
        info: Some(Info {
            first_deployed: Some("2026-12-01T10:00:00Z".into()),
            last_deployed: Some("2026-12-01T10:00:00Z".into()),
            status: status.as_str().into(),
            description: "Install complete".into(),
            ..Default::default()
        }),
        chart: Some(StoredChart {
            metadata: Some(Metadata {
                name: "podinfo".into(),
                version: "6.7.1".into(),
                api_version: "v2".into(),
                ..Default::default()
            }),
            // Always written; Go's zero time without a schema.
            schema_mod_time: "0001-01-01T00:00:00Z".into(),
            ..Default::default()
        }),
        manifest,
        ..Default::default()
    }
}

#[tokio::test]
async fn records_are_stored_as_helms_secrets_driver_stores_them() {
    let client = sluice_testsupport::client().await;
    let ns = TestNamespace::create(&client, "hr-storage").await;
    let storage = Storage::new(client.clone(), ns.name());
    assert!(storage.last("podinfo").await.unwrap().is_none());

    let v1 = release(1, Status::Deployed, "kind: ConfigMap\n".into());
    storage.create(&v1, 5, 1_764_583_200).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let secret = secrets.get("sh.helm.release.v1.podinfo.v1").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("helm.sh/release.v1"));
    let labels = secret.metadata.labels.clone().unwrap();
    for (k, v) in [
        ("name", "podinfo"),
        ("owner", "helm"),
        ("status", "deployed"),
        ("version", "1"),
        ("createdAt", "1764583200"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    assert_eq!(storage.get("podinfo", 1).await.unwrap().unwrap(), v1);
    assert!(matches!(
        storage.create(&v1, 5, 1_764_583_201).await,
        Err(StorageError::Exists(_))
    ));

    // Superseded by v2; the update carries modifiedAt instead of createdAt, as Helm's.
    let mut old = v1.clone();
    old.info.as_mut().unwrap().status = Status::Superseded.as_str().into();
    storage.update(&old, 1_764_583_300).await.unwrap();
    let labels = secrets
        .get("sh.helm.release.v1.podinfo.v1")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(labels.get("status").map(String::as_str), Some("superseded"));
    assert_eq!(
        labels.get("modifiedAt").map(String::as_str),
        Some("1764583300")
    );
    assert!(!labels.contains_key("createdAt"));

    // History limit 3: creating v4 removes v1 first; the deployed revision is never removed.
    for version in 2..=3 {
        let status = if version == 3 {
            Status::Deployed
        } else {
            Status::Superseded
        };
        storage
            .create(&release(version, status, String::new()), 3, 1_764_583_400)
            .await
            .unwrap();
    }
    storage
        .create(&release(4, Status::Failed, String::new()), 3, 1_764_583_500)
        .await
        .unwrap();
    let versions: Vec<i64> = storage
        .history("podinfo")
        .await
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [2, 3, 4]);
    storage
        .create(&release(5, Status::Failed, String::new()), 2, 1_764_583_600)
        .await
        .unwrap();
    let versions: Vec<i64> = storage
        .history("podinfo")
        .await
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [3, 5], "v3 is deployed: kept");
    assert_eq!(storage.last("podinfo").await.unwrap().unwrap().version, 5);
    let entries = [(3, Status::Deployed), (5, Status::Failed)]
        .map(|(version, status)| sluice_helmrelease::storage::Entry { version, status });
    assert_eq!(storage.entries("podinfo").await.unwrap(), entries);

    // The newest record is the only one decoded to find it: an unreadable older one does not
    // hide it (the whole history still names it).
    let broken: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "sh.helm.release.v1.podinfo.v1",
            "labels": {"owner": "helm", "name": "podinfo", "version": "1", "status": "superseded"}},
        "type": "helm.sh/release.v1",
        "data": {"release": "bm90IGEgcmVjb3Jk"}}))
    .unwrap();
    secrets.create(&Default::default(), &broken).await.unwrap();
    assert_eq!(storage.last("podinfo").await.unwrap().unwrap().version, 5);
    let err = storage.history("podinfo").await.unwrap_err().to_string();
    assert!(err.contains("sh.helm.release.v1.podinfo.v1"), "{err}");
    secrets
        .delete("sh.helm.release.v1.podinfo.v1", &Default::default())
        .await
        .unwrap();
    // Without a readable version label on every record, all are decoded, as Helm does.
    secrets
        .patch(
            "sh.helm.release.v1.podinfo.v5",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                serde_json::json!({"metadata": {"labels": {"version": "five"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(storage.last("podinfo").await.unwrap().unwrap().version, 5);
    // The entries too: from the records themselves.
    assert_eq!(storage.entries("podinfo").await.unwrap(), entries);

    // A record over 1 MiB is refused before anything is written, naming its size.
    let mut noise = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 1_600_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push_str(&format!("{x:016x}"));
    }
    let big = release(6, Status::PendingUpgrade, noise);
    let err = storage.create(&big, 0, 1_764_583_700).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{text}");
    assert!(
        text.starts_with(
            "release sh.helm.release.v1.podinfo.v6 would be stored in a Secret holding"
        ),
        "{text}"
    );
    assert!(storage.get("podinfo", 6).await.unwrap().is_none());

    storage.delete("podinfo", 5).await.unwrap();
    storage.delete("podinfo", 5).await.unwrap();
    assert_eq!(storage.last("podinfo").await.unwrap().unwrap().version, 3);
    ns.delete().await;
}
