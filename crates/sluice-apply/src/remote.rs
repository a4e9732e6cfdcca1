//! Appliers for other clusters: `spec.kubeConfig` of Kustomizations and HelmReleases.
//!
//! The kubeconfig comes from a Secret in the object's namespace (`secretRef`, key `key`, else
//! `value`, else `value.yaml`), read with the controller's own identity, as Flux reads it. It
//! must be self-contained: a kubeconfig is written by whoever can write that Secret, so
//! anything that would make the controller read its own files (`certificate-authority`,
//! `tokenFile`, `client-certificate`, `client-key`) is refused, as Flux refuses it. Only the
//! current context's server, TLS data and credentials are kept; impersonation in the
//! kubeconfig is dropped (the object's service account is impersonated instead).
//!
//! Where Flux silently drops what its flags do not allow (an `exec` plugin without
//! `--insecure-kubeconfig-exec`, `insecure-skip-tls-verify` without
//! `--insecure-kubeconfig-tls`) and the apply then fails on authentication or TLS with no word
//! of why, sluice refuses the kubeconfig and names the flag. `auth-provider` plugins (the old
//! GCP and OIDC helpers) are refused; workload identity (`configMapRef`) is not implemented.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::config::{AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster};
use kube::{Api, Client, Config};
use sluice_api::meta::KubeConfigReference;

use crate::Applier;

/// What a kubeconfig may ask of the controller (Flux's `--insecure-kubeconfig-tls` and
/// `--insecure-kubeconfig-exec`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KubeConfigPolicy {
    /// Honour `insecure-skip-tls-verify`.
    pub insecure_tls: bool,
    /// Run `exec` credential plugins.
    pub insecure_exec: bool,
}

/// Why no applier could be made for a remote cluster.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The reference asks for something sluice does not implement: retrying cannot help.
    #[error("{0}")]
    Unsupported(String),
    /// The Secret or the kubeconfig in it is missing or wrong (it may be fixed).
    #[error("{0}")]
    Invalid(String),
}

/// The most remote appliers kept; past it the cache starts over.
const MAX_CACHED: usize = 32;

/// Appliers for remote clusters, kept by the Secret version and account they were made for,
/// so that a cluster's API discovery is not repeated on every reconcile. A changed Secret is a
/// new entry.
#[derive(Default)]
pub struct RemoteAppliers {
    policy: KubeConfigPolicy,
    cached: Mutex<HashMap<String, Applier>>,
}

impl RemoteAppliers {
    /// Appliers for kubeconfigs that `policy` allows.
    pub fn new(policy: KubeConfigPolicy) -> Self {
        Self {
            policy,
            cached: Mutex::default(),
        }
    }

    /// The applier for the cluster that `reference` (in `namespace`) names, impersonating
    /// `account` (`namespace`, `name`) there if given, under `field_manager`.
    pub async fn applier(
        &self,
        client: &Client,
        namespace: &str,
        reference: &KubeConfigReference,
        account: Option<(&str, &str)>,
        field_manager: &str,
    ) -> Result<Applier, RemoteError> {
        let policy = self.policy;
        let Some(secret_ref) = &reference.secret_ref else {
            return Err(if reference.config_map_ref.is_some() {
                RemoteError::Unsupported(
                    "spec.kubeConfig.configMapRef (a cloud provider's workload identity) is not \
                     supported by sluice: use spec.kubeConfig.secretRef with a kubeconfig"
                        .into(),
                )
            } else {
                RemoteError::Invalid(
                    "invalid .spec.kubeConfig, neither .spec.kubeConfig.configMapRef nor \
                     .spec.kubeConfig.secretRef is set"
                        .into(),
                )
            });
        };
        let id = format!("{namespace}/{}", secret_ref.name);
        let secret = Api::<Secret>::namespaced(client.clone(), namespace)
            .get(&secret_ref.name)
            .await
            .map_err(|e| {
                RemoteError::Invalid(format!(
                    "unable to read KubeConfig secret '{id}' error: {e}"
                ))
            })?;
        let key = secret_ref.key.as_deref().filter(|k| !k.is_empty());
        let data = secret.data.unwrap_or_default();
        let bytes = match key {
            Some(k) => data.get(k).ok_or_else(|| {
                RemoteError::Invalid(format!(
                    "KubeConfig secret '{id}' does not contain a '{k}' key with a kubeconfig"
                ))
            })?,
            None => data
                .get("value")
                .or_else(|| data.get("value.yaml"))
                .ok_or_else(|| {
                    RemoteError::Invalid(format!(
                        "KubeConfig secret '{id}' does not contain a 'value' key with a kubeconfig"
                    ))
                })?,
        };
        let cache_key = format!(
            "{id}@{}/{}|{}|{policy:?}|{field_manager}",
            secret.metadata.uid.unwrap_or_default(),
            secret.metadata.resource_version.unwrap_or_default(),
            key.unwrap_or(""),
        ) + &account.map_or(String::new(), |(ns, n)| format!("|{ns}/{n}"));
        if let Some(a) = self
            .cached
            .lock()
            .ok()
            .and_then(|c| c.get(&cache_key).cloned())
        {
            return Ok(a);
        }
        let invalid =
            |e: String| RemoteError::Invalid(format!("invalid KubeConfig in secret '{id}': {e}"));
        let kubeconfig = sanitize(&bytes.0, policy).map_err(invalid)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let server = config.cluster_url.to_string();
        let applier = Applier::remote(config, account)
            .map_err(|e| invalid(e.to_string()))?
            .with_field_manager(field_manager);
        // Reached once per Secret version, so that a wrong server or credentials are named
        // as such, not as the first object that could not be applied.
        applier.client().apiserver_version().await.map_err(|e| {
            RemoteError::Invalid(format!(
                "cannot reach the cluster {server} of KubeConfig secret '{id}': {}",
                crate::error_chain(&e)
            ))
        })?;
        if let Ok(mut cached) = self.cached.lock() {
            if cached.len() >= MAX_CACHED {
                cached.clear();
            }
            cached.insert(cache_key, applier.clone());
        }
        Ok(applier)
    }
}

