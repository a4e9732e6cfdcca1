//! The real charts of `../shared/conformance/helm`: each loads, and
//! packages to what `helm package` (Helm v4.2.4) writes.

use std::process::Command;

use sluice_helm::chart::{Limits, load_dir};
use sluice_helm::package::tar_entries;

use crate::support::{assert_same_text, corpus_charts, helm_bin, install_record, tar_view};

#[test]
fn every_corpus_chart_loads() {
    let Some(dir) = corpus_charts("every_corpus_chart_loads") else {
        return;
    };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let chart = load_dir(&path, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!chart.templates.is_empty(), "{}", path.display());
        assert!(chart.values().is_ok(), "{}", path.display());
        n += 1;
    }
    assert!(n >= 8, "{n} charts");
}

/// `helm package` of every corpus chart against `package::package`: the
/// same entries in the same order, and the same tar stream once the
/// modification times (and so the checksums) are set aside.
#[test]
fn packages_as_helm_package() {
    let Some(dir) = corpus_charts("packages_as_helm_package") else {
        return;
    };
    let Some(helm) = helm_bin("packages_as_helm_package") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let label = path.file_name().unwrap().to_string_lossy().into_owned();
        let run = Command::new(&helm)
            .arg("package")
            .arg(&path)
            .arg("-d")
            .arg(out.path())
            .env("HELM_CACHE_HOME", out.path().join(".cache"))
            .env("HELM_CONFIG_HOME", out.path().join(".config"))
            .env("HELM_DATA_HOME", out.path().join(".data"))
            .output()
            .unwrap();
        let ours = load_dir(&path, &Limits::default()).and_then(|c| {
            let bytes = sluice_helm::package(&c)?;
            Ok((sluice_helm::archive_file_name(&c), bytes))
        });
        if !run.status.success() {
            // Helm refuses a chart whose dependencies are not all under
            // charts/ (`helm package` checks them; packaging itself does
            // not, and Flux's build reports them as dependency errors).
            let stderr = String::from_utf8_lossy(&run.stderr);
            eprintln!("{label}: helm package failed: {}", stderr.trim());
            assert!(
                stderr.contains("missing in charts/ directory"),
                "{label}: {stderr}"
            );
            continue;
        }
        let (file, bytes) = ours.unwrap_or_else(|e| panic!("{label}: {e}"));
        let theirs = std::fs::read(out.path().join(&file))
            .unwrap_or_else(|e| panic!("{label}: helm wrote no {file}: {e}"));
        // The gzip header: flags, zero time, Helm's extra field and comment
        // (the deflate stream itself is another compressor's).
        assert_eq!(theirs[..61], bytes[..61], "{label}: gzip header");
        let a = tar_view(&theirs);
        let b = tar_view(&bytes);
        let an: Vec<&str> = a.iter().map(|e| e.0.as_str()).collect();
        let bn: Vec<&str> = b.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(an, bn, "{label}: entry names and order");
        for ((name, ha, da), (_, hb, db)) in a.iter().zip(b.iter()) {
            assert!(
                da == db,
                "{label}: {name}: contents differ:\n--- helm\n{}\n--- sluice\n{}",
                String::from_utf8_lossy(da),
                String::from_utf8_lossy(db)
            );
            assert_eq!(ha, hb, "{label}: {name}: header differs");
        }
        // The same through tar_entries (what the comparison in the README
        // counts).
        assert_eq!(
            tar_entries(&load_dir(&path, &Limits::default()).unwrap())
                .unwrap()
                .len(),
            a.len()
        );
        eprintln!("{label}: {} entries identical to helm package", a.len());
        compared += 1;
    }
    assert!(compared >= 7, "compared {compared} charts");
}

/// Every corpus chart, packed as the HelmRelease controller keeps it
/// (`Chart::pack`), renders with its defaults (CRDs included) and makes its
/// release record byte for byte as the chart it was packed from, or fails
/// with the same error. Charts whose templates draw random values
/// (podinfo's test Pod names) are compared on their CRDs and the record's
/// chart (manifest and hooks set aside).
#[test]
fn packed_corpus_charts_render_as_loaded() {
    let Some(dir) = corpus_charts("packed_corpus_charts_render_as_loaded") else {
        return;
    };
    let opts = sluice_helm::render::Options {
        release_name: "rel".into(),
        namespace: "default".into(),
        kube_version: Some("1.36.3".into()),
        ..Default::default()
    };
    let print = sluice_helm::render::PrintOptions {
        include_crds: true,
        ..Default::default()
    };
    // (whole output, CRDs and the record without manifest and hooks)
    let render = |c: &sluice_helm::chart::Chart| -> Result<(String, String), String> {
        let r = sluice_helm::render::render(c, &Default::default(), &opts)
            .map_err(|e| e.to_string())?;
        let mut record = install_record(c, &r, "default");
        let whole = r.template_output(&print).map_err(|e| e.to_string())?
            + &record.to_json().map_err(|e| e.to_string())?;
        record.manifest.clear();
        record.hooks.clear();
        let mut fixed = record.to_json().map_err(|e| e.to_string())?;
        for (name, data) in &r.crds {
            fixed.push_str(name);
            fixed.push_str(&String::from_utf8_lossy(&data.bytes()));
        }
        Ok((whole, fixed))
    };
    let (mut whole, mut fixed) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let chart = load_dir(&path, &Limits::default()).unwrap();
        let mut packed = chart.clone();
        packed.pack();
        assert!(
            packed.held_bytes() < chart.held_bytes(),
            "{}",
            path.display()
        );
        let (a, again, b) = (render(&chart), render(&chart), render(&packed));
        let (a, again, b) = match (a, again, b) {
            (Err(a), _, b) => {
                eprintln!("{}: not rendered: {a}", path.display());
                assert_eq!(b, Err(a), "{}", path.display());
                continue;
            }
            (_, _, Err(b)) => panic!("{}: packed fails: {b}", path.display()),
            (Ok(a), Ok(again), Ok(b)) => (a, again, b),
            (Ok(_), Err(e), _) => panic!("{}: {e}", path.display()),
        };
        let compared = if a.0 == again.0 {
            whole += 1;
            (&a.0, &b.0)
        } else {
            fixed += 1;
            (&a.1, &b.1)
        };
        let what = format!("{}: outputs", path.display());
        assert_same_text(&what, ("loaded", "packed"), compared.0, compared.1);
    }
    eprintln!("packed corpus charts: {whole} compared whole, {fixed} on CRDs and record");
    assert!(
        whole + fixed >= 5 && whole >= 3,
        "{whole} whole, {fixed} in part"
    );
}
