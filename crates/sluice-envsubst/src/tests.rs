use super::*;

type Vars<'a> = &'a [(&'a str, &'a str)];

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(input: &str, pairs: &[(&str, &str)], strict: bool) -> Result<String, Error> {
    substitute(input, &vars(pairs), Options { strict })
}

/// Expansion cases, non-strict (Flux's default). Most come from the
/// reference test-suite, the rest pin down dialect quirks.
#[test]
fn expand_table() {
    let cases: &[(Vars, &str, &str)] = &[
        (&[], "abcdEFGH28ij", "abcdEFGH28ij"),
        (&[("var01", "abcdEFGH28ij")], "${#var01}", "12"),
        (&[("var01", "abcdEFGH28ij")], "${var01^}", "AbcdEFGH28ij"),
        (&[("var01", "abcdEFGH28ij")], "${var01^^}", "ABCDEFGH28IJ"),
        (&[("var01", "ABCDEFGH28IJ")], "${var01,}", "aBCDEFGH28IJ"),
        (&[("var01", "ABCDEFGH28IJ")], "${var01,,}", "abcdefgh28ij"),
        (
            &[("path_name", "/home/bozo/ideas/thoughts.for.today")],
            "${path_name:11}",
            "ideas/thoughts.for.today",
        ),
        (
            &[("path_name", "/home/bozo/ideas/thoughts.for.today")],
            "${path_name:11:5}",
            "ideas",
        ),
        (&[("var", "abc")], "${var=xyz}", "abc"),
        (&[], "${var=xyz}", "xyz"),
        (
            &[("default_var", "foo")],
            "something ${var=${default_var}}",
            "something foo",
        ),
        (
            &[("default_var", "foo1")],
            "foo: ${var=${default_var}-suffix}",
            "foo: foo1-suffix",
        ),
        (
            &[("default_var", "foo1")],
            "foo: ${var=prefix${default_var}-suffix}",
            "foo: prefixfoo1-suffix",
        ),
        (&[], "${var:=xyz}", "xyz"),
        (
            &[("stringZ", "abcABC123ABCabc")],
            "${stringZ/%abc/XYZ}",
            "abcABC123ABCXYZ",
        ),
        (
            &[("stringZ", "abcABC123ABCabc")],
            "${stringZ/#abc/XYZ}",
            "XYZABC123ABCabc",
        ),
        (
            &[("stringZ", "somevalue")],
            "${stringZ/#/prefix-}",
            "prefix-somevalue",
        ),
        (
            &[("stringZ", "somevalue")],
            "${stringZ/%/-suffix}",
            "somevalue-suffix",
        ),
        (
            &[("stringZ", "abcABC123ABCabc")],
            "${stringZ//abc/xyz}",
            "xyzABC123ABCxyz",
        ),
        (
            &[("stringZ", "abcABC123ABCabc")],
            "${stringZ/abc/xyz}",
            "xyzABC123ABCabc",
        ),
        (
            &[("filename", "bash.string.txt")],
            "${filename#*.}",
            "string.txt",
        ),
        (&[("filename", "path/to/file")], "${filename#*/}", "to/file"),
        (
            &[("filename", "/path/to/file")],
            "${filename#*/}",
            "path/to/file",
        ),
        (&[("filename", "bash.string.txt")], "${filename##*.}", "txt"),
        (&[("filename", "path/to/file")], "${filename##*/}", "file"),
        (&[("filename", "/path/to/file")], "${filename##*/}", "file"),
        (
            &[("filename", "bash.string.txt")],
            "${filename%.*}",
            "bash.string",
        ),
        (
            &[("filename", "bash.string.txt")],
            "${filename%%.*}",
            "bash",
        ),
        (
            &[("var01", "abcdEFGH28ij")],
            "${var=${var01^^}}",
            "ABCDEFGH28IJ",
        ),
        (&[("var01", "abcdEFGH28ij")], "$${var01}", "${var01}"),
        (
            &[("var01", "abcdEFGH28ij")],
            "some text ${var01}$${var$${var01}$var01${var01}",
            "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
        ),
        (
            &[("default_var", "foo")],
            "something $${var=${default_var}}",
            "something ${var=foo}",
        ),
        (&[("stringZ", "foo/bar")], r"${stringZ/\//-}", "foo-bar"),
        (
            &[("stringZ", "foo/bar/baz")],
            r"${stringZ//\//-}",
            "foo-bar-baz",
        ),
        (
            &[("default_var", "foo")],
            r"\\something ${var=${default_var}}",
            r"\\something foo",
        ),
        (&[("stringZ", "foo.bar")], "${stringZ/./}", "foobar"),
        // Plain `$var` is never substituted.
        (&[("name", "x")], "$name ${name}", "$name x"),
        (
            &[("name", "x")],
            "cost: $5 and $ alone $",
            "cost: $5 and $ alone $",
        ),
        // `$$` is an escape everywhere in plain text.
        (&[], "a$$b", "a$b"),
        (&[], "$$$", "$$"),
        (&[("a", "1")], "$$${a}", "$1"),
        // Undefined variables are empty in non-strict mode.
        (&[], "x${missing}y", "xy"),
        (&[], "${missing^^}${#missing}", "0"),
        // `:+` behaves like `:-` in this dialect.
        (&[("set", "v")], "${set:+alt}", "v"),
        (&[], "${unset:+alt}", "alt"),
        (&[("empty", "")], "${empty:-d}${empty=e}", "de"),
        (&[], "${a:-}", ""),
        (&[("b", "B")], "${a:-x${b}y${c:-z}}", "xByz"),
        // Escapes inside a default are literal text.
        (&[("b", "B")], "${a:-\\/}", "\\/"),
        (&[("b", "B")], "${a=$${b}}", "$B"),
        // Replacement text may nest expressions.
        (&[("v", "a-b"), ("sep", "_")], "${v/-/${sep}}", "a_b"),
        (&[("v", "a.b.c")], "${v//./}", "abc"),
        (&[("v", "abc")], "${v/#a/}", "abc"),
        // Byte semantics of `#` and substrings.
        (&[("v", "héllo")], "${#v} ${v:0:1}", "6 h"),
        // Unicode names parse (they can never be defined through Flux).
        (&[], "${é}", ""),
        // Multi-line YAML.
        (
            &[("cluster", "prod"), ("replicas", "3")],
            "metadata:\n  name: app-${cluster}\nspec:\n  replicas: ${replicas:=1}\n",
            "metadata:\n  name: app-prod\nspec:\n  replicas: 3\n",
        ),
        // Text after a NUL is dropped, as in Flux.
        (&[], "a\0b", "a"),
    ];
    for (pairs, input, want) in cases {
        assert_eq!(
            run(input, pairs, false).as_deref(),
            Ok(*want),
            "input {input:?}"
        );
    }
}

