//! The reconciler: watches Kustomizations and GitRepositories, and for each
//! Kustomization fetches the artifact, builds, substitutes, applies, prunes,
//! health-checks and writes status and events as Flux's kustomize-controller.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef as KubeRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Config, Resource, ResourceExt};
use sluice_api::kustomization::{
    DecryptionProvider, DeletionPolicy, FIELD_MANAGER, KUSTOMIZATION_KIND, KustomizationStatus,
    SourceKind, SubstituteKind, SubstituteStrategy,
};
use sluice_api::meta::{
    self, CONDITION_FALSE, CONDITION_TRUE, CONDITION_UNKNOWN, FluxObject, HEALTHY_CONDITION,
    READY_CONDITION, RECONCILING_CONDITION, STALLED_CONDITION,
};
use sluice_api::{GitRepository, Kustomization};
use sluice_apply::{
    Applier, ApplyOptions, ObjectRef, Owner, PruneOptions, check_prune, inventory,
    prune_empty_override,
};
use sluice_kstatus::cel::{CustomHealthCheck, Expression};

use crate::graph::{self, Key, NodeState, ReverseIndex};
use crate::health::{self, ResourceCache};
use crate::metrics::{Metrics, ObjectLabels};
use crate::{artifact, render};

/// Reason for fields sluice accepts but does not implement yet.
pub const UNSUPPORTED_REASON: &str = "UnsupportedField";
/// Flux's reason for a CEL expression that does not compile.
pub const INVALID_CEL_REASON: &str = "InvalidCELExpression";
/// Flux's reason (`acl.AccessDeniedReason`) for a reference refused by
/// `--no-cross-namespace-refs`.
pub const ACCESS_DENIED_REASON: &str = "AccessDenied";
/// Flux's reason for health checks cut short (here: by a shutdown).
pub const HEALTH_CHECK_CANCELED_REASON: &str = "HealthCheckCanceled";

/// How long after the Kustomization's timeout a build that has not
/// stopped by itself is given up on.
const BUILD_GRACE: Duration = Duration::from_secs(5);

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Kustomizations reconciled in parallel.
    pub concurrency: u16,
    /// The source controller's storage root, when it is reachable on disk
    /// (same process or shared volume): artifacts are read from there
    /// instead of downloaded.
    pub storage_path: Option<PathBuf>,
    /// How long a blocked Kustomization waits before it checks its
    /// dependencies again when no event woke it (Flux's `--requeue-dependency`).
    pub requeue_dependency: Duration,
    /// Poll interval of health checks.
    pub health_poll: Duration,
    /// Timeout of artifact downloads.
    pub http_timeout: Duration,
    /// Reporting controller name on Events.
    pub event_reporter: String,
    /// Refuse remote kustomize bases and resources (Flux's
    /// `--no-remote-bases`): only what is in the source artifact is built.
    pub no_remote_bases: bool,
    /// The service account (in the Kustomization's namespace) impersonated
    /// for Kustomizations without `spec.serviceAccountName` (Flux's
    /// `--default-service-account`). `None`: those act as the controller.
    pub default_service_account: Option<String>,
    /// Refuse a `sourceRef` or `dependsOn` entry in another namespace than
    /// the Kustomization's (Flux's `--no-cross-namespace-refs`): Ready=False
    /// and Stalled=True with reason `AccessDenied`.
    pub no_cross_namespace_refs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            concurrency: 4,
            storage_path: None,
            requeue_dependency: Duration::from_secs(30),
            health_poll: Duration::from_secs(2),
            http_timeout: Duration::from_secs(60),
            event_reporter: FIELD_MANAGER.to_string(),
            no_remote_bases: false,
            default_service_account: None,
            no_cross_namespace_refs: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

#[derive(Clone)]
struct Memo {
    fingerprint: String,
    next_due: Instant,
    blocked: bool,
}

/// A build's objects and the hash of what it was built from.
type Rendered = (u64, Arc<Vec<serde_json::Value>>);

struct Ctx {
    client: Client,
    config: Config,
    applier: Applier,
    opts: Options,
    recorder: Recorder,
    ks_store: Store<Kustomization>,
    git_store: Store<GitRepository>,
    index: Arc<Mutex<ReverseIndex>>,
    memo: Mutex<HashMap<Key, Memo>>,
    metrics: Metrics,
    resources: ResourceCache,
    artifacts: Arc<artifact::ArtifactCache>,
    rendered: Mutex<HashMap<Key, Rendered>>,
    /// Becomes true when the controller is asked to stop.
    shutdown: tokio::sync::watch::Receiver<bool>,
}

fn key_of(ks: &Kustomization) -> Key {
    Key::new(ks.namespace().unwrap_or_default(), ks.name_any())
}

fn deps_of(ks: &Kustomization) -> Vec<Key> {
    let ns = ks.namespace().unwrap_or_default();
    ks.spec
        .depends_on
        .iter()
        .flatten()
        .map(|d| Key::new(d.namespace_or(&ns), d.name.clone()))
        .collect()
}

fn source_key(ks: &Kustomization) -> (String, String, String) {
    let ns = ks.namespace().unwrap_or_default();
    let r = &ks.spec.source_ref;
    (
        r.kind.to_string(),
        r.namespace_or(&ns).to_string(),
        r.name.clone(),
    )
}

