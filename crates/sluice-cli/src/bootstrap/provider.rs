//! The REST calls `sluice bootstrap gitea|github|gitlab` makes: look up or
//! create the repository, and keep one deploy key on it.
//!
//! Gitea's API follows GitHub's closely (the same paths, fields and key
//! objects), so the two share every call and differ only in the base URL and
//! the authorization header; GitLab names things differently (projects,
//! `can_push`) and is mapped onto the same [`Repository`] and [`DeployKey`].

use anyhow::Result;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::UserError;

/// A Git hosting service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gitea,
    GitHub,
    GitLab,
}

impl Kind {
    /// The provider's name as users write it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gitea => "Gitea",
            Kind::GitHub => "GitHub",
            Kind::GitLab => "GitLab",
        }
    }

    /// The environment variable the token is read from (as flux reads it).
    pub fn token_env(self) -> &'static str {
        match self {
            Kind::Gitea => "GITEA_TOKEN",
            Kind::GitHub => "GITHUB_TOKEN",
            Kind::GitLab => "GITLAB_TOKEN",
        }
    }

    /// The public service's host name.
    pub fn default_hostname(self) -> &'static str {
        match self {
            Kind::Gitea => "gitea.com",
            Kind::GitHub => "github.com",
            Kind::GitLab => "gitlab.com",
        }
    }

    /// The API's base URL on `hostname` (`host[:port]`).
    pub fn api_base(self, hostname: &str) -> String {
        match self {
            Kind::Gitea => format!("https://{hostname}/api/v1"),
            Kind::GitHub if hostname == "github.com" => "https://api.github.com".to_string(),
            // GitHub Enterprise Server.
            Kind::GitHub => format!("https://{hostname}/api/v3"),
            Kind::GitLab => format!("https://{hostname}/api/v4"),
        }
    }

    /// The user name that goes with the token for Git over HTTPS.
    fn git_user(self, login: &str) -> String {
        match self {
            Kind::GitLab => "oauth2".to_string(),
            _ => login.to_string(),
        }
    }
}

/// A repository as the bootstrap needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// GitLab's project id (deploy keys are addressed by it); the
    /// `owner/name` path elsewhere.
    id: String,
    /// The HTTPS clone URL.
    pub http_url: String,
    /// The SSH clone URL, as the server gives it (`ssh://` or scp-like).
    pub ssh_url: String,
}

/// A deploy key on a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployKey {
    id: String,
    pub title: String,
    /// `TYPE BASE64` (a comment, if the server keeps one, is dropped).
    pub key: String,
    pub read_only: bool,
}

/// What [`Client::ensure_deploy_key`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyChange {
    Unchanged,
    Added,
    Replaced,
}

/// How a repository is created when it does not exist.
pub struct NewRepository<'a> {
    pub personal: bool,
    pub private: bool,
    pub branch: &'a str,
    pub description: &'a str,
}

/// An authenticated API client for one server.
pub struct Client {
    kind: Kind,
    base: String,
    token: String,
    http: reqwest::Client,
}

/// The most pages of a listing followed.
const MAX_PAGES: usize = 100;

/// The `rel="next"` URL of a `Link` header (RFC 8288), as GitHub, GitLab
/// and Gitea paginate.
fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then_some(target)
    })
}

