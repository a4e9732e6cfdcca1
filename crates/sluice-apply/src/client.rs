//! The requests sluice-apply makes, counted, and a discovery cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kube::api::{DeleteParams, GetParams, Patch, PatchParams, Preconditions};
use kube::core::Request;
use kube::{Client, Config};
use serde_json::Value;

use crate::error::{ApiFailure, ObjectErrorKind};
use crate::object::ObjectRef;

/// How many requests an apply or prune made, by kind. A no-change apply makes only `reads`
/// and `dry_runs` (and `discovery` on a cold cache): `writes` is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// API discovery requests.
    pub discovery: u64,
    /// GETs of objects.
    pub reads: u64,
    /// Server-side apply dry-runs.
    pub dry_runs: u64,
    /// Requests that change the cluster: applies, metadata cleanup patches, deletes.
    pub writes: u64,
}

impl RequestCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.discovery + self.reads + self.dry_runs + self.writes
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    discovery: AtomicU64,
    reads: AtomicU64,
    dry_runs: AtomicU64,
    writes: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            discovery: self.discovery.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            dry_runs: self.dry_runs.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// A resolved kind: where its objects live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl Resource {
    /// The collection URL for objects of this kind in `namespace`.
    pub(crate) fn url(&self, namespace: &str) -> String {
        let mut url = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if self.namespaced {
            url.push_str("/namespaces/");
            url.push_str(namespace);
        }
        url.push('/');
        url.push_str(&self.plural);
        url
    }
}

type GroupVersionResources = Arc<Vec<Resource>>;

/// Discovered kinds per `apiVersion`, shared by the clones of an `Applier`.
#[derive(Default)]
pub(crate) struct DiscoveryCache {
    versions: Mutex<HashMap<String, Option<GroupVersionResources>>>,
}

impl DiscoveryCache {
    fn get(&self, api_version: &str) -> Option<Option<GroupVersionResources>> {
        self.versions
            .lock()
            .ok()
            .and_then(|m| m.get(api_version).cloned())
    }

    fn put(&self, api_version: &str, value: Option<GroupVersionResources>) {
        if let Ok(mut m) = self.versions.lock() {
            m.insert(api_version.to_owned(), value);
        }
    }

    /// Forgets what is known of a group (after its CRDs changed).
    pub(crate) fn invalidate_group(&self, group: &str) {
        if let Ok(mut m) = self.versions.lock() {
            m.retain(|api_version, _| crate::object::split_api_version(api_version).0 != group);
        }
    }
}

/// A client with counters and the identity it acts as.
#[derive(Clone)]
pub(crate) struct Kube {
    pub client: Client,
    pub counters: Arc<Counters>,
    pub discovery: Arc<DiscoveryCache>,
    /// `namespace/name` of the impersonated service account.
    pub service_account: Option<String>,
    pub field_manager: String,
    /// The server of a remote cluster (`spec.kubeConfig`), named in failures to reach it.
    pub cluster: Option<String>,
}

/// What resolving a kind found.
pub(crate) enum Resolution {
    Found(Resource),
    /// The API server does not serve this kind in this version.
    NoMatch,
}

impl Kube {
    fn failure(&self, err: kube::Error) -> ApiFailure {
        ApiFailure::from_kube(
            err,
            self.service_account.as_deref(),
            self.cluster.as_deref(),
        )
    }

    /// The failure of a request about an object. A 404 that is not about the object means
    /// the kind is no longer served where discovery said: forget the group, so the next run
    /// discovers it again.
    fn failed_request(&self, res: &Resource, err: kube::Error) -> ApiFailure {
        if let kube::Error::Api(status) = &err
            && status.code == 404
            && status.details.as_ref().is_none_or(|d| d.name.is_empty())
        {
            self.discovery.invalidate_group(&res.group);
        }
        self.failure(err)
    }

    /// Finds the resource of a kind, from the cache or by listing its group version. Misses
    /// are not trusted: a kind missing from the cache is looked up again (a CRD may have been
    /// installed since).
    pub(crate) async fn resolve(&self, object: &ObjectRef) -> Result<Resolution, ObjectErrorKind> {
        let api_version = object.api_version();
        let cached = self.discovery.get(&api_version);
        let hit = |resources: &Option<GroupVersionResources>| {
            resources
                .as_ref()
                .and_then(|rs| rs.iter().find(|r| r.kind == object.kind).cloned())
        };
        if let Some(resources) = &cached
            && let Some(found) = hit(resources)
        {
            return Ok(Resolution::Found(found));
        }
        let resources = self
            .list_group_version(&object.group, &object.version)
            .await?;
        self.discovery.put(&api_version, resources.clone());
        Ok(match hit(&resources) {
            Some(found) => Resolution::Found(found),
            None => Resolution::NoMatch,
        })
    }

    async fn list_group_version(
        &self,
        group: &str,
        version: &str,
    ) -> Result<Option<GroupVersionResources>, ObjectErrorKind> {
        self.counters.discovery.fetch_add(1, Ordering::Relaxed);
        let list = if group.is_empty() {
            self.client.list_core_api_resources(version).await
        } else {
            self.client
                .list_api_group_resources(&format!("{group}/{version}"))
                .await
        };
        let list = match list {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(e) => return Err(ObjectErrorKind::Discovery(self.failure(e))),
        };
        let resources = list
            .resources
            .into_iter()
            .filter(|r| !r.name.contains('/'))
            .map(|r| Resource {
                group: group.to_owned(),
                version: version.to_owned(),
                kind: r.kind,
                plural: r.name,
                namespaced: r.namespaced,
            })
            .collect();
        Ok(Some(Arc::new(resources)))
    }

