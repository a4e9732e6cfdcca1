//! Artifact storage: `<root>/<kind>/<ns>/<name>/<file>` as Flux lays it out
//! (`gitrepository/<ns>/<name>/<commit>.tar.gz`,
//! `ocirepository/<ns>/<name>/sha256:<digest>.tar.gz`,
//! `helmrepository/<ns>/<name>/index-<digest>.yaml`,
//! `helmchart/<ns>/<name>/<chart>-<version>.tgz`), written atomically with its
//! sha256 digest computed on the way, served by [`crate::artifact_router`],
//! garbage-collected to the newest few.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
// The archive format (digests, bounded unpacking, path jail) lives in
// sluice-git, shared with the render pipeline; re-exported for this
// crate's callers.
pub use sluice_git::archive::{
    MAX_UNPACKED_BYTES, MAX_UNPACKED_ENTRIES, Sha256Writer, UnpackLimits, digest_bytes,
    digest_file, hex, safe_join, unpack_file, unpack_tar_gz,
};

use crate::api::Artifact;

/// The storage kind directory for GitRepository artifacts.
pub const KIND_DIR: &str = "gitrepository";

/// The storage directory of a kind: its name in lower case, as Flux's
/// `Storage.NewArtifactFor` names it.
pub fn kind_dir(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

/// Artifacts kept per object by garbage collection (the current one included).
pub const DEFAULT_RETENTION: usize = 2;

/// The artifact store.
#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
    /// `http://<advertised host>` without trailing slash.
    base_url: String,
}

/// A freshly written artifact file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Path relative to the storage root.
    pub path: String,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    pub size: u64,
}

