//! The kstatus rules: generic checks first, then per-kind rules.
//!
//! Decision order, reasons and message strings follow
//! `sigs.k8s.io/cli-utils/pkg/kstatus/status` (generic.go, core.go).

use serde_json::Value;

use crate::fields::{
    BasicCondition, conditions, find_condition, group, int_field, kind, nested_i64, nested_str,
    parse_rfc3339, str_field,
};
use crate::{ComputeOptions, Condition, Error, Profile, Status, StatusResult};

/// How long a pod may stay unscheduled before kstatus calls it Failed.
pub const SCHEDULE_WINDOW_SECS: i64 = 15;

const TOO_FEW_READY: &str = "LessReady";
const TOO_FEW_AVAILABLE: &str = "LessAvailable";
const TOO_FEW_UPDATED: &str = "LessUpdated";
const TOO_FEW_REPLICAS: &str = "LessReplicas";
const EXTRA_PODS: &str = "ExtraPods";

fn current(message: impl Into<String>) -> StatusResult {
    StatusResult {
        status: Status::Current,
        message: message.into(),
        conditions: Vec::new(),
    }
}

fn in_progress(reason: &str, message: impl Into<String>) -> StatusResult {
    let message = message.into();
    StatusResult {
        status: Status::InProgress,
        conditions: vec![Condition::reconciling(reason, &message)],
        message,
    }
}

fn failed(reason: &str, message: impl Into<String>) -> StatusResult {
    let message = message.into();
    StatusResult {
        status: Status::Failed,
        conditions: vec![Condition::stalled(reason, &message)],
        message,
    }
}

pub(crate) fn compute(obj: &Value, opts: &ComputeOptions) -> Result<StatusResult, Error> {
    if !obj.is_object() {
        return Err(Error::Malformed("object is not a JSON object".into()));
    }
    if opts.profile == Profile::Flux && group(obj) == "batch" && kind(obj) == "Job" {
        // Flux's custom reader replaces Compute entirely for Jobs.
        return flux_job(obj);
    }
    if let Some(res) = generic(obj)? {
        return Ok(res);
    }
    if let Some(rule) = legacy_rule(obj) {
        return rule(obj, opts);
    }
    if opts.ready_condition
        && let Some(res) = ready_condition(obj)?
    {
        return Ok(res);
    }
    Ok(current("Resource is current"))
}

type Rule = fn(&Value, &ComputeOptions) -> Result<StatusResult, Error>;

/// kstatus' table of built-in kinds, keyed by `group/Kind` (`Kind` for the
/// core group).
fn legacy_rule(obj: &Value) -> Option<Rule> {
    let rule: Rule = match (group(obj), kind(obj)) {
        ("", "Service") => service,
        ("", "Pod") => pod,
        ("", "Secret") | ("", "ConfigMap") | ("batch", "CronJob") => always_ready,
        ("", "PersistentVolumeClaim") => pvc,
        ("apps", "StatefulSet") => statefulset,
        ("apps" | "extensions", "DaemonSet") => daemonset,
        ("apps" | "extensions", "Deployment") => deployment,
        ("apps" | "extensions", "ReplicaSet") => replicaset,
        ("policy", "PodDisruptionBudget") => pdb,
        ("batch", "Job") => job,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd,
        _ => return None,
    };
    Some(rule)
}

/// Deletion, generation and the standard Reconciling/Stalled conditions.
fn generic(obj: &Value) -> Result<Option<StatusResult>, Error> {
    if let Some(ts) = nested_str(obj, &["metadata", "deletionTimestamp"])?
        && !ts.is_empty()
    {
        return Ok(Some(StatusResult {
            status: Status::Terminating,
            message: "Resource scheduled for deletion".into(),
            conditions: Vec::new(),
        }));
    }

    if let Some(res) = check_generation(obj)? {
        return Ok(Some(res));
    }

    for c in conditions(obj)? {
        if c.type_ == "Reconciling" && c.status == "True" {
            return Ok(Some(in_progress(&c.reason, c.message)));
        }
        if c.type_ == "Stalled" && c.status == "True" {
            return Ok(Some(StatusResult {
                status: Status::Failed,
                conditions: vec![Condition::stalled(&c.reason, &c.message)],
                message: c.message,
            }));
        }
    }
    Ok(None)
}

