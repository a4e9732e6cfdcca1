//! Drift detection and correction (`spec.driftDetection`), as helm-controller does it.
//!
//! Each object of the release's manifest, with Helm's ownership metadata and the labels the
//! release was applied with, is applied as a server-side dry-run (helm-controller's field
//! manager, conflicts forced) and the result compared with the live object:
//! - missing in the cluster: `removed` (corrected by creating it);
//! - different: `changed`, with the JSON patch from the live object to the dry-run result
//!   (corrected by sending that patch), counted as Flux counts it;
//! - annotated or labelled `helm.toolkit.fluxcd.io/driftDetection: disabled` (in the chart or
//!   in the cluster), or selected by an ignore rule with the empty path: `excluded`;
//! - otherwise unchanged.
//!
//! Ignore rules (`spec.driftDetection.ignore`) remove their JSON pointers from both sides
//! before the comparison, so a correction never touches them (an HPA's `/spec/replicas`).
//!
//! The comparison is [`compare`]: a port of the JSON diff helm-controller uses
//! (`wI2L/jsondiff` with `Rationalize`, as `fluxcd/pkg/ssa/jsondiff` calls it), so the number
//! of additions, changes and removals in the `Drifted` message is Flux's. The metadata part
//! compares only names, labels and annotations, and keeps only additions and changes (labels
//! others add are not drift); `status` is never compared.

use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::discovery::Scope;
use serde_json::{Map, Value};
use sluice_apply::{Applier, ApplyOptions, IgnoreRule, ObjectRef};

/// The annotation or label that leaves an object out of drift detection, with
/// [`DISABLED_VALUE`].
pub const DRIFT_DETECTION_KEY: &str = "helm.toolkit.fluxcd.io/driftDetection";
/// See [`DRIFT_DETECTION_KEY`].
pub const DISABLED_VALUE: &str = "disabled";

/// One JSON patch operation (RFC 6902), as the diff produces it.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub op: OpKind,
    /// A JSON pointer.
    pub path: String,
    /// For `add` and `replace`.
    pub value: Option<Value>,
    /// The length of the value as jsondiff accounts it when rationalizing (0 for additions,
    /// as it does without factorization).
    value_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }
}

impl Op {
    /// The operation as JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("op".into(), Value::String(self.op.as_str().into()));
        m.insert("path".into(), Value::String(self.path.clone()));
        if let Some(v) = &self.value {
            m.insert("value".into(), v.clone());
        }
        Value::Object(m)
    }

    /// jsondiff's `Operation.jsonLength`.
    fn json_len(&self) -> usize {
        let mut l = 19 + self.op.as_str().len() + self.path.len();
        if self.op != OpKind::Remove {
            l += 9 + self.value_len;
        }
        l
    }
}

fn patch_len(ops: &[Op]) -> usize {
    ops.iter().map(Op::json_len).sum::<usize>() + ops.len().saturating_sub(1)
}

/// The JSON patch turning `src` into `tgt`, as `jsondiff.Compare(src, tgt,
/// jsondiff.Rationalize())` makes it: objects compared key by key in sorted order, arrays
/// index by index (surplus elements removed at the first surplus index, missing ones appended
/// at `-`), and a subtree whose operations would be longer than replacing it whole replaced
/// whole.
pub fn compare(src: &Value, tgt: &Value) -> Vec<Op> {
    let mut d = Differ { patch: Vec::new() };
    let doc = go_json(tgt);
    d.diff(&mut Vec::new(), src, tgt, &doc);
    d.patch
}

struct Differ {
    patch: Vec<Op>,
}

#[derive(PartialEq)]
enum JsonType {
    Null,
    String,
    Bool,
    Number,
    Array,
    Object,
}

