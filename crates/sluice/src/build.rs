//! `sluice build DIR`: render a kustomization like `kustomize build`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use sluice_kustomize::{Options, Reorder};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReorderArg {
    /// kustomize's kind order (Namespaces first, webhooks last).
    Legacy,
    /// Depth-first input order.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoadRestrictor {
    #[value(name = "LoadRestrictionsRootOnly")]
    RootOnly,
    #[value(name = "LoadRestrictionsNone")]
    None,
}

/// Arguments of `sluice build`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BuildArgs {
    /// `sluice build kustomization NAME --path DIR`: build with a
    /// Kustomization's overlays and substitutions from the cluster.
    #[command(subcommand)]
    pub target: Option<sluice_cli::BuildTarget>,
    /// Directory containing a kustomization (default: current directory).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Output order of resources.
    #[arg(long, value_enum)]
    pub reorder: Option<ReorderArg>,
    /// Whether files outside a kustomization's directory may be read.
    #[arg(long, value_enum, default_value = "LoadRestrictionsRootOnly")]
    pub load_restrictor: LoadRestrictor,
    /// Write the output to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Accepted for compatibility with `kustomize build`; Helm charts are
    /// not supported yet (a kustomization using them is refused).
    #[arg(long, hide = true)]
    pub enable_helm: bool,
    /// Accepted for compatibility; plugins and KRM functions are refused.
    #[arg(long, hide = true)]
    pub enable_alpha_plugins: bool,
    /// Accepted for compatibility; exec functions are refused.
    #[arg(long, hide = true)]
    pub enable_exec: bool,
}

pub fn run(args: BuildArgs) -> Result<()> {
    let opts = Options {
        reorder: match args.reorder {
            Some(ReorderArg::Legacy) => Reorder::Legacy,
            Some(ReorderArg::None) => Reorder::None,
            None => Reorder::Unspecified,
        },
        load_restrict_root_only: args.load_restrictor == LoadRestrictor::RootOnly,
        // Remote bases and HTTP(S) files, cached under $SLUICE_REMOTE_CACHE;
        // ssh with the user's known_hosts and default key.
        remote: Some(std::sync::Arc::new(
            sluice_source::remote::GitRemoteLoader::from_env()
                .with_auth(sluice_source::remote::user_ssh_auth()),
        )),
    };
    let out = sluice_kustomize::build(&args.dir, &opts)?;
    for w in &out.warnings {
        eprintln!("# Warning: {w}");
    }
    let text = out.to_yaml();
    match args.output {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("writing to stdout")?;
        }
    }
    Ok(())
}
