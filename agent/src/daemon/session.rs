//! One agent run's recording state and what a tick does: snapshot the recorder, attribute,
//! retire containers that are gone, persist, and (at the publish interval) publish.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::identity::{Attributor, Outcome};
use super::metrics::Metrics;
use super::state::{self, State};
use crate::capture::events::EventStream;
use crate::cluster::{crd, publish::PublishQueue};
use crate::record::Recorder;
use crate::report::{CgroupRef, Recording, Report, Target, WorkloadRef};

/// How long shutdown waits for a last publication.
const SHUTDOWN_PUBLISH: std::time::Duration = std::time::Duration::from_secs(5);

/// The state of one run of the agent.
pub struct Session {
    /// This run's live targets.
    pub recorder: Recorder,
    /// Identities of targets.
    pub attributor: Attributor,
    /// The API side, on a task of its own (a stalled API never holds up the recording loop).
    pub publish: PublishQueue,
    /// The state directory.
    pub state: State,
    /// Earlier runs' targets.
    pub history: Vec<Target>,
    /// This run's targets whose cgroup is gone, taken out of the recorder.
    pub retired: Vec<Target>,
    /// cgroups found gone at the last tick.
    pub gone: HashSet<u64>,
    /// Container cgroups that ran before the agent started.
    pub preexisting: HashSet<u64>,
    /// The cgroup2 mount.
    pub root: PathBuf,
    /// This node.
    pub node: String,
    /// Shared metrics.
    pub metrics: Arc<Metrics>,
    /// The recording circumstances (`finished_at` set at each snapshot).
    pub recording: Recording,
}

impl Session {
    /// One tick: snapshot, attribute, retire, persist; publish when `publish`.
    pub async fn tick(&mut self, events: &EventStream, publish: bool) {
        let mut ignored = Vec::new();
        let mut current = self.observe(events, &mut ignored).await;
        self.retire(&mut current, &ignored);
        current.targets =
            state::merge_targets(self.retired.clone(), std::mem::take(&mut current.targets));
        if let Err(e) = self.state.save_run(&current.targets) {
            tracing::error!(error = %e, "failed to save state");
        }
        self.reattribute().await;
        if publish {
            self.offer(&current);
        }
    }

    /// The last save and publication.
    pub async fn shutdown(mut self, events: &EventStream) -> super::Result<()> {
        let mut current = self.observe(events, &mut Vec::new()).await;
        current.targets = state::merge_targets(
            std::mem::take(&mut self.retired),
            std::mem::take(&mut current.targets),
        );
        self.state.save_run(&current.targets)?;
        self.offer(&current);
        self.publish.finish(SHUTDOWN_PUBLISH).await;
        Ok(())
    }

