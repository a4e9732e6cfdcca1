//! Authenticating as a GitHub App installation, as Flux's `auth/githubapp` does: for a
//! GitRepository with `spec.provider: github` and for the GitHub notification Providers whose
//! Secret holds an app instead of a token.
//!
//! The Secret's keys are Flux's: `githubAppID`, `githubAppInstallationID` or
//! `githubAppInstallationOwner` (one of the two), `githubAppPrivateKey` (PEM, PKCS#1 or
//! PKCS#8) and optionally `githubAppBaseURL` (GitHub Enterprise's API, used as given). A JWT
//! signed with the app's key (RS256, issued 30 s in the past, valid 2 minutes) asks for an
//! installation token; an owner is looked up as an organization, then as a user. Tokens are
//! kept in the process and reused until a fifth of their lifetime is left.
//!
//! No maintained crate does this with the process's crypto (ring, as rustls and kube use), and
//! a JWT of three claims does not need a JWT library.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use ring::signature::RsaKeyPair;
use serde_json::Value;

/// The Secret keys.
pub const KEY_APP_ID: &str = "githubAppID";
pub const KEY_INSTALLATION_OWNER: &str = "githubAppInstallationOwner";
pub const KEY_INSTALLATION_ID: &str = "githubAppInstallationID";
pub const KEY_PRIVATE_KEY: &str = "githubAppPrivateKey";
pub const KEY_BASE_URL: &str = "githubAppBaseURL";
/// The Git user name an installation token authenticates as.
pub const ACCESS_TOKEN_USERNAME: &str = "x-access-token";

const GITHUB_API: &str = "https://api.github.com/";

/// An app's data from a Secret.
#[derive(Clone)]
pub struct App {
    app_id: i64,
    installation_owner: String,
    installation_id: i64,
    key: std::sync::Arc<RsaKeyPair>,
    key_digest: String,
    /// The API's base URL, ending in `/`.
    api: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("app_id", &self.app_id)
            .field("installation_owner", &self.installation_owner)
            .field("installation_id", &self.installation_id)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// Whether a Secret's data holds an app (its `githubAppID` key).
pub fn has_app_data(data: &BTreeMap<String, Vec<u8>>) -> bool {
    data.contains_key(KEY_APP_ID)
}

/// An installation token.
#[derive(Clone, Debug)]
pub struct AppToken {
    pub token: String,
    /// The app's slug, when asked for (its comments are by `<slug>[bot]`).
    pub slug: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds at which it was issued to us.
    obtained_at: i64,
}

impl App {
    /// The app of a Secret's data, checked as Flux checks it (its error texts).
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<App, String> {
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        // Flux parses the numbers leniently: what does not parse is 0, then refused below.
        let number = |k: &str| text(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let app_id = number(KEY_APP_ID);
        let installation_owner = text(KEY_INSTALLATION_OWNER).unwrap_or_default();
        let installation_id = number(KEY_INSTALLATION_ID);
        if app_id == 0 {
            return Err("app ID must be provided to use github app authentication".into());
        }
        if installation_owner.is_empty() && installation_id == 0 {
            return Err(
                "app installation owner or ID must be provided to use github app \
                        authentication"
                    .into(),
            );
        }
        if !installation_owner.is_empty() && installation_id != 0 {
            return Err(
                "only one of app installation owner or ID must be provided to use \
                        github app authentication"
                    .into(),
            );
        }
        let pem = data
            .get(KEY_PRIVATE_KEY)
            .filter(|k| !k.is_empty())
            .ok_or("private key must be provided to use github app authentication".to_string())?;
        let key = parse_key(pem).map_err(|e| format!("could not parse private key: {e}"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, pem);
        let api = match text(KEY_BASE_URL).filter(|s| !s.is_empty()) {
            Some(mut u) => {
                if !u.ends_with('/') {
                    u.push('/');
                }
                url::Url::parse(&u).map_err(|e| format!("invalid API URL: {e}"))?;
                u
            }
            None => GITHUB_API.to_string(),
        };
        Ok(App {
            app_id,
            installation_owner,
            installation_id,
            key: std::sync::Arc::new(key),
            key_digest: base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
            api,
        })
    }

    /// The JWT that authenticates as the app at `now` (Unix seconds).
    pub fn jwt(&self, now: i64) -> Result<String, String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let iat = now - 30;
        let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = b64.encode(format!(
            r#"{{"iss":"{}","exp":{},"iat":{iat}}}"#,
            self.app_id,
            iat + 120
        ));
        let signed = format!("{header}.{claims}");
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "could not sign the app's JWT".to_string())?;
        Ok(format!("{signed}.{}", b64.encode(sig)))
    }

