//! The one place status is written: a forced server-side apply of the
//! status subresource, with the controller's field manager (Flux's
//! controller names, so `kubectl` and Flux's own tools see the owner they
//! expect, and a cluster can move between Flux and sluice).

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writes `status` as the status of `obj` (which must be namespaced).
pub async fn patch<K, S>(
    client: &Client,
    obj: &K,
    status: &S,
    field_manager: &str,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    patch_named(&api, &obj.name_any(), status, field_manager).await
}

/// Writes `status` as the status of the object `name` of `api`.
pub async fn patch_named<K, S>(
    api: &Api<K>,
    name: &str,
    status: &S,
    field_manager: &str,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}