fn check_generation(obj: &Value) -> Result<Option<StatusResult>, Error> {
    let Some(generation) = nested_i64(obj, &["metadata", "generation"])? else {
        return Ok(None);
    };
    let Some(observed) = nested_i64(obj, &["status", "observedGeneration"])? else {
        return Ok(None);
    };
    if observed != generation {
        let message = format!(
            "{} generation is {generation}, but latest observed generation is {observed}",
            kind(obj)
        );
        return Ok(Some(in_progress("LatestGenerationNotObserved", message)));
    }
    Ok(None)
}

/// Sluice extension (off by default): use a `Ready` condition when no
/// kstatus rule decided.
fn ready_condition(obj: &Value) -> Result<Option<StatusResult>, Error> {
    let conds = conditions(obj)?;
    let Some(ready) = conds.iter().find(|c| c.type_ == "Ready") else {
        return Ok(None);
    };
    let message = |default: &str| {
        if ready.message.is_empty() {
            default.to_owned()
        } else {
            ready.message.clone()
        }
    };
    Ok(Some(match ready.status.as_str() {
        "True" => current(message("Resource is Ready")),
        "False" => {
            let reason = if ready.reason.is_empty() {
                "NotReady"
            } else {
                &ready.reason
            };
            failed(reason, message("Resource is not Ready"))
        }
        _ => {
            let reason = if ready.reason.is_empty() {
                "ReadyUnknown"
            } else {
                &ready.reason
            };
            in_progress(reason, message("Resource readiness is unknown"))
        }
    }))
}

fn always_ready(_: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    Ok(current("Resource is always ready"))
}

/// StatefulSet: the controller sets no conditions, so only counters and
/// revisions are used.
fn statefulset(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    if str_field(obj, &["spec", "updateStrategy", "type"], "") == "OnDelete" {
        return Ok(current("StatefulSet is using the ondelete update strategy"));
    }

    let spec = int_field(obj, &["spec", "replicas"], 1);
    let ready = int_field(obj, &["status", "readyReplicas"], 0);
    let current_replicas = int_field(obj, &["status", "currentReplicas"], 0);
    let updated = int_field(obj, &["status", "updatedReplicas"], 0);
    let status = int_field(obj, &["status", "replicas"], 0);
    let partition = int_field(
        obj,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
        -1,
    );

    if spec > status {
        return Ok(in_progress(
            TOO_FEW_REPLICAS,
            format!("Replicas: {status}/{spec}"),
        ));
    }
    if spec > ready {
        return Ok(in_progress(TOO_FEW_READY, format!("Ready: {ready}/{spec}")));
    }
    if status > spec {
        return Ok(in_progress(
            EXTRA_PODS,
            format!("Pending termination: {}", status.wrapping_sub(spec)),
        ));
    }
    if partition != -1 {
        let want = spec.wrapping_sub(partition); // Go int arithmetic
        if updated < want {
            return Ok(in_progress(
                "PartitionRollout",
                format!("updated: {updated}/{want}"),
            ));
        }
        return Ok(current(format!(
            "Partition rollout complete. updated: {updated}"
        )));
    }
    if spec > current_replicas {
        return Ok(in_progress(
            "LessCurrent",
            format!("current: {current_replicas}/{spec}"),
        ));
    }
    let current_rev = str_field(obj, &["status", "currentRevision"], "");
    let update_rev = str_field(obj, &["status", "updateRevision"], "");
    if current_rev != update_rev {
        return Ok(in_progress(
            "RevisionMismatch",
            "Waiting for updated revision to match current",
        ));
    }
    Ok(current(format!(
        "All replicas scheduled as expected. Replicas: {status}"
    )))
}