/// The current context of the kubeconfig in `bytes`, reduced to what a remote apply may use
/// (see the module's documentation). Every cluster and user is checked for file references,
/// not only the current ones, as Flux checks them.
pub fn sanitize(bytes: &[u8], policy: KubeConfigPolicy) -> Result<Kubeconfig, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the kubeconfig is not UTF-8".to_owned())?;
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| e.to_string())?;
    for c in &kubeconfig.clusters {
        if c.cluster.as_ref().is_some_and(|c| {
            c.certificate_authority
                .as_deref()
                .is_some_and(|f| !f.is_empty())
        }) {
            return Err(format!(
                "cluster '{}' references a certificate-authority file, only \
                 certificate-authority-data is supported",
                c.name
            ));
        }
    }
    for u in &kubeconfig.auth_infos {
        let Some(a) = &u.auth_info else { continue };
        let set = |f: &Option<String>| f.as_deref().is_some_and(|f| !f.is_empty());
        let problem = if set(&a.token_file) {
            "references a tokenFile, only an inline token is supported"
        } else if set(&a.client_certificate) {
            "references a client-certificate file, only client-certificate-data is supported"
        } else if set(&a.client_key) {
            "references a client-key file, only client-key-data is supported"
        } else {
            continue;
        };
        return Err(format!("user '{}' {problem}", u.name));
    }

    let Kubeconfig {
        clusters,
        auth_infos,
        contexts,
        current_context,
        ..
    } = kubeconfig;
    let current = current_context
        .filter(|c| !c.is_empty())
        .ok_or_else(|| "the kubeconfig has no current-context".to_owned())?;
    let context = contexts
        .into_iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context)
        .ok_or_else(|| format!("the current context '{current}' is not in the kubeconfig"))?;
    let cluster_name = context.cluster.clone();
    let cluster = clusters
        .into_iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster)
        .ok_or_else(|| {
            format!("the cluster '{cluster_name}' of context '{current}' is not in the kubeconfig")
        })?;
    if cluster.server.as_deref().is_none_or(str::is_empty) {
        return Err(format!("cluster '{cluster_name}' has no server"));
    }
    if cluster.insecure_skip_tls_verify == Some(true) && !policy.insecure_tls {
        return Err(format!(
            "cluster '{cluster_name}' sets insecure-skip-tls-verify, which the controller \
             allows only with --insecure-kubeconfig-tls"
        ));
    }
    let cluster = Cluster {
        server: cluster.server,
        insecure_skip_tls_verify: cluster
            .insecure_skip_tls_verify
            .filter(|_| policy.insecure_tls),
        certificate_authority_data: cluster.certificate_authority_data,
        proxy_url: cluster.proxy_url,
        tls_server_name: cluster.tls_server_name,
        disable_compression: cluster.disable_compression,
        ..Cluster::default()
    };

    let user_name = context.user.clone().unwrap_or_default();
    let user = auth_infos
        .into_iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info);
    let user = match user {
        None => AuthInfo::default(),
        Some(u) => {
            if u.auth_provider.is_some() {
                return Err(format!(
                    "user '{user_name}' uses an auth-provider plugin, which sluice does not \
                     support: give it a token or a client certificate"
                ));
            }
            if u.exec.is_some() && !policy.insecure_exec {
                return Err(format!(
                    "user '{user_name}' has an exec credential plugin, which the controller \
                     runs only with --insecure-kubeconfig-exec"
                ));
            }
            AuthInfo {
                username: u.username,
                password: u.password,
                token: u.token,
                client_certificate_data: u.client_certificate_data,
                client_key_data: u.client_key_data,
                exec: u.exec.filter(|_| policy.insecure_exec),
                ..AuthInfo::default()
            }
        }
    };
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: cluster_name.clone(),
            cluster: Some(cluster),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user_name.clone(),
            auth_info: Some(user),
            other: Default::default(),
        }],
        contexts: vec![kube::config::NamedContext {
            name: current.clone(),
            context: Some(Context {
                cluster: cluster_name,
                user: Some(user_name),
                namespace: context.namespace,
                ..Context::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(current),
        ..Kubeconfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";

    fn kubeconfig(cluster: &str, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: remote\n\
             contexts:\n- name: remote\n  context: {{cluster: edge, user: deployer, namespace: apps}}\n\
             - name: other\n  context: {{cluster: other, user: other}}\n\
             clusters:\n- name: edge\n  cluster:\n    server: https://edge.example:6443\n{cluster}\
             - name: other\n  cluster: {{server: https://other.example}}\n\
             users:\n- name: deployer\n  user:\n{user}\
             - name: other\n  user: {{token: other-token}}\n"
        )
    }

    fn ok(cluster: &str, user: &str) -> Kubeconfig {
        sanitize(
            kubeconfig(cluster, user).as_bytes(),
            KubeConfigPolicy::default(),
        )
        .unwrap()
    }

    fn refused(cluster: &str, user: &str, policy: KubeConfigPolicy) -> String {
        sanitize(kubeconfig(cluster, user).as_bytes(), policy).unwrap_err()
    }

    #[test]
    fn only_the_current_context_is_kept_with_its_inline_data() {
        let k = ok(
            &format!("    certificate-authority-data: {CA}\n    tls-server-name: edge\n"),
            "    token: abc\n    as: system:admin\n    as-groups: [system:masters]\n",
        );
        assert_eq!(k.current_context.as_deref(), Some("remote"));
        assert_eq!(k.clusters.len(), 1);
        let c = k.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://edge.example:6443"));
        assert_eq!(c.certificate_authority_data.as_deref(), Some(CA));
        assert_eq!(c.tls_server_name.as_deref(), Some("edge"));
        let u = k.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(u.token.is_some());
        assert!(
            u.impersonate.is_none() && u.impersonate_groups.is_none(),
            "impersonation comes from the object's service account, not the kubeconfig"
        );
        assert_eq!(
            k.contexts[0].context.as_ref().unwrap().namespace.as_deref(),
            Some("apps")
        );
    }

    #[test]
    fn files_of_the_controller_are_never_read() {
        let p = KubeConfigPolicy::default();
        let e = refused(
            "    certificate-authority: /etc/ssl/ca.pem\n",
            "    token: t\n",
            p,
        );
        assert!(
            e.contains("cluster 'edge' references a certificate-authority file"),
            "{e}"
        );
        for (field, words) in [
            ("tokenFile", "a tokenFile"),
            ("client-certificate", "a client-certificate file"),
            ("client-key", "a client-key file"),
        ] {
            let e = refused("", &format!("    {field}: /var/run/secrets/x\n"), p);
            assert!(
                e.contains(&format!("user 'deployer' references {words}")),
                "{e}"
            );
        }
        // Also in a user the current context does not use.
        let text = kubeconfig("", "    token: t\n").replace(
            "{token: other-token}",
            "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}",
        );
        let e = sanitize(text.as_bytes(), p).unwrap_err();
        assert!(e.contains("user 'other' references a tokenFile"), "{e}");
    }

    #[test]
    fn exec_and_insecure_tls_need_the_controllers_flags() {
        let exec =
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n";
        let none = KubeConfigPolicy::default();
        let e = refused("", exec, none);
        assert!(e.contains("--insecure-kubeconfig-exec"), "{e}");
        let allowed = KubeConfigPolicy {
            insecure_exec: true,
            insecure_tls: true,
        };
        let k = sanitize(kubeconfig("", exec).as_bytes(), allowed).unwrap();
        assert!(k.auth_infos[0].auth_info.as_ref().unwrap().exec.is_some());

        let insecure = "    insecure-skip-tls-verify: true\n";
        let e = refused(insecure, "    token: t\n", none);
        assert!(e.contains("--insecure-kubeconfig-tls"), "{e}");
        let k = sanitize(kubeconfig(insecure, "    token: t\n").as_bytes(), allowed).unwrap();
        assert_eq!(
            k.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .insecure_skip_tls_verify,
            Some(true)
        );

        let e = refused(
            "",
            "    auth-provider:\n      name: oidc\n      config: {}\n",
            allowed,
        );
        assert!(e.contains("auth-provider"), "{e}");
    }

    #[test]
    fn broken_kubeconfigs_say_what_is_missing() {
        let p = KubeConfigPolicy::default();
        let no_current = kubeconfig("", "    token: t\n").replace("current-context: remote\n", "");
        assert_eq!(
            sanitize(no_current.as_bytes(), p).unwrap_err(),
            "the kubeconfig has no current-context"
        );
        let gone = kubeconfig("", "    token: t\n")
            .replace("current-context: remote", "current-context: nope");
        assert!(sanitize(gone.as_bytes(), p).unwrap_err().contains("'nope'"));
        let no_server = kubeconfig("", "    token: t\n")
            .replace("server: https://edge.example:6443", "tls-server-name: x");
        assert_eq!(
            sanitize(no_server.as_bytes(), p).unwrap_err(),
            "cluster 'edge' has no server"
        );
        assert!(sanitize(b"\xff", p).is_err());
        assert!(sanitize(b"clusters: 3\n", p).is_err());
    }
}
