//! Leader election on a `coordination.k8s.io/v1` Lease, with the semantics
//! of client-go's `leaderelection` package as controller-runtime (and so
//! every Flux controller) uses it:
//!
//! - a candidate takes the Lease when it is absent, has no holder (it was
//!   released), is held by this candidate, or has not changed for
//!   `leaseDurationSeconds` *as observed on the candidate's own monotonic
//!   clock* (client-go's rule: the holder's `renewTime` is never compared
//!   with the local wall clock, so clock skew between nodes cannot make two
//!   leaders);
//! - every write is an update carrying the `resourceVersion` that was read
//!   (or a create), so of two candidates racing for the same Lease one gets
//!   a conflict and loses;
//! - a write sets `holderIdentity`, `leaseDurationSeconds`, `renewTime`,
//!   and on a change of holder `acquireTime` and `leaseTransitions + 1`;
//! - the leader renews every retry period; when no renewal has succeeded
//!   within the renew deadline, or the Lease names someone else, leadership
//!   is lost and [`run_as_leader`] stops the work at once (the caller exits
//!   non-zero, as a controller-runtime manager does). The renew deadline is
//!   shorter than the lease duration, so the old leader has stopped before
//!   anyone else may take over;
//! - on a clean shutdown the Lease is released (controller-runtime's
//!   `ReleaseOnCancel`, Flux's `--leader-election-release-on-cancel`): the
//!   holder is cleared and the duration set to one second, so a standby takes
//!   over at its next retry instead of after a lease duration.
//!
//! The decisions are pure functions of what was read ([`decide`],
//! [`next_spec`], [`released_spec`], [`renewal_lost`]) and are unit-tested
//! without a cluster; [`LeaderElector`] does the I/O around them.
//!
//! Why not a crate from crates.io: `kube-leader-election` depends on kube 4
//! (sluice is on kube 5); `kube-lease-manager` 0.13 is on kube 5 but has a
//! different model (a duration and a "grace" in whole seconds, server-side
//! apply, expiry judged from the holder's `renewTime` against the local wall
//! clock) that does not carry Flux's three settings (lease duration, renew
//! deadline, retry period) or client-go's skew-tolerant expiry, and it brings
//! `rand` 0.10. This module is a few hundred lines on kube's typed `Api`.

use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

/// The Lease sluice's controllers elect their leader on.
pub const DEFAULT_LEASE_NAME: &str = "sluice-leader-election";
/// The Lease's namespace when nothing names one ([`default_namespace`]).
pub const DEFAULT_NAMESPACE: &str = "flux-system";
/// Flux's default `--leader-election-lease-duration`.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(35);
/// Flux's default `--leader-election-renew-deadline`.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(30);
/// Flux's default `--leader-election-retry-period`.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(5);
/// client-go's `JitterFactor`: a candidate waits between one and 2.2 retry
/// periods between attempts, and the renew deadline must exceed 1.2 of them.
const JITTER_FACTOR: f64 = 1.2;

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity, written as `holderIdentity`; unique per
    /// process ([`default_identity`]).
    pub identity: String,
    /// How long a Lease that has not changed is honoured by the others.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// Time between attempts (to acquire, to renew).
    pub retry_period: Duration,
    /// Release the Lease when the work ends cleanly.
    pub release_on_cancel: bool,
}

