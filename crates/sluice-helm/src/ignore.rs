//! `.helmignore` rules, as Helm's `pkg/ignore` applies them.
//!
//! One pattern a line (`#` comments, blank lines skipped), matched with Go's
//! `filepath.Match`: a pattern with no `/` matches a path's last element, a
//! pattern with `/` the whole path relative to the chart (a leading `/` is
//! dropped), a trailing `/` matches directories only, `**` is refused.
//! `!pattern` keeps Helm's behaviour exactly, odd as it is: a path the
//! negated pattern does *not* match is ignored. The default rule
//! `templates/.?*` (dot files directly in `templates/`) is always added.

/// Parsed ignore rules.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    /// The glob, without `!`, trailing `/` or leading `/`.
    glob: String,
    /// How `glob` is matched: most rules are a name or a `*.ext`, checked
    /// without the general matcher (which every file of a chart meets once
    /// per rule).
    shape: Shape,
    /// Matched against the whole path (the rule had a `/`), or the base name.
    whole_path: bool,
    negate: bool,
    must_dir: bool,
}

/// A glob's shape, for [`Pattern::matches`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// No `*`, `?`, `[` or `\\`: the name itself.
    Literal,
    /// `*` and then a literal: that ending, after no `/`.
    Suffix(String),
    /// A literal and then `*`: that beginning, then no `/`.
    Prefix(String),
    /// Anything else: Go's `filepath.Match`.
    General,
}

impl Shape {
    fn of(glob: &str) -> Shape {
        let special = |s: &str| s.contains(['*', '?', '[', '\\']);
        if !special(glob) {
            Shape::Literal
        } else if let Some(rest) = glob.strip_prefix('*')
            && !rest.is_empty()
            && !special(rest)
        {
            Shape::Suffix(rest.to_string())
        } else if let Some(rest) = glob.strip_suffix('*')
            && !special(rest)
        {
            Shape::Prefix(rest.to_string())
        } else {
            Shape::General
        }
    }
}

impl Pattern {
    /// `glob_match(&self.glob, name)`, with a malformed pattern (refused
    /// when the rule was added) as no match.
    fn matches(&self, name: &str) -> bool {
        match &self.shape {
            Shape::Literal => name == self.glob,
            Shape::Suffix(end) => name
                .strip_suffix(end.as_str())
                .is_some_and(|head| !head.contains('/')),
            Shape::Prefix(start) => name
                .strip_prefix(start.as_str())
                .is_some_and(|tail| !tail.contains('/')),
            Shape::General => glob_match(&self.glob, name).unwrap_or(false),
        }
    }
}

/// A line of `.helmignore` Helm refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("double-star (**) syntax is not supported")]
    DoubleStar,
    #[error("syntax error in pattern")]
    BadPattern,
}

impl Rules {
    /// No rules at all (not even the default).
    pub fn empty() -> Rules {
        Rules::default()
    }

    /// Parses `.helmignore` text (a UTF-8 BOM is dropped) and adds the
    /// default rule.
    pub fn parse(text: &str) -> Result<Rules, RuleError> {
        let mut r = Rules::empty();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // Go's bufio.Scanner lines: split on \n, a trailing \r dropped
        // (TrimSpace below removes it anyway).
        for line in text.split('\n') {
            r.add(line)?;
        }
        Ok(r)
    }

    /// Adds `templates/.?*`, as Helm does after reading `.helmignore`.
    pub fn add_defaults(&mut self) {
        // A constant rule that parses.
        let _ = self.add("templates/.?*");
    }

    /// The rules for a chart with no `.helmignore`: the default rule only.
    pub fn defaults() -> Rules {
        let mut r = Rules::empty();
        r.add_defaults();
        r
    }

