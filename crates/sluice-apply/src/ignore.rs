//! Drift ignore rules (`spec.ignore` of a Kustomization): JSON pointer paths that sluice
//! neither compares nor writes on objects that already exist, so another controller (an
//! HPA scaling `/spec/replicas`, cert-manager injecting a `caBundle`) can own them.
//!
//! The semantics are those of Flux's drift ignore rules:
//! - an object being created is applied whole, ignored paths included (they are its
//!   initial values);
//! - for an object that exists, the ignored paths are removed from what is applied, so
//!   sluice gives up its ownership of them when it next writes the object;
//! - the comparison that decides whether an existing object drifted leaves them out, so a
//!   change confined to ignored paths is `unchanged` and causes no write.
//!
//! A rule without a target applies to every object; a target selects like a kustomize
//! patch target: `group`, `version`, `kind`, `name` and `namespace` are anchored regular
//! expressions, `labelSelector` and `annotationSelector` Kubernetes selector expressions.

use regex::Regex;
use serde_json::Value;
use sluice_api::kustomize::Selector;

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct IgnoreRule {
    paths: Vec<String>,
    /// The rule lists the empty path: the whole object (a HelmRelease's drift detection
    /// leaves such objects out).
    root: bool,
    target: Option<Target>,
}

#[derive(Clone, Debug, Default)]
struct Target {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    label_selector: Option<String>,
    annotation_selector: Option<String>,
}

impl IgnoreRule {
    /// Compiles a rule. Errors name the offending path or target field; `index` is the
    /// rule's position in `spec.ignore`, for those messages.
    pub fn new(index: usize, paths: &[String], target: Option<&Selector>) -> Result<Self, String> {
        Self::at(&format!("spec.ignore[{index}]"), paths, target)
    }

    /// Compiles a rule found at `field` (`spec.driftDetection.ignore[0]`), named in errors.
    pub fn at(field: &str, paths: &[String], target: Option<&Selector>) -> Result<Self, String> {
        for p in paths {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(format!(
                    "{field}.paths: {p:?} is not a JSON pointer (it must start with '/')"
                ));
            }
        }
        let at = field;
        let regex = |field: &str, v: &Option<String>| -> Result<Option<Regex>, String> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => Regex::new(&format!("^(?:{s})$")).map(Some).map_err(|e| {
                    format!("{at}.target.{field}: invalid regular expression {s:?}: {e}")
                }),
            }
        };
        let target = match target {
            None => None,
            Some(t) => {
                let selector =
                    |field: &str, v: &Option<String>| -> Result<Option<String>, String> {
                        let Some(s) = v.as_deref().filter(|s| !s.trim().is_empty()) else {
                            return Ok(None);
                        };
                        // Parse once now so a bad expression fails here, not per object.
                        sluice_kustomize::patch::label_selector_matches(s, &[])
                            .map_err(|e| format!("{at}.target.{field}: {e}"))?;
                        Ok(Some(s.to_owned()))
                    };
                Some(Target {
                    group: regex("group", &t.group)?,
                    version: regex("version", &t.version)?,
                    kind: regex("kind", &t.kind)?,
                    name: regex("name", &t.name)?,
                    namespace: regex("namespace", &t.namespace)?,
                    label_selector: selector("labelSelector", &t.label_selector)?,
                    annotation_selector: selector("annotationSelector", &t.annotation_selector)?,
                })
            }
        };
        Ok(Self {
            paths: paths.iter().filter(|p| !p.is_empty()).cloned().collect(),
            root: paths.iter().any(String::is_empty),
            target,
        })
    }

    /// Whether the rule ignores the whole object it selects (its paths include `""`).
    pub fn ignores_root(&self) -> bool {
        self.root
    }

    /// Whether the rule's target selects `obj` (a rule without a target selects everything).
    pub fn matches(&self, obj: &Value) -> bool {
        let Some(t) = &self.target else {
            return true;
        };
        let str_at = |ptr: &str| obj.pointer(ptr).and_then(Value::as_str).unwrap_or("");
        let (group, version) = match str_at("/apiVersion").split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", str_at("/apiVersion")),
        };
        let m = |re: &Option<Regex>, s: &str| re.as_ref().is_none_or(|re| re.is_match(s));
        if !(m(&t.group, group)
            && m(&t.version, version)
            && m(&t.kind, str_at("/kind"))
            && m(&t.name, str_at("/metadata/name"))
            && m(&t.namespace, str_at("/metadata/namespace")))
        {
            return false;
        }
        let selects = |sel: &Option<String>, field: &str| {
            let Some(sel) = sel else { return true };
            let pairs: Vec<(String, String)> = obj
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            sluice_kustomize::patch::label_selector_matches(sel, &pairs).unwrap_or(false)
        };
        selects(&t.label_selector, "labels") && selects(&t.annotation_selector, "annotations")
    }
}

