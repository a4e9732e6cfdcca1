//! sluice-oci against a real registry (Debian's `docker-registry`, started
//! per test by `sluice_testsupport::oci_registry`; skipped when absent).

use std::collections::BTreeMap;
use std::path::Path;

use sluice_oci::artifact::{self, Metadata, PullOptions};
use sluice_oci::manifest::{Descriptor, Index, OCI_INDEX, Platform};
use sluice_oci::{Client, ClientOptions, Credentials, ErrorKind, Keychain, Target};
use sluice_testsupport::oci_registry::{OciRegistry, RegistryConfig};

macro_rules! registry {
    ($config:expr) => {
        match OciRegistry::start($config) {
            Some(r) => r,
            None => return,
        }
    };
}

fn tag(t: &str) -> Target {
    Target::Tag(t.to_string())
}

/// A small tree of manifests, with a nested directory and an ignored file.
fn tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("apps/podinfo")).unwrap();
    std::fs::write(
        dir.join("apps/podinfo/deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources:\n- apps/podinfo/deploy.yaml\n",
    )
    .unwrap();
    std::fs::write(dir.join("big.bin"), vec![7u8; 200_000]).unwrap();
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn push(reg: &OciRegistry, client: &Client, repo: &str, t: &str, dir: &Path) -> artifact::Pushed {
    let meta = Metadata {
        source: Some("https://github.com/org/repo".into()),
        revision: Some(format!("main@sha1:{}", "a".repeat(40))),
        ..Metadata::default()
    };
    artifact::push_artifact(
        client,
        &reg.reference(repo),
        t,
        dir,
        &meta,
        &["*.bin".into()],
    )
    .unwrap()
}

#[test]
fn push_then_pull_round_trips_the_files() {
    let reg = registry!(RegistryConfig::anonymous());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "org/manifests", "v1.0.0", src.path());
    assert!(
        pushed.revision().starts_with("v1.0.0@sha256:"),
        "{}",
        pushed.revision()
    );

    let out = tempfile::tempdir().unwrap();
    let pulled = artifact::pull_artifact(
        &client,
        &reg.reference("org/manifests"),
        &tag("v1.0.0"),
        out.path(),
        &PullOptions::default(),
    )
    .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(
        pulled.metadata.source.as_deref(),
        Some("https://github.com/org/repo")
    );
    assert!(pulled.metadata.created.is_some());
    let mut want = files(src.path());
    want.remove("big.bin");
    assert_eq!(
        files(out.path()),
        want,
        "ignored files stay out, the rest is byte-equal"
    );

    // Flux's format: config `{}`, one content layer, the annotations.
    let m = client
        .manifest(&reg.reference("org/manifests"), &tag("v1.0.0"))
        .unwrap();
    assert_eq!(m.descriptor.digest, pushed.digest);
    assert_eq!(
        m.manifest.config.media_type,
        artifact::FLUX_CONFIG_MEDIA_TYPE
    );
    assert_eq!(m.manifest.config.size, 2);
    assert_eq!(m.manifest.layers.len(), 1);
    assert_eq!(
        m.manifest.layers[0].media_type,
        artifact::FLUX_CONTENT_MEDIA_TYPE
    );
    let ann = m.manifest.annotations();
    assert_eq!(
        ann[artifact::ANNOTATION_REVISION],
        format!("main@sha1:{}", "a".repeat(40))
    );

    // A second push of the same tree skips the blobs the registry has.
    reg.reset_requests();
    push(&reg, &client, "org/manifests", "v1.0.1", src.path());
    assert_eq!(
        reg.count("POST", "/blobs/uploads/"),
        0,
        "{:?}",
        reg.requests()
    );
    assert_eq!(reg.count("PUT", "/manifests/v1.0.1"), 1);
}