impl Storage {
    /// `advertised` is `host[:port]` (as Flux's `--storage-adv-addr`) or a
    /// full `http(s)://` base URL.
    pub fn new(root: impl Into<PathBuf>, advertised: &str) -> Storage {
        let adv = advertised.trim_end_matches('/');
        let base_url = if adv.starts_with("http://") || adv.starts_with("https://") {
            adv.to_string()
        } else {
            format!("http://{adv}")
        };
        Storage {
            root: root.into(),
            base_url,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<kind dir>/<ns>/<name>`, e.g. `gitrepository/flux-system/repo`.
    pub fn object_dir_rel(kind: &str, namespace: &str, name: &str) -> String {
        format!("{}/{namespace}/{name}", kind_dir(kind))
    }

    /// The URL an artifact at `rel_path` is served at.
    pub fn url_for(&self, rel_path: &str) -> String {
        format!("{}/{}", self.base_url, rel_path)
    }

    /// The file of `artifact` on this machine, for in-process consumers.
    pub fn local_path(&self, artifact: &Artifact) -> Option<PathBuf> {
        safe_join(&self.root, &artifact.path)
    }

    /// Whether the artifact's file is present.
    pub fn exists(&self, artifact: &Artifact) -> bool {
        self.local_path(artifact).is_some_and(|p| p.is_file())
    }

    /// Writes `<kind>/<ns>/<name>/<file_name>` atomically through `write`,
    /// hashing on the way.
    pub fn write_artifact<E: From<std::io::Error>>(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        file_name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<Written, E> {
        let rel_dir = Self::object_dir_rel(kind, namespace, name);
        let dir = self.root.join(&rel_dir);
        std::fs::create_dir_all(&dir)?;
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
        let mut hw = HashingWriter {
            inner: BufWriter::new(tmp.as_file().try_clone()?),
            hasher: Sha256::new(),
            size: 0,
        };
        write(&mut hw)?;
        hw.inner.flush()?;
        let digest = format!("sha256:{}", hex(&hw.hasher.finalize()));
        let size = hw.size;
        // World-readable like Flux's storage (served over HTTP anyway).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
        }
        tmp.persist(dir.join(file_name)).map_err(|e| e.error)?;
        Ok(Written {
            path: format!("{rel_dir}/{file_name}"),
            digest,
            size,
        })
    }

    /// Removes all but the newest `keep` artifacts of an object; `current`
    /// (a relative path) is always kept. Returns the removed file names.
    pub fn garbage_collect(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        current: &str,
        keep: usize,
    ) -> std::io::Result<Vec<String>> {
        let dir = self.root.join(Self::object_dir_rel(kind, namespace, name));
        let current_file = current.rsplit('/').next().unwrap_or(current);
        let mut files: Vec<(std::time::SystemTime, String)> = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            let md = entry.metadata()?;
            if !md.is_file() {
                continue;
            }
            // Stale temporaries of interrupted writes.
            if fname.starts_with(".tmp-") {
                if md
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 3600)
                {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            if fname == current_file {
                continue;
            }
            files.push((md.modified().unwrap_or(std::time::UNIX_EPOCH), fname));
        }
        files.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut removed = Vec::new();
        for (_, fname) in files.into_iter().skip(keep.saturating_sub(1)) {
            std::fs::remove_file(dir.join(&fname))?;
            removed.push(fname);
        }
        Ok(removed)
    }

    /// Points the link `link` (`latest.tar.gz`) beside the artifact at `rel_path` to it, replacing
    /// an older link atomically, as Flux's `Storage.Symlink` does for `status.url`. The link is
    /// relative (to the file beside it), so it never leads out of the object's directory, and
    /// garbage collection, which keeps only regular files, leaves it alone.
    pub fn link_latest(&self, rel_path: &str, link: &str) -> std::io::Result<()> {
        let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, rel_path.to_owned());
        let file = safe_join(&self.root, rel_path)
            .filter(|p| p.is_file())
            .ok_or_else(invalid)?;
        let (Some(dir), Some(target)) = (file.parent(), file.file_name()) else {
            return Err(invalid());
        };
        let path = dir.join(link);
        if std::fs::read_link(&path).is_ok_and(|t| t.as_os_str() == target) {
            return Ok(());
        }
        let tmp = dir.join(format!(".tmp-link-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp)?;
        std::fs::rename(&tmp, &path)
    }

    /// Removes everything stored for an object (on deletion).
    pub fn remove_object(&self, kind: &str, namespace: &str, name: &str) -> std::io::Result<()> {
        let dir = self.root.join(Self::object_dir_rel(kind, namespace, name));
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Verifies the artifact's digest and unpacks it into `dest` (which must
/// exist). For in-process consumers such as the Kustomization controller.
pub fn unpack_artifact(storage: &Storage, artifact: &Artifact, dest: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = storage
        .local_path(artifact)
        .with_context(|| format!("artifact path '{}' is not valid", artifact.path))?;
    unpack_file(&path, &artifact.digest, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_of_the_file() {
        assert_eq!(
            digest_bytes(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path(), "source.example:9090");
        let w = s
            .write_artifact::<std::io::Error>("GitRepository", "ns", "repo", "abc.tar.gz", |out| {
                out.write_all(b"abc")
            })
            .unwrap();
        assert_eq!(w.path, "gitrepository/ns/repo/abc.tar.gz");
        assert_eq!(w.size, 3);
        assert_eq!(w.digest, digest_bytes(b"abc"));
        assert_eq!(digest_file(&dir.path().join(&w.path)).unwrap(), w.digest);
        assert_eq!(
            s.url_for(&w.path),
            "http://source.example:9090/gitrepository/ns/repo/abc.tar.gz"
        );
    }

    #[test]
    fn the_latest_link_follows_the_artifact_and_outlives_garbage_collection() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path(), "http://h");
        let write = |name: &str, body: &[u8]| {
            s.write_artifact::<std::io::Error>("OCIRepository", "ns", "app", name, |o| {
                o.write_all(body)
            })
            .unwrap()
        };
        let link = dir.path().join("ocirepository/ns/app/latest.tar.gz");
        let first = write("sha256:1.tar.gz", b"one");
        s.link_latest(&first.path, "latest.tar.gz").unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"one");
        // Relative, so it stays inside the object's directory.
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::path::PathBuf::from("sha256:1.tar.gz")
        );
        // Again: nothing to do.
        s.link_latest(&first.path, "latest.tar.gz").unwrap();
        let second = write("sha256:2.tar.gz", b"two");
        s.link_latest(&second.path, "latest.tar.gz").unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"two");
        let removed = s
            .garbage_collect("OCIRepository", "ns", "app", &second.path, 1)
            .unwrap();
        assert_eq!(removed, vec!["sha256:1.tar.gz"]);
        assert_eq!(std::fs::read(&link).unwrap(), b"two");
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("ocirepository/ns/app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["latest.tar.gz", "sha256:2.tar.gz"]);
        // Only a stored file is linked to.
        assert!(
            s.link_latest("ocirepository/ns/app/none.tar.gz", "latest.tar.gz")
                .is_err()
        );
        assert!(s.link_latest("../outside.tar.gz", "latest.tar.gz").is_err());
    }

    #[test]
    fn gc_keeps_current_and_newest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path(), "http://h");
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            s.write_artifact::<std::io::Error>(
                "GitRepository",
                "ns",
                "r",
                &format!("{n}.tar.gz"),
                |o| o.write_all(n.as_bytes()),
            )
            .unwrap();
            let p = dir.path().join(format!("gitrepository/ns/r/{n}.tar.gz"));
            let t =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let mut removed = s
            .garbage_collect("GitRepository", "ns", "r", "gitrepository/ns/r/b.tar.gz", 2)
            .unwrap();
        removed.sort();
        assert_eq!(removed, vec!["a.tar.gz", "c.tar.gz"]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("gitrepository/ns/r"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["b.tar.gz", "d.tar.gz"]);
    }
}
