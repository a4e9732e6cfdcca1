//! What a HelmRelease renders to, shared by the controller and by `sluice build helmrelease` /
//! `sluice diff helmrelease`, so that both render the same: the values composed from
//! `spec.values` and `spec.valuesFrom` (Flux's `ChartValuesFromReferences`, each object read
//! once), the release name and namespace as helm-controller derives them, and the render
//! options with helm-controller's post-renderer chain.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::ResourceExt;
use sluice_api::helm_release::HelmRelease;
use sluice_helm::values_from::{self, Fetched, ValuesReference};
use sluice_kustomize::yaml::Map as YMap;

/// Why the values could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// `spec.values` is not a map: no retry helps until the spec changes.
    #[error("spec.values is not a map of values")]
    NotAMap,
    /// A reference could not be read or composed (Flux's wording).
    #[error("{0}")]
    Compose(String),
}

/// The release name helm-controller uses: `spec.releaseName`, else
/// `[<targetNamespace>-]<name>`, shortened past 53 characters as Flux shortens it.
pub fn release_name(hr: &HelmRelease) -> String {
    sluice_helm::flux::shorten_name(&hr.release_name())
}

/// `spec.valuesFrom` as the composer takes it.
pub fn references(hr: &HelmRelease) -> Vec<ValuesReference> {
    hr.spec
        .values_from
        .iter()
        .flatten()
        .map(|r| ValuesReference {
            kind: r.kind.to_string(),
            name: r.name.clone(),
            values_key: r.values_key.clone(),
            target_path: r.target_path.clone(),
            optional: r.is_optional(),
            literal: r.literal.unwrap_or(false),
        })
        .collect()
}

/// The values of `hr`: `spec.values` with `spec.valuesFrom` read from the cluster and merged
/// in Flux's order. Without a client (an offline build) the references are left out.
pub async fn values(client: Option<&kube::Client>, hr: &HelmRelease) -> Result<YMap, ValuesError> {
    let Some(client) = client else {
        return values_with(hr, false, |kind, name| {
            Fetched::NotFound(format!("{kind} {name:?} not found"))
        });
    };
    let refs = references(hr);
    let ns = hr.namespace().unwrap_or_default();
    // Every referenced object, read once, before composing (which is pure).
    let mut fetched = std::collections::BTreeMap::new();
    {
        for r in &refs {
            let key = (r.kind.clone(), r.name.clone());
            if fetched.contains_key(&key) {
                continue;
            }
            let result = match r.kind.as_str() {
                "ConfigMap" => {
                    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
                    data_of(api.get_opt(&r.name).await, "configmaps", &r.name, |cm| {
                        cm.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes()))
                            .collect()
                    })
                }
                "Secret" => {
                    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                    data_of(api.get_opt(&r.name).await, "secrets", &r.name, |s| {
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0))
                            .collect()
                    })
                }
                _ => continue,
            };
            fetched.insert(key, result);
        }
    }
    values_with(hr, true, |kind, name| {
        fetched
            .get(&(kind.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_else(|| Fetched::NotFound(format!("{kind} {name:?} not found")))
    })
}

/// The values of `hr` with `spec.valuesFrom` (when `with_refs`) looked up by `lookup(kind,
/// name)` in the HelmRelease's namespace: for renders whose ConfigMaps and Secrets come from
/// somewhere else than the API server (a repository checkout, for `sluice build cluster`).
pub fn values_with(
    hr: &HelmRelease,
    with_refs: bool,
    lookup: impl Fn(&str, &str) -> Fetched,
) -> Result<YMap, ValuesError> {
    let ns = hr.namespace().unwrap_or_default();
    let inline = hr
        .spec
        .values
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| match sluice_helm::values::from_json(v) {
            sluice_kustomize::yaml::Value::Map(m) => Ok(m),
            _ => Err(ValuesError::NotAMap),
        })
        .transpose()?;
    let refs = if with_refs {
        references(hr)
    } else {
        Vec::new()
    };
    values_from::compose(&ns, inline, &refs, lookup)
        .map_err(|e| ValuesError::Compose(e.to_string()))
}

/// What a GET of a ConfigMap or Secret says, for the values.
fn data_of<T>(
    got: Result<Option<T>, kube::Error>,
    resource: &str,
    name: &str,
    data: impl FnOnce(T) -> values_from::Data,
) -> Fetched {
    match got {
        Ok(Some(obj)) => Fetched::Found(data(obj)),
        Ok(None) => Fetched::NotFound(format!("{resource} \"{name}\" not found")),
        Err(kube::Error::Api(s)) if s.code == 404 => Fetched::NotFound(s.message),
        Err(e) => Fetched::Failed(e.to_string()),
    }
}

/// The render options of `hr`'s release (an install, revision 1): its name and namespace,
/// schema validation as `spec.install` says, the cluster's Kubernetes version (Helm's default
/// without one), and helm-controller's post-renderers.
pub fn render_options(
    hr: &HelmRelease,
    kube_version: Option<String>,
) -> sluice_helm::render::Options {
    sluice_helm::render::Options {
        release_name: release_name(hr),
        namespace: hr.release_namespace(),
        skip_schema_validation: hr.install().disable_schema_validation.unwrap_or(false),
        kube_version,
        post_render: Some(crate::postrender::for_release(hr)),
        ..Default::default()
    }
}
