//! The wire format of one recorded write: a fixed [`WriteEvent`] header followed by the path
//! bytes it names (see [`WriteEvent::path_len`] and friends for the layout).

use core::mem::size_of;

/// What a syscall did to a path. Values are part of the wire format.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Not a watched syscall.
    None = 0,
    /// open/openat/openat2/creat with write intent; the open flags say which (create, truncate,
    /// append, tmpfile, plain write).
    Open = 1,
    /// truncate(2) of a path.
    Truncate = 2,
    /// mkdir/mkdirat.
    Mkdir = 3,
    /// mknod/mknodat (FIFOs, device nodes, sockets).
    Mknod = 4,
    /// rename/renameat/renameat2: the path is the destination, path2 the source.
    Rename = 5,
    /// link/linkat: the path is the new name, path2 the existing file.
    Link = 6,
    /// symlink/symlinkat: the path is the new link, path2 its content.
    Symlink = 7,
    /// unlink/unlinkat.
    Unlink = 8,
    /// rmdir, or unlinkat with AT_REMOVEDIR.
    Rmdir = 9,
    /// chmod/fchmodat/fchmodat2.
    Chmod = 10,
    /// chown/lchown/fchownat.
    Chown = 11,
    /// utime/utimes/futimesat/utimensat with a path.
    Utimes = 12,
    /// setxattr/lsetxattr/setxattrat.
    Setxattr = 13,
    /// removexattr/lremovexattr/removexattrat.
    Removexattr = 14,
    /// bind(2) of an AF_UNIX socket to a filesystem path.
    Bind = 15,
}

impl Op {
    /// All ops that can appear in an event.
    pub const ALL: [Op; 15] = [
        Op::Open,
        Op::Truncate,
        Op::Mkdir,
        Op::Mknod,
        Op::Rename,
        Op::Link,
        Op::Symlink,
        Op::Unlink,
        Op::Rmdir,
        Op::Chmod,
        Op::Chown,
        Op::Utimes,
        Op::Setxattr,
        Op::Removexattr,
        Op::Bind,
    ];

    /// The op with wire value `v`.
    pub fn from_u8(v: u8) -> Option<Op> {
        Self::ALL.iter().copied().find(|op| *op as u8 == v)
    }
}

/// Kinds of ring-buffer record. Values are part of the wire format.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A [`WriteEvent`].
    Write = 1,
}

/// The path could not be read from user memory (bad pointer); `path_len` is 0.
pub const EV_PATH_UNREADABLE: u32 = 1 << 0;
/// The path was longer than [`MAX_PATH`] bytes and was cut.
pub const EV_PATH_TRUNCATED: u32 = 1 << 1;
/// As [`EV_PATH_UNREADABLE`], for the second path.
pub const EV_PATH2_UNREADABLE: u32 = 1 << 2;
/// As [`EV_PATH_TRUNCATED`], for the second path.
pub const EV_PATH2_TRUNCATED: u32 = 1 << 3;
/// The first path is relative and its base directory was resolved in the kernel (`base_len`).
pub const EV_BASE_RESOLVED: u32 = 1 << 4;
/// The base directory was deeper than [`MAX_PATH_DEPTH`] or longer than the buffer.
pub const EV_BASE_TRUNCATED: u32 = 1 << 5;
/// As [`EV_BASE_RESOLVED`], for the second path.
pub const EV_BASE2_RESOLVED: u32 = 1 << 6;
/// As [`EV_BASE_TRUNCATED`], for the second path.
pub const EV_BASE2_TRUNCATED: u32 = 1 << 7;
/// `path2` is present.
pub const EV_HAS_PATH2: u32 = 1 << 8;
/// The base of a relative path could not be resolved (no offsets for this kernel, bad fd).
pub const EV_BASE_UNRESOLVED: u32 = 1 << 9;
/// As [`EV_BASE_UNRESOLVED`], for the second path.
pub const EV_BASE2_UNRESOLVED: u32 = 1 << 10;

/// Longest path we copy, the kernel's PATH_MAX (with the NUL).
pub const MAX_PATH: usize = 4096;
/// Directory levels the kernel walks up from a relative path's base directory. Deeper bases
/// are cut (and flagged [`EV_BASE_TRUNCATED`]); 64 levels covers any real layout while keeping
/// the verifier's work bounded.
pub const MAX_PATH_DEPTH: usize = 64;
/// Longest single name (NAME_MAX + NUL).
pub const MAX_NAME: usize = 256;
/// Bytes of payload after the header. Layout, each part starting at the end of the previous one
/// rounded up to a multiple of 8:
/// path (`path_len`, at 0), path2 (`path2_len`, when `EV_HAS_PATH2`), base components
/// (`base_len`, when `EV_BASE_RESOLVED`), base2 components (`base2_len`). Strings are not NUL-terminated. A base is a list of NUL-terminated names from
/// the leaf directory up to (excluding) the task's root: `b\0a\0` is `/a/b`.
pub const PAYLOAD_CAP: usize = 16384;
/// Mask that keeps payload offsets in range for the verifier.
pub const PAYLOAD_MASK: usize = PAYLOAD_CAP - 1;
/// Scratch bytes after the payload: room for one more maximal read at the last offset.
pub const PAYLOAD_SLACK: usize = MAX_PATH;

