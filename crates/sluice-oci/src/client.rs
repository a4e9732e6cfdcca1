//! The registry client: one blocking reqwest client per [`Client`], the
//! distribution API (`/v2/…`), the auth flow and a token cache.
//!
//! Auth: a request goes anonymously first. On a 401 the `WWW-Authenticate`
//! challenge is remembered for the registry: `Basic` sends the keychain's
//! credentials, `Bearer` gets a token from the realm (with basic auth when
//! there are credentials) for the repository's scope, cached until it
//! expires. Later requests to the registry authenticate up front, so a
//! no-change poll is one request.
//!
//! Everything blocks: run it in `spawn_blocking` (or a thread) from async
//! code. Every request is bounded by [`ClientOptions::timeout`].

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LINK, LOCATION, WWW_AUTHENTICATE,
};
use sha2::{Digest as _, Sha256};

use crate::auth::{Challenge, Credentials, Keychain};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Descriptor, Index, MANIFEST_ACCEPT, Manifest};
use crate::reference::{Reference, Target, validate_digest};

/// Flux's default `spec.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest manifest read (distribution refuses bigger ones too).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest token response or tag-list page read.
const MAX_SMALL_BODY: u64 = 16 << 20;
/// How many tags a listing may return in all, and pages it may take.
const MAX_TAGS: usize = 100_000;
const MAX_TAG_PAGES: usize = 1_000;
/// The longest a TCP/TLS connection may take to be established.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Header carrying a manifest's or blob's digest.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// TLS material from a `certSecretRef` (`ca.crt`, `tls.crt`, `tls.key`).
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// PEM bundle of CAs trusted in addition to the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate (chain) for mTLS; needs `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM private key of the client certificate.
    pub client_key_pem: Option<Vec<u8>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field(
                "client_key",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl TlsConfig {
    /// Reads a `certSecretRef` Secret's data: `ca.crt`, `tls.crt` and
    /// `tls.key` (and Flux's deprecated `caFile`, `certFile`, `keyFile`).
    /// A certificate without its key (or the reverse) is refused; `source`
    /// names the Secret in the error.
    pub fn from_secret_data(
        source: &str,
        get: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<TlsConfig> {
        let either = |a: &str, b: &str| get(a).or_else(|| get(b)).filter(|v| !v.is_empty());
        let tls = TlsConfig {
            ca_pem: either("ca.crt", "caFile"),
            client_cert_pem: either("tls.crt", "certFile"),
            client_key_pem: either("tls.key", "keyFile"),
        };
        match (&tls.client_cert_pem, &tls.client_key_pem) {
            (Some(_), None) => Err(Error::invalid(format!(
                "{source}: 'tls.crt' is set but 'tls.key' is missing"
            ))),
            (None, Some(_)) => Err(Error::invalid(format!(
                "{source}: 'tls.key' is set but 'tls.crt' is missing"
            ))),
            _ => Ok(tls),
        }
    }
}

/// How a [`Client`] talks to registries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The limit of every request, its body included.
    pub timeout: Duration,
    /// Plain HTTP (Flux's `spec.insecure`, the CLI's `--insecure-registry`).
    pub insecure: bool,
    pub tls: TlsConfig,
    pub keychain: Keychain,
    pub user_agent: String,
    /// `n` of a tags listing page (the registry may return fewer and a
    /// `Link` to the next page).
    pub tags_page_size: u32,
    /// A proxy for every request (`spec.proxySecretRef`); without one, the process's
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, as Go's default transport.
    pub proxy: Option<crate::auth::Proxy>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            insecure: false,
            tls: TlsConfig::default(),
            keychain: Keychain::anonymous(),
            user_agent: format!("sluice/{}", env!("CARGO_PKG_VERSION")),
            tags_page_size: 1000,
            proxy: None,
        }
    }
}

/// What a registry says about a manifest: its digest, media type and size.
pub type ManifestDescriptor = Descriptor;

