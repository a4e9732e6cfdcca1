//! Test helpers: Git repositories made with the `git` program; the
//! smart-HTTP Git server lives in `sluice_testsupport::git_server`.

#![allow(dead_code)]

use std::path::PathBuf;

#[allow(unused_imports)] // not every test binary serves over HTTP
pub use sluice_testsupport::git_server::{GitServer, git};

/// A working clone plus the bare repository it pushes to.
pub struct Repo {
    pub _dir: tempfile::TempDir,
    /// The bare repository (what servers serve).
    pub bare: PathBuf,
    /// The working tree.
    pub work: PathBuf,
}

impl Repo {
    /// `root/<name>.git` bare plus a work tree on branch `main`.
    pub fn new(name: &str) -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("srv").join(format!("{name}.git"));
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "--bare", "-q", "-b", "main"]);
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Repo {
            _dir: dir,
            bare,
            work,
        }
    }

    /// Directory served by the HTTP server (parent of the bare repo).
    pub fn served_root(&self) -> PathBuf {
        self.bare.parent().unwrap().to_path_buf()
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Commits everything and returns the commit id.
    pub fn commit(&self, msg: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn push(&self, refspec: &str) {
        git(&self.work, &["push", "-q", "--force", "origin", refspec]);
    }

    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// File names in a tar.gz.
pub fn tar_listing(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let mut names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Reads one file out of a tar.gz.
pub fn tar_file(data: &[u8], path: &str) -> Option<String> {
    use std::io::Read;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(data));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == path {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            return Some(s);
        }
    }
    None
}
