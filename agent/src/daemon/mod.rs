//! `writepath agent`, the DaemonSet daemon: records every write under kubelet's pod cgroups,
//! attributes it to container, pod and workload, persists it under the state directory and
//! publishes one `WritePathReport` per workload and node.
//!
//! Tasks: the recording loop (owns the eBPF [`Capture`] and the [`Recorder`]: drains the ring
//! buffer, folds dedup hits, and on every tick snapshots, attributes, persists and publishes),
//! the pod reflector ([`crate::attribution::pods`]) and the metrics/health server
//! ([`metrics`]). SIGINT/SIGTERM persist and publish a last time.

pub mod config;
pub mod identity;
pub mod metrics;
pub mod session;
pub mod state;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::events::EventStream;
use tokio::signal::unix::{signal, SignalKind};

use crate::attribution::{cgroup, pods};
use crate::capture::loader::{cgroup2_root, Capture, WatchedCgroup};
use crate::cluster::publish::{self, Publisher};
use crate::record::cgroup_names::CgroupNames;
use crate::record::Recorder;
use crate::report::Recording;

pub use config::Config;
use identity::Attributor;
use metrics::Metrics;
use session::Session;
use state::State;

/// How often the ring buffer is drained without a wakeup.
const DRAIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest time between two saves of the state (observations since the last save are what a
/// crash can lose).
const PERSIST_MAX: Duration = Duration::from_secs(10);
/// Where kubelet puts pods, below the cgroup2 mount, in the order tried.
const KUBEPODS: &[&str] = &[
    "kubepods.slice",
    "kubepods",
    "kubelet.slice/kubelet-kubepods.slice",
    "kubelet/kubepods",
];

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable kube client configuration (in-cluster or kubeconfig).
    #[error("failed to configure the kubernetes client")]
    Kube(#[source] kube::Error),
    /// Loading or attaching the eBPF programs failed.
    #[error(transparent)]
    Capture(#[from] crate::capture::loader::Error),
    /// No kubelet pod cgroup was found.
    #[error("no kubelet pod cgroup below {root} (tried {tried}); set --kubepods-cgroup")]
    NoKubepods {
        /// The cgroup2 mount.
        root: String,
        /// What was tried.
        tried: String,
    },
    /// The state directory failed.
    #[error(transparent)]
    State(#[from] state::Error),
    /// The metrics server could not start.
    #[error(transparent)]
    Metrics(#[from] metrics::Error),
    /// Polling the ring buffer or installing signal handlers failed.
    #[error("failed to {op}")]
    Io {
        /// What.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_config",
            Error::Capture(e) => e.metric_label(),
            Error::NoKubepods { .. } => "no_kubepods",
            Error::State(e) => e.metric_label(),
            Error::Metrics(e) => e.metric_label(),
            Error::Io { .. } => "io",
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kubelet pod cgroup: `configured`, else the first of [`KUBEPODS`] that exists.
pub fn kubepods_dir(root: &Path, configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(c) = configured {
        return Ok(if c.is_absolute() {
            c.to_path_buf()
        } else {
            root.join(c)
        });
    }
    KUBEPODS
        .iter()
        .map(|k| root.join(k))
        .find(|p| p.join("cgroup.procs").exists())
        .ok_or_else(|| Error::NoKubepods {
            root: root.display().to_string(),
            tried: KUBEPODS.join(", "),
        })
}

/// Container cgroups that exist now below `dir` (their start-up writes were missed).
pub fn running_containers(root: &Path, dir: &Path) -> HashSet<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut found = HashSet::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            let rel = format!("/{}", p.strip_prefix(root).unwrap_or(&p).display());
            if cgroup::parse(&rel).is_some_and(|i| i.container.is_some()) {
                if let Ok(m) = std::fs::metadata(&p) {
                    found.insert(m.ino());
                }
            } else if depth < 6 {
                stack.push((p, depth + 1));
            }
        }
    }
    found
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<()> {
    let client = kube::Client::try_default().await.map_err(Error::Kube)?;
    let metrics = Arc::new(Metrics::default());
    let server = metrics::serve(config.metrics_address, metrics.clone()).await?;
    let server = tokio::spawn(server);

    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
        std::process::id()
    );
    let state = State::open(&config.state_dir, &run_id)?;

    let root = cgroup2_root()?;
    let kubepods = kubepods_dir(&root, config.kubepods_cgroup.as_deref())?;
    let mut capture = match Capture::load_with(config.hook) {
        Ok(c) => c,
        Err(e) => {
            // /readyz says why for the moment before the agent exits 2.
            metrics.set_capture_failed(&e.to_string());
            return Err(e.into());
        }
    };
    let watched = WatchedCgroup::from_dir(&kubepods)?;
    capture.watch(watched.clone())?;
    let preexisting = running_containers(&root, &kubepods);
    let mut events = capture.take_events()?;
    metrics.set_attached(capture.design.name(), &capture.probe.release);
    metrics.beat();
    tracing::info!(
        node = %config.node_name,
        cgroup = %kubepods.display(),
        running = preexisting.len(),
        syscalls = capture.attached.len(),
        design = %capture.design,
        "writepath: recording"
    );

    let (pod_index, pod_task) = pods::watch(
        client.clone(),
        &config.node_name,
        config.selector.as_deref(),
    );
    let pod_task = tokio::spawn(pod_task);
    let mut session = Session {
        recorder: match CgroupNames::watch(&root, &kubepods) {
            Ok(names) => Recorder::new(&root)
                .with_budget(config.path_budget)
                .with_cgroup_names(names),
            Err(e) => {
                tracing::warn!(error = %e, cgroup = %kubepods.display(), "cannot watch cgroups as they are made; containers gone before their first drain will be unnamed");
                Recorder::new(&root).with_budget(config.path_budget)
            }
        },
        attributor: Attributor::new(client.clone(), pod_index.clone(), config.scope.clone()),
        publish: {
            let metrics = metrics.clone();
            publish::spawn(Publisher::new(client), move |f, pending| {
                metrics.add_published(f.published as u64, &f.errors);
                metrics.set_pending(pending as u64);
            })
        },
        history: state.history.clone(),
        state,
        retired: Vec::new(),
        gone: HashSet::new(),
        preexisting,
        root,
        node: config.node_name.clone(),
        metrics: metrics.clone(),
        recording: Recording {
            mode: "agent".into(),
            command: None,
            exit_code: None,
            cgroup: kubepods.display().to_string(),
            started_at: now(),
            finished_at: String::new(),
            host: config.node_name.clone(),
            kernel: capture.probe.release.clone(),
            hook: capture.design.name().into(),
        },
    };

    let io = |op| move |source| Error::Io { op, source };
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("handle SIGINT"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("handle SIGTERM"))?;
    let mut drain_tick = tokio::time::interval(DRAIN_INTERVAL);
    let mut tick = tokio::time::interval(config.publish_interval.min(PERSIST_MAX));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_publish = tokio::time::Instant::now() - config.publish_interval;

    loop {
        tokio::select! {
            ready = events.readable() => match ready.and_then(|()| events.drain(&mut session.recorder)) {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "ring buffer drain failed"),
            },
            _ = drain_tick.tick() => {
                drain(&mut events, &mut session.recorder);
                metrics.beat();
                metrics.set_pods_ready(pod_index.is_ready());
            }
            _ = tick.tick() => {
                drain(&mut events, &mut session.recorder);
                let publish = last_publish.elapsed() >= config.publish_interval;
                if publish {
                    last_publish = tokio::time::Instant::now();
                }
                session.tick(&events, publish).await;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    tracing::info!("writepath: stopping; saving and publishing");
    drain(&mut events, &mut session.recorder);
    let result = session.shutdown(&events).await;
    drop(capture);
    pod_task.abort();
    server.abort();
    result
}

/// Now, RFC 3339 (seconds).
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Drains the ring buffer (folding dedup hits as the recorder needs, so its key table stays
/// bounded); a failure is logged, the next tick tries again.
fn drain(events: &mut EventStream, recorder: &mut Recorder) {
    if let Err(e) = events.drain(recorder) {
        tracing::error!(error = %e, "ring buffer drain failed");
    }
}
