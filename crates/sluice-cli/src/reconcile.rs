//! `sluice reconcile`, `sluice suspend` and `sluice resume`, as flux does
//! them: the `reconcile.fluxcd.io/requestedAt` annotation, then a wait for
//! `status.lastHandledReconcileAt` and a decided Ready condition.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{ArgAction, Args, Subcommand};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::json;
use sluice_api::helm_release::{ChartRefKind, FORCE_REQUEST_ANNOTATION, RESET_REQUEST_ANNOTATION};
use sluice_api::kustomization::SourceKind;
use sluice_api::meta::{
    CONDITION_TRUE, CONDITION_UNKNOWN, FluxObject, RECONCILE_REQUEST_ANNOTATION,
    RECONCILING_CONDITION, find_condition,
};
use sluice_api::{
    Bucket, GitRepository, HelmChart, HelmRelease, HelmRepository, Kustomization, OCIRepository,
};

use crate::kube_util::{self, FluxKind, not_found_or};
use crate::output::{Log, Spinner};
use crate::{GlobalArgs, Outcome, UserError};

/// Parses `5m`, `90s`, `1h30m`.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    sluice_api::meta::parse_duration(s).map_err(|e| e.to_string())
}

/// `sluice reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    pub target: ReconcileTarget,

    /// How long to wait for the reconciliation.
    #[arg(long, global = true, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// What to reconcile.
#[derive(Debug, Subcommand)]
pub enum ReconcileTarget {
    /// Reconcile a source now.
    #[command(subcommand)]
    Source(SourceTarget),
    /// Reconcile a Kustomization now (with --with-source, its source first).
    #[command(visible_alias = "ks")]
    Kustomization(KustomizationTarget),
    /// Reconcile a HelmRelease now (with --with-source, its chart source first; --force for
    /// a one-off install or upgrade, --reset to zero its failure counts).
    #[command(visible_alias = "hr")]
    Helmrelease(HelmReleaseTarget),
}

/// `reconcile helmrelease`.
#[derive(Debug, Args)]
pub struct HelmReleaseTarget {
    /// The HelmRelease's name.
    pub name: String,
    /// Reconcile its chart source first.
    #[arg(long)]
    pub with_source: bool,
    /// Force a one-off install or upgrade (`reconcile.fluxcd.io/forceAt`).
    #[arg(long)]
    pub force: bool,
    /// Reset the failure counts (`reconcile.fluxcd.io/resetAt`).
    #[arg(long)]
    pub reset: bool,
}

/// A source by kind.
#[derive(Debug, Subcommand)]
pub enum SourceTarget {
    /// A GitRepository: fetch the latest revision.
    Git(NameArgs),
    /// An OCIRepository: pull the artifact its reference selects.
    Oci(NameArgs),
    /// A Bucket: list its objects and download them if they changed.
    Bucket(NameArgs),
    /// A HelmRepository: fetch its index (one of `type: oci` has nothing
    /// to reconcile).
    Helm(NameArgs),
    /// A HelmChart: fetch or build the chart.
    Chart(NameArgs),
}

impl SourceTarget {
    /// The kind and the name.
    fn split(&self) -> (FluxKind, &str) {
        match self {
            SourceTarget::Git(n) => (FluxKind::GitRepository, &n.name),
            SourceTarget::Oci(n) => (FluxKind::OCIRepository, &n.name),
            SourceTarget::Bucket(n) => (FluxKind::Bucket, &n.name),
            SourceTarget::Helm(n) => (FluxKind::HelmRepository, &n.name),
            SourceTarget::Chart(n) => (FluxKind::HelmChart, &n.name),
        }
    }
}

/// A named object.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The object's name.
    pub name: String,
}

/// `reconcile kustomization`.
#[derive(Debug, Args)]
pub struct KustomizationTarget {
    /// The Kustomization's name.
    pub name: String,
    /// Reconcile its source first.
    #[arg(long)]
    pub with_source: bool,
}

/// `sluice suspend` / `sluice resume`.
#[derive(Debug, Args)]
pub struct SuspendArgs {
    #[command(subcommand)]
    pub target: SuspendTarget,

    /// (resume) Wait for the reconciliation that resuming triggers.
    #[arg(long, global = true, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,

