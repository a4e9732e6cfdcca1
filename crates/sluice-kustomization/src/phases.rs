//! One reconciliation of a Kustomization, as a short script of phases
//! ([`Run::execute`]): each phase returns `Result<_, Stop>`, and the first
//! that stops the run says why. Turning that into status is
//! [`crate::outcome`]'s job, not the phases'.
//!
//! A health check that is not done is not waited for here: the run stops
//! with [`Stop::Waiting`], the worker is released, and the controller looks
//! at the objects again shortly ([`Run::resume_health`]), so one slow
//! application never holds back another Kustomization.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::{Resource, ResourceExt};
use sluice_api::Kustomization;
use sluice_api::kustomization::{KUSTOMIZATION_KIND, KustomizationStatus, SourceKind};
use sluice_api::meta::{self, Artifact, CONDITION_TRUE, CONDITION_UNKNOWN, FluxObject};
use sluice_apply::{
    Applier, ApplyOptions, ApplyResult, ObjectRef, Owner, PruneOptions, RemoteError, check_prune,
    inventory, prune_empty_override,
};
use sluice_kstatus::cel::{CustomHealthCheck, Expression};
use sluice_render::{Inputs, RenderOptions};
use sluice_runtime::{Event, Failure, ServiceAccountRef};

use crate::controller::{Ctx, Options};
use crate::graph::{self, Key, NodeState};
use crate::outcome::{ACCESS_DENIED_REASON, UNSUPPORTED_REASON};
use crate::source::{self, Source, SourceRef};
use sluice_apply::health::{self, Health};

/// How long after the Kustomization's timeout a build that has not
/// stopped by itself is given up on.
const BUILD_GRACE: Duration = Duration::from_secs(5);

/// Why a run stopped before the end.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A phase failed.
    Failed(Failure),
    /// A dependency is not ready (or the dependencies form a cycle).
    Blocked { message: String, cycle: bool },
    /// Everything is applied; the health checks are not done yet.
    Waiting(Box<Wait>),
    /// Writing progress to the API server failed.
    Api(kube::Error),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Stop::Failed(f)
    }
}

impl From<kube::Error> for Stop {
    fn from(e: kube::Error) -> Self {
        Stop::Api(e)
    }
}

/// A health check in progress, remembered between runs.
#[derive(Clone, Debug)]
pub(crate) struct Wait {
    /// What the run was started for (spec, request, revision).
    pub fingerprint: String,
    pub revision: String,
    /// The objects not ready at the last look.
    pub objects: Vec<ObjectRef>,
    /// When the run that applied them started.
    pub started: Instant,
    /// When the health checks started.
    pub health_started: Instant,
    /// The run's timeout ends here.
    pub deadline: Instant,
    /// The apply changed something.
    pub changed: bool,
    /// `[Kind/ns/name status: 'InProgress', ...]`.
    pub summary: String,
}

impl Wait {
    /// The Reconciling/Ready message while waiting.
    pub fn message(&self) -> String {
        format!(
            "Applied revision {}; waiting for {} to become ready: {}",
            self.revision,
            match self.objects.len() {
                1 => "1 object".to_string(),
                n => format!("{n} objects"),
            },
            self.summary
        )
    }
}

/// A run that got to the end.
#[derive(Debug)]
pub(crate) struct Done {
    pub revision: String,
    /// The apply or prune changed something.
    pub changed: bool,
    pub started: Instant,
}

/// One reconciliation: the Kustomization, what it has written so far, and
/// the events its phases want published.
pub(crate) struct Run<'a> {
    pub ks: &'a Kustomization,
    pub ctx: &'a Ctx,
    pub key: Key,
    pub generation: Option<i64>,
    pub fingerprint: String,
    /// The status being built (conditions are left to the outcome).
    pub status: KustomizationStatus,
    /// The status as last written to the API server.
    pub written: KustomizationStatus,
    pub events: Vec<Event>,
    /// The source revision, once known.
    pub revision: Option<String>,
    /// The inventory as it was before this run (prune compares with it).
    inventory_before: sluice_api::kustomization::ResourceInventory,
}

