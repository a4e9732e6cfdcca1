//! Remotes that never answer, on 127.0.0.1: a TCP tarpit (accepts, then
//! silence), an ssh server that sends its banner and then nothing, an HTTP
//! server that reads the request and never answers, and one that answers a
//! byte a second. Listings, fetches, remote bases and remote resource files
//! must each fail within their timeout, say that they timed out and name
//! the host, and leave no ssh process behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_git::fetch::{self as git, Auth, FetchTarget, GitError, GitErrorKind};
use sluice_git::remote::{GitRemoteLoader, MAX_FILE_BYTES};
use sluice_kustomize::remote::RemoteLoader;

/// The timeout given to each operation.
const T: Duration = Duration::from_secs(3);
/// How long an operation may take before the test calls it a hang.
const BOUND: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
enum Pit {
    /// Accepts and never sends a byte.
    Silent,
    /// Sends an ssh banner, then nothing: past ssh's ConnectTimeout.
    SshBanner,
    /// Reads the HTTP request, never answers.
    HttpSilent,
    /// Answers 200 with a Git advertisement whose body comes a byte a
    /// second.
    HttpTrickle,
    /// Answers 200 with a body that comes a byte a second.
    FileTrickle,
}

/// Serves `pit` on 127.0.0.1; each connection is held by its own thread for
/// at most two minutes. Returns the port.
fn tarpit(pit: Pit) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || hold(stream, pit));
        }
    });
    port
}

fn hold(mut stream: TcpStream, pit: Pit) {
    let until = Instant::now() + Duration::from_secs(120);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = false;
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        let headers_done = request.windows(4).any(|w| w == b"\r\n\r\n");
        match pit {
            Pit::Silent | Pit::HttpSilent => {}
            Pit::SshBanner => {
                if !answered {
                    answered = true;
                    if stream.write_all(b"SSH-2.0-OpenSSH_9.6 tarpit\r\n").is_err() {
                        return;
                    }
                }
            }
            Pit::HttpTrickle | Pit::FileTrickle => {
                if !headers_done {
                    continue;
                }
                if !answered {
                    answered = true;
                    let (ct, start): (&str, &[u8]) = match pit {
                        Pit::HttpTrickle => (
                            "application/x-git-upload-pack-advertisement",
                            // A pkt-line announcing 65516 bytes of payload.
                            b"fff0",
                        ),
                        _ => ("text/plain", b""),
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
                    );
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(start).is_err()
                    {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(800));
                if stream.write_all(b"a").is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs `f` on a thread and returns its result and how long it took; gives
/// up (fails the test) after twice [`BOUND`] so a regression cannot hang
/// the suite.
fn timed<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> (R, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(r);
    });
    match rx.recv_timeout(BOUND * 2) {
        Ok(r) => (r, start.elapsed()),
        Err(_) => panic!("the operation hung for more than {:?}", BOUND * 2),
    }
}

fn ls(url: String, auth: Auth) -> (Result<Vec<sluice_git::refs::RemoteRef>, GitError>, Duration) {
    let work = tempfile::tempdir().expect("tempdir");
    timed(move || {
        let r = git::ls_refs(
            &work.path().join("work"),
            &url,
            &auth,
            &["refs/heads/main".into()],
            T,
        );
        drop(work);
        r
    })
}

fn fetch(url: String, auth: Auth) -> (Result<String, GitError>, Duration) {
    let work = tempfile::tempdir().expect("tempdir");
    timed(move || {
        let r = git::fetch(
            &work.path().join("work"),
            &url,
            &auth,
            &FetchTarget::Ref("refs/heads/main".into()),
            T,
        )
        .map(|f| f.commit.to_string());
        drop(work);
        r
    })
}

/// A timeout failure within the bound, saying so and naming the host.
fn assert_timed_out<T: std::fmt::Debug>(
    what: &str,
    r: &Result<T, GitError>,
    took: Duration,
    port: u16,
) {
    eprintln!("{what}: {took:?}: {r:?}");
    let err = r.as_ref().expect_err("a tarpit cannot succeed");
    assert_eq!(err.kind, GitErrorKind::Operation, "{what}: {}", err.message);
    assert!(took < BOUND, "{what} took {took:?}: {}", err.message);
    assert!(
        took >= T - Duration::from_millis(500),
        "{what} gave up before its timeout ({took:?}): {}",
        err.message
    );
    assert!(err.message.contains("timed out"), "{what}: {}", err.message);
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}")),
        "{what}: {}",
        err.message
    );
}

