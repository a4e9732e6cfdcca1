//! The dependencies of a chart packaged from a GitRepository that are not
//! vendored under its `charts/` and name a chart repository (Flux's
//! `DependencyManager` with the HelmChart controller's
//! `namespacedChartRepositoryCallback`):
//!
//! - the dependency's `repository` is normalized (`oci://…` without a
//!   trailing slash, `http(s)://…/` with one) and must be one of those
//!   schemes: Helm's repository names (`@name`, `alias:name`) need a local
//!   repository file and are refused with Flux's message;
//! - the HelmRepository of the chart's namespace whose normalized
//!   `spec.url` is that URL gives the credentials (`secretRef`,
//!   `certSecretRef`, `passCredentials`, `insecure` for a registry), its
//!   timeout and, for an HTTP repository, its stored index; without one the
//!   repository is used anonymously with a 60 s timeout, as Flux does;
//! - an HTTP repository's index is its HelmRepository's artifact when there
//!   is one, else downloaded once per build into a temporary file (never
//!   held parsed: only the dependency's entries are read from it); the
//!   version is resolved as for a HelmChart (an exact version first, else
//!   the highest match of the constraint) and the archive downloaded with
//!   Helm's rule for sending credentials to another host;
//! - a registry's chart is `<url>/<name>` at the version's tag (a range is
//!   resolved among the tags).
//!
//! The build runs on a blocking thread; the API reads (HelmRepositories,
//! Secrets) are made on the controller's runtime from there.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use sluice_api::source::helm::HelmRepository;
use sluice_helm::Dependency;
use sluice_helm::repo::{normalize_url, validate_dependency_url};

use crate::auth::{Credentials, Tls};
use crate::helm_chart::MAX_CHART_BYTES;
use crate::helm_repository::{MAX_INDEX_BYTES, index_url, repository_auth};
use crate::http::HttpClient;
use crate::reconciler::Ctx;

/// Flux's timeout for a repository no HelmRepository describes.
const ANONYMOUS_TIMEOUT: Duration = Duration::from_secs(60);

/// The chart repositories of one build, resolved on first use.
pub(crate) struct Repositories {
    runtime: tokio::runtime::Handle,
    ctx: Arc<Ctx>,
    ns: String,
    /// The namespace's HelmRepositories, listed once on first need.
    listed: Mutex<Option<Vec<HelmRepository>>>,
    /// By normalized URL.
    resolved: Mutex<HashMap<String, Arc<Repository>>>,
}

/// One chart repository, ready to resolve and download from.
enum Repository {
    Index {
        url: String,
        index: Index,
        client: HttpClient,
        pass_credentials: bool,
    },
    Oci {
        url: String,
        client: sluice_oci::Client,
    },
}

/// Where an HTTP repository's index is read from.
enum Index {
    /// The HelmRepository's stored artifact.
    Stored(PathBuf),
    /// Downloaded for this build; removed when the build ends.
    Downloaded(tempfile::NamedTempFile),
}

impl Index {
    fn path(&self) -> &std::path::Path {
        match self {
            Index::Stored(p) => p,
            Index::Downloaded(f) => f.path(),
        }
    }
}

