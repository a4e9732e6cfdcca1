//! HelmRepository: a Helm chart repository's `index.yaml`, fetched over
//! HTTP(S) each interval into `helmrepository/<ns>/<name>/index-<hex>.yaml`
//! (revision `sha256:<hex>` of the index, as Flux's).
//!
//! The index is streamed to disk while its digest is computed; an unchanged
//! digest ends the run there. A changed one is checked as a Helm index by
//! a streaming reader (no parsed copy of a large index is kept), then
//! stored. HelmCharts read the stored index the same way, keeping only the
//! entries of their chart.
//!
//! `type: oci` repositories are static, as in Flux: there is nothing to
//! fetch until a HelmChart pulls a chart, so they carry no status and no
//! finalizer (a status or finalizer left by an older controller is
//! removed), and HelmCharts read their URL and credentials directly.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use sluice_api::meta::{
    self as flux, AUTHENTICATION_FAILED_REASON, FAILED_REASON, SUCCEEDED_REASON, URL_INVALID_REASON,
};
use sluice_api::source::helm::{
    DEFAULT_HELM_REPOSITORY_TIMEOUT, HELM_REPOSITORY_KIND, HelmRepository, HelmRepositorySpec,
    HelmRepositoryStatus, INDEXATION_FAILED_REASON,
};
use sluice_runtime::{Failure, finalizers};

use crate::api::{self, Artifact};
use crate::auth::{self, Credentials, Tls};
use crate::http::{HttpClient, HttpError, human_size, redact};
use crate::reconciler::{
    self, Ctx, SourceKind, Stored, blocking, fetch_failure, new_artifact, source_status,
    spec_timeout, storage_failure, store,
};

/// The kind's name.
pub const KIND: &str = HELM_REPOSITORY_KIND;

/// Default timeout of index downloads (`spec.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest index downloaded (Flux's `--helm-index-max-size` default).
pub const MAX_INDEX_BYTES: u64 = 50 << 20;

source_status!(url: HelmRepositoryStatus);

impl SourceKind for HelmRepository {
    type Status = HelmRepositoryStatus;
    type Observed = ();
    const KIND: &'static str = KIND;
    const LATEST_LINK: Option<&'static str> = Some("index.yaml");

    fn status(&self) -> Option<&HelmRepositoryStatus> {
        self.status.as_ref()
    }
    fn interval_text(&self) -> &str {
        self.spec
            .interval
            .as_deref()
            .unwrap_or(sluice_api::source::helm::DEFAULT_HELM_REPOSITORY_INTERVAL)
    }
    fn interval(&self) -> Option<Duration> {
        self.spec.interval().ok()
    }
    fn suspended(&self) -> bool {
        self.spec.is_suspended()
    }
    fn record(&self, _status: &mut HelmRepositoryStatus, _observed: &()) {}
    async fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: HelmRepositoryStatus,
    ) -> Result<Stored<()>, Failure> {
        sync(&obj, &ctx, &old).await
    }
}

/// The reconcile entry: OCI repositories are static, the others go through
/// the shared loop.
pub(crate) async fn reconcile(
    obj: Arc<HelmRepository>,
    ctx: Arc<Ctx>,
) -> Result<Action, finalizers::Error<reconciler::Error>> {
    if obj.spec.is_oci() {
        make_static(&obj, &ctx)
            .await
            .map_err(|e| finalizers::Error::ApplyFailed(reconciler::Error::Kube(e)))?;
        return Ok(Action::await_change());
    }
    reconciler::reconcile(obj, ctx).await
}

