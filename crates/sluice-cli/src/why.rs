//! `sluice why` (stub).

use anyhow::Result;
use clap::Args;

use crate::{GlobalArgs, Outcome};

/// `sluice why`.
#[derive(Debug, Args)]
pub struct WhyArgs {}

/// Runs `sluice why`.
pub async fn run(_g: &GlobalArgs, _args: WhyArgs) -> Result<Outcome> {
    Err(crate::user_error("not implemented yet"))
}
