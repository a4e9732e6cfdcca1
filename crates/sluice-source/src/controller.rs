//! The source controllers: GitRepository, OCIRepository, HelmRepository,
//! HelmChart and Bucket, each a kube-runtime `Controller` over the shared
//! [`crate::reconciler`] loop, sharing one artifact storage, one event
//! recorder and one schedule table.

use std::sync::Arc;

use kube::Client;
use kube::runtime::controller::Controller;
use sluice_runtime::{Recorder, Schedules};

use crate::api::GitRepository;
use crate::reconciler::{self, Ctx};
use crate::storage::Storage;
use sluice_api::source::bucket::Bucket;
use sluice_api::source::helm::{HelmChart, HelmRepository};
use sluice_api::source::oci::OCIRepository;
use sluice_git::fetch as git;

/// The field manager status is written with (Flux compatibility).
pub const FIELD_MANAGER: &str = "source-controller";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Root of the artifact storage.
    pub storage_path: std::path::PathBuf,
    /// `host[:port]` (or a full base URL) artifact URLs are built from, like
    /// Flux's `--storage-adv-addr`.
    pub storage_adv_addr: String,
    /// Artifacts kept per object (Flux's `--artifact-retention-records`).
    pub artifact_retention: usize,
    /// Objects reconciled in parallel.
    pub concurrency: u16,
    /// Only watch this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Fraction of the interval used as jitter (Flux's `--interval-jitter-percentage` / 100).
    pub interval_jitter: f64,
    /// Reporting controller name on Events.
    pub event_reporter: String,
    /// Reconcile only GitRepositories matching this label selector (Flux's
    /// `--watch-label-selector`, for sharding).
    pub label_selector: Option<String>,
    /// What the process's controllers share (metrics, readiness, events).
    pub runtime: sluice_runtime::Runtime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            storage_path: std::path::PathBuf::from("/data"),
            storage_adv_addr: "source-controller.flux-system.svc.cluster.local.".into(),
            artifact_retention: crate::storage::DEFAULT_RETENTION,
            concurrency: 4,
            namespace: None,
            interval_jitter: 0.05,
            event_reporter: "source-controller".into(),
            label_selector: None,
            runtime: sluice_runtime::Runtime::default(),
        }
    }
}

pub use crate::git_repository::{DEFAULT_TIMEOUT, MAX_TIMEOUT};
pub use crate::reconciler::Error;

/// Runs the source controllers until their watches end.
pub async fn run(client: Client, opts: Options) -> anyhow::Result<()> {
    git::install_crypto_provider();
    std::fs::create_dir_all(&opts.storage_path).map_err(|e| {
        anyhow::anyhow!("creating storage dir {}: {e}", opts.storage_path.display())
    })?;
    let gates = &opts.runtime.readiness;
    let git_gate = gates.gate(crate::READINESS_GATE);
    let scope = sluice_runtime::WatchScope {
        namespace: opts.namespace.clone(),
        label_selector: opts.label_selector.clone(),
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        storage: Storage::new(&opts.storage_path, &opts.storage_adv_addr),
        recorder: Recorder::new(client.clone(), &opts.event_reporter, &opts.runtime.events),
        schedules: Schedules::default(),
        oci_clients: Default::default(),
        opts: opts.clone(),
    });
    tracing::info!(storage = %opts.storage_path.display(), namespace = ?opts.namespace, selector = ?opts.label_selector, "starting source controllers");

    let git_api = scope.api::<GitRepository>(&client);
    let git = reconciler::run(
        ctx.clone(),
        git_gate,
        crate::git_repository::controller(&scope, git_api.clone()),
        git_api,
        reconciler::reconcile::<GitRepository>,
    );

    let oci_api = scope.api::<OCIRepository>(&client);
    let oci = reconciler::run(
        ctx.clone(),
        gates.gate(&gate_name(crate::oci_repository::KIND)),
        Controller::new(oci_api.clone(), scope.watcher_config()),
        oci_api,
        reconciler::reconcile::<OCIRepository>,
    );

    let repo_api = scope.api::<HelmRepository>(&client);
    let repos = reconciler::run(
        ctx.clone(),
        gates.gate(&gate_name(crate::helm_repository::KIND)),
        Controller::new(repo_api.clone(), scope.watcher_config()),
        repo_api.clone(),
        crate::helm_repository::reconcile,
    );

    let chart_api = scope.api::<HelmChart>(&client);
    let charts = reconciler::run(
        ctx.clone(),
        gates.gate(&gate_name(crate::helm_chart::KIND)),
        crate::helm_chart::controller(&client, &scope, chart_api.clone()),
        chart_api,
        reconciler::reconcile::<HelmChart>,
    );
    let bucket_api = scope.api::<Bucket>(&client);
    let buckets = reconciler::run(
        ctx.clone(),
        gates.gate(&gate_name(crate::bucket::KIND)),
        Controller::new(bucket_api.clone(), scope.watcher_config()),
        bucket_api,
        reconciler::reconcile::<Bucket>,
    );
    // Each runs until its watch ends; the first to end ends them all (the
    // process then stops, as when the one controller ended before).
    tokio::select! {
        _ = git => {}
        _ = oci => {}
        _ = repos => {}
        _ = charts => {}
        _ = buckets => {}
    }
    Ok(())
}

/// The readiness gate of a kind other than GitRepository (whose gate keeps
/// the controller's name, [`crate::READINESS_GATE`]).
pub fn gate_name(kind: &str) -> String {
    format!("{}/{kind}", crate::READINESS_GATE)
}

/// Every readiness gate the source controllers open.
pub fn readiness_gates() -> Vec<String> {
    let mut gates = vec![crate::READINESS_GATE.to_string()];
    for kind in [
        crate::oci_repository::KIND,
        crate::helm_repository::KIND,
        crate::helm_chart::KIND,
        crate::bucket::KIND,
    ] {
        gates.push(gate_name(kind));
    }
    gates
}
