//! Leader election, end to end: `sluice controller` processes with
//! `--enable-leader-election` against the test control plane, sharing the
//! Lease `sluice-leader-election` in a test namespace (`POD_NAMESPACE`), with
//! short durations (lease 5 s, renew deadline 4 s, retry period 1 s).
//!
//! 1. Two processes started together: the Lease names exactly one (and an
//!    Event on it says `<identity> became leader`); that one reconciles a
//!    GitRepository and a Kustomization; the other, in the meantime, sends
//!    the API server nothing but Lease requests (and the start-up
//!    `/version`): every request a process makes is in its log
//!    (`kube_client=debug`), and the standby's are checked.
//! 2. `kill -9` of the leader, and a Kustomization created while no one
//!    leads: the standby takes the Lease within the lease duration (plus
//!    its retry) and the new Kustomization becomes Ready.
//! 3. SIGTERM to the leader with a third process waiting: it exits 0 and
//!    releases the Lease, and the third takes over at its next retry, well
//!    before a lease duration, and applies a new commit.
//! 4. The Lease overwritten with another holder: the leader exits 1 at its
//!    next renewal ("leadership lost"), the waiting candidate takes over
//!    once that holder's lease expires.
//! 5. A standby's SIGTERM ends it at once; the last leader's SIGTERM leaves
//!    the Lease with no holder and a one-second duration.
//!
//! `SLUICE_BIN=/path/to/sluice` runs it against another build; the logs stay
//! in `target/tmp/leader-<pid>/`. Timings are printed (`-- --nocapture`).

use sluice_testsupport::free_port;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use serde_json::{Value, json};
use sluice_api::{GitRepository, Kustomization};
use sluice_testsupport::git_server::{GitServer, git};
use sluice_testsupport::{TestNamespace, kubeconfig_path};

