//! Aggregation of decoded writes into a [`Report`]: per target (the writer's cgroup), per
//! distinct path, with operations, counts, results, first/last seen, the mount each path lands
//! on and what the image held in the directories written to.

pub mod cgroup_names;
pub mod mounts;
pub mod resolve;
pub mod session;
pub mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use agent_common::{
    syscalls::{O_APPEND, O_CREAT, O_TMPFILE_BIT, O_TRUNC},
    DedupKey, DedupValue, Op, EV_BASE2_TRUNCATED, EV_BASE2_UNRESOLVED, EV_BASE_TRUNCATED,
    EV_BASE_UNRESOLVED, EV_PATH2_TRUNCATED, EV_PATH_TRUNCATED, EV_PATH_UNREADABLE,
};

use crate::decode::{self, FileWrite};
use crate::path::RawPath;
use crate::report::{CgroupRef, Counters, OpName, Recording, Report, Target, ToolInfo, Write};

/// Distinct paths kept per target before new ones collapse into their directory. Bounds memory
/// under a flood of unique names; every collapse is counted in the report.
pub const DEFAULT_PATH_BUDGET: usize = 100_000;
/// Process names kept per path.
const MAX_PROCESSES: usize = 4;
/// Dedup keys remembered before the session must fold the kernel's hit counts (which forgets
/// keys the kernel's LRU has evicted). Twice the kernel LRU's size: a flood of distinct paths
/// cannot grow this map without bound.
pub const MAX_KEYS: usize = 2 * 65_536;

/// Converts `bpf_ktime_get_ns` (CLOCK_MONOTONIC) to wall-clock time.
#[derive(Clone, Copy)]
pub struct Clock {
    offset_ns: i128,
}

impl Clock {
    /// Samples both clocks now.
    pub fn now() -> Clock {
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
            .unwrap_or(0);
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Clock {
            offset_ns: wall - mono,
        }
    }

    /// RFC 3339 (UTC, microseconds) of a monotonic timestamp.
    pub fn rfc3339(&self, mono_ns: u64) -> String {
        let wall = (mono_ns as i128 + self.offset_ns).max(0) as u64;
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(wall);
        humantime::format_rfc3339_micros(t).to_string()
    }
}

#[derive(Default)]
struct WriteState {
    ops: BTreeSet<OpName>,
    count: u64,
    results: BTreeMap<String, u64>,
    first_ns: u64,
    last_ns: u64,
    related: BTreeSet<RawPath>,
    processes: BTreeSet<String>,
    issues: BTreeSet<String>,
    /// Seen from a process in another mount namespace than the recorder's (a container's).
    from_container: bool,
}

struct TargetState {
    cgroup: CgroupRef,
    writes: HashMap<RawPath, WriteState>,
    mnt_ns: u64,
    mounts: Vec<crate::report::Mount>,
    root: Option<OwnedFd>,
    /// The mount namespace of the process `root` was opened from.
    root_ns: u64,
    /// The first mount namespace other than the recorder's that wrote in this cgroup: the
    /// target is a container, and writes from the host's namespace are its runtime's set-up.
    container_ns: u64,
    /// What each written-to directory held when its first write was recorded, through `root`
    /// (at most [`resolve::MAX_DIRECTORIES`]): the end of a recording may come after the
    /// container and its root are gone.
    listings: HashMap<RawPath, resolve::Listing>,
}

struct KeyState {
    cgroup: u64,
    paths: Vec<RawPath>,
    result: String,
    folded: u64,
}

/// Collects writes into per-target state.
pub struct Recorder {
    clock: Clock,
    cgroup_root: PathBuf,
    targets: BTreeMap<u64, TargetState>,
    keys: HashMap<DedupKey, KeyState>,
    budget: usize,
    decode_errors: u64,
    collapsed: u64,
    runtime_setup: u64,
    mount_tables: mounts::MountTables,
    /// The recorder's own mount namespace (the host's), 0 when unknown.
    host_ns: u64,
    /// Whether a cgroup written in from another mount namespace is a container whose
    /// host-namespace writes are its runtime's (true for `--cgroup` and the agent; false for
    /// `record -- CMD`, whose command may make a namespace of its own after writing).
    containers: bool,
    /// Key count at which [`Self::needs_hits`] asks for a fold.
    fold_at: usize,
    /// Cgroup names learned as the cgroups were made (the agent's), for containers gone before
    /// their first record is drained.
    names: Option<cgroup_names::CgroupNames>,
}

