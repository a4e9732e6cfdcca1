//! Reading YAML into [`Value`]s: libyaml's events ([`super::events`], the
//! scanner and parser go-yaml v3 ports), built as kyaml builds them, every
//! error with go-yaml's problem and line.

use std::borrow::Cow;
use std::collections::HashMap;

use super::events::{Event, Events, Mark, ParseError, Style};
use super::resolve::{Decode, non_string_key, resolve_scalar};
use super::{CompactString, Map, Value};

/// A YAML syntax or structure error, as go-yaml v3 words it: its problem and
/// the line it names (from 1; 0 where it names none).
#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    /// `line N: ` where a line is named.
    pub fn where_(&self) -> String {
        if self.line == 0 {
            String::new()
        } else {
            format!("line {}: ", self.line)
        }
    }
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "yaml: {}{}", self.where_(), self.message)
    }
}

fn err_at(m: &Mark, msg: impl Into<String>) -> YamlError {
    YamlError {
        line: m.line + 1,
        column: m.column + 1,
        message: msg.into(),
    }
}

/// A failure of go-yaml's decoder (`failf`), which names no line.
fn no_line(msg: impl Into<String>) -> YamlError {
    YamlError {
        line: 0,
        column: 0,
        message: msg.into(),
    }
}

impl From<ParseError> for YamlError {
    fn from(e: ParseError) -> YamlError {
        let (line, column) = e.v3_line();
        YamlError {
            line,
            column,
            message: e.problem,
        }
    }
}

/// Parses every document in `text`. Empty documents are returned as `Null`.
pub fn parse_all(text: &str) -> Result<Vec<Value>, YamlError> {
    parse_all_opts(text, false)
}

/// Like [`parse_all`]; with `allow_duplicate_keys` a repeated key replaces
/// the earlier one (what kustomize's kustomization-file reader does).
pub fn parse_all_opts(text: &str, allow_duplicate_keys: bool) -> Result<Vec<Value>, YamlError> {
    let mut p = DocParser::new(text, allow_duplicate_keys, false, false, false);
    let mut docs = Vec::new();
    while let Some((doc, _)) = p.document()? {
        docs.push(doc);
    }
    Ok(docs)
}

/// Parses every document of a rendered Helm manifest, as Helm's kube client
/// reads it (`sigs.k8s.io/yaml` over go-yaml v2): the whole stream, keys
/// made strings, timestamps and tags kept as written; folded scalars as in
/// [`parse_resources`]. Empty documents give no value.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut p = DocParser::new(text, false, true, false, false);
    let mut docs = Vec::new();
    while let Some((doc, _)) = p.document()? {
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Parses resources or patches as kustomize's reader (kyaml's `ByteReader`)
/// does: the text is cut at each line that starts with `---` (anything but a
/// comment after it is refused), and the first document of each part is
/// read; what follows it in that part (after a `...`) is not. Every folded
/// scalar becomes what kustomize's write-and-read-again of each resource
/// makes of it (see [`super::folded`]). Empty parts give no value.
pub fn parse_resources(text: &str) -> Result<Vec<Value>, YamlError> {
    Ok(read_resources(text, false, true)?
        .into_iter()
        .map(|(d, _)| d)
        .collect())
}

/// Parses a stream as kyaml's `kio.ParseAll` reads it into nodes, which
/// Helm v4 does before its post-renderers and writes back with go-yaml v3:
/// cut and read as [`parse_resources`], with folded scalars and empty flow
/// values as the writing makes them, but no decoding (timestamps keep their
/// text, tags and keys are not checked).
pub fn parse_kio(text: &str) -> Result<Vec<Value>, YamlError> {
    Ok(read_resources(text, false, false)?
        .into_iter()
        .map(|(d, _)| d)
        .collect())
}

/// [`parse_resources`], with the paths of each document's fields that have
/// no value at all (`key:`).
pub(crate) fn parse_resources_noting_empty(
    text: &str,
) -> Result<Vec<(Value, EmptyNulls)>, YamlError> {
    read_resources(text, true, true)
}

fn read_resources(
    text: &str,
    record_empty: bool,
    decode: bool,
) -> Result<Vec<(Value, EmptyNulls)>, YamlError> {
    let text: Cow<'_, str> = if text.contains("\r\n") {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    };
    let mut docs = Vec::new();
    // One budget for the whole text, however many parts it is cut into.
    let mut alias_budget = ALIAS_BUDGET;
    for part in split_documents(&text)? {
        let mut p = DocParser::new(part, false, true, decode, record_empty);
        p.alias_budget = alias_budget;
        if let Some(doc) = p.document()? {
            docs.push(doc);
        }
        alias_budget = p.alias_budget;
    }
    Ok(docs)
}

