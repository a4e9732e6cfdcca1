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
}

/// Installs revision `version` (1, or the next after a kept, uninstalled history).
pub async fn install(
    ctx: &Context<'_>,
    desired: &Desired<'_>,
    version: i64,
) -> Result<Pending, ActionError> {
    let (release, crds) = new_revision(
        ctx,
        desired,
        version,
        ctx.now,
        Status::PendingInstall,
        "Initial install underway",
    )?;
    ctx.storage
        .create(&release, ctx.max_history, ctx.now_unix)
        .await?;
    let crds = (crds, desired.crds);
    apply_recorded(ctx, release, None, &crds, "pre-install").await
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
    ctx.storage
        .create(&release, ctx.max_history, ctx.now_unix)
        .await?;
    let crds = (crds, desired.crds);
    apply_recorded(ctx, release, Some(current), &crds, "pre-upgrade").await
}

/// Rolls back to `target` (an earlier revision) from `current` (the last one).
pub async fn rollback(
    ctx: &Context<'_>,
    target: &Release,
    current: &Release,
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
        &(Vec::new(), CrdsPolicy::Skip),
        "pre-rollback",
    )
    .await
}

/// Records how a pending revision ended: after a successful wait its `post-*` hooks run, then
/// it is `deployed` (and the revision it replaced `superseded`); on a failure it is `failed`,
/// described as Helm describes it.
pub async fn complete(
    ctx: &Context<'_>,
    mut release: Release,
    outcome: Result<(), String>,
) -> Result<Release, ActionError> {
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
            // Every earlier deployed revision is superseded (Helm's upgrade and rollback).
            for mut earlier in ctx.storage.history(&release.name).await? {
                if earlier.version != release.version && earlier.status() == Status::Deployed {
                    if let Some(i) = earlier.info.as_mut() {
                        i.status = Status::Superseded.as_str().into();
                        i.description = "Superseded".into();
                    }
                    ctx.storage.update(&earlier, ctx.now_unix).await?;
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
    Ok(release)
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

/// Uninstalls `release`: deletes its objects (not those Helm is told to keep), then deletes its
/// records, or marks the last one `uninstalled` with `keep_history`.
pub async fn uninstall(
    ctx: &Context<'_>,
    release: &Release,
    keep_history: bool,
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
    ctx.applier
        .prune(&doomed, &PruneOptions::new(ctx.owner.clone()))
        .await
        .map_err(|e| ActionError::Delete(e.to_string()))?;
    ctx.run_hooks(&mut release, "post-delete")
        .await
        .map_err(ActionError::Hook)?;
    let history = ctx.storage.history(&release.name).await?;
    if keep_history {
        let mut last = release;
        let info = last.info.get_or_insert_with(Default::default);
        info.status = Status::Uninstalled.as_str().into();
        info.description = "Uninstallation complete".into();
        info.deleted = Some(ctx.now.to_owned());
        ctx.storage.update(&last, ctx.now_unix).await?;
        return Ok(Some(last));
    }
    for r in history {
        ctx.storage.delete(&r.name, r.version).await?;
    }
    Ok(None)
}

fn new_revision(
    ctx: &Context<'_>,
    desired: &Desired<'_>,
    version: i64,
    first_deployed: &str,
    status: Status,
    description: &str,
) -> Result<(Release, Vec<Value>), ActionError> {
    let mut opts = desired.render.clone();
    opts.release_name = desired.name.to_owned();
    opts.namespace = desired.namespace.to_owned();
    opts.revision = version;
    let rendered = sluice_helm::render::render(desired.chart, desired.values, &opts)
        .map_err(|e| ActionError::Manifest(e.to_string()))?;
    let mut crds = Vec::new();
    if desired.crds != CrdsPolicy::Skip {
        for (path, data) in &rendered.crds {
            let text = String::from_utf8_lossy(data);
            let docs = sluice_kustomize::yaml::parse_resources(&text)
                .map_err(|e| ActionError::Manifest(format!("failed to install CRD {path}: {e}")))?;
            crds.extend(
                docs.iter()
                    .map(sluice_render::pipeline::to_json)
                    .filter(Value::is_object),
            );
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
    crds: &(Vec<Value>, CrdsPolicy),
    pre: &str,
) -> Result<Pending, ActionError> {
    let outcome = match apply_crds(ctx, &crds.0, crds.1).await {
        Err(e) => Err(e),
        Ok(()) => match ctx.run_hooks(&mut release, pre).await {
            Err(e) => Err(ActionError::Hook(hook_failure(pre, &e))),
            Ok(()) => apply_manifest(ctx, &release, previous).await,
        },
    };
    match outcome {
        Ok(applied) => Ok(Pending { release, applied }),
        Err(e) => {
            complete(ctx, release, Err(e.to_string())).await?;
            Err(e)
        }
    }
}

/// The chart's `crds/`: created when missing; with `CreateReplace` updated too (Helm never
/// deletes them).
async fn apply_crds(
    ctx: &Context<'_>,
    crds: &[Value],
    policy: CrdsPolicy,
) -> Result<(), ActionError> {
    let mut wanted = Vec::new();
    for crd in crds {
        if policy == CrdsPolicy::Create {
            let r = object_ref(crd).map_err(ActionError::Manifest)?;
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
        wanted.push(crd.clone());
    }
    if wanted.is_empty() {
        return Ok(());
    }
    ctx.applier
        .apply(wanted, &ApplyOptions::new(ctx.owner.clone()))
        .await
        .map(drop)
        .map_err(|e| ActionError::Apply(format!("failed to install CRDs: {e}")))
}

async fn apply_manifest(
    ctx: &Context<'_>,
    release: &Release,
    previous: Option<&Release>,
) -> Result<ApplyResult, ActionError> {
    let mut objects = manifest_objects(ctx.applier, &release.manifest, &release.namespace).await?;
    for o in &mut objects {
        own(o, &release.name, &release.namespace);
    }
    let opts = ApplyOptions {
        common_labels: ctx.common_labels.clone(),
        common_annotations: ctx.common_annotations.clone(),
        ..ApplyOptions::new(ctx.owner.clone())
    };
    let applied = ctx
        .applier
        .apply(objects, &opts)
        .await
        .map_err(|e| ActionError::Apply(e.to_string()))?;
    if let Some(previous) = previous {
        let wanted: std::collections::HashSet<ObjectRef> = applied.applied().into_iter().collect();
        let old = manifest_objects(ctx.applier, &previous.manifest, &previous.namespace).await?;
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
                .map_err(|e| ActionError::Delete(e.to_string()))?;
        }
    }
    Ok(applied)
}

/// The objects of a manifest, each namespaced one in `namespace` unless it names its own (as
/// Helm's client sets it).
async fn manifest_objects(
    applier: &Applier,
    manifest: &str,
    namespace: &str,
) -> Result<Vec<Value>, ActionError> {
    let docs = sluice_kustomize::yaml::parse_resources(manifest)
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
fn own(v: &mut Value, name: &str, namespace: &str) {
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

fn kept(v: &Value) -> bool {
    v.pointer(&format!(
        "/metadata/annotations/{}",
        RESOURCE_POLICY_ANNOTATION.replace('/', "~1")
    ))
    .and_then(Value::as_str)
        == Some("keep")
}