/// The service account a Kustomization acts as (in its own namespace) for
/// every read and write done on its behalf: `spec.serviceAccountName`, else
/// the controller's default (`--default-service-account`), else none (the
/// controller's own identity). As in Flux.
fn service_account_of(ks: &Kustomization, opts: &Options) -> Option<String> {
    ks.spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(opts
            .default_service_account
            .as_deref()
            .filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

/// The applier acting for `ks`: impersonating its service account, if it has
/// one (see [`service_account_of`]).
fn applier_for(ctx: &Ctx, ks: &Kustomization) -> Result<Applier, String> {
    let ns = ks.namespace().unwrap_or_default();
    match service_account_of(ks, &ctx.opts) {
        Some(sa) => ctx
            .applier
            .impersonate(&ctx.config, &ns, &sa)
            .map_err(|e| format!("impersonating service account {ns}/{sa}: {e}")),
        None => Ok(ctx.applier.clone()),
    }
}

/// With `--no-cross-namespace-refs`, the message for the first reference of
/// `ks` into another namespace (its `sourceRef`, then its `dependsOn`), as
/// Flux words it.
fn cross_namespace_ref(ks: &Kustomization, opts: &Options) -> Option<String> {
    if !opts.no_cross_namespace_refs {
        return None;
    }
    let ns = ks.namespace().unwrap_or_default();
    let blocked = |kind: &str, other_ns: &str, name: &str| {
        format!(
            "can't access '{kind}/{other_ns}/{name}', cross-namespace references have been blocked"
        )
    };
    let (kind, sns, sname) = source_key(ks);
    if sns != ns {
        return Some(blocked(&kind, &sns, &sname));
    }
    deps_of(ks)
        .into_iter()
        .find(|d| d.namespace != ns)
        .map(|d| blocked(KUSTOMIZATION_KIND, &d.namespace, &d.name))
}

/// Runs the controller until its watches end.
pub async fn run(config: Config, opts: Options, metrics: Metrics) -> anyhow::Result<()> {
    run_until(config, opts, metrics, std::future::pending()).await
}

/// Runs the controller until `shutdown` resolves, then drains: no new
/// reconciliation starts, those in flight finish their applies and prunes
/// (health checks in progress are cut short, with Ready=False
/// `HealthCheckCanceled`), and it returns once they are done. The caller
/// bounds how long it waits for that (the pod's grace period).
pub async fn run_until(
    config: Config,
    opts: Options,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_task = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        // Keep the sender: receivers must not see it dropped as a stop.
        std::future::pending::<()>().await;
    });
    let mut stop_trigger = stop_rx.clone();
    let stop_trigger = async move {
        if stop_trigger.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let client = Client::try_from(config.clone())?;
    let (ks_api, git_api): (Api<Kustomization>, Api<GitRepository>) = match &opts.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let (git_reader, git_writer) = reflector::store();
    let index = Arc::new(Mutex::new(ReverseIndex::default()));

    // The GitRepository cache the reconciler reads artifacts from.
    let git_reflector = reflector::reflector(
        git_writer,
        watcher(git_api.clone(), watcher::Config::default()).default_backoff(),
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    let git_task = tokio::spawn(git_reflector);
    // The GitRepository cache is complete before any reconciliation starts,
    // and it is waited for here, once: kube-runtime's readiness future wakes
    // only the last of several concurrent waiters, so reconciliations each
    // waiting for it hung for good when several started before the first
    // list was in (seen with three Kustomizations at start-up).
    tracing::debug!("waiting for the GitRepository cache");
    let mut stop_waiting = stop_rx.clone();
    tokio::select! {
        ready = git_reader.wait_until_ready() => {
            if ready.is_err() {
                git_task.abort();
                stop_task.abort();
                anyhow::bail!("the GitRepository watch ended before its first list");
            }
        }
        _ = stop_waiting.wait_for(|s| *s) => {
            git_task.abort();
            stop_task.abort();
            return Ok(());
        }
    }

    let controller = Controller::new(ks_api.clone(), watcher::Config::default());
    let ks_reader = controller.store();

    // Kustomizations: keep the reverse index current, and wake the
    // dependents of every Kustomization seen ready.
    let idx = index.clone();
    let dep_mapper = move |ks: Kustomization| {
        let key = key_of(&ks);
        let mut wake = Vec::new();
        if let Ok(mut idx) = idx.lock() {
            idx.set(&key, deps_of(&ks));
            if ks.is_ready() && ks.meta().deletion_timestamp.is_none() {
                wake = idx
                    .dependents(&key)
                    .into_iter()
                    .map(|d| KubeRef::new(&d.name).within(&d.namespace))
                    .collect();
            }
        }
        wake
    };

    // GitRepositories: a new artifact wakes the Kustomizations using it.
    let ks_for_git = ks_reader.clone();
    let git_mapper = move |git: GitRepository| {
        let ns = git.namespace().unwrap_or_default();
        let name = git.name_any();
        ks_for_git
            .state()
            .into_iter()
            .filter(|ks| {
                let (kind, sns, sname) = source_key(ks);
                kind == SourceKind::GitRepository.to_string() && sns == ns && sname == name
            })
            .map(|ks| KubeRef::from_obj(&*ks))
            .collect::<Vec<_>>()
    };

    let reporter = Reporter {
        controller: opts.event_reporter.clone(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config,
        applier: Applier::new(client.clone()),
        recorder: Recorder::new(client.clone(), reporter),
        ks_store: ks_reader.clone(),
        git_store: git_reader,
        index,
        memo: Mutex::new(HashMap::new()),
        metrics,
        resources: ResourceCache::default(),
        artifacts: Arc::new(
            artifact::ArtifactCache::new(
                std::env::temp_dir().join(format!("sluice-artifacts-{}", std::process::id())),
                8,
            )
            .map_err(|e| anyhow::anyhow!(e))?,
        ),
        rendered: Mutex::new(HashMap::new()),
        shutdown: stop_rx,
        opts: opts.clone(),
    });
    tracing::info!(namespace = ?opts.namespace, storage = ?opts.storage_path, "starting Kustomization controller");
    controller
        .watches(git_api, watcher::Config::default(), git_mapper)
        .watches(ks_api, watcher::Config::default(), dep_mapper)
        .with_config(kube::runtime::controller::Config::default().concurrency(opts.concurrency))
        .graceful_shutdown_on(stop_trigger)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(object = %obj, "reconciled"),
                Err(e) => tracing::debug!("reconcile: {e}"),
            }
        })
        .await;
    git_task.abort();
    stop_task.abort();
    tracing::info!("Kustomization controller stopped");
    Ok(())
}

fn error_policy(_obj: Arc<Kustomization>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!("Kustomization reconcile error: {err}");
    Action::requeue(Duration::from_secs(5))
}

fn fingerprint(ks: &Kustomization, revision: &str) -> String {
    let ann = ks.annotations();
    format!(
        "{:?}|{}|{}|{}",
        ks.meta().generation,
        meta::reconcile_request(Some(ann)).unwrap_or(""),
        revision,
        prune_empty_override(Some(ann)).unwrap_or(""),
    )
}

/// The outcome of one reconciliation, before it is written.
struct Outcome {
    status: KustomizationStatus,
    events: Vec<(EventType, String, String)>,
    requeue: Duration,
    blocked: bool,
    result: &'static str,
}

