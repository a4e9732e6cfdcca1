//! `sluice tree` (stub).

use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice tree`.
#[derive(Debug, Args)]
pub struct TreeArgs {}

/// Runs `sluice tree`.
pub async fn run(_g: &GlobalArgs, _args: TreeArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
