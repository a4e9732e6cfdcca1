//! Shell-style pattern matching used by `${var#pat}` and friends.
//!
//! Flux (via drone/envsubst) uses a copy of Go's `path.Match` with the
//! special treatment of `/` removed: `*` matches any run of bytes and `?`
//! any single character, slashes included. The algorithm is the classic
//! chunk-based one (no backtracking across stars), which bounds the cost of
//! one match to O(len(pattern) * len(name)) and also defines which inputs
//! match — a chunk after a star is taken at its first matching position.
//!
//! Syntax:
//!
//! ```text
//! pattern:  { term }
//! term:     '*'            any sequence of characters
//!           '?'            any single character
//!           '[' [ '^' ] { range } ']'
//!           c              the character c (c != '*', '?', '\\', '[')
//!           '\\' c         the character c
//! range:    c | '\\' c | lo '-' hi
//! ```
//!
//! Malformed patterns are reported lazily, only when the matcher reaches
//! the malformed part, as in the reference.

/// The pattern is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Decodes one character from `s` (non-empty). Invalid UTF-8 (which can
/// appear after byte-wise chunk matching) decodes as U+FFFD of width 1.
fn decode(s: &[u8]) -> (char, usize) {
    let want = match s.first() {
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(b) if *b >= 0xC0 => 2,
        _ => return (char::REPLACEMENT_CHARACTER, 1),
    };
    match s.get(..want).and_then(|b| std::str::from_utf8(b).ok()) {
        Some(st) => match st.chars().next() {
            Some(c) => (c, want),
            None => (char::REPLACEMENT_CHARACTER, 1),
        },
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

/// Reports whether all of `name` matches `pattern`.
pub(crate) fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing star matches the remainder (slashes included).
            return Ok(true);
        }
        // Try the chunk at the current position.
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if err {
            return Err(BadPattern);
        }
        if star {
            // Try again skipping i+1 bytes.
            for i in 0..name.len() {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    // The last chunk must consume the rest of the name.
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                if err {
                    return Err(BadPattern);
                }
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the leading stars and the following star-free chunk.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let Some((b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // A trailing lone backslash is reported by match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches `chunk` against a prefix of `s`. Returns the unmatched rest of
/// `s`, whether it matched, and whether the chunk was malformed.
fn match_chunk<'s>(mut chunk: &[u8], mut s: &'s [u8]) -> (&'s [u8], bool, bool) {
    const FAIL: (&[u8], bool, bool) = (&[], false, false);
    const BAD: (&[u8], bool, bool) = (&[], false, true);
    while let Some(&c0) = chunk.first() {
        if s.is_empty() {
            return FAIL;
        }
        match c0 {
            b'[' => {
                let (r, n) = decode(s);
                s = &s[n..];
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Ok((lo, rest)) = get_esc(chunk) else {
                        return BAD;
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let Ok((h, rest)) = get_esc(&chunk[1..]) else {
                            return BAD;
                        };
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    return FAIL;
                }
            }
            b'?' => {
                let (_, n) = decode(s);
                s = &s[n..];
                chunk = &chunk[1..];
            }
            _ => {
                let lit = if c0 == b'\\' {
                    chunk = &chunk[1..];
                    match chunk.first() {
                        Some(&b) => b,
                        None => return BAD,
                    }
                } else {
                    c0
                };
                if lit != s[0] {
                    return FAIL;
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
        }
    }
    (s, true, false)
}

/// Reads one (possibly escaped) character of a character class. The rest
/// must be non-empty (a class needs its closing `]`).
fn get_esc(mut chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode(chunk);
    if r == char::REPLACEMENT_CHARACTER && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// One element of a compiled, well-formed ASCII pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Lit(u8),
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// Reads one class member for [`compile_ascii`], mirroring [`get_esc`].
fn class_char(p: &[u8], i: &mut usize) -> Option<u8> {
    let mut c = *p.get(*i)?;
    if c == b'-' || c == b']' {
        return None;
    }
    if c == b'\\' {
        *i += 1;
        c = *p.get(*i)?;
    }
    *i += 1;
    // A class member must be followed by more pattern (at least `]`).
    if *i >= p.len() {
        return None;
    }
    Some(c)
}

/// Compiles an ASCII pattern that can never make the matcher report an
/// error. `None` for anything else (the caller then uses [`matches`]).
fn compile_ascii(pattern: &str) -> Option<Vec<Token>> {
    let p = pattern.as_bytes();
    if !p.is_ascii() {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            b'?' => {
                out.push(Token::Any);
                i += 1;
            }
            b'\\' => {
                out.push(Token::Lit(*p.get(i + 1)?));
                i += 2;
            }
            b'[' => {
                i += 1;
                let negated = p.get(i) == Some(&b'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if p.get(i) == Some(&b']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(p, &mut i)?;
                    let mut hi = lo;
                    if p.get(i) == Some(&b'-') {
                        i += 1;
                        hi = class_char(p, &mut i)?;
                    }
                    ranges.push((lo, hi));
                }
                out.push(Token::Class { negated, ranges });
            }
            c => {
                out.push(Token::Lit(c));
                i += 1;
            }
        }
    }
    Some(out)
}

/// For an ASCII `name` and a well-formed ASCII `pattern`, which prefixes
/// of `name` the pattern matches: element `k` is `matches(pattern,
/// &name[..k])`. One NFA pass, O(len(name) * len(pattern)). `None` when
/// the fast path does not apply (non-ASCII input or a pattern the
/// reference would reject somewhere).
///
/// For well-formed patterns over ASCII every token consumes exactly one
/// byte, where the reference's chunk algorithm (leftmost match of each
/// chunk after a star) agrees with plain glob semantics; the unit tests
/// check this against [`matches`].
pub(crate) fn prefix_matches(pattern: &str, name: &str) -> Option<Vec<bool>> {
    if !name.is_ascii() {
        return None;
    }
    let toks = compile_ascii(pattern)?;
    let n = toks.len();
    let close = |set: &mut Vec<bool>| {
        for k in 0..n {
            if set[k] && toks[k] == Token::Star {
                set[k + 1] = true;
            }
        }
    };
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    close(&mut cur);
    let mut out = Vec::with_capacity(name.len() + 1);
    out.push(cur[n]);
    let mut next = vec![false; n + 1];
    for &c in name.as_bytes() {
        next.iter_mut().for_each(|x| *x = false);
        for k in 0..n {
            if !cur[k] {
                continue;
            }
            let ok = match &toks[k] {
                Token::Star => {
                    next[k] = true;
                    continue;
                }
                Token::Any => true,
                Token::Lit(l) => *l == c,
                Token::Class { negated, ranges } => {
                    ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
                }
            };
            if ok {
                next[k + 1] = true;
            }
        }
        close(&mut next);
        std::mem::swap(&mut cur, &mut next);
        out.push(cur[n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*", "a/b/c", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(true)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a?b", "a/b", Ok(true)),
            ("*.", "bash.", Ok(true)),
            ("*.", "bash.string", Ok(false)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("*x", "xxx", Ok(true)),
            // Lazy error detection: the bad class is never reached.
            ("a[", "x", Ok(false)),
        ];
        for (pat, name, want) in cases {
            assert_eq!(matches(pat, name), *want, "pattern {pat:?} name {name:?}");
        }
    }

    /// The fast prefix matcher agrees with the reference algorithm on
    /// every prefix, for pseudo-random patterns and names.
    #[test]
    fn fast_path_agrees_with_reference() {
        let pat_alpha = b"ab*?[]^-\\";
        let name_alpha = b"ab-]^*";
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for _ in 0..30_000 {
            let plen = (next() % 7) as usize;
            let nlen = (next() % 7) as usize;
            let pat: String = (0..plen)
                .map(|_| pat_alpha[(next() % 9) as usize] as char)
                .collect();
            let name: String = (0..nlen)
                .map(|_| name_alpha[(next() % 6) as usize] as char)
                .collect();
            let Some(fast) = prefix_matches(&pat, &name) else {
                continue;
            };
            checked += 1;
            for (k, got) in fast.iter().enumerate() {
                assert_eq!(
                    matches(&pat, &name[..k]),
                    Ok(*got),
                    "pattern {pat:?} name {:?}",
                    &name[..k]
                );
            }
        }
        assert!(
            checked > 10_000,
            "only {checked} patterns took the fast path"
        );
    }

    #[test]
    fn fast_path_applicability() {
        assert!(prefix_matches("*.txt", "a.txt").is_some());
        assert!(prefix_matches("[a-c]x", "bx").is_some());
        assert!(prefix_matches("é*", "abc").is_none());
        assert!(prefix_matches("*", "é").is_none());
        for bad in ["[", "a[", "[]", "[a", "[a-", "[-a]", "\\", "[a-]"] {
            assert!(prefix_matches(bad, "abc").is_none(), "{bad}");
        }
    }
}
