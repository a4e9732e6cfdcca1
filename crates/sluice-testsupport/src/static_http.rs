//! A plain HTTP server for a fixed set of files, on a free local port: what
//! a test needs to stand for a web server a controller reads from (the
//! documents a chart's schema refers to). Every other path is a 404; the
//! requests are counted, so a test can tell a cache from a fetch.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The running server; it lives as long as the test process.
pub struct StaticServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl StaticServer {
    /// Serves `files` (absolute path → body).
    pub fn start<P: Into<String>, B: Into<Vec<u8>>>(
        files: impl IntoIterator<Item = (P, B)>,
    ) -> Self {
        let files: BTreeMap<String, Vec<u8>> = files
            .into_iter()
            .map(|(p, b)| (p.into(), b.into()))
            .collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a local port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                answer(conn, &files);
            }
        });
        StaticServer { url, hits }
    }

    /// How many requests it has had.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(mut conn: std::net::TcpStream, files: &BTreeMap<String, Vec<u8>>) {
    let Ok(read) = conn.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    let (status, body): (&str, &[u8]) = match files.get(&path) {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b""),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(body);
}
