//! The bad-input suite (`tests/bad-input/cases.yaml`) through `sluice build`
//! as a user types it (kustomize's defaults): each case fails with its
//! message, within its time bound and its memory bound (the peak resident
//! size the kernel reports for the process), and never prints a byte of
//! the host file it tried to read.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_testsupport::bad_input::{Tarpit, cases};

/// Exit status and peak RSS (KiB) of `pid`, waiting at most `limit`.
fn wait_bounded(pid: i32, limit: Duration) -> Option<(i32, i64)> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: plain syscall on our own child; both out-pointers are
        // valid for the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            return Some((status, usage.ru_maxrss));
        }
        if start.elapsed() > limit {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_bad_input_fails_cleanly_through_sluice_build() {
    let tarpit = Tarpit::start();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let first_passwd_line = passwd.lines().next().unwrap_or("root:x:0:0").to_string();
    let mut failures = Vec::new();
    for case in cases() {
        let Some(want) = case.cli_error() else {
            eprintln!("{}: controller only (postBuild)", case.name);
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        case.write(dir.path(), &tarpit.addr());
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let started = Instant::now();
        // Reaped by wait4 in wait_bounded, which also reads its rusage.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("build")
            .arg(dir.path())
            .env("SLUICE_REMOTE_CACHE", dir.path().join(".remote-cache"))
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap();
        let bound = Duration::from_secs(case.seconds);
        let Some((status, rss_kib)) = wait_bounded(child.id() as i32, bound) else {
            failures.push(format!("{}: still running after {bound:?}", case.name));
            continue;
        };
        let elapsed = started.elapsed();
        let stdout = std::fs::read_to_string(out.path()).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&std::fs::read(err.path()).unwrap()).into_owned();
        let code = libc::WEXITSTATUS(status);
        let signalled = libc::WIFSIGNALED(status);
        eprintln!(
            "{}: exit {code}{} in {:.2?}, peak {} MiB",
            case.name,
            if signalled { " (signal)" } else { "" },
            elapsed,
            rss_kib / 1024
        );
        if signalled || code == 0 {
            failures.push(format!(
                "{}: expected a clean failure, got status {status}\n{stderr}",
                case.name
            ));
        } else if !stderr.contains(want) {
            failures.push(format!("{}: stderr lacks {want:?}:\n{stderr}", case.name));
        }
        if rss_kib / 1024 > case.mib as i64 {
            failures.push(format!(
                "{}: peak {} MiB over its bound of {} MiB",
                case.name,
                rss_kib / 1024,
                case.mib
            ));
        }
        if stdout.contains(&first_passwd_line) || stderr.contains(&first_passwd_line) {
            failures.push(format!("{}: printed the host's /etc/passwd", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
