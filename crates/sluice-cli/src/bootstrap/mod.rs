//! `sluice bootstrap git|gitea|github|gitlab`: writes the install manifests
//! and the sync configuration into a Git repository in Flux's layout
//! (`<path>/flux-system/{gotk-components.yaml,gotk-sync.yaml,kustomization.yaml}`),
//! commits and pushes them with the `git` program, installs what the
//! cluster lacks, and waits until the sync Kustomization is Ready. The
//! hosted providers first find or create the repository and its deploy key
//! through their APIs (`hosted`, `provider`).
//!
//! Every step decides from the actual state: files are committed only when
//! they differ, components are applied only as needed (a partial
//! installation is completed and said to be), and a second run changes
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use clap::{ArgAction, Args, Subcommand};
use kube::Api;
use serde_json::{Value, json};
use sluice_api::{GitRepository, Kustomization};

use crate::install::{self, Change, InstallOptions};
use crate::kube_util::{self, FluxKind};
use crate::output::Log;
use crate::reconcile::{parse_timeout, request, wait_handled};
use crate::{GlobalArgs, Outcome, UserError};

mod hosted;
mod provider;

use provider::Kind;

/// The name of the sync GitRepository, Kustomization and Secret.
pub const SYNC_NAME: &str = "flux-system";

/// `sluice bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(subcommand)]
    pub provider: BootstrapProvider,
}

/// Where the repository lives.
#[derive(Debug, Subcommand)]
pub enum BootstrapProvider {
    /// Any Git server (or a local bare repository), through the `git`
    /// program.
    Git(BootstrapGitArgs),
    /// A Gitea server: the repository is created if absent and
    /// given a deploy key; the token is read from GITEA_TOKEN.
    Gitea(HostedArgs),
    /// GitHub or GitHub Enterprise Server: the repository is created if
    /// absent and given a deploy key; the token is read from GITHUB_TOKEN.
    Github(HostedArgs),
    /// GitLab (gitlab.com or self-managed): the project is created if absent
    /// and given a deploy key; the token is read from GITLAB_TOKEN.
    Gitlab(HostedArgs),
}

/// `sluice bootstrap git`.
#[derive(Debug, Args)]
pub struct BootstrapGitArgs {
    /// The repository URL to push to (https://, ssh://, file:// or a path).
    #[arg(long)]
    pub url: String,

    /// The URL the cluster fetches from, when it differs from --url (it must
    /// be http(s):// or ssh://).
    #[arg(long, value_name = "URL")]
    pub sync_url: Option<String>,

    /// Basic-auth user name (https).
    #[arg(long, requires = "password")]
    pub username: Option<String>,

    /// Basic-auth password or token (https).
    #[arg(
        long,
        env = "GIT_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,

    /// SSH private key (ssh).
    #[arg(long, value_name = "FILE", conflicts_with = "username")]
    pub private_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub sync: SyncArgs,
}

/// `sluice bootstrap gitea|github|gitlab`.
#[derive(Debug, Args)]
pub struct HostedArgs {
    /// The user or organization (GitLab: group) that owns the repository.
    #[arg(long)]
    pub owner: String,

    /// The repository's name.
    #[arg(long)]
    pub repository: String,

    /// The server's host name, with a port if it is not 443 (default: the
    /// public service).
    #[arg(long)]
    pub hostname: Option<String>,

    /// The owner is the token's own user, not an organization.
    #[arg(long)]
    pub personal: bool,

    /// Create the repository as private.
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub private: bool,

    /// The description of a repository created here.
    #[arg(long, default_value = "")]
    pub description: String,

    /// Let the deploy key push (it is read-only otherwise).
    #[arg(long)]
    pub read_write_key: bool,

    /// Sync over HTTPS with the token instead of SSH with a deploy key.
    #[arg(long)]
    pub token_auth: bool,

    /// A CA certificate (PEM) the server's HTTPS certificate is checked
    /// against; it is also stored for the cluster with --token-auth.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// The host (and port) the cluster reaches SSH at, when it differs from
    /// the clone URL the server reports.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub ssh_hostname: Option<String>,

    /// The algorithm of a generated deploy key.
    #[arg(long = "ssh-key-algorithm", value_name = "ALGORITHM", default_value = "ecdsa", value_parser = ["rsa", "ecdsa", "ed25519"])]
    pub ssh_key_algorithm: String,

    /// The curve of a generated ecdsa deploy key.
    #[arg(long = "ssh-ecdsa-curve", value_name = "CURVE", default_value = "p384", value_parser = ["p256", "p384", "p521"])]
    pub ssh_ecdsa_curve: String,

