//! The two programs, `sys_enter_write` and `sys_exit_write`, and the benchmark floor.
mod enter;
mod exit;
mod floor;
mod paths;
