//! The `record` tables, for people: by default the writes grouped per directory (counts, a
//! few sample names); with `-o wide` one row per written path. Both end with the kernel
//! counters and, in command mode, the command's exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::path::RawPath;
use crate::report::{self, Report};

/// How much the table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One row per directory written into, with counts and a few sample names.
    Grouped,
    /// One row per written path.
    Wide,
}

/// At most this many directory rows per target: deeper directories are merged into their
/// ancestors until the rows fit.
pub const MAX_GROUPS: usize = 20;

/// Sample names shown per directory row.
const SAMPLES: usize = 3;

/// A string from the report, safe for a terminal (escaped like paths).
fn esc(s: &str) -> String {
    RawPath::from(s).to_string()
}

/// Prints the report as a table, then the kernel counters and the command's exit code.
pub fn print(report: &Report, view: View, out: &mut dyn Write) -> std::io::Result<()> {
    for t in &report.targets {
        let calls = t.writes.iter().fold(0u64, |a, w| a.saturating_add(w.count));
        writeln!(
            out,
            "TARGET {} (cgroup id {}): {} paths written, {} calls",
            if t.cgroup.path.is_empty() {
                "?".to_string()
            } else {
                esc(&t.cgroup.path)
            },
            t.cgroup.id,
            t.writes.len(),
            calls
        )?;
        if t.writes.is_empty() {
            writeln!(out, "  no writes recorded")?;
            continue;
        }
        match view {
            View::Wide => wide(&t.writes, out)?,
            View::Grouped => {
                let groups = group(&t.writes, MAX_GROUPS);
                let n = groups.len();
                grouped(groups, out)?;
                writeln!(
                    out,
                    "  {} paths in {n} {}; every path: -o wide (or -o json)",
                    t.writes.len(),
                    if n == 1 { "directory" } else { "directories" }
                )?;
            }
        }
    }
    let c = &report.counters;
    writeln!(
        out,
        "kernel: seen {} filtered {} deduplicated {} emitted {} dropped {}",
        c.seen, c.filtered, c.deduplicated, c.emitted, c.dropped
    )?;
    if report.recording.mode == "command" {
        match report.recording.exit_code {
            Some(code) => writeln!(out, "command exited with code {code}")?,
            None => writeln!(out, "command did not exit normally (killed by a signal)")?,
        }
    }
    Ok(())
}

