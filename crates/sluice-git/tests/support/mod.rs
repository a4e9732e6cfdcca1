//! Test helpers: Git repositories made with the `git` program; the
//! smart-HTTP Git server lives in `sluice_testsupport::git_server`.

#![allow(dead_code)]

#[allow(unused_imports)] // not every test binary serves over HTTP
pub use sluice_testsupport::git_server::{GitServer, Repo, git};

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
