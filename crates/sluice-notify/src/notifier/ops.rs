//! Incident and observability tools: Grafana annotations, Opsgenie alerts, PagerDuty events
//! (and change events), incident.io alerts and Datadog events. Payloads as notification-
//! controller sends them: its structs' field order, or where it marshals a Go map (Opsgenie's
//! details, incident.io's metadata, Datadog's request) the keys sorted, as Go sorts them.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sluice_api::go_json::marshal;
use sluice_api::notification::ProviderType;

use super::{Delivery, Request};
use crate::event::{Event, hex};
use crate::provider::Target;

/// The requests for `event` to `target`, one of this module's types.
pub fn prepare(t: &Target, e: &Event) -> Result<Delivery, String> {
    match t.kind {
        ProviderType::Grafana => grafana(t, e).map(Delivery::Post),
        ProviderType::Opsgenie => opsgenie(t, e).map(Delivery::Post),
        ProviderType::Pagerduty => pagerduty(t, e).map(Delivery::Posts),
        ProviderType::IncidentIo => incident_io(t, e).map(Delivery::Post),
        ProviderType::Datadog => datadog(t, e).map(Delivery::Post),
        ref other => Err(format!("provider {} not supported", other.as_str())),
    }
}

/// Datadog's API when a `datadog` Provider has no address.
const DATADOG_API: &str = "https://api.datadoghq.com";

fn hook_url(address: &str, what: &str) -> Result<url::Url, String> {
    url::Url::parse(address).map_err(|e| format!("invalid {what} URL {address}: '{e}'"))
}

/// The event's time in seconds since the epoch.
fn unix_seconds(e: &Event) -> Result<i64, String> {
    e.timestamp
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|err| format!("invalid event timestamp {:?}: {err}", e.timestamp))
}

/// The event's time as Go's `time.RFC3339` prints a UTC time (no fraction).
fn rfc3339(e: &Event) -> Result<String, String> {
    e.timestamp
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .map_err(|err| format!("invalid event timestamp {:?}: {err}", e.timestamp))
}

/// `lower(kind)/name.namespace`.
fn object_name(e: &Event) -> String {
    let o = &e.involved_object;
    format!("{}/{}.{}", o.kind.to_lowercase(), o.name, o.namespace)
}

/// The event's metadata as a JSON object; none is Go's nil map, `null`.
fn metadata_json(e: &Event) -> Value {
    if e.metadata.is_empty() {
        Value::Null
    } else {
        json!(e.metadata)
    }
}

/// Grafana's annotations API (`/api/annotations/graphite`): tagged with `flux`, the
/// controller, the metadata and the object (`:` in them replaced by `|`), with a service
/// account token (Bearer) or else `username` and `password` (Basic).
fn grafana(t: &Target, e: &Event) -> Result<Request, String> {
    url::Url::parse(&t.address).map_err(|_| format!("invalid Grafana URL {}", t.address))?;
    let o = &e.involved_object;
    let mut tags = vec!["flux".to_string(), e.reporting_controller.clone()];
    for (k, v) in &e.metadata {
        tags.push(format!("{}: {}", k.replace(':', "|"), v.replace(':', "|")));
    }
    tags.push(format!("kind: {}", o.kind));
    tags.push(format!("name: {}", o.name));
    tags.push(format!("namespace: {}", o.namespace));
    let payload = json!({"when": unix_seconds(e)?, "text": object_name(e), "tags": tags});
    let mut r = Request::post_json(t.address.clone(), marshal(&payload));
    if !t.token.is_empty() {
        r.set("Authorization", format!("Bearer {}", t.token));
    } else if !t.username.is_empty() && !t.password.is_empty() {
        r.set("Authorization", super::basic_auth(&t.username, &t.password));
    }
    Ok(r)
}

/// Opsgenie's alerts API, with the API key (`GenieKey`). The alias (which Opsgenie
/// deduplicates on) is the SHA-256 of the Provider's uid, the object and the reason.
fn opsgenie(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "Opsgenie hook")?;
    if t.token.is_empty() {
        return Err("empty Opsgenie apikey/token".into());
    }
    let o = &e.involved_object;
    let mut details = e.metadata.clone();
    details.insert("severity".into(), e.severity.clone());
    let key = format!(
        "{}/{}/{}/{}/{}",
        t.provider_uid, o.kind, o.namespace, o.name, e.reason
    );
    let payload = json!({
        "message": format!("{}/{}", o.kind, o.name),
        "alias": hex(&Sha256::digest(key.as_bytes())),
        "description": e.message,
        "details": details,
    });
    let mut r = Request::post_json(t.address.clone(), marshal(&payload));
    r.set("Authorization", format!("GenieKey {}", t.token));
    Ok(r)
}

