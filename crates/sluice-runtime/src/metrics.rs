//! Flux's reconcile metrics, for every kind, registered once per process:
//!
//! - `gotk_reconcile_duration_seconds{kind,name,namespace}` (histogram);
//! - `gotk_reconcile_condition{kind,name,namespace,type,status}`: 1 for the
//!   current status of Ready (and Healthy where set), 0 for the others
//!   (`True`, `False`, `Unknown`, `Deleted`), as Flux's metrics recorder;
//! - `gotk_suspend_status{kind,name,namespace}`: 1 while suspended;
//! - `gotk_resource_info{customresource_kind,name,exported_namespace,ready,reason,suspended,revision}`:
//!   what Flux's kube-state-metrics configuration exports, served directly;
//! - `sluice_reconcile_failures_total{kind,reason}`: failures by Flux reason
//!   (the failure metric by error kind).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_api::meta::{HEALTHY_CONDITION, READY_CONDITION, find_condition};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub r#type: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    pub customresource_kind: String,
    pub name: String,
    pub exported_namespace: String,
    pub ready: String,
    pub reason: String,
    pub suspended: String,
    pub revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub reason: String,
}

/// (kind, namespace, name).
type ObjectId = (String, String, String);

type HistogramFamily = Family<ObjectLabels, Histogram, fn() -> Histogram>;

const STATUSES: [&str; 4] = ["True", "False", "Unknown", "Deleted"];

/// The reconcile metrics of every controller in the process.
#[derive(Clone)]
pub struct ReconcileMetrics {
    pub duration: HistogramFamily,
    pub condition: Family<ConditionLabels, Gauge>,
    pub suspend: Family<ObjectLabels, Gauge>,
    pub info: Family<InfoLabels, Gauge>,
    pub failures: Family<FailureLabels, Counter>,
    /// The labels of each object's info series, to remove it when they change.
    info_labels: Arc<Mutex<HashMap<ObjectId, InfoLabels>>>,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        fn histogram() -> Histogram {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        }
        ReconcileMetrics {
            duration: Family::new_with_constructor(histogram as fn() -> Histogram),
            condition: Family::default(),
            suspend: Family::default(),
            info: Family::default(),
            failures: Family::default(),
            info_labels: Arc::default(),
        }
    }
}

/// What the metrics say about one object after a reconcile.
pub struct Observation<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub conditions: &'a [Condition],
    pub suspended: bool,
    /// The revision the object last applied or stored.
    pub revision: &'a str,
}

impl ReconcileMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ReconcileMetrics::default();
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            m.duration.clone(),
        );
        registry.register(
            "gotk_reconcile_condition",
            "The current condition status of a GitOps Toolkit resource reconciliation.",
            m.condition.clone(),
        );
        registry.register(
            "gotk_suspend_status",
            "The current suspend status of a GitOps Toolkit resource.",
            m.suspend.clone(),
        );
        registry.register(
            "gotk_resource_info",
            "The current state of a GitOps Toolkit resource.",
            m.info.clone(),
        );
        registry.register(
            "sluice_reconcile_failures",
            "Failed reconciliations by kind and Flux reason.",
            m.failures.clone(),
        );
        m
    }

    /// Records how long a reconcile took.
    pub fn observe_duration(&self, kind: &str, namespace: &str, name: &str, elapsed: Duration) {
        self.duration
            .get_or_create(&labels(kind, namespace, name))
            .observe(elapsed.as_secs_f64());
    }

    /// Records a failure by its Flux reason.
    pub fn failure(&self, kind: &str, reason: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                kind: kind.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Records an object's conditions and suspension after a reconcile.
    pub fn observe(&self, o: &Observation<'_>) {
        for type_ in [READY_CONDITION, HEALTHY_CONDITION] {
            let current = find_condition(o.conditions, type_).map(|c| c.status.as_str());
            if type_ != READY_CONDITION && current.is_none() {
                continue;
            }
            self.set_condition(
                o.kind,
                o.namespace,
                o.name,
                type_,
                current.unwrap_or("Unknown"),
            );
        }
        self.suspend
            .get_or_create(&labels(o.kind, o.namespace, o.name))
            .set(i64::from(o.suspended));
        // One info series per object: the old one goes when a label changes.
        self.forget_info(o.kind, o.namespace, o.name);
        let ready = find_condition(o.conditions, READY_CONDITION);
        let info = InfoLabels {
            customresource_kind: o.kind.to_string(),
            name: o.name.to_string(),
            exported_namespace: o.namespace.to_string(),
            ready: ready.map_or("Unknown", |c| c.status.as_str()).to_string(),
            reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
            suspended: o.suspended.to_string(),
            revision: o.revision.to_string(),
        };
        self.info.get_or_create(&info).set(1);
        if let Ok(mut m) = self.info_labels.lock() {
            m.insert(
                (
                    o.kind.to_string(),
                    o.namespace.to_string(),
                    o.name.to_string(),
                ),
                info,
            );
        }
    }

    /// The object is gone: its conditions read `Deleted`, its other series go.
    pub fn deleted(&self, kind: &str, namespace: &str, name: &str) {
        self.set_condition(kind, namespace, name, READY_CONDITION, "Deleted");
        self.suspend.remove(&labels(kind, namespace, name));
        self.forget_info(kind, namespace, name);
    }

    fn set_condition(&self, kind: &str, namespace: &str, name: &str, type_: &str, current: &str) {
        for status in STATUSES {
            self.condition
                .get_or_create(&ConditionLabels {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    namespace: namespace.to_string(),
                    r#type: type_.to_string(),
                    status: status.to_string(),
                })
                .set(i64::from(status == current));
        }
    }

    fn forget_info(&self, kind: &str, namespace: &str, name: &str) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        let old = self
            .info_labels
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&key));
        if let Some(old) = old {
            self.info.remove(&old);
        }
    }
}

