//! `HelmRelease`, `helm.toolkit.fluxcd.io/v2` (helm-controller `api/v2`).
//!
//! Every field of Flux's CRD is here with its wire name, validations and default, so an object
//! written for helm-controller is read and written back unchanged. The accessors (`release_name`,
//! `timeout`, the remediation getters, ...) apply the defaults helm-controller applies when a
//! field is unset; the controller reads the spec only through them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kustomization::{
    CommonMetadata, CustomHealthCheck, IgnoreRule, ResourceInventory, ResourceRef,
};
use crate::kustomize::{Image, Patch};
use crate::meta::{
    self, DependencyReference, DurationError, KubeConfigReference, LocalObjectReference,
};
use crate::source::{OCIVerificationProvider, ReconcileStrategy};
use crate::string_enum::string_enum;

/// The API group of HelmReleases.
pub const GROUP: &str = "helm.toolkit.fluxcd.io";
/// The API version of [`HelmRelease`].
pub const VERSION: &str = "v2";
/// The kind of [`HelmRelease`].
pub const HELM_RELEASE_KIND: &str = "HelmRelease";

/// Condition type: the last Helm action (install, upgrade) succeeded.
pub const RELEASED_CONDITION: &str = "Released";
/// Condition type: the last Helm test run succeeded.
pub const TEST_SUCCESS_CONDITION: &str = "TestSuccess";
/// Condition type: the last failure was remediated (rolled back or uninstalled).
pub const REMEDIATED_CONDITION: &str = "Remediated";
/// Condition type: the cluster no longer matches the release manifest.
pub const DRIFTED_CONDITION: &str = "Drifted";

/// Reason: Helm install succeeded.
pub const INSTALL_SUCCEEDED_REASON: &str = "InstallSucceeded";
/// Reason: Helm install failed.
pub const INSTALL_FAILED_REASON: &str = "InstallFailed";
/// Reason: Helm upgrade succeeded.
pub const UPGRADE_SUCCEEDED_REASON: &str = "UpgradeSucceeded";
/// Reason: Helm upgrade failed.
pub const UPGRADE_FAILED_REASON: &str = "UpgradeFailed";
/// Reason: Helm tests passed.
pub const TEST_SUCCEEDED_REASON: &str = "TestSucceeded";
/// Reason: a Helm test failed.
pub const TEST_FAILED_REASON: &str = "TestFailed";
/// Reason: the rollback succeeded.
pub const ROLLBACK_SUCCEEDED_REASON: &str = "RollbackSucceeded";
/// Reason: the rollback failed.
pub const ROLLBACK_FAILED_REASON: &str = "RollbackFailed";
/// Reason: the uninstall succeeded.
pub const UNINSTALL_SUCCEEDED_REASON: &str = "UninstallSucceeded";
/// Reason: the uninstall failed.
pub const UNINSTALL_FAILED_REASON: &str = "UninstallFailed";
/// Reason: the chart could not be had from its source.
pub const ARTIFACT_FAILED_REASON: &str = "ArtifactFailed";
/// Reason: the chart was had but could not be loaded or rendered.
pub const INIT_FAILED_REASON: &str = "InitFailed";
/// Reason: the values could not be composed (`valuesFrom`).
pub const VALUES_ERROR_REASON: &str = "ValuesError";
/// Reason: a `dependsOn` entry is not ready.
pub const DEPENDENCY_NOT_READY_REASON: &str = "DependencyNotReady";
/// Reason: the cluster differs from the release manifest.
pub const DRIFT_DETECTED_REASON: &str = "DriftDetected";
/// Reason: the cluster matches the release manifest.
pub const NO_DRIFT_DETECTED_REASON: &str = "NoDriftDetected";

/// Annotation requesting a one-off action even when retries are exhausted (`meta`'s
/// `reconcile.fluxcd.io/forceAt`), handled once per value.
pub const FORCE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
/// Annotation resetting the failure counters (`reconcile.fluxcd.io/resetAt`), handled once per
/// value.
pub const RESET_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";

/// How many release revisions helm-controller keeps when `spec.maxHistory` is unset.
pub const DEFAULT_MAX_HISTORY: i64 = 5;
/// helm-controller's timeout for each Helm action when `spec.timeout` is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The interval between retries of the `RetryOnFailure` strategy when unset.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(300);

string_enum! {
    /// The kinds `spec.chartRef` may name.
    pub enum ChartRefKind {
        /// An OCIRepository holding a chart (`helm push`, or `layerSelector` for one).
        OciRepository = "OCIRepository",
        /// A HelmChart.
        HelmChart = "HelmChart",
        /// An ExternalArtifact.
        ExternalArtifact = "ExternalArtifact",
    }
}

string_enum! {
    /// The kinds the chart template's `spec.chart.spec.sourceRef` may name.
    pub enum ChartTemplateSourceKind {
        /// A Helm repository (HTTP/S or OCI).
        HelmRepository = "HelmRepository",
        /// A GitRepository path.
        GitRepository = "GitRepository",
        /// A Bucket path.
        Bucket = "Bucket",
    }
}

