//! Turning a syscall's path into the path the target sees, and looking at the target's
//! directories through its root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::WriteState;
use crate::path::RawPath;
use crate::report::{DirectoryContent, Symlink};

/// Directories examined per target at the end of a recording.
pub(super) const MAX_DIRECTORIES: usize = 512;
/// Entries read per directory.
const MAX_ENTRIES: usize = 10_000;
/// Entry names kept as a sample.
const SAMPLE: usize = 5;

/// The absolute path a syscall named: `name` itself when absolute; else joined to the base the
/// kernel resolved (`base`, leaf-first names); else, best effort, to the writer's cwd or dirfd
/// read from /proc while it is alive. Pushes "base-unresolved" to `issues` when none worked.
pub fn resolve(
    name: &[u8],
    base: Option<&[u8]>,
    pid: u32,
    dirfd: i32,
    kernel_gave_up: bool,
    issues: &mut Vec<&'static str>,
) -> RawPath {
    if name.first() == Some(&b'/') {
        return RawPath::resolve(&RawPath::from("/"), name);
    }
    if let Some(base) = base {
        return RawPath::resolve(&RawPath::from_leaf_first(base), name);
    }
    let _ = kernel_gave_up;
    match proc_base(pid, dirfd) {
        Some(b) => RawPath::resolve(&b, name),
        None => {
            issues.push("base-unresolved");
            // Keep the name, anchored at "/" so it stays an absolute path; the issue says why.
            RawPath::resolve(&RawPath::from("/"), name)
        }
    }
}

/// The cwd (dirfd = AT_FDCWD) or the directory open on `dirfd`, as the process sees it: the
/// host path from /proc with the process's root stripped.
fn proc_base(pid: u32, dirfd: i32) -> Option<RawPath> {
    let link = if dirfd == agent_common::syscalls::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    let dir = std::fs::read_link(link).ok()?;
    let root = std::fs::read_link(format!("/proc/{pid}/root")).ok()?;
    let rel = dir.strip_prefix(&root).ok()?;
    Some(RawPath::resolve(
        &RawPath::from("/"),
        rel.as_os_str().as_bytes(),
    ))
}

/// Paths looked at per target for links and sizes at the end of a recording.
const MAX_LOOKUPS: usize = 10_000;

