//! `sluice build cluster DIR`: a whole Flux repository rendered offline from its
//! `clusters/NAME` entry point (see `sluice_render::cluster`): every Kustomization found, in
//! `dependsOn` order, then every HelmRelease whose chart is in the repository or in an HTTP(S)
//! HelmRepository (`helm`), printed as one stream or written one file per object. Secret
//! values are masked in what is printed. Exit 1 when a Kustomization fails to render.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use crate::output::{Color, Log};
use crate::{GlobalArgs, Outcome, UserError};

mod helm;

/// `sluice build cluster DIR`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The entry point: the directory the bootstrap's `flux-system` Kustomization applies,
    /// e.g. ./clusters/home (its Git work tree is the repository).
    pub dir: PathBuf,
    /// Write one file per Kustomization, DIR/NAMESPACE/NAME.yaml (HelmReleases:
    /// NAME.helmrelease.yaml), instead of printing.
    #[arg(long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// The SOPS keys of Kustomizations with `decryption`, as a decryption Secret holds them.
#[derive(Clone, Debug, Default, Args)]
pub struct KeyArgs {
    /// age identities for Kustomizations with `decryption` (as `age-keygen` writes them).
    #[arg(long = "age-key-file", value_name = "PATH")]
    pub age_key_file: Option<PathBuf>,
    /// PGP secret keys for Kustomizations with `decryption` (as `gpg --export-secret-keys
    /// --armor` writes them, without a passphrase).
    #[arg(long = "pgp-key-file", value_name = "PATH")]
    pub pgp_key_file: Option<PathBuf>,
}

