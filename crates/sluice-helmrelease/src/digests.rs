//! The digests helm-controller records of a HelmRelease's post-renderers
//! (`status.observedPostRenderersDigest`) and common metadata
//! (`status.observedCommonMetadataDigest`): SHA-256 of what Go's
//! `json.Encoder` writes for the Go structs, so that a release Flux made
//! is not upgraded for nothing when sluice takes it over.
//!
//! Go's encoder differs from serde's in three ways that matter here: fields
//! marked `omitempty` are left out when empty (an empty string, list or
//! map), `<`, `>` and `&` (and U+2028, U+2029) are escaped inside strings,
//! and a newline ends the document. The JSON is therefore built field by
//! field, in the Go structs' order.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use sluice_api::helm_release::PostRenderer;
use sluice_api::kustomization::CommonMetadata;
use sluice_api::kustomize::{Image, Patch, Selector};

/// `postrender.Digest(digest.Canonical, spec.postRenderers)`; empty when
/// the field is unset (helm-controller's comparison value then).
pub fn post_renderers(post_renderers: Option<&[PostRenderer]>) -> String {
    let Some(list) = post_renderers else {
        return String::new();
    };
    let value = Value::Array(list.iter().map(post_renderer).collect());
    digest(&value)
}

/// `postrender.CommonMetadataDigest(digest.Canonical, spec.commonMetadata)`;
/// empty when the field is unset.
pub fn common_metadata(common: Option<&CommonMetadata>) -> String {
    let Some(common) = common else {
        return String::new();
    };
    let mut m = Map::new();
    string_map(&mut m, "annotations", common.annotations.as_ref());
    string_map(&mut m, "labels", common.labels.as_ref());
    digest(&Value::Object(m))
}

fn post_renderer(p: &PostRenderer) -> Value {
    let mut m = Map::new();
    if let Some(k) = &p.kustomize {
        let mut km = Map::new();
        if let Some(patches) = k.patches.as_ref().filter(|p| !p.is_empty()) {
            km.insert("patches".into(), patches.iter().map(patch).collect());
        }
        if let Some(images) = k.images.as_ref().filter(|i| !i.is_empty()) {
            km.insert("images".into(), images.iter().map(image).collect());
        }
        m.insert("kustomize".into(), Value::Object(km));
    }
    Value::Object(m)
}

fn patch(p: &Patch) -> Value {
    let mut m = Map::new();
    m.insert("patch".into(), Value::String(p.patch.clone()));
    if let Some(t) = &p.target {
        m.insert("target".into(), selector(t));
    }
    Value::Object(m)
}

fn selector(s: &Selector) -> Value {
    let mut m = Map::new();
    for (key, value) in [
        ("group", &s.group),
        ("version", &s.version),
        ("kind", &s.kind),
        ("namespace", &s.namespace),
        ("name", &s.name),
        ("annotationSelector", &s.annotation_selector),
        ("labelSelector", &s.label_selector),
    ] {
        omit_empty(&mut m, key, value.as_deref());
    }
    Value::Object(m)
}

fn image(i: &Image) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(i.name.clone()));
    omit_empty(&mut m, "newName", i.new_name.as_deref());
    omit_empty(&mut m, "newTag", i.new_tag.as_deref());
    omit_empty(&mut m, "digest", i.digest.as_deref());
    Value::Object(m)
}

fn omit_empty(m: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        m.insert(key.into(), Value::String(v.into()));
    }
}

fn string_map(
    m: &mut Map<String, Value>,
    key: &str,
    value: Option<&std::collections::BTreeMap<String, String>>,
) {
    if let Some(map) = value.filter(|v| !v.is_empty()) {
        let object = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        m.insert(key.into(), Value::Object(object));
    }
}

/// What `json.NewEncoder(w).Encode(v)` writes for `value`: compact JSON,
/// Go's HTML-safe escapes, then a newline.
pub fn go_json(value: &Value) -> String {
    let mut out = sluice_api::go_json::marshal(value);
    out.push('\n');
    out
}

fn digest(value: &Value) -> String {
    format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&Sha256::digest(go_json(value).as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_as_go() {
        let v = serde_json::json!({"patch": "a<b>&c\u{2028}", "n": 1});
        assert_eq!(
            go_json(&v),
            "{\"patch\":\"a\\u003cb\\u003e\\u0026c\\u2028\",\"n\":1}\n"
        );
    }

    #[test]
    fn unset_fields_have_no_digest() {
        assert_eq!(post_renderers(None), "");
        assert_eq!(common_metadata(None), "");
        // An empty list is set: `[]` has a digest.
        assert_eq!(
            post_renderers(Some(&[])),
            format!(
                "sha256:{}",
                data_encoding::HEXLOWER.encode(&Sha256::digest(b"[]\n"))
            )
        );
    }

    #[test]
    fn fields_in_go_order_without_empty_ones() {
        let prs: Vec<PostRenderer> = serde_json::from_value(serde_json::json!([{
            "kustomize": {
                "images": [{"name": "nginx", "newTag": "", "digest": "sha256:1"}],
                "patches": [{"target": {"name": "web", "kind": "Deployment"}, "patch": "- op: remove"}],
            }
        }]))
        .unwrap();
        let value = Value::Array(prs.iter().map(post_renderer).collect());
        assert_eq!(
            go_json(&value),
            "[{\"kustomize\":{\"patches\":[{\"patch\":\"- op: remove\",\"target\":{\"kind\":\"Deployment\",\"name\":\"web\"}}],\"images\":[{\"name\":\"nginx\",\"digest\":\"sha256:1\"}]}}]\n"
        );
    }
}
