//! `cargo xtask demo`: set up, build, and record the bundled demo workload (a small service in
//! a real runc container) with `writepath record`, print what it found, the suggestions and the
//! patch for a bundled Deployment, then run the container again with a read-only root and the
//! suggested volumes and print "verified: N volumes, 0 failing writes" (exit 1 if any failed).

use std::process::Command;

use crate::{run_cmd, setup_and_build, workspace_root};

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    let bin = setup_and_build(true, &["writepath", "writepath-tests"])?;
    run_cmd(
        Command::new(bin.join("writepath-demo"))
            .current_dir(workspace_root())
            .env("WRITEPATH_BIN", bin.join("writepath")),
    )
}