async fn reconcile(ks: Arc<Kustomization>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = key_of(&ks);
    if ks.meta().deletion_timestamp.is_some() {
        return finalize(&ks, &ctx).await;
    }
    if !ks.finalizers().iter().any(|f| f == meta::FINALIZER) {
        let mut finalizers = ks.finalizers().to_vec();
        finalizers.push(meta::FINALIZER.to_string());
        let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &key.namespace);
        api.patch(
            &key.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": finalizers}})),
        )
        .await?;
        ctx.metrics.writes.inc();
    }
    if ks.spec.is_suspended() {
        if let Ok(mut m) = ctx.memo.lock() {
            m.remove(&key);
        }
        ctx.metrics.count("skipped");
        return Ok(Action::await_change());
    }
    if let Ok(mut idx) = ctx.index.lock() {
        idx.set(&key, deps_of(&ks));
    }

    let source = fresh_source(&ctx, &ks).await;
    let revision = source
        .as_ref()
        .and_then(|g| g.status.as_ref())
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.clone())
        .unwrap_or_default();
    let fp = fingerprint(&ks, &revision);
    let now = Instant::now();
    let memo = ctx.memo.lock().ok().and_then(|m| m.get(&key).cloned());
    if let Some(m) = memo
        && !m.blocked
        && m.fingerprint == fp
        && now < m.next_due
    {
        return Ok(Action::requeue(m.next_due - now));
    }

    let start = Instant::now();
    let old_status = ks.status.clone().unwrap_or_default();
    let mut written = old_status.clone();
    let outcome = reconcile_inner(&ks, &ctx, source, &mut written).await?;
    let mut status = outcome.status;
    sort_conditions(status.conditions_mut());
    if status != written {
        patch_status(&ctx, &key, &status).await?;
    }
    if !outcome.events.is_empty() {
        publish(&ctx, &ks, outcome.events).await;
    }
    ctx.metrics
        .duration
        .get_or_create(&ObjectLabels {
            kind: KUSTOMIZATION_KIND.into(),
            name: key.name.clone(),
            namespace: key.namespace.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    ctx.metrics.count(outcome.result);
    if let Ok(mut m) = ctx.memo.lock() {
        m.insert(
            key,
            Memo {
                fingerprint: fp,
                next_due: Instant::now() + outcome.requeue,
                blocked: outcome.blocked,
            },
        );
    }
    Ok(Action::requeue(outcome.requeue))
}

fn lookup_source(ctx: &Ctx, ks: &Kustomization) -> Option<Arc<GitRepository>> {
    let (kind, ns, name) = source_key(ks);
    if kind != SourceKind::GitRepository.to_string() {
        return None;
    }
    ctx.git_store.get(&KubeRef::new(&name).within(&ns))
}

/// The source as the API server has it now, for the start of a reconcile.
///
/// The GitRepository event that wakes a Kustomization comes from the
/// controller's own watch, which can be ahead of the reflector store behind
/// [`lookup_source`]. Read from that store, a new artifact could look like the
/// old one (or like none), and the unchanged-fingerprint fast path would then
/// sleep until the next interval. One GET per reconcile (a read, never a write)
/// closes that race; the store is the fallback when the GET fails.
async fn fresh_source(ctx: &Ctx, ks: &Kustomization) -> Option<Arc<GitRepository>> {
    let (kind, ns, name) = source_key(ks);
    if kind != SourceKind::GitRepository.to_string() || cross_namespace_ref(ks, &ctx.opts).is_some()
    {
        return None;
    }
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
    match api.get_opt(&name).await {
        Ok(found) => found.map(Arc::new),
        Err(e) => {
            tracing::debug!(source = %format!("{ns}/{name}"), "reading the source, using the cache: {e}");
            lookup_source(ctx, ks)
        }
    }
}

async fn patch_status(ctx: &Ctx, key: &Key, status: &KustomizationStatus) -> Result<(), Error> {
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = serde_json::json!({
        "apiVersion": format!("{}/{}", sluice_api::kustomization::GROUP, sluice_api::kustomization::VERSION),
        "kind": KUSTOMIZATION_KIND,
        "status": status,
    });
    api.patch_status(
        &key.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.writes.inc();
    Ok(())
}

async fn publish(ctx: &Ctx, ks: &Kustomization, events: Vec<(EventType, String, String)>) {
    let reference = ks.object_ref(&());
    for (type_, reason, note) in events {
        let mut note = note;
        if note.len() > 1024 {
            let mut end = 1000;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
            note.push_str(" ...");
        }
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            note.hash(&mut h);
            h.finish()
        };
        let ev = KubeEvent {
            type_,
            reason,
            note: Some(note),
            action: format!("Reconcile-{:08x}", digest as u32),
            secondary: None,
        };
        match ctx.recorder.publish(&ev, &reference).await {
            Ok(()) => {
                ctx.metrics.writes.inc();
            }
            Err(e) => tracing::warn!("publishing event: {e}"),
        }
    }
}

fn sort_conditions(conditions: &mut [Condition]) {
    let rank = |t: &str| match t {
        READY_CONDITION => 0,
        RECONCILING_CONDITION => 1,
        STALLED_CONDITION => 2,
        HEALTHY_CONDITION => 3,
        _ => 4,
    };
    conditions.sort_by(|a, b| {
        rank(&a.type_)
            .cmp(&rank(&b.type_))
            .then(a.type_.cmp(&b.type_))
    });
}

fn set(
    status: &mut KustomizationStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    meta::set_condition(
        status.conditions_mut(),
        meta::new_condition(type_, value, reason, message, generation),
    );
}

fn remove(status: &mut KustomizationStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        meta::remove_condition(c, type_);
    }
}

/// A failed step: its reason and message.
struct Failure {
    reason: &'static str,
    message: String,
    stalled: bool,
}

impl Failure {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            stalled: false,
        }
    }
}

