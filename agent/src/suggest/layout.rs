//! Layout: which directories to mount so every root-filesystem write works, and nothing
//! broader.
//!
//! 1. Each write needs one directory writable: the directory that holds the name it creates,
//!    removes, renames or changes (never the file itself: temp-then-rename and `sed -i` create
//!    new names beside the file). A metadata change (`chmod`, `chown`, …) of a directory needs
//!    that directory itself.
//! 2. A needed directory the workload created (`mkdir`, including the `mkdir` call itself when
//!    the directory is kept) is covered by the directory above the
//!    topmost created one, when that directory existed in the image empty. When it has image
//!    content (or is a system tree) the topmost created directory becomes the mount point
//!    instead: the kubelet creates it, and `mkdir -p` is satisfied. A created directory with a
//!    generated name (`tomcat.8080.4242…`, `tmpa81f3c`) cannot be mounted in advance, so its
//!    parent is used whatever it holds.
//! 3. Never `/` and never a whole system tree ([`SYSTEM_TREES`]); a write that only such a
//!    directory would serve is unresolved.
//! 4. A directory below another chosen one is dropped: the outer mount covers it.

use std::collections::{BTreeMap, BTreeSet};

use crate::path::RawPath;
use crate::report::{DirectoryContent, OpName};
use crate::suggest::alias::Aliases;
use crate::suggest::classify::Classified;

/// Directories that are never suggested: `/`, the system hierarchies of the FHS, and the shared
/// trees below `/usr` and `/var/lib` that hold installed software and package databases.
/// `/root` and `/home/USER` are homes, not system trees: they may be suggested (usually a
/// deeper directory is chosen, since homes hold dotfiles). `/tmp`, `/var/tmp`, `/run`,
/// `/var/log` and `/var/cache` may be suggested too; image content there is reported as
/// shadowing.
pub const SYSTEM_TREES: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/local/share",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/lib",
];

/// Whether `p` is `/` or a whole system tree.
pub fn is_system_tree(p: &RawPath) -> bool {
    SYSTEM_TREES.iter().any(|t| p.as_bytes() == t.as_bytes())
}

/// A chosen mount directory and the writes it serves.
#[derive(Clone, Debug)]
pub struct Anchor<'a> {
    /// The directory (canonical).
    pub path: RawPath,
    /// The writes below it.
    pub writes: Vec<&'a Classified<'a>>,
}

/// A root-filesystem write no directory can serve.
#[derive(Clone, Debug)]
pub struct Unplaced<'a> {
    /// The write.
    pub write: &'a Classified<'a>,
    /// The directory that would have to be writable.
    pub directory: RawPath,
    /// Why it is not suggested.
    pub reason: String,
}

/// The outcome of [`layout`].
#[derive(Clone, Debug, Default)]
pub struct Layout<'a> {
    /// Chosen directories, sorted by path, none below another.
    pub anchors: Vec<Anchor<'a>>,
    /// Writes left without a directory.
    pub unplaced: Vec<Unplaced<'a>>,
}

/// What is known about the image's directories.
pub struct DirIndex<'a> {
    /// Image content of written-to directories (canonical paths).
    content: BTreeMap<RawPath, &'a DirectoryContent>,
    /// Directories the workload created.
    created: BTreeSet<RawPath>,
    /// Directories `mkdir` found already there.
    existing: BTreeSet<RawPath>,
    /// Paths known to be directories.
    dirs: BTreeSet<RawPath>,
}

impl<'a> DirIndex<'a> {
    /// Builds the index from the directory contents and the writes.
    pub fn new(
        directories: &'a BTreeMap<RawPath, DirectoryContent>,
        writes: &[Classified<'_>],
        aliases: &Aliases,
    ) -> DirIndex<'a> {
        let content: BTreeMap<RawPath, &DirectoryContent> = directories
            .values()
            .map(|d| (aliases.canonical(&d.path, true), d))
            .collect();
        let mut index = DirIndex {
            dirs: content.keys().cloned().collect(),
            content,
            created: BTreeSet::new(),
            existing: BTreeSet::new(),
        };
        for c in writes {
            let mut p = c.canonical.parent();
            while p.as_bytes() != b"/" && index.dirs.insert(p.clone()) {
                p = p.parent();
            }
            if c.write.ops.contains(&OpName::Mkdir) {
                index.dirs.insert(c.canonical.clone());
                // `mkdir -p` of a directory that is there fails with EEXIST (even on a read-only
                // root); results are per path, not per call, so any EEXIST means it existed.
                let results = &c.write.results;
                if results.contains_key("EEXIST") {
                    index.existing.insert(c.canonical.clone());
                } else if results.is_empty()
                    || results.contains_key("ok")
                    || results.contains_key("EROFS")
                {
                    index.created.insert(c.canonical.clone());
                }
            }
        }
        index
    }

