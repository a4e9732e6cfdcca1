use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_795_298_400; // 2026-11-21T22:00:00Z

fn fixture(name: &str) -> Value {
    let text = match name {
        "deployment-memos" => include_str!("../testdata/deployment-memos.json"),
        "deployment-web" => include_str!("../testdata/deployment-web.json"),
        "pod-memos-unschedulable" => include_str!("../testdata/pod-memos-unschedulable.json"),
        "pod-imagepull" => include_str!("../testdata/pod-imagepull.json"),
        "pod-crashloop" => include_str!("../testdata/pod-crashloop.json"),
        "pod-ready" => include_str!("../testdata/pod-ready.json"),
        "pvc-memos-data-pending" => include_str!("../testdata/pvc-memos-data-pending.json"),
        "storageclasses" => include_str!("../testdata/storageclasses.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}

fn step(kind: &str, ns: Option<&str>, name: &str, message: &str, missing: bool) -> CauseStep {
    CauseStep {
        object: ObjectRef::new(kind, ns, name),
        message: message.to_owned(),
        missing,
    }
}

const UNSCHEDULABLE: &str = "Pending: Unschedulable (0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.)";

#[test]
fn unschedulable_pod_with_missing_storage_class() {
    let deploy = fixture("deployment-memos");
    let pods = vec![fixture("pod-memos-unschedulable")];
    let pvcs = vec![fixture("pvc-memos-data-pending")];
    let classes = list(fixture("storageclasses"));
    let input = ExplainInput {
        pods: &pods,
        pvcs: Some(&pvcs),
        storage_classes: Some(&classes),
        now: Some(NOW),
        ..ExplainInput::new(&deploy)
    };
    let chain = explain(&input);
    assert_eq!(
        chain,
        vec![
            step("Deployment", Some("apps"), "memos", "0/1 available", false),
            step(
                "Pod",
                Some("apps"),
                "memos-6c9f8d7b5-x2k4p",
                UNSCHEDULABLE,
                false
            ),
            step(
                "PersistentVolumeClaim",
                Some("apps"),
                "memos-data",
                "unbound (phase Pending)",
                false
            ),
            step(
                "StorageClass",
                None,
                "local-hostpath",
                "does not exist",
                true
            ),
        ]
    );
    assert_eq!(
        render_chain(&chain),
        format!(
            "Deployment apps/memos 0/1 available → Pod memos-6c9f8d7b5-x2k4p {UNSCHEDULABLE} → PVC memos-data unbound (phase Pending) → StorageClass \"local-hostpath\" does not exist"
        )
    );
}

#[test]
fn chain_stops_where_data_ends() {
    let deploy = fixture("deployment-memos");
    let pods = vec![fixture("pod-memos-unschedulable")];
    let pvcs = vec![fixture("pvc-memos-data-pending")];
    let classes = list(fixture("storageclasses"));

    // Nothing but the workload.
    let input = ExplainInput {
        now: Some(NOW),
        ..ExplainInput::new(&deploy)
    };
    assert_eq!(explain(&input).len(), 1);

    // Pods, but PVCs not fetched: stop at the pod.
    let input = ExplainInput {
        pods: &pods,
        now: Some(NOW),
        ..ExplainInput::new(&deploy)
    };
    assert_eq!(explain(&input).len(), 2);

    // PVCs fetched but StorageClasses not: stop at the claim.
    let input = ExplainInput {
        pods: &pods,
        pvcs: Some(&pvcs),
        now: Some(NOW),
        ..ExplainInput::new(&deploy)
    };
    assert_eq!(explain(&input).len(), 3);

    // The claim does not exist at all.
    let input = ExplainInput {
        pods: &pods,
        pvcs: Some(&[]),
        storage_classes: Some(&classes),
        now: Some(NOW),
        ..ExplainInput::new(&deploy)
    };
    let chain = explain(&input);
    assert_eq!(
        chain[2],
        step(
            "PersistentVolumeClaim",
            Some("apps"),
            "memos-data",
            "not found",
            true
        )
    );
    assert_eq!(chain.len(), 3);
    assert!(render_chain(&chain).ends_with("→ PVC \"memos-data\" not found"));
}

#[test]
fn storage_class_variants() {
    let deploy = fixture("deployment-memos");
    let pods = vec![fixture("pod-memos-unschedulable")];
    let default_classes = list(fixture("storageclasses"));
    let no_default = vec![json!({"kind": "StorageClass", "metadata": {"name": "local-path"}})];
    let mut pvc = fixture("pvc-memos-data-pending");

    let run = |pvc: &Value, classes: &[Value]| {
        let pvcs = vec![pvc.clone()];
        let input = ExplainInput {
            pods: &pods,
            pvcs: Some(&pvcs),
            storage_classes: Some(classes),
            now: Some(NOW),
            ..ExplainInput::new(&deploy)
        };
        explain(&input)
    };

    // Class exists: the chain ends at the claim.
    pvc["spec"]["storageClassName"] = json!("local-path");
    assert_eq!(run(&pvc, &default_classes).len(), 3);

    // No class requested, a default exists.
    pvc["spec"]
        .as_object_mut()
        .map(|s| s.remove("storageClassName"));
    assert_eq!(run(&pvc, &default_classes).len(), 3);

    // No class requested and no default.
    let chain = run(&pvc, &no_default);
    assert_eq!(
        chain.last(),
        Some(&step(
            "StorageClass",
            None,
            "(default)",
            "is not set: the claim names no StorageClass and none is marked default",
            true
        ))
    );

    // Legacy annotation names the class.
    pvc["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "gone"});
    assert_eq!(
        run(&pvc, &default_classes)
            .last()
            .map(|s| s.object.name.as_str()),
        Some("gone")
    );

    // Explicitly empty class: explained on the claim step.
    pvc["spec"]["storageClassName"] = json!("");
    let chain = run(&pvc, &default_classes);
    assert_eq!(chain.len(), 3);
    assert!(
        chain[2]
            .message
            .contains("pre-provisioned PersistentVolume"),
        "{}",
        chain[2].message
    );
}

#[test]
fn pvc_events_are_used() {
    let deploy = fixture("deployment-memos");
    let pods = vec![fixture("pod-memos-unschedulable")];
    let pvcs = vec![fixture("pvc-memos-data-pending")];
    let events = vec![
        json!({"kind": "Event", "type": "Normal", "reason": "ExternalProvisioning", "message": "Waiting for a volume to be created",
               "involvedObject": {"kind": "PersistentVolumeClaim", "name": "memos-data", "namespace": "apps"},
               "lastTimestamp": "2026-11-21T21:45:00Z"}),
        json!({"kind": "Event", "type": "Warning", "reason": "ProvisioningFailed", "message": "storageclass.storage.k8s.io \"local-hostpath\" not found",
               "involvedObject": {"kind": "PersistentVolumeClaim", "name": "memos-data", "namespace": "apps"},
               "lastTimestamp": "2026-11-21T21:41:00Z"}),
        json!({"kind": "Event", "type": "Warning", "reason": "ProvisioningFailed", "message": "about another claim",
               "involvedObject": {"kind": "PersistentVolumeClaim", "name": "other", "namespace": "apps"},
               "lastTimestamp": "2026-11-21T21:59:00Z"}),
    ];
    let input = ExplainInput {
        pods: &pods,
        pvcs: Some(&pvcs),
        events: &events,
        now: Some(NOW),
        ..ExplainInput::new(&deploy)
    };
    let chain = explain(&input);
    assert_eq!(
        chain[2].message,
        "unbound (phase Pending): ProvisioningFailed: storageclass.storage.k8s.io \"local-hostpath\" not found"
    );
}

#[test]
fn container_failures_pick_worst_pod() {
    let deploy = fixture("deployment-web");
    let cases: Vec<(Vec<Value>, Option<CauseStep>)> = vec![
        (
            vec![fixture("pod-ready"), fixture("pod-imagepull")],
            Some(step(
                "Pod",
                Some("apps"),
                "web-7d4b9c-abcde",
                "container \"web\" waiting: ImagePullBackOff (Back-off pulling image \"ghcr.io/example/web:v9.9.9\")",
                false,
            )),
        ),
        (
            vec![fixture("pod-ready"), fixture("pod-crashloop")],
            Some(step(
                "Pod",
                Some("apps"),
                "web-7d4b9c-fghij",
                "container \"web\" waiting: CrashLoopBackOff (last exit code 1, Error, 7 restarts)",
                false,
            )),
        ),
        // Equal severity: the alphabetically first pod.
        (
            vec![fixture("pod-crashloop"), fixture("pod-imagepull")],
            Some(step(
                "Pod",
                Some("apps"),
                "web-7d4b9c-abcde",
                "container \"web\" waiting: ImagePullBackOff (Back-off pulling image \"ghcr.io/example/web:v9.9.9\")",
                false,
            )),
        ),
        (vec![fixture("pod-ready")], None),
        (vec![], None),
    ];
    for (pods, want_pod) in cases {
        let input = ExplainInput {
            pods: &pods,
            now: Some(NOW),
            ..ExplainInput::new(&deploy)
        };
        let chain = explain(&input);
        assert_eq!(
            chain[0],
            step(
                "Deployment",
                Some("apps"),
                "web",
                "1/3 available, progress deadline exceeded (ReplicaSet \"web-7d4b9c\" has timed out progressing.)",
                false
            )
        );
        assert_eq!(chain.get(1).cloned(), want_pod);
        assert!(chain.len() <= 2);
    }
}

#[test]
fn pod_states_table() {
    let base = |status: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2026-11-21T21:00:00Z"},
               "status": status})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            base(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})),
            "Pod is Ready",
        ),
        (
            base(json!({"phase": "Succeeded"})),
            "Pod has completed successfully",
        ),
        (
            base(
                json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}),
            ),
            "Failed: Evicted (The node was low on resource: memory.)",
        ),
        (
            base(
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False", "message": "containers with unready status: [app]"}]}),
            ),
            "Running but not Ready: containers with unready status: [app]",
        ),
        (
            base(
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                        "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
            ),
            "Pending: ContainerCreating",
        ),
        (
            base(json!({"phase": "Pending",
                        "initContainerStatuses": [{"name": "init", "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"db\" not found"}}}]})),
            "container \"init\" waiting: CreateContainerConfigError (secret \"db\" not found)",
        ),
        (
            base(
                json!({"phase": "Running", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
            ),
            "container \"app\" terminated: OOMKilled (exit code 137)",
        ),
        (base(json!({})), "phase not yet reported"),
        (base(json!({"phase": "Pending"})), "Pending: not started"),
    ];
    for (pod, want) in cases {
        let input = ExplainInput {
            now: Some(NOW),
            ..ExplainInput::new(&pod)
        };
        let chain = explain(&input);
        assert_eq!(chain.len(), 1, "{pod}");
        assert_eq!(chain[0].message, want, "{pod}");
    }
}

