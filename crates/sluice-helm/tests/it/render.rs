//! The renderer on a chart made to exercise Helm's semantics (aliases used
//! twice, `condition`, `tags`, both forms of `import-values`, a library
//! chart, globals merged down, `null` deleting defaults, `.Files`,
//! `.Capabilities`, hooks, comment-only documents, NOTES, `--show-only`),
//! against goldens printed by the real `helm template` v4.2.4 (the commands
//! are in each test), and Helm's error messages.

use std::path::{Path, PathBuf};

use sluice_helm::Limits;
use sluice_helm::chart::load_dir;
use sluice_helm::render::{self, Options, PrintOptions, strvals};
use sluice_helm::values::{load_values, merge_maps};

use crate::support::{install_record, write_tree};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/render")
}

fn opts(kube: &str) -> Options {
    Options {
        release_name: "rel".into(),
        namespace: "apps".into(),
        kube_version: Some(kube.into()),
        ..Options::default()
    }
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).expect("golden file")
}

// helm template rel features -n apps --kube-version 1.31.2 --include-crds
#[test]
fn features_with_defaults_match_helm() {
    let chart = load_dir(&dir().join("features"), &Limits::default()).unwrap();
    render::check_dependencies(&chart).unwrap();
    // The parsed templates left to the process's exit, as `sluice helm template` does.
    let kept = Options {
        free_templates: false,
        ..opts("1.31.2")
    };
    let print = PrintOptions {
        include_crds: true,
        ..Default::default()
    };
    let out = render::render(&chart, &Default::default(), &kept)
        .unwrap()
        .template_output(&print)
        .unwrap();
    assert_eq!(out, golden("features.golden"));
    let r = render::render(&chart, &Default::default(), &opts("1.31.2")).unwrap();
    let out = r.template_output(&print).unwrap();
    assert_eq!(out, golden("features.golden"));
    assert_eq!(r.notes, "Thank you for installing features.\n");
    let weights: Vec<i64> = r.hooks.iter().map(|h| h.weight).collect();
    assert_eq!(weights, [-5, 0, 5]);
    assert_eq!(r.hooks[2].events, ["post-install", "post-upgrade"]);
    assert_eq!(r.hooks[2].delete_policies, ["before-hook-creation"]);
}

// helm template rel features -n apps --kube-version 1.31.2 -f set-values.yaml
//   --set 'list={a,b},first.name=set\,escaped' --api-versions example.com/v1 --is-upgrade
#[test]
fn features_with_values_and_set_match_helm() {
    let chart = load_dir(&dir().join("features"), &Limits::default()).unwrap();
    let file = std::fs::read(dir().join("set-values.yaml")).unwrap();
    let mut values = merge_maps(Default::default(), load_values(&file).unwrap());
    strvals::parse_into(
        r"list={a,b},first.name=set\,escaped",
        &mut values,
        strvals::Kind::Typed,
    )
    .unwrap();
    let o = Options {
        api_versions: vec!["example.com/v1".into()],
        is_upgrade: true,
        ..opts("1.31.2")
    };
    let out = render::render(&chart, &values, &o)
        .unwrap()
        .template_output(&PrintOptions::default())
        .unwrap();
    assert_eq!(out, golden("features-values.golden"));
}

// helm template rel features -n apps --kube-version 1.31.2
//   --show-only templates/hooks.yaml --show-only 'charts/*/templates/cm.yaml'
#[test]
fn show_only_matches_helm() {
    let chart = load_dir(&dir().join("features"), &Limits::default()).unwrap();
    let r = render::render(&chart, &Default::default(), &opts("1.31.2")).unwrap();
    let p = PrintOptions {
        show_only: vec![
            "templates/hooks.yaml".into(),
            "charts/*/templates/cm.yaml".into(),
        ],
        ..Default::default()
    };
    assert_eq!(
        r.template_output(&p).unwrap(),
        golden("features-show-only.golden")
    );
    let p = PrintOptions {
        show_only: vec!["templates/nope.yaml".into()],
        ..Default::default()
    };
    assert_eq!(
        r.template_output(&p).unwrap_err(),
        "could not find template templates/nope.yaml in chart"
    );
}

