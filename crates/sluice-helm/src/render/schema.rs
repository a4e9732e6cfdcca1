//! `values.schema.json` validation, as Helm's `ValidateAgainstSchema`: the
//! chart's schema against its values, then each enabled subchart's schema
//! against the values under its name; every violation listed under the
//! chart's name.
//!
//! Validation is the `jsonschema` crate's (drafts 4, 6, 7, 2019-09 and
//! 2020-12, chosen by `$schema`). Helm fetches a `$ref` to an `http(s)` URL
//! (bjw-s's app-template refers to its schemas on GitHub) or reads a `file`
//! one while it validates. This crate reaches neither network nor disk: the
//! caller fetches the `http(s)` documents [`external_documents`] lists and
//! hands them over in [`Documents`]; a `file` reference (the controller's own
//! files) is never read. A reference without its document fails with a
//! message naming it, and `--skip-schema-validation` renders without it.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use super::coalesce::Node;

/// The documents schemas refer to by URL (without fragment): each one as
/// fetched, or why it could not be.
pub type Documents =
    std::sync::Arc<std::collections::BTreeMap<String, Result<serde_json::Value, String>>>;

/// Serves the fetched documents, refuses every other external reference.
struct Fetched(Documents);

impl jsonschema::Retrieve for Fetched {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        let url = uri.as_str();
        let url = url.split('#').next().unwrap_or(url);
        match self.0.get(url) {
            Some(Ok(doc)) => Ok(doc.clone()),
            Some(Err(why)) => {
                Err(format!("the schema refers to {url}, which could not be fetched: {why}").into())
            }
            None => Err(format!(
                "the schema refers to {url}, which was not fetched; \
                 vendor it into values.schema.json or use --skip-schema-validation"
            )
            .into()),
        }
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

/// Whether `uri` names something outside the schema: an `http(s)` or `file`
/// URL.
fn is_external(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    ["http://", "https://", "file:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// `reference` resolved against the document URL `base` (its directory), or
/// `None` when it cannot be.
fn resolve(base: &str, reference: &str) -> Option<String> {
    let base = base.split(['#', '?']).next().unwrap_or(base);
    let dir = &base[..base.rfind('/').map_or(base.len(), |i| i + 1)];
    crate::urlutil::resolve_reference_url(dir, reference).ok()
}

/// The `$ref`s of a schema that name an `http(s)` or `file` URL, directly or
/// relative to an enclosing `$id` that is one (`"$id": "https://.../values.schema.json"`
/// with `"$ref": "schemas/pod.json"`), sorted and without repeats. They are
/// reported all at once, before the validator is built: the validator
/// resolves references in no fixed order, so the one it would fail on first
/// differs from run to run.
fn external_refs(
    v: &serde_json::Value,
    base: Option<&str>,
    out: &mut std::collections::BTreeSet<String>,
) {
    match v {
        serde_json::Value::Object(m) => {
            // Draft 4 spells `$id` as `id`; only a URL there is taken as one
            // (a property may be called `id`).
            let id = match (m.get("$id"), m.get("id")) {
                (Some(serde_json::Value::String(id)), _) => Some(id.as_str()),
                (_, Some(serde_json::Value::String(id))) if is_external(id) => Some(id.as_str()),
                _ => None,
            };
            let scoped = match id {
                Some(id) if is_external(id) => Some(id.to_string()),
                Some(id) if !id.starts_with('#') => base.and_then(|b| resolve(b, id)),
                _ => base.map(str::to_string),
            };
            let base = scoped.as_deref();
            for (k, x) in m {
                if k == "$ref"
                    && let serde_json::Value::String(r) = x
                {
                    let target = if is_external(r) {
                        Some(r.clone())
                    } else if r.starts_with('#') {
                        None
                    } else {
                        base.and_then(|b| resolve(b, r))
                    };
                    if let Some(t) = target {
                        out.insert(t.split('#').next().unwrap_or(&t).to_string());
                    }
                }
                external_refs(x, base, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| external_refs(x, base, out)),
        _ => {}
    }
}

/// Validates `values` against one schema; the violations, one per line, as
/// `- at 'PATH': MESSAGE`.
pub fn validate_one(schema: &[u8], values: &YMap, docs: &Documents) -> Result<(), String> {
    let schema: serde_json::Value =
        serde_json::from_slice(schema).map_err(|e| format!("values.schema.json: {e}\n"))?;
    let mut refs = std::collections::BTreeSet::new();
    closure(&schema, docs, &mut refs);
    // The documents that failed, grouped by why (an unreachable server's documents share
    // one reason), each reason after its documents, in the order first met.
    let mut failed: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut missing = Vec::new();
    for r in &refs {
        match docs.get(r) {
            Some(Ok(_)) => {}
            Some(Err(why)) => match failed.iter_mut().find(|(w, _)| w == why) {
                Some((_, urls)) => urls.push(r),
                None => failed.push((why, vec![r])),
            },
            None => missing.push(r.as_str()),
        }
    }
    if !failed.is_empty() {
        let count: usize = failed.iter().map(|(_, urls)| urls.len()).sum();
        let listed: Vec<String> = failed
            .iter()
            .map(|(why, urls)| format!("{} ({why})", urls.join(", ")))
            .collect();
        return Err(format!(
            "values.schema.json: the schema refers to {}, which could not be fetched; \
             vendor {} into values.schema.json or use --skip-schema-validation\n",
            listed.join(", "),
            if count == 1 { "it" } else { "them" }
        ));
    }
    if !missing.is_empty() {
        return Err(format!(
            "values.schema.json: the schema refers to {}, which sluice does not fetch here \
             (rendering is offline); vendor {} into values.schema.json or use \
             --skip-schema-validation\n",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        ));
    }
    let validator = jsonschema::options()
        .with_retriever(Fetched(docs.clone()))
        .build(&schema)
        .map_err(|e| format!("values.schema.json: {e}\n"))?;
    let instance = to_json(&Y::Map(values.clone()));
    let errors: Vec<Violation> = validator
        .iter_errors(&instance)
        .map(|e| violation(&e, &schema))
        .collect();
    let out = listing(&merge_required(errors), 0);
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// One violation, as santhosh-tekuri/jsonschema (Helm's validator) words it.
struct Violation {
    /// The instance location, a JSON pointer.
    at: String,
    /// The subschema that reported it (its evaluation path without the keyword).
    parent: String,
    /// For a `required` violation, the properties missing; for `dependencies` (or
    /// `dependentRequired`), those too, and the property that requires them.
    required: Vec<String>,
    dependent: Option<String>,
    message: String,
    /// What `anyOf`, `oneOf` and `propertyNames` list beneath their own line.
    causes: Vec<Violation>,
}

fn violation(e: &jsonschema::ValidationError<'_>, root: &serde_json::Value) -> Violation {
    let evaluation = e.evaluation_path().as_str();
    let at = e.instance_path().to_string();
    let parent = parent_of(evaluation).to_string();
    // A `required` violation of `dependencies` (draft 7's array form) or
    // `dependentRequired`: the validator's path ends at the keyword, so the property that
    // requires the missing one is found in the schema and the instance.
    let dependent = match e.kind() {
        ValidationErrorKind::Required { property }
            if evaluation.ends_with("/dependencies")
                || evaluation.ends_with("/dependentRequired") =>
        {
            let missing = property.as_str().unwrap_or_default();
            let object = e.instance();
            root.pointer(e.schema_path().as_str())
                .and_then(|deps| deps.as_object())
                .and_then(|deps| {
                    deps.iter().find_map(|(prop, needs)| {
                        let needed = needs
                            .as_array()
                            .is_some_and(|n| n.iter().any(|x| x.as_str() == Some(missing)));
                        let present = object.get(prop).is_some();
                        (needed && present).then(|| prop.clone())
                    })
                })
        }
        _ => None,
    };
    let required = match e.kind() {
        ValidationErrorKind::Required { property } => {
            vec![property.as_str().unwrap_or_default().to_string()]
        }
        _ => Vec::new(),
    };
    // Each branch's violations, grouped as the branch's own (its `required` merged).
    let branches = |context: &Vec<Vec<jsonschema::ValidationError<'static>>>| {
        context
            .iter()
            .flat_map(|branch| merge_required(branch.iter().map(|e| violation(e, root)).collect()))
            .collect()
    };
    let (message, causes) = match e.kind() {
        ValidationErrorKind::AnyOf { context } => ("'anyOf' failed".to_string(), branches(context)),
        ValidationErrorKind::OneOfNotValid { context } => (
            "'oneOf' failed, none matched".to_string(),
            branches(context),
        ),
        ValidationErrorKind::OneOfMultipleValid { context } => {
            let matched: Vec<String> = context
                .iter()
                .enumerate()
                .filter(|(_, errors)| errors.is_empty())
                .map(|(i, _)| i.to_string())
                .take(2)
                .collect();
            (
                format!("'oneOf' failed, subschemas {} matched", matched.join(", ")),
                Vec::new(),
            )
        }
        // The name is validated as an instance of its own, at no location.
        ValidationErrorKind::PropertyNames { error } => {
            let mut cause = violation(error, root);
            cause.at = String::new();
            let name = error.instance().as_str().unwrap_or_default().to_string();
            return Violation {
                at: String::new(),
                parent,
                required,
                dependent,
                message: format!("invalid propertyName {}", go_quote(&name)),
                causes: vec![cause],
            };
        }
        _ if dependent.is_some() => (String::new(), Vec::new()),
        _ => (message(e), Vec::new()),
    };
    let mut v = Violation {
        at,
        parent,
        required,
        dependent,
        message,
        causes,
    };
    if v.dependent.is_some() {
        v.message = required_message(&v);
    }
    v
}

/// The message of a `required` or dependent-required violation for the properties it
/// misses.
fn required_message(v: &Violation) -> String {
    let names: Vec<String> = v.required.iter().map(|m| go_quote(m)).collect();
    match &v.dependent {
        Some(prop) => format!(
            "properties {} required, if {} exists",
            names.join(", "),
            go_quote(prop)
        ),
        None if names.len() == 1 => format!("missing property {}", names[0]),
        None => format!("missing properties {}", names.join(", ")),
    }
}

/// `path` without its last segment.
fn parent_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The validator reports each missing property; Helm's reports the properties one
/// subschema misses at one place together: `missing properties 'a', 'b'` (and those one
/// property of `dependencies` requires: `properties 'b', 'c' required, if 'a' exists`).
fn merge_required(errors: Vec<Violation>) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for e in errors {
        if let Some(last) = out.last_mut()
            && !e.required.is_empty()
            && !last.required.is_empty()
            && last.at == e.at
            && last.parent == e.parent
            && last.dependent == e.dependent
        {
            last.required.extend(e.required);
            last.message = required_message(last);
            continue;
        }
        out.push(e);
    }
    out
}

/// The violations as Helm lists them: `- at 'PATH': MESSAGE`, where several that one
/// subschema (other than the root) reports at one place are grouped under `- at 'PATH':
/// validation failed`, each indented below it, and a violation's causes are listed
/// below it, indented one step more (`depth`: the steps of this level).
fn listing(errors: &[Violation], depth: usize) -> String {
    let mut out = String::new();
    let line = |out: &mut String, depth: usize, v: &Violation| {
        out.push_str(&format!(
            "{}- at {}: {}\n",
            "  ".repeat(depth),
            go_quote(&v.at),
            v.message
        ));
        out.push_str(&listing(&v.causes, depth + 1));
    };
    let mut i = 0;
    while i < errors.len() {
        let e = &errors[i];
        let mut j = i + 1;
        while j < errors.len() && errors[j].at == e.at && errors[j].parent == e.parent {
            j += 1;
        }
        if j - i > 1 && !e.parent.is_empty() {
            out.push_str(&format!(
                "{}- at {}: validation failed\n",
                "  ".repeat(depth),
                go_quote(&e.at)
            ));
            for g in &errors[i..j] {
                line(&mut out, depth + 1, g);
            }
        } else {
            for g in &errors[i..j] {
                line(&mut out, depth, g);
            }
        }
        i = j;
    }
    out
}

/// santhosh-tekuri/jsonschema's `quote`: Go's `%q` in single quotes.
fn go_quote(s: &str) -> String {
    let q = crate::funcs::go::quote(s);
    let inner = &q[1..q.len() - 1];
    format!("'{}'", inner.replace("\\\"", "\"").replace('\'', "\\'"))
}

/// santhosh-tekuri/jsonschema's `display` of a primitive value (`%v`).
fn go_display(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => go_quote(s),
        serde_json::Value::Null => "<nil>".to_string(),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => "value".to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
    }
}

/// A number as Go's `%v` prints the float64 of it.
fn go_number(v: &serde_json::Value) -> String {
    v.as_f64()
        .map_or_else(|| v.to_string(), crate::gofmt::format_g64)
}

/// santhosh-tekuri/jsonschema's type names.
fn go_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// `KEYWORD: got GOT, want WANT`, the form of the validator's bounds.
fn got_want(keyword: &str, got: impl std::fmt::Display, want: impl std::fmt::Display) -> String {
    format!("{keyword}: got {got}, want {want}")
}

/// The message Helm's validator gives for a violation; the `jsonschema` crate's own words
/// for the kinds not translated here.
fn message(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::types::JsonType;
    use serde_json::Value as J;
    let got = e.instance();
    let got: &J = got.as_ref();
    let len = |v: &J| match v {
        J::String(s) => s.chars().count(),
        J::Array(a) => a.len(),
        J::Object(o) => o.len(),
        _ => 0,
    };
    let primitive = |v: &J| !matches!(v, J::Array(_) | J::Object(_));
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            format!(
                "missing property {}",
                go_quote(property.as_str().unwrap_or_default())
            )
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let names: Vec<String> = unexpected.iter().map(|u| go_quote(u)).collect();
            format!("additional properties {} not allowed", names.join(", "))
        }
        ValidationErrorKind::Type { kind } => {
            let order = [
                JsonType::Null,
                JsonType::Boolean,
                JsonType::Number,
                JsonType::Integer,
                JsonType::String,
                JsonType::Array,
                JsonType::Object,
            ];
            let want: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![t.as_str()],
                TypeKind::Multiple(set) => order
                    .iter()
                    .filter(|t| set.contains(**t))
                    .map(|t| t.as_str())
                    .collect(),
            };
            format!("got {}, want {}", go_type(got), want.join(" or "))
        }
        ValidationErrorKind::Enum { options } => match options.as_array() {
            Some(opts) if opts.iter().all(primitive) => {
                if opts.len() == 1 {
                    format!("value must be {}", go_display(&opts[0]))
                } else {
                    let all: Vec<String> = opts.iter().map(go_display).collect();
                    format!("value must be one of {}", all.join(", "))
                }
            }
            _ => "'enum' failed".to_string(),
        },
        ValidationErrorKind::Constant { expected_value } if primitive(expected_value) => {
            format!("value must be {}", go_display(expected_value))
        }
        ValidationErrorKind::Constant { .. } => "'const' failed".to_string(),
        ValidationErrorKind::Pattern { pattern } => format!(
            "{} does not match pattern {}",
            go_quote(got.as_str().unwrap_or_default()),
            go_quote(pattern)
        ),
        ValidationErrorKind::MinLength { limit } => got_want("minLength", len(got), limit),
        ValidationErrorKind::MaxLength { limit } => got_want("maxLength", len(got), limit),
        ValidationErrorKind::MinItems { limit } => got_want("minItems", len(got), limit),
        ValidationErrorKind::MaxItems { limit } => got_want("maxItems", len(got), limit),
        ValidationErrorKind::MinProperties { limit } => got_want("minProperties", len(got), limit),
        ValidationErrorKind::MaxProperties { limit } => got_want("maxProperties", len(got), limit),
        ValidationErrorKind::Minimum { limit } => {
            got_want("minimum", go_number(got), go_number(limit))
        }
        ValidationErrorKind::Maximum { limit } => {
            got_want("maximum", go_number(got), go_number(limit))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            got_want("exclusiveMinimum", go_number(got), go_number(limit))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            got_want("exclusiveMaximum", go_number(got), go_number(limit))
        }
        ValidationErrorKind::MultipleOf { multiple_of } => got_want(
            "multipleOf",
            go_number(got),
            crate::gofmt::format_g64(*multiple_of),
        ),
        ValidationErrorKind::Not { .. } => "'not' failed".to_string(),
        ValidationErrorKind::UniqueItems => {
            // The first pair the validator finds: each item against those before it.
            let items = got.as_array().map(Vec::as_slice).unwrap_or_default();
            let pair = (1..items.len()).find_map(|i| {
                (0..i)
                    .find(|&j| json_equal(&items[i], &items[j]))
                    .map(|j| (j, i))
            });
            match pair {
                Some((j, i)) => format!("items at {j} and {i} are equal"),
                None => "'uniqueItems' failed".to_string(),
            }
        }
        _ => e.to_string(),
    }
}

