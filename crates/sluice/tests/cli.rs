//! The everyday verbs and `why`, by running the `sluice` binary against the
//! local control plane; the controller's status writes are simulated.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use sluice_api::Kustomization;
use support::*;

#[tokio::test]
async fn get_prints_tables_and_json() {
    let (client, ns) = setup("get").await;
    let n = ns.name();
    git_repository(&client, n, "repo").await;
    kustomization(&client, n, "apps", "repo", &[]).await;
    kustomization(&client, n, "infra", "repo", &[]).await;
    set_ready(
        &client,
        "GitRepository",
        n,
        "repo",
        true,
        "stored artifact for revision 'main@sha1:0123456789abcdef0123456789abcdef01234567'",
    )
    .await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "apps",
        true,
        "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567",
    )
    .await;

    let out = sluice(&["get", "ks", "-n", n]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("REVISION")
            && lines[0].contains("SUSPENDED")
            && lines[0].contains("READY")
            && lines[0].contains("MESSAGE"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("apps ")
            && lines[1].contains("main@sha1:0123456789abcdef")
            && lines[1].contains("True"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("infra ") && lines[2].contains("waiting to be reconciled"),
        "{}",
        lines[2]
    );

    let out = sluice(&["get", "sources", "git", "-n", n, "-o", "json"]).expect(0);
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["name"], "repo");
    assert_eq!(rows[0]["ready"], "True");
    assert_eq!(rows[0]["suspended"], false);

    let out = sluice(&["get", "all", "-n", n]).expect(0);
    assert!(out.stdout.contains("gitrepository/repo"), "{}", out.stdout);
    assert!(out.stdout.contains("kustomization/apps"), "{}", out.stdout);

    let out = sluice(&["get", "all", "-A", "-o", "yaml"]).expect(0);
    assert!(
        out.stdout.contains(&format!("namespace: {n}")),
        "{}",
        out.stdout
    );

    let out = sluice(&["get", "ks", "missing", "-n", n]).expect(1);
    assert!(
        out.stderr
            .contains(&format!("Kustomization {n}/missing not found")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_waits_for_the_controller() {
    let (client, ns) = setup("reconcile").await;
    let n = ns.name().to_string();
    git_repository(&client, &n, "repo").await;
    kustomization(&client, &n, "apps", "repo", &[]).await;
    kustomization(&client, &n, "broken", "repo", &[]).await;
    let _controller = FakeController::start(client.clone(), n.clone());

    let out = sluice(&["reconcile", "ks", "apps", "--with-source", "-n", &n]).expect(0);
    assert!(
        out.stderr.contains("annotating GitRepository repo"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("fetched revision main@sha1:0123456789abcdef"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("applied revision main@sha1:0123456789abcdef"),
        "{}",
        out.stderr
    );
    let ks = Api::<Kustomization>::namespaced(client.clone(), &n)
        .get("apps")
        .await
        .unwrap();
    assert!(
        ks.metadata
            .annotations
            .unwrap()
            .contains_key("reconcile.fluxcd.io/requestedAt")
    );

    let out = sluice(&["reconcile", "source", "git", "repo", "-n", &n]).expect(0);
    assert!(out.stderr.contains("fetched revision"), "{}", out.stderr);

    let out = sluice(&["reconcile", "kustomization", "broken", "-n", &n]).expect(1);
    assert!(
        out.stderr
            .contains("reconciliation failed: kustomize build failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("sluice why kustomization/broken"),
        "{}",
        out.stderr
    );

    // Nobody answers in another namespace: the timeout names the cause.
    let (_, other) = setup("reconcile-idle").await;
    kustomization(&client, other.name(), "apps", "repo", &[]).await;
    let out = sluice(&[
        "reconcile",
        "ks",
        "apps",
        "-n",
        other.name(),
        "--timeout",
        "2s",
    ])
    .expect(1);
    assert!(out.stderr.contains("timed out after 2s"), "{}", out.stderr);
    assert!(out.stderr.contains("sluice check"), "{}", out.stderr);
    ns.delete().await;
    other.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_resume() {
    let (client, ns) = setup("suspend").await;
    let n = ns.name().to_string();
    git_repository(&client, &n, "repo").await;
    kustomization(&client, &n, "apps", "repo", &[]).await;
    let _controller = FakeController::start(client.clone(), n.clone());
    let api = Api::<Kustomization>::namespaced(client.clone(), &n);

    let out = sluice(&["suspend", "kustomization", "apps", "-n", &n]).expect(0);
    assert!(
        out.stderr.contains("kustomization suspended"),
        "{}",
        out.stderr
    );
    assert_eq!(api.get("apps").await.unwrap().spec.suspend, Some(true));
    let out = sluice(&["get", "ks", "apps", "-n", &n, "-o", "json"]).expect(0);
    assert!(out.stdout.contains("\"suspended\": true"), "{}", out.stdout);

    // A suspended object is not reconciled.
    let out = sluice(&["reconcile", "ks", "apps", "-n", &n]).expect(1);
    assert!(out.stderr.contains("is suspended"), "{}", out.stderr);
    assert!(
        out.stderr.contains("sluice resume kustomization apps"),
        "{}",
        out.stderr
    );

    let out = sluice(&["resume", "ks", "apps", "-n", &n]).expect(0);
    assert!(
        out.stderr.contains("kustomization resumed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("applied revision"), "{}", out.stderr);
    let ks = api.get("apps").await.unwrap();
    assert_eq!(ks.spec.suspend, None);

    sluice(&["suspend", "source", "git", "repo", "-n", &n]).expect(0);
    sluice(&["resume", "source", "git", "repo", "-n", &n, "--wait=false"]).expect(0);
    ns.delete().await;
}

#[tokio::test]
async fn export_prints_clean_yaml() {
    let (client, ns) = setup("export").await;
    let n = ns.name();
    git_repository(&client, n, "repo").await;
    kustomization(&client, n, "apps", "repo", &["infra"]).await;
    set_ready(&client, "Kustomization", n, "apps", true, "ok").await;
    let out = sluice(&["export", "kustomization", "apps", "-n", n]).expect(0);
    assert!(out.stdout.starts_with("---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("status"), "{}", out.stdout);
    assert!(!out.stdout.contains("resourceVersion"), "{}", out.stdout);
    assert!(!out.stdout.contains("managedFields"), "{}", out.stdout);
    let doc: Value = serde_norway::from_str(out.stdout.trim_start_matches("---\n")).unwrap();
    assert_eq!(doc["spec"]["dependsOn"][0]["name"], "infra");

    let out = sluice(&["export", "source", "git", "--all", "-n", n]).expect(0);
    assert!(
        out.stdout.contains("url: https://example.invalid/repo.git"),
        "{}",
        out.stdout
    );
    sluice(&["export", "ks", "-n", n]).expect(1);
    ns.delete().await;
}

#[tokio::test]
async fn events_for_an_object() {
    let (client, ns) = setup("events").await;
    let n = ns.name();
    kustomization(&client, n, "apps", "repo", &[]).await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), n);
    let event = event(
        n,
        "apps.1",
        "apps",
        "ReconciliationSucceeded",
        "Reconciliation finished in 1s",
    );
    events
        .create(&Default::default(), &serde_json::from_value(event).unwrap())
        .await
        .unwrap();
    let out = sluice(&["events", "-n", n, "--for", "Kustomization/apps"]).expect(0);
    assert!(
        out.stdout.contains("ReconciliationSucceeded"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Kustomization/apps"), "{}", out.stdout);
    let out = sluice(&["events", "-n", n, "--for", "ks/other"]).expect(0);
    assert!(
        !out.stdout.contains("ReconciliationSucceeded"),
        "{}",
        out.stdout
    );
    let out = sluice(&["events", "-n", n, "-o", "json"]).expect(0);
    assert!(
        out.stdout
            .contains("\"reason\": \"ReconciliationSucceeded\""),
        "{}",
        out.stdout
    );
    ns.delete().await;
}

#[tokio::test]
async fn why_walks_a_dependency_chain() {
    let (client, ns) = setup("why-deps").await;
    let n = ns.name();
    git_repository(&client, n, "repo").await;
    set_ready(&client, "GitRepository", n, "repo", true, "stored artifact").await;
    kustomization(&client, n, "apps", "repo", &["core"]).await;
    kustomization(&client, n, "core", "repo", &["prometheus-crds"]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "apps",
        false,
        &format!("dependency '{n}/core' is not ready"),
    )
    .await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "core",
        false,
        &format!("dependency '{n}/prometheus-crds' is not ready"),
    )
    .await;

    let out = sluice(&["why", "kustomization/apps", "-n", n]).expect(1);
    let expected = format!(
        "root cause: apps → core → prometheus-crds: Kustomization {n}/prometheus-crds not found"
    );
    assert!(out.stdout.contains(&expected), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "✗ Kustomization {n}/apps: dependency '{n}/core' is not ready"
        )),
        "{}",
        out.stdout
    );

    // Three levels, the last one present but failing on its own.
    kustomization(&client, n, "prometheus-crds", "repo", &[]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "prometheus-crds",
        false,
        "kustomize build failed: accumulating resources",
    )
    .await;
    let out = sluice(&["why", "ks/apps", "-n", n, "-o", "json"]).expect(1);
    let why: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(why["steps"].as_array().unwrap().len(), 3, "{why}");
    assert_eq!(
        why["summary"],
        format!(
            "apps → core → prometheus-crds: Kustomization {n}/prometheus-crds: kustomize build failed: accumulating resources"
        )
    );

    // Its source missing.
    kustomization(&client, n, "orphan", "nowhere", &[]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "orphan",
        false,
        &format!("Source 'GitRepository/{n}/nowhere' not found"),
    )
    .await;
    let out = sluice(&["why", "ks/orphan", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "root cause: orphan → nowhere: GitRepository {n}/nowhere not found"
        )),
        "{}",
        out.stdout
    );

    // Ready: exit 0.
    set_ready(
        &client,
        "Kustomization",
        n,
        "prometheus-crds",
        true,
        "Applied revision: main@sha1:0123",
    )
    .await;
    let out = sluice(&["why", "ks/prometheus-crds", "-n", n]).expect(0);
    assert!(out.stdout.contains("is ready"), "{}", out.stdout);
    ns.delete().await;
}

#[tokio::test]
async fn why_explains_a_pending_pod() {
    let (client, ns) = setup("why-pod").await;
    let n = ns.name();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), n);
    let pvc = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "memos-data", "namespace": n},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-hostpath-missing", "resources": {"requests": {"storage": "1Gi"}}},
    });
    pvcs.patch(
        "memos-data",
        &PatchParams::apply("sluice-test"),
        &Patch::Apply(&pvc),
    )
    .await
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "memos", "namespace": n},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "memos"}},
            "template": {
                "metadata": {"labels": {"app": "memos"}},
                "spec": {
                    "containers": [{"name": "memos", "image": "neosmemo/memos:stable", "volumeMounts": [{"name": "data", "mountPath": "/var/opt/memos"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "memos-data"}}],
                },
            },
        },
    });
    deployments
        .patch(
            "memos",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&deploy),
        )
        .await
        .unwrap();

    // The scheduler keeps the Pod Pending; wait until it says so.
    let mut last = String::new();
    for _ in 0..120 {
        let out = sluice(&["why", "deployment/memos", "-n", n]);
        last = format!("{}\n{}", out.stdout, out.stderr);
        if out.code == 1 && last.contains("StorageClass \"local-hostpath-missing\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(last.contains("root cause: memos: Deployment"), "{last}");
    assert!(last.contains("0/1"), "{last}");
    assert!(last.contains("→ Pod memos-"), "{last}");
    assert!(last.contains("Pending"), "{last}");
    assert!(last.contains("PVC memos-data"), "{last}");
    assert!(
        last.contains("StorageClass \"local-hostpath-missing\" does not exist"),
        "{last}"
    );

    // Through a Kustomization that applied it.
    kustomization(&client, n, "apps", "repo", &[]).await;
    git_repository(&client, n, "repo").await;
    set_ready(&client, "GitRepository", n, "repo", true, "stored artifact").await;
    let generation = generation(&client, "Kustomization", n, "apps").await;
    write_status(&client, "Kustomization", n, "apps", json!({
        "observedGeneration": generation,
        "conditions": [condition("False", "HealthCheckFailed", "health check failed after 5m0s: timeout waiting for: [Deployment/memos status: 'InProgress']", generation)],
        "inventory": {"entries": [
            {"id": format!("{n}_memos-data__PersistentVolumeClaim"), "v": "v1"},
            {"id": format!("{n}_memos_apps_Deployment"), "v": "v1"},
        ]},
    })).await;
    let out = sluice(&["why", "ks/apps", "-n", n]).expect(1);
    assert!(out.stdout.contains("root cause: apps → "), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("StorageClass \"local-hostpath-missing\" does not exist"),
        "{}",
        out.stdout
    );

    // Through a HelmRelease that installed it, itself applied by a Kustomization.
    source_object(
        &client,
        "OCIRepository",
        n,
        "charts",
        json!({"url": "oci://registry.example/memos", "interval": "10m"}),
    )
    .await;
    set_ready(
        &client,
        "OCIRepository",
        n,
        "charts",
        true,
        "stored artifact",
    )
    .await;
    helm_release(&client, n, "memos", "charts", json!({})).await;
    let hr_generation = support::generation(&client, "HelmRelease", n, "memos").await;
    write_status(&client, "HelmRelease", n, "memos", json!({
        "observedGeneration": hr_generation,
        "conditions": [condition("False", "InstallFailed", "Helm install failed for release memos/memos with chart memos@1.0.0: timeout waiting for: [Deployment/memos status: 'InProgress']", hr_generation)],
        "inventory": {"entries": [
            {"id": format!("{n}_memos-data__PersistentVolumeClaim"), "v": "v1"},
            {"id": format!("{n}_memos_apps_Deployment"), "v": "v1"},
        ]},
    })).await;
    kustomization(&client, n, "platform", "repo", &[]).await;
    let ks_generation = support::generation(&client, "Kustomization", n, "platform").await;
    write_status(&client, "Kustomization", n, "platform", json!({
        "observedGeneration": ks_generation,
        "conditions": [condition("False", "HealthCheckFailed", "health check failed: [HelmRelease/memos status: 'Failed']", ks_generation)],
        "inventory": {"entries": [
            {"id": format!("{n}_memos_helm.toolkit.fluxcd.io_HelmRelease"), "v": "v2"},
        ]},
    })).await;
    let out = sluice(&["why", "ks/platform", "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains("root cause: platform → memos → memos-data: PVC"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("→ HelmRelease {n}/memos: Helm install failed")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("StorageClass \"local-hostpath-missing\" does not exist"),
        "{}",
        out.stdout
    );

    // A HelmRelease's own causes: its chart source, a valuesFrom object.
    helm_release(&client, n, "nochart", "absent", json!({})).await;
    set_ready(
        &client,
        "HelmRelease",
        n,
        "nochart",
        false,
        "could not get Source object",
    )
    .await;
    let out = sluice(&["why", "hr/nochart", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "root cause: nochart → absent: OCIRepository {n}/absent not found"
        )),
        "{}",
        out.stdout
    );
    helm_release(
        &client,
        n,
        "novalues",
        "charts",
        json!({"valuesFrom": [
            {"kind": "ConfigMap", "name": "maybe", "optional": true},
            {"kind": "Secret", "name": "memos-values"},
        ]}),
    )
    .await;
    set_ready(
        &client,
        "HelmRelease",
        n,
        "novalues",
        false,
        "could not get values",
    )
    .await;
    let out = sluice(&["why", "helmrelease/novalues", "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("Secret {n}/memos-values not found")),
        "{}",
        out.stdout
    );
    ns.delete().await;
}

#[tokio::test]
async fn why_names_what_should_give_a_load_balancer_its_address() {
    let (client, ns) = setup("why-lb").await;
    let n = ns.name();
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), n);
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "traefik", "namespace": n},
        "spec": {"type": "LoadBalancer", "selector": {"app": "traefik"}, "ports": [{"port": 80}]},
    });
    services
        .patch(
            "traefik",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&svc),
        )
        .await
        .unwrap();
    // No load balancer on the test control plane: not ready, and why.
    let out = sluice(&["why", "svc/traefik", "-n", n]).expect(1);
    assert!(
        out.stdout.contains("no load balancer assigned an address")
            && out.stdout.contains("servicelb"),
        "{}",
        out.stdout
    );
    // Given an address, it is.
    services
        .patch_status(
            "traefik",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.240"}]}}}),
            ),
        )
        .await
        .unwrap();
    sluice(&["why", "service/traefik", "-n", n]).expect(0);
    ns.delete().await;
}

