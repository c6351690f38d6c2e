//! Description of a chosen directory: its volume name, purpose, volume kind, evidence,
//! shadowing, and the alternatives and environment variables that remove writes.

use std::collections::BTreeSet;

use crate::path::RawPath;
use crate::report::OpName;
use crate::suggest::aggregate::time_key;
use crate::suggest::classify::Classified;
use crate::suggest::layout::{Anchor, DirIndex};
use crate::suggest::model::{
    EnvSuggestion, Evidence, Purpose, Shadowing, VolumeKind, VolumeSuggestion,
};

/// How many sample paths the evidence keeps.
const SAMPLE_PATHS: usize = 5;
/// Calls below a directory from which it counts as hot (for `medium: Memory`).
const HOT_CALLS: u64 = 1000;
/// Largest observed size (sum over written files) for which `medium: Memory` is advised.
const MEMORY_MAX_BYTES: u64 = 64 << 20;
/// Smallest `sizeLimit` advised for a memory-backed emptyDir.
const MEMORY_MIN_LIMIT: u64 = 16 << 20;
/// Longest Kubernetes volume name (a DNS label).
const MAX_NAME: usize = 63;

/// Builds the suggestion for one chosen directory; `taken` holds volume names already used in
/// this container and receives the new one.
pub fn volume(
    anchor: &Anchor<'_>,
    index: &DirIndex<'_>,
    taken: &mut BTreeSet<String>,
) -> VolumeSuggestion {
    let name = unique_name(&anchor.path, taken);
    let purpose = purpose(&anchor.path, &anchor.writes);
    let volume = match purpose {
        Purpose::Data => VolumeKind::PersistentVolumeClaim {
            claim_name: name.clone(),
        },
        Purpose::Temp => match memory_limit(&anchor.writes, index) {
            Some(limit) => VolumeKind::EmptyDir {
                medium: Some("Memory".into()),
                size_limit: Some(limit),
            },
            None => VolumeKind::EmptyDir {
                medium: None,
                size_limit: None,
            },
        },
        _ => VolumeKind::EmptyDir {
            medium: None,
            size_limit: None,
        },
    };
    let content = index.content(&anchor.path);
    // Not seen in the image, and not made by the workload: what it holds is unknown.
    let shadowing_unknown = content.is_none() && index.existed(&anchor.path);
    let shadowing = content
        .filter(|d| d.existed && d.image_entries > 0)
        .map(|d| Shadowing {
            image_entries: d.image_entries,
            sample: d.sample.clone(),
            remedies: vec!["init-container-copy".to_string()],
        });
    let failed_writes = anchor
        .writes
        .iter()
        .map(|c| c.write.results.get("EROFS").copied().unwrap_or(0))
        .fold(0, u64::saturating_add);
    VolumeSuggestion {
        mount_path: anchor.path.clone(),
        name,
        volume,
        purpose,
        evidence: evidence(&anchor.writes),
        shadowing,
        shadowing_unknown,
        failed_writes,
        alternatives: alternatives(&anchor.path, purpose, &anchor.writes),
    }
}

/// The evidence behind a directory.
fn evidence(writes: &[&Classified<'_>]) -> Evidence {
    let mut paths: Vec<&RawPath> = writes.iter().map(|c| &c.write.path).collect();
    paths.sort();
    paths.dedup();
    let ops: BTreeSet<OpName> = writes
        .iter()
        .flat_map(|c| c.write.ops.iter().copied())
        .collect();
    let first_seen = writes
        .iter()
        .map(|c| c.write.first_seen.as_str())
        .filter(|s| !s.is_empty())
        .min_by_key(|s| time_key(s))
        .unwrap_or_default();
    let last_seen = writes
        .iter()
        .map(|c| c.write.last_seen.as_str())
        .max_by_key(|s| time_key(s))
        .unwrap_or_default();
    Evidence {
        paths: paths.len() as u64,
        sample_paths: paths
            .iter()
            .take(SAMPLE_PATHS)
            .map(|p| (*p).clone())
            .collect(),
        ops: ops.into_iter().collect(),
        count: writes
            .iter()
            .map(|c| c.write.count)
            .fold(0, u64::saturating_add),
        first_seen: first_seen.to_string(),
        last_seen: last_seen.to_string(),
    }
}

/// Lower-cased components of a path, lossily decoded.
fn components(p: &RawPath) -> Vec<String> {
    p.components()
        .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase())
        .collect()
}

/// Whether `p` is a home directory (`/root`, `/home/USER`).
pub fn is_home(p: &RawPath) -> bool {
    let c = components(p);
    c == ["root"] || (c.len() == 2 && c[0] == "home")
}

