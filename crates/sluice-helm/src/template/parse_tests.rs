//! Go's `parse/parse_test.go` ported: `numberTests`, `parseTests` (trees
//! printed back, text quoted), `errorTests` (message fragments and line
//! numbers), comments, keywords as functions, `IsEmptyTree`, blocks.

use super::lex::ItemType;
use super::parse::{
    FuncCheck, Mode, Tree, is_empty_list, list_string_quoted, new_number, parse_mode,
};

struct Funcs(&'static [&'static str]);

impl FuncCheck for Funcs {
    fn has_function(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
}

const BUILTINS: Funcs = Funcs(&["printf", "contains"]);

fn parse_in(name: &str, text: &str, funcs: &Funcs, mode: Mode) -> Result<Vec<Tree>, String> {
    parse_mode(name, &std::sync::Arc::from(text), funcs, mode)
}

fn top<'a>(trees: &'a [Tree], name: &str) -> Option<&'a Tree> {
    trees.iter().find(|t| t.name == name)
}

// (text, isInt, isUint, isFloat, isComplex, int64, uint64, float64, complex)
type NumCase = (
    &'static str,
    bool,
    bool,
    bool,
    bool,
    i64,
    u64,
    f64,
    (f64, f64),
);

#[allow(clippy::too_many_arguments)]
const fn ok(
    t: &'static str,
    i: bool,
    u: bool,
    f: bool,
    c: bool,
    iv: i64,
    uv: u64,
    fv: f64,
    cv: (f64, f64),
) -> NumCase {
    (t, i, u, f, c, iv, uv, fv, cv)
}
const fn bad(t: &'static str) -> NumCase {
    (t, false, false, false, false, 0, 0, 0.0, (0.0, 0.0))
}

