//! Notifications on the control plane ([`alerts`]: Alerts and Providers; [`comments`]: pull
//! request comments against a Gitea-like API).
//!
//! Receivers on the control plane: the controller gives each its webhook path (or names why
//! it cannot), and signed GitHub/Gitea and GitLab payloads posted to the endpoint request a
//! reconcile of the Receiver's resources within a second (only those its CEL filters accept);
//! bad signatures, unknown paths,
//! oversized bodies, suspended Receivers and floods are refused and change nothing.

mod alerts;
mod comments;
mod nats;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sluice_api::meta::{self, FluxObject};
use sluice_api::{GitRepository, Kustomization, Receiver};
use sluice_notify::payload::sign_sha256;
use sluice_testsupport::{TestNamespace, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Posts `body` with `headers` to `path` on `addr`; gives the status code.
async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    // A refused body may be cut short by the server: the status line is what counts.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// Serves `app` on a local port.
async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A client with Flux's CRDs applied, and a namespace of its own.
async fn namespace(prefix: &str) -> (kube::Client, TestNamespace) {
    let client = sluice_testsupport::client().await;
    for crd in sluice_api::crds() {
        sluice_testsupport::apply_crd(&client, &crd, "sluice-notify-tests").await;
    }
    let ns = TestNamespace::create(&client, prefix).await;
    (client, ns)
}

/// A running notification controller: its dispatcher, the addresses of its event endpoint
/// (where Flux's controllers post) and its receiver endpoint; send on `stop` to stop it.
struct Running {
    dispatcher: sluice_notify::dispatch::Dispatcher,
    events: std::net::SocketAddr,
    receiver: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Runs the notification controller with `opts`.
async fn run(client: &kube::Client, opts: sluice_notify::Options) -> Running {
    let (dispatcher, queue) = sluice_notify::dispatch::Dispatcher::new(opts.rate_limit_interval);
    let events = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (events_addr, receiver_addr) =
        (events.local_addr().unwrap(), receiver.local_addr().unwrap());
    let serve = sluice_notify::Serve {
        receiver,
        events,
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
    Running {
        dispatcher,
        events: events_addr,
        receiver: receiver_addr,
        stop,
        task,
    }
}

/// The notification controller of namespace `ns`, a Recorder that hands it events in process
/// (as sluice's controllers do), and the address of its event endpoint; send on the sender to
/// stop it.
async fn notifier(
    client: &kube::Client,
    ns: &str,
) -> (
    sluice_runtime::Recorder,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let opts = sluice_notify::Options {
        namespace: Some(ns.to_string()),
        ..Default::default()
    };
    let r = run(client, opts).await;
    let recorder = sluice_runtime::Recorder::new(
        client.clone(),
        "kustomize-controller",
        &sluice_runtime::EventSettings {
            events_addr: None,
            instance: "sluice-0".into(),
            sink: Some(r.dispatcher.sink()),
        },
    );
    (recorder, r.events, r.stop, r.task)
}

fn requested_at(obj: &impl kube::Resource) -> Option<String> {
    meta::reconcile_request(obj.meta().annotations.as_ref()).map(str::to_owned)
}

async fn apply(client: &kube::Client, ns: &str, obj: Value) {
    let kind = obj["kind"].as_str().unwrap().to_owned();
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let pp = PatchParams::apply("sluice-test").force();
    match kind.as_str() {
        "GitRepository" => {
            Api::<GitRepository>::namespaced(client.clone(), ns)
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap();
        }
        "Kustomization" => {
            Api::<Kustomization>::namespaced(client.clone(), ns)
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap();
        }
        "Receiver" => {
            Api::<Receiver>::namespaced(client.clone(), ns)
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap();
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn signed_payloads_request_reconciles_and_bad_ones_change_nothing() {
    let (client, ns) = namespace("receiver").await;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &n);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "webhook-token", "namespace": n},
        "stringData": {"token": "s3cr3t-t0ken"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    apply(
        &client,
        &n,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "repo", "namespace": n},
            "spec": {"url": "https://gitea.example/me/repo.git", "interval": "1h"},
        }),
    )
    .await;
    for (name, labels) in [("web", json!({"app": "web"})), ("db", json!({"app": "db"}))] {
        apply(&client, &n, json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": n, "labels": labels},
            "spec": {"interval": "1h", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}},
        }))
        .await;
    }
    let resources = json!([
        {"kind": "GitRepository", "name": "repo"},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "*", "matchLabels": {"app": "web"}},
    ]);
    apply(&client, &n, json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "gitea", "namespace": n},
        "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "webhook-token"}, "resources": resources},
    }))
    .await;
    apply(&client, &n, json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "gitlab", "namespace": n},
        "spec": {"type": "gitlab", "secretRef": {"name": "webhook-token"}, "resources": [{"kind": "GitRepository", "name": "repo"}]},
    }))
    .await;
    // CEL filters: the top-level one over every resource, a resource's own beside it.
    apply(&client, &n, json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "filtered", "namespace": n},
        "spec": {"type": "generic", "secretRef": {"name": "webhook-token"},
            "resourceFilter": "req.app == 'repo' || res.metadata.name == req.app",
            "resources": [
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "*", "matchLabels": {}},
                {"kind": "GitRepository", "name": "repo", "filter": "res.metadata.name == 'repo' && req.app == 'repo'"},
            ]},
    }))
    .await;
    apply(
        &client,
        &n,
        json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": "misspelt", "namespace": n},
            "spec": {"type": "generic", "secretRef": {"name": "webhook-token"},
                "resourceFilter": "resource.metadata.name == 'web'",
                "resources": [{"kind": "GitRepository", "name": "repo"}]},
        }),
    )
    .await;
    apply(&client, &n, json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "tokenless", "namespace": n},
        "spec": {"type": "generic", "secretRef": {"name": "absent"}, "resources": [{"kind": "GitRepository", "name": "repo"}]},
    }))
    .await;

    let running = run(
        &client,
        sluice_notify::Options {
            namespace: Some(n.clone()),
            requests_per_second: 2,
            ..Default::default()
        },
    )
    .await;
    let (addr, stop, task) = (running.receiver, running.stop, running.task);

    let receivers: Api<Receiver> = Api::namespaced(client.clone(), &n);
    let gitea = wait_for(&receivers, "gitea", Duration::from_secs(30), |r| {
        r.is_ready()
    })
    .await;
    let path = gitea.status.clone().unwrap().webhook_path.unwrap();
    assert_eq!(path, gitea.webhook_path("s3cr3t-t0ken"));
    let ready = meta::find_condition(gitea.conditions(), "Ready").unwrap();
    assert_eq!(
        ready.message,
        format!("Receiver initialized for path: {path}")
    );
    let tokenless = wait_for(&receivers, "tokenless", Duration::from_secs(30), |r| {
        !r.conditions().is_empty()
    })
    .await;
    let ready = meta::find_condition(tokenless.conditions(), "Ready").unwrap();
    assert_eq!(ready.reason, "TokenNotFound");
    assert!(
        ready.message.starts_with(&format!(
            "unable to read token from secret '{n}/absent' error: "
        )),
        "{}",
        ready.message
    );
    assert!(tokenless.status.unwrap().webhook_path.is_none());

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &n);
    let kss: Api<Kustomization> = Api::namespaced(client.clone(), &n);
    let body = br#"{"ref":"refs/heads/main","repository":{"full_name":"me/repo"}}"#;

    // A bad signature: 400, nothing annotated.
    let forged = format!("sha256={}", sign_sha256("guess", body));
    let code = post(
        addr,
        &path,
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &forged)],
        body,
    )
    .await;
    assert_eq!(code, 400);
    // An event the Receiver does not take: 400.
    let signed = format!("sha256={}", sign_sha256("s3cr3t-t0ken", body));
    let code = post(
        addr,
        &path,
        &[
            ("X-GitHub-Event", "release"),
            ("X-Hub-Signature-256", &signed),
        ],
        body,
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(requested_at(&repos.get("repo").await.unwrap()), None);

    // Gitea's push (GitHub's headers beside its own): 200, and the reconcile is requested at
    // once, of the GitRepository and of the Kustomizations with the label.
    let started = std::time::Instant::now();
    let code = post(
        addr,
        &path,
        &[
            ("X-Gitea-Event", "push"),
            ("X-GitHub-Event", "push"),
            ("X-Gitea-Signature", &signed[7..]),
            ("X-Hub-Signature-256", &signed),
        ],
        body,
    )
    .await;
    assert_eq!(code, 200);
    let first = requested_at(&repos.get("repo").await.unwrap()).expect("GitRepository annotated");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(requested_at(&kss.get("web").await.unwrap()).is_some());
    assert_eq!(requested_at(&kss.get("db").await.unwrap()), None);

    // GitLab: the token header.
    let gitlab = wait_for(&receivers, "gitlab", Duration::from_secs(30), |r| {
        r.is_ready()
    })
    .await;
    let gitlab_path = gitlab.status.unwrap().webhook_path.unwrap();
    assert_eq!(
        post(
            addr,
            &gitlab_path,
            &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "nope")],
            body
        )
        .await,
        400
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        post(
            addr,
            &gitlab_path,
            &[
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Token", "s3cr3t-t0ken")
            ],
            body
        )
        .await,
        200
    );
    let second = requested_at(&repos.get("repo").await.unwrap()).unwrap();
    assert_ne!(first, second);

    // Filters: `db` alone is asked to reconcile; then the GitRepository and, by the top-level
    // filter, every Kustomization; a body that is not JSON fails the filters (500).
    let filtered = wait_for(&receivers, "filtered", Duration::from_secs(30), |r| {
        r.is_ready()
    })
    .await;
    let filtered_path = filtered.status.unwrap().webhook_path.unwrap();
    let web_before = requested_at(&kss.get("web").await.unwrap());
    assert_eq!(
        post(addr, &filtered_path, &[], br#"{"app":"db"}"#).await,
        200
    );
    assert!(requested_at(&kss.get("db").await.unwrap()).is_some());
    assert_eq!(requested_at(&kss.get("web").await.unwrap()), web_before);
    assert_eq!(
        requested_at(&repos.get("repo").await.unwrap()).as_ref(),
        Some(&second)
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        post(addr, &filtered_path, &[], br#"{"app":"repo"}"#).await,
        200
    );
    assert_ne!(
        requested_at(&repos.get("repo").await.unwrap()).as_ref(),
        Some(&second)
    );
    assert_ne!(requested_at(&kss.get("web").await.unwrap()), web_before);
    assert_eq!(post(addr, &filtered_path, &[], b"not json").await, 500);
    let misspelt = wait_for(&receivers, "misspelt", Duration::from_secs(30), |r| {
        !r.conditions().is_empty()
    })
    .await;
    let ready = meta::find_condition(misspelt.conditions(), "Ready").unwrap();
    assert_eq!(ready.reason, "InvalidCELExpression");
    assert!(
        ready
            .message
            .ends_with("undeclared reference to 'resource'"),
        "{}",
        ready.message
    );
    assert!(meta::is_condition_true(misspelt.conditions(), "Stalled"));

    // Unknown paths and oversized bodies.
    assert_eq!(post(addr, "/hook/0000", &[], b"{}").await, 404);
    let big = vec![b' '; sluice_notify::server::MAX_BODY_BYTES + 1];
    assert_eq!(
        post(addr, &path, &[("X-GitHub-Event", "push")], &big).await,
        413
    );

    // Suspended: 503.
    receivers
        .patch(
            "gitea",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    let mut code = 0;
    for _ in 0..50 {
        code = post(
            addr,
            &path,
            &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &signed)],
            body,
        )
        .await;
        if code == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, 503);

    // A flood: past the rate (2 a second, bursts of 20), refused with 429.
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(post(addr, "/hook/0000", &[], b"{}").await);
    }
    assert!(codes.contains(&429), "{codes:?}");

    let _ = stop.send(());
    let _ = task.await;
    ns.delete().await;
}
