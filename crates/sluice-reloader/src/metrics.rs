//! Prometheus metrics, named as Reloader names them where it has one.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::rules::SourceKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SuccessLabels {
    success: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    success: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Counters and gauges of the reloader. Cheap to clone (shared handles).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    reloaded: Family<SuccessLabels, Counter>,
    reloaded_by_namespace: Family<NamespaceLabels, Counter>,
    tracked: Family<KindLabels, Gauge>,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        registry.register(
            "reloader_reload_executed",
            "Workload roll-outs made by the reloader",
            m.reloaded.clone(),
        );
        registry.register(
            "reloader_reload_executed_by_namespace",
            "Workload roll-outs made by the reloader, by namespace",
            m.reloaded_by_namespace.clone(),
        );
        registry.register(
            "sluice_reloader_tracked_objects",
            "ConfigMaps and Secrets whose content hash the reloader keeps",
            m.tracked.clone(),
        );
        m
    }

    pub(crate) fn reload(&self, success: bool, namespace: &str) {
        let success = success.to_string();
        self.reloaded
            .get_or_create(&SuccessLabels {
                success: success.clone(),
            })
            .inc();
        self.reloaded_by_namespace
            .get_or_create(&NamespaceLabels {
                success,
                namespace: namespace.to_string(),
            })
            .inc();
    }

    /// How many objects of `kind` the reloader currently tracks (after its
    /// first listing: all of them).
    pub fn tracked_objects(&self, kind: SourceKind) -> i64 {
        self.tracked(kind).get()
    }

    pub(crate) fn tracked(&self, kind: SourceKind) -> Gauge {
        self.tracked
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_string(),
            })
            .clone()
    }
}
