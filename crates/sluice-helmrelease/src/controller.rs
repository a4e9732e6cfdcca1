//! The HelmRelease controller's wiring: the watches (HelmReleases, and the OCIRepositories and
//! HelmCharts they take charts from), the reconcile entry point (finalizer, suspend, status
//! write, events) and the run's phases, each a short step that returns how the run ends:
//!
//! ```text
//! validate()   -> Stalled UnsupportedField: what sluice does not do yet, named
//! depends_on() -> DependencyNotReady, naming the dependency
//! chart()      -> ArtifactFailed (the source, its artifact, the chart archive)
//! values()     -> ValuesError (Flux's chartutil semantics, crate sluice-helm)
//! release()    -> state (crate::state) → one action at a time (crate::actions);
//!                 its wait (sluice_apply::health, with cause chains) does not hold the
//!                 worker: Ready=Unknown "waiting for 2 objects …", looked at again every
//!                 health poll, completed when ready or out of time; anything new (spec,
//!                 chart, reconcile request) cancels it; Released / Remediated, history
//!                 snapshots as helm-controller writes them
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{ObjectRef as KubeRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Config, Resource, ResourceExt};
use sluice_api::helm_release::{
    self as api, ChartRefKind, HelmReleaseStatus, ReleaseAction, Snapshot,
};
use sluice_api::meta::{self, Artifact, FluxObject};
use sluice_api::{ExternalArtifact, HelmChart, HelmRelease, OCIRepository};
use sluice_apply::health::{self, Health};
use sluice_apply::{Applier, ObjectRef, Owner};
use sluice_helm::release::Release;
use sluice_kstatus::cel::{CustomHealthCheck, Expression};
use sluice_kustomize::yaml::Map as YMap;
use sluice_runtime::tenancy::ACCESS_DENIED_REASON;
use sluice_runtime::{Failure, History, Recorder, Schedules, ServiceAccountRef, finalizers};

use crate::actions::{self, Context, Desired, FIELD_MANAGER};
use crate::drift;
use crate::outcome::{self, Ended};
use crate::state::{self, Action, Decide, Facts, RollbackTarget, State};
use crate::storage::Storage;

/// The readiness gate of the controller.
pub const READINESS_GATE: &str = "helmrelease";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Reconcile only HelmReleases matching this label selector.
    pub label_selector: Option<String>,
    /// HelmReleases reconciled in parallel.
    pub concurrency: u16,
    /// The source controller's storage root when reachable on disk (artifacts are read there
    /// instead of downloaded).
    pub storage_path: Option<PathBuf>,
    /// Timeout of artifact downloads.
    pub http_timeout: Duration,
    /// How long a HelmRelease waiting for a dependency waits before looking again.
    pub requeue_dependency: Duration,
    /// How often a wait looks at the release's objects.
    pub health_poll: Duration,
    /// What the process's controllers share.
    pub runtime: sluice_runtime::Runtime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            label_selector: None,
            concurrency: 4,
            storage_path: None,
            http_timeout: Duration::from_secs(60),
            requeue_dependency: Duration::from_secs(30),
            health_poll: Duration::from_secs(2),
            runtime: sluice_runtime::Runtime::default(),
        }
    }
}

/// A failure of the controller itself (not of a release: those are conditions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Uninstalling a HelmRelease being deleted failed.
    #[error("{0}")]
    Cleanup(String),
}

struct Ctx {
    client: Client,
    config: Config,
    applier: Applier,
    recorder: Recorder,
    opts: Options,
    schedules: Schedules,
    /// Revisions applied and waited for, by HelmRelease (the worker is not held while waiting).
    waits: Mutex<HashMap<sluice_runtime::ObjectKey, Waiting>>,
    /// The environmental cause of each HelmRelease's last failed action, how many actions in a
    /// row it failed, and what the HelmRelease looked like then.
    environment: Mutex<HashMap<sluice_runtime::ObjectKey, Recurring>>,
    /// Appliers for the clusters of `spec.kubeConfig`.
    remote: sluice_apply::RemoteAppliers,
    /// Charts loaded from artifacts, shared by the reconciles that hold them at once.
    charts: crate::shared::Shared<Chart>,
}

/// An environmental cause that failed a release's actions.
struct Recurring {
    cause: crate::environment::Cause,
    failures: u32,
    fingerprint: String,
}

/// A revision applied and waited for across runs.
struct Waiting {
    /// What the run that applied it saw (generation, source, reconcile request): anything new
    /// cancels the wait.
    fingerprint: String,
    step: Step,
    about: About,
    /// The revision, `pending-*` in storage.
    release: Release,
    objects: Vec<ObjectRef>,
    /// What the apply created, deleted if the revision fails (`upgrade.cleanupOnFail`).
    cleanup: Vec<ObjectRef>,
    started: Instant,
    wait_started: Instant,
    deadline: Instant,
}

/// Which action a wait is part of.
enum Step {
    Install,
    Upgrade,
    Rollback(Box<Snapshot>),
}

/// What the messages of an action name.
struct About {
    name: String,
    namespace: String,
    /// `<chart>@<version>`.
    chart: String,
    oci_digest: String,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run_until(
    config: Config,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gate = opts.runtime.readiness.gate(READINESS_GATE);
    // The controller wants a shutdown signal it can share between threads.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let stop_task = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        std::future::pending::<()>().await;
    });
    let stop = async move {
        if stop_rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let client = Client::try_from(config.clone())?;
    let scope = sluice_runtime::WatchScope {
        namespace: opts.namespace.clone(),
        label_selector: opts.label_selector.clone(),
    };
    let api = scope.api::<HelmRelease>(&client);
    let controller = Controller::new(api.clone(), scope.watcher_config());
    let store = controller.store();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config,
        applier: Applier::new(client.clone()).with_field_manager(FIELD_MANAGER),
        recorder: Recorder::new(client.clone(), FIELD_MANAGER, &opts.runtime.events),
        schedules: Schedules::default(),
        waits: Mutex::new(HashMap::new()),
        environment: Mutex::new(HashMap::new()),
        remote: sluice_apply::RemoteAppliers::new(sluice_apply::KubeConfigPolicy {
            insecure_tls: opts.runtime.tenancy.insecure_kubeconfig_tls,
            insecure_exec: opts.runtime.tenancy.insecure_kubeconfig_exec,
        }),
        opts: opts.clone(),
        charts: Default::default(),
    });
    let ready_task = sluice_runtime::readiness::open_when_listable(
        gate,
        api.clone(),
        opts.label_selector.clone(),
    );
    tracing::info!(namespace = ?opts.namespace, "starting HelmRelease controller");
    // ExternalArtifacts are watched only with Flux's feature gate on, as helm-controller does.
    let controller = if opts.runtime.tenancy.external_artifacts {
        controller.watches(
            scope.api::<ExternalArtifact>(&client),
            watcher::Config::default(),
            users_of(store.clone(), ChartRefKind::ExternalArtifact),
        )
    } else {
        controller
    };
    controller
        .watches(
            scope.api::<OCIRepository>(&client),
            watcher::Config::default(),
            users_of(store.clone(), ChartRefKind::OciRepository),
        )
        .watches(
            scope.api::<HelmChart>(&client),
            watcher::Config::default(),
            users_of(store.clone(), ChartRefKind::HelmChart),
        )
        .watches(
            api.clone(),
            scope.watcher_config(),
            dependents_of(store.clone()),
        )
        .with_config(kube::runtime::controller::Config::default().concurrency(opts.concurrency))
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
    ready_task.abort();
    stop_task.abort();
    tracing::info!("HelmRelease controller stopped");
    Ok(())
}

/// The HelmReleases that depend on `dependency`, woken as soon as it is ready (no polling).
fn dependents_of(
    store: Store<HelmRelease>,
) -> impl Fn(HelmRelease) -> Vec<KubeRef<HelmRelease>> + Send + Sync + Clone + 'static {
    move |dependency: HelmRelease| {
        if !dependency.is_ready() || dependency.metadata.deletion_timestamp.is_some() {
            return Vec::new();
        }
        let (name, ns) = (
            dependency.name_any(),
            dependency.namespace().unwrap_or_default(),
        );
        store
            .state()
            .iter()
            .filter(|hr| {
                let own_ns = hr.namespace().unwrap_or_default();
                hr.spec
                    .depends_on
                    .iter()
                    .flatten()
                    .any(|d| d.name == name && d.namespace_or(&own_ns) == ns)
            })
            .map(|hr| KubeRef::from_obj(hr.as_ref()))
            .collect()
    }
}

/// The HelmReleases whose `chartRef` names a changed source.
fn users_of<K: Resource<DynamicType = ()>>(
    store: Store<HelmRelease>,
    kind: ChartRefKind,
) -> impl Fn(K) -> Vec<KubeRef<HelmRelease>> + Send + Sync + Clone + 'static {
    move |source: K| {
        let (name, ns) = (source.name_any(), source.namespace().unwrap_or_default());
        store
            .state()
            .iter()
            .filter(|hr| {
                chart_source(hr).is_some_and(|(k, n, m)| k == kind && n == ns && m == name)
            })
            .map(|hr| KubeRef::from_obj(hr.as_ref()))
            .collect()
    }
}

fn error_policy(hr: Arc<HelmRelease>, err: &finalizers::Error<Error>, ctx: Arc<Ctx>) -> Requeue {
    tracing::warn!(helmrelease = %hr.name_any(), "reconcile error: {err}");
    ctx.opts
        .runtime
        .metrics
        .failure(api::HELM_RELEASE_KIND, "Reconcile");
    Requeue::requeue(Duration::from_secs(5))
}

async fn reconcile(
    hr: Arc<HelmRelease>,
    ctx: Arc<Ctx>,
) -> Result<Requeue, finalizers::Error<Error>> {
    let (a, c) = (ctx.clone(), ctx.clone());
    let result = finalizers::reconcile(
        &ctx.client,
        hr,
        |hr| async move { reconcile_live(&hr, &a).await },
        |hr| async move { cleanup(&hr, &c).await },
    )
    .await;
    // What the run allocated is free now: trimmed once the burst settles.
    ctx.opts.runtime.memory.work_done();
    result
}