#[test]
fn pod_events_enrich_pending_and_unready() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
    let events = vec![json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "type": "Warning", "reason": "FailedMount",
        "note": "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app-cfg\" not found",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"},
        "eventTime": "2026-11-21T21:00:05.000000Z"})];
    let input = ExplainInput {
        events: &events,
        now: Some(NOW),
        ..ExplainInput::new(&pod)
    };
    assert_eq!(
        explain(&input)[0].message,
        "Pending: ContainerCreating (FailedMount: MountVolume.SetUp failed for volume \"cfg\" : configmap \"app-cfg\" not found)"
    );
}

#[test]
fn pod_and_pvc_as_the_explained_object() {
    let pod = fixture("pod-memos-unschedulable");
    let pvcs = vec![fixture("pvc-memos-data-pending")];
    let classes = list(fixture("storageclasses"));
    let input = ExplainInput {
        pvcs: Some(&pvcs),
        storage_classes: Some(&classes),
        now: Some(NOW),
        ..ExplainInput::new(&pod)
    };
    let chain = explain(&input);
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[0].message, UNSCHEDULABLE);

    let pvc = &pvcs[0];
    let input = ExplainInput {
        storage_classes: Some(&classes),
        ..ExplainInput::new(pvc)
    };
    assert_eq!(
        render_chain(&explain(&input)),
        "PVC apps/memos-data unbound (phase Pending) → StorageClass \"local-hostpath\" does not exist"
    );
}

