//! `sluice install` and `sluice uninstall`.
//!
//! The install manifests: Flux's CRDs (from `sluice_api::crds()`, labelled
//! as Flux's install labels them so the `flux` CLI recognises them), the
//! namespace, a ServiceAccount, RBAC, the `source-controller` Service (port
//! 80, Flux's artifact URL convention), one Deployment running
//! `sluice controller`, and NetworkPolicies with the meaning of Flux's
//! (see [`network_policies`]). Every object carries
//! `app.kubernetes.io/managed-by: sluice` and
//! `app.kubernetes.io/instance: <namespace>`, which is how `uninstall` finds
//! them again.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{ArgAction, Args};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use sluice_api::meta::ObjectId;
use sluice_api::{Bucket, GitRepository, HelmChart, HelmRepository, Kustomization, OCIRepository};

use crate::kube_util::{self, FIELD_MANAGER, Resolver, typed_json};
use crate::output::{Log, Spinner};
use crate::reconcile::parse_timeout;
use crate::{GlobalArgs, Outcome, UserError};

/// The version of these manifests (the CLI's version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The default controller image: `ghcr.io/sluice-gitops/sluice:v<version>`.
pub fn default_image() -> String {
    format!("ghcr.io/sluice-gitops/sluice:v{VERSION}")
}

/// The label `uninstall` selects on (with the instance label).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "sluice";
/// Flux's instance label: the namespace of the installation.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Flux's part-of label (`flux`), which the `flux` CLI looks for.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// The name of the controller Deployment and ServiceAccount.
pub const CONTROLLER_NAME: &str = "sluice";
/// The ServiceAccount that applies: Kustomizations and HelmReleases without
/// `spec.serviceAccountName` impersonate it (`--reconciler-service-account`),
/// and the cluster-reconciler binding gives it cluster-admin, as Flux gives it
/// to its controllers. The controller's own ServiceAccount has only what the
/// controller itself needs.
pub const RECONCILER_NAME: &str = "sluice-reconciler";
/// The artifact server's Service, named as Flux's source-controller.
pub const ARTIFACT_SERVICE: &str = "source-controller";
/// The controller's metrics port (`--metrics-addr`), open to scrapers in
/// every namespace.
pub const METRICS_PORT: u16 = 8080;
/// The artifact server's port (`--storage-addr`), reachable from the
/// installation's own namespace only.
pub const ARTIFACT_PORT: u16 = 9090;
/// The health probe port (`--health-addr`); the kubelet reaches it from the
/// node, which NetworkPolicies do not restrict.
pub const HEALTH_PORT: u16 = 9440;

/// `sluice install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the manifests as a YAML stream instead of applying them.
    #[arg(long)]
    pub export: bool,

    /// The controller image.
    #[arg(long, value_name = "IMAGE", default_value_t = default_image())]
    pub image: String,

    /// Wait for the controller Deployment to be ready.
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,

    /// How long to wait.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Also run the HelmRelease controller (a preview: it refuses by name the fields it does
    /// not implement yet) and install its CRD. Not beside Flux's helm-controller.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub helmrelease: bool,

    /// Also serve notifications (a preview): Alerts and Providers (events to chats, webhooks
    /// and commit statuses; the event endpoint behind the `notification-controller` Service
    /// for Flux's own controllers) and Receivers (webhooks that request reconciles, on port
    /// 9292 behind the `webhook-receiver` Service, as Flux's), with their CRDs. Not beside
    /// Flux's notification-controller.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub notification: bool,

    /// With --export: a manifest for k3s's auto-deploy folder
    /// (/var/lib/rancher/k3s/server/manifests/sluice.yaml), the controller a cluster-critical
    /// add-on that tolerates k3s's CriticalAddonsOnly and control-plane taints, as k3s's
    /// packaged components do.
    #[arg(long, requires = "export")]
    pub k3s: bool,

    /// Print what the install would do (on a cluster where Flux runs: which of Flux's
    /// controllers it scales to zero, which stay, what stops it) and change nothing.
    #[arg(long, conflicts_with = "export")]
    pub dry_run: bool,
}

/// Where k3s's deploy controller finds the manifest `install --export --k3s` writes.
pub const K3S_MANIFEST: &str = "/var/lib/rancher/k3s/server/manifests/sluice.yaml";

/// The install manifests as k3s's auto-deploy folder takes them: the controller runs as a
/// cluster-critical add-on, on server nodes tainted `CriticalAddonsOnly` (k3s's way of keeping
/// workloads off servers) or `control-plane` too, as k3s's packaged CoreDNS does; it is the
/// component that deploys everything else.
pub fn for_k3s(objects: &mut [Value]) {
    for d in objects.iter_mut().filter(|o| o["kind"] == "Deployment") {
        let spec = &mut d["spec"]["template"]["spec"];
        spec["priorityClassName"] = json!("system-cluster-critical");
        spec["tolerations"] = json!([
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
        ]);
    }
}

/// The comment `install --export --k3s` starts with.
fn k3s_header() -> String {
    format!(
        "# sluice v{VERSION} for k3s: save as {K3S_MANIFEST} on a server node.\n\
         # k3s applies it at start and whenever the file changes: upgrade or change the\n\
         # installation by replacing this file, not with `sluice install` or a Kustomization\n\
         # (k3s would put its version back). Deleting the file does not uninstall: run\n\
         # `sluice uninstall`.\n"
    )
}