    fn add(&mut self, rule: &str) -> Result<(), RuleError> {
        let rule = rule.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err(RuleError::DoubleStar);
        }
        glob_match(rule, "abc")?;
        let mut rule = rule;
        let negate = match rule.strip_prefix('!') {
            Some(r) => {
                rule = r;
                true
            }
            None => false,
        };
        let must_dir = match rule.strip_suffix('/') {
            Some(r) => {
                rule = r;
                true
            }
            None => false,
        };
        let (glob, whole_path) = if let Some(r) = rule.strip_prefix('/') {
            (r, true)
        } else {
            (rule, rule.contains('/'))
        };
        self.patterns.push(Pattern {
            shape: Shape::of(glob),
            glob: glob.to_string(),
            whole_path,
            negate,
            must_dir,
        });
        Ok(())
    }

    /// Whether `path` (relative to the chart, `/`-separated) is ignored.
    pub fn ignore(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for p in &self.patterns {
            let subject = if p.whole_path {
                path
            } else {
                path.rsplit('/').next().unwrap_or(path)
            };
            let matched = p.matches(subject);
            if p.negate {
                if p.must_dir && !is_dir {
                    return true;
                }
                if !matched {
                    return true;
                }
                continue;
            }
            if p.must_dir && !is_dir {
                continue;
            }
            if matched {
                return true;
            }
        }
        false
    }
}

