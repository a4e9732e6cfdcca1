//! The GitRepository reconciler on kube-runtime's `Controller`.
//!
//! Scheduling: every watch event reaches [`reconcile`], which decides whether
//! the object is *due*: its spec changed (generation), a reconcile was
//! requested (`reconcile.fluxcd.io/requestedAt`), its artifact is missing, or
//! its interval (with jitter) elapsed. Otherwise it only re-arms the timer,
//! so our own status writes never cause Git traffic. A due object costs one
//! ref listing; a fetch happens only when the wanted ref moved; status is
//! written only when it changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{self, Artifact, GitRepository, GitRepositoryStatus, meta};
use crate::storage::Storage;
use sluice_git::fetch::{self as git, Auth, FetchTarget, GitErrorKind, Scheme};
use sluice_git::refs::{self, Selected, Wanted};

/// The field manager status is written with (Flux compatibility).
pub const FIELD_MANAGER: &str = "source-controller";

/// Default timeout for Git operations (`spec.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest `spec.timeout` obeyed; a larger one is lowered to this, so
/// one GitRepository cannot hold a worker for hours.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Root of the artifact storage.
    pub storage_path: std::path::PathBuf,
    /// `host[:port]` (or a full base URL) artifact URLs are built from, like
    /// Flux's `--storage-adv-addr`.
    pub storage_adv_addr: String,
    /// Artifacts kept per object (Flux's `--artifact-retention-records`).
    pub artifact_retention: usize,
    /// Objects reconciled in parallel.
    pub concurrency: u16,
    /// Only watch this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Fraction of the interval used as jitter (Flux's `--interval-jitter-percentage` / 100).
    pub interval_jitter: f64,
    /// Reporting controller name on Events.
    pub event_reporter: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            storage_path: std::path::PathBuf::from("/data"),
            storage_adv_addr: "source-controller.flux-system.svc.cluster.local.".into(),
            artifact_retention: crate::storage::DEFAULT_RETENTION,
            concurrency: 4,
            namespace: None,
            interval_jitter: 0.05,
            event_reporter: "source-controller".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

#[derive(Default, Clone, Copy)]
struct Schedule {
    next_due: Option<Instant>,
    failures: u32,
    /// The generation the last attempt worked on.
    generation: Option<i64>,
}

struct Ctx {
    client: Client,
    storage: Storage,
    recorder: Recorder,
    opts: Options,
    schedule: Mutex<HashMap<(String, String), Schedule>>,
}

/// Runs the controller until its watch ends.
pub async fn run(client: Client, opts: Options) -> anyhow::Result<()> {
    git::install_crypto_provider();
    std::fs::create_dir_all(&opts.storage_path).map_err(|e| {
        anyhow::anyhow!("creating storage dir {}: {e}", opts.storage_path.display())
    })?;
    let api: Api<GitRepository> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // events.k8s.io/v1 requires a reporting instance.
    let instance = std::env::var("POD_NAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| opts.event_reporter.clone());
    let reporter = Reporter {
        controller: opts.event_reporter.clone(),
        instance: Some(instance),
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        storage: Storage::new(&opts.storage_path, &opts.storage_adv_addr),
        recorder: Recorder::new(client.clone(), reporter),
        schedule: Mutex::new(HashMap::new()),
        opts: opts.clone(),
    });
    tracing::info!(storage = %opts.storage_path.display(), namespace = ?opts.namespace, "starting GitRepository controller");
    Controller::new(api, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(opts.concurrency))
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(object = %obj, "reconciled"),
                Err(e) => tracing::debug!("reconcile: {e}"),
            }
        })
        .await;
    Ok(())
}

fn error_policy(
    _obj: Arc<GitRepository>,
    err: &kube::runtime::finalizer::Error<Error>,
    _ctx: Arc<Ctx>,
) -> Action {
    tracing::warn!("GitRepository reconcile error: {err}");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(
    obj: Arc<GitRepository>,
    ctx: Arc<Ctx>,
) -> Result<Action, kube::runtime::finalizer::Error<Error>> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, meta::FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply(o, ctx.clone()).await,
            FinalizerEvent::Cleanup(o) => cleanup(o, ctx.clone()).await,
        }
    })
    .await
}

async fn cleanup(obj: Arc<GitRepository>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    if let Err(e) = ctx.storage.remove_object(&ns, &name) {
        tracing::warn!(namespace = %ns, name = %name, "removing artifacts: {e}");
    }
    if let Ok(mut s) = ctx.schedule.lock() {
        s.remove(&(ns, name));
    }
    Ok(Action::await_change())
}

