//! The image as a kubelet runs it: `make image`'s OCI archive
//! (target/image/sluice.oci.tar) is unpacked the way a container runtime
//! unpacks it. `sluice install --image` creates its Deployment in the
//! cluster; the real controllers make the Pod and the real scheduler puts it
//! on a simulated node, and the test, as that node's kubelet, runs the
//! Pod's entrypoint with the Pod's arguments, environment, user and volumes
//! inside bubblewrap: the image's root filesystem read-only and nothing of the
//! host's (no shell, no `ssh`, no `git`), uid 65532 in a user namespace with
//! no capabilities, emptyDirs at /data and /tmp, the ServiceAccount's token,
//! CA and namespace (a token bound to the Pod, as a kubelet projects it) at
//! /var/run/secrets/kubernetes.io/serviceaccount and
//! `KUBERNETES_SERVICE_HOST/PORT` set, so it finds the API server as a pod
//! does. It acts with the RBAC `sluice install` creates (its own
//! ServiceAccount, not an admin's kubeconfig).
//!
//! In it, the controller reconciles a GitRepository over HTTPS (a CA from
//! the Secret's `ca.crt`) and one over SSH (the test `sshd`, through the
//! Rust ssh client), applies a Kustomization from each, installs a
//! HelmRelease from a chart in the HTTPS repository, and serves the
//! artifacts over HTTP. Its own ServiceAccount may not write what it applies:
//! that is done as `sluice-reconciler`, which it impersonates.
//!
//! The host shares its network with the sandbox (the API server and the Git
//! servers listen on 127.0.0.1), so the Deployment's fixed ports are moved
//! to free ones, as a pod's own network namespace would leave them free.
//!
//! Needs the image (`make image`, which `make test` runs first) and
//! bubblewrap (`scripts/install-deps`): without either the test says so and
//! is skipped, unless `SLUICE_REQUIRE_IMAGE=1` (set by `make test`), which
//! makes a missing piece a failure.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_api::{GitRepository, HelmRelease, Kustomization};
use sluice_testsupport::git_server::{GitServer, Repo};
use sluice_testsupport::kubelet::{self, Container, Image, Kubelet};
use sluice_testsupport::ssh_server::SshServer;
use sluice_testsupport::{free_port, repo_root};
use support::*;

const WAIT: Duration = Duration::from_secs(120);

/// What the test needs that may be missing, or `None` to skip.
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let require = std::env::var("SLUICE_REQUIRE_IMAGE").is_ok_and(|v| v == "1");
    let archive = std::env::var_os("SLUICE_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/image/sluice.oci.tar"));
    let bwrap = kubelet::bwrap();
    let missing = match (&bwrap, archive.is_file()) {
        (None, _) => {
            Some("bubblewrap is not installed (scripts/install-deps installs it)".to_string())
        }
        (_, false) => Some(format!(
            "no image at {} (run `make image`)",
            archive.display()
        )),
        _ => None,
    };
    if let Some(why) = missing {
        assert!(!require, "SLUICE_REQUIRE_IMAGE=1 but {why}");
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some((archive, bwrap?))
}

/// containerd's importer (`scripts/containerd-import`): the binary
/// `SLUICE_CONTAINERD_IMPORT` names, else the cached build. Where the image
/// is required (`SLUICE_REQUIRE_IMAGE=1`, `make test`), so is the importer.
fn containerd_import() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_CONTAINERD_IMPORT").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let out = std::process::Command::new(repo_root().join("scripts/containerd-import"))
        .arg("path")
        .output()
        .ok()?;
    let found = out
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let require = std::env::var("SLUICE_REQUIRE_IMAGE").is_ok_and(|v| v == "1");
    assert!(
        found.is_some() || !require,
        "SLUICE_REQUIRE_IMAGE=1 but containerd's importer is not built (scripts/containerd-import build)"
    );
    found
}

fn oci_image(args: &[&str]) -> String {
    kubelet::oci_image(args).unwrap()
}

/// Every file and directory under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

