//! The kustomization file: loading and field validation.

use crate::Error;
use crate::kustomization_schema::{TYPES, Ty};
use crate::yaml::{Map, Value};

pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields of a kustomize later than v5.8.1 that sluice accepts although
/// v5.8.1 refuses them (the shared conformance corpus, taken from a later
/// kustomize, uses them): (type, field). Written out, they take the later
/// kustomize's meaning; absent, the build is v5.8.1's.
pub(crate) const LATER_FIELDS: &[(&str, &str)] = &[("Label", "includeVolumeClaimTemplates")];

/// The fields `ty` declares (see `kustomization_schema`).
fn fields_of(ty: &str) -> &'static [(&'static str, Ty)] {
    TYPES
        .iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, f)| *f)
        .unwrap_or(&[])
}

/// Refuses the field names kustomize's types do not declare, at any depth
/// (kustomize decodes the file with encoding/json's
/// `DisallowUnknownFields`), and renames a name written in another case to
/// the declared one (encoding/json matches names case-insensitively, an
/// exact match first). Maps of user keys (labels, annotations, `openapi`)
/// are not fields and are left alone.
fn check_fields(m: &mut Map, ty: &str, path: &str) -> Result<(), Error> {
    let fields = fields_of(ty);
    for (k, v) in m.0.iter_mut() {
        let found = fields
            .iter()
            .find(|(f, _)| *f == k.as_str())
            .or_else(|| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)));
        let Some((name, t)) = found else {
            let later = LATER_FIELDS
                .iter()
                .find(|(t, f)| *t == ty && f.eq_ignore_ascii_case(k));
            if let Some((_, f)) = later {
                *k = (*f).into();
                continue;
            }
            return Err(Error::msg(format!(
                "invalid Kustomization: json: unknown field \"{k}\" (in {path})"
            )));
        };
        if k.as_str() != *name {
            *k = (*name).into();
        }
        match (t, v) {
            (Ty::Struct(s), Value::Map(cm)) => check_fields(cm, s, path)?,
            (Ty::List(s), Value::Seq(items)) => {
                for it in items.iter_mut() {
                    if let Value::Map(cm) = it {
                        check_fields(cm, s, path)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

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
        let mut raw = raw;
        check_fields(&mut raw, TYPES[0].0, path)?;
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