/// `sluice uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Keep the namespace.
    #[arg(long)]
    pub keep_namespace: bool,

    /// Keep the CustomResourceDefinitions, and the Kustomizations and sources
    /// (GitRepositories, OCIRepositories, HelmRepositories, HelmCharts) outside
    /// the installation's namespace.
    #[arg(long)]
    pub keep_crds: bool,

    /// Also delete the objects the Kustomizations applied (their
    /// inventories). By default they stay in the cluster.
    #[arg(long)]
    pub delete_workloads: bool,

    /// Only print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,

    /// Hand the cluster back to Flux after `sluice install` took it over: Flux's controllers
    /// scaled back to their replicas, Flux's Services and NetworkPolicies given their spec
    /// back; only sluice's own objects are deleted (the CRDs, the namespace and every Flux
    /// object stay, with their finalizers, for Flux).
    #[arg(long, conflicts_with = "delete_workloads")]
    pub restore_flux: bool,
}

/// What the install manifests are made from.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Namespace of the controller.
    pub namespace: String,
    /// Controller image.
    pub image: String,
    /// Also run the HelmRelease controller (a preview) and install its CRD.
    pub helmrelease: bool,
    /// Also serve notifications (a preview) and install their CRDs, Services and
    /// NetworkPolicy.
    pub notification: bool,
}

/// The port the Receiver webhooks are served on, and the Service that maps port 80 to it
/// (Flux's notification-controller: `webhook-receiver`, `http-webhook`).
pub const WEBHOOK_PORT: u16 = 9292;
/// The webhook Service's name.
pub const WEBHOOK_SERVICE: &str = "webhook-receiver";
/// The port of the event endpoint, and the Service Flux's controllers post events to
/// (`--events-addr=http://notification-controller.<namespace>.svc.cluster.local./`).
pub const EVENTS_PORT: u16 = 9490;
/// The event endpoint's Service name (Flux's).
pub const EVENTS_SERVICE: &str = "notification-controller";

fn labels(ns: &str, component: &str) -> Value {
    json!({
        PART_OF_LABEL: "flux",
        INSTANCE_LABEL: ns,
        "app.kubernetes.io/version": format!("v{VERSION}"),
        "app.kubernetes.io/component": component,
        MANAGED_BY_LABEL: MANAGED_BY,
    })
}

