//! `sluice helm template` as typed, against what the real Helm v4.2.4
//! printed and wrote for the same flags (goldens in `tests/golden/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn features() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice-helm/tests/it/render/features")
}

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// helm template rel features --output-dir out --include-crds --release-name -n apps
// (run in an empty directory; stdout saved as `stdout`)
#[test]
fn output_dir_is_written_as_helm_writes_it() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["helm", "template", "rel"])
        .arg(features())
        .args([
            "--output-dir",
            "out",
            "--include-crds",
            "--release-name",
            "-n",
            "apps",
        ])
        .current_dir(work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(work.path().join("stdout"), &out.stdout).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/helm-output-dir");
    assert_eq!(tree(work.path()), tree(&golden));
}

/// `sluice helm template x CHART` of a chart made of `chart_yaml` and one
/// template.
fn template_of(chart_yaml: &str, template: (&str, &str)) -> std::process::Output {
    let chart = tempfile::tempdir().unwrap();
    std::fs::create_dir(chart.path().join("templates")).unwrap();
    std::fs::write(chart.path().join("Chart.yaml"), chart_yaml).unwrap();
    std::fs::write(chart.path().join("templates").join(template.0), template.1).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["helm", "template", "x"])
        .arg(chart.path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A chart marked `deprecated: true` renders, with Helm's warning line on
/// stderr (`level=WARN msg="this chart is deprecated"`).
#[test]
fn a_deprecated_chart_is_rendered_with_helms_warning() {
    let out = template_of(
        "apiVersion: v2\nname: old\nversion: 1.0.0\ndeprecated: true\n",
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n",
        ),
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "level=WARN msg=\"this chart is deprecated\"\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: old"));
}

/// A library chart is refused as `helm template` and `helm install` refuse it
/// (Helm's command line checks the type; a HelmRelease's SDK does not), in
/// Helm's words, `Error:` included.
#[test]
fn a_library_chart_is_refused_as_helm_refuses_it() {
    let out = template_of(
        "apiVersion: v2\nname: common\nversion: 1.0.0\ntype: library\n",
        (
            "_helpers.tpl",
            "{{- define \"common.name\" -}}common{{- end -}}\n",
        ),
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: library charts are not installable\n"
    );
}

/// A chart whose dependency is a symlink to a chart elsewhere (k8s-at-home's
/// library test chart) renders, as Helm follows a local chart's symlinks.
#[test]
fn a_local_charts_symlinks_are_followed_as_helm_follows_them() {
    let repo = tempfile::tempdir().unwrap();
    let lib = repo.path().join("charts/common");
    std::fs::create_dir_all(lib.join("templates")).unwrap();
    std::fs::write(
        lib.join("Chart.yaml"),
        "apiVersion: v2\nname: common\nversion: 1.0.0\ntype: library\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("templates/_names.tpl"),
        "{{- define \"common.name\" -}}from-the-library{{- end -}}\n",
    )
    .unwrap();
    let app = repo.path().join("helper-charts/app");
    std::fs::create_dir_all(app.join("templates")).unwrap();
    std::fs::create_dir_all(app.join("charts")).unwrap();
    std::os::unix::fs::symlink("../../../charts/common", app.join("charts/common")).unwrap();
    std::fs::write(
        app.join("Chart.yaml"),
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: common\n  version: 1.0.0\n  repository: file://../../charts/common\n",
    )
    .unwrap();
    std::fs::write(
        app.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"common.name\" . }}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["helm", "template", "x"])
        .arg(&app)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: from-the-library"));
}

/// A chart that is not on disk is reported as Helm's `LocateChart` reports
/// it (helm v4.2.4's messages, checked by hand): a path is not found, a
/// name would be a repository's chart.
#[test]
fn a_chart_not_on_disk_is_reported_as_helm_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    for (chart, want) in [
        ("./nope", "Error: path \"./nope\" not found\n"),
        (
            "/nowhere/chart",
            "Error: path \"/nowhere/chart\" not found\n",
        ),
        ("bitnami/redis", "Error: repo bitnami not found\n"),
        (
            "redis",
            "Error: non-absolute URLs should be in form of repo_name/path_to_chart, got: redis\n",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(tmp.path())
            .args(["helm", "template", "rel", chart])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{chart}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want, "{chart}");
    }
}

/// A chart that cannot be loaded is reported with Helm's message (helm
/// v4.2.4's, checked by hand), naming the file by its absolute path: a
/// directory without `Chart.yaml`, and a file that is not gzip (the content
/// type as Go's `http.DetectContentType` sniffs it, or a YAML file by its
/// extension, the common slip of giving a values file as the chart).
#[test]
fn a_chart_that_cannot_be_loaded_is_reported_as_helm_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let d = dir.display();
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("values.yaml"), "a: 1\n").unwrap();
    std::fs::write(dir.join("short.tgz"), "not gzip").unwrap();
    std::fs::write(dir.join("page.tgz"), "<html><body>x</body></html>").unwrap();
    std::fs::write(dir.join("long.txt"), "text line\n".repeat(60)).unwrap();
    for (chart, want) in [
        (
            "empty",
            format!(
                "Error: unable to detect chart at {d}/empty/Chart.yaml: open {d}/empty/Chart.yaml: no such file or directory\n"
            ),
        ),
        (
            "./values.yaml",
            format!(
                "Error: file '{d}/values.yaml' seems to be a YAML file, but expected a gzipped archive\n"
            ),
        ),
        (
            "short.tgz",
            format!(
                "Error: file '{d}/short.tgz' does not appear to be a gzipped archive; got 'application/octet-stream'\n"
            ),
        ),
        (
            "page.tgz",
            format!(
                "Error: file '{d}/page.tgz' does not appear to be a gzipped archive; got 'text/html; charset=utf-8'\n"
            ),
        ),
        (
            "long.txt",
            format!(
                "Error: file '{d}/long.txt' does not appear to be a gzipped archive; got 'text/plain; charset=utf-8'\n"
            ),
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(&dir)
            .args(["helm", "template", "rel", chart])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{chart}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want, "{chart}");
    }
    // A chart's own error is Helm's too, with nothing in front of it.
    std::fs::create_dir(dir.join("bad")).unwrap();
    std::fs::write(
        dir.join("bad/Chart.yaml"),
        "apiVersion: v2\nversion: 1.0.0\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(&dir)
        .args(["helm", "template", "rel", "bad"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: validation: chart.metadata.name is required\n"
    );
}
