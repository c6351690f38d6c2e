//! The exit side of every design: the entry programs on the `sys_exit_*` tracepoints, and the
//! stages that finish a watched call.
//!
//! - `sys_exit_regs` (exit-only design): the filter runs here and the arguments come from the
//!   registers the task saved on entry (`bpf_task_pt_regs`, 5.15+).
//! - `sys_exit_write` (pair design) and `sys_exit_compat` (compat design, no `bpf_loop`):
//!   consume the arguments `sys_enter_write` saved.
//!
//! Each entry fills [`Work`] and runs the stages in order: read and hash the paths, look up
//! the base directories of relative ones, fold repeats into the dedup LRU, walk the bases up
//! to the task's root, emit the record. Every stage is a *global* function (`extern "C"`,
//! exported, BTF linkage global): the verifier checks it once, on its own, whatever the state
//! of its caller, so the work of verifying the programs is the sum of the stages rather than
//! the product of their branches. That is what keeps 6.1's verifier, which prunes less than
//! 6.12's, far from its 1M-instruction limit. Stages talk through the per-CPU [`WORK`] and
//! [`SCRATCH`] maps and return [`GO`], [`STOP`] (the call is done: skipped or folded) or a
//! negative error, which the entry program counts as `probe_errors`.

use agent_common::{
    syscalls::{
        SyscallSpec, AF_UNIX, ARGS_BIND, ARGS_CREAT, ARGS_NULLABLE_PATH, ARGS_OPEN, ARGS_OPENAT2,
        ARGS_SYMLINK, ARGS_UNLINKAT, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, INTENT_BITS,
        MAX_SYSCALL, NO_ARG, SPECS, UNIX_PATH_MAX,
    },
    Counter, DedupKey, DedupValue, EventKind, Op, EV_BASE2_RESOLVED, EV_BASE2_TRUNCATED,
    EV_BASE2_UNRESOLVED, EV_BASE_RESOLVED, EV_BASE_TRUNCATED, EV_BASE_UNRESOLVED, EV_HAS_PATH2,
    EV_PATH2_TRUNCATED, EV_PATH2_UNREADABLE, EV_PATH_TRUNCATED, EV_PATH_UNREADABLE, MAX_PATH,
    PAYLOAD_CAP, PAYLOAD_MASK, WRITE_EVENT_SIZE,
};
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns, bpf_probe_read_user,
        generated::{
            bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_task_btf,
            bpf_task_pt_regs,
        },
    },
    macros::tracepoint,
    programs::TracePointContext,
    EbpfContext as _,
};

use super::{
    enter::{admit, pick, NR_OFFSET},
    paths::{align8, copy_user_str, hash},
};
use crate::{
    kernel::{self, off, KPath},
    maps::{count, Work, EVENTS, PENDING, SCRATCH, SEEN_WRITES, WORK},
};

/// Offset of `ret` in a `sys_exit_*` record.
const RET_OFFSET: usize = 16;
/// Wake the reader only when this much is waiting; otherwise it drains on its timer. One
/// wakeup per record would cost more than the record.
const WAKEUP_BYTES: u64 = 1 << 20;

/// A stage finished: go on with the next.
const GO: i64 = 0;
/// The call is done (not a path, or folded into an earlier record): stop here.
const STOP: i64 = 1;
/// A map lookup that cannot fail failed.
const NO_MAP: i64 = -2;

/// Counts a failed entry program: the call was watched but could not be recorded.
#[inline(always)]
pub(super) fn counted(r: Result<(), i64>) -> u32 {
    if r.is_err() {
        count(Counter::ProbeErrors);
    }
    0
}

/// The exit-only design's program. Attached to the `sys_exit_*` tracepoints alone (no enter
/// program, no in-flight map): the arguments are read from the registers the task saved on
/// syscall entry, which still hold them at exit, and the filter runs here.
#[tracepoint]
pub fn sys_exit_regs(ctx: TracePointContext) -> u32 {
    counted(try_sys_exit_regs(&ctx))
}

/// The pair design's exit program.
#[tracepoint]
pub fn sys_exit_write(ctx: TracePointContext) -> u32 {
    counted(try_sys_exit_pending::<false>(&ctx))
}

/// The compat design's exit program: as [`sys_exit_write`], with bounded loops.
#[tracepoint]
pub fn sys_exit_compat(ctx: TracePointContext) -> u32 {
    counted(try_sys_exit_pending::<true>(&ctx))
}

