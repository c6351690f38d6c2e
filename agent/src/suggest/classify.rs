//! Classification: does a write land on the container's root filesystem (and so need a
//! volume), or on something that is already writable or managed elsewhere?
//!
//! Each excluded write gets a stable reason string, `KIND:DETAIL` (documented in
//! `docs/suggestions.md`): `pseudo-fs:/proc`, `pseudo-fs:/sys`, `dev:/dev`, `dev-shm:/dev/shm`,
//! `kubelet:/etc/hosts` (also `/etc/hostname`, `/etc/resolv.conf`, `/dev/termination-log`),
//! `serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount`, `volume:MOUNT`,
//! `read-only-mount:MOUNT`, `symlink:TARGET`, `failed-anyway:ERRNO`, `ok-on-read-only-root`,
//! `optional:python-bytecode`.

use crate::path::RawPath;
use crate::report::{Mount, Write};
use crate::suggest::aggregate::WriteSet;
use crate::suggest::alias::{follows_leaf, follows_leaf_op, Aliases};

/// Files kubelet bind-mounts into every container. Outside Kubernetes, Docker mounts the first
/// three too; see `docs/suggestions.md`.
const KUBELET_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/dev/termination-log",
];
/// Where kubelet mounts the service-account token (canonical form of
/// `/var/run/secrets/kubernetes.io/serviceaccount`).
const SERVICE_ACCOUNT_DIR: &str = "/run/secrets/kubernetes.io/serviceaccount";

/// Where a write lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the root filesystem: it needs a volume.
    Rootfs,
    /// Elsewhere, or not needed; the reason string.
    Excluded(String),
}

/// A write with its canonical path and placement.
#[derive(Clone, Debug)]
pub struct Classified<'a> {
    /// The write as recorded.
    pub write: &'a Write,
    /// Its path after following known symlinks.
    pub canonical: RawPath,
    /// Where it lands.
    pub placement: Placement,
}

/// Classifies every write of a set.
pub fn classify_all<'a>(set: &'a WriteSet, aliases: &Aliases) -> Vec<Classified<'a>> {
    let mounts: Vec<(RawPath, &Mount)> = set
        .mounts
        .values()
        .map(|m| (aliases.canonical(&m.mount_point, true), m))
        .collect();
    let root_read_only = mounts
        .iter()
        .any(|(p, m)| p.as_bytes() == b"/" && m.read_only);
    set.writes
        .values()
        .flat_map(|w| {
            let canonical = aliases.canonical(&w.path, follows_leaf(w));
            let mut out = vec![Classified {
                write: w,
                placement: classify(w, &canonical, aliases, &mounts, root_read_only),
                canonical,
            }];
            // One recorded path, two places: a link made there (`symlink`, acting on the
            // name) and then opened (following it, `symlink("/tmp/x", "lnk"); open("lnk")`).
            // The name's directory is needed for the link, the link's target for the open.
            if !follows_leaf(w) && w.ops.iter().any(|op| follows_leaf_op(*op)) {
                let through = aliases.canonical(&w.path, true);
                if through != out[0].canonical {
                    out.push(Classified {
                        write: w,
                        placement: classify(w, &through, aliases, &mounts, root_read_only),
                        canonical: through,
                    });
                }
            }
            out
        })
        .collect()
}

