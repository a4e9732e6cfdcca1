//! The Kustomization controller end to end through Git, against the local
//! control plane: both controllers run in-process, scoped to the test's
//! namespace.

use std::time::{Duration, Instant};

use crate::support::*;
use kube::ResourceExt;
use serde_json::json;
use sluice_api::meta::FluxObject;

#[tokio::test]
async fn commit_is_applied_changed_reapplied_removed_pruned_and_empty_build_guarded() {
    let env = Env::start("ks-flow").await;
    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    repo.write("apps/b.yaml", &configmap("b", &[("v", "1")]));
    let rev1 = repo.commit("first");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;

    let ks = env.wait_ready("apps", &rev1).await;
    assert_eq!(ready_message(&ks), format!("Applied revision: {rev1}"));
    let status = ks.status.clone().unwrap();
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some(rev1.as_str())
    );
    assert_eq!(status.observed_generation, ks.metadata.generation);
    let mut ids: Vec<String> = ks.inventory().iter().map(|e| e.id.clone()).collect();
    ids.sort();
    let ns = env.name().to_string();
    assert_eq!(
        ids,
        vec![format!("{ns}_a__ConfigMap"), format!("{ns}_b__ConfigMap")]
    );
    let a = env.configmaps().get("a").await.unwrap();
    assert_eq!(
        a.metadata.labels.as_ref().unwrap()["kustomize.toolkit.fluxcd.io/name"],
        "apps"
    );
    assert!(ks.finalizers().iter().any(|f| f == "finalizers.fluxcd.io"));

    // A changed file is re-applied.
    repo.write("apps/a.yaml", &configmap("a", &[("v", "2")]));
    let rev2 = repo.commit("change a");
    env.refresh_source("repo", &rev2).await;
    env.wait_ready("apps", &rev2).await;
    let a = env.configmaps().get("a").await.unwrap();
    assert_eq!(a.data.unwrap()["v"], "2");

    // A removed file is pruned.
    repo.remove("apps/b.yaml");
    let rev3 = repo.commit("remove b");
    env.refresh_source("repo", &rev3).await;
    let ks = env.wait_ready("apps", &rev3).await;
    assert!(env.configmaps().get_opt("b").await.unwrap().is_none());
    assert_eq!(ks.inventory().len(), 1);

    // Everything removed: the guard refuses to prune.
    repo.remove("apps/a.yaml");
    repo.write("apps/README.md", "nothing here\n");
    let rev4 = repo.commit("empty");
    env.refresh_source("repo", &rev4).await;
    let ks = env.wait_reason("apps", "PruneFailed").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("the build produced no objects"), "{msg}");
    assert!(
        msg.contains(&format!("sluice.dev/prune-empty={rev4}")),
        "{msg}"
    );
    assert!(env.configmaps().get_opt("a").await.unwrap().is_some());
    assert_eq!(ks.inventory().len(), 1, "inventory kept");

    // Confirmed by the annotation: pruned.
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"sluice.dev/prune-empty": rev4}}}),
    )
    .await;
    let ks = env.wait_ready("apps", &rev4).await;
    assert!(ks.inventory().is_empty());
    assert!(env.configmaps().get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn depends_on_orders_three_and_unblocks_at_once() {
    let env = Env::start("ks-deps").await;
    let mut repo = Repo::new();
    repo.write("c/cm.yaml", &configmap("c", &[]));
    repo.write("b/cm.yaml", &configmap("b", &[]));
    repo.write("a/cm.yaml", &configmap("a", &[]));
    let rev = repo.commit("three");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("a", json!({"path": "./a", "dependsOn": [{"name": "b"}]}))
        .await;
    env.kustomization("b", json!({"path": "./b", "dependsOn": [{"name": "c"}]}))
        .await;

    // c does not exist yet: the chain names it.
    let ks = env.wait_reason("a", "DependencyNotReady").await;
    let ns = env.name();
    let want = format!("a → b → c: Kustomization {ns}/c not found");
    let ks = if ready_message(&ks) == want {
        ks
    } else {
        env.wait_ks("a", |k| ready_message(k) == want).await
    };
    assert_eq!(ready_message(&ks), want);
    assert!(env.configmaps().get_opt("a").await.unwrap().is_none());
    assert!(env.configmaps().get_opt("b").await.unwrap().is_none());

    // c appears; b and a follow, each woken by the one before (the fallback
    // poll is 60 s in this environment).
    env.kustomization("c", json!({"path": "./c"})).await;
    let start = Instant::now();
    env.wait_ready("c", &rev).await;
    let c_ready = start.elapsed();
    env.wait_ready("b", &rev).await;
    let b_ready = start.elapsed();
    env.wait_ready("a", &rev).await;
    let a_ready = start.elapsed();
    eprintln!("ready after: c {c_ready:?}, b {b_ready:?}, a {a_ready:?}");
    assert!(
        b_ready - c_ready < Duration::from_secs(2),
        "b took {:?} after c",
        b_ready - c_ready
    );
    assert!(
        a_ready - b_ready < Duration::from_secs(2),
        "a took {:?} after b",
        a_ready - b_ready
    );
    // Applied in order.
    let ts = |name: &'static str| {
        let api = env.configmaps();
        async move {
            api.get(name)
                .await
                .unwrap()
                .metadata
                .creation_timestamp
                .unwrap()
                .0
        }
    };
    assert!(ts("c").await <= ts("b").await && ts("b").await <= ts("a").await);
}

