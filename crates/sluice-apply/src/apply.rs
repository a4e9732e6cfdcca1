//! Staged server-side apply (Flux's `ResourceManager.ApplyAllStaged`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::{Client, Config};
use serde_json::{Map, Value};
use sluice_api::kustomization::{
    DISABLED_VALUE, ENABLED_VALUE, FIELD_MANAGER, FORCE_ANNOTATION, RECONCILE_ANNOTATION,
    ResourceInventory, SSA_ANNOTATION, SSA_IF_NOT_PRESENT_VALUE, SSA_IGNORE_VALUE, SSA_MERGE_VALUE,
};
use tokio::time::Instant;

use crate::changeset::{Action, ChangeSet, ChangeSetEntry, MAX_DRIFT_PATHS, SkipReason};
use crate::client::{Counters, DiscoveryCache, Kube, RequestCounts, Resolution, Resource};
use crate::error::{ApiFailure, ApplyError, ObjectError, ObjectErrorKind};
use crate::ignore::IgnoreRule;
use crate::inventory::{self, InventoryError};
use crate::normalize::{
    cleanup_managers, cleanup_patch, drift_paths, has_drifted, is_immutable_message,
};
use crate::object::{ObjectRef, Stage, flux_order, has_metadata, read_ref};

/// The Flux object that owns the applied objects: a Kustomization, or a HelmRelease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The owner's name.
    pub name: String,
    /// The owner's namespace.
    pub namespace: String,
    /// The API group whose `<group>/name` and `<group>/namespace` labels name the owner.
    pub group: &'static str,
}

impl Owner {
    /// A Kustomization as owner.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            group: sluice_api::kustomization::GROUP,
        }
    }

    /// A HelmRelease as owner (labels `helm.toolkit.fluxcd.io/name` and `/namespace`, as
    /// helm-controller's post-renderer sets them).
    pub fn helm_release(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            group: sluice_api::helm_release::GROUP,
        }
    }

    fn name_label(&self) -> String {
        format!("{}/name", self.group)
    }

    fn namespace_label(&self) -> String {
        format!("{}/namespace", self.group)
    }

    /// The labels every applied object gets: `<group>/name` and `<group>/namespace`
    /// (`kustomize.toolkit.fluxcd.io/name`, ... for a Kustomization).
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (self.name_label(), self.name.clone()),
            (self.namespace_label(), self.namespace.clone()),
        ])
    }

    /// Whether a live object carries both labels with this owner's values.
    pub fn owns(&self, live: &Value) -> bool {
        let labels = crate::object::meta_map(live, "labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        get(&self.name_label()) == Some(self.name.as_str())
            && get(&self.namespace_label()) == Some(self.namespace.as_str())
    }
}

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The owning Kustomization (its labels go on every object).
    pub owner: Owner,
    /// Recreate objects whose immutable fields changed (`spec.force`). Without it, only
    /// objects annotated `kustomize.toolkit.fluxcd.io/force: Enabled` are recreated.
    pub force: bool,
    /// How many objects of one stage are worked on at once.
    pub concurrency: usize,
    /// How long to wait for CRDs to be Established and Namespaces Active, for objects deleted
    /// for recreation to go away, and for the kinds of new CRDs to be served.
    pub wait_timeout: Duration,
    /// How often to poll while waiting.
    pub wait_interval: Duration,
    /// Field managers whose fields are taken over (both `Apply` and `Update` operations), in
    /// addition to Flux's `kubectl`, `before-first-apply` and our own `Update` entries
    /// (kustomize-controller's `--override-manager`).
    pub disallowed_field_managers: Vec<String>,
    /// Labels put on every object after the owner labels (`spec.commonMetadata.labels`).
    pub common_labels: BTreeMap<String, String>,
    /// Annotations put on every object (`spec.commonMetadata.annotations`).
    pub common_annotations: BTreeMap<String, String>,
    /// Drift ignore rules (`spec.ignore`): paths left out of the comparison and of the
    /// applied object, for objects that already exist (see [`IgnoreRule`]).
    pub ignore: Vec<IgnoreRule>,
    /// Where the apply records each object as it goes, so a caller that gives up on the
    /// apply (a timeout drops its future) still knows what it may have created.
    pub progress: Option<ApplyProgress>,
}

/// The objects an apply has written or was about to write, recorded as it runs and readable
/// while it runs or after it was dropped (see [`ApplyOptions::progress`]).
///
/// An object is recorded just before its write request is sent, so one whose request was
/// under way when the apply was abandoned is in the record too: it may exist now. Putting
/// such an object in an inventory is harmless (prune counts an object that does not exist as
/// deleted, and never deletes one whose labels name another owner); leaving out one that was
/// created would orphan it. Objects found unchanged are recorded as well.
#[derive(Clone, Debug, Default)]
pub struct ApplyProgress {
    objects: Arc<Mutex<Vec<ObjectRef>>>,
}

impl ApplyProgress {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, object: &ObjectRef) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.push(object.clone());
        }
    }

    /// The objects recorded so far.
    pub fn objects(&self) -> Vec<ObjectRef> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The objects recorded so far, as inventory entries.
    pub fn inventory(&self) -> ResourceInventory {
        inventory::from_objects(&self.objects())
    }
}

