//! Flux's notification APIs served natively, in the process of the controllers whose events
//! they carry.
//!
//! Alerts and Providers (`notification.toolkit.fluxcd.io/v1beta3`): every event of sluice's
//! controllers (through [`dispatch::Dispatcher::sink`], no HTTP) and of Flux's controllers (the
//! event endpoint, [`server::events_router`]) is cleaned, de-duplicated and rate-limited as
//! notification-controller's event server does ([`event`]), matched to Alerts ([`matching`])
//! and sent to their Providers ([`provider`], [`notifier`]) without ever holding a reconcile.
//!
//! [`Receiver`]s (`v1`), as the webhook-receiver serves them: each Receiver gets the path
//! `/hook/<sha256(token+name+namespace)>` in its status, and a request to it that its type
//! accepts ([`payload`]) asks its `resources` to reconcile (`reconcile.fluxcd.io/requestedAt`),
//! so a push to Gitea, GitHub or GitLab syncs at once instead of at the next poll.
//!
//! - [`receiver`]: the controller: the token read from `spec.secretRef`, the path, Ready;
//!   fields and types sluice does not serve are refused by name (Stalled).
//! - [`server`]: the HTTP endpoints: bodies over 3 MiB refused (413), a request rate limit
//!   (429), unknown paths 404, suspended or not-ready Receivers 503, rejected payloads 400
//!   (nothing changed), then the reconcile requests; and the event endpoint.
//! - [`payload`]: signature, token and event checks per Receiver type (pure).
//! - [`filter`]: the CEL filters (`spec.resourceFilter`, `spec.resources[].filter`) that
//!   decide which resources a request asks to reconcile (pure).
//!
//! [`Receiver`]: sluice_api::Receiver

pub mod dispatch;
pub mod event;
pub mod filter;
pub mod matching;
pub mod notifier;
pub mod payload;
pub mod provider;
pub mod receiver;
pub mod server;

use std::time::Duration;

/// Where Flux's webhook-receiver listens (its Service maps port 80 to it).
pub const DEFAULT_ADDR: &str = ":9292";

/// Where sluice's event endpoint listens (Flux's is `:9090`, which sluice's artifact server
/// has; the `notification-controller` Service maps port 80 to this one).
pub const DEFAULT_EVENTS_ADDR: &str = ":9490";

/// The readiness gate the Receiver controller opens after its first list.
pub const READINESS_GATE: &str = "Receiver";

/// The field manager Flux's notification-controller writes status with.
pub const FIELD_MANAGER: &str = "notification-controller";

/// How the Receivers are served.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only this namespace.
    pub namespace: Option<String>,
    /// Flux's sharding selector.
    pub label_selector: Option<String>,
    /// Requests accepted per second (a burst of ten times as many).
    pub requests_per_second: u32,
    /// What all controllers share.
    pub runtime: sluice_runtime::Runtime,
    /// How soon a failed reconcile is retried.
    pub retry: Duration,
    /// The same event is dropped within this interval (`--rate-limit-interval`).
    pub rate_limit_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            label_selector: None,
            requests_per_second: 10,
            runtime: sluice_runtime::Runtime::default(),
            retry: Duration::from_secs(10),
            rate_limit_interval: dispatch::DEFAULT_RATE_LIMIT_INTERVAL,
        }
    }
}

/// The listeners and the dispatcher [`run_until`] serves.
pub struct Serve {
    /// The Receiver webhooks (`/hook/<digest>`).
    pub receiver: tokio::net::TcpListener,
    /// The event endpoint for Flux's controllers.
    pub events: tokio::net::TcpListener,
    /// The front of the dispatcher (its sink goes to this process's controllers).
    pub dispatcher: dispatch::Dispatcher,
    /// Its back.
    pub queue: dispatch::Queue,
}

/// Runs the Receiver controller, its webhook endpoint, the event endpoint and the dispatcher
/// until `stop` resolves (or one of them fails).
pub async fn run_until(
    client: kube::Client,
    opts: Options,
    serve: Serve,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (controller, store) = receiver::controller(client.clone(), &opts);
    tracing::info!(addr = %serve.receiver.local_addr()?, "serving Receiver webhooks");
    tracing::info!(addr = %serve.events.local_addr()?, "serving the event endpoint");
    let router = server::router(server::State::new(client.clone(), store, &opts));
    let events = server::events_router(serve.dispatcher);
    let settings = dispatch::Settings {
        namespace: opts.namespace.clone(),
        no_cross_namespace_refs: opts.runtime.tenancy.no_cross_namespace_refs,
        events: opts.runtime.events.clone(),
    };
    let dispatcher = dispatch::run(client, settings, serve.queue);
    tokio::select! {
        r = controller => r,
        r = axum::serve(serve.receiver, router) => r.map_err(|e| anyhow::anyhow!("webhook receiver: {e}")),
        r = axum::serve(serve.events, events) => r.map_err(|e| anyhow::anyhow!("event endpoint: {e}")),
        () = dispatcher => Ok(()),
        () = stop => Ok(()),
    }
}
