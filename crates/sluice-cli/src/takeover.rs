//! Moving a cluster from Flux to sluice, and back.
//!
//! sluice serves Flux's kinds with Flux's field managers, labels, finalizer
//! and inventory format, so taking over is mostly stopping Flux: `sluice
//! install` scales Flux's controllers that sluice replaces to zero (the
//! replicas they had kept in an annotation), keeps the spec of Flux's objects
//! that sluice's install shares a name with (the `source-controller` Service,
//! the NetworkPolicies) in an annotation before it changes them, and then
//! installs as usual; the next reconcile of every Flux object is sluice's,
//! which adopts the objects' inventories and applies over what Flux applied
//! without re-creating anything. `sluice uninstall --restore-flux` puts those
//! back and removes only what is sluice's own.
//!
//! One case is refused rather than taken over: a Kustomization whose
//! inventory holds a Flux controller that sluice replaces (a repository made
//! by `flux bootstrap` applies `gotk-components.yaml`). sluice would apply it
//! and bring that controller back.

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use sluice_api::Kustomization;
use sluice_api::meta::ObjectId;

use crate::kube_util::{self, Resolver};
use crate::output::Log;

/// On a Flux controller's Deployment that sluice scaled to zero: the replicas
/// it had.
pub const FLUX_REPLICAS_ANNOTATION: &str = "sluice.dev/flux-replicas";
/// On a Flux object whose name sluice's install shares: its spec before the
/// install changed it (JSON).
pub const FLUX_SPEC_ANNOTATION: &str = "sluice.dev/flux-spec";

/// A Flux controller's Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FluxController {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub replicas: i32,
    /// The replicas kept when sluice scaled it to zero.
    pub taken_over: Option<i32>,
}

impl FluxController {
    /// The Flux controller `d` is (by name, with a `fluxcd/` image), if it is one.
    pub fn of(d: &Deployment) -> Option<Self> {
        let name = d.name_any();
        if !FLUX_CONTROLLERS.contains(&name.as_str()) {
            return None;
        }
        let spec = d.spec.as_ref()?;
        let image = spec
            .template
            .spec
            .as_ref()?
            .containers
            .first()?
            .image
            .clone()
            .unwrap_or_default();
        if !image.contains("fluxcd/") {
            return None;
        }
        Some(FluxController {
            namespace: d.namespace().unwrap_or_default(),
            name,
            image,
            replicas: spec.replicas.unwrap_or(1),
            taken_over: d
                .annotations()
                .get(FLUX_REPLICAS_ANNOTATION)
                .and_then(|r| r.parse().ok()),
        })
    }
}

/// Flux's controllers, by Deployment name.
pub const FLUX_CONTROLLERS: [&str; 6] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
];

/// Whether sluice, with these features, reconciles what Flux's `name` does.
pub fn replaces(name: &str, helmrelease: bool, notification: bool) -> bool {
    match name {
        "source-controller" | "kustomize-controller" => true,
        "helm-controller" => helmrelease,
        "notification-controller" => notification,
        _ => false,
    }
}

/// What an install on a cluster with Flux does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Flux controllers sluice replaces that run: scaled to zero.
    pub scale_down: Vec<FluxController>,
    /// Flux controllers that stay (sluice serves their sources).
    pub beside: Vec<FluxController>,
    /// Why the install must not go on (a Kustomization would bring Flux back).
    pub blockers: Vec<String>,
}

/// The plan for `found` Flux controllers and the cluster's Kustomizations.
pub fn plan(
    found: Vec<FluxController>,
    kustomizations: &[Kustomization],
    helmrelease: bool,
    notification: bool,
) -> Plan {
    let mut plan = Plan::default();
    for c in found {
        if !replaces(&c.name, helmrelease, notification) {
            plan.beside.push(c);
            continue;
        }
        for ks in kustomizations {
            let deploys = ks.inventory().iter().any(|e| {
                ObjectId::parse(&e.id).is_ok_and(|id| {
                    id.group == "apps"
                        && id.kind == "Deployment"
                        && id.namespace == c.namespace
                        && id.name == c.name
                })
            });
            if deploys {
                plan.blockers.push(format!(
                    "Kustomization {}/{} deploys Flux's {} (Deployment {}/{}; `flux bootstrap` \
                     puts it in Git as flux-system/gotk-components.yaml): sluice would apply it \
                     and bring Flux back. Put sluice's components in its place in Git \
                     (`sluice install --export -n {}`), or drop Flux's controllers from it, \
                     let it sync, then install again",
                    ks.namespace().unwrap_or_default(),
                    ks.name_any(),
                    c.name,
                    c.namespace,
                    c.name,
                    c.namespace
                ));
            }
        }
        if c.replicas > 0 {
            plan.scale_down.push(c);
        }
    }
    plan
}

