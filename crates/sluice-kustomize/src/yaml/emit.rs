//! Printing: go-yaml v2 over JSON-roundtripped data (sorted keys, its
//! quoting, literal blocks, folding at 80 columns), as kustomize prints.

use super::resolve::{is_base60_float, v2_resolves_to_non_string};
use super::{CompactString, Value};

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
    /// Whether long scalars are folded at [`BEST_WIDTH`] (go-yaml v2 folds;
    /// kyaml's go-yaml v3 encoder does not).
    fold: bool,
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
            // A document that is one scalar: go-yaml indents its block content and
            // folded lines by two (libyaml's root indent for a scalar); kustomize never
            // writes one, Helm's `toYaml` of a string does.
            Value::Str(s) if after == Ctx::Doc => self.scalar_str(s, indent + 2, false),
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
        let allow_breaks = !simple_key && self.fold;
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
    emit(v, true)
}

fn emit(v: &Value, fold: bool) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        fold,
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
        out.push_str(&emit(d, fold));
    }
    out
}