impl<'a> Run<'a> {
    pub fn new(ks: &'a Kustomization, ctx: &'a Ctx, key: Key, fingerprint: String) -> Self {
        let written = ks.status.clone().unwrap_or_default();
        let mut status = written.clone();
        let inventory_before = written.inventory.clone().unwrap_or_default();
        if let Some(token) = meta::reconcile_request(Some(ks.annotations())) {
            status.last_handled_reconcile_at = Some(token.to_string());
        }
        Run {
            ks,
            ctx,
            key,
            generation: ks.meta().generation,
            fingerprint,
            status,
            written,
            events: Vec::new(),
            revision: None,
            inventory_before,
        }
    }

    /// The phases, in order.
    pub async fn execute(&mut self, source: Option<Source>) -> Result<Done, Stop> {
        let started = Instant::now();
        let checks = self.validate()?;
        self.dependencies()?;
        let artifact = self.source(source)?;
        self.announce_progress(&artifact).await?;
        let inputs = self.inputs().await?;
        let objects = self.render(&artifact, inputs).await?;
        let applier = self.applier().await?;
        let applied = self.apply(&applier, objects).await?;
        let changed = self.prune(&applier, &applied).await? || applied.change_set.has_changes();
        self.record_inventory().await?;
        let done = Done {
            revision: artifact.revision,
            changed,
            started,
        };
        self.health(&applier, done, &checks, self.to_check(&applied))
            .await
    }

    /// A run resumed at its health checks (nothing new since it applied).
    pub async fn resume_health(&mut self, wait: Wait) -> Result<Done, Stop> {
        self.revision = Some(wait.revision.clone());
        let checks = self.validate()?;
        let applier = self.applier().await?;
        let done = Done {
            revision: wait.revision.clone(),
            changed: wait.changed,
            started: wait.started,
        };
        self.check_health(&applier, done, &checks, wait).await
    }

    fn failure(&self, reason: &'static str, message: impl Into<String>) -> Stop {
        Stop::Failed(Failure::new(reason, message))
    }

    /// Spec checks: fields sluice refuses, CEL that does not compile,
    /// references refused by `--no-cross-namespace-refs`. Returns the
    /// compiled `spec.healthCheckExprs`.
    fn validate(&self) -> Result<Vec<CustomHealthCheck>, Stop> {
        let spec = &self.ks.spec;
        // Accepted by the schema, not implemented: applying without it would
        // be wrong (the wrong cluster).
        if spec
            .kube_config
            .as_ref()
            .is_some_and(|k| k.secret_ref.is_none() && k.config_map_ref.is_some())
        {
            return Err(Failure::stalled(
                UNSUPPORTED_REASON,
                "spec.kubeConfig.configMapRef (a cloud provider's workload identity) is not \
                 supported by sluice: use spec.kubeConfig.secretRef with a kubeconfig; nothing \
                 was applied",
            )
            .into());
        }
        // Flux uses it only to authenticate to cloud KMS (workload
        // identity); sluice decrypts with age keys alone, so a Kustomization
        // relying on it would fail later, less clearly.
        if spec.decryption.as_ref().is_some_and(|d| {
            d.service_account_name
                .as_deref()
                .is_some_and(|s| !s.is_empty())
        }) {
            return Err(Failure::stalled(
                UNSUPPORTED_REASON,
                "spec.decryption.serviceAccountName is not supported by sluice: it authenticates to \
                 cloud KMS, and sluice decrypts SOPS with age and PGP keys only (spec.decryption.secretRef \
                 or the controller's --sops-age-secret); nothing was applied",
            )
            .into());
        }
        let mut checks = Vec::new();
        let mut bad = None;
        for (i, h) in spec.health_check_exprs.iter().flatten().enumerate() {
            match CustomHealthCheck::new(
                &format!("spec.healthCheckExprs[{i}]"),
                &h.api_version,
                h.kind.as_deref().unwrap_or_default(),
                &h.current,
                h.in_progress.as_deref(),
                h.failed.as_deref(),
            ) {
                Ok(c) => checks.push(c),
                Err(m) => bad = bad.or(Some(m)),
            }
        }
        for (i, d) in spec.depends_on.iter().flatten().enumerate() {
            if let Some(Err(m)) = d.ready_expr.as_deref().map(Expression::compile) {
                bad = bad.or(Some(format!("spec.dependsOn[{i}].readyExpr: {m}")));
            }
        }
        if let Some(m) = bad {
            return Err(Failure::stalled(meta::INVALID_CEL_EXPRESSION_REASON, m).into());
        }
        if let Some(m) = cross_namespace_ref(self.ks, &self.ctx.opts) {
            return Err(Failure::stalled(ACCESS_DENIED_REASON, m).into());
        }
        if let Some(m) = external_artifact_denied(self.ks, &self.ctx.opts) {
            return Err(Failure::stalled(ACCESS_DENIED_REASON, m).into());
        }
        if !source::is_supported(&spec.source_ref.kind) {
            let m = format!(
                "source kind {} is not supported by sluice yet",
                spec.source_ref.kind
            );
            return Err(Failure::stalled(UNSUPPORTED_REASON, m).into());
        }
        Ok(checks)
    }