/// The six syscall arguments, from the registers the task saved on entry.
#[inline(always)]
fn read_saved_args() -> Result<[u64; 6], i64> {
    // SAFETY: helpers on the current task. The result is a BTF-typed `struct pt_regs *`.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8;
    Ok(syscall_args(regs))
}

/// The six syscall arguments in a BTF-typed `struct pt_regs *` (the task's saved registers, or
/// a syscall function's argument): the verifier checks each load against the kernel's BTF
/// and turns it into a fault-tolerant load, cheaper than a probe-read helper call. The offsets
/// come from BTF and are constants once loaded.
#[inline(always)]
pub(super) fn syscall_args(regs: *const u8) -> [u64; 6] {
    // SAFETY: offsets of the argument registers inside `struct pt_regs`.
    let at = |off: u64| unsafe { core::ptr::read_volatile(regs.add(off as usize).cast::<u64>()) };
    [
        at(off!(pt_regs_args[0])),
        at(off!(pt_regs_args[1])),
        at(off!(pt_regs_args[2])),
        at(off!(pt_regs_args[3])),
        at(off!(pt_regs_args[4])),
        at(off!(pt_regs_args[5])),
    ]
}

/// The syscall number, read straight from the record (every syscall tracepoint has it at 8).
#[inline(always)]
fn syscall_nr(ctx: &TracePointContext) -> i32 {
    // SAFETY: in bounds of every sys_enter_*/sys_exit_* record; a direct, checked ctx load.
    unsafe { *(ctx.as_ptr() as *const u8).add(NR_OFFSET).cast::<i32>() }
}

/// The return value, read straight from a `sys_exit_*` record (24 bytes: header, nr, ret).
#[inline(always)]
fn syscall_ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: as above.
    unsafe { *(ctx.as_ptr() as *const u8).add(RET_OFFSET).cast::<i64>() }
}

/// The syscall spec of `nr` (a masked index: the verifier sees it in bounds).
#[inline(always)]
fn spec_of(nr: u64) -> SyscallSpec {
    SPECS[(nr as usize) & (MAX_SYSCALL - 1)]
}

/// This CPU's [`Work`].
#[inline(always)]
fn work() -> Result<&'static mut Work, i64> {
    // SAFETY: per-CPU map value, ours while this program runs.
    WORK.get_ptr_mut(0)
        .map(|w| unsafe { &mut *w })
        .ok_or(NO_MAP)
}

/// Fills [`Work`] with one finished call.
#[inline(always)]
pub(super) fn stash(
    nr: i32,
    ret: i64,
    flags: u64,
    path_ptr: u64,
    path2_ptr: u64,
    dirfds: (i32, i32),
) -> Result<(), i64> {
    let w = work()?;
    w.nr = nr as u64;
    w.ret = ret;
    w.call_flags = flags;
    w.path_ptr = path_ptr;
    w.path2_ptr = path2_ptr;
    w.dirfd = dirfds.0 as i64;
    w.dirfd2_arg = dirfds.1 as i64;
    w.pid_tgid = bpf_get_current_pid_tgid();
    Ok(())
}

fn try_sys_exit_regs(ctx: &TracePointContext) -> Result<(), i64> {
    let nr = syscall_nr(ctx);
    let spec = spec_of(nr as u64);
    if spec.op == Op::None as u8 {
        return Ok(());
    }
    let Some((args, flags)) = admit(&spec, read_saved_args)? else {
        return Ok(());
    };
    let arg = |i: u8| pick(&args, i);
    let dirfd_of = |i: u8| if i == NO_ARG { AT_FDCWD } else { arg(i) as i32 };
    stash(
        nr,
        syscall_ret(ctx),
        flags,
        arg(spec.path),
        arg(spec.path2),
        (dirfd_of(spec.dirfd), dirfd_of(spec.dirfd2)),
    )?;
    finish::<false>()
}