fn json_type(v: &Value) -> JsonType {
    match v {
        Value::Null => JsonType::Null,
        Value::String(_) => JsonType::String,
        Value::Bool(_) => JsonType::Bool,
        Value::Number(_) => JsonType::Number,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

/// Equality as after Go's `json.Unmarshal` (every number a float64).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// A JSON pointer from its tokens.
fn pointer(tokens: &[String]) -> String {
    let mut out = String::new();
    for t in tokens {
        out.push('/');
        out.push_str(&t.replace('~', "~0").replace('/', "~1"));
    }
    out
}

impl Differ {
    fn diff(&mut self, ptr: &mut Vec<String>, src: &Value, tgt: &Value, doc: &str) {
        if json_type(src) != json_type(tgt) {
            if ptr.is_empty() {
                self.push(OpKind::Add, pointer(ptr), Some(tgt), 0);
            } else {
                self.push(OpKind::Replace, pointer(ptr), Some(tgt), doc.len());
            }
            return;
        }
        if equal(src, tgt) {
            return;
        }
        let size = self.patch.len();
        match (src, tgt) {
            (Value::Array(s), Value::Array(t)) => self.arrays(ptr, s, t, doc),
            (Value::Object(s), Value::Object(t)) => self.objects(ptr, s, t, doc),
            _ => {
                self.push(OpKind::Replace, pointer(ptr), Some(tgt), doc.len());
                return;
            }
        }
        if self.patch.len() > size {
            let whole = Op {
                op: OpKind::Replace,
                path: pointer(ptr),
                value: Some(tgt.clone()),
                value_len: doc.len(),
            };
            if patch_len(&self.patch[size..]) > whole.json_len() {
                self.patch.truncate(size);
                self.patch.push(whole);
            }
        }
    }

    fn push(&mut self, op: OpKind, path: String, value: Option<&Value>, value_len: usize) {
        self.patch.push(Op {
            op,
            path,
            value: value.cloned(),
            value_len,
        });
    }

    fn objects(
        &mut self,
        ptr: &mut Vec<String>,
        src: &Map<String, Value>,
        tgt: &Map<String, Value>,
        doc: &str,
    ) {
        let mut keys: Vec<&String> = src.keys().chain(tgt.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            ptr.push(k.clone());
            match (src.get(k), tgt.get(k)) {
                (Some(s), Some(t)) => {
                    let sub = find_key(doc, k);
                    self.diff(ptr, s, t, sub);
                }
                (Some(_), None) => self.push(OpKind::Remove, pointer(ptr), None, 0),
                (None, Some(t)) => self.push(OpKind::Add, pointer(ptr), Some(t), 0),
                (None, None) => {}
            }
            ptr.pop();
        }
    }

    fn arrays(&mut self, ptr: &mut Vec<String>, src: &[Value], tgt: &[Value], doc: &str) {
        let common = src.len().min(tgt.len());
        if tgt.len() < src.len() {
            ptr.push(common.to_string());
            let at = pointer(ptr);
            ptr.pop();
            for _ in common..src.len() {
                self.push(OpKind::Remove, at.clone(), None, 0);
            }
        }
        for i in 0..common {
            ptr.push(i.to_string());
            let sub = find_index(doc, i);
            self.diff(ptr, &src[i], &tgt[i], sub);
            ptr.pop();
        }
        if tgt.len() > src.len() {
            ptr.push("-".into());
            let at = pointer(ptr);
            ptr.pop();
            for t in &tgt[common..] {
                self.push(OpKind::Add, at.clone(), Some(t), 0);
            }
        }
    }
}

/// Go's compact `json.Marshal` of a value (sorted keys, HTML characters escaped), for the
/// lengths jsondiff measures.
fn go_json(v: &Value) -> String {
    sluice_api::go_json::marshal(v)
}

/// The text of the value of `key` in the compact JSON object `json` (jsondiff's `findKey`).
fn find_key<'a>(json: &'a str, key: &str) -> &'a str {
    let b = json.as_bytes();
    let mut i = 1;
    while i < b.len() {
        let ki = i;
        i = squash_string(b, i);
        let k = json.get(ki + 1..i.saturating_sub(1)).unwrap_or("");
        i += 1;
        let vi = i;
        i = squash_value(b, i);
        if unescape(k) == key {
            return json.get(vi..i).unwrap_or("");
        }
        i += 1;
    }
    ""
}

/// The text of element `idx` of the compact JSON array `json` (jsondiff's `findIndex`).
fn find_index(json: &str, idx: usize) -> &str {
    let b = json.as_bytes();
    let (mut i, mut j) = (1, 0);
    while i < b.len() {
        let vi = i;
        i = squash_value(b, i);
        if j == idx {
            return json.get(vi..i).unwrap_or("");
        }
        i += 1;
        j += 1;
    }
    ""
}

fn unescape(k: &str) -> String {
    if !k.contains('\\') {
        return k.to_owned();
    }
    serde_json::from_str::<String>(&format!("\"{k}\"")).unwrap_or_else(|_| k.to_owned())
}