#[test]
fn tags_are_listed_across_pages() {
    let reg = registry!(RegistryConfig::anonymous());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let names = ["1.0.0", "1.1.0", "2.0.0-rc.1", "latest", "v1.2.0"];
    for t in names {
        push(&reg, &client, "paged", t, src.path());
    }
    let small = Client::new(ClientOptions {
        tags_page_size: 2,
        ..reg.client_options()
    })
    .unwrap();
    reg.reset_requests();
    let mut tags = small.list_tags(&reg.reference("paged")).unwrap();
    tags.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(tags, want);
    assert_eq!(reg.count("GET", "/tags/list"), 3, "{:?}", reg.requests());

    // Flux's ref.semver (+ semverFilter) over the listing.
    let pick = |c: &str, f: Option<&str>| {
        sluice_semver::latest_matching(&tags, c, f, sluice_semver::TagStyle::Plain)
            .map(str::to_string)
    };
    assert_eq!(pick("<2.0.0", None).unwrap(), "v1.2.0");
    assert_eq!(pick("<2.0.0", Some("^1")).unwrap(), "1.1.0");
    assert_eq!(pick("~2.0.0-0", None).unwrap(), "2.0.0-rc.1");
    assert_eq!(
        pick(">=3", None).unwrap_err().to_string(),
        "no match found for semver: >=3"
    );
}

#[test]
fn resolve_by_tag_and_digest_and_a_no_change_poll_is_one_head() {
    let reg = registry!(RegistryConfig::anonymous());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "app", "v1", src.path());
    let r = reg.reference("app");

    reg.reset_requests();
    let d = client.resolve(&r, &tag("v1")).unwrap();
    assert_eq!(d.digest, pushed.digest);
    assert_eq!(d.media_type, sluice_oci::manifest::OCI_MANIFEST);
    let seen = reg.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("HEAD", "/v2/app/manifests/v1")
    );
    assert_eq!(reg.count("GET", "/blobs/"), 0);

    let by_digest = client
        .resolve(&r, &Target::Digest(pushed.digest.clone()))
        .unwrap();
    assert_eq!(by_digest, d);
    let m = client
        .manifest(&r, &Target::Digest(pushed.digest.clone()))
        .unwrap();
    assert_eq!(m.descriptor.digest, pushed.digest);

    let e = client.resolve(&r, &tag("v9")).unwrap_err();
    eprintln!("missing tag: {e}");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("tag 'v9' not found in"), "{e}");
    let e = client
        .manifest(&reg.reference("nothing/here"), &tag("v1"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string().contains("MANIFEST_UNKNOWN") || e.to_string().contains("NAME_UNKNOWN"),
        "{e}"
    );
}

#[test]
fn an_index_resolves_to_its_linux_amd64_manifest() {
    let reg = registry!(RegistryConfig::anonymous());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "multi", "single", src.path());
    let r = reg.reference("multi");
    let single = client.resolve(&r, &tag("single")).unwrap();
    let mut entry = Descriptor::new(
        single.media_type.clone(),
        single.digest.clone(),
        single.size,
    );
    entry.platform = Some(Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    });
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: vec![entry],
        annotations: None,
    };
    let raw = serde_json::to_vec(&index).unwrap();
    let index_digest = client
        .push_manifest(&r, &tag("multi"), &raw, OCI_INDEX)
        .unwrap();
    let m = client.manifest(&r, &tag("multi")).unwrap();
    assert_eq!(m.descriptor.digest, pushed.digest);
    assert_eq!(m.index_digest.as_deref(), Some(index_digest.as_str()));
}

#[test]
fn basic_auth_right_and_wrong() {
    let reg = registry!(RegistryConfig::basic("flux", "s3cr3t-pass"));
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "private/app", "v1", src.path());
    let r = reg.reference("private/app");
    assert_eq!(
        client.resolve(&r, &tag("v1")).unwrap().digest,
        pushed.digest
    );
    // The challenge is remembered: a poll sends the credentials at once.
    reg.reset_requests();
    client.resolve(&r, &tag("v1")).unwrap();
    assert_eq!(reg.requests().len(), 1, "{:?}", reg.requests());

    let wrong = Client::new(ClientOptions {
        keychain: Keychain::with_credentials(Credentials::basic("flux", "wrong-password")),
        ..reg.client_options()
    })
    .unwrap();
    let e = wrong.resolve(&r, &tag("v1")).unwrap_err();
    eprintln!("wrong basic credentials: {e}");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.to_string().contains("wrong-password"), "{e}");
    assert!(e.to_string().contains("401"), "{e}");

    let anonymous = Client::new(ClientOptions {
        keychain: Keychain::anonymous(),
        ..reg.client_options()
    })
    .unwrap();
    let e = anonymous.list_tags(&r).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");

    // A dockerconfigjson keyed by the registry host works too.
    let config = format!(
        r#"{{"auths":{{"https://{}":{{"username":"flux","password":"s3cr3t-pass"}}}}}}"#,
        reg.host()
    );
    let keychain = Keychain::anonymous()
        .with_config(sluice_oci::DockerConfig::parse(config.as_bytes(), "test").unwrap());
    let from_config = Client::new(ClientOptions {
        keychain,
        ..reg.client_options()
    })
    .unwrap();
    assert_eq!(from_config.list_tags(&r).unwrap(), ["v1"]);
}

