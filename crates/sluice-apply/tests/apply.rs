//! sluice-apply against a real control plane: each test works in namespaces of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Config, ResourceExt};
use serde_json::{Value, json};
use sluice_apply::{
    Action, Applier, ApplyOptions, ApplyResult, ChangeSet, ObjectErrorKind, Owner, PruneOptions,
    SkipReason, Stage, check_empty_build,
};
use sluice_testsupport::{TestNamespace, client, kubeconfig_path, unique_name, wait_for};

fn owner() -> Owner {
    Owner::new("apps", "flux-system")
}

fn opts() -> ApplyOptions {
    let mut opts = ApplyOptions::new(owner());
    opts.wait_interval = Duration::from_millis(100);
    opts.wait_timeout = Duration::from_secs(30);
    opts
}

fn configmap(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": data})
}

fn annotated(mut obj: Value, key: &str, value: &str) -> Value {
    obj["metadata"]["annotations"][key] = json!(value);
    obj
}

/// `subject action` for every entry, in order.
fn actions(cs: &ChangeSet) -> Vec<String> {
    cs.entries.iter().map(ToString::to_string).collect()
}

async fn apply_ok(applier: &Applier, objects: Vec<Value>, opts: &ApplyOptions) -> ApplyResult {
    match applier.apply(objects, opts).await {
        Ok(r) => r,
        Err(e) => panic!("apply failed: {e}\n{e:#?}"),
    }
}

#[tokio::test]
async fn created_then_unchanged_without_writes_then_configured() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-basic").await;
    let n = ns.name();
    let applier = Applier::new(client.clone());
    let objects = vec![
        configmap(n, "b", json!({"k": "v"})),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": n},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": n},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx",
                        "ports": [{"containerPort": 80}]}]}}}}),
        configmap(n, "a", json!({"k": "v"})),
    ];

    let first = apply_ok(&applier, objects.clone(), &opts()).await;
    assert_eq!(
        actions(&first.change_set),
        [
            format!("ConfigMap/{n}/a created"),
            format!("ConfigMap/{n}/b created"),
            format!("Service/{n}/web created"),
            format!("Deployment/{n}/web created"),
        ]
    );
    assert_eq!(first.requests.writes, 4);
    let ids: Vec<String> = first
        .inventory()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        [
            format!("{n}_a__ConfigMap"),
            format!("{n}_b__ConfigMap"),
            format!("{n}_web__Service"),
            format!("{n}_web_apps_Deployment"),
        ]
    );

    // Labels and field manager are Flux's.
    let cm = ns.api::<ConfigMap>().get("a").await.unwrap();
    assert_eq!(
        cm.labels()
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("apps")
    );
    assert_eq!(
        cm.labels()
            .get("kustomize.toolkit.fluxcd.io/namespace")
            .map(String::as_str),
        Some("flux-system")
    );
    let managers: Vec<(String, String)> = cm
        .managed_fields()
        .iter()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("kustomize-controller".to_owned(), "Apply".to_owned())]
    );
    let rv_before: Vec<String> = rvs(&ns).await;
    // The Deployment controller annotates new Deployments; let it, so the re-apply below
    // does not race with it.
    wait_for(
        &ns.api::<Deployment>(),
        "web",
        Duration::from_secs(30),
        |d| {
            d.annotations()
                .contains_key("deployment.kubernetes.io/revision")
        },
    )
    .await;

    // Re-applying the same set makes no write at all.
    let second = apply_ok(&applier, objects.clone(), &opts()).await;
    assert!(
        second
            .change_set
            .entries
            .iter()
            .all(|e| e.action == Action::Unchanged),
        "{}",
        second.change_set
    );
    assert_eq!(second.requests.writes, 0, "{:?}", second.requests);
    assert_eq!(second.requests.dry_runs, 4);
    // One GET and one dry-run per object; discovery is cached by the applier.
    assert_eq!(second.requests.reads, 4);
    assert_eq!(second.requests.discovery, 0);
    assert_eq!(second.change_set.change_log(), "");
    assert_eq!(rvs(&ns).await, rv_before);

    // A change is reported as configured, and only that object is written.
    let mut changed = objects;
    changed[3] = configmap(n, "a", json!({"k": "w"}));
    let third = apply_ok(&applier, changed, &opts()).await;
    assert_eq!(
        third.change_set.change_log(),
        format!("ConfigMap/{n}/a configured")
    );
    assert_eq!(third.requests.writes, 1);
    let configured = &third.change_set.entries[0];
    assert_eq!(configured.drift, ["data.k"]);
    let cm = ns.api::<ConfigMap>().get("a").await.unwrap();
    assert_eq!(cm.data.unwrap()["k"], "w");
    ns.delete().await;
}

