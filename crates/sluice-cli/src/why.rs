//! `sluice why KIND/NAME`: the chain from an object to the root cause of it
//! not being ready, walking `dependsOn`, the source (a Kustomization's
//! GitRepository, OCIRepository or Bucket, a HelmRelease's OCIRepository or HelmChart,
//! a HelmChart's HelmRepository, GitRepository or Bucket, and the Secrets a source
//! names), a HelmRelease's missing `valuesFrom` objects, the HelmReleases a
//! Kustomization applied, health checks and conditions, down to Pods, claims
//! and StorageClasses (with `sluice_kstatus::explain`). For example:
//!
//! ```text
//! apps → core → prometheus-crds: Kustomization flux-system/prometheus-crds not found
//! memos: Deployment apps/memos 0/1 available → Pod memos-6c… Pending → PVC memos-data unbound → StorageClass "local-hostpath" does not exist
//! podinfo → charts: HelmRepository flux-system/charts: failed to fetch Helm repository index: … 401 Unauthorized
//! ```

use std::collections::HashSet;
use std::fmt::Debug;

use anyhow::Result;
use clap::Args;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_api::helm_release::ChartRefKind;
use sluice_api::kustomization::SourceKind;
use sluice_api::meta::{FluxObject, LocalObjectReference, ObjectId};
use sluice_api::source::HelmChartSourceKind;
use sluice_api::{
    Bucket, ExternalArtifact, GitRepository, HelmChart, HelmRelease, HelmRepository, Kustomization,
    OCIRepository,
};
use sluice_kstatus::{ComputeOptions, ExplainInput, Status, explain, render_chain};

use crate::events::canonical_kind;
use crate::kube_util::{self, Resolver, typed_json};
use crate::output::{Color, OutputFormat, print_data};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The object: KIND/NAME or KIND/NAMESPACE/NAME, where KIND is
    /// kustomization (ks), helmrelease (hr), gitrepository (gitrepo), ocirepository (ocirepo),
    /// bucket, helmrepository (helmrepo), helmchart (hc), deployment, statefulset,
    /// daemonset, pod, pvc, service (svc) or certificate (cert, cert-manager's).
    #[arg(value_name = "KIND/NAME")]
    pub object: String,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// One hop of the chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What is wrong with it (or its state).
    pub message: String,
    /// The object does not exist.
    pub missing: bool,
}

impl Step {
    fn new(kind: &str, ns: &str, name: &str, message: impl Into<String>) -> Self {
        Step {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            message: message.into(),
            missing: false,
        }
    }

    fn missing(kind: &str, ns: &str, name: &str) -> Self {
        Step {
            missing: true,
            ..Step::new(kind, ns, name, "not found")
        }
    }

    fn object(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// `Kind ns/name not found` or `Kind ns/name: message`.
    pub fn describe(&self) -> String {
        if self.missing && (self.message.is_empty() || self.message == "not found") {
            format!("{} not found", self.object())
        } else if self.missing {
            format!("{} {}", self.object(), self.message)
        } else if self.message.is_empty() {
            self.object()
        } else {
            format!("{}: {}", self.object(), self.message)
        }
    }
}

/// The result of `why`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Whether the object is ready (then `steps` has one step).
    pub ready: bool,
    /// From the object to the root cause.
    pub steps: Vec<Step>,
    /// The chain on one line.
    pub summary: String,
}

/// Parses `KIND/NAME` or `KIND/NAMESPACE/NAME`.
pub fn parse_target(s: &str, default_ns: &str) -> Result<(String, String, String)> {
    let parts: Vec<&str> = s.split('/').collect();
    let bad = || -> anyhow::Error {
        UserError::new(format!("invalid object {s:?}: expected KIND/NAME"))
            .hint("for example `sluice why kustomization/apps` or `sluice why deployment/memos -n apps`")
            .into()
    };
    match parts.as_slice() {
        [k, n] if !k.is_empty() && !n.is_empty() => {
            Ok((canonical_kind(k), default_ns.to_string(), n.to_string()))
        }
        [k, ns, n] if !k.is_empty() && !ns.is_empty() && !n.is_empty() => {
            Ok((canonical_kind(k), ns.to_string(), n.to_string()))
        }
        _ => Err(bad()),
    }
}

