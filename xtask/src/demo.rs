//! `cargo xtask demo`: set up, build, and record the bundled demo workload (a small service in
//! a real runc container) with `writepath record`, print what it found, the suggestions and the
//! patch for a bundled Deployment, then run the container again with a read-only root and the
//! suggested volumes and print "verified: N volumes, 0 failing writes" (exit 1 if any failed).

use std::process::Command;

use crate::{run_cmd, setup, workspace_root};

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    let tc = setup::run()?;
    let root = workspace_root();
    run_cmd(
        Command::new("cargo")
            .current_dir(&root)
            .env("AYA_BPF_TOOLCHAIN", &tc.bpf_toolchain)
            .args([
                "build",
                "--release",
                "--package",
                "writepath",
                "--package",
                "writepath-tests",
            ]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    run_cmd(
        Command::new(target.join("release/writepath-demo"))
            .env("WRITEPATH_BIN", target.join("release/writepath")),
    )
}
