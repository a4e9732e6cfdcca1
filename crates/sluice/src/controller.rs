//! `sluice controller`: the long-running process. It hosts the controllers
//! (the source controllers: GitRepository, OCIRepository, HelmRepository and
//! HelmChart, with their artifact server; the Kustomization controller; the
//! reloader), a Prometheus endpoint and the `/healthz` and
//! `/readyz` probes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::{ArgAction, Args};
use prometheus_client::registry::Registry;
use sluice_reloader::WorkloadKind;
use tokio::net::TcpListener;

/// The controller's `User-Agent` towards the Kubernetes API.
const USER_AGENT: &str = concat!("sluice-controller/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Address of the Prometheus metrics endpoint (`:8080` listens on all
    /// interfaces).
    #[arg(long, default_value = ":8080")]
    metrics_addr: String,

    /// Address of the `/healthz` and `/readyz` probes.
    #[arg(long, default_value = ":9440")]
    health_addr: String,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    watch_namespace: Option<String>,

    /// Reconcile only the Flux objects matching this label selector (Flux's
    /// sharding: `sharding.fluxcd.io/key notin (shard1, shard2)` here,
    /// `sharding.fluxcd.io/key in (shard1)` in a second sluice Deployment).
    #[arg(long, value_name = "SELECTOR")]
    watch_label_selector: Option<String>,

    /// Move each object's next scheduled run by up to this percentage of
    /// its interval, either way, so objects created together do not stay
    /// in step.
    #[arg(long, default_value_t = 5, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    interval_jitter_percentage: u8,

    /// Also send every event, in Flux's event format, to this URL (for
    /// example Flux's notification-controller,
    /// `http://notification-controller.flux-system.svc.cluster.local./`).
    #[arg(long, value_name = "URL", env = "SLUICE_EVENTS_ADDR")]
    events_addr: Option<String>,

    #[command(flatten)]
    source: SourceArgs,

    #[command(flatten)]
    kustomization: KustomizationArgs,

    #[command(flatten)]
    reloader: ReloaderArgs,

    #[command(flatten)]
    helmrelease: HelmReleaseArgs,

    #[command(flatten)]
    notification: NotificationArgs,

    #[command(flatten)]
    leader: crate::leader::LeaderArgs,
}

/// HelmRelease controller options (Flux's helm-controller).
#[derive(Debug, Args)]
#[command(next_help_heading = "HelmRelease controller (preview)")]
struct HelmReleaseArgs {
    /// Run the HelmRelease controller (a preview, off by default: it refuses the fields it
    /// does not implement yet by name; do not run it beside Flux's helm-controller). Needs
    /// the HelmRelease CRD (Flux's).
    #[arg(long = "helmrelease", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    helmrelease_enabled: bool,

    /// HelmReleases reconciled in parallel.
    #[arg(
        long = "helmrelease-concurrency",
        default_value_t = 2,
        value_name = "N"
    )]
    helmrelease_concurrency: u16,
}

/// Notification options (Flux's notification-controller).
#[derive(Debug, Args)]
#[command(next_help_heading = "Notifications (preview)")]
struct NotificationArgs {
    /// Serve Flux's notification APIs: Alerts and Providers (events of every controller to
    /// Slack, Discord, Teams, Telegram, Matrix, Lark, Google Chat, Alertmanager, DingTalk,
    /// WeCom, webhooks, and commit statuses on GitHub, Gitea, GitLab) and Receivers (webhooks
    /// that request reconciles). A preview, off by default; do not run it beside Flux's
    /// notification-controller. Needs the Receiver, Provider and Alert CRDs (Flux's).
    #[arg(long = "notification", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    notification_enabled: bool,

    /// Address the Receiver webhooks are served on (`/hook/<digest>`).
    #[arg(long = "receiver-addr", default_value = sluice_notify::DEFAULT_ADDR, value_name = "ADDR")]
    receiver_addr: String,

    /// Webhook requests accepted per second (bursts of ten times as many); more are refused
    /// with 429.
    #[arg(long = "receiver-rate", default_value_t = 10, value_name = "N")]
    receiver_rate: u32,

