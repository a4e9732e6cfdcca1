//! The `GitRepository` API (`source.toolkit.fluxcd.io/v1`) as this controller
//! reads and writes it: the types, condition types and Flux's reasons are
//! `sluice-api`'s (field for field as Flux); this module adds only the
//! reasons that are the source controller's own.

pub use sluice_api::meta::{Artifact, LocalObjectReference};
pub use sluice_api::source::{
    GitProvider, GitRepository, GitRepositoryInclude, GitRepositoryRef, GitRepositorySpec,
    GitRepositoryStatus, GitRepositoryVerification,
};

pub const GROUP: &str = sluice_api::source::GROUP;
pub const VERSION: &str = sluice_api::source::VERSION;
pub const KIND: &str = sluice_api::source::GIT_REPOSITORY_KIND;

/// Event reason of a new artifact (Flux's `NewArtifact`).
pub const NEW_ARTIFACT_REASON: &str = "NewArtifact";
/// `spec.ref` names something that cannot be resolved as written.
pub const INVALID_REF_REASON: &str = "InvalidRef";
/// `spec.interval` is not a duration.
pub const INVALID_INTERVAL_REASON: &str = "InvalidInterval";
/// `spec.timeout` is not a duration.
pub const INVALID_TIMEOUT_REASON: &str = "InvalidTimeout";
