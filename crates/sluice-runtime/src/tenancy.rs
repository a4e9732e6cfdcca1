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
    /// Flux's `--feature-gates=ExternalArtifact=true`: Kustomizations and HelmReleases may
    /// consume ExternalArtifacts. Off by default, as in Flux: an ExternalArtifact's URL is
    /// whatever whoever may write its status wrote.
    pub external_artifacts: bool,
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

    /// The refusal of the ExternalArtifact `namespace/name` while the feature gate is off, in
    /// Flux's words (reason [`ACCESS_DENIED_REASON`]); `None` when it is on.
    pub fn external_artifact_denied(&self, namespace: &str, name: &str) -> Option<String> {
        (!self.external_artifacts).then(|| {
            format!(
                "can't access 'ExternalArtifact/{namespace}/{name}', ExternalArtifact feature gate is disabled"
            )
        })
    }
}

/// The feature gates sluice knows, as Flux's controllers spell them.
pub const FEATURE_GATES: &[&str] = &["ExternalArtifact"];

/// Parses Flux's `--feature-gates` value (`Name=true,Other=false`) into the gates it turns on or
/// off. A gate sluice does not know is an error naming it, as Flux's controllers refuse one, so
/// that a flag copied from a Flux deployment is never silently ignored.
pub fn parse_feature_gates(value: &str) -> Result<Vec<(String, bool)>, String> {
    let mut gates = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, on) = item
            .split_once('=')
            .ok_or_else(|| format!("missing bool value for feature gate {item}"))?;
        let (name, on) = (name.trim(), on.trim());
        let on = match on.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => true,
            "false" | "0" | "f" => false,
            _ => return Err(format!("invalid value of {name}={on}, err: not a bool")),
        };
        if !FEATURE_GATES.contains(&name) {
            return Err(format!(
                "unrecognized feature gate: {name} (sluice knows {})",
                FEATURE_GATES.join(", ")
            ));
        }
        gates.push((name.to_owned(), on));
    }
    Ok(gates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_gates_parse_as_fluxs_and_unknown_ones_are_refused() {
        assert_eq!(parse_feature_gates(""), Ok(vec![]));
        assert_eq!(
            parse_feature_gates("ExternalArtifact=true"),
            Ok(vec![("ExternalArtifact".into(), true)])
        );
        assert_eq!(
            parse_feature_gates(" ExternalArtifact = false ,"),
            Ok(vec![("ExternalArtifact".into(), false)])
        );
        let unknown = parse_feature_gates("ExternalArtifact=true,OOMWatch=true").unwrap_err();
        assert!(
            unknown.contains("unrecognized feature gate: OOMWatch"),
            "{unknown}"
        );
        assert!(parse_feature_gates("ExternalArtifact").is_err());
        assert!(parse_feature_gates("ExternalArtifact=maybe").is_err());

        let off = Tenancy::default();
        assert_eq!(
            off.external_artifact_denied("apps", "gen").as_deref(),
            Some(
                "can't access 'ExternalArtifact/apps/gen', ExternalArtifact feature gate is disabled"
            )
        );
        let on = Tenancy {
            external_artifacts: true,
            ..Tenancy::default()
        };
        assert_eq!(on.external_artifact_denied("apps", "gen"), None);
    }

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
