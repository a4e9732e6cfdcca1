//! Transitional: artifacts are checked out by `sluice_render::artifact`.

pub use sluice_render::artifact::{ArtifactCache, fetch_and_unpack};
