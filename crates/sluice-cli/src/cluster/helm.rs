//! The HelmReleases of `sluice build cluster`, each rendered with its chart
//! as the controller renders it (`sluice_helmrelease::build`): `spec.values`
//! with `spec.valuesFrom` read from the ConfigMaps and Secrets the repository
//! defines, the release name and namespace helm-controller derives, its
//! post-renderers, and the chart's CRDs unless `install.crds: Skip`.
//!
//! Charts come from the repository itself (a `spec.chart` whose source is
//! the bootstrap's `flux-system` GitRepository) or from an HTTP(S)
//! HelmRepository the repository defines (its `index.yaml` and the archive
//! are downloaded). Any other source (OCI, credentials, another Git
//! repository, `chartRef`) is reported as not rendered, with why.

use std::io::Cursor;

use serde_json::Value;
use sluice_api::HelmRelease;
use sluice_helm::chart::{Chart, Limits};
use sluice_helm::values_from::Fetched;
use sluice_render::cluster::{BOOTSTRAP_SOURCE, ClusterBuild};

/// What became of one HelmRelease.
pub(super) enum HelmOutcome {
    /// Rendered: `name@version` of the chart, and the objects.
    Rendered {
        id: String,
        chart: String,
        objects: Vec<Value>,
    },
    /// Its chart or values are wrong: the error.
    Failed { id: String, error: String },
    /// Not renderable offline here: why.
    Skipped { id: String, why: String },
}

/// Why a chart was not loaded.
enum NoChart {
    Skip(String),
    Fail(String),
}

/// Renders every HelmRelease of `build`.
pub(super) async fn render_all(build: &ClusterBuild) -> Vec<HelmOutcome> {
    let mut out = Vec::new();
    for v in &build.helm_releases {
        let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
        let id = format!(
            "{ns}/{}",
            v["metadata"]["name"].as_str().unwrap_or_default()
        );
        let hr: HelmRelease = match serde_json::from_value(v.clone()) {
            Ok(hr) => hr,
            Err(e) => {
                let error = format!("not a valid HelmRelease: {e}");
                out.push(HelmOutcome::Failed { id, error });
                continue;
            }
        };
        out.push(match chart_of(&hr, ns, build).await {
            Err(NoChart::Skip(why)) => HelmOutcome::Skipped { id, why },
            Err(NoChart::Fail(error)) => HelmOutcome::Failed { id, error },
            Ok(chart) => {
                let label = format!("{}@{}", chart.metadata.name, chart.metadata.version);
                match render(&hr, ns, chart, build).await {
                    Ok(objects) => HelmOutcome::Rendered {
                        id,
                        chart: label,
                        objects,
                    },
                    Err(error) => HelmOutcome::Failed { id, error },
                }
            }
        });
    }
    out
}

