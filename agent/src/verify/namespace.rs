//! The private mount namespace `writepath verify` runs a command in: `/` read-only, a fresh
//! tmpfs on every volume directory, every other mount of the host left as it is.
//!
//! [`Sandbox::plan`] does all the looking and allocating in the parent (which directories
//! exist, which mounts sit below an overlay, the mount option strings); [`Sandbox::enter`] runs
//! in the child between fork and exec and only makes system calls, so it is safe in a
//! `pre_exec` hook. How it is built and why is described in `docs/verify.md`.
//!
//! A volume directory that does not exist on the host (the application creates it) cannot be
//! made on the host's root, which must not change. Its nearest existing ancestor gets an
//! overlay whose lower layer is the host directory and whose upper layer is a private tmpfs;
//! the directory is made in the overlay, the tmpfs volume is mounted on it, and the overlay is
//! made read-only like the rest of the root. Mounts that were below that ancestor are cloned
//! before and put back on top of the overlay.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::path::RawPath;

/// Errors planning the namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A volume directory is not an absolute, normalized path.
    #[error("volume directory {0} is not an absolute path")]
    NotAbsolute(RawPath),
    /// `/` itself cannot be a volume.
    #[error("volume directory / would make the whole root writable")]
    Root,
    /// The path exists on this host but is not a directory.
    #[error("volume directory {0} exists on this host and is not a directory")]
    NotADirectory(RawPath),
    /// A missing directory directly in `/` would need an overlay on the whole root.
    #[error("volume directory {0} does not exist on this host and would be a new directory in /: create it first, or verify in a container")]
    NewInRoot(RawPath),
    /// The overlay mount options cannot carry this path.
    #[error("cannot overlay {0}: the path holds a comma, colon or backslash")]
    UnsafeOverlayPath(RawPath),
    /// A path holds a NUL byte.
    #[error("path {0} holds a NUL byte")]
    Nul(RawPath),
    /// Looking at the host's filesystem failed.
    #[error("failed to {action} {path}")]
    Io {
        /// What we tried.
        action: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How one volume directory is provided.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlannedVolume {
    /// The directory, as the command sees it.
    pub path: RawPath,
    /// True when it did not exist on the host and was made in an overlay of `overlay_on`.
    pub created: bool,
    /// The existing ancestor that got an overlay, for created directories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay_on: Option<RawPath>,
}

/// One system call of the set-up, everything precomputed.
enum Step {
    /// `unshare(CLONE_NEWNS)`.
    Unshare,
    /// Make every mount private (nothing propagates to or from the host).
    MakePrivate,
    /// `open_tree(path, OPEN_TREE_CLONE | AT_RECURSIVE)` into `slots[slot]`.
    CloneTree { path: CString, slot: usize },
    /// Mount a tmpfs.
    Tmpfs { target: CString, options: CString },
    /// `mkdir(path, 0755)`; an existing directory is fine.
    Mkdir { path: CString },
    /// Mount an overlay (options hold the lower layer's `/proc/self/fd` path).
    Overlay { target: CString, options: CString },
    /// `move_mount` the tree in `slots[slot]` onto `target`.
    Attach { slot: usize, target: CString },
    /// Bind-remount read-only, keeping `flags`.
    ReadOnly {
        target: CString,
        flags: libc::c_ulong,
    },
    /// Open `path` (`O_PATH`, close on exec) as descriptor `fd`.
    OpenLower { path: CString, fd: libc::c_int },
    /// `chdir`, so the working directory is seen through the new mounts.
    Chdir { path: CString },
}

impl Step {
    fn describe(&self) -> String {
        let s = |c: &CString| RawPath::from_bytes(c.as_bytes().to_vec()).to_string();
        match self {
            Step::Unshare => "unshare the mount namespace".into(),
            Step::MakePrivate => "make the mounts private".into(),
            Step::CloneTree { path, .. } => format!("clone the mounts at {}", s(path)),
            Step::Tmpfs { target, .. } => format!("mount a tmpfs on {}", s(target)),
            Step::Mkdir { path } => format!("create {} in the overlay", s(path)),
            Step::Overlay { target, .. } => format!("mount an overlay on {}", s(target)),
            Step::Attach { target, .. } => format!("put back the mounts at {}", s(target)),
            Step::ReadOnly { target, .. } => format!("make {} read-only", s(target)),
            Step::Chdir { path } => format!("change directory to {}", s(path)),
            Step::OpenLower { path, .. } => format!("open {}", s(path)),
        }
    }
}

/// Where the child writes the index of the step that failed: a shared anonymous page, so the
/// parent can name the step (a `pre_exec` error only carries an errno).
struct FailedStep {
    ptr: *mut usize,
}

// SAFETY: the page is only read by the parent after the child is gone, and written by the
// child (another process) through its own copy of the mapping.
unsafe impl Send for FailedStep {}
// SAFETY: as above.
unsafe impl Sync for FailedStep {}

impl FailedStep {
    fn new() -> std::io::Result<FailedStep> {
        // SAFETY: an anonymous shared mapping of one page; checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = ptr.cast::<usize>();
        // SAFETY: the mapping is at least one usize, page aligned.
        unsafe { ptr.write_volatile(usize::MAX) };
        Ok(FailedStep { ptr })
    }

    fn set(&self, i: usize) {
        // SAFETY: valid for the lifetime of self.
        unsafe { self.ptr.write_volatile(i) }
    }

    fn get(&self) -> Option<usize> {
        // SAFETY: valid for the lifetime of self.
        let v = unsafe { self.ptr.read_volatile() };
        (v != usize::MAX).then_some(v)
    }
}

impl Drop for FailedStep {
    fn drop(&mut self) {
        // SAFETY: unmapping the page mapped in new().
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

/// The planned namespace: steps to run in the child, and what they provide.
pub struct Sandbox {
    steps: Vec<Step>,
    slots: Vec<libc::c_int>,
    failed: FailedStep,
    /// The volumes, in mount order.
    pub volumes: Vec<PlannedVolume>,
}

/// Mount options of every volume tmpfs: like an emptyDir, writable by anyone.
const VOLUME_OPTIONS: &str = "mode=0777";
/// Names of the overlay's layers inside its private tmpfs.
const UPPER: &str = ".writepath-upper";
const WORK: &str = ".writepath-work";

fn cstring(p: &[u8]) -> Result<CString> {
    CString::new(p).map_err(|_| Error::Nul(RawPath::from_bytes(p.to_vec())))
}

fn join(dir: &RawPath, name: &str) -> RawPath {
    RawPath::resolve(dir, name.as_bytes())
}

fn host_path(p: &RawPath) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes()))
}

