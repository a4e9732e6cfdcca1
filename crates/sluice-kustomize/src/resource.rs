//! Resources, their ids, and the ordered resource map.

use std::collections::HashMap;
use std::fmt;

use crate::yaml::{Map, Value};

/// Group, version, kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// kustomize's `Gvk.IsSelected`: empty selector fields match anything.
    pub fn is_selected(&self, sel: &Gvk) -> bool {
        (sel.group.is_empty() || sel.group == self.group)
            && (sel.version.is_empty() || sel.version == self.version)
            && (sel.kind.is_empty() || sel.kind == self.kind)
    }
    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped_gvk(&self.group, &self.version, &self.kind)
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        let v = if self.version.is_empty() {
            "[noVer]"
        } else {
            &self.version
        };
        let k = if self.kind.is_empty() {
            "[noKind]"
        } else {
            &self.kind
        };
        write!(f, "{k}.{v}.{g}")
    }
}

/// What kustomize v5.8.1 knows to be cluster-scoped, by API version and
/// kind: what its built-in OpenAPI schema (Kubernetes v1.21.2; kyaml's
/// `precomputedIsNamespaceScoped`) marks so. Anything else is namespaced to
/// kustomize and gets a kustomization's `namespace`, so here too, even a
/// kind that newer Kubernetes serves cluster-scoped (FlowSchema `v1`,
/// ValidatingAdmissionPolicy, MutatingAdmissionPolicy, IPAddress): the API
/// server drops that namespace, and the printed output and Flux's inventory
/// stay kustomize's.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiregistration.k8s.io/v1beta1", "APIService"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
    ),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("node.k8s.io/v1beta1", "RuntimeClass"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("storage.k8s.io/v1beta1", "CSIDriver"),
    ("storage.k8s.io/v1beta1", "CSINode"),
    ("storage.k8s.io/v1beta1", "StorageClass"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment"),
    ("v1", "ComponentStatus"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "NodeProxyOptions"),
    ("v1", "PersistentVolume"),
];

pub fn is_cluster_scoped_gvk(group: &str, version: &str, kind: &str) -> bool {
    CLUSTER_SCOPED.iter().any(|(api_version, k)| {
        *k == kind
            && match api_version.split_once('/') {
                Some((g, v)) => g == group && v == version,
                None => group.is_empty() && *api_version == version,
            }
    })
}

/// A resource id: gvk, name, namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResId {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

impl ResId {
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }
    pub fn ns_equals(&self, o: &ResId) -> bool {
        self.effective_namespace() == o.effective_namespace()
    }
    /// kustomize's `ResId.Equals`.
    pub fn equals(&self, o: &ResId) -> bool {
        self.ns_equals(o) && self.gvk == o.gvk && self.name == o.name
    }
    /// Key for hashing under `equals`.
    pub fn key(&self) -> (String, String, String, String, String) {
        (
            self.gvk.group.clone(),
            self.gvk.version.clone(),
            self.gvk.kind.clone(),
            self.name.clone(),
            self.effective_namespace().to_string(),
        )
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        write!(f, "{}/{}.{}", self.gvk, self.name, ns)
    }
}

/// How a generated resource combines with an existing one of the same id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Behavior {
    #[default]
    Unspecified,
    Create,
    Merge,
    Replace,
}

impl Behavior {
    /// A behavior kustomize names; `None` for any other word (which
    /// kustomize reads as [`Behavior::Unspecified`]).
    pub fn parse(s: &str) -> Option<Behavior> {
        match s {
            "" => Some(Behavior::Unspecified),
            "create" => Some(Behavior::Create),
            "merge" => Some(Behavior::Merge),
            "replace" => Some(Behavior::Replace),
            _ => None,
        }
    }
}

/// One resource plus the build bookkeeping kustomize keeps in internal
/// annotations.
#[derive(Clone, Debug)]
pub struct Resource {
    pub obj: Value,
    /// Ids this resource had before renames, oldest first (not including
    /// the current one).
    pub prev_ids: Vec<ResId>,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub behavior: Behavior,
    pub needs_hash: bool,
    /// Set on generated ConfigMaps/Secrets: hash suffix allowed.
    pub generated: bool,
    /// Names of vars whose object reference points at this resource.
    pub ref_vars: Vec<String>,
    /// Fields of the object as read that have no value at all (`key:`).
    pub(crate) empty_nulls: crate::yaml::EmptyNulls,
}

