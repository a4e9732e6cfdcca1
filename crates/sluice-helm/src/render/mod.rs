//! A chart rendered as `helm template` renders it (Helm v4.2.4's
//! `action.Install` in client-only dry-run mode): dependencies processed,
//! values coalesced, every template of the chart and its subcharts parsed
//! into one set and executed with its chart's scope, then the output split,
//! hooks separated and everything put in Helm's install order.
//!
//! * [`render`] takes a loaded [`Chart`] and the user's values and gives a
//!   [`Release`]: manifests, hooks, CRDs and notes, each named by its
//!   template path;
//! * [`Release::template_output`] prints what `helm template` prints.
//!
//! No cluster and no network: `lookup` is empty, `getHostByName` empty, the
//! capabilities are the caller's (Helm's defaults otherwise).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use crate::chart::Chart;
use crate::template::{self, MissingKey, Templates, Value};

mod api_versions;
pub(crate) mod coalesce;
mod manifests;
mod objects;
pub mod postrender;
pub mod schema;
pub mod strvals;

pub use manifests::{Hook, Manifest};
use objects::{Capabilities, Files, KubeVersion, VersionSet};

/// The Helm version templates see in `.Capabilities.HelmVersion`.
pub const HELM_VERSION: &str = "v4.2.4";
/// The Kubernetes version Helm v4.2.4 assumes without `--kube-version` (its
/// client-go minor, v0.36 → v1.36.0).
pub const DEFAULT_KUBE_VERSION: &str = "v1.36.0";
/// The `KubeClientVersion` of Helm v4.2.4's build info.
const KUBE_CLIENT_VERSION: &str = "v1.36";

/// What `helm template` is told.
#[derive(Clone, Debug)]
pub struct Options {
    pub release_name: String,
    pub namespace: String,
    /// `.Release.Revision` (1 for an install).
    pub revision: i64,
    /// `.Release.IsUpgrade` (and not `IsInstall`).
    pub is_upgrade: bool,
    /// `--kube-version`; Helm's default when `None`.
    pub kube_version: Option<String>,
    /// `--api-versions`, added to Helm's default set.
    pub api_versions: Vec<String>,
    /// `--skip-schema-validation`.
    pub skip_schema_validation: bool,
    /// The documents `values.schema.json` files refer to by `http(s)` URL,
    /// fetched by the caller ([`schema::external_documents`] lists them):
    /// Helm fetches them while it validates; this crate never reaches the
    /// network. A reference missing here fails validation, naming it.
    pub schema_documents: schema::Documents,
    /// `--render-subchart-notes`.
    pub subchart_notes: bool,
    /// `--strict` of `helm lint` (missing keys are errors); false for
    /// `helm template`.
    pub strict: bool,
    /// Bounds for each template's execution.
    pub template: template::Options,
    /// Bytes of rendered output of all templates together (each one is
    /// also bounded by `template.max_output`).
    pub max_total_output: usize,
    /// Threads that parse templates and read rendered documents (execution
    /// is sequential, as Helm's: templates may change shared values). The
    /// machine's parallelism, at most 4, by default.
    pub threads: usize,
    /// A post-renderer run over the rendered documents before hooks and
    /// manifests are sorted ([`postrender`]); none for `helm template`.
    pub post_render: Option<postrender::PostRender>,
    /// Whether the parsed templates are freed once executed (on a thread of their own, off
    /// the render's path). A command that exits after one render (`sluice helm template`)
    /// leaves them to the process's exit instead: freeing tens of thousands of nodes is a
    /// core's work while the last documents are read and sorted, and the machine may have
    /// only two (kube-prometheus-stack: 55.5 ms with the freeing, 51.3 ms without).
    pub free_templates: bool,
    /// Whether the values are validated against the charts' schemas on a thread of their own
    /// while the templates are parsed and executed (the verdict still taken first, as Helm
    /// validates before it renders), instead of before. Beside is faster where a chart has a
    /// large schema (traefik's 180 kB: 12.1 to 11.0 ms for `sluice helm template`) but holds
    /// the compiled schema and the parsed templates at once (its peak RSS about 1.5 MiB
    /// higher): `sluice helm template` validates beside, the controller, where memory counts
    /// more than a millisecond, before.
    pub validate_beside: bool,
}

