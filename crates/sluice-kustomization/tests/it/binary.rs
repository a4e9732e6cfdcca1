//! Through the real `sluice controller` binary: the GitRepository controller
//! runs in the test (with its artifact server), the binary runs the
//! Kustomization controller (`--source=false`), so artifacts are downloaded
//! from `status.artifact.url` and their digest verified.
//!
//! The binary is `target/debug/sluice` (or `$SLUICE_BIN`); `cargo test
//! --workspace` builds it, `cargo build -p sluice` otherwise.

use sluice_testsupport::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::json;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sluice_testsupport::repo_root().join("target"));
    let bin = target.join("debug/sluice");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p sluice` (or set SLUICE_BIN)",
        bin.display()
    );
    bin
}

fn http_get(url: &str) -> Option<(u16, String)> {
    let resp = reqwest::blocking::get(url).ok()?;
    let code = resp.status().as_u16();
    Some((code, resp.text().unwrap_or_default()))
}

#[tokio::test]
async fn sluice_controller_binary_applies_a_commit_downloading_the_artifact() {
    let mut env = Env::without_controllers("ks-bin").await;
    let addr = env.start_artifact_server().await;
    env.start_source(&addr.to_string()).await;

    let metrics_port = free_port();
    let health_port = free_port();
    let child = Command::new(sluice_bin())
        .args([
            "controller",
            "--watch-namespace",
            env.name(),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--health-addr",
            &format!("127.0.0.1:{health_port}"),
            "--source=false",
            "--reloader=false",
        ])
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .stdin(Stdio::null())
        .spawn()
        .expect("starting sluice controller");
    let _proc = Process(child);

    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    let rev = repo.commit("one");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;
    let ks = env.wait_ready("apps", &rev).await;
    assert_eq!(ready_message(&ks), format!("Applied revision: {rev}"));
    assert_eq!(
        env.configmaps().get("a").await.unwrap().data.unwrap()["v"],
        "1"
    );

    let health = format!("http://127.0.0.1:{health_port}/readyz");
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let (code, _) = tokio::task::spawn_blocking(move || http_get(&health))
        .await
        .unwrap()
        .expect("readyz answers");
    assert_eq!(code, 200);
    let start = Instant::now();
    loop {
        let m = metrics.clone();
        let body = tokio::task::spawn_blocking(move || http_get(&m))
            .await
            .unwrap()
            .map(|r| r.1)
            .unwrap_or_default();
        if body
            .contains("gotk_reconcile_duration_seconds_count{kind=\"Kustomization\",name=\"apps\"")
            && body.contains("sluice_kustomization_reconciles_total{result=\"applied\"}")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "metrics:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM while an apply is in flight: the binary stops starting
/// reconciliations, lets the apply finish (here at its 30s timeout, a CRD
/// that never becomes Established), writes its status with the inventory,
/// then exits successfully within `--graceful-shutdown-timeout`.
#[tokio::test]
async fn sigterm_drains_the_apply_in_flight_before_exiting() {
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::Api;
    use kube::api::{DeleteParams, PostParams};

    let mut env = Env::without_controllers("ks-bin-term").await;
    let addr = env.start_artifact_server().await;
    env.start_source(&addr.to_string()).await;
    let tag: String = env
        .name()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let crd = |plural: &str| -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{plural}.tests.sluice.dev")},
            "spec": {"group": "tests.sluice.dev", "scope": "Namespaced",
                "names": {"plural": plural, "singular": format!("{plural}s"),
                    "kind": format!("Term{tag}"), "listKind": format!("Term{tag}List")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .expect("a CRD")
    };
    // The kind is taken: the CRD from Git clashes and is never Established.
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let owner = format!("owners{tag}");
    crds.create(&PostParams::default(), &crd(&owner))
        .await
        .expect("create the owning CRD");
    let clash = format!("clashes{tag}");
    let clash_yaml = serde_json::to_string(&crd(&clash)).expect("JSON is YAML");
    let extra_ns = format!("{}-extra", env.name());

    let child = Command::new(sluice_bin())
        .args([
            "controller",
            "--watch-namespace",
            env.name(),
            "--metrics-addr",
            &format!("127.0.0.1:{}", free_port()),
            "--health-addr",
            &format!("127.0.0.1:{}", free_port()),
            "--source=false",
            "--reloader=false",
            "--graceful-shutdown-timeout=50s",
        ])
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .stdin(Stdio::null())
        .spawn()
        .expect("starting sluice controller");
    let pid = child.id();
    let mut proc = Process(child);

    let mut repo = Repo::new();
    repo.write(
        "stuck/ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra_ns}\n"),
    );
    repo.write("stuck/crd.yaml", &clash_yaml);
    repo.commit("a CRD that never becomes Established");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./stuck", "timeout": "30s", "targetNamespace": null}),
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    env.eventually("the apply to start", WAIT, || async {
        namespaces
            .get_opt(&extra_ns)
            .await
            .is_ok_and(|n| n.is_some())
    })
    .await;

    let start = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = proc.0.wait();
        (proc, status)
    })
    .await
    .expect("join");
    let took = start.elapsed();
    let exit = status.1.expect("wait");
    assert!(exit.success(), "exit status {exit}");
    assert!(took < Duration::from_secs(50), "took {took:?}");
    let ks = env.ks_api().get("apps").await.unwrap();
    assert_eq!(ready_message(&ks), "apply timed out after 30s");
    let ids: Vec<String> = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&format!("_{extra_ns}__Namespace")), "{ids:?}");

    let _ = namespaces
        .delete(&extra_ns, &DeleteParams::background())
        .await;
    for name in [owner, clash] {
        let _ = crds
            .delete(
                &format!("{name}.tests.sluice.dev"),
                &DeleteParams::background(),
            )
            .await;
    }
}
