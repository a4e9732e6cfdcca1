//! Bucket: the objects of an S3 (API) compatible bucket (MinIO, Garage,
//! SeaweedFS, Ceph, Amazon S3 with keys) stored as
//! `bucket/<ns>/<name>/<hex>.tar.gz`.
//!
//! A due object costs one `HEAD` of the bucket and a listing: the listed
//! keys and ETags, sorted, one `key etag` line each, digested with sha256
//! give the revision (`sha256:<hex>`), exactly as Flux's index digester
//! does, so a Bucket keeps its revision when it moves between Flux and
//! sluice. Only a new revision downloads the objects (four at a time),
//! whose ETags as downloaded make the final revision. The listing is
//! filtered by the `.sourceignore` object at the bucket's root and
//! `spec.ignore`, without the defaults a Git checkout has, and the download
//! is archived whole, as Flux does.
//!
//! What sluice does not implement is refused by name (`UnsupportedField`):
//! the `gcp` and `azure` providers, `spec.sts`, and workload identity
//! (`serviceAccountName`, or `aws` without `secretRef`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use sha2::{Digest, Sha256};
use sluice_api::meta::{
    self as flux, AUTHENTICATION_FAILED_REASON, SUCCEEDED_REASON, URL_INVALID_REASON,
};
use sluice_api::source::bucket::{
    BUCKET_KIND, BUCKET_OPERATION_FAILED_REASON, Bucket, BucketProvider, BucketSpec, BucketStatus,
};
use sluice_git::sourceignore::{IGNORE_FILE, IgnoreRules};
use sluice_runtime::Failure;

use crate::api::{self, Artifact};
use crate::auth::{self, Tls};
use crate::reconciler::{
    Ctx, SourceKind, Stored, blocking, fetch_failure, new_artifact, source_status, spec_accessors,
    spec_timeout, storage_failure, store,
};
use crate::s3::{self, S3, S3Error};

/// The kind's name.
pub const KIND: &str = BUCKET_KIND;

/// Default timeout of the bucket's operations (`spec.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most objects a Bucket's artifact holds.
pub const MAX_OBJECTS: usize = sluice_git::archive::MAX_UNPACKED_ENTRIES as usize;
/// The most bytes of all a Bucket's objects together, so a bucket cannot
/// fill the controller's disk.
pub const MAX_BYTES: u64 = sluice_git::archive::MAX_UNPACKED_BYTES;
/// The largest `.sourceignore` object read.
const MAX_IGNORE_BYTES: u64 = 1 << 20;
/// Objects downloaded at once.
const PARALLEL_DOWNLOADS: usize = 4;

source_status!(url: BucketStatus);

/// What a Bucket records beside its artifact.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    ignore: Option<String>,
}

impl SourceKind for Bucket {
    type Status = BucketStatus;
    type Observed = Observed;
    const KIND: &'static str = KIND;
    const LATEST_LINK: Option<&'static str> = Some("latest.tar.gz");

    spec_accessors!(BucketStatus);
    fn record(&self, status: &mut BucketStatus, observed: &Observed) {
        status.observed_ignore = observed.ignore.clone();
    }
    async fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: BucketStatus,
    ) -> Result<Stored<Observed>, Failure> {
        sync(&obj, &ctx, &old).await
    }
}

/// Spec checks no retry can fix: what sluice does not implement, and an
/// endpoint that is not `host[:port]`.
fn validate(spec: &BucketSpec) -> Result<(), Failure> {
    let unsupported = |m: String| Failure::stalled(flux::UNSUPPORTED_FIELD_REASON, m);
    let provider = spec.provider();
    match provider {
        BucketProvider::Gcp | BucketProvider::Azure => {
            return Err(unsupported(format!(
                "spec.provider '{}' is not supported by sluice (only 'generic' and 'aws' with spec.secretRef); \
                 Google Cloud Storage and Azure Blob Storage both offer S3-compatible access with HMAC keys",
                provider.as_str()
            )));
        }
        BucketProvider::Aws if spec.secret_ref.is_none() => {
            return Err(unsupported(
                "spec.provider 'aws' without spec.secretRef (credentials from the AWS SDK's chain or workload identity) \
                 is not supported by sluice; give the access keys in a Secret (accesskey, secretkey)"
                    .into(),
            ));
        }
        _ => {}
    }
    if spec.sts.is_some() {
        return Err(unsupported(
            "spec.sts (temporary credentials from a Security Token Service) is not supported by sluice".into(),
        ));
    }
    if spec.service_account_name.is_some() {
        return Err(unsupported(
            "spec.serviceAccountName (workload identity) is not supported by sluice".into(),
        ));
    }
    s3::check_endpoint(&spec.endpoint)
        .map_err(|m| Failure::stalled(URL_INVALID_REASON, format!("invalid spec.endpoint: {m}")))?;
    Ok(())
}