impl Recorder {
    /// A recorder resolving cgroup ids below `cgroup_root` (the cgroup2 mount).
    pub fn new(cgroup_root: &Path) -> Recorder {
        Recorder {
            clock: Clock::now(),
            cgroup_root: cgroup_root.to_path_buf(),
            targets: BTreeMap::new(),
            keys: HashMap::new(),
            budget: DEFAULT_PATH_BUDGET,
            decode_errors: 0,
            collapsed: 0,
            runtime_setup: 0,
            mount_tables: mounts::MountTables::default(),
            host_ns: mounts::mnt_ns_of(std::process::id()).unwrap_or(0),
            containers: true,
            fold_at: MAX_KEYS,
            names: None,
        }
    }

    /// Names cgroups from `names` first (see [`cgroup_names`]), then by walking cgroupfs.
    pub fn with_cgroup_names(mut self, names: cgroup_names::CgroupNames) -> Recorder {
        self.names = Some(names);
        self
    }

    /// Whether cgroups written in from another mount namespace are containers (see
    /// [`Recorder::add`]); the default is true.
    pub fn with_containers(mut self, containers: bool) -> Recorder {
        self.containers = containers;
        self
    }

    /// Sets the per-target path budget.
    pub fn with_budget(mut self, budget: usize) -> Recorder {
        self.budget = budget.max(1);
        self
    }

    /// Registers a cgroup before any write, so targets with no writes still appear.
    pub fn add_target(&mut self, id: u64, dir: &Path) {
        let path = cgroup_rel_path(&self.cgroup_root, dir);
        self.targets.entry(id).or_insert_with(|| TargetState {
            cgroup: CgroupRef { path, id },
            writes: HashMap::new(),
            mnt_ns: 0,
            mounts: Vec::new(),
            root: None,
            root_ns: 0,
            container_ns: 0,
            listings: HashMap::new(),
        });
    }

    /// Decodes and adds one ring-buffer record; malformed records are counted.
    pub fn add_record(&mut self, bytes: &[u8]) {
        match decode::decode(bytes) {
            Ok(w) => self.add(&w),
            Err(e) => {
                self.decode_errors += 1;
                tracing::warn!(error = %e, "undecodable record");
            }
        }
    }

