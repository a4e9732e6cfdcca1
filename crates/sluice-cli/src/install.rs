//! stub
use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice install`.
#[derive(Debug, Args)]
pub struct InstallArgs {}
/// `sluice uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {}

/// Runs `sluice install`.
pub async fn run_install(_g: &GlobalArgs, _args: InstallArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
/// Runs `sluice uninstall`.
pub async fn run_uninstall(_g: &GlobalArgs, _args: UninstallArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
