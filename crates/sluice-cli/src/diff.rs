//! stub
use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {}
/// `sluice build kustomization`.
#[derive(Debug, Args)]
pub struct BuildKustomizationArgs {}

/// Runs `sluice diff`.
pub async fn run_diff(_g: &GlobalArgs, _args: DiffArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
/// Runs `sluice build kustomization`.
pub async fn run_build(_g: &GlobalArgs, _args: BuildKustomizationArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
