//! Flux's OCI artifact format, as `flux push artifact` writes it
//! (fluxcd/pkg `oci/client`): an OCI image manifest whose config is `{}`
//! with media type [`FLUX_CONFIG_MEDIA_TYPE`], one layer
//! [`FLUX_CONTENT_MEDIA_TYPE`] holding the directory as a tar.gz (owners
//! and times stripped, symlinks left out), and the annotations
//! `org.opencontainers.image.created`, `.source` and `.revision`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sluice_git::archive::UnpackLimits;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Descriptor, Manifest, OCI_MANIFEST};
use crate::reference::{Reference, Target};

pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";

/// The largest layer pulled by default.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 512 << 20;

/// What an artifact says about where it comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub source: Option<String>,
    pub revision: Option<String>,
    /// RFC 3339; the push time when `None`.
    pub created: Option<String>,
    /// Further annotations (`--annotations key=value`).
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// The manifest annotations for this metadata.
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut out = self.annotations.clone();
        if let Some(c) = &self.created {
            out.insert(ANNOTATION_CREATED.into(), c.clone());
        }
        if let Some(s) = &self.source {
            out.insert(ANNOTATION_SOURCE.into(), s.clone());
        }
        if let Some(r) = &self.revision {
            out.insert(ANNOTATION_REVISION.into(), r.clone());
        }
        out
    }

    /// Reads the metadata back from manifest annotations.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Metadata {
        let mut rest = annotations.clone();
        Metadata {
            created: rest.remove(ANNOTATION_CREATED),
            source: rest.remove(ANNOTATION_SOURCE),
            revision: rest.remove(ANNOTATION_REVISION),
            annotations: rest,
        }
    }
}

/// A pushed artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub reference: Reference,
    pub tag: String,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
}

impl Pushed {
    /// `<tag>@sha256:<hex>`, the revision Flux's OCIRepository reports.
    pub fn revision(&self) -> String {
        format!("{}@{}", self.tag, self.digest)
    }

    /// `host/repo@sha256:<hex>`.
    pub fn digest_url(&self) -> String {
        format!("{}@{}", self.reference, self.digest)
    }
}

/// Builds the artifact's tar.gz from `path` (a directory, or a single file
/// stored under its name) into `out`, leaving out what the `ignore`
/// patterns (gitignore syntax, relative to `path`) match. Only regular
/// files and directories go in, in name order, with owners and times
/// stripped, so the same tree gives the same bytes.
pub fn build_tar_gz(path: &Path, ignore: &[String], out: impl Write) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::invalid(format!(
            "invalid path '{}', must point to an existing directory or file: {e}",
            path.display()
        ))
    })?;
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    if meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::invalid(format!("invalid path '{}'", path.display())))?;
        append_file(&mut tar, path, &name, &meta)?;
    } else {
        let matcher = ignore_matcher(ignore)?;
        walk(&mut tar, path, "", &matcher)?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| Error::io("writing the artifact", e))?;
    gz.finish()
        .map_err(|e| Error::io("writing the artifact", e))?;
    Ok(())
}

fn ignore_matcher(patterns: &[String]) -> Result<Gitignore> {
    let mut b = GitignoreBuilder::new("/");
    for p in patterns {
        let p = p.trim();
        if p.is_empty() || p.starts_with('#') {
            continue;
        }
        b.add_line(None, p)
            .map_err(|e| Error::invalid(format!("invalid ignore pattern '{p}': {e}")))?;
    }
    b.build()
        .map_err(|e| Error::invalid(format!("invalid ignore patterns: {e}")))
}

fn walk<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    matcher: &Gitignore,
) -> Result<()> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .map(|e| {
            e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .map_err(|err| Error::io(format!("reading {}", dir.display()), err))
        })
        .collect::<Result<_>>()?;
    entries.sort();
    for (name, full) in entries {
        let rel_path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(&full)
            .map_err(|e| Error::io(format!("reading {}", full.display()), e))?;
        let ft = meta.file_type();
        if !(ft.is_file() || ft.is_dir()) {
            // Symlinks, sockets, devices: not part of an artifact.
            continue;
        }
        if matcher.matched(&rel_path, ft.is_dir()).is_ignore() {
            continue;
        }
        if ft.is_dir() {
            let mut h = header(&meta, tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{rel_path}/"), std::io::empty())
                .map_err(|e| Error::io(format!("archiving {}", full.display()), e))?;
            walk(tar, &full, &rel_path, matcher)?;
        } else {
            append_file(tar, &full, &rel_path, &meta)?;
        }
    }
    Ok(())
}

