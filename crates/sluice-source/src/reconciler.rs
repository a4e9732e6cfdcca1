//! One reconcile loop for every source kind.
//!
//! GitRepository, OCIRepository, HelmRepository and HelmChart differ only in
//! how they fetch and what they store; scheduling, status, events, metrics,
//! the finalizer and garbage collection are the same for all of them and are
//! written here once, on `sluice-runtime`:
//!
//! ```text
//! reconcile(obj) ─ finalizer ─ apply:
//!     suspended?            → observe metrics, wait for a change
//!     not due?              → re-arm the timer (our own status writes cost nothing)
//!     K::sync(obj)          → Result<Stored, Failure>   (the kind's own work)
//!     conclude(...)         → new status + events + next run   (pure)
//!     status::patch, Recorder::publish, metrics
//! ```
//!
//! Every watch event reaches `reconcile`, which decides whether the object
//! is *due*: its spec changed (generation), a reconcile was requested
//! (`reconcile.fluxcd.io/requestedAt`), what it depends on moved
//! ([`SourceKind::fingerprint_extra`]), its artifact is missing, or its
//! interval (with jitter) elapsed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_api::meta::{
    self as flux, ARTIFACT_IN_STORAGE_CONDITION, ARTIFACT_OUTDATED_CONDITION,
    FETCH_FAILED_CONDITION, STORAGE_OPERATION_FAILED_CONDITION, STORAGE_OPERATION_FAILED_REASON,
};
use sluice_runtime::{
    Failure, History, Outcome, Policy, Recorder, Repeat, Retry, Schedules, decide, finalizers,
    schedule,
};

use crate::api::Artifact;
use crate::controller::{FIELD_MANAGER, Options};
use crate::storage::Storage;

/// What every source controller shares.
pub(crate) struct Ctx {
    pub client: Client,
    pub storage: Storage,
    pub recorder: Recorder,
    pub opts: Options,
    pub schedules: Schedules,
    /// Registry clients kept between polls, shared by the objects with the
    /// same credentials (OCIRepository, HelmChart from an OCI HelmRepository).
    pub oci_clients: crate::oci_repository::OciClients,
}