fn labels(kind: &str, namespace: &str, name: &str) -> ObjectLabels {
    ObjectLabels {
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: namespace.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::meta::new_condition;

    fn text(registry: &Registry) -> String {
        let mut t = String::new();
        prometheus_client::encoding::text::encode(&mut t, registry).unwrap();
        t
    }

    #[test]
    fn flux_metric_names_and_labels() {
        let mut registry = Registry::default();
        let m = ReconcileMetrics::register(&mut registry);
        m.observe_duration(
            "Kustomization",
            "flux-system",
            "apps",
            Duration::from_millis(30),
        );
        let conditions = vec![new_condition("Ready", "False", "BuildFailed", "x", None)];
        m.observe(&Observation {
            kind: "Kustomization",
            namespace: "flux-system",
            name: "apps",
            conditions: &conditions,
            suspended: false,
            revision: "main@sha1:1",
        });
        m.failure("Kustomization", "BuildFailed");
        let t = text(&registry);
        for want in [
            "gotk_reconcile_duration_seconds_count{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\"} 1",
            "gotk_reconcile_condition{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\",type=\"Ready\",status=\"False\"} 1",
            "gotk_reconcile_condition{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\",type=\"Ready\",status=\"True\"} 0",
            "gotk_suspend_status{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\"} 0",
            "sluice_reconcile_failures_total{kind=\"Kustomization\",reason=\"BuildFailed\"} 1",
            "ready=\"False\",reason=\"BuildFailed\",suspended=\"false\",revision=\"main@sha1:1\"} 1",
        ] {
            assert!(t.contains(want), "missing {want} in\n{t}");
        }
    }

    #[test]
    fn one_info_series_per_object_and_deleted_objects_read_deleted() {
        let mut registry = Registry::default();
        let m = ReconcileMetrics::register(&mut registry);
        for (status, rev) in [("False", "a\"b"), ("True", "main@sha1:2")] {
            let c = vec![new_condition("Ready", status, "R", "m", None)];
            m.observe(&Observation {
                kind: "GitRepository",
                namespace: "ns",
                name: "repo",
                conditions: &c,
                suspended: false,
                revision: rev,
            });
        }
        let t = text(&registry);
        assert_eq!(t.matches("gotk_resource_info{").count(), 1, "{t}");
        m.deleted("GitRepository", "ns", "repo");
        let t = text(&registry);
        assert!(t.contains("type=\"Ready\",status=\"Deleted\"} 1"), "{t}");
        assert_eq!(t.matches("gotk_resource_info{").count(), 0, "{t}");
    }
}