fn try_sys_exit_pending<const BOUNDED: bool>(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(pending) = PENDING.get_ptr(&pid_tgid) else {
        return Ok(());
    };
    let nr = syscall_nr(ctx);
    let spec = spec_of(nr as u64);
    // Read the saved call field by field (a struct copy becomes a byte-loop memcpy the
    // verifier has to walk on every path).
    // SAFETY: map value pointer, valid until the entry is removed below.
    let arg = |i: u8| -> u64 {
        match i {
            0..=5 => unsafe { core::ptr::read_volatile(&(*pending).args[i as usize]) },
            _ => 0,
        }
    };
    // SAFETY: as above.
    let call_nr = unsafe { core::ptr::read_volatile(&(*pending).nr) };
    let flags = unsafe { core::ptr::read_volatile(&(*pending).flags) };
    let dirfd_of = |i: u8| if i == NO_ARG { AT_FDCWD } else { arg(i) as i32 };
    let (path_ptr, path2_ptr) = (arg(spec.path), arg(spec.path2));
    let dirfds = (dirfd_of(spec.dirfd), dirfd_of(spec.dirfd2));
    let _ = PENDING.remove(&pid_tgid);
    if nr as u32 != call_nr {
        // A stale entry whose exit we never saw.
        count(Counter::PendingMissing);
        return Ok(());
    }
    stash(nr, syscall_ret(ctx), flags, path_ptr, path2_ptr, dirfds)?;
    finish::<BOUNDED>()
}

/// Runs the stages on the call in [`Work`].
#[inline(always)]
pub(super) fn finish<const BOUNDED: bool>() -> Result<(), i64> {
    let step = |r: i64| if r < 0 { Err(r) } else { Ok(r == GO) };
    let paths = if BOUNDED {
        wp_paths_bounded()
    } else {
        wp_paths_loop()
    };
    if !step(paths)? {
        return Ok(());
    }
    step(wp_bases())?;
    if !step(wp_dedup())? {
        return Ok(());
    }
    let walks = if BOUNDED {
        wp_walks_bounded()
    } else {
        wp_walks_loop()
    };
    step(walks)?;
    step(wp_emit())?;
    Ok(())
}

/// Stage 1 with `bpf_loop` hashing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_paths_loop() -> i64 {
    stage_paths::<false>()
}

/// Stage 1 with bounded-loop hashing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_paths_bounded() -> i64 {
    stage_paths::<true>()
}

/// Stage 1: copies the path(s) into the payload and hashes them; works out the operation and
/// which paths are relative.
#[inline(always)]
fn stage_paths<const BOUNDED: bool>() -> i64 {
    let Ok(w) = work() else {
        return NO_MAP;
    };
    let spec = spec_of(w.nr);
    let call_flags = w.call_flags;
    let mut op = spec.op;
    let key_flags = match spec.args {
        ARGS_OPEN | ARGS_OPENAT2 | ARGS_CREAT => call_flags & INTENT_BITS,
        _ => call_flags & (AT_REMOVEDIR | AT_EMPTY_PATH),
    };
    if spec.args == ARGS_UNLINKAT && call_flags & AT_REMOVEDIR != 0 {
        op = Op::Rmdir as u8;
    }
    let mut ptr = w.path_ptr;
    let mut max = MAX_PATH;
    if spec.args == ARGS_BIND {
        // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
        // SAFETY: a user pointer read with the checked helper.
        let family: u16 = unsafe { bpf_probe_read_user(ptr as *const u16) }.unwrap_or(0);
        let lead: u8 = unsafe { bpf_probe_read_user((ptr + 2) as *const u8) }.unwrap_or(0);
        if family != AF_UNIX || lead == 0 {
            // Not a unix socket, or an abstract one (no filesystem name).
            count(Counter::NotAPath);
            return STOP;
        }
        ptr += 2;
        max = UNIX_PATH_MAX + 1;
    }
    if spec.args == ARGS_NULLABLE_PATH && ptr == 0 {
        // utimensat(fd, NULL, …): the fd itself, opened earlier with its own record.
        count(Counter::NotAPath);
        return STOP;
    }
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return NO_MAP;
    };
    // SAFETY: the per-CPU scratch value, ours for the duration of this program.
    let payload = unsafe { (*scratch).payload.as_mut_ptr() };
    let mut flags = 0u32;

    // First path at offset 0.
    let p1 = copy_user_str(payload, 0, ptr, max);
    if p1.unreadable {
        flags |= EV_PATH_UNREADABLE;
    }
    if p1.truncated {
        flags |= EV_PATH_TRUNCATED;
    }
    let path_hash = hash::<BOUNDED>(0, p1.len);
    // SAFETY: offset 0 is inside the payload.
    let mut relative = u64::from(p1.len == 0 || unsafe { *payload } != b'/');

    // Second path (rename/link source, symlink content) after it.
    let off2 = align8(p1.len);
    let mut p2_len = 0usize;
    let mut path2_hash = 0u64;
    let mut dirfd2 = AT_FDCWD as i64;
    if spec.path2 != NO_ARG {
        flags |= EV_HAS_PATH2;
        let p2 = copy_user_str(payload, off2, w.path2_ptr, MAX_PATH);
        if p2.unreadable {
            flags |= EV_PATH2_UNREADABLE;
        }
        if p2.truncated {
            flags |= EV_PATH2_TRUNCATED;
        }
        p2_len = p2.len;
        path2_hash = hash::<BOUNDED>(off2, p2_len);
        // A symlink's content is not resolved: it is kept as written.
        if spec.args != ARGS_SYMLINK {
            // SAFETY: masked offset inside the payload.
            let lead = unsafe { *payload.add(off2 & PAYLOAD_MASK) };
            if p2_len == 0 || lead != b'/' {
                relative |= 2;
            }
            dirfd2 = w.dirfd2_arg;
        }
    }
    w.op = u64::from(op);
    w.key_flags = key_flags;
    w.flags = u64::from(flags);
    w.p1_len = p1.len as u64;
    w.off2 = off2 as u64;
    w.p2_len = p2_len as u64;
    w.path_hash = path_hash;
    w.path2_hash = path2_hash;
    w.relative = relative;
    w.dirfd2 = dirfd2;
    GO
}

