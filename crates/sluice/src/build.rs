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
    /// `sluice build kustomization NAME --path DIR`: build as the controller
    /// would, with the Kustomization from the cluster or a file.
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
            sluice_git::remote::GitRemoteLoader::from_env()
                .with_auth(sluice_git::remote::user_ssh_auth()),
        )),
        // No jail (kustomize's load restriction decides), the default limits.
        ..Options::new()
    };
    let out = sluice_kustomize::build(&args.dir, &opts)?;
    for w in &out.warnings {
        eprintln!("# Warning: {w}");
    }
    match args.output {
        // An existing directory: one file per object, named as kustomize
        // names them (`apps_v1_deployment_web.yaml`).
        Some(dir) if dir.is_dir() => {
            for r in out.resources {
                let path = dir.join(file_name(&r));
                std::fs::write(&path, sluice_kustomize::yaml::to_yaml(&r))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Some(p) => {
            let file =
                std::fs::File::create(&p).with_context(|| format!("writing {}", p.display()))?;
            out.write_yaml(&mut std::io::BufWriter::new(file))
                .with_context(|| format!("writing {}", p.display()))?;
        }
        None => {
            let stdout = std::io::stdout().lock();
            out.write_yaml(&mut std::io::BufWriter::new(stdout))
                .context("writing to stdout")?;
        }
    }
    Ok(())
}

/// kustomize's file name for an object written to a directory: group,
/// version, kind and name joined by `_`, lower case.
fn file_name(r: &sluice_kustomize::yaml::Value) -> String {
    let api_version = r.get_str("apiVersion").unwrap_or_default();
    let kind = r.get_str("kind").unwrap_or_default();
    let name = r
        .get_path(&["metadata", "name"])
        .and_then(sluice_kustomize::yaml::Value::as_str)
        .unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk: Vec<&str> = [group, version, kind]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    format!("{}_{name}.yaml", gvk.join("_")).to_lowercase()
}

#[cfg(test)]
mod file_name_tests {
    use super::*;

    #[test]
    fn named_like_kustomize() {
        let v = |t: &str| sluice_kustomize::yaml::parse_one(t).unwrap();
        assert_eq!(
            file_name(&v(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: Web-X\n"
            )),
            "apps_v1_deployment_web-x.yaml"
        );
        assert_eq!(
            file_name(&v(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p-one\n"
            )),
            "v1_configmap_p-one.yaml"
        );
    }
}
