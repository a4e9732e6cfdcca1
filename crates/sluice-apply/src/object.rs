//! Object identity (`ObjectRef`), the apply stages and Flux's kind order.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};
use sluice_api::kustomization::ResourceRef;
use sluice_api::meta::{ObjectId, ObjectIdError};

/// The full identity of an object: group, version, kind, namespace (empty for
/// cluster-scoped objects) and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// API group; empty for the core group.
    pub group: String,
    /// API version within the group, e.g. `v1`.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// An object reference from its parts.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// An object reference from an `apiVersion` (`group/version` or `version`).
    pub fn from_api_version(
        api_version: &str,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        let (group, version) = split_api_version(api_version);
        Self::new(group, version, kind, namespace, name)
    }

    /// The object's `apiVersion`: `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The inventory identity (`<namespace>_<name>_<group>_<kind>`), without the version.
    pub fn id(&self) -> ObjectId {
        ObjectId::new(&self.namespace, &self.name, &self.group, &self.kind)
    }

    /// The inventory entry of this object (id and version).
    pub fn resource_ref(&self) -> ResourceRef {
        ResourceRef::new(&self.id(), &self.version)
    }

    /// The object named by an inventory entry.
    pub fn from_resource_ref(entry: &ResourceRef) -> Result<Self, ObjectIdError> {
        let id = entry.object_id()?;
        Ok(Self::new(
            id.group,
            &entry.v,
            id.kind,
            id.namespace,
            id.name,
        ))
    }

    /// Flux's subject for events and errors: `Kind/namespace/name`, or `Kind/name` for
    /// cluster-scoped objects.
    pub fn subject(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// The stage this object is applied in.
    pub fn stage(&self) -> Stage {
        Stage::of(self)
    }

    /// Whether this is a CustomResourceDefinition.
    pub fn is_crd(&self) -> bool {
        self.kind.eq_ignore_ascii_case("CustomResourceDefinition") && self.group == CRD_GROUP
    }

    /// Whether this is a Namespace.
    pub fn is_namespace(&self) -> bool {
        self.kind.eq_ignore_ascii_case("Namespace") && self.group.is_empty() && self.version == "v1"
    }

    /// Whether this is a ClusterRole.
    pub fn is_cluster_role(&self) -> bool {
        self.kind.eq_ignore_ascii_case("ClusterRole") && self.group == RBAC_GROUP
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject())
    }
}

pub(crate) const CRD_GROUP: &str = "apiextensions.k8s.io";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Splits an `apiVersion` into group and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The apply stages of Flux's `ApplyAllStaged`. Each stage is applied (and, for the first,
/// waited for) before the next starts; prune runs them in reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions, Namespaces and ClusterRoles; waited for until CRDs are
    /// Established and Namespaces Active.
    ClusterDefinitions,
    /// Kinds whose name ends in `Class` (StorageClass, IngressClass, PriorityClass,
    /// RuntimeClass, GatewayClass, ...).
    Classes,
    /// Everything else.
    Rest,
}

impl Stage {
    /// All stages, in apply order.
    pub const ALL: [Stage; 3] = [Stage::ClusterDefinitions, Stage::Classes, Stage::Rest];

    /// The stage of an object, as Flux decides it (`IsClusterDefinition`, then a kind ending
    /// in `Class`).
    pub fn of(object: &ObjectRef) -> Stage {
        if object.is_crd() || object.is_namespace() || object.is_cluster_role() {
            Stage::ClusterDefinitions
        } else if object.kind.ends_with("Class") {
            Stage::Classes
        } else {
            Stage::Rest
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::ClusterDefinitions => "cluster definitions",
            Stage::Classes => "class definitions",
            Stage::Rest => "objects",
        })
    }
}

/// Flux's `ReconcileOrder`: kinds applied first (in this order), and kinds applied last.
const ORDER_FIRST: [&str; 23] = [
    "CustomResourceDefinition",
    "Namespace",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn kind_index(kind: &str) -> i64 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i64 - ORDER_FIRST.len() as i64;
    }
    if let Some(i) = ORDER_LAST.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

/// Flux's object order (`SortableUnstructureds`): by kind order, then group, kind, namespace
/// and name.
pub fn flux_order(a: &ObjectRef, b: &ObjectRef) -> Ordering {
    if a.group != b.group || a.kind != b.kind {
        let (ia, ib) = (kind_index(&a.kind), kind_index(&b.kind));
        if ia != ib {
            return ia.cmp(&ib);
        }
        if a.group != b.group {
            return a.group.cmp(&b.group);
        }
        return a.kind.cmp(&b.kind);
    }
    a.namespace
        .cmp(&b.namespace)
        .then_with(|| a.name.cmp(&b.name))
}

/// Sorts objects in Flux's order.
pub fn sort_objects(objects: &mut [ObjectRef]) {
    objects.sort_by(flux_order);
}

