//! [`Capture`]: the loaded programs, their maps, and the watched-cgroup set.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use agent_common::{names, offsets::KernelOffsets, syscalls::TRACEPOINTS, Control};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{FExit, TracePoint},
    Ebpf, EbpfLoader,
};
use tracing::{debug, info, warn};

use super::events::EventStream;
use super::probe::{Design, KernelProbe};

/// The compiled programs, embedded at build time by `build.rs`.
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent-ebpf"));

/// Mount point of the cgroup v2 hierarchy (unified or hybrid).
pub fn cgroup2_root() -> Result<PathBuf> {
    for candidate in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let p = Path::new(candidate);
        if p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists() {
            return Ok(p.to_path_buf());
        }
    }
    Err(Error::NoCgroup2)
}

/// Errors of the capture engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading BPF needs root (CAP_BPF + CAP_PERFMON).
    #[error("loading eBPF programs needs root, or CAP_BPF and CAP_PERFMON (this process has {0})")]
    NotRoot(String),
    /// tracefs cannot be read (a non-root user without CAP_DAC_READ_SEARCH).
    #[error(
        "reading tracefs at {0} needs root or CAP_DAC_READ_SEARCH (with CAP_BPF and CAP_PERFMON)"
    )]
    TracefsDenied(String),
    /// No capture design loads on this kernel: one line, the verifier logs in a file.
    #[error(
        "cannot capture on Linux {kernel}: {failures}; {}{}",
        super::probe::floor_hint(kernel),
        log_file.as_ref().map(|f| format!(" (verifier log: {f})")).unwrap_or_default()
    )]
    Unsupported {
        /// `uname -r`.
        kernel: String,
        /// What each design lacked or why it failed to load.
        failures: String,
        /// Where the verifier's logs were written.
        log_file: Option<String>,
    },
    /// No cgroup v2 hierarchy is mounted.
    #[error("no cgroup v2 hierarchy found at /sys/fs/cgroup/unified or /sys/fs/cgroup")]
    NoCgroup2,
    /// The object could not be loaded (verifier, kernel too old…).
    #[error("failed to load the eBPF programs")]
    Load(#[source] aya::EbpfError),
    /// A program could not be loaded or attached.
    #[error("failed to {action} program {program}")]
    Program {
        /// load or attach.
        action: &'static str,
        /// Program (and tracepoint) name.
        program: String,
        /// Why.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map is missing from the object.
    #[error("eBPF object has no map {0}")]
    MissingMap(&'static str),
    /// A program is missing from the object.
    #[error("eBPF object has no program {0}")]
    MissingProgram(&'static str),
    /// The trampoline program of a watched syscall is missing from the object.
    #[error("eBPF object has no fexit program for syscall {0}")]
    MissingFexit(&'static str),
    /// A map operation failed.
    #[error("failed to {action} map {map}")]
    Map {
        /// What we tried.
        action: &'static str,
        /// Which map.
        map: &'static str,
        /// Why.
        #[source]
        source: aya::maps::MapError,
    },
    /// The ring buffer could not be polled.
    #[error("failed to poll the ring buffer")]
    Poll(#[source] std::io::Error),
    /// A watched directory is not a cgroup v2 directory.
    #[error("{path} is not a cgroup v2 directory")]
    NotACgroup {
        /// The path given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short label for failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::NotRoot(_) => "not_root",
            Error::Unsupported { .. } => "unsupported_kernel",
            Error::TracefsDenied(_) => "tracefs_denied",
            Error::NoCgroup2 => "no_cgroup2",
            Error::Load(_) => "load",
            Error::Program { .. } => "program",
            Error::MissingMap(_) => "missing_map",
            Error::MissingProgram(_) | Error::MissingFexit(_) => "missing_program",
            Error::Map { .. } => "map",
            Error::NotACgroup { .. } => "not_a_cgroup",
            Error::Poll(_) => "poll",
        }
    }
}

impl Error {
    /// Why, without the kernel's name and the hint (what `writepath kernel` prints per
    /// design).
    pub fn reason(&self) -> String {
        match self {
            Error::Unsupported { failures, .. } => failures.clone(),
            other => other.to_string(),
        }
    }

    /// The verifier's log, when a program load failed in the verifier.
    fn verifier_log(&self) -> Option<String> {
        match self {
            Error::Program {
                source: aya::programs::ProgramError::LoadError { verifier_log, .. },
                ..
            } => Some(verifier_log.to_string()),
            _ => None,
        }
    }

    /// One line: what failed and the OS error, without the verifier's log.
    fn summary(&self) -> String {
        match self {
            Error::Program {
                action,
                program,
                source:
                    aya::programs::ProgramError::LoadError {
                        io_error,
                        verifier_log,
                    },
            } => {
                // The verifier's last line says why ("BPF program is too large…"); an empty log
                // means the kernel refused before verifying (a locked-down kernel, EPERM).
                let log = verifier_log.to_string();
                let why = log
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| {
                        !l.is_empty()
                            && !l.starts_with("processed ")
                            && !l.starts_with("verification time")
                            && !l.starts_with("stack depth")
                    })
                    .unwrap_or("");
                if why.is_empty() {
                    format!("the kernel refused to {action} {program} ({io_error})")
                } else {
                    format!("the verifier refused to {action} {program} ({io_error}: {why})")
                }
            }
            other => {
                let mut s = other.to_string();
                let mut src = std::error::Error::source(other);
                while let Some(e) = src {
                    s.push_str(": ");
                    s.push_str(&e.to_string());
                    src = e.source();
                }
                s
            }
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A watched cgroup v2 directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchedCgroup {
    /// cgroup id (inode of the directory).
    pub id: u64,
    /// Depth below the cgroup2 root (root = 0).
    pub level: u32,
    /// The directory.
    pub dir: PathBuf,
}

impl WatchedCgroup {
    /// Identifies a cgroup v2 directory.
    pub fn from_dir(dir: &Path) -> Result<WatchedCgroup> {
        let not_cgroup = |source| Error::NotACgroup {
            path: dir.display().to_string(),
            source,
        };
        let why = |what: String| not_cgroup(std::io::Error::other(what));
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(why("it does not exist".into()))
            }
            Err(e) => return Err(not_cgroup(e)),
            Ok(m) if !m.is_dir() => return Err(why("it is not a directory".into())),
            Ok(_) => {}
        }
        if std::fs::metadata(dir.join("cgroup.procs")).is_err() {
            let root = cgroup2_root()
                .map(|r| format!("; cgroup v2 is mounted at {}", r.display()))
                .unwrap_or_default();
            return Err(why(format!("it has no cgroup.procs{root}")));
        }
        let dir = dir.canonicalize().map_err(not_cgroup)?;
        let id = std::fs::metadata(&dir).map_err(not_cgroup)?.ino();
        let root = cgroup2_root()?;
        let rel = dir.strip_prefix(&root).map_err(|_| {
            not_cgroup(std::io::Error::other(format!(
                "not below {}",
                root.display()
            )))
        })?;
        Ok(WatchedCgroup {
            id,
            level: rel.components().count() as u32,
            dir,
        })
    }
}

/// Which programs capture the calls: one design, or the best the kernel allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Hook {
    /// The best design this kernel loads: probed at start, falling back in the order
    /// fexit, exit-only, pair, compat (docs/kernels.md).
    #[default]
    Auto,
    /// One `fexit` program (trampoline) per watched syscall function: nothing on unrelated
    /// syscalls. Linux 5.10+ with BTF, where function tracing is allowed.
    Fexit,
    /// Only the `sys_exit_*` programs: the arguments come from the registers the task saved on
    /// entry (`bpf_task_pt_regs`). Linux 5.17+ with BTF.
    ExitOnly,
    /// One program on each `sys_enter_*` tracepoint (filter, save the arguments) and one on
    /// each `sys_exit_*` (read the paths, emit). Linux 5.17+.
    Pair,
    /// The pair with bounded loops (no `bpf_loop`). Linux 5.10+.
    Compat,
}

impl Hook {
    /// The design asked for, `None` for [`Hook::Auto`].
    pub fn design(self) -> Option<Design> {
        match self {
            Hook::Auto => None,
            Hook::Fexit => Some(Design::Fexit),
            Hook::ExitOnly => Some(Design::ExitOnly),
            Hook::Pair => Some(Design::Pair),
            Hook::Compat => Some(Design::Compat),
        }
    }
}

/// One loaded program: how much the verifier had to do, and how long the load took.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProgramStats {
    /// Program name.
    pub program: String,
    /// Instructions the verifier processed (`verified_insns`, reported by Linux 5.16+).
    pub verified_insns: Option<u32>,
    /// Time from load to attached on every tracepoint.
    pub load_ms: u64,
}

/// The verifier's limit on processed instructions per program.
pub const VERIFIER_LIMIT: u32 = 1_000_000;

/// Loaded and attached programs with their maps.
pub struct Capture {
    ebpf: Ebpf,
    watched: BTreeSet<WatchedCgroup>,
    generation: u64,
    /// Tracepoints attached (name without `sys_exit_`).
    pub attached: Vec<&'static str>,
    /// Offsets handed to the kernel side; `valid == 0` when BTF was unavailable.
    pub offsets: KernelOffsets,
    /// The design in use.
    pub design: Design,
    /// What the kernel offered.
    pub probe: KernelProbe,
    /// The programs loaded, with their verifier statistics.
    pub programs: Vec<ProgramStats>,
}

/// The programs of a design, with the tracepoint phase each attaches to.
fn design_programs(design: Design) -> &'static [(&'static str, &'static str)] {
    match design {
        // One program per syscall, attached by `attach_fexit`.
        Design::Fexit => &[],
        Design::ExitOnly => &[(names::EXIT_REGS_PROGRAM, "exit")],
        Design::Pair => &[
            (names::ENTER_PROGRAM, "enter"),
            (names::EXIT_PROGRAM, "exit"),
        ],
        Design::Compat => &[
            (names::ENTER_PROGRAM, "enter"),
            (names::EXIT_COMPAT_PROGRAM, "exit"),
        ],
    }
}

impl Capture {
    /// Loads the best design this kernel allows and attaches it to every watched syscall this
    /// kernel has. Nothing is recorded until a cgroup is watched.
    pub fn load() -> Result<Capture> {
        Self::load_with(Hook::default())
    }

    /// Loads with the chosen hook: one design, or (auto) the first of [`Design::ALL`] that the
    /// probe allows and the verifier accepts. When none loads, the error is one line naming
    /// the kernel, what each design lacked and the oldest kernel that works; the verifier's
    /// logs go to a file it names.
    pub fn load_with(hook: Hook) -> Result<Capture> {
        check_privileges()?;
        Self::load_probed(hook, KernelProbe::run())
    }

    /// [`Capture::load_with`] on a kernel already probed (`writepath kernel` loads every
    /// design after one probe).
    pub fn load_probed(hook: Hook, probe: KernelProbe) -> Result<Capture> {
        check_privileges()?;
        let candidates: Vec<Design> = match hook.design() {
            Some(d) => vec![d],
            None => Design::ALL.to_vec(),
        };
        let mut failures = Vec::new();
        let mut logs = String::new();
        for design in candidates {
            if let Err(missing) = probe.allows(design) {
                failures.push(format!("{design} needs {missing}"));
                continue;
            }
            let programs = design_programs(design);
            let loaded = Self::load_programs(probe.offsets, probe.feature_bits(), programs)
                .and_then(|mut c| {
                    if design == Design::Fexit {
                        c.attach_fexit()?;
                    }
                    Ok(c)
                });
            match loaded {
                Ok(mut capture) => {
                    if let Some(e) = &probe.btf_error {
                        warn!(error = %e, "no kernel offsets: relative paths resolve in userspace only");
                    }
                    if !failures.is_empty() {
                        info!(design = %design, skipped = %failures.join("; "), "fell back");
                    }
                    capture.design = design;
                    capture.probe = probe;
                    return Ok(capture);
                }
                Err(e) => {
                    if let Some(log) = e.verifier_log().filter(|l| !l.trim().is_empty()) {
                        logs.push_str(&format!("== {design}: {e}\n{log}\n"));
                    }
                    failures.push(format!("{design}: {}", e.summary()));
                }
            }
        }
        let log_file = (!logs.is_empty()).then(|| {
            let path =
                std::env::temp_dir().join(format!("writepath-verifier-{}.log", std::process::id()));
            match std::fs::write(&path, logs) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("(could not write {}: {e})", path.display()),
            }
        });
        Err(Error::Unsupported {
            kernel: probe.release,
            failures: failures.join("; "),
            log_file,
        })
    }

    /// The benchmark floor: empty programs on exactly the tracepoints `design` uses, what a
    /// hook costs before it does anything.
    pub fn load_floor(design: Design) -> Result<Capture> {
        let programs: &[(&'static str, &'static str)] = match design {
            Design::Pair | Design::Compat => &[
                (names::FLOOR_ENTER_PROGRAM, "enter"),
                (names::FLOOR_EXIT_PROGRAM, "exit"),
            ],
            Design::ExitOnly | Design::Fexit => &[(names::FLOOR_EXIT_PROGRAM, "exit")],
        };
        let mut capture = Self::load_programs(KernelOffsets::default(), 0, programs)?;
        capture.design = design;
        Ok(capture)
    }

    /// The floor of the design not kept: one empty raw `sys_exit` program, run on every
    /// syscall. Only the benchmark loads it.
    pub fn load_raw_exit_floor() -> Result<Capture> {
        let mut capture = Self::load_programs(KernelOffsets::default(), 0, &[])?;
        let program = names::FLOOR_RAW_EXIT_PROGRAM;
        let err = |action| {
            move |source| Error::Program {
                action,
                program: program.into(),
                source,
            }
        };
        let prog: &mut aya::programs::RawTracePoint = capture
            .ebpf
            .program_mut(program)
            .ok_or(Error::MissingProgram(program))?
            .try_into()
            .map_err(err("load"))?;
        prog.load().map_err(err("load"))?;
        prog.attach("sys_exit").map_err(err("attach"))?;
        Ok(capture)
    }

    fn load_programs(
        offsets: KernelOffsets,
        features: u64,
        programs: &[(&'static str, &'static str)],
    ) -> Result<Capture> {
        raise_memlock_limit();
        ensure_tracefs();
        let ebpf = EbpfLoader::new()
            .override_global(names::OFFSETS_GLOBAL, &offsets, true)
            .override_global(names::FEATURES_GLOBAL, &features, true)
            .load(PROGRAMS)
            .map_err(Error::Load)?;
        let mut capture = Capture {
            ebpf,
            watched: BTreeSet::new(),
            generation: 0,
            attached: Vec::new(),
            offsets,
            design: Design::Compat,
            probe: KernelProbe::default(),
            programs: Vec::new(),
        };
        capture.attach_all(programs)?;
        // Parsing the kernel's BTF (ours for the offsets, aya's for relocations) peaks at tens
        // of MiB of heap that glibc would otherwise keep: give it back before recording.
        // SAFETY: malloc_trim has no preconditions.
        unsafe { libc::malloc_trim(0) };
        Ok(capture)
    }

    fn attach_all(&mut self, programs: &[(&'static str, &'static str)]) -> Result<()> {
        let tracefs = tracefs_events_dir();
        for &(program, phase) in programs {
            let started = std::time::Instant::now();
            let prog: &mut TracePoint = self
                .ebpf
                .program_mut(program)
                .ok_or(Error::MissingProgram(program))?
                .try_into()
                .map_err(|source| Error::Program {
                    action: "load",
                    program: program.into(),
                    source,
                })?;
            prog.load().map_err(|source| Error::Program {
                action: "load",
                program: program.into(),
                source,
            })?;
            for w in TRACEPOINTS {
                let tp = format!("sys_{phase}_{}", w.name);
                if let Some(dir) = &tracefs {
                    if !dir.join("syscalls").join(&tp).exists() {
                        debug!(tracepoint = %tp, "not in this kernel, skipped");
                        continue;
                    }
                }
                prog.attach("syscalls", &tp)
                    .map_err(|source| Error::Program {
                        action: "attach",
                        program: format!("{program} to syscalls/{tp}"),
                        source,
                    })?;
                if phase == "exit" {
                    self.attached.push(w.name);
                }
            }
            let verified_insns = prog
                .info()
                .ok()
                .and_then(|i| i.verified_instruction_count());
            self.programs.push(ProgramStats {
                program: program.to_string(),
                verified_insns,
                load_ms: started.elapsed().as_millis() as u64,
            });
        }
        info!(syscalls = self.attached.len(), "programs attached");
        Ok(())
    }

    /// Loads and attaches the trampoline design: `fx_<name>` on `__x64_sys_<name>` for every
    /// watched syscall this kernel's BTF has. The first failure (a kernel that refuses
    /// trampolines fails on the first program) ends the attempt.
    fn attach_fexit(&mut self) -> Result<()> {
        let btf = aya::Btf::from_sys_fs().map_err(|e| Error::Program {
            action: "load",
            program: "fexit programs (kernel BTF)".into(),
            source: aya::programs::ProgramError::Btf(e),
        })?;
        for w in TRACEPOINTS {
            let started = std::time::Instant::now();
            let program = names::fexit_program(w.name);
            let function = format!("__x64_sys_{}", w.name);
            let err = |action: &'static str, source| Error::Program {
                action,
                program: format!("{program} on {function}"),
                source,
            };
            let prog: &mut FExit = self
                .ebpf
                .program_mut(&program)
                .ok_or(Error::MissingFexit(w.name))?
                .try_into()
                .map_err(|source| err("load", source))?;
            match prog.load(&function, &btf) {
                Ok(()) => {}
                Err(aya::programs::ProgramError::Btf(aya::BtfError::UnknownBtfTypeName {
                    ..
                })) => {
                    debug!(function = %function, "not in this kernel, skipped");
                    continue;
                }
                Err(source) => return Err(err("load", source)),
            }
            prog.attach().map_err(|source| err("attach", source))?;
            self.attached.push(w.name);
            self.programs.push(ProgramStats {
                program,
                verified_insns: prog
                    .info()
                    .ok()
                    .and_then(|i| i.verified_instruction_count()),
                load_ms: started.elapsed().as_millis() as u64,
            });
        }
        info!(syscalls = self.attached.len(), "fexit programs attached");
        Ok(())
    }

    /// Starts recording a cgroup and all its descendants (present and future).
    pub fn watch(&mut self, cgroup: WatchedCgroup) -> Result<()> {
        self.watched_map()?
            .insert(cgroup.id, 1, 0)
            .map_err(|source| Error::Map {
                action: "update",
                map: names::WATCHED_MAP,
                source,
            })?;
        self.watched.insert(cgroup);
        self.publish_control()
    }

    /// Stops recording a cgroup.
    pub fn unwatch(&mut self, cgroup: &WatchedCgroup) -> Result<()> {
        let _ = self.watched_map()?.remove(&cgroup.id);
        self.watched.remove(cgroup);
        self.publish_control()
    }

    fn watched_map(&mut self) -> Result<HashMap<&mut MapData, u64, u32>> {
        let map = self
            .ebpf
            .map_mut(names::WATCHED_MAP)
            .ok_or(Error::MissingMap(names::WATCHED_MAP))?;
        HashMap::try_from(map).map_err(|source| Error::Map {
            action: "open",
            map: names::WATCHED_MAP,
            source,
        })
    }

    fn publish_control(&mut self) -> Result<()> {
        self.generation += 1;
        let level_mask = self
            .watched
            .iter()
            .fold(0u64, |m, c| m | 1u64 << c.level.min(63));
        let mut control: Array<_, Control> = Array::try_from(
            self.ebpf
                .map_mut(names::CONTROL_MAP)
                .ok_or(Error::MissingMap(names::CONTROL_MAP))?,
        )
        .map_err(|source| Error::Map {
            action: "open",
            map: names::CONTROL_MAP,
            source,
        })?;
        control
            .set(
                0,
                Control {
                    level_mask,
                    generation: self.generation,
                },
                0,
            )
            .map_err(|source| Error::Map {
                action: "update",
                map: names::CONTROL_MAP,
                source,
            })
    }

    /// Takes the record stream (once): the ring buffer, with the dedup LRU and the counters
    /// that complete it. Needs a tokio runtime.
    pub fn take_events(&mut self) -> Result<EventStream> {
        let mut take = |name: &'static str| self.ebpf.take_map(name).ok_or(Error::MissingMap(name));
        let open = |map: &'static str| {
            move |source| Error::Map {
                action: "open",
                map,
                source,
            }
        };
        let ring = RingBuf::try_from(take(names::EVENTS_MAP)?).map_err(open(names::EVENTS_MAP))?;
        let dedup = HashMap::try_from(take(names::DEDUP_MAP)?).map_err(open(names::DEDUP_MAP))?;
        let stats =
            PerCpuArray::try_from(take(names::STATS_MAP)?).map_err(open(names::STATS_MAP))?;
        EventStream::new(ring, dedup, stats)
    }
}

