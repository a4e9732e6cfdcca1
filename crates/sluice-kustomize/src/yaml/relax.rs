//! Indentation inside flow collections and quoted scalars, as libyaml reads it.
//!
//! go-yaml (v2 under Helm and `sigs.k8s.io/yaml`, v3 under kustomize) is a port of libyaml,
//! which does not check the indentation of lines inside a flow collection (`[` ... `]`,
//! `{` ... `}`) or of the continuation lines of a quoted scalar. yaml-rust2 follows the YAML
//! 1.2 specification, which wants those lines indented past the enclosing block, and refuses
//! what real files write, such as a list closed at its key's column:
//!
//! ```yaml
//! args: [
//!   "server",
//!   "-dev"
//! ]
//! ```
//!
//! Inside a flow collection or a quoted scalar, the whitespace that starts a line is not part
//! of any value (lines are folded), so indenting such a line further changes nothing that is
//! read. [`relax`] does that to the lines yaml-rust2 refuses, one refusal at a time, and hands
//! back the text only when every line it moved is, in the text it made, inside a flow
//! collection or a quoted scalar: a block line at a wrong indentation, which go-yaml refuses
//! too, keeps its error.

use yaml_rust2::scanner::{Marker, Scanner, TokenType};

/// At most this many refusals are put right in one text; past it, the first error stands.
const MAX_FIXES: usize = 512;
/// Each refusal put right costs a scan of the whole text: at most this many bytes are
/// scanned in all, so a large text with many such lines cannot keep a reader busy.
const MAX_SCANNED: usize = 64 << 20;

/// Whether a yaml-rust2 error is one of the indentation checks libyaml does not make.
pub fn is_indentation_error(message: &str) -> bool {
    matches!(
        message,
        "invalid indentation"
            | "invalid indentation in flow construct"
            | "invalid indentation in quoted scalar"
    )
}

/// Reads `text` with `read`; when that fails with an indentation check libyaml does not make
/// (`message` gives an error's text), reads the relaxed text instead. Any other error, or one
/// that remains, is the first one.
pub fn read_relaxed<T, E>(
    text: &str,
    read: impl Fn(&str) -> Result<T, E>,
    message: impl Fn(&E) -> &str,
) -> Result<T, E> {
    match read(text) {
        Err(e) if is_indentation_error(message(&e)) => match relax(text) {
            Some(relaxed) => read(&relaxed).map_err(|_| e),
            None => Err(e),
        },
        r => r,
    }
}

/// `text` with the lines yaml-rust2 refuses for their indentation inside flow collections and
/// quoted scalars indented further, or `None` when no line needs it, moving them does not
/// make the text readable, or a line it would move is not inside one (see the module's
/// documentation).
pub fn relax(text: &str) -> Option<String> {
    let mut lines = Lines::new(text);
    // Lines moved because a flow collection holds them, to be checked at the end.
    let mut flow_lines: Vec<usize> = Vec::new();
    // Quoted scalars whose lines were moved, by their first line, and how often.
    let mut quoted: Vec<(usize, usize)> = Vec::new();
    let mut scanned = 0usize;
    for _ in 0..MAX_FIXES {
        let current = lines.text();
        scanned += current.len();
        if scanned > MAX_SCANNED {
            return None;
        }
        let Err((mark, message)) = scan(&current) else {
            let moved = lines.added.iter().any(|&n| n > 0);
            return (moved && first_tokens_in_flow(&current, &flow_lines)).then_some(current);
        };
        match message.as_str() {
            "invalid indentation" | "invalid indentation in flow construct" => {
                let line = mark.line().checked_sub(1)?;
                if line >= lines.lines.len() {
                    return None;
                }
                // The token the check stopped at must start its line.
                if lines.leading_spaces(line) != mark.col() {
                    return None;
                }
                lines.deepen(line);
                if !flow_lines.contains(&line) {
                    flow_lines.push(line);
                }
            }
            "invalid indentation in quoted scalar" => {
                let start = mark.line().checked_sub(1)?;
                let end = lines.quoted_scalar_end(start, mark.col())?;
                if end == start {
                    return None;
                }
                // Past the first line's indentation, and further each time it is refused again.
                let again = match quoted.iter_mut().find(|(l, _)| *l == start) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        quoted.push((start, 0));
                        0
                    }
                };
                let to = lines.leading_spaces(start) + 1 + 2 * again;
                for line in start + 1..=end {
                    lines.indent_to(line, to);
                }
            }
            _ => return None,
        }
    }
    None
}

