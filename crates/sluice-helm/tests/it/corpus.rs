//! The real charts of `../shared/conformance/helm`: each loads, and
//! packages to what `helm package` (Helm v4.2.4) writes.

use std::process::Command;

use sluice_helm::chart::{Limits, load_dir};
use sluice_helm::package::tar_entries;

use crate::support::{corpus_charts, helm_bin, tar_view};

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
