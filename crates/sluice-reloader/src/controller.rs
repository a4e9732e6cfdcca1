//! The kube-facing half: watch ConfigMaps and Secrets, and roll the workloads
//! that [`rules::decide`] selects by server-side applying one pod-template
//! annotation under the reloader's own field manager.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference, PodTemplateSpec, Secret};
use k8s_openapi::{NamespaceResourceScope, serde::de::DeserializeOwned};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

use crate::hash::{self, ContentHash};
use crate::metrics::Metrics;
use crate::rules::{self, LAST_RELOADED_FROM, Source, SourceKind, Verdict};
use crate::tracker::{Change, Entry, Key, Tracker};
use crate::{Options, WorkloadKind};

/// Shared state of the reloader's watch loops.
pub(crate) struct Context {
    pub client: Client,
    pub options: Options,
    pub metrics: Metrics,
    pub recorder: sluice_runtime::Recorder,
}

impl Context {
    pub fn new(client: Client, options: Options, metrics: Metrics) -> Self {
        let recorder = sluice_runtime::Recorder::new(
            client.clone(),
            &options.field_manager,
            &options.runtime.events,
        );
        Context {
            client,
            options,
            metrics,
            recorder,
        }
    }
}

/// Something a ConfigMap or Secret carries that the reloader reads.
pub(crate) trait Watched:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: SourceKind;
    fn content_hash(&self) -> ContentHash;
}

impl Watched for ConfigMap {
    const KIND: SourceKind = SourceKind::ConfigMap;
    fn content_hash(&self) -> ContentHash {
        hash::configmap_hash(self)
    }
}

impl Watched for Secret {
    const KIND: SourceKind = SourceKind::Secret;
    fn content_hash(&self) -> ContentHash {
        hash::secret_hash(self)
    }
}

fn entry_of<K: Watched>(obj: &K) -> Entry {
    let annotations = obj.annotations();
    Entry {
        hash: obj.content_hash(),
        ignored: annotations.get(rules::IGNORE).is_some_and(|v| v == "true"),
        matched: annotations.get(rules::MATCH).is_some_and(|v| v == "true"),
    }
}

fn key_of<K: Watched>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Watches one kind until the stream ends (it does not, short of a fatal error).
pub(crate) async fn watch<K: Watched>(
    ctx: Arc<Context>,
    tracker: Arc<Mutex<Tracker>>,
) -> anyhow::Result<()> {
    let api: Api<K> = match &ctx.options.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut config = watcher::Config::default().any_semantic().page_size(200);
    if let Some(selector) = &ctx.options.resource_label_selector {
        config = config.labels(selector);
    }
    // Ready once this kind has been listed.
    let gate = ctx
        .options
        .runtime
        .readiness
        .gate(&crate::readiness_gate(K::KIND));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    // The watcher re-lists and re-watches by itself after an error (with
    // backoff); an error is reported and the stream polled on, never ended:
    // an API server restart must not stop the Reloader (or the process).
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(kind = K::KIND.as_str(), "reloader: watching: {e}");
                continue;
            }
        };
        let changes = {
            let mut t = tracker.lock().await;
            let changes = match event {
                Event::Init => {
                    t.init();
                    Vec::new()
                }
                Event::InitApply(obj) => {
                    let (key, entry) = (key_of(&obj), entry_of(&obj));
                    t.init_apply(key.clone(), entry)
                        .map(|c| (key, entry, c))
                        .into_iter()
                        .collect()
                }
                Event::InitDone => {
                    gate.open();
                    t.init_done()
                        .into_iter()
                        .map(|(key, entry)| (key, entry, Change::Deleted))
                        .collect()
                }
                Event::Apply(obj) => {
                    let (key, entry) = (key_of(&obj), entry_of(&obj));
                    t.apply(key.clone(), entry)
                        .map(|c| (key, entry, c))
                        .into_iter()
                        .collect()
                }
                Event::Delete(obj) => {
                    let key = key_of(&obj);
                    t.delete(&key)
                        .map(|e| (key, e, Change::Deleted))
                        .into_iter()
                        .collect::<Vec<_>>()
                }
            };
            ctx.metrics.tracked(K::KIND).set(t.len() as i64);
            changes
        };
        for (key, entry, change) in changes {
            handle_change(&ctx, K::KIND, &key, entry, change).await;
        }
    }
    Ok(())
}

