//! Flux's sources, `source.toolkit.fluxcd.io/v1` (source-controller `api/v1`):
//! [`GitRepository`] (here), [`OCIRepository`] ([`oci`]), [`HelmRepository`] and [`HelmChart`]
//! ([`helm`]), [`Bucket`] ([`bucket`]), [`ExternalArtifact`] ([`external_artifact`]). Everything
//! in those modules is also re-exported here, so
//! `sluice_api::source::OCIRepository` and `sluice_api::source::oci::OCIRepository` are the same.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::meta::{self, Artifact, DurationError, LocalObjectReference};
use crate::string_enum::string_enum;

pub mod bucket;
pub mod external_artifact;
pub mod helm;
pub mod oci;

pub use bucket::*;
pub use external_artifact::*;
pub use helm::*;
pub use oci::*;

/// The API group of Flux's sources.
pub const GROUP: &str = "source.toolkit.fluxcd.io";
/// The API version of the sources.
pub const VERSION: &str = "v1";
/// The kind of [`GitRepository`].
pub const GIT_REPOSITORY_KIND: &str = "GitRepository";
/// The default of `spec.timeout`.
pub const DEFAULT_GIT_TIMEOUT: &str = "60s";
/// The branch checked out when `spec.ref` does not say otherwise.
pub const DEFAULT_BRANCH: &str = "master";

string_enum! {
    /// The provider used to authenticate to a Git server (`spec.provider`).
    pub enum GitProvider {
        /// Credentials from `secretRef`, if any.
        Generic = "generic",
        /// AWS CodeCommit, authenticated with the workload identity.
        Aws = "aws",
        /// Azure DevOps, authenticated with the workload identity.
        Azure = "azure",
        /// GitHub, authenticated as a GitHub App.
        Github = "github",
    }
}

string_enum! {
    /// Which Git objects to verify the signature of (`spec.verify.mode`).
    pub enum GitVerificationMode {
        /// Legacy spelling of [`GitVerificationMode::Head`].
        HeadLegacy = "head",
        /// The commit HEAD points to.
        Head = "HEAD",
        /// The tag object.
        Tag = "Tag",
        /// The tag object and the commit it points to.
        TagAndHead = "TagAndHEAD",
    }
}

impl GitVerificationMode {
    /// The mode in effect: `head` means `HEAD`, and an unknown mode falls back to `HEAD`, as in
    /// Flux.
    pub fn effective(&self) -> Self {
        match self {
            Self::Tag => Self::Tag,
            Self::TagAndHead => Self::TagAndHead,
            _ => Self::Head,
        }
    }

    /// Whether the commit HEAD points to is verified.
    pub fn verifies_head(&self) -> bool {
        matches!(self.effective(), Self::Head | Self::TagAndHead)
    }

    /// Whether the tag object is verified.
    pub fn verifies_tag(&self) -> bool {
        matches!(self.effective(), Self::Tag | Self::TagAndHead)
    }
}

/// GitRepositorySpec specifies the required configuration to produce an Artifact for a Git
/// repository.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "GitRepository",
    plural = "gitrepositories",
    singular = "gitrepository",
    namespaced,
    status = "GitRepositoryStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "gitrepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "serviceAccountName can only be set when provider is 'azure' or 'aws'",
    "rule": "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))"
}]))]
pub struct GitRepositorySpec {
    /// URL specifies the Git repository URL, it can be an HTTP/S or SSH address.
    // sluice also admits file:// (a repository on the controller's disk);
    // Flux's CRD does not.
    #[schemars(pattern(r"^(http|https|ssh|file)://.*$"))]
    pub url: String,

    /// SecretRef specifies the Secret containing authentication credentials for the
    /// GitRepository. For HTTPS repositories the Secret must contain 'username' and 'password'
    /// fields for basic auth or 'bearerToken' field for token auth. For SSH repositories the
    /// Secret must contain 'identity' and 'known_hosts' fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Provider used for authentication, can be 'aws', 'azure', 'github', 'generic'.
    /// When not specified, defaults to 'generic'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<GitProvider>,

    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate to
    /// the GitRepository. This field is only supported for 'azure' and 'aws' providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Interval at which the GitRepository URL is checked for updates. This interval is
    /// approximate and may be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// Timeout for Git operations like cloning, defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"), extend("default" = "60s"))]
    pub timeout: Option<String>,

    /// Reference specifies the Git reference to resolve and monitor for changes, defaults to the
    /// 'master' branch.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,

    /// Verification specifies the configuration to verify the Git commit signature(s).
    #[serde(rename = "verify", default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<GitRepositoryVerification>,

    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while
    /// communicating with the Git server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Ignore overrides the set of excluded patterns in the .sourceignore format (which is the
    /// same as .gitignore). If not provided, a default will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Suspend tells the controller to suspend the reconciliation of this GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// RecurseSubmodules enables the initialization of all submodules within the GitRepository
    /// as cloned from the URL, using their default settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurse_submodules: Option<bool>,

