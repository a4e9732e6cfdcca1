//! sluice-kustomize: a native implementation of `kustomize build`
//! (kustomize v5 semantics) with no Kubernetes client dependency.
//!
//! Entry point: [`build`]. The output of [`BuildOutput::to_yaml`] is what
//! `kustomize build` prints.
//!
//! The facade other crates use is this root ([`build`], [`Options`],
//! [`Error`], ...) and four modules: [`yaml`] (the document model, its
//! reader and emitter), [`remote`] (remote resources), [`guard`] (read
//! bounds) and [`patch`] (label selectors). Every other module is private
//! to the crate.

pub(crate) mod engine;
pub(crate) mod fieldspec;
// Generated, one entry a line: see `scripts/gen-fieldspec-tables`.
#[rustfmt::skip]
pub(crate) mod fieldspec_table;
pub(crate) mod generators;
pub(crate) mod gosort;
pub mod guard;
pub(crate) mod kustomization;
// Generated, one entry a line: see `scripts/gen-kustomization-schema`.
#[rustfmt::skip]
pub(crate) mod kustomization_schema;
pub(crate) mod nameref;
pub mod patch;
pub mod remote;
pub(crate) mod replacements;
pub(crate) mod resource;
pub(crate) mod smp;
pub(crate) mod smp_table;
pub(crate) mod transformers;
pub(crate) mod vars;
pub mod yaml;

use std::path::Path;

pub use crate::resource::{ResId, ResMap, Resource};

/// Build errors. Messages follow kustomize's wording where tools or users
/// are known to match on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Msg(String),
    /// kustomize's words: `MalformedYAMLError: yaml: line N: PROBLEM in File: F`.
    #[error("MalformedYAMLError: yaml: {}{message} in File: {file}", if *line == 0 { String::new() } else { format!("line {line}: ") })]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{field} is not supported yet")]
    Unsupported { field: String },
    /// A path or file the build may not read (outside the jail or the
    /// load restriction, not a regular file).
    #[error("{0}")]
    Security(String),
    /// A bound of [`guard::Limits`] or the deadline was reached.
    #[error("{0}")]
    Limit(String),
}

impl Error {
    pub fn msg(s: impl Into<String>) -> Error {
        Error::Msg(s.into())
    }
    pub fn yaml(file: &str, e: yaml::YamlError) -> Error {
        Error::Yaml {
            file: file.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
    /// Prefixes the message with context, kustomize style (`ctx: err`).
    pub fn context(self, ctx: impl std::fmt::Display) -> Error {
        match self {
            Error::Msg(m) => Error::Msg(format!("{ctx}: {m}")),
            Error::Security(m) => Error::Security(format!("{ctx}: {m}")),
            Error::Limit(m) => Error::Limit(format!("{ctx}: {m}")),
            Error::Yaml { .. } | Error::Unsupported { .. } => Error::Msg(format!("{ctx}: {self}")),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Output ordering (`--reorder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reorder {
    /// Not given: the kustomization's `sortOptions` decide, else legacy.
    #[default]
    Unspecified,
    Legacy,
    None,
}

/// Build options.
#[derive(Clone, Default)]
pub struct Options {
    pub reorder: Reorder,
    /// `LoadRestrictionsNone` when false.
    pub load_restrict_root_only: bool,
    /// Fetches remote resources; without one they are refused.
    pub remote: Option<std::sync::Arc<dyn remote::RemoteLoader>>,
    /// Every local file and directory the build reads, symlinks resolved,
    /// must be inside this directory (a controller passes the source
    /// artifact's root: Flux loads anywhere inside it and nowhere else).
    /// `None`: no jail beyond the load restriction (the CLI).
    pub jail: Option<std::path::PathBuf>,
    /// What one build may read and hold.
    pub limits: guard::Limits,
    /// The build fails with [`Error::Limit`] once this instant passes;
    /// remote fetches get at most the time left.
    pub deadline: Option<std::time::Instant>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("reorder", &self.reorder)
            .field("load_restrict_root_only", &self.load_restrict_root_only)
            .field("remote", &self.remote.is_some())
            .field("jail", &self.jail)
            .field("limits", &self.limits)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Options {
    pub fn new() -> Options {
        Options {
            reorder: Reorder::Unspecified,
            load_restrict_root_only: true,
            remote: None,
            jail: None,
            limits: guard::Limits::default(),
            deadline: None,
        }
    }
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub resources: Vec<yaml::Value>,
    /// Deprecation notices kustomize prints on stderr (`# Warning: ...`).
    pub warnings: Vec<String>,
}

impl BuildOutput {
    /// The YAML stream `kustomize build` prints.
    pub fn to_yaml(&self) -> String {
        yaml::to_yaml_docs(self.resources.iter())
    }

    /// Writes what [`BuildOutput::to_yaml`] returns, one document at a time,
    /// freeing each resource once written (the whole stream is never held).
    pub fn write_yaml(self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        for (i, r) in self.resources.into_iter().enumerate() {
            if i > 0 {
                w.write_all(b"---\n")?;
            }
            w.write_all(yaml::to_yaml(&r).as_bytes())?;
        }
        w.flush()
    }
}

/// Builds the kustomization in `dir`.
pub fn build(dir: &Path, opts: &Options) -> Result<BuildOutput> {
    engine::Builder::new(opts.clone()).build(dir)
}

/// Reads `docs` as kustomize reads a stream of resources (`List`s unwrapped,
/// every object needs a kind and a name, ids unique) and sets `labels` at
/// `metadata/labels` and `annotations` at `metadata/annotations`, creating
/// the maps where missing: kustomize's label and annotation transformers
/// with only those field specs, as Flux's helm-controller runs them on a
/// release's manifests (its common metadata and origin labels). `file` names
/// the stream in errors.
pub fn set_metadata(
    docs: Vec<yaml::Value>,
    labels: &[(String, String)],
    annotations: &[(String, String)],
    file: &str,
) -> Result<Vec<yaml::Value>> {
    let mut rm = ResMap::new();
    for d in docs {
        let mut read = Vec::new();
        engine::push_resource_value(d, Vec::new(), file, &mut read)?;
        for r in read {
            rm.append(r).map_err(Error::msg)?;
        }
    }
    let spec = |path: &str| [fieldspec::FieldSpec::new("", "", "", path, true)];
    transformers::set_map_fields(&mut rm, labels, &spec("metadata/labels"))?;
    transformers::set_map_fields(&mut rm, annotations, &spec("metadata/annotations"))?;
    Ok(rm.list.into_iter().map(|r| r.obj).collect())
}
