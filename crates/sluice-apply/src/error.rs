//! Errors. Every error names the object (`Kind/namespace/name`) and the cause.

use std::fmt;
use std::time::Duration;

use crate::changeset::ChangeSet;
use crate::client::RequestCounts;
use crate::object::{ObjectRef, Stage};

pub use sluice_api::meta::error_chain;

/// A failed Kubernetes API request, reduced to what callers and humans need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status code, when the API server answered.
    pub code: Option<u16>,
    /// The `Status` reason (`Forbidden`, `Invalid`, `NotFound`, ...), if any.
    pub reason: String,
    /// The message.
    pub message: String,
    /// The service account the request impersonated (`namespace/name`), if any.
    pub service_account: Option<String>,
}

impl ApiFailure {
    /// `cluster` is the server of a remote cluster: a failure to reach it names it, with the
    /// causes beneath (`client error (Connect)` alone says nothing of where or why).
    pub(crate) fn from_kube(
        err: kube::Error,
        service_account: Option<&str>,
        cluster: Option<&str>,
    ) -> Self {
        let (code, reason, message) = match err {
            kube::Error::Api(status) => (
                Some(status.code),
                status.reason.clone(),
                if status.message.is_empty() {
                    format!("{status:?}")
                } else {
                    status.message.clone()
                },
            ),
            other => {
                let mut message = error_chain(&other);
                if let Some(c) = cluster {
                    message.push_str(&format!(" (cluster {c})"));
                }
                (None, String::new(), message)
            }
        };
        Self {
            code,
            reason,
            message,
            service_account: service_account.map(str::to_owned),
        }
    }

    /// Whether the API server refused the request for lack of permissions (HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        self.code == Some(403)
    }

    /// ` (Reason)`, or nothing without a reason: Flux puts it after the operation.
    pub fn reason_suffix(&self) -> String {
        if self.reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.reason)
        }
    }

    /// HTTP 404.
    pub fn is_not_found(&self) -> bool {
        self.code == Some(404)
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.is_forbidden()
            && let Some(sa) = &self.service_account
        {
            write!(f, " (applying as service account {sa})")?;
        }
        Ok(())
    }
}

/// What went wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectErrorKind {
    /// The rendered object is not a Kubernetes object, or is malformed.
    #[error("invalid object: {0}")]
    Invalid(String),
    /// The same object appears twice in the rendered set.
    #[error("duplicate object in the rendered set")]
    Duplicate,
    /// The API server does not serve the object's kind in that version.
    #[error(
        "no matches for kind \"{kind}\" in version \"{api_version}\"{}",
        no_match_hint(api_version)
    )]
    NoMatch {
        /// Kind.
        kind: String,
        /// `apiVersion`.
        api_version: String,
    },
    /// Discovery of the object's API group failed.
    #[error("discovery failed{}: {}", .0.reason_suffix(), .0)]
    Discovery(ApiFailure),
    /// A namespaced object without namespace.
    #[error("namespace not specified")]
    NamespaceNotSpecified,
    /// Reading the live object failed.
    #[error("query failed{}: {}", .0.reason_suffix(), .0)]
    Get(ApiFailure),
    /// The server-side dry-run apply failed (invalid object, immutable field without force,
    /// missing permissions, ...).
    #[error("dry-run failed{}: {}", .0.reason_suffix(), .0)]
    DryRun(ApiFailure),
    /// An immutable field changed and the object could not be deleted for recreation.
    #[error("immutable field detected, failed to delete object{}: {}", .0.reason_suffix(), .0)]
    Recreate(ApiFailure),
    /// An immutable field changed and the deleted object did not go away in time.
    #[error("immutable field detected, object still exists after {0:?} (finalizers?)")]
    RecreateTimeout(Duration),
    /// Handing other field managers' fields over to ours failed.
    #[error("metadata.managedFields cleanup failed{}: {}", .0.reason_suffix(), .0)]
    Cleanup(ApiFailure),
    /// The server-side apply failed.
    #[error("apply failed{}: {}", .0.reason_suffix(), .0)]
    Apply(ApiFailure),
    /// A CRD was not Established, or a Namespace not Active, in time.
    #[error("not ready after {timeout:?}: {state}")]
    NotReady {
        /// How long was waited.
        timeout: Duration,
        /// The last state seen.
        state: String,
    },
    /// Deleting the object failed.
    #[error("delete failed{}: {}", .0.reason_suffix(), .0)]
    Delete(ApiFailure),
    /// Not deleted: the object was deleted and created again under the same name after it
    /// was read (its uid changed), so the delete's uid precondition failed. It is looked at
    /// again on the next run.
    #[error("not deleted: it was replaced by a new object of the same name (uid {uid} is gone)")]
    Replaced {
        /// The uid of the object that was meant to be deleted.
        uid: String,
    },
    /// Not attempted because an earlier object of the same stage failed.
    #[error("not applied: an earlier object failed")]
    NotAttempted,
}

