//! Webhooks and chats: one request per notification.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use sluice_api::go_json::marshal;
use sluice_api::notification::ProviderType;

use super::{Check, Request};
use crate::event::{Event, hex};
use crate::provider::Target;

/// Where Telegram's Bot API is (sluice: `spec.address` replaces it, for a Bot API server of
/// one's own).
const TELEGRAM_API: &str = "https://api.telegram.org";
/// WeCom refuses markdown over this many bytes.
const WECOM_MAX_BYTES: usize = 4096;

/// The request for `event` to a chat or webhook `target`.
pub fn prepare(t: &Target, e: &Event, now_ms: i64) -> Result<Request, String> {
    match t.kind {
        ProviderType::Generic | ProviderType::GenericHmac => generic(t, e),
        ProviderType::Slack => slack(t, e),
        ProviderType::Discord => discord(t, e),
        ProviderType::Msteams => msteams(t, e),
        ProviderType::GoogleChat => googlechat(t, e),
        ProviderType::Telegram => telegram(t, e),
        ProviderType::Matrix => matrix(t, e),
        ProviderType::Lark => lark(t, e),
        ProviderType::Alertmanager => alertmanager(t, e),
        ProviderType::Dingtalk => dingtalk(t, e, now_ms),
        ProviderType::Wecom => wecom(t, e),
        ProviderType::Rocket => rocket(t, e),
        ProviderType::Webex => webex(t, e),
        ProviderType::Zulip => zulip(t, e),
        ProviderType::Zoom => zoom(t, e),
        ref other => Err(format!("provider {} not supported", other.as_str())),
    }
}

/// `lower(kind)/name.namespace`, as most of Flux's chat payloads name the object.
fn object_name(e: &Event) -> String {
    let o = &e.involved_object;
    format!("{}/{}.{}", o.kind.to_lowercase(), o.name, o.namespace)
}

fn is_error(e: &Event) -> bool {
    e.severity == "error"
}

fn emoji(e: &Event) -> &'static str {
    if is_error(e) { "🚨" } else { "💫" }
}

/// Go's `url.ParseRequestURI` as the notifiers use it: an absolute URL.
fn hook_url(address: &str, what: &str) -> Result<url::Url, String> {
    url::Url::parse(address).map_err(|e| format!("invalid {what} URL {address}: '{e}'"))
}

/// The event as Go marshals `eventv1.Event`.
pub fn event_json(e: &Event) -> String {
    marshal(&serde_json::to_value(e).unwrap_or_default())
}

fn generic(t: &Target, e: &Event) -> Result<Request, String> {
    url::Url::parse(&t.address).map_err(|err| format!("invalid hook URL {}: {err}", t.address))?;
    let body = event_json(e);
    let mut r = Request::post_json(t.address.clone(), body);
    r.set("Gotk-Component", e.reporting_controller.clone());
    for (k, v) in &t.headers {
        r.set(k, v.clone());
    }
    if t.kind == ProviderType::GenericHmac {
        if t.hmac_key.is_empty() {
            return Err("HMAC key is empty".into());
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&t.hmac_key).map_err(|e| e.to_string())?;
        mac.update(&r.body);
        r.set(
            "X-Signature",
            format!("sha256={}", hex(&mac.finalize().into_bytes())),
        );
    }
    Ok(r)
}

