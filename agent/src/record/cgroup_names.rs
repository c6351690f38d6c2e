//! Names of cgroups learned as they are made, for containers gone before their first record is
//! drained.
//!
//! A record carries its cgroup's id (the cgroup2 directory's inode); the recorder finds the
//! directory, whose path names the pod and container, by walking cgroupfs. An init container
//! that writes a file and exits lives for milliseconds: its cgroup is removed before the next
//! drain, the walk finds nothing, and without a name the writes could not be attributed. This
//! watches the kubelet's cgroup subtree with inotify (cgroupfs sends `IN_CREATE` for a `mkdir`,
//! which is how runc makes a container's cgroup) and remembers each new directory's inode and
//! path at once, on a thread of its own.
//!
//! Bounded: at [`MAX_NAMES`] entries, the names of directories that no longer exist are
//! forgotten first; a directory that cannot be remembered is counted in [`CgroupNames::overflow`].

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// Most names kept (a node runs a few hundred containers; each pod adds two levels).
pub const MAX_NAMES: usize = 65_536;

#[derive(Default)]
struct Shared {
    names: Mutex<HashMap<u64, PathBuf>>,
    overflow: AtomicU64,
}

/// Cgroup paths by id, relative to the cgroup2 root (`/kubepods/besteffort/pod…/…`).
#[derive(Clone)]
pub struct CgroupNames {
    root: PathBuf,
    shared: Arc<Shared>,
}

impl CgroupNames {
    /// Watches `dir` (below the cgroup2 mount `root`) and every directory made below it.
    pub fn watch(root: &Path, dir: &Path) -> std::io::Result<CgroupNames> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
        let names = CgroupNames {
            root: root.to_path_buf(),
            shared: Arc::default(),
        };
        let mut watcher = Watcher {
            inotify,
            dirs: HashMap::new(),
            names: names.clone(),
        };
        watcher.add_tree(dir);
        std::thread::Builder::new()
            .name("cgroup-names".into())
            .spawn(move || watcher.run())?;
        Ok(names)
    }

    /// The path of cgroup `id` relative to the cgroup2 root, if it was seen.
    pub fn get(&self, id: u64) -> Option<String> {
        let names = self.shared.names.lock().ok()?;
        let dir = names.get(&id)?;
        Some(match dir.strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => dir.display().to_string(),
        })
    }

    /// Directories not remembered because the table was full of live ones.
    pub fn overflow(&self) -> u64 {
        self.shared.overflow.load(Ordering::Relaxed)
    }

    fn remember(&self, dir: &Path) {
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let Ok(mut names) = self.shared.names.lock() else {
            return;
        };
        if names.len() >= MAX_NAMES {
            names.retain(|_, d| d.exists());
        }
        if names.len() >= MAX_NAMES {
            self.shared.overflow.fetch_add(1, Ordering::Relaxed);
            return;
        }
        names.insert(meta.ino(), dir.to_path_buf());
    }
}

struct Watcher {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    names: CgroupNames,
}

impl Watcher {
    /// Watches `dir` and, walking it after the watch is in place (so nothing made meanwhile is
    /// missed), every directory below it.
    fn add_tree(&mut self, dir: &Path) {
        let flags = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ONLYDIR;
        if let Ok(wd) = self.inotify.add_watch(dir, flags) {
            self.dirs.insert(wd, dir.to_path_buf());
        }
        self.names.remember(dir);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.add_tree(&e.path());
            }
        }
    }

    fn run(mut self) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cgroup watch ended; short-lived containers may go unnamed");
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    // The directory was removed: its watch went with it.
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                if !ev.mask.contains(AddWatchFlags::IN_ISDIR) {
                    continue;
                }
                let (Some(parent), Some(name)) = (self.dirs.get(&ev.wd), ev.name) else {
                    continue;
                };
                let dir = parent.join(name);
                self.add_tree(&dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_made_and_removed_at_once_are_named() {
        let root = tempfile::tempdir().unwrap();
        let watched = root.path().join("kubepods");
        std::fs::create_dir(&watched).unwrap();
        let names = CgroupNames::watch(root.path(), &watched).unwrap();
        // A pod and its container, made and removed before anyone looks.
        let pod = watched.join("besteffort/pod-1");
        let container = pod.join("c0ffee");
        std::fs::create_dir_all(&container).unwrap();
        let ino = std::fs::metadata(&container).unwrap().ino();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while names.get(ino).is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::remove_dir(&container).unwrap();
        assert_eq!(
            names.get(ino).as_deref(),
            Some("/kubepods/besteffort/pod-1/c0ffee")
        );
        assert_eq!(names.overflow(), 0);
    }
}
