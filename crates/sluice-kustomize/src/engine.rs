//! The build: loading kustomizations, accumulating resources, and running
//! generators and transformers in kustomize's order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::fieldspec::{FieldSpec, TransformerConfig};
use crate::guard::Guard;
use crate::kustomization::{KUSTOMIZATION_FILE_NAMES, Kustomization};
use crate::resource::{Behavior, ResMap, Resource};
use crate::vars::Var;
use crate::yaml::{Map, Value};
use crate::{
    BuildOutput, Error, Options, Reorder, Result, generators, nameref, patch, replacements,
    transformers, vars,
};

pub const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
pub const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";

/// What a kustomization directory contributes: resources, merged transformer
/// configuration, and vars.
#[derive(Debug, Default)]
pub struct Acc {
    pub rm: ResMap,
    pub tc: TransformerConfig,
    pub vars: Vec<Var>,
}

impl Acc {
    fn merge_config(&mut self, tc: &TransformerConfig) {
        self.tc.merge(tc);
    }
}

/// File access relative to one kustomization root, with kustomize's load
/// restriction and the build's [`Guard`] (jail, byte limits, deadline).
#[derive(Clone, Debug)]
pub struct Loader {
    pub root: PathBuf,
    pub restrict: bool,
    guard: Rc<Guard>,
    /// Whether the guard's jail applies (not inside a remote checkout,
    /// which `restrict` confines to itself).
    jailed: bool,
}

