//! `OCIRepository`, `source.toolkit.fluxcd.io/v1` (source-controller `api/v1`), and the OCI
//! artifact verification settings it shares with `HelmChart`.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::meta::{self, Artifact, DurationError, LocalObjectReference};
use crate::string_enum::string_enum;

/// The kind of [`OCIRepository`].
pub const OCI_REPOSITORY_KIND: &str = "OCIRepository";
/// The scheme every `OCIRepository` URL (and an OCI `HelmRepository` URL) starts with.
pub const OCI_REPOSITORY_PREFIX: &str = "oci://";
/// The default of `OCIRepository.spec.timeout`.
pub const DEFAULT_OCI_TIMEOUT: &str = "60s";
/// The tag pulled when `spec.ref` does not say otherwise.
pub const DEFAULT_OCI_TAG: &str = "latest";

/// The media type of the layer `flux push artifact` writes: a gzipped tarball of the files
/// (`fluxcd/pkg/oci` `CanonicalContentMediaType`).
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// The media type of the config of an artifact `flux push artifact` writes
/// (`fluxcd/pkg/oci` `CanonicalConfigMediaType`).
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// The media type of the layer holding a packaged Helm chart in an OCI registry (Helm's
/// `registry.ChartLayerMediaType`). For artifacts of this type, tags map `+` of a SemVer
/// version to `_`.
pub const HELM_CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The media type of the config of a Helm chart in an OCI registry (Helm's
/// `registry.ConfigMediaType`).
pub const HELM_CHART_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// The media type of a Helm chart's provenance layer (Helm's `registry.ProvLayerMediaType`).
pub const HELM_CHART_PROVENANCE_MEDIA_TYPE: &str =
    "application/vnd.cncf.helm.chart.provenance.v1.prov";

/// [`OCILayerOperation::Extract`] as written in the object.
pub const OCI_LAYER_EXTRACT: &str = "extract";
/// [`OCILayerOperation::Copy`] as written in the object.
pub const OCI_LAYER_COPY: &str = "copy";

/// Reason: pulling the OCI artifact (or resolving its reference) failed.
pub const OCI_PULL_FAILED_REASON: &str = "OCIArtifactPullFailed";
/// Reason: selecting, extracting or copying a layer of the OCI artifact failed.
pub const OCI_LAYER_OPERATION_FAILED_REASON: &str = "OCIArtifactLayerOperationFailed";

string_enum! {
    /// The provider used to authenticate to an OCI registry (`OCIRepository.spec.provider`,
    /// `HelmRepository.spec.provider`).
    pub enum OCIProvider {
        /// Static credentials from `secretRef` or the ServiceAccount's image pull secrets, for
        /// any OCI registry.
        Generic = "generic",
        /// Amazon ECR, authenticated with the workload identity.
        Aws = "aws",
        /// Azure Container Registry, authenticated with the workload identity.
        Azure = "azure",
        /// Google Artifact Registry, authenticated with the workload identity.
        Gcp = "gcp",
    }
}

string_enum! {
    /// How the selected layer of an OCI artifact is stored (`spec.layerSelector.operation`).
    pub enum OCILayerOperation {
        /// The layer is a gzipped tarball, extracted into the Artifact.
        Extract = "extract",
        /// The compressed layer is stored as it is (e.g. a packaged Helm chart).
        Copy = "copy",
    }
}

string_enum! {
    /// The technology an OCI artifact is signed with (`spec.verify.provider`).
    #[derive(Default)]
    pub enum OCIVerificationProvider {
        /// Sigstore cosign: public keys or keyless signing.
        #[default]
        Cosign = "cosign",
        /// Notary Project notation.
        Notation = "notation",
    }
}

/// OCIRepositorySpec defines the desired state of OCIRepository.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "OCIRepository",
    plural = "ocirepositories",
    singular = "ocirepository",
    namespaced,
    status = "OCIRepositoryStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "ocirepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositorySpec {
    /// URL is a reference to an OCI artifact repository hosted on a remote container registry.
    #[schemars(pattern(r"^oci://.*$"))]
    pub url: String,

    /// The OCI reference to pull and monitor for changes, defaults to the latest tag.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<OCIRepositoryRef>,

    /// LayerSelector specifies which layer should be extracted from the OCI artifact. When not
    /// specified, the first layer found in the artifact is selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_selector: Option<OCILayerSelector>,

    /// The provider used for authentication, can be 'aws', 'azure', 'gcp' or 'generic'.
    /// When not specified, defaults to 'generic'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<OCIProvider>,

    /// SecretRef contains the secret name containing the registry login credentials to resolve
    /// image metadata. The secret must be of type kubernetes.io/dockerconfigjson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Verify contains the secret name containing the trusted public keys used to verify the
    /// signature and specifies which provider to use to check whether OCI image is authentic.
    #[serde(rename = "verify", default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<OCIRepositoryVerification>,

    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate the
    /// image pull if the service account has attached pull secrets. For more information:
    /// https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#add-imagepullsecrets-to-a-service-account
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// CertSecretRef can be given the name of a Secret containing either or both of
    ///
    /// - a PEM-encoded client certificate (`tls.crt`) and private key (`tls.key`);
    /// - a PEM-encoded CA certificate (`ca.crt`)
    ///
    /// and whichever are supplied, will be used for connecting to the registry. The client cert
    /// and key are useful if you are authenticating with a certificate; the CA cert is useful if
    /// you are using a self-signed server certificate. The Secret must be of type `Opaque` or
    /// `kubernetes.io/tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while
    /// communicating with the container registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Interval at which the OCIRepository URL is checked for updates. This interval is
    /// approximate and may be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// The timeout for remote OCI Repository operations like pulling, defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"), extend("default" = "60s"))]
    pub timeout: Option<String>,

    /// Ignore overrides the set of excluded patterns in the .sourceignore format (which is the
    /// same as .gitignore). If not provided, a default will be used, consult the documentation
    /// for your version to find out what those are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Insecure allows connecting to a non-TLS HTTP container registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,

    /// This flag tells the controller to suspend the reconciliation of this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

impl JsonSchema for OCIRepository {
    fn schema_name() -> Cow<'static, str> {
        OCI_REPOSITORY_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<OCIRepositorySpec, OCIRepositoryStatus>(
            generator,
            "OCIRepository is the Schema for the ocirepositories API",
        )
    }
}

impl OCIRepositorySpec {
    /// A spec pulling `url` (`oci://...`) every `interval`, everything else unset.
    pub fn new(url: impl Into<String>, interval: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            interval: interval.into(),
            ..Self::default()
        }
    }

    /// `spec.interval`, parsed.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(&self.interval)
    }

    /// `spec.timeout`, parsed, defaulting to 60s.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(self.timeout.as_deref().unwrap_or(DEFAULT_OCI_TIMEOUT))
    }

    /// Whether reconciliation is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// Whether plain-HTTP registries are allowed.
    pub fn is_insecure(&self) -> bool {
        self.insecure.unwrap_or(false)
    }

    /// The provider in effect (`generic` when unset).
    pub fn provider(&self) -> OCIProvider {
        self.provider.clone().unwrap_or(OCIProvider::Generic)
    }

    /// The media type of the layer to select (`spec.layerSelector.mediaType`); `None` when unset
    /// or empty, in which case the first layer is selected.
    pub fn layer_media_type(&self) -> Option<&str> {
        self.layer_selector
            .as_ref()
            .and_then(|s| s.media_type.as_deref())
            .filter(|m| !m.is_empty())
    }

    /// What to do with the selected layer (`spec.layerSelector.operation`, default `extract`).
    pub fn layer_operation(&self) -> OCILayerOperation {
        self.layer_selector
            .as_ref()
            .map_or(OCILayerOperation::Extract, OCILayerSelector::operation)
    }

    /// What to resolve, by Flux's precedence: `ref.digest`, then `ref.semver` (with
    /// `ref.semverFilter`), then `ref.tag`, then the tag `latest`. Empty strings count as unset.
    pub fn wanted(&self) -> Wanted {
        let nonempty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        if let Some(r) = &self.reference {
            if let Some(d) = nonempty(&r.digest) {
                return Wanted::Digest(d);
            }
            if let Some(c) = nonempty(&r.semver) {
                return Wanted::Semver {
                    constraint: c,
                    filter: nonempty(&r.semver_filter),
                };
            }
            if let Some(t) = nonempty(&r.tag) {
                return Wanted::Tag(t);
            }
        }
        Wanted::Tag(DEFAULT_OCI_TAG.into())
    }

    /// The URL without its `oci://` scheme (the repository address as registries name it), or
    /// `None` if it does not start with `oci://`.
    pub fn repository(&self) -> Option<&str> {
        self.url.strip_prefix(OCI_REPOSITORY_PREFIX)
    }
}

