//! Helm's actions on a cluster, as Helm v4 performs them with server-side apply, split where
//! Helm waits: each action writes its new revision `pending-*`, applies, and returns; the
//! caller waits for readiness however it likes (the controller without holding a worker) and
//! then [`complete`]s the revision, `deployed` or `failed`, superseding the one it replaces.
//!
//! - [`install`]: revision 1 (or the next after an uninstalled, kept history), `pending-install`.
//! - [`upgrade`]: the next revision, `pending-upgrade`; objects the new manifest no longer has
//!   are deleted (not those annotated `helm.sh/resource-policy: keep`).
//! - [`rollback`]: a new revision with an earlier revision's chart, values and manifest,
//!   `pending-rollback`, described `Rollback to N`.
//! - [`uninstall`]: the release's objects deleted, its records deleted or (with
//!   `keep_history`) kept as `uninstalled`.
//! - [`unlock`]: an interrupted revision (`pending-*` after a crash) marked `failed`, so the next
//!   action can run: never "another operation is in progress" forever.
//!
//! Objects get Helm's ownership metadata (`app.kubernetes.io/managed-by: Helm`,
//! `meta.helm.sh/release-name`, `meta.helm.sh/release-namespace`) and the HelmRelease's labels
//! (`helm.toolkit.fluxcd.io/name`, `/namespace`), and are applied with helm-controller's field
//! manager, so a release moves between Flux and sluice without conflicts. The chart's hooks run
//! as Helm runs them ([`crate::hooks`]): `pre-*` before the apply, `post-*` in [`complete`] once
//! the wait succeeded, unless disabled; a failed hook fails the revision with Helm's message.
//!
//! Objects that exist in the cluster without being the release's are adopted (Helm's
//! `TakeOwnership`, helm-controller's default) unless `take_ownership` is off: then Helm's
//! ownership check refuses them before anything is recorded. With `cleanup_on_fail` a failed
//! upgrade or rollback deletes the objects it created ([`cleanup`]), as Helm's `--cleanup-on-fail`.

use serde_json::Value;
use sluice_apply::{Applier, ApplyOptions, ApplyResult, ObjectRef, Owner, PruneOptions};
use sluice_helm::chart::Chart;
use sluice_helm::release::{NewRevision, Release, Status};
use sluice_kustomize::yaml::Map as YMap;

use crate::storage::{Storage, StorageError};

/// The field manager Flux's helm-controller applies with.
pub const FIELD_MANAGER: &str = "helm-controller";
/// Helm's label marking an object as a release's.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Helm's annotation naming the release of an object.
pub const RELEASE_NAME_ANNOTATION: &str = "meta.helm.sh/release-name";
/// Helm's annotation naming the namespace of the release of an object.
pub const RELEASE_NAMESPACE_ANNOTATION: &str = "meta.helm.sh/release-namespace";
/// Helm's annotation keeping an object when its release no longer has it.
pub const RESOURCE_POLICY_ANNOTATION: &str = "helm.sh/resource-policy";

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The records could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The manifest could not be read.
    #[error("{0}")]
    Manifest(String),
    /// A hook failed (the revision is recorded `failed`).
    #[error("{0}")]
    Hook(String),
    /// Applying failed (the revision is recorded `failed`).
    #[error("{0}")]
    Apply(String),
    /// Deleting failed.
    #[error("{0}")]
    Delete(String),
    /// There is nothing to act on.
    #[error("{0}")]
    NotFound(String),
    /// The release name or an object is taken (nothing was recorded).
    #[error("{0}")]
    Conflict(String),
}

/// What every action needs.
pub struct Context<'a> {
    pub applier: &'a Applier,
    pub storage: &'a Storage,
    /// The HelmRelease whose labels go on every object.
    pub owner: Owner,
    /// `spec.commonMetadata`.
    pub common_labels: std::collections::BTreeMap<String, String>,
    pub common_annotations: std::collections::BTreeMap<String, String>,
    /// `spec.maxHistory` (0: keep all).
    pub max_history: i64,
    /// Now, as Go writes times in records (RFC 3339, nanoseconds) and as Unix seconds.
    pub now: &'a str,
    pub now_unix: i64,
    /// Skip the chart's hooks (`disableHooks`).
    pub disable_hooks: bool,
    /// The time each hook may take.
    pub hook_timeout: std::time::Duration,
}

