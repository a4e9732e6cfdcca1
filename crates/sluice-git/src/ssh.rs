//! Git over ssh with a Rust ssh client (russh), so the controller needs no
//! `ssh` program and no shell: the image holds nothing but `sluice`.
//!
//! [`connect`] opens the session on a thread of its own (with a small
//! runtime), checks the host key against the Secret's `known_hosts` only,
//! logs in with the Secret's `identity` (a passphrase-protected one with
//! its `password`), runs `git-upload-pack '<path>'` with
//! `GIT_PROTOCOL=version=2` (as OpenSSH's `SendEnv` does for git) and hands
//! gix a transport that speaks git over the channel. What the remote writes
//! to stderr explains a failure (a missing repository), as ssh's own
//! diagnostics did. The whole session ends at the operation's deadline.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gix::bstr::{BString, ByteSlice};
use gix::protocol::transport::Protocol;
use gix::protocol::transport::client::git::ConnectMode;
use gix::protocol::transport::client::git::blocking_io::Connection;
use hmac::{KeyInit, Mac};
use russh::ChannelMsg;
use russh::client;
use russh::keys::ssh_key::known_hosts::{HostPatterns, KnownHosts, Marker};
use russh::keys::{self, Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKey};
use tokio::sync::mpsc;

use crate::fetch::{Auth, GitError, GitErrorKind};

/// The longest an ssh connection may take to be established (TCP, the ssh
/// handshake and the login), whatever the operation's timeout.
pub const MAX_SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of the remote's stderr kept for a message.
const MAX_STDERR: usize = 8 * 1024;

/// The host keys `known_hosts` accepts for one host, and those it revokes.
#[derive(Debug, Default)]
pub(crate) struct HostKeys {
    pub allowed: Vec<PublicKey>,
    pub revoked: Vec<PublicKey>,
}

impl HostKeys {
    /// The entries of `known_hosts` for `host:port`, as OpenSSH matches
    /// them: `host` (port 22) or `[host]:port`, comma-separated patterns with
    /// `*` and `?`, a matching `!pattern` excluding the line, hashed names
    /// (`|1|salt|hash`), `@revoked` keys refused. `@cert-authority` lines
    /// are skipped (no host certificate is ever asked for), as are lines
    /// that do not parse.
    pub fn for_host(known_hosts: &str, host: &str, port: u16) -> HostKeys {
        let target = if port == 22 {
            host.to_ascii_lowercase()
        } else {
            format!("[{}]:{port}", host.to_ascii_lowercase())
        };
        let mut keys = HostKeys::default();
        for line in known_hosts.lines() {
            // ssh-key splits on single spaces; OpenSSH on any blank run.
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            let Some(Ok(entry)) = KnownHosts::new(&line).next() else {
                continue;
            };
            if !host_matches(entry.host_patterns(), &target) {
                continue;
            }
            match entry.marker() {
                None => keys.allowed.push(entry.public_key().clone()),
                Some(Marker::Revoked) => keys.revoked.push(entry.public_key().clone()),
                Some(Marker::CertAuthority) => {}
            }
        }
        keys
    }

    /// Whether the server's `key` is one of ours and not revoked (the key
    /// material is compared, not the comment).
    fn accepts(&self, key: &PublicKey) -> bool {
        let same = |k: &PublicKey| k.key_data() == key.key_data();
        !self.revoked.iter().any(same) && self.allowed.iter().any(same)
    }

