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
