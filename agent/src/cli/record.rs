//! `writepath record`: run a command in a new cgroup (or watch an existing one), record every
//! write, print the result and optionally save the report.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::Output;
use crate::capture::loader::Hook;
use crate::record::session;
use crate::report::Report;

/// Arguments of `writepath record`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  writepath record -- nginx -g 'daemon off;'\n  writepath record --cgroup /sys/fs/cgroup/unified/system.slice/app.service --duration 10m --report app.json"
)]
pub struct Args {
    /// Result format on stdout: a table for people, or the JSON report.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Also write the JSON report to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Create FILE once the probes are attached (recording has begun).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// Watch this existing cgroup v2 directory and its descendants instead of running CMD.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub cgroup: Option<PathBuf>,
    /// With --cgroup: stop after this long (e.g. 30s, 10m); default: until the cgroup is
    /// removed or SIGINT/SIGTERM.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration, requires = "cgroup")]
    pub duration: Option<Duration>,
    /// Distinct paths kept per target before new ones collapse into their directory.
    #[arg(long, default_value_t = crate::record::DEFAULT_PATH_BUDGET, value_name = "N")]
    pub path_budget: usize,
    /// Capture design: auto (default: the best this kernel loads), fexit (trampolines; BTF,
    /// where function tracing is allowed), exit-only (Linux 5.17+ with BTF), pair (5.17+) or
    /// compat (5.10+). `writepath kernel` shows what each does here; docs/kernels.md has the
    /// measured table.
    #[arg(long, value_enum, default_value_t = Hook::default(), env = "WRITEPATH_HOOK")]
    pub hook: Hook,
    /// The command to run and record, with its arguments (after `--`; any bytes).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// Runs `writepath record`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.cgroup.is_none() && args.command.is_empty() {
        bail!("nothing to record: give a command after `--`, or --cgroup DIR");
    }
    if args.duration.is_some() && args.cgroup.is_none() {
        bail!("--duration applies to --cgroup recordings; a command is recorded until it exits");
    }
    if args.output == Output::Yaml {
        bail!("record prints -o table or -o json (use `writepath suggest -o yaml` for YAML)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let options = session::Options {
        hook: args.hook,
        path_budget: args.path_budget,
        ready_file: args.ready_file.clone(),
    };
    let source = match &args.cgroup {
        Some(dir) => session::Source::Cgroup {
            dir: dir.clone(),
            duration: args.duration,
        },
        None => {
            let mut command = std::process::Command::new(&args.command[0]);
            command.args(&args.command[1..]);
            session::Source::Command {
                command,
                argv: session::argv_for_report(&args.command),
            }
        }
    };
    let report = runtime.block_on(session::record(source, &options))?;
    if let Some(path) = &args.report {
        report.save(path)?;
    }
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        _ => {
            crate::record::table::print(&report, &mut out)?;
            writeln!(out)?;
            let suggestions = crate::suggest::suggest(std::slice::from_ref(&report));
            super::suggest::render(&suggestions, Output::Table, &mut out)?;
        }
    }
    warn_about_losses(&report);
    Ok(ExitCode::SUCCESS)
}

fn warn_about_losses(report: &Report) {
    let c = &report.counters;
    if c.dropped > 0 || c.pending_full > 0 || c.decode_errors > 0 {
        eprintln!(
            "writepath: warning: {} records dropped (ring buffer full), {} calls lost (in-flight table full), {} undecodable: some writes may be missing",
            c.dropped, c.pending_full, c.decode_errors
        );
    }
    let failed: u64 = report.targets.iter().map(|t| t.read_only_failures()).sum();
    if failed > 0 {
        let paths: usize = report
            .targets
            .iter()
            .map(|t| t.read_only_failed_paths())
            .sum();
        eprintln!(
            "writepath: warning: {failed} writes to {paths} paths already failed with EROFS (read-only file system): a volume is missing, see \"missing volume\" in the suggestions"
        );
    }
    if c.collapsed > 0 {
        eprintln!(
            "writepath: warning: {} paths collapsed into their directory (path budget reached)",
            c.collapsed
        );
    }
}
