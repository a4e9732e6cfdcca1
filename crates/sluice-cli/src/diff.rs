//! `sluice build kustomization NAME --path DIR` and
//! `sluice diff kustomization NAME --path DIR`.
//!
//! Both build local files the way the controller builds the artifact: the
//! Kustomization's own overlays (`sluice_kustomization::render::
//! write_kustomization`), the kustomize build (`render::build`) and the
//! `postBuild` substitutions (`render::substitute`, with the variables read
//! from the cluster), then the owner labels and `commonMetadata`. `diff`
//! then asks the API server what applying would change (server-side apply,
//! dry run, field manager `kustomize-controller`) and prints the difference
//! per object, Secret values masked. Exit 0: no difference, 1: differences,
//! 2: error.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use serde_json::{Map, Value};
use sluice_api::Kustomization;
use sluice_api::kustomization::{FIELD_MANAGER, NAME_LABEL, NAMESPACE_LABEL, SubstituteKind};
use sluice_api::meta::ObjectId;
use sluice_kustomization::render;

use crate::kube_util::{self, FluxKind, Resolver, not_found_or};
use crate::output::{Color, Log};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(subcommand)]
    pub what: DiffWhat,
}

/// What to compare.
#[derive(Debug, Subcommand)]
pub enum DiffWhat {
    /// A Kustomization built from local files, against the cluster.
    #[command(visible_alias = "ks")]
    Kustomization(BuildKustomizationArgs),
}

/// A Kustomization and the local directory of its `spec.path`.
#[derive(Debug, Args)]
pub struct BuildKustomizationArgs {
    /// The Kustomization in the cluster (its overlays and substitutions are
    /// used).
    pub name: String,

    /// The local directory that corresponds to the Kustomization's
    /// `spec.path`.
    #[arg(long, value_name = "DIR")]
    pub path: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_dir(&src, &dst)?;
        } else if ft.is_file() || (ft.is_symlink() && src.is_file()) {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The variables of `spec.postBuild` (`None` without postBuild), read from
/// the cluster as the controller reads them.
pub async fn substitution_vars(
    client: &Client,
    ks: &Kustomization,
) -> Result<Option<BTreeMap<String, String>>> {
    let Some(pb) = &ks.spec.post_build else {
        return Ok(None);
    };
    let ns = ks.metadata.namespace.clone().unwrap_or_default();
    let mut vars = BTreeMap::new();
    for r in pb.substitute_from.iter().flatten() {
        let kind = r.kind.to_string();
        let data = match r.kind {
            SubstituteKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), &ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| {
                    kube_util::user_kube_error(e, &format!("substitute from {kind}/{}", r.name))
                })?
                .map(|cm| cm.data.unwrap_or_default()),
            SubstituteKind::Secret => Api::<Secret>::namespaced(client.clone(), &ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| {
                    kube_util::user_kube_error(e, &format!("substitute from {kind}/{}", r.name))
                })?
                .map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }),
            _ => {
                return Err(UserError::new(format!(
                    "substitute from {kind}/{}: unsupported kind",
                    r.name
                ))
                .into());
            }
        };
        match data {
            Some(d) => vars.extend(d),
            None if r.is_optional() => {}
            None => {
                return Err(UserError::new(format!(
                    "substitute from {kind}/{}: {kind} {ns}/{} not found",
                    r.name, r.name
                ))
                .into());
            }
        }
    }
    if let Some(s) = &pb.substitute {
        vars.extend(s.clone());
    }
    Ok(Some(vars))
}

fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Builds the Kustomization `ns`/`name` from the local `path`: what the
/// controller would apply for those files.
pub async fn build_local(
    client: &Client,
    ns: &str,
    name: &str,
    path: &Path,
) -> Result<(Kustomization, Vec<Value>)> {
    let api: Api<Kustomization> = Api::namespaced(client.clone(), ns);
    let ks = api.get(name).await.map_err(|e| {
        not_found_or(
            e,
            "Kustomization",
            ns,
            name,
            FluxKind::Kustomization.list_command(),
        )
    })?;
    if !path.is_dir() {
        return Err(UserError::new(format!("--path {}: no such directory", path.display())).into());
    }
    let vars = substitution_vars(client, &ks).await?;
    let spec = ks.spec.clone();
    let path = path.canonicalize()?;
    let objects = tokio::task::spawn_blocking(move || -> Result<Vec<Value>> {
        let tmp = tempfile::tempdir()?;
        // Copy the whole repository when there is one, so `../base`
        // references resolve as they do in the artifact.
        let (root, rel) = match git_root(&path) {
            Some(root) => {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap_or(Path::new(""))
                    .to_path_buf();
                (root, rel)
            }
            None => (path.clone(), PathBuf::new()),
        };
        copy_dir(&root, tmp.path())
            .map_err(|e| UserError::new(format!("copying {}: {e}", root.display())))?;
        let dir = tmp.path().join(rel);
        render::write_kustomization(&dir, &spec)
            .map_err(|e| UserError::new(format!("kustomization {}: {e}", path.display())))?;
        let built = render::build(&dir, &render::BuildOptions::default())
            .map_err(|e| UserError::new(format!("build failed: {e}")))?;
        Ok(render::substitute(built, vars.as_ref()).map_err(UserError::new)?)
    })
    .await??;
    let mut out = Vec::with_capacity(objects.len());
    for mut o in objects {
        let labels = o["metadata"].as_object_mut().map(|m| {
            m.entry("labels")
                .or_insert_with(|| Value::Object(Map::new()))
        });
        if let Some(Value::Object(labels)) = labels {
            labels.insert(NAME_LABEL.into(), Value::String(name.into()));
            labels.insert(NAMESPACE_LABEL.into(), Value::String(ns.into()));
            if let Some(cm) = &ks.spec.common_metadata {
                for (k, v) in cm.labels.iter().flatten() {
                    labels.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        if let Some(cm) = &ks.spec.common_metadata
            && let Some(extra) = &cm.annotations
            && let Some(meta) = o["metadata"].as_object_mut()
        {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(a) = annotations.as_object_mut() {
                for (k, v) in extra {
                    a.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        out.push(o);
    }
    Ok((ks, out))
}

/// Runs `sluice build kustomization`.
pub async fn run_build(g: &GlobalArgs, args: BuildKustomizationArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let (_, objects) = build_local(&client, &g.namespace, &args.name, &args.path).await?;
    print!("{}", crate::export::to_stream(&objects)?);
    Ok(Outcome::Ok)
}

fn subject(o: &Value) -> String {
    crate::install::subject(o)
}

/// Strips what the server owns, for comparison.
fn normalize(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "managedFields",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "uid",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
    }
    v
}

/// Replaces Secret values by `*****`, marking which changed.
pub fn mask_secrets(live: &mut Value, merged: &mut Value) {
    if merged["kind"] != "Secret" {
        return;
    }
    for field in ["data", "stringData"] {
        let before = live[field].as_object().cloned().unwrap_or_default();
        let after = merged[field].as_object().cloned().unwrap_or_default();
        for (k, v) in &before {
            let masked = if after.get(k) == Some(v) {
                "*****"
            } else {
                "***** (before)"
            };
            live[field][k] = Value::String(masked.into());
        }
        for (k, v) in &after {
            let masked = if before.get(k) == Some(v) {
                "*****"
            } else {
                "***** (after)"
            };
            merged[field][k] = Value::String(masked.into());
        }
    }
}

/// A unified diff of two texts (3 lines of context).
pub fn unified_diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Edit script: (' ', line) / ('-', line) / ('+', line).
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut keep = vec![false; ops.len()];
    for &k in &changed {
        for slot in keep
            .iter_mut()
            .take((k + 4).min(ops.len()))
            .skip(k.saturating_sub(3))
        {
            *slot = true;
        }
    }
    let mut out = String::new();
    let mut gap = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if keep[k] {
            if gap {
                out.push_str("  …\n");
                gap = false;
            }
            out.push(*op);
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        } else if k > 0 {
            gap = true;
        }
    }
    out
}

/// Runs `sluice diff`.
pub async fn run_diff(g: &GlobalArgs, args: DiffArgs) -> Result<Outcome> {
    let DiffWhat::Kustomization(args) = args.what;
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let log = Log::default();
    log.action(&format!(
        "building Kustomization {ns}/{} from {}",
        args.name,
        args.path.display()
    ));
    let (ks, objects) = build_local(&client, ns, &args.name, &args.path).await?;
    let color = Color::stdout();
    let mut resolver = Resolver::default();
    let mut differs = false;
    let mut built_ids = HashSet::new();
    for o in &objects {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let (_, namespaced) = resolver.resolve(&client, api_version, kind).await?;
        let mut o = o.clone();
        if namespaced
            && o["metadata"]["namespace"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            o["metadata"]["namespace"] = Value::String("default".into());
        }
        let ons = if namespaced {
            o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            String::new()
        };
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        built_ids.insert(ObjectId::new(ons.clone(), name, group, kind).to_string());
        let live = resolver.get(&client, api_version, kind, &ons, name).await?;
        let s = subject(&o);
        match live {
            None => {
                differs = true;
                println!("{} {s} created", color.green("►"));
            }
            Some(live) => {
                let merged = resolver.apply(&client, &o, FIELD_MANAGER, true).await?;
                let mut before = normalize(live);
                let mut after = normalize(merged);
                if before == after {
                    continue;
                }
                mask_secrets(&mut before, &mut after);
                differs = true;
                println!("{} {s} drifted", color.yellow("►"));
                let text = unified_diff(
                    &serde_norway::to_string(&before)?,
                    &serde_norway::to_string(&after)?,
                );
                for line in text.lines() {
                    let shown = match line.chars().next() {
                        Some('-') => color.red(line),
                        Some('+') => color.green(line),
                        _ => line.to_string(),
                    };
                    println!("{shown}");
                }
            }
        }
    }
    if ks.spec.prune {
        for entry in ks.inventory() {
            if built_ids.contains(&entry.id) {
                continue;
            }
            if let Ok(id) = ObjectId::parse(&entry.id) {
                differs = true;
                let s = if id.namespace.is_empty() {
                    format!("{}/{}", id.kind, id.name)
                } else {
                    format!("{}/{}/{}", id.kind, id.namespace, id.name)
                };
                println!("{} {s} deleted", color.red("►"));
            }
        }
    }
    if differs {
        Ok(Outcome::Failed)
    } else {
        log.success("no changes");
        Ok(Outcome::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_show_changed_lines_with_context() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "  a\n- b\n+ B\n  c\n");
        assert_eq!(unified_diff("x\n", "x\n"), "");
    }

    #[test]
    fn secrets_are_masked() {
        let mut live = json!({"kind": "Secret", "data": {"a": "MQ==", "b": "Mg=="}});
        let mut merged = json!({"kind": "Secret", "data": {"a": "MQ==", "b": "Mw=="}});
        mask_secrets(&mut live, &mut merged);
        assert_eq!(live["data"]["a"], "*****");
        assert_eq!(live["data"]["b"], "***** (before)");
        assert_eq!(merged["data"]["b"], "***** (after)");
    }
}
