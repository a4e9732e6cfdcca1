//! `HelmRepository` and `HelmChart`, `source.toolkit.fluxcd.io/v1` (source-controller `api/v1`).

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::oci::{OCIProvider, OCIVerificationProvider, OIDCIdentityMatch};
use crate::meta::{self, AccessFrom, Artifact, DurationError, LocalObjectReference};
use crate::string_enum::string_enum;

/// The kind of [`HelmRepository`].
pub const HELM_REPOSITORY_KIND: &str = "HelmRepository";
/// The kind of [`HelmChart`].
pub const HELM_CHART_KIND: &str = "HelmChart";
/// The default of `HelmRepository.spec.timeout`.
pub const DEFAULT_HELM_REPOSITORY_TIMEOUT: &str = "60s";
/// The interval of a `HelmRepository` without `spec.interval` (or with a zero one).
pub const DEFAULT_HELM_REPOSITORY_INTERVAL: &str = "1m";
/// The default of `HelmChart.spec.version`: the latest version.
pub const DEFAULT_HELM_CHART_VERSION: &str = "*";

// --- Reasons of HelmRepository and HelmChart (source-controller api/v1 and internal/helm).

/// Reason: fetching or loading a HelmRepository's index failed.
pub const INDEXATION_FAILED_REASON: &str = "IndexationFailed";
/// Reason: a HelmChart's chart was pulled (from a HelmRepository) and stored as is.
pub const CHART_PULL_SUCCEEDED_REASON: &str = "ChartPullSucceeded";
/// Reason: a HelmChart's chart was packaged (from a GitRepository or Bucket, or after values
/// files were merged or dependencies built).
pub const CHART_PACKAGE_SUCCEEDED_REASON: &str = "ChartPackageSucceeded";

// The reasons of chart build errors (source-controller internal/helm/chart BuildErrorReason).
// The first three are persistent: the build is not retried until the object changes.

/// Build error: the chart reference is invalid (no chart of that name, no version matching the
/// version expression, a path outside the source).
pub const INVALID_CHART_REFERENCE_REASON: &str = "InvalidChartReference";
/// Build error: the chart metadata could not be patched (the version of a chart built for the
/// `Revision` strategy).
pub const METADATA_PATCH_ERROR_REASON: &str = "MetadataPatchError";
/// Build error: the values files could not be merged.
pub const VALUES_FILES_ERROR_REASON: &str = "ValuesFilesError";
/// Build error: the chart could not be pulled.
pub const CHART_PULL_ERROR_REASON: &str = "ChartPullError";
/// Build error: the chart's dependencies could not be built.
pub const DEPENDENCY_BUILD_ERROR_REASON: &str = "DependencyBuildError";
/// Build error: the chart could not be packaged.
pub const CHART_PACKAGE_ERROR_REASON: &str = "ChartPackageError";
/// Build error: the chart's signature could not be verified.
pub const CHART_VERIFICATION_ERROR_REASON: &str = "ChartVerificationError";
/// Build error of any other cause.
pub const UNKNOWN_BUILD_ERROR_REASON: &str = "Unknown";

string_enum! {
    /// The type of a HelmRepository (`spec.type`).
    pub enum HelmRepositoryType {
        /// A Helm HTTP/S repository with an `index.yaml`.
        Default = "default",
        /// An OCI registry; the URL starts with `oci://`. Flux keeps such objects static (no
        /// Artifact, no conditions): the HelmChart pulls from the registry itself.
        Oci = "oci",
    }
}

string_enum! {
    /// What makes a HelmChart produce a new Artifact (`spec.reconcileStrategy`).
    pub enum ReconcileStrategy {
        /// A new chart version (the version in `Chart.yaml`).
        ChartVersion = "ChartVersion",
        /// A new revision of the source (the source's Artifact revision is appended to the chart
        /// version as SemVer metadata).
        Revision = "Revision",
    }
}

string_enum! {
    /// The kinds a HelmChart's `spec.sourceRef` may name.
    #[derive(Default)]
    pub enum HelmChartSourceKind {
        /// A Helm repository, HTTP/S or OCI: the chart is pulled by name and version.
        #[default]
        HelmRepository = "HelmRepository",
        /// A GitRepository: the chart is a path in its Artifact.
        GitRepository = "GitRepository",
        /// A Bucket: the chart is a path in its Artifact.
        Bucket = "Bucket",
    }
}