fn header(meta: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    use std::os::unix::fs::PermissionsExt;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.permissions().mode() & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    full: &Path,
    name: &str,
    meta: &std::fs::Metadata,
) -> Result<()> {
    let mut h = header(meta, tar::EntryType::Regular);
    h.set_size(meta.len());
    let f = File::open(full).map_err(|e| Error::io(format!("opening {}", full.display()), e))?;
    tar.append_data(&mut h, name, f)
        .map_err(|e| Error::io(format!("archiving {}", full.display()), e))
}

/// The current time as Flux writes `created` (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Pushes `path` as a Flux artifact to `reference:tag` (`flux push
/// artifact`). `ignore` are gitignore patterns relative to `path` (the CLI
/// passes Flux's defaults: version control files and binary extensions).
pub fn push_artifact(
    client: &Client,
    reference: &Reference,
    tag: &str,
    path: &Path,
    metadata: &Metadata,
    ignore: &[String],
) -> Result<Pushed> {
    crate::reference::validate_tag(tag)?;
    let mut tmp =
        tempfile::NamedTempFile::new().map_err(|e| Error::io("creating a temporary file", e))?;
    build_tar_gz(path, ignore, tmp.as_file_mut())?;
    tmp.as_file_mut()
        .flush()
        .and_then(|_| tmp.as_file_mut().rewind())
        .map_err(|e| Error::io("writing the artifact", e))?;

    let config = b"{}";
    let config_digest = client.push_blob_bytes(reference, config)?;
    let (layer_digest, layer_size) = client.push_blob_file(reference, tmp.path())?;

    let mut meta = metadata.clone();
    if meta.created.is_none() {
        meta.created = Some(now_rfc3339());
    }
    let manifest = Manifest::oci(
        Descriptor::new(FLUX_CONFIG_MEDIA_TYPE, config_digest, config.len() as u64),
        vec![Descriptor::new(
            FLUX_CONTENT_MEDIA_TYPE,
            layer_digest,
            layer_size,
        )],
        meta.to_annotations(),
    );
    let raw = serde_json::to_vec(&manifest)
        .map_err(|e| Error::protocol(format!("encoding the manifest: {e}")))?;
    let digest =
        client.push_manifest(reference, &Target::Tag(tag.to_string()), &raw, OCI_MANIFEST)?;
    Ok(Pushed {
        reference: reference.clone(),
        tag: tag.to_string(),
        digest,
    })
}

/// How [`pull_artifact`] picks and unpacks a layer.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The layer's media type (Flux's `layerSelector.mediaType`); the first
    /// layer when `None`.
    pub layer_media_type: Option<String>,
    /// The largest layer downloaded.
    pub max_layer_bytes: u64,
    /// Bounds of the unpacked content.
    pub unpack: UnpackLimits,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            layer_media_type: None,
            max_layer_bytes: DEFAULT_MAX_LAYER_BYTES,
            unpack: UnpackLimits::default(),
        }
    }
}

/// A pulled artifact.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The manifest digest (the index's, when the target was an index).
    pub digest: String,
    /// `host/repo@sha256:<hex>`.
    pub digest_url: String,
    pub metadata: Metadata,
    /// The layer that was unpacked.
    pub layer: Descriptor,
}

/// Pulls an artifact and extracts its layer into `dest` (`flux pull
/// artifact`): the download is bounded and digest-checked before anything
/// is unpacked; the unpacker keeps only regular files and directories
/// inside `dest`, within [`PullOptions::unpack`].
pub fn pull_artifact(
    client: &Client,
    reference: &Reference,
    target: &Target,
    dest: &Path,
    options: &PullOptions,
) -> Result<Pulled> {
    let pulled = client.manifest(reference, target)?;
    let layer = select_layer(&pulled.manifest, options.layer_media_type.as_deref())?.clone();
    if layer.size > options.max_layer_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "layer {} of {reference}:{target} is {} bytes, more than the limit of {}",
                layer.digest, layer.size, options.max_layer_bytes
            ),
        ));
    }
    let mut tmp = tempfile::tempfile().map_err(|e| Error::io("creating a temporary file", e))?;
    client.fetch_blob(reference, &layer.digest, &mut tmp, options.max_layer_bytes)?;
    tmp.rewind()
        .map_err(|e| Error::io("reading the downloaded layer", e))?;
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    unpack(tmp, dest, &options.unpack).map_err(|e| {
        e.context(format!(
            "extracting layer {} of {reference}:{target}",
            layer.digest
        ))
    })?;
    let digest = pulled.index_digest.unwrap_or(pulled.descriptor.digest);
    Ok(Pulled {
        digest_url: format!("{reference}@{digest}"),
        digest,
        metadata: Metadata::from_annotations(&pulled.manifest.annotations()),
        layer,
    })
}

