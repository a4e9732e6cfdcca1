//! `Kustomization`, `kustomize.toolkit.fluxcd.io/v1` (kustomize-controller `api/v1`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::kustomize::{Image, Patch, Selector};
use crate::meta::{
    self, DependencyReference, DurationError, KubeConfigReference, LocalObjectReference,
    NamespacedObjectKindReference, ObjectId, ObjectIdError, Snapshot,
};
use crate::string_enum::string_enum;

/// The API group of Kustomizations.
pub const GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The API version of [`Kustomization`].
pub const VERSION: &str = "v1";
/// The kind of [`Kustomization`].
pub const KUSTOMIZATION_KIND: &str = "Kustomization";

/// Label naming the Kustomization that applied an object.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Label naming the namespace of the Kustomization that applied an object.
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// Annotation on an applied object; [`DISABLED_VALUE`] keeps it from being garbage collected.
pub const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";
/// Annotation on an applied object steering server-side apply: [`SSA_MERGE_VALUE`],
/// [`SSA_IF_NOT_PRESENT_VALUE`] or [`SSA_IGNORE_VALUE`] (or the legacy [`MERGE_VALUE`]).
pub const SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";
/// Annotation on an applied object; [`ENABLED_VALUE`] recreates it when an immutable field
/// changes.
pub const FORCE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/force";
/// Annotation on a Kustomization or an applied object; [`DISABLED_VALUE`] stops reconciling it.
pub const RECONCILE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/reconcile";
/// Annotation on an object in a source; [`DISABLED_VALUE`] skips variable substitution for it.
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";
/// Annotation value `enabled`.
pub const ENABLED_VALUE: &str = "enabled";
/// Annotation value `disabled`.
pub const DISABLED_VALUE: &str = "disabled";
/// Legacy value of [`SSA_ANNOTATION`], same as [`SSA_MERGE_VALUE`].
pub const MERGE_VALUE: &str = "merge";
/// [`SSA_ANNOTATION`]: keep fields set by other managers (merge).
pub const SSA_MERGE_VALUE: &str = "Merge";
/// [`SSA_ANNOTATION`]: create the object if missing, never update it.
pub const SSA_IF_NOT_PRESENT_VALUE: &str = "IfNotPresent";
/// [`SSA_ANNOTATION`]: skip the object altogether.
pub const SSA_IGNORE_VALUE: &str = "Ignore";
/// The field manager Flux's kustomize-controller applies with. Objects applied by Flux belong to
/// it; using it too lets sluice take them over without field conflicts.
pub const FIELD_MANAGER: &str = "kustomize-controller";

string_enum! {
    /// The kind of a Kustomization's source (`spec.sourceRef.kind`).
    pub enum SourceKind {
        /// `source.toolkit.fluxcd.io` OCIRepository.
        OciRepository = "OCIRepository",
        /// `source.toolkit.fluxcd.io` GitRepository.
        GitRepository = "GitRepository",
        /// `source.toolkit.fluxcd.io` Bucket.
        Bucket = "Bucket",
        /// `source.toolkit.fluxcd.io` ExternalArtifact.
        ExternalArtifact = "ExternalArtifact",
    }
}

string_enum! {
    /// What happens to applied objects when the Kustomization is deleted (`spec.deletionPolicy`).
    pub enum DeletionPolicy {
        /// Delete if `prune` is true, orphan otherwise.
        MirrorPrune = "MirrorPrune",
        /// Delete.
        Delete = "Delete",
        /// Delete and wait until the objects are gone.
        WaitForTermination = "WaitForTermination",
        /// Leave them.
        Orphan = "Orphan",
    }
}

string_enum! {
    /// The decryption engine (`spec.decryption.provider`).
    pub enum DecryptionProvider {
        /// SOPS.
        Sops = "sops",
    }
}

string_enum! {
    /// The kind of a source of substitution variables (`spec.postBuild.substituteFrom[].kind`).
    pub enum SubstituteKind {
        /// A Secret.
        Secret = "Secret",
        /// A ConfigMap.
        ConfigMap = "ConfigMap",
    }
}

string_enum! {
    /// When to substitute variables (`spec.postBuild.substituteStrategy`).
    pub enum SubstituteStrategy {
        /// Only when at least one variable is defined (the default).
        WithVariables = "WithVariables",
        /// Always, even without variables.
        Always = "Always",
    }
}

string_enum! {
    /// Kustomize build metadata to add to built objects (`spec.buildMetadata[]`).
    pub enum BuildMetadataOption {
        /// Annotate objects with their origin in the source.
        OriginAnnotations = "originAnnotations",
        /// Annotate objects with the transformers that produced them.
        TransformerAnnotations = "transformerAnnotations",
    }
}

