//! The `dependsOn` graph, as plain data: which Kustomizations block which,
//! the chain from a blocked Kustomization down to the root cause, cycles,
//! and the reverse index that wakes dependents as soon as a dependency
//! becomes ready.
//!
//! No Kubernetes client here: the controller describes each node with a
//! [`NodeState`] (its dependencies and whether it is ready, by Flux's rules)
//! and asks [`check`] what stands in the way.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// A Kustomization, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the graph needs to know about one Kustomization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// `spec.dependsOn`, namespaces resolved.
    pub deps: Vec<Key>,
    /// Ready by Flux's rules (Ready=True, observedGeneration current, and the
    /// source's current revision applied when it shares the dependent's
    /// source); `Err` holds why not.
    pub ready: Result<(), String>,
}

/// The outcome of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepCheck {
    /// All dependencies are ready.
    Ready,
    /// `chain` runs from the checked Kustomization to the one that does not
    /// exist (the last element).
    NotFound { chain: Vec<Key> },
    /// `chain` runs from the checked Kustomization to the deepest one that is
    /// not ready although its own dependencies are (the last element).
    NotReady { chain: Vec<Key>, reason: String },
    /// A cycle reachable from the checked Kustomization; first == last.
    Cycle { cycle: Vec<Key> },
}

impl DepCheck {
    pub fn is_ready(&self) -> bool {
        matches!(self, DepCheck::Ready)
    }

    /// The message for the blocked Kustomization's Ready condition, e.g.
    /// `apps → core → prometheus-crds: Kustomization flux-system/prometheus-crds not found`.
    /// Names are shown without namespace when in the first node's namespace.
    pub fn message(&self) -> String {
        match self {
            DepCheck::Ready => "dependencies ready".to_string(),
            DepCheck::NotFound { chain } => {
                let last = chain.last().map(ToString::to_string).unwrap_or_default();
                format!("{}: Kustomization {last} not found", render(chain))
            }
            DepCheck::NotReady { chain, reason } => {
                let last = chain.last().map(ToString::to_string).unwrap_or_default();
                if reason.is_empty() {
                    format!("{}: dependency '{last}' is not ready", render(chain))
                } else {
                    format!(
                        "{}: dependency '{last}' is not ready: {reason}",
                        render(chain)
                    )
                }
            }
            DepCheck::Cycle { cycle } => format!("dependency cycle: {}", render(cycle)),
        }
    }
}