fn squash_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b't' | b'n') => i + 4,
        Some(b'f') => i + 5,
        Some(b'"') => squash_string(b, i),
        Some(b'-' | b'+' | b'0'..=b'9') => {
            let mut i = i + 1;
            while i < b.len() && !(b[i] <= b' ' || matches!(b[i], b',' | b']' | b'}')) {
                i += 1;
            }
            i
        }
        Some(b'[' | b'{') => squash_nested(b, i),
        _ => i + 1,
    }
}

fn squash_string(b: &[u8], i: usize) -> usize {
    let mut i = i + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

fn squash_nested(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut i = i;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = squash_string(b, i);
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// What drift detection found for one object.
#[derive(Clone, Debug)]
pub struct Diff {
    pub object: ObjectRef,
    pub kind: DiffKind,
    /// The object as the release wants it.
    pub desired: Value,
    /// For [`DiffKind::Update`]: the patch from the live object to the desired state.
    pub patch: Vec<Op>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffKind {
    /// Unchanged.
    None,
    /// Missing in the cluster.
    Create,
    /// Different in the cluster.
    Update,
    /// Left out of drift detection.
    Exclude,
}

impl Diff {
    /// `Kind/namespace/name` (`Kind/name` for cluster-scoped objects), as Flux names it.
    pub fn resource_name(&self) -> String {
        if self.object.namespace.is_empty() {
            format!("{}/{}", self.object.kind, self.object.name)
        } else {
            format!(
                "{}/{}/{}",
                self.object.kind, self.object.namespace, self.object.name
            )
        }
    }
}

/// Whether any object was removed or changed.
pub fn has_changes(set: &[Diff]) -> bool {
    set.iter()
        .any(|d| matches!(d.kind, DiffKind::Create | DiffKind::Update))
}

/// Flux's `SummarizeDiffSet`: one line per removed, changed or excluded object.
pub fn summarize(set: &[Diff]) -> String {
    let mut lines = Vec::new();
    for d in set {
        let name = d.resource_name();
        match d.kind {
            DiffKind::Create => lines.push(format!("{name} removed")),
            DiffKind::Exclude => lines.push(format!("{name} excluded")),
            DiffKind::Update => {
                let count = |k: OpKind| d.patch.iter().filter(|o| o.op == k).count();
                lines.push(format!(
                    "{name} changed ({} additions, {} changes, {} removals)",
                    count(OpKind::Add),
                    count(OpKind::Replace),
                    count(OpKind::Remove)
                ));
            }
            DiffKind::None => {}
        }
    }
    lines.join("\n")
}

/// Flux's `SummarizeDiffSetBrief`: `removed: N, changed: N, excluded: N`.
pub fn summarize_brief(set: &[Diff]) -> String {
    let n = |k: DiffKind| set.iter().filter(|d| d.kind == k).count();
    format!(
        "removed: {}, changed: {}, excluded: {}",
        n(DiffKind::Create),
        n(DiffKind::Update),
        n(DiffKind::Exclude)
    )
}

fn disabled_in(obj: &Value) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        obj.pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(DRIFT_DETECTION_KEY))
            .and_then(Value::as_str)
            == Some(DISABLED_VALUE)
    })
}

/// The diff of one live object against the dry-run result, ignored paths left out: the
/// metadata's names, labels and annotations (additions and changes only), then everything
/// but metadata and status.
pub fn diff_objects(live: &Value, dry_run: &Value, ignore: &[&str]) -> Vec<Op> {
    let (mut live, mut dry_run) = (live.clone(), dry_run.clone());
    sluice_apply::ignore::strip(&mut live, ignore);
    sluice_apply::ignore::strip(&mut dry_run, ignore);
    let meta = |v: &Value| {
        let mut m = Map::new();
        for key in ["name", "annotations", "labels"] {
            if let Some(x) = v.pointer(&format!("/metadata/{key}")) {
                m.insert(key.into(), x.clone());
            }
        }
        let mut out = Map::new();
        out.insert("metadata".into(), Value::Object(m));
        Value::Object(out)
    };
    let mut patch: Vec<Op> = compare(&meta(&live), &meta(&dry_run))
        .into_iter()
        .filter(|o| o.op != OpKind::Remove)
        .collect();
    let rest = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    patch.extend(compare(&rest(&live), &rest(&dry_run)));
    patch
}

