//! Events, written once for every controller: a Kubernetes Event on the
//! object (Flux's reasons; repeats folded into a series; a per-object spam
//! filter like client-go's), and the same event forwarded in Flux's event
//! format (`event.toolkit.fluxcd.io` `Event`, JSON over HTTP POST) to the
//! `--events-addr` URL, so Flux's notification-controller can run beside
//! sluice, and to an in-process [`EventSink`] (sluice's own Alerts).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::{
    Event as KubeEvent, EventType as KubeEventType, Recorder as KubeRecorder, Reporter,
};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

/// Annotations on a Flux object with this prefix travel with its events
/// (Flux's RFC-0008, `eventv1.Group`).
pub const EVENT_METADATA_PREFIX: &str = "event.toolkit.fluxcd.io/";

/// Event notes are cut at this many bytes (the API server's limit is 1 KiB
/// for events.k8s.io notes).
const MAX_NOTE_BYTES: usize = 1024;

/// Normal or Warning, as Kubernetes Events have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// Flux's severity for the forwarded event.
    pub fn severity(self) -> &'static str {
        match self {
            EventType::Normal => "info",
            EventType::Warning => "error",
        }
    }
}

/// One event about the object being reconciled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub type_: EventType,
    pub reason: Cow<'static, str>,
    pub message: String,
    /// Metadata of the forwarded event, under the object's group (`commit_status` →
    /// `kustomize.toolkit.fluxcd.io/commit_status`); not part of the Kubernetes Event.
    pub metadata: BTreeMap<&'static str, String>,
}

impl Event {
    pub fn normal(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    pub fn warning(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Event {
            type_: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// Marks the event as the one that sets commit statuses (Flux's `commit_status: update`,
    /// which notification-controller sends to commit status and generic Providers only).
    pub fn commit_status_update(self) -> Self {
        self.with_metadata("commit_status", "update")
    }

    /// Adds `key` (under the object's group) to the forwarded event's metadata; an empty
    /// value is left out, as Flux's controllers leave it out.
    pub fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.metadata.insert(key, value);
        }
        self
    }
}

/// Takes every event in Flux's format in the same process (sluice's
/// notification dispatcher). It must not block: it is called from reconciles.
pub type EventSink = std::sync::Arc<dyn Fn(FluxEvent) + Send + Sync>;

/// Where events go, shared by a process's controllers.
#[derive(Clone)]
pub struct EventSettings {
    /// The `--events-addr` URL events are also POSTed to (Flux's
    /// notification-controller, or sluice's own when it has one).
    pub events_addr: Option<String>,
    /// The reporting instance (`POD_NAME`, else the host name).
    pub instance: String,
    /// Also handed every event, in process (sluice's Alerts).
    pub sink: Option<EventSink>,
}

impl EventSettings {
    /// `POD_NAME`, else the host name, else `controller`.
    pub fn from_env(events_addr: Option<String>) -> Self {
        let instance = std::env::var("POD_NAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "sluice".to_string());
        EventSettings {
            events_addr: events_addr.filter(|s| !s.is_empty()),
            instance,
            sink: None,
        }
    }
}

/// Publishes one controller's events.
#[derive(Clone)]
pub struct Recorder {
    kube: KubeRecorder,
    controller: String,
    instance: String,
    forward: Option<Forwarder>,
    sink: Option<EventSink>,
    spam: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl Recorder {
    /// A recorder reporting as `controller` (Flux's controller names:
    /// `source-controller`, `kustomize-controller`, …).
    pub fn new(client: Client, controller: &str, settings: &EventSettings) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: Some(settings.instance.clone()),
        };
        Recorder {
            kube: KubeRecorder::new(client, reporter),
            controller: controller.to_string(),
            instance: settings.instance.clone(),
            forward: settings.events_addr.as_deref().map(Forwarder::new),
            sink: settings.sink.clone(),
            spam: Arc::default(),
        }
    }

    /// Publishes `events` about `obj`; `revision` is the source revision
    /// they concern (metadata `<group>/revision` of the forwarded event).
    /// Returns how many Kubernetes Events were written. Failures are logged,
    /// never returned: an event lost must not fail a reconcile.
    pub async fn publish<K>(&self, obj: &K, revision: Option<&str>, events: &[Event]) -> usize
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = obj.object_ref(&());
        if self.forward.is_some() || self.sink.is_some() {
            for event in events {
                let payload = self.payload(obj, &reference, revision, event);
                if let Some(sink) = &self.sink {
                    sink(payload.clone());
                }
                if let Some(forward) = &self.forward {
                    forward.send(payload);
                }
            }
        }
        self.publish_ref(&reference, None, None, events).await
    }

