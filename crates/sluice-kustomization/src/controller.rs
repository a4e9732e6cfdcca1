//! The Kustomization controller's wiring: watches (Kustomizations, their
//! sources of either kind, their dependencies), the reconcile entry point (finalizer,
//! suspend, schedule), status writes and events. What a run does is in
//! [`crate::phases`]; how it ends becomes status in [`crate::outcome`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef as KubeRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Client, Config, Resource, ResourceExt};
use sluice_api::kustomization::{
    DeletionPolicy, FIELD_MANAGER, KUSTOMIZATION_KIND, KustomizationStatus,
};
use sluice_api::meta::{self, FluxObject};
use sluice_api::{Bucket, ExternalArtifact, GitRepository, Kustomization, OCIRepository};
use sluice_apply::{
    Applier, ObjectRef, Owner, PruneOptions, RemoteAppliers, inventory, prune_empty_override,
};
use sluice_runtime::{Event, Failure, History, Policy, Recorder, Schedules, finalizers};

use crate::graph::{Key, ReverseIndex};
use crate::metrics::Metrics;
use crate::outcome::{self, Ended, HEALTH_CHECK_CANCELED_REASON};
use crate::phases::{self, Run, Stop, Wait, applier_for, deps_of};
use crate::source::{SourceReflectors, SourceStores, wake_users};
use sluice_render::artifact::ArtifactCache;

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
    /// The controller-wide age keys (Flux's `--sops-age-secret`): used by
    /// Kustomizations with `spec.decryption` and no `secretRef`.
    pub sops_age_secret: Option<sluice_render::inputs::AgeSecret>,
    /// Reconcile only Kustomizations matching this label selector (Flux's
    /// `--watch-label-selector`, for sharding).
    pub label_selector: Option<String>,
    /// Fraction of the interval a successful run's next run moves by, either
    /// way (Flux's `--interval-jitter-percentage` / 100).
    pub interval_jitter: f64,
    /// The Flux controllers this process does the work of (Deployment names,
    /// e.g. `source-controller`): a Kustomization whose build holds one of
    /// them, running a Flux image, is refused instead of starting Flux beside
    /// sluice (`sluice_apply::flux_controllers`).
    pub replaces_flux: Vec<String>,
    /// What the process's controllers share (metrics, readiness, events, and
    /// `runtime.tenancy`: whom a Kustomization acts as, and whether a
    /// `sourceRef` or `dependsOn` entry in another namespace is refused with
    /// Ready=False and Stalled=True, reason `AccessDenied`).
    pub runtime: sluice_runtime::Runtime,
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
            sops_age_secret: None,
            label_selector: None,
            interval_jitter: 0.05,
            replaces_flux: Vec::new(),
            runtime: sluice_runtime::Runtime::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Deletion with `deletionPolicy: WaitForTermination`: objects of the
    /// inventory still exist.
    #[error("waiting for the termination of {0}")]
    Terminating(String),
    /// Deleting the inventory of a Kustomization being deleted failed.
    #[error("{0}")]
    Cleanup(String),
}

impl Error {
    /// The label of the failure metric.
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesAPI",
            Error::Terminating(_) => "Terminating",
            Error::Cleanup(_) => meta::PRUNE_FAILED_REASON,
        }
    }
}

/// How long the start waits for the source caches before it warns (and
/// again every so often).
const SOURCE_CACHE_WARNING: Duration = Duration::from_secs(30);

/// A build's objects and the hash of what it was built from.
type Rendered = (u64, Arc<Vec<serde_json::Value>>);

pub(crate) struct Ctx {
    pub client: Client,
    pub config: Config,
    pub applier: Applier,
    pub opts: Options,
    pub recorder: Recorder,
    pub ks_store: Store<Kustomization>,
    /// The caches of the sources (GitRepositories, OCIRepositories).
    pub sources: SourceStores,
    pub index: Arc<Mutex<ReverseIndex>>,
    pub schedules: Schedules,
    /// Health checks in progress, by Kustomization.
    pub waits: Mutex<HashMap<Key, Wait>>,
    pub metrics: Metrics,
    pub artifacts: Arc<ArtifactCache>,
    /// Fetches remote kustomize bases for every build (none with
    /// `--no-remote-bases`).
    pub remote_loader: Option<Arc<dyn sluice_kustomize::remote::RemoteLoader>>,
    pub rendered: Mutex<HashMap<Key, Rendered>>,
    /// Appliers for the clusters of `spec.kubeConfig`.
    pub remote: RemoteAppliers,
}

