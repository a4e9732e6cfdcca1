//! HTTP downloads of Helm repositories: `index.yaml` and chart archives,
//! with the repository's basic auth and TLS, streamed to a file with a size
//! cap and a sha256 computed on the way (never held whole in memory).

use std::io::{Read, Write};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::auth::{Credentials, Tls};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// 401 or 403: the credentials were refused (or are needed).
    #[error("{0}")]
    Auth(String),
    /// Anything else: unreachable, 404, 5xx, too large, a broken body.
    #[error("{0}")]
    Failed(String),
    /// The client could not be set up (a bad CA or client certificate).
    #[error("{0}")]
    Setup(String),
}

/// A client for one repository.
pub(crate) struct HttpClient {
    client: reqwest::blocking::Client,
    basic: Option<(String, String)>,
}

/// What was downloaded.
pub(crate) struct Downloaded {
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
}

impl HttpClient {
    pub fn new(creds: &Credentials, tls: &Tls, timeout: Duration) -> Result<HttpClient, HttpError> {
        sluice_git::install_crypto_provider();
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| HttpError::Setup(format!("invalid CA certificate: {e}")))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert_pem, &tls.key_pem) {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| HttpError::Setup(format!("invalid client certificate or key: {e}")))?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Setup(format!("failed to construct HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            basic: creds.basic.clone(),
        })
    }

    /// GETs `url` into `out`, at most `max_bytes`, hashing on the way.
    /// `with_auth` is false for a chart on another host without
    /// `passCredentials` (Helm does not send the credentials there).
    pub fn download(
        &self,
        url: &str,
        with_auth: bool,
        max_bytes: u64,
        out: &mut dyn Write,
    ) -> Result<Downloaded, HttpError> {
        let mut req = self.client.get(url);
        if with_auth && let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        let shown = redact(url);
        let resp = req.send().map_err(|e| {
            HttpError::Failed(format!("failed to fetch {shown} : {}", error_chain(&e)))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(HttpError::Auth(format!(
                "failed to fetch {shown} : {status}"
            )));
        }
        if !status.is_success() {
            return Err(HttpError::Failed(format!(
                "failed to fetch {shown} : {status}"
            )));
        }
        if let Some(len) = resp.content_length()
            && len > max_bytes
        {
            return Err(HttpError::Failed(format!(
                "{shown} is {len} bytes, more than the limit of {max_bytes}"
            )));
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = resp.take(max_bytes + 1);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body
                .read(&mut buf)
                .map_err(|e| HttpError::Failed(format!("failed to read {shown}: {e}")))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > max_bytes {
                return Err(HttpError::Failed(format!(
                    "{shown} is larger than the limit of {max_bytes} bytes"
                )));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| HttpError::Failed(format!("failed to write {shown}: {e}")))?;
        }
        Ok(Downloaded {
            digest: format!("sha256:{}", sluice_git::archive::hex(&hasher.finalize())),
        })
    }
}

/// A URL without its userinfo.
pub(crate) fn redact(url: &str) -> String {
    sluice_git::fetch::redact_url(url)
}

use sluice_api::meta::error_chain;

/// Go's `units.HumanSize` (4 significant digits, decimal units), as Flux
/// words the size of an index in its event.
pub(crate) fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut i = 0;
    while value >= 1000.0 && i < UNITS.len() - 1 {
        value /= 1000.0;
        i += 1;
    }
    // `%.4g`: four significant digits, trailing zeros dropped.
    let digits = if value >= 1000.0 {
        0
    } else if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let mut s = format!("{value:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_go_units_writes_them() {
        assert_eq!(human_size(500), "500B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(12_345_678), "12.35MB");
        assert_eq!(human_size(0), "0B");
    }
}
