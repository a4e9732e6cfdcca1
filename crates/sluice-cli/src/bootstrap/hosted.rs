//! `sluice bootstrap gitea|github|gitlab`: find or create the repository
//! through the provider's API, give it a deploy key, and hand the Git and
//! cluster steps a [`Plan`].
//!
//! As with `flux bootstrap`, the manifests are pushed over HTTPS with the
//! token, and the cluster fetches over SSH with a deploy key of its own
//! (read-only unless `--read-write-key`), or over HTTPS with the token when
//! `--token-auth` is given. A key the cluster already holds (the
//! `flux-system` Secret's `identity`) is kept, so a second run, or a run on a
//! cluster Flux bootstrapped, changes nothing on the server.

use std::path::Path;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::Value;

use super::provider::{Client, KeyChange, Kind, NewRepository, ssh_sync_url};
use super::{Git, HostedArgs, Plan, SYNC_NAME, base64, cluster_path};
use crate::output::Log;
use crate::{GlobalArgs, UserError, kube_util};

/// How long a host key scan may take.
const SCAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Finds or creates the repository and prepares its credentials.
pub(super) async fn plan(
    g: &GlobalArgs,
    kind: Kind,
    a: &HostedArgs,
    tmp: &Path,
    log: &Log,
) -> Result<Plan> {
    let env = kind.token_env();
    let token = std::env::var(env)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            UserError::new(format!("{env} is not set"))
                .hint(format!("export {env} with a personal access token"))
        })?;
    let hostname = a
        .hostname
        .clone()
        .unwrap_or_else(|| kind.default_hostname().to_string());
    let ca = match &a.ca_file {
        Some(f) => Some(
            std::fs::read(f)
                .map_err(|e| UserError::new(format!("reading --ca-file {}: {e}", f.display())))?,
        ),
        None => None,
    };
    let path = cluster_path(&a.sync.path)?;
    let api = Client::new(kind, &hostname, token.clone(), ca.as_deref())?;

    log.action(&format!("connecting to {hostname}"));
    let user = api.git_user().await?;
    let full = format!("{}/{}", a.owner, a.repository);
    let repo = match api.repository(&a.owner, &a.repository).await? {
        Some(r) => {
            log.success(&format!("repository \"{full}\" exists"));
            r
        }
        None => {
            let new = NewRepository {
                personal: a.personal,
                private: a.private,
                branch: &a.sync.branch,
                description: &a.description,
            };
            let r = api.create_repository(&a.owner, &a.repository, &new).await?;
            log.success(&format!(
                "repository \"{full}\" created ({})",
                if a.private { "private" } else { "public" }
            ));
            r
        }
    };
    if repo.http_url.is_empty() {
        return Err(UserError::new(format!(
            "{} gave no HTTPS clone URL for {full}",
            kind.name()
        ))
        .into());
    }

    // The push: HTTPS with the token.
    let mut git = Git {
        auth: vec![format!(
            "http.extraHeader=Authorization: Basic {}",
            base64(format!("{user}:{token}").as_bytes())
        )],
        env: vec![],
    };
    if let Some(pem) = &ca {
        let file = tmp.join("ca.crt");
        std::fs::write(&file, pem)?;
        // The variable, not `http.sslCAInfo`: a GIT_SSL_CAINFO in the
        // environment would win over the setting.
        git.env
            .push(("GIT_SSL_CAINFO".into(), file.display().to_string()));
    }

    let mut data = serde_json::Map::new();
    let put = |data: &mut serde_json::Map<String, Value>, k: &str, v: &[u8]| {
        data.insert(k.to_string(), Value::String(base64(v)));
    };
    let sync_url = if a.token_auth {
        put(&mut data, "username", user.as_bytes());
        put(&mut data, "password", token.as_bytes());
        if let Some(pem) = &ca {
            put(&mut data, "ca.crt", pem);
        }
        repo.http_url.clone()
    } else {
        let url = ssh_sync_url(&repo.ssh_url, a.ssh_hostname.as_deref())?;
        let (identity, public) = match held_identity(g).await? {
            Some(pair) => {
                log.success("using the deploy key the cluster already holds");
                pair
            }
            None => sluice_git::generate_identity(
                crate::create::key_kind(&a.ssh_key_algorithm, &a.ssh_ecdsa_curve, 4096),
                "",
            )
            .map_err(|e| UserError::new(format!("generating a deploy key: {e}")))?,
        };
        let scan_url = url.clone();
        let known_hosts = tokio::task::spawn_blocking(move || {
            sluice_git::scan_known_hosts(&scan_url, SCAN_TIMEOUT)
        })
        .await?
        .map_err(|e| {
            UserError::new(e).hint("pass --ssh-hostname with the host the cluster reaches SSH at")
        })?;
        log.success(&format!("SSH host key: {}", known_hosts.trim()));
        // flux's title, so a repository Flux bootstrapped keeps one key.
        let title = format!("{}-{}-{SYNC_NAME}-./{path}", g.namespace, a.sync.branch);
        let read_only = !a.read_write_key;
        let access = if read_only { "read-only" } else { "read-write" };
        match api
            .ensure_deploy_key(&repo, &title, &public, read_only)
            .await?
        {
            KeyChange::Unchanged => log.success(&format!("deploy key \"{title}\" is up to date")),
            KeyChange::Added => log.success(&format!("{access} deploy key \"{title}\" added")),
            KeyChange::Replaced => {
                log.success(&format!("{access} deploy key \"{title}\" replaced"))
            }
        }
        put(&mut data, "identity", identity.as_bytes());
        put(&mut data, "identity.pub", public.as_bytes());
        put(&mut data, "known_hosts", known_hosts.as_bytes());
        url
    };
    Ok(Plan {
        push_url: repo.http_url,
        sync_url,
        git,
        secret: Some(data),
    })
}

/// The key pair of the existing `flux-system` Secret, if it has both halves.
async fn held_identity(g: &GlobalArgs) -> Result<Option<(String, String)>> {
    let client = kube_util::client(g).await?;
    let api: Api<Secret> = Api::namespaced(client, &g.namespace);
    let Some(secret) = api.get_opt(SYNC_NAME).await? else {
        return Ok(None);
    };
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .filter(|s| !s.trim().is_empty())
    };
    Ok(text("identity").zip(text("identity.pub")))
}