/// Checks the capabilities loading needs before trying: CAP_BPF and CAP_PERFMON, or
/// CAP_SYS_ADMIN (root has all three). Without /proc the load itself will say.
pub fn check_privileges() -> Result<()> {
    const CAP_SYS_ADMIN: u64 = 21;
    const CAP_PERFMON: u64 = 38;
    const CAP_BPF: u64 = 39;
    let Ok(eff) = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .map(|s| s.capeff)
    else {
        return Ok(());
    };
    let has = |cap: u64| eff & (1 << cap) != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        return Err(Error::NotRoot(format!("CapEff {eff:#018x}")));
    }
    // tracefs is root's alone (mode 0700): the tracepoint designs attach through it.
    // The first location that exists decides (ensure_tracefs mounts one when none does).
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        match std::fs::read_dir(Path::new(dir).join("events")) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::TracefsDenied(dir.to_string()))
            }
            Err(_) => continue,
        }
    }
    Ok(())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        debug!("could not raise RLIMIT_MEMLOCK (fine on kernels >= 5.11)");
    }
}

fn tracefs_events_dir() -> Option<PathBuf> {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("syscalls").is_dir())
}

/// Mounts tracefs when neither usual location has it (aya attaches through it).
fn ensure_tracefs() {
    if tracefs_events_dir().is_some() {
        return;
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        warn!("tracefs is not mounted and could not be mounted at /sys/kernel/tracing");
    }
}