/// Opens `path` (absolute, as the target sees it) below the target's root with `flags`; `..`
/// and absolute links cannot leave the root.
fn open_below_root(root: &OwnedFd, path: &RawPath, flags: OFlags) -> Option<OwnedFd> {
    let rel = path
        .as_bytes()
        .get(1..)
        .filter(|r| !r.is_empty())
        .unwrap_or(b".");
    rustix::fs::openat2(
        root.as_fd(),
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .ok()
}

/// `path` below the target's root, without following a final symlink.
fn open_in_root(root: &OwnedFd, path: &RawPath) -> Option<OwnedFd> {
    open_below_root(root, path, OFlags::PATH | OFlags::NOFOLLOW)
}

/// Symbolic links among the written paths and their directories, read through the target's
/// root: `/var/run -> /run`, `access.log -> /dev/stdout`.
pub(super) fn symlinks(
    root: Option<&OwnedFd>,
    writes: &HashMap<RawPath, WriteState>,
) -> Vec<Symlink> {
    let Some(root) = root else { return Vec::new() };
    let mut candidates: BTreeSet<RawPath> = BTreeSet::new();
    for path in writes.keys() {
        let mut p = path.clone();
        while p.depth() > 0 && candidates.len() < MAX_LOOKUPS {
            if !candidates.insert(p.clone()) {
                break;
            }
            p = p.parent();
        }
    }
    candidates
        .into_iter()
        .filter_map(|path| {
            let fd = open_in_root(root, &path)?;
            let stat = rustix::fs::fstat(&fd).ok()?;
            if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Symlink {
                return None;
            }
            let target = rustix::fs::readlinkat(&fd, "", Vec::new()).ok()?;
            Some(Symlink {
                path,
                target: RawPath::from_bytes(target.into_bytes()),
            })
        })
        .collect()
}

/// Sizes of the regular files written to that still exist, read through the target's root.
pub(super) fn sizes(
    root: Option<&OwnedFd>,
    writes: &HashMap<RawPath, WriteState>,
) -> HashMap<RawPath, u64> {
    let Some(root) = root else {
        return HashMap::new();
    };
    writes
        .iter()
        .filter(|(_, w)| {
            !w.ops
                .iter()
                .all(|o| o.removes_entry() || *o == crate::report::OpName::Mkdir)
        })
        .take(MAX_LOOKUPS)
        .filter_map(|(path, _)| {
            let stat = rustix::fs::fstat(open_in_root(root, path)?).ok()?;
            (rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile)
                .then(|| (path.clone(), stat.st_size as u64))
        })
        .collect()
}

/// Opens the root directory of `pid` (its container's root) so the target's files can be
/// looked at after the process has exited.
pub fn open_root(pid: u32) -> Option<OwnedFd> {
    rustix::fs::open(
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Entry names kept per early listing; beyond them entries are only counted.
const LISTED_NAMES: usize = 1024;

/// What a directory held when the recorder first met a write in it, read through the target's
/// root while the writer's view is surely there (its container may be gone at the end).
#[derive(Clone, Debug, Default)]
pub(super) struct Listing {
    /// Entry names (without `.` and `..`), at most [`LISTED_NAMES`].
    names: Vec<Vec<u8>>,
    /// Entries beyond those names.
    more: u64,
}

/// Lists `dir` (absolute, as the target sees it) below `root`; `None` when it cannot be opened.
pub(super) fn list_dir(root: &OwnedFd, dir: &RawPath) -> Option<Listing> {
    let fd = open_dir(root, dir)?;
    let mut it = rustix::fs::Dir::read_from(&fd).ok()?;
    let mut listing = Listing::default();
    let mut n = 0;
    while let Some(Ok(e)) = it.next() {
        n += 1;
        if n > MAX_ENTRIES {
            break;
        }
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if listing.names.len() < LISTED_NAMES {
            listing.names.push(name.to_vec());
        } else {
            listing.more += 1;
        }
    }
    Some(listing)
}

fn open_dir(root: &OwnedFd, dir: &RawPath) -> Option<OwnedFd> {
    open_below_root(root, dir, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// For each directory that holds a written path (and its ancestors), what it held that the
/// target did not create: the image's own content an emptyDir would hide. A directory listed
/// when its first write was recorded (`early`) is described from that listing; others are
/// looked at now, through `root`.
pub(super) fn directory_contents(
    root: Option<&OwnedFd>,
    early: &HashMap<RawPath, Listing>,
    writes: &HashMap<RawPath, WriteState>,
) -> Vec<DirectoryContent> {
    if root.is_none() && early.is_empty() {
        return Vec::new();
    }
    // Names the target created, per directory; directories it made.
    let mut created: BTreeMap<RawPath, BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut made: BTreeSet<RawPath> = BTreeSet::new();
    let mut dirs: BTreeSet<RawPath> = BTreeSet::new();
    for (path, w) in writes {
        if w.ops.iter().any(|o| o.creates_entry()) {
            created
                .entry(path.parent())
                .or_default()
                .insert(path.file_name().to_vec());
        }
        if w.ops.contains(&crate::report::OpName::Mkdir) && w.results.contains_key("ok") {
            made.insert(path.clone());
        }
        let mut d = path.parent();
        while d.depth() > 0 && dirs.len() < MAX_DIRECTORIES {
            if !dirs.insert(d.clone()) {
                break;
            }
            d = d.parent();
        }
    }
    // A created directory counts as created content of its parent too.
    for d in &made {
        created
            .entry(d.parent())
            .or_default()
            .insert(d.file_name().to_vec());
    }
    dirs.into_iter()
        .filter_map(|dir| {
            let listing = early
                .get(&dir)
                .cloned()
                .or_else(|| root.and_then(|r| list_dir(r, &dir)));
            let mine = created.get(&dir);
            let mut entries = 0u64;
            let mut sample = Vec::new();
            if let Some(listing) = listing {
                for name in &listing.names {
                    if mine.is_some_and(|m| m.contains(name)) {
                        continue;
                    }
                    entries += 1;
                    if sample.len() < SAMPLE {
                        sample.push(RawPath::resolve(&dir, name));
                    }
                }
                entries += listing.more;
            } else if !made.contains(&dir) {
                // Gone now and not made by the target: nothing to say.
                return None;
            }
            Some(DirectoryContent {
                existed: !made.contains(&dir),
                image_entries: entries,
                sample,
                path: dir,
            })
        })
        .collect()
}
