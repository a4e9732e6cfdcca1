//! From an event to the Providers it is for, as notification-controller's event server, in the
//! same process as the controllers that emit it.
//!
//! Events come in from sluice's controllers through [`Dispatcher::sink`] (no HTTP, no copy of
//! the event server's work) and from Flux's controllers through the event endpoint
//! ([`crate::server::events_router`]). Both go through [`Dispatcher::accept`]: metadata cleaned,
//! the same event (object, message, revision, token) dropped within the rate-limit interval
//! (Flux's 5 minutes), then queued. Accepting never waits: a full queue drops the event and
//! counts it, so no reconcile is ever slowed by a notification.
//!
//! One task takes events off the queue, finds the Alerts that want them (from a watch, not a
//! list per event), resolves each Alert's Provider and sends in a task of its own, retried with
//! back-off within the Provider's timeout. Failures are Warning events on the Alert
//! (`NotificationDispatchFailed`, Flux's wording, secrets masked); deliveries are Normal
//! events (`NotificationSent`, rate-limited per Alert), so `sluice events --for
//! Alert/<name>` shows what went where.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use sluice_api::notification::{Alert, Provider};
use sluice_runtime::{Event as KubeEvent, EventSettings, EventSink, Recorder};
use tokio::sync::{Semaphore, mpsc};

use crate::event::Event;
use crate::matching::{self, Verdict};
use crate::notifier::{self, Delivery};
use crate::provider;

/// Flux's `--rate-limit-interval` default.
pub const DEFAULT_RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(300);

/// Events waiting to be matched; beyond this, new events are dropped (and counted).
const QUEUE: usize = 4096;
/// Notifications being sent at once.
const IN_FLIGHT: usize = 64;

/// Counters of what happened to events (for tests, logs and the benchmark).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events accepted into the queue.
    pub queued: AtomicU64,
    /// Events dropped as repeats within the rate-limit interval.
    pub rate_limited: AtomicU64,
    /// Events dropped because the queue was full.
    pub overflowed: AtomicU64,
    /// Events that no Alert wanted.
    pub unmatched: AtomicU64,
    /// Notifications sent.
    pub sent: AtomicU64,
    /// Notifications that failed (after retries) or could not be prepared.
    pub failed: AtomicU64,
}

/// What [`Dispatcher::accept`] did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Queued for the Alerts.
    Queued,
    /// The same event was seen within the interval (Flux answers 429).
    RateLimited,
    /// The queue is full (answered 503).
    Overflowed,
}

/// The front of the dispatcher, cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Event>,
    limiter: Arc<Mutex<RateLimiter>>,
    stats: Arc<Stats>,
}

/// The back of the dispatcher, run by [`run`].
pub struct Queue {
    rx: mpsc::Receiver<Event>,
    stats: Arc<Stats>,
}

impl Dispatcher {
    /// A dispatcher that drops an event seen within `interval` (0: never).
    pub fn new(interval: Duration) -> (Dispatcher, Queue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        (
            Dispatcher {
                tx,
                limiter: Arc::new(Mutex::new(RateLimiter::new(interval))),
                stats: stats.clone(),
            },
            Queue { rx, stats },
        )
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Cleans, rate-limits and queues `event`; never waits.
    pub fn accept(&self, mut event: Event) -> Accepted {
        event.clean_metadata();
        let allowed = self
            .limiter
            .lock()
            .map(|mut l| l.allow(event.rate_key(), Instant::now()))
            .unwrap_or(true);
        if !allowed {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(object = %event.object_string(), "discarding event, rate limiting duplicate events");
            return Accepted::RateLimited;
        }
        event.drop_token();
        match self.tx.try_send(event) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                Accepted::Queued
            }
            Err(e) => {
                self.stats.overflowed.fetch_add(1, Ordering::Relaxed);
                let event = match e {
                    mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e) => e,
                };
                tracing::warn!(object = %event.object_string(), reason = %event.reason,
                    "discarding event: the notification queue is full");
                Accepted::Overflowed
            }
        }
    }

    /// A sink for the controllers of this process (`EventSettings::sink`).
    pub fn sink(&self) -> EventSink {
        let this = self.clone();
        Arc::new(move |e| {
            this.accept(Event::from(e));
        })
    }
}

