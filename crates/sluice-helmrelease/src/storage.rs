//! Helm's release storage on Kubernetes Secrets (Helm's `secrets` driver, the one Helm and
//! Flux's helm-controller use by default), so that `helm list`, `helm history`, `helm rollback`
//! and a return to Flux see exactly what sluice wrote.
//!
//! A revision is a Secret `sh.helm.release.v1.<name>.v<version>` of type `helm.sh/release.v1`
//! in the storage namespace, labelled `name`, `owner=helm`, `status`, `version` and `createdAt`
//! (or `modifiedAt` once updated), holding the record under `release`
//! ([`sluice_helm::release`] writes it byte for byte as Helm does).
//!
//! Beyond Helm: a record that the API server would refuse for its size (a Secret holds at most
//! 1 MiB) is refused here before anything is written, with the size, instead of failing half
//! way through an install.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use sluice_helm::release::{
    DATA_KEY, OWNER, Release, ReleaseError, SECRET_TYPE, Status, storage_key,
};

/// The most data a Secret may hold (the API server's limit on the sum of `data`).
pub const MAX_SECRET_DATA: usize = 1024 * 1024;

/// Why the storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The API server failed or refused.
    #[error("{action} {key}: {}", sluice_apply::error_chain(source))]
    Kube {
        action: &'static str,
        key: String,
        #[source]
        source: kube::Error,
    },
    /// A revision with this number exists already.
    #[error("release {0}: already exists")]
    Exists(String),
    /// The record could not be written or read.
    #[error("release {key}: {source}")]
    Record {
        key: String,
        #[source]
        source: ReleaseError,
    },
    /// The record would not fit in a Secret.
    #[error(
        "release {key} would be stored in a Secret holding {size} bytes ({mib:.2} MiB), over \
         the API server's limit of {MAX_SECRET_DATA} bytes (1 MiB): the chart and its values \
         are too large to be recorded (Helm would fail the same way, after applying)"
    )]
    TooLarge { key: String, size: usize, mib: f64 },
}

/// The release records of one storage namespace.
#[derive(Clone)]
pub struct Storage {
    secrets: Api<Secret>,
}

impl Storage {
    /// The storage in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Storage {
            secrets: Api::namespaced(client, namespace),
        }
    }

    /// Every stored revision of `name`, oldest first (Helm's `History`). Records that cannot be
    /// read are errors: a release half understood must not be acted on.
    pub async fn history(&self, name: &str) -> Result<Vec<Release>, StorageError> {
        let mut out = self
            .records(name)
            .await?
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    /// The revisions of `name` with their status, oldest first, for deciding which records to
    /// touch: read from the labels Helm's Secrets driver puts on every record (`version`,
    /// `status`) with a metadata-only list, so no record is transferred or decoded (Helm decodes
    /// every one: kube-prometheus-stack's are 8 MB of JSON each). When a record lacks those
    /// labels (written by something else), every record is decoded instead, as Helm does.
    pub async fn entries(&self, name: &str) -> Result<Vec<Entry>, StorageError> {
        if let Some(entries) = self.labelled(name).await? {
            return Ok(entries);
        }
        Ok(self
            .history(name)
            .await?
            .iter()
            .map(|r| Entry {
                version: r.version,
                status: r.status(),
            })
            .collect())
    }

    /// The entries of `name` as the records' labels give them (a metadata-only list), `None`
    /// when a record's labels are missing or not Helm's.
    async fn labelled(&self, name: &str) -> Result<Option<Vec<Entry>>, StorageError> {
        let list = self
            .secrets
            .list_metadata(&records_of(name))
            .await
            .map_err(listing(name))?;
        Ok(entries_of(
            list.items.iter().map(|m| m.metadata.labels.as_ref()),
        ))
    }

    /// The Secrets holding the records of `name`.
    async fn records(&self, name: &str) -> Result<Vec<Secret>, StorageError> {
        let list = self
            .secrets
            .list(&records_of(name))
            .await
            .map_err(listing(name))?;
        Ok(list.items)
    }

    /// The newest revision of `name` (Helm's `Last`), if any.
    ///
    /// The records' labels say which is the newest, and only that record is transferred and
    /// decoded. Helm lists and decodes them all: with kube-prometheus-stack's 8 MB records
    /// (about 1 MB in their Secrets) and a history of ten, every reconcile would hold some
    /// 13 MB of Secrets and read 80 MB of JSON to use one. Records without Helm's labels, or a
    /// newest one gone or not what its label says, make every record be read, as Helm does.
    pub async fn last(&self, name: &str) -> Result<Option<Release>, StorageError> {
        if let Some(entries) = self.labelled(name).await? {
            let Some(newest) = entries.last() else {
                return Ok(None);
            };
            if let Some(release) = self.get(name, newest.version).await?
                && release.version == newest.version
            {
                return Ok(Some(release));
            }
        }
        Ok(self.history(name).await?.pop())
    }

    /// Revision `version` of `name`, if stored.
    pub async fn get(&self, name: &str, version: i64) -> Result<Option<Release>, StorageError> {
        let key = storage_key(name, version);
        match self.secrets.get_opt(&key).await {
            Ok(Some(secret)) => Ok(Some(read(&secret)?)),
            Ok(None) => Ok(None),
            Err(source) => Err(StorageError::Kube {
                action: "reading",
                key,
                source,
            }),
        }
    }

    /// Stores a new revision (Helm's `Create`), after removing the oldest revisions beyond
    /// `max_history` (0: keep all) as Helm does: never the deployed one.
    pub async fn create(
        &self,
        release: &Release,
        max_history: i64,
        now_unix: i64,
    ) -> Result<(), StorageError> {
        let secret = secret_of(release, Some(now_unix), None)?;
        if max_history > 0 {
            self.remove_least_recent(&release.name, max_history - 1)
                .await?;
        }
        let key = storage_key(&release.name, release.version);
        match self.secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(StorageError::Exists(key)),
            Err(source) => Err(StorageError::Kube {
                action: "creating",
                key,
                source,
            }),
        }
    }

    /// Rewrites a stored revision (Helm's `Update`: `modifiedAt` replaces `createdAt`).
    pub async fn update(&self, release: &Release, now_unix: i64) -> Result<(), StorageError> {
        let secret = secret_of(release, None, Some(now_unix))?;
        let key = storage_key(&release.name, release.version);
        self.secrets
            .replace(&key, &PostParams::default(), &secret)
            .await
            .map(drop)
            .map_err(|source| StorageError::Kube {
                action: "updating",
                key,
                source,
            })
    }

    /// Deletes a stored revision (absent is fine).
    pub async fn delete(&self, name: &str, version: i64) -> Result<(), StorageError> {
        let key = storage_key(name, version);
        match self.secrets.delete(&key, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(StorageError::Kube {
                action: "deleting",
                key,
                source,
            }),
        }
    }

    /// Helm's `removeLeastRecent`: oldest first, down to `keep` revisions, sparing the newest
    /// deployed one.
    async fn remove_least_recent(&self, name: &str, keep: i64) -> Result<(), StorageError> {
        let history = self.entries(name).await?;
        let keep = usize::try_from(keep).unwrap_or(0);
        if history.len() <= keep {
            return Ok(());
        }
        let deployed = history
            .iter()
            .rev()
            .find(|r| r.status == Status::Deployed)
            .map(|r| r.version);
        let mut doomed = Vec::new();
        for r in &history {
            if history.len() - doomed.len() == keep {
                break;
            }
            if Some(r.version) != deployed {
                doomed.push(r.version);
            }
        }
        for version in doomed {
            self.delete(name, version).await?;
        }
        Ok(())
    }
}

