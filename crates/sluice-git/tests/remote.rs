//! Remote kustomize resources through `GitRemoteLoader`, offline: local Git
//! repositories made with the `git` program (file:// and a smart-HTTP
//! server), and plain HTTP files from a tiny server in the test.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use sluice_git::remote::GitRemoteLoader;
use sluice_kustomize::{Options, Reorder};
use support::*;

fn configmap(version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  version: {version}\n"
    )
}

/// A repository with `deploy/base` (a ConfigMap whose `version` says which
/// commit it is): tag `v1` (annotated) on the first commit, `main` on the
/// second, branch `feature` on a third. Returns the commits.
fn app_repo() -> (Repo, Vec<String>) {
    let repo = Repo::new("app");
    let mut commits = Vec::new();
    repo.write("deploy/base/kustomization.yaml", "resources:\n- cm.yaml\n");
    repo.write("deploy/base/cm.yaml", &configmap("v1"));
    commits.push(repo.commit("v1"));
    git(&repo.work, &["tag", "-a", "v1", "-m", "release v1"]);
    repo.write("deploy/base/cm.yaml", &configmap("v2"));
    commits.push(repo.commit("v2"));
    git(&repo.work, &["checkout", "-q", "-b", "feature"]);
    repo.write("deploy/base/cm.yaml", &configmap("v3"));
    commits.push(repo.commit("v3"));
    git(&repo.work, &["checkout", "-q", "main"]);
    git(
        &repo.work,
        &["push", "-q", "origin", "main", "feature", "--tags"],
    );
    (repo, commits)
}

fn build_with(
    loader: Arc<GitRemoteLoader>,
    kustomization: &str,
    restrict: bool,
) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization).unwrap();
    let mut opts = Options::new();
    opts.reorder = Reorder::None;
    opts.load_restrict_root_only = restrict;
    opts.remote = Some(loader);
    sluice_kustomize::build(dir.path(), &opts)
        .map(|o| o.to_yaml())
        .map_err(|e| e.to_string())
}

fn build(loader: &Arc<GitRemoteLoader>, resource: &str) -> Result<String, String> {
    build_with(loader.clone(), &format!("resources:\n- {resource}\n"), true)
}

fn loader(cache: &Path) -> Arc<GitRemoteLoader> {
    Arc::new(GitRemoteLoader::new(cache))
}

#[test]
fn remote_bases_from_local_repositories_at_tags_branches_and_commits() {
    let (repo, commits) = app_repo();
    let cache = tempfile::tempdir().unwrap();
    let l = loader(cache.path());
    let url = repo.file_url();
    for (resource, want) in [
        (format!("{url}//deploy/base?ref=v1"), "v1"),
        (format!("{url}//deploy/base?version=v1"), "v1"),
        (format!("{url}//deploy/base?ref=main"), "v2"),
        (format!("{url}//deploy/base"), "v2"),
        // `.git` splits the repository from the path too.
        (format!("{url}/deploy/base?ref=feature"), "v3"),
        (format!("{url}//deploy/base?ref=refs/heads/feature"), "v3"),
        (format!("{url}//deploy/base?ref={}", commits[0]), "v1"),
        (format!("{url}//deploy/base?ref={}", commits[2]), "v3"),
        (format!("git::{url}//deploy/base?ref=v1"), "v1"),
        (
            format!("git::{url}//deploy/base?ref=feature&timeout=30s&submodules=false"),
            "v3",
        ),
    ] {
        let out = build(&l, &resource).unwrap_or_else(|e| panic!("{resource}: {e}"));
        assert!(
            out.contains(&format!("version: {want}\n")),
            "{resource} should build {want}:\n{out}"
        );
    }
    // One checkout per commit: v1 (tag and sha), v2, v3, and v3 without
    // submodules.
    let mut dirs: Vec<String> = std::fs::read_dir(l.repo_dir(&url))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want = vec![
        commits[0].clone(),
        commits[1].clone(),
        commits[2].clone(),
        format!("{}-nosubmodules", commits[2]),
        "url".to_string(),
    ];
    want.sort();
    assert_eq!(dirs, want);

    let err = build(&l, &format!("{url}//deploy/base?ref=nope")).unwrap_err();
    assert!(err.contains("couldn't find remote ref 'nope'"), "{err}");
    let err = build(&l, &format!("{url}//deploy/missing?ref=v1")).unwrap_err();
    assert!(err.contains("deploy/missing"), "{err}");
    let err = build(&l, &format!("{url}//deploy/base/../../..?ref=v1")).unwrap_err();
    assert!(err.contains("url path exits repo"), "{err}");
}

