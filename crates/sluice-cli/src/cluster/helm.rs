//! The HelmReleases of `sluice build cluster`, each rendered with its chart
//! as the controller renders it (`sluice_helmrelease::build`): `spec.values`
//! with `spec.valuesFrom` read from the ConfigMaps and Secrets the repository
//! defines, the release name and namespace helm-controller derives, its
//! post-renderers, and the chart's CRDs unless `install.crds: Skip`.
//!
//! Charts come from the repository itself (a chart path in the bootstrap's
//! `flux-system` GitRepository), from a HelmRepository the repository
//! defines (HTTP(S): `index.yaml`, then the archive; `type: oci`: the
//! registry's tags, then the chart layer), or from an OCIRepository named by
//! `spec.chartRef`; a `chartRef` to a HelmChart is followed to its source.
//! Charts are built as the source controller builds them (`valuesFiles`
//! merged, dependencies packaged: local ones from the repository, the
//! others from their chart repositories, with the credentials of the
//! HelmRepository the repository defines for that URL). Credentials and CAs come from the
//! Secrets the repository defines (SOPS-decrypted when a key is given).
//! What cannot be fetched from here (another Git repository, a cloud
//! provider's login, a ServiceAccount's pull secrets, a Secret the
//! repository lacks) is reported as not rendered, with why.

use std::collections::BTreeMap;
use std::io::Cursor;

use serde_json::Value;
use sluice_api::HelmRelease;
use sluice_api::source::helm::{HelmChartSpec, HelmRepositorySpec};
use sluice_api::source::oci::{HELM_CHART_LAYER_MEDIA_TYPE, OCIRepositorySpec, Wanted};
use sluice_helm::build::BuildOptions;
use sluice_helm::chart::{Chart, Limits};
use sluice_helm::values_from::Fetched;
use sluice_oci::{ClientOptions, Keychain, Reference, Target};
use sluice_render::cluster::{BOOTSTRAP_SOURCE, ClusterBuild};
use sluice_semver::TagStyle;

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

/// Where a chart is, once `chartRef` to a HelmChart is followed: Flux's
/// HelmChart spec, from a HelmRelease's `spec.chart` or a HelmChart object.
struct ChartSpec {
    chart: String,
    version: String,
    values_files: Vec<String>,
    ignore_missing_values_files: bool,
    /// The source: kind, namespace, name.
    kind: String,
    ns: String,
    name: String,
}

