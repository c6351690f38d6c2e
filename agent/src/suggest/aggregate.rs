//! Aggregation: the targets of one or more reports merged into one [`WriteSet`] per
//! (workload, container).
//!
//! Replicas of a Deployment, runs on several nodes and repeated recordings of one workload all
//! describe the same container image, so their evidence adds up. Outside Kubernetes there is no
//! workload; targets are then grouped by pod, else by container id, else by cgroup path.

use std::collections::{BTreeMap, BTreeSet};

use crate::path::RawPath;
use crate::report::{Counters, DirectoryContent, Mount, Report, Target, WorkloadRef, Write};

/// How many sample names a merged [`DirectoryContent`] keeps.
const MAX_SAMPLES: usize = 5;
/// How many process names a merged [`Write`] keeps.
const MAX_PROCESSES: usize = 8;
/// How many related paths a merged [`Write`] keeps.
const MAX_RELATED: usize = 8;

/// What identifies one container across reports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerKey {
    /// The owning workload, when known.
    pub workload: Option<WorkloadRef>,
    /// Container name in the pod spec, when known.
    pub container: Option<String>,
    /// "container", "init" or "ephemeral".
    pub kind: String,
    /// Without a workload: `pod:NS/NAME`, `container:ID` or `cgroup:PATH`; else empty.
    pub fallback: String,
}

impl ContainerKey {
    /// The key of a report target.
    pub fn of(target: &Target) -> ContainerKey {
        let kind = target
            .container
            .as_ref()
            .and_then(|c| c.kind.clone())
            .unwrap_or_else(|| "container".to_string());
        let container = target.container.as_ref().and_then(|c| c.name.clone());
        let fallback = if target.workload.is_some() {
            String::new()
        } else if let Some(pod) = &target.pod {
            format!("pod:{}/{}", pod.namespace, pod.name)
        } else if let Some(c) = target.container.as_ref().filter(|c| !c.id.is_empty()) {
            format!("container:{}", c.id)
        } else {
            format!("cgroup:{}", target.cgroup.path)
        };
        ContainerKey {
            workload: target.workload.clone(),
            container,
            kind,
            fallback,
        }
    }
}

/// Everything recorded for one container, merged over targets and reports.
#[derive(Clone, Debug, Default)]
pub struct WriteSet {
    /// The owning workload, when known.
    pub workload: Option<WorkloadRef>,
    /// Container name, when known.
    pub container: Option<String>,
    /// "container", "init" or "ephemeral".
    pub kind: String,
    /// Whether any target ran in Kubernetes (a pod or a workload is known).
    pub kubernetes: bool,
    /// The cgroup paths the evidence came from, sorted.
    pub cgroups: BTreeSet<String>,
    /// Whether any target was recorded partially.
    pub partial: bool,
    /// Mount table, by mount point (the first report to name a mount point wins).
    pub mounts: BTreeMap<RawPath, Mount>,
    /// Writes by path.
    pub writes: BTreeMap<RawPath, Write>,
    /// Image content of written-to directories, by path.
    pub directories: BTreeMap<RawPath, DirectoryContent>,
    /// Symbolic links, path to content.
    pub symlinks: BTreeMap<RawPath, RawPath>,
    /// Counters of the reports this container appears in, summed (a report counted once).
    pub counters: Counters,
}

/// Merges every target of every report into one [`WriteSet`] per container, in key order.
pub fn aggregate(reports: &[Report]) -> Vec<WriteSet> {
    let mut sets: BTreeMap<ContainerKey, WriteSet> = BTreeMap::new();
    for report in reports {
        let mut counted: BTreeSet<ContainerKey> = BTreeSet::new();
        for target in &report.targets {
            let key = ContainerKey::of(target);
            let set = sets.entry(key.clone()).or_insert_with(|| WriteSet {
                workload: key.workload.clone(),
                container: key.container.clone(),
                kind: key.kind.clone(),
                ..WriteSet::default()
            });
            set.add(target);
            if counted.insert(key) {
                add_counters(&mut set.counters, &report.counters);
            }
        }
    }
    sets.into_values().collect()
}

