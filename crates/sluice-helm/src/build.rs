//! Flux's HelmChart build (source-controller `internal/helm/chart`): a
//! chart from a source artifact (a directory or a `.tgz` at a path inside
//! the unpacked artifact), or a chart downloaded from a repository,
//! repackaged when Flux repackages it:
//!
//! * `valuesFiles` merged in order (Helm's map merge) into the packaged
//!   `values.yaml` (a missing file is an error unless
//!   `ignoreMissingValuesFiles`; `["values.yaml"]` alone changes nothing);
//! * the version given build metadata (`<version>+<metadata>`, see
//!   [`version_metadata`] for what Flux puts there);
//! * a chart directory's missing dependencies added: local ones
//!   (`file://…` or no repository) loaded from the artifact, remote ones
//!   through [`RemoteDependencies`], which the caller gives (the source
//!   controller and `sluice build cluster` fetch them from their chart
//!   repositories); without it a dependency that needs a repository and is
//!   not vendored under `charts/` is an error naming it.
//!
//! Errors carry Flux's reasons and read as Flux's (`values files merge
//! error: no values file found at path '/x.yaml' (reference 'x.yaml')`).

use std::path::Path;

use crate::chart::{Chart, ChartError, Dependency, Limits, Metadata};
use crate::package::{PackageOptions, package_to};
use crate::values::{encode_values, merge_maps, parse_values_file, parse_version, valid_metadata};

/// Why a build failed: Flux's `BuildErrorReason`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildReason {
    /// `InvalidChartReference`: the chart path or reference is not a chart.
    ChartReference,
    /// `ChartPullError`: the chart could not be read.
    ChartPull,
    /// `MetadataPatchError`: the version could not take the metadata.
    MetadataPatch,
    /// `ValuesFilesError`: a values file is missing or not a YAML map.
    ValuesFiles,
    /// `DependencyBuildError`: a dependency could not be added.
    DependencyBuild,
    /// `ChartPackageError`: loading or writing the chart failed.
    ChartPackage,
}

impl BuildReason {
    /// The reason as Flux writes it in conditions and events.
    pub fn reason(self) -> &'static str {
        match self {
            BuildReason::ChartReference => "InvalidChartReference",
            BuildReason::ChartPull => "ChartPullError",
            BuildReason::MetadataPatch => "MetadataPatchError",
            BuildReason::ValuesFiles => "ValuesFilesError",
            BuildReason::DependencyBuild => "DependencyBuildError",
            BuildReason::ChartPackage => "ChartPackageError",
        }
    }

    /// Flux's summary, the prefix of the message.
    pub fn summary(self) -> &'static str {
        match self {
            BuildReason::ChartReference => "invalid chart reference",
            BuildReason::ChartPull => "chart pull error",
            BuildReason::MetadataPatch => "chart metadata patch error",
            BuildReason::ValuesFiles => "values files merge error",
            BuildReason::DependencyBuild => "dependency build error",
            BuildReason::ChartPackage => "chart package error",
        }
    }

    /// Flux's `IsPersistentBuildErrorReason`: retrying without a change to
    /// the object or its source will not help (Flux stalls on these).
    pub fn is_persistent(self) -> bool {
        matches!(
            self,
            BuildReason::ChartReference | BuildReason::MetadataPatch | BuildReason::ValuesFiles
        )
    }
}

/// A failed build: `<summary>: <cause>`, as Flux's `BuildError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.summary())]
pub struct BuildError {
    pub reason: BuildReason,
    pub message: String,
}

impl BuildError {
    fn new(reason: BuildReason, message: impl std::fmt::Display) -> BuildError {
        BuildError {
            reason,
            message: message.to_string(),
        }
    }
}

/// Dependencies that need a chart repository, resolved by the caller (the
/// pure core has no network). Given a dependency as `Chart.yaml` lists it
/// (`repository` is its URL or `@alias`), returns the chart archive.
pub trait RemoteDependencies {
    fn fetch(&self, dependency: &Dependency) -> Result<Vec<u8>, String>;
}