    #[command(flatten)]
    pub sync: SyncArgs,
}

/// What every `sluice bootstrap` shares: where the sync manifests go, what
/// is installed, and the wait.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The branch.
    #[arg(long, default_value = "main")]
    pub branch: String,

    /// The cluster's directory in the repository (for example
    /// clusters/homelab).
    #[arg(long)]
    pub path: String,

    /// How often the GitRepository checks for new commits.
    #[arg(long, default_value = "1m0s")]
    pub interval: String,

    /// The controller image.
    #[arg(long, value_name = "IMAGE", default_value_t = install::default_image())]
    pub image: String,

    /// Author name of the commit.
    #[arg(long, default_value = "sluice")]
    pub author_name: String,

    /// Author email of the commit.
    #[arg(long, default_value = "sluice@users.noreply.github.com")]
    pub author_email: String,

    /// Wait for the controller and the sync Kustomization to be Ready.
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,

    /// How long to wait.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// The sync manifests: the GitRepository and the Kustomization that apply
/// `path` (Flux's `gotk-sync.yaml`).
pub fn sync_manifests(
    ns: &str,
    url: &str,
    branch: &str,
    path: &str,
    interval: &str,
    secret: bool,
) -> Vec<Value> {
    let mut git_spec = json!({
        "interval": interval,
        "ref": {"branch": branch},
        "url": url,
    });
    if secret {
        git_spec["secretRef"] = json!({"name": SYNC_NAME});
    }
    vec![
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": SYNC_NAME, "namespace": ns},
            "spec": git_spec,
        }),
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": SYNC_NAME, "namespace": ns},
            "spec": {
                "interval": "10m0s",
                "path": format!("./{}", path.trim_start_matches("./").trim_end_matches('/')),
                "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": SYNC_NAME},
            },
        }),
    ]
}

const HEADER: &str = "# This manifest was generated by sluice. DO NOT EDIT.\n";
const KUSTOMIZATION_YAML: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n";

/// A git invocation with authentication applied.
struct Git {
    /// `KEY=VALUE` settings carrying credentials.
    auth: Vec<String>,
    env: Vec<(String, String)>,
}