fn slack_payload(e: &Event, username: &str, channel: &str, fallback: bool) -> Value {
    let author = object_name(e);
    let fields: Vec<Value> = e
        .metadata
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": false}))
        .collect();
    let first_line = e.message.split('\n').next().unwrap_or_default();
    json!({
        "channel": channel,
        "username": if username.is_empty() { e.reporting_controller.as_str() } else { username },
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [{
            "fallback": if fallback { format!("{author}: {first_line}") } else { String::new() },
            "color": if is_error(e) { "danger" } else { "good" },
            "author_name": author,
            "text": e.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    })
}

fn slack(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "Slack hook")?;
    let mut r = Request::post_json(
        t.address.clone(),
        marshal(&slack_payload(e, &t.username, &t.channel, true)),
    );
    if !t.token.is_empty() {
        r.set("Authorization", format!("Bearer {}", t.token));
    }
    if t.address == "https://slack.com/api/chat.postMessage" {
        r.check = Check::SlackOk;
    }
    Ok(r)
}

fn discord(t: &Target, e: &Event) -> Result<Request, String> {
    let mut url = hook_url(&t.address, "Discord hook")?;
    let address = if t.address.ends_with("/slack") {
        t.address.clone()
    } else {
        let path = format!("{}/slack", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.to_string()
    };
    Ok(Request::post_json(
        address,
        marshal(&slack_payload(e, &t.username, "", false)),
    ))
}

fn msteams(t: &Target, e: &Event) -> Result<Request, String> {
    let url = hook_url(&t.address, "MS Teams webhook")?;
    let name = object_name(e);
    let legacy = url
        .host_str()
        .is_some_and(|h| h.ends_with(".webhook.office.com"));
    let payload = if legacy {
        let facts: Vec<Value> = e
            .metadata
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": if is_error(e) { "FF0000" } else { "0076D7" },
            "summary": name,
            "sections": [{"activityTitle": e.message, "activitySubtitle": name, "facts": facts}],
        })
    } else {
        let mut message = Map::new();
        message.insert("type".into(), "TextBlock".into());
        message.insert("text".into(), e.message.clone().into());
        if is_error(e) {
            message.insert("color".into(), "attention".into());
        }
        message.insert("wrap".into(), true.into());
        // `summary` first, then the rest by key.
        let mut facts: Vec<Value> = e
            .metadata
            .get("summary")
            .map(|s| json!({"title": "summary", "value": s}))
            .into_iter()
            .collect();
        facts.extend(
            e.metadata
                .iter()
                .filter(|(k, _)| *k != "summary")
                .map(|(k, v)| json!({"title": k, "value": v})),
        );
        let mut fact_set = Map::new();
        fact_set.insert("type".into(), "FactSet".into());
        if !facts.is_empty() {
            fact_set.insert("facts".into(), facts.into());
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "Container", "items": [
                        {"type": "TextBlock", "text": name, "size": "large", "weight": "bolder", "wrap": true},
                        Value::Object(message),
                        Value::Object(fact_set),
                    ]}],
                    "msteams": {"width": "Full"},
                },
            }],
        })
    };
    Ok(Request::post_json(t.address.clone(), marshal(&payload)))
}

fn googlechat(t: &Target, e: &Event) -> Result<Request, String> {
    url::Url::parse(&t.address)
        .map_err(|_| format!("invalid Google Chat hook URL {}", t.address))?;
    let text = if is_error(e) {
        format!("<font color=\"#ff0000\">{}</font>", e.message)
    } else {
        e.message.clone()
    };
    let mut sections = vec![json!({
        "header": "",
        "widgets": [{"textParagraph": {"text": text}, "keyValue": null}],
    })];
    if !e.metadata.is_empty() {
        let widgets: Vec<Value> = e
            .metadata
            .iter()
            .map(|(k, v)| {
                json!({"textParagraph": null, "keyValue": {
                    "topLabel": k, "content": v, "contentMultiline": false,
                    "bottomLabel": null, "icon": null,
                }})
            })
            .collect();
        sections.push(json!({"header": "", "widgets": widgets}));
    }
    let payload = json!({"cards": [{
        "header": {"title": object_name(e), "subtitle": e.reporting_controller,
                   "imageUrl": null, "imageStyle": null},
        "sections": sections,
    }]});
    Ok(Request::post_json(t.address.clone(), marshal(&payload)))
}

