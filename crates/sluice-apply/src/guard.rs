//! The empty-build guard (beyond Flux): a build that suddenly renders nothing must not prune
//! everything the Kustomization applied before, unless a human says so.

use std::collections::BTreeMap;

use sluice_api::kustomization::ResourceInventory;

/// Annotation on a Kustomization that allows one empty build to prune everything. Its value
/// must be the revision that builds empty (as printed in the error, e.g.
/// `main@sha1:0123abcd...`), or that revision's digest alone (`0123abcd...`), so a stale
/// annotation never lets a later, accidental empty build through.
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
    if let Some(allow) = allow.map(str::trim).filter(|a| !a.is_empty())
        && allows(allow, revision)
    {
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

    #[test]
    fn override_is_read_from_annotations() {
        let annotations: BTreeMap<String, String> =
            [(PRUNE_EMPTY_ANNOTATION.to_owned(), REV.to_owned())].into();
        assert_eq!(prune_empty_override(Some(&annotations)), Some(REV));
        assert_eq!(prune_empty_override(None), None);
    }
}
