//! `writepath record`: run a command in a new cgroup (or watch an existing one), record every
//! write, print the result and optionally save the report.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

use super::Output;
use crate::capture::loader::{cgroup2_root, Capture, WatchedCgroup};
use crate::record::Recorder;
use crate::report::{Recording, Report};

/// How often the ring buffer is drained when no wakeup came (the kernel side only wakes us
/// when a lot is waiting).
const DRAIN_INTERVAL: Duration = Duration::from_millis(100);
/// How often dedup hit counts are folded in during long recordings.
const HITS_INTERVAL: Duration = Duration::from_secs(5);

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
    /// The command to run and record, with its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
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
    let report = runtime.block_on(record(&args))?;
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
    if c.collapsed > 0 {
        eprintln!(
            "writepath: warning: {} paths collapsed into their directory (path budget reached)",
            c.collapsed
        );
    }
}

/// What ends a recording.
enum Stop {
    /// The command and everything it started exited.
    Done(Option<i32>),
    /// The watched cgroup was removed, or the duration passed.
    Ended,
    /// SIGINT or SIGTERM.
    Signal,
}

async fn record(args: &Args) -> anyhow::Result<Report> {
    let root = cgroup2_root()?;
    let mut capture = Capture::load()?;
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();

    let (cgroup, _guard) = match &args.cgroup {
        Some(dir) => (WatchedCgroup::from_dir(dir)?, None),
        None => {
            let guard = TempCgroup::create(&root)?;
            (WatchedCgroup::from_dir(&guard.dir)?, Some(guard))
        }
    };
    let mut recorder = Recorder::new(&root).with_budget(args.path_budget);
    recorder.add_target(cgroup.id, &cgroup.dir);
    capture.watch(cgroup.clone())?;
    let events = capture.take_events()?;
    // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd, which deregisters it
    // before the fd is closed.
    let mut events = unsafe { AsyncFd::register(events) }
        .map_err(|e| anyhow::Error::from(std::io::Error::from(e)))
        .context("failed to poll the ring buffer")?;

    // The contract: this line (and the ready file) only once the probes are attached.
    eprintln!(
        "writepath: recording {} ({} syscalls attached)",
        cgroup.dir.display(),
        capture.attached.len()
    );
    if let Some(f) = &args.ready_file {
        std::fs::write(f, b"")
            .with_context(|| format!("failed to create ready file {}", f.display()))?;
    }

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut child = if args.cgroup.is_none() {
        Some(spawn_in_cgroup(&args.command, &cgroup.dir)?)
    } else {
        None
    };
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut drain_tick = tokio::time::interval(DRAIN_INTERVAL);
    let mut hits_tick = tokio::time::interval(HITS_INTERVAL);
    let mut exit_code: Option<Option<i32>> = None;

    let stop = loop {
        tokio::select! {
            guard = events.readable_mut() => {
                let mut guard = guard?;
                drain(guard.get_inner_mut(), &mut recorder);
                guard.clear_ready();
            }
            _ = drain_tick.tick() => {
                drain(events.get_mut(), &mut recorder);
                // Command mode: done once the command exited and its cgroup is empty.
                if let Some(c) = child.as_mut() {
                    if exit_code.is_none() {
                        if let Some(status) = c.try_wait()? {
                            exit_code = Some(status.code());
                        }
                    }
                    if let Some(code) = exit_code {
                        if cgroup_empty(&cgroup.dir) {
                            break Stop::Done(code);
                        }
                    }
                } else if !cgroup.dir.exists() {
                    break Stop::Ended;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break Stop::Ended;
                }
            }
            _ = hits_tick.tick() => recorder.apply_hits(&capture.dedup_hits()?),
            _ = sigint.recv() => if child.is_none() { break Stop::Signal },
            _ = sigterm.recv() => {
                if let Some(c) = child.as_mut() { let _ = c.start_kill(); }
                break Stop::Signal;
            }
        }
    };
    // Records still in flight: the exit program runs before the syscall returns, so once the
    // processes are gone everything is in the ring buffer.
    drain(events.get_mut(), &mut recorder);
    recorder.apply_hits(&capture.dedup_hits()?);
    let counters = capture.counters()?;
    let (mode, command, exit_code) = match (&args.cgroup, stop) {
        (Some(_), _) => ("cgroup", None, None),
        (None, Stop::Done(code)) => ("command", Some(args.command.clone()), code),
        (None, _) => ("command", Some(args.command.clone()), None),
    };
    let recording = Recording {
        mode: mode.into(),
        command,
        exit_code,
        cgroup: cgroup.dir.display().to_string(),
        started_at: started,
        finished_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Ok(recorder.finish(counters, recording))
}

fn drain(ring: &mut aya::maps::RingBuf<aya::maps::MapData>, recorder: &mut Recorder) {
    while let Some(item) = ring.next() {
        recorder.add_record(&item);
    }
}

fn cgroup_empty(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(procs) => procs.trim().is_empty(),
        Err(_) => true,
    }
}

/// Starts the command as a member of the cgroup: the child joins it before exec, so no write
/// of the command is made outside it.
fn spawn_in_cgroup(command: &[String], dir: &Path) -> anyhow::Result<tokio::process::Child> {
    let procs = std::ffi::CString::new(
        dir.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )?;
    let mut cmd = tokio::process::Command::new(&command[0]);
    cmd.args(&command[1..]);
    // SAFETY: the closure only makes async-signal-safe calls (open, write, close).
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let r = libc::write(fd, b"0\n".as_ptr().cast(), 2);
            libc::close(fd);
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("failed to run {}", command[0]))
}

/// A cgroup made for one `record -- CMD` run, removed when dropped.
struct TempCgroup {
    dir: PathBuf,
}

impl TempCgroup {
    fn create(root: &Path) -> anyhow::Result<TempCgroup> {
        let parent = root.join("writepath");
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("failed to create cgroup {}", parent.display()))?;
        let dir = parent.join(format!("record-{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("failed to create cgroup {}", dir.display()))
            }
        }
        Ok(TempCgroup { dir })
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(cgroup = %self.dir.display(), error = %e, "failed to remove cgroup");
        }
    }
}
