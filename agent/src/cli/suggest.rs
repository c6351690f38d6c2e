//! `writepath suggest`.

use std::process::ExitCode;

/// Arguments of `writepath suggest`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `writepath suggest`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("writepath suggest is not built yet")
}
