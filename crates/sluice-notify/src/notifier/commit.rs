//! Commit statuses: the revision's commit gets a status per object and Provider, named
//! `<kind>/<name>/<first part of the Provider's uid>` (lower case), described by the reason
//! in words (`ReconciliationSucceeded` → `reconciliation succeeded`), `success` for info and
//! `failure` (GitLab: `failed`) for errors; Gitea also posts `pending` while `Progressing`,
//! GitHub and GitLab skip it. A status already on the commit with the same state and
//! description is not posted again.

use serde_json::{Value, json};
use sha1::Digest;
use sluice_api::notification::ProviderType;

use super::{Check, Delivery, Request};
use crate::event::Event;
use crate::provider::Target;

/// How a listed status is recognised as the one about to be posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// GitHub and Gitea: the first listed status with this context (and all of context,
    /// state and description set) decides: a duplicate if state and description are equal.
    FirstWithContext {
        context: String,
        state_key: &'static str,
        state: String,
        description: String,
    },
    /// GitLab: any listed status with the same sha, status, description and name.
    Any {
        sha: String,
        name: String,
        status: String,
        description: String,
    },
    /// Bitbucket (Cloud and Server): the status looked up by its key (nothing when the lookup
    /// found none) has these fields equal.
    Same(Vec<(&'static str, String)>),
    /// Azure DevOps (statuses listed under `value`): the first with this context name and
    /// genre decides: a duplicate if state and description are equal.
    FirstWithNameAndGenre {
        name: String,
        genre: String,
        state: String,
        description: String,
    },
}

impl Duplicate {
    /// Whether `listed` (the list call's JSON array) already has the status.
    pub fn found_in(&self, listed: &[u8]) -> bool {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if let Duplicate::Same(fields) = self {
            let Ok(found @ Value::Object(_)) = serde_json::from_slice::<Value>(listed) else {
                return false;
            };
            return fields.iter().all(|(k, v)| s(&found, k).as_ref() == Some(v));
        }
        if let Duplicate::FirstWithNameAndGenre {
            name,
            genre,
            state,
            description,
        } = self
        {
            let Ok(list) = serde_json::from_slice::<Value>(listed) else {
                return false;
            };
            let items = list.get("value").and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                let fields = (
                    item.pointer("/context/name").and_then(Value::as_str),
                    item.pointer("/context/genre").and_then(Value::as_str),
                    s(item, "state"),
                    s(item, "description"),
                );
                let (Some(n), Some(g), Some(st), Some(d)) = fields else {
                    continue;
                };
                if n == name && g == genre {
                    return &st == state && &d == description;
                }
            }
            return false;
        }
        let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(listed) else {
            return false;
        };
        match self {
            Duplicate::FirstWithContext {
                context,
                state_key,
                state,
                description,
            } => {
                for item in &items {
                    let (Some(c), Some(st), Some(d)) = (
                        s(item, "context"),
                        s(item, state_key),
                        s(item, "description"),
                    ) else {
                        continue;
                    };
                    if c.is_empty() || st.is_empty() || d.is_empty() {
                        continue;
                    }
                    if &c == context {
                        return &st == state && &d == description;
                    }
                }
                false
            }
            Duplicate::Any {
                sha,
                name,
                status,
                description,
            } => items.iter().any(|item| {
                s(item, "sha").as_ref() == Some(sha)
                    && s(item, "status").as_ref() == Some(status)
                    && s(item, "description").as_ref() == Some(description)
                    && s(item, "name").as_ref() == Some(name)
            }),
            Duplicate::Same(_) | Duplicate::FirstWithNameAndGenre { .. } => false,
        }
    }
}

/// Flux's `parseGitAddress`: `ssh` becomes `https`; the host with its scheme and port, and
/// the path without its leading `/` and trailing `.git`. scp-like `git@host:owner/repo.git`
/// is read as `ssh://git@host/owner/repo.git`.
pub fn parse_address(address: &str) -> Result<(String, String), String> {
    let normalized = if !address.contains("://")
        && let Some((userhost, path)) = address.split_once(':')
    {
        format!("ssh://{userhost}/{path}")
    } else {
        address.to_string()
    };
    let u =
        url::Url::parse(&normalized).map_err(|e| format!("failed parsing URL {address:?}: {e}"))?;
    let scheme = if u.scheme() == "ssh" {
        "https"
    } else {
        u.scheme()
    };
    let host = match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(format!("failed parsing URL {address:?}: no host")),
    };
    let id = u.path().trim_start_matches('/');
    let id = id.strip_suffix(".git").unwrap_or(id);
    Ok((format!("{scheme}://{host}"), id.to_string()))
}