/// The first error yaml-rust2's scanner finds in `text`, if any.
fn scan(text: &str) -> Result<(), (Marker, String)> {
    let mut s = Scanner::new(text.chars());
    loop {
        match s.next_token() {
            Ok(Some(t)) if matches!(t.1, TokenType::StreamEnd) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err((*e.marker(), e.info().to_string())),
        }
    }
}

/// Whether the first token on each of `lines` (0-based) of `text` lies inside a flow
/// collection: one scan for all of them.
fn first_tokens_in_flow(text: &str, lines: &[usize]) -> bool {
    let mut pending: Vec<usize> = lines.to_vec();
    pending.sort_unstable();
    pending.dedup();
    let mut next = pending.iter().copied().peekable();
    let mut s = Scanner::new(text.chars());
    let mut depth = 0usize;
    while let Some(&line) = next.peek() {
        let Ok(Some(t)) = s.next_token() else {
            return false;
        };
        let at = t.0.line().saturating_sub(1);
        if at > line || matches!(t.1, TokenType::StreamEnd) {
            // A moved line with no token of its own.
            return false;
        }
        if at == line {
            if depth == 0 {
                return false;
            }
            next.next();
        }
        match t.1 {
            TokenType::FlowSequenceStart | TokenType::FlowMappingStart => depth += 1,
            TokenType::FlowSequenceEnd | TokenType::FlowMappingEnd => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
    }
    true
}

/// The text's lines, each with the spaces added before it.
struct Lines<'a> {
    lines: Vec<&'a str>,
    added: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// Lines end where the scanner counts a line break: at `\r\n`, `\n` or a lone `\r`, so
    /// that line numbers in its errors are indices here.
    fn new(text: &'a str) -> Self {
        let mut lines: Vec<&str> = Vec::new();
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let end = match bytes[i] {
                b'\n' => i + 1,
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => i + 2,
                b'\r' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            lines.push(&text[start..end]);
            start = end;
            i = end;
        }
        if start < text.len() {
            lines.push(&text[start..]);
        }
        let added = vec![0; lines.len()];
        Lines { lines, added }
    }

    fn text(&self) -> String {
        let extra: usize = self.added.iter().sum();
        let mut out =
            String::with_capacity(self.lines.iter().map(|l| l.len()).sum::<usize>() + extra);
        for (l, &n) in self.lines.iter().zip(&self.added) {
            out.extend(std::iter::repeat_n(' ', n));
            out.push_str(l);
        }
        out
    }

    /// The spaces `line` starts with, as the scanner sees it now.
    fn leading_spaces(&self, line: usize) -> usize {
        self.lines
            .get(line)
            .map_or(0, |l| l.len() - l.trim_start_matches(' ').len())
            + self.added.get(line).copied().unwrap_or(0)
    }

    /// Indents `line` past the line before it (further each time it is refused again).
    fn deepen(&mut self, line: usize) {
        let prev = (0..line)
            .rev()
            .find(|&l| self.lines.get(l).is_some_and(|t| !t.trim().is_empty()))
            .map_or(0, |l| self.leading_spaces(l));
        let now = self.leading_spaces(line);
        let to = if now <= prev { prev + 1 } else { now + 2 };
        self.indent_to(line, to);
    }

    fn indent_to(&mut self, line: usize, to: usize) {
        let now = self.leading_spaces(line);
        if let Some(a) = self.added.get_mut(line)
            && to > now
        {
            *a += to - now;
        }
    }

    /// The line on which the quoted scalar that starts at column `col` (in characters, as the
    /// scanner counts, spaces added included) of `line` ends.
    fn quoted_scalar_end(&self, line: usize, col: usize) -> Option<usize> {
        let added = self.added.get(line).copied()?;
        let first = self.lines.get(line)?;
        let skip = col.checked_sub(added)?;
        let start = first.char_indices().nth(skip).map(|(i, _)| i)?;
        let quote = first[start..].chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let mut l = line;
        let mut rest = &first[start + 1..];
        loop {
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if quote == '"' => {
                        chars.next();
                    }
                    '\'' if quote == '\'' => {
                        // '' is an escaped quote.
                        if chars.clone().next() == Some('\'') {
                            chars.next();
                        } else {
                            return Some(l);
                        }
                    }
                    '"' if quote == '"' => return Some(l),
                    _ => {}
                }
            }
            l += 1;
            rest = self.lines.get(l)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_closed_at_its_keys_column_is_read() {
        let text = "vault:\n  args: [\n    \"server\",\n    \"-dev\"\n  ]\n  env: 1\n";
        let fixed = relax(text).expect("relaxed");
        assert_eq!(scan(&fixed), Ok(()));
        // Only the line of the closing bracket moved.
        assert_eq!(fixed.lines().count(), text.lines().count());
        assert_eq!(fixed, text.replace("\n  ]\n", "\n     ]\n"));
    }

    #[test]
    fn flow_entries_and_quoted_continuations_left_of_the_block_are_read() {
        for text in [
            "x:\n  d: [a,\nb]\n",
            "x:\n  d:\n  - {a: 1,\n  b: 2}\n",
            "x:\n  d: \"abc\ndef\"\n",
            "x:\n  d: 'it''s\nfine'\n",
            "x:\n  - d: \"abc\ndef\"\n",
            "x:\n  d: [a, \"abc\ndef\"]\n",
            "args: [\n  \"s\",\n  \"d\"\n]\n",
        ] {
            assert!(scan(text).is_err(), "{text:?} is refused as it is");
            let fixed = relax(text).unwrap_or_else(|| panic!("{text:?} not relaxed"));
            assert_eq!(scan(&fixed), Ok(()), "{fixed:?}");
        }
    }

    #[test]
    fn a_block_line_at_a_wrong_indentation_keeps_its_error() {
        // The flow line is moved (only it), but the block entry left of its sequence is still
        // refused, as go-yaml refuses it: reading the text fails with the first error.
        let text = "a:\n  - [b,\n c]\n - d\n";
        let Err((_, first)) = scan(text) else {
            panic!("{text:?} is read as it is");
        };
        assert!(is_indentation_error(&first), "{first}");
        assert_eq!(relax(text).as_deref(), Some("a:\n  - [b,\n   c]\n - d\n"));
        let e = crate::yaml::parse_all(text).expect_err("refused");
        assert_eq!((e.line, e.message.as_str()), (3, "invalid indentation"));
        // Nothing to move: nothing relaxed.
        assert_eq!(relax("a: [b,\n  c]\n"), None);
        assert_eq!(relax("a:\n    b: 1\n  c: 2\n"), None);
    }

    #[test]
    fn relaxing_is_bounded() {
        // Many refused lines in a large text: the scans stop at their budget, and the first
        // error stands.
        let mut text = String::from("a: [\n");
        for _ in 0..2000 {
            text.push_str("b,\n");
        }
        text.push_str("c]\n");
        text.push_str(&"# padding\n".repeat(200_000));
        assert_eq!(relax(&text), None);
    }

    #[test]
    fn carriage_returns_break_lines_as_the_scanner_counts_them() {
        // A lone `\r` ends a line for the scanner: the lines it names are the lines moved.
        for (text, want) in [
            ("x:\r  d: [a,\rb]\r", Some("x:\r  d: [a,\r   b]\r")),
            (
                "x:\r\n  d: [a,\r\nb]\r\n",
                Some("x:\r\n  d: [a,\r\n   b]\r\n"),
            ),
            (
                "a:\r\r\r\r  - [b,\r c]\r - d\r",
                Some("a:\r\r\r\r  - [b,\r   c]\r - d\r"),
            ),
            (
                "a:\r  b: [\r c,\r d]\r",
                Some("a:\r  b: [\r   c,\r    d]\r"),
            ),
        ] {
            assert!(scan(text).is_err(), "{text:?} is refused as it is");
            assert_eq!(relax(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn indentation_errors_are_named() {
        assert!(is_indentation_error("invalid indentation"));
        assert!(is_indentation_error("invalid indentation in quoted scalar"));
        assert!(!is_indentation_error(
            "mapping values are not allowed in this context"
        ));
    }
}
