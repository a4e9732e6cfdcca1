//! `sluice create …` as `flux create`: the object built from flags (pure, [`objects`]), then
//! server-side applied, or printed as YAML with `--export`. Sources, Kustomizations, Git and
//! TLS Secrets here; Alerts, Providers and Receivers in [`crate::notification`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::kube_util::{self, FluxKind, Resolver};
use crate::notification;
use crate::output::Log;
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: CreateWhat,

    /// Print the objects as YAML instead of applying them.
    #[arg(long, global = true)]
    pub export: bool,

    /// A label of the object, KEY=VALUE (repeatable).
    #[arg(long = "label", global = true, value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// How often the object is reconciled (sources, Kustomizations).
    #[arg(long, global = true, default_value = "1m", value_name = "DURATION")]
    pub interval: String,
}

/// What to create.
#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// A source.
    #[command(subcommand)]
    Source(SourceWhat),
    /// A Kustomization.
    #[command(visible_alias = "ks")]
    Kustomization(KustomizationArgs),
    /// A HelmRelease.
    #[command(visible_alias = "hr")]
    Helmrelease(HelmReleaseArgs),
    /// A Secret for a source.
    #[command(subcommand)]
    Secret(SecretWhat),
    /// An Alert: which events go to a Provider.
    Alert(notification::AlertArgs),
    /// A Provider: where Alerts send (a chat, a webhook, commit statuses).
    AlertProvider(notification::ProviderArgs),
    /// A Receiver: a webhook that asks Flux objects to reconcile.
    Receiver(notification::ReceiverArgs),
}

/// A source kind.
#[derive(Debug, Subcommand)]
pub enum SourceWhat {
    /// A GitRepository.
    Git(SourceGitArgs),
    /// An OCIRepository.
    Oci(SourceOciArgs),
    /// A Bucket: the objects of an S3 (API) compatible bucket.
    Bucket(SourceBucketArgs),
    /// A HelmRepository (`oci://` URLs make one of type oci).
    Helm(SourceHelmArgs),
}

/// `sluice create source oci NAME`.
#[derive(Debug, Args)]
pub struct SourceOciArgs {
    /// The OCIRepository's name.
    pub name: String,
    /// The repository, e.g. oci://ghcr.io/stefanprodan/manifests/podinfo.
    #[arg(long)]
    pub url: String,
    /// A tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// A semver range of tags.
    #[arg(long = "tag-semver", value_name = "RANGE")]
    pub tag_semver: Option<String>,
    /// A digest (sha256:…).
    #[arg(long)]
    pub digest: Option<String>,
    /// An existing docker-registry Secret.
    #[arg(long = "secret-ref", value_name = "NAME")]
    pub secret_ref: Option<String>,
    /// An existing Secret with the proxy's address and credentials (`sluice create secret
    /// proxy`).
    #[arg(long = "proxy-secret-ref", value_name = "NAME")]
    pub proxy_secret_ref: Option<String>,
    /// Plain HTTP.
    #[arg(long)]
    pub insecure: bool,
}

/// `sluice create source bucket NAME`.
#[derive(Debug, Args)]
pub struct SourceBucketArgs {
    /// The Bucket's name.
    pub name: String,
    /// The bucket's name in the object storage.
    #[arg(long = "bucket-name", value_name = "BUCKET")]
    pub bucket_name: String,
    /// The object storage's address, HOST[:PORT] (e.g. minio.minio.svc.cluster.local:9000 or
    /// s3.amazonaws.com).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub endpoint: String,
    /// The object storage: generic (any S3 compatible one: MinIO, Garage, Ceph…) or aws
    /// (Amazon S3).
    #[arg(long, default_value = "generic", value_parser = ["generic", "aws"])]
    pub provider: String,
    /// The bucket's region (default: the one an Amazon S3 endpoint names, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Plain HTTP instead of HTTPS.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub insecure: bool,
    /// Only the objects whose keys start with this (filtered by the server).
    #[arg(long)]
    pub prefix: Option<String>,
    /// An existing Secret with the keys (accesskey, secretkey).
    #[arg(long = "secret-ref", value_name = "NAME")]
    pub secret_ref: Option<String>,
    /// The access key (a Secret bucket-NAME is created with it).
    #[arg(long = "access-key", value_name = "KEY")]
    pub access_key: Option<String>,
    /// The secret key.
    #[arg(long = "secret-key", value_name = "KEY")]
    pub secret_key: Option<String>,
    /// Paths to ignore, in .gitignore format (repeatable, or comma-separated).
    #[arg(long = "ignore-paths", value_delimiter = ',', value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// How long listing and downloading may take (default 60s).
    #[arg(long, visible_alias = "fetch-timeout", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// An existing Secret with the proxy's address and credentials (`sluice create secret
    /// proxy`).
    #[arg(long = "proxy-secret-ref", value_name = "NAME")]
    pub proxy_secret_ref: Option<String>,
}

/// `sluice create source helm NAME`.
#[derive(Debug, Args)]
pub struct SourceHelmArgs {
    /// The HelmRepository's name.
    pub name: String,
    /// The repository: https://… (an index) or oci://… (a registry).
    #[arg(long)]
    pub url: String,
    /// An existing Secret with the credentials.
    #[arg(long = "secret-ref", value_name = "NAME")]
    pub secret_ref: Option<String>,
    /// Send the credentials to chart URLs on other hosts too.
    #[arg(long = "pass-credentials")]
    pub pass_credentials: bool,
}

