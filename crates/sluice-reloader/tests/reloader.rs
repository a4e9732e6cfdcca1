//! The reloader against a real control plane: each test runs a reloader
//! scoped to its own namespace and watches real Deployments roll out.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sluice_reloader::rules::{LAST_RELOADED_FROM, SourceKind};
use sluice_reloader::{Metrics, Options};
use sluice_testsupport::{TestNamespace, client, wait_for};

/// Everything a test needs: a namespace and a reloader running in it.
struct Harness {
    client: Client,
    ns: TestNamespace,
    metrics: Metrics,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    /// Creates the namespace; the reloader starts with [`Harness::start`],
    /// after the test has created what should exist before it.
    async fn new(prefix: &str) -> Harness {
        let client = client().await;
        let ns = TestNamespace::create(&client, prefix).await;
        let metrics = sluice_reloader::register_metrics(&mut Registry::default());
        let task = tokio::spawn(async { Ok(()) });
        Harness {
            client,
            ns,
            metrics,
            task,
        }
    }

    /// Starts the reloader and waits until its first listing has seen
    /// `configmaps` ConfigMaps and `secrets` Secrets.
    async fn start(&mut self, options: Options, configmaps: i64, secrets: i64) {
        let options = Options {
            namespace: Some(self.ns.name().to_string()),
            ..options
        };
        // Each watch's first listing must be over before the test changes anything: an object
        // created during it is part of the starting state, not a creation (reload-on-create).
        // The gates are registered here, closed, so that none can look open before the
        // reloader has made it.
        let readiness = options.runtime.readiness.clone();
        let gates = sluice_reloader::readiness_gates(&options);
        for g in &gates {
            drop(readiness.gate(g));
        }
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        self.task = tokio::spawn(sluice_reloader::run(client, options, metrics));
        let start = Instant::now();
        while self.metrics.tracked_objects(SourceKind::ConfigMap) < configmaps
            || self.metrics.tracked_objects(SourceKind::Secret) < secrets
            || readiness.pending().iter().any(|p| gates.contains(p))
        {
            assert!(
                !self.task.is_finished(),
                "reloader stopped early: {:?}",
                (&mut self.task).await
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "reloader did not finish its first listing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn apply(&self, obj: Value) {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let result = match kind.as_str() {
            "Secret" => self.apply_as::<Secret>(&name, &obj).await,
            "ConfigMap" => self.apply_as::<ConfigMap>(&name, &obj).await,
            "Deployment" => self.apply_as::<Deployment>(&name, &obj).await,
            "StatefulSet" => self.apply_as::<StatefulSet>(&name, &obj).await,
            "DaemonSet" => self.apply_as::<DaemonSet>(&name, &obj).await,
            "CronJob" => self.apply_as::<CronJob>(&name, &obj).await,
            other => panic!("test helper cannot apply {other}"),
        };
        result.unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }

    async fn apply_as<K>(&self, name: &str, obj: &Value) -> kube::Result<()>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
    {
        let params = PatchParams::apply("test-author").force();
        self.ns
            .api::<K>()
            .patch(name, &params, &Patch::Apply(obj))
            .await
            .map(drop)
    }

    /// Creates a Deployment and waits until it is available.
    async fn deployment(&self, manifest: Value) -> Deployment {
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.apply(manifest).await;
        wait_for(
            &self.ns.api::<Deployment>(),
            &name,
            Duration::from_secs(60),
            |d| {
                d.status.as_ref().is_some_and(|s| {
                    s.observed_generation == d.metadata.generation
                        && s.available_replicas == Some(1)
                        && s.updated_replicas == Some(1)
                })
            },
        )
        .await
    }

    async fn replicasets_of(&self, deploy: &str) -> usize {
        let uid = self
            .ns
            .api::<Deployment>()
            .get(deploy)
            .await
            .expect("get Deployment")
            .metadata
            .uid;
        let list = self
            .ns
            .api::<ReplicaSet>()
            .list(&ListParams::default())
            .await
            .expect("list ReplicaSets");
        list.items
            .iter()
            .filter(|rs| {
                rs.owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == uid.as_ref())
            })
            .count()
    }

