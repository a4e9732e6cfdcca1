//! The GitRepository controller against the local control plane, with Git
//! served over smart HTTP (`git http-backend`, optional basic auth) and over
//! `file://`.

use std::time::Duration;

use crate::support::*;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_api::meta;
use sluice_source::api::GitRepository;
use sluice_testsupport::forward_proxy::ForwardProxy;
use sluice_testsupport::{TestNamespace, client, wait_for};

const WAIT: Duration = Duration::from_secs(60);

async fn setup(prefix: &str) -> (kube::Client, TestNamespace, Api<GitRepository>, Harness) {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await;
    let api: Api<GitRepository> = ns.api();
    let harness = Harness::start(&client, ns.name()).await;
    (client, ns, api, harness)
}

#[tokio::test]
async fn branch_tag_semver_commit_and_name_are_selected() {
    let (_c, ns, api, _h) = setup("src-select").await;
    let repo = Repo::new("app");
    repo.write("deploy.yaml", "v: 0\n");
    let first = repo.commit("first");
    repo.push("main");
    git(&repo.work, &["tag", "v1.0.0"]);
    repo.write("deploy.yaml", "v: 1\n");
    let second = repo.commit("second");
    git(&repo.work, &["tag", "-a", "v1.1.0", "-m", "annotated"]);
    repo.write("deploy.yaml", "v: 2\n");
    let third = repo.commit("third");
    git(&repo.work, &["tag", "v2.0.0"]);
    git(
        &repo.work,
        &["push", "-q", "--force", "origin", "main", "--tags"],
    );
    git(
        &repo.work,
        &[
            "push",
            "-q",
            "origin",
            &format!("{second}:refs/pull/7/head"),
        ],
    );
    let server = GitServer::start(&repo.served_root(), None).await;
    let url = server.url("app");

    create(
        &api,
        "branch",
        json!({"url": url, "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    create(
        &api,
        "tag",
        json!({"url": url, "interval": "10m", "ref": {"tag": "v1.0.0"}}),
    )
    .await;
    create(
        &api,
        "semver",
        json!({"url": url, "interval": "10m", "ref": {"semver": ">=1.0.0 <2.0.0"}}),
    )
    .await;
    create(
        &api,
        "commit",
        json!({"url": url, "interval": "10m", "ref": {"commit": first}}),
    )
    .await;
    create(
        &api,
        "commit-on-branch",
        json!({"url": url, "interval": "10m", "ref": {"branch": "main", "commit": second}}),
    )
    .await;
    create(
        &api,
        "name",
        json!({"url": url, "interval": "10m", "ref": {"name": "refs/pull/7/head"}}),
    )
    .await;
    create(&api, "precedence", json!({"url": url, "interval": "10m", "ref": {"branch": "main", "tag": "v1.0.0", "semver": "1.x"}})).await;

    let cases = [
        ("branch", format!("main@sha1:{third}")),
        ("tag", format!("v1.0.0@sha1:{first}")),
        ("semver", format!("v1.1.0@sha1:{second}")),
        ("commit", format!("sha1:{first}")),
        ("commit-on-branch", format!("main@sha1:{second}")),
        ("name", format!("refs/pull/7/head@sha1:{second}")),
        ("precedence", format!("v1.1.0@sha1:{second}")),
    ];
    for (name, want) in cases {
        let gr = wait_for(&api, name, WAIT, is_ready).await;
        assert_eq!(revision(&gr).as_deref(), Some(want.as_str()), "{name}");
        let st = gr.status.as_ref().unwrap();
        let a = st.artifact.as_ref().unwrap();
        assert!(a.digest.starts_with("sha256:"), "{name}");
        assert!(
            a.path
                .starts_with(&format!("gitrepository/{}/{name}/", ns.name())),
            "{name}: {}",
            a.path
        );
        let (s, reason, msg) = condition(&gr, meta::ARTIFACT_IN_STORAGE_CONDITION).unwrap();
        assert_eq!((s.as_str(), reason.as_str()), ("True", "Succeeded"));
        assert_eq!(msg, format!("stored artifact for revision '{want}'"));
        assert!(
            gr.metadata
                .finalizers
                .as_ref()
                .unwrap()
                .contains(&meta::FINALIZER.to_string())
        );
    }
    // The tagged artifact holds the tagged content.
    let gr = api.get("tag").await.unwrap();
    let a = gr.status.unwrap().artifact.unwrap();
    let (code, body) = http_get(&a.url).await;
    assert_eq!(code, 200);
    assert_eq!(tar_file(&body, "deploy.yaml").as_deref(), Some("v: 0\n"));
    ns.delete().await;
}

#[tokio::test]
async fn new_commits_force_pushes_and_requests_are_picked_up_over_http() {
    let (client, ns, api, _h) = setup("src-http").await;
    let repo = Repo::new("app");
    repo.write("a.yaml", "a: 1\n");
    let c1 = repo.commit("one");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    create(
        &api,
        "app",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    assert_eq!(revision(&gr), Some(format!("main@sha1:{c1}")));
    let fetches = server.counters.fetches();
    assert!(fetches >= 1, "the first reconcile fetched");

    // A no-change poll (requested): one ref listing, no fetch, only
    // lastHandledReconcileAt changes.
    let rv_before = api.get("app").await.unwrap().metadata.resource_version;
    let ls_before = server.counters.ls_refs();
    let token = request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        g.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some(token.as_str())
    })
    .await;
    assert_eq!(revision(&gr), Some(format!("main@sha1:{c1}")));
    assert_eq!(
        server.counters.fetches(),
        fetches,
        "no fetch when nothing moved"
    );
    assert_eq!(
        server.counters.ls_refs(),
        ls_before + 1,
        "exactly one ref listing"
    );
    assert_ne!(gr.metadata.resource_version, rv_before);

    // No status write when nothing changed: wait a little, nothing moves.
    let rv = api.get("app").await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(api.get("app").await.unwrap().metadata.resource_version, rv);

    // A new commit is picked up.
    repo.write("a.yaml", "a: 2\n");
    let c2 = repo.commit("two");
    repo.push("main");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        revision(g) == Some(format!("main@sha1:{c2}"))
    })
    .await;
    let (code, body) = http_get(&gr.status.as_ref().unwrap().artifact.as_ref().unwrap().url).await;
    assert_eq!(code, 200);
    assert_eq!(tar_file(&body, "a.yaml").as_deref(), Some("a: 2\n"));

    // A force push to an unrelated history moves to the new commit.
    git(&repo.work, &["checkout", "-q", "--orphan", "rewritten"]);
    git(&repo.work, &["rm", "-rq", "--cached", "."]);
    repo.write("a.yaml", "a: rewritten\n");
    let c3 = repo.commit("rewritten history");
    repo.push("rewritten:main");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        revision(g) == Some(format!("main@sha1:{c3}"))
    })
    .await;
    assert!(is_ready(&gr));

    // Old artifacts are garbage collected: at most 2 kept.
    let dir = _h
        .storage
        .path()
        .join(format!("gitrepository/{}/app", ns.name()));
    let n = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tar.gz")
        })
        .count();
    assert_eq!(n, 2, "retention keeps the last two artifacts");

    // Events were recorded for new artifacts.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), ns.name());
    let mut found = false;
    for _ in 0..50 {
        let list = events.list(&Default::default()).await.unwrap();
        if list.items.iter().any(|e| {
            e.reason.as_deref() == Some("NewArtifact")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("rewritten history"))
        }) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<(Option<String>, Option<String>)> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason, e.note))
        .collect();
    assert!(
        found,
        "a NewArtifact event names the commit; events: {seen:?}"
    );
    ns.delete().await;
}

