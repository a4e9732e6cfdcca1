//! `sluice push artifact` and `sluice pull artifact`: publish a directory of
//! manifests to an OCI registry in Flux's artifact format, and get it back,
//! with the flags and output of `flux push|pull artifact`. The registry
//! work is `sluice-oci`'s; it blocks, so it runs in `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use sluice_oci::artifact::{self, Metadata, PullOptions};
use sluice_oci::{ArtifactUrl, Client, ClientOptions, Credentials, DockerConfig, Keychain, Target};

use crate::output::Log;
use crate::{Outcome, UserError, user_error};

/// `sluice push …`.
#[derive(Debug, Subcommand)]
pub enum PushTarget {
    /// Push a directory (or a single file) as an OCI artifact, as `flux push
    /// artifact`: the content as a tar.gz layer, the source and revision as
    /// annotations. Credentials come from --creds or ~/.docker/config.json.
    Artifact(PushArtifactArgs),
}

/// `sluice pull …`.
#[derive(Debug, Subcommand)]
pub enum PullTarget {
    /// Download an OCI artifact and extract its content to a directory, as
    /// `flux pull artifact`. Credentials come from --creds or
    /// ~/.docker/config.json.
    Artifact(PullArtifactArgs),
}

/// `--provider`: only `generic` (credentials from --creds or the Docker
/// config) is supported; cloud logins are refused by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    #[default]
    Generic,
    Aws,
    Azure,
    Gcp,
}

/// `-o` of push: how the pushed digest is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PushOutput {
    Json,
    Yaml,
}

/// Flux's default `--ignore-paths`: version control files and binary
/// extensions.
fn default_ignore_paths() -> Vec<String> {
    sluice_git::sourceignore::EXCLUDE_VCS
        .iter()
        .chain(sluice_git::sourceignore::EXCLUDE_EXT)
        .map(|s| s.to_string())
        .collect()
}

/// `sluice push artifact oci://HOST/REPO:TAG --path DIR --source URL --revision REV`.
#[derive(Debug, Args)]
pub struct PushArtifactArgs {
    /// The artifact URL, like oci://ghcr.io/org/config/app:v1.0.0.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Path to the directory (or single file) holding the manifests.
    #[arg(short = 'f', long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// The source address, e.g. the Git URL.
    #[arg(long)]
    pub source: Option<String>,
    /// The source revision in the format '<branch|tag>@sha1:<commit-sha>'.
    #[arg(long)]
    pub revision: Option<String>,
    /// Credentials for the registry in the format <username>[:<password>].
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// The OCI provider name (only generic is supported).
    #[arg(long, value_enum, default_value_t = Provider::Generic)]
    pub provider: Provider,
    /// Paths to ignore, in .gitignore format (replaces the defaults).
    #[arg(long, value_delimiter = ',', default_values_t = default_ignore_paths())]
    pub ignore_paths: Vec<String>,
    /// More paths to ignore, in .gitignore format (added to --ignore-paths).
    #[arg(long, value_delimiter = ',')]
    pub add_ignore_paths: Vec<String>,
    /// Custom OCI annotations in the format '<key>=<value>'.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Print the pushed artifact's URL, repository, tag and digest as json or yaml.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<PushOutput>,
    /// Set the created timestamp to '1970-01-01T00:00:00Z' for reproducible digests.
    #[arg(long)]
    pub reproducible: bool,
    /// Allow the registry to be reached over plain HTTP.
    #[arg(long = "insecure-registry")]
    pub insecure: bool,
    /// How long each registry request may take.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `sluice pull artifact oci://HOST/REPO:TAG --output DIR`.
#[derive(Debug, Args)]
pub struct PullArtifactArgs {
    /// The artifact URL, like oci://ghcr.io/org/config/app:v1.0.0.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Path where the artifact content is extracted (an existing directory).
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Credentials for the registry in the format <username>[:<password>].
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// The OCI provider name (only generic is supported).
    #[arg(long, value_enum, default_value_t = Provider::Generic)]
    pub provider: Provider,
    /// Allow the registry to be reached over plain HTTP.
    #[arg(long = "insecure-registry")]
    pub insecure: bool,
    /// How long each registry request may take.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected like 30s, 5m, 1h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("invalid duration '{s}': expected like 30s, 5m, 1h")),
    }
}

/// Runs `sluice push …`.
pub async fn run_push(target: PushTarget) -> anyhow::Result<Outcome> {
    match target {
        PushTarget::Artifact(args) => push_artifact(args).await,
    }
}

/// Runs `sluice pull …`.
pub async fn run_pull(target: PullTarget) -> anyhow::Result<Outcome> {
    match target {
        PullTarget::Artifact(args) => pull_artifact(args).await,
    }
}

fn check_provider(provider: Provider) -> anyhow::Result<()> {
    if provider == Provider::Generic {
        return Ok(());
    }
    let name = provider
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    Err(
        UserError::new(format!("--provider {name} is not supported"))
            .hint("log in with `docker login` (or pass --creds) and use --provider generic")
            .into(),
    )
}

/// The keychain: --creds for any registry, else the Docker config file
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `auths` only;
/// credential helpers are not run).
fn keychain(creds: Option<&str>, log: &Log) -> anyhow::Result<Keychain> {
    if let Some(c) = creds {
        log.action("logging in to registry with credentials");
        let creds = Credentials::from_creds_flag(c)
            .map_err(|e| user_error(format!("could not login with credentials: {e}")))?;
        return Ok(Keychain::with_credentials(creds));
    }
    let path = std::env::var_os("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")));
    let Some(path) = path.filter(|p| p.is_file()) else {
        return Ok(Keychain::anonymous());
    };
    let data =
        std::fs::read(&path).map_err(|e| user_error(format!("reading {}: {e}", path.display())))?;
    // A config with only credential helpers has no `auths`: anonymous then.
    match DockerConfig::parse(&data, &path.display().to_string()) {
        Ok(config) => Ok(Keychain::anonymous().with_config(config)),
        Err(e) => Err(user_error(e.to_string())),
    }
}