impl Loader {
    pub fn resolve(&self, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// Canonical path of a file that may be read under the restriction.
    pub fn check_file(&self, rel: &str) -> Result<PathBuf> {
        let p = self.resolve(rel);
        let canon = std::fs::canonicalize(&p)
            .map_err(|e| Error::msg(format!("evalsymlink failure on '{}' : {e}", p.display())))?;
        if self.jailed {
            self.guard.contain(&canon, rel)?;
        }
        if self.restrict && !canon.starts_with(&self.root) {
            return Err(Error::msg(format!(
                "security; file '{}' is not in or below '{}'",
                canon.display(),
                self.root.display()
            )));
        }
        Ok(canon)
    }

    pub fn read_bytes(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.resolve(rel);
        if !p.exists() {
            return Err(Error::msg(format!("'{}' doesn't exist", p.display())));
        }
        let canon = self.check_file(rel)?;
        if canon.is_dir() {
            return Err(Error::msg(format!(
                "'{}' is a directory, not a file",
                p.display()
            )));
        }
        self.guard.read(&canon, rel)
    }

    /// Counts bytes a patch copies into objects against the build's limit.
    pub(crate) fn charge_patch(&self, bytes: usize, what: &str) -> Result<()> {
        self.guard.charge_patch(bytes as u64, what)
    }

    pub fn read_string(&self, rel: &str) -> Result<String> {
        let b = self.read_bytes(rel)?;
        String::from_utf8(b).map_err(|_| Error::msg(format!("'{rel}' is not valid UTF-8")))
    }
}

/// Finds and parses the kustomization file in `dir`, reading it through
/// `guard` (jailed unless `dir` is inside a remote checkout).
fn load_kustomization(dir: &Path, guard: &Guard, jailed: bool) -> Result<(Kustomization, String)> {
    let mut found = Vec::new();
    for n in KUSTOMIZATION_FILE_NAMES {
        let p = dir.join(n);
        if p.is_file() {
            found.push(p);
        }
    }
    if found.len() > 1 {
        return Err(Error::msg(format!(
            "Found multiple kustomization files under: {}",
            dir.display()
        )));
    }
    let Some(p) = found.pop() else {
        return Err(Error::msg(format!(
            "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
            dir.display()
        )));
    };
    let shown = p.display().to_string();
    let canon = std::fs::canonicalize(&p)
        .map_err(|e| Error::msg(format!("evalsymlink failure on '{shown}' : {e}")))?;
    if jailed {
        guard.contain(&canon, &shown)?;
    } else if !canon.starts_with(dir) {
        return Err(Error::Security(format!(
            "security; file '{}' is not in or below '{}'",
            canon.display(),
            dir.display()
        )));
    }
    let text = String::from_utf8(guard.read(&canon, &shown)?)
        .map_err(|_| Error::msg(format!("'{shown}' is not valid UTF-8")))?;
    let file_name = p
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok((
        Kustomization::parse(&text, &p.display().to_string())?,
        file_name,
    ))
}

/// Parses a YAML stream of resources, flattening `List` kinds.
pub fn resources_from_text(text: &str, file: &str) -> Result<Vec<Resource>> {
    let docs = crate::yaml::parse_resources_noting_empty(text).map_err(|e| Error::yaml(file, e))?;
    let mut out = Vec::new();
    for (d, empty) in docs {
        push_resource_value(d, empty, file, &mut out)?;
    }
    Ok(out)
}

fn push_resource_value(
    d: Value,
    empty: crate::yaml::EmptyNulls,
    file: &str,
    out: &mut Vec<Resource>,
) -> Result<()> {
    match d {
        Value::Null => Ok(()),
        Value::Map(m) if m.is_empty() => Ok(()),
        Value::Map(m) => {
            let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with("List")
                && matches!(m.get("items"), Some(Value::Seq(_)) | Some(Value::Null))
            {
                if let Some(Value::Seq(items)) = m.get("items") {
                    // kustomize reads a List's items through JSON: a field
                    // with no value is an explicit null there.
                    for it in items.clone() {
                        push_resource_value(it, Vec::new(), file, out)?;
                    }
                }
                return Ok(());
            }
            if !m.contains("kind") || kind.is_empty() {
                return Err(Error::msg(format!(
                    "missing Resource metadata: 'kind' is required in {file}"
                )));
            }
            let md = m.get("metadata");
            let name = md
                .and_then(|md| md.get("name"))
                .and_then(Value::scalar_string);
            if name.as_deref().unwrap_or("").is_empty() {
                return Err(Error::msg(format!(
                    "missing metadata.name in object {}",
                    go_object_dump(&m)
                )));
            }
            let mut r = Resource::new(Value::Map(m));
            r.empty_nulls = empty;
            out.push(r);
            Ok(())
        }
        other => Err(Error::msg(format!(
            "expected a mapping (a Kubernetes object) in {file}, got a {}",
            other.kind_name()
        ))),
    }
}

/// How kustomize prints an object it cannot name: Go's `%v` of its type
/// and metadata, `{{apiVersion kind} {{name namespace} labels annotations}}`.
fn go_object_dump(m: &Map) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::scalar_string).unwrap_or_default();
    let md = m.get("metadata");
    let go_map = |key: &str| {
        let mut pairs: Vec<String> = match md.and_then(|md| md.get(key)) {
            Some(Value::Map(kv)) => kv
                .iter()
                .map(|(k, v)| format!("{k}:{}", v.scalar_string().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        };
        pairs.sort();
        format!("map[{}]", pairs.join(" "))
    };
    format!(
        "{{{{{} {}}} {{{{{} {}}} {} {}}}}}",
        text(m.get("apiVersion")),
        text(m.get("kind")),
        text(md.and_then(|md| md.get("name"))),
        text(md.and_then(|md| md.get("namespace"))),
        go_map("labels"),
        go_map("annotations"),
    )
}

fn looks_remote(s: &str) -> bool {
    s.contains("://")
        || s.starts_with("github.com/")
        || s.starts_with("git@")
        || s.starts_with("gitlab.com/")
        || s.starts_with("bitbucket.org/")
}

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
        self.build_metadata = k.build_metadata();
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
        let so = k.get("sortOptions");
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

    fn loader(&self, dir: &Path) -> Loader {
        Loader {
            root: dir.to_path_buf(),
            // As kustomize: a loader inside a remote checkout is always
            // LoadRestrictionsRootOnly, whatever the caller chose.
            restrict: self.opts.load_restrict_root_only || !self.repos.is_empty(),
            guard: self.guard.clone(),
            jailed: self.repos.is_empty(),
        }
    }

    fn load_kustomization(&mut self, dir: &Path) -> Result<(Kustomization, String)> {
        let loaded = load_kustomization(dir, &self.guard, self.repos.is_empty())?;
        if let Some(w) = &loaded.0.repeated_key
            && !self.warnings.contains(w)
        {
            self.warnings.push(w.clone());
        }
        Ok(loaded)
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

    pub fn accumulate_target(
        &mut self,
        dir: &Path,
        k: &Kustomization,
        acc: &mut Acc,
    ) -> Result<()> {
        if let Some(start) = self.stack.iter().position(|d| d == dir) {
            let chain: Vec<String> = self.stack[start..]
                .iter()
                .chain(std::iter::once(&dir.to_path_buf()))
                .map(|d| d.display().to_string())
                .collect();
            return Err(Error::msg(format!(
                "cycle detected: candidate root '{}' contains visited root '{}' ({})",
                dir.display(),
                dir.display(),
                chain.join(" -> ")
            )));
        }
        self.guard.tick()?;
        self.guard.check_depth(self.stack.len() + 1, dir)?;
        self.stack.push(dir.to_path_buf());
        let r = self.accumulate_target_inner(dir, k, acc);
        self.stack.pop();
        r
    }

    fn accumulate_target_inner(
        &mut self,
        dir: &Path,
        k: &Kustomization,
        acc: &mut Acc,
    ) -> Result<()> {
        for (field, instead) in [
            ("commonLabels", "labels"),
            ("patchesStrategicMerge", "patches"),
            ("patchesJson6902", "patches"),
            ("imageTags", "images"),
            ("bases", "resources"),
            ("vars", "replacements"),
        ] {
            if k.get(field).is_some() {
                let w = format!(
                    "'{field}' is deprecated. Please use '{instead}' instead. Run 'kustomize edit fix' to update your Kustomization automatically."
                );
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
            }
        }
        let ldr = self.loader(dir);
        check_openapi(&ldr, k)?;
        if !self.openapi_set
            && let Some(o) = k.get("openapi")
        {
            self.openapi_set = true;
            if let Some(path) = o.get_str("path") {
                let text = ldr.read_string(path)?;
                let schema = crate::smp::CustomSchema::parse(&text)
                    .map_err(|e| Error::msg(format!("openapi schema {path}: {e}")))?;
                self.schema = Some(std::rc::Rc::new(schema));
            }
        }
        let mut res = k.strings("resources")?;
        res.extend(k.strings("bases")?);
        self.accumulate_resources(&ldr, &res, acc)
            .map_err(|e| e.context("accumulating resources"))?;

        // Transformer configuration: defaults plus `configurations:` files.
        let mut tc = TransformerConfig::defaults();
        for c in k.strings("configurations")? {
            let text = ldr.read_string(&c)?;
            let v = crate::yaml::parse_one(&text).map_err(|e| Error::yaml(&c, e))?;
            let ctc = TransformerConfig::from_value(&v).map_err(Error::msg)?;
            tc.merge(&ctc);
        }
        acc.merge_config(&tc);
        for c in k.strings("crds")? {
            let text = ldr.read_string(&c)?;
            let ctc = crate::transformers::config_from_crds(&text, &c)?;
            acc.merge_config(&ctc);
        }

        self.run_generators(&ldr, k, acc)?;

        // Components apply on top of what was accumulated and generated so
        // far, before this kustomization's transformers.
        for c in k.strings("components")? {
            let p = ldr.resolve(&c);
            if !p.is_dir() {
                return Err(
                    Error::msg(format!("must build at directory: '{}'", p.display()))
                        .context("accumulating components"),
                );
            }
            let p = std::fs::canonicalize(&p).map_err(|e| Error::msg(e.to_string()))?;
            self.check_dir(&p, &c)?;
            let (ck, _) = self.load_kustomization(&p)?;
            if !ck.is_component() {
                return Err(Error::msg(format!(
                    "accumulateDirectory: \"expected kind 'Component' for path '{}' but got '{}'",
                    p.display(),
                    ck.kind
                ))
                .context("accumulating components"));
            }
            self.accumulate_target(&p, &ck, acc)?;
        }

        self.run_transformers(&ldr, k, acc)?;

        let new_vars = vars::parse_vars(&k.list("vars"))?;
        vars::merge_vars(acc, new_vars)?;
        Ok(())
    }

    /// Accumulates `paths`, then refuses duplicate ids in one linear pass.
    fn accumulate_resources(
        &mut self,
        ldr: &Loader,
        paths: &[String],
        acc: &mut Acc,
    ) -> Result<()> {
        // Where each entry's resources start, to name the entry that
        // repeats an id as kustomize does ("merging resources from 'b.yaml'").
        let mut starts = Vec::with_capacity(paths.len());
        for p in paths {
            starts.push(acc.rm.list.len());
            self.accumulate_resource_paths(ldr, std::slice::from_ref(p), acc)?;
        }
        match acc.rm.first_duplicate() {
            None => Ok(()),
            Some(i) => {
                let entry = starts
                    .iter()
                    .rposition(|&s| s <= i)
                    .and_then(|k| paths.get(k))
                    .map_or_else(String::new, |p| {
                        format!("accumulation err='merging resources from '{p}': ")
                    });
                Err(Error::msg(format!(
                    "{entry}may not add resource with an already registered id: {}",
                    acc.rm.list[i].cur_id()
                )))
            }
        }
    }

    fn accumulate_resource_paths(
        &mut self,
        ldr: &Loader,
        paths: &[String],
        acc: &mut Acc,
    ) -> Result<()> {
        for p in paths {
            if p.is_empty() {
                // An empty or null entry (`- ` alone on a line).
                return Err(Error::msg(format!(
                    "accumulation err='accumulating resources from '': '{}' must resolve to a file': new root cannot be empty",
                    ldr.root.display()
                )));
            }
            if crate::remote::is_http_url(p) && !crate::remote::is_unmistakably_git(p) {
                self.accumulate_http(p, acc)?;
                continue;
            }
            if let Some(spec) = crate::remote::parse(p) {
                self.accumulate_remote(p, &spec, acc)?;
                continue;
            }
            let full = ldr.resolve(p);
            if full.is_dir() && Path::new(p).is_absolute() {
                // kustomize never opens an absolute directory as a base.
                let file_err = if ldr.restrict {
                    format!(
                        "security; file '{p}' is not in or below '{}'",
                        ldr.root.display()
                    )
                } else {
                    format!("read {p}: is a directory")
                };
                return Err(Error::Security(format!(
                    "accumulation err='accumulating resources from '{p}': {file_err}': new root '{p}' cannot be absolute"
                )));
            }
            if full.is_dir() {
                let canon = std::fs::canonicalize(&full).map_err(|e| Error::msg(e.to_string()))?;
                self.check_dir(&canon, p)?;
                let (sk, _) = self.load_kustomization(&canon).map_err(|e| {
                    e.context(format!(
                        "accumulation err='accumulating resources from '{p}'"
                    ))
                })?;
                if sk.is_component() {
                    return Err(Error::msg(format!(
                        "expected kind != 'Component' for path '{}'",
                        canon.display()
                    )));
                }
                let mut sub = Acc::default();
                self.accumulate_target(&canon, &sk, &mut sub)?;
                acc.rm.list.extend(sub.rm.list);
                acc.tc.merge(&sub.tc);
                vars::merge_vars_only(acc, sub.vars)?;
            } else if full.exists() {
                let text = ldr.read_string(p).map_err(|e| match e {
                    // Refusals are not "maybe a directory": say only why.
                    Error::Security(_) | Error::Limit(_) => {
                        e.context(format!("accumulating resources from '{p}'"))
                    }
                    e => Error::msg(format!(
                        "accumulation err='accumulating resources from '{p}': {e}': must build at directory: '{}': file is not directory (in {})",
                        std::fs::canonicalize(&full).unwrap_or_else(|_| full.clone()).display(),
                        self.kustomization_path(ldr)
                    ))
                })?;
                let rs = resources_from_text(&text, p).map_err(|e| match e {
                    // kustomize reports malformed YAML alone; any other
                    // failure also says the entry is no directory either.
                    Error::Msg(m) => Error::msg(format!(
                        "accumulation err='accumulating resources from '{p}': {m}': must build at directory: '{}': file is not directory (in {})",
                        std::fs::canonicalize(&full).unwrap_or_else(|_| full.clone()).display(),
                        self.kustomization_path(ldr)
                    )),
                    e => e.context(format!("accumulating resources from '{p}'")),
                })?;
                self.note_produced(rs.len())?;
                let origin = self.origin_for_file(&full);
                for mut r in rs {
                    if let Some(o) = &origin {
                        set_annotation(&mut r, ORIGIN_ANNOTATION, o);
                    }
                    acc.rm.list.push(r);
                }
            } else {
                let tail = if Path::new(p).is_absolute() {
                    format!("new root '{p}' cannot be absolute")
                } else {
                    format!(
                        "must build at directory: not a valid directory: evalsymlink failure on '{}' : lstat {}: no such file or directory",
                        full.display(),
                        full.display()
                    )
                };
                return Err(Error::msg(format!(
                    "accumulation err='accumulating resources from '{p}': evalsymlink failure on '{}' : lstat {}: no such file or directory': {tail} (in {})",
                    full.display(),
                    full.display(),
                    self.kustomization_path(ldr)
                )));
            }
        }
        Ok(())
    }

    /// The kustomization file of `ldr`'s root, for error messages.
    fn kustomization_path(&self, ldr: &Loader) -> String {
        ldr.root
            .join(kustomization_file_name(&ldr.root))
            .display()
            .to_string()
    }

    /// An `http(s)://` entry without Git markers: read as a file, as
    /// kustomize does first; if that fails and the URL also parses as a
    /// repository, built as a remote target instead.
    fn accumulate_http(&mut self, entry: &str, acc: &mut Acc) -> Result<()> {
        // Messages never carry the URL's credentials.
        let shown = crate::remote::redact_url(entry);
        let Some(loader) = self.opts.remote.clone() else {
            return Err(Error::msg(format!(
                "remote resource '{shown}': remote resources are not supported here (no fetcher configured)"
            )));
        };
        self.guard.tick()?;
        // A file gets kustomize's default remote timeout, and never more
        // than the build has left.
        let mut within = crate::remote::DEFAULT_TIMEOUT;
        if let Some(left) = self.guard.time_left() {
            within = within.min(left);
        }
        let file = loader
            .fetch_file_within(entry, within)
            .map_err(Error::msg)
            .and_then(|body| {
                let text = String::from_utf8(body)
                    .map_err(|_| Error::msg(format!("'{shown}' is not valid UTF-8")))?;
                resources_from_text(&text, entry)
            });
        let file_err = match file {
            Ok(rs) => {
                self.note_produced(rs.len())?;
                acc.rm.list.extend(rs);
                return Ok(());
            }
            Err(e) => e,
        };
        // kustomize would now try the URL as a Git repository; when the
        // server did not even answer in time, that only doubles the wait.
        if file_err.to_string().contains("timed out") {
            return Err(Error::msg(format!(
                "accumulating resources from '{shown}': {file_err}"
            )));
        }
        match crate::remote::parse(entry) {
            Some(spec) => self
                .accumulate_remote(entry, &spec, acc)
                .map_err(|e| Error::msg(format!("accumulation err='{file_err}': {e}"))),
            None => Err(Error::msg(format!(
                "accumulating resources from '{shown}': {file_err}"
            ))),
        }
    }

    /// Builds a remote target as a sub-kustomization of its checkout.
    fn accumulate_remote(
        &mut self,
        entry: &str,
        spec: &crate::remote::RepoSpec,
        acc: &mut Acc,
    ) -> Result<()> {
        let shown = crate::remote::redact_url(entry);
        let Some(loader) = self.opts.remote.clone() else {
            return Err(Error::msg(format!(
                "remote resource '{shown}': remote resources are not supported here (no Git fetcher configured)"
            )));
        };
        if spec.path_exits_repo() {
            return Err(Error::msg(format!(
                "accumulating resources from '{shown}': url path exits repo: {}",
                spec.path
            )));
        }
        let key = (spec.clone_url.clone(), spec.git_ref.clone());
        let root = match self.remote_cache.get(&key) {
            Some(r) => r.clone(),
            None => {
                self.guard.tick()?;
                // A fetch gets at most the time the build has left.
                let mut spec = spec.clone();
                if let Some(left) = self.guard.time_left() {
                    spec.timeout = spec.timeout.min(left);
                }
                let r = loader.fetch(&spec).map_err(|e| {
                    Error::msg(format!("accumulating resources from '{shown}': {e}"))
                })?;
                let r = std::fs::canonicalize(&r).map_err(|e| {
                    Error::msg(format!(
                        "accumulating resources from '{shown}': checkout '{}': {e}",
                        r.display()
                    ))
                })?;
                self.remote_cache.insert(key, r.clone());
                r
            }
        };
        let dir = std::fs::canonicalize(root.join(&spec.path)).map_err(|e| {
            Error::msg(format!(
                "accumulating resources from '{shown}': {}: {e}",
                spec.path
            ))
        })?;
        // The path may hold symlinks that leave the checkout.
        if !dir.starts_with(&root) {
            return Err(Error::msg(format!(
                "accumulating resources from '{shown}': \"{}\" refers to directory outside of repo \"{}\"",
                dir.display(),
                root.display()
            )));
        }
        if !dir.is_dir() {
            return Err(Error::msg(format!(
                "accumulating resources from '{shown}': '{}' refers to a file; expecting directory",
                spec.path
            )));
        }
        // The checkout is outside the jail: from here on it confines itself.
        self.repos.push(RepoCtx {
            root: root.clone(),
            url: spec.clone_url.clone(),
            git_ref: spec.git_ref.clone(),
        });
        let loaded = self.load_kustomization(&dir);
        self.repos.pop();
        let (sk, _) = loaded?;
        if sk.is_component() {
            return Err(Error::msg(format!(
                "accumulating resources from '{shown}': expected kind != 'Component' for path '{}'",
                dir.display()
            )));
        }
        let mut sub = Acc::default();
        self.repos.push(RepoCtx {
            root,
            url: spec.clone_url.clone(),
            git_ref: spec.git_ref.clone(),
        });
        let r = self.accumulate_target(&dir, &sk, &mut sub);
        self.repos.pop();
        r.map_err(|e| e.context(format!("accumulating resources from '{shown}'")))?;
        acc.rm.list.extend(sub.rm.list);
        acc.tc.merge(&sub.tc);
        vars::merge_vars_only(acc, sub.vars)
    }

    fn origin_for_file(&self, full: &Path) -> Option<String> {
        if !self.build_metadata.iter().any(|s| s == "originAnnotations") {
            return None;
        }
        if let Some((repo, rel)) = self.remote_origin(full, "") {
            return Some(format!("path: {rel}\n{repo}"));
        }
        Some(format!("path: {}\n", self.rel_to_root(full)))
    }

    /// For a path inside the remote checkout being built, kustomize's
    /// `repo:` and `ref:` lines (each followed by `indent`) and the path
    /// relative to the repository root.
    fn remote_origin(&self, p: &Path, indent: &str) -> Option<(String, String)> {
        let repo = self.repos.last()?;
        let rel = p.strip_prefix(&repo.root).ok()?;
        let mut lines = format!("repo: {}\n{indent}", repo.url);
        if let Some(r) = &repo.git_ref {
            lines.push_str(&format!("ref: {r}\n{indent}"));
        }
        Some((lines, rel.display().to_string()))
    }

    pub fn origin_for_generator(&self, dir: &Path, kust_file: &str, kind: &str) -> Option<String> {
        if !self.build_metadata.iter().any(|s| s == "originAnnotations") {
            return None;
        }
        let file = dir.join(kust_file);
        let (repo, p) = self
            .remote_origin(&file, "")
            .unwrap_or_else(|| (String::new(), relative_path(&self.build_root, &file)));
        Some(format!(
            "{repo}configuredIn: {p}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n"
        ))
    }

    fn run_generators(&mut self, ldr: &Loader, k: &Kustomization, acc: &mut Acc) -> Result<()> {
        let global = k.get("generatorOptions").cloned();
        let kust_file = kustomization_file_name(&ldr.root);
        for g in k.list("configMapGenerator") {
            let r = generators::generate(ldr, &g, global.as_ref(), "ConfigMap").map_err(|e| {
                e.context(format!(
                    "configMapGenerator '{}' in {}",
                    g.get_str("name").unwrap_or(""),
                    self.kustomization_path(ldr)
                ))
            })?;
            let origin = self.origin_for_generator(&ldr.root, &kust_file, "ConfigMapGenerator");
            self.note_produced(1)?;
            absorb(acc, r, origin)?;
        }
        for g in k.list("secretGenerator") {
            let r = generators::generate(ldr, &g, global.as_ref(), "Secret").map_err(|e| {
                e.context(format!(
                    "secretGenerator '{}' in {}",
                    g.get_str("name").unwrap_or(""),
                    self.kustomization_path(ldr)
                ))
            })?;
            let origin = self.origin_for_generator(&ldr.root, &kust_file, "SecretGenerator");
            self.note_produced(1)?;
            absorb(acc, r, origin)?;
        }
        for entry in k.strings("generators")? {
            let configured_in = self.configured_in(ldr, &entry, &kust_file);
            for cfg in self.load_plugin_configs(ldr, &entry)? {
                let produced = self.run_generator_config(ldr, &cfg, global.as_ref())?;
                self.note_produced(produced.len())?;
                let origin = self
                    .origin_annotations()
                    .then(|| plugin_origin(&configured_in, &cfg, ""));
                for r in produced {
                    absorb(acc, r, origin.clone())?;
                }
            }
        }
        Ok(())
    }

    /// Loads plugin configurations named in `generators:`/`transformers:`:
    /// a file, a kustomization directory (built), or inline YAML.
    fn origin_annotations(&self) -> bool {
        self.build_metadata.iter().any(|s| s == "originAnnotations")
    }

    fn transformer_annotations(&self) -> bool {
        self.build_metadata
            .iter()
            .any(|s| s == "transformerAnnotations")
    }

    /// Where a plugin configuration entry lives, relative to the build root.
    fn configured_in(&self, ldr: &Loader, entry: &str, kust_file: &str) -> String {
        if is_inline_config(entry) || ldr.resolve(entry).is_dir() {
            self.rel_to_root(&ldr.root.join(kust_file))
        } else {
            self.rel_to_root(&ldr.resolve(entry))
        }
    }

    /// Records a builtin transformer configured by a kustomization field.
    fn note_builtin(&self, acc: &mut Acc, ldr: &Loader, kind: &str) {
        if !self.transformer_annotations() {
            return;
        }
        let file = ldr.root.join(kustomization_file_name(&ldr.root));
        let (repo, configured_in) = self
            .remote_origin(&file, "  ")
            .unwrap_or_else(|| (String::new(), self.rel_to_root(&file)));
        let entry = format!(
            "- {repo}configuredIn: {configured_in}\n  configuredBy:\n    apiVersion: builtin\n    kind: {kind}\n"
        );
        annotate_transformation(acc, &entry);
    }

    fn load_plugin_configs(&mut self, ldr: &Loader, entry: &str) -> Result<Vec<Resource>> {
        if is_inline_config(entry) {
            return resources_from_text(entry, "inline plugin config");
        }
        let full = ldr.resolve(entry);
        if full.is_dir() {
            let canon = std::fs::canonicalize(&full).map_err(|e| Error::msg(e.to_string()))?;
            self.check_dir(&canon, entry)?;
            let (sk, _) = self.load_kustomization(&canon)?;
            let mut sub = Acc::default();
            self.accumulate_target(&canon, &sk, &mut sub)?;
            return Ok(sub.rm.list);
        }
        let text = ldr.read_string(entry)?;
        resources_from_text(&text, entry)
    }

    fn run_generator_config(
        &mut self,
        ldr: &Loader,
        cfg: &Resource,
        global: Option<&Value>,
    ) -> Result<Vec<Resource>> {
        let kind = cfg.kind().to_string();
        let v = &cfg.obj;
        match kind.as_str() {
            "ConfigMapGenerator" | "SecretGenerator" => {
                let mut g = v.clone();
                if let Some(m) = g.as_map_mut() {
                    let md = m.get("metadata").cloned().unwrap_or(Value::Null);
                    if !m.contains("name") {
                        m.insert("name", md.get("name").cloned().unwrap_or(Value::Null));
                    }
                    if !m.contains("namespace")
                        && let Some(ns) = md.get("namespace")
                    {
                        m.insert("namespace", ns.clone());
                    }
                }
                let k = if kind == "ConfigMapGenerator" {
                    "ConfigMap"
                } else {
                    "Secret"
                };
                Ok(vec![generators::generate(ldr, &g, global, k)?])
            }
            "IAMPolicyGenerator" => Ok(vec![generators::iam_policy(v)?]),
            _ => Err(plugin_error(cfg)),
        }
    }

    fn run_transformers(&mut self, ldr: &Loader, k: &Kustomization, acc: &mut Acc) -> Result<()> {
        let tc = acc.tc.clone();
        // 1. patchesStrategicMerge
        let psm = k.list("patchesStrategicMerge");
        if !psm.is_empty() {
            let patches = patch::load_smp_patches(ldr, &psm)?;
            patch::apply_smp_patches(&mut acc.rm, &patches, self.schema.as_deref())?;
            self.note_builtin(acc, ldr, "PatchStrategicMergeTransformer");
        }
        // 2. patches
        for p in k.list("patches") {
            patch::apply_patch_entry(ldr, &mut acc.rm, &p, self.schema.as_deref())?;
            self.note_builtin(acc, ldr, "PatchTransformer");
        }
        // 3. namespace
        let ns = k.string("namespace");
        if !ns.is_empty() {
            transformers::namespace(
                &mut acc.rm,
                &ns,
                &tc.namespace,
                false,
                transformers::RoleBindingSubjects::DefaultOnly,
            )?;
            self.note_builtin(acc, ldr, "NamespaceTransformer");
        }
        // 4/5. prefix, suffix
        let prefix = k.string("namePrefix");
        transformers::prefix_suffix(&mut acc.rm, Some(&prefix), None, &tc.name_prefix)?;
        if !prefix.is_empty() {
            self.note_builtin(acc, ldr, "PrefixTransformer");
        }
        let suffix = k.string("nameSuffix");
        transformers::prefix_suffix(&mut acc.rm, None, Some(&suffix), &tc.name_suffix)?;
        if !suffix.is_empty() {
            self.note_builtin(acc, ldr, "SuffixTransformer");
        }
        // 6. labels
        for l in k.list("labels") {
            let pairs = crate::resource::string_map(l.get("pairs"));
            let include_selectors = matches!(l.get("includeSelectors"), Some(Value::Bool(true)));
            let include_templates = matches!(l.get("includeTemplates"), Some(Value::Bool(true)));
            let mut fss: Vec<FieldSpec> = match l.get("fields") {
                Some(Value::Seq(items)) => items
                    .iter()
                    .map(FieldSpec::from_value)
                    .collect::<Result<_, _>>()
                    .map_err(Error::msg)?,
                _ => Vec::new(),
            };
            let include_vct = matches!(
                l.get("includeVolumeClaimTemplates"),
                Some(Value::Bool(true))
            );
            let is_vct = |f: &FieldSpec| f.path.starts_with("spec/volumeClaimTemplates");
            if include_selectors {
                fss.extend(tc.common_labels.iter().cloned());
            } else {
                fss.push(FieldSpec::any("metadata/labels", true));
                if include_templates {
                    fss.extend(tc.template_labels.iter().filter(|f| !is_vct(f)).cloned());
                }
                if include_vct {
                    fss.extend(tc.template_labels.iter().filter(|f| is_vct(f)).cloned());
                }
            }
            fss.extend(tc.labels.iter().cloned());
            transformers::set_map_fields(&mut acc.rm, &pairs, &fss)?;
            self.note_builtin(acc, ldr, "LabelTransformer");
        }
        let cl = k.string_map("commonLabels");
        if !cl.is_empty() {
            transformers::set_map_fields(&mut acc.rm, &cl, &tc.common_labels)?;
            self.note_builtin(acc, ldr, "LabelTransformer");
        }
        // 7. annotations
        let ca = k.string_map("commonAnnotations");
        if !ca.is_empty() {
            transformers::set_map_fields(&mut acc.rm, &ca, &tc.common_annotations)?;
            self.note_builtin(acc, ldr, "AnnotationsTransformer");
        }
        // 8. patchesJson6902
        for p in k.list("patchesJson6902") {
            patch::apply_json6902_entry(ldr, &mut acc.rm, &p)?;
            self.note_builtin(acc, ldr, "PatchJson6902Transformer");
        }
        // 9. replicas
        let reps = k.list("replicas");
        if !reps.is_empty() {
            transformers::replicas(&mut acc.rm, &reps, &tc.replicas)?;
            self.note_builtin(acc, ldr, "ReplicaCountTransformer");
        }
        // 10. images
        let mut images = k.list("images");
        images.extend(k.list("imageTags"));
        if !images.is_empty() {
            transformers::images(&mut acc.rm, &images, &tc.images)?;
            self.note_builtin(acc, ldr, "ImageTagTransformer");
        }
        // 11. replacements
        let reps = k.list("replacements");
        if !reps.is_empty() {
            let list = replacements::load(ldr, &reps)?;
            replacements::apply(&mut acc.rm, &list)?;
            self.note_builtin(acc, ldr, "ReplacementTransformer");
        }
        // `transformers:` field.
        let kust_file = kustomization_file_name(&ldr.root);
        for entry in k.strings("transformers")? {
            let configured_in = self.configured_in(ldr, &entry, &kust_file);
            for cfg in self.load_plugin_configs(ldr, &entry)? {
                self.run_transformer_config(ldr, &cfg, acc)?;
                if self.transformer_annotations() {
                    annotate_transformation(acc, &plugin_origin(&configured_in, &cfg, "  "));
                }
            }
        }
        Ok(())
    }

    fn run_transformer_config(
        &mut self,
        ldr: &Loader,
        cfg: &Resource,
        acc: &mut Acc,
    ) -> Result<()> {
        let v = &cfg.obj;
        let tc = acc.tc.clone();
        let fieldspecs = |default: &[FieldSpec]| -> Result<Vec<FieldSpec>> {
            match v.get("fieldSpecs") {
                Some(Value::Seq(items)) => items
                    .iter()
                    .map(FieldSpec::from_value)
                    .collect::<Result<_, _>>()
                    .map_err(Error::msg),
                _ => Ok(default.to_vec()),
            }
        };
        match cfg.kind() {
            "NamespaceTransformer" => {
                let ns = v
                    .get_path(&["metadata", "namespace"])
                    .and_then(Value::scalar_string)
                    .unwrap_or_default();
                let unset_only = matches!(v.get("unsetOnly"), Some(Value::Bool(true)));
                let mode = match v.get_str("setRoleBindingSubjects").unwrap_or("") {
                    "none" => transformers::RoleBindingSubjects::None,
                    "allServiceAccounts" => transformers::RoleBindingSubjects::AllServiceAccounts,
                    _ => transformers::RoleBindingSubjects::DefaultOnly,
                };
                transformers::namespace(
                    &mut acc.rm,
                    &ns,
                    &fieldspecs(&tc.namespace)?,
                    unset_only,
                    mode,
                )
            }
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let prefix = v.get_str("prefix").map(str::to_string);
                let suffix = v.get_str("suffix").map(str::to_string);
                let (p, s) = match cfg.kind() {
                    "PrefixTransformer" => (Some(prefix.unwrap_or_default()), None),
                    "SuffixTransformer" => (None, Some(suffix.unwrap_or_default())),
                    _ => (prefix, suffix),
                };
                transformers::prefix_suffix(
                    &mut acc.rm,
                    p.as_deref(),
                    s.as_deref(),
                    &fieldspecs(&tc.name_prefix)?,
                )
            }
            "LabelTransformer" => {
                let labels = crate::resource::string_map(v.get("labels"));
                transformers::set_map_fields(&mut acc.rm, &labels, &fieldspecs(&tc.common_labels)?)
            }
            "AnnotationsTransformer" => {
                let anns = crate::resource::string_map(v.get("annotations"));
                transformers::set_map_fields(
                    &mut acc.rm,
                    &anns,
                    &fieldspecs(&tc.common_annotations)?,
                )
            }
            "ImageTagTransformer" => {
                let img = v.get("imageTag").cloned().unwrap_or(Value::Null);
                transformers::images(&mut acc.rm, &[img], &fieldspecs(&tc.images)?)
            }
            "ReplicaCountTransformer" => {
                let r = v.get("replica").cloned().unwrap_or(Value::Null);
                transformers::replicas(&mut acc.rm, &[r], &fieldspecs(&tc.replicas)?)
            }
            "PatchStrategicMergeTransformer" => {
                let mut list = Vec::new();
                if let Some(Value::Seq(paths)) = v.get("paths") {
                    list.extend(paths.iter().cloned());
                }
                if let Some(Value::Str(s)) = v.get("patches") {
                    list.push(Value::Str(s.clone()));
                }
                let patches = patch::load_smp_patches(ldr, &list)?;
                patch::apply_smp_patches(&mut acc.rm, &patches, self.schema.as_deref())
            }
            "PatchTransformer" => {
                let mut e = Map::new();
                for k in ["path", "patch", "target", "options"] {
                    if let Some(x) = v.get(k) {
                        e.insert(k, x.clone());
                    }
                }
                patch::apply_patch_entry(ldr, &mut acc.rm, &Value::Map(e), self.schema.as_deref())
            }
            "PatchJson6902Transformer" => {
                let mut e = Map::new();
                if let Some(x) = v.get("path") {
                    e.insert("path", x.clone());
                }
                if let Some(x) = v.get("jsonOp") {
                    e.insert("patch", x.clone());
                }
                if let Some(x) = v.get("target") {
                    e.insert("target", x.clone());
                }
                patch::apply_json6902_entry(ldr, &mut acc.rm, &Value::Map(e))
            }
            "ReplacementTransformer" => {
                let reps = v
                    .get("replacements")
                    .and_then(Value::as_seq)
                    .cloned()
                    .unwrap_or_default();
                let list = replacements::load(ldr, &reps)?;
                replacements::apply(&mut acc.rm, &list)
            }
            "HashTransformer" => generators::add_hashes(&mut acc.rm),
            "ConfigMapGenerator" | "SecretGenerator" | "IAMPolicyGenerator" => {
                let rs = self.run_generator_config(ldr, cfg, None)?;
                for r in rs {
                    absorb(acc, r, None)?;
                }
                Ok(())
            }
            "SortOrderTransformer" => Err(Error::msg(
                "unable to load builtin SortOrderTransformer.builtin.[noGrp]",
            )),
            _ => Err(plugin_error(cfg)),
        }
    }
}