async fn handle_change(ctx: &Context, kind: SourceKind, key: &Key, entry: Entry, change: Change) {
    let opts = &ctx.options;
    let wanted = match change {
        Change::Updated => true,
        Change::Created => opts.reload_on_create,
        Change::Deleted => opts.reload_on_delete,
    };
    let (namespace, name) = key;
    if !wanted || opts.namespaces_to_ignore.iter().any(|n| n == namespace) {
        return;
    }
    if let Some(selector) = &opts.namespace_selector {
        match namespace_selected(&ctx.client, namespace, selector).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(%namespace, "reloader: checking the namespace selector: {e}");
                return;
            }
        }
    }
    let hash = if change == Change::Deleted {
        hash::empty_hash()
    } else {
        entry.hash
    };
    let source = Source {
        kind,
        name,
        ignored: entry.ignored,
        matched: entry.matched,
    };
    tracing::debug!(kind = kind.as_str(), %namespace, %name, ?change, "reloader: content changed");
    let cause = Cause {
        source,
        namespace,
        hash,
    };
    for workload in WorkloadKind::ALL {
        if opts.ignored_workload_types.contains(&workload) {
            continue;
        }
        let result = match workload {
            WorkloadKind::Deployment => reload_all::<Deployment>(ctx, &cause, workload).await,
            WorkloadKind::StatefulSet => reload_all::<StatefulSet>(ctx, &cause, workload).await,
            WorkloadKind::DaemonSet => reload_all::<DaemonSet>(ctx, &cause, workload).await,
            WorkloadKind::CronJob => reload_all::<CronJob>(ctx, &cause, workload).await,
        };
        if let Err(e) = result {
            tracing::warn!(kind = kind.as_str(), %namespace, %name, workload = workload.as_str(), "reloader: listing workloads: {e}");
        }
    }
}

async fn namespace_selected(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> kube::Result<bool> {
    let api: Api<Namespace> = Api::all(client.clone());
    let params = ListParams::default()
        .labels(selector)
        .fields(&format!("metadata.name={namespace}"));
    Ok(!api.list_metadata(&params).await?.items.is_empty())
}

/// The change that causes a reload.
struct Cause<'a> {
    source: Source<'a>,
    namespace: &'a str,
    hash: ContentHash,
}

/// A workload kind with a pod template.
trait Workload:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    fn template(&self) -> Option<&PodTemplateSpec>;
}

impl Workload for Deployment {
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}
impl Workload for StatefulSet {
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}
impl Workload for DaemonSet {
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}
impl Workload for CronJob {
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.job_template.spec.as_ref().map(|s| &s.template)
    }
}

async fn reload_all<W: Workload>(
    ctx: &Context,
    cause: &Cause<'_>,
    kind: WorkloadKind,
) -> kube::Result<()> {
    let api: Api<W> = Api::namespaced(ctx.client.clone(), cause.namespace);
    let items = api.list(&ListParams::default()).await?.items;
    for workload in items {
        let template = workload.template();
        let verdict = rules::decide(
            &cause.source,
            Some(workload.annotations()),
            template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref()),
            template.and_then(|t| t.spec.as_ref()),
            ctx.options.auto_reload_all,
        );
        if !verdict.reloads() {
            continue;
        }
        if already_reloaded(template, cause) {
            tracing::debug!(workload = %workload.name_any(), "reloader: template already carries this content hash");
            continue;
        }
        reload_one(ctx, &api, &workload, kind, cause, verdict).await;
    }
    Ok(())
}

/// The annotation a reload writes: Reloader's payload (type, name, namespace,
/// hash, observedAt).
pub fn annotation_value(
    kind: SourceKind,
    namespace: &str,
    name: &str,
    hash: &ContentHash,
    observed_at: u64,
) -> String {
    json!({
        "type": kind.reloader_type(),
        "name": name,
        "namespace": namespace,
        "hash": hash::to_hex(hash),
        "observedAt": observed_at,
    })
    .to_string()
}

/// True when the pod template already records a reload for exactly this
/// content, so a repeated event (or a restart) does not roll it again.
fn already_reloaded(template: Option<&PodTemplateSpec>, cause: &Cause<'_>) -> bool {
    let Some(value) = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(LAST_RELOADED_FROM))
    else {
        return false;
    };
    let Ok(parsed) = serde_json::from_str::<serde_json::Value>(value) else {
        return false;
    };
    parsed["type"] == cause.source.kind.reloader_type()
        && parsed["name"] == cause.source.name
        && parsed["hash"] == hash::to_hex(&cause.hash).as_str()
}

