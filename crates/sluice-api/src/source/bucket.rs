//! `Bucket`, `source.toolkit.fluxcd.io/v1` (source-controller `api/v1`): the objects of an S3
//! (API) compatible bucket, or of Google Cloud Storage or Azure Blob Storage, as an Artifact.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::meta::{self, Artifact, DurationError, LocalObjectReference};
use crate::string_enum::string_enum;

/// The kind of [`Bucket`].
pub const BUCKET_KIND: &str = "Bucket";
/// The default of `Bucket.spec.timeout`.
pub const DEFAULT_BUCKET_TIMEOUT: &str = "60s";

/// Reason: listing or downloading the bucket's objects failed.
pub const BUCKET_OPERATION_FAILED_REASON: &str = "BucketOperationFailed";

string_enum! {
    /// The object storage a Bucket reads (`spec.provider`).
    pub enum BucketProvider {
        /// Any S3 (API) compatible object storage: MinIO, Garage, SeaweedFS, Ceph, AWS S3 with
        /// static keys.
        Generic = "generic",
        /// AWS S3; without `secretRef`, authenticated by the AWS SDK's default chain.
        Aws = "aws",
        /// Google Cloud Storage.
        Gcp = "gcp",
        /// Azure Blob Storage.
        Azure = "azure",
    }
}

string_enum! {
    /// The Security Token Service a Bucket's temporary credentials come from
    /// (`spec.sts.provider`).
    pub enum BucketStsProvider {
        /// AWS STS.
        Aws = "aws",
        /// MinIO's LDAP STS.
        Ldap = "ldap",
    }
}

/// BucketSpec specifies the required configuration to produce an Artifact for an object storage
/// bucket.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "Bucket",
    plural = "buckets",
    singular = "bucket",
    namespaced,
    status = "BucketStatus",
    schema = "manual",
    derive = "PartialEq",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "STS configuration is only supported for the 'aws' and 'generic' Bucket providers",
        "rule": "self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)"
    },
    {
        "message": "'aws' is the only supported STS provider for the 'aws' Bucket provider",
        "rule": "self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'"
    },
    {
        "message": "'ldap' is the only supported STS provider for the 'generic' Bucket provider",
        "rule": "self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'"
    },
    {
        "message": "spec.sts.secretRef is not required for the 'aws' STS provider",
        "rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)"
    },
    {
        "message": "spec.sts.certSecretRef is not required for the 'aws' STS provider",
        "rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)"
    },
    {
        "message": "ServiceAccountName is not supported for the 'generic' Bucket provider",
        "rule": "self.provider != 'generic' || !has(self.serviceAccountName)"
    },
    {
        "message": "cannot set both .spec.secretRef and .spec.serviceAccountName",
        "rule": "!has(self.secretRef) || !has(self.serviceAccountName)"
    }
]))]
pub struct BucketSpec {
    /// Provider of the object storage bucket. Defaults to 'generic', which expects an S3 (API)
    /// compatible object storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<BucketProvider>,

    /// BucketName is the name of the object storage bucket.
    pub bucket_name: String,

    /// Endpoint is the object storage address the BucketName is located at.
    pub endpoint: String,

    /// STS specifies the required configuration to use a Security Token Service for fetching
    /// temporary credentials to authenticate in a Bucket provider. This field is only supported
    /// for the `aws` and `generic` providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<BucketSTSSpec>,

    /// Insecure allows connecting to a non-TLS HTTP Endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,

    /// Region of the Endpoint where the BucketName is located in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// Prefix to use for server-side filtering of files in the Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// SecretRef specifies the Secret containing authentication credentials for the Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate the
    /// bucket. This field is only supported for the 'gcp' and 'aws' providers. For more
    /// information about workload identity:
    /// https://fluxcd.io/flux/components/source/buckets/#workload-identity
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// CertSecretRef can be given the name of a Secret containing either or both of
    ///
    /// - a PEM-encoded client certificate (`tls.crt`) and private key (`tls.key`);
    /// - a PEM-encoded CA certificate (`ca.crt`)
    ///
    /// and whichever are supplied, will be used for connecting to the bucket. The client cert and
    /// key are useful if you are authenticating with a certificate; the CA cert is useful if you
    /// are using a self-signed server certificate. The Secret must be of type `Opaque` or
    /// `kubernetes.io/tls`.
    ///
    /// This field is only supported for the `generic` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while
    /// communicating with the Bucket server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Interval at which the Bucket Endpoint is checked for updates. This interval is
    /// approximate and may be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// Timeout for fetch operations, defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"), extend("default" = "60s"))]
    pub timeout: Option<String>,

