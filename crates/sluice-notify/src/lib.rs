//! Flux's notification APIs served natively. So far: [`Receiver`]s
//! (`notification.toolkit.fluxcd.io/v1`), as notification-controller's webhook-receiver serves
//! them: each Receiver gets the path `/hook/<sha256(token+name+namespace)>` in its status, and a
//! request to it that its type accepts ([`payload`]) asks its `resources` to reconcile
//! (`reconcile.fluxcd.io/requestedAt`), so a push to Gitea, GitHub or GitLab syncs at once
//! instead of at the next poll.
//!
//! - [`receiver`]: the controller: the token read from `spec.secretRef`, the path, Ready;
//!   fields and types sluice does not serve are refused by name (Stalled).
//! - [`server`]: the HTTP endpoint: bodies over 3 MiB refused (413), a request rate limit
//!   (429), unknown paths 404, suspended or not-ready Receivers 503, rejected payloads 400
//!   (nothing changed), then the reconcile requests.
//! - [`payload`]: signature, token and event checks per type (pure).
//!
//! [`Receiver`]: sluice_api::Receiver

pub mod payload;
pub mod receiver;
pub mod server;

use std::time::Duration;

/// Where Flux's webhook-receiver listens (its Service maps port 80 to it).
pub const DEFAULT_ADDR: &str = ":9292";

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
    /// Refuse `resources` in another namespace (`--no-cross-namespace-refs`).
    pub no_cross_namespace_refs: bool,
    /// What all controllers share.
    pub runtime: sluice_runtime::Runtime,
    /// How soon a failed reconcile is retried.
    pub retry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            label_selector: None,
            requests_per_second: 10,
            no_cross_namespace_refs: false,
            runtime: sluice_runtime::Runtime::default(),
            retry: Duration::from_secs(10),
        }
    }
}

/// Runs the Receiver controller and its webhook endpoint on `listener` until `stop` resolves
/// (or one of them fails).
pub async fn run_until(
    client: kube::Client,
    opts: Options,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (controller, store) = receiver::controller(client.clone(), &opts);
    tracing::info!(addr = %listener.local_addr()?, "serving Receiver webhooks");
    let router = server::router(server::State::new(client, store, &opts));
    tokio::select! {
        r = controller => r,
        r = axum::serve(listener, router) => r.map_err(|e| anyhow::anyhow!("webhook receiver: {e}")),
        () = stop => Ok(()),
    }
}
