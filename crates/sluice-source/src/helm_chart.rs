//! HelmChart: a chart archive in `helmchart/<ns>/<name>/<chart>-<version>.tgz`
//! (revision: the chart version), which Flux's helm-controller installs.
//!
//! Where the chart comes from (`spec.sourceRef`):
//! - a `HelmRepository` of type `default`: the version is resolved in the
//!   repository's stored index (read streaming, only this chart's entries
//!   kept), and the archive downloaded from the URL the index gives;
//! - a `HelmRepository` of type `oci`: the version is resolved among the
//!   registry's tags (`+` written `_`, as `helm push` does), and the chart
//!   layer pulled;
//! - a `GitRepository` or a `Bucket`: the chart directory at `spec.chart`
//!   in its artifact, packaged as `helm package` does, its missing
//!   dependencies added: local ones from the artifact, the others from
//!   their chart repositories ([`crate::helm_dependencies`]).
//!
//! `valuesFiles` are merged in order into the packaged `values.yaml`; the
//! version then gets the object's generation as build metadata (and, with
//! `reconcileStrategy: Revision`, the source revision first), as Flux does,
//! so helm-controller notices the change. An unchanged chart (same name,
//! version, values files and generation) is not downloaded or packaged
//! again.
//!
//! `spec.verify` is refused by a condition that names it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use sluice_api::meta::{self as flux, BUILD_FAILED_CONDITION, URL_INVALID_REASON};
use sluice_api::source::bucket::Bucket;
use sluice_api::source::helm::{
    CHART_PACKAGE_SUCCEEDED_REASON, CHART_PULL_SUCCEEDED_REASON, HELM_CHART_KIND, HelmChart,
    HelmChartSourceKind, HelmChartSpec, HelmChartStatus, HelmRepository, ReconcileStrategy,
};
use sluice_api::source::oci::HELM_CHART_LAYER_MEDIA_TYPE;
use sluice_helm::{BuildError, BuildOptions, BuildReason};
use sluice_runtime::Failure;

use crate::api::{self, Artifact, GitRepository};
use crate::http::{HttpClient, HttpError};
use crate::reconciler::{
    Ctx, SourceKind, SourceStatus, Stored, blocking, fetch_failure, new_artifact, source_status,
    spec_accessors, storage_failure, store,
};

/// The kind's name.
pub const KIND: &str = HELM_CHART_KIND;

/// The largest chart archive downloaded or packaged (Flux's
/// `--helm-chart-max-size` default).
pub const MAX_CHART_BYTES: u64 = 10 << 20;

/// Registry and repository operations of one chart are bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The bound of packaging a chart from Git, which may download dependencies
/// from several repositories.
const BUILD_WITH_DEPENDENCIES_TIMEOUT: Duration = Duration::from_secs(300);

source_status!(url: HelmChartStatus);

/// What a HelmChart records beside its artifact.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    chart_name: String,
    source_revision: Option<String>,
    values_files: Vec<String>,
}

impl SourceKind for HelmChart {
    type Status = HelmChartStatus;
    type Observed = Observed;
    const KIND: &'static str = KIND;
    const LATEST_LINK: Option<&'static str> = Some("latest.tar.gz");
    const CLEARED_ON_SUCCESS: &'static [&'static str] = &[
        flux::FETCH_FAILED_CONDITION,
        BUILD_FAILED_CONDITION,
        flux::ARTIFACT_OUTDATED_CONDITION,
        flux::STORAGE_OPERATION_FAILED_CONDITION,
    ];

    spec_accessors!(HelmChartStatus);
    fn record(&self, status: &mut HelmChartStatus, observed: &Observed) {
        status.observed_chart_name = Some(observed.chart_name.clone());
        status.observed_source_artifact_revision = observed.source_revision.clone();
        status.observed_values_files =
            (!observed.values_files.is_empty()).then(|| observed.values_files.clone());
    }
    /// A new source artifact (an index, a commit) makes the chart due.
    async fn fingerprint_extra(obj: &Arc<Self>, ctx: &Arc<Ctx>) -> Vec<String> {
        let ns = obj.namespace().unwrap_or_default();
        let name = &obj.spec.source_ref.name;
        let revision = match obj.spec.source_ref.kind {
            HelmChartSourceKind::HelmRepository => {
                source_revision::<HelmRepository>(ctx, &ns, name).await
            }
            HelmChartSourceKind::GitRepository => {
                source_revision::<GitRepository>(ctx, &ns, name).await
            }
            HelmChartSourceKind::Bucket => source_revision::<Bucket>(ctx, &ns, name).await,
            _ => None,
        };
        vec![revision.unwrap_or_default()]
    }
    async fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: HelmChartStatus,
    ) -> Result<Stored<Observed>, Failure> {
        sync(&obj, &ctx, &old).await
    }
}