#[test]
fn strict_table() {
    let not_set = |name: &str| Err(name.to_string());
    let cases: Vec<(Vars, &str, Result<String, String>)> = vec![
        (&[], "abcdEFGH28ij", Ok("abcdEFGH28ij".into())),
        (&[("foo", "bar")], "${foo}", Ok("bar".into())),
        (&[("foo", "")], "${foo}", Ok("".into())),
        (&[], "${missing}", not_set("missing")),
        (
            &[("foo", "bar")],
            "${missing:=default}",
            Ok("default".into()),
        ),
        (&[], "${#missing}", not_set("missing")),
        (&[], "${missing^}", not_set("missing")),
        (&[], "${missing^^}", not_set("missing")),
        (&[], "${missing,}", not_set("missing")),
        (&[], "${missing,,}", not_set("missing")),
        (&[], "${missing:0}", not_set("missing")),
        (&[], "${missing:0:10}", not_set("missing")),
        (&[], "${missing/pattern/replacement}", not_set("missing")),
        (&[], "${missing//pattern/replacement}", not_set("missing")),
        (&[], "${missing/#pattern/replacement}", not_set("missing")),
        (&[], "${missing/%pattern/replacement}", not_set("missing")),
        (&[], "${missing#pattern}", not_set("missing")),
        (&[], "${missing##pattern}", not_set("missing")),
        (&[], "${missing%pattern}", not_set("missing")),
        (&[], "${missing%%pattern}", not_set("missing")),
        (&[], "${missing:-fallback}", Ok("fallback".into())),
        (&[], "${missing:=assigned}", Ok("assigned".into())),
        (&[], "${missing=assigned}", Ok("assigned".into())),
        (&[], "${missing:+alt}", Ok("alt".into())),
        (&[], "${missing:?msg}", Ok("msg".into())),
        (&[], "${missing:-}", Ok("".into())),
        // Arguments are evaluated even when unused.
        (&[("set", "v")], "${set:-${inner}}", not_set("inner")),
        (&[("d", "D")], "${missing:-${d}}", Ok("D".into())),
        // First failure in document order.
        (&[], "${first} ${second}", not_set("first")),
        // Escaped expressions are text.
        (&[], "$${missing}", Ok("${missing}".into())),
    ];
    for (pairs, input, want) in cases {
        let got = run(input, pairs, true).map_err(|e| match e {
            Error::VariableNotSet { name, .. } => name,
            other => panic!("unexpected error {other:?} for {input:?}"),
        });
        assert_eq!(got, want, "input {input:?}");
    }
}

