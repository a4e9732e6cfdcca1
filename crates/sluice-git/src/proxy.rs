//! A proxy for a source's requests (`spec.proxySecretRef` of GitRepositories and
//! OCIRepositories), read from its Secret as Flux reads it and set on the reqwest clients of
//! both.

/// A proxy every request goes through (`spec.proxySecretRef`): its URL and, optionally,
/// the credentials it asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http://` or `https://` URL of the proxy.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Proxy {
    /// `builder` sending every request through this proxy (with its credentials, if any).
    pub fn apply(
        &self,
        builder: reqwest::blocking::ClientBuilder,
    ) -> Result<reqwest::blocking::ClientBuilder, String> {
        let mut proxy = reqwest::Proxy::all(self.url.as_str())
            .map_err(|e| format!("invalid proxy address: {e}"))?;
        if let Some(user) = &self.username {
            proxy = proxy.basic_auth(user, self.password.as_deref().unwrap_or_default());
        }
        Ok(builder.proxy(proxy))
    }
}

/// The longest proxy address read (Flux's limit, that of a Provider's `spec.address`).
pub const MAX_PROXY_ADDRESS: usize = 2048;

/// Reads a `proxySecretRef` Secret as Flux does: `address` (an `http` or `https` URL, required)
/// and optional `username` and `password`. `value` gives a key's raw bytes (empty included);
/// `subject` names the Secret in errors (`secret 'ns/name'`).
pub fn secret_proxy(
    value: &dyn Fn(&str) -> Option<Vec<u8>>,
    subject: &str,
) -> std::result::Result<Proxy, String> {
    let text = |k: &str| value(k).map(|v| String::from_utf8_lossy(&v).into_owned());
    let Some(address) = text("address") else {
        return Err(format!("{subject}: key 'address' not found"));
    };
    if address.is_empty() {
        return Err(format!("{subject}: proxy address is empty"));
    }
    if address.len() > MAX_PROXY_ADDRESS {
        return Err(format!(
            "{subject}: proxy URL exceeds maximum length of {MAX_PROXY_ADDRESS} characters"
        ));
    }
    // The address is shown without any password it carries.
    let url = reqwest::Url::parse(&address).map_err(|e| {
        format!(
            "{subject}: failed to parse proxy address '{}': {e}",
            crate::fetch::redact_url(&address)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{subject}: proxy URL must use http or https scheme, got '{}'",
            url.scheme()
        ));
    }
    let username = text("username");
    Ok(Proxy {
        url: address,
        password: username.as_ref().and(text("password")),
        username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_as_fluxs() {
        let secret = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.as_bytes().to_vec())
            }
        };
        let s = "secret 'apps/proxy'";
        let p = secret_proxy(
            &secret(&[
                ("address", "http://squid.lan:3128"),
                ("username", "u"),
                ("password", "pw"),
            ]),
            s,
        )
        .unwrap();
        assert_eq!(p.url, "http://squid.lan:3128");
        assert_eq!(
            (p.username.as_deref(), p.password.as_deref()),
            (Some("u"), Some("pw"))
        );
        assert!(!format!("{p:?}").contains("pw\""), "{p:?}");
        // A password without a username is not used, as Flux.
        let p = secret_proxy(
            &secret(&[("address", "https://p:8443"), ("password", "pw")]),
            s,
        )
        .unwrap();
        assert_eq!((p.username, p.password), (None, None));
        for (pairs, want) in [
            (&[][..], "secret 'apps/proxy': key 'address' not found"),
            (
                &[("address", "")][..],
                "secret 'apps/proxy': proxy address is empty",
            ),
            (
                &[("address", "socks5://p:1080")][..],
                "secret 'apps/proxy': proxy URL must use http or https scheme, got 'socks5'",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = pairs;
            assert_eq!(secret_proxy(&secret(pairs), s).unwrap_err(), want);
        }
        let err = secret_proxy(&secret(&[("address", "http://[::1")]), s).unwrap_err();
        assert!(
            err.starts_with("secret 'apps/proxy': failed to parse proxy address 'http://[::1': "),
            "{err}"
        );
    }
}