/// Processes (other than this one) whose command line names `port` and
/// 127.0.0.1 (an ssh program, were one ever run again).
fn processes_for(port: u16) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == &port.to_string())
            && args.iter().any(|a| a.contains("127.0.0.1"))
        {
            found.push(format!("{name}: {}", args.join(" ")));
        }
    }
    found
}

fn assert_no_process_left(port: u16) {
    let left = processes_for(port);
    assert!(
        left.is_empty(),
        "processes outlived the operation: {left:?}"
    );
}

fn ssh_auth() -> Auth {
    Auth {
        known_hosts: Some(
            // Any port of 127.0.0.1 (the tarpits never get to show a key).
            b"[127.0.0.1]:* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKN8w4DlZB/MYt9Z4ioYsvw4CFlCxmRtZm7F5DVHeIsh\n"
                .to_vec(),
        ),
        ..Auth::default()
    }
}

#[test]
fn ssh_to_a_silent_host_times_out() {
    let port = tarpit(Pit::Silent);
    let url = format!("ssh://git@127.0.0.1:{port}/repo.git");
    let (r, took) = ls(url.clone(), ssh_auth());
    assert_timed_out("ls_refs over ssh (silent)", &r, took, port);
    assert_no_process_left(port);
    let (r, took) = fetch(url, ssh_auth());
    assert_timed_out("fetch over ssh (silent)", &r, took, port);
    assert_no_process_left(port);
}

#[test]
fn ssh_to_a_host_that_stalls_after_its_banner_is_killed_at_the_deadline() {
    let port = tarpit(Pit::SshBanner);
    let url = format!("ssh://git@127.0.0.1:{port}/repo.git");
    let (r, took) = ls(url.clone(), ssh_auth());
    assert_timed_out("ls_refs over ssh (banner, then silence)", &r, took, port);
    assert_no_process_left(port);
    let (r, took) = fetch(url, ssh_auth());
    assert_timed_out("fetch over ssh (banner, then silence)", &r, took, port);
    assert_no_process_left(port);
}

#[test]
fn http_to_a_server_that_never_answers_times_out() {
    let port = tarpit(Pit::HttpSilent);
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let (r, took) = ls(url.clone(), Auth::default());
    assert_timed_out("ls_refs over http (no answer)", &r, took, port);
    let (r, took) = fetch(url, Auth::default());
    assert_timed_out("fetch over http (no answer)", &r, took, port);
}

#[test]
fn http_from_a_server_that_trickles_times_out() {
    let port = tarpit(Pit::HttpTrickle);
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let (r, took) = ls(url.clone(), Auth::default());
    assert_timed_out("ls_refs over http (a byte a second)", &r, took, port);
    let (r, took) = fetch(url, Auth::default());
    assert_timed_out("fetch over http (a byte a second)", &r, took, port);
}

fn loader(cache: &Path) -> Arc<GitRemoteLoader> {
    Arc::new(GitRemoteLoader::new(cache).with_http_timeout(T))
}

fn build(loader: Arc<GitRemoteLoader>, resource: String) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("resources:\n- {resource}\n"),
    )
    .map_err(|e| e.to_string())?;
    let mut opts = sluice_kustomize::Options::new();
    opts.remote = Some(loader);
    sluice_kustomize::build(dir.path(), &opts)
        .map(|o| o.to_yaml())
        .map_err(|e| e.to_string())
}