/// The install manifests, in apply order.
pub fn manifests(o: &InstallOptions) -> Vec<Value> {
    let ns = o.namespace.as_str();
    let mut out = Vec::new();
    for crd in sluice_api::crds() {
        // HelmRelease's CRD comes with its controller, a preview that runs only with
        // `--helmrelease`: installed without it, the CRD would admit HelmReleases that nothing
        // reconciles, with no condition saying so (Flux's own CRD, already on a cluster moving
        // from Flux, is left alone).
        let helm = crd.spec.group == sluice_api::helm_release::GROUP;
        if helm && !o.helmrelease {
            continue;
        }
        // The same for the Receiver's CRD and `--notification`.
        let notification = crd.spec.group == sluice_api::notification::GROUP;
        if notification && !o.notification {
            continue;
        }
        let component = if helm {
            "helm-controller"
        } else if notification {
            "notification-controller"
        } else if crd.spec.group.starts_with("source.") {
            "source-controller"
        } else {
            "kustomize-controller"
        };
        let mut v = typed_json(&crd, "apiextensions.k8s.io/v1", "CustomResourceDefinition");
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("creationTimestamp");
        }
        if let Some(s) = v.as_object_mut() {
            s.remove("status");
        }
        v["metadata"]["labels"] = labels(ns, component);
        out.push(v);
    }
    out.push(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": labels(ns, "sluice")},
    }));
    for sa in [CONTROLLER_NAME, RECONCILER_NAME] {
        out.push(json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": sa, "namespace": ns, "labels": labels(ns, "sluice")},
        }));
    }
    // The controller's own identity: its kinds, what it reads, Events,
    // Leases, the Reloader's roll-outs, and impersonation. Nothing it applies
    // is written as it.
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": format!("sluice-controller-{ns}"), "labels": labels(ns, "sluice")},
        "rules": [
            // Every kind of sluice_api::crds(), with status and finalizers.
            // (helm.toolkit.fluxcd.io for the HelmRelease controller, when enabled.)
            {"apiGroups": ["source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io", "notification.toolkit.fluxcd.io"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            // Credentials, and (as Flux's source-controller) the image pull
            // secrets of an OCIRepository's spec.serviceAccountName.
            {"apiGroups": [""], "resources": ["configmaps", "secrets", "serviceaccounts"], "verbs": ["get", "list", "watch"]},
            // Workload identity of a ServiceAccount (OCI providers aws, azure,
            // gcp with spec.serviceAccountName), as Flux's source-controller.
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            // Every apply, prune, health check and Helm action acts as a
            // ServiceAccount: the object's own, --default-service-account's,
            // or sluice-reconciler.
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
            // The Reloader's roll-outs.
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        ],
    }));
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("sluice-controller-{ns}"), "labels": labels(ns, "sluice")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("sluice-controller-{ns}")},
        "subjects": [{"kind": "ServiceAccount", "name": CONTROLLER_NAME, "namespace": ns}],
    }));
    // Applying arbitrary manifests needs cluster-admin, as Flux's
    // cluster-reconciler-<ns> gives its controllers; here it goes to the
    // reconciler the controller impersonates. Narrow this binding, or lock
    // tenants down with --default-service-account, to apply with less.
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("sluice-cluster-reconciler-{ns}"), "labels": labels(ns, "sluice")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": RECONCILER_NAME, "namespace": ns}],
    }));
    out.push(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": ARTIFACT_SERVICE, "namespace": ns, "labels": labels(ns, "source-controller")},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": CONTROLLER_NAME},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
        },
    }));
    out.push(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": CONTROLLER_NAME, "namespace": ns, "labels": labels(ns, "sluice")},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": CONTROLLER_NAME}},
            "template": {
                "metadata": {
                    "labels": {"app": CONTROLLER_NAME, "app.kubernetes.io/name": CONTROLLER_NAME},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": METRICS_PORT.to_string()},
                },
                "spec": {
                    "serviceAccountName": CONTROLLER_NAME,
                    "terminationGracePeriodSeconds": 10,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "fsGroup": 65532},
                    "containers": [{
                        "name": "manager",
                        "image": o.image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": [
                            "controller",
                            "--log-format=json",
                            format!("--metrics-addr=:{METRICS_PORT}"),
                            format!("--health-addr=:{HEALTH_PORT}"),
                            "--storage-path=/data",
                            format!("--storage-addr=:{ARTIFACT_PORT}"),
                            "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
                            // As Flux's manifests: safe to scale, hands over
                            // on a roll-out (Lease sluice-leader-election in
                            // this namespace).
                            "--enable-leader-election",
                            format!("--reconciler-service-account={RECONCILER_NAME}"),
                        ],
                        "env": [
                            {"name": "RUNTIME_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "TMPDIR", "value": "/tmp"},
                            {"name": "SLUICE_REMOTE_CACHE", "value": "/tmp/remote"},
                        ],
                        "ports": [
                            {"name": "http", "containerPort": ARTIFACT_PORT, "protocol": "TCP"},
                            {"name": "http-prom", "containerPort": METRICS_PORT, "protocol": "TCP"},
                            {"name": "healthz", "containerPort": HEALTH_PORT, "protocol": "TCP"},
                        ],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "healthz"}},
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "1000m", "memory": "512Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [
                            {"name": "data", "mountPath": "/data"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }));
    out.extend(network_policies(ns));
    fn container<'a>(out: &'a mut [Value], field: &str) -> Option<&'a mut Vec<Value>> {
        out.iter_mut()
            .find(|v| v["kind"] == "Deployment")
            .and_then(|d| d.pointer_mut(&format!("/spec/template/spec/containers/0/{field}")))
            .and_then(Value::as_array_mut)
    }
    if o.helmrelease
        && let Some(args) = container(&mut out, "args")
    {
        args.push("--helmrelease".into());
    }
    if o.notification {
        if let Some(args) = container(&mut out, "args") {
            args.push("--notification".into());
            args.push(format!("--receiver-addr=:{WEBHOOK_PORT}").into());
            args.push(format!("--notification-events-addr=:{EVENTS_PORT}").into());
        }
        if let Some(ports) = container(&mut out, "ports") {
            ports.push(
                json!({"name": "http-webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP"}),
            );
            ports.push(
                json!({"name": "http-events", "containerPort": EVENTS_PORT, "protocol": "TCP"}),
            );
        }
        // Flux's controllers (image automation, say) post their events here, as to Flux's
        // notification-controller; the namespace's `allow-egress` policy admits them.
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": EVENTS_SERVICE, "namespace": ns, "labels": labels(ns, "notification-controller")},
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": CONTROLLER_NAME},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http-events"}],
            },
        }));
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": WEBHOOK_SERVICE, "namespace": ns, "labels": labels(ns, "notification-controller")},
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": CONTROLLER_NAME},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http-webhook"}],
            },
        }));
        // Webhooks come from everywhere (an Ingress controller, Gitea in another namespace):
        // the receiver's port only, not the artifact server's.
        out.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-webhooks-sluice", "namespace": ns, "labels": labels(ns, "sluice")},
            "spec": {
                "podSelector": {"matchLabels": {"app": CONTROLLER_NAME}},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": WEBHOOK_PORT}],
                }],
            },
        }));
    }
    out
}

/// The NetworkPolicies of the installation's namespace, with the meaning of
/// the ones Flux installs (`allow-egress`, `allow-scraping`,
/// `allow-webhooks`) and sluice's ports. Once any policy selects a pod, what
/// no policy allows is refused, so together they say:
///
/// - `allow-egress`: pods of the namespace may connect anywhere (Git hosts,
///   the API server, remote bases), and accept connections from pods of the
///   same namespace only; so the artifact server (port [`ARTIFACT_PORT`],
///   Service `source-controller`) serves the namespace, not the cluster.
/// - `allow-scraping`: the metrics port ([`METRICS_PORT`]) of every pod in
///   the namespace is open to every namespace (Prometheus).
/// - `allow-webhooks`: Flux's notification-controller, if one runs beside
///   sluice in this namespace, keeps receiving webhooks from everywhere (its
///   pods are labelled `app: notification-controller`; sluice has none of its
///   own).
///
/// Health probes come from the kubelet on the node, which NetworkPolicies
/// leave alone.
pub fn network_policies(ns: &str) -> Vec<Value> {
    let policy = |name: &str, spec: Value| {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": labels(ns, "sluice")},
            "spec": spec,
        })
    };
    vec![
        policy(
            "allow-egress",
            json!({
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{}],
            }),
        ),
        policy(
            "allow-scraping",
            json!({
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                }],
            }),
        ),
        policy(
            "allow-webhooks",
            json!({
                "podSelector": {"matchLabels": {"app": "notification-controller"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {}}]}],
            }),
        ),
    ]
}