/// kyaml's `splitDocuments`: the parts of `text` between lines that start
/// with `---` after a line break (the first line is not one), each but the
/// last given back the line break the cut took.
fn split_documents(text: &str) -> Result<Vec<&str>, YamlError> {
    let mut parts = Vec::new();
    let mut prev = 0;
    let mut from = 0;
    while let Some(i) = text[from..].find("\n---").map(|i| from + i) {
        let line_start = i + 1;
        let Some(nl) = text[line_start..].find('\n').map(|n| line_start + n) else {
            break;
        };
        let after = text[line_start + 3..nl].trim();
        if !after.is_empty() && !after.starts_with('#') {
            return Err(YamlError {
                line: 0,
                column: 0,
                message: format!(
                    "invalid document separator: {}",
                    text[line_start..nl].trim()
                ),
            });
        }
        // The part and the line break before the separator.
        parts.push(&text[prev..=i]);
        prev = nl + 1;
        from = nl + 1;
    }
    parts.push(&text[prev..]);
    Ok(parts)
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
    events: Events<'a>,
    /// Anchored nodes and their [`weight`].
    anchors: HashMap<String, (Value, usize)>,
    allow_dup: bool,
    /// Keys from the document root to the mapping being read (`None` for a
    /// sequence item), for kustomize's tolerance of repeated annotations.
    path: Vec<Option<CompactString>>,
    depth: usize,
    /// Bytes alias expansion may still copy (guards against exponential
    /// alias bombs and large anchors aliased many times).
    alias_budget: usize,
    /// Folded scalars take what go-yaml v3 writing and reading them back
    /// makes of them (see [`super::folded`]): kustomize does that to
    /// every resource and patch it reads.
    folded_roundtrip: bool,
    /// Whether to note the fields with no value (`key:`) in
    /// `empty_nulls`, with the path to the node being read in `ipath`.
    record_empty: bool,
    ipath: Vec<PathSeg>,
    empty_nulls: EmptyNulls,
    /// Whether scalars and keys are decoded as go-yaml v3 decodes them into
    /// an `interface{}` (see [`Decode`]): what kustomize does to resources.
    decode: bool,
    /// Whether the scalar being read is a mapping's key.
    reading_key: bool,
    /// Whether libyaml stopped at a syntax error.
    syntax_failed: bool,
    ended: bool,
}

