//! Which Alerts an event goes to, as Flux's event server decides (`filterAlertsForEvent`):
//! not suspended; one event source with the event's namespace (the Alert's when unset) and
//! kind, a severity the Alert passes on (`info` passes everything, `error` only errors), the
//! object's name or `*`, and the source's `matchLabels` on the object's labels; then the
//! message matched by one `inclusionList` expression (when there is one) and by no
//! `exclusionList` expression. Pure: the labels of the object are asked of the caller.

use std::collections::BTreeMap;

use regex::Regex;
use sluice_api::notification::{Alert, EventSeverity};

use crate::event::Event;

/// What the caller must still look up to decide.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// The Alert takes the event.
    Yes,
    /// It does not.
    No,
    /// It does if the object's labels have all of one of these sets.
    IfLabels(Vec<&'a BTreeMap<String, String>>),
}

/// Whether one of `alert`'s event sources takes `event` (before the message filters).
pub fn sources<'a>(alert: &'a Alert, event: &Event) -> Verdict<'a> {
    if alert.is_suspended() {
        return Verdict::No;
    }
    let o = &event.involved_object;
    let severity = alert.severity();
    if severity != EventSeverity::Info && severity.as_str() != event.severity {
        return Verdict::No;
    }
    let alert_ns = alert.metadata.namespace.as_deref().unwrap_or_default();
    let mut labels: Vec<&BTreeMap<String, String>> = vec![];
    for source in &alert.spec.event_sources {
        let ns = source.namespace.as_deref().unwrap_or(alert_ns);
        if ns != o.namespace || source.kind.as_str() != o.kind {
            continue;
        }
        if source.name != "*" && source.name != o.name {
            continue;
        }
        match &source.match_labels {
            None => return Verdict::Yes,
            // Flux's `nil` check: `matchLabels: {}` still looks the object up, and an empty
            // selector matches everything.
            Some(l) if l.is_empty() => return Verdict::Yes,
            Some(l) => labels.push(l),
        }
    }
    if labels.is_empty() {
        Verdict::No
    } else {
        Verdict::IfLabels(labels)
    }
}

/// Whether `labels` has every pair of one of the `wanted` sets.
pub fn labels_match(
    wanted: &[&BTreeMap<String, String>],
    labels: &BTreeMap<String, String>,
) -> bool {
    wanted
        .iter()
        .any(|set| set.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The message filters: `Ok(true)` when the message passes; the expressions that do not
/// compile are returned beside (Flux reports each with an `InvalidConfig` event and skips it).
pub fn message_passes(alert: &Alert, message: &str) -> (bool, Vec<String>) {
    let mut invalid = vec![];
    let mut compiled = |list: &Option<Vec<String>>, what: &str| -> Vec<Regex> {
        list.iter()
            .flatten()
            .filter_map(|exp| match Regex::new(exp) {
                Ok(r) => Some(r),
                Err(_) => {
                    invalid.push(format!("failed to compile {what} regex: {exp}"));
                    None
                }
            })
            .collect()
    };
    let include = compiled(&alert.spec.inclusion_list, "inclusion");
    let exclude = compiled(&alert.spec.exclusion_list, "exclusion");
    let has_inclusions = alert
        .spec
        .inclusion_list
        .as_ref()
        .is_some_and(|l| !l.is_empty());
    let included = !has_inclusions || include.iter().any(|r| r.is_match(message));
    let excluded = exclude.iter().any(|r| r.is_match(message));
    (included && !excluded, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(spec: serde_json::Value) -> Alert {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "a", "namespace": "flux-system"}, "spec": spec,
        }))
        .unwrap()
    }

    fn event(kind: &str, ns: &str, name: &str, severity: &str) -> Event {
        let mut e = Event::default();
        e.involved_object.kind = kind.into();
        e.involved_object.namespace = ns.into();
        e.involved_object.name = name.into();
        e.severity = severity.into();
        e
    }

    #[test]
    fn sources_match_by_namespace_kind_name_and_severity() {
        let a = alert(serde_json::json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*"},
                             {"kind": "HelmRelease", "name": "traefik", "namespace": "kube-system"}]
        }));
        let yes = |e: &Event| sources(&a, e) == Verdict::Yes;
        assert!(yes(&event("Kustomization", "flux-system", "apps", "info")));
        assert!(!yes(&event("Kustomization", "apps", "apps", "info")));
        assert!(yes(&event(
            "HelmRelease",
            "kube-system",
            "traefik",
            "error"
        )));
        assert!(!yes(&event(
            "HelmRelease",
            "kube-system",
            "coredns",
            "error"
        )));
        assert!(!yes(&event(
            "GitRepository",
            "flux-system",
            "flux-system",
            "info"
        )));

        let errors = alert(serde_json::json!({
            "providerRef": {"name": "p"}, "eventSeverity": "error",
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }));
        assert_eq!(
            sources(&errors, &event("Kustomization", "flux-system", "a", "info")),
            Verdict::No
        );
        assert_eq!(
            sources(
                &errors,
                &event("Kustomization", "flux-system", "a", "error")
            ),
            Verdict::Yes
        );

        let suspended = alert(serde_json::json!({
            "providerRef": {"name": "p"}, "suspend": true,
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }));
        assert_eq!(
            sources(
                &suspended,
                &event("Kustomization", "flux-system", "a", "info")
            ),
            Verdict::No
        );
    }

    #[test]
    fn match_labels_are_left_to_the_caller() {
        let a = alert(serde_json::json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {"team": "web"}}]
        }));
        let Verdict::IfLabels(wanted) =
            sources(&a, &event("Kustomization", "flux-system", "x", "info"))
        else {
            panic!("labels needed")
        };
        let labels = BTreeMap::from([("team".to_string(), "web".to_string())]);
        assert!(labels_match(&wanted, &labels));
        assert!(!labels_match(&wanted, &BTreeMap::new()));
    }

    #[test]
    fn inclusion_and_exclusion_lists() {
        let a = alert(serde_json::json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
            "inclusionList": [".*succeeded.*", "(["],
            "exclusionList": ["^Dependencies.*"]
        }));
        let (pass, invalid) = message_passes(&a, "Reconciliation succeeded");
        assert!(pass);
        assert_eq!(invalid, ["failed to compile inclusion regex: (["]);
        assert!(!message_passes(&a, "Health check failed").0);
        assert!(!message_passes(&a, "Dependencies succeeded?").0);
        let none = alert(serde_json::json!({
            "providerRef": {"name": "p"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }));
        assert!(message_passes(&none, "anything").0);
    }
}
