//! Transitional: the render pipeline lives in `sluice-render`. These
//! re-exports keep the controller's paths until it calls
//! `sluice_render::render` (then this file goes).

use std::path::{Path, PathBuf};

pub use sluice_render::pipeline::{
    DECRYPT_ANNOTATION, KUSTOMIZATION_FILES, MAX_SUBSTITUTION_GROWTH, decrypt, decrypt_sources,
    relative_to_root, resolve_path, substitute, to_json, write_kustomization,
};

/// The controller's former build options; see `sluice_render::BuildOptions`.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub root: Option<PathBuf>,
    pub deadline: Option<std::time::Instant>,
    pub no_remote_bases: bool,
}

/// `sluice_render::build` with a remote loader constructed for this build
/// (until the controller injects its own through `RenderOptions`).
pub fn build(dir: &Path, b: &BuildOptions) -> Result<Vec<sluice_kustomize::yaml::Value>, String> {
    let remote: Option<std::sync::Arc<dyn sluice_kustomize::remote::RemoteLoader>> =
        if b.no_remote_bases {
            None
        } else {
            Some(std::sync::Arc::new(sluice_git::GitRemoteLoader::from_env()))
        };
    sluice_render::build(
        dir,
        &sluice_render::BuildOptions {
            root: b.root.clone(),
            deadline: b.deadline,
            no_remote_bases: b.no_remote_bases,
            remote,
        },
    )
}
