//! The document model, parser and emitter.
//!
//! kustomize reads resources with go-yaml v3 (through kyaml) and prints them
//! by converting each resource to JSON and back to YAML with
//! `sigs.k8s.io/yaml` (go-yaml v2). The observable consequences, which this
//! module reproduces, are:
//!
//! * scalar types are resolved with go-yaml v3's rules on input (`"1"` stays
//!   a string, `0775` is the octal integer 509, `yes` is a string);
//! * output map keys are sorted with go-yaml v2's "natural" key order;
//! * output strings are quoted only where go-yaml v2 would quote them, with
//!   its quoting style (single quotes where plain is not allowed, double
//!   quotes for strings that would otherwise read as another type, literal
//!   blocks for multi-line strings), and long plain or quoted strings are
//!   folded at 80 columns;
//! * sequences inside mappings are not indented.
//!
//! Map key order is preserved inside the model (it matters for the JSON
//! used by nothing but is cheap), and every parse error names a line and
//! column.
//!
//! The module's seams: the model is here; [`parse`] reads YAML (with
//! go-yaml's quirks, [`folded`] for folded scalars), [`resolve`]
//! gives plain scalars their types (go-yaml v3 on input, go-yaml v2's rules
//! where the emitter must quote), [`emit`] prints (go-yaml v2 over JSON) and
//! [`json`] encodes like Go's `encoding/json` for content hashes.

use std::collections::HashMap;

mod emit;
pub mod events;
mod folded;
mod json;
mod parse;
mod resolve;

pub use compact_str::CompactString;

pub use emit::{to_yaml, to_yaml_docs, to_yaml_docs_unfolded, to_yaml_without_json, v2_key_less};
pub use json::{go_json_string, go_yaml_refusal, to_go_json};
pub use parse::{
    ALIAS_BUDGET, YamlError, parse_all, parse_all_opts, parse_kio, parse_manifests, parse_one,
    parse_resources,
};
pub(crate) use parse::{EmptyNulls, PathSeg, parse_resources_noting_empty, weight};
pub use resolve::{GoTime, go_parse_int, go_timestamp, resolve_plain_v3, short_tag};

/// A YAML/JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(CompactString),
    Seq(Vec<Value>),
    Map(Map),
}

/// An insertion-ordered map with string keys. Kubernetes objects have small
/// maps, so lookups scan; large maps (ConfigMap data) are only iterated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map(pub Vec<(CompactString, Value)>);

