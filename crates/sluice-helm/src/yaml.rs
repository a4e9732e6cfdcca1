//! YAML as Helm reads it: `sigs.k8s.io/yaml` over go-yaml v2. The text is
//! read by libyaml's scanner and parser ([`events`]), of which go-yaml is a
//! port, so the same texts are accepted and refused, with go-yaml's problem
//! texts and lines. Plain scalars resolve with YAML 1.1's rules (`yes`/`on`
//! are booleans, `0777` is octal, timestamps stay strings), explicit tags
//! are checked as go-yaml checks them, map keys become strings, anchors,
//! aliases and `<<` merge keys work, the last of duplicate keys wins.
//!
//! The result is the JSON-shaped [`Value`] of the kustomize engine, whose
//! emitter prints what `sigs.k8s.io/yaml.Marshal` prints.

use std::collections::HashMap;

use sluice_kustomize::yaml::{CompactString, Map, Value};

use crate::gofmt::format_g64;

use sluice_kustomize::yaml::events;
pub(crate) use sluice_kustomize::yaml::events::{Event, Props, Scalar, Style};

/// A YAML failure, printed as `sigs.k8s.io/yaml` over go-yaml v2 prints it:
/// `yaml: line N: PROBLEM`, or `yaml: PROBLEM` where go-yaml names no line;
/// the failures of the conversion to JSON have no `yaml: ` (`prefixed`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}{message}", if *prefixed { "yaml: " } else { "" }, where_(*line))]
pub struct YamlError {
    /// The line go-yaml names; 0 when it names none.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub prefixed: bool,
}

fn where_(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}

impl YamlError {
    /// A failure of go-yaml's decoder (`failf`), which names no line.
    pub(crate) fn decode(message: impl Into<String>) -> YamlError {
        YamlError {
            line: 0,
            column: 0,
            message: message.into(),
            prefixed: true,
        }
    }
}

/// Where events come from: libyaml's parser over a text ([`events::Events`])
/// or, for a repository index read as a stream, yaml-rust2's
/// (`yaml_rust2::parser::Parser`).
pub(crate) trait Source {
    fn next_event(&mut self) -> Result<Event, YamlError>;
}

impl Source for events::Events<'_> {
    fn next_event(&mut self) -> Result<Event, YamlError> {
        self.pull().map(|(ev, _)| ev).map_err(|e| {
            let (line, column) = e.v2_line();
            YamlError {
                line,
                column,
                message: e.problem,
                prefixed: true,
            }
        })
    }
}

impl<I: Iterator<Item = char>> Source for yaml_rust2::parser::Parser<I> {
    fn next_event(&mut self) -> Result<Event, YamlError> {
        use yaml_rust2::parser::Event as E;
        use yaml_rust2::scanner::TScalarStyle;
        let (ev, _) = self.next_token().map_err(|e| {
            let mark = e.marker();
            YamlError {
                line: mark.line(),
                column: mark.col() + 1,
                message: e.info().to_string(),
                prefixed: true,
            }
        })?;
        let anchor = |id: usize| (id != 0).then(|| id.to_string());
        let tag = |t: Option<yaml_rust2::parser::Tag>| {
            t.map(|t| {
                if t.handle == "!!" {
                    format!("tag:yaml.org,2002:{}", t.suffix)
                } else {
                    format!("{}{}", t.handle, t.suffix)
                }
            })
        };
        let ev = match ev {
            E::Nothing | E::StreamStart => Event::StreamStart,
            E::StreamEnd => Event::StreamEnd,
            E::DocumentStart => Event::DocumentStart,
            E::DocumentEnd => Event::DocumentEnd,
            E::Alias(id) => Event::Alias(id.to_string()),
            E::Scalar(value, style, id, t) => {
                let plain = style == TScalarStyle::Plain;
                let implicit = plain && t.is_none();
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                };
                Event::Scalar(Scalar {
                    value: value.into(),
                    props: Props {
                        anchor: anchor(id),
                        tag: tag(t),
                    },
                    style,
                    implicit,
                })
            }
            E::SequenceStart(id, t) => Event::SequenceStart(Props {
                anchor: anchor(id),
                tag: tag(t),
            }),
            E::SequenceEnd => Event::SequenceEnd,
            E::MappingStart(id, t) => Event::MappingStart(Props {
                anchor: anchor(id),
                tag: tag(t),
            }),
            E::MappingEnd => Event::MappingEnd,
        };
        Ok(ev)
    }
}

/// Cap on the nodes aliases may copy into one stream (go-yaml refuses
/// "excessive aliasing" too; a billion-laughs document stops here).
const ALIAS_BUDGET: usize = 4 << 20;

