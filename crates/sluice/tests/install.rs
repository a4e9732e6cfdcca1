//! `sluice install` and `sluice uninstall` against the local control plane
//! (no registry: the simulated nodes report the controller's Pod Ready).

mod support;

use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use serde_json::Value;
use support::*;

/// The tests that install label the shared CRDs with their own namespace:
/// one at a time, so "nothing changed" holds.
static INSTALLS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn docs(stream: &str) -> Vec<Value> {
    stream
        .split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

#[test]
fn install_export_prints_the_manifests() {
    let out = sluice_offline(
        &[
            "install",
            "--export",
            "-n",
            "gitops",
            "--image",
            "registry.local/sluice:dev",
        ],
        &[],
    )
    .expect(0);
    let objects = docs(&out.stdout);
    let find = |kind: &str| {
        objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .collect::<Vec<_>>()
    };
    let crds = find("CustomResourceDefinition");
    let names: Vec<&str> = crds
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "gitrepositories.source.toolkit.fluxcd.io",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "ocirepositories.source.toolkit.fluxcd.io",
            "helmrepositories.source.toolkit.fluxcd.io",
            "helmcharts.source.toolkit.fluxcd.io",
            "buckets.source.toolkit.fluxcd.io",
            "externalartifacts.source.toolkit.fluxcd.io",
        ]
    );
    for crd in &crds[2..] {
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/component"],
            "source-controller"
        );
    }
    assert_eq!(
        crds[0]["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "flux"
    );
    assert_eq!(
        crds[1]["metadata"]["labels"]["app.kubernetes.io/instance"],
        "gitops"
    );
    assert_eq!(find("Namespace")[0]["metadata"]["name"], "gitops");
    assert_eq!(find("ClusterRole").len(), 1);
    assert_eq!(find("ClusterRoleBinding").len(), 2);
    let svc = find("Service")[0];
    assert_eq!(svc["metadata"]["name"], "source-controller");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    let deploy = find("Deployment")[0];
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.local/sluice:dev");
    assert_eq!(container["args"][0], "controller");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "healthz");
    assert_eq!(deploy["metadata"]["namespace"], "gitops");
    let policies: Vec<&str> = find("NetworkPolicy")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        policies,
        ["allow-egress", "allow-scraping", "allow-webhooks"]
    );
    for p in find("NetworkPolicy") {
        assert_eq!(p["metadata"]["namespace"], "gitops");
    }

    let default = sluice_offline(&["install", "--export"], &[]).expect(0);
    assert!(
        default
            .stdout
            .contains("image: ghcr.io/sluice-gitops/sluice:v"),
        "{}",
        default.stdout
    );
    assert!(default.stdout.contains("namespace: flux-system"));
}

#[tokio::test]
async fn install_applies_is_idempotent_repairs_and_uninstalls() {
    let _serial = INSTALLS.lock().await;
    let client = sluice_testsupport::client().await;
    let ns = sluice_testsupport::unique_name("sluice-t-install");

    let out = sluice(&["install", "-n", &ns, "--timeout", "2m"]).expect(0);
    assert!(
        out.stderr
            .contains(&format!("Deployment/{ns}/sluice created")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("deployment ready"), "{}", out.stderr);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deployments.get("sluice").await.unwrap();
    assert_eq!(
        d.metadata.managed_fields.unwrap()[0].manager.as_deref(),
        Some("sluice")
    );
    Api::<Service>::namespaced(client.clone(), &ns)
        .get("source-controller")
        .await
        .unwrap();
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    for name in ["allow-egress", "allow-scraping", "allow-webhooks"] {
        policies.get(name).await.unwrap();
    }

    // Again: nothing changes.
    let out = sluice(&["install", "-n", &ns, "--wait=false"]).expect(0);
    assert!(
        out.stderr
            .contains("all 18 components are installed and up to date"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("created"), "{}", out.stderr);

    // Partly removed by hand: completed.
    deployments
        .delete("sluice", &Default::default())
        .await
        .unwrap();
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    crbs.delete(&format!("sluice-controller-{ns}"), &Default::default())
        .await
        .unwrap();
    let mut out = sluice(&["install", "-n", &ns, "--timeout", "2m"]);
    if out.code != 0 && out.stderr.contains("being deleted") {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        out = sluice(&["install", "-n", &ns, "--timeout", "2m"]);
    }
    let out = out.expect(0);
    assert!(
        out.stderr.contains("partial installation found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("Deployment/{ns}/sluice created")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "ClusterRoleBinding/sluice-controller-{ns} created"
        )),
        "{}",
        out.stderr
    );

    // Uninstall: a dry run deletes nothing; then everything but the CRDs.
    git_repository(&client, &ns, "flux-system").await;
    let out = sluice(&["uninstall", "-n", &ns, "--keep-crds", "--dry-run"]).expect(0);
    assert!(
        out.stderr
            .contains(&format!("would delete Deployment/{ns}/sluice")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("would delete GitRepository/{ns}/flux-system")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("would delete Namespace/{ns}")),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("CustomResourceDefinition"),
        "{}",
        out.stderr
    );
    deployments.get("sluice").await.unwrap();

    let out = sluice(&["uninstall", "-n", &ns, "--keep-crds"]).expect(0);
    assert!(out.stderr.contains("uninstall finished"), "{}", out.stderr);
    assert!(
        deployments
            .get_opt("sluice")
            .await
            .unwrap()
            .is_none_or(|d| d.metadata.deletion_timestamp.is_some())
    );
    assert!(
        crbs.get_opt(&format!("sluice-cluster-reconciler-{ns}"))
            .await
            .unwrap()
            .is_none()
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces
            .get_opt(&ns)
            .await
            .unwrap()
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some())
    );
}

