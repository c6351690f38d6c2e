//! `writepath patch`.

use std::process::ExitCode;

/// Arguments of `writepath patch`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `writepath patch`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("writepath patch is not built yet")
}