async fn reconcile_live(hr: &HelmRelease, ctx: &Ctx) -> Result<Requeue, Error> {
    let key = sluice_runtime::schedule::key_of(hr);
    if hr.is_suspended() {
        ctx.schedules.remove(&key);
        if let Ok(mut waits) = ctx.waits.lock() {
            waits.remove(&key);
        }
        observe(ctx, hr, hr.status.as_ref());
        return Ok(Requeue::await_change());
    }
    // A run that resumes a wait reads the object from the API server: the cached copy may
    // predate the status the run that began the wait wrote (its watch event not seen yet
    // when a child object's readiness wakes this run), and writing the status on top of
    // that copy would drop what it recorded (lastAttemptedRevision and the rest).
    let fresh;
    let waiting = ctx.waits.lock().is_ok_and(|w| w.contains_key(&key));
    let hr = if waiting {
        let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &key.0);
        match api.get_opt(&key.1).await? {
            Some(o) => {
                fresh = o;
                &fresh
            }
            None => return Ok(Requeue::await_change()),
        }
    } else {
        hr
    };
    // Runs woken by nothing new (this controller's own status writes) wait for their time.
    let source = source_artifact(hr, ctx).await;
    // The chart's artifact as stored, not only its digest (`Artifact::identity`).
    let artifact = source
        .as_ref()
        .map(|s| s.artifact.identity())
        .unwrap_or_default();
    let fingerprint = sluice_runtime::schedule::fingerprint(hr, &[&artifact]);
    if let Some(wait) = ctx.schedules.wait(&key, &fingerprint, Instant::now()) {
        return Ok(Requeue::requeue(wait));
    }
    let mut status = hr.status.clone().unwrap_or_default();
    if let Some(token) = meta::reconcile_request(hr.meta().annotations.as_ref()) {
        status.last_handled_reconcile_at = Some(token.to_owned());
    }
    let started = Instant::now();
    let mut run = Run {
        hr,
        ctx,
        key: key.clone(),
        fingerprint: fingerprint.clone(),
        source,
        status: &mut status,
        changed: false,
        events: Vec::new(),
    };
    let ended = run.execute().await;
    let changed = run.changed;
    let extra_events = std::mem::take(&mut run.events);
    let ended = match ended {
        Ended::Released { .. } => Ended::Released { changed },
        other => other,
    };
    let history = History {
        consecutive_failures: ctx.schedules.get(&key).map_or(0, |d| d.failures),
    };
    let policy = outcome::policy(hr, ctx.opts.requeue_dependency, ctx.opts.health_poll);
    let mut decision = outcome::conclude(hr, &mut status, &ended, &policy, history);
    decision.events.splice(0..0, extra_events);
    if let Some(cur) = status.latest() {
        for event in &mut decision.events {
            release_event_metadata(event, cur);
        }
    }
    if hr.status.as_ref() != Some(&status) {
        sluice_runtime::status::patch(&ctx.client, hr, &status, FIELD_MANAGER).await?;
    }
    let revision = status.last_attempted_revision.clone();
    ctx.recorder
        .publish(hr, revision.as_deref(), &decision.events)
        .await;
    let failures = match ended {
        Ended::Released { .. } => 0,
        Ended::Progressing(_) => history.consecutive_failures,
        _ => history.consecutive_failures + 1,
    };
    ctx.schedules.set(
        key,
        sluice_runtime::Due {
            fingerprint,
            next: Some(Instant::now() + decision.requeue),
            failures,
            eager: matches!(
                ended,
                Ended::Blocked(_) | Ended::Progressing(_) | Ended::WaitingForSource(_)
            ),
        },
    );
    ctx.opts.runtime.metrics.observe_duration(
        api::HELM_RELEASE_KIND,
        &hr.namespace().unwrap_or_default(),
        &hr.name_any(),
        started.elapsed(),
    );
    observe(ctx, hr, Some(&status));
    Ok(Requeue::requeue(decision.requeue))
}

/// Flux's `gotk_*` gauges of `hr` (conditions, suspension, the newest chart version).
fn observe(ctx: &Ctx, hr: &HelmRelease, status: Option<&HelmReleaseStatus>) {
    let (namespace, name) = (hr.namespace().unwrap_or_default(), hr.name_any());
    ctx.opts
        .runtime
        .metrics
        .observe(&sluice_runtime::metrics::Observation {
            kind: api::HELM_RELEASE_KIND,
            namespace: &namespace,
            name: &name,
            conditions: status
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default(),
            suspended: hr.is_suspended(),
            revision: status
                .and_then(|s| s.latest())
                .map_or("", |s| s.chart_version.as_str()),
        });
}

/// Uninstalls the release of a HelmRelease being deleted (not when suspended, as Flux).
async fn cleanup(hr: &HelmRelease, ctx: &Ctx) -> Result<Requeue, Error> {
    let key = sluice_runtime::schedule::key_of(hr);
    ctx.opts.runtime.metrics.deleted(
        api::HELM_RELEASE_KIND,
        &hr.namespace().unwrap_or_default(),
        &hr.name_any(),
    );
    if let Ok(mut waits) = ctx.waits.lock() {
        waits.remove(&key);
    }
    ctx.schedules.remove(&key);
    if let Ok(mut env) = ctx.environment.lock() {
        env.remove(&key);
    }
    if hr.is_suspended() {
        return Ok(Requeue::await_change());
    }
    if let Some((ns, name)) = hr.status.as_ref().and_then(|s| s.helm_chart()) {
        delete_helm_chart(ctx, ns, name)
            .await
            .map_err(Error::Cleanup)?;
    }
    // As helm-controller: without the account it acts as (its namespace being deleted, say),
    // the release is left where it is rather than the HelmRelease kept forever.
    if let Some(sa) = acting_as(hr, ctx) {
        let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &sa.namespace);
        if accounts.get_opt(&sa.name).await?.is_none() {
            tracing::info!(
                helmrelease = %format!("{}/{}", key.0, key.1),
                "service account {sa} not found: the release is not uninstalled"
            );
            return Ok(Requeue::await_change());
        }
    }
    let applier = applier_for(hr, ctx)
        .await
        .map_err(|f| Error::Cleanup(f.message))?;
    let storage = storage_for(hr, &applier);
    let name = release_name(hr);
    let last = storage
        .last(&name)
        .await
        .map_err(|e| Error::Cleanup(e.to_string()))?;
    let Some(last) = last else {
        return Ok(Requeue::await_change());
    };
    if last.status() == sluice_helm::release::Status::Uninstalled {
        return Ok(Requeue::await_change());
    }
    let now = Now::new();
    let disable_hooks = hr.uninstall().disable_hooks.unwrap_or(false);
    let action_ctx = action_context(hr, &applier, &storage, &now, disable_hooks);
    actions::uninstall(&action_ctx, &last, &uninstall_options(hr))
        .await
        .map_err(|e| {
            Error::Cleanup(format!(
                "Helm uninstall failed for release {}/{}: {e}",
                last.namespace, last.name
            ))
        })?;
    Ok(Requeue::await_change())
}

/// The rules a wait judges the release's objects by: Helm's legacy readiness with
/// `waitStrategy: legacy`, else kstatus (helm-controller's poller); Jobs waited for until
/// complete unless the action's `disableWaitForJobs` (Helm's `Wait` instead of `WaitWithJobs`).
fn wait_rules(hr: &HelmRelease, step: &Step) -> health::Rules {
    let disabled = match step {
        Step::Install => hr.install().disable_wait_for_jobs,
        Step::Upgrade => hr.upgrade().disable_wait_for_jobs,
        Step::Rollback(_) => hr.rollback().disable_wait_for_jobs,
    };
    let jobs = !disabled.unwrap_or(false);
    let legacy = hr
        .spec
        .wait_strategy
        .as_ref()
        .is_some_and(|w| w.name == api::WaitStrategyName::Legacy);
    match (legacy, jobs) {
        (true, check_jobs) => health::Rules::HelmLegacy { check_jobs },
        (false, true) => health::Rules::Flux,
        (false, false) => health::Rules::Kstatus,
    }
}

/// `spec.uninstall` as the uninstall action takes it: Helm waits for the deleted objects
/// (within `uninstall.timeout`, else `spec.timeout`) unless `disableWait`.
fn uninstall_options(hr: &HelmRelease) -> actions::UninstallOptions {
    let u = hr.uninstall();
    actions::UninstallOptions {
        keep_history: u.keep_history.unwrap_or(false),
        propagation: match u.deletion_propagation {
            Some(api::DeletionPropagation::Foreground) => sluice_apply::Propagation::Foreground,
            Some(api::DeletionPropagation::Orphan) => sluice_apply::Propagation::Orphan,
            _ => sluice_apply::Propagation::Background,
        },
        wait: (!u.disable_wait.unwrap_or(false)).then(|| {
            hr.action_timeout(u.timeout.as_deref())
                .unwrap_or(api::DEFAULT_TIMEOUT)
        }),
    }
}

/// Deletes HelmChart `ns/name` (made from `spec.chart`), as helm-controller's `reconcileDelete`.
async fn delete_helm_chart(ctx: &Ctx, ns: &str, name: &str) -> Result<(), String> {
    let api: Api<HelmChart> = Api::namespaced(ctx.client.clone(), ns);
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(format!("failed to delete HelmChart '{ns}/{name}': {e}")),
    }
}

