//! The template functions (`sluice_helm::funcs`): sprig v3.3.0's tests and
//! Helm v4.2.4's `pkg/engine/funcs_test.go`, ported as tables (the facts,
//! in our words), run through the template engine with Helm's function
//! map; and direct calls for the conversions sprig tests without a
//! template.

use std::collections::BTreeMap;

use sluice_helm::funcs::{self, helm_funcs};
use sluice_helm::template::{MissingKey, Options, Templates, Value};

/// Renders `tpl` with Helm's functions and `data` as dot.
fn render(tpl: &str, data: &Value) -> Result<String, String> {
    let mut t = Templates::new("test", helm_funcs());
    t.parse("test", tpl).map_err(|e| e.to_string())?;
    t.execute("test", data).map_err(|e| e.to_string())
}

fn empty() -> Value {
    Value::map(BTreeMap::new())
}

/// Runs a table of (template, expected output) cases with an empty dot;
/// every failure is reported at once.
fn table(cases: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (tpl, want) in cases {
        match render(tpl, &empty()) {
            Ok(got) if got == *want => {}
            other => bad.push(format!("{tpl}\n   want {want:?}\n   got  {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} failed:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

fn json(v: serde_json::Value) -> Value {
    Value::from_json(&v)
}

/// Renders with `data` and compares.
fn with(tpl: &str, data: &Value, want: &str) {
    assert_eq!(render(tpl, data).as_deref(), Ok(want), "{tpl}");
}

fn fails(tpl: &str, data: &Value) -> String {
    match render(tpl, data) {
        Ok(out) => panic!(
            "{tpl}: expected an error, got {} bytes: {:?}",
            out.len(),
            out.chars().take(200).collect::<String>()
        ),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------
// sprig strings_test.go
// ---------------------------------------------------------------------------

#[test]
fn sprig_strings() {
    table(&[
        (r#"{{"fooo" | substr 0 3 }}"#, "foo"),
        (r#"{{"foo" | substr 0 10 }}"#, "foo"),
        (r#"{{ "foooooo" | trunc 3 }}"#, "foo"),
        (r#"{{ "baaaaaar" | trunc -3 }}"#, "aar"),
        (r#"{{ "baaaaaar" | trunc -999 }}"#, "baaaaaar"),
        (r#"{{ "baaaaaz" | trunc 0 }}"#, ""),
        (r#"{{quote "a" "b" "c"}}"#, r#""a" "b" "c""#),
        (r#"{{quote "\"a\"" "b" "c"}}"#, r#""\"a\"" "b" "c""#),
        (r#"{{quote 1 2 3 }}"#, r#""1" "2" "3""#),
        (r#"{{squote "a" "b" "c"}}"#, "'a' 'b' 'c'"),
        (r#"{{squote 1 2 3 }}"#, "'1' '2' '3'"),
        (r#"{{if contains "cat" "fair catch"}}1{{end}}"#, "1"),
        (r#"{{if hasPrefix "cat" "catch"}}1{{end}}"#, "1"),
        (r#"{{if hasSuffix "cat" "ducat"}}1{{end}}"#, "1"),
        (r#"{{trim "   5.00   "}}"#, "5.00"),
        (r#"{{trimAll "$" "$5.00$"}}"#, "5.00"),
        (r#"{{trimPrefix "$" "$5.00"}}"#, "5.00"),
        (r#"{{trimSuffix "$" "5.00$"}}"#, "5.00"),
        (r#"{{$v := "foo$bar$baz" | split "$"}}{{$v._0}}"#, "foo"),
        (r#"{{$v := "foo$bar$baz" | splitn "$" 2}}{{$v._0}}"#, "foo"),
        (r#"{{ toString 1 | kindOf }}"#, "string"),
        (
            r#"{{ $s := list 1 2 3 | toStrings }}{{ index $s 1 | kindOf }}"#,
            "string",
        ),
        (r#"{{ tuple "a" "b" "c" | join "-" }}"#, "a-b-c"),
        (r#"{{ tuple 1 2 3 | join "-" }}"#, "1-2-3"),
        (r#"{{ list "c" "a" "b" | sortAlpha | join "" }}"#, "abc"),
        (r#"{{ list 2 1 4 3 | sortAlpha | join "" }}"#, "1234"),
        (r#"{{b64enc "coffee"}}"#, "Y29mZmVl"),
        (r#"{{b64dec "Y29mZmVl"}}"#, "coffee"),
        (r#"{{b32enc "coffee"}}"#, "MNXWMZTFMU======"),
        (r#"{{b32dec "MNXWMZTFMU======"}}"#, "coffee"),
        (r#"{{abbrev 5 "hello world"}}"#, "he..."),
        (r#"{{abbrevboth 5 10 "1234 5678 9123"}}"#, "...5678..."),
        (r#"{{nospace "h e l l o "}}"#, "hello"),
        (r#"{{untitle "First Try"}}"#, "first try"),
        (r#"{{initials "First Try"}}"#, "FT"),
        (r#"{{wrap 5 "Hello World"}}"#, "Hello\nWorld"),
        (r#"{{wrapWith 5 "\t" "Hello World"}}"#, "Hello\tWorld"),
        (r#"{{$b := "b"}}{{"c" | cat "a" $b}}"#, "a b c"),
        (r#"{{indent 4 "a\nb\nc"}}"#, "    a\n    b\n    c"),
        (r#"{{nindent 4 "a\nb\nc"}}"#, "\n    a\n    b\n    c"),
        (
            r#"{{"I Am Henry VIII" | replace " " "-"}}"#,
            "I-Am-Henry-VIII",
        ),
        (
            r#"{{$num := len "two"}}{{$num}} {{$num | plural "1 char" "chars"}}"#,
            "3 chars",
        ),
        (r#"{{len "t" | plural "cheese" "%d chars"}}"#, "cheese"),
    ]);
    let nil = json(serde_json::json!({"value": null}));
    with(r#"{{ .value | quote }}"#, &nil, "");
    with(r#"{{ .value | squote }}"#, &nil, "");
    with(r#"{{ .value | cat "a" "b"}}"#, &nil, "a b");
    with(r#"{{ list 1 .value 2 | toStrings }}"#, &nil, "[1 2]");
    let v = json(serde_json::json!({"V": ["a", "b", "c"], "S": "abc", "N": ["1", null, "2"]}));
    with(r#"{{ join "-" .V }}"#, &v, "a-b-c");
    with(r#"{{ join "-" .S }}"#, &v, "abc");
    with(r#"{{ join "-" .N }}"#, &v, "1-2");
    // A list of ints from Go ([]int{1, 2, 3}): float64 here (values).
    let n = Value::map(BTreeMap::from([(
        "V".to_string(),
        Value::list(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
    )]));
    with(r#"{{ join "-" .V }}"#, &n, "1-2-3");
    for f in ["randAlphaNum", "randAlpha", "randAscii", "randNumeric"] {
        let out = render(&format!("{{{{{f} 5}}}}"), &empty()).unwrap_or_default();
        assert_eq!(out.chars().count(), 5, "{f}: {out:?}");
    }
}

// ---------------------------------------------------------------------------
// sprig functions_test.go (env/expandenv are not in Helm's map)
// ---------------------------------------------------------------------------

#[test]
fn sprig_functions() {
    table(&[
        (r#"{{ base "foo/bar" }}"#, "bar"),
        (r#"{{ dir "foo/bar/baz" }}"#, "foo/bar"),
        (r#"{{ isAbs "/foo" }}"#, "true"),
        (r#"{{ isAbs "foo" }}"#, "false"),
        (r#"{{ clean "/foo/../foo/../bar" }}"#, "/bar"),
        (r#"{{ ext "/foo/bar/baz.txt" }}"#, ".txt"),
        (r#"{{ osBase "foo/bar" }}"#, "bar"),
        (r#"{{ osDir "foo/bar/baz" }}"#, "foo/bar"),
        (r#"{{ osIsAbs "/foo" }}"#, "true"),
        (r#"{{ osIsAbs "foo" }}"#, "false"),
        (r#"{{ osClean "/foo/../foo/../bar" }}"#, "/bar"),
        (r#"{{ osExt "/foo/bar/baz.txt" }}"#, ".txt"),
        (r#"{{ snakecase "FirstName" }}"#, "first_name"),
        (r#"{{ snakecase "HTTPServer" }}"#, "http_server"),
        (r#"{{ snakecase "NoHTTPS" }}"#, "no_https"),
        (r#"{{ snakecase "GO_PATH" }}"#, "go_path"),
        (r#"{{ snakecase "GO PATH" }}"#, "go_path"),
        (r#"{{ snakecase "GO-PATH" }}"#, "go_path"),
        (r#"{{ camelcase "http_server" }}"#, "HttpServer"),
        (r#"{{ camelcase "_camel_case" }}"#, "_CamelCase"),
        (r#"{{ camelcase "no_https" }}"#, "NoHttps"),
        (r#"{{ camelcase "_complex__case_" }}"#, "_Complex_Case_"),
        (r#"{{ camelcase "all" }}"#, "All"),
        (r#"{{ kebabcase "FirstName" }}"#, "first-name"),
        (r#"{{ kebabcase "HTTPServer" }}"#, "http-server"),
        (r#"{{ kebabcase "NoHTTPS" }}"#, "no-https"),
        (r#"{{ kebabcase "GO_PATH" }}"#, "go-path"),
        (r#"{{ kebabcase "GO PATH" }}"#, "go-path"),
        (r#"{{ kebabcase "GO-PATH" }}"#, "go-path"),
        (r#"{{ regexQuoteMeta "1.2.3" }}"#, r"1\.2\.3"),
        (r#"{{ regexQuoteMeta "pretzel" }}"#, "pretzel"),
    ]);
    // shuffle: sprig seeds math/rand to test one permutation; here the
    // OS source is used, so only the multiset of characters is checked.
    let out = render(r#"{{ shuffle "Hello World" }}"#, &empty()).unwrap_or_default();
    let (mut a, mut b): (Vec<char>, Vec<char>) =
        (out.chars().collect(), "Hello World".chars().collect());
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
}

// ---------------------------------------------------------------------------
// sprig numeric_test.go
// ---------------------------------------------------------------------------

#[test]
fn sprig_numeric() {
    table(&[
        (
            r#"{{range $i, $e := until 5}}{{$i}}{{$e}}{{end}}"#,
            "0011223344",
        ),
        (
            r#"{{range $i, $e := until -5}}{{$i}}{{$e}} {{end}}"#,
            "00 1-1 2-2 3-3 4-4 ",
        ),
        (
            r#"{{range $i, $e := untilStep 0 5 1}}{{$i}}{{$e}}{{end}}"#,
            "0011223344",
        ),
        (
            r#"{{range $i, $e := untilStep 3 6 1}}{{$i}}{{$e}}{{end}}"#,
            "031425",
        ),
        (
            r#"{{range $i, $e := untilStep 0 -10 -2}}{{$i}}{{$e}} {{end}}"#,
            "00 1-2 2-4 3-6 4-8 ",
        ),
        (
            r#"{{range $i, $e := untilStep 3 0 1}}{{$i}}{{$e}}{{end}}"#,
            "",
        ),
        (
            r#"{{range $i, $e := untilStep 3 99 0}}{{$i}}{{$e}}{{end}}"#,
            "",
        ),
        (
            r#"{{range $i, $e := untilStep 3 99 -1}}{{$i}}{{$e}}{{end}}"#,
            "",
        ),
        (
            r#"{{range $i, $e := untilStep 3 0 0}}{{$i}}{{$e}}{{end}}"#,
            "",
        ),
        (r#"{{ biggest 1 2 3 345 5 6 7}}"#, "345"),
        (r#"{{ max 345}}"#, "345"),
        (r#"{{ maxf 1 2 3 345.7 5 6 7}}"#, "345.7"),
        (r#"{{ min 1 2 3 345 5 6 7}}"#, "1"),
        (r#"{{ min 345}}"#, "345"),
        (r#"{{ minf 1.4 2 3 345.6 5 6 7}}"#, "1.4"),
        (r#"{{ minf 345 }}"#, "345"),
        (r#"{{ toDecimal "777" }}"#, "511"),
        (r#"{{ toDecimal 777 }}"#, "511"),
        (r#"{{ toDecimal 770 }}"#, "504"),
        (r#"{{ toDecimal 755 }}"#, "493"),
        (r#"{{ 3 | add1 }}"#, "4"),
        (r#"{{ 3.4 | add1f }}"#, "4.4"),
        (r#"{{ 3 | add 1 2}}"#, "6"),
        (r#"{{ 3 | addf 1.5 2.2}}"#, "6.7"),
        (r#"{{ 4 | div 5 }}"#, "1"),
        (r#"{{ 2 | divf 5 4 }}"#, "0.625"),
        (r#"{{ 1 | mul "2" 3 "4"}}"#, "24"),
        (r#"{{ 1.2 | mulf "2.4" 10 "4"}}"#, "115.2"),
        (r#"{{ 3 | sub 14 }}"#, "11"),
        (r#"{{ 3 | subf 4.5 1 }}"#, "0.5"),
        (r#"{{ ceil 123 }}"#, "123"),
        (r#"{{ ceil "123" }}"#, "123"),
        (r#"{{ ceil 123.01 }}"#, "124"),
        (r#"{{ ceil "123.01" }}"#, "124"),
        (r#"{{ floor 123 }}"#, "123"),
        (r#"{{ floor "123" }}"#, "123"),
        (r#"{{ floor 123.9999 }}"#, "123"),
        (r#"{{ floor "123.9999" }}"#, "123"),
        (r#"{{ round 123.5555 3 }}"#, "123.556"),
        (r#"{{ round "123.55555" 3 }}"#, "123.556"),
        (r#"{{ round 123.500001 0 }}"#, "124"),
        (r#"{{ round 123.49999999 0 }}"#, "123"),
        (r#"{{ round 123.2329999 2 .3 }}"#, "123.23"),
        (r#"{{ round 123.233 2 .3 }}"#, "123.24"),
        (r#"{{seq 0 1 3}}"#, "0 1 2 3"),
        (r#"{{seq 0 3 10}}"#, "0 3 6 9"),
        (r#"{{seq 3 3 2}}"#, ""),
        (r#"{{seq 3 -3 2}}"#, "3"),
        (r#"{{seq}}"#, ""),
        (r#"{{seq 0 4}}"#, "0 1 2 3 4"),
        (r#"{{seq 5}}"#, "1 2 3 4 5"),
        (r#"{{seq -5}}"#, "1 0 -1 -2 -3 -4 -5"),
        (r#"{{seq 0}}"#, "1 0"),
        (r#"{{seq 0 1 2 3}}"#, ""),
        (r#"{{seq 0 -4}}"#, "0 -1 -2 -3 -4"),
    ]);
    for (min, max) in [(10, 11), (10, 13), (0, 1), (5, 50)] {
        let out = render(&format!("{{{{ randInt {min} {max} }}}}"), &empty()).unwrap_or_default();
        let r: i64 = out.parse().unwrap_or(-1);
        assert!(r >= min && r < max, "randInt {min} {max}: {out}");
    }
}

/// sprig's TestToFloat64/TestToInt64/TestToInt: spf13/cast conversions.
#[test]
fn sprig_casts() {
    let cases: &[(Value, f64, i64)] = &[
        (Value::Int(102), 102.0, 102),
        (Value::Uint(102), 102.0, 102),
        (Value::String("102".into()), 102.0, 102),
        (Value::String("frankie".into()), 0.0, 0),
        (Value::Float(102.1234), 102.1234, 102),
        (Value::Bool(true), 1.0, 1),
        (Value::Nil, 0.0, 0),
        (Value::String("0x1F".into()), 0.0, 31),
        (Value::String("12.00".into()), 12.0, 12),
    ];
    for (v, f, i) in cases {
        let args = std::slice::from_ref(v);
        assert_eq!(
            funcs::call("float64", args),
            Ok(Value::Float(*f)),
            "float64 {v:?}"
        );
        assert_eq!(
            funcs::call("int64", args),
            Ok(Value::Int(*i)),
            "int64 {v:?}"
        );
        assert_eq!(funcs::call("int", args), Ok(Value::Int(*i)), "int {v:?}");
    }
}

// ---------------------------------------------------------------------------
// sprig list_test.go (the must- forms share the tables)
// ---------------------------------------------------------------------------

#[test]
fn sprig_lists() {
    let mut cases: Vec<(String, &str)> = vec![
        (
            r#"{{$t := tuple 1 "a" "foo"}}{{index $t 2}}{{index $t 0 }}{{index $t 1}}"#.into(),
            "foo1a",
        ),
        (
            r#"{{$t := list 1 "a" "foo"}}{{index $t 2}}{{index $t 0 }}{{index $t 1}}"#.into(),
            "foo1a",
        ),
        (r#"{{ concat (list 1 2 3) }}"#.into(), "[1 2 3]"),
        (
            r#"{{ concat (list 1 2 3) (list 4 5) }}"#.into(),
            "[1 2 3 4 5]",
        ),
        (
            r#"{{ concat (list 1 2 3) (list 4 5) (list) }}"#.into(),
            "[1 2 3 4 5]",
        ),
        (
            r#"{{ concat (list 1 2 3) (list 4 5) (list nil) }}"#.into(),
            "[1 2 3 4 5 <nil>]",
        ),
        (
            r#"{{ concat (list 1 2 3) (list 4 5) (list ( list "foo" ) ) }}"#.into(),
            "[1 2 3 4 5 [foo]]",
        ),
    ];
    let shared: &[(&str, &str)] = &[
        (r#"{{ $t := tuple 1 2 3  }}{{ APPEND $t 4 | len }}"#, "4"),
        (
            r#"{{ $t := tuple 1 2 3 4  }}{{ APPEND $t 5 | join "-" }}"#,
            "1-2-3-4-5",
        ),
        (
            r#"{{ $t := regexSplit "/" "foo/bar/baz" -1 }}{{ APPEND $t "qux" | join "-" }}"#,
            "foo-bar-baz-qux",
        ),
        (r#"{{ tuple 1 2 3 4 5 6 7 | CHUNK 3 | len }}"#, "3"),
        (r#"{{ tuple | CHUNK 3 | len }}"#, "0"),
        (
            r#"{{ range ( tuple 1 2 3 4 5 6 7 8 9 | CHUNK 3 ) }}{{. | join "-"}}|{{end}}"#,
            "1-2-3|4-5-6|7-8-9|",
        ),
        (
            r#"{{ range ( tuple 1 2 3 4 5 6 7 8 | CHUNK 3 ) }}{{. | join "-"}}|{{end}}"#,
            "1-2-3|4-5-6|7-8|",
        ),
        (
            r#"{{ range ( tuple 1 2 | CHUNK 3 ) }}{{. | join "-"}}|{{end}}"#,
            "1-2|",
        ),
        (r#"{{ $t := tuple 1 2 3  }}{{ PREPEND $t 0 | len }}"#, "4"),
        (
            r#"{{ $t := tuple 1 2 3 4  }}{{ PREPEND $t 0 | join "-" }}"#,
            "0-1-2-3-4",
        ),
        (
            r#"{{ $t := regexSplit "/" "foo/bar/baz" -1 }}{{ PREPEND $t "qux" | join "-" }}"#,
            "qux-foo-bar-baz",
        ),
        (r#"{{ list 1 2 3 | FIRST }}"#, "1"),
        (r#"{{ list | FIRST }}"#, "<no value>"),
        (
            r#"{{ regexSplit "/src/" "foo/src/bar" -1 | FIRST }}"#,
            "foo",
        ),
        (r#"{{ list 1 2 3 | LAST }}"#, "3"),
        (r#"{{ list | LAST }}"#, "<no value>"),
        (r#"{{ regexSplit "/src/" "foo/src/bar" -1 | LAST }}"#, "bar"),
        (r#"{{ list 1 2 3 | INITIAL | len }}"#, "2"),
        (r#"{{ list 1 2 3 | INITIAL | last }}"#, "2"),
        (r#"{{ list 1 2 3 | INITIAL | first }}"#, "1"),
        (r#"{{ list | INITIAL }}"#, "[]"),
        (
            r#"{{ regexSplit "/" "foo/bar/baz" -1 | INITIAL }}"#,
            "[foo bar]",
        ),
        (r#"{{ list 1 2 3 | REST | len }}"#, "2"),
        (r#"{{ list 1 2 3 | REST | last }}"#, "3"),
        (r#"{{ list 1 2 3 | REST | first }}"#, "2"),
        (r#"{{ list | REST }}"#, "[]"),
        (
            r#"{{ regexSplit "/" "foo/bar/baz" -1 | REST }}"#,
            "[bar baz]",
        ),
        (r#"{{ list 1 2 3 | REVERSE | first }}"#, "3"),
        (r#"{{ list 1 2 3 | REVERSE | rest | first }}"#, "2"),
        (r#"{{ list 1 2 3 | REVERSE | last }}"#, "1"),
        (r#"{{ list 1 2 3 4 | REVERSE }}"#, "[4 3 2 1]"),
        (r#"{{ list 1 | REVERSE }}"#, "[1]"),
        (r#"{{ list | REVERSE }}"#, "[]"),
        (
            r#"{{ regexSplit "/" "foo/bar/baz" -1 | REVERSE }}"#,
            "[baz bar foo]",
        ),
        (r#"{{ list 1 0 "" "hello" | COMPACT }}"#, "[1 hello]"),
        (r#"{{ list "" "" | COMPACT }}"#, "[]"),
        (r#"{{ list | COMPACT }}"#, "[]"),
        (
            r#"{{ regexSplit "/" "foo//bar" -1 | COMPACT }}"#,
            "[foo bar]",
        ),
        (r#"{{ list 1 2 3 4 | UNIQ }}"#, "[1 2 3 4]"),
        (r#"{{ list "a" "b" "c" "d" | UNIQ }}"#, "[a b c d]"),
        (r#"{{ list 1 1 1 1 2 2 2 2 | UNIQ }}"#, "[1 2]"),
        (r#"{{ list "foo" 1 1 1 1 "foo" "foo" | UNIQ }}"#, "[foo 1]"),
        (r#"{{ list | UNIQ }}"#, "[]"),
        (
            r#"{{ regexSplit "/" "foo/foo/bar" -1 | UNIQ }}"#,
            "[foo bar]",
        ),
        (r#"{{ WITHOUT (list 1 2 3 4) 1 }}"#, "[2 3 4]"),
        (r#"{{ WITHOUT (list "a" "b" "c" "d") "a" }}"#, "[b c d]"),
        (r#"{{ WITHOUT (list 1 1 1 1 2) 1 }}"#, "[2]"),
        (r#"{{ WITHOUT (list) 1 }}"#, "[]"),
        (r#"{{ WITHOUT (list 1 2 3) }}"#, "[1 2 3]"),
        (r#"{{ WITHOUT list }}"#, "[]"),
        (
            r#"{{ WITHOUT (regexSplit "/" "foo/bar/baz" -1 ) "foo" }}"#,
            "[bar baz]",
        ),
        (r#"{{ list 1 2 3 | HAS 1 }}"#, "true"),
        (r#"{{ list 1 2 3 | HAS 4 }}"#, "false"),
        (
            r#"{{ regexSplit "/" "foo/bar/baz" -1 | HAS "bar" }}"#,
            "true",
        ),
        (r#"{{ HAS "bar" nil }}"#, "false"),
        (r#"{{ SLICE (list 1 2 3) }}"#, "[1 2 3]"),
        (r#"{{ SLICE (list 1 2 3) 0 1 }}"#, "[1]"),
        (r#"{{ SLICE (list 1 2 3) 1 3 }}"#, "[2 3]"),
        (r#"{{ SLICE (list 1 2 3) 1 }}"#, "[2 3]"),
        (
            r#"{{ SLICE (regexSplit "/" "foo/bar/baz" -1) 1 2 }}"#,
            "[bar]",
        ),
    ];
    let names = [
        ("APPEND", "append", "mustAppend"),
        ("CHUNK", "chunk", "mustChunk"),
        ("PREPEND", "prepend", "mustPrepend"),
        ("FIRST", "first", "mustFirst"),
        ("LAST", "last", "mustLast"),
        ("INITIAL", "initial", "mustInitial"),
        ("REST", "rest", "mustRest"),
        ("REVERSE", "reverse", "mustReverse"),
        ("COMPACT", "compact", "mustCompact"),
        ("UNIQ", "uniq", "mustUniq"),
        ("WITHOUT", "without", "mustWithout"),
        ("HAS", "has", "mustHas"),
        ("SLICE", "slice", "mustSlice"),
    ];
    for (tpl, want) in shared {
        for form in [1, 2] {
            let mut t = tpl.to_string();
            for (k, plain, must) in names {
                t = t.replace(k, if form == 1 { plain } else { must });
            }
            cases.push((t, want));
        }
    }
    // sprig's mustPush spelling.
    cases.push((
        r#"{{ $t := regexSplit "/" "foo/bar/baz" -1 }}{{ mustPush $t "qux" | join "-" }}"#.into(),
        "foo-bar-baz-qux",
    ));
    let cases: Vec<(&str, &str)> = cases.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    table(&cases);
}

// ---------------------------------------------------------------------------
// sprig dict_test.go
// ---------------------------------------------------------------------------

#[test]
fn sprig_dicts() {
    table(&[
        (
            r#"{{$d := dict 1 2 "three" "four" 5}}{{range $k, $v := $d}}{{$k}}{{$v}}{{end}}"#,
            "125threefour",
        ),
        (
            r#"{{$t := dict "I" "shot" "the" "albatross"}}{{$t.the}} {{$t.I}}"#,
            "albatross shot",
        ),
        (
            "{{- $d := dict \"one\" 1 \"two\" 222222 -}}\n{{- $_ := unset $d \"two\" -}}\n{{- range $k, $v := $d}}{{$k}}{{$v}}{{- end -}}\n",
            "one1",
        ),
        (
            "{{- $d := dict \"one\" 1 \"two\" 222222 -}}\n{{- if hasKey $d \"one\" -}}1{{- end -}}\n",
            "1",
        ),
        (
            "{{- $d := dict \"one\" 1 \"two\" 222222 -}}\n{{- $d2 := dict \"one\" 1 \"two\" 33333 -}}\n{{- $d3 := dict \"one\" 1 -}}\n{{- $d4 := dict \"one\" 1 \"two\" 4444 -}}\n{{- pluck \"two\" $d $d2 $d3 $d4 -}}\n",
            "[222222 33333 4444]",
        ),
        (
            r#"{{ dict "foo" 1 "bar" 2 | keys | sortAlpha }}"#,
            "[bar foo]",
        ),
        (r#"{{ dict | keys }}"#, "[]"),
        (
            r#"{{ keys (dict "foo" 1) (dict "bar" 2) (dict "bar" 3) | uniq | sortAlpha }}"#,
            "[bar foo]",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ pick $d "two" | len -}}"#,
            "1",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ pick $d "two" -}}"#,
            "map[two:222222]",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ pick $d "one" "two" | len -}}"#,
            "2",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ pick $d "one" "two" "three" | len -}}"#,
            "2",
        ),
        (r#"{{- $d := dict }}{{ pick $d "two" | len -}}"#, "0"),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ omit $d "one" | len -}}"#,
            "1",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ omit $d "one" -}}"#,
            "map[two:222222]",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ omit $d "one" "two" | len -}}"#,
            "0",
        ),
        (
            r#"{{- $d := dict "one" 1 "two" 222222 }}{{ omit $d "two" "three" | len -}}"#,
            "1",
        ),
        (r#"{{- $d := dict }}{{ omit $d "two" | len -}}"#, "0"),
        (r#"{{- $d := dict "one" 1 }}{{ get $d "one" -}}"#, "1"),
        (
            r#"{{- $d := dict "one" 1 "two" "2" }}{{ get $d "two" -}}"#,
            "2",
        ),
        (r#"{{- $d := dict }}{{ get $d "two" -}}"#, ""),
        (
            "{{- $d := dict \"one\" 1 \"two\" 222222 -}}\n{{- $_ := set $d \"two\" 2 -}}\n{{- $_ := set $d \"three\" 3 -}}\n{{- if hasKey $d \"one\" -}}{{$d.one}}{{- end -}}\n{{- if hasKey $d \"two\" -}}{{$d.two}}{{- end -}}\n{{- if hasKey $d \"three\" -}}{{$d.three}}{{- end -}}\n",
            "123",
        ),
        (
            r#"{{- $d := dict "a" 1 "b" 2 }}{{ values $d | sortAlpha | join "," }}"#,
            "1,2",
        ),
        (
            r#"{{- $d := dict "a" "first" "b" 2 }}{{ values $d | sortAlpha | join "," }}"#,
            "2,first",
        ),
        (
            r#"{{- $d := dict "a" 1 "b" 2 | deepCopy }}{{ values $d | sortAlpha | join "," }}"#,
            "1,2",
        ),
        (
            r#"{{- $d := dict "a" 1 "b" 2 | deepCopy }}{{ keys $d | sortAlpha | join "," }}"#,
            "a,b",
        ),
        (
            r#"{{- $one := dict "foo" (dict "bar" "baz") "qux" true -}}{{ deepCopy $one }}"#,
            "map[foo:map[bar:baz] qux:true]",
        ),
        (
            r#"{{- $d := dict "a" 1 "b" 2 | mustDeepCopy }}{{ values $d | sortAlpha | join "," }}"#,
            "1,2",
        ),
        (
            r#"{{- $d := dict "a" 1 "b" 2 | mustDeepCopy }}{{ keys $d | sortAlpha | join "," }}"#,
            "a,b",
        ),
        (
            r#"{{- $one := dict "foo" (dict "bar" "baz") "qux" true -}}{{ mustDeepCopy $one }}"#,
            "map[foo:map[bar:baz] qux:true]",
        ),
        (
            r#"{{- $d := dict "a" (dict "b" (dict "c" 1)) }}{{ dig "a" "b" "c" "" $d }}"#,
            "1",
        ),
        (
            r#"{{- $d := dict "a" (dict "b" (dict "c" 1)) }}{{ dig "a" "b" "z" "2" $d }}"#,
            "2",
        ),
        (r#"{{ dict "a" 1 | dig "a" "" }}"#, "1"),
        (r#"{{ dict "a" 1 | dig "z" "2" }}"#, "2"),
        // sprig's issue_188_test.go: mergeOverwrite shares nested maps of
        // its sources; deepCopy first keeps them apart.
        (
            "{{- $target := dict -}}\n{{- $one := dict \"foo\" (dict \"bar\" \"baz\") \"qux\" true -}}\n{{- $two := dict \"foo\" (dict \"bar\" \"baz2\") \"qux\" false -}}\n{{- mergeOverwrite $target $one | toString | trunc 0 }}{{ $__ := mergeOverwrite $target $two }}{{ $one }}",
            "map[foo:map[bar:baz2] qux:true]",
        ),
        (
            "{{- $target := dict -}}\n{{- $one := dict \"foo\" (dict \"bar\" \"baz\") \"qux\" true -}}\n{{- $two := dict \"foo\" (dict \"bar\" \"baz2\") \"qux\" false -}}\n{{- deepCopy $one | mergeOverwrite $target | toString | trunc 0 }}{{ $__ := mergeOverwrite $target $two }}{{ $one }}",
            "map[foo:map[bar:baz] qux:true]",
        ),
    ]);
}

/// sprig's TestMerge/TestMergeOverwrite and Helm's TestMerge: mergo's
/// rules, with the destination changed in place.
#[test]
fn sprig_merge() {
    let data = || {
        json(serde_json::json!({
            "src2": {"h": 10, "i": "i", "j": "j"},
            "src1": {"a": 1, "b": 2, "d": {"e": "four"}, "g": [6, 7], "i": "aye", "j": "jay", "k": {"l": false}},
            "dst": {"a": "one", "c": 3, "d": {"f": 5}, "g": [8, 9], "i": "eye", "k": {"l": true}},
        }))
    };
    let d = data();
    with(
        r#"{{ $_ := merge .dst .src1 .src2 }}{{ .dst | toJson }}"#,
        &d,
        r#"{"a":"one","b":2,"c":3,"d":{"e":"four","f":5},"g":[8,9],"h":10,"i":"eye","j":"jay","k":{"l":true}}"#,
    );
    let d = data();
    with(
        r#"{{ $_ := mergeOverwrite .dst .src1 .src2 }}{{ .dst | toJson }}"#,
        &d,
        r#"{"a":1,"b":2,"c":3,"d":{"e":"four","f":5},"g":[6,7],"h":10,"i":"i","j":"j","k":{"l":false}}"#,
    );
    let d = data();
    with(
        r#"{{ mustMerge .dst .src1 | toJson }}"#,
        &d,
        r#"{"a":"one","b":2,"c":3,"d":{"e":"four","f":5},"g":[8,9],"i":"eye","j":"jay","k":{"l":true}}"#,
    );
}

// ---------------------------------------------------------------------------
// sprig defaults_test.go (fromJson is Helm's: a map, errors in "Error")
// ---------------------------------------------------------------------------

#[test]
fn sprig_defaults() {
    table(&[
        (r#"{{"" | default "foo"}}"#, "foo"),
        (r#"{{default "foo" 234}}"#, "234"),
        (r#"{{default "foo" 2.34}}"#, "2.34"),
        (r#"{{ .Nothing | default "123" }}"#, "123"),
        (r#"{{ default "123" }}"#, "123"),
        (r#"{{if empty 1}}1{{else}}0{{end}}"#, "0"),
        (r#"{{if empty 0}}1{{else}}0{{end}}"#, "1"),
        (r#"{{if empty ""}}1{{else}}0{{end}}"#, "1"),
        (r#"{{if empty 0.0}}1{{else}}0{{end}}"#, "1"),
        (r#"{{if empty false}}1{{else}}0{{end}}"#, "1"),
        (r#"{{ coalesce 1 }}"#, "1"),
        (r#"{{ coalesce "" 0 nil 2 }}"#, "2"),
        (r#"{{ $two := 2 }}{{ coalesce "" 0 nil $two }}"#, "2"),
        (r#"{{ $two := 2 }}{{ coalesce "" $two 0 0 0 }}"#, "2"),
        (r#"{{ $two := 2 }}{{ coalesce "" $two 3 4 5 }}"#, "2"),
        (r#"{{ coalesce }}"#, "<no value>"),
        (r#"{{ all 1 }}"#, "true"),
        (r#"{{ all "" 0 nil 2 }}"#, "false"),
        (r#"{{ $two := 2 }}{{ all "" 0 nil $two }}"#, "false"),
        (r#"{{ $two := 2 }}{{ all "" $two 0 0 0 }}"#, "false"),
        (r#"{{ $two := 2 }}{{ all "" $two 3 4 5 }}"#, "false"),
        (r#"{{ all }}"#, "true"),
        (r#"{{ any 1 }}"#, "true"),
        (r#"{{ any "" 0 nil 2 }}"#, "true"),
        (r#"{{ $two := 2 }}{{ any "" 0 nil $two }}"#, "true"),
        (r#"{{ $two := 2 }}{{ any "" $two 3 4 5 }}"#, "true"),
        (r#"{{ $zero := 0 }}{{ any "" $zero 0 0 0 }}"#, "false"),
        (r#"{{ any }}"#, "false"),
        (r#"{{true | ternary "foo" "bar"}}"#, "foo"),
        (r#"{{ternary "foo" "bar" true}}"#, "foo"),
        (r#"{{false | ternary "foo" "bar"}}"#, "bar"),
        (r#"{{ternary "foo" "bar" false}}"#, "bar"),
    ]);
    let top = json(serde_json::json!({"top": {}}));
    with(
        r#"{{if empty .top.NoSuchThing}}1{{else}}0{{end}}"#,
        &top,
        "1",
    );
    with(
        r#"{{ coalesce .top.NoSuchThing .bottom "airplane"}}"#,
        &top,
        "airplane",
    );
    with(
        r#"{{ all .top.NoSuchThing .bottom "airplane"}}"#,
        &top,
        "false",
    );
    with(
        r#"{{ any .top.NoSuchThing .bottom "airplane"}}"#,
        &top,
        "true",
    );
    let input = json(serde_json::json!({"Input": r#"{"foo": 55}"#}));
    with(r#"{{.Input | fromJson}}"#, &input, "map[foo:55]");
    with(r#"{{(.Input | fromJson).foo}}"#, &input, "55");
    let top = Value::map(BTreeMap::from([(
        "Top".to_string(),
        Value::map(BTreeMap::from([
            ("bool".to_string(), Value::Bool(true)),
            ("string".to_string(), Value::String("test".into())),
            ("number".to_string(), Value::Int(42)),
            ("html".to_string(), Value::String("<HEAD>".into())),
        ])),
    )]));
    with(
        r#"{{.Top | toJson}}"#,
        &top,
        r#"{"bool":true,"html":"\u003cHEAD\u003e","number":42,"string":"test"}"#,
    );
    with(
        r#"{{.Top | toRawJson}}"#,
        &top,
        r#"{"bool":true,"html":"<HEAD>","number":42,"string":"test"}"#,
    );
    with(
        r#"{{.Top | toPrettyJson}}"#,
        &top,
        "{\n  \"bool\": true,\n  \"html\": \"\\u003cHEAD\\u003e\",\n  \"number\": 42,\n  \"string\": \"test\"\n}",
    );
}

// ---------------------------------------------------------------------------
// sprig regex_test.go, semver_test.go, url_test.go, reflect_test.go
// ---------------------------------------------------------------------------

#[test]
fn sprig_regex() {
    let email = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}";
    let mut cases: Vec<(String, String)> = Vec::new();
    for f in ["regexMatch", "mustRegexMatch"] {
        for (input, want) in [
            ("test@acme.com", "true"),
            ("Test@Acme.Com", "true"),
            ("test", "false"),
            ("test.com", "false"),
            ("test@acme", "false"),
        ] {
            cases.push((format!(r#"{{{{ {f} "{email}" "{input}" }}}}"#), want.into()));
        }
    }
    for f in ["regexFindAll", "mustRegexFindAll"] {
        for (input, n, want) in [
            ("aa", -1, 1),
            ("aaaaaaaa", 1, 1),
            ("aaaa", -1, 2),
            ("none", -1, 0),
        ] {
            cases.push((
                format!(r#"{{{{ {f} "a{{2}}" "{input}" {n} | len }}}}"#),
                want.to_string(),
            ));
        }
    }
    for f in ["regexFind", "mustRegexFind"] {
        for (input, want) in [("foorbar", "foo"), ("foo foe fome", "foo"), ("none", "")] {
            cases.push((format!(r#"{{{{ {f} "fo.?" "{input}" }}}}"#), want.into()));
        }
    }
    for f in ["regexReplaceAll", "mustRegexReplaceAll"] {
        for (repl, want) in [
            ("T", "-T-T-"),
            ("$1", "--xx-"),
            ("$1W", "---"),
            ("${1}W", "-W-xxW-"),
        ] {
            cases.push((
                format!(r#"{{{{ {f} "a(x*)b" "-ab-axxb-" "{repl}" }}}}"#),
                want.into(),
            ));
        }
    }
    for f in ["regexReplaceAllLiteral", "mustRegexReplaceAllLiteral"] {
        for (repl, want) in [("T", "-T-T-"), ("$1", "-$1-$1-"), ("${1}", "-${1}-${1}-")] {
            cases.push((
                format!(r#"{{{{ {f} "a(x*)b" "-ab-axxb-" "{repl}" }}}}"#),
                want.into(),
            ));
        }
    }
    for f in ["regexSplit", "mustRegexSplit"] {
        for (re, input, n, want) in [
            ("a", "banana", -1, 4),
            ("a", "banana", 0, 0),
            ("a", "banana", 1, 1),
            ("a", "banana", 2, 2),
            ("z+", "pizza", -1, 2),
            ("z+", "pizza", 0, 0),
            ("z+", "pizza", 1, 1),
            ("z+", "pizza", 2, 2),
        ] {
            cases.push((
                format!(r#"{{{{ {f} "{re}" "{input}" {n} | len }}}}"#),
                want.to_string(),
            ));
        }
    }
    // Go's RE2 Perl classes are ASCII; Split keeps Go's empty fields.
    cases.push((r#"{{ regexMatch "^\\d+$" "١٢٣" }}"#.into(), "false".into()));
    cases.push((r#"{{ regexSplit "," "a,,b" -1 }}"#.into(), "[a  b]".into()));
    let cases: Vec<(&str, &str)> = cases
        .iter()
        .map(|(t, w)| (t.as_str(), w.as_str()))
        .collect();
    table(&cases);
    assert!(fails(r#"{{ mustRegexMatch "(" "x" }}"#, &empty()).contains("error parsing regexp"));
    assert!(fails(r#"{{ regexFind "(" "x" }}"#, &empty()).contains("error parsing regexp"));
    table(&[(r#"{{ regexMatch "(" "x" }}"#, "false")]);
}

#[test]
fn sprig_semver() {
    table(&[
        (r#"{{ semverCompare "1.2.3" "1.2.3" }}"#, "true"),
        (r#"{{ semverCompare "^1.2.0" "1.2.3" }}"#, "true"),
        (r#"{{ semverCompare "^1.2.0" "2.2.3" }}"#, "false"),
        (
            r#"{{ $s := semver "1.2.3-beta.1+c0ff33" }}{{ $s.Prerelease }}"#,
            "beta.1",
        ),
        (
            r#"{{ $s := semver "1.2.3-beta.1+c0ff33" }}{{ $s.Major}}"#,
            "1",
        ),
        (r#"{{ semver "1.2.3" | (semver "1.2.3").Compare }}"#, "0"),
        (r#"{{ semver "1.2.3" | (semver "1.3.3").Compare }}"#, "1"),
        (r#"{{ semver "1.4.3" | (semver "1.2.3").Compare }}"#, "-1"),
        // What charts ask of .Capabilities.KubeVersion.Version.
        (r#"{{ semverCompare ">=1.19-0" "v1.36.3" }}"#, "true"),
        (r#"{{ semverCompare "<1.19-0" "v1.36.3" }}"#, "false"),
        (r#"{{ semverCompare ">= 1.21.0-0" "v1.36.3" }}"#, "true"),
        (r#"{{ semverCompare "~1.36.0" "v1.36.3" }}"#, "true"),
    ]);
    assert!(
        fails(r#"{{ semverCompare "1.2.3" "not-a-version" }}"#, &empty())
            .contains("Invalid Semantic Version")
    );
}

#[test]
fn sprig_urls() {
    table(&[
        (
            r#"{{ index ( urlParse "proto://auth@host:80/path?query#fragment" ) "host" }}"#,
            "host:80",
        ),
        (
            r#"{{ urlJoin (dict "fragment" "fragment" "host" "host:80" "path" "/path" "query" "query" "scheme" "proto") }}"#,
            "proto://host:80/path?query#fragment",
        ),
        (
            r#"{{ urlJoin (dict "fragment" "fragment" "host" "host:80" "path" "/path" "scheme" "proto" "userinfo" "ASDJKJSD") }}"#,
            "proto://ASDJKJSD@host:80/path#fragment",
        ),
    ]);
    let fields = [
        "fragment", "host", "hostname", "opaque", "path", "query", "scheme", "userinfo",
    ];
    let cases: &[(&str, [&str; 8])] = &[
        (
            "proto://auth@host:80/path?query#fragment",
            [
                "fragment", "host:80", "host", "", "/path", "query", "proto", "auth",
            ],
        ),
        (
            "proto://host:80/path",
            ["", "host:80", "host", "", "/path", "", "proto", ""],
        ),
        ("something", ["", "", "", "", "something", "", "", ""]),
        (
            "proto://user:passwor%20d@host:80/path",
            [
                "",
                "host:80",
                "host",
                "",
                "/path",
                "",
                "proto",
                "user:passwor%20d",
            ],
        ),
        (
            "proto://host:80/pa%20th?key=val%20ue",
            [
                "",
                "host:80",
                "host",
                "",
                "/pa th",
                "key=val%20ue",
                "proto",
                "",
            ],
        ),
    ];
    for (url, want) in cases {
        let got = funcs::call("urlParse", &[Value::String(url.to_string())]);
        let Ok(Value::Map(m)) = got else {
            panic!("urlParse {url}: {got:?}");
        };
        for (f, w) in fields.iter().zip(want) {
            assert_eq!(m.get(f), Some(Value::String(w.to_string())), "{url} {f}");
        }
        // urlJoin of the parsed parts gives the URL back.
        let joined = funcs::call("urlJoin", &[Value::Map(m)]);
        assert_eq!(joined, Ok(Value::String(url.to_string())), "{url}");
    }
}

#[test]
fn sprig_reflect() {
    let s = Value::String("hello".into());
    with(r#"{{typeOf .}}"#, &s, "string");
    with(
        r#"{{kindOf .}}"#,
        &json(serde_json::json!(["hello"])),
        "slice",
    );
    with(r#"{{kindOf .}}"#, &json(serde_json::json!({"a": 1})), "map");
    with(r#"{{if typeIs "string" .}}t{{else}}f{{end}}"#, &s, "t");
    with(r#"{{if typeIsLike "string" .}}t{{else}}f{{end}}"#, &s, "t");
    with(r#"{{if kindIs "ptr" .}}t{{else}}f{{end}}"#, &s, "f");
    with(
        r#"{{ kindOf .x }} {{ typeOf .x }}"#,
        &json(serde_json::json!({"x": 1})),
        "float64 float64",
    );
    table(&[
        (
            r#"{{ kindOf 1 }} {{ typeOf 1 }} {{ kindOf nil }} {{ typeOf nil }}"#,
            "int int invalid <nil>",
        ),
        (
            r#"{{ deepEqual (list 1 2) (list 1 2) }} {{ deepEqual 1 1.0 }}"#,
            "true false",
        ),
    ]);
}

// ---------------------------------------------------------------------------
// sprig crypto_test.go (key and certificate generators: refused, see
// `refused_functions`)
// ---------------------------------------------------------------------------

#[test]
fn sprig_crypto() {
    table(&[
        (
            r#"{{"abc" | sha512sum}}"#,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        (
            r#"{{"abc" | sha256sum}}"#,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            r#"{{"abc" | sha1sum}}"#,
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (r#"{{"abc" | adler32sum}}"#, "38600999"),
        (
            r#"{{derivePassword 1 "long" "password" "user" "example.com"}}"#,
            "ZedaFaxcZaso9*",
        ),
        (
            r#"{{"plaintext" | encryptAES "secretkey" | decryptAES "secretkey"}}"#,
            "plaintext",
        ),
    ]);
    // bcrypt and htpasswd: Go's $2a$ format at cost 10 (60 characters);
    // verified with the bcrypt crate.
    let out = render(r#"{{"abc" | bcrypt}}"#, &empty()).unwrap_or_default();
    assert!(out.starts_with("$2a$10$") && out.len() == 60, "{out}");
    assert_eq!(bcrypt::verify("abc", &out).ok(), Some(true));
    for (user, pass, valid) in [
        ("myUser", "myPassword", true),
        (
            "special'o79Cv_*qFe,)<user",
            "special<j7+3p#6-.Jx2U:m8G;kGypassword",
            true,
        ),
        ("wrongus:er", "doesn'tmatter", false),
    ] {
        let d = json(serde_json::json!({"Username": user, "Password": pass}));
        let out = render(r#"{{htpasswd .Username .Password}}"#, &d).unwrap_or_default();
        if valid {
            let (u, h) = out.split_once(':').unwrap_or_default();
            assert_eq!(u, user);
            assert_eq!(bcrypt::verify(pass, h).ok(), Some(true), "{out}");
        } else {
            assert_eq!(out, format!("invalid username: {user}"));
        }
    }
    let a = render(r#"{{randBytes 12}}"#, &empty()).unwrap_or_default();
    let b = render(r#"{{randBytes 12}}"#, &empty()).unwrap_or_default();
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
    let a = render(r#"{{uuidv4}}"#, &empty()).unwrap_or_default();
    let b = render(r#"{{uuidv4}}"#, &empty()).unwrap_or_default();
    assert_eq!(a.len(), 36);
    assert_eq!(a.as_bytes()[14], b'4');
    assert_ne!(a, b);
}

// ---------------------------------------------------------------------------
// sprig date_test.go
// ---------------------------------------------------------------------------

#[test]
fn sprig_dates() {
    table(&[
        (
            r#"{{toDate "2006-01-02" "2017-12-31" | date "02/01/2006"}}"#,
            "31/12/2017",
        ),
        (
            r#"{{ date_in_zone "02 Jan 06 15:04 -0700" 1560458379 "UTC" }}"#,
            "13 Jun 19 20:39 +0000",
        ),
        (
            r#"{{ dateInZone "02 Jan 06 15:04 -0700" 1560458379 "foobar" }}"#,
            "13 Jun 19 20:39 +0000",
        ),
        (
            r#"{{ unixEpoch (toDate "02 Jan 06 15:04:05 MST" "13 Jun 19 20:39:39 GMT") }}"#,
            "1560458379",
        ),
        (r#"{{ htmlDate 0 }}"#, "1970-01-01"),
        (r#"{{ duration "61" }}"#, "1m1s"),
        (r#"{{ duration "3600" }}"#, "1h0m0s"),
        (r#"{{ duration "93784" }}"#, "26h3m4s"),
        (r#"{{ durationRound "2h5s" }}"#, "2h"),
        (r#"{{ durationRound "24h5s" }}"#, "1d"),
        (r#"{{ durationRound "2400h5s" }}"#, "3mo"),
        (
            r#"{{ toDate "2006-01-02" "2017-12-31" | dateModify "1.5h" | date "2006-01-02T15:04" }}"#,
            "2017-12-31T01:30",
        ),
    ]);
    // `now` and `ago` read the clock: their shape only.
    let out = render(r#"{{ now | date "2006-01-02" }}"#, &empty()).unwrap_or_default();
    assert_eq!(out.len(), 10, "{out}");
    let out = render(r#"{{ ago now }}"#, &empty()).unwrap_or_default();
    assert_eq!(out, "0s");
    let out = render(r#"{{ now | unixEpoch }}"#, &empty()).unwrap_or_default();
    assert!(out.parse::<i64>().is_ok_and(|t| t > 1_700_000_000), "{out}");
}

// ---------------------------------------------------------------------------
// Helm pkg/engine/funcs_test.go
// ---------------------------------------------------------------------------

#[test]
fn helm_funcs_table() {
    let s = |v: &str| Value::String(v.to_string());
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            r#"{{ toYaml . }}"#,
            "foo: bar",
            json(serde_json::json!({"foo": "bar"})),
        ),
        (
            r#"{{ toYamlPretty . }}"#,
            "baz:\n  - 1\n  - 2\n  - 3",
            json(serde_json::json!({"baz": [1, 2, 3]})),
        ),
        (
            r#"{{ toToml . }}"#,
            "foo = \"bar\"\n",
            json(serde_json::json!({"foo": "bar"})),
        ),
        (
            r#"{{ fromToml . }}"#,
            "map[hello:world]",
            s(r#"hello = "world""#),
        ),
        (
            r#"{{ fromToml . }}"#,
            "map[table:map[keyInTable:valueInTable subtable:map[keyInSubtable:valueInSubTable]]]",
            s(
                "\n[table]\nkeyInTable = \"valueInTable\"\n[table.subtable]\nkeyInSubtable = \"valueInSubTable\"",
            ),
        ),
        (
            r#"{{ fromToml . }}"#,
            "map[tableArray:[map[keyInElement0:valueInElement0] map[keyInElement1:valueInElement1]]]",
            s(
                "\n[[tableArray]]\nkeyInElement0 = \"valueInElement0\"\n[[tableArray]]\nkeyInElement1 = \"valueInElement1\"",
            ),
        ),
        (
            r#"{{ toJson . }}"#,
            r#"{"foo":"bar"}"#,
            json(serde_json::json!({"foo": "bar"})),
        ),
        (r#"{{ fromYaml . }}"#, "map[hello:world]", s("hello: world")),
        (
            r#"{{ fromYamlArray . }}"#,
            "[one 2 map[name:helm]]",
            s("- one\n- 2\n- name: helm\n"),
        ),
        (
            r#"{{ fromYamlArray . }}"#,
            "[one 2 map[name:helm]]",
            s(r#"["one", 2, { "name": "helm" }]"#),
        ),
        (
            r#"{{ toToml . }}"#,
            "[mast]\n  sail = \"white\"\n",
            json(serde_json::json!({"mast": {"sail": "white"}})),
        ),
        (
            r#"{{ fromYaml . }}"#,
            "map[Error:error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}]",
            s("- one\n- two\n"),
        ),
        (
            r#"{{ fromJson .}}"#,
            "map[hello:world]",
            s(r#"{"hello":"world"}"#),
        ),
        (
            r#"{{ fromJson . }}"#,
            "map[Error:json: cannot unmarshal array into Go value of type map[string]interface {}]",
            s(r#"["one", "two"]"#),
        ),
        (
            r#"{{ fromJsonArray . }}"#,
            "[one 2 map[name:helm]]",
            s(r#"["one", 2, { "name": "helm" }]"#),
        ),
        (
            r#"{{ fromJsonArray . }}"#,
            "[json: cannot unmarshal object into Go value of type []interface {}]",
            s(r#"{"hello": "world"}"#),
        ),
        (
            r#"{{ merge .dict (fromYaml .yaml) }}"#,
            "map[a:map[b:c]]",
            json(serde_json::json!({"dict": {"a": {"b": "c"}}, "yaml": r#"{"a":{"b":"d"}}"#})),
        ),
        (
            r#"{{ merge (fromYaml .yaml) .dict }}"#,
            "map[a:map[b:d]]",
            json(serde_json::json!({"dict": {"a": {"b": "c"}}, "yaml": r#"{"a":{"b":"d"}}"#})),
        ),
        (
            r#"{{ fromYamlArray . }}"#,
            "[error unmarshaling JSON: while decoding JSON: json: cannot unmarshal object into Go value of type []interface {}]",
            s("hello: world"),
        ),
        (
            r#"{{ lookup "v1" "Namespace" "" "unlikelynamespace99999999" }}"#,
            "map[]",
            s(""),
        ),
        (
            r#"{{ mustToToml . }}"#,
            "foo = \"bar\"\n",
            json(serde_json::json!({"foo": "bar"})),
        ),
    ];
    let mut bad = Vec::new();
    for (tpl, want, data) in &cases {
        match render(tpl, data) {
            Ok(got) if got == *want => {}
            other => bad.push(format!(
                "{tpl} with {data:?}\n   want {want:?}\n   got  {other:?}"
            )),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} failed:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
    // toToml's error text for a parse failure is the toml crate's, not
    // BurntSushi's: only its presence is checked.
    let out = render(r#"{{ fromToml . }}"#, &s("one")).unwrap_or_default();
    assert!(out.starts_with("map[Error:toml: "), "{out}");
    // A map holding itself: toYaml/toJson swallow the error, the must-
    // forms fail.
    let loop_map = json(serde_json::json!({"foo": "bar"}));
    if let Value::Map(m) = &loop_map {
        m.insert("loop", Value::list(vec![loop_map.clone()]));
    }
    with(r#"{{ toYaml . }}"#, &loop_map, "");
    with(r#"{{ toJson . }}"#, &loop_map, "");
    fails(r#"{{ mustToYaml . }}"#, &loop_map);
    fails(r#"{{ mustToJson . }}"#, &loop_map);
    if let Value::Map(m) = &loop_map {
        m.remove("loop");
    }
}

// ---------------------------------------------------------------------------
// Differential cases: `funcs_golden.jsonl` holds templates and what Go's
// text/template printed for them with Helm v4.2.4's function map (sprig
// v3.3.0, sigs.k8s.io/yaml v1.6.0, BurntSushi/toml v1.6.0), over one set of
// values read as Helm reads them (numbers float64). `funcs_reference/`
// regenerates it: `python3 cases.py > cases.jsonl`, `go build`, then the
// program over the cases (see its README comment).
// ---------------------------------------------------------------------------

/// Outputs that differ from Go's on purpose, by template.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // One integer type: Go's int64 results (add, int64, fromToml), []int,
    // []string and map[string]string are int, []interface {} and
    // map[string]interface {} here.
    (
        r#"{{ typeOf (add 1 2) }} {{ typeOf (addf 1 2) }} {{ typeOf (until 1) }} {{ typeOf (list) }}"#,
        "Go: int64 float64 []int []interface {}",
    ),
    (
        r#"{{ kindOf (add 1 2) }} {{ kindOf (int 2) }} {{ typeOf (int 2) }} {{ typeOf (int64 2) }} {{ typeOf (float64 2) }} {{ typeOf (dict) }} {{ typeOf (splitList "," "a") }} {{ typeOf (keys (dict "a" 1)) }}"#,
        "Go: int64 int int int64 float64 map[string]interface {} []string []string",
    ),
    (
        r#"{{ typeOf (split "," "a") }} {{ typeOf .num }} {{ typeOf 1 }} {{ typeOf 1.5 }} {{ typeOf "s" }} {{ typeOf (semver "1.2.3") }} {{ typeOf now }}"#,
        "Go: map[string]string for split",
    ),
    (r#"{{ (fromToml "a = 1").a | typeOf }}"#, "Go: int64"),
    // sprig's duration/durationRound take int64 and give 0s for Go's int
    // (a template constant); sluice cannot tell the two apart and reads
    // every integer as int64 (what sprig's arithmetic returns).
    (r#"{{ duration 3661 }}"#, "Go: 0s"),
    (r#"{{ durationRound 3600000000000 }}"#, "Go: 0s"),
    // A Go float constant converts to an int parameter; values' float64
    // does not. sluice sees both as float64 and refuses both.
    (r#"{{ round 1.5 1.0 }}"#, "Go: 1.5"),
    // Strings are UTF-8 here: decoded binary is cut to U+FFFD.
    (r#"{{ randBytes 5 | b64dec | len }}"#, "Go: 5"),
    // sluice-kustomize's emitter prints non-integral floats of 1e6 and up
    // (and integral ones past int64) without Go's %g exponent.
    (
        r#"{{ toYaml (dict "k" 1e21 "k2" 1e20 "k3" 0.000001 "k4" 1e-7 "k5" 123456789.123) }}"#,
        "Go: k2: 1e+20, k5: 1.23456789123e+08",
    ),
    // toYamlPretty is go-yaml v3, which prints floats with %g (no JSON
    // round trip): 1e+06.
    (r#"{{ .num | toYamlPretty }}"#, "Go: 1e+06"),
    (
        r#"{{ toYamlPretty (dict "s" "yes" "n" 1.5 "i" 1000000.0) }}"#,
        "Go: i: 1e+06",
    ),
];

#[test]
fn golden_against_go() {
    let text = include_str!("funcs_golden.jsonl");
    let mut lines = text.lines();
    let head: serde_json::Value =
        serde_json::from_str(lines.next().unwrap_or("{}")).unwrap_or_default();
    let (mut total, mut same_err) = (0, 0);
    let mut bad = Vec::new();
    let mut err_diffs = Vec::new();
    for line in lines {
        let case: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let tpl = case["tpl"].as_str().unwrap_or_default();
        if KNOWN_DIFFERENCES.iter().any(|(t, _)| *t == tpl) {
            continue;
        }
        total += 1;
        // Fresh values per case: `set` and `merge` change maps in place.
        let got = render(tpl, &Value::from_json(&head["data"]));
        match (
            case.get("out").and_then(|o| o.as_str()),
            case.get("err").and_then(|e| e.as_str()),
            &got,
        ) {
            (Some(want), _, Ok(out)) if out == want => {}
            (None, Some(want), Err(e)) => {
                if e == want {
                    same_err += 1;
                } else {
                    err_diffs.push(format!("{tpl}\n   go:     {want}\n   sluice: {e}"));
                }
            }
            (want_out, want_err, _) => bad.push(format!(
                "{tpl}\n   go:     {:?}\n   sluice: {got:?}",
                want_out.map(str::to_string).ok_or(want_err)
            )),
        }
    }
    eprintln!(
        "{total} cases; {} wrong; errors worded as Go's: {same_err}, differently: {}\n{}",
        bad.len(),
        err_diffs.len(),
        err_diffs.join("\n")
    );
    assert!(
        bad.is_empty(),
        "{} of {total} differ from Go:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // Errors are Go's, word for word: the message, the template position and the node.
    assert!(
        err_diffs.is_empty(),
        "{} errors worded differently from Go's",
        err_diffs.len()
    );
}

// ---------------------------------------------------------------------------
// sluice's own: the map is complete, bounds hold, Helm's bound functions
// work through the engine, no input makes a function panic.
// ---------------------------------------------------------------------------

/// Every name of Helm v4.2.4's `funcMap()` (sprig v3.3.0's `genericMap`
/// without env/expandenv, plus Helm's).
const HELM_FUNCTION_NAMES: &str = "abbrev abbrevboth add add1 add1f addf adler32sum ago all any append atoi b32dec b32enc b64dec b64enc base bcrypt biggest buildCustomCert camelcase cat ceil chunk clean coalesce compact concat contains date date_in_zone date_modify dateInZone dateModify decryptAES deepCopy deepEqual default derivePassword dict dig dir div divf duration durationRound empty encryptAES ext fail first float64 floor fromJson fromJsonArray fromToml fromYaml fromYamlArray genCA genCAWithKey genPrivateKey genSelfSignedCert genSelfSignedCertWithKey genSignedCert genSignedCertWithKey get getHostByName has hasKey hasPrefix hasSuffix hello htmlDate htmlDateInZone htpasswd include indent initial initials int int64 isAbs join kebabcase keys kindIs kindOf last list lookup lower max maxf merge mergeOverwrite min minf mod mul mulf must_date_modify mustAppend mustChunk mustCompact mustDateModify mustDeepCopy mustFirst mustFromJson mustHas mustInitial mustLast mustMerge mustMergeOverwrite mustPrepend mustPush mustRegexFind mustRegexFindAll mustRegexMatch mustRegexReplaceAll mustRegexReplaceAllLiteral mustRegexSplit mustRest mustReverse mustSlice mustToDate mustToJson mustToPrettyJson mustToRawJson mustToToml mustToYaml mustUniq mustWithout nindent nospace now omit osBase osClean osDir osExt osIsAbs pick pluck plural prepend push quote randAlpha randAlphaNum randAscii randBytes randInt randNumeric regexFind regexFindAll regexMatch regexQuoteMeta regexReplaceAll regexReplaceAllLiteral regexSplit repeat replace required rest reverse round semver semverCompare seq set sha1sum sha256sum sha512sum shuffle slice snakecase sortAlpha split splitList splitn squote sub subf substr swapcase ternary title toDate toDecimal toJson toPrettyJson toRawJson toString toStrings toToml toYaml toYamlPretty tpl trim trimAll trimPrefix trimSuffix trimall trunc tuple typeIs typeIsLike typeOf uniq unixEpoch unset until untilStep untitle upper urlJoin urlParse uuidv4 values without wrap wrapWith";

#[test]
fn every_helm_function_is_registered() {
    let map = helm_funcs();
    let missing: Vec<&str> = HELM_FUNCTION_NAMES
        .split(' ')
        .filter(|n| !map.contains(n))
        .collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(HELM_FUNCTION_NAMES.split(' ').count(), 222);
    assert!(!map.contains("env") && !map.contains("expandenv"));
    let extra: Vec<&str> = map
        .names()
        .filter(|n| !HELM_FUNCTION_NAMES.split(' ').any(|h| h == *n))
        .collect();
    assert!(extra.is_empty(), "not in Helm's map: {extra:?}");
}

#[test]
fn refused_functions_name_themselves() {
    let e = fails(r#"{{ genPrivateKey "dsa" }}"#, &empty());
    assert!(
        e.contains("\"genPrivateKey\" is not supported by sluice"),
        "{e}"
    );
    with(r#"{{ genPrivateKey "bad" }}"#, &empty(), "Unknown type bad");
}

/// sprig's certificate tests, read back with x509-parser: genCA,
/// genSelfSignedCert (traefik's admission webhook call), genSignedCert,
/// the WithKey forms and buildCustomCert.
#[test]
fn sprig_certificates() {
    use x509_parser::pem::parse_x509_pem;
    // A fixed key (openssl genrsa -traditional 2048, made for this test):
    // generating RSA keys takes a minute in debug builds, so the WithKey
    // forms are tested here and the generating ones in the ignored
    // `generators_make_keys`.
    let key = json(serde_json::json!({"key": include_str!("funcs_test_key.pem")}));
    let tpl = r#"{{- $ca := genCAWithKey "foo-ca" 365 .key -}}
{{- $self := genSelfSignedCertWithKey "admission.ns.svc" (list "10.0.0.1") (list "admission.ns.svc" "b.example") 3650 $ca.Key -}}
{{- $signed := genSignedCertWithKey "leaf" nil (list "leaf.example") 30 $ca $ca.Key -}}
{{- $again := genCAWithKey "again" 10 $ca.Key -}}
{{- $custom := buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc) -}}
{{- toJson (list $ca.Cert $ca.Key $self.Cert $self.Key $signed.Cert $signed.Key $again.Key (eq $custom.Cert $ca.Cert)) -}}"#;
    let out = render(tpl, &key).unwrap_or_else(|e| panic!("{e}"));
    let parts: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
    let text = |i: usize| {
        parts
            .get(i)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (ca, ca_key, own, own_key, leaf, leaf_key, again_key) = (
        text(0),
        text(1),
        text(2),
        text(3),
        text(4),
        text(5),
        text(6),
    );
    assert!(
        ca_key.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "{ca_key}"
    );
    assert_eq!(ca_key, include_str!("funcs_test_key.pem"));
    assert_eq!(own_key, ca_key);
    assert_eq!(leaf_key, ca_key);
    assert_eq!(again_key, ca_key, "WithKey keeps the key given");
    assert_eq!(parts.get(7), Some(&serde_json::Value::Bool(true)));
    let read = |pem: &str| {
        let (_, p) = parse_x509_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}: {pem}"));
        p
    };
    let (ca_pem, own_pem, leaf_pem) = (read(&ca), read(&own), read(&leaf));
    let ca_cert = ca_pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
    let own_cert = own_pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
    let leaf_cert = leaf_pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
    let cn = |c: &x509_parser::certificate::X509Certificate| {
        c.subject()
            .iter_common_name()
            .next()
            .and_then(|n| n.as_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(cn(&ca_cert), "foo-ca");
    assert!(ca_cert.is_ca());
    assert!(
        ca_cert
            .key_usage()
            .ok()
            .flatten()
            .is_some_and(|k| k.value.key_cert_sign() && k.value.digital_signature())
    );
    let days = |c: &x509_parser::certificate::X509Certificate| {
        (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86_400
    };
    assert_eq!(days(&ca_cert), 365);
    assert_eq!(days(&own_cert), 3650);
    assert_eq!(cn(&own_cert), "admission.ns.svc");
    assert!(!own_cert.is_ca());
    let sans = own_cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .map(|n| format!("{n}"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(
        sans,
        [
            "DNSName(admission.ns.svc)",
            "DNSName(b.example)",
            "IPAddress(0a:00:00:01)"
        ],
        "{sans:?}"
    );
    let eku = own_cert
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| (e.value.server_auth, e.value.client_auth));
    assert_eq!(eku, Some((true, true)));
    assert_eq!(leaf_cert.issuer(), ca_cert.subject());
    assert!(
        leaf_cert
            .verify_signature(Some(ca_cert.public_key()))
            .is_ok()
    );
    assert!(own_cert.verify_signature(None).is_ok());
    // Go's errors for bad input.
    let e = fails(
        r#"{{ genSelfSignedCert "x" (list "not-an-ip") nil 1 }}"#,
        &empty(),
    );
    assert!(e.contains("error parsing ip: not-an-ip"), "{e}");
    let e = fails(r#"{{ genSelfSignedCert "x" (list 1) nil 1 }}"#, &empty());
    assert!(e.contains("error parsing ip: 1 is not a string"), "{e}");
    let e = fails(r#"{{ buildCustomCert "!!" "x" }}"#, &empty());
    assert!(e.contains("unable to decode base64 certificate"), "{e}");
    let e = fails(r#"{{ genCA "x" 100000000 }}"#, &empty());
    assert!(e.contains("daysValid out of range"), "{e}");
}

/// Work that would exhaust memory is refused with the function's name.
#[test]
fn bounded_work() {
    let big = json(serde_json::json!({"s": "x\n".repeat(1 << 19)}));
    for (tpl, data) in [
        (r#"{{ until 1000000000 | len }}"#, empty()),
        (r#"{{ untilStep 0 9000000000000000000 1 | len }}"#, empty()),
        (r#"{{ seq 1 1000000000 }}"#, empty()),
        (r#"{{ repeat 1000000000 "abc" }}"#, empty()),
        (r#"{{ indent 100000 .s }}"#, big.clone()),
        (r#"{{ nindent 1000000000 "a\nb" }}"#, empty()),
        (r#"{{ randAlphaNum 1000000000 }}"#, empty()),
        (r#"{{ replace "x" (repeat 100 "y") .s }}"#, big.clone()),
        (
            r#"{{ regexReplaceAll "" .s (repeat 100 "y") }}"#,
            big.clone(),
        ),
        (r#"{{ wrapWith 1 (repeat 100 "y") .s }}"#, big.clone()),
    ] {
        let e = fails(tpl, &data);
        assert!(e.contains("result too large"), "{tpl}: {e}");
    }
    // Within the bounds, large work is done.
    let ok = render(r#"{{ until 100000 | len }}"#, &empty());
    assert_eq!(ok.as_deref(), Ok("100000"));
}

/// Go's argument conversion: values' float64 is not an int.
#[test]
fn argument_types_as_go() {
    let v = json(serde_json::json!({"n": 4, "s": "x"}));
    let e = fails(r#"{{ indent .n .s }}"#, &v);
    assert!(
        e.contains("wrong type for value; expected int; got float64"),
        "{e}"
    );
    with(r#"{{ indent (int .n) .s }}"#, &v, "    x");
    // A missing key is no value under Go's default option, and a nil `interface {}` under
    // Helm's `missingkey=zero`: each is refused in its own words.
    let e = fails(r#"{{ upper .missing }}"#, &v);
    assert!(
        e.contains("at <.missing>: invalid value; expected string"),
        "{e}"
    );
    let t = Templates::new("test", helm_funcs());
    let options = Options {
        missing_key: MissingKey::Zero,
        ..t.options()
    };
    let mut t = t.with_options(options);
    t.parse("test", r#"{{ upper .missing }}"#).expect("parses");
    let e = t.execute("test", &v).expect_err("refused").to_string();
    assert!(
        e.contains("at <.missing>: wrong type for value; expected string; got interface {}"),
        "{e}"
    );
    let e = fails(r#"{{ trunc "3" .s }}"#, &v);
    assert!(
        e.contains("at <\"3\">: expected integer; found \"3\""),
        "{e}"
    );
    let e = fails(r#"{{ upper "a" "b" }}"#, &v);
    assert!(
        e.contains("wrong number of args for upper: want 1 got 2"),
        "{e}"
    );
    let e = fails(r#"{{ dict "a" 1 | dig "a" }}"#, &v);
    assert!(e.contains("dig needs at least three arguments"), "{e}");
}

/// Helm's numbers: values are float64; toYaml goes through JSON.
#[test]
fn values_numbers() {
    let v = json(
        serde_json::json!({"x": 1000000, "y": 1.5, "port": 8080, "m": {"replicas": 3, "ratio": 0.25}}),
    );
    with(r#"{{ .x }}"#, &v, "1e+06");
    with(r#"{{ toYaml .x }}"#, &v, "1000000");
    with(r#"{{ toYaml .m }}"#, &v, "ratio: 0.25\nreplicas: 3");
    with(r#"{{ .port | quote }}"#, &v, r#""8080""#);
    with(r#"{{ add .x 1 }}"#, &v, "1000001");
    with(r#"{{ .m.replicas | int }}"#, &v, "3");
    with(r#"{{ toJson .x }}"#, &v, "1000000");
    with(r#"{{ max .y 1 }}"#, &v, "1");
}

/// include, tpl, required, fail as Helm binds them.
#[test]
fn helm_bound_functions() {
    let v = json(serde_json::json!({"name": "web", "tplText": "{{ .name }}-x", "empty": ""}));
    with(
        r#"{{ define "n" }}[{{ . }}]{{ end }}{{ include "n" "a" | upper }}"#,
        &v,
        "[A]",
    );
    with(
        r#"{{ define "n" }}{{ .name }}{{ end }}{{ include "n" . | quote }}"#,
        &v,
        r#""web""#,
    );
    with(r#"{{ tpl .tplText . }}"#, &v, "web-x");
    with(r#"{{ tpl "{{ .nothing }}" . }}"#, &v, "");
    with(
        r#"{{ tpl "{{ define \"d\" }}D{{ end }}{{ include \"d\" . }}" . }}"#,
        &v,
        "D",
    );
    with(r#"{{ required "need name" .name }}"#, &v, "web");
    let e = fails(r#"{{ required "need x" .x }}"#, &v);
    assert!(e.contains("HELM_ERR_STARTneed xHELM_ERR_END"), "{e}");
    let e = fails(r#"{{ required "need empty" .empty }}"#, &v);
    assert!(e.contains("HELM_ERR_STARTneed emptyHELM_ERR_END"), "{e}");
    let e = fails(r#"{{ fail "boom" }}"#, &v);
    assert!(
        e.contains("error calling fail: HELM_ERR_STARTboomHELM_ERR_END"),
        "{e}"
    );
    let e = fails(r#"{{ include "missing" . }}"#, &v);
    assert!(e.contains("missing"), "{e}");
    // A template including itself stops (Helm: 1000 nested includes of
    // one name; the engine's depth bound may come first).
    let e = fails(
        r#"{{ define "r" }}{{ include "r" . }}{{ end }}{{ include "r" . }}"#,
        &v,
    );
    assert!(
        e.contains("nested reference name: r") || e.contains("depth"),
        "{e}"
    );
    let e = fails(r#"{{ tpl "{{ .x" . }}"#, &v);
    assert!(e.contains("cannot parse template"), "{e}");
    // set changes the map everyone holds (Go's maps are references).
    with(
        r#"{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ $e := $d }}{{ $_ := unset $e "a" }}{{ keys $d }}"#,
        &v,
        "[b]",
    );
    with(r#"{{ $_ := set . "added" "yes" }}{{ .added }}"#, &v, "yes");
}

/// genPrivateKey "ecdsa" and "ed25519" in Go's PEM forms, usable by the
/// WithKey generators (ECDSA and Ed25519 signatures verified).
#[test]
fn ecdsa_and_ed25519_keys() {
    use x509_parser::pem::parse_x509_pem;
    for (kind, label, len) in [
        ("ecdsa", "EC PRIVATE KEY", 121),
        ("ed25519", "PRIVATE KEY", 48),
    ] {
        let tpl = format!(
            r#"{{{{- $k := genPrivateKey "{kind}" -}}}}{{{{- $ca := genCAWithKey "ca" 2 $k -}}}}{{{{- $leaf := genSignedCertWithKey "leaf" nil (list "a.example") 1 $ca $k -}}}}{{{{ toJson (list $k $ca.Cert $ca.Key $leaf.Cert) }}}}"#
        );
        let out = render(&tpl, &empty()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let parts: Vec<String> = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(parts.len(), 4, "{out}");
        let key = &parts[0];
        assert!(
            key.starts_with(&format!("-----BEGIN {label}-----\n")),
            "{key}"
        );
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = data_encoding::BASE64
            .decode(body.as_bytes())
            .unwrap_or_default();
        assert_eq!(der.len(), len, "{kind}");
        assert_eq!(&parts[2], key, "the CA keeps the key given");
        let (_, ca_pem) = parse_x509_pem(parts[1].as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let ca = ca_pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
        assert!(ca.verify_signature(None).is_ok(), "{kind}");
        let (_, leaf_pem) = parse_x509_pem(parts[3].as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let leaf = leaf_pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            leaf.verify_signature(Some(ca.public_key())).is_ok(),
            "{kind}"
        );
    }
    // Two calls, two keys.
    let two = render(
        r#"{{ ne (genPrivateKey "ed25519") (genPrivateKey "ed25519") }}"#,
        &empty(),
    );
    assert_eq!(two.as_deref(), Ok("true"));
}

/// The generating forms, each making its RSA key (slow in debug builds:
/// `cargo test -p sluice-helm --test it generators_make_keys -- --ignored`).
#[test]
#[ignore = "RSA key generation takes tens of seconds in debug builds"]
fn generators_make_keys() {
    let tpl = r#"{{- $ca := genCA "ca" 1 -}}
{{- $a := genSelfSignedCert "a" nil (list "a") 1 -}}
{{- $b := genSignedCert "b" nil nil 1 $ca -}}
{{- list $ca.Key $a.Key $b.Key | uniq | len -}}"#;
    with(tpl, &empty(), "3");
}

/// No argument makes a function panic: every function with up to four
/// arguments drawn from a set of odd values returns or fails.
#[test]
fn no_panics_on_odd_arguments() {
    let odd = [
        Value::Nil,
        Value::Bool(true),
        Value::Int(-1),
        Value::Int(0),
        Value::Int(i64::MIN),
        Value::Int(3),
        Value::Uint(u64::MAX),
        Value::Float(f64::NAN),
        Value::Float(-0.5),
        Value::Float(1e300),
        Value::String(String::new()),
        Value::String("é\u{0}[(*".into()),
        Value::list(vec![Value::Nil, Value::Int(1)]),
        Value::map(BTreeMap::from([("a".to_string(), Value::Nil)])),
    ];
    let slow = [
        "derivePassword",
        "bcrypt",
        "htpasswd",
        "now",
        "ago",
        "genPrivateKey",
        "genCA",
        "genSelfSignedCert",
        "genSignedCert",
    ];
    let mut calls = 0;
    for spec in funcs::specs() {
        if slow.contains(&spec.name) || spec.needs_template() {
            continue;
        }
        let max = spec.max.unwrap_or(spec.min + 2).min(4);
        for n in spec.min..=max {
            // Every combination for short arities, a diagonal otherwise.
            let combos: Vec<Vec<Value>> = if n <= 2 {
                let mut all = vec![vec![]];
                for _ in 0..n {
                    all = all
                        .into_iter()
                        .flat_map(|c: Vec<Value>| {
                            odd.iter().map(move |v| {
                                let mut c = c.clone();
                                c.push(v.clone());
                                c
                            })
                        })
                        .collect();
                }
                all
            } else {
                (0..odd.len())
                    .map(|i| {
                        (0..n)
                            .map(|j| odd[(i + j * 5) % odd.len()].clone())
                            .collect()
                    })
                    .collect()
            };
            for args in combos {
                calls += 1;
                let _ = funcs::call(spec.name, &args);
            }
        }
    }
    assert!(calls > 10_000, "{calls}");
}

/// Every template of the corpus charts (and their subcharts) parses with
/// Helm's function map: Go's parser refuses a call to an undefined
/// function, so each function the charts name is registered.
#[test]
fn corpus_templates_parse_with_helm_funcs() {
    use sluice_helm::chart::{Chart, Limits, load_dir};
    let Some(dir) = crate::support::corpus_charts("corpus_templates_parse_with_helm_funcs") else {
        return;
    };
    fn walk(c: &Chart, out: &mut Vec<(String, String)>) {
        for t in &c.templates {
            out.push((
                format!("{}/{}", c.name(), t.name),
                String::from_utf8_lossy(&t.data.bytes()).into_owned(),
            ));
        }
        for d in &c.dependencies {
            walk(d, out);
        }
    }
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        match load_dir(&e.path(), &Limits::default()) {
            Ok(c) => walk(&c, &mut files),
            Err(err) => panic!("{}: {err}", e.path().display()),
        }
    }
    let mut bad = Vec::new();
    for (name, text) in &files {
        let mut t = Templates::new(name, helm_funcs());
        if let Err(e) = t.parse(name, text) {
            bad.push(format!("{name}: {e}"));
        }
    }
    assert!(files.len() > 500, "{} templates", files.len());
    assert!(
        bad.is_empty(),
        "{} of {} do not parse:\n{}",
        bad.len(),
        files.len(),
        bad.join("\n")
    );
}

/// The values files of the shared corpus (8 charts' values.yaml, 62
/// cases') read as Helm reads them and printed whole by toYaml, toJson,
/// toPrettyJson, toToml, toString and kindOf/empty/fromJson: each output's
/// sha256 and length as Go printed it (`funcs_values_golden.jsonl`, made
/// by `funcs_reference/values_cases.py` and the reference program).
#[test]
fn corpus_values_printed_as_go() {
    use sha2::Digest as _;
    let Some(charts) = crate::support::corpus_charts("corpus_values_printed_as_go") else {
        return;
    };
    let root = charts.join("..");
    let mut cache: std::collections::HashMap<String, Value> = Default::default();
    let (mut total, mut bad) = (0, Vec::new());
    for line in include_str!("funcs_values_golden.jsonl").lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let file = case["file"].as_str().unwrap_or_default().to_string();
        let tpl = case["tpl"].as_str().unwrap_or_default();
        let values = cache
            .entry(file.clone())
            .or_insert_with(|| {
                let bytes = std::fs::read(root.join(&file)).unwrap_or_default();
                let map = sluice_helm::values::parse_values_file(&bytes)
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                let mut text = String::new();
                sluice_kustomize::yaml::to_go_json(
                    &sluice_kustomize::yaml::Value::Map(map),
                    &mut text,
                );
                Value::from_json(&serde_json::from_str(&text).unwrap_or_default())
            })
            .clone();
        total += 1;
        let got =
            render(tpl, &values).map(|out| (hex(&sha2::Sha256::digest(out.as_bytes())), out.len()));
        let want = (
            case["sha256"].as_str().unwrap_or_default().to_string(),
            case["len"].as_u64().unwrap_or_default() as usize,
        );
        match got {
            Ok(g) if g == want => {}
            other => bad.push(format!("{file} {tpl}: go {want:?}, sluice {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {total} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
