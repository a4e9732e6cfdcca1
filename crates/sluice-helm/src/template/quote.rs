//! Go's `strconv` quoting as templates see it: `Quote` (for `%q` and node
//! printing), `Unquote` and `UnquoteChar` (for literals), `%#U`.

/// Go's `unicode.IsPrint`, approximated: letters, marks, numbers,
/// punctuation, symbols and the ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF
        | 0xE0001 | 0xE0020..=0xE007F)
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

/// Go's `strconv.QuoteToASCII` (`%+q`).
pub(crate) fn quote_ascii(s: &str) -> String {
    quote_with(s, '"', true)
}

/// Go's `strconv.QuoteRune`.
pub(crate) fn quote_rune(c: char) -> String {
    let mut b = [0u8; 4];
    quote_with(c.encode_utf8(&mut b), '\'', false)
}

fn quote_with(s: &str, q: char, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        if c == q || c == '\\' {
            out.push('\\');
            out.push(c);
            continue;
        }
        if ascii {
            if c.is_ascii() && is_print(c) {
                out.push(c);
                continue;
            }
        } else if is_print(c) {
            out.push(c);
            continue;
        }
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(q);
    out
}

/// Go's `%#U`: `U+0025 '%'` (the character only when printable).
pub(crate) fn unicode_u(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Go's `strconv.UnquoteChar`: one character (or byte, as `\xff`) of a
/// quoted literal, and the rest. `None` is Go's `invalid syntax`.
pub(crate) fn unquote_char(s: &str, quote: char) -> Option<(UChar, &str)> {
    let mut it = s.chars();
    let c = it.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((UChar::Char(c), it.as_str()));
    }
    let c = it.next()?;
    let rest = it.as_str();
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if c != quote {
                return None;
            }
            Some(c)
        }
        _ => None,
    };
    if let Some(x) = simple {
        return Some((UChar::Char(x), rest));
    }
    match c {
        'x' | 'u' | 'U' => {
            let n = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let digits = rest.get(..n)?;
            let v = u32::from_str_radix(digits, 16).ok()?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let rest = &rest[n..];
            if c == 'x' {
                return Some((UChar::Byte(v as u8), rest));
            }
            Some((UChar::Char(char::from_u32(v)?), rest))
        }
        '0'..='7' => {
            let digits = rest.get(..2)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            let v = (c as u32 - '0' as u32) * 64 + u32::from_str_radix(digits, 8).ok()?;
            if v > 255 {
                return None;
            }
            Some((UChar::Byte(v as u8), &rest[2..]))
        }
        _ => None,
    }
}

pub(crate) enum UChar {
    Char(char),
    Byte(u8),
}

/// Go's `strconv.Unquote` for `"..."`, `` `...` `` and `'.'` literals.
/// `None` is Go's `invalid syntax`. Bytes given as `\xff` may make the
/// result invalid UTF-8; Go keeps such bytes, here they become U+FFFD.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if !matches!(q, '"' | '`' | '\'') || s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let body = &s[1..s.len() - 1];
    match q {
        '`' => {
            if body.contains('`') {
                return None;
            }
            Some(body.replace('\r', ""))
        }
        // Nearly every literal: no escape, nothing to refuse.
        '"' if memchr::memchr3(b'\\', b'"', b'\n', body.as_bytes()).is_none() => {
            Some(body.to_string())
        }
        '"' | '\'' => {
            let mut bytes = Vec::with_capacity(body.len());
            let mut rest = body;
            let mut count = 0;
            while !rest.is_empty() {
                if q == '"' && rest.starts_with('\n') {
                    return None;
                }
                let (c, r) = unquote_char(rest, q)?;
                match c {
                    UChar::Char(c) => {
                        let mut b = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    }
                    UChar::Byte(b) => bytes.push(b),
                }
                rest = r;
                count += 1;
            }
            if q == '\'' && count != 1 {
                return None;
            }
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    }
}