    /// Include specifies a list of GitRepository resources which Artifacts should be included in
    /// the Artifact produced for this GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<GitRepositoryInclude>>,

    /// SparseCheckout specifies a list of directories to checkout when cloning the repository.
    /// If specified, only these directories are included in the Artifact produced for this
    /// GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_checkout: Option<Vec<String>>,
}

impl JsonSchema for GitRepository {
    fn schema_name() -> Cow<'static, str> {
        GIT_REPOSITORY_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<GitRepositorySpec, GitRepositoryStatus>(
            generator,
            "GitRepository is the Schema for the gitrepositories API.",
        )
    }
}

impl GitRepositorySpec {
    /// `spec.interval`, parsed.
    pub fn interval(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(&self.interval)
    }

    /// `spec.timeout`, parsed, defaulting to 60s.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        meta::parse_duration(self.timeout.as_deref().unwrap_or(DEFAULT_GIT_TIMEOUT))
    }

    /// Whether reconciliation is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// The provider in effect (`generic` when unset).
    pub fn provider(&self) -> GitProvider {
        self.provider.clone().unwrap_or(GitProvider::Generic)
    }
}

/// GitRepositoryRef specifies the Git reference to resolve and checkout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryRef {
    /// Branch to check out, defaults to 'master' if no other field is defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,

    /// Tag to check out, takes precedence over Branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,

    /// SemVer tag expression to check out, takes precedence over Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,

    /// Name of the reference to check out; takes precedence over Branch, Tag and SemVer.
    ///
    /// It must be a valid Git reference: https://git-scm.com/docs/git-check-ref-format#_description
    /// Examples: "refs/heads/main", "refs/tags/v0.1.0", "refs/pull/420/head", "refs/merge-requests/1/head"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Commit SHA to check out, takes precedence over all reference fields.
    ///
    /// This can be combined with Branch to shallow clone the branch, in which the commit is
    /// expected to exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// GitRepositoryVerification specifies the Git commit signature verification strategy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryVerification {
    /// Mode specifies which Git object(s) should be verified.
    ///
    /// The variants "head" and "HEAD" both imply the same thing, i.e. verify the commit that the
    /// HEAD of the Git repository points to. The variant "head" solely exists to ensure backwards
    /// compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "HEAD"))]
    pub mode: Option<GitVerificationMode>,

    /// SecretRef specifies the Secret containing the public keys of trusted Git authors. PGP
    /// public keys must be stored under keys with the .asc suffix, and SSH public keys must be
    /// stored under keys with the .sshpub suffix.
    pub secret_ref: LocalObjectReference,
}

impl GitRepositoryVerification {
    /// The mode in effect (`HEAD` when unset).
    pub fn mode(&self) -> GitVerificationMode {
        self.mode
            .as_ref()
            .map_or(GitVerificationMode::Head, GitVerificationMode::effective)
    }
}

/// GitRepositoryInclude specifies a local reference to a GitRepository which Artifact
/// (sub-)contents must be included, and where they should be placed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryInclude {
    /// GitRepositoryRef specifies the GitRepository which Artifact contents must be included.
    pub repository: LocalObjectReference,

    /// FromPath specifies the path to copy contents from, defaults to the root of the Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,

    /// ToPath specifies the path to copy contents to, defaults to the name of the
    /// GitRepositoryRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_path: Option<String>,
}

impl GitRepositoryInclude {
    /// The path to copy to: `toPath`, or the name of the included repository.
    pub fn to_path(&self) -> &str {
        match self.to_path.as_deref() {
            Some(path) if !path.is_empty() => path,
            _ => &self.repository.name,
        }
    }
}

/// GitRepositoryStatus records the observed state of a Git repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryStatus {
    /// ObservedGeneration is the last observed generation of the GitRepository object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions holds the conditions for the GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// Artifact represents the last successful GitRepository reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// IncludedArtifacts contains a list of the last successfully included Artifacts as
    /// instructed by GitRepositorySpec.Include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_artifacts: Option<Vec<Artifact>>,

    /// ObservedIgnore is the observed exclusion patterns used for constructing the source
    /// artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// ObservedRecurseSubmodules is the observed resource submodules configuration used to
    /// produce the current Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_recurse_submodules: Option<bool>,

    /// ObservedInclude is the observed list of GitRepository resources used to produce the
    /// current Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_include: Option<Vec<GitRepositoryInclude>>,

    /// ObservedSparseCheckout is the observed list of directories used to produce the current
    /// Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_sparse_checkout: Option<Vec<String>>,

    /// SourceVerificationMode is the last used verification mode indicating which Git object(s)
    /// have been verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub source_verification_mode: Option<GitVerificationMode>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a
    /// change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl GitRepositoryStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

impl GitRepository {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl meta::FluxObject for GitRepository {
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
