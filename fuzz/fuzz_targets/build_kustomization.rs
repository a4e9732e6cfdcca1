//! A build over an arbitrary kustomization and resource file returns a
//! result or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (kust, res) = text.split_once("\n---8<---\n").unwrap_or((text, ""));
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join("kustomization.yaml"), kust).is_err()
        || std::fs::write(dir.path().join("r.yaml"), res).is_err()
    {
        return;
    }
    let _ = sluice_kustomize::build(dir.path(), &sluice_kustomize::Options::new());
});