    /// Address the event endpoint is served on, for Flux's controllers (image automation, for
    /// example) sending events to `http://notification-controller.<namespace>.svc/`. sluice's own
    /// controllers hand their events over in process.
    #[arg(long = "notification-events-addr", default_value = sluice_notify::DEFAULT_EVENTS_ADDR, value_name = "ADDR")]
    events_listen_addr: String,

    /// The same event (object, message, revision) is sent at most once in this interval.
    #[arg(
        long = "rate-limit-interval",
        default_value = "5m",
        value_name = "DURATION"
    )]
    rate_limit_interval: String,
}

/// Source controller options (Flux's source-controller flags).
#[derive(Debug, Args)]
#[command(next_help_heading = "Source controller")]
struct SourceArgs {
    /// Run the source controllers (GitRepository, OCIRepository,
    /// HelmRepository, HelmChart) and their artifact server.
    #[arg(long = "source", default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    source_enabled: bool,

    /// Directory holding the artifacts.
    #[arg(long = "storage-path", default_value = "/data", value_name = "DIR")]
    storage_path: std::path::PathBuf,

    /// Address the artifact HTTP server listens on.
    #[arg(long = "storage-addr", default_value = ":9090", value_name = "ADDR")]
    storage_addr: String,

    /// Host[:port] written into artifact URLs (default: the address of
    /// `--storage-addr` as seen from this host).
    #[arg(long = "storage-adv-addr", value_name = "ADDR")]
    storage_adv_addr: Option<String>,

    /// Artifacts kept per source object.
    #[arg(
        long = "artifact-retention-records",
        default_value_t = 2,
        value_name = "N"
    )]
    artifact_retention: usize,

    /// Source objects of each kind reconciled in parallel.
    #[arg(long = "source-concurrency", default_value_t = 2, value_name = "N")]
    source_concurrency: u16,
}

/// Kustomization controller options (Flux's kustomize-controller flags).
#[derive(Debug, Args)]
#[command(next_help_heading = "Kustomization controller")]
struct KustomizationArgs {
    /// Run the Kustomization controller.
    #[arg(long = "kustomization", default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    kustomization_enabled: bool,

    /// Kustomizations reconciled in parallel.
    #[arg(long = "concurrency", default_value_t = 4, value_name = "N")]
    concurrency: u16,

    /// Fallback re-check interval of a Kustomization waiting for its
    /// dependencies (a dependency turning ready wakes it at once).
    #[arg(
        long = "requeue-dependency",
        default_value = "30s",
        value_name = "DURATION"
    )]
    requeue_dependency: String,

    /// Service account impersonated, in each object's own namespace, by
    /// Kustomizations and HelmReleases without `spec.serviceAccountName`
    /// (default: none; see --reconciler-service-account).
    #[arg(long = "default-service-account", value_name = "NAME")]
    default_service_account: Option<String>,

    /// Service account, in the controller's namespace, impersonated by
    /// Kustomizations and HelmReleases without `spec.serviceAccountName`
    /// when there is no --default-service-account (`sluice install` binds
    /// cluster-admin to it). Default: none, they act as the controller.
    #[arg(long = "reconciler-service-account", value_name = "NAME")]
    reconciler_service_account: Option<String>,

    /// Refuse a reference to another namespace: a Kustomization's
    /// `sourceRef` or `dependsOn`, a HelmRelease's chart source, an Alert's
    /// event source or a Receiver's resource (reason AccessDenied).
    #[arg(long = "no-cross-namespace-refs", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    no_cross_namespace_refs: bool,

    /// Let a `spec.kubeConfig` kubeconfig skip TLS verification
    /// (`insecure-skip-tls-verify`); refused without it.
    #[arg(long = "insecure-kubeconfig-tls", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    insecure_kubeconfig_tls: bool,

    /// Let a `spec.kubeConfig` kubeconfig run its `user.exec` credential
    /// plugin inside the controller; refused without it.
    #[arg(long = "insecure-kubeconfig-exec", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    insecure_kubeconfig_exec: bool,

    /// A Secret in the controller's namespace whose `*.agekey` entries
    /// decrypt SOPS for Kustomizations with `spec.decryption` and no
    /// `secretRef` (Flux's flag).
    #[arg(long = "sops-age-secret", value_name = "NAME")]
    sops_age_secret: Option<String>,

    /// Flux's feature gates, `Name=true,...`. sluice knows `ExternalArtifact`
    /// (off by default, as in Flux): Kustomizations and HelmReleases may then
    /// apply ExternalArtifacts, whose producer serves them. Any other gate is
    /// refused by name.
    #[arg(long = "feature-gates", value_name = "GATES", value_parser = feature_gates)]
    feature_gates: Vec<FeatureGates>,

    /// Refuse remote kustomize bases and resources: build only what is in
    /// the source artifact.
    #[arg(long = "no-remote-bases", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    no_remote_bases: bool,

    /// On SIGTERM, how long in-flight applies and prunes may take to finish
    /// before the process exits (keep it below the pod's
    /// terminationGracePeriodSeconds, 30s by default).
    #[arg(
        long = "graceful-shutdown-timeout",
        default_value = "25s",
        value_name = "DURATION"
    )]
    graceful_shutdown_timeout: String,
}

