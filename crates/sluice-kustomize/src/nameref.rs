//! Name-reference fix-up: after renames (prefix, suffix, hash), fields that
//! refer to a renamed resource by name are updated.
//!
//! Candidates are indexed by every name a resource has had, so each
//! reference costs a hash lookup plus a scan of the few resources that ever
//! carried that name.

use std::collections::{HashMap, HashSet};

use crate::fieldspec::{TransformerConfig, apply, split_path};
use crate::resource::{Gvk, ResId, ResMap};
use crate::yaml::Value;
use crate::{Error, Result};

struct Snap {
    cur: ResId,
    prev: Vec<ResId>,
    /// Effective namespace of the original id; `None` when cluster-scoped.
    org_ns: Option<String>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

pub fn fix_back_references(rm: &mut ResMap, tc: &TransformerConfig) -> Result<()> {
    let snaps: Vec<Snap> = rm
        .list
        .iter()
        .map(|r| Snap {
            cur: r.cur_id(),
            prev: r.prev_ids.clone(),
            org_ns: {
                let o = r.org_id();
                (!o.gvk.is_cluster_scoped()).then(|| o.effective_namespace().to_string())
            },
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        })
        .collect();
    let mut by_prev_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in snaps.iter().enumerate() {
        let mut names: Vec<&str> = s.prev.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            by_prev_name.entry(n.to_string()).or_default().push(i);
        }
    }
    let specs: Vec<(Gvk, Gvk, String, Vec<String>)> = tc
        .name_reference
        .iter()
        .flat_map(|br| {
            br.referrers.iter().map(move |fs| {
                (
                    br.gvk.clone(),
                    fs.gvk.clone(),
                    fs.path.clone(),
                    split_path(&fs.path),
                )
            })
        })
        .collect();

