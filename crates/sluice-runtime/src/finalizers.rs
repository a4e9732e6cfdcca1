//! Flux's finalizer (`finalizers.fluxcd.io`), added before anything is done
//! for an object and removed once its cleanup has finished, through
//! `kube::runtime::finalizer` (JSON patches with a test of the list, so a
//! concurrent edit of the finalizers is never overwritten).

use std::future::Future;
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use kube::runtime::finalizer::Error;
pub use sluice_api::meta::FINALIZER;

/// Runs `apply` for a live object (after making sure it carries Flux's
/// finalizer) and `cleanup` for one being deleted; the finalizer is removed
/// once `cleanup` returns `Ok`. A cleanup that is not done yet (objects still
/// terminating) returns an error and is called again.
pub async fn reconcile<K, E, A, AF, C, CF>(
    client: &Client,
    obj: Arc<K>,
    apply: A,
    cleanup: C,
) -> Result<Action, Error<E>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    E: std::error::Error + Send + 'static,
    A: FnOnce(Arc<K>) -> AF,
    AF: Future<Output = Result<Action, E>>,
    C: FnOnce(Arc<K>) -> CF,
    CF: Future<Output = Result<Action, E>>,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    finalizer::finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            Event::Apply(o) => apply(o).await,
            Event::Cleanup(o) => cleanup(o).await,
        }
    })
    .await
}
