//! A real S3 server for Bucket sources: Versity's gateway (`versitygw`,
//! built from its Go module by `scripts/build-versitygw`) over a temporary
//! directory, with one access key. It checks every request's SigV4
//! signature, as MinIO or Amazon S3 do, so a request signed wrong (or not
//! at all) is refused.
//!
//! Objects are written through the S3 API (presigned `PUT`s), so they have
//! the ETags the server computes (their MD5).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::collections::BTreeMap;

use rusty_s3::actions::{CreateBucket, DeleteObject, ListObjectsV2, PutObject};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::free_port;

/// The version `scripts/build-versitygw` builds.
const VERSION: &str = "v1.8.0";
/// How long a presigned test request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(600);

/// The binary: `SLUICE_VERSITYGW`, else the one the script caches.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_VERSITYGW") {
        return Some(p.into());
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let p = cache.join(format!("sluice/versitygw-{VERSION}/versitygw"));
    p.is_file().then_some(p)
}

/// A running S3 server; stopped when dropped.
pub struct S3Server {
    child: Child,
    port: u16,
    /// The server's access key and secret.
    pub access_key: String,
    pub secret_key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// Starts a server, or returns `None` (saying so on stderr) when
    /// versitygw is not built.
    pub async fn start() -> Option<S3Server> {
        let Some(bin) = binary() else {
            eprintln!(
                "SKIPPED: versitygw is not built (scripts/build-versitygw builds it; make test does)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("root");
        let meta = dir.path().join("meta");
        std::fs::create_dir_all(&root).expect("server root");
        std::fs::create_dir_all(&meta).expect("server metadata");
        let access_key = "sluice-test-access".to_string();
        let secret_key = "sluice-test-secret-0123456789".to_string();
        let port = free_port();
        sluice_oci::install_crypto_provider();
        let child = Command::new(&bin)
            .args(["--access", &access_key, "--secret", &secret_key])
            .args(["--port", &format!("127.0.0.1:{port}")])
            .arg("posix")
            .arg("--sidecar")
            .arg(&meta)
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting versitygw");
        let server = S3Server {
            child,
            port,
            access_key,
            secret_key,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("versitygw did not listen on 127.0.0.1:{port}");
    }

    /// `host:port`, as a Bucket's `spec.endpoint` names it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn bucket(&self, name: &str) -> Bucket {
        let base = format!("http://{}", self.endpoint())
            .parse()
            .expect("server URL");
        Bucket::new(base, UrlStyle::Path, name.to_string(), "us-east-1").expect("bucket")
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(self.access_key.clone(), self.secret_key.clone())
    }

    async fn send(&self, what: &str, req: reqwest::RequestBuilder) {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            panic!("{what}: {status}: {body}");
        }
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str) {
        let bucket = self.bucket(name);
        let creds = self.credentials();
        let url = CreateBucket::new(&bucket, &creds).sign(SIGNED_FOR);
        self.send(&format!("creating bucket {name}"), self.http.put(url))
            .await;
    }

    /// Writes an object.
    pub async fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        let b = self.bucket(bucket);
        let creds = self.credentials();
        let url = PutObject::new(&b, Some(&creds), key).sign(SIGNED_FOR);
        let body: Vec<u8> = body.into();
        self.send(
            &format!("putting {bucket}/{key}"),
            self.http.put(url).body(body),
        )
        .await;
    }

    /// Deletes an object.
    pub async fn delete(&self, bucket: &str, key: &str) {
        let b = self.bucket(bucket);
        let creds = self.credentials();
        let url = DeleteObject::new(&b, Some(&creds), key).sign(SIGNED_FOR);
        self.send(&format!("deleting {bucket}/{key}"), self.http.delete(url))
            .await;
    }

    /// Every key of a bucket with its ETag (unquoted), as the server lists
    /// them (one page: tests keep buckets small).
    pub async fn etags(&self, bucket: &str) -> BTreeMap<String, String> {
        let b = self.bucket(bucket);
        let creds = self.credentials();
        let url = ListObjectsV2::new(&b, Some(&creds)).sign(SIGNED_FOR);
        let resp = self.http.get(url).send().await.expect("listing");
        assert!(resp.status().is_success(), "listing: {}", resp.status());
        let text = resp.text().await.expect("listing body");
        let page = ListObjectsV2::parse_response(&text).expect("listing document");
        assert!(page.next_continuation_token.is_none(), "one page");
        page.contents
            .into_iter()
            .map(|o| {
                let etag = o.etag.unwrap_or_default().trim_matches('"').to_string();
                (o.key, etag)
            })
            .collect()
    }
}