/// An error about one object: `Kind/namespace/name <what went wrong>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject} {kind}")]
pub struct ObjectError {
    /// `Kind/namespace/name` (or what is known of a malformed object).
    pub subject: String,
    /// The object, when it could be identified.
    pub object: Option<Box<ObjectRef>>,
    /// What went wrong.
    pub kind: ObjectErrorKind,
}

impl ObjectError {
    pub(crate) fn new(object: &ObjectRef, kind: ObjectErrorKind) -> Self {
        Self {
            subject: object.subject(),
            object: Some(Box::new(object.clone())),
            kind,
        }
    }

    /// The API failure behind this error, if it came from a request.
    pub fn api_failure(&self) -> Option<&ApiFailure> {
        match &self.kind {
            ObjectErrorKind::Discovery(f)
            | ObjectErrorKind::Get(f)
            | ObjectErrorKind::DryRun(f)
            | ObjectErrorKind::Recreate(f)
            | ObjectErrorKind::Cleanup(f)
            | ObjectErrorKind::Apply(f)
            | ObjectErrorKind::Delete(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the API server refused a request for lack of permissions.
    pub fn is_forbidden(&self) -> bool {
        self.api_failure().is_some_and(ApiFailure::is_forbidden)
    }
}

/// A failed apply. Stages before `stage` were applied completely; `change_set` holds what was
/// done before the failure (including objects of the failing stage that were applied), so the
/// caller can keep them in the inventory and report them.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ApplyError {
    /// The stage that failed; `None` when the rendered set was rejected before any request
    /// (malformed or duplicate objects).
    pub stage: Option<Stage>,
    /// The errors, one per failed object.
    pub errors: Vec<ObjectError>,
    /// What was applied before and during the failing stage.
    pub change_set: ChangeSet,
    /// The requests made.
    pub requests: RequestCounts,
}

impl fmt::Display for ApplyError {
    /// The errors, one per line, then (as kustomize-controller does on a partial apply) the
    /// change log of what was applied.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self
            .errors
            .iter()
            .filter(|e| e.kind != ObjectErrorKind::NotAttempted)
            .map(ToString::to_string)
            .collect();
        f.write_str(&errors.join("\n"))?;
        let log = self.change_set.change_log();
        if !log.is_empty() {
            write!(f, "\n{log}")?;
        }
        Ok(())
    }
}

/// A prune that could not delete some objects. The others were deleted; `failed` must stay in
/// the inventory so the next run tries again.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PruneError {
    /// The errors, one per object that could not be deleted.
    pub errors: Vec<ObjectError>,
    /// The objects that could not be deleted.
    pub failed: Vec<ObjectRef>,
    /// What was deleted or skipped.
    pub change_set: ChangeSet,
    /// The requests made.
    pub requests: RequestCounts,
}

impl fmt::Display for PruneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        write!(f, "prune failed: {}", errors.join("; "))
    }
}

/// Why a kind may be unknown, after Flux's `no matches for kind` message.
fn no_match_hint(api_version: &str) -> &'static str {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match group {
        "helm.toolkit.fluxcd.io" => {
            " (HelmReleases are served by sluice's HelmRelease controller, whose CRD `sluice install --helmrelease` installs, or by Flux's helm-controller with its CRDs)"
        }
        "source.toolkit.fluxcd.io" => {
            " (sluice serves GitRepository, OCIRepository, HelmRepository, HelmChart and Bucket, and reads ExternalArtifact; `sluice install` installs their CRDs)"
        }
        "notification.toolkit.fluxcd.io" => {
            " (Alerts, Providers and Receivers are served by sluice with `--notification`, whose CRDs `sluice install --notification` installs, or by Flux's notification-controller)"
        }
        "image.toolkit.fluxcd.io" => {
            " (served by Flux's image automation controllers, which sluice does not replace)"
        }
        _ => {
            " (is its CustomResourceDefinition installed? If another Kustomization applies it, list that one in dependsOn)"
        }
    }
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn unknown_kinds_say_what_serves_them() {
        let e = |v: &str| {
            ObjectErrorKind::NoMatch {
                kind: "K".into(),
                api_version: v.into(),
            }
            .to_string()
        };
        assert!(e("helm.toolkit.fluxcd.io/v2").contains("helm-controller"));
        assert!(e("monitoring.coreos.com/v1").contains("dependsOn"));
        assert!(e("v1").starts_with("no matches for kind \"K\" in version \"v1\" ("));
    }
}
