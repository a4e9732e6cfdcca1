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

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

pub use compact_str::CompactString;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        let s = format!("{f}");
        if s.len() > 24 { format!("{f:e}") } else { s }
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// A YAML syntax or structure error with its position (1-based).
#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "yaml: line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

fn err_at(m: &Marker, msg: impl Into<String>) -> YamlError {
    YamlError {
        line: m.line(),
        column: m.col() + 1,
        message: msg.into(),
    }
}

/// Parses every document in `text`. Empty documents are returned as `Null`.
pub fn parse_all(text: &str) -> Result<Vec<Value>, YamlError> {
    parse_all_opts(text, false)
}

/// Like [`parse_all`]; with `allow_duplicate_keys` a repeated key replaces
/// the earlier one (what kustomize's kustomization-file reader does).
pub fn parse_all_opts(text: &str, allow_duplicate_keys: bool) -> Result<Vec<Value>, YamlError> {
    Ok(parse_docs(text, allow_duplicate_keys, false, false)?
        .into_iter()
        .map(|(d, _)| d)
        .collect())
}

/// Parses resources or patches: like [`parse_all`], and every folded
/// scalar becomes what kustomize's write-and-read-again of each resource
/// makes of it (see [`crate::folded`]).
pub fn parse_resources(text: &str) -> Result<Vec<Value>, YamlError> {
    Ok(parse_docs(text, false, true, false)?
        .into_iter()
        .map(|(d, _)| d)
        .collect())
}

/// [`parse_resources`], with the paths of each document's fields that have
/// no value at all (`key:`).
pub(crate) fn parse_resources_noting_empty(
    text: &str,
) -> Result<Vec<(Value, EmptyNulls)>, YamlError> {
    parse_docs(text, false, true, true)
}

/// Whether `text` ends in a line go-yaml may read as the last line of a
/// block scalar's content: no final line break, and neither blank nor a
/// comment nor a document marker.
fn ends_inside_content_line(text: &str) -> bool {
    if text.ends_with(['\n', '\r']) {
        return false;
    }
    let last = text.rsplit(['\n', '\r']).next().unwrap_or(text);
    let body = last.trim_start_matches(' ');
    !(body.trim().is_empty()
        || body.starts_with('#')
        || last.starts_with("---")
        || last.starts_with("..."))
}

fn parse_docs(
    text: &str,
    allow_duplicate_keys: bool,
    folded_roundtrip: bool,
    record_empty: bool,
) -> Result<Vec<(Value, EmptyNulls)>, YamlError> {
    let mut p = DocParser {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        allow_dup: allow_duplicate_keys,
        path: Vec::new(),
        depth: 0,
        alias_budget: ALIAS_BUDGET,
        folded_roundtrip,
        eof_in_line: ends_inside_content_line(text),
        last_block: None,
        last_was_block: false,
        record_empty,
        ipath: Vec::new(),
        empty_nulls: Vec::new(),
        src: text,
    };
    let mut docs = Vec::new();
    loop {
        let (ev, m) = p.next()?;
        match ev {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => {
                // go-yaml ends a block scalar cut off by the end of the
                // text without the line break yaml-rust2 adds.
                if let (true, Some((raw, folded)), Some(doc)) = (
                    p.last_was_block,
                    p.last_block.take(),
                    docs.last_mut().map(|(d, _)| d),
                ) && let (Some(stripped), Some(Value::Str(last))) =
                    (raw.strip_suffix('\n'), last_scalar_mut(doc))
                {
                    *last = if folded && p.folded_roundtrip {
                        crate::folded::roundtrip(stripped).into()
                    } else {
                        stripped.into()
                    };
                }
                break;
            }
            Event::DocumentStart => {
                let (ev, m) = p.next()?;
                if matches!(ev, Event::DocumentEnd) {
                    docs.push((Value::Null, Vec::new()));
                    continue;
                }
                let v = p.node(ev, m)?;
                docs.push((v, std::mem::take(&mut p.empty_nulls)));
            }
            other => {
                return Err(err_at(&m, format!("unexpected event {other:?}")));
            }
        }
    }
    Ok(docs)
}

