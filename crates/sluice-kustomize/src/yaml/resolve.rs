//! Scalar resolution: the type a plain scalar has, by go-yaml v3's rules
//! on input and by go-yaml v2's where the emitter decides on quoting.

use super::events::Style;
use super::{CompactString, Value};

/// A tag as go-yaml names it in messages: `tag:yaml.org,2002:int` is
/// `!!int`; any other tag is itself.
pub fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(t) => format!("!!{t}"),
        None => tag.to_string(),
    }
}

/// How a scalar is decoded (see [`resolve_scalar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decode {
    /// As a kustomization file is read.
    No,
    /// As go-yaml v3 decodes a value into an `interface{}`.
    Value,
    /// As it decodes a mapping's key into a `string`: tags are checked,
    /// but a timestamp keeps its text.
    Key,
}

/// The tag go-yaml v3 gives a mapping key that is not a string (`!!int` for
/// a plain `1`, `!!null` for `~`, `!!timestamp` for `2001-12-14`, an
/// explicit tag other than `!!str`), or `None` for a string or a merge key.
pub(super) fn non_string_key(s: &super::events::Scalar) -> Option<String> {
    if let Some(tag) = s.props.tag.as_deref().filter(|t| *t != "!") {
        let short = short_tag(tag);
        return (short != "!!str" && short != "!!merge").then_some(short);
    }
    if s.style != Style::Plain || s.value == "<<" {
        return None;
    }
    let tag = match resolved_tag(&resolve_plain_v3(s.value.as_str())) {
        "!!str" if go_timestamp(&s.value).is_some() => "!!timestamp",
        "!!str" => return None,
        other => other,
    };
    Some(tag.to_string())
}

/// YAML's infinities and NaN, which go-yaml v3 resolves to floats and the
/// model keeps as text (JSON has no such numbers).
fn is_inf_or_nan(t: &str) -> bool {
    matches!(
        t,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    )
}

/// The tag of what [`resolve_plain_v3`] made of a text.
fn resolved_tag(v: &Value) -> &'static str {
    match v {
        Value::Null => "!!null",
        Value::Bool(_) => "!!bool",
        Value::Int(_) => "!!int",
        Value::Float(_) => "!!float",
        // Infinities and NaN, which the model keeps as text.
        Value::Str(t) if is_inf_or_nan(t) => "!!float",
        _ => "!!str",
    }
}

/// A scalar's value from its text, how it was written and its tag (as
/// libyaml resolves it: `!!int` is `tag:yaml.org,2002:int`).
///
/// With `decode`, as go-yaml v3 decodes it into an `interface{}`, which
/// kustomize does to every resource: a plain timestamp becomes the time
/// `encoding/json` writes (`2001-12-14` is `2001-12-14T00:00:00Z`), and an
/// explicit tag must fit the text (`!!int abc` is refused). Without it, as
/// kustomization files are read (go-yaml v2 through `sigs.k8s.io/yaml`,
/// which keeps timestamps as written).
pub(super) fn resolve_scalar(
    text: CompactString,
    style: Style,
    tag: Option<&str>,
    decode: Decode,
) -> Result<Value, String> {
    if decode != Decode::No
        && let Some(tag) = tag.filter(|t| *t != "!")
    {
        return decode_tagged(text, tag);
    }
    if let Some(full) = tag {
        match full {
            "tag:yaml.org,2002:str" => return Ok(Value::Str(text)),
            "tag:yaml.org,2002:int"
            | "tag:yaml.org,2002:float"
            | "tag:yaml.org,2002:bool"
            | "tag:yaml.org,2002:null" => {
                return Ok(resolve_plain_v3(text));
            }
            _ => {}
        }
    }
    if style != Style::Plain {
        return Ok(Value::Str(text));
    }
    if decode == Decode::Value
        && let Some(t) = go_timestamp(&text)
    {
        return Ok(Value::Str(t.rfc3339_nano().into()));
    }
    Ok(resolve_plain_v3(text))
}

