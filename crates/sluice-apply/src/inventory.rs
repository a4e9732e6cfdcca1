//! Inventories (`status.inventory` of a Kustomization) and their differences.
//!
//! An inventory entry is Flux's `ResourceRef`: `id` is `<namespace>_<name>_<group>_<kind>`
//! (cli-utils' `ObjMetadata`, with `:` written `__` in the names of RBAC objects) and `v` the
//! API version within the group. Objects are compared by id only, so a version change does not
//! make an object stale.

use std::collections::HashSet;

use sluice_api::kustomization::{ResourceInventory, ResourceRef};
use sluice_api::meta::{ObjectId, ObjectIdError};

use crate::object::{ObjectRef, sort_objects};

/// An inventory entry that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid inventory entry {id:?}: {source}")]
pub struct InventoryError {
    /// The entry's id.
    pub id: String,
    /// Why it does not parse.
    #[source]
    pub source: ObjectIdError,
}

/// The objects of an inventory, in Flux's order.
pub fn list(inventory: &ResourceInventory) -> Result<Vec<ObjectRef>, InventoryError> {
    let mut objects = inventory
        .entries
        .iter()
        .map(parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    sort_objects(&mut objects);
    Ok(objects)
}

fn parse_entry(entry: &ResourceRef) -> Result<ObjectRef, InventoryError> {
    ObjectRef::from_resource_ref(entry).map_err(|source| InventoryError {
        id: entry.id.clone(),
        source,
    })
}

/// The stale objects: those in `old` but not in `new` (compared by id), leaving out the ids in
/// `skipped` (objects skipped by the apply, e.g. `reconcile: disabled` or `ssa: Ignore`, are
/// neither kept nor pruned). They carry the version recorded in `old` and come in Flux's order;
/// prune deletes them in reverse.
pub fn stale(
    old: &ResourceInventory,
    new: &ResourceInventory,
    skipped: &HashSet<ObjectId>,
) -> Result<Vec<ObjectRef>, InventoryError> {
    let keep: HashSet<ObjectId> = new
        .entries
        .iter()
        .map(|e| parse_entry(e).map(|o| o.id()))
        .collect::<Result<_, _>>()?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for entry in &old.entries {
        let object = parse_entry(entry)?;
        let id = object.id();
        if keep.contains(&id) || skipped.contains(&id) || !seen.insert(id) {
            continue;
        }
        out.push(object);
    }
    sort_objects(&mut out);
    Ok(out)
}

/// `base` plus the entries of `extra` whose ids `base` lacks, e.g. the new inventory plus the
/// objects a prune failed to delete (so the next run tries again), or the old inventory plus the
/// objects a failed apply created.
pub fn union(base: &ResourceInventory, extra: &ResourceInventory) -> ResourceInventory {
    let mut ids: HashSet<String> = base.entries.iter().map(|e| e.id.clone()).collect();
    let mut out = base.clone();
    for entry in &extra.entries {
        if ids.insert(entry.id.clone()) {
            out.entries.push(entry.clone());
        }
    }
    out
}

/// The inventory an apply of these rendered objects may end with: every well-formed object
/// (inside `List`s too), except those it would never write (`ssa: Ignore`, `reconcile:
/// disabled`) and kustomize's own `Kustomization` documents. Malformed objects are left out
/// (the apply refuses them).
///
/// Written into the status before an apply starts (a write-ahead record), it makes sure that
/// a controller killed in the middle of the apply still knows every object it may have
/// created, so none is orphaned when it later leaves the source.
pub fn intended(objects: &[serde_json::Value]) -> ResourceInventory {
    fn walk(objects: &[serde_json::Value], out: &mut Vec<ObjectRef>) {
        use crate::object::has_metadata;
        use sluice_api::kustomization::{
            DISABLED_VALUE, RECONCILE_ANNOTATION, SSA_ANNOTATION, SSA_IGNORE_VALUE,
        };
        for value in objects {
            let Some(map) = value.as_object() else {
                continue;
            };
            let kind = map.get("kind").and_then(serde_json::Value::as_str);
            let api_version = map.get("apiVersion").and_then(serde_json::Value::as_str);
            if kind == Some("Kustomization")
                && api_version.is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"))
            {
                continue;
            }
            if kind.is_some_and(|k| k.ends_with("List"))
                && let Some(items) = map.get("items").and_then(serde_json::Value::as_array)
            {
                walk(items, out);
                continue;
            }
            if has_metadata(value, SSA_ANNOTATION, SSA_IGNORE_VALUE)
                || has_metadata(value, RECONCILE_ANNOTATION, DISABLED_VALUE)
            {
                continue;
            }
            if let Ok(object) = crate::object::read_ref(map) {
                out.push(object);
            }
        }
    }
    let mut out = Vec::new();
    walk(objects, &mut out);
    sort_objects(&mut out);
    from_objects(&out)
}

/// An inventory holding the given objects, in the given order.
pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a ObjectRef>) -> ResourceInventory {
    let mut seen = HashSet::new();
    ResourceInventory {
        entries: objects
            .into_iter()
            .filter(|o| seen.insert(o.id()))
            .map(ObjectRef::resource_ref)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_inventory_of_rendered_objects() {
        let objects = vec![
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "apps"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMapList", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "b", "namespace": "apps"}}]}),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "apps"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "ignored", "namespace": "apps",
                    "annotations": {"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "off", "namespace": "apps",
                    "labels": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}}}),
            serde_json::json!({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization", "metadata": {"name": "k"}}),
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "malformed"}}),
            serde_json::json!("not an object"),
        ];
        let ids: Vec<String> = intended(&objects)
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(
            ids,
            ["_apps__Namespace", "apps_a__ConfigMap", "apps_b__ConfigMap"]
        );
    }

    fn entry(id: &str, v: &str) -> ResourceRef {
        ResourceRef {
            id: id.to_owned(),
            v: v.to_owned(),
        }
    }

    fn inv(entries: &[(&str, &str)]) -> ResourceInventory {
        ResourceInventory {
            entries: entries.iter().map(|(id, v)| entry(id, v)).collect(),
        }
    }

    #[test]
    fn ids_are_fluxs_format() {
        let deploy = ObjectRef::new("apps", "v1", "Deployment", "apps", "podinfo");
        assert_eq!(deploy.resource_ref().id, "apps_podinfo_apps_Deployment");
        assert_eq!(deploy.resource_ref().v, "v1");
        let cm = ObjectRef::new("", "v1", "ConfigMap", "default", "my-config");
        assert_eq!(cm.resource_ref().id, "default_my-config__ConfigMap");
        let ns = ObjectRef::new("", "v1", "Namespace", "", "apps");
        assert_eq!(ns.resource_ref().id, "_apps__Namespace");
        let crd = ObjectRef::new(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "",
            "widgets.example.com",
        );
        assert_eq!(
            crd.resource_ref().id,
            "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition"
        );
        let binding = ObjectRef::new(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "ns",
            "system:deployer",
        );
        assert_eq!(
            binding.resource_ref().id,
            "ns_system__deployer_rbac.authorization.k8s.io_RoleBinding"
        );
    }

    #[test]
    fn entries_parse_back() {
        let objects = list(&inv(&[
            ("apps_podinfo_apps_Deployment", "v1"),
            ("_apps__Namespace", "v1"),
            (
                "ns_system__deployer_rbac.authorization.k8s.io_RoleBinding",
                "v1",
            ),
        ]))
        .unwrap();
        assert_eq!(
            objects[0],
            ObjectRef::new("", "v1", "Namespace", "", "apps")
        );
        assert_eq!(
            objects[1],
            ObjectRef::new(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "ns",
                "system:deployer"
            )
        );
        assert_eq!(
            objects[2],
            ObjectRef::new("apps", "v1", "Deployment", "apps", "podinfo")
        );
    }

    #[test]
    fn bad_entries_are_errors() {
        let err = list(&inv(&[("nonsense", "v1")])).unwrap_err();
        assert_eq!(err.id, "nonsense");
        assert!(err.to_string().contains("nonsense"));
        assert!(list(&inv(&[("ns_a_b_c__ConfigMap", "v1")])).is_err());
    }

    #[test]
    fn stale_is_old_minus_new_by_id() {
        let old = inv(&[
            ("_apps__Namespace", "v1"),
            ("apps_a__ConfigMap", "v1"),
            ("apps_web_apps_Deployment", "v1"),
            ("apps_hpa_autoscaling_HorizontalPodAutoscaler", "v2beta2"),
            ("apps_frozen__ConfigMap", "v1"),
        ]);
        let new = inv(&[
            ("apps_a__ConfigMap", "v1"),
            ("apps_hpa_autoscaling_HorizontalPodAutoscaler", "v2"),
        ]);
        let skipped: HashSet<ObjectId> = [ObjectId::new("apps", "frozen", "", "ConfigMap")].into();
        let stale = stale(&old, &new, &skipped).unwrap();
        let subjects: Vec<String> = stale.iter().map(ObjectRef::subject).collect();
        assert_eq!(subjects, ["Namespace/apps", "Deployment/apps/web"]);
        assert_eq!(stale[1].version, "v1");
        assert_eq!(stale[1].group, "apps");
    }

    #[test]
    fn union_adds_missing_entries_once() {
        let a = inv(&[("ns_a__ConfigMap", "v1")]);
        let b = inv(&[("ns_a__ConfigMap", "v1"), ("ns_b__ConfigMap", "v1")]);
        let u = union(&a, &b);
        assert_eq!(u.entries.len(), 2);
        assert_eq!(u.entries[1].id, "ns_b__ConfigMap");
        let objs = [
            ObjectRef::new("", "v1", "ConfigMap", "ns", "a"),
            ObjectRef::new("", "v1", "ConfigMap", "ns", "a"),
        ];
        assert_eq!(from_objects(&objs).entries.len(), 1);
    }
}