/// The revision of a listing: sha256 over `key etag\n` for each key in
/// order (Flux's `index.Digester`).
fn revision_of(index: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, etag) in index {
        hasher.update(key.as_bytes());
        hasher.update(b" ");
        hasher.update(etag.as_bytes());
        hasher.update(b"\n");
    }
    format!("sha256:{}", sluice_git::archive::hex(&hasher.finalize()))
}

/// The access keys of `secretRef`: both `accesskey` and `secretkey` must be
/// there (Flux's `ValidateSecret`); when either is empty the requests are
/// anonymous, as minio-go makes them.
fn keys_of(
    secret: &k8s_openapi::api::core::v1::Secret,
    name: &str,
) -> Result<Option<(String, String)>, Failure> {
    let data = secret.data.clone().unwrap_or_default();
    let (Some(key), Some(secret_key)) = (data.get("accesskey"), data.get("secretkey")) else {
        return Err(fetch_failure(
            AUTHENTICATION_FAILED_REASON,
            format!("invalid '{name}' secret data: required fields 'accesskey' and 'secretkey'"),
        ));
    };
    let text = |b: &[u8], field: &str| {
        String::from_utf8(b.to_vec()).map_err(|_| {
            fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!("invalid '{name}' secret data: '{field}' is not UTF-8"),
            )
        })
    };
    let (key, secret_key) = (
        text(&key.0, "accesskey")?,
        text(&secret_key.0, "secretkey")?,
    );
    Ok((!key.is_empty() && !secret_key.is_empty()).then_some((key, secret_key)))
}