/// The chart of `hr` (in namespace `ns`).
async fn chart_of(hr: &HelmRelease, ns: &str, build: &ClusterBuild) -> Result<Chart, NoChart> {
    let spec = match (&hr.spec.chart_ref, &hr.spec.chart) {
        (Some(r), _) => {
            let ref_ns = r.namespace.as_deref().unwrap_or(ns);
            let kind = r.kind.to_string();
            let obj = source(build, &kind, ref_ns, &r.name)?;
            match kind.as_str() {
                "OCIRepository" => return oci_repository_chart(obj, ref_ns, build).await,
                "HelmChart" => {
                    let hc: HelmChartSpec =
                        serde_json::from_value(obj["spec"].clone()).map_err(|e| {
                            NoChart::Fail(format!("HelmChart {ref_ns}/{}: {e}", r.name))
                        })?;
                    ChartSpec {
                        chart: hc.chart,
                        version: hc.version.unwrap_or_default(),
                        values_files: hc.values_files.unwrap_or_default(),
                        ignore_missing_values_files: hc
                            .ignore_missing_values_files
                            .unwrap_or(false),
                        kind: hc.source_ref.kind.to_string(),
                        ns: ref_ns.to_string(),
                        name: hc.source_ref.name,
                    }
                }
                other => {
                    return Err(NoChart::Skip(format!(
                        "its spec.chartRef names a {other}, which is not a chart source"
                    )));
                }
            }
        }
        (None, Some(template)) => {
            let t = &template.spec;
            ChartSpec {
                chart: t.chart.clone(),
                version: t.version.clone().unwrap_or_default(),
                values_files: t.values_files.clone().unwrap_or_default(),
                ignore_missing_values_files: t.ignore_missing_values_files.unwrap_or(false),
                kind: t.source_ref.kind.to_string(),
                ns: t
                    .source_ref
                    .namespace
                    .clone()
                    .unwrap_or_else(|| ns.to_string()),
                name: t.source_ref.name.clone(),
            }
        }
        (None, None) => {
            return Err(NoChart::Fail(
                "it has neither spec.chart nor spec.chartRef".into(),
            ));
        }
    };
    let (values_files, ignore_missing) =
        (spec.values_files.clone(), spec.ignore_missing_values_files);
    let options = move || BuildOptions {
        values_files,
        ignore_missing_values_files: ignore_missing,
        ..Default::default()
    };
    let built = match spec.kind.as_str() {
        "GitRepository" if spec.name == BOOTSTRAP_SOURCE => {
            let remote = fetch_dependencies(build, &spec).await?;
            let root = build.root.clone();
            let chart = spec.chart.clone();
            blocking(move || {
                let opts = BuildOptions {
                    remote: Some(&remote),
                    ..options()
                };
                sluice_helm::build::build_local(&root, &chart, &opts)
            })
            .await
            .map_err(|e| NoChart::Fail(format!("chart {}: {e}", spec.chart)))?
        }
        "HelmRepository" => {
            let obj = source(build, "HelmRepository", &spec.ns, &spec.name)?;
            let repo_id = format!("HelmRepository {}/{}", spec.ns, spec.name);
            let repo: HelmRepositorySpec = serde_json::from_value(obj["spec"].clone())
                .map_err(|e| NoChart::Fail(format!("{repo_id}: {e}")))?;
            let archive = if repo.is_oci() {
                oci_chart(&repo, &spec, &repo_id, build).await?
            } else {
                http_chart(&repo, &spec, &repo_id, build).await?
            };
            blocking(move || sluice_helm::build::build_from_archive(archive, &options()))
                .await
                .map_err(|e| NoChart::Fail(format!("{repo_id}: chart {}: {e}", spec.chart)))?
        }
        kind => {
            return Err(NoChart::Skip(format!(
                "its chart source {kind} {}/{} is not this repository",
                spec.ns, spec.name
            )));
        }
    };
    sluice_helm::chart::load_archive(Cursor::new(&built.archive[..]), &Limits::default())
        .map_err(|e| NoChart::Fail(format!("chart {}: {e}", spec.chart)))
}

/// The archives of a repository chart's dependencies that name a chart
/// repository, fetched before the build (which runs off the runtime): an
/// error is the build's to report, with the dependency named.
struct Prefetched(Vec<(sluice_helm::Dependency, Result<Vec<u8>, String>)>);

impl sluice_helm::RemoteDependencies for Prefetched {
    fn fetch(&self, dep: &sluice_helm::Dependency) -> Result<Vec<u8>, String> {
        self.0
            .iter()
            .find(|(d, _)| d == dep)
            .map_or_else(|| Err("not fetched".to_string()), |(_, got)| got.clone())
    }
}

/// Fetches what [`Prefetched`] holds for the chart at `spec.chart` in the
/// repository, as the source controller resolves it: the HelmRepository of
/// the chart's namespace whose URL is the dependency's (normalized) gives
/// the credentials, else the repository is read anonymously.
async fn fetch_dependencies(build: &ClusterBuild, spec: &ChartSpec) -> Result<Prefetched, NoChart> {
    let root = build.root.clone();
    let chart = spec.chart.clone();
    let deps = blocking(move || {
        sluice_helm::build::remote_dependencies(&root, &chart, &Limits::default())
    })
    .await
    .map_err(|e| NoChart::Fail(format!("chart {}: {e}", spec.chart)))?;
    let mut out = Vec::with_capacity(deps.len());
    for dep in deps {
        let got = match dependency_archive(build, &spec.ns, &dep).await {
            Ok(archive) => Ok(archive),
            Err(NoChart::Fail(m)) => Err(m),
            Err(NoChart::Skip(why)) => {
                return Err(NoChart::Skip(format!(
                    "its chart {}'s dependency '{}': {why}",
                    spec.chart,
                    dep.effective_name()
                )));
            }
        };
        out.push((dep, got));
    }
    Ok(Prefetched(out))
}