string_enum! {
    /// What to do with the chart's `crds/` on install or upgrade.
    pub enum CrdsPolicy {
        /// Leave them alone.
        Skip = "Skip",
        /// Create new CRDs, never update existing ones.
        Create = "Create",
        /// Create new CRDs and replace existing ones.
        CreateReplace = "CreateReplace",
    }
}

string_enum! {
    /// What to do after a failed install or upgrade (`strategy.name`).
    pub enum ActionStrategyName {
        /// Remediate (uninstall or roll back) as `remediation` says, up to its retries.
        RemediateOnFailure = "RemediateOnFailure",
        /// Retry the same action every `retryInterval`, without remediating.
        RetryOnFailure = "RetryOnFailure",
    }
}

string_enum! {
    /// How a failed upgrade is remediated (`upgrade.remediation.strategy`).
    pub enum RemediationStrategy {
        /// Roll back to the last successful release.
        Rollback = "rollback",
        /// Uninstall the release.
        Uninstall = "uninstall",
    }
}

string_enum! {
    /// What happens when the chart's name changes (`upgrade.chartNameChangeStrategy`).
    pub enum ChartNameChangeStrategy {
        /// Upgrade the release in place with the new chart.
        InPlaceUpdate = "InPlaceUpdate",
        /// Uninstall the release and install the new chart.
        Reinstall = "Reinstall",
    }
}

string_enum! {
    /// Server-side apply for upgrades and rollbacks.
    pub enum ServerSideApplyMode {
        /// Always server-side apply.
        Enabled = "enabled",
        /// Client-side apply (a three-way merge).
        Disabled = "disabled",
        /// As the release being replaced was applied.
        Auto = "auto",
    }
}

string_enum! {
    /// Propagation of the deletions of an uninstall.
    pub enum DeletionPropagation {
        /// Delete dependents in the background.
        Background = "background",
        /// Delete dependents first.
        Foreground = "foreground",
        /// Leave dependents.
        Orphan = "orphan",
    }
}

string_enum! {
    /// Drift detection (`driftDetection.mode`).
    pub enum DriftDetectionMode {
        /// Detect drift and correct it.
        Enabled = "enabled",
        /// Detect drift and report it, without correcting it.
        Warn = "warn",
        /// Do not look for drift.
        Disabled = "disabled",
    }
}

string_enum! {
    /// The kind of a `valuesFrom` entry.
    pub enum ValuesKind {
        /// A Secret.
        Secret = "Secret",
        /// A ConfigMap.
        ConfigMap = "ConfigMap",
    }
}

string_enum! {
    /// Where post-renderers apply (`spec.postRenderStrategy`).
    pub enum PostRenderStrategy {
        /// To the manifest, not to hooks.
        NoHooks = "nohooks",
        /// To the manifest and the hooks together.
        Combined = "combined",
        /// To the manifest and to the hooks, separately.
        Separate = "separate",
    }
}

string_enum! {
    /// How the wait for applied objects is done (`spec.waitStrategy.name`).
    pub enum WaitStrategyName {
        /// kstatus polling.
        Poller = "poller",
        /// Helm 3's readiness rules.
        Legacy = "legacy",
    }
}

string_enum! {
    /// The Helm action a reconciliation last attempted.
    pub enum ReleaseAction {
        /// `helm install`.
        Install = "install",
        /// `helm upgrade`.
        Upgrade = "upgrade",
    }
}

/// The desired state of a Helm release: which chart, from where, with which values, and how each
/// Helm action behaves.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "helm.toolkit.fluxcd.io",
    version = "v2",
    kind = "HelmRelease",
    plural = "helmreleases",
    singular = "helmrelease",
    namespaced,
    status = "HelmReleaseStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "hr",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-appliers",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "either chart or chartRef must be set",
    "rule": "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))"
}]))]
pub struct HelmReleaseSpec {
    /// A template for the HelmChart that the controller creates (in the source's namespace) to
    /// fetch the chart. Exactly one of `chart` and `chartRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<HelmChartTemplate>,

    /// The source holding the chart: an OCIRepository, a HelmChart or an ExternalArtifact.
    /// Exactly one of `chart` and `chartRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_ref: Option<CrossNamespaceSourceReference>,

    /// How often the release is reconciled.
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// A kubeconfig for releasing to another cluster; with `serviceAccountName`, that account is
    /// impersonated there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,

    /// Suspends reconciliation; an action already running completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// The Helm release name; defaults to `<targetNamespace>-<name>` with a target namespace,
    /// else to the object's name. Names longer than 53 characters are shortened with a hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 53))]
    pub release_name: Option<String>,

    /// The namespace the release is installed into; defaults to the object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,

    /// The namespace the release records (Secrets) are stored in; defaults to the object's
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,

    /// HelmReleases and Kustomizations that must be ready before this release is reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<DependencyReference>>,

    /// The time each Helm action may take (waits included); 5m when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// How many release revisions to keep; 5 when unset, 0 for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::go_int")]
    pub max_history: Option<i64>,

    /// The service account impersonated for every Helm action of this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,

    /// Whether the Kubernetes client is kept between actions of a reconciliation (true when
    /// unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_client: Option<bool>,

    /// Drift detection between the release manifest and the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetection>,