/// The HelmChart controller: its own watch, plus HelmRepositories,
/// GitRepositories and Buckets, whose changes wake the charts built from
/// them.
pub(crate) fn controller(
    client: &kube::Client,
    scope: &sluice_runtime::WatchScope,
    api: Api<HelmChart>,
) -> Controller<HelmChart> {
    let controller = Controller::new(api, scope.watcher_config());
    let store = controller.store();
    let charts_of = move |kind: HelmChartSourceKind, ns: Option<String>, name: String| {
        store
            .state()
            .into_iter()
            .filter(|c| {
                c.spec.source_ref.kind == kind
                    && c.spec.source_ref.name == name
                    && c.namespace() == ns
            })
            .map(|c| ObjectRef::from_obj(&*c))
            .collect::<Vec<_>>()
    };
    let by_repo = charts_of.clone();
    let by_bucket = charts_of.clone();
    // Sources are watched without the sharding selector: a chart's source
    // need not carry the chart's shard label.
    let all = sluice_runtime::WatchScope {
        namespace: scope.namespace.clone(),
        label_selector: None,
    };
    controller
        .watches(
            all.api::<HelmRepository>(client),
            all.watcher_config(),
            move |repo: HelmRepository| {
                by_repo(
                    HelmChartSourceKind::HelmRepository,
                    repo.namespace(),
                    repo.name_any(),
                )
            },
        )
        .watches(
            all.api::<GitRepository>(client),
            all.watcher_config(),
            move |repo: GitRepository| {
                charts_of(
                    HelmChartSourceKind::GitRepository,
                    repo.namespace(),
                    repo.name_any(),
                )
            },
        )
        .watches(
            all.api::<Bucket>(client),
            all.watcher_config(),
            move |bucket: Bucket| {
                by_bucket(
                    HelmChartSourceKind::Bucket,
                    bucket.namespace(),
                    bucket.name_any(),
                )
            },
        )
}

/// A chart build failure as Flux reports it: `<summary>: <cause>`, on
/// FetchFailed (reference and pull errors) or BuildFailed (metadata,
/// values, dependencies, packaging); the persistent ones stall until the
/// spec or the source changes (the source's change wakes the chart through
/// its watch).
fn chart_failure(e: BuildError) -> Failure {
    let condition = match e.reason {
        BuildReason::ChartReference | BuildReason::ChartPull => flux::FETCH_FAILED_CONDITION,
        _ => BUILD_FAILED_CONDITION,
    };
    let f = Failure::new(e.reason.reason(), e.to_string()).with_condition(condition);
    if e.reason.is_persistent() {
        Failure { stalled: true, ..f }
    } else {
        f
    }
}

fn build_failure(reason: BuildReason, message: impl std::fmt::Display) -> Failure {
    chart_failure(BuildError {
        reason,
        message: message.to_string(),
    })
}

/// Where the chart comes from, resolved before the blocking work.
enum Origin {
    /// An HTTP repository's stored index.
    Index {
        index_path: PathBuf,
        repo_url: String,
        creds: crate::auth::Credentials,
        tls: crate::auth::Tls,
        pass_credentials: bool,
    },
    /// An OCI repository (`oci://host/path`, the chart below it).
    Oci {
        client: sluice_oci::Client,
        url: String,
    },
    /// A GitRepository's or Bucket's artifact on disk.
    Tarball {
        artifact_path: PathBuf,
        digest: String,
        /// For dependencies that name a chart repository.
        repositories: crate::helm_dependencies::Repositories,
    },
}

/// The built chart: what was stored and how it was made.
struct Built {
    written: Option<crate::storage::Written>,
    name: String,
    version: String,
    packaged: bool,
    /// The values files merged (`None` for a reused chart).
    values_files: Option<Vec<String>>,
}