    async fn template_annotation(&self, deploy: &str) -> Option<String> {
        let d = self
            .ns
            .api::<Deployment>()
            .get(deploy)
            .await
            .expect("get Deployment");
        d.spec?
            .template
            .metadata?
            .annotations?
            .get(LAST_RELOADED_FROM)
            .cloned()
    }

    /// Waits until the Deployment has `n` ReplicaSets; returns how long it took.
    async fn wait_replicasets(&self, deploy: &str, n: usize, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.replicasets_of(deploy).await == n {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{deploy}: expected {n} ReplicaSets within {timeout:?}, have {}",
                self.replicasets_of(deploy).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that nothing rolls for a while.
    async fn assert_no_rollout(&self, deploy: &str, replicasets: usize, why: &str) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(self.replicasets_of(deploy).await, replicasets, "{why}");
    }

    async fn finish(self) {
        self.task.abort();
        self.ns.delete().await;
    }
}

/// Waits until the pod template at `template` (a JSON pointer) carries the
/// reload annotation.
async fn wait_template_annotated<K>(api: &Api<K>, name: &str, template: &str)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
    <K as kube::Resource>::DynamicType: Default,
{
    let pointer = format!(
        "{template}/metadata/annotations/{}",
        LAST_RELOADED_FROM.replace('/', "~1")
    );
    wait_for(api, name, Duration::from_secs(5), |obj| {
        serde_json::to_value(obj).is_ok_and(|v| v.pointer(&pointer).is_some())
    })
    .await;
}

fn secret(name: &str, data: &[(&str, &str)], annotations: Value) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name, "annotations": annotations },
        "stringData": data
    })
}

fn configmap(name: &str, data: &[(&str, &str)], annotations: Value) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "annotations": annotations },
        "data": data
    })
}

/// A Deployment whose container takes `env_from_secret` with envFrom and
/// mounts `volume_configmap`.
fn deployment(
    name: &str,
    annotations: Value,
    env_from_secret: &str,
    volume_configmap: &str,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "annotations": annotations },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "containers": [{
                        "name": "app", "image": "registry.k8s.io/pause:3.10",
                        "envFrom": [{ "secretRef": { "name": env_from_secret, "optional": true } }],
                        "volumeMounts": [{ "name": "config", "mountPath": "/config" }]
                    }],
                    "volumes": [{ "name": "config", "configMap": { "name": volume_configmap, "optional": true } }]
                }
            }
        }
    })
}

