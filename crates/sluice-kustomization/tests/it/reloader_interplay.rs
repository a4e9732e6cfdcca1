//! The reloader and the Kustomization controller together, as users run them:
//! a Git commit changes a Secret built by a secretGenerator
//! (`disableNameSuffixHash`, so its name never changes); the Kustomization
//! controller applies it, the reloader rolls the Deployment that uses it, and
//! the next reconcile of the Kustomization neither reverts that roll-out nor
//! causes another one.

use std::time::{Duration, Instant};

use crate::support::*;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::ListParams;
use prometheus_client::registry::Registry;
use serde_json::json;
use sluice_reloader::rules::{LAST_RELOADED_FROM, SourceKind};

const KUSTOMIZATION: &str = "\
resources:
  - deployment.yaml
secretGenerator:
  - name: app-secret
    literals:
      - password=PASSWORD
generatorOptions:
  disableNameSuffixHash: true
";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    reloader.stakater.com/auto: \"true\"
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          envFrom:
            - secretRef: {name: app-secret}
";

async fn replicasets(env: &Env) -> usize {
    let rs: kube::Api<ReplicaSet> = env.ns.api();
    rs.list(&ListParams::default())
        .await
        .expect("list ReplicaSets")
        .items
        .iter()
        .filter(|r| r.owner_references().iter().any(|o| o.name == "web"))
        .count()
}

async fn reload_annotation(env: &Env) -> Option<String> {
    let d: kube::Api<Deployment> = env.ns.api();
    let web = d.get("web").await.expect("get Deployment");
    web.spec?
        .template
        .metadata?
        .annotations?
        .get(LAST_RELOADED_FROM)
        .cloned()
}

#[tokio::test]
async fn a_reconcile_after_a_reload_keeps_the_rollout_and_rolls_nothing_more() {
    let env = Env::start("ks-reload").await;
    let mut repo = Repo::new();
    repo.write(
        "apps/kustomization.yaml",
        &KUSTOMIZATION.replace("PASSWORD", "one"),
    );
    repo.write("apps/deployment.yaml", DEPLOYMENT);
    let rev1 = repo.commit("first");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps", "wait": true, "timeout": "1m"}),
    )
    .await;
    env.wait_ready("apps", &rev1).await;
    assert_eq!(replicasets(&env).await, 1);

    // The reloader, scoped to this namespace, in the same process.
    let metrics = sluice_reloader::register_metrics(&mut Registry::default());
    let options = sluice_reloader::Options {
        namespace: Some(env.name().to_string()),
        ..Default::default()
    };
    let reloader = tokio::spawn(sluice_reloader::run(
        env.client.clone(),
        options,
        metrics.clone(),
    ));
    env.eventually(
        "the reloader's first listing",
        Duration::from_secs(20),
        || async { metrics.tracked_objects(SourceKind::Secret) >= 1 },
    )
    .await;

    // A commit changes the generated Secret: applied, then rolled.
    repo.write(
        "apps/kustomization.yaml",
        &KUSTOMIZATION.replace("PASSWORD", "two"),
    );
    let rev2 = repo.commit("rotate the password");
    env.refresh_source("repo", &rev2).await;
    env.wait_ready("apps", &rev2).await;
    env.eventually(
        "a new ReplicaSet after the Secret changed",
        Duration::from_secs(10),
        || async { replicasets(&env).await == 2 },
    )
    .await;
    let annotation = reload_annotation(&env).await.expect("reload annotation");

    // The Kustomization reconciles again (requestedAt): same manifests, applied
    // by field manager kustomize-controller, which does not own the annotation.
    let token = format!("{:?}", Instant::now());
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
    )
    .await;
    env.wait_ks("apps", |k| {
        k.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some(token.as_str())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        reload_annotation(&env).await.as_deref(),
        Some(annotation.as_str()),
        "the reconcile must not revert the reload"
    );
    assert_eq!(
        replicasets(&env).await,
        2,
        "the reconcile must not roll the Deployment again"
    );
    reloader.abort();
}
