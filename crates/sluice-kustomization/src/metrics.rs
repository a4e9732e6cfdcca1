//! The Kustomization controller's own Prometheus metrics (Flux's `gotk_*`
//! ones, shared by every controller, are in `sluice_runtime::metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

/// The Kustomization controller's metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    /// `sluice_kustomization_reconciles_total{result}`: result is `applied`,
    /// `unchanged`, `skipped` (suspended), `blocked` (dependsOn), `waiting`
    /// (health checks not done) or `failed`. Flux's `gotk_*` metrics are
    /// `sluice_runtime::ReconcileMetrics`'.
    pub reconciles: Family<ResultLabels, Counter>,
    /// `sluice_kustomization_api_writes_total`: write requests (applies,
    /// deletions, status patches, events, finalizers) made by reconciles.
    pub writes: Counter,
    /// `sluice_kustomization_api_requests_total{verb}`: requests made by
    /// apply and prune (`discovery`, `read`, `dry_run`, `write`).
    pub requests: Family<VerbLabels, Counter>,
}

impl Metrics {
    pub fn reconciles(&self, result: &str) -> u64 {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .get()
    }

    pub fn writes(&self) -> u64 {
        self.writes.get()
    }

    /// Requests of one verb made by apply and prune so far.
    pub fn requests(&self, verb: &str) -> u64 {
        self.requests
            .get_or_create(&VerbLabels { verb: verb.into() })
            .get()
    }

    pub(crate) fn record(&self, r: &sluice_apply::RequestCounts) {
        for (verb, n) in [
            ("discovery", r.discovery),
            ("read", r.reads),
            ("dry_run", r.dry_runs),
            ("write", r.writes),
        ] {
            self.requests
                .get_or_create(&VerbLabels { verb: verb.into() })
                .inc_by(n);
        }
        self.writes.inc_by(r.writes);
    }

    pub(crate) fn count(&self, result: &str) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

/// Creates the metrics and registers them.
pub fn register_metrics(registry: &mut Registry) -> Metrics {
    let m = Metrics::default();
    registry.register(
        "sluice_kustomization_reconciles",
        "Kustomization reconciliations by result.",
        m.reconciles.clone(),
    );
    registry.register(
        "sluice_kustomization_api_writes",
        "Write requests made by Kustomization reconciliations.",
        m.writes.clone(),
    );
    registry.register(
        "sluice_kustomization_api_requests",
        "API requests made by apply and prune, by verb.",
        m.requests.clone(),
    );
    m
}
