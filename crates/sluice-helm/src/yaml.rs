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

/// A YAML syntax error, printed as go-yaml v2 prints it: `yaml: line N: PROBLEM`, or
/// `yaml: PROBLEM` where go-yaml names no line (see [`YamlError::from`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("yaml: {}{message}", where_(*line))]
pub struct YamlError {
    /// The line go-yaml names; 0 when it names none.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn where_(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}

/// yaml-rust2's parser errors (its context, then libyaml's problem) and the problem go-yaml
/// prints for each: go-yaml prints the problem only.
const PARSER_ERRORS: &[(&str, &str)] = &[
    (
        "while parsing a block mapping, did not find expected key",
        "did not find expected key",
    ),
    (
        "while parsing a block collection, did not find expected '-' indicator",
        "did not find expected '-' indicator",
    ),
    (
        "while parsing a flow sequence, expected ',' or ']'",
        "did not find expected ',' or ']'",
    ),
    (
        "while parsing a flow mapping, did not find expected ',' or '}'",
        "did not find expected ',' or '}'",
    ),
    (
        "while parsing a node, did not find expected node content",
        "did not find expected node content",
    ),
    (
        "did not find expected <document start>",
        "did not find expected <document start>",
    ),
    (
        "did not find expected <document-start>",
        "did not find expected <document start>",
    ),
];

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
    /// go-yaml's line: a scanner error's problem line counted from 1, a parser error's counted
    /// from 0 (libyaml's marks are 0-based and go-yaml adds one for scanner errors only), and
    /// no line when the problem is on the first line (mark 0, where go-yaml falls back to the
    /// context's mark, which is never later).
    fn from(e: ScanError) -> YamlError {
        let mark = e.marker();
        let info = e.info();
        let (line, message) = match PARSER_ERRORS.iter().find(|(ours, _)| *ours == info) {
            Some((_, go)) => (mark.line().saturating_sub(1), (*go).to_string()),
            None if mark.line() <= 1 => (0, info.to_string()),
            None => (mark.line(), info.to_string()),
        };
        YamlError {
            line,
            column: mark.col() + 1,
            message,
        }
    }
}

/// Cap on the nodes aliases may copy into one stream (go-yaml refuses
/// "excessive aliasing" too; a billion-laughs document stops here).
const ALIAS_BUDGET: usize = 4 << 20;

/// Reads every document of `text` (an empty stream has none).
pub(crate) fn parse_docs(text: &str) -> Result<Vec<Value>, YamlError> {
    // Lines inside flow collections and quoted scalars at an indentation go-yaml does not
    // check (sluice_kustomize::yaml::relax).
    sluice_kustomize::yaml::read_relaxed(text, parse_docs_once, |e: &YamlError| &e.message)
}

fn parse_docs_once(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut b = Builder::new(Parser::new_from_str(text));
    let mut docs = Vec::new();
    documents(&mut b, |b, ev, mark| {
        docs.push(b.node(ev, mark)?);
        Ok(true)
    })?;
    Ok(docs)
}

/// Goes through the documents of a stream, handing the first event of each to `doc`, which
/// reads the rest of it and says whether to go on; `false` when it stopped.
fn documents<I: Iterator<Item = char>>(
    b: &mut Builder<I>,
    mut doc: impl FnMut(&mut Builder<I>, Event, Marker) -> Result<bool, YamlError>,
) -> Result<bool, YamlError> {
    loop {
        let (ev, mark) = b.next()?;
        match ev {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart => {
                let (ev, mark) = b.next()?;
                if !doc(b, ev, mark)? {
                    return Ok(false);
                }
                b.anchors.clear();
            }
            Event::StreamEnd => return Ok(true),
            _ => return Err(YamlError::at_marker(&mark, "unexpected event")),
        }
    }
}

/// Reads the first document of `text`, as `yaml.Unmarshal` does (`Null`
/// for an empty one).
pub(crate) fn parse_first(text: &str) -> Result<Value, YamlError> {
    Ok(parse_docs(text)?.into_iter().next().unwrap_or(Value::Null))
}

