//! Helm's `releaseutil.SortManifests`: rendered files split into documents
//! (`^---` lines), each document's head read (`apiVersion`, `kind`,
//! `metadata.name`, `metadata.annotations`), hooks (`helm.sh/hook`)
//! separated from manifests, both stably sorted by kind in install order.

use std::collections::BTreeMap;

use sluice_kustomize::yaml::Value as Y;

/// A rendered document that is not a hook.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The template it came from (`chart/templates/x.yaml`).
    pub name: String,
    /// The document as rendered (leading whitespace removed).
    pub content: String,
    pub api_version: String,
    pub kind: String,
}

/// A rendered document with a `helm.sh/hook` annotation: Helm's
/// `release.Hook`, not yet run.
pub use crate::release::Hook;

/// Helm's install order of kinds; others follow, by name.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
];

/// Helm's `SplitManifests`: documents separated by lines starting with
/// `---` (and spaces or tabs after it), blank ones dropped, leading
/// whitespace trimmed, in order.
pub fn split_manifests(big: &str) -> Vec<String> {
    split_ranges(big)
        .into_iter()
        .map(|r| big[r].to_string())
        .collect()
}

/// Where [`split_manifests`]' documents are in `big`.
fn split_ranges(big: &str) -> Vec<std::ops::Range<usize>> {
    let offset = big.len() - big.trim_start().len();
    let big = &big[offset..];
    let mut docs = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    let bytes = big.as_bytes();
    while line_start <= big.len() {
        if big[line_start..].starts_with("---") {
            docs.push(&big[start..line_start]);
            let mut j = line_start + 3;
            while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                j += 1;
            }
            start = j;
        }
        match big[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => break,
        }
    }
    docs.push(&big[start..]);
    docs.into_iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let d = d.trim_start();
            // `d` is a slice of `big`: its place is its address's distance.
            let at = offset + (d.as_ptr() as usize - big.as_ptr() as usize);
            at..at + d.len()
        })
        .collect()
}

pub(crate) struct Head {
    api_version: String,
    kind: String,
    name: String,
    annotations: Option<BTreeMap<String, String>>,
}

fn json_kind(v: &Y) -> &'static str {
    match v {
        Y::Null => "null",
        Y::Bool(_) => "bool",
        Y::Int(_) | Y::Float(_) => "number",
        Y::Str(_) => "string",
        Y::Seq(_) => "array",
        Y::Map(_) => "object",
    }
}

/// What `SimpleHead` reads of a document.
const HEAD_KEYS: crate::yaml::HeadKeys<'static> = &[
    ("apiVersion", None),
    ("kind", None),
    ("metadata", Some(&["name", "annotations"])),
];

/// `yaml.Unmarshal` into Helm's `SimpleHead`: the whole document is read,
/// only its head built.
fn head(doc: &str) -> Result<Head, String> {
    let v = crate::yaml::parse_first_head(doc, HEAD_KEYS)
        .map_err(|e| format!("error converting YAML to JSON: {e}"))?;
    let unmarshal = |what: &Y, field: &str, want: &str| {
        format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go struct field {field} of type {want}",
            json_kind(what)
        )
    };
    let mut h = Head {
        api_version: String::new(),
        kind: String::new(),
        name: String::new(),
        annotations: None,
    };
    let m = match &v {
        Y::Null => return Ok(h),
        Y::Map(m) => m,
        other => {
            return Err(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type util.SimpleHead",
                json_kind(other)
            ));
        }
    };
    // sigs.k8s.io/yaml turns numbers and booleans into their text for a
    // string field (`name: off` is "false").
    let string = |v: Option<&Y>, field: &str| -> Result<String, String> {
        match v {
            None => Ok(String::new()),
            Some(v) => crate::chart::go_string(v, "SimpleHead", field)
                .map(Option::unwrap_or_default)
                .map_err(|e| format!("error unmarshaling JSON: while decoding JSON: {e}")),
        }
    };
    h.api_version = string(m.get("apiVersion"), "apiVersion")?;
    h.kind = string(m.get("kind"), "kind")?;
    match m.get("metadata") {
        None | Some(Y::Null) => {}
        Some(Y::Map(md)) => {
            h.name = string(md.get("name"), "metadata.name")?;
            match md.get("annotations") {
                None | Some(Y::Null) => {}
                Some(Y::Map(a)) => {
                    let mut out = BTreeMap::new();
                    for (k, v) in a.iter() {
                        out.insert(k.to_string(), string(Some(v), "metadata.annotations")?);
                    }
                    h.annotations = Some(out);
                }
                Some(other) => {
                    return Err(unmarshal(
                        other,
                        "SimpleHead.metadata.annotations",
                        "map[string]string",
                    ));
                }
            }
        }
        Some(other) => {
            return Err(unmarshal(
                other,
                "SimpleHead.metadata",
                "struct { Name string \"json:\\\"name\\\"\"; Annotations map[string]string \"json:\\\"annotations\\\"\" }",
            ));
        }
    }
    Ok(h)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_lowercase()).collect()
}

