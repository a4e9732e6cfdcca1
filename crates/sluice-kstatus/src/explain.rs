//! Cause chains for workloads that are not ready ("explain why").
//!
//! Pure data in, data out: the caller fetches the workload, its Pods and,
//! optionally, the PersistentVolumeClaims, StorageClasses and Events
//! involved; [`explain`] walks workload → worst Pod → its unbound claim →
//! the claim's StorageClass and returns one [`CauseStep`] per hop, e.g.
//!
//! ```text
//! Deployment apps/memos 0/1 available
//!   → Pod memos-6c9f… Pending: Unschedulable (0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims…)
//!   → PVC memos-data unbound (phase Pending)
//!   → StorageClass "local-hostpath" does not exist
//! ```

use std::fmt;

use serde_json::Value;

use crate::fields::{
    conditions, find_condition, group, int_field, kind, nested, parse_rfc3339, str_field,
};
use crate::{ComputeOptions, Profile, Status, StatusResult, compute_or_unknown};

/// Identifies an object in a cause chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// Reference to a JSON object from its `kind` and `metadata`.
    pub fn of(obj: &Value) -> Self {
        ObjectRef {
            kind: kind(obj).to_owned(),
            namespace: nested(obj, &["metadata", "namespace"])
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name: str_field(obj, &["metadata", "name"], "").to_owned(),
        }
    }

    fn new(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// Kind as shown in chains (`PVC` for PersistentVolumeClaim).
    fn short_kind(&self) -> &str {
        match self.kind.as_str() {
            "PersistentVolumeClaim" => "PVC",
            k => k,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One hop of a cause chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseStep {
    pub object: ObjectRef,
    /// What is wrong with `object`.
    pub message: String,
    /// The object itself does not exist.
    pub missing: bool,
}

impl CauseStep {
    fn new(object: ObjectRef, message: impl Into<String>) -> Self {
        CauseStep {
            object,
            message: message.into(),
            missing: false,
        }
    }

    fn missing(object: ObjectRef, message: impl Into<String>) -> Self {
        CauseStep {
            object,
            message: message.into(),
            missing: true,
        }
    }
}

/// What [`explain`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct ExplainInput<'a> {
    /// The object to explain: a workload (Deployment, StatefulSet,
    /// DaemonSet, ReplicaSet, Job), a Pod, a PVC, or any other object.
    pub workload: &'a Value,
    /// The workload's Pods (the caller selects them, e.g. by selector).
    pub pods: &'a [Value],
    /// PVCs in the Pods' namespace; `None` when not fetched (claims are
    /// then not examined). A claim a Pod uses that is absent from a
    /// `Some` list is reported as not found.
    pub pvcs: Option<&'a [Value]>,
    /// All StorageClasses; `None` when not fetched.
    pub storage_classes: Option<&'a [Value]>,
    /// Events (core/v1 or events.k8s.io/v1) about the objects involved.
    pub events: &'a [Value],
    /// "Now" as Unix seconds (Pod scheduling window); `None` = clock.
    pub now: Option<i64>,
}

impl<'a> ExplainInput<'a> {
    /// Input with only the workload; fill in the other fields as fetched.
    pub fn new(workload: &'a Value) -> Self {
        ExplainInput {
            workload,
            pods: &[],
            pvcs: None,
            storage_classes: None,
            events: &[],
            now: None,
        }
    }
}

/// Builds the cause chain for `input.workload`. The first step always
/// describes the workload itself; a ready workload yields just that step.
pub fn explain(input: &ExplainInput<'_>) -> Vec<CauseStep> {
    let w = input.workload;
    let opts = ComputeOptions {
        now: input.now,
        profile: Profile::Flux,
        ready_condition: true,
    };
    let res = compute_or_unknown(w, &opts);
    let mut chain = Vec::new();

    match (group(w), kind(w)) {
        ("", "Pod") => {
            let diag = diagnose_pod(w, input);
            let message = diag.map_or_else(|| res.message.clone(), |d| d.message);
            chain.push(CauseStep::new(ObjectRef::of(w), message));
            if res.status != Status::Current {
                pod_claims(w, input, &mut chain);
            }
            return chain;
        }
        ("", "PersistentVolumeClaim") => {
            chain.push(CauseStep::new(
                ObjectRef::of(w),
                pvc_message(w, input).unwrap_or(res.message),
            ));
            if str_field(w, &["status", "phase"], "") != "Bound" {
                storage_class_cause(w, input, &mut chain);
            }
            return chain;
        }
        ("", "Service") => {
            let mut message = res.message.clone();
            if res.status == Status::Current
                && str_field(w, &["spec", "type"], "") == "LoadBalancer"
                && nested(w, &["status", "loadBalancer", "ingress"])
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            {
                // kstatus does not wait for this; the user usually does.
                message.push_str("; ");
                message.push_str(crate::legacy::LOAD_BALANCER_MISSING);
            }
            chain.push(CauseStep::new(ObjectRef::of(w), message));
            return chain;
        }
        _ => {}
    }

    chain.push(CauseStep::new(ObjectRef::of(w), workload_summary(w, &res)));
    if res.status == Status::Current || res.status == Status::Terminating {
        return chain;
    }

    let worst = input
        .pods
        .iter()
        .filter_map(|p| diagnose_pod(p, input).map(|d| (d, p)))
        .max_by(|(a, pa), (b, pb)| {
            a.severity
                .cmp(&b.severity)
                .then_with(|| pod_name(pb).cmp(pod_name(pa)))
        });
    if let Some((diag, pod)) = worst {
        chain.push(CauseStep::new(ObjectRef::of(pod), diag.message));
        if diag.check_claims {
            pod_claims(pod, input, &mut chain);
        }
    }
    chain
}

/// Renders a chain as one line: `Kind ns/name msg → Kind name msg → …`.
/// Namespaces after the first step are omitted when unchanged; names of
/// missing objects are quoted.
pub fn render_chain(chain: &[CauseStep]) -> String {
    let mut out = String::new();
    let mut last_ns: Option<&str> = None;
    for (i, step) in chain.iter().enumerate() {
        if i > 0 {
            out.push_str(" → ");
        }
        out.push_str(step.object.short_kind());
        out.push(' ');
        let ns = step.object.namespace.as_deref();
        if let Some(ns) = ns
            && (i == 0 || last_ns != Some(ns))
        {
            out.push_str(ns);
            out.push('/');
        }
        if step.missing {
            out.push('"');
            out.push_str(&step.object.name);
            out.push('"');
        } else {
            out.push_str(&step.object.name);
        }
        if !step.message.is_empty() {
            out.push(' ');
            out.push_str(&step.message);
        }
        if ns.is_some() {
            last_ns = ns;
        }
    }
    out
}

fn pod_name(p: &Value) -> &str {
    str_field(p, &["metadata", "name"], "")
}

/// One-line summary of a workload's progress.
/// Uses replica counters when a kind rule decided, kstatus' message when
/// the object is ready, terminating or not yet observed.
fn workload_summary(w: &Value, res: &StatusResult) -> String {
    let (status, kstatus_message) = (res.status, res.message.as_str());
    let generic = res
        .conditions
        .iter()
        .any(|c| c.reason == "LatestGenerationNotObserved");
    if matches!(
        status,
        Status::Current | Status::Terminating | Status::Unknown
    ) || generic
    {
        return kstatus_message.to_owned();
    }
    let conds = conditions(w).unwrap_or_default();
    let mut msg = match (group(w), kind(w)) {
        ("apps" | "extensions", "Deployment") => format!(
            "{}/{} available",
            int_field(w, &["status", "availableReplicas"], 0),
            int_field(w, &["spec", "replicas"], 1)
        ),
        ("apps" | "extensions", "ReplicaSet") => format!(
            "{}/{} available",
            int_field(w, &["status", "availableReplicas"], 0),
            int_field(w, &["spec", "replicas"], 1)
        ),
        ("apps", "StatefulSet") => format!(
            "{}/{} ready",
            int_field(w, &["status", "readyReplicas"], 0),
            int_field(w, &["spec", "replicas"], 1)
        ),
        ("apps" | "extensions", "DaemonSet") => format!(
            "{}/{} available",
            int_field(w, &["status", "numberAvailable"], 0),
            int_field(w, &["status", "desiredNumberScheduled"], 0)
        ),
        _ => format!("{status}: {kstatus_message}"),
    };
    if kind(w) == "Deployment"
        && let Some(c) = conds
            .iter()
            .find(|c| c.type_ == "Progressing" && c.reason == "ProgressDeadlineExceeded")
    {
        msg.push_str(", progress deadline exceeded");
        if !c.message.is_empty() {
            msg.push_str(&format!(" ({})", c.message));
        }
    }
    if let Some(c) = find_condition(&conds, "ReplicaFailure", "True") {
        msg.push_str(&format!(
            ", ReplicaFailure: {}",
            join_reason(&c.reason, &c.message)
        ));
    }
    msg
}

fn join_reason(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason} ({message})"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => "unknown".to_owned(),
    }
}