impl<'a> DocParser<'a> {
    fn new(
        text: &'a str,
        allow_dup: bool,
        folded_roundtrip: bool,
        decode: bool,
        record_empty: bool,
    ) -> DocParser<'a> {
        DocParser {
            events: Events::new(text),
            anchors: HashMap::new(),
            allow_dup,
            path: Vec::new(),
            depth: 0,
            alias_budget: ALIAS_BUDGET,
            folded_roundtrip,
            record_empty,
            ipath: Vec::new(),
            empty_nulls: Vec::new(),
            decode,
            reading_key: false,
            syntax_failed: false,
            ended: false,
        }
    }

    fn next(&mut self) -> Result<(Event, Mark), YamlError> {
        self.events.pull().map_err(|e| {
            self.syntax_failed = true;
            e.into()
        })
    }

    /// The next document (`Null` when it is empty) and its fields with no
    /// value, or `None` at the end of the stream. Nothing past the
    /// document's end is read.
    fn document(&mut self) -> Result<Option<(Value, EmptyNulls)>, YamlError> {
        while !self.ended {
            let (ev, m) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => self.ended = true,
                Event::DocumentStart => {
                    let (ev, m) = self.next()?;
                    let v = match self.node(ev, m) {
                        Ok(v) => v,
                        Err(e) => return Err(self.syntax_error_first(e)),
                    };
                    // The document's end, which libyaml finds without
                    // reading further.
                    let (end, m) = self.next()?;
                    if end != Event::DocumentEnd {
                        return Err(err_at(&m, format!("unexpected event {end:?}")));
                    }
                    return Ok(Some((v, std::mem::take(&mut self.empty_nulls))));
                }
                other => return Err(err_at(&m, format!("unexpected event {other:?}"))),
            }
        }
        Ok(None)
    }

    /// go-yaml parses a whole document before it decodes it: a problem
    /// found while building (a repeated key, a bad tag) gives way to a
    /// syntax error later in the same document.
    fn syntax_error_first(&mut self, e: YamlError) -> YamlError {
        if self.syntax_failed {
            return e;
        }
        loop {
            match self.next() {
                Err(syntax) => return syntax,
                Ok((Event::DocumentEnd | Event::StreamEnd, _)) => return e,
                Ok(_) => {}
            }
        }
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

    /// Keeps an anchored node for its aliases (a later anchor of the same
    /// name replaces it).
    fn remember(&mut self, anchor: Option<String>, v: &Value) {
        if let Some(a) = anchor {
            self.anchors.insert(a, (v.clone(), weight(v)));
        }
    }

    fn node(&mut self, ev: Event, m: Mark) -> Result<Value, YamlError> {
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

    fn node_inner(&mut self, ev: Event, m: Mark) -> Result<Value, YamlError> {
        match ev {
            Event::Scalar(sc) => {
                let mut text = sc.value;
                if sc.style == Style::Folded && self.folded_roundtrip {
                    text = super::folded::roundtrip(&text).into();
                }
                // go-yaml v3 writes an empty plain value inside a flow
                // collection (`{x, y}`, `{x: }`) as `''`, so kustomize's
                // write-and-read-again makes it an empty string.
                let empty_in_flow = self.folded_roundtrip
                    && !self.reading_key
                    && sc.style == Style::Plain
                    && sc.props.tag.is_none()
                    && text.is_empty()
                    && self.events.in_flow();
                let mut v = if empty_in_flow {
                    Value::Str(CompactString::default())
                } else {
                    resolve_scalar(
                        text,
                        sc.style,
                        sc.props.tag.as_deref(),
                        match (self.decode, self.reading_key) {
                            (false, _) => Decode::No,
                            (true, false) => Decode::Value,
                            (true, true) => Decode::Key,
                        },
                    )
                    .map_err(no_line)?
                };
                if let Value::Str(s) = &mut v {
                    s.shrink_to_fit();
                }
                self.remember(sc.props.anchor, &v);
                Ok(v)
            }
            Event::Alias(name) => {
                let (v, w) = self
                    .anchors
                    .get(&name)
                    .ok_or_else(|| no_line(format!("unknown anchor '{name}' referenced")))?;
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
            Event::SequenceStart(props) => {
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
                self.remember(props.anchor, &v);
                Ok(v)
            }
            Event::MappingStart(props) => {
                let mut map = Map::new();
                // Keys seen, once a map is large enough for scanning it on
                // every key to cost more than hashing (a ConfigMap with
                // thousands of entries would otherwise parse in square time).
                let mut seen: Option<HashMap<CompactString, usize>> = None;
                // The line of each key in `map`, for a repeated key's error.
                let mut key_lines: Vec<usize> = Vec::new();
                let mut merges: Vec<Map> = Vec::new();
                loop {
                    let (ev, km) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let is_merge = matches!(&ev, Event::Scalar(s) if s.style == Style::Plain && s.value == "<<");
                    // go-yaml v3 decodes a mapping with a key that is not a
                    // string into a map Go's JSON encoder refuses, and so
                    // does kustomize with every resource.
                    if self.decode
                        && let Event::Scalar(s) = &ev
                        && let Some(tag) = non_string_key(s)
                    {
                        return Err(err_at(
                            &km,
                            format!(
                                "mapping key {:?} is not a string but a {tag}, which kustomize refuses (json: unsupported type: map[interface {{}}]interface {{}}); quote it",
                                s.value
                            ),
                        ));
                    }
                    self.reading_key = true;
                    let key = self.node(ev, km);
                    self.reading_key = false;
                    let key = key?;
                    let key_str = match &key {
                        Value::Seq(_) | Value::Map(_) => None,
                        other => other.scalar_text(),
                    };
                    let (vev, vm) = self.next()?;
                    let noted = self.record_empty
                        && key_str.is_some()
                        && matches!(&vev, Event::Scalar(t) if t.style == Style::Plain && t.props.tag.is_none() && t.value.is_empty())
                        // In flow style it is read again as `''` (see `node_inner`).
                        && !self.events.in_flow();
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
                        let merge_err =
                            || no_line("map merge requires map or sequence of maps as the value");
                        match val {
                            Value::Map(mm) => merges.push(mm),
                            Value::Seq(items) => {
                                for it in items {
                                    match it {
                                        Value::Map(mm) => merges.push(mm),
                                        _ => return Err(merge_err()),
                                    }
                                }
                            }
                            _ => return Err(merge_err()),
                        }
                        continue;
                    }
                    let key = match key {
                        // go-yaml v3 decoding a key into a string.
                        Value::Seq(_) => {
                            return Err(err_at(&km, "cannot unmarshal !!seq into string"));
                        }
                        Value::Map(_) => {
                            return Err(err_at(&km, "cannot unmarshal !!map into string"));
                        }
                        other => other.scalar_text().unwrap_or_default(),
                    };
                    let repeated = match &seen {
                        Some(keys) => keys.get(&key).copied(),
                        None => map.0.iter().position(|(k, _)| *k == key),
                    };
                    if let Some(first) = repeated {
                        // kustomize rewrites a resource's annotations before
                        // anything else reads it: a repeated annotation keeps
                        // its last value, a repeated `annotations` field its
                        // first one. Other repeated keys are errors.
                        if self.allow_dup || self.at(&["metadata", "annotations"]) {
                            map.insert(key, val);
                        } else if !(key == "annotations" && self.at(&["metadata"])) {
                            let at = key_lines.get(first).copied().unwrap_or_default();
                            return Err(err_at(
                                &km,
                                format!("mapping key {key:?} already defined at line {at}"),
                            ));
                        }
                        continue;
                    }
                    match &mut seen {
                        Some(keys) => {
                            keys.insert(key.clone(), map.len());
                        }
                        None if map.len() >= 32 => {
                            let mut keys: HashMap<CompactString, usize> = map
                                .keys()
                                .cloned()
                                .enumerate()
                                .map(|(i, k)| (k, i))
                                .collect();
                            keys.insert(key.clone(), map.len());
                            seen = Some(keys);
                        }
                        None => {}
                    }
                    key_lines.push(km.line + 1);
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
                self.remember(props.anchor, &v);
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