async fn reconcile_inner(
    ks: &Kustomization,
    ctx: &Ctx,
    source: Option<Arc<GitRepository>>,
    written: &mut KustomizationStatus,
) -> Result<Outcome, Error> {
    let key = key_of(ks);
    let generation = ks.meta().generation;
    let interval = ks.spec.interval().unwrap_or(Duration::from_secs(600));
    let retry = ks.spec.retry_interval().unwrap_or(interval);
    let mut status = written.clone();
    if let Some(token) = meta::reconcile_request(Some(ks.annotations())) {
        status.last_handled_reconcile_at = Some(token.to_string());
    }
    let previous_ready_message =
        meta::find_condition(ks.conditions(), READY_CONDITION).map(|c| c.message.clone());

    let fail = |mut status: KustomizationStatus,
                f: Failure,
                revision: Option<&str>,
                events: Vec<(EventType, String, String)>| {
        set(
            &mut status,
            READY_CONDITION,
            CONDITION_FALSE,
            f.reason,
            &f.message,
            generation,
        );
        if f.stalled {
            set(
                &mut status,
                STALLED_CONDITION,
                CONDITION_TRUE,
                f.reason,
                &f.message,
                generation,
            );
            remove(&mut status, RECONCILING_CONDITION);
        } else {
            set(
                &mut status,
                RECONCILING_CONDITION,
                CONDITION_TRUE,
                meta::PROGRESSING_WITH_RETRY_REASON,
                &f.message,
                generation,
            );
            remove(&mut status, STALLED_CONDITION);
        }
        if let Some(rev) = revision {
            status.last_attempted_revision = Some(rev.to_string());
        }
        status.observed_generation = generation;
        let mut events = events;
        if previous_ready_message.as_deref() != Some(f.message.as_str()) {
            events.push((EventType::Warning, f.reason.to_string(), f.message.clone()));
        }
        Outcome {
            status,
            events,
            requeue: if f.stalled { interval } else { retry },
            blocked: false,
            result: "failed",
        }
    };

    // Fields accepted by the schema but not implemented: applying without
    // them would be wrong (the wrong cluster).
    for (set_, field) in [(ks.spec.kube_config.is_some(), "spec.kubeConfig")] {
        if set_ {
            let f = Failure {
                reason: UNSUPPORTED_REASON,
                message: format!("{field} is not supported by sluice yet; nothing was applied"),
                stalled: true,
            };
            return Ok(fail(status, f, None, vec![]));
        }
    }

    // CEL: spec.healthCheckExprs and dependsOn[].readyExpr compile before
    // anything runs; a bad expression stops the run naming its field.
    let mut custom_checks = Vec::new();
    let mut bad_expr = None;
    for (i, h) in ks.spec.health_check_exprs.iter().flatten().enumerate() {
        match CustomHealthCheck::new(
            &format!("spec.healthCheckExprs[{i}]"),
            &h.api_version,
            h.kind.as_deref().unwrap_or_default(),
            &h.current,
            h.in_progress.as_deref(),
            h.failed.as_deref(),
        ) {
            Ok(c) => custom_checks.push(c),
            Err(m) => bad_expr = bad_expr.or(Some(m)),
        }
    }
    for (i, d) in ks.spec.depends_on.iter().flatten().enumerate() {
        if let Some(Err(m)) = d.ready_expr.as_deref().map(Expression::compile) {
            bad_expr = bad_expr.or(Some(format!("spec.dependsOn[{i}].readyExpr: {m}")));
        }
    }
    if let Some(m) = bad_expr {
        let f = Failure {
            reason: INVALID_CEL_REASON,
            message: m,
            stalled: true,
        };
        return Ok(fail(status, f, None, vec![]));
    }

    // --no-cross-namespace-refs: refused before anything is read from the
    // other namespace (Flux: AccessDenied, stalled until the spec changes).
    if let Some(m) = cross_namespace_ref(ks, &ctx.opts) {
        let f = Failure {
            reason: ACCESS_DENIED_REASON,
            message: m,
            stalled: true,
        };
        return Ok(fail(status, f, None, vec![]));
    }

    // dependsOn
    let deps = deps_of(ks);
    if !deps.is_empty() {
        let root_source = source_key(ks);
        let check = graph::check(&key, |k| node_state(ctx, k, &key, ks, &root_source));
        if !check.is_ready() {
            let msg = check.message();
            let cycle = matches!(check, graph::DepCheck::Cycle { .. });
            set(
                &mut status,
                READY_CONDITION,
                CONDITION_FALSE,
                meta::DEPENDENCY_NOT_READY_REASON,
                &msg,
                generation,
            );
            if cycle {
                set(
                    &mut status,
                    STALLED_CONDITION,
                    CONDITION_TRUE,
                    meta::DEPENDENCY_NOT_READY_REASON,
                    &msg,
                    generation,
                );
            }
            let mut events = vec![];
            if previous_ready_message.as_deref() != Some(msg.as_str()) {
                events.push((
                    EventType::Normal,
                    meta::DEPENDENCY_NOT_READY_REASON.to_string(),
                    msg,
                ));
            }
            return Ok(Outcome {
                status,
                events,
                requeue: ctx.opts.requeue_dependency.min(retry),
                blocked: true,
                result: "blocked",
            });
        }
        remove(&mut status, STALLED_CONDITION);
    }

    // Source
    let (skind, sns, sname) = source_key(ks);
    if ks.spec.source_ref.kind != SourceKind::GitRepository {
        let f = Failure {
            reason: UNSUPPORTED_REASON,
            message: format!("source kind {skind} is not supported by sluice yet"),
            stalled: true,
        };
        return Ok(fail(status, f, None, vec![]));
    }
    let Some(source) = source else {
        let f = Failure::new(
            meta::ARTIFACT_FAILED_REASON,
            format!("Source '{skind}/{sns}/{sname}' not found"),
        );
        return Ok(fail(status, f, None, vec![]));
    };
    let Some(artifact) = source.status.as_ref().and_then(|s| s.artifact.clone()) else {
        let f = Failure::new(
            meta::ARTIFACT_FAILED_REASON,
            format!("Source '{skind}/{sns}/{sname}' is not ready, artifact not found"),
        );
        return Ok(fail(status, f, None, vec![]));
    };
    let revision = artifact.revision.clone();
    let timeout = ks.spec.timeout().unwrap_or(Duration::from_secs(300));

    // Progress, written only when something new is being applied.
    if status.last_attempted_revision.as_deref() != Some(revision.as_str())
        || status.observed_generation != generation
    {
        let msg = format!(
            "Fetching manifests for revision {revision} with a timeout of {}",
            meta::format_duration(timeout)
        );
        set(
            &mut status,
            RECONCILING_CONDITION,
            CONDITION_TRUE,
            meta::PROGRESSING_REASON,
            &msg,
            generation,
        );
        set(
            &mut status,
            READY_CONDITION,
            CONDITION_UNKNOWN,
            meta::PROGRESSING_REASON,
            "Reconciliation in progress",
            generation,
        );
        let mut progress = status.clone();
        // The request counts as handled once the run is over.
        progress
            .last_handled_reconcile_at
            .clone_from(&written.last_handled_reconcile_at);
        sort_conditions(progress.conditions_mut());
        if progress != *written {
            patch_status(ctx, &key, &progress).await?;
            *written = progress;
        }
    }

    let phase = Instant::now();
    // postBuild variables, and for spec.decryption the age identities of
    // the decryption Secret.
    let inputs = match substitution_vars(ctx, ks).await {
        Ok(vars) => decryption_keys(ctx, ks).await.map(|d| (vars, d)),
        Err(m) => Err(m),
    };
    let (vars, decryption) = match inputs {
        Ok(v) => v,
        Err(m) => {
            return Ok(fail(
                status,
                Failure::new(meta::BUILD_FAILED_REASON, m),
                Some(&revision),
                vec![],
            ));
        }
    };

    // Fetch, build, decrypt, substitute (blocking work off the runtime).
    // The result is kept per Kustomization and reused while the artifact,
    // the spec, the decryption Secret and the variables are the same
    // (interval runs only re-apply).
    let render_key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        artifact.digest.hash(&mut h);
        artifact.revision.hash(&mut h);
        serde_json::to_string(&ks.spec)
            .unwrap_or_default()
            .hash(&mut h);
        vars.hash(&mut h);
        decryption.as_ref().map(|(_, v)| v).hash(&mut h);
        h.finish()
    };
    let cached = ctx.rendered.lock().ok().and_then(|m| {
        m.get(&key)
            .filter(|(k, _)| *k == render_key)
            .map(|(_, o)| o.clone())
    });
    let built: Result<Arc<Vec<serde_json::Value>>, Failure> = match cached {
        Some(objects) => Ok(objects),
        None => {
            let spec = ks.spec.clone();
            let storage = ctx.opts.storage_path.clone();
            let http_timeout = ctx.opts.http_timeout;
            let art = artifact.clone();
            let cache = ctx.artifacts.clone();
            // The whole fetch and build runs within the Kustomization's
            // timeout: the engine stops itself at the deadline (remote
            // fetches get the time left), and the await below gives up
            // shortly after it whatever the blocking task does.
            let deadline = Instant::now() + timeout;
            let no_remote_bases = ctx.opts.no_remote_bases;
            let task =
                tokio::task::spawn_blocking(move || -> Result<Vec<serde_json::Value>, Failure> {
                    let (_tmp, dir) = cache
                        .checkout(storage.as_deref(), &art, http_timeout)
                        .map_err(|m| Failure::new(meta::ARTIFACT_FAILED_REASON, m))?;
                    let path = render::resolve_path(&dir, spec.path.as_deref())
                        .map_err(|m| Failure::new(meta::ARTIFACT_FAILED_REASON, m))?;
                    let failed = |m: String| {
                        Failure::new(
                            meta::BUILD_FAILED_REASON,
                            render::relative_to_root(&m, &dir),
                        )
                    };
                    render::write_kustomization(&path, &spec).map_err(failed)?;
                    if let Some((ids, _)) = &decryption {
                        render::decrypt_sources(&dir, &path, ids)
                            .map_err(|m| Failure::new(meta::BUILD_FAILED_REASON, m))?;
                    }
                    let bopts = render::BuildOptions {
                        root: Some(dir.clone()),
                        deadline: Some(deadline),
                        no_remote_bases,
                    };
                    let mut objects = render::build(&path, &bopts).map_err(failed)?;
                    if let Some((ids, _)) = &decryption {
                        objects = render::decrypt(objects, ids)
                            .map_err(|m| Failure::new(meta::BUILD_FAILED_REASON, m))?;
                    }
                    render::substitute(objects, vars.as_ref())
                        .map_err(|m| Failure::new(meta::BUILD_FAILED_REASON, m))
                });
            let built = match tokio::time::timeout(timeout + BUILD_GRACE, task).await {
                Ok(joined) => joined.unwrap_or_else(|e| {
                    Err(Failure::new(
                        meta::BUILD_FAILED_REASON,
                        format!("build panicked: {e}"),
                    ))
                }),
                Err(_) => Err(Failure::new(
                    meta::BUILD_FAILED_REASON,
                    format!(
                        "build did not finish within the timeout of {}",
                        meta::format_duration(timeout)
                    ),
                )),
            }
            .map(Arc::new);
            if let (Ok(objects), Ok(mut m)) = (&built, ctx.rendered.lock()) {
                m.insert(key.clone(), (render_key, objects.clone()));
            }
            built
        }
    };
    tracing::debug!(kustomization = %key, elapsed = ?phase.elapsed(), "fetched and built");
    let objects = match built {
        Ok(o) => (*o).clone(),
        Err(f) => return Ok(fail(status, f, Some(&revision), vec![])),
    };

    // Apply, prune and health checks all act as the Kustomization's service
    // account, when it has one.
    let ns = key.namespace.clone();
    let service_account = service_account_of(ks, &ctx.opts);
    let applier = match applier_for(ctx, ks) {
        Ok(a) => a,
        Err(m) => {
            let f = Failure::new(meta::RECONCILIATION_FAILED_REASON, m);
            return Ok(fail(status, f, Some(&revision), vec![]));
        }
    };
    let owner = Owner::new(&key.name, &key.namespace);
    let mut opts = ApplyOptions::new(owner.clone());
    opts.force = ks.spec.is_force();
    if let Some(cm) = &ks.spec.common_metadata {
        opts.common_labels = cm.labels.clone().unwrap_or_default();
        opts.common_annotations = cm.annotations.clone().unwrap_or_default();
    }
    for (i, rule) in ks.spec.ignore.iter().flatten().enumerate() {
        match sluice_apply::IgnoreRule::new(i, &rule.paths, rule.target.as_ref()) {
            Ok(r) => opts.ignore.push(r),
            Err(m) => {
                let f = Failure {
                    reason: meta::RECONCILIATION_FAILED_REASON,
                    message: m,
                    stalled: true,
                };
                return Ok(fail(status, f, Some(&revision), vec![]));
            }
        }
    }
    let count = objects.len();
    let old_inventory = status.inventory.clone().unwrap_or_default();
    let mut events = Vec::new();
    let started = Instant::now();
    // Write-ahead: the objects this apply may create go into the recorded
    // inventory before it starts, so a controller killed in the middle of it
    // still prunes them once they leave Git (one status write, only when the
    // build has objects the inventory lacks).
    let ahead = inventory::union(&old_inventory, &inventory::intended(&objects));
    if ahead.entries.len() != old_inventory.entries.len()
        && written.inventory.as_ref() != Some(&ahead)
    {
        let mut progress = written.clone();
        progress.inventory = Some(ahead);
        patch_status(ctx, &key, &progress).await?;
        *written = progress;
    }
    let progress = sluice_apply::ApplyProgress::new();
    opts.progress = Some(progress.clone());
    let result = match tokio::time::timeout(timeout, applier.apply(objects, &opts)).await {
        Err(_) => {
            // What the abandoned apply wrote (or was writing) stays in the
            // inventory, so a later prune can still remove it.
            status.inventory = Some(inventory::union(&old_inventory, &progress.inventory()));
            let f = Failure::new(
                meta::RECONCILIATION_FAILED_REASON,
                format!("apply timed out after {}", meta::format_duration(timeout)),
            );
            return Ok(fail(status, f, Some(&revision), events));
        }
        Ok(Err(e)) => {
            ctx.metrics.record(&e.requests);
            status.inventory = Some(inventory::union(
                &old_inventory,
                &e.change_set.to_inventory(),
            ));
            let log = e.change_set.change_log();
            if !log.is_empty() {
                events.push((EventType::Normal, meta::PROGRESSING_REASON.to_string(), log));
            }
            let mut message = e.to_string();
            if let Some(sa) = &service_account
                && e.errors.iter().any(|x| x.is_forbidden())
            {
                message =
                    format!("apply forbidden by RBAC for service account {ns}/{sa}: {message}");
            }
            let f = Failure::new(meta::RECONCILIATION_FAILED_REASON, message);
            return Ok(fail(status, f, Some(&revision), events));
        }
        Ok(Ok(r)) => r,
    };
    ctx.metrics.record(&result.requests);
    tracing::debug!(kustomization = %key, elapsed = ?started.elapsed(), requests = ?result.requests, "applied");
    let changed = result.change_set.has_changes();
    if changed {
        events.push((
            EventType::Normal,
            meta::PROGRESSING_REASON.to_string(),
            result.change_set.change_log(),
        ));
    }
    let new_inventory = result.inventory();

    // Prune
    let mut inv = new_inventory.clone();
    if ks.spec.prune {
        // The stale set, then the empty-build and mass-deletion guards:
        // nothing is pruned, and nothing leaves the inventory, until the
        // revision is confirmed.
        let checked = result
            .stale(&old_inventory)
            .map_err(|e| e.to_string())
            .and_then(|stale| {
                check_prune(
                    &old_inventory,
                    count,
                    &stale,
                    &revision,
                    prune_empty_override(Some(ks.annotations())),
                )
                .map(|()| stale)
                .map_err(|e| e.to_string())
            });
        let stale = match checked {
            Ok(stale) => stale,
            Err(message) => {
                status.inventory = Some(inventory::union(&old_inventory, &new_inventory));
                return Ok(fail(
                    status,
                    Failure::new(meta::PRUNE_FAILED_REASON, message),
                    Some(&revision),
                    events,
                ));
            }
        };
        if !stale.is_empty() {
            match applier
                .prune(&stale, &PruneOptions::new(owner.clone()))
                .await
            {
                Ok(p) => {
                    ctx.metrics.record(&p.requests);
                    let log = p.change_set.change_log();
                    if !log.is_empty() {
                        events.push((EventType::Normal, meta::PROGRESSING_REASON.to_string(), log));
                    }
                }
                Err(e) => {
                    ctx.metrics.record(&e.requests);
                    inv = inventory::union(&new_inventory, &inventory::from_objects(&e.failed));
                    status.inventory = Some(inv);
                    return Ok(fail(
                        status,
                        Failure::new(meta::PRUNE_FAILED_REASON, e.to_string()),
                        Some(&revision),
                        events,
                    ));
                }
            }
        }
    }
    status.inventory = Some(inv);
    // The inventory is written before the health checks, which can last up
    // to the timeout: a controller stopped during them (a restart, a kill)
    // still knows what it applied and prunes it when it leaves Git.
    if status.inventory != written.inventory {
        let mut progress = written.clone();
        progress.inventory.clone_from(&status.inventory);
        patch_status(ctx, &key, &progress).await?;
        *written = progress;
    }

    // Health
    let to_check: Vec<ObjectRef> = if ks.spec.is_wait() {
        result.applied()
    } else {
        ks.spec
            .health_checks
            .iter()
            .flatten()
            .map(|h| {
                ObjectRef::from_api_version(
                    h.api_version.as_deref().unwrap_or("v1"),
                    &h.kind,
                    h.namespace.as_deref().unwrap_or(""),
                    &h.name,
                )
            })
            .collect()
    };
    if to_check.is_empty() {
        remove(&mut status, HEALTHY_CONDITION);
    } else {
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let hstart = Instant::now();
        let acting_as = service_account.as_ref().map(|sa| format!("{ns}/{sa}"));
        let checks = health::wait_for(
            applier.client(),
            acting_as.as_deref(),
            &ctx.resources,
            &to_check,
            &custom_checks,
            remaining,
            ctx.opts.health_poll,
        );
        // Health checks only read: a shutdown cuts them short (applies and
        // prunes, which write, are always finished).
        let mut shutdown = ctx.shutdown.clone();
        let checked = tokio::select! {
            r = checks => Some(r),
            () = async move {
                if shutdown.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => None,
        };
        let Some(checked) = checked else {
            let m =
                "Health check canceled: the controller is shutting down; the next run checks again";
            let f = Failure::new(HEALTH_CHECK_CANCELED_REASON, m);
            return Ok(fail(status, f, Some(&revision), events));
        };
        match checked {
            Ok(()) => {
                let msg = format!(
                    "Health check passed in {}",
                    meta::format_duration(Duration::from_millis(
                        hstart.elapsed().as_millis() as u64
                    ))
                );
                let was_healthy = meta::is_condition_true(ks.conditions(), HEALTHY_CONDITION);
                if was_healthy && !changed {
                    // Keep the old message: no status write for a no-op run.
                } else {
                    set(
                        &mut status,
                        HEALTHY_CONDITION,
                        CONDITION_TRUE,
                        meta::SUCCEEDED_REASON,
                        &msg,
                        generation,
                    );
                }
            }
            Err(m) => {
                set(
                    &mut status,
                    HEALTHY_CONDITION,
                    CONDITION_FALSE,
                    meta::HEALTH_CHECK_FAILED_REASON,
                    &m,
                    generation,
                );
                return Ok(fail(
                    status,
                    Failure::new(meta::HEALTH_CHECK_FAILED_REASON, m),
                    Some(&revision),
                    events,
                ));
            }
        }
    }

    let message = format!("Applied revision: {revision}");
    let was_ready =
        ks.is_ready() && status.last_applied_revision.as_deref() == Some(revision.as_str());
    set(
        &mut status,
        READY_CONDITION,
        CONDITION_TRUE,
        meta::RECONCILIATION_SUCCEEDED_REASON,
        &message,
        generation,
    );
    remove(&mut status, RECONCILING_CONDITION);
    remove(&mut status, STALLED_CONDITION);
    status.last_applied_revision = Some(revision.clone());
    status.last_attempted_revision = Some(revision.clone());
    status.observed_generation = generation;
    if !was_ready || changed {
        events.push((
            EventType::Normal,
            meta::RECONCILIATION_SUCCEEDED_REASON.to_string(),
            format!(
                "Reconciliation finished in {}, next run in {}",
                meta::format_duration(Duration::from_millis(started.elapsed().as_millis() as u64)),
                meta::format_duration(interval)
            ),
        ));
    }
    Ok(Outcome {
        status,
        events,
        requeue: interval,
        blocked: false,
        result: if changed { "applied" } else { "unchanged" },
    })
}