#[tokio::test]
async fn errors_are_one_line_with_a_hint() {
    let out = sluice(&["why", "nonsense", "-n", "x"]).expect(1);
    assert!(
        out.stderr.starts_with("✗ invalid object \"nonsense\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    let out = sluice_offline(
        &["get", "ks", "--kubeconfig", "/nonexistent/kubeconfig"],
        &[],
    )
    .expect(1);
    assert!(
        out.stderr
            .contains("cannot read kubeconfig /nonexistent/kubeconfig"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let out = sluice_offline(&["completion", shell], &[]).expect(0);
        assert!(out.stdout.contains("sluice"), "{shell}");
        assert!(out.stdout.contains("reconcile"), "{shell}");
    }
}

#[tokio::test]
async fn check_finds_k3s_addons_and_flux_controllers() {
    let (client, ns) = setup("check").await;
    let n = ns.name();
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), n);
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": n, "annotations": {
            "objectset.rio.cattle.io/hash": "bce283298811743a0386ab510f2f67ef74240c57",
            "objectset.rio.cattle.io/owner-name": "coredns",
            "objectset.rio.cattle.io/owner-namespace": "kube-system",
        }},
        "data": {"Corefile": ".:53 {}"},
    });
    configmaps
        .patch("coredns", &PatchParams::apply("k3s"), &Patch::Apply(&cm))
        .await
        .unwrap();
    kustomization(&client, n, "infra", "repo", &[]).await;
    let generation = generation(&client, "Kustomization", n, "infra").await;
    write_status(&client, "Kustomization", n, "infra", json!({
        "observedGeneration": generation,
        "conditions": [condition("True", "ReconciliationSucceeded", "Applied revision: main@sha1:0123", generation)],
        "inventory": {"entries": [{"id": format!("{n}_coredns__ConfigMap"), "v": "v1"}]},
    })).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
    let flux = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "kustomize-controller", "namespace": n},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "kustomize-controller"}},
            "template": {"metadata": {"labels": {"app": "kustomize-controller"}}, "spec": {"containers": [{"name": "manager", "image": "ghcr.io/fluxcd/kustomize-controller:v1.5.1"}]}},
        },
    });
    deployments
        .patch(
            "kustomize-controller",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&flux),
        )
        .await
        .unwrap();

    // Flux's helm-controller and notification-controller work beside sluice.
    for name in ["helm-controller", "notification-controller"] {
        let other = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": n},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "manager", "image": format!("ghcr.io/fluxcd/{name}:v1.4.0")}]}},
            },
        });
        deployments
            .patch(
                name,
                &PatchParams::apply("sluice-test"),
                &Patch::Apply(&other),
            )
            .await
            .unwrap();
    }

    let out = sluice(&["check", "-n", n]).expect(1);
    assert!(out.stdout.contains("✔ Kubernetes v1."), "{}", out.stdout);
    for crd in [
        "ocirepositories.source.toolkit.fluxcd.io",
        "helmrepositories.source.toolkit.fluxcd.io",
        "helmcharts.source.toolkit.fluxcd.io",
        "buckets.source.toolkit.fluxcd.io",
    ] {
        assert!(
            out.stdout.contains(&format!("✔ CRD {crd} serves v1")),
            "{}",
            out.stdout
        );
    }
    for name in ["helm-controller", "notification-controller"] {
        assert!(
            out.stdout.contains(&format!(
                "✔ Flux's {name} is running in {n} (ghcr.io/fluxcd/{name}:v1.4.0) beside sluice"
            )),
            "{}",
            out.stdout
        );
        assert!(
            !out.stdout.contains(&format!("✗ Flux's {name}")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains("✔ CRD kustomizations.kustomize.toolkit.fluxcd.io serves v1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("✗ controller Deployment {n}/sluice not found")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!("✗ Flux's kustomize-controller is running in {n} (ghcr.io/fluxcd/kustomize-controller:v1.5.1)")), "{}", out.stdout);
    let k3s = format!(
        "✗ ConfigMap {n}/coredns is a k3s packaged add-on (add-on coredns) and is also managed by Kustomization {n}/infra — start k3s with --disable=coredns"
    );
    assert!(out.stdout.contains(&k3s), "{}", out.stdout);

    // With sluice's own notifications on, Flux's notification-controller is a conflict; its
    // helm-controller still is not (sluice's HelmRelease controller is off).
    let sluice_deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sluice", "namespace": n},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "sluice"}},
            "template": {"metadata": {"labels": {"app": "sluice"}}, "spec": {"containers": [{
                "name": "manager", "image": "ghcr.io/sluice/sluice:test",
                "args": ["controller", "--notification", "--receiver-addr=:9292"]}]}},
        },
    });
    deployments
        .patch(
            "sluice",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&sluice_deployment),
        )
        .await
        .unwrap();
    let out = sluice(&["check", "-n", n]).expect(1);
    assert!(out.stdout.contains(&format!("✗ Flux's notification-controller is running in {n} (ghcr.io/fluxcd/notification-controller:v1.4.0) and sluice runs its own (--notification)")), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("✔ Flux's helm-controller is running in {n}")),
        "{}",
        out.stdout
    );

    let out = sluice(&["check", "--pre"]).expect(0);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    ns.delete().await;
}

