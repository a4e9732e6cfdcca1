//! Inventory, shutdown, the mass-deletion guard (issue 12, defects 6 and
//! 7) and the guard against Flux's own controllers, end to end through Git
//! against the local control plane.
//!
//! A long apply is made with a CRD whose kind clashes with another CRD's: it
//! is created but never Established, so the apply waits in its first stage
//! (after creating it and a Namespace) until the Kustomization's timeout.

use std::time::{Duration, Instant};

use crate::support::*;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_api::Kustomization;

const GROUP: &str = "tests.sluice.dev";

/// A CRD `<plural>.tests.sluice.dev` of kind `kind`, as YAML.
fn crd_yaml(plural: &str, kind: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{GROUP}
spec:
  group: {GROUP}
  scope: Namespaced
  names:
    plural: {plural}
    singular: {plural}s
    kind: {kind}
    listKind: {kind}List
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"
    )
}

/// The same CRD as [`crd_yaml`], as an object.
fn crd(plural: &str, kind: &str) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": format!("{plural}s"),
                "kind": kind, "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .expect("a CRD")
}

/// A kind clash unique to this test: creates the CRD that owns the kind, and
/// returns (its name, the clashing CRD's YAML, the clashing CRD's name).
async fn clashing_crd(client: &Client, tag: &str) -> (String, String, String) {
    let kind = format!("Clash{tag}");
    let owner_plural = format!("owners{tag}");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &crd(&owner_plural, &kind))
        .await
        .expect("create the CRD that owns the kind");
    let clash_plural = format!("clashes{tag}");
    (
        format!("{owner_plural}.{GROUP}"),
        crd_yaml(&clash_plural, &kind),
        format!("{clash_plural}.{GROUP}"),
    )
}

fn tag_of(env: &Env) -> String {
    env.name()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn namespace_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

fn configmap_in(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  k: v\n"
    )
}

fn inventory_ids(ks: &Kustomization) -> Vec<String> {
    ks.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

async fn delete_crds(client: &Client, names: &[&str]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for n in names {
        let _ = api.delete(n, &DeleteParams::background()).await;
    }
}

#[tokio::test]
async fn timed_out_apply_keeps_what_it_created_and_a_later_prune_removes_it() {
    let env = Env::start("ks-inv").await;
    let tag = tag_of(&env);
    let (owner_crd, clash_yaml, clash_crd) = clashing_crd(&env.client, &tag).await;
    let extra_ns = format!("{}-extra", env.name());

    let mut repo = Repo::new();
    repo.write("stuck/ns.yaml", &namespace_yaml(&extra_ns));
    repo.write("stuck/crd.yaml", &clash_yaml);
    repo.write("stuck/cm.yaml", &configmap_in(env.name(), "later"));
    let rev1 = repo.commit("a CRD that never becomes Established");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./stuck", "timeout": "30s", "targetNamespace": null}),
    )
    .await;

    let ks = env.wait_reason("apps", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    assert_eq!(msg, "apply timed out after 30s");
    assert_eq!(
        ks.status
            .as_ref()
            .unwrap()
            .last_attempted_revision
            .as_deref(),
        Some(rev1.as_str())
    );
    // The Namespace and the CRD were created before the timeout: both are
    // in the inventory (the ConfigMap's stage was never reached).
    let ids = inventory_ids(&ks);
    assert!(ids.contains(&format!("_{extra_ns}__Namespace")), "{ids:?}");
    assert!(
        ids.contains(&format!(
            "_{clash_crd}_apiextensions.k8s.io_CustomResourceDefinition"
        )),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|i| i.contains("_later_")), "{ids:?}");

    // Git drops them: the next run prunes them.
    repo.remove("stuck/ns.yaml");
    repo.remove("stuck/crd.yaml");
    let rev2 = repo.commit("drop the namespace and the CRD");
    env.refresh_source("repo", &rev2).await;
    let ks = env.wait_ready("apps", &rev2).await;
    let ids = inventory_ids(&ks);
    assert_eq!(ids, [format!("{}_later__ConfigMap", env.name())]);
    assert_pruned_and_clean(&env, &extra_ns, &owner_crd, &clash_crd).await;
}