impl Config {
    /// Flux's defaults for the Lease `namespace/name`, as `identity`.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Config {
        Config {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            release_on_cancel: true,
        }
    }

    /// client-go's checks: lease duration > renew deadline > 1.2 × retry
    /// period > 0, and a non-empty identity.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |why: String| Err(LeaderError::InvalidConfig(why));
        if self.identity.is_empty() {
            return invalid("the identity is empty".into());
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return invalid("the Lease needs a name and a namespace".into());
        }
        if self.retry_period.is_zero() {
            return invalid("the retry period must be above zero".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return invalid(format!(
                "the renew deadline ({:?}) must be longer than {JITTER_FACTOR} × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }

    /// `leaseDurationSeconds`: the lease duration rounded up to whole
    /// seconds (at least one).
    pub fn lease_duration_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }
}

/// Why leader election failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election settings: {0}")]
    InvalidConfig(String),
    #[error("leadership lost: {0}")]
    Lost(String),
    #[error("Lease {lease}: {source}")]
    Api {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("Lease {lease}: no answer from the API server within {timeout:?}")]
    Timeout { lease: String, timeout: Duration },
}

// ------------------------------------------------------------ identity ---

/// This process's identity: `$POD_NAME` (else the host name, else `sluice`),
/// `_`, and a random suffix, so that a restarted process never mistakes the
/// Lease of its previous life for its own (controller-runtime uses the host
/// name and a UUID).
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "sluice".to_owned());
    format!("{}_{:016x}", base.trim(), random_u64())
}

/// The Lease's namespace: `$POD_NAMESPACE`, else `$RUNTIME_NAMESPACE`
/// (what Flux's manifests and `sluice install` set), else the namespace of
/// the pod's service account (as controller-runtime does in a cluster),
/// else `flux-system`.
pub fn default_namespace() -> String {
    namespace_from(
        |name| std::env::var(name).ok(),
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok(),
    )
}

fn namespace_from(env: impl Fn(&str) -> Option<String>, in_cluster: Option<String>) -> String {
    ["POD_NAMESPACE", "RUNTIME_NAMESPACE"]
        .into_iter()
        .filter_map(env)
        .chain(in_cluster)
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// A random number from the standard library's randomly keyed hasher (no
/// dependency for a suffix and a jitter).
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    std::process::id().hash(&mut hasher);
    Instant::now().hash(&mut hasher);
    std::time::SystemTime::now().hash(&mut hasher);
    hasher.finish()
}

/// A wait of `period × (1 + r × 1.2)`, `r` in [0, 1): client-go's jittered
/// retry, so candidates do not knock in step.
fn jittered(period: Duration) -> Duration {
    let r = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    period.mul_f64(1.0 + r * JITTER_FACTOR)
}

// ----------------------------------------------------- pure decisions ---

/// What a candidate should do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease: create it, holding it.
    Create,
    /// The Lease is free (no holder, or expired): take it over.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it, and it is valid until `until` (on this
    /// candidate's clock) unless it changes.
    Wait { holder: String, until: Instant },
}

/// The Lease's holder, if any (an empty `holderIdentity` is no holder).
pub fn holder(spec: Option<&LeaseSpec>) -> Option<&str> {
    spec.and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// Decides what to do with the Lease read, given when this candidate first
/// saw its current content (`observed_at`, a monotonic instant) and `now`.
/// A Lease held by another is expired once it has not changed for its
/// `leaseDurationSeconds` on our clock (client-go's `isLeaseValid`).
pub fn decide(
    identity: &str,
    lease: Option<&LeaseSpec>,
    observed_at: Instant,
    now: Instant,
) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    match holder(Some(spec)) {
        None => Decision::Acquire,
        Some(h) if h == identity => Decision::Renew,
        Some(h) => {
            let secs = spec.lease_duration_seconds.unwrap_or(0).max(0);
            let until = observed_at + Duration::from_secs(secs as u64);
            if now < until {
                Decision::Wait {
                    holder: h.to_owned(),
                    until,
                }
            } else {
                Decision::Acquire
            }
        }
    }
}

/// The Lease spec to write to hold the Lease as `identity` at `now`: the
/// acquire time and transition count are kept on a renewal and advanced on a
/// change of holder.
pub fn next_spec(
    current: Option<&LeaseSpec>,
    identity: &str,
    lease_duration_seconds: i32,
    now: jiff::Timestamp,
) -> LeaseSpec {
    let ours = holder(current) == Some(identity);
    let transitions = current.and_then(|s| s.lease_transitions).unwrap_or(0);
    let (acquire_time, lease_transitions) = match current {
        Some(spec) if ours => (
            spec.acquire_time.clone().or(Some(MicroTime(now))),
            transitions,
        ),
        Some(_) => (Some(MicroTime(now)), transitions.saturating_add(1)),
        None => (Some(MicroTime(now)), 0),
    };
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(lease_duration_seconds),
        acquire_time,
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(lease_transitions),
        // Fields this election does not use (coordinated leader election)
        // are left as they were.
        preferred_holder: current.and_then(|s| s.preferred_holder.clone()),
        strategy: current.and_then(|s| s.strategy.clone()),
    }
}

