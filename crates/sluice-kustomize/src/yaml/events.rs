//! The events of a YAML stream as libyaml's scanner and parser find them,
//! through `unsafe-libyaml-norway` (libyaml 0.2.5 translated to Rust).
//!
//! go-yaml, which kustomize (v3, through kyaml) and Helm (v2, through
//! `sigs.k8s.io/yaml`) read every YAML with, is a port of libyaml's scanner
//! and parser: reading through the same code gives what they accept and
//! refuse, their problem texts and their marks, where a YAML 1.2 parser
//! (yaml-rust2) is stricter in some places (a tab after `:`, the indentation
//! of a flow collection's or a quoted scalar's lines) and laxer in others
//! (control characters, an empty key, `{: 1}`). go-yaml v3 changed the
//! scanner only to keep comments, which are not read here. The two versions
//! name an error's line differently: [`ParseError::v2_line`] and
//! [`ParseError::v3_line`].
//!
//! This module is the only `unsafe` of the crate: the parser lives in a box
//! that never moves, reads the text it borrows, and every event it hands out
//! is copied and freed before the next.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use compact_str::CompactString;
use unsafe_libyaml_norway as unsafe_sys;

/// A position, as libyaml counts it: line and column from 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// A node's properties: its anchor and its tag (`None` when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    pub anchor: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// Up to 24 bytes held inline: most keys and values take no allocation.
    pub value: CompactString,
    pub props: Props,
    pub style: Style,
    /// libyaml's `plain_implicit`, which go-yaml keeps as the node's
    /// `implicit`: the tag may be resolved from the text.
    pub implicit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
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

/// Why libyaml stopped: its problem, where, and the construct being read
/// (`context_mark`, the start of a flow collection or a quoted scalar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// A scanner's error (as opposed to the parser's), whose mark libyaml
    /// has not moved past the line.
    pub scanner: bool,
    pub problem: String,
    pub problem_mark: Mark,
    pub context_mark: Mark,
}

impl ParseError {
    /// The line go-yaml v2 (`parser.fail`) names, counted from 1, with its
    /// column (0 when it names none): the problem's line (from 1 for a
    /// scanner error, from 0 for a parser's), else the context's, and none
    /// when both are on the first line.
    pub fn v2_line(&self) -> (usize, usize) {
        if self.problem_mark.line != 0 {
            (
                self.problem_mark.line + usize::from(self.scanner),
                self.problem_mark.column + 1,
            )
        } else if self.context_mark.line != 0 {
            (self.context_mark.line, self.context_mark.column + 1)
        } else {
            (0, 0)
        }
    }

    /// The line go-yaml v3 names: as v2, but the context's line first, and
    /// one further for a scanner error either way.
    pub fn v3_line(&self) -> (usize, usize) {
        let bump = usize::from(self.scanner);
        if self.context_mark.line != 0 {
            (self.context_mark.line + bump, self.context_mark.column + 1)
        } else if self.problem_mark.line != 0 {
            (self.problem_mark.line + bump, self.problem_mark.column + 1)
        } else {
            (0, 0)
        }
    }
}

/// The events of one text.
pub struct Events<'a> {
    parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
    /// The collections open around the next event, each with whether it is
    /// written in flow style (`[...]`, `{...}`).
    open: Vec<bool>,
    failed: Option<ParseError>,
    _text: PhantomData<&'a [u8]>,
}

impl<'a> Events<'a> {
    pub fn new(text: &'a str) -> Events<'a> {
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
            open: Vec::new(),
            failed: None,
            _text: PhantomData,
        }
    }

