//! `sluice-source`: Flux's source-controller.
//!
//! - [`run`] reconciles the `source.toolkit.fluxcd.io/v1` kinds:
//!   `GitRepository` (a cheap remote ref listing each interval, a shallow
//!   fetch with gix only when the wanted ref moved, the tree archived with
//!   Flux's ignore rules), with status, conditions and events as Flux's
//!   source-controller writes them; `OCIRepository` (one manifest HEAD per
//!   poll, the layer pulled only when its digest moved); `HelmRepository`
//!   (the index streamed and digested; OCI repositories are static);
//!   `HelmChart` (from a HelmRepository, HTTP or OCI, or packaged from a
//!   GitRepository with its values files and its dependencies, those in
//!   chart repositories fetched by `helm_dependencies`); `Bucket` (an S3
//!   bucket's listing digested each interval, the objects downloaded only
//!   when it moved, by `s3`). Each kind is a module with its own
//!   `sync`; the loop around it (scheduling, status, events, metrics,
//!   finalizer, garbage collection) is [`reconciler`]'s, written once.
//! - [`artifact_router`] serves the storage over HTTP at the URLs written to
//!   `status.artifact.url`.
//! - [`Storage::local_path`] and [`unpack_artifact`] let in-process
//!   consumers read artifacts from disk.
//!
//! Git itself (fetch, auth, refs, the remote-base loader, the archive
//! format) is in `sluice-git`.

pub mod api;
mod auth;
mod bucket;
pub mod controller;
mod git_repository;
mod helm_chart;
mod helm_dependencies;
mod helm_repository;
mod http;
mod oci_repository;
mod reconciler;
mod s3;
pub mod server;
pub mod storage;

// Git (gix transport, ref selection, ignore rules) lives in sluice-git.
pub use sluice_git::{fetch as git, refs, sourceignore};

pub use api::{Artifact, GitRepository, GitRepositorySpec, GitRepositoryStatus};
pub use controller::{FIELD_MANAGER, Options, readiness_gates, run};
pub use server::artifact_router;
pub use sluice_git::install_crypto_provider;
pub use storage::{Storage, UnpackLimits, digest_file, unpack_artifact, unpack_tar_gz};

/// The name of this controller's gate in the process's readiness.
pub const READINESS_GATE: &str = "source-controller";