/// `Kind/name` or `Kind/ns/name`.
pub fn subject(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{kind}/{ns}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and did not change.
    Unchanged,
}

impl Change {
    /// kubectl's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        }
    }
}

/// The objects among `objects` that do not exist in the cluster.
pub async fn missing(client: &Client, objects: &[Value]) -> Result<Vec<String>> {
    let mut resolver = Resolver::default();
    let mut out = Vec::new();
    for o in objects {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let found = resolver
            .get(
                client,
                o["apiVersion"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
                ns,
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )
            .await;
        match found {
            Ok(Some(_)) => {}
            // A kind not served yet (CRDs of a partial install) counts as missing.
            Ok(None) | Err(_) => out.push(subject(o)),
        }
    }
    Ok(out)
}

/// Server-side applies `objects` in order (field manager `sluice`), and
/// reports what changed for each.
pub async fn apply_all(
    client: &Client,
    objects: &[Value],
    log: &Log,
) -> Result<Vec<(String, Change)>> {
    let mut resolver = Resolver::default();
    let mut out = Vec::new();
    for o in objects {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let before = resolver
            .get(client, api_version, kind, ns, name)
            .await
            .ok()
            .flatten();
        let after = resolver.apply(client, o, FIELD_MANAGER, false).await?;
        let change = match before {
            None => Change::Created,
            Some(b) if same_content(&b, &after) => Change::Unchanged,
            Some(_) => Change::Configured,
        };
        let s = subject(o);
        if change != Change::Unchanged {
            log.success(&format!("{s} {}", change.as_str()));
        }
        out.push((s, change));
        if kind == "CustomResourceDefinition" {
            wait_established(client, name).await;
        }
    }
    Ok(out)
}

/// Whether two versions of an object differ only in what others write
/// beside an apply: status, field ownership and the resource version. (A
/// Deployment's status moves while its pods start; that is no change made
/// by the install.)
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
        }
        if let Some(m) = v["metadata"].as_object_mut() {
            for k in ["resourceVersion", "managedFields"] {
                m.remove(k);
            }
        }
        v
    };
    strip(a) == strip(b)
}