/// A successful run: the artifact in storage and what to say about it.
#[derive(Clone, Debug)]
pub(crate) struct Stored<O> {
    pub artifact: Artifact,
    /// The reason of ArtifactInStorage (and Ready): `Succeeded`, or
    /// `ChartPullSucceeded`/`ChartPackageSucceeded` for charts.
    pub reason: &'static str,
    /// The message of ArtifactInStorage and Ready.
    pub message: String,
    /// The event announcing a new artifact, when one was written:
    /// `(reason, message)`.
    pub event: Option<(&'static str, String)>,
    /// The kind's observations recorded beside the artifact.
    pub observed: O,
}

/// The status fields every source kind has.
pub(crate) trait SourceStatus:
    Clone + Default + PartialEq + Serialize + Send + Sync
{
    fn artifact(&self) -> Option<&Artifact>;
    fn set_artifact(&mut self, artifact: Artifact);
    fn conditions_field(&mut self) -> &mut Option<Vec<Condition>>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
    fn set_last_handled_reconcile_at(&mut self, requested: String);
    /// Sets `status.url`, the stable link to the latest artifact, on the kinds that have one
    /// (every kind but GitRepository).
    fn set_url(&mut self, _url: Option<String>) {}
}

/// Implements [`SourceStatus`] for a status struct with Flux's field names; `url:` before the
/// types for those with a `status.url`.
macro_rules! source_status {
    (@impl $status:ty { $($extra:tt)* }) => {
        impl $crate::reconciler::SourceStatus for $status {
            fn artifact(&self) -> Option<&sluice_api::meta::Artifact> {
                self.artifact.as_ref()
            }
            fn set_artifact(&mut self, artifact: sluice_api::meta::Artifact) {
                self.artifact = Some(artifact);
            }
            fn conditions_field(
                &mut self,
            ) -> &mut Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>> {
                &mut self.conditions
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn set_last_handled_reconcile_at(&mut self, requested: String) {
                self.last_handled_reconcile_at = Some(requested);
            }
            $($extra)*
        }
    };
    (url: $($status:ty),* $(,)?) => {$(
        $crate::reconciler::source_status!(@impl $status {
            fn set_url(&mut self, url: Option<String>) {
                self.url = url;
            }
        });
    )*};
    ($($status:ty),* $(,)?) => {$(
        $crate::reconciler::source_status!(@impl $status {});
    )*};
}
pub(crate) use source_status;

/// The [`SourceKind`] accessors of a kind whose spec has a required
/// `interval` and a `suspend` (every kind but HelmRepository, whose
/// interval is optional).
macro_rules! spec_accessors {
    ($status:ty) => {
        fn status(&self) -> Option<&$status> {
            self.status.as_ref()
        }
        fn interval_text(&self) -> &str {
            &self.spec.interval
        }
        fn interval(&self) -> Option<std::time::Duration> {
            self.spec.interval().ok()
        }
        fn suspended(&self) -> bool {
            self.spec.is_suspended()
        }
    };
}
pub(crate) use spec_accessors;

/// A source kind: what [`run`] needs to know of it.
pub(crate) trait SourceKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    type Status: SourceStatus + std::fmt::Debug;
    /// What a success records besides the artifact (observed fields).
    type Observed: Clone + Send + Sync + 'static;

    /// The kind's name (`OCIRepository`), for metrics and the storage path.
    const KIND: &'static str;
    /// The name of the link to the latest artifact beside it in the storage, which
    /// `status.url` points at (`latest.tar.gz`; a HelmRepository's `index.yaml`), as Flux's
    /// storage keeps it; `None` for a kind without `status.url` (GitRepository).
    const LATEST_LINK: Option<&'static str> = None;
    /// The conditions a success clears besides Reconciling and Stalled.
    const CLEARED_ON_SUCCESS: &'static [&'static str] = &[
        FETCH_FAILED_CONDITION,
        ARTIFACT_OUTDATED_CONDITION,
        STORAGE_OPERATION_FAILED_CONDITION,
    ];

    fn status(&self) -> Option<&Self::Status>;
    /// `spec.interval` as written.
    fn interval_text(&self) -> &str;
    /// `spec.interval` parsed; `None` when it is not a usable duration.
    fn interval(&self) -> Option<Duration>;
    fn suspended(&self) -> bool;
    /// Records the run's observations on the new status.
    fn record(&self, status: &mut Self::Status, observed: &Self::Observed);
    /// The kind's own conditions from the run's result (a GitRepository's
    /// `SourceVerified`), beside the ones every source has.
    fn conditions(
        &self,
        _conditions: &mut Vec<Condition>,
        _result: &Result<Stored<Self::Observed>, Failure>,
        _generation: Option<i64>,
    ) {
    }
    /// Values that make the object due when they change, besides its
    /// generation and reconcile requests (a HelmChart's source revision).
    fn fingerprint_extra(
        _obj: &Arc<Self>,
        _ctx: &Arc<Ctx>,
    ) -> impl Future<Output = Vec<String>> + Send {
        async { Vec::new() }
    }
    /// Whether the stored artifact no longer matches the spec although
    /// nothing remote moved (an OCIRepository's ignore rules or layer
    /// selector changed): the artifact is rebuilt.
    fn artifact_outdated(&self, _status: &Self::Status) -> bool {
        false
    }
    /// The kind's own work: check the spec, find the wanted revision,
    /// fetch and store when it moved.
    fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: Self::Status,
    ) -> impl Future<Output = Result<Stored<Self::Observed>, Failure>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

pub(crate) fn error_policy<K: SourceKind>(
    _obj: Arc<K>,
    err: &finalizers::Error<Error>,
    ctx: Arc<Ctx>,
) -> Action {
    tracing::warn!(kind = K::KIND, "reconcile error: {err}");
    ctx.opts.runtime.metrics.failure(K::KIND, "KubernetesAPI");
    Action::requeue(Duration::from_secs(5))
}

