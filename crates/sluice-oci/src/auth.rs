//! Credentials: basic (a username and a password), and `.dockerconfigjson`
//! files (the `auths` of one or more Secrets, as a ServiceAccount's
//! imagePullSecrets), looked up by registry host. Also the
//! `WWW-Authenticate` challenge a registry answers a 401 with.
//!
//! Nothing here prints a secret: `Debug` redacts, and errors name the
//! Secret's key or the registry, never a value.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reference::DOCKER_HUB;

/// What to authenticate to one registry with.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in a Docker config),
    /// exchanged at the Bearer realm for an access token.
    IdentityToken(String),
    /// A bearer token used as is (`registrytoken` in a Docker config).
    RegistryToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `--creds user:pass` (or `user` alone, with an empty password), as
    /// the Flux CLI reads it.
    pub fn from_creds_flag(creds: &str) -> Result<Credentials> {
        if creds.is_empty() {
            return Err(Error::invalid("invalid credentials: empty"));
        }
        let (u, p) = creds.split_once(':').unwrap_or((creds, ""));
        if u.is_empty() {
            return Err(Error::invalid(
                "invalid credentials: expected <username>[:<password>]",
            ));
        }
        Ok(Credentials::basic(u, p))
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }

    /// The secret values, for scrubbing messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        match self {
            Credentials::Anonymous => vec![],
            Credentials::Basic { password, .. } if password.is_empty() => vec![],
            Credentials::Basic { username, password } => {
                let b64 = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                vec![password.clone(), b64]
            }
            Credentials::IdentityToken(t) | Credentials::RegistryToken(t) => vec![t.clone()],
        }
    }
}

/// One `auths` entry of a Docker config.
#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
}

/// A parsed `.dockerconfigjson` (or legacy `.dockercfg`): registry keys and
/// their credentials, in the file's order.
#[derive(Clone, Default)]
pub struct DockerConfig {
    entries: Vec<(String, Credentials)>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(k, _)| k))
            .finish()
    }
}

impl DockerConfig {
    /// Parses a Docker config: `{"auths": {"<registry>": {...}}}`, or the
    /// legacy form without `auths`. `source` names it in errors (like
    /// `Secret 'default/regcred' key '.dockerconfigjson'`).
    pub fn parse(data: &[u8], source: &str) -> Result<DockerConfig> {
        let value: serde_json::Value = serde_json::from_slice(data).map_err(|e| {
            Error::invalid(format!("{source}: not a valid Docker config JSON: {e}"))
        })?;
        let auths = match value.get("auths") {
            Some(a) => a.clone(),
            None => value,
        };
        let map: BTreeMap<String, AuthEntry> = serde_json::from_value(auths)
            .map_err(|e| Error::invalid(format!("{source}: invalid 'auths': {e}")))?;
        let mut entries = Vec::new();
        for (key, entry) in map {
            let creds = entry_credentials(&entry)
                .map_err(|e| e.context(format!("{source}: registry '{key}'")))?;
            entries.push((key, creds));
        }
        Ok(DockerConfig { entries })
    }

    /// A config with one registry's basic credentials.
    pub fn single(registry: &str, credentials: Credentials) -> DockerConfig {
        DockerConfig {
            entries: vec![(registry.to_string(), credentials)],
        }
    }

    /// The registry keys (no values), for diagnostics.
    pub fn registries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The credentials for `registry` (`host[:port]`), matching keys as
    /// go-containerregistry and the kubelet do: `https://host`, `host`,
    /// `http://host/v1/`, Docker Hub's aliases, and `*.domain` wildcards
    /// for one label. An exact key wins over a wildcard.
    pub fn lookup(&self, registry: &str) -> Option<&Credentials> {
        let target = canonical_host(registry);
        let exact = self
            .entries
            .iter()
            .find(|(k, _)| canonical_host(&key_host(k)) == target);
        exact
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|(k, _)| wildcard_match(&key_host(k), &target))
            })
            .map(|(_, c)| c)
    }
}

