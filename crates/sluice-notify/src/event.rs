//! Flux's event (`event.toolkit.fluxcd.io/v1beta1` `Event`) as notification-controller receives
//! it, and what its event server does to one before any Alert sees it: the metadata cleaned,
//! the rate-limit key, and the metadata an Alert adds (RFC 0008's precedence). Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_api::notification::Alert;

/// The event group: metadata keys with this prefix come from the object's annotations.
pub const EVENT_GROUP: &str = "event.toolkit.fluxcd.io";

/// An object reference, with Go's field order and `omitempty` (as `corev1.ObjectReference`
/// marshals), so a forwarded event is the JSON Flux forwards.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

impl ObjectRef {
    /// The API group of `apiVersion` (empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or_default()
    }
}

/// Flux's event, field for field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub involved_object: ObjectRef,
    pub severity: String,
    /// RFC 3339, seconds.
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

impl From<sluice_runtime::FluxEvent> for Event {
    fn from(e: sluice_runtime::FluxEvent) -> Self {
        let o = e.involved_object;
        Event {
            involved_object: ObjectRef {
                kind: o.kind.unwrap_or_default(),
                namespace: o.namespace.unwrap_or_default(),
                name: o.name.unwrap_or_default(),
                uid: o.uid.unwrap_or_default(),
                api_version: o.api_version.unwrap_or_default(),
                resource_version: o.resource_version.unwrap_or_default(),
                field_path: o.field_path.unwrap_or_default(),
            },
            severity: e.severity.to_string(),
            timestamp: e.timestamp,
            message: e.message,
            reason: e.reason,
            metadata: e.metadata,
            reporting_controller: e.reporting_controller,
            reporting_instance: e.reporting_instance,
        }
    }
}

impl Event {
    /// `Kind/namespace/name`, as Flux names the involved object in its messages.
    pub fn object_string(&self) -> String {
        let o = &self.involved_object;
        format!("{}/{}/{}", o.kind, o.namespace, o.name)
    }

