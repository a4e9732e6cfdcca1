//! Artifact storage: `<root>/gitrepository/<ns>/<name>/<commit>.tar.gz`,
//! written atomically with its sha256 digest computed on the way, served by
//! [`crate::artifact_router`], garbage-collected to the newest few.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::api::Artifact;

/// The storage kind directory for GitRepository artifacts.
pub const KIND_DIR: &str = "gitrepository";

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

    /// `gitrepository/<ns>/<name>`.
    pub fn object_dir_rel(namespace: &str, name: &str) -> String {
        format!("{KIND_DIR}/{namespace}/{name}")
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

    /// Writes `<ns>/<name>/<file_name>` atomically through `write`, hashing on
    /// the way.
    pub fn write_artifact<E: From<std::io::Error>>(
        &self,
        namespace: &str,
        name: &str,
        file_name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<Written, E> {
        let rel_dir = Self::object_dir_rel(namespace, name);
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
        namespace: &str,
        name: &str,
        current: &str,
        keep: usize,
    ) -> std::io::Result<Vec<String>> {
        let dir = self.root.join(Self::object_dir_rel(namespace, name));
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
            if !fname.ends_with(".tar.gz") || fname == current_file {
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

    /// Removes everything stored for an object (on deletion).
    pub fn remove_object(&self, namespace: &str, name: &str) -> std::io::Result<()> {
        let dir = self.root.join(Self::object_dir_rel(namespace, name));
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Joins a relative artifact path to the root, refusing anything that could
/// leave it (`..`, absolute paths) or name hidden files.
pub fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let mut out = root.to_path_buf();
    let mut n = 0;
    for c in p.components() {
        match c {
            Component::Normal(s) => {
                let s = s.to_str()?;
                if s.starts_with('.') {
                    return None;
                }
                out.push(s);
                n += 1;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    (n > 0).then_some(out)
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `sha256:<hex>` of a file, the way `status.artifact.digest` is spelled.
pub fn digest_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

/// `sha256:<hex>` of bytes.
/// A writer that passes bytes on and computes their sha256 digest.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// `sha256:<hex>` of what was written.
    pub fn digest(self) -> String {
        format!("sha256:{}", hex(&self.hasher.finalize()))
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn digest_bytes(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Verifies the artifact's digest and unpacks it into `dest` (which must
/// exist). For in-process consumers such as the Kustomization controller.
pub fn unpack_artifact(storage: &Storage, artifact: &Artifact, dest: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = storage
        .local_path(artifact)
        .with_context(|| format!("artifact path '{}' is not valid", artifact.path))?;
    if !artifact.digest.is_empty() {
        let want = &artifact.digest;
        let got = digest_file(&path).with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(
            &got == want,
            "artifact {} has digest {got}, expected {want}",
            path.display()
        );
    }
    let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    unpack_tar_gz(f, dest, &UnpackLimits::default())
        .with_context(|| format!("unpacking {}", path.display()))
}

/// Bounds of one artifact's contents when unpacked.
#[derive(Clone, Debug)]
pub struct UnpackLimits {
    /// The size of all files together.
    pub max_bytes: u64,
    /// Files and directories.
    pub max_entries: u64,
}

/// Default [`UnpackLimits::max_bytes`]: 1 GiB (Git artifacts of real
/// repositories are a few MiB; a gzip bomb is stopped here).
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Default [`UnpackLimits::max_entries`].
pub const MAX_UNPACKED_ENTRIES: u64 = 200_000;

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: MAX_UNPACKED_BYTES,
            max_entries: MAX_UNPACKED_ENTRIES,
        }
    }
}

/// Unpacks a `.tar.gz` into `dest` keeping only what an artifact is made of,
/// regular files and directories (as Flux's artifacts): symlinks, hard
/// links, devices and FIFOs are skipped, so nothing unpacked points out of
/// `dest` or blocks a reader. Entries escaping `dest` are refused, and the
/// total size and number of entries are bounded.
pub fn unpack_tar_gz(reader: impl Read, dest: &Path, limits: &UnpackLimits) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    let (mut bytes, mut count) = (0u64, 0u64);
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        count += 1;
        bytes = bytes.saturating_add(entry.header().size().unwrap_or(u64::MAX));
        anyhow::ensure!(
            count <= limits.max_entries,
            "the artifact holds more than {} entries",
            limits.max_entries
        );
        anyhow::ensure!(
            bytes <= limits.max_bytes,
            "the artifact unpacks to more than {} bytes",
            limits.max_bytes
        );
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // `unpack_in` refuses paths that leave `dest` (returns false).
        let inside = entry
            .unpack_in(dest)
            .with_context(|| format!("unpacking {name}"))?;
        anyhow::ensure!(inside, "entry '{name}' leaves the artifact");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .tar.gz with the given (path, type, data, link target) entries,
    /// headers written raw so that hostile paths survive.
    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            t.append(&h, *data).unwrap();
        }
        t.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpack_keeps_files_and_directories_only_and_stays_inside() {
        use tar::EntryType as T;
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let data = tar_gz(&[
            ("apps/", T::Directory, b"", ""),
            ("apps/cm.yaml", T::Regular, b"kind: ConfigMap\n", ""),
            ("apps/passwd.yaml", T::Symlink, b"", "/etc/passwd"),
            ("apps/hard.yaml", T::Link, b"", "/etc/passwd"),
            ("apps/pipe.yaml", T::Fifo, b"", ""),
            ("apps/zero", T::Char, b"", ""),
        ]);
        unpack_tar_gz(&data[..], &dest, &UnpackLimits::default()).unwrap();
        assert!(dest.join("apps/cm.yaml").is_file());
        for skipped in ["passwd.yaml", "hard.yaml", "pipe.yaml", "zero"] {
            assert!(
                std::fs::symlink_metadata(dest.join("apps").join(skipped)).is_err(),
                "{skipped}"
            );
        }

        let escaping = tar_gz(&[("../evil.yaml", T::Regular, b"x", "")]);
        let r = unpack_tar_gz(&escaping[..], &dest, &UnpackLimits::default());
        assert!(r.is_err());
        assert!(!outer.path().join("evil.yaml").exists());
    }

    #[test]
    fn unpack_bounds_size_and_entries() {
        use tar::EntryType as T;
        let dest = tempfile::tempdir().unwrap();
        let big = vec![0u8; 4096];
        let data = tar_gz(&[("a", T::Regular, &big, ""), ("b", T::Regular, &big, "")]);
        let small = UnpackLimits {
            max_bytes: 6000,
            max_entries: 10,
        };
        let e = unpack_tar_gz(&data[..], dest.path(), &small).unwrap_err();
        assert!(e.to_string().contains("more than 6000 bytes"), "{e}");
        let few = UnpackLimits {
            max_bytes: 1 << 20,
            max_entries: 1,
        };
        let e = unpack_tar_gz(&data[..], dest.path(), &few).unwrap_err();
        assert!(e.to_string().contains("more than 1 entries"), "{e}");
    }

    #[test]
    fn digest_is_sha256_of_the_file() {
        assert_eq!(
            digest_bytes(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path(), "source.example:9090");
        let w = s
            .write_artifact::<std::io::Error>("ns", "repo", "abc.tar.gz", |out| {
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
    fn gc_keeps_current_and_newest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path(), "http://h");
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            s.write_artifact::<std::io::Error>("ns", "r", &format!("{n}.tar.gz"), |o| {
                o.write_all(n.as_bytes())
            })
            .unwrap();
            let p = dir.path().join(format!("gitrepository/ns/r/{n}.tar.gz"));
            let t =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let mut removed = s
            .garbage_collect("ns", "r", "gitrepository/ns/r/b.tar.gz", 2)
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

    #[test]
    fn safe_join_refuses_escapes() {
        let root = Path::new("/s");
        assert_eq!(
            safe_join(root, "gitrepository/a/b/c.tar.gz"),
            Some(PathBuf::from("/s/gitrepository/a/b/c.tar.gz"))
        );
        assert_eq!(safe_join(root, "../etc/passwd"), None);
        assert_eq!(safe_join(root, "/etc/passwd"), None);
        assert_eq!(safe_join(root, ".work/scratch.git/config"), None);
        assert_eq!(safe_join(root, ""), None);
    }
}