/// Whether `sort_manifests` reads a rendered file at all: partials and
/// blank files have no documents.
fn has_documents(path: &str, content: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    !(base.starts_with('_') || content.trim().is_empty())
}

/// Where a rendered file's documents are in it, each with its head (or why
/// it could not be read). Places, not copies: the copies are made when the
/// documents are sorted, after the parsed templates are gone (made while
/// later templates still executed, they raised a release's peak memory).
pub(crate) type ReadDocs = Vec<(std::ops::Range<usize>, Result<Head, String>)>;

/// Splits one rendered file into documents and reads their heads: what
/// [`sort_manifests`] does to each file, for a caller that reads files as
/// they are rendered.
pub(crate) fn read_documents(path: &str, content: &str) -> ReadDocs {
    if !has_documents(path, content) {
        return Vec::new();
    }
    split_ranges(content)
        .into_iter()
        .map(|r| {
            let h = head(&content[r.clone()]);
            (r, h)
        })
        .collect()
}

/// Sorts rendered files (by path) into hooks and manifests, as Helm does.
/// The heads are read on up to `threads` threads.
pub(crate) fn sort_manifests(
    files: &BTreeMap<String, String>,
    threads: usize,
) -> Result<(Vec<Hook>, Vec<Manifest>), String> {
    let mut docs = Vec::new();
    for (path, content) in files {
        if !has_documents(path, content) {
            continue;
        }
        for doc in split_manifests(content) {
            docs.push((path, doc));
        }
    }
    let heads = crate::par::map(&docs, threads, |(_, doc)| head(doc));
    sort_read(
        docs.into_iter()
            .zip(heads)
            .map(|((path, doc), h)| (path.as_str(), doc, h)),
    )
}

