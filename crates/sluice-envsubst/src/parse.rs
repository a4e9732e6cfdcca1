//! Scanner and parser for the Flux envsubst dialect.
//!
//! Flux's parser (a fork of drone/envsubst) is a small mode-driven scanner:
//! every call site switches the set of token kinds it recognises and the
//! predicate deciding which runes belong to an identifier. Its quirks are
//! observable (which inputs are errors, which `$$`/`\/` are unescaped where),
//! so this module keeps the same structure: the same token kinds, the same
//! per-call-site modes and predicates, and the same decision order. What it
//! does differently is purely internal: the input is never mutated (escapes
//! are collected into the token text instead), recursion over the token
//! stream is a loop, and nesting depth is bounded so hostile input cannot
//! overflow the stack.

/// Maximum nesting depth of `${...}` inside substitution arguments.
pub(crate) const MAX_NESTING: usize = 64;

/// Sentinel returned at end of input. Like Flux's scanner, a literal NUL
/// character in the input is indistinguishable from end of input.
const EOF: char = '\0';

// Token-recognition mode bits.
const SCAN_IDENT: u8 = 1;
const SCAN_LBRACK: u8 = 1 << 1;
const SCAN_RBRACK: u8 = 1 << 2;
const SCAN_ESCAPE: u8 = 1 << 3;

// Escape-character bits (only honoured when `SCAN_ESCAPE` is set).
const ESC_DOLLAR: u8 = 1;
const ESC_BACKSLASH: u8 = 1 << 1;
const ESC_ALL: u8 = ESC_DOLLAR | ESC_BACKSLASH;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Illegal,
    Eof,
    Ident,
    Lbrack,
    Rbrack,
}

/// Predicate deciding whether rune `r` at byte offset `i` (counted from the
/// token start, after reading `r`) belongs to the current identifier.
type Accept = fn(char, usize) -> bool;

/// A parsed template element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Text(String),
    Func(Func),
}

/// A `${...}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Func {
    /// Variable name.
    pub param: String,
    /// Operator as scanned (`""`, `":-"`, `"//"`, `"^^"`, ...).
    pub op: String,
    /// Operator arguments; each is a text or a nested expression.
    pub args: Vec<Node>,
    /// Byte offset of the `$` opening this expression.
    pub start: usize,
}

/// What went wrong while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Flux: "bad substitution".
    BadSubstitution,
    /// Flux: "missing closing brace".
    MissingClosingBrace,
    /// Flux: "unable to parse variable name".
    VariableName,
    /// Flux: "unable to parse substitution within function".
    FuncSubstitution,
    /// Flux: "unable to parse default function".
    DefaultFunction,
    /// Not in Flux: `${...}` nested deeper than this crate supports.
    NestingTooDeep,
}

impl std::fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ParseErrorKind::BadSubstitution => "bad substitution",
            ParseErrorKind::MissingClosingBrace => "missing closing brace",
            ParseErrorKind::VariableName => "unable to parse variable name",
            ParseErrorKind::FuncSubstitution => "unable to parse substitution within function",
            ParseErrorKind::DefaultFunction => "unable to parse default function",
            ParseErrorKind::NestingTooDeep => "substitutions nested too deeply",
        };
        f.write_str(s)
    }
}

/// Internal parse failure: kind, offset of the innermost `${` being parsed
/// and, when already scanned, its variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseFailure {
    pub kind: ParseErrorKind,
    pub offset: usize,
    pub variable: Option<String>,
}

struct Scanner<'a> {
    buf: &'a str,
    pos: usize,
    start: usize,
    width: usize,
    mode: u8,
    escape: u8,
    accept: Accept,
    /// Text of the last identifier token, with escapes applied.
    text: String,
}

impl<'a> Scanner<'a> {
    fn new(buf: &'a str) -> Self {
        Scanner {
            buf,
            pos: 0,
            start: 0,
            width: 0,
            mode: 0,
            escape: 0,
            accept: accept_rune,
            text: String::new(),
        }
    }