/// `sluice create helmrelease NAME`.
#[derive(Debug, Args)]
pub struct HelmReleaseArgs {
    /// The HelmRelease's name.
    pub name: String,
    /// The chart's source: HelmRepository/NAME, GitRepository/NAME, Bucket/NAME (with
    /// .NAMESPACE), or OCIRepository/NAME for a chart artifact.
    #[arg(long)]
    pub source: String,
    /// The chart's name (HelmRepository) or path (GitRepository, Bucket).
    #[arg(long)]
    pub chart: Option<String>,
    /// The chart's version or semver range.
    #[arg(long = "chart-version", value_name = "VERSION")]
    pub chart_version: Option<String>,
    /// The release's namespace.
    #[arg(long = "target-namespace", value_name = "NAMESPACE")]
    pub target_namespace: Option<String>,
    /// Create the target namespace if absent.
    #[arg(long = "create-target-namespace")]
    pub create_target_namespace: bool,
    /// The release's name (default: [target namespace-]name).
    #[arg(long = "release-name", value_name = "NAME")]
    pub release_name: Option<String>,
    /// A values file (repeatable; later files win).
    #[arg(long = "values", value_name = "PATH")]
    pub values: Vec<PathBuf>,
    /// HelmReleases installed first: NAME or NAMESPACE/NAME (repeatable).
    #[arg(long = "depends-on", value_delimiter = ',', value_name = "NAME")]
    pub depends_on: Vec<String>,
}

/// `sluice create source git NAME`.
#[derive(Debug, Args)]
pub struct SourceGitArgs {
    /// The GitRepository's name.
    pub name: String,
    /// The repository, e.g. https://gitea.lan/home/ops.git or ssh://git@gitea.lan/home/ops.
    #[arg(long)]
    pub url: String,
    /// A branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// A tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// A semver range of tags.
    #[arg(long = "tag-semver", value_name = "RANGE")]
    pub tag_semver: Option<String>,
    /// A reference name (refs/heads/main, refs/pull/1/head).
    #[arg(long = "ref-name", value_name = "REF")]
    pub ref_name: Option<String>,
    /// A commit SHA.
    #[arg(long)]
    pub commit: Option<String>,
    /// An existing Secret with the credentials.
    #[arg(long = "secret-ref", value_name = "NAME")]
    pub secret_ref: Option<String>,
    /// Basic auth username (a Secret named as the source is created with it).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Basic auth password or token.
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Paths to ignore, in .gitignore format (repeatable, or comma-separated).
    #[arg(long = "ignore-paths", value_delimiter = ',', value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// An existing Secret with the proxy's address and credentials (`sluice create secret
    /// proxy`; http and https URLs only).
    #[arg(long = "proxy-secret-ref", value_name = "NAME")]
    pub proxy_secret_ref: Option<String>,
}

/// `sluice create kustomization NAME`.
#[derive(Debug, Args)]
pub struct KustomizationArgs {
    /// The Kustomization's name.
    pub name: String,
    /// The source: NAME, KIND/NAME or KIND/NAME.NAMESPACE (GitRepository, OCIRepository,
    /// Bucket).
    #[arg(long)]
    pub source: String,
    /// The path in the source.
    #[arg(long, default_value = "./")]
    pub path: String,
    /// Delete what leaves the source.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub prune: bool,
    /// Kustomizations applied first: NAME or NAMESPACE/NAME (repeatable, or comma-separated).
    #[arg(long = "depends-on", value_delimiter = ',', value_name = "NAME")]
    pub depends_on: Vec<String>,
    /// The namespace of the objects that have none.
    #[arg(long = "target-namespace", value_name = "NAMESPACE")]
    pub target_namespace: Option<String>,
    /// Wait for the applied objects to be ready.
    #[arg(long)]
    pub wait: bool,
    /// How long apply and health checks may take.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// `sops` to decrypt SOPS-encrypted files.
    #[arg(long = "decryption-provider", value_name = "PROVIDER")]
    pub decryption_provider: Option<String>,
    /// The Secret with the decryption keys (age).
    #[arg(long = "decryption-secret", value_name = "NAME")]
    pub decryption_secret: Option<String>,
    /// Variables for ${VAR} substitution: ConfigMap/NAME or Secret/NAME (repeatable, or
    /// comma-separated; `:optional` after the name allows it to be absent).
    #[arg(
        long = "substitute-from",
        value_delimiter = ',',
        value_name = "KIND/NAME"
    )]
    pub substitute_from: Vec<String>,
}

/// A Secret kind.
#[derive(Debug, Subcommand)]
pub enum SecretWhat {
    /// Git credentials: basic auth, a bearer token, an SSH key; a CA.
    Git(SecretGitArgs),
    /// A TLS client certificate and/or CA (for sources and Providers).
    Tls(SecretTlsArgs),
    /// Registry credentials (a docker config) for OCIRepositories and OCI HelmRepositories.
    Oci(SecretOciArgs),
    /// Helm repository credentials: basic auth, a CA.
    Helm(SecretHelmArgs),
    /// An age key for SOPS decryption (`spec.decryption.secretRef`).
    Age(SecretAgeArgs),
    /// A proxy's address and credentials, for sources' `spec.proxySecretRef`.
    Proxy(SecretProxyArgs),
}

/// `sluice create secret proxy NAME`.
#[derive(Debug, Args)]
pub struct SecretProxyArgs {
    /// The Secret's name.
    pub name: String,
    /// The proxy's URL, e.g. http://squid.lan:3128.
    #[arg(long)]
    pub address: String,
    /// The proxy's user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// The proxy's password.
    #[arg(short = 'p', long)]
    pub password: Option<String>,
}

/// `sluice create secret oci NAME`.
#[derive(Debug, Args)]
pub struct SecretOciArgs {
    /// The Secret's name.
    pub name: String,
    /// The registry host, e.g. ghcr.io.
    #[arg(long)]
    pub url: String,
    /// The user.
    #[arg(short = 'u', long)]
    pub username: String,
    /// The password or token.
    #[arg(short = 'p', long)]
    pub password: String,
}

