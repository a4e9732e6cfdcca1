//! The kustomize conformance corpus (`../shared/conformance/kustomize`, from
//! kustomize's own test suite) against this very `sluice build` binary,
//! through `scripts/conformance-kustomize`, which ratchets on
//! `tests/conformance/kustomize-known-failures.txt` and skips cleanly when the
//! corpus is absent.

use std::path::Path;
use std::process::Command;

#[test]
fn kustomize_conformance_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/conformance-kustomize");
    let output = Command::new(&script)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary line, visible with --nocapture and in failures.
    if let Some(summary) = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("kustomize conformance:"))
    {
        println!("{summary}");
    }
    assert!(
        output.status.success(),
        "conformance ratchet failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