/// A manifest as fetched: the parsed manifest, its bytes and descriptor.
#[derive(Clone, Debug)]
pub struct PulledManifest {
    /// The image manifest's descriptor (digest of `raw`).
    pub descriptor: Descriptor,
    pub manifest: Manifest,
    pub raw: Vec<u8>,
    /// When the reference named an index, the index's digest (the image
    /// manifest is then its linux/amd64 entry).
    pub index_digest: Option<String>,
}

/// Which access a request needs (the Bearer token's scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Pull,
    Push,
}

impl Scope {
    fn for_repo(self, repo: &str) -> String {
        match self {
            Scope::Pull => format!("repository:{repo}:pull"),
            Scope::Push => format!("repository:{repo}:pull,push"),
        }
    }
}

struct Token {
    value: String,
    expires: Instant,
}

#[derive(Default)]
struct State {
    /// `http` or `https` once a request to the registry succeeded.
    schemes: HashMap<String, &'static str>,
    challenges: HashMap<String, Challenge>,
    tokens: HashMap<(String, String), Token>,
}

struct Inner {
    http: reqwest::blocking::Client,
    options: ClientOptions,
    secrets: Vec<String>,
    state: Mutex<State>,
}

/// A registry client. Cheap to clone (shared connection pool, challenge and
/// token cache): keep one per set of options rather than one per request.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// What one request is: built again for a retry (a body is made anew).
struct Req<'a> {
    method: Method,
    /// Absolute URL, or a path from the registry root (`/v2/...`).
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<&'a dyn Fn() -> Result<Body>>,
}

impl Req<'_> {
    fn new(method: Method, url: String) -> Req<'static> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }
}