/// Telegram's MarkdownV2 escapes, as Flux applies them.
fn telegram_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.-_[]()~>`#+=|{}!*".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn telegram(t: &Target, e: &Event) -> Result<Request, String> {
    if t.channel.is_empty() {
        return Err("empty Telegram channel".into());
    }
    if t.token.is_empty() {
        return Err("empty Telegram token".into());
    }
    let o = &e.involved_object;
    let heading = format!(
        "{} {}/{}/{}",
        emoji(e),
        o.kind.to_lowercase(),
        o.name,
        o.namespace
    );
    let mut text = format!(
        "*{}*\n{}\n",
        telegram_escape(&heading),
        telegram_escape(&e.message)
    );
    for (k, v) in &e.metadata {
        text.push_str(&format!(
            "\\- *{}*: {}\n",
            telegram_escape(k),
            telegram_escape(v)
        ));
    }
    let (chat, thread) = match t.channel.split_once(':') {
        Some((c, th)) => (c, Some(th)),
        None => (t.channel.as_str(), None),
    };
    let mut payload = Map::new();
    payload.insert("chat_id".into(), chat.into());
    if let Some(th) = thread.filter(|th| !th.is_empty()) {
        payload.insert("message_thread_id".into(), th.into());
    }
    payload.insert("text".into(), text.into());
    payload.insert("parse_mode".into(), "MarkdownV2".into());
    let base = if t.address.is_empty() {
        TELEGRAM_API
    } else {
        t.address.trim_end_matches('/')
    };
    Ok(Request::post_json(
        format!("{base}/bot{}/sendMessage", t.token),
        marshal(&Value::Object(payload)),
    ))
}

fn matrix(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "Matrix homeserver")?;
    use sha1::Digest;
    let txn = hex(&sha1::Sha1::digest(event_json(e).as_bytes()));
    let mut body = format!("{} {}\n{}\n", emoji(e), object_name(e), e.message);
    for (k, v) in &e.metadata {
        body.push_str(&format!("- {k}: {v}\n"));
    }
    let mut r = Request::post_json(
        format!(
            "{}/_matrix/client/r0/rooms/{}/send/m.room.message/{txn}",
            t.address, t.channel
        ),
        marshal(&json!({"body": body, "msgtype": "m.text"})),
    );
    r.method = "PUT";
    r.set("Authorization", format!("Bearer {}", t.token));
    Ok(r)
}

fn lark(t: &Target, e: &Event) -> Result<Request, String> {
    url::Url::parse(&t.address).map_err(|_| format!("invalid Slack hook URL {}", t.address))?;
    let mut content = format!("**{}**\n\n", e.message);
    for (k, v) in &e.metadata {
        content.push_str(&format!("{k}: {v}\n"));
    }
    let payload = json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "title": {"tag": "plain_text", "content": format!("{} {}", emoji(e), object_name(e))},
                "template": if is_error(e) { "red" } else { "turquoise" },
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
        },
    });
    Ok(Request::post_json(t.address.clone(), marshal(&payload)))
}

/// x/text's `cases.Title`: each word's first letter upper-cased, the rest lower-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

fn alertmanager(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "Alertmanager")?;
    let mut labels = e.metadata.clone();
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert("message".to_string(), e.message.clone());
    if let Some(summary) = labels.remove("summary") {
        annotations.insert("summary".to_string(), summary);
    }
    let o = &e.involved_object;
    for (k, v) in [
        ("alertname", format!("Flux{}{}", o.kind, title(&e.reason))),
        ("severity", e.severity.clone()),
        ("reason", e.reason.clone()),
        ("kind", o.kind.clone()),
        ("name", o.name.clone()),
        ("namespace", o.namespace.clone()),
        ("reportingcontroller", e.reporting_controller.clone()),
    ] {
        labels.insert(k.to_string(), v);
    }
    let payload = json!([{
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": e.timestamp,
        "endsAt": "0001-01-01T00:00:00Z",
    }]);
    let mut r = Request::post_json(t.address.clone(), marshal(&payload));
    if !t.username.is_empty() && !t.password.is_empty() {
        r.set("Authorization", super::basic_auth(&t.username, &t.password));
    } else if !t.token.is_empty() {
        r.set("Authorization", format!("Bearer {}", t.token));
    }
    Ok(r)
}

/// The markdown both robots get: a heading, the message, the metadata as a list.
fn robot_markdown(e: &Event, error_wrap: impl Fn(&str) -> String) -> String {
    let mut text = format!("#### {} {}\n\n", emoji(e), object_name(e));
    let message = if is_error(e) {
        error_wrap(&e.message)
    } else {
        e.message.clone()
    };
    text.push_str(&message);
    text.push_str("\n\n");
    for (k, v) in &e.metadata {
        text.push_str(&format!("- **{k}**: {v}\n"));
    }
    text
}

/// DingTalk's custom robot: markdown, and with a secret (`token` in the Provider's Secret)
/// the signed URL (`&timestamp=<ms>&sign=<base64 HMAC-SHA256 of "<ms>\n<secret>">`).
fn dingtalk(t: &Target, e: &Event, now_ms: i64) -> Result<Request, String> {
    let mut url = hook_url(&t.address, "DingTalk robot")?;
    if !t.token.is_empty() {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(t.token.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(format!("{now_ms}\n{}", t.token).as_bytes());
        let sign = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        url.query_pairs_mut()
            .append_pair("timestamp", &now_ms.to_string())
            .append_pair("sign", &sign);
    }
    let payload = json!({
        "msgtype": "markdown",
        "markdown": {
            "title": format!("{} {}", emoji(e), object_name(e)),
            "text": robot_markdown(e, |m| format!("**{m}**")),
        },
    });
    let mut r = Request::post_json(url.to_string(), marshal(&payload));
    r.check = Check::ErrCode;
    Ok(r)
}

/// WeCom's group robot: markdown, errors in its warning colour, cut to its 4096 bytes.
fn wecom(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "WeCom robot")?;
    let mut content = robot_markdown(e, |m| format!("<font color=\"warning\">{m}</font>"));
    if content.len() > WECOM_MAX_BYTES {
        let mut end = WECOM_MAX_BYTES - 4;
        while !content.is_char_boundary(end) {
            end -= 1;
        }
        content.truncate(end);
        content.push_str(" ...");
    }
    let payload = json!({"msgtype": "markdown", "markdown": {"content": content}});
    let mut r = Request::post_json(t.address.clone(), marshal(&payload));
    r.check = Check::ErrCode;
    Ok(r)
}

/// Rocket.Chat's incoming webhook: Slack's payload with the username as given (none is
/// none) and Rocket.Chat's colours.
fn rocket(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "Rocket hook")?;
    let mut payload = slack_payload(e, &t.username, &t.channel, false);
    payload["username"] = t.username.clone().into();
    payload["attachments"][0]["color"] = if is_error(e) { "#FF0000" } else { "#0076D7" }.into();
    Ok(Request::post_json(t.address.clone(), marshal(&payload)))
}

/// Webex's messages API: markdown to the room `spec.channel`, with the bot's token.
fn webex(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "Webex hook")?;
    let mark = if is_error(e) { "💣" } else { "✅" };
    let mut markdown = format!("{mark} **{}**\n{}\n", object_name(e), e.message);
    for (k, v) in &e.metadata {
        markdown.push_str(&format!(">**{k}**: {v}\n"));
    }
    let mut payload = Map::new();
    if !t.channel.is_empty() {
        payload.insert("roomId".into(), t.channel.clone().into());
    }
    payload.insert("markdown".into(), markdown.into());
    let mut r = Request::post_json(t.address.clone(), marshal(&Value::Object(payload)));
    r.set("Authorization", format!("Bearer {}", t.token));
    Ok(r)
}

/// The markdown Flux posts where a renderer takes a whole post (Zulip): a heading, the object,
/// the message, the metadata sorted (a change request's id left out).
fn markdown_post(e: &Event) -> String {
    let mark = if is_error(e) { "⚠️" } else { "ℹ️" };
    let o = &e.involved_object;
    let mut metadata = String::new();
    for (k, v) in e.metadata.iter().filter(|(k, _)| *k != "change_request") {
        metadata.push_str(&format!("* `{k}`: {v}\n"));
    }
    format!(
        "## Flux Status\n\n{mark} {}/{}/{}\n\n{}\n\nMetadata:\n{metadata}",
        o.kind, o.namespace, o.name, e.message
    )
}

/// Zulip's messages API: a form posted with the bot's email and API key (`username` and
/// `password`) to the stream and topic `spec.channel` names (`<stream>/<topic>`).
fn zulip(t: &Target, e: &Event) -> Result<Request, String> {
    let mut url =
        url::Url::parse(&t.address).map_err(|err| format!("invalid Zulip endpoint URL: {err}"))?;
    url.set_path("/api/v1/messages");
    let (stream, topic) = t
        .channel
        .split_once('/')
        .filter(|(s, topic)| !s.is_empty() && !topic.is_empty())
        .ok_or_else(|| {
            format!(
                "invalid Zulip channel format, expected <channel>/<topic>, got '{}'",
                t.channel
            )
        })?;
    let content = markdown_post(e);
    // Go's `url.Values.Encode`: keys sorted.
    let form = [
        ("content", content.as_str()),
        ("to", stream),
        ("topic", topic),
        ("type", "stream"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", super::query_escape(v)))
    .collect::<Vec<_>>()
    .join("&");
    let mut r = Request::post_json(url.to_string(), form);
    r.set("Content-Type", "application/x-www-form-urlencoded".into());
    if !t.username.is_empty() || !t.password.is_empty() {
        r.set("Authorization", super::basic_auth(&t.username, &t.password));
    }
    Ok(r)
}

/// Zoom Team Chat's incoming webhook (`format=full`), with its verification token.
fn zoom(t: &Target, e: &Event) -> Result<Request, String> {
    let mut url = hook_url(&t.address, "Zoom incoming webhook")?;
    if t.token.is_empty() {
        return Err("empty Zoom verification token".into());
    }
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if !pairs.iter().any(|(k, v)| k == "format" && !v.is_empty()) {
        // Go's `url.Values.Encode`: keys sorted (a key's values in their order), escaped.
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(k, _)| k != "format").collect();
        pairs.push(("format".into(), "full".into()));
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", super::query_escape(k), super::query_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&query));
    }
    let mut body = vec![{
        let mut m = Map::new();
        m.insert("type".into(), "message".into());
        if !e.message.is_empty() {
            m.insert("text".into(), e.message.clone().into());
        }
        Value::Object(m)
    }];
    if !e.metadata.is_empty() {
        let items: Vec<Value> = e
            .metadata
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        body.push(json!({"type": "fields", "items": items}));
    }
    let payload = json!({"content": {
        "head": {"text": object_name(e), "sub_head": {"text": e.severity}},
        "body": body,
    }});
    let mut r = Request::post_json(url.to_string(), marshal(&payload));
    r.set("Authorization", t.token.clone());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(severity: &str) -> Event {
        let mut e: Event = serde_json::from_value(serde_json::json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps",
                "uid": "7b1a", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": severity, "timestamp": "2026-12-03T06:00:00Z",
            "message": "Health check failed after 5m0s: <Deployment/apps/web> & more",
            "reason": "HealthCheckFailed",
            "metadata": {"revision": "main@sha1:0123456789abcdef0123456789abcdef01234567", "summary": "edge-1"},
            "reportingController": "kustomize-controller", "reportingInstance": "sluice-0"
        }))
        .unwrap();
        e.metadata.insert("env".into(), "home".into());
        e
    }

    fn target(kind: ProviderType, address: &str) -> Target {
        Target {
            kind,
            address: address.into(),
            ..Target::default()
        }
    }

    #[test]
    fn generic_is_fluxs_event_with_gos_escapes() {
        let mut t = target(ProviderType::Generic, "http://sink/hook");
        t.headers.insert("X-Team".into(), "web".into());
        let r = prepare(&t, &event("error"), 0).unwrap();
        assert_eq!(
            r.body_text(),
            r#"{"involvedObject":{"kind":"Kustomization","namespace":"flux-system","name":"apps","uid":"7b1a","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"error","timestamp":"2026-12-03T06:00:00Z","message":"Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more","reason":"HealthCheckFailed","metadata":{"env":"home","revision":"main@sha1:0123456789abcdef0123456789abcdef01234567","summary":"edge-1"},"reportingController":"kustomize-controller","reportingInstance":"sluice-0"}"#
        );
        assert!(
            r.headers
                .contains(&("Gotk-Component".into(), "kustomize-controller".into()))
        );
        assert!(r.headers.contains(&("X-Team".into(), "web".into())));
        assert!(!r.headers.iter().any(|(k, _)| k == "X-Signature"));
    }

    #[test]
    fn generic_hmac_signs_the_body_with_the_token() {
        let mut t = target(ProviderType::GenericHmac, "http://sink/hook");
        assert_eq!(
            prepare(&t, &event("info"), 0).unwrap_err(),
            "HMAC key is empty"
        );
        t.hmac_key = b"s3cr3t\n".to_vec();
        let r = prepare(&t, &event("info"), 0).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t\n").unwrap();
        mac.update(&r.body);
        let want = format!("sha256={}", hex(&mac.finalize().into_bytes()));
        assert!(r.headers.contains(&("X-Signature".into(), want)));
    }

    #[test]
    fn slack_and_discord() {
        let mut t = target(
            ProviderType::Slack,
            "https://hooks.slack.com/services/T/B/x",
        );
        t.channel = "#flux".into();
        t.token = "xoxb".into();
        let r = prepare(&t, &event("error"), 0).unwrap();
        assert_eq!(
            r.body_text(),
            r##"{"channel":"#flux","username":"kustomize-controller","icon_url":"","icon_emoji":"","attachments":[{"fallback":"kustomization/apps.flux-system: Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more","color":"danger","author_name":"kustomization/apps.flux-system","text":"Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more","mrkdwn_in":["text"],"fields":[{"title":"env","value":"home","short":false},{"title":"revision","value":"main@sha1:0123456789abcdef0123456789abcdef01234567","short":false},{"title":"summary","value":"edge-1","short":false}]}]}"##
        );
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Bearer xoxb".into()))
        );
        assert_eq!(r.check, Check::Status);
        let api = target(
            ProviderType::Slack,
            "https://slack.com/api/chat.postMessage",
        );
        assert_eq!(
            prepare(&api, &event("info"), 0).unwrap().check,
            Check::SlackOk
        );

        let d = prepare(
            &target(
                ProviderType::Discord,
                "https://discord.com/api/webhooks/1/abc",
            ),
            &event("info"),
            0,
        )
        .unwrap();
        assert_eq!(d.url, "https://discord.com/api/webhooks/1/abc/slack");
        assert!(d.body_text().starts_with(r#"{"channel":"","username":"kustomize-controller","icon_url":"","icon_emoji":"","attachments":[{"fallback":"","color":"good","#));
    }

    #[test]
    fn msteams_chooses_the_card_by_host() {
        let legacy = prepare(
            &target(
                ProviderType::Msteams,
                "https://org.webhook.office.com/webhookb2/x",
            ),
            &event("error"),
            0,
        )
        .unwrap();
        assert!(legacy.body_text().starts_with(r#"{"@type":"MessageCard","@context":"http://schema.org/extensions","themeColor":"FF0000","summary":"kustomization/apps.flux-system","sections":[{"activityTitle":"#));
        let card = prepare(
            &target(
                ProviderType::Msteams,
                "https://prod.westeurope.logic.azure.com/workflows/x",
            ),
            &event("error"),
            0,
        )
        .unwrap();
        assert_eq!(
            card.body_text(),
            r#"{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.4","body":[{"type":"Container","items":[{"type":"TextBlock","text":"kustomization/apps.flux-system","size":"large","weight":"bolder","wrap":true},{"type":"TextBlock","text":"Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more","color":"attention","wrap":true},{"type":"FactSet","facts":[{"title":"summary","value":"edge-1"},{"title":"env","value":"home"},{"title":"revision","value":"main@sha1:0123456789abcdef0123456789abcdef01234567"}]}]}],"msteams":{"width":"Full"}}}]}"#
        );
    }

    #[test]
    fn telegram_escapes_markdown_v2() {
        let mut t = target(ProviderType::Telegram, "");
        assert_eq!(
            prepare(&t, &event("info"), 0).unwrap_err(),
            "empty Telegram channel"
        );
        t.channel = "-100123:42".into();
        t.token = "123:ABC".into();
        let mut e = event("info");
        e.metadata.clear();
        e.metadata.insert("revision".into(), "main@sha1:abc".into());
        e.message = "Applied revision: main@sha1:abc".into();
        let r = prepare(&t, &e, 0).unwrap();
        assert_eq!(r.url, "https://api.telegram.org/bot123:ABC/sendMessage");
        assert_eq!(
            r.body_text(),
            r#"{"chat_id":"-100123","message_thread_id":"42","text":"*💫 kustomization/apps/flux\\-system*\nApplied revision: main@sha1:abc\n\\- *revision*: main@sha1:abc\n","parse_mode":"MarkdownV2"}"#
        );
    }

    #[test]
    fn matrix_puts_with_the_events_sha1_as_transaction() {
        let mut t = target(ProviderType::Matrix, "https://matrix.example.org");
        t.channel = "!room:example.org".into();
        t.token = "tok".into();
        let e = event("info");
        let r = prepare(&t, &e, 0).unwrap();
        use sha1::Digest;
        let txn = hex(&sha1::Sha1::digest(event_json(&e).as_bytes()));
        assert_eq!(
            r.url,
            format!(
                "https://matrix.example.org/_matrix/client/r0/rooms/!room:example.org/send/m.room.message/{txn}"
            )
        );
        assert_eq!(r.method, "PUT");
        assert!(
            r.body_text()
                .starts_with(r#"{"body":"💫 kustomization/apps.flux-system\nHealth check"#)
        );
        assert!(
            r.body_text()
                .ends_with(r#"- summary: edge-1\n","msgtype":"m.text"}"#)
        );
    }

    #[test]
    fn googlechat_lark_and_alertmanager() {
        let g = prepare(
            &target(ProviderType::GoogleChat, "https://chat.googleapis.com/v1/x"),
            &event("error"),
            0,
        )
        .unwrap();
        assert!(g.body_text().starts_with(r##"{"cards":[{"header":{"title":"kustomization/apps.flux-system","subtitle":"kustomize-controller","imageUrl":null,"imageStyle":null},"sections":[{"header":"","widgets":[{"textParagraph":{"text":"\u003cfont color=\"#ff0000\"\u003eHealth"##));
        let l = prepare(
            &target(
                ProviderType::Lark,
                "https://open.feishu.cn/open-apis/bot/v2/hook/x",
            ),
            &event("info"),
            0,
        )
        .unwrap();
        assert!(l.body_text().starts_with(r#"{"msg_type":"interactive","card":{"config":{"wide_screen_mode":true},"header":{"title":{"tag":"plain_text","content":"💫 kustomization/apps.flux-system"},"template":"turquoise"},"elements":[{"tag":"div","text":{"tag":"lark_md","content":"**Health check"#));
        let mut t = target(ProviderType::Alertmanager, "http://am:9093/api/v2/alerts");
        t.token = "tok".into();
        t.username = "u".into();
        t.password = "p".into();
        let a = prepare(&t, &event("error"), 0).unwrap();
        assert_eq!(
            a.body_text(),
            r#"[{"status":"firing","labels":{"alertname":"FluxKustomizationHealthcheckfailed","env":"home","kind":"Kustomization","name":"apps","namespace":"flux-system","reason":"HealthCheckFailed","reportingcontroller":"kustomize-controller","revision":"main@sha1:0123456789abcdef0123456789abcdef01234567","severity":"error"},"annotations":{"message":"Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more","summary":"edge-1"},"startsAt":"2026-12-03T06:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]"#
        );
        // Both given: only Basic, as Flux's second request modifier replaces the first.
        assert!(
            a.headers
                .contains(&("Authorization".into(), "Basic dTpw".into()))
        );
    }

    #[test]
    fn dingtalk_signs_the_url() {
        let mut t = target(
            ProviderType::Dingtalk,
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
        );
        t.token = "SECxyz".into();
        let r = prepare(&t, &event("error"), 1_700_000_000_000).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"SECxyz").unwrap();
        mac.update(b"1700000000000\nSECxyz");
        let sign = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let url = url::Url::parse(&r.url).unwrap();
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["access_token"], "abc");
        assert_eq!(q["timestamp"], "1700000000000");
        assert_eq!(q["sign"], sign);
        assert_eq!(r.check, Check::ErrCode);
        assert!(r.body_text().starts_with(r#####"{"msgtype":"markdown","markdown":{"title":"🚨 kustomization/apps.flux-system","text":"#### 🚨 kustomization/apps.flux-system\n\n**Health check"#####));
    }

    #[test]
    fn wecom_is_cut_to_its_limit() {
        let t = target(
            ProviderType::Wecom,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        );
        let mut e = event("error");
        e.message = "界".repeat(3000);
        let r = prepare(&t, &e, 0).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let content = v["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= WECOM_MAX_BYTES, "{}", content.len());
        assert!(
            content.starts_with(
                "#### 🚨 kustomization/apps.flux-system\n\n<font color=\"warning\">界"
            )
        );
        assert_eq!(v["msgtype"], "markdown");
    }

    #[test]
    fn title_case_as_x_text() {
        assert_eq!(title("HealthCheckFailed"), "Healthcheckfailed");
        assert_eq!(
            title("reconciliation succeeded"),
            "Reconciliation Succeeded"
        );
    }

    #[test]
    fn rocket_is_slacks_payload_in_rocket_chats_colours() {
        let mut t = target(ProviderType::Rocket, "https://chat.lan/hooks/abc/def");
        t.channel = "#ops".into();
        let r = prepare(&t, &event("error"), 0).unwrap();
        assert_eq!(
            r.body_text(),
            r##"{"channel":"#ops","username":"","icon_url":"","icon_emoji":"","attachments":[{"fallback":"","color":"#FF0000","author_name":"kustomization/apps.flux-system","text":"Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more","mrkdwn_in":["text"],"fields":[{"title":"env","value":"home","short":false},{"title":"revision","value":"main@sha1:0123456789abcdef0123456789abcdef01234567","short":false},{"title":"summary","value":"edge-1","short":false}]}]}"##
        );
        t.username = "flux".into();
        let r = prepare(&t, &event("info"), 0).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["username"], "flux");
        assert_eq!(v["attachments"][0]["color"], "#0076D7");
        t.address = "chat.lan/hooks".into();
        assert!(
            prepare(&t, &event("info"), 0)
                .unwrap_err()
                .starts_with("invalid Rocket hook URL chat.lan/hooks")
        );
    }

    #[test]
    fn webex_posts_markdown_to_the_room_with_the_bot_token() {
        let mut t = target(ProviderType::Webex, "https://webexapis.com/v1/messages");
        t.channel = "Y2lzY29zcGFyazovL3Vz".into();
        t.token = "bot-token".into();
        let r = prepare(&t, &event("error"), 0).unwrap();
        assert_eq!(
            r.body_text(),
            r#"{"roomId":"Y2lzY29zcGFyazovL3Vz","markdown":"💣 **kustomization/apps.flux-system**\nHealth check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more\n\u003e**env**: home\n\u003e**revision**: main@sha1:0123456789abcdef0123456789abcdef01234567\n\u003e**summary**: edge-1\n"}"#
        );
        assert_eq!(r.header("Authorization"), Some("Bearer bot-token"));
    }

    #[test]
    fn zulip_posts_a_form_to_the_stream_and_topic() {
        let mut t = target(ProviderType::Zulip, "https://zulip.lan/some/path?x=1");
        t.channel = "flux".into();
        assert_eq!(
            prepare(&t, &event("info"), 0).unwrap_err(),
            "invalid Zulip channel format, expected <channel>/<topic>, got 'flux'"
        );
        t.channel = "flux/home lab".into();
        t.username = "bot@zulip.lan".into();
        t.password = "api-key".into();
        let mut e = event("error");
        e.metadata.insert("change_request".into(), "42".into());
        let r = prepare(&t, &e, 0).unwrap();
        assert_eq!(r.url, "https://zulip.lan/api/v1/messages?x=1");
        assert_eq!(
            r.header("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            r.header("Authorization"),
            Some("Basic Ym90QHp1bGlwLmxhbjphcGkta2V5")
        );
        let content = "## Flux Status\n\n⚠️ Kustomization/flux-system/apps\n\nHealth check failed after 5m0s: <Deployment/apps/web> & more\n\nMetadata:\n* `env`: home\n* `revision`: main@sha1:0123456789abcdef0123456789abcdef01234567\n* `summary`: edge-1\n";
        assert_eq!(
            r.body_text(),
            format!(
                "content={}&to=flux&topic=home+lab&type=stream",
                super::super::query_escape(content)
            )
        );
        assert!(
            r.body_text()
                .starts_with("content=%23%23+Flux+Status%0A%0A%E2%9A%A0")
        );
    }

    #[test]
    fn zoom_asks_for_the_full_format_with_the_verification_token() {
        let mut t = target(
            ProviderType::Zoom,
            "https://integrations.zoom.us/chat/webhooks/incomingwebhook/abc?b=2&a=x y",
        );
        assert_eq!(
            prepare(&t, &event("info"), 0).unwrap_err(),
            "empty Zoom verification token"
        );
        t.token = "verify".into();
        let r = prepare(&t, &event("info"), 0).unwrap();
        assert_eq!(
            r.url,
            "https://integrations.zoom.us/chat/webhooks/incomingwebhook/abc?a=x+y&b=2&format=full"
        );
        assert_eq!(r.header("Authorization"), Some("verify"));
        assert_eq!(
            r.body_text(),
            r#"{"content":{"head":{"text":"kustomization/apps.flux-system","sub_head":{"text":"info"}},"body":[{"type":"message","text":"Health check failed after 5m0s: \u003cDeployment/apps/web\u003e \u0026 more"},{"type":"fields","items":[{"key":"env","value":"home"},{"key":"revision","value":"main@sha1:0123456789abcdef0123456789abcdef01234567"},{"key":"summary","value":"edge-1"}]}]}}"#
        );
        t.address = "https://zoom.us/hook?format=message".into();
        assert_eq!(
            prepare(&t, &event("info"), 0).unwrap().url,
            "https://zoom.us/hook?format=message"
        );
    }
}