/// `sluice create secret helm NAME`.
#[derive(Debug, Args)]
pub struct SecretHelmArgs {
    /// The Secret's name.
    pub name: String,
    /// Basic auth username.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Basic auth password.
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// A CA certificate file (PEM).
    #[arg(long = "ca-crt-file", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

/// `sluice create secret age NAME`.
#[derive(Debug, Args)]
pub struct SecretAgeArgs {
    /// The Secret's name.
    pub name: String,
    /// The age identity file (`AGE-SECRET-KEY-1…`, as `age-keygen` writes it).
    #[arg(long = "age-key-file", value_name = "PATH")]
    pub age_key_file: PathBuf,
}

/// `sluice create secret git NAME`.
#[derive(Debug, Args)]
pub struct SecretGitArgs {
    /// The Secret's name.
    pub name: String,
    /// The repository (its scheme decides: https takes basic or bearer, ssh a private key).
    #[arg(long)]
    pub url: String,
    /// Basic auth username.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Basic auth password or token.
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// A bearer token.
    #[arg(long = "bearer-token", value_name = "TOKEN")]
    pub bearer_token: Option<String>,
    /// A CA certificate file (PEM).
    #[arg(long = "ca-crt-file", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// An SSH private key file (ssh URLs).
    #[arg(long = "private-key-file", value_name = "PATH")]
    pub private_key_file: Option<PathBuf>,
    /// An SSH known_hosts file (ssh URLs; default: the server's host key,
    /// scanned).
    #[arg(long = "known-hosts-file", value_name = "PATH")]
    pub known_hosts_file: Option<PathBuf>,
    /// The type of the key pair generated without --private-key-file.
    #[arg(long = "ssh-key-algorithm", value_name = "ALGORITHM", default_value = "ecdsa", value_parser = ["rsa", "ecdsa", "ed25519"])]
    pub ssh_key_algorithm: String,
    /// The curve of a generated ecdsa key.
    #[arg(long = "ssh-ecdsa-curve", value_name = "CURVE", default_value = "p384", value_parser = ["p256", "p384", "p521"])]
    pub ssh_ecdsa_curve: String,
    /// The size of a generated rsa key.
    #[arg(long = "ssh-rsa-bits", value_name = "BITS", default_value_t = 2048)]
    pub ssh_rsa_bits: usize,
    /// What [`prepare_ssh`] generated and scanned (the network part, kept
    /// out of [`objects`]).
    #[arg(skip)]
    pub ssh: Option<Box<SshMaterial>>,
}

/// A generated key pair and a scanned known_hosts line.
#[derive(Clone, Debug, Default)]
pub struct SshMaterial {
    /// Private key and public key line, when generated.
    pub identity: Option<(String, String)>,
    /// The server's host key, when scanned.
    pub known_hosts: Option<String>,
}

/// How long a host key scan may take.
const SCAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// For `create secret git` with an ssh URL, as `flux create secret git`
/// does: a key pair is generated unless --private-key-file is given (its
/// public half goes into `identity.pub` and is printed: add it as a deploy
/// key), and the server's host key is scanned unless --known-hosts-file is
/// given (the key is printed, to be checked against the server's).
pub async fn prepare_ssh(args: &mut CreateArgs, log: &Log) -> Result<()> {
    let CreateWhat::Secret(SecretWhat::Git(s)) = &mut args.what else {
        return Ok(());
    };
    if !s.url.starts_with("ssh://") {
        return Ok(());
    }
    let mut material = SshMaterial::default();
    if s.private_key_file.is_none() {
        if s.ssh_key_algorithm == "rsa" && !(2048..=16384).contains(&s.ssh_rsa_bits) {
            return Err(UserError::new(format!(
                "--ssh-rsa-bits {}: an RSA key has 2048 to 16384 bits",
                s.ssh_rsa_bits
            ))
            .into());
        }
        let kind = key_kind(&s.ssh_key_algorithm, &s.ssh_ecdsa_curve, s.ssh_rsa_bits);
        let (private, public) = sluice_git::generate_identity(kind, "")
            .map_err(|e| UserError::new(e).hint("--private-key-file uses a key of your own"))?;
        log.success(&format!("deploy key: {}", public.trim()));
        material.identity = Some((private, public));
    }
    if s.known_hosts_file.is_none() {
        let url = s.url.clone();
        // The scan runs its own ssh session (blocking).
        let scanned =
            tokio::task::spawn_blocking(move || sluice_git::scan_known_hosts(&url, SCAN_TIMEOUT))
                .await?;
        let line = scanned.map_err(|e| {
            UserError::new(e)
                .hint("--known-hosts-file gives the host keys without asking the server")
        })?;
        log.success(&format!("host key: {}", line.trim()));
        material.known_hosts = Some(line);
    }
    s.ssh = Some(Box::new(material));
    Ok(())
}

/// The key a `--ssh-key-algorithm`, `--ssh-ecdsa-curve` and RSA size ask
/// for (the flags' parsers admit only the names matched here).
pub(crate) fn key_kind(algorithm: &str, curve: &str, rsa_bits: usize) -> sluice_git::KeyKind {
    match algorithm {
        "rsa" => sluice_git::KeyKind::Rsa(rsa_bits),
        "ed25519" => sluice_git::KeyKind::Ed25519,
        _ => sluice_git::KeyKind::Ecdsa(match curve {
            "p256" => sluice_git::EcdsaCurveName::P256,
            "p521" => sluice_git::EcdsaCurveName::P521,
            _ => sluice_git::EcdsaCurveName::P384,
        }),
    }
}

/// `sluice create secret tls NAME`.
#[derive(Debug, Args)]
pub struct SecretTlsArgs {
    /// The Secret's name.
    pub name: String,
    /// The client certificate (PEM).
    #[arg(long = "tls-crt-file", value_name = "PATH")]
    pub cert: Option<PathBuf>,
    /// The client key (PEM).
    #[arg(long = "tls-key-file", value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// The CA certificate (PEM).
    #[arg(long = "ca-crt-file", value_name = "PATH")]
    pub ca: Option<PathBuf>,
}

fn labels(list: &[String]) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(UserError::new(format!("--label {l:?}: expected KEY=VALUE")).into()),
        })
        .collect()
}

/// `{kind, name[, namespace]}` from `NAME` or `NAME.NAMESPACE`.
fn source_ref(kind: &str, name: &str) -> Value {
    match name.split_once('.') {
        Some((name, namespace)) => json!({"kind": kind, "name": name, "namespace": namespace}),
        None => json!({"kind": kind, "name": name}),
    }
}