/// Go's `path/filepath.Match` on Unix: `*` (no `/`), `?`, `[...]` classes
/// with `^` and ranges, `\` escapes; the whole name must match. A malformed
/// pattern is an error, even when the name already failed to match.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, RuleError> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'outer: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if let Some(e) = err {
            return Err(e);
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'outer;
                }
                if let Some(e) = err {
                    return Err(e);
                }
                i += 1;
            }
        }
        // Before failing, check the rest of the pattern is well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if let (_, _, Some(e)) = match_chunk(chunk, b"") {
                return Err(e);
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let Some((&b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
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

/// Decodes the character at the start of `s` (Go's `DecodeRuneInString`:
/// an invalid byte is U+FFFD of width 1).
fn decode(s: &[u8]) -> (char, usize) {
    let end = s.len().min(4);
    for n in 1..=end {
        if let Ok(t) = std::str::from_utf8(&s[..n])
            && let Some(c) = t.chars().next()
        {
            return (c, n);
        }
    }
    ('\u{fffd}', 1)
}

#[allow(clippy::type_complexity)]
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> (&'a [u8], bool, Option<RuleError>) {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (c, n) = decode(s);
                    r = c;
                    s = &s[n..];
                }
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
                    let (lo, rest) = match get_esc(chunk) {
                        Ok(x) => x,
                        Err(e) => return (b"", false, Some(e)),
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        match get_esc(&chunk[1..]) {
                            Ok((h, rest)) => {
                                hi = h;
                                chunk = rest;
                            }
                            Err(e) => return (b"", false, Some(e)),
                        }
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            c => {
                let c = if c == b'\\' {
                    chunk = &chunk[1..];
                    match chunk.first() {
                        Some(&c) => c,
                        None => return (b"", false, Some(RuleError::BadPattern)),
                    }
                } else {
                    c
                };
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        return (b"", false, None);
    }
    (s, true, None)
}

/// A possibly escaped character of a class; the rest must not be empty.
fn get_esc(chunk: &[u8]) -> Result<(char, &[u8]), RuleError> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(RuleError::BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(RuleError::BadPattern);
            }
        }
        _ => {}
    }
    let (r, n) = decode(chunk);
    if r == '\u{fffd}' && n == 1 && !chunk.starts_with("\u{fffd}".as_bytes()) {
        return Err(RuleError::BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(RuleError::BadPattern);
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_as_the_general_matcher_does() {
        let globs = [
            "*.orig",
            "*",
            "foo",
            ".git",
            "*.tgz",
            "README*",
            "templates/*",
            "a/*.txt",
            "*/b",
            "x*",
            "*.",
            "*.?",
            "[ab]*",
            "a\\*",
            "*.tar.gz",
        ];
        let names = [
            "foo",
            "foo.orig",
            "a/foo.orig",
            "a.orig/b",
            ".orig",
            "",
            "templates/x.yaml",
            "templates/a/x.yaml",
            "a/b.txt",
            "a/c/b.txt",
            "x/b",
            "x/y/b",
            "xa",
            "x/a",
            "README.md",
            "README",
            "docs/README",
            "a.",
            "a.b",
            "ab",
            "a*",
            "a.tar.gz",
            "tar.gz",
            "é.orig",
        ];
        for g in globs {
            let p = Pattern {
                shape: Shape::of(g),
                glob: g.to_string(),
                whole_path: false,
                negate: false,
                must_dir: false,
            };
            for n in names {
                assert_eq!(
                    p.matches(n),
                    glob_match(g, n).unwrap_or(false),
                    "{g:?} on {n:?} ({:?})",
                    p.shape
                );
            }
        }
        assert_eq!(Shape::of("*.orig"), Shape::Suffix(".orig".into()));
        assert_eq!(Shape::of("README*"), Shape::Prefix("README".into()));
        assert_eq!(Shape::of(".git"), Shape::Literal);
        assert_eq!(Shape::of("[ab]*"), Shape::General);
    }

    #[test]
    fn go_filepath_match() {
        let cases: &[(&str, &str, Result<bool, RuleError>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
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
            ("a???b", "a☺b", Ok(false)),
            ("a[!a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(RuleError::BadPattern)),
            ("[-]", "-", Err(RuleError::BadPattern)),
            ("[x-]", "x", Err(RuleError::BadPattern)),
            ("[x-]", "-", Err(RuleError::BadPattern)),
            ("[x-]", "z", Err(RuleError::BadPattern)),
            ("[-x]", "x", Err(RuleError::BadPattern)),
            ("[-x]", "-", Err(RuleError::BadPattern)),
            ("[-x]", "a", Err(RuleError::BadPattern)),
            ("\\", "a", Err(RuleError::BadPattern)),
            ("[a-b-c]", "a", Err(RuleError::BadPattern)),
            ("[", "a", Err(RuleError::BadPattern)),
            ("[^", "a", Err(RuleError::BadPattern)),
            ("[^bc", "a", Err(RuleError::BadPattern)),
            ("a[", "a", Err(RuleError::BadPattern)),
            ("a[", "ab", Err(RuleError::BadPattern)),
            ("a[", "x", Err(RuleError::BadPattern)),
            ("a/b[", "x", Err(RuleError::BadPattern)),
            ("*x", "xxx", Ok(true)),
        ];
        for (p, n, want) in cases {
            assert_eq!(&glob_match(p, n), want, "Match({p:?}, {n:?})");
        }
    }

    fn rules(text: &str) -> Rules {
        let mut r = Rules::parse(text).unwrap();
        r.add_defaults();
        r
    }

    #[test]
    fn helm_ignore_semantics() {
        // Helm's own table (pkg/ignore/rules_test.go), in our words.
        let dir = true;
        let file = false;
        let cases: &[(&str, &str, bool, bool)] = &[
            ("helm.txt", "helm.txt", file, true),
            ("helm.*", "helm.txt", file, true),
            ("helm.*", "rudder.txt", file, false),
            ("*.txt", "tiller.txt", file, true),
            ("*.txt", "cargo/a.txt", file, true),
            ("cargo/*.txt", "cargo/a.txt", file, true),
            ("cargo/*.*", "cargo/a.txt", file, true),
            ("cargo/*.txt", "mast/a.txt", file, false),
            ("ru[c-e]?er.txt", "rudder.txt", file, true),
            ("templates/.?*", "templates/.dotfile", file, true),
            ("/helm.txt", "helm.txt", file, true),
            ("/helm.txt", "cargo/helm.txt", file, false),
            ("cargo/", "cargo", dir, true),
            ("cargo/", "cargo", file, false),
            ("cargo/", "mast/", dir, false),
            ("helm.txt/", "helm.txt", file, false),
            ("!helm.txt", "helm.txt", file, false),
            ("!helm.txt", "tiller.txt", file, true),
            ("!*.txt", "cargo", dir, true),
            ("!cargo", "mast/", dir, true),
            ("helm.txt\n!helm.txt", "helm.txt", file, true),
            ("helm.txt\n!helm.txt", "tiller.txt", file, true),
            ("!cargo/\n", "cargo", dir, false),
            ("!cargo/\n", "mast", dir, true),
            ("!cargo/\n", "helm.txt", file, true),
            ("#helm.txt", "helm.txt", file, false),
            ("", ".", dir, false),
            ("", "templates/.dotfile", file, true),
        ];
        for (rule, path, is_dir, want) in cases {
            assert_eq!(
                rules(rule).ignore(path, *is_dir),
                *want,
                "{rule:?} on {path:?}"
            );
        }
    }

    #[test]
    fn bad_rules() {
        assert_eq!(Rules::parse("a/**/b").unwrap_err(), RuleError::DoubleStar);
        assert_eq!(Rules::parse("[").unwrap_err(), RuleError::BadPattern);
        assert!(Rules::parse("\u{feff}# comment\r\n*.txt\r\n").is_ok());
    }
}
