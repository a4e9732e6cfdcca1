//! `notification.toolkit.fluxcd.io`: [`Receiver`] (`v1`), a webhook that asks Flux objects to
//! reconcile when a Git server, a registry or anything else posts to it; [`Provider`] and
//! [`Alert`] (`v1beta3`): where events about Flux objects are sent, and which.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::meta::{self, DurationError, LocalObjectReference};
use crate::string_enum::string_enum;

/// The API group.
pub const GROUP: &str = "notification.toolkit.fluxcd.io";
/// The kind.
pub const RECEIVER_KIND: &str = "Receiver";
/// The kind.
pub const PROVIDER_KIND: &str = "Provider";
/// The kind.
pub const ALERT_KIND: &str = "Alert";
/// On a Provider of `type: generic` (Flux's CRD has no `dingtalk` or `wecom`), the format sluice
/// sends in instead of Flux's generic JSON: `dingtalk` or `wecom`.
pub const FORMAT_ANNOTATION: &str = "notification.sluice.dev/format";
/// The path every Receiver's webhook is served under: `/hook/<sha256(token+name+namespace)>`.
pub const WEBHOOK_PATH_PREFIX: &str = "/hook/";
/// Ready=False: the Secret with the token could not be read or has no `token`.
pub const TOKEN_NOT_FOUND_REASON: &str = "TokenNotFound";

string_enum! {
    /// The kind of payload a Receiver accepts (`spec.type`).
    pub enum ReceiverType {
        /// Any payload; the secret path is the authentication.
        Generic = "generic",
        /// Any payload signed with the token (`X-Signature: sha256=<HMAC>`).
        GenericHmac = "generic-hmac",
        /// Any payload with an OIDC bearer token.
        GenericOidc = "generic-oidc",
        /// GitHub (and Gitea, Forgejo) webhooks, signed with the token.
        Github = "github",
        /// GitLab webhooks, with the token in `X-Gitlab-Token`.
        Gitlab = "gitlab",
        /// Bitbucket Server webhooks, signed with the token.
        Bitbucket = "bitbucket",
        /// Harbor webhooks, with the token in `Authorization`.
        Harbor = "harbor",
        /// Docker Hub webhooks.
        Dockerhub = "dockerhub",
        /// Quay webhooks.
        Quay = "quay",
        /// Google Container Registry Pub/Sub pushes.
        Gcr = "gcr",
        /// Nexus webhooks, signed with the token.
        Nexus = "nexus",
        /// Azure Container Registry webhooks.
        Acr = "acr",
        /// CDEvents.
        Cdevents = "cdevents",
    }
}

string_enum! {
    /// The kinds a Receiver may ask to reconcile.
    pub enum ReceiverResourceKind {
        /// A Bucket.
        Bucket = "Bucket",
        /// A GitRepository.
        GitRepository = "GitRepository",
        /// A Kustomization.
        Kustomization = "Kustomization",
        /// A HelmRelease.
        HelmRelease = "HelmRelease",
        /// A HelmChart.
        HelmChart = "HelmChart",
        /// A HelmRepository.
        HelmRepository = "HelmRepository",
        /// An ImageRepository.
        ImageRepository = "ImageRepository",
        /// An ImagePolicy.
        ImagePolicy = "ImagePolicy",
        /// An ImageUpdateAutomation.
        ImageUpdateAutomation = "ImageUpdateAutomation",
        /// An OCIRepository.
        OciRepository = "OCIRepository",
        /// An ArtifactGenerator.
        ArtifactGenerator = "ArtifactGenerator",
        /// An ExternalArtifact.
        ExternalArtifact = "ExternalArtifact",
    }
}

/// ReceiverSpec defines the desired state of the Receiver.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    singular = "receiver",
    namespaced,
    status = "ReceiverStatus",
    schema = "manual",
    derive = "PartialEq",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "generic-oidc receivers must define at least one oidcProvider",
        "rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)"
    },
    {
        "message": "oidcProviders can only be set when type is generic-oidc",
        "rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0"
    },
    {
        "message": "secretRef cannot be set when type is generic-oidc",
        "rule": "self.type != 'generic-oidc' || !has(self.secretRef)"
    },
    {
        "message": "secretRef is required when type is not generic-oidc",
        "rule": "self.type == 'generic-oidc' || has(self.secretRef)"
    }
]))]
pub struct ReceiverSpec {
    /// Type of webhook sender, used to determine the validation procedure and payload
    /// deserialization.
    #[serde(rename = "type")]
    pub type_: ReceiverType,

