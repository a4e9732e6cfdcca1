use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

fn opts() -> ComputeOptions {
    ComputeOptions {
        now: Some(NOW),
        ..ComputeOptions::default()
    }
}

fn check(cases: &[(&str, Value, Status, &str)]) {
    for (name, obj, status, message) in cases {
        let got = compute_with(obj, &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (got.status, got.message.as_str()),
            (*status, *message),
            "case {name}"
        );
    }
}

fn deploy(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns", "generation": 1},
        "spec": spec, "status": status,
    })
}

#[test]
fn generic_rules() {
    use Status::*;
    check(&[
        (
            "deletion wins over everything",
            json!({"kind": "Deployment", "apiVersion": "apps/v1",
                   "metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "generation": 2},
                   "status": {"observedGeneration": 1}}),
            Terminating,
            "Resource scheduled for deletion",
        ),
        (
            "empty deletionTimestamp ignored",
            json!({"kind": "Thing", "apiVersion": "x.io/v1", "metadata": {"deletionTimestamp": ""}}),
            Current,
            "Resource is current",
        ),
        (
            "generation not observed",
            json!({"kind": "Kustomization", "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                   "metadata": {"generation": 3}, "status": {"observedGeneration": 2}}),
            InProgress,
            "Kustomization generation is 3, but latest observed generation is 2",
        ),
        (
            "no observedGeneration skips check",
            json!({"kind": "Thing", "apiVersion": "x.io/v1", "metadata": {"generation": 3}, "status": {}}),
            Current,
            "Resource is current",
        ),
        (
            "no status",
            json!({"kind": "Thing", "apiVersion": "x.io/v1", "metadata": {"name": "a"}}),
            Current,
            "Resource is current",
        ),
        (
            "reconciling",
            json!({"kind": "HelmRelease", "apiVersion": "helm.toolkit.fluxcd.io/v2",
                   "metadata": {"generation": 1},
                   "status": {"observedGeneration": 1, "conditions": [
                       {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Reconciliation in progress"},
                       {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "Running 'install' action"}]}}),
            InProgress,
            "Running 'install' action",
        ),
        (
            "stalled",
            json!({"kind": "Kustomization", "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                   "status": {"conditions": [
                       {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "kustomize build failed"},
                       {"type": "Stalled", "status": "True", "reason": "BuildFailed", "message": "kustomize build failed"}]}}),
            Failed,
            "kustomize build failed",
        ),
        (
            "first of reconciling/stalled wins",
            json!({"kind": "X", "apiVersion": "x/v1", "status": {"conditions": [
                {"type": "Stalled", "status": "True", "message": "stalled"},
                {"type": "Reconciling", "status": "True", "message": "reconciling"}]}}),
            Failed,
            "stalled",
        ),
        (
            "false conditions ignored; Ready=False alone is Current in kstatus",
            json!({"kind": "Kustomization", "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                   "status": {"conditions": [
                       {"type": "Reconciling", "status": "False"},
                       {"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "message": "timeout"}]}}),
            Current,
            "Resource is current",
        ),
        (
            "generic conditions override kind rules",
            deploy(
                json!({"replicas": 3}),
                json!({"observedGeneration": 1, "conditions": [
                {"type": "Reconciling", "status": "True", "reason": "X", "message": "custom"}]}),
            ),
            InProgress,
            "custom",
        ),
        (
            "core group kinds need empty group",
            json!({"apiVersion": "example.com/v1", "kind": "Pod", "status": {"phase": "Pending"}}),
            Current,
            "Resource is current",
        ),
    ]);
}

#[test]
fn ready_condition_extension() {
    let with_ready = ComputeOptions {
        now: Some(NOW),
        ready_condition: true,
        ..ComputeOptions::default()
    };
    let cases: &[(Value, Status, &str)] = &[
        (
            json!({"kind": "Kustomization", "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                   "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "message": "timeout waiting for: [Deployment/apps/memos status: 'InProgress']"}]}}),
            Status::Failed,
            "timeout waiting for: [Deployment/apps/memos status: 'InProgress']",
        ),
        (
            json!({"kind": "GitRepository", "apiVersion": "source.toolkit.fluxcd.io/v1",
                   "status": {"conditions": [{"type": "Ready", "status": "True", "message": "stored artifact"}]}}),
            Status::Current,
            "stored artifact",
        ),
        (
            json!({"kind": "X", "apiVersion": "x/v1", "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
            Status::InProgress,
            "Resource readiness is unknown",
        ),
        (
            json!({"kind": "X", "apiVersion": "x/v1"}),
            Status::Current,
            "Resource is current",
        ),
        // Kind rules still win.
        (
            json!({"kind": "ConfigMap", "apiVersion": "v1", "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            Status::Current,
            "Resource is always ready",
        ),
    ];
    for (obj, status, message) in cases {
        let got = compute_with(obj, &with_ready).expect("computes");
        assert_eq!(
            (got.status, got.message.as_str()),
            (*status, *message),
            "{obj}"
        );
    }
}

#[test]
fn deployment_rules() {
    use Status::*;
    let ok_conds = json!([
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    ]);
    let full = |n: i64| json!({"observedGeneration": 1, "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n, "conditions": ok_conds});
    check(&[
        (
            "available",
            deploy(json!({"replicas": 2}), full(2)),
            Current,
            "Deployment is available. Replicas: 2",
        ),
        (
            "default replicas 1",
            deploy(json!({}), full(1)),
            Current,
            "Deployment is available. Replicas: 1",
        ),
        (
            "too few replicas",
            deploy(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "replicas": 1}),
            ),
            InProgress,
            "Replicas: 1/2",
        ),
        (
            "too few updated",
            deploy(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1}),
            ),
            InProgress,
            "Updated: 1/2",
        ),
        (
            "extra pods",
            deploy(
                json!({"replicas": 1}),
                json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1}),
            ),
            InProgress,
            "Pending termination: 2",
        ),
        (
            "too few available",
            deploy(
                json!({"replicas": 1}),
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}),
            ),
            InProgress,
            "Available: 0/1",
        ),
        (
            "too few ready",
            deploy(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 1}),
            ),
            InProgress,
            "Ready: 1/2",
        ),
        (
            "deadline exceeded beats counters",
            deploy(
                json!({"replicas": 2, "progressDeadlineSeconds": 600}),
                json!({"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"d-1\" has timed out progressing."}]}),
            ),
            Failed,
            "Progress deadline exceeded",
        ),
        (
            "progressing not confirmed",
            deploy(
                json!({"replicas": 1, "progressDeadlineSeconds": 600}),
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}),
            ),
            InProgress,
            "ReplicaSet not Available",
        ),
        (
            "no deadline means progressing; not available",
            deploy(
                json!({"replicas": 1}),
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "conditions": [
                {"type": "Available", "status": "False"}]}),
            ),
            InProgress,
            "Deployment not Available",
        ),
        (
            "zero replicas",
            deploy(
                json!({"replicas": 0}),
                json!({"observedGeneration": 1, "conditions": ok_conds}),
            ),
            Current,
            "Deployment is available. Replicas: 0",
        ),
        (
            "extensions group",
            json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "spec": {"replicas": 1}, "status": {}}),
            InProgress,
            "Replicas: 0/1",
        ),
    ]);
    let res = compute_with(
        &deploy(json!({"progressDeadlineSeconds": 60}), json!({"conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]})),
        &opts(),
    )
    .expect("computes");
    assert_eq!(
        res.conditions,
        vec![Condition {
            type_: "Stalled".into(),
            status: "True".into(),
            reason: "ProgressDeadlineExceeded".into(),
            message: "timed out".into()
        }]
    );
}

fn sts(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}, "spec": spec, "status": status})
}

