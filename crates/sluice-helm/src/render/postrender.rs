//! Post-rendering as Helm v4.2.4's `renderResources` does it: the rendered
//! files are merged into one stream of documents, each annotated with the
//! file it came from (`annotateAndMerge`), the post-renderer runs over the
//! stream, and the result is split back into files by that annotation
//! (`splitAndDeannotate`) before hooks and manifests are sorted. With the
//! `separate` strategy hooks and manifests go through the post-renderer as
//! two streams; with `nohooks` only the manifests do.
//!
//! Helm reads and writes the stream with kyaml. What that means for the
//! bytes: documents are read with go-yaml v3's rules (a `List` alone in its
//! document is unwrapped into its items, comments are dropped), and each
//! file is written back the way kyaml's encoder writes what the
//! post-renderer produced; Flux's post-renderers end with kustomize's output
//! (go-yaml v2 over JSON), which the encoder keeps but does not fold
//! ([`sluice_kustomize::yaml::to_yaml_docs_unfolded`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use super::RenderError;
use super::manifests::{sort_manifests, split_manifests};

/// The annotation Helm marks each document's file with while post-rendering.
pub const FILENAME_ANNOTATION: &str = "postrenderer.helm.sh/postrender-filename";

/// Which documents go through the post-renderer (Helm's `PostRenderStrategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Hooks and manifests together, in one stream (Helm v4's default).
    #[default]
    Combined,
    /// Hooks and manifests as two streams.
    Separate,
    /// Manifests only; hooks are left as rendered (Helm v3's behaviour).
    NoHooks,
}

/// A post-renderer over parsed documents: what it returns replaces them.
pub type Renderer = dyn Fn(Vec<Y>) -> Result<Vec<Y>, String> + Send + Sync;

/// What [`super::Options::post_render`] holds.
#[derive(Clone)]
pub struct PostRender {
    pub strategy: Strategy,
    pub renderer: Arc<Renderer>,
}

impl std::fmt::Debug for PostRender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostRender")
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

/// Runs `pr` over the rendered files (NOTES removed) and gives the files it
/// produced, as Helm's `renderResources` does before sorting them.
pub(crate) fn run(
    files: BTreeMap<String, String>,
    pr: &PostRender,
    threads: usize,
) -> Result<BTreeMap<String, String>, RenderError> {
    let err = RenderError::PostRender;
    if pr.strategy == Strategy::Combined {
        let merged =
            annotate_and_merge(&files).map_err(|e| err(format!("error merging manifests: {e}")))?;
        let rendered = (pr.renderer)(merged)
            .map_err(|e| err(format!("error while running post render on files: {e}")))?;
        return split_and_deannotate(rendered, "")
            .map_err(|e| err(format!("error while parsing post rendered output: {e}")));
    }
    let (hooks, manifests) = sort_manifests(&files, threads).map_err(RenderError::Manifest)?;
    let mut hook_files = BTreeMap::new();
    for h in hooks {
        join_into(&mut hook_files, h.path, h.manifest);
    }
    let mut manifest_files = BTreeMap::new();
    for m in manifests {
        join_into(&mut manifest_files, m.name, m.content);
    }
    let groups = [
        ("hooks", hook_files, pr.strategy == Strategy::Separate),
        ("manifests", manifest_files, true),
    ];
    let mut out = BTreeMap::new();
    for (name, group, post_render) in groups {
        if group.is_empty() {
            continue;
        }
        if !post_render {
            for (k, v) in group {
                join_into(&mut out, k, v);
            }
            continue;
        }
        let merged =
            annotate_and_merge(&group).map_err(|e| err(format!("error merging {name}: {e}")))?;
        let rendered = (pr.renderer)(merged)
            .map_err(|e| err(format!("error while running post render on {name}: {e}")))?;
        let files = split_and_deannotate(rendered, name).map_err(|e| {
            err(format!(
                "error while parsing post rendered output for {name}: {e}"
            ))
        })?;
        for (k, v) in files {
            join_into(&mut out, k, v);
        }
    }
    Ok(out)
}