    /// Interval at which to reconcile the Receiver with its Secret references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), extend("default" = "10m"))]
    pub interval: Option<String>,

    /// Events specifies the list of event types to handle, e.g. 'push' for GitHub or 'Push
    /// Hook' for GitLab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,

    /// A list of resources to be notified about changes.
    pub resources: Vec<CrossNamespaceObjectReference>,

    /// ResourceFilter is a CEL expression expected to return a boolean that is evaluated for
    /// each resource referenced in the Resources field when a webhook is received. If the
    /// expression returns false then the controller will not request a reconciliation for
    /// the resource. When the expression is specified the controller will parse it and mark
    /// the object as terminally failed if the expression is invalid or does not return a
    /// boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,

    /// SecretRef specifies the Secret containing the token used to validate the payload
    /// authenticity. The Secret must contain a 'token' key. Required for all receiver types
    /// except 'generic-oidc'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// OIDCProviders specifies the OIDC providers whose ID tokens are accepted by a
    /// generic-oidc receiver.
    #[serde(
        default,
        rename = "oidcProviders",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
    pub oidc_providers: Option<Vec<OidcProvider>>,

    /// This flag tells the controller to suspend subsequent events handling for this
    /// receiver. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// An OIDC provider of a generic-oidc receiver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct OidcProvider {
    /// IssuerURL is the URL of the OIDC issuer.
    #[serde(rename = "issuerURL")]
    #[schemars(pattern(r"^https?://"))]
    pub issuer_url: String,

    /// Audience is the expected audience of the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,

    /// Variables are CEL expressions evaluated against the token's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<OidcVariable>>,

    /// Validations are CEL expressions the token's claims must satisfy.
    #[schemars(length(min = 1))]
    pub validations: Vec<OidcValidation>,
}

/// A named CEL expression over an ID token's claims.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct OidcVariable {
    /// Name of the variable.
    pub name: String,
    /// Expression is the CEL expression.
    pub expression: String,
}

/// A CEL expression an ID token's claims must satisfy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct OidcValidation {
    /// Expression is the CEL expression.
    pub expression: String,
    /// Message is returned when the expression is false.
    pub message: String,
}

/// A reference to a Flux object, in any namespace, or to those matching labels (`name: *`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    pub kind: ReceiverResourceKind,

    /// Name of the referent. If multiple resources are targeted `*` may be set.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,

    /// MatchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels
    /// map is equivalent to an element of matchExpressions, whose key field is "key", the
    /// operator is "In", and the values array contains only "value". MatchLabels requires
    /// the name to be set to `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,

    /// Filter is a CEL expression that is evaluated for this resource when a webhook is
    /// received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// ReceiverStatus defines the observed state of the Receiver.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStatus {
    /// Conditions holds the conditions for the Receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// WebhookPath is the generated incoming webhook address in the format of
    /// '/hook/sha256sum(token+name+namespace)'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,

    /// ObservedGeneration is the last observed generation of the Receiver object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so
    /// a change of the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ReceiverStatus {
    /// The conditions, created empty if absent, for use with [`meta::set_condition`].
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

impl JsonSchema for Receiver {
    fn schema_name() -> Cow<'static, str> {
        RECEIVER_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root::<ReceiverSpec, ReceiverStatus>(
            generator,
            "Receiver is the Schema for the receivers API.",
        )
    }
}