#[test]
fn statefulset_rules() {
    use Status::*;
    let all = |n: i64, cur: &str, upd: &str| json!({"replicas": n, "readyReplicas": n, "currentReplicas": n, "updatedReplicas": n, "currentRevision": cur, "updateRevision": upd});
    check(&[
        (
            "ondelete",
            sts(
                json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}),
                json!({}),
            ),
            Current,
            "StatefulSet is using the ondelete update strategy",
        ),
        (
            "ok",
            sts(json!({"replicas": 2}), all(2, "r1", "r1")),
            Current,
            "All replicas scheduled as expected. Replicas: 2",
        ),
        (
            "too few",
            sts(json!({"replicas": 2}), json!({"replicas": 1})),
            InProgress,
            "Replicas: 1/2",
        ),
        (
            "not ready",
            sts(
                json!({"replicas": 2}),
                json!({"replicas": 2, "readyReplicas": 1}),
            ),
            InProgress,
            "Ready: 1/2",
        ),
        (
            "extra",
            sts(
                json!({"replicas": 1}),
                json!({"replicas": 2, "readyReplicas": 2}),
            ),
            InProgress,
            "Pending termination: 1",
        ),
        (
            "partition rolling",
            sts(
                json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                json!({"replicas": 4, "readyReplicas": 4, "updatedReplicas": 1}),
            ),
            InProgress,
            "updated: 1/2",
        ),
        (
            "partition done",
            sts(
                json!({"replicas": 4, "updateStrategy": {"rollingUpdate": {"partition": 2}}}),
                json!({"replicas": 4, "readyReplicas": 4, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "b"}),
            ),
            Current,
            "Partition rollout complete. updated: 2",
        ),
        (
            "less current",
            sts(
                json!({"replicas": 2}),
                json!({"replicas": 2, "readyReplicas": 2, "currentReplicas": 1}),
            ),
            InProgress,
            "current: 1/2",
        ),
        (
            "revision mismatch",
            sts(json!({"replicas": 2}), all(2, "r1", "r2")),
            InProgress,
            "Waiting for updated revision to match current",
        ),
    ]);
}

