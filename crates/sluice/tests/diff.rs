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
    helm_release(&client, n, "traefik", "charts", json!({})).await;
    write_status(
        &client,
        "HelmRelease",
        n,
        "traefik",
        json!({
            "inventory": {"entries": [
                {"id": "traefik_traefik_apps_Deployment", "v": "v1"},
                {"id": "traefik_traefik__Service", "v": "v1"},
            ]},
        }),
    )
    .await;
    write_status(
        &client,
        "Kustomization",
        n,
        "apps",
        json!({
            "inventory": {"entries": [
                {"id": "_memos__Namespace", "v": "v1"},
                {"id": "memos_memos_apps_Deployment", "v": "v1"},
                {"id": format!("{n}_traefik_helm.toolkit.fluxcd.io_HelmRelease"), "v": "v2"},
            ]},
        }),
    )
    .await;
    let out = sluice(&["tree", "kustomization", "flux-system", "-n", n]).expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "Kustomization/{n}/flux-system\n├── Kustomization/{n}/apps\n│   ├── Namespace/memos\n│   ├── Deployment/memos/memos\n│   └── HelmRelease/{n}/traefik\n│       ├── Deployment/traefik/traefik\n│       └── Service/traefik/traefik\n└── GitRepository/{n}/flux-system\n"
        )
    );
    let out = sluice(&["tree", "helmrelease", "traefik", "-n", n]).expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "HelmRelease/{n}/traefik\n├── Deployment/traefik/traefik\n└── Service/traefik/traefik\n"
        )
    );
    sluice(&["tree", "hr", "nothing", "-n", n]).expect(1);
    let out = sluice(&["tree", "ks", "flux-system", "-n", n, "-o", "json"]).expect(0);
    let tree: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        tree["resources"][0]["resources"][1]["resource"],
        "Deployment/memos/memos"
    );
    sluice(&["tree", "ks", "nothing", "-n", n]).expect(1);
    ns.delete().await;
}

/// A chart (directory) with a ConfigMap from `.Values.greeting` and, when
/// `old`, a second ConfigMap only the old version has.
fn greet_chart(dir: &std::path::Path, old: bool) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    write(
        dir,
        "Chart.yaml",
        "apiVersion: v2\nname: greet\nversion: 0.1.0\n",
    );
    write(dir, "values.yaml", "greeting: default\n");
    write(
        dir,
        "templates/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
    );
    if old {
        write(
            dir,
            "templates/old.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-old\ndata: {}\n",
        );
    }
}