/// KustomizationSpec defines the configuration to calculate the desired state from a Source
/// using Kustomize.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "kustomize.toolkit.fluxcd.io",
    version = "v1",
    kind = "Kustomization",
    plural = "kustomizations",
    singular = "kustomization",
    namespaced,
    status = "KustomizationStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "ks",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-appliers",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationSpec {
    /// CommonMetadata specifies the common labels and annotations that are applied to all
    /// resources. Any existing label or annotation will be overridden if its key matches a
    /// common one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,

    /// DependsOn may contain a DependencyReference slice with references to Kustomization
    /// resources that must be ready before this Kustomization can be reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<DependencyReference>>,

    /// Decrypt Kubernetes secrets before applying them on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,

    /// The interval at which to reconcile the Kustomization. This interval is approximate and
    /// may be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// The interval at which to retry a previously failed reconciliation. When not specified,
    /// the controller uses the KustomizationSpec.Interval value to retry failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub retry_interval: Option<String>,

    /// The KubeConfig for reconciling the Kustomization on a remote cluster. When used in
    /// combination with KustomizationSpec.ServiceAccountName, forces the controller to act on
    /// behalf of that Service Account at the target cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,

    /// Path to the directory containing the kustomization.yaml file, or the set of plain YAMLs a
    /// kustomization.yaml should be generated for. Defaults to 'None', which translates to the
    /// root path of the SourceRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// PostBuild describes which actions to perform on the YAML manifest generated by building
    /// the kustomize overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_build: Option<PostBuild>,

    /// Prune enables garbage collection.
    pub prune: bool,

    /// DeletionPolicy can be used to control garbage collection when this Kustomization is
    /// deleted. Valid values are ('MirrorPrune', 'Delete', 'WaitForTermination', 'Orphan').
    /// 'MirrorPrune' mirrors the Prune field (orphan if false, delete if true). Defaults to
    /// 'MirrorPrune'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// A list of resources to be included in the health assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<NamespacedObjectKindReference>>,

    /// HealthCheckExprs is a list of healthcheck expressions for evaluating the health of custom
    /// resources using Common Expression Language (CEL). The expressions are evaluated only when
    /// Wait or HealthChecks are specified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exprs: Option<Vec<CustomHealthCheck>>,

    /// NamePrefix will prefix the names of all managed resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_prefix: Option<String>,

    /// NameSuffix will suffix the names of all managed resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_suffix: Option<String>,

    /// Strategic merge and JSON patches, defined as inline YAML objects, capable of targeting
    /// objects based on kind, label and annotation selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,

    /// Images is a list of (image name, new name, new tag or digest) for changing image names,
    /// tags or digests. This can also be achieved with a patch, but this operator is simpler to
    /// specify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,

    /// The name of the Kubernetes service account to impersonate when reconciling this
    /// Kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Reference of the source where the kustomization file is.
    pub source_ref: CrossNamespaceSourceReference,

    /// This flag tells the controller to suspend subsequent kustomize executions, it does not
    /// apply to already started executions. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// TargetNamespace sets or overrides the namespace in the kustomization.yaml file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,

    /// Timeout for validation, apply and health checking operations. Defaults to 'Interval'
    /// duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// Force instructs the controller to recreate resources when patching fails due to an
    /// immutable field change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub force: Option<bool>,

    /// Wait instructs the controller to check the health of all the reconciled resources. When
    /// enabled, the HealthChecks are ignored. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,

    /// Components specifies relative paths to kustomize Components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,

    /// IgnoreMissingComponents instructs the controller to ignore Components paths not found in
    /// source by removing them from the generated kustomization.yaml before running kustomize
    /// build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_components: Option<bool>,

    /// Ignore is a list of rules for specifying which changes to ignore during drift detection.
    /// These rules are applied to the resources managed by the Kustomization and are used to
    /// exclude specific JSON pointer paths from the drift detection and apply process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<IgnoreRule>>,

    /// BuildMetadata specifies which kustomize build metadata should be added to the built
    /// resources. The allowed values are 'originAnnotations' to annotate resources with their
    /// source origin, and 'transformerAnnotations' to annotate resources with the transformers
    /// that produced them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_metadata: Option<Vec<BuildMetadataOption>>,
}

impl JsonSchema for Kustomization {
    fn schema_name() -> Cow<'static, str> {
        KUSTOMIZATION_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<KustomizationSpec, KustomizationStatus>(
            generator,
            "Kustomization is the Schema for the kustomizations API.",
        )
    }
}

/// The shortest timeout Flux uses for a Kustomization.
const MIN_TIMEOUT: Duration = Duration::from_secs(30);