/// Reloader options. Each maps to the Stakater Reloader flag of the same name
/// without the `reloader-` prefix.
#[derive(Debug, Args)]
#[command(next_help_heading = "Reloader")]
struct ReloaderArgs {
    /// Run the built-in reloader.
    #[arg(long = "reloader", default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    enabled: bool,

    /// Also roll workloads when a ConfigMap or Secret they use is created.
    #[arg(long = "reloader-reload-on-create")]
    reload_on_create: bool,

    /// Also roll workloads when a ConfigMap or Secret they use is deleted.
    #[arg(long = "reloader-reload-on-delete")]
    reload_on_delete: bool,

    /// Namespaces whose ConfigMaps and Secrets never cause a roll-out
    /// (comma-separated).
    #[arg(
        long = "reloader-namespaces-to-ignore",
        value_delimiter = ',',
        value_name = "NAMESPACES"
    )]
    namespaces_to_ignore: Vec<String>,

    /// Only namespaces whose labels match this selector (for example
    /// `reloader=enabled`).
    #[arg(long = "reloader-namespace-selector", value_name = "SELECTOR")]
    namespace_selector: Option<String>,

    /// Only ConfigMaps and Secrets whose labels match this selector.
    #[arg(long = "reloader-resource-label-selector", value_name = "SELECTOR")]
    resource_label_selector: Option<String>,

    /// Workload kinds never rolled: deployments, statefulsets, daemonsets,
    /// cronjobs (comma-separated).
    #[arg(
        long = "reloader-ignored-workload-types",
        value_delimiter = ',',
        value_name = "KINDS"
    )]
    ignored_workload_types: Vec<WorkloadKind>,

    /// Kinds not watched at all: configmaps, secrets (comma-separated).
    #[arg(
        long = "reloader-resources-to-ignore",
        value_delimiter = ',',
        value_name = "KINDS"
    )]
    resources_to_ignore: Vec<String>,

    /// Treat every workload as annotated `reloader.stakater.com/auto: "true"`
    /// unless it says "false".
    #[arg(long = "reloader-auto-reload-all")]
    auto_reload_all: bool,
}

impl ReloaderArgs {
    fn options(&self, namespace: Option<String>) -> Result<sluice_reloader::Options> {
        let mut options = sluice_reloader::Options {
            namespace,
            reload_on_create: self.reload_on_create,
            reload_on_delete: self.reload_on_delete,
            namespaces_to_ignore: self.namespaces_to_ignore.clone(),
            namespace_selector: self.namespace_selector.clone(),
            resource_label_selector: self.resource_label_selector.clone(),
            ignored_workload_types: self.ignored_workload_types.clone(),
            auto_reload_all: self.auto_reload_all,
            ..sluice_reloader::Options::default()
        };
        for kind in &self.resources_to_ignore {
            match kind.trim().to_ascii_lowercase().as_str() {
                "configmaps" | "configmap" => options.ignore_configmaps = true,
                "secrets" | "secret" => options.ignore_secrets = true,
                other => bail!(
                    "--reloader-resources-to-ignore: unknown kind {other:?} (expected configmaps or secrets)"
                ),
            }
        }
        Ok(options)
    }
}

