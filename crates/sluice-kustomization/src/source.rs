//! The sources a Kustomization can apply, GitRepository, OCIRepository,
//! Bucket and (behind Flux's `ExternalArtifact` feature gate) ExternalArtifact,
//! behind one code path: [`SourceObject`] says what the controller needs of
//! a source kind (its Artifact), [`Source`] holds one of them, and
//! [`SourceStores`] are the reflector caches the reconciler and the
//! `dependsOn` rule read. Every kind's Artifact is a tar.gz file the source
//! controller stores and serves the same way, so the render pipeline reads
//! them alike (from the local storage when in-process, else from
//! `status.artifact.url`). An ExternalArtifact's producer serves it: it is
//! always downloaded, never looked up in sluice's storage by its `path`,
//! which its producer wrote.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::reflector::{self, ObjectRef as KubeRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use sluice_api::kustomization::SourceKind;
use sluice_api::meta::Artifact;
use sluice_api::{Bucket, ExternalArtifact, GitRepository, Kustomization, OCIRepository};

/// A source kind the controller applies from.
pub(crate) trait SourceObject:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// How a Kustomization's `sourceRef.kind` names it.
    const KIND: SourceKind;

    /// The current Artifact, if any.
    fn current_artifact(&self) -> Option<&Artifact>;

    /// Wraps the object.
    fn into_source(self: Arc<Self>) -> Source;

    /// This kind's cache, if it is watched.
    fn store(stores: &SourceStores) -> Option<&Store<Self>>;
}

impl SourceObject for GitRepository {
    const KIND: SourceKind = SourceKind::GitRepository;

    fn current_artifact(&self) -> Option<&Artifact> {
        self.artifact()
    }

    fn into_source(self: Arc<Self>) -> Source {
        Source::Git(self)
    }

    fn store(stores: &SourceStores) -> Option<&Store<Self>> {
        Some(&stores.git)
    }
}

impl SourceObject for OCIRepository {
    const KIND: SourceKind = SourceKind::OciRepository;

    fn current_artifact(&self) -> Option<&Artifact> {
        self.artifact()
    }

    fn into_source(self: Arc<Self>) -> Source {
        Source::Oci(self)
    }

    fn store(stores: &SourceStores) -> Option<&Store<Self>> {
        Some(&stores.oci)
    }
}

impl SourceObject for Bucket {
    const KIND: SourceKind = SourceKind::Bucket;

    fn current_artifact(&self) -> Option<&Artifact> {
        self.artifact()
    }

    fn into_source(self: Arc<Self>) -> Source {
        Source::Bucket(self)
    }

    fn store(stores: &SourceStores) -> Option<&Store<Self>> {
        Some(&stores.bucket)
    }
}

impl SourceObject for ExternalArtifact {
    const KIND: SourceKind = SourceKind::ExternalArtifact;

    fn current_artifact(&self) -> Option<&Artifact> {
        self.artifact()
    }

    fn into_source(self: Arc<Self>) -> Source {
        Source::External(self)
    }

    fn store(stores: &SourceStores) -> Option<&Store<Self>> {
        stores.external.as_ref()
    }
}

/// Whether the controller applies from sources of `kind`: every kind of Flux's
/// CRD (an ExternalArtifact only with its feature gate, checked apart).
pub(crate) fn is_supported(kind: &SourceKind) -> bool {
    kind.is_known()
}

/// Whether an artifact of a source of `kind` may be read from sluice's own storage by its
/// `path`: not an ExternalArtifact's, whose path its producer wrote (and could point at another
/// source's artifact there); that one is downloaded from its URL and checked against its digest.
pub(crate) fn in_local_storage(kind: &SourceKind) -> bool {
    *kind != SourceKind::ExternalArtifact
}

/// A Kustomization's source, of any supported kind.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Git(Arc<GitRepository>),
    Oci(Arc<OCIRepository>),
    Bucket(Arc<Bucket>),
    External(Arc<ExternalArtifact>),
}