    /// Adds one decoded write. Writes of a container runtime setting up the container (before
    /// the workload runs, on host paths) are counted, not recorded: those of processes named
    /// like runc's init stages, and, once a cgroup has been written in from another mount
    /// namespace (the container's), those made in it from the host's. The container's root
    /// (for what the image held) is opened from a process in its own namespace.
    pub fn add(&mut self, w: &FileWrite) {
        if is_runtime_setup(&w.header.comm) {
            self.runtime_setup += 1;
            return;
        }
        let h = &w.header;
        let cgroup = h.key.cgroup_id;
        let pid = w.pid();
        if !self.targets.contains_key(&cgroup) {
            let path = self
                .names
                .as_ref()
                .and_then(|n| n.get(cgroup))
                .or_else(|| {
                    find_cgroup_dir(&self.cgroup_root, cgroup)
                        .map(|d| cgroup_rel_path(&self.cgroup_root, &d))
                })
                .unwrap_or_default();
            self.targets.insert(
                cgroup,
                TargetState {
                    cgroup: CgroupRef { path, id: cgroup },
                    writes: HashMap::new(),
                    mnt_ns: 0,
                    mounts: Vec::new(),
                    root: None,
                    root_ns: 0,
                    container_ns: 0,
                    listings: HashMap::new(),
                },
            );
        }
        let target = self.targets.get_mut(&cgroup).expect("inserted above");
        let from_container =
            self.containers && h.mnt_ns != 0 && self.host_ns != 0 && h.mnt_ns != self.host_ns;
        if from_container && target.container_ns == 0 {
            // The cgroup is a container's: what was written in it from the host's namespace
            // so far was its runtime setting it up (`runc init` re-executed as `exe`, before
            // `pivot_root`), on the host's paths. Counted with the runtime's, not kept.
            target.container_ns = h.mnt_ns;
            let before = target.writes.len();
            let mut setup = 0;
            target.writes.retain(|_, s| {
                setup += if s.from_container { 0 } else { s.count };
                s.from_container
            });
            if target.writes.len() != before {
                self.runtime_setup += setup;
            }
        }
        if target.container_ns != 0 && !from_container && h.mnt_ns != 0 {
            self.runtime_setup += 1;
            return;
        }
        // The container's view wins over the host's: a root opened from a runtime process still
        // on the host's root is replaced by the first one from the container's namespace.
        let better_root = from_container && target.root_ns != h.mnt_ns;
        if target.root.is_none() || better_root {
            // The writer may be gone already (it exited right after the write): then another
            // process of its cgroup in its namespace, or, for the recorder's own namespace,
            // the recorder's root, shows the same files.
            let root = resolve::open_root(pid).or_else(|| {
                fallback_root(
                    &self.cgroup_root,
                    &target.cgroup.path,
                    h.mnt_ns,
                    self.host_ns,
                )
            });
            if let Some(root) = root {
                target.root = Some(root);
                target.root_ns = h.mnt_ns;
                // Listings through a root that is not the container's are not its image.
                target.listings.clear();
            }
        }
        if target.mounts.is_empty() || (h.mnt_ns != 0 && target.mnt_ns != h.mnt_ns) {
            if let Some(t) = self.mount_tables.table_for(h.mnt_ns, pid) {
                target.mounts = t.clone();
                target.mnt_ns = h.mnt_ns;
            }
        }

        let mut issues = Vec::new();
        if h.flags & EV_PATH_TRUNCATED != 0 {
            issues.push("truncated");
        }
        if h.flags & EV_PATH_UNREADABLE != 0 {
            issues.push("unreadable");
        }
        let path = resolve::resolve(
            &w.path,
            w.base.as_deref(),
            pid,
            h.dirfd,
            h.flags & EV_BASE_UNRESOLVED != 0,
            &mut issues,
        );
        if h.flags & EV_BASE_TRUNCATED != 0 {
            issues.push("base-truncated");
        }
        let result = result_name(h.ret);
        let ops = ops_of(w.op, h.raw_flags);
        let comm = w.comm();
        let mut paths = Vec::new();

        let second = match (w.op, &w.path2) {
            (Op::Symlink, Some(content)) => {
                // The link's content is kept as written, not resolved.
                Some((None, RawPath::from_bytes(content.clone())))
            }
            (Op::Rename | Op::Link, Some(p2)) => {
                let mut issues2 = Vec::new();
                if h.flags & EV_PATH2_TRUNCATED != 0 {
                    issues2.push("truncated");
                }
                if h.flags & EV_BASE2_TRUNCATED != 0 {
                    issues2.push("base-truncated");
                }
                let p = resolve::resolve(
                    p2,
                    w.base2.as_deref(),
                    pid,
                    h.dirfd2,
                    h.flags & EV_BASE2_UNRESOLVED != 0,
                    &mut issues2,
                );
                Some((Some(issues2), p))
            }
            _ => None,
        };

        let ev = EventFacts {
            ktime_ns: h.ktime_ns,
            result: &result,
            comm: &comm,
            from_container,
        };
        let related = second.as_ref().map(|(_, p)| p);
        let (p, c) = record_write(
            target,
            self.budget,
            path.clone(),
            &ops,
            related,
            &issues,
            &ev,
        );
        paths.push(p);
        self.collapsed += u64::from(c);
        if let (Op::Rename, Some((Some(issues2), from))) = (w.op, &second) {
            let (p, c) = record_write(
                target,
                self.budget,
                from.clone(),
                &[OpName::RenameFrom],
                Some(&path),
                issues2,
                &ev,
            );
            paths.push(p);
            self.collapsed += u64::from(c);
        }
        list_new_directories(target, &paths);
        self.keys.insert(
            h.key,
            KeyState {
                cgroup,
                paths,
                result,
                folded: 0,
            },
        );
    }

