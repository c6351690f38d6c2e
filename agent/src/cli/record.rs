//! `writepath record`: run a command in a new cgroup (or watch an existing one), record every
//! write, print the result and optionally save the report.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::capture::loader::Hook;
use crate::record::session;
use crate::record::table::View;
use crate::report::Report;
use crate::suggest::Suggestions;

/// Arguments of `writepath record`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  writepath record -- nginx -g 'daemon off;'\n  writepath record --cgroup /sys/fs/cgroup/unified/system.slice/app.service --duration 10m --report app.json"
)]
pub struct Args {
    /// Result format on stdout: a table of the writes grouped per directory, `wide` (one row
    /// per written path), or the report as JSON or YAML.
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
    /// Command mode: SIGINT and SIGTERM are forwarded to CMD, which then has this long to
    /// exit before what is left in its cgroup is killed; the report is still written.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration, default_value = "10s")]
    pub grace: Duration,
    /// The command to run and record, with its arguments (after `--`; any bytes).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `record -o` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The writes grouped per directory (counts, sample names), then the suggestions.
    Table,
    /// Every written path on its own row, then the suggestions.
    Wide,
    /// The JSON report.
    Json,
    /// The report as YAML.
    Yaml,
}

impl Output {
    /// Whether stdout holds the report and nothing else.
    fn machine(self) -> bool {
        matches!(self, Output::Json | Output::Yaml)
    }
}

/// Runs `writepath record`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.cgroup.is_none() && args.command.is_empty() {
        bail!("nothing to record: give a command after `--`, or --cgroup DIR");
    }
    if args.duration.is_some() && args.cgroup.is_none() {
        bail!("--duration applies to --cgroup recordings; a command is recorded until it exits");
    }
    // A command that cannot run is found out before the probes are loaded and attached.
    if let Some(cmd) = args.command.first() {
        check_command(cmd)?;
    }
    // A report that cannot be written is found out before CMD runs, not after.
    if let Some(path) = &args.report {
        check_report_path(path)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let options = session::Options {
        hook: args.hook,
        path_budget: args.path_budget,
        ready_file: args.ready_file.clone(),
        grace: args.grace,
    };
    let source = match &args.cgroup {
        Some(dir) => session::Source::Cgroup {
            dir: dir.clone(),
            duration: args.duration,
        },
        None => {
            let mut command = std::process::Command::new(&args.command[0]);
            command.args(&args.command[1..]);
            if args.output.machine() {
                // CMD's output never reaches the machine-readable stream: it goes to stderr.
                use std::os::fd::AsFd as _;
                let stderr = std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("failed to duplicate stderr for the command's output")?;
                command.stdout(std::process::Stdio::from(stderr));
            }
            session::Source::Command {
                command,
                argv: session::argv_for_report(&args.command),
            }
        }
    };
    let report = runtime.block_on(session::record(source, &options))?;
    // A recording is never lost: if --report cannot be written after all, the report goes to
    // a fallback file (or, failing that, to stdout), and the exit code says so.
    let mut saved = true;
    if let Some(path) = &args.report {
        if let Err(e) = report.save(path) {
            saved = false;
            let fallback =
                std::env::temp_dir().join(format!("writepath-report-{}.json", std::process::id()));
            match report.save(&fallback) {
                Ok(()) => eprintln!(
                    "writepath: error: {e:#}; the report was saved to {} instead",
                    fallback.display()
                ),
                Err(_) if args.output.machine() => {
                    eprintln!("writepath: error: {e:#}; the report is on stdout only")
                }
                Err(e2) => {
                    eprintln!("writepath: error: {e:#}, and {e2:#}; the report follows on stdout");
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
            }
        }
    }
    let suggestions = crate::suggest::suggest(std::slice::from_ref(&report));
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        // Rendered first, then written: a write error stays an io::Error.
        Output::Yaml => out.write_all(
            serde_yaml::to_string(&report)
                .context("failed to render the report as yaml")?
                .as_bytes(),
        )?,
        Output::Table | Output::Wide => {
            let view = if args.output == Output::Wide {
                View::Wide
            } else {
                View::Grouped
            };
            crate::record::table::print(&report, view, &mut out)?;
            writeln!(out)?;
            super::suggest::render(&suggestions, super::Output::Table, &mut out)?;
        }
    }
    out.flush()?;
    warn_about_losses(&report, &suggestions);
    Ok(if saved {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// CMD must name an executable file: as a path when it has a `/`, else found on `PATH`.
fn check_command(cmd: &std::ffi::OsStr) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = std::path::Path::new(cmd);
    let found = if cmd.as_encoded_bytes().contains(&b'/') {
        executable(path)
    } else {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| executable(&d.join(path))))
    };
    if !found {
        bail!(
            "cannot run {}: no such executable{}",
            path.display(),
            if cmd.as_encoded_bytes().contains(&b'/') {
                ""
            } else {
                " on PATH"
            }
        );
    }
    Ok(())
}

