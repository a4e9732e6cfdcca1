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
