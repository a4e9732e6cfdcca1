//! Shared helpers: temporary charts, the shared corpus, the Helm binary,
//! and a normalised view of tar streams.

use std::io::Read;
use std::path::{Path, PathBuf};

/// `../shared/conformance/helm/charts`, or `None` (with a visible message)
/// when the shared corpus is absent.
pub fn corpus_charts(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/helm/charts");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{test}: skipped, ../shared/conformance/helm/charts is absent");
        None
    }
}

/// The real Helm (`SLUICE_HELM_BIN`, else what `scripts/build-helm` cached),
/// or `None` with a message.
pub fn helm_bin(test: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SLUICE_HELM_BIN") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let p = cache.join("sluice/helm-v4.2.4/helm");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("{test}: skipped, Helm v4.2.4 is not built (run scripts/build-helm)");
        None
    }
}

/// Writes `files` (path, content) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// A minimal valid chart.
pub fn demo_chart(dir: &Path) {
    write_tree(
        dir,
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"1.0\"\n",
            ),
            ("values.yaml", "replicas: 1\nimage:\n  tag: latest\n"),
            ("templates/deployment.yaml", "kind: Deployment\n"),
            ("templates/_helpers.tpl", "{{/* helpers */}}\n"),
            ("README.md", "# demo\n"),
        ],
    );
}

/// The entries of a `.tgz`: names, 512-byte headers with the mtime and
/// checksum fields blanked, and contents, in order.
pub fn tar_view(tgz: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(tgz)
        .read_to_end(&mut raw)
        .unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    let mut pax_name: Option<String> = None;
    while i + 512 <= raw.len() {
        let hdr = &raw[i..i + 512];
        if hdr.iter().all(|b| *b == 0) {
            break;
        }
        let size_field = std::str::from_utf8(&hdr[124..135])
            .unwrap()
            .trim_matches('\0');
        let size = usize::from_str_radix(size_field, 8).unwrap();
        let data = raw[i + 512..i + 512 + size].to_vec();
        let mut h = hdr.to_vec();
        h[136..156].fill(b' ');
        let cstr =
            |b: &[u8]| String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap()).into_owned();
        let mut name = cstr(&hdr[0..100]);
        let prefix = cstr(&hdr[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        if hdr[156] == b'x' {
            let rec = String::from_utf8_lossy(&data).into_owned();
            pax_name = rec
                .split_once("path=")
                .map(|(_, p)| p.trim_end_matches('\n').to_string());
        } else if let Some(p) = pax_name.take() {
            name = p;
        }
        out.push((name, h, data));
        i += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// A revision-1 install record of `rendered` (release `rel` in `namespace`),
/// at a fixed time.
pub fn install_record(
    chart: &sluice_helm::chart::Chart,
    rendered: &sluice_helm::render::Release,
    namespace: &str,
) -> sluice_helm::release::Release {
    use sluice_helm::release::{NewRevision, Release, Status};
    Release::new_revision(NewRevision {
        name: "rel",
        namespace,
        version: 1,
        chart,
        rendered,
        config: Default::default(),
        first_deployed: "2026-12-05T00:00:00Z",
        last_deployed: "2026-12-05T00:00:00Z",
        status: Status::PendingInstall,
        description: "Install complete",
        apply_method: "ssa",
    })
}

/// Panics where `a` and `b` first differ, showing both around that byte
/// under their `names`.
pub fn assert_same_text(what: &str, names: (&str, &str), a: &str, b: &str) {
    if a == b {
        return;
    }
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let around = |s: &str| {
        let (mut from, mut to) = (at.saturating_sub(80), (at + 120).min(s.len()));
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        while !s.is_char_boundary(to) {
            to += 1;
        }
        s[from..to].to_string()
    };
    panic!(
        "{what} differ at byte {at}:\n {}: {}\n {}: {}",
        names.0,
        around(a),
        names.1,
        around(b)
    );
}