/// `dependsOn` from `NAME` or `NAMESPACE/NAME` items.
fn depends_on(items: &[String]) -> Value {
    items
        .iter()
        .map(|d| match d.split_once('/') {
            Some((ns, name)) => json!({"name": name, "namespace": ns}),
            None => json!({"name": d}),
        })
        .collect()
}

/// The metadata of a created object.
pub(crate) fn metadata(ns: &str, name: &str, labels: &BTreeMap<String, String>) -> Value {
    let mut m = json!({"name": name, "namespace": ns});
    if !labels.is_empty() {
        m["labels"] = json!(labels);
    }
    m
}

fn read(flag: &str, path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| UserError::new(format!("{flag} {}: {e}", path.display())).into())
}

fn secret(
    ns: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    data: BTreeMap<&str, String>,
) -> Value {
    // `stringData`, as `flux create secret --export` writes it.
    let data: serde_json::Map<String, Value> = data
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata(ns, name, labels),
           "stringData": data})
}

fn check_interval(interval: &str) -> Result<()> {
    sluice_api::meta::parse_duration(interval)
        .map(drop)
        .map_err(|e| UserError::new(format!("--interval {interval:?}: {e}")).into())
}

/// The objects `sluice create` makes, in the order they are applied (pure: tested without a
/// cluster).
pub fn objects(ns: &str, args: &CreateArgs) -> Result<Vec<Value>> {
    let labels = labels(&args.labels)?;
    Ok(match &args.what {
        CreateWhat::Source(SourceWhat::Git(g)) => {
            check_interval(&args.interval)?;
            let refs = [
                ("branch", &g.branch),
                ("tag", &g.tag),
                ("semver", &g.tag_semver),
                ("name", &g.ref_name),
                ("commit", &g.commit),
            ];
            let mut reference = serde_json::Map::new();
            for (k, v) in refs {
                if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                    reference.insert(k.into(), v.clone().into());
                }
            }
            if reference.is_empty() {
                return Err(UserError::new("a Git reference is required")
                    .hint("pass --branch, --tag, --tag-semver, --ref-name or --commit")
                    .into());
            }
            let scheme = g.url.split("://").next().unwrap_or_default();
            if !matches!(scheme, "http" | "https" | "ssh") || !g.url.contains("://") {
                return Err(UserError::new(format!(
                    "--url {:?}: expected an http, https or ssh URL",
                    g.url
                ))
                .into());
            }
            let mut out = vec![];
            let mut spec = json!({"interval": args.interval, "ref": reference, "url": g.url});
            match (&g.username, &g.password, &g.secret_ref) {
                (Some(u), Some(p), None) => {
                    out.push(secret(
                        ns,
                        &g.name,
                        &labels,
                        BTreeMap::from([("username", u.clone()), ("password", p.clone())]),
                    ));
                    spec["secretRef"] = json!({"name": g.name});
                }
                (None, None, Some(s)) => spec["secretRef"] = json!({"name": s}),
                (None, None, None) => {}
                _ => {
                    return Err(UserError::new(
                        "--username and --password go together, and not with --secret-ref",
                    )
                    .into());
                }
            }
            if !g.ignore_paths.is_empty() {
                spec["ignore"] = format!("{}\n", g.ignore_paths.join("\n")).into();
            }
            if let Some(p) = &g.proxy_secret_ref {
                if scheme == "ssh" {
                    return Err(UserError::new(
                        "--proxy-secret-ref: sluice proxies http and https remotes only",
                    )
                    .into());
                }
                spec["proxySecretRef"] = json!({"name": p});
            }
            out.push(
                json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                            "metadata": metadata(ns, &g.name, &labels), "spec": spec}),
            );
            out
        }
        CreateWhat::Kustomization(k) => {
            check_interval(&args.interval)?;
            let (kind, rest) = match k.source.split_once('/') {
                Some((kind, rest)) => (crate::events::canonical_kind(kind), rest),
                None => ("GitRepository".to_string(), k.source.as_str()),
            };
            if !matches!(kind.as_str(), "GitRepository" | "OCIRepository" | "Bucket") {
                return Err(UserError::new(format!(
                    "--source {:?}: a Kustomization's source is a GitRepository, OCIRepository or Bucket",
                    k.source
                ))
                .into());
            }
            let source_ref = source_ref(&kind, rest);
            let mut spec = json!({"interval": args.interval, "path": k.path, "prune": k.prune,
                                  "sourceRef": source_ref});
            if !k.depends_on.is_empty() {
                spec["dependsOn"] = depends_on(&k.depends_on);
            }
            if let Some(t) = &k.target_namespace {
                spec["targetNamespace"] = t.as_str().into();
            }
            if k.wait {
                spec["wait"] = true.into();
            }
            if let Some(t) = &k.timeout {
                sluice_api::meta::parse_duration(t)
                    .map_err(|e| UserError::new(format!("--timeout {t:?}: {e}")))?;
                spec["timeout"] = t.as_str().into();
            }
            match (&k.decryption_provider, &k.decryption_secret) {
                (Some(p), secret) if p == "sops" => {
                    spec["decryption"] = json!({"provider": "sops"});
                    if let Some(s) = secret {
                        spec["decryption"]["secretRef"] = json!({"name": s});
                    }
                }
                (Some(p), _) => {
                    return Err(UserError::new(format!(
                        "--decryption-provider {p:?}: the provider is sops"
                    ))
                    .into());
                }
                (None, Some(_)) => {
                    return Err(UserError::new(
                        "--decryption-secret needs --decryption-provider sops",
                    )
                    .into());
                }
                (None, None) => {}
            }
            if !k.substitute_from.is_empty() {
                let from = k
                    .substitute_from
                    .iter()
                    .map(|s| {
                        let (kind, name) = s.split_once('/').ok_or_else(|| {
                            UserError::new(format!(
                                "--substitute-from {s:?}: expected ConfigMap/NAME or Secret/NAME"
                            ))
                        })?;
                        let (name, optional) = match name.strip_suffix(":optional") {
                            Some(n) => (n, true),
                            None => (name, false),
                        };
                        let kind = match kind.to_ascii_lowercase().as_str() {
                            "configmap" | "cm" => "ConfigMap",
                            "secret" => "Secret",
                            _ => {
                                return Err(UserError::new(format!(
                                    "--substitute-from {s:?}: expected ConfigMap/NAME or Secret/NAME"
                                )));
                            }
                        };
                        let mut r = json!({"kind": kind, "name": name});
                        if optional {
                            r["optional"] = true.into();
                        }
                        Ok(r)
                    })
                    .collect::<std::result::Result<Vec<_>, UserError>>()?;
                spec["postBuild"] = json!({"substituteFrom": from});
            }
            vec![
                json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                        "metadata": metadata(ns, &k.name, &labels), "spec": spec}),
            ]
        }
        CreateWhat::Secret(SecretWhat::Git(s)) => {
            let ssh = s.url.starts_with("ssh://");
            let mut data = BTreeMap::new();
            if ssh {
                let made = s.ssh.as_deref().cloned().unwrap_or_default();
                match (&s.private_key_file, made.identity) {
                    (Some(key), _) => {
                        data.insert("identity", read("--private-key-file", key)?);
                    }
                    (None, Some((private, public))) => {
                        data.insert("identity", private);
                        data.insert("identity.pub", public);
                    }
                    (None, None) => {
                        return Err(UserError::new(format!(
                            "--url {:?} is ssh: --private-key-file is required",
                            s.url
                        ))
                        .into());
                    }
                }
                match (&s.known_hosts_file, made.known_hosts) {
                    (Some(kh), _) => {
                        data.insert("known_hosts", read("--known-hosts-file", kh)?);
                    }
                    (None, Some(line)) => {
                        data.insert("known_hosts", line);
                    }
                    (None, None) => {}
                }
                if let Some(p) = &s.password {
                    data.insert("password", p.clone());
                }
            } else {
                match (&s.username, &s.password, &s.bearer_token) {
                    (Some(u), Some(p), None) => {
                        data.insert("username", u.clone());
                        data.insert("password", p.clone());
                    }
                    (None, None, Some(t)) => {
                        data.insert("bearerToken", t.clone());
                    }
                    (None, None, None) if s.ca_file.is_some() => {}
                    _ => {
                        return Err(UserError::new(
                            "give --username and --password, or --bearer-token",
                        )
                        .into());
                    }
                }
            }
            if let Some(ca) = &s.ca_file {
                data.insert("ca.crt", read("--ca-crt-file", ca)?);
            }
            vec![secret(ns, &s.name, &labels, data)]
        }
        CreateWhat::Secret(SecretWhat::Tls(s)) => {
            let mut data = BTreeMap::new();
            if s.cert.is_some() != s.key.is_some() {
                return Err(UserError::new("--tls-crt-file and --tls-key-file go together").into());
            }
            if let (Some(c), Some(k)) = (&s.cert, &s.key) {
                data.insert("tls.crt", read("--tls-crt-file", c)?);
                data.insert("tls.key", read("--tls-key-file", k)?);
            }
            if let Some(ca) = &s.ca {
                data.insert("ca.crt", read("--ca-crt-file", ca)?);
            }
            if data.is_empty() {
                return Err(UserError::new(
                    "give --tls-crt-file and --tls-key-file, or --ca-crt-file",
                )
                .into());
            }
            vec![secret(ns, &s.name, &labels, data)]
        }
        CreateWhat::Source(SourceWhat::Oci(o)) => {
            check_interval(&args.interval)?;
            if !o.url.starts_with("oci://") {
                return Err(UserError::new(format!(
                    "--url {:?}: expected oci://HOST/REPOSITORY",
                    o.url
                ))
                .into());
            }
            let mut reference = serde_json::Map::new();
            for (k, v) in [
                ("tag", &o.tag),
                ("semver", &o.tag_semver),
                ("digest", &o.digest),
            ] {
                if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                    reference.insert(k.into(), v.clone().into());
                }
            }
            if reference.is_empty() {
                return Err(UserError::new("an OCI reference is required")
                    .hint("pass --tag, --tag-semver or --digest")
                    .into());
            }
            let mut spec = json!({"interval": args.interval, "url": o.url, "ref": reference});
            if let Some(s) = &o.secret_ref {
                spec["secretRef"] = json!({"name": s});
            }
            if let Some(p) = &o.proxy_secret_ref {
                spec["proxySecretRef"] = json!({"name": p});
            }
            if o.insecure {
                spec["insecure"] = true.into();
            }
            vec![
                json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                        "metadata": metadata(ns, &o.name, &labels), "spec": spec}),
            ]
        }
        CreateWhat::Source(SourceWhat::Bucket(b)) => bucket(ns, &args.interval, b, &labels)?,
        CreateWhat::Source(SourceWhat::Helm(h)) => {
            check_interval(&args.interval)?;
            let mut spec = json!({"interval": args.interval, "url": h.url});
            if h.url.starts_with("oci://") {
                spec["type"] = "oci".into();
            } else if !h.url.starts_with("http://") && !h.url.starts_with("https://") {
                return Err(UserError::new(format!(
                    "--url {:?}: expected https://… or oci://…",
                    h.url
                ))
                .into());
            }
            if let Some(s) = &h.secret_ref {
                spec["secretRef"] = json!({"name": s});
            }
            if h.pass_credentials {
                spec["passCredentials"] = true.into();
            }
            vec![
                json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                        "metadata": metadata(ns, &h.name, &labels), "spec": spec}),
            ]
        }
        CreateWhat::Helmrelease(h) => vec![helm_release(ns, &args.interval, h, &labels)?],
        CreateWhat::Secret(SecretWhat::Oci(o)) => {
            use base64::Engine;
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", o.username, o.password));
            let config = json!({"auths": {o.url.trim_start_matches("oci://"): {
                "username": o.username, "password": o.password, "auth": auth}}});
            let mut s = secret(
                ns,
                &o.name,
                &labels,
                BTreeMap::from([(".dockerconfigjson", config.to_string())]),
            );
            s["type"] = "kubernetes.io/dockerconfigjson".into();
            vec![s]
        }
        CreateWhat::Secret(SecretWhat::Proxy(p)) => {
            // Read as the controllers will read it, so a bad address fails here.
            let probe = BTreeMap::from([
                ("address", Some(p.address.clone())),
                ("username", p.username.clone()),
                ("password", p.password.clone()),
            ]);
            sluice_git::proxy::secret_proxy(
                &|k| probe.get(k).cloned().flatten().map(String::into_bytes),
                "--address",
            )
            .map_err(UserError::new)?;
            if p.password.is_some() && p.username.is_none() {
                return Err(UserError::new("--password needs --username").into());
            }
            let data = probe
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            vec![secret(ns, &p.name, &labels, data)]
        }
        CreateWhat::Secret(SecretWhat::Helm(h)) => {
            let mut data = BTreeMap::new();
            match (&h.username, &h.password) {
                (Some(u), Some(p)) => {
                    data.insert("username", u.clone());
                    data.insert("password", p.clone());
                }
                (None, None) => {}
                _ => return Err(UserError::new("--username and --password go together").into()),
            }
            if let Some(ca) = &h.ca_file {
                data.insert("ca.crt", read("--ca-crt-file", ca)?);
            }
            if data.is_empty() {
                return Err(
                    UserError::new("give --username and --password, or --ca-crt-file").into(),
                );
            }
            vec![secret(ns, &h.name, &labels, data)]
        }
        CreateWhat::Secret(SecretWhat::Age(a)) => {
            let key = read("--age-key-file", &a.age_key_file)?;
            if !key
                .lines()
                .any(|l| l.trim().starts_with("AGE-SECRET-KEY-1"))
            {
                return Err(UserError::new(format!(
                    "--age-key-file {}: no AGE-SECRET-KEY-1… line",
                    a.age_key_file.display()
                ))
                .hint("make one with `age-keygen -o age.agekey`")
                .into());
            }
            // Flux takes every key ending in `.agekey`.
            vec![secret(
                ns,
                &a.name,
                &labels,
                BTreeMap::from([("age.agekey", key)]),
            )]
        }
        CreateWhat::Alert(a) => vec![notification::alert(ns, a, &labels)?],
        CreateWhat::AlertProvider(p) => vec![notification::provider(ns, p, &labels)?],
        CreateWhat::Receiver(r) => vec![notification::receiver(ns, r, &labels)?],
    })
}