#[tokio::test]
async fn logs_without_a_controller_says_where_to_look() {
    let (_client, ns) = setup("logs").await;
    let out = sluice(&["logs", "-n", ns.name()]).expect(1);
    assert!(
        out.stderr.contains(&format!(
            "no sluice controller Pods in namespace {}",
            ns.name()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("sluice install"), "{}", out.stderr);
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes() {
    let (client, ns) = setup("watch").await;
    let n = ns.name().to_string();
    kustomization(&client, &n, "apps", "repo", &[]).await;
    let watch = Streaming::spawn(&["get", "all", "--watch", "-n", &n]);
    let wait = Duration::from_secs(20);
    let first = watch.next_matching(wait, &|l| l.contains("kustomization/apps"));
    assert!(
        first
            .as_deref()
            .is_some_and(|l| l.contains("waiting to be reconciled")),
        "{first:?}"
    );
    set_ready(
        &client,
        "Kustomization",
        &n,
        "apps",
        true,
        "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567",
    )
    .await;
    let update = watch.next_matching(wait, &|l| {
        l.contains("kustomization/apps") && l.contains("Applied revision")
    });
    drop(watch);
    assert!(update.is_some_and(|l| l.contains("True")));
    ns.delete().await;
}

/// A core/v1 Event about Kustomization `ks` in `ns`.
fn event(ns: &str, name: &str, ks: &str, reason: &str, message: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "Kustomization", "name": ks, "namespace": ns,
                           "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "reason": reason,
        "message": message,
        "type": "Normal",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "source": {"component": "kustomize-controller"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_watch_prints_new_events_for_the_object() {
    let (client, ns) = setup("events-w").await;
    let n = ns.name().to_string();
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &n);
    let create = |v: Value| {
        let events = events.clone();
        async move {
            events
                .create(&Default::default(), &serde_json::from_value(v).unwrap())
                .await
                .unwrap();
        }
    };
    create(event(
        &n,
        "old.1",
        "apps",
        "Progressing",
        "listed before the watch",
    ))
    .await;
    let watch = Streaming::spawn(&["events", "-w", "-n", &n, "--for", "Kustomization/apps"]);
    let wait = Duration::from_secs(20);
    let listed = watch.next_matching(wait, &|l| l.contains("listed before the watch"));
    assert!(listed.is_some(), "the existing event was not listed");
    create(event(
        &n,
        "other.1",
        "other",
        "Progressing",
        "about another object",
    ))
    .await;
    create(event(
        &n,
        "new.1",
        "apps",
        "ReconciliationSucceeded",
        "arrived while watching",
    ))
    .await;
    let line = watch.next_matching(wait, &|l| {
        l.contains("about another object") || l.contains("arrived while watching")
    });
    // The filter holds while watching, and the new event is printed once.
    assert!(
        line.as_deref().is_some_and(
            |l| l.contains("arrived while watching") && l.contains("ReconciliationSucceeded")
        ),
        "{line:?}"
    );
    let again = watch.next_matching(Duration::from_secs(2), &|l| {
        l.contains("arrived while watching") || l.contains("listed before the watch")
    });
    assert!(again.is_none(), "printed twice: {again:?}");
    drop(watch);
    ns.delete().await;
}

#[tokio::test]
async fn why_a_source_names_its_missing_secret() {
    let (client, ns) = setup("why-git").await;
    let n = ns.name();
    git_repository(&client, n, "private").await;
    let api: Api<sluice_api::GitRepository> = Api::namespaced(client.clone(), n);
    api.patch(
        "private",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"secretRef": {"name": "git-credentials"}}})),
    )
    .await
    .unwrap();
    set_ready(
        &client,
        "GitRepository",
        n,
        "private",
        false,
        &format!(
            "failed to get secret '{n}/git-credentials': secrets \"git-credentials\" not found"
        ),
    )
    .await;
    kustomization(&client, n, "apps", "private", &[]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "apps",
        false,
        &format!("Source 'GitRepository/{n}/private' is not ready"),
    )
    .await;
    let out = sluice(&["why", "ks/apps", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "→ GitRepository {n}/private: failed to get secret"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "root cause: apps → private: Secret {n}/git-credentials not found"
        )),
        "{}",
        out.stdout
    );
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_waits_out_a_dependency_that_is_reconciling() {
    let (client, ns) = setup("reconcile-dep").await;
    let n = ns.name().to_string();
    kustomization(&client, &n, "apps", "repo", &["core"]).await;
    let (c, namespace) = (client.clone(), n.clone());
    let controller = tokio::spawn(async move {
        let api = Api::<Kustomization>::namespaced(c.clone(), &namespace);
        let token = loop {
            let ks = api.get("apps").await.unwrap();
            if let Some(t) = ks
                .metadata
                .annotations
                .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt").cloned())
            {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let generation = generation(&c, "Kustomization", &namespace, "apps").await;
        write_status(&c, "Kustomization", &namespace, "apps", json!({
            "observedGeneration": generation,
            "lastHandledReconcileAt": token,
            "conditions": [condition("False", "DependencyNotReady", &format!("dependency '{namespace}/core' is not ready"), generation)],
        })).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        set_ready(
            &c,
            "Kustomization",
            &namespace,
            "apps",
            true,
            "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567",
        )
        .await;
    });
    let out = sluice(&["reconcile", "ks", "apps", "-n", &n, "--timeout", "30s"]).expect(0);
    assert!(
        out.stderr
            .contains("applied revision main@sha1:0123456789abcdef"),
        "{}",
        out.stderr
    );
    controller.await.unwrap();
    ns.delete().await;
}

/// The source kinds sluice serves beside GitRepository: a HelmRepository
/// of each type and a HelmChart from it, an OCIRepository.
async fn helm_and_oci_sources(client: &kube::Client, n: &str) {
    oci_repository(client, n, "podinfo").await;
    source_object(
        client,
        "HelmRepository",
        n,
        "charts",
        json!({"url": "https://charts.example.invalid", "interval": "10m"}),
    )
    .await;
    source_object(
        client,
        "HelmRepository",
        n,
        "ghcr",
        json!({"url": "oci://ghcr.io/stefanprodan/charts", "type": "oci", "interval": "10m"}),
    )
    .await;
    source_object(
        client,
        "HelmChart",
        n,
        "podinfo",
        json!({"chart": "podinfo", "version": "6.x", "interval": "10m",
               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    )
    .await;
}

#[tokio::test]
async fn get_lists_oci_helm_and_chart_sources() {
    let (client, ns) = setup("get-sources").await;
    let n = ns.name();
    helm_and_oci_sources(&client, n).await;
    git_repository(&client, n, "repo").await;
    kustomization_from(&client, n, "apps", "OCIRepository", "podinfo", &[]).await;
    for (kind, name, message) in [
        (
            "OCIRepository",
            "podinfo",
            "stored artifact for digest 'latest@sha256:0123'",
        ),
        (
            "HelmRepository",
            "charts",
            "stored artifact: revision 'sha256:89ab'",
        ),
        (
            "HelmChart",
            "podinfo",
            "pulled 'podinfo' chart with version '6.5.4'",
        ),
    ] {
        set_ready(&client, kind, n, name, true, message).await;
    }

    let out = sluice(&["get", "sources", "oci", "-n", n]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    for column in ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"] {
        assert!(lines[0].contains(column), "{}", lines[0]);
    }
    assert!(
        lines[1].starts_with("podinfo ")
            && lines[1].contains(revision_of("OCIRepository"))
            && lines[1].contains("False")
            && lines[1].contains("True")
            && lines[1].contains("stored artifact for digest"),
        "{}",
        lines[1]
    );

    // A HelmRepository of type oci has no reconciler: ready, as flux prints it.
    let out = sluice(&["get", "sources", "helm", "-n", n, "-o", "json"]).expect(0);
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert_eq!(rows[0]["name"], "charts");
    assert_eq!(rows[0]["revision"], revision_of("HelmRepository"));
    assert_eq!(rows[1]["name"], "ghcr");
    assert_eq!(rows[1]["ready"], "True");
    assert_eq!(rows[1]["message"], "Helm repository is Ready");

    let out = sluice(&["get", "sources", "chart", "podinfo", "-n", n]).expect(0);
    assert!(
        out.stdout.contains("6.5.4") && out.stdout.contains("pulled 'podinfo' chart"),
        "{}",
        out.stdout
    );
    let out = sluice(&["get", "sources", "chart", "missing", "-n", n]).expect(1);
    assert!(
        out.stderr
            .contains(&format!("HelmChart {n}/missing not found")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("sluice get sources chart -A"),
        "{}",
        out.stderr
    );
    sluice(&["get", "sources", "oci", "podinfo", "-A"]).expect(1);

    // Every source kind, each with its own table, prefixed by the kind.
    let out = sluice(&["get", "sources", "all", "-n", n]).expect(0);
    for name in [
        "ocirepository/podinfo",
        "gitrepository/repo",
        "helmrepository/charts",
        "helmrepository/ghcr",
        "helmchart/podinfo",
    ] {
        assert!(out.stdout.contains(name), "{name}: {}", out.stdout);
    }
    assert!(!out.stdout.contains("kustomization/"), "{}", out.stdout);
    assert_eq!(
        out.stdout.matches("NAME").count(),
        4,
        "a table per kind: {}",
        out.stdout
    );
    let out = sluice(&["get", "all", "-n", n]).expect(0);
    for name in [
        "ocirepository/podinfo",
        "helmchart/podinfo",
        "kustomization/apps",
    ] {
        assert!(out.stdout.contains(name), "{name}: {}", out.stdout);
    }
    let out = sluice(&["get", "all", "-A", "-o", "json"]).expect(0);
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "OCIRepository" && r["namespace"] == n && r["name"] == "podinfo"),
        "{rows}"
    );
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_suspend_and_resume_oci_helm_and_chart_sources() {
    let (client, ns) = setup("reconcile-sources").await;
    let n = ns.name().to_string();
    helm_and_oci_sources(&client, &n).await;
    kustomization_from(&client, &n, "apps", "OCIRepository", "podinfo", &[]).await;
    let _controller = FakeController::start(client.clone(), n.clone());

    for (what, kind) in [
        ("oci", "OCIRepository"),
        ("helm", "HelmRepository"),
        ("chart", "HelmChart"),
    ] {
        let name = if what == "helm" { "charts" } else { "podinfo" };
        let out = sluice(&["reconcile", "source", what, name, "-n", &n]).expect(0);
        assert!(
            out.stderr
                .contains(&format!("annotating {kind} {name} in {n} namespace")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("fetched revision {}", revision_of(kind))),
            "{}",
            out.stderr
        );
        let obj = object(&client, kind, &n, name).await;
        assert!(
            obj["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].is_string(),
            "{obj}"
        );

        let out = sluice(&["suspend", "source", what, name, "-n", &n]).expect(0);
        assert!(
            out.stderr.contains(&format!("source {what} suspended")),
            "{}",
            out.stderr
        );
        assert_eq!(
            object(&client, kind, &n, name).await["spec"]["suspend"],
            true
        );
        let out = sluice(&["reconcile", "source", what, name, "-n", &n]).expect(1);
        assert!(
            out.stderr
                .contains(&format!("{kind} {n}/{name} is suspended")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("sluice resume source {what} {name} -n {n}")),
            "{}",
            out.stderr
        );
        let out = sluice(&["resume", "source", what, name, "-n", &n]).expect(0);
        assert!(
            out.stderr.contains(&format!("source {what} resumed")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("fetched revision {}", revision_of(kind))),
            "{}",
            out.stderr
        );
        assert!(object(&client, kind, &n, name).await["spec"]["suspend"].is_null());
    }

    // A HelmRepository of type oci has nothing to reconcile (as in Flux).
    let out = sluice(&[
        "reconcile",
        "source",
        "helm",
        "ghcr",
        "-n",
        &n,
        "--timeout",
        "5s",
    ])
    .expect(0);
    assert!(
        out.stderr
            .contains("reconciliation not supported by the object"),
        "{}",
        out.stderr
    );
    assert!(
        object(&client, "HelmRepository", &n, "ghcr").await["metadata"]["annotations"]
            ["reconcile.fluxcd.io/requestedAt"]
            .is_null()
    );

    // --with-source follows a Kustomization to its OCIRepository.
    let out = sluice(&["reconcile", "ks", "apps", "--with-source", "-n", &n]).expect(0);
    assert!(
        out.stderr.contains(&format!(
            "annotating OCIRepository podinfo in {n} namespace"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("applied revision main@sha1:0123456789abcdef"),
        "{}",
        out.stderr
    );
    sluice(&["reconcile", "source", "oci", "missing", "-n", &n]).expect(1);
    ns.delete().await;
}

#[tokio::test]
async fn export_prints_oci_helm_and_chart_sources() {
    let (client, ns) = setup("export-sources").await;
    let n = ns.name();
    helm_and_oci_sources(&client, n).await;
    set_ready(&client, "OCIRepository", n, "podinfo", true, "stored").await;

    let out = sluice(&["export", "source", "oci", "podinfo", "-n", n]).expect(0);
    assert!(
        out.stdout.starts_with(
            "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: podinfo\n"
        ),
        "{}",
        out.stdout
    );
    for absent in ["status", "resourceVersion", "managedFields", "uid"] {
        assert!(!out.stdout.contains(absent), "{absent}: {}", out.stdout);
    }
    let doc: Value = serde_norway::from_str(out.stdout.trim_start_matches("---\n")).unwrap();
    assert_eq!(doc["spec"]["url"], "oci://registry.invalid/manifests/app");
    assert_eq!(doc["spec"]["ref"]["tag"], "latest");

    let out = sluice(&["export", "source", "helm", "--all", "-n", n]).expect(0);
    assert_eq!(
        out.stdout.matches("kind: HelmRepository").count(),
        2,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("type: oci"), "{}", out.stdout);
    let out = sluice(&["export", "source", "chart", "podinfo", "-n", n]).expect(0);
    let doc: Value = serde_norway::from_str(out.stdout.trim_start_matches("---\n")).unwrap();
    assert_eq!(doc["kind"], "HelmChart");
    assert_eq!(doc["spec"]["sourceRef"]["kind"], "HelmRepository");
    assert_eq!(doc["spec"]["version"], "6.x");
    let out = sluice(&["export", "source", "oci", "nothing", "-n", n]).expect(1);
    assert!(
        out.stderr
            .contains(&format!("OCIRepository {n}/nothing not found")),
        "{}",
        out.stderr
    );
    sluice(&["export", "source", "chart", "-n", n]).expect(1);
    ns.delete().await;
}

#[tokio::test]
async fn why_follows_oci_repositories_and_helm_charts() {
    let (client, ns) = setup("why-sources").await;
    let n = ns.name();
    helm_and_oci_sources(&client, n).await;

    // A Kustomization whose OCIRepository is missing.
    kustomization_from(&client, n, "orphan", "OCIRepository", "nowhere", &[]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "orphan",
        false,
        &format!("Source 'OCIRepository/{n}/nowhere' not found"),
    )
    .await;
    let out = sluice(&["why", "ks/orphan", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "root cause: orphan → nowhere: OCIRepository {n}/nowhere not found"
        )),
        "{}",
        out.stdout
    );

    // ... whose OCIRepository fails, naming its missing Secret.
    source_object(
        &client,
        "OCIRepository",
        n,
        "podinfo",
        json!({"url": "oci://registry.invalid/manifests/app", "interval": "1m",
               "ref": {"tag": "latest"}, "secretRef": {"name": "registry-auth"}}),
    )
    .await;
    set_ready(
        &client,
        "OCIRepository",
        n,
        "podinfo",
        false,
        &format!("failed to get secret '{n}/registry-auth': secrets \"registry-auth\" not found"),
    )
    .await;
    kustomization_from(&client, n, "apps", "OCIRepository", "podinfo", &[]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "apps",
        false,
        &format!("Source 'OCIRepository/{n}/podinfo' is not ready, artifact not found"),
    )
    .await;
    let out = sluice(&["why", "ks/apps", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "→ OCIRepository {n}/podinfo: failed to get secret"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "root cause: apps → podinfo: Secret {n}/registry-auth not found"
        )),
        "{}",
        out.stdout
    );
    let out = sluice(&["why", "ocirepository/podinfo", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "✗ OCIRepository {n}/podinfo: failed to get secret"
        )),
        "{}",
        out.stdout
    );

    // A HelmChart whose HelmRepository cannot fetch its index.
    let index_failure = "failed to fetch Helm repository index: failed to cache index to temporary file: failed to fetch https://charts.example.invalid/index.yaml : 401 Unauthorized";
    set_ready(&client, "HelmRepository", n, "charts", false, index_failure).await;
    set_ready(
        &client,
        "HelmChart",
        n,
        "podinfo",
        false,
        "failed to get chart repository: no artifact",
    )
    .await;
    let out = sluice(&["why", "helmchart/podinfo", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "✗ HelmChart {n}/podinfo: failed to get chart repository: no artifact"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "root cause: podinfo → charts: HelmRepository {n}/charts: {index_failure}"
        )),
        "{}",
        out.stdout
    );
    let out = sluice(&["why", "hc/podinfo", "-n", n, "-o", "json"]).expect(1);
    let why: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(why["steps"].as_array().unwrap().len(), 2, "{why}");
    assert_eq!(why["steps"][1]["kind"], "HelmRepository");

    // From a GitRepository that does not exist.
    source_object(
        &client,
        "HelmChart",
        n,
        "local",
        json!({"chart": "./charts/app", "interval": "10m",
               "sourceRef": {"kind": "GitRepository", "name": "monorepo"}}),
    )
    .await;
    set_ready(
        &client,
        "HelmChart",
        n,
        "local",
        false,
        "failed to get source: GitRepository.source.toolkit.fluxcd.io \"monorepo\" not found",
    )
    .await;
    let out = sluice(&["why", "helmchart/local", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "root cause: local → monorepo: GitRepository {n}/monorepo not found"
        )),
        "{}",
        out.stdout
    );

    // From a static OCI HelmRepository: the chart's own failure is the cause.
    source_object(
        &client,
        "HelmChart",
        n,
        "from-oci",
        json!({"chart": "podinfo", "interval": "10m",
               "sourceRef": {"kind": "HelmRepository", "name": "ghcr"}}),
    )
    .await;
    set_ready(
        &client,
        "HelmChart",
        n,
        "from-oci",
        false,
        "chart pull error: failed to get chart version for remote reference: not found",
    )
    .await;
    let out = sluice(&["why", "helmchart/from-oci", "-n", n]).expect(1);
    assert!(
        out.stdout.contains(&format!(
            "root cause: HelmChart {n}/from-oci: chart pull error"
        )),
        "{}",
        out.stdout
    );

    // Ready: exit 0.
    set_ready(
        &client,
        "HelmChart",
        n,
        "podinfo",
        true,
        "pulled 'podinfo' chart with version '6.5.4'",
    )
    .await;
    let out = sluice(&["why", "helmchart/podinfo", "-n", n]).expect(0);
    assert!(out.stdout.contains("is ready"), "{}", out.stdout);
    ns.delete().await;
}

#[tokio::test]
async fn helm_release_verbs() {
    use sluice_api::HelmRelease;
    let (client, ns) = setup("hr").await;
    let n = ns.name().to_string();
    let api = Api::<HelmRelease>::namespaced(client.clone(), &n);
    let hr: HelmRelease = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": n},
        "spec": {"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
    }))
    .unwrap();
    api.create(&Default::default(), &hr).await.unwrap();
    api.patch_status(
        "podinfo",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded",
                "message": "Helm install succeeded for release x/podinfo.v1 with chart podinfo@6.7.1+0f5d0c8e2a0c",
                "lastTransitionTime": "2026-12-02T10:00:00Z"}],
            "history": [{"name": "podinfo", "namespace": n, "version": 1, "status": "deployed",
                "chartName": "podinfo", "chartVersion": "6.7.1+0f5d0c8e2a0c", "configDigest": "sha256:0",
                "digest": "sha256:1", "firstDeployed": "2026-12-02T10:00:00Z",
                "lastDeployed": "2026-12-02T10:00:00Z"}],
        }})),
    )
    .await
    .unwrap();

    let out = sluice(&["get", "hr", "-n", &n]).expect(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[1].starts_with("podinfo ")
            && lines[1].contains("6.7.1+0f5d0c8e2a0c")
            && lines[1].contains("True")
            && lines[1].contains("Helm install succeeded"),
        "{}",
        lines[1]
    );
    let out = sluice(&["get", "all", "-n", &n]).expect(0);
    assert!(out.stdout.contains("helmrelease/podinfo"), "{}", out.stdout);

    let out = sluice(&["export", "hr", "podinfo", "-n", &n]).expect(0);
    assert!(
        out.stdout.starts_with(
            "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("status"), "{}", out.stdout);

    sluice(&["suspend", "hr", "podinfo", "-n", &n]).expect(0);
    assert_eq!(api.get("podinfo").await.unwrap().spec.suspend, Some(true));
    let out = sluice(&["reconcile", "hr", "podinfo", "-n", &n]).expect(1);
    assert!(
        out.stderr.contains("sluice resume helmrelease podinfo"),
        "{}",
        out.stderr
    );
    sluice(&["resume", "hr", "podinfo", "-n", &n, "--wait=false"]).expect(0);
    assert_eq!(api.get("podinfo").await.unwrap().spec.suspend, None);

    // --force and --reset set Flux's request annotations (no controller runs here: the wait
    // times out, naming what it waited for).
    let out = sluice(&[
        "reconcile",
        "hr",
        "podinfo",
        "-n",
        &n,
        "--force",
        "--reset",
        "--timeout",
        "1s",
    ])
    .expect(1);
    assert!(out.stderr.contains("timed out after 1s"), "{}", out.stderr);
    let annotations = api
        .get("podinfo")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    for key in [
        "reconcile.fluxcd.io/requestedAt",
        "reconcile.fluxcd.io/forceAt",
        "reconcile.fluxcd.io/resetAt",
    ] {
        assert!(annotations.contains_key(key), "{key}: {annotations:?}");
    }
    ns.delete().await;
}

#[tokio::test]
async fn notification_verbs() {
    let (client, ns) = setup("notify-cli").await;
    let n = ns.name();
    let out = sluice(&[
        "create",
        "alert-provider",
        "chat",
        "--type",
        "slack",
        "--channel",
        "#flux",
        "--address",
        "https://hooks.slack.com/services/T/B/x",
        "-n",
        n,
    ])
    .expect(0);
    assert!(out.stderr.contains("Provider created"), "{}", out.stderr);
    let out = sluice(&[
        "create",
        "alert",
        "on-call",
        "--provider-ref",
        "chat",
        "--event-severity",
        "error",
        "--event-source",
        "Kustomization/*",
        "--event-source",
        "HelmRelease/kube-system/traefik",
        "-n",
        n,
    ])
    .expect(0);
    assert!(out.stderr.contains("Alert created"), "{}", out.stderr);
    let alert = Api::<sluice_api::Alert>::namespaced(client.clone(), n)
        .get("on-call")
        .await
        .unwrap();
    assert_eq!(alert.spec.event_sources.len(), 2);
    assert_eq!(
        alert.spec.event_sources[1].namespace.as_deref(),
        Some("kube-system")
    );

    // --export prints the object instead.
    let out = sluice(&[
        "create",
        "alert",
        "x",
        "--provider-ref",
        "chat",
        "--event-source",
        "ks/apps",
        "--export",
        "-n",
        n,
    ])
    .expect(0);
    assert!(
        out.stdout
            .starts_with("---\napiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\n"),
        "{}",
        out.stdout
    );
    // Bad flags name the flag and change nothing.
    let out = sluice(&[
        "create",
        "alert",
        "y",
        "--provider-ref",
        "chat",
        "--event-source",
        "Pod/web",
        "-n",
        n,
    ])
    .expect(1);
    assert!(
        out.stderr.contains("--event-source \"Pod/web\""),
        "{}",
        out.stderr
    );

    // Without a notification yet; then with a failure recorded on the Alert.
    let out = sluice(&["get", "alerts", "-n", n]).expect(0);
    assert!(
        out.stdout.contains("NAME") && out.stdout.contains("PROVIDER"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no notification recorded"),
        "{}",
        out.stdout
    );
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), n);
    let failed = json!({
        "metadata": {"name": "on-call.1", "namespace": n},
        "involvedObject": {"kind": "Alert", "name": "on-call", "namespace": n,
                           "apiVersion": "notification.toolkit.fluxcd.io/v1beta3"},
        "reason": "NotificationDispatchFailed",
        "message": "failed to send notification for Kustomization/flux-system/apps: request failed with status code 404: no_team",
        "type": "Warning",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "source": {"component": "notification-controller"},
    });
    events
        .create(
            &Default::default(),
            &serde_json::from_value(failed).unwrap(),
        )
        .await
        .unwrap();
    let out = sluice(&["get", "alerts", "-n", n, "-o", "json"]).expect(0);
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "on-call");
    assert_eq!(rows[0]["detail"], "chat");
    assert_eq!(rows[0]["ready"], "False");
    assert!(
        rows[0]["message"]
            .as_str()
            .unwrap()
            .contains("status code 404"),
        "{rows}"
    );
    let out = sluice(&["get", "alert-providers", "-n", n]).expect(0);
    assert!(
        out.stdout.contains("chat") && out.stdout.contains("slack"),
        "{}",
        out.stdout
    );
    let out = sluice(&["events", "-n", n]).expect(0);
    assert!(out.stdout.contains("Alert/on-call"), "{}", out.stdout);

    // Suspend and resume.
    sluice(&["suspend", "alert", "on-call", "-n", n]).expect(0);
    let out = sluice(&["get", "alerts", "on-call", "-n", n, "-o", "json"]).expect(0);
    assert!(out.stdout.contains("\"suspended\": true"), "{}", out.stdout);
    sluice(&["resume", "alert", "on-call", "-n", n]).expect(0);
    let alert = Api::<sluice_api::Alert>::namespaced(client.clone(), n)
        .get("on-call")
        .await
        .unwrap();
    assert_eq!(alert.spec.suspend, None);
    sluice(&["suspend", "alert-provider", "absent", "-n", n]).expect(1);

    // A Receiver nothing serves: created, then the wait says why it is not ready.
    let out = sluice(&[
        "create",
        "receiver",
        "gitea",
        "--type",
        "github",
        "--event",
        "push",
        "--resource",
        "GitRepository/flux-system",
        "--secret-ref",
        "token",
        "--timeout",
        "2s",
        "-n",
        n,
    ])
    .expect(1);
    assert!(out.stderr.contains("Receiver created"), "{}", out.stderr);
    assert!(out.stderr.contains("--notification"), "{}", out.stderr);
    let out = sluice(&["get", "receivers", "-n", n]).expect(0);
    assert!(
        out.stdout.contains("gitea") && out.stdout.contains("github"),
        "{}",
        out.stdout
    );
    ns.delete().await;
}

