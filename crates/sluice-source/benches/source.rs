//! `cargo bench -p sluice-source --bench source`
//!
//! Measures, on one 5,000-file repository served over smart HTTP
//! (`git http-backend`) and over `file://`:
//! - a no-change poll: sluice's ref listing vs `git ls-remote`;
//! - a first fetch: sluice's shallow fetch + archive (tar.gz, digest) vs
//!   `git clone --depth 1` (and vs clone + `tar czf`, the same end product).
//!
//! Environment: `SLUICE_BENCH_FILES` (default 5000), `SLUICE_BENCH_RUNS`
//! (default 15 for listings, a third of that for fetches).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_source::git::{self, Auth, FetchTarget};
use sluice_source::storage::Storage;
use sluice_testsupport::git_server::{GitServer, Repo, git as run_git};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut(usize) -> T) -> Duration {
    let mut v = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f(i));
        v.push(t.elapsed());
    }
    median(v)
}

fn git_cmd(args: &[&str], cwd: &Path) {
    let st = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("git");
    assert!(st.success(), "git {args:?}");
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let files: usize = std::env::var("SLUICE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let runs: usize = std::env::var("SLUICE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let fetch_runs = (runs / 3).max(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let t = Instant::now();
    let repo = Repo::new("big");
    for i in 0..files {
        repo.write(
            &format!("apps/team{:02}/app{:03}/resource{i}.yaml", i % 50, (i / 50) % 20),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: team{:02}\ndata:\n  key: value-{i}\n  other: {}\n",
                i % 50,
                "x".repeat(64)
            ),
        );
    }
    repo.commit("5000 files");
    repo.push("main");
    let commit = repo.head();
    let size = run_git(&repo.bare, &["count-objects", "-vH"]);
    println!(
        "repository: {files} files, commit {commit}, built in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    println!(
        "{}",
        size.lines()
            .filter(|l| l.starts_with("size-pack"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let server = rt.block_on(GitServer::start(&repo.served_root(), None));
    let work = tempfile::tempdir().expect("tmp");
    let storage_dir = tempfile::tempdir().expect("tmp");
    let storage = Storage::new(storage_dir.path(), "127.0.0.1:9090");
    let prefixes = vec!["refs/heads/main".to_string()];
    let timeout = Duration::from_secs(120);

    println!();
    println!("| transport | operation | sluice (gix) | git CLI |");
    println!("|---|---|---|---|");
    for (label, url) in [("http", server.url("big")), ("file", repo.file_url())] {
        // Warm up both (scratch repo creation, page cache).
        git::ls_refs(work.path(), &url, &Auth::default(), &prefixes, timeout).expect("ls_refs");
        git_cmd(&["ls-remote", &url, "refs/heads/main"], work.path());

        let ls_sluice = time(runs, |_| {
            let refs = git::ls_refs(work.path(), &url, &Auth::default(), &prefixes, timeout)
                .expect("ls_refs");
            assert_eq!(refs[0].commit, commit);
        });
        let ls_git = time(runs, |_| {
            git_cmd(&["ls-remote", &url, "refs/heads/main"], work.path())
        });
        println!(
            "| {label} | no-change poll (ref listing) | {} | {} (`git ls-remote`) |",
            ms(ls_sluice),
            ms(ls_git)
        );

        let fetch_only = time(fetch_runs, |_| {
            let f = git::fetch(
                work.path(),
                &url,
                &Auth::default(),
                &FetchTarget::Ref("refs/heads/main".into()),
                timeout,
            )
            .expect("fetch");
            assert_eq!(f.commit.to_string(), commit);
        });
        let fetch_archive = time(fetch_runs, |i| {
            let f = git::fetch(
                work.path(),
                &url,
                &Auth::default(),
                &FetchTarget::Ref("refs/heads/main".into()),
                timeout,
            )
            .expect("fetch");
            storage
                .write_artifact::<git::GitError>(
                    "GitRepository",
                    "bench",
                    "big",
                    &format!("{i}.tar.gz"),
                    |out| git::archive_commit(&f.repo, f.commit, &[], None, &[], out).map(|_| ()),
                )
                .expect("artifact")
        });
        let clone = time(fetch_runs, |i| {
            let dest = work.path().join(format!("clone-{label}-{i}"));
            git_cmd(
                &[
                    "clone",
                    "-q",
                    "--depth",
                    "1",
                    "--single-branch",
                    "--branch",
                    "main",
                    &url,
                    dest.to_str().unwrap(),
                ],
                work.path(),
            );
            let _ = std::fs::remove_dir_all(&dest);
        });
        let clone_tar = time(fetch_runs, |i| {
            let dest = work.path().join(format!("clonetar-{label}-{i}"));
            git_cmd(
                &[
                    "clone",
                    "-q",
                    "--depth",
                    "1",
                    "--single-branch",
                    "--branch",
                    "main",
                    &url,
                    dest.to_str().unwrap(),
                ],
                work.path(),
            );
            let out = work.path().join(format!("clonetar-{label}-{i}.tar.gz"));
            let st = Command::new("tar")
                .args([
                    "czf",
                    out.to_str().unwrap(),
                    "--exclude=.git",
                    "-C",
                    dest.to_str().unwrap(),
                    ".",
                ])
                .status()
                .expect("tar");
            assert!(st.success());
            let _ = std::fs::remove_dir_all(&dest);
            let _ = std::fs::remove_file(&out);
        });
        println!(
            "| {label} | first fetch (depth 1) | {} | {} (`git clone --depth 1`) |",
            ms(fetch_only),
            ms(clone)
        );
        println!(
            "| {label} | first fetch + artifact (tar.gz + sha256) | {} | {} (`git clone --depth 1` + `tar czf`) |",
            ms(fetch_archive),
            ms(clone_tar)
        );
    }
    println!();
    println!(
        "medians of {runs} runs (listings) and {fetch_runs} runs (fetches); {} requests served over http",
        server
            .counters
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    );
}
