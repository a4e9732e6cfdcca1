//! Fetching a source's artifact: straight from the source controller's
//! storage when it runs in the same process (or shares the volume), else
//! downloaded from `status.artifact.url`; the digest is verified either way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_api::meta::Artifact;
use sluice_source::Storage;

/// Unpacks `artifact` into `dest` (blocking; run it off the async runtime).
pub fn fetch_and_unpack(
    storage_root: Option<&Path>,
    artifact: &Artifact,
    dest: &Path,
    http_timeout: Duration,
) -> Result<(), String> {
    if let Some(root) = storage_root {
        let storage = Storage::new(root, "localhost");
        if storage.exists(artifact) {
            return sluice_source::unpack_artifact(&storage, artifact, dest)
                .map_err(|e| format!("{e:#}"));
        }
    }
    download(artifact, dest, http_timeout)
}

fn download(artifact: &Artifact, dest: &Path, timeout: Duration) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let resp = client
        .get(&artifact.url)
        .send()
        .map_err(|e| format!("failed to download artifact from {}: {e}", artifact.url))?;
    if !resp.status().is_success() {
        return Err(format!(
            "failed to download artifact from {}, status: {}",
            artifact.url,
            resp.status()
        ));
    }
    let bytes = resp
        .bytes()
        .map_err(|e| format!("failed to download artifact from {}: {e}", artifact.url))?;
    if !artifact.digest.is_empty() {
        let got = sluice_source::storage::digest_bytes(&bytes);
        if got != artifact.digest {
            return Err(format!(
                "failed to verify artifact: computed digest doesn't match '{}'",
                artifact.digest
            ));
        }
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    archive.set_preserve_permissions(false);
    archive
        .unpack(dest)
        .map_err(|e| format!("failed to extract artifact: {e}"))
}

/// A scratch directory per reconciliation.
pub fn scratch() -> Result<(tempfile::TempDir, PathBuf), String> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-ks-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?;
    let path = dir.path().to_path_buf();
    Ok((dir, path))
}