/// Keys of a document's head to keep: each a top-level key, with `Some`
/// of the keys to keep inside it when it is a map (`None`: all of it).
pub(crate) type HeadKeys<'k> = &'k [(&'k str, Option<&'k [&'k str]>)];

/// The first document of `text` as [`parse_first`] reads it, but holding
/// only the keys `keep` names (what Helm's `SimpleHead` reads of a rendered
/// manifest): the rest of the stream is still read, so a syntax error
/// anywhere is found, but not built, which in a large chart was most of
/// the cost of sorting its manifests. Whatever only building would judge
/// (an alias, a `<<` merge key, a collection as a key) or any error sends
/// the text through [`parse_first`], so the outcome is always its outcome
/// with the other keys left out.
pub(crate) fn parse_first_head(text: &str, keep: HeadKeys<'_>) -> Result<Value, YamlError> {
    match read_head(text, keep) {
        Ok(Some(v)) => Ok(v),
        _ => parse_first(text),
    }
}

/// [`parse_first_head`] without its fallback: `None` when the text holds
/// something only the full reading can judge.
fn read_head(text: &str, keep: HeadKeys<'_>) -> Result<Option<Value>, YamlError> {
    let mut b = Builder::new(Parser::new_from_str(text));
    let mut first = None;
    let read = documents(&mut b, |b, ev, mark| {
        if first.is_some() {
            return b.skip_plain(ev);
        }
        first = Some(match ev {
            Event::MappingStart(..) => match b.head_map(keep)? {
                Some(v) => v,
                None => return Ok(false),
            },
            ev => b.node(ev, mark)?,
        });
        Ok(true)
    })?;
    Ok(read.then(|| first.unwrap_or(Value::Null)))
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

    /// A map (its `MappingStart` read) with only the keys `keep` names;
    /// `None` when a key is not an untagged scalar without an anchor, is a
    /// `<<` merge key, or a skipped value holds what only building judges.
    fn head_map(&mut self, keep: HeadKeys<'_>) -> Result<Option<Value>, YamlError> {
        let mut map = Map::new();
        loop {
            let (ev, _) = self.next()?;
            let key = match ev {
                Event::MappingEnd => return Ok(Some(Value::Map(map))),
                Event::Scalar(text, style, 0, None)
                    if !(style == TScalarStyle::Plain && text == "<<") =>
                {
                    resolve(text, style, None)
                }
                _ => return Ok(None),
            };
            let Some(key) = key_string(&key) else {
                return Ok(None);
            };
            let (ev, vmark) = self.next()?;
            let Some(&(_, inner)) = keep.iter().find(|(k, _)| **k == *key) else {
                if !self.skip_plain(ev)? {
                    return Ok(None);
                }
                continue;
            };
            let value = match (inner, ev) {
                (Some(inner), Event::MappingStart(..)) => {
                    let inner: Vec<(&str, Option<&[&str]>)> =
                        inner.iter().map(|k| (*k, None)).collect();
                    match self.head_map(&inner)? {
                        Some(v) => v,
                        None => return Ok(None),
                    }
                }
                (_, ev) => self.node(ev, vmark)?,
            };
            map.insert(key, value);
        }
    }

    /// Skips the node that starts with `ev` without building it: `false`
    /// when it holds an alias, a `<<` merge key or a collection as a map
    /// key, which only building judges.
    fn skip_plain(&mut self, mut ev: Event) -> Result<bool, YamlError> {
        // Each open collection: `Some(next is a key)` for a map, `None` for
        // a sequence.
        let mut open: Vec<Option<bool>> = Vec::new();
        loop {
            let at_key = matches!(open.last(), Some(Some(true)));
            let done = match ev {
                Event::Alias(_) => return Ok(false),
                Event::SequenceStart(..) | Event::MappingStart(..) if at_key => return Ok(false),
                Event::Scalar(ref t, TScalarStyle::Plain, _, None) if at_key && t == "<<" => {
                    return Ok(false);
                }
                Event::SequenceStart(..) => {
                    open.push(None);
                    false
                }
                Event::MappingStart(..) => {
                    open.push(Some(true));
                    false
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    open.pop();
                    true
                }
                Event::Scalar(..) => true,
                // The parser gives nothing else inside a node.
                _ => return Ok(false),
            };
            if done {
                // A node is complete: the next in its map is a value after a
                // key, a key after a value.
                match open.last_mut() {
                    None => return Ok(true),
                    Some(Some(next_is_key)) => *next_is_key = !*next_is_key,
                    Some(None) => {}
                }
            }
            ev = self.next()?.0;
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

    /// `parse_first_head` is `parse_first` with only the head's keys,
    /// however the document is written, and fails where it fails.
    #[test]
    fn a_head_is_the_full_reading_with_only_its_keys() {
        const KEEP: HeadKeys<'static> = &[
            ("apiVersion", None),
            ("kind", None),
            ("metadata", Some(&["name", "annotations"])),
        ];
        fn project(v: Value) -> Value {
            let Value::Map(m) = v else { return v };
            let mut out = Map::new();
            for (k, v) in m.0 {
                let v = match (k.as_str(), v) {
                    ("apiVersion" | "kind", v) => v,
                    ("metadata", Value::Map(md)) => Value::Map(Map(md
                        .0
                        .into_iter()
                        .filter(|(k, _)| k == "name" || k == "annotations")
                        .collect())),
                    ("metadata", v) => v,
                    _ => continue,
                };
                out.insert(k, v);
            }
            Value::Map(out)
        }
        let docs = [
            "",
            "# only a comment\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {x: y}\n  annotations:\n    helm.sh/hook: pre-install\n    w: 5\ndata:\n  big: |\n    text\n  list: [1, 2, {a: b}]\n",
            "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"s\"}, \"data\": {\"k\": \"dg==\"}}\n",
            "kind: A\nkind: B\nmetadata: {name: x}\nmetadata: {name: y}\n",
            "metadata: [a, b]\nkind: 5\n",
            "metadata:\n  name: yes\n  annotations: [x]\n",
            "- a\n- b\n",
            "plain scalar\n",
            "kind: A\n---\nkind: B\nspec: {x: *nope}\n",
            "kind: A\nspec:\n  base: &b {x: 1}\n  other: *b\n",
            "kind: A\nspec:\n  <<: {x: 1}\n",
            "kind: A\nspec:\n  ? [a, b]\n  : c\n",
            "kind: A\nspec:\n  x: [1, 2\n",
            "kind: A\nspec:\n  x: *missing\n",
            "kind: &k A\nmetadata:\n  name: *k\n",
            "<<: {kind: A}\n",
            "\"kind\": A\n'metadata': {'name': n, other: [1]}\nspec: {a: [{b: c}, [d]]}\n",
            "kind: A\nspec: !!map {a: b}\ndata: !!binary aGk=\n",
            "kind: A\n...\n---\nkind: B\n",
        ];
        for doc in docs {
            let full = parse_first(doc).map(project);
            let head = parse_first_head(doc, KEEP).map(project);
            assert_eq!(head, full, "{doc:?}");
        }
        // Skipped parts are read, not built: a plain document goes without
        // the fallback.
        let plain = "kind: A\nmetadata:\n  name: n\n  labels: {a: b}\nspec:\n  x: [1, {y: z}]\n";
        let fast = read_head(plain, KEEP).unwrap().unwrap();
        assert_eq!(fast.as_map().unwrap().get("spec"), None);
        assert_eq!(project(parse_first(plain).unwrap()), fast);
        for needs_building in [
            "kind: A\nspec:\n  base: &b {x: 1}\n  other: *b\n",
            "kind: A\nspec:\n  <<: {x: 1}\n",
            "kind: A\nspec:\n  ? [a, b]\n  : c\n",
        ] {
            assert_eq!(
                read_head(needs_building, KEEP).unwrap(),
                None,
                "{needs_building:?}"
            );
        }
    }

    #[test]
    fn documents() {
        assert_eq!(parse_docs("").unwrap().len(), 0);
        assert_eq!(parse_docs("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert_eq!(one(""), Value::Null);
    }
}
