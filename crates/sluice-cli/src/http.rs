//! The CLI's HTTP client: rustls with ring, the system's roots plus any CA
//! given, a timeout, and sluice's user agent. One builder for the hosted Git
//! APIs (`bootstrap gitea|github|gitlab`) and the chart downloads of
//! `build cluster`.

use std::time::Duration;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A client trusting `ca_pem` (a PEM bundle) besides the system's roots.
/// The error says what is wrong with the bundle or the TLS set-up.
pub(crate) fn client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    sluice_git::install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| e.to_string())
}
