//! OCIRepository: an OCI artifact (Flux's `flux push artifact`, a Helm
//! chart, any image layer) pulled from a registry into
//! `ocirepository/<ns>/<name>/sha256:<hex>.tar.gz`.
//!
//! A due object costs one manifest `HEAD` by tag (plus a tag listing for
//! `ref.semver`); the manifest and the layer are downloaded only when the
//! digest moved or the layer selector or ignore rules changed. The selected
//! layer is extracted and re-archived with the ignore rules
//! (`operation: extract`, the default) or stored as it is
//! (`operation: copy`). Revisions are Flux's: `<tag>@sha256:<hex>`, or the
//! digest alone for `ref.digest`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use sha2::{Digest, Sha256};
use sluice_api::meta::{
    self as flux, AUTHENTICATION_FAILED_REASON, READ_OPERATION_FAILED_REASON, SUCCEEDED_REASON,
    URL_INVALID_REASON,
};
use sluice_api::source::oci::{
    OCI_LAYER_OPERATION_FAILED_REASON, OCI_PULL_FAILED_REASON, OCILayerOperation, OCIProvider,
    OCIRepository, OCIRepositorySpec, OCIRepositoryStatus, Wanted,
};
use sluice_oci::{Client, ClientOptions, ErrorKind, Target};
use sluice_runtime::Failure;

use crate::api::{self, Artifact};
use crate::auth;
use crate::reconciler::{
    Ctx, SourceKind, Stored, blocking, fetch_failure, new_artifact, source_status, spec_accessors,
    spec_timeout, storage_failure, store,
};

/// The kind's name.
pub const KIND: &str = sluice_api::source::oci::OCI_REPOSITORY_KIND;

/// Default timeout of registry operations (`spec.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest layer downloaded (compressed), so a repository cannot fill
/// the controller's disk.
pub const MAX_LAYER_BYTES: u64 = 512 << 20;

source_status!(url: OCIRepositoryStatus);

/// What an OCIRepository records beside its artifact.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    spec: OCIRepositorySpec,
}

impl SourceKind for OCIRepository {
    type Status = OCIRepositoryStatus;
    type Observed = Observed;
    const KIND: &'static str = KIND;
    const LATEST_LINK: Option<&'static str> = Some("latest.tar.gz");

    spec_accessors!(OCIRepositoryStatus);
    fn record(&self, status: &mut OCIRepositoryStatus, observed: &Observed) {
        status.observed_ignore = observed.spec.ignore.clone();
        status.observed_layer_selector = observed.spec.layer_selector.clone();
    }
    fn artifact_outdated(&self, status: &OCIRepositoryStatus) -> bool {
        content_config_changed(&self.spec, status)
    }
    async fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: OCIRepositoryStatus,
    ) -> Result<Stored<Observed>, Failure> {
        sync(&obj, &ctx, &old).await
    }
}

/// The ignore rules or the layer selector differ from what the stored
/// artifact was made with (Flux's `ociContentConfigChanged`).
fn content_config_changed(spec: &OCIRepositorySpec, status: &OCIRepositoryStatus) -> bool {
    spec.ignore != status.observed_ignore || spec.layer_selector != status.observed_layer_selector
}

/// Spec checks no retry can fix: unsupported fields and a malformed URL.
fn validate(spec: &OCIRepositorySpec) -> Result<(), Failure> {
    let unsupported = |m: String| Failure::stalled(flux::UNSUPPORTED_FIELD_REASON, m);
    if spec.provider() != OCIProvider::Generic {
        return Err(unsupported(format!(
            "spec.provider '{}' is not supported by sluice (only 'generic'); use spec.secretRef or spec.serviceAccountName image pull secrets",
            spec.provider().as_str()
        )));
    }
    if spec.verification.is_some() {
        return Err(unsupported(
            "spec.verify (cosign/notation signature verification) is not supported by sluice"
                .into(),
        ));
    }
    Ok(())
}

/// Maps a client error to Flux's reason: refused credentials are
/// `AuthenticationFailed` whatever the step.
fn oci_failure(reason: &'static str, context: &str, e: &sluice_oci::Error) -> Failure {
    let reason = if e.kind() == ErrorKind::Auth {
        AUTHENTICATION_FAILED_REASON
    } else {
        reason
    };
    fetch_failure(reason, format!("{context}: {}", e.message()))
}

