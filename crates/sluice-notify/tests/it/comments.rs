//! Pull request comments on the control plane: a `giteapullrequestcomment` Provider against a
//! local server that answers as Gitea's API does. An object annotated with its pull request
//! gets one comment, edited on its next event; another user's comment with the same marker is
//! left alone; an object without a pull request gets none.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use sluice_api::{Alert, Kustomization, Provider};

use crate::alerts::create;

/// A forge with one pull request (#7) of `home/ops`.
#[derive(Clone, Default)]
struct Forge {
    /// Method and path of each request, with its Authorization header.
    calls: Arc<Mutex<Vec<(String, String, String)>>>,
    comments: Arc<Mutex<Vec<Value>>>,
}

impl Forge {
    async fn start(&self) -> std::net::SocketAddr {
        let this = self.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let this = this.clone();
                async move { this.answer(method, uri, headers, body) }
            },
        );
        crate::serve(app).await
    }

    fn answer(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = uri.path().to_string();
        self.calls
            .lock()
            .unwrap()
            .push((method.to_string(), path.clone(), auth.clone()));
        if auth != "token gitea-pat" {
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"message":"token is required"}"#.into(),
            );
        }
        let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut comments = self.comments.lock().unwrap();
        match (method.as_str(), path.as_str()) {
            ("GET", "/api/v1/user") => (
                StatusCode::OK,
                json!({"id": 3, "login": "flux-bot"}).to_string(),
            ),
            ("GET", "/api/v1/repos/home/ops/issues/7/comments") => {
                assert_eq!(uri.query(), Some("limit=100&page=1"));
                (StatusCode::OK, Value::Array(comments.clone()).to_string())
            }
            ("POST", "/api/v1/repos/home/ops/issues/7/comments") => {
                let id = 100 + comments.len() as u64;
                let c = json!({"id": id, "user": {"login": "flux-bot"}, "body": sent["body"]});
                comments.push(c.clone());
                (StatusCode::CREATED, c.to_string())
            }
            ("PATCH", p) if p.starts_with("/api/v1/repos/home/ops/issues/comments/") => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                match comments.iter_mut().find(|c| c["id"] == id) {
                    Some(c) => {
                        c["body"] = sent["body"].clone();
                        (StatusCode::OK, c.to_string())
                    }
                    None => (StatusCode::NOT_FOUND, "{}".into()),
                }
            }
            _ => (StatusCode::NOT_FOUND, r#"{"message":"not found"}"#.into()),
        }
    }

    fn count(&self, method: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == method)
            .count()
    }

    async fn wait(&self, method: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count(method) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(self.count(method) >= n, "{:?}", self.calls.lock().unwrap());
    }

    fn bodies(&self) -> Vec<(u64, String, String)> {
        self.comments
            .lock()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_u64().unwrap(),
                    c["user"]["login"].as_str().unwrap().to_string(),
                    c["body"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn a_pull_request_gets_one_comment_per_object_edited_as_events_come() {
    let (client, ns) = crate::namespace("pr-comments").await;
    let n = ns.name().to_owned();
    let forge = Forge::default();
    let addr = forge.start().await;

    create(
        &Api::<Secret>::namespaced(client.clone(), &n),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gitea", "namespace": n}, "stringData": {"token": "gitea-pat"}}),
    )
    .await;
    let providers: Api<Provider> = Api::namespaced(client.clone(), &n);
    create(&providers, json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "gitea-pr", "namespace": n},
        "spec": {"type": "giteapullrequestcomment", "address": format!("http://{addr}/home/ops.git"),
            "secretRef": {"name": "gitea"}}})).await;
    create(&Api::<Alert>::namespaced(client.clone(), &n), json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "preview", "namespace": n},
        "spec": {"providerRef": {"name": "gitea-pr"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]}})).await;
    let kss: Api<Kustomization> = Api::namespaced(client.clone(), &n);
    for (name, annotations) in [
        (
            "app-pr-7",
            json!({"event.toolkit.fluxcd.io/change_request": "7"}),
        ),
        ("main", json!({})),
    ] {
        create(&kss, json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": n, "annotations": annotations},
            "spec": {"interval": "1h", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}}})).await;
    }
    let preview = kss.get("app-pr-7").await.unwrap();
    let main = kss.get("main").await.unwrap();
    let uid = providers
        .get("gitea-pr")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let marker = format!("<!-- flux-pr-comment-key:{uid}/Kustomization/{n}/app-pr-7 -->");
    // Someone quoting the marker: not the token's user, so never edited.
    forge
        .comments
        .lock()
        .unwrap()
        .push(json!({"id": 1, "user": {"login": "alice"}, "body": format!("see {marker}")}));

    let (recorder, _, stop, task) = crate::notifier(&client, &n).await;
    let rev = "pr-7@sha1:0123456789abcdef0123456789abcdef01234567";

    // The object without a pull request first: nothing reaches the forge for it.
    recorder
        .publish(
            &main,
            Some(rev),
            &[sluice_runtime::Event::normal(
                "ReconciliationSucceeded".to_string(),
                "Reconciliation finished in 1s",
            )],
        )
        .await;
    recorder
        .publish(
            &preview,
            Some(rev),
            &[sluice_runtime::Event::warning(
                "HealthCheckFailed".to_string(),
                "Health check failed after 5m0s: Deployment/preview/app: 0/1 ready",
            )],
        )
        .await;
    forge.wait("POST", 1).await;
    let after_first = forge.bodies();
    assert_eq!(after_first.len(), 2, "{after_first:?}");
    let (id, user, body) = &after_first[1];
    assert_eq!((*id, user.as_str()), (101, "flux-bot"));
    assert!(
        body.starts_with(&format!("{marker}\n\n## Flux Status\n\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "Kustomization/{n}/app-pr-7\n\nHealth check failed after 5m0s"
        )),
        "{body}"
    );
    assert!(body.contains("* `revision`: pr-7@sha1:"), "{body}");
    assert!(!body.contains("change_request"), "{body}");

    // The next event about the same object edits that comment.
    recorder
        .publish(
            &preview,
            Some(rev),
            &[sluice_runtime::Event::normal(
                "ReconciliationSucceeded".to_string(),
                "Reconciliation finished in 2s",
            )],
        )
        .await;
    forge.wait("PATCH", 1).await;
    let after_second = forge.bodies();
    assert_eq!(after_second.len(), 2, "{after_second:?}");
    assert!(after_second[1].2.contains("Reconciliation finished in 2s"));
    assert_eq!(after_second[0].2, format!("see {marker}"));
    // Everything settled: one create, one edit, and the user and list asked before each.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((forge.count("POST"), forge.count("PATCH")), (1, 1));
    assert_eq!(forge.count("GET"), 4);
    let calls = forge.calls.lock().unwrap().clone();
    assert!(calls.iter().all(|(_, _, auth)| auth == "token gitea-pat"));
    assert!(!calls.iter().any(|(_, p, _)| p.contains("main")));

    let _ = stop.send(());
    let _ = task.await;
}