/// One dependency's archive from its chart repository.
async fn dependency_archive(
    build: &ClusterBuild,
    ns: &str,
    dep: &sluice_helm::Dependency,
) -> Result<Vec<u8>, NoChart> {
    let url = sluice_helm::repo::normalize_url(&dep.repository);
    sluice_helm::repo::validate_dependency_url(&url).map_err(NoChart::Fail)?;
    let described = build.helm_sources.iter().find(|s| {
        s["kind"] == "HelmRepository"
            && s["metadata"]["namespace"] == ns
            && s["spec"]["url"]
                .as_str()
                .is_some_and(|u| sluice_helm::repo::normalize_url(u) == url)
    });
    let (repo_spec, repo_id) = match described {
        Some(obj) => {
            let id = format!(
                "HelmRepository {ns}/{}",
                obj["metadata"]["name"].as_str().unwrap_or_default()
            );
            let spec = serde_json::from_value(obj["spec"].clone())
                .map_err(|e| NoChart::Fail(format!("{id}: {e}")))?;
            (spec, id)
        }
        None => {
            let spec = serde_json::from_value(serde_json::json!({ "url": url }))
                .map_err(|e| NoChart::Fail(format!("{url}: {e}")))?;
            (spec, format!("chart repository {url}"))
        }
    };
    let chart = ChartSpec {
        chart: dep.name.clone(),
        version: dep.version.clone(),
        values_files: Vec::new(),
        ignore_missing_values_files: false,
        kind: "HelmRepository".into(),
        ns: ns.to_string(),
        name: String::new(),
    };
    if url.starts_with("oci://") {
        oci_chart(&repo_spec, &chart, &repo_id, build).await
    } else {
        http_chart(&repo_spec, &chart, &repo_id, build).await
    }
}

/// The source object `kind` `ns/name` the repository defines.
fn source<'b>(
    build: &'b ClusterBuild,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<&'b Value, NoChart> {
    build
        .helm_sources
        .iter()
        .find(|s| {
            s["kind"] == kind && s["metadata"]["namespace"] == ns && s["metadata"]["name"] == name
        })
        .ok_or_else(|| {
            NoChart::Skip(format!(
                "its {kind} {ns}/{name} is not defined in the repository"
            ))
        })
}

/// Runs blocking work (registry clients, chart packaging) off the runtime.
async fn blocking<T: Send + 'static, E: std::fmt::Display>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(move || f().map_err(|e| e.to_string())).await {
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    }
}

/// The data of Secret `ns/name` as the repository defines it (SOPS decrypted
/// when a key was given), for a source's `field` (`spec.secretRef`...).
fn secret_data<'b>(
    build: &'b ClusterBuild,
    ns: &str,
    name: &str,
    source_id: &str,
    field: &str,
) -> Result<&'b BTreeMap<String, String>, NoChart> {
    build
        .data
        .get(&(ns.to_string(), "Secret".to_string(), name.to_string()))
        .ok_or_else(|| {
            NoChart::Skip(format!(
                "its {source_id} needs Secret {ns}/{name} ({field}), which the repository does not define (or which could not be decrypted)"
            ))
        })
}

/// Registry credentials from a `secretRef`: a `.dockerconfigjson`, or
/// `username` and `password`, as the source controller reads them.
fn keychain(data: &BTreeMap<String, String>, subject: &str) -> Result<Keychain, NoChart> {
    let auth = sluice_oci::auth::secret_auth(
        &|k| data.get(k).map(|v| v.clone().into_bytes()),
        // The repository's data alone: a Secret's `type` is not kept.
        None,
        subject,
    )
    .map_err(NoChart::Fail)?;
    if let Some(config) = auth.docker_config {
        let parsed = sluice_oci::DockerConfig::parse(&config, subject)
            .map_err(|e| NoChart::Fail(e.message().to_string()))?;
        return Ok(Keychain::anonymous().with_config(parsed));
    }
    Ok(match auth.basic {
        Some((u, p)) => Keychain::with_credentials(sluice_oci::Credentials::basic(u, p)),
        None => Keychain::anonymous(),
    })
}

/// TLS material from a `certSecretRef`: `ca.crt`, `tls.crt`, `tls.key`.
fn tls(data: &BTreeMap<String, String>, subject: &str) -> Result<sluice_oci::TlsConfig, NoChart> {
    sluice_oci::auth::secret_tls(
        &|k| data.get(k).map(|v| v.clone().into_bytes()),
        false,
        subject,
    )
    .map_err(NoChart::Fail)
}

