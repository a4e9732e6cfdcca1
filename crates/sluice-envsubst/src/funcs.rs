//! The string operators, selected by the operator token as Flux does.
//!
//! Notable reference behaviours kept on purpose (sluice must render exactly
//! what Flux renders):
//! - every default-style operator (`=`, `:=`, `:-`, `:?`, `:+`) means
//!   "the value, or the concatenated arguments when the value is empty";
//!   in particular `${var:+alt}` is *not* bash's "alt when set";
//! - `${#var}` and `${var:pos:len}` count bytes, not characters;
//! - `${var/#pat/}` and `${var/%pat/}` (empty replacement) leave the value
//!   unchanged, while `${var/pat/}` and `${var//pat/}` delete;
//! - suffix trimming reverses both value and pattern, so character classes
//!   in `%`/`%%` patterns are effectively unusable;
//! - upper/lower casing uses one-to-one (simple) case mappings.

use std::borrow::Cow;

use crate::glob;

/// True for operators that tolerate an unset variable in strict mode.
pub(crate) fn is_default_op(op: &str) -> bool {
    matches!(op, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?")
}

/// An upper bound of the length of `apply(op, s, args)`, computed without
/// building it: only a replace-all (`//`) can multiply its input, once per
/// match (an empty pattern matches at every character boundary).
pub(crate) fn output_bound(op: &str, s: &str, args: &[String]) -> usize {
    let arg_len = args
        .iter()
        .map(String::len)
        .fold(0usize, usize::saturating_add);
    match op {
        "//" => {
            let (from, to) = match args {
                [] => return s.len(),
                [from] => (from.as_str(), ""),
                [from, to, ..] => (from.as_str(), to.as_str()),
            };
            let hits = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(from).count()
            };
            s.len().saturating_add(hits.saturating_mul(to.len()))
        }
        // One replacement at most, or a default: the value plus the arguments.
        _ => s.len().saturating_add(arg_len).max(20),
    }
}

/// Applies operator `op` to value `s` with evaluated `args`.
pub(crate) fn apply<'a>(op: &str, s: &'a str, args: &[String]) -> Cow<'a, str> {
    match op {
        "," => Cow::Owned(map_first(s, simple_lower)),
        ",," => Cow::Owned(s.chars().map(simple_lower).collect()),
        "^" => Cow::Owned(map_first(s, simple_upper)),
        "^^" => Cow::Owned(s.chars().map(simple_upper).collect()),
        "#" if args.is_empty() => Cow::Owned(s.len().to_string()),
        "#" => trim_prefix(s, args, Shortest),
        "##" => trim_prefix(s, args, Longest),
        "%" => trim_suffix(s, args, Shortest),
        "%%" => trim_suffix(s, args, Longest),
        ":" => substr(s, args),
        "/#" => replace_prefix(s, args),
        "/%" => replace_suffix(s, args),
        "/" => replace(s, args, Some(1)),
        "//" => replace(s, args, None),
        _ => to_default(s, args),
    }
}

fn simple_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn simple_lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn map_first(s: &str, f: fn(char) -> char) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => {
            let mut out = String::with_capacity(s.len());
            out.push(f(c));
            out.push_str(chars.as_str());
            out
        }
        None => String::new(),
    }
}

fn to_default<'a>(s: &'a str, args: &[String]) -> Cow<'a, str> {
    if s.is_empty() && !args.is_empty() {
        Cow::Owned(args.concat())
    } else {
        Cow::Borrowed(s)
    }
}

/// Go's `strconv.Atoi`: optional sign, ASCII decimal digits, 64-bit range.
fn atoi(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// Byte slice of `s`; a cut through a UTF-8 sequence is repaired lossily
/// (Flux would emit the raw bytes).
fn byte_slice(s: &str, from: i64, to: i64) -> Cow<'_, str> {
    let (from, to) = (from.max(0) as usize, to.max(0) as usize);
    match s.as_bytes().get(from..to) {
        Some(b) => String::from_utf8_lossy(b),
        None => Cow::Borrowed(""),
    }
}