    for i in 0..rm.list.len() {
        let org = rm.list[i].org_id();
        let referrer = &snaps[i];
        if referrer.cur.gvk.kind == "RoleBinding"
            && let Some(Value::Seq(subjects)) = rm.list[i].obj.get("subjects")
        {
            for sub in subjects {
                if sub.get_str("kind") == Some("ServiceAccount")
                    && matches!(sub.get("namespace"), Some(v) if v.as_str().is_none())
                {
                    return Err(Error::msg(format!(
                        "Invalid Input: namespace is blank for resource \"{}\"",
                        referrer.cur
                    )));
                }
            }
        }
        let rb_ns: HashSet<String> = if referrer.cur.gvk.kind == "RoleBinding" {
            rm.list[i]
                .obj
                .get("subjects")
                .and_then(Value::as_seq)
                .map(|s| {
                    s.iter()
                        .filter(|x| x.get_str("kind") == Some("ServiceAccount"))
                        .filter_map(|x| x.get_str("namespace").map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            HashSet::new()
        };
        let role_ref_gvk = {
            let rr = rm.list[i].obj.get("roleRef");
            match (
                rr.and_then(|r| r.get_str("apiGroup")),
                rr.and_then(|r| r.get_str("kind")),
            ) {
                (Some(g), Some(k)) => Some(Gvk {
                    group: g.to_string(),
                    version: String::new(),
                    kind: k.to_string(),
                }),
                _ => None,
            }
        };
        for (target, sel, raw_path, path) in &specs {
            if !org.gvk.is_selected(sel) {
                continue;
            }
            let ctx = Ctx {
                snaps: &snaps,
                by_prev_name: &by_prev_name,
                referrer_idx: i,
                rb_ns: &rb_ns,
                target,
                role_ref: if raw_path.ends_with("roleRef/name") {
                    role_ref_gvk.as_ref()
                } else {
                    None
                },
            };
            let mut f = |node: &mut Value| -> Result<(), String> { ctx.set(node) };
            apply(&mut rm.list[i].obj, path, false, &mut f).map_err(|e| {
                Error::msg(format!(
                    "updating name reference in '{}' field of '{}': {e}",
                    raw_path, snaps[i].cur
                ))
            })?;
        }
    }
    Ok(())
}

struct Ctx<'a> {
    snaps: &'a [Snap],
    by_prev_name: &'a HashMap<String, Vec<usize>>,
    referrer_idx: usize,
    rb_ns: &'a HashSet<String>,
    target: &'a Gvk,
    role_ref: Option<&'a Gvk>,
}

impl Ctx<'_> {
    fn set(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Null => Ok(()),
            Value::Str(_) => self.set_scalar(node),
            Value::Map(_) => self.set_mapping(node),
            Value::Seq(items) => {
                for it in items.iter_mut() {
                    match it {
                        Value::Str(_) => self.set_scalar(it)?,
                        Value::Map(_) => self.set_mapping(it)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Resources that could be referenced by the referrer and once had `name`.
    fn candidates(&self, name: &str) -> Vec<usize> {
        let referrer = &self.snaps[self.referrer_idx].cur;
        let Some(list) = self.by_prev_name.get(name) else {
            return Vec::new();
        };
        list.iter()
            .copied()
            .filter(|&j| {
                let t = &self.snaps[j].cur;
                referrer.gvk.is_cluster_scoped()
                    || t.gvk.is_cluster_scoped()
                    || t.ns_equals(referrer)
                    || self.rb_ns.contains(&t.namespace)
            })
            .collect()
    }

    fn select(&self, old: &str, cands: Vec<usize>, with_ns: bool) -> Result<Option<usize>, String> {
        let snaps = self.snaps;
        let referrer = &snaps[self.referrer_idx];
        let mut c: Vec<usize> = cands
            .into_iter()
            .filter(|&j| snaps[j].prev.iter().any(|p| p.name == old))
            .filter(|&j| snaps[j].prev.iter().any(|p| p.gvk.is_selected(self.target)))
            .filter(|&j| match self.role_ref {
                Some(g) => snaps[j].prev.iter().any(|p| p.gvk.is_selected(g)),
                None => true,
            })
            .filter(|&j| {
                if referrer.cur.gvk.is_cluster_scoped() {
                    return true;
                }
                let t = &snaps[j].cur;
                t.gvk.is_cluster_scoped()
                    || t.gvk.kind == "ServiceAccount"
                    || referrer.cur.ns_equals(t)
            })
            .collect();
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&j| {
            same_ending(&snaps[j].prefixes, &referrer.prefixes)
                && same_ending(&snaps[j].suffixes, &referrer.suffixes)
        });
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        if c.is_empty() {
            return Ok(None);
        }
        let first = &snaps[c[0]].cur;
        let same = c.iter().all(|&j| {
            snaps[j].cur.name == first.name
                && (!with_ns || snaps[j].cur.namespace == first.namespace)
        });
        if same {
            return Ok(Some(c[0]));
        }
        let ids: Vec<String> = c.iter().map(|&j| snaps[j].cur.to_string()).collect();
        Err(format!(
            " found multiple possible referrals: {}",
            ids.join(", ")
        ))
    }

    fn set_scalar(&self, node: &mut Value) -> Result<(), String> {
        let Some(old) = node.as_str().map(str::to_string) else {
            return Ok(());
        };
        let cands = self.candidates(&old);
        if let Some(j) = self.select(&old, cands, false)? {
            let new = &self.snaps[j].cur.name;
            if *new != old {
                *node = Value::str(new.clone());
            }
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Value) -> Result<(), String> {
        let Some(m) = node.as_map_mut() else {
            return Ok(());
        };
        let Some(old) = m.get("name").and_then(Value::scalar_string) else {
            return Err("path config error; no 'name' field in node".into());
        };
        let mut cands = self.candidates(&old);
        if let Some(ns) = m.get("namespace").and_then(Value::scalar_string) {
            let by_org: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&j| self.snaps[j].org_ns.as_deref() == Some(ns.as_str()))
                .collect();
            cands = if !by_org.is_empty() {
                by_org
            } else {
                cands
                    .into_iter()
                    .filter(|&j| {
                        let c = &self.snaps[j].cur;
                        !c.gvk.is_cluster_scoped() && c.effective_namespace() == ns
                    })
                    .collect()
            };
        }
        if let Some(j) = self.select(&old, cands, true)? {
            let t = &self.snaps[j].cur;
            if t.name == old && t.namespace.is_empty() {
                return Ok(());
            }
            m.insert("name", Value::str(t.name.clone()));
            if !t.namespace.is_empty() {
                m.insert("namespace", Value::str(t.namespace.clone()));
            }
        }
        Ok(())
    }
}

/// kustomize's `SameEndingSubarray`.
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let diff = long.len() - short.len();
    if short.is_empty() {
        return diff == 0;
    }
    (0..short.len()).rev().all(|i| long[i + diff] == short[i])
}