/// Resource versions of the ConfigMaps and the Service (the Deployment's changes with its
/// status, which its controller writes).
async fn rvs(ns: &TestNamespace) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["a", "b"] {
        let cm = ns.api::<ConfigMap>().get(name).await.unwrap();
        out.push(cm.resource_version().unwrap_or_default());
    }
    let svc = ns.api::<Service>().get("web").await.unwrap();
    out.push(svc.resource_version().unwrap_or_default());
    out
}

/// A namespaced CRD of `kind` in `group` (version v1, plural `<kind>s` in lower case), whose
/// objects have a free-form `spec`.
fn namespaced_crd(group: &str, kind: &str) -> Value {
    let singular = kind.to_lowercase();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{singular}s.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": format!("{singular}s"), "singular": singular, "kind": kind,
                "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})
}

#[tokio::test]
async fn crd_and_its_custom_resource_in_one_set() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-crd").await;
    let group = format!("{}.example.com", unique_name("w"));
    let crd_name = format!("widgets.{group}");
    let crd = namespaced_crd(&group, "Widget");
    let cr = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w1", "namespace": ns.name()}, "spec": {"size": 1}});
    let applier = Applier::new(client.clone());

    // The CR comes first in the input: staging puts the CRD first and waits for it.
    let result = apply_ok(&applier, vec![cr.clone(), crd.clone()], &opts()).await;
    assert_eq!(
        actions(&result.change_set),
        [
            format!("CustomResourceDefinition/{crd_name} created"),
            format!("Widget/{}/w1 created", ns.name()),
        ]
    );
    let again = apply_ok(&applier, vec![crd.clone(), cr.clone()], &opts()).await;
    assert_eq!(again.requests.writes, 0, "{}", again.change_set);

    // Callers (health checks) read applied objects back through the same discovery.
    let widget = &again.applied()[1];
    let (resource, scope) = applier.resolve(widget).await.unwrap();
    assert_eq!(resource.plural, "widgets");
    assert_eq!(scope, kube::core::discovery::Scope::Namespaced);
    let live = applier
        .get(widget)
        .await
        .unwrap()
        .expect("the Widget exists");
    assert_eq!(live["spec"]["size"], 1);

    // An unknown kind names the object and the missing kind.
    let bogus = json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "g", "namespace": ns.name()}});
    let err = applier
        .apply(vec![crd, cr, bogus], &opts())
        .await
        .expect_err("unknown kind");
    assert_eq!(err.stage, Some(Stage::Rest));
    let msg = err.errors[0].to_string();
    assert!(
        msg.starts_with(&format!(
            "Gadget/{}/g no matches for kind \"Gadget\" in version \"{group}/v1\" (is its CustomResourceDefinition installed?",
            ns.name()
        )),
        "{msg}"
    );
    // The stage failed in its dry-run phase: nothing of it was written.
    assert_eq!(err.requests.writes, 0);

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds.delete(&crd_name, &DeleteParams::background()).await;
    ns.delete().await;
}

#[tokio::test]
async fn dynamic_objects_apply_like_json() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-dyn").await;
    let obj: kube::api::DynamicObject =
        serde_json::from_value(configmap(ns.name(), "d", json!({"k": "v"}))).unwrap();
    let applier = Applier::new(client.clone());
    let result = applier.apply_dynamic(vec![obj], &opts()).await.unwrap();
    assert_eq!(
        actions(&result.change_set),
        [format!("ConfigMap/{}/d created", ns.name())]
    );
    ns.delete().await;
}

