//! `sluice build kustomization NAME --path DIR` and
//! `sluice diff kustomization NAME --path DIR`.
//!
//! Both render local files with the controller's own pipeline
//! (`sluice_render::render`): a private copy of the work tree, the
//! Kustomization's overlays, SOPS decryption with the Kustomization's
//! decryption Secret, the kustomize build, `postBuild` substitution (Flux's
//! rule: only when something is declared, unless `substituteStrategy:
//! Always`) with the variables read from the cluster, then the owner labels
//! and `commonMetadata`, as `flux build kustomization` prints them.
//!
//! The Kustomization comes from the cluster, or from `--kustomization-file`.
//! With `--dry-run` (which needs `--kustomization-file`, as in Flux) nothing
//! is read from the cluster: `substituteFrom` is skipped and nothing is
//! decrypted. `build` masks Secret values (`**SOPS**`, as Flux) when they
//! are or were SOPS-encrypted.
//!
//! `diff` then asks the API server what applying would change (server-side
//! apply, dry run, field manager `kustomize-controller`) and prints the
//! difference per object, Secret values masked. Exit 0: no difference, 1:
//! differences, 2: error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use kube::{Api, Client};
use serde_json::Value;
use sluice_api::Kustomization;
use sluice_api::kustomization::FIELD_MANAGER;
use sluice_api::meta::ObjectId;

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
    /// A HelmRelease rendered from a local chart, against the cluster.
    #[command(name = "helmrelease", visible_alias = "hr")]
    HelmRelease(crate::helmrelease::BuildHelmReleaseArgs),
    /// A whole repository rendered offline (as `sluice build cluster`), against the same
    /// repository at a Git ref: what a branch changes, for a pull request check.
    Cluster(crate::cluster::DiffClusterArgs),
}

/// A Kustomization and the local directory of its `spec.path`.
#[derive(Debug, Args)]
pub struct BuildKustomizationArgs {
    /// The Kustomization (its overlays, substitutions and decryption are
    /// used).
    pub name: String,

    /// The local directory that corresponds to the Kustomization's
    /// `spec.path`.
    #[arg(long, value_name = "DIR")]
    pub path: PathBuf,

    /// Read the Kustomization from this YAML file instead of the cluster
    /// (the document of that kind with NAME, in the namespace or without
    /// one).
    #[arg(long, value_name = "FILE")]
    pub kustomization_file: Option<PathBuf>,

    /// Do not talk to the cluster for the build: `substituteFrom` is
    /// skipped and SOPS is not decrypted (needs --kustomization-file).
    #[arg(long)]
    pub dry_run: bool,
}

/// The Kustomization `name` in `ns` from a YAML file of one or more
/// documents, as `flux build --kustomization-file` finds it.
pub fn kustomization_from_file(file: &Path, ns: &str, name: &str) -> Result<Kustomization> {
    object_from_file(
        file,
        ns,
        name,
        "kustomize.toolkit.fluxcd.io/",
        "Kustomization",
    )
}

/// The object of `kind` (its apiVersion in the group `group_prefix` starts) named `name` in
/// `ns` (or without a namespace) from a YAML file of one or more documents.
pub fn object_from_file<T: serde::de::DeserializeOwned + kube::Resource>(
    file: &Path,
    ns: &str,
    name: &str,
    group_prefix: &str,
    kind: &str,
) -> Result<T> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| UserError::new(format!("reading {}: {e}", file.display())))?;
    let docs = sluice_kustomize::yaml::parse_all(&text)
        .map_err(|e| UserError::new(format!("{}: {e}", file.display())))?;
    for (i, doc) in docs.iter().enumerate() {
        let v = sluice_render::to_json(doc);
        let api_version = v["apiVersion"].as_str().unwrap_or_default();
        if !api_version.starts_with(group_prefix)
            || v["kind"] != kind
            || v["metadata"]["name"] != name
        {
            continue;
        }
        let doc_ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
        if !doc_ns.is_empty() && doc_ns != ns {
            continue;
        }
        let mut obj: T = serde_json::from_value(v).map_err(|e| {
            UserError::new(format!(
                "{} (document {}): {kind} {name}: {e}",
                file.display(),
                i + 1
            ))
        })?;
        obj.meta_mut().namespace = Some(ns.to_string());
        return Ok(obj);
    }
    Err(UserError::new(format!(
        "failed to find {kind} with name '{name}' and namespace '{ns}' in file '{}'",
        file.display()
    ))
    .into())
}

/// The Kustomization to build: from `--kustomization-file` (with the live
/// object's status, for diff's prune view, when there is a cluster) or
/// from the cluster.
async fn kustomization_for(
    client: Option<&Client>,
    ns: &str,
    args: &BuildKustomizationArgs,
) -> Result<Kustomization> {
    let name = args.name.as_str();
    let live = |client: &Client| {
        let api: Api<Kustomization> = Api::namespaced(client.clone(), ns);
        async move { api.get_opt(name).await }
    };
    match (&args.kustomization_file, client) {
        (Some(file), client) => {
            let mut ks = kustomization_from_file(file, ns, name)?;
            if let Some(c) = client
                && let Ok(Some(l)) = live(c).await
            {
                ks.status = l.status;
            }
            Ok(ks)
        }
        (None, Some(client)) => Api::<Kustomization>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map_err(|e| {
                not_found_or(
                    e,
                    "Kustomization",
                    ns,
                    name,
                    FluxKind::Kustomization.list_command(),
                )
            }),
        (None, None) => Err(UserError::new("--dry-run needs --kustomization-file").into()),
    }
}

