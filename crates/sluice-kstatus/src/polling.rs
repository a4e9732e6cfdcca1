//! What kstatus' *polling* readers report, as opposed to `status.Compute`.
//!
//! Flux's health checks go through `polling.StatusPoller`, whose default
//! readers for `apps` ReplicaSets and StatefulSets also look at the Pods
//! they select: when the object itself is InProgress and at least one of
//! those Pods is Failed, the object is reported Failed with
//! "N pods have failed". Deployments are read with plain `Compute` (their
//! ReplicaSets are only attached as generated resources). All three need
//! a `spec.selector` to find what they generated.

use serde_json::Value;

use crate::fields::{group, kind, nested};
use crate::{ComputeOptions, Status, StatusResult, compute_or_unknown};

/// The status a kstatus poller reports for `obj`, given the Pods selected
/// by its `spec.selector` (the caller lists them). Errors are reported as
/// [`Status::Unknown`], as the poller does.
pub fn compute_with_pods(obj: &Value, pods: &[Value], opts: &ComputeOptions) -> StatusResult {
    let (is_pod_controller, needs_selector) = match (group(obj), kind(obj)) {
        ("apps", "ReplicaSet" | "StatefulSet") => (true, true),
        ("apps", "Deployment") => (false, true),
        _ => (false, false),
    };
    if needs_selector && !nested(obj, &["spec", "selector"]).is_some_and(Value::is_object) {
        return StatusResult {
            status: Status::Unknown,
            message: "no selector found".into(),
            conditions: Vec::new(),
        };
    }
    let res = compute_or_unknown(obj, opts);
    if !is_pod_controller || res.status != Status::InProgress {
        return res;
    }
    let failed = pods
        .iter()
        .filter(|p| compute_or_unknown(p, opts).status == Status::Failed)
        .count();
    if failed == 0 {
        return res;
    }
    StatusResult {
        status: Status::Failed,
        message: format!("{failed} pods have failed"),
        conditions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_795_298_400;

    fn crashing(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "status": {"phase": "Running", "containerStatuses": [
                   {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    }

    fn ready(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn table() {
        let sel = json!({"matchLabels": {"app": "x"}});
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": 2, "selector": sel},
                         "status": {"replicas": 2, "readyReplicas": 1}});
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"replicas": 2, "selector": sel},
                        "status": {"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 1}});
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2, "selector": sel},
                            "status": {"replicas": 1}});
        let no_selector = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": 1}, "status": {}});
        let unschedulable_old = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "u", "creationTimestamp": "2026-11-21T21:00:00Z"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
        let broken_pod = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Bogus"}});

        let cases: Vec<(&str, &Value, Vec<Value>, Status, &str)> = vec![
            (
                "sts with crashing pod",
                &sts,
                vec![ready("a"), crashing("b")],
                Status::Failed,
                "1 pods have failed",
            ),
            (
                "sts pods fine",
                &sts,
                vec![ready("a")],
                Status::InProgress,
                "Ready: 1/2",
            ),
            (
                "rs with two failed pods",
                &rs,
                vec![crashing("a"), unschedulable_old],
                Status::Failed,
                "2 pods have failed",
            ),
            (
                "unknown pods do not count",
                &rs,
                vec![broken_pod],
                Status::InProgress,
                "Available: 1/2",
            ),
            (
                "deployment is not escalated",
                &deploy,
                vec![crashing("a")],
                Status::InProgress,
                "Replicas: 1/2",
            ),
            (
                "selector required",
                &no_selector,
                vec![],
                Status::Unknown,
                "no selector found",
            ),
        ];
        let opts = ComputeOptions {
            now: Some(NOW),
            ..ComputeOptions::flux()
        };
        for (name, obj, pods, status, message) in cases {
            let got = compute_with_pods(obj, &pods, &opts);
            assert_eq!(
                (got.status, got.message.as_str()),
                (status, message),
                "{name}"
            );
        }

        // Current objects are not downgraded by failed pods.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(
            compute_with_pods(&cm, &[crashing("a")], &opts).status,
            Status::Current
        );
    }
}