fn ds(meta: Value, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta, "status": status})
}

#[test]
fn daemonset_rules() {
    use Status::*;
    let g = json!({"generation": 1});
    check(&[
        (
            "no generation",
            ds(json!({}), json!({"observedGeneration": 1})),
            InProgress,
            "DaemonSet metadata.generation not found",
        ),
        (
            "no observed",
            ds(g.clone(), json!({})),
            InProgress,
            "DaemonSet status.observedGeneration not found",
        ),
        (
            "no desired",
            ds(g.clone(), json!({"observedGeneration": 1})),
            InProgress,
            "Missing .status.desiredNumberScheduled",
        ),
        (
            "less current",
            ds(
                g.clone(),
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 2}),
            ),
            InProgress,
            "Current: 2/3",
        ),
        (
            "less updated",
            ds(
                g.clone(),
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 1}),
            ),
            InProgress,
            "Updated: 1/3",
        ),
        (
            "less available",
            ds(
                g.clone(),
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}),
            ),
            InProgress,
            "Available: 2/3",
        ),
        (
            "less ready",
            ds(
                g.clone(),
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 0}),
            ),
            InProgress,
            "Ready: 0/3",
        ),
        (
            "ok",
            ds(
                g.clone(),
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 3}),
            ),
            Current,
            "All replicas scheduled as expected. Replicas: 3",
        ),
        (
            "generation mismatch handled generically",
            ds(json!({"generation": 2}), json!({"observedGeneration": 1})),
            InProgress,
            "DaemonSet generation is 2, but latest observed generation is 1",
        ),
    ]);
}