/// Parses `:8080`, `0.0.0.0:8080`, `127.0.0.1:0` or `[::1]:9440`.
pub fn parse_listen_addr(addr: &str) -> Result<SocketAddr> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse()
        .with_context(|| format!("invalid listen address {addr:?} (expected host:port or :port)"))
}

/// The process's metrics registry, with every controller's metrics in it.
/// Whom the controllers act as, and which references they follow.
fn tenancy(args: &KustomizationArgs) -> sluice_runtime::Tenancy {
    let named = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    sluice_runtime::Tenancy {
        default_service_account: named(&args.default_service_account),
        reconciler: named(&args.reconciler_service_account).map(|name| {
            sluice_runtime::ServiceAccountRef {
                namespace: sluice_runtime::leader::default_namespace(),
                name,
            }
        }),
        no_cross_namespace_refs: args.no_cross_namespace_refs,
        insecure_kubeconfig_tls: args.insecure_kubeconfig_tls,
        insecure_kubeconfig_exec: args.insecure_kubeconfig_exec,
        external_artifacts: args
            .feature_gates
            .iter()
            .flat_map(|g| &g.0)
            .rev()
            .find(|(name, _)| name == "ExternalArtifact")
            .is_some_and(|(_, on)| *on),
    }
}

/// One `--feature-gates` value (the flag may be repeated; the last word on a gate wins).
#[derive(Clone, Debug)]
struct FeatureGates(Vec<(String, bool)>);

/// `--feature-gates`, checked at parse time (a typo stops the start, naming the gate).
fn feature_gates(value: &str) -> std::result::Result<FeatureGates, String> {
    sluice_runtime::tenancy::parse_feature_gates(value).map(FeatureGates)
}

fn metrics_registry() -> (
    Registry,
    sluice_reloader::Metrics,
    sluice_kustomization::Metrics,
    sluice_runtime::ReconcileMetrics,
) {
    let mut registry = Registry::default();
    let reloader = sluice_reloader::register_metrics(&mut registry);
    let kustomization = sluice_kustomization::register_metrics(&mut registry);
    let reconcile = sluice_runtime::ReconcileMetrics::register(&mut registry);
    (registry, reloader, kustomization, reconcile)
}

#[derive(Clone)]
struct Shared {
    registry: Arc<Registry>,
    readiness: sluice_runtime::Readiness,
}