#[test]
fn tls_with_the_ca_and_not_without() {
    let reg = registry!(RegistryConfig::tls());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "tls/app", "v1", src.path());
    let r = reg.reference("tls/app");
    assert_eq!(
        client.resolve(&r, &tag("v1")).unwrap().digest,
        pushed.digest
    );

    let no_ca = Client::new(ClientOptions {
        tls: Default::default(),
        ..reg.client_options()
    })
    .unwrap();
    let e = no_ca.resolve(&r, &tag("v1")).unwrap_err();
    eprintln!("TLS without the CA: {e}");
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.to_string().contains("https://127.0.0.1"), "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let reg = registry!(RegistryConfig::mtls());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    push(&reg, &client, "mtls/app", "v1", src.path());
    let mut opts = reg.client_options();
    opts.tls.client_cert_pem = None;
    opts.tls.client_key_pem = None;
    let e = Client::new(opts)
        .unwrap()
        .resolve(&reg.reference("mtls/app"), &tag("v1"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
}

#[test]
fn plain_http_with_insecure_and_by_fallback_on_loopback() {
    let reg = registry!(RegistryConfig::anonymous());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    push(&reg, &reg.client(), "plain", "v1", src.path());
    // Without `insecure`, a loopback registry without TLS is tried over plain
    // HTTP, as go-containerregistry does.
    let fallback = Client::new(ClientOptions {
        insecure: false,
        ..reg.client_options()
    })
    .unwrap();
    assert_eq!(fallback.list_tags(&reg.reference("plain")).unwrap(), ["v1"]);
}

#[test]
fn unreachable_registry_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    })
    .unwrap();
    let r = sluice_oci::Reference::new(&format!("127.0.0.1:{port}"), "app").unwrap();
    let e = client.resolve(&r, &tag("v1")).unwrap_err();
    eprintln!("unreachable: {e}");
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn blobs_are_size_capped_and_digest_checked() {
    let reg = registry!(RegistryConfig::anonymous());
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    push(&reg, &client, "blobs", "v1", src.path());
    let r = reg.reference("blobs");
    let m = client.manifest(&r, &tag("v1")).unwrap();
    let layer = m.manifest.layers[0].clone();

    let mut sink = Vec::new();
    let e = client
        .fetch_blob(&r, &layer.digest, &mut sink, 10)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    assert!(e.to_string().contains(&layer.digest), "{e}");

    let out = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        max_layer_bytes: 10,
        ..PullOptions::default()
    };
    let e = artifact::pull_artifact(&client, &r, &tag("v1"), out.path(), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");

    // Corrupt the stored blob: same size, other bytes.
    let path = reg.blob_path(&layer.digest);
    let mut data = std::fs::read(&path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&path, data).unwrap();
    let e = client
        .fetch_blob(&r, &layer.digest, &mut Vec::new(), u64::MAX)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    eprintln!("digest mismatch: {e}");
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    let e = artifact::pull_artifact(&client, &r, &tag("v1"), out.path(), &PullOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing unpacked"
    );
}

#[test]
fn bearer_tokens_anonymous_like_ghcr() {
    let reg = registry!(RegistryConfig::bearer(None));
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "public/app", "v1", src.path());
    let r = reg.reference("public/app");

    let fresh = reg.client();
    reg.reset_requests();
    assert_eq!(fresh.resolve(&r, &tag("v1")).unwrap().digest, pushed.digest);
    // 401, token, retry.
    assert_eq!(reg.count("GET", "/token"), 1, "{:?}", reg.requests());
    assert_eq!(reg.count("HEAD", "/manifests/v1"), 2);
    // Cached: the next poll is one request.
    reg.reset_requests();
    fresh.resolve(&r, &tag("v1")).unwrap();
    assert_eq!(reg.requests().len(), 1, "{:?}", reg.requests());
    let out = tempfile::tempdir().unwrap();
    artifact::pull_artifact(&fresh, &r, &tag("v1"), out.path(), &PullOptions::default()).unwrap();
    assert_eq!(reg.count("GET", "/token"), 0, "{:?}", reg.requests());
}