impl ApplyOptions {
    /// Defaults for the given owner: no force, 8 objects at once, 60s waits polled every
    /// 500ms.
    pub fn new(owner: Owner) -> Self {
        Self {
            owner,
            force: false,
            concurrency: 8,
            wait_timeout: Duration::from_secs(60),
            wait_interval: Duration::from_millis(500),
            disallowed_field_managers: Vec::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            ignore: Vec::new(),
            progress: None,
        }
    }
}

/// The outcome of a successful apply.
#[derive(Clone, Debug)]
pub struct ApplyResult {
    /// One entry per object, stage by stage, in Flux's order.
    pub change_set: ChangeSet,
    /// The requests made.
    pub requests: RequestCounts,
    /// Group, kind and name of the cluster-scoped objects of this apply.
    cluster_scoped: HashSet<(String, String, String)>,
}

impl ApplyResult {
    /// The new inventory (objects created, configured, unchanged, and existing `IfNotPresent`
    /// ones).
    pub fn inventory(&self) -> ResourceInventory {
        self.change_set.to_inventory()
    }

    /// The objects applied (created, configured or unchanged), for health checks.
    pub fn applied(&self) -> Vec<ObjectRef> {
        self.change_set.applied()
    }

    /// The objects of `old` that this apply no longer has: what prune deletes. Objects
    /// skipped by this apply are left out, and so are cluster-scoped objects this apply has
    /// under another namespace (a cluster-scoped object rendered with a namespace keeps it in
    /// its id, as in Flux; a change of that namespace must not delete the object just applied).
    pub fn stale(&self, old: &ResourceInventory) -> Result<Vec<ObjectRef>, InventoryError> {
        let mut stale = inventory::stale(old, &self.inventory(), &self.change_set.skipped_ids())?;
        stale.retain(|o| {
            !self
                .cluster_scoped
                .contains(&(o.group.clone(), o.kind.clone(), o.name.clone()))
        });
        Ok(stale)
    }
}

/// Applies rendered objects to a cluster, as Flux's kustomize-controller does.
///
/// Cheap to clone; clones share the discovery cache.
#[derive(Clone)]
pub struct Applier {
    pub(crate) kube: Kube,
}

impl Applier {
    /// An applier acting with the client's own identity, under the field manager
    /// `kustomize-controller`.
    pub fn new(client: Client) -> Self {
        Self {
            kube: Kube {
                client,
                counters: Arc::new(Counters::default()),
                discovery: Arc::new(DiscoveryCache::default()),
                service_account: None,
                field_manager: FIELD_MANAGER.to_owned(),
                cluster: None,
            },
        }
    }

    /// An applier that impersonates the service account `namespace/name`
    /// (`system:serviceaccount:<namespace>:<name>`), so RBAC limits what it can touch, as
    /// Flux does for `spec.serviceAccountName`. `config` is the controller's own.
    pub fn impersonating(
        config: &Config,
        namespace: &str,
        name: &str,
    ) -> Result<Self, kube::Error> {
        let client = crate::client::impersonating_client(config, namespace, name)?;
        let mut applier = Self::new(client);
        applier.kube.service_account = Some(format!("{namespace}/{name}"));
        Ok(applier)
    }

    /// An applier for another cluster (`spec.kubeConfig`), with its own discovery cache,
    /// impersonating the service account `(namespace, name)` there if given.
    /// Failures to reach it name its server.
    pub fn remote(config: Config, account: Option<(&str, &str)>) -> Result<Self, kube::Error> {
        let server = config.cluster_url.to_string();
        let mut applier = match account {
            Some((namespace, name)) => Self::impersonating(&config, namespace, name)?,
            None => Self::new(Client::try_from(config)?),
        };
        applier.kube.cluster = Some(server);
        Ok(applier)
    }

    /// Like [`Applier::impersonating`], sharing this applier's discovery cache and field
    /// manager (what the API server serves does not depend on who asks).
    pub fn impersonate(
        &self,
        config: &Config,
        namespace: &str,
        name: &str,
    ) -> Result<Self, kube::Error> {
        let mut applier = Self::impersonating(config, namespace, name)?;
        applier.kube.discovery = self.kube.discovery.clone();
        applier.kube.field_manager = self.kube.field_manager.clone();
        Ok(applier)
    }

    /// Uses another field manager than `kustomize-controller`.
    pub fn with_field_manager(mut self, field_manager: impl Into<String>) -> Self {
        self.kube.field_manager = field_manager.into();
        self
    }

    /// The impersonated service account (`namespace/name`), if any.
    pub fn service_account(&self) -> Option<&str> {
        self.kube.service_account.as_deref()
    }

    /// The client this applier acts with (impersonating its service account, if any): for
    /// reads done on the same identity's behalf, such as health checks.
    pub fn client(&self) -> &Client {
        &self.kube.client
    }

    /// The field manager.
    pub fn field_manager(&self) -> &str {
        &self.kube.field_manager
    }

    /// Where objects of this kind live: the API resource (with its plural) and whether it is
    /// namespaced, from the discovery cache. For callers that read applied objects back
    /// (health checks).
    pub async fn resolve(
        &self,
        object: &ObjectRef,
    ) -> Result<(kube::core::ApiResource, kube::core::discovery::Scope), ObjectError> {
        let err = |kind| ObjectError::new(object, kind);
        match self.kube.resolve(object).await.map_err(err)? {
            Resolution::Found(res) => Ok((
                kube::core::ApiResource {
                    group: res.group.clone(),
                    version: res.version.clone(),
                    api_version: object.api_version(),
                    kind: res.kind.clone(),
                    plural: res.plural.clone(),
                },
                if res.namespaced {
                    kube::core::discovery::Scope::Namespaced
                } else {
                    kube::core::discovery::Scope::Cluster
                },
            )),
            Resolution::NoMatch => Err(err(ObjectErrorKind::NoMatch {
                kind: object.kind.clone(),
                api_version: object.api_version(),
            })),
        }
    }