async fn wait_ready<K>(api: &Api<K>, name: &str, pod: &mut Container) -> K
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
    K: k8s_openapi::serde::Serialize,
{
    let start = Instant::now();
    loop {
        pod.assert_running();
        let obj = api.get(name).await.unwrap();
        let v = serde_json::to_value(&obj).unwrap();
        let ready = v["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            return obj;
        }
        assert!(
            start.elapsed() < WAIT,
            "{name} not Ready: {}\ncontroller log:\n{}",
            v["status"],
            pod.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_image_runs_as_a_kubelet_runs_it_over_https_and_ssh() {
    let Some((archive, bwrap)) = prerequisites() else {
        return;
    };
    let Ok(sshd) = SshServer::start() else {
        return eprintln!("SKIPPED: sshd is not installed (scripts/install-deps installs it)");
    };
    let work = tempfile::tempdir().unwrap();
    let image = Image::unpack(&archive, work.path()).unwrap();
    let (rootfs, config) = (image.rootfs.clone(), image.config.clone());
    // The image holds sluice, CA certificates and the user database: no
    // shell, no ssh, no git, no shared library.
    assert_eq!(
        tree(&rootfs),
        [
            "etc",
            "etc/group",
            "etc/nsswitch.conf",
            "etc/passwd",
            "etc/ssl",
            "etc/ssl/certs",
            "etc/ssl/certs/ca-certificates.crt",
            "home",
            "home/nonroot",
            "tmp",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/sluice",
        ]
    );
    assert_eq!(config["config"]["User"], "65532:65532");
    // Reproducible: the same binary and CA bundle give the same archive.
    let built: Vec<PathBuf> = (0..2)
        .map(|i| {
            let out = work.path().join(format!("again-{i}.tar"));
            oci_image(&[
                "build",
                "--binary",
                rootfs.join("usr/local/bin/sluice").to_str().unwrap(),
                "--ca-bundle",
                rootfs
                    .join("etc/ssl/certs/ca-certificates.crt")
                    .to_str()
                    .unwrap(),
                "--name",
                "registry.test/sluice:v1",
                "--epoch",
                "1700000000",
                "--out",
                out.to_str().unwrap(),
            ]);
            out
        })
        .collect();
    assert!(
        std::fs::read(&built[0]).unwrap() == std::fs::read(&built[1]).unwrap(),
        "two builds from the same inputs differ"
    );
    // k3s imports it as it is: containerd's own importer (what `k3s ctr
    // images import` and k3s's air-gap import run) takes the archive, names
    // the image as `sluice install` expects it, and finds every blob.
    match containerd_import() {
        Some(import) => {
            let out = std::process::Command::new(import)
                .arg(&archive)
                .arg(work.path().join("containerd-store"))
                .output()
                .expect("running containerd-import");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "containerd refused the archive: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let expected = format!(
                "imported ghcr.io/sluice-gitops/sluice:v{} sha256:",
                env!("CARGO_PKG_VERSION")
            );
            assert!(
                stdout.starts_with(&expected) && stdout.trim_end().ends_with("(1 layers)"),
                "{stdout}"
            );
        }
        None => eprintln!(
            "SKIPPED (the import part only): containerd's importer is not built (make image-import-check)"
        ),
    }

    let node = Kubelet::new(bwrap, image, work.path().join("pods")).unwrap();

    let (client, ns) = setup("image").await;
    let ns = ns.name().to_string();
    // `sluice install` as a user types it: RBAC, the Deployment with this
    // image. The real controllers make its ReplicaSet and Pod, the real
    // scheduler puts the Pod on a simulated node; this test is that node's
    // kubelet for it: it runs the Pod the API server holds.
    let image_ref = "registry.test/sluice:image-test";
    let out = sluice(&[
        "install",
        "-n",
        &ns,
        "--helmrelease",
        "--image",
        image_ref,
        "--timeout",
        "2m",
    ])
    .expect(0);
    assert!(out.stderr.contains("Deployment"), "{}", out.stderr);
    let start = Instant::now();
    let pod_object = loop {
        let scheduled = kubelet::scheduled_pods(&client, &ns, "app=sluice")
            .await
            .unwrap();
        if let Some(p) = scheduled.into_iter().next() {
            break p;
        }
        assert!(
            start.elapsed() < WAIT,
            "no Pod of the sluice Deployment was scheduled"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let pod_value = serde_json::to_value(&pod_object).unwrap();
    assert_eq!(pod_value["spec"]["containers"][0]["image"], image_ref);
    let sa_name = pod_value["spec"]["serviceAccountName"].as_str().unwrap();

    // Two repositories: one served over HTTPS, one over SSH.
    let https_repo = Repo::new("web");
    https_repo.write("deploy/cm.yaml", &configmap_yaml("from-https"));
    https_repo.write(
        "charts/demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    );
    https_repo.write("charts/demo/values.yaml", "greeting: hello\n");
    https_repo.write(
        "charts/demo/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-values\n\
         data:\n  greeting: {{ .Values.greeting | quote }}\n",
    );
    let https_commit = https_repo.commit("web");
    https_repo.push("main");
    let git = GitServer::start_tls(&https_repo.served_root(), Some(("flux", "s3cret"))).await;
    let ssh_repo = Repo::new("infra");
    ssh_repo.write("deploy/cm.yaml", &configmap_yaml("from-ssh"));
    let ssh_commit = ssh_repo.commit("infra");
    ssh_repo.push("main");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for (name, data) in [
        (
            "https-auth",
            json!({"username": "flux", "password": "s3cret", "ca.crt": git.ca_pem().unwrap()}),
        ),
        (
            "ssh-auth",
            json!({"identity": sshd.identity(), "known_hosts": sshd.known_hosts()}),
        ),
    ] {
        secrets
            .patch(
                name,
                &PatchParams::apply("sluice-test").force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
                                     "metadata": {"name": name}, "stringData": data})),
            )
            .await
            .unwrap();
    }
    let gitrepos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let kss: Api<Kustomization> = Api::namespaced(client.clone(), &ns);
    for (name, url, secret) in [
        ("web", git.url("web"), "https-auth"),
        ("infra", sshd.url(&ssh_repo.bare), "ssh-auth"),
    ] {
        gitrepos
            .patch(
                name,
                &PatchParams::apply("sluice-test").force(),
                &Patch::Apply(json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                    "metadata": {"name": name},
                    "spec": {"url": url, "interval": "1m", "ref": {"branch": "main"},
                             "secretRef": {"name": secret}},
                })),
            )
            .await
            .unwrap();
        kss.patch(
            name,
            &PatchParams::apply("sluice-test").force(),
            &Patch::Apply(json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": name},
                "spec": {"interval": "10m", "path": "./deploy", "prune": true,
                         "targetNamespace": ns,
                         "sourceRef": {"kind": "GitRepository", "name": name}},
            })),
        )
        .await
        .unwrap();
    }

    let hrs: Api<HelmRelease> = Api::namespaced(client.clone(), &ns);
    hrs.patch(
        "demo",
        &PatchParams::apply("sluice-test").force(),
        &Patch::Apply(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "demo"},
            "spec": {"interval": "10m", "values": {"greeting": "from-helm"},
                     "chart": {"spec": {"chart": "./charts/demo",
                               "sourceRef": {"kind": "GitRepository", "name": "web"}}}},
        })),
    )
    .await
    .unwrap();

    let ports: BTreeMap<String, u16> = ["--metrics-addr", "--health-addr", "--storage-addr"]
        .into_iter()
        .map(|f| (f.to_string(), free_port()))
        .collect();
    let log = repo_root().join(format!("target/tmp/image-test-{}.log", std::process::id()));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    // This test is the kubelet of the Pod's node: it runs the Pod.
    let mut pod = node.run(&client, &pod_object, &ports, log).await.unwrap();

    for (name, commit) in [("web", &https_commit), ("infra", &ssh_commit)] {
        let gr = wait_ready(&gitrepos, name, &mut pod).await;
        let artifact = gr.status.unwrap().artifact.unwrap();
        assert_eq!(artifact.revision, format!("main@sha1:{commit}"));
        // Served by the container, at the path of its advertised URL.
        let path = artifact.url.splitn(4, '/').nth(3).unwrap().to_string();
        let url = format!("http://127.0.0.1:{}/{path}", ports["--storage-addr"]);
        let body = http_get(&url).await;
        assert!(body.starts_with(&[0x1f, 0x8b]), "{url}: not a tar.gz");
        wait_ready(&kss, name, &mut pod).await;
    }
    wait_ready(&hrs, "demo", &mut pod).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for name in ["from-https", "from-ssh", "demo-values"] {
        assert!(
            cms.get_opt(name).await.unwrap().is_some(),
            "{name} not applied"
        );
    }
    let released = cms
        .get("demo-values")
        .await
        .unwrap()
        .data
        .unwrap_or_default();
    assert_eq!(
        released.get("greeting").map(String::as_str),
        Some("from-helm")
    );
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.demo.v1")
            .await
            .unwrap()
            .is_some(),
        "the release is stored as Helm stores it"
    );
    // What the controller applied it could not have written as itself: its
    // own account may not create ConfigMaps or Secrets, the reconciler may.
    for (account, allowed) in [(sa_name, false), ("sluice-reconciler", true)] {
        for resource in ["configmaps", "secrets"] {
            assert_eq!(
                may(
                    &client,
                    &format!("system:serviceaccount:{ns}:{account}"),
                    &ns,
                    resource
                )
                .await,
                allowed,
                "{account} create {resource}"
            );
        }
    }
    // It really is the controller in the sandbox that did it.
    let log = pod.log();
    assert!(!log.contains("panicked"), "{log}");
    drop(pod);
    sluice(&["uninstall", "-n", &ns, "--keep-crds"]).expect(0);
}

/// Whether `user` may create `resource` in `ns` (a SubjectAccessReview).
async fn may(client: &Client, user: &str, ns: &str, resource: &str) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let groups = vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_string(),
    ];
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some("create".into()),
                resource: Some(resource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
}

fn configmap_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

/// A plain HTTP GET (the artifact server), without an HTTP client crate.
async fn http_get(url: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (hostport, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..head_end]);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{url}: {head}"
    );
    raw[head_end + 4..].to_vec()
}
