//! Go's formatting and reflection rules as sprig's functions observe them:
//! `fmt`'s `%v` and `%q`, `reflect.DeepEqual`, sprig's `empty`, the type
//! and kind names, `strconv` number parsing and Go's `float64 -> int64`.

use std::fmt::Write as _;

use crate::template::Value;
use crate::template::value::MAX_VALUE_DEPTH;

/// sprig's `strval`: strings and `[]byte` as they are, `%v` otherwise.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.go_string(),
    }
}

/// sprig's `empty`: nil, false, 0, 0.0, and empty strings, lists and maps
/// (Go's falsehood; structs are never empty).
pub fn is_empty(v: &Value) -> bool {
    !v.truthy()
}

/// A copy sharing nothing with `v` (mitchellh/copystructure's `Copy`).
pub fn deep_copy(v: &Value, depth: usize) -> Value {
    if depth > MAX_VALUE_DEPTH {
        return Value::Nil;
    }
    match v {
        Value::List(l) => Value::list(l.iter().map(|x| deep_copy(x, depth + 1)).collect()),
        Value::Map(m) => Value::map(
            m.entries()
                .into_iter()
                .map(|(k, x)| (k, deep_copy(&x, depth + 1)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Go's conversion `int64(f)` on amd64: truncation, and the "integer
/// indefinite" value for NaN and out-of-range inputs.
pub fn f64_to_i64(f: f64) -> i64 {
    // 2^63 bounds the range exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// `strconv.ParseInt(s, base, 64)` for base 0 (prefixes, `_` separators)
/// and explicit bases 2..=36.
pub fn parse_int(s: &str, base: u32) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits, underscores) = if base == 0 {
        let lower = body.to_ascii_lowercase();
        if lower.starts_with("0x") {
            (16, &body[2..], true)
        } else if lower.starts_with("0o") {
            (8, &body[2..], true)
        } else if lower.starts_with("0b") {
            (2, &body[2..], true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, true)
        }
    } else {
        (base, body, false)
    };
    if underscores && base == 0 && !underscore_ok(body) {
        return None;
    }
    let mut mag: u128 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' && underscores {
            continue;
        }
        let d = c.to_digit(radix)?;
        any = true;
        mag = mag * u128::from(radix) + u128::from(d);
        if mag > 1 << 63 {
            return None;
        }
    }
    if !any {
        return None;
    }
    if neg {
        if mag > 1 << 63 {
            None
        } else {
            Some((mag as i128).wrapping_neg() as i64)
        }
    } else if mag > i64::MAX as u128 {
        None
    } else {
        Some(mag as i64)
    }
}

/// Go's rule for `_` in number literals (base 0): only between digits or
/// after a base prefix.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    // '^' marks "after a prefix", '0' a digit, '_' an underscore.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' {
        let p = b[1].to_ascii_lowercase();
        if p == b'x' || p == b'o' || p == b'b' {
            hex = p == b'x';
            i = 2;
            saw = b'0';
        }
    }
    let mut any_underscore = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            any_underscore = true;
            saw = b'_';
        } else {
            saw = b'!';
        }
        i += 1;
    }
    !any_underscore || saw != b'_'
}

/// `strconv.ParseFloat(s, 64)` (decimal forms, `inf`, `nan`).
pub fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("0x") {
        return None;
    }
    s.parse::<f64>().ok()
}

/// `s` in backquotes when `strconv.CanBackquote` allows it (no backquote, no control
/// character but tab, no byte order mark), else [`quote`]d: how `regexp` names an expression.
pub fn backquote(s: &str) -> String {
    let can = s
        .chars()
        .all(|c| c != '`' && c != '\u{feff}' && (c == '\t' || c >= ' '));
    if can { format!("`{s}`") } else { quote(s) }
}

/// `strconv.Quote` (what `%q` prints for a string).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space; no control, format, surrogate,
/// private-use or separator characters other than U+0020.
fn is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x20 || (0x7f..0xa0).contains(&u) {
        return false;
    }
    if u == 0x20 {
        return true;
    }
    if c.is_whitespace() {
        return false;
    }
    !matches!(u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xfffe | 0xffff
        | 0xf0000..=0x10ffff | 0xe0001 | 0xe0020..=0xe007f)
}

