//! The prune guards (beyond Flux): a build that suddenly renders nothing, or that suddenly
//! lost most of what the Kustomization applied before (a wrong overlay path, a bad merge), must
//! not prune it, unless a human confirms that revision.

use std::collections::BTreeMap;

use sluice_api::kustomization::ResourceInventory;

use crate::object::ObjectRef;

/// Annotation on a Kustomization that confirms one revision's prune when a guard refused it:
/// an empty build ([`EmptyBuildError`]) or a mass deletion ([`MassPruneError`]). Its value must
/// be the revision named in the error (e.g. `main@sha1:0123abcd...`), or that revision's
/// digest alone (`0123abcd...`), so a stale annotation never lets a later, accidental build
/// through.
pub const PRUNE_EMPTY_ANNOTATION: &str = "sluice.dev/prune-empty";

/// Why a prune was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the build produced no objects, but the last applied revision had {previous} ({sample}); \
     refusing to prune them all. If this is intended, annotate the Kustomization with \
     {PRUNE_EMPTY_ANNOTATION}={revision}"
)]
pub struct EmptyBuildError {
    /// How many objects the inventory holds.
    pub previous: usize,
    /// The revision that built empty.
    pub revision: String,
    /// A few inventory ids, to show what would have been deleted.
    pub sample: String,
}

/// Decides whether pruning may go ahead after a build of `revision` that rendered
/// `new_objects` objects, given the inventory of the last apply and the value of the
/// [`PRUNE_EMPTY_ANNOTATION`] on the Kustomization (if any).
///
/// Pruning is refused only when the build is empty, the old inventory is not, and the
/// annotation does not name `revision`.
pub fn check_empty_build(
    old: &ResourceInventory,
    new_objects: usize,
    revision: &str,
    allow: Option<&str>,
) -> Result<(), EmptyBuildError> {
    if new_objects > 0 || old.entries.is_empty() {
        return Ok(());
    }
    if confirmed(allow, revision) {
        return Ok(());
    }
    let previous = old.entries.len();
    let mut sample: Vec<&str> = old.entries.iter().take(3).map(|e| e.id.as_str()).collect();
    if previous > sample.len() {
        sample.push("...");
    }
    let noun = if previous == 1 { "object" } else { "objects" };
    Err(EmptyBuildError {
        previous,
        revision: revision.to_owned(),
        sample: format!("{noun}: {}", sample.join(", ")),
    })
}

/// The mass-deletion guard refuses a prune that would delete at least this many objects ...
pub const MASS_PRUNE_MIN_OBJECTS: usize = 10;

/// ... when they are also more than half of the last applied inventory.
///
/// Why these numbers: an ordinary commit deletes a few objects, or a share of a
/// Kustomization's objects; a build that loses most of them at once is what a wrong `path`, a
/// wrong overlay or a bad merge looks like, and one confirmation per such revision is cheap.
/// Below ten deletions nothing is asked (small Kustomizations are reorganised often, and the
/// harm is bounded); an empty build is refused at any size ([`check_empty_build`]).
pub fn is_mass_prune(previous: usize, stale: usize) -> bool {
    stale >= MASS_PRUNE_MIN_OBJECTS && stale.saturating_mul(2) > previous
}

/// Why a prune that is not an empty build's was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pruning would delete {stale} of the {previous} objects of the last applied revision \
     (the build of {revision} has {built}; {sample}); refusing to prune more than half of them \
     at once. If this is intended, annotate the Kustomization with \
     {PRUNE_EMPTY_ANNOTATION}={revision}"
)]
pub struct MassPruneError {
    /// How many objects the inventory holds.
    pub previous: usize,
    /// How many of them prune would delete.
    pub stale: usize,
    /// How many objects the build has.
    pub built: usize,
    /// The revision built.
    pub revision: String,
    /// A few of the ids that would be deleted.
    pub sample: String,
}