/// Compares each object of a release with the cluster. `objects` are the manifest's objects
/// as applied (Helm's metadata, owner labels); `rules` the compiled ignore rules. Errors of
/// single objects are collected and returned beside what could be compared (Flux's graceful
/// diff).
pub async fn detect(
    applier: &Applier,
    objects: Vec<Value>,
    rules: &[IgnoreRule],
) -> (Vec<Diff>, Vec<String>) {
    let mut set = Vec::new();
    let mut errors = Vec::new();
    for desired in objects {
        let object = match crate::actions::object_ref(&desired) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let entry = |kind, patch| Diff {
            object: object.clone(),
            kind,
            desired: desired.clone(),
            patch,
        };
        let root_ignored = rules
            .iter()
            .any(|r| r.ignores_root() && r.matches(&desired));
        if disabled_in(&desired) || root_ignored {
            set.push(entry(DiffKind::Exclude, Vec::new()));
            continue;
        }
        let live = match applier.get(&object).await {
            Ok(l) => l,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        if live.as_ref().is_some_and(disabled_in) {
            set.push(entry(DiffKind::Exclude, Vec::new()));
            continue;
        }
        let Some(live) = live else {
            set.push(entry(DiffKind::Create, Vec::new()));
            continue;
        };
        let dry_run = match dry_run(applier, &object, &desired).await {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let paths = sluice_apply::ignore::paths_for(rules, &desired);
        let patch = diff_objects(&live, &dry_run, &paths);
        if patch.is_empty() {
            set.push(entry(DiffKind::None, Vec::new()));
        } else {
            set.push(entry(DiffKind::Update, patch));
        }
    }
    (set, errors)
}

async fn api_for(
    applier: &Applier,
    object: &ObjectRef,
) -> Result<kube::Api<DynamicObject>, String> {
    let (res, scope) = applier.resolve(object).await.map_err(|e| e.to_string())?;
    let client = applier.client().clone();
    Ok(match scope {
        Scope::Namespaced => kube::Api::namespaced_with(client, &object.namespace, &res),
        Scope::Cluster => kube::Api::all_with(client, &res),
    })
}

async fn dry_run(applier: &Applier, object: &ObjectRef, desired: &Value) -> Result<Value, String> {
    let api = api_for(applier, object).await?;
    let params = PatchParams::apply(applier.field_manager())
        .force()
        .dry_run();
    let out = api
        .patch(&object.name, &params, &Patch::Apply(desired))
        .await
        .map_err(|e| format!("{} dry-run failed: {e}", object.subject()))?;
    serde_json::to_value(out).map_err(|e| e.to_string())
}

/// The objects of a release's manifest as they were applied: Helm's ownership metadata, the
/// HelmRelease's labels and common metadata.
pub fn desired_objects(objects: Vec<Value>, opts: &ApplyOptions) -> Result<Vec<Value>, String> {
    objects
        .into_iter()
        .map(|o| sluice_apply::prepared(o, opts).map_err(|e| e.to_string()))
        .collect()
}

/// What a correction did.
#[derive(Debug, Default)]
pub struct Corrected {
    /// `Kind/ns/name created|configured`, one per corrected object.
    pub entries: Vec<String>,
    pub errors: Vec<String>,
}

/// Corrects drift as helm-controller's `ApplyDiff`: removed objects are created, changed ones
/// get their patch (JSON patch), both with helm-controller's field manager; creations first,
/// each group in Flux's apply order.
pub async fn correct(applier: &Applier, set: &[Diff]) -> Corrected {
    let mut out = Corrected::default();
    let mut creates: Vec<&Diff> = set.iter().filter(|d| d.kind == DiffKind::Create).collect();
    let mut updates: Vec<&Diff> = set.iter().filter(|d| d.kind == DiffKind::Update).collect();
    let order = |a: &&Diff, b: &&Diff| {
        sluice_apply::flux_order(&a.object, &b.object)
            .then_with(|| a.object.namespace.cmp(&b.object.namespace))
            .then_with(|| a.object.name.cmp(&b.object.name))
    };
    creates.sort_by(order);
    updates.sort_by(order);
    for d in creates {
        let result = async {
            let api = api_for(applier, &d.object).await?;
            let obj: DynamicObject =
                serde_json::from_value(d.desired.clone()).map_err(|e| e.to_string())?;
            let params = PostParams {
                field_manager: Some(applier.field_manager().to_owned()),
                ..Default::default()
            };
            api.create(&params, &obj).await.map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(_) => out.entries.push(format!("{} created", d.resource_name())),
            Err(e) => out
                .errors
                .push(format!("{} creation failure: {e}", d.resource_name())),
        }
    }
    for d in updates {
        let result = async {
            let api = api_for(applier, &d.object).await?;
            let ops = Value::Array(d.patch.iter().map(Op::to_json).collect());
            let patch: json_patch::Patch =
                serde_json::from_value(ops).map_err(|e| e.to_string())?;
            let params = PatchParams {
                field_manager: Some(applier.field_manager().to_owned()),
                ..Default::default()
            };
            api.patch(&d.object.name, &params, &Patch::<()>::Json(patch))
                .await
                .map_err(|e| mask(&d.object, e))
        }
        .await;
        match result {
            Ok(_) => out
                .entries
                .push(format!("{} configured", d.resource_name())),
            Err(e) => out
                .errors
                .push(format!("{} patch failure: {e}", d.resource_name())),
        }
    }
    out
}

/// A failed patch's error; for a Secret the API server's "invalid" message may quote the
/// data, so only its last clause is kept (as Flux masks it).
fn mask(object: &ObjectRef, e: kube::Error) -> String {
    let text = e.to_string();
    let invalid = matches!(&e, kube::Error::Api(s) if s.code == 422);
    if object.kind == "Secret" && object.group.is_empty() && invalid {
        return text
            .rsplit_once(':')
            .map_or(text.clone(), |(_, last)| last.trim().to_owned());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(src: Value, tgt: Value) -> Vec<Value> {
        compare(&src, &tgt).iter().map(Op::to_json).collect()
    }

    #[test]
    fn scalars_objects_and_arrays_as_jsondiff() {
        // A long unchanged field keeps each level from being replaced whole (below).
        let pad = "p".repeat(60);
        assert_eq!(
            ops(
                json!({"a": 1, "b": "x", "pad": pad}),
                json!({"a": 2, "b": "x", "c": true, "pad": pad})
            ),
            [
                json!({"op": "replace", "path": "/a", "value": 2}),
                json!({"op": "add", "path": "/c", "value": true})
            ]
        );
        // Surplus elements are removed at the first surplus index, missing ones appended.
        let (x, y, z) = ("x".repeat(30), "y".repeat(30), "z".repeat(30));
        assert_eq!(
            ops(
                json!({"l": [x, y, z], "pad": pad}),
                json!({"l": [x], "pad": pad})
            ),
            [
                json!({"op": "remove", "path": "/l/1"}),
                json!({"op": "remove", "path": "/l/1"})
            ]
        );
        assert_eq!(
            ops(
                json!({"l": [x], "pad": pad}),
                json!({"l": [x, y], "pad": pad})
            ),
            [json!({"op": "add", "path": "/l/-", "value": y})]
        );
        // Pointer tokens are escaped.
        assert_eq!(
            ops(
                json!({"a/b": {"c~": 1, "pad": pad}, "pad": pad}),
                json!({"a/b": {"c~": "1", "pad": pad}, "pad": pad})
            ),
            [json!({"op": "replace", "path": "/a~1b/c~0", "value": "1"})]
        );
        // Go's numbers are float64: 1 and 1.0 are equal.
        assert!(ops(json!({"a": 1}), json!({"a": 1.0})).is_empty());
        // Type changes replace; at the root they add.
        assert_eq!(
            ops(
                json!({"a": [1], "pad": pad}),
                json!({"a": {"b": 1}, "pad": pad})
            ),
            [json!({"op": "replace", "path": "/a", "value": {"b": 1}})]
        );
        assert_eq!(
            ops(json!([1]), json!({"b": 1})),
            [json!({"op": "add", "path": "", "value": {"b": 1}})]
        );
    }

    /// Every case of `tests/data/jsondiff-cases.json` gives the patch the Go library made
    /// (`scripts/jsondiff-goldens` regenerates them).
    #[test]
    fn same_patches_as_wi2l_jsondiff() {
        let cases: Vec<(Value, Value)> =
            serde_json::from_str(include_str!("../tests/data/jsondiff-cases.json")).unwrap();
        let goldens: Vec<Value> =
            serde_json::from_str(include_str!("../tests/data/jsondiff-goldens.json")).unwrap();
        assert_eq!(cases.len(), goldens.len());
        for (i, ((src, tgt), golden)) in cases.iter().zip(&goldens).enumerate() {
            let ours = Value::Array(compare(src, tgt).iter().map(Op::to_json).collect());
            assert_eq!(&ours, golden, "case {i}: {src} -> {tgt}");
        }
    }

    #[test]
    fn small_targets_are_replaced_whole() {
        // Two operations (38 + 33 bytes and a comma) are longer than replacing the root with
        // its 24-byte target (59 bytes).
        assert_eq!(
            ops(
                json!({"a": 1, "b": "x"}),
                json!({"a": 2, "b": "x", "c": true})
            ),
            [json!({"op": "replace", "path": "", "value": {"a": 2, "b": "x", "c": true}})]
        );
        assert_eq!(
            ops(
                json!({"l": [1, 2, 3], "k": "v"}),
                json!({"l": [1], "k": "v"})
            ),
            [json!({"op": "replace", "path": "/l", "value": [1]})]
        );
    }

    #[test]
    fn rationalize_replaces_a_subtree_when_shorter() {
        // Three changed keys under /s cost more than replacing {"a":9,"b":9,"c":9} whole.
        assert_eq!(
            ops(
                json!({"s": {"a": 1, "b": 1, "c": 1}}),
                json!({"s": {"a": 9, "b": 9, "c": 9}})
            ),
            [json!({"op": "replace", "path": "/s", "value": {"a": 9, "b": 9, "c": 9}})]
        );
        // One change deep inside a large object stays one operation.
        assert_eq!(
            ops(
                json!({"s": {"a": 1, "long": "x".repeat(100)}}),
                json!({"s": {"a": 2, "long": "x".repeat(100)}})
            ),
            [json!({"op": "replace", "path": "/s/a", "value": 2})]
        );
    }

    #[test]
    fn find_key_and_index_read_compact_json() {
        let doc = r#"{"a":{"x":[1,"]",{"y":"}"}]},"b\"c":true,"d":-1.5e3}"#;
        assert_eq!(find_key(doc, "a"), r#"{"x":[1,"]",{"y":"}"}]}"#);
        assert_eq!(find_key(doc, "b\"c"), "true");
        assert_eq!(find_key(doc, "d"), "-1.5e3");
        assert_eq!(find_key(doc, "z"), "");
        assert_eq!(find_index(r#"[1,"a,b",{"c":[2]}]"#, 2), r#"{"c":[2]}"#);
    }

    #[test]
    fn object_diff_leaves_out_status_ignored_paths_and_foreign_labels() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "d", "added-by-someone": "x"},
                         "resourceVersion": "5",
                         "annotations": {"a": "1", "meta.helm.sh/release-name": "a-release"}},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}},
            "status": {"readyReplicas": 5},
        });
        let dry_run = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "d"}, "resourceVersion": "5",
                         "annotations": {"a": "2", "meta.helm.sh/release-name": "a-release"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 1},
        });
        let patch: Vec<Value> = diff_objects(&live, &dry_run, &["/spec/replicas"])
            .iter()
            .map(Op::to_json)
            .collect();
        assert_eq!(
            patch,
            [
                json!({"op": "replace", "path": "/metadata/annotations/a", "value": "2"}),
                json!({"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1"}),
            ]
        );
    }

    #[test]
    fn summaries_as_flux_writes_them() {
        let entry = |kind, ns: &str, patch| Diff {
            object: ObjectRef::new("apps", "v1", "Deployment", ns, "web"),
            kind,
            desired: Value::Null,
            patch,
        };
        let op = |op| Op {
            op,
            path: "/x".into(),
            value: None,
            value_len: 0,
        };
        let set = vec![
            entry(DiffKind::Create, "apps", vec![]),
            entry(
                DiffKind::Update,
                "",
                vec![op(OpKind::Add), op(OpKind::Replace), op(OpKind::Replace)],
            ),
            entry(DiffKind::Exclude, "apps", vec![]),
            entry(DiffKind::None, "apps", vec![]),
        ];
        assert_eq!(
            summarize(&set),
            "Deployment/apps/web removed\nDeployment/web changed (1 additions, 2 changes, 0 removals)\nDeployment/apps/web excluded"
        );
        assert_eq!(summarize_brief(&set), "removed: 1, changed: 1, excluded: 1");
        assert!(has_changes(&set));
        assert!(!has_changes(&set[2..]));
    }
}