/// The Lease spec that releases it (client-go's `release`): no holder, a
/// one-second duration, the transition count kept.
pub fn released_spec(current: &LeaseSpec, now: jiff::Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: current.lease_transitions,
        preferred_holder: current.preferred_holder.clone(),
        strategy: current.strategy.clone(),
    }
}

/// Whether a leader whose last successful renewal was at `last_renewed`
/// has lost leadership at `now`.
pub fn renewal_lost(last_renewed: Instant, renew_deadline: Duration, now: Instant) -> bool {
    now.saturating_duration_since(last_renewed) >= renew_deadline
}

// ------------------------------------------------------------ elector ---

/// The result of one attempt to acquire or renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease.
    Held,
    /// Someone else holds it (`None`: we lost a race for it).
    HeldBy(Option<String>),
}

/// A candidate for one Lease.
pub struct LeaderElector {
    client: Client,
    api: Api<Lease>,
    config: Config,
    /// The Lease spec last seen or written, and when it was first seen.
    observed: Option<(LeaseSpec, Instant)>,
    /// The UID of the Lease last written (for the Event).
    uid: Option<String>,
}

impl LeaderElector {
    /// A candidate; checks the settings.
    pub fn new(client: Client, config: Config) -> Result<LeaderElector, LeaderError> {
        config.validate()?;
        Ok(LeaderElector {
            api: Api::namespaced(client.clone(), &config.namespace),
            client,
            config,
            observed: None,
            uid: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn api_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            lease: self.lease_ref(),
            source,
        }
    }

    fn observe(&mut self, spec: &LeaseSpec, now: Instant) {
        match &self.observed {
            Some((seen, _)) if seen == spec => {}
            _ => self.observed = Some((spec.clone(), now)),
        }
    }

    /// One attempt (client-go's `tryAcquireOrRenew`): read the Lease, decide,
    /// and write it with the `resourceVersion` read.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaderError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_error(e))?;
        let now = Instant::now();
        let spec = current.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        if let Some(spec) = &spec {
            self.observe(spec, now);
        }
        let observed_at = self.observed.as_ref().map_or(now, |(_, at)| *at);
        let decision = decide(&self.config.identity, spec.as_ref(), observed_at, now);
        let wall = jiff::Timestamp::now();
        let desired = next_spec(
            spec.as_ref(),
            &self.config.identity,
            self.config.lease_duration_seconds(),
            wall,
        );
        let written = match (decision, current) {
            (Decision::Wait { holder, .. }, _) => return Ok(Attempt::HeldBy(Some(holder))),
            (Decision::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(desired.clone()),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Decision::Acquire | Decision::Renew, Some(mut lease)) => {
                // metadata.resourceVersion is the one read: a write in
                // between makes this a 409 Conflict.
                lease.spec = Some(desired.clone());
                lease.metadata.managed_fields = None;
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                self.uid = lease.metadata.uid;
                self.observed = Some((desired, Instant::now()));
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::HeldBy(None)),
            Err(e) => Err(self.api_error(e)),
        }
    }

