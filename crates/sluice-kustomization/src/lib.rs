//! `sluice-kustomization`: the `kustomize.toolkit.fluxcd.io/v1` Kustomization
//! controller, a drop-in for Flux's kustomize-controller.
//!
//! - [`run`] reconciles Kustomizations: artifact → build (our kustomize
//!   engine plus the Kustomization's overlays) → `postBuild` substitution →
//!   staged server-side apply → prune (with the empty-build guard) → health
//!   checks with cause chains → Flux's status and events.
//! - [`graph`] is the pure `dependsOn` logic: chains to the root cause,
//!   cycles, and the reverse index that wakes dependents at once.
//! - the build itself is `sluice-render`'s pipeline, shared with
//!   `sluice build kustomization`.

pub mod controller;
pub mod graph;
pub mod metrics;
pub mod outcome;
mod phases;
mod source;

pub use controller::{Options, run, run_until};
pub use metrics::{Metrics, register_metrics};
pub use sluice_render::inputs::AgeSecret;

/// The name of this controller's gate in the process's readiness.
pub const READINESS_GATE: &str = "kustomization-controller";
