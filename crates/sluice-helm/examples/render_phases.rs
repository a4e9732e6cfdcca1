//! Times the phases of rendering a chart (load, render, print), for
//! profiling the renderer without the whole `sluice` binary:
//!
//!     cargo run --release -p sluice-helm --example render_phases -- CHART [VALUES...]
//!
//! It prints the heap in use after each phase and its peak.
//! `SKIP_SCHEMA=1` skips `values.schema.json` (`--skip-schema-validation`).
use std::sync::atomic::Ordering;
use std::time::Instant;

#[path = "support/counting.rs"]
mod counting;
use counting::{CURRENT, PEAK};

/// MiB, for the heap figures.
fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(chart_dir) = args.first() else {
        eprintln!("usage: render_phases CHART [VALUES...]");
        std::process::exit(2);
    };
    let t0 = Instant::now();
    let chart = sluice_helm::chart::load_dir(std::path::Path::new(chart_dir), &Default::default())
        .expect("chart loads");
    let t1 = Instant::now();
    let loaded = CURRENT.load(Ordering::Relaxed);
    let mut values = Default::default();
    for f in &args[1..] {
        let data = std::fs::read(f).expect("values file");
        values = sluice_helm::values::merge_maps(
            values,
            sluice_helm::values::load_values(&data).expect("values parse"),
        );
    }
    let opts = sluice_helm::render::Options {
        kube_version: Some("1.36.3".into()),
        skip_schema_validation: std::env::var_os("SKIP_SCHEMA").is_some(),
        ..Default::default()
    };
    let r = sluice_helm::render::render(&chart, &values, &opts).expect("renders");
    let t2 = Instant::now();
    let (render_peak, rendered) = (
        PEAK.load(Ordering::Relaxed),
        CURRENT.load(Ordering::Relaxed),
    );
    let out = r
        .template_output(&sluice_helm::render::PrintOptions {
            include_crds: true,
            ..Default::default()
        })
        .expect("prints");
    let t3 = Instant::now();
    eprintln!(
        "load {:?}, render {:?}, print {:?} ({} bytes)",
        t1 - t0,
        t2 - t1,
        t3 - t2,
        out.len()
    );
    eprintln!(
        "heap: chart loaded {}, peak while rendering {}, after rendering {}, peak {}",
        mib(loaded),
        mib(render_peak),
        mib(rendered),
        mib(PEAK.load(Ordering::Relaxed))
    );
}