/// The last scalar of `v` in document order.
fn last_scalar_mut(v: &mut Value) -> Option<&mut Value> {
    match v {
        Value::Map(m) => m.0.last_mut().and_then(|(_, v)| last_scalar_mut(v)),
        Value::Seq(items) => items.last_mut().and_then(last_scalar_mut),
        other => Some(other),
    }
}

/// Parses a single-document text (an empty text gives `Null`).
pub fn parse_one(text: &str) -> Result<Value, YamlError> {
    let docs = parse_all(text)?;
    Ok(docs
        .into_iter()
        .find(|d| !d.is_null())
        .unwrap_or(Value::Null))
}

/// Deeper documents are refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

/// What alias expansion may add to one parse, in the bytes [`weight`]
/// estimates: 16 MiB. Real manifests alias a few small nodes; a bomb of
/// nested or large anchors is refused before it is copied.
pub const ALIAS_BUDGET: usize = 16 << 20;

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PathSeg {
    Key(CompactString),
    Index(usize),
}

/// Where a document has fields with no value at all (`key:`), which
/// kyaml's merge walker tells apart from an explicit `null` (see
/// [`crate::smp`]).
pub(crate) type EmptyNulls = Vec<Vec<PathSeg>>;

struct DocParser<'a> {
    parser: Parser<std::str::Chars<'a>>,
    /// Anchored nodes and their [`weight`].
    anchors: HashMap<usize, (Value, usize)>,
    allow_dup: bool,
    /// Keys from the document root to the mapping being read (`None` for a
    /// sequence item), for kustomize's tolerance of repeated annotations.
    path: Vec<Option<CompactString>>,
    depth: usize,
    /// Bytes alias expansion may still copy (guards against exponential
    /// alias bombs and large anchors aliased many times).
    alias_budget: usize,
    /// Folded scalars take what go-yaml v3 writing and reading them back
    /// makes of them (see [`crate::folded`]): kustomize does that to
    /// every resource and patch it reads.
    folded_roundtrip: bool,
    /// The text ends inside a line that may be a block scalar's last:
    /// then go-yaml reads no final line break there.
    eof_in_line: bool,
    /// The last scalar read, when it was a block scalar and
    /// `eof_in_line` is set: its text as read and whether it is folded.
    last_block: Option<(String, bool)>,
    /// Whether the last scalar read was a block scalar.
    last_was_block: bool,
    /// Whether to note the fields with no value (`key:`) in
    /// `empty_nulls`, with the path to the node being read in `ipath`.
    record_empty: bool,
    ipath: Vec<PathSeg>,
    empty_nulls: EmptyNulls,
    /// The text being read, for what yaml-rust2's events do not say.
    src: &'a str,
}