    /// The host-key algorithms to offer, in russh's order of preference,
    /// limited to those of the accepted keys (as OpenSSH does with a known
    /// host): a server with an ed25519 and an RSA key, of which only the RSA
    /// one is in `known_hosts`, must not be asked for the ed25519 one.
    fn algorithms(&self, preferred: &[Algorithm]) -> Vec<Algorithm> {
        preferred
            .iter()
            .filter(|a| {
                self.allowed.iter().any(|k| match (k.algorithm(), a) {
                    (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
                    (k, a) => k == **a,
                })
            })
            .cloned()
            .collect()
    }
}

fn host_matches(patterns: &HostPatterns, target: &str) -> bool {
    match patterns {
        HostPatterns::Patterns(list) => {
            let mut matched = false;
            for p in list {
                let p = p.to_ascii_lowercase();
                if let Some(negated) = p.strip_prefix('!') {
                    if glob(negated.as_bytes(), target.as_bytes()) {
                        return false;
                    }
                } else if glob(p.as_bytes(), target.as_bytes()) {
                    matched = true;
                }
            }
            matched
        }
        HostPatterns::HashedName { salt, hash } => {
            let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                return false;
            };
            mac.update(target.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
    }
}

/// OpenSSH's host pattern matching: `*` any run, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// The client side of the session: accepts only what `known_hosts` lists,
/// and remembers what it was shown for the message of a refusal.
struct Verifier {
    keys: HostKeys,
    refused: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let ok = self.keys.accepts(key);
        if !ok && let Ok(mut r) = self.refused.lock() {
            *r = Some(format!(
                "{} {}",
                key.algorithm(),
                key.fingerprint(HashAlg::Sha256)
            ));
        }
        Ok(ok)
    }
}

/// Where to connect and as whom, from a parsed ssh URL.
struct Target {
    host: String,
    port: u16,
    user: String,
    /// `git-upload-pack '<path>'`.
    command: Vec<u8>,
    /// The repository path as gix reports it.
    path: BString,
    url: BString,
}

impl Target {
    fn of(url: &gix::Url) -> Result<Target, String> {
        let host = url.host().filter(|h| !h.is_empty()).ok_or("no host")?;
        let path = gix::url::expand_path::for_shell(url.path.clone());
        if path.trim_start().first() == Some(&b'-') {
            return Err(format!(
                "the repository path '{}' starts with '-' and could be read as an option",
                path
            ));
        }
        let mut command = b"git-upload-pack ".to_vec();
        command.extend_from_slice(&gix::quote::single(path.as_bstr()));
        Ok(Target {
            host: host.to_string(),
            port: url.port_or_default().unwrap_or(22),
            user: url.user().unwrap_or("git").to_string(),
            command,
            path,
            url: url.to_bstring(),
        })
    }

