//! `sluice push artifact` / `sluice pull artifact` against a real registry
//! (Debian's `docker-registry`, started by the test support; skipped when
//! it is not installed).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use sluice_testsupport::oci_registry::{OciRegistry, RegistryConfig};

fn sluice(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        // No Docker config of the machine's user.
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("running sluice")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn push_and_pull_artifact_round_trip() {
    let Some(reg) = OciRegistry::start(RegistryConfig::basic("flux", "cli-s3cret")) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("apps")).unwrap();
    std::fs::write(src.path().join("apps/cm.yaml"), "kind: ConfigMap\n").unwrap();
    std::fs::write(
        src.path().join("kustomization.yaml"),
        "resources: [apps/cm.yaml]\n",
    )
    .unwrap();
    std::fs::write(src.path().join("logo.png"), "not pushed").unwrap();
    let url = format!("{}:v1.0.0", reg.url("org/config"));
    let path = src.path().display().to_string();
    let revision = format!("main@sha1:{}", "b".repeat(40));

    let out = sluice(
        home.path(),
        &[
            "push",
            "artifact",
            &url,
            "--path",
            &path,
            "--source",
            "https://github.com/org/config",
            "--revision",
            &revision,
            "--creds",
            "flux:cli-s3cret",
            "--insecure-registry",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("► logging in to registry with credentials"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "► pushing artifact to {}/org/config:v1.0.0",
            reg.host()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "✔ artifact successfully pushed to {}/org/config@sha256:",
            reg.host()
        )),
        "{stderr}"
    );

    // -o json: what `flux push artifact -o json` prints.
    let out = sluice(
        home.path(),
        &[
            "push",
            "artifact",
            &format!("{}:v1.0.1", reg.url("org/config")),
            "-f",
            &path,
            "--source",
            "s",
            "--revision",
            "r",
            "--creds",
            "flux:cli-s3cret",
            "--insecure-registry",
            "--reproducible",
            "-o",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["repository"], format!("{}/org/config", reg.host()));
    assert_eq!(info["tag"], "v1.0.1");
    let digest = info["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(
        info["url"],
        format!("oci://{}/org/config@{digest}", reg.host())
    );

    let dest = tempfile::tempdir().unwrap();
    let out = sluice(
        home.path(),
        &[
            "pull",
            "artifact",
            &url,
            "--output",
            &dest.path().display().to_string(),
            "--creds",
            "flux:cli-s3cret",
            "--insecure-registry",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("✔ source https://github.com/org/config"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("✔ revision {revision}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("✔ digest {}/org/config@sha256:", reg.host())),
        "{stderr}"
    );
    assert!(
        stderr.contains("✔ artifact content extracted to"),
        "{stderr}"
    );
    let mut want = files(src.path());
    want.remove("logo.png");
    assert_eq!(files(dest.path()), want);
}

#[test]
fn wrong_credentials_and_bad_flags_are_one_line_errors() {
    let Some(reg) = OciRegistry::start(RegistryConfig::basic("flux", "right-pass")) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.yaml"), "a: 1\n").unwrap();
    let url = format!("{}:v1", reg.url("app"));
    let path = src.path().display().to_string();
    let out = sluice(
        home.path(),
        &[
            "push",
            "artifact",
            &url,
            "--path",
            &path,
            "--source",
            "s",
            "--revision",
            "r",
            "--creds",
            "flux:wrong-pass-123",
            "--insecure-registry",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("✗ pushing artifact failed:"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("wrong-pass-123"), "{stderr}");

    let out = sluice(
        home.path(),
        &["push", "artifact", &url, "--path", &path, "--revision", "r"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--source is required"));
    let out = sluice(home.path(), &["pull", "artifact", &url]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("output path cannot be empty"));
    let out = sluice(
        home.path(),
        &["pull", "artifact", "https://x/y", "--output", &path],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must start with 'oci://'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Credentials from ~/.docker/config.json when --creds is absent.
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    std::fs::write(
        home.path().join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"username":"flux","password":"right-pass"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let out = sluice(
        home.path(),
        &[
            "push",
            "artifact",
            &url,
            "--path",
            &path,
            "--source",
            "s",
            "--revision",
            "r",
            "--insecure-registry",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
