//! Helm charts in OCI registries, as `helm push` stores them: the chart
//! `.tgz` as the only layer ([`CHART_CONTENT_MEDIA_TYPE`]), `Chart.yaml`'s
//! metadata as JSON in the config blob ([`CHART_CONFIG_MEDIA_TYPE`]), the
//! repository `<oci url>/<chart name>` and the tag the chart version with
//! `+` written `_`.

use std::collections::BTreeMap;
use std::io::Read;

use sluice_semver::TagStyle;

use crate::artifact::{Pushed, now_rfc3339};
use crate::client::{Client, PulledManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Descriptor, Manifest, OCI_MANIFEST};
use crate::reference::{Reference, Target};

pub const CHART_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
pub const CHART_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const CHART_PROVENANCE_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

/// The largest `Chart.yaml` read from a chart archive.
const MAX_CHART_YAML: u64 = 1 << 20;
/// The largest chart archive pulled by default (Flux's default
/// `--helm-chart-max-size` is 10 MiB; this is a download bound only).
pub const DEFAULT_MAX_CHART_BYTES: u64 = 64 << 20;

/// The OCI tag of a chart version (`1.0.0+build` is `1.0.0_build`).
pub fn chart_tag(version: &str) -> String {
    TagStyle::Helm.version_to_tag(version)
}

/// What a chart archive says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartInfo {
    pub name: String,
    pub version: String,
    /// `Chart.yaml` as JSON (the config blob of a pushed chart).
    pub metadata: serde_json::Value,
}

/// Reads `<chart>/Chart.yaml` from a chart archive (`.tgz`).
pub fn chart_info(tgz: &[u8]) -> Result<ChartInfo> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let entries = archive
        .entries()
        .map_err(|e| Error::invalid(format!("reading the chart archive: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::invalid(format!("reading the chart archive: {e}")))?;
        let path = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
        if parts.len() != 2 || parts[1] != "Chart.yaml" {
            continue;
        }
        let mut text = String::new();
        entry
            .take(MAX_CHART_YAML + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::invalid(format!("reading {path}: {e}")))?;
        if text.len() as u64 > MAX_CHART_YAML {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("{path} is larger than {MAX_CHART_YAML} bytes"),
            ));
        }
        let metadata: serde_json::Value = serde_norway::from_str(&text)
            .map_err(|e| Error::invalid(format!("{path}: invalid YAML: {e}")))?;
        let field = |k: &str| -> Result<String> {
            match metadata.get(k) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(Error::invalid(format!("{path}: '{k}' is missing"))),
            }
        };
        return Ok(ChartInfo {
            name: field("name")?,
            version: field("version")?,
            metadata,
        });
    }
    Err(Error::invalid(
        "the chart archive has no <chart>/Chart.yaml",
    ))
}

/// Pushes a chart archive as `helm push <tgz> oci://<base>` does: to the
/// repository `<base>/<chart name>`, tag [`chart_tag`] of its version.
pub fn push_chart(client: &Client, base: &Reference, tgz: &[u8]) -> Result<Pushed> {
    let info = chart_info(tgz)?;
    let reference = base.join(&info.name)?;
    let tag = chart_tag(&info.version);
    let config = serde_json::to_vec(&info.metadata)
        .map_err(|e| Error::invalid(format!("encoding the chart metadata: {e}")))?;
    let config_digest = client.push_blob_bytes(&reference, &config)?;
    let layer_digest = client.push_blob_bytes(&reference, tgz)?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.title".to_string(),
        info.name.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.version".to_string(),
        info.version.clone(),
    );
    if let Some(d) = info.metadata.get("description").and_then(|d| d.as_str()) {
        annotations.insert("org.opencontainers.image.description".to_string(), d.into());
    }
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        now_rfc3339(),
    );
    let manifest = Manifest::oci(
        Descriptor::new(CHART_CONFIG_MEDIA_TYPE, config_digest, config.len() as u64),
        vec![Descriptor::new(
            CHART_CONTENT_MEDIA_TYPE,
            layer_digest,
            tgz.len() as u64,
        )],
        annotations,
    );
    let raw = serde_json::to_vec(&manifest)
        .map_err(|e| Error::protocol(format!("encoding the manifest: {e}")))?;
    let digest = client.push_manifest(&reference, &Target::Tag(tag.clone()), &raw, OCI_MANIFEST)?;
    Ok(Pushed {
        reference,
        tag,
        digest,
    })
}

/// The tag holding chart `version` in the chart repository `reference`, as
/// Helm's and Flux's OCI chart pulls pick it: an exact version is its own tag
/// ([`chart_tag`], nothing listed); a constraint (empty: any version) is
/// the highest tag matching it. The outer error is the registry's (listing
/// the tags); the inner one says why no tag was chosen (Flux's messages).
pub fn version_tag(
    client: &Client,
    reference: &Reference,
    version: &str,
) -> Result<std::result::Result<String, sluice_semver::SelectError>> {
    if sluice_semver::parse_strict(version).is_some() {
        return Ok(Ok(chart_tag(version)));
    }
    let tags = client.list_tags(reference)?;
    let constraint = if version.is_empty() { "*" } else { version };
    Ok(sluice_semver::latest_matching(&tags, constraint, None, TagStyle::Helm).map(str::to_string))
}

/// A chart pulled from a registry: its manifest and archive bytes.
#[derive(Clone, Debug)]
pub struct PulledChart {
    pub manifest: PulledManifest,
    pub tgz: Vec<u8>,
}

/// Pulls the chart archive at `reference:target` (the chart content layer),
/// at most `max_bytes`; a manifest without that layer is refused.
pub fn pull_chart(
    client: &Client,
    reference: &Reference,
    target: &Target,
    max_bytes: u64,
) -> Result<PulledChart> {
    let manifest = client.manifest(reference, target)?;
    let layer = crate::artifact::select_layer(&manifest.manifest, Some(CHART_CONTENT_MEDIA_TYPE))?;
    if layer.size > max_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "chart {reference}:{target} is {} bytes, more than the limit of {max_bytes}",
                layer.size
            ),
        ));
    }
    let digest = layer.digest.clone();
    let tgz = client.fetch_blob_bytes(reference, &digest, max_bytes)?;
    Ok(PulledChart { manifest, tgz })
}

/// A chart archive for tests and fixtures: `<name>/Chart.yaml` with the
/// given name and version, plus the given files under `<name>/`.
pub fn build_chart_tgz(name: &str, version: &str, files: &[(&str, &str)]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let chart_yaml = format!(
        "apiVersion: v2\nname: {name}\nversion: {version}\ndescription: A test chart\ntype: application\n"
    );
    let mut all: Vec<(String, String)> = vec![(format!("{name}/Chart.yaml"), chart_yaml)];
    for (p, c) in files {
        all.push((format!("{name}/{p}"), c.to_string()));
    }
    for (path, content) in all {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, &path, content.as_bytes())
            .map_err(|e| Error::io(format!("archiving {path}"), e))?;
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| Error::io("writing the chart archive", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_metadata() {
        assert_eq!(chart_tag("1.2.3+build.1"), "1.2.3_build.1");
        let tgz = build_chart_tgz("podinfo", "6.5.0+g1", &[("values.yaml", "a: 1\n")]).unwrap();
        let info = chart_info(&tgz).unwrap();
        assert_eq!(info.name, "podinfo");
        assert_eq!(info.version, "6.5.0+g1");
        assert_eq!(info.metadata["apiVersion"], "v2");
        let e = chart_info(b"not gzip").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
    }
}
