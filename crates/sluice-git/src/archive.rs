//! The artifact archive format shared by whoever writes artifacts (the
//! source controller, with [`crate::fetch::archive_commit`]) and whoever
//! reads them (the render pipeline, the CLI): a `.tar.gz` of regular files
//! and directories, identified by `sha256:<hex>` of the compressed bytes.
//!
//! Reading is bounded ([`UnpackLimits`]) and jailed: nothing unpacked points
//! out of the destination.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

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

pub fn hex(bytes: &[u8]) -> String {
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

/// Verifies the digest of the `.tar.gz` at `path` (when `digest` is not
/// empty) and unpacks it into `dest` (which must exist).
pub fn unpack_file(path: &Path, digest: &str, dest: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    if !digest.is_empty() {
        let got = digest_file(path).with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(
            got == digest,
            "artifact {} has digest {got}, expected {digest}",
            path.display()
        );
    }
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
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
    fn digest_is_sha256() {
        assert_eq!(
            digest_bytes(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(digest_file(&p).unwrap(), digest_bytes(b"abc"));
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"abc").unwrap();
        assert_eq!(w.digest(), digest_bytes(b"abc"));
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

/// Archives a directory in the artifact format, as Flux's storage archives
/// an extracted OCI layer: `.sourceignore` files found in the
/// tree and `spec_ignore` applied over Flux's default exclusions, regular
/// files and directories only (symlinks and special files are left out),
/// entries in lexical order with zeroed owners and times, so the same tree
/// always gives the same bytes. Returns the number of files and bytes.
pub fn archive_dir(
    dir: &Path,
    spec_ignore: Option<&str>,
    out: impl Write,
) -> std::io::Result<(u64, u64)> {
    use crate::sourceignore::{IGNORE_FILE, IgnoreRules};

    let entries = walk_dir(dir)?;
    let mut sourceignores: Vec<(String, String)> = Vec::new();
    for (path, is_dir) in &entries {
        if !is_dir && (path == IGNORE_FILE || path.ends_with(&format!("/{IGNORE_FILE}"))) {
            let contents = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
            let parent = path
                .rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_default();
            sourceignores.push((parent, contents));
        }
    }
    sourceignores.sort_by(|a, b| {
        a.0.split('/')
            .count()
            .cmp(&b.0.split('/').count())
            .then(a.0.cmp(&b.0))
    });
    let rules = IgnoreRules::new(&sourceignores, spec_ignore);
    write_archive(dir, &entries, Some(&rules), out)
}

/// Archives every regular file and directory under `dir`, in the same
/// format as [`archive_dir`] but with no ignore rules at all: a Bucket's
/// artifact, whose objects were filtered when they were listed (Flux's
/// storage archives a bucket's download with no filter).
pub fn archive_all(dir: &Path, out: impl Write) -> std::io::Result<(u64, u64)> {
    let entries = walk_dir(dir)?;
    write_archive(dir, &entries, None, out)
}

/// Every entry under `dir`, relative and `/`-separated, in lexical order
/// (`true` for a directory); symlinks and special files are left out.
fn walk_dir(dir: &Path) -> std::io::Result<Vec<(String, bool)>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<(String, bool)>) -> std::io::Result<()> {
        let here = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let mut names: Vec<(String, std::fs::FileType)> = Vec::new();
        for entry in std::fs::read_dir(&here)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            names.push((name, entry.file_type()?));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ft) in names {
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() {
                out.push((path.clone(), true));
                walk(root, &path, out)?;
            } else if ft.is_file() {
                out.push((path, false));
            }
        }
        Ok(())
    }
    let mut entries = Vec::new();
    walk(dir, "", &mut entries)?;
    Ok(entries)
}

/// Writes `entries` of `dir` as a deterministic tar.gz, leaving out what
/// `rules` ignore (and everything under an ignored directory).
fn write_archive(
    dir: &Path,
    entries: &[(String, bool)],
    rules: Option<&crate::sourceignore::IgnoreRules>,
    out: impl Write,
) -> std::io::Result<(u64, u64)> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut skipped: Vec<String> = Vec::new();
    for (path, is_dir) in entries {
        if skipped
            .iter()
            .any(|d| path.starts_with(d.as_str()) && path.as_bytes().get(d.len()) == Some(&b'/'))
        {
            continue;
        }
        if rules.is_some_and(|r| r.is_ignored(path, *is_dir)) {
            if *is_dir {
                skipped.push(path.clone());
            }
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
        } else {
            let file = File::open(dir.join(path))?;
            let meta = file.metadata()?;
            use std::os::unix::fs::PermissionsExt;
            let executable = meta.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            files += 1;
            bytes += meta.len();
            tar.append_data(&mut header, path, file)?;
        }
    }
    let gz = tar.into_inner()?;
    let mut out = gz.finish()?;
    out.flush()?;
    Ok((files, bytes))
}

#[cfg(test)]
mod archive_dir_tests {
    use super::*;

    #[test]
    fn a_directory_archives_deterministically_with_ignore_rules() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("apps/skip")).unwrap();
        std::fs::write(root.join("apps/a.yaml"), "a: 1\n").unwrap();
        std::fs::write(root.join("apps/skip/b.yaml"), "b: 1\n").unwrap();
        std::fs::write(root.join("notes.md"), "x").unwrap();
        std::fs::write(root.join(".sourceignore"), "apps/skip/\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let mut one = Vec::new();
        let (files, _) = archive_dir(root, Some("*.md\n"), &mut one).unwrap();
        let mut two = Vec::new();
        archive_dir(root, Some("*.md\n"), &mut two).unwrap();
        assert_eq!(one, two, "same tree, same bytes");
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(one.as_slice()));
        for e in ar.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, [".sourceignore", "apps/", "apps/a.yaml"]);
        assert_eq!(files, 2);
    }
}