    /// (resume) How long to wait.
    #[arg(long, global = true, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// What to suspend or resume.
#[derive(Debug, Subcommand)]
pub enum SuspendTarget {
    /// A source.
    #[command(subcommand)]
    Source(SourceTarget),
    /// A Kustomization.
    #[command(visible_alias = "ks")]
    Kustomization(NameArgs),
    /// A HelmRelease.
    #[command(visible_alias = "hr")]
    Helmrelease(NameArgs),
    /// An Alert (suspended, it sends nothing).
    Alert(NameArgs),
    /// An alert Provider (suspended, nothing is sent to it).
    AlertProvider(NameArgs),
    /// A Receiver (suspended, its webhook answers 503).
    Receiver(NameArgs),
}

/// The outcome of a finished reconciliation.
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// Ready was True.
    pub ready: bool,
    /// The Ready message.
    pub message: String,
    /// The revision (artifact or last applied).
    pub revision: Option<String>,
}

pub(crate) trait Revisioned {
    fn revision(&self) -> Option<String>;
    const DONE: &'static str;
    /// An object no controller reconciles (a HelmRepository of `type:
    /// oci`, as in Flux): there is nothing to request or wait for.
    fn is_static(&self) -> bool {
        false
    }
}

impl Revisioned for GitRepository {
    fn revision(&self) -> Option<String> {
        self.artifact().map(|a| a.revision.clone())
    }
    const DONE: &'static str = "fetched revision";
}

impl Revisioned for OCIRepository {
    fn revision(&self) -> Option<String> {
        self.artifact().map(|a| a.revision.clone())
    }
    const DONE: &'static str = "fetched revision";
}

impl Revisioned for Bucket {
    fn revision(&self) -> Option<String> {
        self.artifact().map(|a| a.revision.clone())
    }
    const DONE: &'static str = "fetched revision";
}

impl Revisioned for HelmRepository {
    fn revision(&self) -> Option<String> {
        self.artifact().map(|a| a.revision.clone())
    }
    const DONE: &'static str = "fetched revision";
    fn is_static(&self) -> bool {
        self.spec.is_oci()
    }
}

impl Revisioned for HelmChart {
    fn revision(&self) -> Option<String> {
        self.artifact().map(|a| a.revision.clone())
    }
    const DONE: &'static str = "fetched revision";
}

impl Revisioned for HelmRelease {
    /// The chart version of the newest release.
    fn revision(&self) -> Option<String> {
        let status = self.status.as_ref()?;
        status
            .history
            .as_ref()
            .and_then(|h| h.first().map(|s| s.chart_version.clone()))
            .or_else(|| status.last_attempted_revision.clone())
    }
    const DONE: &'static str = "applied revision";
}

impl Revisioned for Kustomization {
    fn revision(&self) -> Option<String> {
        self.status.as_ref()?.last_applied_revision.clone()
    }
    const DONE: &'static str = "applied revision";
}

/// Sets `reconcile.fluxcd.io/requestedAt` (and optionally other patch
/// fields), returning the token.
pub(crate) async fn request<K>(
    api: &Api<K>,
    name: &str,
    extra_spec: Option<serde_json::Value>,
) -> Result<String>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let token = kube_util::request_token();
    let mut patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
    if let Some(spec) = extra_spec {
        patch["spec"] = spec;
    }
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| kube_util::user_kube_error(e, &format!("annotating {name}")))?;
    Ok(token)
}