/// The default for [`Options::threads`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The default bound on a chart's whole rendered output: 256 MiB.
pub const DEFAULT_MAX_TOTAL_OUTPUT: usize = 256 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            release_name: "release-name".into(),
            namespace: "default".into(),
            revision: 1,
            is_upgrade: false,
            kube_version: None,
            api_versions: Vec::new(),
            skip_schema_validation: false,
            schema_documents: Default::default(),
            subchart_notes: false,
            strict: false,
            template: template::Options::default(),
            max_total_output: DEFAULT_MAX_TOTAL_OUTPUT,
            threads: default_threads(),
            post_render: None,
            free_templates: true,
            validate_beside: false,
        }
    }
}

/// A rendered chart (Helm's release, before anything is applied).
#[derive(Clone, Debug, Default)]
pub struct Release {
    /// `crds/` files of the chart and its enabled subcharts: (path, bytes
    /// as in the chart, shared with it).
    pub crds: Vec<(String, crate::chart::Data)>,
    /// The manifests, in Helm's install order.
    pub manifests: Vec<Manifest>,
    /// The hooks, ordered by kind as Helm keeps them.
    pub hooks: Vec<Hook>,
    /// The rendered `NOTES.txt` of the chart (and of subcharts when asked).
    pub notes: String,
    /// The chart's metadata after its dependencies were processed, as Helm
    /// stores it in the release: disabled dependencies removed, the others
    /// `enabled`, aliases as names.
    pub chart_metadata: crate::chart::Metadata,
    /// The chart's values after its dependencies were processed (subchart
    /// defaults and `import-values` merged in), as Helm stores them in the
    /// release's chart.
    pub chart_values: YMap,
}

/// Why a chart could not be rendered, worded as Helm words it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("chart dependencies processing failed: {0}")]
    Dependencies(String),
    #[error("{0}")]
    Values(String),
    #[error(
        "values don't meet the specifications of the schema(s) in the following chart(s):\n{0}"
    )]
    Schema(String),
    #[error(
        "chart requires kubeVersion: {constraint} which is incompatible with Kubernetes {version}"
    )]
    KubeVersion { constraint: String, version: String },
    #[error("invalid kube version '{0}': {1}")]
    BadKubeVersion(String, String),
    /// A template failed to parse or execute (Helm's reformatted message).
    #[error("{0}")]
    Template(String),
    /// The rendered output is not what Helm can split into objects.
    #[error("{0}")]
    Manifest(String),
    /// The post-renderer failed, or what it gave could not be read.
    #[error("{0}")]
    PostRender(String),
}

impl RenderError {
    /// Whether Helm would have a (failed) release to show: its CLI then
    /// adds "Use --debug flag to render out invalid YAML".
    pub fn after_render(&self) -> bool {
        matches!(
            self,
            RenderError::Template(_) | RenderError::Manifest(_) | RenderError::PostRender(_)
        )
    }
}

/// Renders `chart` with the user's `values` (already merged from `-f` and
/// `--set`), as `helm template` does.
pub fn render(chart: &Chart, values: &YMap, opts: &Options) -> Result<Release, RenderError> {
    let kube = match &opts.kube_version {
        Some(v) => KubeVersion::parse(v).map_err(|e| RenderError::BadKubeVersion(v.clone(), e))?,
        None => KubeVersion::parse(DEFAULT_KUBE_VERSION)
            .map_err(|e| RenderError::BadKubeVersion(DEFAULT_KUBE_VERSION.into(), e))?,
    };
    let root = coalesce::process_dependencies(chart, values).map_err(RenderError::Dependencies)?;
    let mut chart_metadata = chart.metadata.clone();
    if !chart_metadata.dependencies.is_empty() {
        chart_metadata.dependencies = root.deps.iter().flatten().cloned().map(Some).collect();
    }
    let chart_values = root.values.clone();
    let vals = coalesce::coalesce_values(&root, values).map_err(RenderError::Values)?;
    let validate =
        || schema::validate_tree(&root, &vals, &opts.schema_documents).map_err(RenderError::Schema);
    let rest = || {
        render_valid(
            chart,
            &root,
            &vals,
            kube,
            chart_metadata,
            chart_values,
            opts,
        )
    };
    let beside = !opts.skip_schema_validation && opts.validate_beside && opts.threads > 1;
    if !beside {
        if !opts.skip_schema_validation {
            validate()?;
        }
        return rest();
    }
    // Helm validates the values before it renders, and a schema's violations are the error
    // even where the templates would fail too. Validation does not change what is rendered,
    // so it may run beside the render (compiling a large schema costs about as much as
    // parsing the chart's templates), its verdict taken first.
    std::thread::scope(|s| {
        let check = std::thread::Builder::new()
            .name("sluice-helm-schema".into())
            .stack_size(8 << 20)
            .spawn_scoped(s, validate);
        let rendered = rest();
        match check.map(|h| h.join()) {
            Ok(Ok(verdict)) => verdict?,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // No thread could be started: validated here, after the render.
            Err(_) => validate()?,
        }
        rendered
    })
}

