//! The build: loading kustomizations, accumulating resources, and running
//! generators and transformers in kustomize's order.
//!
//! Follow a directory through it in this order: [`Builder::build`] (here:
//! the top-level build, its output order and final cleanup), `loader`
//! (the kustomization file and the files it names), `accumulate`
//! (resources, bases, components, remote targets), `plugins` (the builtin
//! generators and transformers a kustomization configures) and `origin`
//! (the `buildMetadata` annotations).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::fieldspec::{FieldSpec, TransformerConfig};
use crate::guard::Guard;
use crate::kustomization::{KUSTOMIZATION_FILE_NAMES, Kustomization};
use crate::resource::{Behavior, ResMap, Resource};
use crate::vars::Var;
use crate::yaml::{self, Map, Value};
use crate::{
    BuildOutput, Error, Options, Reorder, Result, generators, nameref, patch, replacements,
    transformers, vars,
};

mod accumulate;
mod loader;
mod origin;
mod plugins;

use loader::*;
use origin::*;
use plugins::*;

pub use accumulate::{Acc, absorb};
pub(crate) use loader::push_resource_value;
pub use loader::{Loader, resources_from_text};
pub use origin::{ORIGIN_ANNOTATION, TRANSFORMATIONS_ANNOTATION, relative_path, set_annotation};

pub struct Builder {
    pub opts: Options,
    stack: Vec<PathBuf>,
    /// Root directory of the top-level build (for origin annotations).
    pub build_root: PathBuf,
    pub build_metadata: Vec<String>,
    /// The first `openapi:` setting met (the top-level kustomization is
    /// loaded first, so an overlay's setting wins over its bases').
    openapi_set: bool,
    schema: Option<std::rc::Rc<crate::smp::CustomSchema>>,
    warnings: Vec<String>,
    remote_cache: std::collections::HashMap<(String, Option<String>), PathBuf>,
    /// The remote checkouts being built, innermost last.
    repos: Vec<RepoCtx>,
    guard: Rc<Guard>,
    /// Objects read or generated so far (a diamond of bases counts each
    /// time it is built): bounded by the guard.
    produced: usize,
}

/// A remote checkout being built: its root and where it came from.
#[derive(Clone, Debug)]
struct RepoCtx {
    root: PathBuf,
    url: String,
    git_ref: Option<String>,
}

impl Builder {
    pub fn new(opts: Options) -> Builder {
        let guard = Rc::new(Guard::unjailed(opts.limits.clone(), opts.deadline));
        Builder {
            opts,
            stack: Vec::new(),
            build_root: PathBuf::new(),
            build_metadata: Vec::new(),
            openapi_set: false,
            schema: None,
            warnings: Vec::new(),
            remote_cache: std::collections::HashMap::new(),
            repos: Vec::new(),
            guard,
            produced: 0,
        }
    }