impl Resource {
    pub fn new(obj: Value) -> Resource {
        Resource {
            obj,
            prev_ids: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            behavior: Behavior::Unspecified,
            needs_hash: false,
            generated: false,
            ref_vars: Vec::new(),
            empty_nulls: Vec::new(),
        }
    }
    pub fn map(&self) -> Option<&Map> {
        self.obj.as_map()
    }
    pub fn kind(&self) -> &str {
        self.obj.get_str("kind").unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.obj.get_str("apiVersion").unwrap_or("")
    }
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }
    pub fn name(&self) -> String {
        self.obj
            .get_path(&["metadata", "name"])
            .and_then(Value::scalar_string)
            .unwrap_or_default()
    }
    pub fn namespace(&self) -> String {
        self.obj
            .get_path(&["metadata", "namespace"])
            .and_then(Value::scalar_string)
            .unwrap_or_default()
    }
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name(),
            namespace: self.namespace(),
        }
    }
    pub fn org_id(&self) -> ResId {
        self.prev_ids
            .first()
            .cloned()
            .unwrap_or_else(|| self.cur_id())
    }
    /// Remembers the current id before a rename.
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        // Most resources are renamed once or twice: no growth slack.
        self.prev_ids.reserve_exact(1);
        self.prev_ids.push(id);
    }
    pub fn metadata_mut(&mut self) -> &mut Map {
        if !matches!(self.obj, Value::Map(_)) {
            self.obj = Value::Map(Map::new());
        }
        let Value::Map(m) = &mut self.obj else {
            unreachable!("just made a map")
        };
        let md = m.entry_map("metadata");
        if !matches!(md, Value::Map(_)) {
            *md = Value::Map(Map::new());
        }
        match md {
            Value::Map(mm) => mm,
            _ => unreachable!("just made a map"),
        }
    }
    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut().insert("name", Value::str(name));
    }
    pub fn set_namespace(&mut self, ns: &str) {
        self.metadata_mut().insert("namespace", Value::str(ns));
    }
    pub fn set_kind(&mut self, kind: &str) {
        if let Some(m) = self.obj.as_map_mut() {
            m.insert("kind", Value::str(kind));
        }
    }
    pub fn labels(&self) -> Vec<(String, String)> {
        string_map(self.obj.get_path(&["metadata", "labels"]))
    }
    pub fn annotations(&self) -> Vec<(String, String)> {
        string_map(self.obj.get_path(&["metadata", "annotations"]))
    }
    pub fn prefixes_suffixes_equal(&self, o: &Resource) -> bool {
        self.prefixes == o.prefixes && self.suffixes == o.suffixes
    }
    /// Empty after patches (`$patch: delete` of the whole object, etc).
    pub fn is_empty(&self) -> bool {
        match &self.obj {
            Value::Map(m) => m.is_empty(),
            Value::Null => true,
            _ => false,
        }
    }
}

pub fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| (k.to_string(), v.scalar_string().unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    }
}

/// An ordered list of resources with an index by current id.
#[derive(Clone, Debug, Default)]
pub struct ResMap {
    pub list: Vec<Resource>,
}

impl ResMap {
    pub fn new() -> ResMap {
        ResMap { list: Vec::new() }
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Index of current ids (effective-namespace aware) to positions.
    pub fn index(&self) -> HashMap<(String, String, String, String, String), Vec<usize>> {
        let mut idx: HashMap<_, Vec<usize>> = HashMap::with_capacity(self.list.len());
        for (i, r) in self.list.iter().enumerate() {
            idx.entry(r.cur_id().key()).or_default().push(i);
        }
        idx
    }
    pub fn find_by_cur_id(&self, id: &ResId) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, r)| r.cur_id().equals(id))
            .map(|(i, _)| i)
            .collect()
    }
    /// Appends, refusing a duplicate current id.
    pub fn append(&mut self, r: Resource) -> Result<(), String> {
        let id = r.cur_id();
        if self.list.iter().any(|x| x.cur_id().equals(&id)) {
            return Err(format!(
                "may not add resource with an already registered id: {id}"
            ));
        }
        self.list.push(r);
        Ok(())
    }
    /// Fails on the first resource whose current id repeats an earlier one.
    pub fn check_unique(&self) -> Result<(), String> {
        match self.first_duplicate() {
            Some(i) => Err(format!(
                "may not add resource with an already registered id: {}",
                self.list[i].cur_id()
            )),
            None => Ok(()),
        }
    }

    /// The index of the first resource whose current id repeats an earlier
    /// one.
    pub fn first_duplicate(&self) -> Option<usize> {
        let mut seen = std::collections::HashSet::with_capacity(self.list.len());
        self.list
            .iter()
            .position(|r| !seen.insert(r.cur_id().key()))
    }

    /// Appends all of `other`, refusing duplicates (linear with an index).
    pub fn append_all(&mut self, other: ResMap) -> Result<(), String> {
        let mut idx: std::collections::HashSet<_> =
            self.list.iter().map(|r| r.cur_id().key()).collect();
        for r in other.list {
            let id = r.cur_id();
            if !idx.insert(id.key()) {
                return Err(format!(
                    "may not add resource with an already registered id: {id}"
                ));
            }
            self.list.push(r);
        }
        Ok(())
    }
}