/// The commit of a revision (`main@sha1:<h>`, `sha1:<h>`, `main/<h>`, `<h>`): 40 hex digits.
pub fn parse_revision(rev: &str) -> Result<String, String> {
    let tail = rev.rsplit_once('@').map_or(rev, |(_, t)| t);
    let hash = if let Some((algo, h)) = tail.split_once(':') {
        (algo == "sha1").then_some(h)
    } else {
        Some(tail.rsplit_once('/').map_or(tail, |(_, h)| h))
    };
    match hash {
        Some(h) if h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(h.to_string()),
        _ => Err(format!(
            "failed to extract commit hash from '{rev}' revision"
        )),
    }
}

/// The event's revision: metadata `commit`, else `originRevision`, else `revision`.
fn revision(e: &Event) -> Option<&str> {
    ["commit", "originRevision", "revision"]
        .iter()
        .find_map(|k| e.metadata.get(*k).map(String::as_str))
}

/// Flux's `splitCamelcase`, lower-cased and joined by spaces.
pub fn describe(reason: &str) -> String {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Other,
    }
    let class = |c: char| {
        if c.is_lowercase() {
            Class::Lower
        } else if c.is_uppercase() {
            Class::Upper
        } else if c.is_numeric() {
            Class::Digit
        } else {
            Class::Other
        }
    };
    let mut runs: Vec<(Class, Vec<char>)> = vec![];
    for c in reason.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some((last, run)) if *last == k => run.push(c),
            _ => runs.push((k, vec![c])),
        }
    }
    for i in 0..runs.len().saturating_sub(1) {
        let (upper_then_lower, moved) = {
            let (a, b) = (&runs[i].1, &runs[i + 1].1);
            (
                a.first().is_some_and(|c| c.is_uppercase())
                    && b.first().is_some_and(|c| c.is_lowercase()),
                a.last().copied(),
            )
        };
        if upper_then_lower && let Some(c) = moved {
            runs[i].1.pop();
            runs[i + 1].1.insert(0, c);
        }
    }
    runs.into_iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(_, r)| r.into_iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The default status name: `<kind>/<name>/<uid up to its first '-'>`, lower case.
pub fn status_name(provider_uid: &str, e: &Event) -> String {
    let uid = provider_uid.split('-').next().unwrap_or_default();
    format!(
        "{}/{}/{uid}",
        e.involved_object.kind, e.involved_object.name
    )
    .to_lowercase()
}

pub(super) fn owner_repo(id: &str) -> Result<(&str, &str), String> {
    match id.split('/').collect::<Vec<_>>()[..] {
        [o, r] if !o.is_empty() && !r.is_empty() => Ok((o, r)),
        _ => Err(format!("invalid repository id: '{id}'")),
    }
}

pub(super) fn get(url: String, headers: &[(String, String)]) -> Request {
    Request {
        method: "GET",
        url,
        headers: headers.to_vec(),
        body: vec![],
        check: Check::Status,
    }
}

pub(super) fn post(url: String, headers: &[(String, String)], body: Value) -> Request {
    let mut r = Request::post_json(url, sluice_api::go_json::marshal(&body));
    for (k, v) in headers {
        r.set(k, v.clone());
    }
    r
}

/// GitHub's API for a repository on `host` (github.com or an Enterprise server): its base URL
/// and the headers of a request with `token`.
pub(super) fn github_api(
    host: &str,
    token: &str,
) -> Result<(String, Vec<(String, String)>), String> {
    if token.is_empty() {
        return Err("github token or github app details must be specified".into());
    }
    let base = if host == "https://github.com" || host == "http://github.com" {
        "https://api.github.com".to_string()
    } else {
        format!("{host}/api/v3")
    };
    let headers = vec![
        ("Authorization".to_string(), format!("Bearer {token}")),
        (
            "Accept".to_string(),
            "application/vnd.github.v3+json".to_string(),
        ),
        ("X-GitHub-Api-Version".to_string(), "2022-11-28".to_string()),
    ];
    Ok((base, headers))
}

