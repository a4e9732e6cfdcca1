//! The webhook endpoint (`/hook/<digest>`), as notification-controller's webhook-receiver
//! answers: 413 for a body over 3 MiB, 404 for a path no Receiver has, 503 for a suspended or
//! not-ready Receiver, 400 for a payload its type refuses (nothing is changed), 500 when a
//! reconcile could not be requested (or the Receiver's filters could not read the body or
//! be evaluated), else 200. Resources the filters turn down are left alone. Beyond Flux:
//! 429 past a request rate (a token bucket), so a flood of requests cannot keep the
//! controller busy.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use sluice_api::meta::{self, FluxObject};
use sluice_api::notification::{CrossNamespaceObjectReference, Receiver};

use crate::Options;

/// The largest body read (Flux's `maxRequestSizeBytes`).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What the handler shares.
#[derive(Clone)]
pub struct State {
    client: Client,
    receivers: Store<Receiver>,
    no_cross_namespace_refs: bool,
    limiter: Arc<Mutex<Bucket>>,
}

impl State {
    /// The state of an endpoint serving the Receivers of `receivers`.
    pub fn new(client: Client, receivers: Store<Receiver>, opts: &Options) -> State {
        let rate = f64::from(opts.requests_per_second.max(1));
        State {
            client,
            receivers,
            no_cross_namespace_refs: opts.runtime.tenancy.no_cross_namespace_refs,
            limiter: Arc::new(Mutex::new(Bucket {
                tokens: rate * 10.0,
                capacity: rate * 10.0,
                rate,
                last: Instant::now(),
            })),
        }
    }
}

/// A token bucket: `rate` requests a second, bursts of `capacity`.
struct Bucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The endpoint's routes.
pub fn router(state: State) -> Router {
    Router::new()
        .route(
            "/hook/{digest}",
            any(move |path: Path<String>, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { handle(&state, &path.0, &headers, &body).await }
            }),
        )
        // One byte over the limit is enough to know it is over.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn handle(state: &State, digest: &str, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    if !state.limiter.lock().is_ok_and(|mut b| b.take()) {
        tracing::warn!("webhook request refused: over the request rate");
        return StatusCode::TOO_MANY_REQUESTS;
    }
    let path = format!("{}{digest}", sluice_api::notification::WEBHOOK_PATH_PREFIX);
    let Some(receiver) =
        state.receivers.state().into_iter().find(|r| {
            r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path.as_str())
        })
    else {
        return StatusCode::NOT_FOUND;
    };
    let (name, ns) = (
        receiver.name_any(),
        receiver.namespace().unwrap_or_default(),
    );
    if receiver.is_suspended() || !receiver.is_ready() {
        tracing::warn!(receiver = %name, namespace = %ns, "unable to process request: receiver is {}",
            if receiver.is_suspended() { "suspended" } else { "not ready" });
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let token = match crate::receiver::token(&state.client, &receiver).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(receiver = %name, namespace = %ns, "unable to validate payload: {e}");
            return StatusCode::BAD_REQUEST;
        }
    };
    let events = receiver.spec.events.clone().unwrap_or_default();
    match crate::payload::validate(&receiver.spec.type_, &token, &events, headers, body) {
        Ok(event) => {
            tracing::info!(receiver = %name, namespace = %ns, event = event.as_deref().unwrap_or(""),
                "handling {} webhook", receiver.spec.type_.as_str());
        }
        Err(e) => {
            tracing::warn!(receiver = %name, namespace = %ns, "unable to validate payload: {e}");
            return StatusCode::BAD_REQUEST;
        }
    }
    let filters = match crate::filter::Filters::new(&receiver, headers, body) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(receiver = %name, namespace = %ns, "unable to create resource filters: {e}");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    };
    let mut failed = false;
    for (index, resource) in receiver.spec.resources.iter().enumerate() {
        let filter = filters
            .as_ref()
            .filter(|f| f.apply_to(index))
            .map(|f| (f, index));
        if let Err(e) = request_reconcile(state, resource, &ns, filter).await {
            tracing::warn!(receiver = %name, namespace = %ns, "unable to request reconciliation: {e}");
            failed = true;
        }
    }
    if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// The apiVersion of a kind named without one (Flux's `defaultFluxAPIVersions`).
