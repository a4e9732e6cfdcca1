//! Comments on pull and merge requests: `githubpullrequestcomment`, `giteapullrequestcomment`
//! and `gitlabmergerequestcomment`, as notification-controller writes them.
//!
//! An event reaches these types only when it carries a change request number
//! (`event.toolkit.fluxcd.io/change_request`, from the object's annotations: a preview
//! environment's objects name their pull request). The forge's current user is asked for
//! first; the pull request's first 100 comments are listed; the first one by that user that
//! holds this object's marker (`<!-- flux-pr-comment-key:<provider uid>/<kind>/<namespace>/
//! <name> -->`, GitLab `flux-mr-comment-key`) is edited, else a comment is created. So each
//! object keeps one comment per pull request, showing its latest event.

use serde_json::{Value, json};
use sluice_api::notification::ProviderType;

use super::commit::{get, github_api, owner_repo, parse_address, post};
use super::{Delivery, Request};
use crate::event::Event;
use crate::provider::Target;

/// The metadata key (after combination) that holds the change request's number.
pub const CHANGE_REQUEST_KEY: &str = "change_request";

/// Whose comments are this Provider's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// The token's user, asked for (`GET /user`); `pointer` is where its login is in the
    /// answer.
    Ask {
        request: Request,
        pointer: &'static str,
    },
    /// Known without asking: a GitHub App comments as `<slug>[bot]`.
    Known(String),
}

/// The requests of one comment; the edit's URL is completed with the found comment's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub login: Login,
    /// The change request's first comments, oldest first.
    pub list: Request,
    /// Where a listed comment's author login is (a JSON pointer).
    pub author_login: &'static str,
    /// The hidden marker that identifies this object's comment.
    pub marker: String,
    /// A new comment.
    pub create: Request,
    /// The edit of a comment, its URL without the comment's id.
    pub edit: Request,
    /// What the forge calls a comment here, for errors ("pull request comment", "merge
    /// request note").
    pub noun: &'static str,
}

impl Comment {
    /// The login in the user call's answer (`Login::Ask`).
    pub fn login_in(pointer: &str, answer: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(answer).ok()?;
        v.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The id of the first listed comment by `login` that holds the marker.
    pub fn existing(&self, listed: &[u8], login: &str) -> Option<u64> {
        let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(listed) else {
            return None;
        };
        items.iter().find_map(|item| {
            let author = item.pointer(self.author_login).and_then(Value::as_str)?;
            let body = item.get("body").and_then(Value::as_str)?;
            (author == login && body.contains(&self.marker))
                .then(|| item.get("id").and_then(Value::as_u64))
                .flatten()
        })
    }

    /// The edit of comment `id`.
    pub fn edit_of(&self, id: u64) -> Request {
        let mut r = self.edit.clone();
        r.url = format!("{}/{id}", r.url);
        r
    }
}

/// Whether `kind` comments on change requests.
pub fn is_change_request(kind: &ProviderType) -> bool {
    matches!(
        kind,
        ProviderType::GithubPullRequestComment
            | ProviderType::GitlabMergeRequestComment
            | ProviderType::GiteaPullRequestComment
    )
}

/// The comment's text: the marker, then the event in Markdown (Flux's `formatMarkdownPost`).
pub fn body(marker: &str, e: &Event) -> String {
    let emoji = if e.severity == "error" {
        "\u{26a0}\u{fe0f}"
    } else {
        "\u{2139}\u{fe0f}"
    };
    let o = &e.involved_object;
    // Metadata sorted by key (a BTreeMap), without the change request's number.
    let lines: String = e
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != CHANGE_REQUEST_KEY)
        .map(|(k, v)| format!("* `{k}`: {v}\n"))
        .collect();
    format!(
        "{marker}\n\n## Flux Status\n\n{emoji} {}/{}/{}\n\n{}\n\nMetadata:\n{lines}",
        o.kind, o.namespace, o.name, e.message
    )
}

