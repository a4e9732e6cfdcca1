//! Built-in transformers: namespace, name prefix/suffix, labels and
//! annotations, images, replicas, and the legacy sort.

use std::collections::HashSet;

use crate::fieldspec::{FieldSpec, TransformerConfig, apply, split_path};
use crate::resource::{Gvk, ResMap, Resource};
use crate::yaml::{Map, Value};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleBindingSubjects {
    DefaultOnly,
    AllServiceAccounts,
    None,
}

fn set_scalar(v: &mut Value, s: &str) {
    *v = Value::str(s);
}

/// The namespace transformer.
pub fn namespace(
    rm: &mut ResMap,
    ns: &str,
    fss: &[FieldSpec],
    unset_only: bool,
    mode: RoleBindingSubjects,
) -> Result<()> {
    let setter = |v: &mut Value| -> Result<(), String> {
        if unset_only && !matches!(v, Value::Null) && v.as_str() != Some("") {
            return Ok(());
        }
        set_scalar(v, ns);
        Ok(())
    };
    for r in rm.list.iter_mut() {
        if r.is_empty() {
            continue;
        }
        r.store_previous_id();
        let gvk = r.gvk();
        let is_rb = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
        let api_version = r.api_version().to_string();
        for fs in fss {
            if !gvk.is_selected(&fs.gvk) {
                continue;
            }
            if fs.path == "metadata/namespace" {
                if gvk.is_cluster_scoped() {
                    continue;
                }
            } else if fs.path == "metadata/name" {
                if gvk.kind != "Namespace" || api_version != "v1" {
                    continue;
                }
            } else if is_rb && fs.path.starts_with("subjects") {
                continue;
            }
            let path = split_path(&fs.path);
            apply(&mut r.obj, &path, fs.create, &mut |v| setter(v)).map_err(Error::msg)?;
        }
        if is_rb
            && mode != RoleBindingSubjects::None
            && let Some(Value::Seq(subjects)) = r.obj.get_mut("subjects")
        {
            for s in subjects.iter_mut() {
                let Some(m) = s.as_map_mut() else { continue };
                let hit = match mode {
                    RoleBindingSubjects::DefaultOnly => m.get_str_eq("name", "default"),
                    RoleBindingSubjects::AllServiceAccounts => {
                        m.get_str_eq("kind", "ServiceAccount")
                    }
                    RoleBindingSubjects::None => false,
                };
                if hit {
                    let mut v = m.get("namespace").cloned().unwrap_or(Value::Null);
                    setter(&mut v).map_err(Error::msg)?;
                    m.insert("namespace", v);
                }
            }
        }
    }
    let mut seen = HashSet::new();
    for r in &rm.list {
        let id = r.cur_id();
        if !seen.insert(id.key()) {
            return Err(Error::msg(format!(
                "namespace transformation produces ID conflict: {id}"
            )));
        }
    }
    Ok(())
}

trait MapExt {
    fn get_str_eq(&self, k: &str, v: &str) -> bool;
}
impl MapExt for Map {
    fn get_str_eq(&self, k: &str, v: &str) -> bool {
        self.get(k).and_then(Value::as_str) == Some(v)
    }
}

fn skip_prefix(id: &Gvk) -> bool {
    id.kind == "CustomResourceDefinition"
        || (id.kind == "APIService" && id.group == "apiregistration.k8s.io")
        || id.kind == "Namespace"
}

/// The prefix/suffix transformer. Runs in every kustomization, even with
/// empty values: the recorded (possibly empty) prefixes and suffixes tell
/// the name-reference step which kustomization layers a resource went
/// through.
pub fn prefix_suffix(
    rm: &mut ResMap,
    prefix: Option<&str>,
    suffix: Option<&str>,
    fss: &[FieldSpec],
) -> Result<()> {
    let (record_prefix, record_suffix) = (prefix.is_some(), suffix.is_some());
    let (prefix, suffix) = (prefix.unwrap_or(""), suffix.unwrap_or(""));
    // Kind-specific `metadata/name` specs from `configurations:` replace the
    // catch-all default (as in kustomize, where only those kinds are renamed).
    let specific = fss
        .iter()
        .any(|f| f.path == "metadata/name" && f.gvk != Gvk::default());
    let owned: Vec<FieldSpec>;
    let fss = if specific {
        owned = fss
            .iter()
            .filter(|f| !(f.path == "metadata/name" && f.gvk == Gvk::default()))
            .cloned()
            .collect();
        &owned[..]
    } else {
        fss
    };
    for r in rm.list.iter_mut() {
        let org = r.org_id();
        if skip_prefix(&org.gvk) {
            continue;
        }
        for fs in fss {
            if !org.gvk.is_selected(&fs.gvk) {
                continue;
            }
            if fs.path == "metadata/name" {
                if record_prefix {
                    r.prefixes.push(prefix.to_string());
                }
                if record_suffix {
                    r.suffixes.push(suffix.to_string());
                }
                if !prefix.is_empty() || !suffix.is_empty() {
                    r.store_previous_id();
                }
            }
            if prefix.is_empty() && suffix.is_empty() {
                continue;
            }
            let path = split_path(&fs.path);
            apply(&mut r.obj, &path, fs.create, &mut |v| {
                if let Some(s) = v.scalar_string()
                    && !matches!(v, Value::Null)
                {
                    *v = Value::str(format!("{prefix}{s}{suffix}"));
                }
                Ok(())
            })
            .map_err(Error::msg)?;
        }
    }
    Ok(())
}