/// GitHub's repository dispatch (`githubdispatch`): an event of type `Kind/name.namespace`
/// with Flux's event as its client payload, for a workflow `on: repository_dispatch`.
pub fn dispatch(t: &Target, e: &Event) -> Result<Request, String> {
    let token = if t.token.is_empty() {
        t.password.as_str()
    } else {
        t.token.as_str()
    };
    let (host, id) = parse_address(&t.address)?;
    let (owner, repo) = owner_repo(&id)?;
    let (base, headers) = github_api(&host, token)?;
    let o = &e.involved_object;
    let event_type = format!("{}/{}.{}", o.kind, o.name, o.namespace);
    // The event as Go marshals it, embedded as it is (a `json.RawMessage`).
    let body = format!(
        "{{\"event_type\":{},\"client_payload\":{}}}",
        sluice_api::go_json::marshal(&Value::String(event_type)),
        super::chat::event_json(e)
    );
    let mut r = Request::post_json(format!("{base}/repos/{owner}/{repo}/dispatches"), body);
    for (k, v) in headers {
        r.set(&k, v);
    }
    Ok(r)
}

/// Bitbucket's state for an event's severity.
fn bitbucket_state(e: &Event, what: &str) -> Result<&'static str, String> {
    match e.severity.as_str() {
        "info" => Ok("SUCCESSFUL"),
        "error" => Ok("FAILED"),
        _ => Err(what.to_string()),
    }
}

/// Bitbucket Cloud's build status (API 2.0), keyed by the SHA-1 of the status name, looked up
/// by that key first; `token` is `<user>:<app password>`.
fn bitbucket(
    t: &Target,
    e: &Event,
    id: &str,
    sha: &str,
    status_name: &str,
    description: String,
) -> Result<Delivery, String> {
    if t.token.is_empty() {
        return Err("bitbucket token cannot be empty".into());
    }
    let (user, password) = match t.token.split(':').collect::<Vec<_>>()[..] {
        [u, p] => (u, p),
        _ => return Err("invalid token format, expected to be <user>:<password>".into()),
    };
    let (owner, repo) = match id.split('/').collect::<Vec<_>>()[..] {
        [o, r] => (o, r),
        _ => return Err(format!("invalid repository id {id:?}")),
    };
    let state = bitbucket_state(e, "can't convert to bitbucket state")?;
    let key = crate::event::hex(&sha1::Sha1::digest(status_name.as_bytes()));
    let o = &e.involved_object;
    let name = format!("{}/{}", o.kind, o.name).to_lowercase();
    let headers = vec![(
        "Authorization".to_string(),
        super::basic_auth(user, password),
    )];
    let base = format!("{BITBUCKET_API}/repositories/{owner}/{repo}/commit/{sha}/statuses/build");
    let mut lookup = get(format!("{base}/{key}"), &headers);
    lookup.check = Check::NotFoundIsNothing;
    Ok(Delivery::CommitStatus {
        list: lookup,
        duplicate: Duplicate::Same(vec![
            ("state", state.into()),
            ("description", description.clone()),
        ]),
        create: post(
            base,
            &headers,
            json!({"key": key, "url": "https://bitbucket.org", "state": state,
                "name": name, "description": description}),
        ),
    })
}