    /// Publishes `events` as Kubernetes Events only (not forwarded): about
    /// `reference`, with an optional related object and `action` (default:
    /// `Reconcile-<digest of the note>`).
    pub async fn publish_ref(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        related: Option<&k8s_openapi::api::core::v1::ObjectReference>,
        action: Option<&str>,
        events: &[Event],
    ) -> usize {
        let key = reference.uid.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                reference.kind.as_deref().unwrap_or_default(),
                reference.namespace.as_deref().unwrap_or_default(),
                reference.name.as_deref().unwrap_or_default()
            )
        });
        let mut written = 0;
        for event in events {
            if !self.allow(&key, Instant::now()) {
                tracing::debug!(object = %key, reason = %event.reason, "event dropped by the spam filter");
                continue;
            }
            let note = truncate(&event.message, MAX_NOTE_BYTES);
            let ev = KubeEvent {
                type_: match event.type_ {
                    EventType::Normal => KubeEventType::Normal,
                    EventType::Warning => KubeEventType::Warning,
                },
                reason: event.reason.to_string(),
                // kube's recorder folds events with the same (type, reason,
                // action) into one series and keeps the first note; a digest
                // of the note in `action` keeps distinct messages distinct,
                // while exact repeats still fold into a series.
                action: action
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("Reconcile-{:016x}", fnv64(&note))),
                note: Some(note),
                secondary: related.cloned(),
            };
            match self.kube.publish(&ev, reference).await {
                Ok(()) => written += 1,
                Err(e) => tracing::warn!(object = %key, "publishing event: {e}"),
            }
        }
        written
    }

    /// The spam filter of client-go's event correlator: a token bucket per
    /// object, 25 events at once, then one more every 5 minutes.
    fn allow(&self, key: &str, now: Instant) -> bool {
        let Ok(mut spam) = self.spam.lock() else {
            return true;
        };
        if spam.len() > 4096 {
            spam.retain(|_, b| b.tokens(now) < BURST as f64);
        }
        spam.entry(key.to_string())
            .or_insert_with(|| Bucket::full(now))
            .take(now)
    }

    fn payload<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        revision: Option<&str>,
        event: &Event,
    ) -> FluxEvent {
        let mut metadata: BTreeMap<String, String> = obj
            .annotations()
            .iter()
            .filter(|(k, _)| k.starts_with(EVENT_METADATA_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(rev) = revision.filter(|r| !r.is_empty()) {
            metadata.insert(format!("{}/revision", K::group(&())), rev.to_string());
        }
        for (k, v) in &event.metadata {
            metadata.insert(format!("{}/{k}", K::group(&())), v.clone());
        }
        FluxEvent {
            involved_object: reference.clone(),
            severity: event.type_.severity(),
            timestamp: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
                .to_string(),
            message: event.message.clone(),
            reason: event.reason.to_string(),
            metadata,
            reporting_controller: self.controller.clone(),
            reporting_instance: self.instance.clone(),
        }
    }
}

/// Flux's `event.toolkit.fluxcd.io/v1beta1` `Event`, as its controllers
/// POST it to notification-controller.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    pub involved_object: k8s_openapi::api::core::v1::ObjectReference,
    pub severity: &'static str,
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    pub reporting_instance: String,
}

/// Posts events in the background: a reconcile never waits for the
/// receiver. Each event is tried a few times (5 s each); HTTP 429 is the
/// receiver saying it already has the event, and is not retried.
#[derive(Clone)]
struct Forwarder {
    url: String,
    client: reqwest::Client,
}

impl Forwarder {
    fn new(url: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Forwarder {
            url: url.to_string(),
            client,
        }
    }

    fn send(&self, event: FluxEvent) {
        let this = self.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let body = match serde_json::to_vec(&event) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("encoding event: {e}");
                    return;
                }
            };
            let mut delay = Duration::from_millis(500);
            for attempt in 1..=4 {
                let sent = this
                    .client
                    .post(&this.url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() || r.status().as_u16() == 429 => return,
                    Ok(r) if r.status().is_client_error() => {
                        tracing::warn!(url = %this.url, status = %r.status(), "event refused by the receiver");
                        return;
                    }
                    Ok(r) => tracing::debug!(attempt, status = %r.status(), "forwarding event"),
                    Err(e) => tracing::debug!(attempt, "forwarding event: {e}"),
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            tracing::warn!(url = %this.url, reason = %event.reason, "could not forward an event to --events-addr");
        });
    }
}

const BURST: u32 = 25;
const REFILL: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    available: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Bucket {
            available: f64::from(BURST),
            at: now,
        }
    }

    fn tokens(&self, now: Instant) -> f64 {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        (self.available + refilled).min(f64::from(BURST))
    }

    fn take(&mut self, now: Instant) -> bool {
        let tokens = self.tokens(now);
        self.at = now;
        if tokens >= 1.0 {
            self.available = tokens - 1.0;
            true
        } else {
            self.available = tokens;
            false
        }
    }
}

/// `message` cut to at most `max` bytes on a character boundary, marked
/// with ` ...` when cut.
pub fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max.saturating_sub(24);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &message[..end])
}

/// FNV-1a, 64 bit: stable across runs and dependency free.
fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spam_filter_allows_a_burst_then_one_per_refill() {
        let start = Instant::now();
        let mut b = Bucket::full(start);
        assert!((0..BURST).all(|_| b.take(start)));
        assert!(!b.take(start));
        assert!(!b.take(start + REFILL / 2));
        assert!(b.take(start + REFILL + Duration::from_secs(1)));
        assert!(!b.take(start + REFILL + Duration::from_secs(2)));
    }

    #[test]
    fn notes_are_cut_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with(" ..."));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn forwarded_events_have_fluxs_shape() {
        let e = FluxEvent {
            involved_object: k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
                kind: Some("Kustomization".into()),
                name: Some("apps".into()),
                namespace: Some("flux-system".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            severity: EventType::Warning.severity(),
            timestamp: "2026-12-02T00:00:00Z".into(),
            message: "m".into(),
            reason: "BuildFailed".into(),
            metadata: BTreeMap::from([(
                "kustomize.toolkit.fluxcd.io/revision".to_string(),
                "main@sha1:abc".to_string(),
            )]),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: "pod".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["involvedObject"]["kind"], "Kustomization");
        assert_eq!(v["severity"], "error");
        assert_eq!(v["reportingController"], "kustomize-controller");
        assert_eq!(
            v["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
            "main@sha1:abc"
        );
    }
}