/// Reads every document of `text` (an empty stream has none).
pub(crate) fn parse_docs(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut b = Builder::new(events::Events::new(text));
    let mut docs = Vec::new();
    documents(&mut b, false, |b, ev| {
        docs.push(b.node(ev)?);
        Ok(true)
    })?;
    Ok(docs)
}

/// Goes through the documents of a stream (only the first with `first_only`, as
/// `yaml.Unmarshal` does: what follows its end event is not read), handing the first event
/// of each to `doc`, which reads the rest of it and says whether to go on.
fn documents<S: Source>(
    b: &mut Builder<S>,
    first_only: bool,
    mut doc: impl FnMut(&mut Builder<S>, Event) -> Result<bool, YamlError>,
) -> Result<(), YamlError> {
    loop {
        let ev = b.next()?;
        match ev {
            Event::StreamStart => {}
            Event::DocumentStart => {
                let ev = b.next()?;
                if !doc(b, ev)? {
                    return Ok(());
                }
                // The node is followed by the document's end.
                b.next()?;
                b.anchors.clear();
                if first_only {
                    return Ok(());
                }
            }
            Event::StreamEnd => return Ok(()),
            _ => {
                return Err(YamlError::decode(
                    "attempted to go past the end of stream; corrupted value?",
                ));
            }
        }
    }
}

/// Reads the first document of `text` as `yaml.Unmarshal` does (`Null`
/// for an empty one): what follows its end is not read.
pub(crate) fn parse_first(text: &str) -> Result<Value, YamlError> {
    let mut b = Builder::new(events::Events::new(text));
    let mut first = Value::Null;
    documents(&mut b, true, |b, ev| {
        first = b.node(ev)?;
        Ok(true)
    })?;
    Ok(first)
}

