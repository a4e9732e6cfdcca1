//! The GitRepository reconciler on kube-runtime's `Controller`.
//!
//! Scheduling: every watch event reaches [`reconcile`], which decides whether
//! the object is *due*: its spec changed (generation), a reconcile was
//! requested (`reconcile.fluxcd.io/requestedAt`), its artifact is missing, or
//! its interval (with jitter) elapsed. Otherwise it only re-arms the timer,
//! so our own status writes never cause Git traffic. A due object costs one
//! ref listing; a fetch happens only when the wanted ref moved; status is
//! written only when it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Controller};
use kube::{Api, Client, Resource, ResourceExt};
use sluice_api::meta::{
    self as flux, ARTIFACT_IN_STORAGE_CONDITION, ARTIFACT_OUTDATED_CONDITION,
    AUTHENTICATION_FAILED_REASON, FETCH_FAILED_CONDITION, GIT_OPERATION_FAILED_REASON,
    STORAGE_OPERATION_FAILED_CONDITION, STORAGE_OPERATION_FAILED_REASON, SUCCEEDED_REASON,
    URL_INVALID_REASON,
};
use sluice_runtime::{
    Failure, History, Outcome, Policy, Recorder, Repeat, Retry, Schedules, decide, finalizers,
    schedule,
};

use crate::api::{self, Artifact, GitRepository, GitRepositoryStatus};
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
    /// Reconcile only GitRepositories matching this label selector (Flux's
    /// `--watch-label-selector`, for sharding).
    pub label_selector: Option<String>,
    /// What the process's controllers share (metrics, readiness, events).
    pub runtime: sluice_runtime::Runtime,
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
            label_selector: None,
            runtime: sluice_runtime::Runtime::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: Client,
    storage: Storage,
    recorder: Recorder,
    opts: Options,
    schedules: Schedules,
}

/// Runs the controller until its watch ends.
pub async fn run(client: Client, opts: Options) -> anyhow::Result<()> {
    git::install_crypto_provider();
    std::fs::create_dir_all(&opts.storage_path).map_err(|e| {
        anyhow::anyhow!("creating storage dir {}: {e}", opts.storage_path.display())
    })?;
    let gate = opts.runtime.readiness.gate(crate::READINESS_GATE);
    let scope = sluice_runtime::WatchScope {
        namespace: opts.namespace.clone(),
        label_selector: opts.label_selector.clone(),
    };
    let api = scope.api::<GitRepository>(&client);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        storage: Storage::new(&opts.storage_path, &opts.storage_adv_addr),
        recorder: Recorder::new(client.clone(), &opts.event_reporter, &opts.runtime.events),
        schedules: Schedules::default(),
        opts: opts.clone(),
    });
    tracing::info!(storage = %opts.storage_path.display(), namespace = ?opts.namespace, selector = ?opts.label_selector, "starting GitRepository controller");
    let ready_task = sluice_runtime::readiness::open_when_listable(
        gate,
        api.clone(),
        opts.label_selector.clone(),
    );
    let controller = Controller::new(api, scope.watcher_config());
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(opts.concurrency))
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(object = %obj, "reconciled"),
                Err(e) => tracing::debug!("reconcile: {e}"),
            }
        })
        .await;
    ready_task.abort();
    Ok(())
}

