//! Loading charts: what is read, what is ignored, and what is refused.

use std::os::unix::fs::symlink;

use sluice_helm::chart::{Bytes, ChartError, Limits, MapFile, load_archive, load_dir, load_in};

use crate::support::{demo_chart, write_tree};

fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the raw name as a hostile archive would.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_directory_loads_by_role_with_helmignore() {
    let dir = tempfile::tempdir().unwrap();
    demo_chart(dir.path());
    write_tree(
        dir.path(),
        &[
            (".helmignore", "# comment\n*.bak\nci/\n"),
            ("notes.bak", "x"),
            ("ci/values.yaml", "x: 1\n"),
            ("templates/.hidden", "x"),
            ("values.schema.json", "{}"),
            ("files/\u{feff}bom.txt", "\u{feff}with bom"),
        ],
    );
    let c = load_dir(dir.path(), &Limits::default()).unwrap();
    assert_eq!(c.name(), "demo");
    assert_eq!(c.version(), "1.2.3");
    let templates: Vec<&str> = c.templates.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        templates,
        vec!["templates/_helpers.tpl", "templates/deployment.yaml"]
    );
    let files: Vec<&str> = c.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        files,
        vec![".helmignore", "README.md", "files/\u{feff}bom.txt"]
    );
    assert_eq!(&c.files[2].data.bytes()[..], b"with bom");
    assert_eq!(c.schema.as_deref(), Some(&b"{}"[..]));
    assert_eq!(
        c.values_yaml.as_deref(),
        Some(&b"replicas: 1\nimage:\n  tag: latest\n"[..])
    );
}

#[test]
fn subcharts_from_directories_and_archives() {
    let dir = tempfile::tempdir().unwrap();
    demo_chart(dir.path());
    write_tree(
        dir.path(),
        &[
            (
                "charts/sub/Chart.yaml",
                "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
            ),
            ("charts/sub/templates/a.yaml", "a"),
            ("charts/_skipped/Chart.yaml", "not: [valid"),
            ("charts/.hidden/Chart.yaml", "not: [valid"),
        ],
    );
    let archive = tgz(&[
        (
            "packed/Chart.yaml",
            b"apiVersion: v2\nname: packed\nversion: 2.0.0\n",
        ),
        ("packed/values.yaml", b"x: 1\n"),
    ]);
    std::fs::write(dir.path().join("charts/packed-2.0.0.tgz"), archive).unwrap();
    std::fs::write(dir.path().join("charts/packed-2.0.0.tgz.prov"), "sig").unwrap();
    let c = load_dir(dir.path(), &Limits::default()).unwrap();
    let subs: Vec<&str> = c.dependencies.iter().map(|d| d.name()).collect();
    assert_eq!(subs, vec!["packed", "sub"]);
    assert!(
        c.files
            .iter()
            .any(|f| f.name == "charts/packed-2.0.0.tgz.prov")
    );

    // A stray file directly in charts/ is a broken subchart, as in Helm.
    write_tree(dir.path(), &[("charts/README.md", "x")]);
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "error unpacking subchart README.md in demo: Chart.yaml file is missing"
    );
}

#[test]
fn chart_yaml_errors_name_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    demo_chart(dir.path());
    write_tree(
        dir.path(),
        &[("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 1.x\n")],
    );
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "validation: chart.metadata.version \"1.x\" is invalid");
    write_tree(
        dir.path(),
        &[(
            "Chart.yaml",
            "apiVersion: v2\nname: demo\nversion: {a: 1}\n",
        )],
    );
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot load Chart.yaml: json: cannot unmarshal object into Go struct field Metadata.version"), "{e}");
    write_tree(
        dir.path(),
        &[("Chart.yaml", "apiVersion: v2\nname: demo\nversion: [\n")],
    );
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot load Chart.yaml: error converting YAML to JSON: yaml: line "),
        "{e}"
    );
    write_tree(
        dir.path(),
        &[("Chart.yaml", "apiVersion: v3\nname: demo\nversion: 1.0.0\n")],
    );
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("apiVersion \"v3\" is not supported"), "{e}");
    write_tree(
        dir.path(),
        &[
            ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 1.0.0\n"),
            ("values.yaml", "- a\n"),
        ],
    );
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot load values.yaml: "), "{e}");
    std::fs::remove_file(dir.path().join("Chart.yaml")).unwrap();
    let e = load_dir(dir.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Chart.yaml"), "{e}");
}

