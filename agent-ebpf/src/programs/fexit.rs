//! The trampoline design: one `fexit` program on each watched syscall's `__x64_sys_*` function.
//!
//! A trampoline runs only for the function it is attached to, so an unrelated syscall pays
//! nothing (the syscall tracepoints put every task on the slow syscall path as soon as one
//! program is attached to any of them). The function's one argument is the `struct pt_regs *`
//! the task saved on entry, a BTF-typed pointer the program reads directly; its return value
//! is the syscall's. Each program is generated for one syscall (its number is a constant), so
//! the filter, `admit`, is the same as the other designs', and the call is finished by the
//! same stages, with bounded loops: trampolines exist from 5.5 and `bpf_loop` only from 5.17,
//! and the bounded stages stay within a few percent of the verifier's limit everywhere
//! (docs/kernels.md), so one set of programs serves every kernel.

use agent_common::syscalls::{AT_FDCWD, NO_ARG, SPECS};
use aya_ebpf::{macros::fexit, programs::FExitContext};

use super::{
    enter::{admit, pick},
    exit::{counted, finish, stash, syscall_args},
};

/// Finishes syscall `NR` at the exit of its `__x64_sys_*` function.
#[inline(always)]
fn on_exit<const NR: usize>(ctx: &FExitContext) -> Result<(), i64> {
    let spec = SPECS[NR];
    let regs: *const u8 = ctx.arg(0);
    let read_args = || Ok(syscall_args(regs));
    let Some((args, flags)) = admit(&spec, read_args)? else {
        return Ok(());
    };
    // The syscall's return value follows its one argument.
    let ret: i64 = ctx.arg(1);
    let arg = |i: u8| pick(&args, i);
    let dirfd_of = |i: u8| if i == NO_ARG { AT_FDCWD } else { arg(i) as i32 };
    stash(
        NR as i32,
        ret,
        flags,
        arg(spec.path),
        arg(spec.path2),
        (dirfd_of(spec.dirfd), dirfd_of(spec.dirfd2)),
    )?;
    finish::<true>()
}

/// One program per watched syscall: `fx_<name>` on `__x64_sys_<name>`. The list is the
/// syscall table's (`agent_common::syscalls::TRACEPOINTS`); a userspace test checks that every
/// entry has its program.
macro_rules! fexit_programs {
    ($($nr:literal $name:ident $func:literal),* $(,)?) => {
        $(
            #[fexit(function = $func)]
            pub fn $name(ctx: FExitContext) -> i32 {
                counted(on_exit::<$nr>(&ctx)) as i32
            }
        )*
    };
}

fexit_programs! {
    2 fx_open "__x64_sys_open",
    49 fx_bind "__x64_sys_bind",
    76 fx_truncate "__x64_sys_truncate",
    82 fx_rename "__x64_sys_rename",
    83 fx_mkdir "__x64_sys_mkdir",
    84 fx_rmdir "__x64_sys_rmdir",
    85 fx_creat "__x64_sys_creat",
    86 fx_link "__x64_sys_link",
    87 fx_unlink "__x64_sys_unlink",
    88 fx_symlink "__x64_sys_symlink",
    90 fx_chmod "__x64_sys_chmod",
    92 fx_chown "__x64_sys_chown",
    94 fx_lchown "__x64_sys_lchown",
    132 fx_utime "__x64_sys_utime",
    133 fx_mknod "__x64_sys_mknod",
    188 fx_setxattr "__x64_sys_setxattr",
    189 fx_lsetxattr "__x64_sys_lsetxattr",
    197 fx_removexattr "__x64_sys_removexattr",
    198 fx_lremovexattr "__x64_sys_lremovexattr",
    235 fx_utimes "__x64_sys_utimes",
    257 fx_openat "__x64_sys_openat",
    258 fx_mkdirat "__x64_sys_mkdirat",
    259 fx_mknodat "__x64_sys_mknodat",
    260 fx_fchownat "__x64_sys_fchownat",
    261 fx_futimesat "__x64_sys_futimesat",
    263 fx_unlinkat "__x64_sys_unlinkat",
    264 fx_renameat "__x64_sys_renameat",
    265 fx_linkat "__x64_sys_linkat",
    266 fx_symlinkat "__x64_sys_symlinkat",
    268 fx_fchmodat "__x64_sys_fchmodat",
    280 fx_utimensat "__x64_sys_utimensat",
    316 fx_renameat2 "__x64_sys_renameat2",
    437 fx_openat2 "__x64_sys_openat2",
    452 fx_fchmodat2 "__x64_sys_fchmodat2",
    463 fx_setxattrat "__x64_sys_setxattrat",
    466 fx_removexattrat "__x64_sys_removexattrat",
}