pub fn run(args: ControllerArgs) -> Result<()> {
    // Two malloc arenas for the two workers and the blocking threads that render: less free
    // memory stranded in one thread's arena (sluice_runtime::memory).
    sluice_runtime::memory::limit_arenas(2);
    // Large blocks mapped on their own and unmapped when freed, at glibc's initial threshold
    // (sluice_runtime::memory).
    sluice_runtime::memory::fix_mmap_threshold(128 << 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Builds run on blocking threads: their nesting is bounded to fit
        // tokio's default 2 MiB (tested), this is margin on top.
        .thread_stack_size(8 << 20)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run_async(args));
    // After a shutdown whose grace period ran out, a build may still run on a
    // blocking thread: do not wait for it (dropping the runtime would).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn run_async(args: ControllerArgs) -> Result<()> {
    let metrics_addr = parse_listen_addr(&args.metrics_addr).context("--metrics-addr")?;
    let health_addr = parse_listen_addr(&args.health_addr).context("--health-addr")?;
    let reloader_options = args.reloader.options(args.watch_namespace.clone())?;
    let storage_addr = parse_listen_addr(&args.source.storage_addr).context("--storage-addr")?;
    let requeue_dependency =
        sluice_api::meta::parse_duration(&args.kustomization.requeue_dependency)
            .map_err(|e| anyhow::anyhow!("--requeue-dependency: {e}"))?;
    let grace = sluice_api::meta::parse_duration(&args.kustomization.graceful_shutdown_timeout)
        .map_err(|e| anyhow::anyhow!("--graceful-shutdown-timeout: {e}"))?;

    let mut config = kube::Config::infer()
        .await
        .context("loading the Kubernetes configuration (in-cluster config or KUBECONFIG)")?;
    // Named in the API server's audit log and request logs as Flux's
    // controllers are (`<name>/<version>`); every client made from this
    // configuration (impersonation, the Kustomization and HelmRelease
    // controllers) inherits it.
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(USER_AGENT),
    ));
    let client = kube::Client::try_from(config.clone())
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let version = client
        .apiserver_version()
        .await
        .context("asking the API server for its version")?;
    tracing::info!(server = %version.git_version, "connected to Kubernetes");

    let (registry, reloader_metrics, kustomization_metrics, reconcile_metrics) = metrics_registry();
    // The notification dispatcher exists before the controllers, which hand it their events.
    let notify = if args.notification.notification_enabled {
        let interval = sluice_api::meta::parse_duration(&args.notification.rate_limit_interval)
            .map_err(|e| anyhow::anyhow!("--rate-limit-interval: {e}"))?;
        Some(sluice_notify::dispatch::Dispatcher::new(interval))
    } else {
        None
    };
    let mut events = sluice_runtime::EventSettings::from_env(args.events_addr.clone());
    events.sink = notify.as_ref().map(|(d, _)| d.sink());
    let runtime = sluice_runtime::Runtime {
        metrics: reconcile_metrics,
        readiness: sluice_runtime::Readiness::default(),
        events,
        scope: sluice_runtime::WatchScope {
            namespace: args.watch_namespace.clone(),
            label_selector: args
                .watch_label_selector
                .clone()
                .filter(|s| !s.trim().is_empty()),
        },
        tenancy: tenancy(&args.kustomization),
        memory: sluice_runtime::memory::Trimmer::default(),
    };
    // Freed memory goes back to the system a second after a burst of reconciles, and every
    // two seconds during a long one.
    tokio::spawn(runtime.memory.clone().run(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(2),
    ));
    let shared = Shared {
        registry: Arc::new(registry),
        readiness: runtime.readiness.clone(),
    };

    let metrics_listener = TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("binding {metrics_addr}"))?;
    let health_listener = TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("binding {health_addr}"))?;
    tracing::info!(metrics = %metrics_listener.local_addr()?, health = %health_listener.local_addr()?, "serving");
    let metrics_app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared.clone());
    let health_app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared.clone());
    let servers = async move {
        tokio::try_join!(
            async {
                axum::serve(metrics_listener, metrics_app)
                    .await
                    .context("metrics server")
            },
            async {
                axum::serve(health_listener, health_app)
                    .await
                    .context("health server")
            },
        )
    };
    let controllers = Controllers {
        args: &args,
        client,
        config,
        runtime,
        notify,
        reloader_options,
        reloader_metrics,
        kustomization_metrics,
        requeue_dependency,
        grace,
        storage_addr,
    };
    // SIGTERM is caught from here on, also while waiting for the Lease.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let client = controllers.client.clone();
    let work = crate::leader::run_as_leader(&args.leader, client, shutdown, |leadership| {
        controllers.run(leadership)
    });
    tokio::select! {
        done = work => done,
        served = servers => match served {
            Ok(_) => bail!("the metrics and health servers ended"),
            Err(e) => Err(e),
        },
    }
}

/// Everything the controllers are started with, once this process may run
/// them (at once, or once it holds the Lease).
struct Controllers<'a> {
    args: &'a ControllerArgs,
    client: kube::Client,
    config: kube::Config,
    runtime: sluice_runtime::Runtime,
    notify: Option<(
        sluice_notify::dispatch::Dispatcher,
        sluice_notify::dispatch::Queue,
    )>,
    reloader_options: sluice_reloader::Options,
    reloader_metrics: sluice_reloader::Metrics,
    kustomization_metrics: sluice_kustomization::Metrics,
    requeue_dependency: std::time::Duration,
    grace: std::time::Duration,
    storage_addr: SocketAddr,
}

