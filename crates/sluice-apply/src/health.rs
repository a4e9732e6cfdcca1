//! Health checks, shared by the Kustomization's step (6) and the HelmRelease's wait: fetches
//! the objects, judges them with sluice-kstatus (Flux's rules, or CEL checks), and when one is
//! not ready in time, explains why down to the Pod, its claim and the claim's StorageClass.

use std::time::Duration;

use crate::{Applier, ObjectRef};
use kube::api::{DynamicObject, ListParams};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde_json::Value;
use sluice_kstatus::cel::CustomHealthCheck;
use sluice_kstatus::{ComputeOptions, Status};
use sluice_kstatus::{ExplainInput, explain, render_chain};

/// Why an object could not be read.
struct ReadError {
    message: String,
    /// The API server refused the read (HTTP 403): the identity the checks run as may not
    /// see the object. Waiting does not help, so the check fails at once.
    forbidden: bool,
}

/// Reads an object through the applier's client, its kind resolved by the applier's
/// discovery cache (each cluster has its own: a remote cluster serves kinds of its own).
async fn get(applier: &Applier, obj: &ObjectRef) -> Result<Option<Value>, ReadError> {
    let (ar, scope) = applier.resolve(obj).await.map_err(|e| ReadError {
        forbidden: false,
        // The caller names the object.
        message: e.kind.to_string(),
    })?;
    let client = applier.client().clone();
    let api: Api<DynamicObject> = match scope {
        Scope::Namespaced => Api::namespaced_with(client, &obj.namespace, &ar),
        Scope::Cluster => Api::all_with(client, &ar),
    };
    match api.get_opt(&obj.name).await {
        Ok(Some(o)) => {
            let mut v = serde_json::to_value(o).map_err(|e| ReadError {
                message: e.to_string(),
                forbidden: false,
            })?;
            // DynamicObject drops apiVersion/kind on the way in: put them back
            // for the rules.
            v["apiVersion"] = Value::String(obj.api_version());
            v["kind"] = Value::String(obj.kind.clone());
            Ok(Some(v))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(ReadError {
            forbidden: matches!(&e, kube::Error::Api(s) if s.code == 403),
            message: match &e {
                kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
                _ => e.to_string(),
            },
        }),
    }
}

/// The verdict of one look at the objects a Kustomization waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Every object is Current.
    Ready,
    /// Some are not ready yet; looking again later may help.
    Pending {
        /// The objects still not ready.
        waiting: Vec<ObjectRef>,
        /// `[Kind/ns/name status: 'InProgress', ...]`.
        summary: String,
    },
    /// An object Failed, may not be read, or time ran out: the message says
    /// which and why (cause chains included).
    Failed(String),
}

/// The rules an object is judged by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rules {
    /// kstatus with Flux's Job rule (a Job is ready once complete), or a matching CEL check:
    /// the Kustomization's health checks and a HelmRelease's wait (Helm's `WaitWithJobs`).
    #[default]
    Flux,
    /// Plain kstatus (a Job is ready once started), or a matching CEL check: a HelmRelease's
    /// wait with `disableWaitForJobs` (Helm's `Wait`).
    Kstatus,
    /// Helm's legacy readiness (`waitStrategy: legacy`, [`sluice_kstatus::legacy`]). CEL
    /// checks do not apply, as in helm-controller.
    HelmLegacy {
        /// Jobs are waited for (Helm's `WaitWithJobs`).
        check_jobs: bool,
    },
}

/// What [`sluice_kstatus::legacy::ready`] needs besides the object: its ReplicaSets or Pods.
async fn legacy_related(client: &Client, live: &Value) -> Vec<Value> {
    use sluice_kstatus::legacy::{Needs, needs, selector};
    let ns = live
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(sel) = selector(live) else {
        return Vec::new();
    };
    let lp = ListParams::default().labels(&sel);
    let listed = match needs(live) {
        Needs::Nothing => return Vec::new(),
        Needs::ReplicaSets => {
            let api: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
                Api::namespaced(client.clone(), ns);
            api.list(&lp).await.map(|l| {
                l.items
                    .iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .collect()
            })
        }
        Needs::Pods => {
            let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
            api.list(&lp).await.map(|l| {
                l.items
                    .iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .collect()
            })
        }
    };
    listed.unwrap_or_default()
}

