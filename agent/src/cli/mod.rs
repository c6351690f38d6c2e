//! The command line: the clap [`Cli`], and [`Command::execute`] dispatching to one module per
//! subcommand.
//!
//! Exit codes (a contract, see README): 0 success; 1 the job ran and found a problem (verify
//! found failing writes); 2 usage, input or environment error (the job could not be done).

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod agent;
pub mod cluster;
pub mod completion;
pub mod kernel;
pub mod patch;
pub mod policy;
pub mod record;
pub mod suggest;
pub mod verify;

/// Finds where containers write, and proposes the volumes for readOnlyRootFilesystem.
#[derive(Debug, Parser)]
#[command(name = "writepath", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WRITEPATH_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output format of a command's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for people.
    Table,
    /// JSON for tools.
    Json,
    /// YAML for tools.
    Yaml,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record the writes of a command, or of an existing cgroup.
    Record(record::Args),
    /// Suggest volumes from report files, or from the agents' reports in the cluster.
    Suggest(suggest::Args),
    /// Render the suggestions as a manifest change (reports from files or the cluster).
    Patch(patch::Args),
    /// Print an admission policy that requires readOnlyRootFilesystem.
    Policy(policy::Args),
    /// Run the node agent (the DaemonSet daemon): record every pod of this node, publish
    /// WritePathReports.
    Agent(agent::Args),
    /// Run a command with a read-only root and the suggested volumes; report failing writes.
    Verify(verify::Args),
    /// What this kernel offers the capture programs, and which design each check loads.
    Kernel(kernel::Args),
    /// Print the shell completion script (bash, zsh, fish, …).
    Completion(completion::Args),
}

impl Command {
    /// Runs the subcommand. `Ok` carries the exit code (0 or 1); an error means exit 2.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Record(args) => record::run(args),
            Command::Suggest(args) => suggest::run(args),
            Command::Patch(args) => patch::run(args),
            Command::Policy(args) => policy::run(args),
            Command::Agent(args) => agent::run(args),
            Command::Verify(args) => verify::run(args),
            Command::Kernel(args) => kernel::run(args),
            Command::Completion(args) => completion::run(args),
        }
    }
}
