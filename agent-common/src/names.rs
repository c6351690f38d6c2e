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
/// What the running kernel offers the programs ([`FEATURE_ANCESTOR_HELPER`]…), set at load
/// time from the probe.
pub const FEATURES_GLOBAL: &str = "FEATURES";
/// [`FEATURES_GLOBAL`] bit: `bpf_get_current_ancestor_cgroup_id` may be called (5.14+ in
/// tracepoint programs); without it the cgroup ancestry is read from `struct cgroup`.
pub const FEATURE_ANCESTOR_HELPER: u64 = 1 << 0;

/// The program attached to every `syscalls/sys_enter_*` tracepoint we watch.
pub const ENTER_PROGRAM: &str = "sys_enter_write";
/// The program attached to every `syscalls/sys_exit_*` tracepoint we watch.
pub const EXIT_PROGRAM: &str = "sys_exit_write";
/// The exit program of the compat design (kernels without `bpf_loop`): the same work with
/// bounded loops; paired with [`ENTER_PROGRAM`].
pub const EXIT_COMPAT_PROGRAM: &str = "sys_exit_compat";

/// The exit-only design: one program on the `sys_exit_*` tracepoints, arguments from the
/// task's saved registers.
pub const EXIT_REGS_PROGRAM: &str = "sys_exit_regs";
/// Benchmark floor: an empty program on the same `sys_enter_*` tracepoints.
pub const FLOOR_ENTER_PROGRAM: &str = "sys_enter_floor";
/// Benchmark floor: an empty program on the same `sys_exit_*` tracepoints.
pub const FLOOR_EXIT_PROGRAM: &str = "sys_exit_floor";
/// Benchmark floor of the raw-tracepoint design: an empty raw `sys_exit` program.
pub const FLOOR_RAW_EXIT_PROGRAM: &str = "raw_sys_exit_floor";

/// The trampoline design's program for the watched syscall `name` (`fx_openat` on
/// `__x64_sys_openat`).
#[cfg(feature = "user")]
pub fn fexit_program(name: &str) -> String {
    format!("fx_{name}")
}
