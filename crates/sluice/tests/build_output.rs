//! `sluice build -o`: a file gets the stream, an existing directory one file
//! per object named as kustomize names them.

mod support;

use support::sluice_offline;

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("kustomization.yaml"),
        "resources:\n- r.yaml\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("r.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: Web\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: v\n",
    )
    .unwrap();
    d
}

fn sluice(args: &[&str]) -> support::Run {
    sluice_offline(args, &[]).expect(0)
}

#[test]
fn output_to_a_file_or_a_directory() {
    let t = tree();
    let dir = t.path().to_str().unwrap();
    let stdout = sluice(&["build", dir]).stdout;
    assert!(stdout.contains("---\n"));

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("all.yaml");
    sluice(&["build", dir, "-o", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);

    let each = out.path().join("each");
    std::fs::create_dir(&each).unwrap();
    sluice(&["build", dir, "-o", each.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&each)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["apps_v1_deployment_web.yaml", "v1_configmap_cm.yaml"]
    );
    let cm = std::fs::read_to_string(each.join("v1_configmap_cm.yaml")).unwrap();
    assert_eq!(
        cm,
        "apiVersion: v1\ndata:\n  k: v\nkind: ConfigMap\nmetadata:\n  name: cm\n"
    );
}

/// `sluice build kustomization --dry-run --kustomization-file`, as
/// `flux build kustomization` does offline: the Kustomization's overlays and
/// inline substitutions, `substituteFrom` skipped, nothing decrypted and
/// encrypted Secret values masked; the user's files untouched.
#[test]
fn build_kustomization_offline_from_a_kustomization_file() {
    let d = tempfile::tempdir().unwrap();
    let apps = d.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    std::fs::write(
        apps.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: ${GREETING}\n  from_cm: ${FROM_CM:=fallback}\n",
    )
    .unwrap();
    std::fs::write(
        apps.join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: ENC[AES256_GCM,data:c2VjcmV0,iv:aXY=,tag:dGFn,type:str]\nsops:\n  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]\n  version: 3.8.1\n",
    )
    .unwrap();
    let ks = d.path().join("ks.yaml");
    std::fs::write(
        &ks,
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: other\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: team\nspec:\n  interval: 10m\n  path: ./apps\n  prune: true\n  targetNamespace: prod\n  sourceRef:\n    kind: GitRepository\n    name: repo\n  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n  postBuild:\n    substitute:\n      GREETING: hello\n    substituteFrom:\n    - kind: ConfigMap\n      name: vars\n",
    )
    .unwrap();
    let (path, file) = (apps.to_str().unwrap(), ks.to_str().unwrap());
    let out = sluice_offline(
        &[
            "build",
            "kustomization",
            "apps",
            "--path",
            path,
            "--kustomization-file",
            file,
            "--dry-run",
            "-n",
            "team",
        ],
        &[],
    )
    .expect(0);
    let s = &out.stdout;
    assert!(s.contains("greeting: hello\n"), "{s}");
    assert!(s.contains("from_cm: fallback\n"), "{s}");
    assert!(s.contains("namespace: prod\n"), "{s}");
    assert!(
        s.contains("kustomize.toolkit.fluxcd.io/name: apps\n"),
        "{s}"
    );
    assert!(
        s.contains("kustomize.toolkit.fluxcd.io/namespace: team\n"),
        "{s}"
    );
    assert!(
        s.contains("password: '**SOPS**'") || s.contains("password: \"**SOPS**\""),
        "{s}"
    );
    assert!(!s.contains("ENC[") && !s.contains("sops:"), "{s}");
    // The render worked on a copy.
    assert!(!apps.join("kustomization.yaml").exists());

    // As in Flux: --dry-run needs a Kustomization file; a missing name is named.
    let out = sluice_offline(
        &[
            "build",
            "kustomization",
            "apps",
            "--path",
            path,
            "--dry-run",
        ],
        &[],
    )
    .expect(1);
    assert!(
        out.stderr.contains("--kustomization-file"),
        "{}",
        out.stderr
    );
    let out = sluice_offline(
        &[
            "build",
            "kustomization",
            "nope",
            "--path",
            path,
            "--kustomization-file",
            file,
            "--dry-run",
            "-n",
            "team",
        ],
        &[],
    )
    .expect(1);
    assert!(out.stderr.contains("'nope'"), "{}", out.stderr);
}