/// Keys of a document's head to keep: each a top-level key, with `Some`
/// of the keys to keep inside it when it is a map (`None`: all of it).
pub(crate) type HeadKeys<'k> = &'k [(&'k str, Option<&'k [&'k str]>)];

/// The first document of `text` as [`parse_first`] reads it, but holding
/// only the keys `keep` names (what Helm's `SimpleHead` reads of a rendered
/// manifest): the rest of the document is still read, so a syntax error
/// anywhere in it is found, but not built, which in a large chart was most
/// of the cost of sorting its manifests. Whatever only building would judge
/// (an alias, a `<<` merge key, a tag, a collection or null as a key) or
/// any error sends the text through [`parse_first`], so the outcome is
/// always its outcome with the other keys left out.
pub(crate) fn parse_first_head(text: &str, keep: HeadKeys<'_>) -> Result<Value, YamlError> {
    match read_head(text, keep) {
        Ok(Some(v)) => Ok(v),
        _ => parse_first(text),
    }
}

/// [`parse_first_head`] without its fallback: `None` when the text holds
/// something only the full reading can judge.
fn read_head(text: &str, keep: HeadKeys<'_>) -> Result<Option<Value>, YamlError> {
    let mut b = Builder::new(events::Events::new(text));
    let mut first = None;
    documents(&mut b, true, |b, ev| {
        first = Some(match ev {
            Event::MappingStart(p) if p == Props::default() => match b.head_map(keep)? {
                Some(v) => v,
                None => return Ok(false),
            },
            Event::Scalar(s) if s.props == Props::default() => scalar(s)?,
            _ => {
                b.gave_up = true;
                return Ok(false);
            }
        });
        Ok(true)
    })?;
    Ok((!b.gave_up).then(|| first.unwrap_or(Value::Null)))
}

pub(crate) struct Builder<S> {
    pub(crate) src: S,
    anchors: HashMap<String, Value>,
    alias_budget: usize,
    /// The head reading met something only the full reading judges.
    gave_up: bool,
}

/// A collection being built.
enum Open {
    Seq(Vec<Value>, Option<String>),
    /// The map, its anchor, and the key read whose value comes next (with
    /// whether it is a `<<` merge key).
    Map(Map, Option<String>, Option<(Value, bool)>),
}

impl<S: Source> Builder<S> {
    pub(crate) fn new(src: S) -> Self {
        Builder {
            src,
            anchors: HashMap::new(),
            alias_budget: ALIAS_BUDGET,
            gave_up: false,
        }
    }

    pub(crate) fn next(&mut self) -> Result<Event, YamlError> {
        self.src.next_event()
    }

    /// Builds the node that starts with `ev`, going down without recursion
    /// (libyaml nests as deep as go-yaml's limit, 10,000).
    pub(crate) fn node(&mut self, mut ev: Event) -> Result<Value, YamlError> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let (done, merge) = match ev {
                Event::Scalar(s) => {
                    let merge = s.value == "<<"
                        && (s.implicit
                            || s.props.tag.as_deref() == Some("tag:yaml.org,2002:merge"));
                    let anchor = s.props.anchor.clone();
                    let v = scalar(s)?;
                    self.remember(anchor, &v);
                    (v, merge)
                }
                Event::Alias(name) => (self.alias(&name, &open)?, false),
                Event::SequenceStart(p) => {
                    open.push(Open::Seq(Vec::new(), p.anchor));
                    ev = self.next()?;
                    continue;
                }
                Event::MappingStart(p) => {
                    open.push(Open::Map(Map::new(), p.anchor, None));
                    ev = self.next()?;
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (v, anchor) = match open.pop() {
                        Some(Open::Seq(items, a)) => (Value::Seq(items), a),
                        Some(Open::Map(map, a, _)) => (Value::Map(map), a),
                        None => return Err(YamlError::decode("unexpected end of a collection")),
                    };
                    self.remember(anchor, &v);
                    (v, false)
                }
                _ => {
                    return Err(YamlError::decode(
                        "attempted to go past the end of stream; corrupted value?",
                    ));
                }
            };
            match open.last_mut() {
                None => return Ok(done),
                Some(Open::Seq(items, _)) => items.push(done),
                Some(Open::Map(map, _, pending)) => match pending.take() {
                    None => {
                        if matches!(done, Value::Seq(_) | Value::Map(_)) {
                            return Err(YamlError::decode(format!(
                                "invalid map key: {}",
                                go_sharp_v(&done, false)
                            )));
                        }
                        *pending = Some((done, merge));
                    }
                    Some((_, true)) => merge_into(map, done)?,
                    Some((key, false)) => {
                        let Some(key) = key_string(&key) else {
                            return Err(null_key(&done));
                        };
                        map.insert(key, done);
                    }
                },
            }
            ev = self.next()?;
        }
    }

    fn alias(&mut self, name: &str, open: &[Open]) -> Result<Value, YamlError> {
        let building = open.iter().any(|o| match o {
            Open::Seq(_, a) | Open::Map(_, a, _) => a.as_deref() == Some(name),
        });
        if building {
            return Err(YamlError::decode(format!(
                "anchor '{name}' value contains itself"
            )));
        }
        let v = self
            .anchors
            .get(name)
            .cloned()
            .ok_or_else(|| YamlError::decode(format!("unknown anchor '{name}' referenced")))?;
        let w = weight(&v);
        if w > self.alias_budget {
            return Err(YamlError::decode("document contains excessive aliasing"));
        }
        self.alias_budget -= w;
        Ok(v)
    }

    fn remember(&mut self, anchor: Option<String>, v: &Value) {
        if let Some(a) = anchor {
            self.anchors.insert(a, v.clone());
        }
    }

    /// A map (its `MappingStart` read) with only the keys `keep` names;
    /// `None` when a key is not an untagged plain or quoted scalar without
    /// an anchor, is a `<<` merge key or null, or a skipped value holds
    /// what only building judges.
    fn head_map(&mut self, keep: HeadKeys<'_>) -> Result<Option<Value>, YamlError> {
        let mut map = Map::new();
        loop {
            let ev = self.next()?;
            let key = match ev {
                Event::MappingEnd => return Ok(Some(Value::Map(map))),
                Event::Scalar(s)
                    if s.props == Props::default() && !(s.implicit && s.value == "<<") =>
                {
                    scalar(s)?
                }
                _ => return Ok(self.give_up()),
            };
            let Some(key) = key_string(&key) else {
                return Ok(self.give_up());
            };
            let ev = self.next()?;
            let Some(&(_, inner)) = keep.iter().find(|(k, _)| **k == *key) else {
                if !self.skip_plain(ev)? {
                    return Ok(self.give_up());
                }
                continue;
            };
            let value = match (inner, ev) {
                (Some(inner), Event::MappingStart(p)) if p == Props::default() => {
                    let inner: Vec<(&str, Option<&[&str]>)> =
                        inner.iter().map(|k| (*k, None)).collect();
                    match self.head_map(&inner)? {
                        Some(v) => v,
                        None => return Ok(None),
                    }
                }
                (_, ev) => {
                    if !plain_node(&ev) {
                        return Ok(self.give_up());
                    }
                    self.node(ev)?
                }
            };
            map.insert(key, value);
        }
    }

    fn give_up(&mut self) -> Option<Value> {
        self.gave_up = true;
        None
    }

    /// Skips the node that starts with `ev` without building it: `false`
    /// when it holds what only building judges: an alias, an anchor, a tag,
    /// a `<<` merge key, or a collection or null as a map key.
    fn skip_plain(&mut self, mut ev: Event) -> Result<bool, YamlError> {
        // Each open collection: `Some(next is a key)` for a map, `None` for
        // a sequence.
        let mut open: Vec<Option<bool>> = Vec::new();
        loop {
            let at_key = matches!(open.last(), Some(Some(true)));
            if !plain_node(&ev) {
                return Ok(false);
            }
            let done = match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) if at_key => return Ok(false),
                Event::Scalar(ref s) if at_key && s.implicit && is_null_or_merge(&s.value) => {
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
            ev = self.next()?;
        }
    }

    /// Skips the node that starts with `ev` without building it.
    pub(crate) fn skip(&mut self, ev: Event) -> Result<(), YamlError> {
        let mut depth = match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => 1usize,
            _ => return Ok(()),
        };
        while depth > 0 {
            match self.next()? {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth -= 1,
                Event::StreamEnd => break,
                _ => {}
            }
        }
        Ok(())
    }
}

