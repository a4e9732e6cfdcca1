//! Fetching a source's artifact: straight from the source controller's
//! storage when it runs in the same process (or shares the volume), else
//! downloaded from `status.artifact.url`; the digest is verified either way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_api::meta::Artifact;
use sluice_git::archive;

/// Unpacks `artifact` into `dest` (blocking; run it off the async runtime).
pub fn fetch_and_unpack(
    storage_root: Option<&Path>,
    artifact: &Artifact,
    dest: &Path,
    http_timeout: Duration,
) -> Result<(), String> {
    if let Some(root) = storage_root
        && let Some(path) = archive::safe_join(root, &artifact.path).filter(|p| p.is_file())
    {
        return archive::unpack_file(&path, &artifact.digest, dest).map_err(|e| format!("{e:#}"));
    }
    download(artifact, dest, http_timeout)
}

fn download(artifact: &Artifact, dest: &Path, timeout: Duration) -> Result<(), String> {
    let file = download_verified(artifact, timeout)?;
    archive::unpack_tar_gz(file, dest, &archive::UnpackLimits::default())
        .map_err(|e| format!("failed to extract artifact: {e:#}"))
}

/// The bytes of `artifact` (a Helm chart archive, for the HelmRelease controller), its digest
/// verified: read from the source controller's storage when reachable, else downloaded
/// (bounded, blocking; run it off the async runtime).
pub fn fetch_bytes(
    storage_root: Option<&Path>,
    artifact: &Artifact,
    http_timeout: Duration,
) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    if let Some(root) = storage_root
        && let Some(path) = archive::safe_join(root, &artifact.path).filter(|p| p.is_file())
    {
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_DOWNLOAD_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("failed to read artifact {}: {e}", path.display()))?;
        if bytes.len() as u64 > MAX_DOWNLOAD_BYTES {
            return Err(format!(
                "artifact {} is larger than {MAX_DOWNLOAD_BYTES} bytes",
                path.display()
            ));
        }
        let got = archive::digest_bytes(&bytes);
        if !artifact.digest.is_empty() && got != artifact.digest {
            return Err(format!(
                "failed to verify artifact: computed digest doesn't match '{}'",
                artifact.digest
            ));
        }
        return Ok(bytes);
    }
    download_verified(artifact, http_timeout)?
        .read_to_end(&mut bytes)
        .map_err(|e| format!("failed to read the downloaded artifact: {e}"))?;
    Ok(bytes)
}

/// Downloads `artifact` into a temporary file (never held whole, bounded), checks its digest,
/// and returns the file rewound.
fn download_verified(artifact: &Artifact, timeout: Duration) -> Result<std::fs::File, String> {
    // reqwest's rustls needs a process-wide provider: without the
    // in-process source controller nothing else has installed it.
    sluice_git::install_crypto_provider();
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
    let mut file = tempfile::tempfile().map_err(|e| format!("creating a temporary file: {e}"))?;
    let mut hasher = archive::Sha256Writer::new(&mut file);
    let copied = std::io::copy(
        &mut std::io::Read::take(resp, MAX_DOWNLOAD_BYTES + 1),
        &mut hasher,
    )
    .map_err(|e| format!("failed to download artifact from {}: {e}", artifact.url))?;
    if copied > MAX_DOWNLOAD_BYTES {
        return Err(format!(
            "failed to download artifact from {}: larger than {MAX_DOWNLOAD_BYTES} bytes",
            artifact.url
        ));
    }
    let got = hasher.digest();
    if !artifact.digest.is_empty() && got != artifact.digest {
        return Err(format!(
            "failed to verify artifact: computed digest doesn't match '{}'",
            artifact.digest
        ));
    }
    use std::io::Seek as _;
    file.rewind()
        .map_err(|e| format!("failed to extract artifact: {e}"))?;
    Ok(file)
}

/// Largest artifact downloaded (compressed).
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Unpacked artifacts shared by the Kustomizations that use the same
/// source revision: each artifact is fetched and unpacked once, and every
/// reconciliation gets a private copy made of hard links (the build only
/// ever replaces files, never writes into them). The most recent `keep`
/// artifacts are kept.
pub struct ArtifactCache {
    root: PathBuf,
    keep: usize,
}

impl ArtifactCache {
    pub fn new(root: PathBuf, keep: usize) -> Result<Self, String> {
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        Ok(ArtifactCache { root, keep })
    }