pub(crate) async fn reconcile<K: SourceKind>(
    obj: Arc<K>,
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

pub(crate) async fn cleanup<K: SourceKind>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    if let Err(e) = ctx.storage.remove_object(K::KIND, &ns, &name) {
        tracing::warn!(kind = K::KIND, namespace = %ns, name = %name, "removing artifacts: {e}");
    }
    ctx.opts.runtime.metrics.deleted(K::KIND, &ns, &name);
    ctx.schedules.remove(&key::<K>(&ns, &name));
    Ok(Action::await_change())
}

/// The schedule key of an object: kinds share one [`Schedules`].
fn key<K: SourceKind>(ns: &str, name: &str) -> (String, String) {
    (format!("{}/{ns}", K::KIND), name.to_string())
}

/// A failure worth retrying that also sets `FetchFailed`.
pub(crate) fn fetch_failure(reason: &'static str, message: impl Into<String>) -> Failure {
    Failure::new(reason, message.into()).with_condition(FETCH_FAILED_CONDITION)
}

/// A failure of the artifact storage (`StorageOperationFailed`).
pub(crate) fn storage_failure(message: impl Into<String>) -> Failure {
    Failure::new(STORAGE_OPERATION_FAILED_REASON, message.into())
        .with_condition(STORAGE_OPERATION_FAILED_CONDITION)
}

/// The scheduling and condition policy of a source: failures are retried
/// with a doubling backoff capped by the interval, and each is announced
/// (the recorder folds repeats).
pub(crate) fn policy(interval: Duration, cleared: &'static [&'static str]) -> Policy {
    Policy {
        retry: Retry::Exponential {
            base: Duration::from_millis(750),
            cap: interval,
        },
        failure_events: Repeat::Always,
        cleared_on_success: cleared,
        ..Policy::new(interval, interval)
    }
}

/// The new status of a source from its old one and the run's result, with
/// the events to publish and the next run (pure).
pub(crate) fn conclude<K: SourceKind>(
    obj: &K,
    old: &K::Status,
    result: &Result<Stored<K::Observed>, Failure>,
    policy: &Policy,
    history: History,
) -> (K::Status, sluice_runtime::Decision) {
    let generation = obj.meta().generation;
    let mut new = old.clone();
    if let Some(requested) = flux::reconcile_request(Some(obj.annotations())) {
        new.set_last_handled_reconcile_at(requested.to_string());
    }
    let mut conditions = new.conditions_field().take().unwrap_or_default();
    let outcome = match result {
        Ok(ok) => {
            flux::set_condition(
                &mut conditions,
                flux::new_condition(
                    ARTIFACT_IN_STORAGE_CONDITION,
                    flux::CONDITION_TRUE,
                    ok.reason,
                    &ok.message,
                    generation,
                ),
            );
            new.set_artifact(ok.artifact.clone());
            if let Some(link) = K::LATEST_LINK {
                new.set_url(Some(beside(&ok.artifact.url, link)));
            }
            new.set_observed_generation(generation);
            obj.record(&mut new, &ok.observed);
            Outcome::Succeeded {
                reason: ok.reason,
                message: ok.message.clone(),
                event: ok.event.clone(),
            }
        }
        Err(f) => {
            if f.stalled {
                new.set_observed_generation(generation);
            }
            // One failure condition at a time: a build failure replaces a
            // fetch failure and the reverse.
            for owned in [FETCH_FAILED_CONDITION, flux::BUILD_FAILED_CONDITION] {
                if f.condition != Some(owned) {
                    flux::remove_condition(&mut conditions, owned);
                }
            }
            if new.artifact().is_none() {
                flux::remove_condition(&mut conditions, ARTIFACT_IN_STORAGE_CONDITION);
            }
            Outcome::Failed(f.clone())
        }
    };
    obj.conditions(&mut conditions, result, generation);
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
    *new.conditions_field() = (!conditions.is_empty()).then_some(conditions);
    (new, decision)
}