/// Classifies one write; `canonical` is its path with links followed.
fn classify(
    w: &Write,
    canonical: &RawPath,
    aliases: &Aliases,
    mounts: &[(RawPath, &Mount)],
    root_read_only: bool,
) -> Placement {
    if !canonical.is_absolute() {
        return Placement::Rootfs;
    }
    if let Some(reason) = special_path(canonical) {
        let through_link = *canonical != aliases.canonical(&w.path, false);
        return Placement::Excluded(if through_link {
            format!("symlink:{canonical}")
        } else {
            reason
        });
    }
    if let Some(m) = w
        .mount
        .as_ref()
        .filter(|m| m.as_bytes() != b"/" && m.is_absolute())
    {
        let m = aliases.canonical(m, true);
        let read_only = mounts.iter().any(|(p, mount)| *p == m && mount.read_only);
        return Placement::Excluded(mount_reason(&m, read_only));
    }
    let longest = mounts
        .iter()
        .filter(|(p, _)| canonical.starts_with(p))
        .max_by_key(|(p, _)| p.as_bytes().len());
    if let Some((p, m)) = longest.filter(|(p, _)| p.as_bytes() != b"/") {
        return Placement::Excluded(mount_reason(p, m.read_only));
    }
    if !w.results.is_empty() && !w.results.contains_key("ok") && !w.results.contains_key("EROFS") {
        let errno = w
            .results
            .keys()
            .next()
            .map(String::as_str)
            .unwrap_or("error");
        return Placement::Excluded(format!("failed-anyway:{errno}"));
    }
    if root_read_only && !w.results.is_empty() && w.results.keys().all(|r| r == "ok") {
        return Placement::Excluded("ok-on-read-only-root".to_string());
    }
    if is_python_bytecode(canonical) {
        return Placement::Excluded("optional:python-bytecode".to_string());
    }
    Placement::Rootfs
}

/// The reason for a path that is never on the root filesystem, or kubelet-managed.
fn special_path(p: &RawPath) -> Option<String> {
    let under = |dir: &str| p.starts_with(&RawPath::from(dir));
    if under("/proc") {
        return Some("pseudo-fs:/proc".into());
    }
    if under("/sys") {
        return Some("pseudo-fs:/sys".into());
    }
    if let Some(file) = KUBELET_FILES.iter().find(|f| p.as_bytes() == f.as_bytes()) {
        return Some(format!("kubelet:{file}"));
    }
    if under("/dev/shm") {
        return Some("dev-shm:/dev/shm".into());
    }
    if under("/dev") {
        return Some("dev:/dev".into());
    }
    if under(SERVICE_ACCOUNT_DIR) {
        return Some("serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount".into());
    }
    None
}

fn mount_reason(mount_point: &RawPath, read_only: bool) -> String {
    if read_only {
        format!("read-only-mount:{mount_point}")
    } else {
        format!("volume:{mount_point}")
    }
}

