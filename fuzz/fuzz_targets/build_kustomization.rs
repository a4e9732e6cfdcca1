//! A build over an arbitrary kustomization, resource file and patch file
//! returns a result or an error, never a panic. This drives the loader
//! (kustomization.yaml fields, resource and patch paths), the generators and
//! every transformer, including strategic-merge and JSON 6902 patches.
//!
//! Input: `kustomization.yaml`, then optionally `r.yaml` and `p.yaml`, the
//! parts separated by a `---8<---` line.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SEP: &str = "\n---8<---\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, SEP);
    let kust = parts.next().unwrap_or("");
    let res = parts.next().unwrap_or("");
    let patch = parts.next().unwrap_or("");
    let Ok(dir) = tempfile::tempdir() else { return };
    for (name, body) in [
        ("kustomization.yaml", kust),
        ("r.yaml", res),
        ("p.yaml", patch),
    ] {
        if std::fs::write(dir.path().join(name), body).is_err() {
            return;
        }
    }
    let _ = sluice_kustomize::build(dir.path(), &sluice_kustomize::Options::new());
});
