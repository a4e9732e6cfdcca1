//! `sluice-render`: Flux's Kustomization pipeline, once, for the
//! Kustomization controller and for `sluice build kustomization` /
//! `sluice diff kustomization`.
//!
//! ```text
//! checkout (artifact::ArtifactCache, or checkout_local for a work tree)
//!   → spec.path → generated kustomization.yaml (Flux's overlays)
//!   → SOPS: generator sources and patch files decrypted (spec.decryption)
//!   → kustomize build (jailed in the checkout; remote bases via the injected loader)
//!   → SOPS: encrypted objects decrypted
//!   → postBuild substitution (only when declared, unless substituteStrategy: Always)
//!   → owner labels and commonMetadata (as `flux build kustomization`), when asked
//! ```
//!
//! [`render`] *writes into* the directory it is given (the generated
//! kustomization, decrypted sources): give it a private checkout made for
//! this one render, as [`artifact::ArtifactCache::checkout`] and
//! [`checkout_local`] return. Files are replaced, never written through, so
//! hard-linked checkouts leave the shared cache untouched.
//!
//! The inputs that come from the cluster (variables, decryption keys) are
//! read by [`inputs::read`]; [`inputs::offline`] gives the inputs of Flux's
//! `--dry-run` (no cluster).

pub mod artifact;
pub mod cluster;
pub mod inputs;
pub mod pipeline;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use sluice_api::kustomization::{KustomizationSpec, NAME_LABEL, NAMESPACE_LABEL};
use sluice_api::meta::{ARTIFACT_FAILED_REASON, BUILD_FAILED_REASON};
use sluice_kustomize::remote::RemoteLoader;

pub use inputs::{Decryption, Inputs};
pub use pipeline::{
    BuildOptions, build, decrypt, decrypt_sources, refuse_encrypted_secrets, relative_to_root,
    resolve_path, substitute, to_json, write_kustomization,
};

/// How to render.
#[derive(Clone, Default)]
pub struct RenderOptions {
    /// The build fails once this passes (the Kustomization's timeout).
    pub deadline: Option<Instant>,
    /// Refuse remote bases and resources (Flux's `--no-remote-bases`).
    pub no_remote_bases: bool,
    /// Fetches remote bases and HTTP(S) resources; constructed by the
    /// process (`sluice_git::GitRemoteLoader`) and shared by its renders.
    /// `None`: remote references fail.
    pub remote_loader: Option<Arc<dyn RemoteLoader>>,
    /// Put the Kustomization's owner labels
    /// (`kustomize.toolkit.fluxcd.io/name`, `/namespace`) and
    /// `spec.commonMetadata` on every object, as `flux build kustomization`
    /// prints them (the controller's applier sets the same at apply time).
    pub owner: Option<Owner>,
}

impl std::fmt::Debug for RenderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderOptions")
            .field("deadline", &self.deadline)
            .field("no_remote_bases", &self.no_remote_bases)
            .field("remote_loader", &self.remote_loader.is_some())
            .field("owner", &self.owner)
            .finish()
    }
}

/// The Kustomization whose labels objects get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
}

/// Why a render failed, with Flux's reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// `ArtifactFailed` (spec.path missing or leaving the artifact) or
    /// `BuildFailed` (everything after).
    pub reason: &'static str,
    /// Paths are relative to the artifact root; no secret value.
    pub message: String,
}

impl RenderError {
    fn artifact(message: String) -> Self {
        RenderError {
            reason: ARTIFACT_FAILED_REASON,
            message,
        }
    }
    fn build(message: String) -> Self {
        RenderError {
            reason: BUILD_FAILED_REASON,
            message,
        }
    }
}