    /// Reads the next character. Past the end (or, defensively, at a
    /// position that is not a character boundary) it returns `EOF` with
    /// width 0, so a following `unread` does not move.
    fn read(&mut self) -> char {
        match self.buf.get(self.pos..).and_then(|s| s.chars().next()) {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                c
            }
            None => {
                self.width = 0;
                EOF
            }
        }
    }

    /// Steps back by the width of the most recent `read`.
    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(self.width);
    }

    fn peek(&mut self) -> char {
        let c = self.read();
        self.unread();
        c
    }

    fn scan(&mut self) -> Token {
        self.start = self.pos;
        self.text.clear();
        let r = self.read();
        if r == EOF {
            Token::Eof
        } else if self.scan_lbrack(r) {
            Token::Lbrack
        } else if self.scan_rbrack(r) {
            Token::Rbrack
        } else if self.scan_ident(r) {
            Token::Ident
        } else {
            Token::Illegal
        }
    }

    fn scan_lbrack(&mut self, r: char) -> bool {
        if self.mode & SCAN_LBRACK == 0 {
            return false;
        }
        if r == '$' {
            if self.read() == '{' {
                return true;
            }
            self.unread();
        }
        false
    }

    fn scan_rbrack(&self, r: char) -> bool {
        self.mode & SCAN_RBRACK != 0 && r == '}'
    }

    /// True when `r` is an escape character for the following rune in the
    /// current mode (`$$` → `$`; `\/` → `/`, `\\` → `\`).
    fn scan_escaped(&mut self, r: char) -> bool {
        if self.mode & SCAN_ESCAPE == 0 {
            return false;
        }
        if r == '$' && self.escape & ESC_DOLLAR != 0 && self.peek() == '$' {
            return true;
        }
        if r == '\\' && self.escape & ESC_BACKSLASH != 0 {
            return matches!(self.peek(), '/' | '\\');
        }
        false
    }

    /// Consumes the rune following an escape character, verbatim.
    fn take_escaped(&mut self) {
        let c = self.read();
        self.text.push(c);
    }

    fn scan_ident(&mut self, r: char) -> bool {
        if self.mode & SCAN_IDENT == 0 {
            return false;
        }
        if self.scan_escaped(r) {
            self.take_escaped();
        } else if !(self.accept)(r, self.pos - self.start) {
            return false;
        } else {
            self.text.push(r);
        }
        loop {
            let before = self.pos;
            let r = self.read();
            if r == EOF {
                self.unread();
                break;
            }
            if self.scan_lbrack(r) {
                // Leave `${` for the caller.
                self.pos = before;
                break;
            }
            if self.scan_escaped(r) {
                self.take_escaped();
                continue;
            }
            if !(self.accept)(r, self.pos - self.start) {
                self.pos = before;
                break;
            }
            self.text.push(r);
        }
        true
    }
}

// Identifier predicates, one per call site in the reference parser.

fn accept_rune(_: char, _: usize) -> bool {
    true
}

fn accept_ident(r: char, _: usize) -> bool {
    r.is_alphabetic() || r.is_numeric() || r == '_'
}

fn accept_colon(r: char, _: usize) -> bool {
    r == ':'
}

fn accept_one_hash(r: char, i: usize) -> bool {
    r == '#' && i == 1
}

fn accept_not_closing(r: char, _: usize) -> bool {
    r != '}'
}

fn accept_hash_func(r: char, i: usize) -> bool {
    r == '#' && i < 3
}

fn accept_percent_func(r: char, i: usize) -> bool {
    r == '%' && i < 3
}

fn accept_default_func(r: char, i: usize) -> bool {
    (i == 1 && r == ':') || (i == 2 && matches!(r, '=' | '-' | '?' | '+'))
}

fn accept_replace_func(r: char, i: usize) -> bool {
    (i == 1 && r == '/') || (i == 2 && matches!(r, '/' | '#' | '%'))
}