    /// A private working tree of `artifact`, in a directory removed when the
    /// returned guard drops.
    pub fn checkout(
        &self,
        storage_root: Option<&Path>,
        artifact: &Artifact,
        http_timeout: Duration,
    ) -> Result<(tempfile::TempDir, PathBuf), String> {
        let key: String = artifact
            .digest
            .chars()
            .chain(artifact.revision.chars())
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(160)
            .collect();
        let unpacked = self.root.join(&key);
        if !unpacked.is_dir() {
            let tmp = tempfile::Builder::new()
                .prefix(".unpacking-")
                .tempdir_in(&self.root)
                .map_err(|e| format!("creating a temporary directory: {e}"))?;
            fetch_and_unpack(storage_root, artifact, tmp.path(), http_timeout)?;
            let path = tmp.keep();
            if std::fs::rename(&path, &unpacked).is_err() {
                // Another reconciliation unpacked it first.
                let _ = std::fs::remove_dir_all(&path);
            }
            self.evict(&unpacked);
        }
        let dir = tempfile::Builder::new()
            .prefix("sluice-ks-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let path = dir.path().to_path_buf();
        link_tree(&unpacked, &path).map_err(|e| format!("preparing the artifact: {e}"))?;
        Ok((dir, path))
    }

    fn evict(&self, current: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p != current && p.is_dir())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        dirs.sort();
        let excess = (dirs.len() + 1).saturating_sub(self.keep);
        for (_, p) in dirs.into_iter().take(excess) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ft = entry.file_type()?;
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            link_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn artifact(storage: &Path, name: &str, files: &[(&str, &str)]) -> Artifact {
        let mut buf = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut buf, flate2::Compression::fast());
            let mut tar = tar::Builder::new(gz);
            for (path, text) in files {
                let mut h = tar::Header::new_gnu();
                h.set_size(text.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                tar.append_data(&mut h, path, text.as_bytes()).unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
        }
        let rel = format!("gitrepository/ns/repo/{name}.tar.gz");
        let p = storage.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(&p).unwrap().write_all(&buf).unwrap();
        serde_json::from_value(serde_json::json!({
            "path": rel,
            "url": "http://127.0.0.1:1/none",
            "revision": format!("main@sha1:{name}"),
            "digest": archive::digest_bytes(&buf),
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    /// An artifact renders through its checkout; the generated
    /// kustomization lands in the private checkout only, never in the cache.
    #[test]
    fn artifacts_render_in_private_checkouts() {
        let storage = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(cache_dir.path().join("c"), 2).unwrap();
        let a = artifact(
            storage.path(),
            "ccc",
            &[(
                "apps/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            )],
        );
        let spec: sluice_api::KustomizationSpec = serde_json::from_value(serde_json::json!({
            "interval": "1m", "prune": false, "path": "./apps", "namePrefix": "p-",
            "sourceRef": {"kind": "GitRepository", "name": "repo"}
        }))
        .unwrap();
        let objs = crate::render_artifact(
            &cache,
            Some(storage.path()),
            &a,
            Duration::from_secs(1),
            &spec,
            &crate::Inputs::default(),
            &crate::RenderOptions::default(),
        )
        .unwrap();
        assert_eq!(objs[0]["metadata"]["name"], "p-c");
        let generated = std::fs::read_dir(cache_dir.path().join("c"))
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.path().join("apps/kustomization.yaml").exists());
        assert!(!generated, "the shared unpack was written to");

        let mut missing = a.clone();
        missing.path = "gitrepository/ns/repo/none.tar.gz".into();
        missing.revision = "main@sha1:none".into();
        missing.digest = "sha256:none".into();
        let e = crate::render_artifact(
            &cache,
            Some(storage.path()),
            &missing,
            Duration::from_millis(200),
            &spec,
            &crate::Inputs::default(),
            &crate::RenderOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.reason, sluice_api::meta::ARTIFACT_FAILED_REASON);
    }

    #[test]
    fn checkouts_share_one_unpack_and_stay_private() {
        let storage = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(cache_dir.path().join("c"), 2).unwrap();
        let a = artifact(
            storage.path(),
            "aaa",
            &[("apps/kustomization.yaml", "resources: []\n")],
        );
        let (_g1, one) = cache
            .checkout(Some(storage.path()), &a, Duration::from_secs(1))
            .unwrap();
        let (_g2, two) = cache
            .checkout(Some(storage.path()), &a, Duration::from_secs(1))
            .unwrap();
        // Replacing a file in one checkout leaves the other and the cache alone.
        let k1 = one.join("apps/kustomization.yaml");
        std::fs::remove_file(&k1).unwrap();
        std::fs::write(&k1, "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(two.join("apps/kustomization.yaml")).unwrap(),
            "resources: []\n"
        );
        // Evicted beyond `keep`.
        for n in ["bbb", "ccc", "ddd"] {
            let x = artifact(storage.path(), n, &[("f.yaml", "a: 1\n")]);
            cache
                .checkout(Some(storage.path()), &x, Duration::from_secs(1))
                .unwrap();
        }
        let left = std::fs::read_dir(cache_dir.path().join("c"))
            .unwrap()
            .count();
        assert_eq!(left, 2);
        // A bad digest is refused.
        let mut bad = a.clone();
        bad.digest = "sha256:00".into();
        bad.revision = "main@sha1:bad".into();
        assert!(
            cache
                .checkout(Some(storage.path()), &bad, Duration::from_secs(1))
                .is_err()
        );
    }

    /// Serves `body` once over HTTP on 127.0.0.1; returns the URL.
    fn serve_once(body: Vec<u8>) -> String {
        use std::io::Read as _;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/a.tar.gz", l.local_addr().unwrap());
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
            }
        });
        url
    }

    #[test]
    fn downloads_are_verified_and_unpacked() {
        let storage = tempfile::tempdir().unwrap();
        let mut a = artifact(storage.path(), "dl", &[("apps/cm.yaml", "a: 1\n")]);
        let body = std::fs::read(storage.path().join(&a.path)).unwrap();
        a.url = serve_once(body.clone());
        let dest = tempfile::tempdir().unwrap();
        fetch_and_unpack(None, &a, dest.path(), Duration::from_secs(5)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("apps/cm.yaml")).unwrap(),
            "a: 1\n"
        );
        a.url = serve_once(body);
        a.digest = "sha256:00".into();
        let e = fetch_and_unpack(None, &a, dest.path(), Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("computed digest doesn't match"), "{e}");
    }
}
