//! `writepath policy`.

use std::process::ExitCode;

/// Arguments of `writepath policy`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `writepath policy`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("writepath policy is not built yet")
}
