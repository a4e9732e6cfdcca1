//! `nats` Providers on the control plane against a real NATS server (nats-server, built from
//! its Go module by `scripts/build-nats-server`): events are published on the Provider's
//! subject, with a user and password, or with an nkey whose signature of the server's nonce
//! the server checks. A subscriber on the same server receives them.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use sluice_api::{Alert, Kustomization, Provider};
use sluice_notify::notifier::nats::Seed;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::alerts::create;

/// The nats-server binary: `SLUICE_NATS_SERVER`, else the one the script caches.
fn nats_server() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_NATS_SERVER") {
        return Some(p.into());
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))?;
    let p = cache.join("sluice/nats-server-v2.15.3/nats-server");
    p.is_file().then_some(p)
}

/// A nats-server on a free port with two users: `flux`/`n4ts-pass` and the nkey `user`.
struct Server {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(bin: &std::path::Path, user: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\nauthorization {{\n  users = [\n    {{user: flux, password: n4ts-pass}}\n    {{nkey: {user}}}\n  ]\n}}\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server {
            child,
            port,
            _dir: dir,
        }
    }
}

/// A subscriber on `subject`, as `flux`.
struct Subscriber {
    reader: BufReader<tokio::net::TcpStream>,
}

impl Subscriber {
    async fn start(port: u16, subject: &str) -> Subscriber {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut reader = BufReader::new(tcp);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("INFO "), "{line}");
        reader
            .get_mut()
            .write_all(
                format!(
                    "CONNECT {{\"verbose\":false,\"user\":\"flux\",\"pass\":\"n4ts-pass\"}}\r\nSUB {subject} 1\r\nPING\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            if line.trim_end() == "PONG" {
                break;
            }
            assert!(!line.starts_with("-ERR"), "{line}");
        }
        Subscriber { reader }
    }

    /// The next message's payload.
    async fn next(&mut self) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line))
                .await
                .expect("a message within 30 s")
                .unwrap();
            if line.trim_end() == "PING" {
                self.reader.get_mut().write_all(b"PONG\r\n").await.unwrap();
                continue;
            }
            if line.starts_with("MSG ") {
                break;
            }
        }
        let len: usize = line.split_whitespace().last().unwrap().parse().unwrap();
        let mut payload = vec![0u8; len + 2];
        self.reader.read_exact(&mut payload).await.unwrap();
        serde_json::from_slice(&payload[..len]).unwrap()
    }
}

#[tokio::test]
async fn events_are_published_on_nats_subjects_with_a_password_or_an_nkey() {
    let Some(bin) = nats_server() else {
        eprintln!(
            "SKIPPED: nats-server is not built (scripts/build-nats-server builds it; make test does)"
        );
        return;
    };
    let seed = Seed::encode(20 << 3, &[42u8; 32]);
    let user = Seed::parse(&seed).unwrap().public_key().unwrap();
    let server = Server::start(&bin, &user).await;
    let mut password_sub = Subscriber::start(server.port, "flux.password").await;
    let mut nkey_sub = Subscriber::start(server.port, "flux.nkey").await;

    let (client, ns) = crate::namespace("nats").await;
    let n = ns.name().to_owned();
    let secrets = Api::<Secret>::namespaced(client.clone(), &n);
    create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "nats-password", "namespace": n},
            "stringData": {"username": "flux", "password": "n4ts-pass"}}),
    )
    .await;
    create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "nats-nkey", "namespace": n},
            "stringData": {"nkey": seed}}),
    )
    .await;
    let providers: Api<Provider> = Api::namespaced(client.clone(), &n);
    let alerts: Api<Alert> = Api::namespaced(client.clone(), &n);
    let address = format!("nats://127.0.0.1:{}", server.port);
    for (name, subject, secret) in [
        ("by-password", "flux.password", "nats-password"),
        ("by-nkey", "flux.nkey", "nats-nkey"),
    ] {
        create(
            &providers,
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": name, "namespace": n},
            "spec": {"type": "nats", "address": address, "channel": subject,
                "secretRef": {"name": secret}}}),
        )
        .await;
        create(&alerts, json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": name, "namespace": n},
            "spec": {"providerRef": {"name": name}, "eventSources": [{"kind": "Kustomization", "name": "*"}]}}))
        .await;
    }
    let kss: Api<Kustomization> = Api::namespaced(client.clone(), &n);
    create(&kss, json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": n},
        "spec": {"interval": "1h", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}}}))
    .await;
    let apps = kss.get("apps").await.unwrap();

    let (recorder, _, stop, task) = crate::notifier(&client, &n).await;
    recorder
        .publish(
            &apps,
            Some("main@sha1:0123456789abcdef0123456789abcdef01234567"),
            &[sluice_runtime::Event::warning(
                "HealthCheckFailed".to_string(),
                "Health check failed after 5m0s: Deployment/apps/web: 0/1 ready",
            )],
        )
        .await;
    for sub in [&mut password_sub, &mut nkey_sub] {
        let event = sub.next().await;
        assert_eq!(event["involvedObject"]["kind"], "Kustomization");
        assert_eq!(event["involvedObject"]["name"], "apps");
        assert_eq!(event["reason"], "HealthCheckFailed");
        assert_eq!(event["severity"], "error");
        assert_eq!(
            event["message"],
            "Health check failed after 5m0s: Deployment/apps/web: 0/1 ready"
        );
        assert_eq!(
            event["metadata"]["revision"],
            "main@sha1:0123456789abcdef0123456789abcdef01234567"
        );
    }
    let _ = stop.send(());
    let _ = task.await;
}