/// Waits until the controller handled `token` and decided Ready for the
/// current generation.
pub(crate) async fn wait_handled<K>(
    api: &Api<K>,
    kind: FluxKind,
    ns: &str,
    name: &str,
    token: &str,
    timeout: Duration,
) -> Result<Reconciled>
where
    K: FluxObject + Revisioned + Clone + DeserializeOwned + Debug,
{
    let start = Instant::now();
    let mut spinner = Spinner::new();
    let mut picked_up = false;
    loop {
        let obj = api
            .get(name)
            .await
            .map_err(|e| not_found_or(e, kind.kind(), ns, name, kind.list_command()))?;
        let handled = obj.last_handled_reconcile_at() == Some(token);
        picked_up |= handled;
        let ready = obj.ready_condition();
        let generation_seen =
            obj.meta().generation.is_none() || obj.observed_generation() == obj.meta().generation;
        if handled
            && generation_seen
            && let Some(c) = ready
            && c.status != CONDITION_UNKNOWN
            // Blocked on a dependency that is itself reconciling: the
            // controller wakes this object once the dependency is Ready.
            && (c.reason != sluice_api::meta::DEPENDENCY_NOT_READY_REASON
                || sluice_api::meta::is_condition_true(obj.conditions(), sluice_api::meta::STALLED_CONDITION))
            && !find_condition(obj.conditions(), RECONCILING_CONDITION).is_some_and(|r| {
                r.status == CONDITION_TRUE && r.reason == sluice_api::meta::PROGRESSING_REASON
            })
        {
            spinner.clear();
            return Ok(Reconciled {
                ready: c.status == CONDITION_TRUE,
                message: c.message.clone(),
                revision: obj.revision(),
            });
        }
        let phase = if !handled {
            "waiting for the controller to pick up the request".to_string()
        } else {
            find_condition(obj.conditions(), RECONCILING_CONDITION)
                .filter(|c| c.status == CONDITION_TRUE)
                .or(ready)
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "reconciling".into())
        };
        spinner.tick(&phase);
        if start.elapsed() >= timeout {
            spinner.clear();
            let mut err = UserError::new(format!(
                "timed out after {} waiting for {} {ns}/{name}: {phase}",
                sluice_api::meta::format_duration(timeout),
                kind.kind()
            ));
            err = if picked_up {
                err.hint(format!(
                    "see why with `sluice why {}/{name} -n {ns}`",
                    kind.kind().to_lowercase()
                ))
            } else {
                err.hint("is the sluice controller running? check with `sluice check`")
            };
            return Err(err.into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Requests a reconciliation of `kind` `ns/name` and waits for its outcome,
/// reported as `flux reconcile` reports it; `announce`: say that the object
/// is annotated (not after `create`, whose object is new).
async fn reconcile_one<K>(
    client: &Client,
    kind: FluxKind,
    ns: &str,
    name: &str,
    timeout: Duration,
    announce: bool,
) -> Result<Reconciled>
where
    K: FluxObject
        + Revisioned
        + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let log = Log::default();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj = api
        .get(name)
        .await
        .map_err(|e| not_found_or(e, kind.kind(), ns, name, kind.list_command()))?;
    if obj.is_static() {
        if announce {
            log.success("reconciliation not supported by the object");
        }
        return Ok(Reconciled {
            ready: true,
            message: String::new(),
            revision: None,
        });
    }
    if obj.is_suspended() {
        let noun = kind.noun();
        return Err(
            UserError::new(format!("{} {ns}/{name} is suspended", kind.kind()))
                .hint(format!(
                    "resume it with `sluice resume {noun} {name} -n {ns}`"
                ))
                .into(),
        );
    }
    if announce {
        log.action(&format!(
            "annotating {} {name} in {ns} namespace",
            kind.kind()
        ));
    }
    let token = request(&api, name, None).await?;
    if announce {
        log.success(&format!("{} annotated", kind.kind()));
    }
    log.waiting(&format!("waiting for {} reconciliation", kind.kind()));
    let done = wait_handled(&api, kind, ns, name, &token, timeout).await?;
    report::<K>(kind, ns, name, &done)?;
    Ok(done)
}

fn report<K: Revisioned>(kind: FluxKind, ns: &str, name: &str, done: &Reconciled) -> Result<()> {
    let log = Log::default();
    if done.ready {
        match &done.revision {
            Some(rev) => log.success(&format!("{} {rev}", K::DONE)),
            None => log.success(&format!("{} reconciliation completed", kind.kind())),
        }
        Ok(())
    } else {
        Err(UserError::new(format!(
            "{} {ns}/{name} reconciliation failed: {}",
            kind.kind(),
            done.message
        ))
        .hint(format!(
            "see the root cause with `sluice why {}/{name} -n {ns}`",
            kind.kind().to_lowercase()
        ))
        .into())
    }
}

/// Runs `sluice reconcile`.
pub async fn run_reconcile(g: &GlobalArgs, args: ReconcileArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    match args.target {
        ReconcileTarget::Source(target) => {
            let (kind, name) = target.split();
            reconcile_source(&client, kind, ns, name, args.timeout).await?;
        }
        ReconcileTarget::Kustomization(t) => {
            if t.with_source {
                let api: Api<Kustomization> = Api::namespaced(client.clone(), ns);
                let ks = api.get(&t.name).await.map_err(|e| {
                    not_found_or(
                        e,
                        "Kustomization",
                        ns,
                        &t.name,
                        FluxKind::Kustomization.list_command(),
                    )
                })?;
                let r = &ks.spec.source_ref;
                let Some(kind) = kustomization_source(&r.kind) else {
                    return Err(UserError::new(format!(
                        "Kustomization {ns}/{}: {}",
                        t.name,
                        not_reconcilable(&r.kind.to_string())
                    ))
                    .into());
                };
                let sns = r.namespace_or(ns).to_string();
                reconcile_source(&client, kind, &sns, &r.name, args.timeout).await?;
            }
            reconcile_one::<Kustomization>(
                &client,
                FluxKind::Kustomization,
                ns,
                &t.name,
                args.timeout,
                true,
            )
            .await?;
        }
        ReconcileTarget::Helmrelease(t) => {
            reconcile_helm_release(&client, ns, &t, args.timeout).await?
        }
    }
    Ok(Outcome::Ok)
}

/// The kind `reconcile kustomization --with-source` reconciles for a Kustomization's
/// `spec.sourceRef.kind` (`None`: a kind sluice does not reconcile).
fn kustomization_source(kind: &SourceKind) -> Option<FluxKind> {
    match kind {
        SourceKind::GitRepository => Some(FluxKind::GitRepository),
        SourceKind::OciRepository => Some(FluxKind::OCIRepository),
        SourceKind::Bucket => Some(FluxKind::Bucket),
        _ => None,
    }
}

/// Why `--with-source` cannot reconcile a source of `kind` first.
fn not_reconcilable(kind: &str) -> String {
    if kind == "ExternalArtifact" {
        "its source is an ExternalArtifact, which the controller that produces it reconciles; \
         reconcile without --with-source"
            .into()
    } else {
        format!("source kind {kind} is not supported by sluice")
    }
}

/// `sluice reconcile helmrelease`: its chart source first with `--with-source`; the force
/// and reset requests set beside the reconcile request, as `flux reconcile hr` does.
async fn reconcile_helm_release(
    client: &Client,
    ns: &str,
    t: &HelmReleaseTarget,
    timeout: Duration,
) -> Result<()> {
    let kind = FluxKind::HelmRelease;
    let api: Api<HelmRelease> = Api::namespaced(client.clone(), ns);
    let hr = api
        .get(&t.name)
        .await
        .map_err(|e| not_found_or(e, "HelmRelease", ns, &t.name, kind.list_command()))?;
    if t.with_source {
        let Some(r) = hr.spec.chart_ref.as_ref() else {
            return Err(UserError::new(format!(
                "HelmRelease {ns}/{}: --with-source needs spec.chartRef",
                t.name
            ))
            .into());
        };
        let source = match r.kind {
            ChartRefKind::OciRepository => FluxKind::OCIRepository,
            ChartRefKind::HelmChart => FluxKind::HelmChart,
            _ => {
                return Err(UserError::new(format!(
                    "HelmRelease {ns}/{}: {}",
                    t.name,
                    not_reconcilable(&r.kind.to_string())
                ))
                .into());
            }
        };
        let sns = r.namespace_or(ns).to_string();
        reconcile_source(client, source, &sns, &r.name, timeout).await?;
    }
    if t.force || t.reset {
        let token = kube_util::request_token();
        let mut annotations = serde_json::Map::new();
        if t.force {
            annotations.insert(FORCE_REQUEST_ANNOTATION.into(), token.clone().into());
        }
        if t.reset {
            annotations.insert(RESET_REQUEST_ANNOTATION.into(), token.into());
        }
        let patch = json!({"metadata": {"annotations": annotations}});
        api.patch(&t.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("annotating {}", t.name)))?;
    }
    reconcile_one::<HelmRelease>(client, kind, ns, &t.name, timeout, true).await?;
    Ok(())
}

/// Reconciles the source `kind` `ns`/`name`.
async fn reconcile_source(
    client: &Client,
    kind: FluxKind,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Reconciled> {
    reconcile_kind(client, kind, ns, name, timeout, true).await
}

/// Reconciles `kind` `ns`/`name` and waits for the outcome (see [`reconcile_one`]).
pub(crate) async fn reconcile_kind(
    client: &Client,
    kind: FluxKind,
    ns: &str,
    name: &str,
    timeout: Duration,
    announce: bool,
) -> Result<Reconciled> {
    let (c, t, a) = (client, timeout, announce);
    match kind {
        FluxKind::GitRepository => reconcile_one::<GitRepository>(c, kind, ns, name, t, a).await,
        FluxKind::OCIRepository => reconcile_one::<OCIRepository>(c, kind, ns, name, t, a).await,
        FluxKind::Bucket => reconcile_one::<Bucket>(c, kind, ns, name, t, a).await,
        FluxKind::HelmRepository => reconcile_one::<HelmRepository>(c, kind, ns, name, t, a).await,
        FluxKind::HelmChart => reconcile_one::<HelmChart>(c, kind, ns, name, t, a).await,
        FluxKind::Kustomization => reconcile_one::<Kustomization>(c, kind, ns, name, t, a).await,
        FluxKind::HelmRelease => reconcile_one::<HelmRelease>(c, kind, ns, name, t, a).await,
    }
}

async fn suspend_one<K>(
    client: &Client,
    kind: FluxKind,
    ns: &str,
    name: &str,
    suspend: bool,
    wait: bool,
    timeout: Duration,
) -> Result<()>
where
    K: FluxObject
        + Revisioned
        + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let log = Log::default();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj = api
        .get(name)
        .await
        .map_err(|e| not_found_or(e, kind.kind(), ns, name, kind.list_command()))?;
    let noun = kind.noun();
    if suspend {
        log.action(&format!("suspending {noun} {name} in {ns} namespace"));
        let patch = json!({"spec": {"suspend": true}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("suspending {noun} {name}")))?;
        log.success(&format!("{noun} suspended"));
        return Ok(());
    }
    log.action(&format!("resuming {noun} {name} in {ns} namespace"));
    let token = request(&api, name, Some(json!({"suspend": null}))).await?;
    log.success(&format!("{noun} resumed"));
    if wait && !obj.is_static() {
        log.waiting(&format!("waiting for {} reconciliation", kind.kind()));
        let done = wait_handled(&api, kind, ns, name, &token, timeout).await?;
        if done.ready {
            log.success(&format!("{} reconciliation completed", kind.kind()));
        }
        report::<K>(kind, ns, name, &done)?;
    }
    Ok(())
}

/// Runs `sluice suspend` (`suspend = true`) or `sluice resume`.
pub async fn run_suspend(g: &GlobalArgs, args: SuspendArgs, suspend: bool) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    use crate::notification::Kind as N;
    let notification = match &args.target {
        SuspendTarget::Alert(n) => Some((N::Alert, n)),
        SuspendTarget::AlertProvider(n) => Some((N::Provider, n)),
        SuspendTarget::Receiver(n) => Some((N::Receiver, n)),
        _ => None,
    };
    if let Some((kind, n)) = notification {
        return crate::notification::run_suspend(g, kind, &n.name, suspend).await;
    }
    let (kind, name) = match &args.target {
        SuspendTarget::Source(target) => target.split(),
        SuspendTarget::Alert(_) | SuspendTarget::AlertProvider(_) | SuspendTarget::Receiver(_) => {
            unreachable!("served above")
        }
        SuspendTarget::Kustomization(n) => (FluxKind::Kustomization, n.name.as_str()),
        SuspendTarget::Helmrelease(n) => (FluxKind::HelmRelease, n.name.as_str()),
    };
    let (wait, timeout) = (args.wait, args.timeout);
    match kind {
        FluxKind::GitRepository => {
            suspend_one::<GitRepository>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
        FluxKind::OCIRepository => {
            suspend_one::<OCIRepository>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
        FluxKind::Bucket => {
            suspend_one::<Bucket>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
        FluxKind::HelmRepository => {
            suspend_one::<HelmRepository>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
        FluxKind::HelmChart => {
            suspend_one::<HelmChart>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
        FluxKind::Kustomization => {
            suspend_one::<Kustomization>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
        FluxKind::HelmRelease => {
            suspend_one::<HelmRelease>(&client, kind, ns, name, suspend, wait, timeout).await?
        }
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_source_reconciles_a_kustomization_s_git_oci_or_bucket_source() {
        let kinds = [
            SourceKind::GitRepository,
            SourceKind::OciRepository,
            SourceKind::Bucket,
            SourceKind::ExternalArtifact,
        ];
        let reconciled: Vec<Option<FluxKind>> = kinds.iter().map(kustomization_source).collect();
        assert_eq!(
            reconciled,
            [
                Some(FluxKind::GitRepository),
                Some(FluxKind::OCIRepository),
                Some(FluxKind::Bucket),
                None
            ]
        );
    }
}
