//! The events of a YAML stream as libyaml's scanner and parser find them,
//! through `unsafe-libyaml-norway` (libyaml 0.2.5 translated to Rust, the
//! crate `serde_norway` already brings in).
//!
//! go-yaml v2, which Helm reads every YAML with, is a port of libyaml's
//! scanner and parser: reading through the same code gives what Helm
//! accepts and refuses, its problem texts and its marks, where a YAML 1.2
//! parser (yaml-rust2) is stricter in some places (a tab after `:`, the
//! indentation of a quoted scalar's lines) and laxer in others (control
//! characters, an empty key, `{: 1}`). This module is the only `unsafe` of
//! the crate: the parser lives in a box that never moves, reads the text it
//! borrows, and every event it hands out is copied and freed before the
//! next.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use unsafe_libyaml_norway as unsafe_sys;

use super::YamlError;

/// A position, as libyaml counts it: line and column from 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark {
    pub line: usize,
    pub column: usize,
}

/// A node's properties: its anchor and its tag (`None` when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Props {
    pub anchor: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    pub value: String,
    pub props: Props,
    /// Written without quotes or a block indicator.
    pub plain: bool,
    /// libyaml's `plain_implicit`, which go-yaml keeps as the node's
    /// `implicit`: the tag may be resolved from the text.
    pub implicit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    StreamStart,
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias(String),
    Scalar(Scalar),
    SequenceStart(Props),
    SequenceEnd,
    MappingStart(Props),
    MappingEnd,
}

/// The deepest nesting of collections go-yaml's scanner accepts (its
/// `max_flow_level` and `max_indents`); libyaml has no such limit.
const MAX_DEPTH: usize = 10_000;

/// The events of one text.
pub(crate) struct Events<'a> {
    parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
    depth: usize,
    failed: Option<YamlError>,
    _text: PhantomData<&'a [u8]>,
}

impl<'a> Events<'a> {
    pub(crate) fn new(text: &'a str) -> Events<'a> {
        let mut parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>> =
            Box::new(MaybeUninit::zeroed());
        let p = parser.as_mut_ptr();
        // SAFETY: `p` points to a zeroed parser in a box that is never moved
        // out of and outlives every use (it is deleted in `drop`). The text is
        // borrowed for 'a, as long as the parser, which reads it in place.
        // yaml_parser_initialize only fails when it cannot allocate, which in
        // Rust's allocator aborts first.
        unsafe {
            let _ = unsafe_sys::yaml_parser_initialize(p);
            unsafe_sys::yaml_parser_set_encoding(p, unsafe_sys::YAML_UTF8_ENCODING);
            unsafe_sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
        }
        Events {
            parser,
            depth: 0,
            failed: None,
            _text: PhantomData,
        }
    }

    /// The next event; after an error, that error again.
    pub(crate) fn next(&mut self) -> Result<Event, YamlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let p = self.parser.as_mut_ptr();
        let mut raw = MaybeUninit::<unsafe_sys::yaml_event_t>::zeroed();
        // SAFETY: the parser is initialized (`new`); `raw` is a zeroed event
        // that yaml_parser_parse fills on success, which we read by its type
        // and free once, right after copying what it holds.
        let read = unsafe {
            if unsafe_sys::yaml_parser_parse(p, raw.as_mut_ptr()).fail {
                Err(parser_error(&*p))
            } else {
                let ev = raw.as_mut_ptr();
                let out = copy_event(&*ev);
                unsafe_sys::yaml_event_delete(ev);
                Ok(out)
            }
        };
        let read = read.and_then(|(ev, mark)| self.count_depth(&ev, mark).map(|()| ev));
        if let Err(e) = &read {
            self.failed = Some(e.clone());
        }
        read
    }