fn error_policy(_obj: Arc<GitRepository>, err: &finalizers::Error<Error>, ctx: Arc<Ctx>) -> Action {
    tracing::warn!("GitRepository reconcile error: {err}");
    ctx.opts.runtime.metrics.failure(api::KIND, "KubernetesAPI");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(
    obj: Arc<GitRepository>,
    ctx: Arc<Ctx>,
) -> Result<Action, finalizers::Error<Error>> {
    let (a, c) = (ctx.clone(), ctx.clone());
    finalizers::reconcile(
        &ctx.client,
        obj,
        |o| async move { apply(o, a).await },
        |o| async move { cleanup(o, c).await },
    )
    .await
}

async fn cleanup(obj: Arc<GitRepository>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    if let Err(e) = ctx.storage.remove_object(&ns, &name) {
        tracing::warn!(namespace = %ns, name = %name, "removing artifacts: {e}");
    }
    ctx.opts.runtime.metrics.deleted(api::KIND, &ns, &name);
    ctx.schedules.remove(&(ns, name));
    Ok(Action::await_change())
}

/// A failure worth retrying that also sets `FetchFailed`.
fn fetch_failure(reason: &'static str, message: String) -> Failure {
    Failure::new(reason, message).with_condition(FETCH_FAILED_CONDITION)
}

/// A failure of the artifact storage (`StorageOperationFailed`).
fn storage_failure(message: String) -> Failure {
    Failure::new(STORAGE_OPERATION_FAILED_REASON, message)
        .with_condition(STORAGE_OPERATION_FAILED_CONDITION)
}

struct Success {
    artifact: Artifact,
    /// `Some(commit subject)` when a new artifact was written.
    new_artifact: Option<String>,
}

/// The conditions a success clears besides Reconciling and Stalled.
const CLEARED_ON_SUCCESS: &[&str] = &[
    FETCH_FAILED_CONDITION,
    ARTIFACT_OUTDATED_CONDITION,
    STORAGE_OPERATION_FAILED_CONDITION,
];

/// The scheduling and condition policy of a GitRepository: failures are
/// retried with a doubling backoff capped by the interval, and each is
/// announced (the recorder folds repeats).
fn policy(interval: Duration) -> Policy {
    Policy {
        retry: Retry::Exponential {
            base: Duration::from_millis(750),
            cap: interval,
        },
        failure_events: Repeat::Always,
        cleared_on_success: CLEARED_ON_SUCCESS,
        ..Policy::new(interval, interval)
    }
}

/// The new status of a GitRepository from its old one and the run's
/// result, with the events to publish and the next run (pure).
fn conclude(
    obj: &GitRepository,
    old: &GitRepositoryStatus,
    result: &Result<Success, Failure>,
    policy: &Policy,
    history: History,
) -> (GitRepositoryStatus, sluice_runtime::Decision) {
    let generation = obj.meta().generation;
    let mut new = old.clone();
    if let Some(requested) = flux::reconcile_request(Some(obj.annotations())) {
        new.last_handled_reconcile_at = Some(requested.to_string());
    }
    let mut conditions = new.conditions.take().unwrap_or_default();
    let outcome = match result {
        Ok(ok) => {
            let msg = format!("stored artifact for revision '{}'", ok.artifact.revision);
            flux::set_condition(
                &mut conditions,
                flux::new_condition(
                    ARTIFACT_IN_STORAGE_CONDITION,
                    flux::CONDITION_TRUE,
                    SUCCEEDED_REASON,
                    &msg,
                    generation,
                ),
            );
            new.artifact = Some(ok.artifact.clone());
            new.observed_generation = generation;
            new.observed_ignore = obj.spec.ignore.clone();
            new.observed_sparse_checkout =
                obj.spec.sparse_checkout.clone().filter(|v| !v.is_empty());
            Outcome::Succeeded {
                reason: SUCCEEDED_REASON,
                message: msg,
                event: ok.new_artifact.as_ref().map(|subject| {
                    (
                        api::NEW_ARTIFACT_REASON,
                        format!("stored artifact for commit '{subject}'"),
                    )
                }),
            }
        }
        Err(f) => {
            if f.stalled {
                new.observed_generation = generation;
            }
            if f.condition != Some(FETCH_FAILED_CONDITION) {
                flux::remove_condition(&mut conditions, FETCH_FAILED_CONDITION);
            }
            if new.artifact.is_none() {
                flux::remove_condition(&mut conditions, ARTIFACT_IN_STORAGE_CONDITION);
            }
            Outcome::Failed(f.clone())
        }
    };
    let previous_ready =
        flux::find_condition(&conditions, flux::READY_CONDITION).map(|c| c.message.clone());
    let decision = decide(
        &mut conditions,
        generation,
        previous_ready.as_deref(),
        &outcome,
        policy,
        history,
    );
    new.conditions = (!conditions.is_empty()).then_some(conditions);
    (new, decision)
}

async fn apply(obj: Arc<GitRepository>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = (ns.clone(), name.clone());
    let old = obj.status.clone().unwrap_or_default();
    let metrics = &ctx.opts.runtime.metrics;
    let observe = |status: &GitRepositoryStatus| {
        metrics.observe(&sluice_runtime::metrics::Observation {
            kind: api::KIND,
            namespace: &ns,
            name: &name,
            conditions: status.conditions.as_deref().unwrap_or_default(),
            suspended: obj.spec.is_suspended(),
            revision: status
                .artifact
                .as_ref()
                .map(|a| a.revision.as_str())
                .unwrap_or_default(),
        })
    };

    if obj.spec.is_suspended() {
        tracing::debug!(namespace = %ns, name = %name, "reconciliation is suspended");
        observe(&old);
        return Ok(Action::await_change());
    }

    let interval = obj.spec.interval().ok().filter(|d| !d.is_zero());
    // An artifact recorded in status whose file is gone (storage wiped).
    let artifact_missing = old
        .artifact
        .as_ref()
        .is_some_and(|a| !ctx.storage.exists(a));
    // Spec changes and requests are noticed against the last attempt, not
    // the status: a failing object does not advance `observedGeneration`,
    // and its own status writes must not bypass the retry backoff.
    let fingerprint = schedule::fingerprint(&*obj, &[]);
    if !artifact_missing && let Some(wait) = ctx.schedules.wait(&key, &fingerprint, Instant::now())
    {
        return Ok(Action::requeue(wait));
    }

    let started = Instant::now();
    let result = match interval {
        None => Err(Failure::stalled(
            api::INVALID_INTERVAL_REASON,
            format!(
                "invalid interval '{}': expected a Go duration such as 1m or 10m0s",
                obj.spec.interval
            ),
        )),
        Some(_) => sync(&obj, &ctx, &old).await,
    };
    let policy = policy(interval.unwrap_or(Duration::from_secs(600)));
    let failures = ctx.schedules.get(&key).map_or(0, |d| {
        if d.fingerprint == fingerprint {
            d.failures
        } else {
            0
        }
    });
    let (new, decision) = conclude(
        &obj,
        &old,
        &result,
        &policy,
        History {
            consecutive_failures: failures,
        },
    );
    let next = match &result {
        Ok(ok) => {
            tracing::info!(namespace = %ns, name = %name, revision = %ok.artifact.revision, fetched = ok.new_artifact.is_some(),
                elapsed_ms = started.elapsed().as_millis() as u64, "reconciled");
            schedule::jittered(decision.requeue, ctx.opts.interval_jitter)
        }
        Err(f) => {
            tracing::warn!(namespace = %ns, name = %name, reason = %f.reason, "{}", f.message);
            metrics.failure(api::KIND, &f.reason);
            decision.requeue
        }
    };
    ctx.schedules.set(
        key.clone(),
        sluice_runtime::Due {
            fingerprint,
            next: Some(Instant::now() + next),
            failures: if result.is_err() { failures + 1 } else { 0 },
            eager: false,
        },
    );

    if new != old {
        sluice_runtime::status::patch(&ctx.client, &*obj, &new, FIELD_MANAGER).await?;
    }
    let revision = new.artifact.as_ref().map(|a| a.revision.clone());
    ctx.recorder
        .publish(&*obj, revision.as_deref(), &decision.events)
        .await;
    metrics.observe_duration(api::KIND, &ns, &name, started.elapsed());
    observe(&new);
    Ok(Action::requeue(next))
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
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!(
                    "failed to get secret '{ns}/{secret_name}': secrets \"{secret_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
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
                return Err(fetch_failure(
                    AUTHENTICATION_FAILED_REASON,
                    format!(
                        "invalid 'ssh' auth option in secret '{ns}/{secret_name}': 'identity' is required"
                    ),
                ));
            }
            if auth.known_hosts.is_none() {
                return Err(fetch_failure(
                    AUTHENTICATION_FAILED_REASON,
                    format!(
                        "invalid 'ssh' auth option in secret '{ns}/{secret_name}': 'known_hosts' is required"
                    ),
                ));
            }
            if get("password").is_some() {
                return Err(Failure::stalled(
                    flux::UNSUPPORTED_FIELD_REASON,
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
                    return Err(fetch_failure(
                        AUTHENTICATION_FAILED_REASON,
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
    let scheme = git::parse_url(&spec.url).map_err(|m| Failure::stalled(URL_INVALID_REASON, m))?;
    if spec.include.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.include is not supported by sluice",
        ));
    }
    if spec.recurse_submodules.unwrap_or(false) {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.recurseSubmodules is not supported by sluice",
        ));
    }
    if spec.verification.is_some() {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.verify (commit signature verification) is not supported by sluice",
        ));
    }
    if spec.proxy_secret_ref.is_some() {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.proxySecretRef is not supported by sluice",
        ));
    }
    let provider = spec.provider();
    if provider != api::GitProvider::Generic {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
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
            .ok_or_else(|| {
                Failure::stalled(
                    api::INVALID_TIMEOUT_REASON,
                    format!("invalid timeout '{t}'"),
                )
            })?
            .min(MAX_TIMEOUT),
    };
    let wanted = Wanted::from_ref(spec.reference.as_ref());
    wanted
        .validate()
        .map_err(|m| Failure::stalled(api::INVALID_REF_REASON, m))?;

    let auth = match &spec.secret_ref {
        Some(r) => read_auth(&ctx.client, &ns, &r.name, scheme).await?,
        None if scheme == Scheme::Ssh => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
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
            fetch_failure(
                GIT_OPERATION_FAILED_REASON,
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
                fetch_failure(
                    GIT_OPERATION_FAILED_REASON,
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
            return Err(fetch_failure(
                GIT_OPERATION_FAILED_REASON,
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
            return Err(storage_failure(format!("failed to store artifact: {e}")));
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
        GitErrorKind::Auth => fetch_failure(AUTHENTICATION_FAILED_REASON, message),
        GitErrorKind::Operation => fetch_failure(GIT_OPERATION_FAILED_REASON, message),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::meta::{find_condition, is_condition_true};

    fn repo() -> GitRepository {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "repo", "namespace": "flux-system", "generation": 2},
            "spec": {"url": "https://git.example/repo.git", "interval": "1m"},
        }))
        .unwrap()
    }

    fn artifact(rev: &str) -> Artifact {
        serde_json::from_value(serde_json::json!({
            "path": "gitrepository/flux-system/repo/a.tar.gz",
            "url": "http://x/a.tar.gz",
            "revision": rev,
            "digest": "sha256:0",
            "lastUpdateTime": "2026-12-02T00:00:00Z",
        }))
        .unwrap()
    }

    fn types(s: &GitRepositoryStatus) -> Vec<&str> {
        s.conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect()
    }

    fn run(
        old: &GitRepositoryStatus,
        r: Result<Success, Failure>,
        failures: u32,
    ) -> (GitRepositoryStatus, sluice_runtime::Decision) {
        conclude(
            &repo(),
            old,
            &r,
            &policy(Duration::from_secs(60)),
            History {
                consecutive_failures: failures,
            },
        )
    }

    #[test]
    fn fetch_failures_set_fetch_failed_and_back_off_then_a_success_clears_them() {
        let (failed, d) = run(
            &GitRepositoryStatus::default(),
            Err(fetch_failure(AUTHENTICATION_FAILED_REASON, "denied".into())),
            0,
        );
        assert_eq!(
            types(&failed),
            [
                flux::READY_CONDITION,
                flux::RECONCILING_CONDITION,
                FETCH_FAILED_CONDITION
            ]
        );
        assert_eq!(d.requeue, Duration::from_millis(1500));
        assert_eq!(d.events[0].reason, AUTHENTICATION_FAILED_REASON);
        let (_, d) = run(
            &failed,
            Err(fetch_failure(AUTHENTICATION_FAILED_REASON, "denied".into())),
            3,
        );
        assert_eq!(d.requeue, Duration::from_secs(12));
        assert_eq!(
            d.events.len(),
            1,
            "every failure is told (the recorder folds them)"
        );

        let ok = Success {
            artifact: artifact("main@sha1:abc"),
            new_artifact: Some("first commit".into()),
        };
        let (stored, d) = run(&failed, Ok(ok), 0);
        assert_eq!(
            types(&stored),
            [flux::READY_CONDITION, ARTIFACT_IN_STORAGE_CONDITION]
        );
        let ready =
            find_condition(stored.conditions.as_deref().unwrap(), flux::READY_CONDITION).unwrap();
        assert_eq!(
            ready.message,
            "stored artifact for revision 'main@sha1:abc'"
        );
        assert_eq!(stored.observed_generation, Some(2));
        assert_eq!(d.events[0].reason, api::NEW_ARTIFACT_REASON);
        assert_eq!(
            d.events[0].message,
            "stored artifact for commit 'first commit'"
        );
        assert_eq!(d.requeue, Duration::from_secs(60));
    }

    #[test]
    fn a_storage_failure_replaces_fetch_failed_and_keeps_the_artifact() {
        let old = GitRepositoryStatus {
            artifact: Some(artifact("main@sha1:abc")),
            conditions: Some(vec![flux::new_condition(
                FETCH_FAILED_CONDITION,
                "True",
                GIT_OPERATION_FAILED_REASON,
                "x",
                Some(2),
            )]),
            ..Default::default()
        };
        let (s, _) = run(&old, Err(storage_failure("disk full".into())), 0);
        let c = s.conditions.clone().unwrap();
        assert!(is_condition_true(&c, STORAGE_OPERATION_FAILED_CONDITION));
        assert!(find_condition(&c, FETCH_FAILED_CONDITION).is_none());
        assert!(s.artifact.is_some());
    }

    #[test]
    fn stalled_failures_record_the_generation_and_wait_an_interval() {
        let (s, d) = run(
            &GitRepositoryStatus::default(),
            Err(Failure::stalled(URL_INVALID_REASON, "bad url")),
            5,
        );
        assert_eq!(types(&s), [flux::READY_CONDITION, flux::STALLED_CONDITION]);
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(d.requeue, Duration::from_secs(60));
    }
}