/// What [`render`] does once the values are validated (or while they are).
fn render_valid(
    chart: &Chart,
    root: &coalesce::Node<'_>,
    vals: &YMap,
    kube: KubeVersion,
    chart_metadata: crate::chart::Metadata,
    chart_values: YMap,
    opts: &Options,
) -> Result<Release, RenderError> {
    if !chart.metadata.kube_version.is_empty()
        && !kube_compatible(&chart.metadata.kube_version, &kube.normalized)
    {
        return Err(RenderError::KubeVersion {
            constraint: chart.metadata.kube_version.clone(),
            version: kube.version.clone(),
        });
    }
    let mut api = api_versions::DEFAULT
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    api.extend(opts.api_versions.iter().cloned());
    let caps = Value::object(Capabilities {
        kube_version: Value::object(kube),
        api_versions: Value::object(VersionSet(api)),
        helm_version: helm_version(),
    });
    let release = Value::map(BTreeMap::from([
        (
            "Name".to_string(),
            Value::string(opts.release_name.as_str()),
        ),
        (
            "Namespace".to_string(),
            Value::string(opts.namespace.as_str()),
        ),
        ("IsUpgrade".to_string(), Value::Bool(opts.is_upgrade)),
        ("IsInstall".to_string(), Value::Bool(!opts.is_upgrade)),
        ("Revision".to_string(), Value::Int(opts.revision)),
        ("Service".to_string(), Value::string("Helm")),
    ]));
    let top = Top {
        release,
        caps,
        values: map_to_value(vals),
    };

    let mut tpls: BTreeMap<String, Renderable> = BTreeMap::new();
    collect(root, "", &top, None, &mut tpls);
    let is_notes = |name: &str| name.ends_with("NOTES.txt");
    // Each template's output with its documents. Without a post-renderer the
    // documents are final as each template is executed: they are split and
    // their heads read on the other threads while the next templates execute.
    let mut outputs: BTreeMap<String, (String, manifests::ReadDocs)> = BTreeMap::new();
    if opts.post_render.is_some() {
        execute(&tpls, opts, &mut |name, text| {
            outputs.insert(name, (text, Vec::new()));
        })?;
    } else {
        let done = crate::par::map_while_producing(
            opts.threads,
            |emit| execute(&tpls, opts, &mut |name, text| emit((name, text))),
            |(name, text)| {
                if is_notes(name) {
                    Vec::new()
                } else {
                    manifests::read_documents(name, text)
                }
            },
        )?;
        outputs = done
            .into_iter()
            .map(|((name, text), docs)| (name, (text, docs)))
            .collect();
    }
    // The templates' texts are done with (a packed chart's, inflated for the render).
    drop(tpls);

    let mut notes = String::new();
    let root_notes = format!("{}/templates/NOTES.txt", root.name);
    outputs.retain(|name, (text, _)| {
        if !is_notes(name) {
            return true;
        }
        if opts.subchart_notes || *name == root_notes {
            if !notes.is_empty() {
                notes.push('\n');
            }
            notes.push_str(text);
        }
        false
    });
    let (hooks, manifests) = match &opts.post_render {
        Some(pr) => {
            let texts = outputs.into_iter().map(|(k, (text, _))| (k, text));
            let rendered = postrender::run(texts.collect(), pr, opts.threads)?;
            manifests::sort_manifests(&rendered, opts.threads)
        }
        // In the order of the files' paths, as sort_manifests reads them.
        None => manifests::sort_read(outputs.iter_mut().flat_map(|(name, (text, docs))| {
            let text = text.as_str();
            std::mem::take(docs)
                .into_iter()
                .map(move |(r, h)| (name.as_str(), text.get(r).unwrap_or("").to_string(), h))
        })),
    }
    .map_err(RenderError::Manifest)?;
    let mut crds = Vec::new();
    collect_crds(root, "", &mut crds);
    Ok(Release {
        crds,
        manifests,
        hooks,
        notes,
        chart_metadata,
        chart_values,
    })
}