fn accept_one_equal(r: char, i: usize) -> bool {
    i == 1 && r == '='
}

fn accept_one_colon(r: char, i: usize) -> bool {
    i == 1 && r == ':'
}

fn reject_colon_close(r: char, _: usize) -> bool {
    r != ':' && r != '}'
}

fn accept_slash(r: char, _: usize) -> bool {
    r == '/'
}

fn accept_not_slash(r: char, _: usize) -> bool {
    r != '/'
}

fn accept_casing_func(r: char, i: usize) -> bool {
    (r == ',' || r == '^') && i < 3
}

/// Parses `input` into a flat list of top-level nodes.
pub(crate) fn parse(input: &str) -> Result<Vec<Node>, ParseFailure> {
    let mut p = Parser {
        sc: Scanner::new(input),
        depth: 0,
    };
    p.parse_any()
}

struct Parser<'a> {
    sc: Scanner<'a>,
    depth: usize,
}

/// The expression currently being parsed, for error reporting.
struct Ctx<'n> {
    start: usize,
    name: &'n str,
}

impl Ctx<'_> {
    fn fail(&self, kind: ParseErrorKind) -> ParseFailure {
        ParseFailure {
            kind,
            offset: self.start,
            variable: Some(self.name.to_owned()),
        }
    }
}