impl Source {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        match self {
            Source::Git(g) => g.current_artifact(),
            Source::Oci(o) => o.current_artifact(),
            Source::Bucket(b) => b.current_artifact(),
            Source::External(e) => e.current_artifact(),
        }
    }

    /// The current Artifact's revision, if any.
    pub fn revision(&self) -> Option<&str> {
        self.artifact().map(|a| a.revision.as_str())
    }
}

/// Which source a Kustomization applies from: `spec.sourceRef` with its
/// namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SourceRef {
    pub kind: SourceKind,
    pub namespace: String,
    pub name: String,
}

impl SourceRef {
    /// The source of `ks`.
    pub fn of(ks: &Kustomization) -> Self {
        let ns = ks.namespace().unwrap_or_default();
        let r = &ks.spec.source_ref;
        SourceRef {
            kind: r.kind.clone(),
            namespace: r.namespace_or(&ns).to_string(),
            name: r.name.clone(),
        }
    }

    /// Whether this is `obj` (of kind `K`).
    fn is<K: SourceObject>(&self, obj: &K) -> bool {
        self.kind == K::KIND
            && obj.meta().name.as_deref() == Some(self.name.as_str())
            && obj.meta().namespace.as_deref() == Some(self.namespace.as_str())
    }
}

impl fmt::Display for SourceRef {
    /// `Kind/namespace/name`, as the conditions name a source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The reflector caches of every source kind (all of them in the watched
/// scope: a Kustomization of this shard may use any source). ExternalArtifacts
/// are watched only with their feature gate on, as in Flux.
#[derive(Clone)]
pub(crate) struct SourceStores {
    git: Store<GitRepository>,
    oci: Store<OCIRepository>,
    bucket: Store<Bucket>,
    external: Option<Store<ExternalArtifact>>,
}

impl SourceStores {
    /// The source `r` names, from the caches.
    pub fn get(&self, r: &SourceRef) -> Option<Source> {
        fn cached<K: SourceObject>(stores: &SourceStores, r: &SourceRef) -> Option<Source> {
            K::store(stores)?
                .get(&KubeRef::new(&r.name).within(&r.namespace))
                .map(K::into_source)
        }
        match r.kind {
            SourceKind::GitRepository => cached::<GitRepository>(self, r),
            SourceKind::OciRepository => cached::<OCIRepository>(self, r),
            SourceKind::Bucket => cached::<Bucket>(self, r),
            SourceKind::ExternalArtifact => cached::<ExternalArtifact>(self, r),
            SourceKind::Unknown(_) => None,
        }
    }