/// Sets map entries (labels, annotations) at each field spec.
pub fn set_map_fields(
    rm: &mut ResMap,
    pairs: &[(String, String)],
    fss: &[FieldSpec],
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let paths: Vec<(Gvk, Vec<String>, bool)> = fss
        .iter()
        .map(|f| (f.gvk.clone(), split_path(&f.path), f.create))
        .collect();
    for r in rm.list.iter_mut() {
        let gvk = r.gvk();
        for (sel, path, create) in &paths {
            if !gvk.is_selected(sel) {
                continue;
            }
            apply(&mut r.obj, path, *create, &mut |v| {
                if v.is_null() {
                    *v = Value::Map(Map::new());
                }
                match v {
                    Value::Map(m) => {
                        for (k, val) in pairs {
                            m.insert(k.clone(), Value::str(val.clone()));
                        }
                        Ok(())
                    }
                    other => Err(format!(
                        "expected a map at {}, got a {}",
                        path.join("/"),
                        other.kind_name()
                    )),
                }
            })
            .map_err(Error::msg)?;
        }
    }
    Ok(())
}

/// Splits an image reference into name, tag and digest (kustomize's
/// `image.Split`).
pub fn split_image(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (ic, Some(d)) if ic.is_none() || Some(d) < ic => {
            let d = d + slash;
            (
                image[..d].to_string(),
                String::new(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), Some(d)) => {
            let (c, d) = (c + slash, d + slash);
            (
                image[..c].to_string(),
                image[c + 1..d].to_string(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), None) => {
            let c = c + slash;
            (
                image[..c].to_string(),
                image[c + 1..].to_string(),
                String::new(),
            )
        }
        _ => (image.to_string(), String::new(), String::new()),
    }
}

struct ImageRule {
    re: Option<regex::Regex>,
    new_name: String,
    new_tag: String,
    digest: String,
}

impl ImageRule {
    fn update(&self, v: &mut Value) {
        let Some(cur) = v.as_str() else { return };
        let Some(re) = &self.re else { return };
        if !re.is_match(cur) {
            return;
        }
        let (mut name, mut tag, mut digest) = split_image(cur);
        if !self.new_name.is_empty() {
            name = self.new_name.clone();
        }
        if !self.new_tag.is_empty() && !self.digest.is_empty() {
            tag = self.new_tag.clone();
            digest = self.digest.clone();
        } else if !self.new_tag.is_empty() {
            tag = self.new_tag.clone();
            digest.clear();
        } else if !self.digest.is_empty() {
            tag.clear();
            digest = self.digest.clone();
        }
        if !tag.is_empty() {
            name = format!("{name}:{tag}");
        }
        if !digest.is_empty() {
            name = format!("{name}@{digest}");
        }
        *v = Value::str(name);
    }
}

fn legacy_images(v: &mut Value, rule: &ImageRule) {
    match v {
        Value::Map(m) => {
            for (k, child) in m.0.iter_mut() {
                if (k == "containers" || k == "initContainers")
                    && let Value::Seq(items) = child
                {
                    for it in items.iter_mut() {
                        if let Some(img) = it.get_mut("image") {
                            rule.update(img);
                        }
                    }
                    continue;
                }
                legacy_images(child, rule);
            }
        }
        Value::Seq(items) => {
            for it in items.iter_mut() {
                legacy_images(it, rule);
            }
        }
        _ => {}
    }
}

/// The image tag transformer, for each `images:` entry.
pub fn images(rm: &mut ResMap, entries: &[Value], fss: &[FieldSpec]) -> Result<()> {
    for e in entries {
        let s = |k: &str| e.get(k).and_then(Value::scalar_string).unwrap_or_default();
        let name = s("name");
        let mut new_tag = s("newTag");
        if let Some(Value::Int(_) | Value::Float(_)) = e.get("newTag") {
            new_tag = e
                .get("newTag")
                .and_then(Value::scalar_string)
                .unwrap_or_default();
        }
        let rule = ImageRule {
            re: regex::Regex::new(&format!("^{name}(@sha256)?(:[a-zA-Z0-9_.{{}}-]*)?$")).ok(),
            new_name: s("newName"),
            new_tag,
            digest: s("digest"),
        };
        let paths: Vec<(Gvk, Vec<String>)> = fss
            .iter()
            .map(|f| (f.gvk.clone(), split_path(&f.path)))
            .collect();
        for r in rm.list.iter_mut() {
            legacy_images(&mut r.obj, &rule);
            let gvk = r.gvk();
            for (sel, path) in &paths {
                if !gvk.is_selected(sel) {
                    continue;
                }
                apply(&mut r.obj, path, false, &mut |v| {
                    rule.update(v);
                    Ok(())
                })
                .map_err(Error::msg)?;
            }
        }
    }
    Ok(())
}

/// The replica count transformer.
pub fn replicas(rm: &mut ResMap, entries: &[Value], fss: &[FieldSpec]) -> Result<()> {
    for e in entries {
        let name = e
            .get("name")
            .and_then(Value::scalar_string)
            .unwrap_or_default();
        let count = match e.get("count") {
            Some(Value::Int(i)) => *i,
            Some(v) => v.scalar_string().and_then(|s| s.parse().ok()).unwrap_or(0),
            None => 0,
        };
        let mut found = false;
        for fs in fss {
            let path = split_path(&fs.path);
            for r in rm.list.iter_mut() {
                let matches = std::iter::once(r.cur_id())
                    .chain(r.prev_ids.iter().cloned())
                    .any(|id| id.name == name && id.gvk.is_selected(&fs.gvk));
                if !matches {
                    continue;
                }
                found = true;
                apply(&mut r.obj, &path, fs.create, &mut |v| {
                    *v = Value::Int(count);
                    Ok(())
                })
                .map_err(Error::msg)?;
            }
        }
        if !found {
            let gvks: Vec<String> = fss.iter().map(|f| f.gvk.to_string()).collect();
            return Err(Error::msg(format!(
                "resource with name {name} does not match a config with the following GVK [{}]",
                gvks.join(" ")
            )));
        }
    }
    Ok(())
}

/// Custom kind order for the legacy sort.
#[derive(Clone, Debug, Default)]
pub struct LegacySort {
    pub first: Vec<String>,
    pub last: Vec<String>,
}

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// kustomize's legacy order (`SortOrderTransformer`'s `legacyIDSorter`):
/// by kind rank (the `orderFirst` kinds, then unlisted ones, then the
/// `orderLast` kinds), then by the GVK as `group_version_kind`, then by
/// `namespace|name` (`~X` for no namespace) compared as one string, so a
/// namespace sorts before a name and `a-b` before `a`.
pub fn legacy_sort(list: &mut Vec<Resource>, custom: Option<&LegacySort>) {
    let (first, last): (Vec<&str>, Vec<&str>) = match custom {
        Some(c) => (
            c.first.iter().map(String::as_str).collect(),
            c.last.iter().map(String::as_str).collect(),
        ),
        None => (ORDER_FIRST.to_vec(), ORDER_LAST.to_vec()),
    };
    // Like kustomize's map: a kind listed twice takes its last place, and
    // `orderLast` wins over `orderFirst`.
    let mut ranks: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (i, k) in first.iter().enumerate() {
        ranks.insert(k, i as i64 - first.len() as i64);
    }
    for (i, k) in last.iter().enumerate() {
        ranks.insert(k, i as i64 + 1);
    }
    struct Key {
        rank: i64,
        namespace_kind: bool,
        no_group: bool,
        gvk: String,
        id: String,
        index: usize,
    }
    let mut keyed: Vec<Key> = list
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let id = r.cur_id();
            Key {
                rank: ranks.get(id.gvk.kind.as_str()).copied().unwrap_or(0),
                namespace_kind: id.gvk.kind == "Namespace",
                no_group: id.gvk.group.is_empty(),
                gvk: legacy_gvk_string(&id.gvk),
                id: legacy_id_string(&id.namespace, &id.name),
                index,
            }
        })
        .collect();
    keyed.sort_by(|a, b| {
        if a.gvk != b.gvk {
            if a.rank != b.rank {
                return a.rank.cmp(&b.rank);
            }
            // kustomize puts a core Namespace after other groups' ones.
            if a.namespace_kind && b.namespace_kind && (a.no_group || b.no_group) {
                return b.gvk.cmp(&a.gvk);
            }
            return a.gvk.cmp(&b.gvk);
        }
        a.id.cmp(&b.id)
    });
    let order: Vec<usize> = keyed.into_iter().map(|k| k.index).collect();
    // Move the resources into their places: no copies (the resources are
    // the bulk of a build's memory).
    let mut slots: Vec<Option<Resource>> = std::mem::take(list).into_iter().map(Some).collect();
    *list = order
        .into_iter()
        .filter_map(|src| slots.get_mut(src).and_then(Option::take))
        .collect();
}