    /// Folds the kernel's dedup hit counts into the counts (call before [`Self::finish`], and
    /// periodically in long recordings so evicted entries lose little).
    ///
    /// Keys the kernel no longer holds (evicted from its LRU) can get no more hits and are
    /// forgotten, which bounds memory under a flood of distinct paths. Hits an evicted entry
    /// took after the previous fold are lost from the per-path counts (the kernel's
    /// `deduplicated` counter still has them); fold often enough ([`Self::needs_hits`]).
    pub fn apply_hits(&mut self, hits: &[(DedupKey, DedupValue)]) {
        let live: std::collections::HashSet<&DedupKey> = hits.iter().map(|(k, _)| k).collect();
        self.keys.retain(|k, _| live.contains(k));
        // Should the kernel ever hold more live keys than MAX_KEYS, ask again only after as
        // many new ones, so folding always makes progress.
        self.fold_at = MAX_KEYS.max(2 * self.keys.len());
        if self.keys.capacity() > 4 * MAX_KEYS {
            self.keys.shrink_to(MAX_KEYS);
        }
        for (key, value) in hits {
            let Some(state) = self.keys.get_mut(key) else {
                continue;
            };
            // An entry evicted and re-emitted starts again from 0.
            let delta = value.hits.saturating_sub(state.folded);
            state.folded = value.hits;
            if delta == 0 {
                continue;
            }
            let Some(target) = self.targets.get_mut(&state.cgroup) else {
                continue;
            };
            for p in &state.paths {
                if let Some(w) = target.writes.get_mut(p) {
                    w.count += delta;
                    *w.results.entry(state.result.clone()).or_default() += delta;
                    w.last_ns = w.last_ns.max(value.last_ns);
                }
            }
        }
    }

    /// Whether enough dedup keys piled up that the kernel's hit counts should be folded in now
    /// (see [`Self::apply_hits`]), to keep memory bounded.
    pub fn needs_hits(&self) -> bool {
        self.keys.len() >= self.fold_at
    }

    /// Distinct paths recorded so far, all targets.
    pub fn distinct_paths(&self) -> usize {
        self.targets.values().map(|t| t.writes.len()).sum()
    }

    /// Forgets a target and its dedup bookkeeping (the agent calls it once a container's cgroup
    /// is gone and its evidence has been taken from a [`Self::snapshot`]), so a long-running
    /// recorder holds only live targets. A later record of the same cgroup starts it afresh.
    pub fn remove_target(&mut self, id: u64) {
        self.targets.remove(&id);
        self.keys.retain(|_, k| k.cgroup != id);
    }

    /// Builds the report.
    pub fn finish(self, counters: Counters, recording: Recording) -> Report {
        self.snapshot(counters, recording)
    }