fn render(chain: &[Key]) -> String {
    let home = chain.first().map(|k| k.namespace.as_str()).unwrap_or("");
    chain
        .iter()
        .map(|k| {
            if k.namespace == home {
                k.name.clone()
            } else {
                k.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Decides whether `root` may proceed. `lookup` returns the state of a
/// Kustomization, `None` when it does not exist. Cycles reachable from
/// `root` are reported first (they can never resolve); then the first
/// dependency (in `dependsOn` order) that is missing or not ready, followed
/// down to the root cause.
pub fn check(root: &Key, lookup: impl Fn(&Key) -> Option<NodeState>) -> DepCheck {
    let Some(state) = lookup(root) else {
        return DepCheck::NotFound {
            chain: vec![root.clone()],
        };
    };
    if let Some(cycle) = find_cycle(root, &lookup) {
        return DepCheck::Cycle { cycle };
    }
    let mut path = vec![root.clone()];
    blocked(&state, &mut path, &lookup).unwrap_or(DepCheck::Ready)
}

fn blocked(
    state: &NodeState,
    path: &mut Vec<Key>,
    lookup: &impl Fn(&Key) -> Option<NodeState>,
) -> Option<DepCheck> {
    for dep in &state.deps {
        if path.contains(dep) {
            // Guarded by find_cycle; stay finite regardless.
            continue;
        }
        let Some(ds) = lookup(dep) else {
            let mut chain = path.clone();
            chain.push(dep.clone());
            return Some(DepCheck::NotFound { chain });
        };
        if let Err(reason) = &ds.ready {
            path.push(dep.clone());
            let deeper = blocked(&ds, path, lookup);
            let result = deeper.unwrap_or_else(|| DepCheck::NotReady {
                chain: path.clone(),
                reason: reason.clone(),
            });
            path.pop();
            return Some(result);
        }
    }
    None
}

/// A cycle reachable from `root`, as a path whose first and last elements
/// are the same node.
pub fn find_cycle(root: &Key, lookup: &impl Fn(&Key) -> Option<NodeState>) -> Option<Vec<Key>> {
    // Iterative DFS with colours; `stack` holds the current path.
    let mut done: BTreeSet<Key> = BTreeSet::new();
    let mut stack: Vec<(Key, Vec<Key>, usize)> = Vec::new();
    let deps_of = |k: &Key| lookup(k).map(|s| s.deps).unwrap_or_default();
    stack.push((root.clone(), deps_of(root), 0));
    while let Some((node, deps, i)) = stack.last_mut() {
        if *i >= deps.len() {
            done.insert(node.clone());
            stack.pop();
            continue;
        }
        let next = deps[*i].clone();
        *i += 1;
        if let Some(pos) = stack.iter().position(|(k, _, _)| *k == next) {
            let mut cycle: Vec<Key> = stack[pos..].iter().map(|(k, _, _)| k.clone()).collect();
            cycle.push(next);
            return Some(cycle);
        }
        if done.contains(&next) {
            continue;
        }
        let nd = deps_of(&next);
        stack.push((next, nd, 0));
    }
    None
}

/// Dependency → dependents, kept up to date from the Kustomizations the
/// controller sees, so a Kustomization that turns ready wakes exactly the
/// ones waiting for it.
#[derive(Debug, Default)]
pub struct ReverseIndex {
    deps: HashMap<Key, Vec<Key>>,
    dependents: HashMap<Key, BTreeSet<Key>>,
}

impl ReverseIndex {
    /// Records `node`'s dependencies, replacing what was known. Returns
    /// whether anything changed.
    pub fn set(&mut self, node: &Key, deps: Vec<Key>) -> bool {
        if self.deps.get(node) == Some(&deps) {
            return false;
        }
        self.remove(node);
        for d in &deps {
            self.dependents
                .entry(d.clone())
                .or_default()
                .insert(node.clone());
        }
        if !deps.is_empty() {
            self.deps.insert(node.clone(), deps);
        }
        true
    }

    /// Forgets `node` as a dependent.
    pub fn remove(&mut self, node: &Key) {
        if let Some(old) = self.deps.remove(node) {
            for d in old {
                if let Some(set) = self.dependents.get_mut(&d) {
                    set.remove(node);
                    if set.is_empty() {
                        self.dependents.remove(&d);
                    }
                }
            }
        }
    }

    /// The Kustomizations that depend directly on `node`.
    pub fn dependents(&self, node: &Key) -> Vec<Key> {
        self.dependents
            .get(node)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of Kustomizations with dependencies.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Key {
        Key::new("flux-system", name)
    }

    fn graph(nodes: &[(&str, &[&str], bool)]) -> HashMap<Key, NodeState> {
        nodes
            .iter()
            .map(|(n, deps, ready)| {
                (
                    k(n),
                    NodeState {
                        deps: deps.iter().map(|d| k(d)).collect(),
                        ready: if *ready {
                            Ok(())
                        } else {
                            Err(format!("{n} reconciling"))
                        },
                    },
                )
            })
            .collect()
    }

    #[test]
    fn ready_when_all_dependencies_ready() {
        let g = graph(&[("apps", &["core"], false), ("core", &[], true)]);
        assert_eq!(check(&k("apps"), |x| g.get(x).cloned()), DepCheck::Ready);
        let g = graph(&[("apps", &[], false)]);
        assert!(check(&k("apps"), |x| g.get(x).cloned()).is_ready());
    }

    #[test]
    fn missing_dependency_names_the_whole_chain() {
        let g = graph(&[
            ("apps", &["core"], false),
            ("core", &["prometheus-crds"], false),
        ]);
        let r = check(&k("apps"), |x| g.get(x).cloned());
        assert_eq!(
            r.message(),
            "apps → core → prometheus-crds: Kustomization flux-system/prometheus-crds not found"
        );
    }

    #[test]
    fn not_ready_reports_deepest_blocker() {
        let g = graph(&[
            ("apps", &["infra", "core"], false),
            ("infra", &[], true),
            ("core", &["crds"], false),
            ("crds", &[], false),
        ]);
        let r = check(&k("apps"), |x| g.get(x).cloned());
        assert_eq!(
            r,
            DepCheck::NotReady {
                chain: vec![k("apps"), k("core"), k("crds")],
                reason: "crds reconciling".into()
            }
        );
        assert_eq!(
            r.message(),
            "apps → core → crds: dependency 'flux-system/crds' is not ready: crds reconciling"
        );
    }

    #[test]
    fn not_ready_with_ready_deps_blames_itself() {
        let g = graph(&[
            ("apps", &["core"], false),
            ("core", &["crds"], false),
            ("crds", &[], true),
        ]);
        let r = check(&k("apps"), |x| g.get(x).cloned());
        assert_eq!(
            r,
            DepCheck::NotReady {
                chain: vec![k("apps"), k("core")],
                reason: "core reconciling".into()
            }
        );
    }

    #[test]
    fn cycles_are_named() {
        let g = graph(&[
            ("apps", &["a"], false),
            ("a", &["b"], true),
            ("b", &["a"], true),
        ]);
        let r = check(&k("apps"), |x| g.get(x).cloned());
        assert_eq!(r.message(), "dependency cycle: a → b → a");
        let g = graph(&[("self", &["self"], false)]);
        assert_eq!(
            check(&k("self"), |x| g.get(x).cloned()).message(),
            "dependency cycle: self → self"
        );
    }

    #[test]
    fn diamond_is_not_a_cycle() {
        let g = graph(&[
            ("top", &["l", "r"], false),
            ("l", &["base"], true),
            ("r", &["base"], true),
            ("base", &[], true),
        ]);
        assert!(check(&k("top"), |x| g.get(x).cloned()).is_ready());
    }

    #[test]
    fn other_namespaces_are_qualified() {
        let mut g = graph(&[("apps", &[], false)]);
        g.get_mut(&k("apps"))
            .unwrap()
            .deps
            .push(Key::new("infra", "db"));
        assert_eq!(
            check(&k("apps"), |x| g.get(x).cloned()).message(),
            "apps → infra/db: Kustomization infra/db not found"
        );
    }

    #[test]
    fn reverse_index_tracks_dependents() {
        let mut idx = ReverseIndex::default();
        assert!(idx.set(&k("apps"), vec![k("core")]));
        assert!(!idx.set(&k("apps"), vec![k("core")]));
        idx.set(&k("web"), vec![k("core"), k("db")]);
        assert_eq!(idx.dependents(&k("core")), vec![k("apps"), k("web")]);
        assert_eq!(idx.dependents(&k("db")), vec![k("web")]);
        idx.set(&k("web"), vec![k("db")]);
        assert_eq!(idx.dependents(&k("core")), vec![k("apps")]);
        idx.remove(&k("apps"));
        assert!(idx.dependents(&k("core")).is_empty());
        assert_eq!(idx.len(), 1);
    }
}