/// PagerDuty's Events API v2 at the address's host, with the routing key `spec.channel`: an
/// error triggers an incident (deduplicated on the object's uid), anything else resolves it
/// and is also sent as a change event.
fn pagerduty(t: &Target, e: &Event) -> Result<Vec<Request>, String> {
    let url = url::Url::parse(&t.address)
        .map_err(|err| format!("invalid PagerDuty endpoint URL {:?}: '{err}'", t.address))?;
    let endpoint = format!("{}://{}", url.scheme(), host_port(&url));
    let o = &e.involved_object;
    let name = format!("{}/{}", o.kind, o.name).to_lowercase();
    let description = super::commit::describe(&e.reason);
    let summary = format!("{description}: {name}");
    let source = format!("Flux {}", e.reporting_controller);
    let details = json!({"message": e.message, "metadata": metadata_json(e)});
    let mut event = Map::new();
    event.insert("routing_key".into(), t.channel.clone().into());
    let error = e.severity == "error";
    event.insert(
        "event_action".into(),
        if error { "trigger" } else { "resolve" }.into(),
    );
    if !o.uid.is_empty() {
        event.insert("dedup_key".into(), o.uid.clone().into());
    }
    if error {
        let mut payload = Map::new();
        payload.insert("summary".into(), summary.clone().into());
        payload.insert("source".into(), source.clone().into());
        payload.insert("severity".into(), "error".into());
        payload.insert("timestamp".into(), rfc3339(e)?.into());
        if !o.name.is_empty() {
            payload.insert("component".into(), o.name.clone().into());
        }
        if !o.kind.is_empty() {
            payload.insert("group".into(), o.kind.clone().into());
        }
        payload.insert("custom_details".into(), details.clone());
        event.insert("payload".into(), Value::Object(payload));
    }
    let mut out = vec![Request::post_json(
        format!("{endpoint}/v2/enqueue"),
        marshal(&Value::Object(event)),
    )];
    if e.severity == "info" {
        let change = json!({
            "routing_key": t.channel,
            "payload": {
                "summary": summary,
                "source": source,
                "timestamp": rfc3339(e)?,
                "custom_details": details,
            },
        });
        out.push(Request::post_json(
            format!("{endpoint}/v2/change/enqueue"),
            marshal(&change),
        ));
    }
    Ok(out)
}