    fn count_depth(&mut self, ev: &Event, mark: Mark) -> Result<(), YamlError> {
        match ev {
            Event::SequenceStart(_) | Event::MappingStart(_) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    // A scanner error: its line counted from 1, none on the first.
                    return Err(YamlError {
                        line: if mark.line == 0 { 0 } else { mark.line + 1 },
                        column: mark.column + 1,
                        message: format!("exceeded max depth of {MAX_DEPTH}"),
                        prefixed: true,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Ok(())
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`, deleted once here.
        unsafe { unsafe_sys::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// go-yaml's `parser.fail`: the problem's line (counted from 1 for a
/// scanner error, whose mark libyaml has not yet moved past the line, and
/// from 0 for a parser error), else the context's, and none when both are
/// on the first line; the problem without its context.
fn parser_error(p: &unsafe_sys::yaml_parser_t) -> YamlError {
    let (line, column) = if p.problem_mark.line != 0 {
        let mut line = p.problem_mark.line as usize;
        if p.error == unsafe_sys::YAML_SCANNER_ERROR {
            line += 1;
        }
        (line, p.problem_mark.column as usize + 1)
    } else if p.context_mark.line != 0 {
        (
            p.context_mark.line as usize,
            p.context_mark.column as usize + 1,
        )
    } else {
        (0, 0)
    };
    let message = if p.problem.is_null() {
        "unknown problem parsing YAML content".to_string()
    } else {
        // SAFETY: libyaml's problems are static NUL-terminated strings.
        unsafe { std::ffi::CStr::from_ptr(p.problem) }
            .to_string_lossy()
            .into_owned()
    };
    YamlError {
        line,
        column,
        message,
        prefixed: true,
    }
}

/// A NUL-terminated string libyaml allocated, or `None` for a null pointer.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string.
unsafe fn text(s: *const u8) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: by the caller's promise.
    let c = unsafe { std::ffi::CStr::from_ptr(s.cast()) };
    Some(String::from_utf8_lossy(c.to_bytes()).into_owned())
}

/// # Safety
/// `ev` is an event yaml_parser_parse filled.
unsafe fn copy_event(ev: &unsafe_sys::yaml_event_t) -> (Event, Mark) {
    let mark = Mark {
        line: ev.start_mark.line as usize,
        column: ev.start_mark.column as usize,
    };
    // SAFETY: each arm reads the member of the union its type names, whose
    // pointers libyaml set to its own NUL-terminated strings (a scalar's
    // value is `length` bytes, NUL-terminated too, and may hold NULs).
    let event = unsafe {
        match ev.type_ {
            unsafe_sys::YAML_STREAM_START_EVENT => Event::StreamStart,
            unsafe_sys::YAML_STREAM_END_EVENT | unsafe_sys::YAML_NO_EVENT => Event::StreamEnd,
            unsafe_sys::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
            unsafe_sys::YAML_DOCUMENT_END_EVENT => Event::DocumentEnd,
            unsafe_sys::YAML_ALIAS_EVENT => {
                Event::Alias(text(ev.data.alias.anchor).unwrap_or_default())
            }
            unsafe_sys::YAML_SCALAR_EVENT => {
                let s = &ev.data.scalar;
                let bytes = if s.value.is_null() {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(s.value, s.length as usize)
                };
                Event::Scalar(Scalar {
                    // libyaml's reader accepts only valid UTF-8.
                    value: String::from_utf8_lossy(bytes).into_owned(),
                    props: Props {
                        anchor: text(s.anchor),
                        tag: text(s.tag),
                    },
                    plain: s.style == unsafe_sys::YAML_PLAIN_SCALAR_STYLE,
                    implicit: s.plain_implicit,
                })
            }
            unsafe_sys::YAML_SEQUENCE_START_EVENT => Event::SequenceStart(Props {
                anchor: text(ev.data.sequence_start.anchor),
                tag: text(ev.data.sequence_start.tag),
            }),
            unsafe_sys::YAML_SEQUENCE_END_EVENT => Event::SequenceEnd,
            unsafe_sys::YAML_MAPPING_START_EVENT => Event::MappingStart(Props {
                anchor: text(ev.data.mapping_start.anchor),
                tag: text(ev.data.mapping_start.tag),
            }),
            _ => Event::MappingEnd,
        }
    };
    (event, mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<Event>, YamlError> {
        let mut e = Events::new(text);
        let mut out = Vec::new();
        loop {
            let ev = e.next()?;
            let end = ev == Event::StreamEnd;
            out.push(ev);
            if end {
                return Ok(out);
            }
        }
    }

    #[test]
    fn a_tab_may_follow_a_colon() {
        let evs = all("a:\t1\n").unwrap();
        assert!(
            evs.iter()
                .any(|e| matches!(e, Event::Scalar(s) if s.value == "1"))
        );
    }

    #[test]
    fn errors_are_go_yamls() {
        let e = all("a: \"abc\nb: 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "yaml: line 3: found unexpected end of stream"
        );
        let e = all("a: \u{1}b\n").unwrap_err();
        assert_eq!(e.to_string(), "yaml: control characters are not allowed");
        let e = all("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "yaml: line 2: found character that cannot start any token"
        );
        // The error stays.
        let mut ev = Events::new("[1, 2\nb: 3\n");
        let first = loop {
            if let Err(e) = ev.next() {
                break e;
            }
        };
        assert_eq!(
            first.to_string(),
            "yaml: line 1: did not find expected ',' or ']'"
        );
        assert_eq!(ev.next().unwrap_err(), first);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        let e = all(&deep).unwrap_err();
        assert!(e.message.contains("exceeded max depth of 10000"), "{e}");
    }

    #[test]
    fn tags_come_resolved() {
        let evs = all("%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\nb: !!int 2\n").unwrap();
        let tags: Vec<_> = evs
            .iter()
            .filter_map(|e| match e {
                Event::Scalar(s) => s.props.tag.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(tags, ["tag:example.com,2000:x", "tag:yaml.org,2002:int"]);
    }
}