#[test]
fn symlinks_stay_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let chart = root.path().join("chart");
    demo_chart(&chart);
    write_tree(root.path(), &[("shared/_common.tpl", "{{/* shared */}}\n")]);
    // Inside the root (outside the chart): allowed when the root is the
    // artifact, as Flux allows.
    symlink(
        "../../shared/_common.tpl",
        chart.join("templates/_common.tpl"),
    )
    .unwrap();
    let c = load_in(root.path(), "chart", &Limits::default()).unwrap();
    assert!(
        c.templates
            .iter()
            .any(|t| t.name == "templates/_common.tpl"
                && &t.data.bytes()[..] == b"{{/* shared */}}\n")
    );
    // ...but not when the chart itself is the root.
    let e = load_dir(&chart, &Limits::default()).unwrap_err();
    assert!(matches!(e, ChartError::Unsafe(_)), "{e}");
    assert!(e.to_string().contains("'templates/_common.tpl'"), "{e}");

    // Out of the root: refused, naming the file and the target relative
    // to the root.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::fs::remove_file(chart.join("templates/_common.tpl")).unwrap();
    symlink(
        outside.path().join("secret"),
        chart.join("templates/secret.yaml"),
    )
    .unwrap();
    let e = load_in(root.path(), "chart", &Limits::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ChartError::Unsafe(_)), "{msg}");
    assert!(
        msg.contains("cannot load 'chart/templates/secret.yaml' file"),
        "{msg}"
    );
    assert!(
        !msg.contains(&*root.path().to_string_lossy()),
        "no host path: {msg}"
    );

    // An ignored link is not looked at (Flux's opt-out).
    std::fs::write(chart.join(".helmignore"), "secret.yaml\n").unwrap();
    assert!(load_in(root.path(), "chart", &Limits::default()).is_ok());
    std::fs::remove_file(chart.join(".helmignore")).unwrap();
    std::fs::remove_file(chart.join("templates/secret.yaml")).unwrap();

    // A dangling link, a loop.
    symlink("nowhere", chart.join("templates/dangling.yaml")).unwrap();
    let e = load_in(root.path(), "chart", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("error evaluating symlink chart/templates/dangling.yaml"),
        "{e}"
    );
    std::fs::remove_file(chart.join("templates/dangling.yaml")).unwrap();
    symlink("..", chart.join("templates/loop")).unwrap();
    let e = load_in(root.path(), "chart", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("symlink loop"), "{e}");
}

#[test]
fn paths_must_stay_in_the_root() {
    let root = tempfile::tempdir().unwrap();
    demo_chart(&root.path().join("chart"));
    for bad in ["../chart", "/etc", "chart/../../x"] {
        let e = load_in(root.path(), bad, &Limits::default()).unwrap_err();
        assert!(matches!(e, ChartError::Unsafe(_)), "{bad}: {e}");
    }
    assert!(load_in(root.path(), "./chart/../chart", &Limits::default()).is_ok());
    let e = load_in(root.path(), "missing", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("error reading missing: "), "{e}");
}

