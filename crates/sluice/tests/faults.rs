//! The fault suite: the real `sluice controller` binary, run as users run it
//! (GitRepository and Kustomization controllers in one process, Git served
//! over smart HTTP), against a real control plane, with faults injected
//! while it works:
//!
//! 1. the API server, then etcd, restarted while a Kustomization of a few
//!    hundred objects is being applied;
//! 2. the Git server down and back: the GitRepository goes not-ready with
//!    the reason, the last artifact and the applied objects stay, a commit
//!    made during the outage is applied once it is back;
//! 3. `kill -9` of the controller during an apply (also while Git moves on
//!    and drops what that apply was creating) and during a prune, then a
//!    restart;
//! 4. SIGTERM during a long apply: the process exits within its grace
//!    period, having finished the apply and written its status.
//!
//! After each fault the cluster itself is checked, never the logs: the
//! Kustomization is Ready at Git's revision, every ConfigMap in Git exists
//! with Git's data, nothing else exists (an object left over is either
//! "not pruned", when the inventory still lists it, or "orphaned"), the
//! inventory lists exactly Git's objects, and objects that never left Git
//! keep their UID (nothing was deleted and re-created).
//!
//! The control plane is a testenv instance of its own (`faults-<pid>`, torn
//! down at the end, and by its watchdog if this process dies), not the one
//! `scripts/with-testenv` shares between test binaries: restarting its API
//! server would disturb every other test running at the time. The scenarios
//! run one after the other in one test (about 105 s with the control plane
//! on a 2-core machine; progress with `-- --nocapture`).
//!
//! Faults land while work is in flight: the test polls the namespace's
//! ConfigMaps every 20 ms and strikes once part of the apply (or prune) is
//! visible; what it saw is reported, so a fault that came too late shows.
//!
//! - `SLUICE_FAULTS=api,git,kill,term,term-health` runs only those;
//! - `SLUICE_BIN=/path/to/sluice` runs the suite against another build (a
//!   build from before the drain and the write-ahead inventory fails it:
//!   ConfigMaps orphaned after `kill -9`, unrecorded after SIGTERM);
//! - the controllers' logs stay in `target/tmp/faults-<pid>/`.

use sluice_testsupport::free_port;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use sluice_api::{GitRepository, Kustomization};
use sluice_testsupport::git_server::{GitServer, git};
use sluice_testsupport::{TestNamespace, repo_root};
use tokio::net::{TcpListener, TcpStream};

/// How long a scenario may take to converge after its fault.
const CONVERGE: Duration = Duration::from_secs(90);
/// How long to wait for an apply or prune to be seen in flight.
const IN_FLIGHT: Duration = Duration::from_secs(60);
/// The controller's `--graceful-shutdown-timeout` in these tests.
const GRACE: Duration = Duration::from_secs(15);