#[tokio::test]
async fn ignore_rules_and_served_artifact_digest() {
    let (_c, ns, api, _h) = setup("src-ignore").await;
    let repo = Repo::new("app");
    repo.write("kustomization.yaml", "resources: [deploy.yaml]\n");
    repo.write("deploy.yaml", "kind: Deployment\n");
    repo.write("logo.png", "png");
    repo.write("keep.png", "png");
    repo.write(".github/workflows/ci.yaml", "on: push\n");
    repo.write(".gitignore", "tmp/\n");
    repo.write(".sourceignore", "/secret.yaml\nnotes/\n");
    repo.write("secret.yaml", "x\n");
    repo.write("notes/todo.md", "x\n");
    repo.write("apps/.sourceignore", "local.yaml\n");
    repo.write("apps/local.yaml", "x\n");
    repo.write("apps/app.yaml", "x\n");
    repo.write("drafts/d.yaml", "x\n");
    repo.write(".sops.yaml", "x\n");
    repo.commit("files");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    create(
        &api,
        "app",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "main"}, "ignore": "/drafts/\n!keep.png\n"}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    let st = gr.status.as_ref().unwrap();
    assert_eq!(st.observed_ignore.as_deref(), Some("/drafts/\n!keep.png\n"));
    let a = st.artifact.as_ref().unwrap();
    assert!(
        a.url
            .starts_with(&format!("http://{}/gitrepository/", _h.artifact_addr))
    );
    let (code, body) = http_get(&a.url).await;
    assert_eq!(code, 200);
    assert_eq!(
        sluice_source::storage::digest_bytes(&body),
        a.digest.clone(),
        "served bytes match the digest"
    );
    assert_eq!(Some(body.len() as i64), a.size);
    let files = tar_listing(&body);
    assert_eq!(
        files,
        vec![
            ".sourceignore",
            "apps/",
            "apps/.sourceignore",
            "apps/app.yaml",
            "deploy.yaml",
            "keep.png",
            "kustomization.yaml"
        ],
    );

    // In-process consumers can read from disk.
    let storage = sluice_source::Storage::new(_h.storage.path(), &_h.artifact_addr.to_string());
    let out = tempfile::tempdir().unwrap();
    sluice_source::unpack_artifact(&storage, a, out.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("deploy.yaml")).unwrap(),
        "kind: Deployment\n"
    );

    // Changing spec.ignore rebuilds the artifact for the same commit.
    let patch = json!({"spec": {"ignore": "/drafts/\n*.png\n"}});
    api.patch("app", &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    let gr = wait_for(&api, "app", WAIT, |g| {
        is_ready(g)
            && g.status.as_ref().unwrap().observed_ignore.as_deref() == Some("/drafts/\n*.png\n")
    })
    .await;
    let a2 = gr.status.unwrap().artifact.unwrap();
    assert_eq!(a2.revision, a.revision);
    assert_ne!(a2.digest, a.digest);
    let (_, body) = http_get(&a2.url).await;
    assert!(!tar_listing(&body).contains(&"keep.png".to_string()));

    // The server refuses paths outside the storage and hidden paths.
    let (code, _) = http_get(&format!(
        "http://{}/.work/scratch.git/HEAD",
        _h.artifact_addr
    ))
    .await;
    assert_eq!(code, 404);
    let (code, _) = http_get(&format!(
        "http://{}/gitrepository/../../etc/passwd",
        _h.artifact_addr
    ))
    .await;
    assert_eq!(code, 404);
    ns.delete().await;
}