    fn display(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

/// What gix reads: the remote's stdout, then an error carrying its stderr
/// when it failed, or the session's own failure (the deadline).
pub(crate) struct Reader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

/// Blocking, as gix's transport is: called on a blocking thread (the
/// controller runs Git operations with `spawn_blocking`), never on an async
/// worker.
impl io::Read for Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            // The session thread ends at the deadline, which closes this.
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => {
                    self.buf = chunk?;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What gix writes: sent to the remote's stdin by the session thread;
/// dropping it sends EOF and ends the session.
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.is_empty() {
            return Ok(0);
        }
        self.tx
            .send(b.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the ssh session has ended"))?;
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// gix's git protocol over an ssh channel.
pub(crate) type SshTransport = Connection<Reader, Writer>;

/// Opens an ssh session to `url` with the Secret's material and starts
/// `git-upload-pack` there. Errors say what ssh would have said ("Host key
/// verification failed", "Permission denied (publickey)") and never show a
/// key.
pub(crate) fn connect(
    url: &gix::Url,
    auth: &Auth,
    deadline: Instant,
) -> Result<SshTransport, GitError> {
    let failed = |kind, message: String| GitError { kind, message };
    let target = Target::of(url).map_err(|m| failed(GitErrorKind::Operation, m))?;
    let known_hosts = auth
        .known_hosts
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let keys = HostKeys::for_host(&known_hosts, &target.host, target.port);
    if keys.allowed.is_empty() {
        return Err(failed(
            GitErrorKind::Operation,
            format!(
                "Host key verification failed: known_hosts has no key for {}",
                target.display()
            ),
        ));
    }
    let identity = match &auth.ssh_identity {
        Some(pem) => {
            let pem = String::from_utf8_lossy(pem);
            let key =
                keys::decode_secret_key(&pem, auth.ssh_passphrase.as_deref()).map_err(|e| {
                    failed(
                        GitErrorKind::Auth,
                        identity_error(&e, auth.ssh_passphrase.is_some()),
                    )
                })?;
            Some(Arc::new(key))
        }
        None => None,
    };

    let mut config = client::Config {
        nodelay: true,
        ..Default::default()
    };
    let algorithms = keys.algorithms(&config.preferred.key);
    config.preferred.key = Cow::Owned(algorithms);
    let left = deadline.saturating_duration_since(Instant::now());
    // A silent server is noticed after about a third of the time left (at
    // most 30 s), as `ServerAliveInterval` did.
    config.keepalive_interval = Some(Duration::from_secs((left.as_secs() / 9).clamp(1, 10)));
    config.keepalive_max = 3;

    let (out_tx, out_rx) = mpsc::channel(32);
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (setup_tx, setup_rx) = std::sync::mpsc::channel();
    let refused = Arc::new(std::sync::Mutex::new(None));
    let verifier = Verifier {
        keys,
        refused: refused.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            failed(
                GitErrorKind::Operation,
                format!("starting the ssh client: {e}"),
            )
        })?;
    let session = Session {
        target,
        identity,
        config: Arc::new(config),
        deadline: tokio::time::Instant::from_std(deadline),
    };
    let shown = session.target.display();
    let path = session.target.path.clone();
    let custom_url = session.target.url.clone();
    std::thread::Builder::new()
        .name("sluice-ssh".into())
        .spawn(move || {
            runtime.block_on(session.run(verifier, setup_tx, out_tx, in_rx));
        })
        .map_err(|e| {
            failed(
                GitErrorKind::Operation,
                format!("starting the ssh client: {e}"),
            )
        })?;
    // The session bounds its own setup; this only guards against a thread
    // that never answers.
    let wait = left.min(MAX_SSH_CONNECT_TIMEOUT) + Duration::from_secs(5);
    match setup_rx.recv_timeout(wait) {
        Ok(Ok(())) => {}
        Ok(Err(SetupError::HostKey)) => {
            let shown_key = refused
                .lock()
                .ok()
                .and_then(|r| r.clone())
                .unwrap_or_else(|| "its key".into());
            return Err(failed(
                GitErrorKind::Operation,
                format!(
                    "Host key verification failed: {shown} offered {shown_key}, which is not in known_hosts"
                ),
            ));
        }
        Ok(Err(SetupError::Other(kind, m))) => return Err(failed(kind, m)),
        Err(_) => {
            return Err(failed(
                GitErrorKind::Operation,
                format!("ssh: connecting to {shown} did not finish (timed out)"),
            ));
        }
    }
    let reader = Reader {
        rx: out_rx,
        buf: Vec::new(),
        pos: 0,
    };
    let writer = Writer { tx: in_tx };
    Ok(Connection::new(
        reader,
        writer,
        Protocol::V2,
        path,
        None::<(&str, Option<u16>)>,
        ConnectMode::Process,
        false,
    )
    .custom_url(Some(custom_url)))
}

/// Why an identity could not be read, without its content.
fn identity_error(e: &keys::Error, has_passphrase: bool) -> String {
    match e {
        keys::Error::KeyIsEncrypted if !has_passphrase => {
            "the ssh identity is passphrase-protected and the Secret has no 'password'".into()
        }
        _ if has_passphrase => format!(
            "cannot decrypt the ssh identity with the Secret's 'password' (is it the right one?): {e}"
        ),
        _ => format!("cannot read the ssh identity: {e}"),
    }
}

enum SetupError {
    HostKey,
    Other(GitErrorKind, String),
}

struct Session {
    target: Target,
    identity: Option<Arc<keys::PrivateKey>>,
    config: Arc<client::Config>,
    deadline: tokio::time::Instant,
}

impl Session {
    async fn run(
        self,
        verifier: Verifier,
        setup: std::sync::mpsc::Sender<Result<(), SetupError>>,
        out: mpsc::Sender<io::Result<Vec<u8>>>,
        mut input: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let connect_by = self
            .deadline
            .min(tokio::time::Instant::now() + MAX_SSH_CONNECT_TIMEOUT);
        let opened = tokio::time::timeout_at(connect_by, self.open(verifier)).await;
        let (handle, channel) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                let _ = setup.send(Err(e));
                return;
            }
            Err(_) => {
                let _ = setup.send(Err(SetupError::Other(
                    GitErrorKind::Operation,
                    format!("ssh: connecting to {} timed out", self.target.display()),
                )));
                return;
            }
        };
        let _ = setup.send(Ok(()));
        let (mut read, write) = channel.split();
        // gix → remote stdin; EOF once gix is done writing.
        let writer = tokio::spawn(async move {
            while let Some(data) = input.recv().await {
                if write.data(&data[..]).await.is_err() {
                    return;
                }
            }
            let _ = write.eof().await;
        });
        let mut stderr = Vec::new();
        let mut status = None;
        let mut refused = false;
        let deadline = tokio::time::sleep_until(self.deadline);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if out.send(Ok(data.to_vec())).await.is_err() {
                            break;
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        let room = MAX_STDERR.saturating_sub(stderr.len());
                        stderr.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(ChannelMsg::Failure) => refused = true,
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                // gix is done with the connection (it dropped the reader).
                () = out.closed() => break,
                () = &mut deadline => {
                    let _ = out
                        .send(Err(io::Error::new(io::ErrorKind::TimedOut, "ssh: the operation's deadline passed (timed out)")))
                        .await;
                    writer.abort();
                    let _ = handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
                    return;
                }
            }
        }
        if refused || status.is_some_and(|s| s != 0) {
            let said = stderr_line(&stderr);
            let message = match (refused, said.is_empty()) {
                (true, _) => format!(
                    "ssh: the server refused to run {}",
                    String::from_utf8_lossy(&self.target.command)
                ),
                (false, true) => format!(
                    "ssh: the remote command exited with status {}",
                    status.unwrap_or_default()
                ),
                (false, false) => format!("ssh: {said}"),
            };
            let _ = out.send(Err(io::Error::other(message))).await;
        }
        drop(out);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            handle.disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
    }