/// Go's `encoding/json` number form for a `float64`.
pub fn json_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        // 'e' format; Go writes `e+21` and cleans `e-07` to `e-7`.
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        match e.strip_prefix('-') {
            Some(d) => format!("{m}e-{d}"),
            None if e.len() < 2 => format!("{m}e+0{e}"),
            None => format!("{m}e+{e}"),
        }
    } else if f.fract() == 0.0 && a < 1e21 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

/// Go's `encoding/json.Marshal` of the value; `escape_html` as the
/// encoder's `SetEscapeHTML`. Fails on NaN and infinities as Go does.
pub fn to_json(v: &Value, escape_html: bool, out: &mut String, depth: usize) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Uint(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bytes(b) => {
            let text = Value::Bytes(b.clone()).to_json();
            json_string(text.as_str().unwrap_or(""), escape_html, out);
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    crate::gofmt::format_g64(*f)
                ));
            }
            out.push_str(&json_float(*f));
        }
        Value::String(s) => json_string(s, escape_html, out),
        Value::List(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(it, escape_html, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, it)) in m.entries().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, escape_html, out);
                out.push(':');
                to_json(it, escape_html, out, depth + 1)?;
            }
            out.push('}');
        }
        Value::Object(o) => match o.to_value() {
            Some(v) => to_json(&v, escape_html, out, depth + 1)?,
            None => out.push_str("{}"),
        },
    }
    Ok(())
}