#[tokio::test]
async fn wrong_password_is_authentication_failed_without_the_password() {
    let (_c, ns, api, _h) = setup("src-auth").await;
    let repo = Repo::new("private");
    repo.write("a.yaml", "a: 1\n");
    let c1 = repo.commit("one");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), Some(("flux", "s3cr3t-right"))).await;
    let wrong = "wr0ng-pa55word-xyz";
    secret(
        &ns,
        "bad-auth",
        &[("username", "flux"), ("password", wrong)],
    )
    .await;
    secret(
        &ns,
        "good-auth",
        &[("username", "flux"), ("password", "s3cr3t-right")],
    )
    .await;
    create(&api, "bad", json!({"url": server.url("private"), "interval": "10m", "ref": {"branch": "main"}, "secretRef": {"name": "bad-auth"}})).await;
    create(
        &api,
        "none",
        json!({"url": server.url("private"), "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    create(&api, "good", json!({"url": server.url("private"), "interval": "10m", "ref": {"branch": "main"}, "secretRef": {"name": "good-auth"}})).await;

    let gr = wait_for(&api, "bad", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "AuthenticationFailed", "{msg}");
    assert!(
        !msg.contains(wrong),
        "the password leaked into the message: {msg}"
    );
    let (s, r, _) = condition(&gr, meta::FETCH_FAILED_CONDITION).unwrap();
    assert_eq!((s.as_str(), r.as_str()), ("True", "AuthenticationFailed"));
    let yaml = serde_json::to_string(&gr).unwrap();
    assert!(!yaml.contains(wrong));

    let gr = wait_for(&api, "none", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        condition(&gr, meta::READY_CONDITION).unwrap().1,
        "AuthenticationFailed"
    );

    let gr = wait_for(&api, "good", WAIT, is_ready).await;
    assert_eq!(revision(&gr), Some(format!("main@sha1:{c1}")));
    ns.delete().await;
}

#[tokio::test]
async fn a_proxy_secret_sends_the_fetch_through_the_proxy() {
    let (_c, ns, api, _h) = setup("src-proxy").await;
    let repo = Repo::new("private");
    repo.write("a.yaml", "a: 1\n");
    let c1 = repo.commit("one");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), Some(("flux", "s3cr3t-right"))).await;
    let proxy = ForwardProxy::start(Some(("px", "px-pa55")));
    secret(
        &ns,
        "auth",
        &[("username", "flux"), ("password", "s3cr3t-right")],
    )
    .await;
    secret(
        &ns,
        "proxy",
        &[
            ("address", &proxy.url()),
            ("username", "px"),
            ("password", "px-pa55"),
        ],
    )
    .await;
    secret(&ns, "bad-proxy", &[("address", "socks5://127.0.0.1:1080")]).await;
    create(&api, "via-proxy", json!({"url": server.url("private"), "interval": "10m",
        "ref": {"branch": "main"}, "secretRef": {"name": "auth"}, "proxySecretRef": {"name": "proxy"}}))
    .await;
    create(
        &api,
        "bad-proxy",
        json!({"url": server.url("private"), "interval": "10m",
        "ref": {"branch": "main"}, "proxySecretRef": {"name": "bad-proxy"}}),
    )
    .await;
    create(
        &api,
        "ssh-proxy",
        json!({"url": "ssh://git@127.0.0.1:2222/private.git", "interval": "10m",
        "ref": {"branch": "main"}, "proxySecretRef": {"name": "proxy"}}),
    )
    .await;

    let gr = wait_for(&api, "via-proxy", WAIT, is_ready).await;
    assert_eq!(revision(&gr), Some(format!("main@sha1:{c1}")));
    let seen = proxy.seen();
    let prefix = server.url("private");
    assert!(
        seen.iter()
            .any(|f| f.forwarded && f.url.starts_with(&prefix) && f.method == "POST"),
        "the fetch went through the proxy: {seen:?}"
    );
    assert!(seen.iter().all(|f| f.forwarded), "{seen:?}");

    // A proxy Flux would not take either, named; ssh remotes are refused by name.
    let gr = wait_for(&api, "bad-proxy", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "AuthenticationFailed", "{msg}");
    assert_eq!(
        msg,
        format!(
            "failed to configure proxy options: secret '{}/bad-proxy': proxy URL must use http or https scheme, got 'socks5'",
            ns.name()
        )
    );
    let gr = wait_for(&api, "ssh-proxy", WAIT, |g| {
        condition(g, meta::STALLED_CONDITION).is_some_and(|c| c.0 == "True")
    })
    .await;
    let (_, reason, msg) = condition(&gr, meta::STALLED_CONDITION).unwrap();
    assert_eq!(reason, "UnsupportedField");
    assert!(msg.contains("spec.proxySecretRef"), "{msg}");
    ns.delete().await;
}