    /// Options of Helm install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Install>,

    /// Options of Helm upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,

    /// Options of Helm test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,

    /// Options of Helm rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,

    /// Options of Helm uninstall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall: Option<Uninstall>,

    /// ConfigMaps and Secrets whose values are merged, in order, under `values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_from: Option<Vec<ValuesReference>>,

    /// Inline values, merged over those of `valuesFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown")]
    pub values: Option<Value>,

    /// Post-renderers applied to the rendered manifest, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_renderers: Option<Vec<PostRenderer>>,

    /// Where post-renderers apply: `nohooks` (the manifest only), `combined` or `separate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_render_strategy: Option<PostRenderStrategy>,

    /// Labels and annotations added to every object of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,

    /// CEL health checks for custom resources of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exprs: Option<Vec<CustomHealthCheck>>,

    /// How the wait for the release's objects is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_strategy: Option<WaitStrategy>,
}

impl JsonSchema for HelmRelease {
    fn schema_name() -> Cow<'static, str> {
        HELM_RELEASE_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<HelmReleaseSpec, HelmReleaseStatus>(
            generator,
            "HelmRelease is the Schema for the helmreleases API",
        )
    }
}

/// A reference to a source of a chart, in any namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    pub kind: ChartRefKind,

    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent; the HelmRelease's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

impl CrossNamespaceSourceReference {
    /// The namespace of the source, falling back to the referrer's.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(namespace) if !namespace.is_empty() => namespace,
            _ => referrer_namespace,
        }
    }
}

/// The HelmChart the controller creates for a HelmRelease with `spec.chart`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplate {
    /// Labels and annotations of the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HelmChartTemplateObjectMeta>,

    /// The HelmChart's spec.
    pub spec: HelmChartTemplateSpec,
}

/// Labels and annotations of a templated HelmChart.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateObjectMeta {
    /// Annotations of the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Labels of the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The spec of a templated HelmChart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateSpec {
    /// The chart's name in a Helm repository, or its path in a GitRepository or Bucket.
    #[schemars(length(min = 1, max = 2048))]
    pub chart: String,

    /// A SemVer version or range; `*` (the latest) when unset. Ignored for Git and Bucket
    /// sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,

    /// The source of the chart.
    pub source_ref: CrossNamespaceObjectReference,

    /// How often the HelmChart is reconciled; the HelmRelease's interval when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: Option<String>,

    /// What makes a new chart artifact: a new chart version or a new source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,

    /// Values files of the chart merged, in order, into its `values.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,

    /// Skip values files that do not exist instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,

    /// Verification of the chart's signature (OCI charts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<HelmChartTemplateVerification>,
}

/// A reference to a chart source for the chart template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    pub kind: ChartTemplateSourceKind,

    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent; the HelmRelease's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Signature verification of a templated HelmChart.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["provider"]))]
pub struct HelmChartTemplateVerification {
    /// The signing technology: `cosign` or `notation`.
    #[serde(default)]
    #[schemars(extend("default" = "cosign"))]
    pub provider: OCIVerificationProvider,

    /// A Secret with the trusted public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// Drift detection settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftDetection {
    /// `enabled` (detect and correct), `warn` (detect and report) or `disabled` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DriftDetectionMode>,

    /// JSON pointers of fields, of all objects or of those a target selects, that drift
    /// detection leaves alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<IgnoreRule>>,
}

impl DriftDetection {
    /// The mode in effect (`disabled` when unset).
    pub fn mode(&self) -> DriftDetectionMode {
        self.mode.clone().unwrap_or(DriftDetectionMode::Disabled)
    }
}

/// Options of Helm install.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// The time the install may take; `spec.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// What to do after a failed install (`remediation` is ignored with `RetryOnFailure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<InstallRemediation>,

    /// The strategy after a failed install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<InstallStrategy>,

    /// Do not wait for the release's objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,

    /// Do not wait for the release's Jobs to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,

    /// Do not run the chart's install hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,

    /// Do not validate the manifest against the cluster's OpenAPI schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "disableOpenAPIValidation")]
    pub disable_openapi_validation: Option<bool>,

    /// Do not validate the values against the chart's `values.schema.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_schema_validation: Option<bool>,

    /// Do not adopt objects that exist but belong to no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_take_ownership: Option<bool>,

    /// Reuse the release name of an uninstalled release kept in history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,

    /// Deprecated: use `crds: Skip`.
    #[serde(default, rename = "skipCRDs", skip_serializing_if = "Option::is_none")]
    pub skip_crds: Option<bool>,

    /// The `crds/` policy on install: `Create` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,

    /// Create the target namespace if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespace: Option<bool>,

    /// Apply with server-side apply (true when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<bool>,
}

/// The strategy after a failed install.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": ".retryInterval cannot be set when .name is 'RemediateOnFailure'",
    "rule": "!has(self.retryInterval) || self.name != 'RemediateOnFailure'"
}]))]
pub struct InstallStrategy {
    /// `RemediateOnFailure` or `RetryOnFailure`.
    pub name: ActionStrategyName,

    /// The wait between retries of `RetryOnFailure`; 5m when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub retry_interval: Option<String>,
}

