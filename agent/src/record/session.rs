//! One recording session: load the programs, watch a cgroup (an existing one, or a fresh one a
//! command runs in), drain records until the end condition, and build the report. Used by
//! `writepath record` and `writepath verify`.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::capture::loader::{self, cgroup2_root, Capture, WatchedCgroup};
use crate::record::Recorder;
use crate::report::{Recording, Report};

/// How often the ring buffer is drained when no wakeup came (the kernel side only wakes us
/// when a lot is waiting).
const DRAIN_INTERVAL: Duration = Duration::from_millis(100);
/// How often dedup hit counts are folded in during long recordings. Reading them walks the
/// whole LRU (two syscalls an entry), so not often: only entries evicted between two reads
/// lose their hits.
const HITS_INTERVAL: Duration = Duration::from_secs(30);

/// Errors of a session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The capture engine failed.
    #[error(transparent)]
    Capture(#[from] loader::Error),
    /// A cgroup could not be made or read.
    #[error("failed to {action} cgroup {path}")]
    Cgroup {
        /// What we tried.
        action: &'static str,
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command could not be started.
    #[error("failed to run {command}")]
    Spawn {
        /// argv[0].
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ready file could not be created.
    #[error("failed to create ready file {path}")]
    ReadyFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Polling, signals or waiting failed.
    #[error("failed to {0}")]
    Io(&'static str, #[source] std::io::Error),
}

impl Error {
    /// A short label for failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Capture(e) => e.metric_label(),
            Error::Cgroup { .. } => "cgroup",
            Error::Spawn { .. } => "spawn",
            Error::ReadyFile { .. } => "ready_file",
            Error::Io(..) => "io",
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to record.
pub enum Source {
    /// Run a command in a fresh cgroup until it and everything it started have exited. The
    /// command may carry its own `pre_exec` set-up (verify builds its mount namespace there);
    /// joining the cgroup is added after it (closures run in the order they were added), so the
    /// set-up's own calls are not recorded and every call of the command itself is.
    Command {
        /// The command, ready to spawn.
        command: std::process::Command,
        /// Its argv, for the report.
        argv: Vec<String>,
    },
    /// Watch an existing cgroup v2 directory and its descendants.
    Cgroup {
        /// The directory.
        dir: PathBuf,
        /// Stop after this long (else on removal of the cgroup or a signal).
        duration: Option<Duration>,
    },
}

/// Session options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Distinct paths per target before collapsing.
    pub path_budget: usize,
    /// Created once the probes are attached.
    pub ready_file: Option<PathBuf>,
    /// Which hook design captures the calls.
    pub hook: loader::Hook,
    /// Command mode: after SIGINT/SIGTERM is forwarded to the command, how long it may take
    /// to exit before what is left in its cgroup is killed.
    pub grace: Duration,
}

/// Default of [`Options::grace`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A command line as the report keeps it: UTF-8 arguments as they are, others escaped as
/// tables escape paths (`\xff`).
pub fn argv_for_report(command: &[std::ffi::OsString]) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt as _;
    command
        .iter()
        .map(|a| match a.to_str() {
            Some(s) => s.to_string(),
            None => crate::path::RawPath::from_bytes(a.as_bytes().to_vec()).to_string(),
        })
        .collect()
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

/// Records `source` and returns the report. Prints the `writepath: recording` line to stderr
/// (the contract scripts wait for) once the probes are attached.
pub async fn record(source: Source, options: &Options) -> Result<Report> {
    let root = cgroup2_root()?;
    // The privileges and the cgroup are checked before the programs are loaded: what is wrong
    // is said at once.
    loader::check_privileges()?;
    let (dir, _guard) = match &source {
        Source::Cgroup { dir, .. } => (dir.clone(), None),
        Source::Command { .. } => {
            let guard = TempCgroup::create(&root)?;
            (guard.dir.clone(), Some(guard))
        }
    };
    let cgroup = WatchedCgroup::from_dir(&dir)?;
    let mut capture = Capture::load_with(options.hook)?;
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut recorder = Recorder::new(&root)
        .with_budget(options.path_budget)
        .with_containers(matches!(source, Source::Cgroup { .. }));
    // A container that writes and exits at once (its cgroup gone before the first drain) keeps
    // its cgroup's name.
    match super::cgroup_names::CgroupNames::watch(&root, &cgroup.dir) {
        Ok(names) => recorder = recorder.with_cgroup_names(names),
        Err(e) => tracing::warn!(error = %e, "cannot watch cgroups as they are made"),
    }
    recorder.add_target(cgroup.id, &cgroup.dir);
    capture.watch(cgroup.clone())?;
    let mut events = capture.take_events()?;

    // The contract: this line (and the ready file) only once the probes are attached.
    eprintln!(
        "writepath: recording {} ({} syscalls attached, {} design, Linux {})",
        cgroup.dir.display(),
        capture.attached.len(),
        capture.design,
        capture.probe.release
    );
    if let Some(f) = &options.ready_file {
        std::fs::write(f, b"").map_err(|source| Error::ReadyFile {
            path: f.display().to_string(),
            source,
        })?;
    }

    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| Error::Io("handle SIGINT", e))?;
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| Error::Io("handle SIGTERM", e))?;
    let (mut child, argv, duration) = match source {
        Source::Command { command, argv } => (
            Some(spawn_in_cgroup(command, &argv, &cgroup.dir)?),
            Some(argv),
            None,
        ),
        Source::Cgroup { duration, .. } => (None, None, duration),
    };
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut drain_tick = tokio::time::interval(DRAIN_INTERVAL);
    let mut hits_tick = tokio::time::interval(HITS_INTERVAL);
    let mut exit_code: Option<Option<i32>> = None;
    let mut stopping: Option<tokio::time::Instant> = None;

    let stop = loop {
        tokio::select! {
            ready = events.readable() => {
                ready?;
                events.drain(&mut recorder)?;
            }
            _ = drain_tick.tick() => {
                events.drain(&mut recorder)?;
                // Command mode: done once the command exited and its cgroup is empty.
                if let Some(c) = child.as_mut() {
                    if exit_code.is_none() {
                        if let Some(status) = c.try_wait().map_err(|e| Error::Io("wait for the command", e))? {
                            exit_code = Some(status.code());
                        }
                    }
                    if let Some(code) = exit_code {
                        if cgroup_empty(&cgroup.dir) {
                            break if stopping.is_some() { Stop::Signal } else { Stop::Done(code) };
                        }
                    }
                    if let Some(deadline) = stopping {
                        if tokio::time::Instant::now() >= deadline {
                            // The grace period is over: kill what is left (again each tick
                            // until the cgroup is empty).
                            kill_cgroup(&cgroup.dir);
                        }
                    }
                } else if !cgroup.dir.exists() {
                    break Stop::Ended;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break Stop::Ended;
                }
            }
            _ = hits_tick.tick() => events.fold_hits(&mut recorder)?,
            // Command mode: the signal is forwarded to the command, which gets the grace
            // period to exit; then what is left in its cgroup is killed (see the drain tick).
            // Cgroup mode: the recording ends.
            _ = sigint.recv() => match child.as_ref().and_then(|c| c.id()) {
                Some(pid) => stopping = Some(forward(pid, libc::SIGINT, options.grace, stopping)),
                None if child.is_some() => {}
                None => break Stop::Signal,
            },
            _ = sigterm.recv() => match child.as_ref().and_then(|c| c.id()) {
                Some(pid) => stopping = Some(forward(pid, libc::SIGTERM, options.grace, stopping)),
                None if child.is_some() => {}
                None => break Stop::Signal,
            },
        }
    };
    // Records still in flight: the exit program runs before the syscall returns, so once the
    // processes are gone everything is in the ring buffer.
    events.drain(&mut recorder)?;
    events.fold_hits(&mut recorder)?;
    let counters = events.counters()?;
    let exit_code = match stop {
        Stop::Done(code) => code,
        Stop::Signal => exit_code.flatten(),
        Stop::Ended => None,
    };
    let recording = Recording {
        mode: if argv.is_some() { "command" } else { "cgroup" }.into(),
        command: argv,
        exit_code,
        cgroup: cgroup.dir.display().to_string(),
        started_at: started,
        finished_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: capture.probe.release.clone(),
        hook: capture.design.name().into(),
    };
    Ok(recorder.finish(counters, recording))
}

/// Forwards `sig` to the command; returns when the grace period ends (the first signal's, if
/// one was already forwarded).
fn forward(
    pid: u32,
    sig: libc::c_int,
    grace: Duration,
    stopping: Option<tokio::time::Instant>,
) -> tokio::time::Instant {
    // SAFETY: kill with a pid we started and a valid signal.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
    let deadline = stopping.unwrap_or_else(|| tokio::time::Instant::now() + grace);
    eprintln!(
        "writepath: signal forwarded to the command; what is left of it is killed in {:.0?}",
        deadline.saturating_duration_since(tokio::time::Instant::now())
    );
    deadline
}

/// Kills every process in the cgroup and below: `cgroup.kill` (Linux 5.14), else SIGKILL to
/// each process listed in the cgroup and its descendants.
fn kill_cgroup(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), b"1").is_ok() {
        return;
    }
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
            for pid in procs
                .lines()
                .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
            {
                // SAFETY: kill with a valid signal; a pid that is gone fails harmlessly.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
}