/// Deployment: counters plus the Progressing/Available conditions.
fn deployment(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    // Without progressDeadlineSeconds the controller never sets
    // Progressing, so the deployment counts as progressing.
    let mut progressing = int_field(
        obj,
        &["spec", "progressDeadlineSeconds"],
        i64::from(i32::MAX),
    ) == i64::from(i32::MAX);
    let mut available = false;

    for c in conditions(obj)? {
        match c.type_.as_str() {
            "Progressing" => {
                if c.reason == "ProgressDeadlineExceeded" {
                    return Ok(StatusResult {
                        status: Status::Failed,
                        message: "Progress deadline exceeded".into(),
                        conditions: vec![Condition::stalled(&c.reason, &c.message)],
                    });
                }
                if c.status == "True" && c.reason == "NewReplicaSetAvailable" {
                    progressing = true;
                }
            }
            "Available" if c.status == "True" => available = true,
            _ => {}
        }
    }

    let spec = int_field(obj, &["spec", "replicas"], 1);
    let status = int_field(obj, &["status", "replicas"], 0);
    let updated = int_field(obj, &["status", "updatedReplicas"], 0);
    let ready = int_field(obj, &["status", "readyReplicas"], 0);
    let avail = int_field(obj, &["status", "availableReplicas"], 0);

    if spec > status {
        return Ok(in_progress(
            TOO_FEW_REPLICAS,
            format!("Replicas: {status}/{spec}"),
        ));
    }
    if spec > updated {
        return Ok(in_progress(
            TOO_FEW_UPDATED,
            format!("Updated: {updated}/{spec}"),
        ));
    }
    if status > spec {
        return Ok(in_progress(
            EXTRA_PODS,
            format!("Pending termination: {}", status.wrapping_sub(spec)),
        ));
    }
    if updated > avail {
        return Ok(in_progress(
            TOO_FEW_AVAILABLE,
            format!("Available: {avail}/{updated}"),
        ));
    }
    if spec > ready {
        return Ok(in_progress(TOO_FEW_READY, format!("Ready: {ready}/{spec}")));
    }
    if !progressing {
        return Ok(in_progress(
            "ReplicaSetNotAvailable",
            "ReplicaSet not Available",
        ));
    }
    if !available {
        return Ok(in_progress(
            "DeploymentNotAvailable",
            "Deployment not Available",
        ));
    }
    Ok(current(format!(
        "Deployment is available. Replicas: {status}"
    )))
}

fn replicaset(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    let conds = conditions(obj)?;
    if find_condition(&conds, "ReplicaFailure", "True").is_some() {
        return Ok(in_progress(
            "ReplicaFailure",
            "Replica Failure condition. Check Pods",
        ));
    }

    let spec = int_field(obj, &["spec", "replicas"], 1);
    let status = int_field(obj, &["status", "replicas"], 0);
    let ready = int_field(obj, &["status", "readyReplicas"], 0);
    let avail = int_field(obj, &["status", "availableReplicas"], 0);
    let labelled = int_field(obj, &["status", "fullyLabeledReplicas"], 0);

    if spec > labelled {
        return Ok(in_progress(
            "LessLabelled",
            format!("Labelled: {labelled}/{spec}"),
        ));
    }
    if spec > avail {
        return Ok(in_progress(
            TOO_FEW_AVAILABLE,
            format!("Available: {avail}/{spec}"),
        ));
    }
    if spec > ready {
        return Ok(in_progress(TOO_FEW_READY, format!("Ready: {ready}/{spec}")));
    }
    if status > spec {
        return Ok(in_progress(
            EXTRA_PODS,
            format!("Pending termination: {}", status.wrapping_sub(spec)),
        ));
    }
    Ok(current(format!(
        "ReplicaSet is available. Replicas: {status}"
    )))
}

