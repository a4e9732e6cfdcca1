//! Credentials and TLS material from the Secrets a source names, read the
//! way Flux's source-controller reads them.
//!
//! - `secretRef`: `username`/`password` (basic auth), or a
//!   `kubernetes.io/dockerconfigjson` Secret (`.dockerconfigjson`) for
//!   registries.
//! - `certSecretRef`: `ca.crt`, and `tls.crt` + `tls.key` for mutual TLS.
//!   A HelmRepository's `secretRef` may still carry the deprecated
//!   `caFile`/`certFile`/`keyFile` keys; they are read when `certSecretRef`
//!   is not set, as Flux does.
//! - `serviceAccountName`: the `imagePullSecrets` of that ServiceAccount,
//!   each a dockerconfigjson.
//!
//! Every message names the Secret and key, never a value.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::{Api, Client};
use sluice_api::meta::AUTHENTICATION_FAILED_REASON;
use sluice_runtime::Failure;

use crate::reconciler::fetch_failure;

use sluice_oci::auth::DOCKER_CONFIG_JSON_KEY;

/// What a source authenticates with.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    /// `username`/`password` of a basic-auth Secret.
    pub basic: Option<(String, String)>,
    /// Docker configs (`.dockerconfigjson`), in the order found.
    pub docker_configs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "basic",
                &self.basic.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("docker_configs", &self.docker_configs.len())
            .finish()
    }
}

/// TLS material: a CA bundle and a client certificate.
#[derive(Clone, Default)]
pub(crate) struct Tls {
    pub ca_pem: Option<Vec<u8>>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.cert_pem.is_some())
            .finish()
    }
}

/// A Secret of the object's namespace, or `AuthenticationFailed` naming it.
pub(crate) async fn secret(client: &Client, ns: &str, name: &str) -> Result<Secret, Failure> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    match secrets.get_opt(name).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(fetch_failure(
            AUTHENTICATION_FAILED_REASON,
            format!("failed to get secret '{ns}/{name}': secrets \"{name}\" not found"),
        )),
        Err(e) => Err(fetch_failure(
            AUTHENTICATION_FAILED_REASON,
            format!("failed to get secret '{ns}/{name}': {e}"),
        )),
    }
}

fn value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .filter(|v| !v.is_empty())
}

/// Reads `secretRef` as credentials: a dockerconfigjson, or basic auth
/// (`sluice_oci::auth::secret_auth`, shared with `sluice build cluster`).
pub(crate) fn credentials(secret: &Secret, ns: &str, name: &str) -> Result<Credentials, Failure> {
    let auth = sluice_oci::auth::secret_auth(
        &|k| value(secret, k),
        secret.type_.as_deref(),
        &format!("secret '{ns}/{name}'"),
    )
    .map_err(|m| fetch_failure(AUTHENTICATION_FAILED_REASON, m))?;
    Ok(Credentials {
        basic: auth.basic,
        docker_configs: auth.docker_config.into_iter().collect(),
    })
}

/// Reads TLS material from a Secret: `ca.crt`, `tls.crt`, `tls.key` (and,
/// with `legacy`, the deprecated `caFile`, `certFile`, `keyFile`). A
/// certificate without its key (or the reverse) is an error.
pub(crate) fn tls(secret: &Secret, ns: &str, name: &str, legacy: bool) -> Result<Tls, Failure> {
    let tls = sluice_oci::auth::secret_tls(
        &|k| value(secret, k),
        legacy,
        &format!("secret '{ns}/{name}'"),
    )
    .map_err(|m| fetch_failure(AUTHENTICATION_FAILED_REASON, m))?;
    Ok(Tls {
        ca_pem: tls.ca_pem,
        cert_pem: tls.client_cert_pem,
        key_pem: tls.client_key_pem,
    })
}

