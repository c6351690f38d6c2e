//! The versioned JSON report: what was recorded, per target, with every write's evidence.
//!
//! This is a public contract (README, "Report format"). Suggestions are computed from a report,
//! so a better engine can re-read old reports: add fields with `#[serde(default)]`, never
//! change the meaning of one, and bump [`REPORT_VERSION`] only for a breaking change.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::path::RawPath;

/// Current report format version.
pub const REPORT_VERSION: u32 = 1;

/// A whole report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Format version, [`REPORT_VERSION`].
    pub version: u32,
    /// Which writepath wrote it.
    #[serde(default)]
    pub tool: ToolInfo,
    /// How the recording was made.
    #[serde(default)]
    pub recording: Recording,
    /// Kernel counters for the whole recording.
    #[serde(default)]
    pub counters: Counters,
    /// One entry per recorded target (a cgroup; in a cluster a container of a pod).
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// Name and version of the producer.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    /// Always "writepath".
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// Circumstances of the recording.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Recording {
    /// "command" (`record -- CMD`), "cgroup" (`record --cgroup`) or "agent".
    pub mode: String,
    /// The command line, for mode "command".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Exit code of the command, when it exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The watched cgroup v2 directory.
    #[serde(default)]
    pub cgroup: String,
    /// RFC 3339 start and end.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Node name (hostname).
    #[serde(default)]
    pub host: String,
    /// `uname -r`.
    #[serde(default)]
    pub kernel: String,
    /// The capture design that recorded it: "exit-only", "pair" or "compat"
    /// (docs/kernels.md). Empty in reports of writepath before 0.2.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hook: String,
}

/// Kernel-side counters (summed over CPUs) and userspace ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// Calls of the hooked syscalls, all cgroups.
    pub seen: u64,
    /// Of those, left in the kernel: from cgroups nobody watched, or opens without write
    /// intent.
    pub filtered: u64,
    /// Calls folded into an earlier identical record by the in-kernel dedup.
    pub deduplicated: u64,
    /// Records sent to userspace.
    pub emitted: u64,
    /// Records lost because the ring buffer was full. Non-zero means writes may be missing.
    pub dropped: u64,
    /// Calls lost because the in-flight table was full.
    #[serde(default)]
    pub pending_full: u64,
    /// Calls in flight when recording started or whose entry was missed.
    #[serde(default)]
    pub pending_missing: u64,
    /// Records whose path was cut or unreadable.
    #[serde(default)]
    pub path_errors: u64,
    /// Records whose base directory (for a relative path) was cut or unresolved.
    #[serde(default)]
    pub base_errors: u64,
    /// Calls that turned out not to name a path (abstract sockets, fd-only utimensat).
    #[serde(default)]
    pub not_a_path: u64,
    /// Watched calls a program could not finish (a kernel read or map lookup failed before
    /// the record was made): lost, and counted.
    #[serde(default)]
    pub probe_errors: u64,
    /// Records userspace could not decode (a bug if ever non-zero).
    #[serde(default)]
    pub decode_errors: u64,
    /// Paths folded into their directory because a target exceeded its path budget.
    #[serde(default)]
    pub collapsed: u64,
    /// Records made by a container runtime's init while setting the container up (not the
    /// workload's writes), left out of the targets.
    #[serde(default)]
    pub runtime_setup: u64,
}

/// One recorded target.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Target {
    /// The cgroup the writes came from.
    pub cgroup: CgroupRef,
    /// The container, when the cgroup belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
    /// The pod, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The workload owning the pod, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadRef>,
    /// True when recording started after the target did (its start-up writes were missed).
    #[serde(default)]
    pub partial: bool,
    /// The target's mount table (from a writer's `/proc/<pid>/mountinfo`), root first.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Every distinct written path.
    #[serde(default)]
    pub writes: Vec<Write>,
    /// For directories that were written into: what the image already had there, seen through
    /// the target's root. Lets the suggestion engine warn that an emptyDir would hide content.
    #[serde(default)]
    pub directories: Vec<DirectoryContent>,
    /// Symbolic links met on written paths (the path itself or one of its directories), read
    /// through the target's root. Lets the suggestion engine see that `/var/run/x` is `/run/x`
    /// and that a log file is a link to `/dev/stdout`. Empty when the recorder did not look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<Symlink>,
}