fn render_err(templates: &[(&str, &str)], values: &str, kube: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = vec![(
        "Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 0.1.0\nkubeVersion: '>=1.25.0-0'\n",
    )];
    files.push(("values.yaml", values));
    files.extend_from_slice(templates);
    write_tree(tmp.path(), &files);
    let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
    render::render(&chart, &Default::default(), &opts(kube))
        .map(|_| String::new())
        .unwrap_err()
        .to_string()
}

/// Helm validates the values against the chart's schema before it renders: a violation is the
/// error even where a template would fail too, whether validation runs beside the render (more
/// than one thread) or before it.
#[test]
fn schema_violations_come_before_template_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[
            ("Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n"),
            ("values.yaml", "port: 80\nboom: false\n"),
            (
                "values.schema.json",
                r#"{"type": "object", "properties": {"port": {"type": "integer"}}}"#,
            ),
            (
                "templates/cm.yaml",
                "{{ if .Values.boom }}{{ fail \"template failed\" }}{{ end }}\nkind: ConfigMap\nport: {{ .Values.port }}\n",
            ),
        ],
    );
    let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
    let values = |text: &str| load_values(text.as_bytes()).unwrap();
    for (threads, validate_beside) in [(1, true), (4, false), (4, true)] {
        let o = Options {
            threads,
            validate_beside,
            ..opts("1.31.2")
        };
        let err = render::render(&chart, &values("port: x\nboom: true\n"), &o)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("values don't meet the specifications of the schema(s)"),
            "{threads} threads: {err}"
        );
        assert!(err.contains("/port"), "{err}");
        assert!(!err.contains("template failed"), "{err}");
        let err = render::render(&chart, &values("boom: true\n"), &o)
            .unwrap_err()
            .to_string();
        assert!(err.contains("template failed"), "{threads} threads: {err}");
        let r = render::render(&chart, &values("port: 8080\n"), &o).unwrap();
        assert!(
            r.manifests[0].content.contains("port: 8080"),
            "{threads} threads"
        );
        let skipped = Options {
            skip_schema_validation: true,
            ..o
        };
        render::render(&chart, &values("port: x\n"), &skipped).unwrap();
    }
}