struct PodDiagnosis {
    /// Higher is worse; healthy pods get no diagnosis at all.
    severity: u8,
    message: String,
    /// The pod is not scheduled, so its claims may be the cause.
    check_claims: bool,
}

/// Waiting reasons that will not resolve without a change.
const BAD_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreCreateHookError",
    "PostStartHookError",
];

fn diagnose_pod(p: &Value, input: &ExplainInput<'_>) -> Option<PodDiagnosis> {
    let conds = conditions(p).unwrap_or_default();
    let phase = str_field(p, &["status", "phase"], "");
    let ready = find_condition(&conds, "Ready", "True").is_some();
    if phase == "Succeeded" || (phase == "Running" && ready) {
        return None;
    }
    if let Some(d) = container_problem(p) {
        return Some(d);
    }
    let diag = |severity, message: String, check_claims| {
        Some(PodDiagnosis {
            severity,
            message,
            check_claims,
        })
    };
    match phase {
        "Failed" => {
            let reason = str_field(p, &["status", "reason"], "");
            let message = str_field(p, &["status", "message"], "");
            diag(
                4,
                format!("Failed: {}", join_reason(reason, message)),
                false,
            )
        }
        "Pending" => {
            if let Some(c) = find_condition(&conds, "PodScheduled", "False") {
                let reason = if c.reason.is_empty() {
                    "NotScheduled"
                } else {
                    &c.reason
                };
                let mut msg = format!("Pending: {reason}");
                if !c.message.is_empty() {
                    msg.push_str(&format!(" ({})", c.message));
                }
                return diag(4, msg, true);
            }
            let waiting = first_waiting_reason(p).unwrap_or("not started");
            let mut msg = format!("Pending: {waiting}");
            if let Some(ev) = latest_warning(input.events, "Pod", p) {
                msg.push_str(&format!(" ({ev})"));
                if let Some(cni) = cni_cause(&ev) {
                    msg.push_str(&format!(": {cni}"));
                }
            }
            diag(2, msg, false)
        }
        "Running" => {
            let mut msg = "Running but not Ready".to_owned();
            if let Some(c) = conds
                .iter()
                .find(|c| c.type_ == "Ready" && !c.message.is_empty())
            {
                msg.push_str(&format!(": {}", c.message));
            }
            if let Some(ev) = latest_warning(input.events, "Pod", p) {
                msg.push_str(&format!(" ({ev})"));
            }
            diag(1, msg, false)
        }
        "" => diag(1, "phase not yet reported".to_owned(), false),
        other => diag(1, format!("phase {other}"), false),
    }
}

