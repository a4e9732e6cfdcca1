//! `sluice logs` (stub).

use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {}

/// Runs `sluice logs`.
pub async fn run(_g: &GlobalArgs, _args: LogsArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