/// Validates the `openapi:` field. The schema itself only refines merge keys
/// of custom types; built-in merge keys come from `smp_table`.
fn check_openapi(ldr: &Loader, k: &Kustomization) -> Result<()> {
    let Some(o) = k.get("openapi") else {
        return Ok(());
    };
    let path = o.get_str("path").unwrap_or("");
    let version = o.get_str("version").unwrap_or("");
    if !path.is_empty() && !version.is_empty() {
        return Err(Error::msg(
            "builtin version and custom schema provided, cannot use both",
        ));
    }
    if !version.is_empty() && version != "v1.21.2" {
        return Err(Error::msg(format!(
            "the specified OpenAPI version {version:?} is not built in (only v1.21.2 is)"
        )));
    }
    if !path.is_empty() {
        if looks_remote(path) {
            return Err(Error::msg(format!(
                "openapi: remote schema {path:?} is not supported yet"
            )));
        }
        if !ldr.resolve(path).exists() {
            return Err(Error::msg(format!(
                "'{}' doesn't exist",
                ldr.resolve(path).display()
            )));
        }
    }
    Ok(())
}

fn is_inline_config(entry: &str) -> bool {
    entry.contains('\n') || entry.trim_start().starts_with("apiVersion") || entry.contains(": ")
}

/// An origin entry for a plugin configuration; `indent` is added before
/// every line but the first (for transformation lists).
fn plugin_origin(configured_in: &str, cfg: &Resource, indent: &str) -> String {
    let mut s = format!("configuredIn: {configured_in}\n");
    s.push_str(&format!("{indent}configuredBy:\n"));
    s.push_str(&format!("{indent}  apiVersion: {}\n", cfg.api_version()));
    s.push_str(&format!("{indent}  kind: {}\n", cfg.kind()));
    let name = cfg.name();
    if !name.is_empty() {
        s.push_str(&format!("{indent}  name: {name}\n"));
    }
    let ns = cfg.namespace();
    if !ns.is_empty() {
        s.push_str(&format!("{indent}  namespace: {ns}\n"));
    }
    if indent.is_empty() {
        s
    } else {
        format!("- {s}")
    }
}