/// The change request's number from the event's metadata (Go's `strconv.Atoi`: an optional
/// sign and decimal digits; a number the forge has no change request for gets its 404).
fn number(e: &Event) -> Result<i64, String> {
    let Some(v) = e.metadata.get(CHANGE_REQUEST_KEY) else {
        return Err(format!("missing {CHANGE_REQUEST_KEY:?} metadata key"));
    };
    v.parse::<i64>().map_err(|_| {
        format!("invalid {CHANGE_REQUEST_KEY:?} metadata value {v:?}: not a decimal number")
    })
}

/// A comment's JSON body (`{"body": ...}`) sent with `method`.
fn send(method: &'static str, url: String, headers: &[(String, String)], text: &str) -> Request {
    let mut r = post(url, headers, json!({ "body": text }));
    r.method = method;
    r
}

/// The requests of a comment about `e` for `t`.
pub fn prepare(t: &Target, e: &Event) -> Result<Delivery, String> {
    if t.provider_uid.is_empty() {
        return Err("provider UID cannot be empty".into());
    }
    let token = if t.token.is_empty() {
        t.password.as_str()
    } else {
        t.token.as_str()
    };
    let o = &e.involved_object;
    let key = format!("{}/{}/{}/{}", t.provider_uid, o.kind, o.namespace, o.name);
    let (host, id) = parse_address(&t.address)?;
    let comment = match t.kind {
        ProviderType::GithubPullRequestComment => {
            let (base, headers) = github_api(&host, token)?;
            let (owner, repo) = owner_repo(&id)?;
            let n = number(e)?;
            let marker = format!("<!-- flux-pr-comment-key:{key} -->");
            let text = body(&marker, e);
            let repo = format!("{base}/repos/{owner}/{repo}/issues");
            let login = match &t.app_slug {
                Some(slug) => Login::Known(format!("{slug}[bot]")),
                None => Login::Ask {
                    request: get(format!("{base}/user"), &headers),
                    pointer: "/login",
                },
            };
            Comment {
                login,
                list: get(
                    format!("{repo}/{n}/comments?direction=asc&per_page=100&sort=created"),
                    &headers,
                ),
                author_login: "/user/login",
                create: send("POST", format!("{repo}/{n}/comments"), &headers, &text),
                edit: send("PATCH", format!("{repo}/comments"), &headers, &text),
                marker,
                noun: "pull request comment",
            }
        }
        ProviderType::GiteaPullRequestComment => {
            if token.is_empty() {
                return Err("gitea token cannot be empty".into());
            }
            let (owner, repo) =
                owner_repo(&id).map_err(|_| format!("invalid repository id {id:?}"))?;
            let n = number(e)?;
            let base = format!("{}/api/v1", host.trim_end_matches('/'));
            let headers = vec![("Authorization".to_string(), format!("token {token}"))];
            let marker = format!("<!-- flux-pr-comment-key:{key} -->");
            let text = body(&marker, e);
            let repo = format!("{base}/repos/{owner}/{repo}/issues");
            Comment {
                login: Login::Ask {
                    request: get(format!("{base}/user"), &headers),
                    pointer: "/login",
                },
                list: get(format!("{repo}/{n}/comments?limit=100&page=1"), &headers),
                author_login: "/user/login",
                create: send("POST", format!("{repo}/{n}/comments"), &headers, &text),
                edit: send("PATCH", format!("{repo}/comments"), &headers, &text),
                marker,
                noun: "pull request comment",
            }
        }
        ProviderType::GitlabMergeRequestComment => {
            if token.is_empty() {
                return Err("gitlab token cannot be empty".into());
            }
            let n = number(e)?;
            let project: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
            let base = format!("{host}/api/v4");
            let headers = vec![("PRIVATE-TOKEN".to_string(), token.to_string())];
            let marker = format!("<!-- flux-mr-comment-key:{key} -->");
            let text = body(&marker, e);
            let notes = format!("{base}/projects/{project}/merge_requests/{n}/notes");
            Comment {
                login: Login::Ask {
                    request: get(format!("{base}/user"), &headers),
                    pointer: "/username",
                },
                list: get(
                    format!("{notes}?order_by=created_at&per_page=100&sort=asc"),
                    &headers,
                ),
                author_login: "/author/username",
                create: send("POST", notes.clone(), &headers, &text),
                edit: send("PUT", notes, &headers, &text),
                marker,
                noun: "merge request note",
            }
        }
        ref other => return Err(format!("provider {} not supported", other.as_str())),
    };
    Ok(Delivery::Comment(Box::new(comment)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(severity: &str, pr: Option<&str>) -> Event {
        let mut e = Event {
            severity: severity.into(),
            message: "Health check passed".into(),
            reason: "ReconciliationSucceeded".into(),
            ..Event::default()
        };
        e.involved_object.kind = "Kustomization".into();
        e.involved_object.namespace = "preview".into();
        e.involved_object.name = "app-pr-7".into();
        e.metadata.insert("revision".into(), "pr-7@sha1:abc".into());
        e.metadata.insert("env".into(), "preview".into());
        if let Some(pr) = pr {
            e.metadata.insert(CHANGE_REQUEST_KEY.into(), pr.into());
        }
        e
    }

    fn target(kind: ProviderType, address: &str) -> Target {
        Target {
            kind,
            address: address.into(),
            token: "tok".into(),
            provider_uid: "0c9c2e41-d2f9".into(),
            ..Target::default()
        }
    }

    fn asked(c: &Comment) -> &Request {
        match &c.login {
            Login::Ask { request, .. } => request,
            Login::Known(l) => panic!("known login {l}"),
        }
    }

    fn comment(t: &Target, e: &Event) -> Comment {
        match prepare(t, e).unwrap() {
            Delivery::Comment(c) => *c,
            other => panic!("not a comment: {other:?}"),
        }
    }

    #[test]
    fn the_body_is_the_marker_and_fluxs_markdown() {
        let c = comment(
            &target(
                ProviderType::GiteaPullRequestComment,
                "https://git.home.arpa/ops/apps",
            ),
            &event("info", Some("7")),
        );
        let sent: Value = serde_json::from_slice(&c.create.body).unwrap();
        assert_eq!(
            sent["body"],
            "<!-- flux-pr-comment-key:0c9c2e41-d2f9/Kustomization/preview/app-pr-7 -->\n\n\
             ## Flux Status\n\n\u{2139}\u{fe0f} Kustomization/preview/app-pr-7\n\n\
             Health check passed\n\nMetadata:\n* `env`: preview\n* `revision`: pr-7@sha1:abc\n"
        );
        // Go's encoder escapes the marker's angle brackets.
        assert!(
            c.create
                .body_text()
                .starts_with(r#"{"body":"\u003c!-- flux-pr"#)
        );
        let error = body("<!-- m -->", &event("error", Some("7")));
        assert!(error.contains("\n\u{26a0}\u{fe0f} Kustomization/preview/app-pr-7\n"));
    }

    #[test]
    fn each_forge_has_its_routes_and_credentials() {
        let e = event("info", Some("7"));
        let gitea = comment(
            &target(
                ProviderType::GiteaPullRequestComment,
                "https://git.home.arpa/ops/apps.git",
            ),
            &e,
        );
        assert_eq!(asked(&gitea).url, "https://git.home.arpa/api/v1/user");
        assert_eq!(
            gitea.list.url,
            "https://git.home.arpa/api/v1/repos/ops/apps/issues/7/comments?limit=100&page=1"
        );
        assert_eq!(gitea.create.method, "POST");
        assert_eq!(
            gitea.create.url,
            "https://git.home.arpa/api/v1/repos/ops/apps/issues/7/comments"
        );
        assert_eq!(gitea.edit_of(42).method, "PATCH");
        assert_eq!(
            gitea.edit_of(42).url,
            "https://git.home.arpa/api/v1/repos/ops/apps/issues/comments/42"
        );
        assert_eq!(gitea.list.header("authorization"), Some("token tok"));
        assert!(gitea.list.body.is_empty());

        let github = comment(
            &target(
                ProviderType::GithubPullRequestComment,
                "https://github.com/ops/apps",
            ),
            &e,
        );
        assert_eq!(asked(&github).url, "https://api.github.com/user");
        assert_eq!(
            github.list.url,
            "https://api.github.com/repos/ops/apps/issues/7/comments?direction=asc&per_page=100&sort=created"
        );
        assert_eq!(
            github.edit_of(9).url,
            "https://api.github.com/repos/ops/apps/issues/comments/9"
        );
        assert_eq!(github.create.header("authorization"), Some("Bearer tok"));

        let gitlab = comment(
            &target(
                ProviderType::GitlabMergeRequestComment,
                "https://gitlab.com/home/ops/apps",
            ),
            &e,
        );
        assert_eq!(asked(&gitlab).url, "https://gitlab.com/api/v4/user");
        assert_eq!(
            gitlab.list.url,
            "https://gitlab.com/api/v4/projects/home%2Fops%2Fapps/merge_requests/7/notes?order_by=created_at&per_page=100&sort=asc"
        );
        assert_eq!(gitlab.edit_of(3).method, "PUT");
        assert_eq!(
            gitlab.edit_of(3).url,
            "https://gitlab.com/api/v4/projects/home%2Fops%2Fapps/merge_requests/7/notes/3"
        );
        assert_eq!(asked(&gitlab).header("private-token"), Some("tok"));
        assert!(gitlab.marker.starts_with("<!-- flux-mr-comment-key:"));

        // A GitHub App comments as its bot: nothing to ask.
        let mut app = target(
            ProviderType::GithubPullRequestComment,
            "https://github.com/ops/apps",
        );
        app.app_slug = Some("home-flux".into());
        assert_eq!(
            comment(&app, &e).login,
            Login::Known("home-flux[bot]".into())
        );
    }

    #[test]
    fn the_existing_comment_is_the_users_with_the_marker() {
        let c = comment(
            &target(
                ProviderType::GiteaPullRequestComment,
                "https://git.home.arpa/ops/apps",
            ),
            &event("info", Some("7")),
        );
        assert_eq!(
            Comment::login_in("/login", br#"{"id": 1, "login": "flux-bot"}"#).as_deref(),
            Some("flux-bot")
        );
        assert_eq!(Comment::login_in("/login", br#"{"login": ""}"#), None);
        assert_eq!(Comment::login_in("/login", b"<html>"), None);
        let listed = json!([
            {"id": 1, "user": {"login": "someone"}, "body": c.marker},
            {"id": 2, "user": {"login": "flux-bot"}, "body": "LGTM"},
            {"id": 3, "user": {"login": "flux-bot"}, "body": format!("{}\n\nold", c.marker)},
            {"id": 4, "user": {"login": "flux-bot"}, "body": format!("{}\n\nnewer", c.marker)},
        ])
        .to_string();
        assert_eq!(c.existing(listed.as_bytes(), "flux-bot"), Some(3));
        assert_eq!(c.existing(listed.as_bytes(), "other"), None);
        assert_eq!(c.existing(b"{}", "flux-bot"), None);
    }

    #[test]
    fn the_change_request_number_must_be_there_and_a_number() {
        let t = target(
            ProviderType::GithubPullRequestComment,
            "https://github.com/ops/apps",
        );
        assert_eq!(
            prepare(&t, &event("info", None)).unwrap_err(),
            r#"missing "change_request" metadata key"#
        );
        assert!(
            prepare(&t, &event("info", Some("seven")))
                .unwrap_err()
                .starts_with(r#"invalid "change_request" metadata value "seven""#)
        );
        assert!(prepare(&t, &event("info", Some("+7"))).is_ok());
        let mut no_token = target(
            ProviderType::GitlabMergeRequestComment,
            "https://gitlab.com/ops/apps",
        );
        no_token.token.clear();
        assert_eq!(
            prepare(&no_token, &event("info", Some("7"))).unwrap_err(),
            "gitlab token cannot be empty"
        );
        no_token.password = "pw".into();
        assert!(prepare(&no_token, &event("info", Some("7"))).is_ok());
    }
}
