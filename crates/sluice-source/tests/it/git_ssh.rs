//! Git over ssh against a real, private `sshd` (openssh-server): the gix
//! transport over our russh client (no `ssh` program), and the GitRepository controller on
//! the local control plane. Every test skips, saying why, when `sshd` is not
//! installed (`scripts/install-deps` installs it).

use std::time::Duration;

use crate::support::*;
use kube::Api;
use serde_json::json;
use sluice_api::meta;
use sluice_source::api::GitRepository;
use sluice_source::git::{self, Auth, FetchTarget, GitError, GitErrorKind};
use sluice_testsupport::ssh_server::{Keys, SshServer, keygen, known_hosts_line};
use sluice_testsupport::{TestNamespace, client, wait_for};

const T: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(60);

/// The server, or `None` after printing why the test is skipped.
fn sshd() -> Option<SshServer> {
    match SshServer::start() {
        Ok(s) => Some(s),
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

/// A bare repository with one commit on `main`; returns it and the commit.
fn repo_with_a_commit() -> (Repo, String) {
    let repo = Repo::new("app");
    repo.write("deploy.yaml", "kind: ConfigMap\n");
    let commit = repo.commit("first");
    repo.push("main");
    (repo, commit)
}

/// Another host key, in a known_hosts line for the same host and port.
fn other_host_key(port: u16) -> String {
    let dir = tempfile::tempdir().unwrap();
    keygen(&dir.path().join("k")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    known_hosts_line(port, &public)
}

/// Another client key (not authorized on the server).
fn other_identity() -> String {
    let dir = tempfile::tempdir().unwrap();
    keygen(&dir.path().join("k")).unwrap();
    std::fs::read_to_string(dir.path().join("k")).unwrap()
}

/// The base64 body lines of a private key (what must never leak).
fn key_material(identity: &str) -> Vec<String> {
    identity
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

fn assert_no_key_material(message: &str, identity: &str) {
    for line in key_material(identity) {
        assert!(!message.contains(&line), "key material leaked: {message}");
    }
}

async fn ls_main(work: &std::path::Path, url: &str, auth: Auth) -> Result<String, GitError> {
    let (w, u) = (work.to_path_buf(), url.to_string());
    tokio::task::spawn_blocking(move || {
        git::ls_refs(&w, &u, &auth, &["refs/heads/main".into()], T).map(|refs| {
            refs.into_iter()
                .find(|r| r.name == "refs/heads/main")
                .unwrap()
                .commit
        })
    })
    .await
    .unwrap()
}

async fn fetch_main(work: &std::path::Path, url: &str, auth: Auth) -> Result<String, GitError> {
    let (w, u) = (work.to_path_buf(), url.to_string());
    tokio::task::spawn_blocking(move || {
        git::fetch(
            &w,
            &u,
            &auth,
            &FetchTarget::Ref("refs/heads/main".into()),
            T,
        )
        .map(|f| f.commit.to_string())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn transport_lists_and_fetches_over_ssh() {
    let Some(server) = sshd() else { return };
    let (repo, commit) = repo_with_a_commit();
    let url = server.url(&repo.bare);
    let work = tempfile::tempdir().unwrap();
    let auth = Auth {
        ssh_identity: Some(server.identity().into_bytes()),
        known_hosts: Some(server.known_hosts().into_bytes()),
        ..Auth::default()
    };
    let listed = ls_main(work.path(), &url, auth.clone()).await;
    let listed = listed.unwrap_or_else(|e| panic!("{e:?}\nsshd log:\n{}", server.log()));
    assert_eq!(listed, commit);
    let fetched = fetch_main(work.path(), &url, auth).await.unwrap();
    assert_eq!(fetched, commit);
}

/// RSA, ECDSA and ed25519, as host keys and as identities, and identities
/// protected by a passphrase (the Secret's `password`, as Flux reads it).
#[tokio::test]
async fn transport_speaks_every_key_type_and_opens_protected_identities() {
    let (repo, commit) = repo_with_a_commit();
    for (host, client, passphrase) in [
        ("rsa", "ecdsa", ""),
        ("ecdsa", "rsa", ""),
        ("ed25519", "rsa", "rsa pass"),
        ("rsa", "ed25519", "ed pass"),
    ] {
        let keys = Keys {
            host,
            client,
            passphrase,
        };
        let server = match SshServer::start_with(keys) {
            Ok(s) => s,
            Err(reason) => return eprintln!("SKIPPED: {reason}"),
        };
        let url = server.url(&repo.bare);
        let work = tempfile::tempdir().unwrap();
        let mut auth = Auth {
            ssh_identity: Some(server.identity().into_bytes()),
            known_hosts: Some(server.known_hosts().into_bytes()),
            ssh_passphrase: Some(passphrase.to_string()).filter(|p| !p.is_empty()),
            ..Auth::default()
        };
        let listed = ls_main(work.path(), &url, auth.clone()).await;
        let listed =
            listed.unwrap_or_else(|e| panic!("{keys:?}: {e:?}\nsshd log:\n{}", server.log()));
        assert_eq!(listed, commit, "{keys:?}");
        assert_eq!(
            fetch_main(work.path(), &url, auth.clone()).await.unwrap(),
            commit
        );
        if !passphrase.is_empty() {
            auth.ssh_passphrase = None;
            let err = ls_main(work.path(), &url, auth.clone()).await.unwrap_err();
            assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);
            assert!(
                err.message.contains("passphrase-protected"),
                "{}",
                err.message
            );
            auth.ssh_passphrase = Some("wrong".into());
            let err = ls_main(work.path(), &url, auth).await.unwrap_err();
            assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);
            assert!(!err.message.contains("wrong"), "{}", err.message);
        }
    }
}

/// What `sluice create secret git` makes for an ssh URL: the server's host
/// key, scanned, and generated key pairs of each type (once authorized on
/// the server, as a deploy key would be) list the repository.
#[tokio::test]
async fn generated_identities_and_a_scanned_host_key_log_in() {
    let Some(server) = sshd() else { return };
    let (repo, commit) = repo_with_a_commit();
    let url = server.url(&repo.bare);
    let scan_url = url.clone();
    let known_hosts =
        tokio::task::spawn_blocking(move || sluice_git::scan_known_hosts(&scan_url, T))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", server.log()));
    let fields = |l: &str| {
        l.split_whitespace()
            .take(3)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(&known_hosts), fields(&server.known_hosts()));
    for kind in [
        sluice_git::KeyKind::Ed25519,
        sluice_git::KeyKind::Ecdsa(sluice_git::EcdsaCurveName::P384),
        sluice_git::KeyKind::Ecdsa(sluice_git::EcdsaCurveName::P256),
        sluice_git::KeyKind::Rsa(2048),
    ] {
        let (private, public) = sluice_git::generate_identity(kind, "sluice").unwrap();
        server.authorize(&public);
        let work = tempfile::tempdir().unwrap();
        let auth = Auth {
            ssh_identity: Some(private.into_bytes()),
            known_hosts: Some(known_hosts.clone().into_bytes()),
            ..Auth::default()
        };
        let listed = ls_main(work.path(), &url, auth).await;
        let listed =
            listed.unwrap_or_else(|e| panic!("{kind:?}: {e:?}\nsshd log:\n{}", server.log()));
        assert_eq!(listed, commit, "{kind:?}");
    }
    // Nobody listening: the scan says so, within its timeout.
    let closed = format!(
        "ssh://git@127.0.0.1:{}/r.git",
        sluice_testsupport::free_port()
    );
    let err = tokio::task::spawn_blocking(move || sluice_git::scan_known_hosts(&closed, T))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        err.starts_with("scanning the host key of [127.0.0.1]:"),
        "{err}"
    );
}

#[tokio::test]
async fn transport_refuses_an_unknown_host_key() {
    let Some(server) = sshd() else { return };
    let (repo, _) = repo_with_a_commit();
    let url = server.url(&repo.bare);
    let work = tempfile::tempdir().unwrap();
    let identity = server.identity();
    let auth = Auth {
        ssh_identity: Some(identity.clone().into_bytes()),
        known_hosts: Some(other_host_key(server.port()).into_bytes()),
        ..Auth::default()
    };
    let err = ls_main(work.path(), &url, auth.clone()).await.unwrap_err();
    eprintln!("{err:?}");
    assert!(
        err.message
            .to_lowercase()
            .contains("host key verification failed"),
        "{}",
        err.message
    );
    assert_no_key_material(&err.message, &identity);
    let err = fetch_main(work.path(), &url, auth).await.unwrap_err();
    assert!(
        err.message
            .to_lowercase()
            .contains("host key verification failed"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn transport_classifies_a_refused_identity_as_auth() {
    let Some(server) = sshd() else { return };
    let (repo, _) = repo_with_a_commit();
    let url = server.url(&repo.bare);
    let work = tempfile::tempdir().unwrap();
    let identity = other_identity();
    let auth = Auth {
        ssh_identity: Some(identity.clone().into_bytes()),
        known_hosts: Some(server.known_hosts().into_bytes()),
        ..Auth::default()
    };
    let err = ls_main(work.path(), &url, auth.clone()).await.unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);
    assert!(
        err.message.contains("Permission denied (publickey)"),
        "{}",
        err.message
    );
    assert_no_key_material(&err.message, &identity);
    let err = fetch_main(work.path(), &url, auth).await.unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);
    assert_no_key_material(&err.message, &identity);
}

#[tokio::test]
async fn transport_logs_in_as_git_when_the_url_names_no_user() {
    // Flux's default user for ssh; this server only knows the current user.
    let Some(server) = sshd() else { return };
    let (repo, _) = repo_with_a_commit();
    let url = format!("ssh://127.0.0.1:{}{}", server.port(), repo.bare.display());
    let work = tempfile::tempdir().unwrap();
    let auth = Auth {
        ssh_identity: Some(server.identity().into_bytes()),
        known_hosts: Some(server.known_hosts().into_bytes()),
        ..Auth::default()
    };
    let err = ls_main(work.path(), &url, auth).await.unwrap_err();
    assert_eq!(err.kind, GitErrorKind::Auth, "{}", err.message);
    assert!(
        server.log().contains("Invalid user git "),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn transport_reports_what_the_remote_said() {
    let Some(server) = sshd() else { return };
    let (repo, _) = repo_with_a_commit();
    let missing = repo.bare.with_file_name("missing.git");
    let work = tempfile::tempdir().unwrap();
    let auth = Auth {
        ssh_identity: Some(server.identity().into_bytes()),
        known_hosts: Some(server.known_hosts().into_bytes()),
        ..Auth::default()
    };
    let err = ls_main(work.path(), &server.url(&missing), auth)
        .await
        .unwrap_err();
    eprintln!("{}", err.message);
    assert_eq!(err.kind, GitErrorKind::Operation, "{}", err.message);
    assert!(
        err.message
            .contains("does not appear to be a git repository"),
        "{}",
        err.message
    );
}

async fn setup(prefix: &str) -> (TestNamespace, Api<GitRepository>, Harness) {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await;
    let api: Api<GitRepository> = ns.api();
    let harness = Harness::start(&client, ns.name()).await;
    (ns, api, harness)
}

/// Waits for Ready=False and returns `(reason, message)`.
async fn wait_failed(api: &Api<GitRepository>, name: &str) -> (String, String, GitRepository) {
    let gr = wait_for(api, name, WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, message) = condition(&gr, meta::READY_CONDITION).unwrap();
    (reason, message, gr)
}

#[tokio::test]
async fn gitrepository_over_ssh_becomes_ready_and_follows_new_commits() {
    let Some(server) = sshd() else { return };
    let (ns, api, _h) = setup("src-ssh").await;
    let (repo, first) = repo_with_a_commit();
    secret(
        &ns,
        "ssh-auth",
        &[
            ("identity", &server.identity()),
            ("known_hosts", &server.known_hosts()),
        ],
    )
    .await;
    create(
        &api,
        "app",
        json!({"url": server.url(&repo.bare), "interval": "10m", "ref": {"branch": "main"}, "secretRef": {"name": "ssh-auth"}}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    assert_eq!(
        revision(&gr),
        Some(format!("main@sha1:{first}")),
        "sshd log:\n{}",
        server.log()
    );
    let artifact = gr.status.as_ref().unwrap().artifact.clone().unwrap();
    let (status, body) = http_get(&artifact.url).await;
    assert_eq!(status, 200);
    assert_eq!(
        tar_file(&body, "deploy.yaml").as_deref(),
        Some("kind: ConfigMap\n")
    );

    repo.write("deploy.yaml", "kind: Secret\n");
    let second = repo.commit("second");
    repo.push("main");
    request_reconcile(&api, "app").await;
    let want = format!("main@sha1:{second}");
    wait_for(&api, "app", WAIT, |g| {
        is_ready(g) && revision(g).as_deref() == Some(want.as_str())
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn gitrepository_over_ssh_refuses_wrong_host_key_and_identity_and_needs_known_hosts() {
    let Some(server) = sshd() else { return };
    let (ns, api, _h) = setup("src-ssh-fail").await;
    let (repo, _) = repo_with_a_commit();
    let url = server.url(&repo.bare);
    let identity = server.identity();
    let other_host = other_host_key(server.port());
    let other_id = other_identity();
    secret(
        &ns,
        "wrong-host",
        &[("identity", &identity), ("known_hosts", &other_host)],
    )
    .await;
    secret(
        &ns,
        "wrong-id",
        &[
            ("identity", &other_id),
            ("known_hosts", &server.known_hosts()),
        ],
    )
    .await;
    secret(&ns, "no-known-hosts", &[("identity", &identity)]).await;
    for (name, secret) in [
        ("wrong-host", "wrong-host"),
        ("wrong-id", "wrong-id"),
        ("no-known-hosts", "no-known-hosts"),
    ] {
        create(
            &api,
            name,
            json!({"url": url, "interval": "10m", "ref": {"branch": "main"}, "secretRef": {"name": secret}}),
        )
        .await;
    }

    // A host key that is not the server's: refused, and said so.
    let (reason, msg, gr) = wait_failed(&api, "wrong-host").await;
    eprintln!("wrong host key: {reason}: {msg}");
    assert!(
        reason == meta::GIT_OPERATION_FAILED_REASON || reason == meta::AUTHENTICATION_FAILED_REASON,
        "{reason}: {msg}"
    );
    assert!(msg.contains("Host key verification failed"), "{msg}");
    let whole = serde_json::to_string(&gr).unwrap();
    assert_no_key_material(&whole, &identity);
    assert!(
        !whole.contains(other_host.split_whitespace().nth(2).unwrap()),
        "{whole}"
    );
    assert!(gr.status.as_ref().unwrap().artifact.is_none());

    // A key the server does not accept.
    let (reason, msg, gr) = wait_failed(&api, "wrong-id").await;
    eprintln!("wrong identity: {reason}: {msg}");
    assert_eq!(reason, meta::AUTHENTICATION_FAILED_REASON, "{msg}");
    assert!(msg.contains("Permission denied (publickey)"), "{msg}");
    let whole = serde_json::to_string(&gr).unwrap();
    assert_no_key_material(&whole, &other_id);
    assert_no_key_material(&whole, &identity);

    // known_hosts is required (as Flux: no connection is even tried).
    let (reason, msg, _) = wait_failed(&api, "no-known-hosts").await;
    eprintln!("no known_hosts: {reason}: {msg}");
    assert_eq!(reason, meta::AUTHENTICATION_FAILED_REASON, "{msg}");
    assert!(msg.contains("'known_hosts' is required"), "{msg}");
    assert!(!msg.contains(&identity), "{msg}");
    ns.delete().await;
}