/// A Kustomization as the dependsOn graph sees it. `root` is the one being
/// reconciled: a dependency that shares its source must have applied the
/// source's current revision (Flux's rule).
fn node_state(
    ctx: &Ctx,
    k: &Key,
    root: &Key,
    root_ks: &Kustomization,
    root_source: &(String, String, String),
) -> Option<NodeState> {
    if k == root {
        return Some(NodeState {
            deps: deps_of(root_ks),
            ready: Err(String::new()),
        });
    }
    let ks = ctx
        .ks_store
        .get(&KubeRef::new(&k.name).within(&k.namespace))?;
    let deps = deps_of(&ks);
    // A direct dependency with `readyExpr`: the expression replaces the
    // built-in check (Flux's default), with `dep` and `self` bound.
    let ready_expr = root_ks
        .spec
        .depends_on
        .iter()
        .flatten()
        .find(|d| d.name == k.name && d.namespace_or(&root.namespace) == k.namespace)
        .and_then(|d| d.ready_expr.as_deref())
        .filter(|e| !e.trim().is_empty());
    let ready = if ks.meta().deletion_timestamp.is_some() {
        Err("it is being deleted".to_string())
    } else if let Some(text) = ready_expr {
        let dep = serde_json::to_value(&*ks).unwrap_or_default();
        let me = serde_json::to_value(root_ks).unwrap_or_default();
        match Expression::compile(text).and_then(|e| e.eval_bool(&[("dep", &dep), ("self", &me)])) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("readyExpr {text:?} is false")),
            Err(e) => Err(format!("readyExpr: {e}")),
        }
    } else if !ks.is_ready() {
        let msg = meta::find_condition(ks.conditions(), READY_CONDITION)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        Err(msg)
    } else if source_key(&ks) == *root_source {
        let current = lookup_source(ctx, &ks)
            .and_then(|g| g.status.clone())
            .and_then(|s| s.artifact)
            .map(|a| a.revision);
        let applied = ks
            .status
            .as_ref()
            .and_then(|s| s.last_applied_revision.clone());
        match current {
            Some(cur) if applied.as_deref() != Some(cur.as_str()) => Err(format!(
                "it has not applied the source's revision {cur} yet"
            )),
            _ => Ok(()),
        }
    } else {
        Ok(())
    };
    Some(NodeState { deps, ready })
}