/// JSON equality as the validator compares items: numbers by value (`1` equals `1.0`).
fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The external references of `schema` and, through the documents already
/// fetched, of theirs (each document's references are relative to its own
/// URL, or its `$id`).
fn closure(
    schema: &serde_json::Value,
    docs: &Documents,
    out: &mut std::collections::BTreeSet<String>,
) {
    external_refs(schema, None, out);
    let mut seen = std::collections::BTreeSet::new();
    while let Some(url) = out.iter().find(|u| !seen.contains(*u)).cloned() {
        seen.insert(url.clone());
        if let Some(Ok(doc)) = docs.get(&url) {
            external_refs(doc, Some(&url), out);
        }
    }
}

/// Whether a schema's text may have a `$ref` key, as a string's characters are written in
/// JSON either as they are or escaped (`\u0024` is `$`, `\u0072` is `r`): `false` saves
/// parsing a schema that refers to nothing (traefik's, 180 kB) only to find no reference.
fn may_refer(text: &[u8]) -> bool {
    [&b"$r"[..], b"$\\u", b"\\u0024"]
        .iter()
        .any(|needle| text.windows(needle.len()).any(|w| w == *needle))
}

/// The `http(s)` documents the schemas of `chart` and its subcharts refer
/// to, directly or through the documents in `docs`, that are not in `docs`
/// yet: what a caller fetches (and calls again with them, until none is
/// left) before rendering with [`super::Options::schema_documents`]. `file`
/// references are never listed: they stay refused.
pub fn external_documents(
    chart: &crate::chart::Chart,
    docs: &Documents,
) -> std::collections::BTreeSet<String> {
    fn each(
        chart: &crate::chart::Chart,
        docs: &Documents,
        out: &mut std::collections::BTreeSet<String>,
    ) {
        if let Some(schema) = &chart.schema
            && may_refer(schema)
            && let Ok(schema) = serde_json::from_slice::<serde_json::Value>(schema)
        {
            closure(&schema, docs, out);
        }
        for sub in &chart.dependencies {
            each(sub, docs, out);
        }
    }
    let mut all = std::collections::BTreeSet::new();
    each(chart, docs, &mut all);
    all.into_iter()
        .filter(|u| {
            let lower = u.to_ascii_lowercase();
            (lower.starts_with("http://") || lower.starts_with("https://")) && !docs.contains_key(u)
        })
        .collect()
}