/// Applies the objects of a `sluice build helmrelease` output as helm-controller applies a
/// release (its field manager, Helm's ownership metadata).
async fn apply_release(client: &kube::Client, ns: &str, stream: &str) {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
    for doc in stream.split("---\n").filter(|d| d.contains("kind:")) {
        let mut obj: Value = serde_norway::from_str(doc).unwrap();
        sluice_helmrelease::actions::own(&mut obj, "greet", ns);
        obj["metadata"]["namespace"] = json!(ns);
        api.patch(
            obj["metadata"]["name"].as_str().unwrap(),
            &PatchParams::apply("helm-controller").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn build_and_diff_a_helm_release() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let (client, ns) = setup("diff-hr").await;
    let n = ns.name();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), n);
    let values_cm = |greeting: &str| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "greet-values", "namespace": n},
            "data": {"values.yaml": format!("greeting: {greeting}\n")},
        })
    };
    cms.patch(
        "greet-values",
        &PatchParams::apply("sluice-test"),
        &Patch::Apply(&values_cm("from a ConfigMap")),
    )
    .await
    .unwrap();
    let hr = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "greet", "namespace": n},
        "spec": {
            "interval": "10m",
            "chartRef": {"kind": "OCIRepository", "name": "greet"},
            "valuesFrom": [{"kind": "ConfigMap", "name": "greet-values"}],
            "postRenderers": [{"kustomize": {"patches": [{
                "target": {"kind": "ConfigMap"},
                "patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: any\n  labels:\n    patched: \"yes\"\n",
            }]}}],
        },
    });
    Api::<sluice_api::HelmRelease>::namespaced(client.clone(), n)
        .patch(
            "greet",
            &PatchParams::apply("sluice-test"),
            &Patch::Apply(&hr),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart");
    greet_chart(&chart, false);
    let path = chart.to_str().unwrap();

    // The values from the cluster, the post-renderers and the origin labels.
    let built = sluice(&["build", "helmrelease", "greet", "--path", path, "-n", n]).expect(0);
    for want in [
        "# Source: greet/templates/settings.yaml\n",
        "greeting: from a ConfigMap\n",
        "patched: \"yes\"\n",
        "helm.toolkit.fluxcd.io/name: greet\n",
        "name: greet-settings\n",
    ] {
        assert!(built.stdout.contains(want), "{want}: {}", built.stdout);
    }

    // Nothing installed: created. Installed as helm-controller would: no changes.
    let out = sluice(&["diff", "helmrelease", "greet", "--path", path, "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("► ConfigMap/{n}/greet-settings created")),
        "{}",
        out.stdout
    );
    apply_release(&client, n, &built.stdout).await;
    let out = sluice(&["diff", "hr", "greet", "--path", path, "-n", n]).expect(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("no changes"), "{}", out.stderr);

    // New values in the cluster drift the release.
    cms.patch(
        "greet-values",
        &PatchParams::apply("sluice-test"),
        &Patch::Apply(&values_cm("changed")),
    )
    .await
    .unwrap();
    let out = sluice(&["diff", "hr", "greet", "--path", path, "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("► ConfigMap/{n}/greet-settings drifted"))
            && out.stdout.contains("-   greeting: from a ConfigMap\n")
            && out.stdout.contains("+   greeting: changed\n"),
        "{}",
        out.stdout
    );

    // The deployed release has an object the new chart drops: an upgrade deletes it.
    let old_chart = dir.path().join("old");
    greet_chart(&old_chart, true);
    let old = sluice_helm::chart::load_dir(&old_chart, &Default::default()).unwrap();
    let rendered = sluice_helm::render::render(
        &old,
        &Default::default(),
        &sluice_helm::render::Options {
            release_name: "greet".into(),
            namespace: n.into(),
            ..Default::default()
        },
    )
    .unwrap();
    let record = sluice_helm::release::Release::new_revision(sluice_helm::release::NewRevision {
        name: "greet",
        namespace: n,
        version: 1,
        chart: &old,
        rendered: &rendered,
        config: Default::default(),
        first_deployed: "2026-12-03T10:00:00Z",
        last_deployed: "2026-12-03T10:00:00Z",
        status: sluice_helm::release::Status::Deployed,
        description: "Install complete",
        apply_method: "ssa",
    });
    sluice_helmrelease::storage::Storage::new(client.clone(), n)
        .create(&record, 0, 1_796_000_000)
        .await
        .unwrap();
    let out = sluice(&["diff", "hr", "greet", "--path", path, "-n", n]).expect(1);
    assert!(
        out.stdout
            .contains(&format!("► ConfigMap/{n}/greet-old deleted"))
            && !out.stdout.contains("greet-settings deleted"),
        "{}",
        out.stdout
    );

    // Offline, from a file: valuesFrom is left out, and said so.
    let file = dir.path().join("hr.yaml");
    std::fs::write(&file, serde_norway::to_string(&hr).unwrap()).unwrap();
    let out = sluice_offline(
        &[
            "build",
            "hr",
            "greet",
            "--path",
            path,
            "--helmrelease-file",
            file.to_str().unwrap(),
            "--dry-run",
            "-n",
            n,
        ],
        &[],
    )
    .expect(0);
    assert!(out.stdout.contains("greeting: default\n"), "{}", out.stdout);
    assert!(out.stderr.contains("valuesFrom left out"), "{}", out.stderr);

    // Errors name their cause.
    let out = sluice(&[
        "diff",
        "hr",
        "greet",
        "--path",
        "/nonexistent/chart",
        "-n",
        n,
    ])
    .expect(2);
    assert!(out.stderr.contains("/nonexistent/chart"), "{}", out.stderr);
    let out = sluice(&["build", "hr", "missing", "--path", path, "-n", n]).expect(1);
    assert!(out.stderr.contains("missing"), "{}", out.stderr);
    ns.delete().await;
}