/// `spec.decryption` as Flux's decryptor imports keys: the Secret
/// `secretRef` in the Kustomization's namespace, every key ending in
/// `.agekey` holding age identities. Returns them with the Secret's
/// resourceVersion (for the render cache: a rotated key re-renders).
/// Other key kinds (`.asc`, `sops.vault-token`, cloud KMS credentials) are
/// not used; a document encrypted only for them fails naming the method.
async fn decryption_keys(
    ctx: &Ctx,
    ks: &Kustomization,
) -> Result<Option<(Arc<sluice_sops::Identities>, String)>, String> {
    let Some(d) = &ks.spec.decryption else {
        return Ok(None);
    };
    if d.provider != DecryptionProvider::Sops {
        return Err(format!(
            "decryption provider '{}' is not supported (only 'sops')",
            d.provider
        ));
    }
    let mut ids = sluice_sops::Identities::new();
    let Some(r) = &d.secret_ref else {
        return Ok(Some((Arc::new(ids), String::new())));
    };
    let ns = ks.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let secret = api
        .get_opt(&r.name)
        .await
        .map_err(|e| format!("cannot get sops decryption Secret '{ns}/{}': {e}", r.name))?
        .ok_or_else(|| format!("sops decryption Secret '{ns}/{}' not found", r.name))?;
    for (k, v) in secret.data.iter().flatten() {
        if !k.ends_with(".agekey") {
            continue;
        }
        let text = std::str::from_utf8(&v.0).map_err(|_| {
            format!(
                "failed to import '{k}' data from sops decryption Secret '{ns}/{}': not UTF-8",
                r.name
            )
        })?;
        ids.import(text).map_err(|e| {
            format!(
                "failed to import '{k}' data from sops decryption Secret '{ns}/{}': {e}",
                r.name
            )
        })?;
    }
    let version = format!(
        "{}/{}",
        secret.metadata.uid.unwrap_or_default(),
        secret.metadata.resource_version.unwrap_or_default()
    );
    Ok(Some((Arc::new(ids), version)))
}

