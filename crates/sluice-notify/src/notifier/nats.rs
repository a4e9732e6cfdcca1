//! `nats`: the event, as Go marshals it, published on the subject `spec.channel` of the NATS
//! server(s) at `address` (notification-controller's NATS provider).
//!
//! The client protocol is written here (no NATS crate is needed for one publish): read the
//! server's `INFO`, upgrade to TLS when the URL is `tls://` or the server requires it, send
//! `CONNECT` with the credentials, then `PUB` and a `PING`, and wait for the `PONG` (or the
//! server's `-ERR`). Credentials, as Flux reads them from the Provider's Secret:
//!
//! - `creds`: a NATS credentials file (the user JWT and its nkey seed): the JWT is sent and the
//!   server's nonce signed with the seed;
//! - `nkey`: an nkey seed (`SU…`): its public key is sent and the nonce signed;
//! - else `username` and `password` (or those in the URL).
//!
//! Seeds are decoded as the nkeys library encodes them: base32 without padding, two prefix
//! bytes, the 32-byte ed25519 seed, a CRC-16/XMODEM (little endian) over the rest.

use std::sync::Arc;
use std::time::Duration;

use data_encoding::BASE32_NOPAD;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::SendError;
use crate::event::Event;
use crate::provider::Target;

/// The publish of one event.
#[derive(Clone, PartialEq, Eq)]
pub struct Publish {
    /// The servers to try, in order (`address` may list several, comma-separated).
    pub servers: Vec<String>,
    pub subject: String,
    pub payload: Vec<u8>,
    pub auth: Auth,
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publish")
            .field("servers", &self.servers.len())
            .field("subject", &self.subject)
            .field("payload", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    UserPassword(String, String),
    /// An nkey seed: its public key, and the nonce signed.
    Nkey(Seed),
    /// A user JWT with its nkey seed.
    Jwt(String, Seed),
}

/// A decoded nkey seed.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed {
    /// The key's type prefix byte (`U` for users: 20 << 3).
    prefix: u8,
    seed: [u8; 32],
}

const PREFIX_SEED: u8 = 18 << 3;

impl std::fmt::Debug for Seed {
    /// The key type only: a seed is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seed({})", char::from(b'A' + (self.prefix >> 3)))
    }
}

impl Seed {
    /// Decodes `SU…` (any key type).
    pub fn parse(text: &str) -> Result<Seed, String> {
        let raw = BASE32_NOPAD
            .decode(text.trim().as_bytes())
            .map_err(|_| "error parsing nkey seed: invalid encoding".to_string())?;
        if raw.len() != 36 {
            return Err("error parsing nkey seed: invalid seed length".into());
        }
        let (body, crc) = raw.split_at(34);
        if crc16(body) != u16::from_le_bytes([crc[0], crc[1]]) {
            return Err("error parsing nkey seed: invalid checksum".into());
        }
        if body[0] & 248 != PREFIX_SEED {
            return Err("error parsing nkey seed: not a seed".into());
        }
        let prefix = ((body[0] & 7) << 5) | ((body[1] & 248) >> 3);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&body[2..34]);
        Ok(Seed { prefix, seed })
    }

    /// Encodes `seed` as an nkey seed of type `prefix` (tests make keys with it).
    pub fn encode(prefix: u8, seed: &[u8; 32]) -> String {
        let mut raw = vec![PREFIX_SEED | (prefix >> 5), (prefix & 31) << 3];
        raw.extend_from_slice(seed);
        let crc = crc16(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        BASE32_NOPAD.encode(&raw)
    }

    fn pair(&self) -> Result<ring::signature::Ed25519KeyPair, String> {
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&self.seed)
            .map_err(|_| "error parsing nkey seed: not an ed25519 seed".to_string())
    }

    /// The public key, encoded (`U…` for a user).
    pub fn public_key(&self) -> Result<String, String> {
        use ring::signature::KeyPair;
        let pair = self.pair()?;
        let mut raw = vec![self.prefix];
        raw.extend_from_slice(pair.public_key().as_ref());
        let crc = crc16(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        Ok(BASE32_NOPAD.encode(&raw))
    }

    /// The nonce signed, base64url without padding (as `CONNECT`'s `sig`).
    fn sign(&self, nonce: &str) -> Result<String, String> {
        use base64::Engine;
        let sig = self.pair()?.sign(nonce.as_bytes());
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// CRC-16/XMODEM, as nkeys checks its keys.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The JWT and seed of a NATS credentials file.
fn parse_creds(text: &str) -> Result<(String, Seed), String> {
    let block = |label: &str| {
        let begin = format!("-----BEGIN {label}-----");
        let start = text.find(&begin)? + begin.len();
        let rest = &text[start..];
        let end = rest.find("------END").or_else(|| rest.find("-----END"))?;
        Some(rest[..end].trim().to_string())
    };
    let jwt = block("NATS USER JWT").ok_or("error parsing creds: no user JWT")?;
    let seed = block("USER NKEY SEED").ok_or("error parsing creds: no user nkey seed")?;
    Ok((jwt, Seed::parse(&seed)?))
}

/// The publish for `event` to `t` (Flux's checks and errors).
pub fn prepare(t: &Target, event: &Event) -> Result<Publish, String> {
    if t.address.is_empty() {
        return Err("NATS server (address) cannot be empty".into());
    }
    if t.channel.is_empty() {
        return Err("NATS subject (channel) cannot be empty".into());
    }
    let auth = if let Some(creds) = t.nats_creds.as_deref().filter(|c| !c.is_empty()) {
        let (jwt, seed) = parse_creds(&String::from_utf8_lossy(creds))?;
        Auth::Jwt(jwt, seed)
    } else if let Some(nkey) = t.nats_nkey.as_deref().filter(|c| !c.is_empty()) {
        Auth::Nkey(Seed::parse(&String::from_utf8_lossy(nkey))?)
    } else if !t.username.is_empty() && !t.password.is_empty() {
        Auth::UserPassword(t.username.clone(), t.password.clone())
    } else {
        Auth::None
    };
    Ok(Publish {
        servers: t
            .address
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        subject: t.channel.clone(),
        payload: super::chat::event_json(event).into_bytes(),
        auth,
        ca_pem: t.ca_pem.clone(),
        timeout: t.timeout,
    })
}

/// A server URL's parts: TLS wanted, host, port, and user info.
struct Server {
    tls: bool,
    host: String,
    port: u16,
    user: Option<(String, String)>,
}

fn parse_server(s: &str) -> Result<Server, String> {
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("nats://{s}")
    };
    let u = url::Url::parse(&with_scheme).map_err(|e| format!("invalid NATS server URL: {e}"))?;
    let tls = match u.scheme() {
        "nats" => false,
        "tls" => true,
        other => return Err(format!("invalid NATS server URL: scheme {other:?}")),
    };
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("invalid NATS server URL: no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let user = (!u.username().is_empty()).then(|| {
        let dec = |v: &str| {
            url::form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        (dec(u.username()), dec(u.password().unwrap_or_default()))
    });
    Ok(Server {
        tls,
        host,
        port: u.port().unwrap_or(4222),
        user,
    })
}

/// Publishes: each server in turn until one takes the message.
pub async fn publish(p: &Publish) -> Result<(), SendError> {
    let mut last = None;
    for s in &p.servers {
        match tokio::time::timeout(p.timeout, publish_to(p, s)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(SendError {
                    message: format!(
                        "error connecting to server: timed out after {:?}",
                        p.timeout
                    ),
                    retry: true,
                })
            }
        }
    }
    Err(last.unwrap_or(SendError {
        message: "error connecting to server: no servers".into(),
        retry: false,
    }))
}