const NUMBER_TESTS: &[NumCase] = &[
    ok("0", true, true, true, false, 0, 0, 0.0, (0.0, 0.0)),
    ok("-0", true, true, true, false, 0, 0, 0.0, (0.0, 0.0)),
    ok("73", true, true, true, false, 73, 73, 73.0, (0.0, 0.0)),
    ok("7_3", true, true, true, false, 73, 73, 73.0, (0.0, 0.0)),
    ok(
        "0b10_010_01",
        true,
        true,
        true,
        false,
        73,
        73,
        73.0,
        (0.0, 0.0),
    ),
    ok(
        "0B10_010_01",
        true,
        true,
        true,
        false,
        73,
        73,
        73.0,
        (0.0, 0.0),
    ),
    ok("073", true, true, true, false, 0o73, 0o73, 59.0, (0.0, 0.0)),
    ok(
        "0o73",
        true,
        true,
        true,
        false,
        0o73,
        0o73,
        59.0,
        (0.0, 0.0),
    ),
    ok(
        "0O73",
        true,
        true,
        true,
        false,
        0o73,
        0o73,
        59.0,
        (0.0, 0.0),
    ),
    ok(
        "0x73",
        true,
        true,
        true,
        false,
        0x73,
        0x73,
        115.0,
        (0.0, 0.0),
    ),
    ok(
        "0X73",
        true,
        true,
        true,
        false,
        0x73,
        0x73,
        115.0,
        (0.0, 0.0),
    ),
    ok(
        "0x7_3",
        true,
        true,
        true,
        false,
        0x73,
        0x73,
        115.0,
        (0.0, 0.0),
    ),
    ok("-73", true, false, true, false, -73, 0, -73.0, (0.0, 0.0)),
    ok("+73", true, false, true, false, 73, 0, 73.0, (0.0, 0.0)),
    ok("100", true, true, true, false, 100, 100, 100.0, (0.0, 0.0)),
    ok(
        "1e9",
        true,
        true,
        true,
        false,
        1_000_000_000,
        1_000_000_000,
        1e9,
        (0.0, 0.0),
    ),
    ok(
        "-1e9",
        true,
        false,
        true,
        false,
        -1_000_000_000,
        0,
        -1e9,
        (0.0, 0.0),
    ),
    ok("-1.2", false, false, true, false, 0, 0, -1.2, (0.0, 0.0)),
    ok(
        "1e19",
        false,
        true,
        true,
        false,
        0,
        10_000_000_000_000_000_000,
        1e19,
        (0.0, 0.0),
    ),
    ok(
        "1e1_9",
        false,
        true,
        true,
        false,
        0,
        10_000_000_000_000_000_000,
        1e19,
        (0.0, 0.0),
    ),
    ok(
        "1E19",
        false,
        true,
        true,
        false,
        0,
        10_000_000_000_000_000_000,
        1e19,
        (0.0, 0.0),
    ),
    ok("-1e19", false, false, true, false, 0, 0, -1e19, (0.0, 0.0)),
    ok("0x_1p4", true, true, true, false, 16, 16, 16.0, (0.0, 0.0)),
    ok("0X_1P4", true, true, true, false, 16, 16, 16.0, (0.0, 0.0)),
    ok(
        "0x_1p-4",
        false,
        false,
        true,
        false,
        0,
        0,
        1.0 / 16.0,
        (0.0, 0.0),
    ),
    ok("4i", false, false, false, true, 0, 0, 0.0, (0.0, 4.0)),
    ok(
        "-1.2+4.2i",
        false,
        false,
        false,
        true,
        0,
        0,
        0.0,
        (-1.2, 4.2),
    ),
    ok("073i", false, false, false, true, 0, 0, 0.0, (0.0, 73.0)),
    ok("0i", true, true, true, true, 0, 0, 0.0, (0.0, 0.0)),
    ok("-1.2+0i", false, false, true, true, 0, 0, -1.2, (-1.2, 0.0)),
    ok(
        "-12+0i",
        true,
        false,
        true,
        true,
        -12,
        0,
        -12.0,
        (-12.0, 0.0),
    ),
    ok("13+0i", true, true, true, true, 13, 13, 13.0, (13.0, 0.0)),
    ok(
        "0123",
        true,
        true,
        true,
        false,
        0o123,
        0o123,
        83.0,
        (0.0, 0.0),
    ),
    ok("-0x0", true, true, true, false, 0, 0, 0.0, (0.0, 0.0)),
    ok(
        "0xdeadbeef",
        true,
        true,
        true,
        false,
        0xdeadbeef,
        0xdeadbeef,
        3735928559.0,
        (0.0, 0.0),
    ),
    ok("'a'", true, true, true, false, 97, 97, 97.0, (0.0, 0.0)),
    ok(r"'\n'", true, true, true, false, 10, 10, 10.0, (0.0, 0.0)),
    ok(r"'\\'", true, true, true, false, 92, 92, 92.0, (0.0, 0.0)),
    ok(r"'\''", true, true, true, false, 39, 39, 39.0, (0.0, 0.0)),
    ok(
        r"'\xFF'",
        true,
        true,
        true,
        false,
        255,
        255,
        255.0,
        (0.0, 0.0),
    ),
    ok(
        "'パ'",
        true,
        true,
        true,
        false,
        0x30d1,
        0x30d1,
        12497.0,
        (0.0, 0.0),
    ),
    ok(
        r"'\u30d1'",
        true,
        true,
        true,
        false,
        0x30d1,
        0x30d1,
        12497.0,
        (0.0, 0.0),
    ),
    ok(
        r"'\U000030d1'",
        true,
        true,
        true,
        false,
        0x30d1,
        0x30d1,
        12497.0,
        (0.0, 0.0),
    ),
    bad("+-2"),
    bad("0x123."),
    bad("1e."),
    bad("0xi."),
    bad("1+2."),
    bad("'x"),
    bad("'xx'"),
    bad("'433937734937734969526500969526500'"),
    ok(
        "0xef",
        true,
        true,
        true,
        false,
        0xef,
        0xef,
        239.0,
        (0.0, 0.0),
    ),
];

