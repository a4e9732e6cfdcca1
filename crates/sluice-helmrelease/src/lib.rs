//! The HelmRelease controller (`helm.toolkit.fluxcd.io/v2`), as Flux's helm-controller, on
//! sluice's native Helm engine.
//!
//! Built phase by phase; what is here so far is pure and tested without a cluster:
//!
//! - [`state`]: the state of a release against its HelmRelease (helm-controller's
//!   `DetermineReleaseState`) and the action that state calls for (its `actionForState`:
//!   install, upgrade, test, unlock, roll back or uninstall as remediation, correct drift, or
//!   nothing), with Flux's retry and remediation rules;
//! - [`environment`]: failures whose cause is the cluster (a missing StorageClass or CRD, a
//!   port held, no room), which the controller stops retrying after the second one;
//! - [`digests`]: the post-renderers and common-metadata digests helm-controller records in
//!   `status.observedPostRenderersDigest` and `status.observedCommonMetadataDigest`;
//! - [`build`]: what a HelmRelease renders to (values, release name, render options), shared
//!   by the controller and `sluice build/diff helmrelease`;
//! - [`postrender`]: helm-controller's post-renderer chain (kustomize patches and images, common
//!   metadata, origin labels), run by the native kustomize engine on every render.
//!
//! and, against the API server:
//!
//! - [`actions`]: install, upgrade, rollback, uninstall and unlock, each writing its revision
//!   and applying with server-side apply, completed after the caller's wait;
//! - [`hooks`]: chart hooks run as Helm runs them (weights, delete policies, Jobs and Pods
//!   waited for, runs recorded in the release);
//! - [`storage`]: Helm's Secrets driver (history, last, create with Helm's history limit,
//!   update, delete), refusing a record over the 1 MiB a Secret holds before writing it.

pub mod actions;
pub mod build;
pub mod controller;
pub mod digests;
pub mod drift;
pub mod environment;
pub mod hooks;
pub mod outcome;
pub mod postrender;
pub mod schemas;
pub mod shared;
pub mod state;
pub mod storage;

pub use controller::{Options, READINESS_GATE, run_until, unsupported};
