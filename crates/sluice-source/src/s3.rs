//! A blocking S3 client for Bucket sources: `HEAD` of the bucket, a
//! paginated `ListObjectsV2`, and `GET` of each object streamed to a file,
//! with SigV4 query signing from static keys (or anonymous), TLS material
//! and a proxy.
//!
//! Signing and the listing's XML are rusty-s3's (a sans-IO S3 crate); the
//! requests go through reqwest like every other HTTP fetch of the source
//! controller. The addressing follows minio-go's automatic lookup, which
//! Flux's Bucket uses: virtual-host style for Amazon S3, Google Cloud
//! Storage and Alibaba OSS endpoints, path style for everything else
//! (MinIO, Garage, SeaweedFS, Ceph RGW).

use std::io::{Read, Write};
use std::time::Duration;

use rusty_s3::actions::{GetObject, HeadBucket, ListObjectsV2};
use rusty_s3::{Credentials, S3Action, UrlStyle};

use crate::auth::Tls;

/// How long a signed request URL stays valid: it is used at once.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// The region requests are signed for when neither `spec.region` nor the
/// endpoint names one (what MinIO and most S3 servers expect).
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// The most bytes read of an error response.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// The most bytes read of one listing page (1,000 keys of up to 1 KiB
/// each, with their metadata, fit with room to spare).
const MAX_LIST_PAGE: u64 = 16 << 20;

/// Why an S3 request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum S3Error {
    /// 401 or 403: the keys were refused, or are needed.
    #[error("{0}")]
    Auth(String),
    /// The object does not exist (`NoSuchKey`, or a 404).
    #[error("{0}")]
    NotFound(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// What a Bucket connects with.
pub(crate) struct Config<'a> {
    /// `spec.endpoint`: `host[:port]`, no scheme.
    pub endpoint: &'a str,
    /// `spec.insecure`: plain HTTP.
    pub insecure: bool,
    pub bucket: &'a str,
    /// `spec.region`, if set.
    pub region: Option<&'a str>,
    /// `accesskey` and `secretkey`; `None` for anonymous requests.
    pub keys: Option<(String, String)>,
    pub tls: &'a Tls,
    pub proxy: Option<&'a sluice_oci::auth::Proxy>,
    pub timeout: Duration,
}

/// A client for one bucket.
pub(crate) struct S3 {
    http: reqwest::blocking::Client,
    bucket: rusty_s3::Bucket,
    credentials: Option<Credentials>,
}

/// An endpoint that is not `host[:port]`, with why.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.is_empty() {
        return Err("the endpoint is empty".into());
    }
    if endpoint.contains("://") {
        return Err(format!(
            "endpoint '{endpoint}' has a scheme: write the host and port only (spec.insecure selects plain HTTP)"
        ));
    }
    if endpoint.contains('/') || endpoint.contains('?') || endpoint.contains('#') {
        return Err(format!(
            "endpoint '{endpoint}' has a path: write the host and port only"
        ));
    }
    let url = url::Url::parse(&format!("http://{endpoint}/"))
        .map_err(|e| format!("endpoint '{endpoint}' is not a host and port: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
        return Err(format!("endpoint '{endpoint}' is not a host and port"));
    }
    Ok(())
}

/// The region an Amazon S3 endpoint names (`s3.eu-west-1.amazonaws.com`,
/// `s3-eu-west-1.amazonaws.com`, `s3.dualstack.eu-west-1.amazonaws.com`),
/// as minio-go reads it.
pub(crate) fn region_of_endpoint(endpoint: &str) -> Option<&str> {
    let host = endpoint.split(':').next()?;
    let rest = host.strip_suffix(".amazonaws.com")?;
    let rest = rest
        .strip_prefix("s3.dualstack.")
        .or_else(|| rest.strip_prefix("s3-fips."))
        .or_else(|| rest.strip_prefix("s3."))
        .or_else(|| rest.strip_prefix("s3-"))?;
    (!rest.is_empty() && !rest.contains('.')).then_some(rest)
}

/// Virtual-host style for the providers that need it (minio-go's
/// `BucketLookupAuto`), path style otherwise. A bucket name with a dot
/// cannot be a host label under TLS, so it stays path style.
fn url_style(endpoint: &str, bucket: &str) -> UrlStyle {
    let host = endpoint.split(':').next().unwrap_or_default();
    let virtual_host = host == "s3.amazonaws.com"
        || (host.starts_with("s3") && host.ends_with(".amazonaws.com"))
        || host == "storage.googleapis.com"
        || host.ends_with(".aliyuncs.com");
    if virtual_host && !bucket.contains('.') {
        UrlStyle::VirtualHost
    } else {
        UrlStyle::Path
    }
}

