//! Flux's condition types and reasons, and helpers to keep a list of
//! [`Condition`]s the way `apimachinery`'s `meta.SetStatusCondition` does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

// --- Condition types shared by all Flux objects (fluxcd/pkg apis/meta).

/// The object is fully reconciled. While False, it is (being) reconciled or has failed.
pub const READY_CONDITION: &str = "Ready";
/// The reconciliation has stalled; only present while True ("abnormal-true").
pub const STALLED_CONDITION: &str = "Stalled";
/// The controller is working on the latest changes; only present while True ("abnormal-true").
pub const RECONCILING_CONDITION: &str = "Reconciling";
/// The last health assessment (Kustomization `wait` or `healthChecks`).
pub const HEALTHY_CONDITION: &str = "Healthy";

// --- Condition types of sources (source-controller api/v1).

/// The Artifact is in storage; present once an Artifact was stored.
pub const ARTIFACT_IN_STORAGE_CONDITION: &str = "ArtifactInStorage";
/// The Artifact is outdated; only present while True.
pub const ARTIFACT_OUTDATED_CONDITION: &str = "ArtifactOutdated";
/// The result of verifying the source (commit signatures); present when verification is enabled.
pub const SOURCE_VERIFIED_CONDITION: &str = "SourceVerified";
/// Fetching from upstream failed; only present while True.
pub const FETCH_FAILED_CONDITION: &str = "FetchFailed";
/// Building the Artifact failed; only present while True.
pub const BUILD_FAILED_CONDITION: &str = "BuildFailed";
/// A storage (filesystem) operation failed; only present while True.
pub const STORAGE_OPERATION_FAILED_CONDITION: &str = "StorageOperationFailed";
/// One of a GitRepository's includes is unavailable; only present while True.
pub const INCLUDE_UNAVAILABLE_CONDITION: &str = "IncludeUnavailable";

// --- Generic reasons (fluxcd/pkg apis/meta).

/// The operation succeeded.
pub const SUCCEEDED_REASON: &str = "Succeeded";
/// The operation failed.
pub const FAILED_REASON: &str = "Failed";
/// The reconciliation is underway.
pub const PROGRESSING_REASON: &str = "Progressing";
/// The reconciliation failed and will be retried.
pub const PROGRESSING_WITH_RETRY_REASON: &str = "ProgressingWithRetry";
/// The reconciliation is suspended.
pub const SUSPENDED_REASON: &str = "Suspended";
/// A dependency is not ready.
pub const DEPENDENCY_NOT_READY_REASON: &str = "DependencyNotReady";
/// The reconciliation succeeded.
pub const RECONCILIATION_SUCCEEDED_REASON: &str = "ReconciliationSucceeded";
/// The reconciliation failed.
pub const RECONCILIATION_FAILED_REASON: &str = "ReconciliationFailed";
/// A field needs a feature gate that is disabled.
pub const FEATURE_GATE_DISABLED_REASON: &str = "FeatureGateDisabled";

// --- Kustomization reasons (kustomize-controller api/v1).

/// A health check failed.
pub const HEALTH_CHECK_FAILED_REASON: &str = "HealthCheckFailed";
/// Garbage collection failed.
pub const PRUNE_FAILED_REASON: &str = "PruneFailed";
/// Downloading the source Artifact failed.
pub const ARTIFACT_FAILED_REASON: &str = "ArtifactFailed";
/// Building the manifests (kustomize build, substitution, decryption) failed.
pub const BUILD_FAILED_REASON: &str = "BuildFailed";

// --- Source reasons (source-controller api/v1).