#[test]
fn remote_bases_and_files_from_tarpits_time_out() {
    let cache = tempfile::tempdir().expect("tempdir");
    // A remote base over ssh with `?timeout=3s` (with a known_hosts entry
    // for the host: without one nothing is even tried).
    let port = tarpit(Pit::SshBanner);
    let l = Arc::new(
        GitRemoteLoader::new(cache.path())
            .with_http_timeout(T)
            .with_auth(ssh_auth()),
    );
    let (r, took) = timed(move || {
        build(
            l,
            format!("ssh://git@127.0.0.1:{port}/repo.git//deploy?ref=main&timeout=3s"),
        )
    });
    eprintln!("remote base over ssh: {took:?}: {r:?}");
    let err = r.expect_err("a tarpit cannot succeed");
    assert!(took < BOUND, "{took:?}: {err}");
    assert!(
        err.contains("timed out") && err.contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert_no_process_left(port);

    // A remote base over http.
    let port = tarpit(Pit::HttpTrickle);
    let l = loader(cache.path());
    let (r, took) = timed(move || {
        build(
            l,
            format!("http://127.0.0.1:{port}/repo.git//deploy?ref=main&timeout=3s"),
        )
    });
    eprintln!("remote base over http: {took:?}: {r:?}");
    let err = r.expect_err("a tarpit cannot succeed");
    assert!(took < BOUND, "{took:?}: {err}");
    assert!(
        err.contains("timed out") && err.contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    // Remote resource files.
    for pit in [Pit::HttpSilent, Pit::FileTrickle] {
        let port = tarpit(pit);
        let l = loader(cache.path());
        let url = format!("http://127.0.0.1:{port}/crds.yaml");
        let (r, took) = timed(move || l.get_file(&url));
        eprintln!("get_file: {took:?}: {:?}", r.as_ref().map(Vec::len));
        let err = r.expect_err("a tarpit cannot succeed");
        assert!(took < BOUND, "{took:?}: {err}");
        assert!(
            took >= T - Duration::from_millis(500),
            "gave up early ({took:?}): {err}"
        );
        assert!(
            err.contains("timed out") && err.contains(&format!("127.0.0.1:{port}/crds.yaml")),
            "{err}"
        );
    }
}

/// Serves one response per connection: `head` then `body_len` bytes of
/// `x` (written in pieces until the client goes away).
fn serve_big(head: String, body_len: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let head = head.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 1 << 16];
                let mut left = body_len;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if stream.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    port
}

#[test]
fn remote_files_are_bounded_in_size() {
    let cache = tempfile::tempdir().expect("tempdir");
    let l = loader(cache.path());
    let too_big = MAX_FILE_BYTES + 1;
    // Announced by Content-Length: refused before reading.
    let port = serve_big(
        format!("HTTP/1.1 200 OK\r\nContent-Length: {too_big}\r\nConnection: close\r\n\r\n"),
        too_big,
    );
    let url = format!("http://TOKEN-abc@127.0.0.1:{port}/big.yaml");
    let err = l.get_file(&url).expect_err("too large");
    assert!(err.contains("16 MiB"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}/big.yaml")), "{err}");
    assert!(!err.contains("TOKEN-abc"), "the token leaked: {err}");
    // Not announced: cut off after the limit.
    let port = serve_big(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
        MAX_FILE_BYTES * 2,
    );
    let url = format!("http://u:hunter2@127.0.0.1:{port}/big.yaml");
    let err = l.get_file(&url).expect_err("too large");
    assert!(err.contains("16 MiB"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    // Exactly the limit is fine.
    let port = serve_big(
        format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_FILE_BYTES}\r\nConnection: close\r\n\r\n"),
        MAX_FILE_BYTES,
    );
    let body = l
        .get_file(&format!("http://127.0.0.1:{port}/ok.yaml"))
        .expect("at the limit");
    assert_eq!(body.len() as u64, MAX_FILE_BYTES);
}

#[test]
fn tokens_in_urls_never_reach_an_error() {
    let cache = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 9.
    for url in [
        "https://ghp_SECRETTOKEN123@127.0.0.1:9/org/repo.git",
        "http://user:SECRETTOKEN123@127.0.0.1:9/org/repo.git",
    ] {
        let (r, _) = ls(url.to_string(), Auth::default());
        let err = r.expect_err("nothing listens");
        assert!(!err.message.contains("SECRETTOKEN123"), "{}", err.message);
        assert!(err.message.contains("127.0.0.1:9"), "{}", err.message);
        let (r, _) = fetch(url.to_string(), Auth::default());
        let err = r.expect_err("nothing listens");
        assert!(!err.message.contains("SECRETTOKEN123"), "{}", err.message);
        let l = loader(cache.path());
        let err = l
            .get_file(&format!("{url}/x.yaml"))
            .expect_err("nothing listens");
        assert!(!err.contains("SECRETTOKEN123"), "{err}");
        // The remote-base loader (the engine quotes the entry itself).
        let spec = sluice_kustomize::remote::parse(&format!("{url}//deploy?ref=main"))
            .expect("a remote target");
        let err = RemoteLoader::fetch(&*loader(cache.path()), &spec).expect_err("nothing listens");
        assert!(!err.contains("SECRETTOKEN123"), "{err}");
        assert!(err.contains("127.0.0.1:9"), "{err}");
        assert!(git::parse_url(url).is_ok());
        assert!(!git::redact_url(url).contains("SECRETTOKEN123"));
    }
    // An invalid URL with a token is refused without showing it.
    let err = git::parse_url("ftp://SECRETTOKEN123@host/r").expect_err("bad scheme");
    assert!(!err.contains("SECRETTOKEN123"), "{err}");
}
