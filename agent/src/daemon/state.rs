//! Observations persisted under the state directory, so an agent restart loses nothing seen
//! before it.
//!
//! Each run writes its targets to `run-<id>.json` (atomically, at every publish tick). At
//! start-up the files of earlier runs are merged into `history.json`, which records the run
//! ids it absorbed, before those files are removed: a crash at any point neither loses nor
//! double-counts a run. A file that cannot be parsed is renamed aside (`….corrupt-<time>`)
//! with an error logged, never silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::crd::merge_write;
use crate::report::Target;

/// Version of the state files.
pub const STATE_VERSION: u32 = 1;

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory or a file could not be read or written.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        "state_io"
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One state file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StateFile {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Runs merged into this file (history only).
    #[serde(default)]
    pub absorbed: Vec<String>,
    /// The observations.
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// The state directory of one agent run.
pub struct State {
    dir: PathBuf,
    run_id: String,
    /// Everything earlier runs observed.
    pub history: Vec<Target>,
}

impl State {
    /// Opens `dir` (created if missing) for a new run, merging earlier runs into the history.
    pub fn open(dir: &Path, run_id: &str) -> Result<State> {
        let io = |op, path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { op, path, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let history_path = dir.join("history.json");
        let mut history = read(&history_path).unwrap_or_default();
        let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io("read", dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("run-") && n.ends_with(".json"))
            })
            .collect();
        runs.sort();
        let mut merged_any = false;
        for path in &runs {
            let id = run_id_of(path);
            if history.absorbed.contains(&id) {
                continue;
            }
            if let Some(run) = read(path) {
                history.targets = merge_targets(std::mem::take(&mut history.targets), run.targets);
                history.absorbed.push(id);
                merged_any = true;
            }
        }
        if merged_any {
            history.targets = compact(std::mem::take(&mut history.targets));
            history.version = STATE_VERSION;
            write(&history_path, &history)?;
        }
        for path in &runs {
            if history.absorbed.contains(&run_id_of(path)) {
                std::fs::remove_file(path).map_err(io("remove", path))?;
            }
        }
        tracing::info!(dir = %dir.display(), targets = history.targets.len(), "state loaded");
        Ok(State {
            dir: dir.to_path_buf(),
            run_id: run_id.to_string(),
            history: history.targets,
        })
    }

    /// Persists this run's observations (atomically).
    pub fn save_run(&self, targets: &[Target]) -> Result<()> {
        let file = StateFile {
            version: STATE_VERSION,
            absorbed: Vec::new(),
            targets: targets.to_vec(),
        };
        write(&self.dir.join(format!("run-{}.json", self.run_id)), &file)
    }
}

fn run_id_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("run-"))
        .and_then(|n| n.strip_suffix(".json"))
        .unwrap_or("")
        .to_string()
}

fn write(path: &Path, file: &StateFile) -> Result<()> {
    let err = |source| Error::Io {
        op: "write",
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec(file).map_err(|e| err(e.into()))?;
    crate::fsutil::write_atomic(path, &bytes).map_err(err)
}

/// Reads a state file. A missing file is `None`; a corrupt one is renamed aside, logged as an
/// error, and `None`.
fn read(path: &Path) -> Option<StateFile> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "failed to read state file");
            return None;
        }
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(f) if f.version <= STATE_VERSION => Some(f),
        Ok(f) => {
            tracing::error!(file = %path.display(), version = f.version, "state file from a newer writepath; left in place, not used");
            None
        }
        Err(e) => {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            let aside = path.with_extension(format!("json.corrupt-{stamp}"));
            let moved = std::fs::rename(path, &aside);
            tracing::error!(file = %path.display(), error = %e, moved_to = %aside.display(), moved = moved.is_ok(), "corrupt state file renamed aside");
            None
        }
    }
}

/// What identifies one observed container across runs.
fn target_key(t: &Target) -> (String, String) {
    match t.container.as_ref().filter(|c| !c.id.is_empty()) {
        Some(c) => ("container".into(), c.id.clone()),
        None => (format!("cgroup:{}", t.cgroup.id), t.cgroup.path.clone()),
    }
}

/// Merges targets describing the same container (same container id, else same cgroup):
/// counts add up, operations and results join, identities fill in.
pub fn merge_targets(a: Vec<Target>, b: Vec<Target>) -> Vec<Target> {
    let mut by_key: BTreeMap<(String, String), Target> = BTreeMap::new();
    for t in a.into_iter().chain(b) {
        match by_key.get_mut(&target_key(&t)) {
            None => {
                by_key.insert(target_key(&t), t);
            }
            Some(into) => merge_target(into, t),
        }
    }
    by_key.into_values().collect()
}

/// Merges the instances of one container of one workload (restarts, replicas, CronJob runs)
/// into one target, so the history grows with the workloads' pod specs, not with pod churn.
/// Targets without a workload or a container name are kept as they are.
pub fn compact(targets: Vec<Target>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    let mut index: BTreeMap<(crate::report::WorkloadRef, String, String), usize> = BTreeMap::new();
    for t in targets {
        let key = match (
            &t.workload,
            t.container.as_ref().and_then(|c| c.name.clone()),
        ) {
            (Some(w), Some(name)) => Some((
                w.clone(),
                name,
                t.container
                    .as_ref()
                    .and_then(|c| c.kind.clone())
                    .unwrap_or_default(),
            )),
            _ => None,
        };
        match key.as_ref().and_then(|k| index.get(k)) {
            Some(&i) => merge_target(&mut out[i], t),
            None => {
                if let Some(k) = key {
                    index.insert(k, out.len());
                }
                out.push(t);
            }
        }
    }
    out
}