async fn sync(
    obj: &HelmChart,
    ctx: &Arc<Ctx>,
    old: &HelmChartStatus,
) -> Result<Stored<Observed>, Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    if spec.verification.is_some() {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.verify (cosign/notation signature verification) is not supported by sluice",
        ));
    }
    let source_name = &spec.source_ref.name;
    let (origin, source_revision) = match &spec.source_ref.kind {
        HelmChartSourceKind::HelmRepository => {
            let api: Api<HelmRepository> = Api::namespaced(ctx.client.clone(), &ns);
            let repo = get_source(&api, "helmrepositories", source_name).await?;
            if repo.spec.is_oci() {
                let (opts, fingerprint) = crate::oci_repository::client_options(
                    ctx,
                    &ns,
                    repo.spec.secret_ref.as_ref().map(|r| r.name.as_str()),
                    None,
                    repo.spec.cert_secret_ref.as_ref().map(|r| r.name.as_str()),
                    repo.spec.is_insecure(),
                    repo.spec.timeout().unwrap_or(TIMEOUT),
                )
                .await?;
                let client = ctx
                    .oci_clients
                    .get(&fingerprint, opts)
                    .map_err(|e| oci_pull_error(&e))?;
                (
                    Origin::Oci {
                        client,
                        url: repo.spec.url.clone(),
                    },
                    None,
                )
            } else {
                let artifact = source_artifact(
                    ctx,
                    repo.status.as_ref().and_then(|s| s.artifact.as_ref()),
                    spec,
                )?;
                let (creds, tls) =
                    crate::helm_repository::repository_auth(ctx, &ns, &repo.spec).await?;
                (
                    Origin::Index {
                        index_path: local(ctx, &artifact)?,
                        repo_url: repo.spec.url.clone(),
                        creds,
                        tls,
                        pass_credentials: repo.spec.pass_credentials(),
                    },
                    Some(artifact.revision),
                )
            }
        }
        HelmChartSourceKind::GitRepository => {
            tarball::<GitRepository>(ctx, &ns, "gitrepositories", source_name, spec).await?
        }
        HelmChartSourceKind::Bucket => {
            tarball::<Bucket>(ctx, &ns, "buckets", source_name, spec).await?
        }
        other => {
            return Err(Failure::stalled(
                flux::UNSUPPORTED_FIELD_REASON,
                format!(
                    "spec.sourceRef.kind '{}' is not a HelmChart source (HelmRepository, GitRepository or Bucket)",
                    other.as_str()
                ),
            ));
        }
    };

    // Build metadata Flux appends to the version, so a consumer notices a
    // new source revision (Git, `reconcileStrategy: Revision`) or new values.
    // Flux's GetValuesFiles: `["values.yaml"]` alone is the chart's own
    // values, nothing to merge.
    let values_files: Vec<String> = BuildOptions {
        values_files: spec.values_files().to_vec(),
        ..Default::default()
    }
    .effective_values_files()
    .to_vec();
    let version_metadata = sluice_helm::build::version_metadata(
        spec.source_ref.kind.as_str(),
        source_revision.as_deref().unwrap_or_default(),
        spec.reconcile_strategy() == ReconcileStrategy::Revision
            && matches!(
                spec.source_ref.kind,
                HelmChartSourceKind::GitRepository | HelmChartSourceKind::Bucket
            ),
        !values_files.is_empty(),
        obj.metadata.generation.unwrap_or_default(),
    );

    // The stored chart, reusable when nothing it was made from changed.
    let reusable = old
        .artifact
        .clone()
        .filter(|a| ctx.storage.exists(a))
        .filter(|_| old.observed_chart_name.as_deref() == Some(spec.chart.as_str()))
        .filter(|_| old.observed_generation == obj.metadata.generation);

    let storage = ctx.storage.clone();
    let chart = spec.chart.clone();
    let version = spec.version().to_string();
    let ignore_missing = spec.ignore_missing_values_files();
    let (ns2, name2) = (ns.clone(), name.clone());
    let values2 = values_files.clone();
    // A chart from Git may download its dependencies, each bounded by its
    // repository's timeout.
    let bound = match origin {
        Origin::Tarball { .. } => BUILD_WITH_DEPENDENCIES_TIMEOUT,
        _ => TIMEOUT,
    };
    let built = blocking(
        bound,
        |m| build_failure(BuildReason::ChartPull, m),
        move || {
            build(
                &storage,
                origin,
                &BuildSpec {
                    ns: &ns2,
                    name: &name2,
                    chart: &chart,
                    version: &version,
                    values_files: &values2,
                    ignore_missing,
                    version_metadata: &version_metadata,
                    reusable: reusable.as_ref(),
                },
            )
        },
    )
    .await?;

    // The values files actually merged (missing ones left out when
    // `ignoreMissingValuesFiles`); a reused chart keeps what it recorded.
    let values_files = built
        .values_files
        .clone()
        .unwrap_or_else(|| old.observed_values_files.clone().unwrap_or_default());
    let mut summary = format!(
        "{} '{}' chart with version '{}'",
        if built.packaged { "packaged" } else { "pulled" },
        built.name,
        built.version
    );
    if !values_files.is_empty() {
        summary.push_str(&format!(
            " and merged values files [{}]",
            values_files.join(" ")
        ));
    }
    let reason = if built.packaged {
        CHART_PACKAGE_SUCCEEDED_REASON
    } else {
        CHART_PULL_SUCCEEDED_REASON
    };
    let observed = Observed {
        chart_name: spec.chart.clone(),
        source_revision,
        values_files,
    };
    let (artifact, event) = match built.written {
        None => match &old.artifact {
            Some(a) => (a.clone(), None),
            None => return Err(storage_failure("the stored chart disappeared")),
        },
        Some(written) => {
            let artifact =
                new_artifact(ctx, KIND, &ns, &name, written, built.version.clone(), None);
            (artifact, Some((reason, summary.clone())))
        }
    };
    Ok(Stored {
        artifact,
        reason,
        message: summary,
        event,
        observed,
    })
}

