//! JSON as Go's `encoding/json` writes it, for content hashes.

use std::fmt::Write as _;

use super::{CompactString, Value, format_float};

/// Encodes like Go's `json.Marshal` of the equivalent `interface{}` value:
/// map keys sorted bytewise, `<`, `>`, `&` escaped.
pub fn to_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::Str(s) => go_json_string(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_go_json(it, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let mut keys: Vec<&(CompactString, Value)> = m.0.iter().collect();
            keys.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, val)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                to_go_json(val, out);
            }
            out.push('}');
        }
    }
}

pub fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go 1.22 and later.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The characters of `s` as Go's `json.Marshal` writes it, quotes included
/// (written by [`go_json_string`], so that the two cannot disagree).
fn go_json_chars(s: &str) -> usize {
    let mut out = String::with_capacity(s.len() + 2);
    go_json_string(s, &mut out);
    out.chars().count()
}

/// Why Go cannot print `v` as YAML by way of JSON, as kustomize prints every
/// resource and Helm's `toYaml` every value (`sigs.k8s.io/yaml`): go-yaml
/// reads the JSON back as YAML, and refuses
/// - characters YAML does not allow that JSON leaves as they are (U+007F
///   to U+009F but NEL, U+FFFE, U+FFFF);
/// - a key that spans lines (it holds a NEL, a line break to YAML) or
///   whose JSON is longer than 1024 characters (a simple key's limit);
/// - a NEL followed by `---` or `...` and a blank: a document marker at
///   the start of a line.
///
/// Returns go-yaml's words (without the line it names).
pub fn go_yaml_refusal(v: &Value) -> Option<&'static str> {
    match v {
        Value::Str(s) => str_refusal(s),
        Value::Seq(items) => items.iter().find_map(go_yaml_refusal),
        Value::Map(m) => m.0.iter().find_map(|(k, v)| {
            key_refusal(k)
                .or_else(|| str_refusal(k))
                .or_else(|| go_yaml_refusal(v))
        }),
        _ => None,
    }
}

fn key_refusal(k: &str) -> Option<&'static str> {
    let spans_lines = !k.is_ascii() && k.contains('\u{85}');
    // An escape is at most 6 characters: under 171 bytes, no key is long.
    (spans_lines || (k.len() > 170 && go_json_chars(k) > 1024))
        .then_some("yaml: did not find expected ',' or '}'")
}

fn str_refusal(s: &str) -> Option<&'static str> {
    if s.is_ascii() && !s.as_bytes().contains(&0x7f) {
        return None;
    }
    let control = |c: char| matches!(c as u32, 0x7f..=0x84 | 0x86..=0x9f | 0xfffe | 0xffff);
    if s.contains(control) {
        return Some("yaml: control characters are not allowed");
    }
    let mut rest = s;
    while let Some(at) = rest.find('\u{85}') {
        rest = &rest[at + '\u{85}'.len_utf8()..];
        let after = rest.trim_start_matches(' ');
        if after.len() == rest.len()
            && (after.starts_with("---") || after.starts_with("..."))
            && after[3..].starts_with([' ', '\u{85}'])
        {
            return Some("yaml: found unexpected document indicator");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str) -> Value {
        let mut m = super::super::Map::new();
        m.insert(k, Value::Str(v.into()));
        Value::Map(m)
    }

    /// Each refusal as `sigs.k8s.io/yaml` v1.6.0's `Marshal` refused it.
    #[test]
    fn refusals_are_go_yamls() {
        let control = Some("yaml: control characters are not allowed");
        let key = Some("yaml: did not find expected ',' or '}'");
        let marker = Some("yaml: found unexpected document indicator");
        for (k, v, want) in [
            ("a", "plain", None),
            ("a", "nel\u{85} and \u{1F600} are fine", None),
            ("a", "del\u{7f}", control),
            ("a", "c1\u{86}", control),
            ("a", "nc\u{fffe}", control),
            ("del\u{7f}", "v", control),
            ("k\u{85}y", "v", key),
            ("a", "x\u{85}--- y", marker),
            ("a", "x\u{85} \u{85}...\u{85}z", marker),
            ("a", "x\u{85}---", None),
            ("a", "x\u{85} --- y", None),
        ] {
            assert_eq!(go_yaml_refusal(&one(k, v)), want, "{k:?}: {v:?}");
        }
        // The JSON of a key, quotes and escapes included, up to 1024.
        assert_eq!(go_yaml_refusal(&one(&"k".repeat(1022), "v")), None);
        assert_eq!(go_yaml_refusal(&one(&"k".repeat(1023), "v")), key);
        assert_eq!(
            go_yaml_refusal(&one(&format!("{}<", "k".repeat(1016)), "v")),
            None
        );
        assert_eq!(
            go_yaml_refusal(&one(&format!("{}<", "k".repeat(1017)), "v")),
            key
        );
    }

    #[test]
    fn backspace_and_form_feed_have_short_escapes() {
        let mut out = String::new();
        go_json_string("a\u{8}b\u{c}c\u{1}", &mut out);
        assert_eq!(out, "\"a\\bb\\fc\\u0001\"");
    }
}
