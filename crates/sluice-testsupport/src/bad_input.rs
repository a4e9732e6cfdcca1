//! The bad-input suite's cases (`tests/bad-input/cases.yaml`): written out
//! as kustomization directories, and a tarpit server for the cases that
//! fetch from the network.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// One case of the suite.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    files: BTreeMap<String, Content>,
    /// Nested bases below the case root.
    #[serde(default)]
    nest: usize,
    /// What the controller's Ready message must contain.
    pub error: String,
    /// What `sluice build` with its defaults must say, when it differs.
    #[serde(default)]
    pub cli_error: Option<String>,
    /// `spec.postBuild.substitute` of the case's Kustomization; such a case
    /// only fails in the controller (`sluice build` does not substitute).
    #[serde(default)]
    pub substitute: Option<BTreeMap<String, String>>,
    /// Wall-clock bound of one build.
    pub seconds: u64,
    /// Memory bound of one build, in MiB.
    pub mib: u64,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Repeat {
        repeat: String,
        times: usize,
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        suffix: String,
    },
    Hex {
        hex: String,
    },
}

/// Every case, in file order.
pub fn cases() -> Vec<Case> {
    let path = crate::repo_root().join("tests/bad-input/cases.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Case {
    /// The message `sluice build` must print; `None` when the case only
    /// fails through the controller.
    pub fn cli_error(&self) -> Option<&str> {
        if self.substitute.is_some() {
            return None;
        }
        Some(self.cli_error.as_deref().unwrap_or(&self.error))
    }

    /// Writes the case's directory at `dir`; `tarpit` replaces `@TARPIT@`.
    pub fn write(&self, dir: &Path, tarpit: &str) {
        for (rel, content) in &self.files {
            let bytes = match content {
                Content::Text(t) => t.replace("@TARPIT@", tarpit).into_bytes(),
                Content::Repeat {
                    repeat,
                    times,
                    prefix,
                    suffix,
                } => {
                    let mut s = String::with_capacity(prefix.len() + repeat.len() * times);
                    s.push_str(prefix);
                    let numbered = repeat.contains("{i}");
                    for i in 0..*times {
                        if numbered {
                            s.push_str(&repeat.replace("{i}", &i.to_string()));
                        } else {
                            s.push_str(repeat);
                        }
                    }
                    s.push_str(suffix);
                    s.into_bytes()
                }
                Content::Hex { hex } => {
                    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
                    digits
                        .chunks(2)
                        .map(|p| {
                            let s = std::str::from_utf8(p).expect("hex digits");
                            u8::from_str_radix(s, 16).expect("hex byte")
                        })
                        .collect()
                }
            };
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, bytes).expect("write case file");
        }
        if self.nest > 0 {
            let mut d = dir.to_path_buf();
            for _ in 0..self.nest {
                std::fs::create_dir_all(&d).expect("mkdir");
                std::fs::write(d.join("kustomization.yaml"), "resources:\n- sub\n").expect("write");
                d = d.join("sub");
            }
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(
                d.join("kustomization.yaml"),
                "configMapGenerator:\n- name: leak-deep\n  literals: [a=b]\n",
            )
            .expect("write");
        }
    }
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers
/// (it reads and drops what it gets, holding each connection open). It
/// stops by itself after ten minutes.
pub struct Tarpit {
    addr: std::net::SocketAddr,
}

impl Tarpit {
    pub fn start() -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tarpit");
        let addr = listener.local_addr().expect("tarpit address");
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(600);
            let mut held: Vec<TcpStream> = Vec::new();
            while Instant::now() < until && held.len() < 1000 {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            for mut s in held {
                let _ = s.flush();
            }
        });
        Tarpit { addr }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }
}
