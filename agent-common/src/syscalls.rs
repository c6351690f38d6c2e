//! The x86_64 syscalls that write a path, and how to read their arguments.
//!
//! This is the one place that knows syscall numbers. The kernel side indexes [`SPECS`] by the
//! number it finds in the tracepoint record; userspace uses [`TRACEPOINTS`] to attach and
//! [`spec`] to interpret an event. Syscalls that newer kernels added (`fchmodat2`,
//! `setxattrat`, `removexattrat`) are attached when their tracepoint exists.

use crate::event::Op;

/// Marker for "this syscall has no such argument".
pub const NO_ARG: u8 = 0xff;

/// How the kernel side decides write intent and reads the path arguments of one syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallSpec {
    /// What the syscall does to its first path; [`Op::None`] for numbers we do not watch.
    pub op: u8,
    /// Special argument handling, one of `ARGS_*`.
    pub args: u8,
    /// Index of the (first) path argument, or [`NO_ARG`].
    pub path: u8,
    /// Index of the directory fd the first path is relative to, or [`NO_ARG`] for the cwd.
    pub dirfd: u8,
    /// Index of the second path argument (rename/link/symlink), or [`NO_ARG`].
    pub path2: u8,
    /// Index of the directory fd of the second path, or [`NO_ARG`] for the cwd.
    pub dirfd2: u8,
    /// Index of the flags argument (open flags, `AT_*` flags), or [`NO_ARG`].
    pub flags: u8,
    /// Padding, always 0.
    pub _pad: u8,
}

/// Arguments read as they are.
pub const ARGS_PLAIN: u8 = 0;
/// An open flags argument: only calls with write intent are recorded.
pub const ARGS_OPEN: u8 = 1;
/// `openat2`: the flags are the first u64 of the user's `struct open_how`.
pub const ARGS_OPENAT2: u8 = 2;
/// `creat`: always creates and truncates.
pub const ARGS_CREAT: u8 = 3;
/// `unlinkat`: `AT_REMOVEDIR` in the flags makes it an rmdir.
pub const ARGS_UNLINKAT: u8 = 4;
/// `bind`: the path is `sun_path` of a `sockaddr_un`, only for AF_UNIX path sockets.
pub const ARGS_BIND: u8 = 5;
/// `utimensat`/`futimesat`: a NULL path means the fd itself (not a path write).
pub const ARGS_NULLABLE_PATH: u8 = 6;
/// `symlink`/`symlinkat`: the second path is the link's content, not a path to resolve.
pub const ARGS_SYMLINK: u8 = 7;

const fn s(op: Op, args: u8, path: u8, dirfd: u8, path2: u8, dirfd2: u8, flags: u8) -> SyscallSpec {
    SyscallSpec {
        op: op as u8,
        args,
        path,
        dirfd,
        path2,
        dirfd2,
        flags,
        _pad: 0,
    }
}

const N: u8 = NO_ARG;
const NONE: SyscallSpec = s(Op::None, ARGS_PLAIN, N, N, N, N, N);

/// Size of [`SPECS`]: a power of two above every syscall number we watch.
pub const MAX_SYSCALL: usize = 512;

/// A watched syscall: its number, its tracepoint name (without `sys_enter_`) and its spec.
pub struct Watched {
    /// x86_64 syscall number.
    pub nr: u32,
    /// Tracepoint suffix: `syscalls/sys_enter_{name}` and `syscalls/sys_exit_{name}`.
    pub name: &'static str,
    /// How to read it.
    pub spec: SyscallSpec,
}

macro_rules! watched {
    ($( $nr:literal $name:literal => $spec:expr ),* $(,)?) => {
        /// Every watched syscall, in number order.
        pub const TRACEPOINTS: &[Watched] = &[ $( Watched { nr: $nr, name: $name, spec: $spec } ),* ];
    };
}