/// Helm's `CheckDependencies` (run by `helm install` and `helm template`
/// before rendering): every dependency of `Chart.yaml` must be a subchart
/// under `charts/` (by name; aliases do not count).
pub fn check_dependencies(chart: &Chart) -> Result<(), String> {
    let missing: Vec<&str> = chart
        .metadata
        .deps()
        .filter(|d| !chart.dependencies.iter().any(|c| c.name() == d.name))
        .map(|d| d.name.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "found in Chart.yaml, but missing in charts/ directory: {}",
        missing.join(", ")
    ))
}

fn kube_compatible(constraint: &str, version: &str) -> bool {
    let Ok(c) = sluice_semver::Constraint::parse(constraint) else {
        return false;
    };
    sluice_semver::parse_lenient(version).is_some_and(|v| c.matches(&v))
}

fn helm_version() -> Value {
    Value::map(BTreeMap::from([
        ("Version".to_string(), Value::string(HELM_VERSION)),
        ("GitCommit".to_string(), Value::string("")),
        ("GitTreeState".to_string(), Value::string("")),
        ("GoVersion".to_string(), Value::string("go1.26")),
        (
            "KubeClientVersion".to_string(),
            Value::string(KUBE_CLIENT_VERSION),
        ),
    ]))
}

/// A values tree as templates see it. Numbers from YAML are already
/// float64 ([`crate::values::load_values`]); `--set` integers stay int64.
pub(crate) fn to_value(v: &Y) -> Value {
    match v {
        Y::Null => Value::Nil,
        Y::Bool(b) => Value::Bool(*b),
        Y::Int(i) => Value::Int(*i),
        Y::Float(f) => Value::Float(*f),
        Y::Str(s) => Value::String(s.to_string()),
        Y::Seq(items) => Value::list(items.iter().map(to_value).collect()),
        Y::Map(m) => map_to_value(m),
    }
}

/// [`to_value`] of a map.
fn map_to_value(m: &YMap) -> Value {
    Value::map(
        m.iter()
            .map(|(k, x)| (k.to_string(), to_value(x)))
            .collect(),
    )
}

struct Top {
    release: Value,
    caps: Value,
    values: Value,
}

/// One template to execute: its text, its chart's scope (a map shared by the
/// chart's templates, as Helm shares it) and its base path.
struct Renderable {
    /// Shared with the parsed templates, whose texts lie in it.
    text: Arc<str>,
    scope: template::Map,
    base_path: String,
}