/// What a directory is for, from its path first, then from the files written in it.
pub fn purpose(dir: &RawPath, writes: &[&Classified<'_>]) -> Purpose {
    let comps = components(dir);
    let has = |names: &[&str]| comps.iter().any(|c| names.contains(&c.as_str()));
    // What the files are says more than a temp directory's name: a database, a git
    // repository or a virtual environment in /var/tmp is not temporary.
    let content = content_purpose(writes);
    if has(&["tmp", "temp", ".tmp"])
        || comps
            .iter()
            .any(|c| c.ends_with("_temp") || c.ends_with("-tmp"))
    {
        return content.unwrap_or(Purpose::Temp);
    }
    if comps.first().is_some_and(|c| c == "run") || has(&["run", "lock", "locks", "sockets"]) {
        return Purpose::Run;
    }
    if has(&["log", "logs"]) {
        return Purpose::Log;
    }
    if has(&[
        "cache",
        ".cache",
        "caches",
        ".npm",
        ".yarn",
        ".m2",
        ".gradle",
        ".pnpm-store",
    ]) {
        return Purpose::Cache;
    }
    if has(DATA_NAMES) {
        return Purpose::Data;
    }
    if let Some(p) = content {
        return p;
    }
    if is_home(dir) || is_home(&dir.parent()) {
        return Purpose::Home;
    }
    let names: Vec<String> = writes
        .iter()
        .map(|c| String::from_utf8_lossy(c.canonical.file_name()).to_ascii_lowercase())
        .collect();
    let share =
        |pred: &dyn Fn(&str) -> bool| names.iter().filter(|n| pred(n)).count() * 2 > names.len();
    if share(&|n| n.ends_with(".log") || n.contains(".log.")) {
        return Purpose::Log;
    }
    let binds = writes.iter().any(|c| c.write.ops.contains(&OpName::Bind));
    if binds || share(&|n| n.ends_with(".pid") || n.ends_with(".sock") || n.ends_with(".lock")) {
        return Purpose::Run;
    }
    if saved_by_rename(writes) {
        return Purpose::Data;
    }
    if transient(writes) {
        Purpose::Temp
    } else {
        Purpose::Cache
    }
}

/// A purpose the written files themselves give away, whatever the directory is called:
/// database files (by extension, or a SQLite `-journal`/`-wal`/`-shm` file beside its
/// database) are data; a git repository (`.git`), a Python virtual environment
/// (`pyvenv.cfg`), installed packages (`site-packages`, `node_modules`) are a cache the
/// workload can fetch or build again.
fn content_purpose(writes: &[&Classified<'_>]) -> Option<Purpose> {
    let names: BTreeSet<&[u8]> = writes.iter().map(|c| c.canonical.as_bytes()).collect();
    let database = writes.iter().any(|c| {
        let p = c.canonical.as_bytes();
        looks_like_data(&c.canonical)
            || [&b"-journal"[..], b"-wal", b"-shm"].iter().any(|suffix| {
                p.strip_suffix(*suffix)
                    .is_some_and(|db| !db.is_empty() && names.contains(db))
            })
    });
    if database {
        return Some(Purpose::Data);
    }
    let fetched = writes.iter().any(|c| {
        c.canonical.file_name() == b"pyvenv.cfg"
            || components(&c.canonical)
                .iter()
                .any(|n| n == ".git" || n == "site-packages" || n == "node_modules")
    });
    fetched.then_some(Purpose::Cache)
}

/// Whether a file is saved by writing a temporary beside it and renaming it over the name
/// (`state.json.tmp` -> `state.json`), the way state meant to survive is saved. A temporary
/// with an unrelated name (`sed -i`'s `sedXXXXXX`) is an edit, not a save.
fn saved_by_rename(writes: &[&Classified<'_>]) -> bool {
    writes.iter().any(|c| {
        let w = c.write;
        if !w.ops.contains(&OpName::RenameTo) || w.ops.iter().any(|op| op.removes_entry()) {
            return false;
        }
        let name = c.canonical.file_name();
        w.related.iter().any(|from| {
            let from_name = from.file_name();
            from.parent() == w.path.parent()
                && from_name != name
                && [from_name, from_name.strip_prefix(b".").unwrap_or(from_name)]
                    .iter()
                    .any(|f| {
                        f.strip_prefix(name).is_some_and(|rest| {
                            rest.first() == Some(&b'.') || rest.first() == Some(&b'~')
                        })
                    })
        })
    })
}

/// Directory names that hold data that should survive a restart: generic names and the data
/// directories of common datastores (`/var/lib/mysql`, `/var/lib/postgresql/data`, …). Other
/// `/var/lib/NAME` directories (nginx's request bodies, say) are not assumed to be data.
const DATA_NAMES: &[&str] = &[
    "data",
    "db",
    "database",
    "pgdata",
    "postgresql",
    "pgsql",
    "mysql",
    "mariadb",
    "mongodb",
    "redis",
    "rabbitmq",
    "elasticsearch",
    "opensearch",
    "cassandra",
    "etcd",
    "influxdb",
    "couchdb",
    "zookeeper",
    "kafka",
    "clickhouse",
    "prometheus",
    "grafana",
    "minio",
];

/// Files of databases and key-value stores.
fn looks_like_data(p: &RawPath) -> bool {
    const EXTENSIONS: &[&str] = &[".rdb", ".aof", ".db", ".sqlite", ".sqlite3", ".mdb", ".ldb"];
    let name = String::from_utf8_lossy(p.file_name()).to_ascii_lowercase();
    EXTENSIONS.iter().any(|e| name.ends_with(e))
        || components(p)
            .iter()
            .any(|c| c == "pg_wal" || c == "appendonlydir")
}

/// Whether every name the workload created there was removed again (nothing is left behind).
fn transient(writes: &[&Classified<'_>]) -> bool {
    let created = writes
        .iter()
        .filter(|c| c.write.ops.iter().any(|op| op.creates_entry()));
    let mut any = false;
    for c in created {
        any = true;
        if !c.write.ops.iter().any(|op| op.removes_entry()) {
            return false;
        }
    }
    any
}

/// `sizeLimit` for a memory-backed emptyDir, when the directory is hot and small and the size
/// of every file written there is known.
fn memory_limit(writes: &[&Classified<'_>], index: &DirIndex<'_>) -> Option<String> {
    let calls = writes
        .iter()
        .map(|c| c.write.count)
        .fold(0, u64::saturating_add);
    if calls < HOT_CALLS {
        return None;
    }
    let mut total = 0u64;
    for c in writes.iter().filter(|c| !index.is_dir(&c.canonical)) {
        total = total.saturating_add(c.write.size?);
    }
    if total > MEMORY_MAX_BYTES {
        return None;
    }
    let limit = total
        .saturating_mul(2)
        .max(MEMORY_MIN_LIMIT)
        .checked_next_power_of_two()?;
    Some(format!("{}Mi", limit >> 20))
}

/// Other ways to remove the need for the directory.
fn alternatives(dir: &RawPath, purpose: Purpose, writes: &[&Classified<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let any_component = |pred: &dyn Fn(&str) -> bool| {
        writes
            .iter()
            .any(|c| components(&c.canonical).iter().any(|n| pred(n)))
    };
    let jvm = any_component(&|n| n.starts_with("hsperfdata_"))
        || writes
            .iter()
            .any(|c| c.write.processes.iter().any(|p| p == "java"));
    let under_home = is_home(dir) || ancestors_home(dir);
    match purpose {
        Purpose::Log => out.push(format!(
            "log to stdout/stderr instead (configure the logger, or link the files in {dir} to /dev/stdout in the image) and drop this volume"
        )),
        Purpose::Temp if jvm => out.push(format!(
            "-Djava.io.tmpdir=DIR moves the JVM's temporary files out of {dir}; -XX:-UsePerfData stops the hsperfdata files"
        )),
        // TMPDIR only moves what programs put in the default temp directories.
        Purpose::Temp if in_default_temp(dir) => out.push(format!("TMPDIR=DIR moves most programs' temporary files out of {dir}")),
        Purpose::Data => out.push(
            "an emptyDir is enough if the data may be lost with the pod (it survives container restarts)".to_string(),
        ),
        _ => {}
    }
    if under_home {
        out.push(format!(
            "HOME=DIR moves dotfiles and per-user caches out of {dir}"
        ));
    }
    if any_component(&|n| n == ".npm") {
        out.push("npm_config_cache=DIR moves npm's cache and debug logs; or run `node` directly instead of `npm`".into());
    }
    out
}

/// Whether a directory is `/tmp` or `/var/tmp` or lies below one: where programs put their
/// temporary files when `TMPDIR` is not set.
fn in_default_temp(dir: &RawPath) -> bool {
    ["/tmp", "/var/tmp"]
        .iter()
        .any(|t| dir.starts_with(&RawPath::from(*t)))
}

/// Whether a directory lies below a home directory.
fn ancestors_home(dir: &RawPath) -> bool {
    let mut p = dir.parent();
    while p.as_bytes() != b"/" {
        if is_home(&p) {
            return true;
        }
        p = p.parent();
    }
    false
}

/// Environment variables that remove writes, for the whole container.
pub fn env(volumes: &[VolumeSuggestion], classified: &[Classified<'_>]) -> Vec<EnvSuggestion> {
    let mut out = Vec::new();
    let bytecode = classified
        .iter()
        .filter(|c| matches!(&c.placement, crate::suggest::classify::Placement::Excluded(r) if r == "optional:python-bytecode"))
        .count();
    let temp = volumes.iter().find(|v| {
        v.purpose == Purpose::Temp && matches!(v.volume, VolumeKind::EmptyDir { medium: None, .. })
    });
    if bytecode > 0 {
        let prefix = match temp {
            Some(t) => format!(
                "; or PYTHONPYCACHEPREFIX={}/pycache keeps the caches, in that volume",
                t.mount_path
            ),
            None => String::new(),
        };
        out.push(EnvSuggestion {
            name: "PYTHONDONTWRITEBYTECODE".into(),
            value: "1".into(),
            reason: format!(
                "stops {bytecode} optional writes of __pycache__ bytecode (CPython ignores their failure on a read-only root){prefix}"
            ),
        });
    }
    let in_home: Vec<String> = volumes
        .iter()
        .filter(|v| ancestors_home(&v.mount_path) || is_home(&v.mount_path))
        .map(|v| v.mount_path.to_string())
        .collect();
    if let (Some(temp), false) = (temp, in_home.is_empty()) {
        out.push(EnvSuggestion {
            name: "HOME".into(),
            value: temp.mount_path.to_string(),
            reason: format!(
                "moves per-user files into {}, so {} can be dropped",
                temp.mount_path,
                in_home.join(", ")
            ),
        });
    }
    out
}

/// A Kubernetes volume name (DNS label) from a mount path, unique among `taken`.
pub fn unique_name(path: &RawPath, taken: &mut BTreeSet<String>) -> String {
    let mut base = String::new();
    for b in path.as_bytes() {
        let c = b.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c as char);
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
    }
    let mut base = base.trim_end_matches('-').to_string();
    if base.is_empty() {
        base = "volume".into();
    }
    base.truncate(MAX_NAME - 3);
    let base = base.trim_end_matches('-').to_string();
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Write;
    use crate::suggest::classify::Placement;

    fn c(w: &Write) -> Classified<'_> {
        Classified {
            write: w,
            canonical: w.path.clone(),
            placement: Placement::Rootfs,
        }
    }

    #[test]
    fn purposes_from_paths_and_files() {
        let body = Write {
            path: RawPath::from("/var/lib/nginx/body"),
            ops: vec![OpName::Mkdir],
            ..Default::default()
        };
        let rdb = Write {
            path: RawPath::from("/srv/state/dump.rdb"),
            ops: vec![OpName::RenameTo],
            ..Default::default()
        };
        let (body, rdb) = (c(&body), c(&rdb));
        for (dir, writes, want) in [
            ("/var/lib/nginx", vec![&body], Purpose::Cache),
            ("/var/lib/mysql", vec![], Purpose::Data),
            ("/var/lib/postgresql/data", vec![], Purpose::Data),
            ("/srv/state", vec![&rdb], Purpose::Data),
            ("/var/tmp", vec![], Purpose::Temp),
            ("/run/app", vec![], Purpose::Run),
            ("/var/log/mysql", vec![], Purpose::Log),
            ("/root/.cache", vec![], Purpose::Cache),
            ("/root/.config", vec![], Purpose::Home),
            ("/home/app", vec![], Purpose::Home),
        ] {
            assert_eq!(purpose(&RawPath::from(dir), &writes), want, "{dir}");
        }
    }

    #[test]
    fn names_are_dns_labels_and_unique() {
        let mut taken = BTreeSet::new();
        assert_eq!(
            unique_name(&RawPath::from("/var/cache/nginx"), &mut taken),
            "var-cache-nginx"
        );
        assert_eq!(
            unique_name(&RawPath::from("/var/cache.nginx"), &mut taken),
            "var-cache-nginx-2"
        );
        assert_eq!(
            unique_name(&RawPath::from("/home/node/.npm"), &mut taken),
            "home-node-npm"
        );
        assert_eq!(
            unique_name(&RawPath::from_bytes(b"/tmp/\xff\xfe".to_vec()), &mut taken),
            "tmp"
        );
        let long = format!("/{}", "a".repeat(100));
        let n = unique_name(&RawPath::from(long.as_str()), &mut taken);
        assert!(n.len() <= MAX_NAME, "{n}");
    }
}