async fn substitution_vars(
    ctx: &Ctx,
    ks: &Kustomization,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let Some(pb) = &ks.spec.post_build else {
        return Ok(None);
    };
    let ns = ks.namespace().unwrap_or_default();
    let mut vars = BTreeMap::new();
    for r in pb.substitute_from.iter().flatten() {
        let kind = r.kind.to_string();
        let data: Option<BTreeMap<String, String>> = match r.kind {
            SubstituteKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                api.get_opt(&r.name)
                    .await
                    .map_err(|e| format!("substitute from '{kind}/{}' failed: {e}", r.name))?
                    .map(|cm| cm.data.unwrap_or_default())
            }
            SubstituteKind::Secret => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
                api.get_opt(&r.name)
                    .await
                    .map_err(|e| format!("substitute from '{kind}/{}' failed: {e}", r.name))?
                    .map(|s| {
                        let mut m: BTreeMap<String, String> = s
                            .data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect();
                        m.extend(s.string_data.unwrap_or_default());
                        m
                    })
            }
            _ => {
                return Err(format!(
                    "substitute from '{kind}/{}': unsupported kind",
                    r.name
                ));
            }
        };
        match data {
            Some(d) => vars.extend(d),
            None if r.is_optional() => {}
            None => {
                return Err(format!(
                    "substitute from '{kind}/{}' failed: {kind} {ns}/{} not found",
                    r.name, r.name
                ));
            }
        }
    }
    if let Some(s) = &pb.substitute {
        vars.extend(s.clone());
    }
    // Flux substitutes only when some variable or some source of variables
    // is defined, unless `substituteStrategy: Always` (then `${x:=default}`
    // applies even without either).
    let declared = pb.substitute.as_ref().is_some_and(|m| !m.is_empty())
        || pb.substitute_from.as_ref().is_some_and(|l| !l.is_empty());
    if !declared && pb.substitute_strategy != Some(SubstituteStrategy::Always) {
        return Ok(None);
    }
    Ok(Some(vars))
}