#[test]
fn parse_error_table() {
    use ParseErrorKind::*;
    let cases: &[(&str, ParseErrorKind, Option<&str>, usize, usize)] = &[
        ("${", VariableName, None, 1, 1),
        ("a: ${}", VariableName, None, 1, 4),
        ("a: 1\nb: ${var", MissingClosingBrace, Some("var"), 2, 4),
        (
            "x\ny\n  ${var-default}",
            MissingClosingBrace,
            Some("var"),
            3,
            3,
        ),
        ("${var+alt}", MissingClosingBrace, Some("var"), 1, 1),
        ("${var:}", FuncSubstitution, Some("var"), 1, 1),
        ("${var:-unterminated", FuncSubstitution, Some("var"), 1, 1),
        ("${var/only}", BadSubstitution, Some("var"), 1, 1),
        ("${#}", BadSubstitution, None, 1, 1),
        ("é ${a:-${b.c}}", MissingClosingBrace, Some("b"), 1, 8),
    ];
    for (input, kind, var, line, column) in cases {
        // Parse errors win regardless of strictness or variables.
        for strict in [false, true] {
            let err = run(input, &[("var", "v"), ("a", "x")], strict).expect_err(input);
            match &err {
                Error::Parse {
                    kind: k,
                    variable,
                    position,
                } => {
                    assert_eq!(k, kind, "input {input:?}");
                    assert_eq!(variable.as_deref(), *var, "input {input:?}");
                    assert_eq!(
                        (position.line, position.column),
                        (*line, *column),
                        "input {input:?}"
                    );
                }
                other => panic!("unexpected {other:?} for {input:?}"),
            }
            assert_eq!(err.variable(), *var);
        }
    }
}

#[test]
fn parse_error_beats_strict_error() {
    let err = run("${missing} ${broken", &[], true).expect_err("must fail");
    assert!(matches!(
        err,
        Error::Parse {
            kind: ParseErrorKind::MissingClosingBrace,
            ..
        }
    ));
}

#[test]
fn error_messages() {
    let err = run("a: 1\nb: ${TOKEN}", &[], true).expect_err("strict");
    assert_eq!(
        err.to_string(),
        "variable not set (strict mode): \"TOKEN\" at line 2, column 4"
    );
    assert_eq!(err.position().offset, 8);

    let err = run("${x:-a", &[], false).expect_err("parse");
    assert_eq!(
        err.to_string(),
        "unable to parse substitution within function in expression for \"x\" at line 1, column 1"
    );
    let err = run("${}", &[], false).expect_err("parse");
    assert_eq!(
        err.to_string(),
        "unable to parse variable name at line 1, column 1"
    );
}

#[test]
fn errors_never_contain_values() {
    let secret = "s3cr3t-V4LUE";
    let inputs = [
        "${PASSWORD} ${missing}",
        "${PASSWORD:-x} ${PASSWORD/s3/y} ${missing^^}",
        "${PASSWORD} ${PASSWORD:",
        "${PASSWORD} ${-}",
    ];
    for input in inputs {
        let err = run(input, &[("PASSWORD", secret)], true).expect_err(input);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn lookup_impls() {
    let mut hm: HashMap<&str, &str> = HashMap::new();
    hm.insert("a", "1");
    assert_eq!(
        substitute("${a}", &hm, Options::default()).as_deref(),
        Ok("1")
    );

    let mut bt = BTreeMap::new();
    bt.insert("a".to_string(), "2".to_string());
    assert_eq!(
        substitute("${a}", &bt, Options::strict()).as_deref(),
        Ok("2")
    );
    let by_ref = &bt;
    assert_eq!(
        substitute("${a}", &by_ref, Options::strict()).as_deref(),
        Ok("2")
    );

    let f = FnLookup(|n: &str| (n == "a").then(|| "3".to_string()));
    assert_eq!(
        substitute("${a}${b:-4}", &f, Options::strict()).as_deref(),
        Ok("34")
    );
    let dynamic: &dyn Lookup = &f;
    assert_eq!(
        substitute("${a}", dynamic, Options::strict()).as_deref(),
        Ok("3")
    );
}

#[test]
fn var_name_validation() {
    let cases: &[(&str, bool)] = &[
        ("a", true),
        ("_", true),
        ("_a1", true),
        ("CLUSTER_NAME", true),
        ("var01", true),
        ("", false),
        ("1abc", false),
        ("a-b", false),
        ("a.b", false),
        ("a b", false),
        ("é", false),
        ("ab\n", false),
    ];
    for (name, ok) in cases {
        assert_eq!(is_valid_var_name(name), *ok, "{name:?}");
    }
    assert_eq!(validate_var_names(["a", "b_2"]), Ok(()));
    let err = validate_var_names(vec![
        "ok".to_string(),
        "bad-name".to_string(),
        "1x".to_string(),
    ])
    .expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "'bad-name' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
    );
}

#[test]
fn normalize_strips_newlines() {
    assert_eq!(normalize_value("a\nb\n"), "ab");
    assert_eq!(normalize_value("a\r\nb"), "a\rb");
}

/// Deterministic pseudo-random inputs over the characters that matter to
/// the parser: no panics, and when parsing succeeds the output is stable.
#[test]
fn fuzz_no_panic() {
    let alphabet: Vec<char> = "${}:=-+?#%/^,\\*[]a_1 \n\0é".chars().collect();
    let vars = vars(&[("a", "abc/é*[x"), ("_", ""), ("a_1", "1")]);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 24) as usize;
        let mut s = String::new();
        let mut x = state;
        for _ in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
        }
        for strict in [false, true] {
            let _ = substitute(&s, &vars, Options { strict });
        }
    }
}