/// How many files [`held_copy`] was asked for.
static HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// How many times a template's read let go of a held file's bytes after copying them.
static RELEASED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A [`MapFile`] mapping for tests: the file's bytes read into a buffer that stands for a
/// mapping (what a load does with a file's bytes does not depend on who holds them).
fn held_copy(f: &std::fs::File) -> std::io::Result<std::sync::Arc<dyn Bytes>> {
    struct Held(Vec<u8>);
    impl Bytes for Held {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
        fn release(&self) {
            RELEASED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    HELD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut b = Vec::new();
    std::io::Read::read_to_end(&mut &*f, &mut b)?;
    Ok(std::sync::Arc::new(Held(b)))
}

#[test]
fn mapped_files_load_and_render_as_read_ones() {
    let dir = tempfile::tempdir().unwrap();
    demo_chart(dir.path());
    let big = "x".repeat(3000);
    write_tree(
        dir.path(),
        &[
            ("files/\u{feff}bom.txt", "\u{feff}with bom"),
            ("files/big.txt", &big),
            ("crds/crd.yaml", "\u{feff}kind: CustomResourceDefinition\n"),
            (
                "templates/cm.yaml",
                "\u{feff}kind: ConfigMap\ndata:\n  big: {{ .Files.Get \"files/big.txt\" | len }}\n  bom: {{ .Files.Get \"files/\u{feff}bom.txt\" }}\n",
            ),
        ],
    );
    let mapped = |at_least| Limits {
        map: Some(MapFile {
            at_least,
            map: held_copy,
        }),
        ..Limits::default()
    };
    let read = load_dir(dir.path(), &Limits::default()).unwrap();
    let before = HELD.load(std::sync::atomic::Ordering::Relaxed);
    let all = load_dir(dir.path(), &mapped(1)).unwrap();
    let files = HELD.load(std::sync::atomic::Ordering::Relaxed) - before;
    // Every file of the chart went through the mapping: Chart.yaml, values.yaml, README.md,
    // two files, the CRD and three templates.
    assert_eq!(files, 9);
    assert_eq!(all, read);
    assert_eq!(
        &all.files
            .iter()
            .find(|f| f.name.ends_with("bom.txt"))
            .unwrap()
            .data
            .bytes()[..],
        b"with bom"
    );
    let render = |c: &sluice_helm::chart::Chart| {
        let r = sluice_helm::render::render(c, &Default::default(), &Default::default()).unwrap();
        r.manifest(true)
    };
    let released = RELEASED.load(std::sync::atomic::Ordering::Relaxed);
    let out = render(&all);
    assert!(out.contains("big: 3000\n  bom: with bom\n"), "{out}");
    // Each of the three templates was copied out as text, and each of the two `.Files.Get`
    // copied its file: every copy let go of the held bytes.
    assert_eq!(
        RELEASED.load(std::sync::atomic::Ordering::Relaxed) - released,
        5
    );
    assert!(
        out.contains("# Source: demo/crds/crd.yaml\nkind: CustomResourceDefinition\n"),
        "{out}"
    );
    assert_eq!(out, render(&read));
    // Only files of at least `at_least` bytes are mapped.
    let before = HELD.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load_dir(dir.path(), &mapped(2000)).unwrap(), read);
    assert_eq!(HELD.load(std::sync::atomic::Ordering::Relaxed) - before, 1);
    // The limits hold for mapped files as for read ones, with the same messages.
    for limits in [
        Limits {
            max_file_size: 2999,
            ..mapped(1)
        },
        Limits {
            max_total_size: 2000,
            ..mapped(1)
        },
    ] {
        let plain = Limits {
            map: None,
            ..limits
        };
        assert_eq!(
            load_dir(dir.path(), &limits).unwrap_err().to_string(),
            load_dir(dir.path(), &plain).unwrap_err().to_string()
        );
    }
}

#[test]
fn limits_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    demo_chart(dir.path());
    write_tree(dir.path(), &[("files/big.bin", &"x".repeat(2000))]);
    let small = Limits {
        max_file_size: 1000,
        ..Limits::default()
    };
    let e = load_dir(dir.path(), &small).unwrap_err();
    assert!(matches!(e, ChartError::Limit(_)));
    assert_eq!(
        e.to_string(),
        "cannot load file files/big.bin as file size (2000) exceeds limit (1000)"
    );
    let few = Limits {
        max_files: 3,
        ..Limits::default()
    };
    assert!(matches!(
        load_dir(dir.path(), &few),
        Err(ChartError::Limit(_))
    ));
    let total = Limits {
        max_total_size: 1500,
        ..Limits::default()
    };
    assert!(matches!(
        load_dir(dir.path(), &total),
        Err(ChartError::Limit(_))
    ));
}