/// A symbolic link in the target's filesystem.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Symlink {
    /// Where the link is (absolute, normalized).
    pub path: RawPath,
    /// Its content as `readlink` returns it (absolute, or relative to the link's directory).
    pub target: RawPath,
}

/// A cgroup v2 directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct CgroupRef {
    /// Path below the cgroup2 mount, e.g. `/kubepods/burstable/pod…/cri-containerd-…`.
    pub path: String,
    /// Kernel cgroup id (inode of the directory).
    pub id: u64,
}

/// A container.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerRef {
    /// Runtime container id.
    pub id: String,
    /// "containerd", "cri-o", "docker" or "runc".
    pub runtime: String,
    /// Name in the pod spec, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// "container", "init" or "ephemeral".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A pod.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

/// A workload (the top owner of a pod).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadRef {
    /// Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet or Pod.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// One mount of the target's mount table.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    /// Mount point as the target sees it.
    pub mount_point: RawPath,
    /// Filesystem type (overlay, tmpfs, proc, …); `pod-spec-volume` for a mount the agent took
    /// from the pod spec's `volumeMounts` (then `source` is `volume:<name>`).
    pub fs_type: String,
    /// Mount source.
    #[serde(default)]
    pub source: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// One distinct written path and its evidence.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Write {
    /// Absolute, normalized path as the target sees it.
    pub path: RawPath,
    /// What was done to it, sorted (see [`OpName`]).
    pub ops: Vec<OpName>,
    /// Calls observed (emitted records plus calls folded into them by the dedup).
    pub count: u64,
    /// Outcome name ("ok", "EROFS", "EACCES", …) to calls.
    pub results: BTreeMap<String, u64>,
    /// RFC 3339, first call.
    pub first_seen: String,
    /// RFC 3339, last call.
    pub last_seen: String,
    /// Mount point the path lands on (longest prefix in the target's mount table); `/` is the
    /// root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<RawPath>,
    /// The other path of a rename (source or destination) or link, and a symlink's content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RawPath>,
    /// Up to a few process names (comm) that made the calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// Problems with this path: "truncated" (cut at 4096 bytes), "base-unresolved" (relative
    /// path whose directory could not be found), "base-truncated".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<String>,
    /// Largest size in bytes seen for the file (for example by `stat` through the target's root
    /// at its last write or at the end of recording), when known. Lets the suggestion engine
    /// size a `medium: Memory` emptyDir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Results that mean a read-only filesystem refused the call: what a read-only root produces.
pub const READ_ONLY_RESULTS: &[&str] = &["EROFS"];

impl Write {
    /// Calls on this path refused by a read-only filesystem ([`READ_ONLY_RESULTS`]).
    pub fn read_only_failures(&self) -> u64 {
        READ_ONLY_RESULTS
            .iter()
            .filter_map(|r| self.results.get(*r))
            .fold(0u64, |a, n| a.saturating_add(*n))
    }
}

impl Target {
    /// Calls of this target refused by a read-only filesystem, all paths: the enforcement-time
    /// safety net (a workload already running read-only that misses a volume). The agent
    /// exports it as a per-target metric.
    pub fn read_only_failures(&self) -> u64 {
        self.writes
            .iter()
            .fold(0u64, |a, w| a.saturating_add(w.read_only_failures()))
    }

    /// Distinct paths of this target with at least one call refused by a read-only filesystem.
    pub fn read_only_failed_paths(&self) -> usize {
        self.writes
            .iter()
            .filter(|w| w.read_only_failures() > 0)
            .count()
    }
}

