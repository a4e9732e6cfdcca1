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
use sluice_notify::dispatch::Dispatcher;
use sluice_testsupport::TestNamespace;

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
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
    let client = sluice_testsupport::client().await;
    for crd in sluice_api::crds() {
        sluice_testsupport::apply_crd(&client, &crd, "sluice-notify-tests").await;
    }
    let ns = TestNamespace::create(&client, "pr-comments").await;
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

    let opts = sluice_notify::Options {
        namespace: Some(n.clone()),
        ..Default::default()
    };
    let (dispatcher, queue) = Dispatcher::new(opts.rate_limit_interval);
    let serve = sluice_notify::Serve {
        receiver: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        events: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        dispatcher: dispatcher.clone(),
        queue,
    };
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sluice_notify::run_until(
        client.clone(),
        opts,
        serve,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let recorder = sluice_runtime::Recorder::new(
        client.clone(),
        "kustomize-controller",
        &sluice_runtime::EventSettings {
            events_addr: None,
            instance: "sluice-0".into(),
            sink: Some(dispatcher.sink()),
        },
    );
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
