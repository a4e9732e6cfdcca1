//! Values as Helm v4 combines them before rendering (`pkg/chart/common/util`
//! `coalesce.go`, `pkg/chart/v2/util/dependencies.go`): the user's values
//! over the chart's, each subchart's defaults under its name, `global`
//! handed down, `null` deleting a default, subcharts enabled by `condition`
//! and `tags`, `alias`es, and `import-values`.
//!
//! The values are owned YAML trees ([`Y`]); Go's maps are unordered, so only
//! the keys matter (templates see them sorted).

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use crate::chart::{Chart, Dependency};

/// A chart as the renderer sees it after dependency processing: its alias
/// applied, disabled subcharts removed, its values replaced by the merge of
/// its subcharts' and imported values (as Helm replaces `chart.Values`).
#[derive(Clone)]
pub(crate) struct Node<'a> {
    pub chart: &'a Chart,
    /// Its name (its alias, when its parent gave one).
    pub name: String,
    pub values: YMap,
    /// The dependencies of `Chart.yaml` still enabled (names aliased);
    /// `None` where Helm's slice is nil.
    pub deps: Option<Vec<Dependency>>,
    pub children: Vec<Node<'a>>,
}

impl<'a> Node<'a> {
    pub fn new(chart: &'a Chart, values: YMap) -> Node<'a> {
        let deps: Vec<Dependency> = chart.metadata.deps().cloned().collect();
        Node {
            chart,
            name: chart.name().to_string(),
            values,
            deps: (!chart.metadata.dependencies.is_empty()).then_some(deps),
            children: Vec::new(),
        }
    }
}

pub(crate) fn is_table(v: &Y) -> bool {
    matches!(v, Y::Map(_))
}

fn concat_prefix(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// Helm's `CoalesceValues(chart, vals)`: a copy of `vals` with the chart's
/// values (and its subcharts') filled in; `null` deletes a default.
pub(crate) fn coalesce_values(node: &Node<'_>, vals: &YMap) -> Result<YMap, String> {
    let mut dest = vals.clone();
    coalesce(node, &mut dest, "", false)?;
    Ok(dest)
}

/// Helm's `MergeValues`: as [`coalesce_values`], but `null`s are kept.
pub(crate) fn merge_values(node: &Node<'_>, vals: &YMap) -> Result<YMap, String> {
    let mut dest = vals.clone();
    coalesce(node, &mut dest, "", true)?;
    Ok(dest)
}

fn coalesce(node: &Node<'_>, dest: &mut YMap, prefix: &str, merge: bool) -> Result<(), String> {
    coalesce_chart_values(node, dest, prefix, merge);
    coalesce_deps(node, dest, prefix, merge)
}

fn coalesce_deps(
    node: &Node<'_>,
    dest: &mut YMap,
    prefix: &str,
    merge: bool,
) -> Result<(), String> {
    for sub in &node.children {
        let mut dv = match dest.remove(&sub.name) {
            None => YMap::new(),
            Some(Y::Map(m)) => m,
            Some(other) => {
                let shown = go_bool_verb(&other);
                dest.insert(sub.name.as_str(), other);
                return Err(format!("type mismatch on {}: {shown}", sub.name));
            }
        };
        let sub_prefix = concat_prefix(prefix, &node.name);
        coalesce_globals(&mut dv, dest);
        coalesce(sub, &mut dv, &sub_prefix, merge)?;
        dest.insert(sub.name.as_str(), Y::Map(dv));
    }
    Ok(())
}

/// What Go's `%t` prints for a value that is not a bool.
fn go_bool_verb(v: &Y) -> String {
    match v {
        Y::Bool(b) => b.to_string(),
        Y::Str(s) => format!("%!t(string={s})"),
        Y::Float(f) => format!("%!t(float64={})", crate::gofmt::format_g64(*f)),
        Y::Int(i) => format!("%!t(int64={i})"),
        Y::Seq(_) => "[...]".into(),
        Y::Null => "%!t(<nil>)".into(),
        Y::Map(_) => "map[...]".into(),
    }
}

/// Helm's `coalesceGlobals`: the parent's `global` over the subchart's.
fn coalesce_globals(dest: &mut YMap, src: &YMap) {
    let mut dg = match dest.get("global") {
        None => YMap::new(),
        Some(Y::Map(m)) => m.clone(),
        Some(_) => return,
    };
    let sg = match src.get("global") {
        None => YMap::new(),
        Some(Y::Map(m)) => m.clone(),
        Some(_) => return,
    };
    for (key, val) in sg.iter() {
        match val {
            Y::Map(vv) => {
                let mut vv = vv.clone();
                match dg.get(key) {
                    None => dg.insert(key.clone(), Y::Map(vv)),
                    Some(Y::Map(destv)) => {
                        let mut destv = destv.clone();
                        coalesce_tables(&mut vv, &mut destv, true);
                        dg.insert(key.clone(), Y::Map(vv));
                    }
                    Some(_) => {}
                }
            }
            _ => {
                if !matches!(dg.get(key), Some(Y::Map(_))) {
                    dg.insert(key.clone(), val.clone());
                }
            }
        }
    }
    dest.insert("global", Y::Map(dg));
}

/// Helm's `coalesceValues`: the chart's own values into `v`.
fn coalesce_chart_values(node: &Node<'_>, v: &mut YMap, _prefix: &str, merge: bool) {
    for (key, val) in node.values.iter() {
        match v.get_mut(key) {
            Some(value) => {
                if matches!(value, Y::Null) && !merge {
                    v.remove(key);
                } else if let Y::Map(dest) = value
                    && let Y::Map(src) = val
                {
                    let merge = merge || node.children.iter().any(|c| c.name == key.as_str());
                    let mut src = src.clone();
                    if !merge {
                        clean_nil_values(&mut src);
                    }
                    coalesce_tables(dest, &mut src, merge);
                }
            }
            None => {
                let mut val = val.clone();
                if !merge {
                    if matches!(val, Y::Null) {
                        continue;
                    }
                    if let Y::Map(sub) = &mut val {
                        clean_nil_values(sub);
                    }
                }
                v.insert(key.clone(), val);
            }
        }
    }
}

/// Helm's `coalesceTablesFullKey`: `src` fills what `dst` lacks; a `null`
/// in `dst` deletes the key unless merging.
pub(crate) fn coalesce_tables(dst: &mut YMap, src: &mut YMap, merge: bool) {
    let src_non_nil: Vec<bool> = src.iter().map(|(_, v)| !matches!(v, Y::Null)).collect();
    for (key, val) in dst.iter() {
        if matches!(val, Y::Null) && src.contains(key) {
            // Go sets src[key] = nil; only keys src has matter below.
            if let Some(s) = src.get_mut(key) {
                *s = Y::Null;
            }
        }
    }
    for (i, (key, val)) in src.0.iter_mut().enumerate() {
        match dst.get_mut(key) {
            Some(dv) if !merge && matches!(dv, Y::Null) && src_non_nil[i] => {
                dst.remove(key);
            }
            None => dst.insert(key.clone(), std::mem::replace(val, Y::Null)),
            Some(Y::Map(dv)) => {
                if let Y::Map(sv) = val {
                    coalesce_tables(dv, sv, merge);
                }
            }
            Some(_) => {}
        }
    }
}

fn clean_nil_values(m: &mut YMap) {
    m.0.retain(|(_, v)| !matches!(v, Y::Null));
    for (_, v) in m.0.iter_mut() {
        if let Y::Map(sub) = v {
            clean_nil_values(sub);
        }
    }
}

/// Helm's `Values.Table`: the map at a dotted path.
pub(crate) fn table<'v>(vals: &'v YMap, path: &str) -> Option<&'v YMap> {
    let mut cur = vals;
    for part in path.split('.') {
        match cur.get(part) {
            Some(Y::Map(m)) => cur = m,
            _ => return None,
        }
    }
    Some(cur)
}

