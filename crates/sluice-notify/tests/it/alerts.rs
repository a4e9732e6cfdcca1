//! Alerts and Providers on the control plane, with local HTTP sinks standing in for each
//! provider: events handed over in process (as sluice's controllers do) and posted to the
//! event endpoint (as Flux's controllers do) reach the Providers whose Alerts want them, with
//! the payloads and signatures of each type; commit statuses are posted once; repeats are
//! dropped; a failing Provider is retried and reported on its Alert without any secret.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sluice_api::{Alert, Kustomization, Provider};

/// One request a sink received.
#[derive(Clone, Debug)]
struct Got {
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Default)]
struct Sink {
    got: Arc<Mutex<Vec<Got>>>,
    /// Commit statuses posted to the fake Gitea, listed back on GET.
    statuses: Arc<Mutex<Vec<Value>>>,
}

impl Sink {
    async fn start(&self) -> SocketAddr {
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
        let got = Got {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        self.got.lock().unwrap().push(got.clone());
        let path = got.path.as_str();
        if path.starts_with("/fail") {
            // Echoes what it was sent, as some servers do: nothing secret may reach an event.
            return (
                StatusCode::BAD_GATEWAY,
                format!("upstream down for {}", got.query),
            );
        }
        if path.starts_with("/api/v1/repos/")
            && path.contains("/statuses/")
            && method == Method::POST
        {
            let mut v = got.json();
            v["status"] = v["state"].clone();
            self.statuses.lock().unwrap().insert(0, v);
            return (StatusCode::CREATED, "{}".into());
        }
        if path.starts_with("/api/v1/repos/") && method == Method::GET {
            return (
                StatusCode::OK,
                Value::Array(self.statuses.lock().unwrap().clone()).to_string(),
            );
        }
        // Bitbucket Server: no build status with the key yet.
        if path.starts_with("/bb/") && method == Method::GET {
            return (
                StatusCode::NOT_FOUND,
                r#"{"errors":[{"message":"no such build status"}]}"#.into(),
            );
        }
        if path.starts_with("/robot") || path.starts_with("/cgi-bin") {
            return (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#.into());
        }
        (StatusCode::OK, "{}".into())
    }

    fn to(&self, prefix: &str) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    async fn wait(&self, prefix: &str, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.to(prefix);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(crate) async fn create<K>(api: &Api<K>, obj: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// A Kustomization's event as Flux's kustomize-controller posts it.
fn ks_event(
    ks: &Kustomization,
    severity: &'static str,
    reason: &str,
    message: &str,
    rev: &str,
) -> sluice_runtime::FluxEvent {
    use kube::Resource;
    sluice_runtime::FluxEvent {
        involved_object: ks.object_ref(&()),
        severity,
        timestamp: "2026-12-03T06:00:00Z".into(),
        message: message.into(),
        reason: reason.into(),
        metadata: BTreeMap::from([
            (
                "kustomize.toolkit.fluxcd.io/revision".to_string(),
                rev.to_string(),
            ),
            (
                "event.toolkit.fluxcd.io/env".to_string(),
                "home".to_string(),
            ),
        ]),
        reporting_controller: "kustomize-controller".into(),
        reporting_instance: "sluice-0".into(),
    }
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[tokio::test]
async fn alerts_send_each_providers_payload_once_and_report_failures_without_secrets() {
    let (client, ns) = crate::namespace("alerts").await;
    let n = ns.name().to_owned();
    let sink = Sink::default();
    let addr = sink.start().await;
    let base = format!("http://{addr}");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &n);
    for (name, data) in [
        (
            "hmac",
            json!({"token": "hmac-key-1234\n", "headers": "X-Team: web\n"}),
        ),
        (
            "slack",
            json!({"address": format!("{base}/slack/T0/B0/xyz-webhook-secret"), "token": "xoxb-slack-token"}),
        ),
        ("telegram", json!({"token": "123456:telegram-bot-token"})),
        ("dingtalk", json!({"token": "SECdingtalk-signing-secret"})),
        ("gitea", json!({"token": "gitea-api-token"})),
        ("github", json!({"token": "github-api-token"})),
        ("gitlab", json!({"token": "gitlab-api-token"})),
        ("grafana", json!({"token": "glsa-grafana-token"})),
        ("bitbucket", json!({"token": "bitbucket-server-pat"})),
        ("azure", json!({"token": "azure-devops-pat"})),
        (
            "zulip",
            json!({"username": "flux-bot@zulip.lan", "password": "zulip-api-key"}),
        ),
        (
            "failing",
            json!({"token": "failing-provider-token", "address": format!("{base}/fail?key=failing-address-key")}),
        ),
    ] {
        create(
            &secrets,
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": n}, "stringData": data}),
        )
        .await;
    }
    let providers: Api<Provider> = Api::namespaced(client.clone(), &n);
    for (name, spec, annotations) in [
        (
            "generic",
            json!({"type": "generic-hmac", "address": format!("{base}/generic"), "secretRef": {"name": "hmac"}}),
            json!({}),
        ),
        (
            "slack",
            json!({"type": "slack", "channel": "#flux", "secretRef": {"name": "slack"}}),
            json!({}),
        ),
        (
            "teams",
            json!({"type": "msteams", "address": format!("{base}/teams")}),
            json!({}),
        ),
        (
            "telegram",
            json!({"type": "telegram", "channel": "-100123", "address": format!("{base}/tg"), "secretRef": {"name": "telegram"}}),
            json!({}),
        ),
        (
            "matrix",
            json!({"type": "matrix", "channel": "!room:lan", "address": format!("{base}/matrix"), "secretRef": {"name": "telegram"}}),
            json!({}),
        ),
        (
            "lark",
            json!({"type": "lark", "address": format!("{base}/lark")}),
            json!({}),
        ),
        (
            "discord",
            json!({"type": "discord", "address": format!("{base}/discord/1/abc")}),
            json!({}),
        ),
        (
            "googlechat",
            json!({"type": "googlechat", "address": format!("{base}/gchat")}),
            json!({}),
        ),
        (
            "alertmanager",
            json!({"type": "alertmanager", "address": format!("{base}/am/api/v2/alerts")}),
            json!({}),
        ),
        // On Flux's CRD (no `dingtalk` type): generic with sluice's format annotation.
        (
            "dingtalk",
            json!({"type": "generic", "address": format!("{base}/robot/send?access_token=room"), "secretRef": {"name": "dingtalk"}}),
            json!({"notification.sluice.dev/format": "dingtalk"}),
        ),
        (
            "wecom",
            json!({"type": "wecom", "address": format!("{base}/cgi-bin/webhook/send?key=k")}),
            json!({}),
        ),
        (
            "gitea",
            json!({"type": "gitea", "address": format!("{base}/home/ops.git"), "secretRef": {"name": "gitea"}}),
            json!({}),
        ),
        (
            "github",
            json!({"type": "github", "address": format!("{base}/home/ops"), "secretRef": {"name": "github"},
                "commitStatusExpr": "'flux/' + event.involvedObject.name.upperAscii() + '/' + alert.metadata.name"}),
            json!({}),
        ),
        (
            "gitlab",
            json!({"type": "gitlab", "address": format!("{base}/home/infra/ops.git"), "secretRef": {"name": "gitlab"}}),
            json!({}),
        ),
        (
            "failing",
            json!({"type": "generic", "timeout": "5s", "secretRef": {"name": "failing"}}),
            json!({}),
        ),
        (
            "muted",
            json!({"type": "generic", "address": format!("{base}/muted"), "suspend": true}),
            json!({}),
        ),
        (
            "pager",
            json!({"type": "sentry", "address": format!("{base}/pager")}),
            json!({}),
        ),
        // PagerDuty's Events API at the address's host; Grafana's annotations with a token;
        // Zulip's messages API, a form with the bot's email and key.
        (
            "pagerduty",
            json!({"type": "pagerduty", "address": format!("{base}/ignored"), "channel": "routing-key"}),
            json!({}),
        ),
        (
            "grafana",
            json!({"type": "grafana", "address": format!("{base}/grafana/api/annotations/graphite"), "secretRef": {"name": "grafana"}}),
            json!({}),
        ),
        (
            "zulip",
            json!({"type": "zulip", "address": base.clone(), "channel": "flux/home", "secretRef": {"name": "zulip"}}),
            json!({}),
        ),
        (
            "bitbucket",
            json!({"type": "bitbucketserver", "address": format!("{base}/bb/scm/HOME/ops.git"), "secretRef": {"name": "bitbucket"}}),
            json!({}),
        ),
        (
            "azure",
            json!({"type": "azuredevops", "address": format!("{base}/home/Home%20Lab/_git/ops"), "secretRef": {"name": "azure"}}),
            json!({}),
        ),
    ] {
        create(
            &providers,
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": name, "namespace": n, "annotations": annotations}, "spec": spec}),
        )
        .await;
    }
    let alerts: Api<Alert> = Api::namespaced(client.clone(), &n);
    let all = json!([{"kind": "Kustomization", "name": "*"}]);
    for (name, spec) in [
        (
            "generic",
            json!({"providerRef": {"name": "generic"}, "eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {"team": "web"}}],
            "eventMetadata": {"cluster": "edge-1"}}),
        ),
        (
            "slack",
            json!({"providerRef": {"name": "slack"}, "eventSeverity": "error", "eventSources": all}),
        ),
        (
            "teams",
            json!({"providerRef": {"name": "teams"}, "eventSources": all, "exclusionList": ["^Dependencies"]}),
        ),
        (
            "telegram",
            json!({"providerRef": {"name": "telegram"}, "eventSources": all, "inclusionList": ["failed"]}),
        ),
        (
            "matrix",
            json!({"providerRef": {"name": "matrix"}, "eventSources": all}),
        ),
        (
            "lark",
            json!({"providerRef": {"name": "lark"}, "eventSources": all}),
        ),
        (
            "discord",
            json!({"providerRef": {"name": "discord"}, "eventSources": all}),
        ),
        (
            "googlechat",
            json!({"providerRef": {"name": "googlechat"}, "eventSources": all}),
        ),
        (
            "alertmanager",
            json!({"providerRef": {"name": "alertmanager"}, "eventSources": all}),
        ),
        (
            "dingtalk",
            json!({"providerRef": {"name": "dingtalk"}, "eventSources": all}),
        ),
        (
            "wecom",
            json!({"providerRef": {"name": "wecom"}, "eventSources": all}),
        ),
        (
            "gitea",
            json!({"providerRef": {"name": "gitea"}, "eventSources": all}),
        ),
        (
            "github",
            json!({"providerRef": {"name": "github"}, "eventSources": all}),
        ),
        (
            "gitlab",
            json!({"providerRef": {"name": "gitlab"}, "eventSources": all}),
        ),
        (
            "failing",
            json!({"providerRef": {"name": "failing"}, "eventSources": all}),
        ),
        (
            "muted",
            json!({"providerRef": {"name": "muted"}, "eventSources": all}),
        ),
        (
            "pager",
            json!({"providerRef": {"name": "pager"}, "eventSources": all}),
        ),
        (
            "pagerduty",
            json!({"providerRef": {"name": "pagerduty"}, "eventSeverity": "error", "eventSources": all}),
        ),
        (
            "grafana",
            json!({"providerRef": {"name": "grafana"}, "eventSeverity": "error", "eventSources": all}),
        ),
        (
            "zulip",
            json!({"providerRef": {"name": "zulip"}, "eventSeverity": "error", "eventSources": all}),
        ),
        (
            "bitbucket",
            json!({"providerRef": {"name": "bitbucket"}, "eventSeverity": "error", "eventSources": all}),
        ),
        (
            "azure",
            json!({"providerRef": {"name": "azure"}, "eventSeverity": "error", "eventSources": all, "summary": "home"}),
        ),
        (
            "other-ns",
            json!({"providerRef": {"name": "generic"}, "eventSources": [{"kind": "Kustomization", "name": "*", "namespace": "elsewhere"}]}),
        ),
        (
            "suspended",
            json!({"providerRef": {"name": "generic"}, "suspend": true, "eventSources": all}),
        ),
    ] {
        create(
            &alerts,
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": name, "namespace": n}, "spec": spec}),
        )
        .await;
    }
    let kss: Api<Kustomization> = Api::namespaced(client.clone(), &n);
    for (name, team) in [("web", "web"), ("db", "data")] {
        create(&kss, json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": n, "labels": {"team": team},
                "annotations": {"event.toolkit.fluxcd.io/env": "home"}},
            "spec": {"interval": "1h", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}}})).await;
    }
    let web = kss.get("web").await.unwrap();
    let db = kss.get("db").await.unwrap();

    // sluice's controllers publish through the runtime's Recorder, which hands the dispatcher
    // each event in process (and writes the Kubernetes Event).
    let (recorder, events_addr, stop, task) = crate::notifier(&client, &n).await;
    let publish = |ks: &Kustomization, severity: &'static str, reason: &str, message: &str| {
        let event = match severity {
            "error" => sluice_runtime::Event::warning(reason.to_string(), message),
            _ => sluice_runtime::Event::normal(reason.to_string(), message),
        };
        let (recorder, ks, rev) = (recorder.clone(), ks.clone(), format!("main@sha1:{SHA}"));
        async move {
            recorder.publish(&ks, Some(&rev), &[event]).await;
        }
    };