/// The source URL is invalid.
pub const URL_INVALID_REASON: &str = "URLInvalid";
/// The credentials are missing fields or were rejected.
pub const AUTHENTICATION_FAILED_REASON: &str = "AuthenticationFailed";
/// Verifying the source failed.
pub const VERIFICATION_ERROR_REASON: &str = "VerificationError";
/// Creating a directory failed.
pub const DIRECTORY_CREATION_FAILED_REASON: &str = "DirectoryCreationFailed";
/// A stat on a path failed.
pub const STAT_OPERATION_FAILED_REASON: &str = "StatOperationFailed";
/// A read failed.
pub const READ_OPERATION_FAILED_REASON: &str = "ReadOperationFailed";
/// Acquiring a lock failed.
pub const ACQUIRE_LOCK_FAILED_REASON: &str = "AcquireLockFailed";
/// A path is invalid.
pub const INVALID_PATH_REASON: &str = "InvalidPath";
/// Archiving failed.
pub const ARCHIVE_OPERATION_FAILED_REASON: &str = "ArchiveOperationFailed";
/// Updating a symlink failed.
pub const SYMLINK_UPDATE_FAILED_REASON: &str = "SymlinkUpdateFailed";
/// The existing Artifact is up to date with the source.
pub const ARTIFACT_UP_TO_DATE_REASON: &str = "ArtifactUpToDate";
/// A cache operation failed.
pub const CACHE_OPERATION_FAILED_REASON: &str = "CacheOperationFailed";
/// Patching a Kubernetes object failed.
pub const PATCH_OPERATION_FAILED_REASON: &str = "PatchOperationFailed";
/// A Git operation (clone, checkout, ...) succeeded.
pub const GIT_OPERATION_SUCCEEDED_REASON: &str = "GitOperationSucceeded";
/// A Git operation (clone, checkout, ...) failed.
pub const GIT_OPERATION_FAILED_REASON: &str = "GitOperationFailed";
/// The STS (security token service) configuration of a source is invalid.
pub const INVALID_STS_CONFIGURATION_REASON: &str = "InvalidSTSConfiguration";
/// The provider configuration of a source (`spec.provider` and what goes with it) is invalid.
pub const INVALID_PROVIDER_CONFIGURATION_REASON: &str = "InvalidProviderConfiguration";
/// A storage operation failed (the reason that goes with [`STORAGE_OPERATION_FAILED_CONDITION`]).
pub const STORAGE_OPERATION_FAILED_REASON: &str = "StorageOperationFailed";
/// A CEL expression of the spec does not compile, reads what it may not, or does not give
/// the type asked (Flux's `meta.InvalidCELExpressionReason`).
pub const INVALID_CEL_EXPRESSION_REASON: &str = "InvalidCELExpression";
/// sluice's reason for a field it accepts (Flux's schema) but does not
/// implement: refused by a Stalled condition, never silently ignored.
pub const UNSUPPORTED_FIELD_REASON: &str = "UnsupportedField";

/// Condition status `True`.
pub const CONDITION_TRUE: &str = "True";
/// Condition status `False`.
pub const CONDITION_FALSE: &str = "False";
/// Condition status `Unknown`.
pub const CONDITION_UNKNOWN: &str = "Unknown";

/// The longest condition message Flux's CRDs admit (`maxLength` of `message`).
pub const MAX_CONDITION_MESSAGE_LENGTH: usize = 32768;

/// The current time, truncated to seconds as the API server stores it.
pub fn now() -> Time {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A condition of the given type, status, reason and message, transitioning now.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: truncate_message(message.into()),
        observed_generation,
        last_transition_time: now(),
    }
}

/// Cuts a message down to [`MAX_CONDITION_MESSAGE_LENGTH`] bytes (on a character boundary).
pub fn truncate_message(mut message: String) -> String {
    if message.len() > MAX_CONDITION_MESSAGE_LENGTH {
        let mut end = MAX_CONDITION_MESSAGE_LENGTH;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == CONDITION_TRUE)
}

/// Whether the condition of the given type is present with status `False`.
pub fn is_condition_false(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == CONDITION_FALSE)
}

/// Whether the object is Ready (its `Ready` condition is `True`).
pub fn is_ready(conditions: &[Condition]) -> bool {
    is_condition_true(conditions, READY_CONDITION)
}

