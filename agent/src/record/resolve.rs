//! Turning a syscall's path into the path the target sees, and looking at the target's
//! directories through its root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::WriteState;
use crate::path::RawPath;
use crate::report::DirectoryContent;

/// Directories examined per target at the end of a recording.
const MAX_DIRECTORIES: usize = 512;
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

/// For each directory that holds a written path (and its ancestors), what is there now that
/// the target did not create: the image's own content an emptyDir would hide.
pub(super) fn directory_contents(
    root: Option<&OwnedFd>,
    writes: &HashMap<RawPath, WriteState>,
) -> Vec<DirectoryContent> {
    let Some(root) = root else { return Vec::new() };
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
            let rel = &dir.as_bytes()[1..];
            let fd = rustix::fs::openat2(
                root.as_fd(),
                rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            )
            .ok();
            let mine = created.get(&dir);
            let mut entries = 0u64;
            let mut sample = Vec::new();
            if let Some(fd) = fd {
                let mut it = rustix::fs::Dir::read_from(&fd).ok()?;
                let mut n = 0;
                while let Some(Ok(e)) = it.next() {
                    n += 1;
                    if n > MAX_ENTRIES {
                        break;
                    }
                    let name = e.file_name().to_bytes();
                    if name == b"." || name == b".." || mine.is_some_and(|m| m.contains(name)) {
                        continue;
                    }
                    entries += 1;
                    if sample.len() < SAMPLE {
                        sample.push(RawPath::resolve(&dir, name));
                    }
                }
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
