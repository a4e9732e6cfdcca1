//! YAML as Helm reads it: `sigs.k8s.io/yaml` over go-yaml v2. Plain
//! scalars resolve with YAML 1.1's rules (`yes`/`on` are booleans, `0777`
//! is octal, timestamps stay strings), map keys become strings, anchors,
//! aliases and `<<` merge keys work, the last of duplicate keys wins.
//!
//! The result is the JSON-shaped [`Value`] of the kustomize engine, whose
//! emitter prints what `sigs.k8s.io/yaml.Marshal` prints.

use std::collections::HashMap;

use sluice_kustomize::yaml::{CompactString, Map, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use crate::gofmt::format_g64;

/// A YAML syntax error, with go-yaml's `line N:` form (lines from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("yaml: line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    pub(crate) fn at_marker(mark: &Marker, message: impl Into<String>) -> YamlError {
        YamlError {
            line: mark.line(),
            column: mark.col() + 1,
            message: message.into(),
        }
    }
}

impl From<ScanError> for YamlError {
    fn from(e: ScanError) -> YamlError {
        YamlError::at_marker(e.marker(), e.info().to_string())
    }
}

/// Cap on the nodes aliases may copy into one stream (go-yaml refuses
/// "excessive aliasing" too; a billion-laughs document stops here).
const ALIAS_BUDGET: usize = 4 << 20;

/// Reads every document of `text` (an empty stream has none).
pub(crate) fn parse_docs(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut b = Builder::new(Parser::new_from_str(text));
    let mut docs = Vec::new();
    loop {
        let (ev, mark) = b.next()?;
        match ev {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart => {
                let (ev, mark) = b.next()?;
                docs.push(b.node(ev, mark)?);
                b.anchors.clear();
            }
            Event::StreamEnd => return Ok(docs),
            _ => return Err(YamlError::at_marker(&mark, "unexpected event")),
        }
    }
}

/// Reads the first document of `text`, as `yaml.Unmarshal` does (`Null`
/// for an empty one).
pub(crate) fn parse_first(text: &str) -> Result<Value, YamlError> {
    Ok(parse_docs(text)?.into_iter().next().unwrap_or(Value::Null))
}

pub(crate) struct Builder<I: Iterator<Item = char>> {
    pub(crate) parser: Parser<I>,
    anchors: HashMap<usize, Value>,
    alias_budget: usize,
}

impl<I: Iterator<Item = char>> Builder<I> {
    pub(crate) fn new(parser: Parser<I>) -> Self {
        Builder {
            parser,
            anchors: HashMap::new(),
            alias_budget: ALIAS_BUDGET,
        }
    }

    pub(crate) fn next(&mut self) -> Result<(Event, Marker), YamlError> {
        Ok(self.parser.next_token()?)
    }

    /// Builds the node that starts with `ev`.
    pub(crate) fn node(&mut self, ev: Event, mark: Marker) -> Result<Value, YamlError> {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = resolve(text, style, tag.as_ref());
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::Alias(id) => {
                let v = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| YamlError::at_marker(&mark, "unknown anchor referenced"))?;
                let w = weight(&v);
                if w > self.alias_budget {
                    return Err(YamlError::at_marker(
                        &mark,
                        "document contains excessive aliasing",
                    ));
                }
                self.alias_budget -= w;
                Ok(v)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, mark) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(ev, mark)?);
                }
                let v = Value::Seq(items);
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                loop {
                    let (ev, kmark) = self.next()?;
                    if ev == Event::MappingEnd {
                        break;
                    }
                    let is_merge =
                        matches!(&ev, Event::Scalar(t, TScalarStyle::Plain, _, None) if t == "<<");
                    let key = self.node(ev, kmark)?;
                    let (ev, vmark) = self.next()?;
                    let value = self.node(ev, vmark)?;
                    if is_merge {
                        merge_into(&mut map, value, &vmark)?;
                        continue;
                    }
                    let key = key_string(&key).ok_or_else(|| {
                        YamlError::at_marker(
                            &kmark,
                            format!("unsupported map key of type {}", key.kind_name()),
                        )
                    })?;
                    map.insert(key, value);
                }
                let v = Value::Map(map);
                self.remember(anchor, &v);
                Ok(v)
            }
            _ => Err(YamlError::at_marker(
                &mark,
                "did not find expected node content",
            )),
        }
    }

    fn remember(&mut self, anchor: usize, v: &Value) {
        if anchor != 0 {
            self.anchors.insert(anchor, v.clone());
        }
    }

    /// Skips the node that starts with `ev` without building it.
    pub(crate) fn skip(&mut self, ev: Event) -> Result<(), YamlError> {
        let mut depth = match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => 1usize,
            _ => return Ok(()),
        };
        while depth > 0 {
            match self.next()?.0 {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth -= 1,
                Event::StreamEnd => break,
                _ => {}
            }
        }
        Ok(())
    }
}

