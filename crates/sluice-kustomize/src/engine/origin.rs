//! Origin and transformation annotations (`buildMetadata`).

use super::*;

pub const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
pub const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";

/// An origin entry for a plugin configuration; `indent` is added before
/// every line but the first (for transformation lists).
pub(super) fn plugin_origin(configured_in: &str, cfg: &Resource, indent: &str) -> String {
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
pub(super) fn annotate_transformation(acc: &mut Acc, entry: &str) {
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

pub fn set_annotation(r: &mut Resource, k: &str, v: &str) {
    let md = r.metadata_mut();
    let ann = md.entry_map("annotations");
    if let Some(m) = ann.as_map_mut() {
        m.insert(k, Value::str(v));
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

impl Builder {
    pub(super) fn origin_for_file(&self, full: &Path) -> Option<String> {
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
    pub(super) fn remote_origin(&self, p: &Path, indent: &str) -> Option<(String, String)> {
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

    /// Loads plugin configurations named in `generators:`/`transformers:`:
    /// a file, a kustomization directory (built), or inline YAML.
    pub(super) fn origin_annotations(&self) -> bool {
        self.build_metadata.iter().any(|s| s == "originAnnotations")
    }

    pub(super) fn transformer_annotations(&self) -> bool {
        self.build_metadata
            .iter()
            .any(|s| s == "transformerAnnotations")
    }
}
