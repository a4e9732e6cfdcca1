//! The gix transport layer without Kubernetes: ref listing, shallow fetch,
//! commit fetch, auth classification, and archiving.

mod support;

use std::time::Duration;

use sluice_git::fetch::{self as git, Auth, FetchTarget, GitErrorKind};
use support::*;

const T: Duration = Duration::from_secs(30);

fn three_commits() -> (Repo, Vec<String>) {
    let repo = Repo::new("app");
    let mut commits = Vec::new();
    for i in 0..3 {
        repo.write("file.txt", &format!("{i}\n"));
        commits.push(repo.commit(&format!("commit {i}")));
    }
    git(
        &repo.work,
        &["tag", "-a", "v1.0.0", "-m", "annotated", &commits[1]],
    );
    git(&repo.work, &["push", "-q", "origin", "main", "--tags"]);
    (repo, commits)
}

async fn in_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn file_url_listing_fetch_and_archive() {
    let (repo, commits) = three_commits();
    let work = tempfile::tempdir().unwrap();
    let url = repo.file_url();
    let w = work.path().to_path_buf();
    let refs = in_blocking(move || {
        git::ls_refs(
            &w,
            &url,
            &Auth::default(),
            &["refs/heads/main".into(), "refs/tags/".into()],
            T,
        )
    })
    .await
    .unwrap();
    let main = refs.iter().find(|r| r.name == "refs/heads/main").unwrap();
    assert_eq!(main.commit, commits[2]);
    let tag = refs.iter().find(|r| r.name == "refs/tags/v1.0.0").unwrap();
    assert_eq!(tag.commit, commits[1], "annotated tags are peeled");

    let url = repo.file_url();
    let w = work.path().to_path_buf();
    let data = in_blocking(move || {
        let f = git::fetch(
            &w,
            &url,
            &Auth::default(),
            &FetchTarget::Ref("refs/tags/v1.0.0".into()),
            T,
        )
        .unwrap();
        let mut out = Vec::new();
        git::archive_commit(&f.repo, f.commit, &[], None, &[], &mut out).unwrap();
        (f.commit.to_string(), f.shallow, out)
    })
    .await;
    assert_eq!(data.0, commits[1]);
    assert!(data.1, "fetched shallow");
    assert_eq!(tar_file(&data.2, "file.txt").as_deref(), Some("1\n"));
}

#[tokio::test]
async fn commits_are_fetched_by_id_over_http() {
    let (repo, commits) = three_commits();
    let server = GitServer::start(&repo.served_root(), None).await;
    let work = tempfile::tempdir().unwrap();
    for (sha, branch) in [
        (commits[0].clone(), None),
        (commits[1].clone(), Some("main".to_string())),
    ] {
        let url = server.url("app");
        let w = work.path().to_path_buf();
        let target = FetchTarget::Commit {
            sha: sha.clone(),
            branch,
        };
        let (got, content) = in_blocking(move || {
            let f = git::fetch(&w, &url, &Auth::default(), &target, T).unwrap();
            let mut out = Vec::new();
            git::archive_commit(&f.repo, f.commit, &[], None, &[], &mut out).unwrap();
            (f.commit.to_string(), out)
        })
        .await;
        assert_eq!(got, sha);
        assert!(tar_file(&content, "file.txt").is_some());
    }
    // An unknown commit is an operation failure.
    let url = server.url("app");
    let w = work.path().to_path_buf();
    let target = FetchTarget::Commit {
        sha: "0123456789012345678901234567890123456789".into(),
        branch: None,
    };
    let err = in_blocking(move || git::fetch(&w, &url, &Auth::default(), &target, T).err())
        .await
        .unwrap();
    assert_eq!(err.kind, GitErrorKind::Operation, "{}", err.message);
}

#[tokio::test]
async fn http_basic_auth_is_classified_and_never_leaks() {
    let (repo, commits) = three_commits();
    let server = GitServer::start(&repo.served_root(), Some(("flux", "right-pass"))).await;
    let work = tempfile::tempdir().unwrap();
    let list = |auth: Auth| {
        let url = server.url("app");
        let w = work.path().to_path_buf();
        in_blocking(move || git::ls_refs(&w, &url, &auth, &["refs/heads/main".into()], T))
    };
    let wrong = Auth {
        basic: Some(("flux".into(), "wrong-pass-123".into())),
        ..Auth::default()
    };
    let err = list(wrong).await.unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);
    assert!(!err.message.contains("wrong-pass-123"), "{}", err.message);

    let err = list(Auth::default()).await.unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);

    let right = Auth {
        basic: Some(("flux".into(), "right-pass".into())),
        ..Auth::default()
    };
    let refs = list(right.clone()).await.unwrap();
    assert_eq!(refs[0].commit, commits[2]);

    let url = server.url("app");
    let w = work.path().to_path_buf();
    let commit = in_blocking(move || {
        git::fetch(
            &w,
            &url,
            &right,
            &FetchTarget::Ref("refs/heads/main".into()),
            T,
        )
        .map(|f| f.commit.to_string())
    })
    .await
    .unwrap();
    assert_eq!(commit, commits[2]);
}

#[tokio::test]
async fn unreachable_remote_is_an_operation_failure() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let err = in_blocking(move || {
        git::ls_refs(
            &w,
            "http://127.0.0.1:9/nothing.git",
            &Auth::default(),
            &["refs/heads/main".into()],
            T,
        )
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Operation, "{}", err.message);
    assert!(err.message.contains("127.0.0.1:9"), "{}", err.message);
}

#[tokio::test]
async fn listing_a_5000_file_repo_does_not_depend_on_its_size() {
    // Sanity for the bench: archive of many files is complete.
    let repo = Repo::new("big");
    for i in 0..500 {
        repo.write(&format!("dir{}/f{i}.yaml", i % 10), &format!("i: {i}\n"));
    }
    repo.commit("many");
    repo.push("main");
    let work = tempfile::tempdir().unwrap();
    let url = repo.file_url();
    let w = work.path().to_path_buf();
    let out = in_blocking(move || {
        let f = git::fetch(
            &w,
            &url,
            &Auth::default(),
            &FetchTarget::Ref("refs/heads/main".into()),
            T,
        )
        .unwrap();
        let mut out = Vec::new();
        let stats = git::archive_commit(&f.repo, f.commit, &[], None, &[], &mut out).unwrap();
        (stats.files, out)
    })
    .await;
    assert_eq!(out.0, 500);
    assert_eq!(
        tar_listing(&out.1).len(),
        510,
        "500 files and 10 directories"
    );
}

#[tokio::test]
async fn ssh_runs_ssh_with_strict_host_key_checking() {
    // No sshd here: check that an ssh URL goes through the ssh program with
    // our options (strict host keys, our identity) and fails cleanly.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let identity = std::fs::read(&key).unwrap();
    let auth = Auth {
        ssh_identity: Some(identity.clone()),
        known_hosts: Some(b"[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n".to_vec()),
        ..Auth::default()
    };
    let w = dir.path().join("work");
    let err = in_blocking(move || {
        git::ls_refs(
            &w,
            "ssh://git@127.0.0.1:1/repo.git",
            &auth,
            &["refs/heads/main".into()],
            T,
        )
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Operation, "{}", err.message);
    eprintln!("ssh failure: {}", err.message);
    let key_text = String::from_utf8_lossy(&identity);
    let body = key_text.lines().nth(1).unwrap();
    assert!(
        !err.message.contains(body),
        "the private key leaked: {}",
        err.message
    );
    // The temporary key files are gone after the operation.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ssh-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