/// The Bucket of `sluice create source bucket`, after the Secret of `--access-key` and
/// `--secret-key` (`bucket-NAME`, keys `accesskey` and `secretkey`, as `flux create source
/// bucket` makes it) (pure).
fn bucket(
    ns: &str,
    interval: &str,
    b: &SourceBucketArgs,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<Value>> {
    check_interval(interval)?;
    if b.bucket_name.is_empty() {
        return Err(UserError::new("--bucket-name is required").into());
    }
    let endpoint = &b.endpoint;
    if endpoint.is_empty() || endpoint.contains("://") || endpoint.contains('/') {
        return Err(
            UserError::new(format!("--endpoint {endpoint:?}: expected HOST[:PORT]"))
                .hint("no scheme and no path: --insecure selects plain HTTP")
                .into(),
        );
    }
    let mut out = vec![];
    let secret_ref = match (&b.access_key, &b.secret_key, &b.secret_ref) {
        (Some(access), Some(secret_key), None) => {
            let name = format!("bucket-{}", b.name);
            out.push(secret(
                ns,
                &name,
                labels,
                BTreeMap::from([
                    ("accesskey", access.clone()),
                    ("secretkey", secret_key.clone()),
                ]),
            ));
            Some(name)
        }
        (None, None, Some(s)) => Some(s.clone()),
        (None, None, None) => None,
        _ => {
            return Err(UserError::new(
                "--access-key and --secret-key go together, and not with --secret-ref",
            )
            .into());
        }
    };
    if b.provider == "aws" && secret_ref.is_none() {
        return Err(UserError::new(
            "--provider aws needs the access keys: sluice does not take credentials from the \
             AWS SDK's chain or a workload identity",
        )
        .hint("pass --access-key and --secret-key, or --secret-ref")
        .into());
    }
    // In the order of Flux's BucketSpec, as `flux export` prints it.
    let mut spec = json!({"provider": b.provider, "bucketName": b.bucket_name,
                          "endpoint": endpoint});
    if b.insecure {
        spec["insecure"] = true.into();
    }
    if let Some(r) = &b.region {
        spec["region"] = r.as_str().into();
    }
    if let Some(p) = &b.prefix {
        spec["prefix"] = p.as_str().into();
    }
    if let Some(s) = &secret_ref {
        spec["secretRef"] = json!({"name": s});
    }
    if let Some(p) = &b.proxy_secret_ref {
        spec["proxySecretRef"] = json!({"name": p});
    }
    spec["interval"] = interval.into();
    if let Some(t) = &b.timeout {
        sluice_api::meta::parse_duration(t)
            .map_err(|e| UserError::new(format!("--timeout {t:?}: {e}")))?;
        // The CRD's pattern has no hours.
        if t.contains('h') {
            return Err(UserError::new(format!(
                "--timeout {t:?}: a Bucket's timeout is in ms, s or m"
            ))
            .into());
        }
        spec["timeout"] = t.as_str().into();
    }
    if !b.ignore_paths.is_empty() {
        spec["ignore"] = format!("{}\n", b.ignore_paths.join("\n")).into();
    }
    out.push(
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
               "metadata": metadata(ns, &b.name, labels), "spec": spec}),
    );
    Ok(out)
}