    // An error about `web`, handed over in process.
    let rev = format!("main@sha1:{SHA}");
    publish(
        &web,
        "error",
        "HealthCheckFailed",
        "Health check failed after 5m0s: Deployment/web/web: 0/1 ready",
    )
    .await;

    // The generic-hmac Provider: Flux's event, metadata combined, signed with the raw token.
    let got = sink.wait("/generic", 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let g = &got[0];
    let body = g.json();
    assert_eq!(body["involvedObject"]["name"], "web");
    assert_eq!(
        body["metadata"],
        json!({"cluster": "edge-1", "env": "home", "revision": rev})
    );
    assert_eq!(g.headers["gotk-component"], "kustomize-controller");
    assert_eq!(g.headers["x-team"], "web");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hmac-key-1234\n").unwrap();
    mac.update(g.body.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(g.headers["x-signature"], format!("sha256={sig}"));

    // Slack (error alerts only) with the token; Telegram through its Bot API path; DingTalk
    // signed; Gitea's commit status.
    let slack = sink.wait("/slack", 1).await;
    assert_eq!(slack[0].path, "/slack/T0/B0/xyz-webhook-secret");
    assert_eq!(slack[0].headers["authorization"], "Bearer xoxb-slack-token");
    assert_eq!(slack[0].json()["attachments"][0]["color"], "danger");
    assert_eq!(slack[0].json()["channel"], "#flux");
    let pd = sink.wait("/v2/enqueue", 1).await;
    assert_eq!(pd[0].json()["routing_key"], "routing-key");
    assert_eq!(pd[0].json()["event_action"], "trigger");
    assert_eq!(
        pd[0].json()["payload"]["summary"],
        "health check failed: kustomization/web"
    );
    let grafana = sink.wait("/grafana", 1).await;
    assert_eq!(
        grafana[0].headers["authorization"],
        "Bearer glsa-grafana-token"
    );
    assert_eq!(grafana[0].json()["text"], format!("kustomization/web.{n}"));
    let zulip = sink.wait("/api/v1/messages", 1).await;
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(zulip[0].body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["to"], "flux");
    assert_eq!(form["topic"], "home");
    assert!(form["content"].contains("Health check failed after 5m0s"));
    // Bitbucket Server: the status looked up by its key (404: none), then posted.
    let bb = sink.wait("/bb/", 2).await;
    assert_eq!(bb.len(), 2, "{bb:?}");
    let builds = format!("/bb/rest/api/latest/projects/HOME/repos/ops/commits/{SHA}/builds");
    assert_eq!(
        (bb[0].method.as_str(), bb[0].path.as_str()),
        ("GET", builds.as_str())
    );
    assert!(bb[0].query.starts_with("key="), "{:?}", bb[0].query);
    assert_eq!(
        (bb[1].method.as_str(), bb[1].path.as_str()),
        ("POST", builds.as_str())
    );
    assert_eq!(bb[1].json()["state"], "FAILED");
    assert_eq!(bb[1].json()["key"], bb[0].query["key=".len()..]);
    assert_eq!(
        bb[1].headers["authorization"],
        "Bearer bitbucket-server-pat"
    );
    // Azure DevOps: the commit's statuses listed, then the status posted under Flux's genre
    // (with the Alert's summary), a PAT as Basic with no user.
    let ado = sink.wait("/home/Home%20Lab/_apis/", 2).await;
    assert_eq!(ado.len(), 2, "{ado:?}");
    let route = format!("/home/Home%20Lab/_apis/git/repositories/ops/commits/{SHA}/statuses");
    assert_eq!(
        (ado[0].method.as_str(), ado[0].path.as_str()),
        ("GET", route.as_str())
    );
    assert_eq!(
        (ado[1].method.as_str(), ado[1].path.as_str()),
        ("POST", route.as_str())
    );
    assert_eq!(ado[1].query, "api-version=6.0-preview.1");
    assert_eq!(ado[1].json()["context"]["genre"], "fluxcd:home");
    assert_eq!(ado[1].json()["state"], "error");
    assert_eq!(
        ado[1].headers["authorization"],
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(":azure-devops-pat")
        )
    );
    let tg = sink.wait("/tg", 1).await;
    assert_eq!(tg[0].path, "/tg/bot123456:telegram-bot-token/sendMessage");
    assert_eq!(tg[0].json()["parse_mode"], "MarkdownV2");
    let matrix = sink.wait("/matrix", 1).await;
    assert_eq!(matrix[0].method, "PUT");
    assert!(
        matrix[0]
            .path
            .starts_with("/matrix/_matrix/client/r0/rooms/!room:lan/send/m.room.message/")
    );
    let ding = sink.wait("/robot", 1).await;
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(ding[0].query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(q["access_token"], "room");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"SECdingtalk-signing-secret").unwrap();
    mac.update(format!("{}\nSECdingtalk-signing-secret", q["timestamp"]).as_bytes());
    assert_eq!(
        q["sign"],
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(ding[0].json()["msgtype"], "markdown");
    let wecom = sink.wait("/cgi-bin", 1).await;
    assert!(
        wecom[0].json()["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("<font color=\"warning\">Health check failed")
    );
    for prefix in [
        "/teams",
        "/lark",
        "/discord/1/abc/slack",
        "/gchat",
        "/am/api/v2/alerts",
    ] {
        assert_eq!(sink.wait(prefix, 1).await.len(), 1, "{prefix}");
    }
    assert_eq!(
        sink.to("/am")[0].json()[0]["labels"]["alertname"],
        "FluxKustomizationHealthcheckfailed"
    );
    let statuses = sink.wait("/api/v1/repos/home/ops/statuses", 1).await;
    // GitHub (an Enterprise address: `/api/v3`) and GitLab (the project path encoded).
    let gh = sink.wait("/api/v3/repos/home/ops/statuses", 1).await;
    assert_eq!(gh.len(), 1, "{:?}", sink.to("/api/v3"));
    assert_eq!(gh[0].headers["authorization"], "Bearer github-api-token");
    assert_eq!(gh[0].json()["state"], "failure");
    // Named by the Provider's spec.commitStatusExpr.
    assert_eq!(gh[0].json()["context"], "flux/WEB/github");
    assert_eq!(
        sink.to("/api/v3/repos/home/ops/commits")[0].query,
        "per_page=50"
    );
    let gl = sink
        .wait("/api/v4/projects/home%2Finfra%2Fops/statuses", 1)
        .await;
    assert_eq!(gl.len(), 1, "{:?}", sink.to("/api/v4"));
    assert_eq!(gl[0].headers["private-token"], "gitlab-api-token");
    assert_eq!(gl[0].json()["state"], "failed");
    let provider_uid = providers.get("gitea").await.unwrap().metadata.uid.unwrap();
    let context = format!(
        "kustomization/web/{}",
        provider_uid.split('-').next().unwrap()
    );
    assert_eq!(
        statuses[0].path,
        format!("/api/v1/repos/home/ops/statuses/{SHA}")
    );
    assert_eq!(
        statuses[0].headers["authorization"],
        "token gitea-api-token"
    );
    assert_eq!(
        statuses[0].json(),
        json!({"state": "failure", "target_url": "", "description": "health check failed", "context": context})
    );

    // The same event again within the interval: dropped (also over HTTP: 429).
    publish(
        &web,
        "error",
        "HealthCheckFailed",
        "Health check failed after 5m0s: Deployment/web/web: 0/1 ready",
    )
    .await;
    let flux_event = serde_json::to_vec(&ks_event(
        &web,
        "error",
        "HealthCheckFailed",
        "Health check failed after 5m0s: Deployment/web/web: 0/1 ready",
        &rev,
    ))
    .unwrap();
    assert_eq!(crate::post(events_addr, "/", &[], &flux_event).await, 429);

    // From Flux's controllers, over HTTP: "Reconciliation finished" about `db`, marked as a
    // commit status update as kustomize-controller marks it: it goes to the commit status and
    // generic Providers only (not `team: web`, so not to the generic Alert's).
    let mut finished = ks_event(
        &db,
        "info",
        "ReconciliationSucceeded",
        "Reconciliation finished in 2s, next run in 1h0m0s",
        &rev,
    );
    finished.metadata.insert(
        "kustomize.toolkit.fluxcd.io/commit_status".into(),
        "update".into(),
    );
    let finished = serde_json::to_vec(&finished).unwrap();
    assert_eq!(crate::post(events_addr, "/", &[], &finished).await, 202);
    assert_eq!(
        crate::post(events_addr, "/", &[], b"not an event").await,
        400
    );
    let statuses = sink.wait("/api/v1/repos/home/ops/statuses", 2).await;
    assert_eq!(statuses.len(), 2);
    let db_context = format!(
        "kustomization/db/{}",
        provider_uid.split('-').next().unwrap()
    );
    assert_eq!(statuses[1].json()["context"], db_context);
    assert_eq!(statuses[1].json()["state"], "success");
    assert_eq!(
        statuses[1].json()["description"],
        "reconciliation succeeded"
    );
    // An info event without a commit: the chats take it, the Teams Alert excludes it, Gitea
    // does not (no commit, not an update, not an error).
    publish(
        &db,
        "info",
        "DependencyNotReady",
        "Dependencies do not meet ready condition",
    )
    .await;
    assert_eq!(sink.wait("/lark", 2).await.len(), 2);
    // Everything has settled: count what each sink got.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.to("/generic").len(), 1);
    assert_eq!(sink.to("/slack").len(), 1);
    assert_eq!(sink.to("/tg").len(), 1);
    assert_eq!(sink.to("/teams").len(), 1);
    assert_eq!(sink.wait("/matrix", 2).await.len(), 2);
    assert_eq!(sink.to("/muted").len(), 0);
    assert_eq!(sink.to("/pager").len(), 0);
    // Error alerts: the later info events resolve nothing on PagerDuty.
    assert_eq!(sink.to("/v2/").len(), 1);
    assert_eq!(sink.to("/api/v1/repos/home/ops/statuses").len(), 2);

    // The same status again on another revision's event but identical status: the list
    // shows it, nothing is posted (Flux's duplicate check).
    publish(
        &web,
        "error",
        "HealthCheckFailed",
        "Health check failed after 6m0s",
    )
    .await;
    let lists_before = sink.to("/api/v1/repos/home/ops/commits").len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.to("/api/v1/repos/home/ops/commits").len() == lists_before
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.to("/api/v1/repos/home/ops/statuses").len(),
        2,
        "a duplicate status was posted"
    );

    // The failing Provider was tried again (502 is retried), then reported on its Alert; the
    // refused type is reported by name; no Secret value is in any event.
    assert!(sink.wait("/fail", 2).await.len() >= 2);
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), &n);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut failing, mut pager) = (None, None);
    while (failing.is_none() || pager.is_none()) && Instant::now() < deadline {
        for e in events.list(&ListParams::default()).await.unwrap() {
            let name = e.involved_object.name.clone().unwrap_or_default();
            if e.reason.as_deref() == Some("NotificationDispatchFailed") {
                // The failing Provider gets other events too (the update about `db`): the
                // one about `web` is looked for.
                let about_web = e
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains(&format!("Kustomization/{n}/web: ")));
                if name == "failing" && about_web {
                    failing = e.message.clone();
                } else if name == "pager" {
                    pager = e.message.clone();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failing = failing.expect("failure reported on the Alert");
    assert!(
        failing.starts_with(&format!(
            "failed to send notification for Kustomization/{n}/web: "
        )),
        "{failing}"
    );
    assert!(failing.contains("502"), "{failing}");
    let pager = pager.expect("refused type reported on the Alert");
    assert!(
        pager.contains("provider type 'sentry' is not supported by sluice yet"),
        "{pager}"
    );
    let all_events: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{:?}", e.message))
        .collect();
    for secret in [
        "hmac-key-1234",
        "xyz-webhook-secret",
        "xoxb-slack-token",
        "telegram-bot-token",
        "SECdingtalk",
        "gitea-api-token",
        "failing-provider-token",
        "github-api-token",
        "gitlab-api-token",
        "failing-address-key",
        "glsa-grafana-token",
        "zulip-api-key",
        "bitbucket-server-pat",
        "azure-devops-pat",
    ] {
        assert!(
            !all_events.iter().any(|m| m.contains(secret)),
            "{secret} in {all_events:?}"
        );
    }
    // Deliveries are recorded on the Alerts (what was sent where).
    assert!(
        all_events
            .iter()
            .any(|m| m.contains("sent HealthCheckFailed of Kustomization")),
        "{all_events:?}"
    );
    // And on the Providers (Flux's v1beta3 Provider has no status).
    let on_provider = events
        .list(
            &ListParams::default().fields("involvedObject.kind=Provider,involvedObject.name=slack"),
        )
        .await
        .unwrap();
    assert!(
        on_provider
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("NotificationSent")),
        "{:?}",
        on_provider.items
    );

    // A suspended Provider sends nothing; resumed, it does.
    providers
        .patch(
            "muted",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(&db, "info", "Progressing", "Applying revision").await;
    assert_eq!(sink.wait("/muted", 1).await.len(), 1);

    let _ = stop.send(());
    let _ = task.await;
    ns.delete().await;
}
