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
    /// What happens to the dependents of a deleted object (its Pods, ReplicaSets, ...).
    pub propagation: Propagation,
}

impl PruneOptions {
    /// Defaults for the given owner (8 at once, background propagation).
    pub fn new(owner: Owner) -> Self {
        Self {
            owner,
            concurrency: 8,
            propagation: Propagation::Background,
        }
    }
}

/// A delete's propagation policy (the API's `propagationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// The object goes at once; the garbage collector deletes its dependents after.
    #[default]
    Background,
    /// The object stays (with the `foregroundDeletion` finalizer) until its dependents are
    /// gone.
    Foreground,
    /// The object goes; its dependents stay, without the owner reference.
    Orphan,
}

impl Propagation {
    pub(crate) fn policy(self) -> kube::api::PropagationPolicy {
        match self {
            Propagation::Background => kube::api::PropagationPolicy::Background,
            Propagation::Foreground => kube::api::PropagationPolicy::Foreground,
            Propagation::Orphan => kube::api::PropagationPolicy::Orphan,
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
            let (kube, owner, propagation) = (&kube, &opts.owner, opts.propagation);
            let outcomes: Vec<(ObjectRef, Result<ChangeSetEntry, ObjectError>)> =
                stream::iter(objects)
                    .map(|o| async move {
                        let outcome = delete_one(kube, &o, owner, propagation).await;
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
    propagation: Propagation,
) -> Result<ChangeSetEntry, ObjectError> {
    match judge(kube, object, owner).await? {
        Verdict::Gone => Ok(ChangeSetEntry::new(object.clone(), Action::Deleted)),
        Verdict::Skip(reason) => {
            tracing::debug!(object = %object, %reason, "not pruned");
            Ok(ChangeSetEntry::skipped(object.clone(), reason))
        }
        Verdict::Delete { res, uid } => {
            delete_judged(kube, object, &res, uid.as_deref(), propagation).await
        }
    }
}

/// What prune decided about one object after reading it.
pub(crate) enum Verdict {
    /// It does not exist (or its kind is not served): nothing to do.
    Gone,
    /// It exists and is left alone.
    Skip(SkipReason),
    /// It is ours and stale: delete exactly this object (the uid read).
    Delete { res: Resource, uid: Option<String> },
}

/// Reads the object and decides whether it may be deleted.
pub(crate) async fn judge(
    kube: &Kube,
    object: &ObjectRef,
    owner: &Owner,
) -> Result<Verdict, ObjectError> {
    let err = |kind| ObjectError::new(object, kind);
    let Some(res) = resolve_any_version(kube, object).await.map_err(err)? else {
        // The kind is not served in any version: no such object can exist.
        return Ok(Verdict::Gone);
    };
    let Some(live) = kube
        .get(&res, &object.namespace, &object.name)
        .await
        .map_err(|f| err(ObjectErrorKind::Get(f)))?
    else {
        return Ok(Verdict::Gone);
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
        return Ok(Verdict::Skip(reason));
    }
    let uid = live
        .pointer("/metadata/uid")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    Ok(Verdict::Delete { res, uid })
}

/// Deletes the object judged stale, with its uid as a precondition: if it was deleted and
/// re-created under the same name in between (another owner, a human), the new object is not
/// touched and the object stays in the inventory for the next run to judge again.
pub(crate) async fn delete_judged(
    kube: &Kube,
    object: &ObjectRef,
    res: &Resource,
    uid: Option<&str>,
    propagation: Propagation,
) -> Result<ChangeSetEntry, ObjectError> {
    let err = |kind| ObjectError::new(object, kind);
    match kube
        .delete(res, &object.namespace, &object.name, uid, propagation)
        .await
    {
        Ok(_) => Ok(ChangeSetEntry::new(object.clone(), Action::Deleted)),
        Err(f) => match uid {
            Some(uid) if f.code == Some(409) => Err(err(ObjectErrorKind::Replaced {
                uid: uid.to_owned(),
            })),
            _ => Err(err(ObjectErrorKind::Delete(f))),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;
    use kube::api::{DeleteParams, PostParams};
    use sluice_testsupport::{TestNamespace, client};

    fn configmap(name: &str, owner: &Owner, value: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": owner.labels()},
            "data": {"v": value},
        }))
        .expect("a ConfigMap")
    }

    /// Against the control plane: the object is judged stale (read, uid A), then deleted and
    /// re-created under the same name (uid B) before the delete is sent. The delete carries
    /// uid A as a precondition, so B survives; judged again, B is deleted.
    #[tokio::test]
    async fn a_delete_never_hits_an_object_recreated_since_it_was_read() {
        let client = client().await;
        let ns = TestNamespace::create(&client, "prune-uid").await;
        let owner = Owner::new("apps", ns.name());
        let api: Api<ConfigMap> = ns.api();
        let first = api
            .create(&PostParams::default(), &configmap("cm", &owner, "1"))
            .await
            .expect("create");
        let applier = Applier::new(client.clone());
        let kube = applier.per_call();
        let object = ObjectRef::from_api_version("v1", "ConfigMap", ns.name(), "cm");

        let Verdict::Delete { res, uid } = judge(&kube, &object, &owner).await.expect("judge")
        else {
            panic!("an owned stale object is to be deleted");
        };
        assert_eq!(uid, first.metadata.uid);

        api.delete("cm", &DeleteParams::default())
            .await
            .expect("delete");
        let second = api
            .create(&PostParams::default(), &configmap("cm", &owner, "2"))
            .await
            .expect("re-create");
        assert_ne!(second.metadata.uid, first.metadata.uid);

        let err = delete_judged(
            &kube,
            &object,
            &res,
            uid.as_deref(),
            Propagation::Background,
        )
        .await
        .expect_err("the precondition must fail");
        assert!(
            matches!(err.kind, ObjectErrorKind::Replaced { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("replaced by a new object"),
            "{err}"
        );
        let live = api.get_opt("cm").await.expect("get").expect("still there");
        assert_eq!(live.metadata.uid, second.metadata.uid);

        // The next run judges the new object afresh: it is ours and stale, so it goes.
        let Verdict::Delete { res, uid } = judge(&kube, &object, &owner).await.expect("judge")
        else {
            panic!("still ours");
        };
        assert_eq!(uid, second.metadata.uid);
        delete_judged(
            &kube,
            &object,
            &res,
            uid.as_deref(),
            Propagation::Background,
        )
        .await
        .expect("delete with the right uid");
        assert!(api.get_opt("cm").await.expect("get").is_none());
        ns.delete().await;
    }
}