impl Client {
    /// Builds the HTTP client (certificates are checked here: a bad
    /// `ca.crt` or key is an `Invalid` error). Callable from async code;
    /// the operations block and must run in `spawn_blocking` there.
    pub fn new(options: ClientOptions) -> Result<Client> {
        sluice_git::install_crypto_provider();
        let timeout = options.timeout.max(Duration::from_millis(1));
        // The async builder's timeout covers each whole request, body
        // included; the blocking builder's own only bounds each read.
        let mut builder: reqwest::blocking::ClientBuilder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .user_agent(options.user_agent.clone())
            .into();
        builder = builder.timeout(timeout);
        if let Some(pem) = &options.tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::invalid(format!("invalid CA certificate (ca.crt): {e}")))?;
            if certs.is_empty() {
                return Err(Error::invalid(
                    "invalid CA certificate (ca.crt): no PEM certificate found",
                ));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&options.tls.client_cert_pem, &options.tls.client_key_pem)
        {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                Error::invalid("invalid client certificate or key (tls.crt, tls.key)")
            })?;
            builder = builder.identity(id);
        }
        if let Some(p) = &options.proxy {
            builder = p.apply(builder).map_err(Error::invalid)?;
        }
        // reqwest's blocking client refuses to be built on an async
        // runtime's thread; building it on a thread of its own makes
        // `Client::new` callable from anywhere (requests still block).
        let http = std::thread::scope(|scope| {
            scope
                .spawn(move || builder.build())
                .join()
                .map_err(|_| Error::invalid("building the HTTP client panicked"))
        })?
        .map_err(|e| Error::invalid(format!("building the HTTP client: {e}")))?;
        let proxy_password = options.proxy.as_ref().and_then(|p| p.password.clone());
        let secrets = options
            .keychain
            .secrets()
            .into_iter()
            .chain(proxy_password)
            .filter(|s| s.len() >= 3)
            .collect();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                options,
                secrets,
                state: Mutex::new(State::default()),
            }),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Lists the repository's tags, following `Link` pages.
    pub fn list_tags(&self, reference: &Reference) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = format!(
            "/v2/{}/tags/list?n={}",
            reference.repository(),
            self.inner.options.tags_page_size.max(1)
        );
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let resp = self.execute(reference, Scope::Pull, &|| {
                let mut r = Req::new(Method::GET, url.clone());
                r.headers.push(("accept", "application/json".into()));
                r
            })?;
            let shown = self.shown_url(reference, &url);
            let resp = self.check(resp, "GET", &shown)?;
            let next = next_link(resp.headers());
            let body = read_limited(resp, MAX_SMALL_BODY, &shown)?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| Error::protocol(format!("GET {shown}: invalid tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > MAX_TAGS {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!("{reference} has more than {MAX_TAGS} tags"),
                ));
            }
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(Error::protocol(format!(
            "listing the tags of {reference}: more than {MAX_TAG_PAGES} pages"
        )))
    }

    /// The descriptor of a tag's or digest's manifest: one `HEAD` (a `GET`
    /// when the registry does not send `Docker-Content-Digest`).
    pub fn resolve(&self, reference: &Reference, target: &Target) -> Result<Descriptor> {
        let path = format!("/v2/{}/manifests/{}", reference.repository(), target);
        let shown = self.shown_url(reference, &path);
        let resp = self.execute(reference, Scope::Pull, &|| {
            let mut r = Req::new(Method::HEAD, path.clone());
            r.headers.push(("accept", MANIFEST_ACCEPT.into()));
            r
        })?;
        if resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return self.manifest_raw(reference, target).map(|(d, _)| d);
        }
        let resp = self
            .check(resp, "HEAD", &shown)
            .map_err(|e| not_found_context(e, reference, target))?;
        let headers = resp.headers();
        let digest = header_str(headers, DOCKER_CONTENT_DIGEST);
        let media_type = header_str(headers, CONTENT_TYPE.as_str())
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| !c.is_empty());
        let size = header_str(headers, CONTENT_LENGTH.as_str()).and_then(|s| s.parse().ok());
        match (digest, media_type, size, target) {
            (Some(d), Some(m), Some(s), _) => {
                validate_digest(&d).map_err(|e| {
                    Error::protocol(format!("HEAD {shown}: bad Docker-Content-Digest: {e}"))
                })?;
                if let Target::Digest(want) = target
                    && *want != d
                {
                    return Err(Error::protocol(format!(
                        "HEAD {shown}: the registry answered digest {d}"
                    )));
                }
                Ok(Descriptor::new(m, d, s))
            }
            (None, Some(m), Some(s), Target::Digest(d)) => Ok(Descriptor::new(m, d.clone(), s)),
            _ => self.manifest_raw(reference, target).map(|(d, _)| d),
        }
    }

    /// GETs a manifest's bytes, checks them against a digest target, and
    /// describes them (the digest is computed from the bytes).
    pub fn manifest_raw(
        &self,
        reference: &Reference,
        target: &Target,
    ) -> Result<(Descriptor, Vec<u8>)> {
        let path = format!("/v2/{}/manifests/{}", reference.repository(), target);
        let shown = self.shown_url(reference, &path);
        let resp = self.execute(reference, Scope::Pull, &|| {
            let mut r = Req::new(Method::GET, path.clone());
            r.headers.push(("accept", MANIFEST_ACCEPT.into()));
            r
        })?;
        let resp = self
            .check(resp, "GET", &shown)
            .map_err(|e| not_found_context(e, reference, target))?;
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let raw = read_limited(resp, MAX_MANIFEST_BYTES, &shown)?;
        let digest = sha256_digest(&raw);
        if let Target::Digest(want) = target
            && *want != digest
        {
            return Err(Error::protocol(format!(
                "GET {shown}: manifest digest mismatch: expected {want}, got {digest}"
            )));
        }
        let media_type = manifest::declared_media_type(&raw, content_type.as_deref());
        Ok((Descriptor::new(media_type, digest, raw.len() as u64), raw))
    }

    /// The image manifest a tag or digest names: an OCI image manifest or a
    /// Docker v2 schema 2 manifest; for an index / manifest list, its
    /// linux/amd64 entry (as go-containerregistry's default platform).
    pub fn manifest(&self, reference: &Reference, target: &Target) -> Result<PulledManifest> {
        let (descriptor, raw) = self.manifest_raw(reference, target)?;
        if manifest::is_index(&descriptor.media_type) {
            let index: Index = serde_json::from_slice(&raw).map_err(|e| {
                Error::protocol(format!("{reference}:{target}: invalid image index: {e}"))
            })?;
            let Some(entry) = index.linux_amd64() else {
                return Err(Error::invalid(format!(
                    "{reference}:{target} is an image index without a linux/amd64 manifest"
                )));
            };
            let child = Target::Digest(entry.digest.clone());
            let (child_desc, child_raw) = self.manifest_raw(reference, &child)?;
            let mut pulled = self.parse_manifest(reference, &child, child_desc, child_raw)?;
            pulled.index_digest = Some(descriptor.digest);
            return Ok(pulled);
        }
        self.parse_manifest(reference, target, descriptor, raw)
    }

    fn parse_manifest(
        &self,
        reference: &Reference,
        target: &Target,
        descriptor: Descriptor,
        raw: Vec<u8>,
    ) -> Result<PulledManifest> {
        if !manifest::is_manifest(&descriptor.media_type) {
            return Err(Error::protocol(format!(
                "{reference}:{target}: unsupported manifest media type '{}'",
                descriptor.media_type
            )));
        }
        let manifest: Manifest = serde_json::from_slice(&raw)
            .map_err(|e| Error::protocol(format!("{reference}:{target}: invalid manifest: {e}")))?;
        Ok(PulledManifest {
            descriptor,
            manifest,
            raw,
            index_digest: None,
        })
    }

    /// Streams a blob into `writer`, at most `max_bytes`, checking its
    /// digest. Returns the size. On error `writer` may hold part of the
    /// blob: write to a temporary place and discard it on error.
    pub fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &str,
        writer: &mut dyn Write,
        max_bytes: u64,
    ) -> Result<u64> {
        validate_digest(digest)?;
        if !digest.starts_with("sha256:") {
            return Err(Error::invalid(format!(
                "blob {digest}: only sha256 digests are supported"
            )));
        }
        let path = format!("/v2/{}/blobs/{digest}", reference.repository());
        let shown = self.shown_url(reference, &path);
        let resp = self.execute(reference, Scope::Pull, &|| {
            Req::new(Method::GET, path.clone())
        })?;
        let mut resp = self.check(resp, "GET", &shown)?;
        if let Some(len) = resp.content_length()
            && len > max_bytes
        {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "blob {digest} of {reference} is {len} bytes, more than the limit of {max_bytes}"
                ),
            ));
        }
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = resp
                .read(&mut buf)
                .map_err(|e| read_error(e, &format!("GET {shown}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > max_bytes {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "blob {digest} of {reference} is more than the limit of {max_bytes} bytes"
                    ),
                ));
            }
            hasher.update(&buf[..n]);
            writer
                .write_all(&buf[..n])
                .map_err(|e| Error::io(format!("writing blob {digest}"), e))?;
        }
        let got = format!("sha256:{}", sluice_git::archive::hex(&hasher.finalize()));
        if got != digest {
            return Err(Error::protocol(format!(
                "blob {digest} of {reference}: digest mismatch, the registry sent content with digest {got}"
            )));
        }
        Ok(total)
    }

    /// A blob's bytes (small blobs: configs), at most `max_bytes`.
    pub fn fetch_blob_bytes(
        &self,
        reference: &Reference,
        digest: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.fetch_blob(reference, digest, &mut out, max_bytes)?;
        Ok(out)
    }

    /// Whether the repository has the blob (`HEAD`).
    pub fn blob_exists(&self, reference: &Reference, digest: &str, scope: Scope) -> Result<bool> {
        validate_digest(digest)?;
        let path = format!("/v2/{}/blobs/{digest}", reference.repository());
        let shown = self.shown_url(reference, &path);
        let resp = self.execute(reference, scope, &|| Req::new(Method::HEAD, path.clone()))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        self.check(resp, "HEAD", &shown).map(|_| true)
    }

    /// Uploads a blob unless the repository has it: `HEAD`, then a
    /// monolithic upload (`POST` + `PUT ?digest=`). Returns the digest.
    pub fn push_blob_bytes(&self, reference: &Reference, data: &[u8]) -> Result<String> {
        let digest = sha256_digest(data);
        let owned = data.to_vec();
        self.push_blob(reference, &digest, data.len() as u64, &|| {
            Ok(Body::from(owned.clone()))
        })?;
        Ok(digest)
    }

    /// Uploads a file as a blob (streamed) unless the repository has it.
    /// Returns its digest and size.
    pub fn push_blob_file(&self, reference: &Reference, path: &Path) -> Result<(String, u64)> {
        let digest = sluice_git::archive::digest_file(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .len();
        self.push_blob(reference, &digest, size, &|| {
            let f = std::fs::File::open(path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            Ok(Body::sized(f, size))
        })?;
        Ok((digest, size))
    }

    fn push_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        body: &dyn Fn() -> Result<Body>,
    ) -> Result<()> {
        if self.blob_exists(reference, digest, Scope::Push)? {
            return Ok(());
        }
        let start = format!("/v2/{}/blobs/uploads/", reference.repository());
        let shown = self.shown_url(reference, &start);
        let resp = self.execute(reference, Scope::Push, &|| {
            let mut r = Req::new(Method::POST, start.clone());
            r.headers.push(("content-length", "0".into()));
            r
        })?;
        let resp = self.check(resp, "POST", &shown)?;
        let Some(location) = header_str(resp.headers(), LOCATION.as_str()) else {
            return Err(Error::protocol(format!(
                "POST {shown}: the registry gave no upload Location"
            )));
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let shown_put = self.shown_url(reference, location.split('?').next().unwrap_or(""));
        let resp = self.execute(reference, Scope::Push, &|| Req {
            method: Method::PUT,
            url: put.clone(),
            headers: vec![
                ("content-type", "application/octet-stream".into()),
                ("content-length", size.to_string()),
            ],
            body: Some(body),
        })?;
        self.check(resp, "PUT", &shown_put)
            .map_err(|e| e.context(format!("uploading blob {digest} to {reference}")))?;
        Ok(())
    }

    /// Uploads a manifest under a tag (or its digest). Returns its digest.
    pub fn push_manifest(
        &self,
        reference: &Reference,
        target: &Target,
        raw: &[u8],
        media_type: &str,
    ) -> Result<String> {
        let digest = sha256_digest(raw);
        let path = format!("/v2/{}/manifests/{}", reference.repository(), target);
        let shown = self.shown_url(reference, &path);
        let owned = raw.to_vec();
        let make_body = || Ok(Body::from(owned.clone()));
        let resp = self.execute(reference, Scope::Push, &|| Req {
            method: Method::PUT,
            url: path.clone(),
            headers: vec![("content-type", media_type.to_string())],
            body: Some(&make_body),
        })?;
        let resp = self.check(resp, "PUT", &shown)?;
        if let Some(d) = header_str(resp.headers(), DOCKER_CONTENT_DIGEST)
            && d != digest
        {
            return Err(Error::protocol(format!(
                "PUT {shown}: the registry stored the manifest as {d}, expected {digest}"
            )));
        }
        Ok(digest)
    }

    // ---- the request machinery ----

    /// `scheme://registry` as the URL is shown in messages.
    fn shown_url(&self, reference: &Reference, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        format!("{}{path}", self.base(reference.registry()))
    }

    fn base(&self, registry: &str) -> String {
        let scheme = if self.inner.options.insecure {
            "http"
        } else {
            self.lock()
                .schemes
                .get(registry)
                .copied()
                .unwrap_or("https")
        };
        format!("{scheme}://{registry}")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only caches behind: go on.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends a request with the registry's auth, following one 401
    /// challenge, and (for local hosts without `insecure`) falling back to
    /// plain HTTP when the server does not speak TLS, as go-containerregistry.
    fn execute<'b>(
        &self,
        reference: &Reference,
        scope: Scope,
        make: &dyn Fn() -> Req<'b>,
    ) -> Result<Response> {
        let registry = reference.registry();
        let mut auth = self.cached_auth(reference, scope)?;
        let mut challenged = false;
        let mut fell_back = false;
        loop {
            let base = self.base(registry);
            let req = make();
            let url = if req.url.starts_with('/') {
                format!("{base}{}", req.url)
            } else {
                req.url.clone()
            };
            let mut rb: RequestBuilder = self.inner.http.request(req.method.clone(), &url);
            for (k, v) in &req.headers {
                rb = rb.header(*k, v);
            }
            if let Some(a) = &auth {
                rb = rb.header(AUTHORIZATION, a);
            }
            if let Some(body) = req.body {
                rb = rb.body(body()?);
            }
            let resp = match rb.send() {
                Ok(r) => r,
                Err(e) => {
                    if !fell_back && self.may_fall_back(registry, &e) {
                        tracing::debug!(registry, "no TLS on a local registry, trying plain HTTP");
                        self.lock().schemes.insert(registry.to_string(), "http");
                        fell_back = true;
                        continue;
                    }
                    return Err(self.send_error(&e, req.method.as_str(), &url));
                }
            };
            {
                let scheme = if url.starts_with("http://") {
                    "http"
                } else {
                    "https"
                };
                self.lock().schemes.insert(registry.to_string(), scheme);
            }
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && challenged {
                return Err(self.unauthorized(reference, req.method.as_str(), &url));
            }
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let challenge = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(Challenge::parse);
                let Some(challenge) = challenge else {
                    return Err(self.unauthorized(reference, req.method.as_str(), &url));
                };
                self.lock()
                    .challenges
                    .insert(registry.to_string(), challenge.clone());
                match self.authorize(reference, scope, &challenge)? {
                    Some(a) => {
                        auth = Some(a);
                        continue;
                    }
                    None => {
                        return Err(self.unauthorized(reference, req.method.as_str(), &url));
                    }
                }
            }
            return Ok(resp);
        }
    }

    /// The error for a request the registry still refuses after its
    /// challenge was answered (or could not be).
    fn unauthorized(&self, reference: &Reference, method: &str, url: &str) -> Error {
        let creds = self.inner.options.keychain.resolve(reference.registry());
        let why = if creds.is_anonymous() {
            "authentication required, and no credentials were given for this registry"
        } else {
            "the credentials were refused"
        };
        Error::new(
            ErrorKind::Auth,
            self.scrub(&format!("{method} {url}: 401 Unauthorized: {why}")),
        )
    }

    fn may_fall_back(&self, registry: &str, e: &reqwest::Error) -> bool {
        if self.inner.options.insecure
            || !e.is_connect()
            || self.lock().schemes.contains_key(registry)
            || !is_local_host(registry)
        {
            return false;
        }
        // A certificate problem is a TLS server with a certificate we do not
        // trust: report it, do not downgrade.
        let chain = sluice_git::fetch::error_chain(e).to_ascii_lowercase();
        !chain.contains("certificate") && !chain.contains("refused")
    }

    /// The Authorization header for a request whose registry's challenge is
    /// already known (`None` when anonymous or not yet challenged).
    fn cached_auth(&self, reference: &Reference, scope: Scope) -> Result<Option<String>> {
        let challenge = self.lock().challenges.get(reference.registry()).cloned();
        match challenge {
            None => Ok(None),
            Some(c) => self.authorize(reference, scope, &c),
        }
    }

    fn authorize(
        &self,
        reference: &Reference,
        scope: Scope,
        challenge: &Challenge,
    ) -> Result<Option<String>> {
        let creds = self.inner.options.keychain.resolve(reference.registry());
        match challenge {
            Challenge::Basic => Ok(match &creds {
                Credentials::Basic { username, password } => Some(basic_header(username, password)),
                Credentials::RegistryToken(t) => Some(format!("Bearer {t}")),
                _ => None,
            }),
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                if let Credentials::RegistryToken(t) = &creds {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let ours = scope.for_repo(reference.repository());
                let key = (reference.registry().to_string(), ours.clone());
                if let Some(t) = self.lock().tokens.get(&key)
                    && t.expires > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let mut scopes = vec![ours];
                if let Some(a) = asked.as_deref().filter(|a| !a.is_empty())
                    && !scopes.iter().any(|s| s == a)
                {
                    scopes.push(a.to_string());
                }
                let token =
                    self.fetch_token(reference, realm, service.as_deref(), &scopes, &creds)?;
                let value = format!("Bearer {}", token.value);
                self.lock().tokens.insert(key, token);
                Ok(Some(value))
            }
        }
    }

    /// Asks the realm for a token (GET with basic auth, or the OAuth2
    /// refresh-token POST for an identity token).
    fn fetch_token(
        &self,
        reference: &Reference,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: &Credentials,
    ) -> Result<Token> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let realm_url = reqwest::Url::parse(realm).map_err(|_| {
            Error::protocol(format!(
                "{}: the registry's token realm '{realm}' is not a URL",
                reference.registry()
            ))
        })?;
        let realm_shown = {
            let mut u = realm_url.clone();
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        };
        let mut get_url = realm_url.clone();
        {
            let mut q = get_url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let rb = match creds {
            Credentials::IdentityToken(refresh) => {
                let mut form: Vec<(&str, &str)> = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", "sluice"),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                let scope_joined = scopes.join(" ");
                form.push(("scope", &scope_joined));
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.inner
                    .http
                    .post(realm_url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            Credentials::Basic { username, password } => self
                .inner
                .http
                .get(get_url)
                .header(AUTHORIZATION, basic_header(username, password)),
            _ => self.inner.http.get(get_url),
        };
        let resp = rb
            .send()
            .map_err(|e| self.send_error(&e, "GET", &realm_shown))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let what = if creds.is_anonymous() {
                "anonymous access was refused"
            } else {
                "the credentials were refused"
            };
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "authenticating to {} at {realm_shown}: {status}: {what}",
                    reference.registry()
                ),
            ));
        }
        let resp = self
            .check(resp, "GET", &realm_shown)
            .map_err(|e| e.context(format!("getting a token for {}", reference.registry())))?;
        let body = read_limited(resp, MAX_SMALL_BODY, &realm_shown)?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            Error::protocol(format!(
                "GET {realm_shown}: the token response is not the expected JSON"
            ))
        })?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                Error::protocol(format!(
                    "GET {realm_shown}: the token response has no token"
                ))
            })?;
        // Tokens without an expiry live 60 s (the distribution spec's
        // default); renew a little before the registry would refuse them.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Ok(Token {
            value,
            expires: Instant::now() + lifetime - margin,
        })
    }

    /// Turns a non-2xx response into an error naming the request.
    fn check(&self, resp: Response, method: &str, shown: &str) -> Result<Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let kind = match status.as_u16() {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Network,
            _ => ErrorKind::Protocol,
        };
        let detail = if method == "HEAD" {
            None
        } else {
            read_limited(resp, 64 * 1024, shown)
                .ok()
                .and_then(|b| registry_error(&b))
        };
        let mut msg = format!("{method} {shown}: {status}");
        if let Some(d) = detail {
            msg.push_str(": ");
            msg.push_str(&d);
        }
        Err(Error::new(kind, self.scrub(&msg)))
    }

    fn send_error(&self, e: &reqwest::Error, method: &str, url: &str) -> Error {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Network
        };
        let chain = sluice_git::fetch::error_chain(e);
        let msg = if e.is_timeout() {
            format!(
                "{method} {url}: timed out after {:?}: {chain}",
                self.inner.options.timeout
            )
        } else {
            format!("{method} {url}: {chain}")
        };
        Error::new(kind, self.scrub(&msg))
    }

    /// Removes every secret value from a message.
    fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        for s in &self.inner.secrets {
            out = out.replace(s.as_str(), "<redacted>");
        }
        out
    }
}

