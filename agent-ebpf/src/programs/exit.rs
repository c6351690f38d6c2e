//! `sys_exit_write`: attached to the `sys_exit_*` tracepoint of every watched syscall.
//!
//! Consumes the arguments the enter program saved, reads the path(s) now that they are paged
//! in, keeps the syscall's result, folds repeats into the dedup LRU, resolves the base
//! directory of relative paths, and emits one record.

use agent_common::{
    syscalls::{
        AF_UNIX, ARGS_BIND, ARGS_CREAT, ARGS_NULLABLE_PATH, ARGS_OPEN, ARGS_OPENAT2, ARGS_SYMLINK,
        ARGS_UNLINKAT, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, INTENT_BITS, MAX_SYSCALL, NO_ARG,
        SPECS, UNIX_PATH_MAX,
    },
    Counter, DedupKey, DedupValue, EventKind, Op, EV_BASE2_RESOLVED, EV_BASE2_TRUNCATED,
    EV_BASE2_UNRESOLVED, EV_BASE_RESOLVED, EV_BASE_TRUNCATED, EV_BASE_UNRESOLVED, EV_HAS_PATH2,
    EV_PATH2_TRUNCATED, EV_PATH2_UNREADABLE, EV_PATH_TRUNCATED, EV_PATH_UNREADABLE, MAX_PATH,
    PAYLOAD_CAP, WRITE_EVENT_SIZE,
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
    kernel::{self, KPath},
    maps::{count, EVENTS, PENDING, SCRATCH, SEEN_WRITES},
};

/// Offset of `ret` in a `sys_exit_*` record.
const RET_OFFSET: usize = 16;
/// Wake the reader only when this much is waiting; otherwise it drains on its timer. One
/// wakeup per record would cost more than the record.
const WAKEUP_BYTES: u64 = 1 << 20;

#[tracepoint]
pub fn sys_exit_write(ctx: TracePointContext) -> u32 {
    let _ = try_sys_exit_write(&ctx);
    0
}

/// One path argument as the spec describes it.
struct PathArg {
    ptr: u64,
    dirfd: i32,
    /// Maximum bytes to copy, with the NUL.
    max: usize,
}

/// `sys_exit_regs`: the exit-only design. Attached to the `sys_exit_*` tracepoints alone (no
/// enter program, no in-flight map): the arguments are read from the registers the task saved
/// on syscall entry, which still hold them at exit, and the filter runs here.
#[tracepoint]
pub fn sys_exit_regs(ctx: TracePointContext) -> u32 {
    let _ = try_sys_exit_regs(&ctx);
    0
}

/// Offsets of the argument registers in x86_64 `struct pt_regs` (di, si, dx, r10, r8, r9: the
/// syscall ABI's argument order). The layout is the user-visible ptrace one.
const PT_REGS_ARGS: [usize; 6] = [112, 104, 96, 56, 72, 64];