/// The client options of an object: credentials from `secretRef` and the
/// service account's image pull secrets, TLS from `certSecretRef`.
pub(crate) async fn client_options(
    ctx: &Ctx,
    ns: &str,
    secret_ref: Option<&str>,
    service_account: Option<&str>,
    cert_secret_ref: Option<&str>,
    insecure: bool,
    timeout: Duration,
) -> Result<(ClientOptions, String), Failure> {
    // What the client is made of, hashed: a cached client is reused only
    // while this stays the same (a rotated password makes a new one).
    let mut inputs = Sha256::new();
    inputs.update(format!("{insecure}|{timeout:?}|").as_bytes());
    let mut keychain = sluice_oci::Keychain::anonymous();
    let mut opts = ClientOptions {
        timeout,
        insecure,
        ..ClientOptions::default()
    };
    let bad_config = |source: String, e: sluice_oci::Error| {
        fetch_failure(
            AUTHENTICATION_FAILED_REASON,
            format!("invalid docker config in {source}: {}", e.message()),
        )
    };
    if let Some(name) = secret_ref {
        let secret = auth::secret(&ctx.client, ns, name).await?;
        let creds = auth::credentials(&secret, ns, name)?;
        if let Some((u, p)) = creds.basic {
            inputs.update(format!("basic|{}|{u}|{p}|", u.len()).as_bytes());
            keychain = sluice_oci::Keychain::with_credentials(sluice_oci::Credentials::basic(u, p));
        }
        for config in creds.docker_configs {
            inputs.update(b"config|");
            inputs.update(&config);
            let source = format!("secret '{ns}/{name}'");
            let parsed = sluice_oci::DockerConfig::parse(&config, &source)
                .map_err(|e| bad_config(source, e))?;
            keychain.push_config(parsed);
        }
    }
    if let Some(sa) = service_account {
        for config in auth::service_account_configs(&ctx.client, ns, sa).await? {
            inputs.update(b"sa-config|");
            inputs.update(&config);
            let source = format!("the image pull secrets of service account '{ns}/{sa}'");
            let parsed = sluice_oci::DockerConfig::parse(&config, &source)
                .map_err(|e| bad_config(source, e))?;
            keychain.push_config(parsed);
        }
    }
    opts.keychain = keychain;
    if let Some(name) = cert_secret_ref {
        let secret = auth::secret(&ctx.client, ns, name).await?;
        let tls = auth::tls(&secret, ns, name, false)?;
        for part in [&tls.ca_pem, &tls.cert_pem, &tls.key_pem] {
            inputs.update(b"tls|");
            inputs.update(part.as_deref().unwrap_or_default());
        }
        opts.tls = sluice_oci::TlsConfig {
            ca_pem: tls.ca_pem,
            client_cert_pem: tls.cert_pem,
            client_key_pem: tls.key_pem,
        };
    }
    Ok((opts, sluice_git::archive::hex(&inputs.finalize())))
}

/// Registry clients kept between polls, one per set of credentials, CA and
/// flags (objects that share them share a client, whatever the registry):
/// a client remembers each registry's auth challenge and tokens, so a warm
/// poll of a registry behind basic auth or a token service is still one
/// manifest `HEAD`. A blocking client holds a thread, so 150 anonymous
/// OCIRepositories share one client rather than own 150 threads.
#[derive(Default)]
pub(crate) struct OciClients {
    /// The inputs' fingerprint to the client.
    clients: Mutex<HashMap<String, Client>>,
}

/// Distinct credential sets kept; past it the cache starts over (clients
/// are cheap to make again: one auth round trip).
const MAX_CLIENTS: usize = 512;

impl OciClients {
    /// The client for these options, made when missing.
    pub fn get(&self, fingerprint: &str, opts: ClientOptions) -> Result<Client, sluice_oci::Error> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(fingerprint) {
            return Ok(c.clone());
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let client = Client::new(opts)?;
        clients.insert(fingerprint.to_string(), client.clone());
        Ok(client)
    }
}

