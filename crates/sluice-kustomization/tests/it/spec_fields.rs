//! Kustomization fields beyond the core loop, end to end through Git against
//! the local control plane: `ignore` (drift ignore rules),
//! `postBuild.substituteStrategy`, `buildMetadata` and
//! `deletionPolicy: WaitForTermination`.

use std::time::Duration;

use crate::support::*;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_api::meta::FluxObject;

/// Another field manager's force-apply of `data` on ConfigMap `name`.
async fn tamper(env: &Env, name: &str, data: serde_json::Value) {
    env.configmaps()
        .patch(
            name,
            &PatchParams::apply("hpa-like").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": name}, "data": data})),
        )
        .await
        .unwrap();
}

async fn request(env: &Env, name: &str, token: &str) {
    env.patch_ks(
        name,
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
    )
    .await;
    env.wait_ks(name, |k| k.last_handled_reconcile_at() == Some(token))
        .await;
}

#[tokio::test]
async fn ignore_rules_leave_their_paths_to_other_managers_and_nothing_else() {
    let env = Env::start("ks-ignore").await;
    let mut repo = Repo::new();
    repo.write(
        "apps/a.yaml",
        &configmap("a", &[("managed", "v1"), ("scaled", "2")]),
    );
    repo.write(
        "apps/b.yaml",
        &configmap("b", &[("managed", "v1"), ("scaled", "2")]),
    );
    let rev = repo.commit("two configmaps");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps",
               "ignore": [{"paths": ["/data/scaled"], "target": {"kind": "ConfigMap", "name": "a"}}]}),
    )
    .await;
    env.wait_ready("apps", &rev).await;
    // Created whole: the ignored path got its initial value.
    let a = env.configmaps().get("a").await.unwrap().data.unwrap();
    assert_eq!(a["scaled"], "2");

    for name in ["a", "b"] {
        tamper(&env, name, json!({"managed": "tampered", "scaled": "5"})).await;
    }
    request(&env, "apps", "one").await;
    let a = env.configmaps().get("a").await.unwrap().data.unwrap();
    let b = env.configmaps().get("b").await.unwrap().data.unwrap();
    // Drift outside the ignored path is corrected ...
    assert_eq!(a["managed"], "v1");
    // ... the ignored path keeps the other manager's value ...
    assert_eq!(a["scaled"], "5");
    // ... and an object the rule does not target is corrected entirely.
    assert_eq!(b["managed"], "v1");
    assert_eq!(b["scaled"], "2");

    // A change confined to the ignored path is no drift at all: unchanged.
    tamper(&env, "a", json!({"managed": "v1", "scaled": "7"})).await;
    request(&env, "apps", "two").await;
    let a = env.configmaps().get("a").await.unwrap().data.unwrap();
    assert_eq!(a["scaled"], "7");

    // A rule that cannot be compiled stops the run and names itself.
    env.patch_ks(
        "apps",
        json!({"spec": {"ignore": [{"paths": ["data/scaled"]}]}}),
    )
    .await;
    let ks = env.wait_reason("apps", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("spec.ignore[0].paths"), "{msg}");
}

#[tokio::test]
async fn substitute_strategy_and_build_metadata() {
    let env = Env::start("ks-strategy").await;
    let mut repo = Repo::new();
    repo.write(
        "apps/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  v: ${v:=dflt}\n",
    );
    let rev = repo.commit("defaults only");
    env.git_repository("repo", &mut repo).await;
    // No variable defined: Flux's default strategy (WithVariables) leaves the
    // text alone, `Always` substitutes defaults anyway.
    env.kustomization(
        "with-variables",
        json!({"path": "./apps", "namePrefix": "wv-", "postBuild": {}}),
    )
    .await;
    env.kustomization(
        "always",
        json!({"path": "./apps", "namePrefix": "al-",
               "postBuild": {"substituteStrategy": "Always"},
               "buildMetadata": ["originAnnotations"]}),
    )
    .await;
    env.wait_ready("with-variables", &rev).await;
    env.wait_ready("always", &rev).await;
    let wv = env.configmaps().get("wv-a").await.unwrap();
    assert_eq!(wv.data.as_ref().unwrap()["v"], "${v:=dflt}");
    let al = env.configmaps().get("al-a").await.unwrap();
    assert_eq!(al.data.as_ref().unwrap()["v"], "dflt");

    // buildMetadata: kustomize's origin annotation on what was built.
    let origin = al
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("config.kubernetes.io/origin"))
        .cloned()
        .unwrap_or_default();
    assert!(origin.contains("a.yaml"), "origin annotation: {origin:?}");
    assert!(
        wv.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("config.kubernetes.io/origin"))
    );
}