impl Context<'_> {
    fn hooks(&self) -> crate::hooks::Runner<'_> {
        crate::hooks::Runner {
            applier: self.applier,
            storage: self.storage,
            field_manager: FIELD_MANAGER,
            timeout: self.hook_timeout,
            poll: std::time::Duration::from_millis(500),
            now_unix: self.now_unix,
        }
    }

    /// Runs the hooks of `event` unless hooks are disabled.
    async fn run_hooks(&self, release: &mut Release, event: &str) -> Result<(), String> {
        if self.disable_hooks {
            return Ok(());
        }
        self.hooks().run(release, event).await
    }
}

/// A chart and its values for a release.
pub struct Desired<'a> {
    /// The release name (already shortened) and namespace.
    pub name: &'a str,
    pub namespace: &'a str,
    pub chart: &'a Chart,
    /// The values the user gave (recorded as the release's `config`).
    pub values: &'a YMap,
    /// Rendering options other than name, namespace, revision and upgrade (capabilities,
    /// schema validation).
    pub render: &'a sluice_helm::render::Options,
    /// What to do with the chart's `crds/` (Flux: `Create` on install, `Skip` on upgrade).
    pub crds: CrdsPolicy,
    /// Adopt objects that exist without Helm's ownership metadata (`!disableTakeOwnership`).
    pub take_ownership: bool,
    /// Install over a kept history whose last revision is uninstalled or failed (`replace`).
    pub replace: bool,
    /// Delete what a failed apply created (`upgrade.cleanupOnFail`).
    pub cleanup_on_fail: bool,
}

/// What an install or upgrade does with the chart's `crds/` directory (Flux's `crds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdsPolicy {
    /// Leave them.
    Skip,
    /// Create the missing ones, never change existing ones.
    Create,
    /// Create the missing ones and update existing ones.
    CreateReplace,
}

/// A revision written `pending-*` and applied: [`complete`] it after the wait.
pub struct Pending {
    pub release: Release,
    /// What the apply did (its inventory is the release's objects).
    pub applied: ApplyResult,
    /// Earlier revisions the action marked superseded (an uninstalled one replaced by an
    /// install), as stored now.
    pub superseded: Vec<Release>,
}

impl Pending {
    /// The objects the apply created (what `cleanup_on_fail` deletes when the revision fails).
    pub fn created(&self) -> Vec<ObjectRef> {
        created(&self.applied.change_set)
    }
}

fn created(change_set: &sluice_apply::ChangeSet) -> Vec<ObjectRef> {
    change_set
        .entries
        .iter()
        .filter(|e| e.action == sluice_apply::Action::Created)
        .map(|e| e.object.clone())
        .collect()
}

/// Installs the release: revision 1, or with `replace` the next after a kept history whose last
/// revision is uninstalled or failed (an uninstalled one is marked superseded, as Helm does).
pub async fn install(ctx: &Context<'_>, desired: &Desired<'_>) -> Result<Pending, ActionError> {
    let last = ctx.storage.last(desired.name).await?;
    let version = match &last {
        None => 1,
        Some(l)
            if desired.replace && matches!(l.status(), Status::Uninstalled | Status::Failed) =>
        {
            l.version + 1
        }
        Some(_) => {
            return Err(ActionError::Conflict(
                "cannot reuse a name that is still in use".into(),
            ));
        }
    };
    let (release, crds) = new_revision(
        ctx,
        desired,
        version,
        ctx.now,
        Status::PendingInstall,
        "Initial install underway",
    )?;
    if !desired.take_ownership {
        let objects = manifest_objects(ctx.applier, &release.manifest, &release.namespace).await?;
        ownership_conflicts(ctx, &objects, &release)
            .await
            .map_err(|e| ActionError::Conflict(format!("unable to continue with install: {e}")))?;
    }
    let mut superseded = Vec::new();
    if let Some(mut last) = last.filter(|l| l.status() != Status::Failed) {
        if let Some(i) = last.info.as_mut() {
            i.status = Status::Superseded.as_str().into();
            i.description = "superseded by new release".into();
        }
        ctx.storage.update(&last, ctx.now_unix).await?;
        superseded.push(last);
    }
    ctx.storage
        .create(&release, ctx.max_history, ctx.now_unix)
        .await?;
    let crds = (crds, desired.crds);
    let mut pending = apply_recorded(ctx, release, None, crds, "pre-install", false).await?;
    pending.superseded = superseded;
    Ok(pending)
}

