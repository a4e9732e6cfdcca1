//! Pure transformations: normalizing rendered objects before apply (Flux's `normalize`
//! package), drift detection between the live object and the dry-run result (Flux's
//! `hasDrifted`), and the metadata cleanup patch (Flux's `cleanupMetadata`).

use serde_json::{Map, Value, json};

use crate::object::ObjectRef;

/// Normalizes a rendered object as Flux does before applying it:
/// - drops `metadata.creationTimestamp` and, except for CRDs, `status`;
/// - defaults the `protocol` of container ports (Pods and workload templates) and Service
///   ports to `TCP` (server-side apply keys these lists by port and protocol);
/// - moves a Secret's `stringData` into `data` (base64).
pub(crate) fn normalize(obj: &mut Map<String, Value>, r: &ObjectRef) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
    }
    if !r.is_crd() {
        obj.remove("status");
    }
    let pod_spec_path: Option<&[&str]> = match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => Some(&["spec"]),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
            Some(&["spec", "template", "spec"])
        }
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    };
    if let Some(path) = pod_spec_path
        && let Some(containers) = get_path_mut(obj, path)
            .and_then(|spec| spec.get_mut("containers"))
            .and_then(Value::as_array_mut)
    {
        for container in containers {
            if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                default_protocol(ports);
            }
        }
    }
    if r.group.is_empty()
        && r.kind == "Service"
        && let Some(ports) = get_path_mut(obj, &["spec", "ports"]).and_then(Value::as_array_mut)
    {
        default_protocol(ports);
    }
    if r.group.is_empty() && r.kind == "Secret" {
        normalize_secret(obj);
    }
}

fn get_path_mut<'a>(obj: &'a mut Map<String, Value>, path: &[&str]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = obj.get_mut(*first)?;
    for key in rest {
        cur = cur.get_mut(*key)?;
    }
    Some(cur)
}

fn default_protocol(ports: &mut [Value]) {
    for port in ports {
        if let Some(port) = port.as_object_mut() {
            let missing = port
                .get("protocol")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing {
                port.insert("protocol".into(), Value::String("TCP".into()));
            }
        }
    }
}

fn normalize_secret(obj: &mut Map<String, Value>) {
    let Some(Value::Object(string_data)) = obj.remove("stringData") else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    let data = obj
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            let text = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            data.insert(k, Value::String(base64(text.as_bytes())));
        }
    }
}

/// Standard base64 with padding.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Flux's `hasDrifted`: whether the dry-run result differs from the live object in labels,
/// annotations or anything outside `metadata` and `status`.
pub(crate) fn has_drifted(live: &Value, dry_run: &Value) -> bool {
    let rv = dry_run
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if rv.is_empty() {
        return true;
    }
    for field in ["labels", "annotations"] {
        let a = live.get("metadata").and_then(|m| m.get(field));
        let b = dry_run.get("metadata").and_then(|m| m.get(field));
        if !semantic_eq(a.unwrap_or(&Value::Null), b.unwrap_or(&Value::Null)) {
            return true;
        }
    }
    !semantic_eq(&without_meta(live), &without_meta(dry_run))
}

/// The field paths in which the dry-run result differs from the live object, as
/// [`has_drifted`] sees them (labels, annotations, everything outside `metadata` and
/// `status`), at most `limit`. Values are never included (Secrets).
pub(crate) fn drift_paths(live: &Value, dry_run: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["labels", "annotations"] {
        let a = live.get("metadata").and_then(|m| m.get(field));
        let b = dry_run.get("metadata").and_then(|m| m.get(field));
        let mut path = format!("metadata.{field}");
        diff_into(
            a.unwrap_or(&Value::Null),
            b.unwrap_or(&Value::Null),
            &mut path,
            &mut out,
            limit,
        );
    }
    let mut path = String::new();
    diff_into(
        &without_meta(live),
        &without_meta(dry_run),
        &mut path,
        &mut out,
        limit,
    );
    out
}