#[test]
fn adversarial_inputs_are_fast_and_safe() {
    let v = vars(&[("a", &"x".repeat(1000))]);
    let cases = [
        "${".repeat(50_000),
        "$".repeat(100_000),
        "${a:-".repeat(50_000),
        "${a}".repeat(50_000),
        format!("{}{}", "${a:-${a:-".repeat(10), "}".repeat(40)),
        "}".repeat(100_000),
        format!("${{a/{}/y}}", "\\/".repeat(50_000)),
    ];
    let start = std::time::Instant::now();
    for c in &cases {
        let _ = substitute(c, &v, Options::default());
        let _ = substitute(c, &v, Options::strict());
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    let out = substitute(&"${a}".repeat(1000), &v, Options::default()).expect("ok");
    assert_eq!(out.len(), 1_000_000);
}

#[test]
fn trimming_large_ascii_values_is_linear() {
    let big = format!("{}y", "x".repeat(200_000));
    let v = vars(&[("v", &big)]);
    let start = std::time::Instant::now();
    let out = substitute("${v##*x}|${v%%x*}|${v#*[xy]}", &v, Options::default()).expect("ok");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out, format!("y||{}", &big[1..]));
}

/// Templates assembled from valid and broken pieces: no panics, plain text
/// without `$` or NUL passes through unchanged, and `$${` always renders a
/// literal `${`.
#[test]
fn structured_fuzz_properties() {
    let pieces = [
        "${a}",
        "${b:-x}",
        "${a:1:2}",
        "${a//b/c}",
        "${a/#/p}",
        "${a%%.*}",
        "${#a}",
        "${a^^}",
        "${a:=${b}}",
        "${",
        "}",
        "$",
        "$$",
        "$${a}",
        "\\/",
        "text ",
        "\n",
        "é",
        ":",
        "/",
        "#",
        "%",
        "${a:-${b:-${c}}}",
        "${a/${b}/${c}}",
        "${z:-}",
    ];
    let v = vars(&[("a", "a.b/c"), ("b", "B"), ("c", "")]);
    let mut state: u64 = 0xDEAD_BEEF_CAFE_F00D;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state % 6) as usize + 1;
        let mut x = state;
        let mut input = String::new();
        for _ in 0..n {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            input.push_str(pieces[(x >> 33) as usize % pieces.len()]);
        }
        let _ = substitute(&input, &v, Options::default());
        let _ = substitute(&input, &v, Options::strict());
    }
    for plain in ["", "a: b\n", "{}", "}{", "é ✓ \\ / # % ^ , :", "{a}"] {
        assert_eq!(
            substitute(plain, &v, Options::strict()).as_deref(),
            Ok(plain)
        );
    }
    for name in ["a", "b", "missing", "a:-x", "a//b/c"] {
        let input = format!("x $${{{name}}} y");
        assert_eq!(
            substitute(&input, &v, Options::strict()).as_deref(),
            Ok(format!("x ${{{name}}} y").as_str())
        );
    }
}

#[test]
fn nested_replace_all_cannot_grow_without_bound() {
    // Each level multiplies by len(value) + 1: 2 * 5^13 - 1 bytes (2.4 GB).
    let mut text = String::from("X");
    for _ in 0..13 {
        text = format!("${{cluster///{text}}}");
    }
    let started = std::time::Instant::now();
    let e = run(&text, &[("cluster", "qzx9")], false).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("substitution of \"cluster\" at line 1, column "),
        "{e}"
    );
    assert!(!e.to_string().contains("qzx9"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Eight levels (2 * 5^8 - 1 = 781,249 bytes) are fine and exact.
    let mut text = String::from("X");
    for _ in 0..8 {
        text = format!("${{cluster///{text}}}");
    }
    assert_eq!(
        run(&text, &[("cluster", "qzx9")], false).unwrap().len(),
        781_249
    );
}