    /// Builds the report of everything recorded so far, keeping the recorder going (the agent
    /// publishes and persists snapshots while it records).
    pub fn snapshot(&self, mut counters: Counters, recording: Recording) -> Report {
        counters.decode_errors = self.decode_errors;
        counters.collapsed = self.collapsed;
        counters.runtime_setup = self.runtime_setup;
        let clock = self.clock;
        let targets = self
            .targets
            .values()
            .map(|t| {
                let directories =
                    resolve::directory_contents(t.root.as_ref(), &t.listings, &t.writes);
                let symlinks = resolve::symlinks(t.root.as_ref(), &t.writes);
                let sizes = resolve::sizes(t.root.as_ref(), &t.writes);
                let mut writes: Vec<Write> = t
                    .writes
                    .iter()
                    .map(|(path, s)| Write {
                        size: sizes.get(path).copied(),
                        mount: mounts::landing(&t.mounts, path).map(|m| m.mount_point.clone()),
                        path: path.clone(),
                        ops: s.ops.iter().copied().collect(),
                        count: s.count,
                        results: s.results.clone(),
                        first_seen: clock.rfc3339(s.first_ns),
                        last_seen: clock.rfc3339(s.last_ns),
                        related: s.related.iter().cloned().collect(),
                        processes: s.processes.iter().cloned().collect(),
                        issues: s.issues.iter().cloned().collect(),
                    })
                    .collect();
                writes.sort_by(|a, b| a.path.cmp(&b.path));
                Target {
                    cgroup: t.cgroup.clone(),
                    mounts: t.mounts.clone(),
                    writes,
                    directories,
                    symlinks,
                    ..Default::default()
                }
            })
            .collect();
        Report {
            version: crate::report::REPORT_VERSION,
            tool: ToolInfo {
                name: "writepath".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            recording,
            counters,
            targets,
        }
    }
}

/// Process names of container runtimes' init stages: they run in the container's cgroup while
/// setting it up (device nodes, mount points on the host side of the root) before the workload
/// is exec'd. `runc` itself is the `runc init` process before it names its stages: on a slow
/// machine (seen in the emulated kernel matrix) it writes its state under `/run/runc` from
/// inside the cgroup, on the host's root, and must not become the container's view.
const RUNTIME_INIT_COMMS: &[&[u8]] = &[
    b"runc",
    b"runc:[0:PARENT]",
    b"runc:[1:CHILD]",
    b"runc:[2:INIT]",
];

fn is_runtime_setup(comm: &[u8; 16]) -> bool {
    let end = comm.iter().position(|b| *b == 0).unwrap_or(comm.len());
    RUNTIME_INIT_COMMS.contains(&&comm[..end])
}

/// Lists the directories holding `paths` (and their ancestors) that are not listed yet, while
/// the target's root still shows them (see [`TargetState::listings`]).
fn list_new_directories(target: &mut TargetState, paths: &[RawPath]) {
    let Some(root) = target.root.as_ref() else {
        return;
    };
    for path in paths {
        let mut d = path.parent();
        while d.depth() > 0
            && target.listings.len() < resolve::MAX_DIRECTORIES
            && !target.listings.contains_key(&d)
        {
            // A directory not there yet (made later) is tried again at its next write.
            if let Some(listing) = resolve::list_dir(root, &d) {
                target.listings.insert(d.clone(), listing);
            }
            d = d.parent();
        }
    }
}

/// A root showing what a gone writer saw: a live process of its cgroup in the same mount
/// namespace, else the recorder's own root when the writer was in the recorder's namespace.
fn fallback_root(cgroup_root: &Path, cgroup: &str, mnt_ns: u64, host_ns: u64) -> Option<OwnedFd> {
    if mnt_ns == 0 {
        return None;
    }
    // An unnamed cgroup would read the root cgroup's processes: not the writer's.
    let procs = match cgroup.trim_start_matches('/') {
        "" => String::new(),
        rel => {
            std::fs::read_to_string(cgroup_root.join(rel).join("cgroup.procs")).unwrap_or_default()
        }
    };
    let from_cgroup = procs
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter(|pid| mounts::mnt_ns_of(*pid) == Some(mnt_ns))
        .find_map(resolve::open_root);
    from_cgroup.or_else(|| {
        (mnt_ns == host_ns)
            .then(|| resolve::open_root(std::process::id()))
            .flatten()
    })
}

/// What every path of one record shares.
struct EventFacts<'a> {
    ktime_ns: u64,
    result: &'a str,
    comm: &'a str,
    from_container: bool,
}