fn diff_into(a: &Value, b: &Value, path: &mut String, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || semantic_eq(a, b) {
        return;
    }
    let len = path.len();
    // A missing map reads as an empty one: report its keys.
    let empty = Value::Object(Map::new());
    let (a, b) = match (a, b) {
        (Value::Null, Value::Object(_)) => (&empty, b),
        (Value::Object(_), Value::Null) => (a, &empty),
        _ => (a, b),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x
                .keys()
                .chain(y.keys().filter(|k| !x.contains_key(k.as_str())));
            for key in keys {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                diff_into(
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                    path,
                    out,
                    limit,
                );
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                path.push_str(&format!("[{i}]"));
                diff_into(v, w, path, out, limit);
                path.truncate(len);
            }
        }
        _ => out.push(if path.is_empty() {
            ".".to_owned()
        } else {
            path.clone()
        }),
    }
}

fn without_meta(obj: &Value) -> Value {
    match obj {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "metadata" && k.as_str() != "status")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Equality as apimachinery's `Semantic.DeepEqual` sees unstructured objects: empty maps and
/// lists equal null, and numbers compare by value.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| semantic_eq(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| semantic_eq(v, w))
        }
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q && x.is_f64() != y.is_f64())
        }
        (Value::Null, Value::Object(m)) | (Value::Object(m), Value::Null) => m.is_empty(),
        (Value::Null, Value::Array(l)) | (Value::Array(l), Value::Null) => l.is_empty(),
        _ => a == b,
    }
}

/// A field manager whose entries Flux takes over before applying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldManagerRef {
    /// Manager name prefix (`kubectl` matches `kubectl-client-side-apply`, `kubectl-edit`, ...).
    pub name: String,
    /// `Apply` or `Update`.
    pub operation: String,
}

impl FieldManagerRef {
    /// A manager prefix and operation.
    pub fn new(name: impl Into<String>, operation: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            operation: operation.into(),
        }
    }
}

/// The managers kustomize-controller takes over: what `kubectl apply --server-side`,
/// `kubectl apply`/`create`/`edit` and the pre-SSA controller wrote, plus the extra managers
/// (both operations) given.
pub(crate) fn cleanup_managers(field_manager: &str, extra: &[String]) -> Vec<FieldManagerRef> {
    let mut managers = vec![
        FieldManagerRef::new("kubectl", "Apply"),
        FieldManagerRef::new("kubectl", "Update"),
        FieldManagerRef::new("before-first-apply", "Update"),
        FieldManagerRef::new(field_manager, "Update"),
    ];
    for name in extra {
        managers.push(FieldManagerRef::new(name, "Apply"));
        managers.push(FieldManagerRef::new(name, "Update"));
    }
    managers
}

/// Annotations Flux removes from live objects: kubectl's last applied configuration and
/// Flux v1's checksums.
pub(crate) const CLEANUP_ANNOTATIONS: [&str; 3] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kustomize.toolkit.fluxcd.io/checksum",
    "fluxcd.io/sync-checksum",
];
/// Labels Flux removes from live objects (Flux v1's garbage collection mark).
pub(crate) const CLEANUP_LABELS: [&str; 1] = ["fluxcd.io/sync-gc-mark"];