/// Upgrades from `current` (the last revision) to a new one.
pub async fn upgrade(
    ctx: &Context<'_>,
    desired: &Desired<'_>,
    current: &Release,
) -> Result<Pending, ActionError> {
    let first = current
        .info
        .as_ref()
        .and_then(|i| i.first_deployed.clone())
        .unwrap_or_else(|| ctx.now.to_owned());
    let mut opts = desired.render.clone();
    opts.is_upgrade = true;
    let desired = Desired {
        render: &opts,
        ..*desired
    };
    let (release, crds) = new_revision(
        ctx,
        &desired,
        current.version + 1,
        &first,
        Status::PendingUpgrade,
        "Preparing upgrade",
    )?;
    if !desired.take_ownership {
        // Only what the current revision does not have yet is checked, as Helm does.
        let old = manifest_objects(ctx.applier, &current.manifest, &current.namespace).await?;
        let old: std::collections::HashSet<ObjectRef> =
            old.iter().filter_map(|o| object_ref(o).ok()).collect();
        let mut new = manifest_objects(ctx.applier, &release.manifest, &release.namespace).await?;
        new.retain(|o| object_ref(o).is_ok_and(|r| !old.contains(&r)));
        ownership_conflicts(ctx, &new, &release)
            .await
            .map_err(|e| ActionError::Conflict(format!("unable to continue with update: {e}")))?;
    }
    ctx.storage
        .create(&release, ctx.max_history, ctx.now_unix)
        .await?;
    let crds = (crds, desired.crds);
    apply_recorded(
        ctx,
        release,
        Some(current),
        crds,
        "pre-upgrade",
        desired.cleanup_on_fail,
    )
    .await
}

/// Rolls back to `target` (an earlier revision) from `current` (the last one); with
/// `cleanup_on_fail` a failed apply deletes what it created.
pub async fn rollback(
    ctx: &Context<'_>,
    target: &Release,
    current: &Release,
    cleanup_on_fail: bool,
) -> Result<Pending, ActionError> {
    let mut release = target.clone();
    release.version = current.version + 1;
    release.hooks.clone_from(&target.hooks);
    let info = release.info.get_or_insert_with(Default::default);
    info.first_deployed = current.info.as_ref().and_then(|i| i.first_deployed.clone());
    info.last_deployed = Some(ctx.now.to_owned());
    info.deleted = None;
    info.status = Status::PendingRollback.as_str().into();
    info.description = format!("Rollback to {}", target.version);
    ctx.storage
        .create(&release, ctx.max_history, ctx.now_unix)
        .await?;
    apply_recorded(
        ctx,
        release,
        Some(current),
        (Vec::new(), CrdsPolicy::Skip),
        "pre-rollback",
        cleanup_on_fail,
    )
    .await
}

/// Runs the release's `test` hooks, as Helm's `ReleaseTesting` (`helm test`): `filters` name
/// the tests to run (`exclude`: to skip); each hook's run is recorded in the release (the skipped
/// hooks first, as Helm leaves them). The error is the first failed test's, in Helm's words.
pub async fn test(
    ctx: &Context<'_>,
    release: &mut Release,
    filters: &[(String, bool)],
    timeout: std::time::Duration,
) -> Result<(), String> {
    let excluded: Vec<&str> = filters
        .iter()
        .filter(|(_, exclude)| *exclude)
        .map(|(n, _)| n.as_str())
        .collect();
    let included: Vec<&str> = filters
        .iter()
        .filter(|(_, exclude)| !*exclude)
        .map(|(n, _)| n.as_str())
        .collect();
    let mut skipped = Vec::new();
    let mut running = Vec::new();
    for h in std::mem::take(&mut release.hooks) {
        if excluded.contains(&h.name.as_str())
            || (!included.is_empty() && !included.contains(&h.name.as_str()))
        {
            skipped.push(h);
        } else {
            running.push(h);
        }
    }
    release.hooks = running;
    let runner = crate::hooks::Runner {
        timeout,
        ..ctx.hooks()
    };
    let outcome = runner.run(release, "test").await;
    skipped.append(&mut release.hooks);
    release.hooks = skipped;
    ctx.storage
        .update(release, ctx.now_unix)
        .await
        .map_err(|e| e.to_string())?;
    outcome
}

