//! Go's `multi_test.go` (sets of templates: `define`, `template`, several
//! parses, redefinition, clones, empty templates) and the set-level tests of
//! `exec_test.go` (`TestExecError`, `TestBlock`, `TestMissingMapKey`,
//! `TestComparison`, ...), ported.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::exec::{Engine, Set};
use super::*;

fn set(name: &str) -> Templates {
    Templates::new(name, FuncMap::new())
}

fn parsed(name: &str, text: &str) -> Templates {
    let mut t = set(name);
    t.parse(name, text).expect("parses");
    t
}

/// (input, ok, defined names with their bodies)
type MultiCase = (&'static str, bool, &'static [(&'static str, &'static str)]);

#[test]
fn go_multi_parse() {
    let cases: &[MultiCase] = &[
        ("", true, &[]),
        (r#"{{define "foo"}} FOO {{end}}"#, true, &[("foo", " FOO ")]),
        (
            r#"{{define "foo"}} FOO {{end}}{{define "bar"}} BAR {{end}}"#,
            true,
            &[("foo", " FOO "), ("bar", " BAR ")],
        ),
        (r#"{{define "foo"}} FOO "#, false, &[]),
        (r#"{{define "foo}} FOO "#, false, &[]),
    ];
    for (input, ok, names) in cases {
        let mut t = set("root");
        let r = t.parse("root", input);
        assert_eq!(r.is_ok(), *ok, "{input:?}: {r:?}");
        if !ok {
            continue;
        }
        assert_eq!(t.names().len(), names.len() + 1, "{input:?}");
        for (n, body) in *names {
            assert_eq!(
                t.execute(n, &Value::Nil).as_deref(),
                Ok(*body),
                "{input:?} {n}"
            );
        }
    }
}

const MULTI_TEXT1: &str = r#"
	{{define "x"}}TEXT{{end}}
	{{define "dotV"}}{{.V}}{{end}}
"#;
const MULTI_TEXT2: &str = r#"
	{{define "dot"}}{{.}}{{end}}
	{{define "nested"}}{{template "dot" .}}{{end}}
"#;

#[test]
fn go_multi_execute() {
    let mut base = Templates::new("root", super::tests::test_funcs());
    base.parse("root", MULTI_TEXT1).expect("1");
    base.parse("root", MULTI_TEXT2).expect("2");
    let tval = super::tests::t_val();
    let cases: &[(&str, &str, &Value)] = &[
        ("", "", &Value::Nil),
        ("some text", "some text", &Value::Nil),
        (r#"{{template "x" .SI}}"#, "TEXT", &tval),
        (r#"{{template "x"}}"#, "TEXT", &tval),
        (r#"{{template "dot" .I}}"#, "17", &tval),
        (r#"{{template "dot" .SI}}"#, "[3 4 5]", &tval),
        (r#"{{template "dotV" .U}}"#, "v", &tval),
        (r#"{{template "nested" .I}}"#, "17", &tval),
        (
            r#"{{template "nested" $x:=.SI}},{{index $x 1}}"#,
            "[3 4 5],4",
            &tval,
        ),
        (r#"{{oneArg "joe"}}"#, "oneArg=joe", &tval),
        (r#"{{oneArg .}}"#, "oneArg=joe", &Value::string("joe")),
    ];
    for (i, (input, want, data)) in cases.iter().enumerate() {
        let mut t = base.clone();
        let name = format!("case{i}");
        t.parse(&name, input).expect("parses");
        assert_eq!(t.execute(&name, data).as_deref(), Ok(*want), "{input:?}");
    }
}

const CLONE_TEXT1: &str = r#"{{define "a"}}{{template "b"}}{{template "c"}}{{end}}"#;
const CLONE_TEXT2: &str = r#"{{define "b"}}b{{end}}"#;
const CLONE_TEXT3: &str = r#"{{define "c"}}root{{end}}"#;
const CLONE_TEXT4: &str = r#"{{define "c"}}clone{{end}}"#;
const CLONE_TEXT5: &str = r#"{{define "e"}}{{.Foo}}{{end}}"#;

#[test]
fn go_clone() {
    let mut root = parsed("root", CLONE_TEXT1);
    root.parse("root", CLONE_TEXT2).expect("2");
    root.parse("root", CLONE_TEXT5).expect("5");
    let mut root = root.with_options(Options {
        missing_key: MissingKey::Error,
        ..Options::default()
    });
    let mut clone = root.clone();
    root.parse("root", CLONE_TEXT3).expect("3");
    clone.parse("root", CLONE_TEXT4).expect("4");
    assert_eq!(root.execute("a", &Value::Int(0)).as_deref(), Ok("broot"));
    assert_eq!(clone.execute("a", &Value::Int(0)).as_deref(), Ok("bclone"));
    let empty = Value::map(BTreeMap::new());
    let root_err = root.execute("e", &empty).expect_err("missing key");
    let clone_err = clone.execute("e", &empty).expect_err("missing key");
    assert_eq!(root_err, clone_err);
    assert_eq!(
        root_err.to_string(),
        r#"template: root:1:16: executing "e" at <.Foo>: map has no entry for key "Foo""#
    );
}

#[test]
fn go_redefinition() {
    let mut t = parsed("tmpl1", r#"{{define "test"}}foo{{end}}"#);
    t.parse("tmpl1", r#"{{define "test"}}bar{{end}}"#)
        .expect("redefine");
    t.parse("tmpl2", r#"{{define "test"}}bar{{end}}"#)
        .expect("redefine");
    assert_eq!(t.execute("test", &Value::Nil).as_deref(), Ok("bar"));
}

#[test]
fn go_template_lookup_and_new() {
    let mut t = set("foo");
    assert!(!t.contains("foo"));
    t.parse("foo", r#"{{define "foo"}}test{{end}}"#)
        .expect("parses");
    assert!(t.contains("foo"));
    assert_eq!(t.execute("foo", &Value::Nil).as_deref(), Ok("test"));
}

#[test]
fn go_parse_empty_bodies_do_not_replace() {
    // Go's TestParse: only one parse may give a body; empty ones keep it.
    let mut t = set("test");
    t.parse("test", r#"{{define "test"}}{{end}}"#).expect("1");
    t.parse(
        "test",
        r#"{{define "test"}}{{/* this is a comment */}}{{end}}"#,
    )
    .expect("2");
    t.parse("test", r#"{{define "test"}}foo{{end}}"#)
        .expect("3");
    assert_eq!(t.execute("test", &Value::Nil).as_deref(), Ok("foo"));
}

#[test]
fn go_empty_template() {
    // (definitions parsed in turn as template `in`, in, want): the last
    // parse's own tree is executed, as Go's `m.Execute` does.
    let cases: &[(&[&str], &str, &str)] = &[
        (&["x", "y"], "", "y"),
        (&[""], "once", ""),
        (&["", ""], "twice", ""),
        (&["{{.}}", "{{.}}"], "twice", "twice"),
        (
            &["{{/* a comment */}}", "{{/* a comment */}}"],
            "comment",
            "",
        ),
        (&["{{.}}", ""], "twice", ""),
    ];
    for (defs, input, want) in cases {
        let mut s = Set::new("root", Arc::new(FuncMap::new()), Options::default());
        let mut last = None;
        for d in *defs {
            last = Some(s.parse(input, &std::sync::Arc::from(*d)).expect("parses"));
        }
        let tree = last.expect("a tree");
        let got = Engine::new(Arc::new(s)).run(&tree, Value::string(*input));
        assert_eq!(got.as_deref(), Ok(*want), "{defs:?}");
    }
}

#[test]
fn go_issue_19294() {
    for _ in 0..20 {
        let mut t = parsed("title.xhtml", r#"{{template "xhtml" .}}"#);
        t.parse("stylesheet", r#"{{define "stylesheet"}}stylesheet{{end}}"#)
            .expect("1");
        t.parse("xhtml", r#"{{block "stylesheet" .}}{{end}}"#)
            .expect("2");
        assert_eq!(
            t.execute("title.xhtml", &Value::Int(0)).as_deref(),
            Ok("stylesheet")
        );
    }
}

const EXEC_ERROR_TEXT: &str = r#"line 1
line 2
line 3
{{template "one" .}}
{{define "one"}}{{template "two" .}}{{end}}
{{define "two"}}{{template "three" .}}{{end}}
{{define "three"}}{{index "hi" $}}{{end}}"#;

#[test]
fn go_exec_error() {
    let t = parsed("top", EXEC_ERROR_TEXT);
    assert_eq!(
        t.execute("top", &Value::Int(5)).map_err(|e| e.to_string()),
        Err(r#"template: top:7:20: executing "three" at <index "hi" $>: error calling index: index out of range: 5"#.into())
    );
}

#[test]
fn go_js_escaping() {
    for (input, want) in [
        ("a", "a"),
        ("'foo", r"\'foo"),
        (r#"Go "jump" \"#, r#"Go \"jump\" \\"#),
        (
            "Yukihiro says \"今日は世界\"",
            "Yukihiro says \\\"今日は世界\\\"",
        ),
        ("unprintable \u{FFFE}", r"unprintable \uFFFE"),
        ("<html>", r"\u003Chtml\u003E"),
        ("no = in attributes", r"no \u003D in attributes"),
        (
            "&#x27; does not become HTML entity",
            r"\u0026#x27; does not become HTML entity",
        ),
    ] {
        assert_eq!(super::builtins::js_escape(input), want, "{input:?}");
    }
}

#[test]
fn go_message_for_execute_empty() {
    let t = set("empty");
    assert_eq!(
        t.execute("empty", &Value::Int(0))
            .map_err(|e| e.to_string()),
        Err(r#"template: empty: "empty" is an incomplete or empty template"#.into())
    );
    let mut t = set("empty");
    t.parse(
        "secondary",
        r#"{{define "one"}}one{{end}}{{define "two"}}two{{end}}"#,
    )
    .expect("parses");
    assert!(t.execute("empty", &Value::Int(0)).is_err());
    assert_eq!(t.execute("secondary", &Value::Int(0)).as_deref(), Ok(""));
}

#[test]
fn go_final_for_printf() {
    assert_eq!(
        parsed("", r#"{{"x" | printf}}"#)
            .execute("", &Value::Int(0))
            .as_deref(),
        Ok("x")
    );
}

#[test]
fn go_missing_map_key() {
    let data = Value::map([("x".to_string(), Value::Int(99))].into());
    let run = |mk: MissingKey, data: &Value| {
        parsed("t1", "{{.x}} {{.y}}")
            .with_options(Options {
                missing_key: mk,
                ..Options::default()
            })
            .execute("t1", data)
    };
    assert_eq!(
        run(MissingKey::Default, &data).as_deref(),
        Ok("99 <no value>")
    );
    // Go's map[string]int gives 0 here; Helm's maps hold interface{}, whose
    // zero prints as no value.
    assert_eq!(run(MissingKey::Zero, &data).as_deref(), Ok("99 <no value>"));
    assert!(run(MissingKey::Error, &data).is_err());
    assert!(run(MissingKey::Error, &Value::Nil).is_err());
}

#[test]
fn go_unterminated_string_error() {
    let e = set("X")
        .parse("X", "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n")
        .expect_err("error");
    assert!(
        e.to_string()
            .contains("X:3: unterminated raw quoted string"),
        "{e}"
    );
}

#[test]
fn go_execute_gives_exec_error() {
    let e = parsed("X", "hello, {{.X.Y}}")
        .execute("X", &Value::Int(0))
        .expect_err("error");
    assert!(matches!(e, Error::Exec(_)));
    assert!(e.to_string().contains("field X in type int"), "{e}");
}

#[test]
fn go_block() {
    let t = parsed("outer", r#"a({{block "inner" .}}bar({{.}})baz{{end}})b"#);
    let mut t2 = t.clone();
    t2.parse("outer", r#"{{define "inner"}}foo({{.}})bar{{end}}"#)
        .expect("overlay");
    assert_eq!(
        t.execute("outer", &Value::string("hello")).as_deref(),
        Ok("a(bar(hello)baz)b")
    );
    assert_eq!(
        t2.execute("outer", &Value::string("goodbye")).as_deref(),
        Ok("a(foo(goodbye)bar)b")
    );
}

#[test]
fn go_max_exec_depth() {
    let e = parsed("tmpl", r#"{{template "tmpl" .}}"#)
        .execute("tmpl", &Value::Nil)
        .expect_err("deep");
    assert!(
        e.to_string().contains("exceeded maximum template depth"),
        "{e}"
    );
}

#[test]
fn go_issue_31810() {
    assert_eq!(
        parsed("", "{{ (.)  }}")
            .execute("", &Value::string("result"))
            .as_deref(),
        Ok("result")
    );
}

#[test]
fn go_eval_field_errors() {
    let e = parsed("tmpl", "{{.MissingField}}")
        .execute("tmpl", &super::tests::t_val())
        .expect_err("error");
    assert!(
        e.to_string()
            .ends_with("can't evaluate field MissingField in type *template.T"),
        "{e}"
    );
}

/// Go's `cmpTests` over its `cmpStruct`, less the cases about complex
/// numbers, pointers, interfaces and nil maps.
#[test]
fn go_comparison() {
    let data = Value::map(
        [
            ("Uthree".to_string(), Value::Uint(3)),
            ("Ufour".to_string(), Value::Uint(4)),
            ("NegOne".to_string(), Value::Int(-1)),
            ("Three".to_string(), Value::Int(3)),
            ("NonNilMap".to_string(), Value::map(BTreeMap::new())),
        ]
        .into(),
    );
    let cases: &[(&str, &str, bool)] = &[
        ("eq true true", "true", true),
        ("eq true false", "false", true),
        ("eq 1.5 1.5", "true", true),
        ("eq 1.5 2.5", "false", true),
        ("eq 1 1", "true", true),
        ("eq 1 2", "false", true),
        ("eq `xy` `xy`", "true", true),
        ("eq `xy` `xyz`", "false", true),
        ("eq .Uthree .Uthree", "true", true),
        ("eq .Uthree .Ufour", "false", true),
        ("eq 3 4 5 6 3", "true", true),
        ("eq 3 4 5 6 7", "false", true),
        ("ne true true", "false", true),
        ("ne true false", "true", true),
        ("ne 1.5 1.5", "false", true),
        ("ne 1.5 2.5", "true", true),
        ("ne 1 1", "false", true),
        ("ne 1 2", "true", true),
        ("ne `xy` `xy`", "false", true),
        ("ne `xy` `xyz`", "true", true),
        ("ne .Uthree .Uthree", "false", true),
        ("ne .Uthree .Ufour", "true", true),
        ("lt 1.5 1.5", "false", true),
        ("lt 1.5 2.5", "true", true),
        ("lt 1 1", "false", true),
        ("lt 1 2", "true", true),
        ("lt `xy` `xy`", "false", true),
        ("lt `xy` `xyz`", "true", true),
        ("lt .Uthree .Uthree", "false", true),
        ("lt .Uthree .Ufour", "true", true),
        ("le 1.5 1.5", "true", true),
        ("le 1.5 2.5", "true", true),
        ("le 2.5 1.5", "false", true),
        ("le 1 1", "true", true),
        ("le 1 2", "true", true),
        ("le 2 1", "false", true),
        ("le `xy` `xy`", "true", true),
        ("le `xy` `xyz`", "true", true),
        ("le `xyz` `xy`", "false", true),
        ("le .Uthree .Uthree", "true", true),
        ("le .Uthree .Ufour", "true", true),
        ("le .Ufour .Uthree", "false", true),
        ("gt 1.5 1.5", "false", true),
        ("gt 1.5 2.5", "false", true),
        ("gt 1 1", "false", true),
        ("gt 2 1", "true", true),
        ("gt 1 2", "false", true),
        ("gt `xy` `xy`", "false", true),
        ("gt `xy` `xyz`", "false", true),
        ("gt .Uthree .Uthree", "false", true),
        ("gt .Uthree .Ufour", "false", true),
        ("gt .Ufour .Uthree", "true", true),
        ("ge 1.5 1.5", "true", true),
        ("ge 1.5 2.5", "false", true),
        ("ge 2.5 1.5", "true", true),
        ("ge 1 1", "true", true),
        ("ge 1 2", "false", true),
        ("ge 2 1", "true", true),
        ("ge `xy` `xy`", "true", true),
        ("ge `xy` `xyz`", "false", true),
        ("ge `xyz` `xy`", "true", true),
        ("ge .Uthree .Uthree", "true", true),
        ("ge .Uthree .Ufour", "false", true),
        ("ge .Ufour .Uthree", "true", true),
        ("eq .Uthree .Three", "true", true),
        ("eq .Three .Uthree", "true", true),
        ("le .Uthree .Three", "true", true),
        ("le .Three .Uthree", "true", true),
        ("ge .Uthree .Three", "true", true),
        ("ge .Three .Uthree", "true", true),
        ("lt .Uthree .Three", "false", true),
        ("lt .Three .Uthree", "false", true),
        ("gt .Uthree .Three", "false", true),
        ("gt .Three .Uthree", "false", true),
        ("eq .Ufour .Three", "false", true),
        ("lt .Ufour .Three", "false", true),
        ("gt .Ufour .Three", "true", true),
        ("eq .NegOne .Uthree", "false", true),
        ("eq .Uthree .NegOne", "false", true),
        ("ne .NegOne .Uthree", "true", true),
        ("ne .Uthree .NegOne", "true", true),
        ("lt .NegOne .Uthree", "true", true),
        ("lt .Uthree .NegOne", "false", true),
        ("le .NegOne .Uthree", "true", true),
        ("le .Uthree .NegOne", "false", true),
        ("gt .NegOne .Uthree", "false", true),
        ("gt .Uthree .NegOne", "true", true),
        ("ge .NegOne .Uthree", "false", true),
        ("ge .Uthree .NegOne", "true", true),
        ("eq (index `x` 0) 'x'", "true", true),
        ("eq (index `x` 0) 'y'", "false", true),
        ("eq `xy` 1", "", false),
        ("eq 2 2.0", "", false),
        ("lt true true", "", false),
        ("eq .NonNilMap .NonNilMap", "", false),
    ];
    for (expr, want, ok) in cases {
        let text = format!("{{{{if {expr}}}}}true{{{{else}}}}false{{{{end}}}}");
        let r = parsed("empty", &text).execute("empty", &data);
        match (r, ok) {
            (Ok(got), true) => assert_eq!(got, *want, "{expr}"),
            (Err(e), true) => panic!("{expr}: {e}"),
            (Ok(got), false) => panic!("{expr}: expected an error, got {got:?}"),
            (Err(_), false) => {}
        }
    }
}