fn substr<'a>(s: &'a str, args: &[String]) -> Cow<'a, str> {
    let Some(first) = args.first() else {
        return Cow::Borrowed(s);
    };
    let Some(mut pos) = atoi(first) else {
        // bash returns the value when the offset does not parse.
        return Cow::Borrowed(s);
    };
    let len = s.len() as i64;
    if pos < 0 {
        pos = len.saturating_add(pos).max(0);
    }
    let Some(second) = args.get(1) else {
        return if pos < len {
            byte_slice(s, pos, len)
        } else {
            Cow::Borrowed("")
        };
    };
    let Some(length) = atoi(second) else {
        return Cow::Borrowed(s);
    };
    if length < 0 {
        // A negative length counts back from the end.
        let end = len.saturating_add(length);
        if end < pos {
            return Cow::Borrowed("");
        }
        return byte_slice(s, pos, end);
    }
    if pos.saturating_add(length) >= len {
        return if pos < len {
            byte_slice(s, pos, len)
        } else {
            Cow::Borrowed("")
        };
    }
    byte_slice(s, pos, pos + length)
}

fn replace<'a>(s: &'a str, args: &[String], n: Option<usize>) -> Cow<'a, str> {
    let (from, to) = match args {
        [] => return Cow::Borrowed(s),
        [from] => (from.as_str(), ""),
        [from, to, ..] => (from.as_str(), to.as_str()),
    };
    match n {
        Some(n) => Cow::Owned(s.replacen(from, to, n)),
        None => Cow::Owned(s.replace(from, to)),
    }
}

fn replace_prefix<'a>(s: &'a str, args: &[String]) -> Cow<'a, str> {
    let [from, to] = args else {
        return Cow::Borrowed(s);
    };
    match s.strip_prefix(from.as_str()) {
        Some(rest) => Cow::Owned(format!("{to}{rest}")),
        None => Cow::Borrowed(s),
    }
}

fn replace_suffix<'a>(s: &'a str, args: &[String]) -> Cow<'a, str> {
    let [from, to] = args else {
        return Cow::Borrowed(s);
    };
    match s.strip_suffix(from.as_str()) {
        Some(rest) => Cow::Owned(format!("{rest}{to}")),
        None => Cow::Borrowed(s),
    }
}

#[derive(Clone, Copy)]
enum Which {
    Shortest,
    Longest,
}
use Which::{Longest, Shortest};

/// Removes the shortest or longest non-empty prefix of `s` matching `pat`.
/// Any pattern error leaves `s` unchanged. Candidate prefixes end on
/// character boundaries (the reference also tries cuts inside a UTF-8
/// sequence, which can only produce invalid output).
fn trim(s: &str, pat: &str, which: Which) -> String {
    if let Some(hits) = glob::prefix_matches(pat, s) {
        // Linear fast path; identical results (see glob tests).
        let mut ends = (1..hits.len()).filter(|&k| hits[k]);
        let end = match which {
            Shortest => ends.next(),
            Longest => ends.next_back(),
        };
        return end.map_or_else(|| s.to_owned(), |e| s[e..].to_owned());
    }
    let mut found: Option<usize> = None;
    for end in (1..=s.len()).rev().filter(|&e| s.is_char_boundary(e)) {
        match glob::matches(pat, &s[..end]) {
            Err(_) => return s.to_owned(),
            Ok(true) => {
                found = Some(end);
                if let Longest = which {
                    break;
                }
            }
            Ok(false) => {}
        }
    }
    match found {
        Some(end) => s[end..].to_owned(),
        None => s.to_owned(),
    }
}

fn trim_prefix<'a>(s: &'a str, args: &[String], which: Which) -> Cow<'a, str> {
    match args.first() {
        Some(pat) => Cow::Owned(trim(s, pat, which)),
        None => Cow::Borrowed(s),
    }
}

fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