/// Renders `spec` from the checkout `root_dir` (blocking; run it off the
/// async runtime). Nothing outside `root_dir` is read. See the crate docs
/// for the steps and for what is written into `root_dir`.
pub fn render(
    root_dir: &Path,
    spec: &KustomizationSpec,
    inputs: &Inputs,
    opts: &RenderOptions,
) -> Result<Vec<Value>, RenderError> {
    let path = resolve_path(root_dir, spec.path.as_deref()).map_err(RenderError::artifact)?;
    let failed = |m: String| RenderError::build(relative_to_root(&m, root_dir));
    write_kustomization(&path, spec).map_err(failed)?;
    let ids = inputs.decryption.as_ref().map(|d| d.identities.as_ref());
    if let Some(ids) = ids {
        decrypt_sources(root_dir, &path, ids).map_err(RenderError::build)?;
    }
    let bopts = BuildOptions {
        root: Some(root_dir.to_path_buf()),
        deadline: opts.deadline,
        no_remote_bases: opts.no_remote_bases,
        remote: opts.remote_loader.clone(),
    };
    let mut objects = build(&path, &bopts).map_err(failed)?;
    if let Some(ids) = ids {
        objects = decrypt(objects, ids).map_err(RenderError::build)?;
    }
    let mut out = substitute(objects, inputs.vars.as_ref()).map_err(RenderError::build)?;
    if let Some(owner) = &opts.owner {
        for o in &mut out {
            set_owner_metadata(o, owner, spec);
        }
    }
    Ok(out)
}

/// [`render`] of a source artifact, as the controller does it: a private
/// checkout from `cache` (read from the source controller's storage at
/// `storage_root` when the file is there, else downloaded from
/// `artifact.url` within `http_timeout`; the digest verified), rendered,
/// and removed. A checkout failure is `ArtifactFailed`.
pub fn render_artifact(
    cache: &artifact::ArtifactCache,
    storage_root: Option<&Path>,
    artifact: &sluice_api::meta::Artifact,
    http_timeout: std::time::Duration,
    spec: &KustomizationSpec,
    inputs: &Inputs,
    opts: &RenderOptions,
) -> Result<Vec<Value>, RenderError> {
    let (_tmp, dir) = cache
        .checkout(storage_root, artifact, http_timeout)
        .map_err(RenderError::artifact)?;
    render(&dir, spec, inputs, opts)
}

/// Owner labels, then `commonMetadata` labels and annotations, as Flux's
/// `flux build` (`setOwnerLabels`, `SetCommonMetadata`) and sluice-apply do.
fn set_owner_metadata(o: &mut Value, owner: &Owner, spec: &KustomizationSpec) {
    let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let mut labels = vec![
        (NAME_LABEL.to_string(), owner.name.clone()),
        (NAMESPACE_LABEL.to_string(), owner.namespace.clone()),
    ];
    let cm = spec.common_metadata.as_ref();
    labels.extend(cm.and_then(|c| c.labels.clone()).unwrap_or_default());
    insert_all(meta, "labels", labels);
    let annotations = cm.and_then(|c| c.annotations.clone()).unwrap_or_default();
    if !annotations.is_empty() {
        insert_all(meta, "annotations", annotations);
    }
}

fn insert_all(
    meta: &mut Map<String, Value>,
    field: &str,
    kv: impl IntoIterator<Item = (String, String)>,
) {
    let entry = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Some(m) = entry.as_object_mut() {
        for (k, v) in kv {
            m.insert(k, Value::String(v));
        }
    }
}

/// The work tree holding `dir`: the nearest ancestor with a `.git`, or `dir` itself.
pub fn repository_root(dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&dir)
        .to_path_buf()
}