/// Adds one observation of `path` to `target`. Beyond `budget` distinct paths a new path is
/// folded into its directory (returned `true`: counted as collapsed).
fn record_write(
    target: &mut TargetState,
    budget: usize,
    path: RawPath,
    ops: &[OpName],
    related: Option<&RawPath>,
    issues: &[&str],
    ev: &EventFacts<'_>,
) -> (RawPath, bool) {
    let collapse = target.writes.len() >= budget && !target.writes.contains_key(&path);
    let path = if collapse { path.parent() } else { path };
    let entry = target
        .writes
        .entry(path.clone())
        .or_insert_with(|| WriteState {
            first_ns: ev.ktime_ns,
            ..Default::default()
        });
    if collapse {
        entry.issues.insert("collapsed".into());
    }
    entry.ops.extend(ops.iter().copied());
    entry.count += 1;
    // No allocation for a result or process already there (the common case).
    match entry.results.get_mut(ev.result) {
        Some(n) => *n += 1,
        None => {
            entry.results.insert(ev.result.to_string(), 1);
        }
    }
    entry.first_ns = entry.first_ns.min(ev.ktime_ns);
    entry.last_ns = entry.last_ns.max(ev.ktime_ns);
    if let Some(r) = related {
        entry.related.insert(r.clone());
    }
    if entry.processes.len() < MAX_PROCESSES && !entry.processes.contains(ev.comm) {
        entry.processes.insert(ev.comm.to_string());
    }
    entry.issues.extend(issues.iter().map(|s| s.to_string()));
    entry.from_container |= ev.from_container;
    (path, collapse)
}

/// The report operations of one syscall record.
pub fn ops_of(op: Op, open_flags: u64) -> Vec<OpName> {
    match op {
        Op::Open => {
            if open_flags & O_TMPFILE_BIT != 0 {
                return vec![OpName::Tmpfile];
            }
            let mut ops = Vec::new();
            if open_flags & O_CREAT != 0 {
                ops.push(OpName::Create);
            }
            if open_flags & O_TRUNC != 0 {
                ops.push(OpName::Truncate);
            }
            if open_flags & O_APPEND != 0 {
                ops.push(OpName::Append);
            }
            if ops.is_empty() {
                ops.push(OpName::OpenWrite);
            }
            ops
        }
        Op::Truncate => vec![OpName::Truncate],
        Op::Mkdir => vec![OpName::Mkdir],
        Op::Mknod => vec![OpName::Mknod],
        Op::Rename => vec![OpName::RenameTo],
        Op::Link => vec![OpName::Link],
        Op::Symlink => vec![OpName::Symlink],
        Op::Unlink => vec![OpName::Unlink],
        Op::Rmdir => vec![OpName::Rmdir],
        Op::Chmod => vec![OpName::Chmod],
        Op::Chown => vec![OpName::Chown],
        Op::Utimes => vec![OpName::Utimes],
        Op::Setxattr => vec![OpName::Setxattr],
        Op::Removexattr => vec![OpName::Removexattr],
        Op::Bind => vec![OpName::Bind],
        Op::None => Vec::new(),
    }
}

/// "ok" for a success, else the errno's name ("EROFS").
pub fn result_name(ret: i64) -> String {
    if ret >= 0 {
        return "ok".into();
    }
    let errno = nix::errno::Errno::from_raw((-ret) as i32);
    match errno {
        nix::errno::Errno::UnknownErrno => format!("E{}", -ret),
        e => format!("{e:?}"),
    }
}

fn cgroup_rel_path(root: &Path, dir: &Path) -> String {
    match dir.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => dir.display().to_string(),
    }
}