    /// A metadata value under the involved object's group (`<group>/<key>`).
    pub fn object_metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .get(&format!("{}/{key}", self.involved_object.group()))
            .map(String::as_str)
    }

    /// What the event server keeps of the metadata: only keys of the event group or of the
    /// object's group, without the object group's `checksum` and `digest` (Flux's
    /// `cleanupMetadata`), and without its `token` (`excludeInternalMetadata`, after the
    /// rate-limit key has used it: see [`Event::rate_key`]).
    pub fn clean_metadata(&mut self) {
        let event_prefix = format!("{EVENT_GROUP}/");
        let object_prefix = format!("{}/", self.involved_object.group());
        let excluded = [
            format!("{object_prefix}checksum"),
            format!("{object_prefix}digest"),
        ];
        self.metadata.retain(|k, _| {
            !excluded.iter().any(|x| x.eq_ignore_ascii_case(k))
                && (k.starts_with(&event_prefix) || k.starts_with(&object_prefix))
        });
    }

    /// Removes the object group's `token` (internal to the emitter; Flux's
    /// `excludeInternalMetadata`).
    pub fn drop_token(&mut self) {
        let key = format!("{}/token", self.involved_object.group());
        self.metadata.remove(&key);
    }

    /// The rate-limit key of Flux's event server (`eventKeyFunc`): the object's name,
    /// namespace and kind, the message, and its `originRevision`, `revision` and `token`
    /// metadata when present, hashed. The same event again within the interval is dropped.
    pub fn rate_key(&self) -> String {
        let o = &self.involved_object;
        let mut key = format!(
            "event/name={}/namespace={}/kind={}/message={}",
            o.name, o.namespace, o.kind, self.message
        );
        for (field, meta) in [
            ("originRevision", "originRevision"),
            ("revision", "revision"),
            ("token", "token"),
        ] {
            if let Some(v) = self.object_metadata(meta) {
                key.push_str(&format!("/{field}={v}"));
            }
        }
        hex(&Sha256::digest(key.as_bytes()))
    }

    /// The event as `alert` sends it: metadata combined as Flux's `combineEventMetadata`
    /// (RFC 0008), lowest precedence first: the event group's keys (from the object's
    /// annotations) without their prefix, the Alert's `eventMetadata`, its `summary` as
    /// `summary`, then the object group's keys without their prefix. Keys set by more than one
    /// source are returned (Flux warns about them with a `MetadataAppendFailed` event).
    pub fn for_alert(&self, alert: &Alert) -> (Event, Vec<String>) {
        let mut out = self.clone();
        let mut metadata = BTreeMap::new();
        let mut sources: BTreeMap<String, usize> = BTreeMap::new();
        let mut put = |k: &str, v: &str, metadata: &mut BTreeMap<String, String>| {
            metadata.insert(k.to_string(), v.to_string());
            *sources.entry(k.to_string()).or_default() += 1;
        };
        let event_prefix = format!("{EVENT_GROUP}/");
        for (k, v) in &self.metadata {
            if let Some(key) = k.strip_prefix(&event_prefix) {
                put(key, v, &mut metadata);
            }
        }
        for (k, v) in alert.spec.event_metadata.iter().flatten() {
            put(k, v, &mut metadata);
        }
        if let Some(summary) = alert.spec.summary.as_deref().filter(|s| !s.is_empty()) {
            put("summary", summary, &mut metadata);
        }
        let object_prefix = format!("{}/", self.involved_object.group());
        for (k, v) in &self.metadata {
            if let Some(key) = k.strip_prefix(&object_prefix) {
                put(key, v, &mut metadata);
            }
        }
        if !metadata.is_empty() {
            out.metadata = metadata;
        }
        let conflicts = sources
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k)
            .collect();
        (out, conflicts)
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        serde_json::from_value(serde_json::json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps",
                "uid": "u1", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": "error", "timestamp": "2026-12-03T06:00:00Z",
            "message": "Health check failed", "reason": "HealthCheckFailed",
            "metadata": {
                "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                "kustomize.toolkit.fluxcd.io/checksum": "x",
                "kustomize.toolkit.fluxcd.io/token": "t",
                "event.toolkit.fluxcd.io/env": "prod",
                "other.example.com/key": "dropped"
            },
            "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    #[test]
    fn the_json_is_fluxs() {
        let text = serde_json::to_string(&event()).unwrap();
        assert!(
            text.starts_with(r#"{"involvedObject":{"kind":"Kustomization","namespace":"flux-system","name":"apps","uid":"u1","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"error","timestamp":"2026-12-03T06:00:00Z","message":"Health check failed","reason":"HealthCheckFailed","metadata":{"#),
            "{text}"
        );
        assert!(text.ends_with(r#""reportingController":"kustomize-controller"}"#));
    }

    #[test]
    fn metadata_is_cleaned_as_the_event_server_does() {
        let mut e = event();
        e.clean_metadata();
        assert_eq!(
            e.metadata.keys().collect::<Vec<_>>(),
            [
                "event.toolkit.fluxcd.io/env",
                "kustomize.toolkit.fluxcd.io/revision",
                "kustomize.toolkit.fluxcd.io/token"
            ]
        );
        let key = e.rate_key();
        e.drop_token();
        assert!(!e.metadata.contains_key("kustomize.toolkit.fluxcd.io/token"));
        // The token took part in the key: without it the key differs.
        assert_ne!(key, e.rate_key());
        // sha256("event/name=apps/namespace=flux-system/kind=Kustomization/message=Health check failed/revision=main@sha1:abc")
        assert_eq!(
            e.rate_key(),
            hex(&Sha256::digest(
                b"event/name=apps/namespace=flux-system/kind=Kustomization/message=Health check failed/revision=main@sha1:abc"
            ))
        );
    }

    #[test]
    fn alert_metadata_has_rfc_0008_precedence() {
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "a", "namespace": "flux-system"},
            "spec": {"providerRef": {"name": "p"}, "eventSources": [{"kind": "Kustomization", "name": "*"}],
                     "eventMetadata": {"env": "staging", "cluster": "edge-1", "revision": "mine"},
                     "summary": "home cluster"}
        }))
        .unwrap();
        let mut e = event();
        e.clean_metadata();
        e.drop_token();
        let (out, conflicts) = e.for_alert(&alert);
        assert_eq!(out.metadata["env"], "staging");
        assert_eq!(out.metadata["cluster"], "edge-1");
        assert_eq!(out.metadata["summary"], "home cluster");
        // The object's own metadata wins over the Alert's.
        assert_eq!(out.metadata["revision"], "main@sha1:abc");
        assert_eq!(conflicts, ["env", "revision"]);
    }
}