/// Helm's `recAllTpls`: each chart's scope (`Chart`, `Files`, `Release`,
/// `Capabilities`, `Values`, `Subcharts`) and its templates by full path.
fn collect<'a>(
    node: &coalesce::Node<'a>,
    parent_path: &str,
    top: &Top,
    parent_values: Option<&Value>,
    out: &mut BTreeMap<String, Renderable>,
) -> template::Map {
    let chart = node.chart;
    let is_root = parent_values.is_none();
    let values = match parent_values {
        None => top.values.clone(),
        Some(Value::Map(pv)) => match pv.get(&node.name) {
            Some(v @ Value::Map(_)) => v,
            _ => Value::map(BTreeMap::new()),
        },
        Some(_) => Value::map(BTreeMap::new()),
    };
    let subcharts = template::Map::new();
    let mut chart_map = metadata_map(node);
    chart_map.insert("IsRoot".into(), Value::Bool(is_root));
    let files: BTreeMap<String, crate::chart::Data> = chart
        .files
        .iter()
        .map(|f| (f.name.clone(), f.data.clone()))
        .collect();
    let scope = template::Map::from_btree(BTreeMap::from([
        ("Chart".to_string(), Value::map(chart_map)),
        ("Files".to_string(), Value::object(Files(files))),
        ("Release".to_string(), top.release.clone()),
        ("Capabilities".to_string(), top.caps.clone()),
        ("Values".to_string(), values.clone()),
        ("Subcharts".to_string(), Value::Map(subcharts.clone())),
    ]));
    let full_path = if is_root {
        node.name.clone()
    } else {
        format!("{parent_path}/charts/{}", node.name)
    };
    for child in &node.children {
        let sub = collect(child, &full_path, top, Some(&values), out);
        subcharts.insert(child.name.clone(), Value::Map(sub));
    }
    let library = chart.metadata.chart_type.eq_ignore_ascii_case("library");
    for t in &chart.templates {
        let base = t.name.rsplit('/').next().unwrap_or(&t.name);
        if library && !base.starts_with('_') {
            continue;
        }
        // A packed chart's templates are inflated for the render and dropped after it.
        let Some(text) = t.data.text() else {
            continue;
        };
        out.insert(
            format!("{full_path}/{}", t.name),
            Renderable {
                text,
                scope: scope.clone(),
                base_path: format!("{full_path}/templates"),
            },
        );
    }
    scope
}

/// Helm's `structToMap(chart.Metadata)`: Go's field names.
fn metadata_map(node: &coalesce::Node<'_>) -> BTreeMap<String, Value> {
    let md = &node.chart.metadata;
    let s = |v: &str| Value::string(v);
    let strings = |v: &[String]| Value::list(v.iter().map(|x| Value::string(x.as_str())).collect());
    let maintainers = md
        .maintainers
        .iter()
        .map(|m| match m {
            None => Value::Nil,
            Some(m) => Value::map(BTreeMap::from([
                ("Name".to_string(), s(&m.name)),
                ("Email".to_string(), s(&m.email)),
                ("URL".to_string(), s(&m.url)),
            ])),
        })
        .collect();
    let deps = node
        .deps
        .iter()
        .flatten()
        .map(|d| {
            Value::map(BTreeMap::from([
                ("Name".to_string(), s(&d.name)),
                ("Version".to_string(), s(&d.version)),
                ("Repository".to_string(), s(&d.repository)),
                ("Condition".to_string(), s(&d.condition)),
                ("Tags".to_string(), strings(&d.tags)),
                ("Enabled".to_string(), Value::Bool(d.enabled)),
                (
                    "ImportValues".to_string(),
                    Value::list(d.import_values.iter().map(to_value).collect()),
                ),
                ("Alias".to_string(), s(&d.alias)),
            ]))
        })
        .collect();
    BTreeMap::from([
        ("Name".to_string(), s(&node.name)),
        ("Home".to_string(), s(&md.home)),
        ("Sources".to_string(), strings(&md.sources)),
        ("Version".to_string(), s(&md.version)),
        ("Description".to_string(), s(&md.description)),
        ("Keywords".to_string(), strings(&md.keywords)),
        ("Maintainers".to_string(), Value::list(maintainers)),
        ("Icon".to_string(), s(&md.icon)),
        ("APIVersion".to_string(), s(&md.api_version)),
        ("Condition".to_string(), s(&md.condition)),
        ("Tags".to_string(), s(&md.tags)),
        ("AppVersion".to_string(), s(&md.app_version)),
        ("Deprecated".to_string(), Value::Bool(md.deprecated)),
        (
            "Annotations".to_string(),
            Value::map(
                md.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect(),
            ),
        ),
        ("KubeVersion".to_string(), s(&md.kube_version)),
        ("Dependencies".to_string(), Value::list(deps)),
        ("Type".to_string(), s(&md.chart_type)),
    ])
}

/// Helm's `sortTemplates`: deepest paths first, then reverse lexical order
/// (so a parent's `define`s, parsed last, win).
fn sorted_names(tpls: &BTreeMap<String, Renderable>) -> Vec<String> {
    let mut keys: Vec<String> = tpls.keys().cloned().collect();
    keys.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
    keys
}