/// The chart of `hr` (in namespace `ns`).
async fn chart_of(hr: &HelmRelease, ns: &str, build: &ClusterBuild) -> Result<Chart, NoChart> {
    let Some(template) = &hr.spec.chart else {
        return Err(NoChart::Skip(
            "its chart comes from spec.chartRef (an OCIRepository or HelmChart), which build cluster does not fetch"
                .into(),
        ));
    };
    let spec = &template.spec;
    let src = &spec.source_ref;
    let src_ns = src.namespace.as_deref().unwrap_or(ns);
    let kind = src.kind.to_string();
    let limits = Limits::default();
    match kind.as_str() {
        "GitRepository" if src.name == BOOTSTRAP_SOURCE => {
            let rel = spec.chart.trim_start_matches("./");
            if rel.split('/').any(|p| p == "..") {
                return Err(NoChart::Fail(format!(
                    "chart {:?} is outside the repository",
                    spec.chart
                )));
            }
            let dir = build.root.join(rel);
            sluice_helm::chart::load_dir(&dir, &limits)
                .map_err(|e| NoChart::Fail(format!("chart {}: {e}", spec.chart)))
        }
        "HelmRepository" => {
            let repo = build
                .helm_sources
                .iter()
                .find(|s| {
                    s["kind"] == "HelmRepository"
                        && s["metadata"]["namespace"] == src_ns
                        && s["metadata"]["name"] == src.name.as_str()
                })
                .ok_or_else(|| {
                    NoChart::Skip(format!(
                        "its HelmRepository {src_ns}/{} is not defined in the repository",
                        src.name
                    ))
                })?;
            let repo_id = format!("HelmRepository {src_ns}/{}", src.name);
            if repo["spec"]["type"] == "oci" {
                return Err(NoChart::Skip(format!(
                    "its {repo_id} is of type oci: build cluster does not pull OCI charts"
                )));
            }
            if !repo["spec"]["secretRef"].is_null() {
                return Err(NoChart::Skip(format!(
                    "its {repo_id} needs credentials (spec.secretRef)"
                )));
            }
            let url = repo["spec"]["url"].as_str().unwrap_or_default();
            let version = spec.version.as_deref().unwrap_or("*");
            download(url, &spec.chart, version, &limits)
                .await
                .map_err(|e| NoChart::Fail(format!("{repo_id} ({url}): {e}")))
        }
        _ => Err(NoChart::Skip(format!(
            "its chart source {kind} {src_ns}/{} is not this repository",
            src.name
        ))),
    }
}

/// `chart` at the newest `version` match from the HTTP(S) Helm repository
/// at `url`.
async fn download(url: &str, chart: &str, version: &str, limits: &Limits) -> Result<Chart, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let get = |u: String| {
        let http = http.clone();
        async move {
            let resp = http
                .get(&u)
                .send()
                .await
                .map_err(|e| format!("GET {u}: {}", e.without_url()))?;
            if !resp.status().is_success() {
                return Err(format!("GET {u}: {}", resp.status()));
            }
            resp.bytes()
                .await
                .map_err(|e| format!("GET {u}: {}", e.without_url()))
        }
    };
    let index = get(format!("{}/index.yaml", url.trim_end_matches('/'))).await?;
    let found = sluice_helm::repo::resolve(Cursor::new(&index[..]), chart, version)
        .map_err(|e| e.to_string())?;
    let first = found
        .urls
        .first()
        .ok_or_else(|| format!("chart {chart} {} has no URL", found.version()))?;
    let archive_url = sluice_helm::repo::resolve_reference_url(url, first)?;
    let archive = get(archive_url.clone()).await?;
    sluice_helm::chart::load_archive(Cursor::new(&archive[..]), limits)
        .map_err(|e| format!("{archive_url}: {e}"))
}

/// `hr` rendered with `chart`, values from the repository's objects.
async fn render(
    hr: &HelmRelease,
    ns: &str,
    chart: Chart,
    build: &ClusterBuild,
) -> Result<Vec<Value>, String> {
    let values = sluice_helmrelease::build::values_with(hr, true, |kind, name| {
        match build
            .data
            .get(&(ns.to_string(), kind.to_string(), name.to_string()))
        {
            Some(d) => Fetched::Found(
                d.iter()
                    .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                    .collect(),
            ),
            None => Fetched::NotFound(format!(
                "{kind} {ns}/{name} is not defined in the repository"
            )),
        }
    })
    .map_err(|e| e.to_string())?;
    let opts = sluice_helmrelease::build::render_options(hr, None);
    let include_crds = crate::helmrelease::installs_crds(hr);
    let text = tokio::task::spawn_blocking(move || {
        let release =
            sluice_helm::render::render(&chart, &values, &opts).map_err(|e| e.to_string())?;
        release.template_output(&sluice_helm::render::PrintOptions {
            include_crds,
            ..Default::default()
        })
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut objects = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            objects.push(v);
        }
    }
    Ok(objects)
}