/// Key of the in-kernel dedup LRU: one entry per distinct (cgroup, op, flags, result, path).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DedupKey {
    /// cgroup v2 id of the writer.
    pub cgroup_id: u64,
    /// Identity of the first path's base directory (kernel dentry address), 0 when absolute.
    pub base_id: u64,
    /// Identity of the second path's base directory, 0 when absolute or absent.
    pub base2_id: u64,
    /// FNV-1a of the first path's bytes.
    pub path_hash: u64,
    /// FNV-1a of the second path's bytes, 0 when absent.
    pub path2_hash: u64,
    /// Syscall number (distinct syscalls are distinct writes).
    pub syscall: u32,
    /// Intent bits of the open flags ([`crate::syscalls::INTENT_BITS`]), or the `AT_*` flags.
    pub flags: u32,
    /// 0 on success, else the errno (positive).
    pub errno: u32,
    /// Length of the first path (a cheap second check against hash collisions).
    pub path_len: u32,
}

/// Value of the dedup LRU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DedupValue {
    /// Calls folded into this entry since it was emitted (the emitted call not included).
    pub hits: u64,
    /// `bpf_ktime_get_ns` of the latest folded call.
    pub last_ns: u64,
}

/// Header of a write record on the ring buffer; the payload follows.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteEvent {
    /// Always [`EventKind::Write`].
    pub kind: u32,
    /// `EV_*` bits.
    pub flags: u32,
    /// The dedup key this record opened (userspace reads hits back from the LRU by it).
    pub key: DedupKey,
    /// Return value of the syscall: >= 0 success, else -errno.
    pub ret: i64,
    /// `bpf_ktime_get_ns` at syscall exit (CLOCK_MONOTONIC, ns).
    pub ktime_ns: u64,
    /// `bpf_get_current_pid_tgid`: tgid in the high half, thread id in the low half.
    pub pid_tgid: u64,
    /// Mount namespace inode of the writer (0 when the kernel offsets are unknown).
    pub mnt_ns: u64,
    /// The raw flags argument (open flags, `AT_*` flags), 0 when the syscall has none.
    pub raw_flags: u64,
    /// `dirfd` argument of the first path (AT_FDCWD = -100 when relative to the cwd).
    pub dirfd: i32,
    /// `dirfd` argument of the second path.
    pub dirfd2: i32,
    /// Uid of the writer.
    pub uid: u32,
    /// [`Op`] as u8, widened to keep the layout padding-free.
    pub op: u32,
    /// Bytes of the first path in the payload.
    pub path_len: u16,
    /// Bytes of the first path's base components in the payload.
    pub base_len: u16,
    /// Bytes of the second path in the payload.
    pub path2_len: u16,
    /// Bytes of the second path's base components in the payload.
    pub base2_len: u16,
    /// `comm` of the writing thread, NUL-padded.
    pub comm: [u8; 16],
}

/// Size of the header on the wire.
pub const WRITE_EVENT_SIZE: usize = size_of::<WriteEvent>();
const _: () = assert!(size_of::<DedupKey>() == 56);
const _: () = assert!(size_of::<WriteEvent>() == 144);

/// What the kernel side stages for one record: header plus payload and slack.
#[repr(C)]
pub struct EventBuffer {
    /// The header.
    pub header: WriteEvent,
    /// Payload (see [`PAYLOAD_CAP`]) plus slack for a read at the last offset.
    pub payload: [u8; PAYLOAD_CAP + PAYLOAD_SLACK],
}

/// Arguments of a syscall in flight, saved at sys_enter and consumed at sys_exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingCall {
    /// Syscall number.
    pub nr: u32,
    /// Padding, 0.
    pub _pad: u32,
    /// Effective flags (for openat2, read from `struct open_how`).
    pub flags: u64,
    /// The six raw arguments.
    pub args: [u64; 6],
}
const _: () = assert!(size_of::<PendingCall>() == 64);

/// Control block read by the enter program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Control {
    /// Bit `n` set: some watched cgroup sits at level `n` of the cgroup v2 tree (root = 0).
    pub level_mask: u64,
    /// Bumped by userspace on every change to the watched set; cached verdicts of an older
    /// generation are recomputed.
    pub generation: u64,
}

/// Cached answer to "is this cgroup watched?".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Verdict {
    /// [`Control::generation`] the verdict was computed under.
    pub generation: u64,
    /// The watched ancestor (or self), 0 when not watched.
    pub watched_root: u64,
}

/// Per-CPU counters, indexes into the STATS array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Calls of the hooked syscalls (all cgroups; with the pair design, only the ones whose
    /// arguments are read at sys_enter).
    Seen = 0,
    /// Of those, left in the kernel: from cgroups nobody watches, or opens without write intent.
    Filtered = 1,
    /// Calls in watched cgroups that matched a recent identical write (folded into its count).
    Deduplicated = 2,
    /// Records written to the ring buffer.
    Emitted = 3,
    /// Records lost because the ring buffer was full.
    Dropped = 4,
    /// Calls lost because the in-flight table was full at sys_enter.
    PendingFull = 5,
    /// Calls whose saved arguments were missing at sys_exit (attached mid-call).
    PendingMissing = 6,
    /// Records with a path cut at [`MAX_PATH`] or an unreadable path.
    PathErrors = 7,
    /// Records with a base directory cut or unresolved.
    BaseErrors = 8,
    /// Calls skipped after entry: bind of a non-unix or abstract socket, fd-only utimensat.
    NotAPath = 9,
    /// A watched call the program could not finish (a map or kernel read failed before it was
    /// recorded): a loss, counted, never silent.
    ProbeErrors = 10,
}

/// Number of counters.
pub const COUNTERS: u32 = 11;

/// FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C), plain integers, with no padding (sizes pinned above).
    unsafe impl aya::Pod for super::DedupKey {}
    unsafe impl aya::Pod for super::DedupValue {}
    unsafe impl aya::Pod for super::Control {}
    unsafe impl aya::Pod for super::Verdict {}
    unsafe impl aya::Pod for crate::offsets::KernelOffsets {}
}
