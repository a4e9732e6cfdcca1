//! A HelmRelease's values composed as Flux composes them (`valuesFrom`, then `values`): the
//! semantics of `ChartValuesFromReferences` in `fluxcd/pkg/chartutil`, which both Flux's
//! helm-controller and `flux build` use.
//!
//! In order, each reference's data key is either merged over the values so far (`MergeMaps`), or,
//! with `targetPath`, written at that path in Helm's `--set` syntax (typed as `--set` types
//! values, as a string when quoted, verbatim with `literal`); then the inline values are merged
//! over the result.
//!
//! One behaviour of Flux's comes from Go's maps being references: before each `targetPath` write
//! the inline values are merged into the result, which then shares their nested maps and lists,
//! so the write also lands in the inline values, and the final merge of the inline values does
//! not undo it (Flux's own test "target path precedence over all" depends on this). This module
//! keeps track of which parts of the result are shared with the inline values and reproduces
//! that, so a release composed here has the values, and so the config digest, that
//! helm-controller computes.
//!
//! No Kubernetes client here: the controller fetches the referenced objects ([`Fetched`]) and
//! this decides everything else.

use std::collections::BTreeMap;

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use crate::render::strvals::{self, Kind};
use crate::values::{ValuesError, merge_maps, parse_values_file};

/// One `spec.valuesFrom` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValuesReference {
    /// `ConfigMap` or `Secret` (anything else is refused, as Flux refuses it).
    pub kind: String,
    /// The object's name, in the HelmRelease's namespace.
    pub name: String,
    /// The data key: `values.yaml` when `None` or empty.
    pub values_key: Option<String>,
    /// Where the value goes, in `--set` path syntax; the whole values when `None` or empty.
    pub target_path: Option<String>,
    /// Whether a missing object or key is tolerated.
    pub optional: bool,
    /// With `target_path`: the value is a string, taken verbatim.
    pub literal: bool,
}

impl ValuesReference {
    /// The data key in effect.
    pub fn values_key(&self) -> &str {
        match self.values_key.as_deref() {
            Some(k) if !k.is_empty() => k,
            _ => "values.yaml",
        }
    }

    fn target_path(&self) -> Option<&str> {
        self.target_path.as_deref().filter(|p| !p.is_empty())
    }
}

/// The data of a ConfigMap or Secret, by key.
pub type Data = BTreeMap<String, Vec<u8>>;

/// What the controller found for a referenced object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The object's data (a ConfigMap's `data` as bytes, a Secret's `data` decoded).
    Found(Data),
    /// The API server said it does not exist; its message (`secrets "x" not found`).
    NotFound(String),
    /// Any other failure to get it; the message.
    Failed(String),
}

/// Why a reference could not be resolved (Flux's `ErrValuesReference`, same wording).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValuesFromError {
    /// A reference that could not be resolved.
    #[error("{}", reference_message(.reference, .namespace, .reason))]
    Reference {
        /// The reference.
        reference: Box<ValuesReference>,
        /// The namespace it was looked up in.
        namespace: String,
        /// Why, as Flux words it.
        reason: String,
    },
    /// An object could not be read for another reason than absence (Flux returns the client's
    /// error unwrapped).
    #[error("{0}")]
    Fetch(String),
}

impl ValuesFromError {
    /// Whether the cause is absence (a missing object or key), which a new ConfigMap or Secret
    /// can cure.
    pub fn is_missing(&self) -> bool {
        match self {
            Self::Reference { reason, .. } => {
                reason == RESOURCE_NOT_FOUND
                    || reason == KEY_NOT_FOUND
                    || reason.ends_with(" not found")
            }
            Self::Fetch(_) => false,
        }
    }
}

const RESOURCE_NOT_FOUND: &str = "resource not found";
const KEY_NOT_FOUND: &str = "key not found";
const UNSUPPORTED_KIND: &str = "unsupported values reference kind";

fn reference_message(r: &ValuesReference, namespace: &str, reason: &str) -> String {
    let mut m = String::from("could not resolve");
    if r.optional {
        m.push_str(" optional");
    }
    if !r.kind.is_empty() {
        m.push(' ');
        m.push_str(&r.kind);
    }
    m.push_str(" chart values reference");
    m.push_str(&format!(" '{namespace}/{}'", r.name));
    m.push_str(&format!(" with key '{}'", r.values_key()));
    m.push_str(": ");
    m.push_str(reason);
    m
}

