//! The bad-input suite (`tests/bad-input/cases.yaml`) through the
//! Kustomization controller against the local control plane: one Git
//! repository holds every case, one Kustomization builds each. Each must
//! fail with its message and within its time bound, nothing of it may
//! reach the cluster, no message may carry a host file, and a healthy
//! Kustomization beside them must still apply a new commit within seconds.

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::json;
use sluice_testsupport::bad_input::{Tarpit, cases};

/// Peak resident size of this process (the controllers run in it), MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_cleanly_and_never_hold_up_a_healthy_kustomization() {
    let env = Env::start("bad-input").await;
    let tarpit = Tarpit::start();
    let cases = cases();
    let mut repo = Repo::new();
    for c in &cases {
        c.write(&repo.work.join("cases").join(&c.name), &tarpit.addr());
    }
    repo.write("good/cm.yaml", &configmap("good", &[("v", "1")]));
    let rev = repo.commit("bad inputs and one good directory");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("good", json!({"path": "./good"})).await;
    // The artifact first, so each case fails at its build, not for want of
    // a source.
    env.wait_ready("good", &rev).await;
    let started = Instant::now();
    for c in &cases {
        let mut spec = json!({"path": format!("./cases/{}", c.name), "timeout": "30s"});
        if let Some(vars) = &c.substitute {
            spec["postBuild"] = json!({ "substitute": vars });
        }
        env.kustomization(&format!("bad-{}", c.name), spec).await;
    }

    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let passwd_line = passwd.lines().next().unwrap_or("root:x:0:0").to_string();
    let mut failures = Vec::new();
    // Four workers build the cases concurrently: each is given its own
    // bound plus the time the others before it may take.
    let all_bound: u64 = cases.iter().map(|c| c.seconds).sum::<u64>() + 30;
    for c in &cases {
        let name = format!("bad-{}", c.name);
        let k = sluice_testsupport::wait_for(
            &env.ks_api(),
            &name,
            Duration::from_secs(all_bound),
            |k| ready(k).is_some_and(|r| r.0 == "False"),
        )
        .await;
        let (_, reason, message) = ready(&k).unwrap_or_default();
        eprintln!(
            "{name}: {reason} after {:.1?}: {message}",
            started.elapsed()
        );
        if reason != "BuildFailed" || !message.contains(&c.error) {
            failures.push(format!(
                "{name}: expected BuildFailed with {:?}, got {reason}: {message}",
                c.error
            ));
        }
        if message.contains(&passwd_line) {
            failures.push(format!("{name}: the message carries /etc/passwd"));
        }
    }

    // Nothing of any case reached the cluster.
    let leaked: Vec<String> = env
        .configmaps()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .filter(|n| n.starts_with("leak-"))
        .collect();
    if !leaked.is_empty() {
        failures.push(format!("applied from bad cases: {leaked:?}"));
    }

    // The healthy Kustomization still follows Git at once.
    repo.write("good/cm.yaml", &configmap("good", &[("v", "2")]));
    let rev2 = repo.commit("good changes");
    let t = Instant::now();
    env.refresh_source("repo", &rev2).await;
    env.wait_ready("good", &rev2).await;
    let took = t.elapsed();
    eprintln!(
        "good applied {rev2} in {took:.1?} beside {} failing",
        cases.len()
    );
    if took > Duration::from_secs(30) {
        failures.push(format!(
            "the good Kustomization took {took:?} to apply a commit"
        ));
    }
    let good = env.configmaps().get("good").await.unwrap();
    assert_eq!(good.data.unwrap()["v"], "2");

    let rss = peak_rss_mib();
    eprintln!("peak RSS of the test process (controllers included): {rss} MiB");
    if rss > 1024 {
        failures.push(format!("peak RSS {rss} MiB over 1 GiB"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
