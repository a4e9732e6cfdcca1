//! Staged server-side apply, inventory and prune: steps (4) and (5) of sluice's data flow,
//! done as Flux's kustomize-controller does them (`fluxcd/pkg/ssa`).
//!
//! The Kustomization controller calls, per reconciliation:
//!
//! 1. [`Applier::new`] (or [`Applier::impersonating`] for `spec.serviceAccountName`);
//! 2. [`Applier::apply`] with the rendered, substituted objects and [`ApplyOptions`]; the
//!    [`ApplyResult`] holds the [`ChangeSet`] (for events: [`ChangeSet::change_log`]), the new
//!    inventory ([`ApplyResult::inventory`]), the objects to health-check
//!    ([`ApplyResult::applied`]) and the request counts;
//! 3. [`ApplyResult::stale`], then [`check_prune`] (the empty-build and mass-deletion guards),
//!    then [`Applier::prune`]; objects a prune could not delete ([`PruneError::failed`]) go back
//!    into the inventory ([`inventory::union`]);
//! 4. [`health::check`] on the applied objects, until they are ready or time runs out (the
//!    HelmRelease controller waits for a release the same way).
//!
//! See the crate README for what differs from Flux.

#![warn(missing_docs)]

mod apply;
mod changeset;
mod client;
mod error;
mod guard;
pub mod health;
pub mod ignore;
pub mod inventory;
mod normalize;
mod object;
mod prune;
pub mod remote;

pub use apply::{Applier, ApplyOptions, ApplyProgress, ApplyResult, Owner, prepared};
pub use changeset::{Action, ChangeSet, ChangeSetEntry, MAX_DRIFT_PATHS, SkipReason};
pub use client::RequestCounts;
pub use error::{ApiFailure, ApplyError, ObjectError, ObjectErrorKind, PruneError, error_chain};
pub use guard::{
    EmptyBuildError, MASS_PRUNE_MIN_OBJECTS, MassPruneError, PRUNE_EMPTY_ANNOTATION,
    PruneGuardError, check_empty_build, check_prune, flux_controllers, flux_controllers_message,
    is_mass_prune, prune_empty_override,
};
pub use ignore::IgnoreRule;
pub use inventory::InventoryError;
pub use object::{ObjectRef, Stage, flux_order, sort_objects, split_api_version};
pub use prune::{Propagation, PruneOptions, PruneResult};
pub use remote::{KubeConfigPolicy, RemoteAppliers, RemoteError};

/// Labels, annotations and values shared with Flux (re-exported from `sluice-api`).
pub use sluice_api::kustomization::{
    DISABLED_VALUE, ENABLED_VALUE, FIELD_MANAGER, FORCE_ANNOTATION, NAME_LABEL, NAMESPACE_LABEL,
    PRUNE_ANNOTATION, RECONCILE_ANNOTATION, SSA_ANNOTATION, SSA_IF_NOT_PRESENT_VALUE,
    SSA_IGNORE_VALUE, SSA_MERGE_VALUE,
};
