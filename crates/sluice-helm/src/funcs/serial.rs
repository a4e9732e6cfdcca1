//! Encodings of whole values: Helm's `toYaml`/`fromYaml` (through
//! `sigs.k8s.io/yaml`, which goes through JSON: sluice-kustomize's emitter
//! prints exactly that form), `toJson`/`fromJson` (Go's `encoding/json`),
//! `toToml`/`fromToml` (BurntSushi/toml's encoder layout), and sprig's
//! JSON variants (`toPrettyJson`, `toRawJson`, `mustFromJson`).
//!
//! Numbers: values hold YAML numbers as `float64`, so `toYaml` of
//! `1000000` prints `1000000` (JSON writes it so, and YAML reads it back as
//! an integer) while `{{ .Values.x }}` prints Go's `%v`, `1e+06`.

use sluice_kustomize::yaml::{
    CompactString, Map as YMap, Value as Y, go_yaml_refusal, to_yaml, to_yaml_without_json,
};

use super::go::{json_float, to_json};
use super::{Spec, Value, arg_str, check_len, failed, s, spec};
use crate::template::value::MAX_VALUE_DEPTH;

pub(super) const FUNCS: &[Spec] = &[
    spec!("toYaml", 1, Some(1), |a| Ok(s(
        to_yaml_string(&a[0]).unwrap_or_default()
    ))),
    spec!("mustToYaml", 1, Some(1), |a| Ok(s(
        to_yaml_string(&a[0]).map_err(failed)?
    ))),
    // goyaml.v3 with a 2-space indent in Helm: sequences indented under
    // their key; scalars as sigs.k8s.io/yaml prints them.
    spec!("toYamlPretty", 1, Some(1), |a| {
        Ok(s(to_yaml_pretty_string(&a[0])
            .map(|t| indent_sequences(&t))
            .unwrap_or_default()))
    }),
    spec!("fromYaml", 1, Some(1), |a| Ok(from_yaml(arg_str(a, 0)?))),
    spec!("fromYamlArray", 1, Some(1), |a| Ok(from_yaml_array(
        arg_str(a, 0)?
    ))),
    spec!("toJson", 1, Some(1), |a| Ok(s(
        json(&a[0], true).unwrap_or_default()
    ))),
    spec!("mustToJson", 1, Some(1), |a| Ok(s(
        json(&a[0], true).map_err(failed)?
    ))),
    spec!("toPrettyJson", 1, Some(1), |a| {
        Ok(s(pretty_json(&a[0]).unwrap_or_default()))
    }),
    spec!("mustToPrettyJson", 1, Some(1), |a| {
        Ok(s(pretty_json(&a[0]).map_err(failed)?))
    }),
    spec!("toRawJson", 1, Some(1), |a| Ok(s(
        json(&a[0], false).map_err(failed)?
    ))),
    spec!("mustToRawJson", 1, Some(1), |a| Ok(s(
        json(&a[0], false).map_err(failed)?
    ))),
    spec!("fromJson", 1, Some(1), |a| {
        let v = arg_str(a, 0)?;
        Ok(match parse_json(v) {
            Ok(Value::Map(m)) => Value::Map(m),
            Ok(Value::Nil) => Value::map(Default::default()),
            Ok(other) => error_map(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )),
            Err(e) => error_map(e),
        })
    }),
    spec!("mustFromJson", 1, Some(1), |a| parse_json(arg_str(a, 0)?)
        .map_err(failed)),
    spec!("fromJsonArray", 1, Some(1), |a| {
        let v = arg_str(a, 0)?;
        Ok(match parse_json(v) {
            Ok(Value::List(l)) => Value::List(l),
            Ok(Value::Nil) => Value::list(Vec::new()),
            Ok(other) => Value::list(vec![s(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&other)
            ))]),
            Err(e) => Value::list(vec![s(e)]),
        })
    }),
    spec!("toToml", 1, Some(1), |a| {
        if matches!(a[0], Value::Nil) {
            return Err(failed("reflect: call of reflect.Value.Type on zero Value"));
        }
        Ok(s(to_toml(&a[0]).unwrap_or_else(|e| e)))
    }),
    spec!("mustToToml", 1, Some(1), |a| Ok(s(
        to_toml(&a[0]).map_err(failed)?
    ))),
    spec!("fromToml", 1, Some(1), |a| Ok(from_toml(arg_str(a, 0)?))),
];