async fn sync(
    obj: &Bucket,
    ctx: &Arc<Ctx>,
    old: &BucketStatus,
) -> Result<Stored<Observed>, Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    validate(spec)?;
    let timeout = spec_timeout(spec.timeout.as_deref(), spec.timeout(), DEFAULT_TIMEOUT)?;

    let mut keys = None;
    if let Some(r) = &spec.secret_ref {
        let secret = auth::secret(&ctx.client, &ns, &r.name).await?;
        keys = keys_of(&secret, &r.name)?;
    }
    let mut tls = Tls::default();
    if let Some(r) = &spec.cert_secret_ref {
        let secret = auth::secret(&ctx.client, &ns, &r.name).await.map_err(|f| {
            fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!("failed to get TLS config: {}", f.message),
            )
        })?;
        tls = auth::tls(&secret, &ns, &r.name, false).map_err(|f| {
            fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!("failed to get TLS config: {}", f.message),
            )
        })?;
    }
    let proxy = match &spec.proxy_secret_ref {
        Some(r) => Some(auth::proxy(&ctx.client, &ns, &r.name, "failed to get proxy URL").await?),
        None => None,
    };

    let spec2 = spec.clone();
    let storage = ctx.storage.clone();
    let old_artifact = old.artifact.clone().filter(|a| ctx.storage.exists(a));
    let (ns2, name2) = (ns.clone(), name.clone());
    let bucket_name = spec.bucket_name.clone();
    // As Flux's: `spec.timeout` bounds the listing, then again the downloads. Each phase stops at
    // its deadline, so a run that timed out leaves no download going on behind the next one.
    let fetched = blocking(
        timeout.saturating_mul(2),
        |m| {
            fetch_failure(
                BUCKET_OPERATION_FAILED_REASON,
                format!("fetch from bucket '{bucket_name}' failed: {m}"),
            )
        },
        move || -> Result<Fetched, Failure> {
            let spec = &spec2;
            let bucket = spec.bucket_name.as_str();
            let s3 = S3::new(&s3::Config {
                endpoint: &spec.endpoint,
                insecure: spec.is_insecure(),
                bucket,
                region: spec.region(),
                keys,
                tls: &tls,
                proxy: proxy.as_ref(),
                timeout,
            })
            .map_err(|m| fetch_failure(AUTHENTICATION_FAILED_REASON, m))?;
            let failed = |m: String| fetch_failure(BUCKET_OPERATION_FAILED_REASON, m);
            let deadline = Deadline::after(timeout);
            let index = list(&s3, spec, bucket, &deadline).map_err(failed)?;
            let revision = revision_of(&index);
            if let Some(a) = old_artifact.filter(|a| a.revision == revision) {
                return Ok(Fetched::Unchanged(a));
            }
            let work = tempfile::Builder::new()
                .prefix(".bucket-")
                .tempdir_in(storage.root())
                .map_err(|e| {
                    storage_failure(format!("failed to create temporary working directory: {e}"))
                })?;
            let deadline = Deadline::after(timeout);
            let index = download(&s3, bucket, index, work.path(), &deadline).map_err(failed)?;
            let revision = revision_of(&index);
            let file = format!("{}.tar.gz", revision.trim_start_matches("sha256:"));
            let written = store(&storage, KIND, &ns2, &name2, &file, |out| {
                sluice_git::archive::archive_all(work.path(), out)
                    .map(|_| ())
                    .map_err(|e| {
                        storage_failure(format!("unable to archive artifact to storage: {e}"))
                    })
            })?;
            Ok(Fetched::New {
                written,
                revision,
                files: index.len(),
            })
        },
    )
    .await?;

    let observed = Observed {
        ignore: spec.ignore.clone(),
    };
    let stored = |artifact: Artifact, event: Option<String>| Stored {
        message: format!("stored artifact: revision '{}'", artifact.revision),
        artifact,
        reason: SUCCEEDED_REASON,
        event: event.map(|m| (api::NEW_ARTIFACT_REASON, m)),
        observed: observed.clone(),
    };
    match fetched {
        Fetched::Unchanged(a) => Ok(stored(a, None)),
        Fetched::New {
            written,
            revision,
            files,
        } => {
            let message = format!(
                "stored artifact with {files} fetched files from '{}' bucket",
                spec.bucket_name
            );
            let artifact = new_artifact(ctx, KIND, &ns, &name, written, revision, None);
            Ok(stored(artifact, Some(message)))
        }
    }
}

/// What a run produced.
enum Fetched {
    Unchanged(Artifact),
    New {
        written: crate::storage::Written,
        revision: String,
        files: usize,
    },
}

/// When a phase of a run (the listing, the downloads) must have ended: `spec.timeout` after it
/// began.
struct Deadline {
    at: std::time::Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Self {
        Deadline {
            at: std::time::Instant::now() + timeout,
            timeout,
        }
    }

    /// An error once the deadline has passed.
    fn check(&self) -> Result<(), String> {
        if std::time::Instant::now() < self.at {
            return Ok(());
        }
        Err(format!(
            "timed out after {} (spec.timeout)",
            sluice_api::meta::format_duration(self.timeout)
        ))
    }
}

/// The bucket's keys and ETags under `spec.prefix`, less the ignored ones
/// (Flux's `fetchEtagIndex`).
fn list(
    s3: &S3,
    spec: &BucketSpec,
    bucket: &str,
    deadline: &Deadline,
) -> Result<BTreeMap<String, String>, String> {
    match s3.bucket_exists() {
        Ok(true) => {}
        Ok(false) => return Err(format!("bucket '{bucket}' not found")),
        Err(e) => {
            return Err(format!(
                "failed to confirm existence of '{bucket}' bucket: {e}"
            ));
        }
    }
    let mut rules = IgnoreRules::none();
    let mut ignore_file = Vec::new();
    match s3.get(IGNORE_FILE, MAX_IGNORE_BYTES, &mut ignore_file) {
        Ok(_) => rules.push_lines("", &String::from_utf8_lossy(&ignore_file)),
        Err(S3Error::NotFound(_)) => {}
        Err(e) => {
            return Err(format!(
                "failed to get Etag for '{IGNORE_FILE}' object: {e}"
            ));
        }
    }
    if let Some(extra) = &spec.ignore {
        rules.push_lines("", extra);
    }
    let mut index = BTreeMap::new();
    s3.list(spec.prefix(), |key, etag| {
        if key.ends_with('/') || key == IGNORE_FILE || rules.is_key_ignored(key) {
            return Ok(());
        }
        deadline.check().map_err(S3Error::Failed)?;
        if index.len() >= MAX_OBJECTS {
            return Err(S3Error::Failed(format!(
                "more than {MAX_OBJECTS} objects, the most a Bucket's artifact holds"
            )));
        }
        index.insert(key.to_string(), etag.to_string());
        Ok(())
    })
    .map_err(|e| {
        format!("indexation of objects from bucket '{bucket}' failed: listing objects from bucket '{bucket}' failed: {e}")
    })?;
    Ok(index)
}