fn key_of(ks: &Kustomization) -> Key {
    Key::new(ks.namespace().unwrap_or_default(), ks.name_any())
}

fn schedule_key(key: &Key) -> sluice_runtime::ObjectKey {
    (key.namespace.clone(), key.name.clone())
}

/// Runs the controller until its watches end.
pub async fn run(config: Config, opts: Options, metrics: Metrics) -> anyhow::Result<()> {
    run_until(config, opts, metrics, std::future::pending()).await
}

/// Runs the controller until `shutdown` resolves, then drains: no new
/// reconciliation starts, those in flight finish their applies and prunes,
/// and Kustomizations whose health checks were still waiting say so
/// (Ready=False `HealthCheckCanceled`). The caller bounds how long it waits
/// for that (the pod's grace period).
pub async fn run_until(
    config: Config,
    opts: Options,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gate = opts.runtime.readiness.gate(crate::READINESS_GATE);
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
    let scope = sluice_runtime::WatchScope {
        namespace: opts.namespace.clone(),
        label_selector: opts.label_selector.clone(),
    };
    let ks_api = scope.api::<Kustomization>(&client);
    let index = Arc::new(Mutex::new(ReverseIndex::default()));

    // The source caches the reconciler reads artifacts from (all of them:
    // a Kustomization of this shard may use any source).
    let external_artifacts = opts.runtime.tenancy.external_artifacts;
    let reflectors = SourceReflectors::start(&client, &scope, external_artifacts);
    // The source caches are complete before any reconciliation starts, and
    // they are waited for here, once: kube-runtime's readiness future wakes
    // only the last of several concurrent waiters, so reconciliations each
    // waiting for it hung for good when several started before the first
    // list was in (seen with three Kustomizations at start-up).
    tracing::debug!("waiting for the source caches");
    let mut stop_waiting = stop_rx.clone();
    let ready = reflectors.stores.wait_until_ready();
    let stopped = stop_waiting.wait_for(|s| *s);
    tokio::pin!(ready, stopped);
    loop {
        tokio::select! {
            ready = &mut ready => {
                if let Err(e) = ready {
                    reflectors.abort();
                    stop_task.abort();
                    anyhow::bail!(e);
                }
                break;
            }
            _ = &mut stopped => {
                reflectors.abort();
                stop_task.abort();
                return Ok(());
            }
            // A source kind that cannot be listed (its CRD missing, no
            // RBAC) keeps every Kustomization waiting: say so.
            _ = tokio::time::sleep(SOURCE_CACHE_WARNING) => {
                tracing::warn!(
                    "still waiting for the GitRepository, OCIRepository and Bucket caches after {}s: \
                     are their CRDs installed (sluice install) and listable?",
                    SOURCE_CACHE_WARNING.as_secs()
                );
            }
        }
    }

    let controller = Controller::new(ks_api.clone(), scope.watcher_config());
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

    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config,
        applier: Applier::new(client.clone()),
        recorder: Recorder::new(client.clone(), &opts.event_reporter, &opts.runtime.events),
        ks_store: ks_reader.clone(),
        sources: reflectors.stores.clone(),
        index,
        schedules: Schedules::default(),
        waits: Mutex::new(HashMap::new()),
        metrics,
        remote_loader: (!opts.no_remote_bases).then(|| {
            Arc::new(sluice_git::GitRemoteLoader::from_env())
                as Arc<dyn sluice_kustomize::remote::RemoteLoader>
        }),
        artifacts: Arc::new(
            ArtifactCache::new(
                std::env::temp_dir().join(format!("sluice-artifacts-{}", std::process::id())),
                8,
            )
            .map_err(|e| anyhow::anyhow!(e))?,
        ),
        rendered: Mutex::new(HashMap::new()),
        remote: RemoteAppliers::new(sluice_apply::KubeConfigPolicy {
            insecure_tls: opts.runtime.tenancy.insecure_kubeconfig_tls,
            insecure_exec: opts.runtime.tenancy.insecure_kubeconfig_exec,
        }),
        opts: opts.clone(),
    });
    tracing::info!(namespace = ?opts.namespace, selector = ?opts.label_selector, storage = ?opts.storage_path, "starting Kustomization controller");
    // Ready once Kustomizations can be listed (the source caches are
    // complete already).
    let ready_task = sluice_runtime::readiness::open_when_listable(
        gate,
        ks_api.clone(),
        opts.label_selector.clone(),
    );
    // Sources: a new artifact wakes the Kustomizations using it.
    let controller = if external_artifacts {
        controller.watches(
            scope.api::<ExternalArtifact>(&client),
            watcher::Config::default(),
            wake_users::<ExternalArtifact>(ks_reader.clone()),
        )
    } else {
        controller
    };
    controller
        .watches(
            scope.api::<GitRepository>(&client),
            watcher::Config::default(),
            wake_users::<GitRepository>(ks_reader.clone()),
        )
        .watches(
            scope.api::<OCIRepository>(&client),
            watcher::Config::default(),
            wake_users::<OCIRepository>(ks_reader.clone()),
        )
        .watches(
            scope.api::<Bucket>(&client),
            watcher::Config::default(),
            wake_users::<Bucket>(ks_reader.clone()),
        )
        .watches(ks_api, scope.watcher_config(), dep_mapper)
        .trigger_backoff(sluice_runtime::TriggerBackoff::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(opts.concurrency))
        .graceful_shutdown_on(stop_trigger)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(object = %obj, "reconciled"),
                Err(e) => tracing::debug!("reconcile: {e}"),
            }
        })
        .await;
    cancel_waits(&ctx).await;
    ready_task.abort();
    reflectors.abort();
    stop_task.abort();
    tracing::info!("Kustomization controller stopped");
    Ok(())
}