fn error_map(msg: String) -> Value {
    let mut m = std::collections::BTreeMap::new();
    m.insert("Error".to_string(), s(msg));
    Value::map(m)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Uint(_) | Value::Float(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "array",
        Value::Map(_) => "object",
        _ => "null",
    }
}

/// `json.Marshal` (Go's escaping of `<`, `>`, `&` unless `escape_html` is
/// off, as the encoder's `SetEscapeHTML(false)` in `toRawJson`).
pub(crate) fn json(v: &Value, escape_html: bool) -> Result<String, String> {
    let mut out = String::new();
    to_json(v, escape_html, &mut out, 0)?;
    check_len("toJson", out.len() as u128).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `json.MarshalIndent(v, "", "  ")`.
fn pretty_json(v: &Value) -> Result<String, String> {
    let compact = json(v, true)?;
    Ok(indent_json(&compact))
}

/// Go's `json.Indent` with two spaces over compact JSON: empty containers
/// stay `{}`/`[]`.
fn indent_json(c: &str) -> String {
    let mut out = String::with_capacity(c.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = c.chars().peekable();
    let nl = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    while let Some(ch) = chars.next() {
        if in_str {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        match ch {
            '"' => {
                in_str = true;
                out.push(ch);
            }
            '{' | '[' => {
                out.push(ch);
                let close = if ch == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    if let Some(c2) = chars.next() {
                        out.push(c2);
                    }
                } else {
                    depth += 1;
                    nl(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                nl(&mut out, depth);
                out.push(ch);
            }
            ',' => {
                out.push(',');
                nl(&mut out, depth);
            }
            ':' => out.push_str(": "),
            other => out.push(other),
        }
    }
    out
}

/// `json.Unmarshal` into `interface{}`: numbers as `float64`.
fn parse_json(v: &str) -> Result<Value, String> {
    if let Some(e) = super::go::json_syntax_error(v) {
        return Err(e);
    }
    let j: serde_json::Value =
        serde_json::from_str(v).map_err(|e| format!("json: cannot decode: {e}"))?;
    Ok(Value::from_json(&j))
}

/// The value as `sigs.k8s.io/yaml.Marshal` sees it after its JSON round
/// trip: integral numbers that JSON prints without exponent become YAML
/// integers, objects their JSON form, bytes base64.
pub(crate) fn to_yaml_model(v: &Value, depth: usize) -> Result<Y, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    Ok(match v {
        Value::Nil => Y::Null,
        Value::Bool(b) => Y::Bool(*b),
        Value::Int(i) => Y::Int(*i),
        Value::Uint(u) => match i64::try_from(*u) {
            Ok(i) => Y::Int(i),
            Err(_) => Y::Float(*u as f64),
        },
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    crate::gofmt::format_g64(*f)
                ));
            }
            let text = json_float(*f);
            match text.parse::<i64>() {
                Ok(i) => Y::Int(i),
                Err(_) => Y::Float(*f),
            }
        }
        Value::String(t) => Y::Str(CompactString::from(t.as_str())),
        Value::Bytes(_) => match v.to_json() {
            serde_json::Value::String(t) => Y::Str(CompactString::from(t)),
            _ => Y::Null,
        },
        Value::List(l) => Y::Seq(
            l.iter()
                .map(|x| to_yaml_model(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let mut out = YMap::new();
            for (k, x) in m.entries() {
                out.insert(k, to_yaml_model(&x, depth + 1)?);
            }
            Y::Map(out)
        }
        Value::Object(o) => match o.to_value() {
            Some(x) => to_yaml_model(&x, depth + 1)?,
            None => Y::Map(YMap::new()),
        },
    })
}

/// Helm's `toYaml`: `yaml.Marshal` (by way of JSON, which go-yaml may
/// refuse to read back), the final newline trimmed.
pub(crate) fn to_yaml_string(v: &Value) -> Result<String, String> {
    let model = to_yaml_model(v, 0)?;
    if let Some(problem) = go_yaml_refusal(&model) {
        return Err(problem.to_string());
    }
    trimmed(to_yaml(&model))
}

/// `toYamlPretty`'s scalars: go-yaml's encoder directly, without JSON.
fn to_yaml_pretty_string(v: &Value) -> Result<String, String> {
    trimmed(to_yaml_without_json(&to_yaml_model(v, 0)?))
}

fn trimmed(out: String) -> Result<String, String> {
    check_len("toYaml", out.len() as u128).map_err(|e| e.to_string())?;
    Ok(out.strip_suffix('\n').unwrap_or(&out).to_string())
}

/// go-yaml v3's layout with `SetIndent(2)` from go-yaml v2's: a block
/// sequence that is the value of a mapping key is indented two columns
/// under the key (v2 writes it at the key's column), and everything inside
/// it moves along.
pub(crate) fn indent_sequences(v2: &str) -> String {
    // Open shifted sequences: (their v2 column, total shift inside them).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    // A block scalar in progress: (its owner's v2 column, the shift).
    let mut block: Option<(usize, usize)> = None;
    // The column of the last key with no value on its line.
    let mut open_key: Option<usize> = None;
    let mut out = String::with_capacity(v2.len() + v2.len() / 8);
    for line in v2.split('\n') {
        let d = line.len() - line.trim_start_matches(' ').len();
        let body = &line[d..];
        if let Some((col, shift)) = block {
            if body.is_empty() || d > col {
                if !body.is_empty() {
                    out.push_str(&" ".repeat(shift));
                }
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block = None;
        }
        let item = body == "-" || body.starts_with("- ");
        while let Some(&(col, _)) = stack.last() {
            if d > col || (d == col && item) {
                break;
            }
            stack.pop();
        }
        let mut shift = stack.last().map_or(0, |&(_, s)| s);
        if item && open_key == Some(d) && stack.last().is_none_or(|&(col, _)| col != d) {
            shift += 2;
            stack.push((d, shift));
        }
        if !line.is_empty() {
            out.push_str(&" ".repeat(shift));
        }
        out.push_str(line);
        out.push('\n');
        // Where this line's innermost key starts, past any "- " markers.
        let mut key_col = d;
        let mut rest = body;
        while let Some(r) = rest.strip_prefix("- ") {
            key_col += 2;
            rest = r;
        }
        let trimmed = rest.trim_end();
        open_key = if trimmed.ends_with(':') {
            Some(key_col)
        } else {
            None
        };
        let is_block = ["|", "|-", "|+", ">", ">-", ">+"]
            .iter()
            .any(|m| trimmed.ends_with(&format!(" {m}")) || trimmed == *m)
            || trimmed.ends_with("|2-")
            || trimmed.ends_with("|2");
        if is_block {
            block = Some((d, shift));
        }
    }
    out.pop();
    out
}

/// A YAML model as the values Helm reads (numbers already `float64`).
pub(crate) fn from_yaml_model(v: &Y) -> Value {
    match v {
        Y::Null => Value::Nil,
        Y::Bool(b) => Value::Bool(*b),
        Y::Int(i) => Value::Float(*i as f64),
        Y::Float(f) => Value::Float(*f),
        Y::Str(t) => Value::String(t.to_string()),
        Y::Seq(items) => Value::list(items.iter().map(from_yaml_model).collect()),
        Y::Map(m) => Value::map(
            m.iter()
                .map(|(k, x)| (k.to_string(), from_yaml_model(x)))
                .collect(),
        ),
    }
}

/// Parsed `fromYaml` texts, by text, per thread: library charts (bjw-s's
/// common) turn the same `include` into a map again and again (98 calls on
/// 19 texts for one app-template release). The parse is a pure function of
/// the text; each call still gets maps of its own.
const FROM_YAML_MEMO_ENTRIES: usize = 64;
/// Texts longer than this are parsed every time (the memo stays small).
const FROM_YAML_MEMO_TEXT: usize = 64 << 10;

thread_local! {
    static FROM_YAML_MEMO: std::cell::RefCell<std::collections::HashMap<String, Y>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Helm's `fromYaml`: a map, or `{Error: message}`.
fn from_yaml(text: &str) -> Value {
    let memoized = FROM_YAML_MEMO.with(|m| m.borrow().get(text).map(from_yaml_model));
    if let Some(v) = memoized {
        return v;
    }
    match crate::values::parse_values_file(text.as_bytes()) {
        Ok(m) => {
            let model = Y::Map(m);
            let v = from_yaml_model(&model);
            if text.len() <= FROM_YAML_MEMO_TEXT {
                FROM_YAML_MEMO.with(|memo| {
                    let mut memo = memo.borrow_mut();
                    if memo.len() >= FROM_YAML_MEMO_ENTRIES {
                        memo.clear();
                    }
                    memo.insert(text.to_string(), model);
                });
            }
            v
        }
        Err(e) => error_map(e.to_string()),
    }
}

/// Helm's `fromYamlArray`: a list, or `[message]`.
fn from_yaml_array(text: &str) -> Value {
    let doc = match crate::yaml::parse_first(text) {
        Ok(d) => d,
        Err(e) => {
            return Value::list(vec![s(format!("error converting YAML to JSON: {e}"))]);
        }
    };
    if let Some(f) = crate::yaml::non_finite(&doc) {
        return Value::list(vec![s(format!(
            "error converting YAML to JSON: json: unsupported value: {}",
            crate::gofmt::format_g64(f)
        ))]);
    }
    match doc {
        Y::Null => Value::list(Vec::new()),
        Y::Seq(_) => from_yaml_model(&doc),
        other => {
            let kind = match other {
                Y::Map(_) => "object",
                Y::Str(_) => "string",
                Y::Bool(_) => "bool",
                _ => "number",
            };
            Value::list(vec![s(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type []interface {{}}"
            ))])
        }
    }
}

// ---------------------------------------------------------------------------
// TOML.
// ---------------------------------------------------------------------------

/// BurntSushi/toml's `Encoder.Encode`, or its error text.
pub(crate) fn to_toml(v: &Value) -> Result<String, String> {
    if matches!(v, Value::Nil) {
        // BurntSushi panics in reflect on a nil interface.
        return Err("reflect: call of reflect.Value.Type on zero Value".into());
    }
    let mut enc = Toml {
        out: String::new(),
        written: false,
    };
    enc.encode(&[], v, 0)?;
    check_len("toToml", enc.out.len() as u128).map_err(|e| e.to_string())?;
    Ok(enc.out)
}

struct Toml {
    out: String,
    written: bool,
}

fn toml_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_quote(k)
    }
}