/// Options of a build (Flux's `BuildOptions`).
#[derive(Clone, Default)]
pub struct BuildOptions<'a> {
    /// `spec.valuesFiles` (or the deprecated `spec.valuesFile`), in order,
    /// relative to the artifact root (a local chart) or to the chart (a
    /// downloaded chart).
    pub values_files: Vec<String>,
    /// `spec.ignoreMissingValuesFiles`.
    pub ignore_missing_values_files: bool,
    /// Build metadata for the version (see [`version_metadata`]); empty for
    /// none.
    pub version_metadata: String,
    pub limits: Limits,
    /// For dependencies that need a chart repository.
    pub remote: Option<&'a dyn RemoteDependencies>,
    /// Modification time of the archive entries.
    pub mtime: i64,
}

impl BuildOptions<'_> {
    /// Flux's `GetValuesFiles`: `["values.yaml"]` alone means none.
    pub fn effective_values_files(&self) -> &[String] {
        if self.values_files.len() == 1
            && crate::chart::clean_path(&self.values_files[0]) == "values.yaml"
        {
            return &[];
        }
        &self.values_files
    }
}

/// What a build produced (Flux's `Build`).
#[derive(Clone, Debug, PartialEq)]
pub struct Build {
    pub name: String,
    /// The version, with build metadata when asked.
    pub version: String,
    /// The chart archive. For a `.tgz` that needed no change, its bytes
    /// unchanged.
    pub archive: Vec<u8>,
    /// `<name>-<version>.tgz`.
    pub file_name: String,
    /// The values files merged into `values.yaml` (Flux's
    /// `status.observedValuesFiles`), in order, missing ones left out.
    pub values_files: Vec<String>,
    /// Dependencies added by the build (local and remote).
    pub resolved_dependencies: usize,
    /// Whether the chart was (re)packaged.
    pub packaged: bool,
}

/// Flux's `VersionMetadata` for a HelmChart built from a GitRepository or
/// Bucket artifact: with `reconcileStrategy: Revision`, the first 12 hex
/// characters of the revision's hash (`main@sha1:0123…` → `0123456789ab`;
/// for another `kind` the revision as is); when values files are set, the
/// object's generation, after a `.` if there is a revision part.
pub fn version_metadata(
    source_kind: &str,
    revision: &str,
    strategy_revision: bool,
    has_values_files: bool,
    generation: i64,
) -> String {
    let mut out = String::new();
    if strategy_revision {
        let mut rev = revision.to_string();
        if source_kind == "GitRepository" {
            rev = git_hash(revision).to_string();
        }
        if source_kind == "Bucket"
            && let Some((_, hex)) = revision.split_once(':')
            && !hex.is_empty()
        {
            rev = hex.to_string();
        }
        if source_kind == "GitRepository" || source_kind == "Bucket" {
            rev = rev.chars().take(12).collect();
        }
        out = rev;
    }
    if has_values_files {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&generation.to_string());
    }
    out
}

/// Flux's `git.ExtractHashFromRevision`: the hash of `<ref>@sha1:<hash>`,
/// `sha1:<hash>`, the legacy `<branch>/<hash>`, or a bare hash.
fn git_hash(rev: &str) -> &str {
    let rev = rev.rsplit_once('@').map(|(_, r)| r).unwrap_or(rev);
    if let Some((_, h)) = rev.split_once(':') {
        return h;
    }
    rev.rsplit_once('/').map(|(_, h)| h).unwrap_or(rev)
}

/// Masterminds `SetMetadata` + `String()`: `X.Y.Z[-pre]+<metadata>`.
fn set_build_metadata(version: &str, metadata: &str) -> Result<String, BuildError> {
    let mut v = parse_version(version).ok_or_else(|| {
        BuildError::new(
            BuildReason::MetadataPatch,
            format!("failed to parse version from chart metadata as SemVer: invalid semantic version: {version:?}"),
        )
    })?;
    if !metadata.is_empty() && !valid_metadata(metadata) {
        return Err(BuildError::new(
            BuildReason::MetadataPatch,
            "failed to set SemVer metadata on chart version: invalid metadata string",
        ));
    }
    v.metadata = metadata.to_string();
    Ok(v.to_string())
}

/// Flux's `requiresPackaging` of a local build: the chart is a directory,
/// or the version takes build metadata, or values files are merged (a
/// chart reused from the cache is reported as packaged by the same rule).
pub fn local_needs_packaging(root: &Path, chart_path: &str, opts: &BuildOptions<'_>) -> bool {
    let is_dir = crate::chart::secure_path(root, chart_path).is_ok_and(|(abs, _)| abs.is_dir());
    is_dir || !opts.version_metadata.is_empty() || !opts.effective_values_files().is_empty()
}