/// Finds the cgroup directory whose inode is `id` (bounded breadth-first walk).
pub fn find_cgroup_dir(root: &Path, id: u64) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    let mut queue = std::collections::VecDeque::from([root.to_path_buf()]);
    let mut visited = 0;
    while let Some(dir) = queue.pop_front() {
        visited += 1;
        if visited > 100_000 {
            return None;
        }
        if std::fs::metadata(&dir).map(|m| m.ino()).ok() == Some(id) {
            return Some(dir);
        }
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    queue.push_back(e.path());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_from_open_flags() {
        assert_eq!(ops_of(Op::Open, 0o1), vec![OpName::OpenWrite]);
        assert_eq!(
            ops_of(Op::Open, 0o1 | O_CREAT | O_TRUNC),
            vec![OpName::Create, OpName::Truncate]
        );
        assert_eq!(
            ops_of(Op::Open, 0o1 | O_APPEND | O_CREAT),
            vec![OpName::Create, OpName::Append]
        );
        assert_eq!(
            ops_of(Op::Open, 0o2 | O_TMPFILE_BIT | 0o200000),
            vec![OpName::Tmpfile]
        );
        assert_eq!(ops_of(Op::Rename, 0), vec![OpName::RenameTo]);
    }

    #[test]
    fn dedup_keys_stay_bounded() {
        let mut r = Recorder::new(Path::new("/nonexistent-cgroup-root"));
        let key = |i: u64| DedupKey {
            cgroup_id: 1,
            path_hash: i,
            ..Default::default()
        };
        for i in 0..MAX_KEYS as u64 {
            r.keys.insert(
                key(i),
                KeyState {
                    cgroup: 1,
                    paths: Vec::new(),
                    result: "ok".into(),
                    folded: 0,
                },
            );
        }
        assert!(r.needs_hits());
        // The kernel still holds only the last 10 keys.
        let live: Vec<(DedupKey, DedupValue)> = (MAX_KEYS as u64 - 10..MAX_KEYS as u64)
            .map(|i| (key(i), DedupValue::default()))
            .collect();
        r.apply_hits(&live);
        assert_eq!(r.keys.len(), 10);
        assert!(!r.needs_hits());
    }

    #[test]
    fn result_names() {
        assert_eq!(result_name(3), "ok");
        assert_eq!(result_name(-30), "EROFS");
        assert_eq!(result_name(-13), "EACCES");
        assert_eq!(result_name(-4000), "E4000");
    }

    fn write(cgroup: u64, path: &str, ktime_ns: u64) -> FileWrite {
        let key = DedupKey {
            cgroup_id: cgroup,
            path_hash: path.len() as u64,
            ..Default::default()
        };
        FileWrite {
            header: agent_common::WriteEvent {
                kind: agent_common::EventKind::Write as u32,
                flags: 0,
                key,
                ret: 0,
                ktime_ns,
                // A pid that does not exist: nothing is read through /proc.
                pid_tgid: 4_100_000 << 32,
                mnt_ns: 0,
                raw_flags: 0o1 | O_CREAT,
                dirfd: -100,
                dirfd2: -100,
                uid: 0,
                op: Op::Open as u32,
                path_len: path.len() as u16,
                base_len: 0,
                path2_len: 0,
                base2_len: 0,
                comm: *b"app\0\0\0\0\0\0\0\0\0\0\0\0\0",
            },
            op: Op::Open,
            path: path.as_bytes().to_vec(),
            base: None,
            path2: None,
            base2: None,
        }
    }

    #[test]
    fn snapshots_keep_recording_and_targets_can_be_removed() {
        let root = tempfile::tempdir().unwrap();
        let mut r = Recorder::new(root.path());
        r.add(&write(7, "/tmp/a", 1));
        r.add(&write(8, "/run/b", 2));
        let first = r.snapshot(Counters::default(), Recording::default());
        assert_eq!(first.targets.len(), 2);
        // The recorder goes on after a snapshot.
        r.add(&write(7, "/tmp/a", 3));
        let second = r.snapshot(Counters::default(), Recording::default());
        let t7 = second.targets.iter().find(|t| t.cgroup.id == 7).unwrap();
        assert_eq!(t7.writes[0].count, 2);
        // Removing a target forgets it and its dedup bookkeeping.
        r.remove_target(7);
        r.apply_hits(&[(
            write(7, "/tmp/a", 0).header.key,
            DedupValue {
                hits: 5,
                ..Default::default()
            },
        )]);
        let third = r.finish(Counters::default(), Recording::default());
        assert_eq!(third.targets.len(), 1);
        assert_eq!(third.targets[0].cgroup.id, 8);
        assert_eq!(third.targets[0].writes[0].count, 1);
    }
}
