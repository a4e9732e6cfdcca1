//! Helm's actions against the API server: install, upgrade (an object dropped from the chart is
//! deleted), rollback, unlock, uninstall; hooks refused before anything is written.

use std::collections::BTreeMap;
use std::path::Path;

use sluice_apply::{Applier, ObjectRef, Owner};
use sluice_helm::release::Status;
use sluice_helmrelease::actions::{self, ActionError, Context, Desired};
use sluice_helmrelease::storage::Storage;
use sluice_testsupport::TestNamespace;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A chart with a ConfigMap, a Secret only while `extra` is true, a test hook, and with
/// `hook_image` a pre-upgrade Job running that image (deleted once it succeeded) and a
/// post-upgrade ConfigMap.
fn chart(dir: &Path, hook_image: Option<&str>) -> sluice_helm::chart::Chart {
    write(
        dir,
        "Chart.yaml",
        "apiVersion: v2\nname: greet\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    );
    write(dir, "values.yaml", "greeting: hello\nextra: true\n");
    write(
        dir,
        "crds/widget.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.hr-actions.sluice.test\n\
         spec:\n  group: hr-actions.sluice.test\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}\n",
    );
    write(
        dir,
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n\
         data:\n  greeting: {{ .Values.greeting | quote }}\n  revision: {{ .Release.Revision | quote }}\n",
    );
    write(
        dir,
        "templates/extra.yaml",
        "{{- if .Values.extra }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-extra\n\
         stringData:\n  k: v\n{{- end }}\n",
    );
    write(
        dir,
        "templates/tests/test.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\n\
         spec:\n  containers: [{name: t, image: busybox}]\n",
    );
    write(
        dir,
        "templates/broken.yaml",
        "{{- if .Values.broken }}\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {{ .Release.Namespace }}-reader\n\
         rules: []\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-broken\ndata:\n  n: {a: b}\n{{- end }}\n",
    );
    if let Some(image) = hook_image {
        write(
            dir,
            "templates/job.yaml",
            &format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-upgrade\n\
                 \x20   helm.sh/hook-delete-policy: hook-succeeded\n\
                 spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: m, image: {image}}}]\n"
            ),
        );
        write(
            dir,
            "templates/done.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: upgraded\n  annotations:\n    helm.sh/hook: post-upgrade\n\
             data:\n  revision: {{ .Release.Revision | quote }}\n",
        );
    }
    sluice_helm::chart::load_dir(dir, &Default::default()).unwrap()
}

fn values(text: &str) -> sluice_kustomize::yaml::Map {
    sluice_helm::values::parse_values_file(text.as_bytes()).unwrap()
}

