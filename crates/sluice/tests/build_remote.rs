//! `sluice build` with a remote base: the binary wires sluice-source's
//! loader into the engine, and `SLUICE_REMOTE_CACHE` chooses the cache.
//! Offline: the "remote" is a local repository made with the `git` program.

mod support;

use sluice_testsupport::git_server::git;

#[test]
fn build_fetches_remote_bases_into_the_configured_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("app.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::create_dir_all(work.join("deploy")).unwrap();
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("deploy/kustomization.yaml"),
        "resources:\n- cm.yaml\n",
    )
    .unwrap();
    std::fs::write(
        work.join("deploy/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remote\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "base"]);
    git(&work, &["tag", "v1"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main", "v1"]);

    let overlay = tmp.path().join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "resources:\n- file://{}//deploy?ref=v1\nnamePrefix: x-\n",
            bare.display()
        ),
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let stdout = support::sluice_offline(
        &["build", overlay.to_str().unwrap()],
        &[("SLUICE_REMOTE_CACHE", cache.to_str().unwrap())],
    )
    .expect(0)
    .stdout;
    assert!(stdout.contains("name: x-remote\n"), "{stdout}");
    // One repository directory holding the checkout.
    let repos: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(repos.len(), 1, "{repos:?}");
}