    /// Ignore overrides the set of excluded patterns in the .sourceignore format (which is the
    /// same as .gitignore). If not provided, a default will be used, consult the documentation
    /// for your version to find out what those are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Suspend tells the controller to suspend the reconciliation of this Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// BucketSTSSpec specifies the required configuration to use a Security Token Service for
/// fetching temporary credentials to authenticate in a Bucket provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketSTSSpec {
    /// Provider of the Security Token Service.
    pub provider: BucketStsProvider,

    /// Endpoint is the HTTP/S endpoint of the Security Token Service from where temporary
    /// credentials will be fetched.
    #[schemars(pattern(r"^(http|https)://.*$"))]
    pub endpoint: String,

    /// SecretRef specifies the Secret containing authentication credentials for the STS
    /// endpoint. This Secret must contain the fields `username` and `password` and is supported
    /// only for the `ldap` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// CertSecretRef can be given the name of a Secret containing either or both of
    ///
    /// - a PEM-encoded client certificate (`tls.crt`) and private key (`tls.key`);
    /// - a PEM-encoded CA certificate (`ca.crt`)
    ///
    /// and whichever are supplied, will be used for connecting to the STS endpoint. The client
    /// cert and key are useful if you are authenticating with a certificate; the CA cert is useful
    /// if you are using a self-signed server certificate. The Secret must be of type `Opaque` or
    /// `kubernetes.io/tls`.
    ///
    /// This field is only supported for the `ldap` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
}

impl JsonSchema for Bucket {
    fn schema_name() -> Cow<'static, str> {
        BUCKET_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<BucketSpec, BucketStatus>(
            generator,
            "Bucket is the Schema for the buckets API.",
        )
    }
}

impl BucketSpec {
    /// A spec reading `bucket_name` at `endpoint` every `interval`, everything else unset.
    pub fn new(
        bucket_name: impl Into<String>,
        endpoint: impl Into<String>,
        interval: impl Into<String>,
    ) -> Self {
        Self {
            bucket_name: bucket_name.into(),
            endpoint: endpoint.into(),
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
        meta::parse_duration(self.timeout.as_deref().unwrap_or(DEFAULT_BUCKET_TIMEOUT))
    }

    /// Whether reconciliation is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// Whether plain HTTP is used instead of HTTPS.
    pub fn is_insecure(&self) -> bool {
        self.insecure.unwrap_or(false)
    }

    /// The provider in effect (`generic` when unset).
    pub fn provider(&self) -> BucketProvider {
        self.provider.clone().unwrap_or(BucketProvider::Generic)
    }

    /// `spec.prefix`, empty when unset.
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or_default()
    }

    /// `spec.region`, `None` when unset or empty.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref().filter(|r| !r.is_empty())
    }
}

/// BucketStatus records the observed state of a Bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketStatus {
    /// ObservedGeneration is the last observed generation of the Bucket object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions holds the conditions for the Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// URL is the dynamic fetch link for the latest Artifact. It is provided on a "best effort"
    /// basis, and using the precise BucketStatus.Artifact data is recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// Artifact represents the last successful Bucket reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// ObservedIgnore is the observed exclusion patterns used for constructing the source
    /// artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a
    /// change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Bucket {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl meta::FluxObject for Bucket {
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
        let spec = BucketSpec::new("manifests", "minio.local:9000", "5m");
        assert_eq!(spec.interval(), Ok(Duration::from_secs(300)));
        assert_eq!(spec.timeout(), Ok(Duration::from_secs(60)));
        assert_eq!(spec.provider(), BucketProvider::Generic);
        assert!(!spec.is_insecure());
        assert!(!spec.is_suspended());
        assert_eq!(spec.prefix(), "");
        assert_eq!(spec.region(), None);
    }

    #[test]
    fn reads_a_flux_bucket() {
        let obj: Bucket = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "Bucket",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {
                "provider": "aws",
                "bucketName": "podinfo",
                "endpoint": "s3.amazonaws.com",
                "region": "eu-west-1",
                "prefix": "deploy/",
                "interval": "5m0s",
                "secretRef": {"name": "s3-keys"},
                "sts": {"provider": "aws", "endpoint": "https://sts.amazonaws.com"}
            }
        }))
        .expect("a Flux Bucket reads");
        assert_eq!(obj.spec.provider(), BucketProvider::Aws);
        assert_eq!(obj.spec.region(), Some("eu-west-1"));
        assert_eq!(obj.spec.prefix(), "deploy/");
        let sts = obj.spec.sts.as_ref().map(|s| s.provider.clone());
        assert_eq!(sts, Some(BucketStsProvider::Aws));
    }
}
