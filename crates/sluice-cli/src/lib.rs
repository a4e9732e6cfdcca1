//! The `sluice` command line, as a library: every command's arguments (clap
//! derive) and logic, so the binary stays a thin layer and the commands are
//! testable.
//!
//! The verbs follow the `flux` CLI (`get`, `reconcile`, `suspend`, `resume`,
//! `events`, `export`, `install`, `uninstall`, `check`, `tree`, `diff`,
//! `build`, `bootstrap`, `logs`, `completion`) and add `why`, which walks
//! from an object to the root cause of it not being ready.
//!
//! Conventions:
//! - errors are one line naming the object and the cause, with a `hint:`
//!   line when there is an obvious next step ([`UserError`]);
//! - progress goes to stderr, results to stdout;
//! - colour only when the stream is a terminal (and `NO_COLOR` is unset).

pub mod artifact;
pub mod bootstrap;
pub mod check;
pub mod cluster;
pub mod create;
pub mod delete;
pub mod diff;
pub mod events;
pub mod export;
pub mod get;
pub mod helmrelease;
mod http;
pub mod install;
pub mod kube_util;
pub mod logs;
pub mod notification;
pub mod output;
pub mod reconcile;
pub mod stats;
pub mod takeover;
pub mod tree;
pub mod why;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use output::OutputFormat;

/// The namespace sluice (and Flux) lives in by default.
pub const DEFAULT_NAMESPACE: &str = "flux-system";

/// Flags every command understands (flattened into the top-level command
/// with `global = true`).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The namespace scope of the operation.
    #[arg(short = 'n', long, global = true, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Act on all namespaces (where it makes sense: get, events).
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,

    /// Path to the kubeconfig file (default: $KUBECONFIG, then
    /// ~/.kube/config, then the in-cluster configuration).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

impl GlobalArgs {
    /// Globals for a namespace, with the default kubeconfig (for tests).
    pub fn for_namespace(namespace: &str) -> Self {
        GlobalArgs {
            namespace: namespace.to_string(),
            all_namespaces: false,
            kubeconfig: None,
            context: None,
        }
    }
}

/// The commands of this crate, flattened into the binary's subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Show sources and Kustomizations and their readiness.
    Get(get::GetArgs),
    /// Ask for a reconciliation now and wait for its outcome.
    Reconcile(reconcile::ReconcileArgs),
    /// Suspend reconciliation of a Kustomization or a source.
    Suspend(reconcile::SuspendArgs),
    /// Resume a suspended Kustomization or source, and wait for it.
    Resume(reconcile::SuspendArgs),
    /// Show the Kubernetes events of Flux objects (and what Alerts sent where).
    Events(events::EventsArgs),
    /// Create sources, Kustomizations, Secrets, Alerts, alert Providers and Receivers (or
    /// print them with --export).
    Create(create::CreateArgs),
    /// Delete a Flux object (after asking, unless --silent).
    Delete(delete::DeleteArgs),
    /// Count the Flux objects by kind: running, failing, suspended, artifact storage.
    Stats(stats::StatsArgs),
    /// Substitute ${VAR} from the environment in standard input, as Flux's postBuild does.
    Envsubst(stats::EnvsubstArgs),
    /// Print the version of this binary and of the controller in the cluster.
    Version(stats::VersionArgs),
    /// Print objects as clean YAML, ready to commit to Git.
    Export(export::ExportArgs),
    /// Explain why an object is not ready, down to the root cause.
    Why(why::WhyArgs),
    /// Install sluice (CRDs, RBAC, the controller) or print its manifests.
    Install(install::InstallArgs),
    /// Remove what `sluice install` created.
    Uninstall(install::UninstallArgs),
    /// Check the cluster: API server, CRDs, controller, conflicts.
    Check(check::CheckArgs),
    /// Show the objects a Kustomization manages, as a tree.
    Tree(tree::TreeArgs),
    /// Compare local manifests with the cluster (exit 0: same, 1: differ,
    /// 2: error).
    Diff(diff::DiffArgs),
    /// Deploy sluice to a cluster from a Git repository and keep it in
    /// sync with it.
    Bootstrap(bootstrap::BootstrapArgs),
    /// Show the sluice controller's logs.
    Logs(logs::LogsArgs),
    /// Push a directory of manifests to an OCI registry as an artifact.
    #[command(subcommand)]
    Push(artifact::PushTarget),
    /// Pull an OCI artifact and extract its content.
    #[command(subcommand)]
    Pull(artifact::PullTarget),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

/// `sluice completion SHELL`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// An error in what the user asked for (or found in the cluster): printed as
/// one line, with an optional hint, never with a backtrace.
#[derive(Debug, Clone)]
pub struct UserError {
    /// What went wrong, naming the object.
    pub message: String,
    /// The obvious next step, if there is one.
    pub hint: Option<String>,
}

