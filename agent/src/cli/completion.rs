//! `writepath completion SHELL`: prints the shell's completion script for every subcommand
//! and flag (kubectl's `completion` convention).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

/// Arguments of `writepath completion`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  source <(writepath completion bash)\n  writepath completion zsh > \"${fpath[1]}/_writepath\"\n  writepath completion fish > ~/.config/fish/completions/writepath.fish"
)]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Runs `writepath completion`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cli = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "writepath", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("failed to write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