#[test]
fn hostile_archives_are_refused() {
    let ok = |entries: &[(&str, &[u8])]| load_archive(&tgz(entries)[..], &Limits::default());
    let chart_yaml: &[u8] = b"apiVersion: v2\nname: a\nversion: 1.0.0\n";
    assert!(ok(&[("a/Chart.yaml", chart_yaml)]).is_ok());
    let e = ok(&[("a/Chart.yaml", chart_yaml), ("a/../../etc/x", b"x")]).unwrap_err();
    assert!(matches!(e, ChartError::Unsafe(_)), "{e}");
    assert!(e.to_string().contains("parent directory"), "{e}");
    let e = ok(&[("a/Chart.yaml", chart_yaml), ("a//etc/passwd", b"x")]).unwrap_err();
    assert!(e.to_string().contains("absolute paths"), "{e}");
    let e = ok(&[("Chart.yaml", chart_yaml)]).unwrap_err();
    assert!(e.to_string().contains("outside the base directory"), "{e}");
    let e = load_archive(&b"not gzip at all"[..], &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("stream does not appear to be a valid chart file"),
        "{e}"
    );
    let e = ok(&[]).unwrap_err().to_string();
    assert_eq!(e, "no files in chart archive");

    // A gzip bomb stops at the total limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut b = tar::Builder::new(&mut gz);
    let mut h = tar::Header::new_gnu();
    h.set_path("a/files/zeros").unwrap();
    h.set_size(64 << 20);
    h.set_cksum();
    b.append(&h, std::io::Read::take(std::io::repeat(0), 64 << 20))
        .unwrap();
    b.finish().unwrap();
    drop(b);
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let small = Limits {
        max_total_size: 8 << 20,
        max_file_size: 100 << 20,
        ..Limits::default()
    };
    let e = load_archive(&bomb[..], &small).unwrap_err();
    assert!(matches!(e, ChartError::Limit(_)), "{e}");

    // A link entry out of the chart.
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(chart_yaml.len() as u64);
    h.set_path("a/Chart.yaml").unwrap();
    h.set_cksum();
    b.append(&h, chart_yaml).unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    b.append_link(&mut l, "a/templates/x.yaml", "/etc/passwd")
        .unwrap();
    let bytes = b.into_inner().unwrap().finish().unwrap();
    let e = load_archive(&bytes[..], &Limits::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("\"a/templates/x.yaml\" links to \"/etc/passwd\""),
        "{e}"
    );
}

#[test]
fn nested_archives_share_the_total_limit() {
    // Three subchart archives of 400 KiB each (compressing to almost
    // nothing) in a chart limited to 1 MiB in total: the third one is over.
    let dir = tempfile::tempdir().unwrap();
    demo_chart(dir.path());
    std::fs::create_dir_all(dir.path().join("charts")).unwrap();
    for i in 0..3 {
        let name = format!("sub{i}");
        let chart_yaml = format!("apiVersion: v2\nname: {name}\nversion: 1.0.0\n");
        let zeros = vec![b'0'; 400 << 10];
        let archive = tgz(&[
            (&format!("{name}/Chart.yaml"), chart_yaml.as_bytes()),
            (&format!("{name}/files/zeros"), &zeros),
        ]);
        std::fs::write(dir.path().join(format!("charts/{name}-1.0.0.tgz")), archive).unwrap();
    }
    let limits = Limits {
        max_total_size: 1 << 20,
        ..Limits::default()
    };
    let e = load_dir(dir.path(), &limits).unwrap_err();
    assert!(matches!(e, ChartError::Limit(_)), "{e}");
    assert!(
        e.to_string().contains("subchart archives count towards"),
        "{e}"
    );
    assert!(load_dir(dir.path(), &Limits::default()).is_ok());
}

#[test]
fn a_v1_chart_packed_as_read_is_the_chart_loaded_and_packed() {
    // A v1 chart keeps its requirements as files: packed as they are read, as `pack` packs them.
    use sluice_helm::chart::load_archive_packed;
    let requirements = "dependencies:\n- name: sub\n  version: 0.1.0\n  repository: https://charts.example.com\n  condition: sub.enabled\n".repeat(12);
    let archive = tgz(&[
        ("a/Chart.yaml", b"apiVersion: v1\nname: a\nversion: 1.0.0\n"),
        ("a/requirements.yaml", requirements.as_bytes()),
        (
            "a/templates/cm.yaml",
            "kind: ConfigMap\n".repeat(64).as_bytes(),
        ),
    ]);
    let mut want = load_archive(&archive[..], &Limits::default()).unwrap();
    want.pack();
    let got = load_archive_packed(&archive[..], &Limits::default()).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.held_bytes(), want.held_bytes());
    let req = got
        .files
        .iter()
        .find(|f| f.name == "requirements.yaml")
        .unwrap();
    assert!(req.data.is_packed());
    assert_eq!(&req.data.bytes()[..], requirements.as_bytes());
}