/// The values of a HelmRelease: `refs` resolved in order through `fetch` (called once per
/// distinct object, as Flux gets each object once), then `inline` merged over them.
pub fn compose(
    namespace: &str,
    inline: Option<YMap>,
    refs: &[ValuesReference],
    mut fetch: impl FnMut(&str, &str) -> Fetched,
) -> Result<YMap, ValuesFromError> {
    let mut inline = inline;
    let mut result = YMap::new();
    // Which parts of `result` are the same Go objects as parts of `inline`.
    let mut shared = Share::No;
    // Each object's outcome, fetched once: `None` once found missing.
    let mut seen: BTreeMap<(String, String), Option<Data>> = BTreeMap::new();
    let fail = |r: &ValuesReference, reason: &str| ValuesFromError::Reference {
        reference: Box::new(r.clone()),
        namespace: namespace.to_owned(),
        reason: reason.to_owned(),
    };

    for r in refs {
        if r.kind != "ConfigMap" && r.kind != "Secret" {
            return Err(fail(r, UNSUPPORTED_KIND));
        }
        let index = (r.kind.clone(), r.name.clone());
        if !seen.contains_key(&index) {
            match fetch(&r.kind, &r.name) {
                Fetched::Found(data) => {
                    seen.insert(index.clone(), Some(data));
                }
                Fetched::NotFound(message) => {
                    seen.insert(index, None);
                    if r.optional {
                        continue;
                    }
                    return Err(fail(r, &message));
                }
                Fetched::Failed(message) => return Err(ValuesFromError::Fetch(message)),
            }
        }
        let data = seen.get(&index).and_then(Option::as_ref);
        let Some(data) = data else {
            if r.optional {
                continue;
            }
            return Err(fail(r, RESOURCE_NOT_FOUND));
        };
        let Some(bytes) = data.get(r.values_key()) else {
            if r.optional {
                continue;
            }
            return Err(fail(r, KEY_NOT_FOUND));
        };
        let text = String::from_utf8_lossy(bytes);

        match r.target_path() {
            Some(path) => {
                let inline_map = inline.get_or_insert_with(YMap::new);
                let (merged, share) =
                    merge_tracked(std::mem::take(&mut result), shared, &*inline_map, true);
                result = merged;
                shared = share;
                let written = write_path(&mut result, &mut shared, inline_map, path, |result| {
                    if r.literal {
                        set_literal(result, path, &text)
                    } else {
                        set_value(result, path, &text)
                    }
                });
                written.map_err(|e| fail(r, &e))?;
            }
            None => {
                let values = parse_values_file(bytes).map_err(|e| fail(r, &values_error(&e)))?;
                let (merged, share) =
                    merge_tracked(std::mem::take(&mut result), shared, &values, false);
                result = merged;
                shared = share;
            }
        }
    }
    Ok(match inline {
        Some(inline) => merge_maps(result, inline),
        None => result,
    })
}

/// Flux's wording for unreadable values data (`failed to read values data` is its reason when
/// the YAML error has no text of its own).
fn values_error(e: &ValuesError) -> String {
    let text = e.to_string();
    if text.is_empty() {
        "failed to read values data".into()
    } else {
        text
    }
}

/// Flux's `ReplacePathValue`: `path=value` as `--set` reads it, or as `--set-string` when the
/// value is quoted (the quotes removed).
fn set_value(values: &mut YMap, path: &str, value: &str) -> Result<(), String> {
    let quoted = |q: char| value.starts_with(q) && value.ends_with(q);
    if quoted('\'') || quoted('"') {
        let trimmed = value.trim_matches(|c| c == '\'' || c == '"');
        strvals::parse_into(&format!("{path}={trimmed}"), values, Kind::String)
    } else {
        strvals::parse_into(&format!("{path}={value}"), values, Kind::Typed)
    }
}

/// Flux's `ReplacePathLiteralValue`: the value escaped so that `--set-string` keeps it verbatim.
fn set_literal(values: &mut YMap, path: &str, value: &str) -> Result<(), String> {
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '[' | ']' | '{' | '}') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    strvals::parse_into(&format!("{path}={escaped}"), values, Kind::String)
}

