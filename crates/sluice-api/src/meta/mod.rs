//! What Flux's controllers share (`github.com/fluxcd/pkg/apis/meta` and friends): condition types
//! and reasons, labels and annotations, object references, the source artifact, reconcile
//! requests, and the string formats Flux writes into its objects (durations, revisions,
//! inventory ids, and errors with their causes in condition messages).

mod conditions;
mod duration;
mod inventory;
mod revision;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use conditions::*;
pub use duration::{
    DURATION_PATTERN, DURATION_PATTERN_NO_HOURS, DurationError, format_duration, parse_duration,
};
pub use inventory::{ObjectId, ObjectIdError};
pub use revision::{Revision, RevisionError};

/// An error with the causes beneath it, each once, as a condition or event message:
/// `client error (Connect): tcp connect error: Connection refused (os error 111)` where the
/// error alone says `client error (Connect)`. A cause whose text is already in the message
/// (many errors print their source) or is empty is left out.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The finalizer Flux's controllers put on the objects they reconcile.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Annotation that requests a reconciliation outside of the interval. The value is a token; any
/// change of it requests a reconciliation (`flux reconcile` writes the current time).
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Annotation that requests a one-off forced reconciliation; honoured when its value equals the
/// value of [`RECONCILE_REQUEST_ANNOTATION`].
pub const FORCE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";

/// Label that asks Flux to watch a Secret or ConfigMap an object refers to.
pub const WATCH_LABEL: &str = "toolkit.fluxcd.io/watch";

/// The value of [`WATCH_LABEL`] that enables watching.
pub const WATCH_LABEL_ENABLED: &str = "Enabled";

/// The reconcile request token of an object's annotations, if it has one.
pub fn reconcile_request(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations?
        .get(RECONCILE_REQUEST_ANNOTATION)
        .map(String::as_str)
}

/// Whether the object carries a reconcile request that its status has not handled yet.
pub fn has_unhandled_reconcile_request(
    annotations: Option<&BTreeMap<String, String>>,
    last_handled_reconcile_at: Option<&str>,
) -> bool {
    match reconcile_request(annotations) {
        Some(token) => last_handled_reconcile_at != Some(token),
        None => false,
    }
}

/// What the reconcilers, `flux get` style listings and `flux reconcile` style waits read from
/// any Flux object, whatever its kind.
pub trait FluxObject: kube::Resource {
    /// The status conditions (empty without status).
    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition];

    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;

    /// `status.lastHandledReconcileAt`.
    fn last_handled_reconcile_at(&self) -> Option<&str>;

    /// Whether `spec.suspend` is set.
    fn is_suspended(&self) -> bool;

    /// `spec.interval`, parsed.
    fn interval(&self) -> Result<std::time::Duration, DurationError>;

    /// The `Ready` condition, if present.
    fn ready_condition(
        &self,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        find_condition(self.conditions(), READY_CONDITION)
    }

    /// Whether the object is Ready for its current generation.
    fn is_ready(&self) -> bool {
        let generation = self.meta().generation;
        is_ready(self.conditions())
            && (generation.is_none() || self.observed_generation() == generation)
    }

    /// Whether the object has a reconcile request (`reconcile.fluxcd.io/requestedAt`) that its
    /// status does not record as handled yet.
    fn has_unhandled_reconcile_request(&self) -> bool {
        has_unhandled_reconcile_request(
            self.meta().annotations.as_ref(),
            self.last_handled_reconcile_at(),
        )
    }
}

/// A reference to an object in the same namespace (`meta.LocalObjectReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

impl LocalObjectReference {
    /// A reference to the object called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// A reference to an object in any namespace (`meta.NamespacedObjectReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent, when not specified it acts as LocalObjectReference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to an object of a given kind in any namespace
/// (`meta.NamespacedObjectKindReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the referent, if not specified the Kubernetes preferred version will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    pub kind: String,

    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent, when not specified it acts as LocalObjectReference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to an object in any namespace, with an optional CEL expression that decides its
/// readiness (`meta.DependencyReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReference {
    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent, defaults to the namespace of the resource object that contains
    /// the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// ReadyExpr is a CEL expression that assesses the readiness of the dependency. When set, it
    /// replaces the built-in readiness check (or, with the `AdditiveCELDependencyCheck` feature
    /// gate, adds to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

impl DependencyReference {
    /// The namespace of the dependency, falling back to the namespace of the referring object.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(namespace) if !namespace.is_empty() => namespace,
            _ => referrer_namespace,
        }
    }
}