fn daemonset(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    // Unlike the generic check, a DaemonSet must have both generation
    // fields once its controller has acted on it.
    let k = kind(obj);
    if nested_i64(obj, &["metadata", "generation"])?.is_none() {
        return Ok(in_progress(
            "NoGeneration",
            format!("{k} metadata.generation not found"),
        ));
    }
    if nested_i64(obj, &["status", "observedGeneration"])?.is_none() {
        return Ok(in_progress(
            "NoObservedGeneration",
            format!("{k} status.observedGeneration not found"),
        ));
    }

    let desired = int_field(obj, &["status", "desiredNumberScheduled"], -1);
    let current_sched = int_field(obj, &["status", "currentNumberScheduled"], 0);
    let updated = int_field(obj, &["status", "updatedNumberScheduled"], 0);
    let avail = int_field(obj, &["status", "numberAvailable"], 0);
    let ready = int_field(obj, &["status", "numberReady"], 0);

    if desired == -1 {
        return Ok(in_progress(
            "NoDesiredNumber",
            "Missing .status.desiredNumberScheduled",
        ));
    }
    if desired > current_sched {
        return Ok(in_progress(
            "LessCurrent",
            format!("Current: {current_sched}/{desired}"),
        ));
    }
    if desired > updated {
        return Ok(in_progress(
            TOO_FEW_UPDATED,
            format!("Updated: {updated}/{desired}"),
        ));
    }
    if desired > avail {
        return Ok(in_progress(
            TOO_FEW_AVAILABLE,
            format!("Available: {avail}/{desired}"),
        ));
    }
    if desired > ready {
        return Ok(in_progress(
            TOO_FEW_READY,
            format!("Ready: {ready}/{desired}"),
        ));
    }
    Ok(current(format!(
        "All replicas scheduled as expected. Replicas: {desired}"
    )))
}

fn pvc(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    let phase = str_field(obj, &["status", "phase"], "unknown");
    if phase != "Bound" {
        return Ok(in_progress(
            "NotBound",
            format!("PVC is not Bound. phase: {phase}"),
        ));
    }
    Ok(current("PVC is Bound"))
}

fn pod(obj: &Value, opts: &ComputeOptions) -> Result<StatusResult, Error> {
    let conds = conditions(obj)?;
    let phase = str_field(obj, &["status", "phase"], "");
    match phase {
        "Succeeded" => Ok(current("Pod has completed successfully")),
        "Failed" => Ok(current("Pod has completed, but not successfully")),
        "Running" => {
            if find_condition(&conds, "Ready", "True").is_some() {
                return Ok(current("Pod is Ready"));
            }
            let looping = crash_looping_containers(obj)?;
            if !looping.is_empty() {
                return Ok(failed(
                    "ContainerCrashLooping",
                    format!("Containers in CrashLoop state: {}", looping.join(",")),
                ));
            }
            Ok(in_progress(
                "PodRunningNotReady",
                "Pod is running but is not Ready",
            ))
        }
        "Pending" => {
            if let Some(BasicCondition { reason, .. }) =
                find_condition(&conds, "PodScheduled", "False")
                && reason == "Unschedulable"
            {
                // A missing or unparsable creationTimestamp is the zero time.
                let created = nested(obj, "creationTimestamp").and_then(parse_rfc3339);
                let now = opts.now_unix();
                if let Some(created) = created
                    && now.saturating_sub(SCHEDULE_WINDOW_SECS) < created
                {
                    return Ok(in_progress("PodNotScheduled", "Pod has not been scheduled"));
                }
                return Ok(failed("PodUnschedulable", "Pod could not be scheduled"));
            }
            Ok(in_progress("PodPending", "Pod is in the Pending phase"))
        }
        "" => Ok(in_progress("PodNotObserved", "Pod phase not available")),
        other => Err(Error::UnknownPodPhase(other.to_owned())),
    }
}

fn nested<'a>(obj: &'a Value, meta_key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(meta_key)?.as_str()
}