#[tokio::test]
async fn uninstall_removes_finalizers_and_keeps_workloads_unless_asked() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Patch, PatchParams};
    use serde_json::json;
    use sluice_api::Kustomization;

    let (client, ns) = setup("uninstall").await;
    let n = ns.name();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), n);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "namespace": n}, "data": {"a": "b"}});
    configmaps
        .patch(
            "app-config",
            &PatchParams::apply("kustomize-controller"),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), n);
    let with_inventory = |name: &'static str| {
        let client = client.clone();
        let kustomizations = kustomizations.clone();
        async move {
            kustomization(&client, n, name, "repo", &[]).await;
            kustomizations
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": ["finalizers.fluxcd.io"]}})),
                )
                .await
                .unwrap();
            write_status(&client, "Kustomization", n, name, json!({
                "inventory": {"entries": [{"id": format!("{n}_app-config__ConfigMap"), "v": "v1"}]},
            }))
            .await;
        }
    };

    with_inventory("apps").await;
    let out = sluice(&["uninstall", "-n", n, "--keep-crds", "--keep-namespace"]).expect(0);
    assert!(
        out.stderr
            .contains(&format!("Kustomization/{n}/apps deleted")),
        "{}",
        out.stderr
    );
    assert!(
        kustomizations.get_opt("apps").await.unwrap().is_none(),
        "deletion hung on the finalizer"
    );
    assert!(
        configmaps.get_opt("app-config").await.unwrap().is_some(),
        "a workload was deleted"
    );

    with_inventory("apps2").await;
    let out = sluice(&[
        "uninstall",
        "-n",
        n,
        "--keep-crds",
        "--keep-namespace",
        "--delete-workloads",
    ])
    .expect(0);
    assert!(
        out.stderr
            .contains(&format!("ConfigMap/{n}/app-config deleted")),
        "{}",
        out.stderr
    );
    assert!(configmaps.get_opt("app-config").await.unwrap().is_none());
    assert!(kustomizations.get_opt("apps2").await.unwrap().is_none());
    ns.delete().await;
}

/// Every source kind is deleted by `uninstall`, finalizers first: with the
/// controller gone, deletion would otherwise wait forever.
#[tokio::test]
async fn uninstall_deletes_every_source_kind() {
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};
    use serde_json::json;

    let (client, ns) = setup("uninstall-sources").await;
    let n = ns.name();
    let objects = [
        (
            "ocirepositories",
            "OCIRepository",
            "podinfo",
            json!({
                "url": "oci://ghcr.io/stefanprodan/charts/podinfo",
                "interval": "10m",
                "ref": {"tag": "6.7.1"},
                "layerSelector": {
                    "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "operation": "copy",
                },
            }),
        ),
        (
            "helmrepositories",
            "HelmRepository",
            "bitnami",
            json!({"url": "https://charts.bitnami.com/bitnami", "interval": "1h"}),
        ),
        (
            "helmcharts",
            "HelmChart",
            "redis",
            json!({
                "chart": "redis",
                "version": "1.x",
                "interval": "10m",
                "sourceRef": {"kind": "HelmRepository", "name": "bitnami"},
            }),
        ),
    ];
    for (plural, kind, name, spec) in &objects {
        let gvk = GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind);
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            n,
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        );
        let obj = json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": n, "finalizers": ["finalizers.fluxcd.io"]},
            "spec": spec,
        });
        api.patch(
            name,
            &PatchParams::apply("sluice-test").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }

    let out = sluice(&[
        "uninstall",
        "-n",
        n,
        "--keep-crds",
        "--keep-namespace",
        "--dry-run",
    ])
    .expect(0);
    for (_, kind, name, _) in &objects {
        assert!(
            out.stderr
                .contains(&format!("would delete {kind}/{n}/{name}")),
            "{}",
            out.stderr
        );
    }

    let out = sluice(&["uninstall", "-n", n, "--keep-crds", "--keep-namespace"]).expect(0);
    for (plural, kind, name, _) in &objects {
        assert!(
            out.stderr.contains(&format!("{kind}/{n}/{name} deleted")),
            "{}",
            out.stderr
        );
        let gvk = GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind);
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            n,
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        );
        assert!(
            api.get_opt(name).await.unwrap().is_none(),
            "{kind}/{name}: deletion hung on the finalizer"
        );
    }
    // HelmCharts go before the repositories they refer to.
    let chart = out.stderr.find("HelmChart/").unwrap();
    let repo = out.stderr.find("HelmRepository/").unwrap();
    assert!(chart < repo, "{}", out.stderr);
    ns.delete().await;
}