#[test]
fn replicaset_rules() {
    use Status::*;
    let rs = |spec: Value, status: Value| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": spec, "status": status});
    check(&[
        (
            "failure",
            rs(
                json!({"replicas": 1}),
                json!({"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]}),
            ),
            InProgress,
            "Replica Failure condition. Check Pods",
        ),
        (
            "labelled",
            rs(json!({"replicas": 2}), json!({"fullyLabeledReplicas": 1})),
            InProgress,
            "Labelled: 1/2",
        ),
        (
            "available",
            rs(
                json!({"replicas": 2}),
                json!({"fullyLabeledReplicas": 2, "availableReplicas": 1}),
            ),
            InProgress,
            "Available: 1/2",
        ),
        (
            "ready",
            rs(
                json!({"replicas": 2}),
                json!({"fullyLabeledReplicas": 2, "availableReplicas": 2, "readyReplicas": 1}),
            ),
            InProgress,
            "Ready: 1/2",
        ),
        (
            "extra",
            rs(
                json!({"replicas": 2}),
                json!({"replicas": 3, "fullyLabeledReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
            ),
            InProgress,
            "Pending termination: 1",
        ),
        (
            "ok",
            rs(
                json!({"replicas": 2}),
                json!({"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
            ),
            Current,
            "ReplicaSet is available. Replicas: 2",
        ),
    ]);
}

#[test]
fn job_rules() {
    use Status::*;
    let job = |spec: Value, status: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "spec": spec, "status": status});
    check(&[
        (
            "not started",
            job(json!({}), json!({})),
            InProgress,
            "Job not started",
        ),
        (
            "running",
            job(
                json!({"completions": 3}),
                json!({"startTime": "2024-01-01T00:00:00Z", "active": 1, "succeeded": 1}),
            ),
            Current,
            "Job in progress. success:1, active: 1, failed: 0",
        ),
        (
            "complete",
            job(
                json!({"completions": 3}),
                json!({"succeeded": 3, "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
            Current,
            "Job Completed. succeeded: 3/3",
        ),
        (
            "completions default to parallelism",
            job(
                json!({"parallelism": 2}),
                json!({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
            Current,
            "Job Completed. succeeded: 2/2",
        ),
        (
            "failed",
            job(
                json!({}),
                json!({"failed": 6, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}),
            ),
            Failed,
            "Job Failed. failed: 6/1",
        ),
        (
            "suspended",
            job(
                json!({}),
                json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
            ),
            Current,
            "Job is suspended",
        ),
        (
            "false conditions ignored",
            job(
                json!({}),
                json!({"conditions": [{"type": "Failed", "status": "False"}]}),
            ),
            InProgress,
            "Job not started",
        ),
    ]);
}

#[test]
fn flux_job_profile() {
    use Status::*;
    let job = |meta: Value, spec: Value, status: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec, "status": status});
    let flux = ComputeOptions {
        now: Some(NOW),
        ..ComputeOptions::flux()
    };
    let started = json!({"startTime": "2024-01-01T00:00:00Z", "active": 1});
    let cases: Vec<(&str, Value, Status, &str, Status, &str)> = vec![
        (
            "running job",
            job(json!({}), json!({}), started.clone()),
            InProgress,
            "Job in progress",
            Current,
            "Job in progress. success:0, active: 1, failed: 0",
        ),
        (
            "complete",
            job(
                json!({}),
                json!({"completions": 2}),
                json!({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
            Current,
            "Job Completed. succeeded: 2/2",
            Current,
            "Job Completed. succeeded: 2/2",
        ),
        (
            "failed",
            job(
                json!({}),
                json!({}),
                json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}),
            ),
            Failed,
            "Job Failed. failed: 1/1",
            Failed,
            "Job Failed. failed: 1/1",
        ),
        (
            "suspended is still in progress for Flux",
            job(
                json!({}),
                json!({}),
                json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
            ),
            InProgress,
            "Job in progress",
            Current,
            "Job is suspended",
        ),
        (
            "generic checks are skipped for Flux",
            job(
                json!({"deletionTimestamp": "2024-01-01T00:00:00Z", "generation": 2}),
                json!({}),
                json!({"observedGeneration": 1}),
            ),
            InProgress,
            "Job in progress",
            Terminating,
            "Resource scheduled for deletion",
        ),
    ];
    for (name, obj, flux_status, flux_msg, ks_status, ks_msg) in cases {
        let f = compute_with(&obj, &flux).expect(name);
        assert_eq!(
            (f.status, f.message.as_str()),
            (flux_status, flux_msg),
            "flux: {name}"
        );
        let k = compute_with(&obj, &opts()).expect(name);
        assert_eq!(
            (k.status, k.message.as_str()),
            (ks_status, ks_msg),
            "kstatus: {name}"
        );
    }
    // Other kinds are unaffected by the profile.
    let d = deploy(json!({"replicas": 1}), json!({}));
    assert_eq!(compute_with(&d, &flux), compute_with(&d, &opts()));
}

fn pod(status: Value, created: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "creationTimestamp": created}, "status": status})
}

#[test]
fn pod_rules() {
    use Status::*;
    let old = "2023-11-14T22:00:00Z";
    let fresh = "2023-11-14T22:13:10Z"; // 10s before NOW
    let unsched = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available"}]});
    check(&[
        (
            "succeeded",
            pod(json!({"phase": "Succeeded"}), old),
            Current,
            "Pod has completed successfully",
        ),
        (
            "failed",
            pod(json!({"phase": "Failed"}), old),
            Current,
            "Pod has completed, but not successfully",
        ),
        (
            "ready",
            pod(
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
                old,
            ),
            Current,
            "Pod is Ready",
        ),
        (
            "crashloop",
            pod(
                json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"name": "b", "state": {"running": {}}},
                {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
                old,
            ),
            Failed,
            "Containers in CrashLoop state: a,c",
        ),
        (
            "image pull backoff is only in progress for kstatus",
            pod(
                json!({"phase": "Pending", "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
                old,
            ),
            InProgress,
            "Pod is in the Pending phase",
        ),
        (
            "running not ready",
            pod(
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
                old,
            ),
            InProgress,
            "Pod is running but is not Ready",
        ),
        (
            "unschedulable",
            pod(unsched.clone(), old),
            Failed,
            "Pod could not be scheduled",
        ),
        (
            "unschedulable within window",
            pod(unsched.clone(), fresh),
            InProgress,
            "Pod has not been scheduled",
        ),
        (
            "unschedulable without timestamp",
            json!({"apiVersion": "v1", "kind": "Pod", "status": unsched}),
            Failed,
            "Pod could not be scheduled",
        ),
        (
            "pending",
            pod(json!({"phase": "Pending"}), old),
            InProgress,
            "Pod is in the Pending phase",
        ),
        (
            "no phase",
            pod(json!({}), old),
            InProgress,
            "Pod phase not available",
        ),
    ]);
    let err =
        compute_with(&pod(json!({"phase": "Weird"}), old), &opts()).expect_err("unknown phase");
    assert_eq!(err, Error::UnknownPodPhase("Weird".into()));
    assert_eq!(
        compute_or_unknown(&pod(json!({"phase": "Weird"}), old), &opts()).status,
        Status::Unknown
    );
}

#[test]
fn other_kinds() {
    use Status::*;
    check(&[
        (
            "pvc bound",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}),
            Current,
            "PVC is Bound",
        ),
        (
            "pvc pending",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}),
            InProgress,
            "PVC is not Bound. phase: Pending",
        ),
        (
            "pvc no status",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim"}),
            InProgress,
            "PVC is not Bound. phase: unknown",
        ),
        (
            "service",
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"clusterIP": "10.0.0.1"}}),
            Current,
            "Service is ready",
        ),
        (
            "lb without ip",
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}}),
            InProgress,
            "ClusterIP not set. Service type: LoadBalancer",
        ),
        (
            "lb without ingress is ready",
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1"}, "status": {"loadBalancer": {}}}),
            Current,
            "Service is ready",
        ),
        (
            "configmap",
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            Current,
            "Resource is always ready",
        ),
        (
            "secret",
            json!({"apiVersion": "v1", "kind": "Secret"}),
            Current,
            "Resource is always ready",
        ),
        (
            "cronjob",
            json!({"apiVersion": "batch/v1", "kind": "CronJob"}),
            Current,
            "Resource is always ready",
        ),
        (
            "pdb",
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"generation": 1}, "status": {"observedGeneration": 1}}),
            Current,
            "AllowedDisruptions has been computed.",
        ),
        (
            "crd installing",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "False", "reason": "Installing"}]}}),
            InProgress,
            "Install in progress",
        ),
        (
            "crd established",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}}),
            Current,
            "CRD is established",
        ),
        (
            "crd names rejected",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "NamesAccepted", "status": "False", "reason": "MultipleNamesNotAllowed", "message": "\"x\" is already in use"}]}}),
            Failed,
            "\"x\" is already in use",
        ),
        (
            "crd not established",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "False", "reason": "NotEstablished", "message": "nope"}]}}),
            Failed,
            "nope",
        ),
        (
            "crd no status",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}),
            InProgress,
            "Install in progress",
        ),
    ]);
}

