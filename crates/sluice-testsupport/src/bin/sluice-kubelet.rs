//! `sluice-kubelet`: the kubelet of the simulated nodes for the Pods of one
//! Deployment whose image is a local OCI archive (see
//! `sluice_testsupport::kubelet`). `make demo` runs it so that the `sluice`
//! Deployment that `sluice bootstrap` installs really runs in the cluster.
//!
//!     sluice-kubelet --namespace NS --selector app=sluice \
//!         --image target/image/sluice.oci.tar --dir WORK
//!
//! Every second it runs the scheduled Pods of the selector that are not
//! running yet, and stops the containers of Pods deleted or replaced (a
//! rollout). Each container's output is in `WORK/<pod>.log`. Listening flags
//! (`--metrics-addr`, `--health-addr`, `--storage-addr`) get free ports on
//! 127.0.0.1, printed with the Pod. Reads `KUBECONFIG`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sluice_testsupport::kubelet::{self, Container, Image, Kubelet};

const LISTENING: [&str; 3] = ["--metrics-addr", "--health-addr", "--storage-addr"];

struct Args {
    namespace: String,
    selector: String,
    image: PathBuf,
    dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut given: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        given.insert(flag, value);
    }
    let mut take = |f: &str| {
        given
            .remove(f)
            .with_context(|| format!("{f} is required (--namespace, --selector, --image, --dir)"))
    };
    let a = Args {
        namespace: take("--namespace")?,
        selector: take("--selector")?,
        image: take("--image")?.into(),
        dir: take("--dir")?.into(),
    };
    if let Some(extra) = given.keys().next() {
        anyhow::bail!("unknown flag {extra}");
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let bwrap = kubelet::bwrap().context("bubblewrap is not installed (scripts/install-deps)")?;
    std::fs::create_dir_all(&a.dir)?;
    let image = Image::unpack(&a.image, &a.dir)
        .with_context(|| format!("unpacking {}", a.image.display()))?;
    let node = Kubelet::new(bwrap, image, a.dir.join("pods"))?;
    let client = sluice_testsupport::client().await;
    let mut running: HashMap<String, (String, Container)> = HashMap::new();
    loop {
        let pods = kubelet::scheduled_pods(&client, &a.namespace, &a.selector).await?;
        let live: Vec<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        running.retain(|uid, (name, c)| {
            let keep = live.contains(uid);
            if !keep {
                println!("stopping pod {}/{name}", a.namespace);
            } else if c.exited() {
                println!("pod {}/{name} exited; its log:\n{}", a.namespace, c.log());
                return false;
            }
            keep
        });
        for pod in &pods {
            let (Some(uid), Some(name)) = (&pod.metadata.uid, &pod.metadata.name) else {
                continue;
            };
            if running.contains_key(uid) {
                continue;
            }
            let ports: BTreeMap<String, u16> = LISTENING
                .iter()
                .map(|f| (f.to_string(), sluice_testsupport::free_port()))
                .collect();
            let log = a.dir.join(format!("{name}.log"));
            let c = node.run(&client, pod, &ports, log.clone()).await?;
            println!(
                "running pod {}/{name} (log {}; {})",
                a.namespace,
                log.display(),
                ports
                    .iter()
                    .map(|(f, p)| format!("{f}=127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            running.insert(uid.clone(), (name.clone(), c));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