/// The artifact an OCIRepository asks for ([`OCIRepositorySpec::wanted`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// A manifest digest (`sha256:...`).
    Digest(String),
    /// The highest tag matching a semver constraint, among the tags `filter` (a regular
    /// expression) keeps.
    Semver {
        /// `ref.semver`.
        constraint: String,
        /// `ref.semverFilter`.
        filter: Option<String>,
    },
    /// A tag.
    Tag(String),
}

/// OCIRepositoryRef defines the image reference for the OCIRepository's URL.
///
/// The precedence is Digest, then SemVer, then Tag; with none set, the `latest` tag is pulled.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryRef {
    /// Digest is the image digest to pull, takes precedence over SemVer. The value should be in
    /// the format 'sha256:<HASH>'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// SemVer is the range of tags to pull selecting the latest within the range, takes
    /// precedence over Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,

    /// SemverFilter is a regex pattern to filter the tags within the SemVer range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_filter: Option<String>,

    /// Tag is the image tag to pull, defaults to latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// OCILayerSelector specifies which layer should be extracted from an OCI Artifact.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCILayerSelector {
    /// MediaType specifies the OCI media type of the layer which should be extracted from the
    /// OCI Artifact. The first layer matching this type is selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,

    /// Operation specifies how the selected layer should be processed. By default, the layer
    /// compressed content is extracted to storage. When the operation is set to 'copy', the
    /// layer compressed content is persisted to storage as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OCILayerOperation>,
}