#[test]
fn malformed_objects_are_errors_not_panics() {
    let cases = [
        json!(null),
        json!([1, 2]),
        json!({"kind": "X", "metadata": {"deletionTimestamp": 5}}),
        json!({"kind": "X", "metadata": {"generation": "1"}, "status": {"observedGeneration": 1}}),
        json!({"kind": "X", "metadata": {"generation": 1}, "status": {"observedGeneration": 1.5}}),
        json!({"kind": "X", "status": {"conditions": "Ready"}}),
        json!({"kind": "Pod", "apiVersion": "v1", "status": {"phase": "Running", "containerStatuses": [1]}}),
        json!({"kind": "Pod", "apiVersion": "v1", "status": {"phase": "Running", "containerStatuses": [{"name": 1}]}}),
        json!({"kind": "Pod", "apiVersion": "v1", "status": {"phase": "Running", "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": 3}}}]}}),
    ];
    for obj in cases {
        assert!(compute(&obj).is_err(), "{obj}");
        assert_eq!(compute_or_unknown(&obj, &opts()).status, Status::Unknown);
    }
    // Wrong types in lenient fields just fall back to defaults.
    let lenient = deploy(json!({"replicas": "two"}), json!({"replicas": "x"}));
    assert_eq!(
        compute(&lenient).map(|r| r.message),
        Ok("Replicas: 0/1".into())
    );
}

