//! `writepath record`.

use std::process::ExitCode;

/// Arguments of `writepath record`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `writepath record`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("writepath record is not built yet")
}