/// A Pod's sandbox that cannot get a network because the CNI plugin is not ready on its node
/// (the event is `FailedCreatePodSandBox` or `NetworkNotReady`): named, with where to look.
fn cni_cause(event: &str) -> Option<String> {
    let lower = event.to_ascii_lowercase();
    let sandbox =
        lower.starts_with("failedcreatepodsandbox") || lower.starts_with("networknotready");
    if !sandbox || !(lower.contains("cni") || lower.contains("network")) {
        return None;
    }
    // The plugin, by the names their errors carry.
    let plugin = [
        (
            "cilium",
            "Cilium",
            "kubectl -n kube-system get pods -l k8s-app=cilium",
        ),
        (
            "multus",
            "Multus",
            "kubectl -n kube-system get pods -l app=multus",
        ),
        (
            "calico",
            "Calico",
            "kubectl get pods -A -l k8s-app=calico-node",
        ),
        ("flannel", "flannel", "kubectl get pods -A -l app=flannel"),
        (
            "weave",
            "Weave Net",
            "kubectl -n kube-system get pods -l name=weave-net",
        ),
    ]
    .into_iter()
    .find(|(needle, _, _)| lower.contains(needle));
    Some(match plugin {
        Some((_, name, look)) => format!(
            "the CNI plugin ({name}) is not ready on the Pod's node, so no Pod there gets a network; see `{look}`"
        ),
        None => "the node's CNI plugin is not ready (no network configuration or its agent is down), so no Pod there gets a network; see the CNI's Pods in kube-system".to_string(),
    })
}