/// go-yaml v3's decoding of an explicitly tagged scalar (`resolve` and
/// `decoder.scalar`): `!!str` is the text, `!!binary` its base64 decoded,
/// a tag it does not resolve (`!!set`, `!custom`) the text, and `!!bool`,
/// `!!int`, `!!float`, `!!null`, `!!timestamp` must be what the text
/// resolves to (an integer may be a float).
fn decode_tagged(text: CompactString, tag: &str) -> Result<Value, String> {
    let short = short_tag(tag);
    match short.as_str() {
        "!!str" => return Ok(Value::Str(text)),
        "!!binary" => {
            use base64::Engine as _;
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
            );
            let clean: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            return match engine.decode(clean) {
                Ok(bytes) => Ok(Value::Str(String::from_utf8_lossy(&bytes).as_ref().into())),
                Err(_) => Err("!!binary value contains invalid base64 data".to_string()),
            };
        }
        "!!bool" | "!!int" | "!!float" | "!!null" | "!!timestamp" => {}
        _ => return Ok(Value::Str(text)),
    }
    let (rtag, v) = match go_timestamp(&text).filter(|_| short == "!!timestamp") {
        Some(t) => ("!!timestamp", Value::Str(t.rfc3339_nano().into())),
        None => {
            let v = resolve_plain_v3(text.clone());
            (resolved_tag(&v), v)
        }
    };
    match (short.as_str(), rtag, v) {
        (want, got, v) if want == got => Ok(v),
        ("!!float", "!!int", Value::Int(i)) => Ok(Value::Float(i as f64)),
        // Past i64, Go keeps a uint64; the model holds it as the float it
        // is nearest to.
        ("!!int", "!!float", v) if go_parse_uint(&text.replace('_', "")) => Ok(v),
        _ => Err(format!("cannot decode {rtag} `{text}` as a {short}")),
    }
}