/// Remediation of a failed install: uninstall, then retry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallRemediation {
    /// How many failed installs are remediated and retried (negative: without limit); 0 when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::go_int")]
    pub retries: Option<i64>,

    /// Whether a failed test after install is ignored; `test.ignoreFailures` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,

    /// Whether the last failure is remediated once retries are exhausted (false when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
}

/// Options of Helm upgrade.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// The time the upgrade may take; `spec.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// What to do after a failed upgrade (ignored with `RetryOnFailure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<UpgradeRemediation>,

    /// The strategy after a failed upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<UpgradeStrategy>,

    /// Do not wait for the release's objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,

    /// Do not wait for the release's Jobs to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,

    /// Do not run the chart's upgrade hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,

    /// Do not validate the manifest against the cluster's OpenAPI schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "disableOpenAPIValidation")]
    pub disable_openapi_validation: Option<bool>,

    /// Do not validate the values against the chart's `values.schema.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_schema_validation: Option<bool>,

    /// Do not adopt objects that exist but belong to no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_take_ownership: Option<bool>,

    /// Replace objects (delete and recreate) when an update fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,

    /// Keep the values of the last release, ignoring `values` and `valuesFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_values: Option<bool>,

    /// Clean up objects created by a failed upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,

    /// The `crds/` policy on upgrade: `Skip` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,

    /// Server-side apply for the upgrade: `auto` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyMode>,

    /// What to do when the chart's name changes: `Reinstall` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_name_change_strategy: Option<ChartNameChangeStrategy>,
}

/// The strategy after a failed upgrade.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": ".retryInterval can only be set when .name is 'RetryOnFailure'",
    "rule": "!has(self.retryInterval) || self.name == 'RetryOnFailure'"
}]))]
pub struct UpgradeStrategy {
    /// `RemediateOnFailure` or `RetryOnFailure`.
    pub name: ActionStrategyName,

    /// The wait between retries of `RetryOnFailure`; 5m when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub retry_interval: Option<String>,
}

/// Remediation of a failed upgrade: roll back or uninstall, then retry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRemediation {
    /// How many failed upgrades are remediated and retried (negative: without limit); 0 when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::go_int")]
    pub retries: Option<i64>,

    /// Whether a failed test after upgrade is ignored; `test.ignoreFailures` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,

    /// Whether the last failure is remediated once retries are exhausted (true when unset and
    /// `retries` is above 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,

    /// `rollback` (the default) or `uninstall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RemediationStrategy>,
}

/// Options of Helm test.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    /// Run the chart's tests after every install or upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,

    /// The time the tests may take; `spec.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// Whether test failures are ignored (the release stays Ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_failures: Option<bool>,

    /// Tests to run or to skip, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
}

/// A test to run or to skip.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// The test's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Skip this test rather than run only the named ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
}

/// Options of Helm rollback.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The time the rollback may take; `spec.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// Do not wait for the objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,

    /// Do not wait for Jobs to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,

    /// Do not run the rollback hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,

    /// Restart the Pods of the rolled-back objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreate: Option<bool>,

    /// Replace objects (delete and recreate) when an update fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,

    /// Clean up objects created by a failed rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,

    /// Server-side apply for the rollback: `auto` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyMode>,
}

/// Options of Helm uninstall.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uninstall {
    /// The time the uninstall may take; `spec.timeout` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,

    /// Do not run the delete hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,

    /// Keep the release records, marked uninstalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_history: Option<bool>,

    /// Do not wait for the objects to be gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,

    /// How deletions propagate: `background` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "background"))]
    pub deletion_propagation: Option<DeletionPropagation>,
}

/// A ConfigMap or Secret holding values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    /// `ConfigMap` or `Secret`.
    pub kind: ValuesKind,

    /// Its name, in the HelmRelease's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// The data key holding the values; `values.yaml` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(r"^[\-._a-zA-Z0-9]+$"))]
    pub values_key: Option<String>,

    /// Where the key's value goes, in `--set` path syntax (`a.b[0].c`); the whole values when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 250), pattern(r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$"))]
    pub target_path: Option<String>,

    /// Whether a missing object or key is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,

    /// With `targetPath`: the value is a string, never parsed as `--set` would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<bool>,
}

impl ValuesReference {
    /// The data key: `valuesKey`, or `values.yaml`.
    pub fn values_key(&self) -> &str {
        match self.values_key.as_deref() {
            Some(key) if !key.is_empty() => key,
            _ => "values.yaml",
        }
    }

    /// Whether absence is tolerated.
    pub fn is_optional(&self) -> bool {
        self.optional.unwrap_or(false)
    }
}

/// A post-renderer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostRenderer {
    /// Kustomize patches and images applied to the rendered manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizePostRenderer>,
}

/// The kustomize post-renderer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizePostRenderer {
    /// Strategic merge or JSON 6902 patches, with their targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,

    /// Image name, tag and digest replacements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
}

/// The wait strategy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitStrategy {
    /// `poller` (kstatus) or `legacy` (Helm 3's rules).
    pub name: WaitStrategyName,
}

