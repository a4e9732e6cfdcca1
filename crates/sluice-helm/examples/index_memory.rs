//! Peak heap while resolving a chart in a large `index.yaml`, streamed from
//! a file: the figure in the README.
//!
//! `cargo run --release -p sluice-helm --example index_memory [MB [KEEP]]`
//! (default 20): writes an index of about that size (Bitnami-like entries)
//! to a temporary file (or to KEEP, left in place for other tools), then
//! resolves one chart and validates the whole index, printing the peak heap
//! of each against the file size.

use std::io::{BufReader, BufWriter, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

#[path = "support/counting.rs"]
mod counting;
use counting::{CURRENT, PEAK};

fn write_index(w: &mut impl Write, target_bytes: u64) -> std::io::Result<(usize, usize)> {
    writeln!(w, "apiVersion: v1\nentries:")?;
    let mut written = 0u64;
    let (mut charts, mut versions) = (0, 0);
    while written < target_bytes {
        let name = format!("chart-{charts:05}");
        let mut block = format!("  {name}:\n");
        for v in 0..20 {
            block.push_str(&format!(
                "  - annotations:\n      category: Infrastructure\n      licenses: Apache-2.0\n    apiVersion: v2\n    appVersion: 1.{v}.0\n    created: \"2024-0{m}-1{d}T10:20:30.123456789Z\"\n    dependencies:\n    - name: common\n      repository: oci://registry-1.docker.io/bitnamicharts\n      tags:\n      - bitnami-common\n      version: 2.x.x\n    description: A chart number {charts} with a description long enough to look real.\n    digest: {digest:064x}\n    home: https://example.com/{name}\n    icon: https://example.com/{name}.svg\n    keywords:\n    - {name}\n    - infrastructure\n    maintainers:\n    - name: Someone\n      url: https://github.com/someone\n    name: {name}\n    sources:\n    - https://github.com/example/{name}\n    urls:\n    - https://charts.example.com/{name}-{v}.{p}.0.tgz\n    version: {v}.{p}.0\n",
                m = 1 + v % 9,
                d = v % 10,
                p = charts % 7,
                digest = charts * 100 + v,
            ));
            versions += 1;
        }
        written += block.len() as u64;
        w.write_all(block.as_bytes())?;
        charts += 1;
    }
    writeln!(w, "generated: \"2024-05-01T00:00:00Z\"")?;
    Ok((charts, versions))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20);
    let file = tempfile::NamedTempFile::new()?;
    let keep = std::env::args().nth(2);
    let path = keep
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| file.path().to_path_buf());
    let (charts, versions) = {
        let mut w = BufWriter::new(std::fs::File::create(&path)?);
        let counts = write_index(&mut w, mb << 20)?;
        w.flush()?;
        counts
    };
    let size = std::fs::metadata(&path)?.len();
    let wanted = format!("chart-{:05}", charts / 2);

    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let cv = sluice_helm::resolve(BufReader::new(std::fs::File::open(&path)?), &wanted, "*")?;
    let resolve_time = t.elapsed();
    let resolve_peak = PEAK.load(Ordering::Relaxed) - base;
    let after = CURRENT.load(Ordering::Relaxed) - base;
    drop(cv);

    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let summary = sluice_helm::validate(BufReader::new(std::fs::File::open(&path)?))?;
    let validate_time = t.elapsed();
    let validate_peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(summary.versions, versions);

    println!(
        "index: {:.1} MiB, {charts} charts, {versions} versions",
        size as f64 / (1 << 20) as f64
    );
    println!(
        "resolve {wanted} '*': peak heap {:.0} KiB ({:.2}% of the file), {after} bytes held after, {:.2} s",
        resolve_peak as f64 / 1024.0,
        resolve_peak as f64 * 100.0 / size as f64,
        resolve_time.as_secs_f64()
    );
    println!(
        "validate: peak heap {:.0} KiB, {:.2} s",
        validate_peak as f64 / 1024.0,
        validate_time.as_secs_f64()
    );
    Ok(())
}
