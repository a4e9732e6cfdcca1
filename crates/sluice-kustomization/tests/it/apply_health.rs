//! Health checks with cause chains, forced recreation and impersonation,
//! end to end through Git against the local control plane.

use crate::support::*;
use serde_json::json;

fn deployment(name: &str, label: &str, volume_claim: Option<&str>) -> String {
    let mut s = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {label}
  template:
    metadata:
      labels:
        app: {label}
    spec:
      containers:
      - name: main
        image: registry.example/app:1
"
    );
    if let Some(claim) = volume_claim {
        s.push_str(&format!(
            "        volumeMounts:
        - name: data
          mountPath: /data
      volumes:
      - name: data
        persistentVolumeClaim:
          claimName: {claim}
"
        ));
    }
    s
}

const PVC: &str = "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  storageClassName: does-not-exist
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
";

#[tokio::test]
async fn wait_succeeds_when_available_and_fails_with_the_pod_level_cause() {
    let env = Env::start("ks-health").await;
    let mut repo = Repo::new();
    repo.write("good/deploy.yaml", &deployment("web", "web", None));
    repo.write("stuck/deploy.yaml", &deployment("db", "db", Some("data")));
    repo.write("stuck/pvc.yaml", PVC);
    let rev = repo.commit("apps");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "good",
        json!({"path": "./good", "wait": true, "timeout": "60s"}),
    )
    .await;
    env.kustomization(
        "stuck",
        json!({"path": "./stuck", "wait": true, "timeout": "30s"}),
    )
    .await;

    let ks = env.wait_ready("good", &rev).await;
    let healthy = ks
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Healthy"))
        .cloned()
        .expect("Healthy condition");
    assert_eq!(healthy.status, "True");
    assert!(healthy.message.starts_with("Health check passed in"));

    let ks = sluice_testsupport::wait_for(
        &env.ks_api(),
        "stuck",
        std::time::Duration::from_secs(90),
        |k| ready(k).is_some_and(|c| c.1 == "HealthCheckFailed"),
    )
    .await;
    let msg = ready_message(&ks);
    eprintln!("{msg}");
    let ns = env.name();
    assert!(
        msg.contains(&format!("Deployment/{ns}/db status: 'InProgress'")),
        "{msg}"
    );
    assert!(msg.contains("Pending"), "{msg}");
    assert!(msg.contains("PVC data"), "{msg}");
    assert!(msg.contains("StorageClass \"does-not-exist\""), "{msg}");
    // Applied, just not healthy.
    assert_eq!(
        ks.status
            .as_ref()
            .unwrap()
            .inventory
            .as_ref()
            .unwrap()
            .entries
            .len(),
        2
    );
}

#[tokio::test]
async fn immutable_field_change_needs_force() {
    let env = Env::start("ks-force").await;
    let mut repo = Repo::new();
    repo.write("apps/deploy.yaml", &deployment("web", "v1", None));
    let rev1 = repo.commit("v1");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;
    env.wait_ready("apps", &rev1).await;
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> = env.ns.api();
    let uid1 = deployments.get("web").await.unwrap().metadata.uid;

    repo.write("apps/deploy.yaml", &deployment("web", "v2", None));
    let rev2 = repo.commit("v2: new selector");
    env.refresh_source("repo", &rev2).await;
    let ks = env.wait_reason("apps", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("immutable"), "{msg}");
    assert_eq!(deployments.get("web").await.unwrap().metadata.uid, uid1);

    env.patch_ks("apps", json!({"spec": {"force": true}})).await;
    env.wait_ready("apps", &rev2).await;
    let web = deployments.get("web").await.unwrap();
    assert_ne!(web.metadata.uid, uid1, "recreated");
    assert_eq!(
        web.spec.unwrap().selector.match_labels.unwrap()["app"],
        "v2"
    );
}

#[tokio::test]
async fn impersonation_denied_by_rbac_gives_a_clear_condition() {
    let env = Env::start("ks-sa").await;
    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    repo.commit("one");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "tenant",
        json!({"path": "./apps", "serviceAccountName": "deployer"}),
    )
    .await;
    let ks = env.wait_reason("tenant", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    let ns = env.name();
    assert!(msg.contains("forbidden"), "{msg}");
    assert!(
        msg.contains(&format!("service account {ns}/deployer")),
        "{msg}"
    );
    assert!(env.configmaps().get_opt("a").await.unwrap().is_none());
}

/// More Kustomizations waiting for health than the controller has workers:
/// the waits release their workers, so every other Kustomization is still
/// reconciled within seconds, and the waiting ones say what they wait for
/// (Ready=Unknown, Progressing, naming the object) instead of no status.
#[tokio::test]
async fn waiting_kustomizations_do_not_hold_the_workers() {
    let mut env = Env::without_controllers("ks-waits").await;
    env.start_source("127.0.0.1:1").await;
    let opts = sluice_kustomization::Options {
        concurrency: 2,
        ..env.kustomization_options(true)
    };
    env.start_kustomization_with(opts).await;
    let mut repo = Repo::new();
    // A PVC whose StorageClass does not exist: its Deployment never becomes
    // available.
    for i in 0..4 {
        repo.write(
            &format!("stuck{i}/deploy.yaml"),
            &deployment(&format!("db{i}"), &format!("db{i}"), Some("data")),
        );
        repo.write(&format!("stuck{i}/pvc.yaml"), PVC);
    }
    for i in 0..3 {
        repo.write(
            &format!("quick{i}/cm.yaml"),
            &configmap(&format!("quick{i}"), &[("n", "1")]),
        );
    }
    let rev = repo.commit("apps");
    env.git_repository("repo", &mut repo).await;
    for i in 0..4 {
        env.kustomization(
            &format!("stuck{i}"),
            json!({"path": format!("./stuck{i}"), "wait": true, "timeout": "10m",
                   "targetNamespace": format!("{}", env.name())}),
        )
        .await;
    }
    // Everything stuck is applied and waiting before the others arrive.
    for i in 0..4 {
        let ks = env
            .wait_ks(&format!("stuck{i}"), |k| {
                ready(k).is_some_and(|c| c.0 == "Unknown" && c.2.contains("waiting for"))
            })
            .await;
        let (_, reason, message) = ready(&ks).unwrap();
        assert_eq!(reason, "Progressing", "{message}");
        assert!(
            message.contains(&format!(
                "Deployment/{}/db{i} status: 'InProgress'",
                env.name()
            )),
            "{message}"
        );
    }
    let start = std::time::Instant::now();
    for i in 0..3 {
        env.kustomization(&format!("quick{i}"), json!({"path": format!("./quick{i}")}))
            .await;
    }
    for i in 0..3 {
        sluice_testsupport::wait_for(
            &env.ks_api(),
            &format!("quick{i}"),
            std::time::Duration::from_secs(15),
            |k| {
                k.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(rev.as_str())
            },
        )
        .await;
    }
    let took = start.elapsed();
    eprintln!("3 Kustomizations reconciled in {took:?} beside 4 waiting ones with 2 workers");
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
    // Still waiting, not failed.
    let ks = env.ks_api().get("stuck0").await.unwrap();
    assert_eq!(ready(&ks).map(|c| c.0), Some("Unknown".to_string()));
}