/// HelmRepositorySpec specifies the required configuration to produce an Artifact for a Helm
/// repository index YAML.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmRepository",
    plural = "helmrepositories",
    singular = "helmrepository",
    namespaced,
    status = "HelmRepositoryStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "helmrepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositorySpec {
    /// URL of the Helm repository, a valid URL contains at least a protocol and host.
    #[schemars(pattern(r"^(http|https|oci)://.*$"))]
    pub url: String,

    /// SecretRef specifies the Secret containing authentication credentials for the
    /// HelmRepository. For HTTP/S basic auth the secret must contain 'username' and 'password'
    /// fields. Support for TLS auth using the 'certFile' and 'keyFile', and/or 'caFile' keys is
    /// deprecated. Please use `.spec.certSecretRef` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// CertSecretRef can be given the name of a Secret containing either or both of
    ///
    /// - a PEM-encoded client certificate (`tls.crt`) and private key (`tls.key`);
    /// - a PEM-encoded CA certificate (`ca.crt`)
    ///
    /// and whichever are supplied, will be used for connecting to the registry. The client cert
    /// and key are useful if you are authenticating with a certificate; the CA cert is useful if
    /// you are using a self-signed server certificate. The Secret must be of type `Opaque` or
    /// `kubernetes.io/tls`.
    ///
    /// It takes precedence over the values specified in the Secret referred to by
    /// `.spec.secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// PassCredentials allows the credentials from the SecretRef to be passed on to a host that
    /// does not match the host as defined in URL. This may be required if the host of the
    /// advertised chart URLs in the index differ from the defined URL. Enabling this should be
    /// done with caution, as it can potentially result in credentials getting stolen in a
    /// MITM-attack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_credentials: Option<bool>,

    /// Interval at which the HelmRepository URL is checked for updates. This interval is
    /// approximate and may be subject to jitter to ensure efficient use of resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: Option<String>,

    /// Insecure allows connecting to a non-TLS HTTP container registry. This field is only taken
    /// into account if the .spec.type field is set to 'oci'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,

    /// Timeout is used for the index fetch operation for an HTTPS helm repository, and for
    /// remote OCI Repository operations like pulling for an OCI helm chart by the associated
    /// HelmChart. Its default value is 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"))]
    pub timeout: Option<String>,

    /// Suspend tells the controller to suspend the reconciliation of this HelmRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// AccessFrom specifies an Access Control List for allowing cross-namespace references to
    /// this object. NOTE: Not implemented, provisional as of
    /// https://github.com/fluxcd/flux2/pull/2092
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,

    /// Type of the HelmRepository. When this field is set to "oci", the URL field value must be
    /// prefixed with "oci://".
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<HelmRepositoryType>,

    /// Provider used for authentication, can be 'aws', 'azure', 'gcp' or 'generic'. This field
    /// is optional, and only taken into account if the .spec.type field is set to 'oci'. When
    /// not specified, defaults to 'generic'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<OCIProvider>,
}

impl JsonSchema for HelmRepository {
    fn schema_name() -> Cow<'static, str> {
        HELM_REPOSITORY_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<HelmRepositorySpec, HelmRepositoryStatus>(
            generator,
            "HelmRepository is the Schema for the helmrepositories API.",
        )
    }
}