#[tokio::test]
async fn wait_for_termination_keeps_the_kustomization_until_its_objects_are_gone() {
    let env = Env::start("ks-wft").await;
    let mut repo = Repo::new();
    repo.write(
        "apps/held.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers:\n  - example.com/hold\ndata:\n  k: v\n",
    );
    let rev = repo.commit("a held configmap");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps", "deletionPolicy": "WaitForTermination", "timeout": "5m"}),
    )
    .await;
    env.wait_ready("apps", &rev).await;

    env.ks_api()
        .delete("apps", &Default::default())
        .await
        .unwrap();
    let cms = env.configmaps();
    env.eventually("the ConfigMap terminating", Duration::from_secs(30), || {
        let cms = cms.clone();
        async move {
            cms.get_opt("held")
                .await
                .unwrap()
                .is_some_and(|c| c.metadata.deletion_timestamp.is_some())
        }
    })
    .await;
    // Its finalizer holds the ConfigMap, so the Kustomization waits.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        env.ks_api().get_opt("apps").await.unwrap().is_some(),
        "the Kustomization went before its objects"
    );

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let api = env.ks_api();
    env.eventually("the Kustomization gone", Duration::from_secs(20), || {
        let api = api.clone();
        async move { api.get_opt("apps").await.unwrap().is_none() }
    })
    .await;
}

/// A namespaced `Widget` kind with a status subresource and no kstatus
/// conditions (kstatus alone calls it Current at once).
async fn install_widget_crd(env: &Env) {
    let crd = json!({
        "metadata": {"name": "widgets.cel.sluice-test.dev"},
        "spec": {"group": "cel.sluice-test.dev", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    sluice_testsupport::apply_crd(&env.client, &crd, "sluice-test").await;
}

async fn set_widget_phase(env: &Env, name: &str, phase: &str) {
    let ar = kube::api::ApiResource {
        group: "cel.sluice-test.dev".into(),
        version: "v1".into(),
        api_version: "cel.sluice-test.dev/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(env.client.clone(), env.name(), &ar);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn health_check_exprs_judge_custom_resources() {
    let env = Env::start("ks-cel").await;
    install_widget_crd(&env).await;
    let mut repo = Repo::new();
    let widget = |name: &str| {
        format!(
            "apiVersion: cel.sluice-test.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: 1\n"
        )
    };
    repo.write("good/w.yaml", &widget("good"));
    repo.write("bad/w.yaml", &widget("bad"));
    let rev = repo.commit("widgets");
    env.git_repository("repo", &mut repo).await;
    let exprs = json!([{"apiVersion": "cel.sluice-test.dev/v1", "kind": "Widget",
                        "current": "status.phase == 'Ready'",
                        "failed": "status.phase == 'Failed'"}]);
    env.kustomization(
        "good",
        json!({"path": "./good", "wait": true, "timeout": "2m", "healthCheckExprs": exprs}),
    )
    .await;
    env.kustomization(
        "bad",
        json!({"path": "./bad", "wait": true, "timeout": "2m", "healthCheckExprs": exprs}),
    )
    .await;
    // Applied, but not healthy while the expression does not hold.
    env.wait_ks("good", |k| {
        k.status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .is_some_and(|i| !i.entries.is_empty())
            || ready(k).is_some_and(|c| c.1 == "Progressing")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ks = env.ks_api().get("good").await.unwrap();
    assert!(
        !ks.is_ready(),
        "Ready before the expression held: {:?}",
        ready(&ks)
    );

    set_widget_phase(&env, "good", "Ready").await;
    env.wait_ready("good", &rev).await;

    // `failed` fails the health check at once, naming the expression.
    set_widget_phase(&env, "bad", "Failed").await;
    let ks = env.wait_reason("bad", "HealthCheckFailed").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("status.phase == 'Failed'"), "{msg}");

    // An expression that does not compile stops the run, naming its field.
    env.patch_ks(
        "good",
        json!({"spec": {"healthCheckExprs": [{"apiVersion": "cel.sluice-test.dev/v1", "kind": "Widget", "current": "status.phase =="}]}}),
    )
    .await;
    let ks = env.wait_reason("good", "InvalidCELExpression").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("spec.healthCheckExprs[0].current"), "{msg}");
}

#[tokio::test]
async fn ready_expr_replaces_the_built_in_dependency_check() {
    let env = Env::start("ks-readyexpr").await;
    let mut repo = Repo::new();
    repo.write("backend/a.yaml", &configmap("backend", &[]));
    repo.write("frontend/a.yaml", &configmap("frontend", &[]));
    repo.write("broken/a.yaml", "not: [valid\n");
    let rev = repo.commit("three");
    env.git_repository("repo", &mut repo).await;
    // `backend` never becomes Ready (its build fails), yet a readyExpr that
    // only compares versions lets `frontend` through: the expression
    // replaces the built-in check, as in Flux.
    env.kustomization_labelled(
        "backend",
        json!({"app/version": "v1"}),
        json!({"path": "./broken"}),
    )
    .await;
    let expr = "dep.metadata.labels['app/version'] == self.metadata.labels['app/version']";
    env.kustomization_labelled(
        "frontend",
        json!({"app/version": "v1"}),
        json!({"path": "./frontend", "dependsOn": [{"name": "backend", "readyExpr": expr}]}),
    )
    .await;
    env.kustomization_labelled(
        "mismatch",
        json!({"app/version": "v2"}),
        json!({"path": "./backend", "namePrefix": "m-",
               "dependsOn": [{"name": "backend", "readyExpr": expr}]}),
    )
    .await;
    env.wait_ready("frontend", &rev).await;
    let ks = env.wait_reason("mismatch", "DependencyNotReady").await;
    let msg = ready_message(&ks);
    assert!(
        msg.contains("readyExpr") && msg.contains("is false"),
        "{msg}"
    );
    let backend = env.ks_api().get("backend").await.unwrap();
    assert!(!backend.is_ready());
}