/// Walks the chain for the object.
pub struct Walker {
    client: Client,
    resolver: Resolver,
    visited: HashSet<(String, String, String)>,
}

/// What one level of the walk found: the steps, and the names of the Flux
/// objects passed on the way (for the one-line summary).
struct Walk {
    steps: Vec<Step>,
    path: Vec<String>,
    /// The terminal part of the summary (a workload cause chain).
    tail: Option<String>,
    ready: bool,
}

/// `me` (named `name`), not ready because of what `sub` found below it.
fn below(me: Step, name: &str, sub: Walk) -> Walk {
    let mut steps = vec![me];
    steps.extend(sub.steps);
    let mut path = vec![name.to_string()];
    path.extend(sub.path);
    Walk {
        steps,
        path,
        tail: sub.tail,
        ready: false,
    }
}

/// A source kind `why` follows: the Secrets it names, and whether it has a
/// reconciler at all.
trait WhySource:
    FluxObject
    + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Debug
{
    const KIND: &'static str;

    /// The Secrets of its spec (credentials, certificates, proxy,
    /// verification keys).
    fn secret_refs(&self) -> Vec<&LocalObjectReference>;

    /// An object no controller reconciles (a HelmRepository of `type: oci`,
    /// as in Flux): it has no conditions, and counts as ready.
    fn is_static(&self) -> bool {
        false
    }
}

impl WhySource for GitRepository {
    const KIND: &'static str = "GitRepository";