/// Stage 2: the base directories of relative paths (cwd or the file open on the dirfd).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_bases() -> i64 {
    let Ok(w) = work() else {
        return NO_MAP;
    };
    w.found = 0;
    if !kernel::offsets_valid() {
        return GO;
    }
    if w.relative & 1 != 0 {
        if let Ok(b) = kernel::base_dir(w.dirfd as i32) {
            w.found |= 1;
            w.base1_mnt = b.mnt;
            w.base1_dentry = b.dentry;
        }
    }
    if w.relative & 2 != 0 {
        if let Ok(b) = kernel::base_dir(w.dirfd2 as i32) {
            w.found |= 2;
            w.base2_mnt = b.mnt;
            w.base2_dentry = b.dentry;
        }
    }
    GO
}

/// Stage 3: folds a call identical to a recent one into its dedup entry ([`STOP`]), or
/// remembers this one and goes on. The key is built in place in the scratch header.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_dedup() -> i64 {
    let Ok(w) = work() else {
        return NO_MAP;
    };
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return NO_MAP;
    };
    // SAFETY: the per-CPU scratch value, ours for the duration of this program.
    let key = unsafe { &mut (*scratch).header.key };
    // Without a resolvable base, the (process, dirfd) pair stands in for the directory.
    let tgid_hi = (w.pid_tgid >> 32) << 32;
    key.base_id = if w.relative & 1 == 0 {
        0
    } else if w.found & 1 != 0 {
        w.base1_dentry
    } else {
        tgid_hi | (w.dirfd as u32 as u64)
    };
    key.base2_id = if w.relative & 2 == 0 {
        0
    } else if w.found & 2 != 0 {
        w.base2_dentry
    } else {
        tgid_hi | (w.dirfd2 as u32 as u64)
    };
    // SAFETY: helper without arguments.
    key.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    key.path_hash = w.path_hash;
    key.path2_hash = w.path2_hash;
    key.syscall = w.nr as u32;
    key.flags = w.key_flags as u32;
    key.errno = if w.ret < 0 { (-w.ret) as u32 } else { 0 };
    key.path_len = w.p1_len as u32;
    let key: &DedupKey = key;
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    w.now = now;
    if let Some(seen) = SEEN_WRITES.get_ptr_mut(key) {
        // SAFETY: map value pointer. The BPF target has no fetch-add in stable core, so two CPUs
        // hitting the same key at the same instant may fold into one: the count is a lower bound.
        unsafe {
            (*seen).hits += 1;
            (*seen).last_ns = now;
        }
        count(Counter::Deduplicated);
        return STOP;
    }
    let fresh = DedupValue {
        hits: 0,
        last_ns: now,
    };
    let _ = SEEN_WRITES.insert(key, &fresh, 0);
    GO
}

/// Stage 4 with `bpf_loop` walks.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_walks_loop() -> i64 {
    stage_walks::<false>()
}

/// Stage 4 with bounded-loop walks.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_walks_bounded() -> i64 {
    stage_walks::<true>()
}

