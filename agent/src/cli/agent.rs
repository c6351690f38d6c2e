//! `writepath agent`: the DaemonSet daemon. Flags take their values from `WRITEPATH_*`
//! environment variables too (the DaemonSet sets them), and are checked into a
//! [`crate::daemon::Config`] before anything starts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::daemon::{self, config::Raw, Config};

/// Arguments of `writepath agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// This node's name (the DaemonSet passes `spec.nodeName` through the downward API).
    #[arg(long, env = "WRITEPATH_NODE_NAME", value_name = "NODE")]
    pub node_name: Option<String>,
    /// Where observations are persisted across restarts.
    #[arg(
        long,
        env = "WRITEPATH_STATE_DIR",
        default_value = "/var/lib/writepath",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// Only record pods of these namespaces (repeat or comma-separate; default: all).
    #[arg(
        short = 'n',
        long = "namespace",
        env = "WRITEPATH_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub namespaces: Vec<String>,
    /// Never record pods of these namespaces.
    #[arg(
        long = "exclude-namespace",
        env = "WRITEPATH_EXCLUDE_NAMESPACES",
        value_delimiter = ',',
        default_value = "kube-system",
        value_name = "NS"
    )]
    pub exclude_namespaces: Vec<String>,
    /// Only record pods matching this label selector (e.g. `app=web,tier!=db`).
    #[arg(short = 'l', long, env = "WRITEPATH_SELECTOR", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Shortest time between two publications of a workload's report (e.g. 30s, 5m).
    #[arg(long, env = "WRITEPATH_PUBLISH_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration, value_name = "D")]
    pub publish_interval: Duration,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(
        long,
        env = "WRITEPATH_METRICS_ADDRESS",
        default_value = "0.0.0.0:9477",
        value_name = "HOST:PORT"
    )]
    pub metrics_address: String,
    /// kubelet's pod cgroup, absolute or below the cgroup2 mount (default: the first of
    /// kubepods.slice, kubepods, kubelet.slice/kubelet-kubepods.slice, kubelet/kubepods).
    #[arg(long, env = "WRITEPATH_KUBEPODS_CGROUP", value_name = "DIR")]
    pub kubepods_cgroup: Option<PathBuf>,
    /// Distinct paths kept per container before new ones collapse into their directory.
    #[arg(long, env = "WRITEPATH_PATH_BUDGET", default_value_t = crate::record::DEFAULT_PATH_BUDGET, value_name = "N")]
    pub path_budget: usize,
    /// Capture design: auto (the best this node's kernel loads), fexit, exit-only, pair or
    /// compat (docs/kernels.md).
    #[arg(long, value_enum, default_value_t = crate::capture::loader::Hook::default(), env = "WRITEPATH_HOOK")]
    pub hook: crate::capture::loader::Hook,
}

/// Runs `writepath agent`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::resolve(Raw {
        node_name: args.node_name,
        state_dir: args.state_dir,
        namespaces: args.namespaces,
        exclude_namespaces: args.exclude_namespaces,
        selector: args.selector,
        publish_interval: args.publish_interval,
        metrics_address: args.metrics_address,
        kubepods_cgroup: args.kubepods_cgroup,
        path_budget: args.path_budget,
        hook: args.hook,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(daemon::run(config))?;
    Ok(ExitCode::SUCCESS)
}