const LEASE: &str = "sluice-leader-election";
const LEASE_DURATION: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(1);
const CONVERGE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_takeover_after_kill_and_handover_on_sigterm() {
    let started = Instant::now();
    let client = sluice_testsupport::client().await;
    for crd in sluice_api::crds() {
        sluice_testsupport::apply_crd(&client, &crd, "sluice-leader-test").await;
    }
    let ns = TestNamespace::create(&client, "leader").await;
    let repo = Repo::new();
    let server = GitServer::start(repo.root(), None).await;
    let logs =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("leader-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let leases = ns.api::<Lease>();
    let note = |what: &str| eprintln!("[leader] [{:6.1}s] {what}", started.elapsed().as_secs_f64());

    // 1. Two candidates at once: one leads, the other only watches the Lease.
    let mut a = Controller::start("a", ns.name(), &logs);
    let mut b = Controller::start("b", ns.name(), &logs);
    let first = wait_holder(&leases, |h| h.is_some(), "a holder").await;
    note(&format!("Lease held by {first}"));
    let (mut leader, mut standby) = if first.starts_with("a_") {
        (a, b)
    } else {
        assert!(first.starts_with("b_"), "unexpected holder {first}");
        std::mem::swap(&mut a, &mut b);
        (a, b)
    };
    git_repository(&ns, &server.url("repo")).await;
    kustomization(&ns, "one", "./one").await;
    let t = Instant::now();
    wait_ready(&ns, "one").await;
    note(&format!(
        "Kustomization one Ready after {:.1}s, reconciled by {}",
        t.elapsed().as_secs_f64(),
        leader.name
    ));
    assert_eq!(holder(&leases).await.as_deref(), Some(first.as_str()));
    let leader_urls = api_requests(&leader.log_text());
    assert!(
        leader_urls
            .iter()
            .any(|u| u.contains("kustomize.toolkit.fluxcd.io")),
        "the leader made no Kustomization request: {leader_urls:?}"
    );
    // Let the standby wait a few more retries while the objects exist.
    let deadline = Instant::now() + Duration::from_secs(30);
    while api_requests(&standby.log_text()).len() < 5 {
        assert!(Instant::now() < deadline, "the standby stopped trying");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let standby_log = standby.log_text();
    assert!(
        standby_log.contains("waiting for the leader election Lease"),
        "{standby_log}"
    );
    let standby_urls = api_requests(&standby_log);
    assert!(!standby_urls.is_empty(), "no request logged: {standby_log}");
    let stray: Vec<&String> = standby_urls
        .iter()
        .filter(|u| !is_lease_or_version(u, ns.name()))
        .collect();
    assert!(
        stray.is_empty(),
        "the standby {} touched the API beyond the Lease: {stray:?}",
        standby.name
    );
    note(&format!(
        "standby {} made {} requests, all on the Lease or /version",
        standby.name,
        standby_urls.len()
    ));
    assert!(standby.is_running() && leader.is_running());
    wait_event(&ns, &format!("{first} became leader")).await;

    // 2. kill -9 the leader; work arriving meanwhile is done by the standby.
    let transitions_before = lease_transitions(&leases).await;
    leader.kill9();
    let killed = Instant::now();
    kustomization(&ns, "two", "./two").await;
    let standby_prefix = format!("{}_", standby.name);
    let second = wait_holder(
        &leases,
        |h| h.is_some_and(|h| h.starts_with(&standby_prefix)),
        "the standby",
    )
    .await;
    let takeover = killed.elapsed();
    note(&format!(
        "kill -9 {}: {second} took the Lease after {:.1}s",
        leader.name,
        takeover.as_secs_f64()
    ));
    // Expired a lease duration after the last renewal the standby saw, which
    // it sees within one (jittered, ≤ 2.2×) retry period; then one attempt.
    let bound = LEASE_DURATION + RETRY.mul_f64(2.2) * 2 + Duration::from_secs(2);
    assert!(
        takeover <= bound,
        "takeover took {takeover:?} (bound {bound:?})"
    );
    assert_eq!(lease_transitions(&leases).await, transitions_before + 1);
    wait_ready(&ns, "two").await;
    note(&format!(
        "Kustomization two (created while no one led) Ready {:.1}s after the kill",
        killed.elapsed().as_secs_f64()
    ));
    assert!(configmap_exists(&ns, "from-two").await);
    let mut leader = standby;

    // 3. SIGTERM hands the Lease over at once.
    let mut c = Controller::start("c", ns.name(), &logs);
    wait_logged(&c, "waiting for the leader election Lease").await;
    let (took, status) = leader.sigterm().await;
    let termed = Instant::now();
    assert!(status.success(), "{} exited with {status}", leader.name);
    let third = wait_holder(&leases, |h| h.is_some_and(|h| h.starts_with("c_")), "c").await;
    let handover = termed.elapsed();
    note(&format!(
        "SIGTERM {}: exited 0 in {:.1}s; {third} took the released Lease {:.1}s later",
        leader.name,
        took.as_secs_f64(),
        handover.as_secs_f64()
    ));
    assert!(
        handover < LEASE_DURATION,
        "handover after SIGTERM took {handover:?}: the Lease was not released"
    );
    // The new leader works: a change in Git reaches the cluster.
    repo.commit_two("v2");
    request_reconcile(&ns).await;
    wait_configmap_value(&ns, "from-two", "v2").await;
    note("the new leader applied a new commit");

    // 4. The Lease taken from under the leader (as by a candidate that saw
    // it expire): the leader stops and exits non-zero at its next renewal.
    let mut d = Controller::start("d", ns.name(), &logs);
    wait_logged(&d, "waiting for the leader election Lease").await;
    let mut lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.get_or_insert_default();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();
    let stolen = Instant::now();
    let status = c.wait_exit(Duration::from_secs(15)).await;
    note(&format!(
        "Lease taken by an intruder: c exited with {status} after {:.1}s",
        stolen.elapsed().as_secs_f64()
    ));
    assert_eq!(status.code(), Some(1), "c exited with {status}");
    assert!(c.log_text().contains("leadership lost"), "{}", c.log_text());
    // The intruder never renews: d takes over after the lease duration.
    wait_holder(&leases, |h| h.is_some_and(|h| h.starts_with("d_")), "d").await;
    note(&format!(
        "d took the Lease {:.1}s after the intruder",
        stolen.elapsed().as_secs_f64()
    ));

    // 5. A standby's SIGTERM ends it at once; the leader's releases the Lease.
    let mut e = Controller::start("e", ns.name(), &logs);
    wait_logged(&e, "waiting for the leader election Lease").await;
    let (took, status) = e.sigterm().await;
    assert!(
        status.success() && took < Duration::from_secs(3),
        "{status} {took:?}"
    );
    let (_, status) = d.sigterm().await;
    assert!(status.success(), "d exited with {status}");
    let lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.unwrap_or_default();
    assert_eq!(
        spec.holder_identity.as_deref().unwrap_or(""),
        "",
        "{spec:?}"
    );
    assert_eq!(spec.lease_duration_seconds, Some(1));
    note("Lease released on the last leader's SIGTERM");

    drop(server);
    ns.delete().await;
    note("done");
}

// ------------------------------------------------------------ helpers ---

fn is_lease_or_version(url: &str, ns: &str) -> bool {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    path == "/version"
        || path == format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases")
        || path == format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}")
}

/// The URL of every request in a log written with `kube_client=debug`.
fn api_requests(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("requesting"))
        .filter_map(|l| {
            let start = l.find("http.url=")? + "http.url=".len();
            let rest = &l[start..];
            let end = rest.find([' ', '}']).unwrap_or(rest.len());
            Some(rest[..end].to_string())
        })
        .collect()
}