/// The observed state of a HelmRelease.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseStatus {
    /// The last generation reconciled to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The generation of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_generation: Option<i64>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    #[allow(missing_docs)]
    pub conditions: Option<Vec<Condition>>,

    /// The HelmChart (`<namespace>/<name>`) made from `spec.chart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_chart: Option<String>,

    /// The namespace the release records are stored in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,

    /// Snapshots of the releases, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Snapshot>>,

    /// The revision of the last release written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::go_int")]
    pub last_release_revision: Option<i64>,

    /// The chart version (or artifact revision) of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,

    /// The digest of the chart artifact of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision_digest: Option<String>,

    /// Deprecated: the SHA-1 of the values of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_values_checksum: Option<String>,

    /// The digest of the values of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_config_digest: Option<String>,

    /// The action of the last attempt: `install` or `upgrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action: Option<ReleaseAction>,

    /// How long the last install or upgrade took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action_duration: Option<String>,

    /// The failures of the current attempt series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<i64>,

    /// Failed installs since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_failures: Option<i64>,

    /// Failed upgrades since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_failures: Option<i64>,

    /// The digest of the post-renderers of the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_post_renderers_digest: Option<String>,

    /// The digest of the common metadata of the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_common_metadata_digest: Option<String>,

    /// The objects of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,

    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The last handled `reconcile.fluxcd.io/forceAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_force_at: Option<String>,

    /// The last handled `reconcile.fluxcd.io/resetAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reset_at: Option<String>,
}

/// A release as helm-controller records it in `status.history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The version of this record's format (`v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// The digest of the release's observation.
    pub digest: String,

    /// The release name.
    pub name: String,

    /// The release namespace.
    pub namespace: String,

    /// The release revision.
    #[schemars(schema_with = "crate::schema::go_int")]
    pub version: i64,

    /// The release status (`deployed`, `failed`, `superseded`, ...).
    pub status: String,

    /// What made the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,

    /// The chart's name.
    pub chart_name: String,

    /// The chart's version.
    pub chart_version: String,

    /// The chart's appVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,

    /// The digest of the release's values.
    pub config_digest: String,

    /// When the release was first deployed.
    pub first_deployed: Time,

    /// When the release was last deployed.
    pub last_deployed: Time,

    /// When the release was uninstalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Time>,

    /// The test hooks of the release and how they last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_hooks: Option<BTreeMap<String, TestHookStatus>>,

    /// The OCI digest of the chart, for charts from an OCI registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_digest: Option<String>,
}

/// How a test hook last ran.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestHookStatus {
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started: Option<Time>,

    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<Time>,

    /// Its phase (`Succeeded`, `Failed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

impl Snapshot {
    /// The `<namespace>/<name>.v<version>` helm-controller prints for a release.
    pub fn full_release_name(&self) -> String {
        format!("{}/{}.v{}", self.namespace, self.name, self.version)
    }

    /// The `<chart name>@<chart version>` helm-controller prints.
    pub fn versioned_chart_name(&self) -> String {
        format!("{}@{}", self.chart_name, self.chart_version)
    }

    /// Whether the release's tests ran (helm-controller's `HasBeenTested`): a recorded test hook
    /// map, empty (no tests) or with a failure or every hook succeeded.
    pub fn has_been_tested(&self) -> bool {
        let Some(hooks) = &self.test_hooks else {
            return false;
        };
        if hooks.is_empty() || self.has_test_in_phase(TEST_PHASE_FAILED) {
            return true;
        }
        hooks
            .values()
            .all(|h| h.phase.as_deref() == Some(TEST_PHASE_SUCCEEDED))
    }

    /// Whether a test hook is in `phase`.
    pub fn has_test_in_phase(&self, phase: &str) -> bool {
        self.test_hooks
            .iter()
            .flat_map(BTreeMap::values)
            .any(|h| h.phase.as_deref() == Some(phase))
    }

    /// Whether this snapshot is of a release that a rollback may return to: `deployed` or
    /// `superseded`, and (unless test failures are ignored) without a failed test.
    fn is_rollback_target(&self, ignore_tests: bool) -> bool {
        (self.status == STATUS_DEPLOYED || self.status == STATUS_SUPERSEDED)
            && (ignore_tests || !self.has_test_in_phase(TEST_PHASE_FAILED))
    }
}

/// The phase of a failed test hook.
pub const TEST_PHASE_FAILED: &str = "Failed";
/// The phase of a passed test hook.
pub const TEST_PHASE_SUCCEEDED: &str = "Succeeded";
const STATUS_DEPLOYED: &str = "deployed";
const STATUS_SUPERSEDED: &str = "superseded";