/// The JSON merge patch that cleans up a live object's metadata as Flux does, or `None` when
/// there is nothing to clean: it removes [`CLEANUP_ANNOTATIONS`] and [`CLEANUP_LABELS`], and
/// hands the `managedFields` entries of `managers` over to `field_manager` (operation
/// `Apply`), merging their field sets into its own entry. Fields so taken over are then
/// removed by the next apply if the rendered object no longer sets them.
pub(crate) fn cleanup_patch(
    live: &Value,
    field_manager: &str,
    managers: &[FieldManagerRef],
) -> Option<Value> {
    let mut meta = Map::new();
    for (field, keys) in [
        ("annotations", &CLEANUP_ANNOTATIONS[..]),
        ("labels", &CLEANUP_LABELS[..]),
    ] {
        let present = crate::object::meta_map(live, field);
        let removals: Map<String, Value> = keys
            .iter()
            .filter(|k| present.is_some_and(|m| m.contains_key(**k)))
            .map(|k| ((*k).to_owned(), Value::Null))
            .collect();
        if !removals.is_empty() {
            meta.insert(field.to_owned(), Value::Object(removals));
        }
    }
    if let Some(entries) = replace_managers(live, field_manager, managers) {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
    if meta.is_empty() {
        None
    } else {
        Some(json!({ "metadata": meta }))
    }
}

fn str_field<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Flux's `PatchReplaceFieldsManagers`.
fn replace_managers(
    live: &Value,
    field_manager: &str,
    managers: &[FieldManagerRef],
) -> Option<Vec<Value>> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let own = entries.iter().rposition(|e| {
        str_field(e, "manager") == field_manager && str_field(e, "operation") == "Apply"
    });
    let mut merged: Option<Value> = own.map(|i| entries[i].clone());
    let mut out = Vec::with_capacity(entries.len());
    let mut edited = false;
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) == own {
            continue;
        }
        let matches = managers.iter().any(|m| {
            str_field(entry, "manager").starts_with(&m.name)
                && str_field(entry, "operation") == m.operation
                && str_field(entry, "subresource").is_empty()
        });
        if !matches {
            out.push(entry.clone());
            continue;
        }
        edited = true;
        match merged.as_mut() {
            None => {
                let mut renamed = entry.clone();
                if let Some(obj) = renamed.as_object_mut() {
                    obj.insert("manager".into(), Value::String(field_manager.into()));
                    obj.insert("operation".into(), Value::String("Apply".into()));
                }
                merged = Some(renamed);
            }
            Some(target) => {
                if let Some(fields) = entry.get("fieldsV1")
                    && let Some(obj) = target.as_object_mut()
                {
                    let into = obj.entry("fieldsV1").or_insert_with(|| json!({}));
                    merge_field_sets(into, fields);
                }
            }
        }
    }
    if !edited {
        return None;
    }
    out.extend(merged);
    Some(out)
}

/// The union of two `fieldsV1` tries (nested objects whose leaves are `{}`).
fn merge_field_sets(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) => merge_field_sets(existing, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) if into.is_null() => *into = from.clone(),
        _ => {}
    }
}

