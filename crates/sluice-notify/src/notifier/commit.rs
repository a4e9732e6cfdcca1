//! Commit statuses: the revision's commit gets a status per object and Provider, named
//! `<kind>/<name>/<first part of the Provider's uid>` (lower case), described by the reason
//! in words (`ReconciliationSucceeded` → `reconciliation succeeded`), `success` for info and
//! `failure` (GitLab: `failed`) for errors; Gitea also posts `pending` while `Progressing`,
//! GitHub and GitLab skip it. A status already on the commit with the same state and
//! description is not posted again.

use serde_json::{Value, json};
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
}

impl Duplicate {
    /// Whether `listed` (the list call's JSON array) already has the status.
    pub fn found_in(&self, listed: &[u8]) -> bool {
        let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(listed) else {
            return false;
        };
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
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

fn owner_repo(id: &str) -> Result<(&str, &str), String> {
    match id.split('/').collect::<Vec<_>>()[..] {
        [o, r] if !o.is_empty() && !r.is_empty() => Ok((o, r)),
        _ => Err(format!("invalid repository id: '{id}'")),
    }
}

fn get(url: String, headers: &[(String, String)]) -> Request {
    Request {
        method: "GET",
        url,
        headers: headers.to_vec(),
        body: vec![],
        check: Check::Status,
    }
}

fn post(url: String, headers: &[(String, String)], body: Value) -> Request {
    let mut r = Request::post_json(url, sluice_api::go_json::marshal(&body));
    for (k, v) in headers {
        r.set(k, v.clone());
    }
    r
}

/// GitHub's API for a repository on `host` (github.com or an Enterprise server): its base URL
/// and the headers of a request with `token`.
fn github_api(host: &str, token: &str) -> Result<(String, Vec<(String, String)>), String> {
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
}