impl S3 {
    pub fn new(config: &Config<'_>) -> Result<S3, String> {
        check_endpoint(config.endpoint)?;
        let scheme = if config.insecure { "http" } else { "https" };
        let base = url::Url::parse(&format!("{scheme}://{}", config.endpoint))
            .map_err(|e| format!("invalid endpoint '{}': {e}", config.endpoint))?;
        let region = config
            .region
            .or_else(|| region_of_endpoint(config.endpoint))
            .unwrap_or(DEFAULT_REGION)
            .to_string();
        let bucket = rusty_s3::Bucket::new(
            base,
            url_style(config.endpoint, config.bucket),
            config.bucket.to_string(),
            region,
        )
        .map_err(|e| format!("invalid bucket '{}': {e}", config.bucket))?;

        sluice_git::install_crypto_provider();
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if !config.insecure {
            if let Some(pem) = &config.tls.ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| format!("invalid CA certificate: {e}"))?;
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
            }
            if let (Some(cert), Some(key)) = (&config.tls.cert_pem, &config.tls.key_pem) {
                let mut pem = cert.clone();
                pem.push(b'\n');
                pem.extend_from_slice(key);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| format!("invalid client certificate or key: {e}"))?;
                builder = builder.identity(identity);
            }
        }
        if let Some(p) = config.proxy {
            let mut proxy = reqwest::Proxy::all(p.url.as_str())
                .map_err(|e| format!("invalid proxy address: {e}"))?;
            if let Some(user) = &p.username {
                proxy = proxy.basic_auth(user, p.password.as_deref().unwrap_or_default());
            }
            builder = builder.proxy(proxy);
        }
        let http = builder
            .build()
            .map_err(|e| format!("failed to construct HTTP client: {e}"))?;
        Ok(S3 {
            http,
            bucket,
            credentials: config
                .keys
                .as_ref()
                .map(|(key, secret)| Credentials::new(key.clone(), secret.clone())),
        })
    }

    /// The region requests are signed for.
    #[cfg(test)]
    fn region(&self) -> &str {
        self.bucket.region()
    }

    /// Whether the bucket exists (`HEAD`: 404 is false).
    pub fn bucket_exists(&self) -> Result<bool, S3Error> {
        let url = HeadBucket::new(&self.bucket, self.credentials.as_ref()).sign(SIGNED_FOR);
        let resp = self.http.head(url).send().map_err(transport)?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            // A HEAD has no body to say why.
            401 | 403 => Err(S3Error::Auth(format!("{}: Access Denied", resp.status()))),
            _ => Err(S3Error::Failed(format!("{}", resp.status()))),
        }
    }

    /// Calls `visit(key, etag)` for every object under `prefix`, following
    /// the listing's continuation tokens. ETags are given without their
    /// quotes, as minio-go gives them.
    pub fn list(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&str, &str) -> Result<(), S3Error>,
    ) -> Result<(), S3Error> {
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.credentials.as_ref());
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(SIGNED_FOR);
            let resp = self.http.get(url).send().map_err(transport)?;
            let resp = ok_or_error(resp)?;
            let mut body = String::new();
            resp.take(MAX_LIST_PAGE)
                .read_to_string(&mut body)
                .map_err(|e| S3Error::Failed(format!("reading the listing: {e}")))?;
            let page = ListObjectsV2::parse_response(&body)
                .map_err(|e| S3Error::Failed(format!("invalid listing response: {e}")))?;
            for object in &page.contents {
                let etag = object.etag.as_deref().unwrap_or_default();
                visit(&object.key, etag.trim_matches('"'))?;
            }
            match page.next_continuation_token {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                Some(_) => {
                    return Err(S3Error::Failed(
                        "the listing repeated its continuation token".into(),
                    ));
                }
                None => return Ok(()),
            }
        }
    }

    /// Downloads `key` into `out`, at most `max_bytes`; returns its ETag
    /// (unquoted) and size.
    pub fn get(
        &self,
        key: &str,
        max_bytes: u64,
        out: &mut dyn Write,
    ) -> Result<(String, u64), S3Error> {
        let url = GetObject::new(&self.bucket, self.credentials.as_ref(), key).sign(SIGNED_FOR);
        let resp = self.http.get(url).send().map_err(transport)?;
        let resp = ok_or_error(resp)?;
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        if let Some(len) = resp.content_length()
            && len > max_bytes
        {
            return Err(S3Error::Failed(format!(
                "the object is {len} bytes, more than the {max_bytes} left of the Bucket's limit"
            )));
        }
        let mut body = resp.take(max_bytes + 1);
        let size = std::io::copy(&mut body, out)
            .map_err(|e| S3Error::Failed(format!("reading the object: {e}")))?;
        if size > max_bytes {
            return Err(S3Error::Failed(format!(
                "the object is larger than the {max_bytes} bytes left of the Bucket's limit"
            )));
        }
        Ok((etag, size))
    }
}

