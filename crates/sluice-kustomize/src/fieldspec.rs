//! Field specs (which fields of which kinds a transformer touches) and the
//! built-in transformer configuration (kustomize's defaults).

use crate::resource::Gvk;
use crate::yaml::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

impl FieldSpec {
    pub fn new(kind: &str, group: &str, version: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk: Gvk {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            },
            path: path.into(),
            create,
        }
    }
    fn from_table(f: &crate::fieldspec_table::Fs) -> FieldSpec {
        FieldSpec::new(f.kind, f.group, f.version, f.path, f.create)
    }
    pub fn any(path: &str, create: bool) -> FieldSpec {
        FieldSpec::new("", "", "", path, create)
    }
    /// Parses a field spec from a configuration map
    /// (`{group, version, kind, path, create}`).
    pub fn from_value(v: &Value) -> Result<FieldSpec, String> {
        let m = v
            .as_map()
            .ok_or_else(|| format!("field spec must be a mapping, got {}", v.kind_name()))?;
        let s = |k: &str| m.get(k).and_then(Value::scalar_string).unwrap_or_default();
        Ok(FieldSpec {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            path: s("path"),
            create: matches!(m.get("create"), Some(Value::Bool(true))),
        })
    }
}

/// A name-reference back reference: resources of `gvk` are referred to by
/// the fields in `referrers`.
#[derive(Clone, Debug, Default)]
pub struct NameBackRef {
    pub gvk: Gvk,
    pub referrers: Vec<FieldSpec>,
}

/// The transformer configuration (kustomize's `TransformerConfig`).
#[derive(Clone, Debug, Default)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    /// Extra fields for every `labels:` entry (`labels:` in configurations).
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

fn add_unique(dst: &mut Vec<FieldSpec>, src: &[FieldSpec]) {
    for fs in src {
        if !dst.iter().any(|d| d.gvk == fs.gvk && d.path == fs.path) {
            dst.push(fs.clone());
        }
    }
}

impl TransformerConfig {
    pub fn merge(&mut self, o: &TransformerConfig) {
        add_unique(&mut self.name_prefix, &o.name_prefix);
        add_unique(&mut self.name_suffix, &o.name_suffix);
        add_unique(&mut self.namespace, &o.namespace);
        add_unique(&mut self.common_labels, &o.common_labels);
        add_unique(&mut self.template_labels, &o.template_labels);
        add_unique(&mut self.labels, &o.labels);
        add_unique(&mut self.common_annotations, &o.common_annotations);
        add_unique(&mut self.var_reference, &o.var_reference);
        add_unique(&mut self.images, &o.images);
        add_unique(&mut self.replicas, &o.replicas);
        for br in &o.name_reference {
            match self.name_reference.iter_mut().find(|x| x.gvk == br.gvk) {
                Some(x) => add_unique(&mut x.referrers, &br.referrers),
                None => self.name_reference.push(br.clone()),
            }
        }
    }

    /// Parses a `configurations:` file.
    pub fn from_value(v: &Value) -> Result<TransformerConfig, String> {
        let mut tc = TransformerConfig::default();
        let Some(m) = v.as_map() else { return Ok(tc) };
        let list = |m: &Map, k: &str| -> Result<Vec<FieldSpec>, String> {
            match m.get(k) {
                Some(Value::Seq(items)) => items.iter().map(FieldSpec::from_value).collect(),
                _ => Ok(Vec::new()),
            }
        };
        tc.name_prefix = list(m, "namePrefix")?;
        tc.name_suffix = list(m, "nameSuffix")?;
        tc.namespace = list(m, "namespace")?;
        tc.common_labels = list(m, "commonLabels")?;
        tc.template_labels = list(m, "templateLabels")?;
        tc.labels = list(m, "labels")?;
        tc.common_annotations = list(m, "commonAnnotations")?;
        tc.var_reference = list(m, "varReference")?;
        tc.images = list(m, "images")?;
        tc.replicas = list(m, "replicas")?;
        if let Some(Value::Seq(items)) = m.get("nameReference") {
            for it in items {
                let Some(im) = it.as_map() else { continue };
                let s = |k: &str| im.get(k).and_then(Value::scalar_string).unwrap_or_default();
                let referrers = list(im, "fieldSpecs")?;
                tc.name_reference.push(NameBackRef {
                    gvk: Gvk {
                        group: s("group"),
                        version: s("version"),
                        kind: s("kind"),
                    },
                    referrers,
                });
            }
        }
        Ok(tc)
    }

    /// kustomize's built-in defaults: the tables generated from kustomize's
    /// own `konfig` data (`fieldspec_table`), plus `metadata/namespace` for
    /// the namespace transformer (kustomize's namespace filter sets that
    /// field itself rather than through a field spec).
    pub fn defaults() -> TransformerConfig {
        use crate::fieldspec_table as t;
        let list =
            |fss: &[t::Fs]| -> Vec<FieldSpec> { fss.iter().map(FieldSpec::from_table).collect() };
        let mut namespace = vec![FieldSpec::any("metadata/namespace", true)];
        namespace.extend(list(t::NAMESPACE));
        TransformerConfig {
            name_prefix: list(t::NAME_PREFIX),
            name_suffix: list(t::NAME_SUFFIX),
            namespace,
            common_labels: list(t::COMMON_LABELS),
            template_labels: list(t::TEMPLATE_LABELS),
            labels: Vec::new(),
            common_annotations: list(t::COMMON_ANNOTATIONS),
            name_reference: t::NAME_REFERENCE
                .iter()
                .map(|b| NameBackRef {
                    gvk: Gvk {
                        group: b.group.into(),
                        version: b.version.into(),
                        kind: b.kind.into(),
                    },
                    referrers: list(b.referrers),
                })
                .collect(),
            var_reference: list(t::VAR_REFERENCE),
            images: list(t::IMAGES),
            replicas: list(t::REPLICAS),
        }
    }
}

/// Splits a field-spec path on `/`, honouring `\/` escapes.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'/') {
            cur.push('/');
            chars.next();
        } else if c == '/' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Walks `obj` along `path` (sequences are traversed element-wise), creating
/// missing maps when `create` is set, and calls `f` on each value found.
/// Missing values reached with `create` are passed as `Null` and kept if `f`
/// replaces them.
pub fn apply<F>(obj: &mut Value, path: &[String], create: bool, f: &mut F) -> Result<(), String>
where
    F: FnMut(&mut Value) -> Result<(), String>,
{
    if path.is_empty() {
        return f(obj);
    }
    match obj {
        Value::Null => Ok(()),
        Value::Seq(items) => {
            for it in items {
                apply(it, path, create, f)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            let (seg, is_seq) = match path[0].strip_suffix("[]") {
                Some(s) => (s, true),
                None => (path[0].as_str(), false),
            };
            if let Some(child) = m.get_mut(seg) {
                if child.is_null() && create && !is_seq && path.len() > 1 {
                    *child = Value::Map(Map::new());
                }
                return apply(child, &path[1..], create, f);
            }
            if !create || is_seq {
                return Ok(());
            }
            let mut child = if path.len() > 1 {
                Value::Map(Map::new())
            } else {
                Value::Null
            };
            apply(&mut child, &path[1..], create, f)?;
            if path.len() > 1 || !child.is_null() {
                m.insert(seg, child);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