/// Which nodes of the result are the very objects of the inline values at the same path. (A
/// node is only ever shared at the path it has in the inline values: `MergeMaps` keeps keys
/// where they are.)
#[derive(Clone, Debug, Default, PartialEq)]
enum Share {
    /// Not shared, nor anything below.
    #[default]
    No,
    /// Shared, and so everything below.
    Yes,
    /// Not shared itself; some children (by key or index) may be.
    Some(BTreeMap<Seg, Share>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Share {
    fn child(&self, seg: &Seg) -> Share {
        match self {
            Share::No => Share::No,
            Share::Yes => Share::Yes,
            Share::Some(children) => children.get(seg).cloned().unwrap_or_default(),
        }
    }

    /// The children of a node that is being replaced by a fresh copy holding the same children.
    fn children_of(&self, keys: impl Iterator<Item = Seg>) -> BTreeMap<Seg, Share> {
        match self {
            Share::No => BTreeMap::new(),
            Share::Yes => keys.map(|k| (k, Share::Yes)).collect(),
            Share::Some(children) => children.clone(),
        }
    }
}

/// `MergeMaps(a, b)` with sharing tracked: the result is a fresh map; values taken from `a`
/// keep their sharing; maps in both are merged into fresh maps; other values of `b` are shared
/// when `b` is the inline values.
fn merge_tracked(a: YMap, a_share: Share, b: &YMap, b_is_inline: bool) -> (YMap, Share) {
    let mut children = a_share.children_of(a.0.iter().map(|(k, _)| Seg::Key(k.to_string())));
    let mut out = a;
    for (k, v) in &b.0 {
        let seg = Seg::Key(k.to_string());
        if let (Some(Y::Map(existing)), Y::Map(incoming)) = (out.get_mut(k), v) {
            let child = children.remove(&seg).unwrap_or_default();
            let (merged, share) =
                merge_tracked(std::mem::take(existing), child, incoming, b_is_inline);
            *existing = merged;
            children.insert(seg, share);
            continue;
        }
        out.insert(k.clone(), v.clone());
        if b_is_inline {
            children.insert(seg, Share::Yes);
        } else {
            children.remove(&seg);
        }
    }
    (out, Share::Some(children))
}

/// Runs `write` (a `--set` write at `path`) on `result`, then mirrors into `inline` what Go's
/// aliasing would: the first container along the path that is shared and changed in place.
fn write_path(
    result: &mut YMap,
    shared: &mut Share,
    inline: &mut YMap,
    path: &str,
    write: impl FnOnce(&mut YMap) -> Result<(), String>,
) -> Result<(), String> {
    let segs = parse_path(path);
    // The shortest prefix whose node is shared and written into in place.
    let mut mirror: Option<usize> = None;
    if let Some(segs) = &segs {
        let mut node = None::<&Y>;
        let mut share = shared.clone();
        for (depth, seg) in segs.iter().enumerate() {
            let next = match (depth, node, seg) {
                (0, _, Seg::Key(k)) => result.get(k),
                (_, Some(Y::Map(m)), Seg::Key(k)) => {
                    if share == Share::Yes {
                        mirror = Some(depth);
                        break;
                    }
                    m.get(k)
                }
                (_, Some(Y::Seq(items)), Seg::Index(i)) => {
                    if share == Share::Yes && *i < items.len() {
                        mirror = Some(depth);
                        break;
                    }
                    items.get(*i)
                }
                _ => None,
            };
            let Some(next) = next else { break };
            share = share.child(seg);
            node = Some(next);
        }
    }
    write(result)?;
    let (Some(segs), Some(depth)) = (segs, mirror) else {
        // Nothing shared was changed in place: whatever the write replaced is now the result's
        // own.
        if let Some(segs) = parse_path(path) {
            unshare(shared, &segs);
        }
        return Ok(());
    };
    let prefix = &segs[..depth];
    if let (Some(from), Some(to)) = (
        node_at(result, prefix).cloned(),
        node_at_mut(inline, prefix),
    ) {
        *to = from;
    }
    Ok(())
}

/// Marks the nodes along `segs` as not shared (the write replaced them).
fn unshare(share: &mut Share, segs: &[Seg]) {
    let Some((first, rest)) = segs.split_first() else {
        *share = Share::No;
        return;
    };
    if let Share::No = share {
        return;
    }
    let children = match share {
        Share::Some(children) => children,
        // A shared node that was not written in place was replaced; its parent is not shared.
        _ => {
            *share = Share::No;
            return;
        }
    };
    let child = children.entry(first.clone()).or_default();
    if rest.is_empty() {
        *child = Share::No;
    } else {
        unshare(child, rest);
    }
}

fn node_at<'a>(root: &'a YMap, segs: &[Seg]) -> Option<&'a Y> {
    let (Seg::Key(first), rest) = segs.split_first()? else {
        return None;
    };
    let mut node = root.get(first)?;
    for seg in rest {
        node = match (node, seg) {
            (Y::Map(m), Seg::Key(k)) => m.get(k)?,
            (Y::Seq(items), Seg::Index(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn node_at_mut<'a>(root: &'a mut YMap, segs: &[Seg]) -> Option<&'a mut Y> {
    let (Seg::Key(first), rest) = segs.split_first()? else {
        return None;
    };
    let mut node = root.get_mut(first)?;
    for seg in rest {
        node = match (node, seg) {
            (Y::Map(m), Seg::Key(k)) => m.get_mut(k)?,
            (Y::Seq(items), Seg::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// A `--set` key path (`a.b\.c[0].d`) as segments; `None` when it is not one plain path (a
/// malformed path is left to the `--set` parser to report).
fn parse_path(path: &str) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    let mut chars = path.chars().peekable();
    let mut key = String::new();
    let mut after_index = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(chars.next()?),
            '.' => {
                if !after_index {
                    segs.push(Seg::Key(std::mem::take(&mut key)));
                }
                after_index = false;
            }
            '[' => {
                if !after_index {
                    segs.push(Seg::Key(std::mem::take(&mut key)));
                }
                let mut digits = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    digits.push(d);
                }
                segs.push(Seg::Index(digits.parse().ok()?));
                after_index = true;
            }
            ',' | '=' | '{' | '}' => return None,
            c => {
                if after_index {
                    return None;
                }
                key.push(c);
            }
        }
    }
    if !after_index {
        segs.push(Seg::Key(key));
    }
    Some(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> YMap {
        parse_values_file(text.as_bytes()).unwrap()
    }

    fn show(values: &YMap) -> String {
        crate::values::encode_values(values)
    }

    fn cm(name: &str, pairs: &[(&str, &str)]) -> ((String, String), Fetched) {
        (
            ("ConfigMap".into(), name.into()),
            Fetched::Found(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                    .collect(),
            ),
        )
    }

    fn secret(name: &str, pairs: &[(&str, &str)]) -> ((String, String), Fetched) {
        let ((_, n), f) = cm(name, pairs);
        (("Secret".into(), n), f)
    }

    fn reference(kind: &str, name: &str) -> ValuesReference {
        ValuesReference {
            kind: kind.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn run(
        objects: Vec<((String, String), Fetched)>,
        refs: &[ValuesReference],
        inline: Option<&str>,
    ) -> Result<YMap, ValuesFromError> {
        let objects: BTreeMap<_, _> = objects.into_iter().collect();
        let mut calls = BTreeMap::new();
        let out = compose("ns", inline.map(yaml), refs, |kind, name| {
            *calls.entry((kind.to_owned(), name.to_owned())).or_insert(0) += 1;
            objects
                .get(&(kind.to_owned(), name.to_owned()))
                .cloned()
                .unwrap_or_else(|| {
                    Fetched::NotFound(format!("{}s \"{name}\" not found", kind.to_lowercase()))
                })
        });
        assert!(calls.values().all(|n| *n == 1), "fetched twice: {calls:?}");
        out
    }

    // The cases of Flux's `TestChartValuesFromReferences` (fluxcd/pkg/chartutil).

    #[test]
    fn merges_in_order_then_inline() {
        let got = run(
            vec![
                cm(
                    "values",
                    &[(
                        "values.yaml",
                        "flat: value\nnested:\n  configuration: value\n",
                    )],
                ),
                secret(
                    "values",
                    &[("values.yaml", "flat:\n  nested: value\nnested: value\n")],
                ),
            ],
            &[
                reference("ConfigMap", "values"),
                reference("Secret", "values"),
            ],
            Some("other: values\n"),
        )
        .unwrap();
        assert_eq!(
            show(&got),
            "flat:\n  nested: value\nnested: value\nother: values\n"
        );
    }

    #[test]
    fn target_path() {
        let mut r = reference("Secret", "values");
        r.values_key = Some("single".into());
        r.target_path = Some("merge.at.specific.path".into());
        let got = run(vec![secret("values", &[("single", "value")])], &[r], None).unwrap();
        assert_eq!(
            show(&got),
            "merge:\n  at:\n    specific:\n      path: value\n"
        );
    }

    #[test]
    fn target_path_precedence_over_all() {
        let mut first = reference("Secret", "values");
        first.values_key = Some("key".into());
        first.target_path = Some("nested.configuration[0]".into());
        let got = run(
            vec![
                cm(
                    "values",
                    &[(
                        "values.yaml",
                        "flat: value\nnested:\n  configuration:\n  - one\n  - two\n  - three\n",
                    )],
                ),
                secret("values", &[("key", "value")]),
            ],
            &[first, reference("ConfigMap", "values")],
            Some("nested:\n  configuration:\n  - list\n  - item\n  - option\n"),
        )
        .unwrap();
        assert_eq!(
            show(&got),
            "flat: value\nnested:\n  configuration:\n  - value\n  - item\n  - option\n"
        );
    }

    #[test]
    fn target_path_for_a_list_item() {
        let mut second = reference("Secret", "values");
        second.target_path = Some("nested.configuration[1]".into());
        let got = run(
            vec![
                cm(
                    "values",
                    &[(
                        "values.yaml",
                        "flat: value\nnested:\n  configuration:\n  - list\n  - item\n  - option\n",
                    )],
                ),
                secret("values", &[("values.yaml", "foo")]),
            ],
            &[reference("ConfigMap", "values"), second],
            Some("other: values\n"),
        )
        .unwrap();
        assert_eq!(
            show(&got),
            "flat: value\nnested:\n  configuration:\n  - list\n  - foo\n  - option\nother: values\n"
        );
    }

    #[test]
    fn missing_objects_and_keys() {
        let err = run(vec![], &[reference("Secret", "missing")], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not resolve Secret chart values reference 'ns/missing' with key 'values.yaml': secrets \"missing\" not found"
        );
        assert!(err.is_missing());
        let mut optional = reference("ConfigMap", "missing");
        optional.optional = true;
        assert_eq!(run(vec![], &[optional.clone()], None).unwrap(), YMap::new());
        // The second reference to an object found missing says "resource not found".
        let err = run(vec![], &[optional, reference("ConfigMap", "missing")], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not resolve ConfigMap chart values reference 'ns/missing' with key 'values.yaml': resource not found"
        );
        let mut key = reference("Secret", "values");
        key.values_key = Some("nonexisting".into());
        let err = run(vec![secret("values", &[])], &[key.clone()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not resolve Secret chart values reference 'ns/values' with key 'nonexisting': key not found"
        );
        key.optional = true;
        assert!(run(vec![secret("values", &[])], &[key], None).is_ok());
        let err = run(vec![], &[reference("Unsupported", "")], None).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(": unsupported values reference kind")
        );
        let failed = vec![(
            ("Secret".to_owned(), "values".to_owned()),
            Fetched::Failed("secrets \"values\" is forbidden".into()),
        )];
        let err = run(failed, &[reference("Secret", "values")], None).unwrap_err();
        assert_eq!(err.to_string(), "secrets \"values\" is forbidden");
        assert!(!err.is_missing());
    }

    #[test]
    fn invalid_values_name_the_reference() {
        let err = run(
            vec![cm("values", &[("values.yaml", "\ninvalid")])],
            &[reference("ConfigMap", "values")],
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("could not resolve ConfigMap chart values reference 'ns/values' with key 'values.yaml': error unmarshaling JSON"),
            "{text}"
        );
    }

    #[test]
    fn literal_and_quoted_values() {
        let mut r = reference("ConfigMap", "values");
        r.values_key = Some("application.yml".into());
        r.target_path = Some(r"externalConfig.application\.yml.content".into());
        let objects = || vec![cm("values", &[("application.yml", "endpoints: [a,b,c]")])];
        assert!(
            run(objects(), &[r.clone()], None).is_err(),
            "commas break --set"
        );
        r.literal = true;
        let got = run(objects(), &[r], None).unwrap();
        assert_eq!(
            show(&got),
            "externalConfig:\n  application.yml:\n    content: 'endpoints: [a,b,c]'\n"
        );

        let mut r = reference("Secret", "kafka");
        r.values_key = Some("brokers".into());
        r.target_path = Some("kafka.brokers".into());
        let brokers = "kafka01.net:9092,kafka02.net:9092,kafka03.net:9092";
        let objects = || vec![secret("kafka", &[("brokers", brokers)])];
        assert!(run(objects(), &[r.clone()], None).is_err());
        r.literal = true;
        let got = run(objects(), &[r], None).unwrap();
        assert_eq!(show(&got), format!("kafka:\n  brokers: {brokers}\n"));

        // --set typing, and quotes making a string.
        let mut r = reference("Secret", "flags");
        r.values_key = Some("on".into());
        r.target_path = Some("a.enabled".into());
        let mut q = r.clone();
        q.values_key = Some("quoted".into());
        q.target_path = Some("a.text".into());
        let got = run(
            vec![secret("flags", &[("on", "true"), ("quoted", "'true'")])],
            &[r, q],
            None,
        )
        .unwrap();
        assert_eq!(show(&got), "a:\n  enabled: true\n  text: \"true\"\n");
    }

    #[test]
    fn literal_without_target_path_merges() {
        let mut r = reference("ConfigMap", "values");
        r.literal = true;
        let got = run(
            vec![cm("values", &[("values.yaml", "flat: value\n")])],
            &[r],
            None,
        )
        .unwrap();
        assert_eq!(show(&got), "flat: value\n");
    }

    #[test]
    fn writes_land_in_inline_values_only_through_shared_maps() {
        let mut r = reference("Secret", "s");
        r.values_key = Some("k".into());
        r.target_path = Some("image.tag".into());
        let got = run(
            vec![secret("s", &[("k", "v2")])],
            &[r.clone()],
            Some("image:\n  tag: v1\n  repository: x\n"),
        )
        .unwrap();
        // `image` came from the inline values by reference, so the write changed them too
        // (both cases checked against fluxcd/pkg/chartutil v1.27.2).
        assert_eq!(show(&got), "image:\n  repository: x\n  tag: v2\n");
        // A top-level key is written into the result's own map: the inline value wins.
        r.target_path = Some("tag".into());
        let got = run(vec![secret("s", &[("k", "v2")])], &[r], Some("tag: v1\n")).unwrap();
        assert_eq!(show(&got), "tag: v1\n");
    }

    #[test]
    fn writes_through_shared_lists_as_go() {
        // Checked against fluxcd/pkg/chartutil v1.27.2 (`y` is YAML 1.1's true): the write
        // into a list under a map shared with the inline values lands in them, extended or not.
        let mut r = reference("Secret", "s");
        r.values_key = Some("k".into());
        r.target_path = Some("a.b[3]".into());
        let objects = || vec![secret("s", &[("k", "v2")])];
        let got = run(objects(), &[r.clone()], Some("a:\n  b: [x, y]\n")).unwrap();
        assert_eq!(show(&got), "a:\n  b:\n  - x\n  - true\n  - null\n  - v2\n");
        r.target_path = Some("a.b[1]".into());
        let got = run(objects(), &[r], Some("a:\n  b: [x, y]\n")).unwrap();
        assert_eq!(show(&got), "a:\n  b:\n  - x\n  - v2\n");
    }

    #[test]
    fn paths_parse_as_set_keys() {
        assert_eq!(
            parse_path(r"a.b\.c[2].d"),
            Some(vec![
                Seg::Key("a".into()),
                Seg::Key("b.c".into()),
                Seg::Index(2),
                Seg::Key("d".into())
            ])
        );
        assert_eq!(parse_path("a[0][1]").map(|s| s.len()), Some(3));
        assert_eq!(parse_path("a,b"), None);
    }
}
