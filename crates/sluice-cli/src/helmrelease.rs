//! `sluice build helmrelease NAME --path CHART` and
//! `sluice diff helmrelease NAME --path CHART`.
//!
//! Both render a local chart (a directory or a `.tgz`) for a HelmRelease
//! exactly as the controller renders it, through the same code
//! (`sluice_helmrelease::build`): `spec.values` with `spec.valuesFrom` read
//! from the cluster in Flux's order, the release name and namespace
//! helm-controller derives, the cluster's Kubernetes version, and
//! helm-controller's post-renderers (kustomize patches and images,
//! `commonMetadata`, the origin labels).
//!
//! The HelmRelease comes from the cluster, or from `--helmrelease-file`.
//! With `--dry-run` (which needs `--helmrelease-file`) nothing is read from
//! the cluster: `valuesFrom` is left out (said on stderr) and Helm's
//! default Kubernetes version is used.
//!
//! `build` prints what `helm template` prints for that release (CRDs unless
//! `install.crds: Skip`, manifests, hooks). `diff` asks the API server what
//! installing or upgrading would change (server-side apply, dry run,
//! helm-controller's field manager, with Helm's ownership metadata) and
//! names the objects the release has now that the new render drops. Exit 0:
//! no difference, 1: differences, 2: error.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use kube::{Api, Client};
use serde_json::Value;
use sluice_api::HelmRelease;
use sluice_api::meta::ObjectId;

use crate::kube_util::{self, FluxKind, not_found_or};
use crate::output::{Color, Log};
use crate::{GlobalArgs, Outcome, UserError};

/// A HelmRelease and a local copy of its chart.
#[derive(Debug, Args)]
pub struct BuildHelmReleaseArgs {
    /// The HelmRelease (its values, valuesFrom, release name, target
    /// namespace and post-renderers are used).
    pub name: String,

    /// The chart, as a directory or a packaged `.tgz`.
    #[arg(long, value_name = "CHART")]
    pub path: PathBuf,

    /// Read the HelmRelease from this YAML file instead of the cluster (the
    /// document of that kind with NAME, in the namespace or without one).
    #[arg(long, value_name = "FILE")]
    pub helmrelease_file: Option<PathBuf>,

    /// Do not talk to the cluster: `valuesFrom` is left out and Helm's
    /// default Kubernetes version is used (needs --helmrelease-file).
    #[arg(long)]
    pub dry_run: bool,
}

/// The HelmRelease to render: from `--helmrelease-file` or from the cluster.
async fn helm_release_for(
    client: Option<&Client>,
    ns: &str,
    args: &BuildHelmReleaseArgs,
) -> Result<HelmRelease> {
    let name = args.name.as_str();
    match (&args.helmrelease_file, client) {
        (Some(file), _) => {
            crate::diff::object_from_file(file, ns, name, "helm.toolkit.fluxcd.io/", "HelmRelease")
        }
        (None, Some(client)) => Api::<HelmRelease>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map_err(|e| {
                not_found_or(
                    e,
                    "HelmRelease",
                    ns,
                    name,
                    FluxKind::HelmRelease.list_command(),
                )
            }),
        (None, None) => Err(UserError::new("--dry-run needs --helmrelease-file").into()),
    }
}

/// A local render of a HelmRelease.
struct Rendered {
    hr: HelmRelease,
    release: sluice_helm::render::Release,
}

async fn render_local(
    client: Option<&Client>,
    ns: &str,
    args: &BuildHelmReleaseArgs,
) -> Result<Rendered> {
    let hr = helm_release_for(client, ns, args).await?;
    let subject = format!("HelmRelease {ns}/{}", args.name);
    let limits = sluice_helm::chart::Limits::default();
    let chart = if args.path.is_dir() {
        sluice_helm::chart::load_dir(&args.path, &limits)
    } else {
        let file = std::fs::File::open(&args.path)
            .map_err(|e| UserError::new(format!("--path {}: {e}", args.path.display())))?;
        sluice_helm::chart::load_archive(std::io::BufReader::new(file), &limits)
    }
    .map_err(|e| UserError::new(format!("--path {}: {e}", args.path.display())))?;
    if client.is_none() && hr.spec.values_from.as_ref().is_some_and(|v| !v.is_empty()) {
        Log::default().warning(&format!(
            "{subject}: valuesFrom left out (--dry-run reads nothing from the cluster)"
        ));
    }
    let values = sluice_helmrelease::build::values(client, &hr)
        .await
        .map_err(|e| UserError::new(format!("{subject}: {e}")))?;
    let kube_version = match client {
        Some(c) => c.apiserver_version().await.ok().map(|v| v.git_version),
        None => None,
    };
    let mut opts = sluice_helmrelease::build::render_options(&hr, kube_version);
    sluice_helmrelease::schemas::attach(&mut opts, &chart).await;
    let release =
        tokio::task::spawn_blocking(move || sluice_helm::render::render(&chart, &values, &opts))
            .await?
            .map_err(|e| UserError::new(format!("{subject}: {e}")))?;
    Ok(Rendered { hr, release })
}