/// Whether no process is left in the cgroup or below it (`cgroup.events`' `populated`, which
/// covers the subtree; a gone cgroup is empty).
fn cgroup_empty(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.events")) {
        Ok(events) => events.lines().any(|l| l.trim() == "populated 0"),
        Err(_) => match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(procs) => procs.trim().is_empty(),
            Err(_) => true,
        },
    }
}

/// Starts the command as a member of the cgroup: the child joins it just before exec (after
/// any set-up the caller added), so no write of the command is made outside it.
fn spawn_in_cgroup(
    mut command: std::process::Command,
    argv: &[String],
    dir: &Path,
) -> Result<tokio::process::Child> {
    let spawn_err = |source| Error::Spawn {
        command: argv.first().cloned().unwrap_or_default(),
        source,
    };
    let procs = std::ffi::CString::new(
        dir.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .map_err(|e| spawn_err(std::io::Error::other(e)))?;
    // SAFETY: the closure only makes async-signal-safe calls (open, write, close).
    unsafe {
        command.pre_exec(move || {
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
    tokio::process::Command::from(command)
        .spawn()
        .map_err(spawn_err)
}

/// A cgroup made for one command, removed when dropped.
struct TempCgroup {
    dir: PathBuf,
}

impl TempCgroup {
    fn create(root: &Path) -> Result<TempCgroup> {
        let parent = root.join("writepath");
        let err = |action, path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Cgroup {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&parent).map_err(err("create", &parent))?;
        let dir = parent.join(format!("record-{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err("create", &dir)(e)),
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