/// Read-only remount flags that keep a mount's other flags (a bind remount replaces them).
fn remount_flags(path: &Path) -> Result<libc::c_ulong> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| Error::Io {
        action: "statvfs",
        path: path.display().to_string(),
        source: e.into(),
    })?;
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
    for (st_flag, ms) in [
        (FsFlags::ST_NOSUID, libc::MS_NOSUID),
        (FsFlags::ST_NODEV, libc::MS_NODEV),
        (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
        (FsFlags::ST_NOATIME, libc::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f.contains(st_flag) {
            flags |= ms;
        }
    }
    Ok(flags)
}

/// Normalizes and checks the volume directories; drops duplicates and directories below
/// another one (a tmpfs volume already covers them), keeping the outermost.
pub fn normalize(dirs: &[RawPath]) -> Result<Vec<RawPath>> {
    let mut out: Vec<RawPath> = Vec::new();
    for d in dirs {
        if !d.is_absolute() {
            return Err(Error::NotAbsolute(d.clone()));
        }
        let d = RawPath::resolve(&RawPath::from("/"), d.as_bytes());
        if d.as_bytes() == b"/" {
            return Err(Error::Root);
        }
        out.push(d);
    }
    out.sort_by(|a, b| a.depth().cmp(&b.depth()).then(a.cmp(b)));
    let mut kept: Vec<RawPath> = Vec::new();
    for d in out {
        if !kept.iter().any(|k| d.starts_with(k)) {
            kept.push(d);
        }
    }
    Ok(kept)
}

impl Sandbox {
    /// Plans the namespace for these volume directories (see [`normalize`]), with the command
    /// starting in `cwd`.
    pub fn plan(dirs: &[RawPath], cwd: &Path) -> Result<Sandbox> {
        let dirs = normalize(dirs)?;
        let host_mounts = crate::record::mounts::read_mount_table(std::process::id())
            .map(|t| t.into_iter().map(|m| m.mount_point).collect::<Vec<_>>())
            .unwrap_or_default();
        let mut steps = vec![Step::Unshare, Step::MakePrivate];
        let mut lower = Vec::new();
        let mut volumes = Vec::new();
        let mut slots = 0usize;

        // Which directories exist; for missing ones, the nearest existing ancestor.
        let mut missing: Vec<(RawPath, RawPath)> = Vec::new();
        for d in &dirs {
            match std::fs::metadata(host_path(d)) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::NotADirectory(d.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut anc = d.parent();
                    while anc.as_bytes() != b"/" && !host_path(&anc).is_dir() {
                        anc = anc.parent();
                    }
                    if anc.as_bytes() == b"/" {
                        return Err(Error::NewInRoot(d.clone()));
                    }
                    missing.push((d.clone(), anc));
                }
                Err(source) => {
                    return Err(Error::Io {
                        action: "look at",
                        path: d.to_string(),
                        source,
                    })
                }
            }
        }
        // One overlay per outermost ancestor.
        let mut ancestors: Vec<RawPath> = missing.iter().map(|(_, a)| a.clone()).collect();
        ancestors.sort_by(|a, b| a.depth().cmp(&b.depth()).then(a.cmp(b)));
        ancestors.dedup();
        let mut overlays: Vec<RawPath> = Vec::new();
        for a in ancestors {
            if !overlays.iter().any(|o| a.starts_with(o)) {
                overlays.push(a);
            }
        }
        for e in &overlays {
            if e.as_bytes()
                .iter()
                .any(|b| matches!(b, b',' | b':' | b'\\'))
            {
                return Err(Error::UnsafeOverlayPath(e.clone()));
            }
            // The lower layer must be a mount of the new namespace: the child opens it there,
            // under a descriptor number fixed now so the options can name it.
            let lower_fd = free_fd(LOWER_FD_BASE + lower.len() as libc::c_int)?;
            steps.push(Step::OpenLower {
                path: cstring(e.as_bytes())?,
                fd: lower_fd,
            });
            // Mounts strictly below the overlaid directory, outermost only (a recursive clone
            // takes the ones inside them along).
            let mut below: Vec<&RawPath> = host_mounts
                .iter()
                .filter(|m| m.starts_with(e) && *m != e)
                .collect();
            below.sort_by_key(|m| m.depth());
            let mut outermost: Vec<&RawPath> = Vec::new();
            for m in below {
                if !outermost.iter().any(|o| m.starts_with(o)) {
                    outermost.push(m);
                }
            }
            let mut carried = Vec::new();
            for m in outermost {
                steps.push(Step::CloneTree {
                    path: cstring(m.as_bytes())?,
                    slot: slots,
                });
                carried.push((slots, m.clone()));
                slots += 1;
            }
            let target = cstring(e.as_bytes())?;
            steps.push(Step::Tmpfs {
                target: target.clone(),
                options: cstring(b"mode=0755")?,
            });
            steps.push(Step::Mkdir {
                path: cstring(join(e, UPPER).as_bytes())?,
            });
            steps.push(Step::Mkdir {
                path: cstring(join(e, WORK).as_bytes())?,
            });
            let mut options = format!("lowerdir=/proc/self/fd/{lower_fd},upperdir=").into_bytes();
            options.extend_from_slice(join(e, UPPER).as_bytes());
            options.extend_from_slice(b",workdir=");
            options.extend_from_slice(join(e, WORK).as_bytes());
            steps.push(Step::Overlay {
                target: target.clone(),
                options: cstring(&options)?,
            });
            // The new directories, each component from the ancestor down.
            for (d, _) in missing.iter().filter(|(d, _)| d.starts_with(e)) {
                let mut p = e.clone();
                for c in d.as_bytes()[e.as_bytes().len()..]
                    .split(|b| *b == b'/')
                    .filter(|c| !c.is_empty())
                {
                    p = RawPath::resolve(&p, c);
                    steps.push(Step::Mkdir {
                        path: cstring(p.as_bytes())?,
                    });
                }
            }
            for (slot, m) in carried {
                steps.push(Step::Attach {
                    slot,
                    target: cstring(m.as_bytes())?,
                });
            }
            lower.push(lower_fd);
        }
        let root_flags = remount_flags(Path::new("/"))?;
        // The overlays are part of the root: read-only. Their flags follow the root's.
        for e in &overlays {
            steps.push(Step::ReadOnly {
                target: cstring(e.as_bytes())?,
                flags: root_flags,
            });
        }
        for d in &dirs {
            steps.push(Step::Tmpfs {
                target: cstring(d.as_bytes())?,
                options: cstring(VOLUME_OPTIONS.as_bytes())?,
            });
            let overlay_on = missing
                .iter()
                .find(|(m, _)| m == d)
                .and_then(|(_, _)| overlays.iter().find(|o| d.starts_with(o)).cloned());
            volumes.push(PlannedVolume {
                path: d.clone(),
                created: overlay_on.is_some(),
                overlay_on,
            });
        }
        steps.push(Step::ReadOnly {
            target: cstring(b"/")?,
            flags: root_flags,
        });
        steps.push(Step::Chdir {
            path: cstring(cwd.as_os_str().as_bytes())?,
        });
        Ok(Sandbox {
            steps,
            slots: vec![-1; slots],
            failed: FailedStep::new().map_err(|source| Error::Io {
                action: "map",
                path: "a shared page".into(),
                source,
            })?,
            volumes,
        })
    }

    /// Builds the namespace in the calling process. Only system calls on precomputed data: safe
    /// between fork and exec. On failure the step's index is left for [`Self::failed_step`].
    pub fn enter(&mut self) -> std::io::Result<()> {
        for (i, step) in self.steps.iter().enumerate() {
            if let Err(e) = run_step(step, &mut self.slots) {
                self.failed.set(i);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The step that failed in a child, described, if one did.
    pub fn failed_step(&self) -> Option<String> {
        self.failed
            .get()
            .and_then(|i| self.steps.get(i))
            .map(Step::describe)
    }
}

/// First descriptor number used for overlay lower layers in the child.
const LOWER_FD_BASE: libc::c_int = 512;

/// `fd` when no descriptor of ours uses that number (the child will take it over).
fn free_fd(fd: libc::c_int) -> Result<libc::c_int> {
    // SAFETY: F_GETFD on any number only reads the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
        return Err(Error::Io {
            action: "reserve descriptor",
            path: fd.to_string(),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        });
    }
    Ok(fd)
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn run_step(step: &Step, slots: &mut [libc::c_int]) -> std::io::Result<()> {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: every pointer is a NUL-terminated string owned by the step, or null where the
    // call allows it; return values are checked.
    unsafe {
        match step {
            Step::Unshare => check(libc::unshare(libc::CLONE_NEWNS)),
            Step::MakePrivate => check(libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )),
            Step::CloneTree { path, slot } => {
                let fd = libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
                );
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(s) = slots.get_mut(*slot) {
                    *s = fd as libc::c_int;
                }
                Ok(())
            }
            Step::Tmpfs { target, options } => check(libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )),
            Step::Mkdir { path } => {
                if libc::mkdir(path.as_ptr(), 0o755) < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
                Ok(())
            }
            Step::Overlay { target, options } => check(libc::mount(
                c"overlay".as_ptr(),
                target.as_ptr(),
                c"overlay".as_ptr(),
                0,
                options.as_ptr().cast(),
            )),
            Step::Attach { slot, target } => {
                let fd = slots.get(*slot).copied().unwrap_or(-1);
                let r = libc::syscall(
                    libc::SYS_move_mount,
                    fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                );
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            }
            Step::ReadOnly { target, flags } => check(libc::mount(
                null,
                target.as_ptr(),
                null,
                *flags,
                std::ptr::null(),
            )),
            Step::Chdir { path } => check(libc::chdir(path.as_ptr())),
            Step::OpenLower { path, fd } => {
                let tmp = libc::open(
                    path.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                );
                if tmp < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let r = libc::dup3(tmp, *fd, libc::O_CLOEXEC);
                libc::close(tmp);
                check(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_outermost_and_refuses_root() {
        let d = |s: &str| RawPath::from(s);
        let got = normalize(&[
            d("/var/cache/x/y"),
            d("/tmp/"),
            d("/var/cache/x"),
            d("/tmp"),
        ])
        .unwrap();
        assert_eq!(got, vec![d("/tmp"), d("/var/cache/x")]);
        assert!(matches!(normalize(&[d("/")]), Err(Error::Root)));
        assert!(matches!(normalize(&[d("/a/..")]), Err(Error::Root)));
        assert!(matches!(normalize(&[d("tmp")]), Err(Error::NotAbsolute(_))));
    }

    #[test]
    fn plan_for_missing_and_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let base = RawPath::from(dir.path().to_str().unwrap());
        let existing = join(&base, "exists");
        std::fs::create_dir(host_path(&existing)).unwrap();
        let missing = join(&join(&base, "new"), "deeper");
        let s = Sandbox::plan(&[existing.clone(), missing.clone()], Path::new("/")).unwrap();
        assert_eq!(
            s.volumes,
            vec![
                PlannedVolume {
                    path: existing,
                    created: false,
                    overlay_on: None
                },
                PlannedVolume {
                    path: missing,
                    created: true,
                    overlay_on: Some(base.clone())
                },
            ]
        );
        assert!(s.steps.iter().any(
            |st| matches!(st, Step::Overlay { target, .. } if target.as_bytes() == base.as_bytes())
        ));
        assert!(
            !host_path(&join(&base, "new")).exists(),
            "planning changes nothing"
        );
    }

    #[test]
    fn refuses_files_and_new_top_level_directories() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = RawPath::from(f.path().to_str().unwrap());
        assert!(matches!(
            Sandbox::plan(&[p], Path::new("/")),
            Err(Error::NotADirectory(_))
        ));
        assert!(matches!(
            Sandbox::plan(
                &[RawPath::from("/writepath-surely-missing-dir/x")],
                Path::new("/")
            ),
            Err(Error::NewInRoot(_))
        ));
    }
}
