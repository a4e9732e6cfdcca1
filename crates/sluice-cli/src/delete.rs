//! `sluice delete KIND NAME` for every kind sluice serves, as `flux delete`: a confirmation
//! first (`Are you sure you want to delete this kustomization`), skipped with `--silent`; the
//! object is deleted and its controller's finalizer does the rest (a Kustomization with
//! `prune: true` takes what it applied with it).

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::{Args, Subcommand};
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

use crate::kube_util::{self, not_found_or};
use crate::output::Log;
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(subcommand)]
    pub what: DeleteWhat,

    /// Delete without asking.
    #[arg(short = 's', long, global = true)]
    pub silent: bool,
}

/// A name.
#[derive(Debug, Args)]
pub struct Name {
    /// The object's name.
    pub name: String,
}

/// What to delete.
#[derive(Debug, Subcommand)]
pub enum DeleteWhat {
    /// A source.
    #[command(subcommand)]
    Source(SourceWhat),
    /// A Kustomization (with `prune: true`, what it applied goes too).
    #[command(visible_alias = "ks")]
    Kustomization(Name),
    /// A HelmRelease (its release is uninstalled).
    #[command(visible_alias = "hr")]
    Helmrelease(Name),
    /// An Alert.
    Alert(Name),
    /// An alert Provider.
    AlertProvider(Name),
    /// A Receiver.
    Receiver(Name),
}

/// A source kind.
#[derive(Debug, Subcommand)]
pub enum SourceWhat {
    /// A GitRepository.
    Git(Name),
    /// An OCIRepository.
    Oci(Name),
    /// A Bucket.
    Bucket(Name),
    /// A HelmRepository.
    Helm(Name),
    /// A HelmChart.
    Chart(Name),
}

/// The noun flux prints, the kind, its API version and plural, and the name.
fn target(what: &DeleteWhat) -> (&'static str, &'static str, &'static str, &'static str, &str) {
    const SOURCE: &str = "source.toolkit.fluxcd.io/v1";
    const NOTIFY: &str = "notification.toolkit.fluxcd.io/v1beta3";
    match what {
        DeleteWhat::Source(SourceWhat::Git(n)) => (
            "source git",
            "GitRepository",
            SOURCE,
            "gitrepositories",
            &n.name,
        ),
        DeleteWhat::Source(SourceWhat::Oci(n)) => (
            "source oci",
            "OCIRepository",
            SOURCE,
            "ocirepositories",
            &n.name,
        ),
        DeleteWhat::Source(SourceWhat::Bucket(n)) => {
            ("source bucket", "Bucket", SOURCE, "buckets", &n.name)
        }
        DeleteWhat::Source(SourceWhat::Helm(n)) => (
            "source helm",
            "HelmRepository",
            SOURCE,
            "helmrepositories",
            &n.name,
        ),
        DeleteWhat::Source(SourceWhat::Chart(n)) => {
            ("source chart", "HelmChart", SOURCE, "helmcharts", &n.name)
        }
        DeleteWhat::Kustomization(n) => (
            "kustomization",
            "Kustomization",
            "kustomize.toolkit.fluxcd.io/v1",
            "kustomizations",
            &n.name,
        ),
        DeleteWhat::Helmrelease(n) => (
            "helmrelease",
            "HelmRelease",
            "helm.toolkit.fluxcd.io/v2",
            "helmreleases",
            &n.name,
        ),
        DeleteWhat::Alert(n) => ("alert", "Alert", NOTIFY, "alerts", &n.name),
        DeleteWhat::AlertProvider(n) => {
            ("alert-provider", "Provider", NOTIFY, "providers", &n.name)
        }
        DeleteWhat::Receiver(n) => (
            "receiver",
            "Receiver",
            "notification.toolkit.fluxcd.io/v1",
            "receivers",
            &n.name,
        ),
    }
}

fn api(
    client: &Client,
    ns: &str,
    kind: &str,
    api_version: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Asks on the terminal; `false` unless the answer is yes.
fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "? {question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Runs `sluice delete`.
pub async fn run(g: &GlobalArgs, args: DeleteArgs) -> Result<Outcome> {
    let (noun, kind, api_version, plural, name) = target(&args.what);
    let ns = g.namespace.as_str();
    let client = kube_util::client(g).await?;
    let api = api(&client, ns, kind, api_version, plural);
    let list = match noun.strip_prefix("source ") {
        Some(kind) => format!("sluice get sources {kind} -A"),
        None => format!("sluice get {noun}s -A"),
    };
    api.get(name)
        .await
        .map_err(|e| not_found_or(e, kind, ns, name, &list))?;
    // The answer is read from standard input, a terminal or not (`yes | sluice delete …`);
    // no answer is no.
    if !args.silent && !confirm(&format!("Are you sure you want to delete this {noun}"))? {
        return Err(
            UserError::new(format!("aborted: {kind} {ns}/{name} was not deleted"))
                .hint("answer y, or pass --silent to delete without asking")
                .into(),
        );
    }
    let log = Log::default();
    log.action(&format!("deleting {noun} {name} in {ns} namespace"));
    api.delete(name, &DeleteParams::default())
        .await
        .map_err(|e| kube_util::user_kube_error(e, &format!("deleting {kind} {ns}/{name}")))?;
    log.success(&format!("{noun} deleted"));
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_deleted_as_flux_names_it() {
        let what = DeleteWhat::Source(SourceWhat::Bucket(Name {
            name: "manifests".into(),
        }));
        assert_eq!(
            target(&what),
            (
                "source bucket",
                "Bucket",
                "source.toolkit.fluxcd.io/v1",
                "buckets",
                "manifests"
            )
        );
    }
}