/// Whether `url` is on the server of `base` (scheme, host and port): the
/// token is never sent elsewhere.
fn same_origin(url: &str, base: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split('/').next()?;
        Some((scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
    };
    origin(url).is_some() && origin(url) == origin(base)
}

/// `TYPE BASE64` of an authorized_keys line.
pub fn key_material(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Percent-encodes a path segment (GitLab addresses `group/project` as one).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn str_field(v: &Value, field: &str) -> String {
    match &v[field] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl Client {
    /// A client for `hostname`, trusting `ca_pem` besides the system's roots.
    pub fn new(kind: Kind, hostname: &str, token: String, ca_pem: Option<&[u8]>) -> Result<Self> {
        let http =
            crate::http::client(ca_pem).map_err(|e| UserError::new(format!("--ca-file: {e}")))?;
        Ok(Client {
            kind,
            base: kind.api_base(hostname),
            token,
            http,
        })
    }

    /// One API call; `Ok(None)` for 404, an error naming the call otherwise.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        Ok(self.call_url(method, &url, body).await?.map(|(v, _)| v))
    }

    /// One API call to `url`: the answer and the next page's URL (the
    /// `Link` header's `rel="next"`, which GitHub, GitLab and Gitea send),
    /// `Ok(None)` for 404.
    async fn call_url(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Option<(Value, Option<String>)>> {
        let mut req = self.http.request(method.clone(), url);
        req = match self.kind {
            Kind::Gitea => req.header("Authorization", format!("token {}", self.token)),
            Kind::GitHub => req
                .header("Authorization", format!("Bearer {}", self.token))
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            Kind::GitLab => req.header("PRIVATE-TOKEN", &self.token),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let what = format!("{} {method} {url}", self.kind.name());
        let resp = req.send().await.map_err(|e| {
            UserError::new(format!("{what}: {}", e.without_url()))
                .hint("check --hostname, and --ca-file for a server with its own CA")
        })?;
        let status = resp.status();
        let next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| match &v["message"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .unwrap_or_else(|| text.chars().take(200).collect());
            let err = UserError::new(format!("{what}: {status}: {message}"));
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => err.hint(format!(
                    "check that {} holds a token with access to repositories and deploy keys",
                    self.kind.token_env()
                )),
                _ => err,
            }
            .into());
        }
        if text.trim().is_empty() {
            return Ok(Some((Value::Null, next)));
        }
        let v = serde_json::from_str(&text)
            .map_err(|e| UserError::new(format!("{what}: the answer is not JSON: {e}")))?;
        Ok(Some((v, next)))
    }

    async fn must(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        match self.call(method.clone(), path, body).await? {
            Some(v) => Ok(v),
            None => Err(UserError::new(format!(
                "{} {method} {}{path}: 404 Not Found",
                self.kind.name(),
                self.base
            ))
            .into()),
        }
    }

    /// The user name Git over HTTPS authenticates as, with the token as its
    /// password.
    pub async fn git_user(&self) -> Result<String> {
        let me = self.must(Method::GET, "/user", None).await?;
        let login = match self.kind {
            Kind::GitLab => str_field(&me, "username"),
            _ => str_field(&me, "login"),
        };
        Ok(self.kind.git_user(&login))
    }

    fn repository_of(&self, v: &Value, owner: &str, name: &str) -> Repository {
        match self.kind {
            Kind::GitLab => Repository {
                id: str_field(v, "id"),
                http_url: str_field(v, "http_url_to_repo"),
                ssh_url: str_field(v, "ssh_url_to_repo"),
            },
            _ => Repository {
                id: format!("{}/{}", segment(owner), segment(name)),
                http_url: str_field(v, "clone_url"),
                ssh_url: str_field(v, "ssh_url"),
            },
        }
    }

    /// `owner/name`, if it exists (and the token may see it).
    pub async fn repository(&self, owner: &str, name: &str) -> Result<Option<Repository>> {
        let path = match self.kind {
            Kind::GitLab => format!("/projects/{}", segment(&format!("{owner}/{name}"))),
            _ => format!("/repos/{}/{}", segment(owner), segment(name)),
        };
        Ok(self
            .call(Method::GET, &path, None)
            .await?
            .map(|v| self.repository_of(&v, owner, name)))
    }

    /// Creates `owner/name` with one commit on `branch`, so it can be cloned.
    pub async fn create_repository(
        &self,
        owner: &str,
        name: &str,
        new: &NewRepository<'_>,
    ) -> Result<Repository> {
        let v = match self.kind {
            Kind::GitLab => {
                let mut body = json!({
                    "name": name,
                    "path": name,
                    "visibility": if new.private { "private" } else { "public" },
                    "initialize_with_readme": true,
                    "default_branch": new.branch,
                    "description": new.description,
                });
                if !new.personal {
                    let group = self
                        .call(Method::GET, &format!("/groups/{}", segment(owner)), None)
                        .await?
                        .ok_or_else(|| {
                            UserError::new(format!("GitLab group {owner:?} not found"))
                                .hint("pass --personal for a repository of your own user")
                        })?;
                    body["namespace_id"] = group["id"].clone();
                }
                self.must(Method::POST, "/projects", Some(body)).await?
            }
            _ => {
                let mut body = json!({
                    "name": name,
                    "private": new.private,
                    "auto_init": true,
                    "description": new.description,
                });
                if self.kind == Kind::Gitea {
                    body["default_branch"] = json!(new.branch);
                }
                let path = if new.personal {
                    "/user/repos".to_string()
                } else {
                    format!("/orgs/{}/repos", segment(owner))
                };
                self.call(Method::POST, &path, Some(body))
                    .await?
                    .ok_or_else(|| {
                        UserError::new(format!(
                            "{} organization {owner:?} not found",
                            self.kind.name()
                        ))
                        .hint("pass --personal for a repository of your own user")
                    })?
            }
        };
        Ok(self.repository_of(&v, owner, name))
    }

    fn keys_path(&self, repo: &Repository) -> String {
        match self.kind {
            Kind::GitLab => format!("/projects/{}/deploy_keys", repo.id),
            _ => format!("/repos/{}/keys", repo.id),
        }
    }

    /// The repository's deploy keys, every page of them (GitHub lists 30 a
    /// page unless asked for more, Gitea and GitLab 20 or 50): the `Link`
    /// header's next page is followed while it stays on the API's server.
    pub async fn deploy_keys(&self, repo: &Repository) -> Result<Vec<DeployKey>> {
        let first = match self.kind {
            Kind::Gitea => "?limit=50",
            _ => "?per_page=100",
        };
        let mut url = format!("{}{}{first}", self.base, self.keys_path(repo));
        let mut keys = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some((list, next)) = self.call_url(Method::GET, &url, None).await? else {
                return Err(UserError::new(format!(
                    "{} GET {url}: 404 Not Found",
                    self.kind.name()
                ))
                .into());
            };
            keys.extend(list.as_array().into_iter().flatten().map(|k| DeployKey {
                id: str_field(k, "id"),
                title: str_field(k, "title"),
                key: key_material(&str_field(k, "key")),
                read_only: match self.kind {
                    Kind::GitLab => k["can_push"] != Value::Bool(true),
                    _ => k["read_only"] != Value::Bool(false),
                },
            }));
            match next {
                Some(n) if same_origin(&n, &self.base) => url = n,
                _ => break,
            }
        }
        Ok(keys)
    }

    /// Makes `title` the deploy key `public` (an authorized_keys line) with
    /// the given access: kept when it already is, replaced when it differs.
    pub async fn ensure_deploy_key(
        &self,
        repo: &Repository,
        title: &str,
        public: &str,
        read_only: bool,
    ) -> Result<KeyChange> {
        let material = key_material(public);
        let mut change = KeyChange::Added;
        for k in self.deploy_keys(repo).await? {
            if k.title != title {
                continue;
            }
            if k.key == material && k.read_only == read_only {
                return Ok(KeyChange::Unchanged);
            }
            let path = format!("{}/{}", self.keys_path(repo), k.id);
            self.call(Method::DELETE, &path, None).await?;
            change = KeyChange::Replaced;
        }
        let body = match self.kind {
            Kind::GitLab => json!({"title": title, "key": material, "can_push": !read_only}),
            _ => json!({"title": title, "key": material, "read_only": read_only}),
        };
        self.must(Method::POST, &self.keys_path(repo), Some(body))
            .await?;
        Ok(change)
    }
}

/// The `ssh://` form of a server's SSH clone URL (`git@host:o/r.git`
/// becomes `ssh://git@host/o/r.git`), with `ssh_hostname` (`host[:port]`)
/// replacing its host when given, as flux's `--ssh-hostname`.
pub fn ssh_sync_url(ssh_url: &str, ssh_hostname: Option<&str>) -> Result<String> {
    let (user, host, path) = if let Some(rest) = ssh_url.strip_prefix("ssh://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, host) = authority.rsplit_once('@').unwrap_or(("git", authority));
        (user, host.to_string(), path.to_string())
    } else if let Some((before, path)) = ssh_url
        .split_once(':')
        .filter(|(b, p)| !b.is_empty() && !b.contains('/') && !p.starts_with("//"))
    {
        let (user, host) = before.rsplit_once('@').unwrap_or(("git", before));
        (user, host.to_string(), path.to_string())
    } else {
        return Err(UserError::new(format!(
            "the server gave no usable SSH clone URL ({ssh_url:?})"
        ))
        .hint("pass --token-auth to sync over HTTPS with the token")
        .into());
    };
    let host = ssh_hostname.map_or(host, str::to_string);
    Ok(format!(
        "ssh://{user}@{host}/{}",
        path.trim_start_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_become_ssh_scheme_urls() {
        let u = |s: &str, h: Option<&str>| ssh_sync_url(s, h).unwrap();
        assert_eq!(
            u("git@github.com:me/fleet.git", None),
            "ssh://git@github.com/me/fleet.git"
        );
        assert_eq!(
            u("ssh://git@127.0.0.1:2222/me/fleet.git", None),
            "ssh://git@127.0.0.1:2222/me/fleet.git"
        );
        assert_eq!(
            u("git@gitea.lan:me/fleet.git", Some("gitea.lan:2222")),
            "ssh://git@gitea.lan:2222/me/fleet.git"
        );
        assert!(ssh_sync_url("", None).is_err());
        assert!(ssh_sync_url("https://x/y", None).is_err());
    }

    #[test]
    fn pages_are_followed_on_the_same_server_only() {
        let h = r#"<https://api.github.com/repositories/1/keys?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/keys?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(h),
            Some("https://api.github.com/repositories/1/keys?per_page=100&page=2")
        );
        assert_eq!(next_link(r#"<https://x/a?page=1>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
        assert!(same_origin(
            "https://api.github.com/repositories/1/keys?page=2",
            "https://api.github.com"
        ));
        assert!(same_origin(
            "https://GIT.lab:3000/api/v1/repos/a/b/keys",
            "https://git.lab:3000/api/v1"
        ));
        assert!(!same_origin(
            "https://evil.example/keys",
            "https://api.github.com"
        ));
        assert!(!same_origin(
            "http://api.github.com/keys",
            "https://api.github.com"
        ));
        assert!(!same_origin(
            "https://git.lab:3001/keys",
            "https://git.lab:3000/api/v1"
        ));
    }

    #[test]
    fn api_bases_and_segments() {
        assert_eq!(
            Kind::GitHub.api_base("github.com"),
            "https://api.github.com"
        );
        assert_eq!(Kind::GitHub.api_base("ghe.corp"), "https://ghe.corp/api/v3");
        assert_eq!(
            Kind::Gitea.api_base("gitea.lan:3000"),
            "https://gitea.lan:3000/api/v1"
        );
        assert_eq!(segment("group/sub project"), "group%2Fsub%20project");
        assert_eq!(
            key_material("ssh-ed25519 AAAA comment words"),
            "ssh-ed25519 AAAA"
        );
    }
}