/// An event without what only building judges: an alias, an anchor, a tag.
fn plain_node(ev: &Event) -> bool {
    match ev {
        Event::Alias(_) => false,
        Event::Scalar(s) => s.props == Props::default(),
        Event::SequenceStart(p) | Event::MappingStart(p) => *p == Props::default(),
        _ => true,
    }
}

/// A plain scalar that resolves to null or is a merge key.
fn is_null_or_merge(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL" | "<<")
}

/// `sigs.k8s.io/yaml`'s refusal of a null map key.
fn null_key(value: &Value) -> YamlError {
    YamlError {
        line: 0,
        column: 0,
        message: format!(
            "unsupported map key of type: %!s(<nil>), key: <nil>, value: {}",
            go_sharp_v(value, true)
        ),
        prefixed: false,
    }
}

/// Go's `%#v` of a decoded YAML value (`top`: the argument itself, where a
/// nil prints `<nil>`).
fn go_sharp_v(v: &Value, top: bool) -> String {
    match v {
        Value::Null if top => "<nil>".into(),
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_g64(*f),
        Value::Str(s) => crate::funcs::go::quote(s),
        Value::Seq(items) => format!(
            "[]interface {{}}{{{}}}",
            items
                .iter()
                .map(|i| go_sharp_v(i, false))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[interface {{}}]interface {{}}{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!(
                        "{}:{}",
                        crate::funcs::go::quote(k),
                        go_sharp_v(v, false)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// go-yaml v2's `<<`: the entries of a map (or of each map of a sequence,
/// the first winning) set into `map` where it is merged.
fn merge_into(map: &mut Map, value: Value) -> Result<(), YamlError> {
    let want_map = || YamlError::decode("map merge requires map or sequence of maps as the value");
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
                    _ => return Err(want_map()),
                }
            }
            Ok(())
        }
        _ => Err(want_map()),
    }
}

fn weight(v: &Value) -> usize {
    match v {
        Value::Seq(items) => 1 + items.iter().map(weight).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(_, v)| 1 + weight(v)).sum::<usize>(),
        _ => 1,
    }
}

