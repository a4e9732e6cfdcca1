//! The test Git server with the real `git` client: anonymous and basic-auth
//! clones, and the request counters.

use sluice_testsupport::git_server::{GitServer, git};

fn bare_repo_with_a_commit(root: &std::path::Path) -> String {
    let bare = root.join("srv/app.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a.txt"), "a\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    git(&work, &["rev-parse", "HEAD"])
}

/// `git ls-remote` in a blocking thread (the server runs on this runtime).
async fn ls_remote(url: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "protocol.version=2",
                "ls-remote",
                &url,
                "refs/heads/main",
            ])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn serves_bare_repositories_and_counts_requests() {
    let dir = tempfile::tempdir().unwrap();
    let head = bare_repo_with_a_commit(dir.path());
    let server = GitServer::start(&dir.path().join("srv"), None).await;
    assert_eq!(server.url("app"), format!("{}/app.git", server.base_url()));
    let listed = ls_remote(server.url("app")).await.unwrap();
    assert!(listed.starts_with(&head), "{listed}");
    assert_eq!(server.counters.ls_refs(), 1);
    assert_eq!(server.counters.fetches(), 0);
    assert!(server.counters.requests() >= 2, "discovery and ls-refs");
    assert_eq!(server.counters.unauthorized(), 0);
    assert!(ls_remote(server.url("missing")).await.is_err());
}

#[tokio::test]
async fn basic_auth_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let head = bare_repo_with_a_commit(dir.path());
    let server = GitServer::start(&dir.path().join("srv"), Some(("flux", "pw"))).await;
    let anonymous = ls_remote(server.url("app")).await.unwrap_err();
    assert!(server.counters.unauthorized() >= 1, "{anonymous}");
    let wrong = format!("http://flux:nope@{}/app.git", server.addr);
    assert!(ls_remote(wrong).await.is_err());
    let right = format!("http://flux:pw@{}/app.git", server.addr);
    let listed = ls_remote(right).await.unwrap();
    assert!(listed.starts_with(&head), "{listed}");
    assert_eq!(server.counters.ls_refs(), 1, "only the authorized listing");
}