/// Sets `condition`, replacing any condition of the same type.
///
/// When a condition of that type exists with the same status, its `lastTransitionTime` is kept;
/// otherwise the time of `condition` is used. Returns whether anything changed (ignoring the
/// time of an unchanged status), so callers can skip a no-op status patch.
pub fn set_condition(conditions: &mut Vec<Condition>, condition: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        None => {
            conditions.push(condition);
            true
        }
        Some(existing) => {
            let mut changed = false;
            if existing.status != condition.status {
                existing.status = condition.status;
                existing.last_transition_time = condition.last_transition_time;
                changed = true;
            }
            if existing.reason != condition.reason {
                existing.reason = condition.reason;
                changed = true;
            }
            if existing.message != condition.message {
                existing.message = condition.message;
                changed = true;
            }
            if existing.observed_generation != condition.observed_generation {
                existing.observed_generation = condition.observed_generation;
                changed = true;
            }
            changed
        }
    }
}

/// Removes the condition of the given type. Returns whether one was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn condition(type_: &str, status: &str, reason: &str, time: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            observed_generation: Some(1),
            last_transition_time: at(time),
        }
    }

    #[test]
    fn set_appends_new_type() {
        let mut conditions = vec![];
        assert!(set_condition(
            &mut conditions,
            condition(READY_CONDITION, CONDITION_TRUE, SUCCEEDED_REASON, 10)
        ));
        assert_eq!(conditions.len(), 1);
        assert!(is_ready(&conditions));
    }

    #[test]
    fn set_keeps_transition_time_when_status_unchanged() {
        let mut conditions = vec![condition(
            READY_CONDITION,
            CONDITION_FALSE,
            PROGRESSING_REASON,
            10,
        )];
        let changed = set_condition(
            &mut conditions,
            condition(READY_CONDITION, CONDITION_FALSE, BUILD_FAILED_REASON, 20),
        );
        assert!(changed);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason, BUILD_FAILED_REASON);
        assert_eq!(conditions[0].last_transition_time, at(10));
    }

    #[test]
    fn set_moves_transition_time_when_status_changes() {
        let mut conditions = vec![
            condition(RECONCILING_CONDITION, CONDITION_TRUE, PROGRESSING_REASON, 5),
            condition(READY_CONDITION, CONDITION_FALSE, PROGRESSING_REASON, 10),
        ];
        set_condition(
            &mut conditions,
            condition(READY_CONDITION, CONDITION_TRUE, SUCCEEDED_REASON, 20),
        );
        let ready = find_condition(&conditions, READY_CONDITION).unwrap();
        assert_eq!(ready.last_transition_time, at(20));
        assert_eq!(ready.status, CONDITION_TRUE);
        // Order is kept.
        assert_eq!(conditions[1].type_, READY_CONDITION);
    }

    #[test]
    fn set_identical_is_no_change() {
        let mut conditions = vec![condition(
            READY_CONDITION,
            CONDITION_TRUE,
            SUCCEEDED_REASON,
            10,
        )];
        assert!(!set_condition(
            &mut conditions,
            condition(READY_CONDITION, CONDITION_TRUE, SUCCEEDED_REASON, 99)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));
    }

    #[test]
    fn remove_and_queries() {
        let mut conditions = vec![
            condition(RECONCILING_CONDITION, CONDITION_TRUE, PROGRESSING_REASON, 5),
            condition(READY_CONDITION, CONDITION_FALSE, PROGRESSING_REASON, 10),
        ];
        assert!(is_condition_true(&conditions, RECONCILING_CONDITION));
        assert!(is_condition_false(&conditions, READY_CONDITION));
        assert!(!is_ready(&conditions));
        assert!(remove_condition(&mut conditions, RECONCILING_CONDITION));
        assert!(!remove_condition(&mut conditions, RECONCILING_CONDITION));
        assert!(find_condition(&conditions, RECONCILING_CONDITION).is_none());
    }

    #[test]
    fn messages_are_truncated_on_char_boundary() {
        let long = "é".repeat(MAX_CONDITION_MESSAGE_LENGTH);
        let cut = truncate_message(long);
        assert!(cut.len() <= MAX_CONDITION_MESSAGE_LENGTH);
        assert!(cut.chars().all(|c| c == 'é'));
        let c = new_condition(
            READY_CONDITION,
            CONDITION_TRUE,
            SUCCEEDED_REASON,
            "ok",
            None,
        );
        assert_eq!(c.message, "ok");
    }
}