#[tokio::test]
async fn dependency_cycle_and_missing_dependency_have_their_messages() {
    let env = Env::start("ks-cycle").await;
    let mut repo = Repo::new();
    repo.write("x/cm.yaml", &configmap("x", &[]));
    repo.commit("one");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "app",
        json!({"path": "./x", "dependsOn": [{"name": "one"}]}),
    )
    .await;
    env.kustomization(
        "one",
        json!({"path": "./x", "dependsOn": [{"name": "two"}]}),
    )
    .await;
    env.kustomization(
        "two",
        json!({"path": "./x", "dependsOn": [{"name": "one"}]}),
    )
    .await;
    env.kustomization(
        "lonely",
        json!({"path": "./x", "dependsOn": [{"name": "ghost"}]}),
    )
    .await;
    env.wait_ks("app", |k| {
        ready_message(k) == "dependency cycle: one → two → one"
    })
    .await;
    let ks = env
        .wait_ks("two", |k| {
            ready_message(k) == "dependency cycle: two → one → two"
        })
        .await;
    assert_eq!(ready(&ks).unwrap().1, "DependencyNotReady");
    let ns = env.name();
    let ks = env
        .wait_ks("lonely", |k| {
            ready_message(k) == format!("lonely → ghost: Kustomization {ns}/ghost not found")
        })
        .await;
    assert_eq!(ready(&ks).unwrap().0, "False");
}

#[tokio::test]
async fn malformed_manifest_fails_the_build_without_touching_what_is_applied() {
    let env = Env::start("ks-bad").await;
    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    let rev1 = repo.commit("good");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;
    env.wait_ready("apps", &rev1).await;
    let before = env.configmaps().get("a").await.unwrap();

    repo.write("apps/a.yaml", &configmap("a", &[("v", "2")]));
    repo.write(
        "apps/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n",
    );
    let rev2 = repo.commit("bad");
    env.refresh_source("repo", &rev2).await;
    let ks = env.wait_reason("apps", "BuildFailed").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("broken.yaml"), "{msg}");
    let st = ks.status.clone().unwrap();
    assert_eq!(st.last_applied_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!(st.last_attempted_revision.as_deref(), Some(rev2.as_str()));
    let after = env.configmaps().get("a").await.unwrap();
    assert_eq!(after.data, before.data);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(ks.inventory().len(), 1);
}

