//! Packaging fixtures with the corners of Helm's `Save`: a `Chart.yaml`
//! re-encoded (keys sorted, unknown fields gone, numbers read as Helm reads
//! them), v1 charts with `requirements.*`, `Chart.lock`, archived
//! subcharts written back as directories, long and non-ASCII names. The
//! expected `Chart.yaml` texts are Helm's (checked against `helm package`
//! when it is built).

use std::process::Command;

use sluice_helm::chart::{Limits, load_dir};

use crate::support::{helm_bin, tar_view, write_tree};

const TRICKY_CHART_YAML: &str = "\
apiVersion: v2
name: tricky
version: 1.0.0
appVersion: 1.10
description: \"A  chart\\twith\\ttabs and a zero\\u200bwidth space\"
kubeVersion: '>=1.25.0-0'
home: https://example.com
keywords: [b, a, 10]
sources: [https://example.com/src]
maintainers:
  - name: Someone
    email: someone@example.com
  - name: Other
    url: https://example.com/other
annotations:
  artifacthub.io/changes: |
    - kind: added
      description: something
  category: yes
  z: '1'
engine: gotpl
deprecated: false
type: application
icon: https://example.com/icon.png
dependencies:
  - name: sub
    version: 0.1.0
    alias: subalias
    condition: sub.enabled
    tags: [front]
    import-values:
      - child: a.b
        parent: c
      - data
unknownField: dropped
";

const TRICKY_EXPECTED: &str = "\
annotations:
  artifacthub.io/changes: |
    - kind: added
      description: something
  category: \"true\"
  z: \"1\"
apiVersion: v2
appVersion: \"1.1\"
dependencies:
- alias: subalias
  condition: sub.enabled
  import-values:
  - child: a.b
    parent: c
  - data
  name: sub
  repository: \"\"
  tags:
  - front
  version: 0.1.0
description: A  chart with tabs and a zerowidth space
home: https://example.com
icon: https://example.com/icon.png
keywords:
- b
- a
- \"10\"
kubeVersion: '>=1.25.0-0'
maintainers:
- email: someone@example.com
  name: Someone
- name: Other
  url: https://example.com/other
name: tricky
sources:
- https://example.com/src
type: application
version: 1.0.0
";

fn tricky(dir: &std::path::Path) {
    let long = format!("files/{}/{}.txt", "deep".repeat(30), "n".repeat(60));
    write_tree(
        dir,
        &[
            ("Chart.yaml", TRICKY_CHART_YAML),
            ("values.yaml", "# comments and order kept\nb: 1\na: 2\n"),
            (
                "Chart.lock",
                "dependencies:\n- name: sub\n  repository: \"\"\n  version: 0.1.0\ndigest: sha256:abc\ngenerated: \"2024-05-06T07:08:09.120+00:00\"\n",
            ),
            ("values.schema.json", "{\"type\": \"object\"}\n"),
            ("templates/a.yaml", "a"),
            ("templates/sub/b.yaml", "b"),
            ("templates/ünïcödé.yaml", "u"),
            (&long, "long"),
            (
                "charts/sub/Chart.yaml",
                "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
            ),
            ("charts/sub/templates/s.yaml", "s"),
        ],
    );
}

fn v1(dir: &std::path::Path) {
    write_tree(
        dir,
        &[
            (
                "Chart.yaml",
                "name: old\nversion: 0.3.0\ndescription: a v1 chart\n",
            ),
            (
                "requirements.yaml",
                "dependencies:\n- name: dep\n  version: 1.0.0\n  repository: file://../dep\n",
            ),
            (
                "requirements.lock",
                "dependencies:\n- name: dep\n  version: 1.0.0\n  repository: file://../dep\ndigest: sha256:def\ngenerated: 2020-01-01T00:00:00Z\n",
            ),
            ("values.yaml", "x: 1\n"),
            ("templates/t.yaml", "t"),
            ("charts/dep/Chart.yaml", "name: dep\nversion: 1.0.0\n"),
            ("charts/dep/templates/d.yaml", "d"),
        ],
    );
}

fn entry<'a>(view: &'a [(String, Vec<u8>, Vec<u8>)], name: &str) -> &'a str {
    let e = view
        .iter()
        .find(|e| e.0 == name)
        .unwrap_or_else(|| panic!("no {name}"));
    std::str::from_utf8(&e.2).unwrap()
}