/// A key as `sigs.k8s.io/yaml` turns it into a JSON object key; `None` for
/// null, which it refuses (collections go-yaml refused already).
fn key_string(key: &Value) -> Option<CompactString> {
    Some(match key {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string().into(),
        Value::Float(f) => format_g64(*f).into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Null | Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// go-yaml v2's decoding of a scalar into `interface{}`: a quoted or block
/// scalar without a tag is a string; a plain one resolves; an explicit
/// `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` or `!!timestamp` must
/// resolve to its kind (an integer may be a float), else "cannot decode";
/// `!!binary` is base64; any other tag leaves the text a string.
fn scalar(s: Scalar) -> Result<Value, YamlError> {
    let tag = s
        .props
        .tag
        .as_deref()
        .map(sluice_kustomize::yaml::short_tag);
    let Some(tag) = tag else {
        if !s.implicit {
            return Ok(Value::Str(s.value));
        }
        return Ok(resolve_plain_v2(s.value));
    };
    match tag.as_str() {
        "!!str" => Ok(Value::Str(s.value)),
        "!!binary" => {
            let clean: String = s
                .value
                .chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect();
            match data_encoding::BASE64.decode(clean.as_bytes()) {
                Ok(data) => Ok(Value::Str(String::from_utf8_lossy(&data).as_ref().into())),
                Err(_) => Err(YamlError::decode(
                    "!!binary value contains invalid base64 data",
                )),
            }
        }
        "!!int" | "!!float" | "!!bool" | "!!null" | "!!timestamp" => {
            let text = s.value.clone();
            let v = resolve_plain_v2(s.value);
            let got = match &v {
                Value::Null => "!!null",
                Value::Bool(_) => "!!bool",
                Value::Int(_) => "!!int",
                // Above i64's range, go-yaml's integer is a uint64.
                Value::Float(_) if go_parse_uint(&text.replace('_', "")).is_some() => "!!int",
                Value::Float(_) => "!!float",
                _ if tag == "!!timestamp" && is_timestamp(&text) => "!!timestamp",
                _ => "!!str",
            };
            if got == tag {
                return Ok(v);
            }
            if tag == "!!float" && got == "!!int" {
                return Ok(match v {
                    Value::Int(i) => Value::Float(i as f64),
                    v => v,
                });
            }
            Err(YamlError::decode(format!(
                "cannot decode {got} `{text}` as a {tag}"
            )))
        }
        _ => Ok(Value::Str(s.value)),
    }
}

/// go-yaml v2's `parseTimestamp` (v3's too).
fn is_timestamp(s: &str) -> bool {
    sluice_kustomize::yaml::go_timestamp(s).is_some()
}

/// go-yaml v2's resolution of a plain scalar, as seen through an
/// `interface{}` (timestamps stay strings there).
pub(crate) fn resolve_plain_v2(text: CompactString) -> Value {
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
    Value::Str(text)
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

    /// go-yaml v2's decoding of explicit tags, keys and anchors (the
    /// messages are those `helm template` prints for the same texts).
    #[test]
    fn tags_keys_and_anchors_decode_as_go_yaml_decodes_them() {
        let m = one(
            "a: !!binary aGVsbG8=\nb: !!float 1\nc: !!str 12\nd: !custom x\ne: !!timestamp 2001-12-14\nf: ! 12\n",
        );
        let m = m.as_map().unwrap();
        assert_eq!(m.get("a"), Some(&Value::Str("hello".into())));
        assert_eq!(m.get("b"), Some(&Value::Float(1.0)));
        assert_eq!(m.get("c"), Some(&Value::Str("12".into())));
        assert_eq!(m.get("d"), Some(&Value::Str("x".into())));
        assert_eq!(m.get("e"), Some(&Value::Str("2001-12-14".into())));
        assert_eq!(m.get("f"), Some(&Value::Str("12".into())));
        for (text, err) in [
            (
                "a: !!int 1.5\n",
                "yaml: cannot decode !!float `1.5` as a !!int",
            ),
            (
                "a: !!timestamp x\n",
                "yaml: cannot decode !!str `x` as a !!timestamp",
            ),
            ("a: !!null x\n", "yaml: cannot decode !!str `x` as a !!null"),
            (
                "a: !!binary '*'\n",
                "yaml: !!binary value contains invalid base64 data",
            ),
            (
                "? [a]\n: 1\n",
                "yaml: invalid map key: []interface {}{\"a\"}",
            ),
            (
                "~: 1\n",
                "unsupported map key of type: %!s(<nil>), key: <nil>, value: 1",
            ),
            ("a: &x [*x]\n", "yaml: anchor 'x' value contains itself"),
            ("a: *x\n", "yaml: unknown anchor 'x' referenced"),
            (
                "a: [1, 2]\n<<: 3\n",
                "yaml: map merge requires map or sequence of maps as the value",
            ),
        ] {
            assert_eq!(parse_first(text).unwrap_err().to_string(), err, "{text:?}");
        }
        assert!(is_timestamp("2001-12-14t21:59:43.10-05:00"));
        assert!(is_timestamp("2001-12-14 21:59:43.10"));
        assert!(!is_timestamp("2001-13-14"));
        assert!(!is_timestamp("2001-12-14 21:59:43.10Z"));
        assert!(!is_timestamp("2001-02-30"));
    }

    /// Only the first document is read, as `yaml.Unmarshal` reads it: a
    /// broken one after it is not an error; `parse_docs` reads them all.
    #[test]
    fn the_first_document_is_read_alone() {
        assert_eq!(one("a: 1\n---\nb: [\n").as_map().unwrap().len(), 1);
        assert!(parse_docs("a: 1\n---\nb: [\n").is_err());
    }

    #[test]
    fn documents() {
        assert_eq!(parse_docs("").unwrap().len(), 0);
        assert_eq!(parse_docs("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert_eq!(one(""), Value::Null);
    }
}