impl DocParser<'_> {
    fn next(&mut self) -> Result<(Event, Marker), YamlError> {
        self.parser.next_token().map_err(|e| {
            let m = e.marker();
            YamlError {
                line: m.line(),
                column: m.col() + 1,
                message: e.info().to_string(),
            }
        })
    }

    /// Whether the mapping being read is at `keys` from the document root.
    fn at(&self, keys: &[&str]) -> bool {
        self.path.len() == keys.len()
            && self
                .path
                .iter()
                .zip(keys)
                .all(|(p, k)| p.as_deref() == Some(*k))
    }

    /// yaml-rust2 reads a block scalar with no content line that the end
    /// of the text ends as one line break (`|` or `|+`) where go-yaml
    /// reads none (`""`) and, under `+`, only the empty lines after the
    /// header. `m` is where the event starts: the `|` or `>` indicator in
    /// exactly that case (the first content line otherwise). `None` when
    /// this is not that case.
    fn empty_block_at_end(&self, m: &Marker) -> Option<String> {
        let at = if self.src.is_ascii() {
            m.index()
        } else {
            self.src.char_indices().nth(m.index())?.0
        };
        let rest = self.src.get(at..)?;
        let mut chars = rest.chars();
        if !matches!(chars.next(), Some('|' | '>')) {
            return None;
        }
        let (header, after) = rest.split_once('\n')?;
        if !after.chars().all(|c| c == ' ' || c == '\n' || c == '\r') {
            return None;
        }
        let keep = header.chars().skip(1).take(2).any(|c| c == '+');
        Some(if keep {
            "\n".repeat(after.matches('\n').count())
        } else {
            String::new()
        })
    }

    fn node(&mut self, ev: Event, m: Marker) -> Result<Value, YamlError> {
        if self.depth >= MAX_DEPTH {
            return Err(err_at(
                &m,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        let r = self.node_inner(ev, m);
        self.depth -= 1;
        r
    }

    fn node_inner(&mut self, ev: Event, m: Marker) -> Result<Value, YamlError> {
        match ev {
            Event::Scalar(mut text, style, anchor, tag) => {
                let block = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded);
                let folded = style == TScalarStyle::Folded;
                self.last_was_block = block;
                if block && !text.is_empty() && text.chars().all(|c| c == '\n') {
                    text = self.empty_block_at_end(&m).unwrap_or(text);
                }
                if block && self.eof_in_line {
                    self.last_block = Some((text.clone(), folded));
                }
                if folded && self.folded_roundtrip {
                    text = crate::folded::roundtrip(&text);
                }
                let mut v = resolve_scalar(
                    text,
                    style,
                    tag.as_ref().map(|t| (t.handle.as_str(), t.suffix.as_str())),
                );
                if let Value::Str(s) = &mut v {
                    s.shrink_to_fit();
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), weight(&v)));
                }
                Ok(v)
            }
            Event::Alias(id) => {
                self.last_was_block = false;
                let (v, w) = self
                    .anchors
                    .get(&id)
                    .ok_or_else(|| err_at(&m, "unknown anchor referenced"))?;
                if *w > self.alias_budget {
                    return Err(err_at(
                        &m,
                        format!(
                            "document expands aliases too much (over {ALIAS_BUDGET} bytes of copies)"
                        ),
                    ));
                }
                self.alias_budget -= *w;
                Ok(v.clone())
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, m) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    self.path.push(None);
                    if self.record_empty {
                        self.ipath.push(PathSeg::Index(items.len()));
                    }
                    let item = self.node(ev, m);
                    if self.record_empty {
                        self.ipath.pop();
                    }
                    self.path.pop();
                    items.push(item?);
                }
                items.shrink_to_fit();
                let v = Value::Seq(items);
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), weight(&v)));
                }
                Ok(v)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                // Keys seen, once a map is large enough for scanning it on
                // every key to cost more than hashing (a ConfigMap with
                // thousands of entries would otherwise parse in square time).
                let mut seen: Option<HashSet<CompactString>> = None;
                let mut merges: Vec<Map> = Vec::new();
                loop {
                    let (ev, km) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let is_merge =
                        matches!(&ev, Event::Scalar(s, TScalarStyle::Plain, _, _) if s == "<<");
                    let key = self.node(ev, km)?;
                    let key_str = match &key {
                        Value::Seq(_) | Value::Map(_) => None,
                        other => other.scalar_text(),
                    };
                    let (vev, vm) = self.next()?;
                    let noted = self.record_empty
                        && key_str.is_some()
                        && matches!(&vev, Event::Scalar(t, TScalarStyle::Plain, _, None) if t.is_empty());
                    if self.record_empty {
                        self.ipath
                            .push(PathSeg::Key(key_str.clone().unwrap_or_default()));
                        if noted {
                            self.empty_nulls.push(self.ipath.clone());
                        }
                    }
                    self.path.push(key_str);
                    let val = self.node(vev, vm);
                    self.path.pop();
                    if self.record_empty {
                        self.ipath.pop();
                    }
                    let val = val?;
                    if is_merge {
                        match val {
                            Value::Map(mm) => merges.push(mm),
                            Value::Seq(items) => {
                                for it in items {
                                    match it {
                                        Value::Map(mm) => merges.push(mm),
                                        _ => {
                                            return Err(err_at(
                                                &vm,
                                                "map merge requires map or sequence of maps as the value",
                                            ));
                                        }
                                    }
                                }
                            }
                            _ => {
                                return Err(err_at(
                                    &vm,
                                    "map merge requires map or sequence of maps as the value",
                                ));
                            }
                        }
                        continue;
                    }
                    let key = match key {
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(err_at(
                                &km,
                                "invalid map key: collections are not supported as keys",
                            ));
                        }
                        other => other.scalar_text().unwrap_or_default(),
                    };
                    let repeated = match &seen {
                        Some(keys) => keys.contains(&key),
                        None => map.contains(&key),
                    };
                    if repeated {
                        // kustomize rewrites a resource's annotations before
                        // anything else reads it: a repeated annotation keeps
                        // its last value, a repeated `annotations` field its
                        // first one. Other repeated keys are errors.
                        if self.allow_dup || self.at(&["metadata", "annotations"]) {
                            map.insert(key, val);
                        } else if !(key == "annotations" && self.at(&["metadata"])) {
                            return Err(err_at(
                                &km,
                                format!("mapping key {key:?} already defined"),
                            ));
                        }
                        continue;
                    }
                    match &mut seen {
                        Some(keys) => {
                            keys.insert(key.clone());
                        }
                        None if map.len() >= 32 => {
                            let mut keys: HashSet<CompactString> = map.keys().cloned().collect();
                            keys.insert(key.clone());
                            seen = Some(keys);
                        }
                        None => {}
                    }
                    map.0.push((key, val));
                }
                for mm in merges {
                    for (k, v) in mm.0 {
                        if !map.contains(&k) {
                            map.0.push((k, v));
                        }
                    }
                }
                // Parsed documents live until the output is written: give
                // back the slack `push` left (up to half of each list).
                map.0.shrink_to_fit();
                let v = Value::Map(map);
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), weight(&v)));
                }
                Ok(v)
            }
            other => Err(err_at(&m, format!("unexpected event {other:?}"))),
        }
    }
}