#[test]
fn chart_yaml_is_re_encoded_as_helm_does() {
    let dir = tempfile::tempdir().unwrap();
    tricky(dir.path());
    let c = load_dir(dir.path(), &Limits::default()).unwrap();
    let view = tar_view(&sluice_helm::package(&c).unwrap());
    assert_eq!(entry(&view, "tricky/Chart.yaml"), TRICKY_EXPECTED);
    assert_eq!(
        entry(&view, "tricky/Chart.lock"),
        "dependencies:\n- name: sub\n  repository: \"\"\n  version: 0.1.0\ndigest: sha256:abc\ngenerated: \"2024-05-06T07:08:09.12Z\"\n"
    );
    assert_eq!(
        entry(&view, "tricky/values.yaml"),
        "# comments and order kept\nb: 1\na: 2\n"
    );
    let names: Vec<&str> = view.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "tricky/Chart.yaml",
            "tricky/Chart.lock",
            "tricky/values.yaml",
            "tricky/values.schema.json"
        ]
    );
    assert_eq!(
        names.last().copied(),
        Some("tricky/charts/sub/templates/s.yaml")
    );
    assert_eq!(sluice_helm::archive_file_name(&c), "tricky-1.0.0.tgz");
}

#[test]
fn v1_charts_keep_requirements_files() {
    let dir = tempfile::tempdir().unwrap();
    v1(dir.path());
    let c = load_dir(dir.path(), &Limits::default()).unwrap();
    let view = tar_view(&sluice_helm::package(&c).unwrap());
    let names: Vec<&str> = view.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "old/Chart.yaml",
            "old/values.yaml",
            "old/templates/t.yaml",
            "old/requirements.lock",
            "old/requirements.yaml",
            "old/charts/dep/Chart.yaml",
            "old/charts/dep/templates/d.yaml",
        ]
    );
    assert_eq!(
        entry(&view, "old/Chart.yaml"),
        "apiVersion: v1\ndescription: a v1 chart\nname: old\nversion: 0.3.0\n"
    );
}

/// The fixtures through the real `helm package`, when it is built.
#[test]
fn fixtures_package_as_helm_package() {
    let Some(helm) = helm_bin("fixtures_package_as_helm_package") else {
        return;
    };
    for (label, make) in [("tricky", tricky as fn(&std::path::Path)), ("v1", v1)] {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        make(src.path());
        let run = Command::new(&helm)
            .arg("package")
            .arg(src.path())
            .arg("-d")
            .arg(out.path())
            .env("HELM_CACHE_HOME", out.path().join(".cache"))
            .env("HELM_CONFIG_HOME", out.path().join(".config"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let c = load_dir(src.path(), &Limits::default()).unwrap();
        let ours = sluice_helm::package(&c).unwrap();
        let theirs = std::fs::read(out.path().join(sluice_helm::archive_file_name(&c))).unwrap();
        let (a, b) = (tar_view(&theirs), tar_view(&ours));
        let an: Vec<&str> = a.iter().map(|e| e.0.as_str()).collect();
        let bn: Vec<&str> = b.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(an, bn, "{label}");
        for ((name, ha, da), (_, hb, db)) in a.iter().zip(b.iter()) {
            assert_eq!(
                String::from_utf8_lossy(da),
                String::from_utf8_lossy(db),
                "{label}: {name}"
            );
            assert_eq!(ha, hb, "{label}: {name}: header");
        }
    }
}