#[tokio::test]
async fn changed_secret_rolls_an_auto_deployment_and_records_an_event() {
    let mut h = Harness::new("reload-auto").await;
    h.apply(secret("app-secret", &[("password", "one")], json!({})))
        .await;
    h.deployment(deployment(
        "web",
        json!({ "reloader.stakater.com/auto": "true" }),
        "app-secret",
        "app-config",
    ))
    .await;
    h.start(Options::default(), 0, 1).await;
    assert_eq!(h.replicasets_of("web").await, 1);

    h.apply(secret("app-secret", &[("password", "two")], json!({})))
        .await;
    let took = h.wait_replicasets("web", 2, Duration::from_secs(5)).await;
    eprintln!("secret change to new ReplicaSet: {took:?}");

    let annotation = h
        .template_annotation("web")
        .await
        .expect("reload annotation on the pod template");
    let parsed: Value = serde_json::from_str(&annotation).expect("annotation is JSON");
    assert_eq!(parsed["type"], "SECRET");
    assert_eq!(parsed["name"], "app-secret");
    assert!(
        !annotation.contains("two"),
        "the annotation must not carry secret data"
    );

    // The Deployment's roll-out completes, and an Event names the Secret.
    wait_for(
        &h.ns.api::<Deployment>(),
        "web",
        Duration::from_secs(60),
        |d| {
            d.status.as_ref().is_some_and(|s| {
                s.observed_generation == d.metadata.generation
                    && s.updated_replicas == Some(1)
                    && s.available_replicas == Some(1)
            })
        },
    )
    .await;
    let events: Api<Event> = h.ns.api();
    let start = Instant::now();
    loop {
        let list = events
            .list(&ListParams::default())
            .await
            .expect("list events");
        let found = list.items.iter().any(|e| {
            e.reason.as_deref() == Some("Reloaded")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("Secret") && n.contains("app-secret"))
        });
        if found {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no Reloaded event naming the Secret: {:?}",
            list.items
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.finish().await;
}

#[tokio::test]
async fn unchanged_reapply_and_unrelated_secret_roll_nothing() {
    let mut h = Harness::new("reload-quiet").await;
    h.apply(secret("app-secret", &[("password", "one")], json!({})))
        .await;
    h.apply(secret("unrelated", &[("k", "v")], json!({}))).await;
    h.deployment(deployment(
        "web",
        json!({ "reloader.stakater.com/auto": "true" }),
        "app-secret",
        "app-config",
    ))
    .await;
    h.start(Options::default(), 0, 2).await;

    // Same data, new metadata: an update event whose content hash is unchanged.
    let mut same = secret("app-secret", &[("password", "one")], json!({}));
    same["metadata"]["labels"] = json!({ "touched": "yes" });
    h.apply(same).await;
    // A Secret the Deployment does not use.
    h.apply(secret("unrelated", &[("k", "changed")], json!({})))
        .await;
    h.assert_no_rollout(
        "web",
        1,
        "no roll-out for unchanged data or an unrelated Secret",
    )
    .await;
    assert_eq!(h.template_annotation("web").await, None);
    // Control: the same reloader does roll the Deployment for a real change.
    h.apply(secret("app-secret", &[("password", "two")], json!({})))
        .await;
    h.wait_replicasets("web", 2, Duration::from_secs(5)).await;
    h.finish().await;
}

#[tokio::test]
async fn search_and_match_named_lists_and_ignore() {
    let mut h = Harness::new("reload-rules").await;
    h.apply(secret(
        "matched",
        &[("k", "1")],
        json!({ "reloader.stakater.com/match": "true" }),
    ))
    .await;
    h.apply(secret("unmatched", &[("k", "1")], json!({}))).await;
    h.apply(configmap("settings-prod", &[("k", "1")], json!({})))
        .await;
    h.apply(configmap(
        "ignored",
        &[("k", "1")],
        json!({ "reloader.stakater.com/ignore": "true" }),
    ))
    .await;
    // search: reloads for "matched" (referenced + match), not for "unmatched" (referenced, no match).
    h.deployment(deployment(
        "searcher",
        json!({ "reloader.stakater.com/search": "true" }),
        "matched",
        "unused",
    ))
    .await;
    h.deployment(deployment(
        "searcher2",
        json!({ "reloader.stakater.com/search": "true" }),
        "unmatched",
        "unused",
    ))
    .await;
    // Named list with a regular expression; the Deployment does not reference the ConfigMap.
    h.deployment(deployment(
        "named",
        json!({ "configmap.reloader.stakater.com/reload": "other, settings-.*" }),
        "none",
        "none",
    ))
    .await;
    // auto, but the ConfigMap it mounts is marked ignore.
    h.deployment(deployment(
        "auto-ignored",
        json!({ "reloader.stakater.com/auto": "true" }),
        "none",
        "ignored",
    ))
    .await;
    h.start(Options::default(), 2, 2).await;

    h.apply(secret(
        "matched",
        &[("k", "2")],
        json!({ "reloader.stakater.com/match": "true" }),
    ))
    .await;
    h.apply(secret("unmatched", &[("k", "2")], json!({}))).await;
    h.apply(configmap("settings-prod", &[("k", "2")], json!({})))
        .await;
    h.apply(configmap(
        "ignored",
        &[("k", "2")],
        json!({ "reloader.stakater.com/ignore": "true" }),
    ))
    .await;

    h.wait_replicasets("searcher", 2, Duration::from_secs(5))
        .await;
    h.wait_replicasets("named", 2, Duration::from_secs(5)).await;
    h.assert_no_rollout("searcher2", 1, "search without match on the Secret")
        .await;
    h.assert_no_rollout(
        "auto-ignored",
        1,
        "ConfigMap annotated reloader.stakater.com/ignore",
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn a_reapply_by_the_kustomization_controller_keeps_the_rollout() {
    let mut h = Harness::new("reload-ssa").await;
    h.apply(configmap("app-config", &[("mode", "a")], json!({})))
        .await;
    let manifest = deployment(
        "web",
        json!({ "configmap.reloader.stakater.com/auto": "true" }),
        "none",
        "app-config",
    );
    // Applied as Flux's (and sluice's) Kustomization controller applies it.
    let ks = PatchParams::apply("kustomize-controller").force();
    let deployments = h.ns.api::<Deployment>();
    deployments
        .patch("web", &ks, &Patch::Apply(&manifest))
        .await
        .expect("apply as kustomize-controller");
    wait_for(&deployments, "web", Duration::from_secs(60), |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.available_replicas == Some(1))
    })
    .await;
    h.start(Options::default(), 1, 0).await;

    h.apply(configmap("app-config", &[("mode", "b")], json!({})))
        .await;
    h.wait_replicasets("web", 2, Duration::from_secs(5)).await;
    let annotation = h
        .template_annotation("web")
        .await
        .expect("reload annotation");

    // The Kustomization controller applies the same manifest again (it does
    // not know the annotation): the annotation stays, nothing rolls again.
    deployments
        .patch("web", &ks, &Patch::Apply(&manifest))
        .await
        .expect("re-apply as kustomize-controller");
    let after = deployments.get("web").await.expect("get");
    assert_eq!(
        h.template_annotation("web").await.as_deref(),
        Some(annotation.as_str()),
        "re-apply must not revert the reload"
    );
    let managers: Vec<_> = after
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.iter().any(|m| m == sluice_reloader::FIELD_MANAGER),
        "managers: {managers:?}"
    );
    h.assert_no_rollout("web", 2, "a re-apply must not trigger another roll-out")
        .await;
    h.finish().await;
}