fn identities(keys: &KeyArgs) -> Result<Option<Arc<sluice_sops::Identities>>> {
    if keys.age_key_file.is_none() && keys.pgp_key_file.is_none() {
        return Ok(None);
    }
    let mut ids = sluice_sops::Identities::new();
    for (flag, path, pgp) in [
        ("--age-key-file", &keys.age_key_file, false),
        ("--pgp-key-file", &keys.pgp_key_file, true),
    ] {
        let Some(path) = path else { continue };
        let failed =
            |e: &dyn std::fmt::Display| UserError::new(format!("{flag} {}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| failed(&e))?;
        if pgp {
            ids.import_pgp(&text).map_err(|e| failed(&e))?;
        } else {
            ids.import(&text).map_err(|e| failed(&e))?;
        }
    }
    Ok(Some(Arc::new(ids)))
}

/// The cluster build of the entry point `dir`, off the async runtime.
async fn build(dir: PathBuf, keys: &KeyArgs) -> Result<sluice_render::cluster::ClusterBuild> {
    let identities = identities(keys)?;
    let opts = sluice_render::RenderOptions {
        remote_loader: Some(Arc::new(
            sluice_git::GitRemoteLoader::from_env().with_auth(sluice_git::remote::user_ssh_auth()),
        )),
        ..Default::default()
    };
    let shown = dir.display().to_string();
    tokio::task::spawn_blocking(move || {
        sluice_render::cluster::build_cluster(&dir, identities, &opts)
    })
    .await?
    .map_err(|e| UserError::new(format!("{shown}: {e}")).into())
}

/// Runs `sluice build cluster`.
pub async fn run(_g: &GlobalArgs, args: ClusterArgs) -> Result<Outcome> {
    let build = build(args.dir.clone(), &args.keys).await?;

    let log = Log::default();
    let color = Color::stderr();
    let mut failed = false;
    let mut stream = String::new();
    for r in &build.rendered {
        match &r.result {
            Ok(objects) => {
                let mut objects = objects.clone();
                for o in &mut objects {
                    sluice_render::mask_secret(o);
                }
                let text = crate::export::to_stream(&objects)?;
                match &args.output_dir {
                    Some(out) => {
                        let dir = out.join(&r.namespace);
                        std::fs::create_dir_all(&dir)
                            .map_err(|e| UserError::new(format!("{}: {e}", dir.display())))?;
                        let file = dir.join(format!("{}.yaml", r.name));
                        std::fs::write(&file, &text)
                            .map_err(|e| UserError::new(format!("{}: {e}", file.display())))?;
                        log.success(&format!(
                            "Kustomization {}/{} ({}): {} objects → {}",
                            r.namespace,
                            r.name,
                            r.path,
                            objects.len(),
                            file.display()
                        ));
                    }
                    None => {
                        stream.push_str(&format!(
                            "# Kustomization {}/{} ({})\n",
                            r.namespace, r.name, r.path
                        ));
                        stream.push_str(&text);
                        log.success(&format!(
                            "Kustomization {}/{} ({}): {} objects",
                            r.namespace,
                            r.name,
                            r.path,
                            objects.len()
                        ));
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "{} Kustomization {}/{} ({}): {e}",
                    color.red("✗"),
                    r.namespace,
                    r.name,
                    r.path
                );
            }
        }
    }
    for (id, why) in &build.skipped {
        log.warning(&format!("Kustomization {id} not rendered: {why}"));
    }
    for outcome in helm::render_all(&build).await {
        match outcome {
            helm::HelmOutcome::Rendered {
                id,
                chart,
                mut objects,
            } => {
                for o in &mut objects {
                    sluice_render::mask_secret(o);
                }
                let text = crate::export::to_stream(&objects)?;
                let what = format!("HelmRelease {id} ({chart})");
                match &args.output_dir {
                    Some(out) => {
                        let (ns, name) = id.split_once('/').unwrap_or(("", &id));
                        let dir = out.join(ns);
                        std::fs::create_dir_all(&dir)
                            .map_err(|e| UserError::new(format!("{}: {e}", dir.display())))?;
                        let file = dir.join(format!("{name}.helmrelease.yaml"));
                        std::fs::write(&file, &text)
                            .map_err(|e| UserError::new(format!("{}: {e}", file.display())))?;
                        log.success(&format!(
                            "{what}: {} objects → {}",
                            objects.len(),
                            file.display()
                        ));
                    }
                    None => {
                        stream.push_str(&format!("# {what}\n{text}"));
                        log.success(&format!("{what}: {} objects", objects.len()));
                    }
                }
            }
            helm::HelmOutcome::Failed { id, error } => {
                failed = true;
                eprintln!("{} HelmRelease {id}: {error}", color.red("✗"));
            }
            helm::HelmOutcome::Skipped { id, why } => {
                log.warning(&format!("HelmRelease {id} not rendered: {why}"));
            }
        }
    }
    print!("{stream}");
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}

/// `sluice diff cluster DIR --against REF`.
#[derive(Debug, Args)]
pub struct DiffClusterArgs {
    /// The entry point in the work tree, e.g. ./clusters/home.
    pub dir: PathBuf,
    /// The Git ref to compare with (a branch, tag or commit; read with `git archive`).
    #[arg(long, value_name = "REF")]
    pub against: String,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `KIND namespace/name` of a rendered object.
fn object_id(o: &serde_json::Value) -> String {
    let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

/// Every rendered object, by Kustomization then object id, as masked YAML.
/// Every rendered object as YAML, by (what rendered it, its id): the Kustomizations' and the
/// HelmReleases' (see [`helm`]).
async fn by_object(
    build: &sluice_render::cluster::ClusterBuild,
) -> Result<std::collections::BTreeMap<(String, String), String>> {
    let mut owned: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for r in &build.rendered {
        if let Ok(objects) = &r.result {
            owned.push((
                format!("Kustomization {}/{}", r.namespace, r.name),
                objects.clone(),
            ));
        }
    }
    for h in helm::render_all(build).await {
        if let helm::HelmOutcome::Rendered { id, objects, .. } = h {
            owned.push((format!("HelmRelease {id}"), objects));
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for (owner, objects) in owned {
        for mut o in objects {
            sluice_render::mask_secret(&mut o);
            out.insert((owner.clone(), object_id(&o)), serde_norway::to_string(&o)?);
        }
    }
    Ok(out)
}

/// Runs `sluice diff cluster`: exit 0 when the renders are the same, 1 when they differ.
pub async fn run_diff(_g: &GlobalArgs, args: DiffClusterArgs) -> Result<Outcome> {
    let entry = args
        .dir
        .canonicalize()
        .map_err(|e| UserError::new(format!("{}: {e}", args.dir.display())))?;
    let root = entry
        .ancestors()
        .find(|d| d.join(".git").exists())
        .ok_or_else(|| UserError::new(format!("{}: not in a Git work tree", args.dir.display())))?
        .to_path_buf();
    let rel = entry.strip_prefix(&root).unwrap_or(&entry).to_path_buf();
    // The tree at REF, as `git archive` gives it.
    let then = tempfile::tempdir()?;
    let archive = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["archive", "--format=tar", &args.against])
        .output()
        .map_err(|e| {
            UserError::new(format!("running git: {e}")).hint("sluice diff cluster needs git")
        })?;
    if !archive.status.success() {
        return Err(UserError::new(format!(
            "--against {}: {}",
            args.against,
            String::from_utf8_lossy(&archive.stderr).trim()
        ))
        .into());
    }
    let mut untar = std::process::Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(then.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| UserError::new(format!("running tar: {e}")))?;
    if let Some(mut stdin) = untar.stdin.take() {
        use std::io::Write;
        stdin.write_all(&archive.stdout)?;
    }
    if !untar.wait()?.success() {
        return Err(UserError::new(format!(
            "--against {}: extracting the tree failed",
            args.against
        ))
        .into());
    }
    std::fs::create_dir_all(then.path().join(".git"))?;
    let before = build(then.path().join(&rel), &args.keys).await?;
    let after = build(entry.clone(), &args.keys).await?;
    let (before, after) = (by_object(&before).await?, by_object(&after).await?);
    let color = Color::stdout();
    let mut differ = false;
    let keys: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (owner, id) = key;
        match (before.get(key), after.get(key)) {
            (Some(b), Some(a)) if a == b => {}
            (Some(b), Some(a)) => {
                differ = true;
                println!("{} {id} ({owner}) changed", color.yellow("►"));
                print!("{}", crate::diff::unified_diff(b, a));
            }
            (None, Some(_)) => {
                differ = true;
                println!("{} {id} ({owner}) added", color.green("+"));
            }
            (Some(_), None) => {
                differ = true;
                println!("{} {id} ({owner}) removed", color.red("-"));
            }
            (None, None) => {}
        }
    }
    Ok(if differ { Outcome::Failed } else { Outcome::Ok })
}