    /// Tries every retry period (jittered) until this candidate holds the
    /// Lease; returns when the successful attempt started (what
    /// [`LeaderElector::hold`] counts the renew deadline from). Errors are
    /// logged and retried.
    pub async fn acquire(&mut self) -> Instant {
        let mut last_holder: Option<String> = None;
        loop {
            let started = Instant::now();
            let attempt =
                tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(Attempt::Held)) => {
                    tracing::info!(
                        lease = %self.lease_ref(),
                        identity = %self.config.identity,
                        "acquired the leader election Lease"
                    );
                    return started;
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    if holder.is_some() && holder != last_holder {
                        tracing::info!(
                            lease = %self.lease_ref(),
                            leader = holder.as_deref().unwrap_or_default(),
                            "waiting for the leader election Lease"
                        );
                        last_holder = holder;
                    }
                }
                Ok(Err(e)) => tracing::warn!("leader election: {e}"),
                Err(_) => tracing::warn!(
                    lease = %self.lease_ref(),
                    "leader election: no answer from the API server within {:?}",
                    self.config.renew_deadline
                ),
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// Renews the Lease every retry period for as long as it can; returns
    /// why leadership was lost (client-go's `renew`). Leadership ends once
    /// no renewal has succeeded for the renew deadline, counted from the
    /// *start* of the last successful attempt (`renewed_at` at first): the
    /// Lease was written after that, so the others, who wait a lease
    /// duration from when they saw that write, cannot start before this
    /// leader has stopped. A Lease found held by someone else ends
    /// leadership at once.
    pub async fn hold(&mut self, renewed_at: Instant) -> LeaderError {
        let mut last_renewed = renewed_at;
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            loop {
                let now = Instant::now();
                if renewal_lost(last_renewed, self.config.renew_deadline, now) {
                    return LeaderError::Lost(format!(
                        "Lease {} not renewed within the renew deadline of {:?}",
                        self.lease_ref(),
                        self.config.renew_deadline
                    ));
                }
                let left = self.config.renew_deadline - now.duration_since(last_renewed);
                match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                    Ok(Ok(Attempt::Held)) => {
                        last_renewed = now;
                        tracing::debug!(lease = %self.lease_ref(), "renewed the Lease");
                        break;
                    }
                    Ok(Ok(Attempt::HeldBy(Some(holder)))) => {
                        return LeaderError::Lost(format!(
                            "Lease {} is now held by {holder}",
                            self.lease_ref()
                        ));
                    }
                    // Someone wrote the Lease between our read and write
                    // (another candidate, or a person): read it again; if it
                    // names someone else now, the arm above ends leadership.
                    Ok(Ok(Attempt::HeldBy(None))) => tracing::info!(
                        lease = %self.lease_ref(),
                        "renewing the leader election Lease: it changed meanwhile; retrying"
                    ),
                    Ok(Err(e)) => tracing::warn!("renewing the leader election Lease: {e}"),
                    Err(_) => continue,
                }
                let now = Instant::now();
                let left = self
                    .config
                    .renew_deadline
                    .saturating_sub(now.duration_since(last_renewed));
                tokio::time::sleep(self.config.retry_period.min(left)).await;
            }
        }
    }

    /// Records `<identity> became leader` (reason `LeaderElection`, as
    /// client-go does) as an Event on the Lease, in the background: a failure
    /// is only logged.
    pub fn announce(&self) {
        use kube::runtime::events::{Event, EventType, Recorder, Reporter};
        let recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: "sluice".into(),
                instance: Some(self.config.identity.clone()),
            },
        );
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
            name: Some(self.config.name.clone()),
            namespace: Some(self.config.namespace.clone()),
            uid: self.uid.clone(),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: "LeaderElection".into(),
            note: Some(format!("{} became leader", self.config.identity)),
            action: "Acquire".into(),
            secondary: None,
        };
        let timeout = self.config.renew_deadline;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, recorder.publish(&event, &reference)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("recording the leader election Event: {e}"),
                Err(_) => tracing::debug!("recording the leader election Event: timed out"),
            }
        });
    }

    /// Releases the Lease if this candidate still holds it: no holder, a
    /// one-second duration, so a standby takes over at its next attempt.
    pub async fn release(&mut self) -> Result<(), LeaderError> {
        let timeout = self.config.renew_deadline;
        let lease_ref = self.lease_ref();
        let fut = async {
            let Some(mut lease) = self
                .api
                .get_opt(&self.config.name)
                .await
                .map_err(|e| self.api_error(e))?
            else {
                return Ok(());
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if holder(Some(&spec)) != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            lease.spec = Some(released_spec(&spec, jiff::Timestamp::now()));
            lease.metadata.managed_fields = None;
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
                .map_err(|e| self.api_error(e))?;
            tracing::info!(lease = %self.lease_ref(), "released the leader election Lease");
            Ok(())
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(result) => {
                self.observed = None;
                result
            }
            Err(_) => Err(LeaderError::Timeout {
                lease: lease_ref,
                timeout,
            }),
        }
    }
}