/// The binary as it runs: `sluice controller --notification` hands the source controller's
/// events to the Alerts in process; a failing GitRepository reaches a `generic` Provider.
#[tokio::test]
async fn the_controllers_events_reach_an_alerts_provider() {
    let (client, ns) = setup("notify-e2e").await;
    let n = ns.name().to_string();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = {
        let got = got.clone();
        axum::Router::new().fallback(move |body: String| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push(body);
                "ok"
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, sink).await });
    for obj in [
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
               "metadata": {"name": "sink", "namespace": n},
               "spec": {"type": "generic", "address": format!("http://{addr}/flux")}}),
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
               "metadata": {"name": "sources", "namespace": n},
               "spec": {"providerRef": {"name": "sink"}, "eventSeverity": "error",
                        "eventSources": [{"kind": "GitRepository", "name": "*"}]}}),
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "unreachable", "namespace": n},
               "spec": {"url": "http://127.0.0.1:9/nothing.git", "interval": "1h", "timeout": "5s",
                        "ref": {"branch": "main"}}}),
    ] {
        let kind = obj["kind"].as_str().unwrap();
        let (group, version) = obj["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap();
        let ar = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            group, version, kind,
        ));
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &n, &ar);
        api.create(
            &Default::default(),
            &serde_json::from_value(obj.clone()).unwrap(),
        )
        .await
        .unwrap();
    }
    let storage = tempfile::tempdir().unwrap();
    let mut controller = std::process::Command::new(bin())
        .args([
            "controller",
            "--watch-namespace",
            &n,
            "--kustomization=false",
            "--reloader=false",
            "--notification",
            "--receiver-addr",
            "127.0.0.1:0",
            "--notification-events-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--storage-addr",
            "127.0.0.1:0",
            "--enable-leader-election=false",
            "--storage-path",
            storage.path().to_str().unwrap(),
        ])
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting sluice controller");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Some(b) = got.lock().unwrap().first().cloned() {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notification within 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = controller.kill();
    let _ = controller.wait();
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["involvedObject"]["kind"], "GitRepository");
    assert_eq!(event["involvedObject"]["name"], "unreachable");
    assert_eq!(event["severity"], "error");
    assert_eq!(event["reportingController"], "source-controller");
    assert!(
        event["message"].as_str().unwrap().contains("127.0.0.1:9"),
        "{event}"
    );
    ns.delete().await;
}

