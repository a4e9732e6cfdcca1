//! What is sent to each type of Provider: requests built from a [`Target`] and an event by
//! pure functions ([`prepare`]), then executed ([`execute`]).
//!
//! The payloads are notification-controller's, field for field and in its field order, written
//! as Go's `encoding/json` writes them (so an HMAC over the body, or a Matrix transaction id,
//! is the one Flux computes). Where Flux iterates a Go map (metadata as Slack fields, Teams
//! facts, ...) the order is random in Flux; sluice sorts by key.
//!
//! - [`chat`]: `generic`, `generic-hmac`, `slack`, `discord`, `msteams`, `googlechat`,
//!   `telegram`, `matrix`, `lark`, `alertmanager`, `rocket`, `webex`, `zulip` and `zoom`,
//!   and beyond Flux `dingtalk` (signed URLs) and `wecom`;
//! - [`ops`]: incident and observability tools: `grafana` annotations, `opsgenie`,
//!   `pagerduty` (events and change events), `incident.io` and `datadog` events;
//! - [`commit`]: commit statuses on `github`, `gitea` (and Forgejo), `gitlab`, `bitbucket`,
//!   `bitbucketserver` and `azuredevops`, with Flux's duplicate check (a status already
//!   there is not posted again), and GitHub's repository dispatch (`githubdispatch`);
//! - [`nats`]: the event published on a NATS subject (`nats`);
//! - [`review`]: one comment per object on a pull or merge request
//!   (`githubpullrequestcomment`, `giteapullrequestcomment`, `gitlabmergerequestcomment`),
//!   edited as new events come.

pub mod chat;
pub mod commit;
pub mod nats;
pub mod ops;
pub mod review;

use sluice_api::notification::ProviderType;

use crate::event::Event;
use crate::provider::Target;

/// The types sluice sends to.
pub const SUPPORTED: &[ProviderType] = &[
    ProviderType::Generic,
    ProviderType::GenericHmac,
    ProviderType::Slack,
    ProviderType::Discord,
    ProviderType::Msteams,
    ProviderType::GoogleChat,
    ProviderType::Telegram,
    ProviderType::Matrix,
    ProviderType::Lark,
    ProviderType::Alertmanager,
    ProviderType::Github,
    ProviderType::Gitea,
    ProviderType::Gitlab,
    ProviderType::Dingtalk,
    ProviderType::Wecom,
    ProviderType::Rocket,
    ProviderType::Webex,
    ProviderType::Zulip,
    ProviderType::Zoom,
    ProviderType::Grafana,
    ProviderType::Opsgenie,
    ProviderType::Pagerduty,
    ProviderType::IncidentIo,
    ProviderType::Datadog,
    ProviderType::GithubDispatch,
    ProviderType::Bitbucket,
    ProviderType::BitbucketServer,
    ProviderType::AzureDevops,
    ProviderType::GithubPullRequestComment,
    ProviderType::GiteaPullRequestComment,
    ProviderType::GitlabMergeRequestComment,
    ProviderType::Nats,
];

/// Flux's commit status types (those sluice serves and those it refuses).
pub fn is_commit_status(kind: &ProviderType) -> bool {
    matches!(
        kind,
        ProviderType::Github
            | ProviderType::Gitlab
            | ProviderType::Gitea
            | ProviderType::BitbucketServer
            | ProviderType::Bitbucket
            | ProviderType::AzureDevops
    )
}

/// Whether a Provider of `kind` takes `event` (the event as the emitter sent it, before an
/// Alert's metadata).
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Skipped, with why (logged at debug level).
    Skip(&'static str),
}

/// Flux's rules: an event marked as a commit status update (`<group>/commit_status: update`)
/// goes only to commit status and generic types; a commit status type takes only events with
/// a commit, commit status updates, or errors.
pub fn admits(kind: &ProviderType, event: &Event) -> Admit {
    let update = event.object_metadata("commit_status") == Some("update");
    let generic = matches!(kind, ProviderType::Generic | ProviderType::GenericHmac);
    if update && !is_commit_status(kind) && !generic {
        return Admit::Skip("commit status update events go to commit status providers only");
    }
    let has_commit = event
        .metadata
        .get(&format!("{}/commit", crate::event::EVENT_GROUP))
        .is_some_and(|c| !c.is_empty());
    if is_commit_status(kind) && !has_commit && !update && event.severity != "error" {
        return Admit::Skip(
            "event dropped for commit status providers due to missing commit metadata key",
        );
    }
    let change_request = event
        .metadata
        .get(&format!(
            "{}/{}",
            crate::event::EVENT_GROUP,
            review::CHANGE_REQUEST_KEY
        ))
        .is_some_and(|c| !c.is_empty());
    if review::is_change_request(kind) && !change_request {
        return Admit::Skip(
            "event dropped for change request providers due to missing change request metadata key",
        );
    }
    // PagerDuty and incident.io open and resolve incidents, Bitbucket's and Azure DevOps'
    // statuses pass or fail: progress is none of these.
    if matches!(
        kind,
        ProviderType::Pagerduty
            | ProviderType::IncidentIo
            | ProviderType::Bitbucket
            | ProviderType::BitbucketServer
            | ProviderType::AzureDevops
    ) && event.reason == "Progressing"
    {
        return Admit::Skip("progressing events are not sent to this provider type");
    }
    Admit::Yes
}

