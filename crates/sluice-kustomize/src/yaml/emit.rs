//! Printing: go-yaml v2 over JSON-roundtripped data (sorted keys, its
//! quoting, literal blocks, folding at 80 columns), as kustomize prints.

use std::borrow::Cow;

use super::Value;
use super::resolve::{is_base60_float, v2_resolves_to_non_string};

/// go-yaml v2's map key order ("natural" order: digit runs compare as
/// numbers, non-letters sort before letters).
pub fn v2_key_less(a: &str, b: &str) -> std::cmp::Ordering {
    // ASCII keys (nearly all) compare as bytes, which order and classify as
    // their characters do; others as characters.
    if a.is_ascii() && b.is_ascii() {
        return natural_cmp(a.as_bytes(), b.as_bytes(), |c| {
            (
                c.is_ascii_alphabetic(),
                c.is_ascii_digit().then(|| c - b'0'),
            )
        });
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    natural_cmp(&ar, &br, |c| {
        let digit = c.is_ascii_digit().then(|| c as u8 - b'0');
        (c.is_alphabetic(), digit)
    })
}

/// go-yaml v2's `keyList.Less` over units that `class` tells apart:
/// (is a letter, its value if an ASCII digit).
fn natural_cmp<T: Copy + Ord>(
    ar: &[T],
    br: &[T],
    class: impl Fn(T) -> (bool, Option<u8>),
) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let digit = |c: T| class(c).1;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = class(ar[i]).0;
        let bl = class(br[i]).0;
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Less } else { Greater };
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if digit(ar[i]) == Some(0) || digit(br[i]) == Some(0) {
            let mut j = i;
            while j > 0 {
                j -= 1;
                match digit(ar[j]) {
                    None => break,
                    Some(0) => {}
                    Some(_) => {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
        }
        let mut ai = i;
        while let Some(d) = ar.get(ai).and_then(|c| digit(*c)) {
            an = an.wrapping_mul(10).wrapping_add(i64::from(d));
            ai += 1;
        }
        let mut bi = i;
        while let Some(d) = br.get(bi).and_then(|c| digit(*c)) {
            bn = bn.wrapping_mul(10).wrapping_add(i64::from(d));
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
    /// Whether long scalars are folded at [`BEST_WIDTH`] (go-yaml v2 folds;
    /// kyaml's go-yaml v3 encoder does not).
    fold: bool,
    /// The last block scalar ended with its own line break, so the cursor
    /// is at the start of a line: go-yaml's `write_indent` then writes no
    /// further break before what follows, only the indentation.
    at_line_start: bool,
    /// Whether the value is printed as Go prints it by way of JSON
    /// (`sigs.k8s.io/yaml`), which folds a NEL (`json_nel`).
    json: bool,
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
        match s.rfind('\n') {
            Some(at) => self.column = s[at + 1..].chars().count(),
            None => self.column += s.chars().count(),
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
        if !std::mem::take(&mut self.at_line_start) {
            self.out.push('\n');
        }
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
                // Keys are strings of the JSON round trip too (see `json_nel`).
                let mut keys: Vec<(Cow<str>, &Value)> =
                    m.0.iter()
                        .map(|(k, v)| match self.json {
                            true => (json_nel(k), v),
                            false => (Cow::Borrowed(k.as_str()), v),
                        })
                        .collect();
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
                    if k.len() > 128 || k.contains(is_break) {
                        self.push("? ");
                        self.scalar_str(&k, indent + 2, false);
                        self.newline_indent(indent);
                        self.push(": ");
                        self.node(val, indent + 2, Ctx::SeqItem);
                        continue;
                    }
                    self.scalar_str(&k, indent, true);
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
                use std::fmt::Write as _;
                let start = self.out.len();
                let _ = write!(self.out, "{i}");
                self.column += self.out.len() - start;
            }
            Value::Float(f) => {
                let s = v2_float(*f);
                self.push(&s)
            }
            // A document that is one scalar: go-yaml indents its block content and
            // folded lines by two (libyaml's root indent for a scalar); kustomize never
            // writes one, Helm's `toYaml` of a string does.
            Value::Str(s) if after == Ctx::Doc => self.scalar_str(s, indent + 2, false),
            Value::Str(s) => self.scalar_str(s, indent, false),
        }
        if after == Ctx::Doc && !std::mem::take(&mut self.at_line_start) {
            self.pushc('\n');
        }
    }

    fn scalar_str(&mut self, s: &str, indent: usize, simple_key: bool) {
        let a = analyze(s);
        if a.nel && self.json {
            return self.scalar_str(&json_nel(s), indent, simple_key);
        }
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if !v2_resolves_to_non_string(s) && !is_base60_float(s) {
            Style::Plain
        } else {
            Style::Double
        };
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key && self.fold;
        match style {
            Style::Plain => self.write_plain(s, indent, allow_breaks),
            Style::Single => self.write_single(s, indent, allow_breaks),
            Style::Double => self.write_double(s, indent, allow_breaks),
            Style::Literal => self.write_literal(s, indent, a.separators),
        }
    }

    fn write_plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        // A plain scalar has no line break; without a space to fold at, it
        // is written as it is.
        if !allow_breaks || !s.contains(' ') {
            self.push(s);
            return;
        }
        let mut chars = s.chars().peekable();
        let mut spaces = false;
        while let Some(c) = chars.next() {
            if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && chars.peek() != Some(&' ')
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
        self.pushc('\'');
        if !s.contains([' ', '\'', '\u{2028}', '\u{2029}']) {
            self.push(s);
            self.pushc('\'');
            return;
        }
        let mut chars = s.chars().peekable();
        let mut first = true;
        let mut spaces = false;
        // The only line breaks a single-quoted scalar can hold are U+2028
        // and U+2029 (one with `\n` is a literal block, NEL and `\r` are
        // not printable): go-yaml writes them as they are and indents what
        // follows them, as after a line feed.
        let mut breaks = false;
        while let Some(c) = chars.next() {
            if is_break(c) {
                self.out.push(c);
                self.column = 0;
                breaks = true;
                std::mem::take(&mut first);
                continue;
            }
            if breaks && c != ' ' {
                breaks = false;
                self.pad_to(indent);
            }
            let next = chars.peek().copied();
            let at_edge = std::mem::take(&mut first) || next.is_none();
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && !at_edge
                    && next != Some(' ')
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
        self.pushc('"');
        let mut chars = s.chars().peekable();
        let mut first = true;
        let mut spaces = false;
        while let Some(c) = chars.next() {
            let next = chars.peek().copied();
            let at_edge = std::mem::take(&mut first) || next.is_none();
            if !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
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
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !at_edge {
                    self.newline_indent(indent);
                    if next == Some(' ') {
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

    /// Spaces up to column `indent` (the cursor is at a line's start).
    fn pad_to(&mut self, indent: usize) {
        while self.column < indent {
            self.out.push(' ');
            self.column += 1;
        }
    }

    /// `separators`: whether `s` holds U+2028 or U+2029.
    fn write_literal(&mut self, s: &str, indent: usize, separators: bool) {
        self.pushc('|');
        if s.starts_with(|c| c == ' ' || is_break(c)) {
            self.pushc('2');
        }
        let mut from_end = s.chars().rev();
        match (from_end.next(), from_end.next()) {
            (Some(last), _) if !is_break(last) => self.pushc('-'),
            (None, _) => self.pushc('-'),
            (Some(_), None) => self.pushc('+'),
            (Some(_), Some(before)) if is_break(before) => self.pushc('+'),
            _ => {}
        }
        // Each line at `indent`, empty ones without spaces. Every break is
        // written, the last one too; U+2028 and U+2029 as they are, and
        // what follows them on the same line of text is indented anew.
        // (The column is not kept: a line break or a key follows.)
        self.out.push('\n');
        self.column = 0;
        let mut at_start = true;
        for line in s.split_inclusive('\n') {
            let (text, newline) = match line.strip_suffix('\n') {
                Some(text) => (text, true),
                None => (line, false),
            };
            if !separators {
                if !text.is_empty() {
                    self.pad_to(indent);
                    self.out.push_str(text);
                }
                at_start = false;
            } else {
                for piece in text.split_inclusive(['\u{2028}', '\u{2029}']) {
                    let content = piece.trim_end_matches(['\u{2028}', '\u{2029}']);
                    if !content.is_empty() {
                        self.pad_to(indent);
                        self.out.push_str(content);
                    }
                    at_start = content.len() < piece.len();
                    if at_start {
                        self.out.push_str(&piece[content.len()..]);
                    }
                    self.column = 0;
                }
            }
            if newline {
                self.out.push('\n');
                at_start = true;
            }
            self.column = 0;
        }
        self.at_line_start = at_start;
    }
}

/// What a raw NEL (U+0085) becomes on kustomize's and Helm's way to YAML:
/// Go's `json.Marshal` leaves it unescaped, and go-yaml then reads the
/// JSON string as a double-quoted scalar, in which NEL is a line break
/// that folds. A run of spaces and NELs becomes one space if it holds one
/// NEL, and n-1 line feeds if it holds n.
fn json_nel(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || !s.contains('\u{85}') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find([' ', '\u{85}']) {
        out.push_str(&rest[..at]);
        let run = &rest[at..];
        let len = run.find(|c| c != ' ' && c != '\u{85}').unwrap_or(run.len());
        match run[..len].matches('\u{85}').count() {
            0 => out.push_str(&run[..len]),
            1 => out.push(' '),
            n => out.extend(std::iter::repeat_n('\n', n - 1)),
        }
        rest = &run[len..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Doc,
    MapValue,
    SeqItem,
}

/// go-yaml's `is_printable` (v2 and v3 alike): a line feed, printable
/// ASCII, and the basic plane from U+00A0 but for surrogates, U+FEFF,
/// U+FFFE and U+FFFF. Not NEL, and nothing past the basic plane: go-yaml
/// writes an emoji as `"\U0001F600"`, and a block scalar that holds one
/// as a double-quoted string.
pub(super) fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0a
        || (0x20..=0x7e).contains(&u)
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
}

/// go-yaml's line breaks (YAML 1.1's).
pub(super) fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
    }
}

#[derive(Debug, PartialEq)]
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
    /// It holds a NEL, which the JSON round trip folds first (`json_nel`).
    nel: bool,
    /// It holds U+2028 or U+2029, line breaks printed as they are.
    separators: bool,
}

fn analyze(s: &str) -> Analysis {
    // Most keys and values are printable ASCII without a space: nothing in
    // them but an indicator at either end can rule out the plain style.
    let b = s.as_bytes();
    if !b.is_empty() && b.iter().all(|c| (0x21..=0x7e).contains(c)) {
        let (first, last) = (b[0], b[b.len() - 1]);
        let block_indicators = s.starts_with("---")
            || s.starts_with("...")
            || b"#,[]{}&*!|>'\"%@`".contains(&first)
            || (b.len() == 1 && b"?:-".contains(&first))
            || (b.len() > 1 && last == b':');
        return Analysis {
            block_plain_allowed: !block_indicators,
            single_quoted_allowed: true,
            block_allowed: true,
            nel: false,
            separators: false,
        };
    }
    analyze_chars(s)
}

/// [`analyze`] a character at a time: go-yaml's `yaml_emitter_analyze_scalar`.
fn analyze_chars(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
            nel: false,
            separators: false,
        };
    }
    let mut block_indicators = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special, mut nel, mut separators) = (false, false, false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_indicators = true;
    }
    let mut preceded_by_ws = true;
    let mut chars = s.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let followed_by_ws = is_blank_or_end(next);
        let (at_start, at_end) = (std::mem::take(&mut first), next.is_none());
        if at_start {
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
        if !is_printable(c) {
            special = true;
            nel |= c == '\u{85}';
        }
        if is_break(c) {
            line_breaks = true;
            separators |= matches!(c, '\u{2028}' | '\u{2029}');
        }
        if c == ' ' {
            if at_start {
                leading_space = true;
            }
            if at_end {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if at_start {
                leading_break = true;
            }
            if at_end {
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
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
        nel,
        separators,
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

/// Renders one document the way kustomize prints a resource
/// (`sigs.k8s.io/yaml`: Go's JSON, read and printed by go-yaml v2). Go
/// refuses some values on that way, which [`super::go_yaml_refusal`] tells.
pub fn to_yaml(v: &Value) -> String {
    emit(v, true, true)
}

/// Renders one document as go-yaml prints it directly, not by way of JSON
/// (Helm's `toYamlPretty`): a NEL is escaped, not folded.
pub fn to_yaml_without_json(v: &Value) -> String {
    emit(v, true, false)
}

fn emit(v: &Value, fold: bool, json: bool) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        fold,
        at_line_start: false,
        json,
    };
    e.node(v, 0, Ctx::Doc);
    e.out
}

/// Renders documents separated by `---`.
pub fn to_yaml_docs<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    join_docs(docs, true)
}

/// What kyaml's `kio.StringAll` writes for documents it read from
/// kustomize's output (Helm v4 does this after post-rendering): go-yaml v3
/// keeps each scalar's style as go-yaml v2 chose it and the order of keys,
/// but does not fold long scalars.
pub fn to_yaml_docs_unfolded<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    join_docs(docs, false)
}

fn join_docs<'a>(docs: impl IntoIterator<Item = &'a Value>, fold: bool) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emit(d, fold, true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ASCII keys take the byte path; it must order as the character path.
    #[test]
    fn ascii_keys_order_as_characters_do() {
        let keys = [
            "",
            "a",
            "A",
            "a1",
            "a01",
            "a001",
            "a10",
            "a2",
            "a02",
            "10",
            "9",
            "09",
            "0",
            "00",
            "a0",
            "a00b",
            "a0b",
            "-",
            "_a",
            "a_b",
            "a-b",
            "a.b",
            "ab",
            "aB",
            "z",
            "Z",
            "1a",
            "01a",
            "x100y",
            "x99y",
            "x099y",
            "x0099y",
            "port",
            "ports",
            "name",
            "namespace",
            "99999999999999999999",
            "999999999999999999999",
        ];
        for a in keys {
            for b in keys {
                let ca: Vec<char> = a.chars().collect();
                let cb: Vec<char> = b.chars().collect();
                let by_char = natural_cmp(&ca, &cb, |c| {
                    (
                        c.is_alphabetic(),
                        c.is_ascii_digit().then(|| c as u8 - b'0'),
                    )
                });
                assert_eq!(v2_key_less(a, b), by_char, "{a:?} vs {b:?}");
            }
        }
        // go-yaml v2's order: digit runs as numbers, non-letters first.
        let mut v = vec!["b", "a10", "a2", "_x", "A", "a"];
        crate::gosort::sort(&mut v, |a, b| v2_key_less(a, b).is_lt());
        assert_eq!(v, ["_x", "A", "a", "a2", "a10", "b"]);
    }

    /// The shortcut for printable ASCII judges as the character loop does:
    /// every string of up to three characters from a set that holds each
    /// indicator, blanks, breaks and a few others.
    #[test]
    fn the_ascii_analysis_is_the_full_one() {
        let alphabet: Vec<char> = "a0-.:?#,[]{}&*!|>'\"%@` \t\n\r\u{7f}\u{85}é/_="
            .chars()
            .collect();
        let mut strings = vec![String::new()];
        for len in 1..=3 {
            let mut idx = vec![0usize; len];
            loop {
                strings.push(idx.iter().map(|&i| alphabet[i]).collect());
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < alphabet.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        strings.extend(
            [
                "---x", "...x", "--x", "..x", "a:b", "a:", "http://x", "#a", "a#",
            ]
            .map(String::from),
        );
        for s in &strings {
            assert_eq!(analyze(s), analyze_chars(s), "{s:?}");
        }
    }

    /// The writers' fast paths (nothing to fold or escape) print what
    /// their character loops print.
    #[test]
    fn scalars_fold_and_quote_at_eighty_columns() {
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let doc = |s: &str| {
            let mut m = super::super::Map::new();
            m.insert("k", Value::Str(s.into()));
            to_yaml(&Value::Map(m))
        };
        let out = doc(long);
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.len() <= 84), "{out}");
        assert_eq!(doc("plain-value:8080"), "k: plain-value:8080\n");
        assert_eq!(doc("it's"), "k: it's\n");
        assert_eq!(doc("'x'"), "k: '''x'''\n");
        assert_eq!(doc("yes"), "k: \"yes\"\n");
        assert_eq!(doc("a: b"), "k: 'a: b'\n");
        assert_eq!(doc("tab\there"), "k: \"tab\\there\"\n");
        assert_eq!(doc(" lead"), "k: ' lead'\n");
        assert_eq!(doc("@x"), "k: '@x'\n");
        assert_eq!(doc("-"), "k: '-'\n");
        assert_eq!(doc("a:"), "k: 'a:'\n");
        assert_eq!(doc("a#b"), "k: a#b\n");
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        let mut m = super::super::Map::new();
        for (k, v) in entries {
            m.insert(*k, v.clone());
        }
        Value::Map(m)
    }

    fn str(s: &str) -> Value {
        Value::Str(s.into())
    }

    /// What go-yaml v2 (sigs.k8s.io/yaml) prints for scalars outside
    /// printable ASCII, measured with go.yaml.in/yaml/v2 v2.4.3's
    /// `Marshal` and Go kustomize v5.8.1.
    #[test]
    fn characters_go_yaml_does_not_print_are_escaped() {
        // Past the basic plane: escaped, and a block scalar becomes quoted.
        assert_eq!(
            to_yaml(&map(&[("a", str("smile \u{1F600}"))])),
            "a: \"smile \\U0001F600\"\n"
        );
        assert_eq!(
            to_yaml(&map(&[("b", str("multi\nline \u{1F600}\n"))])),
            "b: \"multi\\nline \\U0001F600\\n\"\n"
        );
        // The rest of the basic plane is printed as it is.
        assert_eq!(to_yaml(&map(&[("e", str("a\u{a0}b"))])), "e: a\u{a0}b\n");
        assert_eq!(to_yaml(&map(&[("g", str("ä ö"))])), "g: ä ö\n");
    }

    /// A raw NEL folds as go-yaml reads Go's JSON (kustomize printed
    /// `"nel\N"` as `'nel '` and `"x \N  \N\N  y"` as a two-line block).
    #[test]
    fn nel_folds_as_in_the_json_round_trip() {
        assert_eq!(json_nel("plain"), "plain");
        assert_eq!(json_nel("nel\u{85}"), "nel ");
        assert_eq!(json_nel("\u{85}lead"), " lead");
        assert_eq!(json_nel("x \u{85}  \u{85}\u{85}  y"), "x\n\ny");
        assert_eq!(json_nel("a  b\u{85}c"), "a  b c");
        assert_eq!(to_yaml(&map(&[("d", str("nel\u{85}"))])), "d: 'nel '\n");
        assert_eq!(
            to_yaml(&map(&[("a", str("x \u{85}  \u{85}\u{85}  y"))])),
            "a: |-\n  x\n\n  y\n"
        );
        // Keys too: one NEL no longer makes a key span lines.
        assert_eq!(to_yaml(&map(&[("k\u{85}y", str("v"))])), "k y: v\n");
    }

    /// U+2028 and U+2029 are line breaks that go-yaml writes as they are,
    /// indenting what follows them; a block scalar that ends with one
    /// leaves the cursor at a line's start, so no line feed follows it.
    #[test]
    fn unicode_line_separators_print_as_go_yaml_does() {
        let cases: [(Value, &str); 5] = [
            (
                map(&[("a", str("x\n\n")), ("b", str("y"))]),
                "a: |+\n  x\n\nb: \"y\"\n",
            ),
            (
                map(&[("a", str("x\ny\u{2028}")), ("b", str("y"))]),
                "a: |\n  x\n  y\u{2028}b: \"y\"\n",
            ),
            (map(&[("b", str("x\ny\u{2028}"))]), "b: |\n  x\n  y\u{2028}"),
            (
                map(&[
                    ("a", str("\u{2028}x\ny\u{2029}z\n")),
                    ("b", Value::Seq(vec![str("p\nq\u{2028}"), str("r")])),
                ]),
                "a: |2\n\u{2028}  x\n  y\u{2029}  z\nb:\n- |\n  p\n  q\u{2028}- r\n",
            ),
            (
                map(&[
                    ("c", str("x\u{2028}y")),
                    ("d", str("\u{2028}\u{2028}x\u{2029}")),
                ]),
                "c: 'x\u{2028}  y'\nd: '\u{2028}\u{2028}  x\u{2029}'\n",
            ),
        ];
        for (value, go) in cases {
            assert_eq!(to_yaml(&value), go, "{value:?}");
        }
    }
}