fn error_policy(ks: Arc<Kustomization>, err: &finalizers::Error<Error>, ctx: Arc<Ctx>) -> Action {
    let (kind, requeue) = match err {
        finalizers::Error::ApplyFailed(e) | finalizers::Error::CleanupFailed(e) => (
            e.kind(),
            match e {
                Error::Terminating(_) => Duration::from_secs(2),
                Error::Cleanup(_) => ks.spec.retry_interval().unwrap_or(Duration::from_secs(60)),
                Error::Kube(_) => Duration::from_secs(5),
            },
        ),
        _ => ("Finalizer", Duration::from_secs(5)),
    };
    if !matches!(err, finalizers::Error::CleanupFailed(Error::Terminating(_))) {
        tracing::warn!(kustomization = %key_of(&ks), "reconcile error: {err}");
    }
    ctx.opts.runtime.metrics.failure(KUSTOMIZATION_KIND, kind);
    Action::requeue(requeue)
}

async fn reconcile(
    ks: Arc<Kustomization>,
    ctx: Arc<Ctx>,
) -> Result<Action, finalizers::Error<Error>> {
    let (a, c) = (ctx.clone(), ctx.clone());
    let result = finalizers::reconcile(
        &ctx.client,
        ks,
        |ks| async move { reconcile_live(&ks, &a).await },
        |ks| async move { cleanup(&ks, &c).await },
    )
    .await;
    // What the run allocated is free now: trimmed once the burst settles.
    ctx.opts.runtime.memory.work_done();
    result
}

/// The scheduling and condition policy of `ks`.
fn policy(ks: &Kustomization, opts: &Options) -> Policy {
    let interval = ks.spec.interval().unwrap_or(Duration::from_secs(600));
    let retry = ks.spec.retry_interval().unwrap_or(interval);
    Policy {
        dependency_requeue: opts.requeue_dependency,
        progress_poll: opts.health_poll,
        ..Policy::new(interval, retry)
    }
}