impl OCILayerSelector {
    /// The operation in effect (`extract` when unset).
    pub fn operation(&self) -> OCILayerOperation {
        self.operation.clone().unwrap_or(OCILayerOperation::Extract)
    }
}

/// OCIRepositoryVerification verifies the authenticity of an OCI Artifact.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
// `provider` is required by Flux's schema but defaulted by the API server, so an object written
// without it is still admitted; it reads here as the default too.
#[schemars(extend("required" = ["provider"]))]
pub struct OCIRepositoryVerification {
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

    /// TrustedRootSecretRef specifies the Kubernetes Secret containing a Sigstore
    /// trusted_root.json file. This enables verification against self-hosted Sigstore
    /// infrastructure (custom Fulcio CA, self-hosted Rekor instance). The Secret must contain a
    /// key named "trusted_root.json".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
}

/// OIDCIdentityMatch specifies options for verifying the certificate identity, i.e. the issuer
/// and the subject of the certificate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCIdentityMatch {
    /// Issuer specifies the regex pattern to match against to verify the OIDC issuer in the
    /// Fulcio certificate. The pattern must be a valid Go regular expression.
    pub issuer: String,

    /// Subject specifies the regex pattern to match against to verify the identity subject in
    /// the Fulcio certificate. The pattern must be a valid Go regular expression.
    pub subject: String,
}

/// OCIRepositoryStatus defines the observed state of OCIRepository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryStatus {
    /// ObservedGeneration is the last observed generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions holds the conditions for the OCIRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// URL is the download link for the artifact output of the last OCI Repository sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// Artifact represents the output of the last successful OCI Repository sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// ObservedIgnore is the observed exclusion patterns used for constructing the source
    /// artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// ObservedLayerSelector is the observed layer selector used for constructing the source
    /// artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_layer_selector: Option<OCILayerSelector>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a
    /// change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl OCIRepositoryStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

impl OCIRepository {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl meta::FluxObject for OCIRepository {
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
    fn defaults_are_flux_s() {
        let spec = OCIRepositorySpec::new("oci://ghcr.io/org/app", "10m");
        assert_eq!(spec.interval(), Ok(Duration::from_secs(600)));
        assert_eq!(spec.timeout(), Ok(Duration::from_secs(60)));
        assert_eq!(spec.provider(), OCIProvider::Generic);
        assert!(!spec.is_suspended());
        assert!(!spec.is_insecure());
        assert_eq!(spec.layer_media_type(), None);
        assert_eq!(spec.layer_operation(), OCILayerOperation::Extract);
        assert_eq!(spec.repository(), Some("ghcr.io/org/app"));
        assert_eq!(
            OCIRepositoryVerification::default().provider,
            OCIVerificationProvider::Cosign
        );
    }