/// A private checkout of a local directory for [`render`], as the source
/// controller would archive it: the whole Git work tree around `dir` when
/// there is one (so `../base` resolves as in the artifact; `.git` left
/// out), else `dir` alone; regular files and directories only (symlinks to
/// files are copied as files). Returns the temporary root (removed on drop),
/// its path, and `dir` relative to it (the `spec.path` to render).
pub fn checkout_local(dir: &Path) -> Result<(tempfile::TempDir, PathBuf, String), String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let root = repository_root(&dir);
    let rel = dir
        .strip_prefix(&root)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix("sluice-render-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?;
    copy_dir(&root, tmp.path()).map_err(|e| format!("copying {}: {e}", root.display()))?;
    let path = tmp.path().to_path_buf();
    Ok((tmp, path, if rel.is_empty() { ".".into() } else { rel }))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_dir(&src, &dst)?;
        } else if ft.is_file() || (ft.is_symlink() && src.is_file()) {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The mask Flux's `flux build` prints for SOPS-encrypted Secret values.
pub const SOPS_MASK: &str = "**SOPS**";

/// Replaces the values of a Secret's `data` (base64 of the mask) and
/// `stringData` with [`SOPS_MASK`] and drops a `sops` block, as `flux build`
/// does for encrypted Secrets; for printing rendered objects without their
/// secret values. Other objects are left alone.
pub fn mask_secret(o: &mut Value) {
    if o.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    let Some(m) = o.as_object_mut() else {
        return;
    };
    m.remove("sops");
    for (field, mask) in [("data", "KipTT1BTKio="), ("stringData", SOPS_MASK)] {
        if let Some(Value::Object(d)) = m.get_mut(field) {
            for v in d.values_mut() {
                *v = Value::String(mask.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: Value) -> KustomizationSpec {
        let mut v = json!({
            "interval": "1m",
            "prune": false,
            "sourceRef": {"kind": "GitRepository", "name": "repo"}
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn renders_with_flux_reasons_and_owner_labels() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("apps")).expect("mkdir");
        std::fs::write(
            d.path().join("apps/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${A:=x}\n",
        )
        .expect("write");
        let s = spec(json!({
            "path": "./apps",
            "postBuild": {"substitute": {"A": "y"}},
            "commonMetadata": {"labels": {"team": "t"}, "annotations": {"n": "1"}}
        }));
        let opts = RenderOptions {
            owner: Some(Owner {
                name: "ks".into(),
                namespace: "flux".into(),
            }),
            ..RenderOptions::default()
        };
        let objs = render(d.path(), &s, &inputs::offline(&s), &opts).expect("render");
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0]["data"]["a"], "y");
        assert_eq!(objs[0]["metadata"]["labels"][NAME_LABEL], "ks");
        assert_eq!(objs[0]["metadata"]["labels"][NAMESPACE_LABEL], "flux");
        assert_eq!(objs[0]["metadata"]["labels"]["team"], "t");
        assert_eq!(objs[0]["metadata"]["annotations"]["n"], "1");

        let missing = spec(json!({"path": "./nope"}));
        let e = render(d.path(), &missing, &Inputs::default(), &opts).unwrap_err();
        assert_eq!(e.reason, ARTIFACT_FAILED_REASON);
        let broken = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            broken.path().join("kustomization.yaml"),
            "resources: [missing.yaml]\n",
        )
        .expect("write");
        let e = render(broken.path(), &spec(json!({})), &Inputs::default(), &opts).unwrap_err();
        assert_eq!(e.reason, BUILD_FAILED_REASON);
        assert!(
            !e.message.contains(&broken.path().display().to_string()),
            "{}",
            e.message
        );
    }

    #[test]
    fn local_checkouts_are_private_copies() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join(".git")).expect("mkdir");
        std::fs::create_dir_all(d.path().join("apps/a")).expect("mkdir");
        std::fs::write(d.path().join("apps/a/x.yaml"), "x").expect("write");
        let (_tmp, root, rel) = checkout_local(&d.path().join("apps/a")).expect("checkout");
        assert_eq!(rel, "apps/a");
        assert!(root.join("apps/a/x.yaml").is_file());
        assert!(!root.join(".git").exists());
        assert_ne!(root, d.path());
    }

    #[test]
    fn secrets_are_masked_as_flux_does() {
        let mut s = json!({"kind": "Secret", "data": {"a": "c2VjcmV0"}, "stringData": {"b": "secret"}, "sops": {}});
        mask_secret(&mut s);
        assert_eq!(s["data"]["a"], "KipTT1BTKio=");
        assert_eq!(s["stringData"]["b"], SOPS_MASK);
        assert!(s.get("sops").is_none());
        let mut c = json!({"kind": "ConfigMap", "data": {"a": "x"}});
        mask_secret(&mut c);
        assert_eq!(c["data"]["a"], "x");
    }
}