#[tokio::test]
async fn delete_stats_and_envsubst() {
    let (client, ns) = setup("delete").await;
    let n = ns.name();
    git_repository(&client, n, "repo").await;
    kustomization(&client, n, "apps", "repo", &[]).await;
    kustomization(&client, n, "infra", "repo", &[]).await;
    set_ready(
        &client,
        "Kustomization",
        n,
        "apps",
        false,
        "kustomization path not found",
    )
    .await;

    let out = sluice(&["stats", "-n", n, "-o", "json"]).expect(0);
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    let row = |kind: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["reconcilers"] == kind)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("Kustomization")["running"], 2);
    assert_eq!(row("Kustomization")["failing"], 1);
    assert_eq!(row("GitRepository")["running"], 1);
    assert_eq!(row("GitRepository")["storage"], 0);
    let out = sluice(&["stats", "-n", n]).expect(0);
    assert!(out.stdout.starts_with("RECONCILERS"), "{}", out.stdout);

    // No answer is no; `y` deletes; --silent does not ask.
    let out = sluice_stdin(&["delete", "kustomization", "apps", "-n", n], &[], "").expect(1);
    assert!(
        out.stderr
            .contains("Are you sure you want to delete this kustomization"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("aborted: Kustomization {n}/apps was not deleted")),
        "{}",
        out.stderr
    );
    let api = Api::<Kustomization>::namespaced(client.clone(), n);
    assert!(api.get_opt("apps").await.unwrap().is_some());
    let out = sluice_stdin(&["delete", "ks", "apps", "-n", n], &[], "y\n").expect(0);
    assert!(
        out.stderr.contains("kustomization deleted"),
        "{}",
        out.stderr
    );
    assert!(api.get_opt("apps").await.unwrap().is_none());
    sluice(&["delete", "source", "git", "repo", "--silent", "-n", n]).expect(0);
    let out = sluice(&["delete", "ks", "absent", "-s", "-n", n]).expect(1);
    assert!(
        out.stderr.contains("sluice get kustomizations -A"),
        "{}",
        out.stderr
    );

    // envsubst: Flux's dialect from the environment; strict mode names the variable.
    let out = sluice_stdin(
        &["envsubst"],
        &[("CLUSTER", "edge-1")],
        "name: ${CLUSTER}\nreplicas: ${REPLICAS:=2}\n",
    )
    .expect(0);
    assert_eq!(out.stdout, "name: edge-1\nreplicas: 2\n");
    let out = sluice_stdin(&["envsubst", "--strict"], &[], "name: ${MISSING_VAR}\n").expect(1);
    assert!(out.stderr.contains("MISSING_VAR"), "{}", out.stderr);

    // version: the client always; the controller by its Deployment's image.
    let out = sluice(&["version", "--client"]).expect(0);
    assert_eq!(
        out.stdout,
        format!("sluice: v{}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = sluice(&["version", "-n", n]).expect(1);
    assert!(
        out.stderr.contains("no sluice controller in"),
        "{}",
        out.stderr
    );
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sluice", "namespace": n},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "sluice"}},
            "template": {"metadata": {"labels": {"app": "sluice"}},
                "spec": {"containers": [{"name": "manager", "image": "ghcr.io/sluice/sluice:v0.1.0"}]}}},
    });
    Api::<Deployment>::namespaced(client.clone(), n)
        .patch(
            "sluice",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&deployment),
        )
        .await
        .unwrap();
    let out = sluice(&["version", "-n", n]).expect(0);
    assert!(
        out.stdout.contains(&format!(
            "controller: v0.1.0 (ghcr.io/sluice/sluice:v0.1.0, {n}/sluice)"
        )),
        "{}",
        out.stdout
    );
    ns.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_sources_kustomizations_and_secrets() {
    let (client, ns) = setup("create").await;
    let n = ns.name();
    // `create` waits for the new object's first reconciliation, as flux does.
    let _controller = FakeController::start(client.clone(), n.to_string());
    let out = sluice(&[
        "create",
        "source",
        "git",
        "ops",
        "--url",
        "https://gitea.lan/home/ops.git",
        "--branch",
        "main",
        "-u",
        "me",
        "-p",
        "s3cr3t-pat",
        "-n",
        n,
    ])
    .expect(0);
    for said in [
        "GitRepository created",
        "waiting for GitRepository reconciliation",
        "fetched revision main@sha1:",
    ] {
        assert!(out.stderr.contains(said), "{said:?} in {}", out.stderr);
    }
    assert!(!out.stderr.contains("annotat"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3cr3t-pat") && !out.stdout.contains("s3cr3t-pat"));
    let repo = Api::<sluice_api::GitRepository>::namespaced(client.clone(), n)
        .get("ops")
        .await
        .unwrap();
    assert_eq!(repo.spec.secret_ref.as_ref().unwrap().name, "ops");
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), n)
        .get("ops")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["password"].0, b"s3cr3t-pat");

    sluice(&[
        "create",
        "ks",
        "apps",
        "--source",
        "ops",
        "--path",
        "./apps",
        "--prune",
        "--depends-on",
        "infra",
        "--interval",
        "10m",
        "-n",
        n,
    ])
    .expect(0);
    let ks = Api::<Kustomization>::namespaced(client.clone(), n)
        .get("apps")
        .await
        .unwrap();
    assert!(ks.spec.prune);
    assert_eq!(ks.spec.path.as_deref(), Some("./apps"));
    assert_eq!(ks.spec.depends_on.as_ref().unwrap()[0].name, "infra");

    // The other kinds, applied: the API server's schema (Flux's CRDs) takes them.
    sluice(&[
        "create",
        "source",
        "helm",
        "charts",
        "--url",
        "oci://ghcr.io/stefanprodan/charts",
        "-n",
        n,
    ])
    .expect(0);
    sluice(&[
        "create",
        "source",
        "oci",
        "manifests",
        "--url",
        "oci://ghcr.io/stefanprodan/manifests/podinfo",
        "--tag",
        "6.9.0",
        "-n",
        n,
    ])
    .expect(0);
    sluice(&[
        "create",
        "hr",
        "podinfo",
        "--source",
        "HelmRepository/charts",
        "--chart",
        "podinfo",
        "--chart-version",
        "6.x",
        "-n",
        n,
    ])
    .expect(0);
    sluice(&[
        "create", "secret", "oci", "ghcr", "--url", "ghcr.io", "-u", "me", "-p", "pat", "-n", n,
    ])
    .expect(0);
    let hr = Api::<sluice_api::HelmRelease>::namespaced(client.clone(), n)
        .get("podinfo")
        .await
        .unwrap();
    assert_eq!(hr.spec.interval, "1m");

    // --export prints and applies nothing; bad input names the flag.
    let out = sluice(&[
        "create",
        "secret",
        "git",
        "tok",
        "--url",
        "https://h/r",
        "--bearer-token",
        "t0k",
        "--export",
        "-n",
        n,
    ])
    .expect(0);
    assert!(
        out.stdout
            .starts_with("---\napiVersion: v1\nkind: Secret\n"),
        "{}",
        out.stdout
    );
    assert!(
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), n)
            .get_opt("tok")
            .await
            .unwrap()
            .is_none()
    );
    // A first reconciliation that fails: created, and exit 1 with the cause.
    let out = sluice(&[
        "create",
        "source",
        "git",
        "broken",
        "--url",
        "https://h/r",
        "--branch",
        "main",
        "-n",
        n,
    ])
    .expect(1);
    assert!(
        out.stderr.contains("GitRepository created"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "GitRepository {n}/broken reconciliation failed: kustomize build failed"
        )),
        "{}",
        out.stderr
    );
    let out = sluice(&[
        "create",
        "source",
        "git",
        "x",
        "--url",
        "gitea.lan/ops",
        "--branch",
        "main",
        "-n",
        n,
    ])
    .expect(1);
    assert!(
        out.stderr.contains("--url \"gitea.lan/ops\""),
        "{}",
        out.stderr
    );
    ns.delete().await;
}