#[tokio::test]
async fn a_controller_killed_mid_apply_left_a_write_ahead_inventory() {
    let mut env = Env::without_controllers("ks-kill").await;
    env.start_source("127.0.0.1:1").await;
    let tag = tag_of(&env);
    let (owner_crd, clash_yaml, clash_crd) = clashing_crd(&env.client, &tag).await;
    let extra_ns = format!("{}-extra", env.name());

    let opts = env.kustomization_options(true);
    let config = kube_config().await;
    let first = tokio::spawn(sluice_kustomization::run(config, opts, env.metrics.clone()));
    let mut repo = Repo::new();
    repo.write("stuck/ns.yaml", &namespace_yaml(&extra_ns));
    repo.write("stuck/crd.yaml", &clash_yaml);
    repo.write("stuck/cm.yaml", &configmap_in(env.name(), "later"));
    repo.commit("a CRD that never becomes Established");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./stuck", "timeout": "30s", "targetNamespace": null}),
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    env.eventually("the apply to start", WAIT, || async {
        namespaces
            .get_opt(&extra_ns)
            .await
            .is_ok_and(|n| n.is_some())
    })
    .await;
    // Killed: nothing after this point is written by it.
    first.abort();
    let _ = first.await;

    let ks = env.ks_api().get("apps").await.unwrap();
    let ids = inventory_ids(&ks);
    assert!(ids.contains(&format!("_{extra_ns}__Namespace")), "{ids:?}");
    assert!(
        ids.contains(&format!(
            "_{clash_crd}_apiextensions.k8s.io_CustomResourceDefinition"
        )),
        "{ids:?}"
    );

    // Git drops them while the controller is down; the next one prunes them.
    repo.remove("stuck/ns.yaml");
    repo.remove("stuck/crd.yaml");
    let rev2 = repo.commit("drop the namespace and the CRD");
    env.refresh_source("repo", &rev2).await;
    env.start_kustomization(true).await;
    let ks = env.wait_ready("apps", &rev2).await;
    assert_eq!(
        inventory_ids(&ks),
        [format!("{}_later__ConfigMap", env.name())]
    );
    assert_pruned_and_clean(&env, &extra_ns, &owner_crd, &clash_crd).await;
}

#[tokio::test]
async fn shutdown_drains_the_apply_in_flight_and_starts_nothing_new() {
    let mut env = Env::without_controllers("ks-drain").await;
    env.start_source("127.0.0.1:1").await;
    let tag = tag_of(&env);
    let (owner_crd, clash_yaml, clash_crd) = clashing_crd(&env.client, &tag).await;
    let extra_ns = format!("{}-extra", env.name());

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = env.kustomization_options(true);
    let config = kube_config().await;
    let controller = tokio::spawn(sluice_kustomization::run_until(
        config,
        opts,
        env.metrics.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let mut repo = Repo::new();
    repo.write("stuck/ns.yaml", &namespace_yaml(&extra_ns));
    repo.write("stuck/crd.yaml", &clash_yaml);
    repo.commit("a CRD that never becomes Established");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./stuck", "timeout": "30s", "targetNamespace": null}),
    )
    .await;

    // The apply is under way once the Namespace exists.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    env.eventually("the apply to start", WAIT, || async {
        namespaces
            .get_opt(&extra_ns)
            .await
            .is_ok_and(|n| n.is_some())
    })
    .await;
    let stopped_at = Instant::now();
    stop_tx.send(()).expect("the controller listens");
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.kustomization("late", json!({"path": "./stuck"})).await;

    // The controller returns only once the apply in flight has ended (at its
    // timeout) and its outcome, with the inventory, is written.
    let result = tokio::time::timeout(Duration::from_secs(60), controller)
        .await
        .expect("the controller drains within its apply's timeout");
    result.expect("no panic").expect("a clean stop");
    eprintln!("drained in {:?}", stopped_at.elapsed());
    let ks = env.ks_api().get("apps").await.unwrap();
    assert_eq!(ready_message(&ks), "apply timed out after 30s");
    let ids = inventory_ids(&ks);
    assert!(ids.contains(&format!("_{extra_ns}__Namespace")), "{ids:?}");
    // Nothing new started after the stop.
    let late = env.ks_api().get("late").await.unwrap();
    assert!(
        late.status.as_ref().is_none_or(|s| s.conditions.is_none()),
        "{:?}",
        late.status
    );
    assert!(late.metadata.finalizers.is_none_or(|f| f.is_empty()));

    let _ = namespaces
        .delete(&extra_ns, &DeleteParams::background())
        .await;
    delete_crds(&env.client, &[&owner_crd, &clash_crd]).await;
}

