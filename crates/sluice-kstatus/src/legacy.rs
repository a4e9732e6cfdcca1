//! Helm's legacy readiness rules: what a HelmRelease with `waitStrategy: legacy` (Helm 3's wait,
//! Helm v4.2.4 `pkg/kube/ready.go` `ReadyChecker` with paused Deployments counted ready) waits
//! for, kind by kind. Unlike kstatus they wait for a LoadBalancer Service to get an address,
//! for a claim to be bound, and for the new ReplicaSet of a Deployment to have enough ready
//! Pods; other kinds are ready as soon as they exist.
//!
//! Pure: the caller reads what a rule needs besides the object ([`needs`]): the ReplicaSets of
//! a Deployment's namespace, the Pods of a ReplicaSet or ReplicationController (selected by
//! `matchLabels`; `matchExpressions` are not applied, so more Pods may be looked at than Helm
//! does). The reasons are sluice's own words; Helm says nothing but `context deadline
//! exceeded`.

use serde_json::Value;

/// One look at one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Ready by Helm's rules.
    Ready,
    /// Not ready yet, and why.
    NotReady(String),
    /// Failed: waiting longer does not help (a Job past its backoff limit).
    Failed(String),
}

/// What a rule needs read besides the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// The ReplicaSets selected by the object's `spec.selector.matchLabels`.
    ReplicaSets,
    /// The Pods selected by the object's selector.
    Pods,
}

/// What [`ready`] needs for `obj`.
pub fn needs(obj: &Value) -> Needs {
    match (api_group(obj), kind(obj)) {
        ("apps", "Deployment") => Needs::ReplicaSets,
        ("apps", "ReplicaSet") | ("", "ReplicationController") => Needs::Pods,
        _ => Needs::Nothing,
    }
}

/// The label selector (`key=value,…`) of a Deployment, ReplicaSet or ReplicationController.
pub fn selector(obj: &Value) -> Option<String> {
    let labels = match kind(obj) {
        "ReplicationController" => obj.pointer("/spec/selector"),
        _ => obj.pointer("/spec/selector/matchLabels"),
    }?
    .as_object()?;
    let s = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    (!s.is_empty()).then_some(s)
}

/// Helm's `IsReady` for `obj`. `related` holds what [`needs`] asked for; `check_jobs` is
/// Helm's `WaitWithJobs` (helm-controller: unless `disableWaitForJobs`).
pub fn ready(obj: &Value, related: &[Value], check_jobs: bool) -> Verdict {
    match (api_group(obj), kind(obj)) {
        ("", "Pod") => pod(obj),
        ("batch", "Job") if check_jobs => job(obj),
        ("apps", "Deployment") => deployment(obj, related),
        ("", "PersistentVolumeClaim") => match str_at(obj, "/status/phase") {
            "Bound" => Verdict::Ready,
            phase => Verdict::NotReady(format!(
                "PersistentVolumeClaim is not bound (phase {})",
                if phase.is_empty() { "unknown" } else { phase }
            )),
        },
        ("", "Service") => service(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        ("apps", "StatefulSet") => stateful_set(obj),
        ("", "ReplicationController") | ("apps", "ReplicaSet") => {
            if !generation_observed(obj) {
                return Verdict::NotReady(format!("{} has not observed its generation", kind(obj)));
            }
            match related.iter().find(|p| pod(p) != Verdict::Ready) {
                Some(p) => {
                    Verdict::NotReady(format!("Pod {} is not ready", str_at(p, "/metadata/name")))
                }
                None => Verdict::Ready,
            }
        }
        _ => Verdict::Ready,
    }
}

fn api_group(obj: &Value) -> &str {
    let v = str_at(obj, "/apiVersion");
    v.rsplit_once('/').map_or("", |(g, _)| g)
}

fn kind(obj: &Value) -> &str {
    str_at(obj, "/kind")
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn generation_observed(obj: &Value) -> bool {
    int_at(obj, "/status/observedGeneration") == int_at(obj, "/metadata/generation")
}

fn pod(obj: &Value) -> Verdict {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    if ready {
        Verdict::Ready
    } else {
        Verdict::NotReady("Pod is not ready".into())
    }
}

fn job(obj: &Value) -> Verdict {
    let failed = int_at(obj, "/status/failed");
    let backoff = obj
        .pointer("/spec/backoffLimit")
        .and_then(Value::as_i64)
        .unwrap_or(6);
    if failed > backoff {
        return Verdict::Failed(format!(
            "job is failed: {}/{}",
            str_at(obj, "/metadata/namespace"),
            str_at(obj, "/metadata/name")
        ));
    }
    if let Some(completions) = obj.pointer("/spec/completions").and_then(Value::as_i64) {
        let succeeded = int_at(obj, "/status/succeeded");
        if succeeded < completions {
            return Verdict::NotReady(format!("Job has {succeeded} of {completions} completions"));
        }
    }
    Verdict::Ready
}

/// `intstr.GetScaledValueFromIntOrPercent`: an integer, or a percentage of `total` rounded up
/// or down; `None` for anything else.
fn scaled(v: Option<&Value>, total: i64, round_up: bool) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            let x = pct * total;
            Some(if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            })
        }
        _ => None,
    }
}