#[tokio::test]
async fn missing_secret_invalid_url_and_deleted_branch() {
    let (_c, ns, api, _h) = setup("src-fail").await;
    let repo = Repo::new("app");
    repo.write("a.yaml", "a: 1\n");
    repo.commit("one");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    repo.push("main:feature");
    create(&api, "nosecret", json!({"url": server.url("app"), "interval": "10m", "secretRef": {"name": "does-not-exist"}, "ref": {"branch": "main"}})).await;
    create(
        &api,
        "badurl",
        json!({"url": "https://exa mple.com/repo.git", "interval": "10m"}),
    )
    .await;
    create(
        &api,
        "feature",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "feature"}}),
    )
    .await;
    create(
        &api,
        "unknown",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"tag": "v9.9.9"}}),
    )
    .await;

    let gr = wait_for(&api, "nosecret", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "AuthenticationFailed");
    assert!(
        msg.contains(&format!("'{}/does-not-exist'", ns.name())),
        "{msg}"
    );
    assert!(
        msg.contains("secrets \"does-not-exist\" not found"),
        "{msg}"
    );

    let gr = wait_for(&api, "badurl", WAIT, |g| {
        condition(g, meta::STALLED_CONDITION).is_some()
    })
    .await;
    let (s, reason, _) = condition(&gr, meta::STALLED_CONDITION).unwrap();
    assert_eq!((s.as_str(), reason.as_str()), ("True", "URLInvalid"));
    assert_eq!(
        condition(&gr, meta::READY_CONDITION).unwrap().1,
        "URLInvalid"
    );

    let gr = wait_for(&api, "unknown", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "GitOperationFailed");
    assert!(msg.contains("refs/tags/v9.9.9"), "{msg}");

    // Delete a branch that had an artifact: the failure names the ref and the
    // last good artifact stays.
    let gr = wait_for(&api, "feature", WAIT, is_ready).await;
    let artifact = gr.status.unwrap().artifact.unwrap();
    git(&repo.work, &["push", "-q", "origin", "--delete", "feature"]);
    request_reconcile(&api, "feature").await;
    let gr = wait_for(&api, "feature", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "GitOperationFailed");
    assert!(msg.contains("refs/heads/feature"), "{msg}");
    let st = gr.status.unwrap();
    assert_eq!(
        st.artifact.as_ref(),
        Some(&artifact),
        "the last good artifact is kept"
    );
    assert_eq!(
        condition_of(&st, meta::ARTIFACT_IN_STORAGE_CONDITION),
        Some("True".into())
    );
    let (code, _) = http_get(&artifact.url).await;
    assert_eq!(code, 200);
    ns.delete().await;
}