fn default_api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Bucket" | "HelmChart" | "HelmRepository" | "GitRepository" | "OCIRepository" => {
            "source.toolkit.fluxcd.io/v1"
        }
        "ImageRepository" => "image.toolkit.fluxcd.io/v1",
        "ArtifactGenerator" => "source.extensions.fluxcd.io/v1beta1",
        _ => return None,
    })
}

/// Annotates the resource (or, with name `*`, those matching its labels) with a new
/// `reconcile.fluxcd.io/requestedAt`; with filters, only those they accept (each is read
/// first, its metadata being what the filters see).
async fn request_reconcile(
    state: &State,
    resource: &CrossNamespaceObjectReference,
    receiver_ns: &str,
    filter: Option<(&crate::filter::Filters, usize)>,
) -> Result<(), String> {
    let ns = match resource.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(n) if state.no_cross_namespace_refs && n != receiver_ns => {
            return Err("cross-namespace references are not allowed".into());
        }
        Some(n) => n,
        None => receiver_ns,
    };
    let kind = resource.kind.as_str();
    let api_version = match resource.api_version.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => default_api_version(kind)
            .ok_or_else(|| format!("apiVersion must be specified for kind {kind:?}"))?,
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = Api::namespaced_with(state.client.clone(), ns, &ar);
    let candidates: Vec<(String, Option<ObjectMeta>)> = if resource.name == "*" {
        let Some(labels) = resource.match_labels.as_ref() else {
            return Err("matchLabels field not set when using wildcard '*' as name".into());
        };
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                format!("failed listing resources in namespace {ns:?} by matching labels {selector:?}: {e}")
            })?;
        if list.items.is_empty() {
            tracing::warn!(
                "no {kind:?} resources found with matching labels {selector:?} in {ns:?} namespace"
            );
        }
        list.items
            .into_iter()
            .map(|o| (o.name_any(), Some(o.metadata)))
            .collect()
    } else if filter.is_some() {
        let object = api.get_metadata(&resource.name).await.map_err(|e| {
            format!(
                "unable to read {kind} \"{ns}/{}\" error: {e}",
                resource.name
            )
        })?;
        vec![(resource.name.clone(), Some(object.metadata))]
    } else {
        vec![(resource.name.clone(), None)]
    };
    let mut names = Vec::with_capacity(candidates.len());
    for (name, metadata) in candidates {
        if let (Some((filters, index)), Some(metadata)) = (filter, metadata) {
            let res = serde_json::json!({
                "apiVersion": api_version, "kind": kind, "metadata": metadata,
            });
            let accepted = filters
                .accepts(index, &res)
                .map_err(|e| format!("evaluating the filter of {kind} \"{ns}/{name}\": {e}"))?;
            if !accepted {
                tracing::debug!(
                    "resource '{kind}/{name}.{ns}' NOT annotated because CEL expression returned false"
                );
                continue;
            }
        }
        names.push(name);
    }
    let now = jiff::Timestamp::now().to_string();
    let patch =
        serde_json::json!({"metadata": {"annotations": {meta::RECONCILE_REQUEST_ANNOTATION: now}}});
    for name in names {
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("unable to annotate {kind} \"{ns}/{name}\" error: {e}"))?;
        tracing::info!("resource '{kind}/{name}.{ns}' annotated");
    }
    Ok(())
}

/// The event endpoint (`--events-addr` of Flux's controllers: any path, any method), as
/// notification-controller's event server answers: 413 for a body over 3 MiB, 400 for one
/// that is not an event, 429 for an event already seen within the rate-limit interval, else
/// 202 (sending happens after the answer). Beyond Flux: 503 when the queue is full.
pub fn events_router(dispatcher: crate::dispatch::Dispatcher) -> Router {
    Router::new()
        .fallback(move |body: Bytes| {
            let dispatcher = dispatcher.clone();
            async move { accept_event(&dispatcher, &body) }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn accept_event(dispatcher: &crate::dispatch::Dispatcher, body: &[u8]) -> StatusCode {
    let event: crate::event::Event = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("decoding the request body failed: {e}");
            return StatusCode::BAD_REQUEST;
        }
    };
    match dispatcher.accept(event) {
        crate::dispatch::Accepted::Queued => StatusCode::ACCEPTED,
        crate::dispatch::Accepted::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        crate::dispatch::Accepted::Overflowed => StatusCode::SERVICE_UNAVAILABLE,
    }
}