/// The commands of docs/k3s.md, as written, from a fresh node to a synced
/// repository: the exported manifest is applied as k3s's deploy controller
/// applies its manifests folder (the simulated nodes report the Deployment
/// ready), and `sluice controller` runs on the host in its place, impersonating
/// the installed `sluice-reconciler` as the Deployment's does. Only the host
/// specifics change: the manifests folder is a temporary one, `sudo` runs its
/// command, the Gitea URL is a test Git server's, and `-n` puts every command
/// in the test's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3s_md_runs_as_written() {
    use sluice_testsupport::git_server::{GitServer, Repo};
    let doc = std::fs::read_to_string(repo_root().join("docs/k3s.md")).unwrap();
    let block = doc
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("docs/k3s.md has a sh block");
    let commands: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 5, "five commands: {commands:?}");
    let _serial = INSTALLS.lock().await;

    let client = sluice_testsupport::client().await;
    let ns = sluice_testsupport::unique_name("sluice-t-k3s");
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let repo = Repo::new("homelab");
    repo.write(
        "clusters/home/hello.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: {ns}\n\
             data:\n  from: gitea\n"
        ),
    );
    let commit = repo.commit("home");
    repo.push("main");
    let git = GitServer::start(&repo.served_root(), Some(("me", "gitea-token"))).await;
    // Runs `command`; a failure is one unless `tolerated` accepts the output.
    let run_tolerating = |command: &str, tolerated: &dyn Fn(&str) -> bool| {
        let command = command
            .replace(
                "/var/lib/rancher/k3s/server/manifests",
                manifests.to_str().unwrap(),
            )
            .replace("http://gitea.lan:3000/me/homelab.git", &git.url("homelab"));
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -euo pipefail\nsluice() {{ \"$SLUICE_BIN\" \"$@\" -n \"$NS\"; }}\n\
                 sudo() {{ \"$@\"; }}\n{command}"
            ))
            .env("SLUICE_BIN", bin())
            .env("NS", &ns)
            .env("GITEA_TOKEN", "gitea-token")
            .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{command}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() || tolerated(&text), "{text}");
        text
    };
    let run = |command: &str| run_tolerating(command, &|_| false);

    // 1. The manifest lands in the folder; k3s applies what it finds there.
    run(commands[0]);
    let written = std::fs::read_to_string(manifests.join("sluice.yaml")).unwrap();
    assert!(written.starts_with("# sluice v"), "{written}");
    // The header is a comment, not an object.
    for object in docs(&written).iter().filter(|o| o.is_object()) {
        apply_object(&client, object).await;
    }
    let controller = host_controller(&ns, tmp.path());

    // 2-5.
    // `check` looks at the whole cluster, which other tests share: only what it finds wrong
    // in this test's namespace counts.
    let checked = run_tolerating(commands[1], &|text| {
        text.lines()
            .filter(|l| l.starts_with('✗') && *l != "✗ check failed")
            .all(|l| !l.contains(ns.as_str()))
    });
    assert!(
        checked.contains(&format!("controller {ns}/sluice ready")),
        "{checked}"
    );
    // The Secret, then the source and the Kustomization, each waited for
    // (as `flux create` waits) until the controller fetched or applied.
    let applied = format!("main@sha1:{commit}");
    let said: Vec<String> = commands[2..].iter().map(|c| run(c)).collect();
    assert!(
        said[1].contains(&format!("fetched revision {applied}")),
        "{}",
        said[1]
    );
    assert!(
        said[2].contains(&format!("applied revision {applied}")),
        "{}",
        said[2]
    );
    // "Within seconds": the list, as a user would look again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let listed = loop {
        let listed = run("sluice get kustomizations");
        if listed.contains(&applied) || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    drop(controller);
    assert!(
        listed.contains("homelab") && listed.contains(&applied) && listed.contains("True"),
        "{listed}\ncontroller log:\n{}",
        std::fs::read_to_string(tmp.path().join("controller.log")).unwrap_or_default()
    );
    let hello = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
        .get("hello")
        .await
        .unwrap();
    assert_eq!(
        hello
            .data
            .unwrap_or_default()
            .get("from")
            .map(String::as_str),
        Some("gitea")
    );
    run("sluice uninstall --keep-crds");
}