#[tokio::test]
async fn namespace_and_an_object_in_it() {
    let client = client().await;
    let name = unique_name("sluice-t-apply-ns");
    let objects = vec![
        configmap(&name, "c", json!({"k": "v"})),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    ];
    let applier = Applier::new(client.clone());
    let result = apply_ok(&applier, objects, &opts()).await;
    assert_eq!(
        actions(&result.change_set),
        [
            format!("Namespace/{name} created"),
            format!("ConfigMap/{name}/c created"),
        ]
    );
    assert_eq!(
        result.inventory().entries[0].id,
        format!("_{name}__Namespace")
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get(&name).await.unwrap();
    assert_eq!(
        ns.labels()
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("apps")
    );
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
}

#[tokio::test]
async fn ssa_if_not_present_ignore_and_reconcile_disabled() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-skip").await;
    let n = ns.name();
    let applier = Applier::new(client.clone());
    let ssa = "kustomize.toolkit.fluxcd.io/ssa";
    let reconcile = "kustomize.toolkit.fluxcd.io/reconcile";

    let once = annotated(configmap(n, "once", json!({"k": "1"})), ssa, "IfNotPresent");
    let ignored = annotated(configmap(n, "ignored", json!({"k": "1"})), ssa, "Ignore");
    let frozen = annotated(
        configmap(n, "frozen", json!({"k": "1"})),
        reconcile,
        "disabled",
    );
    let normal = configmap(n, "normal", json!({"k": "1"}));
    let first = apply_ok(
        &applier,
        vec![once, ignored, frozen, normal.clone()],
        &opts(),
    )
    .await;
    assert_eq!(
        actions(&first.change_set),
        [
            format!("ConfigMap/{n}/frozen skipped"),
            format!("ConfigMap/{n}/ignored skipped"),
            format!("ConfigMap/{n}/normal created"),
            format!("ConfigMap/{n}/once created"),
        ]
    );
    let cms = ns.api::<ConfigMap>();
    assert!(cms.get_opt("ignored").await.unwrap().is_none());
    assert!(cms.get_opt("frozen").await.unwrap().is_none());

    // IfNotPresent: an existing object is never updated, but stays in the inventory.
    let once2 = annotated(configmap(n, "once", json!({"k": "2"})), ssa, "IfNotPresent");
    // reconcile: disabled on the live object stops updates too.
    cms.patch(
        "normal",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {reconcile: "disabled"}}})),
    )
    .await
    .unwrap();
    let normal2 = configmap(n, "normal", json!({"k": "2"}));
    let second = apply_ok(&applier, vec![once2, normal2], &opts()).await;
    let reasons: Vec<_> = second
        .change_set
        .entries
        .iter()
        .map(|e| (e.action, e.skip_reason))
        .collect();
    assert_eq!(
        reasons,
        [
            (Action::Skipped, Some(SkipReason::ReconcileDisabled)),
            (Action::Skipped, Some(SkipReason::IfNotPresent)),
        ]
    );
    assert_eq!(second.requests.writes, 0);
    assert_eq!(cms.get("once").await.unwrap().data.unwrap()["k"], "1");
    assert_eq!(cms.get("normal").await.unwrap().data.unwrap()["k"], "1");
    let ids: Vec<String> = second
        .inventory()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [format!("{n}_once__ConfigMap")]);
    // Skipped objects are not stale either.
    let stale = second.stale(&first.inventory()).unwrap();
    assert!(stale.is_empty(), "{stale:?}");
    ns.delete().await;
}

/// Creates a ConfigMap as `kubectl apply` (client-side) would: an `Update` by
/// `kubectl-client-side-apply`, with the last-applied annotation.
async fn kubectl_create(ns: &TestNamespace, name: &str) {
    create_as(ns, name, "kubectl-client-side-apply").await
}

/// Creates a ConfigMap with keys `a` and `b` as an `Update` by `manager`.
async fn create_as(ns: &TestNamespace, name: &str, manager: &str) {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(BTreeMap::from([(
                "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
                "{}".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ])),
        ..ConfigMap::default()
    };
    let pp = PostParams {
        field_manager: Some(manager.to_owned()),
        ..PostParams::default()
    };
    ns.api::<ConfigMap>().create(&pp, &cm).await.unwrap();
}

