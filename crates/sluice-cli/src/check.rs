//! `sluice check` (stub).

use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice check`.
#[derive(Debug, Args)]
pub struct CheckArgs {}

/// Runs `sluice check`.
pub async fn run(_g: &GlobalArgs, _args: CheckArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