/// Go's `URL.Host`: the host, and the port when the address has one.
fn host_port(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// incident.io's HTTP alert source, with its token: firing on an error, resolved otherwise,
/// deduplicated on the object's uid.
fn incident_io(t: &Target, e: &Event) -> Result<Request, String> {
    hook_url(&t.address, "incident.io alert source")?;
    if t.token.is_empty() {
        return Err("empty incident.io API token".into());
    }
    let mut metadata = e.metadata.clone();
    metadata.insert("severity".into(), e.severity.clone());
    metadata.insert("reason".into(), e.reason.clone());
    if !e.reporting_controller.is_empty() {
        metadata.insert("reportingController".into(), e.reporting_controller.clone());
    }
    let mut payload = Map::new();
    payload.insert(
        "title".into(),
        format!("{}: {}", object_name(e), e.reason).into(),
    );
    payload.insert(
        "status".into(),
        if e.severity == "error" {
            "firing"
        } else {
            "resolved"
        }
        .into(),
    );
    payload.insert(
        "deduplication_key".into(),
        e.involved_object.uid.clone().into(),
    );
    if !e.message.is_empty() {
        payload.insert("description".into(), e.message.clone().into());
    }
    payload.insert("metadata".into(), json!(metadata));
    let mut r = Request::post_json(t.address.clone(), marshal(&Value::Object(payload)));
    r.set("Authorization", format!("Bearer {}", t.token));
    Ok(r)
}

/// Datadog's events API (`/api/v1/events` at the address's host), with the API key; tags
/// for the controller, the reason, the object and the metadata, lower-cased.
fn datadog(t: &Target, e: &Event) -> Result<Request, String> {
    if t.token.is_empty() {
        return Err("token cannot be empty".into());
    }
    // Datadog's client keeps its own server (US1) when the address gives no host.
    let address = if t.address.is_empty() {
        DATADOG_API
    } else {
        t.address.as_str()
    };
    let url = url::Url::parse(address)
        .map_err(|err| format!("failed to parse address {:?}: {err}", t.address))?;
    let o = &e.involved_object;
    let mut tags = vec![
        format!("flux_reporting_controller:{}", e.reporting_controller),
        format!("flux_reason:{}", e.reason),
        format!("kube_kind:{}", o.kind),
        format!("kube_name:{}", o.name),
        format!("kube_namespace:{}", o.namespace),
    ];
    tags.extend(e.metadata.iter().map(|(k, v)| format!("{k}:{v}")));
    let tags: Vec<String> = tags.iter().map(|t| t.to_lowercase()).collect();
    let payload = json!({
        "alert_type": if e.severity == "error" { "error" } else { "info" },
        "date_happened": unix_seconds(e)?,
        "source_type_name": "fluxcd",
        "tags": tags,
        "text": e.message,
        "title": format!("Events from the {} {}/{}", o.kind, o.name, o.namespace),
    });
    let mut r = Request::post_json(
        format!("{}://{}/api/v1/events", url.scheme(), host_port(&url)),
        marshal(&payload),
    );
    r.set("Accept", "application/json".into());
    r.set("DD-API-KEY", t.token.clone());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(severity: &str, reason: &str) -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": "HelmRelease", "namespace": "networking",
                "name": "traefik", "uid": "5f1c-uid"},
            "severity": severity,
            "timestamp": "2026-12-07T10:20:30Z",
            "message": "install retries exhausted: <nil> & more",
            "reason": reason,
            "metadata": {"revision": "34.0.0", "cluster": "edge:1"},
            "reportingController": "helm-controller",
        }))
        .unwrap()
    }

    fn target(kind: ProviderType, address: &str) -> Target {
        Target {
            kind,
            address: address.into(),
            provider_uid: "0a1b-provider".into(),
            ..Target::default()
        }
    }

    fn only(d: Delivery) -> Request {
        match d {
            Delivery::Post(r) => r,
            other => panic!("one request expected: {other:?}"),
        }
    }

    #[test]
    fn grafana_annotates_with_tags_and_either_authorization() {
        let mut t = target(
            ProviderType::Grafana,
            "http://grafana:3000/api/annotations/graphite",
        );
        t.username = "admin".into();
        t.password = "pw".into();
        let r = only(prepare(&t, &event("info", "InstallSucceeded")).unwrap());
        assert_eq!(
            r.body_text(),
            r#"{"when":1796638830,"text":"helmrelease/traefik.networking","tags":["flux","helm-controller","cluster: edge|1","revision: 34.0.0","kind: HelmRelease","name: traefik","namespace: networking"]}"#
        );
        assert_eq!(r.header("Authorization"), Some("Basic YWRtaW46cHc="));
        t.token = "glsa_token".into();
        let r = only(prepare(&t, &event("info", "InstallSucceeded")).unwrap());
        assert_eq!(r.header("Authorization"), Some("Bearer glsa_token"));
        t.address = "not a url".into();
        assert_eq!(
            prepare(&t, &event("info", "x")).unwrap_err(),
            "invalid Grafana URL not a url"
        );
    }

    #[test]
    fn opsgenie_aliases_by_provider_object_and_reason() {
        let mut t = target(ProviderType::Opsgenie, "https://api.opsgenie.com/v2/alerts");
        assert_eq!(
            prepare(&t, &event("error", "x")).unwrap_err(),
            "empty Opsgenie apikey/token"
        );
        t.token = "genie".into();
        let r = only(prepare(&t, &event("error", "UpgradeFailed")).unwrap());
        let alias = hex(&Sha256::digest(
            b"0a1b-provider/HelmRelease/networking/traefik/UpgradeFailed",
        ));
        assert_eq!(
            r.body_text(),
            format!(
                r#"{{"message":"HelmRelease/traefik","alias":"{alias}","description":"install retries exhausted: \u003cnil\u003e \u0026 more","details":{{"cluster":"edge:1","revision":"34.0.0","severity":"error"}}}}"#
            )
        );
        assert_eq!(r.header("Authorization"), Some("GenieKey genie"));
    }

    #[test]
    fn pagerduty_triggers_on_errors_and_resolves_with_a_change_event_otherwise() {
        let t = Target {
            channel: "routing-key".into(),
            ..target(ProviderType::Pagerduty, "https://events.pagerduty.com/x/y")
        };
        let Delivery::Posts(rs) = prepare(&t, &event("error", "UpgradeFailed")).unwrap() else {
            panic!("a sequence expected")
        };
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].url, "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(
            rs[0].body_text(),
            r#"{"routing_key":"routing-key","event_action":"trigger","dedup_key":"5f1c-uid","payload":{"summary":"upgrade failed: helmrelease/traefik","source":"Flux helm-controller","severity":"error","timestamp":"2026-12-07T10:20:30Z","component":"traefik","group":"HelmRelease","custom_details":{"message":"install retries exhausted: \u003cnil\u003e \u0026 more","metadata":{"cluster":"edge:1","revision":"34.0.0"}}}}"#
        );
        let Delivery::Posts(rs) = prepare(&t, &event("info", "UpgradeSucceeded")).unwrap() else {
            panic!("a sequence expected")
        };
        assert_eq!(rs.len(), 2);
        assert_eq!(
            rs[0].body_text(),
            r#"{"routing_key":"routing-key","event_action":"resolve","dedup_key":"5f1c-uid"}"#
        );
        assert_eq!(rs[1].url, "https://events.pagerduty.com/v2/change/enqueue");
        assert_eq!(
            rs[1].body_text(),
            r#"{"routing_key":"routing-key","payload":{"summary":"upgrade succeeded: helmrelease/traefik","source":"Flux helm-controller","timestamp":"2026-12-07T10:20:30Z","custom_details":{"message":"install retries exhausted: \u003cnil\u003e \u0026 more","metadata":{"cluster":"edge:1","revision":"34.0.0"}}}}"#
        );
        let local = Target {
            address: "http://127.0.0.1:8080/anything".into(),
            ..t
        };
        let Delivery::Posts(rs) = prepare(&local, &event("error", "x")).unwrap() else {
            panic!("a sequence expected")
        };
        assert_eq!(rs[0].url, "http://127.0.0.1:8080/v2/enqueue");
    }

    #[test]
    fn incident_io_fires_and_resolves_by_uid() {
        let mut t = target(
            ProviderType::IncidentIo,
            "https://api.incident.io/v2/alert_events/http/01",
        );
        assert_eq!(
            prepare(&t, &event("error", "x")).unwrap_err(),
            "empty incident.io API token"
        );
        t.token = "inc".into();
        let r = only(prepare(&t, &event("error", "UpgradeFailed")).unwrap());
        assert_eq!(
            r.body_text(),
            r#"{"title":"helmrelease/traefik.networking: UpgradeFailed","status":"firing","deduplication_key":"5f1c-uid","description":"install retries exhausted: \u003cnil\u003e \u0026 more","metadata":{"cluster":"edge:1","reason":"UpgradeFailed","reportingController":"helm-controller","revision":"34.0.0","severity":"error"}}"#
        );
        assert_eq!(r.header("Authorization"), Some("Bearer inc"));
    }

    #[test]
    fn datadog_posts_an_event_with_lowercased_tags() {
        let mut t = target(ProviderType::Datadog, "https://api.datadoghq.eu/ignored");
        assert_eq!(
            prepare(&t, &event("error", "x")).unwrap_err(),
            "token cannot be empty"
        );
        t.token = "dd-key".into();
        let r = only(prepare(&t, &event("error", "UpgradeFailed")).unwrap());
        assert_eq!(r.url, "https://api.datadoghq.eu/api/v1/events");
        assert_eq!(
            r.body_text(),
            r#"{"alert_type":"error","date_happened":1796638830,"source_type_name":"fluxcd","tags":["flux_reporting_controller:helm-controller","flux_reason:upgradefailed","kube_kind:helmrelease","kube_name:traefik","kube_namespace:networking","cluster:edge:1","revision:34.0.0"],"text":"install retries exhausted: \u003cnil\u003e \u0026 more","title":"Events from the HelmRelease traefik/networking"}"#
        );
        assert_eq!(r.header("DD-API-KEY"), Some("dd-key"));
        t.address.clear();
        let r = only(prepare(&t, &event("info", "x")).unwrap());
        assert_eq!(r.url, "https://api.datadoghq.com/api/v1/events");
    }
}