async fn publish_to(p: &Publish, server: &str) -> Result<(), SendError> {
    let fail = |retry: bool| move |m: String| SendError { message: m, retry };
    let s = parse_server(server).map_err(fail(false))?;
    let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port))
        .await
        .map_err(|e| fail(true)(format!("error connecting to server: {e}")))?;
    let mut reader = BufReader::new(tcp);
    let info = read_info(&mut reader).await?;
    let tls = s.tls || info["tls_required"] == serde_json::Value::Bool(true);
    let connect = connect_line(p, &s, &info, tls).map_err(fail(false))?;
    if tls {
        let stream = tls_connect(reader.into_inner(), &s.host, p.ca_pem.as_deref()).await?;
        exchange(BufReader::new(stream), p, &connect).await
    } else {
        exchange(reader, p, &connect).await
    }
}

async fn read_info<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<serde_json::Value, SendError> {
    let line = read_line(reader).await?;
    let json = line.strip_prefix("INFO ").ok_or_else(|| SendError {
        message: format!(
            "error connecting to server: expected INFO, got {:?}",
            short(&line)
        ),
        retry: true,
    })?;
    serde_json::from_str(json).map_err(|e| SendError {
        message: format!("error connecting to server: invalid INFO: {e}"),
        retry: true,
    })
}