/// Helm's `ValidateAgainstSchema` over the processed chart tree.
pub(crate) fn validate_tree(
    node: &Node<'_>,
    values: &YMap,
    docs: &Documents,
) -> Result<(), String> {
    let mut out = String::new();
    walk(node, values, docs, &mut out);
    if out.is_empty() { Ok(()) } else { Err(out) }
}

fn walk(node: &Node<'_>, values: &YMap, docs: &Documents, out: &mut String) {
    if let Some(schema) = &node.chart.schema
        && let Err(e) = validate_one(schema, values, docs)
    {
        out.push_str(&format!("{}:\n{e}", node.name));
    }
    for child in &node.children {
        match values.get(&child.name) {
            None | Some(Y::Null) => {}
            Some(Y::Map(sub)) => walk(child, sub, docs, out),
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
        assert!(validate_one(schema, &vals("port: 80\n"), &Default::default()).is_ok());
        let e = validate_one(schema, &vals("port: http\n"), &Default::default()).unwrap_err();
        assert_eq!(e, "- at '/port': got string, want integer\n");
    }

    /// Each line is what `helm template` v4.2.4 printed for these values (Helm lists a
    /// schema's violations in Go's map order, which changes from run to run; sluice in the
    /// schema's order).
    #[test]
    fn violations_are_worded_as_helms_validator_words_them() {
        let schema =
            br#"{"type":"object","required":["policy","other"],"additionalProperties":false,
 "properties":{
  "policy":{"type":"string"},
  "port":{"type":"integer","minimum":1,"maximum":65535},
  "name":{"type":"string","minLength":3,"maxLength":5,"pattern":"^[a-z]+$"},
  "mode":{"enum":["a","b",1,null]},
  "one":{"enum":["x"]},
  "c":{"const":"fixed"},
  "list":{"type":"array","minItems":2,"maxItems":3},
  "multi":{"type":["string","integer"]},
  "nested":{"type":"object","required":["x"],"properties":{"x":{"type":"boolean"}}},
  "f":{"type":"number","exclusiveMinimum":1.5}
 }}"#;
        let bad = "port: \"80\"\nname: \"AB\"\nmode: \"c\"\none: \"y\"\nc: \"z\"\nlist: [1]\n\
                   multi: 1.5\nnested: {}\nf: 1\nextra: 1\nextra2: 2\n";
        let e = validate_one(schema, &vals(bad), &Default::default()).unwrap_err();
        assert_eq!(
            e,
            "- at '': missing properties 'policy', 'other'\n\
             - at '/port': got string, want integer\n\
             - at '/name': validation failed\n\
             \x20 - at '/name': minLength: got 2, want 3\n\
             \x20 - at '/name': 'AB' does not match pattern '^[a-z]+$'\n\
             - at '/mode': value must be one of 'a', 'b', 1, <nil>\n\
             - at '/one': value must be 'x'\n\
             - at '/c': value must be 'fixed'\n\
             - at '/list': minItems: got 1, want 2\n\
             - at '/multi': got number, want integer or string\n\
             - at '/nested': missing property 'x'\n\
             - at '/f': exclusiveMinimum: got 1, want 1.5\n\
             - at '': additional properties 'extra', 'extra2' not allowed\n"
        );
        let e = validate_one(
            schema,
            &vals("port: 0\nname: toolong1\n"),
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "- at '': missing properties 'policy', 'other'\n\
             - at '/port': minimum: got 0, want 1\n\
             - at '/name': validation failed\n\
             \x20 - at '/name': maxLength: got 8, want 5\n\
             \x20 - at '/name': 'toolong1' does not match pattern '^[a-z]+$'\n"
        );
    }

    /// The combining keywords and the rest, each message as `helm template` v4.2.4 printed
    /// it for the same schema and values (checked by hand).
    #[test]
    fn combinators_and_other_keywords_are_worded_as_helms_validator_words_them() {
        let schema = br#"{"type":"object","properties":{
  "port":{"anyOf":[{"type":"integer"},{"type":"string","pattern":"^[0-9]+$"}]},
  "mode":{"oneOf":[{"const":"a"},{"const":"b"}]},
  "both":{"oneOf":[{"type":"string"},{"type":"string","minLength":1}]},
  "neg":{"not":{"type":"string"}},
  "arr":{"type":"array","items":{"type":"integer"},"uniqueItems":true},
  "dep":{"type":"object","dependencies":{"a":["b","c"]}},
  "mult":{"type":"number","multipleOf":3},
  "pp":{"type":"object","propertyNames":{"pattern":"^[a-z]+$"}},
  "group":{"anyOf":[{"type":"string","minLength":5,"pattern":"^x"},{"type":"integer"}]}
}}"#;
        let cases = [
            (
                "port: x\n",
                "- at '/port': 'anyOf' failed\n\
                 \x20 - at '/port': got string, want integer\n\
                 \x20 - at '/port': 'x' does not match pattern '^[0-9]+$'\n",
            ),
            (
                "mode: c\n",
                "- at '/mode': 'oneOf' failed, none matched\n\
                 \x20 - at '/mode': value must be 'a'\n\
                 \x20 - at '/mode': value must be 'b'\n",
            ),
            (
                "both: zz\n",
                "- at '/both': 'oneOf' failed, subschemas 0, 1 matched\n",
            ),
            ("neg: s\n", "- at '/neg': 'not' failed\n"),
            (
                "arr: [1, 2, 1]\n",
                "- at '/arr': items at 0 and 2 are equal\n",
            ),
            (
                "dep: {a: 1}\n",
                "- at '/dep': properties 'b', 'c' required, if 'a' exists\n",
            ),
            ("mult: 4\n", "- at '/mult': multipleOf: got 4, want 3\n"),
            (
                "pp: {ABC: 1}\n",
                "- at '': invalid propertyName 'ABC'\n\
                 \x20 - at '': 'ABC' does not match pattern '^[a-z]+$'\n",
            ),
            (
                "group: ab\n",
                "- at '/group': 'anyOf' failed\n\
                 \x20 - at '/group': validation failed\n\
                 \x20   - at '/group': minLength: got 2, want 5\n\
                 \x20   - at '/group': 'ab' does not match pattern '^x'\n\
                 \x20 - at '/group': got string, want integer\n",
            ),
        ];
        for (values, want) in cases {
            let e = validate_one(schema, &vals(values), &Default::default()).unwrap_err();
            assert_eq!(e, want, "{values}");
        }
    }

    #[test]
    fn a_ref_is_looked_for_however_it_is_written() {
        for text in [
            r#"{"$ref": "https://x/y.json"}"#,
            r##"{"properties": {"a": {"$recursiveRef": "#"}}}"##,
            r#"{"\u0024ref": "https://x/y.json"}"#,
            r#"{"$\u0072ef": "https://x/y.json"}"#,
        ] {
            assert!(may_refer(text.as_bytes()), "{text}");
        }
        for text in [
            r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}"#,
            r#"{"description": "a \u003cb\u003e ref: $x"}"#,
        ] {
            assert!(!may_refer(text.as_bytes()), "{text}");
        }
        let escaped: serde_json::Value =
            serde_json::from_str(r#"{"\u0024ref": "https://x/y.json"}"#).unwrap();
        let mut refs = std::collections::BTreeSet::new();
        external_refs(&escaped, None, &mut refs);
        assert_eq!(refs.len(), 1);
    }

    #[test]
    fn remote_refs_are_reported_not_fetched() {
        let schema = br#"{"$ref":"https://example.com/s.json"}"#;
        let e = validate_one(schema, &vals("a: 1\n"), &Default::default()).unwrap_err();
        assert!(e.contains("https://example.com/s.json"), "{e}");
        let schema = br#"{"$ref":"file:///etc/passwd"}"#;
        let e = validate_one(schema, &vals("a: 1\n"), &Default::default()).unwrap_err();
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
            let e = validate_one(schema, &vals("a: 1\n"), &Default::default()).unwrap_err();
            assert_eq!(
                e,
                "values.schema.json: the schema refers to https://example.com/a.json, \
                 https://example.com/b.json, which sluice does not fetch here (rendering is offline); \
                 vendor them into values.schema.json or use --skip-schema-validation\n"
            );
        }
    }

    #[test]
    fn refs_relative_to_a_remote_id_are_named_too() {
        // bjw-s's common library: `$id` on raw.githubusercontent.com and
        // `$ref`s relative to it, which the validator would fetch.
        let schema = br##"{"$id":"https://example.com/charts/common/values.schema.json",
            "properties":{
              "pod":{"$ref":"schemas/pod.json#/options"},
              "svc":{"$ref":"./schemas/service.json"},
              "up":{"$ref":"../other.json"},
              "local":{"$ref":"#/definitions/d"},
              "id":{"type":"string"}},
            "definitions":{"d":{"type":"string"}}}"##;
        for _ in 0..5 {
            let e = validate_one(schema, &vals("a: 1\n"), &Default::default()).unwrap_err();
            assert_eq!(
                e,
                "values.schema.json: the schema refers to \
                 https://example.com/charts/common/schemas/pod.json, \
                 https://example.com/charts/common/schemas/service.json, \
                 https://example.com/charts/other.json, which sluice does not \
                 fetch here (rendering is offline); vendor them into values.schema.json or use \
                 --skip-schema-validation\n"
            );
        }
        // A relative `$ref` without a remote base stays the validator's.
        let schema = br##"{"properties":{"a":{"$ref":"#/definitions/d"}},
            "definitions":{"d":{"type":"integer"}}}"##;
        assert!(validate_one(schema, &vals("a: 1\n"), &Default::default()).is_ok());
    }

    #[test]
    fn fetched_documents_are_used_and_their_own_references_listed() {
        let root = br##"{"$id":"https://example.com/c/values.schema.json",
            "properties":{"pod":{"$ref":"schemas/pod.json#/options"}}}"##;
        let chart = crate::chart::Chart {
            schema: Some(root.to_vec()),
            ..Default::default()
        };
        let mut docs = std::collections::BTreeMap::new();
        let wanted = external_documents(&chart, &std::sync::Arc::new(docs.clone()));
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            ["https://example.com/c/schemas/pod.json"]
        );
        // pod.json refers on, relative to its own URL.
        docs.insert(
            "https://example.com/c/schemas/pod.json".to_string(),
            Ok(serde_json::json!({"options": {"type": "object",
                "properties": {"port": {"$ref": "defs.json#/port"}}}})),
        );
        let wanted = external_documents(&chart, &std::sync::Arc::new(docs.clone()));
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            ["https://example.com/c/schemas/defs.json"]
        );
        let partial = std::sync::Arc::new(docs.clone());
        let e = validate_one(root, &vals("pod: {port: 1}\n"), &partial).unwrap_err();
        assert!(
            e.contains("https://example.com/c/schemas/defs.json, which sluice does not fetch here"),
            "{e}"
        );
        docs.insert(
            "https://example.com/c/schemas/defs.json".to_string(),
            Ok(serde_json::json!({"port": {"type": "integer"}})),
        );
        let all = std::sync::Arc::new(docs.clone());
        assert!(external_documents(&chart, &all).is_empty());
        assert!(validate_one(root, &vals("pod: {port: 80}\n"), &all).is_ok());
        let e = validate_one(root, &vals("pod: {port: http}\n"), &all).unwrap_err();
        assert!(e.starts_with("- at '/pod/port': "), "{e}");
        // A document that could not be fetched is named with the reason.
        docs.insert(
            "https://example.com/c/schemas/defs.json".to_string(),
            Err("HTTP 404".to_string()),
        );
        let e =
            validate_one(root, &vals("pod: {port: 80}\n"), &std::sync::Arc::new(docs)).unwrap_err();
        assert!(
            e.contains(
                "https://example.com/c/schemas/defs.json (HTTP 404), which could not be fetched"
            ),
            "{e}"
        );
    }
}
