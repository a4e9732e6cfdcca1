//! `sluice check [--pre]`: what is real in the cluster. One line per
//! finding, exit 1 when something is wrong.
//!
//! - the API server's version (`--pre` stops here);
//! - Flux's CRDs present and serving `v1`;
//! - the sluice controller Deployment ready;
//! - Flux's source-controller or kustomize-controller running beside sluice
//!   (a conflict: both would reconcile the same objects); Flux's other
//!   controllers (helm-controller, notification-controller, the image
//!   automation ones) work beside sluice, which serves their sources, unless
//!   sluice runs its own HelmRelease controller (`--helmrelease`) or
//!   notifications (`--notification`): then the Flux twin is a conflict too;
//!   one scaled to zero (as `sluice install` leaves those it takes over) is
//!   fine;
//! - k3s packaged add-ons (objects annotated `objectset.rio.cattle.io/*`)
//!   that a Kustomization also manages: k3s re-applies its manifests and the
//!   two fight; the k3s flag that disables the add-on is named.

use std::collections::HashSet;

use anyhow::Result;
use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use sluice_api::Kustomization;
use sluice_api::meta::ObjectId;

use crate::install::CONTROLLER_NAME;
use crate::kube_util::{self, Resolver, typed_json};
use crate::output::{Color, OutputFormat, print_data};
use crate::takeover::FluxController;
use crate::{GlobalArgs, Outcome};

/// The oldest Kubernetes minor version sluice supports.
pub const MIN_MINOR: u32 = 31;

/// `sluice check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only the prerequisites (the API server's version), before installing.
    #[arg(long)]
    pub pre: bool,

    /// First wait for the controller Deployment to be ready (after an install k3s applies
    /// from its manifests folder, say), for at most --timeout.
    #[arg(long, conflicts_with = "pre")]
    pub wait: bool,

    /// How long --wait waits.
    #[arg(long, default_value = "5m", value_parser = crate::reconcile::parse_timeout)]
    pub timeout: std::time::Duration,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Whether it is fine.
    pub ok: bool,
    /// What was found.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    fn ok(message: impl Into<String>) -> Self {
        Finding {
            ok: true,
            message: message.into(),
            hint: None,
        }
    }

    fn bad(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            ok: false,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// The k3s `--disable` flag for an add-on, from its owner name or the
/// object's name.
pub fn k3s_disable_flag(owner: &str, name: &str) -> Option<&'static str> {
    let s = format!("{owner} {name}").to_ascii_lowercase();
    if s.contains("traefik") {
        Some("--disable=traefik")
    } else if s.contains("coredns") {
        Some("--disable=coredns")
    } else if s.contains("servicelb") || s.contains("svclb") {
        Some("--disable=servicelb")
    } else if s.contains("local-storage") || s.contains("local-path") {
        Some("--disable=local-storage")
    } else if s.contains("metrics-server") {
        Some("--disable=metrics-server")
    } else {
        None
    }
}

fn version_finding(client_version: &k8s_openapi::apimachinery::pkg::version::Info) -> Finding {
    let minor: u32 = client_version
        .minor
        .trim_end_matches('+')
        .parse()
        .unwrap_or(0);
    let major: u32 = client_version.major.parse().unwrap_or(0);
    if major > 1 || (major == 1 && minor >= MIN_MINOR) {
        Finding::ok(format!(
            "Kubernetes {} >=1.{MIN_MINOR}.0",
            client_version.git_version
        ))
    } else {
        Finding::bad(
            format!(
                "Kubernetes {} is older than 1.{MIN_MINOR}.0",
                client_version.git_version
            ),
            "upgrade the cluster",
        )
    }
}