#[test]
fn remote_origin_annotations_name_repo_and_ref() {
    let repo = Repo::new("origin");
    repo.write(
        "deploy/prod/kustomization.yaml",
        "resources:\n- cm.yaml\nnamePrefix: prod-\nconfigMapGenerator:\n- name: gen\n  literals: [a=b]\n",
    );
    repo.write("deploy/prod/cm.yaml", &configmap("v1"));
    repo.commit("prod");
    git(&repo.work, &["tag", "v1"]);
    git(&repo.work, &["push", "-q", "origin", "main", "--tags"]);
    let cache = tempfile::tempdir().unwrap();
    let url = repo.file_url();
    let out = build_with(
        loader(cache.path()),
        &format!(
            "resources:\n- {url}//deploy/prod?ref=v1\nbuildMetadata: [originAnnotations, transformerAnnotations]\n"
        ),
        true,
    )
    .unwrap();
    let file_origin = format!(
        "config.kubernetes.io/origin: |\n      path: deploy/prod/cm.yaml\n      repo: {url}\n      ref: v1\n"
    );
    assert!(out.contains(&file_origin), "{out}");
    let generator_origin = format!(
        "config.kubernetes.io/origin: |\n      repo: {url}\n      ref: v1\n      configuredIn: deploy/prod/kustomization.yaml\n      configuredBy:\n        apiVersion: builtin\n        kind: ConfigMapGenerator\n"
    );
    assert!(out.contains(&generator_origin), "{out}");
    let transformation = format!(
        "      - repo: {url}\n        ref: v1\n        configuredIn: deploy/prod/kustomization.yaml\n        configuredBy:\n          apiVersion: builtin\n          kind: PrefixTransformer\n"
    );
    assert!(out.contains(&transformation), "{out}");
}

#[test]
fn cached_commits_need_no_network() {
    let (repo, commits) = app_repo();
    let cache = tempfile::tempdir().unwrap();
    let url = repo.file_url();
    let pinned = format!("{url}//deploy/base?ref={}", commits[0]);
    let tagged = format!("{url}//deploy/base?ref=v1");

    let first = loader(cache.path());
    build(&first, &pinned).unwrap();
    assert_eq!((first.fetches(), first.listings()), (1, 0));
    // A tag naming a cached commit costs a listing, no fetch.
    let second = loader(cache.path());
    build(&second, &tagged).unwrap();
    assert_eq!((second.fetches(), second.listings()), (0, 1));

    // Without the origin, a pinned commit still builds from the cache...
    std::fs::remove_dir_all(&repo.bare).unwrap();
    let offline = loader(cache.path());
    let out = build(&offline, &pinned).unwrap();
    assert!(out.contains("version: v1\n"), "{out}");
    assert_eq!((offline.fetches(), offline.listings()), (0, 0));
    // ...while a tag needs the remote.
    let err = build(&offline, &tagged).unwrap_err();
    assert!(err.contains(&tagged), "{err}");
}