async fn holder(leases: &kube::Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn lease_transitions(leases: &kube::Api<Lease>) -> i32 {
    let lease = leases.get(LEASE).await.unwrap();
    lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0)
}

/// Polls the Lease every 50 ms until its holder satisfies `pred`.
async fn wait_holder(
    leases: &kube::Api<Lease>,
    pred: impl Fn(Option<&str>) -> bool,
    what: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = holder(leases).await;
        if pred(h.as_deref()) {
            return h.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "the Lease never named {what} (holder: {h:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the Event client-go's election records on the Lease.
async fn wait_event(ns: &TestNamespace, note: &str) {
    use k8s_openapi::api::events::v1::Event;
    let api = ns.api::<Event>();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = api.list(&Default::default()).await.unwrap();
        if events.items.iter().any(|e| {
            e.reason.as_deref() == Some("LeaderElection")
                && e.note.as_deref() == Some(note)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Lease")
        }) {
            return;
        }
        assert!(Instant::now() < deadline, "no Event {note:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_logged(c: &Controller, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.log_text().contains(what) {
        assert!(
            Instant::now() < deadline,
            "{} never logged {what:?}",
            c.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn git_repository(ns: &TestNamespace, url: &str) {
    let obj: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "repo"},
        "spec": {"url": url, "interval": "10m", "timeout": "10s", "ref": {"branch": "main"}},
    }))
    .unwrap();
    ns.api::<GitRepository>()
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

async fn kustomization(ns: &TestNamespace, name: &str, path: &str) {
    let obj: Kustomization = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name},
        "spec": {
            "interval": "10m",
            "retryInterval": "2s",
            "timeout": "1m",
            "path": path,
            "prune": true,
            "targetNamespace": ns.name(),
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
        },
    }))
    .unwrap();
    ns.api::<Kustomization>()
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

