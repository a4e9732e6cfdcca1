//! `sluice helm template`: render a local chart as `helm template` does.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use sluice_helm::render::{self, PrintOptions, strvals};

#[derive(Debug, Args)]
pub struct HelmArgs {
    #[command(subcommand)]
    pub command: HelmCommand,
}

#[derive(Debug, Subcommand)]
pub enum HelmCommand {
    /// Render a chart's templates locally, as `helm template` (Helm v4.2.4).
    Template(TemplateArgs),
}

/// The flags of `helm template` that concern rendering.
#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// `[NAME] CHART`: the release name (default "release-name") and a chart
    /// directory or `.tgz` archive.
    #[arg(num_args = 1..=2, value_name = "NAME CHART", required = true)]
    pub args: Vec<String>,
    /// Values files, merged in order (later ones win).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Values on the command line (`a.b=c,l={x,y}`), typed as Helm types them.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Values on the command line, always strings.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// Values read from files (`key=path`).
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// JSON values (`key=JSON` pairs, or a JSON object merged over the values).
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// Literal string values: everything after the first `=` is the value.
    #[arg(long = "set-literal", value_name = "KEY=VALUE")]
    pub set_literal: Vec<String>,
    /// The release namespace (`.Release.Namespace`).
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    pub namespace: String,
    /// The Kubernetes version for `.Capabilities.KubeVersion` (default v1.36.0).
    #[arg(long = "kube-version")]
    pub kube_version: Option<String>,
    /// API versions added to `.Capabilities.APIVersions` (comma-separated or repeated).
    #[arg(short = 'a', long = "api-versions", value_delimiter = ',')]
    pub api_versions: Vec<String>,
    /// Print the chart's `crds/` too.
    #[arg(long = "include-crds")]
    pub include_crds: bool,
    /// Do not print hooks.
    #[arg(long = "no-hooks")]
    pub no_hooks: bool,
    /// Do not print test hooks.
    #[arg(long = "skip-tests")]
    pub skip_tests: bool,
    /// Only the manifests of these templates (paths under the chart, globs).
    #[arg(short = 's', long = "show-only", value_name = "TEMPLATE")]
    pub show_only: Vec<String>,
    /// Do not validate values against `values.schema.json`.
    #[arg(long = "skip-schema-validation")]
    pub skip_schema_validation: bool,
    /// `.Release.IsUpgrade` true (and `IsInstall` false).
    #[arg(long = "is-upgrade")]
    pub is_upgrade: bool,
    /// Render subcharts' NOTES.txt too (they are never printed by `template`).
    #[arg(long = "render-subchart-notes")]
    pub render_subchart_notes: bool,
}

pub fn run(args: HelmArgs) -> Result<()> {
    match args.command {
        HelmCommand::Template(t) => template(t),
    }
}

fn template(a: TemplateArgs) -> Result<()> {
    let (name, chart_path) = match a.args.as_slice() {
        [chart] => ("release-name".to_string(), chart.clone()),
        [name, chart] => (name.clone(), chart.clone()),
        _ => bail!("expected [NAME] CHART"),
    };
    if chart_path.contains("://") {
        bail!("{chart_path}: only local chart directories and .tgz archives can be rendered");
    }
    let path = PathBuf::from(&chart_path);
    let limits = sluice_helm::Limits::default();
    let chart = if path.is_dir() {
        sluice_helm::chart::load_dir(&path, &limits)
    } else {
        let f = std::fs::File::open(&path).with_context(|| format!("opening {chart_path}"))?;
        sluice_helm::chart::load_archive(std::io::BufReader::new(f), &limits)
    }
    .with_context(|| format!("loading chart {chart_path}"))?;

    render::check_dependencies(&chart).map_err(|e| {
        anyhow::anyhow!(
            "an error occurred while checking for chart dependencies. You may need to run \
             'helm dependency build' to fetch missing dependencies: {e}"
        )
    })?;

    let mut flags = strvals::ValueFlags {
        json: a.set_json,
        set: a.set,
        set_string: a.set_string,
        set_file: a.set_file,
        literal: a.set_literal,
        ..Default::default()
    };
    for f in &a.values {
        let data = if f.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
            b
        } else {
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
        };
        flags.files.push((f.display().to_string(), data));
    }
    let values = strvals::merge_flags(&flags).map_err(anyhow::Error::msg)?;

    let opts = render::Options {
        release_name: name,
        namespace: a.namespace,
        is_upgrade: a.is_upgrade,
        kube_version: a.kube_version,
        api_versions: a.api_versions,
        skip_schema_validation: a.skip_schema_validation,
        subchart_notes: a.render_subchart_notes,
        ..render::Options::default()
    };
    let release = render::render(&chart, &values, &opts).map_err(|e| {
        if e.after_render() {
            anyhow::anyhow!("{e}\n\nUse --debug flag to render out invalid YAML")
        } else {
            anyhow::anyhow!("{e}")
        }
    })?;
    let print = PrintOptions {
        include_crds: a.include_crds,
        no_hooks: a.no_hooks,
        skip_tests: a.skip_tests,
        show_only: a.show_only,
    };
    let mut stdout = std::io::BufWriter::with_capacity(256 << 10, std::io::stdout().lock());
    release
        .write_template_output(&print, &mut stdout)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{e}"),
            _ => anyhow::anyhow!("writing the output: {e}"),
        })?;
    // The command ends here: freeing the chart and the release would only
    // cost time.
    std::mem::forget(release);
    std::mem::forget(chart);
    Ok(())
}