#[test]
fn bearer_tokens_with_credentials() {
    let reg = registry!(RegistryConfig::bearer(Some(("robot", "t0ken-pass"))));
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let client = reg.client();
    let pushed = push(&reg, &client, "team/app", "v2", src.path());
    let r = reg.reference("team/app");
    assert_eq!(
        client.resolve(&r, &tag("v2")).unwrap().digest,
        pushed.digest
    );

    let wrong = Client::new(ClientOptions {
        keychain: Keychain::with_credentials(Credentials::basic("robot", "nope-nope")),
        ..reg.client_options()
    })
    .unwrap();
    let e = wrong.resolve(&r, &tag("v2")).unwrap_err();
    eprintln!("wrong bearer credentials: {e}");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(
        e.to_string().contains("the credentials were refused"),
        "{e}"
    );
    assert!(!e.to_string().contains("nope-nope"), "{e}");
}

#[test]
fn helm_charts_as_helm_pushes_them() {
    let reg = registry!(RegistryConfig::anonymous());
    let tgz = sluice_oci::helm::build_chart_tgz(
        "podinfo",
        "6.5.0+build.1",
        &[("values.yaml", "replicas: 1\n")],
    )
    .unwrap();
    let pushed = reg.push_chart("charts", &tgz);
    assert_eq!(pushed.reference.repository(), "charts/podinfo");
    assert_eq!(pushed.tag, "6.5.0_build.1");
    let client = reg.client();
    let chart = sluice_oci::helm::pull_chart(
        &client,
        &reg.reference("charts/podinfo"),
        &tag("6.5.0_build.1"),
        sluice_oci::helm::DEFAULT_MAX_CHART_BYTES,
    )
    .unwrap();
    assert_eq!(chart.tgz, tgz);
    assert_eq!(
        chart.manifest.manifest.config.media_type,
        sluice_oci::helm::CHART_CONFIG_MEDIA_TYPE
    );
    let config = client
        .fetch_blob_bytes(
            &reg.reference("charts/podinfo"),
            &chart.manifest.manifest.config.digest,
            1 << 20,
        )
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["name"], "podinfo");
    let tags = client.list_tags(&reg.reference("charts/podinfo")).unwrap();
    assert_eq!(
        sluice_semver::latest_matching(&tags, "~6.5", None, sluice_semver::TagStyle::Helm),
        Ok("6.5.0_build.1")
    );
}

#[test]
fn the_local_helm_repository_serves_an_index_and_charts() {
    use sluice_testsupport::oci_registry::HelmRepoServer;
    sluice_oci::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let server = HelmRepoServer::start(dir.path(), Some(("helm", "repo-pass")));
    let tgz = sluice_oci::helm::build_chart_tgz("podinfo", "1.2.0", &[]).unwrap();
    assert_eq!(server.add_chart(&tgz), "podinfo-1.2.0.tgz");
    server.add_chart(&sluice_oci::helm::build_chart_tgz("podinfo", "1.10.0", &[]).unwrap());
    let http = reqwest::blocking::Client::new();
    let denied = http
        .get(format!("{}/index.yaml", server.url()))
        .send()
        .unwrap();
    assert_eq!(denied.status(), 401);
    let index = http
        .get(format!("{}/index.yaml", server.url()))
        .basic_auth("helm", Some("repo-pass"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let index: serde_json::Value = serde_norway::from_str(&index).unwrap();
    let versions: Vec<&str> = index["entries"]["podinfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.10.0", "1.2.0"]);
    assert_eq!(
        index["entries"]["podinfo"][1]["urls"][0],
        "podinfo-1.2.0.tgz"
    );
    let chart = http
        .get(format!("{}/podinfo-1.2.0.tgz", server.url()))
        .basic_auth("helm", Some("repo-pass"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&chart[..], &tgz[..]);
    assert_eq!(server.count("/index.yaml"), 2);
    assert_eq!(server.total(), 3);
}
