//! The two programs: `sys_enter_write` and `sys_exit_write`.
mod enter;
mod exit;
mod paths;