    /// Waits until every cache has its first list. Fails when a watch ends
    /// before that.
    pub async fn wait_until_ready(&self) -> Result<(), String> {
        let external = async {
            match &self.external {
                Some(store) => store.wait_until_ready().await.map_err(drop),
                None => Ok(()),
            }
        };
        let (git, oci, bucket, external) = futures::join!(
            self.git.wait_until_ready(),
            self.oci.wait_until_ready(),
            self.bucket.wait_until_ready(),
            external
        );
        git.map_err(|_| "the GitRepository watch ended before its first list".to_string())?;
        oci.map_err(|_| "the OCIRepository watch ended before its first list".to_string())?;
        bucket.map_err(|_| "the Bucket watch ended before its first list".to_string())?;
        external
            .map_err(|_| "the ExternalArtifact watch ended before its first list".to_string())?;
        Ok(())
    }
}

/// The caches' reflectors, running until aborted.
pub(crate) struct SourceReflectors {
    pub stores: SourceStores,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SourceReflectors {
    /// Starts a reflector per source kind, in the scope's namespace (all
    /// when none; never the sharding selector, which is the
    /// Kustomizations'); ExternalArtifacts only when `external_artifacts`.
    pub fn start(
        client: &Client,
        scope: &sluice_runtime::WatchScope,
        external_artifacts: bool,
    ) -> Self {
        let (git, git_task) = reflect(scope.api::<GitRepository>(client));
        let (oci, oci_task) = reflect(scope.api::<OCIRepository>(client));
        let (bucket, bucket_task) = reflect(scope.api::<Bucket>(client));
        let mut tasks = vec![git_task, oci_task, bucket_task];
        let external = external_artifacts.then(|| {
            let (store, task) = reflect(scope.api::<ExternalArtifact>(client));
            tasks.push(task);
            store
        });
        SourceReflectors {
            stores: SourceStores {
                git,
                oci,
                bucket,
                external,
            },
            tasks,
        }
    }

    /// Stops the reflectors.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn reflect<K: SourceObject>(api: Api<K>) -> (Store<K>, tokio::task::JoinHandle<()>) {
    let (reader, writer) = reflector::store();
    let task = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    (reader, tokio::spawn(task))
}

/// The watch mapper of source kind `K`: a change of a source (a new
/// Artifact above all) wakes the Kustomizations that use it, at once.
pub(crate) fn wake_users<K: SourceObject>(
    kustomizations: Store<Kustomization>,
) -> impl Fn(K) -> Vec<KubeRef<Kustomization>> + Send + Sync + 'static {
    move |source: K| {
        kustomizations
            .state()
            .into_iter()
            .filter(|ks| SourceRef::of(ks).is(&source))
            .map(|ks| KubeRef::from_obj(&*ks))
            .collect()
    }
}

/// The source `r` as the API server has it now (`None`: it does not exist).
pub(crate) async fn get(client: &Client, r: &SourceRef) -> Result<Option<Source>, kube::Error> {
    async fn fetch<K: SourceObject>(
        client: &Client,
        r: &SourceRef,
    ) -> Result<Option<Source>, kube::Error> {
        let api: Api<K> = Api::namespaced(client.clone(), &r.namespace);
        Ok(api
            .get_opt(&r.name)
            .await?
            .map(|o| Arc::new(o).into_source()))
    }
    match r.kind {
        SourceKind::GitRepository => fetch::<GitRepository>(client, r).await,
        SourceKind::OciRepository => fetch::<OCIRepository>(client, r).await,
        SourceKind::Bucket => fetch::<Bucket>(client, r).await,
        SourceKind::ExternalArtifact => fetch::<ExternalArtifact>(client, r).await,
        SourceKind::Unknown(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ks(kind: &str, namespace: Option<&str>) -> Kustomization {
        let mut source_ref = json!({"kind": kind, "name": "src"});
        if let Some(ns) = namespace {
            source_ref["namespace"] = json!(ns);
        }
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "team"},
            "spec": {"interval": "1m", "prune": true, "sourceRef": source_ref},
        }))
        .unwrap()
    }

    fn oci(ns: &str, name: &str) -> OCIRepository {
        serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"url": "oci://registry/app", "interval": "1m"},
        }))
        .unwrap()
    }

    #[test]
    fn a_source_ref_resolves_its_namespace_and_names_itself() {
        let r = SourceRef::of(&ks("OCIRepository", None));
        assert_eq!(r.to_string(), "OCIRepository/team/src");
        let r = SourceRef::of(&ks("OCIRepository", Some("infra")));
        assert_eq!(r.to_string(), "OCIRepository/infra/src");
        assert!(r.is(&oci("infra", "src")));
        assert!(!r.is(&oci("team", "src")));
        assert!(!r.is(&oci("infra", "other")));
        // The same name and namespace of another kind is another source.
        let git = SourceRef::of(&ks("GitRepository", Some("infra")));
        assert!(!git.is(&oci("infra", "src")));
    }

    #[test]
    fn only_an_external_artifact_is_never_read_from_local_storage() {
        let external: ExternalArtifact = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "ExternalArtifact",
            "metadata": {"name": "src", "namespace": "infra"},
            "spec": {},
        }))
        .unwrap();
        let r = SourceRef::of(&ks("ExternalArtifact", Some("infra")));
        assert!(r.is(&external));
        assert!(!in_local_storage(&r.kind));
        for kind in ["GitRepository", "OCIRepository", "Bucket"] {
            assert!(in_local_storage(&SourceRef::of(&ks(kind, None)).kind));
        }
    }
}