#[tokio::test]
async fn override_takes_over_kubectl_fields_and_merge_keeps_them() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-merge").await;
    let n = ns.name();
    kubectl_create(&ns, "override").await;
    kubectl_create(&ns, "merge").await;
    let applier = Applier::new(client.clone());
    let objects = vec![
        configmap(n, "override", json!({"a": "1"})),
        annotated(
            configmap(n, "merge", json!({"a": "1"})),
            "kustomize.toolkit.fluxcd.io/ssa",
            "Merge",
        ),
    ];
    let result = apply_ok(&applier, objects.clone(), &opts()).await;
    assert_eq!(
        actions(&result.change_set),
        [
            format!("ConfigMap/{n}/merge configured"),
            format!("ConfigMap/{n}/override configured"),
        ]
    );
    let drift: Vec<&[String]> = result
        .change_set
        .entries
        .iter()
        .map(|e| e.drift.as_slice())
        .collect();
    // Merge: only our labels are new; Override: kubectl's fields were taken over too.
    assert!(
        !drift[0].contains(&"metadata.managedFields".to_owned()),
        "{drift:?}"
    );
    assert!(
        drift[0].iter().any(|p| p.starts_with("metadata.labels.")),
        "{drift:?}"
    );
    assert_eq!(drift[1][0], "metadata.managedFields", "{drift:?}");
    let cms = ns.api::<ConfigMap>();
    let overridden = cms.get("override").await.unwrap();
    assert_eq!(
        overridden.data.clone().unwrap(),
        BTreeMap::from([("a".to_owned(), "1".to_owned())])
    );
    assert!(
        !overridden
            .annotations()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );
    assert!(
        overridden
            .managed_fields()
            .iter()
            .all(|m| m.manager.as_deref() == Some("kustomize-controller"))
    );
    let merged = cms.get("merge").await.unwrap();
    assert_eq!(
        merged.data.clone().unwrap().len(),
        2,
        "Merge keeps kubectl's key"
    );
    assert!(
        merged
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("kubectl-client-side-apply"))
    );

    // Once taken over, nothing more to do.
    let again = apply_ok(&applier, objects, &opts()).await;
    assert_eq!(again.requests.writes, 0, "{}", again.change_set);
    ns.delete().await;
}

fn deployment(ns: &str, selector: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 0, "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
}

#[tokio::test]
async fn immutable_field_change_needs_force_and_recreates() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-force").await;
    let n = ns.name();
    let applier = Applier::new(client.clone());
    apply_ok(
        &applier,
        vec![deployment(n, json!({"app": "web"}))],
        &opts(),
    )
    .await;
    let uid_before = ns.api::<Deployment>().get("web").await.unwrap().uid();

    let changed = deployment(n, json!({"app": "web", "tier": "front"}));
    let err = applier
        .apply(vec![changed.clone()], &opts())
        .await
        .expect_err("selector is immutable");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with(&format!("Deployment/{n}/web dry-run failed (Invalid): ")),
        "{msg}"
    );
    assert!(msg.contains("field is immutable"), "{msg}");
    assert_eq!(err.requests.writes, 0);
    assert!(matches!(err.errors[0].kind, ObjectErrorKind::DryRun(_)));

    let mut forced = opts();
    forced.force = true;
    // With another object of the stage failing its dry-run, nothing is recreated.
    let mut invalid = deployment(n, json!({"app": "other"}));
    invalid["metadata"]["name"] = json!("invalid");
    invalid["spec"]["replicas"] = json!(-1);
    let err = applier
        .apply(vec![changed.clone(), invalid], &forced)
        .await
        .unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("Deployment/{n}/invalid ")),
        "{err}"
    );
    assert_eq!(err.requests.writes, 0);
    assert_eq!(
        ns.api::<Deployment>().get("web").await.unwrap().uid(),
        uid_before
    );

    let result = apply_ok(&applier, vec![changed], &forced).await;
    assert_eq!(
        actions(&result.change_set),
        [format!("Deployment/{n}/web created")]
    );
    let after = ns.api::<Deployment>().get("web").await.unwrap();
    assert_ne!(after.uid(), uid_before);
    assert_eq!(after.spec.unwrap().selector.match_labels.unwrap().len(), 2);

    // The force annotation does the same for one object, without the global option.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
        "metadata": {"name": "frozen", "namespace": n}, "data": {"k": "1"}});
    apply_ok(&applier, vec![cm.clone()], &opts()).await;
    let mut cm2 = cm.clone();
    cm2["data"]["k"] = json!("2");
    let err = applier.apply(vec![cm2.clone()], &opts()).await.unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    let cm3 = annotated(cm2, "kustomize.toolkit.fluxcd.io/force", "Enabled");
    let result = apply_ok(&applier, vec![cm3], &opts()).await;
    assert_eq!(
        actions(&result.change_set),
        [format!("ConfigMap/{n}/frozen created")]
    );
    assert_eq!(
        ns.api::<ConfigMap>()
            .get("frozen")
            .await
            .unwrap()
            .data
            .unwrap()["k"],
        "2"
    );
    ns.delete().await;
}