/// Removes what a non-static past left on an OCI HelmRepository: the
/// finalizer, the status, the artifacts.
async fn make_static(obj: &HelmRepository, ctx: &Ctx) -> Result<(), kube::Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let api: Api<HelmRepository> = Api::namespaced(ctx.client.clone(), &ns);
    let finalizers = obj.finalizers();
    if finalizers.iter().any(|f| f == flux::FINALIZER) {
        if let Err(e) = ctx.storage.remove_object(KIND, &ns, &name) {
            tracing::warn!(namespace = %ns, name = %name, "removing artifacts: {e}");
        }
        let kept: Vec<&String> = finalizers
            .iter()
            .filter(|f| *f != flux::FINALIZER)
            .collect();
        let patch = serde_json::json!({
            "metadata": {"finalizers": kept, "resourceVersion": obj.resource_version()}
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let status_set = obj.status.as_ref().is_some_and(|s| {
        s.artifact.is_some() || s.conditions.as_ref().is_some_and(|c| !c.is_empty())
    });
    if status_set {
        let patch = serde_json::json!({"status": {
            "artifact": null, "conditions": null, "url": null,
            "observedGeneration": null, "lastHandledReconcileAt": null,
        }});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    ctx.opts.runtime.metrics.deleted(KIND, &ns, &name);
    Ok(())
}

/// The credentials and TLS material of a HelmRepository: `secretRef`
/// (basic auth; the deprecated TLS keys when `certSecretRef` is not set)
/// and `certSecretRef`.
pub(crate) async fn repository_auth(
    ctx: &Ctx,
    ns: &str,
    spec: &HelmRepositorySpec,
) -> Result<(Credentials, Tls), Failure> {
    let mut creds = Credentials::default();
    let mut tls = Tls::default();
    if let Some(r) = &spec.secret_ref {
        let secret = auth::secret(&ctx.client, ns, &r.name).await?;
        creds = auth::credentials(&secret, ns, &r.name)?;
        if spec.cert_secret_ref.is_none() {
            tls = auth::tls(&secret, ns, &r.name, true)?;
        }
    }
    if let Some(r) = &spec.cert_secret_ref {
        let secret = auth::secret(&ctx.client, ns, &r.name).await?;
        tls = auth::tls(&secret, ns, &r.name, false)?;
    }
    Ok((creds, tls))
}

/// `<url>/index.yaml`.
pub(crate) fn index_url(url: &str) -> String {
    format!("{}/index.yaml", url.trim_end_matches('/'))
}

fn validate_url(url: &str) -> Result<(), Failure> {
    let invalid = |m: String| {
        Failure::stalled(
            URL_INVALID_REASON,
            format!("invalid Helm repository URL: {m}"),
        )
    };
    if url.starts_with("oci://") {
        return Err(invalid(
            "'oci' URL scheme cannot be used with 'default' HelmRepository type".into(),
        ));
    }
    match url.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(invalid(format!(
            "parse \"{url}\": expected an http:// or https:// URL"
        ))),
    }
}

async fn sync(
    obj: &HelmRepository,
    ctx: &Arc<Ctx>,
    old: &HelmRepositoryStatus,
) -> Result<Stored<()>, Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    validate_url(&spec.url)?;
    let timeout = spec_timeout(
        Some(
            spec.timeout
                .as_deref()
                .unwrap_or(DEFAULT_HELM_REPOSITORY_TIMEOUT),
        ),
        spec.timeout(),
        DEFAULT_TIMEOUT,
    )?;
    let (creds, tls) = repository_auth(ctx, &ns, spec).await?;
    let url = index_url(&spec.url);
    let shown = redact(&spec.url);
    let storage = ctx.storage.clone();
    let old_artifact = old.artifact.clone().filter(|a| ctx.storage.exists(a));
    let (ns2, name2) = (ns.clone(), name.clone());
    let fetched = blocking(
        timeout,
        |m| {
            fetch_failure(
                FAILED_REASON,
                format!("failed to fetch Helm repository index: {m}"),
            )
        },
        move || -> Result<Fetched, Failure> {
            let client = HttpClient::new(&creds, &tls, timeout).map_err(|e| {
                fetch_failure(
                    FAILED_REASON,
                    format!("failed to construct Helm client: {e}"),
                )
            })?;
            let work = tempfile::Builder::new()
                .prefix(".index-")
                .tempfile_in(storage.root())
                .map_err(|e| storage_failure(format!("failed to create temporary file: {e}")))?;
            let mut file = work
                .as_file()
                .try_clone()
                .map_err(|e| storage_failure(format!("failed to create temporary file: {e}")))?;
            let got = client
                .download(&url, true, MAX_INDEX_BYTES, &mut file)
                .map_err(|e| match e {
                    HttpError::Auth(m) => fetch_failure(
                        AUTHENTICATION_FAILED_REASON,
                        format!("failed to fetch Helm repository index: {m}"),
                    ),
                    other => fetch_failure(
                        FAILED_REASON,
                        format!("failed to fetch Helm repository index: {other}"),
                    ),
                })?;
            drop(file);
            // Unchanged: the digest is the revision.
            if let Some(a) = old_artifact.filter(|a| a.revision == got.digest) {
                return Ok(Fetched::Unchanged(a));
            }
            let reader = std::fs::File::open(work.path())
                .map_err(|e| storage_failure(format!("failed to read the fetched index: {e}")))?;
            let summary =
                sluice_helm::repo::validate(std::io::BufReader::new(reader)).map_err(|e| {
                    fetch_failure(
                        INDEXATION_FAILED_REASON,
                        format!("failed to load Helm repository from index YAML: {e}"),
                    )
                })?;
            let hex = got.digest.trim_start_matches("sha256:").to_string();
            let file_name = format!("index-{hex}.yaml");
            let written = store(&storage, KIND, &ns2, &name2, &file_name, |out| {
                let mut src = std::fs::File::open(work.path()).map_err(|e| {
                    storage_failure(format!("unable to save artifact to storage: {e}"))
                })?;
                std::io::copy(&mut src, out).map(|_| ()).map_err(|e| {
                    storage_failure(format!("unable to save artifact to storage: {e}"))
                })
            })?;
            Ok(Fetched::New {
                written,
                revision: got.digest,
                charts: summary.charts,
            })
        },
    )
    .await?;
    let stored = |artifact: Artifact, event: Option<String>| Stored {
        message: format!("stored artifact: revision '{}'", artifact.revision),
        artifact,
        reason: SUCCEEDED_REASON,
        event: event.map(|m| (api::NEW_ARTIFACT_REASON, m)),
        observed: (),
    };
    match fetched {
        Fetched::Unchanged(a) => Ok(stored(a, None)),
        Fetched::New {
            written,
            revision,
            charts,
        } => {
            tracing::debug!(namespace = %ns, name = %name, charts, "stored a new index");
            let message = format!(
                "stored fetched index of size {} from '{shown}'",
                human_size(written.size)
            );
            let artifact = new_artifact(ctx, KIND, &ns, &name, written, revision, None);
            Ok(stored(artifact, Some(message)))
        }
    }
}

enum Fetched {
    Unchanged(Artifact),
    New {
        written: crate::storage::Written,
        revision: String,
        charts: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_as_flux_checks_them() {
        assert!(validate_url("https://charts.example/repo").is_ok());
        let f = validate_url("oci://ghcr.io/org/charts").unwrap_err();
        assert!(f.stalled);
        assert_eq!(
            f.message,
            "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type"
        );
        assert!(validate_url("ftp://x").is_err());
        assert_eq!(
            index_url("https://h/charts/"),
            "https://h/charts/index.yaml"
        );
    }
}
