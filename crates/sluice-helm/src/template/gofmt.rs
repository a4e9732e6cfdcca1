//! Go's `fmt.Sprint`, `fmt.Sprintln` and `fmt.Sprintf` over [`Value`]s: the
//! verbs, flags, widths and precisions templates use, and Go's error forms
//! (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`).

use super::quote::{is_print, quote, quote_ascii, quote_rune};
use super::value::{MAX_VALUE_DEPTH, Value};
use crate::gofmt::format_g64;

fn is_string(v: &Value) -> bool {
    matches!(v, Value::String(_))
}

/// `fmt.Sprint(args...)`: spaces between operands when neither side is a
/// string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !is_string(a) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.go_string());
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, and a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&a.go_string());
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Bound on widths and precisions (Go allows up to 1e6).
const MAX_WIDTH: usize = 1_000_000;

/// `fmt.Sprintf(format, args...)`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0usize;
    let mut reordered = false;
    let b = format.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= b.len() {
            break;
        }
        i += 1; // '%'
        let mut f = Flags::default();
        // Flags.
        while i < b.len() {
            match b[i] {
                b'#' => f.sharp = true,
                b'0' => f.zero = !f.minus,
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        // Argument index, width.
        let mut bad_index = false;
        if let Some((n, ni, ok)) = arg_index(b, i) {
            i = ni;
            reordered = true;
            if ok {
                argi = n;
            } else {
                bad_index = true;
            }
        }
        if i < b.len() && b[i] == b'*' {
            i += 1;
            match args.get(argi).and_then(int_arg) {
                Some(w) => {
                    if w < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    f.width = Some((w.unsigned_abs() as usize).min(MAX_WIDTH));
                }
                None => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let (n, ni) = parse_num(b, i);
            if ni > i {
                f.width = Some(n.min(MAX_WIDTH));
            }
            i = ni;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            if let Some((n, ni, ok)) = arg_index(b, i) {
                i = ni;
                reordered = true;
                if ok {
                    argi = n;
                } else {
                    bad_index = true;
                }
            }
            if i < b.len() && b[i] == b'*' {
                i += 1;
                match args.get(argi).and_then(int_arg) {
                    Some(p) if p >= 0 => f.prec = Some((p as usize).min(MAX_WIDTH)),
                    Some(_) => f.prec = None,
                    None => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let (n, ni) = parse_num(b, i);
                f.prec = Some(n.min(MAX_WIDTH));
                i = ni;
            }
        }
        if let Some((n, ni, ok)) = arg_index(b, i) {
            i = ni;
            reordered = true;
            if ok {
                argi = n;
            } else {
                bad_index = true;
            }
        }
        let Some(verb) = format[i..].chars().next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        fmt_arg(&mut out, arg, verb, f, 0);
    }
    if !reordered && argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[argi..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            match a {
                Value::Nil => out.push_str("<nil>"),
                _ => {
                    out.push_str(a.type_name());
                    out.push('=');
                    fmt_arg(&mut out, a, 'v', Flags::default(), 0);
                }
            }
        }
        out.push(')');
    }
    out
}

fn int_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Uint(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

fn parse_num(b: &[u8], mut i: usize) -> (usize, usize) {
    let mut n = 0usize;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(usize::from(b[i] - b'0'));
        i += 1;
    }
    (n, i)
}

/// `[n]` at `i`: the zero-based argument and the position after it.
fn arg_index(b: &[u8], i: usize) -> Option<(usize, usize, bool)> {
    if i >= b.len() || b[i] != b'[' {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b']' {
        j += 1;
    }
    if j >= b.len() {
        return Some((0, b.len(), false));
    }
    let (n, end) = parse_num(b, i + 1);
    if end != j || n == 0 {
        return Some((0, j + 1, false));
    }
    Some((n - 1, j + 1, true))
}

fn bad_verb(out: &mut String, v: &Value, verb: char) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    match v {
        Value::Nil => out.push_str("<nil>"),
        _ => {
            out.push_str(v.type_name());
            out.push('=');
            fmt_arg(out, v, 'v', Flags::default(), 0);
        }
    }
    out.push(')');
}

fn pad(out: &mut String, s: &str, f: Flags) {
    let n = s.chars().count();
    let w = f.width.unwrap_or(0);
    if n >= w {
        out.push_str(s);
        return;
    }
    let fill = w - n;
    if f.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if f.zero {
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(s);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// Pads a number: zeros go after the sign.
fn pad_number(out: &mut String, s: &str, f: Flags) {
    let w = f.width.unwrap_or(0);
    let n = s.chars().count();
    if f.zero && !f.minus && n < w {
        let (sign, digits) = match s.as_bytes().first() {
            Some(b'+' | b'-' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', w - n));
        out.push_str(digits);
        return;
    }
    let mut g = f;
    g.zero = false;
    pad(out, s, g);
}

fn fmt_arg(out: &mut String, v: &Value, verb: char, f: Flags, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.push_str("...");
        return;
    }
    if verb == 'T' {
        pad(out, v.type_name(), f);
        return;
    }
    if verb == 'v' && f.sharp {
        let mut s = String::new();
        go_syntax(&mut s, v, depth);
        pad(out, &s, f);
        return;
    }
    match v {
        Value::Nil => match verb {
            'v' => pad(out, "<nil>", f),
            _ => bad_verb(out, v, verb),
        },
        Value::Bool(b) => match verb {
            't' | 'v' => pad(out, if *b { "true" } else { "false" }, f),
            _ => bad_verb(out, v, verb),
        },
        Value::Int(i) => fmt_int(out, i128::from(*i), v, verb, f),
        Value::Uint(u) => fmt_int(out, i128::from(*u), v, verb, f),
        Value::Float(x) => fmt_float(out, *x, v, verb, f),
        Value::String(s) => fmt_str(out, s, v, verb, f),
        Value::Bytes(b) => match verb {
            's' | 'q' | 'x' | 'X' => {
                let s = String::from_utf8_lossy(b);
                fmt_str(out, &s, v, verb, f)
            }
            _ => {
                out.push('[');
                for (k, x) in b.iter().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    fmt_int(out, i128::from(*x), &Value::Uint(u64::from(*x)), verb, f);
                }
                out.push(']');
            }
        },
        Value::List(l) => {
            out.push('[');
            for (k, x) in l.iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                fmt_arg(out, x, verb, f, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (k, (key, x)) in m.entries().iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                fmt_str(out, key, &Value::String(key.clone()), verb, f);
                out.push(':');
                fmt_arg(out, x, verb, f, depth + 1);
            }
            out.push(']');
        }
        Value::Object(o) => match verb {
            'v' | 's' => pad(out, &o.display(), f),
            'q' => pad(out, &quote(&o.display()), f),
            _ => match o.to_value() {
                Some(inner) => fmt_arg(out, &inner, verb, f, depth + 1),
                None => bad_verb(out, v, verb),
            },
        },
    }
}

fn fmt_str(out: &mut String, s: &str, v: &Value, verb: char, f: Flags) {
    match verb {
        'v' | 's' => {
            let s: String = match f.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            pad(out, &s, f);
        }
        'q' => {
            let s: String = match f.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            let q = if f.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || is_print(c)) {
                format!("`{s}`")
            } else if f.plus {
                quote_ascii(&s)
            } else {
                quote(&s)
            };
            pad(out, &q, f);
        }
        'x' | 'X' => {
            let bytes = s.as_bytes();
            let bytes = match f.prec {
                Some(p) => &bytes[..p.min(bytes.len())],
                None => bytes,
            };
            let mut h = String::new();
            for (k, x) in bytes.iter().enumerate() {
                if f.space && k > 0 {
                    h.push(' ');
                }
                if f.sharp && (f.space || k == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{x:02x}"));
                } else {
                    h.push_str(&format!("{x:02X}"));
                }
            }
            pad(out, &h, f);
        }
        _ => bad_verb(out, v, verb),
    }
}

fn fmt_int(out: &mut String, i: i128, v: &Value, verb: char, f: Flags) {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut digits = match verb {
        'v' | 'd' => a.to_string(),
        'b' => format!("{a:b}"),
        'o' | 'O' => format!("{a:o}"),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            return pad(out, &c.to_string(), f);
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            return pad(out, &quote_rune(c), f);
        }
        'U' => {
            let mut s = format!("U+{a:04X}");
            if f.sharp
                && let Some(c) = u32::try_from(i).ok().and_then(char::from_u32)
                && is_print(c)
            {
                s.push_str(&format!(" '{c}'"));
            }
            return pad(out, &s, f);
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => return bad_verb(out, v, verb),
        _ => return bad_verb(out, v, verb),
    };
    if let Some(p) = f.prec {
        if p == 0 && a == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'b' if f.sharp => "0b",
        'o' if f.sharp && !digits.starts_with('0') => "0",
        'O' => "0o",
        'x' if f.sharp => "0x",
        'X' if f.sharp => "0X",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    };
    let s = format!("{sign}{prefix}{digits}");
    if f.prec.is_some() {
        let mut g = f;
        g.zero = false;
        pad(out, &s, g);
    } else if f.zero && !f.minus && f.width.is_some() {
        let w = f.width.unwrap_or(0);
        let body = format!("{prefix}{digits}");
        let n = sign.len() + body.len();
        out.push_str(sign);
        if n < w {
            out.extend(std::iter::repeat_n('0', w - n));
        }
        out.push_str(&body);
    } else {
        pad(out, &s, f);
    }
}

fn fmt_float(out: &mut String, x: f64, v: &Value, verb: char, f: Flags) {
    let body = match verb {
        'v' | 'g' | 'G' => match f.prec {
            None => format_g64(x),
            Some(p) => format_g_prec(x, p),
        },
        'f' | 'F' => {
            if x.is_finite() {
                format!("{:.*}", f.prec.unwrap_or(6), x)
            } else {
                format_g64(x)
            }
        }
        'e' | 'E' => {
            if x.is_finite() {
                format_e(x, f.prec.unwrap_or(6))
            } else {
                format_g64(x)
            }
        }
        'x' | 'X' if f.prec.is_none() => {
            if x.is_finite() {
                format_hex_float(x)
            } else {
                format_g64(x)
            }
        }
        _ => return bad_verb(out, v, verb),
    };
    let body = if verb == 'G' || verb == 'E' || verb == 'X' {
        body.to_uppercase()
    } else {
        body
    };
    let body = if f.plus && !body.starts_with(['-', '+']) {
        format!("+{body}")
    } else if f.space && !body.starts_with(['-', '+']) {
        format!(" {body}")
    } else {
        body
    };
    if x.is_finite() {
        pad_number(out, &body, f);
    } else {
        let mut g = f;
        g.zero = false;
        pad(out, &body, g);
    }
}

/// Go's `%#v`: the value in Go syntax.
fn go_syntax(out: &mut String, v: &Value, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::String(s) => out.push_str(&quote(s)),
        Value::Uint(u) => out.push_str(&format!("0x{u:x}")),
        Value::List(l) => {
            out.push_str("[]interface {}{");
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                go_syntax(out, x, depth + 1);
            }
            out.push('}');
        }
        Value::Map(m) => {
            out.push_str("map[string]interface {}{");
            for (i, (k, x)) in m.entries().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(k));
                out.push(':');
                go_syntax(out, x, depth + 1);
            }
            out.push('}');
        }
        Value::Bytes(b) => {
            out.push_str("[]byte{");
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&format!("0x{x:x}"));
            }
            out.push('}');
        }
        v => out.push_str(&v.go_string()),
    }
}

