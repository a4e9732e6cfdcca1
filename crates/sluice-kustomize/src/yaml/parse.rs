//! Reading YAML into [`Value`]s: yaml-rust2's events, with what go-yaml
//! (kustomize's reader) does differently put right, every error with its
//! position.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::resolve::resolve_scalar;
use super::{CompactString, Map, Value};

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
/// makes of it (see [`super::folded`]).
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
    // Lines inside flow collections and quoted scalars at an indentation go-yaml does not
    // check (super::relax).
    super::relax::read_relaxed(
        text,
        |t| parse_docs_once(t, allow_duplicate_keys, folded_roundtrip, record_empty),
        |e: &YamlError| &e.message,
    )
}

fn parse_docs_once(
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
                        super::folded::roundtrip(stripped).into()
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
    /// makes of them (see [`super::folded`]): kustomize does that to
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
                    text = super::folded::roundtrip(&text);
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