    fn cache_key(&self, slug: bool) -> String {
        format!(
            "{}/{}/{}/{}/{}/{slug}",
            self.api, self.app_id, self.installation_id, self.installation_owner, self.key_digest
        )
    }

    /// An installation token (and with `slug`, the app's slug), from the cache while it has
    /// more than a fifth of its lifetime left, else from the API with `client`.
    pub async fn token(&self, client: &reqwest::Client, slug: bool) -> Result<AppToken, String> {
        let now = jiff::Timestamp::now().as_second();
        let key = self.cache_key(slug);
        if let Some(t) = cache().lock().ok().and_then(|c| c.get(&key).cloned())
            && (t.expires_at - now) * 5 > t.expires_at - t.obtained_at
        {
            return Ok(t);
        }
        let t = self.fetch(client, slug, now).await?;
        if let Ok(mut c) = cache().lock() {
            c.retain(|_, v| v.expires_at > now);
            c.insert(key, t.clone());
        }
        Ok(t)
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        slug: bool,
        now: i64,
    ) -> Result<AppToken, String> {
        let jwt = self.jwt(now)?;
        let call = |method: reqwest::Method, path: String| {
            let req = client
                .request(method.clone(), format!("{}{path}", self.api))
                .bearer_auth(&jwt)
                .header("Accept", "application/vnd.github.v3+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            send(method, req)
        };
        let slug = if slug {
            let app = call(reqwest::Method::GET, "app".into())
                .await
                .map_err(|e| format!("failed to get app information: {e}"))?;
            app.get("slug").and_then(Value::as_str).map(str::to_string)
        } else {
            None
        };
        let id = if self.installation_id != 0 {
            self.installation_id
        } else {
            let owner = &self.installation_owner;
            let org = call(reqwest::Method::GET, format!("orgs/{owner}/installation")).await;
            match org {
                Ok(v) => installation_id(&v)?,
                Err(org_err) => {
                    let user =
                        call(reqwest::Method::GET, format!("users/{owner}/installation")).await;
                    match user {
                        Ok(v) => installation_id(&v)?,
                        Err(user_err) => {
                            return Err(format!(
                                "failed to find organization installation: {org_err}\n\
                                 failed to find user installation: {user_err}"
                            ));
                        }
                    }
                }
            }
        };
        let v = call(
            reqwest::Method::POST,
            format!("app/installations/{id}/access_tokens"),
        )
        .await?;
        let token = v
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or("the installation token answer has no token")?
            .to_string();
        let expires_at = v
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_second())
            .ok_or("the installation token answer has no expires_at")?;
        Ok(AppToken {
            token,
            slug,
            expires_at,
            obtained_at: now,
        })
    }
}

fn installation_id(v: &Value) -> Result<i64, String> {
    v.get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| "the installation answer has no id".to_string())
}

/// Sends `req`; the JSON of a 2xx answer, else an error with the status and GitHub's message
/// (go-github's wording: `METHOD URL: STATUS MESSAGE`).
async fn send(method: reqwest::Method, req: reqwest::RequestBuilder) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| {
        format!(
            "request failed: {}",
            sluice_api::meta::error_chain(&e.without_url())
        )
    })?;
    let status = resp.status();
    let url = resp.url().clone();
    let body = resp.bytes().await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = v.get("message").and_then(Value::as_str).unwrap_or_default();
        return Err(format!(
            "{method} {}: {} {message}",
            url.as_str().split('?').next().unwrap_or_default(),
            status.as_u16()
        ));
    }
    Ok(v)
}