/// The HelmChart `spec.chart` describes, as helm-controller builds it from the template.
fn helm_chart_from_template(hr: &HelmRelease) -> Option<serde_json::Value> {
    let template = hr.spec.chart.as_ref()?;
    let (_, ns, name) = chart_source(hr)?;
    let t = &template.spec;
    let mut spec = serde_json::json!({
        "chart": t.chart,
        "sourceRef": {"kind": t.source_ref.kind, "name": t.source_ref.name},
        "interval": t.interval.clone().unwrap_or_else(|| hr.spec.interval.clone()),
    });
    let set = |spec: &mut serde_json::Value, key: &str, v: serde_json::Value| {
        if !v.is_null() {
            spec[key] = v;
        }
    };
    set(&mut spec, "version", serde_json::json!(t.version));
    set(
        &mut spec,
        "reconcileStrategy",
        serde_json::json!(t.reconcile_strategy),
    );
    set(&mut spec, "valuesFiles", serde_json::json!(t.values_files));
    set(
        &mut spec,
        "ignoreMissingValuesFiles",
        serde_json::json!(t.ignore_missing_values_files),
    );
    set(&mut spec, "verify", serde_json::json!(t.verify));
    let mut metadata = serde_json::json!({"name": name, "namespace": ns});
    if let Some(m) = template.metadata.as_ref() {
        set(&mut metadata, "labels", serde_json::json!(m.labels));
        set(
            &mut metadata,
            "annotations",
            serde_json::json!(m.annotations),
        );
    }
    Some(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// Where the chart comes from: `spec.chartRef`, or the HelmChart made from `spec.chart`
/// (`<namespace>-<name>` in the source's namespace, as helm-controller names it).
fn chart_source(hr: &HelmRelease) -> Option<(ChartRefKind, String, String)> {
    let own_ns = hr.namespace().unwrap_or_default();
    if let Some(r) = hr.spec.chart_ref.as_ref() {
        return Some((
            r.kind.clone(),
            r.namespace_or(&own_ns).to_owned(),
            r.name.clone(),
        ));
    }
    let template = hr.spec.chart.as_ref()?;
    let ns = template
        .spec
        .source_ref
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or(own_ns);
    Some((ChartRefKind::HelmChart, ns, hr.helm_chart_name()))
}

/// With `--no-cross-namespace-refs`, the refusal of a chart source in another namespace than
/// the HelmRelease's (a `chartRef`, or the HelmChart `spec.chart` makes there), in
/// helm-controller's words: Stalled, reason `AccessDenied`, nothing created or read.
fn cross_namespace_source(hr: &HelmRelease, ctx: &Ctx) -> Option<Failure> {
    let (kind, ns, name) = chart_source(hr)?;
    if ctx
        .opts
        .runtime
        .tenancy
        .allows(&hr.namespace().unwrap_or_default(), &ns)
    {
        return None;
    }
    Some(Failure::stalled(
        ACCESS_DENIED_REASON,
        format!("cross-namespace references are not allowed: cannot access {kind} {ns}/{name}"),
    ))
}

/// A chart source's artifact, and how it is read.
#[derive(Clone, Debug)]
struct SourceArtifact {
    artifact: Artifact,
    /// Whether the chart's version carries the artifact's digest, as helm-controller's
    /// `mutateChartWithSourceRevision` does: always from an OCIRepository, and from an
    /// ExternalArtifact whose revision has a digest.
    digest_in_version: bool,
    /// Whether the artifact may be read from sluice's own storage by its `path`. Not an
    /// ExternalArtifact's: its producer wrote that path (which could name another source's
    /// artifact there); it is downloaded from its URL and checked against its digest.
    local: bool,
}

/// The chart source's artifact. Read once per run: its digest is part of the run's
/// fingerprint, and the chart is loaded from it.
async fn source_artifact(hr: &HelmRelease, ctx: &Ctx) -> Result<SourceArtifact, SourceError> {
    let Some((kind, ns, name)) = chart_source(hr) else {
        return Err(SourceError::Failed(Failure::stalled(
            api::ARTIFACT_FAILED_REASON,
            "neither spec.chartRef nor spec.chart is set",
        )));
    };
    if let Some(denied) = cross_namespace_source(hr, ctx) {
        return Err(SourceError::Failed(denied));
    }
    let pending = |m: String| SourceError::Pending(Failure::new(api::ARTIFACT_FAILED_REASON, m));
    let client = ctx.client.clone();
    let found = match &kind {
        ChartRefKind::OciRepository => Api::<OCIRepository>::namespaced(client, &ns)
            .get_opt(&name)
            .await
            .map(|o| o.map(|o| o.artifact().cloned())),
        ChartRefKind::HelmChart => Api::<HelmChart>::namespaced(client, &ns)
            .get_opt(&name)
            .await
            .map(|o| o.map(|o| o.artifact().cloned())),
        ChartRefKind::ExternalArtifact => {
            if let Some(m) = ctx
                .opts
                .runtime
                .tenancy
                .external_artifact_denied(&ns, &name)
            {
                return Err(SourceError::Failed(Failure::stalled(
                    ACCESS_DENIED_REASON,
                    m,
                )));
            }
            Api::<ExternalArtifact>::namespaced(client, &ns)
                .get_opt(&name)
                .await
                .map(|o| o.map(|o| o.artifact().cloned()))
        }
        other => {
            return Err(SourceError::Failed(Failure::stalled(
                meta::UNSUPPORTED_FIELD_REASON,
                format!("spec.chartRef.kind {other} is not supported by sluice yet"),
            )));
        }
    };
    match found {
        Err(e) => Err(pending(format!("could not get Source object: {e}"))),
        Ok(None) => Err(pending(format!(
            "could not get Source object: {kind} '{ns}/{name}' not found"
        ))),
        Ok(Some(None)) => Err(SourceError::Pending(Failure::new(
            SOURCE_NOT_READY_REASON,
            format!("{kind} source '{ns}/{name}' has no artifact yet"),
        ))),
        Ok(Some(Some(artifact))) => Ok(SourceArtifact {
            digest_in_version: match kind {
                ChartRefKind::OciRepository => true,
                ChartRefKind::ExternalArtifact => artifact.revision.contains(':'),
                _ => false,
            },
            local: kind != ChartRefKind::ExternalArtifact,
            artifact,
        }),
    }
}

/// The metadata helm-controller puts on the events of its release actions (its `eventMeta`),
/// beyond the revision (the chart version) every event carries: the values' digest as
/// `token` (part of notification-controller's duplicate key) and, on the events about a
/// release that was made or acted on, the chart's `appVersion` and OCI digest (which chat
/// Providers show). Other events (a chart that failed to load, a dependency) have none.
fn release_event_metadata(event: &mut sluice_runtime::Event, cur: &api::Snapshot) {
    let reason: &str = &event.reason;
    let full = [
        api::INSTALL_SUCCEEDED_REASON,
        api::UPGRADE_SUCCEEDED_REASON,
        api::TEST_SUCCEEDED_REASON,
        api::TEST_FAILED_REASON,
        api::UNINSTALL_SUCCEEDED_REASON,
        api::UNINSTALL_FAILED_REASON,
        "DriftCorrected",
        "DriftCorrectionFailed",
    ]
    .contains(&reason);
    let token_only = [
        api::INSTALL_FAILED_REASON,
        api::UPGRADE_FAILED_REASON,
        api::ROLLBACK_SUCCEEDED_REASON,
        api::ROLLBACK_FAILED_REASON,
    ]
    .contains(&reason);
    if !(full || token_only) {
        return;
    }
    let metadata = &mut event.metadata;
    if !cur.config_digest.is_empty() {
        metadata.insert("token", cur.config_digest.clone());
    }
    if full {
        for (key, value) in [
            ("appVersion", &cur.app_version),
            ("ociDigest", &cur.oci_digest),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                metadata.insert(key, v.clone());
            }
        }
    }
}

/// Helm-controller's Ready reason while the chart source has no artifact.
const SOURCE_NOT_READY_REASON: &str = "SourceNotReady";

/// Why the chart source's artifact could not be had.
#[derive(Clone, Debug)]
enum SourceError {
    /// The source is not there yet, or has no artifact yet (a Kustomization applies the
    /// OCIRepository and the HelmRelease together): waited for, without an event, as
    /// helm-controller only logs it; its watch wakes the HelmRelease.
    Pending(Failure),
    /// The HelmRelease itself is wrong.
    Failed(Failure),
}

impl SourceError {
    fn into_failure(self) -> Failure {
        match self {
            SourceError::Pending(f) | SourceError::Failed(f) => f,
        }
    }
}

fn release_name(hr: &HelmRelease) -> String {
    crate::build::release_name(hr)
}

/// The service account every Helm action of `hr` acts as, its storage included, as
/// helm-controller's impersonating client: `spec.serviceAccountName`, else
/// `--default-service-account` (both in the HelmRelease's namespace), else the reconciler
/// (`--reconciler-service-account`), else none (the controller's own identity).
///
/// With `spec.kubeConfig` the actions happen on that cluster, as the HelmRelease's own account
/// or the default one there (the reconciler is an account of this cluster).
fn acting_as(hr: &HelmRelease, ctx: &Ctx) -> Option<ServiceAccountRef> {
    let tenancy = &ctx.opts.runtime.tenancy;
    let ns = hr.namespace().unwrap_or_default();
    let spec = hr.spec.service_account_name.as_deref();
    if hr.spec.kube_config.is_some() {
        tenancy.acting_as_remote(&ns, spec)
    } else {
        tenancy.acting_as(&ns, spec)
    }
}

/// The applier every Helm action of `hr` acts with: on the cluster of its `spec.kubeConfig`,
/// if any, as [`acting_as`] says.
async fn applier_for(hr: &HelmRelease, ctx: &Ctx) -> Result<Applier, Failure> {
    let sa = acting_as(hr, ctx);
    if let Some(kube_config) = &hr.spec.kube_config {
        let account = sa.as_ref().map(|a| (a.namespace.as_str(), a.name.as_str()));
        let ns = hr.namespace().unwrap_or_default();
        return ctx
            .remote
            .applier(&ctx.client, &ns, kube_config, account, FIELD_MANAGER)
            .await
            .map_err(|e| match e {
                sluice_apply::RemoteError::Unsupported(m) => {
                    Failure::stalled(meta::UNSUPPORTED_FIELD_REASON, m)
                }
                sluice_apply::RemoteError::Invalid(m) => {
                    Failure::new(meta::RECONCILIATION_FAILED_REASON, m)
                }
            });
    }
    match sa {
        Some(sa) => ctx
            .applier
            .impersonate(&ctx.config, &sa.namespace, &sa.name)
            .map_err(|e| Failure::new("ImpersonationFailed", e.to_string())),
        None => Ok(ctx.applier.clone()),
    }
}

/// The release storage (Secrets in the storage namespace), read and written as `applier` acts.
fn storage_for(hr: &HelmRelease, applier: &Applier) -> Storage {
    Storage::new(applier.client().clone(), &hr.storage_namespace())
}

/// `install.createNamespace`: the release namespace, created as the release acts.
async fn create_namespace(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&ns))
        .await
        .map(drop)
        .map_err(|e| format!("failed to create namespace {name}: {e}"))
}

/// The time of an action, in the two forms records keep.
struct Now {
    rfc3339: String,
    unix: i64,
}

impl Now {
    fn new() -> Self {
        let t = jiff::Timestamp::now();
        Now {
            rfc3339: t.to_string(),
            unix: t.as_second(),
        }
    }
}

fn action_context<'a>(
    hr: &HelmRelease,
    applier: &'a Applier,
    storage: &'a Storage,
    now: &'a Now,
    disable_hooks: bool,
) -> Context<'a> {
    let common = hr.spec.common_metadata.clone().unwrap_or_default();
    Context {
        applier,
        storage,
        owner: Owner::helm_release(hr.name_any(), hr.namespace().unwrap_or_default()),
        common_labels: common.labels.unwrap_or_default(),
        common_annotations: common.annotations.unwrap_or_default(),
        max_history: hr.max_history(),
        now: &now.rfc3339,
        now_unix: now.unix,
        disable_hooks,
        hook_timeout: hr.timeout().unwrap_or(api::DEFAULT_TIMEOUT),
    }
}

/// The chart and values of an upgrade with `upgrade.preserveValues`, from the release Helm
/// upgrades from: the last deployed one, else the last.
async fn preserved(
    ctx: &Context<'_>,
    desired: &Desired<'_>,
    last: &Release,
) -> Result<(sluice_helm::chart::Chart, YMap), actions::ActionError> {
    use sluice_helm::release::Status;
    let history = ctx.storage.history(desired.name).await?;
    let current = history
        .iter()
        .filter(|r| r.status() == Status::Deployed)
        .max_by_key(|r| r.version)
        .unwrap_or(last);
    Ok(actions::preserve_values(
        current,
        desired.chart,
        desired.values,
    ))
}

/// Whether `snapshot` is of `release` (helm-controller's `Snapshot.Targets`).
fn targets(snapshot: &Snapshot, release: &Release) -> bool {
    snapshot.name == release.name
        && snapshot.namespace == release.namespace
        && snapshot.version == release.version
}