    /// TCP, the handshake (host key checked), the login and
    /// `git-upload-pack` started.
    async fn open(
        &self,
        verifier: Verifier,
    ) -> Result<(client::Handle<Verifier>, russh::Channel<client::Msg>), SetupError> {
        let t = &self.target;
        let other = |m: String| SetupError::Other(GitErrorKind::Operation, m);
        let mut handle = client::connect(self.config.clone(), (t.host.as_str(), t.port), verifier)
            .await
            .map_err(|e| match e {
                russh::Error::UnknownKey => SetupError::HostKey,
                e => other(format!("ssh: connecting to {}: {e}", t.display())),
            })?;
        let denied = || {
            SetupError::Other(
                GitErrorKind::Auth,
                format!(
                    "ssh: {}@{}: Permission denied (publickey)",
                    t.user,
                    t.display()
                ),
            )
        };
        let Some(key) = &self.identity else {
            return Err(denied());
        };
        let hash = if key.algorithm().is_rsa() {
            // No server-sig-algs extension: SHA-512 as OpenSSH tries first.
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| other(format!("ssh: {e}")))?
                .unwrap_or(Some(HashAlg::Sha512))
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(key.clone(), hash))
            .await
            .map_err(|e| other(format!("ssh: authenticating as {}: {e}", t.user)))?;
        if !auth.success() {
            return Err(denied());
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| other(format!("ssh: opening a session: {e}")))?;
        channel
            .set_env(false, "GIT_PROTOCOL", "version=2")
            .await
            .map_err(|e| other(format!("ssh: {e}")))?;
        channel
            .exec(true, t.command.clone())
            .await
            .map_err(|e| other(format!("ssh: starting git-upload-pack: {e}")))?;
        Ok((handle, channel))
    }
}