/// Operation names used in reports. Stable strings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum OpName {
    /// Opened for writing an existing file (O_WRONLY/O_RDWR without O_CREAT/O_TRUNC).
    OpenWrite,
    /// Opened with O_APPEND.
    Append,
    /// Created (O_CREAT, creat).
    Create,
    /// Truncated (O_TRUNC, truncate).
    Truncate,
    /// Anonymous file in this directory (O_TMPFILE).
    Tmpfile,
    /// Directory created.
    Mkdir,
    /// Node created (FIFO, device, socket via mknod).
    Mknod,
    /// Renamed away (the source of a rename).
    RenameFrom,
    /// Renamed onto (the destination of a rename).
    RenameTo,
    /// Hard link created here.
    Link,
    /// Symlink created here.
    Symlink,
    /// Removed.
    Unlink,
    /// Directory removed.
    Rmdir,
    /// Mode changed.
    Chmod,
    /// Owner changed.
    Chown,
    /// Times changed.
    Utimes,
    /// Extended attribute set.
    Setxattr,
    /// Extended attribute removed.
    Removexattr,
    /// Unix socket bound here.
    Bind,
    /// An operation a newer writepath recorded that this one does not know (a version-1
    /// report only ever gains values): read as a write into the directory, shown as
    /// `unknown`.
    #[serde(other)]
    Unknown,
}

impl OpName {
    /// The stable name used in reports and tables (`rename-from`, `open-write`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            OpName::OpenWrite => "open-write",
            OpName::Append => "append",
            OpName::Create => "create",
            OpName::Truncate => "truncate",
            OpName::Tmpfile => "tmpfile",
            OpName::Mkdir => "mkdir",
            OpName::Mknod => "mknod",
            OpName::RenameFrom => "rename-from",
            OpName::RenameTo => "rename-to",
            OpName::Link => "link",
            OpName::Symlink => "symlink",
            OpName::Unlink => "unlink",
            OpName::Rmdir => "rmdir",
            OpName::Chmod => "chmod",
            OpName::Chown => "chown",
            OpName::Utimes => "utimes",
            OpName::Setxattr => "setxattr",
            OpName::Removexattr => "removexattr",
            OpName::Bind => "bind",
            OpName::Unknown => "unknown",
        }
    }

    /// Whether the op creates a new name in its directory (as opposed to changing an existing
    /// file). New names need a writable directory; changes need a writable file.
    pub fn creates_entry(self) -> bool {
        matches!(
            self,
            OpName::Create
                | OpName::Tmpfile
                | OpName::Mkdir
                | OpName::Mknod
                | OpName::RenameTo
                | OpName::Link
                | OpName::Symlink
                | OpName::Bind
                // Not known: taken as needing the directory writable, the safe side.
                | OpName::Unknown
        )
    }

    /// Whether the op removes a name from its directory.
    pub fn removes_entry(self) -> bool {
        matches!(self, OpName::Unlink | OpName::Rmdir | OpName::RenameFrom)
    }
}

/// What a directory held before the target wrote to it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirectoryContent {
    /// The directory.
    pub path: RawPath,
    /// Whether it existed in the image (false: the workload created it).
    pub existed: bool,
    /// Entries found there that the workload did not create.
    pub image_entries: u64,
    /// A few of their names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<RawPath>,
}

/// Errors reading a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("failed to read report {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a report (or is corrupt).
    #[error("{path}:{line}:{column}: not a valid writepath report: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A JSON document that is something else than a report.
    #[error("{path}: not a writepath report but {what}")]
    NotAReport {
        /// The file.
        path: String,
        /// What it is, and what to give instead.
        what: &'static str,
    },
    /// A version no writepath ever wrote.
    #[error("{path}: report version 0 is not a report version (this writepath reads version {REPORT_VERSION})")]
    NoVersion {
        /// The file.
        path: String,
    },
    /// A report from a newer writepath.
    #[error("{path}: report version {found} is newer than this writepath understands ({REPORT_VERSION})")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
    /// Writing the report failed.
    #[error("failed to write report {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a JSON document that parsed as an empty report really is, when it is another
