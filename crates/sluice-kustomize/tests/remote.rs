//! Remote resources go through the caller's `RemoteLoader`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sluice_kustomize::remote::{RemoteLoader, RepoSpec};
use sluice_kustomize::{Options, Reorder};

struct Fake {
    root: PathBuf,
    seen: Mutex<Vec<RepoSpec>>,
}

impl RemoteLoader for Fake {
    fn fetch(&self, spec: &RepoSpec) -> Result<PathBuf, String> {
        self.seen
            .lock()
            .map_err(|e| e.to_string())?
            .push(spec.clone());
        Ok(self.root.clone())
    }
}

#[test]
fn remote_resources_are_built_from_the_loaders_checkout() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n- https://github.com/example/repo//overlay/base?ref=v1\nnamePrefix: r-\n",
    )
    .unwrap();
    let fake = Arc::new(Fake {
        root: repo,
        seen: Mutex::new(Vec::new()),
    });
    let mut opts = Options::new();
    opts.reorder = Reorder::None;
    opts.remote = Some(fake.clone());
    let out = sluice_kustomize::build(dir.path(), &opts)
        .unwrap()
        .to_yaml();
    assert!(out.contains("name: r-web\n"), "{out}");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].clone_url, "https://github.com/example/repo");
    assert_eq!(seen[0].git_ref.as_deref(), Some("v1"));
}

#[test]
fn remote_resources_without_a_loader_name_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n- github.com/example/repo/deploy?ref=main\n",
    )
    .unwrap();
    let err = sluice_kustomize::build(dir.path(), &Options::new()).unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
    assert!(
        err.to_string().contains("github.com/example/repo/deploy"),
        "{err}"
    );
}