/// `deploymentutil.MaxUnavailable`.
fn max_unavailable(dep: &Value, replicas: i64) -> i64 {
    if str_at(dep, "/spec/strategy/type") != "RollingUpdate" || replicas == 0 {
        return 0;
    }
    let surge = scaled(
        dep.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        replicas,
        true,
    )
    .unwrap_or(0);
    let mut unavailable = scaled(
        dep.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        replicas,
        false,
    )
    .unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    unavailable.min(replicas)
}

fn deployment(dep: &Value, replica_sets: &[Value]) -> Verdict {
    if dep.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Verdict::Ready;
    }
    // The new ReplicaSet: the one the Deployment owns at its current revision.
    let revision = "/metadata/annotations/deployment.kubernetes.io~1revision";
    let uid = str_at(dep, "/metadata/uid");
    let new = replica_sets.iter().find(|rs| {
        let owned = rs
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|o| o["uid"] == uid && o["controller"] == true);
        owned && !str_at(dep, revision).is_empty() && str_at(rs, revision) == str_at(dep, revision)
    });
    let Some(rs) = new else {
        return Verdict::NotReady("Deployment has no new ReplicaSet yet".into());
    };
    if !generation_observed(rs) {
        return Verdict::NotReady("its new ReplicaSet has not observed its generation".into());
    }
    if !generation_observed(dep) {
        return Verdict::NotReady("Deployment has not observed its generation".into());
    }
    let replicas = dep
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let expected = replicas - max_unavailable(dep, replicas);
    let ready = int_at(rs, "/status/readyReplicas");
    if ready < expected {
        return Verdict::NotReady(format!(
            "Deployment has {ready} of {expected} ready Pods in its new ReplicaSet {}",
            str_at(rs, "/metadata/name")
        ));
    }
    Verdict::Ready
}

fn service(svc: &Value) -> Verdict {
    let kind = str_at(svc, "/spec/type");
    if kind == "ExternalName" {
        return Verdict::Ready;
    }
    if str_at(svc, "/spec/clusterIP").is_empty() {
        return Verdict::NotReady("Service has no cluster IP address".into());
    }
    if kind == "LoadBalancer" {
        let external = svc
            .pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        // Helm tests the list for nil: an empty list counts as an address.
        let ingress = svc
            .pointer("/status/loadBalancer/ingress")
            .is_some_and(|i| !i.is_null());
        if !external && !ingress {
            return Verdict::NotReady(LOAD_BALANCER_MISSING.into());
        }
    }
    Verdict::Ready
}

/// Why a LoadBalancer Service waits forever on a cluster without a load balancer.
pub const LOAD_BALANCER_MISSING: &str = "no load balancer assigned an address to this \
     LoadBalancer Service: is k3s's servicelb disabled, or no load balancer (MetalLB, kube-vip, \
     a cloud's) installed?";

fn daemon_set(ds: &Value) -> Verdict {
    if !generation_observed(ds) {
        return Verdict::NotReady("DaemonSet has not observed its generation".into());
    }
    if str_at(ds, "/spec/updateStrategy/type") != "RollingUpdate" {
        return Verdict::Ready;
    }
    let desired = int_at(ds, "/status/desiredNumberScheduled");
    let updated = int_at(ds, "/status/updatedNumberScheduled");
    if updated != desired {
        return Verdict::NotReady(format!("DaemonSet has {updated} of {desired} Pods updated"));
    }
    let max_unavailable = scaled(
        ds.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable"),
        desired,
        true,
    )
    .unwrap_or(desired);
    let expected = desired - max_unavailable;
    let ready = int_at(ds, "/status/numberReady");
    if ready < expected {
        return Verdict::NotReady(format!("DaemonSet has {ready} of {expected} ready Pods"));
    }
    Verdict::Ready
}

fn crd(obj: &Value) -> Verdict {
    let ok = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            (c["type"] == "Established" && c["status"] == "True")
                || (c["type"] == "NamesAccepted" && c["status"] == "False")
        });
    if ok {
        Verdict::Ready
    } else {
        Verdict::NotReady("CustomResourceDefinition is not established".into())
    }
}