/// Flux's event rate limit: one token per key per interval (go-limiter's memory store with
/// one token), swept so that it stays bounded.
struct RateLimiter {
    interval: Duration,
    seen: HashMap<String, Instant>,
    swept: Instant,
}

impl RateLimiter {
    fn new(interval: Duration) -> Self {
        RateLimiter {
            interval,
            seen: HashMap::new(),
            swept: Instant::now(),
        }
    }

    fn allow(&mut self, key: String, now: Instant) -> bool {
        if self.interval.is_zero() {
            return true;
        }
        if now.saturating_duration_since(self.swept) >= self.interval {
            let interval = self.interval;
            self.seen
                .retain(|_, at| now.saturating_duration_since(*at) < interval);
            self.swept = now;
        }
        match self.seen.get(&key) {
            Some(at) if now.saturating_duration_since(*at) < self.interval => false,
            _ => {
                self.seen.insert(key, now);
                true
            }
        }
    }
}

/// What the dispatcher needs to run.
#[derive(Clone)]
pub struct Settings {
    /// Watch only this namespace.
    pub namespace: Option<String>,
    /// Refuse events from another namespace than the Alert's.
    pub no_cross_namespace_refs: bool,
    /// The reporting instance for the Alert events.
    pub events: EventSettings,
}

/// Watches Alerts and Providers and sends what comes off `queue` until it closes.
pub async fn run(client: Client, settings: Settings, queue: Queue) {
    let (alerts, alerts_writer) = reflector::store::<Alert>();
    let (providers, providers_writer) = reflector::store::<Provider>();
    let (alert_api, provider_api): (Api<Alert>, Api<Provider>) = match &settings.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let watch_alerts = reflector::reflector(
        alerts_writer,
        watcher(alert_api, watcher::Config::default()),
    )
    .default_backoff()
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::warn!("watching Alerts: {e}");
        }
    });
    let watch_providers = reflector::reflector(
        providers_writer,
        watcher(provider_api, watcher::Config::default()),
    )
    .default_backoff()
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::warn!("watching Providers: {e}");
        }
    });
    tokio::spawn(watch_alerts);
    tokio::spawn(watch_providers);
    // Events emitted before the first lists are kept until the stores are filled, not
    // discarded as unmatched.
    let _ = tokio::time::timeout(Duration::from_secs(30), alerts.wait_until_ready()).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), providers.wait_until_ready()).await;

    let recorder_settings = EventSettings {
        events_addr: None,
        sink: None,
        ..settings.events.clone()
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        alerts,
        providers,
        no_cross_namespace_refs: settings.no_cross_namespace_refs,
        failures: Recorder::new(client.clone(), crate::FIELD_MANAGER, &recorder_settings),
        deliveries: Recorder::new(client, crate::FIELD_MANAGER, &recorder_settings),
        in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        stats: queue.stats.clone(),
        clients: Clients::default(),
    });
    let mut rx = queue.rx;
    while let Some(event) = rx.recv().await {
        ctx.handle(event).await;
    }
}

struct Ctx {
    client: Client,
    alerts: Store<Alert>,
    providers: Store<Provider>,
    no_cross_namespace_refs: bool,
    failures: Recorder,
    deliveries: Recorder,
    in_flight: Arc<Semaphore>,
    stats: Arc<Stats>,
    clients: Clients,
}

/// HTTP clients by what makes them differ (proxy, TLS material, timeout), so a burst to one
/// Provider reuses one client and its connections instead of setting up TLS per notification.
#[derive(Default)]
struct Clients(Mutex<HashMap<u64, reqwest::Client>>);

impl Clients {
    /// At most this many are kept (then the cache starts over).
    const MAX: usize = 64;

    fn get(&self, t: &provider::Target) -> Result<reqwest::Client, String> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&t.proxy, &t.ca_pem, &t.cert_pem, &t.key_pem, t.timeout).hash(&mut h);
        let key = h.finish();
        if let Some(c) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let client = t.http_client()?;
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(key, client.clone());
        }
        Ok(client)
    }
}