/// writepath document, with what to give instead.
fn other_document(text: &str) -> Option<&'static str> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v.get("targets").is_some() {
        return None;
    }
    if v.get("containers").is_some() {
        return Some(
            "the output of `writepath suggest -o json`: give suggest the report that `writepath \
             record --report FILE` or the agent wrote (patch takes this file as --suggestions)",
        );
    }
    if v.get("kind").and_then(|k| k.as_str()) == Some("WritePathReport") {
        return Some(
            "a WritePathReport object: read it from the cluster with `writepath suggest -n \
             NAMESPACE KIND/NAME`, or give the report in its .spec.report",
        );
    }
    None
}

impl Report {
    /// Parses a report from JSON text; `origin` names the source in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Report> {
        let report: Report =
            serde_json::from_str(text).map_err(|e| match other_document(text) {
                Some(what) => Error::NotAReport {
                    path: origin.to_string(),
                    what,
                },
                None => Error::Parse {
                    path: origin.to_string(),
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                },
            })?;
        if report.version == 0 {
            return Err(Error::NoVersion {
                path: origin.to_string(),
            });
        }
        if report.version > REPORT_VERSION {
            return Err(Error::Version {
                path: origin.to_string(),
                found: report.version,
            });
        }
        if report.targets.is_empty() {
            // Every report field has a default, so other writepath documents parse as an
            // empty report: say what they are instead.
            if let Some(what) = other_document(text) {
                return Err(Error::NotAReport {
                    path: origin.to_string(),
                    what,
                });
            }
        }
        Ok(report)
    }

    /// Reads and parses a report file.
    pub fn load(path: &Path) -> Result<Report> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Writes the report atomically: a temporary file beside `path`, fsync, then rename, so a
    /// crash never leaves a half-written report.
    pub fn save(&self, path: &Path) -> Result<()> {
        let err = |source| Error::Write {
            path: path.display().to_string(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(e.into()))?;
        crate::fsutil::write_atomic(path, &json).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_with_location() {
        let err = Report::from_json("{\n \"version\": 1,\n \"targets\": [}", "r.json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("r.json:3:"), "{msg}");
    }

    #[test]
    fn op_names_match_the_report_format() {
        let all = [
            OpName::OpenWrite,
            OpName::Append,
            OpName::Create,
            OpName::Truncate,
            OpName::Tmpfile,
            OpName::Mkdir,
            OpName::Mknod,
            OpName::RenameFrom,
            OpName::RenameTo,
            OpName::Link,
            OpName::Symlink,
            OpName::Unlink,
            OpName::Rmdir,
            OpName::Chmod,
            OpName::Chown,
            OpName::Utimes,
            OpName::Setxattr,
            OpName::Removexattr,
            OpName::Bind,
        ];
        for op in all {
            assert_eq!(serde_json::to_value(op).unwrap(), op.as_str(), "{op:?}");
        }
    }

    #[test]
    fn rejects_future_version() {
        let err = Report::from_json(r#"{"version": 99}"#, "r.json").unwrap_err();
        assert!(matches!(err, Error::Version { found: 99, .. }), "{err}");
    }

    #[test]
    fn round_trips() {
        let mut w = Write {
            path: RawPath::from_bytes(b"/tmp/\xff".to_vec()),
            ..Default::default()
        };
        w.ops = vec![OpName::Create, OpName::RenameTo];
        w.results.insert("EROFS".into(), 3);
        let r = Report {
            version: REPORT_VERSION,
            tool: ToolInfo::default(),
            recording: Recording::default(),
            counters: Counters::default(),
            targets: vec![Target {
                writes: vec![w],
                ..Default::default()
            }],
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"rename-to\""), "{text}");
        assert_eq!(Report::from_json(&text, "x").unwrap(), r);
    }

    #[test]
    fn counts_read_only_failures_per_target() {
        let w = |results: &[(&str, u64)]| Write {
            results: results.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        };
        let t = Target {
            writes: vec![
                w(&[("ok", 2), ("EROFS", 3)]),
                w(&[("EROFS", 37)]),
                w(&[("EACCES", 1)]),
                w(&[("ok", 1)]),
            ],
            ..Default::default()
        };
        assert_eq!(t.read_only_failures(), 40);
        assert_eq!(t.read_only_failed_paths(), 2);
        assert_eq!(Target::default().read_only_failures(), 0);
    }
}