/// A GitHub Enterprise server's API for an app installed for user `home`: the app's slug, its
/// installation, an installation token, and the comments of pull request #7 of `home/ops`.
async fn github_enterprise() -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<(String, String, String)>>>,
) {
    let calls: Arc<Mutex<Vec<(String, String, String)>>> = Default::default();
    let seen = calls.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let path = uri.path().to_string();
                seen.lock().unwrap().push((
                    method.to_string(),
                    path.clone(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let app_call = auth.starts_with("Bearer ey") && auth.matches('.').count() == 2;
                let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
                match (method.as_str(), path.as_str(), app_call) {
                    ("GET", "/api/v3/app", true) => (
                        StatusCode::OK,
                        r#"{"id": 4321, "slug": "home-flux"}"#.to_string(),
                    ),
                    ("GET", "/api/v3/users/home/installation", true) => {
                        (StatusCode::OK, r#"{"id": 5}"#.into())
                    }
                    ("POST", "/api/v3/app/installations/5/access_tokens", true) => (
                        StatusCode::CREATED,
                        json!({"token": "ghs_app-token-5678", "expires_at": expires.to_string()})
                            .to_string(),
                    ),
                    (_, p, false)
                        if p.starts_with("/api/v3/repos/home/ops/issues/")
                            && auth == "Bearer ghs_app-token-5678" =>
                    {
                        if method == Method::GET {
                            (StatusCode::OK, "[]".into())
                        } else {
                            (StatusCode::CREATED, r#"{"id": 9}"#.into())
                        }
                    }
                    _ => (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#.into()),
                }
            }
        },
    );
    (crate::serve(app).await, calls)
}

#[tokio::test]
async fn a_github_app_comments_as_its_bot_with_an_installation_token() {
    let (client, ns) = crate::namespace("pr-app").await;
    let n = ns.name().to_owned();
    let (addr, calls) = github_enterprise().await;
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sluice-runtime/tests/data/github-app-test-key.pem"
    ))
    .unwrap();
    create(
        &Api::<Secret>::namespaced(client.clone(), &n),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app", "namespace": n},
            "stringData": {"githubAppID": "4321", "githubAppInstallationOwner": "home",
                "githubAppPrivateKey": key, "githubAppBaseURL": format!("http://{addr}/api/v3")}}),
    )
    .await;
    create(
        &Api::<Provider>::namespaced(client.clone(), &n),
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "gh-pr", "namespace": n},
        "spec": {"type": "githubpullrequestcomment", "address": format!("http://{addr}/home/ops"),
            "secretRef": {"name": "app"}}}),
    )
    .await;
    create(&Api::<Alert>::namespaced(client.clone(), &n), json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "preview", "namespace": n},
        "spec": {"providerRef": {"name": "gh-pr"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]}})).await;
    let kss: Api<Kustomization> = Api::namespaced(client.clone(), &n);
    create(&kss, json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "app-pr-7", "namespace": n, "annotations": {"event.toolkit.fluxcd.io/change_request": "7"}},
        "spec": {"interval": "1h", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}}})).await;
    let preview = kss.get("app-pr-7").await.unwrap();

    let (recorder, _, stop, task) = crate::notifier(&client, &n).await;
    recorder
        .publish(
            &preview,
            Some("pr-7@sha1:0123456789abcdef0123456789abcdef01234567"),
            &[sluice_runtime::Event::normal(
                "ReconciliationSucceeded".to_string(),
                "Reconciliation finished in 1s",
            )],
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let posted = |calls: &[(String, String, String)]| {
        calls
            .iter()
            .any(|(m, p, _)| m == "POST" && p == "/api/v3/repos/home/ops/issues/7/comments")
    };
    while !posted(&calls.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = calls.lock().unwrap().clone();
    let paths: Vec<String> = calls.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    // The app's slug and token first (an owner is an organization or a user), then the list
    // and the new comment; no `GET /user` (the app is `home-flux[bot]`).
    assert_eq!(
        paths,
        [
            "GET /api/v3/app",
            "GET /api/v3/orgs/home/installation",
            "GET /api/v3/users/home/installation",
            "POST /api/v3/app/installations/5/access_tokens",
            "GET /api/v3/repos/home/ops/issues/7/comments",
            "POST /api/v3/repos/home/ops/issues/7/comments",
        ]
    );
    let body: Value = serde_json::from_str(&calls[5].2).unwrap();
    assert!(
        body["body"]
            .as_str()
            .unwrap()
            .contains("Reconciliation finished in 1s")
    );

    let _ = stop.send(());
    let _ = task.await;
}
