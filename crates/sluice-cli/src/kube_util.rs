//! Talking to the cluster: the client from `--kubeconfig`/`--context`,
//! errors turned into one line with a hint, dynamic access by kind.

use std::collections::HashMap;

use anyhow::Result;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Api, Client, Config};
use serde_json::Value;

use crate::{GlobalArgs, UserError};

/// The field manager of everything the CLI applies.
pub const FIELD_MANAGER: &str = "sluice";

/// A client for the cluster named by the global flags.
pub async fn client(g: &GlobalArgs) -> Result<Client> {
    let config = if g.kubeconfig.is_none() && g.context.is_none() {
        Config::infer().await.map_err(|e| {
            UserError::new(format!("cannot load a Kubernetes configuration: {e}"))
                .hint("set KUBECONFIG or pass --kubeconfig")
        })?
    } else {
        let kubeconfig = match &g.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).map_err(|e| {
                UserError::new(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?,
            None => Kubeconfig::read().map_err(|e| {
                UserError::new(format!("cannot read the kubeconfig: {e}"))
                    .hint("set KUBECONFIG or pass --kubeconfig")
            })?,
        };
        let options = KubeConfigOptions {
            context: g.context.clone(),
            ..KubeConfigOptions::default()
        };
        Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| {
                let mut err = UserError::new(format!("invalid kubeconfig: {e}"));
                if g.context.is_some() {
                    err = err.hint("list the contexts with `kubectl config get-contexts`");
                }
                err
            })?
    };
    Client::try_from(config).map_err(|e| user_kube_error(e, "connecting to Kubernetes"))
}

/// Whether a kube error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether a 404 means the resource type itself is missing (no CRD).
pub fn api_missing(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404
        && (s.message.contains("page not found") || s.message.contains("could not find the requested resource")))
}

/// A kube error as a one-line [`UserError`], with hints for the usual
/// causes (no API server, no CRD, no permission).
pub fn user_kube_error(e: kube::Error, doing: &str) -> anyhow::Error {
    let text = e.to_string();
    let err = match &e {
        kube::Error::Api(_) if api_missing(&e) => {
            UserError::new(format!("{doing}: the API is not served by this cluster"))
                .hint("install the CRDs with `sluice install`")
        }
        kube::Error::Api(s) if s.code == 403 => {
            UserError::new(format!("{doing}: forbidden: {}", s.message))
                .hint("check your RBAC permissions (kubectl auth can-i)")
        }
        kube::Error::Api(s) => UserError::new(format!("{doing}: {}", s.message)),
        _ if text.contains("connect")
            || text.contains("Connection refused")
            || text.contains("dns error") =>
        {
            UserError::new(format!("{doing}: cannot reach the Kubernetes API: {text}"))
                .hint("is the cluster running? check --kubeconfig and --context")
        }
        _ => UserError::new(format!("{doing}: {text}")),
    };
    err.into()
}

/// A 404 on a named object becomes "Kind ns/name not found" with a hint to
/// list what exists.
pub fn not_found_or(e: kube::Error, kind: &str, ns: &str, name: &str, list: &str) -> anyhow::Error {
    if is_not_found(&e) {
        if api_missing(&e) {
            return user_kube_error(e, &format!("getting {kind} {ns}/{name}"));
        }
        UserError::new(format!("{kind} {ns}/{name} not found"))
            .hint(format!("list them with `{list}`"))
            .into()
    } else {
        user_kube_error(e, &format!("getting {kind} {ns}/{name}"))
    }
}

/// The token `flux reconcile` writes into `reconcile.fluxcd.io/requestedAt`:
/// the current time, RFC 3339 with nanoseconds.
pub fn request_token() -> String {
    jiff::Timestamp::now().to_string()
}

/// Seconds since `t` (an RFC 3339 time), if parseable.
pub fn seconds_since(t: &str) -> Option<i64> {
    let ts: jiff::Timestamp = t.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - ts.as_second())
}

/// Resolves kinds to API resources (discovery, cached per run).
#[derive(Default)]
pub struct Resolver {
    cache: HashMap<(String, String, String), (ApiResource, bool)>,
}

impl Resolver {
    /// The resource and whether it is namespaced, for `apiVersion` + `kind`.
    pub async fn resolve(
        &mut self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, bool)> {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        let key = (group.clone(), version.clone(), kind.to_string());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let gvk = GroupVersionKind::gvk(&group, &version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| {
                UserError::new(format!(
                    "the cluster does not serve {kind} ({api_version}): {e}"
                ))
            })?;
        let namespaced = caps.scope == Scope::Namespaced;
        self.cache.insert(key, (ar.clone(), namespaced));
        Ok((ar, namespaced))
    }

