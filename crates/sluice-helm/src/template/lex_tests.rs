//! Go's `parse/lex_test.go` (`lexTests`, `lexPosTests`), ported: each
//! input and the items Go's lexer emits for it (with comments emitted).

use super::lex::{ItemType as I, Lexer};

fn collect(input: &str) -> Vec<(I, String, usize, usize)> {
    let mut l = Lexer::new(input);
    l.emit_comment = true;
    let mut out = Vec::new();
    loop {
        let it = l.next_item();
        let stop = it.typ == I::Eof || it.typ == I::Error;
        out.push((it.typ, it.val.to_string(), it.pos, it.line));
        if stop || out.len() > 10_000 {
            return out;
        }
    }
}

const L: (I, &str) = (I::LeftDelim, "{{");
const R: (I, &str) = (I::RightDelim, "}}");
const SP: (I, &str) = (I::Space, " ");
const EOF: (I, &str) = (I::Eof, "");
const DOT: (I, &str) = (I::Dot, ".");
const LP: (I, &str) = (I::LeftParen, "(");
const RP: (I, &str) = (I::RightParen, ")");
const PIPE: (I, &str) = (I::Pipe, "|");

type LexCase = (&'static str, &'static str, &'static [(I, &'static str)]);

const LEX_TESTS: &[LexCase] = &[
    ("empty", "", &[EOF]),
    ("spaces", " \t\n", &[(I::Text, " \t\n"), EOF]),
    (
        "text",
        "now is the time",
        &[(I::Text, "now is the time"), EOF],
    ),
    (
        "text with comment",
        "hello-{{/* this is a comment */}}-world",
        &[
            (I::Text, "hello-"),
            (I::Comment, "/* this is a comment */"),
            (I::Text, "-world"),
            EOF,
        ],
    ),
    (
        "punctuation",
        "{{,@% }}",
        &[
            L,
            (I::Char, ","),
            (I::Char, "@"),
            (I::Char, "%"),
            SP,
            R,
            EOF,
        ],
    ),
    (
        "parens",
        "{{((3))}}",
        &[L, LP, LP, (I::Number, "3"), RP, RP, R, EOF],
    ),
    ("empty action", "{{}}", &[L, R, EOF]),
    ("for", "{{for}}", &[L, (I::Identifier, "for"), R, EOF]),
    (
        "block",
        r#"{{block "foo" .}}"#,
        &[
            L,
            (I::Block, "block"),
            SP,
            (I::String, r#""foo""#),
            SP,
            DOT,
            R,
            EOF,
        ],
    ),
    (
        "quote",
        r#"{{"abc \n\t\" "}}"#,
        &[L, (I::String, r#""abc \n\t\" ""#), R, EOF],
    ),
    (
        "raw quote",
        "{{`abc\\n\\t\\\" `}}",
        &[L, (I::RawString, "`abc\\n\\t\\\" `"), R, EOF],
    ),
    (
        "raw quote with newline",
        "{{`now is{{\n}}the time`}}",
        &[L, (I::RawString, "`now is{{\n}}the time`"), R, EOF],
    ),
    (
        "numbers",
        "{{1 02 0x14 0X14 -7.2i 1e3 1E3 +1.2e-4 4.2i 1+2i 1_2 0x1.e_fp4 0X1.E_FP4}}",
        &[
            L,
            (I::Number, "1"),
            SP,
            (I::Number, "02"),
            SP,
            (I::Number, "0x14"),
            SP,
            (I::Number, "0X14"),
            SP,
            (I::Number, "-7.2i"),
            SP,
            (I::Number, "1e3"),
            SP,
            (I::Number, "1E3"),
            SP,
            (I::Number, "+1.2e-4"),
            SP,
            (I::Number, "4.2i"),
            SP,
            (I::Complex, "1+2i"),
            SP,
            (I::Number, "1_2"),
            SP,
            (I::Number, "0x1.e_fp4"),
            SP,
            (I::Number, "0X1.E_FP4"),
            R,
            EOF,
        ],
    ),
    (
        "characters",
        r"{{'a' '\n' '\'' '\\' '\u00FF' '\xFF' '本'}}",
        &[
            L,
            (I::CharConstant, "'a'"),
            SP,
            (I::CharConstant, r"'\n'"),
            SP,
            (I::CharConstant, r"'\''"),
            SP,
            (I::CharConstant, r"'\\'"),
            SP,
            (I::CharConstant, r"'\u00FF'"),
            SP,
            (I::CharConstant, r"'\xFF'"),
            SP,
            (I::CharConstant, "'本'"),
            R,
            EOF,
        ],
    ),
    (
        "bools",
        "{{true false}}",
        &[L, (I::Bool, "true"), SP, (I::Bool, "false"), R, EOF],
    ),
    ("dot", "{{.}}", &[L, DOT, R, EOF]),
    ("nil", "{{nil}}", &[L, (I::Nil, "nil"), R, EOF]),
    (
        "dots",
        "{{.x . .2 .x.y.z}}",
        &[
            L,
            (I::Field, ".x"),
            SP,
            DOT,
            SP,
            (I::Number, ".2"),
            SP,
            (I::Field, ".x"),
            (I::Field, ".y"),
            (I::Field, ".z"),
            R,
            EOF,
        ],
    ),
    (
        "keywords",
        "{{range if else end with}}",
        &[
            L,
            (I::Range, "range"),
            SP,
            (I::If, "if"),
            SP,
            (I::Else, "else"),
            SP,
            (I::End, "end"),
            SP,
            (I::With, "with"),
            R,
            EOF,
        ],
    ),
    (
        "variables",
        "{{$c := printf $ $hello $23 $ $var.Field .Method}}",
        &[
            L,
            (I::Variable, "$c"),
            SP,
            (I::Declare, ":="),
            SP,
            (I::Identifier, "printf"),
            SP,
            (I::Variable, "$"),
            SP,
            (I::Variable, "$hello"),
            SP,
            (I::Variable, "$23"),
            SP,
            (I::Variable, "$"),
            SP,
            (I::Variable, "$var"),
            (I::Field, ".Field"),
            SP,
            (I::Field, ".Method"),
            R,
            EOF,
        ],
    ),
    (
        "variable invocation",
        "{{$x 23}}",
        &[L, (I::Variable, "$x"), SP, (I::Number, "23"), R, EOF],
    ),
    (
        "pipeline",
        r#"intro {{echo hi 1.2 |noargs|args 1 "hi"}} outro"#,
        &[
            (I::Text, "intro "),
            L,
            (I::Identifier, "echo"),
            SP,
            (I::Identifier, "hi"),
            SP,
            (I::Number, "1.2"),
            SP,
            PIPE,
            (I::Identifier, "noargs"),
            PIPE,
            (I::Identifier, "args"),
            SP,
            (I::Number, "1"),
            SP,
            (I::String, r#""hi""#),
            R,
            (I::Text, " outro"),
            EOF,
        ],
    ),
    (
        "declaration",
        "{{$v := 3}}",
        &[
            L,
            (I::Variable, "$v"),
            SP,
            (I::Declare, ":="),
            SP,
            (I::Number, "3"),
            R,
            EOF,
        ],
    ),
    (
        "2 declarations",
        "{{$v , $w := 3}}",
        &[
            L,
            (I::Variable, "$v"),
            SP,
            (I::Char, ","),
            SP,
            (I::Variable, "$w"),
            SP,
            (I::Declare, ":="),
            SP,
            (I::Number, "3"),
            R,
            EOF,
        ],
    ),
    (
        "field of parenthesized expression",
        "{{(.X).Y}}",
        &[L, LP, (I::Field, ".X"), RP, (I::Field, ".Y"), R, EOF],
    ),
    (
        "trimming spaces before and after",
        "hello- {{- 3 -}} -world",
        &[
            (I::Text, "hello-"),
            L,
            (I::Number, "3"),
            R,
            (I::Text, "-world"),
            EOF,
        ],
    ),
    (
        "trimming spaces before and after comment",
        "hello- {{- /* hello */ -}} -world",
        &[
            (I::Text, "hello-"),
            (I::Comment, "/* hello */"),
            (I::Text, "-world"),
            EOF,
        ],
    ),
    (
        "badchar",
        "#{{\x01}}",
        &[
            (I::Text, "#"),
            L,
            (I::Error, "unrecognized character in action: U+0001"),
        ],
    ),
    ("unclosed action", "{{", &[L, (I::Error, "unclosed action")]),
    (
        "EOF in action",
        "{{range",
        &[L, (I::Range, "range"), (I::Error, "unclosed action")],
    ),
    (
        "unclosed quote",
        "{{\"\n\"}}",
        &[L, (I::Error, "unterminated quoted string")],
    ),
    (
        "unclosed raw quote",
        "{{`xx}}",
        &[L, (I::Error, "unterminated raw quoted string")],
    ),
    (
        "unclosed char constant",
        "{{'\n}}",
        &[L, (I::Error, "unterminated character constant")],
    ),
    (
        "bad number",
        "{{3k}}",
        &[L, (I::Error, r#"bad number syntax: "3k""#)],
    ),
    (
        "unclosed paren",
        "{{(3}}",
        &[L, LP, (I::Number, "3"), (I::Error, "unclosed left paren")],
    ),
    (
        "extra right paren",
        "{{3)}}",
        &[L, (I::Number, "3"), (I::Error, "unexpected right paren")],
    ),
    (
        "long pipeline deadlock",
        "{{|||||}}",
        &[L, PIPE, PIPE, PIPE, PIPE, PIPE, R, EOF],
    ),
    (
        "text with bad comment",
        "hello-{{/*/}}-world",
        &[(I::Text, "hello-"), (I::Error, "unclosed comment")],
    ),
    (
        "text with comment close separated from delim",
        "hello-{{/* */ }}-world",
        &[
            (I::Text, "hello-"),
            (I::Error, "comment ends before closing delimiter"),
        ],
    ),
    (
        "unmatched right delimiter",
        "hello-{.}}-world",
        &[(I::Text, "hello-{.}}-world"), EOF],
    ),
];

#[test]
fn go_lex_tests() {
    let mut failures = Vec::new();
    for (name, input, want) in LEX_TESTS {
        let got: Vec<(I, String)> = collect(input)
            .into_iter()
            .map(|(t, v, _, _)| (t, v))
            .collect();
        let want: Vec<(I, String)> = want.iter().map(|(t, v)| (*t, v.to_string())).collect();
        if got != want {
            failures.push(format!("{name}: got {got:?}\nwant {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

type PosCase = (&'static str, &'static [(I, usize, &'static str, usize)]);

/// Go's `lexPosTests`: items with positions and lines.
const LEX_POS_TESTS: &[PosCase] = &[
    ("", &[(I::Eof, 0, "", 1)]),
    (
        "{{,@%#}}",
        &[
            (I::LeftDelim, 0, "{{", 1),
            (I::Char, 2, ",", 1),
            (I::Char, 3, "@", 1),
            (I::Char, 4, "%", 1),
            (I::Char, 5, "#", 1),
            (I::RightDelim, 6, "}}", 1),
            (I::Eof, 8, "", 1),
        ],
    ),
    (
        "0123{{hello}}xyz",
        &[
            (I::Text, 0, "0123", 1),
            (I::LeftDelim, 4, "{{", 1),
            (I::Identifier, 6, "hello", 1),
            (I::RightDelim, 11, "}}", 1),
            (I::Text, 13, "xyz", 1),
            (I::Eof, 16, "", 1),
        ],
    ),
    (
        "{{x -}}\n{{y}}",
        &[
            (I::LeftDelim, 0, "{{", 1),
            (I::Identifier, 2, "x", 1),
            (I::RightDelim, 5, "}}", 1),
            (I::LeftDelim, 8, "{{", 2),
            (I::Identifier, 10, "y", 2),
            (I::RightDelim, 11, "}}", 2),
            (I::Eof, 13, "", 2),
        ],
    ),
    (
        "{{x}}\n{{- y}}",
        &[
            (I::LeftDelim, 0, "{{", 1),
            (I::Identifier, 2, "x", 1),
            (I::RightDelim, 3, "}}", 1),
            (I::LeftDelim, 6, "{{", 2),
            (I::Identifier, 10, "y", 2),
            (I::RightDelim, 11, "}}", 2),
            (I::Eof, 13, "", 2),
        ],
    ),
    (
        "{{/*\n*/}}\n{{undefinedFunction \"test\"}}",
        &[
            (I::Comment, 2, "/*\n*/", 1),
            (I::Text, 9, "\n", 2),
            (I::LeftDelim, 10, "{{", 3),
            (I::Identifier, 12, "undefinedFunction", 3),
            (I::Space, 29, " ", 3),
            (I::String, 30, "\"test\"", 3),
            (I::RightDelim, 36, "}}", 3),
            (I::Eof, 38, "", 3),
        ],
    ),
];

#[test]
fn go_lex_positions() {
    let mut failures = Vec::new();
    for (input, want) in LEX_POS_TESTS {
        let got = collect(input);
        let want: Vec<(I, String, usize, usize)> = want
            .iter()
            .map(|(t, p, v, l)| (*t, v.to_string(), *p, *l))
            .collect();
        if got != want {
            failures.push(format!("{input:?}: got {got:?}\nwant {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