impl Receiver {
    /// The path of its webhook with `token`: `/hook/` and the hex SHA-256 of token, name and
    /// namespace (Flux's `GetWebhookPath`).
    pub fn webhook_path(&self, token: &str) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(token.as_bytes());
        h.update(self.metadata.name.as_deref().unwrap_or_default().as_bytes());
        h.update(
            self.metadata
                .namespace
                .as_deref()
                .unwrap_or_default()
                .as_bytes(),
        );
        let digest = h.finalize();
        let mut out = String::from(WEBHOOK_PATH_PREFIX);
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

string_enum! {
    /// Where a Provider sends (`spec.type`): Flux's types, and sluice's `dingtalk` and `wecom`.
    pub enum ProviderType {
        /// Slack (incoming webhook, or chat.postMessage with a token).
        Slack = "slack",
        /// Discord (its Slack-compatible webhook).
        Discord = "discord",
        /// Microsoft Teams.
        Msteams = "msteams",
        /// Rocket.Chat.
        Rocket = "rocket",
        /// Flux's event as JSON.
        Generic = "generic",
        /// Flux's event as JSON, signed with the token.
        GenericHmac = "generic-hmac",
        /// GitHub commit statuses.
        Github = "github",
        /// GitLab commit statuses.
        Gitlab = "gitlab",
        /// Gitea (and Forgejo) commit statuses.
        Gitea = "gitea",
        /// Gitea pull request comments.
        GiteaPullRequestComment = "giteapullrequestcomment",
        /// Bitbucket Server commit statuses.
        BitbucketServer = "bitbucketserver",
        /// Bitbucket Cloud commit statuses.
        Bitbucket = "bitbucket",
        /// Azure DevOps commit statuses.
        AzureDevops = "azuredevops",
        /// Google Chat.
        GoogleChat = "googlechat",
        /// Google Pub/Sub.
        GooglePubsub = "googlepubsub",
        /// Webex.
        Webex = "webex",
        /// Sentry.
        Sentry = "sentry",
        /// Azure Event Hub.
        AzureEventHub = "azureeventhub",
        /// Telegram.
        Telegram = "telegram",
        /// Lark (Feishu).
        Lark = "lark",
        /// Matrix.
        Matrix = "matrix",
        /// Opsgenie.
        Opsgenie = "opsgenie",
        /// Prometheus Alertmanager.
        Alertmanager = "alertmanager",
        /// Grafana annotations.
        Grafana = "grafana",
        /// GitHub repository dispatch.
        GithubDispatch = "githubdispatch",
        /// GitHub pull request comments.
        GithubPullRequestComment = "githubpullrequestcomment",
        /// GitLab merge request comments.
        GitlabMergeRequestComment = "gitlabmergerequestcomment",
        /// PagerDuty.
        Pagerduty = "pagerduty",
        /// Datadog.
        Datadog = "datadog",
        /// NATS.
        Nats = "nats",
        /// Zulip.
        Zulip = "zulip",
        /// OpenTelemetry.
        Otel = "otel",
        /// Zoom.
        Zoom = "zoom",
        /// incident.io.
        IncidentIo = "incident.io",
        /// DingTalk custom robot (sluice; not in Flux's CRD).
        Dingtalk = "dingtalk",
        /// WeCom group robot (sluice; not in Flux's CRD).
        Wecom = "wecom",
    }
}

// The enum is made by `string_enum!`, which cannot take `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for ProviderType {
    fn default() -> Self {
        ProviderType::Generic
    }
}

impl ProviderType {
    /// The types sluice adds to Flux's enumeration (its own CRD admits them; on Flux's CRD use
    /// `type: generic` with [`FORMAT_ANNOTATION`]).
    pub const SLUICE_ONLY: &'static [&'static str] = &["dingtalk", "wecom"];
}

/// ProviderSpec defines the desired state of the Provider.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Provider",
    plural = "providers",
    singular = "provider",
    namespaced,
    schema = "manual",
    derive = "PartialEq",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types",
        "rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)"
    }
]))]
pub struct ProviderSpec {
    /// Type specifies which Provider implementation to use.
    #[serde(rename = "type")]
    pub type_: ProviderType,

    /// Interval at which to reconcile the Provider with its Secret references. Deprecated and
    /// not used in v1beta3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: Option<String>,

    /// Channel specifies the destination channel where events should be posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub channel: Option<String>,

    /// Username specifies the name under which events are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub username: Option<String>,

    /// Address specifies the endpoint, in a generic sense, to where alerts are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub address: Option<String>,

    /// Timeout for sending alerts to the Provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"))]
    pub timeout: Option<String>,

    /// Proxy the HTTP/S address of the proxy server. Deprecated: use ProxySecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(r"^(http|https)://.*$"))]
    pub proxy: Option<String>,