fn stateful_set(sts: &Value) -> Verdict {
    if !generation_observed(sts) {
        return Verdict::NotReady("StatefulSet has not observed its generation".into());
    }
    if str_at(sts, "/spec/updateStrategy/type") != "RollingUpdate" {
        return Verdict::Ready;
    }
    let partition = sts
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let replicas = sts
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let expected = replicas - partition;
    let updated = int_at(sts, "/status/updatedReplicas");
    if updated < expected {
        return Verdict::NotReady(format!(
            "StatefulSet has {updated} of {expected} Pods updated"
        ));
    }
    let ready = int_at(sts, "/status/readyReplicas");
    if ready != replicas {
        return Verdict::NotReady(format!("StatefulSet has {ready} of {replicas} ready Pods"));
    }
    if partition == 0
        && str_at(sts, "/status/currentRevision") != str_at(sts, "/status/updateRevision")
    {
        return Verdict::NotReady("StatefulSet has not finished its rollout".into());
    }
    Verdict::Ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_load_balancer_service_waits_for_an_address() {
        let mut svc = json!({"apiVersion": "v1", "kind": "Service",
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.10"}, "status": {"loadBalancer": {}}});
        assert_eq!(
            ready(&svc, &[], false),
            Verdict::NotReady(LOAD_BALANCER_MISSING.into())
        );
        svc["status"]["loadBalancer"]["ingress"] = json!([]);
        assert_eq!(
            ready(&svc, &[], false),
            Verdict::Ready,
            "Helm checks for nil only"
        );
        svc["status"]["loadBalancer"] = json!({});
        svc["spec"]["externalIPs"] = json!(["192.168.1.10"]);
        assert_eq!(ready(&svc, &[], false), Verdict::Ready);
        let plain = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP", "clusterIP": "None"}});
        assert_eq!(ready(&plain, &[], false), Verdict::Ready);
        let unassigned =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}});
        assert!(matches!(
            ready(&unassigned, &[], false),
            Verdict::NotReady(_)
        ));
        let name = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ExternalName"}});
        assert_eq!(ready(&name, &[], false), Verdict::Ready);
    }

    #[test]
    fn a_deployment_waits_for_its_new_replica_set() {
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"uid": "d1", "generation": 2, "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 4, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
            "status": {"observedGeneration": 2}});
        let rs = |rev: &str, ready: i64| {
            json!({"metadata": {"name": format!("web-{rev}"), "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": rev},
            "ownerReferences": [{"uid": "d1", "controller": true}]},
            "status": {"observedGeneration": 1, "readyReplicas": ready}})
        };
        // 4 replicas, 25% unavailable: 3 ready Pods in the new ReplicaSet are enough.
        assert_eq!(
            ready(&dep, &[rs("1", 4), rs("2", 3)], false),
            Verdict::Ready
        );
        assert_eq!(
            ready(&dep, &[rs("1", 4), rs("2", 2)], false),
            Verdict::NotReady(
                "Deployment has 2 of 3 ready Pods in its new ReplicaSet web-2".into()
            )
        );
        assert!(matches!(
            ready(&dep, &[rs("1", 4)], false),
            Verdict::NotReady(_)
        ));
        let mut paused = dep.clone();
        paused["spec"]["paused"] = json!(true);
        assert_eq!(ready(&paused, &[], false), Verdict::Ready);
        // Recreate: no Pod may be missing.
        let mut recreate = dep.clone();
        recreate["spec"]["strategy"] = json!({"type": "Recreate"});
        assert!(matches!(
            ready(&recreate, &[rs("2", 3)], false),
            Verdict::NotReady(_)
        ));
        assert_eq!(max_unavailable(&dep, 1), 0);
        let mut both_zero = dep.clone();
        both_zero["spec"]["strategy"]["rollingUpdate"] =
            json!({"maxSurge": 0, "maxUnavailable": 0});
        assert_eq!(max_unavailable(&both_zero, 4), 1);
    }

    #[test]
    fn claims_jobs_and_sets_as_helm() {
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert!(matches!(ready(&pvc, &[], false), Verdict::NotReady(m) if m.contains("Pending")));
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "apps"},
            "spec": {"backoffLimit": 0, "completions": 1}, "status": {"failed": 1}});
        assert_eq!(
            ready(&job, &[], false),
            Verdict::Ready,
            "jobs only with WaitWithJobs"
        );
        assert_eq!(
            ready(&job, &[], true),
            Verdict::Failed("job is failed: apps/migrate".into())
        );
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
            "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 1, "updatedReplicas": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "a"}});
        assert_eq!(ready(&sts, &[], false), Verdict::Ready);
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1},
            "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberReady": 1}});
        assert!(matches!(ready(&ds, &[], false), Verdict::NotReady(_)));
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(ready(&crd, &[], false), Verdict::Ready);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(ready(&cm, &[], false), Verdict::Ready);
    }
}
