//! `spec.verify` of a GitRepository against the local control plane, with
//! commits and tags signed by the real `git`: OpenPGP signatures made by
//! `gpg` (the SOPS fixtures' ed25519 key, in a private GNUPGHOME) and SSH
//! signatures made by `ssh-keygen -Y sign`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_api::meta;
use sluice_source::api::GitRepository;
use sluice_testsupport::{TestNamespace, client, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// A private GNUPGHOME holding one secret key, and an SSH key pair.
struct Signers {
    _dir: tempfile::TempDir,
    /// A `gpg` that uses the private home (for `gpg.program`).
    gpg: PathBuf,
    /// The OpenPGP key's public key, armored.
    pgp_public: String,
    /// Its ID as Flux names it (the primary key's 16 hex digits).
    pgp_key_id: String,
    /// The SSH private key file and its `SHA256:…` fingerprint.
    ssh_key: PathBuf,
    ssh_public: String,
    ssh_fingerprint: String,
}

fn run(cmd: &str, args: &[&str], dir: &Path) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn signers() -> Option<Signers> {
    for tool in ["gpg", "ssh-keygen"] {
        if std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: `{tool}` is not installed (scripts/install-deps installs it)");
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let home_s = home.to_str().unwrap();
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice-sops/testdata/test-ecc.asc");
    run(
        "gpg",
        &[
            "--homedir",
            home_s,
            "--batch",
            "--import",
            key.to_str().unwrap(),
        ],
        dir.path(),
    );
    let listed = run(
        "gpg",
        &["--homedir", home_s, "--with-colons", "--list-secret-keys"],
        dir.path(),
    );
    let pgp_key_id = listed
        .lines()
        .find(|l| l.starts_with("sec:"))
        .and_then(|l| l.split(':').nth(4))
        .unwrap()
        .to_string();
    let pgp_public = run(
        "gpg",
        &["--homedir", home_s, "--armor", "--export", &pgp_key_id],
        dir.path(),
    );
    let gpg = dir.path().join("gpg");
    std::fs::write(
        &gpg,
        format!("#!/bin/sh\nexec gpg --homedir '{home_s}' \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&gpg, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ssh_key = dir.path().join("id_ed25519");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "laptop",
            "-f",
            ssh_key.to_str().unwrap(),
        ],
        dir.path(),
    );
    let ssh_public = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    let ssh_fingerprint = run(
        "ssh-keygen",
        &["-l", "-E", "sha256", "-f", ssh_key.to_str().unwrap()],
        dir.path(),
    )
    .split_whitespace()
    .nth(1)
    .unwrap()
    .to_string();
    Some(Signers {
        _dir: dir,
        gpg,
        pgp_public,
        pgp_key_id,
        ssh_key,
        ssh_public,
        ssh_fingerprint,
    })
}

impl Signers {
    /// `git -c …` options that sign with the OpenPGP key.
    fn pgp(&self) -> Vec<String> {
        vec![
            "-c".into(),
            format!("gpg.program={}", self.gpg.display()),
            "-c".into(),
            format!("user.signingkey={}", self.pgp_key_id),
        ]
    }

    /// `git -c …` options that sign with the SSH key.
    fn ssh(&self) -> Vec<String> {
        vec![
            "-c".into(),
            "gpg.format=ssh".into(),
            "-c".into(),
            format!("user.signingkey={}", self.ssh_key.display()),
        ]
    }
}

fn signed_git(repo: &Repo, signer: &[String], args: &[&str]) -> String {
    let mut all: Vec<&str> = signer.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    git(&repo.work, &all)
}

fn signed_commit(repo: &Repo, signer: &[String], msg: &str) -> String {
    git(&repo.work, &["add", "-A"]);
    signed_git(
        repo,
        signer,
        &["commit", "-q", "-S", "--allow-empty", "-m", msg],
    );
    repo.head()
}

async fn keys_secret(ns: &TestNamespace, data: &[(&str, &str)]) {
    let api: Api<Secret> = ns.api();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("trusted".into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    api.patch(
        "trusted",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&secret),
    )
    .await
    .unwrap();
}

fn verified(gr: &GitRepository) -> Option<(String, String, String)> {
    condition(gr, meta::SOURCE_VERIFIED_CONDITION)
}

#[tokio::test]
async fn commits_and_tags_are_verified_with_pgp_and_ssh_keys() {
    let Some(s) = signers() else { return };
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "src-verify").await;
    let api: Api<GitRepository> = ns.api();
    let _h = Harness::start(&client, ns.name()).await;
    let repo = Repo::new("signed");
    repo.write("app.yaml", "v: 1\n");
    let first = signed_commit(&repo, &s.pgp(), "signed with gpg");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    keys_secret(&ns, &[("author.asc", &s.pgp_public)]).await;

    create(
        &api,
        "app",
        json!({"url": server.url("signed"), "interval": "10m",
        "ref": {"branch": "main"}, "verify": {"mode": "HEAD", "secretRef": {"name": "trusted"}}}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    assert_eq!(
        verified(&gr).unwrap(),
        (
            "True".into(),
            "Succeeded".into(),
            format!(
                "verified signature of\n\t- commit '{first}' with key '{}'",
                s.pgp_key_id
            )
        )
    );
    assert_eq!(json(&gr)["status"]["sourceVerificationMode"], json!("HEAD"));
    let artifact = gr.status.as_ref().unwrap().artifact.clone().unwrap();

    // An unsigned commit: nothing stored, Flux's reason and message.
    repo.write("app.yaml", "v: 2\n");
    let unsigned = repo.commit("not signed");
    repo.push("main");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        verified(g).is_some_and(|c| c.1 == "InvalidCommitSignature")
    })
    .await;
    let message = format!(
        "signature verification of commit '{unsigned}' failed: unsupported signature type: empty"
    );
    assert_eq!(
        verified(&gr).unwrap(),
        (
            "False".into(),
            "InvalidCommitSignature".into(),
            message.clone()
        )
    );
    assert_eq!(
        condition(&gr, meta::READY_CONDITION).unwrap(),
        ("False".into(), "InvalidCommitSignature".into(), message)
    );
    assert_eq!(
        gr.status.as_ref().unwrap().artifact.as_ref(),
        Some(&artifact)
    );

    // Signed with an SSH key the Secret does not list yet, then does.
    repo.write("app.yaml", "v: 3\n");
    let by_ssh = signed_commit(&repo, &s.ssh(), "signed with ssh");
    repo.push("main");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.2.contains(&by_ssh))
    })
    .await;
    assert_eq!(
        verified(&gr).unwrap().2,
        format!(
            "signature verification of commit '{by_ssh}' failed: SSH signature detected but no SSH public keys found in secret (keys with .sshpub suffix)"
        )
    );
    keys_secret(
        &ns,
        &[
            ("author.asc", &s.pgp_public),
            ("laptop.sshpub", &s.ssh_public),
        ],
    )
    .await;
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        is_ready(g)
            && g.status
                .as_ref()
                .and_then(|st| st.artifact.as_ref())
                .is_some_and(|a| a.revision.ends_with(&by_ssh))
    })
    .await;
    assert_eq!(
        verified(&gr).unwrap().2,
        format!(
            "verified signature of\n\t- commit '{by_ssh}' with key '{}'",
            s.ssh_fingerprint
        )
    );

    // A key that did not sign: no matching key.
    let other = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice-sops/testdata/test-rsa.asc"),
    )
    .unwrap();
    let other_public = public_of(&other);
    keys_secret(&ns, &[("other.asc", &other_public)]).await;
    repo.write("app.yaml", "v: 4\n");
    let by_gpg = signed_commit(&repo, &s.pgp(), "signed with gpg again");
    repo.push("main");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.2.contains(&by_gpg))
    })
    .await;
    assert_eq!(
        verified(&gr).unwrap().2,
        format!(
            "signature verification of commit '{by_gpg}' failed: unable to verify Git commit: unable to verify payload with any of the given key rings: no matching key"
        )
    );

    // Tags: a signed annotated tag verified as a tag and as a commit.
    keys_secret(&ns, &[("author.asc", &s.pgp_public)]).await;
    signed_git(&repo, &s.pgp(), &["tag", "-s", "v1.0.0", "-m", "release"]);
    repo.push("v1.0.0");
    let tag_object = git(&repo.work, &["rev-parse", "v1.0.0"]);
    create(
        &api,
        "release",
        json!({"url": server.url("signed"), "interval": "10m",
        "ref": {"tag": "v1.0.0"}, "verify": {"mode": "TagAndHEAD", "secretRef": {"name": "trusted"}}}),
    )
    .await;
    let gr = wait_for(&api, "release", WAIT, is_ready).await;
    assert_eq!(
        verified(&gr).unwrap().2,
        format!(
            "verified signature of\n\t- tag 'v1.0.0@{tag_object}' with key '{id}'\n\t- commit '{by_gpg}' with key '{id}'",
            id = s.pgp_key_id
        )
    );
    assert_eq!(
        json(&gr)["status"]["sourceVerificationMode"],
        json!("TagAndHEAD")
    );

    // Tag mode on a branch cannot be satisfied: stalled.
    create(
        &api,
        "branch",
        json!({"url": server.url("signed"), "interval": "10m",
        "ref": {"branch": "main"}, "verify": {"mode": "Tag", "secretRef": {"name": "trusted"}}}),
    )
    .await;
    let gr = wait_for(&api, "branch", WAIT, |g| {
        condition(g, meta::STALLED_CONDITION).is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        verified(&gr).unwrap(),
        (
            "False".into(),
            "InvalidVerificationMode".into(),
            "cannot verify tag object's signature if a tag reference is not specified".into()
        )
    );
}

/// The public half of an armored secret key, through gpg.
fn public_of(secret: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let file = dir.path().join("k.asc");
    std::fs::write(&file, secret).unwrap();
    let h = home.to_str().unwrap();
    run(
        "gpg",
        &[
            "--homedir",
            h,
            "--batch",
            "--import",
            file.to_str().unwrap(),
        ],
        dir.path(),
    );
    run("gpg", &["--homedir", h, "--armor", "--export"], dir.path())
}