/// kustomize's `legacyGVKSortString`.
fn legacy_gvk_string(gvk: &crate::resource::Gvk) -> String {
    let or = |s: &str, d: &'static str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&gvk.group, "~G"),
        or(&gvk.version, "~V"),
        or(&gvk.kind, "~K")
    )
}

/// kustomize's `legacyResIDSortString` without its GVK part (equal
/// wherever it is compared).
fn legacy_id_string(namespace: &str, name: &str) -> String {
    let ns = if namespace.is_empty() {
        "~X"
    } else {
        namespace
    };
    let nm = if name.is_empty() { "~N" } else { name };
    format!("{ns}|{nm}")
}

/// Name-reference configuration from CRD OpenAPI definitions (`crds:`): a
/// JSON map of definition names to `{"Schema": {...}}` (or bare schemas).
/// A property marked `x-kubernetes-object-ref-kind` refers to a resource
/// of that kind by its `name` field.
pub fn config_from_crds(text: &str, file: &str) -> Result<TransformerConfig> {
    let v = crate::yaml::parse_one(text).map_err(|e| Error::yaml(file, e))?;
    let mut tc = TransformerConfig::default();
    let Some(defs) = v.as_map() else {
        return Ok(tc);
    };
    let schema = |d: &Value| -> Value { d.get("Schema").cloned().unwrap_or_else(|| d.clone()) };
    for (key, def) in defs.iter() {
        let sch = schema(def);
        let Some(props) = sch.get("properties").and_then(Value::as_map) else {
            continue;
        };
        if !(props.contains("kind") && props.contains("apiVersion")) {
            continue;
        }
        let kind = key.rsplit('.').next().unwrap_or(key).to_string();
        crd_walk(&sch, defs, &kind, "", &mut tc, 0);
    }
    Ok(tc)
}