    /// `dependsOn`: every dependency ready by Flux's rules, else blocked
    /// with the chain down to the root cause.
    fn dependencies(&mut self) -> Result<(), Stop> {
        if deps_of(self.ks).is_empty() {
            return Ok(());
        }
        let root_source = SourceRef::of(self.ks);
        let check = graph::check(&self.key, |k| {
            node_state(self.ctx, k, &self.key, self.ks, &root_source)
        });
        if check.is_ready() {
            return Ok(());
        }
        Err(Stop::Blocked {
            message: check.message(),
            cycle: matches!(check, graph::DepCheck::Cycle { .. }),
        })
    }

    /// The source's artifact.
    fn source(&mut self, source: Option<Source>) -> Result<Artifact, Stop> {
        let r = SourceRef::of(self.ks);
        let Some(source) = source else {
            return Err(self.failure(
                meta::ARTIFACT_FAILED_REASON,
                format!("Source '{r}' not found"),
            ));
        };
        let Some(artifact) = source.artifact().cloned() else {
            return Err(self.failure(
                meta::ARTIFACT_FAILED_REASON,
                format!("Source '{r}' is not ready, artifact not found"),
            ));
        };
        self.revision = Some(artifact.revision.clone());
        Ok(artifact)
    }

    /// Reconciling=True and Ready=Unknown, written before the work starts
    /// when a new revision or generation is being applied.
    async fn announce_progress(&mut self, artifact: &Artifact) -> Result<(), Stop> {
        if self.status.last_attempted_revision.as_deref() == Some(artifact.revision.as_str())
            && self.status.observed_generation == self.generation
        {
            return Ok(());
        }
        let msg = format!(
            "Fetching manifests for revision {} with a timeout of {}",
            artifact.revision,
            meta::format_duration(self.timeout())
        );
        let mut progress = self.written.clone();
        let conditions = progress.conditions_mut();
        for (type_, status, message) in [
            (meta::RECONCILING_CONDITION, CONDITION_TRUE, msg.as_str()),
            (
                meta::READY_CONDITION,
                CONDITION_UNKNOWN,
                "Reconciliation in progress",
            ),
        ] {
            meta::set_condition(
                conditions,
                meta::new_condition(
                    type_,
                    status,
                    meta::PROGRESSING_REASON,
                    message,
                    self.generation,
                ),
            );
        }
        sluice_runtime::conditions::sort(conditions);
        // The conditions the outcome computes start from these.
        self.status.conditions.clone_from(&progress.conditions);
        self.write(progress).await
    }

    /// postBuild variables, and for `spec.decryption` the age identities
    /// (sluice-render reads them as `sluice build kustomization` does).
    async fn inputs(&self) -> Result<Inputs, Stop> {
        sluice_render::inputs::read(
            &self.ctx.client,
            self.ks,
            self.ctx.opts.sops_age_secret.as_ref(),
        )
        .await
        .map_err(|m| self.failure(meta::BUILD_FAILED_REASON, m))
    }