#[tokio::test]
async fn substitute_from_optional_missing_passes_required_missing_blocks() {
    let env = Env::start("ks-subst").await;
    let mut repo = Repo::new();
    repo.write(
        "apps/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  greeting: ${greeting:=hello}\n  who: ${who}\n  token: ${token:=none}@example.org\n",
    );
    let rev = repo.commit("vars");
    // A Secret value written with a trailing newline (`echo x > file`):
    // Flux substitutes it without its line breaks.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = env.ns.api();
    secrets
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds"},
                "stringData": {"token": "s3cret\n"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "optional",
        json!({"path": "./apps", "targetNamespace": env.name(), "namePrefix": "opt-",
               "postBuild": {"substitute": {"who": "world"},
                             "substituteFrom": [{"kind": "Secret", "name": "absent", "optional": true},
                                                {"kind": "Secret", "name": "creds"}]}}),
    )
    .await;
    env.kustomization(
        "required",
        json!({"path": "./apps", "namePrefix": "req-",
               "postBuild": {"substituteFrom": [{"kind": "Secret", "name": "absent"}]}}),
    )
    .await;
    env.wait_ready("optional", &rev).await;
    let cm = env.configmaps().get("opt-a").await.unwrap();
    let data = cm.data.unwrap();
    assert_eq!(data["greeting"], "hello");
    assert_eq!(data["who"], "world");
    assert_eq!(data["token"], "s3cret@example.org");

    let ks = env.wait_reason("required", "BuildFailed").await;
    let msg = ready_message(&ks);
    assert!(msg.contains("Secret/absent"), "{msg}");
    assert!(env.configmaps().get_opt("req-a").await.unwrap().is_none());
}

#[tokio::test]
async fn suspend_and_requested_at() {
    let env = Env::start("ks-suspend").await;
    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    let rev = repo.commit("one");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;
    env.wait_ready("apps", &rev).await;

    // Drift is corrected on request ...
    let cms = env.configmaps();
    cms.patch(
        "a",
        &kube::api::PatchParams::apply("someone").force(),
        &kube::api::Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"v": "drift"}})),
    )
    .await
    .unwrap();
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "one"}}}),
    )
    .await;
    env.wait_ks("apps", |k| k.last_handled_reconcile_at() == Some("one"))
        .await;
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["v"], "1");

    // ... but not while suspended.
    env.patch_ks("apps", json!({"spec": {"suspend": true}}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cms.patch(
        "a",
        &kube::api::PatchParams::apply("someone").force(),
        &kube::api::Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"v": "drift"}})),
    )
    .await
    .unwrap();
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "two"}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ks = env.ks_api().get("apps").await.unwrap();
    assert_eq!(ks.last_handled_reconcile_at(), Some("one"));
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["v"], "drift");

    // Resumed: the pending request is handled.
    env.patch_ks("apps", json!({"spec": {"suspend": false}}))
        .await;
    let ks = env
        .wait_ks("apps", |k| k.last_handled_reconcile_at() == Some("two"))
        .await;
    assert!(ks.is_ready(), "{:?}", ready(&ks));
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["v"], "1");
}

#[tokio::test]
async fn reconcile_without_changes_makes_no_writes() {
    let env = Env::start("ks-noop").await;
    let mut repo = Repo::new();
    for i in 0..5 {
        repo.write(
            &format!("apps/cm{i}.yaml"),
            &configmap(&format!("cm{i}"), &[("i", "x")]),
        );
    }
    let rev = repo.commit("five");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps", "interval": "2s", "wait": true}),
    )
    .await;
    env.wait_ready("apps", &rev).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let writes = env.metrics.writes();
    let unchanged = env.metrics.reconciles("unchanged");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let runs = env.metrics.reconciles("unchanged") - unchanged;
    assert!(runs >= 2, "{runs} no-op reconciliations");
    assert_eq!(
        env.metrics.writes(),
        writes,
        "writes during {runs} no-op runs"
    );
    let ks = env.ks_api().get("apps").await.unwrap();
    assert!(ks.is_ready());
}

