//! `sluice bootstrap git` into a local bare repository, against the local
//! control plane; a stand-in answers reconcile requests as the controller
//! would.

mod support;

use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use support::*;

/// The installs of these tests label the shared CRDs with their own
/// namespace; run them one at a time so "nothing changed" holds.
static INSTALLS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn git(args: &[&str]) -> String {
    let out = Command::new("git").args(args).output().expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_twice_then_repair_a_partial_install() {
    let _serial = INSTALLS.lock().await;
    let client = sluice_testsupport::client().await;
    install_crds(&client).await;
    let ns = sluice_testsupport::unique_name("sluice-t-boot");
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("homelab.git");
    git(&[
        "init",
        "-q",
        "--bare",
        "--initial-branch=main",
        bare.to_str().unwrap(),
    ]);
    let url = format!("file://{}", bare.display());
    let args = [
        "bootstrap",
        "git",
        "--url",
        &url,
        "--sync-url",
        "https://git.example.invalid/homelab.git",
        "--branch",
        "main",
        "--path",
        "clusters/test",
        "-n",
        &ns,
        "--timeout",
        "2m",
    ];
    let _controller = FakeController::start(client.clone(), ns.clone());

    let out = sluice(&args).expect(0);
    assert!(
        out.stderr.contains("branch \"main\" does not exist yet"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("committed and pushed sync manifests"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("Deployment/{ns}/sluice created")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("Kustomization/{ns}/flux-system created")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("applied revision main@sha1:"),
        "{}",
        out.stderr
    );
    let git_dir = format!("--git-dir={}", bare.display());
    let sync = git(&[
        &git_dir,
        "show",
        "main:clusters/test/flux-system/gotk-sync.yaml",
    ]);
    assert!(sync.contains("path: ./clusters/test"), "{sync}");
    assert!(
        sync.contains("url: https://git.example.invalid/homelab.git"),
        "{sync}"
    );
    let kustomization = git(&[
        &git_dir,
        "show",
        "main:clusters/test/flux-system/kustomization.yaml",
    ]);
    assert!(
        kustomization.contains("- gotk-components.yaml\n- gotk-sync.yaml"),
        "{kustomization}"
    );
    let components = git(&[
        &git_dir,
        "show",
        "main:clusters/test/flux-system/gotk-components.yaml",
    ]);
    assert!(
        components.contains("kind: CustomResourceDefinition"),
        "{components}"
    );
    assert!(
        components.contains(&format!("namespace: {ns}")),
        "{components}"
    );

    // Again: nothing to commit, nothing to install.
    let commits = git(&[&git_dir, "rev-list", "--count", "main"]);
    let out = sluice(&args).expect(0);
    assert!(
        out.stderr.contains("sync manifests are up to date in Git"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("components are already installed and up to date"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("already bootstrapped, nothing changed"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("created"), "{}", out.stderr);
    assert_eq!(git(&[&git_dir, "rev-list", "--count", "main"]), commits);

    // Part of the installation removed by hand: completed, and said so.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .delete("sluice", &Default::default())
        .await
        .unwrap();
    let out = sluice(&args).expect(0);
    assert!(
        out.stderr.contains(&format!(
            "partial installation found; completing it (1 missing: Deployment/{ns}/sluice)"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("Deployment/{ns}/sluice created")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("already installed"), "{}", out.stderr);

    sluice(&["uninstall", "-n", &ns, "--keep-crds"]).expect(0);
}

#[test]
fn bootstrap_refuses_a_url_the_cluster_cannot_fetch() {
    let out = sluice(&[
        "bootstrap",
        "git",
        "--url",
        "file:///tmp/nowhere.git",
        "--path",
        "clusters/x",
        "-n",
        "x",
    ])
    .expect(1);
    assert!(
        out.stderr
            .contains("a GitRepository URL must be http(s):// or ssh://"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--sync-url"), "{}", out.stderr);
}

#[tokio::test]
async fn bootstrap_with_credentials_stores_them_for_the_source() {
    let _serial = INSTALLS.lock().await;
    use k8s_openapi::api::core::v1::Secret;
    let client = sluice_testsupport::client().await;
    install_crds(&client).await;
    let ns = sluice_testsupport::unique_name("sluice-t-bootauth");
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("r.git");
    git(&[
        "init",
        "-q",
        "--bare",
        "--initial-branch=main",
        bare.to_str().unwrap(),
    ]);
    let url = format!("file://{}", bare.display());
    let out = sluice(&[
        "bootstrap",
        "git",
        "--url",
        &url,
        "--sync-url",
        "https://git.example.invalid/r.git",
        "--path",
        "clusters/auth",
        "--username",
        "git",
        "--password",
        "t0ken",
        "--wait=false",
        "-n",
        &ns,
    ])
    .expect(0);
    assert!(
        out.stderr
            .contains(&format!("Secret/{ns}/flux-system created")),
        "{}",
        out.stderr
    );
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("flux-system")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["username"].0, b"git");
    assert_eq!(data["password"].0, b"t0ken");
    let sync = git(&[
        &format!("--git-dir={}", bare.display()),
        "show",
        "main:clusters/auth/flux-system/gotk-sync.yaml",
    ]);
    assert!(sync.contains("secretRef:\n    name: flux-system"), "{sync}");
    assert!(!sync.contains("t0ken"), "{sync}");
    sluice(&["uninstall", "-n", &ns, "--keep-crds"]).expect(0);
}

#[tokio::test]
async fn bootstrap_over_ssh_trusts_the_scanned_host_key() {
    let server = match sluice_testsupport::ssh_server::SshServer::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipped: {}", why.0);
            return;
        }
    };
    let _serial = INSTALLS.lock().await;
    use k8s_openapi::api::core::v1::Secret;
    let client = sluice_testsupport::client().await;
    install_crds(&client).await;
    let ns = sluice_testsupport::unique_name("sluice-t-bootssh");
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("r.git");
    git(&[
        "init",
        "-q",
        "--bare",
        "--initial-branch=main",
        bare.to_str().unwrap(),
    ]);
    let url = server.url(&bare);
    let key = server.identity_path();
    let out = sluice(&[
        "bootstrap",
        "git",
        "--url",
        &url,
        "--path",
        "clusters/ssh",
        "--private-key-file",
        key.to_str().unwrap(),
        "--wait=false",
        "-n",
        &ns,
    ])
    .expect(0);
    // The host key is shown, then trusted for the push ...
    assert!(out.stderr.contains("SSH host key"), "{}", out.stderr);
    let sync = git(&[
        &format!("--git-dir={}", bare.display()),
        "show",
        "main:clusters/ssh/flux-system/gotk-sync.yaml",
    ]);
    assert!(sync.contains(&format!("url: {url}")), "{sync}");
    // ... and stored for the GitRepository with the identity.
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("flux-system")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&data["identity"].0),
        server.identity()
    );
    let known_hosts = String::from_utf8_lossy(&data["known_hosts"].0).into_owned();
    let host_key = server.host_public_key();
    let material = host_key.split_whitespace().nth(1).unwrap();
    assert!(known_hosts.contains(material), "{known_hosts}");
    assert!(
        known_hosts.contains(&format!("[127.0.0.1]:{}", server.port())),
        "{known_hosts}"
    );
    sluice(&["uninstall", "-n", &ns, "--keep-crds"]).expect(0);
}