impl HelmReleaseStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }

    /// The newest snapshot of `history` (the highest version).
    pub fn latest(&self) -> Option<&Snapshot> {
        self.history.as_deref()?.iter().max_by_key(|s| s.version)
    }

    /// What a rollback returns to (helm-controller's `Previous`): below the newest, the newest
    /// `deployed` or `superseded` snapshot, without a failed test unless tests are ignored.
    pub fn previous(&self, ignore_tests: bool) -> Option<&Snapshot> {
        let mut sorted: Vec<&Snapshot> = self.history.as_deref()?.iter().collect();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.version));
        sorted
            .into_iter()
            .skip(1)
            .find(|s| s.is_rollback_target(ignore_tests))
    }

    /// `history` newest first, cut after the rollback target (helm-controller's `Truncate`), or
    /// else to 5 snapshots.
    pub fn truncate_history(&mut self, ignore_tests: bool) {
        let Some(history) = self.history.as_mut() else {
            return;
        };
        if history.len() < 2 {
            return;
        }
        history.sort_by_key(|s| std::cmp::Reverse(s.version));
        if let Some(i) = history
            .iter()
            .skip(1)
            .position(|s| s.is_rollback_target(ignore_tests))
        {
            history.truncate(i + 2);
        } else {
            history.truncate(DEFAULT_MAX_HISTORY as usize);
        }
    }

    /// `history` newest first, cut to 5 snapshots (helm-controller's
    /// `TruncateIgnoringPreviousSnapshots`).
    pub fn truncate_history_ignoring_previous(&mut self) {
        if let Some(history) = self.history.as_mut() {
            history.sort_by_key(|s| std::cmp::Reverse(s.version));
            history.truncate(DEFAULT_MAX_HISTORY as usize);
        }
    }

    /// Zeroes the failure counters.
    pub fn clear_failures(&mut self) {
        self.failures = None;
        self.install_failures = None;
        self.upgrade_failures = None;
    }

    /// The templated HelmChart as `(namespace, name)`.
    pub fn helm_chart(&self) -> Option<(&str, &str)> {
        self.helm_chart.as_deref()?.split_once('/')
    }
}

/// The remediation settings in effect for an action (install or upgrade), with helm-controller's
/// defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveRemediation {
    /// Which action it is for.
    pub action: ReleaseAction,
    /// Retries allowed (negative: unlimited).
    pub retries: i64,
    /// Whether test failures are ignored (the test section's value when unset).
    pub ignore_test_failures: bool,
    /// Whether the last failure is remediated once retries are exhausted.
    pub remediate_last_failure: bool,
    /// `rollback` or `uninstall` (an install is always remediated by uninstalling).
    pub strategy: RemediationStrategy,
}

impl ActiveRemediation {
    /// The failures counted against this remediation.
    pub fn failure_count(&self, status: &HelmReleaseStatus) -> i64 {
        match self.action {
            ReleaseAction::Install => status.install_failures.unwrap_or(0),
            _ => status.upgrade_failures.unwrap_or(0),
        }
    }

    /// Adds one failure to this action's counter.
    pub fn increment_failure_count(&self, status: &mut HelmReleaseStatus) {
        let counter = match self.action {
            ReleaseAction::Install => &mut status.install_failures,
            _ => &mut status.upgrade_failures,
        };
        *counter = Some(counter.unwrap_or(0) + 1);
    }

    /// Whether the retries are spent: more failures than retries (never for negative retries).
    pub fn retries_exhausted(&self, status: &HelmReleaseStatus) -> bool {
        self.retries >= 0 && self.failure_count(status) > self.retries
    }
}

impl HelmRelease {
    /// The Helm release name, as helm-controller derives it (before shortening; see
    /// `sluice_helm::flux::release_name` for the stored name).
    pub fn release_name(&self) -> String {
        if let Some(name) = self.spec.release_name.as_deref().filter(|n| !n.is_empty()) {
            return name.to_owned();
        }
        let name = self.metadata.name.clone().unwrap_or_default();
        match self.spec.target_namespace.as_deref() {
            Some(ns) if !ns.is_empty() => format!("{ns}-{name}"),
            _ => name,
        }
    }