/// Executes the templates (partials aside) in Helm's order, handing each
/// one's output to `emit` with its name.
fn execute(
    tpls: &BTreeMap<String, Renderable>,
    opts: &Options,
    emit: &mut dyn FnMut(String, String),
) -> Result<(), RenderError> {
    let mut topts = opts.template;
    topts.missing_key = if opts.strict {
        MissingKey::Error
    } else {
        MissingKey::Zero
    };
    let mut set = Templates::new("gotpl", crate::funcs::helm_funcs()).with_options(topts);
    let keys = sorted_names(tpls);
    let texts: Vec<(&str, Arc<str>)> = keys
        .iter()
        .map(|k| (k.as_str(), tpls[k].text.clone()))
        .collect();
    if let Err((i, e)) = set.parse_all(&texts, opts.threads) {
        return Err(RenderError::Template(cleanup_parse_error(
            &keys[i],
            &e.to_string(),
        )));
    }
    let mut total = 0usize;
    for name in &keys {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') {
            continue;
        }
        let r = &tpls[name];
        r.scope.insert(
            "Template",
            Value::map(BTreeMap::from([
                ("Name".to_string(), Value::string(name.as_str())),
                ("BasePath".to_string(), Value::string(r.base_path.as_str())),
            ])),
        );
        match set.execute(name, &Value::Map(r.scope.clone())) {
            Ok(text) => {
                total += text.len();
                if total > opts.max_total_output {
                    return Err(RenderError::Template(format!(
                        "rendering {name}: the chart's output exceeds {} bytes",
                        opts.max_total_output
                    )));
                }
                let text = if text.contains("<no value>") {
                    text.replace("<no value>", "")
                } else {
                    text
                };
                emit(name.clone(), text);
            }
            Err(e) => {
                return Err(RenderError::Template(reformat_exec_error(
                    name,
                    &e.to_string(),
                )));
            }
        }
    }
    // Freeing the parsed templates (tens of thousands of nodes in a large
    // chart) is left to a thread of its own, off the render's path (inline
    // if no thread can be started), or to the process's exit.
    if opts.free_templates {
        let _ = std::thread::Builder::new()
            .name("sluice-helm-free".into())
            .spawn(move || drop(set));
    } else {
        std::mem::forget(set);
    }
    Ok(())
}

/// Helm's `cleanupParseError`.
fn cleanup_parse_error(filename: &str, err: &str) -> String {
    let tokens: Vec<&str> = err.split(": ").collect();
    if tokens.len() == 1 {
        return format!("parse error in ({filename}): {err}");
    }
    format!(
        "parse error at ({}): {}",
        tokens[1],
        tokens[tokens.len() - 1]
    )
}

