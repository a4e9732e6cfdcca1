//! A private OpenSSH server for tests of Git over ssh: `sshd` from
//! openssh-server, started unprivileged-port on 127.0.0.1 with its own
//! configuration, host key, client key and `authorized_keys` in a temporary
//! directory, logging in as the current user (whose shell runs
//! `git-upload-pack`, so any bare repository on this machine is served as
//! `ssh://<user>@127.0.0.1:<port>/<absolute path>`).
//!
//! ```no_run
//! # fn f(bare: &std::path::Path) {
//! use sluice_testsupport::ssh_server::SshServer;
//! let server = match SshServer::start() {
//!     Ok(s) => s,
//!     Err(skip) => return eprintln!("skipped: {skip}"),
//! };
//! let url = server.url(bare);
//! let identity = server.identity();       // the client's private key
//! let known_hosts = server.known_hosts(); // `[127.0.0.1]:PORT ssh-ed25519 ...`
//! # }
//! ```
//!
//! [`SshServer::start`] returns [`Unavailable`] (with the reason) when there
//! is no `sshd` or `ssh-keygen` on this machine (`scripts/install-deps`
//! installs openssh-server), so tests can skip with a printed reason.
//! `SLUICE_TEST_SSHD` names another `sshd` (or, naming nothing, forces the
//! skip).
//!
//! The server is killed when the [`SshServer`] is dropped; a watchdog process
//! also kills it if the test process dies without dropping it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why no server could be started on this machine (a reason to skip).
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A running `sshd`.
pub struct SshServer {
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    child: Child,
    watchdog: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // Let the sessions that are ending finish (the listener reaps them),
        // then stop the listener.
        let children = format!("/proc/{0}/task/{0}/children", self.child.id());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2)
            && std::fs::read_to_string(&children).is_ok_and(|c| !c.trim().is_empty())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Names the `sshd` to use instead of the installed one (a path that is no
/// file makes the ssh tests skip, to try that path).
pub const SSHD_ENV: &str = "SLUICE_TEST_SSHD";

/// Where `sshd` is, if installed (it must be run by absolute path).
pub fn sshd_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SSHD_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return (p.is_absolute() && p.is_file()).then_some(p);
    }
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            let out = Command::new("sh")
                .args(["-c", "command -v sshd"])
                .output()
                .ok()?;
            let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            (out.status.success() && p.is_absolute()).then_some(p)
        })
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Generates an ed25519 key pair without passphrase at `path`(`.pub`).
pub fn keygen(path: &Path) -> Result<(), String> {
    keygen_typed(path, "ed25519", "")
}

/// Generates a key pair of `kind` (`ed25519`, `ecdsa`, `rsa`; ssh-keygen's
/// `-t`) at `path`(`.pub`), protected by `passphrase` unless it is empty.
pub fn keygen_typed(path: &Path, kind: &str, passphrase: &str) -> Result<(), String> {
    run(Command::new("ssh-keygen").args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "sluice-test",
        "-f",
        path.to_str().ok_or("non-UTF-8 path")?,
    ]))
    .map(drop)
}

/// The keys a server starts with: its host key's type, the client key's
/// type and the client key's passphrase (empty: none).
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    pub host: &'a str,
    pub client: &'a str,
    pub passphrase: &'a str,
}

impl Default for Keys<'_> {
    fn default() -> Self {
        Keys {
            host: "ed25519",
            client: "ed25519",
            passphrase: "",
        }
    }
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

impl SshServer {
    /// Starts `sshd` on a free port of 127.0.0.1 and waits until it listens.
    ///
    /// Errors other than [`Unavailable`] panic: a machine with `sshd` that
    /// cannot run it is a broken test environment, not a reason to skip.
    pub fn start() -> Result<SshServer, Unavailable> {
        SshServer::start_with(Keys::default())
    }

