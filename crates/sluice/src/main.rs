//! The `sluice` binary: a thin command-line layer over the library crates.

mod build;
mod controller;
mod helm;
mod leader;
mod logging;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::logging::LogFormat;

/// sluice: a lightweight GitOps engine for k3s and small Kubernetes clusters.
///
/// It serves Flux's APIs (GitRepository, Kustomization), so repositories and
/// tooling written for Flux work unchanged.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SLUICE_LOG_FORMAT")]
    log_format: LogFormat,

    /// Log level or filter (for example `debug` or `sluice=debug,kube=warn`);
    /// overrides RUST_LOG.
    #[arg(long, global = true, env = "SLUICE_LOG_LEVEL")]
    log_level: Option<String>,

    #[command(flatten)]
    globals: sluice_cli::GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Command {
    /// Run the controllers (GitRepository, Kustomization, reloader), with
    /// Prometheus metrics and health probes.
    Controller(controller::ControllerArgs),
    /// Render a kustomization directory, like `kustomize build`.
    Build(build::BuildArgs),
    /// Render Helm charts locally (`sluice helm template`, as `helm template`).
    Helm(helm::HelmArgs),
    #[command(flatten)]
    Cli(sluice_cli::Command),
}

/// `Cli::parse()`, less the freeing of clap's command tree and matches
/// afterwards for a short command: for `sluice helm template` of a small chart
/// that freeing was a twentieth of the whole run, and the process needs
/// neither again (`Cli::command` builds a new tree where one is wanted). The
/// controller, which runs for days, frees them.
fn parse_cli() -> Cli {
    let mut command = Cli::command();
    let mut matches = command.get_matches_mut();
    match Cli::from_arg_matches_mut(&mut matches) {
        Ok(cli) => {
            if !matches!(cli.command, Command::Controller(_)) {
                std::mem::forget(matches);
                std::mem::forget(command);
            }
            cli
        }
        Err(e) => e.format(&mut command).exit(),
    }
}

fn main() -> ExitCode {
    let cli = parse_cli();
    if let Err(err) = logging::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let result: anyhow::Result<()> = match cli.command {
        Command::Controller(args) => controller::run(args),
        Command::Build(args) => match args.target {
            Some(target) => return sluice_cli::run_build(cli.globals, target),
            None => build::run(args),
        },
        Command::Helm(args) => {
            // `sluice helm template` is a drop-in for `helm template`: its errors are printed
            // as Helm prints them (`Error: ...`), so scripts that read them see Helm's text.
            return match helm::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("Error: {err:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Cli(command) => return sluice_cli::run(cli.globals, command, Cli::command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