#[tokio::test]
async fn deleting_a_kustomization_follows_its_deletion_policy() {
    let env = Env::start("ks-delete").await;
    let mut repo = Repo::new();
    repo.write("pruned/a.yaml", &configmap("pruned", &[]));
    repo.write("orphaned/b.yaml", &configmap("orphaned", &[]));
    let rev = repo.commit("two");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("pruned", json!({"path": "./pruned"}))
        .await;
    env.kustomization(
        "orphaned",
        json!({"path": "./orphaned", "deletionPolicy": "Orphan"}),
    )
    .await;
    env.wait_ready("pruned", &rev).await;
    env.wait_ready("orphaned", &rev).await;

    // The change log is reported as an Event.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    let ns = env.name().to_string();
    env.eventually("a change-log event", Duration::from_secs(10), || {
        let events = events.clone();
        let want = format!("ConfigMap/{ns}/pruned created");
        async move {
            events
                .list(&Default::default())
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .any(|e| e.note.as_deref().is_some_and(|n| n.contains(&want)))
                })
                .unwrap_or(false)
        }
    })
    .await;

    for name in ["pruned", "orphaned"] {
        env.ks_api()
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    let api = env.ks_api();
    env.eventually("both Kustomizations gone", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            api.list(&Default::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
        }
    })
    .await;
    let cms = env.configmaps();
    env.eventually("pruned ConfigMap deleted", Duration::from_secs(30), || {
        let cms = cms.clone();
        async move { cms.get_opt("pruned").await.unwrap().is_none() }
    })
    .await;
    assert!(cms.get_opt("orphaned").await.unwrap().is_some());
}

/// Flux's sharding (`--watch-label-selector`) and event forwarding
/// (`--events-addr`): only the Kustomization of this shard is reconciled,
/// and its events reach the receiver in Flux's event format (what Flux's
/// notification-controller accepts), with the revision in the metadata.
#[tokio::test]
async fn a_shard_reconciles_only_its_own_and_forwards_events_in_fluxs_format() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                if let Ok(v) = serde_json::from_str(&body) {
                    sink.lock().unwrap().push(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut env = Env::without_controllers("ks-shard").await;
    env.start_source("127.0.0.1:1").await;
    let runtime = sluice_runtime::Runtime {
        events: sluice_runtime::EventSettings {
            events_addr: Some(format!("http://{addr}/")),
            instance: "shard1-pod".into(),
            sink: None,
        },
        ..Default::default()
    };
    let opts = sluice_kustomization::Options {
        label_selector: Some("sharding.fluxcd.io/key=shard1".into()),
        runtime,
        ..env.kustomization_options(true)
    };
    env.start_kustomization_with(opts).await;
    let mut repo = Repo::new();
    repo.write("mine/a.yaml", &configmap("mine", &[("v", "1")]));
    repo.write("other/a.yaml", &configmap("other", &[("v", "1")]));
    let rev = repo.commit("shards");
    env.git_repository("repo", &mut repo).await;
    env.kustomization_labelled(
        "other",
        json!({"sharding.fluxcd.io/key": "shard2"}),
        json!({"path": "./other"}),
    )
    .await;
    env.kustomization_labelled(
        "mine",
        json!({"sharding.fluxcd.io/key": "shard1"}),
        json!({"path": "./mine"}),
    )
    .await;
    env.wait_ready("mine", &rev).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let other = env.ks_api().get("other").await.unwrap();
    // (The CRD defaults status.observedGeneration to -1 on create.)
    let touched = other
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.is_some() || s.inventory.is_some());
    assert!(
        !touched && other.finalizers().is_empty(),
        "another shard's Kustomization was touched: {:?} {:?}",
        other.status,
        other.finalizers()
    );
    assert!(env.configmaps().get_opt("other").await.unwrap().is_none());

    let start = Instant::now();
    let event = loop {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .find(|e| {
                e["reason"] == "ReconciliationSucceeded" && e["involvedObject"]["name"] == "mine"
            })
            .cloned();
        if let Some(e) = found {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no ReconciliationSucceeded event forwarded; got {:?}",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["involvedObject"]["kind"], "Kustomization");
    assert_eq!(event["involvedObject"]["namespace"], env.name());
    assert_eq!(
        event["involvedObject"]["apiVersion"],
        "kustomize.toolkit.fluxcd.io/v1"
    );
    assert_eq!(event["severity"], "info");
    assert_eq!(event["reportingController"], "kustomize-controller");
    assert_eq!(event["reportingInstance"], "shard1-pod");
    assert_eq!(
        event["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
        rev.as_str()
    );
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .starts_with("Reconciliation finished in"),
        "{event}"
    );
    assert!(
        !received
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["involvedObject"]["name"] == "other"),
        "events about another shard's object"
    );
    server.abort();
}