    /// Checkout, build, decrypt, substitute (sluice-render's pipeline, the
    /// one the CLI uses), off the async runtime and within the timeout.
    /// The result is kept per Kustomization and reused while the artifact,
    /// the spec, the decryption Secret and the variables are the same
    /// (interval runs only re-apply).
    async fn render(
        &self,
        artifact: &Artifact,
        inputs: Inputs,
    ) -> Result<Vec<serde_json::Value>, Stop> {
        let phase = Instant::now();
        let render_key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            artifact.digest.hash(&mut h);
            artifact.revision.hash(&mut h);
            serde_json::to_string(&self.ks.spec)
                .unwrap_or_default()
                .hash(&mut h);
            inputs.vars.hash(&mut h);
            inputs.decryption.as_ref().map(|d| &d.version).hash(&mut h);
            h.finish()
        };
        let cached = self.ctx.rendered.lock().ok().and_then(|m| {
            m.get(&self.key)
                .filter(|(k, _)| *k == render_key)
                .map(|(_, o)| o.clone())
        });
        if let Some(objects) = cached {
            return Ok((*objects).clone());
        }
        let spec = self.ks.spec.clone();
        let storage = self
            .ctx
            .opts
            .storage_path
            .clone()
            .filter(|_| source::in_local_storage(&self.ks.spec.source_ref.kind));
        let http_timeout = self.ctx.opts.http_timeout;
        let art = artifact.clone();
        let cache = self.ctx.artifacts.clone();
        let timeout = self.timeout();
        // The engine stops itself at the deadline (remote fetches get the
        // time left); the await below gives up shortly after it whatever the
        // blocking task does.
        let opts = RenderOptions {
            deadline: Some(Instant::now() + timeout),
            no_remote_bases: self.ctx.opts.no_remote_bases,
            remote_loader: self.ctx.remote_loader.clone(),
            // The applier sets the owner labels and commonMetadata.
            owner: None,
        };
        let task = tokio::task::spawn_blocking(move || {
            sluice_render::render_artifact(
                &cache,
                storage.as_deref(),
                &art,
                http_timeout,
                &spec,
                &inputs,
                &opts,
            )
            .map_err(|e| Failure::new(e.reason, e.message))
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
        }?;
        tracing::debug!(kustomization = %self.key, elapsed = ?phase.elapsed(), "fetched and built");
        let built = Arc::new(built);
        if let Ok(mut m) = self.ctx.rendered.lock() {
            m.insert(self.key.clone(), (render_key, built.clone()));
        }
        Ok((*built).clone())
    }

    /// The applier acting for this Kustomization: on the cluster of its
    /// `spec.kubeConfig`, if any, impersonating its service account, if it
    /// has one.
    async fn applier(&self) -> Result<Applier, Stop> {
        applier_for(self.ctx, self.ks).await.map_err(|e| match e {
            RemoteError::Unsupported(m) => {
                Failure::stalled(UNSUPPORTED_REASON, format!("{m}; nothing was applied")).into()
            }
            RemoteError::Invalid(m) => self.failure(meta::RECONCILIATION_FAILED_REASON, m),
        })
    }

