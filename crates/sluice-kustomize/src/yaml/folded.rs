//! What a folded block scalar (`>`) becomes on its way through kustomize.
//!
//! kustomize reads each resource and patch with go-yaml v3, writes it back
//! to YAML with go-yaml v3's emitter and reads that again. The node keeps
//! its folded style, and go-yaml v3's folded emitter is not faithful: it
//! decides whether a line break needs an extra break (so that it is not
//! folded into a space on reading) by looking at the start of the *whole
//! value* instead of at the next line (kyaml's encoder does not fold long
//! lines, so that is the only change). So the value kustomize
//! builds with is `read(emit(value))`, which this module computes: a
//! more-indented line after a line break gains a blank line before it
//! (`a\n  b` becomes `a\n\n  b`), a value that starts with a blank has its
//! lines joined, and so on. Literal, quoted and plain scalars go through
//! the same round trip unchanged.

use super::emit::{is_break, is_printable};

/// go-yaml v3's indentation step (kyaml's encoder uses 2).
const BEST_INDENT: usize = 2;

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Whether go-yaml v3's emitter keeps a block style for `value`
/// (`yaml_emitter_analyze_scalar`'s `block_allowed`); when it does not, it
/// writes a double-quoted scalar, which reads back unchanged.
fn block_allowed(value: &[char]) -> bool {
    if value.is_empty() {
        return false;
    }
    let n = value.len();
    let (mut previous_space, mut space_break, mut special) = (false, false, false);
    for (i, &c) in value.iter().enumerate() {
        if c != '\t' && !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i + 1 == n {
                return false; // trailing space
            }
            previous_space = true;
        } else if is_break(c) {
            if previous_space {
                space_break = true;
            }
            previous_space = false;
        } else {
            previous_space = false;
        }
    }
    !(space_break || special)
}

/// The value a folded scalar has after go-yaml v3 writes it and reads it
/// back. (Where its content sits does not matter: lines are not folded at
/// a width.)
pub(crate) fn roundtrip(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if !block_allowed(&chars) {
        return value.to_string();
    }
    let (text, keep, strip) = emit(&chars, BEST_INDENT);
    read(&text, BEST_INDENT, keep, strip)
}

/// go-yaml v3's `yaml_emitter_write_folded_scalar` (with its block scalar
/// hints): the scalar's lines, each indented by `indent`, and its chomping.
fn emit(value: &[char], indent: usize) -> (Vec<char>, bool, bool) {
    let n = value.len();
    let last_is_break = n > 0 && is_break(value[n - 1]);
    let strip = !last_is_break;
    let keep = last_is_break && (n == 1 || is_break(value[n - 2]));

    let mut out: Vec<char> = Vec::with_capacity(n + n / 8 + indent);
    let mut column = 0usize;
    let write_indent = |out: &mut Vec<char>, column: &mut usize| {
        if *column > 0 {
            out.push('\n');
            *column = 0;
        }
        while *column < indent {
            out.push(' ');
            *column += 1;
        }
    };
    // The scan for "does the next line start with a blank" starts at the
    // beginning of the value, not after the current break (go-yaml v3).
    let extra_break = {
        let mut k = 0;
        while k < n && is_break(value[k]) {
            k += 1;
        }
        !(k >= n || is_blank(value[k]))
    };
    let mut breaks = true;
    let mut leading_spaces = true;
    let mut i = 0;
    while i < n {
        let c = value[i];
        if is_break(c) {
            if !breaks && !leading_spaces && c == '\n' && extra_break {
                out.push('\n');
            }
            // write_break: a CR LF pair is one break.
            if c == '\r' && value.get(i + 1) == Some(&'\n') {
                i += 1;
            }
            out.push(if c == '\r' { '\n' } else { c });
            column = 0;
            breaks = true;
            i += 1;
        } else {
            if breaks {
                write_indent(&mut out, &mut column);
                leading_spaces = is_blank(c);
            }
            out.push(c);
            column += 1;
            i += 1;
            breaks = false;
        }
    }
    (out, keep, strip)
}

/// go-yaml v3's `yaml_parser_scan_block_scalar` for a folded scalar whose
/// lines (after the header) are `text`, content at column `indent`, ended
/// by a less indented line.
fn read(text: &[char], indent: usize, keep: bool, strip: bool) -> String {
    let n = text.len();
    let mut pos = 0usize;
    let mut column = 0usize;
    let mut s = String::with_capacity(n);
    let mut leading_break = String::new();
    let mut trailing_breaks = String::new();

    // yaml_parser_scan_block_scalar_breaks, with a known indentation.
    let scan_breaks = |pos: &mut usize, column: &mut usize, breaks: &mut String| loop {
        while *column < indent && *pos < n && text[*pos] == ' ' {
            *pos += 1;
            *column += 1;
        }
        if *pos < n && is_break(text[*pos]) {
            breaks.push(text[*pos]);
            *pos += 1;
            *column = 0;
        } else {
            break;
        }
    };

    scan_breaks(&mut pos, &mut column, &mut trailing_breaks);
    let mut leading_blank = false;
    while column == indent && pos < n {
        let trailing_blank = is_blank(text[pos]);
        if !leading_blank && !trailing_blank && leading_break.starts_with('\n') {
            if trailing_breaks.is_empty() {
                s.push(' ');
            }
        } else {
            s.push_str(&leading_break);
        }
        leading_break.clear();
        s.push_str(&trailing_breaks);
        trailing_breaks.clear();
        leading_blank = is_blank(text[pos]);
        while pos < n && !is_break(text[pos]) {
            s.push(text[pos]);
            pos += 1;
            column += 1;
        }
        if pos < n {
            leading_break.push(text[pos]);
            pos += 1;
            column = 0;
        }
        scan_breaks(&mut pos, &mut column, &mut trailing_breaks);
    }
    if !strip {
        s.push_str(&leading_break);
    }
    if keep {
        s.push_str(&trailing_breaks);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::roundtrip;

    // Expectations: go-yaml v3.0.3 (kustomize v5.8.1's), unmarshal after
    // one encode of the node.
    #[test]
    fn more_indented_lines_gain_a_blank_line() {
        assert_eq!(roundtrip("a\n  b\nc\n"), "a\n\n  b\nc\n");
        assert_eq!(
            roundtrip("folded line\npara\n  more\nend\n"),
            "folded line\npara\n\n  more\nend\n"
        );
        assert_eq!(
            roundtrip("exists(c,\n\n  c.image)"),
            "exists(c,\n\n\n  c.image)"
        );
    }

    #[test]
    fn kept_breaks_gain_one() {
        assert_eq!(roundtrip("x\n\n"), "x\n\n\n");
    }

    #[test]
    fn plain_folding_is_kept() {
        assert_eq!(roundtrip("a b c\n"), "a b c\n");
        assert_eq!(roundtrip("a\nb\n"), "a\nb\n");
        let long = "word ".repeat(40).trim_end().to_string();
        assert_eq!(roundtrip(&long), long);
    }

    #[test]
    fn a_value_starting_with_a_blank_has_its_lines_joined() {
        assert_eq!(roundtrip(" x\na\nb\n"), " x\na b\n");
    }

    #[test]
    fn values_without_block_style_are_unchanged() {
        assert_eq!(roundtrip("a \nb"), "a \nb");
        assert_eq!(roundtrip(""), "");
        assert_eq!(roundtrip("trailing "), "trailing ");
    }
}