/// A minimal CRD (any fields kept) for cert-manager's kinds.
fn loose_crd(group: &str, kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    })
}

#[tokio::test]
async fn why_follows_a_certificate_to_its_challenge() {
    let (client, ns) = setup("why-cert").await;
    let n = ns.name().to_string();
    for (group, kind, plural) in [
        ("cert-manager.io", "Certificate", "certificates"),
        (
            "cert-manager.io",
            "CertificateRequest",
            "certificaterequests",
        ),
        ("acme.cert-manager.io", "Order", "orders"),
        ("acme.cert-manager.io", "Challenge", "challenges"),
    ] {
        sluice_testsupport::apply_crd(&client, &loose_crd(group, kind, plural), "sluice-test")
            .await;
    }
    // Each object created with the status cert-manager gives it, owned by the one above.
    let mut owner: Option<(String, String, String, String)> = None;
    for (api_version, kind, name, extra) in [
        (
            "cert-manager.io/v1",
            "Certificate",
            "web-tls",
            json!({
            "spec": {"secretName": "web-tls", "dnsNames": ["memos.example.org"], "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Issuing certificate as Secret does not exist"}]}}),
        ),
        (
            "cert-manager.io/v1",
            "CertificateRequest",
            "web-tls-1",
            json!({
            "metadata": {"annotations": {"cert-manager.io/certificate-revision": "1"}},
            "spec": {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending", "message": "Waiting on certificate issuance from order"}]}}),
        ),
        (
            "acme.cert-manager.io/v1",
            "Order",
            "web-tls-1-123",
            json!({"status": {"state": "pending"}}),
        ),
        (
            "acme.cert-manager.io/v1",
            "Challenge",
            "web-tls-1-123-456",
            json!({
            "spec": {"type": "HTTP-01", "dnsName": "memos.example.org"},
            "status": {"state": "pending", "presented": true, "reason": "Waiting for HTTP-01 challenge propagation: wrong status code '521', expected '200'"}}),
        ),
    ] {
        let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": n}});
        if let Some(extra_meta) = extra.get("metadata") {
            obj["metadata"]["annotations"] = extra_meta["annotations"].clone();
        }
        for field in ["spec", "status"] {
            if let Some(v) = extra.get(field) {
                obj[field] = v.clone();
            }
        }
        if let Some((av, k, nm, uid)) = &owner {
            obj["metadata"]["ownerReferences"] =
                json!([{"apiVersion": av, "kind": k, "name": nm, "uid": uid}]);
        }
        let (group, version) = api_version.rsplit_once('/').unwrap();
        let ar = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            group, version, kind,
        ));
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &n, &ar);
        let created = api
            .create(&Default::default(), &serde_json::from_value(obj).unwrap())
            .await
            .unwrap();
        owner = Some((
            api_version.into(),
            kind.into(),
            name.into(),
            created.metadata.uid.unwrap(),
        ));
    }
    let out = sluice(&["why", "certificate/web-tls", "-n", &n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("✗ Certificate {n}/web-tls: DoesNotExist")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("→ CertificateRequest {n}/web-tls-1: Pending")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("→ Order {n}/web-tls-1-123: state pending")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("→ Challenge") && out.stdout.contains("wrong status code '521'"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("root cause:") && out.stdout.contains("Use a DNS-01 solver"),
        "{}",
        out.stdout
    );
    let out = sluice(&["why", "cert/absent", "-n", &n]).expect(1);
    assert!(out.stdout.contains("not found"), "{}", out.stdout);
    ns.delete().await;
}

#[tokio::test]
async fn why_names_a_cni_that_is_not_ready() {
    let (client, ns) = setup("why-cni").await;
    let n = ns.name();
    // Bound to a node no kubelet runs: it stays Pending, as behind a broken CNI.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": n},
        "spec": {"nodeName": "edge-1-cni-broken", "containers": [{"name": "web", "image": "nginx"}]}});
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), n)
        .create(&Default::default(), &serde_json::from_value(pod).unwrap())
        .await
        .unwrap();
    let event = json!({
        "metadata": {"name": "web.1", "namespace": n},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": n, "apiVersion": "v1"},
        "reason": "FailedCreatePodSandBox", "type": "Warning",
        "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"4f2\": plugin type=\"cilium-cni\" failed (add): unable to connect to Cilium daemon: failed to create cilium agent client",
        "lastTimestamp": "2026-12-03T07:00:00Z", "source": {"component": "kubelet"},
    });
    Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), n)
        .create(&Default::default(), &serde_json::from_value(event).unwrap())
        .await
        .unwrap();
    let out = sluice(&["why", "pod/web", "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains("the CNI plugin (Cilium) is not ready on the Pod's node"),
        "{}",
        out.stdout
    );
    ns.delete().await;
}