/// Helm's `reformatExecErrorMsg`: a `fail`/`required` message as
/// `execution error at (LOCATION): MESSAGE`; otherwise each nested template
/// error on its own lines (location, what was executing, the message), when
/// every error in the chain Helm unwraps is a template error. A function's
/// own error (`error calling tpl: error during tpl function execution ...`,
/// `error calling mustRegexMatch: error parsing regexp ...`) is not, and
/// Helm then prints the error as it is, on one line.
fn reformat_exec_error(filename: &str, err: &str) -> String {
    const WARN_START: &str = crate::funcs::WARN_START;
    const WARN_END: &str = crate::funcs::WARN_END;
    let tokens: Vec<&str> = err.splitn(3, ": ").collect();
    if tokens.len() != 3 {
        return format!("execution error in ({filename}): {err}");
    }
    if let Some(start) = tokens[2].find(WARN_START)
        && let Some(end) = tokens[2].rfind(WARN_END)
        && end >= start + WARN_START.len()
    {
        return format!(
            "execution error at ({}): {}",
            tokens[1],
            &tokens[2][start + WARN_START.len()..end]
        );
    }
    // The chain of wrapped errors, each a "template: ..." string.
    let mut frames: Vec<String> = Vec::new();
    let mut rest = err;
    while let Some(remainder) = rest.strip_prefix("template: ") {
        if remainder.starts_with("no template ") {
            frames.push(format!("{rest}\n"));
            break;
        }
        let next = remainder.find(" template: ").map(|i| &remainder[i + 1..]);
        if let Some((name, after)) = remainder.split_once(": executing ")
            && let Some(after) = after.strip_prefix('"')
            && let Some(q) = after.find('"')
            && let Some(at) = after[q + 1..].strip_prefix(" at <")
            && let Some((loc, msg)) = at.split_once(">: ")
        {
            if ends_in_function_error(msg) {
                return elide_links(err);
            }
            let msg = msg.find(" template:").map_or(msg, |i| &msg[..i]);
            frames.push(format!(
                "{name}\n  executing \"{}\" at <{loc}>:\n    {msg}\n",
                &after[..q]
            ));
        } else if let Some(sep) = remainder.rfind(": ") {
            if ends_in_function_error(&remainder[sep + 2..]) {
                return elide_links(err);
            }
            let msg = &remainder[sep + 2..];
            let msg = msg.find(" template:").map_or(msg, |i| &msg[..i]);
            frames.push(format!("{}\n  {msg}\n", &remainder[..sep]));
        } else {
            return err.to_string();
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    if frames.is_empty() {
        return err.to_string();
    }
    // A runaway recursion nests a thousand frames (Helm prints them all, or
    // overflows its stack on `tpl`): keep the outermost and innermost ones.
    if frames.len() > 2 * KEPT_FRAMES + 1 {
        let omitted = frames.len() - 2 * KEPT_FRAMES;
        frames.splice(
            KEPT_FRAMES..frames.len() - KEPT_FRAMES,
            [format!("... {omitted} nested calls omitted ...\n")],
        );
    }
    frames.concat().trim().to_string()
}

/// Whether an executing error's message is a function's error that wraps something other
/// than a template error: text/template wraps a function's error (`error calling NAME: %w`),
/// so Helm's walk down the chain reaches it, cannot read it as a template error, and keeps
/// the error as it is.
fn ends_in_function_error(msg: &str) -> bool {
    msg.strip_prefix("error calling ")
        .and_then(|call| call.split_once(": "))
        .is_some_and(|(_, inner)| !inner.starts_with("template: "))
}

/// `err` as it is, but for a runaway recursion (an `include` of itself nests a thousand
/// template errors, which Helm prints on one line of about 100 kB): only the outermost and
/// innermost links of the chain are kept, as for the frames of the multi-line form.
fn elide_links(err: &str) -> String {
    const LINK: &str = ": template: ";
    let links: Vec<&str> = err.split(LINK).collect();
    if links.len() <= 2 * KEPT_FRAMES + 1 {
        return err.to_string();
    }
    let omitted = links.len() - 2 * KEPT_FRAMES;
    format!(
        "{}{LINK}... {omitted} nested calls omitted ...{LINK}{}",
        links[..KEPT_FRAMES].join(LINK),
        links[links.len() - KEPT_FRAMES..].join(LINK)
    )
}

/// Frames kept at each end of a long chain of nested template errors.
const KEPT_FRAMES: usize = 6;

/// Helm's `CRDObjects`: `crds/*.{yaml,yml,json}` of the chart, then of each
/// subchart.
fn collect_crds(
    node: &coalesce::Node<'_>,
    parent_path: &str,
    out: &mut Vec<(String, crate::chart::Data)>,
) {
    let full = if parent_path.is_empty() {
        node.name.clone()
    } else {
        format!("{parent_path}/charts/{}", node.name)
    };
    for f in &node.chart.files {
        let ext = f.name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if f.name.starts_with("crds/") && matches!(ext.as_deref(), Some("yaml" | "yml" | "json")) {
            out.push((format!("{full}/{}", f.name), f.data.clone()));
        }
    }
    for c in &node.children {
        collect_crds(c, &full, out);
    }
}

/// What `helm template` prints.
#[derive(Clone, Debug, Default)]
pub struct PrintOptions {
    pub include_crds: bool,
    /// `--no-hooks`.
    pub no_hooks: bool,
    /// `--skip-tests`.
    pub skip_tests: bool,
    /// `--show-only` patterns (paths under the chart's directory, globs).
    pub show_only: Vec<String>,
}

impl Release {
    /// The release manifest as Helm stores it (CRDs when asked, then every
    /// manifest with its `# Source:` comment).
    pub fn manifest(&self, include_crds: bool) -> String {
        self.manifest_pieces(include_crds).concat()
    }

    fn manifest_pieces(&self, include_crds: bool) -> Vec<std::borrow::Cow<'_, str>> {
        let mut v: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        if include_crds {
            for (name, data) in &self.crds {
                v.push("---\n# Source: ".into());
                v.push(name.as_str().into());
                v.push("\n".into());
                // Checked the fast way first: the CRDs of a large chart
                // are megabytes of ASCII.
                v.push(match data.bytes() {
                    Cow::Borrowed(b) => match std::str::from_utf8(b) {
                        Ok(s) => s.into(),
                        Err(_) => String::from_utf8_lossy(b),
                    },
                    Cow::Owned(b) => String::from_utf8_lossy(&b).into_owned().into(),
                });
                v.push("\n".into());
            }
        }
        for m in &self.manifests {
            v.push("---\n# Source: ".into());
            v.push(m.name.as_str().into());
            v.push("\n".into());
            v.push(m.content.as_str().into());
            v.push("\n".into());
        }
        v
    }

    /// `helm template`'s standard output; an error names a `--show-only`
    /// template that rendered nothing.
    pub fn template_output(&self, p: &PrintOptions) -> Result<String, String> {
        let mut out = Vec::new();
        self.write_template_output(p, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// [`Release::template_output`] written to `w` as it is assembled,
    /// without building it in memory first (unless `--show-only` picks
    /// documents out of it). A `--show-only` template that rendered
    /// nothing is an [`std::io::ErrorKind::NotFound`] error, written
    /// before anything else.
    pub fn write_template_output(
        &self,
        p: &PrintOptions,
        w: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        if !p.show_only.is_empty() {
            let mut all = Vec::new();
            self.write_all_documents(p, &mut all)?;
            let all = String::from_utf8_lossy(&all);
            let docs = manifests::split_manifests(&all);
            let mut picked = Vec::new();
            for f in &p.show_only {
                let f = f.replace('\\', "/");
                let mut missing = true;
                for d in &docs {
                    let Some(name) = source_after_chart(d) else {
                        continue;
                    };
                    if manifests::path_match(&f, name) {
                        picked.push(d.as_str());
                        missing = false;
                    }
                }
                if missing {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("could not find template {f} in chart"),
                    ));
                }
            }
            for d in picked {
                w.write_all(b"---\n")?;
                w.write_all(d.as_bytes())?;
                w.write_all(b"\n")?;
            }
            return Ok(());
        }
        self.write_all_documents(p, w)
    }

    fn write_all_documents(
        &self,
        p: &PrintOptions,
        w: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        // Helm prints the manifest trimmed of surrounding whitespace, then
        // a newline: the pieces are written as they are, except for
        // whitespace at the very start and end.
        let pieces = self.manifest_pieces(p.include_crds);
        let first = pieces.iter().position(|s| !s.trim().is_empty());
        let last = pieces.iter().rposition(|s| !s.trim().is_empty());
        if let (Some(first), Some(last)) = (first, last) {
            for (i, piece) in pieces.iter().enumerate().take(last + 1).skip(first) {
                let mut s: &str = piece;
                if i == first {
                    s = s.trim_start();
                }
                if i == last {
                    s = s.trim_end();
                }
                w.write_all(s.as_bytes())?;
            }
        }
        w.write_all(b"\n")?;
        if !p.no_hooks {
            for h in &self.hooks {
                if p.skip_tests && h.events.iter().any(|e| e == "test") {
                    continue;
                }
                w.write_all(b"---\n# Source: ")?;
                w.write_all(h.path.as_bytes())?;
                w.write_all(b"\n")?;
                w.write_all(h.manifest.as_bytes())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

/// `# Source: CHART/PATH` → PATH (Helm's `# Source: [^/]+/(.+)`).
fn source_after_chart(doc: &str) -> Option<&str> {
    let i = doc.find("# Source: ")?;
    let rest = &doc[i + "# Source: ".len()..];
    let line = rest.split('\n').next()?;
    let slash = line.find('/')?;
    if slash == 0 {
        return None;
    }
    Some(&line[slash + 1..]).filter(|s| !s.is_empty())
}