impl HelmRepositorySpec {
    /// A spec of the repository at `url`, everything else unset.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// `spec.interval`, parsed; one minute when unset or zero, as in Flux.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        let interval = match self.interval.as_deref() {
            Some(interval) => meta::parse_duration(interval)?,
            None => Duration::ZERO,
        };
        if interval.is_zero() {
            meta::parse_duration(DEFAULT_HELM_REPOSITORY_INTERVAL)
        } else {
            Ok(interval)
        }
    }

    /// `spec.timeout`, parsed, defaulting to 60s.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(
            self.timeout
                .as_deref()
                .unwrap_or(DEFAULT_HELM_REPOSITORY_TIMEOUT),
        )
    }

    /// Whether reconciliation is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// Whether plain-HTTP registries are allowed (only for type `oci`).
    pub fn is_insecure(&self) -> bool {
        self.insecure.unwrap_or(false)
    }

    /// Whether the credentials may be sent to hosts other than the URL's.
    pub fn pass_credentials(&self) -> bool {
        self.pass_credentials.unwrap_or(false)
    }

    /// The provider in effect (`generic` when unset).
    pub fn provider(&self) -> OCIProvider {
        self.provider.clone().unwrap_or(OCIProvider::Generic)
    }

    /// The type in effect (`default` when unset).
    pub fn type_(&self) -> HelmRepositoryType {
        self.type_.clone().unwrap_or(HelmRepositoryType::Default)
    }

    /// Whether this is an OCI registry (`type: oci`).
    pub fn is_oci(&self) -> bool {
        self.type_() == HelmRepositoryType::Oci
    }
}

/// HelmRepositoryStatus records the observed state of the HelmRepository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositoryStatus {
    /// ObservedGeneration is the last observed generation of the HelmRepository object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions holds the conditions for the HelmRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// URL is the dynamic fetch link for the latest Artifact. It is provided on a "best effort"
    /// basis, and using the precise HelmRepositoryStatus.Artifact data is recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// Artifact represents the last successful HelmRepository reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a
    /// change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl HelmRepositoryStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

impl HelmRepository {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl meta::FluxObject for HelmRepository {
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

/// HelmChartSpec specifies the desired state of a Helm chart.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmChart",
    plural = "helmcharts",
    singular = "helmchart",
    namespaced,
    status = "HelmChartStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "hc",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"Chart","type":"string","jsonPath":".spec.chart"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Source Kind","type":"string","jsonPath":".spec.sourceRef.kind"}"#,
    printcolumn = r#"{"name":"Source Name","type":"string","jsonPath":".spec.sourceRef.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'",
    "rule": "!has(self.verify) || self.sourceRef.kind == 'HelmRepository'"
}]))]
pub struct HelmChartSpec {
    /// Chart is the name or path the Helm chart is available at in the SourceRef.
    pub chart: String,

    /// Version is the chart version semver expression, ignored for charts from GitRepository
    /// and Bucket sources. Defaults to latest when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,

    /// SourceRef is the reference to the Source the chart is available at.
    pub source_ref: LocalHelmChartSourceReference,

    /// Interval at which the HelmChart SourceRef is checked for updates. This interval is
    /// approximate and may be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// ReconcileStrategy determines what enables the creation of a new artifact. Valid values
    /// are ('ChartVersion', 'Revision'). See the documentation of the values for an explanation
    /// on their behavior. Defaults to ChartVersion when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,

    /// ValuesFiles is an alternative list of values files to use as the chart values
    /// (values.yaml is not included by default), expected to be a relative path in the
    /// SourceRef. Values files are merged in the order of this list with the last file
    /// overriding the first. Ignored when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,

    /// IgnoreMissingValuesFiles controls whether to silently ignore missing values files rather
    /// than failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,

    /// Suspend tells the controller to suspend the reconciliation of this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// Verify contains the secret name containing the trusted public keys used to verify the
    /// signature and specifies which provider to use to check whether OCI image is authentic.
    /// This field is only supported when using HelmRepository source with spec.type 'oci'.
    /// Chart dependencies, which are not bundled in the umbrella chart artifact, are not
    /// verified.
    #[serde(rename = "verify", default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<HelmChartVerification>,
}

impl JsonSchema for HelmChart {
    fn schema_name() -> Cow<'static, str> {
        HELM_CHART_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<HelmChartSpec, HelmChartStatus>(
            generator,
            "HelmChart is the Schema for the helmcharts API.",
        )
    }
}

impl HelmChartSpec {
    /// A spec of the chart `chart` from `source_ref`, checked every `interval`, everything else
    /// unset.
    pub fn new(
        chart: impl Into<String>,
        source_ref: LocalHelmChartSourceReference,
        interval: impl Into<String>,
    ) -> Self {
        Self {
            chart: chart.into(),
            source_ref,
            interval: interval.into(),
            ..Self::default()
        }
    }