    /// A dynamic API for the object's kind, in its namespace.
    pub async fn api_for(
        &mut self,
        client: &Client,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<(Api<DynamicObject>, bool)> {
        let (ar, namespaced) = self.resolve(client, api_version, kind).await?;
        let api = if namespaced {
            Api::namespaced_with(client.clone(), namespace, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        Ok((api, namespaced))
    }

    /// GETs an object as JSON (with `apiVersion` and `kind` set), `None`
    /// when it does not exist.
    pub async fn get(
        &mut self,
        client: &Client,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let (api, _) = self.api_for(client, api_version, kind, namespace).await?;
        match api.get_opt(name).await {
            Ok(Some(obj)) => Ok(Some(to_json(obj, api_version, kind))),
            Ok(None) => Ok(None),
            Err(e) => Err(user_kube_error(e, &format!("getting {kind} {name}"))),
        }
    }

    /// Server-side applies `obj` (with `force`), or dry-runs it.
    pub async fn apply(
        &mut self,
        client: &Client,
        obj: &Value,
        field_manager: &str,
        dry_run: bool,
    ) -> Result<Value> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        let (api, _) = self.api_for(client, &api_version, &kind, ns).await?;
        let mut params = PatchParams::apply(field_manager).force();
        params.dry_run = dry_run;
        let applied = api
            .patch(name, &params, &Patch::Apply(obj))
            .await
            .map_err(|e| {
                let target = if ns.is_empty() || obj["metadata"]["namespace"].is_null() {
                    format!("{kind}/{name}")
                } else {
                    format!("{kind}/{ns}/{name}")
                };
                user_kube_error(e, &format!("applying {target}"))
            })?;
        Ok(to_json(applied, &api_version, &kind))
    }
}

/// A `DynamicObject` as JSON with its type meta put back.
pub fn to_json(obj: DynamicObject, api_version: &str, kind: &str) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    v["apiVersion"] = Value::String(api_version.to_string());
    v["kind"] = Value::String(kind.to_string());
    v
}

/// A typed object as JSON with its type meta set.
pub fn typed_json<T: serde::Serialize>(obj: &T, api_version: &str, kind: &str) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    v["apiVersion"] = Value::String(api_version.into());
    v["kind"] = Value::String(kind.into());
    v
}

/// The Flux kinds the CLI knows, as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FluxKind {
    /// `source.toolkit.fluxcd.io/v1` GitRepository.
    GitRepository,
    /// `source.toolkit.fluxcd.io/v1` OCIRepository.
    OCIRepository,
    /// `source.toolkit.fluxcd.io/v1` Bucket.
    Bucket,
    /// `source.toolkit.fluxcd.io/v1` HelmRepository.
    HelmRepository,
    /// `source.toolkit.fluxcd.io/v1` HelmChart.
    HelmChart,
    /// `kustomize.toolkit.fluxcd.io/v1` Kustomization.
    Kustomization,
    /// `helm.toolkit.fluxcd.io/v2` HelmRelease.
    HelmRelease,
}

impl FluxKind {
    /// The source kinds, in the order `flux get sources all` lists them.
    pub const SOURCES: [FluxKind; 5] = [
        FluxKind::OCIRepository,
        FluxKind::Bucket,
        FluxKind::GitRepository,
        FluxKind::HelmRepository,
        FluxKind::HelmChart,
    ];

    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            FluxKind::GitRepository => "GitRepository",
            FluxKind::OCIRepository => "OCIRepository",
            FluxKind::Bucket => "Bucket",
            FluxKind::HelmRepository => "HelmRepository",
            FluxKind::HelmChart => "HelmChart",
            FluxKind::Kustomization => "Kustomization",
            FluxKind::HelmRelease => "HelmRelease",
        }
    }

    /// How the command line names it after a verb (`sluice resume source
    /// oci NAME`, `sluice resume kustomization NAME`).
    pub fn noun(self) -> &'static str {
        match self {
            FluxKind::GitRepository => "source git",
            FluxKind::OCIRepository => "source oci",
            FluxKind::Bucket => "source bucket",
            FluxKind::HelmRepository => "source helm",
            FluxKind::HelmChart => "source chart",
            FluxKind::Kustomization => "kustomization",
            FluxKind::HelmRelease => "helmrelease",
        }
    }

    /// The lister command for hints.
    pub fn list_command(self) -> &'static str {
        match self {
            FluxKind::GitRepository => "sluice get sources git -A",
            FluxKind::OCIRepository => "sluice get sources oci -A",
            FluxKind::Bucket => "sluice get sources bucket -A",
            FluxKind::HelmRepository => "sluice get sources helm -A",
            FluxKind::HelmChart => "sluice get sources chart -A",
            FluxKind::Kustomization => "sluice get kustomizations -A",
            FluxKind::HelmRelease => "sluice get helmreleases -A",
        }
    }
}
