//! `sluice build cluster DIR`: a whole Flux repository rendered offline from its
//! `clusters/NAME` entry point (see `sluice_render::cluster`): every Kustomization found, in
//! `dependsOn` order, printed as one stream or written one file per Kustomization. Secret
//! values are masked in what is printed. Exit 1 when a Kustomization fails to render.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use crate::output::{Color, Log};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice build cluster DIR`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The entry point: the directory the bootstrap's `flux-system` Kustomization applies,
    /// e.g. ./clusters/home (its Git work tree is the repository).
    pub dir: PathBuf,
    /// Write one file per Kustomization, DIR/NAMESPACE/NAME.yaml, instead of printing.
    #[arg(long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// age identities for Kustomizations with `decryption` (as `age-keygen` writes them).
    #[arg(long = "age-key-file", value_name = "PATH")]
    pub age_key_file: Option<PathBuf>,
}

/// Runs `sluice build cluster`.
pub async fn run(_g: &GlobalArgs, args: ClusterArgs) -> Result<Outcome> {
    let identities = match &args.age_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UserError::new(format!("--age-key-file {}: {e}", path.display())))?;
            let ids = sluice_sops::Identities::parse(&text)
                .map_err(|e| UserError::new(format!("--age-key-file {}: {e}", path.display())))?;
            Some(Arc::new(ids))
        }
        None => None,
    };
    let opts = sluice_render::RenderOptions {
        remote_loader: Some(Arc::new(
            sluice_git::GitRemoteLoader::from_env().with_auth(sluice_git::remote::user_ssh_auth()),
        )),
        ..Default::default()
    };
    let dir = args.dir.clone();
    let build = tokio::task::spawn_blocking(move || {
        sluice_render::cluster::build_cluster(&dir, identities, &opts)
    })
    .await?
    .map_err(|e| UserError::new(format!("{}: {e}", args.dir.display())))?;

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
    if !build.helm_releases.is_empty() {
        log.warning(&format!(
            "HelmReleases not rendered (their charts come from their repositories; see `sluice build helmrelease`): {}",
            build.helm_releases.join(", ")
        ));
    }
    print!("{stream}");
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}