impl WriteSet {
    /// Adds one target's evidence.
    pub fn add(&mut self, target: &Target) {
        self.kubernetes |= target.pod.is_some() || target.workload.is_some();
        if !target.cgroup.path.is_empty() {
            self.cgroups.insert(target.cgroup.path.clone());
        }
        self.partial |= target.partial;
        for m in &target.mounts {
            self.mounts
                .entry(m.mount_point.clone())
                .or_insert_with(|| m.clone());
        }
        for w in &target.writes {
            match self.writes.get_mut(&w.path) {
                Some(have) => merge_write(have, w),
                None => {
                    self.writes.insert(w.path.clone(), w.clone());
                }
            }
        }
        for d in &target.directories {
            match self.directories.get_mut(&d.path) {
                Some(have) => merge_directory(have, d),
                None => {
                    self.directories.insert(d.path.clone(), d.clone());
                }
            }
        }
        for s in &target.symlinks {
            self.symlinks
                .entry(s.path.clone())
                .or_insert_with(|| s.target.clone());
        }
    }
}

/// Adds a report's counters.
fn add_counters(into: &mut Counters, c: &Counters) {
    let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
    add(&mut into.seen, c.seen);
    add(&mut into.filtered, c.filtered);
    add(&mut into.deduplicated, c.deduplicated);
    add(&mut into.emitted, c.emitted);
    add(&mut into.dropped, c.dropped);
    add(&mut into.pending_full, c.pending_full);
    add(&mut into.pending_missing, c.pending_missing);
    add(&mut into.path_errors, c.path_errors);
    add(&mut into.base_errors, c.base_errors);
    add(&mut into.not_a_path, c.not_a_path);
    add(&mut into.probe_errors, c.probe_errors);
    add(&mut into.decode_errors, c.decode_errors);
}