    /// The namespace the release is installed into.
    pub fn release_namespace(&self) -> String {
        match self.spec.target_namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns.to_owned(),
            _ => self.metadata.namespace.clone().unwrap_or_default(),
        }
    }

    /// The namespace the release records are stored in.
    pub fn storage_namespace(&self) -> String {
        match self.spec.storage_namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns.to_owned(),
            _ => self.metadata.namespace.clone().unwrap_or_default(),
        }
    }

    /// The name of the HelmChart made from `spec.chart`: `<namespace>-<name>`.
    pub fn helm_chart_name(&self) -> String {
        format!(
            "{}-{}",
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }

    /// `spec.timeout`, or 5m.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        match self.spec.timeout.as_deref() {
            Some(t) => meta::parse_duration(t),
            None => Ok(DEFAULT_TIMEOUT),
        }
    }

    /// How many revisions to keep (0: all).
    pub fn max_history(&self) -> i64 {
        self.spec.max_history.unwrap_or(DEFAULT_MAX_HISTORY)
    }

    /// `spec.install`, or its defaults.
    pub fn install(&self) -> Cow<'_, Install> {
        self.spec
            .install
            .as_ref()
            .map_or_else(|| Cow::Owned(Install::default()), Cow::Borrowed)
    }

    /// `spec.upgrade`, or its defaults.
    pub fn upgrade(&self) -> Cow<'_, Upgrade> {
        self.spec
            .upgrade
            .as_ref()
            .map_or_else(|| Cow::Owned(Upgrade::default()), Cow::Borrowed)
    }

    /// `spec.test`, or its defaults.
    pub fn test(&self) -> Cow<'_, Test> {
        self.spec
            .test
            .as_ref()
            .map_or_else(|| Cow::Owned(Test::default()), Cow::Borrowed)
    }

    /// `spec.rollback`, or its defaults.
    pub fn rollback(&self) -> Cow<'_, Rollback> {
        self.spec
            .rollback
            .as_ref()
            .map_or_else(|| Cow::Owned(Rollback::default()), Cow::Borrowed)
    }

    /// `spec.uninstall`, or its defaults.
    pub fn uninstall(&self) -> Cow<'_, Uninstall> {
        self.spec
            .uninstall
            .as_ref()
            .map_or_else(|| Cow::Owned(Uninstall::default()), Cow::Borrowed)
    }

    /// The drift detection mode in effect.
    pub fn drift_detection_mode(&self) -> DriftDetectionMode {
        self.spec
            .drift_detection
            .as_ref()
            .map_or(DriftDetectionMode::Disabled, DriftDetection::mode)
    }

    /// The timeout of an action: its own, else `spec.timeout`, else 5m.
    pub fn action_timeout(&self, own: Option<&str>) -> Result<Duration, DurationError> {
        match own {
            Some(t) => meta::parse_duration(t),
            None => self.timeout(),
        }
    }

    /// Whether tests run after install and upgrade.
    pub fn test_enabled(&self) -> bool {
        self.test().enable.unwrap_or(false)
    }

    /// The remediation settings of the action the status says was last attempted (none before
    /// any attempt), as helm-controller's `GetActiveRemediation`.
    pub fn active_remediation(&self) -> Option<ActiveRemediation> {
        let action = self
            .status
            .as_ref()?
            .last_attempted_release_action
            .clone()?;
        self.remediation_for(action)
    }

    /// The remediation settings of `action`, defaults applied: an install has 0 retries, does not
    /// remediate its last failure unless told and always uninstalls; an upgrade remediates its
    /// last failure when it has retries and rolls back unless told to uninstall.
    pub fn remediation_for(&self, action: ReleaseAction) -> Option<ActiveRemediation> {
        let test_ignore = self.test().ignore_failures.unwrap_or(false);
        match action {
            ReleaseAction::Install => {
                let r = self
                    .spec
                    .install
                    .as_ref()
                    .and_then(|i| i.remediation.clone())
                    .unwrap_or_default();
                Some(ActiveRemediation {
                    action,
                    retries: r.retries.unwrap_or(0),
                    ignore_test_failures: r.ignore_test_failures.unwrap_or(test_ignore),
                    remediate_last_failure: r.remediate_last_failure.unwrap_or(false),
                    strategy: RemediationStrategy::Uninstall,
                })
            }
            ReleaseAction::Upgrade => {
                let r = self
                    .spec
                    .upgrade
                    .as_ref()
                    .and_then(|u| u.remediation.clone())
                    .unwrap_or_default();
                let retries = r.retries.unwrap_or(0);
                Some(ActiveRemediation {
                    action,
                    retries,
                    ignore_test_failures: r.ignore_test_failures.unwrap_or(test_ignore),
                    remediate_last_failure: r.remediate_last_failure.unwrap_or(retries > 0),
                    strategy: r.strategy.unwrap_or(RemediationStrategy::Rollback),
                })
            }
            ReleaseAction::Unknown(_) => None,
        }
    }

    /// The `RetryOnFailure` interval of the action last attempted, when that action's strategy
    /// is `RetryOnFailure` (helm-controller's `GetActiveRetry`, without the feature gate that
    /// makes it the default).
    pub fn active_retry_interval(&self) -> Option<Result<Duration, DurationError>> {
        let action = self
            .status
            .as_ref()?
            .last_attempted_release_action
            .clone()?;
        let (name, interval) = match action {
            ReleaseAction::Install => {
                let s = self.spec.install.as_ref()?.strategy.as_ref()?;
                (&s.name, s.retry_interval.as_deref())
            }
            ReleaseAction::Upgrade => {
                let s = self.spec.upgrade.as_ref()?.strategy.as_ref()?;
                (&s.name, s.retry_interval.as_deref())
            }
            ReleaseAction::Unknown(_) => return None,
        };
        if *name != ActionStrategyName::RetryOnFailure {
            return None;
        }
        Some(interval.map_or(Ok(DEFAULT_RETRY_INTERVAL), meta::parse_duration))
    }

    /// The inventory entries (empty without inventory).
    pub fn inventory(&self) -> &[ResourceRef] {
        self.status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map_or(&[], |i| i.entries.as_slice())
    }
}