fn condition_of(st: &sluice_source::GitRepositoryStatus, t: &str) -> Option<String> {
    st.conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn suspended_objects_are_left_alone() {
    let (_c, ns, api, _h) = setup("src-suspend").await;
    let repo = Repo::new("app");
    repo.write("a.yaml", "a: 1\n");
    repo.commit("one");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    create(&api, "app", json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "main"}, "suspend": true})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let gr = api.get("app").await.unwrap();
    assert!(gr.status.is_none() || gr.status.as_ref().unwrap().artifact.is_none());
    let patch = json!({"spec": {"suspend": false}});
    api.patch("app", &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for(&api, "app", WAIT, is_ready).await;
    ns.delete().await;
}

/// The `spec.url` pattern of the GitRepository CRD this checkout installs.
fn crd_url_pattern() -> String {
    let crd = serde_json::to_value(sluice_api::crds().remove(0)).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["url"]["pattern"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn url_schemes_are_those_of_the_crd_and_file_urls_work_where_admitted() {
    let (_c, ns, api, _h) = setup("src-schemes").await;
    let repo = Repo::new("app");
    repo.write("a.yaml", "a: 1\n");
    let commit = repo.commit("one");
    repo.push("main");
    let pattern = crd_url_pattern();
    // Everything Flux's CRD admits (`^(http|https|ssh)://.*$`) is admitted.
    for (i, url) in [
        "http://example.invalid/r.git",
        "https://example.invalid/r.git",
        "ssh://git@example.invalid/r.git",
    ]
    .iter()
    .enumerate()
    {
        let gr: GitRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": format!("flux-{i}")},
            "spec": {"url": url, "interval": "10m", "suspend": true},
        }))
        .unwrap();
        api.create(&PostParams::default(), &gr)
            .await
            .unwrap_or_else(|e| panic!("{url} refused: {e}"));
    }
    // scp-like ssh addresses are not, as on Flux.
    let scp: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "scp"},
        "spec": {"url": "git@example.invalid:org/r.git", "interval": "10m"},
    }))
    .unwrap();
    let err = api.create(&PostParams::default(), &scp).await.unwrap_err();
    assert!(err.to_string().contains("spec.url"), "{err}");

    // file:// is rejected by Flux's pattern; where sluice's CRD admits it,
    // a file:// GitRepository works end to end.
    let file = repo.file_url();
    let obj: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "local"},
        "spec": {"url": file, "interval": "10m", "ref": {"branch": "main"}},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &obj).await;
    if pattern.contains("file") {
        created
            .unwrap_or_else(|e| panic!("{file} refused by a CRD whose pattern is {pattern}: {e}"));
        let gr = wait_for(&api, "local", WAIT, is_ready).await;
        assert_eq!(revision(&gr), Some(format!("main@sha1:{commit}")));
    } else {
        eprintln!("the CRD's url pattern {pattern:?} refuses file:// (as Flux's)");
        let err = created.unwrap_err();
        assert!(err.to_string().contains("spec.url"), "{err}");
    }
    ns.delete().await;
}