// ------------------------------------------------------- running work ---

/// Handed to the work run under [`run_as_leader`] or [`run_unelected`]:
/// tells it when to shut down and when leadership was lost.
#[derive(Debug, Clone)]
pub struct Leadership {
    shutdown: watch::Receiver<bool>,
    lost: watch::Receiver<bool>,
}

impl Leadership {
    /// Resolves once the shutdown future given to [`run_as_leader`] has
    /// (then drain and return).
    pub async fn shutdown(&self) {
        wait_true(self.shutdown.clone()).await
    }

    /// Resolves once leadership is lost; never without leader election.
    /// [`run_as_leader`] drops the work's future at that moment: this is for
    /// tasks the work spawned.
    pub async fn lost(&self) {
        wait_true(self.lost.clone()).await
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        // The sender is gone without the event: it will not happen.
        std::future::pending::<()>().await
    }
}

/// Runs `work` without leader election, forwarding `shutdown` to it.
pub async fn run_unelected<S, F, Fut, T>(shutdown: S, work: F) -> T
where
    S: Future<Output = ()>,
    F: FnOnce(Leadership) -> Fut,
    Fut: Future<Output = T>,
{
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (_lost_tx, lost_rx) = watch::channel(false);
    let fut = work(Leadership {
        shutdown: shutdown_rx,
        lost: lost_rx,
    });
    tokio::pin!(fut, shutdown);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            out = &mut fut => return out,
            () = &mut shutdown, if !shutting_down => {
                shutting_down = true;
                let _ = shutdown_tx.send(true);
            }
        }
    }
}