/// Adds `content` to file `name`, after what it has with a `---` line.
fn join_into(files: &mut BTreeMap<String, String>, name: String, content: String) {
    match files.get_mut(&name) {
        Some(existing) => {
            existing.push_str("\n---\n");
            existing.push_str(&content);
        }
        None => {
            files.insert(name, content);
        }
    }
}

/// Helm's `annotateAndMerge`: the documents of every file but partials and
/// blank ones, by file name, each marked with its file.
fn annotate_and_merge(files: &BTreeMap<String, String>) -> Result<Vec<Y>, String> {
    let mut out = Vec::new();
    for (name, content) in files {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            if doc.trim().is_empty() {
                continue;
            }
            for mut v in parse_all(&doc).map_err(|e| format!("parsing {name}: {e}"))? {
                set_filename(&mut v, name).map_err(|e| format!("annotating {name}: {e}"))?;
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// kyaml's `kio.ParseAll` of one document: nothing for an empty one, the
/// items of a `List` (or `ResourceList`) that has `items` or
/// `functionConfig`, else the document.
fn parse_all(doc: &str) -> Result<Vec<Y>, String> {
    let docs =
        sluice_kustomize::yaml::parse_kio(doc).map_err(|e| format!("MalformedYAMLError: {e}"))?;
    let mut out = Vec::new();
    for d in docs {
        let Y::Map(m) = &d else {
            if !matches!(d, Y::Null) {
                out.push(d);
            }
            continue;
        };
        let kind = m.get("kind").and_then(Y::as_str).unwrap_or_default();
        let wrapped = (kind == "List" || kind == "ResourceList")
            && (m.contains("items") || m.contains("functionConfig"));
        if !wrapped {
            out.push(d);
            continue;
        }
        if let Some(Y::Seq(items)) = m.get("items") {
            out.extend(items.iter().cloned());
        }
    }
    Ok(out)
}

/// kyaml's `SetAnnotation`: `metadata.annotations` made where missing.
fn set_filename(v: &mut Y, name: &str) -> Result<(), String> {
    let Y::Map(m) = v else {
        return Err(format!(
            "wrong node kind: expected a mapping, got a {}",
            v.kind_name()
        ));
    };
    let meta = entry_map(m, "metadata")?;
    let annotations = entry_map(meta, "annotations")?;
    annotations.insert(FILENAME_ANNOTATION, Y::str(name));
    Ok(())
}

fn entry_map<'a>(m: &'a mut YMap, key: &str) -> Result<&'a mut YMap, String> {
    if !matches!(m.get(key), Some(Y::Map(_))) {
        if m.get(key).is_some_and(|v| !matches!(v, Y::Null)) {
            return Err(format!("wrong node kind: {key} is not a mapping"));
        }
        m.insert(key, Y::Map(YMap::new()));
    }
    match m.get_mut(key) {
        Some(Y::Map(inner)) => Ok(inner),
        _ => Err(format!("wrong node kind: {key} is not a mapping")),
    }
}

/// Helm's `splitAndDeannotate`: the post-renderer's documents grouped by the
/// file they are marked with (`generated-by-postrender-[PREFIX-]N.yaml` for
/// new ones, N their position), the mark removed, each file written as
/// kyaml writes it.
fn split_and_deannotate(docs: Vec<Y>, prefix: &str) -> Result<BTreeMap<String, String>, String> {
    let mut by_file: BTreeMap<String, Vec<Y>> = BTreeMap::new();
    for (i, mut doc) in docs.into_iter().enumerate() {
        let Y::Map(m) = &mut doc else {
            return Err("getting metadata: wrong node kind: expected a mapping".into());
        };
        let name = take_filename(m).unwrap_or_else(|| {
            if prefix.is_empty() {
                format!("generated-by-postrender-{i}.yaml")
            } else {
                format!("generated-by-postrender-{prefix}-{i}.yaml")
            }
        });
        by_file.entry(name).or_default().push(doc);
    }
    Ok(by_file
        .into_iter()
        .map(|(name, docs)| {
            (
                name,
                sluice_kustomize::yaml::to_yaml_docs_unfolded(docs.iter()),
            )
        })
        .collect())
}

/// Removes the file mark of a document and gives it; an `annotations` map
/// or a `metadata` map left empty goes too (kyaml's `ClearEmptyAnnotations`).
fn take_filename(m: &mut YMap) -> Option<String> {
    let meta = match m.get_mut("metadata") {
        Some(Y::Map(meta)) => meta,
        _ => return None,
    };
    let name = match meta.get_mut("annotations") {
        Some(Y::Map(a)) => match a.remove(FILENAME_ANNOTATION) {
            Some(Y::Str(s)) => Some(s.to_string()),
            Some(other) => other.scalar_string(),
            None => None,
        },
        _ => None,
    };
    if matches!(meta.get("annotations"), Some(Y::Map(a)) if a.is_empty()) {
        meta.remove("annotations");
    }
    if meta.is_empty() {
        m.remove("metadata");
    }
    name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn identity() -> PostRender {
        PostRender {
            strategy: Strategy::Combined,
            renderer: Arc::new(Ok),
        }
    }

    #[test]
    fn documents_return_to_their_files_without_the_mark() {
        let out = run(
            files(&[
                ("c/templates/_h.tpl", "kind: Ignored\n"),
                (
                    "c/templates/b.yaml",
                    "kind: B\nmetadata:\n  name: b\n---\nkind: C\nmetadata:\n  name: c\n",
                ),
                (
                    "c/templates/a.yaml",
                    "# only a comment\nkind: A\nmetadata:\n  name: a\n",
                ),
                ("c/templates/blank.yaml", "\n  \n"),
            ]),
            &identity(),
            1,
        )
        .unwrap();
        assert_eq!(
            out,
            files(&[
                ("c/templates/a.yaml", "kind: A\nmetadata:\n  name: a\n"),
                (
                    "c/templates/b.yaml",
                    "kind: B\nmetadata:\n  name: b\n---\nkind: C\nmetadata:\n  name: c\n"
                ),
            ])
        );
    }

    #[test]
    fn new_documents_get_generated_names_and_empty_metadata_goes() {
        let pr = PostRender {
            strategy: Strategy::Combined,
            renderer: Arc::new(|mut docs: Vec<Y>| {
                docs.push(
                    sluice_kustomize::yaml::parse_one("kind: New\nmetadata:\n  name: new\n")
                        .unwrap(),
                );
                Ok(docs)
            }),
        };
        let out = run(files(&[("c/templates/a.yaml", "kind: A\n")]), &pr, 1).unwrap();
        assert_eq!(
            out,
            files(&[
                ("c/templates/a.yaml", "kind: A\n"),
                (
                    "generated-by-postrender-1.yaml",
                    "kind: New\nmetadata:\n  name: new\n"
                ),
            ])
        );
    }

    #[test]
    fn a_list_alone_in_its_document_is_unwrapped() {
        let docs = parse_all("apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n").unwrap();
        assert_eq!(docs.len(), 2);
        let docs = parse_all("apiVersion: v1\nkind: ConfigMapList\nitems:\n- kind: A\n").unwrap();
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn failures_are_worded_as_helm_words_them() {
        let pr = PostRender {
            strategy: Strategy::Combined,
            renderer: Arc::new(|_| Err("boom".into())),
        };
        let e = run(files(&[("c/templates/a.yaml", "kind: A\n")]), &pr, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error while running post render on files: boom"
        );
        let e = run(
            files(&[("c/templates/a.yaml", "- a\n- b\n")]),
            &identity(),
            1,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("error merging manifests: annotating c/templates/a.yaml: "),
            "{e}"
        );
    }
}