/// Adds `t`'s evidence to `into` (writes by path, mounts, directories, symlinks; identity
/// filled in where `into` has none).
pub fn merge_target(into: &mut Target, t: Target) {
    into.partial |= t.partial;
    if into.container.is_none() {
        into.container = t.container;
    }
    if into.pod.is_none() {
        into.pod = t.pod;
    }
    if into.workload.is_none() {
        into.workload = t.workload;
    }
    for m in t.mounts {
        if !into.mounts.iter().any(|x| x.mount_point == m.mount_point) {
            into.mounts.push(m);
        }
    }
    let mut writes: BTreeMap<_, _> = std::mem::take(&mut into.writes)
        .into_iter()
        .map(|w| (w.path.clone(), w))
        .collect();
    for w in t.writes {
        match writes.get_mut(&w.path) {
            Some(x) => merge_write(x, w),
            None => {
                writes.insert(w.path.clone(), w);
            }
        }
    }
    into.writes = writes.into_values().collect();
    for d in t.directories {
        if !into.directories.iter().any(|x| x.path == d.path) {
            into.directories.push(d);
        }
    }
    for s in t.symlinks {
        if !into.symlinks.iter().any(|x| x.path == s.path) {
            into.symlinks.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CgroupRef, ContainerRef, Write};

    fn target(id: &str, path: &str, count: u64) -> Target {
        Target {
            cgroup: CgroupRef {
                path: format!("/kubepods/pod/{id}"),
                id: 7,
            },
            container: Some(ContainerRef {
                id: id.into(),
                runtime: "containerd".into(),
                ..Default::default()
            }),
            writes: vec![Write {
                path: path.into(),
                count,
                results: [("ok".to_string(), count)].into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn runs_merge_into_history_once() {
        let dir = tempfile::tempdir().unwrap();
        let s1 = State::open(dir.path(), "1").unwrap();
        assert!(s1.history.is_empty());
        s1.save_run(&[target("a", "/tmp/x", 2)]).unwrap();
        // Killed; a second run starts.
        let s2 = State::open(dir.path(), "2").unwrap();
        assert_eq!(s2.history.len(), 1);
        s2.save_run(&[target("a", "/tmp/x", 3), target("b", "/run/y", 1)])
            .unwrap();
        let s3 = State::open(dir.path(), "3").unwrap();
        let a = s3
            .history
            .iter()
            .find(|t| t.container.as_ref().unwrap().id == "a")
            .unwrap();
        assert_eq!(a.writes[0].count, 5, "counts of both runs add up");
        assert_eq!(a.writes[0].results["ok"], 5);
        assert_eq!(s3.history.len(), 2);
        // Opening again without a new run changes nothing.
        let s4 = State::open(dir.path(), "4").unwrap();
        assert_eq!(s4.history, s3.history);
    }

    #[test]
    fn crash_after_history_write_does_not_double_count() {
        let dir = tempfile::tempdir().unwrap();
        let s1 = State::open(dir.path(), "1").unwrap();
        s1.save_run(&[target("a", "/tmp/x", 2)]).unwrap();
        // Simulate: history written with run 1 absorbed, but run-1.json not yet removed.
        let run = dir.path().join("run-1.json");
        let kept = std::fs::read(&run).unwrap();
        let _ = State::open(dir.path(), "2").unwrap();
        std::fs::write(&run, kept).unwrap();
        let mut h: StateFile =
            serde_json::from_slice(&std::fs::read(dir.path().join("history.json")).unwrap())
                .unwrap();
        h.absorbed = vec!["1".into()];
        std::fs::write(
            dir.path().join("history.json"),
            serde_json::to_vec(&h).unwrap(),
        )
        .unwrap();
        let s3 = State::open(dir.path(), "3").unwrap();
        assert_eq!(s3.history[0].writes[0].count, 2);
        assert!(!run.exists());
    }

    #[test]
    fn history_compacts_instances_of_a_container() {
        let dir = tempfile::tempdir().unwrap();
        let w = crate::report::WorkloadRef {
            kind: "CronJob".into(),
            namespace: "ops".into(),
            name: "backup".into(),
        };
        let runs: Vec<Target> = (0..20)
            .map(|i| {
                let mut t = target(&format!("id{i}"), "/tmp/dump", 1);
                t.workload = Some(w.clone());
                t.container.as_mut().unwrap().name = Some("backup".into());
                t
            })
            .collect();
        State::open(dir.path(), "1")
            .unwrap()
            .save_run(&runs)
            .unwrap();
        let s = State::open(dir.path(), "2").unwrap();
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].writes[0].count, 20);
    }

    #[test]
    fn corrupt_files_are_renamed_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("history.json"), b"{not json").unwrap();
        std::fs::write(dir.path().join("run-9.json"), b"\x00\x01").unwrap();
        let s = State::open(dir.path(), "10").unwrap();
        assert!(s.history.is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.iter().filter(|n| n.contains(".corrupt-")).count(),
            2,
            "{names:?}"
        );
    }
}