impl Parser<'_> {
    fn parse_any(&mut self) -> Result<Vec<Node>, ParseFailure> {
        let mut nodes = Vec::new();
        loop {
            self.sc.accept = accept_rune;
            self.sc.mode = SCAN_IDENT | SCAN_LBRACK | SCAN_ESCAPE;
            self.sc.escape = ESC_DOLLAR;
            let start = self.sc.pos;
            match self.sc.scan() {
                Token::Ident => nodes.push(Node::Text(std::mem::take(&mut self.sc.text))),
                Token::Eof => return Ok(nodes),
                Token::Lbrack => nodes.push(self.parse_func(start)?),
                // Unreachable with `accept_rune`, kept for parity.
                Token::Illegal | Token::Rbrack => {
                    return Err(ParseFailure {
                        kind: ParseErrorKind::BadSubstitution,
                        offset: start,
                        variable: None,
                    });
                }
            }
        }
    }

    /// Parses the body of an expression whose `${` starts at `start`.
    fn parse_func(&mut self, start: usize) -> Result<Node, ParseFailure> {
        self.depth += 1;
        let res = if self.depth > MAX_NESTING {
            Err(ParseFailure {
                kind: ParseErrorKind::NestingTooDeep,
                offset: start,
                variable: None,
            })
        } else {
            self.parse_func_body(start)
        };
        self.depth -= 1;
        res
    }

    fn parse_func_body(&mut self, start: usize) -> Result<Node, ParseFailure> {
        self.sc.escape = ESC_ALL;
        if self.sc.peek() == '#' {
            return self.parse_len_func(start);
        }

        self.sc.accept = accept_ident;
        self.sc.mode = SCAN_IDENT;
        let name = match self.sc.scan() {
            Token::Ident => std::mem::take(&mut self.sc.text),
            _ => {
                return Err(ParseFailure {
                    kind: ParseErrorKind::VariableName,
                    offset: start,
                    variable: None,
                });
            }
        };
        let ctx = Ctx { start, name: &name };

        let func = match self.sc.peek() {
            ':' => self.parse_default_or_substr(&ctx)?,
            '=' => self.parse_default_func(&ctx)?,
            ',' | '^' => self.parse_simple_op(&ctx, accept_casing_func)?,
            '/' => self.parse_replace_func(&ctx)?,
            '#' => self.parse_remove_func(&ctx, accept_hash_func)?,
            '%' => self.parse_remove_func(&ctx, accept_percent_func)?,
            _ => {
                self.sc.mode = SCAN_RBRACK;
                if self.sc.scan() != Token::Rbrack {
                    return Err(ctx.fail(ParseErrorKind::MissingClosingBrace));
                }
                Func {
                    param: name.clone(),
                    op: String::new(),
                    args: Vec::new(),
                    start,
                }
            }
        };
        Ok(Node::Func(func))
    }

    fn new_func(ctx: &Ctx<'_>, op: String) -> Func {
        Func {
            param: ctx.name.to_owned(),
            op,
            args: Vec::new(),
            start: ctx.start,
        }
    }

    /// Scans an operator token with `accept`; `kind` on failure.
    fn scan_op(
        &mut self,
        ctx: &Ctx<'_>,
        accept: Accept,
        kind: ParseErrorKind,
    ) -> Result<String, ParseFailure> {
        self.sc.accept = accept;
        self.sc.mode = SCAN_IDENT;
        match self.sc.scan() {
            Token::Ident => Ok(std::mem::take(&mut self.sc.text)),
            _ => Err(ctx.fail(kind)),
        }
    }

    /// Parses one operator argument: a nested expression or a run of text.
    fn parse_param(
        &mut self,
        ctx: &Ctx<'_>,
        accept: Accept,
        mode: u8,
    ) -> Result<Node, ParseFailure> {
        self.sc.accept = accept;
        self.sc.mode = mode | SCAN_LBRACK;
        let start = self.sc.pos;
        match self.sc.scan() {
            Token::Lbrack => self.parse_func(start),
            Token::Ident => Ok(Node::Text(std::mem::take(&mut self.sc.text))),
            // Unreachable: the mode never includes SCAN_RBRACK here.
            Token::Rbrack => Ok(Node::Text("}".to_owned())),
            Token::Eof | Token::Illegal => Err(ctx.fail(ParseErrorKind::FuncSubstitution)),
        }
    }

    fn consume_rbrack(&mut self, ctx: &Ctx<'_>) -> Result<(), ParseFailure> {
        self.sc.mode = SCAN_RBRACK;
        if self.sc.scan() != Token::Rbrack {
            return Err(ctx.fail(ParseErrorKind::BadSubstitution));
        }
        Ok(())
    }

    fn parse_default_or_substr(&mut self, ctx: &Ctx<'_>) -> Result<Func, ParseFailure> {
        self.sc.read(); // ':'
        let r = self.sc.peek();
        // The reference rewinds by the width of the *peeked* rune, not of
        // the ':'; for a multi-byte rune that lands inside the name and the
        // substring parse below fails with "bad substitution". Same here.
        self.sc.unread();
        match r {
            '=' | '-' | '?' | '+' => self.parse_default_func(ctx),
            _ => self.parse_substr_func(ctx),
        }
    }

    /// `${var:pos}` and `${var:pos:len}`.
    fn parse_substr_func(&mut self, ctx: &Ctx<'_>) -> Result<Func, ParseFailure> {
        let op = self.scan_op(ctx, accept_one_colon, ParseErrorKind::BadSubstitution)?;
        let mut f = Self::new_func(ctx, op);
        f.args
            .push(self.parse_param(ctx, reject_colon_close, SCAN_IDENT)?);

        self.sc.accept = accept_colon;
        self.sc.mode = SCAN_IDENT | SCAN_RBRACK;
        match self.sc.scan() {
            Token::Rbrack => return Ok(f),
            Token::Ident => {}
            _ => return Err(ctx.fail(ParseErrorKind::BadSubstitution)),
        }

        f.args
            .push(self.parse_param(ctx, accept_not_closing, SCAN_IDENT)?);
        self.consume_rbrack(ctx)?;
        Ok(f)
    }

    /// `${var#pat}`, `${var##pat}`, `${var%pat}`, `${var%%pat}`.
    fn parse_remove_func(&mut self, ctx: &Ctx<'_>, accept: Accept) -> Result<Func, ParseFailure> {
        let op = self.scan_op(ctx, accept, ParseErrorKind::BadSubstitution)?;
        let mut f = Self::new_func(ctx, op);
        f.args
            .push(self.parse_param(ctx, accept_not_closing, SCAN_IDENT)?);
        self.consume_rbrack(ctx)?;
        Ok(f)
    }

    /// `${var/from/to}`, `${var//from/to}`, `${var/#from/to}`, `${var/%from/to}`.
    fn parse_replace_func(&mut self, ctx: &Ctx<'_>) -> Result<Func, ParseFailure> {
        let op = self.scan_op(ctx, accept_replace_func, ParseErrorKind::BadSubstitution)?;
        let mut f = Self::new_func(ctx, op);

        if self.sc.peek() == '/' {
            // Empty pattern: the next rune is already the delimiter.
            f.args.push(Node::Text(String::new()));
        } else {
            f.args
                .push(self.parse_param(ctx, accept_not_slash, SCAN_IDENT | SCAN_ESCAPE)?);
        }

        self.sc.accept = accept_slash;
        self.sc.mode = SCAN_IDENT;
        if self.sc.scan() != Token::Ident {
            return Err(ctx.fail(ParseErrorKind::BadSubstitution));
        }

        if self.sc.peek() == '}' {
            self.consume_rbrack(ctx)?;
            return Ok(f);
        }

        f.args
            .push(self.parse_param(ctx, accept_not_closing, SCAN_IDENT | SCAN_ESCAPE)?);
        self.consume_rbrack(ctx)?;
        Ok(f)
    }

    /// `${var=w}`, `${var:=w}`, `${var:-w}`, `${var:?w}`, `${var:+w}`.
    fn parse_default_func(&mut self, ctx: &Ctx<'_>) -> Result<Func, ParseFailure> {
        let accept: Accept = if self.sc.peek() == '=' {
            accept_one_equal
        } else {
            accept_default_func
        };
        let op = self.scan_op(ctx, accept, ParseErrorKind::DefaultFunction)?;
        let mut f = Self::new_func(ctx, op);
        loop {
            if self.sc.peek() == '}' {
                self.consume_rbrack(ctx)?;
                return Ok(f);
            }
            f.args
                .push(self.parse_param(ctx, accept_not_closing, SCAN_IDENT)?);
        }
    }

    /// `${var^}`, `${var^^}`, `${var,}`, `${var,,}`.
    fn parse_simple_op(&mut self, ctx: &Ctx<'_>, accept: Accept) -> Result<Func, ParseFailure> {
        let op = self.scan_op(ctx, accept, ParseErrorKind::BadSubstitution)?;
        self.consume_rbrack(ctx)?;
        Ok(Self::new_func(ctx, op))
    }

    /// `${#var}`.
    fn parse_len_func(&mut self, start: usize) -> Result<Node, ParseFailure> {
        let anon = Ctx { start, name: "" };
        let bad = || ParseFailure {
            kind: ParseErrorKind::BadSubstitution,
            offset: start,
            variable: None,
        };
        let op = self
            .scan_op(&anon, accept_one_hash, ParseErrorKind::BadSubstitution)
            .map_err(|_| bad())?;
        self.sc.accept = accept_ident;
        self.sc.mode = SCAN_IDENT;
        let name = match self.sc.scan() {
            Token::Ident => std::mem::take(&mut self.sc.text),
            _ => return Err(bad()),
        };
        let ctx = Ctx { start, name: &name };
        self.consume_rbrack(&ctx)?;
        let mut f = Self::new_func(&ctx, op);
        f.start = start;
        Ok(Node::Func(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Node {
        Node::Text(s.to_owned())
    }

    fn func(param: &str, op: &str, args: Vec<Node>, start: usize) -> Node {
        Node::Func(Func {
            param: param.to_owned(),
            op: op.to_owned(),
            args,
            start,
        })
    }

    #[test]
    fn parse_trees() {
        let cases: Vec<(&str, Vec<Node>)> = vec![
            ("", vec![]),
            ("plain $var text", vec![text("plain $var text")]),
            ("${a}", vec![func("a", "", vec![], 0)]),
            (
                "x${a}y",
                vec![text("x"), func("a", "", vec![], 1), text("y")],
            ),
            ("$${a}", vec![text("${a}")]),
            ("$$$${a}", vec![text("$${a}")]),
            ("$$${a}", vec![text("$"), func("a", "", vec![], 2)]),
            ("${#a}", vec![func("a", "#", vec![], 0)]),
            ("${a^^}", vec![func("a", "^^", vec![], 0)]),
            ("${a,^}", vec![func("a", ",^", vec![], 0)]),
            ("${a:1}", vec![func("a", ":", vec![text("1")], 0)]),
            (
                "${a:1:2}",
                vec![func("a", ":", vec![text("1"), text("2")], 0)],
            ),
            ("${a:-}", vec![func("a", ":-", vec![], 0)]),
            (
                "${a:-x${b}y}",
                vec![func(
                    "a",
                    ":-",
                    vec![text("x"), func("b", "", vec![], 6), text("y")],
                    0,
                )],
            ),
            (
                "${a=$${b}}",
                vec![func("a", "=", vec![text("$"), func("b", "", vec![], 5)], 0)],
            ),
            (
                "${a//x/y}",
                vec![func("a", "//", vec![text("x"), text("y")], 0)],
            ),
            (
                "${a/#/y}",
                vec![func("a", "/#", vec![text(""), text("y")], 0)],
            ),
            ("${a/x/}", vec![func("a", "/", vec![text("x")], 0)]),
            (
                r"${a/\//\\}",
                vec![func("a", "/", vec![text("/"), text("\\")], 0)],
            ),
            ("${a##*.}", vec![func("a", "##", vec![text("*.")], 0)]),
            ("a\0b", vec![text("a")]),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn parse_errors() {
        use ParseErrorKind::*;
        let cases: Vec<(&str, ParseErrorKind, usize, Option<&str>)> = vec![
            ("${", VariableName, 0, None),
            ("${}", VariableName, 0, None),
            ("ab${-x}", VariableName, 2, None),
            ("${a", MissingClosingBrace, 0, Some("a")),
            ("${a-b}", MissingClosingBrace, 0, Some("a")),
            ("${a+b}", MissingClosingBrace, 0, Some("a")),
            ("${a.b}", MissingClosingBrace, 0, Some("a")),
            ("${a:}", FuncSubstitution, 0, Some("a")),
            ("${a:1:}", FuncSubstitution, 0, Some("a")),
            ("${a:-x", FuncSubstitution, 0, Some("a")),
            ("${a:é}", BadSubstitution, 0, Some("a")),
            ("${a#}", FuncSubstitution, 0, Some("a")),
            ("${a/x}", BadSubstitution, 0, Some("a")),
            ("${a^x}", BadSubstitution, 0, Some("a")),
            ("${#}", BadSubstitution, 0, None),
            ("${#a:-x}", BadSubstitution, 0, Some("a")),
            ("x ${a:-${b}", FuncSubstitution, 2, Some("a")),
            ("${a:-${b.}}", MissingClosingBrace, 5, Some("b")),
        ];
        for (input, kind, offset, var) in cases {
            let got = parse(input).expect_err(input);
            assert_eq!(got.kind, kind, "input {input:?}");
            assert_eq!(got.offset, offset, "input {input:?}");
            assert_eq!(got.variable.as_deref(), var, "input {input:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!(
            "{}x{}",
            "${a:-".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}x{}",
            "${a:-".repeat(MAX_NESTING + 1),
            "}".repeat(MAX_NESTING + 1)
        );
        assert_eq!(
            parse(&deep).map_err(|e| e.kind),
            Err(ParseErrorKind::NestingTooDeep)
        );
        let hostile = "${a:-".repeat(100_000);
        assert!(parse(&hostile).is_err());
    }
}