fn container_statuses(p: &Value) -> impl Iterator<Item = &Value> {
    ["initContainerStatuses", "containerStatuses"]
        .into_iter()
        .filter_map(|k| nested(p, &["status", k]).and_then(Value::as_array))
        .flatten()
}

fn first_waiting_reason(p: &Value) -> Option<&str> {
    container_statuses(p)
        .filter_map(|cs| nested(cs, &["state", "waiting", "reason"]).and_then(Value::as_str))
        .find(|r| !r.is_empty())
}

/// A container stuck in a bad waiting state or terminated with an error.
fn container_problem(p: &Value) -> Option<PodDiagnosis> {
    let mut terminated: Option<PodDiagnosis> = None;
    for cs in container_statuses(p) {
        let name = str_field(cs, &["name"], "?");
        if let Some(waiting) = nested(cs, &["state", "waiting"]) {
            let reason = str_field(waiting, &["reason"], "");
            if BAD_WAITING.contains(&reason) {
                let mut msg = format!("container \"{name}\" waiting: {reason}");
                let message = str_field(waiting, &["message"], "");
                if reason == "CrashLoopBackOff" {
                    msg.push_str(&crash_details(cs));
                } else if !message.is_empty() {
                    msg.push_str(&format!(" ({message})"));
                }
                return Some(PodDiagnosis {
                    severity: 5,
                    message: msg,
                    check_claims: false,
                });
            }
        }
        if terminated.is_none()
            && let Some(t) = nested(cs, &["state", "terminated"])
        {
            let code = int_field(t, &["exitCode"], 0);
            if code != 0 {
                let reason = str_field(t, &["reason"], "Error");
                terminated = Some(PodDiagnosis {
                    severity: 3,
                    message: format!(
                        "container \"{name}\" terminated: {reason} (exit code {code})"
                    ),
                    check_claims: false,
                });
            }
        }
    }
    terminated
}

fn crash_details(cs: &Value) -> String {
    let restarts = int_field(cs, &["restartCount"], 0);
    match nested(cs, &["lastState", "terminated"]) {
        Some(t) => {
            let code = int_field(t, &["exitCode"], 0);
            let reason = str_field(t, &["reason"], "");
            let mut s = format!(" (last exit code {code}");
            if !reason.is_empty() {
                s.push_str(&format!(", {reason}"));
            }
            s.push_str(&format!(", {restarts} restarts)"));
            s
        }
        None => format!(" ({restarts} restarts)"),
    }
}

/// Claim names a pod mounts, in volume order.
fn claim_names(p: &Value) -> Vec<String> {
    let pod = pod_name(p);
    let Some(vols) = nested(p, &["spec", "volumes"]).and_then(Value::as_array) else {
        return Vec::new();
    };
    vols.iter()
        .filter_map(|v| {
            if let Some(c) =
                nested(v, &["persistentVolumeClaim", "claimName"]).and_then(Value::as_str)
            {
                return Some(c.to_owned());
            }
            if nested(v, &["ephemeral"]).is_some() {
                let vol = str_field(v, &["name"], "");
                return Some(format!("{pod}-{vol}"));
            }
            None
        })
        .collect()
}

/// Adds steps for the first claim of `pod` that is missing or unbound.
fn pod_claims(pod: &Value, input: &ExplainInput<'_>, chain: &mut Vec<CauseStep>) {
    let Some(pvcs) = input.pvcs else { return };
    let ns = nested(pod, &["metadata", "namespace"]).and_then(Value::as_str);
    for claim in claim_names(pod) {
        let found = pvcs.iter().find(|c| {
            str_field(c, &["metadata", "name"], "") == claim
                && nested(c, &["metadata", "namespace"]).and_then(Value::as_str) == ns
        });
        let Some(pvc) = found else {
            chain.push(CauseStep::missing(
                ObjectRef::new("PersistentVolumeClaim", ns, &claim),
                "not found",
            ));
            return;
        };
        if let Some(msg) = pvc_message(pvc, input) {
            chain.push(CauseStep::new(ObjectRef::of(pvc), msg));
            storage_class_cause(pvc, input, chain);
            return;
        }
    }
}