/// About the bytes a copy of `v` takes: a fixed cost per node (the
/// value itself) plus the text of strings and keys.
pub(crate) fn weight(v: &Value) -> usize {
    const NODE: usize = 32;
    match v {
        Value::Str(s) => NODE + s.len(),
        Value::Seq(items) => items.iter().fold(NODE, |a, i| a.saturating_add(weight(i))),
        Value::Map(m) => m.0.iter().fold(NODE, |a, (k, v)| {
            a.saturating_add(NODE + k.len()).saturating_add(weight(v))
        }),
        _ => NODE,
    }
}

fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<(&str, &str)>) -> Value {
    if let Some((handle, suffix)) = tag {
        let full = if handle == "!!" {
            format!("tag:yaml.org,2002:{suffix}")
        } else {
            format!("{handle}{suffix}")
        };
        match full.as_str() {
            "tag:yaml.org,2002:str" => return Value::Str(text.into()),
            "tag:yaml.org,2002:int"
            | "tag:yaml.org,2002:float"
            | "tag:yaml.org,2002:bool"
            | "tag:yaml.org,2002:null" => {
                return resolve_plain_v3(text);
            }
            _ => {}
        }
    }
    if style != TScalarStyle::Plain {
        return Value::Str(text.into());
    }
    resolve_plain_v3(text)
}

/// Resolves a plain scalar with go-yaml v3's rules (YAML 1.2 core schema plus
/// Go's integer syntax).
pub fn resolve_plain_v3(text: impl Into<CompactString>) -> Value {
    let text: CompactString = text.into();
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Value::Str(text),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        let plain: String = text.chars().filter(|c| *c != '_').collect();
        if let Some(i) = go_parse_int(&plain) {
            return Value::Int(i);
        }
        // Out of range (1e400): Go's ParseFloat fails, so it stays a string.
        if is_yaml_style_float(&plain)
            && let Ok(f) = plain.parse::<f64>()
            && f.is_finite()
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

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -mag } else { mag };
    i64::try_from(v).ok()
}