#[test]
fn other_workloads_and_ready_objects() {
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "data"},
                     "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 1}});
    let dset = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "kube-system", "generation": 1},
                      "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1}});
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "apps"},
                    "spec": {"replicas": 2}, "status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods \"web-1-x\" is forbidden: exceeded quota"}]}});
    let ks = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "apps", "namespace": "flux-system"},
                    "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "message": "health check failed"}]}});
    let ready = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps"}});
    let deleting = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "apps", "deletionTimestamp": "2026-11-21T21:00:00Z"}});
    let unobserved = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "apps", "generation": 2},
                            "status": {"observedGeneration": 1}});
    let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "edge"},
                    "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.10"}, "status": {"loadBalancer": {}}});
    let lb_ok = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "edge"},
                       "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.10"},
                       "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.240"}]}}});
    let cases: Vec<(&Value, &str)> = vec![
        (
            &lb,
            "Service edge/ingress Service is ready; no load balancer assigned an address to this LoadBalancer Service: is k3s's servicelb disabled, or no load balancer (MetalLB, kube-vip, a cloud's) installed?",
        ),
        (&lb_ok, "Service edge/ingress Service is ready"),
        (&sts, "StatefulSet data/db 1/3 ready"),
        (&dset, "DaemonSet kube-system/agent 1/2 available"),
        (
            &rs,
            "ReplicaSet apps/web-1 0/2 available, ReplicaFailure: FailedCreate (pods \"web-1-x\" is forbidden: exceeded quota)",
        ),
        (
            &ks,
            "Kustomization flux-system/apps Failed: health check failed",
        ),
        (&ready, "ConfigMap apps/c Resource is always ready"),
        (
            &deleting,
            "Deployment apps/d Resource scheduled for deletion",
        ),
        (
            &unobserved,
            "Deployment apps/d Deployment generation is 2, but latest observed generation is 1",
        ),
    ];
    for (obj, want) in cases {
        let input = ExplainInput {
            now: Some(NOW),
            ..ExplainInput::new(obj)
        };
        assert_eq!(render_chain(&explain(&input)), want);
    }
}