/// Adds `w`'s evidence to `into` (same path).
fn merge_write(into: &mut Write, w: &Write) {
    into.ops.extend(w.ops.iter().copied());
    into.ops.sort_unstable();
    into.ops.dedup();
    into.count = into.count.saturating_add(w.count);
    for (result, n) in &w.results {
        let have = into.results.entry(result.clone()).or_insert(0);
        *have = have.saturating_add(*n);
    }
    if into.first_seen.is_empty()
        || (!w.first_seen.is_empty() && time_key(&w.first_seen) < time_key(&into.first_seen))
    {
        into.first_seen.clone_from(&w.first_seen);
    }
    if time_key(&w.last_seen) > time_key(&into.last_seen) {
        into.last_seen.clone_from(&w.last_seen);
    }
    if into.mount.is_none() {
        into.mount.clone_from(&w.mount);
    }
    union_into(&mut into.related, &w.related, MAX_RELATED);
    union_into(&mut into.processes, &w.processes, MAX_PROCESSES);
    union_into(&mut into.issues, &w.issues, usize::MAX);
    into.size = match (into.size, w.size) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// A sort key for RFC 3339 UTC times that orders `10:00:00Z` before `10:00:00.5Z` (plain
/// string order does not): the fraction is padded to nanoseconds. Other forms sort as text.
pub fn time_key(t: &str) -> String {
    match t.strip_suffix('Z') {
        Some(base) => {
            let (secs, frac) = base.split_once('.').unwrap_or((base, ""));
            format!("{secs}.{frac:0<9}Z")
        }
        None => t.to_string(),
    }
}

/// Adds `d`'s evidence to `into` (same directory). The image is the same everywhere, so a
/// directory one recording saw in the image existed.
fn merge_directory(into: &mut DirectoryContent, d: &DirectoryContent) {
    into.existed |= d.existed;
    into.image_entries = into.image_entries.max(d.image_entries);
    union_into(&mut into.sample, &d.sample, MAX_SAMPLES);
}

/// Appends the items of `more` that `into` lacks, keeping at most `max`, sorted.
fn union_into<T: Ord + Clone>(into: &mut Vec<T>, more: &[T], max: usize) {
    into.extend(more.iter().cloned());
    into.sort();
    into.dedup();
    into.truncate(max);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ContainerRef, OpName, PodRef, REPORT_VERSION};

    fn target(workload: Option<&str>, pod: &str, path: &str, count: u64) -> Target {
        let mut w = Write {
            path: RawPath::from(path),
            ops: vec![OpName::Create],
            count,
            ..Default::default()
        };
        w.results.insert("ok".into(), count);
        w.first_seen = format!("2026-11-27T10:00:0{count}Z");
        w.last_seen = w.first_seen.clone();
        Target {
            workload: workload.map(|n| WorkloadRef {
                kind: "Deployment".into(),
                namespace: "default".into(),
                name: n.into(),
            }),
            pod: Some(PodRef {
                namespace: "default".into(),
                name: pod.into(),
                uid: pod.into(),
            }),
            container: Some(ContainerRef {
                id: pod.into(),
                runtime: "containerd".into(),
                name: Some("app".into()),
                kind: None,
            }),
            writes: vec![w],
            ..Default::default()
        }
    }

    fn report(targets: Vec<Target>) -> Report {
        Report {
            version: REPORT_VERSION,
            tool: Default::default(),
            recording: Default::default(),
            counters: Default::default(),
            targets,
        }
    }

    #[test]
    fn replicas_of_one_workload_merge() {
        let a = report(vec![target(Some("web"), "web-1", "/tmp/a", 1)]);
        let b = report(vec![
            target(Some("web"), "web-2", "/tmp/a", 2),
            target(Some("web"), "web-2", "/tmp/b", 3),
        ]);
        let sets = aggregate(&[a, b]);
        assert_eq!(sets.len(), 1);
        let a = &sets[0].writes[&RawPath::from("/tmp/a")];
        assert_eq!(a.count, 3);
        assert_eq!(a.results["ok"], 3);
        assert_eq!(a.first_seen, "2026-11-27T10:00:01Z");
        assert_eq!(a.last_seen, "2026-11-27T10:00:02Z");
        assert_eq!(sets[0].writes.len(), 2);
    }

    #[test]
    fn different_workloads_and_bare_pods_stay_apart() {
        let r = report(vec![
            target(Some("web"), "web-1", "/tmp/a", 1),
            target(Some("api"), "api-1", "/tmp/a", 1),
            target(None, "debug", "/tmp/a", 1),
        ]);
        let sets = aggregate(&[r]);
        assert_eq!(sets.len(), 3);
        assert!(sets.iter().any(|s| s.workload.is_none()));
    }

    #[test]
    fn times_order_with_and_without_fractions() {
        assert!(time_key("2026-11-27T10:00:00Z") < time_key("2026-11-27T10:00:00.5Z"));
        assert!(time_key("2026-11-27T10:00:00.25Z") < time_key("2026-11-27T10:00:00.3Z"));
        assert!(time_key("2026-11-27T09:59:59.999Z") < time_key("2026-11-27T10:00:00Z"));
    }

    #[test]
    fn directories_merge_existence_and_samples() {
        let mut a = DirectoryContent {
            path: RawPath::from("/d"),
            existed: false,
            image_entries: 0,
            sample: vec![],
        };
        let b = DirectoryContent {
            path: RawPath::from("/d"),
            existed: true,
            image_entries: 2,
            sample: vec![RawPath::from("x"), RawPath::from("y")],
        };
        merge_directory(&mut a, &b);
        assert!(a.existed);
        assert_eq!(a.image_entries, 2);
        assert_eq!(a.sample.len(), 2);
    }
}