// Argument indices follow the x86_64 prototypes in include/linux/syscalls.h.
watched! {
    2   "open"          => s(Op::Open,        ARGS_OPEN,          0, N, N, N, 1),
    49  "bind"          => s(Op::Bind,        ARGS_BIND,          1, N, N, N, N),
    76  "truncate"      => s(Op::Truncate,    ARGS_PLAIN,         0, N, N, N, N),
    82  "rename"        => s(Op::Rename,      ARGS_PLAIN,         1, N, 0, N, N),
    83  "mkdir"         => s(Op::Mkdir,       ARGS_PLAIN,         0, N, N, N, N),
    84  "rmdir"         => s(Op::Rmdir,       ARGS_PLAIN,         0, N, N, N, N),
    85  "creat"         => s(Op::Open,        ARGS_CREAT,         0, N, N, N, N),
    86  "link"          => s(Op::Link,        ARGS_PLAIN,         1, N, 0, N, N),
    87  "unlink"        => s(Op::Unlink,      ARGS_PLAIN,         0, N, N, N, N),
    88  "symlink"       => s(Op::Symlink,     ARGS_SYMLINK,       1, N, 0, N, N),
    90  "chmod"         => s(Op::Chmod,       ARGS_PLAIN,         0, N, N, N, N),
    92  "chown"         => s(Op::Chown,       ARGS_PLAIN,         0, N, N, N, N),
    94  "lchown"        => s(Op::Chown,       ARGS_PLAIN,         0, N, N, N, N),
    132 "utime"         => s(Op::Utimes,      ARGS_PLAIN,         0, N, N, N, N),
    133 "mknod"         => s(Op::Mknod,       ARGS_PLAIN,         0, N, N, N, N),
    188 "setxattr"      => s(Op::Setxattr,    ARGS_PLAIN,         0, N, N, N, N),
    189 "lsetxattr"     => s(Op::Setxattr,    ARGS_PLAIN,         0, N, N, N, N),
    197 "removexattr"   => s(Op::Removexattr, ARGS_PLAIN,         0, N, N, N, N),
    198 "lremovexattr"  => s(Op::Removexattr, ARGS_PLAIN,         0, N, N, N, N),
    235 "utimes"        => s(Op::Utimes,      ARGS_PLAIN,         0, N, N, N, N),
    257 "openat"        => s(Op::Open,        ARGS_OPEN,          1, 0, N, N, 2),
    258 "mkdirat"       => s(Op::Mkdir,       ARGS_PLAIN,         1, 0, N, N, N),
    259 "mknodat"       => s(Op::Mknod,       ARGS_PLAIN,         1, 0, N, N, N),
    260 "fchownat"      => s(Op::Chown,       ARGS_PLAIN,         1, 0, N, N, 4),
    261 "futimesat"     => s(Op::Utimes,      ARGS_NULLABLE_PATH, 1, 0, N, N, N),
    263 "unlinkat"      => s(Op::Unlink,      ARGS_UNLINKAT,      1, 0, N, N, 2),
    264 "renameat"      => s(Op::Rename,      ARGS_PLAIN,         3, 2, 1, 0, N),
    265 "linkat"        => s(Op::Link,        ARGS_PLAIN,         3, 2, 1, 0, 4),
    266 "symlinkat"     => s(Op::Symlink,     ARGS_SYMLINK,       2, 1, 0, N, N),
    268 "fchmodat"      => s(Op::Chmod,       ARGS_PLAIN,         1, 0, N, N, N),
    280 "utimensat"     => s(Op::Utimes,      ARGS_NULLABLE_PATH, 1, 0, N, N, 3),
    316 "renameat2"     => s(Op::Rename,      ARGS_PLAIN,         3, 2, 1, 0, 4),
    437 "openat2"       => s(Op::Open,        ARGS_OPENAT2,       1, 0, N, N, 2),
    452 "fchmodat2"     => s(Op::Chmod,       ARGS_PLAIN,         1, 0, N, N, 3),
    463 "setxattrat"    => s(Op::Setxattr,    ARGS_PLAIN,         1, 0, N, N, 2),
    466 "removexattrat" => s(Op::Removexattr, ARGS_PLAIN,         1, 0, N, N, 2),
}

