//! The kustomization file: [`Kustomization`], kustomize v5.8.1's schema as
//! a typed struct, read from the file after its field names are checked
//! against kustomize's own types (`kustomization_schema`, generated).

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

/// A kustomization (or component) file: kustomize v5.8.1's
/// `types.Kustomization` (api/types/kustomization.go), every field it
/// declares, in its order. Field names are checked at every depth against
/// kustomize's types when the file is read (`check_fields`). The entries of
/// the list fields that configure builtin plugins (patches, images,
/// generators, ...) stay YAML values: the code that interprets them also
/// reads the same entries from `transformers:`/`generators:` plugin
/// configurations, whose field names kustomize does not check.
#[derive(Clone, Debug, Default)]
pub struct Kustomization {
    /// `Kustomization` (also when not written) or `Component`.
    pub kind: String,
    /// `kustomize.config.k8s.io/v1beta1` (`v1alpha1` for a Component), or empty.
    #[allow(dead_code)] // the schema's; the build does not use it
    pub api_version: String,
    /// `metadata`: name, namespace, labels, annotations; not used by the build.
    #[allow(dead_code)] // the schema's; the build does not use it
    pub metadata: Option<Value>,
    /// `openapi`: `path` (a custom schema file) or `version` (a builtin one).
    pub openapi: Option<Value>,
    /// `namePrefix`, `nameSuffix`.
    pub name_prefix: String,
    pub name_suffix: String,
    /// `namespace`: set on every namespaced object.
    pub namespace: String,
    /// `commonLabels` (deprecated for `labels`): labels and selectors.
    pub common_labels: Vec<(String, String)>,
    /// `labels`: `pairs`, `includeSelectors`, `includeTemplates`, `fields`.
    pub labels: Vec<Value>,
    /// `commonAnnotations`.
    pub common_annotations: Vec<(String, String)>,
    /// `patchesStrategicMerge` (deprecated for `patches`): file paths or
    /// inline patches.
    pub patches_strategic_merge: Vec<Value>,
    /// `patchesJson6902` (deprecated for `patches`): `target`, `path`/`patch`.
    pub patches_json6902: Vec<Value>,
    /// `patches`: `path`/`patch`, `target`, `options`.
    pub patches: Vec<Value>,
    /// `images`: `name`, `newName`, `newTag`, `digest`, `tagSuffix`.
    pub images: Vec<Value>,
    /// `imageTags` (deprecated for `images`).
    pub image_tags: Vec<Value>,
    /// `replacements`: inline, or `path` to a file of them.
    pub replacements: Vec<Value>,
    /// `replicas`: `name`, `count`.
    pub replicas: Vec<Value>,
    /// `vars` (deprecated for `replacements`): `name`, `objref`, `fieldref`.
    pub vars: Vec<Value>,
    /// `sortOptions`: `order` (`legacy`, `fifo`), `legacySortOptions`.
    pub sort_options: Option<Value>,
    /// `resources`: files, directories, remote targets.
    pub resources: Vec<String>,
    /// `components`: directories of `kind: Component`.
    pub components: Vec<String>,
    /// `crds`: CRD files whose name references are learned.
    pub crds: Vec<String>,
    /// `bases` (deprecated for `resources`, accumulated after them).
    pub bases: Vec<String>,
    /// `configMapGenerator`, `secretGenerator`.
    pub config_map_generator: Vec<Value>,
    pub secret_generator: Vec<Value>,
    // `helmGlobals`, `helmCharts`, `helmChartInflationGenerator`: refused
    // when set (not supported yet).
    /// `generatorOptions`: `labels`, `annotations`, `disableNameSuffixHash`,
    /// `immutable`, for every generator of this kustomization.
    pub generator_options: Option<Value>,
    /// `configurations`: transformer configuration (field spec) files.
    pub configurations: Vec<String>,
    /// `generators`, `transformers`: plugin configurations (files,
    /// directories, inline).
    pub generators: Vec<String>,
    pub transformers: Vec<String>,
    /// `validators`: not run.
    #[allow(dead_code)] // the schema's; the build does not use it
    pub validators: Vec<String>,
    /// `buildMetadata`: `originAnnotations`, `transformerAnnotations`,
    /// `managedByLabel`.
    pub build_metadata: Vec<String>,
    /// The deprecated fields written (even empty), each with the field
    /// that replaces it: kustomize warns about them.
    pub deprecated: Vec<(&'static str, &'static str)>,
    /// A key written twice in the file (kustomize silently keeps the last
    /// one, and so does sluice; the build warns about it).
    pub repeated_key: Option<String>,
}

