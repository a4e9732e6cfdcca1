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
    spec!("regexFindAll", 3, Some(3), |a| find_all(a, Panics)),
    spec!("mustRegexFindAll", 3, Some(3), |a| find_all(a, Returns)),
    spec!("regexFind", 2, Some(2), |a| find(a, Panics)),
    spec!("mustRegexFind", 2, Some(2), |a| find(a, Returns)),
    spec!("regexReplaceAll", 3, Some(3), |a| replace(a, false, Panics)),
    spec!("mustRegexReplaceAll", 3, Some(3), |a| replace(
        a, false, Returns
    )),
    spec!("regexReplaceAllLiteral", 3, Some(3), |a| replace(
        a, true, Panics
    )),
    spec!("mustRegexReplaceAllLiteral", 3, Some(3), |a| replace(
        a, true, Returns
    )),
    spec!("regexSplit", 3, Some(3), |a| split(a, Panics)),
    spec!("mustRegexSplit", 3, Some(3), |a| split(a, Returns)),
    spec!("regexQuoteMeta", 1, Some(1), |a| Ok(s(quote_meta(
        arg_str(a, 0)?
    )))),
];

/// How a function meets an expression that does not compile: sprig's plain forms call
/// `regexp.MustCompile`, whose panic text names the expression; the `must` forms (and
/// `mustRegexMatch`) return `regexp.Compile`'s error.
#[derive(Clone, Copy)]
enum OnError {
    Panics,
    Returns,
}
use OnError::{Panics, Returns};

/// Compiles a Go regular expression; the error reads as Go's
/// `error parsing regexp: ...` (the detail is the `regex` crate's, but for the bracket
/// expressions Go refuses, which read as Go's).
pub(crate) fn compile(re: &str) -> Result<Regex, FuncError> {
    let translated = go_to_rust(re)
        .map_err(|(code, what)| failed(format!("error parsing regexp: {code}: `{what}`")))?;
    RegexBuilder::new(&translated)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim().to_string();
            failed(format!("error parsing regexp: {last}: `{re}`"))
        })
}

/// [`compile`], with `regexp.MustCompile`'s panic text where `on` says so.
fn compile_for(re: &str, on: OnError) -> Result<Regex, FuncError> {
    compile(re).map_err(|e| match (on, e) {
        (Panics, FuncError::Failed(m)) => failed(format!(
            "regexp: Compile({}): {m}",
            super::go::backquote(re)
        )),
        (_, e) => e,
    })
}

