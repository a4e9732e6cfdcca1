//! The `GitRepository` API (`source.toolkit.fluxcd.io/v1`) as this controller
//! reads and writes it: the types are `sluice-api`'s (field for field as
//! Flux); this module adds the condition types and reasons the controller
//! uses and small condition helpers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

pub use sluice_api::meta::{Artifact, LocalObjectReference};
pub use sluice_api::source::{
    GitProvider, GitRepository, GitRepositoryInclude, GitRepositoryRef, GitRepositorySpec,
    GitRepositoryStatus, GitRepositoryVerification,
};

pub const GROUP: &str = sluice_api::source::GROUP;
pub const VERSION: &str = sluice_api::source::VERSION;
pub const KIND: &str = sluice_api::source::GIT_REPOSITORY_KIND;

/// Condition types and reasons (fluxcd/pkg/apis/meta and source-controller).
pub mod meta {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    pub const FETCH_FAILED: &str = "FetchFailed";
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";

    pub const SUCCEEDED: &str = "Succeeded";
    pub const PROGRESSING: &str = "Progressing";
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    pub const URL_INVALID: &str = "URLInvalid";
    pub const INVALID_REF: &str = "InvalidRef";
    pub const UNSUPPORTED: &str = "UnsupportedField";
    pub const STORAGE_OPERATION_FAILED_REASON: &str = "StorageOperationFailed";
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    pub const NEW_REVISION: &str = "NewRevision";
    pub const NEW_ARTIFACT: &str = "NewArtifact";

    /// The annotation `flux reconcile` sets to request a reconciliation.
    pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
    /// The finalizer Flux's controllers put on their objects.
    pub const FINALIZER: &str = "finalizers.fluxcd.io";
}

/// Sets condition `type_` like fluxcd/pkg/runtime/conditions: the transition
/// time only moves when the status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status_s = if status { "True" } else { "False" };
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status_s {
            c.last_transition_time = sluice_api::meta::now();
        }
        c.status = status_s.to_string();
        c.reason = reason.to_string();
        c.message = message.to_string();
        c.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.to_string(),
        status: status_s.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: sluice_api::meta::now(),
    });
}

pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Orders conditions as Flux does (Ready first, then negative polarity, then
/// the rest), so status is stable and diffs stay quiet.
pub fn sort_conditions(conditions: &mut [Condition]) {
    let rank = |t: &str| match t {
        meta::READY => 0,
        meta::RECONCILING => 1,
        meta::STALLED => 2,
        meta::FETCH_FAILED => 3,
        meta::ARTIFACT_OUTDATED => 4,
        meta::STORAGE_OPERATION_FAILED => 5,
        meta::ARTIFACT_IN_STORAGE => 6,
        _ => 7,
    };
    conditions.sort_by(|a, b| {
        rank(&a.type_)
            .cmp(&rank(&b.type_))
            .then(a.type_.cmp(&b.type_))
    });
}
