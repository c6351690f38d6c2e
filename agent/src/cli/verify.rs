//! `writepath verify`: run a command with a read-only root and the suggested volumes (a fresh
//! tmpfs each), record it, and report every write that still fails. Exit 0 when none failed,
//! 1 when some did, 2 when verification could not be done.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};

use super::Output;
use crate::path::RawPath;
use crate::record::session;
use crate::verify::namespace::Sandbox;
use crate::verify::{self, Outcome, VolumeSource};

/// Arguments of `writepath verify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  writepath record --report app.json -- ./app\n  writepath verify --report app.json -- ./app\n  writepath verify --mount /var/cache/app --mount /tmp -- ./app\n\nExit status: 0 no write failed, 1 some writes failed, 2 usage or set-up error."
)]
pub struct Args {
    /// Report written by `writepath record`: its suggested volumes are provided. Repeat it
    /// (or give several files after one --report) to merge several.
    #[arg(long = "report", value_name = "FILE", num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// A directory to provide as a fresh tmpfs volume (absolute). Repeatable; adds to the
    /// report's volumes.
    #[arg(long = "mount", value_name = "PATH")]
    pub mounts: Vec<PathBuf>,
    /// Result format on stdout: a table for people, or JSON or YAML (the command's own stdout
    /// then goes to stderr).
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Distinct paths kept before new ones collapse into their directory.
    #[arg(long, default_value_t = crate::record::DEFAULT_PATH_BUDGET, value_name = "N")]
    pub path_budget: usize,
    /// The command to run, with its arguments (after `--`; any bytes).
    #[arg(last = true, value_name = "CMD", required = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// Runs `writepath verify`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use std::os::unix::ffi::OsStrExt as _;
    if args.command.is_empty() {
        bail!("nothing to verify: give a command after `--`");
    }
    let reports = crate::suggest::load_reports(&args.reports)?;
    let suggestions = crate::suggest::suggest(&reports);
    let host_mounts: Vec<RawPath> = crate::record::mounts::read_mount_table(std::process::id())
        .map(|t| t.into_iter().map(|m| m.mount_point).collect())
        .unwrap_or_default();
    let mut dirs = verify::volume_dirs(&reports, &suggestions, |m| host_mounts.contains(m));
    for m in &args.mounts {
        let p = RawPath::from_bytes(m.as_os_str().as_bytes().to_vec());
        if !p.is_absolute() {
            bail!("--mount {}: give an absolute path", p);
        }
        dirs.insert(
            RawPath::resolve(&RawPath::from("/"), p.as_bytes()),
            VolumeSource::Given,
        );
    }
    let list: Vec<RawPath> = dirs.keys().cloned().collect();
    let cwd = std::env::current_dir().context("failed to read the working directory")?;
    let sandbox =
        Sandbox::plan(&list, &cwd).context("failed to plan the verification namespace")?;
    let volumes: Vec<(RawPath, VolumeSource, bool)> = sandbox
        .volumes
        .iter()
        .map(|v| {
            // Nested directories were folded into their outermost one.
            let source = dirs.get(&v.path).copied().unwrap_or(VolumeSource::Given);
            (v.path.clone(), source, v.created)
        })
        .collect();

    let sandbox = Arc::new(Mutex::new(sandbox));
    let mut command = std::process::Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    if args.output != Output::Table {
        // Keep stdout for the JSON or YAML outcome.
        use std::os::fd::AsFd as _;
        let err = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .context("failed to duplicate stderr")?;
        command.stdout(err);
    }
    let in_child = Arc::clone(&sandbox);
    // SAFETY: Sandbox::enter only makes system calls on data prepared before the fork; the
    // lock is uncontended (the parent does not hold it while spawning).
    unsafe {
        command.pre_exec(move || match in_child.try_lock() {
            Ok(mut s) => s.enter(),
            Err(_) => Err(std::io::Error::from_raw_os_error(libc::EDEADLK)),
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let options = session::Options {
        path_budget: args.path_budget,
        ready_file: None,
        hook: crate::capture::loader::Hook::default(),
        grace: session::DEFAULT_GRACE,
    };
    let source = session::Source::Command {
        command,
        argv: session::argv_for_report(&args.command),
    };
    let report = match runtime.block_on(session::record(source, &options)) {
        Ok(r) => r,
        Err(e) => {
            let step = sandbox.lock().ok().and_then(|s| s.failed_step());
            return Err(match step {
                Some(step) => anyhow::Error::new(e).context(format!(
                    "failed to set up the verification namespace: {step}"
                )),
                None => e.into(),
            });
        }
    };
    let outcome = Outcome::from_report(&report, &volumes).hidden_content(verify::host_entries);
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &outcome)?;
            writeln!(out)?;
        }
        // Rendered first, then written: a write error stays an io::Error.
        Output::Yaml => out.write_all(
            serde_yaml::to_string(&outcome)
                .context("failed to render the outcome as yaml")?
                .as_bytes(),
        )?,
        Output::Table => out.write_all(outcome.render_table().as_bytes())?,
    }
    out.flush()?;
    Ok(if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