    /// Staged server-side apply, within the timeout. The inventory grows
    /// first (write-ahead) and keeps what an interrupted apply wrote.
    async fn apply(
        &mut self,
        applier: &Applier,
        objects: Vec<serde_json::Value>,
    ) -> Result<ApplyResult, Stop> {
        // Nothing is applied when a Secret is still encrypted (Flux's check).
        sluice_render::refuse_encrypted_secrets(&objects)
            .map_err(|m| self.failure(meta::RECONCILIATION_FAILED_REASON, m))?;
        // Nor when it would start Flux's controllers beside sluice.
        let flux = sluice_apply::flux_controllers(&objects, &self.ctx.opts.replaces_flux);
        if !flux.is_empty() {
            return Err(Failure::stalled(
                meta::RECONCILIATION_FAILED_REASON,
                sluice_apply::flux_controllers_message(&flux),
            )
            .into());
        }
        let spec = &self.ks.spec;
        let mut opts = ApplyOptions::new(self.owner());
        opts.force = spec.is_force();
        if let Some(cm) = &spec.common_metadata {
            opts.common_labels = cm.labels.clone().unwrap_or_default();
            opts.common_annotations = cm.annotations.clone().unwrap_or_default();
        }
        for (i, rule) in spec.ignore.iter().flatten().enumerate() {
            let rule = sluice_apply::IgnoreRule::new(i, &rule.paths, rule.target.as_ref())
                .map_err(|m| Failure::stalled(meta::RECONCILIATION_FAILED_REASON, m))?;
            opts.ignore.push(rule);
        }
        let old = self.old_inventory();
        // Write-ahead: the objects this apply may create go into the
        // recorded inventory before it starts, so a controller killed in the
        // middle of it still prunes them once they leave Git.
        let ahead = inventory::union(&old, &inventory::intended(&objects));
        if ahead.entries.len() != old.entries.len()
            && self.written.inventory.as_ref() != Some(&ahead)
        {
            let mut progress = self.written.clone();
            progress.inventory = Some(ahead);
            self.write(progress).await?;
        }
        let progress = sluice_apply::ApplyProgress::new();
        opts.progress = Some(progress.clone());
        let timeout = self.timeout();
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, applier.apply(objects, &opts)).await;
        let result = match result {
            Err(_) => {
                // What the abandoned apply wrote stays in the inventory, so a
                // later prune can still remove it.
                self.status.inventory = Some(inventory::union(&old, &progress.inventory()));
                return Err(self.failure(
                    meta::RECONCILIATION_FAILED_REASON,
                    format!("apply timed out after {}", meta::format_duration(timeout)),
                ));
            }
            Ok(Err(e)) => {
                self.ctx.metrics.record(&e.requests);
                self.status.inventory = Some(inventory::union(&old, &e.change_set.to_inventory()));
                self.change_log(e.change_set.change_log());
                let mut message = e.to_string();
                if let Some(sa) = acting_as(self.ks, &self.ctx.opts)
                    && e.errors.iter().any(|x| x.is_forbidden())
                {
                    message =
                        format!("apply forbidden by RBAC for service account {sa}: {message}");
                }
                return Err(self.failure(meta::RECONCILIATION_FAILED_REASON, message));
            }
            Ok(Ok(r)) => r,
        };
        self.ctx.metrics.record(&result.requests);
        tracing::debug!(kustomization = %self.key, elapsed = ?started.elapsed(), requests = ?result.requests, "applied");
        if result.change_set.has_changes() {
            self.change_log(result.change_set.change_log());
        }
        self.status.inventory = Some(result.inventory());
        Ok(result)
    }

    /// Deletes what left the build (`spec.prune`), behind the empty-build
    /// and mass-deletion guards. Returns whether anything was deleted.
    async fn prune(&mut self, applier: &Applier, applied: &ApplyResult) -> Result<bool, Stop> {
        if !self.ks.spec.prune {
            return Ok(false);
        }
        let old = self.old_inventory();
        let new = applied.inventory();
        let count = applied.change_set.entries.len();
        let revision = self.revision.clone().unwrap_or_default();
        // Nothing is pruned, and nothing leaves the inventory, until the
        // revision is confirmed.
        let checked = applied
            .stale(&old)
            .map_err(|e| e.to_string())
            .and_then(|stale| {
                check_prune(
                    &old,
                    count,
                    &stale,
                    &revision,
                    prune_empty_override(Some(self.ks.annotations())),
                )
                .map(|()| stale)
                .map_err(|e| e.to_string())
            });
        let stale = match checked {
            Ok(stale) => stale,
            Err(message) => {
                self.status.inventory = Some(inventory::union(&old, &new));
                return Err(self.failure(meta::PRUNE_FAILED_REASON, message));
            }
        };
        if stale.is_empty() {
            return Ok(false);
        }
        match applier
            .prune(&stale, &PruneOptions::new(self.owner()))
            .await
        {
            Ok(p) => {
                self.ctx.metrics.record(&p.requests);
                let log = p.change_set.change_log();
                let deleted = !log.is_empty();
                self.change_log(log);
                Ok(deleted)
            }
            Err(e) => {
                self.ctx.metrics.record(&e.requests);
                self.status.inventory =
                    Some(inventory::union(&new, &inventory::from_objects(&e.failed)));
                Err(self.failure(meta::PRUNE_FAILED_REASON, e.to_string()))
            }
        }
    }

    /// The inventory is written before the health checks, which can last up
    /// to the timeout: a controller stopped during them still knows what it
    /// applied and prunes it when it leaves Git.
    async fn record_inventory(&mut self) -> Result<(), Stop> {
        if self.status.inventory != self.written.inventory {
            let mut progress = self.written.clone();
            progress.inventory.clone_from(&self.status.inventory);
            self.write(progress).await?;
        }
        Ok(())
    }

    /// What the health checks look at: everything applied with `wait`,
    /// else `spec.healthChecks`.
    fn to_check(&self, applied: &ApplyResult) -> Vec<ObjectRef> {
        if self.ks.spec.is_wait() {
            return applied.applied();
        }
        self.ks
            .spec
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
    }

    /// The first look at the health of what was applied.
    async fn health(
        &mut self,
        applier: &Applier,
        done: Done,
        checks: &[CustomHealthCheck],
        objects: Vec<ObjectRef>,
    ) -> Result<Done, Stop> {
        if objects.is_empty() {
            meta::remove_condition(self.status.conditions_mut(), meta::HEALTHY_CONDITION);
            return Ok(done);
        }
        let now = Instant::now();
        let wait = Wait {
            fingerprint: self.fingerprint.clone(),
            revision: done.revision.clone(),
            objects,
            started: done.started,
            health_started: now,
            deadline: done.started + self.timeout(),
            changed: done.changed,
            summary: String::new(),
        };
        self.check_health(applier, done, checks, wait).await
    }

    /// One look at the objects of `wait`: Healthy, failed, or still waiting
    /// (the worker is released; the controller looks again after the health
    /// poll interval).
    async fn check_health(
        &mut self,
        applier: &Applier,
        done: Done,
        checks: &[CustomHealthCheck],
        mut wait: Wait,
    ) -> Result<Done, Stop> {
        let acting_as = acting_as(self.ks, &self.ctx.opts).map(|sa| sa.to_string());
        let last = Instant::now() + self.ctx.opts.health_poll >= wait.deadline;
        let verdict = health::check(
            applier,
            acting_as.as_deref(),
            &wait.objects,
            checks,
            wait.health_started.elapsed(),
            last,
            health::Rules::Flux,
        )
        .await;
        let generation = self.generation;
        let mut healthy = |status: &str, reason: &str, message: &str| {
            meta::set_condition(
                self.status.conditions_mut(),
                meta::new_condition(meta::HEALTHY_CONDITION, status, reason, message, generation),
            );
        };
        match verdict {
            Health::Ready => {
                let was_healthy =
                    meta::is_condition_true(self.ks.conditions(), meta::HEALTHY_CONDITION);
                // Keep the old message: no status write for a no-op run.
                if !was_healthy || done.changed {
                    let took =
                        Duration::from_millis(wait.health_started.elapsed().as_millis() as u64);
                    let msg = format!("Health check passed in {}", meta::format_duration(took));
                    healthy(CONDITION_TRUE, meta::SUCCEEDED_REASON, &msg);
                }
                Ok(done)
            }
            Health::Failed(m) => {
                healthy(meta::CONDITION_FALSE, meta::HEALTH_CHECK_FAILED_REASON, &m);
                Err(self.failure(meta::HEALTH_CHECK_FAILED_REASON, m))
            }
            Health::Pending { waiting, summary } => {
                wait.objects = waiting;
                wait.summary = summary;
                healthy(CONDITION_UNKNOWN, meta::PROGRESSING_REASON, &wait.message());
                Err(Stop::Waiting(Box::new(wait)))
            }
        }
    }

    fn owner(&self) -> Owner {
        Owner::new(&self.key.name, &self.key.namespace)
    }

    fn old_inventory(&self) -> sluice_api::kustomization::ResourceInventory {
        self.inventory_before.clone()
    }

    fn timeout(&self) -> Duration {
        self.ks.spec.timeout().unwrap_or(Duration::from_secs(300))
    }

    fn change_log(&mut self, log: String) {
        if !log.is_empty() {
            self.events
                .push(Event::normal(meta::PROGRESSING_REASON, log));
        }
    }

    /// Writes an intermediate status (progress, inventory).
    async fn write(&mut self, status: KustomizationStatus) -> Result<(), Stop> {
        crate::controller::write_status(self.ctx, self.ks, &status).await?;
        self.written = status;
        Ok(())
    }
}