/// How a response is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A 2xx status.
    Status,
    /// A 2xx status and `{"ok": true}` (Slack's Web API).
    SlackOk,
    /// A 2xx status and `{"errcode": 0}` (DingTalk and WeCom robots).
    ErrCode,
    /// A 2xx status, or 404 read as an empty body (a status looked up by its key, not there).
    NotFoundIsNothing,
}

/// One HTTP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub check: Check,
}

impl Request {
    fn post_json(url: String, body: String) -> Request {
        Request {
            method: "POST",
            url,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
            check: Check::Status,
        }
    }

    /// Sets a header, replacing one of the same name (Go's `Header.Set`).
    fn set(&mut self, name: &str, value: String) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value));
    }

    /// The body as text (for tests and logs).
    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }
}

#[cfg(test)]
impl Request {
    /// A header's value (the name in any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What is sent for one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// One request.
    Post(Request),
    /// Requests sent one after the other, stopping at the first that fails (PagerDuty's
    /// event, then its change event).
    Posts(Vec<Request>),
    /// A commit status: the statuses already on the commit are listed first, and the status
    /// is not posted again if [`commit::Duplicate`] finds it there.
    CommitStatus {
        list: Request,
        duplicate: commit::Duplicate,
        create: Request,
    },
    /// A comment on a change request: the token's user and the comments are read first, and
    /// that user's comment with the object's marker is edited rather than a new one posted.
    Comment(Box<review::Comment>),
    /// A message published on a NATS subject (not HTTP).
    Nats(Box<nats::Publish>),
}

/// The requests for `event` to `target` (its metadata already combined with the Alert's).
/// `now_ms` signs DingTalk URLs.
pub fn prepare(target: &Target, event: &Event, now_ms: i64) -> Result<Delivery, String> {
    match &target.kind {
        ProviderType::Github
        | ProviderType::Gitea
        | ProviderType::Gitlab
        | ProviderType::Bitbucket
        | ProviderType::BitbucketServer
        | ProviderType::AzureDevops => commit::prepare(target, event),
        ProviderType::GithubDispatch => commit::dispatch(target, event).map(Delivery::Post),
        ProviderType::GithubPullRequestComment
        | ProviderType::GiteaPullRequestComment
        | ProviderType::GitlabMergeRequestComment => review::prepare(target, event),
        ProviderType::Grafana
        | ProviderType::Opsgenie
        | ProviderType::Pagerduty
        | ProviderType::IncidentIo
        | ProviderType::Datadog => ops::prepare(target, event),
        ProviderType::Nats => nats::prepare(target, event).map(|p| Delivery::Nats(Box::new(p))),
        _ => chat::prepare(target, event, now_ms).map(Delivery::Post),
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    pub retry: bool,
}

/// Sends `delivery` once (the caller retries).
pub async fn execute(client: &reqwest::Client, delivery: &Delivery) -> Result<(), SendError> {
    match delivery {
        Delivery::Post(r) => one(client, r).await.map(drop),
        Delivery::Posts(rs) => {
            for r in rs {
                one(client, r).await?;
            }
            Ok(())
        }
        Delivery::CommitStatus {
            list,
            duplicate,
            create,
        } => {
            let listed = one(client, list).await.map_err(|e| SendError {
                message: format!("could not list commit statuses: {}", e.message),
                retry: e.retry,
            })?;
            if duplicate.found_in(&listed) {
                return Ok(());
            }
            one(client, create).await.map(drop).map_err(|e| SendError {
                message: format!("could not create commit status: {}", e.message),
                retry: e.retry,
            })
        }
        Delivery::Nats(p) => nats::publish(p).await.map_err(|e| SendError {
            message: format!(
                "error publishing event to subject {}: {}",
                p.subject, e.message
            ),
            retry: e.retry,
        }),
        Delivery::Comment(c) => {
            let failed = |what: String| {
                move |e: SendError| SendError {
                    message: format!("{what}: {}", e.message),
                    retry: e.retry,
                }
            };
            let login = match &c.login {
                review::Login::Known(login) => login.clone(),
                review::Login::Ask { request, pointer } => {
                    let answer = one(client, request)
                        .await
                        .map_err(failed("failed to get authenticated user info".into()))?;
                    review::Comment::login_in(pointer, &answer).ok_or_else(|| SendError {
                        message: "failed to get authenticated user info: the answer names no user"
                            .into(),
                        retry: false,
                    })?
                }
            };
            let listed = one(client, &c.list)
                .await
                .map_err(failed(format!("failed to list {}s", c.noun)))?;
            match c.existing(&listed, &login) {
                Some(id) => one(client, &c.edit_of(id))
                    .await
                    .map(drop)
                    .map_err(failed(format!("failed to update {}", c.noun))),
                None => one(client, &c.create)
                    .await
                    .map(drop)
                    .map_err(failed(format!("failed to create {}", c.noun))),
            }
        }
    }
}

/// The most of a response body quoted in an error.
const QUOTED_BODY: usize = 512;

async fn one(client: &reqwest::Client, r: &Request) -> Result<Vec<u8>, SendError> {
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).map_err(|e| SendError {
        message: e.to_string(),
        retry: false,
    })?;
    let mut req = client.request(method, &r.url);
    for (k, v) in &r.headers {
        req = req.header(k, v);
    }
    if !r.body.is_empty() {
        req = req.body(r.body.clone());
    }
    let resp = req.send().await.map_err(|e| SendError {
        retry: !e.is_builder() && !e.is_redirect(),
        message: format!(
            "failed to execute request: {}",
            error_chain(&e.without_url())
        ),
    })?;
    let status = resp.status();
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if status == reqwest::StatusCode::NOT_FOUND && r.check == Check::NotFoundIsNothing {
        return Ok(Vec::new());
    }
    if !status.is_success() {
        let code = status.as_u16();
        let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]).into_owned();
        return Err(SendError {
            message: format!("request failed with status code {code}: {quoted}"),
            retry: code == 429 || (code >= 500 && code != 501),
        });
    }
    match r.check {
        Check::Status | Check::NotFoundIsNothing => {}
        Check::SlackOk => {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| SendError {
                message: format!("unable to unmarshal response body: {e}"),
                retry: false,
            })?;
            if v["ok"] != serde_json::Value::Bool(true) {
                return Err(SendError {
                    message: format!(
                        "Slack responded with error: {}",
                        v["error"].as_str().unwrap_or_default()
                    ),
                    retry: false,
                });
            }
        }
        Check::ErrCode => {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| SendError {
                message: format!("unable to unmarshal response body: {e}"),
                retry: false,
            })?;
            let code = v["errcode"].as_i64().unwrap_or(-1);
            if code != 0 {
                return Err(SendError {
                    message: format!(
                        "the robot refused the message: errcode {code}: {}",
                        v["errmsg"].as_str().unwrap_or_default()
                    ),
                    // Over the robot's rate (DingTalk 130101, WeCom 45009): later may pass.
                    retry: matches!(code, 130101 | 45009),
                });
            }
        }
    }
    Ok(body)
}