/// Helm's `Values.PathValue`: the non-table value at a dotted path.
fn path_value<'v>(vals: &'v YMap, path: &str) -> Option<&'v Y> {
    if path.is_empty() {
        return None;
    }
    let (parent, key) = match path.rsplit_once('.') {
        Some((p, k)) => (table(vals, p)?, k),
        None => (vals, path),
    };
    parent.get(key).filter(|v| !is_table(v))
}

/// Masterminds' `Constraints.Check` as Helm's `IsCompatibleRange` uses it:
/// false when either side does not parse.
fn compatible(constraint: &str, version: &str) -> bool {
    let Ok(c) = sluice_semver::Constraint::parse(constraint) else {
        return false;
    };
    match sluice_semver::parse_lenient(version) {
        Some(v) => c.matches(&v),
        None => false,
    }
}

/// Builds the tree Helm renders: `ProcessDependencies` (enabled subcharts,
/// aliases, then `import-values`, bottom-up).
pub(crate) fn process_dependencies<'a>(chart: &'a Chart, user: &YMap) -> Result<Node<'a>, String> {
    let mut root = build(chart, None)?;
    process_enabled(&mut root, user, "")?;
    process_imports(&mut root)?;
    Ok(root)
}

/// The chart and its subcharts as loaded, before any processing.
fn build<'a>(chart: &'a Chart, alias: Option<&str>) -> Result<Node<'a>, String> {
    let values = chart
        .values()
        .map_err(|e| format!("{}: {e}", chart.name()))?;
    let mut node = Node::new(chart, values);
    if let Some(a) = alias {
        node.name = a.to_string();
    }
    for sub in &chart.dependencies {
        node.children.push(build(sub, None)?);
    }
    Ok(node)
}