    pub fn build(&mut self, dir: &Path) -> Result<BuildOutput> {
        if !dir.exists() {
            return Err(Error::msg(format!("'{}' doesn't exist", dir.display())));
        }
        let dir = std::fs::canonicalize(dir).map_err(|e| {
            Error::msg(format!(
                "must build at directory: not a valid directory: '{}': {e}",
                dir.display()
            ))
        })?;
        if !dir.is_dir() {
            return Err(Error::msg(format!(
                "must build at directory: '{}': file is not directory",
                dir.display()
            )));
        }
        self.guard = Rc::new(Guard::new(
            self.opts.jail.as_deref(),
            self.opts.limits.clone(),
            self.opts.deadline,
        )?);
        self.guard.contain(&dir, &dir.display().to_string())?;
        self.build_root = dir.clone();
        let (k, _) = self.load_kustomization(&dir)?;
        self.build_metadata = k.build_metadata.clone();
        let mut acc = Acc::default();
        self.accumulate_target(&dir, &k, &mut acc)?;

        // Final steps, done once at the top.
        generators::add_hashes(&mut acc.rm)?;
        nameref::fix_back_references(&mut acc.rm, &acc.tc)?;
        vars::resolve_vars(&mut acc.rm, &acc.vars, &acc.tc)?;
        acc.rm.list.retain(|r| {
            r.obj
                .get_path(&[
                    "metadata",
                    "annotations",
                    "config.kubernetes.io/local-config",
                ])
                .and_then(Value::as_str)
                != Some("true")
        });

        let mut list = acc.rm.list;
        // Sorting.
        let sort = self.sort_order(&k)?;
        if let Some(legacy) = sort {
            transformers::legacy_sort(&mut list, legacy.as_ref());
        }
        let keep_origin = self.build_metadata.iter().any(|s| s == "originAnnotations");
        let keep_transformations = self
            .build_metadata
            .iter()
            .any(|s| s == "transformerAnnotations");
        let managed_by = self.build_metadata.iter().any(|s| s == "managedByLabel");
        let mut resources = Vec::with_capacity(list.len());
        for mut r in list {
            if managed_by {
                let md = r.metadata_mut();
                let labels = md.entry_map("labels");
                if let Some(m) = labels.as_map_mut() {
                    m.insert(
                        "app.kubernetes.io/managed-by",
                        Value::str(format!("kustomize-{}", crate_version())),
                    );
                }
            }
            // kustomize drops an `annotations:` with no value, as it does
            // an empty one.
            if let Some(md) = r.obj.get_mut("metadata").and_then(Value::as_map_mut)
                && md.get("annotations").is_some_and(Value::is_null)
            {
                md.remove("annotations");
            }
            if let Some(Value::Map(ann)) = r
                .obj
                .get_mut("metadata")
                .and_then(|m| m.get_mut("annotations"))
            {
                // kustomize rewrites annotations as a string map.
                for (_, v) in ann.0.iter_mut() {
                    if !matches!(v, Value::Str(_)) {
                        *v = Value::str(v.scalar_string().unwrap_or_default());
                    }
                }
                if !keep_origin {
                    ann.remove(ORIGIN_ANNOTATION);
                }
                if !keep_transformations {
                    ann.remove(TRANSFORMATIONS_ANNOTATION);
                }
                ann.0.retain(|(k, _)| {
                    !(k.starts_with("internal.config.kubernetes.io/")
                        || k == "config.kubernetes.io/index"
                        || k == "kustomize.config.k8s.io/id"
                        || k == "kustomize.config.k8s.io/needs-hash"
                        || k == "kustomize.config.k8s.io/behavior")
                });
                if ann.is_empty()
                    && let Some(md) = r.obj.get_mut("metadata").and_then(Value::as_map_mut)
                {
                    md.remove("annotations");
                }
            }
            // kustomize prints each resource by way of JSON, which go-yaml
            // reads back; what it cannot read back fails the build there.
            if let Some(problem) = yaml::go_yaml_refusal(&r.obj) {
                return Err(Error::msg(format!(
                    "{}: {problem}: kustomize cannot print this resource as YAML \
                     (a string holds a character YAML does not allow, or a key is not one line)",
                    r.cur_id()
                )));
            }
            resources.push(r.obj);
        }
        Ok(BuildOutput {
            resources,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// Returns `None` for input order, `Some(None)` for the default legacy
    /// order, `Some(Some(cfg))` for legacy with custom kind lists.
    fn sort_order(&self, k: &Kustomization) -> Result<Option<Option<transformers::LegacySort>>> {
        let so = k.sort_options.as_ref();
        if let Some(so) = so {
            let order = so.get_str("order").unwrap_or("");
            let legacy_opts = so.get("legacySortOptions");
            match order {
                "legacy" => {
                    let cfg = legacy_opts.map(|l| transformers::LegacySort {
                        first: l
                            .get("orderFirst")
                            .and_then(Value::as_seq)
                            .map(|s| s.iter().filter_map(Value::scalar_string).collect())
                            .unwrap_or_default(),
                        last: l
                            .get("orderLast")
                            .and_then(Value::as_seq)
                            .map(|s| s.iter().filter_map(Value::scalar_string).collect())
                            .unwrap_or_default(),
                    });
                    // The kustomization's sortOptions win over the flag.
                    return Ok(Some(cfg));
                }
                "fifo" => {
                    if legacy_opts.is_some() {
                        return Err(Error::msg(
                            "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'",
                        ));
                    }
                    return Ok(None);
                }
                _ => {
                    return Err(Error::msg(
                        "the field 'sortOptions.order' must be one of [fifo, legacy]",
                    ));
                }
            }
        }
        Ok(match self.opts.reorder {
            Reorder::None => None,
            Reorder::Legacy => Some(None),
            Reorder::Unspecified => Some(None),
        })
    }

    /// A directory about to be built (`canon`, symlinks resolved) must stay
    /// in the remote checkout it belongs to, or else in the jail.
    fn check_dir(&self, canon: &Path, shown: &str) -> Result<()> {
        if self.repos.is_empty() {
            self.guard.contain(canon, shown)
        } else {
            self.check_in_repo(canon)
        }
    }

    /// Counts `n` objects read or generated against the build's limit.
    fn note_produced(&mut self, n: usize) -> Result<()> {
        self.produced += n;
        self.guard.check_resources(self.produced)
    }

    /// Inside a remote checkout, a base (or component, or plugin
    /// directory) must stay within the repository, as kustomize's
    /// `errIfGitContainmentViolation`.
    fn check_in_repo(&self, dir: &Path) -> Result<()> {
        if let Some(repo) = self.repos.last()
            && !dir.starts_with(&repo.root)
        {
            return Err(Error::msg(format!(
                "security; bases in kustomizations found in cloned git repos must be within the repo, but base '{}' is outside '{}'",
                dir.display(),
                repo.root.display()
            )));
        }
        Ok(())
    }

    /// Path of `p` relative to the build root, for origin annotations.
    pub fn rel_to_root(&self, p: &Path) -> String {
        relative_path(&self.build_root, p)
    }
}

fn crate_version() -> &'static str {
    "v5.8.1"
}