impl UserError {
    /// An error without a hint.
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// Shorthand for returning a [`UserError`].
pub fn user_error(message: impl Into<String>) -> anyhow::Error {
    UserError::new(message).into()
}

/// A command's outcome when it is not plain success or failure (`diff`,
/// `check`, `why`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: differences found, checks failed, object not ready.
    Failed,
}

/// Prints an error the CLI way: `✗ message` and `  hint: …`.
pub fn print_error(err: &anyhow::Error) {
    let color = output::Color::stderr();
    if let Some(user) = err.downcast_ref::<UserError>() {
        eprintln!("{} {}", color.red("✗"), user.message);
        if let Some(hint) = &user.hint {
            eprintln!("  {} {hint}", color.dim("hint:"));
        }
    } else {
        eprintln!("{} {}", color.red("✗"), one_line(&format!("{err:#}")));
    }
}

fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs one command to completion. `root` builds the binary's whole clap
/// command (for `completion`).
pub fn run(globals: GlobalArgs, command: Command, root: fn() -> clap::Command) -> ExitCode {
    // diff: 2 for errors, 1 for differences.
    let error_code = if matches!(command, Command::Diff(_)) {
        2
    } else {
        1
    };
    if let Command::Completion(args) = &command {
        let mut cmd = root();
        clap_complete::generate(args.shell, &mut cmd, "sluice", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("✗ starting the async runtime: {e}");
            return ExitCode::from(error_code);
        }
    };
    let result = runtime.block_on(dispatch(globals, command));
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(err) => {
            print_error(&err);
            ExitCode::from(error_code)
        }
    }
}

/// Runs a command on the caller's runtime.
pub async fn dispatch(globals: GlobalArgs, command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Get(args) => get::run(&globals, args).await,
        Command::Reconcile(args) => reconcile::run_reconcile(&globals, args).await,
        Command::Suspend(args) => reconcile::run_suspend(&globals, args, true).await,
        Command::Resume(args) => reconcile::run_suspend(&globals, args, false).await,
        Command::Events(args) => events::run(&globals, args).await,
        Command::Create(args) => create::run(&globals, args).await,
        Command::Delete(args) => delete::run(&globals, args).await,
        Command::Stats(args) => stats::run(&globals, args).await,
        Command::Envsubst(args) => stats::envsubst(&args),
        Command::Version(args) => stats::version(&globals, &args).await,
        Command::Export(args) => export::run(&globals, args).await,
        Command::Why(args) => why::run(&globals, args).await,
        Command::Install(args) => install::run_install(&globals, args).await,
        Command::Uninstall(args) => install::run_uninstall(&globals, args).await,
        Command::Check(args) => check::run(&globals, args).await,
        Command::Tree(args) => tree::run(&globals, args).await,
        Command::Diff(args) => diff::run_diff(&globals, args).await,
        Command::Bootstrap(args) => bootstrap::run(&globals, args).await,
        Command::Logs(args) => logs::run(&globals, args).await,
        Command::Push(target) => artifact::run_push(target).await,
        Command::Pull(target) => artifact::run_pull(target).await,
        Command::Completion(_) => Ok(Outcome::Ok),
    }
}

/// `sluice build kustomization NAME --path DIR`, the Kustomization-aware
/// form of `sluice build` (the binary keeps `sluice build DIR` for plain
/// kustomize builds), rendered with the controller's pipeline
/// (`sluice-render`).
#[derive(Debug, Subcommand)]
pub enum BuildTarget {
    /// Build a Kustomization's manifests from a local directory as the
    /// controller would (overlays, SOPS decryption, substitutions): what
    /// would be applied. Offline with --kustomization-file --dry-run.
    #[command(visible_alias = "ks")]
    Kustomization(diff::BuildKustomizationArgs),
    /// Render a HelmRelease from a local chart as the controller would
    /// (values and valuesFrom, release name and namespace, post-renderers):
    /// what would be installed, hooks included. Offline with
    /// --helmrelease-file --dry-run.
    #[command(name = "helmrelease", visible_alias = "hr")]
    HelmRelease(helmrelease::BuildHelmReleaseArgs),
    /// Render a whole Flux repository offline from its clusters/NAME entry point: every
    /// Kustomization found, in dependsOn order, with the repository's ConfigMaps and Secrets
    /// as postBuild variables (and SOPS with --age-key-file or --pgp-key-file), then every
    /// HelmRelease whose chart is in the repository or in an HTTP(S) HelmRepository
    /// (downloaded).
    Cluster(cluster::ClusterArgs),
}

/// Runs `sluice build kustomization`.
pub fn run_build(globals: GlobalArgs, target: BuildTarget) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("✗ starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match target {
        BuildTarget::Kustomization(args) => runtime.block_on(diff::run_build(&globals, args)),
        BuildTarget::HelmRelease(args) => runtime.block_on(helmrelease::run_build(&globals, args)),
        BuildTarget::Cluster(args) => runtime.block_on(cluster::run(&globals, args)),
    };
    match result {
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            print_error(&err);
            ExitCode::FAILURE
        }
    }
}
