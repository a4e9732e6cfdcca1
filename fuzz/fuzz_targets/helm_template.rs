//! Rendering an arbitrary template with arbitrary values returns output or
//! an error, never a panic, a hang or unbounded memory: Go's text/template
//! parser and executor, Helm's function map, values coalescing and the
//! manifest splitting after it, with the executor's step and output bounds.
//!
//! Input: the template, a `---8<---` line, the chart's `values.yaml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_helm::chart::{Chart, File, Metadata};
use sluice_helm::render::{self, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (tpl, values) = text.split_once("\n---8<---\n").unwrap_or((text, ""));
    let chart = Chart {
        metadata: Metadata {
            name: "fuzz".into(),
            version: "0.1.0".into(),
            api_version: "v2".into(),
            ..Metadata::default()
        },
        values_yaml: Some(values.as_bytes().to_vec()),
        templates: vec![
            File { name: "templates/a.yaml".into(), data: tpl.as_bytes().into() },
            File {
                name: "templates/_helpers.tpl".into(),
                data: br#"{{ define "h" }}{{ . | toYaml }}{{ end }}"#[..].into(),
            },
        ],
        ..Chart::default()
    };
    let mut opts = Options::default();
    opts.template.max_steps = 200_000;
    opts.template.max_output = 1 << 20;
    opts.template.max_depth = 200;
    let _ = render::render(&chart, &Default::default(), &opts).map(|r| r.manifest(true));
});