/// `flux reconcile kustomization two --with-source`, by annotation.
async fn request_reconcile(ns: &TestNamespace) {
    use kube::api::{Patch, PatchParams};
    let token = format!("{:?}", std::time::SystemTime::now());
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    ns.api::<GitRepository>()
        .patch("repo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    ns.api::<Kustomization>()
        .patch("two", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn wait_ready(ns: &TestNamespace, name: &str) {
    let api = ns.api::<Kustomization>();
    let deadline = Instant::now() + CONVERGE;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(k) = api.get(name).await {
            last = serde_json::to_value(&k).unwrap();
            let ready = last["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "Kustomization {name} not Ready within {CONVERGE:?}: {:#}",
        last["status"]
    );
}

async fn configmap_exists(ns: &TestNamespace, name: &str) -> bool {
    use k8s_openapi::api::core::v1::ConfigMap;
    ns.api::<ConfigMap>().get_opt(name).await.unwrap().is_some()
}

async fn wait_configmap_value(ns: &TestNamespace, name: &str, v: &str) {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api = ns.api::<ConfigMap>();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let got = api
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|cm| cm.data)
            .and_then(|d| d.get("v").cloned());
        if got.as_deref() == Some(v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ConfigMap {name} never got v={v} (has {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sluice_bin() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

/// A `sluice controller` candidate named `name` (its `POD_NAME`), with
/// storage of its own, as a pod has; killed on drop, its log printed when the
/// test fails.
struct Controller {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    _storage: tempfile::TempDir,
}

impl Controller {
    fn start(name: &'static str, ns: &str, logs: &Path) -> Controller {
        let storage = tempfile::tempdir().unwrap();
        let log = logs.join(format!("{name}.log"));
        let file = File::create(&log).unwrap();
        let child = Command::new(sluice_bin())
            .args([
                "--log-level",
                "info,kube_client=debug",
                "controller",
                "--watch-namespace",
                ns,
                "--metrics-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
                "--storage-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--storage-path",
                storage.path().to_str().unwrap(),
                "--reloader=false",
                "--graceful-shutdown-timeout=5s",
                "--enable-leader-election",
                "--leader-election-lease-duration",
                &format!("{}s", LEASE_DURATION.as_secs()),
                "--leader-election-renew-deadline=4s",
                "--leader-election-retry-period",
                &format!("{}ms", RETRY.as_millis()),
            ])
            .env("KUBECONFIG", kubeconfig_path())
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", ns)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("starting sluice controller");
        Controller {
            name,
            child: Some(child),
            log,
            _storage: storage,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 sluice controller");
            child.wait().unwrap();
        }
    }

    /// Waits for the process to exit by itself, at most `timeout`.
    async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("a running controller");
        let t = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if t.elapsed() > timeout {
                child.kill().ok();
                child.wait().ok();
                panic!("{} still running after {timeout:?}; killed", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM; how long it took to exit (at most 20 s) and how.
    async fn sigterm(&mut self) -> (Duration, ExitStatus) {
        let mut child = self.child.take().expect("a running controller");
        let t = Instant::now();
        // SAFETY: kill(2) on our own child, not yet waited for (its pid
        // cannot have been reused).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "sending SIGTERM");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (t.elapsed(), status);
            }
            if t.elapsed() > Duration::from_secs(20) {
                child.kill().ok();
                child.wait().ok();
                panic!("{} still running 20 s after SIGTERM; killed", self.name);
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
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().filter(|l| !l.contains("kube_client")).collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            eprintln!(
                "----- {} ({}) -----\n{tail}\n-----",
                self.name,
                self.log.display()
            );
        }
    }
}

/// A bare repository with `one/` and `two/` (a ConfigMap each) and a working
/// clone, in a temporary directory.
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
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        let repo = Repo { dir, work };
        repo.write("one", "from-one", "v1");
        repo.write("two", "from-two", "v1");
        repo.push("initial");
        repo
    }

    fn write(&self, dir: &str, name: &str, v: &str) {
        let d = self.work.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n",
        )
        .unwrap();
        std::fs::write(
            d.join("cm.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{v}\"\n"
            ),
        )
        .unwrap();
    }

    fn push(&self, msg: &str) {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", msg]);
        git(&self.work, &["push", "-q", "--force", "origin", "main"]);
    }

    fn commit_two(&self, v: &str) {
        self.write("two", "from-two", v);
        self.push(v);
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}
