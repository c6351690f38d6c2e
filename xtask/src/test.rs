//! `cargo xtask test`: set up, build the binary the privileged tests run, then every test of
//! the workspace (the eBPF crate is built by agent/build.rs, not tested on the host), then the
//! capture tests in every kernel of the matrix (`cargo xtask kernels`).

use std::process::Command;

use crate::{run_cmd, setup_and_build, workspace_root};

/// Runs the whole suite; `extra` goes to `cargo test` after `--` (and then only the host
/// suite runs). Both parts run even when the first fails.
pub fn run(host_only: bool, extra: &[String]) -> anyhow::Result<()> {
    let host = host_suite(extra);
    if host_only || !extra.is_empty() {
        return host;
    }
    let matrix = crate::kernels::run(&[], crate::kernels::DEFAULT_TIMEOUT, false, &[]);
    match (host, matrix) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(h), Ok(())) => Err(h),
        (Ok(()), Err(m)) => Err(m),
        (Err(h), Err(m)) => Err(h.context(format!("and the kernel matrix failed: {m:#}"))),
    }
}

/// The workspace's tests on this host's kernel.
fn host_suite(extra: &[String]) -> anyhow::Result<()> {
    setup_and_build(false, &["writepath"])?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root()).args([
        "test",
        "--workspace",
        "--exclude",
        "agent-ebpf",
        "--no-fail-fast",
    ]);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    run_cmd(&mut cmd)
}