/// Whether Go's `fmt.Sscan` reads `s` as a complex number (the test's
/// way of choosing the item type): a real and an imaginary part.
fn looks_complex(s: &str) -> bool {
    let b = s.as_bytes();
    s.ends_with('i')
        && (1..b.len()).any(|i| {
            (b[i] == b'+' || b[i] == b'-')
                && !matches!(b[i - 1], b'e' | b'E' | b'p' | b'P')
                && b[i - 1].is_ascii_digit()
        })
}

#[test]
fn go_number_tests() {
    let mut failures = Vec::new();
    for &(text, is_int, is_uint, is_float, is_complex, i, u, f, c) in NUMBER_TESTS {
        let typ = if text.starts_with('\'') {
            ItemType::CharConstant
        } else if looks_complex(text) {
            ItemType::Complex
        } else {
            ItemType::Number
        };
        let want_ok = is_int || is_uint || is_float || is_complex;
        match new_number(0, text, typ) {
            Err(e) if want_ok => failures.push(format!("{text}: unexpected error {e}")),
            Ok(_) if !want_ok => failures.push(format!("{text}: expected error")),
            Err(_) => {}
            Ok(n) => {
                let got = (n.is_int, n.is_uint, n.is_float, n.is_complex);
                if got != (is_int, is_uint, is_float, is_complex) {
                    failures.push(format!("{text}: kinds {got:?}"));
                }
                if is_int && n.int64 != i {
                    failures.push(format!("{text}: int64 {}", n.int64));
                }
                if is_uint && n.uint64 != u {
                    failures.push(format!("{text}: uint64 {}", n.uint64));
                }
                if is_float && n.float64 != f {
                    failures.push(format!("{text}: float64 {}", n.float64));
                }
                if is_complex && n.complex != c {
                    failures.push(format!("{text}: complex {:?}", n.complex));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (name, input, ok, result) as in Go's `parseTests`.
const PARSE_TESTS: &[(&str, &str, bool, &str)] = &[
    ("empty", "", true, ""),
    ("comment", "{{/*\n\n\n*/}}", true, ""),
    ("spaces", " \t\n", true, r#"" \t\n""#),
    ("text", "some text", true, r#""some text""#),
    ("emptyAction", "{{}}", false, "{{}}"),
    ("field", "{{.X}}", true, "{{.X}}"),
    ("simple command", "{{printf}}", true, "{{printf}}"),
    ("$ invocation", "{{$}}", true, "{{$}}"),
    (
        "variable invocation",
        "{{with $x := 3}}{{$x 23}}{{end}}",
        true,
        "{{with $x := 3}}{{$x 23}}{{end}}",
    ),
    ("variable with fields", "{{$.I}}", true, "{{$.I}}"),
    (
        "multi-word command",
        "{{printf `%d` 23}}",
        true,
        "{{printf `%d` 23}}",
    ),
    ("pipeline", "{{.X|.Y}}", true, "{{.X | .Y}}"),
    (
        "pipeline with decl",
        "{{$x := .X|.Y}}",
        true,
        "{{$x := .X | .Y}}",
    ),
    (
        "nested pipeline",
        "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
        true,
        "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
    ),
    (
        "field applied to parentheses",
        "{{(.Y .Z).Field}}",
        true,
        "{{(.Y .Z).Field}}",
    ),
    (
        "simple if",
        "{{if .X}}hello{{end}}",
        true,
        r#"{{if .X}}"hello"{{end}}"#,
    ),
    (
        "if with else",
        "{{if .X}}true{{else}}false{{end}}",
        true,
        r#"{{if .X}}"true"{{else}}"false"{{end}}"#,
    ),
    (
        "if with else if",
        "{{if .X}}true{{else if .Y}}false{{end}}",
        true,
        r#"{{if .X}}"true"{{else}}{{if .Y}}"false"{{end}}{{end}}"#,
    ),
    (
        "if else chain",
        "+{{if .X}}X{{else if .Y}}Y{{else if .Z}}Z{{end}}+",
        true,
        r#""+"{{if .X}}"X"{{else}}{{if .Y}}"Y"{{else}}{{if .Z}}"Z"{{end}}{{end}}{{end}}"+""#,
    ),
    (
        "simple range",
        "{{range .X}}hello{{end}}",
        true,
        r#"{{range .X}}"hello"{{end}}"#,
    ),
    (
        "chained field range",
        "{{range .X.Y.Z}}hello{{end}}",
        true,
        r#"{{range .X.Y.Z}}"hello"{{end}}"#,
    ),
    (
        "nested range",
        "{{range .X}}hello{{range .Y}}goodbye{{end}}{{end}}",
        true,
        r#"{{range .X}}"hello"{{range .Y}}"goodbye"{{end}}{{end}}"#,
    ),
    (
        "range with else",
        "{{range .X}}true{{else}}false{{end}}",
        true,
        r#"{{range .X}}"true"{{else}}"false"{{end}}"#,
    ),
    (
        "range over pipeline",
        "{{range .X|.M}}true{{else}}false{{end}}",
        true,
        r#"{{range .X | .M}}"true"{{else}}"false"{{end}}"#,
    ),
    (
        "range []int",
        "{{range .SI}}{{.}}{{end}}",
        true,
        "{{range .SI}}{{.}}{{end}}",
    ),
    (
        "range 1 var",
        "{{range $x := .SI}}{{.}}{{end}}",
        true,
        "{{range $x := .SI}}{{.}}{{end}}",
    ),
    (
        "range 2 vars",
        "{{range $x, $y := .SI}}{{.}}{{end}}",
        true,
        "{{range $x, $y := .SI}}{{.}}{{end}}",
    ),
    (
        "range with break",
        "{{range .SI}}{{.}}{{break}}{{end}}",
        true,
        "{{range .SI}}{{.}}{{break}}{{end}}",
    ),
    (
        "range with continue",
        "{{range .SI}}{{.}}{{continue}}{{end}}",
        true,
        "{{range .SI}}{{.}}{{continue}}{{end}}",
    ),
    (
        "constants",
        "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}",
        true,
        "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}",
    ),
    ("template", "{{template `x`}}", true, r#"{{template "x"}}"#),
    (
        "template with arg",
        "{{template `x` .Y}}",
        true,
        r#"{{template "x" .Y}}"#,
    ),
    (
        "with",
        "{{with .X}}hello{{end}}",
        true,
        r#"{{with .X}}"hello"{{end}}"#,
    ),
    (
        "with with else",
        "{{with .X}}hello{{else}}goodbye{{end}}",
        true,
        r#"{{with .X}}"hello"{{else}}"goodbye"{{end}}"#,
    ),
    (
        "with with else with",
        "{{with .X}}hello{{else with .Y}}goodbye{{end}}",
        true,
        r#"{{with .X}}"hello"{{else}}{{with .Y}}"goodbye"{{end}}{{end}}"#,
    ),
    (
        "with else chain",
        "{{with .X}}X{{else with .Y}}Y{{else with .Z}}Z{{end}}",
        true,
        r#"{{with .X}}"X"{{else}}{{with .Y}}"Y"{{else}}{{with .Z}}"Z"{{end}}{{end}}{{end}}"#,
    ),
    ("trim left", "x \r\n\t{{- 3}}", true, r#""x"{{3}}"#),
    ("trim right", "{{3 -}}\n\n\ty", true, r#"{{3}}"y""#),
    (
        "trim left and right",
        "x \r\n\t{{- 3 -}}\n\n\ty",
        true,
        r#""x"{{3}}"y""#,
    ),
    (
        "trim with extra spaces",
        "x\n{{-  3   -}}\ny",
        true,
        r#""x"{{3}}"y""#,
    ),
    (
        "comment trim left",
        "x \r\n\t{{- /* hi */}}",
        true,
        r#""x""#,
    ),
    (
        "comment trim right",
        "{{/* hi */ -}}\n\n\ty",
        true,
        r#""y""#,
    ),
    (
        "comment trim left and right",
        "x \r\n\t{{- /* */ -}}\n\n\ty",
        true,
        r#""x""y""#,
    ),
    (
        "block definition",
        r#"{{block "foo" .}}hello{{end}}"#,
        true,
        r#"{{template "foo" .}}"#,
    ),
    (
        "newline in assignment",
        "{{ $x \n := \n 1 \n }}",
        true,
        "{{$x := 1}}",
    ),
    ("newline in empty action", "{{\n}}", false, "{{\n}}"),
    (
        "newline in pipeline",
        "{{\n\"x\"\n|\nprintf\n}}",
        true,
        r#"{{"x" | printf}}"#,
    ),
    ("newline in comment", "{{/*\nhello\n*/}}", true, ""),
    ("newline in comment", "{{-\n/*\nhello\n*/\n-}}", true, ""),
    (
        "spaces around continue",
        "{{range .SI}}{{.}}{{ continue }}{{end}}",
        true,
        "{{range .SI}}{{.}}{{continue}}{{end}}",
    ),
    (
        "spaces around break",
        "{{range .SI}}{{.}}{{ break }}{{end}}",
        true,
        "{{range .SI}}{{.}}{{break}}{{end}}",
    ),
    ("unclosed action", "hello{{range", false, ""),
    ("unmatched end", "{{end}}", false, ""),
    ("unmatched else", "{{else}}", false, ""),
    (
        "unmatched else after if",
        "{{if .X}}hello{{end}}{{else}}",
        false,
        "",
    ),
    (
        "multiple else",
        "{{if .X}}1{{else}}2{{else}}3{{end}}",
        false,
        "",
    ),
    ("missing end", "hello{{range .x}}", false, ""),
    (
        "missing end after else",
        "hello{{range .x}}{{else}}",
        false,
        "",
    ),
    ("undefined function", "hello{{undefined}}", false, ""),
    ("undefined variable", "{{$x}}", false, ""),
    (
        "variable undefined after end",
        "{{with $x := 4}}{{end}}{{$x}}",
        false,
        "",
    ),
    (
        "variable undefined in template",
        "{{template $v}}",
        false,
        "",
    ),
    ("declare with field", "{{with $x.Y := 4}}{{end}}", false, ""),
    ("template with field ref", "{{template .X}}", false, ""),
    ("template with var", "{{template $v}}", false, ""),
    ("invalid punctuation", "{{printf 3, 4}}", false, ""),
    (
        "multidecl outside range",
        "{{with $v, $u := 3}}{{end}}",
        false,
        "",
    ),
    (
        "too many decls in range",
        "{{range $u, $v, $w := 3}}{{end}}",
        false,
        "",
    ),
    (
        "dot applied to parentheses",
        "{{printf (printf .).}}",
        false,
        "",
    ),
    ("adjacent args", "{{printf 3`x`}}", false, ""),
    ("adjacent args with .", "{{printf `x`.}}", false, ""),
    (
        "extra end after if",
        "{{if .X}}a{{else if .Y}}b{{end}}{{end}}",
        false,
        "",
    ),
    (
        "break outside range",
        "{{range .}}{{end}} {{break}}",
        false,
        "",
    ),
    (
        "continue outside range",
        "{{range .}}{{end}} {{continue}}",
        false,
        "",
    ),
    (
        "break in range else",
        "{{range .}}{{else}}{{break}}{{end}}",
        false,
        "",
    ),
    (
        "continue in range else",
        "{{range .}}{{else}}{{continue}}{{end}}",
        false,
        "",
    ),
    ("bug0a", "{{$x := 0}}{{$x}}", true, "{{$x := 0}}{{$x}}"),
    ("bug0b", "{{$x += 1}}{{$x}}", false, ""),
    ("bug0c", "{{$x ! 2}}{{$x}}", false, ""),
    ("bug0d", "{{$x % 3}}{{$x}}", false, ""),
    ("bug0e", "{{range $x := $y := 3}}{{end}}", false, ""),
    ("bug1a", "{{$x:=.}}{{$x!2}}", false, ""),
    ("bug1b", "{{$x:=.}}{{$x+2}}", false, ""),
    ("bug1c", "{{$x:=.}}{{$x +2}}", true, "{{$x := .}}{{$x +2}}"),
    (
        "bug2a",
        "{{range $x := 0}}{{$x}}{{end}}",
        true,
        "{{range $x := 0}}{{$x}}{{end}}",
    ),
    (
        "bug2b",
        "{{range $x = 0}}{{$x}}{{end}}",
        true,
        "{{range $x = 0}}{{$x}}{{end}}",
    ),
    ("dot after integer", "{{1.E}}", false, ""),
    ("dot after float", "{{0.1.E}}", false, ""),
    ("dot after boolean", "{{true.E}}", false, ""),
    ("dot after char", "{{'a'.any}}", false, ""),
    ("dot after string", r#"{{"hello".guys}}"#, false, ""),
    ("dot after dot", "{{..E}}", false, ""),
    ("dot after nil", "{{nil.E}}", false, ""),
    ("wrong pipeline dot", "{{12|.}}", false, ""),
    ("wrong pipeline number", "{{.|12|printf}}", false, ""),
    ("wrong pipeline string", "{{.|printf|\"error\"}}", false, ""),
    ("wrong pipeline char", "{{12|printf|'e'}}", false, ""),
    ("wrong pipeline boolean", "{{.|true}}", false, ""),
    ("wrong pipeline nil", "{{'c'|nil}}", false, ""),
    ("empty pipeline", r#"{{printf "%d" ( ) }}"#, false, ""),
    (
        "block definition",
        r#"{{block "foo"}}hello{{end}}"#,
        false,
        "",
    ),
    ("paren nesting normal", "{{ (( 1 )) }}", true, "{{((1))}}"),
    (
        "paren nesting at limit",
        "{{ ((( 1 ))) }}",
        true,
        "{{(((1)))}}",
    ),
    (
        "paren nesting exceeds limit",
        "{{ (((( 1 )))) }}",
        false,
        "template: test:1: max expression depth exceeded",
    ),
    (
        "paren nesting in pipeline",
        "{{ ((( 1 ))) | printf }}",
        true,
        "{{(((1))) | printf}}",
    ),
    (
        "paren nesting in pipeline exceeds limit",
        "{{ (((( 1 )))) | printf }}",
        false,
        "template: test:1: max expression depth exceeded",
    ),
    (
        "paren nesting with other constructs",
        "{{ if ((( true ))) }}YES{{ end }}",
        true,
        "{{if (((true)))}}\"YES\"{{end}}",
    ),
    (
        "paren nesting with other constructs exceeds limit",
        "{{ if (((( true )))) }}YES{{ end }}",
        false,
        "template: test:1: max expression depth exceeded",
    ),
];

#[test]
fn go_parse_tests() {
    let mode = Mode {
        max_paren: 3,
        ..Mode::default()
    };
    let mut failures = Vec::new();
    for (name, input, ok, result) in PARSE_TESTS {
        let pname = if result.starts_with("template: test:") {
            "test"
        } else {
            name
        };
        match parse_in(pname, input, &BUILTINS, mode) {
            Ok(_) if !ok => failures.push(format!("{name}: expected error")),
            Err(e) if *ok => failures.push(format!("{name}: unexpected error {e}")),
            Err(e) => {
                if result.starts_with("template:") && e != *result {
                    failures.push(format!("{name}: error {e:?}, want {result:?}"));
                }
            }
            Ok(trees) => match top(&trees, pname) {
                None => failures.push(format!("{name}: no tree")),
                Some(t) => {
                    let got = list_string_quoted(t);
                    if got != *result {
                        failures.push(format!("{name}: got {got:?}, want {result:?}"));
                    }
                }
            },
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn go_parse_with_comments() {
    let mode = Mode {
        comments: true,
        ..Mode::default()
    };
    for (input, want) in [
        ("{{/*\n\n\n*/}}", "{{/*\n\n\n*/}}"),
        ("x \r\n\t{{- /* hi */}}", r#""x"{{/* hi */}}"#),
        ("{{/* hi */ -}}\n\n\ty", r#"{{/* hi */}}"y""#),
        ("x \r\n\t{{- /* */ -}}\n\n\ty", r#""x"{{/* */}}"y""#),
    ] {
        let trees = parse_in("c", input, &Funcs(&[]), mode).expect("parses");
        let t = top(&trees, "c").expect("tree");
        assert_eq!(list_string_quoted(t), want, "{input:?}");
    }
}

#[test]
fn go_keywords_and_funcs() {
    let inp = "{{range .X}}{{break 20}}{{end}}";
    assert!(parse_in("", inp, &Funcs(&["break"]), Mode::default()).is_ok());
    assert!(parse_in("", inp, &Funcs(&[]), Mode::default()).is_err());
}

#[test]
fn go_skip_func_check() {
    let mode = Mode {
        skip_func_check: true,
        ..Mode::default()
    };
    let trees = parse_in("s", "{{fn 1 2}}", &Funcs(&[]), mode).expect("parses");
    assert_eq!(
        list_string_quoted(top(&trees, "s").expect("tree")),
        "{{fn 1 2}}"
    );
}

#[test]
fn go_is_empty() {
    for (input, empty) in [
        ("", true),
        ("hello", false),
        (" \t\n \t\n", true),
        ("{{/* comment */}}", true),
        (r#"{{define "x"}}something{{end}}"#, true),
        (
            "{{define `x`}}something{{end}}\n\n{{define `y`}}something{{end}}\n\n",
            true,
        ),
        (
            "{{define `x`}}something{{end}}\nx\n{{define `y`}}something{{end}}\ny\n",
            false,
        ),
        ("{{define `x`}}something{{end}}{{if 3}}foo{{end}}", false),
    ] {
        let trees = parse_in("root", input, &Funcs(&[]), Mode::default()).expect("parses");
        let t = top(&trees, "root").expect("tree");
        assert_eq!(is_empty_list(&t.root, &t.source), empty, "{input:?}");
    }
}

/// Go's `errorTests`: each error contains the fragment.
const ERROR_TESTS: &[(&str, &str, &str)] = &[
    ("unclosed1", "line1\n{{", "unclosed1:2: unclosed action"),
    (
        "unclosed2",
        "line1\n{{define `x`}}line2\n{{",
        "unclosed2:3: unclosed action",
    ),
    (
        "unclosed3",
        "line1\n{{\"x\"\n\"y\"\n",
        "unclosed3:4: unclosed action started at unclosed3:2",
    ),
    (
        "unclosed4",
        "{{\n\n\n\n\n",
        "unclosed4:6: unclosed action started at unclosed4:1",
    ),
    (
        "var1",
        "line1\n{{\nx\n}}",
        r#"var1:3: function "x" not defined"#,
    ),
    ("function", "{{foo}}", r#"function "foo" not defined"#),
    ("comment1", "{{/*}}", "comment1:1: unclosed comment"),
    (
        "comment2",
        "{{/*\nhello\n}}",
        "comment2:1: unclosed comment",
    ),
    ("lparen", "{{.X (1 2 3}}", "unclosed left paren"),
    ("rparen", "{{.X 1 2 3 ) }}", "unexpected right paren"),
    ("rparen2", "{{(.X 1 2 3", "unclosed action"),
    ("space", "{{`x`3}}", "in operand"),
    ("idchar", "{{a#}}", "'#'"),
    ("charconst", "{{'a}}", "unterminated character constant"),
    ("stringconst", r#"{{"a}}"#, "unterminated quoted string"),
    ("rawstringconst", "{{`a}}", "unterminated raw quoted string"),
    ("number", "{{0xi}}", "number syntax"),
    (
        "multidefine",
        "{{define `a`}}a{{end}}{{define `a`}}b{{end}}",
        "multiple definition of template",
    ),
    ("eof", "{{range .X}}", "unexpected EOF"),
    (
        "variable",
        "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}",
        r#"unexpected ":=""#,
    ),
    ("multidecl", "{{$a,$b,$c := 23}}", "too many declarations"),
    ("undefvar", "{{$a}}", "undefined variable"),
    ("wrongdot", "{{true.any}}", "unexpected . after term"),
    (
        "wrongpipeline",
        "{{12|false}}",
        "non executable command in pipeline",
    ),
    (
        "emptypipeline",
        "{{ ( ) }}",
        "missing value for parenthesized pipeline",
    ),
    (
        "multilinerawstring",
        "{{ $v := `\n` }} {{",
        "multilinerawstring:2: unclosed action",
    ),
    ("rangeundefvar", "{{range $k}}{{end}}", "undefined variable"),
    (
        "rangeundefvars",
        "{{range $k, $v}}{{end}}",
        "undefined variable",
    ),
    (
        "rangemissingvalue1",
        "{{range $k,}}{{end}}",
        "missing value for range",
    ),
    (
        "rangemissingvalue2",
        "{{range $k, $v := }}{{end}}",
        "missing value for range",
    ),
    (
        "rangenotvariable1",
        "{{range $k, .}}{{end}}",
        "range can only initialize variables",
    ),
    (
        "rangenotvariable2",
        "{{range $k, 123 := .}}{{end}}",
        "range can only initialize variables",
    ),
];

#[test]
fn go_error_tests() {
    let mut failures = Vec::new();
    for (name, input, frag) in ERROR_TESTS {
        match parse_in(name, input, &Funcs(&[]), Mode::default()) {
            Ok(_) => failures.push(format!("{name}: expected error {frag:?}")),
            Err(e) if !e.contains(frag) => failures.push(format!("{name}: {e:?} lacks {frag:?}")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn go_block() {
    let trees = parse_in(
        "outer",
        r#"a{{block "inner" .}}bar{{.}}baz{{end}}b"#,
        &Funcs(&[]),
        Mode::default(),
    )
    .expect("parses");
    let outer = top(&trees, "outer").expect("outer");
    let inner = top(&trees, "inner").expect("inner");
    let s = |t: &Tree| {
        let mut s = String::new();
        super::parse::write_list(&mut s, &t.root, &t.source, false);
        s
    };
    assert_eq!(s(outer), r#"a{{template "inner" .}}b"#);
    assert_eq!(s(inner), "bar{{.}}baz");
}

/// Every template of the shared Helm corpus (`../shared/conformance/helm`,
/// 8 real charts with their subcharts) parses, as it does in Helm. Function
/// names are not checked here (the function library is separate). Skips
/// when the corpus is absent.
#[test]
fn corpus_templates_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/helm/charts");
    if !root.is_dir() {
        eprintln!("skipping: {} is absent", root.display());
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.components().any(|c| c.as_os_str() == "templates")
                && p.extension().is_none_or(|x| x != "tgz")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mode = Mode {
        skip_func_check: true,
        ..Mode::default()
    };
    let mut failures = Vec::new();
    let mut bytes = 0;
    let start = std::time::Instant::now();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        bytes += text.len();
        let name = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let r = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || parse_in(&name, &text, &Funcs(&[]), mode).map(|t| t.len()))
            .expect("thread")
            .join();
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("{}: panicked", f.display())),
        }
    }
    eprintln!(
        "parsed {} files, {bytes} bytes, in {:?}",
        files.len(),
        start.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(files.len() > 100);
}
