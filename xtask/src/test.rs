//! `cargo xtask test`: set up, build the binary the privileged tests run, then every test of
//! the workspace (the eBPF crate is built by agent/build.rs, not tested on the host), then the
//! capture tests in every kernel of the matrix (`cargo xtask kernels`).
//!
//! Between the two, the real-cluster phase: `cargo xtask cluster up` (unless a cluster is
//! already up), `cargo xtask image`, `tests/tests/real_cluster.rs` against it, then `down` and
//! a check that the host is as it was before `up` (mounts, cgroups, links, iptables, sysctls).

use std::process::Command;

use crate::{run_cmd, setup_and_build, workspace_root};

/// Runs the whole suite; `extra` goes to `cargo test` after `--` (and then only the host
/// suite runs). Both parts run even when the first fails.
pub fn run(host_only: bool, cluster_only: bool, extra: &[String]) -> anyhow::Result<()> {
    if cluster_only {
        return cluster_suite();
    }
    let host = host_suite(extra);
    if host_only || !extra.is_empty() {
        return host;
    }
    let cluster = cluster_suite();
    let matrix = crate::kernels::run(&[], crate::kernels::DEFAULT_TIMEOUT, false, &[]);
    let failed: Vec<String> = [
        ("host suite", host),
        ("real cluster", cluster),
        ("kernel matrix", matrix),
    ]
    .into_iter()
    .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e:#}")))
    .collect();
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}

/// The tests against a real cluster (`tests/tests/real_cluster.rs`), one at a time. A cluster
/// this brings up it also takes down, and then the host must be as it was.
fn cluster_suite() -> anyhow::Result<()> {
    let was_up = crate::cluster::status_quiet();
    let before = if was_up {
        println!("xtask test: using the cluster that is already up (it stays up)");
        None
    } else {
        Some(crate::cluster::HostSnapshot::take()?)
    };
    let result = (|| {
        let endpoints = crate::cluster::up()?;
        crate::image::run()?;
        // The CLI the tests run (`writepath suggest`, `patch`, `policy`), beside the test binary.
        setup_and_build(false, &["writepath"])?;
        run_cmd(
            Command::new("cargo")
                .current_dir(workspace_root())
                .env("KUBECONFIG", &endpoints.kubeconfig)
                .env("CONTAINERD_ADDRESS", &endpoints.containerd_address)
                .env("WRITEPATH_REAL_CLUSTER", "1")
                .env("WRITEPATH_XTASK", std::env::current_exe()?)
                .args([
                    "test",
                    "-p",
                    "writepath-tests",
                    "--test",
                    "real_cluster",
                    "--",
                    "--test-threads=1",
                ]),
        )
    })();
    let Some(before) = before else { return result };
    let down = crate::cluster::down();
    let after = crate::cluster::HostSnapshot::take()?;
    let diff = before.diff(&after);
    result?;
    down?;
    anyhow::ensure!(
        diff.is_empty(),
        "cargo xtask cluster down left the host changed:\n{}",
        diff.join("\n")
    );
    println!("xtask test: cluster down, the host is as it was");
    Ok(())
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
    // The real-cluster tests run in their own phase, with the cluster up.
    cmd.args(["--", "--skip", "real_cluster::"]).args(extra);
    run_cmd(&mut cmd)
}