fn client(keychain: Keychain, insecure: bool, timeout: Duration) -> anyhow::Result<Client> {
    Client::new(ClientOptions {
        keychain,
        insecure,
        timeout,
        ..ClientOptions::default()
    })
    .map_err(|e| user_error(e.to_string()))
}

async fn push_artifact(args: PushArtifactArgs) -> anyhow::Result<Outcome> {
    let log = Log::default();
    let source = args
        .source
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| user_error("--source is required"))?;
    let revision = args
        .revision
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| user_error("--revision is required"))?;
    let path = match &args.path {
        Some(p) if !p.as_os_str().is_empty() => p.clone(),
        _ => {
            return Err(user_error(format!(
                "invalid path \"{}\"",
                args.path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
    };
    if let Err(e) = std::fs::metadata(&path) {
        return Err(user_error(format!(
            "invalid path '{}', must point to an existing directory or file: {e}",
            path.display()
        )));
    }
    check_provider(args.provider)?;
    let url = ArtifactUrl::parse(&args.url).map_err(|e| user_error(e.to_string()))?;
    let Target::Tag(tag) = url.target.clone() else {
        return Err(user_error(format!(
            "invalid URL '{}': push needs a tag, not a digest",
            args.url
        )));
    };
    let mut annotations = std::collections::BTreeMap::new();
    for a in &args.annotations {
        let kv: Vec<&str> = a.split('=').collect();
        if kv.len() != 2 {
            return Err(user_error(format!(
                "invalid annotation {a}, must be in the format key=value"
            )));
        }
        annotations.insert(kv[0].to_string(), kv[1].to_string());
    }
    let metadata = Metadata {
        source: Some(source),
        revision: Some(revision),
        created: args
            .reproducible
            .then(|| "1970-01-01T00:00:00Z".to_string()),
        annotations,
    };
    let mut ignore = args.ignore_paths.clone();
    ignore.extend(args.add_ignore_paths.iter().cloned());
    let keychain = keychain(args.creds.as_deref(), &log)?;
    let client = client(keychain, args.insecure, args.timeout)?;
    if args.output.is_none() {
        log.action(&format!("pushing artifact to {url}"));
    }
    let reference = url.reference.clone();
    let pushed = tokio::task::spawn_blocking(move || {
        artifact::push_artifact(&client, &reference, &tag, &path, &metadata, &ignore)
    })
    .await
    .map_err(|e| anyhow::anyhow!("the push task failed: {e}"))?
    .map_err(|e| user_error(format!("pushing artifact failed: {e}")))?;

    #[derive(serde::Serialize)]
    struct Info {
        url: String,
        repository: String,
        tag: String,
        digest: String,
    }
    let info = Info {
        url: format!("oci://{}", pushed.digest_url()),
        repository: pushed.reference.to_string(),
        tag: pushed.tag.clone(),
        digest: pushed.digest.clone(),
    };
    match args.output {
        Some(PushOutput::Json) => println!("{}", serde_json::to_string_pretty(&info)?),
        Some(PushOutput::Yaml) => print!("{}", serde_norway::to_string(&info)?),
        None => log.success(&format!(
            "artifact successfully pushed to {}",
            pushed.digest_url()
        )),
    }
    Ok(Outcome::Ok)
}

async fn pull_artifact(args: PullArtifactArgs) -> anyhow::Result<Outcome> {
    let log = Log::default();
    let output = match &args.output {
        Some(p) if !p.as_os_str().is_empty() => p.clone(),
        _ => return Err(user_error("output path cannot be empty")),
    };
    if !Path::new(&output).is_dir() {
        return Err(user_error(format!(
            "invalid output path \"{}\": not an existing directory",
            output.display()
        )));
    }
    check_provider(args.provider)?;
    let url = ArtifactUrl::parse(&args.url).map_err(|e| user_error(e.to_string()))?;
    let keychain = keychain(args.creds.as_deref(), &log)?;
    let client = client(keychain, args.insecure, args.timeout)?;
    log.action(&format!("pulling artifact from {url}"));
    let (reference, target, dest) = (url.reference.clone(), url.target.clone(), output.clone());
    let pulled = tokio::task::spawn_blocking(move || {
        artifact::pull_artifact(&client, &reference, &target, &dest, &PullOptions::default())
    })
    .await
    .map_err(|e| anyhow::anyhow!("the pull task failed: {e}"))?
    .map_err(|e| user_error(e.to_string()))?;
    if let Some(s) = pulled.metadata.source.as_deref().filter(|s| !s.is_empty()) {
        log.success(&format!("source {s}"));
    }
    if let Some(r) = pulled
        .metadata
        .revision
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        log.success(&format!("revision {r}"));
    }
    log.success(&format!("digest {}", pulled.digest_url));
    log.success(&format!(
        "artifact content extracted to {}",
        output.display()
    ));
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn default_ignores_are_fluxs() {
        let d = default_ignore_paths();
        assert!(d.contains(&".git/".to_string()));
        assert!(d.contains(&"*.tar.gz".to_string()));
        assert!(!d.iter().any(|p| p.contains(".github")));
    }
}
