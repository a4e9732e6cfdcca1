//! A real Gitea server for the tests of `sluice bootstrap gitea`: the binary
//! `scripts/gitea build` makes from the Go module proxy, started on
//! 127.0.0.1 with SQLite, HTTPS (a certificate from a CA made for it) and its
//! built-in SSH server, each on a free port, with an admin user and a token
//! made by Gitea's own `admin` commands.
//!
//! [`Gitea::start`] returns [`Unavailable`] when the binary is not built
//! (`scripts/gitea path` finds none, or `SLUICE_TEST_GITEA` names no file),
//! so tests can skip with the reason. The server is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::ssh_server::Unavailable;

/// Names the Gitea binary to use instead of `scripts/gitea path`'s.
pub const GITEA_ENV: &str = "SLUICE_TEST_GITEA";

/// The admin user [`Gitea::start`] creates.
pub const ADMIN: &str = "sluice-admin";

/// A running Gitea.
pub struct Gitea {
    dir: tempfile::TempDir,
    child: Child,
    http_port: u16,
    ssh_port: u16,
    ca_pem: String,
    token: String,
}

impl Drop for Gitea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Result<PathBuf, Unavailable> {
    if let Some(p) = std::env::var_os(GITEA_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Unavailable(format!(
                "{GITEA_ENV}={} is no file",
                p.display()
            )))
        };
    }
    let out = Command::new(crate::repo_root().join("scripts/gitea"))
        .arg("path")
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Unavailable(format!("running scripts/gitea: {e}")))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || path.is_empty() {
        return Err(Unavailable(
            "Gitea is not built (`make gitea-check` builds it with scripts/gitea, about 6 minutes cold, and runs this test)".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

fn run(bin: &Path, config: &Path, args: &[&str]) -> Result<String, Unavailable> {
    let out = Command::new(bin)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Unavailable(format!("running gitea: {e}")))?;
    if !out.status.success() {
        return Err(Unavailable(format!(
            "gitea {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Gitea {
    /// Starts a fresh server and waits until it answers.
    pub fn start() -> Result<Gitea, Unavailable> {
        let bin = binary()?;
        let dir = tempfile::tempdir().map_err(|e| Unavailable(e.to_string()))?;
        let d = dir.path();
        let (ca, server) = crate::certs::ca_and_server();
        let write = |name: &str, content: &str| {
            std::fs::write(d.join(name), content).map_err(|e| Unavailable(e.to_string()))
        };
        write("cert.pem", &server.cert.pem())?;
        write("key.pem", &server.key.serialize_pem())?;
        let (http_port, ssh_port) = (crate::free_port(), crate::free_port());
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "root".into());
        // Templates and locales come from the source copy beside the binary
        // (scripts/gitea builds without bindata).
        let static_root = bin.parent().map(|p| p.join("src")).unwrap_or_default();
        let dp = d.display();
        let config = format!(
            "APP_NAME = sluice test\nRUN_USER = {user}\nRUN_MODE = prod\nWORK_PATH = {dp}\n\
             I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n\n\
             [server]\nPROTOCOL = https\nCERT_FILE = {dp}/cert.pem\nKEY_FILE = {dp}/key.pem\n\
             HTTP_ADDR = 127.0.0.1\nHTTP_PORT = {http_port}\nDOMAIN = 127.0.0.1\n\
             ROOT_URL = https://127.0.0.1:{http_port}/\nSTART_SSH_SERVER = true\n\
             SSH_DOMAIN = 127.0.0.1\nSSH_LISTEN_HOST = 127.0.0.1\nSSH_PORT = {ssh_port}\n\
             SSH_LISTEN_PORT = {ssh_port}\nAPP_DATA_PATH = {dp}/data\n\
             STATIC_ROOT_PATH = {}\nOFFLINE_MODE = true\nLFS_START_SERVER = false\n\n\
             [database]\nDB_TYPE = sqlite3\nPATH = {dp}/gitea.db\n\n\
             [repository]\nROOT = {dp}/repositories\n\n\
             [security]\nINSTALL_LOCK = true\nSECRET_KEY = {}\n\n\
             [service]\nDISABLE_REGISTRATION = true\n\n\
             [log]\nMODE = console\nLEVEL = warn\n\n\
             [cron]\nENABLED = false\n\n[mailer]\nENABLED = false\n\n\
             [actions]\nENABLED = false\n\n[session]\nPROVIDER = memory\n",
            static_root.display(),
            random_hex(16),
        );
        write("app.ini", &config)?;
        let ini = d.join("app.ini");
        run(&bin, &ini, &["migrate"])?;
        let password = random_hex(12);
        run(
            &bin,
            &ini,
            &[
                "admin",
                "user",
                "create",
                "--username",
                ADMIN,
                "--password",
                &password,
                "--email",
                "admin@sluice.test",
                "--admin",
                "--must-change-password=false",
            ],
        )?;
        let token = run(
            &bin,
            &ini,
            &[
                "admin",
                "user",
                "generate-access-token",
                "--username",
                ADMIN,
                "--token-name",
                "bootstrap",
                "--scopes",
                "all",
                "--raw",
            ],
        )?
        // The console log shares stdout: the token is the last line.
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string();
        let log =
            std::fs::File::create(d.join("gitea.log")).map_err(|e| Unavailable(e.to_string()))?;
        let child = Command::new(&bin)
            .arg("web")
            .arg("--config")
            .arg(&ini)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| Unavailable(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| Unavailable(format!("starting gitea web: {e}")))?;
        let mut gitea = Gitea {
            dir,
            child,
            http_port,
            ssh_port,
            ca_pem: ca.pem,
            token,
        };
        let start = Instant::now();
        loop {
            let version = gitea.api("GET", "/version", None);
            if version.0 == 200 {
                return Ok(gitea);
            }
            if let Ok(Some(status)) = gitea.child.try_wait() {
                panic!("gitea web exited ({status}): {}", gitea.log());
            }
            if start.elapsed() > Duration::from_secs(90) {
                panic!(
                    "gitea did not answer within 90s (last answer {version:?}): {}",
                    gitea.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `127.0.0.1:PORT` of HTTPS (a bootstrap's `--hostname`).
    pub fn hostname(&self) -> String {
        format!("127.0.0.1:{}", self.http_port)
    }

    /// The port of the built-in SSH server.
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// The CA (PEM) that signed the HTTPS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA to a file in the server's directory and returns its path.
    pub fn ca_file(&self) -> PathBuf {
        let p = self.dir.path().join("ca.crt");
        std::fs::write(&p, &self.ca_pem).expect("writing the CA");
        p
    }

    /// The admin's access token (all scopes).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gitea.log")).unwrap_or_default()
    }

    /// One API call as the admin (`path` under `/api/v1`): the status and
    /// the body.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let ca = self.dir.path().join("ca.crt");
        if !ca.is_file() {
            let _ = std::fs::write(&ca, &self.ca_pem);
        }
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--http1.1", "-X", method, "--cacert"])
            .arg(&ca)
            .args(["-H", &format!("Authorization: token {}", self.token)])
            .args(["-H", "Content-Type: application/json"])
            .args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            cmd.args(["-d", b]);
        }
        cmd.arg(format!("https://{}/api/v1{path}", self.hostname()));
        let Ok(out) = cmd.output() else {
            return (0, "curl did not run".into());
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match text.rsplit_once('\n') {
            Some((body, code)) if !code.trim().starts_with('0') => {
                (code.trim().parse().unwrap_or(0), body.to_string())
            }
            _ => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }
}