/// Rendered YAML is read as go-yaml reads it: each case of
/// `render/yaml_cases.jsonl` (a template's text and what `helm template`
/// v4.2.4 said: nothing when it rendered, else its error after `Error: `)
/// is accepted or refused as Helm does, with Helm's message. The cases are
/// the mistakes templates make (tabs, unclosed quotes and brackets, bad
/// indentation, control characters, explicit tags, odd keys) and texts one
/// YAML 1.2 parser refuses where libyaml does not (a tab after `:`, a
/// quoted scalar's lines less indented). Where Helm is built, the file is
/// checked against it too.
#[test]
fn yaml_is_read_as_go_yaml_reads_it() {
    let cases: Vec<serde_json::Value> = std::fs::read_to_string(dir().join("yaml_cases.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 60);
    let helm = crate::support::helm_bin("yaml_is_read_as_go_yaml_reads_it");
    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[("Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")],
    );
    let mut wrong = Vec::new();
    for case in &cases {
        let (name, text) = (
            case["name"].as_str().unwrap(),
            case["text"].as_str().unwrap(),
        );
        let want = case["helm"].as_str().unwrap();
        write_tree(tmp.path(), &[("templates/a.yaml", text)]);
        let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
        let got = match render::render(&chart, &Default::default(), &opts("1.31.0")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        if got != want {
            wrong.push(format!("{name}: sluice {got:?}, Helm {want:?}"));
        }
        if let Some(helm) = &helm {
            let out = std::process::Command::new(helm)
                .args(["template", "r"])
                .arg(tmp.path())
                .output()
                .unwrap();
            let said = if out.status.success() {
                String::new()
            } else {
                let e = String::from_utf8_lossy(&out.stderr);
                let first = e.lines().next().unwrap_or_default();
                first.strip_prefix("Error: ").unwrap_or(first).to_string()
            };
            assert_eq!(said, want, "{name}: the file no longer says what Helm says");
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Each message is what `helm template` v4.2.4 prints after `Error: `.
#[test]
fn errors_read_as_helms() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "x: {{ required \"set .Values.host, please\" .Values.host }}",
            "",
            "execution error at (c/templates/a.yaml:1:6): set .Values.host, please",
        ),
        (
            "x: {{ fail \"this chart is not for you\" }}",
            "",
            "execution error at (c/templates/a.yaml:1:6): this chart is not for you",
        ),
        (
            "x: {{ .Values.a ",
            "",
            "parse error at (c/templates/a.yaml:1): unclosed action",
        ),
        (
            "x: {{ .Values.a.b.c }}",
            "",
            "c/templates/a.yaml:1:13\n  executing \"c/templates/a.yaml\" at <.Values.a.b.c>:\n    nil pointer evaluating interface {}.b",
        ),
        // A function's own error ends the chain Helm unwraps: printed as it is.
        (
            "x: {{ tpl \"{{ .Values.a.b.c }}\" . }}",
            "",
            "template: c/templates/a.yaml:1:6: executing \"c/templates/a.yaml\" at <tpl \"{{ .Values.a.b.c }}\" .>: error calling tpl: error during tpl function execution for \"{{ .Values.a.b.c }}\": template: gotpl:1:10: executing \"gotpl\" at <.Values.a.b.c>: nil pointer evaluating interface {}.b",
        ),
        (
            "x: {{ include \"c.h\" . }}{{ define \"c.h\" }}{{ toString (mustRegexMatch \"[a--]\" \"x\") }}{{ end }}",
            "",
            "template: c/templates/a.yaml:1:6: executing \"c/templates/a.yaml\" at <include \"c.h\" .>: error calling include: template: c/templates/a.yaml:1:55: executing \"c.h\" at <mustRegexMatch \"[a--]\" \"x\">: error calling mustRegexMatch: error parsing regexp: invalid character class range: `a--`",
        ),
        // go-yaml's lines: a parser error's counted from 0, a scanner error's from 1, none on
        // the first line; and libyaml's problem without its context.
        (
            "a: [1",
            "",
            "YAML parse error on c/templates/a.yaml: error converting YAML to JSON: yaml: line 1: did not find expected ',' or ']'",
        ),
        (
            "a: {b: 1\n",
            "",
            "YAML parse error on c/templates/a.yaml: error converting YAML to JSON: yaml: line 1: did not find expected ',' or '}'",
        ),
        (
            "a:\n  b: 1\n c: 2\n",
            "",
            "YAML parse error on c/templates/a.yaml: error converting YAML to JSON: yaml: line 2: did not find expected key",
        ),
        (
            "a:\n  - b\n  c: 1\n",
            "",
            "YAML parse error on c/templates/a.yaml: error converting YAML to JSON: yaml: line 2: did not find expected '-' indicator",
        ),
        (
            "a: Error: x\n",
            "",
            "YAML parse error on c/templates/a.yaml: error converting YAML to JSON: yaml: mapping values are not allowed in this context",
        ),
        (
            "a: 1\nb: c: d\n",
            "",
            "YAML parse error on c/templates/a.yaml: error converting YAML to JSON: yaml: line 2: mapping values are not allowed in this context",
        ),
    ];
    for (tpl, values, want) in cases {
        assert_eq!(
            render_err(&[("templates/a.yaml", tpl)], values, "1.31.0"),
            *want,
            "{tpl}"
        );
    }
    assert_eq!(
        render_err(&[("templates/a.yaml", "a: 1")], "", "1.24.0"),
        "chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.0"
    );
}

/// An `include` of itself stops at Helm's bound with Helm's message; a
/// `tpl` that calls itself (Helm overflows its stack and crashes) stops at
/// the depth bound. Long chains keep their ends only (Helm prints the whole
/// chain of a thousand `include`s, on one line of about 100 kB).
#[test]
fn recursion_is_bounded_and_reported() {
    let e = render_err(
        &[(
            "templates/a.yaml",
            "{{- define \"loop\" -}}{{ include \"loop\" . }}{{- end -}}\nx: {{ include \"loop\" . }}",
        )],
        "",
        "1.31.0",
    );
    assert!(
        e.ends_with(
            "rendering template has a nested reference name: loop: unable to execute template"
        ),
        "{e}"
    );
    assert!(e.contains("nested calls omitted"), "{e}");
    assert!(e.len() < 4096, "{} bytes", e.len());
    let e = render_err(
        &[(
            "templates/a.yaml",
            "x: {{ tpl \"{{ tpl .Values.t . }}\" . }}",
        )],
        "t: \"{{ tpl .Values.t . }}\"\n",
        "1.31.0",
    );
    assert!(
        e.ends_with("exceeded maximum template depth (10000)"),
        "{e}"
    );
}

/// Each template's output and the chart's whole output are bounded.
#[test]
fn huge_outputs_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[
            ("Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n"),
            (
                "templates/a.yaml",
                "{{ range until 100000 }}{{ repeat 1000 \"x\" }}{{ end }}",
            ),
            ("templates/b.yaml", "{{ repeat 600 \"y\" }}"),
            ("templates/c.yaml", "{{ repeat 600 \"z\" }}"),
        ],
    );
    let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
    let mut o = opts("1.31.0");
    o.template.max_output = 1 << 20;
    let e = render::render(&chart, &Default::default(), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("c/templates/a.yaml"), "{e}");
    std::fs::remove_file(tmp.path().join("templates/a.yaml")).unwrap();
    let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
    o.max_total_output = 1000;
    let e = render::render(&chart, &Default::default(), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("the chart's output exceeds 1000 bytes"), "{e}");
}

