//! Golden tests of `--help`: the top level and every subcommand, byte for
//! byte. Regenerate after an intended change with
//! `SLUICE_UPDATE_GOLDEN=1 cargo test -p sluice --test help`.

use std::path::PathBuf;
use std::process::Command;

/// Every command path whose help is pinned.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["controller"],
    &["version"],
    &["build"],
    &["build", "kustomization"],
    &["build", "cluster"],
    &["diff", "cluster"],
    &["get"],
    &["get", "sources"],
    &["get", "sources", "git"],
    &["get", "sources", "oci"],
    &["get", "sources", "bucket"],
    &["get", "sources", "helm"],
    &["get", "sources", "chart"],
    &["get", "sources", "all"],
    &["get", "kustomizations"],
    &["get", "helmreleases"],
    &["get", "all"],
    &["get", "alerts"],
    &["get", "alert-providers"],
    &["get", "receivers"],
    &["create"],
    &["delete"],
    &["delete", "kustomization"],
    &["delete", "source", "git"],
    &["stats"],
    &["envsubst"],
    &["create", "alert"],
    &["create", "alert-provider"],
    &["create", "receiver"],
    &["create", "source", "git"],
    &["create", "kustomization"],
    &["create", "secret", "git"],
    &["create", "secret", "tls"],
    &["create", "secret", "oci"],
    &["create", "secret", "helm"],
    &["create", "secret", "age"],
    &["create", "source", "oci"],
    &["create", "source", "bucket"],
    &["create", "source", "helm"],
    &["create", "helmrelease"],
    &["reconcile"],
    &["reconcile", "source"],
    &["reconcile", "source", "git"],
    &["reconcile", "source", "oci"],
    &["reconcile", "source", "bucket"],
    &["reconcile", "source", "helm"],
    &["reconcile", "source", "chart"],
    &["reconcile", "kustomization"],
    &["reconcile", "helmrelease"],
    &["suspend"],
    &["suspend", "kustomization"],
    &["suspend", "helmrelease"],
    &["suspend", "source"],
    &["suspend", "source", "oci"],
    &["suspend", "alert"],
    &["resume"],
    &["resume", "kustomization"],
    &["resume", "helmrelease"],
    &["resume", "source"],
    &["resume", "source", "oci"],
    &["events"],
    &["export"],
    &["export", "source"],
    &["export", "source", "git"],
    &["export", "source", "oci"],
    &["export", "source", "bucket"],
    &["export", "source", "helm"],
    &["export", "source", "chart"],
    &["export", "kustomization"],
    &["export", "helmrelease"],
    &["why"],
    &["install"],
    &["uninstall"],
    &["check"],
    &["tree"],
    &["tree", "kustomization"],
    &["diff"],
    &["diff", "kustomization"],
    &["bootstrap"],
    &["bootstrap", "git"],
    &["bootstrap", "gitea"],
    &["bootstrap", "github"],
    &["bootstrap", "gitlab"],
    &["logs"],
    &["push"],
    &["push", "artifact"],
    &["pull"],
    &["pull", "artifact"],
    &["completion"],
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(path)
        .arg("--help")
        .env_clear()
        .env("COLUMNS", "100")
        .output()
        .expect("running sluice");
    assert!(out.status.success(), "sluice {path:?} --help failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn help_texts_match_the_golden_files() {
    let update = std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some();
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut mismatched = Vec::new();
    for path in COMMANDS {
        let name = if path.is_empty() {
            "sluice.txt".to_string()
        } else {
            format!("sluice-{}.txt", path.join("-"))
        };
        let file = dir.join(&name);
        let actual = help(path);
        if update {
            std::fs::write(&file, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_default();
        if expected != actual {
            mismatched.push(format!(
                "{name}:\n--- expected\n{expected}\n+++ actual\n{actual}"
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "help text changed (regenerate with SLUICE_UPDATE_GOLDEN=1 if intended):\n{}",
        mismatched.join("\n")
    );
}
