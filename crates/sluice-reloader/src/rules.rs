//! Which workloads a changed ConfigMap or Secret reloads: Stakater Reloader's
//! annotations and decision order, as pure functions.
//!
//! Order, first match wins:
//! 1. `reloader.stakater.com/ignore: "true"` on the ConfigMap/Secret: never.
//! 2. The workload's exclude list (`configmaps.exclude.reloader.stakater.com/reload`,
//!    `secrets.exclude.reloader.stakater.com/reload`) names it: never.
//! 3. The named list (`configmap.reloader.stakater.com/reload`,
//!    `secret.reloader.stakater.com/reload`), comma-separated, each entry an
//!    anchored regular expression: reload, whether or not the pod template
//!    references the object.
//! 4. `reloader.stakater.com/search: "true"` on the workload and
//!    `reloader.stakater.com/match: "true"` on the object: reload if referenced.
//! 5. `reloader.stakater.com/auto: "true"`, or the typed
//!    `configmap.reloader.stakater.com/auto` / `secret.reloader.stakater.com/auto`:
//!    reload if referenced.
//! 6. With auto-reload-all on, any workload not opted out with `auto: "false"`:
//!    reload if referenced.
//!
//! The annotations are read from the workload's metadata; where it has none of
//! the relevant ones, from its pod template's metadata.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use regex::Regex;

pub const AUTO: &str = "reloader.stakater.com/auto";
pub const CONFIGMAP_AUTO: &str = "configmap.reloader.stakater.com/auto";
pub const SECRET_AUTO: &str = "secret.reloader.stakater.com/auto";
pub const CONFIGMAP_RELOAD: &str = "configmap.reloader.stakater.com/reload";
pub const SECRET_RELOAD: &str = "secret.reloader.stakater.com/reload";
pub const CONFIGMAP_EXCLUDE: &str = "configmaps.exclude.reloader.stakater.com/reload";
pub const SECRET_EXCLUDE: &str = "secrets.exclude.reloader.stakater.com/reload";
pub const SEARCH: &str = "reloader.stakater.com/search";
pub const MATCH: &str = "reloader.stakater.com/match";
pub const IGNORE: &str = "reloader.stakater.com/ignore";

/// The pod-template annotation a reload writes. The key is Reloader's own
/// (its "annotations" reload strategy), so tooling that reads it keeps working.
pub const LAST_RELOADED_FROM: &str = "reloader.stakater.com/last-reloaded-from";

pub type Annotations = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    ConfigMap,
    Secret,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        }
    }

    /// Reloader's upper-case type name, used in its annotation payload.
    pub fn reloader_type(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "CONFIGMAP",
            SourceKind::Secret => "SECRET",
        }
    }

    fn typed_auto(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => CONFIGMAP_AUTO,
            SourceKind::Secret => SECRET_AUTO,
        }
    }

    fn named(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => CONFIGMAP_RELOAD,
            SourceKind::Secret => SECRET_RELOAD,
        }
    }

    fn exclude(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => CONFIGMAP_EXCLUDE,
            SourceKind::Secret => SECRET_EXCLUDE,
        }
    }
}

/// Why a workload is reloaded (or why not), for logs, events and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ignored,
    Excluded,
    Named,
    SearchMatch,
    Auto,
    AutoReloadAll,
    NotReferenced,
    NoAnnotation,
}

impl Verdict {
    pub fn reloads(self) -> bool {
        matches!(
            self,
            Verdict::Named | Verdict::SearchMatch | Verdict::Auto | Verdict::AutoReloadAll
        )
    }
}

/// What is known of the changed ConfigMap or Secret.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub kind: SourceKind,
    pub name: &'a str,
    /// `reloader.stakater.com/ignore: "true"` on the object.
    pub ignored: bool,
    /// `reloader.stakater.com/match: "true"` on the object.
    pub matched: bool,
}

/// Decides whether a workload reloads for `source`.
pub fn decide(
    source: &Source<'_>,
    workload: Option<&Annotations>,
    template: Option<&Annotations>,
    pod_spec: Option<&PodSpec>,
    auto_reload_all: bool,
) -> Verdict {
    if source.ignored {
        return Verdict::Ignored;
    }
    let annotations = select(source.kind, workload, template);
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);

    if get(source.kind.exclude())
        .is_some_and(|list| list.split(',').any(|e| e.trim() == source.name))
    {
        return Verdict::Excluded;
    }
    if get(source.kind.named()).is_some_and(|list| named_list_matches(list, source.name)) {
        return Verdict::Named;
    }
    let referenced = || pod_spec.is_some_and(|spec| references(spec, source.kind, source.name));
    let candidate = if get(SEARCH) == Some("true") && source.matched {
        Some(Verdict::SearchMatch)
    } else if get(AUTO) == Some("true") || get(source.kind.typed_auto()) == Some("true") {
        Some(Verdict::Auto)
    } else if auto_reload_all
        && get(AUTO) != Some("false")
        && get(source.kind.typed_auto()) != Some("false")
    {
        Some(Verdict::AutoReloadAll)
    } else {
        None
    };
    match candidate {
        Some(v) if referenced() => v,
        Some(_) => Verdict::NotReferenced,
        None => Verdict::NoAnnotation,
    }
}