#[tokio::test]
async fn prune_deletes_stale_objects_it_owns() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-prune").await;
    let n = ns.name();
    let applier = Applier::new(client.clone());
    let keep = configmap(n, "keep", json!({"k": "v"}));
    let objects = vec![
        keep.clone(),
        configmap(n, "stale", json!({"k": "v"})),
        configmap(n, "gone", json!({"k": "v"})),
        annotated(
            configmap(n, "protected", json!({"k": "v"})),
            "kustomize.toolkit.fluxcd.io/prune",
            "disabled",
        ),
        configmap(n, "adopted", json!({"k": "v"})),
    ];
    let first = apply_ok(&applier, objects, &opts()).await;
    let old = first.inventory();
    assert_eq!(old.entries.len(), 5);

    // Another Kustomization took one over; one was deleted by hand.
    let cms = ns.api::<ConfigMap>();
    cms.patch(
        "adopted",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "other"}}}),
        ),
    )
    .await
    .unwrap();
    cms.delete("gone", &DeleteParams::default()).await.unwrap();

    // An empty build would prune everything: refused without the annotation.
    let guard = check_empty_build(&old, 0, "main@sha1:abc", None).unwrap_err();
    assert!(guard.to_string().contains("had 5"), "{guard}");

    let second = apply_ok(&applier, vec![keep], &opts()).await;
    let stale = second.stale(&old).unwrap();
    assert_eq!(stale.len(), 4);
    let pruned = applier
        .prune(&stale, &PruneOptions::new(owner()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome: Vec<(String, Action, Option<SkipReason>)> = pruned
        .change_set
        .entries
        .iter()
        .map(|e| (e.object.name.clone(), e.action, e.skip_reason))
        .collect();
    assert_eq!(
        outcome,
        [
            ("stale".to_owned(), Action::Deleted, None),
            (
                "protected".to_owned(),
                Action::Skipped,
                Some(SkipReason::PruneDisabled)
            ),
            ("gone".to_owned(), Action::Deleted, None),
            (
                "adopted".to_owned(),
                Action::Skipped,
                Some(SkipReason::NotOwned)
            ),
        ]
    );
    assert_eq!(pruned.requests.writes, 1);
    assert!(cms.get_opt("stale").await.unwrap().is_none());
    assert!(cms.get_opt("protected").await.unwrap().is_some());
    assert!(cms.get_opt("adopted").await.unwrap().is_some());
    assert!(cms.get_opt("keep").await.unwrap().is_some());
    ns.delete().await;
}

async fn controller_config() -> Config {
    let kubeconfig = Kubeconfig::read_from(kubeconfig_path()).unwrap();
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn impersonated_service_account_is_limited_by_rbac() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-sa").await;
    let n = ns.name();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("deployer".into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let applier = Applier::impersonating(&controller_config().await, n, "deployer").unwrap();
    assert_eq!(
        applier.service_account(),
        Some(format!("{n}/deployer").as_str())
    );
    let objects = vec![configmap(n, "tenant", json!({"k": "v"}))];

    let err = applier
        .apply(objects.clone(), &opts())
        .await
        .expect_err("no RBAC yet");
    assert!(err.errors[0].is_forbidden(), "{err}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.starts_with(&format!("ConfigMap/{n}/tenant ")), "{msg}");
    assert!(msg.contains("(Forbidden)"), "{msg}");
    assert!(
        msg.contains(&format!("applying as service account {n}/deployer")),
        "{msg}"
    );

    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "deployer"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"],
            "verbs": ["get", "list", "create", "patch", "update", "delete"]}]}))
    .unwrap();
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "deployer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": n}]}))
    .unwrap();
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // RBAC changes reach the authorizer within moments.
    let start = Instant::now();
    let result = loop {
        match applier.apply(objects.clone(), &opts()).await {
            Ok(r) => break r,
            Err(e) if e.errors[0].is_forbidden() && start.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("apply as the service account failed: {e}"),
        }
    };
    assert_eq!(
        actions(&result.change_set),
        [format!("ConfigMap/{n}/tenant created")]
    );
    // Still nothing outside the role: a Secret is refused, naming the object.
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": n}, "stringData": {"k": "v"}});
    let err = applier.apply(vec![secret], &opts()).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("Secret/{n}/s ")),
        "{err}"
    );
    assert!(err.errors[0].is_forbidden());
    ns.delete().await;
}