/// An HTTP server on 127.0.0.1 that reads each request and answers a byte
/// every 800 ms, for two minutes at most. Returns the port.
fn http_trickle() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nConnection: close\r\n\r\nfff0";
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..150 {
                    std::thread::sleep(Duration::from_millis(800));
                    if stream.write_all(b"a").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_stalling_remote_fails_at_the_timeout_without_showing_the_token() {
    let (_c, _ns, api, _h) = setup("src-tarpit").await;
    let port = http_trickle();
    let repo = Repo::new("app");
    repo.write("a.yaml", "a: 1\n");
    repo.commit("one");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    let started = std::time::Instant::now();
    create(
        &api,
        "tarpit",
        json!({
            "url": format!("http://ghp_SECRET42@127.0.0.1:{port}/repo.git"),
            "interval": "10m",
            "timeout": "3s",
            "ref": {"branch": "main"}
        }),
    )
    .await;
    create(
        &api,
        "healthy",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    let gr = wait_for(&api, "tarpit", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let took = started.elapsed();
    let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
    eprintln!("tarpit GitRepository failed after {took:?}: {reason}: {msg}");
    assert_eq!(reason, "GitOperationFailed");
    assert!(msg.contains("timed out"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(!msg.contains("ghp_SECRET42"), "the token leaked: {msg}");
    let json = serde_json::to_string(&gr.status).unwrap();
    assert!(!json.contains("ghp_SECRET42"), "the token leaked: {json}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    // The other GitRepository is served meanwhile.
    wait_for(&api, "healthy", WAIT, is_ready).await;
}

/// GitHub's App API as far as Flux's client uses it: the installation of owner `home` (not an
/// organization, a user), and an installation token for it, given to a JWT issued by app 4321.
async fn github_app_api(
    token: &'static str,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use base64::Engine;
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(format!("{method} {}", uri.path()));
            let jwt = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_string();
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let claims: serde_json::Value = jwt
                .split('.')
                .nth(1)
                .and_then(|c| b64.decode(c).ok())
                .and_then(|c| serde_json::from_slice(&c).ok())
                .unwrap_or_default();
            let now = jiff::Timestamp::now().as_second();
            let fresh = claims["iat"].as_i64().is_some_and(|iat| iat <= now)
                && claims["exp"].as_i64().is_some_and(|exp| exp > now);
            if claims["iss"] != "4321" || !fresh || jwt.split('.').count() != 3 {
                return (
                    StatusCode::UNAUTHORIZED,
                    r#"{"message":"A JSON web token could not be decoded"}"#.to_string(),
                );
            }
            match (method.as_str(), uri.path()) {
                ("GET", "/orgs/home/installation") => {
                    (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#.into())
                }
                ("GET", "/users/home/installation") => (
                    StatusCode::OK,
                    r#"{"id": 77, "account": {"login": "home"}}"#.into(),
                ),
                ("POST", "/app/installations/77/access_tokens") => {
                    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
                    (
                        StatusCode::CREATED,
                        json!({"token": token, "expires_at": expires.to_string()}).to_string(),
                    )
                }
                _ => (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#.into()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calls)
}

#[tokio::test]
async fn a_github_app_authenticates_the_fetch_with_an_installation_token() {
    let (_c, ns, api, _h) = setup("src-ghapp").await;
    let repo = Repo::new("private");
    repo.write("a.yaml", "a: 1\n");
    let c1 = repo.commit("one");
    repo.push("main");
    let token = "ghs_installation-token-1234";
    let server = GitServer::start(&repo.served_root(), Some(("x-access-token", token))).await;
    let (api_addr, calls) = github_app_api(token).await;
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sluice-runtime/tests/data/github-app-test-key.pem"
    ))
    .unwrap();
    let base = format!("http://{api_addr}");
    let app = [
        ("githubAppID", "4321"),
        ("githubAppInstallationOwner", "home"),
        ("githubAppPrivateKey", key.as_str()),
        ("githubAppBaseURL", base.as_str()),
    ];
    secret(&ns, "app", &app).await;
    secret(&ns, "token-only", &[("username", "git"), ("password", "x")]).await;
    create(
        &api,
        "app",
        json!({"url": server.url("private"), "interval": "10m", "provider": "github",
        "ref": {"branch": "main"}, "secretRef": {"name": "app"}}),
    )
    .await;
    create(
        &api,
        "no-secret",
        json!({"url": server.url("private"), "interval": "10m", "provider": "github",
        "ref": {"branch": "main"}}),
    )
    .await;
    create(
        &api,
        "no-app",
        json!({"url": server.url("private"), "interval": "10m", "provider": "github",
        "ref": {"branch": "main"}, "secretRef": {"name": "token-only"}}),
    )
    .await;
    create(
        &api,
        "not-github",
        json!({"url": server.url("private"), "interval": "10m",
        "ref": {"branch": "main"}, "secretRef": {"name": "app"}}),
    )
    .await;

    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    assert_eq!(revision(&gr), Some(format!("main@sha1:{c1}")));
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "GET /orgs/home/installation",
            "GET /users/home/installation",
            "POST /app/installations/77/access_tokens"
        ]
    );
    assert!(!serde_json::to_string(&gr).unwrap().contains(token));

    let failed = |name: &'static str| {
        let api = api.clone();
        async move {
            let gr = wait_for(&api, name, WAIT, |g| {
                condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
            })
            .await;
            let (_, reason, msg) = condition(&gr, meta::READY_CONDITION).unwrap();
            let stalled = condition(&gr, meta::STALLED_CONDITION).is_some_and(|c| c.0 == "True");
            (reason, msg, stalled)
        }
    };
    assert_eq!(
        failed("no-secret").await,
        (
            "InvalidProviderConfiguration".into(),
            "secretRef with github app data must be specified when provider is set to github"
                .into(),
            true
        )
    );
    let (reason, msg, _) = failed("no-app").await;
    assert_eq!(reason, "InvalidProviderConfiguration");
    assert!(
        msg.contains("secretRef with github app data must be specified"),
        "{msg}"
    );
    let (reason, msg, _) = failed("not-github").await;
    assert_eq!(reason, "InvalidProviderConfiguration");
    assert_eq!(
        msg,
        format!(
            "secretRef '{}/app' has github app data but provider is not set to github",
            ns.name()
        )
    );
    ns.delete().await;
}

/// A bare repository `<root>/srv/<name>.git` and its work tree on `main`,
/// all repositories under one served root (submodules name each other by
/// relative URL).
fn served_repo(root: &std::path::Path, name: &str) -> std::path::PathBuf {
    let bare = root.join("srv").join(format!("{name}.git"));
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = root.join("work").join(name);
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    work
}

fn commit_and_push(work: &std::path::Path, msg: &str) -> String {
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", msg]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn submodules_are_archived_at_their_paths_when_recursed() {
    let (_c, ns, api, _h) = setup("src-submodules").await;
    let root = tempfile::tempdir().unwrap();
    let leaf = served_repo(root.path(), "leaf");
    std::fs::write(leaf.join("leaf.yaml"), "kind: Leaf\n").unwrap();
    commit_and_push(&leaf, "leaf");
    // lib has leaf at vendor/leaf, app has lib at lib: relative URLs, as
    // repositories on one server name each other.
    let sub_add = |work: &std::path::Path, url: &str, path: &str| {
        git(
            work,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "-q",
                url,
                path,
            ],
        );
    };
    let lib = served_repo(root.path(), "lib");
    std::fs::write(lib.join("base.yaml"), "kind: Base\n").unwrap();
    sub_add(&lib, "../leaf.git", "vendor/leaf");
    commit_and_push(&lib, "lib");
    let app = served_repo(root.path(), "app");
    std::fs::write(app.join("app.yaml"), "kind: App\n").unwrap();
    sub_add(&app, "../lib.git", "lib");
    let commit = commit_and_push(&app, "app");

    // Behind basic auth: the submodules are fetched with the same credentials.
    let server = GitServer::start(&root.path().join("srv"), Some(("git", "s3cret"))).await;
    secret(&ns, "auth", &[("username", "git"), ("password", "s3cret")]).await;
    create(
        &api,
        "app",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "main"},
        "secretRef": {"name": "auth"}}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    let plain = gr.status.as_ref().unwrap().artifact.clone().unwrap();
    let files = tar_listing(&http_get(&plain.url).await.1);
    // Gitlinks left empty; `.gitmodules` is among Flux's default exclusions.
    assert_eq!(files, vec!["app.yaml"]);
    assert_eq!(
        gr.status.as_ref().unwrap().observed_recurse_submodules,
        None
    );

    // The same commit with recurseSubmodules: a new artifact.
    let patch = json!({"spec": {"recurseSubmodules": true}});
    api.patch(
        "app",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let gr = wait_for(&api, "app", WAIT, |g| {
        is_ready(g)
            && g.status
                .as_ref()
                .is_some_and(|s| s.observed_recurse_submodules == Some(true))
    })
    .await;
    let a = gr.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(a.revision, format!("main@sha1:{commit}"));
    assert_ne!(a.digest, plain.digest);
    let body = http_get(&a.url).await.1;
    assert_eq!(
        tar_listing(&body),
        vec![
            "app.yaml",
            "lib/",
            "lib/base.yaml",
            "lib/vendor/",
            "lib/vendor/leaf/",
            "lib/vendor/leaf/leaf.yaml",
        ]
    );
    assert_eq!(
        tar_file(&body, "lib/vendor/leaf/leaf.yaml").as_deref(),
        Some("kind: Leaf\n")
    );

    // A submodule that cannot be fetched names its path.
    std::fs::remove_dir_all(root.path().join("srv").join("leaf.git")).unwrap();
    std::fs::write(app.join("app.yaml"), "kind: App\nv: 2\n").unwrap();
    commit_and_push(&app, "app 2");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        condition(g, meta::READY_CONDITION).is_some_and(|c| c.0 == "False")
    })
    .await;
    let (_, reason, message) = condition(&gr, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "GitOperationFailed");
    assert!(
        message.contains("failed to fetch submodule 'lib/vendor/leaf'"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert_eq!(gr.status.as_ref().unwrap().artifact.as_ref(), Some(&a));

    // A submodule on the controller's own disk is refused, not read.
    git(
        &app,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.lib.url",
            root.path().join("srv/lib.git").to_str().unwrap(),
        ],
    );
    commit_and_push(&app, "a local submodule");
    request_reconcile(&api, "app").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        condition(g, meta::READY_CONDITION)
            .is_some_and(|c| c.2.contains("is not an http(s) or ssh URL"))
    })
    .await;
    let message = condition(&gr, meta::READY_CONDITION).unwrap().2;
    assert!(
        message.contains("failed to fetch submodule 'lib': its URL"),
        "{message}"
    );
}