fn entry_credentials(e: &AuthEntry) -> Result<Credentials> {
    if let Some(t) = e.registry_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::RegistryToken(t.to_string()));
    }
    if let Some(t) = e.identity_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken(t.to_string()));
    }
    if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| Error::invalid("'auth' is not valid base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| Error::invalid("'auth' does not decode to text"))?;
        let Some((u, p)) = decoded.split_once(':') else {
            return Err(Error::invalid(
                "'auth' does not decode to <username>:<password>",
            ));
        };
        return Ok(Credentials::basic(u, p));
    }
    match (&e.username, &e.password) {
        (Some(u), p) if !u.is_empty() => Ok(Credentials::basic(u, p.clone().unwrap_or_default())),
        _ => Ok(Credentials::Anonymous),
    }
}

/// The host part of a config key: no scheme, no path, lowercase.
fn key_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// Docker Hub's names are one registry.
fn canonical_host(host: &str) -> String {
    let h = host.to_ascii_lowercase();
    match h.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
        _ => h,
    }
}

/// `*.example.com` matches `a.example.com` (one label), ports equal.
fn wildcard_match(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    match host.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest == suffix,
        None => false,
    }
}

/// Where credentials come from: explicit credentials for every registry,
/// or Docker configs (several Secrets merged, earlier ones first), or none.
#[derive(Clone, Debug, Default)]
pub struct Keychain {
    /// Used when no config has the registry.
    default: Credentials,
    configs: Vec<DockerConfig>,
}

impl Keychain {
    /// Anonymous everywhere.
    pub fn anonymous() -> Keychain {
        Keychain::default()
    }

    /// The same credentials for any registry (`--creds`, a basic-auth Secret).
    pub fn with_credentials(credentials: Credentials) -> Keychain {
        Keychain {
            default: credentials,
            configs: Vec::new(),
        }
    }

    /// Adds a Docker config; configs added earlier win for a registry both
    /// have (Flux: `secretRef` first, then the ServiceAccount's
    /// imagePullSecrets in order).
    pub fn push_config(&mut self, config: DockerConfig) {
        self.configs.push(config);
    }

    pub fn with_config(mut self, config: DockerConfig) -> Keychain {
        self.push_config(config);
        self
    }

    /// The credentials for `registry`.
    pub fn resolve(&self, registry: &str) -> Credentials {
        self.configs
            .iter()
            .find_map(|c| c.lookup(registry))
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }

    /// Every secret value, for scrubbing messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = self.default.secrets();
        for c in &self.configs {
            for (_, creds) in &c.entries {
                out.extend(creds.secrets());
            }
        }
        out
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm="x"` or `Bearer realm="…",service="…",scope="…"`
    /// (scheme case-insensitive, quoted or bare values).
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(params);
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            let realm = params.get("realm")?.clone();
            return Some(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            });
        }
        None
    }
}

/// `a="x, y",b=z` into a map (keys lowercased).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// The type of a Secret holding a Docker config.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The key of its Docker config.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

/// What a source's `secretRef` Secret authenticates with, as Flux reads it:
/// its `.dockerconfigjson`, or `username`/`password`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretAuth {
    /// `username`/`password` (the password may be empty).
    pub basic: Option<(String, String)>,
    /// The Docker config, as stored.
    pub docker_config: Option<Vec<u8>>,
}

impl fmt::Debug for SecretAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretAuth")
            .field(
                "basic",
                &self.basic.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("docker_config", &self.docker_config.is_some())
            .finish()
    }
}

/// Reads a `secretRef` Secret's credentials: `value` gives a key's bytes (an
/// empty value counts as absent), `secret_type` is its `type`, `subject`
/// names it in errors (`secret 'ns/name'`). A dockerconfigjson Secret
/// without its key, and a `password` without a `username`, are refused as
/// Flux refuses them.
pub fn secret_auth(
    value: &dyn Fn(&str) -> Option<Vec<u8>>,
    secret_type: Option<&str>,
    subject: &str,
) -> std::result::Result<SecretAuth, String> {
    let value = |k: &str| value(k).filter(|v| !v.is_empty());
    if let Some(config) = value(DOCKER_CONFIG_JSON_KEY) {
        return Ok(SecretAuth {
            docker_config: Some(config),
            ..SecretAuth::default()
        });
    }
    if secret_type == Some(DOCKER_CONFIG_JSON_TYPE) {
        return Err(format!(
            "{subject} of type '{DOCKER_CONFIG_JSON_TYPE}' has no '{DOCKER_CONFIG_JSON_KEY}' key"
        ));
    }
    let text = |k: &str| value(k).map(|b| String::from_utf8_lossy(&b).into_owned());
    match (text("username"), text("password")) {
        (Some(u), p) => Ok(SecretAuth {
            basic: Some((u, p.unwrap_or_default())),
            ..SecretAuth::default()
        }),
        (None, Some(_)) => Err(format!(
            "invalid auth option in {subject}: 'password' requires 'username' to be set"
        )),
        (None, None) => Ok(SecretAuth::default()),
    }
}

/// Reads a `certSecretRef` Secret's TLS material: `ca.crt`, `tls.crt`,
/// `tls.key` (and, with `legacy`, a HelmRepository `secretRef`'s deprecated
/// `caFile`, `certFile`, `keyFile`). A certificate without its key, or the
/// reverse, is an error naming `subject`.
pub fn secret_tls(
    value: &dyn Fn(&str) -> Option<Vec<u8>>,
    legacy: bool,
    subject: &str,
) -> std::result::Result<crate::TlsConfig, String> {
    let value = |k: &str| value(k).filter(|v| !v.is_empty());
    let pick = |new: &str, old: &str| value(new).or_else(|| legacy.then(|| value(old)).flatten());
    let tls = crate::TlsConfig {
        ca_pem: pick("ca.crt", "caFile"),
        client_cert_pem: pick("tls.crt", "certFile"),
        client_key_pem: pick("tls.key", "keyFile"),
    };
    if tls.client_cert_pem.is_some() != tls.client_key_pem.is_some() {
        return Err(format!(
            "invalid TLS {subject}: 'tls.crt' and 'tls.key' must be set together"
        ));
    }
    Ok(tls)
}

pub use sluice_git::proxy::{MAX_PROXY_ADDRESS, Proxy, secret_proxy};

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn docker_config_lookup_matches_hosts_like_ggcr() {
        let json = format!(
            r#"{{"auths": {{
                "https://ghcr.io": {{"auth": "{}"}},
                "registry.example.com:5000": {{"username": "u2", "password": "p2"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "*.corp.example": {{"username": "w", "password": "wp"}},
                "anon.example": {{}}
            }}}}"#,
            b64("u1:p1"),
            b64("hub:hp")
        );
        let c = DockerConfig::parse(json.as_bytes(), "test").unwrap();
        assert_eq!(c.lookup("ghcr.io"), Some(&Credentials::basic("u1", "p1")));
        assert_eq!(c.lookup("GHCR.io"), Some(&Credentials::basic("u1", "p1")));
        assert_eq!(
            c.lookup("registry.example.com:5000"),
            Some(&Credentials::basic("u2", "p2"))
        );
        assert_eq!(c.lookup("registry.example.com"), None, "ports must match");
        assert_eq!(
            c.lookup("index.docker.io"),
            Some(&Credentials::basic("hub", "hp"))
        );
        assert_eq!(
            c.lookup("docker.io"),
            Some(&Credentials::basic("hub", "hp"))
        );
        assert_eq!(
            c.lookup("a.corp.example"),
            Some(&Credentials::basic("w", "wp"))
        );
        assert_eq!(c.lookup("a.b.corp.example"), None);
        assert_eq!(c.lookup("anon.example"), Some(&Credentials::Anonymous));
        assert_eq!(c.lookup("quay.io"), None);
    }

    #[test]
    fn keychains_merge_in_order() {
        let first = DockerConfig::single("ghcr.io", Credentials::basic("a", "1"));
        let second = DockerConfig::parse(
            br#"{"auths":{"ghcr.io":{"username":"b","password":"2"},"quay.io":{"username":"c","password":"3"}}}"#,
            "second",
        )
        .unwrap();
        let k = Keychain::anonymous().with_config(first).with_config(second);
        assert_eq!(k.resolve("ghcr.io"), Credentials::basic("a", "1"));
        assert_eq!(k.resolve("quay.io"), Credentials::basic("c", "3"));
        assert_eq!(k.resolve("other.io"), Credentials::Anonymous);
        let legacy = DockerConfig::parse(br#"{"ghcr.io":{"auth":"dTpw"}}"#, "legacy").unwrap();
        assert_eq!(
            legacy.lookup("ghcr.io"),
            Some(&Credentials::basic("u", "p"))
        );
    }

    #[test]
    fn bad_configs_name_the_source_not_the_secret() {
        let e = DockerConfig::parse(b"{not json", "Secret 'ns/x'").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Secret 'ns/x': not a valid Docker config JSON")
        );
        let e = DockerConfig::parse(
            br#"{"auths":{"ghcr.io":{"auth":"c2VjcmV0LXdpdGhvdXQtY29sb24="}}}"#,
            "Secret 'ns/x'",
        )
        .unwrap_err();
        assert!(e.to_string().contains("registry 'ghcr.io'"), "{e}");
        assert!(!e.to_string().contains("secret-without-colon"), "{e}");
        let dbg = format!("{:?}", Credentials::basic("me", "hunter2"));
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn creds_flag() {
        assert_eq!(
            Credentials::from_creds_flag("u:p:x").unwrap(),
            Credentials::basic("u", "p:x")
        );
        assert_eq!(
            Credentials::from_creds_flag("u").unwrap(),
            Credentials::basic("u", "")
        );
        assert!(Credentials::from_creds_flag(":p").is_err());
    }

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse("Bearer realm=https://x/t"),
            Some(Challenge::Bearer {
                realm: "https://x/t".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn secrets_are_read_as_flux_reads_them() {
        let secret = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.as_bytes().to_vec())
            }
        };
        let s = "secret 'ns/creds'";
        let basic = secret_auth(&secret(&[("username", "u"), ("password", "p")]), None, s).unwrap();
        assert_eq!(basic.basic, Some(("u".into(), "p".into())));
        assert!(
            !format!("{basic:?}").contains("\"p\""),
            "no password in Debug"
        );
        let docker = secret_auth(
            &secret(&[(".dockerconfigjson", "{}"), ("username", "u")]),
            Some(DOCKER_CONFIG_JSON_TYPE),
            s,
        )
        .unwrap();
        assert_eq!(
            (docker.docker_config.as_deref(), docker.basic),
            (Some(&b"{}"[..]), None)
        );
        assert_eq!(
            secret_auth(&secret(&[]), Some(DOCKER_CONFIG_JSON_TYPE), s).unwrap_err(),
            "secret 'ns/creds' of type 'kubernetes.io/dockerconfigjson' has no '.dockerconfigjson' key"
        );
        assert_eq!(
            secret_auth(&secret(&[("password", "p"), ("username", "")]), None, s).unwrap_err(),
            "invalid auth option in secret 'ns/creds': 'password' requires 'username' to be set"
        );
        assert_eq!(
            secret_auth(&secret(&[]), None, s).unwrap(),
            SecretAuth::default()
        );

        let tls = secret_tls(
            &secret(&[("ca.crt", "CA"), ("certFile", "C"), ("keyFile", "K")]),
            true,
            s,
        )
        .unwrap();
        assert_eq!(
            (
                tls.ca_pem.as_deref(),
                tls.client_cert_pem.as_deref(),
                tls.client_key_pem.as_deref()
            ),
            (Some(&b"CA"[..]), Some(&b"C"[..]), Some(&b"K"[..]))
        );
        let tls = secret_tls(&secret(&[("certFile", "C"), ("keyFile", "K")]), false, s).unwrap();
        assert!(tls.client_cert_pem.is_none() && tls.client_key_pem.is_none());
        assert_eq!(
            secret_tls(&secret(&[("tls.crt", "C")]), false, s).unwrap_err(),
            "invalid TLS secret 'ns/creds': 'tls.crt' and 'tls.key' must be set together"
        );
    }
}