async fn apply<K: SourceKind>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = key::<K>(&ns, &name);
    let old = obj.status().cloned().unwrap_or_default();
    let metrics = &ctx.opts.runtime.metrics;
    let observe = |status: &K::Status| {
        let mut status = status.clone();
        let conditions = status.conditions_field().clone().unwrap_or_default();
        metrics.observe(&sluice_runtime::metrics::Observation {
            kind: K::KIND,
            namespace: &ns,
            name: &name,
            conditions: &conditions,
            suspended: obj.suspended(),
            revision: status
                .artifact()
                .map(|a| a.revision.as_str())
                .unwrap_or_default(),
        })
    };

    if obj.suspended() {
        tracing::debug!(kind = K::KIND, namespace = %ns, name = %name, "reconciliation is suspended");
        observe(&old);
        return Ok(Action::await_change());
    }

    let interval = obj.interval().filter(|d| !d.is_zero());
    // An artifact recorded in status whose file is gone (storage wiped), or
    // one the spec no longer describes.
    let artifact_missing = old.artifact().is_some_and(|a| !ctx.storage.exists(a))
        || (old.artifact().is_some() && obj.artifact_outdated(&old));
    // Spec changes and requests are noticed against the last attempt, not
    // the status: a failing object does not advance `observedGeneration`,
    // and its own status writes must not bypass the retry backoff.
    let extra = K::fingerprint_extra(&obj, &ctx).await;
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let fingerprint = schedule::fingerprint(&*obj, &extra);
    if !artifact_missing && let Some(wait) = ctx.schedules.wait(&key, &fingerprint, Instant::now())
    {
        return Ok(Action::requeue(wait));
    }

    let started = Instant::now();
    let result = match interval {
        None => Err(Failure::stalled(
            crate::api::INVALID_INTERVAL_REASON,
            format!(
                "invalid interval '{}': expected a Go duration such as 1m or 10m0s",
                obj.interval_text()
            ),
        )),
        Some(_) => K::sync(obj.clone(), ctx.clone(), old.clone()).await,
    };
    let policy = policy(
        interval.unwrap_or(Duration::from_secs(600)),
        K::CLEARED_ON_SUCCESS,
    );
    let failures = ctx.schedules.get(&key).map_or(0, |d| {
        if d.fingerprint == fingerprint {
            d.failures
        } else {
            0
        }
    });
    let (new, decision) = conclude(
        &*obj,
        &old,
        &result,
        &policy,
        History {
            consecutive_failures: failures,
        },
    );
    let next = match &result {
        Ok(ok) => {
            tracing::info!(kind = K::KIND, namespace = %ns, name = %name, revision = %ok.artifact.revision,
                fetched = ok.event.is_some(), elapsed_ms = started.elapsed().as_millis() as u64, "reconciled");
            schedule::jittered(decision.requeue, ctx.opts.interval_jitter)
        }
        Err(f) => {
            tracing::warn!(kind = K::KIND, namespace = %ns, name = %name, reason = %f.reason, "{}", f.message);
            metrics.failure(K::KIND, &f.reason);
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

    if let (Ok(ok), Some(link)) = (&result, K::LATEST_LINK) {
        // Best effort, as Flux's: the artifact itself is stored and served either way.
        if let Err(e) = ctx.storage.link_latest(&ok.artifact.path, link) {
            tracing::warn!(kind = K::KIND, namespace = %ns, name = %name, "failed to update status URL symlink: {e}");
        }
    }
    if new != old {
        sluice_runtime::status::patch(&ctx.client, &*obj, &new, FIELD_MANAGER).await?;
    }
    let revision = new.artifact().map(|a| a.revision.clone());
    ctx.recorder
        .publish(&*obj, revision.as_deref(), &decision.events)
        .await;
    metrics.observe_duration(K::KIND, &ns, &name, started.elapsed());
    observe(&new);
    Ok(Action::requeue(next))
}

/// The URL of `name` in the same directory as the artifact at `url`.
fn beside(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_owned(),
    }
}

