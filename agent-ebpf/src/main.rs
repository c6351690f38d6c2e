//! writepath's kernel side: one program on every `sys_enter_*` tracepoint of a path-writing
//! syscall (write intent and cgroup filter, then it saves the arguments) and one on every
//! matching `sys_exit_*` (reads the paths once they are paged in, keeps the result, dedups,
//! and emits a record). See `agent-common` for the wire format and the syscall table.
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