#[tokio::test]
async fn malformed_and_namespaceless_objects_are_rejected_by_name() {
    let client = client().await;
    let applier = Applier::new(client.clone());
    let err = applier
        .apply(
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})],
            &opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.stage, None);
    assert!(err.to_string().contains("missing metadata.name"), "{err}");
    assert_eq!(err.requests.total(), 0);

    let err = applier
        .apply(
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})],
            &opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "ConfigMap/x namespace not specified");
}

#[tokio::test]
async fn cluster_roles_and_classes_are_staged_and_pruned_in_reverse() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-stages").await;
    let n = ns.name();
    let role = unique_name("sluice-t-role");
    let class = unique_name("sluice-t-class");
    let objects = |namespace_for_role: &str| {
        vec![
            configmap(n, "c", json!({"k": "v"})),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": class}, "spec": {"controller": "example.com/ingress"}}),
            // kustomize's namespace transformer puts a namespace on kinds it does not know;
            // the id keeps it, as in Flux.
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": role, "namespace": namespace_for_role},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        ]
    };
    let applier = Applier::new(client.clone());
    let first = apply_ok(&applier, objects(n), &opts()).await;
    assert_eq!(
        actions(&first.change_set),
        [
            format!("ClusterRole/{n}/{role} created"),
            format!("IngressClass/{class} created"),
            format!("ConfigMap/{n}/c created"),
        ]
    );
    let old = first.inventory();
    assert_eq!(
        old.entries[0].id,
        format!("{n}_{role}_rbac.authorization.k8s.io_ClusterRole")
    );

    // The same ClusterRole rendered under another namespace is not stale.
    let moved = apply_ok(&applier, objects("elsewhere"), &opts()).await;
    assert_eq!(moved.requests.writes, 0, "{}", moved.change_set);
    assert!(moved.stale(&old).unwrap().is_empty());

    // An empty build: guarded, then allowed for this revision; prune runs in reverse order.
    let rev = "main@sha1:0123abcd";
    assert!(check_empty_build(&old, 0, rev, None).is_err());
    check_empty_build(&old, 0, rev, Some(rev)).unwrap();
    let empty = apply_ok(&applier, vec![], &opts()).await;
    assert_eq!(empty.requests.total(), 0);
    let stale = empty.stale(&old).unwrap();
    let pruned = applier
        .prune(&stale, &PruneOptions::new(owner()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        actions(&pruned.change_set),
        [
            format!("ConfigMap/{n}/c deleted"),
            format!("IngressClass/{class} deleted"),
            format!("ClusterRole/{n}/{role} deleted"),
        ]
    );
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    assert!(roles.get_opt(&role).await.unwrap().is_none());
    ns.delete().await;
}

#[tokio::test]
async fn a_failing_stage_reports_what_earlier_stages_applied() {
    let client = client().await;
    let name = unique_name("sluice-t-apply-partial");
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        configmap(&name, "good", json!({"k": "v"})),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bad", "namespace": name},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    ];
    let applier = Applier::new(client.clone());
    let err = applier.apply(objects, &opts()).await.unwrap_err();
    assert_eq!(err.stage, Some(Stage::Rest));
    assert_eq!(err.errors.len(), 1);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("Deployment/{name}/bad dry-run failed (Invalid): ")),
        "{msg}"
    );
    // The Namespace was applied; the good ConfigMap was not (its stage failed its dry-run).
    assert!(
        msg.ends_with(&format!("\nNamespace/{name} created")),
        "{msg}"
    );
    assert_eq!(
        actions(&err.change_set),
        [format!("Namespace/{name} created")]
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    assert!(cms.get_opt("good").await.unwrap().is_none());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
}

