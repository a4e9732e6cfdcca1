//! When an object is reconciled next.
//!
//! A controller is woken by many things (its own status writes, the watch
//! of a source, a resync); [`Schedules`] remembers, per object, what the
//! last run saw (its fingerprint: generation, `requestedAt`, source
//! revision…) and when it is due again, so a wake-up with nothing new is
//! answered with the time left instead of a run. A new fingerprint (a spec
//! change, `flux reconcile`, a new revision) always runs at once.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::{Resource, ResourceExt};
use sluice_api::meta;

/// `(namespace, name)`.
pub type ObjectKey = (String, String);

/// The key of `obj`.
pub fn key_of<K: Resource>(obj: &K) -> ObjectKey {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What the last run of one object saw and decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub fingerprint: String,
    pub next: Option<Instant>,
    /// Failures in a row (for exponential retry).
    pub failures: u32,
    /// Run at every wake-up, whatever the fingerprint (an object waiting
    /// for something outside it: a dependency, a health check).
    pub eager: bool,
}

/// Per-object schedules of one controller.
#[derive(Debug, Default)]
pub struct Schedules {
    map: Mutex<HashMap<ObjectKey, Due>>,
}

impl Schedules {
    /// The time left before `key` is due, when a run now would see nothing
    /// new (`None`: run now).
    pub fn wait(&self, key: &ObjectKey, fingerprint: &str, now: Instant) -> Option<Duration> {
        let due = self.get(key)?;
        if due.eager || due.fingerprint != fingerprint {
            return None;
        }
        let next = due.next?;
        (next > now).then(|| next - now)
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Due> {
        self.map.lock().ok().and_then(|m| m.get(key).cloned())
    }

    /// Records a run's decision.
    pub fn set(&self, key: ObjectKey, due: Due) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(key, due);
        }
    }

    pub fn remove(&self, key: &ObjectKey) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(key);
        }
    }
}

/// The fingerprint of what a run depends on besides `extra`: the object's
/// generation and its `reconcile.fluxcd.io/requestedAt` token.
pub fn fingerprint<K: Resource>(obj: &K, extra: &[&str]) -> String {
    let mut s = format!(
        "{:?}|{}",
        obj.meta().generation,
        meta::reconcile_request(Some(obj.annotations())).unwrap_or("")
    );
    for e in extra {
        s.push('|');
        s.push_str(e);
    }
    s
}

/// `interval` moved by up to `fraction` either way (Flux's
/// `--interval-jitter-percentage`), so objects created together do not
/// stay in step.
pub fn jittered(interval: Duration, fraction: f64) -> Duration {
    let fraction = fraction.clamp(0.0, 0.5);
    if fraction == 0.0 {
        return interval;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    // Uniform in [-1, 1).
    let r = (h.finish() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    interval.mul_f64((1.0 + r * fraction).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ("ns".into(), "a".into())
    }

    #[test]
    fn a_wake_up_with_nothing_new_waits_for_the_time_left() {
        let s = Schedules::default();
        let now = Instant::now();
        assert_eq!(s.wait(&key(), "f1", now), None, "never run: run now");
        s.set(
            key(),
            Due {
                fingerprint: "f1".into(),
                next: Some(now + Duration::from_secs(60)),
                ..Due::default()
            },
        );
        assert_eq!(s.wait(&key(), "f1", now), Some(Duration::from_secs(60)));
        assert_eq!(s.wait(&key(), "f2", now), None, "something new: run now");
        assert_eq!(s.wait(&key(), "f1", now + Duration::from_secs(61)), None);
        s.set(
            key(),
            Due {
                fingerprint: "f1".into(),
                next: Some(now + Duration::from_secs(60)),
                eager: true,
                ..Due::default()
            },
        );
        assert_eq!(s.wait(&key(), "f1", now), None, "eager objects always run");
        s.remove(&key());
        assert_eq!(s.get(&key()), None);
    }

    #[test]
    fn jitter_stays_within_the_fraction() {
        let i = Duration::from_secs(100);
        assert_eq!(jittered(i, 0.0), i);
        let samples: Vec<_> = (0..200).map(|_| jittered(i, 0.1)).collect();
        assert!(
            samples
                .iter()
                .all(|d| *d >= Duration::from_secs(90) && *d <= Duration::from_secs(110))
        );
        assert!(samples.iter().any(|d| *d != samples[0]), "not constant");
    }
}

/// The backoff of a controller's trigger watches (its own kind and the
/// kinds it watches for changes: sources, dependencies).
///
/// kube-runtime pauses *all* of a controller's trigger watches together
/// when any one of them fails, by its default backoff: up to 30 s a pause,
/// growing while failures keep coming within two minutes. After an API
/// server restart, every watch of the controller fails a few times while it
/// reconnects, so the pauses grow with the number of watched kinds, and a
/// new source revision can wait a minute or more to be noticed (seen with
/// a Kustomization controller watching GitRepositories and OCIRepositories).
/// This backoff starts at 100 ms and never pauses the watches for more than
/// 2 s; any event received starts it over.
#[derive(Clone, Debug)]
pub struct TriggerBackoff {
    next: Duration,
}

impl TriggerBackoff {
    /// The first pause.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(2);
}

impl Default for TriggerBackoff {
    fn default() -> Self {
        TriggerBackoff { next: Self::FIRST }
    }
}

impl Iterator for TriggerBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for TriggerBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod trigger_backoff_tests {
    use super::*;

    #[test]
    fn trigger_pauses_double_up_to_two_seconds_and_start_over_on_reset() {
        use kube::runtime::utils::Backoff;
        let mut b = TriggerBackoff::default();
        let first: Vec<u128> = (0..7).map(|_| b.next().unwrap().as_millis()).collect();
        assert_eq!(first, [100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(100)));
    }
}