/// Downloads every object of `index` under `dir`, four at a time, within
/// [`MAX_BYTES`] together (Flux's `fetchIndexFiles`): an object gone since
/// the listing leaves the index, one changed since records its new ETag.
fn download(
    s3: &S3,
    bucket: &str,
    index: BTreeMap<String, String>,
    dir: &std::path::Path,
    deadline: &Deadline,
) -> Result<BTreeMap<String, String>, String> {
    let keys: Vec<String> = index.keys().cloned().collect();
    let next = Mutex::new(keys.iter());
    let budget = AtomicU64::new(MAX_BYTES);
    let outcomes: Mutex<Vec<(String, Option<String>)>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let lock = |m: &Mutex<Option<String>>| m.lock().map(|g| g.is_some()).unwrap_or(true);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_DOWNLOADS.min(keys.len()) {
            scope.spawn(|| {
                loop {
                    if lock(&first_error) {
                        return;
                    }
                    let key = match next.lock() {
                        Ok(mut it) => it.next().cloned(),
                        Err(_) => None,
                    };
                    let Some(key) = key else { return };
                    if let Err(e) = deadline.check() {
                        if let Ok(mut first) = first_error.lock() {
                            first.get_or_insert(e);
                        }
                        return;
                    }
                    match fetch_one(s3, &key, dir, &budget) {
                        Ok(etag) => {
                            if let Ok(mut o) = outcomes.lock() {
                                o.push((key, etag));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut first) = first_error.lock() {
                                first.get_or_insert(format!("failed to get '{key}' object: {e}"));
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    let first_error = first_error.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = first_error {
        return Err(format!("fetch from bucket '{bucket}' failed: {e}"));
    }
    let mut index = index;
    for (key, etag) in outcomes.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match etag {
            None => {
                tracing::info!(bucket, key = %key, "indexed object disappeared from the bucket");
                index.remove(&key);
            }
            Some(etag) if !etag.is_empty() => {
                index.insert(key, etag);
            }
            Some(_) => {}
        }
    }
    Ok(index)
}

/// Downloads one object to its place under `dir` (a key's `..` never
/// climbs out of it); `None` when it is gone.
fn fetch_one(
    s3: &S3,
    key: &str,
    dir: &std::path::Path,
    budget: &AtomicU64,
) -> Result<Option<String>, String> {
    let path = crate::git_repository::clamped_join(dir, key);
    if path == dir {
        return Err("the key names no file".into());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("failed to create directory: {e}"))?;
    }
    let mut file =
        std::fs::File::create(&path).map_err(|e| format!("failed to create file: {e}"))?;
    let left = budget.load(Ordering::Relaxed);
    match s3.get(key, left, &mut file) {
        Ok((etag, size)) => {
            // Another download may have taken from the budget meanwhile.
            let taken = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(size)
            });
            if taken.is_err() {
                return Err(format!(
                    "the bucket's objects are more than {MAX_BYTES} bytes together, the most a Bucket's artifact holds"
                ));
            }
            Ok(Some(etag))
        }
        Err(S3Error::NotFound(_)) => {
            drop(file);
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::conclude;
    use sluice_runtime::History;

    fn spec(v: serde_json::Value) -> BucketSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_stored_artifact_sets_the_status_url_to_its_latest_link_and_a_failure_keeps_it() {
        let bucket = Bucket::new("fleet", BucketSpec::new("fleet", "minio:9000", "5m"));
        let artifact: Artifact = serde_json::from_value(serde_json::json!({
            "path": "bucket/ns/fleet/sha256:ab.tar.gz",
            "url": "http://source.flux-system.svc/bucket/ns/fleet/sha256:ab.tar.gz",
            "revision": "sha256:ab", "digest": "sha256:cd",
            "lastUpdateTime": "2026-12-08T00:00:00Z",
        }))
        .unwrap();
        let ok = Stored {
            artifact,
            reason: SUCCEEDED_REASON,
            message: "stored artifact: revision 'sha256:ab'".into(),
            event: None,
            observed: Observed { ignore: None },
        };
        let run = |old: &BucketStatus, result: &Result<Stored<Observed>, Failure>| {
            let policy =
                crate::reconciler::policy(Duration::from_secs(60), Bucket::CLEARED_ON_SUCCESS);
            conclude(
                &bucket,
                old,
                result,
                &policy,
                History {
                    consecutive_failures: 0,
                },
            )
            .0
        };
        let stored = run(&BucketStatus::default(), &Ok(ok));
        let url = "http://source.flux-system.svc/bucket/ns/fleet/latest.tar.gz";
        assert_eq!(stored.url.as_deref(), Some(url));
        let failed = run(&stored, &Err(Failure::new("BucketOperationFailed", "down")));
        assert_eq!(failed.url.as_deref(), Some(url));
    }

    #[test]
    fn a_phase_stops_at_its_deadline() {
        assert_eq!(Deadline::after(Duration::from_secs(60)).check(), Ok(()));
        let passed = Deadline::after(Duration::ZERO);
        assert_eq!(
            passed.check(),
            Err("timed out after 0s (spec.timeout)".into())
        );
    }

    #[test]
    fn the_revision_is_flux_s_index_digest() {
        let mut index = BTreeMap::new();
        index.insert("b.yaml".to_string(), "etag-b".to_string());
        index.insert("a.yaml".to_string(), "etag-a".to_string());
        let mut expected = Sha256::new();
        expected.update(b"a.yaml etag-a\nb.yaml etag-b\n");
        assert_eq!(
            revision_of(&index),
            format!("sha256:{}", sluice_git::archive::hex(&expected.finalize()))
        );
        // An empty bucket has the digest of nothing, as Flux's.
        assert_eq!(
            revision_of(&BTreeMap::new()),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let base =
            serde_json::json!({"bucketName": "b", "endpoint": "minio:9000", "interval": "1m"});
        assert!(validate(&spec(base.clone())).is_ok());
        let with = |k: &str, v: serde_json::Value| {
            let mut s = base.clone();
            s[k] = v;
            validate(&spec(s)).unwrap_err()
        };
        let f = with("provider", "gcp".into());
        assert!(
            f.stalled && f.message.contains("spec.provider 'gcp'"),
            "{}",
            f.message
        );
        let f = with("provider", "aws".into());
        assert!(
            f.message.contains("without spec.secretRef"),
            "{}",
            f.message
        );
        let f = with(
            "sts",
            serde_json::json!({"provider": "ldap", "endpoint": "https://sts"}),
        );
        assert!(f.message.contains("spec.sts"), "{}", f.message);
        let f = with("serviceAccountName", "sa".into());
        assert!(
            f.message.contains("spec.serviceAccountName"),
            "{}",
            f.message
        );
        let f = with("endpoint", "https://minio:9000".into());
        assert_eq!(f.reason, URL_INVALID_REASON);
        assert!(f.message.contains("has a scheme"), "{}", f.message);
    }

    #[test]
    fn secret_keys_are_both_needed() {
        use k8s_openapi::ByteString;
        let secret = |pairs: &[(&str, &str)]| k8s_openapi::api::core::v1::Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        let f = keys_of(&secret(&[("accesskey", "a")]), "s3").unwrap_err();
        assert_eq!(
            f.message,
            "invalid 's3' secret data: required fields 'accesskey' and 'secretkey'"
        );
        assert_eq!(
            keys_of(&secret(&[("accesskey", "a"), ("secretkey", "b")]), "s3").unwrap(),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(
            keys_of(&secret(&[("accesskey", ""), ("secretkey", "b")]), "s3").unwrap(),
            None
        );
    }
}