    /// Whether the directory was in the image (unknown directories are assumed to be).
    pub fn existed(&self, dir: &RawPath) -> bool {
        if let Some(d) = self.content.get(dir) {
            return d.existed;
        }
        self.existing.contains(dir) || !self.created.contains(dir)
    }

    /// What the image had in the directory, when recorded.
    pub fn content(&self, dir: &RawPath) -> Option<&'a DirectoryContent> {
        self.content.get(dir).copied()
    }

    /// Whether the path is known to be a directory.
    pub fn is_dir(&self, p: &RawPath) -> bool {
        self.dirs.contains(p)
    }
}

/// Chooses the mount directories for the root-filesystem writes.
pub fn layout<'a>(rootfs: &[&'a Classified<'a>], index: &DirIndex<'_>) -> Layout<'a> {
    let mut chosen: BTreeMap<RawPath, Vec<&'a Classified<'a>>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for c in rootfs {
        if !c.canonical.is_absolute() || c.write.issues.iter().any(|i| i == "base-unresolved") {
            unplaced.push(Unplaced {
                write: c,
                directory: c.canonical.clone(),
                reason: "relative-path".into(),
            });
            continue;
        }
        let needed = needed_dir(c, index);
        match anchor_for(&needed, index) {
            Ok(dir) => chosen.entry(dir).or_default().push(c),
            Err(reason) => unplaced.push(Unplaced {
                write: c,
                directory: needed,
                reason,
            }),
        }
    }
    // Drop directories below another chosen one: each joins its outermost chosen ancestor.
    let chosen_dirs: BTreeSet<RawPath> = chosen.keys().cloned().collect();
    let outermost = |path: &RawPath| {
        let mut found = path.clone();
        let mut p = path.clone();
        while p.as_bytes() != b"/" {
            p = p.parent();
            if chosen_dirs.contains(&p) {
                found = p.clone();
            }
        }
        found
    };
    let mut merged: BTreeMap<RawPath, Vec<&'a Classified<'a>>> = BTreeMap::new();
    for (path, writes) in chosen {
        merged.entry(outermost(&path)).or_default().extend(writes);
    }
    let anchors = merged
        .into_iter()
        .map(|(path, writes)| Anchor { path, writes })
        .collect();
    Layout { anchors, unplaced }
}

/// The directory a write needs writable.
fn needed_dir(c: &Classified<'_>, index: &DirIndex<'_>) -> RawPath {
    // A `mkdir` of a directory that was already there created nothing.
    let existed = index.is_dir(&c.canonical) && index.existed(&c.canonical);
    let changes_only_itself = c
        .write
        .ops
        .iter()
        .filter(|op| !(existed && **op == OpName::Mkdir))
        .all(|op| !op.creates_entry() && !op.removes_entry());
    // A directory the workload creates and keeps can be the mount point itself: `mkdir` then
    // meets the mounted directory (EEXIST, which `mkdir -p` and most runtimes accept).
    let keeps_created_dir = c.write.ops.contains(&OpName::Mkdir)
        && !existed
        && !c.write.ops.iter().any(|op| op.removes_entry());
    if keeps_created_dir {
        return c.canonical.clone();
    }
    if changes_only_itself && index.is_dir(&c.canonical) && c.canonical.as_bytes() != b"/" {
        c.canonical.clone()
    } else {
        c.canonical.parent()
    }
}