/// Writes an artifact file through `write` (see
/// [`Storage::write_artifact`]); a storage error is `StorageOperationFailed`.
pub(crate) fn store(
    storage: &Storage,
    kind: &str,
    ns: &str,
    name: &str,
    file: &str,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), Failure>,
) -> Result<crate::storage::Written, Failure> {
    struct Stop(Failure);
    impl From<std::io::Error> for Stop {
        fn from(e: std::io::Error) -> Stop {
            Stop(storage_failure(format!("failed to store artifact: {e}")))
        }
    }
    storage
        .write_artifact::<Stop>(kind, ns, name, file, |out| write(out).map_err(Stop))
        .map_err(|s| s.0)
}

/// The artifact just written for an object (its URL, digest, size, now),
/// after garbage-collecting the object's older ones.
pub(crate) fn new_artifact(
    ctx: &Ctx,
    kind: &str,
    ns: &str,
    name: &str,
    written: crate::storage::Written,
    revision: String,
    metadata: Option<std::collections::BTreeMap<String, String>>,
) -> Artifact {
    garbage_collect(ctx, kind, ns, name, &written.path);
    Artifact {
        url: ctx.storage.url_for(&written.path),
        path: written.path,
        revision,
        digest: written.digest,
        last_update_time: flux::now(),
        size: i64::try_from(written.size).ok(),
        metadata,
    }
}

/// `spec.timeout`: `default` when unset, refused (stalled) when not a
/// positive duration, lowered to the controller's maximum.
pub(crate) fn spec_timeout<E>(
    written: Option<&str>,
    parsed: Result<Duration, E>,
    default: Duration,
) -> Result<Duration, Failure> {
    let Some(text) = written else {
        return Ok(default);
    };
    parsed
        .ok()
        .filter(|d| !d.is_zero())
        .map(|d| d.min(crate::controller::MAX_TIMEOUT))
        .ok_or_else(|| {
            Failure::stalled(
                crate::api::INVALID_TIMEOUT_REASON,
                format!("invalid timeout '{text}'"),
            )
        })
}

/// Keeps the newest artifacts of an object (best effort: a failure is
/// logged, the run still succeeds).
fn garbage_collect(ctx: &Ctx, kind: &str, ns: &str, name: &str, current: &str) {
    match ctx
        .storage
        .garbage_collect(kind, ns, name, current, ctx.opts.artifact_retention.max(1))
    {
        Ok(removed) if !removed.is_empty() => {
            tracing::debug!(kind, namespace = %ns, name = %name, ?removed, "garbage collected artifacts")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(kind, namespace = %ns, name = %name, "garbage collecting artifacts: {e}")
        }
    }
}

/// Runs blocking work (Git, registries, archives) off the async runtime,
/// bounded by `timeout`; `on_error` turns a panic or the deadline into the
/// caller's error.
pub(crate) async fn blocking<T, E>(
    timeout: Duration,
    on_error: impl FnOnce(String) -> E,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let handle = tokio::task::spawn_blocking(f);
    match tokio::time::timeout(timeout.saturating_add(Duration::from_secs(5)), handle).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) => Err(on_error(format!("task failed: {join}"))),
        Err(_) => Err(on_error(format!(
            "operation timed out after {}s",
            timeout.as_secs()
        ))),
    }
}

/// Runs the controller of one kind until its watch ends; `reconcile` is
/// [`reconcile`] or a kind's wrapper around it.
pub(crate) async fn run<K, F, Fut>(
    ctx: Arc<Ctx>,
    gate: sluice_runtime::readiness::Gate,
    controller: kube::runtime::Controller<K>,
    api: kube::Api<K>,
    reconcile: F,
) where
    K: SourceKind,
    F: FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    Fut: Future<Output = Result<Action, finalizers::Error<Error>>> + Send + 'static,
{
    use futures::StreamExt;
    let ready_task =
        sluice_runtime::readiness::open_when_listable(gate, api, ctx.opts.label_selector.clone());
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.opts.concurrency))
        .run(reconcile, error_policy::<K>, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(kind = K::KIND, object = %obj, "reconciled"),
                Err(e) => tracing::debug!(kind = K::KIND, "reconcile: {e}"),
            }
        })
        .await;
    ready_task.abort();
}
