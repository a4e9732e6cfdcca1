//! Minimal `kustomize build` driver for development and benchmarks:
//! `kbuild [--reorder legacy|none] [--load-restrictor LoadRestrictionsNone] DIR`.

use std::process::ExitCode;

use sluice_kustomize::{Options, Reorder};

fn main() -> ExitCode {
    let mut opts = Options::new();
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reorder" => {
                opts.reorder = match args.next().as_deref() {
                    Some("legacy") => Reorder::Legacy,
                    Some("none") => Reorder::None,
                    _ => Reorder::Unspecified,
                }
            }
            "--load-restrictor" => {
                opts.load_restrict_root_only =
                    args.next().as_deref() != Some("LoadRestrictionsNone");
            }
            other => dir = Some(other.to_string()),
        }
    }
    let dir = dir.unwrap_or_else(|| ".".into());
    match sluice_kustomize::build(std::path::Path::new(&dir), &opts) {
        Ok(out) => {
            for w in &out.warnings {
                eprintln!("# Warning: {w}");
            }
            print!("{}", out.to_yaml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