/// A reference to a key of a Secret in the same namespace (`meta.SecretKeyReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,

    /// Key in the Secret, when not specified an implementation-specific default key is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where to find the kubeconfig of a remote cluster (`meta.KubeConfigReference`): exactly one of
/// a ConfigMap describing a cloud provider's cluster, or a Secret holding a kubeconfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified",
        "rule": "has(self.configMapRef) || has(self.secretRef)"
    },
    {
        "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified",
        "rule": "!has(self.configMapRef) || !has(self.secretRef)"
    }
]))]
pub struct KubeConfigReference {
    /// ConfigMapRef names a ConfigMap in the same namespace with the keys `provider` (`aws`,
    /// `azure`, `gcp` or `generic`), `cluster`, `address`, `ca.crt`, `audiences` and
    /// `serviceAccountName`, describing how to reach and authenticate to the cluster.
    /// Mutually exclusive with SecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,

    /// SecretRef names a Secret holding a kubeconfig under `key` (default `value`, then
    /// `value.yaml`). Mutually exclusive with ConfigMapRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// An access control list for cross-namespace references to an object (`acl.AccessFrom`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// NamespaceSelectors is the list of namespace selectors to which this ACL applies. Items in
    /// this list are evaluated using a logical OR operation.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// NamespaceSelector selects the namespaces to which this ACL applies. An empty map of
/// MatchLabels matches all namespaces in a cluster (`acl.NamespaceSelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// MatchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is
    /// equivalent to an element of matchExpressions, whose key field is "key", the operator is
    /// "In", and the values array contains only "value". The requirements are ANDed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// The output of a source reconciliation: an archive in the source controller's storage
/// (`meta.Artifact`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path is the relative file path of the Artifact in the root of the Artifact storage of the
    /// controller managing the source.
    pub path: String,

    /// URL is the HTTP address of the Artifact as exposed by the controller managing the source.
    pub url: String,

    /// Revision is a human-readable identifier traceable in the origin source system, e.g.
    /// `main@sha1:<commit>` for Git.
    pub revision: String,

    /// Digest is the digest of the file in the form of '<algorithm>:<checksum>'.
    #[schemars(pattern(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"))]
    pub digest: String,

    /// LastUpdateTime is the timestamp corresponding to the last update of the Artifact.
    pub last_update_time: Time,

    /// Size is the number of bytes in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,

    /// Metadata holds upstream information such as OCI annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Artifact {
    /// What identifies this copy of the artifact for its users: revision, digest, URL and
    /// time of storing. The same revision stored again (a source controller that restarted or
    /// took over with empty storage) or with other content (a changed `spec.ignore`) differs,
    /// so a consumer that failed to download it tries again at once instead of waiting out
    /// its retry interval.
    pub fn identity(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.revision, self.digest, self.url, self.last_update_time.0
        )
    }

    /// Whether this artifact has the given revision. Legacy (`main/<sha>`) and current
    /// (`main@sha1:<sha>`) forms of the same revision are equal.
    pub fn has_revision(&self, revision: &str) -> bool {
        if self.revision == revision {
            return true;
        }
        match (Revision::parse(&self.revision), Revision::parse(revision)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

/// A point-in-time record of reconciling a set of resources (`meta.Snapshot`), kept in
/// `status.history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Digest is the checksum in the format `<algo>:<hex>` of the resources in this snapshot.
    pub digest: String,

    /// FirstReconciled is the time when this revision was first reconciled to the cluster.
    pub first_reconciled: Time,

    /// LastReconciled is the time when this revision was last reconciled to the cluster.
    pub last_reconciled: Time,

    /// LastReconciledDuration is time it took to reconcile the resources in this revision.
    pub last_reconciled_duration: String,

    /// LastReconciledStatus is the status of the last reconciliation.
    pub last_reconciled_status: String,

    /// Metadata contains additional information about the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,

    /// TotalReconciliations is the total number of reconciliations that have occurred for this
    /// snapshot.
    pub total_reconciliations: i64,
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |below, t| Some(Layer(t, below.map(Box::new))))
            .expect("one layer at least")
    }

    #[test]
    fn causes_follow_the_error_once_each() {
        let e = chain(&[
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(
            error_chain(&e),
            "client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        // A cause the error already prints, or an empty one, is not repeated.
        let e = chain(&["fetching: timed out", "", "timed out"]);
        assert_eq!(error_chain(&e), "fetching: timed out");
        assert_eq!(error_chain(&chain(&["alone"])), "alone");
    }
}