/// `--report FILE` must name a file in an existing, writable directory.
fn check_report_path(path: &std::path::Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("--report {}: is a directory, not a file", path.display());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "--report {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    // The report is written atomically through a temporary file beside it: try one.
    tempfile::Builder::new()
        .prefix(".writepath-check-")
        .tempfile_in(dir)
        .map(drop)
        .with_context(|| {
            format!(
                "--report {}: cannot write in {}",
                path.display(),
                dir.display()
            )
        })
}

fn warn_about_losses(report: &Report, suggestions: &Suggestions) {
    let c = &report.counters;
    if c.dropped > 0 || c.pending_full > 0 || c.decode_errors > 0 || c.probe_errors > 0 {
        eprintln!(
            "writepath: warning: {} records dropped (ring buffer full), {} calls lost (in-flight table full), {} unfinished in the kernel (probe errors), {} undecodable: some writes may be missing",
            c.dropped, c.pending_full, c.probe_errors, c.decode_errors
        );
    }
    if let Some(warning) = read_only_warning(report, suggestions) {
        eprintln!("writepath: warning: {warning}");
    }
    if c.collapsed > 0 {
        eprintln!(
            "writepath: warning: {} paths collapsed into their directory (path budget reached)",
            c.collapsed
        );
    }
}

/// What to say about writes that already failed with EROFS, matching what the suggestions say
/// about them: a volume is missing ("missing volume"), no volume can serve them, or they hit
/// a read-only mount that is not the root filesystem, which no volume changes.
fn read_only_warning(report: &Report, suggestions: &Suggestions) -> Option<String> {
    let failed: u64 = report.targets.iter().map(|t| t.read_only_failures()).sum();
    if failed == 0 {
        return None;
    }
    let paths: usize = report
        .targets
        .iter()
        .map(|t| t.read_only_failed_paths())
        .sum();
    let mut missing = Vec::new();
    let mut in_volumes = 0u64;
    let mut unresolved = 0u64;
    for c in &suggestions.containers {
        for v in c.volumes.iter().filter(|v| v.failed_writes > 0) {
            in_volumes = in_volumes.saturating_add(v.failed_writes);
            missing.push(v.mount_path.to_string());
        }
        for u in &c.unresolved {
            unresolved = unresolved.saturating_add(u.failed_writes);
        }
    }
    let elsewhere = failed.saturating_sub(in_volumes.saturating_add(unresolved));
    let mut parts = Vec::new();
    if in_volumes > 0 {
        missing.sort();
        missing.dedup();
        parts.push(format!(
            "{in_volumes} in directories that need a volume ({}): see \"missing volume\" in the suggestions",
            missing.join(", ")
        ));
    }
    if unresolved > 0 {
        parts.push(format!(
            "{unresolved} where no volume can serve them: see \"no volume can serve these writes\" in the suggestions, and change the image or the application"
        ));
    }
    if elsewhere > 0 {
        parts.push(format!(
            "{elsewhere} on mounts that are read-only themselves, not the root filesystem: no volume is suggested for them; make that mount writable if the writes matter"
        ));
    }
    Some(format!(
        "{failed} writes to {paths} paths already failed with EROFS (read-only file system): {}",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;

    fn report(fixture: &str) -> Report {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/reports")
            .join(fixture);
        Report::load(&path).unwrap()
    }

    #[test]
    fn read_only_warning_names_the_missing_volumes() {
        let r = report("nginx-readonly.json");
        let s = crate::suggest::suggest(std::slice::from_ref(&r));
        let w = read_only_warning(&r, &s).expect("the recording has EROFS failures");
        let dirs: Vec<String> = s
            .containers
            .iter()
            .flat_map(|c| &c.volumes)
            .filter(|v| v.failed_writes > 0)
            .map(|v| v.mount_path.to_string())
            .collect();
        assert!(!dirs.is_empty());
        assert!(w.contains("missing volume"), "{w}");
        for d in dirs {
            assert!(w.contains(&d), "{d}: {w}");
        }
        assert!(read_only_warning(&report("nginx.json"), &s).is_none());
    }

    #[test]
    fn read_only_warning_matches_suggestions_without_a_volume() {
        // Every failure on a mount that is read-only itself: the suggestions say "no volume
        // needed", and so must the warning.
        let mut r = report("nginx-readonly.json");
        for t in &mut r.targets {
            t.mounts.push(crate::report::Mount {
                mount_point: crate::path::RawPath::from("/ro"),
                fs_type: "tmpfs".into(),
                source: "tmpfs".into(),
                read_only: true,
            });
            t.writes.retain(|w| w.read_only_failures() > 0);
            for w in &mut t.writes {
                let name = w.path.file_name().to_vec();
                let mut p = b"/ro/".to_vec();
                p.extend_from_slice(&name);
                w.path = crate::path::RawPath::from_bytes(p);
                w.mount = Some(crate::path::RawPath::from("/ro"));
            }
        }
        let s = crate::suggest::suggest(std::slice::from_ref(&r));
        assert!(
            s.containers.iter().all(|c| c.volumes.is_empty()),
            "{}",
            crate::suggest::table::render_table(&s)
        );
        let w = read_only_warning(&r, &s).expect("failures");
        assert!(!w.contains("missing volume"), "{w}");
        assert!(w.contains("no volume is suggested"), "{w}");
    }
}
