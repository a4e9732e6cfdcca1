//! `sluice-source`: the GitRepository source controller.
//!
//! - [`run`] reconciles `source.toolkit.fluxcd.io/v1` `GitRepository`
//!   objects: a cheap remote ref listing each interval, a shallow fetch with
//!   gix only when the wanted ref moved, the tree archived (Flux's ignore
//!   rules) into `<storage>/gitrepository/<ns>/<name>/<commit>.tar.gz`, and
//!   status/conditions/events as Flux's source-controller writes them.
//! - [`artifact_router`] serves the storage over HTTP at the URLs written to
//!   `status.artifact.url`.
//! - [`Storage::local_path`] and [`unpack_artifact`] let in-process
//!   consumers read artifacts from disk.
//!
//! Git itself (fetch, auth, refs, the remote-base loader, the archive
//! format) is in `sluice-git`.

pub mod api;
pub mod controller;
pub mod server;
pub mod storage;

// Git (gix transport, ref selection, ignore rules) lives in sluice-git.
pub use sluice_git::{fetch as git, refs, sourceignore};

pub use api::{Artifact, GitRepository, GitRepositorySpec, GitRepositoryStatus};
pub use controller::{FIELD_MANAGER, Options, run};
pub use server::artifact_router;
pub use sluice_git::install_crypto_provider;
pub use storage::{Storage, UnpackLimits, digest_file, unpack_artifact, unpack_tar_gz};

/// The name of this controller's gate in the process's readiness.
pub const READINESS_GATE: &str = "source-controller";