    /// Reads an object as this applier sees it (`None` if it does not exist).
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ObjectError> {
        let err = |kind| ObjectError::new(object, kind);
        let res = match self.kube.resolve(object).await.map_err(err)? {
            Resolution::Found(res) => res,
            Resolution::NoMatch => return Ok(None),
        };
        self.kube
            .get(&res, &object.namespace, &object.name)
            .await
            .map_err(|f| err(ObjectErrorKind::Get(f)))
    }

    /// A view of this applier with fresh request counters.
    pub(crate) fn per_call(&self) -> Kube {
        Kube {
            counters: Arc::new(Counters::default()),
            ..self.kube.clone()
        }
    }

    /// Applies `objects` in stages: CRDs, Namespaces and ClusterRoles first (then waits for
    /// CRDs to be Established and Namespaces Active), then `*Class` kinds, then the rest.
    ///
    /// Each object is first applied as a server-side dry-run and compared with the live
    /// object; only objects that are new or drifted are written. Every object gets the
    /// owner's labels. A stage in which any object fails its checks (discovery, GET,
    /// dry-run) writes nothing, not even the recreations and metadata cleanups other objects
    /// need; later stages are not run. The error holds what was applied so far.
    pub async fn apply(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
    ) -> Result<ApplyResult, ApplyError> {
        self.run(objects, opts, Mode::Apply).await
    }

    /// What [`Applier::apply`] would do, without writing anything (`flux diff kustomization`):
    /// the change set says which objects would be created, configured (with their
    /// [`ChangeSetEntry::drift`]) or left unchanged. Objects whose CRD or Namespace would be
    /// created by the same set cannot be dry-run and are reported `created`; objects that
    /// would be recreated for an immutable field change (with force) are reported `created`.
    /// `requests.writes` is always zero.
    pub async fn diff(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
    ) -> Result<ApplyResult, ApplyError> {
        self.run(objects, opts, Mode::Diff).await
    }

    async fn run(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
        mode: Mode,
    ) -> Result<ApplyResult, ApplyError> {
        let kube = self.per_call();
        let mut change_set = ChangeSet::new();
        let mut cluster_scoped = HashSet::new();
        let fail = |stage, errors, change_set: ChangeSet, kube: &Kube| ApplyError {
            stage: Some(stage),
            errors,
            change_set,
            requests: kube.counters.snapshot(),
        };

        let mut desired = Vec::with_capacity(objects.len());
        let mut errors = Vec::new();
        for (index, value) in flatten(objects).into_iter().enumerate() {
            match prepare(index, value, opts) {
                Ok(d) => desired.push(d),
                Err(e) => errors.push(e),
            }
        }
        let mut seen = HashSet::new();
        for d in &desired {
            if !seen.insert(d.object.id()) {
                errors.push(ObjectError::new(&d.object, ObjectErrorKind::Duplicate));
            }
        }
        if !errors.is_empty() {
            return Err(ApplyError {
                stage: None,
                ..fail(Stage::ClusterDefinitions, errors, change_set, &kube)
            });
        }

        // Kinds defined by CRDs in this set: their discovery may lag behind the CRD.
        let crd_kinds: HashSet<(String, String)> = desired
            .iter()
            .filter(|d| d.object.is_crd())
            .filter_map(|d| {
                let group = d.obj.pointer("/spec/group")?.as_str()?;
                let kind = d.obj.pointer("/spec/names/kind")?.as_str()?;
                Some((group.to_owned(), kind.to_owned()))
            })
            .collect();

        let mut by_stage: BTreeMap<Stage, Vec<Desired>> = BTreeMap::new();
        for d in desired {
            by_stage.entry(d.object.stage()).or_default().push(d);
        }
        let mut new_namespaces = HashSet::new();
        for (stage, mut items) in by_stage {
            items.sort_by(|a, b| flux_order(&a.object, &b.object));
            let outcome = self
                .apply_stage(&kube, items, opts, &crd_kinds, mode, &new_namespaces)
                .await;
            change_set.append(outcome.change_set.clone());
            new_namespaces.extend(
                outcome
                    .change_set
                    .entries
                    .iter()
                    .filter(|e| e.object.is_namespace() && e.action == Action::Created)
                    .map(|e| e.object.name.clone()),
            );
            cluster_scoped.extend(outcome.cluster_scoped);
            if !outcome.errors.is_empty() {
                return Err(fail(stage, outcome.errors, change_set, &kube));
            }
            for group in outcome.crd_groups {
                kube.discovery.invalidate_group(&group);
            }
            if stage == Stage::ClusterDefinitions && mode == Mode::Apply {
                let errors = wait_ready(&kube, &outcome.change_set, opts).await;
                if !errors.is_empty() {
                    return Err(fail(stage, errors, change_set, &kube));
                }
            }
        }
        Ok(ApplyResult {
            change_set,
            requests: kube.counters.snapshot(),
            cluster_scoped,
        })
    }

