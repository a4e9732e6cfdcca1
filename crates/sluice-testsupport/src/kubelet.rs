//! A kubelet for the simulated nodes, for Pods whose image is a local OCI
//! archive (`make image`'s `target/image/sluice.oci.tar`).
//!
//! testenv's node simulator reports every Pod Running and Ready and runs
//! nothing. This runs a Pod's first container the way a kubelet and a
//! container runtime would, inside bubblewrap: the image's root filesystem
//! read-only and nothing of the host's, the container's user in a user
//! namespace with no capabilities, emptyDirs at `/data` and `/tmp`, a
//! ServiceAccount token bound to the Pod (as a kubelet projects it) with the
//! CA and namespace at `/var/run/secrets/kubernetes.io/serviceaccount`,
//! `KUBERNETES_SERVICE_HOST/PORT` set, `$(VAR)` expanded in the arguments
//! and the downward API's namespace and name filled in.
//!
//! The container shares the host's network (the API server and the test
//! servers listen on 127.0.0.1), so listening flags given in the Pod
//! (`--metrics-addr=:8080`...) are moved to the ports the caller gives, as
//! a Pod's own network namespace would leave its ports free.
//!
//! Used by `crates/sluice/tests/image.rs` and by the `sluice-kubelet`
//! binary that `make demo` runs to have sluice run in the cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::Value;

use crate::{kubeconfig_path, repo_root};

/// Where bubblewrap is, if installed (`scripts/install-deps` installs it).
pub fn bwrap() -> Option<PathBuf> {
    ["/usr/bin/bwrap", "/usr/local/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs `scripts/oci-image.py` with `args`; its standard output.
pub fn oci_image(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/oci-image.py"))
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "oci-image.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An image unpacked as a container runtime unpacks it.
pub struct Image {
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The image's configuration (`config.Entrypoint`, `config.Env`, `config.User`...).
    pub config: Value,
}

impl Image {
    /// Unpacks the OCI archive `archive` into `dir/rootfs`.
    pub fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<Image> {
        let rootfs = dir.join("rootfs");
        let (archive, root) = (path_str(archive)?, path_str(&rootfs)?);
        oci_image(&["unpack", archive, root])?;
        let config = serde_json::from_str(&oci_image(&["config", archive])?)?;
        Ok(Image { rootfs, config })
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
}

/// The API server's host, port and CA (PEM) from the test kubeconfig.
pub fn api_server() -> anyhow::Result<(String, u16, Vec<u8>)> {
    use base64::Engine as _;
    let kc: Value = serde_norway::from_str(&std::fs::read_to_string(kubeconfig_path())?)?;
    let cluster = &kc["clusters"][0]["cluster"];
    let server = cluster["server"].as_str().unwrap_or_default();
    let hostport = server.trim_start_matches("https://").trim_end_matches('/');
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("no port in the kubeconfig's server {server:?}"))?;
    let ca = base64::engine::general_purpose::STANDARD.decode(
        cluster["certificate-authority-data"]
            .as_str()
            .unwrap_or_default(),
    )?;
    Ok((host.to_string(), port.parse()?, ca))
}

/// The Pods in `ns` matching `selector` that the scheduler has placed on a
/// node and that are not being deleted.
pub async fn scheduled_pods(client: &Client, ns: &str, selector: &str) -> kube::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
        })
        .collect())
}

/// The kubelet of one image.
pub struct Kubelet {
    bwrap: PathBuf,
    image: Image,
    /// Where each Pod's volumes are made (`<dir>/<pod uid>/`).
    dir: PathBuf,
    api: (String, u16),
}

impl Kubelet {
    /// A kubelet running `image` with `bwrap`, the Pods' volumes under `dir`.
    /// Makes the mount points in the image's root filesystem, as a container
    /// runtime makes them in the container's own layer.
    pub fn new(bwrap: PathBuf, image: Image, dir: PathBuf) -> anyhow::Result<Kubelet> {
        for d in [
            "proc",
            "dev",
            "data",
            "tmp",
            "var/run/secrets/kubernetes.io/serviceaccount",
        ] {
            std::fs::create_dir_all(image.rootfs.join(d))?;
        }
        for f in ["etc/hosts", "etc/resolv.conf"] {
            std::fs::write(image.rootfs.join(f), "")?;
        }
        let (host, port, _) = api_server()?;
        Ok(Kubelet {
            bwrap,
            image,
            dir,
            api: (host, port),
        })
    }