use sluice_api::meta::error_chain;

/// Go's `url.QueryEscape`: letters, digits and `-_.~` as they are, a space as `+`, every
/// other byte as `%XX`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An `Authorization` header's value for HTTP basic authentication.
pub(crate) fn basic_auth(username: &str, password: &str) -> String {
    use base64::Engine;
    let pair = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(severity: &str, metadata: &[(&str, &str)]) -> Event {
        let mut e = Event {
            severity: severity.into(),
            ..Event::default()
        };
        e.involved_object.api_version = "kustomize.toolkit.fluxcd.io/v1".into();
        for (k, v) in metadata {
            e.metadata.insert(k.to_string(), v.to_string());
        }
        e
    }

    #[test]
    fn commit_status_updates_go_to_commit_status_and_generic_types_only() {
        let update = event(
            "info",
            &[("kustomize.toolkit.fluxcd.io/commit_status", "update")],
        );
        assert_eq!(admits(&ProviderType::Github, &update), Admit::Yes);
        assert_eq!(admits(&ProviderType::Generic, &update), Admit::Yes);
        assert!(matches!(
            admits(&ProviderType::Slack, &update),
            Admit::Skip(_)
        ));
        let info = event("info", &[]);
        assert!(matches!(
            admits(&ProviderType::Gitea, &info),
            Admit::Skip(_)
        ));
        assert_eq!(
            admits(&ProviderType::Gitea, &event("error", &[])),
            Admit::Yes
        );
        assert_eq!(
            admits(
                &ProviderType::Gitlab,
                &event("info", &[("event.toolkit.fluxcd.io/commit", "abc")])
            ),
            Admit::Yes
        );
        assert_eq!(admits(&ProviderType::Slack, &info), Admit::Yes);
    }

    #[test]
    fn change_request_types_take_only_events_that_name_one() {
        for kind in [
            ProviderType::GithubPullRequestComment,
            ProviderType::GiteaPullRequestComment,
            ProviderType::GitlabMergeRequestComment,
        ] {
            assert!(matches!(admits(&kind, &event("info", &[])), Admit::Skip(_)));
            assert!(matches!(
                admits(
                    &kind,
                    &event("error", &[("event.toolkit.fluxcd.io/change_request", "")])
                ),
                Admit::Skip(_)
            ));
            assert_eq!(
                admits(
                    &kind,
                    &event("info", &[("event.toolkit.fluxcd.io/change_request", "7")])
                ),
                Admit::Yes
            );
        }
        // Other types take such events as any other.
        assert_eq!(
            admits(
                &ProviderType::Slack,
                &event("info", &[("event.toolkit.fluxcd.io/change_request", "7")])
            ),
            Admit::Yes
        );
    }
}