/// Flux's controllers in the cluster.
pub async fn find(client: &Client) -> Result<Vec<FluxController>> {
    let list = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| kube_util::user_kube_error(e, "listing Deployments"))?;
    Ok(list.items.iter().filter_map(FluxController::of).collect())
}

/// Every Kustomization in the cluster (none when the CRD is not there).
pub async fn kustomizations(client: &Client) -> Result<Vec<Kustomization>> {
    match Api::<Kustomization>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(l) => Ok(l.items),
        Err(e) if kube_util::api_missing(&e) => Ok(vec![]),
        Err(e) => Err(kube_util::user_kube_error(e, "listing Kustomizations")),
    }
}

/// Prints the plan (`install --dry-run`).
pub fn print(plan: &Plan, log: &Log) {
    for c in &plan.scale_down {
        log.action(&format!(
            "would scale Flux's {} (Deployment {}/{}, {}) from {} to 0 replicas",
            c.name, c.namespace, c.name, c.image, c.replicas
        ));
    }
    for c in &plan.beside {
        log.success(&format!(
            "Flux's {} ({}/{}) keeps running beside sluice",
            c.name, c.namespace, c.name
        ));
    }
    for b in &plan.blockers {
        log.failure(b);
    }
}

/// Before the install changes them: the spec of each object of `objects` that exists and
/// is not sluice's (Flux's Services and NetworkPolicies of the same name), kept on it.
pub async fn keep_flux_specs(client: &Client, objects: &[Value], log: &Log) -> Result<()> {
    let mut resolver = Resolver::default();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        if !["Service", "NetworkPolicy"].contains(&kind) {
            continue;
        }
        let (ns, name) = (
            o["metadata"]["namespace"].as_str().unwrap_or_default(),
            o["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let Some(live) = resolver.get(client, api_version, kind, ns, name).await? else {
            continue;
        };
        let meta = &live["metadata"];
        let sluices =
            meta["labels"][crate::install::MANAGED_BY_LABEL] == crate::install::MANAGED_BY;
        if sluices || !meta["annotations"][FLUX_SPEC_ANNOTATION].is_null() {
            continue;
        }
        let (api, _) = resolver.api_for(client, api_version, kind, ns).await?;
        let patch = json!({"metadata": {"annotations": {
            FLUX_SPEC_ANNOTATION: live["spec"].to_string()}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                kube_util::user_kube_error(e, &format!("annotating {kind} {ns}/{name}"))
            })?;
        log.success(&format!(
            "{kind}/{ns}/{name}: Flux's spec kept for --restore-flux"
        ));
    }
    Ok(())
}

/// Scales each controller to zero, keeping its replicas on it.
pub async fn scale_down(client: &Client, controllers: &[FluxController], log: &Log) -> Result<()> {
    for c in controllers {
        scale(client, c, 0, Some(c.replicas.to_string())).await?;
        log.success(&format!(
            "Flux's {} ({}/{}) scaled from {} to 0 replicas",
            c.name, c.namespace, c.name, c.replicas
        ));
    }
    Ok(())
}

/// Sets `c`'s replicas, and the annotation that keeps its own (`None` removes it).
async fn scale(
    client: &Client,
    c: &FluxController,
    replicas: i32,
    kept: Option<String>,
) -> Result<()> {
    let patch = json!({
        "metadata": {"annotations": {FLUX_REPLICAS_ANNOTATION: kept}},
        "spec": {"replicas": replicas},
    });
    Api::<Deployment>::namespaced(client.clone(), &c.namespace)
        .patch(&c.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            kube_util::user_kube_error(e, &format!("scaling Deployment {}/{}", c.namespace, c.name))
        })?;
    Ok(())
}

