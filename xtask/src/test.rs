//! `cargo xtask test`: set up, build the binary the privileged tests run, then every test of
//! the workspace (the eBPF crate is built by agent/build.rs, not tested on the host).

use std::process::Command;

use crate::{run_cmd, setup_and_build, workspace_root};

/// Runs the whole suite; `extra` goes to `cargo test` after `--`.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
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