fn is_yaml_style_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
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

// ---------------------------------------------------------------------------
// go-yaml v2 resolution (used to decide quoting on output)
// ---------------------------------------------------------------------------

fn v2_resolves_to_non_string(s: &str) -> bool {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "n" | "N" | "no" | "No" | "NO"
        | "off" | "Off" | "OFF" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "~"
        | "null" | "Null" | "NULL" | "" | ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF"
        | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | "<<" => return true,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        return go_parse_float(s);
    }
    if first.is_ascii_digit() || first == b'-' || first == b'+' {
        if is_timestamp(s) {
            return true;
        }
        let plain: String = s.chars().filter(|c| *c != '_').collect();
        if go_parse_int(&plain).is_some() || go_parse_uint(&plain) {
            return true;
        }
        if is_yaml_style_float(&plain) && plain.parse::<f64>().is_ok_and(f64::is_finite) {
            return true;
        }
        if let Some(rest) = plain
            .strip_prefix("0b")
            .or_else(|| plain.strip_prefix("-0b"))
            && !rest.is_empty()
            && rest.chars().all(|c| c == '0' || c == '1')
        {
            return true;
        }
    }
    false
}

fn go_parse_uint(s: &str) -> bool {
    let body = s;
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    !digits.is_empty()
        && digits.chars().all(|c| c.is_digit(radix))
        && u64::from_str_radix(digits, radix).is_ok()
}

/// Go's `strconv.underscoreOK` for a decimal literal: an underscore only
/// between two digits.
fn go_underscores_ok(s: &str) -> bool {
    let mut saw = '^';
    for c in s.chars() {
        if c.is_ascii_digit() {
            saw = '0';
        } else if c == '_' {
            if saw != '0' {
                return false;
            }
            saw = '_';
        } else {
            if saw == '_' {
                return false;
            }
            saw = '!';
        }
    }
    saw != '_'
}

fn go_parse_float(s: &str) -> bool {
    // Go's ParseFloat on a string starting with '.'.
    if s.contains('_') && !go_underscores_ok(s) {
        return false;
    }
    let b = &s[1..];
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant: String = mant.chars().filter(|c| *c != '_').collect();
    if mant.is_empty() || !mant.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            let e: String = e.chars().filter(|c| *c != '_').collect();
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    }
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let st = i;
        if i < b.len()
            && (b'0'..=b'5').contains(&b[i])
            && i + 1 < b.len()
            && b[i + 1].is_ascii_digit()
        {
            i += 2;
        } else if i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

fn is_timestamp(s: &str) -> bool {
    // go-yaml's parseTimestamp: formats "2006-1-2T15:4:5.999999999Z07:00",
    // "2006-1-2t15:4:5.999999999Z07:00", "2006-1-2 15:4:5.999999999", "2006-1-2".
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && i < 4 && b[i].is_ascii_digit() {
        i += 1;
    }
    if i != 4 || b.len() < 5 || b[4] != b'-' {
        return false;
    }
    let num = |i: &mut usize, max: usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - st < max {
            *i += 1;
        }
        *i - st
    };
    let mut i = 5;
    if num(&mut i, 2) == 0 || i >= b.len() || b[i] != b'-' {
        return false;
    }
    i += 1;
    if num(&mut i, 2) == 0 {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let sep = b[i];
    if sep != b'T' && sep != b't' && sep != b' ' {
        return false;
    }
    i += 1;
    for k in 0..3 {
        if num(&mut i, 2) == 0 {
            return false;
        }
        if k < 2 {
            if i >= b.len() || b[i] != b':' {
                return false;
            }
            i += 1;
        }
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if num(&mut i, 9) == 0 {
            return false;
        }
    }
    if i == b.len() {
        return true;
    }
    if sep == b' ' {
        return false;
    }
    if b[i] == b'Z' && i + 1 == b.len() {
        return true;
    }
    if b[i] == b'+' || b[i] == b'-' {
        i += 1;
        if num(&mut i, 2) != 2 || i >= b.len() || b[i] != b':' {
            return false;
        }
        i += 1;
        return num(&mut i, 2) == 2 && i == b.len();
    }
    false
}

