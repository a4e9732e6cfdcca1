//! The runtime every sluice controller is built on.
//!
//! A controller owns only its phases (what to fetch, build or apply); this
//! crate owns everything around them, written once:
//!
//! - [`outcome`]: a reconcile's result as data ([`outcome::Failure`],
//!   [`outcome::Outcome`]) and the pure function that turns it into Flux's
//!   conditions, events and the next schedule;
//! - [`conditions`]: condition helpers and Flux's ordering;
//! - [`status`]: the one place status is written (server-side apply);
//! - [`events`]: Kubernetes Events with Flux's reasons, rate-limited, and the
//!   same events forwarded in Flux's format to `--events-addr`;
//! - [`schedule`]: intervals with jitter, `reconcile.fluxcd.io/requestedAt`;
//! - [`finalizers`]: Flux's finalizer through `kube::runtime::finalizer`;
//! - [`metrics`]: Flux's `gotk_*` metrics for every kind;
//! - [`readiness`]: `/readyz` only once every watch has synced;
//! - [`leader`]: leader election on a `coordination.k8s.io` Lease;
//! - [`memory`]: freed memory handed back to the system once a burst of work settles;
//! - [`tenancy`]: whom a reconciler acts as, which references it may follow.
pub mod leader;

pub mod conditions;
pub mod events;
pub mod finalizers;
pub mod github_app;
pub mod memory;
pub mod metrics;
pub mod outcome;
pub mod readiness;
pub mod schedule;
pub mod status;
pub mod tenancy;

pub use events::{Event, EventSettings, EventSink, EventType, FluxEvent, Recorder};
pub use metrics::ReconcileMetrics;
pub use outcome::{Decision, Failure, History, Outcome, Policy, Repeat, Retry, decide};
pub use readiness::{Gate, Readiness};
pub use schedule::{Due, ObjectKey, Schedules, TriggerBackoff};
pub use tenancy::{ServiceAccountRef, Tenancy};

use kube::runtime::watcher;
use kube::{Api, Client, Resource};

/// What every controller of a process shares: metrics, readiness, where
/// events go, which objects this process watches, and whom it acts as.
#[derive(Clone, Default)]
pub struct Runtime {
    pub metrics: ReconcileMetrics,
    pub readiness: Readiness,
    pub events: EventSettings,
    pub scope: WatchScope,
    pub tenancy: Tenancy,
    /// Told when a reconcile finishes; trims the allocator once work settles.
    pub memory: memory::Trimmer,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("scope", &self.scope)
            .field("tenancy", &self.tenancy)
            .field("events_addr", &self.events.events_addr)
            .finish_non_exhaustive()
    }
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings::from_env(None)
    }
}

/// The objects a controller watches: one namespace or all
/// (`--watch-namespace`), and Flux's sharding selector
/// (`--watch-label-selector`, e.g. `sharding.fluxcd.io/key notin (shard1)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchScope {
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
}

impl WatchScope {
    /// The API of `K` within the scope's namespace (or all namespaces).
    pub fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }

    /// The watcher configuration for the controller's own kind (with the
    /// sharding selector).
    pub fn watcher_config(&self) -> watcher::Config {
        match self
            .label_selector
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            Some(sel) => watcher::Config::default().labels(sel),
            None => watcher::Config::default(),
        }
    }
}