/// Rewrites a Go (RE2) expression for the `regex` crate: Go's Perl classes and word
/// boundaries are ASCII (Unicode in the crate), and a bracket expression is read with
/// Go's grammar, item by item (see [`class`]).
///
/// Err: Go's error code and the text it names, for what Go refuses in a bracket expression.
fn go_to_rust(re: &str) -> Result<String, (&'static str, String)> {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    out.push('\\');
                    break;
                };
                i += 2;
                match n {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str("[\\t\\n\\f\\r ]"),
                    'S' => out.push_str("[^\\t\\n\\f\\r ]"),
                    'b' => out.push_str("(?-u:\\b)"),
                    'B' => out.push_str("(?-u:\\B)"),
                    n => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' => i = class(&chars, i, &mut out)?,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Go's POSIX class names (`[:alpha:]`); the crate knows the same ones.
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Copies the bracket expression that starts at `chars[at]` (a `[`) to `out` and returns
/// the index past it. Go reads it as a sequence of items: a POSIX class, a Unicode class
/// (`\pL`), a Perl class (`\w`), or one character with an optional `-` and a last one. So a
/// `-` that does not follow a single character is a literal (`[\w-.]`), where the crate
/// would read a range or its `--` set difference: every literal `-`, `&`, `~` and `[` is
/// escaped here, and only Go's ranges keep a bare `-`.
fn class(chars: &[char], at: usize, out: &mut String) -> Result<usize, (&'static str, String)> {
    let mut i = at + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    while let Some(&c) = chars.get(i) {
        if c == ']' && !first {
            out.push(']');
            return Ok(i + 1);
        }
        first = false;
        // `[:alpha:]` and `[:^alpha:]`.
        if c == '['
            && chars.get(i + 1) == Some(&':')
            && let Some(len) = posix_class(&chars[i..])?
        {
            out.extend(&chars[i..i + len]);
            i += len;
            continue;
        }
        if c == '\\' {
            match chars.get(i + 1) {
                Some('p' | 'P') => {
                    // `\pL` or `\p{Greek}`, as the crate reads them.
                    let end = if chars.get(i + 2) == Some(&'{') {
                        chars[i..]
                            .iter()
                            .position(|&c| c == '}')
                            .map_or(chars.len(), |p| i + p + 1)
                    } else {
                        (i + 3).min(chars.len())
                    };
                    out.extend(&chars[i..end]);
                    i = end;
                    continue;
                }
                Some(&n @ ('d' | 'D' | 'w' | 'W' | 's' | 'S')) => {
                    out.push_str(match n {
                        'd' => "0-9",
                        'D' => "[^0-9]",
                        'w' => "0-9A-Za-z_",
                        'W' => "[^0-9A-Za-z_]",
                        's' => "\\t\\n\\f\\r ",
                        _ => "[^\\t\\n\\f\\r ]",
                    });
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        // One character, and a range when `-` and a character other than `]` follow.
        let lo_at = i;
        i = class_char(chars, i, out);
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
            out.push('-');
            let hi_at = i + 1;
            i = class_char(chars, hi_at, out);
            if let (Some(lo), Some(hi)) = (plain_char(&chars[lo_at..]), plain_char(&chars[hi_at..]))
                && hi < lo
            {
                return Err((
                    "invalid character class range",
                    chars[lo_at..i].iter().collect(),
                ));
            }
        }
    }
    // Unterminated: the crate reports it.
    Ok(i)
}

/// The character a bracket expression's item starts with, when it is a plain one or an
/// escaped punctuation character (other escapes are left to the crate).
fn plain_char(chars: &[char]) -> Option<char> {
    match chars {
        ['\\', c, ..] if c.is_ascii_punctuation() => Some(*c),
        ['\\', ..] => None,
        [c, ..] => Some(*c),
        [] => None,
    }
}

/// Copies one character of a bracket expression (an escape as it is, a literal the crate
/// would read otherwise escaped) and returns the index past it.
fn class_char(chars: &[char], at: usize, out: &mut String) -> usize {
    match chars[at] {
        '\\' => match chars.get(at + 1) {
            Some(&n) => {
                out.push('\\');
                out.push(n);
                at + 2
            }
            None => {
                out.push('\\');
                at + 1
            }
        },
        c @ ('-' | '&' | '~' | '[' | ']') => {
            out.push('\\');
            out.push(c);
            at + 1
        }
        c => {
            out.push(c);
            at + 1
        }
    }
}

/// The length of the POSIX class `[:name:]` or `[:^name:]` that `chars` starts with; `None`
/// when no `:]` follows (then `[` is a literal), and Go's error when the name is not one Go
/// knows.
fn posix_class(chars: &[char]) -> Result<Option<usize>, (&'static str, String)> {
    let Some(close) = chars
        .windows(2)
        .skip(2)
        .position(|w| w == [':', ']'])
        .map(|p| p + 2)
    else {
        return Ok(None);
    };
    let len = close + 2;
    let body_start = if chars.get(2) == Some(&'^') { 3 } else { 2 };
    let name: String = chars[body_start..close].iter().collect();
    if POSIX_CLASSES.contains(&name.as_str()) {
        Ok(Some(len))
    } else {
        Err((
            "invalid character class range",
            chars[..len].iter().collect(),
        ))
    }
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

fn find(a: &[Value], on: OnError) -> FuncResult {
    let (re, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
    let r = compile_for(re, on)?;
    Ok(s(r.find(v).map(|m| m.as_str()).unwrap_or("")))
}

fn find_all(a: &[Value], on: OnError) -> FuncResult {
    let (re, v, n) = (arg_str(a, 0)?, arg_str(a, 1)?, arg_int(a, 2)?);
    let r = compile_for(re, on)?;
    let limit = if n < 0 { usize::MAX } else { n as usize };
    Ok(Value::list(
        r.find_iter(v).take(limit).map(|m| s(m.as_str())).collect(),
    ))
}

fn replace(a: &[Value], literal: bool, on: OnError) -> FuncResult {
    let (re, v, repl) = (arg_str(a, 0)?, arg_str(a, 1)?, arg_str(a, 2)?);
    let r = compile_for(re, on)?;
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
fn split(a: &[Value], on: OnError) -> FuncResult {
    let (re, v, n) = (arg_str(a, 0)?, arg_str(a, 1)?, arg_int(a, 2)?);
    let r = compile_for(re, on)?;
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

    #[test]
    fn bracket_expressions_are_read_as_go_reads_them() {
        // (expression, matches, does not match): Go's results.
        for (re, yes, no) in [
            // A `-` after a Perl class is a literal (redis-ha's `^[\w-\.]+$`).
            (r"^[\w-\.]+$", "my-master.1", "a b"),
            (r"^[\d-z]+$", "1-z", "y"),
            // After a range, a `-` is a literal too.
            (r"^[a-c-e]+$", "a-e", "d"),
            // A range ending in `-`; `--` is no set difference.
            (r"^[!--]+$", "!,-", "."),
            // First and last `-`, a leading `]`, a `[` that starts no POSIX class.
            (r"^[-a]+$", "-a", "b"),
            (r"^[a-]+$", "a-", "b"),
            (r"^[]a]+$", "]a", "b"),
            (r"^[[a]+$", "[a", "b"),
            (r"^[[:alpha:]-]+$", "ab-", "1"),
            (r"^[[:^digit:]]+$", "ab", "1"),
            (r"^[^\s]+$", "ab", "a b"),
            (r"^[\D]+$", "ab", "1"),
            (r"^[\pL-]+$", "é-", "1"),
            (r"^[~&]+$", "~&", "a"),
        ] {
            let r = compile(re).unwrap_or_else(|e| panic!("{re}: {e}"));
            assert!(r.is_match(yes), "{re} matches {yes:?}");
            assert!(!r.is_match(no), "{re} does not match {no:?}");
        }
        // Go refuses a range whose end is before its start, and so does the crate.
        assert!(compile(r"[z-a]").is_err());
        assert!(compile(r"[a--]").is_err());
    }
}