/// The test hooks of `release` the filters select, as helm-controller records them in the
/// snapshot (`TestHooksFromRelease`).
fn test_hooks(
    release: &Release,
    filters: &[(String, bool)],
) -> BTreeMap<String, api::TestHookStatus> {
    let selected = |name: &str| {
        let mut has_include = false;
        let mut included = false;
        for (f, exclude) in filters {
            if *exclude {
                if f == name {
                    return false;
                }
                continue;
            }
            has_include = true;
            included |= f == name;
        }
        !has_include || included
    };
    let time =
        |t: &Option<String>| -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
            serde_json::from_value(serde_json::Value::String(t.clone()?)).ok()
        };
    release
        .hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == "test") && selected(&h.name))
        .map(|h| {
            (
                h.name.clone(),
                api::TestHookStatus {
                    last_started: time(&h.last_run.started_at),
                    last_completed: time(&h.last_run.completed_at),
                    phase: Some(h.last_run.phase.clone()).filter(|p| !p.is_empty()),
                },
            )
        })
        .collect()
}

/// `spec.healthCheckExprs`, compiled (the wait judges objects of those kinds by them).
fn health_checks(hr: &HelmRelease) -> Result<Vec<CustomHealthCheck>, String> {
    hr.spec
        .health_check_exprs
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, h)| {
            CustomHealthCheck::new(
                &format!("spec.healthCheckExprs[{i}]"),
                &h.api_version,
                h.kind.as_deref().unwrap_or_default(),
                &h.current,
                h.in_progress.as_deref(),
                h.failed.as_deref(),
            )
        })
        .collect()
}

/// Checks that every `spec.dependsOn[].readyExpr` compiles.
fn ready_exprs(hr: &HelmRelease) -> Result<(), String> {
    for (i, d) in hr.spec.depends_on.iter().flatten().enumerate() {
        if let Some(Err(m)) = d
            .ready_expr
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(Expression::compile)
        {
            return Err(format!("spec.dependsOn[{i}].readyExpr: {m}"));
        }
    }
    Ok(())
}

/// The fields sluice does not implement yet, as Flux's paths: refused, never ignored.
pub fn unsupported(hr: &HelmRelease) -> Vec<&'static str> {
    let s = &hr.spec;
    let mut out = Vec::new();
    let mut refuse = |cond: bool, field: &'static str| {
        if cond {
            out.push(field);
        }
    };
    refuse(
        s.kube_config
            .as_ref()
            .is_some_and(|k| k.secret_ref.is_none() && k.config_map_ref.is_some()),
        "spec.kubeConfig.configMapRef (workload identity; use spec.kubeConfig.secretRef)",
    );
    refuse(
        matches!(
            s.post_render_strategy,
            Some(api::PostRenderStrategy::Unknown(_))
        ),
        "spec.postRenderStrategy: not one of nohooks, combined, separate",
    );
    refuse(
        s.wait_strategy
            .as_ref()
            .is_some_and(|w| matches!(w.name, api::WaitStrategyName::Unknown(_))),
        "spec.waitStrategy.name: not one of poller, legacy",
    );
    refuse(
        matches!(
            hr.uninstall().deletion_propagation,
            Some(api::DeletionPropagation::Unknown(_))
        ),
        "spec.uninstall.deletionPropagation: not one of background, foreground, orphan",
    );
    let install = hr.install();
    refuse(
        install.server_side_apply == Some(false),
        "spec.install.serverSideApply: false",
    );
    refuse(
        hr.upgrade().server_side_apply == Some(api::ServerSideApplyMode::Disabled),
        "spec.upgrade.serverSideApply: disabled",
    );
    refuse(
        hr.rollback().server_side_apply == Some(api::ServerSideApplyMode::Disabled),
        "spec.rollback.serverSideApply: disabled",
    );
    out
}

/// One run of one HelmRelease.
struct Run<'a> {
    hr: &'a HelmRelease,
    ctx: &'a Ctx,
    key: sluice_runtime::ObjectKey,
    fingerprint: String,
    /// The chart source's artifact, read once at the start of the run.
    source: Result<SourceArtifact, SourceError>,
    status: &'a mut HelmReleaseStatus,
    /// Whether an action ran.
    changed: bool,
    /// Events of the run beyond the outcome's (drift detected or corrected).
    events: Vec<sluice_runtime::Event>,
}

/// A loaded chart and where it came from.
struct Chart {
    chart: sluice_helm::chart::Chart,
    /// The OCI digest of an OCIRepository's chart (for the snapshots).
    oci_digest: String,
}