pub(crate) fn deps_of(ks: &Kustomization) -> Vec<Key> {
    let ns = ks.namespace().unwrap_or_default();
    ks.spec
        .depends_on
        .iter()
        .flatten()
        .map(|d| Key::new(d.namespace_or(&ns), d.name.clone()))
        .collect()
}

/// The service account a Kustomization acts as for every read and write
/// done on its behalf: `spec.serviceAccountName`, else the controller's
/// default (`--default-service-account`), both in its own namespace, as in
/// Flux; else the reconciler (`--reconciler-service-account`), else none
/// (the controller's own identity).
pub(crate) fn acting_as(ks: &Kustomization, opts: &Options) -> Option<ServiceAccountRef> {
    opts.runtime.tenancy.acting_as(
        &ks.namespace().unwrap_or_default(),
        ks.spec.service_account_name.as_deref(),
    )
}

/// The applier acting for `ks`: impersonating its service account, if it has
/// one (see [`acting_as`]); with `spec.kubeConfig`, on that cluster, as its
/// own account or the default one there.
pub(crate) async fn applier_for(ctx: &Ctx, ks: &Kustomization) -> Result<Applier, RemoteError> {
    if let Some(kube_config) = &ks.spec.kube_config {
        let ns = ks.namespace().unwrap_or_default();
        let tenancy = &ctx.opts.runtime.tenancy;
        let sa = tenancy.acting_as_remote(&ns, ks.spec.service_account_name.as_deref());
        let account = sa.as_ref().map(|a| (a.namespace.as_str(), a.name.as_str()));
        let field_manager = ctx.applier.field_manager();
        return ctx
            .remote
            .applier(&ctx.client, &ns, kube_config, account, field_manager)
            .await;
    }
    match acting_as(ks, &ctx.opts) {
        Some(sa) => ctx
            .applier
            .impersonate(&ctx.config, &sa.namespace, &sa.name)
            .map_err(|e| RemoteError::Invalid(format!("impersonating service account {sa}: {e}"))),
        None => Ok(ctx.applier.clone()),
    }
}

