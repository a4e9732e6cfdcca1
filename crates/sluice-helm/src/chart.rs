//! A Helm chart in memory, loaded as Helm v4's chart loader
//! (`pkg/chart/v2/loader`) loads one: from a directory (with `.helmignore`)
//! or from a `.tgz`; `Chart.yaml` decoded as `sigs.k8s.io/yaml` decodes it
//! into Helm's `Metadata` and validated as Helm validates it; subcharts under
//! `charts/` (directories and archives) loaded recursively.
//!
//! Safety, as Flux's secure loader and beyond: nothing is read outside the
//! root the caller names (`..` and absolute paths refused, a symlink whose
//! target leaves the root is an error naming it, symlink loops are caught),
//! archive entries may not climb out of the chart, and the size of each
//! file, the total size and the number of files are bounded ([`Limits`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sluice_kustomize::yaml::{Map, Value};

use crate::gofmt::format_g32;
use crate::ignore::Rules;
pub use crate::packed::{Bytes, Data};
use crate::yaml::{YamlError, parse_first};

/// A chart file: its path relative to the chart (`/`-separated) and its
/// bytes (a UTF-8 byte order mark removed, as Helm does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    /// Shared with the rendered chart's `.Files` and the release record, never copied;
    /// plain as loaded, deflated after [`Chart::pack`].
    pub data: Data,
}

/// A maintainer entry of `Chart.yaml`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Maintainer {
    pub name: String,
    pub email: String,
    pub url: String,
}

/// A dependency of `Chart.yaml` (or of `requirements.yaml`, `Chart.lock`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// `import-values` entries as written (strings or `{child, parent}`).
    pub import_values: Vec<Value>,
    pub alias: String,
}

/// `Chart.yaml`: the fields of Helm's `chart.Metadata`, nothing else (Helm
/// drops unknown fields when it packages a chart).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub home: String,
    pub sources: Vec<String>,
    pub version: String,
    pub description: String,
    pub keywords: Vec<String>,
    /// `None` entries are `null` list items (which fail validation).
    pub maintainers: Vec<Option<Maintainer>>,
    pub icon: String,
    pub api_version: String,
    pub condition: String,
    pub tags: String,
    pub app_version: String,
    pub deprecated: bool,
    pub annotations: BTreeMap<String, String>,
    pub kube_version: String,
    /// `None` entries are `null` list items (which fail validation).
    pub dependencies: Vec<Option<Dependency>>,
    /// `application`, `library` or empty.
    pub chart_type: String,
}

/// `Chart.lock` (or a v1 chart's `requirements.lock`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lock {
    /// The `generated` time in Go's RFC 3339 form with nanoseconds, as Helm
    /// writes it back (`0001-01-01T00:00:00Z` when absent).
    pub generated: String,
    pub digest: String,
    /// `None` when absent or `null` (written back as `null`).
    pub dependencies: Option<Vec<Option<Dependency>>>,
}

/// A loaded chart, in the shape of Helm's `chart.Chart`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    pub metadata: Metadata,
    pub lock: Option<Lock>,
    /// `values.yaml` exactly as read (Helm packages these bytes, not a
    /// re-encoding), `None` when the chart has none.
    pub values_yaml: Option<Vec<u8>>,
    /// `values.yaml` as the load parsed it (Helm's loader parses it to
    /// refuse a bad one), so that a render does not parse it again.
    pub values_parsed: ParsedValues,
    /// `values.schema.json`.
    pub schema: Option<Vec<u8>>,
    /// Files under `templates/`, in load order.
    pub templates: Vec<File>,
    /// Every other file (not `Chart.yaml`, `Chart.lock`, `values.yaml`,
    /// `values.schema.json`, `templates/`, or subcharts under `charts/`),
    /// in load order.
    pub files: Vec<File>,
    /// Subcharts, loaded from `charts/` (sorted by their directory or
    /// archive name; Helm's order is random) or added by a build.
    pub dependencies: Vec<Chart>,
}

impl Chart {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn version(&self) -> &str {
        &self.metadata.version
    }

    /// The chart's values: the documents of `values.yaml` merged, numbers
    /// as float64 (as Helm holds them). An empty map without one.
    pub fn values(&self) -> Result<Map, ChartError> {
        match &self.values_yaml {
            None => Ok(Map::new()),
            Some(data) => match self.values_parsed.of(data) {
                Some(parsed) => Ok(parsed.clone()),
                None => crate::values::load_values(data)
                    .map_err(|e| ChartError::invalid(format!("cannot load values.yaml: {e}"))),
            },
        }
    }

    /// Deflates the templates and files of the chart and its subcharts (those that gain from
    /// it), for a chart kept loaded between the moments it is read: see [`Data`]. Renders and
    /// records read a packed chart as they read the chart it was packed from.
    pub fn pack(&mut self) {
        for f in self.templates.iter_mut().chain(self.files.iter_mut()) {
            f.data = f.data.packed();
        }
        for c in &mut self.dependencies {
            c.pack();
        }
    }

    /// The bytes the chart's templates and files hold in memory (packed or not), with its
    /// subcharts'.
    pub fn held_bytes(&self) -> usize {
        let own: usize = (self.templates.iter().chain(self.files.iter()))
            .map(|f| f.data.held())
            .sum();
        own + self
            .dependencies
            .iter()
            .map(Chart::held_bytes)
            .sum::<usize>()
    }
}

/// A chart's `values.yaml` as parsed at load, with the bytes it was parsed
/// from: [`Chart::values`] uses it only while `values_yaml` still holds
/// exactly those bytes (a build or an upgrade may replace them). Equal to
/// any other: it is a cache, not part of the chart.
#[derive(Clone, Debug, Default)]
pub struct ParsedValues(Option<std::sync::Arc<(Vec<u8>, Map)>>);

impl ParsedValues {
    fn new(data: &[u8], values: Map) -> ParsedValues {
        ParsedValues(Some(std::sync::Arc::new((data.to_vec(), values))))
    }

    /// The parsed values, if they were parsed from `data`.
    fn of(&self, data: &[u8]) -> Option<&Map> {
        self.0
            .as_deref()
            .filter(|(from, _)| from.as_slice() == data)
            .map(|(_, values)| values)
    }
}

impl PartialEq for ParsedValues {
    fn eq(&self, _: &ParsedValues) -> bool {
        true
    }
}

/// Bounds on what a load reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest file (Helm's and Flux's 5 MiB).
    pub max_file_size: u64,
    /// Largest total of file sizes, decompressed (Helm's 100 MiB).
    pub max_total_size: u64,
    /// Most files (a sluice guard; Helm has none).
    pub max_files: usize,
    /// How a chart directory's large files are mapped into memory rather than read (`None`:
    /// every file is read).
    pub map: Option<MapFile>,
}

/// Maps a chart directory's files of at least `at_least` bytes into memory with `map`,
/// rather than reading them. Reading copies a file into memory that must be zeroed first:
/// kube-prometheus-stack's 4.6 MB of CRDs cost more in page faults than the rest of its
/// load. For a command that loads a chart once and exits (`sluice helm template`), on a
/// chart nothing changes meanwhile: a file truncated while mapped kills the process. The
/// mapping itself is the caller's: this crate reads files with the standard library only.
#[derive(Clone, Copy, Debug)]
pub struct MapFile {
    pub at_least: u64,
    pub map: fn(&std::fs::File) -> std::io::Result<std::sync::Arc<dyn Bytes>>,
}

