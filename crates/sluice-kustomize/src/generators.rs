//! ConfigMap and Secret generators, and the content-hash name suffix.

use std::collections::HashSet;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::engine::Loader;
use crate::resource::{Behavior, ResMap, Resource};
use crate::yaml::{Map, Value};
use crate::{Error, Result};

fn opt_map(v: Option<&Value>) -> Vec<(String, String)> {
    crate::resource::string_map(v)
}

fn merge_pairs(local: &mut Vec<(String, String)>, global: &[(String, String)]) {
    for (k, v) in global {
        if !local.iter().any(|(lk, _)| lk == k) {
            local.push((k.clone(), v.clone()));
        }
    }
}

/// kustomize's `parseLiteralSource`: `key=value`, the value unquoted.
fn parse_literal_source(source: &str) -> Result<(String, String), String> {
    match source.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), strip_quotes(v).to_string())),
        _ => Err(format!(
            "invalid literal source {source}, expected key=value"
        )),
    }
}

/// kustomize's `ParseFileSource`: `path` (keyed by its base name) or
/// `key=path`.
fn parse_file_source(source: &str) -> Result<(String, String), String> {
    match source.matches('=').count() {
        0 => Ok((go_path_base(source), source.to_string())),
        1 if source.starts_with('=') => Err(format!(
            "missing key name for file path {:?} in source {source:?}",
            &source[1..]
        )),
        1 if source.ends_with('=') => Err(format!(
            "missing file path for key name {:?} in source {source:?}",
            &source[..source.len() - 1]
        )),
        1 => {
            let (k, p) = source.split_once('=').unwrap_or((source, ""));
            Ok((k.to_string(), p.to_string()))
        }
        _ => Err(format!(
            "source {source:?} key name or file path contains '='"
        )),
    }
}