async fn wait_established(client: &Client, name: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(crd) = api.get(name).await
            && crd
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the controller Deployment to be Current (kstatus).
pub async fn wait_controller(client: &Client, ns: &str, timeout: Duration) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    let mut spinner = Spinner::new();
    loop {
        let live = api
            .get_opt(CONTROLLER_NAME)
            .await
            .map_err(|e| kube_util::user_kube_error(e, "getting the controller Deployment"))?;
        let (ok, message) = match &live {
            Some(d) => {
                let v = typed_json(d, "apps/v1", "Deployment");
                let r =
                    sluice_kstatus::compute_or_unknown(&v, &sluice_kstatus::ComputeOptions::flux());
                (r.status == sluice_kstatus::Status::Current, r.message)
            }
            None => (false, "Deployment not found".into()),
        };
        if ok {
            spinner.clear();
            return Ok(());
        }
        spinner.tick(&format!(
            "waiting for Deployment {ns}/{CONTROLLER_NAME}: {message}"
        ));
        if start.elapsed() >= timeout {
            spinner.clear();
            let mut walker = crate::why::Walker::new(client.clone());
            let why = walker.explain("Deployment", ns, CONTROLLER_NAME).await?;
            return Err(UserError::new(format!(
                "the controller is not ready after {}: {}",
                sluice_api::meta::format_duration(timeout),
                why.summary
            ))
            .hint(format!("see its logs with `sluice logs -n {ns}`"))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The manifests as a YAML stream.
pub fn to_yaml_stream(objects: &[Value]) -> Result<String> {
    crate::export::to_stream(objects)
}

/// Runs `sluice install`.
pub async fn run_install(g: &GlobalArgs, args: InstallArgs) -> Result<Outcome> {
    let mut objects = manifests(&InstallOptions {
        namespace: g.namespace.clone(),
        image: args.image.clone(),
        helmrelease: args.helmrelease,
        notification: args.notification,
    });
    if args.k3s {
        for_k3s(&mut objects);
        print!("{}", k3s_header());
    }
    if args.export {
        print!("{}", to_yaml_stream(&objects)?);
        return Ok(Outcome::Ok);
    }
    let client = kube_util::client(g).await?;
    let log = Log::default();
    let flux = crate::takeover::find(&client).await?;
    let plan = if flux.is_empty() {
        crate::takeover::Plan::default()
    } else {
        let kustomizations = crate::takeover::kustomizations(&client).await?;
        crate::takeover::plan(flux, &kustomizations, args.helmrelease, args.notification)
    };
    if args.dry_run {
        crate::takeover::print(&plan, &log);
        for m in missing(&client, &objects).await? {
            log.action(&format!("would create {m}"));
        }
        log.success("dry run: nothing was changed");
        return Ok(if plan.blockers.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Failed
        });
    }
    if let Some(first) = plan.blockers.first() {
        let mut err = UserError::new(first.clone());
        if plan.blockers.len() > 1 {
            err = err.hint(format!(
                "and {} more: see `sluice install --dry-run`",
                plan.blockers.len() - 1
            ));
        }
        return Err(err.into());
    }
    if !plan.scale_down.is_empty() {
        log.action("taking over from Flux");
        crate::takeover::keep_flux_specs(&client, &objects, &log).await?;
        crate::takeover::scale_down(&client, &plan.scale_down, &log).await?;
    }
    log.action(&format!(
        "installing components in {} namespace",
        g.namespace
    ));
    let missing = missing(&client, &objects).await?;
    if !missing.is_empty() && missing.len() < objects.len() {
        log.warning(&format!(
            "partial installation found; completing it ({} missing: {})",
            missing.len(),
            missing.join(", ")
        ));
    }
    let changes = apply_all(&client, &objects, &log).await?;
    if changes.iter().all(|(_, c)| *c == Change::Unchanged) {
        log.success(&format!(
            "all {} components are installed and up to date",
            changes.len()
        ));
    }
    if args.wait {
        log.waiting("verifying installation");
        wait_controller(&client, &g.namespace, args.timeout).await?;
        log.success(&format!("{CONTROLLER_NAME}: deployment ready"));
    }
    log.success("install finished");
    Ok(Outcome::Ok)
}

/// Runs `sluice uninstall`.
pub async fn run_uninstall(g: &GlobalArgs, mut args: UninstallArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let log = Log::default();
    let ns = g.namespace.as_str();
    if args.restore_flux {
        // Flux's again: its CRDs, namespace and objects stay.
        args.keep_crds = true;
        args.keep_namespace = true;
        crate::takeover::restore(&client, ns, args.dry_run, &log).await?;
    }
    let would = |what: &str| {
        if args.dry_run {
            log.action(&format!("would delete {what}"));
        }
    };
    let dp = DeleteParams::background();
    let mut resolver = Resolver::default();

    // Flux objects: optionally their workloads, then finalizers off so
    // deletion does not wait for a controller. In every namespace when the
    // CRDs go (deleting them would delete the objects anyway); with
    // --keep-crds only in the installation's namespace.
    let ks_api: Api<Kustomization> = if args.keep_crds {
        Api::namespaced(client.clone(), ns)
    } else {
        Api::all(client.clone())
    };
    let kustomizations = if args.restore_flux {
        vec![]
    } else {
        match ks_api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) if kube_util::api_missing(&e) => vec![],
            Err(e) => return Err(kube_util::user_kube_error(e, "listing Kustomizations")),
        }
    };
    if args.delete_workloads {
        for ks in &kustomizations {
            for entry in ks.inventory() {
                let (Ok(id), Ok(api_version)) = (ObjectId::parse(&entry.id), entry.api_version())
                else {
                    continue;
                };
                let what = if id.namespace.is_empty() {
                    format!("{}/{}", id.kind, id.name)
                } else {
                    format!("{}/{}/{}", id.kind, id.namespace, id.name)
                };
                if args.dry_run {
                    would(&what);
                    continue;
                }
                if let Ok((api, _)) = resolver
                    .api_for(&client, &api_version, &id.kind, &id.namespace)
                    .await
                {
                    match api.delete(&id.name, &dp).await {
                        Ok(_) => log.success(&format!("{what} deleted")),
                        Err(e) if kube_util::is_not_found(&e) => {}
                        Err(e) => log.failure(&format!("deleting {what}: {e}")),
                    }
                }
            }
        }
    }
    for ks in &kustomizations {
        let kns = ks.namespace().unwrap_or_default();
        let name = ks.name_any();
        let what = format!("Kustomization/{kns}/{name}");
        if args.dry_run {
            would(&what);
            continue;
        }
        remove_finalizers_and_delete(
            &Api::<Kustomization>::namespaced(client.clone(), &kns),
            &name,
        )
        .await?;
        log.success(&format!("{what} deleted"));
    }
    // HelmReleases (with the preview controller, or Flux's), then the sources, HelmCharts
    // first (they refer to the repositories).
    let mut sources = 0;
    if !args.restore_flux {
        sources += delete_sources::<sluice_api::HelmRelease>(&client, ns, &args, &log).await?;
        sources += delete_sources::<HelmChart>(&client, ns, &args, &log).await?;
        sources += delete_sources::<GitRepository>(&client, ns, &args, &log).await?;
        sources += delete_sources::<OCIRepository>(&client, ns, &args, &log).await?;
        sources += delete_sources::<Bucket>(&client, ns, &args, &log).await?;
        sources += delete_sources::<HelmRepository>(&client, ns, &args, &log).await?;
    }

    // What install created, found by its labels.
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={ns}");
    let mut kinds: Vec<(&str, &str, bool)> = vec![
        ("apps/v1", "Deployment", true),
        ("v1", "Service", true),
        ("networking.k8s.io/v1", "NetworkPolicy", true),
        ("v1", "ServiceAccount", true),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", false),
    ];
    if !args.keep_crds {
        kinds.push(("apiextensions.k8s.io/v1", "CustomResourceDefinition", false));
    }
    if !args.keep_namespace {
        kinds.push(("v1", "Namespace", false));
    }
    let mut deleted = 0;
    for (api_version, kind, namespaced) in kinds {
        let (api, _): (Api<DynamicObject>, bool) = resolver
            .api_for(&client, api_version, kind, if namespaced { ns } else { "" })
            .await?;
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("listing {kind}s")))?;
        for obj in list.items {
            let name = obj.name_any();
            let what = if namespaced {
                format!("{kind}/{ns}/{name}")
            } else {
                format!("{kind}/{name}")
            };
            if args.dry_run {
                would(&what);
                continue;
            }
            match api.delete(&name, &dp).await {
                Ok(_) => {
                    deleted += 1;
                    log.success(&format!("{what} deleted"));
                }
                Err(e) if kube_util::is_not_found(&e) => {}
                Err(e) => return Err(kube_util::user_kube_error(e, &format!("deleting {what}"))),
            }
        }
    }
    if args.dry_run {
        log.success("dry run: nothing was deleted");
    } else if deleted == 0 && kustomizations.is_empty() && sources == 0 {
        log.warning(&format!("nothing to uninstall in {ns} namespace"));
    } else {
        log.success("uninstall finished");
    }
    Ok(Outcome::Ok)
}

