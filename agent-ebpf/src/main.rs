//! writepath's kernel side: the programs of the four capture designs (docs/kernels.md) —
//! trampolines on the syscall functions (`fexit`), `sys_exit_*` tracepoints alone
//! (`exit-only`), or `sys_enter_*` + `sys_exit_*` (`pair`, and `compat` with bounded loops).
//! Each filters by cgroup and write intent, reads the paths after the call with its result,
//! dedups, and emits a record. See `agent-common` for the wire format and the syscall table.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod kernel;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod programs;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The kernel requires a GPL-compatible license for the tracing helpers we call.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