/// A reconcile failure as Flux reports it.
#[derive(Debug, Clone)]
struct Failure {
    reason: &'static str,
    message: String,
    /// Retrying cannot help until the spec changes.
    stalled: bool,
    /// The condition type set to True besides Ready=False.
    condition: &'static str,
}

impl Failure {
    fn fetch(reason: &'static str, message: String) -> Failure {
        Failure {
            reason,
            message,
            stalled: false,
            condition: meta::FETCH_FAILED,
        }
    }
    fn stalled(reason: &'static str, message: String) -> Failure {
        Failure {
            reason,
            message,
            stalled: true,
            condition: meta::STALLED,
        }
    }
    fn storage(message: String) -> Failure {
        Failure {
            reason: meta::STORAGE_OPERATION_FAILED_REASON,
            message,
            stalled: false,
            condition: meta::STORAGE_OPERATION_FAILED,
        }
    }
}

struct Success {
    artifact: Artifact,
    /// `Some(commit subject)` when a new artifact was written.
    new_artifact: Option<String>,
}

fn jittered(interval: Duration, fraction: f64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // A cheap uniform-ish sample in [-1, 1).
    let r = (nanos.wrapping_mul(2_654_435_761) % 2_000_000) as f64 / 1_000_000.0 - 1.0;
    interval.mul_f64((1.0 + r * fraction.clamp(0.0, 0.5)).max(0.0))
}

