//! Reloader benchmark: resident memory of `sluice controller` watching many
//! 4 KiB Secrets and ConfigMaps, and the time from a Secret change to the new
//! ReplicaSet. Run by `bench/reloader` (or `make bench`); needs a control plane
//! (`SLUICE_TEST_KUBECONFIG`, else one is started) and the sluice binary
//! (`SLUICE_BIN`, default `target/release/sluice`).
//!
//! Usage: reloader_bench [OBJECTS] [LATENCY_SAMPLES]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_testsupport::{TestNamespace, client, kubeconfig_path, repo_root, wait_for};

const VALUE_BYTES: usize = 4096;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let objects: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("OBJECTS")?
        .unwrap_or(10_000);
    let samples: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("LATENCY_SAMPLES")?
        .unwrap_or(5);
    let bin = std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/sluice"));
    if !bin.is_file() {
        bail!(
            "{} not found; build it with `cargo build --release -p sluice` or set SLUICE_BIN",
            bin.display()
        );
    }

    let client = client().await;
    let ns = TestNamespace::create(&client, "bench-reloader").await;
    let secrets: Api<Secret> = ns.api();
    let configmaps: Api<ConfigMap> = ns.api();

    let start = Instant::now();
    let half = objects / 2;
    stream::iter(0..objects)
        .map(|i| {
            let (secrets, configmaps) = (secrets.clone(), configmaps.clone());
            async move {
                let value = filler(i);
                if i < half {
                    let s: Secret = serde_json::from_value(json!({
                        "metadata": { "name": format!("s-{i}") }, "stringData": { "data": value }
                    }))?;
                    secrets.create(&PostParams::default(), &s).await?;
                } else {
                    let c: ConfigMap = serde_json::from_value(json!({
                        "metadata": { "name": format!("c-{i}") }, "data": { "data": value }
                    }))?;
                    configmaps.create(&PostParams::default(), &c).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!(
        "created {objects} objects of {VALUE_BYTES} bytes in {:?}",
        start.elapsed()
    );

    let deployments: Api<Deployment> = ns.api();
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web", "annotations": { "reloader.stakater.com/auto": "true" } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10",
                    "envFrom": [{ "secretRef": { "name": "s-0" } }] }] }
            }
        }
    }))?;
    deployments.create(&PostParams::default(), &deploy).await?;
    wait_for(&deployments, "web", Duration::from_secs(60), |d| {
        d.status.as_ref().and_then(|s| s.available_replicas) == Some(1)
    })
    .await;

    let metrics_port = free_port()?;
    let mut controller = Controller::start(&bin, ns.name(), metrics_port)?;
    let sync_start = Instant::now();
    loop {
        let tracked = tracked_objects(metrics_port).unwrap_or(0);
        if tracked >= objects as i64 {
            break;
        }
        if let Some(status) = controller.child.try_wait()? {
            bail!("sluice controller exited: {status}");
        }
        if sync_start.elapsed() > Duration::from_secs(120) {
            bail!("controller tracked {tracked} of {objects} objects after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let synced_in = sync_start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_synced, _) = memory(controller.pid())?;

    // Latency: change the Secret, time the new ReplicaSet.
    let mut latencies = Vec::with_capacity(samples);
    let rs_api: Api<ReplicaSet> = ns.api();
    for round in 1..=samples {
        let before = rs_api.list(&ListParams::default()).await?.items.len();
        let patch = json!({ "stringData": { "data": format!("changed-{round}") } });
        let t = Instant::now();
        secrets
            .patch("s-0", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        loop {
            if rs_api.list(&ListParams::default()).await?.items.len() > before {
                latencies.push(t.elapsed());
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("no new ReplicaSet 30 s after changing the Secret (round {round})");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_for(&deployments, "web", Duration::from_secs(60), |d| {
            d.status.as_ref().is_some_and(|s| {
                s.observed_generation == d.metadata.generation
                    && s.updated_replicas == Some(1)
                    && s.available_replicas == Some(1)
            })
        })
        .await;
    }
    let (rss_after, peak) = memory(controller.pid())?;
    controller.stop();
    ns.delete().await;

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "reloader benchmark: {objects} objects ({half} Secrets, {} ConfigMaps) of {VALUE_BYTES} bytes",
        objects - half
    );
    println!(
        "  first listing tracked all objects in   {:>8.2} s",
        synced_in.as_secs_f64()
    );
    println!(
        "  resident memory after sync             {:>8.1} MiB",
        mib(rss_synced)
    );
    println!(
        "  resident memory after {samples} reloads          {:>8.1} MiB",
        mib(rss_after)
    );
    println!(
        "  peak resident memory (VmHWM)           {:>8.1} MiB",
        mib(peak)
    );
    println!(
        "  Secret change -> new ReplicaSet        {:>8.0} ms median, {:.0} ms max ({samples} samples)",
        median.as_secs_f64() * 1000.0,
        latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    );
    println!(
        "  target: peak under 40 MiB -> {}",
        if mib(peak) < 40.0 { "met" } else { "NOT met" }
    );
    println!(
        "  reference: Stakater Reloader is reported at 560 MiB with ~6,000 Secrets (not measured here: the Go module proxy refuses github.com/stakater/Reloader)"
    );
    Ok(())
}

/// Distinct, incompressible-looking 4 KiB values.
fn filler(seed: usize) -> String {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..VALUE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

fn free_port() -> Result<u16> {
    Ok(sluice_testsupport::free_port())
}

struct Controller {
    child: Child,
}

impl Controller {
    fn start(bin: &PathBuf, namespace: &str, metrics_port: u16) -> Result<Controller> {
        let health_port = free_port()?;
        let child = Command::new(bin)
            .args([
                "controller",
                "--watch-namespace",
                namespace,
                "--log-level",
                "warn",
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--health-addr", &format!("127.0.0.1:{health_port}")])
            .env("KUBECONFIG", kubeconfig_path())
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Controller { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    /// Never leave the controller running, whatever way the benchmark ends.
    fn drop(&mut self) {
        self.stop();
    }
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Sum of `sluice_reloader_tracked_objects` over kinds, scraped from /metrics.
fn tracked_objects(port: u16) -> Result<i64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with("sluice_reloader_tracked_objects{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<i64>().ok()))
        .sum())
}