/// A JSON string as Go's `encoding/json` writes it: `\"`, `\\`, `\n`, `\r`, `\t`, other
/// control characters and U+2028/U+2029 as `\u` escapes, and `<`, `>`, `&` too when
/// `escape_html` (as `json.Marshal` does).
pub fn json_string<O: crate::jsonw::JsonOut + ?Sized>(s: &str, escape_html: bool, out: &mut O) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Runs of characters that need no escape are copied whole.
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let short = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            _ => "",
        };
        let unicode = short.is_empty()
            && ((escape_html && matches!(c, '<' | '>' | '&'))
                || matches!(c, '\u{2028}' | '\u{2029}')
                || (c as u32) < 0x20);
        if short.is_empty() && !unicode {
            continue;
        }
        out.push_str(&s[run..i]);
        run = i + c.len_utf8();
        if unicode {
            // `\u00XX`, `\u2028` or `\u2029`: four hex digits.
            let n = c as u32;
            let mut u = *b"\\u0000";
            for (k, shift) in [12, 8, 4, 0].into_iter().enumerate() {
                u[2 + k] = HEX[((n >> shift) & 0xf) as usize];
            }
            out.push_str(std::str::from_utf8(&u).unwrap_or_default());
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Bytes `[a, b)` of `s`, as Go's `s[a:b]` (which may cut a multi-byte
/// character; the cut bytes become U+FFFD here).
pub fn byte_slice(s: &str, a: usize, b: usize) -> String {
    match s.get(a..b) {
        Some(t) => t.to_string(),
        None => String::from_utf8_lossy(&s.as_bytes()[a..b]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_like_go() {
        assert_eq!(parse_int("0x1F", 0), Some(31));
        assert_eq!(parse_int("017", 0), Some(15));
        assert_eq!(parse_int("1_000", 0), Some(1000));
        assert_eq!(parse_int("_1", 0), None);
        assert_eq!(parse_int("-9223372036854775808", 0), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775808", 0), None);
        assert_eq!(parse_int("0", 0), Some(0));
        assert_eq!(parse_int("777", 8), Some(511));
        assert_eq!(parse_int("0o7", 8), None);
        assert_eq!(parse_int("", 0), None);
        assert_eq!(parse_int("1.5", 0), None);
    }

    #[test]
    fn json_floats_like_go() {
        assert_eq!(json_float(1e6), "1000000");
        assert_eq!(json_float(1.5), "1.5");
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(1e-7), "1e-7");
        assert_eq!(json_float(1.5e-10), "1.5e-10");
        assert_eq!(json_float(0.000001), "0.000001");
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(quote("a\"b\n\u{1}é"), "\"a\\\"b\\n\\x01é\"");
        assert_eq!(quote("\u{feff}"), "\"\\ufeff\"");
    }
}

/// Go's `quoteChar` for scanner errors: `'x'`, `'\''`, `'"'`, `'\n'`.
fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        c => {
            let q = quote(&c.to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

/// The syntax error Go's `encoding/json` scanner reports for `text`
/// (`invalid character 'x' looking for beginning of value`, `unexpected
/// end of JSON input`), or `None` when the text is valid JSON.
pub fn json_syntax_error(text: &str) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Object,
        Array,
    }
    let bad = |c: char, ctx: &str| Some(format!("invalid character {} {ctx}", quote_char(c)));
    let eof = || Some("unexpected end of JSON input".to_string());
    let mut it = text.chars().peekable();
    let mut stack: Vec<Ctx> = Vec::new();
    let skip = |it: &mut std::iter::Peekable<std::str::Chars>| {
        while matches!(it.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            it.next();
        }
    };
    // Reads one value; containers push a context and return.
    'value: loop {
        skip(&mut it);
        let Some(c) = it.next() else {
            return eof();
        };
        match c {
            '{' => {
                skip(&mut it);
                match it.next() {
                    None => return eof(),
                    Some('}') => {}
                    Some('"') => {
                        if let Some(e) = json_string_rest(&mut it) {
                            return Some(e);
                        }
                        skip(&mut it);
                        match it.next() {
                            None => return eof(),
                            Some(':') => {}
                            Some(c) => return bad(c, "after object key"),
                        }
                        stack.push(Ctx::Object);
                        continue 'value;
                    }
                    Some(c) => return bad(c, "looking for beginning of object key string"),
                }
            }
            '[' => {
                skip(&mut it);
                match it.peek() {
                    None => return eof(),
                    Some(']') => {
                        it.next();
                    }
                    Some(_) => {
                        stack.push(Ctx::Array);
                        continue 'value;
                    }
                }
            }
            '"' => {
                if let Some(e) = json_string_rest(&mut it) {
                    return Some(e);
                }
            }
            '-' | '0'..='9' => {
                if let Some(e) = json_number_rest(c, &mut it) {
                    return Some(e);
                }
            }
            't' | 'f' | 'n' => {
                let word = match c {
                    't' => "true",
                    'f' => "false",
                    _ => "null",
                };
                for want in word.chars().skip(1) {
                    match it.next() {
                        None => return eof(),
                        Some(got) if got == want => {}
                        Some(got) => {
                            return Some(format!(
                                "invalid character {} in literal {word} (expecting {})",
                                quote_char(got),
                                quote_char(want)
                            ));
                        }
                    }
                }
            }
            c => return bad(c, "looking for beginning of value"),
        }
        // A value ended: continue its container.
        loop {
            skip(&mut it);
            match stack.last() {
                None => {
                    return it.next().and_then(|c| bad(c, "after top-level value"));
                }
                Some(Ctx::Array) => match it.next() {
                    None => return eof(),
                    Some(',') => continue 'value,
                    Some(']') => {
                        stack.pop();
                    }
                    Some(c) => return bad(c, "after array element"),
                },
                Some(Ctx::Object) => match it.next() {
                    None => return eof(),
                    Some(',') => {
                        skip(&mut it);
                        match it.next() {
                            None => return eof(),
                            Some('"') => {
                                if let Some(e) = json_string_rest(&mut it) {
                                    return Some(e);
                                }
                                skip(&mut it);
                                match it.next() {
                                    None => return eof(),
                                    Some(':') => continue 'value,
                                    Some(c) => return bad(c, "after object key"),
                                }
                            }
                            Some(c) => {
                                return bad(c, "looking for beginning of object key string");
                            }
                        }
                    }
                    Some('}') => {
                        stack.pop();
                    }
                    Some(c) => return bad(c, "after object key:value pair"),
                },
            }
        }
    }
}

/// The rest of a JSON string after its opening quote.
fn json_string_rest(it: &mut std::iter::Peekable<std::str::Chars>) -> Option<String> {
    loop {
        match it.next() {
            None => return Some("unexpected end of JSON input".into()),
            Some('"') => return None,
            Some('\\') => match it.next() {
                None => return Some("unexpected end of JSON input".into()),
                Some('b' | 'f' | 'n' | 'r' | 't' | '\\' | '/' | '"') => {}
                Some('u') => {
                    for _ in 0..4 {
                        match it.next() {
                            None => return Some("unexpected end of JSON input".into()),
                            Some(h) if h.is_ascii_hexdigit() => {}
                            Some(h) => {
                                return Some(format!(
                                    "invalid character {} in \\u hexadecimal character escape",
                                    quote_char(h)
                                ));
                            }
                        }
                    }
                }
                Some(c) => {
                    return Some(format!(
                        "invalid character {} in string escape code",
                        quote_char(c)
                    ));
                }
            },
            Some(c) if (c as u32) < 0x20 => {
                return Some(format!(
                    "invalid character {} in string literal",
                    quote_char(c)
                ));
            }
            Some(_) => {}
        }
    }
}

/// The rest of a JSON number after its first character.
fn json_number_rest(first: char, it: &mut std::iter::Peekable<std::str::Chars>) -> Option<String> {
    let digits = |it: &mut std::iter::Peekable<std::str::Chars>| {
        while it.peek().is_some_and(char::is_ascii_digit) {
            it.next();
        }
    };
    let need_digit = |it: &mut std::iter::Peekable<std::str::Chars>, ctx: &str| match it.next() {
        None => Some("unexpected end of JSON input".to_string()),
        Some(c) if c.is_ascii_digit() => None,
        Some(c) => Some(format!("invalid character {} {ctx}", quote_char(c))),
    };
    let lead = if first == '-' {
        match it.next() {
            None => return Some("unexpected end of JSON input".into()),
            Some(c) if c.is_ascii_digit() => c,
            Some(c) => {
                return Some(format!(
                    "invalid character {} in numeric literal",
                    quote_char(c)
                ));
            }
        }
    } else {
        first
    };
    if lead != '0' {
        digits(it);
    }
    if it.peek() == Some(&'.') {
        it.next();
        if let Some(e) = need_digit(it, "after decimal point in numeric literal") {
            return Some(e);
        }
        digits(it);
    }
    if matches!(it.peek(), Some('e' | 'E')) {
        it.next();
        if matches!(it.peek(), Some('+' | '-')) {
            it.next();
        }
        if let Some(e) = need_digit(it, "in exponent of numeric literal") {
            return Some(e);
        }
        digits(it);
    }
    None
}

#[cfg(test)]
mod json_error_tests {
    use super::json_syntax_error as e;

    /// Messages as Go's encoding/json prints them.
    #[test]
    fn go_json_syntax_errors() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"a": [1, 2.5, "x", true, null, {}], "b": -0.5e+3}"#,
                None,
            ),
            ("", Some("unexpected end of JSON input")),
            (
                "nope",
                Some("invalid character 'o' in literal null (expecting 'u')"),
            ),
            (
                "x",
                Some("invalid character 'x' looking for beginning of value"),
            ),
            ("{\"a\" 1}", Some("invalid character '1' after object key")),
            (
                "{\"a\": 1 \"b\"}",
                Some("invalid character '\"' after object key:value pair"),
            ),
            ("[1 2]", Some("invalid character '2' after array element")),
            (
                "{1: 2}",
                Some("invalid character '1' looking for beginning of object key string"),
            ),
            ("[1] x", Some("invalid character 'x' after top-level value")),
            (
                "\"a\\qb\"",
                Some("invalid character 'q' in string escape code"),
            ),
            (
                "\"a\nb\"",
                Some("invalid character '\\n' in string literal"),
            ),
            (
                "1.x",
                Some("invalid character 'x' after decimal point in numeric literal"),
            ),
            ("-x", Some("invalid character 'x' in numeric literal")),
            ("1e+", Some("unexpected end of JSON input")),
            (
                "{'a': 1}",
                Some("invalid character '\\'' looking for beginning of object key string"),
            ),
            ("[1,", Some("unexpected end of JSON input")),
        ];
        for (text, want) in cases {
            assert_eq!(e(text).as_deref(), *want, "{text}");
        }
    }
}