impl Controllers<'_> {
    /// Runs the enabled controllers until one ends or the process is asked
    /// to stop; then drains the Kustomization controller within the grace
    /// period.
    async fn run(self, leadership: sluice_runtime::leader::Leadership) -> Result<()> {
        let args = self.args;
        let runtime = self.runtime;
        let mut tasks = tokio::task::JoinSet::new();
        // The Kustomization controller runs apart: on SIGTERM it is asked to
        // drain (in-flight applies and prunes finish) and waited for.
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut kustomization_task: tokio::task::JoinHandle<Result<()>> =
            tokio::spawn(std::future::pending());
        if args.source.source_enabled {
            // Not ready until each kind's first list (its gate is opened by it).
            for gate in sluice_source::readiness_gates() {
                runtime.readiness.gate(&gate);
            }
            let listener = TcpListener::bind(self.storage_addr)
                .await
                .with_context(|| format!("binding {}", self.storage_addr))?;
            let bound = listener.local_addr()?;
            let adv = args.source.storage_adv_addr.clone().unwrap_or_else(|| {
                if bound.ip().is_unspecified() {
                    format!("localhost:{}", bound.port())
                } else {
                    bound.to_string()
                }
            });
            tracing::info!(artifacts = %bound, advertised = %adv, "serving artifacts");
            let router = sluice_source::artifact_router(&args.source.storage_path);
            tasks.spawn(async move {
                axum::serve(listener, router)
                    .await
                    .context("artifact server")
            });
            let opts = sluice_source::Options {
                storage_path: args.source.storage_path.clone(),
                storage_adv_addr: adv,
                artifact_retention: args.source.artifact_retention,
                concurrency: args.source.source_concurrency,
                namespace: args.watch_namespace.clone(),
                label_selector: runtime.scope.label_selector.clone(),
                interval_jitter: f64::from(args.interval_jitter_percentage) / 100.0,
                runtime: runtime.clone(),
                ..sluice_source::Options::default()
            };
            let client = self.client.clone();
            tasks.spawn(async move {
                sluice_source::run(client, opts)
                    .await
                    .context("source controller")
            });
        }
        if args.kustomization.kustomization_enabled {
            runtime.readiness.gate(sluice_kustomization::READINESS_GATE);
            let opts = sluice_kustomization::Options {
                namespace: args.watch_namespace.clone(),
                label_selector: runtime.scope.label_selector.clone(),
                interval_jitter: f64::from(args.interval_jitter_percentage) / 100.0,
                concurrency: args.kustomization.concurrency,
                // Artifacts of the in-process source controller are read from
                // disk; others are downloaded.
                storage_path: args
                    .source
                    .source_enabled
                    .then(|| args.source.storage_path.clone()),
                requeue_dependency: self.requeue_dependency,
                sops_age_secret: args
                    .kustomization
                    .sops_age_secret
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(|name| sluice_kustomization::AgeSecret {
                        namespace: sluice_runtime::leader::default_namespace(),
                        name,
                    }),
                no_remote_bases: args.kustomization.no_remote_bases,
                replaces_flux: sluice_cli::takeover::FLUX_CONTROLLERS
                    .iter()
                    .filter(|name| {
                        sluice_cli::takeover::replaces(
                            name,
                            args.helmrelease.helmrelease_enabled,
                            args.notification.notification_enabled,
                        )
                    })
                    .map(|name| name.to_string())
                    .collect(),
                runtime: runtime.clone(),
                ..sluice_kustomization::Options::default()
            };
            let config = self.config.clone();
            let metrics = self.kustomization_metrics;
            kustomization_task = tokio::spawn(async move {
                let stop = async move {
                    if stop_rx.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                sluice_kustomization::run_until(config, opts, metrics, stop)
                    .await
                    .context("Kustomization controller")
            });
        }
        if args.helmrelease.helmrelease_enabled {
            runtime.readiness.gate(sluice_helmrelease::READINESS_GATE);
            let opts = sluice_helmrelease::Options {
                namespace: args.watch_namespace.clone(),
                label_selector: runtime.scope.label_selector.clone(),
                concurrency: args.helmrelease.helmrelease_concurrency,
                storage_path: args
                    .source
                    .source_enabled
                    .then(|| args.source.storage_path.clone()),
                requeue_dependency: self.requeue_dependency,
                runtime: runtime.clone(),
                ..sluice_helmrelease::Options::default()
            };
            let config = self.config.clone();
            tasks.spawn(async move {
                sluice_helmrelease::run_until(config, opts, std::future::pending())
                    .await
                    .context("HelmRelease controller")
            });
        }
        if let Some((dispatcher, queue)) = self.notify {
            let addr =
                parse_listen_addr(&args.notification.receiver_addr).context("--receiver-addr")?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let events_addr = parse_listen_addr(&args.notification.events_listen_addr)
                .context("--notification-events-addr")?;
            let events = TcpListener::bind(events_addr)
                .await
                .with_context(|| format!("binding {events_addr}"))?;
            let serve = sluice_notify::Serve {
                receiver: listener,
                events,
                dispatcher,
                queue,
            };
            let opts = sluice_notify::Options {
                namespace: args.watch_namespace.clone(),
                label_selector: runtime.scope.label_selector.clone(),
                requests_per_second: args.notification.receiver_rate,
                runtime: runtime.clone(),
                ..sluice_notify::Options::default()
            };
            let client = self.client.clone();
            tasks.spawn(async move {
                sluice_notify::run_until(client, opts, serve, std::future::pending())
                    .await
                    .context("notifications")
            });
        }
        if args.reloader.enabled {
            let mut options = self.reloader_options;
            options.runtime = runtime.clone();
            for gate in sluice_reloader::readiness_gates(&options) {
                runtime.readiness.gate(&gate);
            }
            let client = self.client.clone();
            let metrics = self.reloader_metrics;
            tasks.spawn(async move {
                sluice_reloader::run(client, options, metrics)
                    .await
                    .context("reloader")
            });
        }

        enum Exit {
            Task(Option<std::result::Result<Result<()>, tokio::task::JoinError>>),
            Shutdown,
        }
        let exit = tokio::select! {
            finished = tasks.join_next(), if !tasks.is_empty() => Exit::Task(finished),
            finished = &mut kustomization_task => Exit::Task(Some(finished)),
            () = leadership.shutdown() => Exit::Shutdown,
        };
        match exit {
            Exit::Task(Some(Ok(Ok(())))) => bail!("a controller task ended unexpectedly"),
            Exit::Task(Some(Ok(Err(e)))) => Err(e),
            Exit::Task(Some(Err(join))) => {
                Err(anyhow::anyhow!("a controller task panicked: {join}"))
            }
            Exit::Task(None) => Ok(()),
            Exit::Shutdown => {
                runtime.readiness.stop();
                let grace = self.grace;
                tracing::info!(
                    grace = ?grace,
                    "shutting down: no new reconciliations; waiting for those in flight"
                );
                let _ = stop_tx.send(());
                match tokio::time::timeout(grace, kustomization_task).await {
                    Ok(Ok(Ok(()))) => tracing::info!("in-flight reconciliations finished"),
                    Ok(Ok(Err(e))) => tracing::warn!("Kustomization controller: {e:#}"),
                    Ok(Err(join)) => tracing::warn!("Kustomization controller panicked: {join}"),
                    Err(_) => tracing::warn!(
                        "graceful shutdown timeout of {grace:?} reached; exiting with reconciliations in flight"
                    ),
                }
                Ok(())
            }
        }
    }
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &shared.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string(),
        ),
    }
}

