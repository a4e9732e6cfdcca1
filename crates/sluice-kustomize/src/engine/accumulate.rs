//! Accumulation: a kustomization's resources, bases, components and
//! remote targets, gathered into an [`Acc`].

use super::*;

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

impl Builder {
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

    pub(super) fn accumulate_target_inner(
        &mut self,
        dir: &Path,
        k: &Kustomization,
        acc: &mut Acc,
    ) -> Result<()> {
        for (field, instead) in &k.deprecated {
            let w = format!(
                "'{field}' is deprecated. Please use '{instead}' instead. Run 'kustomize edit fix' to update your Kustomization automatically."
            );
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        let ldr = self.loader(dir);
        check_openapi(&ldr, k)?;
        if !self.openapi_set
            && let Some(o) = &k.openapi
        {
            self.openapi_set = true;
            if let Some(path) = o.get_str("path") {
                let text = ldr.read_string(path)?;
                let schema = crate::smp::CustomSchema::parse(&text)
                    .map_err(|e| Error::msg(format!("openapi schema {path}: {e}")))?;
                self.schema = Some(std::rc::Rc::new(schema));
            }
        }
        let mut res = k.resources.clone();
        res.extend(k.bases.iter().cloned());
        self.accumulate_resources(&ldr, &res, acc)
            .map_err(|e| e.context("accumulating resources"))?;

        // Transformer configuration: defaults plus `configurations:` files.
        let mut tc = TransformerConfig::defaults();
        for c in &k.configurations {
            let text = ldr.read_string(c)?;
            let v = crate::yaml::parse_one(&text).map_err(|e| Error::yaml(c, e))?;
            let ctc = TransformerConfig::from_value(&v).map_err(Error::msg)?;
            tc.merge(&ctc);
        }
        acc.merge_config(&tc);
        for c in &k.crds {
            let text = ldr.read_string(c)?;
            let ctc = crate::transformers::config_from_crds(&text, c)?;
            acc.merge_config(&ctc);
        }

        self.run_generators(&ldr, k, acc)?;

        // Components apply on top of what was accumulated and generated so
        // far, before this kustomization's transformers.
        for c in &k.components {
            let p = ldr.resolve(c);
            if !p.is_dir() {
                return Err(
                    Error::msg(format!("must build at directory: '{}'", p.display()))
                        .context("accumulating components"),
                );
            }
            let p = std::fs::canonicalize(&p).map_err(|e| Error::msg(e.to_string()))?;
            self.check_dir(&p, c)?;
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

        let new_vars = vars::parse_vars(&k.vars)?;
        vars::merge_vars(acc, new_vars)?;
        Ok(())
    }

    /// Accumulates `paths`, then refuses duplicate ids in one linear pass.
    pub(super) fn accumulate_resources(
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

    pub(super) fn accumulate_resource_paths(
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

    /// An `http(s)://` entry without Git markers: read as a file, as
    /// kustomize does first; if that fails and the URL also parses as a
    /// repository, built as a remote target instead.
    pub(super) fn accumulate_http(&mut self, entry: &str, acc: &mut Acc) -> Result<()> {
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
    pub(super) fn accumulate_remote(
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
}
