//! Readiness of Kubernetes objects, computed the way kstatus does.
//!
//! Flux decides whether applied objects are healthy with
//! `sigs.k8s.io/cli-utils/pkg/kstatus/status`. [`compute`] reimplements
//! those rules over a `serde_json::Value` of any kind, with the same
//! decision order, reasons and messages:
//!
//! 1. `metadata.deletionTimestamp` set → [`Status::Terminating`];
//! 2. `metadata.generation` ≠ `status.observedGeneration` (both present)
//!    → [`Status::InProgress`];
//! 3. the first `Reconciling=True` → InProgress, or `Stalled=True` →
//!    [`Status::Failed`], in condition order;
//! 4. the kind-specific rule for Deployment, StatefulSet, DaemonSet,
//!    ReplicaSet, Job, Pod, PersistentVolumeClaim, Service,
//!    CustomResourceDefinition, PodDisruptionBudget, and the always-ready
//!    ConfigMap, Secret and CronJob;
//! 5. otherwise [`Status::Current`] ("Resource is current") — this covers
//!    objects without a status.
//!
//! [`Profile::Flux`] adds the custom Job rule Flux's kustomize-controller
//! registers for its health checks (a Job is Current only when complete).
//! Flux's user-defined CEL health checks (`spec.healthCheckExprs`) are not
//! part of this crate.
//!
//! kstatus itself never reads the `Ready` condition; Flux objects are
//! judged by their `Reconciling`/`Stalled` conditions. The opt-in
//! [`ComputeOptions::ready_condition`] adds a last rule that maps `Ready`
//! True/False/Unknown to Current/Failed/InProgress for objects no other
//! rule decided.
//!
//! [`compute_with_pods`] adds what kstatus' polling readers (used by Flux's
//! health checks) do on top: ReplicaSets and StatefulSets that are
//! InProgress while one of their Pods is Failed are reported Failed.
//!
//! [`explain`] goes beyond kstatus: given a workload, its Pods and related
//! objects as plain JSON, it returns the chain of causes behind a workload
//! that is not ready.

pub mod cel;
pub mod certmanager;
mod explain;
mod fields;
pub mod legacy;
mod polling;
mod rules;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use explain::{CauseStep, ExplainInput, ObjectRef, explain, render_chain};
pub use polling::compute_with_pods;
pub use rules::SCHEDULE_WINDOW_SECS;

/// The readiness of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    InProgress,
    Failed,
    Current,
    Terminating,
    NotFound,
    Unknown,
}

impl Status {
    /// kstatus' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Failed => "Failed",
            Status::Current => "Current",
            Status::Terminating => "Terminating",
            Status::NotFound => "NotFound",
            Status::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "InProgress" => Status::InProgress,
            "Failed" => Status::Failed,
            "Current" => Status::Current,
            "Terminating" => Status::Terminating,
            "NotFound" => Status::NotFound,
            "Unknown" => Status::Unknown,
            other => return Err(Error::Malformed(format!("unknown status {other:?}"))),
        })
    }
}

/// A standard kstatus condition (`Reconciling` or `Stalled`, status
/// `True`) that describes the computed status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Condition {
    fn reconciling(reason: &str, message: &str) -> Self {
        Condition {
            type_: "Reconciling".into(),
            status: "True".into(),
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn stalled(reason: &str, message: &str) -> Self {
        Condition {
            type_: "Stalled".into(),
            status: "True".into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Outcome of [`compute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResult {
    pub status: Status,
    /// Human-readable explanation (kstatus' message).
    pub message: String,
    /// The Reconciling/Stalled condition kstatus would add, if any.
    pub conditions: Vec<Condition>,
}

/// Why a status could not be computed. kstatus reports these as errors
/// (pollers then show the object as Unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A field kstatus reads with a fixed type has another JSON type.
    #[error("looking up {path} from resource: expected {expected}")]
    FieldType {
        path: String,
        expected: &'static str,
    },
    /// The object (or its status) does not have the expected shape.
    #[error("malformed object: {0}")]
    Malformed(String),
    /// A Pod phase kstatus does not know.
    #[error("unknown phase {0}")]
    UnknownPodPhase(String),
}

/// Which set of rules to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Upstream `kstatus` `status.Compute`, unchanged.
    #[default]
    Kstatus,
    /// What Flux's kustomize-controller health checks use: kstatus plus
    /// Flux's custom Job status reader (`fluxcd/pkg/runtime/statusreaders`),
    /// which replaces the whole computation for `batch` Jobs: Current only
    /// once `Complete=True`, Failed on `Failed=True`, otherwise InProgress
    /// ("Job in progress") — no deletion, generation or
    /// Reconciling/Stalled checks.
    Flux,
}

/// Options for [`compute_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComputeOptions {
    /// "Now" as Unix seconds, for the Pod scheduling window; `None` uses
    /// the system clock.
    pub now: Option<i64>,
    /// Rule set; [`Profile::Kstatus`] by default.
    pub profile: Profile,
    /// Sluice extension: fall back to the `Ready` condition (see crate
    /// docs). Off in plain kstatus and in Flux.
    pub ready_condition: bool,
}

impl ComputeOptions {
    /// Flux's health-check rules ([`Profile::Flux`]) with the system clock.
    pub fn flux() -> Self {
        ComputeOptions {
            profile: Profile::Flux,
            ..ComputeOptions::default()
        }
    }

    fn now_unix(&self) -> i64 {
        self.now.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }
}

/// The kstatus status of `obj` (a full object including `status`).
pub fn compute(obj: &Value) -> Result<StatusResult, Error> {
    rules::compute(obj, &ComputeOptions::default())
}

/// [`compute`] with explicit options.
pub fn compute_with(obj: &Value, opts: &ComputeOptions) -> Result<StatusResult, Error> {
    rules::compute(obj, opts)
}

/// [`compute_with`], mapping errors to [`Status::Unknown`] with the error
/// text as message, as kstatus pollers do.
pub fn compute_or_unknown(obj: &Value, opts: &ComputeOptions) -> StatusResult {
    rules::compute(obj, opts).unwrap_or_else(|e| StatusResult {
        status: Status::Unknown,
        message: e.to_string(),
        conditions: Vec::new(),
    })
}

/// The result for an object that does not exist (kstatus' NotFound).
pub fn not_found() -> StatusResult {
    StatusResult {
        status: Status::NotFound,
        message: "Resource not found".into(),
        conditions: Vec::new(),
    }
}

/// Compiles the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests;
