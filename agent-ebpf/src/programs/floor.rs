//! `sys_enter_floor` / `sys_exit_floor`: empty programs for the benchmark's floor, attached to
//! exactly the tracepoints the real programs use. Never loaded outside `cargo xtask bench`.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};

#[tracepoint]
pub fn sys_enter_floor(_ctx: TracePointContext) -> u32 {
    0
}

#[tracepoint]
pub fn sys_exit_floor(_ctx: TracePointContext) -> u32 {
    0
}

/// Floor of the third design: one raw `sys_exit` program, which runs on every syscall.
#[aya_ebpf::macros::raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_sys_exit_floor(_ctx: aya_ebpf::programs::RawTracePointContext) -> i32 {
    0
}
