//! Every map of the kernel side, with who writes and who reads it.

use agent_common::{Control, DedupKey, DedupValue, EventBuffer, PendingCall, Verdict, COUNTERS};
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};

/// Ring buffer size: 8 MiB holds ~40 000 typical records, about 100 ms of a flood, while
/// userspace drains on a timer. The reader maps it (twice, for wrap-around), so it counts in
/// the agent's RSS: 16 MiB of the total.
const EVENTS_BYTES: u32 = 8 << 20;

/// Write records. Written by `sys_exit_write`; read (drained) by userspace.
#[map(name = "EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Counters, indexed by `Counter`. Written by both programs; read by userspace.
#[map(name = "STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS, 0);

/// Watched cgroup v2 ids (value unused, 1). Written by userspace; read by `sys_enter_write`.
#[map(name = "WATCHED")]
pub static WATCHED: HashMap<u64, u32> = HashMap::with_max_entries(4096, 0);

/// Index 0: levels holding watched cgroups and the watch generation. Written by userspace;
/// read by `sys_enter_write`.
#[map(name = "CONTROL")]
pub static CONTROL: Array<Control> = Array::with_max_entries(1, 0);

/// Cached watch verdict per cgroup id. Written and read by `sys_enter_write`; stale entries
/// (older generation) are recomputed, so userspace never has to clear it.
#[map(name = "VERDICTS")]
pub static VERDICTS: LruHashMap<u64, Verdict> = LruHashMap::with_max_entries(16384, 0);

/// Per-CPU one-entry cache in front of [`VERDICTS`]: the last cgroup seen on this CPU and its
/// verdict. A CPU running one workload hits it on almost every call, and an array lookup is
/// inlined by the verifier where a hash lookup is not. Used only by the filter.
#[map(name = "LAST_VERDICT")]
pub static LAST_VERDICT: PerCpuArray<CachedVerdict> = PerCpuArray::with_max_entries(1, 0);

/// See [`LAST_VERDICT`].
#[repr(C)]
pub struct CachedVerdict {
    /// The cgroup the verdict is for.
    pub cgroup: u64,
    /// The verdict and its generation.
    pub verdict: Verdict,
}

/// Arguments of calls in flight, by pid_tgid. Written by `sys_enter_write`, consumed by
/// `sys_exit_write`. A plain hash (an LRU update costs more): every sys_enter of a watched
/// call is followed by its sys_exit, which removes the entry, and a thread's next call
/// overwrites whatever is left.
#[map(name = "PENDING")]
pub static PENDING: HashMap<u64, PendingCall> = HashMap::with_max_entries(16384, 0);

/// Recently emitted writes, with the identical calls folded into them since. Written by
/// `sys_exit_write`; read (hit counts) by userspace.
#[map(name = "SEEN_WRITES")]
pub static SEEN_WRITES: LruHashMap<DedupKey, DedupValue> = LruHashMap::with_max_entries(65536, 0);

/// Per-CPU staging area for one record (too big for the 512-byte BPF stack). Used only by
/// `sys_exit_write`.
#[map(name = "SCRATCH")]
pub static SCRATCH: PerCpuArray<EventBuffer> = PerCpuArray::with_max_entries(1, 0);

/// The call being finished, handed from one stage of the exit side to the next (see
/// `programs::exit`). Per CPU: a program runs to its end on one CPU.
#[map(name = "WORK")]
pub static WORK: PerCpuArray<Work> = PerCpuArray::with_max_entries(1, 0);

/// See [`WORK`]. Filled by the entry program, then by each stage in turn.
#[repr(C)]
pub struct Work {
    /// Syscall number.
    pub nr: u64,
    /// Its result.
    pub ret: i64,
    /// Its flags argument (open flags, AT_* flags), as the filter read it.
    pub call_flags: u64,
    /// User pointer of the first path (or of the sockaddr for bind).
    pub path_ptr: u64,
    /// User pointer of the second path, 0 when none.
    pub path2_ptr: u64,
    /// Directory fd of the first path (`AT_FDCWD` when the syscall takes none).
    pub dirfd: i64,
    /// Directory fd of the second path, as the syscall gave it.
    pub dirfd2_arg: i64,
    /// `bpf_get_current_pid_tgid()`.
    pub pid_tgid: u64,
    /// Stage 1: the operation (rmdir for `unlinkat(AT_REMOVEDIR)`).
    pub op: u64,
    /// Stage 1: the flags that take part in the dedup key.
    pub key_flags: u64,
    /// Stages 1 and 4: `EV_*` flags of the record.
    pub flags: u64,
    /// Stage 1: length of the first path.
    pub p1_len: u64,
    /// Stage 1: payload offset of the second path.
    pub off2: u64,
    /// Stage 1: length of the second path.
    pub p2_len: u64,
    /// Stage 1: hashes of the two paths.
    pub path_hash: u64,
    /// See `path_hash`.
    pub path2_hash: u64,
    /// Stage 1: bit 0, the first path is relative; bit 1, the second.
    pub relative: u64,
    /// Stage 1: directory fd the second path is resolved against (`AT_FDCWD` when unused).
    pub dirfd2: i64,
    /// Stage 2: bit 0, the first base was found; bit 1, the second.
    pub found: u64,
    /// Stage 2: the base directories.
    pub base1_mnt: u64,
    /// See `base1_mnt`.
    pub base1_dentry: u64,
    /// See `base1_mnt`.
    pub base2_mnt: u64,
    /// See `base1_mnt`.
    pub base2_dentry: u64,
    /// Stage 3: when the record was made.
    pub now: u64,
    /// Stage 4: payload bytes used.
    pub end: u64,
    /// Stage 4: lengths of the resolved bases.
    pub base_len: u64,
    /// See `base_len`.
    pub base2_len: u64,
}

/// Adds one to a counter.
#[inline(always)]
pub fn count(counter: agent_common::Counter) {
    if let Some(slot) = STATS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe { *slot += 1 };
    }
}

/// State of a `bpf_loop` in progress (path walk or hash). Kept in a map rather than on the
/// stack: values read from a map are unknown to the verifier, so it checks a loop step once
/// instead of once per distinct caller state. Used only by `sys_exit_write` and its callbacks.
#[map(name = "LOOP_STATE")]
pub static LOOP_STATE: PerCpuArray<LoopState> = PerCpuArray::with_max_entries(1, 0);

/// See [`LOOP_STATE`].
#[repr(C)]
pub struct LoopState {
    /// Walk: current dentry.
    pub dentry: u64,
    /// Walk: current vfsmount.
    pub mnt: u64,
    /// Walk: current struct mount.
    pub mount: u64,
    /// Walk: the task's root dentry.
    pub root_dentry: u64,
    /// Walk: the task's root vfsmount.
    pub root_mnt: u64,
    /// Walk: next payload offset.
    pub off: u64,
    /// Walk: 1 once the root was reached.
    pub done: u64,
    /// Hash: payload offset of the string.
    pub hash_off: u64,
    /// Hash: its length.
    pub hash_len: u64,
    /// Hash: running value.
    pub hash: u64,
}