async fn get_source<K>(api: &Api<K>, resource: &str, name: &str) -> Result<K, Failure>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(fetch_failure(
            "SourceUnavailable",
            format!(
                "failed to get source: {resource}.{} \"{name}\" not found",
                api::GROUP
            ),
        )),
        Err(e) => Err(fetch_failure(
            "SourceUnavailable",
            format!("failed to get source: {e}"),
        )),
    }
}

/// The artifact revision of the source `name` of kind `K`, if it has one.
async fn source_revision<K: SourceKind>(ctx: &Ctx, ns: &str, name: &str) -> Option<String> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let source = api.get_opt(name).await.ok().flatten()?;
    source
        .status()
        .and_then(|s| s.artifact())
        .map(|a| a.revision.clone())
}

/// A GitRepository's or Bucket's artifact as the chart's origin (the chart
/// a path in it), with the artifact's revision.
async fn tarball<K: SourceKind>(
    ctx: &Arc<Ctx>,
    ns: &str,
    resource: &str,
    name: &str,
    spec: &HelmChartSpec,
) -> Result<(Origin, Option<String>), Failure> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let source = get_source(&api, resource, name).await?;
    let artifact = source_artifact(ctx, source.status().and_then(|s| s.artifact()), spec)?;
    Ok((
        Origin::Tarball {
            artifact_path: local(ctx, &artifact)?,
            digest: artifact.digest.clone(),
            repositories: crate::helm_dependencies::Repositories::new(ctx.clone(), ns),
        },
        Some(artifact.revision),
    ))
}

fn source_artifact(
    ctx: &Ctx,
    artifact: Option<&Artifact>,
    spec: &HelmChartSpec,
) -> Result<Artifact, Failure> {
    match artifact.filter(|a| ctx.storage.exists(a)) {
        Some(a) => Ok(a.clone()),
        None => Err(fetch_failure(
            "NoSourceArtifact",
            format!(
                "no artifact available for {} source '{}'",
                spec.source_ref.kind.as_str(),
                spec.source_ref.name
            ),
        )),
    }
}

fn local(ctx: &Ctx, artifact: &Artifact) -> Result<PathBuf, Failure> {
    ctx.storage.local_path(artifact).ok_or_else(|| {
        fetch_failure(
            flux::READ_OPERATION_FAILED_REASON,
            format!(
                "failed to open source artifact: invalid path '{}'",
                artifact.path
            ),
        )
    })
}

struct BuildSpec<'a> {
    ns: &'a str,
    name: &'a str,
    chart: &'a str,
    version: &'a str,
    values_files: &'a [String],
    ignore_missing: bool,
    version_metadata: &'a str,
    reusable: Option<&'a Artifact>,
}