fn plain(v: &Value) -> Value {
    match v {
        Value::Object(o) => o.to_value().unwrap_or(Value::Nil),
        other => other.clone(),
    }
}

fn is_table(v: &Value) -> bool {
    matches!(plain(v), Value::Map(_))
}

fn is_table_array(v: &Value) -> Result<bool, String> {
    let Value::List(l) = plain(v) else {
        return Ok(false);
    };
    if l.is_empty() {
        return Ok(false);
    }
    let mut all = true;
    for x in l.iter() {
        if matches!(x, Value::Nil) {
            return Err("toml: cannot encode array with nil element".into());
        }
        if !is_table(x) {
            all = false;
        }
    }
    Ok(all)
}

impl Toml {
    fn write(&mut self, t: &str) {
        self.written = true;
        self.out.push_str(t);
    }

    fn newline(&mut self) {
        if self.written {
            self.out.push('\n');
        }
    }

    fn indent(key: &[String]) -> String {
        "  ".repeat(key.len().saturating_sub(1))
    }

    fn key_path(key: &[String]) -> String {
        key.iter()
            .map(|k| toml_key(k))
            .collect::<Vec<_>>()
            .join(".")
    }

    fn encode(&mut self, key: &[String], v: &Value, depth: usize) -> Result<(), String> {
        if depth > MAX_VALUE_DEPTH {
            return Err("toml: value nested too deeply".into());
        }
        match plain(v) {
            Value::Nil => Ok(()),
            Value::Map(m) => {
                if key.len() == 1 {
                    self.newline();
                }
                if !key.is_empty() {
                    let line = format!("{}[{}]", Self::indent(key), Self::key_path(key));
                    self.write(&line);
                    self.newline();
                }
                self.map_body(key, &m, depth)
            }
            list @ Value::List(_) if is_table_array(&list)? => {
                if key.is_empty() {
                    return Err("toml: top-level values must be Go maps or structs".into());
                }
                let Value::List(l) = list else {
                    return Ok(());
                };
                for x in l.iter() {
                    let Value::Map(m) = plain(x) else {
                        continue;
                    };
                    self.newline();
                    let line = format!("{}[[{}]]", Self::indent(key), Self::key_path(key));
                    self.write(&line);
                    self.newline();
                    self.map_body(key, &m, depth)?;
                }
                Ok(())
            }
            other => {
                if key.is_empty() {
                    return self.element(&other, depth);
                }
                let last = key.last().map(String::as_str).unwrap_or("");
                let head = format!("{}{} = ", Self::indent(key), toml_key(last));
                self.write(&head);
                self.element(&other, depth)?;
                self.newline();
                Ok(())
            }
        }
    }