/// Bitbucket Data Center's build status for a commit, at the server and context path of a
/// `.../scm/<project>/<repo>.git` clone URL, with a token (Bearer) or `username` and
/// `password`; looked up by its key first.
fn bitbucket_server(
    t: &Target,
    e: &Event,
    sha: &str,
    status_name: &str,
    description: String,
) -> Result<Delivery, String> {
    let bad = |why: String| format!("could not parse git address: {why}");
    let mut url = url::Url::parse(&t.address).map_err(|err| bad(err.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad(format!(
            "unsupported scheme type in address: {}. Must be http or https",
            url.scheme()
        )));
    }
    let path = url.path().to_string();
    let path = path.strip_suffix(".git").unwrap_or(&path);
    let (context, id) = path
        .rsplit_once("/scm/")
        .ok_or_else(|| bad("supplied provider address is not http(s) git clone url".into()))?;
    let (project, repo) = match id.split('/').collect::<Vec<_>>()[..] {
        [p, r] => (p, r),
        _ => return Err(bad(format!("invalid repository id {id:?}"))),
    };
    if t.token.is_empty() && (t.username.is_empty() || t.password.is_empty()) {
        return Err(
            "invalid credentials, expected to be one of username/password or API Token".into(),
        );
    }
    let state = bitbucket_state(
        e,
        "couldn't convert to bitbucket server state: bitbucket server state generated on info or error events only",
    )?;
    let key = crate::event::hex(&sha1::Sha1::digest(status_name.as_bytes()));
    let o = &e.involved_object;
    let name = format!(
        "{} [{description}]",
        format!("{}/{}", o.kind, o.name).to_lowercase()
    );
    url.set_path(&format!(
        "{context}/rest/api/latest/projects/{project}/repos/{repo}/commits/{sha}/builds"
    ));
    url.set_query(None);
    url.set_fragment(None);
    let auth = if t.token.is_empty() {
        super::basic_auth(&t.username, &t.password)
    } else {
        format!("Bearer {}", t.token)
    };
    let headers = vec![
        ("Authorization".to_string(), auth),
        ("x-atlassian-token".to_string(), "no-check".to_string()),
        ("x-requested-with".to_string(), "XMLHttpRequest".to_string()),
    ];
    let mut lookup = get(format!("{url}?key={key}"), &headers);
    lookup.check = Check::NotFoundIsNothing;
    let mut body = serde_json::Map::new();
    if !description.is_empty() {
        body.insert("description".into(), description.clone().into());
    }
    body.insert("key".into(), key.clone().into());
    body.insert("name".into(), name.clone().into());
    body.insert("state".into(), state.into());
    body.insert("url".into(), t.address.clone().into());
    let mut create = post(url.to_string(), &headers, Value::Object(body));
    // Go's `json.Encoder` ends the body with a newline.
    create.body.push(b'\n');
    Ok(Delivery::CommitStatus {
        list: lookup,
        duplicate: Duplicate::Same(vec![
            ("key", key),
            ("state", state.into()),
            ("description", description),
            ("name", name),
        ]),
        create,
    })
}

/// Bitbucket Cloud's API.
/// The API version of Flux's Azure DevOps client (azure-devops-go-api v6) for commit statuses.
const AZURE_DEVOPS_API_VERSION: &str = "6.0-preview.1";

/// Azure DevOps' commit status of `sha` in `<organization>/<project>/_git/<repository>`,
/// with a personal access token (Basic, no user). Its context is the status name under the
/// genre `fluxcd` (`fluxcd:<summary>` when the Alert has a summary); `succeeded` or `error`.
/// Flux's client first asks the organization where the route is (an `OPTIONS` of `_apis`);
/// sluice uses the route Azure DevOps has always answered there.
fn azure_devops(
    t: &Target,
    e: &Event,
    host: &str,
    id: &str,
    sha: &str,
    name: String,
    description: String,
) -> Result<Delivery, String> {
    if t.token.is_empty() {
        return Err(
            "failed to acquire azure devops token: no token in the Secret (sluice \
             does not get tokens from a managed identity)"
                .into(),
        );
    }
    let (org, project, repo) = match id.split('/').collect::<Vec<_>>()[..] {
        [o, p, _, r] => (o, p, r),
        _ => return Err(format!("invalid repository id {id:?}")),
    };
    let state = match e.severity.as_str() {
        "info" => "succeeded",
        "error" => "error",
        _ => return Err("can't convert to azure devops state".into()),
    };
    let genre = match e.metadata.get("summary") {
        Some(summary) => format!("fluxcd:{summary}"),
        None => "fluxcd".to_string(),
    };
    let headers = vec![("Authorization".to_string(), super::basic_auth("", &t.token))];
    // The segments are as the address's URL encodes them (a project "Home Lab" is `Home%20Lab`).
    let statuses = format!(
        "{host}/{org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses?api-version={AZURE_DEVOPS_API_VERSION}"
    );
    Ok(Delivery::CommitStatus {
        list: get(statuses.clone(), &headers),
        duplicate: Duplicate::FirstWithNameAndGenre {
            name: name.clone(),
            genre: genre.clone(),
            state: state.into(),
            description: description.clone(),
        },
        create: post(
            statuses,
            &headers,
            json!({"context": {"genre": genre, "name": name}, "description": description,
                "state": state}),
        ),
    })
}

const BITBUCKET_API: &str = "https://api.bitbucket.org/2.0";