/// Waits for the Lease, then runs `work` while renewing it.
///
/// - `Ok(None)`: `shutdown` resolved before the Lease was acquired (nothing
///   ran);
/// - `Ok(Some(out))`: the work ended (after `shutdown`, which it is told of
///   through [`Leadership::shutdown`], or by itself); the Lease was then
///   released if [`Config::release_on_cancel`];
/// - `Err(LeaderError::Lost)`: leadership was lost; the work's future was
///   dropped at once. The caller should exit non-zero promptly so tasks the
///   work spawned end too (another candidate may take over after the lease
///   duration).
pub async fn run_as_leader<S, F, Fut, T>(
    mut elector: LeaderElector,
    shutdown: S,
    work: F,
) -> Result<Option<T>, LeaderError>
where
    S: Future<Output = ()>,
    F: FnOnce(Leadership) -> Fut,
    Fut: Future<Output = T>,
{
    tokio::pin!(shutdown);
    let acquired_at = tokio::select! {
        () = &mut shutdown => {
            tracing::info!("shutting down before acquiring the leader election Lease");
            // An attempt cut short may still have written the Lease: give it
            // back (a no-op unless this candidate is named in it).
            if elector.config.release_on_cancel
                && let Err(e) = elector.release().await
            {
                tracing::warn!("releasing the leader election Lease: {e}");
            }
            return Ok(None);
        }
        at = elector.acquire() => at,
    };
    elector.announce();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (lost_tx, lost_rx) = watch::channel(false);
    let fut = work(Leadership {
        shutdown: shutdown_rx,
        lost: lost_rx,
    });
    tokio::pin!(fut);
    let outcome = {
        let hold = elector.hold(acquired_at);
        tokio::pin!(hold);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                out = &mut fut => break Ok(out),
                lost = &mut hold => {
                    let _ = lost_tx.send(true);
                    break Err(lost);
                }
                () = &mut shutdown, if !shutting_down => {
                    shutting_down = true;
                    let _ = shutdown_tx.send(true);
                }
            }
        }
    };
    match outcome {
        Ok(out) => {
            if elector.config.release_on_cancel
                && let Err(e) = elector.release().await
            {
                tracing::warn!("releasing the leader election Lease: {e}");
            }
            Ok(Some(out))
        }
        Err(lost) => {
            tracing::error!("{lost}");
            Err(lost)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("a timestamp")
    }

    fn held(by: &str, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(secs),
            acquire_time: Some(MicroTime(ts("2026-01-01T00:00:00Z"))),
            renew_time: Some(MicroTime(ts("2026-01-01T00:00:30Z"))),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn absent_lease_is_created() {
        let t = Instant::now();
        assert_eq!(decide("me", None, t, t), Decision::Create);
    }

    #[test]
    fn released_lease_is_taken_at_once() {
        let t = Instant::now();
        let mut spec = held("other", 35);
        spec.holder_identity = Some(String::new());
        assert_eq!(decide("me", Some(&spec), t, t), Decision::Acquire);
        spec.holder_identity = None;
        assert_eq!(decide("me", Some(&spec), t, t), Decision::Acquire);
    }

    #[test]
    fn own_lease_is_renewed_even_when_expired() {
        let t = Instant::now();
        let spec = held("me", 35);
        assert_eq!(decide("me", Some(&spec), t, t), Decision::Renew);
        assert_eq!(
            decide("me", Some(&spec), t, t + Duration::from_secs(3600)),
            Decision::Renew
        );
    }

    #[test]
    fn others_lease_expires_a_lease_duration_after_it_last_changed_on_our_clock() {
        let seen = Instant::now();
        let spec = held("other", 35);
        let until = seen + Duration::from_secs(35);
        let wait = Decision::Wait {
            holder: "other".into(),
            until,
        };
        assert_eq!(decide("me", Some(&spec), seen, seen), wait);
        assert_eq!(
            decide("me", Some(&spec), seen, until - Duration::from_millis(1)),
            wait
        );
        assert_eq!(decide("me", Some(&spec), seen, until), Decision::Acquire);
        // Its renewTime (wall clock, possibly skewed) plays no part: a
        // record from long ago seen just now is still honoured.
        assert_eq!(
            decide("me", Some(&spec), seen, seen + Duration::from_secs(1)),
            Decision::Wait {
                holder: "other".into(),
                until
            }
        );
    }

    #[test]
    fn lease_without_duration_held_by_another_is_expired() {
        let t = Instant::now();
        let mut spec = held("other", 35);
        spec.lease_duration_seconds = None;
        assert_eq!(decide("me", Some(&spec), t, t), Decision::Acquire);
        spec.lease_duration_seconds = Some(-5);
        assert_eq!(decide("me", Some(&spec), t, t), Decision::Acquire);
    }

    #[test]
    fn renewal_keeps_acquire_time_and_transitions() {
        let now = ts("2026-01-01T00:01:00Z");
        let next = next_spec(Some(&held("me", 35)), "me", 15, now);
        assert_eq!(next.holder_identity.as_deref(), Some("me"));
        assert_eq!(next.lease_duration_seconds, Some(15));
        assert_eq!(
            next.acquire_time,
            Some(MicroTime(ts("2026-01-01T00:00:00Z")))
        );
        assert_eq!(next.renew_time, Some(MicroTime(now)));
        assert_eq!(next.lease_transitions, Some(3));
    }

    #[test]
    fn takeover_counts_a_transition_and_resets_acquire_time() {
        let now = ts("2026-01-01T00:02:00Z");
        let next = next_spec(Some(&held("other", 35)), "me", 35, now);
        assert_eq!(next.holder_identity.as_deref(), Some("me"));
        assert_eq!(next.acquire_time, Some(MicroTime(now)));
        assert_eq!(next.renew_time, Some(MicroTime(now)));
        assert_eq!(next.lease_transitions, Some(4));
        let released = released_spec(&held("other", 35), now);
        assert_eq!(
            next_spec(Some(&released), "me", 35, now).lease_transitions,
            Some(4)
        );
        let mut max = held("other", 35);
        max.lease_transitions = Some(i32::MAX);
        assert_eq!(
            next_spec(Some(&max), "me", 35, now).lease_transitions,
            Some(i32::MAX)
        );
    }

    #[test]
    fn a_new_lease_starts_at_zero_transitions() {
        let now = ts("2026-01-01T00:02:00Z");
        let next = next_spec(None, "me", 35, now);
        assert_eq!(next.lease_transitions, Some(0));
        assert_eq!(next.acquire_time, Some(MicroTime(now)));
    }

    #[test]
    fn release_clears_the_holder_and_shortens_the_duration() {
        let now = ts("2026-01-01T00:03:00Z");
        let released = released_spec(&held("me", 35), now);
        assert_eq!(holder(Some(&released)), None);
        assert_eq!(released.lease_duration_seconds, Some(1));
        assert_eq!(released.lease_transitions, Some(3));
        assert_eq!(released.renew_time, Some(MicroTime(now)));
    }

    #[test]
    fn renewal_is_lost_at_the_renew_deadline() {
        let t = Instant::now();
        let deadline = Duration::from_secs(30);
        assert!(!renewal_lost(t, deadline, t));
        assert!(!renewal_lost(
            t,
            deadline,
            t + Duration::from_millis(29_999)
        ));
        assert!(renewal_lost(t, deadline, t + deadline));
        // A clock that seems to go backwards is no loss.
        assert!(!renewal_lost(t + Duration::from_secs(1), deadline, t));
    }

    #[test]
    fn settings_are_checked_as_client_go_does() {
        let ok = Config::new("flux-system", DEFAULT_LEASE_NAME, "me");
        ok.validate().unwrap();
        let bad = |f: fn(&mut Config)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.renew_deadline = c.lease_duration).contains("lease duration"));
        assert!(bad(|c| c.retry_period = Duration::from_secs(25)).contains("retry period"));
        assert!(bad(|c| c.retry_period = Duration::ZERO).contains("retry period"));
        assert!(bad(|c| c.identity.clear()).contains("identity"));
        assert!(bad(|c| c.namespace.clear()).contains("namespace"));
    }

    #[test]
    fn lease_duration_is_rounded_up_to_whole_seconds() {
        let mut c = Config::new("ns", "l", "me");
        assert_eq!(c.lease_duration_seconds(), 35);
        c.lease_duration = Duration::from_millis(2500);
        assert_eq!(c.lease_duration_seconds(), 3);
        c.lease_duration = Duration::from_millis(10);
        assert_eq!(c.lease_duration_seconds(), 1);
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        let (base, suffix) = a.rsplit_once('_').unwrap();
        assert!(!base.is_empty());
        assert_eq!(suffix.len(), 16);
    }

    #[test]
    fn lease_namespace_falls_back_as_documented() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let sa = || Some("from-sa\n".to_string());
        assert_eq!(
            namespace_from(
                env(&[("POD_NAMESPACE", "p"), ("RUNTIME_NAMESPACE", "r")]),
                sa()
            ),
            "p"
        );
        assert_eq!(
            namespace_from(
                env(&[("POD_NAMESPACE", " "), ("RUNTIME_NAMESPACE", "r")]),
                sa()
            ),
            "r"
        );
        assert_eq!(namespace_from(env(&[]), sa()), "from-sa");
        assert_eq!(namespace_from(env(&[]), None), "flux-system");
    }

    #[test]
    fn jitter_stays_within_client_gos_bounds() {
        let p = Duration::from_secs(5);
        for _ in 0..100 {
            let j = jittered(p);
            assert!(j >= p && j <= p.mul_f64(1.0 + JITTER_FACTOR), "{j:?}");
        }
    }

    #[tokio::test]
    async fn unelected_work_is_told_of_the_shutdown() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let handle = tokio::spawn(run_unelected(shutdown, |leadership| async move {
            leadership.shutdown().await;
            assert!(!leadership.is_lost());
            42
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!handle.is_finished());
        tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), 42);
    }
}
