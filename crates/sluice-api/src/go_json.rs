//! JSON as Go's `encoding/json` writes it, for digests, signatures and payloads that must be
//! byte-equal to what a Flux controller computes: compact, object members in the order given
//! (Go: struct field order, sorted map keys), and Go's HTML-safe escapes (`<`, `>`, `&`,
//! U+2028, U+2029 as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`).

use serde_json::Value;

/// `json.Marshal(value)` (no trailing newline).
pub fn marshal(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_as_go() {
        assert_eq!(
            super::marshal(&serde_json::json!({"patch": "a<b>&c\u{2028}", "n": 1})),
            "{\"patch\":\"a\\u003cb\\u003e\\u0026c\\u2028\",\"n\":1}"
        );
    }
}
