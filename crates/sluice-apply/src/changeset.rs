//! Flux's ChangeSet: what apply and prune did to each object.

use std::collections::HashSet;
use std::fmt;

use sluice_api::kustomization::ResourceInventory;
use sluice_api::meta::ObjectId;

use crate::object::ObjectRef;

/// What was done to an object (Flux's `ssa.Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The object did not exist and was created (or was recreated after an immutable field
    /// change).
    Created,
    /// The object existed and differed; it was updated.
    Configured,
    /// The object existed and matched; nothing was written.
    Unchanged,
    /// The object was deleted (or was already gone).
    Deleted,
    /// The object was left alone; see [`ChangeSetEntry::skip_reason`].
    Skipped,
    /// The outcome is unknown (the request failed).
    Unknown,
}

impl Action {
    /// The action as Flux prints it: `created`, `configured`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
            Action::Unknown => "unknown",
        }
    }

    /// Whether the cluster changed (what kustomize-controller lists in its events).
    pub fn has_changed(&self) -> bool {
        matches!(self, Action::Created | Action::Configured | Action::Deleted)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an object was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// `kustomize.toolkit.fluxcd.io/reconcile: disabled` on the rendered or the live object.
    ReconcileDisabled,
    /// `kustomize.toolkit.fluxcd.io/ssa: Ignore` on the rendered or the live object.
    SsaIgnore,
    /// `kustomize.toolkit.fluxcd.io/ssa: IfNotPresent` and the object exists. It stays in the
    /// inventory (so it is pruned when it leaves the source), but is never updated.
    IfNotPresent,
    /// Prune: `kustomize.toolkit.fluxcd.io/prune: disabled` on the live object.
    PruneDisabled,
    /// Prune: the live object's `kustomize.toolkit.fluxcd.io/name`/`namespace` labels do not
    /// name the owning Kustomization (it changed hands).
    NotOwned,
}

impl SkipReason {
    /// A short explanation.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::ReconcileDisabled => "reconcile disabled",
            SkipReason::SsaIgnore => "ssa: Ignore",
            SkipReason::IfNotPresent => "ssa: IfNotPresent, exists",
            SkipReason::PruneDisabled => "prune disabled",
            SkipReason::NotOwned => "owned by another Kustomization",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome for one object (Flux's `ChangeSetEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetEntry {
    /// The object.
    pub object: ObjectRef,
    /// What was done.
    pub action: Action,
    /// Why it was skipped, for [`Action::Skipped`].
    pub skip_reason: Option<SkipReason>,
    /// For [`Action::Configured`]: what differed between the live object and the source,
    /// as field paths (`spec.replicas`, `metadata.labels.app`, `data.key`; at most
    /// [`MAX_DRIFT_PATHS`]), or `metadata.managedFields` when fields of other managers were
    /// taken over. Helps explain objects that are configured on every run (something else
    /// keeps changing them).
    pub drift: Vec<String>,
}

/// The most drifted paths recorded per object.
pub const MAX_DRIFT_PATHS: usize = 10;

impl ChangeSetEntry {
    /// An entry.
    pub fn new(object: ObjectRef, action: Action) -> Self {
        Self {
            object,
            action,
            skip_reason: None,
            drift: Vec::new(),
        }
    }

    /// A skipped entry.
    pub fn skipped(object: ObjectRef, reason: SkipReason) -> Self {
        Self {
            object,
            action: Action::Skipped,
            skip_reason: Some(reason),
            drift: Vec::new(),
        }
    }

    /// Flux's subject, `Kind/namespace/name`.
    pub fn subject(&self) -> String {
        self.object.subject()
    }

    /// Whether the object belongs in the Kustomization's inventory after an apply: it was
    /// created, configured or unchanged, or it is an existing `IfNotPresent` object.
    pub fn in_inventory(&self) -> bool {
        matches!(
            self.action,
            Action::Created | Action::Configured | Action::Unchanged
        ) || self.skip_reason == Some(SkipReason::IfNotPresent)
    }
}

impl fmt::Display for ChangeSetEntry {
    /// `Kind/namespace/name action`, as in Flux's events.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject(), self.action)
    }
}