#[test]
fn remote_checkouts_are_restricted_to_their_root() {
    let repo = Repo::new("escape");
    repo.write("secret.yaml", &configmap("secret"));
    repo.write("outside.txt", "outside\n");
    repo.write(
        "deploy/file/kustomization.yaml",
        "resources:\n- ../../secret.yaml\n",
    );
    repo.write(
        "deploy/generator/kustomization.yaml",
        "configMapGenerator:\n- name: g\n  files:\n  - ../../outside.txt\n",
    );
    repo.write(
        "deploy/base-in-repo/kustomization.yaml",
        "resources:\n- ../file-ok\n",
    );
    repo.write(
        "deploy/file-ok/kustomization.yaml",
        "resources:\n- cm.yaml\n",
    );
    repo.write("deploy/file-ok/cm.yaml", &configmap("ok"));
    repo.write(
        "deploy/base-outside/kustomization.yaml",
        "resources:\n- ../../..\n",
    );
    // A symlink in the repository that points out of the kustomization.
    repo.write("deploy/link/kustomization.yaml", "resources:\n- cm.yaml\n");
    std::os::unix::fs::symlink("../../secret.yaml", repo.work.join("deploy/link/cm.yaml")).unwrap();
    repo.commit("escapes");
    repo.push("main");
    let cache = tempfile::tempdir().unwrap();
    let l = loader(cache.path());
    let url = repo.file_url();

    // Even when the caller allows files anywhere (Flux, --load-restrictor
    // LoadRestrictionsNone), a remote checkout is LoadRestrictionsRootOnly.
    for restrict in [true, false] {
        let k = |dir: &str| format!("resources:\n- {url}//deploy/{dir}\n");
        let err = build_with(l.clone(), &k("file"), restrict).unwrap_err();
        assert!(
            err.contains("security; file '") && err.contains("secret.yaml' is not in or below"),
            "{err}"
        );
        let err = build_with(l.clone(), &k("generator"), restrict).unwrap_err();
        assert!(
            err.contains("security; file '") && err.contains("outside.txt' is not in or below"),
            "{err}"
        );
        let err = build_with(l.clone(), &k("link"), restrict).unwrap_err();
        assert!(
            err.contains("security; file '") && err.contains("secret.yaml' is not in or below"),
            "{err}"
        );
        let err = build_with(l.clone(), &k("base-outside"), restrict).unwrap_err();
        assert!(err.contains("must be within the repo"), "{err}");
        // Bases elsewhere in the same repository are fine.
        let out = build_with(l.clone(), &k("base-in-repo"), restrict).unwrap();
        assert!(out.contains("version: ok\n"), "{out}");
    }
}

#[test]
fn submodules_are_checked_out_unless_disabled() {
    let lib = Repo::new("lib");
    lib.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    lib.write("base/cm.yaml", &configmap("from-submodule"));
    lib.commit("lib");
    lib.push("main");

    let app = Repo::new("app");
    git(
        &app.work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &lib.file_url(),
            "vendor/lib",
        ],
    );
    app.write(
        "deploy/kustomization.yaml",
        "resources:\n- ../vendor/lib/base\n",
    );
    app.commit("app");
    app.push("main");

    let cache = tempfile::tempdir().unwrap();
    let l = loader(cache.path());
    let url = app.file_url();
    let out = build(&l, &format!("{url}//deploy")).unwrap();
    assert!(out.contains("version: from-submodule\n"), "{out}");
    assert_eq!(l.fetches(), 2, "the repository and its submodule");
    let err = build(&l, &format!("{url}//deploy?submodules=false")).unwrap_err();
    assert!(err.contains("vendor/lib/base"), "{err}");
}