const fn build_specs() -> [SyscallSpec; MAX_SYSCALL] {
    let mut table = [NONE; MAX_SYSCALL];
    let mut i = 0;
    while i < TRACEPOINTS.len() {
        table[TRACEPOINTS[i].nr as usize] = TRACEPOINTS[i].spec;
        i += 1;
    }
    table
}

/// Specs indexed by syscall number; [`Op::None`] where we do not watch.
pub static SPECS: [SyscallSpec; MAX_SYSCALL] = build_specs();

/// The spec of syscall `nr`, if we watch it.
pub fn spec(nr: u32) -> Option<&'static SyscallSpec> {
    SPECS.get(nr as usize).filter(|s| s.op != Op::None as u8)
}

/// `O_WRONLY`.
pub const O_WRONLY: u64 = 0o1;
/// `O_RDWR`.
pub const O_RDWR: u64 = 0o2;
/// `O_CREAT`.
pub const O_CREAT: u64 = 0o100;
/// `O_TRUNC`.
pub const O_TRUNC: u64 = 0o1000;
/// `O_APPEND`.
pub const O_APPEND: u64 = 0o2000;
/// `__O_TMPFILE` (the bit without `O_DIRECTORY`).
pub const O_TMPFILE_BIT: u64 = 0o20000000;
/// The open flags that mean "this open may write".
pub const WRITE_INTENT: u64 = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_TMPFILE_BIT;
/// The open flags kept in the dedup key and the event: they change what the write is.
pub const INTENT_BITS: u64 = WRITE_INTENT | O_APPEND;
/// `AT_REMOVEDIR` for `unlinkat`.
pub const AT_REMOVEDIR: u64 = 0x200;
/// `AT_EMPTY_PATH`: the fd itself is the target.
pub const AT_EMPTY_PATH: u64 = 0x1000;
/// `AT_FDCWD`.
pub const AT_FDCWD: i32 = -100;
/// `AF_UNIX`.
pub const AF_UNIX: u16 = 1;
/// Bytes of `sun_path` in `struct sockaddr_un`.
pub const UNIX_PATH_MAX: usize = 108;

/// Whether open flags ask for a write.
#[inline(always)]
pub const fn open_has_write_intent(flags: u64) -> bool {
    flags & WRITE_INTENT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_in_range() {
        let mut last = None;
        for w in TRACEPOINTS {
            assert!((w.nr as usize) < MAX_SYSCALL, "{} out of range", w.name);
            assert!(last.is_none_or(|l| l < w.nr), "{} out of order", w.name);
            last = Some(w.nr);
            assert_eq!(spec(w.nr), Some(&w.spec));
            for idx in [
                w.spec.path,
                w.spec.dirfd,
                w.spec.path2,
                w.spec.dirfd2,
                w.spec.flags,
            ] {
                assert!(idx == NO_ARG || idx < 6, "{}: bad arg index", w.name);
            }
            assert_ne!(w.spec.path, NO_ARG, "{} has no path", w.name);
        }
        assert!(spec(0).is_none(), "read(2) is not watched");
        assert!(spec(1).is_none(), "write(2) has no path");
    }

    #[test]
    fn write_intent() {
        assert!(!open_has_write_intent(0)); // O_RDONLY
        assert!(!open_has_write_intent(0o200000 | 0o2000000)); // O_DIRECTORY|O_CLOEXEC
        assert!(open_has_write_intent(O_WRONLY));
        assert!(open_has_write_intent(O_RDWR));
        assert!(open_has_write_intent(O_CREAT));
        assert!(open_has_write_intent(O_TRUNC));
        assert!(open_has_write_intent(O_TMPFILE_BIT | 0o200000));
    }
}