impl KustomizationSpec {
    /// A spec with the required fields and nothing else.
    pub fn new(
        interval: impl Into<String>,
        prune: bool,
        source_ref: CrossNamespaceSourceReference,
    ) -> Self {
        Self {
            common_metadata: None,
            depends_on: None,
            decryption: None,
            interval: interval.into(),
            retry_interval: None,
            kube_config: None,
            path: None,
            post_build: None,
            prune,
            deletion_policy: None,
            health_checks: None,
            health_check_exprs: None,
            name_prefix: None,
            name_suffix: None,
            patches: None,
            images: None,
            service_account_name: None,
            source_ref,
            suspend: None,
            target_namespace: None,
            timeout: None,
            force: None,
            wait: None,
            components: None,
            ignore_missing_components: None,
            ignore: None,
            build_metadata: None,
        }
    }

    /// `spec.interval`, parsed.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(&self.interval)
    }

    /// The interval after a failure: `spec.retryInterval`, or else `spec.interval`.
    pub fn retry_interval(&self) -> Result<Duration, DurationError> {
        match &self.retry_interval {
            Some(retry) => meta::parse_duration(retry),
            None => self.interval(),
        }
    }

    /// The timeout in effect, as Flux computes it: `spec.timeout`, or else the interval less
    /// 30s; never below 30s.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        let timeout = match &self.timeout {
            Some(timeout) => meta::parse_duration(timeout)?,
            None => self.interval()?.saturating_sub(MIN_TIMEOUT),
        };
        Ok(timeout.max(MIN_TIMEOUT))
    }

    /// Whether reconciliation is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// Whether `spec.force` is set.
    pub fn is_force(&self) -> bool {
        self.force.unwrap_or(false)
    }

    /// Whether `spec.wait` is set.
    pub fn is_wait(&self) -> bool {
        self.wait.unwrap_or(false)
    }

    /// The deletion policy in effect (`MirrorPrune` when unset).
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.deletion_policy
            .clone()
            .unwrap_or(DeletionPolicy::MirrorPrune)
    }

    /// Whether the applied objects are deleted with the Kustomization.
    pub fn deletes_on_finalize(&self) -> bool {
        match self.deletion_policy() {
            DeletionPolicy::MirrorPrune => self.prune,
            DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
            DeletionPolicy::Orphan | DeletionPolicy::Unknown(_) => false,
        }
    }
}

/// CommonMetadata defines the common labels and annotations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonMetadata {
    /// Annotations to be added to the object's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Labels to be added to the object's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Decryption defines how decryption is handled for Kubernetes manifests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    /// Provider is the name of the decryption engine.
    pub provider: DecryptionProvider,

    /// The secret name containing the private OpenPGP keys used for decryption. A static
    /// credential for a cloud provider defined inside the Secret takes priority to secret-less
    /// authentication with the ServiceAccountName field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// ServiceAccountName is the name of the service account used to authenticate with KMS
    /// services from cloud providers. If a static credential for a given cloud provider is
    /// defined inside the Secret referenced by SecretRef, that static credential takes priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// PostBuild describes which actions to perform on the YAML manifest generated by building the
/// kustomize overlay.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostBuild {
    /// Substitute holds a map of key/value pairs. The variables defined in your YAML manifests
    /// that match any of the keys defined in the map will be substituted with the set value.
    /// Includes support for bash string replacement functions e.g. ${var:=default},
    /// ${var:position} and ${var/substring/replacement}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<BTreeMap<String, String>>,

    /// SubstituteFrom holds references to ConfigMaps and Secrets containing the variables and
    /// their values to be substituted in the YAML manifests. The ConfigMap and the Secret data
    /// keys represent the var names, and they must match the vars declared in the manifests for
    /// the substitution to happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute_from: Option<Vec<SubstituteReference>>,

    /// SubstituteStrategy defines the strategy for substituting variables in the YAML manifests.
    /// 'WithVariables' (the default) requires at least one variable to be defined, either
    /// through the inline map or through the resolved references to ConfigMaps and Secrets;
    /// 'Always' performs the substitution even if no variables are defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute_strategy: Option<SubstituteStrategy>,
}

/// SubstituteReference contains a reference to a resource containing the variables name and
/// value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubstituteReference {
    /// Kind of the values referent, valid values are ('Secret', 'ConfigMap').
    pub kind: SubstituteKind,

    /// Name of the values referent. Should reside in the same namespace as the referring
    /// resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Optional indicates whether the referenced resource must exist, or whether to tolerate its
    /// absence. If true and the referenced resource is absent, proceed as if the resource was
    /// present but empty, without any variables defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub optional: Option<bool>,
}

impl SubstituteReference {
    /// Whether the referent may be absent.
    pub fn is_optional(&self) -> bool {
        self.optional.unwrap_or(false)
    }
}

