//! The Helm rendering corpus (`../shared/conformance/helm`: real charts and
//! what `helm template` v4.2.4 prints for them) against this very `sluice helm
//! template` binary, through `scripts/conformance-helm`, which requires every
//! runnable case to pass byte for byte and skips cleanly (saying so) when the
//! corpus, or a chart's vendored dependencies, are absent.

use std::path::Path;
use std::process::Command;

#[test]
fn helm_conformance_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/conformance-helm");
    let output = Command::new(&script)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("helm conformance:") || l.starts_with("helm corpus:"))
    {
        println!("{line}");
    }
    assert!(
        output.status.success(),
        "helm conformance failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