    /// [`SshServer::start`] with host and client keys of the given types.
    pub fn start_with(keys: Keys<'_>) -> Result<SshServer, Unavailable> {
        let Some(sshd) = sshd_path() else {
            return Err(Unavailable(match std::env::var(SSHD_ENV) {
                Ok(p) if !p.is_empty() => {
                    format!("{SSHD_ENV}={p} is not an absolute path to a file")
                }
                _ => "sshd is not installed (openssh-server; scripts/install-deps installs it)"
                    .into(),
            }));
        };
        if Command::new("ssh-keygen")
            .arg("-?")
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return Err(Unavailable(
                "ssh-keygen is not installed (openssh-client)".into(),
            ));
        }
        if Command::new("ssh")
            .arg("-V")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(Unavailable("ssh is not installed (openssh-client)".into()));
        }
        // sshd running as root insists on its privilege separation directory.
        if effective_uid() == Some(0) && !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd")
                .unwrap_or_else(|e| panic!("creating /run/sshd for sshd: {e}"));
        }
        let user = run(Command::new("id").arg("-un")).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new()
            .prefix("sluice-sshd-")
            .tempdir()
            .expect("temp dir for sshd");
        let d = dir.path();
        keygen_typed(&d.join("host_key"), keys.host, "").unwrap_or_else(|e| panic!("{e}"));
        keygen_typed(&d.join("client_key"), keys.client, keys.passphrase)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
            .expect("writing authorized_keys");

        let mut last_log = String::new();
        for _ in 0..5 {
            let port = crate::free_port();
            let config = d.join("sshd_config");
            std::fs::write(&config, sshd_config(d, port)).expect("writing sshd_config");
            let mut child = Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", sshd.display()));
            let log = Arc::new(Mutex::new(String::new()));
            let stderr = child.stderr.take().unwrap();
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
            let start = Instant::now();
            let mut listening = false;
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if log.lock().unwrap().contains("Server listening") {
                    listening = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if listening {
                let watchdog = watchdog(child.id());
                return Ok(SshServer {
                    dir,
                    port,
                    user,
                    child,
                    watchdog,
                    log,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = log.lock().unwrap().clone();
            // Most likely the port was taken in between: try another one.
        }
        panic!("sshd did not start; its log:\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that logs in (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `ssh://<user>@127.0.0.1:<port><path>` for an absolute `path`.
    pub fn url(&self, path: &Path) -> String {
        assert!(path.is_absolute(), "{} is not absolute", path.display());
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }

    /// The client's private key (OpenSSH format), authorized on the server.
    pub fn identity(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("client_key")).unwrap()
    }

    /// Adds a public key line (`ssh-ed25519 AAAA… comment`) to the keys
    /// the server accepts for the user.
    pub fn authorize(&self, public_key: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("opening authorized_keys");
        writeln!(f, "{}", public_key.trim()).expect("writing authorized_keys");
    }

    /// The client's private key file.
    pub fn identity_path(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The server's public host key (`ssh-ed25519 AAAA... comment`).
    pub fn host_public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A `known_hosts` line for this server (`[127.0.0.1]:PORT <key>`).
    pub fn known_hosts(&self) -> String {
        known_hosts_line(self.port, &self.host_public_key())
    }

    /// What sshd logged so far (`-e`, LogLevel VERBOSE).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// A `known_hosts` line for `127.0.0.1:port` with the given public key.
pub fn known_hosts_line(port: u16, public_key: &str) -> String {
    format!("[127.0.0.1]:{port} {}\n", public_key.trim())
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "# sluice test sshd\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_key\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         AllowTcpForwarding no\n\
         X11Forwarding no\n\
         PrintMotd no\n\
         AcceptEnv GIT_PROTOCOL\n\
         LogLevel VERBOSE\n"
    )
}

/// Kills `pid` when this process is gone (however it ends); `None` if no
/// watchdog could be started (the Drop still kills sshd).
fn watchdog(pid: u32) -> Option<Child> {
    let owner = std::process::id();
    Command::new("sh")
        .args([
            "-c",
            "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; kill \"$1\" 2>/dev/null",
            &owner.to_string(),
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}