/// Resolves a plain scalar with go-yaml v3's rules (YAML 1.2 core schema plus
/// Go's integer syntax).
pub fn resolve_plain_v3(text: impl Into<CompactString>) -> Value {
    let text: CompactString = text.into();
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        t if is_inf_or_nan(t) => return Value::Str(text),
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

pub(super) fn v2_resolves_to_non_string(s: &str) -> bool {
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

/// Go's `strconv.ParseFloat` accepting `s` (for deciding quoting).
pub(super) fn go_parse_float(s: &str) -> bool {
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

pub(super) fn is_base60_float(s: &str) -> bool {
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
    go_timestamp(s).is_some()
}

/// A time as go-yaml's `parseTimestamp` reads it, in the zone it was
/// written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoTime {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Seconds east of UTC.
    offset: i32,
}

impl GoTime {
    /// Go's `time.RFC3339Nano`, which `encoding/json` writes a `time.Time`
    /// with: the fraction without its trailing zeros (none when zero), `Z`
    /// for UTC.
    pub fn rfc3339_nano(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let (sign, off) = if self.offset < 0 {
                ('-', -self.offset)
            } else {
                ('+', self.offset)
            };
            out.push_str(&format!("{sign}{:02}:{:02}", off / 3600, off % 3600 / 60));
        }
        out
    }
}

/// go-yaml's `parseTimestamp` (the same in v2 and v3): a text that starts
/// with four digits and `-` and that Go's `time.Parse` reads with one of
/// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`,
/// `2006-1-2 15:4:5.999999999` (UTC) or `2006-1-2`, field ranges checked as
/// Go checks them (February 30 is not a date).
pub fn go_timestamp(s: &str) -> Option<GoTime> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    // Go's getnum: one digit, or two when two are there.
    let num = |i: &mut usize| -> Option<u32> {
        let d = |k: usize| {
            b.get(k)
                .filter(|c| c.is_ascii_digit())
                .map(|c| u32::from(c - b'0'))
        };
        let first = d(*i)?;
        match d(*i + 1) {
            Some(second) => {
                *i += 2;
                Some(first * 10 + second)
            }
            None => {
                *i += 1;
                Some(first)
            }
        }
    };
    let year: u32 = s[..4].parse().ok()?;
    let mut i = 5;
    let month = num(&mut i)?;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let day = num(&mut i)?;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month {
        return None;
    }
    let mut t = GoTime {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };
    if i == b.len() {
        return Some(t);
    }
    let zoned = match b[i] {
        b'T' | b't' => {
            i += 1;
            true
        }
        b' ' => {
            // A space in Go's layout matches any run of them.
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            false
        }
        _ => return None,
    };
    t.hour = num(&mut i)?;
    (b.get(i) == Some(&b':')).then_some(())?;
    i += 1;
    t.minute = num(&mut i)?;
    (b.get(i) == Some(&b':')).then_some(())?;
    i += 1;
    t.second = num(&mut i)?;
    if t.hour >= 24 || t.minute >= 60 || t.second >= 60 {
        return None;
    }
    // A fraction: `.` or `,` and any number of digits, of which nine count.
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = &s[start..i.min(start + 9)];
        t.nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
    }
    if zoned {
        match b.get(i) {
            Some(b'Z') => i += 1,
            Some(&sign @ (b'+' | b'-')) => {
                let z = b.get(i..i + 6)?;
                if z[3] != b':' || ![1, 2, 4, 5].iter().all(|&k| z[k].is_ascii_digit()) {
                    return None;
                }
                let hh = i32::from(z[1] - b'0') * 10 + i32::from(z[2] - b'0');
                let mm = i32::from(z[4] - b'0') * 10 + i32::from(z[5] - b'0');
                if hh > 24 || mm > 60 {
                    return None;
                }
                let off = (hh * 60 + mm) * 60;
                t.offset = if sign == b'-' { -off } else { off };
                i += 6;
            }
            _ => return None,
        }
    }
    (i == b.len()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(s: &str) -> Option<String> {
        go_timestamp(s).map(|t| t.rfc3339_nano())
    }

    #[test]
    fn timestamps_are_read_as_go_reads_them() {
        assert_eq!(rfc("2001-12-14").as_deref(), Some("2001-12-14T00:00:00Z"));
        assert_eq!(rfc("2001-1-2").as_deref(), Some("2001-01-02T00:00:00Z"));
        assert_eq!(
            rfc("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            rfc("2001-12-14T21:59:43.123456789123Z").as_deref(),
            Some("2001-12-14T21:59:43.123456789Z")
        );
        assert_eq!(
            rfc("2001-12-14   21:59:43,5").as_deref(),
            Some("2001-12-14T21:59:43.5Z")
        );
        assert_eq!(
            rfc("2001-12-14T01:02:03+00:00").as_deref(),
            Some("2001-12-14T01:02:03Z")
        );
        assert_eq!(rfc("2000-02-29").as_deref(), Some("2000-02-29T00:00:00Z"));
        for no in [
            "2001-02-29",
            "1900-02-29",
            "2001-04-31",
            "2001-13-01",
            "2001-00-10",
            "2001-12-14 21:59:43.10Z",
            "2001-12-14T21:59:43",
            "2001-12-14T24:00:00Z",
            "2001-12-14T21:60:00Z",
            "2001-12-14T21:59:43+5:00",
            "2001-12-14T21:59:43+25:00",
            "2001-12-14x",
            "20011-12-14",
            "-2001-12-14",
        ] {
            assert_eq!(rfc(no), None, "{no}");
        }
    }

    #[test]
    fn resources_decode_as_go_yaml_v3_decodes() {
        let value =
            |t: &str, tag: Option<&str>| resolve_scalar(t.into(), Style::Plain, tag, Decode::Value);
        assert_eq!(
            value("2001-12-14", None),
            Ok(Value::str("2001-12-14T00:00:00Z"))
        );
        // A key, a quoted text and a kustomization file keep it.
        for (style, decode) in [
            (Style::Plain, Decode::Key),
            (Style::DoubleQuoted, Decode::Value),
            (Style::Plain, Decode::No),
        ] {
            assert_eq!(
                resolve_scalar("2001-12-14".into(), style, None, decode),
                Ok(Value::str("2001-12-14"))
            );
        }
        let int = Some("tag:yaml.org,2002:int");
        let float = Some("tag:yaml.org,2002:float");
        assert_eq!(value("12", int), Ok(Value::Int(12)));
        assert_eq!(value("12", float), Ok(Value::Float(12.0)));
        assert_eq!(
            value("abc", int),
            Err("cannot decode !!str `abc` as a !!int".to_string())
        );
        assert_eq!(
            value("1.5", int),
            Err("cannot decode !!float `1.5` as a !!int".to_string())
        );
        assert_eq!(
            value("2001-12-14", Some("tag:yaml.org,2002:timestamp")),
            Ok(Value::str("2001-12-14T00:00:00Z"))
        );
        assert_eq!(
            value("aGVsbG8=", Some("tag:yaml.org,2002:binary")),
            Ok(Value::str("hello"))
        );
        assert_eq!(
            value("*", Some("tag:yaml.org,2002:binary")),
            Err("!!binary value contains invalid base64 data".to_string())
        );
        assert_eq!(value("12", Some("!custom")), Ok(Value::str("12")));
        assert_eq!(value("12", Some("!")), Ok(Value::Int(12)));
    }
}