impl PartialEq for MapFile {
    fn eq(&self, other: &MapFile) -> bool {
        self.at_least == other.at_least && std::ptr::fn_addr_eq(self.map, other.map)
    }
}

impl Eq for MapFile {}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_size: 5 << 20,
            max_total_size: 100 << 20,
            max_files: 20_000,
            map: None,
        }
    }
}

/// Why a chart could not be loaded. Messages are Helm's (and Flux's) where
/// they have one, and name the file (relative to the root) and field.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// Reading a file failed.
    #[error("error reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Invalid content (`Chart.yaml`, values, archive layout, validation).
    #[error("{0}")]
    Invalid(String),
    /// A path or symlink leaves the root, or an archive entry its chart.
    #[error("{0}")]
    Unsafe(String),
    /// A size or count limit was exceeded.
    #[error("{0}")]
    Limit(String),
}

impl ChartError {
    pub(crate) fn invalid(m: impl Into<String>) -> ChartError {
        ChartError::Invalid(m.into())
    }
    fn io(path: impl Into<String>, source: std::io::Error) -> ChartError {
        ChartError::Io {
            path: path.into(),
            source,
        }
    }
    /// The same error, with `prefix: ` in front of its message.
    pub(crate) fn context(self, prefix: impl std::fmt::Display) -> ChartError {
        match self {
            ChartError::Io { path, source } => ChartError::Io {
                path: format!("{prefix}: {path}"),
                source,
            },
            ChartError::Invalid(m) => ChartError::Invalid(format!("{prefix}: {m}")),
            ChartError::Unsafe(m) => ChartError::Unsafe(format!("{prefix}: {m}")),
            ChartError::Limit(m) => ChartError::Limit(format!("{prefix}: {m}")),
        }
    }
}

// ---------------------------------------------------------------------------
// Chart.yaml, decoded as encoding/json decodes the JSON sigs.k8s.io/yaml
// makes of it.
// ---------------------------------------------------------------------------

/// Decodes `Chart.yaml` (the first document).
pub fn parse_metadata(data: &[u8]) -> Result<Metadata, ChartError> {
    let mut md = Metadata::default();
    decode_onto(&mut md, data, "Chart.yaml")?;
    Ok(md)
}

/// Decodes `data` (say `requirements.yaml`) onto `md`: fields present
/// replace, others stay.
pub fn parse_metadata_onto(
    mut md: Metadata,
    data: &[u8],
    file: &str,
) -> Result<Metadata, ChartError> {
    decode_onto(&mut md, data, file)?;
    Ok(md)
}

/// Decodes `data` (Chart.yaml or requirements.yaml) onto `md`, as
/// `yaml.Unmarshal(data, md)`: fields present replace, others stay.
fn decode_onto(md: &mut Metadata, data: &[u8], file: &str) -> Result<(), ChartError> {
    let doc = parse_yaml_first(data, file)?;
    decode_metadata(md, &doc).map_err(|e| ChartError::invalid(format!("cannot load {file}: {e}")))
}

fn parse_yaml_first(data: &[u8], file: &str) -> Result<Value, ChartError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| ChartError::invalid(format!("cannot load {file}: invalid UTF-8")))?;
    parse_first(text).map_err(|e: YamlError| {
        ChartError::invalid(format!(
            "cannot load {file}: error converting YAML to JSON: {e}"
        ))
    })
}

/// A JSON decoding failure: Go's `json: cannot unmarshal X into Go struct
/// field S.f of type T`.
fn type_error(found: &Value, strukt: &str, field: &str, want: &str) -> String {
    let kind = match found {
        Value::Seq(_) => "array",
        Value::Map(_) => "object",
        Value::Str(_) => "string",
        Value::Int(_) | Value::Float(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    };
    format!("json: cannot unmarshal {kind} into Go struct field {strukt}.{field} of type {want}")
}

/// Fields of an object in the order Go decodes them (the JSON
/// `sigs.k8s.io/yaml` produces has its keys sorted), each matched to a
/// known field name exactly or else case-insensitively (encoding/json).
fn fields<'a>(m: &'a Map, known: &[&'static str]) -> Vec<(&'static str, &'a Value)> {
    let mut entries: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
        .into_iter()
        .filter_map(|(k, v)| {
            known
                .iter()
                .find(|f| **f == k)
                .or_else(|| known.iter().find(|f| f.eq_ignore_ascii_case(k)))
                .map(|f| (*f, v))
        })
        .collect()
}

/// A value decoded into a Go `string` field: numbers and booleans become
/// their text as `sigs.k8s.io/yaml` writes it for a string target
/// (`1.10` → "1.1"), `null` leaves the field alone.
pub(crate) fn go_string(v: &Value, strukt: &str, field: &str) -> Result<Option<String>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_g32(*f),
        Value::Bool(b) => b.to_string(),
        other => return Err(type_error(other, strukt, field, "string")),
    }))
}

fn set_string(dst: &mut String, v: &Value, strukt: &str, field: &str) -> Result<(), String> {
    if let Some(s) = go_string(v, strukt, field)? {
        *dst = s;
    }
    Ok(())
}

fn string_list(v: &Value, strukt: &str, field: &str) -> Result<Option<Vec<String>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Seq(items) => items
            .iter()
            .map(|i| go_string(i, strukt, field).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(type_error(other, strukt, field, "[]string")),
    }
}

fn go_bool(v: &Value, strukt: &str, field: &str) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(type_error(other, strukt, field, "bool")),
    }
}