/// The key types `sluice create secret git` generates (Flux's
/// `--ssh-key-algorithm`, `--ssh-ecdsa-curve`, `--ssh-rsa-bits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    Ecdsa(EcdsaCurveName),
    Rsa(usize),
}

/// An ECDSA curve by its Flux name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcdsaCurveName {
    P256,
    P384,
    P521,
}

/// A new key pair: the private key in OpenSSH format (what a Secret's
/// `identity` holds) and the public key line (`identity.pub`, the deploy
/// key to add on the Git server).
pub fn generate_identity(kind: KeyKind, comment: &str) -> Result<(String, String), String> {
    use keys::ssh_key::private::{KeypairData, RsaKeypair};
    use keys::ssh_key::{EcdsaCurve, LineEnding};
    let mut rng = rand_core::OsRng;
    let key = match kind {
        KeyKind::Ed25519 => keys::PrivateKey::random(&mut rng, Algorithm::Ed25519),
        KeyKind::Ecdsa(c) => {
            let curve = match c {
                EcdsaCurveName::P256 => EcdsaCurve::NistP256,
                EcdsaCurveName::P384 => EcdsaCurve::NistP384,
                EcdsaCurveName::P521 => EcdsaCurve::NistP521,
            };
            keys::PrivateKey::random(&mut rng, Algorithm::Ecdsa { curve })
        }
        KeyKind::Rsa(bits) => RsaKeypair::random(&mut rng, bits)
            .and_then(|k| keys::PrivateKey::new(KeypairData::from(k), "")),
    };
    let mut key = key.map_err(|e| format!("generating the ssh key: {e}"))?;
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| format!("encoding the ssh key: {e}"))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("encoding the ssh public key: {e}"))?;
    Ok((private.to_string(), public))
}

/// Asks the server of an ssh `url` for its host key, as `ssh-keyscan`
/// does, and returns it as a known_hosts line (`host` or `[host]:port`,
/// the key type and the key). The key is whatever the server offers first
/// of the types sluice speaks; the caller prints its fingerprint so it can
/// be checked.
pub fn scan_known_hosts(url: &str, timeout: Duration) -> Result<String, String> {
    let parsed = gix::url::parse(url.as_bytes().as_bstr())
        .map_err(|e| format!("invalid URL '{url}': {e}"))?;
    let target = Target::of(&parsed)?;
    let seen = Arc::new(std::sync::Mutex::new(None));
    let scanner = Scanner { seen: seen.clone() };
    let config = Arc::new(client::Config::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the ssh client: {e}"))?;
    let addr = (target.host.clone(), target.port);
    let outcome = runtime.block_on(tokio::time::timeout(
        timeout,
        client::connect(config, addr, scanner),
    ));
    let key: Option<PublicKey> = seen.lock().ok().and_then(|k| k.clone());
    match (key, outcome) {
        (Some(key), _) => {
            let mut key = key;
            key.set_comment("");
            let text = key
                .to_openssh()
                .map_err(|e| format!("encoding the host key: {e}"))?;
            Ok(format!("{} {}\n", target.display(), text.trim()))
        }
        (None, Err(_)) => Err(format!(
            "scanning the host key of {}: timed out after {}s",
            target.display(),
            timeout.as_secs()
        )),
        (None, Ok(Err(e))) => Err(format!(
            "scanning the host key of {}: {e}",
            target.display()
        )),
        (None, Ok(Ok(_))) => Err(format!("{} showed no host key", target.display())),
    }
}

/// Records the server's host key and ends the handshake.
struct Scanner {
    seen: Arc<std::sync::Mutex<Option<PublicKey>>>,
}

impl client::Handler for Scanner {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(key.clone());
        }
        Ok(false)
    }
}

