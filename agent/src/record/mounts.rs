//! Mount tables of the writers, per mount namespace, and which mount a path lands on.

use std::collections::HashMap;
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
    let text = std::fs::read(format!("/proc/{pid}/mountinfo")).ok()?;
    let mounts = parse_mountinfo(&text);
    (!mounts.is_empty()).then_some(mounts)
}

/// Parses `/proc/<pid>/mountinfo` text (proc_pid_mountinfo(5)) into the visible mount table:
/// later mounts over the same point hide earlier ones, sorted by depth then path. Bytes are kept
/// as they are (mount points need not be UTF-8) and the kernel's octal escapes (`\040` for a
/// space) are undone. Malformed lines are skipped; nothing here panics on any input.
pub fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = text
        .split(|b| *b == b'\n')
        .filter_map(parse_mountinfo_line)
        .collect();
    let mut seen = std::collections::HashSet::new();
    mounts.reverse();
    mounts.retain(|m| seen.insert(m.mount_point.clone()));
    mounts.sort_by(|a, b| {
        a.mount_point
            .depth()
            .cmp(&b.mount_point.depth())
            .then(a.mount_point.cmp(&b.mount_point))
    });
    mounts
}

/// One mountinfo line: `id parent maj:min root mount-point options [optional…] - fstype source
/// super-options`.
fn parse_mountinfo_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let sep = fields.iter().position(|f| *f == b"-")?;
    if sep < 6 {
        return None;
    }
    let mount_point = unescape(fields[4]);
    if mount_point.first() != Some(&b'/') {
        return None;
    }
    let read_only = fields[5].split(|b| *b == b',').any(|o| o == b"ro");
    let fs_type = String::from_utf8_lossy(&unescape(fields.get(sep + 1)?)).into_owned();
    let source = fields
        .get(sep + 2)
        .map(|s| String::from_utf8_lossy(&unescape(s)).into_owned())
        .unwrap_or_default();
    Some(Mount {
        mount_point: RawPath::from_bytes(mount_point),
        fs_type,
        source,
        read_only,
    })
}

/// Undoes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            if let Some(oct) = field.get(i + 1..i + 4) {
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = oct.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                    if let Ok(b) = u8::try_from(v) {
                        out.push(b);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

impl MountTables {
    /// The table of namespace `ns`, reading it from `pid` when `pid` is in that namespace (or
    /// `ns` is unknown, 0) and the table is not known yet.
    pub fn table_for(&mut self, ns: u64, pid: u32) -> Option<&Vec<Mount>> {
        let ns = if ns == 0 { mnt_ns_of(pid)? } else { ns };
        match self.by_ns.entry(ns) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                // The writer may be gone already: any live process in the namespace will do.
                let reader = [pid, std::process::id()]
                    .into_iter()
                    .find(|p| mnt_ns_of(*p) == Some(ns))
                    .or_else(|| find_process_in(ns))?;
                Some(e.insert(read_mount_table(reader)?))
            }
        }
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
    fn parses_mountinfo_with_escapes_and_bad_lines() {
        let text = b"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
            garbage line\n\
            \n\
            30 27 0:27 / /tmp rw - tmpfs tmpfs rw\n\
            31 27 0:28 / /data/my\\040vol\\012x\\377 ro,nosuid shared:1 - ext4 /dev/sdb ro\n\
            32 30 0:29 / /tmp rw - tmpfs other rw\n\
            33 27 0:30 / relative rw - tmpfs t rw\n\
            34 27 0:31 / /short -\n";
        let t = parse_mountinfo(text);
        let points: Vec<&[u8]> = t.iter().map(|m| m.mount_point.as_bytes()).collect();
        assert_eq!(
            points,
            vec![&b"/"[..], b"/tmp", b"/data/my vol\nx\xff"],
            "{t:?}"
        );
        assert_eq!(
            t[1].source, "other",
            "the later mount over /tmp hides the first"
        );
        assert!(t[2].read_only && !t[0].read_only);
        assert_eq!(t[2].fs_type, "ext4");
        assert!(parse_mountinfo(b"").is_empty());
        assert!(parse_mountinfo(b"1 2 3 4 \\ - - -").is_empty());
    }

    #[test]
    fn reads_own_table() {
        let t = read_mount_table(std::process::id()).expect("own mountinfo");
        assert_eq!(t[0].mount_point, RawPath::from("/"));
        assert!(t.iter().any(|m| m.fs_type == "proc"));
    }
}
