//! A Provider and its Secrets made into a [`Target`]: where to send, with which credentials,
//! through which proxy and with which TLS settings, as notification-controller's
//! `createNotifier` reads them:
//!
//! - `spec.secretRef`: `address` (over `spec.address`, at most 2048 bytes), `token`,
//!   `username`/`password`, `headers` (a YAML map), `proxy` (deprecated), and for the commit
//!   status types `ca.crt`/`tls.crt`/`tls.key`;
//! - `spec.proxySecretRef`: `address`, optional `username`/`password`; `spec.proxy`
//!   (deprecated);
//! - `spec.certSecretRef`: `ca.crt`, `tls.crt`, `tls.key` (or the legacy `caFile`,
//!   `certFile`, `keyFile`);
//! - `spec.timeout` (15 s by default), `spec.channel`, `spec.username`.
//!
//! `spec.commitStatusExpr` names the commit status (CEL over `event`, `alert`, `provider`).
//! Types sluice does not send to and `spec.serviceAccountName` are refused by name on the
//! Alert, never ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use sluice_api::notification::{Alert, FORMAT_ANNOTATION, Provider, ProviderType};
use sluice_kstatus::cel::Expression;

use crate::event::Event;
use crate::notifier;

/// Everything a notification to one Provider needs.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The format sent (for `generic` with sluice's format annotation, that format).
    pub kind: ProviderType,
    /// `address` of the Secret, else `spec.address`.
    pub address: String,
    /// `spec.channel`.
    pub channel: String,
    /// `spec.username`, else the Secret's `username`.
    pub username: String,
    /// The Secret's `password`.
    pub password: String,
    /// The Secret's `token`, trimmed.
    pub token: String,
    /// The Secret's `token` as it is (the `generic-hmac` key, as Flux uses it).
    pub hmac_key: Vec<u8>,
    /// The Secret's `headers`.
    pub headers: BTreeMap<String, String>,
    /// The proxy URL.
    pub proxy: Option<String>,
    /// PEM CA bundle, client certificate and key.
    pub ca_pem: Option<Vec<u8>>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    /// `spec.timeout`.
    pub timeout: Duration,
    /// The Provider's uid (commit status names).
    pub provider_uid: String,
    /// The commit status name `spec.commitStatusExpr` gave (else the default, from the uid).
    pub commit_status: Option<String>,
    /// Whether `address` came from a Secret (then it is masked in errors).
    pub secret_address: bool,
    /// The GitHub App's slug, when the token is an app's installation token asked for with it
    /// (pull request comments: the app comments as `<slug>[bot]`).
    pub app_slug: Option<String>,
    /// `nats`: the Secret's `creds` (a credentials file) and `nkey` (a seed).
    pub nats_creds: Option<Vec<u8>>,
    pub nats_nkey: Option<Vec<u8>>,
}

