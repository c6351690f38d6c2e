//! Mount tables of the writers, per mount namespace, and which mount a path lands on.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;

use crate::path::RawPath;
use crate::report::Mount;

/// Mount tables by mount-namespace inode, read once per namespace from a live process in it.
#[derive(Default)]
pub struct MountTables {
    by_ns: HashMap<u64, Vec<Mount>>,
}

/// Mount namespace inode of a process, if it is still alive.
pub fn mnt_ns_of(pid: u32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| m.ino())
}

/// The mount table a process sees, mount points relative to its root.
pub fn read_mount_table(pid: u32) -> Option<Vec<Mount>> {
    let infos = procfs::process::Process::new(pid as i32)
        .ok()?
        .mountinfo()
        .ok()?;
    let mut mounts: Vec<Mount> = infos
        .into_iter()
        .map(|m| Mount {
            mount_point: RawPath::from_bytes(m.mount_point.as_os_str().as_bytes().to_vec()),
            fs_type: m.fs_type,
            source: m.mount_source.unwrap_or_default(),
            read_only: m.mount_options.contains_key("ro"),
        })
        .collect();
    // Later mounts over the same point hide earlier ones: keep the last of each point.
    let mut seen = std::collections::HashSet::new();
    mounts.reverse();
    mounts.retain(|m| seen.insert(m.mount_point.clone()));
    mounts.sort_by(|a, b| {
        a.mount_point
            .depth()
            .cmp(&b.mount_point.depth())
            .then(a.mount_point.cmp(&b.mount_point))
    });
    Some(mounts)
}

impl MountTables {
    /// The table of namespace `ns`, reading it from `pid` when `pid` is in that namespace (or
    /// `ns` is unknown, 0) and the table is not known yet.
    pub fn table_for(&mut self, ns: u64, pid: u32) -> Option<&Vec<Mount>> {
        let ns = if ns == 0 { mnt_ns_of(pid)? } else { ns };
        if !self.by_ns.contains_key(&ns) {
            // The writer may be gone already: any live process in the namespace will do.
            let reader = [pid, std::process::id()]
                .into_iter()
                .find(|p| mnt_ns_of(*p) == Some(ns))
                .or_else(|| find_process_in(ns))?;
            let table = read_mount_table(reader)?;
            self.by_ns.insert(ns, table);
        }
        self.by_ns.get(&ns)
    }
}

/// Some process whose mount namespace is `ns` (bounded scan of /proc).
fn find_process_in(ns: u64) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .take(100_000)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| mnt_ns_of(*pid) == Some(ns))
}

/// The mount `path` lands on: the longest mount point that is a prefix of it.
pub fn landing<'a>(mounts: &'a [Mount], path: &RawPath) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.depth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, fs: &str) -> Mount {
        Mount {
            mount_point: p.into(),
            fs_type: fs.into(),
            source: String::new(),
            read_only: false,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = vec![
            m("/", "overlay"),
            m("/tmp", "tmpfs"),
            m("/var/lib/data", "ext4"),
        ];
        let at = |p: &str| landing(&t, &RawPath::from(p)).map(|m| m.fs_type.as_str());
        assert_eq!(at("/tmp/x"), Some("tmpfs"));
        assert_eq!(at("/tmpfoo"), Some("overlay"));
        assert_eq!(at("/var/lib/data/pg"), Some("ext4"));
        assert_eq!(at("/etc/passwd"), Some("overlay"));
    }

    #[test]
    fn reads_own_table() {
        let t = read_mount_table(std::process::id()).expect("own mountinfo");
        assert_eq!(t[0].mount_point, RawPath::from("/"));
        assert!(t.iter().any(|m| m.fs_type == "proc"));
    }
}