#[test]
fn missing_dependencies_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[(
            "Chart.yaml",
            "apiVersion: v2\nname: c\nversion: 0.1.0\ndependencies:\n- name: a\n  version: 1.0.0\n- name: b\n  version: 1.0.0\n",
        )],
    );
    let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
    assert_eq!(
        render::check_dependencies(&chart).unwrap_err(),
        "found in Chart.yaml, but missing in charts/ directory: a, b"
    );
}

// helm template rel realworld -n apps --kube-version 1.31.2
/// What real charts do that the corpus did not, each found by
/// `scripts/realworld-helm` on a public chart: bitnami common's `hasKey` on
/// the `.data` of a Secret `lookup` does not find (no value where Go passes
/// a nil map), `toYaml` of a multi-line string (its block indented by two,
/// as go-yaml indents a document that is one scalar), and values whose flow
/// collections and quoted scalars have lines left of their block (which
/// go-yaml does not check), sprig's list functions given
/// `.Capabilities.APIVersions` (external-secrets' `has`), and a `-` after a
/// Perl class in a bracket expression (redis-ha's `^[\w-\.]+$`).
#[test]
fn realworld_patterns_match_helm() {
    let chart = load_dir(&dir().join("realworld"), &Limits::default()).unwrap();
    let r = render::render(&chart, &Default::default(), &opts("1.31.2")).unwrap();
    let out = r.template_output(&PrintOptions::default()).unwrap();
    assert_eq!(out, golden("realworld.golden"));
}

/// The goldens were printed by the real Helm; where it is built, check that
/// they still are what it prints.
#[test]
fn goldens_are_helms_output() {
    let Some(helm) = crate::support::helm_bin("goldens_are_helms_output") else {
        return;
    };
    for (chart, flags, name) in [
        ("features", &["--include-crds"][..], "features.golden"),
        ("realworld", &[][..], "realworld.golden"),
    ] {
        let out = std::process::Command::new(&helm)
            .args(["template", "rel"])
            .arg(dir().join(chart))
            .args(["-n", "apps", "--kube-version", "1.31.2"])
            .args(flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{chart}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            golden(name),
            "{chart}"
        );
    }
}