async fn reconcile_live(ks: &Kustomization, ctx: &Ctx) -> Result<Action, Error> {
    let key = key_of(ks);
    let skey = schedule_key(&key);
    if ks.spec.is_suspended() {
        ctx.schedules.remove(&skey);
        forget_wait(ctx, &key);
        ctx.metrics.count("skipped");
        observe(ctx, ks, ks.status.as_ref());
        return Ok(Action::await_change());
    }
    if let Ok(mut idx) = ctx.index.lock() {
        idx.set(&key, deps_of(ks));
    }

    let source = phases::fresh_source(ctx, ks).await;
    // The artifact as stored, not only its revision (`Artifact::identity`).
    let artifact = source.as_ref().and_then(|s| s.artifact());
    let revision = artifact.map(|a| a.revision.clone()).unwrap_or_default();
    let fp = sluice_runtime::schedule::fingerprint(
        ks,
        &[
            &artifact
                .map(sluice_api::meta::Artifact::identity)
                .unwrap_or_default(),
            prune_empty_override(Some(ks.annotations())).unwrap_or(""),
        ],
    );
    if let Some(wait) = ctx.schedules.wait(&skey, &fp, Instant::now()) {
        return Ok(Action::requeue(wait));
    }

    let started = Instant::now();
    let policy = policy(ks, &ctx.opts);
    let history = History {
        consecutive_failures: ctx.schedules.get(&skey).map_or(0, |d| d.failures),
    };
    // A health check in progress for the same spec and revision resumes;
    // anything new starts over.
    let waiting = ctx
        .waits
        .lock()
        .ok()
        .and_then(|mut w| w.remove(&key))
        .filter(|w| w.fingerprint == fp);
    let mut run = Run::new(ks, ctx, key.clone(), fp.clone());
    let result = match waiting {
        Some(wait) => run.resume_health(wait).await,
        None => run.execute(source).await,
    };
    let ended = match result {
        Ok(done) => Ended::Done {
            revision: done.revision,
            changed: done.changed,
            elapsed: done.started.elapsed(),
        },
        Err(Stop::Failed(failure)) => Ended::Failed {
            failure,
            revision: run.revision.clone(),
        },
        Err(Stop::Blocked { message, cycle }) => Ended::Blocked { message, cycle },
        Err(Stop::Waiting(wait)) => {
            let ended = Ended::Waiting {
                revision: wait.revision.clone(),
                message: wait.message(),
            };
            if let Ok(mut w) = ctx.waits.lock() {
                w.insert(key.clone(), *wait);
            }
            ended
        }
        Err(Stop::Api(e)) => return Err(e.into()),
    };
    let failed = matches!(&ended, Ended::Failed { .. });
    if let Ended::Failed { failure, .. } = &ended {
        ctx.opts
            .runtime
            .metrics
            .failure(KUSTOMIZATION_KIND, &failure.reason);
    }
    let blocked = matches!(&ended, Ended::Blocked { .. });
    let concluded = outcome::conclude(ks, run.status, ended, run.events, &policy, history);
    if Some(&concluded.status) != Some(&run.written) {
        write_status(ctx, ks, &concluded.status).await?;
    }
    publish(ctx, ks, Some(&revision), &concluded.decision.events).await;
    ctx.opts.runtime.metrics.observe_duration(
        KUSTOMIZATION_KIND,
        &key.namespace,
        &key.name,
        started.elapsed(),
    );
    observe(ctx, ks, Some(&concluded.status));
    ctx.metrics.count(concluded.result);
    let requeue = match concluded.result {
        // Kustomizations created together do not stay in step.
        "applied" | "unchanged" => {
            sluice_runtime::schedule::jittered(concluded.decision.requeue, ctx.opts.interval_jitter)
        }
        _ => concluded.decision.requeue,
    };
    ctx.schedules.set(
        skey,
        sluice_runtime::Due {
            fingerprint: fp,
            next: Some(Instant::now() + requeue),
            failures: if failed {
                history.consecutive_failures + 1
            } else {
                0
            },
            // A blocked Kustomization looks at its dependencies at every
            // wake-up (a dependency turning ready wakes it).
            eager: blocked,
        },
    );
    Ok(Action::requeue(requeue))
}

/// Records the metrics of `ks` with `status`.
fn observe(ctx: &Ctx, ks: &Kustomization, status: Option<&KustomizationStatus>) {
    let key = key_of(ks);
    ctx.opts
        .runtime
        .metrics
        .observe(&sluice_runtime::metrics::Observation {
            kind: KUSTOMIZATION_KIND,
            namespace: &key.namespace,
            name: &key.name,
            conditions: status
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default(),
            suspended: ks.spec.is_suspended(),
            revision: status
                .and_then(|s| s.last_applied_revision.as_deref())
                .unwrap_or_default(),
        });
}

/// Writes the status of `ks` (every status write of this controller goes
/// through here).
pub(crate) async fn write_status(
    ctx: &Ctx,
    ks: &Kustomization,
    status: &KustomizationStatus,
) -> Result<(), kube::Error> {
    sluice_runtime::status::patch(&ctx.client, ks, status, FIELD_MANAGER).await?;
    ctx.metrics.writes.inc();
    Ok(())
}