/// A local render of a Kustomization.
pub struct Built {
    pub kustomization: Kustomization,
    pub objects: Vec<Value>,
    /// Whether SOPS decryption ran (Secret values are then plaintext).
    pub decrypted: bool,
}

/// Renders the Kustomization `args.name` in `ns` from the local
/// `args.path` with the controller's pipeline: what the controller would
/// apply for those files. `client` is `None` for `--dry-run`.
pub async fn build_local(
    client: Option<&Client>,
    ns: &str,
    args: &BuildKustomizationArgs,
) -> Result<Built> {
    let ks = kustomization_for(client, ns, args).await?;
    if !args.path.is_dir() {
        return Err(
            UserError::new(format!("--path {}: no such directory", args.path.display())).into(),
        );
    }
    let inputs = match client {
        Some(client) if !args.dry_run => sluice_render::inputs::read(client, &ks, None)
            .await
            .map_err(|m| UserError::new(format!("Kustomization {ns}/{}: {m}", args.name)))?,
        _ => sluice_render::inputs::offline(&ks.spec),
    };
    let decrypted = inputs.decryption.is_some();
    let mut spec = ks.spec.clone();
    let path = args.path.clone();
    let opts = sluice_render::RenderOptions {
        owner: Some(sluice_render::Owner {
            name: args.name.clone(),
            namespace: ns.to_string(),
        }),
        // Remote bases and HTTP(S) files, cached under $SLUICE_REMOTE_CACHE;
        // ssh with the user's known_hosts and default key.
        remote_loader: Some(std::sync::Arc::new(
            sluice_git::GitRemoteLoader::from_env().with_auth(sluice_git::remote::user_ssh_auth()),
        )),
        ..Default::default()
    };
    let objects = tokio::task::spawn_blocking(move || -> Result<Vec<Value>> {
        // A private copy (the whole Git work tree, so `../base` resolves as
        // in the artifact): the render writes into it, never into the
        // user's files.
        let (_tmp, root, rel) = sluice_render::checkout_local(&path)
            .map_err(|e| UserError::new(format!("--path {}: {e}", path.display())))?;
        spec.path = Some(rel);
        sluice_render::render(&root, &spec, &inputs, &opts).map_err(|e| {
            UserError::new(format!("{} ({}): {}", path.display(), e.reason, e.message)).into()
        })
    })
    .await??;
    Ok(Built {
        kustomization: ks,
        objects,
        decrypted,
    })
}

/// Runs `sluice build kustomization`.
pub async fn run_build(g: &GlobalArgs, args: BuildKustomizationArgs) -> Result<Outcome> {
    if args.dry_run && args.kustomization_file.is_none() {
        return Err(UserError::new("--dry-run needs --kustomization-file").into());
    }
    let client = if args.dry_run {
        None
    } else {
        Some(kube_util::client(g).await?)
    };
    let built = build_local(client.as_ref(), &g.namespace, &args).await?;
    let mut objects = built.objects;
    for o in &mut objects {
        // Secret values are never printed: masked when SOPS was decrypted
        // for this build, or when they are still encrypted (as flux build).
        if built.decrypted || o.get("sops").is_some() {
            sluice_render::mask_secret(o);
        }
    }
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
    let args = match args.what {
        DiffWhat::Kustomization(args) => args,
        DiffWhat::HelmRelease(args) => return crate::helmrelease::run_diff(g, args).await,
        DiffWhat::Cluster(args) => return crate::cluster::run_diff(g, args).await,
    };
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let log = Log::default();
    log.action(&format!(
        "building Kustomization {ns}/{} from {}",
        args.name,
        args.path.display()
    ));
    let Built {
        kustomization: ks,
        objects,
        ..
    } = build_local(Some(&client), ns, &args).await?;
    let color = Color::stdout();
    let (mut differs, built_ids) =
        diff_objects(&client, &objects, FIELD_MANAGER, "default").await?;
    if ks.spec.prune {
        for entry in ks.inventory() {
            if built_ids.contains(&entry.id) {
                continue;
            }
            if let Ok(id) = ObjectId::parse(&entry.id) {
                differs = true;
                println!("{} {} deleted", color.red("►"), id_subject(&id));
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

/// `Kind/namespace/name` (`Kind/name` when cluster-scoped).
pub(crate) fn id_subject(id: &ObjectId) -> String {
    if id.namespace.is_empty() {
        format!("{}/{}", id.kind, id.name)
    } else {
        format!("{}/{}/{}", id.kind, id.namespace, id.name)
    }
}

/// Prints, for each object, whether applying it (server-side, dry run, as `field_manager`)
/// would create it or change the live one, with the changed lines (Secret values masked).
/// Namespaced objects without a namespace go to `default_ns`. Gives whether anything would
/// change and the ids (`ObjectId` strings) of the objects.
pub(crate) async fn diff_objects(
    client: &Client,
    objects: &[Value],
    field_manager: &str,
    default_ns: &str,
) -> Result<(bool, HashSet<String>)> {
    let color = Color::stdout();
    let mut resolver = Resolver::default();
    let mut differs = false;
    let mut built_ids = HashSet::new();
    for o in objects {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let (_, namespaced) = resolver.resolve(client, api_version, kind).await?;
        let mut o = o.clone();
        if namespaced
            && o["metadata"]["namespace"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            o["metadata"]["namespace"] = Value::String(default_ns.into());
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
        let live = resolver.get(client, api_version, kind, &ons, name).await?;
        let s = subject(&o);
        match live {
            None => {
                differs = true;
                println!("{} {s} created", color.green("►"));
            }
            Some(live) => {
                let merged = resolver.apply(client, &o, field_manager, true).await?;
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
    Ok((differs, built_ids))
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