/// Runs every check (or only the prerequisites).
pub async fn findings(client: &Client, ns: &str, pre: bool) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| kube_util::user_kube_error(e, "asking the API server for its version"))?;
    out.push(version_finding(&version));
    if pre {
        return Ok(out);
    }

    // CRDs.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, version) in [
        ("gitrepositories.source.toolkit.fluxcd.io", "v1"),
        ("ocirepositories.source.toolkit.fluxcd.io", "v1"),
        ("helmrepositories.source.toolkit.fluxcd.io", "v1"),
        ("helmcharts.source.toolkit.fluxcd.io", "v1"),
        ("buckets.source.toolkit.fluxcd.io", "v1"),
        ("kustomizations.kustomize.toolkit.fluxcd.io", "v1"),
    ] {
        match crds
            .get_opt(name)
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("getting CRD {name}")))?
        {
            None => out.push(Finding::bad(
                format!("CRD {name} not found"),
                "install it with `sluice install`",
            )),
            Some(crd) => {
                let served: Vec<&str> = crd
                    .spec
                    .versions
                    .iter()
                    .filter(|v| v.served)
                    .map(|v| v.name.as_str())
                    .collect();
                if served.contains(&version) {
                    out.push(Finding::ok(format!("CRD {name} serves {version}")));
                } else {
                    out.push(Finding::bad(
                        format!(
                            "CRD {name} does not serve {version} (serves: {})",
                            served.join(", ")
                        ),
                        "upgrade the CRDs with `sluice install`",
                    ));
                }
            }
        }
    }

    // The controller.
    let mut sluice_args: Vec<String> = vec![];
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    match deployments
        .get_opt(CONTROLLER_NAME)
        .await
        .map_err(|e| kube_util::user_kube_error(e, "getting the controller Deployment"))?
    {
        None => out.push(Finding::bad(
            format!("controller Deployment {ns}/{CONTROLLER_NAME} not found"),
            format!("install it with `sluice install -n {ns}`"),
        )),
        Some(d) => {
            sluice_args = d
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.args.clone())
                .unwrap_or_default();
            let v = typed_json(&d, "apps/v1", "Deployment");
            let r = sluice_kstatus::compute_or_unknown(&v, &sluice_kstatus::ComputeOptions::flux());
            let image = d
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            if r.status == sluice_kstatus::Status::Current {
                out.push(Finding::ok(format!(
                    "controller {ns}/{CONTROLLER_NAME} ready ({image})"
                )));
            } else {
                out.push(Finding::bad(
                    format!("controller {ns}/{CONTROLLER_NAME} not ready: {}", r.message),
                    format!("see why with `sluice why deployment/{CONTROLLER_NAME} -n {ns}`"),
                ));
            }
        }
    }

    // Flux's controllers beside sluice.
    let all: Api<Deployment> = Api::all(client.clone());
    let list = all
        .list(&ListParams::default())
        .await
        .map_err(|e| kube_util::user_kube_error(e, "listing Deployments"))?;
    let flux: Vec<FluxController> = list.items.iter().filter_map(FluxController::of).collect();
    let flag_on = |flag: &str| {
        sluice_args
            .iter()
            .any(|a| a == flag || *a == format!("{flag}=true"))
    };
    for c in flux.iter().cloned() {
        let (name, dns, image) = (c.name, c.namespace, c.image);
        if c.replicas == 0 {
            out.push(Finding::ok(match c.taken_over {
                Some(r) => format!(
                    "Flux's {name} in {dns} is scaled to zero: sluice took over \
                     (`sluice uninstall --restore-flux` scales it back to {r})"
                ),
                None => format!("Flux's {name} in {dns} is scaled to zero"),
            }));
            continue;
        }
        // Those that reconcile what sluice always does (every source kind it
        // serves, Kustomizations); the others work beside it, from the
        // sources it serves, unless its own twin runs.
        let conflicting = crate::takeover::replaces(&name, false, false);
        // sluice's own twin of this controller, when its flag is on.
        let twin = match name.as_str() {
            "helm-controller" => Some("--helmrelease"),
            "notification-controller" => Some("--notification"),
            _ => None,
        }
        .filter(|flag| flag_on(flag));
        if let Some(flag) = twin {
            out.push(Finding::bad(
                format!(
                    "Flux's {name} is running in {dns} ({image}) and sluice runs its own ({flag}): both would act on the same objects"
                ),
                format!(
                    "run one of them: delete Deployment {dns}/{name}, or reinstall sluice without {flag}"
                ),
            ));
        } else if conflicting {
            out.push(Finding::bad(
                format!(
                    "Flux's {name} is running in {dns} ({image}): it reconciles the same objects as sluice"
                ),
                format!("run one of them: delete Deployment {dns}/{name} or `sluice uninstall`"),
            ));
        } else {
            out.push(Finding::ok(format!(
                "Flux's {name} is running in {dns} ({image}) beside sluice"
            )));
        }
    }
    // A Kustomization that would bring back a Flux controller sluice replaces.
    if !flux.is_empty() {
        let kustomizations = crate::takeover::kustomizations(client).await?;
        let plan = crate::takeover::plan(
            flux,
            &kustomizations,
            flag_on("--helmrelease"),
            flag_on("--notification"),
        );
        for blocker in plan.blockers {
            out.push(Finding::bad(
                blocker,
                "see docs/operations.md, \"Moving from Flux, and back\"",
            ));
        }
    }

    // k3s add-ons that a Kustomization also manages.
    out.extend(k3s_conflicts(client).await?);
    Ok(out)
}