impl Git {
    fn command(&self, dir: Option<&Path>) -> Command {
        let mut cmd = Command::new("git");
        // Through the environment (GIT_CONFIG_COUNT, git 2.31+), not `-c`:
        // a token on the command line is readable by every local user.
        cmd.env("GIT_CONFIG_COUNT", self.auth.len().to_string());
        for (i, a) in self.auth.iter().enumerate() {
            let (key, value) = a.split_once('=').unwrap_or((a.as_str(), ""));
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
                .env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<String> {
        let out = self
            .command(dir)
            .args(args)
            .output()
            .map_err(|e| UserError::new(format!("running git: {e}")).hint("install git"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            return Err(UserError::new(format!("git {}: {last}", args[0])).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn base64(data: &[u8]) -> String {
    let v = serde_json::to_value(k8s_openapi::ByteString(data.to_vec())).unwrap_or(Value::Null);
    v.as_str().unwrap_or_default().to_string()
}

/// `(host, port)` of an `ssh://[user@]host[:port]/path` or scp-like
/// `user@host:path` URL; `None` for other URLs.
fn ssh_host(url: &str) -> Option<(String, u16)> {
    if let Some(rest) = url.strip_prefix("ssh://") {
        let authority = rest.split('/').next()?;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if let Some(inner) = host_port.strip_prefix('[') {
            let (host, after) = inner.split_once(']')?;
            let port = after
                .strip_prefix(':')
                .map_or(Some(22), |p| p.parse().ok())?;
            return Some((host.to_owned(), port));
        }
        return match host_port.rsplit_once(':') {
            Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
            None => Some((host_port.to_owned(), 22)),
        };
    }
    if url.contains("://") {
        return None;
    }
    // scp-like: user@host:path (a local path has no ':' before any '/').
    let (before, _) = url.split_once(':')?;
    if before.contains('/') {
        return None;
    }
    let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
    Some((host.to_owned(), 22))
}

/// The host keys of `hosts` in known_hosts format, from `ssh-keyscan`.
fn scan_host_keys(hosts: &[(String, u16)]) -> Result<String> {
    let mut out = String::new();
    for (host, port) in hosts {
        let run = Command::new("ssh-keyscan")
            .args(["-T", "10", "-p", &port.to_string(), host])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                UserError::new(format!("running ssh-keyscan: {e}"))
                    .hint("install the OpenSSH client (ssh, ssh-keyscan)")
            })?;
        let keys: String = String::from_utf8_lossy(&run.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        if keys.is_empty() {
            let why = String::from_utf8_lossy(&run.stderr)
                .lines()
                .rfind(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .unwrap_or("no answer")
                .trim()
                .to_owned();
            return Err(UserError::new(format!(
                "could not read the SSH host key of {host}:{port}: {why}"
            ))
            .hint("check that the SSH server is reachable from here")
            .into());
        }
        out.push_str(&keys);
    }
    Ok(out)
}

/// `ssh-keygen -lf` of a known_hosts file: one `host type SHA256:...` per key.
fn fingerprints(file: &Path) -> Vec<String> {
    let Ok(run) = Command::new("ssh-keygen").arg("-lf").arg(file).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| {
            // "256 SHA256:abc host (ED25519)"
            let mut f = l.split_whitespace();
            let (_, fp, host, kind) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some(format!(
                "{host} {} {fp}",
                kind.trim_matches(|c| c == '(' || c == ')')
            ))
        })
        .collect()
}

/// What the Git and cluster steps need, however the repository was found.
struct Plan {
    /// Where the manifests are pushed.
    push_url: String,
    /// Where the cluster fetches from.
    sync_url: String,
    /// `git` with the push's credentials.
    git: Git,
    /// The data of the `flux-system` Secret; `None` for a public repository.
    secret: Option<serde_json::Map<String, Value>>,
}

/// The cluster's directory in the repository, without `./` or a trailing
/// `/`.
fn cluster_path(path: &str) -> Result<String> {
    let p = path.trim_start_matches("./").trim_end_matches('/');
    if p.is_empty() || p.split('/').any(|p| p == "..") {
        return Err(UserError::new(format!("invalid --path {path:?}")).into());
    }
    Ok(p.to_string())
}

/// Runs `sluice bootstrap`.
pub async fn run(g: &GlobalArgs, args: BootstrapArgs) -> Result<Outcome> {
    let log = Log::default();
    let tmp = tempfile::tempdir()?;
    let (plan, sync) = match args.provider {
        BootstrapProvider::Git(a) => (git_plan(&a, tmp.path(), &log)?, a.sync),
        BootstrapProvider::Gitea(a) => (
            hosted::plan(g, Kind::Gitea, &a, tmp.path(), &log).await?,
            a.sync,
        ),
        BootstrapProvider::Github(a) => (
            hosted::plan(g, Kind::GitHub, &a, tmp.path(), &log).await?,
            a.sync,
        ),
        BootstrapProvider::Gitlab(a) => (
            hosted::plan(g, Kind::GitLab, &a, tmp.path(), &log).await?,
            a.sync,
        ),
    };
    push_and_sync(g, plan, &sync, tmp.path(), &log).await
}

/// `bootstrap git`: the URLs and credentials as given.
fn git_plan(a: &BootstrapGitArgs, tmp: &Path, log: &Log) -> Result<Plan> {
    let sync_url = a.sync_url.clone().unwrap_or_else(|| a.url.clone());
    let mut git = Git {
        auth: vec![],
        env: vec![],
    };
    let mut data = serde_json::Map::new();
    if let (Some(u), Some(p)) = (&a.username, &a.password) {
        git.auth.push(format!(
            "http.extraHeader=Authorization: Basic {}",
            base64(format!("{u}:{p}").as_bytes())
        ));
        data.insert("username".into(), Value::String(base64(u.as_bytes())));
        data.insert("password".into(), Value::String(base64(p.as_bytes())));
    }
    // SSH: the host keys are scanned once and trusted by both the push here
    // and the GitRepository (its Secret's `known_hosts`), as Flux does; the
    // fingerprints are printed so they can be checked.
    if let Some(key) = &a.private_key_file {
        let mut hosts = Vec::new();
        for u in [&a.url, &sync_url] {
            if let Some(h) = ssh_host(u).filter(|h| !hosts.contains(h)) {
                hosts.push(h);
            }
        }
        let file = tmp.join("known_hosts");
        let scanned = scan_host_keys(&hosts)?;
        std::fs::write(&file, &scanned)?;
        for line in fingerprints(&file) {
            log.success(&format!("SSH host key {line}"));
        }
        git.env.push((
            "GIT_SSH_COMMAND".into(),
            format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o UserKnownHostsFile='{}' -o StrictHostKeyChecking=yes",
                key.display(),
                file.display()
            ),
        ));
        let bytes = std::fs::read(key)
            .map_err(|e| UserError::new(format!("reading {}: {e}", key.display())))?;
        data.insert("identity".into(), Value::String(base64(&bytes)));
        if !scanned.is_empty() {
            data.insert(
                "known_hosts".into(),
                Value::String(base64(scanned.as_bytes())),
            );
        }
    }
    Ok(Plan {
        push_url: a.url.clone(),
        sync_url,
        git,
        secret: Some(data).filter(|d| !d.is_empty()),
    })
}

/// Writes the sync manifests to Git, installs, applies the sync
/// configuration and waits: the part every `sluice bootstrap` shares.
async fn push_and_sync(
    g: &GlobalArgs,
    plan: Plan,
    a: &SyncArgs,
    tmp: &Path,
    log: &Log,
) -> Result<Outcome> {
    let ns = g.namespace.as_str();
    let Plan {
        push_url,
        sync_url,
        git,
        secret,
    } = plan;
    if !["http://", "https://", "ssh://"]
        .iter()
        .any(|p| sync_url.starts_with(p))
    {
        return Err(UserError::new(format!(
            "the cluster cannot fetch {sync_url}: a GitRepository URL must be http(s):// or ssh://"
        ))
        .hint("pass --sync-url with the URL the cluster reaches the repository at")
        .into());
    }
    let path = cluster_path(&a.path)?;

    // 1. Git: clone (or start the branch), write, commit, push.
    let repo = tmp.join("repo");
    log.action(&format!(
        "cloning branch \"{}\" from Git repository {push_url}",
        a.branch
    ));
    let heads = git.run(None, &["ls-remote", "--heads", &push_url, &a.branch])?;
    if heads.trim().is_empty() {
        std::fs::create_dir_all(&repo)?;
        git.run(Some(&repo), &["init", "-q"])?;
        git.run(Some(&repo), &["checkout", "-q", "-b", &a.branch])?;
        git.run(Some(&repo), &["remote", "add", "origin", &push_url])?;
        log.success(&format!(
            "branch \"{}\" does not exist yet: it will be created",
            a.branch
        ));
    } else {
        git.run(
            None,
            &[
                "clone",
                "-q",
                "--branch",
                &a.branch,
                "--single-branch",
                &push_url,
                repo.to_str().unwrap_or_default(),
            ],
        )?;
        log.success("cloned repository");
    }
    let components = install::manifests(&InstallOptions {
        namespace: ns.to_string(),
        image: a.image.clone(),
        helmrelease: false,
        notification: false,
    });
    let sync = sync_manifests(
        ns,
        &sync_url,
        &a.branch,
        &path,
        &a.interval,
        secret.is_some(),
    );
    let dir = repo.join(&path).join("flux-system");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("gotk-components.yaml"),
        format!("{HEADER}{}", install::to_yaml_stream(&components)?),
    )?;
    std::fs::write(
        dir.join("gotk-sync.yaml"),
        format!("{HEADER}{}", install::to_yaml_stream(&sync)?),
    )?;
    std::fs::write(dir.join("kustomization.yaml"), KUSTOMIZATION_YAML)?;
    let rel = format!("{path}/flux-system");
    git.run(Some(&repo), &["add", "-A", "--", &rel])?;
    let status = git.run(Some(&repo), &["status", "--porcelain", "--", &rel])?;
    let mut changed_anything = false;
    if status.trim().is_empty() {
        log.success("sync manifests are up to date in Git");
    } else {
        let name = format!("user.name={}", a.author_name);
        let email = format!("user.email={}", a.author_email);
        git.run(
            Some(&repo),
            &[
                "-c",
                &name,
                "-c",
                &email,
                "commit",
                "-q",
                "-m",
                "Add sluice sync manifests",
            ],
        )?;
        let sha = git.run(Some(&repo), &["rev-parse", "HEAD"])?;
        git.run(
            Some(&repo),
            &[
                "push",
                "-q",
                "origin",
                &format!("HEAD:refs/heads/{}", a.branch),
            ],
        )?;
        log.success(&format!(
            "committed and pushed sync manifests to \"{}\" ({})",
            a.branch,
            sha.trim().chars().take(12).collect::<String>()
        ));
        changed_anything = true;
    }

    // 2. The cluster: components, credentials, sync objects.
    let client = kube_util::client(g).await?;
    log.action(&format!("installing components in \"{ns}\" namespace"));
    let missing = install::missing(&client, &components).await?;
    if missing.is_empty() {
        log.success("all components are present");
    } else if missing.len() < components.len() {
        log.warning(&format!(
            "partial installation found; completing it ({} missing: {})",
            missing.len(),
            missing.join(", ")
        ));
    }
    let changes = install::apply_all(&client, &components, log).await?;
    if changes.iter().all(|(_, c)| *c == Change::Unchanged) {
        log.success("components are already installed and up to date");
    } else {
        changed_anything = true;
    }
    let mut rest = Vec::new();
    if let Some(data) = secret {
        rest.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SYNC_NAME, "namespace": ns},
            "type": "Opaque",
            "data": data,
        }));
    }
    rest.extend(sync);
    let changes = install::apply_all(&client, &rest, log).await?;
    if changes.iter().any(|(_, c)| *c != Change::Unchanged) {
        changed_anything = true;
    } else {
        log.success("sync configuration is up to date in the cluster");
    }