/// The six syscall arguments, from the registers the task saved on entry.
#[inline(always)]
fn read_saved_args() -> Result<[u64; 6], i64> {
    // SAFETY: helpers on the current task. The result is a BTF-typed `struct pt_regs *`: the
    // verifier checks each load below against the kernel's BTF and turns it into a
    // fault-tolerant load, cheaper than a probe-read helper call.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8;
    // SAFETY: offsets of the argument registers inside `struct pt_regs`.
    let at = |off: usize| unsafe { core::ptr::read_volatile(regs.add(off).cast::<u64>()) };
    Ok([
        at(PT_REGS_ARGS[0]),
        at(PT_REGS_ARGS[1]),
        at(PT_REGS_ARGS[2]),
        at(PT_REGS_ARGS[3]),
        at(PT_REGS_ARGS[4]),
        at(PT_REGS_ARGS[5]),
    ])
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

fn try_sys_exit_regs(ctx: &TracePointContext) -> Result<(), i64> {
    let nr = syscall_nr(ctx);
    let spec = SPECS[(nr as usize) & (MAX_SYSCALL - 1)];
    if spec.op == Op::None as u8 {
        return Ok(());
    }
    let Some((args, flags)) = admit(&spec, read_saved_args)? else {
        return Ok(());
    };
    let ret = syscall_ret(ctx);
    let arg = |i: u8| pick(&args, i);
    let dirfd_of = |i: u8| if i == NO_ARG { AT_FDCWD } else { arg(i) as i32 };
    let call = Call {
        nr,
        ret,
        flags,
        path_ptr: arg(spec.path),
        path2_ptr: arg(spec.path2),
        first_dirfd: dirfd_of(spec.dirfd),
        second_dirfd: dirfd_of(spec.dirfd2),
    };
    complete(&call, bpf_get_current_pid_tgid())
}

/// A finished call of a watched syscall, however its arguments were obtained.
struct Call {
    nr: i32,
    ret: i64,
    flags: u64,
    path_ptr: u64,
    path2_ptr: u64,
    first_dirfd: i32,
    second_dirfd: i32,
}

fn try_sys_exit_write(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(pending) = PENDING.get_ptr(&pid_tgid) else {
        return Ok(());
    };
    let nr = syscall_nr(ctx);
    let ret = syscall_ret(ctx);
    let spec = SPECS[(nr as usize) & (MAX_SYSCALL - 1)];
    // Read the saved call field by field (a struct copy becomes a byte-loop memcpy the
    // verifier has to walk on every path).
    // SAFETY: map value pointer, valid until the entry is removed below.
    let arg = |i: u8| -> u64 {
        match i {
            0..=5 => unsafe { core::ptr::read_volatile(&(*pending).args[i as usize]) },
            _ => 0,
        }
    };
    let call_nr = unsafe { core::ptr::read_volatile(&(*pending).nr) };
    let dirfd_of = |i: u8| if i == NO_ARG { AT_FDCWD } else { arg(i) as i32 };
    let call = Call {
        nr,
        ret,
        flags: unsafe { core::ptr::read_volatile(&(*pending).flags) },
        path_ptr: arg(spec.path),
        path2_ptr: arg(spec.path2),
        first_dirfd: dirfd_of(spec.dirfd),
        second_dirfd: dirfd_of(spec.dirfd2),
    };
    let _ = PENDING.remove(&pid_tgid);
    if nr as u32 != call_nr {
        // A stale entry whose exit we never saw.
        count(Counter::PendingMissing);
        return Ok(());
    }
    complete(&call, pid_tgid)
}

/// Reads the paths, dedups, resolves relative bases and emits the record of one call.
#[inline(always)]
fn complete(call: &Call, pid_tgid: u64) -> Result<(), i64> {
    let (nr, ret, call_flags) = (call.nr, call.ret, call.flags);
    let spec = SPECS[(nr as usize) & (MAX_SYSCALL - 1)];
    let (path_ptr, path2_ptr, first_dirfd, second_dirfd) = (
        call.path_ptr,
        call.path2_ptr,
        call.first_dirfd,
        call.second_dirfd,
    );

    let mut op = spec.op;
    let key_flags = match spec.args {
        ARGS_OPEN | ARGS_OPENAT2 | ARGS_CREAT => call_flags & INTENT_BITS,
        _ => call_flags & (AT_REMOVEDIR | AT_EMPTY_PATH),
    };
    if spec.args == ARGS_UNLINKAT && call_flags & AT_REMOVEDIR != 0 {
        op = Op::Rmdir as u8;
    }

    let mut first = PathArg {
        ptr: path_ptr,
        dirfd: first_dirfd,
        max: MAX_PATH,
    };
    if spec.args == ARGS_BIND {
        // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
        // SAFETY: a user pointer read with the checked helper.
        let family: u16 = unsafe { bpf_probe_read_user(first.ptr as *const u16) }.unwrap_or(0);
        let lead: u8 = unsafe { bpf_probe_read_user((first.ptr + 2) as *const u8) }.unwrap_or(0);
        if family != AF_UNIX || lead == 0 {
            // Not a unix socket, or an abstract one (no filesystem name).
            count(Counter::NotAPath);
            return Ok(());
        }
        first.ptr += 2;
        first.max = UNIX_PATH_MAX + 1;
    }
    if spec.args == ARGS_NULLABLE_PATH && first.ptr == 0 {
        // utimensat(fd, NULL, …): the fd itself, opened earlier with its own record.
        count(Counter::NotAPath);
        return Ok(());
    }

    let scratch = SCRATCH.get_ptr_mut(0).ok_or(0i64)?;
    // SAFETY: the per-CPU scratch value, ours for the duration of this program.
    let buf = unsafe { &mut *scratch };
    let payload = buf.payload.as_mut_ptr();
    let mut flags = 0u32;

    // First path at offset 0.
    let p1 = copy_user_str(payload, 0, first.ptr, first.max);
    if p1.unreadable {
        flags |= EV_PATH_UNREADABLE;
    }
    if p1.truncated {
        flags |= EV_PATH_TRUNCATED;
    }
    let path_hash = hash(0, p1.len);
    // SAFETY: offset 0 is inside the payload.
    let relative1 = p1.len == 0 || unsafe { *payload } != b'/';

    // Second path (rename/link source, symlink content) after it.
    let mut off2 = align8(p1.len);
    let mut p2_len = 0usize;
    let mut path2_hash = 0u64;
    let mut relative2 = false;
    let mut dirfd2 = AT_FDCWD;
    if spec.path2 != NO_ARG {
        flags |= EV_HAS_PATH2;
        let p2 = copy_user_str(payload, off2, path2_ptr, MAX_PATH);
        if p2.unreadable {
            flags |= EV_PATH2_UNREADABLE;
        }
        if p2.truncated {
            flags |= EV_PATH2_TRUNCATED;
        }
        p2_len = p2.len;
        path2_hash = hash(off2, p2_len);
        // A symlink's content is not resolved: it is kept as written.
        if spec.args != ARGS_SYMLINK {
            // SAFETY: masked offset inside the payload.
            let lead = unsafe { *payload.add(off2 & agent_common::PAYLOAD_MASK) };
            relative2 = p2_len == 0 || lead != b'/';
            dirfd2 = second_dirfd;
        }
    }

    // The offsets are only read whole for a relative path (most paths are absolute).
    let resolve = kernel::offsets_valid();
    let o = if (relative1 || relative2) && resolve {
        kernel::offsets()
    } else {
        agent_common::offsets::KernelOffsets::default()
    };
    // Plain values with explicit "found" flags rather than Options: LLVM may otherwise read
    // the payload of a None on a path the verifier then rejects as uninitialized.
    let (found1, base1) = lookup_base(relative1 && resolve, first.dirfd, &o);
    let (found2, base2) = lookup_base(relative2 && resolve, dirfd2, &o);
    // Without a resolvable base, the (process, dirfd) pair stands in for the directory.
    let tgid_hi = (pid_tgid >> 32) << 32;
    let base_id = if !relative1 {
        0
    } else if found1 {
        base1.dentry
    } else {
        tgid_hi | (first.dirfd as u32 as u64)
    };
    let base2_id = if !relative2 {
        0
    } else if found2 {
        base2.dentry
    } else {
        tgid_hi | (dirfd2 as u32 as u64)
    };

    // The key is built in place in the scratch header and used from there (no copies).
    let key = &mut buf.header.key;
    // SAFETY: helper without arguments.
    key.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    key.base_id = base_id;
    key.base2_id = base2_id;
    key.path_hash = path_hash;
    key.path2_hash = path2_hash;
    key.syscall = nr as u32;
    key.flags = key_flags as u32;
    key.errno = if ret < 0 { (-ret) as u32 } else { 0 };
    key.path_len = p1.len as u32;
    let key: &DedupKey = key;
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(seen) = SEEN_WRITES.get_ptr_mut(key) {
        // SAFETY: map value pointer. The BPF target has no fetch-add in stable core, so two CPUs
        // hitting the same key at the same instant may fold into one: the count is a lower bound.
        unsafe {
            (*seen).hits += 1;
            (*seen).last_ns = now;
        }
        count(Counter::Deduplicated);
        return Ok(());
    }
    let fresh = DedupValue {
        hits: 0,
        last_ns: now,
    };
    let _ = SEEN_WRITES.insert(key, &fresh, 0);

    // Bases after the paths: base1 after path2, then base2.
    let mut end = if spec.path2 != NO_ARG {
        off2 + p2_len
    } else {
        p1.len
    };
    let mut base_len = 0usize;
    let mut base2_len = 0usize;
    if found1 || found2 {
        let (root_found, root) = match kernel::current_root(&o) {
            Ok(r) => (true, r),
            Err(_) => (false, KPath::ZERO),
        };
        if found1 && root_found {
            let start = align8(end);
            let w = kernel::walk(start, base1, root, &o);
            flags |= EV_BASE_RESOLVED;
            if w.truncated {
                flags |= EV_BASE_TRUNCATED;
            }
            base_len = w.end - start;
            end = w.end;
        }
        if found2 && root_found {
            let start = align8(end);
            let w = kernel::walk(start, base2, root, &o);
            flags |= EV_BASE2_RESOLVED;
            if w.truncated {
                flags |= EV_BASE2_TRUNCATED;
            }
            base2_len = w.end - start;
            end = w.end;
        }
    }
    if relative1 && flags & EV_BASE_RESOLVED == 0 {
        flags |= EV_BASE_UNRESOLVED;
    }
    if relative2 && flags & EV_BASE2_RESOLVED == 0 {
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
    off2 = off2.min(PAYLOAD_CAP);

    let h = &mut buf.header;
    h.kind = EventKind::Write as u32;
    h.flags = flags;
    h.ret = ret;
    h.ktime_ns = now;
    h.pid_tgid = pid_tgid;
    // Emitting is the rare path: read the offsets whole here.
    h.mnt_ns = if resolve {
        kernel::current_mnt_ns(&kernel::offsets())
    } else {
        0
    };
    h.raw_flags = call_flags;
    h.dirfd = first.dirfd;
    h.dirfd2 = dirfd2;
    h.uid = bpf_get_current_uid_gid() as u32;
    h.op = op as u32;
    h.path_len = p1.len as u16;
    h.base_len = base_len as u16;
    h.path2_len = p2_len as u16;
    h.base2_len = base2_len as u16;
    // SAFETY: writes at most 16 bytes into the 16-byte comm field.
    unsafe { bpf_get_current_comm(h.comm.as_mut_ptr().cast(), 16) };
    let _ = off2;

    let size = WRITE_EVENT_SIZE + end.min(PAYLOAD_CAP);
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
            let _ = SEEN_WRITES.remove(&buf.header.key);
        }
    }
    Ok(())
}

/// The base directory of a relative path, when `wanted` and resolvable.
#[inline(always)]
fn lookup_base(
    wanted: bool,
    dirfd: i32,
    o: &agent_common::offsets::KernelOffsets,
) -> (bool, KPath) {
    if !wanted {
        return (false, KPath::ZERO);
    }
    match kernel::base_dir(dirfd, o) {
        Ok(b) => (true, b),
        Err(_) => (false, KPath::ZERO),
    }
}
