//! Through the real `sluice controller` binary: the GitRepository controller
//! runs in the test (with its artifact server), the binary runs the
//! Kustomization controller (`--source=false`), so artifacts are downloaded
//! from `status.artifact.url` and their digest verified.
//!
//! The binary is `target/debug/sluice` (or `$SLUICE_BIN`); `cargo test
//! --workspace` builds it, `cargo build -p sluice` otherwise.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