    /// ProxySecretRef specifies the Secret containing the proxy configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// SecretRef specifies the Secret containing the authentication credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// CertSecretRef specifies the Secret containing TLS certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// CommitStatusExpr is a CEL expression computing the commit status of git providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status_expr: Option<String>,

    /// ServiceAccountName for workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Suspend tells the controller to suspend subsequent events handling for this Provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

impl JsonSchema for Provider {
    fn schema_name() -> Cow<'static, str> {
        PROVIDER_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root_without_status::<ProviderSpec>(
            generator,
            "Provider is the Schema for the providers API",
        )
    }
}

impl Provider {
    /// `spec.timeout`, 15 s when unset (Flux's `GetTimeout`, which also falls back on a
    /// duration it cannot parse).
    pub fn timeout(&self) -> Duration {
        self.spec
            .timeout
            .as_deref()
            .and_then(|t| meta::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(15))
    }

    /// Whether `spec.suspend` is true.
    pub fn is_suspended(&self) -> bool {
        self.spec.suspend.unwrap_or(false)
    }
}

string_enum! {
    /// The severity an Alert passes on (`spec.eventSeverity`).
    pub enum EventSeverity {
        /// Every event.
        Info = "info",
        /// Only errors.
        Error = "error",
    }
}

/// An event source of an Alert: a kind, a name (or `*`), a namespace and labels.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    /// API version of the referent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent
    pub kind: ReceiverResourceKind,

    /// Name of the referent. If multiple resources are targeted `*` may be set.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,

    /// MatchLabels requires the name to be set to `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// AlertSpec defines an alerting rule for events involving a list of objects.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Alert",
    plural = "alerts",
    singular = "alert",
    namespaced,
    schema = "manual",
    derive = "PartialEq",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// ProviderRef specifies which Provider this Alert should use.
    pub provider_ref: LocalObjectReference,

    /// EventSeverity specifies how to filter events based on severity. If set to 'info' no
    /// events will be filtered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "info"))]
    pub event_severity: Option<EventSeverity>,

    /// EventSources specifies how to filter events based on the involved object kind, name
    /// and namespace.
    pub event_sources: Vec<EventSource>,

    /// InclusionList specifies a list of Golang regular expressions to be used for including
    /// messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_list: Option<Vec<String>>,

    /// EventMetadata is an optional field for adding metadata to events dispatched by the
    /// controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_metadata: Option<BTreeMap<String, String>>,

    /// ExclusionList specifies a list of Golang regular expressions to be used for excluding
    /// messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,

    /// Summary holds a short description of the impact and affected cluster. Deprecated: use
    /// EventMetadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub summary: Option<String>,

    /// Suspend tells the controller to suspend subsequent events handling for this Alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

impl JsonSchema for Alert {
    fn schema_name() -> Cow<'static, str> {
        ALERT_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        crate::schema::root_without_status::<AlertSpec>(
            generator,
            "Alert is the Schema for the alerts API",
        )
    }
}

impl Alert {
    /// `spec.eventSeverity`, `info` when unset.
    pub fn severity(&self) -> EventSeverity {
        self.spec
            .event_severity
            .clone()
            .unwrap_or(EventSeverity::Info)
    }

    /// Whether `spec.suspend` is true.
    pub fn is_suspended(&self) -> bool {
        self.spec.suspend.unwrap_or(false)
    }
}

impl meta::FluxObject for Receiver {
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
        meta::parse_duration(self.spec.interval.as_deref().unwrap_or("10m"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_path_is_fluxs() {
        let r: Receiver = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": "gitea", "namespace": "flux-system"},
            "spec": {"type": "github", "secretRef": {"name": "webhook-token"},
                     "resources": [{"kind": "GitRepository", "name": "flux-system"}]},
        }))
        .unwrap();
        // sha256("s3cr3t" + "gitea" + "flux-system"), as `printf %s s3cr3tgiteaflux-system | sha256sum`.
        assert_eq!(
            r.webhook_path("s3cr3t"),
            "/hook/3614f0b65adc9c145072719e422f86b09daf0ed1801de17d496a341a3500b231"
        );
    }
}
