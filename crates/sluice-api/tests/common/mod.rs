//! Shared by the integration tests: Flux's CRDs, sluice's CRDs, and a small validator for
//! OpenAPI v3 structural schemas.

#![allow(dead_code)]

use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

/// Where Flux's CRDs are: `$SLUICE_FLUX_CRDS`, or `shared/flux-crds` next to the checkout.
pub fn flux_crds_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SLUICE_FLUX_CRDS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/flux-crds"),
    };
    dir.is_dir().then_some(dir)
}

/// Flux's CRD in `file`, or `None` (with a note) when Flux's CRDs are not available.
pub fn flux_crd(file: &str) -> Option<Value> {
    let Some(dir) = flux_crds_dir() else {
        eprintln!(
            "note: Flux's CRDs not found (set SLUICE_FLUX_CRDS or provide ../shared/flux-crds); \
             skipping the comparison with {file}"
        );
        return None;
    };
    let path = dir.join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("note: {} not found; skipping", path.display());
        return None;
    };
    Some(serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// sluice's CRD called `name`, as JSON.
pub fn sluice_crd(name: &str) -> Value {
    sluice_api::crds()
        .into_iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .find(|crd| crd["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("sluice has no CRD {name}"))
}

/// The `openAPIV3Schema` of the storage version of a CRD (`v1`, or `v2` for HelmRelease).
pub fn stored_schema(crd: &Value) -> &Value {
    stored_version(crd)
        .pointer("/schema/openAPIV3Schema")
        .expect("openAPIV3Schema")
}

/// The storage version of a CRD (`v1`, or `v2` for HelmRelease).
pub fn stored_version(crd: &Value) -> &Value {
    crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["storage"] == true)
        .expect("a storage version")
}

/// The fixtures of `tests/fixtures`: realistic Flux objects, by file name.
pub fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, yaml(&std::fs::read_to_string(&path).unwrap()))
        })
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        fixtures.len() >= 7,
        "fixtures missing from {}",
        dir.display()
    );
    fixtures
}

/// The fixture `name`.
pub fn fixture(name: &str) -> Value {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

/// Parses a YAML document into JSON.
pub fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).expect("valid YAML")
}

/// Validates `value` against a structural schema the way an API server does for the keywords
/// Flux's CRDs use: `type`, `format` (date-time, int64), `properties` (unknown fields are
/// reported, since the API server would prune them), `additionalProperties`, `items`,
/// `required`, `enum`, `pattern`, `minLength`, `maxLength`, `minimum`. Returns the problems
/// found, each prefixed with its path.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    validate_at(schema, value, "", &mut problems);
    problems
}

fn validate_at(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "<root>" } else { path };
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
        && schema.get("properties").is_none()
    {
        return;
    }
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => {
            problems.push(format!("{at}: unsupported schema type {other}"));
            true
        }
    };
    if !type_ok {
        problems.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {}", schema["enum"]));
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            problems.push(format!("{at}: shorter than {min}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            problems.push(format!("{at}: longer than {max}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let re = Regex::new(pattern).unwrap_or_else(|e| panic!("{at}: pattern {pattern}: {e}"));
            if !re.is_match(s) {
                problems.push(format!("{at}: {s:?} does not match {pattern}"));
            }
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && s.parse::<k8s_openapi::jiff::Timestamp>().is_err()
        {
            problems.push(format!("{at}: {s:?} is not a date-time"));
        }
    }
    if let (Some(n), Some(min)) = (
        value.as_i64(),
        schema.get("minimum").and_then(Value::as_i64),
    ) && n < min
    {
        problems.push(format!("{at}: {n} is below {min}"));
    }
    if let Some(object) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = required.as_str().unwrap();
            if !object.contains_key(key) {
                problems.push(format!("{at}: missing required field {key}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, child) in object {
            let child_path = format!("{path}.{key}");
            if let Some(property) = properties.and_then(|p| p.get(key)) {
                validate_at(property, child, &child_path, problems);
            } else if let Some(additional) = additional.filter(|a| a.is_object()) {
                validate_at(additional, child, &child_path, problems);
            } else if schema.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
                && !(path.is_empty() && key == "metadata")
                && schema.get("type").and_then(Value::as_str) == Some("object")
                && properties.is_some()
            {
                problems.push(format!("{child_path}: unknown field (would be pruned)"));
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate_at(items, item, &format!("{path}[{i}]"), problems);
        }
    }
}
