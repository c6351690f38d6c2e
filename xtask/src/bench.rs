//! `cargo xtask bench`: set up, build in release, and run the benchmark harness
//! (`tests/src/bin/writepath-bench.rs`), which writes `docs/benchmarks.md`.

use std::process::Command;

use crate::{run_cmd, setup_and_build, workspace_root};

/// Runs the benchmarks; `extra` goes to the harness (`--rounds N`, `--quick`, `--out FILE`).
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    let bin = setup_and_build(true, &["writepath", "writepath-tests"])?;
    run_cmd(
        Command::new(bin.join("writepath-bench"))
            .current_dir(workspace_root())
            .env("WRITEPATH_BIN", bin.join("writepath"))
            .args(extra),
    )
}