/// A request that got no response. The signed URL is left out of the
/// message: its query holds the access key's ID and a signature.
fn transport(e: reqwest::Error) -> S3Error {
    S3Error::Failed(sluice_api::meta::error_chain(&e.without_url()))
}

/// A successful response, or the error S3 described in its body
/// (`<Code>` and `<Message>`).
fn ok_or_error(resp: reqwest::blocking::Response) -> Result<reqwest::blocking::Response, S3Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let mut body = String::new();
    // The body only explains the status; a broken one leaves the status.
    let _ = resp.take(MAX_ERROR_BODY).read_to_string(&mut body);
    let code = xml_text(&body, "Code");
    let message = xml_text(&body, "Message");
    let described = match (&code, &message) {
        (Some(c), Some(m)) => format!("{status}: {c}: {m}"),
        (Some(c), None) => format!("{status}: {c}"),
        _ => status.to_string(),
    };
    if code.as_deref() == Some("NoSuchKey") || status == reqwest::StatusCode::NOT_FOUND {
        return Err(S3Error::NotFound(described));
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(S3Error::Auth(described));
    }
    Err(S3Error::Failed(described))
}

/// The text of the first `<tag>` of an S3 error document (`<Error><Code>…`),
/// unescaped; errors are flat, so this is all of them that is read.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&format!("</{tag}>"))?;
    let text = body[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text.chars().take(512).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_and_port() {
        assert!(check_endpoint("minio.minio.svc:9000").is_ok());
        assert!(check_endpoint("s3.amazonaws.com").is_ok());
        assert!(check_endpoint("10.0.0.5:9000").is_ok());
        let e = check_endpoint("https://minio:9000").unwrap_err();
        assert!(e.contains("has a scheme"), "{e}");
        let e = check_endpoint("minio:9000/bucket").unwrap_err();
        assert!(e.contains("has a path"), "{e}");
        assert!(check_endpoint("").is_err());
        assert!(check_endpoint("user@minio:9000").is_err());
    }

    #[test]
    fn amazon_endpoints_name_their_region() {
        assert_eq!(
            region_of_endpoint("s3.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_endpoint("s3-us-west-2.amazonaws.com"),
            Some("us-west-2")
        );
        assert_eq!(
            region_of_endpoint("s3.dualstack.ap-south-1.amazonaws.com"),
            Some("ap-south-1")
        );
        assert_eq!(region_of_endpoint("s3.amazonaws.com"), None);
        assert_eq!(region_of_endpoint("minio:9000"), None);
    }

    #[test]
    fn addressing_follows_minio_go() {
        let virtual_host = |e: &str, b: &str| matches!(url_style(e, b), UrlStyle::VirtualHost);
        assert!(virtual_host("s3.amazonaws.com", "podinfo"));
        assert!(virtual_host("s3.eu-west-1.amazonaws.com", "podinfo"));
        assert!(!virtual_host("s3.amazonaws.com", "my.bucket"));
        assert!(!virtual_host("minio.minio.svc:9000", "podinfo"));
    }

    /// The presigned URL of AWS's documentation for query-string SigV4
    /// ("Authenticating Requests: Using Query Parameters"): the keys, time
    /// and object of the example give its published signature.
    #[test]
    fn presigned_urls_match_aws_s_published_example() {
        let tls = Tls::default();
        let s3 = S3::new(&Config {
            endpoint: "s3.amazonaws.com",
            insecure: false,
            bucket: "examplebucket",
            region: None,
            keys: Some((
                "AKIAIOSFODNN7EXAMPLE".into(),
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            )),
            tls: &tls,
            proxy: None,
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        assert_eq!(s3.region(), "us-east-1");
        let time: jiff::Timestamp = "2013-05-24T00:00:00Z".parse().unwrap();
        let url = GetObject::new(&s3.bucket, s3.credentials.as_ref(), "test.txt")
            .sign_with_time(Duration::from_secs(86400), &time);
        assert_eq!(url.host_str(), Some("examplebucket.s3.amazonaws.com"));
        let signature = url
            .query_pairs()
            .find(|(k, _)| k == "X-Amz-Signature")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            signature.as_deref(),
            Some("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        );
    }

    #[test]
    fn error_documents_are_read() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_text(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_text(body, "Message").as_deref(),
            Some("The specified bucket does not exist")
        );
        assert_eq!(xml_text("<Error/>", "Code"), None);
    }
}