async fn sync(
    obj: &OCIRepository,
    ctx: &Arc<Ctx>,
    old: &OCIRepositoryStatus,
) -> Result<Stored<Observed>, Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    validate(spec)?;
    let timeout = spec_timeout(spec.timeout.as_deref(), spec.timeout(), DEFAULT_TIMEOUT)?;
    let reference = sluice_oci::Reference::parse(&spec.url).map_err(|e| {
        Failure::stalled(
            URL_INVALID_REASON,
            format!("URL validation failed for '{}': {}", spec.url, e.message()),
        )
    })?;
    let (mut opts, mut fingerprint) = client_options(
        ctx,
        &ns,
        spec.secret_ref.as_ref().map(|r| r.name.as_str()),
        spec.service_account_name.as_deref(),
        spec.cert_secret_ref.as_ref().map(|r| r.name.as_str()),
        spec.is_insecure(),
        timeout,
    )
    .await?;
    if let Some(r) = &spec.proxy_secret_ref {
        let proxy = auth::proxy(&ctx.client, &ns, &r.name, "failed to get proxy address").await?;
        let mut inputs = Sha256::new();
        for part in [
            fingerprint.as_str(),
            &proxy.url,
            proxy.username.as_deref().unwrap_or_default(),
            proxy.password.as_deref().unwrap_or_default(),
        ] {
            inputs.update(format!("{}|{part}|", part.len()).as_bytes());
        }
        fingerprint = sluice_git::archive::hex(&inputs.finalize());
        opts.proxy = Some(proxy);
    }
    let wanted = spec.wanted();
    let media_type = spec.layer_media_type().map(str::to_string);
    let operation = spec.layer_operation();
    let url = spec.url.clone();
    let old_artifact = old
        .artifact
        .clone()
        .filter(|a| ctx.storage.exists(a) && !content_config_changed(spec, old));
    let storage = ctx.storage.clone();
    let ignore = spec.ignore.clone();
    let (ns2, name2) = (ns.clone(), name.clone());

    let client = ctx.oci_clients.get(&fingerprint, opts).map_err(|e| {
        oci_failure(
            AUTHENTICATION_FAILED_REASON,
            &format!("failed to generate transport for '{}'", spec.url),
            &e,
        )
    })?;
    let pulled = blocking(
        timeout,
        |m| {
            fetch_failure(
                OCI_PULL_FAILED_REASON,
                format!("failed to pull artifact from '{}': {m}", spec.url),
            )
        },
        move || -> Result<Pulled, Failure> {
            // 1. The wanted tag (a listing only for semver), then its digest
            //    with one HEAD.
            let resolve = |tag: &str| {
                client
                    .resolve(&reference, &Target::Tag(tag.to_string()))
                    .map(|d| format!("{tag}@{}", d.digest))
                    .map_err(|e| {
                        oci_failure(
                            OCI_PULL_FAILED_REASON,
                            "failed to determine artifact digest",
                            &e,
                        )
                    })
            };
            let revision = match &wanted {
                Wanted::Digest(d) => d.clone(),
                Wanted::Tag(t) => resolve(t)?,
                Wanted::Semver { constraint, filter } => {
                    let tags = client.list_tags(&reference).map_err(|e| {
                        oci_failure(
                            READ_OPERATION_FAILED_REASON,
                            &format!("failed to determine the artifact tag for '{url}'"),
                            &e,
                        )
                    })?;
                    let style = if media_type.as_deref()
                        == Some(sluice_api::source::oci::HELM_CHART_LAYER_MEDIA_TYPE)
                    {
                        sluice_semver::TagStyle::Helm
                    } else {
                        sluice_semver::TagStyle::Plain
                    };
                    let chosen =
                        sluice_semver::latest_matching(&tags, constraint, filter.as_deref(), style)
                            .map(str::to_string)
                            .map_err(|m| {
                                fetch_failure(
                                    READ_OPERATION_FAILED_REASON,
                                    format!(
                                        "failed to determine the artifact tag for '{url}': {m}"
                                    ),
                                )
                            })?;
                    resolve(&chosen)?
                }
            };
            // 2. Unchanged: keep the artifact, nothing downloaded.
            if let Some(a) = old_artifact.filter(|a| a.revision == revision) {
                return Ok(Pulled::Unchanged(a));
            }
            // 3. Manifest by digest, the layer, the artifact.
            let digest = digest_of(&revision).to_string();
            let pulled = client
                .manifest(&reference, &Target::Digest(digest.clone()))
                .map_err(|e| {
                    oci_failure(
                        OCI_PULL_FAILED_REASON,
                        &format!("failed to pull artifact from '{url}'"),
                        &e,
                    )
                })?;
            let manifest = pulled.manifest;
            let layer = select_layer(&manifest.layers, media_type.as_deref())?;
            let file = format!("{digest}.tar.gz");
            let written = match operation {
                OCILayerOperation::Copy => store(&storage, KIND, &ns2, &name2, &file, |out| {
                    client
                        .fetch_blob(&reference, &layer.digest, out, MAX_LAYER_BYTES)
                        .map(|_| ())
                        .map_err(|e| {
                            oci_failure(
                                OCI_PULL_FAILED_REASON,
                                &format!("failed to pull artifact from '{url}'"),
                                &e,
                            )
                        })
                }),
                _ => {
                    let work = tempfile::Builder::new()
                        .prefix(".oci-")
                        .tempdir_in(storage.root())
                        .map_err(|e| {
                            storage_failure(format!(
                                "failed to create temporary working directory: {e}"
                            ))
                        })?;
                    let blob_path = work.path().join("layer.tar.gz");
                    let mut blob = std::fs::File::create(&blob_path).map_err(|e| {
                        storage_failure(format!(
                            "failed to create temporary working directory: {e}"
                        ))
                    })?;
                    client
                        .fetch_blob(&reference, &layer.digest, &mut blob, MAX_LAYER_BYTES)
                        .map_err(|e| {
                            oci_failure(
                                OCI_PULL_FAILED_REASON,
                                &format!("failed to pull artifact from '{url}'"),
                                &e,
                            )
                        })?;
                    drop(blob);
                    let content = work.path().join("content");
                    std::fs::create_dir(&content).map_err(|e| {
                        storage_failure(format!(
                            "failed to create temporary working directory: {e}"
                        ))
                    })?;
                    let reader = std::fs::File::open(&blob_path)
                        .map_err(|e| storage_failure(format!("failed to read layer: {e}")))?;
                    crate::storage::unpack_tar_gz(
                        reader,
                        &content,
                        &crate::storage::UnpackLimits::default(),
                    )
                    .map_err(|e| {
                        fetch_failure(
                            OCI_LAYER_OPERATION_FAILED_REASON,
                            format!("failed to extract layer contents from artifact: {e:#}"),
                        )
                    })?;
                    store(&storage, KIND, &ns2, &name2, &file, |out| {
                        sluice_git::archive::archive_dir(&content, ignore.as_deref(), out)
                            .map(|_| ())
                            .map_err(|e| {
                                storage_failure(format!(
                                    "unable to archive artifact to storage: {e}"
                                ))
                            })
                    })
                }
            }?;
            Ok(Pulled::New {
                written,
                revision,
                annotations: manifest.annotations(),
            })
        },
    )
    .await?;

    let observed = Observed { spec: spec.clone() };
    let stored = |artifact: Artifact, event: Option<String>| Stored {
        message: format!("stored artifact for digest '{}'", artifact.revision),
        artifact,
        reason: SUCCEEDED_REASON,
        event: event.map(|m| (api::NEW_ARTIFACT_REASON, m)),
        observed: observed.clone(),
    };
    match pulled {
        Pulled::Unchanged(a) => Ok(stored(a, None)),
        Pulled::New {
            written,
            revision,
            annotations,
        } => {
            let mut message = format!(
                "stored artifact with revision '{revision}' from '{}'",
                spec.url
            );
            if let (Some(source), Some(rev)) = (
                annotations.get(sluice_oci::artifact::ANNOTATION_SOURCE),
                annotations.get(sluice_oci::artifact::ANNOTATION_REVISION),
            ) {
                message.push_str(&format!(
                    ", origin source '{source}', origin revision '{rev}'"
                ));
            }
            let artifact = new_artifact(
                ctx,
                KIND,
                &ns,
                &name,
                written,
                revision,
                (!annotations.is_empty()).then(|| annotations.into_iter().collect()),
            );
            Ok(stored(artifact, Some(message)))
        }
    }
}

