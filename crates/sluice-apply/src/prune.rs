//! Garbage collection of stale objects (Flux's `ResourceManager.DeleteAll` with the options
//! kustomize-controller passes).

use futures::{StreamExt, stream};
use sluice_api::kustomization::{DISABLED_VALUE, PRUNE_ANNOTATION, RECONCILE_ANNOTATION};

use crate::apply::{Applier, Owner};
use crate::changeset::{Action, ChangeSet, ChangeSetEntry, SkipReason};
use crate::client::{Kube, RequestCounts, Resolution, Resource};
use crate::error::{ObjectError, ObjectErrorKind, PruneError};
use crate::object::{ObjectRef, Stage, flux_order, has_metadata};

/// How to prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// The owning Kustomization: objects whose labels name another owner are left alone.
    pub owner: Owner,
    /// How many objects of one stage are deleted at once.
    pub concurrency: usize,
}

impl PruneOptions {
    /// Defaults for the given owner (8 at once).
    pub fn new(owner: Owner) -> Self {
        Self {
            owner,
            concurrency: 8,
        }
    }
}

/// The outcome of a prune in which every object was deleted or skipped.
#[derive(Clone, Debug)]
pub struct PruneResult {
    /// One entry per object: `deleted` (also when it was already gone) or `skipped`.
    pub change_set: ChangeSet,
    /// The requests made.
    pub requests: RequestCounts,
}

impl Applier {
    /// Deletes stale objects (see [`crate::inventory::stale`]) with background propagation:
    /// the rest first, then `*Class` kinds, then Namespaces, ClusterRoles and CRDs.
    ///
    /// An object is skipped, never deleted, when its live labels do not name `opts.owner`
    /// (it was adopted by another Kustomization or changed hands), or when it is annotated
    /// (or labelled) `kustomize.toolkit.fluxcd.io/prune: disabled` or
    /// `kustomize.toolkit.fluxcd.io/reconcile: disabled`. Objects already gone, including
    /// those whose kind is no longer served, count as deleted. All objects are attempted;
    /// those that could not be deleted are returned in the error, to be kept in the
    /// inventory.
    pub async fn prune(
        &self,
        stale: &[ObjectRef],
        opts: &PruneOptions,
    ) -> Result<PruneResult, PruneError> {
        let kube = self.per_call();
        let mut change_set = ChangeSet::new();
        let mut errors = Vec::new();
        let mut failed = Vec::new();
        for stage in Stage::ALL.iter().rev() {
            let mut objects: Vec<ObjectRef> = stale
                .iter()
                .filter(|o| o.stage() == *stage)
                .cloned()
                .collect();
            objects.sort_by(|a, b| flux_order(b, a));
            let (kube, owner) = (&kube, &opts.owner);
            let outcomes: Vec<(ObjectRef, Result<ChangeSetEntry, ObjectError>)> =
                stream::iter(objects)
                    .map(|o| async move {
                        let outcome = delete_one(kube, &o, owner).await;
                        (o, outcome)
                    })
                    .buffered(opts.concurrency.max(1))
                    .collect()
                    .await;
            for (object, outcome) in outcomes {
                match outcome {
                    Ok(entry) => change_set.add(entry),
                    Err(e) => {
                        change_set.add(ChangeSetEntry::new(object.clone(), Action::Unknown));
                        failed.push(object);
                        errors.push(e);
                    }
                }
            }
        }
        let requests = kube.counters.snapshot();
        if errors.is_empty() {
            Ok(PruneResult {
                change_set,
                requests,
            })
        } else {
            Err(PruneError {
                errors,
                failed,
                change_set,
                requests,
            })
        }
    }
}

async fn delete_one(
    kube: &Kube,
    object: &ObjectRef,
    owner: &Owner,
) -> Result<ChangeSetEntry, ObjectError> {
    let err = |kind| ObjectError::new(object, kind);
    let deleted = || Ok(ChangeSetEntry::new(object.clone(), Action::Deleted));
    let Some(res) = resolve_any_version(kube, object).await.map_err(err)? else {
        // The kind is not served in any version: no such object can exist.
        return deleted();
    };
    let Some(live) = kube
        .get(&res, &object.namespace, &object.name)
        .await
        .map_err(|f| err(ObjectErrorKind::Get(f)))?
    else {
        return deleted();
    };
    let skip = if !owner.owns(&live) {
        Some(SkipReason::NotOwned)
    } else if has_metadata(&live, PRUNE_ANNOTATION, DISABLED_VALUE) {
        Some(SkipReason::PruneDisabled)
    } else if has_metadata(&live, RECONCILE_ANNOTATION, DISABLED_VALUE) {
        Some(SkipReason::ReconcileDisabled)
    } else {
        None
    };
    if let Some(reason) = skip {
        tracing::debug!(object = %object, %reason, "not pruned");
        return Ok(ChangeSetEntry::skipped(object.clone(), reason));
    }
    kube.delete(&res, &object.namespace, &object.name)
        .await
        .map_err(|f| err(ObjectErrorKind::Delete(f)))?;
    deleted()
}

/// The resource of the object's kind in its recorded version or, when that version is no
/// longer served, in another version of its group (preferred first). `None` when the kind is
/// not served at all.
async fn resolve_any_version(
    kube: &Kube,
    object: &ObjectRef,
) -> Result<Option<Resource>, ObjectErrorKind> {
    if let Resolution::Found(res) = kube.resolve(object).await? {
        return Ok(Some(res));
    }
    for version in kube.group_versions(&object.group).await? {
        if version == object.version {
            continue;
        }
        let other = ObjectRef {
            version,
            ..object.clone()
        };
        if let Resolution::Found(res) = kube.resolve(&other).await? {
            return Ok(Some(res));
        }
    }
    Ok(None)
}