impl Run<'_> {
    async fn execute(&mut self) -> Ended {
        // A wait in progress resumes when nothing changed; anything new cancels it, the
        // revision failing with the reason (and the failure counters untouched).
        let waiting = self
            .ctx
            .waits
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&self.key));
        if let Some(w) = waiting {
            if w.fingerprint == self.fingerprint {
                return self.resume(w).await;
            }
            self.cancel(w).await;
        }
        if let Err(ended) = self.validate() {
            return ended;
        }
        if let Err(ended) = self.chart_template().await {
            return ended;
        }
        if let Err(ended) = self.depends_on().await {
            return ended;
        }
        if let Err(SourceError::Pending(f)) = &self.source {
            return Ended::WaitingForSource(f.clone());
        }
        let chart = match self.chart().await {
            Ok(c) => c,
            Err(f) => return Ended::Failed(f),
        };
        let values = match self.values().await {
            Ok(v) => v,
            Err(f) => return Ended::Failed(f),
        };
        self.release(&chart, &values).await
    }

    fn validate(&self) -> Result<(), Ended> {
        if self.hr.rollback().recreate.unwrap_or(false) {
            // As helm-controller: Helm v4 dropped it.
            tracing::warn!(
                helmrelease = %format!("{}/{}", self.key.0, self.key.1),
                "spec.rollback.recreate is deprecated and has no effect (Helm v4 removed it)"
            );
        }
        if let Err(m) = health_checks(self.hr).and(ready_exprs(self.hr)) {
            return Err(Ended::Failed(Failure::stalled(
                meta::INVALID_CEL_EXPRESSION_REASON,
                m,
            )));
        }
        if let Some(denied) = cross_namespace_source(self.hr, self.ctx) {
            return Err(Ended::Failed(denied));
        }
        let fields = unsupported(self.hr);
        if fields.is_empty() {
            return Ok(());
        }
        Err(Ended::Failed(Failure::stalled(
            meta::UNSUPPORTED_FIELD_REASON,
            format!("not supported by sluice yet: {}", fields.join(", ")),
        )))
    }

    /// `spec.chart`: the HelmChart it describes applied (server-side, helm-controller's field
    /// manager and owner labels; nothing written when unchanged) and named in
    /// `status.helmChart`; one made before under another name, or no longer wanted
    /// (`chartRef` now), deleted, as helm-controller's HelmChartTemplate.
    async fn chart_template(&mut self) -> Result<(), Ended> {
        let hr = self.hr;
        let wanted = helm_chart_from_template(hr).filter(|_| hr.spec.chart_ref.is_none());
        let wanted_ref = wanted
            .as_ref()
            .and_then(|_| chart_source(hr))
            .map(|(_, ns, name)| format!("{ns}/{name}"));
        if let Some(old) = self.status.helm_chart.clone()
            && Some(&old) != wanted_ref.as_ref()
        {
            if let Some((ns, name)) = old.split_once('/') {
                delete_helm_chart(self.ctx, ns, name)
                    .await
                    .map_err(|e| Ended::Failed(Failure::new(api::ARTIFACT_FAILED_REASON, e)))?;
            }
            self.status.helm_chart = None;
        }
        let Some(object) = wanted else {
            return Ok(());
        };
        let applier = Applier::new(self.ctx.client.clone()).with_field_manager(FIELD_MANAGER);
        let owner = Owner::helm_release(hr.name_any(), hr.namespace().unwrap_or_default());
        applier
            .apply(vec![object], &sluice_apply::ApplyOptions::new(owner))
            .await
            .map_err(|e| {
                Ended::Failed(Failure::new(
                    "HelmChartSyncErr",
                    format!("failed to run server-side apply: {e}"),
                ))
            })?;
        self.status.helm_chart = wanted_ref;
        // The first run made the HelmChart: its artifact is looked for again.
        if self.source.is_err() {
            self.source = source_artifact(hr, self.ctx).await;
        }
        Ok(())
    }

    async fn depends_on(&self) -> Result<(), Ended> {
        let own_ns = self.hr.namespace().unwrap_or_default();
        for dep in self.hr.spec.depends_on.iter().flatten() {
            let ns = dep.namespace_or(&own_ns);
            let api: Api<HelmRelease> = Api::namespaced(self.ctx.client.clone(), ns);
            let ready_expr = dep.ready_expr.as_deref().filter(|e| !e.trim().is_empty());
            let ready = match api.get_opt(&dep.name).await {
                // As helm-controller: the expression, with `self` and `dep` bound, replaces
                // the built-in check.
                Ok(Some(d)) if ready_expr.is_some() => {
                    let text = ready_expr.unwrap_or_default();
                    let me = serde_json::to_value(self.hr).unwrap_or_default();
                    let them = serde_json::to_value(&d).unwrap_or_default();
                    match Expression::compile(text)
                        .and_then(|e| e.eval_bool(&[("self", &me), ("dep", &them)]))
                    {
                        Ok(true) => true,
                        Ok(false) => {
                            return Err(Ended::Blocked(format!(
                                "dependency '{ns}/{}' is not ready according to readyExpr eval",
                                dep.name
                            )));
                        }
                        // As helm-controller: an evaluation error (a missing key) is a
                        // dependency not ready yet, named with the error.
                        Err(e) => {
                            return Err(Ended::Blocked(format!(
                                "dependency '{ns}/{}': readyExpr: {e}",
                                dep.name
                            )));
                        }
                    }
                }
                Ok(Some(d)) => d.is_ready() && d.observed_generation() == d.metadata.generation,
                Ok(None) => false,
                Err(e) => {
                    return Err(Ended::Failed(Failure::new(
                        api::DEPENDENCY_NOT_READY_REASON,
                        format!("unable to get '{ns}/{}' dependency: {e}", dep.name),
                    )));
                }
            };
            if !ready {
                return Err(Ended::Blocked(format!(
                    "dependency '{ns}/{}' is not ready",
                    dep.name
                )));
            }
        }
        Ok(())
    }

    /// The chart of the source's artifact: the one another reconcile holds if it loaded the
    /// same artifact (releases of one chart share its files, through their waits too).
    async fn chart(&self) -> Result<Arc<Chart>, Failure> {
        let SourceArtifact {
            artifact,
            digest_in_version,
            local,
        } = self.source.clone().map_err(SourceError::into_failure)?;
        let key = (!artifact.digest.is_empty()).then(|| {
            format!(
                "{}\n{}\n{}",
                artifact.url, artifact.revision, artifact.digest
            )
        });
        if let Some(shared) = key.as_deref().and_then(|k| self.ctx.charts.get(k)) {
            return Ok(shared);
        }
        let failed = |m: String| Failure::new(api::ARTIFACT_FAILED_REASON, m);
        let root = self.ctx.opts.storage_path.clone().filter(|_| local);
        let timeout = self.ctx.opts.http_timeout;
        let fetched = artifact.clone();
        let mut chart = tokio::task::spawn_blocking(move || {
            let bytes = sluice_render::artifact::fetch_bytes(root.as_deref(), &fetched, timeout)?;
            // Kept through waits and read at few moments: its files are held deflated.
            sluice_helm::chart::load_archive_packed(&bytes[..], &Default::default())
                .map_err(|e| format!("Could not load chart: {e}"))
        })
        .await
        .map_err(|e| failed(format!("loading the chart: {e}")))?
        .map_err(failed)?;
        // As helm-controller: a chart from an OCIRepository (or an ExternalArtifact whose
        // revision has a digest) carries that digest in its version.
        let mut oci_digest = String::new();
        if digest_in_version {
            let (version, digest) =
                sluice_helm::flux::oci_chart_version(&chart.metadata.version, &artifact.revision)
                    .map_err(|e| Failure::new("ChartMutateError", e))?;
            chart.metadata.version = version;
            oci_digest = digest;
        }
        let chart = Chart { chart, oci_digest };
        Ok(match key {
            Some(key) => self.ctx.charts.share(key, chart),
            None => Arc::new(chart),
        })
    }

    async fn values(&self) -> Result<YMap, Failure> {
        crate::build::values(Some(&self.ctx.client), self.hr)
            .await
            .map_err(|e| match e {
                crate::build::ValuesError::NotAMap => {
                    Failure::stalled("ValuesError", e.to_string())
                }
                crate::build::ValuesError::Compose(_) => Failure::new("ValuesError", e.to_string()),
            })
    }

    /// Decides and runs actions until the release is as wanted, an action fails, or a
    /// remediation ran (at most a few per run, as helm-controller's atomic release).
    async fn release(&mut self, chart: &Chart, values: &YMap) -> Ended {
        let hr = self.hr;
        let storage_ns = hr.storage_namespace();
        let applier = match applier_for(hr, self.ctx).await {
            Ok(a) => a,
            Err(f) => return Ended::Failed(f),
        };
        let storage = storage_for(hr, &applier);
        let name = release_name(hr);
        let namespace = hr.release_namespace();
        let md = chart.chart.metadata.clone();
        let config_digest = sluice_helm::flux::config_digest(values);
        // A stale TestSuccess goes as soon as tests are disabled, as helm-controller.
        if !hr.test_enabled() {
            meta::remove_condition(self.status.conditions_mut(), api::TEST_SUCCESS_CONDITION);
        }
        // A reset request (`flux reconcile hr --reset`) zeroes the failure counters once.
        if let Some(token) = hr
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(api::RESET_REQUEST_ANNOTATION))
            && self.status.last_handled_reset_at.as_deref() != Some(token.as_str())
        {
            self.status.clear_failures();
            self.status.last_handled_reset_at = Some(token.clone());
        }
        // A new generation, chart or values: the failure counters start over.
        if self.status.last_attempted_generation != hr.metadata.generation
            || self.status.last_attempted_revision.as_deref() != Some(md.version.as_str())
            || self.status.last_attempted_config_digest.as_deref() != Some(config_digest.as_str())
        {
            self.status.clear_failures();
        }
        self.status.last_attempted_generation = hr.metadata.generation;
        self.status.last_attempted_revision = Some(md.version.clone());
        // Set for OCIRepository sources only, as helm-controller.
        self.status.last_attempted_revision_digest = nonempty(chart.oci_digest.clone());
        self.status.last_attempted_config_digest = Some(config_digest);
        self.status.storage_namespace = Some(storage_ns.clone());
        let mut render = crate::build::render_options(hr, self.kube_version().await);
        if !hr.install().disable_schema_validation.unwrap_or(false)
            || !hr.upgrade().disable_schema_validation.unwrap_or(false)
        {
            render.schema_documents = crate::schemas::documents(&chart.chart).await;
        }
        let force = hr
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(api::FORCE_REQUEST_ANNOTATION))
            .filter(|v| self.status.last_handled_force_at.as_deref() != Some(v.as_str()))
            .cloned();
        let mut drift = Vec::new();
        let mut corrected = false;
        for _ in 0..8 {
            let last = match storage.last(&name).await {
                Ok(l) => l,
                Err(e) => return Ended::Failed(Failure::new("StorageError", e.to_string())),
            };
            let mut view = hr.clone();
            view.status = Some(self.status.clone());
            let facts = Facts {
                last: last.as_ref(),
                chart_name: &md.name,
                chart_version: &md.version,
                values,
            };
            let state = match state::determine(&view, facts) {
                Ok(s) => s,
                Err(e) => return Ended::Failed(Failure::new("StateError", e.to_string())),
            };
            // In sync as far as storage tells: compare the release with the cluster.
            let state = match (state, last.as_ref()) {
                (State::InSync, Some(current))
                    if hr.drift_detection_mode() != api::DriftDetectionMode::Disabled =>
                {
                    let now = Now::new();
                    let ctx = action_context(hr, &applier, &storage, &now, false);
                    match self.detect_drift(&ctx, current).await {
                        Err(ended) => return ended,
                        Ok(None) => State::InSync,
                        Ok(Some((message, set))) => {
                            if corrected {
                                // Corrected once in this run and drifted again at once:
                                // something else in the cluster writes these objects.
                                return Ended::Failed(Failure::new(
                                    api::DRIFT_DETECTED_REASON,
                                    format!(
                                        "{message}\nthe drift came back right after it was \
                                         corrected: another controller or tool (such as k3s's \
                                         packaged add-ons) writes these objects"
                                    ),
                                ));
                            }
                            drift = set;
                            State::Drifted(message)
                        }
                    }
                }
                (state, _) => state,
            };
            // A rollback target is checked against what storage holds (gone or rewritten:
            // helm-controller upgrades instead). Only the revisions that can be the target (the
            // previous snapshot, failed tests ignored or not) are read, not the whole history:
            // a failing kube-prometheus-stack would decode 8 MB of JSON per revision each run.
            let mut stored = Vec::new();
            if matches!(state, State::Failed(_)) {
                let mut versions: Vec<i64> = [true, false]
                    .into_iter()
                    .filter_map(|ignore_tests| self.status.previous(ignore_tests))
                    .map(|s| s.version)
                    .collect();
                versions.dedup();
                for version in versions {
                    if let Ok(Some(r)) = storage.get(&name, version).await {
                        stored.push(r);
                    }
                }
            }
            let target = |s: &Snapshot| -> RollbackTarget {
                let verified = stored
                    .iter()
                    .find(|r| r.version == s.version)
                    .is_some_and(|r| state::verify_snapshot(s, r).is_ok());
                if verified {
                    RollbackTarget::Verified
                } else {
                    RollbackTarget::Unverified
                }
            };
            let decide = Decide {
                force_requested: force.is_some(),
                rollback_target: &target,
            };
            let action = match state::next_action(&view, self.status, &state, &decide) {
                Ok(a) => a,
                Err(e) => {
                    let conditions = self.status.conditions.as_deref().unwrap_or_default();
                    let failed_test = meta::find_condition(conditions, api::TEST_SUCCESS_CONDITION)
                        .filter(|c| c.status == "False" && outcome::tests_count(hr));
                    let reason = failed_test
                        .or_else(|| meta::find_condition(conditions, api::RELEASED_CONDITION))
                        .map_or_else(|| "RetriesExceeded".to_owned(), |c| c.reason.clone());
                    let f = Failure::new(reason, e.to_string());
                    return Ended::Failed(if e.is_terminal() {
                        Failure { stalled: true, ..f }
                    } else {
                        f
                    });
                }
            };
            if force.is_some() && matches!(action, Action::Install | Action::Upgrade) {
                self.status.last_handled_force_at = force.clone();
            }
            let now = Now::new();
            // The `disableHooks` of the action about to run.
            let disable_hooks = match &action {
                Action::Install => hr.install().disable_hooks,
                Action::Upgrade => hr.upgrade().disable_hooks,
                Action::RollbackTo(_) => hr.rollback().disable_hooks,
                Action::UninstallRemediation => hr.uninstall().disable_hooks,
                _ => None,
            };
            let ctx = action_context(hr, &applier, &storage, &now, disable_hooks.unwrap_or(false));
            // Schema validation as the action about to run says (`upgrade.disableSchemaValidation`
            // for an upgrade, `install`'s otherwise).
            let mut action_render = render.clone();
            if matches!(action, Action::Upgrade) {
                action_render.skip_schema_validation =
                    hr.upgrade().disable_schema_validation.unwrap_or(false);
            }
            let desired = Desired {
                name: &name,
                namespace: &namespace,
                chart: &chart.chart,
                values,
                render: &action_render,
                crds: crds_policy(hr, matches!(action, Action::Upgrade) && last.is_some()),
                take_ownership: if matches!(action, Action::Upgrade) {
                    !hr.upgrade().disable_take_ownership.unwrap_or(false)
                } else {
                    !hr.install().disable_take_ownership.unwrap_or(false)
                },
                replace: hr.install().replace.unwrap_or(false),
                cleanup_on_fail: hr.upgrade().cleanup_on_fail.unwrap_or(false),
            };
            match action {
                Action::Nothing => return Ended::Released { changed: false },
                Action::Unlock => {
                    let Some(last) = last else { continue };
                    if let Err(e) = actions::unlock(&ctx, last).await {
                        return Ended::Failed(Failure::new("PendingRelease", e.to_string()));
                    }
                    self.changed = true;
                }
                Action::Install | Action::Upgrade => {
                    if force.is_none()
                        && let Some(stalled) = self.recurring_environment()
                    {
                        return stalled;
                    }
                    let install = matches!(action, Action::Install) || last.is_none();
                    return self
                        .install_or_upgrade(&ctx, &desired, last.as_ref(), install, chart)
                        .await;
                }
                Action::RollbackTo(snapshot) => {
                    return self.rollback(&ctx, &storage, &snapshot, last, chart).await;
                }
                Action::UninstallRemediation => {
                    let Some(last) = last else { continue };
                    return self.uninstall_remediation(&ctx, &last).await;
                }
                Action::CorrectDrift => {
                    if let Err(ended) = self.correct_drift(&ctx, &drift).await {
                        return ended;
                    }
                    corrected = true;
                }
                Action::Test => {
                    if let Err(ended) = self.test(&ctx, &name).await {
                        return ended;
                    }
                }
            }
        }
        Ended::Failed(Failure::new(
            "ReconciliationFailed",
            "the release did not settle after 8 actions in one run",
        ))
    }

    /// Runs the release's tests (`spec.test`), as helm-controller's Test: `TestSuccess` and an
    /// event tell how they went; a failure counts against the active remediation (unless test
    /// failures are ignored) and the loop goes on to remediate it.
    async fn test(&mut self, ctx: &Context<'_>, name: &str) -> Result<(), Ended> {
        let hr = self.hr;
        let Some(cur) = self.status.latest().cloned() else {
            return Err(Ended::Failed(Failure::new(
                api::TEST_FAILED_REASON,
                "no latest release in the status history: required for test",
            )));
        };
        let mut release = match ctx.storage.last(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(Ended::Failed(Failure::new(
                    api::TEST_FAILED_REASON,
                    format!("release: not found: {name}"),
                )));
            }
            Err(e) => return Err(Ended::Failed(Failure::new("StorageError", e.to_string()))),
        };
        let test = hr.test();
        let filters: Vec<(String, bool)> = test
            .filters
            .iter()
            .flatten()
            .map(|f| (f.name.clone(), f.exclude.unwrap_or(false)))
            .collect();
        let timeout = hr
            .action_timeout(test.timeout.as_deref())
            .unwrap_or(api::DEFAULT_TIMEOUT);
        self.changed = true;
        let mut outcome = actions::test(ctx, &mut release, &filters, timeout).await;
        if outcome.is_ok() && !targets(&cur, &release) {
            outcome = Err(format!(
                "tested release {}/{}.v{} != current release {}",
                release.namespace,
                release.name,
                release.version,
                cur.full_release_name()
            ));
        }
        // The tested release's snapshot, with its test hooks (those the filters select).
        if targets(&cur, &release)
            && let Ok(mut tested) = state::snapshot_of(
                &release,
                cur.action.as_deref().unwrap_or_default(),
                cur.oci_digest.as_deref().unwrap_or_default(),
            )
        {
            tested.test_hooks = Some(test_hooks(&release, &filters));
            if let Some(h) = self.status.history.as_mut().and_then(|h| h.first_mut()) {
                *h = tested;
            }
        }
        let latest = self.status.latest().cloned().unwrap_or(cur);
        match outcome {
            Ok(()) => {
                let hooks = latest.test_hooks.as_ref().map_or(0, BTreeMap::len);
                let what = match hooks {
                    0 => "no test hooks".to_owned(),
                    1 => "1 test hook completed successfully".to_owned(),
                    n => format!("{n} test hooks completed successfully"),
                };
                let message = format!(
                    "Helm test succeeded for release {} with chart {}: {what}",
                    latest.full_release_name(),
                    latest.versioned_chart_name()
                );
                // (Its event is the run's: the Ready condition then tells this success.)
                self.set(
                    api::TEST_SUCCESS_CONDITION,
                    "True",
                    api::TEST_SUCCEEDED_REASON,
                    &message,
                );
                Ok(())
            }
            Err(e) => {
                let message = format!(
                    "Helm test failed for release {} with chart {}: {}",
                    latest.full_release_name(),
                    latest.versioned_chart_name(),
                    e.trim()
                );
                self.status.failures = Some(self.status.failures.unwrap_or(0) + 1);
                self.set(
                    api::TEST_SUCCESS_CONDITION,
                    "False",
                    api::TEST_FAILED_REASON,
                    &message,
                );
                self.events.push(sluice_runtime::Event::warning(
                    api::TEST_FAILED_REASON,
                    message.clone(),
                ));
                if !latest.has_been_tested() {
                    return Err(Ended::Failed(Failure::new(
                        api::TEST_FAILED_REASON,
                        message,
                    )));
                }
                let mut view = hr.clone();
                view.status = Some(self.status.clone());
                if let Some(r) = view.active_remediation()
                    && !r.ignore_test_failures
                {
                    r.increment_failure_count(self.status);
                }
                Ok(())
            }
        }
    }

    /// Drift detection: `None` when the cluster matches the release, else the `Drifted`
    /// message and what differs (a Warning event `DriftDetected` is recorded).
    async fn detect_drift(
        &mut self,
        ctx: &Context<'_>,
        current: &Release,
    ) -> Result<Option<(String, Vec<drift::Diff>)>, Ended> {
        let hr = self.hr;
        let mut rules = Vec::new();
        for (i, r) in hr
            .spec
            .drift_detection
            .as_ref()
            .and_then(|d| d.ignore.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("spec.driftDetection.ignore[{i}]");
            match sluice_apply::IgnoreRule::at(&at, &r.paths, r.target.as_ref()) {
                Ok(rule) => rules.push(rule),
                Err(e) => {
                    return Err(Ended::Failed(Failure::stalled("InvalidIgnoreRule", e)));
                }
            }
        }
        let objects = match actions::applied_objects(ctx, current).await {
            Ok(o) => o,
            Err(e) => {
                return Err(Ended::Failed(Failure::new(
                    api::DRIFT_DETECTED_REASON,
                    format!("unable to determine cluster state: {e}"),
                )));
            }
        };
        let (set, errors) = drift::detect(ctx.applier, objects, &rules).await;
        if !drift::has_changes(&set) {
            if errors.is_empty() {
                return Ok(None);
            }
            return Err(Ended::Failed(Failure::new(
                api::DRIFT_DETECTED_REASON,
                format!("unable to determine cluster state: {}", errors.join("; ")),
            )));
        }
        for e in &errors {
            tracing::warn!(helmrelease = %hr.name_any(), "diff of release against cluster state: {e}");
        }
        let full_name = self
            .status
            .latest()
            .map_or_else(|| current.name.clone(), |s| s.full_release_name());
        let message = format!(
            "Cluster state of release {full_name} has drifted from the desired state:\n{}",
            drift::summarize(&set)
        );
        tracing::info!(
            helmrelease = %hr.name_any(),
            "detected changes in cluster state ({})",
            drift::summarize_brief(&set)
        );
        self.events.push(sluice_runtime::Event::warning(
            api::DRIFT_DETECTED_REASON,
            message.clone(),
        ));
        Ok(Some((message, set)))
    }

    /// Corrects drift (`driftDetection.mode: enabled`): an event tells what was corrected or
    /// why it could not be.
    async fn correct_drift(&mut self, ctx: &Context<'_>, set: &[drift::Diff]) -> Result<(), Ended> {
        let done = drift::correct(ctx.applier, set).await;
        let full_name = self
            .status
            .latest()
            .map_or_else(String::new, |s| s.full_release_name());
        if done.errors.is_empty() {
            if !done.entries.is_empty() {
                self.changed = true;
                self.events.push(sluice_runtime::Event::normal(
                    "DriftCorrected",
                    format!(
                        "Cluster state of release {full_name} has been corrected:\n{}",
                        done.entries.join("\n")
                    ),
                ));
            }
            return Ok(());
        }
        let mut message = format!(
            "Failed to {}correct cluster state of release {full_name}:\n{}",
            if done.entries.is_empty() {
                ""
            } else {
                "partially "
            },
            done.errors.join("\n")
        );
        if !done.entries.is_empty() {
            message.push_str("\n\nSuccessful corrections:\n");
            message.push_str(&done.entries.join("\n"));
        }
        self.events.push(sluice_runtime::Event::warning(
            "DriftCorrectionFailed",
            message.clone(),
        ));
        Err(Ended::Failed(Failure::new(
            "DriftCorrectionFailed",
            message,
        )))
    }

    async fn kube_version(&self) -> Option<String> {
        self.ctx
            .client
            .apiserver_version()
            .await
            .ok()
            .map(|v| v.git_version)
    }

    /// The action context of this HelmRelease for the revision a wait is about (its action's
    /// `disableHooks`).
    fn with_action_context<'b>(
        &self,
        applier: &'b Applier,
        storage: &'b Storage,
        now: &'b Now,
        step: &Step,
    ) -> Context<'b> {
        let hr = self.hr;
        let disable_hooks = match step {
            Step::Install => hr.install().disable_hooks,
            Step::Upgrade => hr.upgrade().disable_hooks,
            Step::Rollback(_) => hr.rollback().disable_hooks,
        };
        action_context(hr, applier, storage, now, disable_hooks.unwrap_or(false))
    }

    async fn resume(&mut self, w: Waiting) -> Ended {
        let applier = match applier_for(self.hr, self.ctx).await {
            Ok(a) => a,
            Err(f) => return Ended::Failed(f),
        };
        let storage = storage_for(self.hr, &applier);
        let now = Now::new();
        let ctx = self.with_action_context(&applier, &storage, &now, &w.step);
        self.look(&ctx, w).await
    }

    /// Ends a wait that something new made moot: its revision is recorded failed, as Flux's
    /// canceled health checks leave it.
    async fn cancel(&mut self, w: Waiting) {
        let Ok(applier) = applier_for(self.hr, self.ctx).await else {
            return;
        };
        let storage = storage_for(self.hr, &applier);
        let now = Now::new();
        let ctx = self.with_action_context(&applier, &storage, &now, &w.step);
        let reason = "the wait was canceled: the HelmRelease, its chart or a reconcile request \
                      changed while it ran";
        if let Err(e) = actions::complete(&ctx, w.release, Err(reason.into())).await {
            tracing::warn!(helmrelease = %self.hr.name_any(), "canceling a wait: {e}");
        }
    }

    async fn install_or_upgrade(
        &mut self,
        ctx: &Context<'_>,
        desired: &Desired<'_>,
        last: Option<&Release>,
        install: bool,
        chart: &Chart,
    ) -> Ended {
        let hr = self.hr;
        let (action, step) = if install {
            (ReleaseAction::Install, Step::Install)
        } else {
            (ReleaseAction::Upgrade, Step::Upgrade)
        };
        self.status.last_attempted_release_action = Some(action);
        self.changed = true;
        let about = About {
            name: desired.name.to_owned(),
            namespace: desired.namespace.to_owned(),
            chart: format!(
                "{}@{}",
                chart.chart.metadata.name, chart.chart.metadata.version
            ),
            oci_digest: chart.oci_digest.clone(),
        };
        let started = Instant::now();
        if install
            && hr.install().create_namespace.unwrap_or(false)
            && let Err(e) = create_namespace(ctx.applier.client(), desired.namespace).await
        {
            return self.action_failed(install, &about, e);
        }
        let pending = match (install, last) {
            (true, _) => actions::install(ctx, desired).await,
            (false, Some(current)) if hr.upgrade().preserve_values.unwrap_or(false) => {
                match preserved(ctx, desired, current).await {
                    Ok((chart, values)) => {
                        let desired = Desired {
                            chart: &chart,
                            values: &values,
                            ..*desired
                        };
                        actions::upgrade(ctx, &desired, current).await
                    }
                    Err(e) => Err(e),
                }
            }
            (false, Some(current)) => actions::upgrade(ctx, desired, current).await,
            (false, None) => unreachable_upgrade(),
        };
        let pending = match pending {
            Ok(p) => p,
            Err(e) => return self.action_failed(install, &about, e.to_string()),
        };
        let (wait_disabled, timeout) = if install {
            let i = hr.install();
            (
                i.disable_wait.unwrap_or(false),
                hr.action_timeout(i.timeout.as_deref()),
            )
        } else {
            let u = hr.upgrade();
            (
                u.disable_wait.unwrap_or(false),
                hr.action_timeout(u.timeout.as_deref()),
            )
        };
        self.await_ready(ctx, step, about, pending, started, wait_disabled, timeout)
            .await
    }

    /// Starts waiting for an applied revision (or completes it at once without a wait).
    #[allow(clippy::too_many_arguments)]
    async fn await_ready(
        &mut self,
        ctx: &Context<'_>,
        step: Step,
        about: About,
        pending: actions::Pending,
        started: Instant,
        wait_disabled: bool,
        timeout: Result<Duration, meta::DurationError>,
    ) -> Ended {
        self.status.inventory = Some(pending.applied.inventory());
        self.observe_superseded(&pending.superseded);
        // Helm's upgrade deletes what it created when its wait or post-upgrade hooks fail too;
        // its rollback only when the apply fails.
        let cleanup = if matches!(step, Step::Upgrade)
            && self.hr.upgrade().cleanup_on_fail.unwrap_or(false)
        {
            pending.created()
        } else {
            Vec::new()
        };
        let waiting = Waiting {
            fingerprint: self.fingerprint.clone(),
            step,
            about,
            release: pending.release,
            objects: pending.applied.applied(),
            cleanup,
            started,
            wait_started: Instant::now(),
            deadline: Instant::now() + timeout.unwrap_or(api::DEFAULT_TIMEOUT),
        };
        if wait_disabled {
            return self.finish(ctx, waiting, Ok(())).await;
        }
        self.look(ctx, waiting).await
    }

    /// Looks once at the objects of a revision being waited for: ready completes it, failed or
    /// out of time fails it, anything else leaves it waiting (the worker is released; the next
    /// run looks again).
    async fn look(&mut self, ctx: &Context<'_>, waiting: Waiting) -> Ended {
        let poll = self.ctx.opts.health_poll;
        let last = Instant::now() + poll >= waiting.deadline;
        let acting_as = acting_as(self.hr, self.ctx).map(|sa| sa.to_string());
        let checks = health_checks(self.hr).unwrap_or_default();
        let verdict = health::check(
            ctx.applier,
            acting_as.as_deref(),
            &waiting.objects,
            &checks,
            waiting.wait_started.elapsed(),
            last,
            wait_rules(self.hr, &waiting.step),
        )
        .await;
        match verdict {
            Health::Ready => self.finish(ctx, waiting, Ok(())).await,
            Health::Failed(message) => self.finish(ctx, waiting, Err(message)).await,
            Health::Pending {
                waiting: still,
                summary,
            } => {
                let message = format!(
                    "waiting for {} object{} to become ready: {summary}",
                    still.len(),
                    if still.len() == 1 { "" } else { "s" }
                );
                if let Ok(mut waits) = self.ctx.waits.lock() {
                    waits.insert(self.key.clone(), waiting);
                }
                Ended::Progressing(message)
            }
        }
    }

    /// Completes a revision after its wait and records how the action ended.
    async fn finish(
        &mut self,
        ctx: &Context<'_>,
        w: Waiting,
        outcome: Result<(), String>,
    ) -> Ended {
        // The action completes in this run (its wait may have begun in an earlier one): its
        // success or failure is told now, as helm-controller tells it after its wait.
        self.changed = true;
        let completed = actions::complete(ctx, w.release, outcome).await;
        self.status.last_attempted_release_action_duration = Some(meta::format_duration(
            Duration::from_millis(w.started.elapsed().as_millis() as u64),
        ));
        let release = match completed {
            Ok(c) => {
                self.observe_superseded(&c.superseded);
                c.release
            }
            Err(e) => {
                return match w.step {
                    Step::Rollback(s) => self.rollback_failed(&s, e.to_string()),
                    step => {
                        self.action_failed(matches!(step, Step::Install), &w.about, e.to_string())
                    }
                };
            }
        };
        let deployed = release.status() == sluice_helm::release::Status::Deployed;
        let mut description = release
            .info
            .as_ref()
            .map(|i| i.description.clone())
            .unwrap_or_default();
        if !deployed && let Err(e) = actions::cleanup(ctx, &w.cleanup).await {
            description = actions::cleanup_failure("upgrade", &description, &e);
        }
        match w.step {
            Step::Rollback(snapshot) => {
                self.record(&release, "rollback", &w.about.oci_digest);
                if !deployed {
                    return self.rollback_failed(&snapshot, description);
                }
                let message = format!(
                    "Helm rollback to previous release {} with chart {} succeeded",
                    snapshot.full_release_name(),
                    snapshot.versioned_chart_name()
                );
                self.set(
                    api::REMEDIATED_CONDITION,
                    "True",
                    api::ROLLBACK_SUCCEEDED_REASON,
                    &message,
                );
                Ended::Remediated
            }
            step => {
                let install = matches!(step, Step::Install);
                let action = if install { "install" } else { "upgrade" };
                self.record(&release, action, &w.about.oci_digest);
                if !deployed {
                    return self.action_failed(install, &w.about, description);
                }
                let (reason, verb) = if install {
                    (api::INSTALL_SUCCEEDED_REASON, "install")
                } else {
                    (api::UPGRADE_SUCCEEDED_REASON, "upgrade")
                };
                let message = self.status.latest().map_or_else(String::new, |s| {
                    format!(
                        "Helm {verb} succeeded for release {} with chart {}",
                        s.full_release_name(),
                        s.versioned_chart_name()
                    )
                });
                self.set(api::RELEASED_CONDITION, "True", reason, &message);
                meta::remove_condition(self.status.conditions_mut(), api::REMEDIATED_CONDITION);
                self.status.clear_failures();
                if let Ok(mut env) = self.ctx.environment.lock() {
                    env.remove(&self.key);
                }
                let hr = self.hr;
                self.status.observed_post_renderers_digest = nonempty(
                    crate::digests::post_renderers(hr.spec.post_renderers.as_deref()),
                );
                self.status.observed_common_metadata_digest = nonempty(
                    crate::digests::common_metadata(hr.spec.common_metadata.as_ref()),
                );
                // With tests enabled the release is tested next, at once (the next run), as
                // helm-controller does within the same reconcile.
                if hr.test_enabled()
                    && let Some(cur) = self.status.latest().cloned()
                    && !cur.has_been_tested()
                {
                    let awaiting = format!(
                        "Helm release {} with chart {} is awaiting tests",
                        cur.full_release_name(),
                        cur.versioned_chart_name()
                    );
                    self.set(
                        api::TEST_SUCCESS_CONDITION,
                        "Unknown",
                        "AwaitingTests",
                        &awaiting,
                    );
                    self.events.push(sluice_runtime::Event::normal(
                        outcome::static_reason(reason),
                        message,
                    ));
                    return Ended::Progressing(awaiting);
                }
                // As helm-controller's next step after a release: compare it with the cluster
                // (a drift found is corrected by the next run).
                if hr.drift_detection_mode() != api::DriftDetectionMode::Disabled {
                    match self.detect_drift(ctx, &release).await {
                        Ok(None) => self.set(
                            api::DRIFTED_CONDITION,
                            "False",
                            api::NO_DRIFT_DETECTED_REASON,
                            "No drift detected against the cluster state",
                        ),
                        Ok(Some((message, _))) => self.set(
                            api::DRIFTED_CONDITION,
                            "True",
                            api::DRIFT_DETECTED_REASON,
                            &message,
                        ),
                        Err(ended) => return ended,
                    }
                }
                Ended::Released { changed: true }
            }
        }
    }

    fn action_failed(&mut self, install: bool, about: &About, error: String) -> Ended {
        let (reason, verb) = if install {
            (api::INSTALL_FAILED_REASON, "install")
        } else {
            (api::UPGRADE_FAILED_REASON, "upgrade")
        };
        let message = format!(
            "Helm {verb} failed for release {}/{} with chart {}: {}",
            about.namespace,
            about.name,
            about.chart,
            error.trim()
        );
        self.set(api::RELEASED_CONDITION, "False", reason, &message);
        self.note_environment(&message);
        let counter = if install {
            &mut self.status.install_failures
        } else {
            &mut self.status.upgrade_failures
        };
        *counter = Some(counter.unwrap_or(0) + 1);
        self.status.failures = Some(self.status.failures.unwrap_or(0) + 1);
        Ended::Failed(Failure::new(reason, message))
    }

    /// Remembers the environmental cause of a failed action (and how often in a row it failed
    /// the release with nothing changed in between).
    fn note_environment(&self, message: &str) {
        let Ok(mut env) = self.ctx.environment.lock() else {
            return;
        };
        let Some(cause) = crate::environment::cause(message) else {
            env.remove(&self.key);
            return;
        };
        let failures = match env.get(&self.key) {
            Some(r) if r.cause == cause && r.fingerprint == self.fingerprint => r.failures + 1,
            _ => 1,
        };
        env.insert(
            self.key.clone(),
            Recurring {
                cause,
                failures,
                fingerprint: self.fingerprint.clone(),
            },
        );
    }

    /// Stalled instead of another install or upgrade, when the same environmental cause failed
    /// the last two and nothing changed since (a new spec, chart or reconcile request tries
    /// again).
    fn recurring_environment(&self) -> Option<Ended> {
        let env = self.ctx.environment.lock().ok()?;
        let r = env.get(&self.key)?;
        if r.failures < 2 || r.fingerprint != self.fingerprint {
            return None;
        }
        let released = meta::find_condition(
            self.status.conditions.as_deref().unwrap_or_default(),
            api::RELEASED_CONDITION,
        );
        let reason = released.map_or_else(
            || api::UPGRADE_FAILED_REASON.to_owned(),
            |c| c.reason.clone(),
        );
        Some(Ended::Failed(Failure::stalled(
            reason,
            format!(
                "stopped retrying: {} failed the release {} times in a row, remediation in \
                 between; that is the cluster, not the release ({}); sluice tries again when \
                 the HelmRelease or its chart changes, or on `sluice reconcile helmrelease {} -n {}`",
                r.cause.summary,
                r.failures,
                r.cause.hint,
                self.hr.name_any(),
                self.hr.namespace().unwrap_or_default()
            ),
        )))
    }

    fn rollback_failed(&mut self, snapshot: &Snapshot, error: String) -> Ended {
        let message = format!(
            "Helm rollback to previous release {} with chart {} failed: {error}",
            snapshot.full_release_name(),
            snapshot.versioned_chart_name()
        );
        self.set(
            api::REMEDIATED_CONDITION,
            "False",
            api::ROLLBACK_FAILED_REASON,
            &message,
        );
        Ended::Failed(Failure::new(api::ROLLBACK_FAILED_REASON, message))
    }

    async fn rollback(
        &mut self,
        ctx: &Context<'_>,
        storage: &Storage,
        snapshot: &Snapshot,
        last: Option<Release>,
        chart: &Chart,
    ) -> Ended {
        self.changed = true;
        let target = match storage.get(&snapshot.name, snapshot.version).await {
            Ok(Some(t)) if state::verify_snapshot(snapshot, &t).is_ok() => t,
            Ok(_) => {
                return self.rollback_failed(
                    snapshot,
                    "the target release is not in storage as recorded".into(),
                );
            }
            Err(e) => return Ended::Failed(Failure::new("StorageError", e.to_string())),
        };
        let Some(current) = last else {
            return self
                .rollback_failed(snapshot, "no release in storage to roll back from".into());
        };
        let started = Instant::now();
        let cleanup = self.hr.rollback().cleanup_on_fail.unwrap_or(false);
        let pending = match actions::rollback(ctx, &target, &current, cleanup).await {
            Ok(p) => p,
            Err(e) => return self.rollback_failed(snapshot, e.to_string()),
        };
        let about = About {
            name: current.name.clone(),
            namespace: current.namespace.clone(),
            chart: snapshot.versioned_chart_name(),
            oci_digest: chart.oci_digest.clone(),
        };
        let rollback = self.hr.rollback();
        let (disabled, timeout) = (
            rollback.disable_wait.unwrap_or(false),
            self.hr.action_timeout(rollback.timeout.as_deref()),
        );
        self.await_ready(
            ctx,
            Step::Rollback(Box::new(snapshot.clone())),
            about,
            pending,
            started,
            disabled,
            timeout,
        )
        .await
    }

    async fn uninstall_remediation(&mut self, ctx: &Context<'_>, last: &Release) -> Ended {
        self.changed = true;
        let described = format!(
            "{}/{}.v{} with chart {}",
            last.namespace,
            last.name,
            last.version,
            last.chart
                .as_ref()
                .and_then(|c| c.metadata.as_ref())
                .map(|m| format!("{}@{}", m.name, m.version))
                .unwrap_or_default()
        );
        match actions::uninstall(ctx, last, &uninstall_options(self.hr)).await {
            Ok(_) => {
                let message =
                    format!("Helm uninstall remediation for release {described} succeeded");
                self.set(
                    api::REMEDIATED_CONDITION,
                    "True",
                    api::UNINSTALL_SUCCEEDED_REASON,
                    &message,
                );
                self.status.history = None;
                self.status.inventory = None;
                Ended::Remediated
            }
            Err(e) => {
                let message =
                    format!("Helm uninstall remediation for release {described} failed: {e}");
                self.set(
                    api::REMEDIATED_CONDITION,
                    "False",
                    api::UNINSTALL_FAILED_REASON,
                    &message,
                );
                Ended::Failed(Failure::new(api::UNINSTALL_FAILED_REASON, message))
            }
        }
    }

    /// Updates the history's snapshots of the revisions this action superseded, as
    /// helm-controller's storage observer does for the records Helm rewrites: their status and
    /// digest follow the record (their action, OCI digest and test hooks stay), so a rollback
    /// target is still verified against storage. Only the records written are observed: no
    /// record is read again.
    fn observe_superseded(&mut self, superseded: &[Release]) {
        for r in superseded {
            for s in self.status.history.iter_mut().flatten() {
                if s.version != r.version || s.name != r.name {
                    continue;
                }
                if let Ok(mut fresh) = state::snapshot_of(
                    r,
                    s.action.as_deref().unwrap_or_default(),
                    s.oci_digest.as_deref().unwrap_or_default(),
                ) {
                    fresh.test_hooks = s.test_hooks.take();
                    *s = fresh;
                }
            }
        }
    }

    /// Adds (or replaces) the snapshot of `release` at the head of the history.
    fn record(&mut self, release: &Release, action: &str, oci_digest: &str) {
        let Ok(snapshot) = state::snapshot_of(release, action, oci_digest) else {
            return;
        };
        let history = self.status.history.get_or_insert_with(Vec::new);
        history.retain(|s| s.version != snapshot.version || s.name != snapshot.name);
        history.insert(0, snapshot);
        history.sort_by_key(|s| std::cmp::Reverse(s.version));
        let max = usize::try_from(self.hr.max_history()).unwrap_or(0);
        if max > 0 {
            history.truncate(max);
        }
        self.status.last_release_revision = Some(release.version);
    }

    fn set(&mut self, type_: &str, value: &str, reason: &str, message: &str) {
        let generation = self.hr.metadata.generation;
        meta::set_condition(
            self.status.conditions_mut(),
            meta::new_condition(type_, value, reason, message, generation),
        );
    }
}