/// `deletionPolicy: WaitForTermination`: while objects of the inventory still
/// exist (finalizers of their own, terminating Pods), the finalizer stays and
/// the deletion is looked at again shortly. After `spec.timeout` from the
/// deletion request, a warning names what is left and the Kustomization goes.
async fn wait_for_termination(
    ks: &Kustomization,
    ctx: &Ctx,
    applier: &Applier,
    objects: &[ObjectRef],
) -> Option<Action> {
    let mut remaining = Vec::new();
    for o in objects {
        match applier.get(o).await {
            Ok(None) => {}
            Ok(Some(_)) => remaining.push(o.to_string()),
            Err(e) => remaining.push(format!("{o} ({e})")),
        }
    }
    if remaining.is_empty() {
        return None;
    }
    let timeout = ks.spec.timeout().unwrap_or(Duration::from_secs(300));
    let since = ks
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| jiff::Timestamp::now().as_second() - t.0.as_second())
        .map(|secs| Duration::from_secs(secs.max(0) as u64))
        .unwrap_or_default();
    if since < timeout {
        return Some(Action::requeue(Duration::from_secs(2)));
    }
    publish(
        ctx,
        ks,
        vec![(
            EventType::Warning,
            meta::PRUNE_FAILED_REASON.to_string(),
            format!(
                "timed out after {} waiting for termination of {}; removing the finalizer",
                meta::format_duration(timeout),
                remaining.join(", ")
            ),
        )],
    )
    .await;
    None
}

async fn finalize(ks: &Kustomization, ctx: &Ctx) -> Result<Action, Error> {
    let key = key_of(ks);
    if !ks.finalizers().iter().any(|f| f == meta::FINALIZER) {
        return Ok(Action::await_change());
    }
    if ks.spec.deletes_on_finalize() && !ks.spec.is_suspended() {
        let objects = inventory::list(
            &ks.status
                .clone()
                .unwrap_or_default()
                .inventory
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        if !objects.is_empty() {
            let applier = match applier_for(ctx, ks) {
                Ok(a) => a,
                Err(m) => {
                    publish(
                        ctx,
                        ks,
                        vec![(EventType::Warning, meta::PRUNE_FAILED_REASON.to_string(), m)],
                    )
                    .await;
                    return Ok(Action::requeue(
                        ks.spec.retry_interval().unwrap_or(Duration::from_secs(60)),
                    ));
                }
            };
            let owner = Owner::new(&key.name, &key.namespace);
            match applier.prune(&objects, &PruneOptions::new(owner)).await {
                Ok(p) => {
                    ctx.metrics.record(&p.requests);
                    let log = p.change_set.change_log();
                    if !log.is_empty() {
                        publish(
                            ctx,
                            ks,
                            vec![(EventType::Normal, meta::PROGRESSING_REASON.to_string(), log)],
                        )
                        .await;
                    }
                    if ks.spec.deletion_policy() == DeletionPolicy::WaitForTermination
                        && let Some(wait) = wait_for_termination(ks, ctx, &applier, &objects).await
                    {
                        return Ok(wait);
                    }
                }
                Err(e) => {
                    publish(
                        ctx,
                        ks,
                        vec![(
                            EventType::Warning,
                            meta::PRUNE_FAILED_REASON.to_string(),
                            e.to_string(),
                        )],
                    )
                    .await;
                    return Ok(Action::requeue(
                        ks.spec.retry_interval().unwrap_or(Duration::from_secs(60)),
                    ));
                }
            }
        }
    }
    let finalizers: Vec<String> = ks
        .finalizers()
        .iter()
        .filter(|f| *f != meta::FINALIZER)
        .cloned()
        .collect();
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &key.namespace);
    api.patch(
        &key.name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": finalizers}})),
    )
    .await?;
    ctx.metrics.writes.inc();
    if let Ok(mut idx) = ctx.index.lock() {
        idx.remove(&key);
    }
    if let Ok(mut m) = ctx.memo.lock() {
        m.remove(&key);
    }
    if let Ok(mut m) = ctx.rendered.lock() {
        m.remove(&key);
    }
    Ok(Action::await_change())
}