fn crd_walk(
    def: &Value,
    defs: &Map,
    kind: &str,
    prefix: &str,
    tc: &mut TransformerConfig,
    depth: usize,
) {
    if depth > 20 {
        return;
    }
    let Some(props) = def.get("properties").and_then(Value::as_map) else {
        return;
    };
    for (name, p) in props.iter() {
        if prefix.is_empty() && (name == "metadata" || name == "status") {
            continue;
        }
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        if let Some(refkind) = p.get_str("x-kubernetes-object-ref-kind") {
            let fs = FieldSpec::new(kind, "", "", &format!("{path}/name"), false);
            let version = p
                .get_str("x-kubernetes-object-ref-api-version")
                .unwrap_or("");
            let gvk = Gvk::from_api_version(version, refkind);
            match tc.name_reference.iter_mut().find(|b| b.gvk == gvk) {
                Some(b) => b.referrers.push(fs),
                None => tc.name_reference.push(crate::fieldspec::NameBackRef {
                    gvk,
                    referrers: vec![fs],
                }),
            }
            continue;
        }
        let target = p
            .get_str("$ref")
            .or_else(|| p.get("items").and_then(|i| i.get_str("$ref")));
        match target {
            Some(r) => {
                let key = r.trim_start_matches("#/definitions/");
                if let Some(sub) = defs.get(key) {
                    let sub = sub.get("Schema").cloned().unwrap_or_else(|| sub.clone());
                    crd_walk(&sub, defs, kind, &path, tc, depth + 1);
                }
            }
            None => crd_walk(p, defs, kind, &path, tc, depth + 1),
        }
    }
}