fn trim_suffix<'a>(s: &'a str, args: &[String], which: Which) -> Cow<'a, str> {
    match args.first() {
        Some(pat) => Cow::Owned(reverse(&trim(&reverse(s), &reverse(pat), which))),
        None => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn operators() {
        let cases: &[(&str, &str, &[&str], &str)] = &[
            ("", "abc", &[], "abc"),
            ("", "", &["x", "y"], "xy"),
            (":-", "", &["x", "y"], "xy"),
            (":-", "v", &["x"], "v"),
            (":+", "v", &["alt"], "v"),
            (":+", "", &["alt"], "alt"),
            ("=", "", &["d"], "d"),
            (":?", "", &["msg"], "msg"),
            ("#", "héllo", &[], "6"),
            (",", "ABC", &[], "aBC"),
            (",,", "ABC", &[], "abc"),
            ("^", "élan", &[], "Élan"),
            ("^^", "straße", &[], "STRAßE"),
            (",^", "abc", &[], "abc"),
            (":", "/home/bozo/ideas", &["11"], "ideas"),
            (":", "abcdef", &["1", "3"], "bcd"),
            (":", "abcdef", &["-2"], "ef"),
            (":", "abcdef", &["-10"], "abcdef"),
            (":", "abcdef", &["10"], ""),
            (":", "abcdef", &["4", "10"], "ef"),
            (":", "abcdef", &["10", "1"], ""),
            (":", "abcdef", &["1", "-1"], "bcde"),
            (":", "abcdef", &["4", "-3"], ""),
            (":", "abcdef", &["x"], "abcdef"),
            (":", "abcdef", &["1", "y"], "abcdef"),
            (":", "abcdef", &[" 1"], "abcdef"),
            (":", "abcdef", &["+1"], "bcdef"),
            (
                ":",
                "abcdef",
                &["9223372036854775807", "9223372036854775807"],
                "",
            ),
            (":", "abcdef", &["-9223372036854775808"], "abcdef"),
            (":", "é", &["1"], "\u{FFFD}"),
            ("/", "abcabc", &["b", "X"], "aXcabc"),
            ("//", "abcabc", &["b", "X"], "aXcaXc"),
            ("//", "abcabc", &["b"], "acac"),
            ("/", "abc", &["", "X"], "Xabc"),
            ("//", "abc", &["", "-"], "-a-b-c-"),
            ("/#", "abcabc", &["abc", "X"], "Xabc"),
            ("/#", "abcabc", &["bc", "X"], "abcabc"),
            ("/#", "abc", &["a"], "abc"),
            ("/#", "abc", &["", "p-"], "p-abc"),
            ("/%", "abcabc", &["abc", "X"], "abcX"),
            ("/%", "abc", &["", "-s"], "abc-s"),
            ("/%", "abc", &["c"], "abc"),
            ("#", "bash.string.txt", &["*."], "string.txt"),
            ("##", "bash.string.txt", &["*."], "txt"),
            ("%", "bash.string.txt", &[".*"], "bash.string"),
            ("%%", "bash.string.txt", &[".*"], "bash"),
            ("#", "path/to/file", &["*/"], "to/file"),
            ("##", "path/to/file", &["*/"], "file"),
            ("##", "/path/to/file", &["*/"], "file"),
            ("#", "abc", &["x*"], "abc"),
            ("#", "abc", &["["], "abc"),
            ("#", "abc", &["*"], "bc"),
            ("##", "abc", &["*"], ""),
            ("#", "v1.2.3", &["v"], "1.2.3"),
            ("%", "image:tag", &[":*"], "image"),
            ("%", "abc", &["[c]"], "abc"),
            ("#", "", &["*"], ""),
        ];
        for (op, v, args, want) in cases {
            assert_eq!(
                apply(op, v, &a(args)),
                *want,
                "op {op:?} value {v:?} args {args:?}"
            );
        }
    }

    #[test]
    fn default_ops() {
        for op in ["-", "+", "=", "?", ":-", ":+", ":=", ":?"] {
            assert!(is_default_op(op), "{op}");
        }
        for op in ["", "#", "##", ":", "/", "^", ","] {
            assert!(!is_default_op(op), "{op}");
        }
    }
}
