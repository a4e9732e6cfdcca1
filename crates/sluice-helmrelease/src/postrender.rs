//! helm-controller's post-renderer chain (`BuildPostRenderers`), run by the
//! native kustomize engine: each `spec.postRenderers[].kustomize` in order
//! (a kustomization of the rendered stream with its `patches` and `images`),
//! then `spec.commonMetadata` (labels and annotations on `metadata` only),
//! then the origin labels `helm.toolkit.fluxcd.io/name` and `/namespace`.
//! helm-controller always post-renders (the origin labels at least), so
//! every release manifest sluice records has them, as Flux's do.
//!
//! Helm's side (merging the rendered files into one stream, the
//! `postRenderStrategy`, splitting the result back into files) is
//! [`sluice_helm::render::postrender`].

use std::sync::Arc;

use sluice_api::helm_release::{HelmRelease, PostRenderStrategy};
use sluice_api::kustomize::{Image, Patch};
use sluice_helm::render::postrender::{PostRender, Strategy};
use sluice_kustomize::yaml::Value as Y;

/// The file the rendered stream is written to for a kustomize
/// post-renderer (helm-controller's name).
const INPUT: &str = "helm-output.yaml";

/// The post-renderer helm-controller builds for `hr`.
pub fn for_release(hr: &HelmRelease) -> PostRender {
    let spec = &hr.spec;
    let kustomize: Vec<Kustomize> = spec
        .post_renderers
        .iter()
        .flatten()
        .filter_map(|p| p.kustomize.as_ref())
        .map(|k| Kustomize {
            patches: k.patches.clone().unwrap_or_default(),
            images: k.images.clone().unwrap_or_default(),
        })
        .collect();
    let common = spec.common_metadata.as_ref().map(|c| {
        let pairs = |m: &Option<std::collections::BTreeMap<String, String>>| {
            m.iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        (pairs(&c.labels), pairs(&c.annotations))
    });
    let origin: Vec<(String, String)> = sluice_apply::Owner::helm_release(
        hr.metadata.name.clone().unwrap_or_default(),
        hr.metadata.namespace.clone().unwrap_or_default(),
    )
    .labels()
    .into_iter()
    .collect();
    let strategy = match spec.post_render_strategy {
        None | Some(PostRenderStrategy::Combined) => Strategy::Combined,
        Some(PostRenderStrategy::Separate) => Strategy::Separate,
        Some(PostRenderStrategy::NoHooks) => Strategy::NoHooks,
        // Refused before anything is rendered (`controller::unsupported`).
        Some(PostRenderStrategy::Unknown(_)) => Strategy::Combined,
    };
    PostRender {
        strategy,
        renderer: Arc::new(move |mut docs: Vec<Y>| {
            for k in &kustomize {
                docs = k.run(&docs)?;
            }
            if let Some((labels, annotations)) = &common {
                docs = sluice_kustomize::set_metadata(docs, labels, annotations, INPUT)
                    .map_err(|e| e.to_string())?;
            }
            sluice_kustomize::set_metadata(docs, &origin, &[], INPUT).map_err(|e| e.to_string())
        }),
    }
}

/// One `postRenderers[].kustomize`.
struct Kustomize {
    patches: Vec<Patch>,
    images: Vec<Image>,
}

impl Kustomize {
    /// A build of a kustomization whose only resource is the stream, with the
    /// renderer's patches and images (helm-controller writes the same two
    /// files to an in-memory file system; sluice uses a private temporary
    /// directory). Resources keep their order, as krusty without a reorder
    /// option leaves them.
    fn run(&self, docs: &[Y]) -> Result<Vec<Y>, String> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-postrender-")
            .tempdir()
            .map_err(|e| format!("creating a directory for the kustomize post-renderer: {e}"))?;
        let kustomization = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [INPUT],
            "images": self.images,
            "patches": self.patches,
        });
        let write = |name: &str, data: &[u8]| {
            std::fs::write(dir.path().join(name), data)
                .map_err(|e| format!("writing {name} for the kustomize post-renderer: {e}"))
        };
        write(
            INPUT,
            sluice_kustomize::yaml::to_yaml_docs(docs.iter()).as_bytes(),
        )?;
        write("kustomization.yaml", kustomization.to_string().as_bytes())?;
        let root = std::fs::canonicalize(dir.path())
            .map_err(|e| format!("reading the kustomize post-renderer's directory: {e}"))?;
        let opts = sluice_kustomize::Options {
            reorder: sluice_kustomize::Reorder::None,
            load_restrict_root_only: false,
            jail: Some(root.clone()),
            ..sluice_kustomize::Options::new()
        };
        sluice_kustomize::build(&root, &opts)
            .map(|out| out.resources)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn data() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/postrender")
    }

    /// Renders case `c` of `cases.yaml` as the controller does.
    fn render(c: &Value) -> Result<(String, Vec<(String, String)>), String> {
        let chart = sluice_helm::chart::load_dir(&data().join("chart"), &Default::default())
            .map_err(|e| e.to_string())?;
        let mut spec = c["spec"].clone();
        spec["interval"] = "10m".into();
        let hr: HelmRelease = serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": c["name"], "namespace": c["namespace"]},
            "spec": spec,
        }))
        .map_err(|e| e.to_string())?;
        let values = serde_json::to_string(&c["values"]).map_err(|e| e.to_string())?;
        let values = match c["values"] {
            Value::Null => Default::default(),
            _ => sluice_helm::values::parse_values_file(values.as_bytes())
                .map_err(|e| e.to_string())?,
        };
        let opts = sluice_helm::render::Options {
            release_name: c["name"].as_str().unwrap_or_default().into(),
            namespace: c["namespace"].as_str().unwrap_or_default().into(),
            post_render: Some(for_release(&hr)),
            ..Default::default()
        };
        let r = sluice_helm::render::render(&chart, &values, &opts).map_err(|e| e.to_string())?;
        let hooks = r
            .hooks
            .iter()
            .map(|h| (h.path.clone(), h.manifest.clone()))
            .collect();
        Ok((r.manifest(false), hooks))
    }

    /// Each case renders what helm-controller v1.6.4 records (goldens from
    /// `scripts/postrender-goldens`): the manifest and hooks byte for byte.
    #[test]
    fn same_release_as_helm_controller() {
        let cases: Value = serde_json::to_value(sluice_render::pipeline::to_json(
            &sluice_kustomize::yaml::parse_one(
                &std::fs::read_to_string(data().join("cases.yaml")).unwrap(),
            )
            .unwrap(),
        ))
        .unwrap();
        let goldens: Value =
            serde_json::from_str(&std::fs::read_to_string(data().join("goldens.json")).unwrap())
                .unwrap();
        let cases = cases.as_array().unwrap();
        assert_eq!(cases.len(), goldens.as_array().unwrap().len());
        for (c, g) in cases.iter().zip(goldens.as_array().unwrap()) {
            let name = c["name"].as_str().unwrap();
            assert_eq!(g["name"], name);
            match render(c) {
                Ok((manifest, hooks)) => {
                    assert_eq!(g["error"], Value::Null, "{name}: expected an error");
                    assert_eq!(
                        manifest,
                        g["manifest"].as_str().unwrap(),
                        "{name}: manifest"
                    );
                    let want: Vec<(String, String)> = g["hooks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|h| {
                            (
                                h["path"].as_str().unwrap().to_owned(),
                                h["manifest"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect();
                    assert_eq!(hooks, want, "{name}: hooks");
                }
                Err(e) => assert_eq!(Some(e.as_str()), g["error"].as_str(), "{name}: error"),
            }
        }
    }
}