/// A registry client with a source's credentials and TLS.
fn registry_client(
    build: &ClusterBuild,
    ns: &str,
    source_id: &str,
    secret_ref: Option<&str>,
    cert_secret_ref: Option<&str>,
    insecure: bool,
) -> Result<ClientOptions, NoChart> {
    let mut opts = ClientOptions {
        insecure,
        timeout: std::time::Duration::from_secs(60),
        ..ClientOptions::default()
    };
    if let Some(name) = secret_ref {
        let data = secret_data(build, ns, name, source_id, "spec.secretRef")?;
        opts.keychain = keychain(data, &format!("secret '{ns}/{name}'"))?;
    }
    if let Some(name) = cert_secret_ref {
        let data = secret_data(build, ns, name, source_id, "spec.certSecretRef")?;
        opts.tls = tls(data, &format!("secret '{ns}/{name}'"))?;
    }
    Ok(opts)
}

/// A chart from an OCI HelmRepository: `<url>/<chart>` at the version's tag.
async fn oci_chart(
    repo: &HelmRepositorySpec,
    spec: &ChartSpec,
    repo_id: &str,
    build: &ClusterBuild,
) -> Result<Vec<u8>, NoChart> {
    if repo
        .provider
        .as_ref()
        .is_some_and(|p| p.as_str() != "generic")
    {
        return Err(NoChart::Skip(format!(
            "its {repo_id} authenticates with a cloud provider (spec.provider), which build cluster does not"
        )));
    }
    let opts = registry_client(
        build,
        &spec.ns,
        repo_id,
        repo.secret_ref.as_ref().map(|r| r.name.as_str()),
        repo.cert_secret_ref.as_ref().map(|r| r.name.as_str()),
        repo.is_insecure(),
    )?;
    let url = format!("{}/{}", repo.url.trim_end_matches('/'), spec.chart);
    let version = spec.version.clone();
    blocking(move || -> Result<Vec<u8>, String> {
        let reference = Reference::parse(&url).map_err(|e| format!("{url}: {}", e.message()))?;
        let client = sluice_oci::Client::new(opts).map_err(|e| e.message().to_string())?;
        let tag = sluice_oci::helm::version_tag(&client, &reference, &version)
            .map_err(|e| format!("{url}: {}", e.message()))?
            .map_err(|e| format!("{url}: {e}"))?;
        let pulled = sluice_oci::helm::pull_chart(
            &client,
            &reference,
            &Target::Tag(tag),
            sluice_oci::helm::DEFAULT_MAX_CHART_BYTES,
        )
        .map_err(|e| e.message().to_string())?;
        Ok(pulled.tgz)
    })
    .await
    .map_err(|e| NoChart::Fail(format!("{repo_id}: {e}")))
}

/// The chart an OCIRepository (`chartRef`) points at: the layer its
/// `layerSelector` picks (a chart pushed by `helm push` has one).
async fn oci_repository_chart(
    obj: &Value,
    ns: &str,
    build: &ClusterBuild,
) -> Result<Chart, NoChart> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let id = format!("OCIRepository {ns}/{name}");
    let spec: OCIRepositorySpec = serde_json::from_value(obj["spec"].clone())
        .map_err(|e| NoChart::Fail(format!("{id}: {e}")))?;
    if spec.provider().as_str() != "generic" {
        return Err(NoChart::Skip(format!(
            "its {id} authenticates with a cloud provider (spec.provider), which build cluster does not"
        )));
    }
    if let Some(sa) = &spec.service_account_name {
        return Err(NoChart::Skip(format!(
            "its {id} pulls with the image pull secrets of ServiceAccount {ns}/{sa}, which build cluster does not read"
        )));
    }
    let opts = registry_client(
        build,
        ns,
        &id,
        spec.secret_ref.as_ref().map(|r| r.name.as_str()),
        spec.cert_secret_ref.as_ref().map(|r| r.name.as_str()),
        spec.is_insecure(),
    )?;
    let url = spec.url.clone();
    let wanted = spec.wanted();
    let media_type = spec.layer_media_type().map(str::to_string);
    let archive = blocking(move || -> Result<Vec<u8>, String> {
        let reference = Reference::parse(&url).map_err(|e| format!("{url}: {}", e.message()))?;
        let client = sluice_oci::Client::new(opts).map_err(|e| e.message().to_string())?;
        let registry = |e: sluice_oci::Error| format!("{url}: {}", e.message());
        let target = match wanted {
            Wanted::Digest(d) => Target::Digest(d),
            Wanted::Tag(t) => Target::Tag(t),
            Wanted::Semver { constraint, filter } => {
                let tags = client.list_tags(&reference).map_err(registry)?;
                let style = if media_type.as_deref() == Some(HELM_CHART_LAYER_MEDIA_TYPE) {
                    TagStyle::Helm
                } else {
                    TagStyle::Plain
                };
                let tag =
                    sluice_semver::latest_matching(&tags, &constraint, filter.as_deref(), style)
                        .map_err(|e| format!("{url}: {e}"))?;
                Target::Tag(tag.to_string())
            }
        };
        let pulled = client.manifest(&reference, &target).map_err(registry)?;
        let layer = sluice_oci::artifact::select_layer(&pulled.manifest, media_type.as_deref())
            .map_err(registry)?;
        client
            .fetch_blob_bytes(
                &reference,
                &layer.digest,
                sluice_oci::helm::DEFAULT_MAX_CHART_BYTES,
            )
            .map_err(registry)
    })
    .await
    .map_err(|e| NoChart::Fail(format!("{id}: {e}")))?;
    sluice_helm::chart::load_archive(Cursor::new(&archive[..]), &Limits::default())
        .map_err(|e| NoChart::Fail(format!("{id}: {e}")))
}