/// The remote's stderr as one line.
fn stderr_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKN8w4DlZB/MYt9Z4ioYsvw4CFlCxmRtZm7F5DVHeIsh";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIINATKeslllYJ1zKv8NjTw1VmoaM+RLL5+KmQLwhSiDX";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn hosts_match_as_openssh_matches_them() {
        let kh = format!(
            "# comment\n\
             github.com,gitea.lan\t{ED}\n\
             [gitea.lan]:2222 {ED2}\n\
             *.example.org,!bad.example.org {ED}\n\
             git?.example.net {ED2}\n\
             not a key line\n"
        );
        let allowed = |h: &str, p: u16| HostKeys::for_host(&kh, h, p).allowed;
        assert_eq!(allowed("gitea.lan", 22), vec![key(ED)]);
        assert_eq!(allowed("GITEA.lan", 2222), vec![key(ED2)]);
        assert!(allowed("gitea.lan", 2223).is_empty());
        assert_eq!(allowed("a.example.org", 22), vec![key(ED)]);
        assert!(allowed("bad.example.org", 22).is_empty());
        assert_eq!(allowed("git1.example.net", 22), vec![key(ED2)]);
        assert!(allowed("git12.example.net", 22).is_empty());
    }

    #[test]
    fn hashed_names_and_revoked_keys() {
        // What `ssh-keygen -H` wrote for "[127.0.0.1]:2222 <ED>".
        let line = format!("|1|so3NZxurv1u1ziHUfEhQgTMFzog=|yNxT0YVnPp1V0jOcXrquScquVAU= {ED}\n");
        let keys = HostKeys::for_host(&line, "127.0.0.1", 2222);
        assert!(keys.accepts(&key(ED)));
        assert!(!HostKeys::for_host(&line, "127.0.0.1", 22).accepts(&key(ED)));

        let kh = format!("gitea.lan {ED}\ngitea.lan {ED2}\n@revoked gitea.lan {ED}\n");
        let keys = HostKeys::for_host(&kh, "gitea.lan", 22);
        assert!(!keys.accepts(&key(ED)), "a revoked key is refused");
        assert!(
            keys.accepts(&key(ED2)),
            "another key of the host still counts"
        );
    }

    #[test]
    fn only_the_host_key_algorithms_known_are_offered() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDndZ0n1+9+fvsv+v4KBQS5BjuH7a2taclJEalWc3E5/unAQedPyyQSrZ5C1FOEoKoWMdm9tvd7XEd6dSwKxL7ibA8FbOwGupvSkgIIN5Tp2CAsIuqZ7rKyRzPOIbT1X+jtx8FhWMIZXTK5EWXuYWbU0VdNMMxlSm2dIVddm99ZZQ==";
        let keys = HostKeys::for_host(&format!("h {rsa}\n"), "h", 22);
        let offered = keys.algorithms(&client::Config::default().preferred.key);
        assert!(!offered.is_empty());
        assert!(
            offered.iter().all(|a| matches!(a, Algorithm::Rsa { .. })),
            "{offered:?}"
        );
    }

    #[test]
    fn an_encrypted_identity_without_password_says_so() {
        assert_eq!(
            identity_error(&keys::Error::KeyIsEncrypted, false),
            "the ssh identity is passphrase-protected and the Secret has no 'password'"
        );
    }

    #[test]
    fn the_upload_pack_command_quotes_the_path() {
        let url = gix::url::parse(b"ssh://git@h:2222/it's/repo.git".as_bstr()).unwrap();
        let t = Target::of(&url).unwrap();
        assert_eq!(t.command, b"git-upload-pack '/it'\\''s/repo.git'".to_vec());
        assert_eq!((t.port, t.user.as_str()), (2222, "git"));
        let scp = gix::url::parse(b"git@h:org/repo.git".as_bstr()).unwrap();
        assert_eq!(
            Target::of(&scp).unwrap().command,
            b"git-upload-pack 'org/repo.git'".to_vec()
        );
        let dash = gix::url::parse(b"ssh://h/-oProxyCommand=x".as_bstr()).unwrap();
        assert!(
            Target::of(&dash).is_ok(),
            "the leading slash keeps it a path"
        );
    }
}
