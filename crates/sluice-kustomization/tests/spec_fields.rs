//! Kustomization fields beyond the core loop, end to end through Git against
//! the local control plane: `ignore` (drift ignore rules),
//! `postBuild.substituteStrategy`, `buildMetadata` and
//! `deletionPolicy: WaitForTermination`.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_api::meta::FluxObject;
use support::*;

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