/// A prune refused by one of the guards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneGuardError {
    /// The build is empty.
    #[error(transparent)]
    EmptyBuild(#[from] EmptyBuildError),
    /// The prune would delete most of the inventory.
    #[error(transparent)]
    MassPrune(#[from] MassPruneError),
}

/// Decides whether the prune of `stale` may go ahead after a build of `revision` that rendered
/// `new_objects` objects, given the inventory of the last apply and the value of
/// [`PRUNE_EMPTY_ANNOTATION`] (if any). Refused, unless the annotation names `revision`:
///
/// - an empty build over a non-empty inventory ([`check_empty_build`]);
/// - a prune of at least [`MASS_PRUNE_MIN_OBJECTS`] objects that are more than half of the
///   inventory ([`is_mass_prune`]).
pub fn check_prune(
    old: &ResourceInventory,
    new_objects: usize,
    stale: &[ObjectRef],
    revision: &str,
    allow: Option<&str>,
) -> Result<(), PruneGuardError> {
    check_empty_build(old, new_objects, revision, allow)?;
    let previous = old.entries.len();
    if !is_mass_prune(previous, stale.len()) || confirmed(allow, revision) {
        return Ok(());
    }
    let ids: Vec<String> = crate::inventory::from_objects(stale.iter().take(3))
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut sample = ids.join(", ");
    if stale.len() > ids.len() {
        sample.push_str(", ...");
    }
    Err(MassPruneError {
        previous,
        stale: stale.len(),
        built: new_objects,
        revision: revision.to_owned(),
        sample: format!("to delete: {sample}"),
    }
    .into())
}

fn confirmed(allow: Option<&str>, revision: &str) -> bool {
    allow
        .map(str::trim)
        .is_some_and(|a| !a.is_empty() && allows(a, revision))
}

/// The annotation value from a Kustomization's annotations.
pub fn prune_empty_override(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations?.get(PRUNE_EMPTY_ANNOTATION).map(String::as_str)
}

fn allows(allow: &str, revision: &str) -> bool {
    if allow == revision {
        return true;
    }
    // `main@sha1:abc` or `sha1:abc`: the digest alone also names the revision.
    let digest = revision
        .rsplit_once(':')
        .map(|(_, d)| d)
        .unwrap_or(revision);
    !digest.is_empty() && allow == digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::kustomization::ResourceRef;

    fn inventory(n: usize) -> ResourceInventory {
        ResourceInventory {
            entries: (0..n)
                .map(|i| ResourceRef {
                    id: format!("apps_cm{i}__ConfigMap"),
                    v: "v1".into(),
                })
                .collect(),
        }
    }

    const REV: &str = "main@sha1:0123456789abcdef";

    #[test]
    fn non_empty_builds_and_empty_inventories_pass() {
        assert!(check_empty_build(&inventory(42), 1, REV, None).is_ok());
        assert!(check_empty_build(&inventory(0), 0, REV, None).is_ok());
    }

    #[test]
    fn empty_build_over_non_empty_inventory_is_refused() {
        let err = check_empty_build(&inventory(42), 0, REV, None).unwrap_err();
        assert_eq!(err.previous, 42);
        let msg = err.to_string();
        assert!(
            msg.starts_with("the build produced no objects, but the last applied revision had 42 (objects: apps_cm0__ConfigMap, apps_cm1__ConfigMap, apps_cm2__ConfigMap, ...); refusing to prune them all."),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "annotate the Kustomization with sluice.dev/prune-empty=main@sha1:0123456789abcdef"
            ),
            "{msg}"
        );
        let one = check_empty_build(&inventory(1), 0, REV, None).unwrap_err();
        assert!(
            one.to_string()
                .contains("had 1 (object: apps_cm0__ConfigMap)")
        );
    }

    #[test]
    fn the_annotation_must_name_this_revision() {
        assert!(check_empty_build(&inventory(3), 0, REV, Some(REV)).is_ok());
        assert!(check_empty_build(&inventory(3), 0, REV, Some("0123456789abcdef")).is_ok());
        assert!(check_empty_build(&inventory(3), 0, REV, Some("main@sha1:ffff")).is_err());
        assert!(check_empty_build(&inventory(3), 0, REV, Some("")).is_err());
        assert!(check_empty_build(&inventory(3), 0, REV, Some("true")).is_err());
    }

    fn stale(n: usize) -> Vec<ObjectRef> {
        crate::inventory::list(&inventory(n)).unwrap()
    }

    #[test]
    fn mass_prune_thresholds() {
        // Fewer than ten deletions never ask.
        assert!(!is_mass_prune(12, 9));
        assert!(!is_mass_prune(10, 9));
        // Ten or more that are more than half of the inventory do.
        assert!(is_mass_prune(10, 10));
        assert!(is_mass_prune(19, 10));
        assert!(is_mass_prune(500, 499));
        // Exactly half, or less, does not.
        assert!(!is_mass_prune(20, 10));
        assert!(!is_mass_prune(500, 250));
        assert!(is_mass_prune(500, 251));
        assert!(!is_mass_prune(0, 0));
    }

    #[test]
    fn a_build_that_drops_most_objects_is_refused_until_confirmed() {
        let old = inventory(500);
        let doomed = stale(499);
        let err = check_prune(&old, 1, &doomed, REV, None).unwrap_err();
        let PruneGuardError::MassPrune(m) = &err else {
            panic!("{err:?}")
        };
        assert_eq!((m.previous, m.stale, m.built), (500, 499, 1));
        let msg = err.to_string();
        assert!(
            msg.starts_with("pruning would delete 499 of the 500 objects of the last applied revision (the build of main@sha1:0123456789abcdef has 1; to delete: "),
            "{msg}"
        );
        assert!(
            msg.contains(", ...); refusing to prune more than half"),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "annotate the Kustomization with sluice.dev/prune-empty=main@sha1:0123456789abcdef"
            ),
            "{msg}"
        );
        // The same annotation as the empty-build guard confirms it, for this revision only.
        assert!(check_prune(&old, 1, &doomed, REV, Some(REV)).is_ok());
        assert!(check_prune(&old, 1, &doomed, REV, Some("0123456789abcdef")).is_ok());
        assert!(check_prune(&old, 1, &doomed, REV, Some("main@sha1:ffff")).is_err());
    }

    #[test]
    fn ordinary_prunes_pass_and_empty_builds_are_still_refused() {
        assert!(check_prune(&inventory(500), 450, &stale(50), REV, None).is_ok());
        assert!(check_prune(&inventory(8), 1, &stale(7), REV, None).is_ok());
        assert!(check_prune(&inventory(0), 0, &[], REV, None).is_ok());
        let err = check_prune(&inventory(3), 0, &stale(3), REV, None).unwrap_err();
        assert!(matches!(err, PruneGuardError::EmptyBuild(_)), "{err:?}");
        assert!(check_prune(&inventory(3), 0, &stale(3), REV, Some(REV)).is_ok());
        // An empty build confirmed with the annotation is not stopped again by the
        // mass-deletion guard.
        assert!(check_prune(&inventory(300), 0, &stale(300), REV, Some(REV)).is_ok());
    }

    #[test]
    fn override_is_read_from_annotations() {
        let annotations: BTreeMap<String, String> =
            [(PRUNE_EMPTY_ANNOTATION.to_owned(), REV.to_owned())].into();
        assert_eq!(prune_empty_override(Some(&annotations)), Some(REV));
        assert_eq!(prune_empty_override(None), None);
    }
}