/// CPython's bytecode cache: `…/__pycache__/NAME.TAG.pyc`, its temporary `….pyc.NNNN`, and the
/// `__pycache__` directory itself. CPython ignores every failure to write them, so they need no
/// volume (`PYTHONDONTWRITEBYTECODE=1` stops the attempts).
pub fn is_python_bytecode(p: &RawPath) -> bool {
    if p.file_name() == b"__pycache__" {
        return true;
    }
    if p.parent().file_name() != b"__pycache__" {
        return false;
    }
    let name = p.file_name();
    if name.ends_with(b".pyc") {
        return true;
    }
    match name.iter().rposition(|b| *b == b'.') {
        Some(dot) => {
            let (stem, suffix) = (&name[..dot], &name[dot + 1..]);
            stem.ends_with(b".pyc") && !suffix.is_empty() && suffix.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::OpName;

    fn write(path: &str, results: &[(&str, u64)]) -> Write {
        Write {
            path: RawPath::from(path),
            ops: vec![OpName::Create],
            count: 1,
            results: results.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            ..Default::default()
        }
    }

    fn mount(p: &str, fs: &str, ro: bool) -> Mount {
        Mount {
            mount_point: RawPath::from(p),
            fs_type: fs.into(),
            source: String::new(),
            read_only: ro,
        }
    }

    fn run(
        writes: Vec<Write>,
        mounts: Vec<Mount>,
        links: &[(&str, &str)],
    ) -> Vec<(String, Placement)> {
        let mut set = WriteSet::default();
        for w in writes {
            set.writes.insert(w.path.clone(), w);
        }
        for m in mounts {
            set.mounts.insert(m.mount_point.clone(), m);
        }
        for (f, t) in links {
            set.symlinks.insert(RawPath::from(*f), RawPath::from(*t));
        }
        let aliases = Aliases::new(set.writes.values(), &set.symlinks);
        let out: BTreeMap<String, Placement> = classify_all(&set, &aliases)
            .into_iter()
            .map(|c| (c.write.path.to_string(), c.placement))
            .collect();
        out.into_iter().collect()
    }

    fn excluded(reason: &str) -> Placement {
        Placement::Excluded(reason.to_string())
    }

    #[test]
    fn table() {
        let ok = &[("ok", 1)][..];
        let got = run(
            vec![
                write("/etc/hosts", ok),
                write("/etc/hosts.bak", ok),
                write("/dev/termination-log", ok),
                write("/dev/shm/PostgreSQL.1", ok),
                write("/dev/null", ok),
                write("/proc/self/attr/exec", ok),
                write("/sys/fs/cgroup/x", ok),
                write(
                    "/var/run/secrets/kubernetes.io/serviceaccount/token",
                    &[("EROFS", 1)],
                ),
                write("/data/db", ok),
                write("/data2/db", ok),
                write("/config/app.yaml", &[("EROFS", 2)]),
                write("/tmp/x", &[("ok", 1), ("EROFS", 1)]),
                write("/var/run/x.pid", &[("EEXIST", 1)]),
                write("/app/__pycache__/m.cpython-312.pyc.140234", ok),
                write("/app/__pycache__", ok),
                write("/var/log/nginx/error.log", ok),
            ],
            vec![
                mount("/", "overlay", false),
                mount("/data", "ext4", false),
                mount("/config", "tmpfs", true),
            ],
            &[("/var/log/nginx/error.log", "/dev/stderr")],
        );
        let want = vec![
            ("/app/__pycache__", excluded("optional:python-bytecode")),
            (
                "/app/__pycache__/m.cpython-312.pyc.140234",
                excluded("optional:python-bytecode"),
            ),
            ("/config/app.yaml", excluded("read-only-mount:/config")),
            ("/data/db", excluded("volume:/data")),
            ("/data2/db", Placement::Rootfs),
            ("/dev/null", excluded("dev:/dev")),
            ("/dev/shm/PostgreSQL.1", excluded("dev-shm:/dev/shm")),
            (
                "/dev/termination-log",
                excluded("kubelet:/dev/termination-log"),
            ),
            ("/etc/hosts", excluded("kubelet:/etc/hosts")),
            ("/etc/hosts.bak", Placement::Rootfs),
            ("/proc/self/attr/exec", excluded("pseudo-fs:/proc")),
            ("/sys/fs/cgroup/x", excluded("pseudo-fs:/sys")),
            ("/tmp/x", Placement::Rootfs),
            ("/var/log/nginx/error.log", excluded("symlink:/dev/stderr")),
            (
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                excluded("serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount"),
            ),
            ("/var/run/x.pid", excluded("failed-anyway:EEXIST")),
        ];
        let want: Vec<(String, Placement)> =
            want.into_iter().map(|(p, r)| (p.to_string(), r)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn recorder_mount_field_wins_over_lexical_prefix() {
        let mut w = write("/srv/x", &[("ok", 1)]);
        w.mount = Some(RawPath::from("/srv"));
        let got = run(vec![w], vec![], &[]);
        assert_eq!(got[0].1, excluded("volume:/srv"));
    }

    #[test]
    fn success_on_a_read_only_root_means_it_landed_elsewhere() {
        let got = run(
            vec![
                write("/var/log/app.log", &[("ok", 3)]),
                write("/var/log/other.log", &[("EROFS", 3)]),
            ],
            vec![mount("/", "overlay", true)],
            &[],
        );
        assert_eq!(got[0].1, excluded("ok-on-read-only-root"), "{got:?}");
        assert_eq!(got[1].1, Placement::Rootfs);
    }

    #[test]
    fn bytecode_names() {
        for (p, want) in [
            ("/a/__pycache__/m.cpython-312.pyc", true),
            ("/a/__pycache__/m.cpython-312.pyc.99", true),
            ("/a/__pycache__", true),
            ("/a/m.pyc", false),
            ("/a/__pycache__/notes.txt", false),
            ("/a/__pycache__/m.cpython-312.pyc.x", false),
        ] {
            assert_eq!(is_python_bytecode(&RawPath::from(p)), want, "{p}");
        }
    }
}