/// Reads the identity of a rendered object. The namespace is as written (possibly empty).
pub(crate) fn read_ref(obj: &Map<String, Value>) -> Result<ObjectRef, String> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let meta = obj.get("metadata").and_then(Value::as_object);
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let r = ObjectRef::from_api_version(api_version, kind, namespace, name);
    let missing: Vec<&str> = [
        ("apiVersion", api_version.is_empty() || r.version.is_empty()),
        ("kind", kind.is_empty()),
        ("metadata.name", name.is_empty()),
    ]
    .into_iter()
    .filter_map(|(field, missing)| missing.then_some(field))
    .collect();
    if missing.is_empty() {
        Ok(r)
    } else {
        Err(format!(
            "failed to decode Kubernetes apiVersion, kind and name: missing {}",
            missing.join(", ")
        ))
    }
}

/// The labels (or annotations) of an object.
pub(crate) fn meta_map<'a>(obj: &'a Value, field: &str) -> Option<&'a Map<String, Value>> {
    obj.get("metadata")?.get(field)?.as_object()
}

/// Flux's `AnyInMetadata` for one key: the label or annotation `key` equals `value`,
/// ignoring case.
pub(crate) fn has_metadata(obj: &Value, key: &str, value: &str) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        meta_map(obj, field)
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty() && v.eq_ignore_ascii_case(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(api_version: &str, kind: &str, ns: &str, name: &str) -> ObjectRef {
        ObjectRef::from_api_version(api_version, kind, ns, name)
    }

    #[test]
    fn subjects() {
        assert_eq!(
            r("apps/v1", "Deployment", "apps", "web").subject(),
            "Deployment/apps/web"
        );
        assert_eq!(r("v1", "Namespace", "", "apps").subject(), "Namespace/apps");
        assert_eq!(r("v1", "ConfigMap", "a", "b").api_version(), "v1");
        assert_eq!(
            r("apps/v1", "Deployment", "a", "b").api_version(),
            "apps/v1"
        );
    }

    #[test]
    fn stages() {
        let crd = r(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "",
            "x",
        );
        assert_eq!(crd.stage(), Stage::ClusterDefinitions);
        assert_eq!(
            r("v1", "Namespace", "", "x").stage(),
            Stage::ClusterDefinitions
        );
        assert_eq!(
            r("rbac.authorization.k8s.io/v1", "ClusterRole", "", "x").stage(),
            Stage::ClusterDefinitions
        );
        assert_eq!(
            r(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                "",
                "x"
            )
            .stage(),
            Stage::Rest
        );
        assert_eq!(
            r("storage.k8s.io/v1", "StorageClass", "", "x").stage(),
            Stage::Classes
        );
        assert_eq!(
            r("gateway.networking.k8s.io/v1", "GatewayClass", "", "x").stage(),
            Stage::Classes
        );
        assert_eq!(r("v1", "ConfigMap", "a", "x").stage(), Stage::Rest);
        // a CR kind called Namespace in another group is not a Namespace
        assert_eq!(
            r("example.com/v1", "Namespace", "", "x").stage(),
            Stage::Rest
        );
    }

    #[test]
    fn flux_sort_order() {
        let mut objs = vec![
            r(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "",
                "w",
            ),
            r("example.com/v1", "Widget", "b", "w"),
            r("apps/v1", "Deployment", "b", "d"),
            r("v1", "ConfigMap", "b", "z"),
            r("v1", "ConfigMap", "a", "z"),
            r("v1", "Namespace", "", "b"),
            r(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "",
                "w",
            ),
            r("example.com/v1", "Gadget", "b", "w"),
        ];
        sort_objects(&mut objs);
        let subjects: Vec<String> = objs.iter().map(ObjectRef::subject).collect();
        assert_eq!(
            subjects,
            [
                "CustomResourceDefinition/w",
                "Namespace/b",
                "ConfigMap/a/z",
                "ConfigMap/b/z",
                "Deployment/b/d",
                "Gadget/b/w",
                "Widget/b/w",
                "ValidatingWebhookConfiguration/w",
            ]
        );
    }

    #[test]
    fn reading_refs() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps"}});
        let r = read_ref(obj.as_object().unwrap()).unwrap();
        assert_eq!(r, ObjectRef::new("apps", "v1", "Deployment", "apps", "web"));
        let bad = json!({"kind": "Deployment", "metadata": {}});
        let err = read_ref(bad.as_object().unwrap()).unwrap_err();
        assert!(err.contains("apiVersion, metadata.name"), "{err}");
    }

    #[test]
    fn metadata_matching_ignores_case_and_checks_labels_and_annotations() {
        let obj = json!({"metadata": {"labels": {"k": "Disabled"}, "annotations": {"a": "merge"}}});
        assert!(has_metadata(&obj, "k", "disabled"));
        assert!(has_metadata(&obj, "a", "Merge"));
        assert!(!has_metadata(&obj, "a", "Ignore"));
        assert!(!has_metadata(&obj, "missing", "x"));
    }

    #[test]
    fn resource_refs_round_trip() {
        let obj = ObjectRef::new(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "",
            "system:flux",
        );
        let entry = obj.resource_ref();
        assert_eq!(
            entry.id,
            "_system__flux_rbac.authorization.k8s.io_ClusterRole"
        );
        assert_eq!(entry.v, "v1");
        assert_eq!(ObjectRef::from_resource_ref(&entry).unwrap(), obj);
    }
}
