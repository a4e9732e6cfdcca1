//! Kustomization benchmark (bench/kustomization/run): `sluice controller`
//! (GitRepository + Kustomization controllers, as deployed) with N
//! Kustomizations of M ConfigMaps each from one Git repository. Reports the
//! controller's resident memory, the time from a new commit to all Ready,
//! and the API requests of reconciliations in which nothing changed.
//!
//! Usage: kustomization_bench [KUSTOMIZATIONS=100] [OBJECTS_EACH=20]
//! (`SLUICE_BIN` names the binary; `SLUICE_TEST_KUBECONFIG` the cluster).

#[path = "../tests/it/support/mod.rs"]
mod support;

use sluice_testsupport::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use sluice_api::meta::FluxObject;
use support::*;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn scrape(port: u16) -> String {
    tokio::task::spawn_blocking(move || {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
            .and_then(|r| r.text())
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn cm_yaml(name: &str, generation: u32) -> String {
    let mut s = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for k in 0..4 {
        s.push_str(&format!(
            "  key{k}: \"value {k} of {name} generation {generation}\"\n"
        ));
    }
    s
}

async fn wait_all_ready(env: &Env, n: usize, revision: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let list = env.ks_api().list(&ListParams::default()).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|k| {
                k.is_ready()
                    && k.status
                        .as_ref()
                        .and_then(|s| s.last_applied_revision.as_deref())
                        == Some(revision)
            })
            .count();
        if ready == n {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("only {ready}/{n} Kustomizations ready at {revision} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100);
    let m = args.get(1).copied().unwrap_or(20);
    let bin = std::env::var("SLUICE_BIN").unwrap_or_else(|_| "target/release/sluice".into());
    let interval_secs = 60;

    let env = Env::without_controllers("bench-ks").await;
    let mut repo = Repo::new();
    for i in 0..n {
        for j in 0..m {
            repo.write(
                &format!("k{i}/cm{j}.yaml"),
                &cm_yaml(&format!("k{i}-cm{j}"), 1),
            );
        }
    }
    let rev1 = repo.commit("initial");
    let storage = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let child = Command::new(&bin)
        .args([
            "controller",
            "--watch-namespace",
            env.name(),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--health-addr",
            &format!("127.0.0.1:{}", free_port()),
            "--storage-addr",
            "127.0.0.1:0",
            "--storage-path",
            storage.path().to_str().unwrap(),
            "--reloader=false",
            "--log-level",
            &std::env::var("SLUICE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        ])
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    let pid = child.id();
    let _proc = Process(child);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = rss_kib(pid);

    env.git_repository("repo", &mut repo).await;
    let start = Instant::now();
    for i in 0..n {
        env.kustomization(
            &format!("k{i}"),
            json!({"path": format!("./k{i}"), "interval": format!("{interval_secs}s")}),
        )
        .await;
    }
    let first = wait_all_ready(&env, n, &rev1, Duration::from_secs(600)).await;
    let first_total = start.elapsed();
    let _ = first;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (settled_rss, _) = rss_kib(pid);

    // A new commit touching every Kustomization.
    for i in 0..n {
        repo.write(&format!("k{i}/cm0.yaml"), &cm_yaml(&format!("k{i}-cm0"), 2));
    }
    let commit_at = Instant::now();
    let rev2 = repo.commit("second");
    let api: kube::Api<sluice_api::GitRepository> = env.ns.api();
    api.patch(
        "repo",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "bench"}}}),
        ),
    )
    .await
    .unwrap();
    wait_all_ready(&env, n, &rev2, Duration::from_secs(600)).await;
    let commit_to_ready = commit_at.elapsed();

    // Nothing changes: every Kustomization reconciles on its interval.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = scrape(metrics_port).await;
    tokio::time::sleep(Duration::from_secs(interval_secs + 5)).await;
    let after = scrape(metrics_port).await;
    let delta = |p: &str| metric(&after, p) - metric(&before, p);
    let noop_runs = delta("sluice_kustomization_reconciles_total{result=\"unchanged\"}");
    let changed_runs = delta("sluice_kustomization_reconciles_total{result=\"applied\"}");
    let writes = delta("sluice_kustomization_api_writes_total");
    let reads = delta("sluice_kustomization_api_requests_total{verb=\"read\"}");
    let dry = delta("sluice_kustomization_api_requests_total{verb=\"dry_run\"}");
    let disc = delta("sluice_kustomization_api_requests_total{verb=\"discovery\"}");
    let (rss, hwm) = rss_kib(pid);

    println!("kustomizations: {n}, objects: {}", n * m);
    println!(
        "initial apply, create to all Ready: {:.1}s",
        first_total.as_secs_f64()
    );
    println!(
        "new commit to all Ready: {:.1}s",
        commit_to_ready.as_secs_f64()
    );
    println!(
        "resident memory: idle {:.1} MiB, after apply {:.1} MiB, now {:.1} MiB, peak {:.1} MiB",
        idle_rss as f64 / 1024.0,
        settled_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    let per = |x: f64| if noop_runs > 0.0 { x / noop_runs } else { 0.0 };
    println!(
        "no-change reconciliations: {noop_runs} (with changes: {changed_runs}); write requests: {writes}; per reconciliation: {:.1} reads, {:.1} dry-runs, {:.2} discovery",
        per(reads),
        per(dry),
        per(disc)
    );
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(env.client.clone());
    let _ = namespaces
        .delete(env.name(), &kube::api::DeleteParams::background())
        .await;
}