/// Go's `%x` of a float (`strconv.FormatFloat(x, 'x', -1, 64)`):
/// `0x1.8p+00`.
fn format_hex_float(x: f64) -> String {
    let neg = x.is_sign_negative();
    let bits = x.abs().to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    let sign = if neg { "-" } else { "" };
    if exp == 0 && mant == 0 {
        return format!("{sign}0x0p+00");
    }
    if exp == 0 {
        // Subnormal: normalize.
        exp = -1022;
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    } else {
        exp -= 1023;
    }
    let mut digits = format!("{mant:013x}");
    while digits.ends_with('0') {
        digits.pop();
    }
    let frac = if digits.is_empty() {
        String::new()
    } else {
        format!(".{digits}")
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}0x1{frac}p{esign}{:02}", exp.unsigned_abs())
}

/// `%.{prec}e`: Go's exponent has at least two digits.
fn format_e(x: f64, prec: usize) -> String {
    let s = format!("{x:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!(
        "{m}e{}{:02}",
        if e < 0 { '-' } else { '+' },
        e.unsigned_abs()
    )
}

/// Go's `%.{prec}g` (strconv 'g' with a precision).
fn format_g_prec(x: f64, prec: usize) -> String {
    if !x.is_finite() {
        return format_g64(x);
    }
    let prec = prec.max(1);
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rounded to `prec` significant digits.
    let s = format!("{:.*e}", prec - 1, x.abs());
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    let digits: String = m.chars().filter(|c| *c != '.').collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let neg = if x < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let p = (prec as i32).min(nd) - 1;
        let mut out = String::from(neg);
        out.push_str(&digits[..1]);
        if p > 0 {
            out.push('.');
            out.push_str(&digits[1..]);
            for _ in nd..=p {
                out.push('0');
            }
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
        return out;
    }
    let mut p = prec as i32;
    if p > dp {
        p = nd;
    }
    let frac = (p - dp).max(0) as usize;
    format!("{neg}{:.*}", frac, x.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_forms() {
        let s = |v: &str| Value::String(v.into());
        assert_eq!(sprintf("%s-%d", &[s("a"), Value::Int(3)]), "a-3");
        assert_eq!(sprintf("%d", &[Value::Float(80.0)]), "%!d(float64=80)");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(
            sprintf("%v %v", &[Value::Float(1e6), Value::Float(1.5)]),
            "1e+06 1.5"
        );
        assert_eq!(
            sprintf("%05d|%-4s|%4s", &[Value::Int(-42), s("ab"), s("ab")]),
            "-0042|ab  |  ab"
        );
        assert_eq!(
            sprintf(
                "%.2f %e %g",
                &[
                    Value::Float(2.5187),
                    Value::Float(1234.5),
                    Value::Float(1e-7)
                ]
            ),
            "2.52 1.234500e+03 1e-07"
        );
        assert_eq!(
            sprintf(
                "%q %x %X %o %b",
                &[
                    s("a\"b"),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5)
                ]
            ),
            "\"a\\\"b\" ff FF 10 101"
        );
        assert_eq!(sprintf("%d", &[]), "%!d(MISSING)");
        assert_eq!(
            sprintf("x", &[Value::Int(1), s("a")]),
            "x%!(EXTRA int=1, string=a)"
        );
        assert_eq!(
            sprintf(
                "%.3g|%.3g|%.10g",
                &[Value::Float(1234.0), Value::Float(0.5), Value::Float(1.5)]
            ),
            "1.23e+03|0.5|1.5"
        );
        assert_eq!(sprintf("%[2]s %[1]s", &[s("a"), s("b")]), "b a");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), s("a"), Value::Int(3)]),
            "1 2a3"
        );
        assert_eq!(
            sprintf(
                "%6.2f|%t|%T",
                &[Value::Float(2.5187), Value::Bool(true), Value::list(vec![])]
            ),
            "  2.52|true|[]interface {}"
        );
    }
}