/// Whether an API error message reports a change of an immutable field (kubectl's and
/// Flux's patterns, plus the wording of Service's `clusterIP`).
pub(crate) fn is_immutable_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("is immutable")
        || m.contains("immutable field")
        || m.contains("field is immutable")
        || m.contains("may not change once set")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(api_version: &str, kind: &str) -> ObjectRef {
        ObjectRef::from_api_version(api_version, kind, "ns", "x")
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn normalizes_deployments_services_and_secrets() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "creationTimestamp": null},
            "spec": {"template": {"spec": {"containers": [
                {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}
            ]}}},
            "status": {"replicas": 1}});
        normalize(d.as_object_mut().unwrap(), &r("apps/v1", "Deployment"));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}])
        );
        assert!(d.get("status").is_none());
        assert!(d["metadata"].get("creationTimestamp").is_none());

        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        normalize(svc.as_object_mut().unwrap(), &r("v1", "Service"));
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");

        let mut secret = json!({"data": {"a": "YQ=="}, "stringData": {"b": "bar", "a": "x"}});
        normalize(secret.as_object_mut().unwrap(), &r("v1", "Secret"));
        assert_eq!(secret, json!({"data": {"a": "eA==", "b": "YmFy"}}));

        let mut crd = json!({"status": {"x": 1}});
        normalize(
            crd.as_object_mut().unwrap(),
            &r("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        );
        assert!(crd.get("status").is_some());
    }

    #[test]
    fn drift_ignores_metadata_and_status() {
        let live = json!({"metadata": {"name": "x", "resourceVersion": "1", "generation": 1,
                "managedFields": [{"manager": "a"}], "labels": {"a": "1"}},
            "data": {"k": "v"}, "status": {"phase": "x"}});
        let same = json!({"metadata": {"name": "x", "resourceVersion": "2", "generation": 2,
                "managedFields": [{"manager": "b"}], "labels": {"a": "1"}, "annotations": {}},
            "data": {"k": "v"}, "status": {"phase": "y"}});
        assert!(!has_drifted(&live, &same));
        let mut changed = same.clone();
        changed["data"]["k"] = json!("w");
        assert!(has_drifted(&live, &changed));
        let mut relabeled = same.clone();
        relabeled["metadata"]["labels"]["b"] = json!("2");
        assert!(has_drifted(&live, &relabeled));
        let mut created = same;
        created["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        assert!(has_drifted(&live, &created));
    }

    #[test]
    fn drift_paths_name_the_fields() {
        let live = json!({"metadata": {"resourceVersion": "1", "labels": {"a": "1"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "c", "image": "x:1"}]}}},
            "data": {"k": "secret"}, "status": {"x": 1}});
        let dry = json!({"metadata": {"resourceVersion": "2", "labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "x:2"}]}}},
            "data": {"k": "other", "n": "new"}, "status": {"x": 2}});
        assert_eq!(
            drift_paths(&live, &dry, 10),
            [
                "metadata.labels.b",
                "spec.replicas",
                "spec.template.spec.containers[0].image",
                "data.k",
                "data.n",
            ]
        );
        assert_eq!(drift_paths(&live, &dry, 2).len(), 2);
        assert!(drift_paths(&live, &live, 10).is_empty());
        let unlabeled = json!({"metadata": {}});
        let labeled = json!({"metadata": {"labels": {"a": "1"}}});
        assert_eq!(drift_paths(&unlabeled, &labeled, 10), ["metadata.labels.a"]);
    }

    #[test]
    fn semantic_equality() {
        assert!(semantic_eq(&json!(1), &json!(1.0)));
        assert!(!semantic_eq(&json!(1), &json!(2)));
        assert!(semantic_eq(&json!(null), &json!({})));
        assert!(!semantic_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn cleanup_takes_over_kubectl_fields() {
        let live = json!({"metadata": {
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "1"},
        "labels": {"fluxcd.io/sync-gc-mark": "x"},
        "managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {}}},
            {"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {}}}
        ]}});
        let managers = cleanup_managers("kustomize-controller", &[]);
        let patch = cleanup_patch(&live, "kustomize-controller", &managers).unwrap();
        assert_eq!(
            patch["metadata"]["annotations"],
            json!({"kubectl.kubernetes.io/last-applied-configuration": null})
        );
        assert_eq!(
            patch["metadata"]["labels"],
            json!({"fluxcd.io/sync-gc-mark": null})
        );
        let entries = patch["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["manager"], "kube-controller-manager");
        assert_eq!(entries[1]["manager"], "kubectl");
        assert_eq!(entries[2]["manager"], "kustomize-controller");
        assert_eq!(entries[2]["operation"], "Apply");
        assert_eq!(
            entries[2]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        );
    }

    #[test]
    fn cleanup_renames_the_first_match_without_own_entry() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "before-first-apply", "operation": "Update", "fieldsV1": {"f:data": {"f:b": {}}}}
        ]}});
        let managers = cleanup_managers("kustomize-controller", &[]);
        let patch = cleanup_patch(&live, "kustomize-controller", &managers).unwrap();
        assert_eq!(
            patch["metadata"]["managedFields"],
            json!([{"manager": "kustomize-controller", "operation": "Apply",
                    "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}}])
        );
    }

    #[test]
    fn nothing_to_clean_is_none() {
        let live = json!({"metadata": {"annotations": {"a": "b"}, "managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply", "fieldsV1": {}},
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {}}
        ]}});
        let managers = cleanup_managers("kustomize-controller", &["helm".into()]);
        assert_eq!(
            cleanup_patch(&live, "kustomize-controller", &managers),
            None
        );
    }

    #[test]
    fn immutable_messages() {
        assert!(is_immutable_message(
            "Deployment.apps \"x\" is invalid: spec.selector: Invalid value: ...: field is immutable"
        ));
        assert!(is_immutable_message(
            "spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.1\"}: may not change once set"
        ));
        assert!(is_immutable_message(
            "Invalid value: \"x\": Value is immutable"
        ));
        assert!(!is_immutable_message(
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        ));
    }
}