/// A Flux controller's Deployment as `flux install` makes it.
fn flux_deployment(ns: &str, name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {
            "app.kubernetes.io/component": name, "app.kubernetes.io/instance": ns,
            "app.kubernetes.io/part-of": "flux", "app.kubernetes.io/version": "v2.7.5",
            "control-plane": "controller"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "manager",
                                  "image": format!("ghcr.io/fluxcd/{name}:v1.9.5")}]}}},
    })
}

/// A cluster run by Flux (its controllers' Deployments, its `source-controller` Service and
/// `allow-egress` NetworkPolicy, a Kustomization with the status and inventory Flux wrote and
/// the object it applied, with Flux's field manager and labels) moves to sluice and back:
/// `install` refuses while a Kustomization deploys Flux's controllers, `--dry-run` says what it
/// would do and does nothing, the install scales down what sluice replaces and keeps the rest,
/// sluice then reconciles the Kustomization over Flux's object without re-creating it, `check`
/// says who runs what, and `uninstall --restore-flux` hands everything back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_moves_from_flux_to_sluice_and_back() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use kube::ResourceExt;
    use kube::api::{Patch, PatchParams};
    use sluice_api::Kustomization;
    use sluice_testsupport::git_server::{GitServer, Repo};
    let _serial = INSTALLS.lock().await;
    let (client, namespace) = setup("migrate").await;
    let ns = namespace.name().to_string();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), &ns);

    // Flux, as `flux install` left it.
    for name in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
    ] {
        apply_object(&client, &flux_deployment(&ns, name)).await;
    }
    let flux_labels = serde_json::json!({"app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/instance": ns, "app.kubernetes.io/component": "source-controller"});
    apply_object(&client, &serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "source-controller", "namespace": ns, "labels": flux_labels},
        "spec": {"type": "ClusterIP", "selector": {"app": "source-controller"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]},
    }))
    .await;
    apply_object(
        &client,
        &serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-egress", "namespace": ns, "labels": flux_labels},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{}]},
        }),
    )
    .await;
    // Its repository, the object it applied (Flux's field manager and labels) and the
    // Kustomization's status as Flux wrote it.
    let repo = Repo::new("fleet");
    repo.write(
        "apps/kept.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  v: \"2\"\n",
    );
    let commit = repo.commit("v2");
    repo.push("main");
    let git = GitServer::start(&repo.served_root(), None).await;
    configmaps
        .patch(
            "kept",
            &PatchParams::apply("kustomize-controller").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kept", "namespace": ns, "labels": {
                    "kustomize.toolkit.fluxcd.io/name": "flux-system",
                    "kustomize.toolkit.fluxcd.io/namespace": ns}},
                "data": {"v": "1"},
            })),
        )
        .await
        .unwrap();
    let kept_uid = configmaps.get("kept").await.unwrap().metadata.uid;
    apply_object(
        &client,
        &serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "flux-system", "namespace": ns},
            "spec": {"url": git.url("fleet"), "interval": "1m", "ref": {"branch": "main"}},
        }),
    )
    .await;
    for (name, inventory) in [
        ("flux-system", format!("{ns}_kept__ConfigMap")),
        ("gotk", format!("{ns}_kustomize-controller_apps_Deployment")),
    ] {
        apply_object(
            &client,
            &serde_json::json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": name, "namespace": ns, "finalizers": ["finalizers.fluxcd.io"]},
                "spec": {"interval": "10m", "path": "./apps", "prune": true, "targetNamespace": ns,
                         "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            }),
        )
        .await;
        write_status(
            &client,
            "Kustomization",
            &ns,
            name,
            serde_json::json!({
                "inventory": {"entries": [{"id": inventory, "v": "v1"}]},
                "lastAppliedRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
                "observedGeneration": 1,
                "conditions": [condition("True", "ReconciliationSucceeded",
                    "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567", 1)],
            }),
        )
        .await;
    }
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);

    // A Kustomization that deploys Flux's kustomize-controller: refused, nothing touched.
    let out = sluice(&["install", "-n", &ns, "--timeout", "2m"]).expect(1);
    assert!(
        out.stderr.contains(&format!(
            "Kustomization {ns}/gotk deploys Flux's kustomize-controller"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(
        replicas(&deployments.get("kustomize-controller").await.unwrap()),
        Some(1)
    );
    assert!(deployments.get_opt("sluice").await.unwrap().is_none());
    // Without it: the plan, and still nothing touched.
    let mut gotk = kustomizations.get("gotk").await.unwrap();
    gotk.metadata.finalizers = None;
    kustomizations
        .replace("gotk", &Default::default(), &gotk)
        .await
        .unwrap();
    kustomizations
        .delete("gotk", &Default::default())
        .await
        .unwrap();
    let out = sluice(&["install", "-n", &ns, "--dry-run"]).expect(0);
    for line in [
        format!("would scale Flux's source-controller (Deployment {ns}/source-controller"),
        format!("would scale Flux's kustomize-controller (Deployment {ns}/kustomize-controller"),
        format!("Flux's helm-controller ({ns}/helm-controller) keeps running beside sluice"),
        format!("would create Deployment/{ns}/sluice"),
    ] {
        assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
    }
    assert_eq!(
        replicas(&deployments.get("source-controller").await.unwrap()),
        Some(1)
    );

    // The take-over.
    let out = sluice(&["install", "-n", &ns, "--timeout", "2m"]).expect(0);
    assert!(
        out.stderr.contains("taking over from Flux"),
        "{}",
        out.stderr
    );
    for (name, expected) in [
        ("source-controller", Some(0)),
        ("kustomize-controller", Some(0)),
        ("helm-controller", Some(1)),
    ] {
        let d = deployments.get(name).await.unwrap();
        assert_eq!(replicas(&d), expected, "{name}");
        let kept = d.annotations().get("sluice.dev/flux-replicas").cloned();
        assert_eq!(kept.is_some(), expected == Some(0), "{name}: {kept:?}");
    }
    let selector = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default()
    };
    let svc = services.get("source-controller").await.unwrap();
    assert_eq!(
        selector(&svc).get("app").map(String::as_str),
        Some("sluice")
    );

    // sluice reconciles Flux's Kustomization over what Flux applied: the same object, with
    // Flux's field manager, at the new commit.
    let tmp = tempfile::tempdir().unwrap();
    let controller = host_controller(&ns, tmp.path());
    let applied = format!("main@sha1:{commit}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ks = kustomizations.get("flux-system").await.unwrap();
        let revision = ks
            .status
            .as_ref()
            .and_then(|s| s.last_applied_revision.clone());
        if revision.as_deref() == Some(applied.as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not applied: {:?}",
            ks.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    drop(controller);
    let kept = configmaps.get("kept").await.unwrap();
    assert_eq!(kept.metadata.uid, kept_uid, "re-created");
    assert_eq!(
        kept.data.unwrap_or_default().get("v").map(String::as_str),
        Some("2")
    );
    let managers: Vec<String> = kept
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["kustomize-controller"]);
    let out = sluice(&["check", "-n", &ns]);
    assert!(
        out.stdout.contains(&format!(
            "Flux's kustomize-controller in {ns} is scaled to zero: sluice took over"
        )),
        "{}",
        out.stdout
    );

    // And back.
    let out = sluice(&["uninstall", "-n", &ns, "--restore-flux"]).expect(0);
    for name in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
    ] {
        let d = deployments.get(name).await.unwrap();
        assert_eq!(replicas(&d), Some(1), "{name}\n{}", out.stderr);
        assert!(!d.annotations().contains_key("sluice.dev/flux-replicas"));
    }
    let svc = services.get("source-controller").await.unwrap();
    assert_eq!(
        selector(&svc).get("app").map(String::as_str),
        Some("source-controller"),
        "{}",
        out.stderr
    );
    let egress = policies.get("allow-egress").await.unwrap();
    assert_eq!(
        serde_json::to_value(egress.spec.unwrap().pod_selector).unwrap(),
        serde_json::json!({})
    );
    assert!(
        deployments
            .get_opt("sluice")
            .await
            .unwrap()
            .is_none_or(|d| d.metadata.deletion_timestamp.is_some())
    );
    let ks = kustomizations.get("flux-system").await.unwrap();
    assert_eq!(
        ks.metadata.finalizers.as_deref(),
        Some(&["finalizers.fluxcd.io".to_string()][..])
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces
            .get(&ns)
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none(),
        "the namespace is Flux's"
    );
    // Clean up: Flux's Deployments at once (`check` in the other tests looks at every
    // namespace), and the finalizer no controller is left to remove.
    for name in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
    ] {
        deployments.delete(name, &Default::default()).await.unwrap();
    }
    let mut ks = ks;
    ks.metadata.finalizers = None;
    kustomizations
        .replace("flux-system", &Default::default(), &ks)
        .await
        .unwrap();
    namespace.delete().await;
}