/// Appends an entry to every resource's transformations annotation.
fn annotate_transformation(acc: &mut Acc, entry: &str) {
    for r in acc.rm.list.iter_mut() {
        let cur = r
            .obj
            .get_path(&["metadata", "annotations", TRANSFORMATIONS_ANNOTATION])
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        set_annotation(r, TRANSFORMATIONS_ANNOTATION, &format!("{cur}{entry}"));
    }
}

fn plugin_error(cfg: &Resource) -> Error {
    let ann = cfg.annotations();
    if ann
        .iter()
        .any(|(k, _)| k == "config.kubernetes.io/function" || k == "config.k8s.io/function")
    {
        return Error::Unsupported {
            field: "KRM functions (config.kubernetes.io/function)".into(),
        };
    }
    Error::msg(format!(
        "unable to load plugin {}: external plugins are not supported yet",
        cfg.cur_id()
    ))
}

fn kustomization_file_name(dir: &Path) -> String {
    for n in KUSTOMIZATION_FILE_NAMES {
        if dir.join(n).is_file() {
            return n.to_string();
        }
    }
    "kustomization.yaml".into()
}

pub fn set_annotation(r: &mut Resource, k: &str, v: &str) {
    let md = r.metadata_mut();
    let ann = md.entry_map("annotations");
    if let Some(m) = ann.as_map_mut() {
        m.insert(k, Value::str(v));
    }
}