/// Helm's upgrade with `ReuseValues` (Flux's `upgrade.preserveValues`): the values given
/// coalesced over `current`'s config, and the chart's defaults replaced by `current`'s chart
/// values coalesced with its config (Helm stores charts without their subcharts, so that is
/// the top level only).
pub fn preserve_values(current: &Release, chart: &Chart, values: &YMap) -> (Chart, YMap) {
    let old_defaults = current
        .chart
        .as_ref()
        .and_then(|c| c.values.clone())
        .unwrap_or_default();
    let old = sluice_helm::values::coalesce_tables(current.config.clone(), old_defaults);
    let values = sluice_helm::values::coalesce_tables(values.clone(), current.config.clone());
    let mut chart = chart.clone();
    chart.values_yaml = Some(sluice_helm::values::encode_values(&old).into_bytes());
    (chart, values)
}

/// Deletes what a failed action created (Helm's cleanup on fail, background propagation); the
/// error names what could not be deleted.
pub async fn cleanup(ctx: &Context<'_>, created: &[ObjectRef]) -> Result<(), String> {
    if created.is_empty() {
        return Ok(());
    }
    ctx.applier
        .prune(created, &PruneOptions::new(ctx.owner.clone()))
        .await
        .map(drop)
        .map_err(|e| format!("unable to cleanup resources: {e}"))
}

/// Helm's wording when the cleanup after a failed `action` failed too.
pub fn cleanup_failure(action: &str, original: &str, cleanup: &str) -> String {
    match action {
        "rollback" => format!(
            "an error occurred while cleaning up resources. original rollback error: {cleanup}"
        ),
        _ => format!(
            "an error occurred while cleaning up resources. original upgrade error: {original}: \
             {cleanup}"
        ),
    }
}

/// Records how a pending revision ended: after a successful wait its `post-*` hooks run, then
/// it is `deployed` (and the revision it replaced `superseded`); on a failure it is `failed`,
/// described as Helm describes it.
pub async fn complete(
    ctx: &Context<'_>,
    mut release: Release,
    outcome: Result<(), String>,
) -> Result<Completed, ActionError> {
    let mut superseded = Vec::new();
    let pending = release.status();
    let post = match pending {
        Status::PendingInstall => "post-install",
        Status::PendingUpgrade => "post-upgrade",
        _ => "post-rollback",
    };
    let outcome = match outcome {
        Ok(()) => ctx
            .run_hooks(&mut release, post)
            .await
            .map_err(|e| hook_failure(post, &e)),
        failed => failed,
    };
    let info = release.info.get_or_insert_with(Default::default);
    match outcome {
        Ok(()) => {
            // Every earlier deployed revision is superseded (Helm's upgrade and rollback). The
            // records' labels say which those are: only they are read and rewritten.
            for entry in ctx.storage.entries(&release.name).await? {
                if entry.version == release.version || entry.status != Status::Deployed {
                    continue;
                }
                let Some(mut earlier) = ctx.storage.get(&release.name, entry.version).await? else {
                    continue;
                };
                if earlier.status() == Status::Deployed {
                    if let Some(i) = earlier.info.as_mut() {
                        i.status = Status::Superseded.as_str().into();
                        i.description = "Superseded".into();
                    }
                    ctx.storage.update(&earlier, ctx.now_unix).await?;
                    superseded.push(earlier);
                }
            }
            info.status = Status::Deployed.as_str().into();
            info.description = match pending {
                Status::PendingInstall => "Install complete".into(),
                Status::PendingUpgrade => "Upgrade complete".into(),
                _ => info.description.clone(),
            };
        }
        Err(message) => {
            info.status = Status::Failed.as_str().into();
            info.description = match pending {
                Status::PendingInstall => {
                    format!("Release {:?} failed: {message}", release.name)
                }
                Status::PendingUpgrade => {
                    format!("Upgrade {:?} failed: {message}", release.name)
                }
                _ => format!("Rollback {:?} failed: {message}", release.name),
            };
        }
    }
    ctx.storage.update(&release, ctx.now_unix).await?;
    Ok(Completed {
        release,
        superseded,
    })
}