    fn map_body(
        &mut self,
        key: &[String],
        m: &crate::template::Map,
        depth: usize,
    ) -> Result<(), String> {
        let entries = m.entries();
        let mut direct = Vec::new();
        let mut sub = Vec::new();
        for (k, x) in &entries {
            if is_table(x) || is_table_array(x)? {
                sub.push((k, x));
            } else {
                direct.push((k, x));
            }
        }
        for (k, x) in direct.into_iter().chain(sub) {
            if matches!(x, Value::Nil) {
                continue;
            }
            let mut child = key.to_vec();
            child.push(k.clone());
            self.encode(&child, x, depth + 1)?;
        }
        Ok(())
    }

    fn element(&mut self, v: &Value, depth: usize) -> Result<(), String> {
        if depth > MAX_VALUE_DEPTH {
            return Err("toml: value nested too deeply".into());
        }
        match plain(v) {
            Value::Nil => return Err("toml: cannot encode a nil value".into()),
            Value::Bool(b) => self.write(if b { "true" } else { "false" }),
            Value::Int(i) => self.write(&i.to_string()),
            Value::Uint(u) => self.write(&u.to_string()),
            Value::Float(f) => {
                let t = if f.is_nan() {
                    if f.is_sign_negative() { "-nan" } else { "nan" }.to_string()
                } else if f.is_infinite() {
                    if f < 0.0 { "-inf" } else { "inf" }.to_string()
                } else {
                    let g = crate::gofmt::format_g64(f);
                    if g.contains('e') || g.contains('.') {
                        g
                    } else {
                        format!("{g}.0")
                    }
                };
                self.write(&t);
            }
            Value::String(t) => self.write(&toml_quote(&t)),
            Value::Bytes(b) => self.write(&toml_quote(&String::from_utf8_lossy(&b))),
            Value::List(l) => {
                self.write("[");
                for (i, x) in l.iter().enumerate() {
                    if matches!(x, Value::Nil) {
                        return Err("toml: cannot encode array with nil element".into());
                    }
                    self.element(x, depth + 1)?;
                    if i + 1 != l.len() {
                        self.write(", ");
                    }
                }
                self.write("]");
            }
            Value::Map(m) => {
                self.write("{");
                let entries: Vec<_> = m
                    .entries()
                    .into_iter()
                    .filter(|(_, x)| !matches!(x, Value::Nil))
                    .collect();
                for (i, (k, x)) in entries.iter().enumerate() {
                    let head = format!("{} = ", toml_key(k));
                    self.write(&head);
                    self.element(x, depth + 1)?;
                    if i + 1 != entries.len() {
                        self.write(", ");
                    }
                }
                self.write("}");
            }
            Value::Object(_) => self.write("{}"),
        }
        Ok(())
    }
}