/// [`sort_manifests`] of documents already read, in the order of their
/// files' paths and, within a file, as they appear.
pub(crate) fn sort_read<'a>(
    docs: impl IntoIterator<Item = (&'a str, String, Result<Head, String>)>,
) -> Result<(Vec<Hook>, Vec<Manifest>), String> {
    let mut hooks = Vec::new();
    let mut generic = Vec::new();
    for (path, doc, h) in docs {
        let h = h.map_err(|e| format!("YAML parse error on {path}: {e}"))?;
        let hook_types = h
            .annotations
            .as_ref()
            .filter(|a| !a.is_empty())
            .and_then(|a| a.get("helm.sh/hook"));
        let Some(hook_types) = hook_types else {
            generic.push(Manifest {
                name: path.to_string(),
                content: doc,
                api_version: h.api_version,
                kind: h.kind,
            });
            continue;
        };
        let mut events = Vec::new();
        let mut unknown = false;
        for t in split_list(hook_types) {
            let t = if t == "test-success" {
                "test".to_string()
            } else {
                t
            };
            if !HOOK_EVENTS.contains(&t.as_str()) {
                unknown = true;
                break;
            }
            events.push(t);
        }
        if unknown {
            continue;
        }
        let ann = h.annotations.as_ref();
        let list = |key: &str| {
            ann.and_then(|a| a.get(key))
                .map(|v| split_list(v))
                .unwrap_or_default()
        };
        hooks.push(Hook {
            name: h.name,
            kind: h.kind,
            path: path.to_string(),
            manifest: doc,
            events,
            weight: ann
                .and_then(|a| a.get("helm.sh/hook-weight"))
                .and_then(|w| go_atoi(w))
                .unwrap_or(0),
            delete_policies: list("helm.sh/hook-delete-policy"),
            output_log_policies: list("helm.sh/hook-output-log-policy"),
            last_run: Default::default(),
        });
    }
    generic.sort_by(|a, b| kind_order(&a.kind, &b.kind));
    hooks.sort_by(|a, b| kind_order(&a.kind, &b.kind));
    Ok((hooks, generic))
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits only.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Helm's `lessByKind` as an ordering (used by a stable sort).
fn kind_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let pos = |k: &str| INSTALL_ORDER.iter().position(|x| *x == k);
    match (pos(a), pos(b)) {
        (None, None) => a.cmp(b),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Go's `filepath.Match` on `/`-separated paths (`--show-only`).
pub fn path_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => {
                let rest = &p[1..];
                for i in 0..=s.len() {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if i < s.len() && s[i] == '/' {
                        break;
                    }
                }
                false
            }
            Some('?') => !s.is_empty() && s[0] != '/' && go(&p[1..], &s[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return false;
                };
                if s.is_empty() || s[0] == '/' {
                    return false;
                }
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= s[0] && s[0] <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == s[0];
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &s[1..])
            }
            Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && go(&p[2..], &s[1..]),
            Some(c) => !s.is_empty() && s[0] == *c && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_keeps_trailing_blank_lines_and_drops_empty_documents() {
        let docs = split_manifests("\n---\na: 1\n\n---   \n\n---\n# c\nb: 2\n");
        assert_eq!(
            docs,
            vec!["a: 1\n\n".to_string(), "# c\nb: 2\n".to_string()]
        );
        assert_eq!(split_manifests("a: 1\n--- x\n"), vec!["a: 1\n", "x\n"]);
    }

    #[test]
    fn hooks_are_separated_and_kinds_ordered() {
        let mut files = BTreeMap::new();
        files.insert(
            "c/templates/a.yaml".to_string(),
            "kind: Deployment\n---\nkind: Service\n---\nkind: Job\nmetadata:\n  name: j\n  annotations:\n    helm.sh/hook: pre-install, post-upgrade\n    helm.sh/hook-weight: \"-5\"\n---\nkind: Foo\n---\nkind: Bar\n".to_string(),
        );
        let (hooks, manifests) = sort_manifests(&files, 2).unwrap();
        let kinds: Vec<&str> = manifests.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["Service", "Deployment", "Bar", "Foo"]);
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].events, ["pre-install", "post-upgrade"]);
        assert_eq!(hooks[0].weight, -5);
    }

    #[test]
    fn bad_heads_name_the_template() {
        let mut files = BTreeMap::new();
        files.insert("c/templates/a.yaml".to_string(), "- a\n".to_string());
        let e = sort_manifests(&files, 2).unwrap_err();
        assert!(
            e.starts_with("YAML parse error on c/templates/a.yaml:"),
            "{e}"
        );
    }

    #[test]
    fn show_only_patterns_match_as_filepath_match() {
        assert!(path_match("templates/*.yaml", "templates/a.yaml"));
        assert!(!path_match("templates/*.yaml", "templates/x/a.yaml"));
        assert!(path_match(
            "charts/sub/templates/a.yaml",
            "charts/sub/templates/a.yaml"
        ));
    }
}