/// The requests for a commit status, or `Ok(None)`-like skip as an empty list call.
pub fn prepare(t: &Target, e: &Event) -> Result<Delivery, String> {
    let progressing = e.reason == "Progressing";
    let token = if t.token.is_empty() {
        t.password.as_str()
    } else {
        t.token.as_str()
    };
    let name = t
        .commit_status
        .clone()
        .unwrap_or_else(|| status_name(&t.provider_uid, e));
    let (host, id) = parse_address(&t.address)?;
    let rev = revision(e).ok_or("missing revision metadata")?;
    let sha = parse_revision(rev)?;
    let description = describe(&e.reason);
    match t.kind {
        ProviderType::Bitbucket => return bitbucket(t, e, &id, &sha, &name, description),
        ProviderType::BitbucketServer => {
            return bitbucket_server(t, e, &sha, &name, description);
        }
        ProviderType::AzureDevops => {
            return azure_devops(t, e, &host, &id, &sha, name, description);
        }
        _ => {}
    }
    let state = match (&t.kind, e.severity.as_str(), progressing) {
        (ProviderType::Gitea, _, true) => "pending",
        (_, "info", _) => "success",
        (ProviderType::Gitlab, "error", _) => "failed",
        (_, "error", _) => "failure",
        (k, _, _) => return Err(format!("can't convert to {} state", k.as_str())),
    };
    match t.kind {
        ProviderType::Github => {
            let (owner, repo) = owner_repo(&id)?;
            let (base, headers) = github_api(&host, token)?;
            Ok(Delivery::CommitStatus {
                list: get(
                    format!("{base}/repos/{owner}/{repo}/commits/{sha}/statuses?per_page=50"),
                    &headers,
                ),
                duplicate: Duplicate::FirstWithContext {
                    context: name.clone(),
                    state_key: "state",
                    state: state.into(),
                    description: description.clone(),
                },
                create: post(
                    format!("{base}/repos/{owner}/{repo}/statuses/{sha}"),
                    &headers,
                    json!({"state": state, "description": description, "context": name}),
                ),
            })
        }
        ProviderType::Gitea => {
            if token.is_empty() {
                return Err("gitea token cannot be empty".into());
            }
            let (owner, repo) =
                owner_repo(&id).map_err(|_| format!("invalid repository id {id:?}"))?;
            let base = format!("{}/api/v1", host.trim_end_matches('/'));
            let headers = vec![("Authorization".to_string(), format!("token {token}"))];
            Ok(Delivery::CommitStatus {
                list: get(
                    format!("{base}/repos/{owner}/{repo}/commits/{sha}/statuses?limit=50&page=1"),
                    &headers,
                ),
                duplicate: Duplicate::FirstWithContext {
                    context: name.clone(),
                    state_key: "status",
                    state: state.into(),
                    description: description.clone(),
                },
                create: post(
                    format!("{base}/repos/{owner}/{repo}/statuses/{sha}"),
                    &headers,
                    json!({"state": state, "target_url": "", "description": description, "context": name}),
                ),
            })
        }
        ProviderType::Gitlab => {
            if token.is_empty() {
                return Err("gitlab token cannot be empty".into());
            }
            let project: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
            let base = format!("{host}/api/v4");
            let headers = vec![("PRIVATE-TOKEN".to_string(), token.to_string())];
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("name", &name)
                .finish();
            Ok(Delivery::CommitStatus {
                list: get(
                    format!("{base}/projects/{project}/repository/commits/{sha}/statuses?{query}"),
                    &headers,
                ),
                duplicate: Duplicate::Any {
                    sha: sha.clone(),
                    name: name.clone(),
                    status: state.into(),
                    description: description.clone(),
                },
                create: post(
                    format!("{base}/projects/{project}/statuses/{sha}"),
                    &headers,
                    json!({"state": state, "name": name, "description": description}),
                ),
            })
        }
        ref other => Err(format!("provider {} not supported", other.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn event(reason: &str, severity: &str) -> Event {
        let mut e = Event {
            reason: reason.into(),
            severity: severity.into(),
            ..Event::default()
        };
        e.involved_object.kind = "Kustomization".into();
        e.involved_object.name = "Apps".into();
        e.metadata
            .insert("revision".into(), format!("main@sha1:{SHA}"));
        e
    }

    fn target(kind: ProviderType, address: &str) -> Target {
        Target {
            kind,
            address: address.into(),
            token: "tok".into(),
            provider_uid: "0c9c2e41-d2f9-4f9b-9c41-a2b0b0b0b0b0".into(),
            ..Target::default()
        }
    }

    #[test]
    fn names_descriptions_and_revisions_are_fluxs() {
        assert_eq!(
            describe("ReconciliationSucceeded"),
            "reconciliation succeeded"
        );
        assert_eq!(describe("HealthCheckFailed"), "health check failed");
        assert_eq!(
            describe("OCIArtifactPullFailed"),
            "oci artifact pull failed"
        );
        assert_eq!(describe("Progressing"), "progressing");
        assert_eq!(
            status_name("0c9c2e41-d2f9", &event("x", "info")),
            "kustomization/apps/0c9c2e41"
        );
        for rev in [
            format!("main@sha1:{SHA}"),
            format!("sha1:{SHA}"),
            format!("env/dev@sha1:{SHA}"),
            format!("main/{SHA}"),
            SHA.to_string(),
        ] {
            assert_eq!(parse_revision(&rev).as_deref(), Ok(SHA), "{rev}");
        }
        assert!(parse_revision("v1.0@sha256:abc").is_err());
        assert_eq!(
            parse_address("git@gitlab.com:foo/bar.git").unwrap(),
            ("https://gitlab.com".into(), "foo/bar".into())
        );
        assert_eq!(
            parse_address("ssh://git@gitea.lan:2222/home/ops.git").unwrap(),
            ("https://gitea.lan:2222".into(), "home/ops".into())
        );
        assert_eq!(
            parse_address("http://gitea.lan:3000/home/ops").unwrap(),
            ("http://gitea.lan:3000".into(), "home/ops".into())
        );
    }

    #[test]
    fn a_named_status_replaces_the_default_name() {
        let mut t = target(ProviderType::Github, "https://github.com/home/ops");
        t.commit_status = Some("edge/apps".into());
        let Delivery::CommitStatus { create, .. } =
            prepare(&t, &event("ReconciliationSucceeded", "info")).unwrap()
        else {
            panic!()
        };
        assert!(
            create.body_text().ends_with(r#""context":"edge/apps"}"#),
            "{}",
            create.body_text()
        );
    }

    #[test]
    fn github_gitea_and_gitlab_requests() {
        let Delivery::CommitStatus { list, create, .. } = prepare(
            &target(ProviderType::Github, "https://github.com/home/ops"),
            &event("ReconciliationSucceeded", "info"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            list.url,
            format!("https://api.github.com/repos/home/ops/commits/{SHA}/statuses?per_page=50")
        );
        assert_eq!(
            create.url,
            format!("https://api.github.com/repos/home/ops/statuses/{SHA}")
        );
        assert_eq!(
            create.body_text(),
            r#"{"state":"success","description":"reconciliation succeeded","context":"kustomization/apps/0c9c2e41"}"#
        );

        let Delivery::CommitStatus { create, .. } = prepare(
            &target(ProviderType::Gitea, "http://gitea.lan:3000/home/ops.git"),
            &event("Progressing", "info"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            create.url,
            format!("http://gitea.lan:3000/api/v1/repos/home/ops/statuses/{SHA}")
        );
        assert!(
            create
                .headers
                .contains(&("Authorization".into(), "token tok".into()))
        );
        assert_eq!(
            create.body_text(),
            r#"{"state":"pending","target_url":"","description":"progressing","context":"kustomization/apps/0c9c2e41"}"#
        );

        let Delivery::CommitStatus { list, create, .. } = prepare(
            &target(ProviderType::Gitlab, "https://gitlab.com/group/sub/ops"),
            &event("HealthCheckFailed", "error"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            list.url,
            format!(
                "https://gitlab.com/api/v4/projects/group%2Fsub%2Fops/repository/commits/{SHA}/statuses?name=kustomization%2Fapps%2F0c9c2e41"
            )
        );
        assert_eq!(
            create.body_text(),
            r#"{"state":"failed","name":"kustomization/apps/0c9c2e41","description":"health check failed"}"#
        );
        assert!(
            prepare(
                &target(ProviderType::Github, "https://github.com/a"),
                &event("X", "info")
            )
            .unwrap_err()
            .contains("invalid repository id")
        );
    }

    #[test]
    fn duplicates_are_recognised_as_flux_does() {
        let d = Duplicate::FirstWithContext {
            context: "kustomization/apps/0c9c2e41".into(),
            state_key: "state",
            state: "success".into(),
            description: "reconciliation succeeded".into(),
        };
        let same = br#"[{"context":"other","state":"failure","description":"x"},{"context":"kustomization/apps/0c9c2e41","state":"success","description":"reconciliation succeeded"}]"#;
        assert!(d.found_in(same));
        // The newest status with the context decides: an older identical one does not count.
        let newer = br#"[{"context":"kustomization/apps/0c9c2e41","state":"failure","description":"health check failed"},{"context":"kustomization/apps/0c9c2e41","state":"success","description":"reconciliation succeeded"}]"#;
        assert!(!d.found_in(newer));
        assert!(!d.found_in(b"not json"));
        let g = Duplicate::Any {
            sha: SHA.into(),
            name: "n".into(),
            status: "success".into(),
            description: "d".into(),
        };
        assert!(
            g.found_in(
                format!(r#"[{{"sha":"{SHA}","name":"n","status":"success","description":"d"}}]"#)
                    .as_bytes()
            )
        );
    }

    #[test]
    fn github_dispatch_sends_the_event_as_client_payload() {
        let mut t = target(ProviderType::GithubDispatch, "https://github.com/home/ops");
        let mut e = event("ReconciliationSucceeded", "info");
        e.involved_object.namespace = "flux-system".into();
        e.message = "Applied <3 objects>".into();
        let r = dispatch(&t, &e).unwrap();
        assert_eq!(r.url, "https://api.github.com/repos/home/ops/dispatches");
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Bearer tok".into()))
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["event_type"], "Kustomization/Apps.flux-system");
        assert_eq!(v["client_payload"]["message"], "Applied <3 objects>");
        assert!(
            r.body_text()
                .contains(r#""message":"Applied \u003c3 objects\u003e""#)
        );
        t.address = "https://git.corp.lan/home/ops".into();
        assert_eq!(
            dispatch(&t, &e).unwrap().url,
            "https://git.corp.lan/api/v3/repos/home/ops/dispatches"
        );
        t.token.clear();
        assert_eq!(
            dispatch(&t, &e).unwrap_err(),
            "github token or github app details must be specified"
        );
    }

    fn status_parts(d: Delivery) -> (Request, Duplicate, Request) {
        match d {
            Delivery::CommitStatus {
                list,
                duplicate,
                create,
            } => (list, duplicate, create),
            other => panic!("a commit status expected: {other:?}"),
        }
    }

    #[test]
    fn bitbucket_cloud_looks_up_its_status_by_key_then_posts() {
        let mut t = target(
            ProviderType::Bitbucket,
            "https://bitbucket.org/home/ops.git",
        );
        t.commit_status = Some("flux/apps".into());
        let e = event("ReconciliationSucceeded", "info");
        assert_eq!(
            prepare(&t, &e).unwrap_err(),
            "invalid token format, expected to be <user>:<password>"
        );
        t.token = "bot:app-password".into();
        let (list, duplicate, create) = status_parts(prepare(&t, &e).unwrap());
        let key = crate::event::hex(&sha1::Sha1::digest(b"flux/apps"));
        let base = format!(
            "https://api.bitbucket.org/2.0/repositories/home/ops/commit/{SHA}/statuses/build"
        );
        assert_eq!(list.url, format!("{base}/{key}"));
        assert_eq!(list.check, Check::NotFoundIsNothing);
        assert_eq!(create.url, base);
        assert_eq!(
            create.body_text(),
            format!(
                r#"{{"key":"{key}","url":"https://bitbucket.org","state":"SUCCESSFUL","name":"kustomization/apps","description":"reconciliation succeeded"}}"#
            )
        );
        assert_eq!(
            create.header("Authorization"),
            Some("Basic Ym90OmFwcC1wYXNzd29yZA==")
        );
        assert!(duplicate.found_in(
            br#"{"key": "x", "state": "SUCCESSFUL", "description": "reconciliation succeeded"}"#
        ));
        assert!(
            !duplicate
                .found_in(br#"{"state": "FAILED", "description": "reconciliation succeeded"}"#)
        );
        // The lookup found nothing (404): posted.
        assert!(!duplicate.found_in(b""));
    }

    #[test]
    fn bitbucket_server_posts_a_build_status_at_its_context_path() {
        let mut t = target(
            ProviderType::BitbucketServer,
            "https://git.corp.lan/bitbucket/scm/HOME/ops.git",
        );
        t.token.clear();
        let e = event("HealthCheckFailed", "error");
        assert_eq!(
            prepare(&t, &e).unwrap_err(),
            "invalid credentials, expected to be one of username/password or API Token"
        );
        t.username = "bot".into();
        t.password = "pw".into();
        let (list, duplicate, create) = status_parts(prepare(&t, &e).unwrap());
        let key = crate::event::hex(&sha1::Sha1::digest(
            status_name(&t.provider_uid, &e).as_bytes(),
        ));
        let builds = format!(
            "https://git.corp.lan/bitbucket/rest/api/latest/projects/HOME/repos/ops/commits/{SHA}/builds"
        );
        assert_eq!(list.url, format!("{builds}?key={key}"));
        assert_eq!(create.url, builds);
        assert_eq!(
            create.body_text(),
            format!(
                "{{\"description\":\"health check failed\",\"key\":\"{key}\",\"name\":\"kustomization/apps [health check failed]\",\"state\":\"FAILED\",\"url\":\"https://git.corp.lan/bitbucket/scm/HOME/ops.git\"}}\n"
            )
        );
        assert_eq!(create.header("Authorization"), Some("Basic Ym90OnB3"));
        assert_eq!(create.header("x-atlassian-token"), Some("no-check"));
        let same = format!(
            r#"{{"key":"{key}","state":"FAILED","description":"health check failed","name":"kustomization/apps [health check failed]"}}"#
        );
        assert!(duplicate.found_in(same.as_bytes()));
        assert!(!duplicate.found_in(same.replace("FAILED", "SUCCESSFUL").as_bytes()));
        t.token = "pat".into();
        let (_, _, create) = status_parts(prepare(&t, &e).unwrap());
        assert_eq!(create.header("Authorization"), Some("Bearer pat"));
        t.address = "https://git.corp.lan/HOME/ops.git".into();
        assert_eq!(
            prepare(&t, &e).unwrap_err(),
            "could not parse git address: supplied provider address is not http(s) git clone url"
        );
    }

    #[test]
    fn azure_devops_posts_a_status_under_fluxs_genre() {
        let mut t = target(
            ProviderType::AzureDevops,
            "https://dev.azure.com/home/Home Lab/_git/ops",
        );
        let mut e = event("HealthCheckFailed", "error");
        let (list, duplicate, create) = status_parts(prepare(&t, &e).unwrap());
        let statuses = format!(
            "https://dev.azure.com/home/Home%20Lab/_apis/git/repositories/ops/commits/{SHA}/statuses?api-version=6.0-preview.1"
        );
        assert_eq!((list.method, list.url.as_str()), ("GET", statuses.as_str()));
        assert_eq!(
            (create.method, create.url.as_str()),
            ("POST", statuses.as_str())
        );
        let name = status_name(&t.provider_uid, &e);
        assert_eq!(
            create.body_text(),
            format!(
                r#"{{"context":{{"genre":"fluxcd","name":"{name}"}},"description":"health check failed","state":"error"}}"#
            )
        );
        // A PAT with no user.
        assert_eq!(create.header("Authorization"), Some("Basic OnRvaw=="));
        let listed = |genre: &str, state: &str| {
            json!({"count": 2, "value": [
                {"context": {"genre": "other", "name": name}, "state": "succeeded", "description": "x"},
                {"context": {"genre": genre, "name": name}, "state": state, "description": "health check failed"},
            ]})
            .to_string()
        };
        assert!(duplicate.found_in(listed("fluxcd", "error").as_bytes()));
        assert!(!duplicate.found_in(listed("fluxcd", "succeeded").as_bytes()));
        assert!(!duplicate.found_in(listed("fluxcd:prod", "error").as_bytes()));
        assert!(!duplicate.found_in(b"[]"));
        // An Alert's summary goes into the genre; info is `succeeded`.
        e = event("ReconciliationSucceeded", "info");
        e.metadata.insert("summary".into(), "prod".into());
        let (_, _, create) = status_parts(prepare(&t, &e).unwrap());
        assert!(create.body_text().contains(r#"{"genre":"fluxcd:prod","#));
        assert!(create.body_text().ends_with(r#""state":"succeeded"}"#));
        t.address = "https://dev.azure.com/home/ops".into();
        assert_eq!(
            prepare(&t, &e).unwrap_err(),
            r#"invalid repository id "home/ops""#
        );
        t.token.clear();
        assert!(
            prepare(&t, &e)
                .unwrap_err()
                .starts_with("failed to acquire azure devops token")
        );
    }
}