pub(crate) fn decode_metadata(md: &mut Metadata, doc: &Value) -> Result<(), String> {
    let m = match doc {
        Value::Null => return Ok(()),
        Value::Map(m) => m,
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type chart.Metadata",
                match other {
                    Value::Seq(_) => "array",
                    Value::Str(_) => "string",
                    Value::Bool(_) => "bool",
                    _ => "number",
                }
            ));
        }
    };
    const KNOWN: &[&str] = &[
        "name",
        "home",
        "sources",
        "version",
        "description",
        "keywords",
        "maintainers",
        "icon",
        "apiVersion",
        "condition",
        "tags",
        "appVersion",
        "deprecated",
        "annotations",
        "kubeVersion",
        "dependencies",
        "type",
    ];
    const S: &str = "Metadata";
    for (f, v) in fields(m, KNOWN) {
        match f {
            "name" => set_string(&mut md.name, v, S, f)?,
            "home" => set_string(&mut md.home, v, S, f)?,
            "version" => set_string(&mut md.version, v, S, f)?,
            "description" => set_string(&mut md.description, v, S, f)?,
            "icon" => set_string(&mut md.icon, v, S, f)?,
            "apiVersion" => set_string(&mut md.api_version, v, S, f)?,
            "condition" => set_string(&mut md.condition, v, S, f)?,
            "tags" => set_string(&mut md.tags, v, S, f)?,
            "appVersion" => set_string(&mut md.app_version, v, S, f)?,
            "kubeVersion" => set_string(&mut md.kube_version, v, S, f)?,
            "type" => set_string(&mut md.chart_type, v, S, f)?,
            "sources" => {
                if let Some(l) = string_list(v, S, f)? {
                    md.sources = l;
                }
            }
            "keywords" => {
                if let Some(l) = string_list(v, S, f)? {
                    md.keywords = l;
                }
            }
            "deprecated" => {
                if let Some(b) = go_bool(v, S, f)? {
                    md.deprecated = b;
                }
            }
            "annotations" => match v {
                Value::Null => {}
                Value::Map(am) => {
                    // encoding/json adds to an existing map.
                    for (k, av) in am.iter() {
                        let s = go_string(av, S, f)?.unwrap_or_default();
                        md.annotations.insert(k.to_string(), s);
                    }
                }
                other => return Err(type_error(other, S, f, "map[string]string")),
            },
            "maintainers" => match v {
                Value::Null => {}
                Value::Seq(items) => {
                    md.maintainers = items
                        .iter()
                        .map(decode_maintainer)
                        .collect::<Result<_, _>>()?;
                }
                other => return Err(type_error(other, S, f, "[]*chart.Maintainer")),
            },
            "dependencies" => {
                if let Some(deps) = decode_dependencies(v, S, f)? {
                    md.dependencies = deps;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_maintainer(v: &Value) -> Result<Option<Maintainer>, String> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Map(m) => m,
        other => {
            return Err(type_error(
                other,
                "Metadata",
                "maintainers",
                "chart.Maintainer",
            ));
        }
    };
    let mut out = Maintainer::default();
    const S: &str = "Maintainer";
    for (f, v) in fields(m, &["name", "email", "url"]) {
        match f {
            "name" => set_string(&mut out.name, v, S, f)?,
            "email" => set_string(&mut out.email, v, S, f)?,
            _ => set_string(&mut out.url, v, S, f)?,
        }
    }
    Ok(Some(out))
}

fn decode_dependencies(
    v: &Value,
    strukt: &str,
    field: &str,
) -> Result<Option<Vec<Option<Dependency>>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Seq(items) => items
            .iter()
            .map(decode_dependency)
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(type_error(other, strukt, field, "[]*chart.Dependency")),
    }
}

fn decode_dependency(v: &Value) -> Result<Option<Dependency>, String> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Map(m) => m,
        other => {
            return Err(type_error(
                other,
                "Metadata",
                "dependencies",
                "chart.Dependency",
            ));
        }
    };
    let mut d = Dependency::default();
    const S: &str = "Dependency";
    const KNOWN: &[&str] = &[
        "name",
        "version",
        "repository",
        "condition",
        "tags",
        "enabled",
        "import-values",
        "alias",
    ];
    for (f, v) in fields(m, KNOWN) {
        match f {
            "name" => set_string(&mut d.name, v, S, f)?,
            "version" => set_string(&mut d.version, v, S, f)?,
            "repository" => set_string(&mut d.repository, v, S, f)?,
            "condition" => set_string(&mut d.condition, v, S, f)?,
            "alias" => set_string(&mut d.alias, v, S, f)?,
            "tags" => {
                if let Some(l) = string_list(v, S, f)? {
                    d.tags = l;
                }
            }
            "enabled" => {
                if let Some(b) = go_bool(v, S, f)? {
                    d.enabled = b;
                }
            }
            "import-values" => match v {
                Value::Null => {}
                Value::Seq(items) => d.import_values = items.clone(),
                other => return Err(type_error(other, S, f, "[]interface {}")),
            },
            _ => {}
        }
    }
    Ok(Some(d))
}

/// Decodes `Chart.lock` / `requirements.lock`.
pub fn parse_lock(data: &[u8], file: &str) -> Result<Lock, ChartError> {
    let doc = parse_yaml_first(data, file)?;
    let bad = |e: String| ChartError::invalid(format!("cannot load {file}: {e}"));
    let mut lock = Lock {
        generated: crate::values::ZERO_TIME.to_string(),
        ..Lock::default()
    };
    let m = match &doc {
        Value::Null => return Ok(lock),
        Value::Map(m) => m,
        other => return Err(bad(type_error(other, "Lock", "", "chart.Lock"))),
    };
    const S: &str = "Lock";
    for (f, v) in fields(m, &["generated", "digest", "dependencies"]) {
        match f {
            "generated" => match v {
                Value::Null => {}
                Value::Str(s) => {
                    lock.generated = crate::values::rfc3339_nano(s).ok_or_else(|| {
                        bad(format!(
                            "parsing time \"{s}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse"
                        ))
                    })?;
                }
                other => return Err(bad(type_error(other, S, f, "time.Time"))),
            },
            "digest" => set_string(&mut lock.digest, v, S, f).map_err(bad)?,
            _ => {
                if let Some(deps) = decode_dependencies(v, S, f).map_err(bad)? {
                    lock.dependencies = Some(deps);
                }
            }
        }
    }
    Ok(lock)
}

// ---------------------------------------------------------------------------
// Validation (Helm's Metadata.Validate, which also cleans strings)
// ---------------------------------------------------------------------------

/// Helm's `sanitizeString`: white space becomes a space, characters Go
/// does not consider printable are dropped (control and format characters,
/// private use; unassigned code points are kept, Go drops them).
fn sanitize(s: &mut String) {
    if s.chars()
        .all(|c| c == ' ' || (!c.is_whitespace() && printable(c)))
    {
        return;
    }
    *s = s
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if printable(c) {
                Some(c)
            } else {
                None
            }
        })
        .collect();
}

fn printable(c: char) -> bool {
    if c.is_control() {
        return false;
    }
    let u = c as u32;
    let format = matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (u & 0xFFFE) == 0xFFFE || (0xFDD0..=0xFDEF).contains(&u);
    !(format || private || nonchar)
}