fn connect_line(
    p: &Publish,
    s: &Server,
    info: &serde_json::Value,
    tls: bool,
) -> Result<String, String> {
    let mut c = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "tls_required": tls,
        "name": "NATS Provider Publisher",
        "lang": "rust",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": 1,
        "echo": true,
    });
    let nonce = info["nonce"].as_str().unwrap_or_default();
    match &p.auth {
        Auth::Jwt(jwt, seed) => {
            c["jwt"] = jwt.clone().into();
            c["sig"] = seed.sign(nonce)?.into();
        }
        Auth::Nkey(seed) => {
            c["nkey"] = seed.public_key()?.into();
            c["sig"] = seed.sign(nonce)?.into();
        }
        Auth::UserPassword(u, pw) => {
            c["user"] = u.clone().into();
            c["pass"] = pw.clone().into();
        }
        Auth::None => {
            if let Some((u, pw)) = &s.user {
                c["user"] = u.clone().into();
                c["pass"] = pw.clone().into();
            }
        }
    }
    Ok(format!("CONNECT {c}\r\n"))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: BufReader<S>,
    p: &Publish,
    connect: &str,
) -> Result<(), SendError> {
    let mut out = Vec::with_capacity(connect.len() + p.payload.len() + 64);
    out.extend_from_slice(connect.as_bytes());
    out.extend_from_slice(format!("PUB {} {}\r\n", p.subject, p.payload.len()).as_bytes());
    out.extend_from_slice(&p.payload);
    out.extend_from_slice(b"\r\nPING\r\n");
    let write = |e: std::io::Error| SendError {
        message: format!("error publishing message to server: {e}"),
        retry: true,
    };
    stream.get_mut().write_all(&out).await.map_err(write)?;
    stream.get_mut().flush().await.map_err(write)?;
    loop {
        let line = read_line(&mut stream).await?;
        if line == "PONG" {
            return Ok(());
        }
        if line == "PING" {
            stream
                .get_mut()
                .write_all(b"PONG\r\n")
                .await
                .map_err(write)?;
            continue;
        }
        if let Some(err) = line.strip_prefix("-ERR ") {
            let err = err.trim().trim_matches('\'');
            let auth = err.to_ascii_lowercase().contains("authorization");
            return Err(SendError {
                message: format!("error connecting to server: nats: {}", err.to_lowercase()),
                retry: !auth,
            });
        }
        // +OK, INFO updates: nothing to do.
    }
}

/// The longest protocol line read (an `INFO` of a large cluster fits).
const MAX_LINE: usize = 64 * 1024;

async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<String, SendError> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| SendError {
            message: format!("error connecting to server: {e}"),
            retry: true,
        })?;
    if n == 0 || !buf.ends_with(b"\n") {
        return Err(SendError {
            message: "error connecting to server: the connection closed".into(),
            retry: true,
        });
    }
    Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
}

fn short(s: &str) -> &str {
    let end = s.char_indices().nth(64).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

async fn tls_connect(
    tcp: tokio::net::TcpStream,
    host: &str,
    ca_pem: Option<&[u8]>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, SendError> {
    let fail = |m: String| SendError {
        message: format!("error connecting to server: {m}"),
        retry: false,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = ca_pem {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| fail(format!("invalid CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| fail(format!("invalid CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| fail(format!("invalid server name: {e}")))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| SendError {
            message: format!("error connecting to server: TLS: {e}"),
            retry: true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_round_trip_and_are_checked() {
        let user = 20 << 3;
        let text = Seed::encode(user, &[7u8; 32]);
        assert!(text.starts_with("SU"), "{text}");
        let seed = Seed::parse(&text).unwrap();
        assert_eq!(seed.prefix, user);
        assert!(seed.public_key().unwrap().starts_with('U'));
        let mut broken = text.clone().into_bytes();
        broken[10] = if broken[10] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            Seed::parse(std::str::from_utf8(&broken).unwrap()).unwrap_err(),
            "error parsing nkey seed: invalid checksum"
        );
        assert!(Seed::parse("not base32!").is_err());
    }

    #[tokio::test]
    async fn the_servers_answer_decides() {
        let publish = Publish {
            servers: vec!["nats://x".into()],
            subject: "flux".into(),
            payload: b"{}".to_vec(),
            auth: Auth::None,
            ca_pem: None,
            timeout: Duration::from_secs(5),
        };
        for (answer, expect) in [
            ("+OK\r\nPING\r\nPONG\r\n", Ok(())),
            (
                "-ERR 'Authorization Violation'\r\n",
                Err((
                    "error connecting to server: nats: authorization violation",
                    false,
                )),
            ),
            (
                "-ERR 'Maximum Payload Violation'\r\n",
                Err((
                    "error connecting to server: nats: maximum payload violation",
                    true,
                )),
            ),
            (
                "",
                Err(("error publishing message to server: broken pipe", true)),
            ),
        ] {
            let (client, mut server) = tokio::io::duplex(4096);
            server.write_all(answer.as_bytes()).await.unwrap();
            // A server that said nothing hangs up; the others stay connected.
            let _open = (!answer.is_empty()).then_some(server);
            let got = exchange(BufReader::new(client), &publish, "CONNECT {}\r\n").await;
            match (got, expect) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err((message, retry))) => {
                    assert_eq!((e.message.as_str(), e.retry), (message, retry));
                }
                (got, expect) => panic!("{answer:?}: {got:?} vs {expect:?}"),
            }
        }
    }

    #[test]
    fn creds_files_and_server_urls_are_read() {
        let seed = Seed::encode(20 << 3, &[1u8; 32]);
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        let (jwt, s) = parse_creds(&creds).unwrap();
        assert_eq!(jwt, "eyJhbGciOi.x.y");
        assert_eq!(s, Seed::parse(&seed).unwrap());
        let s = parse_server("nats://u:p%40ss@nats.lan").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("nats.lan", 4222, false));
        assert_eq!(s.user, Some(("u".into(), "p@ss".into())));
        let s = parse_server("tls://[::1]:4443").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("::1", 4443, true));
        assert!(parse_server("http://h").is_err());
        assert_eq!(parse_server("127.0.0.1:5000").unwrap().port, 5000);
    }
}