/// Whether the chart's `crds/` go with an install (`install.crds`, Flux's default `Create`).
pub(crate) fn installs_crds(hr: &HelmRelease) -> bool {
    !matches!(
        hr.install().crds,
        Some(sluice_api::helm_release::CrdsPolicy::Skip)
    )
}

/// Runs `sluice build helmrelease`.
pub async fn run_build(g: &GlobalArgs, args: BuildHelmReleaseArgs) -> Result<Outcome> {
    if args.dry_run && args.helmrelease_file.is_none() {
        return Err(UserError::new("--dry-run needs --helmrelease-file").into());
    }
    let client = if args.dry_run {
        None
    } else {
        Some(kube_util::client(g).await?)
    };
    let Rendered { hr, release } = render_local(client.as_ref(), &g.namespace, &args).await?;
    let out = release
        .template_output(&sluice_helm::render::PrintOptions {
            include_crds: installs_crds(&hr),
            ..Default::default()
        })
        .map_err(UserError::new)?;
    print!("{out}");
    Ok(Outcome::Ok)
}

/// Runs `sluice diff helmrelease`.
pub async fn run_diff(g: &GlobalArgs, args: BuildHelmReleaseArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let log = Log::default();
    log.action(&format!(
        "rendering HelmRelease {ns}/{} from {}",
        args.name,
        args.path.display()
    ));
    let Rendered { hr, release } = render_local(Some(&client), ns, &args).await?;
    let release_name = sluice_helmrelease::build::release_name(&hr);
    let release_ns = hr.release_namespace();
    let objects = objects_of(&release.manifest(false), &release_name, &release_ns)?;
    let (mut differs, ids) = crate::diff::diff_objects(
        &client,
        &objects,
        sluice_helmrelease::actions::FIELD_MANAGER,
        &release_ns,
    )
    .await?;
    // What the release has now and the new render drops is deleted by an upgrade.
    let storage =
        sluice_helmrelease::storage::Storage::new(client.clone(), &hr.storage_namespace());
    let current = storage
        .last(&release_name)
        .await
        .map_err(|e| UserError::new(format!("reading release {release_name}: {e}")))?;
    let color = Color::stdout();
    if let Some(current) =
        current.filter(|r| r.status() != sluice_helm::release::Status::Uninstalled)
    {
        for o in objects_of(&current.manifest, &release_name, &release_ns)? {
            let id = object_id(&o, &release_ns);
            if ids.contains(&id.to_string()) || sluice_helmrelease::actions::kept(&o) {
                continue;
            }
            // Only namespaced kinds carry the release namespace; a cluster-scoped object
            // of the old release matches its new self without it.
            if ids.contains(&object_id(&o, "").to_string()) {
                continue;
            }
            differs = true;
            println!(
                "{} {} deleted",
                color.red("►"),
                crate::diff::id_subject(&id)
            );
        }
    }
    if differs {
        Ok(Outcome::Failed)
    } else {
        log.success("no changes");
        Ok(Outcome::Ok)
    }
}

/// The objects of a manifest as the controller applies them (Helm's ownership metadata).
fn objects_of(manifest: &str, release: &str, namespace: &str) -> Result<Vec<Value>> {
    let docs = sluice_kustomize::yaml::parse_manifests(manifest)
        .map_err(|e| UserError::new(format!("reading the rendered manifest: {e}")))?;
    Ok(docs
        .iter()
        .map(sluice_render::to_json)
        .filter(Value::is_object)
        .map(|mut v| {
            sluice_helmrelease::actions::own(&mut v, release, namespace);
            v
        })
        .collect())
}

fn object_id(o: &Value, default_ns: &str) -> ObjectId {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let ns = match s("/metadata/namespace") {
        "" => default_ns,
        n => n,
    };
    let group = s("/apiVersion").rsplit_once('/').map_or("", |(g, _)| g);
    ObjectId::new(ns.to_owned(), s("/metadata/name"), group, s("/kind"))
}