    /// The versions a group serves, preferred first (empty if the group is not served).
    pub(crate) async fn group_versions(&self, group: &str) -> Result<Vec<String>, ObjectErrorKind> {
        self.counters.discovery.fetch_add(1, Ordering::Relaxed);
        if group.is_empty() {
            return match self.client.list_core_api_versions().await {
                Ok(v) => Ok(v.versions),
                Err(e) => Err(ObjectErrorKind::Discovery(self.failure(e))),
            };
        }
        let groups = self
            .client
            .list_api_groups()
            .await
            .map_err(|e| ObjectErrorKind::Discovery(self.failure(e)))?;
        let Some(g) = groups.groups.into_iter().find(|g| g.name == group) else {
            return Ok(Vec::new());
        };
        let mut versions = Vec::new();
        if let Some(p) = g.preferred_version {
            versions.push(p.version);
        }
        for v in g.versions {
            if !versions.contains(&v.version) {
                versions.push(v.version);
            }
        }
        Ok(versions)
    }

    /// GETs an object; `None` if it does not exist.
    pub(crate) async fn get(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiFailure> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let req = Request::new(res.url(namespace))
            .get(name, &GetParams::default())
            .map_err(|e| self.failure(kube::Error::BuildRequest(e)))?;
        match self.client.request::<Value>(req).await {
            Ok(v) => Ok(Some(v)),
            Err(kube::Error::Api(status)) if object_missing(&status, name) => Ok(None),
            Err(e) => Err(self.failed_request(res, e)),
        }
    }

    /// Server-side apply (forced, under our field manager), optionally as a dry-run.
    pub(crate) async fn apply(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
        obj: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiFailure> {
        let counter = if dry_run {
            &self.counters.dry_runs
        } else {
            &self.counters.writes
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut params = PatchParams::apply(&self.field_manager).force();
        params.dry_run = dry_run;
        let req = Request::new(res.url(namespace))
            .patch(name, &params, &Patch::Apply(obj))
            .map_err(|e| self.failure(kube::Error::BuildRequest(e)))?;
        self.client
            .request::<Value>(req)
            .await
            .map_err(|e| self.failed_request(res, e))
    }

    /// A JSON merge patch (the metadata cleanup).
    pub(crate) async fn merge_patch(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiFailure> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let params = PatchParams {
            field_manager: Some(self.field_manager.clone()),
            ..PatchParams::default()
        };
        let req = Request::new(res.url(namespace))
            .patch(name, &params, &Patch::Merge(patch))
            .map_err(|e| self.failure(kube::Error::BuildRequest(e)))?;
        self.client
            .request::<Value>(req)
            .await
            .map_err(|e| self.failure(e))
    }

    /// Deletes an object with the given propagation; `Ok(false)` if it was already gone.
    ///
    /// With `uid`, the API server deletes the object only if it is still the one with that
    /// uid (a precondition): an object deleted and re-created under the same name since it
    /// was read is left alone, and the request fails with 409 Conflict.
    pub(crate) async fn delete(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
        propagation: crate::prune::Propagation,
    ) -> Result<bool, ApiFailure> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let mut params = DeleteParams {
            propagation_policy: Some(propagation.policy()),
            ..Default::default()
        };
        if let Some(uid) = uid.filter(|u| !u.is_empty()) {
            params.preconditions = Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            });
        }
        let req = Request::new(res.url(namespace))
            .delete(name, &params)
            .map_err(|e| self.failure(kube::Error::BuildRequest(e)))?;
        match self.client.request::<Value>(req).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if object_missing(&status, name) => Ok(false),
            Err(e) => Err(self.failed_request(res, e)),
        }
    }
}

/// Whether a 404 says that the named object does not exist (rather than that the kind is not
/// served at that address).
fn object_missing(status: &kube::core::Status, name: &str) -> bool {
    status.code == 404
        && (status.details.as_ref().is_some_and(|d| d.name == name)
            || status.message.ends_with(&format!("\"{name}\" not found")))
}

/// A client that impersonates the service account `namespace/name`
/// (`system:serviceaccount:<namespace>:<name>`), as Flux does for `spec.serviceAccountName`.
pub(crate) fn impersonating_client(
    config: &Config,
    namespace: &str,
    name: &str,
) -> Result<Client, kube::Error> {
    let mut config = config.clone();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    config.auth_info.impersonate_groups = None;
    config.auth_info.impersonate_uid = None;
    config.auth_info.impersonate_user_extra = None;
    Client::try_from(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cm = Resource {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        };
        assert_eq!(cm.url("apps"), "/api/v1/namespaces/apps/configmaps");
        let crd = Resource {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
            namespaced: false,
        };
        assert_eq!(
            crd.url("ignored"),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        );
    }

    #[test]
    fn missing_objects_and_missing_kinds_differ() {
        let object: kube::core::Status = serde_json::from_value(serde_json::json!({
            "code": 404, "reason": "NotFound", "message": "configmaps \"x\" not found",
            "details": {"name": "x", "kind": "configmaps"}}))
        .unwrap();
        assert!(object_missing(&object, "x"));
        let kind: kube::core::Status = serde_json::from_value(serde_json::json!({
            "code": 404, "reason": "NotFound",
            "message": "the server could not find the requested resource", "details": {}}))
        .unwrap();
        assert!(!object_missing(&kind, "x"));
    }

    #[test]
    fn counts_add_up() {
        let c = RequestCounts {
            discovery: 1,
            reads: 2,
            dry_runs: 3,
            writes: 4,
        };
        assert_eq!(c.total(), 10);
    }
}