/// Looks once at `objects` (kstatus rules, or the CEL checks of `custom`
/// for the objects one of them applies to) and says whether they are ready.
/// `elapsed` is how long the health check has been running; when `last` is
/// true, objects still not ready fail it with Flux's timeout message
/// (`health check failed after 5m0s: timeout waiting for: [Kind/ns/name
/// status: 'InProgress']`) and the cause chain of each.
///
/// Every read (the objects, and the Pods, claims and classes of the cause
/// chains) is made with `client`: for a Kustomization with a service account,
/// the impersonating client, so a check never sees more than the tenant may.
/// An object that client may not read fails the check at once, naming
/// `service_account` (`namespace/name`).
///
/// `rules` says how objects are judged ([`Rules::Flux`] for the Kustomization). Under
/// [`Rules::HelmLegacy`] the reason an object is not ready (`no load balancer assigned an
/// address …`) is named, with its cause chain.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    applier: &Applier,
    service_account: Option<&str>,
    objects: &[ObjectRef],
    custom: &[CustomHealthCheck],
    elapsed: Duration,
    last: bool,
    rules: Rules,
) -> Health {
    let opts = match rules {
        Rules::Kstatus => ComputeOptions::default(),
        _ => ComputeOptions::flux(),
    };
    let mut still = Vec::new();
    let mut failed = false;
    let mut forbidden = Vec::new();
    for obj in objects {
        let (live, read_error) = match get(applier, obj).await {
            Ok(live) => (live, None),
            Err(e) if e.forbidden => {
                forbidden.push(format!("{}: {}", obj.subject(), e.message));
                continue;
            }
            Err(e) => (None, Some(e.message)),
        };
        let (status, why) = match (&live, rules) {
            (Some(v), Rules::HelmLegacy { check_jobs }) => {
                use sluice_kstatus::legacy::{Verdict, ready};
                match ready(v, &legacy_related(applier.client(), v).await, check_jobs) {
                    Verdict::Ready => (Status::Current, None),
                    Verdict::NotReady(m) => (Status::InProgress, Some(m)),
                    Verdict::Failed(m) => (Status::Failed, Some(m)),
                }
            }
            (Some(v), _) => match custom.iter().find(|c| c.applies_to(v)) {
                Some(c) => {
                    let r = c.evaluate(v);
                    (r.status, Some(r.message))
                }
                None => (sluice_kstatus::compute_or_unknown(v, &opts).status, None),
            },
            (None, _) if read_error.is_some() => (Status::Unknown, read_error),
            (None, _) => (Status::NotFound, None),
        };
        if status != Status::Current {
            failed |= status == Status::Failed;
            still.push((obj.clone(), status, live, why));
        }
    }
    if !forbidden.is_empty() {
        let who = service_account
            .map(|sa| format!(" for service account {sa}"))
            .unwrap_or_default();
        return Health::Failed(format!(
            "health check forbidden by RBAC{who}: [{}]",
            forbidden.join(", ")
        ));
    }
    if still.is_empty() {
        return Health::Ready;
    }
    let summary = format!(
        "[{}]",
        still
            .iter()
            .map(|(o, s, _, _)| format!("{} status: '{}'", o.subject(), s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !failed && !last {
        return Health::Pending {
            waiting: still.into_iter().map(|(o, ..)| o).collect(),
            summary,
        };
    }
    let mut msg = if failed && !last {
        format!("health check failed: {summary}")
    } else {
        format!(
            "health check failed after {}: timeout waiting for: {summary}",
            sluice_api::meta::format_duration(Duration::from_secs(
                elapsed.as_secs_f64().round() as u64
            )),
        )
    };
    for (o, _, live, why) in &still {
        if let Some(why) = why {
            // A custom health check or Helm's legacy rules: their own verdict is the cause
            // (with the cause chain below it for the legacy rules).
            msg.push_str(&format!("; {}: {why}", o.subject()));
            if !matches!(rules, Rules::HelmLegacy { .. }) {
                continue;
            }
        }
        if let Some(live) = live {
            let chain = cause_chain(applier.client(), &o.namespace, live).await;
            if !chain.is_empty() {
                msg.push_str("; ");
                msg.push_str(&chain);
            }
        }
    }
    Health::Failed(msg)
}

/// `explain()` for one object: its Pods (by `spec.selector.matchLabels`),
/// the PVCs of its namespace and the StorageClasses.
pub async fn cause_chain(client: &Client, namespace: &str, live: &Value) -> String {
    let mut pods = Vec::new();
    let mut pvcs = Vec::new();
    let mut classes = Vec::new();
    let selector = live
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        });
    let is_pod = live["kind"] == "Pod" && live["apiVersion"] == "v1";
    if !namespace.is_empty()
        && (selector.is_some() || is_pod || live["kind"] == "PersistentVolumeClaim")
    {
        if let Some(sel) = selector.filter(|s| !s.is_empty()) {
            let api: Api<k8s_openapi::api::core::v1::Pod> =
                Api::namespaced(client.clone(), namespace);
            if let Ok(list) = api.list(&ListParams::default().labels(&sel)).await {
                pods = list
                    .items
                    .into_iter()
                    .filter_map(|p| typed_json(&p, "v1", "Pod"))
                    .collect();
            }
        }
        let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(client.clone(), namespace);
        if let Ok(list) = api.list(&ListParams::default()).await {
            pvcs = list
                .items
                .into_iter()
                .filter_map(|p| typed_json(&p, "v1", "PersistentVolumeClaim"))
                .collect();
        }
        let api: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
        if let Ok(list) = api.list(&ListParams::default()).await {
            classes = list
                .items
                .into_iter()
                .filter_map(|p| typed_json(&p, "storage.k8s.io/v1", "StorageClass"))
                .collect();
        }
    }
    let mut input = ExplainInput::new(live);
    input.pods = &pods;
    input.pvcs = Some(&pvcs);
    input.storage_classes = Some(&classes);
    render_chain(&explain(&input))
}

fn typed_json<T: serde::Serialize>(obj: &T, api_version: &str, kind: &str) -> Option<Value> {
    let mut v = serde_json::to_value(obj).ok()?;
    v["apiVersion"] = Value::String(api_version.into());
    v["kind"] = Value::String(kind.into());
    Some(v)
}