#[tokio::test]
async fn a_build_that_loses_most_objects_is_not_pruned_until_confirmed() {
    let env = Env::start("ks-mass").await;
    let mut repo = Repo::new();
    for i in 0..12 {
        repo.write(
            &format!("apps/cm{i:02}.yaml"),
            &configmap(&format!("cm{i:02}"), &[]),
        );
    }
    let rev1 = repo.commit("twelve");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;
    env.wait_ready("apps", &rev1).await;

    // A wrong overlay, say: eleven of twelve objects would go.
    for i in 1..12 {
        repo.remove(&format!("apps/cm{i:02}.yaml"));
    }
    let rev2 = repo.commit("one left");
    env.refresh_source("repo", &rev2).await;
    let ks = env.wait_reason("apps", "PruneFailed").await;
    let msg = ready_message(&ks);
    eprintln!("{msg}");
    assert!(
        msg.starts_with(&format!(
            "pruning would delete 11 of the 12 objects of the last applied revision (the build of {rev2} has 1; to delete: "
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            "annotate the Kustomization with sluice.dev/prune-empty={rev2}"
        )),
        "{msg}"
    );
    assert_eq!(inventory_ids(&ks).len(), 12);
    let cms = env.configmaps();
    let count = cms.list(&Default::default()).await.unwrap().items.len();
    assert!(count >= 12, "nothing was pruned ({count} ConfigMaps)");

    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"sluice.dev/prune-empty": rev2}}}),
    )
    .await;
    let ks = env.wait_ready("apps", &rev2).await;
    assert_eq!(
        inventory_ids(&ks),
        [format!("{}_cm00__ConfigMap", env.name())]
    );
    for i in 1..12 {
        assert!(cms.get_opt(&format!("cm{i:02}")).await.unwrap().is_none());
    }
    assert!(cms.get_opt("cm00").await.unwrap().is_some());
}

/// The extra Namespace and the clashing CRD were pruned; the test's CRDs
/// are then removed.
async fn assert_pruned_and_clean(env: &Env, extra_ns: &str, owner_crd: &str, clash_crd: &str) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns = namespaces.get_opt(extra_ns).await.unwrap();
    assert!(
        ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "namespace {extra_ns} was not pruned"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    env.eventually("the CRD is pruned", Duration::from_secs(30), || async {
        crds.get_opt(clash_crd).await.is_ok_and(|c| c.is_none())
    })
    .await;
    delete_crds(&env.client, &[owner_crd, clash_crd]).await;
}

/// A Flux-bootstrapped repository's `gotk-components.yaml` left in the path
/// (Flux's source-controller Deployment): nothing is applied, Flux is not
/// started beside sluice, and the message says what to change; with the
/// components replaced by sluice's own, the next revision applies.
#[tokio::test]
async fn flux_controllers_in_a_build_are_refused_not_started_beside_sluice() {
    let mut env = Env::without_controllers("ks-fluxguard").await;
    env.start_source("127.0.0.1:1").await;
    let mut opts = env.kustomization_options(true);
    opts.replaces_flux = vec!["source-controller".into(), "kustomize-controller".into()];
    env.start_kustomization_with(opts).await;
    let ns = env.name().to_string();

    let mut repo = Repo::new();
    repo.write(
        "flux-system/gotk-components.yaml",
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: source-controller
  namespace: {ns}
  labels:
    app.kubernetes.io/part-of: flux
spec:
  selector:
    matchLabels:
      app: source-controller
  template:
    metadata:
      labels:
        app: source-controller
    spec:
      containers:
      - name: manager
        image: ghcr.io/fluxcd/source-controller:v1.7.4
"
        ),
    );
    repo.write(
        "flux-system/cm.yaml",
        &configmap_in(&ns, "cluster-settings"),
    );
    repo.write(
        "flux-system/kustomization.yaml",
        "resources:\n- gotk-components.yaml\n- cm.yaml\n",
    );
    repo.commit("flux bootstrap's components");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "flux-system",
        json!({"path": "./flux-system", "targetNamespace": null}),
    )
    .await;

    let ks = env.wait_reason("flux-system", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    assert!(
        msg.contains(&format!(
            "refusing to apply Flux's controllers that sluice replaces (Deployment/{ns}/source-controller)"
        )) && msg.contains("gotk-components.yaml"),
        "{msg}"
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(env.client.clone(), &ns);
    assert!(
        deployments
            .get_opt("source-controller")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.configmaps()
            .get_opt("cluster-settings")
            .await
            .unwrap()
            .is_none()
    );

    repo.remove("flux-system/gotk-components.yaml");
    repo.write("flux-system/kustomization.yaml", "resources:\n- cm.yaml\n");
    let rev = repo.commit("sluice's components instead");
    env.refresh_source("repo", &rev).await;
    env.wait_ready("flux-system", &rev).await;
    assert!(
        env.configmaps()
            .get_opt("cluster-settings")
            .await
            .unwrap()
            .is_some()
    );
}