#[tokio::test]
async fn pruning_objects_of_kinds_no_longer_served_counts_them_deleted() {
    let client = client().await;
    let applier = Applier::new(client.clone());
    let stale = [
        sluice_apply::ObjectRef::new("gone.example.com", "v1", "Thing", "default", "t"),
        sluice_apply::ObjectRef::new("", "v1", "ConfigMap", "default", unique_name("absent")),
    ];
    let pruned = applier
        .prune(&stale, &PruneOptions::new(owner()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        pruned
            .change_set
            .entries
            .iter()
            .all(|e| e.action == Action::Deleted),
        "{}",
        pruned.change_set
    );
    assert_eq!(pruned.requests.writes, 0);
}

#[tokio::test]
async fn service_cluster_ip_change_is_recreated_with_force() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-svc").await;
    let n = ns.name();
    let applier = Applier::new(client.clone());
    let svc = |ip: Option<&str>| {
        let mut s = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db", "namespace": n},
            "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]}});
        if let Some(ip) = ip {
            s["spec"]["clusterIP"] = json!(ip);
        }
        s
    };
    apply_ok(&applier, vec![svc(None)], &opts()).await;
    let live = ns.api::<Service>().get("db").await.unwrap();
    let ip = live.spec.unwrap().cluster_ip.unwrap();
    // Another address in the same /24.
    let (prefix, last) = ip.rsplit_once('.').unwrap();
    let last: u8 = last.parse().unwrap();
    let other = format!(
        "{prefix}.{}",
        if last > 200 { last - 50 } else { last + 50 }
    );

    let err = applier
        .apply(vec![svc(Some(&other))], &opts())
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert!(
        matches!(err.errors[0].kind, ObjectErrorKind::DryRun(_)),
        "{err}"
    );
    let mut forced = opts();
    forced.force = true;
    let result = apply_ok(&applier, vec![svc(Some(&other))], &forced).await;
    assert_eq!(
        actions(&result.change_set),
        [format!("Service/{n}/db created")]
    );
    let live = ns.api::<Service>().get("db").await.unwrap();
    assert_eq!(
        live.spec.unwrap().cluster_ip.as_deref(),
        Some(other.as_str())
    );
    ns.delete().await;
}

#[tokio::test]
async fn disallowed_field_managers_are_taken_over() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-managers").await;
    let n = ns.name();
    create_as(&ns, "by-helm", "helm").await;
    create_as(&ns, "kept", "helm").await;
    let applier = Applier::new(client.clone());
    let mut with_helm = opts();
    with_helm.disallowed_field_managers = vec!["helm".to_owned()];
    apply_ok(
        &applier,
        vec![configmap(n, "by-helm", json!({"a": "1"}))],
        &with_helm,
    )
    .await;
    apply_ok(
        &applier,
        vec![configmap(n, "kept", json!({"a": "1"}))],
        &opts(),
    )
    .await;
    let cms = ns.api::<ConfigMap>();
    assert_eq!(cms.get("by-helm").await.unwrap().data.unwrap().len(), 1);
    assert_eq!(cms.get("kept").await.unwrap().data.unwrap().len(), 2);
    ns.delete().await;
}

#[tokio::test]
async fn diff_reports_without_writing() {
    let client = client().await;
    let name = unique_name("sluice-t-apply-diff");
    let group = format!("{}.example.com", unique_name("d"));
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        configmap(&name, "c", json!({"k": "v"})),
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("dings.{group}")},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "dings", "singular": "ding", "kind": "Ding"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}}),
        json!({"apiVersion": format!("{group}/v1"), "kind": "Ding",
            "metadata": {"name": "d", "namespace": name}}),
    ];
    let applier = Applier::new(client.clone());

    // Nothing exists yet: everything would be created, nothing is written.
    let preview = applier
        .diff(objects.clone(), &opts())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        preview
            .change_set
            .entries
            .iter()
            .all(|e| e.action == Action::Created),
        "{}",
        preview.change_set
    );
    assert_eq!(preview.change_set.entries.len(), 4);
    assert_eq!(preview.requests.writes, 0);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());

    // Applied, then changed: the diff names the drift and leaves the cluster alone.
    apply_ok(&applier, objects.clone(), &opts()).await;
    let mut changed = objects;
    changed[1] = configmap(&name, "c", json!({"k": "w"}));
    let preview = applier
        .diff(changed, &opts())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(preview.requests.writes, 0);
    assert_eq!(
        preview.change_set.change_log(),
        format!("ConfigMap/{name}/c configured")
    );
    let configured = preview
        .change_set
        .entries
        .iter()
        .find(|e| e.action == Action::Configured)
        .unwrap();
    assert_eq!(configured.drift, ["data.k"]);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["k"], "v");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds
        .delete(&format!("dings.{group}"), &DeleteParams::background())
        .await;
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
}