/// A revision completed, and the earlier revisions it superseded (as stored now).
pub struct Completed {
    pub release: Release,
    pub superseded: Vec<Release>,
}

/// Marks an interrupted (`pending-*`) revision failed, as helm-controller's unlock.
pub async fn unlock(ctx: &Context<'_>, mut release: Release) -> Result<Release, ActionError> {
    let status = release.status();
    if !status.is_pending() {
        return Ok(release);
    }
    let info = release.info.get_or_insert_with(Default::default);
    info.status = Status::Failed.as_str().into();
    info.description = format!("Release unlocked from stale '{}' state", status.as_str());
    ctx.storage.update(&release, ctx.now_unix).await?;
    Ok(release)
}

/// How an uninstall goes (`spec.uninstall`).
#[derive(Clone, Debug, Default)]
pub struct UninstallOptions {
    /// Keep the records, the last marked `uninstalled` (`keepHistory`).
    pub keep_history: bool,
    /// The deletes' propagation policy (`deletionPropagation`).
    pub propagation: sluice_apply::Propagation,
    /// Wait this long for the deleted objects to be gone (Helm's default; `None` with
    /// `disableWait`).
    pub wait: Option<std::time::Duration>,
}

/// Uninstalls `release` as Helm does: `pre-delete` hooks, its objects deleted (not those Helm
/// is told to keep) with the propagation asked for, the wait for them to be gone, `post-delete`
/// hooks, then its records deleted or (with `keep_history`) the last one marked
/// `uninstalled`. A failed wait or `post-delete` hook does not stop the uninstall; it is
/// reported after it, in Helm's words (`uninstallation completed with 1 error(s): …`).
pub async fn uninstall(
    ctx: &Context<'_>,
    release: &Release,
    opts: &UninstallOptions,
) -> Result<Option<Release>, ActionError> {
    let mut release = release.clone();
    ctx.run_hooks(&mut release, "pre-delete")
        .await
        .map_err(ActionError::Hook)?;
    let objects = manifest_objects(ctx.applier, &release.manifest, &release.namespace).await?;
    let doomed: Vec<ObjectRef> = objects
        .iter()
        .filter(|o| !kept(o))
        .filter_map(|o| object_ref(o).ok())
        .collect();
    let prune = PruneOptions {
        propagation: opts.propagation,
        ..PruneOptions::new(ctx.owner.clone())
    };
    let deleted = ctx
        .applier
        .prune(&doomed, &prune)
        .await
        .map_err(|e| ActionError::Delete(e.to_string()))?;
    let mut errors = Vec::new();
    if let Some(timeout) = opts.wait {
        let gone: Vec<ObjectRef> = deleted
            .change_set
            .entries
            .iter()
            .filter(|e| e.action == sluice_apply::Action::Deleted)
            .map(|e| e.object.clone())
            .collect();
        if let Err(e) = wait_deleted(ctx, &gone, timeout).await {
            errors.push(e);
        }
    }
    if let Err(e) = ctx.run_hooks(&mut release, "post-delete").await {
        errors.push(e);
    }
    let history = ctx.storage.entries(&release.name).await?;
    let kept_record = if opts.keep_history {
        let mut last = release;
        let info = last.info.get_or_insert_with(Default::default);
        info.status = Status::Uninstalled.as_str().into();
        info.description = "Uninstallation complete".into();
        info.deleted = Some(ctx.now.to_owned());
        ctx.storage.update(&last, ctx.now_unix).await?;
        Some(last)
    } else {
        for r in history {
            ctx.storage.delete(&release.name, r.version).await?;
        }
        None
    };
    if !errors.is_empty() {
        return Err(ActionError::Delete(format!(
            "uninstallation completed with {} error(s): {}",
            errors.len(),
            errors.join("; ")
        )));
    }
    Ok(kept_record)
}