/// The HelmRelease of `sluice create helmrelease` (pure).
fn helm_release(
    ns: &str,
    interval: &str,
    h: &HelmReleaseArgs,
    labels: &BTreeMap<String, String>,
) -> Result<Value> {
    check_interval(interval)?;
    let (kind, rest) = h.source.split_once('/').ok_or_else(|| {
        UserError::new(format!(
            "--source {:?}: expected KIND/NAME (HelmRepository, GitRepository, OCIRepository, Bucket)",
            h.source
        ))
    })?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "helmrepository" | "helm" => "HelmRepository",
        "gitrepository" | "git" => "GitRepository",
        "ocirepository" | "oci" => "OCIRepository",
        "bucket" => "Bucket",
        _ => {
            return Err(UserError::new(format!(
                "--source {:?}: a chart comes from a HelmRepository, GitRepository, OCIRepository or Bucket",
                h.source
            ))
            .into());
        }
    };
    let source_ref = source_ref(kind, rest);
    let mut spec = json!({"interval": interval});
    if kind == "OCIRepository" {
        spec["chartRef"] = source_ref;
    } else {
        let Some(chart) = &h.chart else {
            return Err(UserError::new(format!("--chart is required with a {kind}")).into());
        };
        let mut template = json!({"chart": chart, "sourceRef": source_ref});
        if let Some(v) = &h.chart_version {
            template["version"] = v.as_str().into();
        }
        spec["chart"] = json!({"spec": template});
    }
    if let Some(t) = &h.target_namespace {
        spec["targetNamespace"] = t.as_str().into();
    }
    if h.create_target_namespace {
        spec["install"] = json!({"createNamespace": true});
    }
    if let Some(r) = &h.release_name {
        spec["releaseName"] = r.as_str().into();
    }
    if !h.depends_on.is_empty() {
        spec["dependsOn"] = depends_on(&h.depends_on);
    }
    let mut values = serde_json::Map::new();
    for path in &h.values {
        let text = read("--values", path)?;
        let v: Value = serde_norway::from_str(&text)
            .map_err(|e| UserError::new(format!("--values {}: {e}", path.display())))?;
        match v {
            Value::Object(m) => merge(&mut values, m),
            Value::Null => {}
            _ => {
                return Err(UserError::new(format!(
                    "--values {}: not a map of values",
                    path.display()
                ))
                .into());
            }
        }
    }
    if !values.is_empty() {
        spec["values"] = Value::Object(values);
    }
    Ok(
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
              "metadata": metadata(ns, &h.name, labels), "spec": spec}),
    )
}