/// The name and version a local build will produce, without building:
/// Flux reads them first to compare with the cached artifact (a chart
/// already packaged under the same name and version is not rebuilt).
pub fn local_identity(
    root: &Path,
    chart_path: &str,
    opts: &BuildOptions<'_>,
) -> Result<(String, String), BuildError> {
    let md = local_metadata(root, chart_path, &opts.limits)?;
    let version = if opts.version_metadata.is_empty() {
        md.version.clone()
    } else {
        set_build_metadata(&md.version, &opts.version_metadata)?
    };
    Ok((md.name, version))
}

/// Flux's `LoadChartMetadata` + `Validate` for the chart at `chart_path`.
fn local_metadata(root: &Path, chart_path: &str, limits: &Limits) -> Result<Metadata, BuildError> {
    let reference = |e: ChartError| BuildError::new(BuildReason::ChartReference, e);
    if chart_path.is_empty() {
        return Err(BuildError::new(
            BuildReason::ChartReference,
            "no path set for local chart reference",
        ));
    }
    let (abs, shown) = crate::chart::secure_path(root, chart_path).map_err(reference)?;
    let mut md = if abs.is_dir() {
        let read = |name: &str| -> Result<Option<Vec<u8>>, BuildError> {
            match std::fs::read(abs.join(name)) {
                Ok(d) => Ok(Some(d)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != "Chart.yaml" => {
                    Ok(None)
                }
                Err(e) => Err(BuildError::new(
                    BuildReason::ChartReference,
                    format!("open {}/{name}: {e}", shown.trim_end_matches('/')),
                )),
            }
        };
        let mut md = crate::chart::parse_metadata(&read("Chart.yaml")?.unwrap_or_default())
            .map_err(reference)?;
        if md.api_version.is_empty() {
            md.api_version = "v1".into();
        }
        if let Some(req) = read("requirements.yaml")? {
            let extra = crate::chart::parse_metadata_onto(md, &req, "requirements.yaml")
                .map_err(reference)?;
            md = extra;
        }
        md
    } else {
        let f = std::fs::File::open(&abs).map_err(|e| {
            BuildError::new(BuildReason::ChartReference, format!("open {shown}: {e}"))
        })?;
        crate::chart::archive_metadata(std::io::BufReader::new(f), limits).map_err(reference)?
    };
    md.validate().map_err(reference)?;
    Ok(md)
}

/// Builds the chart at `chart_path` (a directory or a `.tgz`, relative to
/// `root`, the unpacked source artifact) as Flux's local chart builder.
pub fn build_local(
    root: &Path,
    chart_path: &str,
    opts: &BuildOptions<'_>,
) -> Result<Build, BuildError> {
    let md = local_metadata(root, chart_path, &opts.limits)?;
    let name = md.name.clone();
    let version = if opts.version_metadata.is_empty() {
        md.version.clone()
    } else {
        set_build_metadata(&md.version, &opts.version_metadata)?
    };
    let (abs, shown) = crate::chart::secure_path(root, chart_path)
        .map_err(|e| BuildError::new(BuildReason::ChartReference, e))?;
    let is_dir = abs.is_dir();
    let values_files = opts.effective_values_files();
    let needs_packaging = is_dir || !opts.version_metadata.is_empty() || !values_files.is_empty();
    if !needs_packaging {
        let archive = std::fs::read(&abs).map_err(|e| {
            BuildError::new(
                BuildReason::ChartPull,
                format!("failed to open file to copy from: {shown}: {e}"),
            )
        })?;
        return Ok(Build {
            file_name: format!("{name}-{version}.tgz"),
            name,
            version,
            archive,
            values_files: Vec::new(),
            resolved_dependencies: 0,
            packaged: false,
        });
    }

    let merged = if values_files.is_empty() {
        None
    } else {
        Some(merge_local_values(
            root,
            values_files,
            opts.ignore_missing_values_files,
        )?)
    };

    let mut chart = crate::chart::load_in(root, chart_path, &opts.limits).map_err(|e| {
        BuildError::new(
            BuildReason::ChartPackage,
            format!("failed to load chart from {shown}: {e}"),
        )
    })?;
    chart.metadata.version = version.clone();

    let mut observed = Vec::new();
    if let Some((values, files)) = merged
        && overwrite_values(&mut chart, &values)?
    {
        observed = files;
    }

    let resolved = if is_dir {
        add_missing_dependencies(root, chart_path, &mut chart, opts)?
    } else {
        0
    };

    let mut archive = Vec::new();
    package_to(&chart, &mut archive, &PackageOptions { mtime: opts.mtime }).map_err(|e| {
        BuildError::new(
            BuildReason::ChartPackage,
            format!("failed to package chart: {e}"),
        )
    })?;
    Ok(Build {
        file_name: format!("{name}-{version}.tgz"),
        name,
        version,
        archive,
        values_files: observed,
        resolved_dependencies: resolved,
        packaged: true,
    })
}

/// Flux's `mergeFileValues`: each file relative to `root` (never outside
/// it), merged in order.
fn merge_local_values(
    root: &Path,
    files: &[String],
    ignore_missing: bool,
) -> Result<(sluice_kustomize::yaml::Map, Vec<String>), BuildError> {
    let err = |m: String| BuildError::new(BuildReason::ValuesFiles, m);
    let mut merged = sluice_kustomize::yaml::Map::new();
    let mut used = Vec::new();
    for p in files {
        let shown = format!("/{}", crate::chart::clean_path(p).trim_start_matches("./"));
        let missing = || {
            err(format!(
                "no values file found at path '{shown}' (reference '{p}')"
            ))
        };
        let abs = match crate::chart::secure_path(root, p) {
            Ok((abs, _)) => abs,
            Err(ChartError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                if ignore_missing {
                    continue;
                }
                return Err(missing());
            }
            Err(e) => return Err(err(e.to_string())),
        };
        if !abs.is_file() {
            return Err(missing());
        }
        let data = std::fs::read(&abs)
            .map_err(|e| err(format!("could not read values from file '{p}': {e}")))?;
        let values = parse_values_file(&data)
            .map_err(|e| err(format!("unmarshaling values from '{p}' failed: {e}")))?;
        merged = merge_maps(merged, values);
        used.push(p.clone());
    }
    Ok((merged, used))
}

/// Flux's `OverwriteChartDefaultValues`: the merged values become
/// `values.yaml` (empty bytes for an empty map). Returns whether anything
/// changed.
fn overwrite_values(
    chart: &mut Chart,
    values: &sluice_kustomize::yaml::Map,
) -> Result<bool, BuildError> {
    let encoded = if values.is_empty() {
        Vec::new()
    } else {
        encode_values(values).into_bytes()
    };
    match &mut chart.values_yaml {
        None => Err(BuildError::new(
            BuildReason::ValuesFiles,
            "failed to locate values file: values.yaml",
        )),
        Some(current) if *current == encoded => Ok(false),
        Some(current) => {
            *current = encoded;
            Ok(true)
        }
    }
}

/// Flux's `DependencyManager.Build` for a chart directory: the
/// dependencies `Chart.lock` (else `Chart.yaml`) lists that are not among
/// the loaded subcharts are added. Returns how many were.
fn add_missing_dependencies(
    root: &Path,
    chart_path: &str,
    chart: &mut Chart,
    opts: &BuildOptions<'_>,
) -> Result<usize, BuildError> {
    let missing = missing_dependencies(chart);
    let count = missing.len();
    for dep in missing {
        let name = dep.effective_name().to_string();
        let mut sub = if is_local_dependency(&dep) {
            add_local(root, chart_path, &dep, &opts.limits).map_err(|e| {
                BuildError::new(
                    BuildReason::DependencyBuild,
                    format!("failed to add local dependency '{name}': {e}"),
                )
            })?
        } else {
            let remote = |e: String| {
                BuildError::new(
                    BuildReason::DependencyBuild,
                    format!("failed to add remote dependency '{name}': {e}"),
                )
            };
            let Some(fetcher) = opts.remote else {
                return Err(remote(format!(
                    "no chart repository for URL '{}' (dependency '{}' is not vendored in charts/)",
                    dep.repository, dep.name
                )));
            };
            let archive = fetcher.fetch(&dep).map_err(remote)?;
            crate::chart::load_archive(&archive[..], &opts.limits).map_err(|e| {
                remote(format!(
                    "failed to load downloaded archive of version '{}': {e}",
                    dep.version
                ))
            })?
        };
        if !dep.alias.is_empty() {
            sub.metadata.name = dep.alias.clone();
        }
        chart.dependencies.push(sub);
    }
    Ok(count)
}

/// Flux's `collectMissing`: the dependencies `Chart.lock` (else
/// `Chart.yaml`) lists that are not among the chart's loaded subcharts,
/// by name or alias (the last of a repeated one counts), sorted.
fn missing_dependencies(chart: &Chart) -> Vec<Dependency> {
    let reqs: Vec<Dependency> = match &chart.lock {
        Some(lock) => lock
            .dependencies
            .iter()
            .flatten()
            .flatten()
            .cloned()
            .collect(),
        None => chart.metadata.deps().cloned().collect(),
    };
    if chart.dependencies.len() == reqs.len() {
        return Vec::new();
    }
    let mut missing: Vec<Dependency> = Vec::new();
    for dep in reqs {
        let name = dep.effective_name().to_string();
        if chart.dependencies.iter().any(|c| c.metadata.name == name) {
            continue;
        }
        missing.retain(|d| d.effective_name() != name);
        missing.push(dep);
    }
    missing.sort_by(|a, b| a.effective_name().cmp(b.effective_name()));
    missing
}

/// Whether a dependency is in the source itself (`file://` or no
/// repository) rather than in a chart repository.
pub fn is_local_dependency(dep: &Dependency) -> bool {
    dep.repository.is_empty() || dep.repository.starts_with("file://")
}

/// The dependencies [`build_local`] will ask [`RemoteDependencies`] for:
/// those of the chart directory at `chart_path` that are neither vendored
/// under its `charts/` nor local. Empty for a packaged chart, which is not
/// given dependencies. For callers that fetch them ahead of the build.
pub fn remote_dependencies(
    root: &Path,
    chart_path: &str,
    limits: &Limits,
) -> Result<Vec<Dependency>, BuildError> {
    let (abs, shown) = crate::chart::secure_path(root, chart_path)
        .map_err(|e| BuildError::new(BuildReason::ChartReference, e))?;
    if !abs.is_dir() {
        return Ok(Vec::new());
    }
    let chart = crate::chart::load_in(root, chart_path, limits).map_err(|e| {
        BuildError::new(
            BuildReason::ChartPackage,
            format!("failed to load chart from {shown}: {e}"),
        )
    })?;
    let mut missing = missing_dependencies(&chart);
    missing.retain(|d| !is_local_dependency(d));
    Ok(missing)
}

/// A `file://` (or repository-less) dependency, loaded from the artifact.
fn add_local(
    root: &Path,
    chart_path: &str,
    dep: &Dependency,
    limits: &Limits,
) -> Result<Chart, String> {
    let rel = if dep.repository.is_empty() {
        format!("{chart_path}/charts/{}", dep.name)
    } else {
        let loc = dep.repository.trim_start_matches("file://");
        format!("{chart_path}/{loc}")
    };
    let shown = format!(
        "/{}",
        crate::chart::clean_path(&rel).trim_start_matches("./")
    );
    let clean = crate::chart::clean_path(&rel);
    if clean.starts_with("..") {
        return Err(format!(
            "no chart found at '{shown}' (reference '{}'): the path leaves the source",
            dep.repository
        ));
    }
    match crate::chart::secure_path(root, &clean) {
        Ok(_) => {}
        Err(ChartError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no chart found at '{shown}' (reference '{}')",
                dep.repository
            ));
        }
        Err(e) => return Err(e.to_string()),
    }
    let constraint = sluice_semver::Constraint::parse(&dep.version)
        .map_err(|e| format!("invalid version/constraint format '{}': {e}", dep.version))?;
    let sub = crate::chart::load_in(root, &clean, limits).map_err(|e| {
        format!(
            "failed to load chart from '{shown}' (reference '{}'): {e}",
            dep.repository
        )
    })?;
    let v = sluice_semver::parse_lenient(&sub.metadata.version)
        .ok_or_else(|| format!("invalid semantic version: {:?}", sub.metadata.version))?;
    if !constraint.matches(&v) {
        return Err(format!(
            "can't get a valid version for constraint '{}'",
            dep.version
        ));
    }
    Ok(sub)
}