/// CrossNamespaceSourceReference contains enough information to let you locate the typed
/// Kubernetes resource object at cluster level.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    pub kind: SourceKind,

    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent, defaults to the namespace of the Kubernetes resource object
    /// that contains the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl CrossNamespaceSourceReference {
    /// A reference to the GitRepository `name` in the referrer's namespace.
    pub fn git_repository(name: impl Into<String>) -> Self {
        Self {
            api_version: None,
            kind: SourceKind::GitRepository,
            name: name.into(),
            namespace: None,
        }
    }

    /// The `apiVersion` of the source: `spec.sourceRef.apiVersion`, or else
    /// `source.toolkit.fluxcd.io/v1`, the version all of Flux's source kinds are served at.
    pub fn api_version(&self) -> &str {
        match self.api_version.as_deref() {
            Some(api_version) if !api_version.is_empty() => api_version,
            _ => "source.toolkit.fluxcd.io/v1",
        }
    }

    /// The namespace of the source, falling back to the namespace of the referrer.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(namespace) if !namespace.is_empty() => namespace,
            _ => referrer_namespace,
        }
    }
}

/// CustomHealthCheck defines the health check for custom resources.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomHealthCheck {
    /// APIVersion of the custom resource under evaluation.
    pub api_version: String,

    /// Kind of the custom resource under evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,

    /// Current is the CEL expression that determines if the status of the custom resource has
    /// reached the desired state.
    pub current: String,

    /// InProgress is the CEL expression that determines if the status of the custom resource has
    /// not yet reached the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,

    /// Failed is the CEL expression that determines if the status of the custom resource has
    /// failed to reach the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// IgnoreRule defines a rule to selectively disregard specific changes during the drift
/// detection process.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreRule {
    /// Paths is a list of JSON Pointer (RFC 6901) paths to be excluded from consideration in a
    /// Kubernetes object.
    pub paths: Vec<String>,

    /// Target is a selector for specifying Kubernetes objects to which this rule applies. If
    /// Target is not set, the Paths will be ignored for all Kubernetes objects within the
    /// manifest of the Kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// KustomizationStatus defines the observed state of a kustomization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationStatus {
    /// ObservedGeneration is the last reconciled generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    #[allow(missing_docs)]
    pub conditions: Option<Vec<Condition>>,

    /// The last successfully applied revision. Equals the Revision of the applied Artifact from
    /// the referenced Source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,

    /// The last successfully applied origin revision. Equals the origin revision of the applied
    /// Artifact from the referenced Source, e.g. for OCI the value associated with the key
    /// "org.opencontainers.image.revision".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_origin_revision: Option<String>,

    /// LastAttemptedRevision is the revision of the last reconciliation attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,

    /// Inventory contains the list of Kubernetes resource object references that have been
    /// successfully applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,

    /// History contains a set of snapshots of the last reconciliation attempts tracking the
    /// revision, the state and the duration of each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Snapshot>>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a
    /// change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// ResourceInventory contains a list of Kubernetes resource object references that have been
/// applied by a Kustomization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInventory {
    /// Entries of Kubernetes resource object references.
    pub entries: Vec<ResourceRef>,
}

/// ResourceRef contains the information necessary to locate a resource within a cluster.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// ID is the string representation of the Kubernetes resource object's metadata, in the
    /// format '<namespace>_<name>_<group>_<kind>'.
    pub id: String,

    /// Version is the API version of the Kubernetes resource object's kind.
    pub v: String,
}

impl ResourceRef {
    /// The entry for an object with the given identity and API version (the version alone,
    /// without the group, e.g. `v1`).
    pub fn new(id: &ObjectId, version: impl Into<String>) -> Self {
        Self {
            id: id.to_string(),
            v: version.into(),
        }
    }

    /// The parsed identity.
    pub fn object_id(&self) -> Result<ObjectId, ObjectIdError> {
        ObjectId::parse(&self.id)
    }

    /// The object's `apiVersion`: `<group>/<v>`, or `<v>` for the core group.
    pub fn api_version(&self) -> Result<String, ObjectIdError> {
        let id = self.object_id()?;
        Ok(if id.group.is_empty() {
            self.v.clone()
        } else {
            format!("{}/{}", id.group, self.v)
        })
    }
}

impl KustomizationStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

impl Kustomization {
    /// The inventory entries (empty without inventory).
    pub fn inventory(&self) -> &[ResourceRef] {
        self.status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map_or(&[], |i| i.entries.as_slice())
    }
}

impl meta::FluxObject for Kustomization {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
    }

    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }

    fn last_handled_reconcile_at(&self) -> Option<&str> {
        self.status.as_ref()?.last_handled_reconcile_at.as_deref()
    }

    fn is_suspended(&self) -> bool {
        self.spec.is_suspended()
    }

    fn interval(&self) -> Result<Duration, DurationError> {
        self.spec.interval()
    }
}