    if a.wait {
        log.waiting("waiting for the controller");
        install::wait_controller(&client, ns, a.timeout).await?;
        log.success(&format!("{}: deployment ready", install::CONTROLLER_NAME));
        log.waiting("waiting for the sync to be reconciled");
        let git_api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
        let done = reconcile_sync(&git_api, FluxKind::GitRepository, ns, a.timeout).await?;
        log.success(&format!(
            "fetched revision {}",
            done.revision.unwrap_or_default()
        ));
        let ks_api: Api<Kustomization> = Api::namespaced(client.clone(), ns);
        let done = reconcile_sync(&ks_api, FluxKind::Kustomization, ns, a.timeout).await?;
        log.success(&format!(
            "applied revision {}",
            done.revision.unwrap_or_default()
        ));
    }
    if changed_anything {
        log.success("bootstrap finished");
    } else {
        log.success("bootstrap finished: already bootstrapped, nothing changed");
    }
    Ok(Outcome::Ok)
}

/// Requests a reconciliation of the sync object of `kind` and waits for its
/// outcome; not Ready is an error that says where to look.
async fn reconcile_sync<K>(
    api: &Api<K>,
    kind: FluxKind,
    ns: &str,
    timeout: Duration,
) -> Result<crate::reconcile::Reconciled>
where
    K: sluice_api::meta::FluxObject
        + crate::reconcile::Revisioned
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let token = request(api, SYNC_NAME, None).await?;
    let done = wait_handled(api, kind, ns, SYNC_NAME, &token, timeout).await?;
    if !done.ready {
        let name = kind.kind();
        return Err(
            UserError::new(format!("{name} {ns}/{SYNC_NAME}: {}", done.message))
                .hint(format!(
                    "see why with `sluice why {}/{SYNC_NAME} -n {ns}`",
                    name.to_lowercase()
                ))
                .into(),
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_hosts_of_urls() {
        let h = |u: &str| ssh_host(u);
        assert_eq!(
            h("ssh://git@gitea.lan:2222/me/fleet.git"),
            Some(("gitea.lan".into(), 2222))
        );
        assert_eq!(
            h("ssh://gitea.lan/me/fleet.git"),
            Some(("gitea.lan".into(), 22))
        );
        assert_eq!(h("ssh://git@[::1]:2222/r.git"), Some(("::1".into(), 2222)));
        assert_eq!(
            h("git@github.com:me/fleet.git"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(h("https://gitea.lan/me/fleet.git"), None);
        assert_eq!(h("/srv/git/fleet.git"), None);
        assert_eq!(h("./a:b"), None);
        assert_eq!(h("ssh://git@host:notaport/r"), None);
    }

    #[test]
    fn sync_manifests_follow_flux() {
        let s = sync_manifests(
            "flux-system",
            "ssh://git@example.com/r.git",
            "main",
            "clusters/home",
            "1m0s",
            true,
        );
        assert_eq!(s[0]["spec"]["secretRef"]["name"], "flux-system");
        assert_eq!(s[1]["spec"]["path"], "./clusters/home");
        assert_eq!(s[1]["spec"]["sourceRef"]["name"], "flux-system");
    }

    #[test]
    fn credentials_stay_off_the_command_line() {
        let git = Git {
            auth: vec!["http.extraHeader=Authorization: Basic c2VjcmV0".into()],
            env: vec![],
        };
        let cmd = git.command(None);
        assert!(
            cmd.get_args()
                .all(|a| !a.to_string_lossy().contains("c2VjcmV0"))
        );
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(
            std::ffi::OsStr::new("GIT_CONFIG_KEY_0"),
            Some(std::ffi::OsStr::new("http.extraHeader"))
        )));
        assert!(envs.contains(&(
            std::ffi::OsStr::new("GIT_CONFIG_VALUE_0"),
            Some(std::ffi::OsStr::new("Authorization: Basic c2VjcmV0"))
        )));
    }

    #[test]
    fn base64_encodes() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }
}