/// Resolves, fetches or packages the chart, and stores it unless the stored
/// one is the same.
fn build(
    storage: &crate::storage::Storage,
    origin: Origin,
    b: &BuildSpec<'_>,
) -> Result<Built, Failure> {
    let options = BuildOptions {
        values_files: b.values_files.to_vec(),
        ignore_missing_values_files: b.ignore_missing,
        version_metadata: b.version_metadata.to_string(),
        ..Default::default()
    };
    let pull = |m: String| build_failure(BuildReason::ChartPull, m);
    // Flux's `requiresPackaging` of a chart from a repository.
    let remote_packaging = !b.values_files.is_empty() || !b.version_metadata.is_empty();
    let built = match origin {
        Origin::Index {
            index_path,
            repo_url,
            creds,
            tls,
            pass_credentials,
        } => {
            let file = std::fs::File::open(&index_path).map_err(|e| {
                fetch_failure(
                    flux::READ_OPERATION_FAILED_REASON,
                    format!("failed to read the repository index: {e}"),
                )
            })?;
            let cv = sluice_helm::repo::resolve(std::io::BufReader::new(file), b.chart, b.version)
                .map_err(|e| {
                    build_failure(
                        BuildReason::ChartReference,
                        format!("failed to get chart version for remote reference: {e}"),
                    )
                })?;
            if let Some(same) = reuse(
                b,
                b.chart,
                &with_metadata(cv.version(), b.version_metadata),
                remote_packaging,
            ) {
                return Ok(same);
            }
            let url = cv.urls.first().ok_or_else(|| {
                pull(format!(
                    "chart '{}' version '{}' has no download URL",
                    b.chart,
                    cv.version()
                ))
            })?;
            let url = sluice_helm::repo::resolve_reference_url(&repo_url, url)
                .map_err(|e| pull(format!("invalid chart URL '{url}': {e}")))?;
            let client = HttpClient::new(&creds, &tls, TIMEOUT).map_err(|e| pull(e.to_string()))?;
            let mut archive = Vec::new();
            client
                .download(
                    &url,
                    sluice_helm::repo::sends_credentials(&repo_url, &url, pass_credentials),
                    MAX_CHART_BYTES,
                    &mut archive,
                )
                .map_err(|e| {
                    let f = pull(format!(
                        "failed to download chart for remote reference: {e}"
                    ));
                    match e {
                        HttpError::Auth(_) => Failure {
                            reason: flux::AUTHENTICATION_FAILED_REASON.into(),
                            ..f
                        },
                        _ => f,
                    }
                })?;
            sluice_helm::build::build_from_archive(archive, &options).map_err(chart_failure)?
        }
        Origin::Oci { client, url } => {
            let chart_url = format!("{}/{}", url.trim_end_matches('/'), b.chart);
            let reference = sluice_oci::Reference::parse(&chart_url).map_err(|e| {
                Failure::stalled(
                    URL_INVALID_REASON,
                    format!("invalid OCI registry URL: {}", e.message()),
                )
            })?;
            let tag = oci_tag(&client, &reference, b)?;
            let version = sluice_semver::TagStyle::Helm.tag_to_version(&tag);
            if let Some(same) = reuse(
                b,
                b.chart,
                &with_metadata(&version, b.version_metadata),
                remote_packaging,
            ) {
                return Ok(same);
            }
            let pulled = client
                .manifest(&reference, &sluice_oci::Target::Tag(tag.clone()))
                .map_err(|e| oci_pull_error(&e))?;
            let layer = pulled
                .manifest
                .layers
                .iter()
                .find(|l| l.media_type == HELM_CHART_LAYER_MEDIA_TYPE)
                .ok_or_else(|| {
                    pull(format!(
                        "failed to download chart for remote reference: '{chart_url}:{tag}' has no layer of media type '{HELM_CHART_LAYER_MEDIA_TYPE}'"
                    ))
                })?;
            let mut archive = Vec::new();
            client
                .fetch_blob(&reference, &layer.digest, &mut archive, MAX_CHART_BYTES)
                .map_err(|e| oci_pull_error(&e))?;
            sluice_helm::build::build_from_archive(archive, &options).map_err(chart_failure)?
        }
        Origin::Tarball {
            artifact_path,
            digest,
            repositories,
        } => {
            let options = BuildOptions {
                remote: Some(&repositories),
                ..options
            };
            let work = tempfile::Builder::new()
                .prefix(".chart-")
                .tempdir_in(storage.root())
                .map_err(|e| {
                    storage_failure(format!("failed to create temporary working directory: {e}"))
                })?;
            let src = work.path();
            sluice_git::archive::unpack_file(&artifact_path, &digest, src).map_err(|e| {
                fetch_failure(flux::FAILED_REASON, format!("artifact untar error: {e:#}"))
            })?;
            let (chart_name, version) = sluice_helm::build::local_identity(src, b.chart, &options)
                .map_err(chart_failure)?;
            let packaging = sluice_helm::build::local_needs_packaging(src, b.chart, &options);
            if let Some(same) = reuse(b, &chart_name, &version, packaging) {
                return Ok(same);
            }
            sluice_helm::build::build_local(src, b.chart, &options).map_err(chart_failure)?
        }
    };
    if built.archive.len() as u64 > MAX_CHART_BYTES {
        return Err(build_failure(
            BuildReason::ChartPackage,
            format!(
                "the packaged chart is {} bytes, more than the limit of {MAX_CHART_BYTES}",
                built.archive.len()
            ),
        ));
    }
    let written = store(storage, KIND, b.ns, b.name, &built.file_name, |out| {
        out.write_all(&built.archive)
            .map_err(|e| storage_failure(format!("unable to copy Helm chart to storage: {e}")))
    })?;
    Ok(Built {
        written: Some(written),
        name: built.name,
        version: built.version,
        packaged: built.packaged,
        values_files: Some(built.values_files),
    })
}