fn cache() -> &'static Mutex<BTreeMap<String, AppToken>> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, AppToken>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// An RSA key from PEM: `RSA PRIVATE KEY` (PKCS#1, as GitHub hands them out) or `PRIVATE KEY`
/// (PKCS#8).
fn parse_key(pem: &[u8]) -> Result<RsaKeyPair, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not PEM text".to_string())?;
    for (label, pkcs8) in [("RSA PRIVATE KEY", false), ("PRIVATE KEY", true)] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = text.find(&begin) else {
            continue;
        };
        let body = &text[start + begin.len()..];
        let Some(stop) = body.find(&end) else {
            return Err(format!("no {end:?} line"));
        };
        let b64: String = body[..stop].split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("invalid base64 in the PEM block: {e}"))?;
        let key = if pkcs8 {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            RsaKeyPair::from_der(&der)
        };
        return key.map_err(|e| format!("not an RSA private key this can sign with: {e}"));
    }
    Err("invalid key: key must be a PEM encoded PKCS1 or PKCS8 key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2048-bit test key (PKCS#1), made for these tests only.
    pub(crate) const TEST_KEY: &str = include_str!("../tests/data/github-app-test-key.pem");

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_secret_is_checked_as_flux_checks_it() {
        let err = |pairs: &[(&str, &str)]| App::from_secret(&data(pairs)).unwrap_err();
        assert_eq!(
            err(&[]),
            "app ID must be provided to use github app authentication"
        );
        assert_eq!(
            err(&[(KEY_APP_ID, "12")]),
            "app installation owner or ID must be provided to use github app authentication"
        );
        assert_eq!(
            err(&[
                (KEY_APP_ID, "12"),
                (KEY_INSTALLATION_ID, "34"),
                (KEY_INSTALLATION_OWNER, "home")
            ]),
            "only one of app installation owner or ID must be provided to use github app authentication"
        );
        assert_eq!(
            err(&[(KEY_APP_ID, "12"), (KEY_INSTALLATION_ID, "34")]),
            "private key must be provided to use github app authentication"
        );
        assert!(
            err(&[
                (KEY_APP_ID, "12"),
                (KEY_INSTALLATION_ID, "34"),
                (KEY_PRIVATE_KEY, "not a key")
            ])
            .starts_with("could not parse private key: invalid key")
        );
        let app = App::from_secret(&data(&[
            (KEY_APP_ID, "12"),
            (KEY_INSTALLATION_ID, "34"),
            (KEY_PRIVATE_KEY, TEST_KEY),
            (KEY_BASE_URL, "https://ghe.corp.lan/api/v3"),
        ]))
        .unwrap();
        assert_eq!(app.api, "https://ghe.corp.lan/api/v3/");
        assert!(!format!("{app:?}").contains("PRIVATE"));
    }

    #[test]
    fn the_jwt_is_rs256_over_three_claims() {
        let app = App::from_secret(&data(&[
            (KEY_APP_ID, "12"),
            (KEY_INSTALLATION_OWNER, "home"),
            (KEY_PRIVATE_KEY, TEST_KEY),
        ]))
        .unwrap();
        let jwt = app.jwt(1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert_eq!(
            b64.decode(parts[0]).unwrap(),
            br#"{"alg":"RS256","typ":"JWT"}"#
        );
        assert_eq!(
            String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap(),
            r#"{"iss":"12","exp":1800000090,"iat":1799999970}"#
        );
        // Verified with the key's public half.
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            app.key.public().as_ref(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(signed.as_bytes(), &b64.decode(parts[2]).unwrap())
            .unwrap();
    }
}
