//! A forward HTTP proxy for tests of `spec.proxySecretRef`: plain-HTTP requests in absolute
//! form (`GET http://host:port/path HTTP/1.1`) are sent on to their host, one connection per
//! request (the body, sized or chunked, copied as it comes), and recorded; with credentials set, a request without the right
//! `Proxy-Authorization: Basic …` is answered 407 and goes nowhere. `CONNECT` (HTTPS through
//! the proxy) is not served: the tests' registries speak plain HTTP.
//!
//! It runs on a thread and runtime of its own (usable from plain and async tests) and stops
//! when the handle is dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarded {
    pub method: String,
    /// The absolute URL asked for.
    pub url: String,
    /// Whether it was sent on (false: refused with 407).
    pub forwarded: bool,
}

/// A running proxy.
pub struct ForwardProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Forwarded>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ForwardProxy {
    /// Starts a proxy on 127.0.0.1, asking for `credentials` (user, password) if given.
    pub fn start(credentials: Option<(&str, &str)>) -> ForwardProxy {
        let expected = credentials.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let log = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the proxy");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a port for the proxy");
                let _ = ready_tx.send(listener.local_addr().expect("the proxy's address"));
                let serve = async {
                    loop {
                        let Ok((conn, _)) = listener.accept().await else {
                            continue;
                        };
                        let (log, expected) = (log.clone(), expected.clone());
                        tokio::spawn(async move {
                            let _ = handle(conn, &log, expected.as_deref()).await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = ready_rx.recv().expect("the proxy starts");
        ForwardProxy {
            addr,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Forwarded> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection: one request, sent on with `Connection: close`, the answer copied
/// back until the upstream closes.
async fn handle(
    conn: TcpStream,
    log: &Mutex<Vec<Forwarded>>,
    expected: Option<&str>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut parts = request_line.split_whitespace();
    let (method, url) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut headers = Vec::new();
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "proxy-authorization" => authorization = Some(value.to_owned()),
            "proxy-connection" | "connection" => {}
            _ => headers.push(line.clone()),
        }
    }
    // Whatever of the body was read with the head goes first; the rest (sized or chunked)
    // is copied as it comes.
    let early = reader.buffer().to_vec();
    let mut conn = reader.into_inner();
    let allowed = expected.is_none_or(|e| authorization.as_deref() == Some(e));
    let target = url
        .strip_prefix("http://")
        .map(|rest| rest.split_once('/').unwrap_or((rest, "")));
    let record = |forwarded| {
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Forwarded {
                method: method.clone(),
                url: url.clone(),
                forwarded,
            });
    };
    let (true, Some((host, path))) = (allowed, target) else {
        record(false);
        let status = if allowed {
            "400 Bad Request"
        } else {
            "407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\""
        };
        conn.write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        return Ok(());
    };
    record(true);
    let mut upstream = TcpStream::connect(host).await?;
    let mut head = format!("{method} /{path} HTTP/1.1\r\n");
    for h in &headers {
        head.push_str(h);
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes()).await?;
    upstream.write_all(&early).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}
