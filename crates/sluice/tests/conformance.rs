//! The conformance corpora of `../shared/conformance` against this very
//! `sluice` binary, each through its script, which skips cleanly (saying
//! so) when the corpus is absent:
//!
//! * kustomize (from kustomize's own test suite) through
//!   `scripts/conformance-kustomize`, which ratchets on
//!   `tests/conformance/kustomize-known-failures.txt`;
//! * Helm (real charts and what `helm template` v4.2.4 prints for them)
//!   through `scripts/conformance-helm`, which requires every runnable case
//!   to pass byte for byte and names the cases of a chart whose vendored
//!   dependencies it cannot restore.

use std::path::Path;
use std::process::Command;

/// Runs `scripts/NAME` with this binary; prints its lines that start with
/// one of `prefixes` (visible with --nocapture and in failures).
fn run_script(name: &str, prefixes: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts").join(name);
    let output = Command::new(&script)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stdout
        .lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
    {
        println!("{line}");
    }
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn kustomize_conformance_corpus() {
    run_script("conformance-kustomize", &["kustomize conformance:"]);
}

#[test]
fn helm_conformance_corpus() {
    run_script("conformance-helm", &["helm conformance:", "helm corpus:"]);
}