fn process_enabled(node: &mut Node<'_>, vals: &YMap, path: &str) -> Result<(), String> {
    let Some(mut reqs) = node.deps.take() else {
        return Ok(());
    };
    // Subcharts no dependency names stay; each dependency takes the first
    // subchart of its name whose version fits (a copy, under its alias).
    let existing = std::mem::take(&mut node.children);
    let mut children: Vec<Node<'_>> = existing
        .iter()
        .filter(|c| {
            !reqs
                .iter()
                .any(|r| c.name == r.name && compatible(&r.version, c.chart.version()))
        })
        .cloned()
        .collect();
    for req in reqs.iter_mut() {
        if let Some(c) = existing
            .iter()
            .find(|c| c.name == req.name && compatible(&req.version, c.chart.version()))
        {
            let mut copy = c.clone();
            if !req.alias.is_empty() {
                copy.name = req.alias.clone();
            }
            children.push(copy);
        }
        if !req.alias.is_empty() {
            req.name = req.alias.clone();
        }
    }
    node.children = children;
    for r in reqs.iter_mut() {
        r.enabled = true;
    }
    let cvals = coalesce_values(node, vals)?;
    // tags
    if let Some(tags) = table(&cvals, "tags") {
        for r in reqs.iter_mut() {
            let (mut has_true, mut has_false) = (false, false);
            for k in &r.tags {
                if let Some(Y::Bool(b)) = tags.get(k) {
                    if *b {
                        has_true = true;
                    } else {
                        has_false = true;
                    }
                }
            }
            r.enabled = has_true || !has_false;
        }
    }
    // conditions: the first that names a bool decides
    for r in reqs.iter_mut() {
        for c in r.condition.trim().split(',') {
            if c.is_empty() {
                continue;
            }
            if let Some(Y::Bool(b)) = path_value(&cvals, &format!("{path}{c}")) {
                r.enabled = *b;
                break;
            }
        }
    }
    let removed: Vec<String> = reqs
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    node.children.retain(|c| !removed.contains(&c.name));
    reqs.retain(|r| !removed.contains(&r.name));
    for child in node.children.iter_mut() {
        let sub = format!("{path}{}.", child.name);
        process_enabled(child, &cvals, &sub)?;
    }
    node.deps = (!reqs.is_empty()).then_some(reqs);
    Ok(())
}

