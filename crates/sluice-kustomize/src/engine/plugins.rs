//! Builtin plugin configurations: the kustomization's generators and
//! transformers fields, and `generators:`/`transformers:` entries, run in
//! kustomize's order.

use super::*;

/// Validates the `openapi:` field. The schema itself only refines merge keys
/// of custom types; built-in merge keys come from `smp_table`.
pub(super) fn check_openapi(ldr: &Loader, k: &Kustomization) -> Result<()> {
    let Some(o) = &k.openapi else {
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

pub(super) fn is_inline_config(entry: &str) -> bool {
    entry.contains('\n') || entry.trim_start().starts_with("apiVersion") || entry.contains(": ")
}

pub(super) fn plugin_error(cfg: &Resource) -> Error {
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

impl Builder {
    pub(super) fn run_generators(
        &mut self,
        ldr: &Loader,
        k: &Kustomization,
        acc: &mut Acc,
    ) -> Result<()> {
        let global = k.generator_options.clone();
        let kust_file = kustomization_file_name(&ldr.root);
        for g in &k.config_map_generator {
            let r = generators::generate(ldr, g, global.as_ref(), "ConfigMap").map_err(|e| {
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
        for g in &k.secret_generator {
            let r = generators::generate(ldr, g, global.as_ref(), "Secret").map_err(|e| {
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
        for entry in &k.generators {
            let configured_in = self.configured_in(ldr, entry, &kust_file);
            for cfg in self.load_plugin_configs(ldr, entry)? {
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

    /// Where a plugin configuration entry lives, relative to the build root.
    pub(super) fn configured_in(&self, ldr: &Loader, entry: &str, kust_file: &str) -> String {
        if is_inline_config(entry) || ldr.resolve(entry).is_dir() {
            self.rel_to_root(&ldr.root.join(kust_file))
        } else {
            self.rel_to_root(&ldr.resolve(entry))
        }
    }

    /// Records a builtin transformer configured by a kustomization field.
    pub(super) fn note_builtin(&self, acc: &mut Acc, ldr: &Loader, kind: &str) {
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

    pub(super) fn load_plugin_configs(
        &mut self,
        ldr: &Loader,
        entry: &str,
    ) -> Result<Vec<Resource>> {
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

    pub(super) fn run_generator_config(
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

    pub(super) fn run_transformers(
        &mut self,
        ldr: &Loader,
        k: &Kustomization,
        acc: &mut Acc,
    ) -> Result<()> {
        let tc = acc.tc.clone();
        // 1. patchesStrategicMerge
        let psm = &k.patches_strategic_merge;
        if !psm.is_empty() {
            let patches = patch::load_smp_patches(ldr, psm)?;
            patch::apply_smp_patches(&mut acc.rm, &patches, self.schema.as_deref())?;
            self.note_builtin(acc, ldr, "PatchStrategicMergeTransformer");
        }
        // 2. patches
        for p in &k.patches {
            patch::apply_patch_entry(ldr, &mut acc.rm, p, self.schema.as_deref())?;
            self.note_builtin(acc, ldr, "PatchTransformer");
        }
        // 3. namespace
        let ns = &k.namespace;
        if !ns.is_empty() {
            transformers::namespace(
                &mut acc.rm,
                ns,
                &tc.namespace,
                false,
                transformers::RoleBindingSubjects::DefaultOnly,
            )?;
            self.note_builtin(acc, ldr, "NamespaceTransformer");
        }
        // 4/5. prefix, suffix
        let prefix = &k.name_prefix;
        transformers::prefix_suffix(&mut acc.rm, Some(prefix), None, &tc.name_prefix)?;
        if !prefix.is_empty() {
            self.note_builtin(acc, ldr, "PrefixTransformer");
        }
        let suffix = &k.name_suffix;
        transformers::prefix_suffix(&mut acc.rm, None, Some(suffix), &tc.name_suffix)?;
        if !suffix.is_empty() {
            self.note_builtin(acc, ldr, "SuffixTransformer");
        }
        // 6. labels
        for l in &k.labels {
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
            // kustomize v5.8.1's templateLabels field specs include a
            // StatefulSet's volumeClaimTemplates. `includeVolumeClaimTemplates`
            // (a later kustomize's field, which v5.8.1 refuses; see
            // `kustomization::LATER_FIELDS`) separates them when written.
            let include_vct = match l.get("includeVolumeClaimTemplates") {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            };
            let is_vct = |f: &FieldSpec| f.path.starts_with("spec/volumeClaimTemplates");
            if include_selectors {
                fss.extend(tc.common_labels.iter().cloned());
            } else {
                if include_templates {
                    fss.extend(
                        tc.template_labels
                            .iter()
                            .filter(|f| include_vct.is_none() || !is_vct(f))
                            .cloned(),
                    );
                }
                if include_vct == Some(true) {
                    fss.extend(tc.template_labels.iter().filter(|f| is_vct(f)).cloned());
                }
                fss.push(FieldSpec::any("metadata/labels", true));
            }
            fss.extend(tc.labels.iter().cloned());
            transformers::set_map_fields(&mut acc.rm, &pairs, &fss)?;
            self.note_builtin(acc, ldr, "LabelTransformer");
        }
        let cl = &k.common_labels;
        if !cl.is_empty() {
            transformers::set_map_fields(&mut acc.rm, cl, &tc.common_labels)?;
            self.note_builtin(acc, ldr, "LabelTransformer");
        }
        // 7. annotations
        let ca = &k.common_annotations;
        if !ca.is_empty() {
            transformers::set_map_fields(&mut acc.rm, ca, &tc.common_annotations)?;
            self.note_builtin(acc, ldr, "AnnotationsTransformer");
        }
        // 8. patchesJson6902
        for p in &k.patches_json6902 {
            patch::apply_json6902_entry(ldr, &mut acc.rm, p)?;
            self.note_builtin(acc, ldr, "PatchJson6902Transformer");
        }
        // 9. replicas
        let reps = &k.replicas;
        if !reps.is_empty() {
            transformers::replicas(&mut acc.rm, reps, &tc.replicas)?;
            self.note_builtin(acc, ldr, "ReplicaCountTransformer");
        }
        // 10. images
        let mut images = k.images.clone();
        images.extend(k.image_tags.iter().cloned());
        if !images.is_empty() {
            transformers::images(&mut acc.rm, &images, &tc.images)?;
            self.note_builtin(acc, ldr, "ImageTagTransformer");
        }
        // 11. replacements
        let reps = &k.replacements;
        if !reps.is_empty() {
            let list = replacements::load(ldr, reps)?;
            replacements::apply(&mut acc.rm, &list)?;
            self.note_builtin(acc, ldr, "ReplacementTransformer");
        }
        // `transformers:` field.
        let kust_file = kustomization_file_name(&ldr.root);
        for entry in &k.transformers {
            let configured_in = self.configured_in(ldr, entry, &kust_file);
            for cfg in self.load_plugin_configs(ldr, entry)? {
                self.run_transformer_config(ldr, &cfg, acc)?;
                if self.transformer_annotations() {
                    annotate_transformation(acc, &plugin_origin(&configured_in, &cfg, "  "));
                }
            }
        }
        Ok(())
    }

    pub(super) fn run_transformer_config(
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