/// Helm's own test charts (`pkg/cmd/testdata/testcharts` of the Helm module,
/// downloaded into the Go module cache: source only, nothing is built)
/// against what `helm template rel CHART --include-crds [flags]` printed for
/// each (written by `scripts/helm-testcharts --write-goldens`).
#[test]
fn helms_own_test_charts_match_helm() {
    let Some(charts) = helm_module_testcharts() else {
        return;
    };
    let goldens = dir().join("testcharts");
    let mut checked = 0;
    for entry in std::fs::read_dir(&charts).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".prov") || name.ends_with(".tar.gz") {
            continue;
        }
        for upgrade in [false, true] {
            let golden = goldens.join(format!(
                "{name}{}.out",
                if upgrade { ".upgrade" } else { "" }
            ));
            let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/helm-testcharts --write-goldens)",
                    golden.display()
                )
            });
            let opts = if upgrade {
                Options {
                    release_name: "rel".into(),
                    namespace: "other".into(),
                    is_upgrade: true,
                    kube_version: Some("1.30.2".into()),
                    api_versions: vec!["example.com/v1".into()],
                    ..Options::default()
                }
            } else {
                Options {
                    release_name: "rel".into(),
                    ..Options::default()
                }
            };
            let got = template(&path, &opts).unwrap_or_else(|_| "error\n".into());
            assert_eq!(got, want, "{name} (upgrade: {upgrade})");
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} test chart renders");
}

/// `helm template` as the CLI runs it: load, check dependencies, render, print.
fn template(path: &Path, opts: &Options) -> Result<String, String> {
    let limits = Limits::default();
    let chart = if path.is_dir() {
        load_dir(path, &limits)
    } else {
        let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        sluice_helm::chart::load_archive(std::io::BufReader::new(f), &limits)
    }
    .map_err(|e| e.to_string())?;
    render::check_dependencies(&chart)?;
    let r = render::render(&chart, &Default::default(), opts).map_err(|e| e.to_string())?;
    r.template_output(&PrintOptions {
        include_crds: true,
        ..Default::default()
    })
}