    fn secret_refs(&self) -> Vec<&LocalObjectReference> {
        let s = &self.spec;
        [
            s.secret_ref.as_ref(),
            s.proxy_secret_ref.as_ref(),
            s.verification.as_ref().map(|v| &v.secret_ref),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl WhySource for OCIRepository {
    const KIND: &'static str = "OCIRepository";

    fn secret_refs(&self) -> Vec<&LocalObjectReference> {
        let s = &self.spec;
        [
            s.secret_ref.as_ref(),
            s.cert_secret_ref.as_ref(),
            s.proxy_secret_ref.as_ref(),
            s.verification.as_ref().and_then(|v| v.secret_ref.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl WhySource for Bucket {
    const KIND: &'static str = "Bucket";

    fn secret_refs(&self) -> Vec<&LocalObjectReference> {
        let s = &self.spec;
        let sts = s.sts.as_ref();
        [
            s.secret_ref.as_ref(),
            s.cert_secret_ref.as_ref(),
            s.proxy_secret_ref.as_ref(),
            sts.and_then(|t| t.secret_ref.as_ref()),
            sts.and_then(|t| t.cert_secret_ref.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl WhySource for HelmRepository {
    const KIND: &'static str = "HelmRepository";

    fn secret_refs(&self) -> Vec<&LocalObjectReference> {
        let s = &self.spec;
        [s.secret_ref.as_ref(), s.cert_secret_ref.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn is_static(&self) -> bool {
        self.spec.is_oci()
    }
}

fn ready_message<K: FluxObject>(obj: &K) -> String {
    match obj.ready_condition() {
        Some(c) if !c.message.is_empty() => c.message.clone(),
        Some(c) => format!("Ready={}", c.status),
        None => "waiting to be reconciled".into(),
    }
}

impl Walker {
    /// A walker using `client`.
    pub fn new(client: Client) -> Self {
        Walker {
            client,
            resolver: Resolver::default(),
            visited: HashSet::new(),
        }
    }

    /// Explains `kind` `ns`/`name`.
    pub async fn explain(&mut self, kind: &str, ns: &str, name: &str) -> Result<Explanation> {
        let walk = match kind {
            "Kustomization" => self.kustomization(ns, name).await?,
            "GitRepository" => self.source::<GitRepository>(ns, name).await?,
            "OCIRepository" => self.source::<OCIRepository>(ns, name).await?,
            "Bucket" => self.source::<Bucket>(ns, name).await?,
            "HelmRepository" => self.source::<HelmRepository>(ns, name).await?,
            "HelmChart" => self.chart(ns, name).await?,
            "HelmRelease" => self.helm_release(ns, name).await?,
            "Certificate" => self.certificate(ns, name).await?,
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "Pod"
            | "PersistentVolumeClaim"
            | "Service"
            | "Job" => {
                let api_version = match kind {
                    "Pod" | "PersistentVolumeClaim" | "Service" => "v1",
                    "Job" => "batch/v1",
                    _ => "apps/v1",
                };
                match self
                    .resolver
                    .get(&self.client, api_version, kind, ns, name)
                    .await?
                {
                    None => Walk {
                        steps: vec![Step::missing(kind, ns, name)],
                        path: vec![],
                        tail: None,
                        ready: false,
                    },
                    Some(live) => self.workload(&live).await?,
                }
            }
            other => {
                return Err(UserError::new(format!("sluice why does not know the kind {other}"))
                    .hint("use kustomization, helmrelease, gitrepository, ocirepository, bucket, helmrepository, helmchart, deployment, statefulset, daemonset, pod, pvc, service or certificate")
                    .into());
            }
        };
        let summary = match (&walk.tail, walk.steps.last()) {
            _ if walk.ready => walk.steps[0].describe(),
            (Some(tail), _) if walk.path.is_empty() => tail.clone(),
            (Some(tail), _) => format!("{} → {tail}", walk.path.join(" → ")),
            (None, Some(last)) if walk.path.len() > 1 => {
                format!("{}: {}", walk.path.join(" → "), last.describe())
            }
            (None, Some(last)) => last.describe(),
            (None, None) => String::new(),
        };
        Ok(Explanation {
            ready: walk.ready,
            steps: walk.steps,
            summary,
        })
    }

    fn kustomization<'a>(
        &'a mut self,
        ns: &'a str,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Walk>> {
        Box::pin(async move {
            let key = (
                "Kustomization".to_string(),
                ns.to_string(),
                name.to_string(),
            );
            let api: Api<Kustomization> = Api::namespaced(self.client.clone(), ns);
            let ks = api.get_opt(name).await.map_err(|e| {
                kube_util::user_kube_error(e, &format!("getting Kustomization {ns}/{name}"))
            })?;
            let Some(ks) = ks else {
                return Ok(Walk {
                    steps: vec![Step::missing("Kustomization", ns, name)],
                    path: vec![name.to_string()],
                    tail: None,
                    ready: false,
                });
            };
            if !self.visited.insert(key) {
                return Ok(Walk {
                    steps: vec![Step::new(
                        "Kustomization",
                        ns,
                        name,
                        "dependency cycle: reached again",
                    )],
                    path: vec![name.to_string()],
                    tail: None,
                    ready: false,
                });
            }
            let mut me = Step::new("Kustomization", ns, name, ready_message(&ks));
            if ks.is_ready() {
                return Ok(Walk {
                    steps: vec![me],
                    path: vec![name.to_string()],
                    tail: None,
                    ready: true,
                });
            }
            if ks.is_suspended() {
                me.message = format!("suspended ({})", me.message);
                return Ok(Walk {
                    steps: vec![me],
                    path: vec![name.to_string()],
                    tail: None,
                    ready: false,
                });
            }
            // dependsOn: the first dependency that is not ready.
            for dep in ks.spec.depends_on.iter().flatten() {
                let dns = dep.namespace_or(ns).to_string();
                let sub = self.kustomization(&dns, &dep.name).await?;
                if !sub.ready {
                    return Ok(below(me, name, sub));
                }
            }
            // The source.
            let r = &ks.spec.source_ref;
            let sns = r.namespace_or(ns).to_string();
            let sub = match r.kind {
                SourceKind::GitRepository => {
                    Some(self.source::<GitRepository>(&sns, &r.name).await?)
                }
                SourceKind::OciRepository => {
                    Some(self.source::<OCIRepository>(&sns, &r.name).await?)
                }
                SourceKind::Bucket => Some(self.source::<Bucket>(&sns, &r.name).await?),
                SourceKind::ExternalArtifact => Some(self.external(&sns, &r.name).await?),
                SourceKind::Unknown(_) => None,
            };
            if let Some(sub) = sub.filter(|s| !s.ready) {
                return Ok(below(me, name, sub));
            }
            // Health: HelmReleases it applied that are not ready, then applied workloads and
            // health checks that are not Current.
            let checks: Vec<(String, String, String, String)> = ks
                .spec
                .health_checks
                .iter()
                .flatten()
                .map(|hc| {
                    (
                        hc.api_version.clone().unwrap_or_else(|| "apps/v1".into()),
                        hc.kind.clone(),
                        hc.namespace.clone().unwrap_or_else(|| ns.to_string()),
                        hc.name.clone(),
                    )
                })
                .collect();
            if let Some(sub) = self.unhealthy(ks.inventory(), checks).await? {
                return Ok(below(me, name, sub));
            }
            // Nothing below it: its own condition is the root cause.
            Ok(Walk {
                steps: vec![me],
                path: vec![name.to_string()],
                tail: None,
                ready: false,
            })
        })
    }

    /// The first of what an inventory holds (and of `checks`) that is not ready: a
    /// HelmRelease (walked), else a workload or claim that is not Current (its cause chain)
    /// or does not exist.
    async fn unhealthy(
        &mut self,
        inventory: &[sluice_api::kustomization::ResourceRef],
        checks: Vec<(String, String, String, String)>,
    ) -> Result<Option<Walk>> {
        let mut targets: Vec<(String, String, String, String)> = Vec::new();
        for entry in inventory {
            let Ok(id) = ObjectId::parse(&entry.id) else {
                continue;
            };
            if id.kind == "HelmRelease" && id.group == sluice_api::helm_release::GROUP {
                let sub = self.helm_release(&id.namespace, &id.name).await?;
                if !sub.ready {
                    return Ok(Some(sub));
                }
                continue;
            }
            if matches!(
                (id.group.as_str(), id.kind.as_str()),
                ("apps", "Deployment" | "StatefulSet" | "DaemonSet")
                    | ("batch", "Job")
                    | ("", "PersistentVolumeClaim")
            ) {
                let api_version = entry.api_version().unwrap_or_default();
                targets.push((api_version, id.kind, id.namespace, id.name));
            }
        }
        for t in checks {
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        let opts = ComputeOptions::flux();
        for (api_version, kind, tns, tname) in targets {
            let live = self
                .resolver
                .get(&self.client, &api_version, &kind, &tns, &tname)
                .await
                .unwrap_or(None);
            match live {
                None => {
                    return Ok(Some(Walk {
                        steps: vec![Step::missing(&kind, &tns, &tname)],
                        path: vec![],
                        tail: None,
                        ready: false,
                    }));
                }
                Some(live) => {
                    let status = sluice_kstatus::compute_or_unknown(&live, &opts).status;
                    if status != Status::Current {
                        let mut sub = self.workload(&live).await?;
                        sub.ready = false;
                        return Ok(Some(sub));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A HelmRelease: its own condition, else the first dependency that is not ready, its
    /// chart's source, a `valuesFrom` object that does not exist, or what it installed that
    /// is not ready.
    fn helm_release<'a>(
        &'a mut self,
        ns: &'a str,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Walk>> {
        Box::pin(async move {
            let api: Api<HelmRelease> = Api::namespaced(self.client.clone(), ns);
            let hr = api.get_opt(name).await.map_err(|e| {
                kube_util::user_kube_error(e, &format!("getting HelmRelease {ns}/{name}"))
            })?;
            let alone = |step: Step, ready: bool| Walk {
                steps: vec![step],
                path: vec![name.to_string()],
                tail: None,
                ready,
            };
            let Some(hr) = hr else {
                return Ok(alone(Step::missing("HelmRelease", ns, name), false));
            };
            let key = ("HelmRelease".to_string(), ns.to_string(), name.to_string());
            if !self.visited.insert(key) {
                let step = Step::new("HelmRelease", ns, name, "dependency cycle: reached again");
                return Ok(alone(step, false));
            }
            let mut me = Step::new("HelmRelease", ns, name, ready_message(&hr));
            if hr.is_ready() {
                return Ok(alone(me, true));
            }
            if hr.is_suspended() {
                me.message = format!("suspended ({})", me.message);
                return Ok(alone(me, false));
            }
            for dep in hr.spec.depends_on.iter().flatten() {
                let dns = dep.namespace_or(ns).to_string();
                let sub = self.helm_release(&dns, &dep.name).await?;
                if !sub.ready {
                    return Ok(below(me, name, sub));
                }
            }
            // The chart's source: chartRef, or the HelmChart made from spec.chart.
            let source = if let Some(r) = &hr.spec.chart_ref {
                let sns = r.namespace_or(ns).to_string();
                match r.kind {
                    ChartRefKind::OciRepository => {
                        Some(self.source::<OCIRepository>(&sns, &r.name).await?)
                    }
                    ChartRefKind::HelmChart => Some(self.chart(&sns, &r.name).await?),
                    ChartRefKind::ExternalArtifact => Some(self.external(&sns, &r.name).await?),
                    ChartRefKind::Unknown(_) => None,
                }
            } else if let Some(t) = &hr.spec.chart {
                let (cns, cname) = match hr.status.as_ref().and_then(|s| s.helm_chart()) {
                    Some((cns, cname)) => (cns.to_string(), cname.to_string()),
                    None => (
                        t.spec
                            .source_ref
                            .namespace
                            .clone()
                            .unwrap_or_else(|| ns.to_string()),
                        format!("{ns}-{name}"),
                    ),
                };
                Some(self.chart(&cns, &cname).await?)
            } else {
                None
            };
            if let Some(sub) = source.filter(|s| !s.ready) {
                return Ok(below(me, name, sub));
            }
            // valuesFrom: the first required object that does not exist.
            for r in hr.spec.values_from.iter().flatten() {
                if r.is_optional() {
                    continue;
                }
                let kind = r.kind.to_string();
                let missing = match kind.as_str() {
                    "ConfigMap" => matches!(
                        Api::<ConfigMap>::namespaced(self.client.clone(), ns)
                            .get_metadata_opt(&r.name)
                            .await,
                        Ok(None)
                    ),
                    "Secret" => matches!(
                        Api::<Secret>::namespaced(self.client.clone(), ns)
                            .get_metadata_opt(&r.name)
                            .await,
                        Ok(None)
                    ),
                    _ => false,
                };
                if missing {
                    return Ok(below(
                        me,
                        name,
                        Walk {
                            steps: vec![Step::missing(&kind, ns, &r.name)],
                            path: vec![],
                            tail: None,
                            ready: false,
                        },
                    ));
                }
            }
            // What the release installed.
            if let Some(sub) = self.unhealthy(hr.inventory(), Vec::new()).await? {
                return Ok(below(me, name, sub));
            }
            Ok(alone(me, false))
        })
    }

    /// A source: its own condition, and the first Secret it names that
    /// does not exist.
    async fn source<K: WhySource>(&mut self, ns: &str, name: &str) -> Result<Walk> {
        let kind = K::KIND;
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let obj = api
            .get_opt(name)
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("getting {kind} {ns}/{name}")))?;
        let Some(obj) = obj else {
            return Ok(Walk {
                steps: vec![Step::missing(kind, ns, name)],
                path: vec![name.to_string()],
                tail: None,
                ready: false,
            });
        };
        if obj.is_static() && obj.ready_condition().is_none() {
            return Ok(Walk {
                steps: vec![Step::new(kind, ns, name, "Helm repository is Ready")],
                path: vec![name.to_string()],
                tail: None,
                ready: true,
            });
        }
        let mut me = Step::new(kind, ns, name, ready_message(&obj));
        if obj.is_ready() {
            return Ok(Walk {
                steps: vec![me],
                path: vec![name.to_string()],
                tail: None,
                ready: true,
            });
        }
        let mut steps = vec![];
        if obj.is_suspended() {
            me.message = format!("suspended ({})", me.message);
        }
        steps.push(me);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        for secret in obj.secret_refs() {
            if let Ok(None) = secrets.get_metadata_opt(&secret.name).await {
                steps.push(Step::missing("Secret", ns, &secret.name));
                break;
            }
        }
        Ok(Walk {
            steps,
            path: vec![name.to_string()],
            tail: None,
            ready: false,
        })
    }

    /// An ExternalArtifact: ready when its producer has written an artifact (as Flux's
    /// controllers judge it); its producer's Ready message otherwise, if it wrote one.
    async fn external(&mut self, ns: &str, name: &str) -> Result<Walk> {
        const KIND: &str = "ExternalArtifact";
        let api: Api<ExternalArtifact> = Api::namespaced(self.client.clone(), ns);
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| kube_util::user_kube_error(e, &format!("getting {KIND} {ns}/{name}")))?;
        let step = match &found {
            None => Step::missing(KIND, ns, name),
            Some(ea) => match ea.artifact() {
                Some(a) => Step::new(KIND, ns, name, format!("artifact revision {}", a.revision)),
                None => {
                    let producer = ea
                        .conditions()
                        .iter()
                        .find(|c| c.type_ == "Ready" && !c.message.is_empty())
                        .map(|c| format!(" ({})", c.message))
                        .unwrap_or_default();
                    Step::new(
                        KIND,
                        ns,
                        name,
                        format!("does not have an artifact{producer}"),
                    )
                }
            },
        };
        Ok(Walk {
            steps: vec![step],
            path: vec![name.to_string()],
            tail: None,
            ready: found.as_ref().is_some_and(|ea| ea.artifact().is_some()),
        })
    }

    /// A HelmChart: its own condition, else its source's (a HelmRepository,
    /// a GitRepository or a Bucket in its namespace).
    async fn chart(&mut self, ns: &str, name: &str) -> Result<Walk> {
        let api: Api<HelmChart> = Api::namespaced(self.client.clone(), ns);
        let chart = api.get_opt(name).await.map_err(|e| {
            kube_util::user_kube_error(e, &format!("getting HelmChart {ns}/{name}"))
        })?;
        let Some(chart) = chart else {
            return Ok(Walk {
                steps: vec![Step::missing("HelmChart", ns, name)],
                path: vec![name.to_string()],
                tail: None,
                ready: false,
            });
        };
        let mut me = Step::new("HelmChart", ns, name, ready_message(&chart));
        if chart.is_ready() {
            return Ok(Walk {
                steps: vec![me],
                path: vec![name.to_string()],
                tail: None,
                ready: true,
            });
        }
        if chart.is_suspended() {
            me.message = format!("suspended ({})", me.message);
            return Ok(Walk {
                steps: vec![me],
                path: vec![name.to_string()],
                tail: None,
                ready: false,
            });
        }
        let r = &chart.spec.source_ref;
        let sub = match r.kind {
            HelmChartSourceKind::HelmRepository => {
                Some(self.source::<HelmRepository>(ns, &r.name).await?)
            }
            HelmChartSourceKind::GitRepository => {
                Some(self.source::<GitRepository>(ns, &r.name).await?)
            }
            HelmChartSourceKind::Bucket => Some(self.source::<Bucket>(ns, &r.name).await?),
            _ => None,
        };
        let mut steps = vec![me];
        let mut path = vec![name.to_string()];
        if let Some(sub) = sub.filter(|s| !s.ready) {
            steps.extend(sub.steps);
            path.extend(sub.path);
        }
        Ok(Walk {
            steps,
            path,
            tail: None,
            ready: false,
        })
    }

    /// A workload's cause chain with its Pods, the namespace's PVCs and
    /// Events, and the StorageClasses.
    /// A cert-manager Certificate, down its CertificateRequest, Order and Challenges.
    async fn certificate(&mut self, ns: &str, name: &str) -> Result<Walk> {
        let Some(cert) = self
            .resolver
            .get(&self.client, "cert-manager.io/v1", "Certificate", ns, name)
            .await
            .map_err(|_| {
                UserError::new("this cluster does not serve cert-manager's Certificate")
                    .hint("is cert-manager installed?")
            })?
        else {
            return Ok(Walk {
                steps: vec![Step::missing("Certificate", ns, name)],
                path: vec![],
                tail: None,
                ready: false,
            });
        };
        let mut lists = vec![];
        for (api_version, kind) in [
            ("cert-manager.io/v1", "CertificateRequest"),
            ("acme.cert-manager.io/v1", "Order"),
            ("acme.cert-manager.io/v1", "Challenge"),
        ] {
            let items = match self
                .resolver
                .api_for(&self.client, api_version, kind, ns)
                .await
            {
                Ok((api, _)) => api
                    .list(&ListParams::default())
                    .await
                    .map(|l| {
                        l.items
                            .into_iter()
                            .map(|o| kube_util::to_json(o, api_version, kind))
                            .collect()
                    })
                    .unwrap_or_default(),
                // ACME kinds are absent without an ACME issuer.
                Err(_) => vec![],
            };
            lists.push(items);
        }
        let chain =
            sluice_kstatus::certmanager::certificate_chain(&cert, &lists[0], &lists[1], &lists[2]);
        let steps: Vec<Step> = chain
            .hops
            .iter()
            .map(|h| Step::new(&h.kind, &h.namespace, &h.name, h.message.clone()))
            .collect();
        let last = steps.last().map(Step::describe).unwrap_or_default();
        let tail = match &chain.hint {
            Some(hint) => format!("{name}: {last}; {hint}"),
            None => format!("{name}: {last}"),
        };
        Ok(Walk {
            steps,
            path: vec![],
            tail: Some(tail),
            ready: chain.ready,
        })
    }

    async fn workload(&mut self, live: &Value) -> Result<Walk> {
        let ns = live["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = live["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let selector = live
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty());
        let mut pods = Vec::new();
        if let Some(sel) = selector {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            if let Ok(list) = api.list(&ListParams::default().labels(&sel)).await {
                pods = list
                    .items
                    .iter()
                    .map(|p| typed_json(p, "v1", "Pod"))
                    .collect();
            }
        }
        let pvcs: Vec<Value> = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|p| typed_json(p, "v1", "PersistentVolumeClaim"))
                    .collect()
            })
            .unwrap_or_default();
        let classes: Vec<Value> = Api::<StorageClass>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|p| typed_json(p, "storage.k8s.io/v1", "StorageClass"))
                    .collect()
            })
            .unwrap_or_default();
        let events: Vec<Value> = Api::<Event>::namespaced(self.client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|e| typed_json(e, "v1", "Event"))
                    .collect()
            })
            .unwrap_or_default();
        let mut input = ExplainInput::new(live);
        input.pods = &pods;
        input.pvcs = Some(&pvcs);
        input.storage_classes = Some(&classes);
        input.events = &events;
        let chain = explain(&input);
        let status = sluice_kstatus::compute_or_unknown(live, &ComputeOptions::flux()).status;
        // A LoadBalancer Service nothing gave an address is Current to kstatus, but not what
        // its user waits for.
        let unaddressed = live["kind"] == "Service"
            && sluice_kstatus::legacy::ready(live, &[], false)
                != sluice_kstatus::legacy::Verdict::Ready;
        let ready = status == Status::Current && !unaddressed;
        let steps = chain
            .iter()
            .map(|c| Step {
                kind: c.object.kind.clone(),
                namespace: c.object.namespace.clone().unwrap_or_default(),
                name: c.object.name.clone(),
                message: c.message.clone(),
                missing: c.missing,
            })
            .collect();
        Ok(Walk {
            steps,
            path: vec![],
            tail: Some(format!("{name}: {}", render_chain(&chain))),
            ready,
        })
    }
}

/// Runs `sluice why`.
pub async fn run(g: &GlobalArgs, args: WhyArgs) -> Result<Outcome> {
    let (kind, ns, name) = parse_target(&args.object, &g.namespace)?;
    let client = kube_util::client(g).await?;
    let mut walker = Walker::new(client);
    let why = walker.explain(&kind, &ns, &name).await?;
    match args.output {
        OutputFormat::Table => {
            let c = Color::stdout();
            if why.ready {
                let step = &why.steps[0];
                println!(
                    "{} {} is ready: {}",
                    c.green("✔"),
                    step.object(),
                    step.message
                );
                return Ok(Outcome::Ok);
            }
            for (i, step) in why.steps.iter().enumerate() {
                let text = if step.missing {
                    c.red(&step.describe())
                } else {
                    step.describe()
                };
                if i == 0 {
                    println!("{} {text}", c.red("✗"));
                } else {
                    println!("  → {text}");
                }
            }
            println!("{} {}", c.bold("root cause:"), why.summary);
        }
        format => print_data(format, &why)?,
    }
    Ok(if why.ready {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            parse_target("ks/apps", "flux-system").unwrap(),
            ("Kustomization".into(), "flux-system".into(), "apps".into())
        );
        assert_eq!(
            parse_target("deployment/apps/memos", "flux-system").unwrap(),
            ("Deployment".into(), "apps".into(), "memos".into())
        );
        assert_eq!(
            parse_target("buckets/manifests", "flux-system").unwrap(),
            ("Bucket".into(), "flux-system".into(), "manifests".into())
        );
        assert!(parse_target("apps", "flux-system").is_err());
        assert!(parse_target("a/b/c/d", "flux-system").is_err());
    }

    #[test]
    fn steps_describe_themselves() {
        assert_eq!(
            Step::missing("Kustomization", "flux-system", "crds").describe(),
            "Kustomization flux-system/crds not found"
        );
        assert_eq!(
            Step::new("GitRepository", "flux-system", "repo", "auth failed").describe(),
            "GitRepository flux-system/repo: auth failed"
        );
    }
}