/// The outcome of an apply or a prune, in Flux's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// One entry per object.
    pub entries: Vec<ChangeSetEntry>,
}

impl ChangeSet {
    /// An empty change set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry.
    pub fn add(&mut self, entry: ChangeSetEntry) {
        self.entries.push(entry);
    }

    /// Appends all entries of another change set.
    pub fn append(&mut self, other: ChangeSet) {
        self.entries.extend(other.entries);
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries that changed the cluster (created, configured, deleted).
    pub fn changes(&self) -> impl Iterator<Item = &ChangeSetEntry> {
        self.entries.iter().filter(|e| e.action.has_changed())
    }

    /// Whether any entry changed the cluster.
    pub fn has_changes(&self) -> bool {
        self.changes().next().is_some()
    }

    /// The lines kustomize-controller puts in its event after an apply: one
    /// `Kind/namespace/name action` per changed object (empty when nothing changed).
    pub fn change_log(&self) -> String {
        self.changes()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The objects created, configured or left unchanged: what the caller health-checks
    /// (Flux's change set without the skipped entries).
    pub fn applied(&self) -> Vec<ObjectRef> {
        self.entries
            .iter()
            .filter(|e| {
                matches!(
                    e.action,
                    Action::Created | Action::Configured | Action::Unchanged
                )
            })
            .map(|e| e.object.clone())
            .collect()
    }

    /// The ids of skipped objects: they are neither in the new inventory nor pruned.
    pub fn skipped_ids(&self) -> HashSet<ObjectId> {
        self.entries
            .iter()
            .filter(|e| e.action == Action::Skipped)
            .map(|e| e.object.id())
            .collect()
    }

    /// The inventory of this apply: every object that is [`ChangeSetEntry::in_inventory`],
    /// in change-set order, each once.
    pub fn to_inventory(&self) -> ResourceInventory {
        let mut seen = HashSet::new();
        let entries = self
            .entries
            .iter()
            .filter(|e| e.in_inventory())
            .filter(|e| seen.insert(e.object.id()))
            .map(|e| e.object.resource_ref())
            .collect();
        ResourceInventory { entries }
    }
}

impl fmt::Display for ChangeSet {
    /// One `Kind/namespace/name action` line per entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{entry}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str) -> ObjectRef {
        ObjectRef::new("", "v1", "ConfigMap", "ns", name)
    }

    #[test]
    fn change_log_lists_only_changes() {
        let mut cs = ChangeSet::new();
        cs.add(ChangeSetEntry::new(cm("a"), Action::Created));
        cs.add(ChangeSetEntry::new(cm("b"), Action::Unchanged));
        cs.add(ChangeSetEntry::new(cm("c"), Action::Configured));
        cs.add(ChangeSetEntry::skipped(cm("d"), SkipReason::SsaIgnore));
        assert_eq!(
            cs.change_log(),
            "ConfigMap/ns/a created\nConfigMap/ns/c configured"
        );
        assert_eq!(cs.to_string().lines().count(), 4);
        assert_eq!(cs.applied().len(), 3);
        assert!(cs.has_changes());
    }

    #[test]
    fn inventory_keeps_if_not_present_but_not_ignored() {
        let mut cs = ChangeSet::new();
        cs.add(ChangeSetEntry::new(cm("a"), Action::Created));
        cs.add(ChangeSetEntry::skipped(cm("b"), SkipReason::IfNotPresent));
        cs.add(ChangeSetEntry::skipped(cm("c"), SkipReason::SsaIgnore));
        cs.add(ChangeSetEntry::skipped(
            cm("d"),
            SkipReason::ReconcileDisabled,
        ));
        let ids: Vec<String> = cs
            .to_inventory()
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["ns_a__ConfigMap", "ns_b__ConfigMap"]);
        assert_eq!(cs.skipped_ids().len(), 3);
    }
}
