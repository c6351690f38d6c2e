//! `cargo xtask bench`: set up, build in release, and run the benchmark harness
//! (`tests/src/bin/writepath-bench.rs`), which writes `docs/benchmarks.md`.

use std::process::Command;

use crate::{run_cmd, setup, workspace_root};

/// Runs the benchmarks; `extra` goes to the harness (`--rounds N`, `--quick`, `--out FILE`).
pub fn run(extra: &[String]) -> anyhow::Result<()> {
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
        Command::new(target.join("release/writepath-bench"))
            .current_dir(&root)
            .env("WRITEPATH_BIN", target.join("release/writepath"))
            .args(extra),
    )
}