    /// Runs the first container of `pod`, its output in `log`; listening
    /// flags named in `ports` are given those ports on 127.0.0.1.
    pub async fn run(
        &self,
        client: &Client,
        pod: &Pod,
        ports: &BTreeMap<String, u16>,
        log: PathBuf,
    ) -> anyhow::Result<Container> {
        let v = serde_json::to_value(pod)?;
        let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        let uid = v["metadata"]["uid"].as_str().unwrap_or_default();
        let spec = &v["spec"];
        let container = &spec["containers"][0];
        let volumes = self.dir.join(uid);
        let sa_dir = volumes.join("serviceaccount");
        let (data, tmp) = (volumes.join("data"), volumes.join("tmp"));
        for d in [&sa_dir, &data, &tmp] {
            std::fs::create_dir_all(d)?;
        }
        let account = spec["serviceAccountName"].as_str().unwrap_or("default");
        let token = bound_token(client, ns, account, pod).await?;
        let (_, _, ca) = api_server()?;
        std::fs::write(sa_dir.join("token"), token)?;
        std::fs::write(sa_dir.join("ca.crt"), ca)?;
        std::fs::write(sa_dir.join("namespace"), ns)?;

        let image = &self.image.config["config"];
        let mut env: BTreeMap<String, String> = image["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for e in container["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or_default().to_string();
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.namespace") => ns.to_string(),
                Some("metadata.name") => name.to_string(),
                Some(other) => anyhow::bail!("fieldRef {other} is not known to this kubelet"),
                None => e["value"].as_str().unwrap_or_default().to_string(),
            };
            env.insert(key, value);
        }
        env.insert("KUBERNETES_SERVICE_HOST".into(), self.api.0.clone());
        env.insert("KUBERNETES_SERVICE_PORT".into(), self.api.1.to_string());
        // The kubelet expands $(VAR) in args from the container's env.
        let expand = |s: &str| {
            env.iter()
                .fold(s.to_string(), |s, (k, v)| s.replace(&format!("$({k})"), v))
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        };
        let mut argv = match strings(&container["command"]) {
            c if c.is_empty() => strings(&image["Entrypoint"]),
            c => c,
        };
        for a in strings(&container["args"]) {
            let a = expand(&a);
            argv.push(match a.split_once('=') {
                Some((flag, _)) if ports.contains_key(flag) => {
                    format!("{flag}=127.0.0.1:{}", ports[flag])
                }
                _ => a,
            });
        }
        let sc = &spec["securityContext"];
        let (uid_s, gid_s) = match image["User"].as_str().and_then(|u| u.split_once(':')) {
            Some((u, g)) => (u.to_string(), g.to_string()),
            None => ("65532".to_string(), "65532".to_string()),
        };
        let user = sc["runAsUser"].as_i64().map_or(uid_s, |u| u.to_string());
        let group = sc["fsGroup"].as_i64().map_or(gid_s, |g| g.to_string());
        let mut cmd = Command::new(&self.bwrap);
        cmd.args(["--unshare-user", "--uid", &user, "--gid", &group])
            .args([
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--hostname",
                name,
            ])
            .args([
                "--die-with-parent",
                "--new-session",
                "--cap-drop",
                "ALL",
                "--clearenv",
            ])
            .arg("--ro-bind")
            .args([&self.image.rootfs, Path::new("/")])
            .args(["--proc", "/proc", "--dev", "/dev"])
            .arg("--bind")
            .args([&data, Path::new("/data")])
            .arg("--bind")
            .args([&tmp, Path::new("/tmp")])
            .arg("--ro-bind")
            .args([
                &sa_dir,
                Path::new("/var/run/secrets/kubernetes.io/serviceaccount"),
            ])
            // What a kubelet mounts into every container.
            .args(["--ro-bind", "/etc/hosts", "/etc/hosts"])
            .args(["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]);
        for (k, v) in &env {
            cmd.args(["--setenv", k, v]);
        }
        let file = std::fs::File::create(&log)?;
        let child = cmd
            .arg("--")
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Container { child, log })
    }
}

/// A token of `account` bound to `pod`, as a kubelet projects it.
async fn bound_token(
    client: &Client,
    ns: &str,
    account: &str,
    pod: &Pod,
) -> anyhow::Result<String> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    sas.create_token_request(account, &PostParams::default(), &request)
        .await?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| anyhow::anyhow!("no token for ServiceAccount {ns}/{account}"))
}

/// A running container; killed when dropped.
pub struct Container {
    child: Child,
    log: PathBuf,
}

impl Container {
    /// What it has written.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Panics with the log if the container has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the container exited ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
