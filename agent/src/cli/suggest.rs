//! `writepath suggest`: read one or more reports, merge them per workload and container, and
//! print the volumes that let each container run with a read-only root filesystem.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::Output;
use crate::suggest::{self, Suggestions};

/// Arguments of `writepath suggest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report written by `writepath record`; repeat to merge several (runs, replicas, nodes).
    #[arg(long = "report", value_name = "FILE", required = true)]
    pub reports: Vec<PathBuf>,
    /// Output format: a table for people, JSON or YAML for tools.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Runs `writepath suggest`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reports = suggest::load_reports(&args.reports)?;
    let suggestions = suggest::suggest(&reports);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    render(&suggestions, args.output, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes suggestions in the chosen format (also used at the end of `writepath record`).
pub fn render(
    suggestions: &Suggestions,
    output: Output,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    match output {
        Output::Table => out.write_all(suggest::table::render_table(suggestions).as_bytes())?,
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, suggestions)
                .context("failed to write suggestions as json")?;
            out.write_all(b"\n")?;
        }
        Output::Yaml => serde_yaml::to_writer(&mut *out, suggestions)
            .context("failed to write suggestions as yaml")?,
    }
    out.flush().context("failed to write suggestions")?;
    Ok(())
}