    /// [`Applier::apply`] for objects held as [`kube::api::DynamicObject`]s.
    pub async fn apply_dynamic(
        &self,
        objects: Vec<kube::api::DynamicObject>,
        opts: &ApplyOptions,
    ) -> Result<ApplyResult, ApplyError> {
        let mut values = Vec::with_capacity(objects.len());
        let mut errors = Vec::new();
        for (index, object) in objects.into_iter().enumerate() {
            match serde_json::to_value(&object) {
                Ok(v) => values.push(v),
                Err(e) => errors.push(ObjectError {
                    subject: format!(
                        "{}/{} (object #{index})",
                        object.types.as_ref().map_or("?", |t| t.kind.as_str()),
                        object.metadata.name.as_deref().unwrap_or("?")
                    ),
                    object: None,
                    kind: ObjectErrorKind::Invalid(e.to_string()),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(ApplyError {
                stage: None,
                errors,
                change_set: ChangeSet::new(),
                requests: RequestCounts::default(),
            });
        }
        self.apply(values, opts).await
    }

    /// One stage: resolve kinds, plan every object (GET, dry-run, cleanup, drift), then write
    /// the drifted ones.
    async fn apply_stage(
        &self,
        kube: &Kube,
        items: Vec<Desired>,
        opts: &ApplyOptions,
        crd_kinds: &HashSet<(String, String)>,
        mode: Mode,
        new_namespaces: &HashSet<String>,
    ) -> StageOutcome {
        let mut change_set = ChangeSet::new();
        let mut errors = Vec::new();
        let mut cluster_scoped = Vec::new();

        // Resolve each kind once.
        let mut kinds: HashMap<(String, String), Result<Resource, ObjectErrorKind>> =
            HashMap::new();
        for d in &items {
            let key = (d.object.api_version(), d.object.kind.clone());
            if let std::collections::hash_map::Entry::Vacant(slot) = kinds.entry(key) {
                let retry = mode == Mode::Apply;
                slot.insert(resolve_kind(kube, &d.object, crd_kinds, opts, retry).await);
            }
        }
        let mut ready = Vec::with_capacity(items.len());
        for mut d in items {
            let key = (d.object.api_version(), d.object.kind.clone());
            match kinds.get(&key) {
                Some(Ok(res)) => match scope(&mut d, res) {
                    Ok(()) => {
                        if !res.namespaced {
                            let o = &d.object;
                            cluster_scoped.push((o.group.clone(), o.kind.clone(), o.name.clone()));
                        }
                        ready.push((d, res.clone()))
                    }
                    Err(kind) => errors.push(ObjectError::new(&d.object, kind)),
                },
                Some(Err(ObjectErrorKind::NoMatch { .. }))
                    if mode == Mode::Diff
                        && crd_kinds.contains(&(d.object.group.clone(), d.object.kind.clone())) =>
                {
                    // Its CRD would be created by this set: it would be created too.
                    change_set.add(ChangeSetEntry::new(d.object, Action::Created));
                }
                Some(Err(kind)) => errors.push(ObjectError::new(&d.object, kind.clone())),
                None => {}
            }
        }

        let concurrency = opts.concurrency.max(1);
        let failed_stage = |change_set, errors, cluster_scoped| StageOutcome {
            change_set,
            errors,
            crd_groups: Vec::new(),
            cluster_scoped,
        };
        // Kinds that do not resolve fail the stage before any request about its objects.
        if !errors.is_empty() {
            return failed_stage(change_set, errors, cluster_scoped);
        }

        // Read-only checks (GET, skip rules, dry-run) of the whole stage first: a stage in
        // which any object fails writes nothing.
        let checks: Vec<Result<Checked, ObjectError>> = stream::iter(ready)
            .map(|(d, res)| check(kube, d, res, opts, mode, new_namespaces))
            .buffered(concurrency)
            .collect()
            .await;
        let mut checked = Vec::with_capacity(checks.len());
        for c in checks {
            match c {
                Ok(c) => checked.push(c),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return failed_stage(change_set, errors, cluster_scoped);
        }

        if mode == Mode::Diff {
            for c in checked {
                change_set.add(preview(c));
            }
            return StageOutcome {
                change_set,
                errors,
                crd_groups: Vec::new(),
                cluster_scoped,
            };
        }

        // Recreations, metadata cleanup, drift.
        let plans: Vec<Result<Planned, ObjectError>> = stream::iter(checked)
            .map(|c| finish(kube, c, opts))
            .buffered(concurrency)
            .collect()
            .await;
        let mut planned = Vec::with_capacity(plans.len());
        for p in plans {
            match p {
                Ok(p) => planned.push(p),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return failed_stage(change_set, errors, cluster_scoped);
        }

        let failed = AtomicBool::new(false);
        let failed = &failed;
        let outcomes: Vec<Result<ChangeSetEntry, ObjectError>> = stream::iter(planned)
            .map(|p| async move {
                match p.plan {
                    Plan::Skip(reason) => Ok(ChangeSetEntry::skipped(p.desired.object, reason)),
                    Plan::Unchanged => {
                        if let Some(progress) = &opts.progress {
                            progress.record(&p.desired.object);
                        }
                        Ok(ChangeSetEntry::new(p.desired.object, Action::Unchanged))
                    }
                    Plan::Apply { created, drift } => {
                        let object = &p.desired.object;
                        if failed.load(Ordering::Relaxed) {
                            return Err(ObjectError::new(object, ObjectErrorKind::NotAttempted));
                        }
                        if let Some(progress) = &opts.progress {
                            progress.record(object);
                        }
                        match kube
                            .apply(
                                &p.res,
                                &object.namespace,
                                &object.name,
                                &p.desired.obj,
                                false,
                            )
                            .await
                        {
                            Ok(_) => {
                                let action = if created {
                                    Action::Created
                                } else {
                                    Action::Configured
                                };
                                tracing::debug!(object = %object, %action, ?drift, "applied");
                                let mut entry = ChangeSetEntry::new(p.desired.object, action);
                                entry.drift = drift;
                                Ok(entry)
                            }
                            Err(f) => {
                                failed.store(true, Ordering::Relaxed);
                                Err(ObjectError::new(object, ObjectErrorKind::Apply(f)))
                            }
                        }
                    }
                }
            })
            .buffered(concurrency)
            .collect()
            .await;
        let mut written_crds = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(entry) => {
                    if entry.object.is_crd()
                        && matches!(entry.action, Action::Created | Action::Configured)
                    {
                        written_crds.push(entry.object.name.clone());
                    }
                    change_set.add(entry);
                }
                Err(e) => errors.push(e),
            }
        }
        // CRD names are `<plural>.<group>`: invalidate the group.
        let crd_groups = written_crds
            .into_iter()
            .filter_map(|n| n.split_once('.').map(|(_, g)| g.to_owned()))
            .collect();
        StageOutcome {
            change_set,
            errors,
            crd_groups,
            cluster_scoped,
        }
    }
}

struct StageOutcome {
    change_set: ChangeSet,
    errors: Vec<ObjectError>,
    /// Groups of the CRDs written (their discovery is refreshed).
    crd_groups: Vec<String>,
    /// Group, kind and name of the cluster-scoped objects.
    cluster_scoped: Vec<(String, String, String)>,
}

/// A rendered object ready to apply.
struct Desired {
    object: ObjectRef,
    obj: Value,
}

enum Plan {
    Skip(SkipReason),
    Unchanged,
    Apply { created: bool, drift: Vec<String> },
}

struct Planned {
    desired: Desired,
    res: Resource,
    plan: Plan,
}

/// Expands `List` objects into their items and drops kustomize's own `Kustomization`
/// config objects, as Flux's `ReadObjects` does.
fn flatten(objects: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(objects.len());
    for value in objects {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind == "Kustomization" && api_version.starts_with("kustomize.config.k8s.io/") {
            continue;
        }
        if kind.ends_with("List") && value.get("items").is_some_and(Value::is_array) {
            if let Value::Object(mut list) = value
                && let Some(Value::Array(items)) = list.remove("items")
            {
                out.extend(flatten(items));
            }
            continue;
        }
        out.push(value);
    }
    out
}

/// Validates, labels and normalizes one rendered object.
/// An object as [`Applier::apply`] would send it: the owner's labels, sluice's normalization
/// (such as Secret `stringData`), the common labels and annotations. For callers that compare
/// or dry-run objects themselves (a HelmRelease's drift detection).
pub fn prepared(value: Value, opts: &ApplyOptions) -> Result<Value, ObjectError> {
    prepare(0, value, opts).map(|d| d.obj)
}

fn prepare(index: usize, value: Value, opts: &ApplyOptions) -> Result<Desired, ObjectError> {
    let Value::Object(mut obj) = value else {
        return Err(ObjectError {
            subject: format!("object #{index}"),
            object: None,
            kind: ObjectErrorKind::Invalid("not a JSON object".into()),
        });
    };
    let object = read_ref(&obj).map_err(|msg| {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("?");
        let name = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        ObjectError {
            subject: format!("{kind}/{name} (object #{index})"),
            object: None,
            kind: ObjectErrorKind::Invalid(msg),
        }
    })?;
    let invalid = |msg: &str| ObjectError::new(&object, ObjectErrorKind::Invalid(msg.into()));
    let meta = obj
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("metadata is not an object"))?;
    set_map(meta, "labels", &opts.owner.labels()).map_err(|m| invalid(&m))?;
    crate::normalize::normalize(&mut obj, &object);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        set_map(meta, "labels", &opts.common_labels).map_err(|m| invalid(&m))?;
        set_map(meta, "annotations", &opts.common_annotations).map_err(|m| invalid(&m))?;
    }
    Ok(Desired {
        object,
        obj: Value::Object(obj),
    })
}

fn set_map(
    meta: &mut Map<String, Value>,
    field: &str,
    values: &BTreeMap<String, String>,
) -> Result<(), String> {
    if values.is_empty() {
        return Ok(());
    }
    let map = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if map.is_null() {
        *map = Value::Object(Map::new());
    }
    let map = map
        .as_object_mut()
        .ok_or_else(|| format!("metadata.{field} is not a map"))?;
    for (k, v) in values {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(())
}

/// Checks the object's namespace against its kind's scope.
fn scope(d: &mut Desired, res: &Resource) -> Result<(), ObjectErrorKind> {
    if res.namespaced {
        if d.object.namespace.is_empty() {
            return Err(ObjectErrorKind::NamespaceNotSpecified);
        }
    } else if let Some(meta) = d.obj.get_mut("metadata").and_then(Value::as_object_mut) {
        // A cluster-scoped object keeps the namespace it was rendered with in its identity
        // (inventory id and subject), as in Flux, but the request goes without it.
        meta.remove("namespace");
    }
    Ok(())
}

/// Resolves a kind; kinds defined by CRDs of this apply are retried until served.
async fn resolve_kind(
    kube: &Kube,
    object: &ObjectRef,
    crd_kinds: &HashSet<(String, String)>,
    opts: &ApplyOptions,
    retry: bool,
) -> Result<Resource, ObjectErrorKind> {
    let defined_here = retry && crd_kinds.contains(&(object.group.clone(), object.kind.clone()));
    let deadline = Instant::now() + opts.wait_timeout;
    loop {
        if let Resolution::Found(res) = kube.resolve(object).await? {
            return Ok(res);
        }
        if !defined_here || Instant::now() >= deadline {
            return Err(ObjectErrorKind::NoMatch {
                kind: object.kind.clone(),
                api_version: object.api_version(),
            });
        }
        tokio::time::sleep(opts.wait_interval).await;
    }
}

fn is_immutable(f: &ApiFailure) -> bool {
    is_immutable_message(&f.message)
}

// What the read-only phase learnt of an object is kept until the whole stage is
// checked: its verdict, not the live object and the dry-run result. A stage of large
// CRDs (kube-prometheus-stack, traefik) held both copies of every object until then.

/// What the read-only checks found for one object.
enum Check {
    Skip(SkipReason),
    /// The dry-run passed.
    DryRun(Verdict),
    /// The dry-run failed on an immutable field and the object is to be recreated.
    Recreate {
        failure: ApiFailure,
        /// The live object's, so that only that object is deleted.
        uid: Option<String>,
    },
    /// Diff only: the object cannot be dry-run because its namespace would be created by
    /// the same set.
    WouldCreate,
}

/// A dry-run compared with the live object.
struct Verdict {
    /// The dry-run result has no `resourceVersion`: the object would be created.
    created: bool,
    /// The live object differs from the dry-run result.
    drifted: bool,
    /// What differs (at most `MAX_DRIFT_PATHS`), when the object exists and either
    /// drifted or its managed fields are to be cleaned up.
    drift: Vec<String>,
    /// The merge patch that takes other managers' fields over (none with the
    /// server-side apply `Merge` annotation).
    cleanup: Option<Value>,
}

struct Checked {
    desired: Desired,
    res: Resource,
    /// Whether the object exists.
    exists: bool,
    check: Check,
}

/// The read-only phase for one object: GET, skip rules, dry-run.
async fn check(
    kube: &Kube,
    desired: Desired,
    res: Resource,
    opts: &ApplyOptions,
    mode: Mode,
    new_namespaces: &HashSet<String>,
) -> Result<Checked, ObjectError> {
    let mut desired = desired;
    let object = &desired.object;
    let err = |kind| ObjectError::new(object, kind);
    let mut live = kube
        .get(&res, &object.namespace, &object.name)
        .await
        .map_err(|f| err(ObjectErrorKind::Get(f)))?;
    // Drift ignore rules concern objects that exist: leave their paths out of what is
    // applied and of the comparison (the live copy here is only compared and read).
    let ignored = match &live {
        Some(_) => crate::ignore::paths_for(&opts.ignore, &desired.obj),
        None => Vec::new(),
    };
    if !ignored.is_empty() {
        crate::ignore::strip(&mut desired.obj, &ignored);
        if let Some(l) = live.as_mut() {
            crate::ignore::strip(l, &ignored);
        }
    }
    let either = |key: &str, value: &str| on_either(&desired.obj, live.as_ref(), key, value);
    let skip = if either(RECONCILE_ANNOTATION, DISABLED_VALUE) {
        Some(SkipReason::ReconcileDisabled)
    } else if either(SSA_ANNOTATION, SSA_IGNORE_VALUE) {
        Some(SkipReason::SsaIgnore)
    } else if live.is_some() && has_metadata(&desired.obj, SSA_ANNOTATION, SSA_IF_NOT_PRESENT_VALUE)
    {
        Some(SkipReason::IfNotPresent)
    } else {
        None
    };
    let check = match skip {
        Some(reason) => Check::Skip(reason),
        None => match kube
            .apply(&res, &object.namespace, &object.name, &desired.obj, true)
            .await
        {
            Ok(mut result) => {
                crate::ignore::strip(&mut result, &ignored);
                let cleanup = match &live {
                    Some(l) if !either(SSA_ANNOTATION, SSA_MERGE_VALUE) => {
                        let managers =
                            cleanup_managers(&kube.field_manager, &opts.disallowed_field_managers);
                        cleanup_patch(l, &kube.field_manager, &managers)
                    }
                    _ => None,
                };
                Check::DryRun(verdict(live.as_ref(), &result, cleanup))
            }
            Err(f)
                if live.is_some()
                    && is_immutable(&f)
                    && (opts.force || either(FORCE_ANNOTATION, ENABLED_VALUE)) =>
            {
                let uid = live
                    .as_ref()
                    .and_then(|l| l.pointer("/metadata/uid"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Check::Recreate { failure: f, uid }
            }
            Err(f)
                if mode == Mode::Diff
                    && live.is_none()
                    && f.is_not_found()
                    && new_namespaces.contains(&object.namespace) =>
            {
                Check::WouldCreate
            }
            Err(f) => return Err(err(ObjectErrorKind::DryRun(f))),
        },
    };
    Ok(Checked {
        desired,
        res,
        exists: live.is_some(),
        check,
    })
}

/// The verdict on a dry-run result against the live object, with the cleanup patch
/// the object would get.
fn verdict(live: Option<&Value>, dry_run: &Value, cleanup: Option<Value>) -> Verdict {
    let created = dry_run
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let drifted = live.is_some_and(|l| has_drifted(l, dry_run));
    let drift = match live {
        Some(l) if !created && (drifted || cleanup.is_some()) => {
            drift_paths(l, dry_run, MAX_DRIFT_PATHS)
        }
        _ => Vec::new(),
    };
    Verdict {
        created,
        drifted,
        drift,
        cleanup,
    }
}

/// Flux's `AnyInMetadata` on the rendered or the live object.
fn on_either(desired: &Value, live: Option<&Value>, key: &str, value: &str) -> bool {
    has_metadata(desired, key, value) || live.is_some_and(|l| has_metadata(l, key, value))
}

/// The second phase for one object, run only when every object of the stage passed its
/// checks: recreation on immutable field changes, metadata cleanup, drift.
async fn finish(
    kube: &Kube,
    checked: Checked,
    opts: &ApplyOptions,
) -> Result<Planned, ObjectError> {
    let Checked {
        desired,
        res,
        exists,
        check,
    } = checked;
    let object = &desired.object;
    let err = |kind| ObjectError::new(object, kind);
    let (ns, name) = (object.namespace.as_str(), object.name.as_str());
    let verdict = match check {
        Check::Skip(reason) => {
            return Ok(Planned {
                desired,
                res,
                plan: Plan::Skip(reason),
            });
        }
        Check::DryRun(verdict) => verdict,
        Check::WouldCreate => {
            return Ok(Planned {
                desired,
                res,
                plan: Plan::Apply {
                    created: true,
                    drift: Vec::new(),
                },
            });
        }
        Check::Recreate { failure, uid } => {
            tracing::info!(object = %object, "immutable field changed, recreating: {}", failure.message);
            kube.delete(
                &res,
                ns,
                name,
                uid.as_deref(),
                crate::prune::Propagation::Background,
            )
            .await
            .map_err(|f| err(ObjectErrorKind::Recreate(f)))?;
            wait_gone(kube, &res, object, opts).await?;
            let dry_run = kube
                .apply(&res, ns, name, &desired.obj, true)
                .await
                .map_err(|f| err(ObjectErrorKind::DryRun(f)))?;
            // Gone, so compared with nothing and with nothing to clean up.
            let plan = decide(false, verdict(None, &dry_run, None), false);
            return Ok(Planned { desired, res, plan });
        }
    };

    let mut patched = false;
    if let Some(patch) = &verdict.cleanup {
        kube.merge_patch(&res, ns, name, patch)
            .await
            .map_err(|f| err(ObjectErrorKind::Cleanup(f)))?;
        patched = true;
    }
    let plan = decide(exists, verdict, patched);
    Ok(Planned { desired, res, plan })
}

/// Created, configured (with what drifted) or unchanged, from whether the object exists,
/// the verdict on its dry-run and whether other managers' fields are (to be) taken over.
fn decide(exists: bool, verdict: Verdict, patched: bool) -> Plan {
    let Verdict {
        created,
        drifted,
        drift,
        ..
    } = verdict;
    match exists {
        true if !patched && !drifted => Plan::Unchanged,
        true if !created => {
            let mut all = Vec::with_capacity(drift.len() + 1);
            if patched {
                all.push("metadata.managedFields".to_owned());
            }
            all.extend(drift);
            Plan::Apply {
                created,
                drift: all,
            }
        }
        _ => Plan::Apply {
            created,
            drift: Vec::new(),
        },
    }
}

/// Diff: the entry an object would get, without any write.
fn preview(checked: Checked) -> ChangeSetEntry {
    let Checked {
        desired,
        exists,
        check,
        ..
    } = checked;
    let plan = match check {
        Check::Skip(reason) => return ChangeSetEntry::skipped(desired.object, reason),
        Check::Recreate { .. } | Check::WouldCreate => {
            return ChangeSetEntry::new(desired.object, Action::Created);
        }
        Check::DryRun(verdict) => {
            let cleanup = verdict.cleanup.is_some();
            decide(exists, verdict, cleanup)
        }
    };
    match plan {
        Plan::Skip(reason) => ChangeSetEntry::skipped(desired.object, reason),
        Plan::Unchanged => ChangeSetEntry::new(desired.object, Action::Unchanged),
        Plan::Apply { created, drift } => {
            let action = if created {
                Action::Created
            } else {
                Action::Configured
            };
            let mut entry = ChangeSetEntry::new(desired.object, action);
            entry.drift = drift;
            entry
        }
    }
}

/// Whether a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Apply,
    Diff,
}

/// Waits until a deleted object is gone.
async fn wait_gone(
    kube: &Kube,
    res: &Resource,
    object: &ObjectRef,
    opts: &ApplyOptions,
) -> Result<(), ObjectError> {
    let deadline = Instant::now() + opts.wait_timeout;
    loop {
        match kube.get(res, &object.namespace, &object.name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(f) => return Err(ObjectError::new(object, ObjectErrorKind::Get(f))),
        }
        if Instant::now() >= deadline {
            return Err(ObjectError::new(
                object,
                ObjectErrorKind::RecreateTimeout(opts.wait_timeout),
            ));
        }
        tokio::time::sleep(opts.wait_interval).await;
    }
}

/// Waits until the CRDs of the first stage are Established and its Namespaces Active.
async fn wait_ready(kube: &Kube, stage: &ChangeSet, opts: &ApplyOptions) -> Vec<ObjectError> {
    let waits = stage
        .entries
        .iter()
        .filter(|e| e.in_inventory())
        .filter(|e| e.object.is_crd() || e.object.is_namespace())
        .map(|e| wait_one(kube, &e.object, opts));
    futures::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

async fn wait_one(kube: &Kube, object: &ObjectRef, opts: &ApplyOptions) -> Result<(), ObjectError> {
    let err = |kind| ObjectError::new(object, kind);
    let res = match kube.resolve(object).await.map_err(err)? {
        Resolution::Found(res) => res,
        Resolution::NoMatch => {
            return Err(err(ObjectErrorKind::NoMatch {
                kind: object.kind.clone(),
                api_version: object.api_version(),
            }));
        }
    };
    let deadline = Instant::now() + opts.wait_timeout;
    loop {
        let state = match kube.get(&res, &object.namespace, &object.name).await {
            Ok(Some(live)) => match readiness(object, &live) {
                None => return Ok(()),
                Some(state) => state,
            },
            Ok(None) => "not found".to_owned(),
            Err(f) => return Err(err(ObjectErrorKind::Get(f))),
        };
        if Instant::now() >= deadline {
            return Err(err(ObjectErrorKind::NotReady {
                timeout: opts.wait_timeout,
                state,
            }));
        }
        tokio::time::sleep(opts.wait_interval).await;
    }
}

/// `None` when ready, else what is missing.
fn readiness(object: &ObjectRef, live: &Value) -> Option<String> {
    if object.is_crd() {
        let conditions = live
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let find = |t: &str| {
            conditions
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
        };
        if find("Established").and_then(|c| c.get("status")?.as_str()) == Some("True") {
            return None;
        }
        let names = find("NamesAccepted");
        if names.and_then(|c| c.get("status")?.as_str()) == Some("False") {
            let msg = names.and_then(|c| c.get("message")?.as_str()).unwrap_or("");
            return Some(format!("names not accepted: {msg}"));
        }
        return Some("not Established".to_owned());
    }
    if object.is_namespace() {
        let phase = live
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        return (phase != "Active").then(|| format!("phase {phase:?}, not Active"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_labels_and_normalizes() {
        let mut opts = ApplyOptions::new(Owner::new("apps", "flux-system"));
        opts.common_annotations = [("team".to_owned(), "a".to_owned())].into();
        let d = prepare(
            0,
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "namespace": "n", "labels": {"x": "y"}},
                "stringData": {"k": "v"}}),
            &opts,
        )
        .unwrap();
        assert_eq!(
            d.obj["metadata"]["labels"],
            json!({"x": "y", "kustomize.toolkit.fluxcd.io/name": "apps",
                   "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})
        );
        assert_eq!(d.obj["metadata"]["annotations"], json!({"team": "a"}));
        assert_eq!(d.obj["data"], json!({"k": "dg=="}));
        assert_eq!(d.object.subject(), "Secret/n/s");
    }

    #[test]
    fn prepare_rejects_non_objects() {
        let opts = ApplyOptions::new(Owner::new("a", "b"));
        let e = prepare(3, json!("x"), &opts).err().unwrap();
        assert_eq!(e.to_string(), "object #3 invalid object: not a JSON object");
        let e = prepare(
            1,
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
            &opts,
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .starts_with("ConfigMap/c (object #1) invalid object"),
            "{e}"
        );
    }

    /// The futures can be spawned on a multi-threaded runtime (checked at compile time).
    #[allow(dead_code)]
    fn futures_are_send(applier: &Applier, opts: &ApplyOptions, prune: &crate::PruneOptions) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&applier.apply(Vec::new(), opts));
        is_send(&applier.prune(&[], prune));
        fn is_sync<T: Send + Sync + Clone>() {}
        is_sync::<Applier>();
    }

    #[test]
    fn lists_are_expanded_and_kustomize_configs_dropped() {
        let objects = flatten(vec![
            json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
                {"apiVersion": "v1", "kind": "ConfigMapList", "items": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}]}]}),
            json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": "k"}}),
        ]);
        let names: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/name")?.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "k"]);
    }

    #[test]
    fn ownership() {
        let owner = Owner::new("apps", "flux-system");
        let mine = json!({"metadata": {"labels": owner.labels()}});
        assert!(owner.owns(&mine));
        let other = json!({"metadata": {"labels": Owner::new("apps", "other").labels()}});
        assert!(!owner.owns(&other));
        assert!(!owner.owns(&json!({"metadata": {}})));
    }

    #[test]
    fn readiness_rules() {
        let crd = ObjectRef::new(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "",
            "x",
        );
        let established = json!({"status": {"conditions": [
            {"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"}]}});
        assert_eq!(readiness(&crd, &established), None);
        assert!(readiness(&crd, &json!({})).is_some());
        let ns = ObjectRef::new("", "v1", "Namespace", "", "x");
        assert_eq!(
            readiness(&ns, &json!({"status": {"phase": "Active"}})),
            None
        );
        assert!(
            readiness(&ns, &json!({"status": {"phase": "Terminating"}}))
                .unwrap()
                .contains("Terminating")
        );
    }
}