/// An apply abandoned mid-way (its future dropped at a timeout) leaves in its
/// `ApplyProgress` every object it created: here a Namespace and a CRD whose
/// kind clashes with another CRD's, so it is never Established and the apply
/// waits in its first stage until it is dropped.
#[tokio::test]
async fn an_abandoned_apply_leaves_what_it_created_in_its_progress() {
    let client = client().await;
    let tag = unique_name("p").replace('-', "");
    let crd = |plural: &str| -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.progress.sluice.dev")},
            "spec": {"group": "progress.sluice.dev", "scope": "Namespaced",
                "names": {"plural": plural, "singular": format!("{plural}s"),
                    "kind": format!("P{tag}"), "listKind": format!("P{tag}List")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}})
    };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let owner_crd: CustomResourceDefinition =
        serde_json::from_value(crd(&format!("owners{tag}"))).unwrap();
    crds.create(&PostParams::default(), &owner_crd)
        .await
        .unwrap();
    let ns_name = format!("sluice-t-progress-{tag}");
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns_name}}),
        crd(&format!("clashes{tag}")),
        configmap(&ns_name, "later", json!({"k": "v"})),
    ];

    let applier = Applier::new(client.clone());
    let mut o = opts();
    let progress = sluice_apply::ApplyProgress::new();
    o.progress = Some(progress.clone());
    let outcome = tokio::time::timeout(Duration::from_secs(5), applier.apply(objects, &o)).await;
    assert!(outcome.is_err(), "the apply should still be waiting");
    let mut ids: Vec<String> = progress
        .inventory()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            format!(
                "_clashes{tag}.progress.sluice.dev_apiextensions.k8s.io_CustomResourceDefinition"
            ),
            format!("_{ns_name}__Namespace"),
        ]
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&ns_name).await.unwrap().is_some());

    let _ = namespaces
        .delete(&ns_name, &DeleteParams::background())
        .await;
    for plural in [format!("owners{tag}"), format!("clashes{tag}")] {
        let _ = crds
            .delete(
                &format!("{plural}.progress.sluice.dev"),
                &DeleteParams::background(),
            )
            .await;
    }
}

#[tokio::test]
async fn health_checks_resolve_kinds_through_the_appliers_discovery() {
    use sluice_apply::health::{self, Health, Rules};
    let client = client().await;
    let ns = TestNamespace::create(&client, "apply-health").await;
    let group = format!("{}.example.com", unique_name("h"));
    let crd_name = format!("gizmos.{group}");
    let applier = Applier::new(client.clone());
    let gizmo = sluice_apply::ObjectRef::new(&group, "v1", "Gizmo", ns.name(), "g1");
    let look = |last: bool| {
        health::check(
            &applier,
            None,
            std::slice::from_ref(&gizmo),
            &[],
            Duration::from_secs(3),
            last,
            Rules::Flux,
        )
    };

    // A kind the cluster does not serve: unknown while waiting, then named at the end.
    match look(false).await {
        Health::Pending { summary, .. } => assert_eq!(
            summary,
            format!("[Gizmo/{}/g1 status: 'Unknown']", ns.name())
        ),
        other => panic!("{other:?}"),
    }
    match look(true).await {
        Health::Failed(msg) => assert!(
            msg.contains(&format!(
                "Gizmo/{}/g1: no matches for kind \"Gizmo\" in version \"{group}/v1\"",
                ns.name()
            )),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }

    // Once its CRD is installed, the same applier (whose discovery saw the kind missing)
    // finds it, and then the object.
    let crd = namespaced_crd(&group, "Gizmo");
    let cr = json!({"apiVersion": format!("{group}/v1"), "kind": "Gizmo",
        "metadata": {"name": "g1", "namespace": ns.name()}});
    apply_ok(&applier, vec![crd, cr], &opts()).await;
    assert_eq!(look(true).await, Health::Ready);

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds.delete(&crd_name, &DeleteParams::background()).await;
    ns.delete().await;
}