fn not_found_context(e: Error, reference: &Reference, target: &Target) -> Error {
    if e.kind() != ErrorKind::NotFound {
        return e;
    }
    let what = match target {
        Target::Tag(t) => format!("tag '{t}'"),
        Target::Digest(d) => format!("digest '{d}'"),
    };
    Error::new(
        ErrorKind::NotFound,
        format!("{what} not found in {reference}: {}", e.message()),
    )
}

/// `errors[].code: message` from a registry's JSON error body.
fn registry_error(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            let s = match (code.is_empty(), message.is_empty()) {
                (true, true) => return None,
                (false, true) => code.to_string(),
                (true, false) => message.to_string(),
                (false, false) => format!("{code}: {message}"),
            };
            Some(s.chars().take(300).collect())
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(LINK).iter() {
        let Ok(v) = value.to_str() else { continue };
        for part in v.split(',') {
            let part = part.trim();
            let Some(end) = part.find('>') else { continue };
            let target = part.strip_prefix('<').map(|p| &p[..end - 1]);
            let is_next = part[end..]
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
            if let (Some(t), true) = (target, is_next) {
                return Some(t.to_string());
            }
        }
    }
    None
}

fn read_limited(resp: Response, max: u64, shown: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| read_error(e, shown))?;
    if out.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("{shown}: the response is larger than {max} bytes"),
        ));
    }
    Ok(out)
}