/// Names of containers waiting with reason `CrashLoopBackOff`, in order.
/// Entries of the wrong shape are errors (the Go code would panic).
fn crash_looping_containers(obj: &Value) -> Result<Vec<String>, Error> {
    let list = match obj.get("status").and_then(|s| s.get("containerStatuses")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::Malformed(
                "status.containerStatuses is not a list".into(),
            ));
        }
    };
    let mut names = Vec::new();
    for cs in list {
        let bad = || Error::Malformed("malformed entry in status.containerStatuses".into());
        let cs = cs.as_object().ok_or_else(bad)?;
        let Some(name) = cs.get("name") else { continue };
        let name = name.as_str().ok_or_else(bad)?;
        let Some(state) = cs.get("state") else {
            continue;
        };
        let Some(waiting) = state.as_object().ok_or_else(bad)?.get("waiting") else {
            continue;
        };
        let Some(reason) = waiting.as_object().ok_or_else(bad)?.get("reason") else {
            continue;
        };
        if reason.as_str().ok_or_else(bad)? == "CrashLoopBackOff" {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn pdb(_: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    Ok(current("AllowedDisruptions has been computed."))
}

fn job(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    let parallelism = int_field(obj, &["spec", "parallelism"], 1);
    let completions = int_field(obj, &["spec", "completions"], parallelism);
    let succeeded = int_field(obj, &["status", "succeeded"], 0);
    let active = int_field(obj, &["status", "active"], 0);
    let failed_count = int_field(obj, &["status", "failed"], 0);
    let start_time = str_field(obj, &["status", "startTime"], "");

    for c in conditions(obj)? {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => {
                return Ok(current(format!(
                    "Job Completed. succeeded: {succeeded}/{completions}"
                )));
            }
            "Failed" => {
                return Ok(failed(
                    "JobFailed",
                    format!("Job Failed. failed: {failed_count}/{completions}"),
                ));
            }
            "Suspended" => return Ok(current("Job is suspended")),
            _ => {}
        }
    }

    if start_time.is_empty() {
        return Ok(in_progress("JobNotStarted", "Job not started"));
    }
    Ok(current(format!(
        "Job in progress. success:{succeeded}, active: {active}, failed: {failed_count}"
    )))
}

/// Flux's Job rule (`fluxcd/pkg/runtime/statusreaders`): a Job is only
/// Current once it has completed.
fn flux_job(obj: &Value) -> Result<StatusResult, Error> {
    let parallelism = int_field(obj, &["spec", "parallelism"], 1);
    let completions = int_field(obj, &["spec", "completions"], parallelism);
    let succeeded = int_field(obj, &["status", "succeeded"], 0);
    let failed_count = int_field(obj, &["status", "failed"], 0);

    for c in conditions(obj)? {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => {
                return Ok(current(format!(
                    "Job Completed. succeeded: {succeeded}/{completions}"
                )));
            }
            "Failed" => {
                return Ok(failed(
                    "JobFailed",
                    format!("Job Failed. failed: {failed_count}/{completions}"),
                ));
            }
            _ => {}
        }
    }
    Ok(in_progress("JobInProgress", "Job in progress"))
}

/// Service: kstatus only checks that a LoadBalancer has a cluster IP; it
/// does not wait for `status.loadBalancer.ingress`.
fn service(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    let spec_type = str_field(obj, &["spec", "type"], "ClusterIP");
    let cluster_ip = str_field(obj, &["spec", "clusterIP"], "");
    if spec_type == "LoadBalancer" && cluster_ip.is_empty() {
        return Ok(in_progress(
            "NoIPAssigned",
            "ClusterIP not set. Service type: LoadBalancer",
        ));
    }
    Ok(current("Service is ready"))
}

fn crd(obj: &Value, _: &ComputeOptions) -> Result<StatusResult, Error> {
    for c in conditions(obj)? {
        if c.type_ == "NamesAccepted" && c.status == "False" {
            return Ok(failed(&c.reason, c.message));
        }
        if c.type_ == "Established" {
            if c.status == "False" && c.reason != "Installing" {
                return Ok(failed(&c.reason, c.message));
            }
            if c.status == "True" {
                return Ok(current("CRD is established"));
            }
        }
    }
    Ok(in_progress("Installing", "Install in progress"))
}
