//! `sys_enter_write`: attached to the `sys_enter_*` tracepoint of every watched syscall.
//!
//! Cheapest test first: the syscall's spec and write intent (an open without write flags leaves
//! here), then the watched-cgroup check (cached per cgroup), then the arguments are saved for
//! the exit program, which reads the paths once the kernel has paged them in.

use agent_common::{
    names::FEATURE_ANCESTOR_HELPER,
    syscalls::{
        open_has_write_intent, SyscallSpec, ARGS_CREAT, ARGS_OPEN, ARGS_OPENAT2, MAX_SYSCALL,
        NO_ARG, O_CREAT, O_TRUNC, O_WRONLY, SPECS,
    },
    Counter, Op, PendingCall, Verdict,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_probe_read_user,
        generated::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id},
    },
    macros::tracepoint,
    programs::TracePointContext,
};

use crate::maps::{count, CONTROL, LAST_VERDICT, PENDING, VERDICTS, WATCHED};

/// Offset of `__syscall_nr` in a syscall tracepoint record.
pub const NR_OFFSET: usize = 8;
/// Offset of `args[0]` in a `sys_enter_*` record.
const ARGS_OFFSET: usize = 16;
/// cgroup v2 levels checked for a watched ancestor.
const MAX_CGROUP_LEVELS: i32 = 32;

#[tracepoint]
pub fn sys_enter_write(ctx: TracePointContext) -> u32 {
    if try_sys_enter_write(&ctx).is_err() {
        count(Counter::ProbeErrors);
    }
    0
}

fn try_sys_enter_write(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets of the syscall tracepoint format (common header, int nr, args[6]).
    let nr: i32 = unsafe { ctx.read_at(NR_OFFSET) }.map_err(i64::from)?;
    let spec = SPECS[(nr as usize) & (MAX_SYSCALL - 1)];
    if spec.op == Op::None as u8 {
        return Ok(());
    }
    // SAFETY: as above; arguments the syscall does not have read as garbage and are ignored.
    let read_args = || unsafe { ctx.read_at::<[u64; 6]>(ARGS_OFFSET) }.map_err(i64::from);
    let Some((args, flags)) = admit(&spec, read_args)? else {
        return Ok(());
    };
    let call = PendingCall {
        nr: nr as u32,
        _pad: 0,
        flags,
        args,
    };
    if PENDING
        .insert(&bpf_get_current_pid_tgid(), &call, 0)
        .is_err()
    {
        count(Counter::PendingFull);
    }
    Ok(())
}

/// The filter both hook designs share, cheapest test first: the watched-cgroup check (a
/// per-CPU cached verdict), then write intent from the syscall's flags. Every call is counted
/// as seen; one that leaves here is counted as filtered and gives `None`. `read_args` is only
/// called for a call in a watched cgroup (the exit-only design reads registers there).
#[inline(always)]
pub fn admit(
    spec: &SyscallSpec,
    read_args: impl FnOnce() -> Result<[u64; 6], i64>,
) -> Result<Option<([u64; 6], u64)>, i64> {
    count(Counter::Seen);
    if !current_cgroup_watched() {
        count(Counter::Filtered);
        return Ok(None);
    }
    let args = read_args()?;
    let arg = |i: u8| pick(&args, i);
    let flags = match spec.args {
        ARGS_OPEN => arg(spec.flags),
        // `struct open_how` starts with the u64 flags.
        // SAFETY: a user pointer read with the checked helper.
        ARGS_OPENAT2 => {
            unsafe { bpf_probe_read_user(arg(spec.flags) as *const u64) }.map_err(i64::from)?
        }
        ARGS_CREAT => O_CREAT | O_WRONLY | O_TRUNC,
        _ if spec.flags != NO_ARG => arg(spec.flags),
        _ => 0,
    };
    if matches!(spec.args, ARGS_OPEN | ARGS_OPENAT2) && !open_has_write_intent(flags) {
        count(Counter::Filtered);
        return Ok(None);
    }
    Ok(Some((args, flags)))
}

/// Argument `i` of a call (0 for [`agent_common::syscalls::NO_ARG`]). A match, not an index:
/// the verifier refuses variable-offset reads of the stack.
#[inline(always)]
pub fn pick(args: &[u64; 6], i: u8) -> u64 {
    match i {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        5 => args[5],
        _ => 0,
    }
}

/// What the kernel offers (`FEATURE_*` bits), set by userspace from its probe before load. A
/// read-only global: the verifier knows its value and drops the branches it rules out, so a
/// helper this kernel lacks is never seen.
#[unsafe(no_mangle)]
static FEATURES: u64 = 0;

/// The id of the current task's cgroup v2 ancestor at `level` (0 when it is not that deep).
#[inline(always)]
fn ancestor_cgroup_id(level: i32) -> u64 {
    // SAFETY: reading our own global.
    if unsafe { core::ptr::read_volatile(&FEATURES) } & FEATURE_ANCESTOR_HELPER != 0 {
        // SAFETY: helper with a scalar argument.
        unsafe { bpf_get_current_ancestor_cgroup_id(level) }
    } else {
        crate::kernel::ancestor_cgroup_id(level)
    }
}

/// Whether the current task's cgroup, or one of its ancestors, is watched.
#[inline(always)]
fn current_cgroup_watched() -> bool {
    let Some(control) = CONTROL.get(0) else {
        return false;
    };
    let (mask, generation) = (control.level_mask, control.generation);
    if mask == 0 {
        return false;
    }
    // SAFETY: helper without arguments.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    let last = LAST_VERDICT.get_ptr_mut(0);
    if let Some(last) = last {
        // SAFETY: per-CPU map value, ours while this program runs.
        let last = unsafe { &*last };
        if last.cgroup == cgroup && last.verdict.generation == generation {
            return last.verdict.watched_root != 0;
        }
    }
    let remember = |root: u64| {
        if let Some(last) = last {
            // SAFETY: as above.
            unsafe {
                (*last).cgroup = cgroup;
                (*last).verdict.generation = generation;
                (*last).verdict.watched_root = root;
            }
        }
    };
    // SAFETY: plain value read from our own map.
    if let Some(v) = unsafe { VERDICTS.get(&cgroup) } {
        if v.generation == generation {
            let root = v.watched_root;
            remember(root);
            return root != 0;
        }
    }
    // The generation was read before WATCHED: a verdict computed from an older watched set is
    // tagged with the older generation and recomputed on the next call.
    let mut root = 0u64;
    for level in 0..MAX_CGROUP_LEVELS {
        if mask & (1u64 << level) == 0 {
            continue;
        }
        let ancestor = ancestor_cgroup_id(level);
        if ancestor == 0 {
            break;
        }
        // SAFETY: plain value read from our own map.
        if unsafe { WATCHED.get(&ancestor) }.is_some() {
            root = ancestor;
            break;
        }
    }
    remember(root);
    let _ = VERDICTS.insert(
        &cgroup,
        &Verdict {
            generation,
            watched_root: root,
        },
        0,
    );
    root != 0
}