/// Problem description for a PVC that is not bound, `None` when bound.
fn pvc_message(pvc: &Value, input: &ExplainInput<'_>) -> Option<String> {
    if nested(pvc, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        return Some("is being deleted".to_owned());
    }
    let phase = str_field(pvc, &["status", "phase"], "");
    if phase == "Bound" {
        return None;
    }
    let phase = if phase.is_empty() { "unknown" } else { phase };
    let mut msg = if phase == "Lost" {
        "lost its PersistentVolume (phase Lost)".to_owned()
    } else {
        format!("unbound (phase {phase})")
    };
    if let Some(ev) = latest_event(input.events, "PersistentVolumeClaim", pvc) {
        msg.push_str(&format!(": {ev}"));
    }
    Some(msg)
}

fn is_default_class(sc: &Value) -> bool {
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| nested(sc, &["metadata", "annotations", a]).and_then(Value::as_str) == Some("true"))
}

/// Adds a step when the StorageClass an unbound claim needs is missing.
fn storage_class_cause(pvc: &Value, input: &ExplainInput<'_>, chain: &mut Vec<CauseStep>) {
    let Some(classes) = input.storage_classes else {
        return;
    };
    let requested = nested(pvc, &["spec", "storageClassName"])
        .and_then(Value::as_str)
        .or_else(|| {
            nested(
                pvc,
                &[
                    "metadata",
                    "annotations",
                    "volume.beta.kubernetes.io/storage-class",
                ],
            )
            .and_then(Value::as_str)
        });
    match requested {
        Some("") => {
            // Explicitly no class: only pre-provisioned volumes can bind.
            if let Some(last) = chain.last_mut() {
                last.message
                    .push_str("; storageClassName is \"\", so only a matching pre-provisioned PersistentVolume can bind it");
            }
        }
        Some(name) => {
            if !classes
                .iter()
                .any(|c| str_field(c, &["metadata", "name"], "") == name)
            {
                chain.push(CauseStep::missing(
                    ObjectRef::new("StorageClass", None, name),
                    "does not exist",
                ));
            }
        }
        None => {
            if !classes.iter().any(is_default_class) {
                chain.push(CauseStep::missing(
                    ObjectRef::new("StorageClass", None, "(default)"),
                    "is not set: the claim names no StorageClass and none is marked default",
                ));
            }
        }
    }
}

/// Does `ev` concern the object `kind`/`obj`?
fn event_about(ev: &Value, kind: &str, obj: &Value) -> bool {
    let target = ev.get("involvedObject").or_else(|| ev.get("regarding"));
    let Some(target) = target else { return false };
    let name = str_field(obj, &["metadata", "name"], "");
    let ns = str_field(obj, &["metadata", "namespace"], "");
    str_field(target, &["kind"], "") == kind
        && str_field(target, &["name"], "") == name
        && str_field(target, &["namespace"], ns) == ns
}

fn event_time(ev: &Value) -> i64 {
    ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .filter_map(|k| ev.get(*k).and_then(Value::as_str))
        .chain(nested(ev, &["metadata", "creationTimestamp"]).and_then(Value::as_str))
        .find_map(parse_rfc3339)
        .unwrap_or(i64::MIN)
}

fn event_text(ev: &Value) -> Option<String> {
    let msg = ev
        .get("message")
        .or_else(|| ev.get("note"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())?;
    let reason = str_field(ev, &["reason"], "");
    Some(if reason.is_empty() {
        msg.trim().to_owned()
    } else {
        format!("{reason}: {}", msg.trim())
    })
}

/// Text of the most recent event about the object, preferring warnings.
fn latest_event(events: &[Value], kind: &str, obj: &Value) -> Option<String> {
    latest_warning(events, kind, obj).or_else(|| {
        events
            .iter()
            .filter(|e| event_about(e, kind, obj))
            .filter(|e| event_text(e).is_some())
            .max_by_key(|e| event_time(e))
            .and_then(event_text)
    })
}

fn latest_warning(events: &[Value], kind: &str, obj: &Value) -> Option<String> {
    events
        .iter()
        .filter(|e| event_about(e, kind, obj) && str_field(e, &["type"], "") == "Warning")
        .filter(|e| event_text(e).is_some())
        .max_by_key(|e| event_time(e))
        .and_then(event_text)
}

#[cfg(test)]
mod tests;