/// The format to send in: `spec.type`, or for `generic` the format chosen by sluice's
/// annotation; types sluice does not send to are refused by name.
pub fn kind(p: &Provider) -> Result<ProviderType, String> {
    let mut kind = p.spec.type_.clone();
    if kind == ProviderType::Generic
        && let Some(format) = p.annotations().get(FORMAT_ANNOTATION)
    {
        kind = ProviderType::from(format.as_str());
        if !matches!(kind, ProviderType::Dingtalk | ProviderType::Wecom) {
            return Err(format!(
                "annotation {FORMAT_ANNOTATION}: {format:?} is not a format sluice sends in (dingtalk, wecom)"
            ));
        }
    }
    if !notifier::SUPPORTED.contains(&kind) {
        return Err(format!(
            "provider type '{}' is not supported by sluice yet (supported: {})",
            kind.as_str(),
            notifier::SUPPORTED
                .iter()
                .map(ProviderType::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if p.spec
        .service_account_name
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(
            "spec.serviceAccountName (workload identity) is not supported by sluice".into(),
        );
    }
    Ok(kind)
}

/// The commit status name `spec.commitStatusExpr` gives for `event` sent by `alert` (a CEL
/// expression over `event`, `alert` and `provider`, which must give a string), as
/// notification-controller computes it; `None` without an expression (the default name) or
/// for a Provider that does not write commit statuses.
pub fn commit_status(p: &Provider, alert: &Alert, event: &Event) -> Result<Option<String>, String> {
    let Some(text) = p
        .spec
        .commit_status_expr
        .as_deref()
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    if !notifier::is_commit_status(&p.spec.type_) {
        return Ok(None);
    }
    let failed = |e: String| {
        format!("failed to evaluate the spec.commitStatusExpr CEL expression for the event: {e}")
    };
    let expression = Expression::compile_with_variables(text, &["event", "alert", "provider"])
        .map_err(failed)?;
    let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| failed(e.to_string()));
    let (event, alert, provider) = (
        json(serde_json::to_value(event))?,
        json(serde_json::to_value(alert))?,
        json(serde_json::to_value(p))?,
    );
    expression
        .eval_string(&[
            ("event", &event),
            ("alert", &alert),
            ("provider", &provider),
        ])
        .map(Some)
        .map_err(failed)
}

async fn secret(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s = api.get(name).await.map_err(|e| {
        let cause = match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        };
        format!("failed to get secret '{ns}/{name}': {cause}")
    })?;
    Ok(s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

fn text(data: &BTreeMap<String, Vec<u8>>, key: &str) -> Option<String> {
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
}

/// The Target of `p` for `event`.
pub async fn resolve(
    client: &Client,
    p: &Provider,
    kind: ProviderType,
    _event: &Event,
) -> Result<Target, String> {
    let ns = p.namespace().unwrap_or_default();
    let mut t = Target {
        kind,
        address: p.spec.address.clone().unwrap_or_default(),
        channel: p.spec.channel.clone().unwrap_or_default(),
        username: p.spec.username.clone().unwrap_or_default(),
        proxy: p.spec.proxy.clone().filter(|s| !s.is_empty()),
        timeout: p.timeout(),
        provider_uid: p.uid().unwrap_or_default(),
        ..Target::default()
    };
    let mut secret_data = None;
    if let Some(r) = &p.spec.secret_ref {
        let data = secret(client, &ns, &r.name).await?;
        if let Some(a) = data.get("address") {
            if a.len() > 2048 {
                return Err(
                    "invalid address in secret: address exceeds maximum length of 2048 bytes"
                        .into(),
                );
            }
            t.address = String::from_utf8_lossy(a).trim().to_string();
            t.secret_address = true;
        }
        if let Some(proxy) = text(&data, "proxy") {
            if url::Url::parse(&proxy).is_err() {
                return Err(format!("invalid 'proxy' in secret '{ns}/{}'", r.name));
            }
            t.proxy = Some(proxy);
        }
        if let Some(h) = data.get("headers") {
            t.headers = serde_norway::from_slice(h)
                .map_err(|e| format!("failed to read headers from secret: {e}"))?;
        }
        if let Some(token) = data.get("token") {
            t.hmac_key = token.clone();
            t.token = String::from_utf8_lossy(token).trim().to_string();
        }
        if let (Some(u), Some(pw)) = (text(&data, "username"), text(&data, "password")) {
            if t.username.is_empty() {
                t.username = u;
            }
            t.password = pw;
        }
        if t.kind == ProviderType::Nats {
            t.nats_creds = data.get("creds").cloned();
            t.nats_nkey = data.get("nkey").cloned();
        }
        secret_data = Some(data);
    }
    if let Some(r) = &p.spec.proxy_secret_ref {
        let data = secret(client, &ns, &r.name).await?;
        let Some(address) = text(&data, "address") else {
            return Err(format!(
                "failed to get proxy URL: secret '{ns}/{}': key 'address' not found",
                r.name
            ));
        };
        let mut url = url::Url::parse(&address)
            .map_err(|e| format!("failed to get proxy URL: invalid address: {e}"))?;
        if let (Some(u), Some(pw)) = (text(&data, "username"), text(&data, "password")) {
            let _ = url.set_username(&u);
            let _ = url.set_password(Some(&pw));
        }
        t.proxy = Some(url.to_string());
    }
    // GitHub types without a token: a GitHub App in the Secret gets one (Flux's order: the
    // token, else the password, else the app).
    let github = matches!(
        t.kind,
        ProviderType::Github
            | ProviderType::GithubDispatch
            | ProviderType::GithubPullRequestComment
    );
    let app = match &secret_data {
        Some(data)
            if github
                && t.token.is_empty()
                && t.password.is_empty()
                && sluice_runtime::github_app::has_app_data(data) =>
        {
            Some(sluice_runtime::github_app::App::from_secret(data)?)
        }
        _ => None,
    };
    let tls = if let Some(r) = &p.spec.cert_secret_ref {
        Some(secret(client, &ns, &r.name).await?)
    } else if notifier::is_commit_status(&t.kind) {
        secret_data.filter(|d| d.contains_key("ca.crt"))
    } else {
        None
    };
    if let Some(data) = tls {
        let pick = |a: &str, b: &str| data.get(a).or_else(|| data.get(b)).cloned();
        t.ca_pem = pick("ca.crt", "caFile");
        t.cert_pem = pick("tls.crt", "certFile");
        t.key_pem = pick("tls.key", "keyFile");
        if t.cert_pem.is_some() != t.key_pem.is_some() {
            return Err("failed to get TLS config: both tls.crt and tls.key are required for a client certificate".into());
        }
    }
    if let Some(app) = app {
        let slug = t.kind == ProviderType::GithubPullRequestComment;
        let token = app.token(&t.http_client()?, slug).await?;
        t.token = token.token;
        t.app_slug = token.slug;
        if slug && t.app_slug.as_deref().is_none_or(str::is_empty) {
            return Err("failed to get app information: the answer has no slug".into());
        }
    }
    Ok(t)
}

impl Target {
    /// `message` with every secret of this target replaced by `*****`: the token, the
    /// password, and an address read from a Secret (whole, and its query values and longer
    /// path segments, where webhooks keep their keys, in case a server quotes them back).
    pub fn mask(&self, message: &str) -> String {
        let mut secrets: Vec<String> = vec![self.token.clone(), self.password.clone()];
        if self.secret_address {
            secrets.push(self.address.clone());
            if let Ok(u) = url::Url::parse(&self.address) {
                secrets.extend(u.query_pairs().map(|(_, v)| v.into_owned()));
                secrets.extend(
                    u.path_segments()
                        .into_iter()
                        .flatten()
                        .filter(|s| s.len() >= 8)
                        .map(str::to_string),
                );
            }
        }
        // Longest first, so a secret inside another is not left half masked.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = message.to_string();
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(s.as_str(), "*****");
        }
        out
    }

    /// An HTTP client with this target's proxy, TLS settings and timeout.
    pub fn http_client(&self) -> Result<reqwest::Client, String> {
        install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &self.proxy {
            let p = reqwest::Proxy::all(proxy).map_err(|_| "invalid proxy URL".to_string())?;
            b = b.proxy(p);
        }
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("failed to get TLS config: invalid CA certificate: {e}"))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&self.cert_pem, &self.key_pem) {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                format!("failed to get TLS config: invalid client certificate or key: {e}")
            })?;
            b = b.identity(id);
        }
        b.build()
            .map_err(|e| format!("failed to construct HTTP client: {}", e.without_url()))
    }
}

