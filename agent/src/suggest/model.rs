//! The suggestion engine's output: one [`VolumeSuggestion`] per directory that must be
//! writable, grouped per workload and container. Consumed by `suggest` output, `patch`,
//! `verify` and the agent's reports. Public contract (README, "Suggestion format").

use serde::{Deserialize, Serialize};

use crate::path::RawPath;
use crate::report::{OpName, WorkloadRef};

/// Suggestions for every container of every workload found in the input reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Suggestions {
    /// Format version of this document (1).
    pub version: u32,
    /// One entry per (workload, container).
    pub containers: Vec<ContainerSuggestions>,
}

/// What one container needs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerSuggestions {
    /// The workload, when the reports name one (outside Kubernetes: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadRef>,
    /// Container name in the pod spec, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// "container" or "init" (init containers get the same treatment when observed).
    #[serde(default = "default_kind")]
    pub container_kind: String,
    /// The cgroup(s) the evidence came from, when there is no container identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<String>,
    /// The volumes to add, sorted by mount path.
    pub volumes: Vec<VolumeSuggestion>,
    /// Writes that need no volume, with the reason (already on a mount, kubelet-managed, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<ExcludedWrite>,
    /// Environment variables that remove writes, offered beside the volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvSuggestion>,
    /// True when some evidence was recorded partially (started before recording).
    #[serde(default)]
    pub partial: bool,
    /// Root-filesystem writes no volume can serve (directly in `/` or in a whole system tree
    /// such as `/etc`): the image or the application must change. Empty when every write is
    /// covered by `volumes` or `excluded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<UnresolvedWrite>,
    /// Reasons the evidence may be incomplete (events the recorder lost while recording this
    /// container), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn default_kind() -> String {
    "container".into()
}

/// One directory to mount writable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VolumeSuggestion {
    /// Where to mount it (absolute, normalized, never `/` or a whole system tree).
    pub mount_path: RawPath,
    /// Deterministic volume name (DNS label) derived from the mount path, e.g. `var-cache-nginx`.
    pub name: String,
    /// What kind of volume.
    pub volume: VolumeKind,
    /// What the directory is for.
    pub purpose: Purpose,
    /// Why: sample paths, operations, counts, first/last seen.
    pub evidence: Evidence,
    /// What the image already has at `mount_path` (an emptyDir would hide it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadowing: Option<Shadowing>,
    /// True when the recorder could not look at the directory in the image (the writer was
    /// gone, or the report is from a recorder that did not look): whether an emptyDir hides
    /// anything there is unknown. Absent (false) when it was seen or the workload made it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadowing_unknown: bool,
    /// Writes into this directory that already fail with EROFS today ("missing volume").
    #[serde(default)]
    pub failed_writes: u64,
    /// Other ways to remove the need (logs to stdout, TMPDIR, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
}

impl VolumeSuggestion {
    /// A plain emptyDir at `mount_path` with no evidence yet (tests, fixtures, `--mount`).
    pub fn empty_dir(mount_path: RawPath, name: impl Into<String>, purpose: Purpose) -> Self {
        VolumeSuggestion {
            mount_path,
            name: name.into(),
            volume: VolumeKind::EmptyDir {
                medium: None,
                size_limit: None,
            },
            purpose,
            evidence: Evidence::default(),
            shadowing: None,
            shadowing_unknown: false,
            failed_writes: 0,
            alternatives: Vec::new(),
        }
    }
}

/// The volume to use.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum VolumeKind {
    /// A plain emptyDir; `size_limit` is a Kubernetes quantity ("64Mi") when one is advised.
    EmptyDir {
        /// `medium: Memory` for small hot temp dirs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        medium: Option<String>,
        /// `sizeLimit`, a quantity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_limit: Option<String>,
    },
    /// Data that must survive a restart: a PersistentVolumeClaim is advised (the patch renders
    /// a placeholder claim name for the user to fill in).
    PersistentVolumeClaim {
        /// Suggested claim name.
        claim_name: String,
    },
}

/// What a writable directory is for.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Temporary files.
    Temp,
    /// Caches that can be rebuilt.
    Cache,
    /// Pid files, sockets, locks.
    Run,
    /// Log files.
    Log,
    /// Application data.
    Data,
    /// A user's home directory (dotfiles, tool state).
    Home,
}

/// The observations behind a suggestion.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// Distinct paths written below the mount path.
    pub paths: u64,
    /// A few of them.
    pub sample_paths: Vec<RawPath>,
    /// Every operation seen.
    pub ops: Vec<OpName>,
    /// Total calls.
    pub count: u64,
    /// RFC 3339.
    pub first_seen: String,
    /// RFC 3339.
    pub last_seen: String,
}

/// Image content an emptyDir at the mount path would hide.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Shadowing {
    /// Entries the image has there.
    pub image_entries: u64,
    /// A few of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<RawPath>,
    /// The remedies: "init-container-copy" and/or "deeper:<path>".
    pub remedies: Vec<String>,
}

/// A write that needs no volume.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExcludedWrite {
    /// The path.
    pub path: RawPath,
    /// Why, as `KIND:DETAIL`: "volume:/data", "kubelet:/etc/hosts", "pseudo-fs:/proc",
    /// "dev:/dev", "symlink:/dev/stdout", … (the full list is in `docs/suggestions.md`).
    pub reason: String,
    /// Calls.
    pub count: u64,
}

/// An environment variable that removes writes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvSuggestion {
    /// Variable name.
    pub name: String,
    /// Value to set.
    pub value: String,
    /// What it removes.
    pub reason: String,
}

/// A root-filesystem write that no suggested volume covers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UnresolvedWrite {
    /// The path.
    pub path: RawPath,
    /// The directory a volume would have to be mounted on.
    pub directory: RawPath,
    /// Why no volume is suggested: "system-tree:/etc", "root:/", "generated-name:/x123",
    /// "relative-path".
    pub reason: String,
    /// Calls.
    pub count: u64,
    /// Calls that already failed with EROFS.
    #[serde(default)]
    pub failed_writes: u64,
}