/// Go's `path.Base`.
fn go_path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Parses `KEY=VALUE` env-file lines the way kustomize does.
fn env_file_pairs(content: &[u8], file: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let text = std::str::from_utf8(content)
        .map_err(|_| Error::msg(format!("env file {file} has invalid utf8 bytes")))?;
    for (n, raw) in text.split('\n').enumerate() {
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if n == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A line without `=` is a key with an empty value; kustomize's
        // validator accepts any name (`1X`, `a b`).
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn strip_quotes(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[0] == b[b.len() - 1] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

enum Datum {
    Text(String),
    Bytes(Vec<u8>),
}

/// Generates one ConfigMap or Secret from a generator entry.
pub fn generate(ldr: &Loader, g: &Value, global: Option<&Value>, kind: &str) -> Result<Resource> {
    let name = g
        .get("name")
        .and_then(Value::scalar_string)
        .unwrap_or_default();
    let namespace = g
        .get("namespace")
        .and_then(Value::scalar_string)
        .unwrap_or_default();
    let behavior_s = g
        .get("behavior")
        .and_then(Value::scalar_string)
        .unwrap_or_default();
    // kustomize reads any other word (`add`, ...) as no behavior: the
    // generated object is created.
    let behavior = Behavior::parse(&behavior_s).unwrap_or_default();
    // The keys so far, and a set of them: an env file may have thousands.
    let mut pairs: (Vec<(String, Datum)>, HashSet<String>) = Default::default();
    let add =
        |k: String, d: Datum, pairs: &mut (Vec<(String, Datum)>, HashSet<String>)| -> Result<()> {
            // kustomize's validator accepts any key (`a b`, `x/y`): so does
            // this, the API server judges.
            if !pairs.1.insert(k.clone()) {
                // kustomize's words, "configmap" for Secrets too.
                return Err(Error::msg(format!(
                    "configmap {name} illegally repeats the key `{k}`"
                )));
            }
            pairs.0.push((k, d));
            Ok(())
        };
    let strings = |k: &str| -> Vec<String> {
        match g.get(k) {
            Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_string).collect(),
            Some(Value::Str(s)) => vec![s.to_string()],
            _ => Vec::new(),
        }
    };
    // kustomize loads every source (env files, then literals, then files)
    // before it checks the keys.
    let list = |k: &str| format!("[{}]", strings(k).join(" "));
    let mut loaded: Vec<(String, Datum)> = Vec::new();
    let mut envs = strings("envs");
    envs.extend(strings("env"));
    for e in &envs {
        let content = ldr.read_bytes(e)?;
        for (k, v) in env_file_pairs(&content, e)? {
            loaded.push((k, Datum::Text(v)));
        }
    }
    for lit in strings("literals") {
        let (k, v) = parse_literal_source(&lit).map_err(|e| {
            Error::msg(format!(
                "loading KV pairs: literal sources {}: {e}",
                list("literals")
            ))
        })?;
        loaded.push((k, Datum::Text(v)));
    }
    for f in strings("files") {
        let (k, path) = parse_file_source(&f).map_err(|e| {
            Error::msg(format!(
                "loading KV pairs: file sources: {}: {e}",
                list("files")
            ))
        })?;
        let bytes = ldr.read_bytes(&path)?;
        let d = match String::from_utf8(bytes) {
            Ok(s) => Datum::Text(s),
            Err(e) => Datum::Bytes(e.into_bytes()),
        };
        loaded.push((k, d));
    }
    for (k, d) in loaded {
        add(k, d, &mut pairs)?;
    }

    // Options.
    let local = g.get("options");
    let mut labels = opt_map(local.and_then(|o| o.get("labels")));
    let mut annotations = opt_map(local.and_then(|o| o.get("annotations")));
    let mut disable_hash = matches!(
        local.and_then(|o| o.get("disableNameSuffixHash")),
        Some(Value::Bool(true))
    );
    let mut immutable = matches!(
        local.and_then(|o| o.get("immutable")),
        Some(Value::Bool(true))
    );
    if let Some(gl) = global {
        merge_pairs(&mut labels, &opt_map(gl.get("labels")));
        merge_pairs(&mut annotations, &opt_map(gl.get("annotations")));
        if matches!(gl.get("disableNameSuffixHash"), Some(Value::Bool(true))) {
            disable_hash = true;
        }
        if matches!(gl.get("immutable"), Some(Value::Bool(true))) {
            immutable = true;
        }
    }

    let mut md = Map::new();
    md.insert("name", Value::str(name.clone()));
    if !namespace.is_empty() {
        md.insert("namespace", Value::str(namespace));
    }
    if !labels.is_empty() {
        md.insert(
            "labels",
            Value::Map(Map(labels
                .into_iter()
                .map(|(k, v)| (k.into(), Value::str(v)))
                .collect())),
        );
    }
    if !annotations.is_empty() {
        md.insert(
            "annotations",
            Value::Map(Map(annotations
                .into_iter()
                .map(|(k, v)| (k.into(), Value::str(v)))
                .collect())),
        );
    }
    let mut obj = Map::new();
    obj.insert("apiVersion", Value::str("v1"));
    obj.insert("kind", Value::str(kind));
    obj.insert("metadata", Value::Map(md));
    if kind == "Secret" {
        let ty = g
            .get("type")
            .and_then(Value::scalar_string)
            .unwrap_or_else(|| "Opaque".into());
        // Keys are unique (`add`): no lookups needed.
        let mut data = Map::new();
        for (k, d) in pairs.0 {
            let b = match d {
                Datum::Text(s) => s.into_bytes(),
                Datum::Bytes(b) => b,
            };
            data.0.push((k.into(), Value::str(encode_base64(&b))));
        }
        // kustomize gives a Secret a `data` map even when it is empty (a
        // ConfigMap only gets one with keys).
        obj.insert("data", Value::Map(data));
        obj.insert("type", Value::str(ty));
    } else {
        let mut data = Map::new();
        let mut bin = Map::new();
        for (k, d) in pairs.0 {
            match d {
                Datum::Text(s) => data.0.push((k.into(), Value::str(s))),
                Datum::Bytes(b) => bin.0.push((k.into(), Value::str(encode_base64(&b)))),
            }
        }
        if !data.is_empty() {
            obj.insert("data", Value::Map(data));
        }
        if !bin.is_empty() {
            obj.insert("binaryData", Value::Map(bin));
        }
    }
    if immutable {
        obj.insert("immutable", Value::Bool(true));
    }
    let mut r = Resource::new(Value::Map(obj));
    r.behavior = behavior;
    r.needs_hash = !disable_hash;
    r.generated = true;
    Ok(r)
}

/// kustomize's `CopyMergeMetaDataFieldsFrom`: labels and annotations merged
/// (the new resource wins), name and namespace taken from `old`.
pub fn copy_merge_metadata(r: &mut Resource, old: &Resource) {
    let merged = |a: Vec<(String, String)>, b: Vec<(String, String)>| {
        let mut m = Map::new();
        for (k, v) in a.into_iter().chain(b) {
            m.insert(k, Value::str(v));
        }
        m
    };
    let labels = merged(old.labels(), r.labels());
    let old_ann: Vec<(String, String)> = old.annotations();
    let mut new_ann = r.annotations();
    if r.behavior == Behavior::Merge {
        // A merged resource keeps where it came from.
        new_ann.retain(|(k, _)| k != crate::engine::ORIGIN_ANNOTATION);
    }
    let anns = merged(old_ann, new_ann);
    let name = old.name();
    let ns = old.namespace();
    let md = r.metadata_mut();
    if labels.is_empty() {
        md.remove("labels");
    } else {
        md.insert("labels", Value::Map(labels));
    }
    if anns.is_empty() {
        md.remove("annotations");
    } else {
        md.insert("annotations", Value::Map(anns));
    }
    md.insert("name", Value::str(name));
    if ns.is_empty() {
        md.remove("namespace");
    } else {
        md.insert("namespace", Value::str(ns));
    }
    r.prev_ids = old.prev_ids.clone();
    r.prefixes = old.prefixes.clone();
    r.suffixes = old.suffixes.clone();
    r.needs_hash = r.needs_hash && old.needs_hash;
    r.generated = true;
}

/// Merges `data` and `binaryData` of `old` under those of `r`.
pub fn merge_data(r: &mut Resource, old: &Resource) {
    for field in ["data", "binaryData"] {
        let mut m = old
            .obj
            .get(field)
            .and_then(Value::as_map)
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Map(new)) = r.obj.get(field) {
            m.set_all(new.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(o) = r.obj.as_map_mut()
            && !m.is_empty()
        {
            o.insert(field, Value::Map(m));
        }
    }
}

/// Base64 broken into 70-character lines (each followed by a newline) when
/// longer than one line, as kustomize's generators do.
pub fn encode_base64(b: &[u8]) -> String {
    const LINE: usize = 70;
    let enc = base64::engine::general_purpose::STANDARD.encode(b);
    if enc.len() < LINE {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / LINE + 1);
    let bytes = enc.as_bytes();
    for chunk in bytes.chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn encode_hash(hex: &str) -> String {
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

fn lookup_for_hash(obj: &Value, path: &[&str]) -> Value {
    match obj.get_path(path) {
        None => Value::str(""),
        Some(Value::Map(m)) => Value::Map(m.clone()),
        Some(Value::Seq(s)) => Value::Seq(s.clone()),
        Some(v) => Value::str(v.scalar_string().unwrap_or_default()),
    }
}

/// kustomize's content hash of a resource (10 characters).
pub fn hash(r: &Resource) -> String {
    let obj = &r.obj;
    let mut m = Map::new();
    match r.kind() {
        "ConfigMap" => {
            m.insert("kind", Value::str("ConfigMap"));
            // kustomize looks up "metadata/name" as one (absent) key, so the
            // name always hashes as "".
            m.insert("name", Value::str(""));
            m.insert("data", lookup_for_hash(obj, &["data"]));
            if let Some(Value::Map(b)) = obj.get("binaryData") {
                m.insert("binaryData", Value::Map(b.clone()));
            }
        }
        "Secret" => {
            m.insert("kind", Value::str("Secret"));
            m.insert("type", lookup_for_hash(obj, &["type"]));
            m.insert("name", Value::str(""));
            m.insert("data", lookup_for_hash(obj, &["data"]));
            if let Some(Value::Map(b)) = obj.get("stringData") {
                m.insert("stringData", Value::Map(b.clone()));
            }
        }
        _ => {
            let mut s = String::new();
            crate::yaml::to_go_json(obj, &mut s);
            return encode_hash(&hex(&Sha256::digest(s.as_bytes())));
        }
    }
    let mut s = String::new();
    crate::yaml::to_go_json(&Value::Map(m), &mut s);
    encode_hash(&hex(&Sha256::digest(s.as_bytes())))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Appends the content hash to the names of resources that need it.
pub fn add_hashes(rm: &mut ResMap) -> Result<()> {
    for r in rm.list.iter_mut() {
        if r.needs_hash {
            let h = hash(r);
            r.store_previous_id();
            let n = format!("{}-{}", r.name(), h);
            r.set_name(&n);
            r.needs_hash = false;
        }
    }
    Ok(())
}

/// The builtin `IAMPolicyGenerator` (GKE workload identity): a
/// ServiceAccount annotated with its Google service account.
pub fn iam_policy(cfg: &Value) -> Result<Resource> {
    let cloud = cfg
        .get("cloud")
        .and_then(Value::scalar_string)
        .unwrap_or_default();
    if cloud != "gke" {
        return Err(Error::msg(format!(
            "IAMPolicyGenerator: cloud {cloud:?} is not supported (only gke)"
        )));
    }
    let ks = cfg.get("kubernetesService");
    let sa = cfg.get("serviceAccount");
    let s = |v: Option<&Value>, k: &str| {
        v.and_then(|x| x.get(k))
            .and_then(Value::scalar_string)
            .unwrap_or_default()
    };
    let mut md = Map::new();
    let mut ann = Map::new();
    ann.insert(
        "iam.gke.io/gcp-service-account",
        Value::str(format!(
            "{}@{}.iam.gserviceaccount.com",
            s(sa, "name"),
            s(sa, "projectId")
        )),
    );
    md.insert("annotations", Value::Map(ann));
    md.insert("name", Value::str(s(ks, "name")));
    let ns = s(ks, "namespace");
    if !ns.is_empty() {
        md.insert("namespace", Value::str(ns));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion", Value::str("v1"));
    obj.insert("kind", Value::str("ServiceAccount"));
    obj.insert("metadata", Value::Map(md));
    Ok(Resource::new(Value::Map(obj)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_one;

    #[test]
    fn configmap_hash_matches_kustomize() {
        // kustomize names this generated ConfigMap bob-79t79mt227.
        let cm = parse_one(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bob\ndata:\n  fruit: Indian Gooseberry\n  year: \"2020\"\n  crisis: \"true\"\n",
        )
        .unwrap();
        assert_eq!(hash(&Resource::new(cm)), "79t79mt227");
    }

    #[test]
    fn long_base64_is_wrapped_like_kustomize() {
        let s = encode_base64(&[b'x'; 60]);
        assert!(s.ends_with('\n'));
        assert_eq!(s.lines().next().map(str::len), Some(70));
        assert_eq!(encode_base64(b"apple"), "YXBwbGU=");
    }
}