/// Flux's source-controller and kustomize-controller themselves (v1.9.5 and what Flux v2.9.5
/// ships, built from Go modules by `scripts/flux-reference`), run on the host in the place of
/// their Deployments' pods, as a kubelet would run them while the Deployments have replicas:
///
/// 1. Flux reconciles a repository: its GitRepository, its Kustomization's status and
///    inventory, the objects it applied are Flux's own.
/// 2. `sluice install` scales Flux's controllers to zero (they stop) and sluice's controller
///    starts: asked to reconcile the same revision, it changes nothing in the cluster; at the
///    next commit it updates an object in place (same uid, Flux's field manager), prunes one
///    by Flux's inventory and adds one.
/// 3. `sluice uninstall --restore-flux` scales Flux back (its controllers start again, with
///    empty storage as a new pod has): Flux accepts sluice's status and inventory, changes
///    nothing at the same revision, and applies and prunes the next commit itself.
///
/// Skipped, with a message, where the controllers are not built (`make flux-reference`;
/// `make test` never builds them) or Flux's CRDs (`../shared/flux-crds`) are absent.
/// `SLUICE_FLUX_SOURCE_CONTROLLER_BIN` and `SLUICE_FLUX_KUSTOMIZE_CONTROLLER_BIN` name the
/// binaries, and then nothing may skip the test; `make flux-migration-check` builds them and
/// runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_s_own_controllers_hand_over_to_sluice_and_take_back() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Patch, PatchParams};
    use sluice_api::Kustomization;
    use sluice_testsupport::free_port;
    use sluice_testsupport::git_server::{GitServer, Repo};
    use std::time::{Duration, Instant};
    const SC_ENV: &str = "SLUICE_FLUX_SOURCE_CONTROLLER_BIN";
    const KC_ENV: &str = "SLUICE_FLUX_KUSTOMIZE_CONTROLLER_BIN";
    let strict = [SC_ENV, KC_ENV]
        .iter()
        .any(|e| std::env::var_os(e).is_some_and(|v| !v.is_empty()));
    let skip = |why: &str| {
        assert!(!strict, "{SC_ENV}/{KC_ENV} are set, but {why}");
        eprintln!("SKIPPED: {why}");
    };
    let (Some(sc_bin), Some(kc_bin)) = (
        flux_controller_bin("source-controller", SC_ENV),
        flux_controller_bin("kustomize-controller", KC_ENV),
    ) else {
        skip("Flux's source- and kustomize-controller are not built (make flux-migration-check)");
        return;
    };
    let crds_dir = repo_root().join("../shared/flux-crds");
    if !crds_dir.is_dir() {
        skip("Flux's CRDs (../shared/flux-crds) are absent; ../shared is not part of the project");
        return;
    }
    let started = Instant::now();
    let note = |what: &str| {
        eprintln!(
            "[flux-migration] [{:6.1}s] {what}",
            started.elapsed().as_secs_f64()
        )
    };
    let _serial = INSTALLS.lock().await;
    let (client, namespace) = setup("fluxreal").await;
    let ns = namespace.name().to_string();
    // The kinds Flux's controllers watch that sluice does not serve: Flux's own CRDs.
    for file in [
        "source.toolkit.fluxcd.io_buckets.yaml",
        "source.toolkit.fluxcd.io_externalartifacts.yaml",
    ] {
        let text = std::fs::read_to_string(crds_dir.join(file)).unwrap();
        let crd: Value = serde_norway::from_str(&text).unwrap();
        sluice_testsupport::apply_crd(&client, &crd, "flux-install").await;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), &ns);
    for name in ["source-controller", "kustomize-controller"] {
        apply_object(&client, &flux_deployment(&ns, name)).await;
    }
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Flux's two controllers as their pods run them: scoped to the namespace, the artifact
    // storage empty at each start, served at the address that stands for the
    // `source-controller` Service (sluice's controller serves there too while it runs).
    let service = format!("127.0.0.1:{}", free_port());
    let start_flux = |round: u32| {
        let storage = work.path().join(format!("flux-storage-{round}"));
        std::fs::create_dir_all(&storage).unwrap();
        let addr = service.clone();
        let common = |cmd: &mut Command| {
            cmd.args([
                "--watch-all-namespaces=false",
                "--enable-leader-election=false",
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--health-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--log-encoding", "console"])
            .env("RUNTIME_NAMESPACE", &ns);
        };
        let mut sc = Command::new(&sc_bin);
        common(&mut sc);
        sc.arg("--storage-path").arg(&storage).args([
            "--storage-addr",
            &addr,
            "--storage-adv-addr",
            &addr,
        ]);
        let mut kc = Command::new(&kc_bin);
        common(&mut kc);
        let dir = logs.join(format!("round-{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        (
            Proc::start("source-controller", &mut sc, &dir),
            Proc::start("kustomize-controller", &mut kc, &dir),
        )
    };

    // The repository: two ConfigMaps at the first commit.
    let repo = Repo::new("fleet");
    let configmap = |name: &str, v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{v}\"\n")
    };
    repo.write("apps/kept.yaml", &configmap("kept", "1"));
    repo.write("apps/gone.yaml", &configmap("gone", "1"));
    let c1 = repo.commit("c1");
    repo.push("main");
    let git = GitServer::start(&repo.served_root(), None).await;
    apply_object(
        &client,
        &serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "flux-system", "namespace": ns},
            "spec": {"url": git.url("fleet"), "interval": "5s", "ref": {"branch": "main"}},
        }),
    )
    .await;
    apply_object(
        &client,
        &serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": ns},
            "spec": {"interval": "10m", "path": "./apps", "prune": true, "targetNamespace": ns,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        }),
    )
    .await;
    let status = |ks: &Kustomization| ks.status.clone().unwrap_or_default();
    let ready_at = |ks: &Kustomization, revision: &str| {
        let st = status(ks);
        st.last_applied_revision.as_deref() == Some(revision)
            && st.conditions.iter().flatten().any(|c| {
                c.type_ == "Ready"
                    && c.status == "True"
                    && c.observed_generation == ks.metadata.generation
            })
    };
    // Waits until the Kustomization is Ready at `revision`, having handled the reconcile
    // request `token` when one is given.
    let wait = |revision: String, token: Option<String>, what: &'static str| {
        let kustomizations = kustomizations.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                let ks = kustomizations.get("apps").await.unwrap();
                let handled = token
                    .as_deref()
                    .is_none_or(|t| status(&ks).last_handled_reconcile_at.as_deref() == Some(t));
                if handled && ready_at(&ks, &revision) {
                    return ks;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: not Ready at {revision}: {:#?}",
                    ks.status
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let request = |token: &'static str| {
        let kustomizations = kustomizations.clone();
        async move {
            kustomizations
                .patch(
                    "apps",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                        "reconcile.fluxcd.io/requestedAt": token}}})),
                )
                .await
                .unwrap();
            token.to_string()
        }
    };
    let managers = |cm: &ConfigMap| -> Vec<String> {
        cm.metadata
            .managed_fields
            .iter()
            .flatten()
            .filter_map(|m| m.manager.clone())
            .collect()
    };

    // 1. Flux.
    let flux = start_flux(1);
    let rev1 = format!("main@sha1:{c1}");
    let ks = wait(rev1.clone(), None, "Flux's first sync").await;
    note(&format!("Flux applied {rev1}"));
    let flux_inventory = serde_json::to_value(&status(&ks).inventory).unwrap();
    assert_eq!(
        flux_inventory["entries"].as_array().map(Vec::len),
        Some(2),
        "{flux_inventory}"
    );
    let kept = configmaps.get("kept").await.unwrap();
    assert_eq!(managers(&kept), ["kustomize-controller"]);
    let kept_uid = kept.metadata.uid.clone();
    // Commits what the test wrote, and waits for `who` to apply it.
    let next_commit = |message: &str, who: &'static str| {
        let commit = repo.commit(message);
        repo.push("main");
        let revision = format!("main@sha1:{commit}");
        let applied = wait(revision.clone(), None, who);
        async move {
            applied.await;
            note(&format!("{who} applied {revision}"));
            revision
        }
    };
    // The object Flux first applied, updated in place to `v`.
    let kept_at = |v: &'static str| {
        let (configmaps, kept_uid) = (configmaps.clone(), kept_uid.clone());
        async move {
            let kept = configmaps.get("kept").await.unwrap();
            assert_eq!(kept.metadata.uid, kept_uid, "re-created");
            let data = kept.data.clone().unwrap_or_default();
            assert_eq!(data.get("v").map(String::as_str), Some(v));
            kept
        }
    };

    // 2. sluice takes over.
    let out = sluice(&["install", "-n", &ns, "--timeout", "2m"]).expect(0);
    assert!(
        out.stderr.contains("taking over from Flux"),
        "{}",
        out.stderr
    );
    for name in ["source-controller", "kustomize-controller"] {
        let d = deployments.get(name).await.unwrap();
        assert_eq!(d.spec.and_then(|s| s.replicas), Some(0), "{name}");
    }
    drop(flux); // scaled to zero: the kubelet stops the pods
    let sluice_dir = work.path().join("sluice");
    std::fs::create_dir_all(&sluice_dir).unwrap();
    let controller = host_controller_at(&ns, &sluice_dir, &service);
    let version_before = configmaps
        .get("kept")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let token = request("sluice-same-revision").await;
    let ks = wait(rev1.clone(), Some(token), "sluice at Flux's revision").await;
    note("sluice reconciled Flux's revision");
    let kept = configmaps.get("kept").await.unwrap();
    assert_eq!(
        kept.metadata.resource_version, version_before,
        "sluice changed an object Flux had applied at the same revision: {:?}",
        kept.metadata.managed_fields
    );
    assert_eq!(
        serde_json::to_value(&status(&ks).inventory).unwrap(),
        flux_inventory,
        "sluice's inventory differs from Flux's"
    );
    // The next commit: one changed, one removed, one added.
    repo.write("apps/kept.yaml", &configmap("kept", "2"));
    std::fs::remove_file(repo.work.join("apps/gone.yaml")).unwrap();
    repo.write("apps/added.yaml", &configmap("added", "2"));
    let rev2 = next_commit("c2", "sluice").await;
    let kept = kept_at("2").await;
    assert_eq!(managers(&kept), ["kustomize-controller"]);
    assert!(
        configmaps.get_opt("gone").await.unwrap().is_none(),
        "not pruned"
    );
    assert!(configmaps.get_opt("added").await.unwrap().is_some());
    let sluice_inventory =
        serde_json::to_value(&status(&kustomizations.get("apps").await.unwrap()).inventory)
            .unwrap();

    // 3. And back to Flux.
    drop(controller);
    let out = sluice(&["uninstall", "-n", &ns, "--restore-flux"]).expect(0);
    for name in ["source-controller", "kustomize-controller"] {
        let d = deployments.get(name).await.unwrap();
        assert_eq!(
            d.spec.and_then(|s| s.replicas),
            Some(1),
            "{name}\n{}",
            out.stderr
        );
    }
    let flux = start_flux(2);
    let versions = |cms: Vec<ConfigMap>| -> Vec<(String, Option<String>)> {
        let mut v: Vec<_> = cms
            .into_iter()
            .map(|c| {
                (
                    c.metadata.name.unwrap_or_default(),
                    c.metadata.resource_version,
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = versions(configmaps.list(&Default::default()).await.unwrap().items);
    let token = request("flux-same-revision").await;
    let ks = wait(rev2.clone(), Some(token), "Flux back at sluice's revision").await;
    note("Flux reconciled sluice's revision");
    let after = versions(configmaps.list(&Default::default()).await.unwrap().items);
    assert_eq!(
        after, before,
        "Flux changed objects sluice had applied at the same revision"
    );
    assert_eq!(
        serde_json::to_value(&status(&ks).inventory).unwrap(),
        sluice_inventory
    );
    repo.write("apps/kept.yaml", &configmap("kept", "3"));
    std::fs::remove_file(repo.work.join("apps/added.yaml")).unwrap();
    next_commit("c3", "Flux").await;
    kept_at("3").await;
    assert!(
        configmaps.get_opt("added").await.unwrap().is_none(),
        "Flux did not prune what sluice added"
    );

    // Clean up: Flux's Deployments at once (`check` in the other tests looks at every
    // namespace), then the Kustomization with Flux still running to finalize it.
    for name in ["source-controller", "kustomize-controller"] {
        deployments.delete(name, &Default::default()).await.unwrap();
    }
    kustomizations
        .delete("apps", &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while kustomizations.get_opt("apps").await.unwrap().is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(flux);
    namespace.delete().await;
}