#[test]
fn faults() {
    let started = Instant::now();
    remove_old_logs();
    let env = Testenv::up();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut timings = Vec::new();
    runtime.block_on(async {
        let client = env.client().await;
        for crd in sluice_api::crds() {
            sluice_testsupport::apply_crd(&client, &crd, "sluice-faults").await;
        }
        // SLUICE_FAULTS=git,kill runs only those (api, git, kill, term,
        // term-health).
        let only = std::env::var("SLUICE_FAULTS").unwrap_or_default();
        let run = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
        if run("api") {
            let t = Instant::now();
            api_server_restart(&env).await;
            timings.push(("API server and etcd restarts", t.elapsed()));
        }
        if run("git") {
            let t = Instant::now();
            git_server_down_and_back(&env).await;
            timings.push(("Git server down and back", t.elapsed()));
        }
        if run("kill") {
            let t = Instant::now();
            kill_during_apply_and_prune(&env).await;
            timings.push(("kill -9 during apply and prune", t.elapsed()));
        }
        if run("term") {
            let t = Instant::now();
            sigterm_during_apply(&env).await;
            sigterm_outlasting_grace(&env).await;
            timings.push(("SIGTERM during applies", t.elapsed()));
        }
        if run("term") || run("term-health") {
            let t = Instant::now();
            sigterm_during_health_checks(&env).await;
            timings.push(("SIGTERM during health checks", t.elapsed()));
        }
    });
    drop(runtime);
    for (what, took) in timings {
        eprintln!("[faults] {what}: {:.1}s", took.as_secs_f64());
    }
    eprintln!(
        "[faults] all scenarios, with the control plane: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------ scenarios ---

/// (1) The API server restarted (SIGTERM) while a Kustomization of 500
/// objects is applying a commit that changes 460, adds 40 and prunes 40;
/// then etcd killed and restarted while the next commit is applied. The
/// Reloader runs too: its watches must survive both, as the controllers' do
/// (it once ended the process when its watch could not be re-established).
async fn api_server_restart(env: &Testenv) {
    let scn = "API server restart";
    let site = Site::new(env, "faults-api", scn).await;
    let _controller = site.controller_with_reloader();
    let rev1_objects = objects(&[("cm", 0..500)], "1");
    let rev1 = site.push(&rev1_objects, "rev1");
    site.git_repository(&site.server.url("repo"), "10m").await;
    site.kustomization().await;
    let uids = site.converged(&rev1, &rev1_objects, &BTreeMap::new()).await;

    // rev2: cm-000..459 change, cm-460..499 leave Git, cm-500..539 arrive.
    let rev2_objects = objects(&[("cm", 0..460), ("cm", 500..540)], "2");
    let rev2 = site.push(&rev2_objects, "rev2");
    site.request_fetch().await;
    let seen = site
        .wait_in_flight("the apply of rev2", |cms| count_value(cms, "2") >= 10)
        .await;
    let restart = env.restart("apiserver", &[]).await;
    let after = site.configmaps().await;
    site.note(&format!(
        "API server restarted ({restart:.1}s): {}/500 objects of rev2 applied when the restart began, {} once it was back{}",
        count_value(&seen, "2"),
        count_value(&after, "2"),
        if count_value(&after, "2") == 500 {
            " (the apply may have finished before the API server stopped)"
        } else {
            ""
        }
    ));
    site.converged(&rev2, &rev2_objects, &uids).await;

    // rev3: every object changes; etcd is killed in the middle.
    let scn3 = "etcd restart";
    let rev3_objects = objects(&[("cm", 0..460), ("cm", 500..540)], "3");
    let rev3 = site.push(&rev3_objects, "rev3");
    site.request_fetch().await;
    let seen = site
        .wait_in_flight("the apply of rev3", |cms| count_value(cms, "3") >= 10)
        .await;
    let restart = env.restart("etcd", &["--kill"]).await;
    site.note(&format!(
        "{scn3}: etcd killed and restarted ({restart:.1}s) with {}/500 objects of rev3 applied",
        count_value(&seen, "3")
    ));
    site.converged(&rev3, &rev3_objects, &uids).await;
}

/// (2) The Git server down (connection refused) and back on the same
/// address, with a commit pushed during the outage.
async fn git_server_down_and_back(env: &Testenv) {
    let scn = "Git server down and back";
    let site = Site::new(env, "faults-git", scn).await;
    let mut proxy = Proxy::start(site.server.addr).await;
    let url = format!("http://{}/repo.git", proxy.addr);
    let _controller = site.controller();
    let rev1_objects = objects(&[("cm", 0..30)], "1");
    let rev1 = site.push(&rev1_objects, "rev1");
    site.git_repository(&url, "3s").await;
    site.kustomization().await;
    let uids = site.converged(&rev1, &rev1_objects, &BTreeMap::new()).await;

    proxy.down().await;
    site.request_fetch().await;
    let repo = site
        .wait_git_repository("Ready=False while the Git server is down", |g| {
            ready_of(g).0 == "False"
        })
        .await;
    let (_, reason, message) = ready_of(&repo);
    site.note(&format!("GitRepository while down: {reason}: {message}"));
    assert_eq!(
        reason, "GitOperationFailed",
        "[{scn}] the GitRepository's Ready reason while the server is down: {message}"
    );
    assert!(
        message.contains(&proxy.addr.to_string())
            || message.to_lowercase().contains("connection refused")
            || message.to_lowercase().contains("connect"),
        "[{scn}] the Ready message names neither the server nor the connection failure: {message}"
    );
    assert_eq!(
        artifact_revision(&repo).as_deref(),
        Some(rev1.as_str()),
        "[{scn}] the GitRepository lost its last artifact while the server is down"
    );

    // A commit during the outage; the source keeps failing (its 3 s
    // interval passes at least twice) and nothing in the cluster moves.
    let rev2_objects = objects(&[("cm", 0..28), ("cm", 30..32)], "2");
    let rev2 = site.push(&rev2_objects, "rev2");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let repo = site.git_repository_now().await;
    assert_eq!(
        ready_of(&repo).0,
        "False",
        "[{scn}] the GitRepository turned Ready while the server is still down"
    );
    assert_eq!(
        artifact_revision(&repo).as_deref(),
        Some(rev1.as_str()),
        "[{scn}] the GitRepository's artifact changed while the server is down"
    );
    site.converged(&rev1, &rev1_objects, &uids).await;

    proxy.up().await;
    let t = Instant::now();
    site.converged(&rev2, &rev2_objects, &uids).await;
    site.note(&format!(
        "rev2 applied {:.1}s after the Git server came back",
        t.elapsed().as_secs_f64()
    ));
    let repo = site.git_repository_now().await;
    assert_eq!(
        ready_of(&repo).0,
        "True",
        "[{scn}] the GitRepository is not Ready after the server came back: {:?}",
        ready_of(&repo)
    );
}

/// (3) `kill -9` of the controller in the middle of applies and of a prune.
async fn kill_during_apply_and_prune(env: &Testenv) {
    let scn = "kill -9";
    let site = Site::new(env, "faults-kill", scn).await;
    let mut controller = site.controller();
    let rev1_objects = objects(&[("cm", 0..100)], "1");
    let rev1 = site.push(&rev1_objects, "rev1");
    site.git_repository(&site.server.url("repo"), "10m").await;
    site.kustomization().await;
    let mut uids = site.converged(&rev1, &rev1_objects, &BTreeMap::new()).await;

    // (a) Killed while creating add-000..119 (applied first: objects go in
    // name order) and changing cm-*; restarted on the same commit.
    let rev2_objects = objects(&[("add", 0..120), ("cm", 0..100)], "2");
    let rev2 = site.push(&rev2_objects, "rev2");
    site.request_fetch().await;
    let seen = site
        .wait_in_flight("the apply of rev2", |cms| count_prefix(cms, "add-") >= 10)
        .await;
    controller.kill9();
    let at_kill = site.configmaps().await;
    site.note(&format!(
        "(a) killed during the apply of rev2: {} add-* seen before the kill, {} after, {}/100 cm-* changed",
        count_prefix(&seen, "add-"),
        count_prefix(&at_kill, "add-"),
        count_value(&at_kill, "2") - count_prefix(&at_kill, "add-"),
    ));
    // What the killed apply created stays, with its UID.
    for (name, (uid, _)) in &at_kill {
        uids.entry(name.clone()).or_insert_with(|| uid.clone());
    }
    controller = site.controller();
    let uids_a = site.converged(&rev2, &rev2_objects, &uids).await;

    // (b) Killed while creating aa-000..079; while it is down, Git drops
    // them again. Whatever the killed apply created must be pruned after
    // the restart (nothing orphaned).
    let rev3_objects = objects(&[("aa", 0..80), ("add", 0..120), ("cm", 0..100)], "2");
    let _rev3 = site.push(&rev3_objects, "rev3");
    site.request_fetch().await;
    let seen = site
        .wait_in_flight("the apply of rev3", |cms| count_prefix(cms, "aa-") >= 10)
        .await;
    controller.kill9();
    let at_kill = site.configmaps().await;
    let rev4_objects = objects(&[("add", 0..120), ("cm", 0..100)], "4");
    let rev4 = site.push(&rev4_objects, "rev4");
    site.note(&format!(
        "(b) killed during the apply of rev3 ({} aa-* seen before the kill, {} after); rev4 drops them",
        count_prefix(&seen, "aa-"),
        count_prefix(&at_kill, "aa-"),
    ));
    controller = site.controller();
    site.request_fetch().await;
    let uids_b = site.converged(&rev4, &rev4_objects, &uids_a).await;

    // (c) Killed during the prune of add-000..099 (100 of 220: below the
    // mass-deletion guard), restarted on the same commit.
    let rev5_objects = objects(&[("add", 100..120), ("cm", 0..100)], "4");
    let rev5 = site.push(&rev5_objects, "rev5");
    site.request_fetch().await;
    let seen = site
        .wait_in_flight("the prune of rev5", |cms| {
            let left = count_prefix(cms, "add-0");
            left < 100
        })
        .await;
    controller.kill9();
    let at_kill = site.configmaps().await;
    let left = count_prefix(&at_kill, "add-0");
    site.note(&format!(
        "(c) killed during the prune of rev5: {}/100 add-0* deleted when seen, {}/100 after the kill{}",
        100 - count_prefix(&seen, "add-0"),
        100 - left,
        if left == 0 {
            " (the prune had finished: the kill missed its window)"
        } else {
            ""
        }
    ));
    let _controller = site.controller();
    site.converged(&rev5, &rev5_objects, &uids_b).await;
}

/// (4) SIGTERM while a Kustomization of 300 objects is applied for the
/// first time: the process exits within `--graceful-shutdown-timeout`,
/// having finished the apply and recorded it.
async fn sigterm_during_apply(env: &Testenv) {
    let scn = "SIGTERM during a long apply";
    let site = Site::new(env, "faults-term", scn).await;
    let mut controller = site.controller();
    let rev1_objects = objects(&[("cm", 0..300)], "1");
    let rev1 = site.push(&rev1_objects, "rev1");
    site.git_repository(&site.server.url("repo"), "10m").await;
    site.kustomization().await;
    let seen = site
        .wait_in_flight("the apply of rev1", |cms| count_value(cms, "1") >= 20)
        .await;
    let (took, status) = controller.sigterm().await;
    let after = site.configmaps().await;
    site.note(&format!(
        "SIGTERM with {}/300 objects applied: exited in {:.1}s ({status}), {}/300 applied then",
        count_value(&seen, "1"),
        took.as_secs_f64(),
        count_value(&after, "1"),
    ));
    assert_clean_exit(scn, took, &status, GRACE);
    // Whatever exists is recorded: nothing is orphaned by the shutdown.
    let ks = site.kustomization_now().await;
    let inventory = inventory_names(&ks);
    assert_all_recorded(scn, "after the SIGTERM shutdown", &after, &inventory);
    // The drain lets the apply finish and writes its result.
    assert_eq!(
        count_value(&after, "1"),
        300,
        "[{scn}] the apply in flight did not finish before the process exited"
    );
    assert_eq!(
        ks["status"]["lastAppliedRevision"].as_str(),
        Some(rev1.as_str()),
        "[{scn}] the drained apply's status was not written: {}",
        ks["status"]
    );
    let uids = uids_of(&after);
    let _controller = site.controller();
    site.converged(&rev1, &rev1_objects, &uids).await;
}

/// (4b) SIGTERM when the apply in flight (1000 objects) outlasts a 1 s
/// grace period: the process exits at the end of it; what the cut-off apply
/// created is in the inventory, and a restart completes the apply without
/// re-creating anything.
async fn sigterm_outlasting_grace(env: &Testenv) {
    let scn = "SIGTERM, apply longer than the grace period";
    let grace = Duration::from_secs(1);
    let site = Site::new(env, "faults-term-short", scn).await;
    let mut controller = site.controller_with_grace(grace);
    let rev1_objects = objects(&[("cm", 0..1000)], "1");
    let rev1 = site.push(&rev1_objects, "rev1");
    site.git_repository(&site.server.url("repo"), "10m").await;
    site.kustomization().await;
    let seen = site
        .wait_in_flight("the apply of rev1", |cms| count_value(cms, "1") >= 20)
        .await;
    let (took, status) = controller.sigterm().await;
    let after = site.configmaps().await;
    site.note(&format!(
        "SIGTERM with {}/1000 objects applied, grace {grace:?}: exited in {:.1}s ({status}), {}/1000 applied then{}",
        count_value(&seen, "1"),
        took.as_secs_f64(),
        count_value(&after, "1"),
        if after.len() == 1000 {
            " (the apply finished within the grace period: the cut-off was not exercised)"
        } else {
            ""
        }
    ));
    assert_clean_exit(scn, took, &status, grace);
    let ks = site.kustomization_now().await;
    let inventory = inventory_names(&ks);
    assert_all_recorded(
        scn,
        "after the apply was cut off by the grace period",
        &after,
        &inventory,
    );
    let uids = uids_of(&after);
    let _controller = site.controller();
    site.converged(&rev1, &rev1_objects, &uids).await;
}

/// (4c) SIGTERM while the health checks of an apply run (`wait: true`, a
/// Deployment that does not become available): the process exits without
/// waiting for them, the Kustomization says `HealthCheckCanceled` and its
/// inventory is recorded; after a restart the checks run again and it
/// becomes Ready once the Deployment is available.
async fn sigterm_during_health_checks(env: &Testenv) {
    let scn = "SIGTERM during health checks";
    let mut site = Site::new(env, "faults-term-health", scn).await;
    let deployment_id = format!("{}_web_apps_Deployment", site.ns.name());
    site.other_ids.insert(deployment_id.clone());
    let mut controller = site.controller();
    let cms = objects(&[("cm", 0..10)], "1");
    let rev1 = site.push_with(&cms, &unready_deployment(), "rev1");
    site.git_repository(&site.server.url("repo"), "10m").await;
    site.kustomization_with(json!({"wait": true})).await;
    let deployments = site.ns.api::<Deployment>();
    let deadline = Instant::now() + IN_FLIGHT;
    let web_uid = loop {
        let applied = site.try_configmaps().await.map(|c| c.len()).unwrap_or(0);
        if applied == 10
            && let Ok(Some(d)) = deployments.get_opt("web").await
        {
            break d.metadata.uid.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "[{scn}] rev1 was never applied; Kustomization status: {}",
            site.kustomization_now().await["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The health checks now poll a Deployment that stays unavailable.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (took, status) = controller.sigterm().await;
    let ks = site.kustomization_now().await;
    let (ready, reason, message) = ready_of(&ks);
    site.note(&format!(
        "exited in {:.1}s ({status}); Ready={ready} {reason}: {message}",
        took.as_secs_f64()
    ));
    assert_clean_exit(scn, took, &status, GRACE);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "HealthCheckCanceled"),
        "[{scn}] the Kustomization's Ready condition after a SIGTERM during health checks: {message}"
    );
    let inventory = inventory_names(&ks);
    assert!(
        cms.keys().all(|n| inventory.contains(n)) && inventory.contains(&deployment_id),
        "[{scn}] the inventory was not recorded before the health checks: {inventory:?}"
    );

    // After the restart the health checks run again; the application
    // becomes healthy (its Pod turns Ready) and the Kustomization Ready.
    // (Not a new commit: a reconcile in its health checks holds a new
    // revision back until they end or time out, as in Flux.)
    let _controller = site.controller();
    let pods = site.ns.api::<Pod>();
    let unready = json!({"metadata": {"annotations": {"sim.sluice.dev/ready": null}}});
    for pod in pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
    {
        pods.patch(
            pod.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(&unready),
        )
        .await
        .unwrap();
    }
    site.converged(&rev1, &cms, &BTreeMap::new()).await;
    let now = deployments.get("web").await.unwrap().metadata.uid;
    assert_eq!(
        now.as_deref(),
        Some(web_uid.as_str()),
        "[{scn}] the Deployment was deleted and re-created"
    );
}

/// A one-replica Deployment `web` whose Pods are not Ready (nodesim's
/// `sim.sluice.dev/ready: "false"`) until the annotation is removed from
/// them.
fn unready_deployment() -> String {
    let annotations = "      annotations:\n        sim.sluice.dev/ready: \"false\"\n";
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n{annotations}    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
    )
}

// --------------------------------------------------------- the cluster ---

/// The testenv instance of this test binary; `down` on drop.
struct Testenv {
    name: String,
    kubeconfig: PathBuf,
    /// The sluice-testenv binary (`scripts/testenv build`), called directly
    /// for restarts: the script hashes testenv's sources on every call, and
    /// a restart must land while an apply is in flight.
    bin: PathBuf,
}

impl Testenv {
    fn up() -> Testenv {
        let pid = std::process::id();
        let name = format!("faults-{pid}");
        let script = repo_root().join("scripts/testenv");
        let out = Command::new(&script)
            .args(["up", "--name", &name, "--owner-pid", &pid.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/testenv up");
        // From here on the instance is ours to stop, also on failure.
        let mut env = Testenv {
            name,
            kubeconfig: PathBuf::new(),
            bin: PathBuf::new(),
        };
        assert!(
            out.status.success(),
            "`scripts/testenv up --name {}` failed ({})",
            env.name,
            out.status
        );
        env.kubeconfig =
            sluice_testsupport::parse_export_line(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let out = Command::new(&script)
            .arg("build")
            .stdin(Stdio::null())
            .output()
            .expect("running scripts/testenv build");
        assert!(out.status.success(), "`scripts/testenv build` failed");
        env.bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        env
    }

    async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    }

    /// `sluice-testenv restart --component <component>`; returns how long
    /// it took (stop, start, ready).
    async fn restart(&self, component: &str, extra: &[&str]) -> f64 {
        let t = Instant::now();
        let out = tokio::process::Command::new(&self.bin)
            .args(["restart", "--name", &self.name, "--component", component])
            .args(extra)
            .stdin(Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(90), out)
            .await
            .unwrap_or_else(|_| panic!("`sluice-testenv restart --component {component}` hung"))
            .expect("running sluice-testenv restart");
        assert!(
            out.status.success(),
            "`sluice-testenv restart --name {} --component {component}` failed ({}):\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed().as_secs_f64()
    }
}

impl Drop for Testenv {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/testenv"))
            .args(["down", "--name", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ----------------------------------------------------------- a scenario ---

/// One scenario's namespace, Git repository and server, artifact storage.
struct Site {
    scn: &'static str,
    ns: TestNamespace,
    kubeconfig: PathBuf,
    repo: Repo,
    server: GitServer,
    storage: tempfile::TempDir,
    storage_port: u16,
    log: PathBuf,
    started: Instant,
    /// Inventory ids of the objects in Git that are not ConfigMaps.
    other_ids: BTreeSet<String>,
}

impl Site {
    async fn new(env: &Testenv, prefix: &str, scn: &'static str) -> Site {
        let client = env.client().await;
        let ns = TestNamespace::create(&client, prefix).await;
        let repo = Repo::new();
        let server = GitServer::start(repo.root(), None).await;
        let storage = tempfile::tempdir().unwrap();
        // Kept after the run, for a post-mortem: target/tmp/faults-<pid>/.
        let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&env.name);
        std::fs::create_dir_all(&logs).unwrap();
        let log = logs.join(format!("{prefix}.log"));
        Site {
            scn,
            ns,
            kubeconfig: env.kubeconfig.clone(),
            repo,
            server,
            storage_port: free_port(),
            storage,
            log,
            started: Instant::now(),
            other_ids: BTreeSet::new(),
        }
    }

    fn note(&self, what: &str) {
        eprintln!(
            "[faults] [{:6.1}s] {}: {what}",
            self.started.elapsed().as_secs_f64(),
            self.scn
        );
    }

    /// Starts `sluice controller` for this namespace (the same storage and
    /// artifact address across restarts).
    fn controller(&self) -> Controller {
        self.controller_with_grace(GRACE)
    }

    fn controller_with_grace(&self, grace: Duration) -> Controller {
        self.spawn_controller(grace, false)
    }

    /// The controller with the Reloader running too: its watches must
    /// outlive an API server restart as the controllers' do.
    fn controller_with_reloader(&self) -> Controller {
        self.spawn_controller(GRACE, true)
    }

    fn spawn_controller(&self, grace: Duration, reloader: bool) -> Controller {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(sluice_bin())
            .args([
                "controller",
                "--watch-namespace",
                self.ns.name(),
                "--metrics-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
                "--storage-addr",
                &format!("127.0.0.1:{}", self.storage_port),
                "--storage-path",
                self.storage.path().join("artifacts").to_str().unwrap(),
                &format!("--reloader={reloader}"),
                "--graceful-shutdown-timeout",
                &format!("{}ms", grace.as_millis()),
            ])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting sluice controller");
        Controller {
            child: Some(child),
            scn: self.scn,
            log: self.log.clone(),
            grace,
        }
    }

    /// Writes `objects` as Git's content, commits and pushes; returns the
    /// revision (`main@sha1:…`).
    fn push(&self, objects: &BTreeMap<String, String>, msg: &str) -> String {
        self.repo.commit(objects, "", msg)
    }

    /// [`Site::push`] with more YAML documents in Git, whose inventory ids
    /// must be in [`Site::other_ids`].
    fn push_with(&self, objects: &BTreeMap<String, String>, extra: &str, msg: &str) -> String {
        self.repo.commit(objects, extra, msg)
    }

    async fn git_repository(&self, url: &str, interval: &str) {
        let obj: GitRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "repo"},
            "spec": {"url": url, "interval": interval, "timeout": "10s", "ref": {"branch": "main"}},
        }))
        .unwrap();
        self.ns
            .api::<GitRepository>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    async fn kustomization(&self) {
        self.kustomization_with(json!({})).await
    }

    /// The Kustomization `apps`, with `spec` fields added or replaced.
    async fn kustomization_with(&self, spec: Value) {
        let mut obj = json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps"},
            "spec": {
                "interval": "10m",
                "retryInterval": "2s",
                "timeout": "2m",
                "path": "./apps",
                "prune": true,
                "targetNamespace": self.ns.name(),
                "sourceRef": {"kind": "GitRepository", "name": "repo"},
            },
        });
        for (k, v) in spec.as_object().unwrap() {
            obj["spec"][k] = v.clone();
        }
        let obj: Kustomization = serde_json::from_value(obj).unwrap();
        self.ns
            .api::<Kustomization>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// Asks the source controller to fetch now (`flux reconcile source`);
    /// retried while the API server is away.
    async fn request_fetch(&self) {
        let token = format!("{:?}", std::time::SystemTime::now());
        let patch =
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
        let api = self.ns.api::<GitRepository>();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match api
                .patch("repo", &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("[{}] requesting a fetch: {e}", self.scn)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The ConfigMaps of the namespace: name → (uid, data.v). Retried while
    /// the API server is away.
    async fn configmaps(&self) -> BTreeMap<String, (String, String)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.try_configmaps().await {
                Ok(m) => return m,
                Err(e) if Instant::now() > deadline => {
                    panic!("[{}] listing ConfigMaps: {e}", self.scn)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn try_configmaps(&self) -> Result<BTreeMap<String, (String, String)>, kube::Error> {
        let list = self
            .ns
            .api::<ConfigMap>()
            .list(&ListParams::default())
            .await?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|cm| {
                let name = cm.metadata.name?;
                if name == "kube-root-ca.crt" {
                    return None;
                }
                let v = cm
                    .data
                    .and_then(|d| d.get("v").cloned())
                    .unwrap_or_default();
                Some((name, (cm.metadata.uid.unwrap_or_default(), v)))
            })
            .collect())
    }

    /// Polls the namespace's ConfigMaps (every 20 ms) until `pred` holds;
    /// returns what it saw then.
    async fn wait_in_flight(
        &self,
        what: &str,
        pred: impl Fn(&BTreeMap<String, (String, String)>) -> bool,
    ) -> BTreeMap<String, (String, String)> {
        let t = Instant::now();
        let deadline = t + IN_FLIGHT;
        let mut last = BTreeMap::new();
        while Instant::now() < deadline {
            if let Ok(cms) = self.try_configmaps().await {
                if pred(&cms) {
                    self.note(&format!(
                        "{what} seen in flight after {:.1}s",
                        t.elapsed().as_secs_f64()
                    ));
                    return cms;
                }
                last = cms;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ks = self.kustomization_now().await;
        panic!(
            "[{}] {what} was never seen in flight within {IN_FLIGHT:?} ({} ConfigMaps); Kustomization status: {}",
            self.scn,
            last.len(),
            ks["status"]
        );
    }

    /// The Deployments of the namespace and their status, for a failure
    /// message.
    async fn workloads(&self) -> String {
        let Ok(list) = self
            .ns
            .api::<Deployment>()
            .list(&ListParams::default())
            .await
        else {
            return String::new();
        };
        list.items
            .iter()
            .map(|d| {
                format!(
                    "\nDeployment {} status: {}",
                    d.metadata.name.as_deref().unwrap_or_default(),
                    json!(d.status)
                )
            })
            .collect()
    }

    async fn kustomization_now(&self) -> Value {
        match self.ns.api::<Kustomization>().get_opt("apps").await {
            Ok(Some(k)) => serde_json::to_value(k).unwrap(),
            Ok(None) => Value::Null,
            Err(e) => json!({"status": format!("(reading it failed: {e})")}),
        }
    }

    async fn git_repository_now(&self) -> Value {
        serde_json::to_value(self.ns.api::<GitRepository>().get("repo").await.unwrap()).unwrap()
    }

    async fn wait_git_repository(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(g) = self.ns.api::<GitRepository>().get("repo").await {
                let g = serde_json::to_value(g).unwrap();
                if pred(&g) {
                    return g;
                }
                last = g;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "[{}] the GitRepository never became {what}; last status: {}",
            self.scn, last["status"]
        );
    }

    /// Waits until the cluster is what Git says at `revision` (see the
    /// module documentation), then checks that the objects of `keep` still
    /// in Git have the same UID. Returns the UIDs of Git's objects.
    async fn converged(
        &self,
        revision: &str,
        objects: &BTreeMap<String, String>,
        keep: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let t = Instant::now();
        let deadline = t + CONVERGE;
        let (cms, ks) = loop {
            let (problems, cms, ks) = self.differences(revision, objects).await;
            if problems.is_empty() {
                break (cms, ks);
            }
            if Instant::now() > deadline {
                panic!(
                    "[{}] the cluster did not converge to {revision} within {CONVERGE:?}:\n  - {}\nKustomization status: {}{}",
                    self.scn,
                    problems.join("\n  - "),
                    serde_json::to_string_pretty(&ks["status"]).unwrap_or_default(),
                    self.workloads().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let _ = ks;
        let recreated: Vec<String> = keep
            .iter()
            .filter_map(|(name, uid)| {
                let (now, _) = cms.get(name)?;
                (now != uid).then(|| format!("{name} (uid {uid} → {now})"))
            })
            .collect();
        assert!(
            recreated.is_empty(),
            "[{}] {} ConfigMaps that never left Git were deleted and re-created: {}",
            self.scn,
            recreated.len(),
            recreated.join(", ")
        );
        self.note(&format!(
            "converged to {} ({} objects) in {:.1}s",
            short(revision),
            objects.len(),
            t.elapsed().as_secs_f64()
        ));
        cms.into_iter().map(|(n, (uid, _))| (n, uid)).collect()
    }

    /// What keeps the cluster from being Git's `revision`, as sentences.
    async fn differences(
        &self,
        revision: &str,
        objects: &BTreeMap<String, String>,
    ) -> (Vec<String>, BTreeMap<String, (String, String)>, Value) {
        let mut problems = Vec::new();
        let ks = self.kustomization_now().await;
        let cms = match self.try_configmaps().await {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("listing ConfigMaps: {e}"));
                return (problems, BTreeMap::new(), ks);
            }
        };
        let (status, reason, message) = ready_of(&ks);
        if status != "True" {
            problems.push(format!(
                "the Kustomization is not Ready ({status} {reason}: {message})"
            ));
        }
        let applied = ks["status"]["lastAppliedRevision"].as_str().unwrap_or("");
        if applied != revision {
            problems.push(format!("lastAppliedRevision is {applied:?}"));
        }
        let inventory = inventory_names(&ks);
        let mut missing = Vec::new();
        let mut stale = Vec::new();
        for (name, v) in objects {
            match cms.get(name) {
                None => missing.push(name.as_str()),
                Some((_, now)) if now != v => stale.push(format!("{name} (v={now}, Git: {v})")),
                Some(_) => {}
            }
        }
        summarize(&mut problems, "ConfigMaps in Git are missing", &missing);
        summarize(
            &mut problems,
            "ConfigMaps do not have Git's data",
            &stale.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let mut not_pruned = Vec::new();
        let mut orphaned = Vec::new();
        for name in cms.keys().filter(|n| !objects.contains_key(*n)) {
            if inventory.contains(name) {
                not_pruned.push(name.as_str());
            } else {
                orphaned.push(name.as_str());
            }
        }
        summarize(
            &mut problems,
            "ConfigMaps left Git but were not pruned (still in the inventory)",
            &not_pruned,
        );
        summarize(
            &mut problems,
            "ConfigMaps are ORPHANED: not in Git and not in status.inventory",
            &orphaned,
        );
        let lacking: Vec<&str> = objects
            .keys()
            .chain(&self.other_ids)
            .filter(|n| !inventory.contains(*n))
            .map(String::as_str)
            .collect();
        summarize(
            &mut problems,
            "objects in Git are not in status.inventory",
            &lacking,
        );
        let extra: Vec<&str> = inventory
            .iter()
            .filter(|n| !objects.contains_key(*n) && !self.other_ids.contains(*n))
            .map(String::as_str)
            .collect();
        summarize(&mut problems, "inventory entries are not in Git", &extra);
        (problems, cms, ks)
    }
}

fn summarize(problems: &mut Vec<String>, what: &str, names: &[&str]) {
    if names.is_empty() {
        return;
    }
    let shown: Vec<&str> = names.iter().take(8).copied().collect();
    let more = if names.len() > shown.len() {
        format!(", … ({} more)", names.len() - shown.len())
    } else {
        String::new()
    };
    problems.push(format!(
        "{} {what}: {}{more}",
        names.len(),
        shown.join(", ")
    ));
}

/// The ConfigMap names of `status.inventory` (entries of other kinds are
/// kept whole, so that they show up as not in Git).
/// The controller exited cleanly within `grace` (plus scheduling slack).
fn assert_clean_exit(
    scn: &str,
    took: Duration,
    status: &std::process::ExitStatus,
    grace: Duration,
) {
    assert!(
        took <= grace + Duration::from_secs(3),
        "[{scn}] the controller took {took:?} to exit after SIGTERM (grace period {grace:?})"
    );
    assert!(
        status.success(),
        "[{scn}] the controller exited with {status} after SIGTERM"
    );
}

/// Every ConfigMap in `cms` is in the inventory: nothing was orphaned.
fn assert_all_recorded(
    scn: &str,
    when: &str,
    cms: &BTreeMap<String, (String, String)>,
    inventory: &BTreeSet<String>,
) {
    let unrecorded: Vec<&String> = cms.keys().filter(|n| !inventory.contains(*n)).collect();
    assert!(
        unrecorded.is_empty(),
        "[{scn}] {when}, {} ConfigMaps exist that status.inventory lacks: {:?}",
        unrecorded.len(),
        unrecorded.iter().take(10).collect::<Vec<_>>()
    );
}

/// Name to UID of `cms`.
fn uids_of(cms: &BTreeMap<String, (String, String)>) -> BTreeMap<String, String> {
    cms.iter()
        .map(|(n, (uid, _))| (n.clone(), uid.clone()))
        .collect()
}

fn inventory_names(ks: &Value) -> BTreeSet<String> {
    ks["status"]["inventory"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str())
        .map(|id| {
            // <namespace>_<name>_<group>_<kind>
            let parts: Vec<&str> = id.split('_').collect();
            match parts.as_slice() {
                [_, name, "", "ConfigMap"] => name.to_string(),
                _ => id.to_string(),
            }
        })
        .collect()
}

/// (status, reason, message) of the Ready condition.
fn ready_of(obj: &Value) -> (String, String, String) {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("reason"), s("message"))
        })
        .unwrap_or_else(|| ("Unknown".into(), String::new(), "no Ready condition".into()))
}

fn artifact_revision(repo: &Value) -> Option<String> {
    repo["status"]["artifact"]["revision"]
        .as_str()
        .map(str::to_string)
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min("main@sha1:".len() + 8)]
}

/// `{prefix}-NNN` → `v` for each range.
fn objects(ranges: &[(&str, std::ops::Range<usize>)], v: &str) -> BTreeMap<String, String> {
    ranges
        .iter()
        .flat_map(|(prefix, r)| r.clone().map(move |i| format!("{prefix}-{i:03}")))
        .map(|n| (n, v.to_string()))
        .collect()
}

fn count_value(cms: &BTreeMap<String, (String, String)>, v: &str) -> usize {
    cms.values().filter(|(_, x)| x == v).count()
}

fn count_prefix(cms: &BTreeMap<String, (String, String)>, prefix: &str) -> usize {
    cms.keys().filter(|n| n.starts_with(prefix)).count()
}

/// Removes the log directories of earlier runs (`target/tmp/faults-<pid>`
/// whose process is gone).
fn remove_old_logs() {
    let Ok(dirs) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else {
        return;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("faults-")
            && pid.parse::<u32>().is_ok()
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

/// The binary under test: `$SLUICE_BIN` (to run the suite against another
/// build), else the one cargo built with this test.
fn sluice_bin() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

// ----------------------------------------------------------- processes ---

/// A running `sluice controller`; killed on drop. When the test fails, the
/// end of its log is printed.
struct Controller {
    child: Option<Child>,
    scn: &'static str,
    log: PathBuf,
    grace: Duration,
}

impl Controller {
    /// `kill -9`.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 sluice controller");
            child.wait().unwrap();
        }
    }

    /// SIGTERM; returns how long the process took to exit (bounded: it is
    /// killed after twice its grace period and 5 s) and its status.
    async fn sigterm(&mut self) -> (Duration, ExitStatus) {
        let mut child = self.child.take().expect("a running controller");
        let t = Instant::now();
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // waited for yet (so the pid cannot have been reused).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "sending SIGTERM");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (t.elapsed(), status);
            }
            if t.elapsed() > self.grace * 2 + Duration::from_secs(5) {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "[{}] sluice controller still running {:?} after SIGTERM (grace period {:?}); killed",
                    self.scn,
                    t.elapsed(),
                    self.grace
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!(
                "----- [{}] last lines of the controller's log ({}) -----\n{tail}\n-----",
                self.scn,
                self.log.display()
            );
        }
    }
}

/// A bare repository and a working clone, in a temporary directory.
struct Repo {
    dir: tempfile::TempDir,
    work: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("repo.git");
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "--bare", "-q", "-b", "main"]);
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("apps")).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        std::fs::write(
            work.join("apps/kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- configmaps.yaml\n",
        )
        .unwrap();
        Repo { dir, work }
    }

    /// The directory the Git server serves (`repo.git` is in it).
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn commit(&self, objects: &BTreeMap<String, String>, extra: &str, msg: &str) -> String {
        let mut yaml = extra.to_string();
        for (name, v) in objects {
            yaml.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{v}\"\n"
            ));
        }
        std::fs::write(self.work.join("apps/configmaps.yaml"), yaml).unwrap();
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&self.work, &["push", "-q", "--force", "origin", "main"]);
        format!("main@sha1:{}", git(&self.work, &["rev-parse", "HEAD"]))
    }
}

/// A TCP proxy in front of the Git server, to take it down (connection
/// refused) and bring it back on the same address.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            target,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task: open connections end with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// Stops listening and cuts open connections.
    async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    async fn up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() > deadline => {
                    panic!("re-binding the Git proxy on {}: {e}", self.addr)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        self.serve(listener);
    }
}
