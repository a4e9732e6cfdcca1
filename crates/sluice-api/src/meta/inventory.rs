//! The ids of `Kustomization.status.inventory.entries`: `<namespace>_<name>_<group>_<kind>`, the
//! format of `sigs.k8s.io/cli-utils`' `ObjMetadata`, which Flux uses unchanged.

use std::fmt;
use std::str::FromStr;

const SEPARATOR: char = '_';
/// RBAC names may contain `:`, which is written as `__` in ids.
const COLON_TRANSCODED: &str = "__";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const RBAC_KINDS: [&str; 4] = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];

/// The identity of an applied object: namespace (empty for cluster-scoped objects), name, API
/// group (empty for the core group) and kind. The version is kept apart, in the entry's `v`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// API group; empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

/// Why a string is not an inventory id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectIdError {
    /// Fewer than four `_`-separated fields.
    #[error("unable to parse stored object metadata: {0:?}")]
    TooFewFields(String),
    /// More than four fields (a name with `_` outside the RBAC `__` transcoding).
    #[error("too many fields within: {0:?}")]
    TooManyFields(String),
}

impl ObjectId {
    /// An id from its four parts.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        group: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            group: group.into(),
            kind: kind.into(),
        }
    }

    fn is_rbac(group: &str, kind: &str) -> bool {
        group == RBAC_GROUP && RBAC_KINDS.contains(&kind)
    }

    /// Parses `<namespace>_<name>_<group>_<kind>`.
    ///
    /// The namespace ends at the first `_`, the kind and group are the last two fields, and the
    /// name is what lies between; in the names of RBAC objects, `__` stands for `:`.
    pub fn parse(id: &str) -> Result<Self, ObjectIdError> {
        let too_few = || ObjectIdError::TooFewFields(id.to_owned());
        let (namespace, rest) = id.split_once(SEPARATOR).ok_or_else(too_few)?;
        let (rest, kind) = rest.rsplit_once(SEPARATOR).ok_or_else(too_few)?;
        let (name, group) = rest.rsplit_once(SEPARATOR).ok_or_else(too_few)?;
        let name = if Self::is_rbac(group, kind) {
            name.replace(COLON_TRANSCODED, ":")
        } else {
            name.to_owned()
        };
        if name.contains(SEPARATOR) {
            return Err(ObjectIdError::TooManyFields(id.to_owned()));
        }
        Ok(Self::new(namespace, name, group, kind))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if Self::is_rbac(&self.group, &self.kind) {
            self.name.replace(':', COLON_TRANSCODED)
        } else {
            self.name.clone()
        };
        write!(
            f,
            "{}{SEPARATOR}{name}{SEPARATOR}{}{SEPARATOR}{}",
            self.namespace, self.group, self.kind
        )
    }
}

impl FromStr for ObjectId {
    type Err = ObjectIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_object_in_named_group() {
        let id = ObjectId::parse("apps_podinfo_apps_Deployment").unwrap();
        assert_eq!(id, ObjectId::new("apps", "podinfo", "apps", "Deployment"));
        assert_eq!(id.to_string(), "apps_podinfo_apps_Deployment");
    }

    #[test]
    fn core_group_is_empty() {
        let id = ObjectId::parse("default_my-config__ConfigMap").unwrap();
        assert_eq!(id, ObjectId::new("default", "my-config", "", "ConfigMap"));
        assert_eq!(id.to_string(), "default_my-config__ConfigMap");
    }

    #[test]
    fn cluster_scoped_has_empty_namespace() {
        let id = ObjectId::parse("_podinfo__Namespace").unwrap();
        assert_eq!(id, ObjectId::new("", "podinfo", "", "Namespace"));
        assert_eq!(id.to_string(), "_podinfo__Namespace");

        let crd = ObjectId::parse(
            "_gitrepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
        )
        .unwrap();
        assert_eq!(crd.namespace, "");
        assert_eq!(crd.name, "gitrepositories.source.toolkit.fluxcd.io");
        assert_eq!(crd.group, "apiextensions.k8s.io");
        assert_eq!(crd.kind, "CustomResourceDefinition");
    }

    #[test]
    fn rbac_names_transcode_colons() {
        let id = ObjectId::new(
            "",
            "system:controller:flux",
            "rbac.authorization.k8s.io",
            "ClusterRole",
        );
        let s = id.to_string();
        assert_eq!(
            s,
            "_system__controller__flux_rbac.authorization.k8s.io_ClusterRole"
        );
        assert_eq!(ObjectId::parse(&s).unwrap(), id);
    }

    #[test]
    fn rejects_malformed_ids() {
        assert!(matches!(
            ObjectId::parse("nothing"),
            Err(ObjectIdError::TooFewFields(_))
        ));
        assert!(matches!(
            ObjectId::parse("ns_name_Kind"),
            Err(ObjectIdError::TooFewFields(_))
        ));
        // `__` is only a colon in RBAC names; elsewhere it means an extra field.
        assert!(matches!(
            ObjectId::parse("ns_a__b_apps_Deployment"),
            Err(ObjectIdError::TooManyFields(_))
        ));
    }

    #[test]
    fn from_str_matches_parse() {
        let id: ObjectId = "flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization"
            .parse()
            .unwrap();
        assert_eq!(id.group, "kustomize.toolkit.fluxcd.io");
        assert_eq!(id.kind, "Kustomization");
    }
}