/// A chart from an HTTP(S) Helm repository: the newest `version` match in
/// its `index.yaml`, then the archive. Credentials go to the repository's
/// host, and to another host only with `passCredentials`, as Flux sends them.
async fn http_chart(
    repo: &HelmRepositorySpec,
    spec: &ChartSpec,
    repo_id: &str,
    build: &ClusterBuild,
) -> Result<Vec<u8>, NoChart> {
    let url = repo.url.trim_end_matches('/');
    let mut basic = None;
    if let Some(r) = &repo.secret_ref {
        let data = secret_data(build, &spec.ns, &r.name, repo_id, "spec.secretRef")?;
        match (data.get("username"), data.get("password")) {
            (Some(u), p) => basic = Some((u.clone(), p.cloned().unwrap_or_default())),
            (None, Some(_)) => {
                return Err(NoChart::Fail(format!(
                    "invalid auth option in Secret {}/{}: 'password' requires 'username' to be set",
                    spec.ns, r.name
                )));
            }
            (None, None) => {}
        }
    }
    let mut ca = None;
    if let Some(r) = &repo.cert_secret_ref {
        let data = secret_data(build, &spec.ns, &r.name, repo_id, "spec.certSecretRef")?;
        if data.contains_key("tls.crt") {
            return Err(NoChart::Skip(format!(
                "its {repo_id} uses a client certificate (spec.certSecretRef), which build cluster does not send"
            )));
        }
        ca = data.get("ca.crt").cloned();
    }
    let http = crate::http::client(ca.as_deref().map(str::as_bytes))
        .map_err(|e| NoChart::Fail(format!("{repo_id}: {e}")))?;
    let get = |u: String, auth: bool| {
        let mut req = http.get(&u);
        if let (true, Some((user, pass))) = (auth, &basic) {
            req = req.basic_auth(user, Some(pass));
        }
        async move {
            let resp = req
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
    let fail = |e: String| NoChart::Fail(format!("{repo_id} ({url}): {e}"));
    let index = get(format!("{url}/index.yaml"), true).await.map_err(fail)?;
    let version = if spec.version.is_empty() {
        "*"
    } else {
        &spec.version
    };
    let found = sluice_helm::repo::resolve(Cursor::new(&index[..]), &spec.chart, version)
        .map_err(|e| fail(e.to_string()))?;
    let first = found.urls.first().ok_or_else(|| {
        fail(format!(
            "chart {} {} has no URL",
            spec.chart,
            found.version()
        ))
    })?;
    let archive_url = sluice_helm::repo::resolve_reference_url(url, first).map_err(fail)?;
    let pass = sluice_helm::repo::sends_credentials(
        url,
        &archive_url,
        repo.pass_credentials.unwrap_or(false),
    );
    let archive = get(archive_url, pass).await.map_err(fail)?;
    Ok(archive.to_vec())
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
    let mut opts = sluice_helmrelease::build::render_options(hr, None);
    sluice_helmrelease::schemas::attach(&mut opts, &chart).await;
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