/// What a pull produced.
enum Pulled {
    Unchanged(Artifact),
    New {
        written: crate::storage::Written,
        revision: String,
        annotations: std::collections::BTreeMap<String, String>,
    },
}

/// `sha256:<hex>` of a revision (`<tag>@sha256:<hex>` or the digest).
fn digest_of(revision: &str) -> &str {
    revision.rsplit('@').next().unwrap_or(revision)
}

/// The layer a selector names, or the first (Flux's `selectLayer`).
fn select_layer<'a>(
    layers: &'a [sluice_oci::Descriptor],
    media_type: Option<&str>,
) -> Result<&'a sluice_oci::Descriptor, Failure> {
    let fail = |m: String| fetch_failure(OCI_LAYER_OPERATION_FAILED_REASON, m);
    if layers.is_empty() {
        return Err(fail("no layers found in artifact".into()));
    }
    match media_type {
        Some(mt) => layers.iter().find(|l| l.media_type == mt).ok_or_else(|| {
            fail(format!(
                "failed to find layer with media type '{mt}' in artifact"
            ))
        }),
        None => Ok(&layers[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> OCIRepositorySpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m", "provider": "aws"}));
        let f = validate(&s).unwrap_err();
        assert!(
            f.stalled && f.message.contains("spec.provider 'aws'"),
            "{}",
            f.message
        );
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m",
            "verify": {"provider": "cosign"}}));
        assert!(validate(&s).unwrap_err().message.contains("spec.verify"));
    }

    #[test]
    fn a_changed_layer_selector_or_ignore_outdates_the_artifact() {
        let s = spec(serde_json::json!({"url": "oci://r/x", "interval": "1m",
            "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}}));
        let mut st = OCIRepositoryStatus {
            observed_layer_selector: s.layer_selector.clone(),
            ..Default::default()
        };
        assert!(!content_config_changed(&s, &st));
        st.observed_ignore = Some("*.md".into());
        assert!(content_config_changed(&s, &st));
        assert_eq!(digest_of("v1@sha256:ab"), "sha256:ab");
        assert_eq!(digest_of("sha256:ab"), "sha256:ab");
    }
}
