//! [`Capture`]: the loaded programs, their maps, and the watched-cgroup set.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use agent_common::{
    names, offsets::KernelOffsets, syscalls::TRACEPOINTS, Control, Counter, DedupKey, DedupValue,
    COUNTERS,
};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::TracePoint,
    Ebpf, EbpfLoader,
};
use tracing::{debug, info, warn};

use crate::report::Counters;

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
    #[error("loading eBPF programs needs root (or CAP_BPF and CAP_PERFMON)")]
    NotRoot,
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
            Error::NotRoot => "not_root",
            Error::NoCgroup2 => "no_cgroup2",
            Error::Load(_) => "load",
            Error::Program { .. } => "program",
            Error::MissingMap(_) => "missing_map",
            Error::MissingProgram(_) => "missing_program",
            Error::Map { .. } => "map",
            Error::NotACgroup { .. } => "not_a_cgroup",
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
        std::fs::metadata(dir.join("cgroup.procs")).map_err(not_cgroup)?;
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

/// Which programs capture the calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Hook {
    /// One program on each `sys_enter_*` tracepoint (filter, save the arguments) and one on
    /// each `sys_exit_*` (read the paths, emit). The portable design.
    Pair,
    /// Only the `sys_exit_*` programs: the arguments come from the registers the task saved on
    /// entry (`bpf_task_pt_regs`, kernel 5.15+). No enter program, no in-flight map.
    #[default]
    ExitOnly,
}

/// Loaded and attached programs with their maps.
pub struct Capture {
    ebpf: Ebpf,
    watched: BTreeSet<WatchedCgroup>,
    generation: u64,
    /// Tracepoints attached (name without `sys_enter_`).
    pub attached: Vec<&'static str>,
    /// Offsets handed to the kernel side; `valid == 0` when BTF was unavailable.
    pub offsets: KernelOffsets,
}

impl Capture {
    /// Loads the programs and attaches them to every watched syscall this kernel has.
    /// Nothing is recorded until a cgroup is watched.
    pub fn load() -> Result<Capture> {
        Self::load_with(Hook::default())
    }

    /// Loads with the chosen hook design.
    pub fn load_with(hook: Hook) -> Result<Capture> {
        let offsets = match super::offsets::from_btf_file(super::offsets::VMLINUX_BTF) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "no kernel offsets: relative paths resolve in userspace only");
                KernelOffsets::default()
            }
        };
        match hook {
            Hook::Pair => Self::load_programs(
                offsets,
                &[
                    (names::ENTER_PROGRAM, "enter"),
                    (names::EXIT_PROGRAM, "exit"),
                ],
            ),
            Hook::ExitOnly => Self::load_programs(offsets, &[(names::EXIT_REGS_PROGRAM, "exit")]),
        }
    }

    /// The benchmark floor: empty programs on exactly the tracepoints the `hook` design uses,
    /// what a hook costs before it does anything.
    pub fn load_floor(hook: Hook) -> Result<Capture> {
        let programs: &[(&'static str, &'static str)] = match hook {
            Hook::Pair => &[
                (names::FLOOR_ENTER_PROGRAM, "enter"),
                (names::FLOOR_EXIT_PROGRAM, "exit"),
            ],
            Hook::ExitOnly => &[(names::FLOOR_EXIT_PROGRAM, "exit")],
        };
        Self::load_programs(KernelOffsets::default(), programs)
    }

    /// The floor of the design not kept: one empty raw `sys_exit` program, run on every
    /// syscall. Only the benchmark loads it.
    pub fn load_raw_exit_floor() -> Result<Capture> {
        let mut capture = Self::load_programs(KernelOffsets::default(), &[])?;
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
        programs: &[(&'static str, &'static str)],
    ) -> Result<Capture> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::NotRoot);
        }
        raise_memlock_limit();
        ensure_tracefs();
        let ebpf = EbpfLoader::new()
            .override_global(names::OFFSETS_GLOBAL, &offsets, true)
            .load(PROGRAMS)
            .map_err(Error::Load)?;
        let mut capture = Capture {
            ebpf,
            watched: BTreeSet::new(),
            generation: 0,
            attached: Vec::new(),
            offsets,
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
        }
        info!(syscalls = self.attached.len(), "programs attached");
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

    /// Takes the ring buffer of records (once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(names::EVENTS_MAP)
            .ok_or(Error::MissingMap(names::EVENTS_MAP))?;
        RingBuf::try_from(map).map_err(|source| Error::Map {
            action: "open",
            map: names::EVENTS_MAP,
            source,
        })
    }

    /// The kernel counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map(names::STATS_MAP)
                .ok_or(Error::MissingMap(names::STATS_MAP))?,
        )
        .map_err(|source| Error::Map {
            action: "open",
            map: names::STATS_MAP,
            source,
        })?;
        let mut sums = [0u64; COUNTERS as usize];
        for (i, sum) in sums.iter_mut().enumerate() {
            let values = stats.get(&(i as u32), 0).map_err(|source| Error::Map {
                action: "read",
                map: names::STATS_MAP,
                source,
            })?;
            *sum = values.iter().sum();
        }
        let c = |k: Counter| sums[k as usize];
        Ok(Counters {
            seen: c(Counter::Seen),
            filtered: c(Counter::Filtered),
            deduplicated: c(Counter::Deduplicated),
            emitted: c(Counter::Emitted),
            dropped: c(Counter::Dropped),
            pending_full: c(Counter::PendingFull),
            pending_missing: c(Counter::PendingMissing),
            path_errors: c(Counter::PathErrors),
            base_errors: c(Counter::BaseErrors),
            not_a_path: c(Counter::NotAPath),
            decode_errors: 0,
            collapsed: 0,
            runtime_setup: 0,
        })
    }

    /// Hit counts folded into each live dedup entry since it was emitted.
    pub fn dedup_hits(&self) -> Result<Vec<(DedupKey, DedupValue)>> {
        let map: HashMap<_, DedupKey, DedupValue> = HashMap::try_from(
            self.ebpf
                .map(names::DEDUP_MAP)
                .ok_or(Error::MissingMap(names::DEDUP_MAP))?,
        )
        .map_err(|source| Error::Map {
            action: "open",
            map: names::DEDUP_MAP,
            source,
        })?;
        // Entries evicted while we iterate are skipped, not fatal.
        Ok(map.iter().filter_map(|r| r.ok()).collect())
    }
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