/// Helm's `fromToml`: integers as `int64`, floats as `float64`, dates as
/// their text; `{Error: message}` on a parse error.
fn from_toml(text: &str) -> Value {
    match text.parse::<toml::Value>() {
        Ok(toml::Value::Table(t)) => toml_value(&toml::Value::Table(t)),
        Ok(_) => error_map("toml: top-level value is not a table".into()),
        Err(e) => error_map(format!("toml: {e}")),
    }
}

fn toml_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(t) => s(t.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => s(d.to_string()),
        toml::Value::Array(a) => Value::list(a.iter().map(toml_value).collect()),
        toml::Value::Table(t) => {
            Value::map(t.iter().map(|(k, x)| (k.clone(), toml_value(x))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_sequence_indentation() {
        assert_eq!(indent_sequences("baz:\n- 1\n- 2"), "baz:\n  - 1\n  - 2");
        assert_eq!(
            indent_sequences("m:\n  l:\n  - a: 1\n    b: 2\n  k: x"),
            "m:\n  l:\n    - a: 1\n      b: 2\n  k: x"
        );
        assert_eq!(indent_sequences("- a:\n  - 1\n- b"), "- a:\n    - 1\n- b");
        assert_eq!(
            indent_sequences("a:\n- |-\n  x\n  - y\nb: 1"),
            "a:\n  - |-\n    x\n    - y\nb: 1"
        );
        assert_eq!(indent_sequences("- - 1\n  - 2"), "- - 1\n  - 2");
    }
}