/// Flux's remote chart build after the download: the archive as it is when
/// nothing asks for repackaging (its metadata checked), else loaded, given
/// the version metadata and the merged values files (paths inside the
/// chart; `values.yaml` is the chart's own values), and repackaged.
pub fn build_from_archive(archive: Vec<u8>, opts: &BuildOptions<'_>) -> Result<Build, BuildError> {
    let values_files = opts.effective_values_files();
    let needs_packaging = !values_files.is_empty() || !opts.version_metadata.is_empty();
    if !needs_packaging {
        let mut md = crate::chart::archive_metadata(&archive[..], &opts.limits).map_err(|e| {
            BuildError::new(
                BuildReason::ChartPull,
                format!("failed to load chart metadata from written chart: {e}"),
            )
        })?;
        md.validate().map_err(|e| {
            BuildError::new(
                BuildReason::ChartPull,
                format!("failed to validate metadata of written chart: {e}"),
            )
        })?;
        return Ok(Build {
            file_name: format!("{}-{}.tgz", md.name, md.version),
            name: md.name,
            version: md.version,
            archive,
            values_files: Vec::new(),
            resolved_dependencies: 0,
            packaged: false,
        });
    }
    let mut chart = crate::chart::load_archive(&archive[..], &opts.limits).map_err(|e| {
        BuildError::new(
            BuildReason::ChartPackage,
            format!("failed to load downloaded chart: {e}"),
        )
    })?;
    let version = if opts.version_metadata.is_empty() {
        chart.metadata.version.clone()
    } else {
        set_build_metadata(&chart.metadata.version, &opts.version_metadata)?
    };
    chart.metadata.version = version.clone();
    let err = |m: String| {
        BuildError::new(
            BuildReason::ValuesFiles,
            format!("failed to merge chart values: {m}"),
        )
    };
    let mut merged = sluice_kustomize::yaml::Map::new();
    let mut used = Vec::new();
    for p in values_files {
        let clean = crate::chart::clean_path(p);
        let values = if clean == "values.yaml" {
            chart.values().map_err(|e| err(e.to_string()))?
        } else {
            let Some(f) = chart.files.iter().find(|f| f.name == clean) else {
                if opts.ignore_missing_values_files {
                    continue;
                }
                return Err(err(format!("no values file found at path '{p}'")));
            };
            parse_values_file(&f.data.bytes())
                .map_err(|e| err(format!("unmarshaling values from '{p}' failed: {e}")))?
        };
        merged = merge_maps(merged, values);
        used.push(p.clone());
    }
    let mut observed = Vec::new();
    if !values_files.is_empty() && overwrite_values(&mut chart, &merged)? {
        observed = used;
    }
    let mut out = Vec::new();
    package_to(&chart, &mut out, &PackageOptions { mtime: opts.mtime }).map_err(|e| {
        BuildError::new(
            BuildReason::ChartPackage,
            format!("failed to package chart: {e}"),
        )
    })?;
    Ok(Build {
        file_name: format!("{}-{version}.tgz", chart.metadata.name),
        name: chart.metadata.name.clone(),
        version,
        archive: out,
        values_files: observed,
        resolved_dependencies: 0,
        packaged: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_metadata_is_fluxs() {
        let rev = "main@sha1:0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            version_metadata("GitRepository", rev, true, false, 3),
            "0123456789ab"
        );
        assert_eq!(
            version_metadata("GitRepository", rev, true, true, 3),
            "0123456789ab.3"
        );
        assert_eq!(version_metadata("GitRepository", rev, false, true, 3), "3");
        assert_eq!(version_metadata("GitRepository", rev, false, false, 3), "");
        assert_eq!(
            version_metadata("GitRepository", "main/0123456789abcdef", true, false, 1),
            "0123456789ab"
        );
        assert_eq!(
            version_metadata("Bucket", "sha256:fedcba9876543210fedcba", true, false, 1),
            "fedcba987654"
        );
        assert_eq!(
            version_metadata("HelmRepository", "6.0.1", true, false, 1),
            "6.0.1"
        );
    }

    #[test]
    fn build_metadata_as_masterminds() {
        assert_eq!(set_build_metadata("1.2.3", "abc.4").unwrap(), "1.2.3+abc.4");
        assert_eq!(set_build_metadata("v1.2", "x").unwrap(), "1.2.0+x");
        assert_eq!(
            set_build_metadata("1.2.3-rc.1+old", "new").unwrap(),
            "1.2.3-rc.1+new"
        );
        assert_eq!(
            set_build_metadata("1.2.3", "bad_meta").unwrap_err().reason,
            BuildReason::MetadataPatch
        );
        assert_eq!(
            BuildError::new(BuildReason::ValuesFiles, "x").to_string(),
            "values files merge error: x"
        );
    }
}
