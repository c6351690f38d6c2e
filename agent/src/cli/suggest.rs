//! `writepath suggest`: read one or more reports, merge them per workload and container, and
//! print the volumes that let each container run with a read-only root filesystem.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::Output;
use crate::suggest::{self, Suggestions};

/// Arguments of `writepath suggest`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  writepath suggest --report app.json\n  writepath suggest -n shop deploy/web    (the agents' reports, kubeconfig as kubectl)"
)]
pub struct Args {
    /// Report written by `writepath record`; repeat it (or give several files after one
    /// --report) to merge runs, replicas, nodes. Without it, the agents' WritePathReports are
    /// read from the cluster.
    #[arg(long = "report", value_name = "FILE", num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// In the cluster: only this workload (`deploy/web`, `sts/db`, `cronjob/backup`, …).
    #[arg(value_name = "KIND/NAME", conflicts_with = "reports")]
    pub workload: Option<String>,
    /// In the cluster: the namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, value_name = "NS", conflicts_with = "reports")]
    pub namespace: Option<String>,
    /// In the cluster: every namespace.
    #[arg(short = 'A', long, conflicts_with_all = ["reports", "namespace", "workload"])]
    pub all_namespaces: bool,
    /// Output format: a table for people, JSON or YAML for tools.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Runs `writepath suggest`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reports = if args.reports.is_empty() {
        let plain = args.workload.is_none() && args.namespace.is_none() && !args.all_namespaces;
        super::cluster::reports(&super::cluster::Selection {
            namespace: args.namespace.clone(),
            all_namespaces: args.all_namespaces,
            workload: args.workload.clone(),
        })
        .map_err(|e| {
            if plain && e.downcast_ref::<super::cluster::NoClient>().is_some() {
                e.context(
                    "no --report FILE given, and no cluster to read the agents' reports from: give --report FILE (a report written by `writepath record`), or a kubeconfig",
                )
            } else {
                e
            }
        })?
    } else {
        suggest::load_reports(&args.reports)?
    };
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
        // Rendered first, then written: a write error stays an io::Error (serde_yaml's own
        // hides it), so a closed pipe is recognised as one.
        Output::Yaml => out.write_all(
            serde_yaml::to_string(suggestions)
                .context("failed to render suggestions as yaml")?
                .as_bytes(),
        )?,
    }
    out.flush().context("failed to write suggestions")?;
    Ok(())
}