/// Later values files win, maps merged key by key (as `helm -f a -f b`).
fn merge(into: &mut serde_json::Map<String, Value>, from: serde_json::Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// How long `create` waits for the new object's reconciliation (flux's
/// default `--timeout`).
const WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// The object whose reconciliation `create` waits for: the last one made (a
/// Secret comes before the source that uses it), when a controller
/// reconciles its kind.
fn awaited(objs: &[Value]) -> Option<(FluxKind, String)> {
    let last = objs.last()?;
    let kind = match last["kind"].as_str()? {
        "GitRepository" => FluxKind::GitRepository,
        "OCIRepository" => FluxKind::OCIRepository,
        "Bucket" => FluxKind::Bucket,
        "HelmRepository" => FluxKind::HelmRepository,
        "Kustomization" => FluxKind::Kustomization,
        "HelmRelease" => FluxKind::HelmRelease,
        _ => return None,
    };
    Some((kind, last["metadata"]["name"].as_str()?.to_string()))
}

/// Runs `sluice create`.
pub async fn run(g: &GlobalArgs, mut args: CreateArgs) -> Result<Outcome> {
    let log = Log::default();
    prepare_ssh(&mut args, &log).await?;
    let objs = objects(&g.namespace, &args)?;
    if args.export {
        print!("{}", crate::export::to_stream(&objs)?);
        return Ok(Outcome::Ok);
    }
    let client = kube_util::client(g).await?;
    let mut resolver = Resolver::default();
    for obj in &objs {
        let kind = obj["kind"].as_str().unwrap_or_default();
        log.action(&format!("applying {kind}"));
        resolver.apply(&client, obj, "sluice", false).await?;
        log.success(&format!("{kind} created"));
    }
    if let CreateWhat::Receiver(r) = &args.what {
        notification::wait_and_print(&client, &g.namespace, &r.name, r.timeout, &log).await?;
    }
    // As `flux create`: the new object's first reconciliation is awaited and
    // its outcome reported (a failure is exit 1 with the cause).
    if let Some((kind, name)) = awaited(&objs) {
        crate::reconcile::reconcile_kind(&client, kind, &g.namespace, &name, WAIT, false).await?;
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn create(args: &[&str]) -> Result<Vec<Value>> {
        let cli = Cli::try_parse_from(std::iter::once("create").chain(args.iter().copied()))?;
        objects("flux-system", &cli.create)
    }

    #[test]
    fn sources_and_kustomizations_as_flux_create_makes_them() {
        let objs = create(&[
            "source",
            "git",
            "ops",
            "--url",
            "https://gitea.lan/home/ops.git",
            "--branch",
            "main",
            "-u",
            "me",
            "-p",
            "pat",
            "--ignore-paths",
            "docs/,*.md",
        ])
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["kind"], "Secret");
        assert_eq!(objs[0]["stringData"]["username"], "me");
        assert_eq!(
            objs[1]["spec"],
            json!({"interval": "1m", "ref": {"branch": "main"}, "url": "https://gitea.lan/home/ops.git",
                   "secretRef": {"name": "ops"}, "ignore": "docs/\n*.md\n"})
        );
        let _: sluice_api::GitRepository = serde_json::from_value(objs[1].clone()).unwrap();
        let e = create(&["source", "git", "ops", "--url", "https://x/y.git"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a Git reference is required"), "{e}");

        let objs = create(&[
            "kustomization",
            "apps",
            "--source",
            "GitRepository/ops.flux-system",
            "--path",
            "./apps",
            "--prune",
            "--depends-on",
            "infra,flux-system/crds",
            "--decryption-provider",
            "sops",
            "--decryption-secret",
            "sops-age",
            "--substitute-from",
            "ConfigMap/vars,Secret/secret-vars:optional",
            "--interval",
            "10m",
        ])
        .unwrap();
        assert_eq!(
            objs[0]["spec"],
            json!({"interval": "10m", "path": "./apps", "prune": true,
                   "sourceRef": {"kind": "GitRepository", "name": "ops", "namespace": "flux-system"},
                   "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "flux-system"}],
                   "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
                   "postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"},
                                                    {"kind": "Secret", "name": "secret-vars", "optional": true}]}})
        );
        let _: sluice_api::Kustomization = serde_json::from_value(objs[0].clone()).unwrap();
        let e = create(&["ks", "a", "--source", "HelmRepository/x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--source \"HelmRepository/x\""), "{e}");
    }

    #[test]
    fn buckets_as_flux_create_makes_them() {
        let objs = create(&[
            "source",
            "bucket",
            "podinfo",
            "--bucket-name=podinfo",
            "--endpoint=minio.minio.svc.cluster.local:9000",
            "--insecure=true",
            "--access-key=myaccesskey",
            "--secret-key=mysecretkey",
            "--prefix",
            "deploy/",
            "--ignore-paths",
            "*.md,docs/",
            "--fetch-timeout",
            "30s",
            "--interval=10m",
        ])
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["kind"], "Secret");
        assert_eq!(objs[0]["metadata"]["name"], "bucket-podinfo");
        assert_eq!(
            objs[0]["stringData"],
            json!({"accesskey": "myaccesskey", "secretkey": "mysecretkey"})
        );
        assert_eq!(
            objs[1]["spec"],
            json!({"provider": "generic", "bucketName": "podinfo",
                   "endpoint": "minio.minio.svc.cluster.local:9000", "insecure": true,
                   "prefix": "deploy/", "secretRef": {"name": "bucket-podinfo"},
                   "interval": "10m", "timeout": "30s", "ignore": "*.md\ndocs/\n"})
        );
        let bucket: sluice_api::Bucket = serde_json::from_value(objs[1].clone()).unwrap();
        assert!(bucket.spec.is_insecure());
        assert_eq!(
            awaited(&objs),
            Some((FluxKind::Bucket, "podinfo".to_string()))
        );

        let objs = create(&[
            "source",
            "bucket",
            "podinfo",
            "--bucket-name",
            "podinfo",
            "--provider=aws",
            "--endpoint",
            "s3.amazonaws.com",
            "--region=us-east-1",
            "--secret-ref",
            "s3-keys",
        ])
        .unwrap();
        assert_eq!(
            objs[0]["spec"],
            json!({"provider": "aws", "bucketName": "podinfo", "endpoint": "s3.amazonaws.com",
                   "region": "us-east-1", "secretRef": {"name": "s3-keys"}, "interval": "1m"})
        );

        let bad = |extra: &[&str]| {
            let mut args = vec!["source", "bucket", "b", "--bucket-name", "b"];
            args.extend_from_slice(extra);
            create(&args).unwrap_err().to_string()
        };
        let e = bad(&["--endpoint", "https://minio.lan:9000"]);
        assert!(e.contains("expected HOST[:PORT]"), "{e}");
        let e = bad(&["--endpoint", "minio.lan", "--access-key", "a"]);
        assert!(
            e.contains("--access-key and --secret-key go together"),
            "{e}"
        );
        let e = bad(&["--endpoint", "s3.amazonaws.com", "--provider", "aws"]);
        assert!(e.contains("--provider aws needs the access keys"), "{e}");
        let e = bad(&["--endpoint", "minio.lan", "--timeout", "1h"]);
        assert!(e.contains("in ms, s or m"), "{e}");
        let e = bad(&["--endpoint", "storage.googleapis.com", "--provider", "gcp"]);
        assert!(e.contains("invalid value 'gcp'"), "{e}");
    }

    #[test]
    fn proxies_as_flux_create_makes_them() {
        let objs = create(&[
            "secret",
            "proxy",
            "squid",
            "--address",
            "http://squid.lan:3128",
            "-u",
            "me",
            "-p",
            "pw",
        ])
        .unwrap();
        assert_eq!(
            objs[0]["stringData"],
            json!({"address": "http://squid.lan:3128", "username": "me", "password": "pw"})
        );
        let e = create(&["secret", "proxy", "p", "--address", "socks5://p:1080"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("must use http or https scheme, got 'socks5'"),
            "{e}"
        );
        let proxied = |source: &[&str]| {
            let mut args = vec!["source"];
            args.extend_from_slice(source);
            args.extend(["--proxy-secret-ref", "squid"]);
            create(&args)
        };
        for source in [
            &[
                "oci",
                "apps",
                "--url",
                "oci://ghcr.io/home/apps",
                "--tag",
                "v1",
            ][..],
            &[
                "git",
                "ops",
                "--url",
                "https://gitea.lan/home/ops.git",
                "--branch",
                "main",
            ],
        ] {
            let objs = proxied(source).unwrap();
            assert_eq!(objs[0]["spec"]["proxySecretRef"], json!({"name": "squid"}));
        }
        let e = proxied(&[
            "git",
            "ops",
            "--url",
            "ssh://git@gitea.lan/home/ops",
            "--branch",
            "main",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("http and https remotes only"), "{e}");
    }

    #[test]
    fn secrets_from_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("identity");
        std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n").unwrap();
        let objs = create(&[
            "secret",
            "git",
            "ops-ssh",
            "--url",
            "ssh://git@gitea.lan/home/ops",
            "--private-key-file",
            key.to_str().unwrap(),
        ])
        .unwrap();
        assert!(
            objs[0]["stringData"]["identity"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN")
        );
        let e = create(&["secret", "git", "s", "--url", "ssh://git@h/r"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--private-key-file is required"), "{e}");
        let objs = create(&[
            "secret",
            "git",
            "tok",
            "--url",
            "https://h/r",
            "--bearer-token",
            "t",
        ])
        .unwrap();
        assert_eq!(objs[0]["stringData"], json!({"bearerToken": "t"}));
        let e = create(&[
            "secret",
            "tls",
            "t",
            "--tls-crt-file",
            "/nonexistent/crt",
            "--tls-key-file",
            "/nonexistent/key",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--tls-crt-file /nonexistent/crt"), "{e}");
    }
}
