//! Applying an arbitrary patch to an arbitrary object returns a result or an
//! error, never a panic: the strategic merge (with kustomize's built-in list
//! merge keys) and, when the patch is a list, JSON 6902 operations.
//!
//! Input: the object's YAML, a `---8<---` line, the patch's YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_kustomize::{patch, yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (object, patch_text) = text.split_once("\n---8<---\n").unwrap_or((text, ""));
    let (Ok(object), Ok(patch_value)) = (yaml::parse_one(object), yaml::parse_one(patch_text))
    else {
        return;
    };
    if let Ok(Some(merged)) = patch::strategic_merge(&object, &patch_value) {
        // Whatever a merge produces must print.
        let _ = yaml::to_yaml(&merged);
    }
    if let Some(ops) = patch_value.as_seq() {
        let mut doc = object.clone();
        if patch::json6902(&mut doc, ops).is_ok() {
            let _ = yaml::to_yaml(&doc);
        }
    }
});
