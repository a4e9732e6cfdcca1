//! sluice's built-in Reloader.
//!
//! Rolls Deployments, StatefulSets and DaemonSets (and annotates CronJobs, so
//! their next Jobs pick up the change) when the ConfigMaps or Secrets they use
//! change, reading Stakater Reloader's annotations so existing manifests keep
//! working. See [`rules`] for the annotations and their order.
//!
//! How it differs from running Reloader beside Flux:
//! - it keeps only a 20-byte content hash per ConfigMap/Secret in memory,
//!   never the data, so watching thousands of Secrets costs little;
//! - it rolls a workload by server-side applying one pod-template annotation
//!   (`reloader.stakater.com/last-reloaded-from`) under its own field manager
//!   (`sluice-reloader`), so the Kustomization controller, which owns the rest
//!   of the object, neither reverts the roll-out nor triggers another one.

mod controller;
pub mod hash;
mod metrics;
pub mod rules;
pub mod tracker;

use std::str::FromStr;
use std::sync::Arc;

use kube::Client;
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

pub use controller::{annotation_value, apply_body};
pub use metrics::Metrics;

/// The field manager the reloader applies its annotation with.
pub const FIELD_MANAGER: &str = "sluice-reloader";

/// Workload kinds the reloader rolls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 4] = [
        Self::Deployment,
        Self::StatefulSet,
        Self::DaemonSet,
        Self::CronJob,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::CronJob => "CronJob",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Self::CronJob => "batch/v1",
            _ => "apps/v1",
        }
    }
}

/// Parses the names Reloader's `--ignored-workload-types` takes (`deployments`,
/// `statefulsets`, `daemonsets`, `cronjobs`), singular or plural, any case.
impl FromStr for WorkloadKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let singular = lower.strip_suffix('s').unwrap_or(&lower);
        match singular {
            "deployment" => Ok(Self::Deployment),
            "statefulset" => Ok(Self::StatefulSet),
            "daemonset" => Ok(Self::DaemonSet),
            "cronjob" => Ok(Self::CronJob),
            _ => Err(format!(
                "unknown workload type {s:?} (expected deployments, statefulsets, daemonsets or cronjobs)"
            )),
        }
    }
}

/// Reloader's options, as `sluice controller` flags set them.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Roll workloads when a ConfigMap/Secret they use is created.
    pub reload_on_create: bool,
    /// Roll workloads when a ConfigMap/Secret they use is deleted.
    pub reload_on_delete: bool,
    /// Namespaces whose ConfigMaps/Secrets never cause a reload.
    pub namespaces_to_ignore: Vec<String>,
    /// Only namespaces whose labels match this selector.
    pub namespace_selector: Option<String>,
    /// Only ConfigMaps/Secrets whose labels match this selector.
    pub resource_label_selector: Option<String>,
    /// Workload kinds never rolled.
    pub ignored_workload_types: Vec<WorkloadKind>,
    /// Do not watch ConfigMaps.
    pub ignore_configmaps: bool,
    /// Do not watch Secrets.
    pub ignore_secrets: bool,
    /// Treat every workload as `reloader.stakater.com/auto: "true"` unless it
    /// says `"false"`.
    pub auto_reload_all: bool,
    /// The field manager of the annotation (default [`FIELD_MANAGER`]).
    pub field_manager: String,
    /// What the process's controllers share (readiness, events).
    pub runtime: sluice_runtime::Runtime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            reload_on_create: false,
            reload_on_delete: false,
            namespaces_to_ignore: Vec::new(),
            namespace_selector: None,
            resource_label_selector: None,
            ignored_workload_types: Vec::new(),
            ignore_configmaps: false,
            ignore_secrets: false,
            auto_reload_all: false,
            field_manager: FIELD_MANAGER.to_string(),
            runtime: sluice_runtime::Runtime::default(),
        }
    }
}

/// The gates of the process's readiness the reloader opens (one per kind it
/// watches, after that kind's first list).
pub fn readiness_gates(options: &Options) -> Vec<String> {
    let mut gates = Vec::new();
    if !options.ignore_configmaps {
        gates.push(readiness_gate(rules::SourceKind::ConfigMap));
    }
    if !options.ignore_secrets {
        gates.push(readiness_gate(rules::SourceKind::Secret));
    }
    gates
}

pub(crate) fn readiness_gate(kind: rules::SourceKind) -> String {
    format!("reloader/{}", kind.as_str())
}

/// Registers the reloader's metrics. Call before [`run`].
pub fn register_metrics(registry: &mut Registry) -> Metrics {
    Metrics::register(registry)
}

/// Runs the reloader until a watch fails for good.
pub async fn run(client: Client, options: Options, metrics: Metrics) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let (watch_cms, watch_secrets) = (!options.ignore_configmaps, !options.ignore_secrets);
    let ctx = Arc::new(controller::Context::new(client, options, metrics));
    let cms =
        controller::watch::<ConfigMap>(ctx.clone(), Arc::new(Mutex::new(tracker::Tracker::new())));
    let secrets = controller::watch::<Secret>(ctx, Arc::new(Mutex::new(tracker::Tracker::new())));
    tracing::info!(
        configmaps = watch_cms,
        secrets = watch_secrets,
        "reloader started"
    );
    match (watch_cms, watch_secrets) {
        (true, true) => {
            tokio::try_join!(cms, secrets)?;
        }
        (true, false) => cms.await?,
        (false, true) => secrets.await?,
        (false, false) => std::future::pending::<()>().await,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_types_parse_like_reloaders_flag() {
        assert_eq!(
            "deployments".parse::<WorkloadKind>(),
            Ok(WorkloadKind::Deployment)
        );
        assert_eq!(
            "CronJobs".parse::<WorkloadKind>(),
            Ok(WorkloadKind::CronJob)
        );
        assert_eq!(
            " statefulset ".parse::<WorkloadKind>(),
            Ok(WorkloadKind::StatefulSet)
        );
        assert!("jobs".parse::<WorkloadKind>().unwrap_err().contains("jobs"));
    }
}
