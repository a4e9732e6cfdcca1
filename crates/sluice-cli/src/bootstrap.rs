//! `sluice bootstrap` (stub).

use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {}

/// Runs `sluice bootstrap`.
pub async fn run(_g: &GlobalArgs, _args: BootstrapArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