/// The server-side apply body that sets only the reload annotation.
pub fn apply_body(
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    value: &str,
) -> serde_json::Value {
    let template = json!({ "metadata": { "annotations": { LAST_RELOADED_FROM: value } } });
    let spec = match kind {
        WorkloadKind::CronJob => json!({ "jobTemplate": { "spec": { "template": template } } }),
        _ => json!({ "template": template }),
    };
    json!({
        "apiVersion": kind.api_version(),
        "kind": kind.as_str(),
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    })
}

async fn reload_one<W: Workload>(
    ctx: &Context,
    api: &Api<W>,
    workload: &W,
    kind: WorkloadKind,
    cause: &Cause<'_>,
    verdict: Verdict,
) {
    let name = workload.name_any();
    let observed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let value = annotation_value(
        cause.source.kind,
        cause.namespace,
        cause.source.name,
        &cause.hash,
        observed_at,
    );
    let body = apply_body(kind, cause.namespace, &name, &value);
    let params = PatchParams::apply(&ctx.options.field_manager).force();
    let source_desc = format!(
        "{} {}/{}",
        cause.source.kind.as_str(),
        cause.namespace,
        cause.source.name
    );
    let result = api.patch(&name, &params, &Patch::Apply(&body)).await;
    let (event_type, reason, note) = match &result {
        Ok(_) => {
            tracing::info!(workload = %format!("{}/{}/{}", kind.as_str(), cause.namespace, name), source = %source_desc, ?verdict, "reloader: rolled workload");
            (
                sluice_runtime::EventType::Normal,
                "Reloaded",
                format!(
                    "{source_desc} changed; rolling {} {}/{name}",
                    kind.as_str(),
                    cause.namespace
                ),
            )
        }
        Err(e) => {
            tracing::warn!(workload = %name, source = %source_desc, "reloader: rolling workload failed: {e}");
            (
                sluice_runtime::EventType::Warning,
                "ReloadFailed",
                format!(
                    "{source_desc} changed, but rolling {} {}/{name} failed: {e}",
                    kind.as_str(),
                    cause.namespace
                ),
            )
        }
    };
    ctx.metrics.reload(result.is_ok(), cause.namespace);
    let mut reference = workload.object_ref(&());
    reference.api_version = Some(kind.api_version().to_string());
    reference.kind = Some(kind.as_str().to_string());
    let secondary = ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some(cause.source.kind.as_str().to_string()),
        name: Some(cause.source.name.to_string()),
        namespace: Some(cause.namespace.to_string()),
        ..ObjectReference::default()
    };
    let event = sluice_runtime::Event {
        type_: event_type,
        reason: reason.into(),
        message: note,
        metadata: Default::default(),
    };
    ctx.recorder
        .publish_ref(&reference, Some(&secondary), Some("Reload"), &[event])
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_body_touches_only_the_template_annotation() {
        let body = apply_body(WorkloadKind::Deployment, "apps", "web", "v");
        assert_eq!(body["apiVersion"], "apps/v1");
        assert_eq!(
            body["spec"]["template"]["metadata"]["annotations"][LAST_RELOADED_FROM],
            "v"
        );
        assert_eq!(body["spec"].as_object().map(|o| o.len()), Some(1));
        let body = apply_body(WorkloadKind::CronJob, "apps", "nightly", "v");
        assert_eq!(body["apiVersion"], "batch/v1");
        assert_eq!(
            body["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
                [LAST_RELOADED_FROM],
            "v"
        );
    }

    #[test]
    fn annotation_records_source_and_hash_but_no_data() {
        let v = annotation_value(SourceKind::Secret, "apps", "db", &[0xab; 20], 42);
        let parsed: serde_json::Value = serde_json::from_str(&v).expect("json");
        assert_eq!(parsed["type"], "SECRET");
        assert_eq!(parsed["name"], "db");
        assert_eq!(parsed["hash"], "ab".repeat(20));
        assert_eq!(parsed["observedAt"], 42);
    }

    #[test]
    fn a_template_with_the_same_hash_is_not_rolled_again() {
        let hash = [7u8; 20];
        let value = annotation_value(SourceKind::Secret, "apps", "db", &hash, 1);
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": { "annotations": { LAST_RELOADED_FROM: value } }
        }))
        .expect("template");
        let source = Source {
            kind: SourceKind::Secret,
            name: "db",
            ignored: false,
            matched: false,
        };
        let same = Cause {
            source,
            namespace: "apps",
            hash,
        };
        assert!(already_reloaded(Some(&template), &same));
        let other = Cause {
            source,
            namespace: "apps",
            hash: [8u8; 20],
        };
        assert!(!already_reloaded(Some(&template), &other));
        assert!(!already_reloaded(None, &same));
    }
}