/// The list of the records of release `name`.
fn records_of(name: &str) -> ListParams {
    ListParams::default().labels(&format!("owner={OWNER},name={name}"))
}

/// The error of listing the records of release `name`.
fn listing(name: &str) -> impl FnOnce(kube::Error) -> StorageError + '_ {
    move |source| StorageError::Kube {
        action: "listing the records of release",
        key: name.into(),
        source,
    }
}

/// A stored revision as its record's labels describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub version: i64,
    pub status: Status,
}

/// The entries the records' labels describe, oldest first; `None` when a record's `version`
/// or `status` label is missing or not Helm's.
fn entries_of<'a>(
    labels: impl Iterator<Item = Option<&'a std::collections::BTreeMap<String, String>>>,
) -> Option<Vec<Entry>> {
    let mut out = labels
        .map(|l| {
            let l = l?;
            Some(Entry {
                version: l.get("version")?.parse().ok()?,
                status: Status::parse(l.get("status")?)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    out.sort_by_key(|e| e.version);
    Some(out)
}

fn read(secret: &Secret) -> Result<Release, StorageError> {
    let key = secret.metadata.name.clone().unwrap_or_default();
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .ok_or_else(|| StorageError::Record {
            key: key.clone(),
            source: ReleaseError::Decode(format!("the Secret has no {DATA_KEY:?} key")),
        })?;
    let mut release =
        Release::decode(&data.0).map_err(|source| StorageError::Record { key, source })?;
    // The driver keeps the Secret's own labels (other than its bookkeeping) with the release.
    if let Some(labels) = &secret.metadata.labels {
        for (k, v) in labels {
            if !matches!(
                k.as_str(),
                "name" | "owner" | "status" | "version" | "createdAt" | "modifiedAt"
            ) {
                release.labels.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(release)
}

/// The Secret a record is stored in, refused when it would exceed the API server's limit.
pub fn secret_of(
    release: &Release,
    created_at: Option<i64>,
    modified_at: Option<i64>,
) -> Result<Secret, StorageError> {
    let key = storage_key(&release.name, release.version);
    let data = release.encode().map_err(|source| StorageError::Record {
        key: key.clone(),
        source,
    })?;
    if data.len() > MAX_SECRET_DATA {
        return Err(StorageError::TooLarge {
            key,
            size: data.len(),
            mib: data.len() as f64 / (1024.0 * 1024.0),
        });
    }
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(key),
            labels: Some(release.storage_labels(created_at, modified_at)),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some([(DATA_KEY.to_string(), ByteString(data.into_bytes()))].into()),
        ..Secret::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn entries_come_from_the_labels_oldest_first() {
        let v3 = labels(&[("version", "3"), ("status", "deployed")]);
        let v1 = labels(&[("version", "1"), ("status", "superseded")]);
        let v2 = labels(&[("version", "2"), ("status", "failed")]);
        let got = entries_of([Some(&v3), Some(&v1), Some(&v2)].into_iter()).unwrap();
        let want = [
            (1, Status::Superseded),
            (2, Status::Failed),
            (3, Status::Deployed),
        ]
        .map(|(version, status)| Entry { version, status });
        assert_eq!(got, want);
        assert_eq!(entries_of(std::iter::empty()), Some(vec![]));
    }

    #[test]
    fn a_record_without_helms_labels_asks_for_decoding() {
        let good = labels(&[("version", "1"), ("status", "deployed")]);
        for bad in [
            labels(&[("status", "deployed")]),
            labels(&[("version", "two"), ("status", "deployed")]),
            labels(&[("version", "2")]),
            labels(&[("version", "2"), ("status", "half-done")]),
        ] {
            assert_eq!(
                entries_of([Some(&good), Some(&bad)].into_iter()),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(entries_of([Some(&good), None].into_iter()), None);
    }
}