/// The stored chart when it has this version already; `packaged`: whether
/// the build would have packaged it (Flux reports a reused chart so).
fn reuse(b: &BuildSpec<'_>, name: &str, version: &str, packaged: bool) -> Option<Built> {
    let a = b.reusable?;
    (a.revision == version).then(|| Built {
        written: None,
        name: name.to_string(),
        version: version.to_string(),
        packaged,
        values_files: None,
    })
}

/// `version` with Flux's build metadata put in place of any it had
/// (`1.2.3+abc.4`).
fn with_metadata(version: &str, metadata: &str) -> String {
    if metadata.is_empty() {
        return version.to_string();
    }
    match version.split_once('+') {
        Some((core, _)) => format!("{core}+{metadata}"),
        None => format!("{version}+{metadata}"),
    }
}

/// The tag of the wanted version in an OCI repository: an exact version is
/// its own tag; a constraint is resolved among the tags.
fn oci_tag(
    client: &sluice_oci::Client,
    reference: &sluice_oci::Reference,
    b: &BuildSpec<'_>,
) -> Result<String, Failure> {
    sluice_oci::helm::version_tag(client, reference, b.version)
        .map_err(|e| oci_pull_error(&e))?
        .map_err(|e| {
            build_failure(
                BuildReason::ChartReference,
                format!("failed to get chart version for remote reference: {e}"),
            )
        })
}

fn oci_pull_error(e: &sluice_oci::Error) -> Failure {
    let f = build_failure(
        BuildReason::ChartPull,
        format!(
            "failed to download chart for remote reference: {}",
            e.message()
        ),
    );
    if e.kind() == sluice_oci::ErrorKind::Auth {
        Failure {
            reason: flux::AUTHENTICATION_FAILED_REASON.into(),
            ..f
        }
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_metadata_is_appended_as_flux_does() {
        assert_eq!(with_metadata("1.2.3", ""), "1.2.3");
        assert_eq!(
            with_metadata("1.2.3", "abcdef012345.4"),
            "1.2.3+abcdef012345.4"
        );
        assert_eq!(with_metadata("1.2.3+old", "7"), "1.2.3+7");
    }

    #[test]
    fn failures_name_flux_reasons_and_conditions() {
        let f = build_failure(
            BuildReason::ValuesFiles,
            "no values file found at path 'x.yaml'",
        );
        assert_eq!(f.reason, "ValuesFilesError");
        assert_eq!(f.condition, Some(BUILD_FAILED_CONDITION));
        assert_eq!(
            f.message,
            "values files merge error: no values file found at path 'x.yaml'"
        );
        assert!(f.stalled);
        let f = build_failure(BuildReason::ChartPull, "timeout");
        assert_eq!(f.reason, "ChartPullError");
        assert_eq!(f.condition, Some(flux::FETCH_FAILED_CONDITION));
        assert!(!f.stalled);
    }
}