/// Makes ring the process-wide rustls provider unless one is installed (kube's client uses
/// ring; reqwest takes the process default).
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(spec: serde_json::Value, annotations: serde_json::Value) -> Provider {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "p", "namespace": "flux-system", "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn the_format_annotation_chooses_dingtalk_or_wecom_on_fluxs_crd() {
        let p = provider(
            serde_json::json!({"type": "generic"}),
            serde_json::json!({FORMAT_ANNOTATION: "dingtalk"}),
        );
        assert_eq!(kind(&p), Ok(ProviderType::Dingtalk));
        let p = provider(
            serde_json::json!({"type": "generic"}),
            serde_json::json!({FORMAT_ANNOTATION: "slack"}),
        );
        assert!(
            kind(&p)
                .unwrap_err()
                .contains("not a format sluice sends in")
        );
        let p = provider(serde_json::json!({"type": "wecom"}), serde_json::json!({}));
        assert_eq!(kind(&p), Ok(ProviderType::Wecom));
    }

    #[test]
    fn what_sluice_does_not_send_is_refused_by_name() {
        let p = provider(serde_json::json!({"type": "sentry"}), serde_json::json!({}));
        assert!(
            kind(&p)
                .unwrap_err()
                .starts_with("provider type 'sentry' is not supported by sluice yet")
        );
        let p = provider(
            serde_json::json!({"type": "slack", "serviceAccountName": "sa"}),
            serde_json::json!({}),
        );
        assert!(kind(&p).unwrap_err().contains("spec.serviceAccountName"));
    }

    #[test]
    fn the_commit_status_expression_names_the_status() {
        let mut p = provider(
            serde_json::json!({"type": "gitea", "commitStatusExpr":
                "(event.involvedObject.kind + '/' + event.involvedObject.name + '/' \
                 + event.metadata.env + '/' + provider.metadata.uid.split('-')[0] + '/' \
                 + alert.metadata.name).lowerAscii()"}),
            serde_json::json!({}),
        );
        p.metadata.uid = Some("0C9C2E41-d2f9".into());
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "On-Call", "namespace": "flux-system"},
            "spec": {"providerRef": {"name": "p"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]},
        }))
        .unwrap();
        let mut event = Event {
            severity: "info".into(),
            reason: "ReconciliationSucceeded".into(),
            ..Event::default()
        };
        event.involved_object.kind = "Kustomization".into();
        event.involved_object.name = "Apps".into();
        event.metadata.insert("env".into(), "Home".into());
        assert_eq!(kind(&p), Ok(ProviderType::Gitea));
        assert_eq!(
            commit_status(&p, &alert, &event),
            Ok(Some("kustomization/apps/home/0c9c2e41/on-call".to_string()))
        );
        // Not a string, or a variable Flux does not declare: the event is not sent.
        p.spec.commit_status_expr = Some("event.involvedObject.name.size()".into());
        let err = commit_status(&p, &alert, &event).unwrap_err();
        assert!(
            err.starts_with(
                "failed to evaluate the spec.commitStatusExpr CEL expression for the event:"
            ) && err.ends_with("not a string"),
            "{err}"
        );
        p.spec.commit_status_expr = Some("object.metadata.name".into());
        let err = commit_status(&p, &alert, &event).unwrap_err();
        assert!(err.ends_with("undeclared reference to 'object'"), "{err}");
        // No expression, or a chat Provider: the default name.
        p.spec.commit_status_expr = None;
        assert_eq!(commit_status(&p, &alert, &event), Ok(None));
        p.spec.commit_status_expr = Some("'named'".into());
        p.spec.type_ = ProviderType::Slack;
        assert_eq!(commit_status(&p, &alert, &event), Ok(None));
    }

    #[test]
    fn secrets_are_masked() {
        let t = Target {
            token: "s3cr3t-token".into(),
            address: "https://hooks.slack.com/services/T/B/xyz".into(),
            secret_address: true,
            ..Target::default()
        };
        assert_eq!(
            t.mask("posting to https://hooks.slack.com/services/T/B/xyz with s3cr3t-token failed"),
            "posting to ***** with ***** failed"
        );
        let t = Target {
            address: "https://oapi.dingtalk.com/robot/send?access_token=0a1b2c3d4e".into(),
            secret_address: true,
            ..Target::default()
        };
        assert_eq!(t.mask("bad token 0a1b2c3d4e"), "bad token *****");
    }
}