/// With `--no-cross-namespace-refs`, the message for the first reference of
/// `ks` into another namespace (its `sourceRef`, then its `dependsOn`), as
/// Flux words it.
pub(crate) fn cross_namespace_ref(ks: &Kustomization, opts: &Options) -> Option<String> {
    if !opts.runtime.tenancy.no_cross_namespace_refs {
        return None;
    }
    let ns = ks.namespace().unwrap_or_default();
    let blocked = |kind: &str, other_ns: &str, name: &str| {
        format!(
            "can't access '{kind}/{other_ns}/{name}', cross-namespace references have been blocked"
        )
    };
    let source = SourceRef::of(ks);
    if source.namespace != ns {
        return Some(blocked(
            &source.kind.to_string(),
            &source.namespace,
            &source.name,
        ));
    }
    deps_of(ks)
        .into_iter()
        .find(|d| d.namespace != ns)
        .map(|d| blocked(KUSTOMIZATION_KIND, &d.namespace, &d.name))
}

/// With Flux's `ExternalArtifact` feature gate off, the refusal of a source that is one, in
/// kustomize-controller's words.
fn external_artifact_denied(ks: &Kustomization, opts: &Options) -> Option<String> {
    let r = SourceRef::of(ks);
    if r.kind != SourceKind::ExternalArtifact {
        return None;
    }
    opts.runtime
        .tenancy
        .external_artifact_denied(&r.namespace, &r.name)
}

/// The source of `ks` from the controller's caches.
pub(crate) fn lookup_source(ctx: &Ctx, ks: &Kustomization) -> Option<Source> {
    ctx.sources.get(&SourceRef::of(ks))
}

/// The source as the API server has it now, for the start of a reconcile.
///
/// The source event that wakes a Kustomization comes from the
/// controller's own watch, which can be ahead of the reflector store behind
/// [`lookup_source`]. Read from that store, a new artifact could look like the
/// old one (or like none), and the unchanged-fingerprint fast path would then
/// sleep until the next interval. One GET per reconcile (a read, never a write)
/// closes that race; the store is the fallback when the GET fails.
pub(crate) async fn fresh_source(ctx: &Ctx, ks: &Kustomization) -> Option<Source> {
    let r = SourceRef::of(ks);
    if !source::is_supported(&r.kind)
        || cross_namespace_ref(ks, &ctx.opts).is_some()
        || external_artifact_denied(ks, &ctx.opts).is_some()
    {
        return None;
    }
    match source::get(&ctx.client, &r).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(source = %r, "reading the source, using the cache: {e}");
            lookup_source(ctx, ks)
        }
    }
}

/// A Kustomization as the dependsOn graph sees it. `root` is the one being
/// reconciled: a dependency that shares its source must have applied the
/// source's current revision (Flux's rule).
fn node_state(
    ctx: &Ctx,
    k: &Key,
    root: &Key,
    root_ks: &Kustomization,
    root_source: &SourceRef,
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
        let msg = meta::find_condition(ks.conditions(), meta::READY_CONDITION)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        Err(msg)
    } else if SourceRef::of(&ks) == *root_source {
        let current = lookup_source(ctx, &ks).and_then(|s| s.revision().map(str::to_owned));
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