#[test]
fn ephemeral_volumes_and_namespaces() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "job-x", "namespace": "batch"},
        "spec": {"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
    // Same name in another namespace must not match.
    let pvcs = vec![
        json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "job-x-scratch", "namespace": "other"}, "status": {"phase": "Bound"}}),
    ];
    let input = ExplainInput {
        pvcs: Some(&pvcs),
        now: Some(NOW),
        ..ExplainInput::new(&pod)
    };
    let chain = explain(&input);
    assert_eq!(chain[0].message, "Pending: Unschedulable");
    assert_eq!(
        chain[1],
        step(
            "PersistentVolumeClaim",
            Some("batch"),
            "job-x-scratch",
            "not found",
            true
        )
    );
}

#[test]
fn garbage_input_does_not_panic() {
    let junk = [
        json!(null),
        json!(42),
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "status": {"conditions": 7}}),
        json!({"kind": "Pod", "apiVersion": "v1", "spec": {"volumes": "x"}, "status": {"phase": "Pending", "containerStatuses": [1, null, {"state": 3}]}}),
    ];
    let pvcs = vec![json!(1), json!({"metadata": 2})];
    for obj in &junk {
        let input = ExplainInput {
            pods: &junk,
            pvcs: Some(&pvcs),
            storage_classes: Some(&junk),
            events: &junk,
            now: Some(NOW),
            workload: obj,
        };
        let chain = explain(&input);
        assert!(!chain.is_empty());
        let _ = render_chain(&chain);
    }
}

#[test]
fn a_pod_without_a_network_names_the_cni() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
    let event = |note: &str| {
        vec![json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "type": "Warning", "reason": "FailedCreatePodSandBox",
            "note": note, "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"},
            "eventTime": "2026-11-21T21:00:05.000000Z"})]
    };
    let cilium = event(
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"abc\": plugin type=\"cilium-cni\" failed (add): unable to connect to Cilium daemon",
    );
    let input = ExplainInput {
        events: &cilium,
        now: Some(NOW),
        ..ExplainInput::new(&pod)
    };
    let message = &explain(&input)[0].message;
    assert!(message.ends_with(": the CNI plugin (Cilium) is not ready on the Pod's node, so no Pod there gets a network; see `kubectl -n kube-system get pods -l k8s-app=cilium`"), "{message}");
    let multus = event(
        "Failed to create pod sandbox: plugin type=\"multus\" name=\"multus-cni-network\" failed (add): Multus: [ns/p]: error waiting for pod: context deadline exceeded",
    );
    let input = ExplainInput {
        events: &multus,
        now: Some(NOW),
        ..ExplainInput::new(&pod)
    };
    assert!(
        explain(&input)[0]
            .message
            .contains("the CNI plugin (Multus)")
    );
    let mount = event("MountVolume.SetUp failed");
    let input = ExplainInput {
        events: &mount,
        now: Some(NOW),
        ..ExplainInput::new(&pod)
    };
    assert!(!explain(&input)[0].message.contains("CNI"));
}