impl Ctx {
    async fn handle(self: &Arc<Self>, event: Event) {
        let mut wanted = vec![];
        for alert in self.alerts.state() {
            let verdict = matching::sources(&alert, &event);
            let takes = match verdict {
                Verdict::Yes => true,
                Verdict::No => false,
                Verdict::IfLabels(sets) => match self.labels_of(&event).await {
                    Ok(labels) => matching::labels_match(&sets, &labels),
                    Err(e) => {
                        tracing::warn!(object = %event.object_string(), "error getting the involved object: {e}");
                        self.warn(
                            &alert,
                            "SourceFetchFailed",
                            format!("error getting source object {}", event.object_string()),
                        )
                        .await;
                        false
                    }
                },
            };
            if !takes {
                continue;
            }
            let (passes, invalid) = matching::message_passes(&alert, &event.message);
            for message in invalid {
                self.warn(&alert, "InvalidConfig", message).await;
            }
            if passes {
                wanted.push(alert);
            }
        }
        if wanted.is_empty() {
            self.stats.unmatched.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(object = %event.object_string(), "discarding event, no alerts found for the involved object");
            return;
        }
        for alert in wanted {
            if let Err(e) = self.dispatch(&event, &alert).await {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(alert = %alert.name_any(), namespace = ?alert.namespace(), "failed to dispatch notification: {e}");
                self.warn(
                    &alert,
                    "NotificationDispatchFailed",
                    format!(
                        "failed to dispatch notification for {}: {e}",
                        event.object_string()
                    ),
                )
                .await;
            }
        }
    }

    /// Prepares the notification of `event` for `alert` and sends it in a task of its own.
    async fn dispatch(self: &Arc<Self>, event: &Event, alert: &Arc<Alert>) -> Result<(), String> {
        let alert_ns = alert.namespace().unwrap_or_default();
        if self.no_cross_namespace_refs && event.involved_object.namespace != alert_ns {
            return Err(format!(
                "discarding event, access denied to cross-namespace sources: alert '{alert_ns}/{}' can't process event from '{}', cross-namespace references have been blocked",
                alert.name_any(),
                event.object_string()
            ));
        }
        let provider_name = &alert.spec.provider_ref.name;
        let Some(provider) = self.providers.state().into_iter().find(|p| {
            p.name_any() == *provider_name && p.namespace().as_deref() == Some(alert_ns.as_str())
        }) else {
            return Err(format!(
                "failed to read provider: providers.notification.toolkit.fluxcd.io \"{provider_name}\" not found"
            ));
        };
        if provider.is_suspended() {
            return Ok(());
        }
        let (notification, conflicts) = event.for_alert(alert);
        if !conflicts.is_empty() {
            tracing::info!(alert = %alert.name_any(), keys = ?conflicts, "warning: metadata key conflicts detected");
            self.warn(
                alert,
                "MetadataAppendFailed",
                "metadata key conflicts detected (please refer to the Alert API docs and Flux RFC 0008 for more information)".into(),
            )
            .await;
        }
        let kind = provider::kind(&provider)?;
        match notifier::admits(&kind, event) {
            notifier::Admit::Yes => {}
            notifier::Admit::Skip(why) => {
                tracing::debug!(alert = %alert.name_any(), "{why}");
                return Ok(());
            }
        }
        let mut target = provider::resolve(&self.client, &provider, kind, &notification).await?;
        target.commit_status = provider::commit_status(&provider, alert, &notification)?;
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let delivery = notifier::prepare(&target, &notification, now_ms).map_err(|e| {
            format!("failed to initialize notifier for provider '{provider_name}': {e}")
        })?;
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let this = self.clone();
        let alert = alert.clone();
        let object = event.object_string();
        let reason = event.reason.clone();
        let provider_desc = format!(
            "{} Provider '{}'",
            target.kind.as_str(),
            provider.name_any()
        );
        // Recorded on the Alert (as Flux) and on the Provider (sluice: Flux's v1beta3 Provider
        // has no status, so this is where `sluice get alert-providers` reads how it is doing).
        let refs = [alert.object_ref(&()), provider.object_ref(&())];
        tokio::spawn(async move {
            let _permit = permit;
            let (recorder, event) = match send(&this.clients, &target, delivery).await {
                Ok(()) => {
                    this.stats.sent.fetch_add(1, Ordering::Relaxed);
                    (
                        &this.deliveries,
                        KubeEvent::normal(
                            "NotificationSent",
                            format!("sent {reason} of {object} to {provider_desc}"),
                        ),
                    )
                }
                Err(e) => {
                    this.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(alert = %alert.name_any(), namespace = ?alert.namespace(), "failed to send notification: {e}");
                    (
                        &this.failures,
                        KubeEvent::warning(
                            "NotificationDispatchFailed",
                            format!("failed to send notification for {object}: {e}"),
                        ),
                    )
                }
            };
            for r in &refs {
                recorder
                    .publish_ref(r, None, None, std::slice::from_ref(&event))
                    .await;
            }
        });
        Ok(())
    }