/// The paths of `rules` that apply to `obj`, in rule order, without repeats.
pub fn paths_for<'a>(rules: &'a [IgnoreRule], obj: &Value) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for r in rules.iter().filter(|r| r.matches(obj)) {
        for p in &r.paths {
            if !out.contains(&p.as_str()) {
                out.push(p);
            }
        }
    }
    out
}

/// Removes the value at each JSON pointer of `paths` from `obj`; absent paths are fine.
pub fn strip(obj: &mut Value, paths: &[&str]) {
    for p in paths {
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let key = last.replace("~1", "/").replace("~0", "~");
        match obj.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(&key);
            }
            Some(Value::Array(a)) => {
                if let Ok(i) = key.parse::<usize>()
                    && i < a.len()
                {
                    a.remove(i);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "apps", "labels": {"tier": "front"},
                            "annotations": {"a/b": "x"}},
               "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    }

    #[test]
    fn untargeted_rule_applies_to_everything() {
        let r = IgnoreRule::new(0, &["/spec/replicas".into()], None).unwrap();
        assert_eq!(paths_for(&[r], &deployment()), vec!["/spec/replicas"]);
    }

    #[test]
    fn targets_select_by_regex_and_selectors() {
        let sel = |s: Selector| IgnoreRule::new(0, &["/spec/replicas".into()], Some(&s)).unwrap();
        let d = deployment();
        let hit = [
            Selector {
                kind: Some("Deploy.*".into()),
                ..Default::default()
            },
            Selector {
                group: Some("apps".into()),
                version: Some("v1".into()),
                name: Some("w.b".into()),
                namespace: Some("apps".into()),
                ..Default::default()
            },
            Selector {
                label_selector: Some("tier in (front,back)".into()),
                annotation_selector: Some("a/b=x".into()),
                ..Default::default()
            },
        ];
        for s in hit {
            assert_eq!(paths_for(&[sel(s.clone())], &d).len(), 1, "{s:?}");
        }
        let miss = [
            Selector {
                kind: Some("Deploy".into()),
                ..Default::default()
            },
            Selector {
                name: Some("we".into()),
                ..Default::default()
            },
            Selector {
                label_selector: Some("tier!=front".into()),
                ..Default::default()
            },
        ];
        for s in miss {
            assert!(paths_for(&[sel(s.clone())], &d).is_empty(), "{s:?}");
        }
    }

    #[test]
    fn bad_rules_are_named() {
        let e = IgnoreRule::new(2, &["spec/replicas".into()], None).unwrap_err();
        assert!(e.contains("spec.ignore[2].paths"), "{e}");
        let s = Selector {
            name: Some("(".into()),
            ..Default::default()
        };
        let e = IgnoreRule::new(1, &["/a".into()], Some(&s)).unwrap_err();
        assert!(e.contains("spec.ignore[1].target.name"), "{e}");
    }

    #[test]
    fn strip_removes_escaped_keys_and_list_items() {
        let mut d = deployment();
        strip(
            &mut d,
            &[
                "/spec/replicas",
                "/metadata/annotations/a~1b",
                "/spec/template/spec/containers/0/image",
                "/spec/missing/x",
            ],
        );
        assert_eq!(d["spec"].get("replicas"), None);
        assert_eq!(d["metadata"]["annotations"], json!({}));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"],
            json!([{"name": "c"}])
        );
    }
}