#[test]
fn status_strings_round_trip() {
    for s in [
        Status::InProgress,
        Status::Failed,
        Status::Current,
        Status::Terminating,
        Status::NotFound,
        Status::Unknown,
    ] {
        assert_eq!(s.to_string().parse::<Status>(), Ok(s));
    }
    assert!("Ready".parse::<Status>().is_err());
    assert_eq!(not_found().status, Status::NotFound);
}

#[test]
fn extreme_integers_do_not_overflow() {
    let min = i64::MIN;
    let objs = [
        deploy(
            json!({"replicas": min}),
            json!({"replicas": 1, "updatedReplicas": 1}),
        ),
        sts(
            json!({"replicas": min}),
            json!({"replicas": 1, "readyReplicas": 1}),
        ),
        sts(
            json!({"replicas": 1, "updateStrategy": {"rollingUpdate": {"partition": min}}}),
            json!({"replicas": 1, "readyReplicas": 1}),
        ),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"replicas": min},
               "status": {"replicas": i64::MAX}}),
    ];
    // Go's int arithmetic wraps; the only requirement here is no panic.
    for obj in objs {
        assert!(compute(&obj).is_ok(), "{obj}");
    }
    let unsched = pod(
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
        "2023-11-14T22:00:00Z",
    );
    let opts = ComputeOptions {
        now: Some(i64::MIN),
        ..ComputeOptions::default()
    };
    assert_eq!(
        compute_with(&unsched, &opts).map(|r| r.status),
        Ok(Status::InProgress)
    );
}

/// Every field the rules read, set to values of every JSON type, for every
/// kind: computing and explaining must never panic.
#[test]
fn fuzz_field_types_no_panic() {
    let kinds = [
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("v1", "Pod"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Service"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("policy/v1", "PodDisruptionBudget"),
        ("x.io/v1", "Custom"),
    ];
    let paths: &[&[&str]] = &[
        &["metadata", "deletionTimestamp"],
        &["metadata", "generation"],
        &["metadata", "creationTimestamp"],
        &["status", "observedGeneration"],
        &["status", "conditions"],
        &["status", "phase"],
        &["status", "replicas"],
        &["status", "containerStatuses"],
        &["status", "initContainerStatuses"],
        &["spec", "replicas"],
        &["spec", "volumes"],
        &["spec", "updateStrategy"],
        &["spec", "type"],
        &["status"],
        &["spec"],
        &["metadata"],
    ];
    let values = [
        json!(null),
        json!(true),
        json!(-1),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!("x"),
        json!(""),
        json!([]),
        json!([null, 1, "a", {"type": 1}, {"type": "Ready", "status": "False"}, {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
        json!({}),
        json!({"waiting": 1, "type": "OnDelete", "rollingUpdate": {"partition": "p"}}),
    ];
    let opts = ComputeOptions {
        now: Some(NOW),
        ready_condition: true,
        ..ComputeOptions::flux()
    };
    for (api_version, kind) in kinds {
        for path in paths {
            for v in &values {
                let mut obj =
                    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "n"}});
                let mut cur = &mut obj;
                for (i, key) in path.iter().enumerate() {
                    let Some(map) = cur.as_object_mut() else {
                        break;
                    };
                    if i + 1 == path.len() {
                        map.insert((*key).to_string(), v.clone());
                        break;
                    }
                    cur = map.entry((*key).to_string()).or_insert_with(|| json!({}));
                }
                let _ = compute_with(&obj, &opts);
                let _ = compute_with_pods(&obj, std::slice::from_ref(&obj), &opts);
                let pods = vec![obj.clone()];
                let input = ExplainInput {
                    pods: &pods,
                    pvcs: Some(&pods),
                    storage_classes: Some(&pods),
                    events: &pods,
                    now: Some(NOW),
                    workload: &obj,
                };
                let chain = explain(&input);
                assert!(!chain.is_empty());
            }
        }
    }
}