/// Serves `files` (path → body) over HTTP/1.1 on 127.0.0.1; anything else
/// is 404. Returns the base URL.
fn serve_files(files: Vec<(&'static str, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line.split(' ').nth(1).unwrap_or("");
            let (status, body) = match files.iter().find(|(p, _)| *p == path) {
                Some((_, b)) => ("200 OK", b.clone()),
                None => ("404 Not Found", "not found\n".to_string()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn http_file_resources() {
    let base = serve_files(vec![
        ("/manifests/cm.yaml", configmap("over-http")),
        (
            "/manifests/list.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: s\n".to_string(),
        ),
        ("/page", "<html><body>not yaml</body></html>\n".to_string()),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let l = loader(cache.path());
    let out = build_with(
        l.clone(),
        &format!(
            "resources:\n- {base}/manifests/cm.yaml\n- {base}/manifests/list.yaml\nnamePrefix: p-\n"
        ),
        true,
    )
    .unwrap();
    assert!(out.contains("name: p-app\n"), "{out}");
    assert!(out.contains("version: over-http\n"), "{out}");
    assert!(
        out.contains("kind: Secret\n") && out.contains("name: p-s\n"),
        "{out}"
    );
    assert_eq!(l.fetches(), 0, "no Git for a plain file");

    let err = build(&l, &format!("{base}/manifests/missing.yaml")).unwrap_err();
    assert!(err.contains("missing.yaml") && err.contains("404"), "{err}");
    let err = build(&l, &format!("{base}/page")).unwrap_err();
    assert!(
        err.contains("/page") && err.contains("expected a mapping"),
        "{err}"
    );
    // Not found, and not a repository either: both failures are reported.
    let err = build(&l, &format!("{base}/org/page")).unwrap_err();
    assert!(
        err.contains("404") && err.contains("accumulation err="),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_bases_over_smart_http() {
    let (repo, commits) = app_repo();
    let server = GitServer::start(&repo.served_root(), None).await;
    let url = server.url("app");
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_path_buf();
    let first = {
        let url = url.clone();
        let cache_dir = cache_dir.clone();
        tokio::task::spawn_blocking(move || {
            let l = loader(&cache_dir);
            let tag = build(&l, &format!("{url}//deploy/base?ref=v1"))?;
            let branch = build(&l, &format!("{url}/deploy/base?ref=feature"))?;
            Ok::<_, String>((tag, branch, l.fetches()))
        })
        .await
        .unwrap()
        .unwrap()
    };
    assert!(first.0.contains("version: v1\n"), "{}", first.0);
    assert!(first.1.contains("version: v3\n"), "{}", first.1);
    assert_eq!(first.2, 2);
    let fetches = server.counters.fetches();
    assert!(fetches >= 2, "{fetches}");

    // Again with a fresh loader on the same cache: listings only, or no
    // request at all for a pinned commit.
    let requests = server.counters.requests();
    let sha = commits[0].clone();
    let again = tokio::task::spawn_blocking(move || {
        let l = loader(&cache_dir);
        build(&l, &format!("{url}//deploy/base?ref={sha}"))?;
        build(&l, &format!("{url}//deploy/base?ref=v1"))?;
        Ok::<_, String>((l.fetches(), l.listings()))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again, (0, 1));
    assert_eq!(
        server.counters.fetches(),
        fetches,
        "no fetch from the cache"
    );
    assert!(server.counters.requests() > requests, "the tag was listed");
}

#[test]
fn remote_bases_over_ssh() {
    use sluice_testsupport::ssh_server::SshServer;
    let server = match SshServer::start() {
        Ok(s) => s,
        Err(skip) => return eprintln!("skipped: {skip:?}"),
    };
    let (repo, _) = app_repo();
    let url = server.url(&repo.bare);
    let cache = tempfile::tempdir().unwrap();
    let auth = sluice_git::fetch::Auth {
        ssh_identity: Some(server.identity().into()),
        known_hosts: Some(server.known_hosts().into()),
        ..Default::default()
    };
    let l = Arc::new(GitRemoteLoader::new(cache.path()).with_auth(auth));
    let out = build(&l, &format!("{url}//deploy/base?ref=v1")).unwrap();
    assert!(out.contains("version: v1\n"), "{out}");
    // Without the client key the server refuses, and the error says so.
    let anonymous = loader(cache.path());
    let err = build(&anonymous, &format!("{url}//deploy/base?ref=main")).unwrap_err();
    assert!(err.contains(&url), "{err}");
}