/// go-yaml v2's `<<`: the entries of a map (or of each map of a sequence,
/// the first winning) set into `map` where it is merged.
fn merge_into(map: &mut Map, value: Value, mark: &Marker) -> Result<(), YamlError> {
    match value {
        Value::Map(m) => {
            for (k, v) in m.0 {
                map.insert(k, v);
            }
            Ok(())
        }
        Value::Seq(items) => {
            for item in items.into_iter().rev() {
                match item {
                    Value::Map(m) => {
                        for (k, v) in m.0 {
                            map.insert(k, v);
                        }
                    }
                    _ => {
                        return Err(YamlError::at_marker(
                            mark,
                            "map merge requires map or sequence of maps as the value",
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Err(YamlError::at_marker(
            mark,
            "map merge requires map or sequence of maps as the value",
        )),
    }
}

fn weight(v: &Value) -> usize {
    match v {
        Value::Seq(items) => 1 + items.iter().map(weight).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(_, v)| 1 + weight(v)).sum::<usize>(),
        _ => 1,
    }
}

/// A key as `sigs.k8s.io/yaml` turns it into a JSON object key.
fn key_string(key: &Value) -> Option<CompactString> {
    Some(match key {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string().into(),
        Value::Float(f) => format_g64(*f).into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Null => "null".into(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// A scalar's value, by go-yaml v2's rules.
fn resolve(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag {
        let full = if tag.handle == "!!" {
            format!("tag:yaml.org,2002:{}", tag.suffix)
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        };
        match full.as_str() {
            "tag:yaml.org,2002:str" | "tag:yaml.org,2002:binary" => return Value::Str(text.into()),
            "tag:yaml.org,2002:int"
            | "tag:yaml.org,2002:float"
            | "tag:yaml.org,2002:bool"
            | "tag:yaml.org,2002:null" => return resolve_plain_v2(text),
            _ => {}
        }
    }
    if style != TScalarStyle::Plain {
        return Value::Str(text.into());
    }
    resolve_plain_v2(text)
}

/// go-yaml v2's resolution of a plain scalar, as seen through an
/// `interface{}` (timestamps stay strings there).
pub(crate) fn resolve_plain_v2(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Value::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        let plain: String = text.chars().filter(|c| *c != '_').collect();
        if let Some(i) = sluice_kustomize::yaml::go_parse_int(&plain) {
            return Value::Int(i);
        }
        if let Some(u) = go_parse_uint(&plain) {
            return Value::Float(u as f64);
        }
        if is_yaml_style_float(&plain)
            && let Ok(f) = plain.parse::<f64>()
        {
            return Value::Float(f);
        }
        if let Some(rest) = plain.strip_prefix("0b")
            && let Ok(i) = i64::from_str_radix(rest, 2)
        {
            return Value::Int(i);
        }
        if let Some(rest) = plain.strip_prefix("-0b")
            && let Ok(i) = i64::from_str_radix(rest, 2)
        {
            return Value::Int(-i);
        }
    }
    Value::Str(text.into())
}

/// Go's `strconv.ParseUint(s, 0, 64)` for the values above `i64::MAX`.
fn go_parse_uint(s: &str) -> Option<u64> {
    let (radix, digits) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (2, r)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// go-yaml v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// The values view of a document: numbers as `float64`, as Helm and Flux
/// hold values after `sigs.k8s.io/yaml` decoded them into `interface{}`.
pub(crate) fn numbers_as_float(v: &mut Value) {
    match v {
        Value::Int(i) => *v = Value::Float(*i as f64),
        Value::Seq(items) => items.iter_mut().for_each(numbers_as_float),
        Value::Map(m) => m.0.iter_mut().for_each(|(_, v)| numbers_as_float(v)),
        _ => {}
    }
}

/// The first value JSON cannot carry (`.inf`, `.nan`), if any:
/// `sigs.k8s.io/yaml` fails on those.
pub(crate) fn non_finite(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) if !f.is_finite() => Some(*f),
        Value::Seq(items) => items.iter().find_map(non_finite),
        Value::Map(m) => m.iter().find_map(|(_, v)| non_finite(v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Value {
        parse_first(s).unwrap()
    }

    #[test]
    fn yaml_1_1_scalars() {
        let v = one(
            "a: yes\nb: off\nc: 0777\nd: 0x1F\ne: 1.5\nf: '1'\ng: ~\nh: 2001-12-14\ni: 1_000\n",
        );
        let m = v.as_map().unwrap();
        assert_eq!(m.get("a"), Some(&Value::Bool(true)));
        assert_eq!(m.get("b"), Some(&Value::Bool(false)));
        assert_eq!(m.get("c"), Some(&Value::Int(511)));
        assert_eq!(m.get("d"), Some(&Value::Int(31)));
        assert_eq!(m.get("e"), Some(&Value::Float(1.5)));
        assert_eq!(m.get("f"), Some(&Value::Str("1".into())));
        assert_eq!(m.get("g"), Some(&Value::Null));
        assert_eq!(m.get("h"), Some(&Value::Str("2001-12-14".into())));
        assert_eq!(m.get("i"), Some(&Value::Int(1000)));
    }

    #[test]
    fn keys_become_strings_and_last_duplicate_wins() {
        let v = one("1: a\ntrue: b\n1.5: c\nk: 1\nk: 2\n");
        let m = v.as_map().unwrap();
        assert_eq!(m.get("1"), Some(&Value::Str("a".into())));
        assert_eq!(m.get("true"), Some(&Value::Str("b".into())));
        assert_eq!(m.get("1.5"), Some(&Value::Str("c".into())));
        assert_eq!(m.get("k"), Some(&Value::Int(2)));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = one("base: &b {x: 1, z: 2}\nother:\n  <<: *b\n  z: 3\nlist: [*b]\n");
        let m = v.as_map().unwrap();
        let other = m.get("other").unwrap().as_map().unwrap();
        assert_eq!(other.get("x"), Some(&Value::Int(1)));
        assert_eq!(other.get("z"), Some(&Value::Int(3)));
        assert_eq!(m.get("list").unwrap().as_seq().unwrap().len(), 1);
    }

    #[test]
    fn errors_carry_the_line() {
        let e = parse_docs("a: b\nc: [\n").unwrap_err();
        assert!(e.to_string().starts_with("yaml: line "), "{e}");
        assert!(parse_docs("a: *nope\n").is_err());
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_docs(&doc).unwrap_err();
        assert!(e.message.contains("excessive aliasing"), "{e}");
    }

    #[test]
    fn documents() {
        assert_eq!(parse_docs("").unwrap().len(), 0);
        assert_eq!(parse_docs("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert_eq!(one(""), Value::Null);
    }
}