fn read_error(e: std::io::Error, what: &str) -> Error {
    let timed_out = e.kind() == std::io::ErrorKind::TimedOut
        || sluice_git::fetch::error_chain(&e)
            .to_ascii_lowercase()
            .contains("timed out");
    let kind = if timed_out {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    Error::new(kind, format!("{what}: reading the response: {e}"))
}

fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sluice_git::archive::hex(&Sha256::digest(data)))
}

/// localhost, loopback and private addresses: where go-containerregistry
/// tries plain HTTP when HTTPS fails.
fn is_local_host(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback() || v4.is_private(),
        Ok(std::net::IpAddr::V6(v6)) => v6.is_loopback(),
        Err(_) => false,
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/a/tags/list?last=b&n=2"));
        h.insert(
            LINK,
            HeaderValue::from_static(r#"<https://x/prev>; rel="prev""#),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn local_hosts() {
        assert!(is_local_host("localhost:5000"));
        assert!(is_local_host("127.0.0.1:5000"));
        assert!(is_local_host("192.168.1.2"));
        assert!(is_local_host("[::1]:5000"));
        assert!(!is_local_host("ghcr.io"));
        assert!(!is_local_host("8.8.8.8:443"));
    }

    #[test]
    fn registry_errors_are_summarised() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            registry_error(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(registry_error(b"<html>"), None);
    }

    #[test]
    fn tls_from_secret_needs_both_halves() {
        let only_cert = |k: &str| (k == "tls.crt").then(|| b"x".to_vec());
        let e = TlsConfig::from_secret_data("Secret 'ns/tls'", only_cert).unwrap_err();
        assert!(e.to_string().contains("'tls.key' is missing"), "{e}");
        let ca = |k: &str| (k == "caFile").then(|| b"pem".to_vec());
        let t = TlsConfig::from_secret_data("s", ca).unwrap();
        assert_eq!(t.ca_pem.as_deref(), Some(&b"pem"[..]));
        assert!(!format!("{t:?}").contains("pem"));
    }

    #[test]
    fn bad_ca_is_invalid() {
        let opts = ClientOptions {
            tls: TlsConfig {
                ca_pem: Some(b"not a pem".to_vec()),
                ..TlsConfig::default()
            },
            ..ClientOptions::default()
        };
        let e = Client::new(opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    }
}