/// A homelab-shaped repository: the bootstrap's sync files, infrastructure and apps with
/// variables from a ConfigMap of the repository, one Kustomization waiting on nothing that
/// exists, one on another repository.
fn homelab_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files: &[(&str, &str)] = &[
        (".git/HEAD", "ref: refs/heads/main\n"),
        (
            "clusters/home/kustomization.yaml",
            "resources:\n- flux-system.yaml\n- vars.yaml\n- infrastructure.yaml\n- apps.yaml\n- extras.yaml\n",
        ),
        (
            "clusters/home/flux-system.yaml",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: ssh://git@gitea.lan/home/ops\n  ref:\n    branch: main\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./clusters/home\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
        ),
        (
            "clusters/home/vars.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\ndata:\n  CLUSTER_NAME: home\n  DOMAIN: lab.example.org\n",
        ),
        (
            "clusters/home/infrastructure.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: infrastructure\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./infrastructure\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substituteFrom:\n    - kind: ConfigMap\n      name: cluster-vars\n",
        ),
        (
            "clusters/home/apps.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  dependsOn:\n  - name: infrastructure\n  interval: 10m\n  path: ./apps\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substitute:\n      REPLICAS: \"2\"\n    substituteFrom:\n    - kind: ConfigMap\n      name: cluster-vars\n",
        ),
        (
            "clusters/home/extras.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: monitoring\n  namespace: flux-system\nspec:\n  dependsOn:\n  - name: crds-never-deployed\n  interval: 10m\n  path: ./monitoring\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: charts\n  namespace: flux-system\nspec:\n  interval: 1h\n  url: https://github.com/example/charts\n  ref:\n    branch: main\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: external\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./deploy\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: charts\n",
        ),
        (
            "infrastructure/kustomization.yaml",
            "resources:\n- namespace.yaml\n",
        ),
        (
            "infrastructure/namespace.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    cluster: ${CLUSTER_NAME}\n",
        ),
        ("apps/kustomization.yaml", "resources:\n- web.yaml\n"),
        (
            "apps/web.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\n  annotations:\n    url: https://web.${DOMAIN}\nspec:\n  replicas: ${REPLICAS}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
        ),
    ];
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn build_cluster_renders_a_repository_from_its_entry_point() {
    let repo = homelab_repo();
    let entry = repo.path().join("clusters/home");
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(0);
    // Substituted from the repository's ConfigMap (and the inline variable).
    assert!(
        out.stdout
            .contains("# Kustomization flux-system/infrastructure (./infrastructure)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("cluster: home"), "{}", out.stdout);
    assert!(
        out.stdout.contains("url: https://web.lab.example.org"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("replicas: 2"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("kustomize.toolkit.fluxcd.io/name: apps"),
        "{}",
        out.stdout
    );
    // apps after infrastructure (dependsOn); the entry point first.
    let (entry_at, infra_at, apps_at) = (
        out.stdout
            .find("# Kustomization flux-system/flux-system")
            .unwrap(),
        out.stdout
            .find("# Kustomization flux-system/infrastructure")
            .unwrap(),
        out.stdout.find("# Kustomization flux-system/apps").unwrap(),
    );
    assert!(entry_at < infra_at && infra_at < apps_at);
    // What could not be rendered says why.
    assert!(out.stderr.contains("Kustomization flux-system/monitoring not rendered: it depends on flux-system/crds-never-deployed (not defined in the repository)"), "{}", out.stderr);
    assert!(out.stderr.contains("Kustomization flux-system/external not rendered: its source GitRepository flux-system/charts is not this repository"), "{}", out.stderr);

    // One file per Kustomization.
    let dest = tempfile::tempdir().unwrap();
    sluice_offline(
        &[
            "build",
            "cluster",
            entry.to_str().unwrap(),
            "--output-dir",
            dest.path().to_str().unwrap(),
        ],
        &[],
    )
    .expect(0);
    let apps = std::fs::read_to_string(dest.path().join("flux-system/apps.yaml")).unwrap();
    assert!(apps.contains("kind: Deployment"), "{apps}");

    // A failing one: exit 1, the others still rendered.
    std::fs::write(repo.path().join("apps/web.yaml"), "kind: [broken").unwrap();
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(1);
    assert!(
        out.stderr
            .contains("✗ Kustomization flux-system/apps (./apps):"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("cluster: home"), "{}", out.stdout);
}

/// `build cluster` decrypts SOPS documents with the keys given, as the decryption Secret would
/// hold them: a PGP key (`--pgp-key-file`); without a key it names why.
#[test]
fn build_cluster_decrypts_sops_with_a_pgp_key() {
    let repo = homelab_repo();
    let files: &[(&str, &str)] = &[
        (
            "clusters/home/kustomization.yaml",
            "resources:\n- flux-system.yaml\n- secrets.yaml\n",
        ),
        (
            "clusters/home/secrets.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: secrets\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./secrets\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  decryption:\n    provider: sops\n    secretRef:\n      name: sops-gpg\n",
        ),
        (
            "secrets/kustomization.yaml",
            "resources:\n- secret.yaml\n- settings.yaml\n",
        ),
        (
            "secrets/secret.yaml",
            include_str!("../../sluice-sops/testdata/secret.pgp-rsa.sops.yaml"),
        ),
        (
            "secrets/settings.yaml",
            include_str!("../../sluice-sops/testdata/configmap.pgp-rsa.sops.yaml"),
        ),
    ];
    for (path, text) in files {
        let p = repo.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let entry = repo.path().join("clusters/home");
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sluice-sops/testdata/test-rsa.asc"
    );
    let out = sluice_offline(
        &[
            "build",
            "cluster",
            entry.to_str().unwrap(),
            "--pgp-key-file",
            key,
        ],
        &[],
    )
    .expect(0);
    // Decrypted (the Secret masked as `flux build` masks Secrets, the ConfigMap in clear).
    assert!(
        out.stdout.contains("username: '**SOPS**'"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("    multi\n    line\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("ENC[AES256_GCM"), "{}", out.stdout);
    // Without a key, as `flux build`: the documents as they are in Git.
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(0);
    assert!(
        out.stdout.contains("config.yaml: ENC[AES256_GCM,"),
        "{}",
        out.stdout
    );
    let out = sluice_offline(
        &[
            "build",
            "cluster",
            entry.to_str().unwrap(),
            "--pgp-key-file",
            "/dev/null",
        ],
        &[],
    )
    .expect(1);
    assert!(
        out.stderr.contains("--pgp-key-file /dev/null"),
        "{}",
        out.stderr
    );
}

/// A chart `dir/name` of one ConfigMap showing `greeting`, `domain` and the release namespace.
fn write_chart(dir: &std::path::Path, name: &str, version: &str) {
    let files: &[(&str, String)] = &[
        ("Chart.yaml", format!("apiVersion: v2\nname: {name}\nversion: {version}\n")),
        ("values.yaml", "greeting: hello\ndomain: none\n".to_string()),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Chart.Name }}\ndata:\n  greeting: {{ .Values.greeting }}\n  domain: {{ .Values.domain }}\n  namespace: {{ .Release.Namespace }}\n".to_string(),
        ),
    ];
    for (path, text) in files {
        let p = dir.join(name).join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A chart of the repository whose dependencies are in chart repositories: `build cluster`
/// fetches them as the source controller does, with the credentials of the HelmRepository
/// the repository defines for the dependency's URL (an HTTP repository behind basic auth
/// named without its trailing slash, a registry behind basic auth with a version range);
/// a Helm repository name (`@stable`) is refused with Flux's message.
#[test]
fn build_cluster_fetches_a_repository_charts_dependencies() {
    use sluice_testsupport::oci_registry::{HelmRepoServer, OciRegistry, RegistryConfig};
    let Some(registry) = OciRegistry::start(RegistryConfig::basic("robot", "s3cret")) else {
        panic!("the test registry (docker-registry, scripts/install-deps) is not installed");
    };
    for (version, tier) in [("1.2.0", "old"), ("1.10.0", "new")] {
        let tgz = sluice_oci::helm::build_chart_tgz(
            "app",
            version,
            &[
                ("values.yaml", &format!("tier: {tier}\n")),
                (
                    "templates/cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-app\ndata:\n  tier: {{ .Values.tier }}\n  version: {{ .Chart.Version }}\n",
                ),
            ],
        )
        .unwrap();
        registry.push_chart("charts", &tgz);
    }
    let built = tempfile::tempdir().unwrap();
    write_chart(built.path(), "remote", "0.2.0");
    let tgz = std::process::Command::new("tar")
        .arg("-C")
        .arg(built.path())
        .args(["-czf", "-", "remote"])
        .output()
        .unwrap();
    assert!(tgz.status.success());
    let served = tempfile::tempdir().unwrap();
    let server = HelmRepoServer::start(served.path(), Some(("lab", "h3lm-pass")));
    server.add_chart(&tgz.stdout);

    let repo = homelab_repo();
    let chart_yaml = |remote_repo: &str| {
        format!(
            "apiVersion: v2\nname: umbrella\nversion: 1.0.0\ndependencies:\n\
             - name: remote\n  version: 0.x\n  repository: \"{remote_repo}\"\n\
             - name: app\n  version: \">=1.0.0\"\n  repository: oci://{}/charts\n",
            registry.host()
        )
    };
    let umbrella = repo.path().join("charts/umbrella");
    std::fs::create_dir_all(umbrella.join("templates")).unwrap();
    std::fs::write(umbrella.join("Chart.yaml"), chart_yaml(&server.url())).unwrap();
    std::fs::write(
        umbrella.join("values.yaml"),
        "remote:\n  greeting: from-umbrella\napp:\n  tier: umbrella\n",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("clusters/home/kustomization.yaml"),
        "resources:\n- flux-system.yaml\n- vars.yaml\n- umbrella.yaml\n",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("clusters/home/umbrella.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: lab-auth\n  namespace: flux-system\nstringData:\n  username: lab\n  password: h3lm-pass\n\
---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-auth\n  namespace: flux-system\nstringData:\n  username: robot\n  password: s3cret\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: lab\n  namespace: flux-system\nspec:\n  interval: 1h\n  url: {url}/\n  secretRef:\n    name: lab-auth\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: lab-oci\n  namespace: flux-system\nspec:\n  type: oci\n  insecure: true\n  interval: 1h\n  url: oci://{host}/charts/\n  secretRef:\n    name: registry-auth\n\
---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: umbrella\n  namespace: flux-system\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: ./charts/umbrella\n      sourceRef:\n        kind: GitRepository\n        name: flux-system\n",
            url = server.url(),
            host = registry.host()
        ),
    )
    .unwrap();
    let entry = repo.path().join("clusters/home");
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(0);
    for said in [
        "# HelmRelease flux-system/umbrella (umbrella@1.0.0)\n",
        "name: umbrella-remote\n",
        "greeting: from-umbrella\n",
        "name: umbrella-app\n",
        "tier: umbrella\n",
        "version: 1.10.0\n",
    ] {
        assert!(out.stdout.contains(said), "{said:?} in:\n{}", out.stdout);
    }
    assert!(server.count("/remote-0.2.0.tgz") >= 1);
    assert!(!out.stdout.contains("h3lm-pass") && !out.stderr.contains("h3lm-pass"));

    std::fs::write(umbrella.join("Chart.yaml"), chart_yaml("@stable")).unwrap();
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(1);
    assert!(
        out.stderr.contains(
            "✗ HelmRelease flux-system/umbrella: chart ./charts/umbrella: dependency build error: failed to add remote dependency 'remote': aliased repository dependency is not supported: @stable/"
        ),
        "{}",
        out.stderr
    );
}

/// HelmReleases in `build cluster`: a chart of the repository itself and one from an HTTP
/// Helm repository (a real server) render with values from `spec.values` and a `valuesFrom`
/// ConfigMap of the repository; OCI charts come from a real registry behind basic auth (an
/// OCI HelmRepository with a semver range, an OCIRepository named by `chartRef`), with the
/// credentials of a Secret the repository defines; a `chartRef` to a HelmChart is followed to
/// its source, with its `valuesFiles`; what cannot be fetched is named, with why.
#[test]
fn build_cluster_renders_helm_releases_with_their_charts() {
    use sluice_testsupport::oci_registry::HelmRepoServer;
    let repo = homelab_repo();
    write_chart(&repo.path().join("charts"), "hello", "0.1.0");
    let served = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    write_chart(build.path(), "remote", "0.2.0");
    let tgz = std::process::Command::new("tar")
        .arg("-C")
        .arg(build.path())
        .args(["-czf", "-", "remote"])
        .output()
        .unwrap();
    assert!(tgz.status.success());
    let server = HelmRepoServer::start(served.path(), None);
    server.add_chart(&tgz.stdout);
    std::fs::write(
        repo.path().join("clusters/home/kustomization.yaml"),
        "resources:\n- flux-system.yaml\n- vars.yaml\n- helm.yaml\n- oci.yaml\n",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("clusters/home/helm.yaml"),
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hello\n  namespace: flux-system\nspec:\n  interval: 10m\n  targetNamespace: apps\n  chart:\n    spec:\n      chart: ./charts/hello\n      sourceRef:\n        kind: GitRepository\n        name: flux-system\n  values:\n    greeting: hi\n  valuesFrom:\n  - kind: ConfigMap\n    name: cluster-vars\n    valuesKey: DOMAIN\n    targetPath: domain\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: lab\n  namespace: flux-system\nspec:\n  interval: 1h\n  url: {url}\n\
---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: remote\n  namespace: flux-system\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: remote\n      version: 0.x\n      sourceRef:\n        kind: HelmRepository\n        name: lab\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmChart\nmetadata:\n  name: hello-prod\n  namespace: flux-system\nspec:\n  interval: 1h\n  chart: ./charts/hello\n  valuesFiles:\n  - ./charts/hello/values.yaml\n  - ./charts/hello/values-prod.yaml\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n\
---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hello-prod\n  namespace: flux-system\nspec:\n  interval: 10m\n  chartRef:\n    kind: HelmChart\n    name: hello-prod\n",
            url = server.url()
        ),
    )
    .unwrap();
    std::fs::write(
        repo.path().join("charts/hello/values-prod.yaml"),
        "greeting: production\n",
    )
    .unwrap();

    // Charts in a registry behind basic auth, at 1.2.0 and 1.10.0 (semver, not text, orders
    // them).
    let Some(registry) = sluice_testsupport::oci_registry::OciRegistry::start(
        sluice_testsupport::oci_registry::RegistryConfig::basic("robot", "s3cret"),
    ) else {
        panic!("the test registry (docker-registry, scripts/install-deps) is not installed");
    };
    for version in ["1.2.0", "1.10.0"] {
        let tgz = sluice_oci::helm::build_chart_tgz(
            "app",
            version,
            &[
                ("values.yaml", "tier: default\n"),
                (
                    "templates/cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-app\ndata:\n  tier: {{ .Values.tier }}\n  version: {{ .Chart.Version }}\n",
                ),
            ],
        )
        .unwrap();
        registry.push_chart("charts", &tgz);
    }
    let host = registry.host().to_string();
    std::fs::write(
        repo.path().join("clusters/home/oci.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-auth\n  namespace: flux-system\nstringData:\n  username: robot\n  password: s3cret\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: lab-oci\n  namespace: flux-system\nspec:\n  type: oci\n  insecure: true\n  interval: 1h\n  url: oci://{host}/charts\n  secretRef:\n    name: registry-auth\n\
---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: from-oci\n  namespace: flux-system\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: app\n      version: 1.x\n      sourceRef:\n        kind: HelmRepository\n        name: lab-oci\n  values:\n    tier: oci\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  interval: 1h\n  insecure: true\n  url: oci://{host}/charts/app\n  ref:\n    tag: 1.2.0\n  layerSelector:\n    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip\n    operation: copy\n  secretRef:\n    name: registry-auth\n\
---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: from-ref\n  namespace: flux-system\nspec:\n  interval: 10m\n  chartRef:\n    kind: OCIRepository\n    name: app\n\
---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: locked\n  namespace: flux-system\nspec:\n  interval: 1h\n  insecure: true\n  url: oci://{host}/charts/app\n  secretRef:\n    name: elsewhere\n\
---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: locked\n  namespace: flux-system\nspec:\n  interval: 10m\n  chartRef:\n    kind: OCIRepository\n    name: locked\n"
        ),
    )
    .unwrap();
    let entry = repo.path().join("clusters/home");
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(0);
    for said in [
        "# HelmRelease flux-system/hello (hello@0.1.0)\n",
        "name: apps-hello-hello\n",
        "greeting: hi\n",
        "domain: lab.example.org\n",
        "namespace: apps\n",
        "# HelmRelease flux-system/remote (remote@0.2.0)\n",
        "name: remote-remote\n",
        "# HelmRelease flux-system/hello-prod (hello@0.1.0)\n",
        "greeting: production\n",
        "# HelmRelease flux-system/from-oci (app@1.10.0)\n",
        "name: from-oci-app\n",
        "tier: oci\n",
        "version: 1.10.0\n",
        "# HelmRelease flux-system/from-ref (app@1.2.0)\n",
        "name: from-ref-app\n",
        "version: 1.2.0\n",
    ] {
        assert!(out.stdout.contains(said), "{said:?} in:\n{}", out.stdout);
    }
    assert!(
        out.stderr.contains("HelmRelease flux-system/locked not rendered: its OCIRepository flux-system/locked needs Secret flux-system/elsewhere (spec.secretRef), which the repository does not define"),
        "{}",
        out.stderr
    );
    // The credentials were needed, and are not printed.
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
    std::fs::write(
        repo.path().join("clusters/home/oci.yaml"),
        std::fs::read_to_string(repo.path().join("clusters/home/oci.yaml"))
            .unwrap()
            .replace("password: s3cret", "password: wrong"),
    )
    .unwrap();
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(1);
    assert!(
        out.stderr
            .contains("✗ HelmRelease flux-system/from-oci: HelmRepository flux-system/lab-oci:"),
        "{}",
        out.stderr
    );
    std::fs::remove_file(repo.path().join("clusters/home/oci.yaml")).unwrap();
    std::fs::write(
        repo.path().join("clusters/home/kustomization.yaml"),
        "resources:\n- flux-system.yaml\n- vars.yaml\n- helm.yaml\n",
    )
    .unwrap();
    assert!(server.count("/index.yaml") >= 1);

    // A valuesFrom the repository does not define fails that HelmRelease (exit 1), naming it.
    std::fs::write(
        repo.path().join("clusters/home/vars.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: flux-system\n",
    )
    .unwrap();
    let out = sluice_offline(&["build", "cluster", entry.to_str().unwrap()], &[]).expect(1);
    assert!(
        out.stderr.contains("✗ HelmRelease flux-system/hello:")
            && out.stderr.contains("cluster-vars"),
        "{}",
        out.stderr
    );
}

#[test]
fn diff_cluster_shows_what_a_branch_changes() {
    let repo = homelab_repo();
    std::fs::remove_dir_all(repo.path().join(".git")).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "init"]);
    let entry = repo.path().join("clusters/home");
    let entry = entry.to_str().unwrap();
    sluice_offline(&["diff", "cluster", entry, "--against", "main"], &[]).expect(0);

    // A HelmRelease's values change: its chart's objects are compared too.
    let helm_release = |greeting: &str| {
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hello\n  namespace: flux-system\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: ./charts/hello\n      sourceRef:\n        kind: GitRepository\n        name: flux-system\n  values:\n    greeting: {greeting}\n"
        )
    };
    write_chart(&repo.path().join("charts"), "hello", "0.1.0");
    std::fs::write(
        repo.path().join("clusters/home/hello.yaml"),
        helm_release("hi"),
    )
    .unwrap();
    std::fs::write(
        repo.path().join("clusters/home/kustomization.yaml"),
        "resources:\n- flux-system.yaml\n- vars.yaml\n- infrastructure.yaml\n- apps.yaml\n- extras.yaml\n- hello.yaml\n",
    )
    .unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-qm", "hello"]);
    std::fs::write(
        repo.path().join("clusters/home/hello.yaml"),
        helm_release("hey"),
    )
    .unwrap();
    let out = sluice_offline(&["diff", "cluster", entry, "--against", "main"], &[]).expect(1);
    assert!(
        out.stdout
            .contains("► ConfigMap hello-hello (HelmRelease flux-system/hello) changed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("+   greeting: hey\n"), "{}", out.stdout);
    git(&["commit", "-qam", "hey"]);

    let web = repo.path().join("apps/web.yaml");
    let text = std::fs::read_to_string(&web)
        .unwrap()
        .replace("image: nginx", "image: nginx:1.27");
    std::fs::write(&web, text).unwrap();
    std::fs::write(
        repo.path().join("apps/kustomization.yaml"),
        "resources:\n- web.yaml\n- config.yaml\n",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("apps/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: apps\ndata:\n  domain: ${DOMAIN}\n",
    )
    .unwrap();
    let out = sluice_offline(&["diff", "cluster", entry, "--against", "main"], &[]).expect(1);
    assert!(
        out.stdout
            .contains("► Deployment apps/web (Kustomization flux-system/apps) changed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("-       - image: nginx\n")
            && out.stdout.contains("+       - image: nginx:1.27\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("+ ConfigMap apps/web-config (Kustomization flux-system/apps) added"),
        "{}",
        out.stdout
    );
    let out =
        sluice_offline(&["diff", "cluster", entry, "--against", "no-such-ref"], &[]).expect(2);
    assert!(
        out.stderr.contains("--against no-such-ref"),
        "{}",
        out.stderr
    );
}

/// `sluice create secret git` for an ssh URL, as typed: without
/// --private-key-file a key pair is generated (its public half printed, as
/// the deploy key to add, and kept in `identity.pub`), and without
/// --known-hosts-file the server's host key is scanned, as flux does.
#[test]
fn create_secret_git_generates_a_key_pair_and_scans_the_host_key() {
    let server = match sluice_testsupport::ssh_server::SshServer::start() {
        Ok(s) => s,
        Err(skip) => return eprintln!("SKIPPED: {skip}"),
    };
    let url = server.url(std::path::Path::new("/srv/fleet.git"));
    let out = sluice_offline(
        &[
            "create",
            "secret",
            "git",
            "fleet-ssh",
            "--url",
            &url,
            "--ssh-key-algorithm",
            "ed25519",
            "--export",
        ],
        &[],
    )
    .expect(0);
    let secret: Value = serde_norway::from_str(&out.stdout).unwrap();
    let data = &secret["stringData"];
    assert!(
        data["identity"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "{}",
        out.stdout
    );
    let public = data["identity.pub"].as_str().unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(
        out.stderr
            .contains(&format!("deploy key: {}", public.trim())),
        "{}",
        out.stderr
    );
    let fields = |l: &str| {
        l.split_whitespace()
            .take(3)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fields(data["known_hosts"].as_str().unwrap()),
        fields(&server.known_hosts())
    );
    // Flux's default: ECDSA on P-384.
    let out = sluice_offline(
        &["create", "secret", "git", "s", "--url", &url, "--export"],
        &[],
    )
    .expect(0);
    let secret: Value = serde_norway::from_str(&out.stdout).unwrap();
    assert!(
        secret["stringData"]["identity.pub"]
            .as_str()
            .unwrap()
            .starts_with("ecdsa-sha2-nistp384 "),
        "{}",
        out.stdout
    );
}
