//! `/readyz`: ready only once every controller's watches have listed what
//! they watch (a controller opens its gate then), and not ready again from
//! the moment the process starts shutting down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The process's readiness: one gate per controller.
#[derive(Clone, Default)]
pub struct Readiness {
    gates: Arc<Mutex<BTreeMap<String, bool>>>,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    /// A new closed gate named `name` (a controller, a watch).
    pub fn gate(&self, name: &str) -> Gate {
        if let Ok(mut g) = self.gates.lock() {
            g.insert(name.to_string(), false);
        }
        Gate {
            name: name.to_string(),
            owner: self.clone(),
        }
    }

    /// Every gate is open and the process is not stopping.
    pub fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::SeqCst) && self.pending().is_empty()
    }

    /// The gates still closed.
    pub fn pending(&self) -> Vec<String> {
        self.gates
            .lock()
            .map(|g| {
                g.iter()
                    .filter(|(_, open)| !**open)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The process is shutting down: not ready any more.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// One controller's part of [`Readiness`].
#[derive(Clone)]
pub struct Gate {
    name: String,
    owner: Readiness,
}

impl Gate {
    /// This controller's caches are complete.
    pub fn open(&self) {
        if let Ok(mut g) = self.owner.gates.lock() {
            g.insert(self.name.clone(), true);
        }
    }
}

/// Opens `gate` once `api` answers a list of what the controller watches
/// (in its scope, with its selector): the kind is served, the controller may
/// read it, and its watch can sync. Retries every second until then.
///
/// kube-runtime's `Store::wait_until_ready` is not used for this: it wakes
/// only the last of several concurrent waiters, and the `Controller` itself
/// waits on its store before it starts reconciling, so a second waiter
/// could leave the controller asleep for good.
pub fn open_when_listable<K>(
    gate: Gate,
    api: kube::Api<K>,
    label_selector: Option<String>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut params = kube::api::ListParams::default().limit(1);
        if let Some(sel) = label_selector.as_deref().filter(|s| !s.trim().is_empty()) {
            params = params.labels(sel);
        }
        loop {
            match api.list_metadata(&params).await {
                Ok(_) => {
                    gate.open();
                    return;
                }
                Err(e) => tracing::debug!(gate = %gate.name, "not ready yet: {e}"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_gate_is_open_and_not_after_stop() {
        let r = Readiness::default();
        assert!(r.is_ready(), "no controller: nothing to wait for");
        let a = r.gate("source");
        let b = r.gate("kustomization");
        assert!(!r.is_ready());
        a.open();
        assert_eq!(r.pending(), ["kustomization"]);
        b.open();
        assert!(r.is_ready());
        r.stop();
        assert!(!r.is_ready());
    }
}