/// Objects in some Kustomization's inventory that k3s also deploys.
pub async fn k3s_conflicts(client: &Client) -> Result<Vec<Finding>> {
    let ks_api: Api<Kustomization> = Api::all(client.clone());
    let kustomizations = match ks_api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) if kube_util::api_missing(&e) => return Ok(vec![]),
        Err(e) => return Err(kube_util::user_kube_error(e, "listing Kustomizations")),
    };
    let mut resolver = Resolver::default();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for ks in &kustomizations {
        for entry in ks.inventory() {
            if !seen.insert(entry.id.clone()) {
                continue;
            }
            let (Ok(id), Ok(api_version)) = (ObjectId::parse(&entry.id), entry.api_version())
            else {
                continue;
            };
            let Ok(Some(live)) = resolver
                .get(client, &api_version, &id.kind, &id.namespace, &id.name)
                .await
            else {
                continue;
            };
            let annotations = live["metadata"]["annotations"].as_object();
            let k3s = annotations
                .is_some_and(|a| a.keys().any(|k| k.starts_with("objectset.rio.cattle.io/")));
            if !k3s {
                continue;
            }
            let owner = annotations
                .and_then(|a| a.get("objectset.rio.cattle.io/owner-name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let what = if id.namespace.is_empty() {
                format!("{} {}", id.kind, id.name)
            } else {
                format!("{} {}/{}", id.kind, id.namespace, id.name)
            };
            let hint = match k3s_disable_flag(owner, &id.name) {
                Some(flag) => format!(
                    "start k3s with {flag} (or drop it from the Kustomization)"
                ),
                None => "remove the manifest from /var/lib/rancher/k3s/server/manifests (or drop it from the Kustomization)".to_string(),
            };
            let owner_text = if owner.is_empty() {
                String::new()
            } else {
                format!(" (add-on {owner})")
            };
            out.push(Finding::bad(
                format!(
                    "{what} is a k3s packaged add-on{owner_text} and is also managed by Kustomization {}/{}",
                    ks.namespace().unwrap_or_default(),
                    ks.name_any()
                ),
                hint,
            ));
        }
    }
    Ok(out)
}

/// Runs `sluice check`.
pub async fn run(g: &GlobalArgs, args: CheckArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let log = crate::output::Log::default();
    if args.output == OutputFormat::Table {
        log.action(if args.pre {
            "checking prerequisites"
        } else {
            "checking sluice"
        });
    }
    if args.wait
        && let Err(e) = crate::install::wait_controller(&client, &g.namespace, args.timeout).await
    {
        // The findings say what is wrong; this says what the wait saw last.
        log.warning(&format!("{e:#}"));
    }
    let all = findings(&client, &g.namespace, args.pre).await?;
    let failed = all.iter().any(|f| !f.ok);
    match args.output {
        OutputFormat::Table => {
            let c = Color::stdout();
            for f in &all {
                if f.ok {
                    println!("{} {}", c.green("✔"), f.message);
                } else {
                    match &f.hint {
                        Some(h) => println!("{} {} — {h}", c.red("✗"), f.message),
                        None => println!("{} {}", c.red("✗"), f.message),
                    }
                }
            }
            if failed {
                log.failure("check failed");
            } else {
                log.success(if args.pre {
                    "prerequisites checks passed"
                } else {
                    "all checks passed"
                });
            }
        }
        format => print_data(format, &all)?,
    }
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_flags() {
        assert_eq!(
            k3s_disable_flag("traefik", "traefik"),
            Some("--disable=traefik")
        );
        assert_eq!(k3s_disable_flag("", "coredns"), Some("--disable=coredns"));
        assert_eq!(
            k3s_disable_flag("local-storage", "local-path-provisioner"),
            Some("--disable=local-storage")
        );
        assert_eq!(k3s_disable_flag("rolebindings", "x"), None);
    }
}