    #[test]
    fn wanted_is_digest_then_semver_then_tag_then_latest() {
        let spec =
            |v: serde_json::Value| -> OCIRepositorySpec { serde_json::from_value(v).unwrap() };
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m",
            "ref": {"digest": "sha256:ab", "semver": "1.x", "tag": "v1"}}));
        assert_eq!(s.wanted(), Wanted::Digest("sha256:ab".into()));
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m",
            "ref": {"semver": "1.x", "semverFilter": ".*-rc", "tag": "v1"}}));
        assert_eq!(
            s.wanted(),
            Wanted::Semver {
                constraint: "1.x".into(),
                filter: Some(".*-rc".into())
            }
        );
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m",
            "ref": {"digest": "", "tag": "v1"}}));
        assert_eq!(s.wanted(), Wanted::Tag("v1".into()));
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m"}));
        assert_eq!(s.wanted(), Wanted::Tag("latest".into()));
    }

    #[test]
    fn layer_selector_accessors() {
        let mut spec = OCIRepositorySpec::new("oci://ghcr.io/org/chart", "1h");
        spec.layer_selector = Some(OCILayerSelector {
            media_type: Some(HELM_CHART_LAYER_MEDIA_TYPE.into()),
            operation: Some(OCILayerOperation::Copy),
        });
        assert_eq!(spec.layer_media_type(), Some(HELM_CHART_LAYER_MEDIA_TYPE));
        assert_eq!(spec.layer_operation(), OCILayerOperation::Copy);
        assert_eq!(spec.layer_operation().as_str(), OCI_LAYER_COPY);

        // An empty selector selects the first layer and extracts it, as Flux's.
        spec.layer_selector = Some(OCILayerSelector {
            media_type: Some(String::new()),
            operation: None,
        });
        assert_eq!(spec.layer_media_type(), None);
        assert_eq!(spec.layer_operation().as_str(), OCI_LAYER_EXTRACT);
    }

    #[test]
    fn explicit_values_win() {
        let mut spec = OCIRepositorySpec::new("https://not-oci", "1m30s");
        spec.timeout = Some("2m".into());
        spec.provider = Some(OCIProvider::Gcp);
        spec.suspend = Some(true);
        spec.insecure = Some(true);
        assert_eq!(spec.interval(), Ok(Duration::from_secs(90)));
        assert_eq!(spec.timeout(), Ok(Duration::from_secs(120)));
        assert_eq!(spec.provider(), OCIProvider::Gcp);
        assert!(spec.is_suspended() && spec.is_insecure());
        assert_eq!(spec.repository(), None);
        spec.timeout = Some("1h".into());
        assert!(
            spec.timeout().is_ok(),
            "parsed even where the CRD refuses hours"
        );
        spec.interval = "soon".into();
        assert!(spec.interval().is_err());
    }

    #[test]
    fn verification_provider_defaults_when_absent() {
        let verify: OCIRepositoryVerification =
            serde_json::from_value(serde_json::json!({ "secretRef": { "name": "keys" } })).unwrap();
        assert_eq!(verify.provider, OCIVerificationProvider::Cosign);
        let json = serde_json::to_value(&verify).unwrap();
        assert_eq!(json["provider"], "cosign");
    }

    #[test]
    fn flux_object_reads_status() {
        use crate::meta::FluxObject;
        let mut repo = OCIRepository::new("app", OCIRepositorySpec::new("oci://r/app", "5m"));
        assert!(repo.conditions().is_empty());
        assert_eq!(repo.artifact(), None);
        let status = repo.status.get_or_insert_with(Default::default);
        meta::set_condition(
            status.conditions_mut(),
            meta::new_condition(
                meta::READY_CONDITION,
                meta::CONDITION_TRUE,
                meta::SUCCEEDED_REASON,
                "stored artifact",
                None,
            ),
        );
        status.last_handled_reconcile_at = Some("now".into());
        assert!(repo.is_ready());
        assert_eq!(repo.last_handled_reconcile_at(), Some("now"));
        assert_eq!(FluxObject::interval(&repo), Ok(Duration::from_secs(300)));
    }
}
