//! `sluice install` and `sluice uninstall` against the local control plane
//! (no registry: the simulated nodes report the controller's Pod Ready).

mod support;

use std::process::{Command, Stdio};

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
            .contains("all 16 components are installed and up to date"),
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
    let run = |command: &str| {
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
        assert!(out.status.success(), "{text}");
        text
    };

    // 1. The manifest lands in the folder; k3s applies what it finds there.
    run(commands[0]);
    let written = std::fs::read_to_string(manifests.join("sluice.yaml")).unwrap();
    assert!(written.starts_with("# sluice v"), "{written}");
    // The header is a comment, not an object.
    for object in docs(&written).iter().filter(|o| o.is_object()) {
        apply_object(&client, object).await;
    }
    let storage = tmp.path().join("storage");
    let mut controller = Command::new(bin())
        .args(["controller", "--watch-namespace", &ns, "--reloader=false"])
        .args(["--reconciler-service-account=sluice-reconciler"])
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--storage-addr",
            "127.0.0.1:0",
            "--enable-leader-election=false",
        ])
        .arg("--storage-path")
        .arg(&storage)
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .env("RUNTIME_NAMESPACE", &ns)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("controller.log")).unwrap())
        .spawn()
        .expect("starting sluice controller");

    // 2-5.
    let checked = run(commands[1]);
    assert!(
        checked.contains(&format!("controller {ns}/sluice ready")),
        "{checked}"
    );
    for command in &commands[2..] {
        run(command);
    }
    // "Within seconds": the list, as a user would look again.
    let applied = format!("main@sha1:{commit}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let listed = loop {
        let listed = run("sluice get kustomizations");
        if listed.contains(&applied) || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    let _ = controller.kill();
    let _ = controller.wait();
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