    /// The next event and where it starts; after an error, that error again.
    pub fn pull(&mut self) -> Result<(Event, Mark), ParseError> {
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
                let flow = match (*ev).type_ {
                    unsafe_sys::YAML_SEQUENCE_START_EVENT => {
                        (*ev).data.sequence_start.style == unsafe_sys::YAML_FLOW_SEQUENCE_STYLE
                    }
                    unsafe_sys::YAML_MAPPING_START_EVENT => {
                        (*ev).data.mapping_start.style == unsafe_sys::YAML_FLOW_MAPPING_STYLE
                    }
                    _ => false,
                };
                unsafe_sys::yaml_event_delete(ev);
                Ok((out, flow))
            }
        };
        let read = read
            .and_then(|((ev, mark), flow)| self.count_depth(&ev, mark, flow).map(|()| (ev, mark)));
        if let Err(e) = &read {
            self.failed = Some(e.clone());
        }
        read
    }

    /// Whether the last event, a scalar or an alias, is inside a
    /// collection written in flow style (`[...]`, `{...}`).
    pub fn in_flow(&self) -> bool {
        self.open.last() == Some(&true)
    }

    fn count_depth(&mut self, ev: &Event, mark: Mark, flow: bool) -> Result<(), ParseError> {
        match ev {
            Event::SequenceStart(_) | Event::MappingStart(_) => {
                self.open.push(flow);
                if self.open.len() > MAX_DEPTH {
                    // go-yaml's scanner refuses it.
                    return Err(ParseError {
                        scanner: true,
                        problem: format!("exceeded max depth of {MAX_DEPTH}"),
                        problem_mark: mark,
                        context_mark: Mark::default(),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.open.pop();
            }
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

/// What libyaml says of the error it stopped at.
fn parser_error(p: &unsafe_sys::yaml_parser_t) -> ParseError {
    let mark = |m: &unsafe_sys::yaml_mark_t| Mark {
        line: m.line as usize,
        column: m.column as usize,
    };
    let problem = if p.problem.is_null() {
        "unknown problem parsing YAML content".to_string()
    } else {
        // SAFETY: libyaml's problems are static NUL-terminated strings.
        unsafe { std::ffi::CStr::from_ptr(p.problem) }
            .to_string_lossy()
            .into_owned()
    };
    ParseError {
        scanner: p.error == unsafe_sys::YAML_SCANNER_ERROR,
        problem,
        problem_mark: mark(&p.problem_mark),
        context_mark: mark(&p.context_mark),
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
                    value: CompactString::from_utf8_lossy(bytes),
                    props: Props {
                        anchor: text(s.anchor),
                        tag: text(s.tag),
                    },
                    style: match s.style {
                        unsafe_sys::YAML_SINGLE_QUOTED_SCALAR_STYLE => Style::SingleQuoted,
                        unsafe_sys::YAML_DOUBLE_QUOTED_SCALAR_STYLE => Style::DoubleQuoted,
                        unsafe_sys::YAML_LITERAL_SCALAR_STYLE => Style::Literal,
                        unsafe_sys::YAML_FOLDED_SCALAR_STYLE => Style::Folded,
                        _ => Style::Plain,
                    },
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

    /// Every event of `text` with where it starts, the stream's end last.
    fn all_marked(text: &str) -> Result<Vec<(Event, Mark)>, ParseError> {
        let mut e = Events::new(text);
        let mut out = Vec::new();
        loop {
            let (ev, mark) = e.pull()?;
            let end = ev == Event::StreamEnd;
            out.push((ev, mark));
            if end {
                return Ok(out);
            }
        }
    }

    fn all(text: &str) -> Result<Vec<Event>, ParseError> {
        Ok(all_marked(text)?.into_iter().map(|(ev, _)| ev).collect())
    }

    /// The scalars of `text` with where each starts, and where the stream
    /// ends.
    fn scalars_marked(text: &str) -> (Vec<(String, Mark)>, Mark) {
        let events = all_marked(text).unwrap();
        let end = events.last().map(|(_, m)| *m).unwrap_or_default();
        let scalars = events
            .into_iter()
            .filter_map(|(ev, m)| match ev {
                Event::Scalar(s) => Some((s.value.to_string(), m)),
                _ => None,
            })
            .collect();
        (scalars, end)
    }

    /// As go-yaml v2 prints it.
    fn v2(e: &ParseError) -> String {
        match e.v2_line() {
            (0, _) => format!("yaml: {}", e.problem),
            (line, _) => format!("yaml: line {line}: {}", e.problem),
        }
    }

    #[test]
    fn a_tab_may_follow_a_colon() {
        let evs = all("a:\t1\n").unwrap();
        assert!(
            evs.iter().any(
                |e| matches!(e, Event::Scalar(s) if s.value == "1" && s.style == Style::Plain)
            )
        );
    }

    #[test]
    fn errors_name_go_yamls_lines() {
        let e = all("a: \"abc\nb: 1\n").unwrap_err();
        assert_eq!(v2(&e), "yaml: line 3: found unexpected end of stream");
        let e = all("a: \u{1}b\n").unwrap_err();
        assert_eq!(v2(&e), "yaml: control characters are not allowed");
        let e = all("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(
            v2(&e),
            "yaml: line 2: found character that cannot start any token"
        );
        // The error stays.
        let mut ev = Events::new("[1, 2\nb: 3\n");
        let first = loop {
            if let Err(e) = ev.pull() {
                break e;
            }
        };
        assert_eq!(v2(&first), "yaml: line 1: did not find expected ',' or ']'");
        assert_eq!(ev.pull().unwrap_err(), first);
        // v3 names the construct's line first: the flow sequence's, where v2
        // names the problem's.
        let e = all("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!((e.v2_line().0, e.v3_line().0), (2, 1));
    }

    /// libyaml's reader (patched, vendor/README.md) copies runs of ASCII
    /// whole and decodes the rest a character at a time; the text arrives
    /// in chunks of 16 KiB, so characters of every width land on every
    /// alignment against a chunk's end over a long text.
    #[test]
    fn the_reader_reads_every_character_across_its_chunks() {
        let wide = ["é", "€", "😀", "\u{a0}", "\u{fffd}", "\u{10ffff}"];
        let mut text = String::new();
        let mut values = Vec::new();
        for i in 0..6_000 {
            let v = format!("{}x{}{}", "y".repeat(i % 7), wide[i % wide.len()], i);
            text.push_str(&format!("k{i}:\t'{v}'\r\n"));
            values.push(v);
        }
        assert!(text.len() > 6 * 16 * 1024);
        let (scalars, last) = scalars_marked(&text);
        let read: Vec<String> = scalars
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| !v.starts_with('k'))
            .collect();
        assert_eq!(read, values);
        assert_eq!(last.line, 6_000);
        // What the check refuses is found past any number of chunks, in
        // either path: DEL is ASCII, U+0080 two octets, U+FFFE three.
        for bad in ["\u{7f}", "\u{80}", "\u{fffe}"] {
            let long = format!("{}z: a{bad}b\n", "a: b\n".repeat(20_000));
            let e = all(&long).unwrap_err();
            assert_eq!(
                v2(&e),
                "yaml: control characters are not allowed",
                "{bad:?}"
            );
        }
    }

    /// The scanner copies a run of ASCII at once inside plain, quoted and
    /// block scalars (vendor/README.md): every printable character, in every
    /// style, in runs of every length up to 40 across the reader's chunks,
    /// comes back as written, and the scalar after each starts at the column
    /// the characters before it put it.
    #[test]
    fn scalars_read_in_runs_keep_their_values_and_marks() {
        let ascii: Vec<char> = (0x21_u8..0x7f).map(char::from).collect();
        let window = |i: usize, keep: &dyn Fn(char) -> bool| -> String {
            ascii
                .iter()
                .cycle()
                .skip(i % ascii.len())
                .copied()
                .filter(|&c| keep(c))
                .take(i % 41)
                .collect()
        };
        let mut text = String::new();
        // (value, where the marker scalar after it starts, if on its line)
        let mut want: Vec<(String, Option<Mark>)> = Vec::new();
        let mut line = 0;
        for i in 0..3_000 {
            let (entry, value) = match i % 5 {
                0 => {
                    let v = format!("a{}", window(i, &|c| !":,[]{}".contains(c)));
                    (format!("k{i}: [{v}, z{i}]"), v)
                }
                1 => {
                    let v = window(i, &|_| true);
                    (format!("k{i}: ['{}', z{i}]", v.replace('\'', "''")), v)
                }
                2 => {
                    let v = window(i, &|_| true);
                    let quoted = v.replace('\\', "\\\\").replace('"', "\\\"");
                    (format!("k{i}: [\"{quoted}\", z{i}]"), v)
                }
                3 => {
                    // In block context `,[]{}` stay in the scalar (read one
                    // at a time), and so does a `:` not before a blank.
                    let w = window(i, &|c| c != '#');
                    let w = w.trim_end_matches(':');
                    let v = format!("a{w} b{w}");
                    (format!("k{i}: {v}"), v)
                }
                _ => {
                    let v = format!("a{}\t{}", window(i, &|_| true), window(i + 7, &|_| true));
                    (format!("k{i}: |\n  {v}"), format!("{v}\n"))
                }
            };
            let marker = entry.find(", z").map(|c| Mark {
                line,
                column: c + 2,
            });
            want.push((value, marker));
            line += entry.matches('\n').count() + 1;
            text.push_str(&entry);
            text.push('\n');
        }
        assert!(text.len() > 4 * 16 * 1024);
        let (scalars, last) = scalars_marked(&text);
        let mut scalars = scalars.into_iter();
        for (i, (value, marker)) in want.iter().enumerate() {
            assert_eq!(scalars.next().map(|s| s.0), Some(format!("k{i}")));
            assert_eq!(
                scalars.next().map(|s| s.0).as_ref(),
                Some(value),
                "entry {i}"
            );
            if let Some(m) = marker {
                assert_eq!(scalars.next(), Some((format!("z{i}"), *m)), "entry {i}");
            }
        }
        assert_eq!(scalars.next(), None);
        assert_eq!(last.line, line);
        // A problem after a long run is found where it is.
        let long = format!("a: [{}:,]\n", "b".repeat(70_000));
        let err = all(&long).unwrap_err();
        assert_eq!(err.problem, "found unexpected ':'");
        assert_eq!(err.problem_mark.column, 70_004, "{err:?}");
    }

    /// The scanner skips indentation and comments in runs too
    /// (vendor/README.md): keys nested nine deep with indentation steps of
    /// one to five spaces, comments after values and on lines of their own,
    /// across the reader's chunks, start where they were written.
    #[test]
    fn indentation_and_comments_skipped_in_runs_keep_marks() {
        let mut text = String::new();
        let mut want = Vec::new();
        let mut line = 0;
        for i in 0..4_000 {
            let depth = i % 9;
            let step = 1 + (i / 9) % 5;
            let column = depth * step;
            let pad = " ".repeat(column);
            if i % 7 == 3 {
                text.push_str(&format!(
                    "{}# note {i}: {}\n",
                    " ".repeat(i % 13),
                    "x".repeat(i % 50)
                ));
                line += 1;
            }
            if depth == 8 {
                text.push_str(&format!("{pad}k{i}: v{i}   # {}\n", "c".repeat(i % 30)));
            } else {
                text.push_str(&format!("{pad}k{i}:\n"));
            }
            want.push((format!("k{i}"), Mark { line, column }));
            line += 1;
        }
        assert!(text.len() > 4 * 16 * 1024);
        let (mut got, _) = scalars_marked(&text);
        got.retain(|(v, _)| v.starts_with('k'));
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w);
        }
    }

    /// A block scalar's indentation is skipped in runs only up to its
    /// indentation: what is indented further is content.
    #[test]
    fn block_scalars_keep_what_is_indented_past_them() {
        let cases = [
            ("a: |\n    x\n      y\n    z\n", "x\n  y\nz\n"),
            ("a: |2\n     x\n   y\n", "   x\n y\n"),
            ("a: |\n\n   \n    x\n", "\n\nx\n"),
            (
                "a:\n  b: >\n        p\n          q\n        r\n",
                "p\n  q\nr\n",
            ),
            ("- |1\n    x\n   y\n", "   x\n  y\n"),
        ];
        for (text, want) in cases {
            let values: Vec<String> = all(text)
                .unwrap()
                .into_iter()
                .filter_map(|ev| match ev {
                    Event::Scalar(s) if s.style != Style::Plain => Some(s.value.to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!(values, [want], "{text:?}");
        }
        // Spaces where the indentation is only partly there: an error as
        // before, at the same place.
        let err = all("a: |\n    x\n  \ty\n").unwrap_err();
        assert_eq!(err.problem_mark, Mark { line: 2, column: 2 }, "{err:?}");
    }

    #[test]
    fn scalars_know_whether_they_are_in_flow_style() {
        let mut e = Events::new("a: {x: , y: [1]}\nb:\n  c: 2\n");
        let mut seen: Vec<(String, bool)> = Vec::new();
        loop {
            let (ev, _) = e.pull().unwrap();
            match ev {
                Event::Scalar(s) => seen.push((s.value.to_string(), e.in_flow())),
                Event::StreamEnd => break,
                _ => {}
            }
        }
        let want = [
            ("a", false),
            ("x", true),
            ("", true),
            ("y", true),
            ("1", true),
            ("b", false),
            ("c", false),
            ("2", false),
        ];
        assert_eq!(seen, want.map(|(v, f)| (v.to_string(), f)).to_vec());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        let e = all(&deep).unwrap_err();
        assert!(e.problem.contains("exceeded max depth of 10000"), "{e:?}");
    }

    #[test]
    fn styles_and_tags_come_resolved() {
        let evs =
            all("%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\nb: !!int 2\nc: 'q'\nd: |\n  x\n")
                .unwrap();
        let scalars: Vec<_> = evs
            .iter()
            .filter_map(|e| match e {
                Event::Scalar(s) => Some((s.props.tag.clone(), s.style)),
                _ => None,
            })
            .collect();
        assert_eq!(
            scalars[1..],
            [
                (Some("tag:example.com,2000:x".to_string()), Style::Plain),
                (None, Style::Plain),
                (Some("tag:yaml.org,2002:int".to_string()), Style::Plain),
                (None, Style::Plain),
                (None, Style::SingleQuoted),
                (None, Style::Plain),
                (None, Style::Literal),
            ]
        );
    }
}
