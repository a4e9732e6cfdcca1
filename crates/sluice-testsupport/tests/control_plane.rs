//! Smoke tests of the local control plane itself: if these pass, Deployments
//! really roll out, so the health-check and reloader tests of sluice can rely
//! on it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Node;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use sluice_testsupport::{TestNamespace, client, wait_for};

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "main", "image": "registry.k8s.io/pause:3.10" }] }
            }
        }
    }))
    .expect("static Deployment is valid")
}

/// Available in the kstatus sense: the controller saw the current generation
/// and every replica is updated and available.
fn rolled_out(d: &Deployment, replicas: i32) -> bool {
    let generation = d.metadata.generation;
    let Some(status) = &d.status else {
        return false;
    };
    status.observed_generation == generation
        && status.replicas == Some(replicas)
        && status.updated_replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
}

fn owned_replicasets<'a>(all: &'a [ReplicaSet], deploy: &Deployment) -> Vec<&'a ReplicaSet> {
    let uid = deploy.metadata.uid.as_deref();
    all.iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| Some(o.uid.as_str()) == uid)
        })
        .collect()
}

#[tokio::test]
async fn simulated_nodes_are_ready() {
    let client = client().await;
    let nodes: Api<Node> = Api::all(client);
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("listing nodes");
    let ready = list
        .items
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    assert!(
        ready >= 1,
        "expected at least one Ready node, got {ready} of {}",
        list.items.len()
    );
}

#[tokio::test]
async fn deployment_becomes_available_and_rolls_out_a_new_template() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "smoke").await;
    let deployments: Api<Deployment> = ns.api();
    let replicasets: Api<ReplicaSet> = ns.api();

    deployments
        .create(&PostParams::default(), &deployment("web", 2))
        .await
        .expect("creating Deployment");
    let first = wait_for(&deployments, "web", Duration::from_secs(60), |d| {
        rolled_out(d, 2)
    })
    .await;
    assert_eq!(
        first.status.as_ref().and_then(|s| s.available_replicas),
        Some(2)
    );

    let before = replicasets
        .list(&ListParams::default())
        .await
        .expect("listing ReplicaSets");
    let before = owned_replicasets(&before.items, &first);
    assert_eq!(before.len(), 1, "one ReplicaSet after the first roll-out");
    let first_rs = before[0].name_any();

    // Change the pod template: a new ReplicaSet must take over.
    let annotations = BTreeMap::from([("sluice.dev/restartedAt".to_string(), "smoke".to_string())]);
    let patch = json!({ "spec": { "template": { "metadata": { "annotations": annotations } } } });
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching the pod template");
    let second = wait_for(&deployments, "web", Duration::from_secs(60), |d| {
        d.metadata.generation == Some(2) && rolled_out(d, 2)
    })
    .await;

    let after = replicasets
        .list(&ListParams::default())
        .await
        .expect("listing ReplicaSets");
    let after = owned_replicasets(&after.items, &second);
    assert_eq!(after.len(), 2, "old and new ReplicaSet");
    let new_rs = after
        .iter()
        .find(|rs| rs.name_any() != first_rs)
        .expect("a new ReplicaSet");
    let old_rs = after
        .iter()
        .find(|rs| rs.name_any() == first_rs)
        .expect("the old ReplicaSet");
    assert_eq!(
        new_rs.status.as_ref().and_then(|s| s.ready_replicas),
        Some(2)
    );
    let old_replicas = old_rs.spec.as_ref().and_then(|s| s.replicas);
    assert_eq!(old_replicas, Some(0), "old ReplicaSet scaled down");

    ns.delete().await;
}