async fn apply(obj: Arc<GitRepository>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = (ns.clone(), name.clone());
    let old = obj.status.clone().unwrap_or_default();
    let generation = obj.meta().generation;

    if obj.spec.is_suspended() {
        tracing::debug!(namespace = %ns, name = %name, "reconciliation is suspended");
        return Ok(Action::await_change());
    }

    let requested = obj
        .annotations()
        .get(meta::RECONCILE_REQUEST_ANNOTATION)
        .cloned();
    let interval = obj.spec.interval().ok().filter(|d| !d.is_zero());
    let requested_new = requested.is_some() && requested != old.last_handled_reconcile_at;
    // An artifact recorded in status whose file is gone (storage wiped).
    let artifact_missing = old
        .artifact
        .as_ref()
        .is_some_and(|a| !ctx.storage.exists(a));
    let sched = ctx
        .schedule
        .lock()
        .ok()
        .and_then(|s| s.get(&key).copied())
        .unwrap_or_default();
    // Spec changes are noticed against the last attempt, not the status:
    // a failing object does not advance `observedGeneration`, and its own
    // status writes must not bypass the retry backoff.
    let spec_changed = sched.generation != generation || sched.next_due.is_none();
    if !spec_changed
        && !requested_new
        && !artifact_missing
        && let Some(due) = sched.next_due
    {
        let now = Instant::now();
        if due > now {
            return Ok(Action::requeue(due - now));
        }
    }

    let started = Instant::now();
    let result = match interval {
        None => Err(Failure::stalled(
            "InvalidInterval",
            format!(
                "invalid interval '{}': expected a Go duration such as 1m or 10m0s",
                obj.spec.interval
            ),
        )),
        Some(_) => sync(&obj, &ctx, &old).await,
    };

    // Compose the new status from the old one.
    let mut new = old.clone();
    if requested.is_some() {
        new.last_handled_reconcile_at = requested.clone();
    }
    let mut conditions = new.conditions.take().unwrap_or_default();
    let conds = &mut conditions;
    let mut events: Vec<(EventType, String, String)> = Vec::new();
    let next: Duration;
    match &result {
        Ok(ok) => {
            let msg = format!("stored artifact for revision '{}'", ok.artifact.revision);
            api::set_condition(conds, meta::READY, true, meta::SUCCEEDED, &msg, generation);
            api::set_condition(
                conds,
                meta::ARTIFACT_IN_STORAGE,
                true,
                meta::SUCCEEDED,
                &msg,
                generation,
            );
            for t in [
                meta::RECONCILING,
                meta::STALLED,
                meta::FETCH_FAILED,
                meta::ARTIFACT_OUTDATED,
                meta::STORAGE_OPERATION_FAILED,
            ] {
                api::remove_condition(conds, t);
            }
            if let Some(subject) = &ok.new_artifact {
                events.push((
                    EventType::Normal,
                    meta::NEW_ARTIFACT.into(),
                    format!("stored artifact for commit '{subject}'"),
                ));
            }
            new.artifact = Some(ok.artifact.clone());
            new.observed_generation = generation;
            new.observed_ignore = obj.spec.ignore.clone();
            new.observed_sparse_checkout =
                obj.spec.sparse_checkout.clone().filter(|v| !v.is_empty());
            next = jittered(
                interval.unwrap_or(Duration::from_secs(60)),
                ctx.opts.interval_jitter,
            );
            if let Ok(mut s) = ctx.schedule.lock() {
                s.insert(
                    key.clone(),
                    Schedule {
                        next_due: Some(Instant::now() + next),
                        failures: 0,
                        generation,
                    },
                );
            }
            tracing::info!(namespace = %ns, name = %name, revision = %ok.artifact.revision, fetched = ok.new_artifact.is_some(),
                elapsed_ms = started.elapsed().as_millis() as u64, "reconciled");
        }
        Err(f) => {
            api::set_condition(conds, meta::READY, false, f.reason, &f.message, generation);
            if f.stalled {
                api::set_condition(conds, meta::STALLED, true, f.reason, &f.message, generation);
                api::remove_condition(conds, meta::RECONCILING);
                new.observed_generation = generation;
            } else {
                api::set_condition(conds, f.condition, true, f.reason, &f.message, generation);
                api::set_condition(
                    conds,
                    meta::RECONCILING,
                    true,
                    meta::PROGRESSING_WITH_RETRY,
                    &f.message,
                    generation,
                );
                api::remove_condition(conds, meta::STALLED);
            }
            if f.condition != meta::FETCH_FAILED {
                api::remove_condition(conds, meta::FETCH_FAILED);
            }
            if new.artifact.is_none() {
                api::remove_condition(conds, meta::ARTIFACT_IN_STORAGE);
            }
            events.push((EventType::Warning, f.reason.to_string(), f.message.clone()));
            let failures = if sched.generation == generation {
                sched.failures.saturating_add(1)
            } else {
                1
            };
            let cap = interval.unwrap_or(Duration::from_secs(600));
            next = if f.stalled {
                cap
            } else {
                Duration::from_millis(750)
                    .saturating_mul(1u32 << failures.min(20))
                    .min(cap)
            };
            if let Ok(mut s) = ctx.schedule.lock() {
                s.insert(
                    key.clone(),
                    Schedule {
                        next_due: Some(Instant::now() + next),
                        failures,
                        generation,
                    },
                );
            }
            tracing::warn!(namespace = %ns, name = %name, reason = f.reason, "{}", f.message);
        }
    }
    api::sort_conditions(&mut conditions);
    new.conditions = (!conditions.is_empty()).then_some(conditions);

    if new != old {
        let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({
            "apiVersion": format!("{}/{}", api::GROUP, api::VERSION),
            "kind": api::KIND,
            "status": new,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    let reference = obj.object_ref(&());
    for (type_, reason, note) in events {
        let ev = KubeEvent {
            type_,
            reason,
            note: Some(truncate(&note, 1024)),
            // kube's recorder folds events with the same (type, reason,
            // action) into one series and keeps the first note; a digest of
            // the note in `action` keeps distinct messages (each new
            // revision) as distinct events, while repeats still fold.
            action: format!("Reconcile-{}", short_digest(&note)),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
            tracing::warn!("publishing event: {e}");
        }
    }
    Ok(Action::requeue(next))
}

fn short_digest(s: &str) -> String {
    // FNV-1a, 64 bit: stable and dependency free.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Reads the auth Secret the way Flux does.
async fn read_auth(
    client: &Client,
    ns: &str,
    secret_name: &str,
    scheme: Scheme,
) -> Result<Auth, Failure> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = match secrets.get_opt(secret_name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Failure::fetch(
                meta::AUTHENTICATION_FAILED,
                format!(
                    "failed to get secret '{ns}/{secret_name}': secrets \"{secret_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(Failure::fetch(
                meta::AUTHENTICATION_FAILED,
                format!("failed to get secret '{ns}/{secret_name}': {e}"),
            ));
        }
    };
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| data.get(k).map(|b| b.0.clone()).filter(|v| !v.is_empty());
    let get_s = |k: &str| get(k).map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut auth = Auth {
        ca_pem: get("ca.crt").or_else(|| get("caFile")),
        ..Auth::default()
    };
    match scheme {
        Scheme::Ssh => {
            auth.ssh_identity = get("identity");
            auth.known_hosts = get("known_hosts");
            if auth.ssh_identity.is_none() {
                return Err(Failure::fetch(
                    meta::AUTHENTICATION_FAILED,
                    format!(
                        "invalid 'ssh' auth option in secret '{ns}/{secret_name}': 'identity' is required"
                    ),
                ));
            }
            if auth.known_hosts.is_none() {
                return Err(Failure::fetch(
                    meta::AUTHENTICATION_FAILED,
                    format!(
                        "invalid 'ssh' auth option in secret '{ns}/{secret_name}': 'known_hosts' is required"
                    ),
                ));
            }
            if get("password").is_some() {
                return Err(Failure::stalled(
                    meta::UNSUPPORTED,
                    format!(
                        "secret '{ns}/{secret_name}': passphrase-protected ssh identities are not supported by sluice"
                    ),
                ));
            }
        }
        _ => {
            auth.bearer_token = get_s("bearerToken");
            let username = get_s("username");
            let password = get_s("password");
            match (username, password) {
                (Some(u), Some(p)) => auth.basic = Some((u, p)),
                (Some(u), None) => auth.basic = Some((u, String::new())),
                (None, Some(_)) => {
                    return Err(Failure::fetch(
                        meta::AUTHENTICATION_FAILED,
                        format!(
                            "invalid 'http' auth option in secret '{ns}/{secret_name}': 'password' requires 'username' to be set"
                        ),
                    ));
                }
                (None, None) => {}
            }
        }
    }
    Ok(auth)
}

/// Checks the spec, lists the remote, and fetches/archives when the wanted
/// revision (or the archive configuration) changed.
async fn sync(
    obj: &GitRepository,
    ctx: &Ctx,
    old: &GitRepositoryStatus,
) -> Result<Success, Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;

    // Spec checks that no retry can fix.
    let scheme = git::parse_url(&spec.url).map_err(|m| Failure::stalled(meta::URL_INVALID, m))?;
    if spec.include.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(Failure::stalled(
            meta::UNSUPPORTED,
            "spec.include is not supported by sluice".into(),
        ));
    }
    if spec.recurse_submodules.unwrap_or(false) {
        return Err(Failure::stalled(
            meta::UNSUPPORTED,
            "spec.recurseSubmodules is not supported by sluice".into(),
        ));
    }
    if spec.verification.is_some() {
        return Err(Failure::stalled(
            meta::UNSUPPORTED,
            "spec.verify (commit signature verification) is not supported by sluice".into(),
        ));
    }
    if spec.proxy_secret_ref.is_some() {
        return Err(Failure::stalled(
            meta::UNSUPPORTED,
            "spec.proxySecretRef is not supported by sluice".into(),
        ));
    }
    let provider = spec.provider();
    if provider != api::GitProvider::Generic {
        return Err(Failure::stalled(
            meta::UNSUPPORTED,
            format!(
                "spec.provider '{}' is not supported by sluice (only 'generic')",
                provider.as_str()
            ),
        ));
    }
    let timeout = match spec.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(t) => spec
            .timeout()
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Failure::stalled("InvalidTimeout", format!("invalid timeout '{t}'")))?
            .min(MAX_TIMEOUT),
    };
    let wanted = Wanted::from_ref(spec.reference.as_ref());
    wanted
        .validate()
        .map_err(|m| Failure::stalled(meta::INVALID_REF, m))?;

    let auth = match &spec.secret_ref {
        Some(r) => read_auth(&ctx.client, &ns, &r.name, scheme).await?,
        None if scheme == Scheme::Ssh => {
            return Err(Failure::fetch(
                meta::AUTHENTICATION_FAILED,
                "ssh URLs need spec.secretRef with 'identity' and 'known_hosts'".into(),
            ));
        }
        None => Auth::default(),
    };
    let url_shown = git::redact_url(&spec.url);
    let work = git::work_dir(ctx.storage.root());

    // 1. The cheap remote listing.
    let selected: Selected = match &wanted {
        Wanted::Commit { branch: None, sha } => refs::select(&wanted, &[]).map_err(|e| {
            Failure::fetch(
                meta::GIT_OPERATION_FAILED,
                format!("invalid commit '{sha}': {e}"),
            )
        })?,
        _ => {
            let prefixes = wanted.listing_prefixes();
            let (url, a, w) = (spec.url.clone(), auth.clone(), work.clone());
            let listed = blocking(timeout, move || {
                git::ls_refs(&w, &url, &a, &prefixes, timeout)
            })
            .await;
            let remote_refs = listed.map_err(|e| git_failure(e, &auth))?;
            refs::select(&wanted, &remote_refs).map_err(|e| {
                Failure::fetch(
                    meta::GIT_OPERATION_FAILED,
                    format!("failed to checkout and determine revision: unable to clone '{url_shown}': {e}"),
                )
            })?
        }
    };

    // 2. Unchanged: keep the artifact, no fetch, no write.
    if let Some(a) = &old.artifact
        && a.revision == selected.revision
        && old.observed_ignore == spec.ignore
        && old.observed_sparse_checkout == spec.sparse_checkout.clone().filter(|v| !v.is_empty())
        && ctx.storage.exists(a)
    {
        return Ok(Success {
            artifact: a.clone(),
            new_artifact: None,
        });
    }

    // 3. Fetch, archive, store.
    let target = match (&wanted, &selected.ref_name) {
        (Wanted::Commit { sha, branch }, _) => FetchTarget::Commit {
            sha: sha.clone(),
            branch: branch.clone(),
        },
        (_, Some(r)) => FetchTarget::Ref(r.clone()),
        (_, None) => {
            return Err(Failure::fetch(
                meta::GIT_OPERATION_FAILED,
                "no ref to fetch".into(),
            ));
        }
    };
    let storage = ctx.storage.clone();
    let (url, a, w) = (spec.url.clone(), auth.clone(), work.clone());
    let (ns2, name2) = (ns.clone(), name.clone());
    let ignore = spec.ignore.clone();
    let sparse = spec.sparse_checkout.clone().unwrap_or_default();
    let wanted2 = wanted.clone();
    let selected2 = selected.clone();
    let stored = blocking(
        timeout,
        move || -> Result<(crate::storage::Written, String, String), StoreError> {
            let fetched = git::fetch(&w, &url, &a, &target, timeout).map_err(StoreError::Git)?;
            let commit_hex = fetched.commit.to_hex().to_string();
            // The ref may have moved between listing and fetch: report what was fetched.
            let revision = match &wanted2 {
                Wanted::Commit { .. } => selected2.revision.clone(),
                _ if commit_hex == selected2.commit => selected2.revision.clone(),
                _ => selected2.revision.replace(&selected2.commit, &commit_hex),
            };
            let subject = fetched
                .repo
                .find_commit(fetched.commit)
                .ok()
                .and_then(|c| c.message().ok().map(|m| m.summary().to_string()))
                .unwrap_or_default();
            let file = format!("{commit_hex}.tar.gz");
            let written = storage.write_artifact::<StoreError>(&ns2, &name2, &file, |out| {
                git::archive_commit(
                    &fetched.repo,
                    fetched.commit,
                    ignore.as_deref(),
                    &sparse,
                    out,
                )
                .map_err(StoreError::Git)?;
                Ok(())
            })?;
            Ok((written, revision, subject))
        },
    )
    .await;
    let (written, revision, subject) = match stored {
        Ok(v) => v,
        Err(StoreError::Git(e)) => return Err(git_failure(e, &auth)),
        Err(StoreError::Io(e)) => {
            return Err(Failure::storage(format!("failed to store artifact: {e}")));
        }
    };
    let artifact = Artifact {
        url: ctx.storage.url_for(&written.path),
        path: written.path.clone(),
        revision,
        digest: written.digest,
        last_update_time: sluice_api::meta::now(),
        size: i64::try_from(written.size).ok(),
        metadata: None,
    };
    match ctx.storage.garbage_collect(
        &ns,
        &name,
        &written.path,
        ctx.opts.artifact_retention.max(1),
    ) {
        Ok(removed) if !removed.is_empty() => {
            tracing::debug!(namespace = %ns, name = %name, ?removed, "garbage collected artifacts")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(namespace = %ns, name = %name, "garbage collecting artifacts: {e}")
        }
    }
    Ok(Success {
        artifact,
        new_artifact: Some(subject),
    })
}

#[derive(Debug)]
enum StoreError {
    Git(git::GitError),
    Io(std::io::Error),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<git::GitError> for StoreError {
    fn from(e: git::GitError) -> Self {
        StoreError::Git(e)
    }
}

fn git_failure(e: git::GitError, auth: &Auth) -> Failure {
    let message = git::redact_url(&auth.scrub(&e.message));
    match e.kind {
        GitErrorKind::Auth => Failure::fetch(meta::AUTHENTICATION_FAILED, message),
        GitErrorKind::Operation => Failure::fetch(meta::GIT_OPERATION_FAILED, message),
    }
}

/// Runs blocking Git work off the async runtime, bounded by `timeout`.
async fn blocking<T, E>(
    timeout: Duration,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<git::GitError>,
{
    let handle = tokio::task::spawn_blocking(f);
    match tokio::time::timeout(timeout.saturating_add(Duration::from_secs(5)), handle).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) => Err(E::from(git::GitError {
            kind: GitErrorKind::Operation,
            message: format!("git task failed: {join}"),
        })),
        Err(_) => Err(E::from(git::GitError {
            kind: GitErrorKind::Operation,
            message: format!("git operation timed out after {}s", timeout.as_secs()),
        })),
    }
}