/// kustomize's `AbsorbAll` for one generated resource.
pub fn absorb(acc: &mut Acc, mut r: Resource, origin: Option<String>) -> Result<()> {
    if let Some(o) = origin {
        set_annotation(&mut r, ORIGIN_ANNOTATION, &o);
    }
    let id = r.cur_id();
    let matches: Vec<usize> = acc
        .rm
        .list
        .iter()
        .enumerate()
        .filter(|(_, x)| x.cur_id().equals(&id) || x.prev_ids.iter().any(|p| p.equals(&id)))
        .map(|(i, _)| i)
        .collect();
    match matches.len() {
        0 => match r.behavior {
            Behavior::Merge | Behavior::Replace => Err(Error::msg(format!(
                "id {id} does not exist; cannot merge or replace"
            ))),
            _ => acc.rm.append(r).map_err(Error::msg),
        },
        1 => {
            let i = matches[0];
            let old = acc.rm.list[i].clone();
            match r.behavior {
                Behavior::Replace => {
                    generators::copy_merge_metadata(&mut r, &old);
                }
                Behavior::Merge => {
                    generators::copy_merge_metadata(&mut r, &old);
                    generators::merge_data(&mut r, &old);
                }
                _ => {
                    return Err(Error::msg(format!(
                        "id {id} exists; behavior must be merge or replace"
                    )));
                }
            }
            acc.rm.list[i] = r;
            Ok(())
        }
        _ => Err(Error::msg(format!(
            "found multiple objects that could accept merge of {id}"
        ))),
    }
}

pub fn relative_path(base: &Path, p: &Path) -> String {
    let b: Vec<_> = base.components().collect();
    let t: Vec<_> = p.components().collect();
    let mut i = 0;
    while i < b.len() && i < t.len() && b[i] == t[i] {
        i += 1;
    }
    let mut out = PathBuf::new();
    for _ in i..b.len() {
        out.push("..");
    }
    for c in &t[i..] {
        out.push(c.as_os_str());
    }
    out.to_string_lossy().to_string()
}

fn crate_version() -> &'static str {
    "v5.8.1"
}

#[allow(dead_code)]
fn unique<T: std::hash::Hash + Eq + Clone>(v: &[T]) -> Vec<T> {
    let mut seen = HashSet::new();
    v.iter()
        .filter(|x| seen.insert((*x).clone()))
        .cloned()
        .collect()
}