/// The test charts of the Helm module (`go mod download`), or `None` with a
/// message when Go or the module proxy is not available.
fn helm_module_testcharts() -> Option<PathBuf> {
    let skip = |why: String| {
        eprintln!("helms_own_test_charts_match_helm: skipped, {why}");
        None
    };
    let out = match std::process::Command::new("go")
        .args(["mod", "download", "-json", "helm.sh/helm/v4@v4.2.4"])
        .current_dir(std::env::temp_dir())
        .output()
    {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return skip(format!(
                "go mod download failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return skip(format!("go is not available: {e}")),
    };
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let dir = PathBuf::from(json.get("Dir")?.as_str()?).join("pkg/cmd/testdata/testcharts");
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(format!("{} is absent", dir.display()))
    }
}

// helm template rel values-echo -f set-values.yaml
//   --set-json '{"j":{"k":[1,2.5]}}'
//   --set-json 'a={"x":[1,"two",null]}, b[1]=true,c.d="s,t",e=,f=3'
//   --set 'list={a,b},n=010' --set-string zip=007
//   --set-literal 'lit.v=a,b=c\d' --set-literal 'l[1].k=v'
// (the chart prints the values it gets as JSON)
#[test]
fn values_flags_merge_as_helm_merges_them() {
    let chart = load_dir(&dir().join("values-echo"), &Limits::default()).unwrap();
    let flags = strvals::ValueFlags {
        files: vec![(
            "set-values.yaml".into(),
            std::fs::read(dir().join("set-values.yaml")).unwrap(),
        )],
        json: vec![
            r#"{"j":{"k":[1,2.5]}}"#.into(),
            r#"a={"x":[1,"two",null]}, b[1]=true,c.d="s,t",e=,f=3"#.into(),
        ],
        set: vec!["list={a,b},n=010".into()],
        set_string: vec!["zip=007".into()],
        literal: vec![r"lit.v=a,b=c\d".into(), "l[1].k=v".into()],
        ..Default::default()
    };
    let values = strvals::merge_flags(&flags).unwrap();
    let o = Options {
        release_name: "rel".into(),
        ..Default::default()
    };
    let out = render::render(&chart, &values, &o)
        .unwrap()
        .template_output(&PrintOptions::default())
        .unwrap();
    assert_eq!(out, golden("values-flags.golden"));
}

/// A packed chart (`Chart::pack`: what the HelmRelease controller keeps
/// loaded) renders, prints its CRDs, answers `.Files` and makes its release
/// record exactly as the chart it was packed from.
#[test]
fn a_packed_chart_renders_and_records_as_loaded() {
    use sluice_helm::release::Release;
    let tmp = tempfile::tempdir().unwrap();
    let crd = |kind: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {kind}s.example.com\nspec:\n  group: example.com\n{}",
            "  # padding so that the file is worth packing\n".repeat(40)
        )
    };
    let template = format!(
        "{}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}\ndata:\n  get: {{{{ .Files.Get \"files/conf/a.txt\" | sha256sum }}}}\n  bytes: {{{{ .Files.GetBytes \"files/conf/a.txt\" | b64enc | len }}}}\n  lines: {{{{ .Files.Lines \"files/conf/a.txt\" | len }}}}\n  field: {{{{ index .Files \"files/conf/a.txt\" | len }}}}\n  globbed: {{{{ range $p, $b := .Files.Glob \"files/**\" }}}}{{{{ $p }}}}={{{{ len $b }}}};{{{{ end }}}}\n  secrets: {{{{ (.Files.Glob \"files/conf/*\").AsSecrets | sha256sum }}}}\n{{{{- (.Files.Glob \"files/conf/*\").AsConfig | nindent 2 }}}}\n",
        "{{/* a comment long enough to pack the template */}}\n".repeat(20)
    );
    let a = "alpha beta gamma delta\n".repeat(60);
    write_tree(
        tmp.path(),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: packed\nversion: 1.0.0\ndependencies:\n- name: sub\n  version: 0.1.0\n",
            ),
            ("values.yaml", "n: 3\n"),
            ("crds/widgets.yaml", &crd("widget")),
            ("files/conf/a.txt", &a),
            ("files/conf/b.txt", "short\n"),
            ("templates/cm.yaml", &template),
            (
                "charts/sub/Chart.yaml",
                "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
            ),
            ("charts/sub/crds/gadgets.yaml", &crd("gadget")),
            (
                "charts/sub/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sub\n",
            ),
        ],
    );
    let chart = load_dir(tmp.path(), &Limits::default()).unwrap();
    let mut packed = chart.clone();
    packed.pack();
    assert!(
        packed.held_bytes() * 3 < chart.held_bytes(),
        "{} of {} bytes held",
        packed.held_bytes(),
        chart.held_bytes()
    );
    assert!(packed.dependencies[0].files[0].data.is_packed());
    assert!(
        !packed
            .files
            .iter()
            .any(|f| f.name == "files/conf/b.txt" && f.data.is_packed())
    );
    assert_eq!(packed, chart);
    let print = PrintOptions {
        include_crds: true,
        ..Default::default()
    };
    let mut outs = Vec::new();
    for c in [&chart, &packed] {
        let r = render::render(c, &Default::default(), &opts("1.31.2")).unwrap();
        let record = install_record(c, &r, "apps");
        let json = record.to_json().unwrap();
        let back = Release::decode(record.encode().unwrap().as_bytes()).unwrap();
        assert_eq!(back.to_json().unwrap(), json);
        outs.push((r.template_output(&print).unwrap(), json));
    }
    let out = &outs[0].0;
    assert!(out.contains("name: widgets.example.com") && out.contains("name: gadgets.example.com"));
    assert!(
        out.contains("lines: 60") && out.contains("files/conf/a.txt=1380;"),
        "{out}"
    );
    assert!(outs[0].1.contains("\"name\":\"crds/widgets.yaml\""));
    assert_eq!(outs[1], outs[0]);

    // From an archive, its subchart an archive inside it: packed as it is
    // read, the chart is what loading it whole and packing it gives.
    use sluice_helm::chart::{load_archive, load_archive_packed};
    use sluice_helm::package::package;
    let sub = package(&chart.dependencies[0]).unwrap();
    std::fs::remove_dir_all(tmp.path().join("charts/sub")).unwrap();
    std::fs::write(tmp.path().join("charts/sub-0.1.0.tgz"), sub).unwrap();
    let archive = package(&load_dir(tmp.path(), &Limits::default()).unwrap()).unwrap();
    let mut want = load_archive(&archive[..], &Limits::default()).unwrap();
    want.pack();
    let got = load_archive_packed(&archive[..], &Limits::default()).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.held_bytes(), want.held_bytes());
    assert_eq!(got, packed);
    assert!(got.dependencies[0].files[0].data.is_packed());
}