/// The mount directory serving `needed`, or why there is none.
fn anchor_for(needed: &RawPath, index: &DirIndex<'_>) -> Result<RawPath, String> {
    // Climb to the topmost directory the workload created.
    let mut top_created = None;
    let mut existing = needed.clone();
    while existing.as_bytes() != b"/" && !index.existed(&existing) {
        top_created = Some(existing.clone());
        existing = existing.parent();
    }
    let Some(created) = top_created else {
        return if is_system_tree(&existing) {
            Err(format!(
                "{}:{existing}",
                if existing.as_bytes() == b"/" {
                    "root"
                } else {
                    "system-tree"
                }
            ))
        } else {
            Ok(existing)
        };
    };
    let parent_usable = !is_system_tree(&existing);
    let parent_empty = index
        .content(&existing)
        .is_some_and(|d| d.image_entries == 0);
    if parent_usable && (parent_empty || looks_generated(created.file_name())) {
        Ok(existing)
    } else if looks_generated(created.file_name()) {
        Err(format!("generated-name:{created}"))
    } else {
        Ok(created)
    }
}

/// Whether a name looks generated at run time (random or numbered), so it will differ next
/// run: a run of 3+ digits (`tomcat.8080.5482961`, `2026-11-27`), or a 6+ character
/// alphanumeric run where letters and digits alternate 3+ times (`tmpa81f3c`), which
/// version-like names (`python3`, `lib64`) do not.
pub fn looks_generated(name: &[u8]) -> bool {
    name.split(|b| !b.is_ascii_alphanumeric()).any(|run| {
        let longest_digits = run
            .split(|b| !b.is_ascii_digit())
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        let switches = run
            .windows(2)
            .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
            .count();
        longest_digits >= 3 || (run.len() >= 6 && switches >= 3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Write;
    use crate::suggest::classify::Placement;

    #[test]
    fn generated_names() {
        for (n, want) in [
            ("tomcat.8080.5482961", true),
            ("tmpa81f3c9", true),
            ("upload_3f9a2b", true),
            ("client_temp", false),
            ("conf.d", false),
            ("python3", false),
            ("logs", false),
            ("v2", false),
        ] {
            assert_eq!(looks_generated(n.as_bytes()), want, "{n}");
        }
    }

    #[test]
    fn system_trees() {
        assert!(is_system_tree(&RawPath::from("/etc")));
        assert!(is_system_tree(&RawPath::from("/var/lib")));
        assert!(!is_system_tree(&RawPath::from("/var/lib/postgresql")));
        assert!(!is_system_tree(&RawPath::from("/root")));
    }

    fn classified(w: &Write) -> Classified<'_> {
        Classified {
            write: w,
            canonical: w.path.clone(),
            placement: Placement::Rootfs,
        }
    }

    #[test]
    fn metadata_change_of_a_directory_needs_the_directory() {
        let a = Write {
            path: RawPath::from("/srv/app/data"),
            ops: vec![OpName::Chmod],
            ..Default::default()
        };
        let b = Write {
            path: RawPath::from("/srv/app/data/x"),
            ops: vec![OpName::Create],
            ..Default::default()
        };
        let all = [classified(&a), classified(&b)];
        let dirs = BTreeMap::new();
        let index = DirIndex::new(&dirs, &all, &Aliases::default());
        let refs: Vec<&Classified<'_>> = all.iter().collect();
        let l = layout(&refs, &index);
        let paths: Vec<String> = l.anchors.iter().map(|a| a.path.to_string()).collect();
        assert_eq!(paths, ["/srv/app/data"]);
    }

    #[test]
    fn nested_directories_join_the_outermost_even_with_siblings_between() {
        let ws: Vec<Write> = ["/a/x", "/a-c/x", "/a/b/c/x", "/a/d/x"]
            .iter()
            .map(|p| Write {
                path: RawPath::from(*p),
                ops: vec![OpName::Create],
                ..Default::default()
            })
            .collect();
        let all: Vec<Classified<'_>> = ws.iter().map(classified).collect();
        let dirs = BTreeMap::new();
        let index = DirIndex::new(&dirs, &all, &Aliases::default());
        let refs: Vec<&Classified<'_>> = all.iter().collect();
        let l = layout(&refs, &index);
        let got: Vec<(String, usize)> = l
            .anchors
            .iter()
            .map(|a| (a.path.to_string(), a.writes.len()))
            .collect();
        assert_eq!(got, [("/a".to_string(), 3), ("/a-c".to_string(), 1)]);
    }
}
