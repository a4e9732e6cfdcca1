//! `sluice helm template`: render a local chart as `helm template` does.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Write each template's output to a file under this directory instead
    /// of stdout (appended to when a template renders several documents).
    #[arg(long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// With --output-dir: write under DIR/NAME (the release name).
    #[arg(long = "release-name")]
    pub use_release_name: bool,
}

pub fn run(args: HelmArgs) -> Result<()> {
    match args.command {
        HelmCommand::Template(t) => template(t),
    }
}

/// Helm's `LocateChart` for a chart that is not on disk: a path (absolute
/// or starting with `.`) is not found; anything else would be looked up in
/// a chart repository, which `sluice helm template` does not read (so no
/// repository is found, as Helm finds none that is not configured).
fn chart_not_found(name: &str) -> String {
    if Path::new(name).is_absolute() || name.starts_with('.') {
        return format!("path {name:?} not found");
    }
    match name.split_once('/') {
        Some((repo, _)) => format!("repo {repo} not found"),
        None => {
            format!("non-absolute URLs should be in form of repo_name/path_to_chart, got: {name}")
        }
    }
}

/// Go's `filepath.Abs`: joined to the working directory and cleaned
/// lexically (`.` and `..` resolved, no trailing `/`), symlinks kept.
fn go_abs(path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.to_path_buf(),
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Helm's `ensureArchive` before it loads a chart file: a file that does
/// not start as gzip is refused, named by its absolute path, with the type
/// Go's `http.DetectContentType` gives its first 512 bytes (zero-padded, as
/// Helm's buffer is), or as a YAML file by its extension.
fn ensure_archive(path: &Path, abs: &Path) -> Result<()> {
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        match std::io::Read::read(&mut f, &mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    let kind = sniff_content_type(&head);
    if kind == "application/x-gzip" {
        return Ok(());
    }
    let name = abs.display();
    if matches!(
        abs.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) {
        bail!("file '{name}' seems to be a YAML file, but expected a gzipped archive");
    }
    bail!("file '{name}' does not appear to be a gzipped archive; got '{kind}'")
}

/// Go's `net/http.DetectContentType` for the types a mistaken chart path
/// is likely to be: HTML and XML, PDF, PostScript, text with a byte-order
/// mark, common images, gzip, zip, RAR, WebAssembly, else plain text or,
/// with a byte no text holds, `application/octet-stream`.
fn sniff_content_type(data: &[u8]) -> &'static str {
    let ws = |b: &u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let start = data.iter().position(|b| !ws(b)).unwrap_or(data.len());
    let text = &data[start..];
    const HTML: &[&str] = &[
        "<!DOCTYPE HTML",
        "<HTML",
        "<HEAD",
        "<SCRIPT",
        "<IFRAME",
        "<H1",
        "<DIV",
        "<FONT",
        "<TABLE",
        "<A",
        "<STYLE",
        "<TITLE",
        "<B",
        "<BODY",
        "<BR",
        "<P",
        "<!--",
    ];
    for sig in HTML {
        let sig = sig.as_bytes();
        if text.len() > sig.len()
            && text[..sig.len()].eq_ignore_ascii_case(sig)
            && matches!(text[sig.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if text.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    const EXACT: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"%!PS-Adobe-", "application/postscript"),
        (b"\xfe\xff", "text/plain; charset=utf-16be"),
        (b"\xff\xfe", "text/plain; charset=utf-16le"),
        (b"\xef\xbb\xbf", "text/plain; charset=utf-8"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"BM", "image/bmp"),
        (b"\x1f\x8b\x08", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
        (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
        (b"\x00asm", "application/wasm"),
    ];
    for (sig, kind) in EXACT {
        if data.starts_with(sig) {
            return kind;
        }
    }
    let binary = |b: &u8| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f);
    if data.iter().any(binary) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn template(mut a: TemplateArgs) -> Result<()> {
    let (name, chart_path) = match a.args.as_slice() {
        [chart] => ("release-name".to_string(), chart.clone()),
        [name, chart] => (name.clone(), chart.clone()),
        _ => bail!("expected [NAME] CHART"),
    };
    if chart_path.contains("://") {
        bail!("{chart_path}: only local chart directories and .tgz archives can be rendered");
    }
    let chart_path = chart_path.trim().to_string();
    let path = PathBuf::from(&chart_path);
    if std::fs::metadata(&path).is_err() {
        bail!("{}", chart_not_found(&chart_path));
    }
    let abs = go_abs(&path);
    if path.is_dir() {
        let chart_yaml = abs.join("Chart.yaml");
        if !chart_yaml.is_file() {
            let c = chart_yaml.display();
            bail!("unable to detect chart at {c}: open {c}: no such file or directory");
        }
    } else {
        ensure_archive(&path, &abs)?;
    }
    let limits = sluice_helm::Limits {
        // Read where the page cache holds them: this command loads the chart once and exits.
        map: Some(sluice_helm::chart::MapFile {
            at_least: 64 << 10,
            map: map_file,
        }),
        ..sluice_helm::Limits::default()
    };
    let chart = if path.is_dir() {
        match sluice_helm::chart::load_dir(&path, &limits) {
            // Helm follows a local chart's symlinks wherever they lead (k8s-at-home's test
            // chart links its library from elsewhere in the repository): one that leaves the
            // chart is followed from the file system's root. A chart the controllers load
            // from a source stays inside that source.
            Err(sluice_helm::chart::ChartError::Unsafe(_)) => {
                let abs = std::fs::canonicalize(&path)
                    .with_context(|| format!("opening {chart_path}"))?;
                let rel = abs
                    .strip_prefix("/")
                    .unwrap_or(&abs)
                    .to_string_lossy()
                    .into_owned();
                sluice_helm::chart::load_in(Path::new("/"), &rel, &limits)
            }
            r => r,
        }
    } else {
        let f = std::fs::File::open(&path).with_context(|| format!("opening {chart_path}"))?;
        sluice_helm::chart::load_archive(std::io::BufReader::new(f), &limits)
    }?;

    // Helm's command line renders and installs application charts only (its SDK, and so a
    // HelmRelease, does not check).
    if !matches!(chart.metadata.chart_type.as_str(), "" | "application") {
        bail!("{} charts are not installable", chart.metadata.chart_type);
    }
    if chart.metadata.deprecated {
        // Helm's log line (slog's text handler), on stderr.
        eprintln!("level=WARN msg=\"this chart is deprecated\"");
    }
    render::check_dependencies(&chart).map_err(|e| {
        anyhow::anyhow!(
            "an error occurred while checking for chart dependencies. You may need to run \
             'helm dependency build' to fetch missing dependencies: {e}"
        )
    })?;

    let mut flags = strvals::ValueFlags {
        json: std::mem::take(&mut a.set_json),
        set: std::mem::take(&mut a.set),
        set_string: std::mem::take(&mut a.set_string),
        set_file: std::mem::take(&mut a.set_file),
        literal: std::mem::take(&mut a.set_literal),
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

    let mut opts = render::Options {
        release_name: name.clone(),
        namespace: a.namespace.clone(),
        is_upgrade: a.is_upgrade,
        kube_version: a.kube_version.clone(),
        api_versions: a.api_versions.clone(),
        skip_schema_validation: a.skip_schema_validation,
        subchart_notes: a.render_subchart_notes,
        // The process exits after this one render (as the chart, forgotten below).
        free_templates: false,
        // One render: its time counts more than the MiB a schema validated beside it holds.
        validate_beside: true,
        ..render::Options::default()
    };
    // As Helm: the documents the schemas refer to by URL are fetched.
    if !opts.skip_schema_validation {
        opts.schema_documents = sluice_helmrelease::schemas::documents_blocking(&chart);
    }
    let release = render::render(&chart, &values, &opts).map_err(|e| {
        if e.after_render() {
            anyhow::anyhow!("{e}\n\nUse --debug flag to render out invalid YAML")
        } else {
            anyhow::anyhow!("{e}")
        }
    })?;
    if let Some(dir) = &a.output_dir {
        write_output_dir(&release, &a, dir, &name)?;
        std::mem::forget(release);
        std::mem::forget(chart);
        return Ok(());
    }
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

/// A chart file mapped into memory, as `sluice_helm` reads it.
struct Mapped(memmap2::Mmap);

impl sluice_helm::chart::Bytes for Mapped {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn release(&self) {
        // SAFETY: the mapping is private, read-only and never written, so dropping its pages
        // loses nothing: a later read maps them again from the file (which, as `map_file`
        // says, nothing changes meanwhile). Failing to drop them only costs memory.
        let _ = unsafe { self.0.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
    }
}

/// Maps `file` read-only (`sluice_helm::chart::MapFile`): `helm template` reads a large chart
/// file where the page cache holds it instead of copying it into fresh memory.
fn map_file(
    file: &std::fs::File,
) -> std::io::Result<std::sync::Arc<dyn sluice_helm::chart::Bytes>> {
    // SAFETY: a private read-only mapping, dropped with the chart before this command exits.
    // A file truncated meanwhile would make reading its lost pages fail with SIGBUS: this
    // command reads a chart directory that nothing should be writing while it renders, as
    // `helm template` reads it once (a chart from an archive or a source is never mapped).
    let map = unsafe { memmap2::Mmap::map(file)? };
    Ok(std::sync::Arc::new(Mapped(map)))
}

/// `helm template --output-dir`: CRDs (with --include-crds) under DIR,
/// manifests and hooks under DIR (or DIR/NAME with --release-name), one
/// file per template path, each document written as `---\n# Source:
/// PATH\nDOC\n` (appended after the first, and for hooks whenever the file
/// exists, as Helm does), `wrote PATH` printed for each; then the empty
/// manifest Helm prints. `--show-only` finds nothing then, as in Helm.
fn write_output_dir(
    release: &render::Release,
    a: &TemplateArgs,
    dir: &std::path::Path,
    name: &str,
) -> Result<()> {
    use std::collections::HashSet;
    let mut stdout = std::io::stdout().lock();
    let base = dir.to_string_lossy().into_owned();
    let release_dir = if a.use_release_name {
        dir.join(name).to_string_lossy().into_owned()
    } else {
        base.clone()
    };
    let mut write = |root: &str, path: &str, data: &str, append: bool| -> Result<()> {
        // Template paths come from the chart; none may climb out of DIR.
        if path.split('/').any(|c| c == "..") || path.starts_with('/') {
            bail!("{path}: a template path may not leave --output-dir");
        }
        let file = format!("{root}/{path}");
        if let Some(parent) = std::path::Path::new(&file).parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut f = if append {
            std::fs::OpenOptions::new().append(true).open(&file)
        } else {
            std::fs::File::create(&file)
        }
        .with_context(|| format!("opening {file}"))?;
        write!(f, "---\n# Source: {path}\n{data}\n").with_context(|| format!("writing {file}"))?;
        writeln!(stdout, "wrote {file}")?;
        Ok(())
    };
    let mut written = HashSet::new();
    if a.include_crds {
        for (path, data) in &release.crds {
            let append = !written.insert(path.clone());
            write(&base, path, &String::from_utf8_lossy(&data.bytes()), append)?;
        }
    }
    for m in &release.manifests {
        let append = !written.insert(m.name.clone());
        write(&release_dir, &m.name, &m.content, append)?;
    }
    if !a.no_hooks {
        for h in &release.hooks {
            if a.skip_tests && h.events.iter().any(|e| e == "test") {
                continue;
            }
            let append = std::path::Path::new(&release_dir).join(&h.path).exists();
            write(&release_dir, &h.path, &h.manifest, append)?;
        }
    }
    if let Some(f) = a.show_only.first() {
        bail!("could not find template {} in chart", f.replace('\\', "/"));
    }
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}