    async fn warn(&self, alert: &Alert, reason: &'static str, message: String) {
        self.failures
            .publish_ref(
                &alert.object_ref(&()),
                None,
                None,
                &[KubeEvent::warning(reason, message)],
            )
            .await;
    }

    /// The labels of the event's object.
    async fn labels_of(&self, event: &Event) -> Result<BTreeMap<String, String>, String> {
        let o = &event.involved_object;
        let (group, version) = o
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", o.api_version.as_str()));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &o.kind));
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &o.namespace, &ar);
        let meta = api.get_metadata(&o.name).await.map_err(|e| e.to_string())?;
        Ok(meta.metadata.labels.unwrap_or_default())
    }
}

/// Sends `delivery`, retrying what may pass later (connection errors, 429, 5xx but 501) with
/// Flux's back-off (2 s, 4 s, 8 s, 16 s: at most five attempts) within the Provider's
/// timeout; errors have secrets masked.
async fn send(
    clients: &Clients,
    target: &provider::Target,
    delivery: Delivery,
) -> Result<(), String> {
    let client = clients.get(target)?;
    let deadline = Instant::now() + target.timeout;
    let mut delay = Duration::from_secs(2);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result =
            tokio::time::timeout_at(deadline.into(), notifier::execute(&client, &delivery))
                .await
                .unwrap_or_else(|_| {
                    Err(notifier::SendError {
                        message: format!("timed out after {:?}", target.timeout),
                        retry: false,
                    })
                });
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.retry && attempt < 5 && Instant::now() + delay < deadline => {
                tracing::debug!(
                    attempt,
                    "notification not delivered, retrying: {}",
                    target.mask(&e.message)
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(target.mask(&e.message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limiter_lets_one_event_through_per_interval() {
        let mut l = RateLimiter::new(Duration::from_secs(300));
        let t = Instant::now();
        assert!(l.allow("a".into(), t));
        assert!(!l.allow("a".into(), t + Duration::from_secs(299)));
        assert!(l.allow("b".into(), t + Duration::from_secs(1)));
        assert!(l.allow("a".into(), t + Duration::from_secs(301)));
        // Swept: only what was seen within the interval stays.
        assert!(l.allow("c".into(), t + Duration::from_secs(700)));
        assert_eq!(l.seen.len(), 1);
        let mut off = RateLimiter::new(Duration::ZERO);
        assert!(off.allow("a".into(), t) && off.allow("a".into(), t));
    }

    #[tokio::test]
    async fn accepting_never_waits_and_counts_what_it_drops() {
        let (d, _queue) = Dispatcher::new(Duration::from_secs(300));
        let event = |i: usize| {
            let mut e = Event::default();
            e.involved_object.kind = "Kustomization".into();
            e.message = format!("event {i}");
            e
        };
        assert_eq!(d.accept(event(0)), Accepted::Queued);
        assert_eq!(d.accept(event(0)), Accepted::RateLimited);
        for i in 1..QUEUE {
            assert_eq!(d.accept(event(i)), Accepted::Queued);
        }
        assert_eq!(d.accept(event(QUEUE)), Accepted::Overflowed);
        let s = d.stats();
        assert_eq!(s.queued.load(Ordering::Relaxed), QUEUE as u64);
        assert_eq!(s.rate_limited.load(Ordering::Relaxed), 1);
        assert_eq!(s.overflowed.load(Ordering::Relaxed), 1);
    }
}
