//! `values.schema.json` validation, as Helm's `ValidateAgainstSchema`: the
//! chart's schema against its values, then each enabled subchart's schema
//! against the values under its name; every violation listed under the
//! chart's name.
//!
//! Validation is the `jsonschema` crate's (drafts 4, 6, 7, 2019-09 and
//! 2020-12, chosen by `$schema`). Helm would fetch a `$ref` to an `http(s)`
//! or `file` URL; sluice never does (rendering is offline and must not read
//! the controller's files): such a schema fails with a message naming the
//! reference, and `--skip-schema-validation` renders without it.

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use super::coalesce::Node;

/// Refuses every external reference, naming it.
struct Offline;

impl jsonschema::Retrieve for Offline {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "the schema refers to {}, which sluice does not fetch (rendering is offline); \
             vendor it into values.schema.json or use --skip-schema-validation",
            uri.as_str()
        )
        .into())
    }
}

pub(crate) fn to_json(v: &Y) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(*b),
        Y::Int(i) => J::from(*i),
        // Go's float64 values: integral ones are integers to a schema.
        Y::Float(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => J::from(*f as i64),
        Y::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Y::Str(s) => J::String(s.to_string()),
        Y::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Y::Map(m) => J::Object(m.iter().map(|(k, x)| (k.to_string(), to_json(x))).collect()),
    }
}

/// The `$ref`s of a schema that name an `http(s)` or `file` URL, sorted and
/// without repeats. They are reported all at once, before the validator is
/// built: the validator resolves references in no fixed order, so the one
/// it would fail on first differs from run to run.
fn external_refs(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let serde_json::Value::String(r) = x
                {
                    let lower = r.to_ascii_lowercase();
                    if ["http://", "https://", "file:"]
                        .iter()
                        .any(|p| lower.starts_with(p))
                    {
                        out.insert(r.split('#').next().unwrap_or(r).to_string());
                    }
                }
                external_refs(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| external_refs(x, out)),
        _ => {}
    }
}

/// Validates `values` against one schema; the violations, one per line, as
/// `- at 'PATH': MESSAGE`.
pub fn validate_one(schema: &[u8], values: &YMap) -> Result<(), String> {
    let schema: serde_json::Value =
        serde_json::from_slice(schema).map_err(|e| format!("values.schema.json: {e}\n"))?;
    let mut refs = std::collections::BTreeSet::new();
    external_refs(&schema, &mut refs);
    if !refs.is_empty() {
        let list: Vec<&str> = refs.iter().map(String::as_str).collect();
        return Err(format!(
            "values.schema.json: the schema refers to {}, which sluice does not fetch (rendering \
             is offline); vendor {} into values.schema.json or use --skip-schema-validation\n",
            list.join(", "),
            if list.len() == 1 { "it" } else { "them" }
        ));
    }
    let validator = jsonschema::options()
        .with_retriever(Offline)
        .build(&schema)
        .map_err(|e| format!("values.schema.json: {e}\n"))?;
    let instance = to_json(&Y::Map(values.clone()));
    let mut out = String::new();
    for e in validator.iter_errors(&instance) {
        out.push_str(&format!("- at '{}': {e}\n", e.instance_path()));
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Helm's `ValidateAgainstSchema` over the processed chart tree.
pub(crate) fn validate_tree(node: &Node<'_>, values: &YMap) -> Result<(), String> {
    let mut out = String::new();
    walk(node, values, &mut out);
    if out.is_empty() { Ok(()) } else { Err(out) }
}

fn walk(node: &Node<'_>, values: &YMap, out: &mut String) {
    if let Some(schema) = &node.chart.schema
        && let Err(e) = validate_one(schema, values)
    {
        out.push_str(&format!("{}:\n{e}", node.name));
    }
    for child in &node.children {
        match values.get(&child.name) {
            None | Some(Y::Null) => {}
            Some(Y::Map(sub)) => walk(child, sub, out),
            Some(other) => out.push_str(&format!(
                "{}:\ninvalid type for values: expected object (map), got {}\n",
                child.name,
                match other {
                    Y::Str(_) => "string",
                    Y::Bool(_) => "bool",
                    Y::Seq(_) => "[]interface {}",
                    _ => "float64",
                }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(t: &str) -> YMap {
        crate::values::load_values(t.as_bytes()).unwrap()
    }

    #[test]
    fn violations_name_the_path() {
        let schema = br#"{"type":"object","properties":{"port":{"type":"integer"}}}"#;
        assert!(validate_one(schema, &vals("port: 80\n")).is_ok());
        let e = validate_one(schema, &vals("port: http\n")).unwrap_err();
        assert!(e.starts_with("- at '/port': "), "{e}");
    }

    #[test]
    fn remote_refs_are_reported_not_fetched() {
        let schema = br#"{"$ref":"https://example.com/s.json"}"#;
        let e = validate_one(schema, &vals("a: 1\n")).unwrap_err();
        assert!(e.contains("https://example.com/s.json"), "{e}");
        let schema = br#"{"$ref":"file:///etc/passwd"}"#;
        let e = validate_one(schema, &vals("a: 1\n")).unwrap_err();
        assert!(e.contains("file:///etc/passwd"), "{e}");
    }

    #[test]
    fn every_remote_ref_is_named_in_a_fixed_order() {
        let schema = br##"{"properties":{
            "b":{"$ref":"https://example.com/b.json#/x"},
            "a":{"allOf":[{"$ref":"https://example.com/a.json"},{"$ref":"#/definitions/d"}]},
            "c":{"$ref":"https://example.com/a.json#/y"}},
            "definitions":{"d":{"type":"string"}}}"##;
        for _ in 0..5 {
            let e = validate_one(schema, &vals("a: 1\n")).unwrap_err();
            assert_eq!(
                e,
                "values.schema.json: the schema refers to https://example.com/a.json, \
                 https://example.com/b.json, which sluice does not fetch (rendering is offline); \
                 vendor them into values.schema.json or use --skip-schema-validation\n"
            );
        }
    }
}