impl meta::FluxObject for HelmRelease {
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
        self.spec.suspend.unwrap_or(false)
    }

    fn interval(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(&self.spec.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(spec: Value) -> HelmRelease {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn names_and_namespaces_default_as_flux() {
        let hr = release(
            serde_json::json!({"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}}),
        );
        assert_eq!(hr.release_name(), "podinfo");
        assert_eq!(hr.release_namespace(), "apps");
        assert_eq!(hr.storage_namespace(), "apps");
        assert_eq!(hr.helm_chart_name(), "apps-podinfo");
        assert_eq!(hr.timeout().unwrap(), DEFAULT_TIMEOUT);
        assert_eq!(hr.max_history(), 5);
        assert_eq!(hr.drift_detection_mode(), DriftDetectionMode::Disabled);

        let hr = release(
            serde_json::json!({"interval": "5m", "targetNamespace": "web", "storageNamespace": "flux-system", "timeout": "90s", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}}),
        );
        assert_eq!(hr.release_name(), "web-podinfo");
        assert_eq!(hr.release_namespace(), "web");
        assert_eq!(hr.storage_namespace(), "flux-system");
        assert_eq!(hr.timeout().unwrap().as_secs(), 90);
        assert_eq!(hr.action_timeout(Some("2m")).unwrap().as_secs(), 120);
    }

    #[test]
    fn remediation_defaults_follow_helm_controller() {
        let hr = release(
            serde_json::json!({"interval": "5m", "chartRef": {"kind": "HelmChart", "name": "c"}}),
        );
        let install = hr.remediation_for(ReleaseAction::Install).unwrap();
        assert_eq!(install.retries, 0);
        assert!(!install.remediate_last_failure);
        assert_eq!(install.strategy, RemediationStrategy::Uninstall);
        let upgrade = hr.remediation_for(ReleaseAction::Upgrade).unwrap();
        assert!(!upgrade.remediate_last_failure);
        assert_eq!(upgrade.strategy, RemediationStrategy::Rollback);
        assert!(hr.active_remediation().is_none());

        let mut hr = release(serde_json::json!({
            "interval": "5m", "chartRef": {"kind": "HelmChart", "name": "c"},
            "test": {"ignoreFailures": true},
            "upgrade": {"remediation": {"retries": 3, "strategy": "uninstall"}, "strategy": {"name": "RetryOnFailure"}},
            "install": {"remediation": {"retries": -1, "ignoreTestFailures": false}}
        }));
        let upgrade = hr.remediation_for(ReleaseAction::Upgrade).unwrap();
        assert!(
            upgrade.remediate_last_failure,
            "retries > 0 remediates the last failure"
        );
        assert!(
            upgrade.ignore_test_failures,
            "inherited from test.ignoreFailures"
        );
        assert_eq!(upgrade.strategy, RemediationStrategy::Uninstall);
        let install = hr.remediation_for(ReleaseAction::Install).unwrap();
        assert!(!install.ignore_test_failures);

        let status = hr.status.get_or_insert_with(Default::default);
        status.last_attempted_release_action = Some(ReleaseAction::Upgrade);
        for _ in 0..3 {
            upgrade.increment_failure_count(status);
            assert!(!upgrade.retries_exhausted(status));
        }
        upgrade.increment_failure_count(status);
        assert!(upgrade.retries_exhausted(status));
        assert_eq!(status.upgrade_failures, Some(4));
        let mut unlimited = status.clone();
        unlimited.install_failures = Some(1000);
        assert!(!install.retries_exhausted(&unlimited));
        assert_eq!(
            hr.active_retry_interval().unwrap().unwrap(),
            DEFAULT_RETRY_INTERVAL
        );
        assert_eq!(
            hr.active_remediation().unwrap().action,
            ReleaseAction::Upgrade
        );
    }

    fn snapshot(version: i64, status: &str, test: Option<&str>) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "digest": "sha256:0", "name": "r", "namespace": "ns", "version": version,
            "status": status, "chartName": "c", "chartVersion": "1.0.0", "configDigest": "sha256:1",
            "firstDeployed": "2026-01-01T00:00:00Z", "lastDeployed": "2026-01-01T00:00:00Z",
            "testHooks": test.map(|phase| serde_json::json!({"ns/t": {"phase": phase}})),
        }))
        .unwrap()
    }

    #[test]
    fn history_as_helm_controller_reads_it() {
        let mut status = HelmReleaseStatus {
            history: Some(vec![
                snapshot(2, "superseded", Some("Failed")),
                snapshot(4, "failed", None),
                snapshot(1, "superseded", Some("Succeeded")),
                snapshot(3, "superseded", None),
            ]),
            ..Default::default()
        };
        assert_eq!(status.latest().unwrap().version, 4);
        assert_eq!(status.previous(false).unwrap().version, 3);
        status.history.as_mut().unwrap()[3] = snapshot(3, "failed", None);
        assert_eq!(
            status.previous(false).unwrap().version,
            1,
            "v2 failed its test"
        );
        assert_eq!(status.previous(true).unwrap().version, 2);
        status.truncate_history(true);
        let versions: Vec<i64> = status.history.iter().flatten().map(|s| s.version).collect();
        assert_eq!(versions, [4, 3, 2]);

        assert!(!snapshot(1, "deployed", None).has_been_tested());
        let mut no_tests = snapshot(1, "deployed", None);
        no_tests.test_hooks = Some(BTreeMap::new());
        assert!(no_tests.has_been_tested());
        assert!(snapshot(1, "deployed", Some("Failed")).has_been_tested());
        assert!(!snapshot(1, "deployed", Some("Running")).has_been_tested());
    }
}