    /// This run's live targets, attributed. Out-of-scope and non-container cgroups are left out
    /// and listed in `ignored`.
    async fn observe(&mut self, events: &EventStream, ignored: &mut Vec<CgroupRef>) -> Report {
        self.recorder.apply_hits(&events.dedup_hits());
        let counters = events.counters().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "failed to read counters");
            Default::default()
        });
        let mut recording = self.recording.clone();
        recording.finished_at = super::now();
        let mut report = self.recorder.snapshot(counters, recording);
        self.metrics.set_counters(&report.counters);
        let mut kept = Vec::new();
        let (mut containers, mut unknown) = (0, 0);
        for mut t in std::mem::take(&mut report.targets) {
            t.partial = self.preexisting.contains(&t.cgroup.id);
            match self.attributor.attribute(&mut t).await {
                Outcome::Excluded => {
                    ignored.push(t.cgroup.clone());
                    continue;
                }
                Outcome::Unknown if t.container.is_none() => {
                    ignored.push(t.cgroup.clone());
                    continue;
                }
                Outcome::Unknown => unknown += 1,
                Outcome::Attributed => {}
            }
            containers += 1;
            kept.push(t);
        }
        self.metrics.set_targets(containers, unknown);
        report.targets = kept;
        report
    }

    /// Moves the targets whose cgroup was already gone at the previous tick (so every record
    /// of theirs has been drained since) out of the recorder into `retired`; notes the newly
    /// gone. Gone `ignored` cgroups are simply forgotten.
    fn retire(&mut self, current: &mut Report, ignored: &[CgroupRef]) {
        let root = self.root.clone();
        let exists = |c: &CgroupRef| cgroup_exists(&root, c);
        let mut live = Vec::with_capacity(current.targets.len());
        let mut still_gone = HashSet::new();
        for c in ignored {
            if exists(c) {
                continue;
            }
            if c.path.is_empty() && !self.gone.contains(&c.id) {
                // Gone before it could be named (not seen being made): not silently.
                tracing::warn!(
                    cgroup_id = c.id,
                    "a cgroup gone before it could be named; its writes cannot be attributed"
                );
            }
            if self.gone.contains(&c.id) {
                self.recorder.remove_target(c.id);
            } else {
                still_gone.insert(c.id);
            }
        }
        for t in std::mem::take(&mut current.targets) {
            if exists(&t.cgroup) {
                live.push(t);
            } else if self.gone.contains(&t.cgroup.id) && t.workload.is_none() {
                // Never matched to a pod in scope (a selector left it out, or the pod was never
                // seen): nothing it wrote can be published.
                self.recorder.remove_target(t.cgroup.id);
                tracing::info!(cgroup = %t.cgroup.path, writes = t.writes.len(), "unattributed container gone; dropped");
            } else if self.gone.contains(&t.cgroup.id) {
                self.recorder.remove_target(t.cgroup.id);
                tracing::debug!(cgroup = %t.cgroup.path, "container gone; retired");
                self.retired = state::compact(state::merge_targets(
                    std::mem::take(&mut self.retired),
                    vec![t],
                ));
            } else {
                still_gone.insert(t.cgroup.id);
                live.push(t);
            }
        }
        self.gone = still_gone;
        current.targets = live;
    }

    /// Gives earlier runs' targets that are still unattributed another chance.
    async fn reattribute(&mut self) {
        let mut out = Vec::with_capacity(self.history.len());
        for mut t in std::mem::take(&mut self.history) {
            if t.workload.is_none() && self.attributor.attribute(&mut t).await == Outcome::Excluded
            {
                continue;
            }
            out.push(t);
        }
        self.history = out;
    }

    /// Queues one object per workload: earlier runs' and this run's targets merged.
    fn offer(&mut self, current: &Report) {
        let merged = state::merge_targets(self.history.clone(), current.targets.clone());
        let mut objects = Vec::new();
        let mut by_workload: BTreeMap<WorkloadRef, Vec<Target>> = BTreeMap::new();
        for t in merged {
            if let Some(w) = t.workload.clone() {
                by_workload.entry(w).or_default().push(t);
            }
        }
        for (workload, targets) in by_workload {
            let targets = per_container(targets);
            let report = Report {
                version: current.version,
                tool: current.tool.clone(),
                recording: current.recording.clone(),
                counters: current.counters.clone(),
                targets,
            };
            objects.push(crd::build(&workload, &self.node, report));
        }
        self.publish.offer(objects);
    }
}

/// One target per container name (and kind) of the workload: every instance of a container
/// (restarts, replicas on this node, CronJob runs) merged, so an object's size follows the
/// pod spec, not the pod churn. The suggestion engine merges the same way.
pub fn per_container(targets: Vec<Target>) -> Vec<Target> {
    let mut by_name: BTreeMap<(String, String), Target> = BTreeMap::new();
    for t in targets {
        let c = t.container.as_ref();
        let key = match c.and_then(|c| c.name.clone()) {
            Some(name) => (name, c.and_then(|c| c.kind.clone()).unwrap_or_default()),
            None => (String::new(), format!("{}:{}", t.cgroup.id, t.cgroup.path)),
        };
        match by_name.get_mut(&key) {
            Some(into) => state::merge_target(into, t),
            None => {
                by_name.insert(key, t);
            }
        }
    }
    by_name.into_values().collect()
}

fn cgroup_exists(root: &Path, c: &CgroupRef) -> bool {
    !c.path.is_empty() && root.join(c.path.trim_start_matches('/')).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ContainerRef, Write};

    fn instance(id: &str, name: &str, path: &str) -> Target {
        Target {
            container: Some(ContainerRef {
                id: id.into(),
                runtime: "containerd".into(),
                name: Some(name.into()),
                kind: Some("container".into()),
            }),
            writes: vec![Write {
                path: path.into(),
                count: 1,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn instances_of_a_container_merge() {
        let mut runs: Vec<Target> = (0..50)
            .map(|i| instance(&format!("id{i}"), "job", "/tmp/out"))
            .collect();
        runs.push(instance("s1", "sidecar", "/run/s.sock"));
        let mut first = instance("p1", "job", "/var/cache/x");
        first.partial = true;
        runs.push(first);
        let merged = per_container(runs);
        assert_eq!(merged.len(), 2);
        let job = merged
            .iter()
            .find(|t| t.container.as_ref().unwrap().name.as_deref() == Some("job"))
            .unwrap();
        assert_eq!(job.writes.len(), 2);
        assert_eq!(
            job.writes
                .iter()
                .find(|w| w.path == "/tmp/out".into())
                .unwrap()
                .count,
            50
        );
        assert!(job.partial);
    }
}