// ---------------------------------------------------------------------------
// Emitting (go-yaml v2 over JSON-roundtripped data: sorted keys)
// ---------------------------------------------------------------------------

/// go-yaml v2's map key order ("natural" order: digit runs compare as
/// numbers, non-letters sort before letters).
pub fn v2_key_less(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Less } else { Greater };
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

const BEST_WIDTH: usize = 80;

struct Emitter {
    out: String,
    column: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            if c == '\n' {
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
        self.out.push_str(s);
    }
    fn pushc(&mut self, c: char) {
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
        self.out.push(c);
    }
    fn newline_indent(&mut self, indent: usize) {
        self.out.push('\n');
        for _ in 0..indent {
            self.out.push(' ');
        }
        self.column = indent;
    }

    /// Emits `v` as a block node whose parent left the cursor right after
    /// `key:` or `- ` (or at the start of a document). `indent` is the
    /// column where a nested block mapping would start.
    fn node(&mut self, v: &Value, indent: usize, after: Ctx) {
        match v {
            Value::Map(m) if !m.is_empty() => {
                let mut keys: Vec<&(CompactString, Value)> = m.0.iter().collect();
                // Go's sort, not sort_by: the key order is not a total order.
                crate::gosort::sort(&mut keys, |a, b| v2_key_less(&a.0, &b.0).is_lt());
                for (n, (k, val)) in keys.into_iter().enumerate() {
                    match (n, after) {
                        (0, Ctx::Doc) => {}
                        (0, Ctx::SeqItem) => {}
                        _ => self.newline_indent(indent),
                    }
                    // go-yaml v2 writes a key that is longer than 128 bytes
                    // or spans lines as an explicit `? key` / `: value` pair;
                    // the value then sits as it would after `- `.
                    if k.len() > 128 || k.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
                        self.push("? ");
                        self.scalar_str(k, indent + 2, false);
                        self.newline_indent(indent);
                        self.push(": ");
                        self.node(val, indent + 2, Ctx::SeqItem);
                        continue;
                    }
                    self.scalar_str(k, indent, true);
                    self.pushc(':');
                    match val {
                        Value::Map(mm) if !mm.is_empty() => {
                            self.node(val, indent + 2, Ctx::MapValue)
                        }
                        Value::Seq(s) if !s.is_empty() => self.node(val, indent, Ctx::MapValue),
                        _ => {
                            self.pushc(' ');
                            self.node(val, indent + 2, Ctx::MapValue);
                        }
                    }
                }
            }
            Value::Seq(s) if !s.is_empty() => {
                for (n, item) in s.iter().enumerate() {
                    match (n, after) {
                        (0, Ctx::Doc) | (0, Ctx::SeqItem) => {}
                        _ => self.newline_indent(indent),
                    }
                    self.push("- ");
                    self.node(item, indent + 2, Ctx::SeqItem);
                }
            }
            Value::Map(_) => self.push("{}"),
            Value::Seq(_) => self.push("[]"),
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let s = i.to_string();
                self.push(&s)
            }
            Value::Float(f) => {
                let s = v2_float(*f);
                self.push(&s)
            }
            Value::Str(s) => self.scalar_str(s, indent, false),
        }
        if after == Ctx::Doc {
            self.pushc('\n');
        }
    }

    fn scalar_str(&mut self, s: &str, indent: usize, simple_key: bool) {
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if !v2_resolves_to_non_string(s) && !is_base60_float(s) {
            Style::Plain
        } else {
            Style::Double
        };
        let a = analyze(s);
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(s, indent, allow_breaks),
            Style::Single => self.write_single(s, indent, allow_breaks),
            Style::Double => self.write_double(s, indent, allow_breaks),
            Style::Literal => self.write_literal(s, indent),
        }
    }

    fn write_plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for i in 0..chars.len() {
            let c = chars[i];
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.newline_indent(indent);
                } else {
                    self.pushc(c);
                }
                spaces = true;
            } else {
                self.pushc(c);
                spaces = false;
            }
        }
    }

    fn write_single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.pushc('\'');
        let mut spaces = false;
        for i in 0..chars.len() {
            let c = chars[i];
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.newline_indent(indent);
                } else {
                    self.pushc(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.pushc('\'');
                }
                self.pushc(c);
                spaces = false;
            }
        }
        self.pushc('\'');
    }

    fn write_double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.pushc('"');
        let mut spaces = false;
        for i in 0..chars.len() {
            let c = chars[i];
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".to_string(),
                    '\u{8}' => "\\b".to_string(),
                    '\t' => "\\t".to_string(),
                    '\n' => "\\n".to_string(),
                    '\u{b}' => "\\v".to_string(),
                    '\u{c}' => "\\f".to_string(),
                    '\r' => "\\r".to_string(),
                    '\u{1b}' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{a0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.push(&esc);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                {
                    self.newline_indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.pushc('\\');
                    }
                } else {
                    self.pushc(c);
                }
                spaces = true;
            } else {
                self.pushc(c);
                spaces = false;
            }
        }
        self.pushc('"');
    }

    fn write_literal(&mut self, s: &str, indent: usize) {
        self.pushc('|');
        let first = s.chars().next();
        if matches!(first, Some(' ') | Some('\n')) {
            self.pushc('2');
        }
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        if n == 0 || chars[n - 1] != '\n' {
            self.pushc('-');
        } else if n == 1 || chars[n - 2] == '\n' {
            self.pushc('+');
        }
        // Content lines, each at `indent`.
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            self.out.push('\n');
            if !line.is_empty() {
                for _ in 0..indent {
                    self.out.push(' ');
                }
                self.out.push_str(line);
            }
        }
        self.column = 1;
        if s.ends_with('\n') && s.len() > 1 && s[..s.len() - 1].ends_with('\n') {
            // keep chomping: trailing empty lines are already emitted above
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Doc,
    MapValue,
    SeqItem,
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0a
        || (0x20..=0x7e).contains(&u)
        || u == 0x85
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
        || (0x10000..=0x10ffff).contains(&u)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
    }
}

struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut block_indicators = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_indicators = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = is_blank_or_end(chars.get(1).copied());
    for i in 0..n {
        let c = chars[i];
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                block_indicators = true;
            }
            if (c == '?' || c == ':') && followed_by_ws {
                block_indicators = true;
            }
            if c == '-' && followed_by_ws {
                block_indicators = true;
            }
        } else {
            if c == ':' && followed_by_ws {
                block_indicators = true;
            }
            if c == '#' && preceded_by_ws {
                block_indicators = true;
            }
        }
        if !is_printable(c) || c == '\u{feff}' {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_blank_or_end(Some(c));
        followed_by_ws = is_blank_or_end(chars.get(i + 2).copied());
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn v2_float(f: f64) -> String {
    // After the JSON round trip an integral float is an integer.
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{}", f as i128);
    }
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+.inf".into()
        } else {
            "-.inf".into()
        };
    }
    let abs = f.abs();
    if !(1e-4..1e21).contains(&abs) {
        // Go's 'g' format with exponent, e.g. 1e-05.
        let s = format!("{f:e}");
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            let digits = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            return format!("{m}e{sign}{digits}");
        }
        return s;
    }
    format!("{f}")
}

/// Renders one document the way kustomize prints a resource.
pub fn to_yaml(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
    };
    e.node(v, 0, Ctx::Doc);
    e.out
}

/// Renders documents separated by `---`.
pub fn to_yaml_docs<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(d));
    }
    out
}

// ---------------------------------------------------------------------------
// JSON (Go encoding/json style, for content hashes)
// ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
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