/// `uninstall --restore-flux`: Flux's controllers back to their replicas, Flux's specs back on
/// the objects the install shared, and the CRDs and namespace no longer marked as sluice's.
/// With `dry_run`, only says so.
pub async fn restore(client: &Client, ns: &str, dry_run: bool, log: &Log) -> Result<()> {
    for c in find(client).await? {
        let Some(replicas) = c.taken_over else {
            continue;
        };
        if dry_run {
            log.action(&format!(
                "would scale Flux's {} ({}/{}) back to {replicas} replicas",
                c.name, c.namespace, c.name
            ));
            continue;
        }
        scale(client, &c, replicas, None).await?;
        log.success(&format!(
            "Flux's {} ({}/{}) scaled back to {replicas} replicas",
            c.name, c.namespace, c.name
        ));
    }
    let mut resolver = Resolver::default();
    let selector = format!(
        "{}={},{}={ns}",
        crate::install::MANAGED_BY_LABEL,
        crate::install::MANAGED_BY,
        crate::install::INSTANCE_LABEL
    );
    for (api_version, kind) in [("v1", "Service"), ("networking.k8s.io/v1", "NetworkPolicy")] {
        let (api, _) = resolver.api_for(client, api_version, kind, ns).await?;
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("listing {kind}s")))?;
        for mut obj in list.items {
            let Some(saved) = obj.annotations().get(FLUX_SPEC_ANNOTATION).cloned() else {
                continue;
            };
            let name = obj.name_any();
            if dry_run {
                log.action(&format!("would give {kind}/{ns}/{name} Flux's spec back"));
                continue;
            }
            let spec: Value = serde_json::from_str(&saved).map_err(|e| {
                anyhow::anyhow!("{kind}/{ns}/{name}: annotation {FLUX_SPEC_ANNOTATION}: {e}")
            })?;
            obj.annotations_mut().remove(FLUX_SPEC_ANNOTATION);
            obj.labels_mut().remove(crate::install::MANAGED_BY_LABEL);
            obj.data["spec"] = spec;
            api.replace(&name, &PostParams::default(), &obj)
                .await
                .map_err(|e| {
                    kube_util::user_kube_error(e, &format!("restoring {kind}/{ns}/{name}"))
                })?;
            log.success(&format!("{kind}/{ns}/{name} has Flux's spec back"));
        }
    }
    // Flux's again: a later plain `sluice uninstall` must not delete them.
    for (api_version, kind) in [
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("v1", "Namespace"),
    ] {
        let (api, _) = resolver.api_for(client, api_version, kind, "").await?;
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("listing {kind}s")))?;
        for obj in list.items {
            let name = obj.name_any();
            if dry_run {
                log.action(&format!("would leave {kind}/{name} to Flux"));
                continue;
            }
            let patch = json!({"metadata": {"labels": {crate::install::MANAGED_BY_LABEL: null}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    kube_util::user_kube_error(e, &format!("relabelling {kind}/{name}"))
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(name: &str, replicas: i32) -> FluxController {
        FluxController {
            namespace: "flux-system".into(),
            name: name.into(),
            image: format!("ghcr.io/fluxcd/{name}:v1.9.5"),
            replicas,
            taken_over: None,
        }
    }

    fn kustomization(inventory: &[&str]) -> Kustomization {
        let entries: Vec<Value> = inventory
            .iter()
            .map(|id| json!({"id": id, "v": "v1"}))
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "flux-system", "namespace": "flux-system"},
            "spec": {"interval": "10m", "path": "./clusters/home", "prune": true,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            "status": {"inventory": {"entries": entries}},
        }))
        .unwrap()
    }

    #[test]
    fn what_sluice_replaces_is_scaled_down_the_rest_stays() {
        let found = vec![
            controller("source-controller", 1),
            controller("kustomize-controller", 1),
            controller("helm-controller", 1),
            controller("notification-controller", 1),
            controller("image-reflector-controller", 1),
        ];
        let names = |cs: &[FluxController]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let p = plan(found.clone(), &[], false, false);
        assert_eq!(
            names(&p.scale_down),
            ["source-controller", "kustomize-controller"]
        );
        assert_eq!(
            names(&p.beside),
            [
                "helm-controller",
                "notification-controller",
                "image-reflector-controller"
            ]
        );
        assert!(p.blockers.is_empty());
        let p = plan(found, &[], true, true);
        assert_eq!(p.scale_down.len(), 4);
        // Already at zero: nothing to scale.
        let p = plan(vec![controller("source-controller", 0)], &[], false, false);
        assert!(p.scale_down.is_empty() && p.beside.is_empty());
    }

    #[test]
    fn a_kustomization_that_deploys_a_replaced_controller_blocks() {
        let ks = kustomization(&[
            "flux-system_kustomize-controller_apps_Deployment",
            "flux-system_helm-controller_apps_Deployment",
            "_gitrepositories.source.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
        ]);
        let found = vec![
            controller("kustomize-controller", 1),
            controller("helm-controller", 1),
        ];
        let p = plan(found.clone(), std::slice::from_ref(&ks), false, false);
        assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
        assert!(
            p.blockers[0].starts_with(
                "Kustomization flux-system/flux-system deploys Flux's kustomize-controller"
            ),
            "{}",
            p.blockers[0]
        );
        // With --helmrelease the helm-controller it deploys blocks too.
        let p = plan(found, &[ks], true, false);
        assert_eq!(p.blockers.len(), 2);
        // Another namespace's controller of the same name is another Deployment.
        let other = kustomization(&["apps_kustomize-controller_apps_Deployment"]);
        let p = plan(
            vec![controller("kustomize-controller", 1)],
            &[other],
            false,
            false,
        );
        assert!(p.blockers.is_empty());
    }
}