fn path_to_map(path: &str, data: YMap) -> YMap {
    if path == "." {
        return data;
    }
    let mut cur = data;
    for part in path.split('.').rev() {
        let mut m = YMap::new();
        m.insert(part, Y::Map(cur));
        cur = m;
    }
    cur
}

/// What Go's `%v` prints for an `import-values` field.
fn go_v(v: Option<&Y>) -> String {
    match v {
        None | Some(Y::Null) => "<nil>".into(),
        Some(Y::Str(s)) => s.to_string(),
        Some(Y::Bool(b)) => b.to_string(),
        Some(Y::Float(f)) => crate::gofmt::format_g64(*f),
        Some(Y::Int(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

fn process_imports(node: &mut Node<'_>) -> Result<(), String> {
    for child in node.children.iter_mut() {
        process_imports(child)?;
    }
    let Some(mut deps) = node.deps.clone() else {
        return Ok(());
    };
    let cvals = merge_values(node, &YMap::new())?;
    let mut b = YMap::new();
    for r in deps.iter_mut() {
        // Helm rewrites each entry as {child, parent} strings (what the
        // release stores), dropping entries of any other type.
        let mut normalized = Vec::new();
        for iv in &r.import_values {
            let (child, parent) = match iv {
                Y::Map(m) => (go_v(m.get("child")), go_v(m.get("parent"))),
                Y::Str(s) => (format!("exports.{s}"), ".".to_string()),
                _ => continue,
            };
            let mut entry = YMap::new();
            entry.insert("child", Y::str(child.as_str()));
            entry.insert("parent", Y::str(parent.as_str()));
            normalized.push(Y::Map(entry));
            let Some(vv) = table(&cvals, &format!("{}.{child}", r.name)) else {
                continue;
            };
            let mut add = path_to_map(&parent, vv.clone());
            coalesce_tables(&mut b, &mut add, true);
        }
        r.import_values = normalized;
    }
    let mut values = cvals;
    coalesce_tables(&mut values, &mut b, true);
    node.values = values;
    node.deps = Some(deps);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::load_values;

    fn m(text: &str) -> YMap {
        load_values(text.as_bytes()).unwrap()
    }

    #[test]
    fn null_deletes_a_default_and_user_values_win() {
        let mut dst = m("a: null\nb: 2\nc: {x: 1}\n");
        // (`y` would be YAML 1.1's true, as Helm reads it.)
        let mut src = m("a: 1\nb: 3\nc: {x: 2, z: 3}\nd: 4\n");
        coalesce_tables(&mut dst, &mut src, false);
        assert!(dst.get("a").is_none());
        assert_eq!(dst.get("b"), Some(&Y::Float(2.0)));
        let c = dst.get("c").and_then(Y::as_map).unwrap();
        assert_eq!(c.get("x"), Some(&Y::Float(1.0)));
        assert_eq!(c.get("z"), Some(&Y::Float(3.0)));
        assert_eq!(dst.get("d"), Some(&Y::Float(4.0)));
    }

    #[test]
    fn merging_keeps_nulls() {
        let mut dst = m("a: null\n");
        let mut src = m("a: 1\n");
        coalesce_tables(&mut dst, &mut src, true);
        assert_eq!(dst.get("a"), Some(&Y::Null));
    }

    #[test]
    fn path_values_and_tables() {
        let v = m("a: {b: {c: true}}\nx: 1\n");
        assert_eq!(path_value(&v, "a.b.c"), Some(&Y::Bool(true)));
        assert_eq!(path_value(&v, "a.b"), None);
        assert_eq!(path_value(&v, "x"), Some(&Y::Float(1.0)));
        assert!(table(&v, "a.b").is_some());
        assert!(table(&v, "x").is_none());
    }

    #[test]
    fn import_paths_nest() {
        let p = path_to_map("a.b", m("k: v\n"));
        assert!(table(&p, "a.b").is_some());
    }
}