    /// `spec.interval`, parsed.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(&self.interval)
    }

    /// Whether reconciliation is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// The version expression in effect (`*`, the latest, when unset or empty).
    pub fn version(&self) -> &str {
        match self.version.as_deref() {
            Some(version) if !version.is_empty() => version,
            _ => DEFAULT_HELM_CHART_VERSION,
        }
    }

    /// The reconcile strategy in effect (`ChartVersion` when unset).
    pub fn reconcile_strategy(&self) -> ReconcileStrategy {
        self.reconcile_strategy
            .clone()
            .unwrap_or(ReconcileStrategy::ChartVersion)
    }

    /// The values files to merge, in order (empty when unset).
    pub fn values_files(&self) -> &[String] {
        self.values_files.as_deref().unwrap_or_default()
    }

    /// Whether missing values files are ignored.
    pub fn ignore_missing_values_files(&self) -> bool {
        self.ignore_missing_values_files.unwrap_or(false)
    }
}

/// LocalHelmChartSourceReference contains enough information to let you locate the typed
/// referenced object at namespace level.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalHelmChartSourceReference {
    /// APIVersion of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent, valid values are ('HelmRepository', 'GitRepository', 'Bucket').
    pub kind: HelmChartSourceKind,

    /// Name of the referent.
    pub name: String,
}

impl LocalHelmChartSourceReference {
    /// A reference to the source of kind `kind` called `name`.
    pub fn new(kind: HelmChartSourceKind, name: impl Into<String>) -> Self {
        Self {
            api_version: None,
            kind,
            name: name.into(),
        }
    }

    /// A reference to the HelmRepository called `name`.
    pub fn helm_repository(name: impl Into<String>) -> Self {
        Self::new(HelmChartSourceKind::HelmRepository, name)
    }

    /// A reference to the GitRepository called `name`.
    pub fn git_repository(name: impl Into<String>) -> Self {
        Self::new(HelmChartSourceKind::GitRepository, name)
    }
}

/// HelmChartVerification verifies the authenticity of an OCI Artifact.
///
/// The same as [`super::OCIRepositoryVerification`] without `trustedRootSecretRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
// `provider` is required by Flux's schema but defaulted by the API server, so an object written
// without it is still admitted; it reads here as the default too.
#[schemars(extend("required" = ["provider"]))]
pub struct HelmChartVerification {
    /// Provider specifies the technology used to sign the OCI Artifact.
    #[serde(default)]
    #[schemars(extend("default" = "cosign"))]
    pub provider: OCIVerificationProvider,

    /// SecretRef specifies the Kubernetes Secret containing the trusted public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// MatchOIDCIdentity specifies the identity matching criteria to use while verifying an OCI
    /// artifact which was signed using Cosign keyless signing. The artifact's identity is deemed
    /// to be verified if any of the specified matchers match against the identity.
    #[serde(
        rename = "matchOIDCIdentity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub match_oidc_identity: Option<Vec<OIDCIdentityMatch>>,
}

/// HelmChartStatus records the observed state of the HelmChart.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartStatus {
    /// ObservedGeneration is the last observed generation of the HelmChart object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// ObservedSourceArtifactRevision is the last observed Artifact.Revision of the
    /// HelmChartSpec.SourceRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_artifact_revision: Option<String>,

    /// ObservedChartName is the last observed chart name as specified by the resolved chart
    /// reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_chart_name: Option<String>,

    /// ObservedValuesFiles are the observed value files of the last successful reconciliation.
    /// It matches the chart in the last successfully reconciled artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_values_files: Option<Vec<String>>,

    /// Conditions holds the conditions for the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// URL is the dynamic fetch link for the latest Artifact. It is provided on a "best effort"
    /// basis, and using the precise BucketStatus.Artifact data is recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// Artifact represents the output of the last successful reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a
    /// change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl HelmChartStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

impl HelmChart {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl meta::FluxObject for HelmChart {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_repository_defaults_are_flux_s() {
        let mut spec = HelmRepositorySpec::new("https://charts.example.com");
        assert_eq!(spec.interval(), Ok(Duration::from_secs(60)));
        assert_eq!(spec.timeout(), Ok(Duration::from_secs(60)));
        assert_eq!(spec.type_(), HelmRepositoryType::Default);
        assert!(!spec.is_oci());
        assert_eq!(spec.provider(), OCIProvider::Generic);
        assert!(!spec.is_suspended() && !spec.is_insecure() && !spec.pass_credentials());

