//! `sluice build kustomization`, `sluice diff kustomization` and
//! `sluice tree` against the local control plane.

mod support;

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use serde_json::{Value, json};
use sluice_api::Kustomization;
use support::*;

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Applies a YAML stream as the controller would (field manager
/// kustomize-controller).
async fn apply_stream(client: &kube::Client, stream: &str) {
    for doc in stream.split("---\n").filter(|d| !d.trim().is_empty()) {
        let obj: Value = serde_norway::from_str(doc).unwrap();
        let (group, version) = match obj["apiVersion"].as_str().unwrap().rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                obj["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, obj["kind"].as_str().unwrap());
        let (ar, _) = pinned_kind(client, &gvk).await.unwrap();
        let ns = obj["metadata"]["namespace"].as_str().unwrap();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        api.patch(
            obj["metadata"]["name"].as_str().unwrap(),
            &PatchParams::apply("kustomize-controller").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn build_and_diff_a_kustomization() {
    let (client, ns) = setup("diff").await;
    let n = ns.name();
    let ks = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": n},
        "spec": {
            "interval": "10m", "path": "./apps", "prune": true, "targetNamespace": n,
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
            "postBuild": {"substitute": {"GREETING": "hello"}},
        },
    });
    Api::<Kustomization>::namespaced(client.clone(), n)
        .patch(
            "apps",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&ks),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "kustomization.yaml",
        "resources:\n- settings.yaml\n- secret.yaml\n",
    );
    write(
        dir.path(),
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: ${GREETING}\n",
    );
    write(
        dir.path(),
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret-value\n",
    );
    let path = dir.path().to_str().unwrap();

    let built = sluice(&["build", "kustomization", "apps", "--path", path, "-n", n]).expect(0);
    assert!(built.stdout.contains("greeting: hello"), "{}", built.stdout);
    assert!(
        built.stdout.contains(&format!("namespace: {n}")),
        "{}",
        built.stdout
    );
    assert!(
        built
            .stdout
            .contains("kustomize.toolkit.fluxcd.io/name: apps"),
        "{}",
        built.stdout
    );

    // Nothing applied yet: everything would be created.
    let out = sluice(&["diff", "kustomization", "apps", "--path", path, "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("► ConfigMap/{n}/settings created")),
        "{}",
        out.stdout
    );

    apply_stream(&client, &built.stdout).await;
    let out = sluice(&["diff", "ks", "apps", "--path", path, "-n", n]).expect(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("no changes"), "{}", out.stderr);

    // Local changes drift from the cluster; Secret values stay hidden.
    write(
        dir.path(),
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: ${GREETING}, world\n",
    );
    write(
        dir.path(),
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: other-value\n",
    );
    let out = sluice(&["diff", "ks", "apps", "--path", path, "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("► ConfigMap/{n}/settings drifted")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("-   greeting: hello\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+   greeting: hello, world\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("► Secret/{n}/creds drifted")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("***** (before)") && out.stdout.contains("***** (after)"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("s3cret") && !out.stdout.contains("czNjcmV0"),
        "{}",
        out.stdout
    );

    // A Kustomization that is only in a file: its objects are new.
    let ks_file = dir.path().join("ks.yaml");
    write(
        dir.path(),
        "ks.yaml",
        &format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: local\nspec:\n  interval: 10m\n  prune: true\n  targetNamespace: {n}\n  nameSuffix: -local\n  sourceRef:\n    kind: GitRepository\n    name: repo\n  postBuild:\n    substitute:\n      GREETING: hi\n"
        ),
    );
    let file = ks_file.to_str().unwrap();
    let out = sluice(&[
        "diff",
        "ks",
        "local",
        "--path",
        path,
        "--kustomization-file",
        file,
        "-n",
        n,
    ])
    .expect(1);
    assert!(
        out.stdout
            .contains(&format!("► ConfigMap/{n}/settings-local created")),
        "{}",
        out.stdout
    );

    // Errors exit 2.
    let out = sluice(&["diff", "ks", "apps", "--path", "/nonexistent/dir", "-n", n]).expect(2);
    assert!(out.stderr.contains("no such directory"), "{}", out.stderr);
    sluice(&["diff", "ks", "missing", "--path", path, "-n", n]).expect(2);
    ns.delete().await;
}

#[tokio::test]
async fn tree_expands_nested_kustomizations() {
    let (client, ns) = setup("tree").await;
    let n = ns.name();
    kustomization(&client, n, "flux-system", "flux-system", &[]).await;
    kustomization(&client, n, "apps", "flux-system", &[]).await;
    write_status(&client, "Kustomization", n, "flux-system", json!({
        "inventory": {"entries": [
            {"id": format!("{n}_apps_kustomize.toolkit.fluxcd.io_Kustomization"), "v": "v1"},
            {"id": format!("{n}_flux-system_source.toolkit.fluxcd.io_GitRepository"), "v": "v1"},
        ]},
    })).await;
    write_status(
        &client,
        "Kustomization",
        n,
        "apps",
        json!({
            "inventory": {"entries": [
                {"id": "_memos__Namespace", "v": "v1"},
                {"id": "memos_memos_apps_Deployment", "v": "v1"},
            ]},
        }),
    )
    .await;
    let out = sluice(&["tree", "kustomization", "flux-system", "-n", n]).expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "Kustomization/{n}/flux-system\n├── Kustomization/{n}/apps\n│   ├── Namespace/memos\n│   └── Deployment/memos/memos\n└── GitRepository/{n}/flux-system\n"
        )
    );
    let out = sluice(&["tree", "ks", "flux-system", "-n", n, "-o", "json"]).expect(0);
    let tree: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        tree["resources"][0]["resources"][1]["resource"],
        "Deployment/memos/memos"
    );
    sluice(&["tree", "ks", "nothing", "-n", n]).expect(1);
    ns.delete().await;
}