/// Stage 4: writes the bases found, as paths below the task's root, after the paths (base 1,
/// then base 2); sets the resolution flags and counts path and base errors.
#[inline(always)]
fn stage_walks<const BOUNDED: bool>() -> i64 {
    let Ok(w) = work() else {
        return NO_MAP;
    };
    let mut flags = w.flags as u32;
    let p1_len = (w.p1_len as usize) & (MAX_PATH - 1);
    let mut end = if flags & EV_HAS_PATH2 != 0 {
        ((w.off2 as usize) & PAYLOAD_MASK) + ((w.p2_len as usize) & (MAX_PATH - 1))
    } else {
        p1_len
    };
    let mut base_len = 0usize;
    let mut base2_len = 0usize;
    if w.found != 0 {
        if let Ok(root) = kernel::current_root() {
            // Each base found is written after what precedes it: base 1, then base 2.
            let mut walk_to = |mnt: u64, dentry: u64, resolved: u32, truncated: u32| {
                let start = align8(end);
                let walk = kernel::walk::<BOUNDED>(start, KPath { mnt, dentry }, root);
                flags |= resolved;
                if walk.truncated {
                    flags |= truncated;
                }
                end = walk.end;
                walk.end - start
            };
            if w.found & 1 != 0 {
                base_len = walk_to(
                    w.base1_mnt,
                    w.base1_dentry,
                    EV_BASE_RESOLVED,
                    EV_BASE_TRUNCATED,
                );
            }
            if w.found & 2 != 0 {
                base2_len = walk_to(
                    w.base2_mnt,
                    w.base2_dentry,
                    EV_BASE2_RESOLVED,
                    EV_BASE2_TRUNCATED,
                );
            }
        }
    }
    if w.relative & 1 != 0 && flags & EV_BASE_RESOLVED == 0 {
        flags |= EV_BASE_UNRESOLVED;
    }
    if w.relative & 2 != 0 && flags & EV_BASE2_RESOLVED == 0 {
        flags |= EV_BASE2_UNRESOLVED;
    }
    if flags & (EV_PATH_TRUNCATED | EV_PATH_UNREADABLE | EV_PATH2_TRUNCATED | EV_PATH2_UNREADABLE)
        != 0
    {
        count(Counter::PathErrors);
    }
    if flags & (EV_BASE_TRUNCATED | EV_BASE_UNRESOLVED | EV_BASE2_TRUNCATED | EV_BASE2_UNRESOLVED)
        != 0
    {
        count(Counter::BaseErrors);
    }
    w.flags = u64::from(flags);
    w.end = end as u64;
    w.base_len = base_len as u64;
    w.base2_len = base2_len as u64;
    GO
}

/// Stage 5: fills the header and sends header and payload to the ring buffer.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_emit() -> i64 {
    let Ok(w) = work() else {
        return NO_MAP;
    };
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return NO_MAP;
    };
    // SAFETY: the per-CPU scratch value, ours for the duration of this program.
    let h = unsafe { &mut (*scratch).header };
    h.kind = EventKind::Write as u32;
    h.flags = w.flags as u32;
    h.ret = w.ret;
    h.ktime_ns = w.now;
    h.pid_tgid = w.pid_tgid;
    h.mnt_ns = if kernel::offsets_valid() {
        kernel::current_mnt_ns()
    } else {
        0
    };
    h.raw_flags = w.call_flags;
    h.dirfd = w.dirfd as i32;
    h.dirfd2 = w.dirfd2 as i32;
    h.uid = bpf_get_current_uid_gid() as u32;
    h.op = w.op as u32;
    h.path_len = w.p1_len as u16;
    h.base_len = w.base_len as u16;
    h.path2_len = w.p2_len as u16;
    h.base2_len = w.base2_len as u16;
    // SAFETY: writes at most 16 bytes into the 16-byte comm field.
    unsafe { bpf_get_current_comm(h.comm.as_mut_ptr().cast(), 16) };

    let size = WRITE_EVENT_SIZE + (w.end as usize).min(PAYLOAD_CAP);
    // SAFETY: `size` is within the scratch value (header + payload).
    let bytes = unsafe { core::slice::from_raw_parts(scratch as *const u8, size) };
    let wake = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    match EVENTS.output::<[u8]>(bytes, wake as u64) {
        Ok(()) => count(Counter::Emitted),
        Err(_) => {
            count(Counter::Dropped);
            // Let the next identical call try again rather than folding into a lost record.
            // SAFETY: as above.
            let _ = SEEN_WRITES.remove(unsafe { &(*scratch).header.key });
        }
    }
    GO
}