        // A zero interval is one minute too (Flux's GetRequeueAfter).
        spec.interval = Some("0s".into());
        assert_eq!(spec.interval(), Ok(Duration::from_secs(60)));
        spec.interval = Some("10m".into());
        assert_eq!(spec.interval(), Ok(Duration::from_secs(600)));
        spec.interval = Some("ten".into());
        assert!(spec.interval().is_err());

        spec.type_ = Some(HelmRepositoryType::Oci);
        spec.provider = Some(OCIProvider::Azure);
        spec.timeout = Some("3m".into());
        assert!(spec.is_oci());
        assert_eq!(spec.provider(), OCIProvider::Azure);
        assert_eq!(spec.timeout(), Ok(Duration::from_secs(180)));
    }

    #[test]
    fn helm_chart_defaults_are_flux_s() {
        let mut spec = HelmChartSpec::new(
            "podinfo",
            LocalHelmChartSourceReference::helm_repository("podinfo"),
            "5m",
        );
        assert_eq!(spec.interval(), Ok(Duration::from_secs(300)));
        assert_eq!(spec.version(), DEFAULT_HELM_CHART_VERSION);
        assert_eq!(spec.reconcile_strategy(), ReconcileStrategy::ChartVersion);
        assert!(spec.values_files().is_empty());
        assert!(!spec.ignore_missing_values_files() && !spec.is_suspended());
        assert_eq!(spec.source_ref.kind, HelmChartSourceKind::HelmRepository);

        spec.version = Some(String::new());
        assert_eq!(spec.version(), "*");
        spec.version = Some("1.x".into());
        assert_eq!(spec.version(), "1.x");
        spec.reconcile_strategy = Some(ReconcileStrategy::Revision);
        assert_eq!(spec.reconcile_strategy().as_str(), "Revision");
        spec.values_files = Some(vec!["values-prod.yaml".into()]);
        assert_eq!(spec.values_files(), ["values-prod.yaml"]);
    }

    #[test]
    fn source_kinds_are_flux_s() {
        assert_eq!(
            HelmChartSourceKind::VALUES,
            ["HelmRepository", "GitRepository", "Bucket"]
        );
        let git = LocalHelmChartSourceReference::git_repository("podinfo");
        assert_eq!(git.kind.as_str(), crate::source::GIT_REPOSITORY_KIND);
        assert_eq!(
            HelmChartSourceKind::from(HELM_REPOSITORY_KIND),
            HelmChartSourceKind::HelmRepository
        );
        assert_eq!(HelmRepositoryType::VALUES, ["default", "oci"]);
        assert_eq!(ReconcileStrategy::VALUES, ["ChartVersion", "Revision"]);
    }

    #[test]
    fn chart_verification_provider_defaults_when_absent() {
        let verify: HelmChartVerification = serde_json::from_value(serde_json::json!({
            "matchOIDCIdentity": [{ "issuer": "^https://token.actions.githubusercontent.com$", "subject": ".*" }]
        }))
        .unwrap();
        assert_eq!(verify.provider, OCIVerificationProvider::Cosign);
        assert_eq!(verify.match_oidc_identity.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn flux_object_reads_status() {
        use crate::meta::FluxObject;
        let chart = HelmChart::new(
            "podinfo",
            HelmChartSpec::new(
                "podinfo",
                LocalHelmChartSourceReference::helm_repository("podinfo"),
                "1m",
            ),
        );
        assert!(chart.conditions().is_empty());
        assert!(!FluxObject::is_suspended(&chart));
        assert_eq!(FluxObject::interval(&chart), Ok(Duration::from_secs(60)));
        let repo = HelmRepository::new("podinfo", HelmRepositorySpec::new("oci://ghcr.io/x"));
        assert_eq!(repo.observed_generation(), None);
        assert_eq!(FluxObject::interval(&repo), Ok(Duration::from_secs(60)));
    }
}