/// The raw file, read field by field into [`Kustomization`].
struct Fields(Map);

impl Fields {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn value(&self, k: &str) -> Option<Value> {
        self.get(k).cloned()
    }

    fn string(&self, k: &str) -> String {
        self.get(k)
            .and_then(Value::scalar_string)
            .unwrap_or_default()
    }

    /// A list of strings (`resources`, `components`, ...).
    fn strings(&self, k: &str) -> Result<Vec<String>, Error> {
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
    fn string_map(&self, k: &str) -> Vec<(String, String)> {
        match self.get(k) {
            Some(Value::Map(m)) => m
                .iter()
                .map(|(k, v)| (k.to_string(), v.scalar_string().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The entries of a list field (none when it is not a list).
    fn list(&self, k: &str) -> Vec<Value> {
        match self.get(k) {
            Some(Value::Seq(items)) => items.clone(),
            _ => Vec::new(),
        }
    }
}

impl Kustomization {
    pub fn parse(text: &str, path: &str) -> Result<Kustomization, Error> {
        // Strict first, only to notice a repeated key: `resources:` twice
        // silently drops the first list.
        let repeated_key = match crate::yaml::parse_all_opts(text, false) {
            Err(e) if e.message.contains("already defined") => Some(format!(
                "{path}: {}{}; the last one is used, as in kustomize",
                e.where_(),
                e.message
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
        let f = Fields(raw);
        let deprecated = [
            ("commonLabels", "labels"),
            ("patchesStrategicMerge", "patches"),
            ("patchesJson6902", "patches"),
            ("imageTags", "images"),
            ("bases", "resources"),
            ("vars", "replacements"),
        ]
        .into_iter()
        .filter(|(field, _)| f.get(field).is_some())
        .collect();
        Ok(Kustomization {
            kind: if kind.is_empty() {
                "Kustomization".into()
            } else {
                kind
            },
            api_version,
            metadata: f.value("metadata"),
            openapi: f.value("openapi"),
            name_prefix: f.string("namePrefix"),
            name_suffix: f.string("nameSuffix"),
            namespace: f.string("namespace"),
            common_labels: f.string_map("commonLabels"),
            labels: f.list("labels"),
            common_annotations: f.string_map("commonAnnotations"),
            patches_strategic_merge: f.list("patchesStrategicMerge"),
            patches_json6902: f.list("patchesJson6902"),
            patches: f.list("patches"),
            images: f.list("images"),
            image_tags: f.list("imageTags"),
            replacements: f.list("replacements"),
            replicas: f.list("replicas"),
            vars: f.list("vars"),
            sort_options: f.value("sortOptions"),
            resources: f.strings("resources")?,
            components: f.strings("components")?,
            crds: f.strings("crds")?,
            bases: f.strings("bases")?,
            config_map_generator: f.list("configMapGenerator"),
            secret_generator: f.list("secretGenerator"),
            generator_options: f.value("generatorOptions"),
            configurations: f.strings("configurations")?,
            generators: f.strings("generators")?,
            transformers: f.strings("transformers")?,
            validators: f.strings("validators").unwrap_or_default(),
            build_metadata: f.strings("buildMetadata").unwrap_or_default(),
            deprecated,
            repeated_key,
        })
    }

    pub fn is_component(&self) -> bool {
        self.kind == "Component"
    }
}