/// Ready once every running controller has listed what it watches; not
/// ready from the moment a shutdown starts.
async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.readiness.is_ready() {
        (StatusCode::OK, "ok".to_string())
    } else {
        let pending = shared.readiness.pending();
        let body = if pending.is_empty() {
            "shutting down".to_string()
        } else {
            format!("waiting for: {}", pending.join(", "))
        };
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            parse_listen_addr(":8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::1]:9440").unwrap(),
            "[::1]:9440".parse().unwrap()
        );
        assert!(parse_listen_addr("localhost").is_err());
    }

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ControllerArgs,
    }

    #[test]
    fn controller_flags_parse() {
        use clap::{CommandFactory, Parser};
        Wrapper::command().debug_assert();
        let w = Wrapper::try_parse_from([
            "x",
            "--source=false",
            "--concurrency",
            "8",
            "--requeue-dependency",
            "5s",
            "--storage-path",
            "/tmp/s",
        ])
        .unwrap();
        assert!(!w.args.source.source_enabled);
        assert!(w.args.kustomization.kustomization_enabled);
        assert_eq!(w.args.kustomization.concurrency, 8);
        assert_eq!(
            w.args.source.storage_path,
            std::path::PathBuf::from("/tmp/s")
        );
    }

    #[test]
    fn lockdown_flags_parse_as_fluxs_bool_flags() {
        use clap::Parser;
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        let k = &w.args.kustomization;
        assert!(!k.no_cross_namespace_refs && !k.no_remote_bases);
        assert_eq!(k.default_service_account, None);
        assert_eq!(k.graceful_shutdown_timeout, "25s");
        let w = Wrapper::try_parse_from([
            "x",
            "--no-cross-namespace-refs",
            "--no-remote-bases=true",
            "--default-service-account",
            "reconciler",
            "--graceful-shutdown-timeout=10s",
        ])
        .unwrap();
        let k = &w.args.kustomization;
        assert!(k.no_cross_namespace_refs && k.no_remote_bases);
        assert_eq!(k.default_service_account.as_deref(), Some("reconciler"));
        assert_eq!(k.graceful_shutdown_timeout, "10s");
        let w = Wrapper::try_parse_from(["x", "--no-cross-namespace-refs=false"]).unwrap();
        assert!(!w.args.kustomization.no_cross_namespace_refs);
    }

    #[test]
    fn tenancy_comes_from_the_lockdown_and_reconciler_flags() {
        use clap::Parser;
        let t = |argv: &[&str]| tenancy(&Wrapper::try_parse_from(argv).unwrap().args.kustomization);
        assert_eq!(t(&["x"]), sluice_runtime::Tenancy::default());
        let both = t(&[
            "x",
            "--reconciler-service-account=sluice-reconciler",
            "--default-service-account=",
            "--no-cross-namespace-refs",
        ]);
        assert_eq!(
            both.reconciler.as_ref().map(|sa| sa.name.as_str()),
            Some("sluice-reconciler")
        );
        assert_eq!(
            both.reconciler.map(|sa| sa.namespace),
            Some(sluice_runtime::leader::default_namespace())
        );
        // An empty flag is no account, as in Flux.
        assert_eq!(both.default_service_account, None);
        assert!(both.no_cross_namespace_refs);
        assert!(!both.external_artifacts);
        assert!(t(&["x", "--feature-gates=ExternalArtifact=true"]).external_artifacts);
        assert!(
            !t(&[
                "x",
                "--feature-gates=ExternalArtifact=true,ExternalArtifact=false"
            ])
            .external_artifacts
        );
        let unknown = Wrapper::try_parse_from(["x", "--feature-gates=GroupChangeLog=true"])
            .map(drop)
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("unrecognized feature gate: GroupChangeLog"),
            "{unknown}"
        );
    }

    #[test]
    fn metric_names_have_no_stray_prefix() {
        let (registry, metrics, kustomization, reconcile) = metrics_registry();
        metrics.tracked_objects(sluice_reloader::rules::SourceKind::Secret);
        kustomization.reconciles("applied");
        reconcile.observe_duration(
            "Kustomization",
            "flux-system",
            "apps",
            std::time::Duration::from_millis(5),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("sluice_reloader_tracked_objects{")),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with('_')), "{text}");
        // Every metric family is registered once (a repeated HELP line makes
        // Prometheus refuse the whole scrape).
        let mut helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
        let all = helps.len();
        helps.sort();
        helps.dedup();
        assert_eq!(helps.len(), all, "{text}");
        assert!(
            helps
                .iter()
                .any(|h| h.starts_with("# HELP gotk_reconcile_duration_seconds ")),
            "{text}"
        );
    }

    #[test]
    fn resources_to_ignore_are_validated() {
        let args = ReloaderArgs {
            enabled: true,
            reload_on_create: false,
            reload_on_delete: false,
            namespaces_to_ignore: vec![],
            namespace_selector: None,
            resource_label_selector: None,
            ignored_workload_types: vec![],
            resources_to_ignore: vec!["configMaps".into()],
            auto_reload_all: false,
        };
        let opts = args.options(None).unwrap();
        assert!(opts.ignore_configmaps && !opts.ignore_secrets);
        let bad = ReloaderArgs {
            resources_to_ignore: vec!["pods".into()],
            ..args
        };
        assert!(bad.options(None).unwrap_err().to_string().contains("pods"));
    }
}