async fn publish(ctx: &Ctx, ks: &Kustomization, revision: Option<&str>, events: &[Event]) {
    let written = ctx.recorder.publish(ks, revision, events).await;
    ctx.metrics.writes.inc_by(written as u64);
}

fn forget_wait(ctx: &Ctx, key: &Key) {
    if let Ok(mut w) = ctx.waits.lock() {
        w.remove(key);
    }
}

/// At shutdown: the Kustomizations whose health checks were still waiting
/// are told so (Ready=False `HealthCheckCanceled`); the next controller
/// checks again.
async fn cancel_waits(ctx: &Ctx) {
    let waits: Vec<(Key, Wait)> = ctx
        .waits
        .lock()
        .map(|mut w| w.drain().collect())
        .unwrap_or_default();
    for (key, wait) in waits {
        let Some(ks) = ctx
            .ks_store
            .get(&KubeRef::new(&key.name).within(&key.namespace))
        else {
            continue;
        };
        let failure = Failure::new(
            HEALTH_CHECK_CANCELED_REASON,
            "Health check canceled: the controller is shutting down; the next run checks again",
        );
        let status = ks.status.clone().unwrap_or_default();
        let concluded = outcome::conclude(
            &ks,
            status,
            Ended::Failed {
                failure,
                revision: Some(wait.revision.clone()),
            },
            vec![],
            &policy(&ks, &ctx.opts),
            History::default(),
        );
        if let Err(e) = write_status(ctx, &ks, &concluded.status).await {
            tracing::warn!(kustomization = %key, "recording the canceled health check: {e}");
        }
        publish(ctx, &ks, Some(&wait.revision), &concluded.decision.events).await;
    }
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
) -> Result<(), Error> {
    let mut remaining = Vec::new();
    for o in objects {
        match applier.get(o).await {
            Ok(None) => {}
            Ok(Some(_)) => remaining.push(o.to_string()),
            Err(e) => remaining.push(format!("{o} ({e})")),
        }
    }
    if remaining.is_empty() {
        return Ok(());
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
        return Err(Error::Terminating(remaining.join(", ")));
    }
    let message = format!(
        "timed out after {} waiting for termination of {}; removing the finalizer",
        meta::format_duration(timeout),
        remaining.join(", ")
    );
    publish(
        ctx,
        ks,
        None,
        &[Event::warning(meta::PRUNE_FAILED_REASON, message)],
    )
    .await;
    Ok(())
}

/// A Kustomization being deleted: its inventory is deleted (unless it is
/// suspended or `deletionPolicy` keeps it); then the finalizer goes.
async fn cleanup(ks: &Kustomization, ctx: &Ctx) -> Result<Action, Error> {
    let key = key_of(ks);
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
            let applier = match applier_for(ctx, ks).await {
                Ok(a) => a,
                Err(e) => {
                    let m = e.to_string();
                    publish(
                        ctx,
                        ks,
                        None,
                        &[Event::warning(meta::PRUNE_FAILED_REASON, m.clone())],
                    )
                    .await;
                    return Err(Error::Cleanup(m));
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
                            None,
                            &[Event::normal(meta::PROGRESSING_REASON, log)],
                        )
                        .await;
                    }
                    if ks.spec.deletion_policy() == DeletionPolicy::WaitForTermination {
                        wait_for_termination(ks, ctx, &applier, &objects).await?;
                    }
                }
                Err(e) => {
                    let m = e.to_string();
                    publish(
                        ctx,
                        ks,
                        None,
                        &[Event::warning(meta::PRUNE_FAILED_REASON, m.clone())],
                    )
                    .await;
                    return Err(Error::Cleanup(m));
                }
            }
        }
    }
    if let Ok(mut idx) = ctx.index.lock() {
        idx.remove(&key);
    }
    ctx.schedules.remove(&schedule_key(&key));
    forget_wait(ctx, &key);
    if let Ok(mut m) = ctx.rendered.lock() {
        m.remove(&key);
    }
    ctx.opts
        .runtime
        .metrics
        .deleted(KUSTOMIZATION_KIND, &key.namespace, &key.name);
    Ok(Action::await_change())
}