/// The dockerconfigjsons of a ServiceAccount's `imagePullSecrets`.
/// A missing pull Secret is skipped, as the kubelet skips it.
pub(crate) async fn service_account_configs(
    client: &Client,
    ns: &str,
    sa_name: &str,
) -> Result<Vec<Vec<u8>>, Failure> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa = match sas.get_opt(sa_name).await {
        Ok(Some(sa)) => sa,
        Ok(None) => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!(
                    "failed to get service account '{ns}/{sa_name}': serviceaccounts \"{sa_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!("failed to get service account '{ns}/{sa_name}': {e}"),
            ));
        }
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut configs = Vec::new();
    for r in sa.image_pull_secrets.unwrap_or_default() {
        let name = r.name;
        if name.is_empty() {
            continue;
        }
        match secrets.get_opt(&name).await {
            Ok(Some(s)) => {
                if let Some(c) = value(&s, DOCKER_CONFIG_JSON_KEY) {
                    configs.push(c);
                }
            }
            Ok(None) => {
                tracing::debug!(namespace = %ns, secret = %name, "image pull secret not found")
            }
            Err(e) => {
                return Err(fetch_failure(
                    AUTHENTICATION_FAILED_REASON,
                    format!("failed to get image pull secret '{ns}/{name}': {e}"),
                ));
            }
        }
    }
    Ok(configs)
}

/// `spec.proxySecretRef` read as source-controller reads it (`address`, optional `username`
/// and `password`); a failure is `AuthenticationFailed`, its message after `context` (Flux
/// words it per kind: `failed to get proxy address` for an OCIRepository, `failed to
/// configure proxy options` for a GitRepository).
pub(crate) async fn proxy(
    client: &Client,
    ns: &str,
    name: &str,
    context: &str,
) -> Result<sluice_oci::Proxy, Failure> {
    let failed = |m: String| fetch_failure(AUTHENTICATION_FAILED_REASON, format!("{context}: {m}"));
    let secret = secret(client, ns, name)
        .await
        .map_err(|f| failed(f.message))?;
    let data = secret.data.unwrap_or_default();
    sluice_oci::auth::secret_proxy(
        &|k| data.get(k).map(|b| b.0.clone()),
        &format!("secret '{ns}/{name}'"),
    )
    .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use sluice_oci::auth::DOCKER_CONFIG_JSON_TYPE;

    fn secret(type_: Option<&str>, data: &[(&str, &str)]) -> Secret {
        Secret {
            type_: type_.map(str::to_string),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn basic_auth_and_docker_configs_are_read_without_showing_values() {
        let c = credentials(
            &secret(None, &[("username", "u"), ("password", "hunter2")]),
            "ns",
            "s",
        )
        .unwrap();
        assert_eq!(c.basic, Some(("u".into(), "hunter2".into())));
        assert!(!format!("{c:?}").contains("hunter2"));

        let c = credentials(
            &secret(
                Some(DOCKER_CONFIG_JSON_TYPE),
                &[(DOCKER_CONFIG_JSON_KEY, r#"{"auths":{}}"#)],
            ),
            "ns",
            "s",
        )
        .unwrap();
        assert_eq!(c.docker_configs.len(), 1);

        let e = credentials(&secret(None, &[("password", "hunter2")]), "ns", "s").unwrap_err();
        assert_eq!(e.reason, AUTHENTICATION_FAILED_REASON);
        assert!(!e.message.contains("hunter2"));
        let e = credentials(&secret(Some(DOCKER_CONFIG_JSON_TYPE), &[]), "ns", "s").unwrap_err();
        assert!(e.message.contains(".dockerconfigjson"), "{}", e.message);
    }

    #[test]
    fn tls_reads_current_keys_and_legacy_ones_only_when_asked() {
        let s = secret(
            None,
            &[("caFile", "CA"), ("tls.crt", "C"), ("tls.key", "K")],
        );
        let t = tls(&s, "ns", "s", false).unwrap();
        assert!(t.ca_pem.is_none() && t.cert_pem.is_some());
        let t = tls(&s, "ns", "s", true).unwrap();
        assert_eq!(t.ca_pem.as_deref(), Some(&b"CA"[..]));
        let e = tls(&secret(None, &[("tls.crt", "C")]), "ns", "s", false).unwrap_err();
        assert!(e.message.contains("tls.key"));
    }
}
