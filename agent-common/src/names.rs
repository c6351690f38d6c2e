//! Names of maps, programs and globals: the kernel side declares them with these constants and
//! userspace looks them up with the same ones, so a rename cannot split the two.

/// Ring buffer carrying [`crate::WriteEvent`] records to userspace.
pub const EVENTS_MAP: &str = "EVENTS";
/// Per-CPU counters, indexed by [`crate::Counter`].
pub const STATS_MAP: &str = "STATS";
/// Watched cgroup v2 ids (a watched cgroup covers its descendants).
pub const WATCHED_MAP: &str = "WATCHED";
/// Control block: which cgroup levels hold watched cgroups, and the watch generation.
pub const CONTROL_MAP: &str = "CONTROL";
/// LRU of recently emitted writes, with the hits folded into each entry since.
pub const DEDUP_MAP: &str = "SEEN_WRITES";
/// Kernel structure offsets, read from the running kernel's BTF at load time.
pub const OFFSETS_GLOBAL: &str = "OFFSETS";

/// The program attached to every `syscalls/sys_enter_*` tracepoint we watch.
pub const ENTER_PROGRAM: &str = "sys_enter_write";
/// The program attached to every `syscalls/sys_exit_*` tracepoint we watch.
pub const EXIT_PROGRAM: &str = "sys_exit_write";

/// The exit-only design: one program on the `sys_exit_*` tracepoints, arguments from the
/// task's saved registers.
pub const EXIT_REGS_PROGRAM: &str = "sys_exit_regs";
/// Benchmark floor: an empty program on the same `sys_enter_*` tracepoints.
pub const FLOOR_ENTER_PROGRAM: &str = "sys_enter_floor";
/// Benchmark floor: an empty program on the same `sys_exit_*` tracepoints.
pub const FLOOR_EXIT_PROGRAM: &str = "sys_exit_floor";
/// Benchmark floor of the raw-tracepoint design: an empty raw `sys_exit` program.
pub const FLOOR_RAW_EXIT_PROGRAM: &str = "raw_sys_exit_floor";