#[tokio::test]
async fn included_repositories_are_copied_in_and_followed() {
    let (_c, _ns, api, _h) = setup("src-include").await;
    let root = tempfile::tempdir().unwrap();
    let shared = served_repo(root.path(), "shared");
    std::fs::create_dir_all(shared.join("base")).unwrap();
    std::fs::write(shared.join("base/common.yaml"), "kind: Common\n").unwrap();
    std::fs::write(shared.join("notes.txt"), "x\n").unwrap();
    commit_and_push(&shared, "shared");
    let app = served_repo(root.path(), "app");
    std::fs::write(app.join("app.yaml"), "kind: App\n").unwrap();
    std::fs::create_dir_all(app.join("vendor/shared")).unwrap();
    std::fs::write(app.join("vendor/shared/stale.yaml"), "kind: Stale\n").unwrap();
    let commit = commit_and_push(&app, "app");
    let server = GitServer::start(&root.path().join("srv"), None).await;

    // The included repository does not exist yet: waited for.
    create(
        &api,
        "app",
        json!({"url": server.url("app"), "interval": "10m", "ref": {"branch": "main"},
        "include": [
            {"repository": {"name": "shared"}, "fromPath": "base", "toPath": "vendor/shared"},
            {"repository": {"name": "shared"}}
        ]}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        condition(g, meta::INCLUDE_UNAVAILABLE_CONDITION).is_some()
    })
    .await;
    assert_eq!(
        condition(&gr, meta::INCLUDE_UNAVAILABLE_CONDITION).unwrap(),
        (
            "True".into(),
            "NotFound".into(),
            "could not get resource for include 'shared': gitrepositories.source.toolkit.fluxcd.io \"shared\" not found".into()
        )
    );

    create(
        &api,
        "shared",
        json!({"url": server.url("shared"), "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    let gr = wait_for(&api, "app", WAIT, is_ready).await;
    assert!(condition(&gr, meta::INCLUDE_UNAVAILABLE_CONDITION).is_none());
    let st = gr.status.as_ref().unwrap();
    let a = st.artifact.clone().unwrap();
    assert_eq!(a.revision, format!("main@sha1:{commit}"));
    let shared_gr = api.get("shared").await.unwrap();
    let shared_artifact = shared_gr.status.unwrap().artifact.unwrap();
    let included = st.included_artifacts.clone().unwrap();
    assert_eq!(included.len(), 2);
    assert_eq!(included[0].revision, shared_artifact.revision);
    assert_eq!(
        json(&gr)["status"]["observedInclude"][0]["toPath"],
        "vendor/shared"
    );
    let body = http_get(&a.url).await.1;
    assert_eq!(
        tar_listing(&body),
        vec![
            "app.yaml",
            "shared/",
            "shared/base/",
            "shared/base/common.yaml",
            "shared/notes.txt",
            "vendor/",
            "vendor/shared/",
            "vendor/shared/common.yaml",
            "vendor/shared/stale.yaml",
        ]
    );

    // A new commit of the included repository: the includer is rebuilt for
    // the same commit of its own.
    std::fs::write(shared.join("base/common.yaml"), "kind: Common\nv: 2\n").unwrap();
    commit_and_push(&shared, "shared 2");
    request_reconcile(&api, "shared").await;
    let gr = wait_for(&api, "app", WAIT, |g| {
        g.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some_and(|b| b.digest != a.digest)
    })
    .await;
    let b = gr.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(b.revision, a.revision);
    assert_eq!(
        tar_file(&http_get(&b.url).await.1, "vendor/shared/common.yaml").as_deref(),
        Some("kind: Common\nv: 2\n")
    );
}