impl Repositories {
    /// For a build of a chart in namespace `ns`, called from the runtime.
    pub fn new(ctx: Arc<Ctx>, ns: &str) -> Repositories {
        Repositories {
            runtime: tokio::runtime::Handle::current(),
            ctx,
            ns: ns.to_string(),
            listed: Mutex::new(None),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    fn repository(&self, url: &str) -> Result<Arc<Repository>, String> {
        let mut resolved = self
            .resolved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = resolved.get(url) {
            return Ok(r.clone());
        }
        let repo = Arc::new(
            self.open(url)
                .map_err(|e| format!("failed to get chart repository for URL '{url}': {e}"))?,
        );
        resolved.insert(url.to_string(), repo.clone());
        Ok(repo)
    }

    /// The HelmRepository of the namespace for `url`, if any.
    fn described(&self, url: &str) -> Result<Option<HelmRepository>, String> {
        let mut listed = self
            .listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listed.is_none() {
            let api: Api<HelmRepository> = Api::namespaced(self.ctx.client.clone(), &self.ns);
            let list = self
                .runtime
                .block_on(api.list(&ListParams::default()))
                .map_err(|e| format!("unable to retrieve HelmRepositoryList: {e}"))?;
            *listed = Some(list.items);
        }
        Ok(listed
            .iter()
            .flatten()
            .find(|r| normalize_url(&r.spec.url) == url)
            .cloned())
    }

    fn open(&self, url: &str) -> Result<Repository, String> {
        let described = self.described(url)?;
        let ctx = &*self.ctx;
        let ns = &self.ns;
        let timeout = match &described {
            Some(r) => r.spec.timeout().map_err(|e| format!("spec.timeout: {e}"))?,
            None => ANONYMOUS_TIMEOUT,
        };
        if url.starts_with("oci://") {
            let spec = described.as_ref().map(|r| &r.spec);
            let (opts, fingerprint) = self
                .runtime
                .block_on(crate::oci_repository::client_options(
                    ctx,
                    ns,
                    spec.and_then(|s| s.secret_ref.as_ref())
                        .map(|r| r.name.as_str()),
                    None,
                    spec.and_then(|s| s.cert_secret_ref.as_ref())
                        .map(|r| r.name.as_str()),
                    spec.is_some_and(|s| s.is_insecure()),
                    timeout,
                ))
                .map_err(|f| f.message)?;
            let client = ctx
                .oci_clients
                .get(&fingerprint, opts)
                .map_err(|e| format!("failed to create registry client: {}", e.message()))?;
            return Ok(Repository::Oci {
                url: url.to_string(),
                client,
            });
        }
        let (creds, tls) = match &described {
            Some(r) => self
                .runtime
                .block_on(repository_auth(ctx, ns, &r.spec))
                .map_err(|f| f.message)?,
            None => (Credentials::default(), Tls::default()),
        };
        let client = HttpClient::new(&creds, &tls, timeout).map_err(|e| e.to_string())?;
        let stored = described
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .and_then(|s| s.artifact.as_ref())
            .filter(|a| ctx.storage.exists(a))
            .and_then(|a| ctx.storage.local_path(a));
        let index = match stored {
            Some(path) => Index::Stored(path),
            None => {
                let file = tempfile::Builder::new()
                    .prefix(".dependency-index-")
                    .tempfile_in(ctx.storage.root())
                    .map_err(|e| format!("failed to create temporary file: {e}"))?;
                let mut out = file
                    .as_file()
                    .try_clone()
                    .map_err(|e| format!("failed to create temporary file: {e}"))?;
                client
                    .download(&index_url(url), true, MAX_INDEX_BYTES, &mut out)
                    .map_err(|e| format!("failed to cache index: {e}"))?;
                Index::Downloaded(file)
            }
        };
        Ok(Repository::Index {
            url: url.to_string(),
            index,
            client,
            pass_credentials: described.is_some_and(|r| r.spec.pass_credentials()),
        })
    }
}

impl sluice_helm::RemoteDependencies for Repositories {
    fn fetch(&self, dep: &Dependency) -> Result<Vec<u8>, String> {
        let url = normalize_url(&dep.repository);
        validate_dependency_url(&url)?;
        let not_found = |e: &dyn std::fmt::Display| {
            format!(
                "failed to get chart '{}' version '{}' from '{}': {e}",
                dep.name, dep.version, dep.repository
            )
        };
        let failed = |version: &str, e: &dyn std::fmt::Display| {
            format!("chart download of version '{version}' failed: {e}")
        };
        match &*self.repository(&url)? {
            Repository::Index {
                url,
                index,
                client,
                pass_credentials,
            } => {
                let file = std::fs::File::open(index.path())
                    .map_err(|e| not_found(&format!("failed to load index: {e}")))?;
                let cv = sluice_helm::repo::resolve(BufReader::new(file), &dep.name, &dep.version)
                    .map_err(|e| not_found(&e))?;
                let version = cv.version().to_string();
                let first = cv.urls.first().ok_or_else(|| {
                    failed(
                        &version,
                        &format!("chart '{}' has no downloadable URLs", dep.name),
                    )
                })?;
                let chart_url = sluice_helm::repo::resolve_reference_url(url, first)
                    .map_err(|e| failed(&version, &e))?;
                let mut archive = Vec::new();
                client
                    .download(
                        &chart_url,
                        sluice_helm::repo::sends_credentials(url, &chart_url, *pass_credentials),
                        MAX_CHART_BYTES,
                        &mut archive,
                    )
                    .map_err(|e| failed(&version, &e))?;
                Ok(archive)
            }
            Repository::Oci { url, client } => {
                let chart_url = format!("{url}/{}", dep.name);
                let reference = sluice_oci::Reference::parse(&chart_url)
                    .map_err(|e| not_found(&e.message()))?;
                let tag = sluice_oci::helm::version_tag(client, &reference, &dep.version)
                    .map_err(|e| not_found(&e.message()))?
                    .map_err(|e| not_found(&e))?;
                let pulled = sluice_oci::helm::pull_chart(
                    client,
                    &reference,
                    &sluice_oci::Target::Tag(tag.clone()),
                    MAX_CHART_BYTES,
                )
                .map_err(|e| {
                    failed(
                        &tag,
                        &format!("failed to get '{chart_url}:{tag}': {}", e.message()),
                    )
                })?;
                Ok(pulled.tgz)
            }
        }
    }
}