/// Workload annotations unless they hold nothing relevant to this kind, then
/// the pod template's.
fn select<'a>(
    kind: SourceKind,
    workload: Option<&'a Annotations>,
    template: Option<&'a Annotations>,
) -> Option<&'a Annotations> {
    let relevant = |a: &Annotations| {
        [kind.named(), SEARCH, AUTO, kind.typed_auto()]
            .iter()
            .any(|k| a.contains_key(*k))
    };
    if workload.is_some_and(relevant) {
        return workload;
    }
    if template.is_some_and(relevant) {
        return template;
    }
    workload
}

/// Each comma-separated entry is an anchored regular expression; an entry that
/// is not a valid expression matches by equality.
pub fn named_list_matches(list: &str, name: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| match Regex::new(&format!("^(?:{entry})$")) {
            Ok(re) => re.is_match(name),
            Err(_) => entry == name,
        })
}

/// Whether the pod spec uses the object: volumes, projected volume sources,
/// `env[].valueFrom` and `envFrom`, in containers and init containers.
pub fn references(spec: &PodSpec, kind: SourceKind, name: &str) -> bool {
    let in_volumes = spec.volumes.iter().flatten().any(|v| {
        let direct = match kind {
            SourceKind::ConfigMap => v.config_map.as_ref().is_some_and(|c| c.name == name),
            SourceKind::Secret => v
                .secret
                .as_ref()
                .is_some_and(|s| s.secret_name.as_deref() == Some(name)),
        };
        direct
            || v.projected.as_ref().is_some_and(|p| {
                p.sources.iter().flatten().any(|s| match kind {
                    SourceKind::ConfigMap => s.config_map.as_ref().is_some_and(|c| c.name == name),
                    SourceKind::Secret => s.secret.as_ref().is_some_and(|c| c.name == name),
                })
            })
    });
    if in_volumes {
        return true;
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    containers.into_iter().any(|c| {
        let in_env = c.env.iter().flatten().any(|e| {
            e.value_from.as_ref().is_some_and(|from| match kind {
                SourceKind::ConfigMap => from
                    .config_map_key_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name),
                SourceKind::Secret => from.secret_key_ref.as_ref().is_some_and(|r| r.name == name),
            })
        });
        in_env
            || c.env_from.iter().flatten().any(|e| match kind {
                SourceKind::ConfigMap => e.config_map_ref.as_ref().is_some_and(|r| r.name == name),
                SourceKind::Secret => e.secret_ref.as_ref().is_some_and(|r| r.name == name),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ann(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).expect("test PodSpec")
    }

    fn secret<'a>(name: &'a str) -> Source<'a> {
        Source {
            kind: SourceKind::Secret,
            name,
            ignored: false,
            matched: false,
        }
    }

    fn cm<'a>(name: &'a str) -> Source<'a> {
        Source {
            kind: SourceKind::ConfigMap,
            name,
            ignored: false,
            matched: false,
        }
    }

    fn uses_everything() -> PodSpec {
        spec(json!({
            "initContainers": [{ "name": "init", "envFrom": [{ "secretRef": { "name": "init-secret" } }] }],
            "containers": [{
                "name": "app",
                "env": [
                    { "name": "A", "valueFrom": { "configMapKeyRef": { "name": "env-cm", "key": "a" } } },
                    { "name": "B", "valueFrom": { "secretKeyRef": { "name": "env-secret", "key": "b" } } }
                ],
                "envFrom": [{ "configMapRef": { "name": "envfrom-cm" } }]
            }],
            "volumes": [
                { "name": "v1", "configMap": { "name": "vol-cm" } },
                { "name": "v2", "secret": { "secretName": "vol-secret" } },
                { "name": "v3", "projected": { "sources": [
                    { "configMap": { "name": "proj-cm" } },
                    { "secret": { "name": "proj-secret" } }
                ] } }
            ]
        }))
    }

    #[test]
    fn every_kind_of_reference_is_found() {
        let s = uses_everything();
        for name in ["env-cm", "envfrom-cm", "vol-cm", "proj-cm"] {
            assert!(references(&s, SourceKind::ConfigMap, name), "{name}");
            assert!(
                !references(&s, SourceKind::Secret, name),
                "{name} is not a Secret"
            );
        }
        for name in ["env-secret", "vol-secret", "proj-secret", "init-secret"] {
            assert!(references(&s, SourceKind::Secret, name), "{name}");
        }
        assert!(!references(&s, SourceKind::Secret, "other"));
    }

    #[test]
    fn auto_reloads_only_referenced_objects() {
        let s = uses_everything();
        let w = ann(&[(AUTO, "true")]);
        assert_eq!(
            decide(&secret("vol-secret"), Some(&w), None, Some(&s), false),
            Verdict::Auto
        );
        assert_eq!(
            decide(&secret("unrelated"), Some(&w), None, Some(&s), false),
            Verdict::NotReferenced
        );
    }

    #[test]
    fn typed_auto_applies_to_its_kind_only() {
        let s = uses_everything();
        let w = ann(&[(SECRET_AUTO, "true")]);
        assert_eq!(
            decide(&secret("vol-secret"), Some(&w), None, Some(&s), false),
            Verdict::Auto
        );
        assert_eq!(
            decide(&cm("vol-cm"), Some(&w), None, Some(&s), false),
            Verdict::NoAnnotation
        );
    }

    #[test]
    fn named_list_needs_no_reference_and_takes_regexes() {
        let w = ann(&[(CONFIGMAP_RELOAD, "foo, app-config-.*")]);
        assert_eq!(
            decide(&cm("foo"), Some(&w), None, None, false),
            Verdict::Named
        );
        assert_eq!(
            decide(&cm("app-config-prod"), Some(&w), None, None, false),
            Verdict::Named
        );
        assert_eq!(
            decide(&cm("foobar"), Some(&w), None, None, false),
            Verdict::NoAnnotation,
            "anchored"
        );
        assert_eq!(
            decide(&secret("foo"), Some(&w), None, None, false),
            Verdict::NoAnnotation,
            "kind-specific"
        );
        assert!(
            named_list_matches("a(b", "a(b"),
            "invalid regex falls back to equality"
        );
    }

    #[test]
    fn search_needs_match_on_the_object() {
        let s = uses_everything();
        let w = ann(&[(SEARCH, "true")]);
        let mut src = secret("vol-secret");
        assert_eq!(
            decide(&src, Some(&w), None, Some(&s), false),
            Verdict::NoAnnotation
        );
        src.matched = true;
        assert_eq!(
            decide(&src, Some(&w), None, Some(&s), false),
            Verdict::SearchMatch
        );
        let mut other = secret("unrelated");
        other.matched = true;
        assert_eq!(
            decide(&other, Some(&w), None, Some(&s), false),
            Verdict::NotReferenced
        );
    }

    #[test]
    fn ignore_and_exclude_win() {
        let s = uses_everything();
        let w = ann(&[(AUTO, "true"), (SECRET_EXCLUDE, "env-secret, other")]);
        let mut src = secret("vol-secret");
        src.ignored = true;
        assert_eq!(
            decide(&src, Some(&w), None, Some(&s), false),
            Verdict::Ignored
        );
        assert_eq!(
            decide(&secret("env-secret"), Some(&w), None, Some(&s), false),
            Verdict::Excluded
        );
        assert_eq!(
            decide(&secret("vol-secret"), Some(&w), None, Some(&s), false),
            Verdict::Auto
        );
    }

    #[test]
    fn template_annotations_are_read_when_workload_has_none() {
        let s = uses_everything();
        let w = ann(&[("unrelated", "x")]);
        let t = ann(&[(AUTO, "true")]);
        assert_eq!(
            decide(&secret("vol-secret"), Some(&w), Some(&t), Some(&s), false),
            Verdict::Auto
        );
        // Workload annotations take precedence when they are relevant.
        let w = ann(&[(AUTO, "false")]);
        assert_eq!(
            decide(&secret("vol-secret"), Some(&w), Some(&t), Some(&s), false),
            Verdict::NoAnnotation
        );
    }

    #[test]
    fn auto_reload_all_respects_opt_out() {
        let s = uses_everything();
        assert_eq!(
            decide(&secret("vol-secret"), None, None, Some(&s), true),
            Verdict::AutoReloadAll
        );
        let w = ann(&[(AUTO, "false")]);
        assert_eq!(
            decide(&secret("vol-secret"), Some(&w), None, Some(&s), true),
            Verdict::NoAnnotation
        );
        assert_eq!(
            decide(&secret("vol-secret"), None, None, Some(&s), false),
            Verdict::NoAnnotation
        );
    }
}
