//! Whom a reconciler acts as, and which references it may follow.
//!
//! Flux's multi-tenancy lockdown is two controller flags:
//! `--default-service-account` (objects without `spec.serviceAccountName`
//! act as that account in their own namespace) and
//! `--no-cross-namespace-refs`. sluice adds one more identity, the
//! reconciler (`--reconciler-service-account`): the account, in the
//! controller's namespace, that everything else acts as. `sluice install`
//! binds `cluster-admin` to it, as Flux binds it to its controllers, so that
//! the controller's own ServiceAccount needs only what the controller itself
//! does (its kinds, Secrets to read, Events, Leases, impersonation).

/// Flux's reason for a reference refused by `--no-cross-namespace-refs`
/// (`acl.AccessDeniedReason`).
pub const ACCESS_DENIED_REASON: &str = "AccessDenied";

/// A ServiceAccount by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceAccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The identity and reference rules of a process's controllers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenancy {
    /// Flux's `--default-service-account`: impersonated, in the object's own
    /// namespace, by objects without `spec.serviceAccountName`.
    pub default_service_account: Option<String>,
    /// sluice's `--reconciler-service-account`: impersonated by objects
    /// without `spec.serviceAccountName` when there is no default account.
    /// `None`: they act as the controller itself.
    pub reconciler: Option<ServiceAccountRef>,
    /// Flux's `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Flux's `--insecure-kubeconfig-tls`: a `spec.kubeConfig` may skip TLS verification.
    pub insecure_kubeconfig_tls: bool,
    /// Flux's `--insecure-kubeconfig-exec`: a `spec.kubeConfig` may run an `exec` plugin.
    pub insecure_kubeconfig_exec: bool,
}

impl Tenancy {
    /// The account an object in `namespace` with `spec.serviceAccountName`
    /// `spec` acts as: its own, else the default one (in its namespace), else
    /// the reconciler, else `None` (the controller's own identity).
    pub fn acting_as(&self, namespace: &str, spec: Option<&str>) -> Option<ServiceAccountRef> {
        self.named(namespace, spec)
            .or_else(|| self.reconciler.clone())
    }

    /// The account an object with `spec.kubeConfig` acts as on the remote cluster: its own,
    /// else the default one, both in its namespace, as Flux impersonates them there. The
    /// reconciler is an account of this cluster and is never assumed on another one.
    pub fn acting_as_remote(
        &self,
        namespace: &str,
        spec: Option<&str>,
    ) -> Option<ServiceAccountRef> {
        self.named(namespace, spec)
    }

    /// The object's own account, else the default one, in `namespace`.
    fn named(&self, namespace: &str, spec: Option<&str>) -> Option<ServiceAccountRef> {
        let name = spec.filter(|s| !s.is_empty()).or(self
            .default_service_account
            .as_deref()
            .filter(|s| !s.is_empty()))?;
        Some(ServiceAccountRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Whether an object in `namespace` may refer to one in `other`.
    pub fn allows(&self, namespace: &str, other: &str) -> bool {
        !self.no_cross_namespace_refs || namespace == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(ns: &str, name: &str) -> Option<ServiceAccountRef> {
        Some(ServiceAccountRef {
            namespace: ns.into(),
            name: name.into(),
        })
    }

    #[test]
    fn the_objects_own_account_wins_then_the_default_then_the_reconciler() {
        let none = Tenancy::default();
        assert_eq!(none.acting_as("apps", None), None);
        assert_eq!(none.acting_as("apps", Some("")), None);
        assert_eq!(
            none.acting_as("apps", Some("deployer")),
            sa("apps", "deployer")
        );

        let reconciler = Tenancy {
            reconciler: sa("flux-system", "sluice-reconciler"),
            ..Tenancy::default()
        };
        assert_eq!(
            reconciler.acting_as_remote("apps", None),
            None,
            "the reconciler is not assumed on a remote cluster"
        );
        assert_eq!(
            reconciler.acting_as_remote("apps", Some("deployer")),
            sa("apps", "deployer")
        );
        assert_eq!(
            reconciler.acting_as("apps", None),
            sa("flux-system", "sluice-reconciler")
        );
        assert_eq!(
            reconciler.acting_as("apps", Some("")),
            sa("flux-system", "sluice-reconciler")
        );
        assert_eq!(
            reconciler.acting_as("apps", Some("deployer")),
            sa("apps", "deployer")
        );

        // Flux's lockdown: the default account, in the object's namespace,
        // even when a reconciler is configured.
        let locked = Tenancy {
            default_service_account: Some("tenant".into()),
            ..reconciler.clone()
        };
        assert_eq!(locked.acting_as("apps", None), sa("apps", "tenant"));
        assert_eq!(
            locked.acting_as("apps", Some("deployer")),
            sa("apps", "deployer")
        );
        let empty_default = Tenancy {
            default_service_account: Some(String::new()),
            ..reconciler
        };
        assert_eq!(
            empty_default.acting_as("apps", None),
            sa("flux-system", "sluice-reconciler")
        );
    }

    #[test]
    fn cross_namespace_references_are_allowed_unless_locked_down() {
        let open = Tenancy::default();
        assert!(open.allows("a", "b"));
        let locked = Tenancy {
            no_cross_namespace_refs: true,
            ..Tenancy::default()
        };
        assert!(locked.allows("a", "a"));
        assert!(!locked.allows("a", "b"));
    }
}
