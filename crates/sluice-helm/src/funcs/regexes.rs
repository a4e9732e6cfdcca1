//! sprig's regular expressions (`regex.go`) with Go's RE2 syntax through
//! the `regex` crate (RE2-compatible). Go's `\d`, `\w`, `\s` and `\b` are
//! ASCII-only; the pattern is rewritten so that they stay so here. Go's
//! `$1`/`${name}` expansion in replacements is the crate's too.

use regex::{NoExpand, Regex, RegexBuilder};

use super::{FuncResult, Spec, Value, arg_int, arg_str, failed, s, spec};
use crate::template::FuncError;

pub(super) const FUNCS: &[Spec] = &[
    spec!("regexMatch", 2, Some(2), |a| {
        let (re, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
        Ok(Value::Bool(compile(re).is_ok_and(|r| r.is_match(v))))
    }),
    spec!("mustRegexMatch", 2, Some(2), |a| {
        let (re, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
        Ok(Value::Bool(compile(re)?.is_match(v)))
    }),
    spec!("regexFindAll", 3, Some(3), find_all),
    spec!("mustRegexFindAll", 3, Some(3), find_all),
    spec!("regexFind", 2, Some(2), find),
    spec!("mustRegexFind", 2, Some(2), find),
    spec!("regexReplaceAll", 3, Some(3), |a| replace(a, false)),
    spec!("mustRegexReplaceAll", 3, Some(3), |a| replace(a, false)),
    spec!("regexReplaceAllLiteral", 3, Some(3), |a| replace(a, true)),
    spec!("mustRegexReplaceAllLiteral", 3, Some(3), |a| replace(
        a, true
    )),
    spec!("regexSplit", 3, Some(3), split),
    spec!("mustRegexSplit", 3, Some(3), split),
    spec!("regexQuoteMeta", 1, Some(1), |a| Ok(s(quote_meta(
        arg_str(a, 0)?
    )))),
];

/// Compiles a Go regular expression; the error reads as Go's
/// `error parsing regexp: ...` (the detail is the `regex` crate's).
pub(crate) fn compile(re: &str) -> Result<Regex, FuncError> {
    RegexBuilder::new(&go_to_rust(re))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim().to_string();
            failed(format!("error parsing regexp: {last}: `{re}`"))
        })
}

/// Rewrites Go's ASCII-only Perl classes and word boundaries (Unicode in
/// the `regex` crate) outside and inside bracket expressions.
fn go_to_rust(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 16);
    let mut chars = re.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let rep = match (n, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('d', true) => Some("0-9"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some("[\\t\\n\\f\\r ]"),
                    ('s', true) => Some("\\t\\n\\f\\r "),
                    ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    _ => None,
                };
                match rep {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A leading ']' is a literal in Go.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
                // A POSIX class such as [:alpha:] is copied by the loop.
                continue;
            }
            '[' if in_class => {
                // `[:alpha:]` inside a class; a lone '[' is a literal in Go.
                if chars.peek() == Some(&':') {
                    out.push('[');
                } else {
                    out.push_str("\\[");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            ':' if in_class => {
                out.push(':');
                if chars.peek() == Some(&']') {
                    // end of a POSIX class
                    chars.next();
                    out.push(']');
                }
            }
            '&' | '~' | '-' if in_class && !class_start => {
                // The regex crate reads `&&`, `~~` and `--` as set
                // operations; Go reads them literally (a '-' range stays).
                if c != '-' && chars.peek() == Some(&c) {
                    out.push('\\');
                }
                out.push(c);
            }
            other => out.push(other),
        }
        class_start = false;
    }
    out
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn find(a: &[Value]) -> FuncResult {
    let (re, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
    let r = compile(re)?;
    Ok(s(r.find(v).map(|m| m.as_str()).unwrap_or("")))
}

fn find_all(a: &[Value]) -> FuncResult {
    let (re, v, n) = (arg_str(a, 0)?, arg_str(a, 1)?, arg_int(a, 2)?);
    let r = compile(re)?;
    let limit = if n < 0 { usize::MAX } else { n as usize };
    Ok(Value::list(
        r.find_iter(v).take(limit).map(|m| s(m.as_str())).collect(),
    ))
}

fn replace(a: &[Value], literal: bool) -> FuncResult {
    let (re, v, repl) = (arg_str(a, 0)?, arg_str(a, 1)?, arg_str(a, 2)?);
    let r = compile(re)?;
    // Count first: a replacement per (empty) match can be large. An
    // expanded `$1` is at most the input long.
    let n = r.find_iter(v).count() as u128;
    let per = if literal || !repl.contains('$') {
        repl.len() as u128
    } else {
        repl.len() as u128 + v.len() as u128 * repl.matches('$').count() as u128
    };
    super::check_len("regexReplaceAll", v.len() as u128 + n * per)?;
    let out = if literal {
        r.replace_all(v, NoExpand(repl)).into_owned()
    } else {
        r.replace_all(v, repl).into_owned()
    };
    super::check_len("regexReplaceAll", out.len() as u128)?;
    Ok(s(out))
}

/// Go's `Regexp.Split`.
fn split(a: &[Value]) -> FuncResult {
    let (re, v, n) = (arg_str(a, 0)?, arg_str(a, 1)?, arg_int(a, 2)?);
    let r = compile(re)?;
    if n == 0 {
        return Ok(Value::list(Vec::new()));
    }
    if !re.is_empty() && v.is_empty() {
        return Ok(Value::list(vec![s("")]));
    }
    let limit = if n < 0 { usize::MAX } else { n as usize };
    let mut out: Vec<Value> = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in r.find_iter(v).take(limit) {
        if n > 0 && out.len() == limit - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            out.push(s(&v[beg..end]));
        }
        beg = m.end();
    }
    if end != v.len() {
        out.push(s(&v[beg..]));
    }
    Ok(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_classes() {
        let r = compile(r"^\d+$").unwrap();
        assert!(r.is_match("123"));
        assert!(!r.is_match("١٢٣"));
        let r = compile(r"[\w-]+").unwrap();
        assert_eq!(r.find("ab-c é").unwrap().as_str(), "ab-c");
        assert!(compile(r"[[:alpha:]]+").unwrap().is_match("abc"));
        assert!(compile(r"[a&&b]").unwrap().is_match("&"));
    }
}
