//! Byte-exact rendering tests: each directory under tests/golden/ that has
//! an `expected.yaml` is built (from its `build` subdirectory if present,
//! else itself, else `prod`) and compared with it. Set UPDATE_GOLDEN=1 to
//! rewrite the expectations.

use std::path::{Path, PathBuf};

use sluice_kustomize::{Options, Reorder};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn build_dir(case: &Path) -> PathBuf {
    for sub in ["prod", "build"] {
        if case.join(sub).is_dir() {
            return case.join(sub);
        }
    }
    case.to_path_buf()
}

#[test]
fn golden_outputs_match_byte_for_byte() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for case in cases() {
        let expected_path = case.join("expected.yaml");
        let mut opts = Options::new();
        opts.reorder = Reorder::Legacy;
        let out = sluice_kustomize::build(&build_dir(&case), &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
            .to_yaml();
        if update {
            std::fs::write(&expected_path, &out).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        assert_eq!(out, expected, "golden mismatch for {}", case.display());
        checked += 1;
    }
    assert!(update || checked >= 2, "no golden cases found");
}