/// Flux's own controllers among the objects a Kustomization would apply: the
/// Deployments named as one of `replaced` (the Flux controllers this process
/// does the work of) that run a `fluxcd/` image, as `flux bootstrap`'s
/// `gotk-components.yaml` brings them. Applying them would start Flux's
/// controllers beside sluice, both reconciling the same objects; the caller
/// refuses the apply with [`flux_controllers_message`].
pub fn flux_controllers(objects: &[serde_json::Value], replaced: &[String]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" && o["apiVersion"] == "apps/v1")
        .filter(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| replaced.iter().any(|r| r == n))
        })
        .filter(|o| {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["image"].as_str().is_some_and(|i| i.contains("fluxcd/")))
        })
        .map(|o| {
            format!(
                "Deployment/{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or("default"),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Why an apply holding Flux's controllers (see [`flux_controllers`]) is refused, and what to
/// change.
pub fn flux_controllers_message(found: &[String]) -> String {
    format!(
        "refusing to apply Flux's controllers that sluice replaces ({}): both would reconcile \
         the same objects; remove Flux's components from this Kustomization's path (a \
         `flux bootstrap` repository has them in flux-system/gotk-components.yaml: put the \
         output of `sluice install --export` there instead), or uninstall sluice with \
         `sluice uninstall --restore-flux` to go back to Flux",
        found.join(", ")
    )
}

#[cfg(test)]
mod flux_controller_tests {
    use super::*;
    use serde_json::json;

    fn deployment(name: &str, image: &str) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "flux-system"},
               "spec": {"template": {"spec": {"containers": [{"name": "manager", "image": image}]}}}})
    }

    #[test]
    fn flux_controllers_are_found_by_name_and_image() {
        let replaced = vec![
            "source-controller".to_string(),
            "kustomize-controller".to_string(),
        ];
        let objects = vec![
            deployment(
                "source-controller",
                "ghcr.io/fluxcd/source-controller:v1.7.4",
            ),
            // Not replaced by this process (no --helmrelease): Flux's stays welcome.
            deployment("helm-controller", "ghcr.io/fluxcd/helm-controller:v1.4.4"),
            // A workload that happens to share the name.
            deployment("kustomize-controller", "registry.lan/me/kc:1"),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "source-controller"}}),
        ];
        let found = flux_controllers(&objects, &replaced);
        assert_eq!(found, vec!["Deployment/flux-system/source-controller"]);
        let message = flux_controllers_message(&found);
        assert!(message.contains("gotk-components.yaml"), "{message}");
        assert!(flux_controllers(&objects[1..], &replaced).is_empty());
    }
}
