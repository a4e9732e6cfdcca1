//! Multi-file builds with the options the Kustomization controller uses
//! (`load_restrict_root_only: false`, the source root as the jail): an
//! arbitrary small tree of kustomizations, resources, patches and
//! generator sources builds or fails, never panics, and nothing of the
//! files beside the root reaches the output or an error.
//!
//! Layout, made once per process:
//!
//! ```text
//! <out>/secret.yaml, <out>/secret.env     sentinel files outside the jail
//! <out>/secret-dir/kustomization.yaml     resources: [../secret.yaml]
//! <out>/root/                             the jail and the built directory
//!   link.env -> <out>/secret.env          (absolute symlink)
//!   base/leak.yaml -> ../../secret.yaml   (relative symlink)
//!   outside -> ..                         (directory symlink)
//!   <the files of the input>
//! ```
//!
//! Input: up to `NAMES.len()` parts separated by `---8<---` lines, written
//! to `NAMES` in order (a missing part: no such file). `%OUT%` and `%ROOT%`
//! in the input stand for the absolute paths of `<out>` and `<out>/root`,
//! so that absolute paths can be tried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SEP: &str = "\n---8<---\n";

/// Where the parts of the input go, in order.
const NAMES: [&str; 8] = [
    "kustomization.yaml",
    "base/kustomization.yaml",
    "base/a.yaml",
    "overlay/kustomization.yaml",
    "p.yaml",
    "data.env",
    "components/c/kustomization.yaml",
    "overlay/b.yaml",
];

/// The content of the sentinel files; no part of it may leave them.
const SENTINEL: &str = "zv9Kq2-jail-sentinel-8c1fX7w4Rt";
/// A run of this many bytes of `SENTINEL` in the output counts as a leak.
const WINDOW: usize = 12;

struct Layout {
    out: PathBuf,
    root: PathBuf,
    /// Strings that must not appear in any output or error.
    forbidden: Vec<String>,
    _dir: tempfile::TempDir,
}

fn layout() -> &'static Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    L.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::fs::canonicalize(dir.path()).expect("canonical tempdir");
        let root = out.join("root");
        let w = |p: &Path, s: &str| std::fs::write(p, s).expect("writing the layout");
        w(
            &out.join("secret.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\n  \
                 annotations:\n    a: {SENTINEL}\ndata:\n  {SENTINEL}: {SENTINEL}\n"
            ),
        );
        w(
            &out.join("secret.env"),
            &format!("TOKEN={SENTINEL}\n{SENTINEL}\n"),
        );
        std::fs::create_dir_all(out.join("secret-dir")).expect("mkdir");
        w(
            &out.join("secret-dir/kustomization.yaml"),
            "resources:\n- ../secret.yaml\n",
        );
        for d in ["base", "overlay", "components/c"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::os::unix::fs::symlink(out.join("secret.env"), root.join("link.env")).expect("ln");
        std::os::unix::fs::symlink("../../secret.yaml", root.join("base/leak.yaml")).expect("ln");
        std::os::unix::fs::symlink("..", root.join("outside")).expect("ln");
        Layout {
            out,
            root,
            forbidden: forbidden(SENTINEL),
            _dir: dir,
        }
    })
}

/// Every `WINDOW`-byte run of `s`, and the base64 groups that encode only
/// bytes of `s` at each of the three alignments (secretGenerator encodes
/// what it reads).
fn forbidden(s: &str) -> Vec<String> {
    let mut v: Vec<String> = (0..=s.len() - WINDOW)
        .map(|i| s[i..i + WINDOW].to_owned())
        .collect();
    for shift in 0..3 {
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(s.as_bytes());
        let enc = base64(&buf);
        let first = shift.div_ceil(3);
        let last = buf.len() / 3; // groups [first, last) hold only bytes of s
        v.push(enc[4 * first..4 * last].to_owned());
    }
    v
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..=c.len() {
            out.push(char::from(A[(n >> (18 - 6 * k)) as usize & 63]));
        }
        for _ in c.len()..3 {
            out.push('=');
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let l = layout();
    let text = text
        .replace("%OUT%", &l.out.to_string_lossy())
        .replace("%ROOT%", &l.root.to_string_lossy());
    let mut parts = text.split(SEP);
    for name in NAMES {
        let path = l.root.join(name);
        match parts.next() {
            Some(body) => std::fs::write(&path, body).expect("writing an input file"),
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("removing {}: {e}", path.display()),
            },
        }
    }

    let mut o = sluice_kustomize::Options::new();
    o.load_restrict_root_only = false;
    o.jail = Some(l.root.clone());
    let shown = match sluice_kustomize::build(&l.root, &o) {
        Ok(out) => {
            let mut s = out.to_yaml();
            for w in &out.warnings {
                s.push('\n');
                s.push_str(w);
            }
            s
        }
        Err(e) => e.to_string(),
    };
    for f in &l.forbidden {
        // The input may spell part of the sentinel itself.
        if shown.contains(f.as_str()) && !text.contains(f.as_str()) {
            panic!("the build shows {f:?}, from a file outside the jail:\n{shown}");
        }
    }
});