/// The `crds/` policy of an install (`Create` unless `Skip` or the deprecated `skipCRDs`) or
/// an upgrade (`Skip` unless set), as Flux.
fn crds_policy(hr: &HelmRelease, upgrade: bool) -> actions::CrdsPolicy {
    use actions::CrdsPolicy as P;
    let (set, default) = if upgrade {
        (hr.upgrade().crds.clone(), P::Skip)
    } else if hr.install().skip_crds.unwrap_or(false) {
        (None, P::Skip)
    } else {
        (hr.install().crds.clone(), P::Create)
    };
    match set {
        Some(api::CrdsPolicy::Skip) => P::Skip,
        Some(api::CrdsPolicy::Create) => P::Create,
        Some(api::CrdsPolicy::CreateReplace) => P::CreateReplace,
        _ => default,
    }
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn unreachable_upgrade() -> Result<actions::Pending, actions::ActionError> {
    Err(actions::ActionError::NotFound(
        "no release in storage to upgrade".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_events_carry_helm_controllers_metadata() {
        let cur: api::Snapshot = serde_json::from_value(serde_json::json!({
            "digest": "sha256:5eed", "name": "podinfo", "namespace": "apps", "version": 1,
            "status": "deployed",
            "chartName": "podinfo", "chartVersion": "6.7.1+0123456789ab", "appVersion": "6.7.1",
            "configDigest": "sha256:c0ffee", "ociDigest": "sha256:0123456789abcdef",
            "firstDeployed": "2026-12-03T10:00:00Z", "lastDeployed": "2026-12-03T10:00:00Z",
        }))
        .unwrap();
        let tagged = |event: sluice_runtime::Event| {
            let mut event = event;
            release_event_metadata(&mut event, &cur);
            event.metadata
        };
        let installed = tagged(sluice_runtime::Event::normal(
            api::INSTALL_SUCCEEDED_REASON,
            "Helm install succeeded",
        ));
        assert_eq!(
            installed.into_iter().collect::<Vec<_>>(),
            [
                ("appVersion", "6.7.1".to_string()),
                ("ociDigest", "sha256:0123456789abcdef".to_string()),
                ("token", "sha256:c0ffee".to_string()),
            ]
        );
        let failed = tagged(sluice_runtime::Event::warning(
            api::UPGRADE_FAILED_REASON,
            "Helm upgrade failed",
        ));
        assert_eq!(
            failed.into_iter().collect::<Vec<_>>(),
            [("token", "sha256:c0ffee".to_string())]
        );
        let other = tagged(sluice_runtime::Event::warning(
            api::ARTIFACT_FAILED_REASON,
            "Could not load chart",
        ));
        assert!(other.is_empty());
    }

    #[test]
    fn unimplemented_fields_are_named() {
        let hr: HelmRelease = serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {
                "interval": "5m",
                "chartRef": {"kind": "OCIRepository", "name": "c"},
                "driftDetection": {"mode": "warn"},
                "waitStrategy": {"name": "legacy"},
                "upgrade": {"force": true, "cleanupOnFail": true, "preserveValues": true,
                            "disableTakeOwnership": true, "serverSideApply": "disabled"},
                "rollback": {"force": true, "recreate": true, "cleanupOnFail": true},
                "install": {"crds": "CreateReplace", "createNamespace": true, "replace": true,
                            "disableTakeOwnership": true},
                "uninstall": {"deletionPropagation": "orphan"},
                "postRenderStrategy": "separate",
                "kubeConfig": {"secretRef": {"name": "remote"}},
            },
        }))
        .unwrap();
        assert_eq!(unsupported(&hr), ["spec.upgrade.serverSideApply: disabled"]);
        let mut identity = hr.clone();
        identity.spec.upgrade = None;
        identity.spec.kube_config = Some(
            serde_json::from_value(serde_json::json!({"configMapRef": {"name": "aws"}})).unwrap(),
        );
        assert_eq!(
            unsupported(&identity),
            ["spec.kubeConfig.configMapRef (workload identity; use spec.kubeConfig.secretRef)"]
        );
        let mut unknown = hr.clone();
        unknown.spec.kube_config = None;
        unknown.spec.upgrade = None;
        let strange = serde_json::json!({"name": "other"});
        unknown.spec.wait_strategy = Some(serde_json::from_value(strange).unwrap());
        unknown.spec.post_render_strategy = Some(serde_json::from_value("both".into()).unwrap());
        assert_eq!(
            unsupported(&unknown),
            [
                "spec.postRenderStrategy: not one of nohooks, combined, separate",
                "spec.waitStrategy.name: not one of poller, legacy",
            ]
        );
        let mut plain = hr.clone();
        plain.spec.kube_config = None;
        plain.spec.upgrade = None;
        assert!(unsupported(&plain).is_empty(), "{:?}", unsupported(&plain));
    }

    /// A HelmRelease of a HelmChart with `spec` merged in.
    fn hr(spec: serde_json::Value) -> HelmRelease {
        let mut base =
            serde_json::json!({"interval": "5m", "chartRef": {"kind": "HelmChart", "name": "c"}});
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "r", "namespace": "n"}, "spec": base,
        }))
        .unwrap()
    }

    #[test]
    fn waits_judge_by_the_strategy_and_the_actions_jobs_setting() {
        use health::Rules;
        let plain = hr(serde_json::json!({}));
        assert_eq!(wait_rules(&plain, &Step::Install), Rules::Flux);
        let no_jobs = hr(serde_json::json!({"upgrade": {"disableWaitForJobs": true}}));
        assert_eq!(wait_rules(&no_jobs, &Step::Install), Rules::Flux);
        assert_eq!(wait_rules(&no_jobs, &Step::Upgrade), Rules::Kstatus);
        let legacy = hr(serde_json::json!({"waitStrategy": {"name": "legacy"},
            "install": {"disableWaitForJobs": true}}));
        assert_eq!(
            wait_rules(&legacy, &Step::Install),
            Rules::HelmLegacy { check_jobs: false }
        );
        assert_eq!(
            wait_rules(&legacy, &Step::Upgrade),
            Rules::HelmLegacy { check_jobs: true }
        );
    }

    #[test]
    fn crds_policies_default_as_flux() {
        use actions::CrdsPolicy as P;
        let plain = hr(serde_json::json!({}));
        assert_eq!(crds_policy(&plain, false), P::Create);
        assert_eq!(crds_policy(&plain, true), P::Skip);
        let skip = hr(serde_json::json!({"install": {"skipCRDs": true}}));
        assert_eq!(crds_policy(&skip, false), P::Skip);
        let replace = hr(serde_json::json!({"upgrade": {"crds": "CreateReplace"}}));
        assert_eq!(crds_policy(&replace, true), P::CreateReplace);
    }
}
