//! `cargo xtask`: set-up, tests and the demo for writepath. Orchestration only; the eBPF object
//! is built by `agent/build.rs`.

mod bench;
mod cluster;
mod demo;
mod fuzz;
mod guest_bench;
mod image;
mod kernels;
mod setup;
mod test;

use clap::{Parser, Subcommand};

/// writepath's developer tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install (idempotently) everything the build and the tests need.
    Setup,
    /// Set up, build, and run every test (unit, privileged, container), then the end-to-end
    /// tests on a real cluster (`cargo xtask cluster up`), then the capture tests in the kernel
    /// matrix (`cargo xtask kernels`).
    Test {
        /// Only the tests on this host's kernel (skip the real cluster and the kernel matrix).
        #[arg(long)]
        host_only: bool,
        /// Only the real-cluster phase (up, images, tests/tests/real_cluster.rs, down).
        #[arg(long, conflicts_with = "host_only")]
        cluster_only: bool,
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, build, record the bundled demo workload in a real runc container, print the
    /// suggestions and the patch, and verify them under a read-only root.
    Demo,
    /// Set up, build in release, and run the benchmarks (writes docs/benchmarks.md).
    Bench {
        /// Arguments for the harness: `--rounds N`, `--quick`, `--out FILE`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Fuzz every parser of outside input for a bounded time (cargo-fuzz, nightly).
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets to run (default: all).
        targets: Vec<String>,
    },
    /// A real one-node Kubernetes cluster on this machine (etcd, kube-apiserver,
    /// kube-controller-manager, kube-scheduler, kubelet with containerd and runc, kube-proxy,
    /// CNI bridge): `up` builds what is missing, starts it and prints `KUBECONFIG=…` and
    /// `CONTAINERD_ADDRESS=…`; `down` stops it and restores the host.
    Cluster {
        #[arg(value_enum)]
        action: ClusterAction,
        /// For `restart`: the component (etcd, kube-apiserver, kube-controller-manager,
        /// kube-scheduler, containerd, kubelet, kube-proxy).
        component: Option<String>,
    },
    /// Build the agent and demo images (OCI, daemonless) and import them into the cluster.
    Image,
    /// Set up, build, and run the capture tests inside Debian's cloud kernels 5.10, 6.1 and
    /// 6.12 under qemu (software emulation); prints one row per kernel.
    Kernels {
        /// Only these kernels (repeatable; default: all).
        #[arg(long = "kernel", value_name = "VERSION")]
        kernels: Vec<String>,
        /// Seconds a guest may run before it is killed and fails (the slowest guest, 6.1 with
        /// 33 trampoline programs verified under emulation per recording, takes minutes).
        #[arg(long, default_value_t = kernels::DEFAULT_TIMEOUT)]
        timeout: u64,
        /// Run qemu with `-icount shift=0,sleep=off` (a deterministic virtual clock).
        #[arg(long)]
        icount: bool,
        /// Instead of the tests: the capture designs' cost in the trampoline kernels, in guest
        /// instructions (writes its section of docs/benchmarks.md).
        #[arg(long)]
        bench: bool,
        /// Extra arguments for the capture test binary (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ClusterAction {
    Up,
    Down,
    Status,
    /// Stop one component and bring the cluster up again (the tests' outages).
    Restart,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run().map(|_| ()),
        Task::Test {
            host_only,
            cluster_only,
            args,
        } => test::run(host_only, cluster_only, &args),
        Task::Demo => demo::run(),
        Task::Cluster { action, component } => match action {
            ClusterAction::Up => {
                // Only the two lines reach stdout (`eval "$(cargo xtask cluster up)"`): set-up's
                // progress and its children's output (apt-get, go) go to stderr meanwhile.
                let endpoints = with_stdout_on_stderr(cluster::up)?;
                print!("{}", endpoints.lines());
                Ok(())
            }
            ClusterAction::Down => cluster::down(),
            ClusterAction::Restart => cluster::restart(
                component
                    .as_deref()
                    .ok_or_else(|| anyhow::anyhow!("cluster restart needs a component name"))?,
            ),
            ClusterAction::Status => {
                if cluster::status()? {
                    Ok(())
                } else {
                    std::process::exit(1)
                }
            }
        },
        Task::Image => image::run(),
        Task::Bench { args } => bench::run(&args),
        Task::Fuzz { seconds, targets } => fuzz::run(&targets, seconds),
        Task::Kernels {
            bench: true,
            timeout,
            ..
        } => guest_bench::run(timeout),
        Task::Kernels {
            kernels,
            timeout,
            icount,
            args,
            ..
        } => kernels::run(&kernels, timeout, icount, &args),
    }
}

/// Runs `f` with file descriptor 1 pointing at stderr, then puts stdout back.
fn with_stdout_on_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: dup/dup2 on the process's own standard descriptors.
    let saved = unsafe { libc::dup(1) };
    if saved < 0 {
        return f();
    }
    unsafe { libc::dup2(2, 1) };
    let out = f();
    let _ = std::io::stdout().flush();
    // SAFETY: as above; `saved` is ours.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    out
}

/// The workspace root.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Runs a command, failing with its name when it fails.
pub fn run_cmd(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("failed to start {cmd:?}: {e}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed ({status})");
    Ok(())
}

/// Sets up, then builds `packages` (release or debug) with the eBPF toolchain setup found;
/// returns the target profile directory.
pub fn setup_and_build(release: bool, packages: &[&str]) -> anyhow::Result<std::path::PathBuf> {
    let tc = setup::run()?;
    let root = workspace_root();
    let mut cmd = std::process::Command::new("cargo");
    cmd.current_dir(&root)
        .env("AYA_BPF_TOOLCHAIN", &tc.bpf_toolchain)
        .arg("build");
    if release {
        cmd.arg("--release");
    }
    for p in packages {
        cmd.args(["--package", p]);
    }
    run_cmd(&mut cmd)?;
    // Later cargo invocations of this task (the test run) build the eBPF crate with the same
    // toolchain.
    std::env::set_var("AYA_BPF_TOOLCHAIN", &tc.bpf_toolchain);
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