/// Waits until every object is gone (helm-controller's `WaitForTermination`, polled every
/// half second instead of every two), worded as it words a timeout.
async fn wait_deleted(
    ctx: &Context<'_>,
    objects: &[ObjectRef],
    timeout: std::time::Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    for o in objects {
        loop {
            match ctx.applier.get(o).await {
                Ok(None) => break,
                Ok(Some(_)) => {}
                Err(e) => return Err(format!("{} termination timeout: {e}", o.subject())),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{} termination timeout: context deadline exceeded",
                    o.subject()
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

fn new_revision(
    ctx: &Context<'_>,
    desired: &Desired<'_>,
    version: i64,
    first_deployed: &str,
    status: Status,
    description: &str,
) -> Result<(Release, Vec<CrdFile>), ActionError> {
    let mut opts = desired.render.clone();
    opts.release_name = desired.name.to_owned();
    opts.namespace = desired.namespace.to_owned();
    opts.revision = version;
    let rendered = sluice_helm::render::render(desired.chart, desired.values, &opts)
        .map_err(|e| ActionError::Manifest(e.to_string()))?;
    let mut crds = Vec::new();
    if desired.crds != CrdsPolicy::Skip {
        for (path, data) in &rendered.crds {
            crds.push(CrdFile::read(path, data)?);
        }
    }
    let release = Release::new_revision(NewRevision {
        name: desired.name,
        namespace: desired.namespace,
        version,
        chart: desired.chart,
        rendered: &rendered,
        config: desired.values.clone(),
        first_deployed,
        last_deployed: ctx.now,
        status,
        description,
        apply_method: "ssa",
    });
    Ok((release, crds))
}

/// One file of a chart's `crds/`, checked when the revision is made and parsed again only when
/// it is applied: its bytes are the chart's own, shared, and parsed objects take several times
/// the room of their text (kube-prometheus-stack's 4.3 MB of CRDs are 8 MiB parsed).
#[derive(Debug)]
struct CrdFile {
    path: String,
    data: sluice_helm::chart::Data,
}

impl CrdFile {
    fn read(path: &str, data: &sluice_helm::chart::Data) -> Result<Self, ActionError> {
        let file = Self {
            path: path.to_owned(),
            data: data.clone(),
        };
        file.objects()?;
        Ok(file)
    }

    fn objects(&self) -> Result<Vec<Value>, ActionError> {
        let bytes = self.data.bytes();
        let text = String::from_utf8_lossy(&bytes);
        let docs = sluice_kustomize::yaml::parse_manifests(&text).map_err(|e| {
            ActionError::Manifest(format!("failed to install CRD {}: {e}", self.path))
        })?;
        Ok(docs
            .iter()
            .map(sluice_render::pipeline::to_json)
            .filter(Value::is_object)
            .collect())
    }
}

/// Helm's wording of a failed hook of `event`, as the action reports it.
fn hook_failure(event: &str, error: &str) -> String {
    match event {
        "pre-install" | "post-install" => format!("failed {event}: {error}"),
        "pre-upgrade" | "post-upgrade" => format!("{event} hooks failed: {error}"),
        _ => error.to_owned(),
    }
}

/// Applies the chart's CRDs as the policy says, runs the `pre` hooks of a recorded pending
/// revision and applies it; a failure records the revision `failed`.
async fn apply_recorded(
    ctx: &Context<'_>,
    mut release: Release,
    previous: Option<&Release>,
    crds: (Vec<CrdFile>, CrdsPolicy),
    pre: &str,
    cleanup_on_fail: bool,
) -> Result<Pending, ActionError> {
    let outcome = match apply_crds(ctx, crds.0, crds.1).await {
        Err(e) => Err((e, Vec::new())),
        Ok(()) => match ctx.run_hooks(&mut release, pre).await {
            Err(e) => Err((ActionError::Hook(hook_failure(pre, &e)), Vec::new())),
            Ok(()) => apply_manifest(ctx, &release, previous).await,
        },
    };
    match outcome {
        Ok(applied) => Ok(Pending {
            release,
            applied,
            superseded: Vec::new(),
        }),
        Err((e, created)) => {
            complete(ctx, release, Err(e.to_string())).await?;
            if cleanup_on_fail && let Err(c) = cleanup(ctx, &created).await {
                let action = if pre == "pre-rollback" {
                    "rollback"
                } else {
                    "upgrade"
                };
                return Err(ActionError::Apply(cleanup_failure(
                    action,
                    &e.to_string(),
                    &c,
                )));
            }
            Err(e)
        }
    }
}

/// Helm's ownership check of objects a revision would create: one that exists without this
/// release's `managed-by` label and release annotations is refused, each problem named.
async fn ownership_conflicts(
    ctx: &Context<'_>,
    objects: &[Value],
    release: &Release,
) -> Result<(), String> {
    for o in objects {
        let r = object_ref(o)?;
        let Some(live) = ctx.applier.get(&r).await.map_err(|e| {
            format!(
                "could not get information about the resource {}: {e}",
                resource_string(&r)
            )
        })?
        else {
            continue;
        };
        let meta = |field: &str, key: &str| {
            live.pointer(&format!("/metadata/{field}/{}", key.replace('/', "~1")))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut problems = Vec::new();
        let checks = [
            ("labels", "label", MANAGED_BY_LABEL, "Helm"),
            (
                "annotations",
                "annotation",
                RELEASE_NAME_ANNOTATION,
                release.name.as_str(),
            ),
            (
                "annotations",
                "annotation",
                RELEASE_NAMESPACE_ANNOTATION,
                release.namespace.as_str(),
            ),
        ];
        for (field, what, key, want) in checks {
            match meta(field, key) {
                None => problems.push(format!(
                    "{what} validation error: missing key {key:?}: must be set to {want:?}"
                )),
                Some(v) if v != want => problems.push(format!(
                    "{what} validation error: key {key:?} must equal {want:?}: current value is {v:?}"
                )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "{} exists and cannot be imported into the current release: invalid ownership \
                 metadata; {}",
                resource_string(&r),
                problems.join("; ")
            ));
        }
    }
    Ok(())
}

/// Helm's `resourceString`: `Kind "name" in namespace "ns"`.
fn resource_string(r: &ObjectRef) -> String {
    format!("{} {:?} in namespace {:?}", r.kind, r.name, r.namespace)
}

/// The chart's `crds/`: created when missing; with `CreateReplace` updated too (Helm never
/// deletes them). One file at a time, as Helm creates them, so that only one file's objects
/// are held parsed; a failure names the file, and what earlier files created stays.
async fn apply_crds(
    ctx: &Context<'_>,
    files: Vec<CrdFile>,
    policy: CrdsPolicy,
) -> Result<(), ActionError> {
    for file in files {
        let mut wanted = Vec::new();
        for crd in file.objects()? {
            if policy == CrdsPolicy::Create {
                let r = object_ref(&crd).map_err(ActionError::Manifest)?;
                if ctx
                    .applier
                    .get(&r)
                    .await
                    .map_err(|e| ActionError::Apply(e.to_string()))?
                    .is_some()
                {
                    continue;
                }
            }
            wanted.push(crd);
        }
        if wanted.is_empty() {
            continue;
        }
        ctx.applier
            .apply(wanted, &ApplyOptions::new(ctx.owner.clone()))
            .await
            .map_err(|e| ActionError::Apply(format!("failed to install CRD {}: {e}", file.path)))?;
    }
    Ok(())
}

/// Applies a revision's manifest and deletes what the previous one had and it has not; a
/// failure comes with what was created before it.
async fn apply_manifest(
    ctx: &Context<'_>,
    release: &Release,
    previous: Option<&Release>,
) -> Result<ApplyResult, (ActionError, Vec<ObjectRef>)> {
    let mut objects = manifest_objects(ctx.applier, &release.manifest, &release.namespace)
        .await
        .map_err(|e| (e, Vec::new()))?;
    for o in &mut objects {
        own(o, &release.name, &release.namespace);
    }
    let opts = apply_options(ctx);
    let applied = ctx
        .applier
        .apply(objects, &opts)
        .await
        .map_err(|e| (ActionError::Apply(e.to_string()), created(&e.change_set)))?;
    if let Some(previous) = previous {
        let wanted: std::collections::HashSet<ObjectRef> = applied.applied().into_iter().collect();
        let old = manifest_objects(ctx.applier, &previous.manifest, &previous.namespace)
            .await
            .map_err(|e| (e, created(&applied.change_set)))?;
        let gone: Vec<ObjectRef> = old
            .iter()
            .filter(|o| !kept(o))
            .filter_map(|o| object_ref(o).ok())
            .filter(|r| !wanted.contains(r))
            .collect();
        if !gone.is_empty() {
            ctx.applier
                .prune(&gone, &PruneOptions::new(ctx.owner.clone()))
                .await
                .map_err(|e| {
                    (
                        ActionError::Delete(e.to_string()),
                        created(&applied.change_set),
                    )
                })?;
        }
    }
    Ok(applied)
}

fn apply_options(ctx: &Context<'_>) -> ApplyOptions {
    ApplyOptions {
        common_labels: ctx.common_labels.clone(),
        common_annotations: ctx.common_annotations.clone(),
        ..ApplyOptions::new(ctx.owner.clone())
    }
}

/// The objects of `release` as they are applied (Helm's ownership metadata, the owner's labels,
/// the common metadata): what drift detection compares with the cluster.
pub async fn applied_objects(
    ctx: &Context<'_>,
    release: &Release,
) -> Result<Vec<Value>, ActionError> {
    let mut objects = manifest_objects(ctx.applier, &release.manifest, &release.namespace).await?;
    for o in &mut objects {
        own(o, &release.name, &release.namespace);
    }
    crate::drift::desired_objects(objects, &apply_options(ctx)).map_err(ActionError::Manifest)
}

/// The objects of a manifest, each namespaced one in `namespace` unless it names its own (as
/// Helm's client sets it).
async fn manifest_objects(
    applier: &Applier,
    manifest: &str,
    namespace: &str,
) -> Result<Vec<Value>, ActionError> {
    let docs = sluice_kustomize::yaml::parse_manifests(manifest)
        .map_err(|e| ActionError::Manifest(format!("reading the release manifest: {e}")))?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let mut v = sluice_render::pipeline::to_json(&doc);
        if !v.is_object() {
            continue;
        }
        let r = object_ref(&v).map_err(ActionError::Manifest)?;
        if r.namespace.is_empty() {
            let (_, scope) = applier
                .resolve(&r)
                .await
                .map_err(|e| ActionError::Apply(e.to_string()))?;
            if scope == kube::core::discovery::Scope::Namespaced {
                v["metadata"]["namespace"] = Value::String(namespace.to_owned());
            }
        }
        out.push(v);
    }
    Ok(out)
}

pub(crate) fn object_ref(v: &Value) -> Result<ObjectRef, String> {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let r = ObjectRef::from_api_version(
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    );
    if r.kind.is_empty() || r.name.is_empty() || r.version.is_empty() {
        return Err(format!(
            "an object of the manifest lacks apiVersion, kind or metadata.name: {}",
            r.subject()
        ));
    }
    Ok(r)
}

/// Helm's ownership metadata.
pub fn own(v: &mut Value, name: &str, namespace: &str) {
    let meta = &mut v["metadata"];
    if !meta["labels"].is_object() {
        meta["labels"] = Value::Object(Default::default());
    }
    meta["labels"][MANAGED_BY_LABEL] = Value::String("Helm".into());
    if !meta["annotations"].is_object() {
        meta["annotations"] = Value::Object(Default::default());
    }
    meta["annotations"][RELEASE_NAME_ANNOTATION] = Value::String(name.into());
    meta["annotations"][RELEASE_NAMESPACE_ANNOTATION] = Value::String(namespace.into());
}

/// Whether Helm keeps the object when its release no longer has it
/// (`helm.sh/resource-policy: keep`).
pub fn kept(v: &Value) -> bool {
    v.pointer(&format!(
        "/metadata/annotations/{}",
        RESOURCE_POLICY_ANNOTATION.replace('/', "~1")
    ))
    .and_then(Value::as_str)
        == Some("keep")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> YMap {
        sluice_helm::values::parse_values_file(text.as_bytes()).unwrap()
    }

    #[test]
    fn preserved_values_are_helms_reuse_values() {
        let mut current = Release {
            config: map("a: 1\nnested: {x: 1}\n"),
            ..Default::default()
        };
        current.chart = Some(sluice_helm::release::StoredChart {
            values: Some(map("a: 0\nb: 2\n")),
            ..Default::default()
        });
        let chart = Chart {
            values_yaml: Some(b"b: 3\nc: 4\n".to_vec()),
            ..Default::default()
        };
        let (chart, values) = preserve_values(&current, &chart, &map("nested: {z: 2}\n"));
        assert_eq!(
            sluice_helm::values::encode_values(&values),
            "a: 1\nnested:\n  x: 1\n  z: 2\n"
        );
        // The new chart's own defaults give way to the old release's.
        assert_eq!(
            sluice_helm::values::encode_values(&chart.values().unwrap()),
            "a: 1\nb: 2\nnested:\n  x: 1\n"
        );
    }
}
