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

/// Serves files from a map and counts Git fetches.
struct Files {
    files: Vec<(String, String)>,
    git_root: PathBuf,
    git_fetches: Mutex<Vec<String>>,
}

impl RemoteLoader for Files {
    fn fetch(&self, spec: &RepoSpec) -> Result<PathBuf, String> {
        self.git_fetches
            .lock()
            .map_err(|e| e.to_string())?
            .push(spec.clone_url.clone());
        Ok(self.git_root.clone())
    }

    fn fetch_file(&self, url: &str) -> Result<Vec<u8>, String> {
        self.files
            .iter()
            .find(|(u, _)| u == url)
            .map(|(_, b)| b.clone().into_bytes())
            .ok_or_else(|| format!("GET {url}: HTTP status 404 Not Found"))
    }
}

#[test]
fn http_urls_are_read_as_files_first_then_as_repositories() {
    let files = Arc::new(Files {
        files: vec![(
            "https://example.com/manifests/cm.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-http\n".into(),
        )],
        git_root: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"),
        git_fetches: Mutex::new(Vec::new()),
    });
    let build = |resource: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            format!("resources:\n- {resource}\n"),
        )
        .unwrap();
        let mut opts = Options::new();
        opts.reorder = Reorder::None;
        opts.remote = Some(files.clone());
        sluice_kustomize::build(dir.path(), &opts)
            .map(|o| o.to_yaml())
            .map_err(|e| e.to_string())
    };
    let out = build("https://example.com/manifests/cm.yaml").unwrap();
    assert!(out.contains("name: from-http\n"), "{out}");
    assert!(files.git_fetches.lock().unwrap().is_empty());

    // Not a file: kustomize then tries it as a repository.
    let out = build("https://example.com/org/repo/overlay/base").unwrap();
    assert!(out.contains("name: web\n"), "{out}");
    assert_eq!(
        *files.git_fetches.lock().unwrap(),
        vec!["https://example.com/org/repo".to_string()]
    );
    // Git markers skip the file attempt.
    build("https://example.com/org/repo//overlay/base?ref=v1").unwrap();
    assert_eq!(files.git_fetches.lock().unwrap().len(), 2);

    // Neither a file nor a repository URL.
    let err = build("https://example.com/missing.yaml").unwrap_err();
    assert!(err.contains("404") && err.contains("missing.yaml"), "{err}");
    // A path that climbs out of the repository.
    let err = build("https://example.com/org/repo//../x?ref=v1").unwrap_err();
    assert!(err.contains("url path exits repo"), "{err}");
}