/// The layer Flux's `layerSelector` picks, with Flux's messages.
pub fn select_layer<'m>(
    manifest: &'m Manifest,
    media_type: Option<&str>,
) -> Result<&'m Descriptor> {
    if manifest.layers.is_empty() {
        return Err(Error::protocol("no layers found in artifact"));
    }
    manifest.select_layer(media_type).ok_or_else(|| {
        Error::protocol(format!(
            "failed to find layer with media type '{}' in artifact",
            media_type.unwrap_or_default()
        ))
    })
}

/// Unpacks a tar.gz with sluice's artifact rules (files and directories
/// only, jailed, bounded).
pub fn unpack(reader: impl std::io::Read, dest: &Path, limits: &UnpackLimits) -> Result<()> {
    sluice_git::archive::unpack_tar_gz(reader, dest, limits).map_err(|e| {
        let msg = format!("{e:#}");
        let kind = if msg.contains("more than") {
            ErrorKind::TooLarge
        } else {
            ErrorKind::Protocol
        };
        Error::new(kind, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(tgz: &[u8]) -> Vec<(String, u64)> {
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let mtime = e.header().mtime().unwrap();
                (e.path().unwrap().display().to_string(), mtime)
            })
            .collect()
    }

    #[test]
    fn builds_a_deterministic_filtered_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("apps/b")).unwrap();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        std::fs::write(d.join(".git/HEAD"), "x").unwrap();
        std::fs::write(d.join("apps/b/cm.yaml"), "kind: ConfigMap\n").unwrap();
        std::fs::write(d.join("apps/a.yaml"), "a").unwrap();
        std::fs::write(d.join("logo.png"), "png").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("apps/link.yaml")).unwrap();
        let ignore = vec![".git/".to_string(), "*.png".to_string()];
        let mut one = Vec::new();
        build_tar_gz(d, &ignore, &mut one).unwrap();
        let mut two = Vec::new();
        build_tar_gz(d, &ignore, &mut two).unwrap();
        assert_eq!(one, two);
        let entries = list(&one);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["apps/", "apps/a.yaml", "apps/b/", "apps/b/cm.yaml"]);
        assert!(entries.iter().all(|(_, mtime)| *mtime == 0));

        let mut single = Vec::new();
        build_tar_gz(&d.join("apps/a.yaml"), &[], &mut single).unwrap();
        let names: Vec<String> = list(&single).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a.yaml"]);

        let e = build_tar_gz(&d.join("missing"), &[], Vec::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn metadata_round_trips_through_annotations() {
        let mut m = Metadata {
            source: Some("https://github.com/org/repo".into()),
            revision: Some("main@sha1:abc".into()),
            created: Some("2024-01-01T00:00:00Z".into()),
            annotations: BTreeMap::new(),
        };
        m.annotations
            .insert("org.opencontainers.image.licenses".into(), "MIT".into());
        let a = m.to_annotations();
        assert_eq!(a[ANNOTATION_REVISION], "main@sha1:abc");
        assert_eq!(Metadata::from_annotations(&a), m);
        assert_eq!(now_rfc3339().len(), "2024-01-01T00:00:00Z".len());
    }

    #[test]
    fn layer_selection_messages() {
        let m = Manifest::oci(
            Descriptor::new(FLUX_CONFIG_MEDIA_TYPE, "sha256:a", 2),
            vec![Descriptor::new(FLUX_CONTENT_MEDIA_TYPE, "sha256:b", 3)],
            BTreeMap::new(),
        );
        assert_eq!(select_layer(&m, None).unwrap().digest, "sha256:b");
        let e = select_layer(&m, Some("application/x-other")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to find layer with media type 'application/x-other' in artifact"
        );
        let empty = Manifest::oci(m.config.clone(), vec![], BTreeMap::new());
        assert_eq!(
            select_layer(&empty, None).unwrap_err().to_string(),
            "no layers found in artifact"
        );
    }
}
