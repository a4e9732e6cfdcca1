//! The kustomization file: loading and field validation.

use crate::Error;
use crate::yaml::{Map, Value};

pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "bases",
    "components",
    "crds",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// A parsed kustomization. Structured sections stay as values and are
/// interpreted by the build steps that use them.
#[derive(Clone, Debug, Default)]
pub struct Kustomization {
    pub kind: String,
    pub raw: Map,
    /// A key written twice in the file (kustomize silently keeps the last
    /// one, and so does sluice; the build warns about it).
    pub repeated_key: Option<String>,
}

impl Kustomization {
    pub fn parse(text: &str, path: &str) -> Result<Kustomization, Error> {
        // Strict first, only to notice a repeated key: `resources:` twice
        // silently drops the first list.
        let repeated_key = match crate::yaml::parse_all_opts(text, false) {
            Err(e) if e.message.contains("already defined") => Some(format!(
                "{path}: {} (line {}); the last one is used, as in kustomize",
                e.message, e.line
            )),
            _ => None,
        };
        let docs = crate::yaml::parse_all_opts(text, true).map_err(|e| Error::yaml(path, e))?;
        let v = docs
            .into_iter()
            .find(|d| !d.is_null())
            .unwrap_or(Value::Null);
        let raw = match v {
            Value::Map(m) => m,
            Value::Null => Map::new(),
            other => {
                return Err(Error::msg(format!(
                    "invalid kustomization {path}: expected a mapping, got a {}",
                    other.kind_name()
                )));
            }
        };
        // Field names match case-insensitively, as with Go's encoding/json.
        let mut raw = raw;
        for (k, _) in raw.0.iter_mut() {
            if KNOWN_FIELDS.contains(&k.as_str()) {
                continue;
            }
            match KNOWN_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(k)) {
                Some(f) => *k = (*f).into(),
                None => {
                    return Err(Error::msg(format!(
                        "invalid Kustomization: json: unknown field \"{k}\" (in {path})"
                    )));
                }
            }
        }
        let kind = raw
            .get("kind")
            .and_then(Value::scalar_string)
            .unwrap_or_default();
        let api_version = raw
            .get("apiVersion")
            .and_then(Value::scalar_string)
            .unwrap_or_default();
        match kind.as_str() {
            "" | "Kustomization" => {
                if !api_version.is_empty()
                    && api_version != "kustomize.config.k8s.io/v1beta1"
                    && api_version != "kustomize.config.k8s.io/v1"
                {
                    return Err(Error::msg(format!(
                        "apiVersion for Kustomization should be kustomize.config.k8s.io/v1beta1 (got {api_version:?} in {path})"
                    )));
                }
            }
            "Component" => {
                if !api_version.is_empty() && api_version != "kustomize.config.k8s.io/v1alpha1" {
                    return Err(Error::msg(format!(
                        "apiVersion for Component should be kustomize.config.k8s.io/v1alpha1 (in {path})"
                    )));
                }
            }
            other => {
                return Err(Error::msg(format!(
                    "kind should be Kustomization or Component, got {other:?} (in {path})"
                )));
            }
        }
        // kustomize refuses a kustomization whose fields all have their
        // zero value (only apiVersion/kind, `resources:` without a list,
        // `namespace: ""`); an explicit `resources: []` builds to nothing.
        let zero = |v: &Value| match v {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::Bool(b) => !b,
            _ => false,
        };
        if raw
            .0
            .iter()
            .all(|(k, v)| k == "apiVersion" || k == "kind" || zero(v))
        {
            return Err(Error::msg(format!(
                "kustomization.yaml is empty (in {path}); if it is meant to build to nothing, write `resources: []`"
            )));
        }
        for unsupported in ["helmCharts", "helmChartInflationGenerator", "helmGlobals"] {
            if raw.get(unsupported).is_some_and(|v| !v.is_null()) {
                return Err(Error::Unsupported {
                    field: unsupported.to_string(),
                });
            }
        }
        Ok(Kustomization {
            kind: if kind.is_empty() {
                "Kustomization".into()
            } else {
                kind
            },
            raw,
            repeated_key,
        })
    }

    pub fn is_component(&self) -> bool {
        self.kind == "Component"
    }

    pub fn get(&self, k: &str) -> Option<&Value> {
        self.raw.get(k).filter(|v| !v.is_null())
    }

    pub fn string(&self, k: &str) -> String {
        self.get(k)
            .and_then(Value::scalar_string)
            .unwrap_or_default()
    }

    /// A list of strings (`resources`, `components`, ...).
    pub fn strings(&self, k: &str) -> Result<Vec<String>, Error> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Seq(items)) => items
                .iter()
                .map(|i| {
                    i.scalar_string().ok_or_else(|| {
                        Error::msg(format!(
                            "invalid Kustomization: '{k}' must be a list of strings"
                        ))
                    })
                })
                .collect(),
            Some(_) => Err(Error::msg(format!(
                "invalid Kustomization: '{k}' must be a list of strings"
            ))),
        }
    }

    /// A map of strings (`commonLabels`, `commonAnnotations`).
    pub fn string_map(&self, k: &str) -> Vec<(String, String)> {
        match self.get(k) {
            Some(Value::Map(m)) => m
                .iter()
                .map(|(k, v)| (k.to_string(), v.scalar_string().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn list(&self, k: &str) -> Vec<Value> {
        match self.get(k) {
            Some(Value::Seq(items)) => items.clone(),
            _ => Vec::new(),
        }
    }

    pub fn build_metadata(&self) -> Vec<String> {
        self.strings("buildMetadata").unwrap_or_default()
    }
}