impl Map {
    pub fn new() -> Self {
        Map(Vec::new())
    }
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }
    pub fn get_mut(&mut self, k: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(key, _)| key == k).map(|(_, v)| v)
    }
    pub fn contains(&self, k: &str) -> bool {
        self.0.iter().any(|(key, _)| key == k)
    }
    /// Sets `k`, keeping its position when present, appending otherwise.
    pub fn insert(&mut self, k: impl Into<CompactString>, v: Value) {
        let k = k.into();
        if let Some(slot) = self.get_mut(&k) {
            *slot = v;
        } else {
            self.push(k, v);
        }
    }
    /// Appends without the doubling `Vec::push` does on a full list while
    /// the map is small: parsed maps are exact-sized, and a transformer
    /// adding one label to every resource would otherwise leave most of
    /// each grown list empty.
    fn push(&mut self, k: CompactString, v: Value) {
        if self.0.len() == self.0.capacity() && self.0.len() < 16 {
            self.0.reserve_exact(1);
        }
        self.0.push((k, v));
    }
    /// [`Map::insert`] of every pair, in order; linear in the sizes of both
    /// maps (a merging generator may bring thousands of keys).
    pub fn set_all(&mut self, pairs: impl IntoIterator<Item = (CompactString, Value)>) {
        let mut at: HashMap<CompactString, usize> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        for (k, v) in pairs {
            match at.get(&k) {
                Some(&i) => self.0[i].1 = v,
                None => {
                    at.insert(k.clone(), self.0.len());
                    self.0.push((k, v));
                }
            }
        }
    }
    pub fn remove(&mut self, k: &str) -> Option<Value> {
        let i = self.0.iter().position(|(key, _)| key == k)?;
        Some(self.0.remove(i).1)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&CompactString, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &CompactString> {
        self.0.iter().map(|(k, _)| k)
    }
    /// Returns the value at `k`, inserting an empty map first if absent or null.
    pub fn entry_map(&mut self, k: &str) -> &mut Value {
        let idx = match self.0.iter().position(|(key, _)| key == k) {
            Some(i) => {
                if matches!(self.0[i].1, Value::Null) {
                    self.0[i].1 = Value::Map(Map::new());
                }
                i
            }
            None => {
                self.push(k.into(), Value::Map(Map::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[idx].1
    }
}

impl Value {
    pub fn str(s: impl Into<CompactString>) -> Value {
        Value::Str(s.into())
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(k))
    }
    pub fn get_mut(&mut self, k: &str) -> Option<&mut Value> {
        self.as_map_mut().and_then(|m| m.get_mut(k))
    }
    /// Follows a path of map keys.
    pub fn get_path(&self, path: &[&str]) -> Option<&Value> {
        let mut cur = self;
        for p in path {
            cur = cur.get(p)?;
        }
        Some(cur)
    }
    pub fn get_str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// A scalar rendered as text (what kustomize's string conversion of a
    /// scalar node value gives); `None` for collections.
    pub fn scalar_string(&self) -> Option<String> {
        self.scalar_text().map(String::from)
    }
    /// [`Value::scalar_string`] without the copy to the heap a short text
    /// needs as a `String`.
    pub fn scalar_text(&self) -> Option<CompactString> {
        match self {
            Value::Null => Some(CompactString::default()),
            Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
            Value::Int(i) => Some(CompactString::from(i.to_string())),
            Value::Float(f) => Some(format_float(*f).into()),
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }
}

pub(super) fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        let s = format!("{f}");
        if s.len() > 24 { format!("{f:e}") } else { s }
    }
}

#[cfg(test)]
mod tests {
    use super::resolve::go_parse_float;
    use super::*;

    fn rt(s: &str) -> String {
        to_yaml(&parse_one(s).unwrap())
    }

    #[test]
    fn resolves_like_go_yaml_v3() {
        assert_eq!(resolve_plain_v3("0775"), Value::Int(509));
        assert_eq!(resolve_plain_v3("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain_v3("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain_v3("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain_v3("~"), Value::Null);
    }

    #[test]
    fn numbers_go_through_json() {
        assert_eq!(
            rt("a: 0775\nb: 1.0\nc: 1.5\nd: 0x1F\n"),
            "a: 509\nb: 1\nc: 1.5\nd: 31\n"
        );
    }

    #[test]
    fn folds_long_plain_strings_at_80_columns() {
        let long = "word ".repeat(30);
        let out = rt(&format!("k: \"{}\"\n", long.trim_end()));
        assert!(out.lines().all(|l| l.len() <= 90), "{out}");
        assert!(out.lines().count() > 1, "{out}");
    }

    #[test]
    fn emits_sorted_keys_and_unindented_sequences() {
        let out = rt(
            "kind: A\napiVersion: v1\nspec:\n  items:\n  - b: 2\n    a: 1\n  - x\n  e: {}\n  f: []\n",
        );
        assert_eq!(
            out,
            "apiVersion: v1\nkind: A\nspec:\n  e: {}\n  f: []\n  items:\n  - a: 1\n    b: 2\n  - x\n"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(
            rt("a: \"1\"\nb: 'yes'\nc: \"\"\nd: 'x: y'\ne: \"tab\\there\"\nf: '- a'\n"),
            "a: \"1\"\nb: \"yes\"\nc: \"\"\nd: 'x: y'\ne: \"tab\\there\"\nf: '- a'\n"
        );
    }

    #[test]
    fn literal_blocks() {
        assert_eq!(
            rt("a: |\n  x\n  y\nb: \"x\\ny\"\nc: \" x\\n\"\n"),
            "a: |\n  x\n  y\nb: |-\n  x\n  y\nc: |2\n   x\n"
        );
    }

    #[test]
    fn dot_floats_follow_go_parse_float() {
        // What Go's strconv.ParseFloat accepts (and go-yaml v2 then quotes).
        for (s, float) in [
            ("._4", false),
            (".4_4", true),
            (".4", true),
            ("._", false),
            (".4e1_0", true),
            (".4e_1", false),
            (".e1", false),
            (".4_", false),
            ("._4e1", false),
            (".0_0", true),
            (".4e1", true),
        ] {
            assert_eq!(go_parse_float(s), float, "{s}");
        }
    }

    #[test]
    fn natural_key_order() {
        let mut v = vec!["a10", "a2", "B", "a", "_x", "1"];
        crate::gosort::sort(&mut v, |a, b| v2_key_less(a, b).is_lt());
        assert_eq!(v, vec!["_x", "1", "B", "a", "a2", "a10"]);
    }

    #[test]
    fn keys_that_are_not_totally_ordered_sort_without_panicking() {
        // 21 keys on which go-yaml v2's comparison is not transitive (found
        // by fuzzing); Rust's sort_by panicked on them.
        let keys = [
            "-", "(", "p", "01e", "0e", "n", "a", "0s", "0 e", "\u{1}", "0", "0&", "c", "00c", "e",
            "", "5e", "r", "s", "5", "1",
        ];
        let mut v: Vec<&str> = keys.to_vec();
        crate::gosort::sort(&mut v, |a, b| v2_key_less(a, b).is_lt());
        assert_eq!(v.len(), keys.len());
    }

    #[test]
    fn set_all_replaces_in_place_and_appends_in_order() {
        let mut m = Map::new();
        m.insert("a", Value::Int(1));
        m.insert("b", Value::Int(2));
        m.set_all([
            ("c".into(), Value::Int(3)),
            ("a".into(), Value::Int(10)),
            ("c".into(), Value::Int(30)),
        ]);
        let got: Vec<_> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            got,
            [
                ("a", Value::Int(10)),
                ("b", Value::Int(2)),
                ("c", Value::Int(30))
            ]
        );
    }

    #[test]
    fn repeated_keys_in_large_maps_are_found_too() {
        // Past 32 keys the parser checks repetition with a hash set.
        let mut text = String::from("data:\n");
        for i in 0..100 {
            text.push_str(&format!("  k{i}: v{i}\n"));
        }
        let parsed = parse_one(&text).unwrap();
        let data = parsed.get("data").and_then(Value::as_map).unwrap();
        assert_eq!(data.len(), 100);
        assert_eq!(data.0[99].0, "k99");
        for again in ["k3", "k40", "k99"] {
            let e = parse_all(&format!("{text}  {again}: x\n")).unwrap_err();
            assert!(
                e.message
                    .contains(&format!("mapping key \"{again}\" already defined")),
                "{e}"
            );
            assert_eq!(e.line, 102, "{e}");
        }
        // A repeated annotation still keeps its last value, in place.
        let mut ann = String::from("metadata:\n  annotations:\n");
        for i in 0..50 {
            ann.push_str(&format!("    a{i}: \"{i}\"\n"));
        }
        ann.push_str("    a7: last\n");
        let parsed = parse_one(&ann).unwrap();
        let anns = parsed
            .get_path(&["metadata", "annotations"])
            .and_then(Value::as_map)
            .unwrap();
        assert_eq!(anns.len(), 50);
        assert_eq!(anns.0[7], ("a7".into(), Value::str("last")));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_all("a: b\n c: d: e\n").unwrap_err();
        assert!(e.line >= 1);
        let e = parse_all("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("already defined"), "{e}");
        // ... except where kustomize tolerates it: annotations.
        let docs = parse_all(
            "metadata:\n  annotations:\n    x: \"1\"\n    y: \"3\"\n    x: \"2\"\n---\nmetadata:\n  annotations:\n    x: a\n  annotations:\n    x: b\n",
        )
        .unwrap();
        assert_eq!(
            docs[0]
                .get_path(&["metadata", "annotations", "x"])
                .and_then(Value::as_str),
            Some("2")
        );
        assert_eq!(
            docs[1]
                .get_path(&["metadata", "annotations", "x"])
                .and_then(Value::as_str),
            Some("a")
        );
        assert!(parse_all("metadata:\n  labels:\n    a: b\n    a: b\n").is_err());
        assert!(parse_all("spec:\n  annotations:\n    a: b\n    a: b\n").is_err());
    }

    #[test]
    fn refuses_alias_bombs_and_deep_nesting() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert!(parse_all(&doc).is_err());
        // One large anchor aliased many times: few nodes, many bytes.
        let mut doc = format!("a: &a {}\nb: [", "x".repeat(1 << 20));
        doc.push_str(&vec!["*a"; 100].join(", "));
        doc.push_str("]\n");
        let e = parse_all(&doc).unwrap_err();
        assert!(e.message.contains("expands aliases too much"), "{e}");
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert!(parse_all(&deep).is_err());
    }

    #[test]
    fn json_like_go() {
        let mut s = String::new();
        to_go_json(&parse_one("b: <x>\na: 1\n").unwrap(), &mut s);
        assert_eq!(s, "{\"a\":1,\"b\":\"\\u003cx\\u003e\"}");
    }
}
