//! `sluice export source git|oci|bucket|helm|chart | kustomization [NAME | --all]`: clean YAML as
//! `flux export` prints it (`---`, apiVersion, kind, metadata with name,
//! namespace, labels and annotations, spec; no status, no server fields).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::{Args, Subcommand};
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};
use sluice_api::meta::RECONCILE_REQUEST_ANNOTATION;
use sluice_api::{
    Bucket, GitRepository, HelmChart, HelmRelease, HelmRepository, Kustomization, OCIRepository,
};

use crate::kube_util::{self, FluxKind, not_found_or};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub what: ExportWhat,

    /// Export every object of the kind in the namespace.
    #[arg(long, global = true)]
    pub all: bool,
}

/// What to export.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// Sources.
    #[command(subcommand)]
    Source(ExportSource),
    /// Kustomizations.
    #[command(visible_alias = "ks")]
    Kustomization(OptName),
    /// HelmReleases.
    #[command(visible_alias = "hr")]
    Helmrelease(OptName),
}

/// A source kind.
#[derive(Debug, Subcommand)]
pub enum ExportSource {
    /// GitRepositories.
    Git(OptName),
    /// OCIRepositories.
    Oci(OptName),
    /// Buckets.
    Bucket(OptName),
    /// HelmRepositories.
    Helm(OptName),
    /// HelmCharts.
    Chart(OptName),
}

/// An optional name.
#[derive(Debug, Args)]
pub struct OptName {
    /// The object's name (or `--all`).
    pub name: Option<String>,
}

/// Annotations never exported (server- or tool-written).
const DROPPED_ANNOTATIONS: [&str; 2] = [
    RECONCILE_REQUEST_ANNOTATION,
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// The clean form of an object: what one would commit.
pub fn clean<K: Resource<DynamicType = ()>, S: Serialize>(obj: &K, spec: &S) -> Value {
    let meta = obj.meta();
    let mut metadata = json!({
        "name": meta.name.clone().unwrap_or_default(),
        "namespace": meta.namespace.clone().unwrap_or_default(),
    });
    if let Some(labels) = meta.labels.as_ref().filter(|l| !l.is_empty()) {
        metadata["labels"] = json!(labels);
    }
    let annotations: BTreeMap<&String, &String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !DROPPED_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
        "spec": spec,
    })
}

/// The YAML stream of `objects`, each document starting with `---`.
pub fn to_stream(objects: &[Value]) -> Result<String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(o)?);
    }
    Ok(out)
}

/// A kind `sluice export` prints: its spec.
pub trait Exported:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    /// What is exported of the object besides its metadata.
    fn spec(&self) -> &impl Serialize;
}

macro_rules! exported {
    ($($kind:ty),*) => {$(
        impl Exported for $kind {
            fn spec(&self) -> &impl Serialize {
                &self.spec
            }
        }
    )*};
}

exported!(
    GitRepository,
    OCIRepository,
    Bucket,
    HelmRepository,
    HelmChart,
    Kustomization,
    HelmRelease
);

/// The clean objects of kind `K` (one, or all in the namespace).
async fn export<K: Exported>(
    client: &Client,
    ns: &str,
    kind: FluxKind,
    name: Option<&str>,
) -> Result<Vec<Value>> {
    Ok(fetch::<K>(client, ns, kind, name)
        .await?
        .iter()
        .map(|o| clean(o, o.spec()))
        .collect())
}

async fn fetch<K: Exported>(
    client: &Client,
    ns: &str,
    kind: FluxKind,
    name: Option<&str>,
) -> Result<Vec<K>> {
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match name {
        Some(n) => Ok(vec![api.get(n).await.map_err(|e| {
            not_found_or(e, kind.kind(), ns, n, kind.list_command())
        })?]),
        None => {
            let mut items = api
                .list(&ListParams::default())
                .await
                .map_err(|e| kube_util::user_kube_error(e, &format!("listing {}s", kind.kind())))?
                .items;
            items.sort_by_key(|o| o.name_any());
            Ok(items)
        }
    }
}

/// Runs `sluice export`.
pub async fn run(g: &GlobalArgs, args: ExportArgs) -> Result<Outcome> {
    let (kind, name) = match &args.what {
        ExportWhat::Source(ExportSource::Git(n)) => (FluxKind::GitRepository, n),
        ExportWhat::Source(ExportSource::Oci(n)) => (FluxKind::OCIRepository, n),
        ExportWhat::Source(ExportSource::Bucket(n)) => (FluxKind::Bucket, n),
        ExportWhat::Source(ExportSource::Helm(n)) => (FluxKind::HelmRepository, n),
        ExportWhat::Source(ExportSource::Chart(n)) => (FluxKind::HelmChart, n),
        ExportWhat::Kustomization(n) => (FluxKind::Kustomization, n),
        ExportWhat::Helmrelease(n) => (FluxKind::HelmRelease, n),
    };
    let name = name.name.clone();
    if name.is_none() && !args.all {
        return Err(UserError::new("name is required")
            .hint("pass a NAME or --all")
            .into());
    }
    if name.is_some() && args.all {
        return Err(UserError::new("pass either a NAME or --all, not both").into());
    }
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let name = name.as_deref();
    let objects = match kind {
        FluxKind::GitRepository => export::<GitRepository>(&client, ns, kind, name).await?,
        FluxKind::OCIRepository => export::<OCIRepository>(&client, ns, kind, name).await?,
        FluxKind::Bucket => export::<Bucket>(&client, ns, kind, name).await?,
        FluxKind::HelmRepository => export::<HelmRepository>(&client, ns, kind, name).await?,
        FluxKind::HelmChart => export::<HelmChart>(&client, ns, kind, name).await?,
        FluxKind::Kustomization => export::<Kustomization>(&client, ns, kind, name).await?,
        FluxKind::HelmRelease => export::<HelmRelease>(&client, ns, kind, name).await?,
    };
    print!("{}", to_stream(&objects)?);
    Ok(Outcome::Ok)
}