/// Deletes the objects of one source kind, finalizers removed first (in every
/// namespace, or with `--keep-crds` in `ns` only); with `--dry-run` only says
/// which. Only their metadata is read, so an object sluice's types cannot
/// read is deleted too. Returns how many there were.
async fn delete_sources<K>(
    client: &Client,
    ns: &str,
    args: &UninstallArgs,
    log: &Log,
) -> Result<usize>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    let api: Api<K> = if args.keep_crds {
        Api::namespaced(client.clone(), ns)
    } else {
        Api::all(client.clone())
    };
    let objects = match api.list_metadata(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) if kube_util::api_missing(&e) => vec![],
        Err(e) => {
            return Err(kube_util::user_kube_error(
                e,
                &format!("listing {}", K::plural(&())),
            ));
        }
    };
    for object in &objects {
        let ons = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let what = format!("{kind}/{ons}/{name}");
        if args.dry_run {
            log.action(&format!("would delete {what}"));
            continue;
        }
        remove_finalizers_and_delete(&Api::<K>::namespaced(client.clone(), &ons), &name).await?;
        log.success(&format!("{what} deleted"));
    }
    Ok(objects.len())
}

async fn remove_finalizers_and_delete<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"finalizers": null}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(e) if kube_util::is_not_found(&e) => return Ok(()),
        Err(e) => {
            return Err(kube_util::user_kube_error(
                e,
                &format!("removing finalizers of {name}"),
            ));
        }
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if kube_util::is_not_found(&e) => Ok(()),
        Err(e) => Err(kube_util::user_kube_error(e, &format!("deleting {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_ownership_are_no_change() {
        let before = serde_json::json!({
            "metadata": {"name": "sluice", "resourceVersion": "1", "managedFields": [{"manager": "a"}]},
            "spec": {"replicas": 1},
            "status": {"readyReplicas": 0},
        });
        let mut after = before.clone();
        after["metadata"]["resourceVersion"] = "2".into();
        after["metadata"]["managedFields"] = serde_json::json!([{"manager": "b"}]);
        after["status"]["readyReplicas"] = 1.into();
        assert!(same_content(&before, &after));
        after["spec"]["replicas"] = 2.into();
        assert!(!same_content(&before, &after));
    }

    #[test]
    fn manifests_hold_what_flux_expects() {
        let objects = manifests(&InstallOptions {
            namespace: "flux-system".into(),
            image: default_image(),
            helmrelease: false,
            notification: false,
        });
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "Namespace",
                "ServiceAccount",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "ClusterRoleBinding",
                "Service",
                "Deployment",
                "NetworkPolicy",
                "NetworkPolicy",
                "NetworkPolicy",
            ]
        );
        for o in &objects {
            assert_eq!(o["metadata"]["labels"][PART_OF_LABEL], "flux", "{o}");
            assert_eq!(
                o["metadata"]["labels"][INSTANCE_LABEL], "flux-system",
                "{o}"
            );
        }
        let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
        let svc = find("Service");
        assert_eq!(svc["metadata"]["name"], "source-controller");
        assert_eq!(svc["spec"]["ports"][0]["port"], 80);
        let deploy = find("Deployment");
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["args"][0],
            "controller"
        );
        assert!(default_image().starts_with("ghcr.io/sluice-gitops/sluice:v"));
    }

    #[test]
    fn leader_election_is_on_and_its_lease_allowed() {
        let objects = manifests(&InstallOptions {
            namespace: "flux-system".into(),
            image: default_image(),
            helmrelease: false,
            notification: false,
        });
        let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
        let args = &find("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"];
        assert!(
            args.as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--enable-leader-election"),
            "{args}"
        );
        let rules = find("ClusterRole")["rules"].as_array().unwrap();
        let leases = rules
            .iter()
            .find(|r| r["apiGroups"][0] == "coordination.k8s.io" && r["resources"][0] == "leases")
            .expect("a rule for Leases");
        for verb in ["get", "create", "update"] {
            assert!(
                leases["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == verb),
                "{verb}"
            );
        }
    }

    /// Whether an RBAC rule allows `verb` on `resource` (`plural` or
    /// `plural/subresource`) of `group`, as the API server's authorizer
    /// matches rules (`*` matches any group, resource or verb, and any
    /// resource with its subresources).
    fn allows(rule: &Value, group: &str, resource: &str, verb: &str) -> bool {
        let has = |key: &str, want: &str| {
            rule[key]
                .as_array()
                .is_some_and(|values| values.iter().any(|v| v == "*" || v == want))
        };
        let resource_matches = rule["resources"].as_array().is_some_and(|values| {
            values.iter().any(|v| {
                v == "*"
                    || v == resource
                    // `*/sub` matches the subresource `sub` of every resource.
                    || resource
                        .split_once('/')
                        .is_some_and(|(_, sub)| *v == format!("*/{sub}"))
            })
        });
        has("apiGroups", group) && resource_matches && has("verbs", verb)
    }

    /// The controller may read, watch and update every kind it serves, its
    /// status and its finalizers (as Flux's controllers' roles allow), and
    /// what the sources read: Secrets, ConfigMaps, ServiceAccounts (image
    /// pull secrets) and their tokens (workload identity).
    #[test]
    fn cluster_role_covers_every_served_kind() {
        let objects = manifests(&InstallOptions {
            namespace: "flux-system".into(),
            image: default_image(),
            helmrelease: false,
            notification: false,
        });
        let role = objects
            .iter()
            .find(|o| o["kind"] == "ClusterRole")
            .expect("a ClusterRole");
        let rules = role["rules"].as_array().unwrap();
        let allowed = |group: &str, resource: &str, verb: &str| {
            rules.iter().any(|r| allows(r, group, resource, verb))
        };
        let crds = sluice_api::crds();
        let plurals: Vec<&str> = crds.iter().map(|c| c.spec.names.plural.as_str()).collect();
        for kind in [
            "ocirepositories",
            "helmrepositories",
            "helmcharts",
            "buckets",
        ] {
            assert!(plurals.contains(&kind), "{kind} is not served");
        }
        for crd in crds
            .iter()
            .filter(|c| c.spec.group != sluice_api::helm_release::GROUP)
        {
            let group = crd.spec.group.as_str();
            let plural = crd.spec.names.plural.as_str();
            for verb in ["get", "list", "watch", "patch", "update"] {
                assert!(allowed(group, plural, verb), "{verb} {plural}.{group}");
            }
            for sub in ["status", "finalizers"] {
                for verb in ["get", "patch", "update"] {
                    assert!(
                        allowed(group, &format!("{plural}/{sub}"), verb),
                        "{verb} {plural}/{sub}.{group}"
                    );
                }
            }
        }
        for resource in ["secrets", "configmaps", "serviceaccounts"] {
            for verb in ["get", "list", "watch"] {
                assert!(allowed("", resource, verb), "{verb} {resource}");
            }
        }
        assert!(allowed("", "serviceaccounts/token", "create"));
        assert!(allowed("", "serviceaccounts", "impersonate"));
        assert!(!allowed("", "secrets", "delete"));
    }

    /// The controller's own ServiceAccount writes nothing it applies: only
    /// the reconciler it impersonates is bound to cluster-admin, and the
    /// Deployment says so with --reconciler-service-account.
    #[test]
    fn only_the_reconciler_is_cluster_admin() {
        let objects = manifests(&InstallOptions {
            namespace: "flux-system".into(),
            image: default_image(),
            helmrelease: true,
            notification: true,
        });
        let of_kind = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
        let bound: Vec<(String, String)> = of_kind("ClusterRoleBinding")
            .flat_map(|b| {
                let role = b["roleRef"]["name"].as_str().unwrap_or_default().to_owned();
                b["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |s| {
                        (
                            role.clone(),
                            s["name"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
            })
            .collect();
        assert_eq!(
            bound,
            [
                (
                    "sluice-controller-flux-system".to_owned(),
                    CONTROLLER_NAME.to_owned()
                ),
                ("cluster-admin".to_owned(), RECONCILER_NAME.to_owned()),
            ]
        );
        let accounts: Vec<&str> = of_kind("ServiceAccount")
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(accounts, [CONTROLLER_NAME, RECONCILER_NAME]);
        let role = of_kind("ClusterRole").next().expect("a ClusterRole");
        let writes_outside_its_kinds = role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                !r["apiGroups"].as_array().into_iter().flatten().any(|g| {
                    g.as_str()
                        .is_some_and(|g| g.ends_with(".toolkit.fluxcd.io"))
                })
            })
            .filter(|r| {
                r["verbs"].as_array().into_iter().flatten().any(|v| {
                    ["*", "create", "update", "delete", "deletecollection"]
                        .contains(&v.as_str().unwrap_or(""))
                })
            })
            .map(|r| r["resources"].clone())
            .collect::<Vec<_>>();
        // Events, serviceaccounts/token (workload identity) and its Lease.
        assert_eq!(
            writes_outside_its_kinds,
            [
                json!(["events"]),
                json!(["events"]),
                json!(["serviceaccounts/token"]),
                json!(["leases"]),
            ]
        );
        let deploy = of_kind("Deployment").next().expect("a Deployment");
        let args = &deploy["spec"]["template"]["spec"]["containers"][0]["args"];
        assert!(
            args.as_array()
                .into_iter()
                .flatten()
                .any(|a| *a == format!("--reconciler-service-account={RECONCILER_NAME}")),
            "{args}"
        );
    }

    #[test]
    fn network_policies_are_valid_and_mean_what_flux_s_mean() {
        use k8s_openapi::api::networking::v1::NetworkPolicy;
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let objects = manifests(&InstallOptions {
            namespace: "flux-system".into(),
            image: default_image(),
            helmrelease: false,
            notification: false,
        });
        let deploy = objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("a Deployment");
        let container = &deploy["spec"]["template"]["spec"]["containers"][0];
        let port_of = |name: &str| {
            container["ports"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                .and_then(|p| p["containerPort"].as_i64())
                .expect("a named container port")
        };
        assert_eq!(port_of("http-prom"), i64::from(METRICS_PORT));
        assert_eq!(port_of("http"), i64::from(ARTIFACT_PORT));
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.contains(&"--metrics-addr=:8080"), "{args:?}");
        assert!(args.contains(&"--storage-addr=:9090"), "{args:?}");
        let pod_labels = &deploy["spec"]["template"]["metadata"]["labels"];

        let raw: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "NetworkPolicy")
            .collect();
        let mut policies = Vec::new();
        for v in &raw {
            // Typed, then back: nothing misspelled or dropped.
            let typed: NetworkPolicy = serde_json::from_value((*v).clone())
                .unwrap_or_else(|e| panic!("not a NetworkPolicy ({e}): {v}"));
            let back = typed_json(&typed, "networking.k8s.io/v1", "NetworkPolicy");
            assert_eq!(&back, *v, "a field did not survive the round trip");
            assert_eq!(typed.metadata.namespace.as_deref(), Some("flux-system"));
            assert_eq!(v["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
            policies.push(typed);
        }
        let names: Vec<&str> = policies
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["allow-egress", "allow-scraping", "allow-webhooks"]);

        // Which policies select the controller's pods, and what they let in.
        let selects_controller = |p: &NetworkPolicy| {
            let spec = p.spec.as_ref().expect("a spec");
            spec.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .is_none_or(|m| m.iter().all(|(k, v)| pod_labels[k.as_str()] == v.as_str()))
        };
        let mut egress_open = false;
        for p in policies.iter().filter(|p| selects_controller(p)) {
            let spec = p.spec.as_ref().unwrap();
            for rule in spec.ingress.iter().flatten() {
                for peer in rule.from.iter().flatten() {
                    if peer.namespace_selector.is_some() {
                        // From other namespaces: the metrics port only.
                        let ports: Vec<&IntOrString> = rule
                            .ports
                            .iter()
                            .flatten()
                            .filter_map(|p| p.port.as_ref())
                            .collect();
                        assert_eq!(ports, [&IntOrString::Int(i32::from(METRICS_PORT))], "{p:?}");
                    } else {
                        // Otherwise from this namespace's pods only.
                        assert!(
                            peer.pod_selector.is_some() && peer.ip_block.is_none(),
                            "{p:?}"
                        );
                    }
                }
            }
            for rule in spec.egress.iter().flatten() {
                egress_open |= rule.to.is_none() && rule.ports.is_none();
            }
        }
        assert!(
            egress_open,
            "the controller must reach Git hosts and the API server"
        );
        let webhooks = &policies[2];
        assert!(!selects_controller(webhooks));
    }

    #[test]
    fn the_helmrelease_preview_comes_with_its_crd_and_flag() {
        let find = |helmrelease: bool| {
            let objects = manifests(&InstallOptions {
                namespace: "flux-system".into(),
                image: default_image(),
                helmrelease,
                notification: false,
            });
            let crd = objects.iter().any(|o| {
                o["kind"] == "CustomResourceDefinition"
                    && o["metadata"]["name"] == "helmreleases.helm.toolkit.fluxcd.io"
            });
            let flag = objects.iter().any(|o| {
                o["kind"] == "Deployment"
                    && o["spec"]["template"]["spec"]["containers"][0]["args"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "--helmrelease"))
            });
            (crd, flag)
        };
        assert_eq!(find(false), (false, false));
        assert_eq!(find(true), (true, true));
    }

    #[test]
    fn the_receiver_preview_comes_with_its_crd_flag_service_and_policy() {
        let objects = |notification: bool| {
            manifests(&InstallOptions {
                namespace: "flux-system".into(),
                image: default_image(),
                helmrelease: false,
                notification,
            })
        };
        let has = |objects: &[Value], kind: &str, name: &str| {
            objects
                .iter()
                .any(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        };
        let off = objects(false);
        assert!(!has(
            &off,
            "CustomResourceDefinition",
            "receivers.notification.toolkit.fluxcd.io"
        ));
        assert!(!has(&off, "Service", WEBHOOK_SERVICE));
        let on = objects(true);
        assert!(has(
            &on,
            "CustomResourceDefinition",
            "receivers.notification.toolkit.fluxcd.io"
        ));
        assert!(has(&on, "Service", WEBHOOK_SERVICE));
        assert!(has(&on, "Service", EVENTS_SERVICE));
        for crd in [
            "providers.notification.toolkit.fluxcd.io",
            "alerts.notification.toolkit.fluxcd.io",
        ] {
            assert!(has(&on, "CustomResourceDefinition", crd), "{crd}");
            assert!(!has(&off, "CustomResourceDefinition", crd), "{crd}");
        }
        assert!(has(&on, "NetworkPolicy", "allow-webhooks-sluice"));
        let deployment = on.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
        assert!(
            args.as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--notification")
        );
        assert!(
            args.as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--receiver-addr=:9292")
        );
        assert!(
            args.as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--notification-events-addr=:9490")
        );
    }
}