#[tokio::test]
async fn install_upgrade_rollback_uninstall() {
    let Env {
        ns,
        applier,
        storage,
        ..
    } = Env::start("hr-actions").await;
    let ctx = context(&applier, &storage, ns.name());
    let dir = tempfile::tempdir().unwrap();
    let greet = chart(dir.path(), None);
    let object =
        |kind: &str, name: &str| ObjectRef::new("", "v1", kind, ns.name(), format!("greet-{name}"));

    // Install: pending-install, applied, then deployed.
    let v = values("greeting: hi\n");
    let render = sluice_helm::render::Options::default();
    let desired = Desired {
        name: "greet",
        namespace: ns.name(),
        chart: &greet,
        values: &v,
        render: &render,
        crds: actions::CrdsPolicy::Create,
        take_ownership: true,
        replace: false,
        cleanup_on_fail: false,
    };
    let pending = actions::install(&ctx, &desired).await.unwrap();
    assert_eq!(pending.release.status(), Status::PendingInstall);
    assert_eq!(
        storage.last("greet").await.unwrap().unwrap().status(),
        Status::PendingInstall,
        "recorded before applying, as Helm does"
    );
    assert_eq!(pending.applied.inventory().entries.len(), 2);
    let cm = applier
        .get(&object("ConfigMap", "greeting"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cm["data"]["greeting"], "hi");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        cm["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"],
        "greet"
    );
    assert_eq!(
        cm["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "greet"
    );
    assert!(
        applier
            .get(&ObjectRef::new("", "v1", "Pod", ns.name(), "greet-test"))
            .await
            .unwrap()
            .is_none(),
        "test hooks are not applied"
    );
    let v1 = actions::complete(&ctx, pending.release, Ok(()))
        .await
        .unwrap()
        .release;
    assert_eq!(v1.status(), Status::Deployed);
    assert_eq!(v1.info.as_ref().unwrap().description, "Install complete");

    // Upgrade without the Secret: it is deleted; v1 superseded, v2 deployed.
    let v = values("greeting: hey\nextra: false\n");
    let desired = Desired {
        values: &v,
        ..desired
    };
    let pending = actions::upgrade(&ctx, &desired, &v1).await.unwrap();
    assert_eq!(pending.release.version, 2);
    assert!(
        applier
            .get(&object("Secret", "extra"))
            .await
            .unwrap()
            .is_none()
    );
    let cm = applier
        .get(&object("ConfigMap", "greeting"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cm["data"]["revision"], "2");
    let done = actions::complete(&ctx, pending.release, Ok(()))
        .await
        .unwrap();
    // The completion tells the caller which records it rewrote: v1, now superseded.
    let superseded: Vec<(i64, Status)> = done
        .superseded
        .iter()
        .map(|r| (r.version, r.status()))
        .collect();
    assert_eq!(superseded, [(1, Status::Superseded)]);
    let v2 = done.release;
    assert_eq!(v2.info.as_ref().unwrap().description, "Upgrade complete");
    let history = storage.history("greet").await.unwrap();
    let statuses: Vec<Status> = history.iter().map(|r| r.status()).collect();
    assert_eq!(statuses, [Status::Superseded, Status::Deployed]);

    // Rollback to v1: revision 3 with v1's manifest; the Secret is back.
    let pending = actions::rollback(&ctx, &history[0], &v2, false)
        .await
        .unwrap();
    assert_eq!(pending.release.version, 3);
    let cm = applier
        .get(&object("ConfigMap", "greeting"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cm["data"]["greeting"], "hi");
    assert!(
        applier
            .get(&object("Secret", "extra"))
            .await
            .unwrap()
            .is_some()
    );
    let v3 = actions::complete(&ctx, pending.release, Ok(()))
        .await
        .unwrap()
        .release;
    assert_eq!(v3.info.as_ref().unwrap().description, "Rollback to 1");
    assert_eq!(v3.config, v1.config);

    // A crash mid-upgrade leaves v4 pending: unlock marks it failed.
    let pending = actions::upgrade(&ctx, &desired, &v3).await.unwrap();
    let unlocked = actions::unlock(&ctx, pending.release).await.unwrap();
    assert_eq!(unlocked.status(), Status::Failed);
    assert_eq!(
        unlocked.info.as_ref().unwrap().description,
        "Release unlocked from stale 'pending-upgrade' state"
    );

    // Hooks: a pre-upgrade Job runs to completion and is deleted (hook-succeeded); the
    // post-upgrade hook runs once the caller's wait is over; their runs are recorded.
    let hooked_dir = tempfile::tempdir().unwrap();
    let hooked = chart(hooked_dir.path(), Some("busybox"));
    let desired_hooked = Desired {
        chart: &hooked,
        ..desired
    };
    let pending = actions::upgrade(&ctx, &desired_hooked, &unlocked)
        .await
        .unwrap();
    let job = ObjectRef::new("batch", "v1", "Job", ns.name(), "migrate");
    assert!(
        applier.get(&job).await.unwrap().is_none(),
        "deleted after success"
    );
    let upgraded = ObjectRef::new("", "v1", "ConfigMap", ns.name(), "upgraded");
    assert!(
        applier.get(&upgraded).await.unwrap().is_none(),
        "post-upgrade not yet"
    );
    let v5 = actions::complete(&ctx, pending.release, Ok(()))
        .await
        .unwrap()
        .release;
    assert_eq!(v5.status(), Status::Deployed);
    let cm = applier.get(&upgraded).await.unwrap().unwrap();
    assert_eq!(cm["data"]["revision"], "5");
    let phases: Vec<&str> = v5.hooks.iter().map(|h| h.last_run.phase.as_str()).collect();
    // Hooks in the order Helm keeps them (by kind): the ConfigMap, the test Pod, the Job.
    assert_eq!(phases, ["Succeeded", "", "Succeeded"], "{:?}", v5.hooks);

    // A failing pre-upgrade Job fails the revision with Helm's message, before the apply.
    let failing_dir = tempfile::tempdir().unwrap();
    let failing = chart(failing_dir.path(), Some("busybox-sim-crashloop"));
    let v = values("greeting: never\n");
    let desired_failing = Desired {
        chart: &failing,
        values: &v,
        ..desired
    };
    let err = actions::upgrade(&ctx, &desired_failing, &v5)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ActionError::Hook(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "pre-upgrade hooks failed: job migrate failed: BackoffLimitExceeded"
    );
    let v6 = storage.last("greet").await.unwrap().unwrap();
    assert_eq!(v6.status(), Status::Failed);
    assert_eq!(
        v6.info.as_ref().unwrap().description,
        "Upgrade \"greet\" failed: pre-upgrade hooks failed: job migrate failed: BackoffLimitExceeded"
    );
    let cm = applier
        .get(&object("ConfigMap", "greeting"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cm["data"]["greeting"], "hey", "nothing applied");
    assert!(
        applier.get(&job).await.unwrap().is_some(),
        "kept: no hook-failed policy"
    );

    // Uninstall: objects and records gone.
    assert!(
        actions::uninstall(&ctx, &v3, &Default::default())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        applier
            .get(&object("ConfigMap", "greeting"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        applier
            .get(&object("Secret", "extra"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(storage.history("greet").await.unwrap().is_empty());
    ns.delete().await;
}

/// A test namespace, with an applier acting as helm-controller and Helm's storage in it.
struct Env {
    client: kube::Client,
    ns: TestNamespace,
    applier: Applier,
    storage: Storage,
}

impl Env {
    async fn start(prefix: &str) -> Env {
        let client = sluice_testsupport::client().await;
        let ns = TestNamespace::create(&client, prefix).await;
        let applier = Applier::new(client.clone()).with_field_manager(actions::FIELD_MANAGER);
        let storage = Storage::new(client.clone(), ns.name());
        Env {
            client,
            ns,
            applier,
            storage,
        }
    }
}

/// A context for release `greet` in `ns`.
fn context<'a>(applier: &'a Applier, storage: &'a Storage, ns: &str) -> Context<'a> {
    Context {
        applier,
        storage,
        owner: Owner::helm_release("greet", ns),
        common_labels: BTreeMap::new(),
        common_annotations: BTreeMap::new(),
        max_history: 5,
        now: "2026-12-02T10:00:00.000000001Z",
        now_unix: 1_764_669_600,
        disable_hooks: false,
        hook_timeout: std::time::Duration::from_secs(60),
    }
}

#[tokio::test]
async fn ownership_replace_and_cleanup_on_fail_as_helm() {
    let Env {
        client,
        ns,
        applier,
        storage,
    } = Env::start("hr-own").await;
    let ctx = context(&applier, &storage, ns.name());
    let dir = tempfile::tempdir().unwrap();
    let greet = chart(dir.path(), None);
    let object =
        |kind: &str, name: &str| ObjectRef::new("", "v1", kind, ns.name(), format!("greet-{name}"));
    let render = sluice_helm::render::Options::default();
    let v = values("extra: false\n");
    let desired = Desired {
        name: "greet",
        namespace: ns.name(),
        chart: &greet,
        values: &v,
        render: &render,
        crds: actions::CrdsPolicy::Skip,
        take_ownership: false,
        replace: false,
        cleanup_on_fail: true,
    };

    // A ConfigMap of the chart exists, made by someone else: with disableTakeOwnership the
    // install is refused as Helm refuses it, and nothing is recorded.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), ns.name());
    let foreign: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "greet-greeting", "labels": {"app.kubernetes.io/managed-by": "Kustomize"}},
        "data": {"greeting": "mine"},
    }))
    .unwrap();
    cms.create(&Default::default(), &foreign).await.unwrap();
    let err = actions::install(&ctx, &desired).await.err().unwrap();
    assert!(matches!(err, ActionError::Conflict(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "unable to continue with install: ConfigMap \"greet-greeting\" in namespace \"{ns}\" exists and \
             cannot be imported into the current release: invalid ownership metadata; label \
             validation error: key \"app.kubernetes.io/managed-by\" must equal \"Helm\": current value \
             is \"Kustomize\"; annotation validation error: missing key \"meta.helm.sh/release-name\": \
             must be set to \"greet\"; annotation validation error: missing key \
             \"meta.helm.sh/release-namespace\": must be set to \"{ns}\"",
            ns = ns.name()
        )
    );
    assert!(storage.last("greet").await.unwrap().is_none());
    // Taking ownership (helm-controller's default) adopts it.
    let adopting = Desired {
        take_ownership: true,
        ..desired
    };
    let v1 = actions::install(&ctx, &adopting).await.unwrap();
    let v1 = actions::complete(&ctx, v1.release, Ok(()))
        .await
        .unwrap()
        .release;
    let cm = applier
        .get(&object("ConfigMap", "greeting"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cm["data"]["greeting"], "hello");

    // An upgrade whose apply fails after creating a ClusterRole (an earlier stage): the
    // revision is failed and, with cleanupOnFail, the ClusterRole is deleted again; the
    // ConfigMap it only changed stays.
    let broken = values("broken: true\nextra: false\ngreeting: broken\n");
    let failing = Desired {
        values: &broken,
        ..desired
    };
    let role = ObjectRef::new(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "",
        format!("{}-reader", ns.name()),
    );
    let err = actions::upgrade(&ctx, &failing, &v1).await.err().unwrap();
    assert!(matches!(err, ActionError::Apply(_)), "{err}");
    assert!(err.to_string().contains("greet-broken"), "{err}");
    let v2 = storage.last("greet").await.unwrap().unwrap();
    assert_eq!((v2.version, v2.status()), (2, Status::Failed));
    assert!(applier.get(&role).await.unwrap().is_none(), "cleaned up");
    // Without cleanupOnFail it stays.
    let keeping = Desired {
        cleanup_on_fail: false,
        ..failing
    };
    actions::upgrade(&ctx, &keeping, &v2).await.err().unwrap();
    assert!(
        applier.get(&role).await.unwrap().is_some(),
        "left as Helm leaves it"
    );
    applier
        .prune(
            std::slice::from_ref(&role),
            &sluice_apply::PruneOptions::new(ctx.owner.clone()),
        )
        .await
        .unwrap();

    // A successful upgrade's created objects are what a failed wait would clean up.
    let extra = values("extra: true\n");
    let with_extra = Desired {
        values: &extra,
        ..adopting
    };
    let v3 = storage.last("greet").await.unwrap().unwrap();
    let pending = actions::upgrade(&ctx, &with_extra, &v3).await.unwrap();
    let created = pending.created();
    assert_eq!(created, [object("Secret", "extra")]);
    actions::complete(&ctx, pending.release, Err("timed out".into()))
        .await
        .unwrap();
    actions::cleanup(&ctx, &created).await.unwrap();
    assert!(
        applier
            .get(&object("Secret", "extra"))
            .await
            .unwrap()
            .is_none()
    );

    // Uninstalled with its history kept: installing again needs `replace`.
    let v4 = storage.last("greet").await.unwrap().unwrap();
    actions::uninstall(
        &ctx,
        &v4,
        &actions::UninstallOptions {
            keep_history: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = actions::install(&ctx, &adopting).await.err().unwrap();
    assert_eq!(err.to_string(), "cannot reuse a name that is still in use");
    let replacing = Desired {
        replace: true,
        ..adopting
    };
    let v5 = actions::install(&ctx, &replacing).await.unwrap();
    assert_eq!(v5.release.version, 5);
    actions::complete(&ctx, v5.release, Ok(())).await.unwrap();
    let history = storage.history("greet").await.unwrap();
    let statuses: Vec<(i64, Status)> = history.iter().map(|r| (r.version, r.status())).collect();
    assert_eq!(
        statuses,
        [
            (1, Status::Superseded),
            (2, Status::Failed),
            (3, Status::Failed),
            (4, Status::Superseded),
            (5, Status::Deployed)
        ]
    );
    ns.delete().await;
}

/// A chart's `crds/` files are created one after the other, as Helm does: a file the API
/// server refuses fails the install with its path, the revision is recorded failed, and what
/// the files before it created stays (Helm never deletes CRDs).
#[tokio::test]
async fn a_refused_crd_file_is_named_and_earlier_files_stay() {
    let Env {
        client,
        ns,
        applier,
        storage,
    } = Env::start("hr-crd-files").await;
    let ctx = context(&applier, &storage, ns.name());
    let dir = tempfile::tempdir().unwrap();
    let group = format!("{}.sluice.test", ns.name());
    let crd = |plural: &str, kind: &str, scope: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\n\
             spec:\n  group: {group}\n  scope: {scope}\n  names: {{kind: {kind}, plural: {plural}}}\n\
             \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {{type: object}}\n"
        )
    };
    write(
        dir.path(),
        "Chart.yaml",
        "apiVersion: v2\nname: greet\nversion: 0.1.0\n",
    );
    write(
        dir.path(),
        "crds/a.yaml",
        &crd("gadgets", "Gadget", "Namespaced"),
    );
    write(
        dir.path(),
        "crds/b.yaml",
        &crd("gizmos", "Gizmo", "Nowhere"),
    );
    write(
        dir.path(),
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greet\n",
    );
    let chart = sluice_helm::chart::load_dir(dir.path(), &Default::default()).unwrap();
    let v = values("{}\n");
    let render = sluice_helm::render::Options::default();
    let desired = Desired {
        name: "greet",
        namespace: ns.name(),
        chart: &chart,
        values: &v,
        render: &render,
        crds: actions::CrdsPolicy::Create,
        take_ownership: true,
        replace: false,
        cleanup_on_fail: false,
    };
    let Err(err) = actions::install(&ctx, &desired).await else {
        panic!("the install passed with a refused CRD");
    };
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(client);
    let created = crds.get_opt(&format!("gadgets.{group}")).await.unwrap();
    let _ = crds
        .delete(&format!("gadgets.{group}"), &Default::default())
        .await;
    let message = err.to_string();
    assert!(
        message.contains("failed to install CRD greet/crds/b.yaml:") && message.contains("Nowhere"),
        "{message}"
    );
    assert!(created.is_some(), "the file before the refused one stays");
    assert_eq!(
        storage.last("greet").await.unwrap().unwrap().status(),
        Status::Failed
    );
    assert!(
        applier
            .get(&ObjectRef::new("", "v1", "ConfigMap", ns.name(), "greet"))
            .await
            .unwrap()
            .is_none(),
        "nothing of the manifest is applied after a refused CRD"
    );
}