/// Go's `filepath.Base` on Unix.
fn go_base(name: &str) -> &str {
    if name.is_empty() {
        return ".";
    }
    let trimmed = name.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

impl Metadata {
    /// Helm's `Metadata.Validate`: cleans the strings it cleans, then checks
    /// what Helm checks, with Helm's messages (`validation: ...`).
    pub fn validate(&mut self) -> Result<(), ChartError> {
        let fail = |m: String| Err(ChartError::Invalid(format!("validation: {m}")));
        for s in [
            &mut self.name,
            &mut self.description,
            &mut self.home,
            &mut self.icon,
            &mut self.condition,
            &mut self.tags,
            &mut self.app_version,
            &mut self.kube_version,
        ] {
            sanitize(s);
        }
        self.sources.iter_mut().for_each(sanitize);
        self.keywords.iter_mut().for_each(sanitize);
        if self.api_version.is_empty() {
            return fail("chart.metadata.apiVersion is required".into());
        }
        if self.name.is_empty() {
            return fail("chart.metadata.name is required".into());
        }
        if self.name == "." || self.name == ".." {
            return fail(format!(
                "chart.metadata.name {:?} is not allowed",
                self.name
            ));
        }
        if go_base(&self.name) != self.name {
            return fail(format!("chart.metadata.name {:?} is invalid", self.name));
        }
        if self.version.is_empty() {
            return fail("chart.metadata.version is required".into());
        }
        if crate::values::parse_version(&self.version).is_none() {
            return fail(format!(
                "chart.metadata.version {:?} is invalid",
                self.version
            ));
        }
        if !matches!(self.chart_type.as_str(), "" | "application" | "library") {
            return fail("chart.metadata.type must be application or library".into());
        }
        for m in &mut self.maintainers {
            match m {
                None => return fail("maintainers must not contain empty or null nodes".into()),
                Some(m) => {
                    sanitize(&mut m.name);
                    sanitize(&mut m.email);
                    sanitize(&mut m.url);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in &mut self.dependencies {
            let Some(d) = d else {
                return fail("dependencies must not contain empty or null nodes".into());
            };
            d.validate()?;
            let key = if d.alias.is_empty() {
                d.name.clone()
            } else {
                d.alias.clone()
            };
            if !seen.insert(key.clone()) {
                return fail(format!(
                    "more than one dependency with name or alias {key:?}"
                ));
            }
        }
        Ok(())
    }

    /// The dependencies, `null` entries left out.
    pub fn deps(&self) -> impl Iterator<Item = &Dependency> {
        self.dependencies.iter().flatten()
    }
}

impl Dependency {
    /// Helm's `Dependency.Validate`.
    pub fn validate(&mut self) -> Result<(), ChartError> {
        sanitize(&mut self.name);
        sanitize(&mut self.version);
        sanitize(&mut self.repository);
        sanitize(&mut self.condition);
        self.tags.iter_mut().for_each(sanitize);
        if !self.alias.is_empty()
            && !self
                .alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ChartError::Invalid(format!(
                "validation: dependency {:?} has disallowed characters in the alias",
                self.name
            )));
        }
        Ok(())
    }

    /// The name the dependency has in its parent: its alias, else its name.
    pub fn effective_name(&self) -> &str {
        if self.alias.is_empty() {
            &self.name
        } else {
            &self.alias
        }
    }
}

// ---------------------------------------------------------------------------
// Loading from files (Helm's LoadFiles)
// ---------------------------------------------------------------------------

/// Builds a chart from its files (names relative to the chart), as Helm's
/// `loader.LoadFiles`: `Chart.yaml` first, then each file by its role;
/// subcharts under `charts/` (directories and `.tgz`, but not names that
/// start with `_` or `.`) loaded recursively.
pub fn load_files(files: Vec<File>, limits: &Limits) -> Result<Chart, ChartError> {
    load_files_keeping(files, limits, Keep::Plain)
}

/// How a load keeps the files it reads: as read, or each packed as soon as it is read
/// ([`load_archive_packed`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Plain,
    Packed,
}

impl Keep {
    /// `f` as this load keeps it.
    fn keep(self, f: File) -> File {
        match self {
            Keep::Plain => f,
            Keep::Packed => File {
                data: f.data.packed(),
                name: f.name,
            },
        }
    }
}

// The files a load reads into the chart itself (metadata, lock, values, schema), at the top of
// the chart or of a subchart: not kept as the chart's files (but a v1 chart's `requirements.*`
// are kept too), and not packed as they are read.
const CHART_YAML: &str = "Chart.yaml";
const CHART_LOCK: &str = "Chart.lock";
const VALUES_YAML: &str = "values.yaml";
const VALUES_SCHEMA: &str = "values.schema.json";
const REQUIREMENTS_YAML: &str = "requirements.yaml";
const REQUIREMENTS_LOCK: &str = "requirements.lock";
const LOADED_FILES: [&str; 6] = [
    CHART_YAML,
    CHART_LOCK,
    VALUES_YAML,
    VALUES_SCHEMA,
    REQUIREMENTS_YAML,
    REQUIREMENTS_LOCK,
];

fn load_files_keeping(files: Vec<File>, limits: &Limits, keep: Keep) -> Result<Chart, ChartError> {
    let loaded: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    let budget = std::cell::Cell::new(limits.max_total_size.saturating_sub(loaded));
    load_files_within(files, limits, &budget, keep)
}

/// [`load_files`], with what subchart archives may still decompress to
/// (all of them together, at any depth: a chart of archives of archives
/// stays within the one total limit).
fn load_files_within(
    files: Vec<File>,
    limits: &Limits,
    budget: &std::cell::Cell<u64>,
    keep: Keep,
) -> Result<Chart, ChartError> {
    let mut c = Chart::default();
    let mut have_metadata = false;
    for f in &files {
        if f.name == CHART_YAML {
            decode_onto(&mut c.metadata, &f.data.bytes(), CHART_YAML)?;
            if c.metadata.api_version.is_empty() {
                c.metadata.api_version = "v1".into();
            }
            have_metadata = true;
        }
    }
    if have_metadata && !matches!(c.metadata.api_version.as_str(), "v1" | "v2") {
        return Err(ChartError::invalid(format!(
            "Chart.yaml: apiVersion {:?} is not supported (v1 and v2 are)",
            c.metadata.api_version
        )));
    }
    let mut subcharts: BTreeMap<String, Vec<File>> = BTreeMap::new();
    for f in files {
        let name = f.name.as_str();
        match name {
            CHART_YAML => {}
            CHART_LOCK => c.lock = Some(parse_lock(&f.data.bytes(), CHART_LOCK)?),
            VALUES_YAML => {
                let parsed = crate::values::load_values(&f.data.bytes())
                    .map_err(|e| ChartError::invalid(format!("cannot load values.yaml: {e}")))?;
                c.values_parsed = ParsedValues::new(&f.data.bytes(), parsed);
                c.values_yaml = Some(f.data.bytes().into_owned());
            }
            VALUES_SCHEMA => c.schema = Some(f.data.bytes().into_owned()),
            REQUIREMENTS_YAML => {
                decode_onto(&mut c.metadata, &f.data.bytes(), REQUIREMENTS_YAML)?;
                if c.metadata.api_version == "v1" {
                    c.files.push(keep.keep(f));
                }
            }
            REQUIREMENTS_LOCK => {
                c.lock = Some(parse_lock(&f.data.bytes(), REQUIREMENTS_LOCK)?);
                if c.metadata.api_version == "v1" {
                    c.files.push(keep.keep(f));
                }
            }
            _ if name.starts_with("templates/") => c.templates.push(f),
            _ if name.starts_with("charts/") => {
                if name.ends_with(".prov") {
                    c.files.push(f);
                    continue;
                }
                let rest = &name["charts/".len()..];
                let cname = rest.split('/').next().unwrap_or(rest).to_string();
                let inner = rest.to_string();
                subcharts.entry(cname).or_default().push(File {
                    name: inner,
                    data: f.data,
                });
            }
            _ => c.files.push(f),
        }
    }
    if !have_metadata {
        return Err(ChartError::invalid("Chart.yaml file is missing"));
    }
    c.metadata.validate()?;

    for (n, files) in subcharts {
        if n.starts_with('_') || n.starts_with('.') {
            continue;
        }
        let parent = c.metadata.name.clone();
        let unpack = |e: ChartError| e.context(format!("error unpacking subchart {n} in {parent}"));
        let sc = if n.ends_with(".tgz") {
            let Some(first) = files.first() else { continue };
            if first.name != n {
                return Err(ChartError::invalid(format!(
                    "error unpacking subchart tar in {parent}: expected {n}, got {}",
                    first.name
                )));
            }
            let nested = Limits {
                max_total_size: budget.get(),
                ..*limits
            };
            let inner = read_archive(&first.data.bytes()[..], &nested, keep).map_err(|e| match e {
                ChartError::Limit(m) => ChartError::Limit(format!(
                    "{m} (subchart archives count towards the chart's total of {})",
                    limits.max_total_size
                )),
                other => other,
            });
            let inner = inner.map_err(unpack)?;
            let size: u64 = inner.iter().map(|f| f.data.len() as u64).sum();
            budget.set(budget.get().saturating_sub(size));
            load_files_within(inner, limits, budget, keep).map_err(unpack)?
        } else {
            let inner: Vec<File> = files
                .into_iter()
                .filter_map(|f| {
                    let (_, rest) = f.name.split_once('/')?;
                    Some(File {
                        name: rest.to_string(),
                        data: f.data,
                    })
                })
                .collect();
            load_files_within(inner, limits, budget, keep).map_err(unpack)?
        };
        c.dependencies.push(sc);
    }
    Ok(c)
}

// ---------------------------------------------------------------------------
// Archives (Helm's LoadArchiveFiles)
// ---------------------------------------------------------------------------

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn trim_bom(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(UTF8_BOM) {
        data.drain(..3);
    }
    data
}

/// Up to `size` bytes of `r` read straight into a shared buffer, with the
/// number read (less than `size` at the end of `r`). A `Vec` read and then
/// turned into an `Arc<[u8]>` is copied (the counts come first in the
/// allocation): for a large chart (kube-prometheus-stack, 7.4 MB) a second
/// copy of every file, held with the first while it was made.
fn read_shared(r: &mut impl Read, size: usize) -> std::io::Result<(std::sync::Arc<[u8]>, usize)> {
    // Zeroed by the allocator (`calloc`), which knows the memory it has just had from the
    // system is zero and does not write it: writing zeros first (`memset`) was a fortieth of
    // kube-prometheus-stack's `helm template`, and the read writes the bytes anyway.
    // SAFETY: every byte is zero, a valid `u8`.
    let mut buf: std::sync::Arc<[u8]> =
        unsafe { std::sync::Arc::<[u8]>::new_zeroed_slice(size).assume_init() };
    let mut n = 0;
    if let Some(dst) = std::sync::Arc::get_mut(&mut buf) {
        while n < size {
            match r.read(&mut dst[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok((buf, n))
}

/// The first `n` bytes of a buffer from [`read_shared`] as a file's data,
/// a UTF-8 byte order mark removed (copied only then, or when short).
fn shared_data(buf: std::sync::Arc<[u8]>, n: usize) -> std::sync::Arc<[u8]> {
    let start = if buf[..n].starts_with(UTF8_BOM) { 3 } else { 0 };
    if start == 0 && n == buf.len() {
        return buf;
    }
    buf[start..n].into()
}

/// Reads the files of a chart archive (gzip-compressed tar), names relative
/// to the chart: the first path element of each entry (the chart's
/// directory) is dropped, as Helm does.
pub fn read_archive_files(input: impl Read, limits: &Limits) -> Result<Vec<File>, ChartError> {
    read_archive(input, limits, Keep::Plain)
}

/// Whether a file read to be kept packed is packed as it is read: not the files the load reads
/// into the chart ([`LOADED_FILES`], at any depth), nor subchart archives (already compressed).
fn worth_packing(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    !(name.ends_with(".tgz") || LOADED_FILES.contains(&base))
}

fn read_archive(input: impl Read, limits: &Limits, keep: Keep) -> Result<Vec<File>, ChartError> {
    let gz = flate2::read::GzDecoder::new(input);
    // Never decompress much beyond the total limit (a gzip bomb stops here).
    let bounded = gz.take(limits.max_total_size.saturating_add(1 << 20));
    let mut tar = tar::Archive::new(bounded);
    let entries = tar.entries().map_err(|e| archive_error(&e))?;
    let mut files = Vec::new();
    let mut remaining = limits.max_total_size;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(&e))?;
        let header = entry.header();
        let kind = header.entry_type();
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if kind.is_dir() || raw_name.ends_with('/') {
            continue;
        }
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let n = archive_name(&raw_name)?;
        if kind.is_symlink() || kind.is_hard_link() {
            // Helm reads a link entry as an empty file; one that points out
            // of the chart is refused rather than carried along.
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if target.starts_with('/') || escapes(&format!("{}/{target}", parent_of(&n))) {
                return Err(ChartError::Unsafe(format!(
                    "chart archive entry {raw_name:?} links to {target:?}, outside the chart"
                )));
            }
        }
        let size = entry.size();
        if size > remaining {
            return Err(ChartError::Limit(format!(
                "decompressed chart is larger than the maximum size {}",
                limits.max_total_size
            )));
        }
        if size > limits.max_file_size {
            return Err(ChartError::Limit(format!(
                "decompressed chart file {raw_name:?} is larger than the maximum file size {}",
                limits.max_file_size
            )));
        }
        if files.len() >= limits.max_files {
            return Err(ChartError::Limit(format!(
                "chart archive has more than {} files",
                limits.max_files
            )));
        }
        let (data, len) = read_shared(&mut (&mut entry).take(size), size as usize)
            .map_err(|e| archive_error(&e))?;
        if (len as u64) < size && !(kind.is_symlink() || kind.is_hard_link()) {
            return Err(ChartError::invalid(format!(
                "chart archive entry {raw_name:?} is truncated"
            )));
        }
        remaining -= len as u64;
        let data = Data::from(shared_data(data, len));
        let data = if keep == Keep::Packed && worth_packing(&n) {
            data.packed()
        } else {
            data
        };
        files.push(File { name: n, data });
    }
    if files.is_empty() {
        return Err(ChartError::invalid("no files in chart archive"));
    }
    Ok(files)
}

fn archive_error(e: &std::io::Error) -> ChartError {
    let msg = e.to_string();
    if msg.contains("invalid gzip header") || msg.contains("corrupt deflate stream") {
        ChartError::invalid(format!(
            "stream does not appear to be a valid chart file (details: {msg})"
        ))
    } else {
        ChartError::invalid(format!("unable to load chart archive: {msg}"))
    }
}

fn parent_of(n: &str) -> &str {
    n.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Whether a `/`-separated relative path climbs above its start.
fn escapes(p: &str) -> bool {
    let mut depth: i64 = 0;
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Helm's checks and normalisation of an archive entry name: the first
/// element dropped, `\` separators accepted, no absolute paths, nothing
/// outside the chart, no drive letters, `Chart.yaml` not at the top.
fn archive_name(raw: &str) -> Result<String, ChartError> {
    let delim = if raw.contains('\\') { '\\' } else { '/' };
    let parts: Vec<&str> = raw.split(delim).collect();
    let n = parts[1..].join("/");
    if n.starts_with('/') {
        return Err(ChartError::Unsafe(format!(
            "chart illegally contains absolute paths: {raw:?}"
        )));
    }
    let clean = clean_path(&n);
    if clean == "." {
        return Err(ChartError::Unsafe(format!(
            "chart illegally contains content outside the base directory: {raw:?}"
        )));
    }
    if clean.starts_with("..") {
        return Err(ChartError::Unsafe(format!(
            "chart illegally references parent directory: {raw:?}"
        )));
    }
    let b = clean.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/' {
        return Err(ChartError::Unsafe(format!(
            "chart contains illegally named files: {raw:?}"
        )));
    }
    if parts[0] == "Chart.yaml" {
        return Err(ChartError::invalid("chart yaml not in base directory"));
    }
    Ok(clean)
}

/// Go's `path.Clean`.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Loads a chart from a gzip-compressed tar (a `.tgz`), as Helm's
/// `loader.LoadArchive`.
pub fn load_archive(input: impl Read, limits: &Limits) -> Result<Chart, ChartError> {
    load_files(read_archive_files(input, limits)?, limits)
}

/// [`load_archive`] followed by [`Chart::pack`], without ever holding the whole chart
/// unpacked: each file is packed as it is read (for a controller that keeps charts loaded).
pub fn load_archive_packed(input: impl Read, limits: &Limits) -> Result<Chart, ChartError> {
    load_files_keeping(
        read_archive(input, limits, Keep::Packed)?,
        limits,
        Keep::Packed,
    )
}

/// The metadata of a chart archive, reading only its top-level
/// `Chart.yaml` and `requirements.yaml` (Flux's
/// `LoadChartMetadataFromArchive`, used to compare with a cached chart).
pub fn archive_metadata(input: impl Read, limits: &Limits) -> Result<Metadata, ChartError> {
    let files = read_archive_files(input, limits)?;
    let mut md: Option<Metadata> = None;
    for f in &files {
        if f.name == "Chart.yaml" || f.name == "requirements.yaml" {
            let m = md.get_or_insert_with(Metadata::default);
            decode_onto(m, &f.data.bytes(), &f.name)?;
            if m.api_version.is_empty() {
                m.api_version = "v1".into();
            }
        }
    }
    md.ok_or_else(|| ChartError::invalid("no 'Chart.yaml' found"))
}

// ---------------------------------------------------------------------------
// Directories (Helm's LoadDir, with Flux's secure loader's root)
// ---------------------------------------------------------------------------

/// Loads the chart in directory `dir` (nothing may come from outside it).
pub fn load_dir(dir: &Path, limits: &Limits) -> Result<Chart, ChartError> {
    load_dir_in(dir, Path::new("."), limits)
}

/// Loads the chart at `path` (relative to `root`; a directory or a `.tgz`)
/// reading nothing outside `root`: Flux's `secureloader.Load(root, path)`.
/// Symlinks may point anywhere inside `root`.
pub fn load_in(root: &Path, path: &str, limits: &Limits) -> Result<Chart, ChartError> {
    let (abs, shown) = secure_path(root, path)?;
    let meta = std::fs::metadata(&abs).map_err(|e| ChartError::io(&shown, e))?;
    if meta.is_dir() {
        load_dir_in(root, Path::new(path), limits)
    } else {
        let f = std::fs::File::open(&abs).map_err(|e| ChartError::io(&shown, e))?;
        load_archive(std::io::BufReader::new(f), limits).map_err(|e| match e {
            ChartError::Invalid(m) if m.starts_with("stream does not appear") => {
                ChartError::Invalid(format!(
                    "file '{shown}' does not appear to be a valid chart file ({m})"
                ))
            }
            other => other.context(&shown),
        })
    }
}

/// `root` joined with the relative `path`, both canonical, refusing a path
/// that is absolute, climbs out of `root`, or resolves (through symlinks)
/// outside it. Returns the path and its name as shown in errors.
pub(crate) fn secure_path(root: &Path, path: &str) -> Result<(PathBuf, String), ChartError> {
    let shown = clean_path(path);
    let rel = Path::new(path);
    if rel.is_absolute() {
        return Err(ChartError::Unsafe(format!(
            "path {path:?} is absolute; a path relative to the source is expected"
        )));
    }
    if rel.components().any(|c| matches!(c, Component::ParentDir)) && escapes(path) {
        return Err(ChartError::Unsafe(format!(
            "path {path:?} leaves the source root"
        )));
    }
    let root =
        std::fs::canonicalize(root).map_err(|e| ChartError::io(root.display().to_string(), e))?;
    let joined = root.join(rel);
    let abs = std::fs::canonicalize(&joined).map_err(|e| ChartError::io(&shown, e))?;
    if !abs.starts_with(&root) {
        return Err(ChartError::Unsafe(format!(
            "path {shown:?} resolves outside the source root (symlink to {})",
            outside_hint(&root, &abs)
        )));
    }
    Ok((abs, shown))
}

/// How an escaping target is named in errors: relative to the root, as
/// Flux names it, never the absolute host path of the root.
fn outside_hint(root: &Path, target: &Path) -> String {
    let mut up = PathBuf::new();
    let mut base = root.to_path_buf();
    loop {
        if let Ok(rest) = target.strip_prefix(&base) {
            return up.join(rest).display().to_string();
        }
        if !base.pop() {
            return target.display().to_string();
        }
        up.push("..");
    }
}

fn load_dir_in(root: &Path, path: &Path, limits: &Limits) -> Result<Chart, ChartError> {
    let path_str = path.to_string_lossy();
    let (abs, shown) = secure_path(root, &path_str)?;
    let root =
        std::fs::canonicalize(root).map_err(|e| ChartError::io(root.display().to_string(), e))?;
    let prefix = if shown == "." {
        String::new()
    } else {
        format!("{shown}/")
    };
    let mut rules = match std::fs::read(abs.join(".helmignore")) {
        Ok(data) => Rules::parse(&String::from_utf8_lossy(&data))
            .map_err(|e| ChartError::invalid(format!("{prefix}.helmignore: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rules::empty(),
        Err(e) => return Err(ChartError::io(format!("{prefix}.helmignore"), e)),
    };
    rules.add_defaults();
    let mut walk = Walk {
        root: &root,
        prefix: &prefix,
        rules: &rules,
        limits,
        files: Vec::new(),
        total: 0,
        stack: vec![abs.clone()],
    };
    walk.dir(&abs, "")?;
    let files = walk.files;
    if !files.iter().any(|f| f.name == "Chart.yaml") {
        return Err(ChartError::invalid(format!(
            "unable to detect chart at {prefix}Chart.yaml: no such file"
        )));
    }
    load_files(files, limits)
}

struct Walk<'a> {
    root: &'a Path,
    prefix: &'a str,
    rules: &'a Rules,
    limits: &'a Limits,
    files: Vec<File>,
    total: u64,
    /// The canonical directories being walked (a symlink back into one of
    /// them would loop).
    stack: Vec<PathBuf>,
}

impl Walk<'_> {
    /// Counts a file of `size` bytes read (or mapped) as `name` against the
    /// bounds on one file and on the whole chart.
    fn count(&mut self, name: &str, size: u64) -> Result<(), ChartError> {
        let shown = format!("{}{name}", self.prefix);
        if size > self.limits.max_file_size {
            return Err(ChartError::Limit(format!(
                "cannot load file {shown} as file size ({size}) exceeds limit ({})",
                self.limits.max_file_size
            )));
        }
        self.total += size;
        if self.total > self.limits.max_total_size {
            return Err(ChartError::Limit(format!(
                "chart is larger than the maximum size {} (at {shown})",
                self.limits.max_total_size
            )));
        }
        Ok(())
    }

    /// Walks `dir` (its contents named `rel/...`), in Go's sorted order. The
    /// top of `stack` is `dir`'s canonical path.
    fn dir(&mut self, dir: &Path, rel: &str) -> Result<(), ChartError> {
        let prefix = self.prefix;
        let root = self.root;
        let shown = |n: &str| format!("{prefix}{n}");
        // The entry types come with the directory listing (no `lstat` per
        // entry), and a directory that is not a symlink is canonical under
        // its parent (no `realpath` per directory).
        let mut entries: Vec<(std::ffi::OsString, std::fs::FileType)> = std::fs::read_dir(dir)
            .map_err(|e| ChartError::io(shown(rel), e))?
            .map(|e| e.and_then(|e| Ok((e.file_name(), e.file_type()?))))
            .collect::<Result<_, _>>()
            .map_err(|e| ChartError::io(shown(rel), e))?;
        entries.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
        for (name, ftype) in entries {
            let name_str = name.to_string_lossy().into_owned();
            let n = if rel.is_empty() {
                name_str
            } else {
                format!("{rel}/{name_str}")
            };
            let p = dir.join(&name);
            let (is_dir, is_file, real) = if ftype.is_symlink() {
                let real = std::fs::canonicalize(&p).map_err(|e| {
                    ChartError::invalid(format!("error evaluating symlink {}: {e}", shown(&n)))
                })?;
                let meta = std::fs::metadata(&real).map_err(|e| ChartError::io(shown(&n), e))?;
                (meta.is_dir(), meta.is_file(), Some(real))
            } else {
                (ftype.is_dir(), ftype.is_file(), None)
            };
            let check_inside = |what: &str| -> Result<(), ChartError> {
                if let Some(real) = &real
                    && !real.starts_with(root)
                {
                    return Err(ChartError::Unsafe(format!(
                        "cannot load '{}' {what}: symlink target is outside the source root: {}",
                        shown(&n),
                        outside_hint(root, real)
                    )));
                }
                Ok(())
            };
            if is_dir {
                if self.rules.ignore(&n, true) {
                    continue;
                }
                check_inside("directory")?;
                let real_dir = match &real {
                    Some(r) => r.clone(),
                    None => match self.stack.last() {
                        Some(parent) => parent.join(&name),
                        None => {
                            std::fs::canonicalize(&p).map_err(|e| ChartError::io(shown(&n), e))?
                        }
                    },
                };
                if self.stack.contains(&real_dir) {
                    return Err(ChartError::Unsafe(format!(
                        "cannot load '{}' directory: symlink loop",
                        shown(&n)
                    )));
                }
                self.stack.push(real_dir);
                let r = self.dir(&p, &n);
                self.stack.pop();
                r?;
                continue;
            }
            if self.rules.ignore(&n, false) {
                continue;
            }
            check_inside("file")?;
            if !is_file {
                return Err(ChartError::invalid(format!(
                    "cannot load irregular file {} as it has file mode type bits set",
                    shown(&n)
                )));
            }
            let mut file = std::fs::File::open(&p).map_err(|e| ChartError::io(shown(&n), e))?;
            let meta = file.metadata().map_err(|e| ChartError::io(shown(&n), e))?;
            if meta.len() > self.limits.max_file_size {
                return Err(ChartError::Limit(format!(
                    "cannot load file {} as file size ({}) exceeds limit ({})",
                    shown(&n),
                    meta.len(),
                    self.limits.max_file_size
                )));
            }
            if self.files.len() >= self.limits.max_files {
                return Err(ChartError::Limit(format!(
                    "chart {} has more than {} files",
                    if self.prefix.is_empty() {
                        "."
                    } else {
                        self.prefix.trim_end_matches('/')
                    },
                    self.limits.max_files
                )));
            }
            let io = |e| ChartError::io(shown(&n), e);
            if let Some(m) = self.limits.map
                && meta.len() >= m.at_least.max(1)
            {
                let owner = (m.map)(&file).map_err(io)?;
                // The size it has when mapped (it may have grown since it was checked).
                self.count(&n, owner.bytes().len() as u64)?;
                let data = Data::held_by(owner, UTF8_BOM);
                self.files.push(File { name: n, data });
                continue;
            }
            let (buf, len) = read_shared(&mut file, meta.len() as usize).map_err(io)?;
            // The size it had when checked, unless it grew since: then the
            // rest is read too, bounded again.
            let mut more = Vec::new();
            if len == buf.len() {
                (&mut file)
                    .take(self.limits.max_file_size + 1 - len as u64)
                    .read_to_end(&mut more)
                    .map_err(io)?;
            }
            self.count(&n, (len + more.len()) as u64)?;
            let data = if more.is_empty() {
                shared_data(buf, len)
            } else {
                let mut all = buf[..len].to_vec();
                all.append(&mut more);
                trim_bom(all).into()
            };
            self.files.push(File {
                name: n,
                data: data.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let k = self.0.len().min(self.1).min(buf.len());
            buf[..k].copy_from_slice(&self.0[..k]);
            self.0 = &self.0[k..];
            Ok(k)
        }
    }

    #[test]
    fn files_are_read_into_their_shared_buffer_whole_or_short() {
        let text = b"\xEF\xBB\xBFkey: value\n";
        // Whole, in small reads: the buffer itself, the mark removed.
        let (buf, n) = read_shared(&mut Trickle(text, 3), text.len()).unwrap();
        assert_eq!(n, text.len());
        assert_eq!(&shared_data(buf, n)[..], b"key: value\n");
        // Without a mark, no copy: the same allocation comes back.
        let (buf, n) = read_shared(&mut Trickle(b"abc", 2), 3).unwrap();
        let ptr = buf.as_ptr();
        let data = shared_data(buf, n);
        assert_eq!((&data[..], data.as_ptr()), (&b"abc"[..], ptr));
        // Shorter than announced (a truncated archive entry, a file that
        // shrank): what was there.
        let (buf, n) = read_shared(&mut Trickle(b"ab", 8), 5).unwrap();
        assert_eq!(n, 2);
        assert_eq!(&shared_data(buf, n)[..], b"ab");
        // Longer: only the size asked for.
        let (buf, n) = read_shared(&mut Trickle(b"abcdef", 8), 4).unwrap();
        assert_eq!(&shared_data(buf, n)[..], b"abcd");
        let (buf, n) = read_shared(&mut Trickle(b"", 8), 0).unwrap();
        assert!(shared_data(buf, n).is_empty());
    }

    #[test]
    fn the_files_read_into_the_chart_are_those_never_packed_as_read() {
        // Every name of LOADED_FILES (and no other) is read into a v2 chart rather than kept
        // as one of its files, at the top and in a subchart; a v1 chart also keeps its
        // `requirements.*` as files.
        let body = |name: &str| match name {
            CHART_YAML => "apiVersion: v2\nname: a\nversion: 1.0.0\n",
            VALUES_YAML => "a: 1\n",
            VALUES_SCHEMA => "{}",
            REQUIREMENTS_YAML => "dependencies: []\n",
            _ => "{}\n",
        };
        let file = |name: String, text: &str| File {
            name,
            data: Data::from(text),
        };
        let mut files = Vec::new();
        for dir in ["", "charts/sub/"] {
            for name in LOADED_FILES
                .iter()
                .chain(&["notes.txt", "templates/a.yaml"])
            {
                files.push(file(format!("{dir}{name}"), body(name)));
                assert_eq!(
                    worth_packing(&format!("{dir}{name}")),
                    !LOADED_FILES.contains(name),
                    "{dir}{name}"
                );
            }
        }
        let chart = load_files(files.clone(), &Limits::default()).unwrap();
        for c in [&chart, &chart.dependencies[0]] {
            let kept: Vec<&str> = c.files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(kept, ["notes.txt"]);
            assert!(c.values_yaml.is_some() && c.schema.is_some() && c.lock.is_some());
        }
        let v1 = "apiVersion: v1\nname: a\nversion: 1.0.0\n";
        files[0] = file(CHART_YAML.into(), v1);
        let chart = load_files(files, &Limits::default()).unwrap();
        let kept: Vec<&str> = chart.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(kept, [REQUIREMENTS_YAML, REQUIREMENTS_LOCK, "notes.txt"]);
    }

    #[test]
    fn directory_files_are_read_whole_and_bounded() {
        // The walk reads the size it saw into the file's buffer (and then
        // whatever a file that grew meanwhile has more, bounded again).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Chart.yaml"),
            "apiVersion: v2\nname: a\nversion: 1.0.0\n",
        )
        .unwrap();
        let big = "x".repeat(3000);
        std::fs::write(dir.path().join("big.txt"), &big).unwrap();
        let chart = load_dir(dir.path(), &Limits::default()).unwrap();
        let f = chart.files.iter().find(|f| f.name == "big.txt").unwrap();
        assert_eq!(f.data.len(), 3000);
        let small = Limits {
            max_file_size: 2999,
            ..Limits::default()
        };
        let e = load_dir(dir.path(), &small).unwrap_err().to_string();
        assert!(e.contains("big.txt") && e.contains("3000"), "{e}");
    }

    #[test]
    fn values_parsed_at_load_are_used_until_the_bytes_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Chart.yaml"),
            "apiVersion: v2\nname: a\nversion: 1.0.0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("values.yaml"), "a: 1\n---\nb: {c: yes}\n").unwrap();
        let chart = load_dir(dir.path(), &Limits::default()).unwrap();
        let reparsed = crate::values::load_values(b"a: 1\n---\nb: {c: yes}\n").unwrap();
        let kept = chart.values_parsed.of(b"a: 1\n---\nb: {c: yes}\n").cloned();
        assert_eq!(
            kept.as_ref(),
            Some(&reparsed),
            "the load keeps what it parsed"
        );
        assert_eq!(chart.values().unwrap(), reparsed);
        assert_eq!(
            crate::values::encode_values(&chart.values().unwrap()),
            "a: 1\nb:\n  c: true\n"
        );
        // A build or an upgrade replaces the bytes before a render: what the
        // load parsed no longer applies.
        let mut chart = load_dir(dir.path(), &Limits::default()).unwrap();
        chart.values_yaml = Some(b"a: 2\n".to_vec());
        assert_eq!(
            crate::values::encode_values(&chart.values().unwrap()),
            "a: 2\n"
        );
        chart.values_yaml = Some(b"a: [\n".to_vec());
        assert!(chart.values().is_err());
        // Not part of the chart's equality.
        let mut other = chart.clone();
        other.values_parsed = ParsedValues::default();
        assert_eq!(chart, other);
    }

    #[test]
    fn chart_yaml_decodes_as_helm() {
        let md = parse_metadata(
            b"apiVersion: v2\nname: demo\nversion: 1.0\nappVersion: 1.10\nVersion: 2.0.0\ndeprecated: yes\nkeywords: [a, 1]\nannotations: {x: 1}\nunknown: field\n",
        )
        .unwrap();
        // `Version` sorts before `version`, so `version` (1.0 -> "1") wins.
        assert_eq!(md.version, "1");
        assert_eq!(md.app_version, "1.1");
        assert!(md.deprecated);
        assert_eq!(md.keywords, vec!["a", "1"]);
        assert_eq!(md.annotations.get("x").map(String::as_str), Some("1"));
    }

    #[test]
    fn chart_yaml_type_errors_name_the_field() {
        let e = parse_metadata(b"name: [a]\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot load Chart.yaml: json: cannot unmarshal array into Go struct field Metadata.name of type string"
        );
        let e = parse_metadata(b"deprecated: \"true\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Metadata.deprecated of type bool"), "{e}");
    }

    #[test]
    fn validation_messages_are_helms() {
        let check = |y: &str| {
            let mut md = parse_metadata(y.as_bytes()).unwrap();
            md.validate().map(|_| md).map_err(|e| e.to_string())
        };
        assert_eq!(
            check("apiVersion: v2\nversion: 1.0.0\n").unwrap_err(),
            "validation: chart.metadata.name is required"
        );
        assert_eq!(
            check("apiVersion: v2\nname: a\nversion: 1.x\n").unwrap_err(),
            "validation: chart.metadata.version \"1.x\" is invalid"
        );
        assert_eq!(
            check("apiVersion: v2\nname: ../a\nversion: 1.0.0\n").unwrap_err(),
            "validation: chart.metadata.name \"../a\" is invalid"
        );
        assert_eq!(
            check("apiVersion: v2\nname: a\nversion: 1.0.0\ntype: app\n").unwrap_err(),
            "validation: chart.metadata.type must be application or library"
        );
        assert_eq!(
            check("apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies: [{name: b}, {name: c, alias: b}]\n")
                .unwrap_err(),
            "validation: more than one dependency with name or alias \"b\""
        );
        assert_eq!(
            check(
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies: [{name: b, alias: 'b.c'}]\n"
            )
            .unwrap_err(),
            "validation: dependency \"b\" has disallowed characters in the alias"
        );
        assert_eq!(
            check("apiVersion: v2\nname: a\nversion: 1.0.0\nmaintainers: [~]\n").unwrap_err(),
            "validation: maintainers must not contain empty or null nodes"
        );
        let md = check("apiVersion: v2\nname: a\nversion: 1.0.0\ndescription: \"x\\ty\\u200bz\"\n")
            .unwrap();
        assert_eq!(md.description, "x yz");
    }

    #[test]
    fn archive_names_are_checked_as_helm() {
        assert_eq!(
            archive_name("chart/templates/a.yaml").unwrap(),
            "templates/a.yaml"
        );
        assert_eq!(
            archive_name("chart\\templates\\a.yaml").unwrap(),
            "templates/a.yaml"
        );
        assert!(matches!(
            archive_name("chart//etc/passwd"),
            Err(ChartError::Unsafe(_))
        ));
        assert!(matches!(
            archive_name("chart/../../x"),
            Err(ChartError::Unsafe(_))
        ));
        assert!(matches!(archive_name("chart"), Err(ChartError::Unsafe(_))));
        assert!(matches!(
            archive_name("chart/c:/x"),
            Err(ChartError::Unsafe(_))
        ));
        assert_eq!(
            archive_name("Chart.yaml").unwrap_err().to_string(),
            "chart illegally contains content outside the base directory: \"Chart.yaml\""
        );
        assert_eq!(
            archive_name("Chart.yaml/x").unwrap_err().to_string(),
            "chart yaml not in base directory"
        );
    }

    #[test]
    fn go_path_clean() {
        for (i, o) in [
            ("", "."),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("a//b/./", "a/b"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }
}