#[tokio::test]
async fn statefulsets_daemonsets_and_cronjobs_are_annotated() {
    let mut h = Harness::new("reload-kinds").await;
    h.apply(secret("shared", &[("k", "1")], json!({}))).await;
    let template = json!({
        "metadata": { "labels": { "app": "x" } },
        "spec": { "containers": [{ "name": "c", "image": "registry.k8s.io/pause:3.10",
            "env": [{ "name": "K", "valueFrom": { "secretKeyRef": { "name": "shared", "key": "k" } } }] }] }
    });
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    h.apply(json!({ "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": "db", "annotations": auto },
        "spec": { "serviceName": "db", "selector": { "matchLabels": { "app": "x" } }, "template": template } })).await;
    h.apply(json!({ "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "agent", "annotations": auto },
        "spec": { "selector": { "matchLabels": { "app": "x" } }, "template": template } })).await;
    let mut job_template = template.clone();
    job_template["spec"]["restartPolicy"] = json!("OnFailure");
    h.apply(json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "nightly", "annotations": auto },
        "spec": { "schedule": "0 3 * * *", "jobTemplate": { "spec": { "template": job_template } } } })).await;
    h.start(Options::default(), 0, 1).await;

    h.apply(secret("shared", &[("k", "2")], json!({}))).await;
    wait_template_annotated(&h.ns.api::<StatefulSet>(), "db", "/spec/template").await;
    wait_template_annotated(&h.ns.api::<DaemonSet>(), "agent", "/spec/template").await;
    wait_template_annotated(
        &h.ns.api::<CronJob>(),
        "nightly",
        "/spec/jobTemplate/spec/template",
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn ignored_workload_types_and_reload_on_delete() {
    let mut h = Harness::new("reload-opts").await;
    h.apply(secret("app-secret", &[("k", "1")], json!({})))
        .await;
    h.deployment(deployment(
        "web",
        json!({ "reloader.stakater.com/auto": "true" }),
        "app-secret",
        "none",
    ))
    .await;
    let opts = Options {
        reload_on_delete: true,
        ..Options::default()
    };
    h.start(opts, 0, 1).await;

    // Deleting the Secret rolls the Deployment when reload-on-delete is on.
    Api::<Secret>::namespaced(h.client.clone(), h.ns.name())
        .delete("app-secret", &Default::default())
        .await
        .expect("delete Secret");
    h.wait_replicasets("web", 2, Duration::from_secs(5)).await;
    h.finish().await;

    let mut h = Harness::new("reload-skip").await;
    h.apply(secret("app-secret", &[("k", "1")], json!({})))
        .await;
    h.deployment(deployment(
        "web",
        json!({ "reloader.stakater.com/auto": "true" }),
        "app-secret",
        "none",
    ))
    .await;
    let opts = Options {
        ignored_workload_types: vec![sluice_reloader::WorkloadKind::Deployment],
        ..Options::default()
    };
    h.start(opts, 0, 1).await;
    h.apply(secret("app-secret", &[("k", "2")], json!({})))
        .await;
    h.assert_no_rollout("web", 1, "Deployments are an ignored workload type")
        .await;
    // Control: the same reloader tracked the change (it saw the Secret).
    assert_eq!(h.metrics.tracked_objects(SourceKind::Secret), 1);
    h.finish().await;
}

#[tokio::test]
async fn reload_on_create_and_resource_label_selector() {
    // reload-on-create: a Secret the Deployment uses (optional envFrom) appears.
    let mut h = Harness::new("reload-create").await;
    h.deployment(deployment(
        "web",
        json!({ "reloader.stakater.com/auto": "true" }),
        "late-secret",
        "none",
    ))
    .await;
    let opts = Options {
        reload_on_create: true,
        ..Options::default()
    };
    h.start(opts, 0, 0).await;
    h.apply(secret("late-secret", &[("k", "1")], json!({})))
        .await;
    h.wait_replicasets("web", 2, Duration::from_secs(5)).await;
    h.finish().await;

    // resource-label-selector: only labelled Secrets are watched at all.
    let mut h = Harness::new("reload-labels").await;
    let mut labelled = secret("labelled", &[("k", "1")], json!({}));
    labelled["metadata"]["labels"] = json!({ "reload": "yes" });
    h.apply(labelled.clone()).await;
    h.apply(secret("plain", &[("k", "1")], json!({}))).await;
    h.deployment(deployment(
        "uses-plain",
        json!({ "reloader.stakater.com/auto": "true" }),
        "plain",
        "none",
    ))
    .await;
    h.deployment(deployment(
        "uses-labelled",
        json!({ "reloader.stakater.com/auto": "true" }),
        "labelled",
        "none",
    ))
    .await;
    let opts = Options {
        resource_label_selector: Some("reload=yes".to_string()),
        ..Options::default()
    };
    h.start(opts, 0, 1).await;
    assert_eq!(
        h.metrics.tracked_objects(SourceKind::Secret),
        1,
        "only the labelled Secret is tracked"
    );
    h.apply(secret("plain", &[("k", "2")], json!({}))).await;
    labelled["stringData"] = json!({ "k": "2" });
    h.apply(labelled).await;
    h.wait_replicasets("uses-labelled", 2, Duration::from_secs(5))
        .await;
    h.assert_no_rollout(
        "uses-plain",
        1,
        "an unlabelled Secret is outside the selector",
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn ignored_and_unselected_namespaces_roll_nothing() {
    for (name, options) in [
        (
            "reload-nsignore",
            Options {
                namespaces_to_ignore: vec![],
                ..Options::default()
            },
        ),
        (
            "reload-nssel",
            Options {
                namespace_selector: Some("sluice.dev/reloader=on".to_string()),
                ..Options::default()
            },
        ),
    ] {
        let mut h = Harness::new(name).await;
        let mut options = options;
        if name == "reload-nsignore" {
            options.namespaces_to_ignore = vec![h.ns.name().to_string()];
        }
        h.apply(secret("app-secret", &[("k", "1")], json!({})))
            .await;
        h.deployment(deployment(
            "web",
            json!({ "reloader.stakater.com/auto": "true" }),
            "app-secret",
            "none",
        ))
        .await;
        h.start(options, 0, 1).await;
        h.apply(secret("app-secret", &[("k", "2")], json!({})))
            .await;
        h.assert_no_rollout("web", 1, name).await;
        if name == "reload-nssel" {
            // Control: label the namespace so the selector matches; the next change rolls.
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(h.client.clone());
            let patch = json!({ "metadata": { "labels": { "sluice.dev/reloader": "on" } } });
            namespaces
                .patch(h.ns.name(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("label namespace");
            h.apply(secret("app-secret", &[("k", "3")], json!({})))
                .await;
            h.wait_replicasets("web", 2, Duration::from_secs(5)).await;
        }
        h.finish().await;
    }
}