/// The results of some writes as a cell: `ok`, or `ok:3,EROFS:1` when there are several.
fn results_cell(results: &BTreeMap<String, u64>) -> String {
    results
        .iter()
        .map(|(k, v)| {
            if results.len() == 1 {
                esc(k)
            } else {
                format!("{}:{v}", esc(k))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn mount_cell(mount: Option<&RawPath>) -> String {
    mount.map(|m| m.to_string()).unwrap_or_else(|| "?".into())
}

/// One row per path.
fn wide(writes: &[report::Write], out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![["PATH", "OPS", "COUNT", "RESULT", "MOUNT"].map(String::from)];
    for w in writes {
        let ops = w
            .ops
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut path = w.path.to_string();
        if !w.issues.is_empty() {
            path.push_str(&format!(" [{}]", esc(&w.issues.join(","))));
        }
        rows.push([
            path,
            ops,
            w.count.to_string(),
            results_cell(&w.results),
            mount_cell(w.mount.as_ref()),
        ]);
    }
    grid(&rows, out)
}

/// The writes of one directory row.
#[derive(Debug, Default)]
struct Group<'a> {
    writes: Vec<&'a report::Write>,
}

/// The first `depth` components of `dir` (all of them when it has fewer).
fn truncate(dir: &RawPath, depth: usize) -> RawPath {
    if dir.depth() <= depth {
        return dir.clone();
    }
    let mut out = Vec::new();
    for c in dir.components().take(depth) {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    RawPath::from_bytes(out)
}

/// Groups the writes by the directory they were made in; when that gives more than `max`
/// rows, directories are cut to the deepest common depth at which the rows fit.
fn group(writes: &[report::Write], max: usize) -> BTreeMap<RawPath, Group<'_>> {
    let dirs: Vec<RawPath> = writes.iter().map(|w| w.path.parent()).collect();
    let deepest = dirs.iter().map(RawPath::depth).max().unwrap_or(0);
    let depth = (0..=deepest)
        .rev()
        .find(|d| {
            dirs.iter()
                .map(|dir| truncate(dir, *d))
                .collect::<BTreeSet<_>>()
                .len()
                <= max
        })
        .unwrap_or(0);
    let mut groups: BTreeMap<RawPath, Group<'_>> = BTreeMap::new();
    for (w, dir) in writes.iter().zip(&dirs) {
        groups
            .entry(truncate(dir, depth))
            .or_default()
            .writes
            .push(w);
    }
    groups
}

/// One row per directory, with counts and sample names (relative to the directory).
fn grouped(groups: BTreeMap<RawPath, Group<'_>>, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![[
        "DIRECTORY",
        "PATHS",
        "CALLS",
        "OPS",
        "RESULT",
        "MOUNT",
        "SAMPLES",
    ]
    .map(String::from)];
    for (dir, g) in groups {
        let calls = g.writes.iter().fold(0u64, |a, w| a.saturating_add(w.count));
        let ops: BTreeSet<_> = g.writes.iter().flat_map(|w| w.ops.iter()).collect();
        let ops = ops
            .into_iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut results: BTreeMap<String, u64> = BTreeMap::new();
        for w in &g.writes {
            for (k, v) in &w.results {
                let e = results.entry(k.clone()).or_default();
                *e = e.saturating_add(*v);
            }
        }
        let mounts: BTreeSet<String> = g
            .writes
            .iter()
            .map(|w| mount_cell(w.mount.as_ref()))
            .collect();
        let prefix_len = if dir.as_bytes() == b"/" {
            1
        } else {
            dir.as_bytes().len() + 1
        };
        let mut samples: Vec<String> = g
            .writes
            .iter()
            .take(SAMPLES)
            .map(|w| {
                let rest = w.path.as_bytes().get(prefix_len..).unwrap_or_default();
                RawPath::from_bytes(rest.to_vec()).to_string()
            })
            .collect();
        if g.writes.len() > SAMPLES {
            samples.push(format!("… {} more", g.writes.len() - SAMPLES));
        }
        rows.push([
            dir.to_string(),
            g.writes.len().to_string(),
            calls.to_string(),
            ops,
            results_cell(&results),
            mounts.into_iter().collect::<Vec<_>>().join(","),
            samples.join(", "),
        ]);
    }
    grid(&rows, out)
}

/// Writes rows as columns padded to their widest cell (the last column is not padded).
fn grid<const N: usize>(rows: &[[String; N]], out: &mut dyn Write) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        write!(out, " ")?;
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                write!(out, " {c}")?;
            } else {
                // Padded by hand: `{:<w$}` panics on widths beyond u16::MAX (a path from a
                // report can be that long).
                let pad = widths[i].saturating_sub(c.chars().count());
                write!(out, " {c}{}", " ".repeat(pad))?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python() -> Report {
        Report::from_json(
            include_str!("../../../tests/fixtures/reports/python.json"),
            "python.json",
        )
        .unwrap()
    }

    fn render(report: &Report, view: View) -> String {
        let mut out = Vec::new();
        print(report, view, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The rows of the first table (lines after its header, up to the summary line).
    fn rows(table: &str) -> Vec<&str> {
        table
            .lines()
            .skip_while(|l| {
                !l.trim_start().starts_with("DIRECTORY") && !l.trim_start().starts_with("PATH ")
            })
            .skip(1)
            .take_while(|l| l.starts_with("  /"))
            .collect()
    }

    #[test]
    fn default_view_groups_writes_per_directory() {
        let r = python();
        let writes = &r.targets[0].writes;
        let table = render(&r, View::Grouped);
        let rows = rows(&table);
        let dirs: BTreeSet<RawPath> = writes.iter().map(|w| w.path.parent()).collect();
        assert_eq!(rows.len(), dirs.len(), "one row per directory: {table}");
        assert!(rows.len() < writes.len(), "{table}");
        // The PATHS column adds up to every write, and each directory is listed.
        let total: usize = rows
            .iter()
            .map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        assert_eq!(total, writes.len(), "{table}");
        for d in &dirs {
            assert!(
                rows.iter()
                    .any(|l| l.split_whitespace().next() == Some(&d.to_string())),
                "{d} has a row: {table}"
            );
        }
        // Not every path is printed, and the way to see them is named.
        let hidden = writes
            .iter()
            .filter(|w| !table.contains(&w.path.to_string()))
            .count();
        assert!(hidden > 0, "{table}");
        assert!(table.contains("-o wide"), "{table}");
    }

    #[test]
    fn many_directories_merge_into_their_ancestors() {
        let r = python();
        let writes = &r.targets[0].writes;
        for max in [1, 2, 4, 8] {
            let groups = group(writes, max);
            assert!(groups.len() <= max, "{max}: {groups:?}");
            let n: usize = groups.values().map(|g| g.writes.len()).sum();
            assert_eq!(n, writes.len());
            for (dir, g) in &groups {
                assert!(g.writes.iter().all(|w| w.path.starts_with(dir)), "{dir}");
            }
        }
    }

    #[test]
    fn wide_view_lists_every_path() {
        let r = python();
        let table = render(&r, View::Wide);
        assert_eq!(rows(&table).len(), r.targets[0].writes.len(), "{table}");
        for w in &r.targets[0].writes {
            assert!(table.contains(&w.path.to_string()), "{}: {table}", w.path);
        }
    }

    #[test]
    fn command_exit_code_is_shown() {
        let mut r = python();
        r.recording.mode = "command".into();
        r.recording.exit_code = Some(42);
        assert!(render(&r, View::Grouped).contains("command exited with code 42"));
        assert!(render(&r, View::Wide).contains("command exited with code 42"));
        r.recording.exit_code = None;
        assert!(render(&r, View::Grouped).contains("did not exit normally"));
    }
}
