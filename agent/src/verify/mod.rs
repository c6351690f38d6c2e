//! `writepath verify`: run a command with a read-only root and the suggested volumes, record it
//! with the capture engine, and list every write that still fails.
//!
//! [`volume_dirs`] turns reports into the directories to provide, [`namespace`] builds the
//! mount namespace, [`Outcome::from_report`] extracts the failing writes from the recording and
//! [`Outcome::render_table`] prints them. Usage and design: `docs/verify.md`.

pub mod namespace;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::path::RawPath;
use crate::report::{Counters, OpName, Report};
use crate::suggest::Suggestions;

/// Format version of the JSON [`Outcome`].
pub const OUTCOME_VERSION: u32 = 1;

/// Results that mean a write was refused by a read-only filesystem. A read-only mount answers
/// EROFS; nothing else in verify's set-up makes a write fail.
pub use crate::report::READ_ONLY_RESULTS;

/// Where a volume directory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeSource {
    /// A suggested volume.
    Suggested,
    /// A mount the recorded target already had (its writes were not suggested because they
    /// landed on it) that this host does not have at that path.
    RecordedMount,
    /// Given with `--mount`.
    Given,
}

/// The directories to provide for the suggestions of `reports`: every suggested volume of
/// every container, and the writable non-root mounts that writes landed on where they were
/// recorded (`/tmp` on a tmpfs in a container) when `is_host_mount` says this host has no mount
/// there.
pub fn volume_dirs(
    reports: &[Report],
    suggestions: &Suggestions,
    is_host_mount: impl Fn(&RawPath) -> bool,
) -> BTreeMap<RawPath, VolumeSource> {
    let mut out = BTreeMap::new();
    for c in &suggestions.containers {
        for v in &c.volumes {
            out.insert(v.mount_path.clone(), VolumeSource::Suggested);
        }
    }
    for t in reports.iter().flat_map(|r| &r.targets) {
        for w in &t.writes {
            let Some(m) = w.mount.as_ref().filter(|m| m.as_bytes() != b"/") else {
                continue;
            };
            let Some(mount) = t.mounts.iter().find(|x| &x.mount_point == m) else {
                continue;
            };
            let writable_volume = !mount.read_only
                && !matches!(
                    mount.fs_type.as_str(),
                    "proc" | "sysfs" | "devtmpfs" | "devpts" | "cgroup" | "cgroup2" | "mqueue"
                )
                && !m.starts_with(&RawPath::from("/dev"))
                && !m.starts_with(&RawPath::from("/proc"))
                && !m.starts_with(&RawPath::from("/sys"));
            // Kubelet's single-file mounts (/etc/hosts) are files, not directories.
            let is_file_mount = w.path == *m;
            if writable_volume && !is_file_mount && !is_host_mount(m) {
                out.entry(m.clone()).or_insert(VolumeSource::RecordedMount);
            }
        }
    }
    out
}

/// A write that failed under verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailingWrite {
    /// The path, as the command saw it.
    pub path: RawPath,
    /// What was attempted.
    pub ops: Vec<OpName>,
    /// Failed calls.
    pub failed: u64,
    /// Every outcome of calls on this path ("ok", "EROFS", …) to counts.
    pub results: BTreeMap<String, u64>,
    /// The processes that made them.
    pub processes: Vec<String>,
    /// The mount it landed on (`/` = the read-only root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<RawPath>,
}

/// One provided volume in the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedVolume {
    /// The directory.
    pub path: RawPath,
    /// Why it was provided.
    pub source: VolumeSource,
    /// True when the directory did not exist on the host and was made in an overlay.
    pub created: bool,
    /// Successful write calls that landed in it (`/var/run/x` counts for `/run`).
    pub writes: u64,
    /// Entries the host has in the directory that the fresh tmpfs hides from the command
    /// (absent when none): the command ran without them.
    #[serde(skip_serializing_if = "is_zero")]
    pub hidden_entries: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Entries the host has in `dir` (at most 100 000 are counted), `None` when it cannot be read.
pub fn host_entries(dir: &RawPath) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(dir.as_bytes()));
    Some(std::fs::read_dir(path).ok()?.take(100_000).count() as u64)
}

/// The result of `writepath verify`, printed as a table or JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// [`OUTCOME_VERSION`].
    pub version: u32,
    /// The command.
    pub command: Vec<String>,
    /// Its exit code, when it exited normally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The volumes provided.
    pub volumes: Vec<VerifiedVolume>,
    /// Writes refused by the read-only root (see [`READ_ONLY_RESULTS`]); empty = verified.
    pub failing_writes: Vec<FailingWrite>,
    /// The recorder's counters (non-zero `dropped` means writes may be missing).
    pub counters: Counters,
    /// What may make a pass mean less (a volume hiding the host's content), one sentence
    /// each; absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Outcome {
    /// Extracts the outcome from the recording of the verified command.
    pub fn from_report(report: &Report, volumes: &[(RawPath, VolumeSource, bool)]) -> Outcome {
        let mut failing = Vec::new();
        let mut verified: Vec<VerifiedVolume> = volumes
            .iter()
            .map(|(path, source, created)| VerifiedVolume {
                path: path.clone(),
                source: *source,
                created: *created,
                writes: 0,
                hidden_entries: 0,
            })
            .collect();
        for t in &report.targets {
            // Paths as written, volumes as suggested: both through the same links
            // (`/var/run -> /run`) the suggestion engine follows.
            let recorded: std::collections::BTreeMap<RawPath, RawPath> = t
                .symlinks
                .iter()
                .map(|l| (l.path.clone(), l.target.clone()))
                .collect();
            let aliases = crate::suggest::alias::Aliases::new(&t.writes, &recorded);
            for w in &t.writes {
                let failed = w.read_only_failures();
                if failed > 0 {
                    failing.push(FailingWrite {
                        path: w.path.clone(),
                        ops: w.ops.clone(),
                        failed,
                        results: w.results.clone(),
                        processes: w.processes.clone(),
                        mount: w.mount.clone(),
                    });
                }
                let ok = w.results.get("ok").copied().unwrap_or(0);
                let canonical = aliases.canonical(&w.path, crate::suggest::alias::follows_leaf(w));
                if let Some(v) = verified
                    .iter_mut()
                    .filter(|v| {
                        w.path.starts_with(&v.path)
                            || canonical.starts_with(&aliases.canonical(&v.path, true))
                    })
                    .max_by_key(|v| v.path.depth())
                {
                    v.writes += ok;
                }
            }
        }
        failing.sort_by(|a, b| a.path.cmp(&b.path));
        Outcome {
            version: OUTCOME_VERSION,
            command: report.recording.command.clone().unwrap_or_default(),
            exit_code: report.recording.exit_code,
            volumes: verified,
            failing_writes: failing,
            counters: report.counters.clone(),
            warnings: Vec::new(),
        }
    }

    /// Notes, for each volume over a directory that existed, how many entries `entries` (the
    /// host's, [`host_entries`]) says its tmpfs hid from the command, with a warning: the
    /// command ran without that content, so a pass proves less (`--mount /etc` hides the
    /// host's whole `/etc`).
    pub fn hidden_content(mut self, entries: impl Fn(&RawPath) -> Option<u64>) -> Outcome {
        for v in self.volumes.iter_mut().filter(|v| !v.created) {
            let n = entries(&v.path).unwrap_or(0);
            v.hidden_entries = n;
            if n > 0 {
                self.warnings.push(format!(
                    "the tmpfs at {} hides {n} entries the host has there: the command ran without them (an emptyDir hides the image's the same way; copy them in with an init container, or give a deeper directory)",
                    v.path
                ));
            }
        }
        self
    }

    /// Whether every write succeeded (exit 0).
    pub fn passed(&self) -> bool {
        self.failing_writes.is_empty()
    }

    /// The table for people. Every path and process name is escaped.
    pub fn render_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut rows: Vec<[String; 3]> = self
            .volumes
            .iter()
            .map(|v| {
                let src = match v.source {
                    VolumeSource::Suggested => "suggested",
                    VolumeSource::RecordedMount => "recorded-mount",
                    VolumeSource::Given => "given",
                };
                let mut p = v.path.to_string();
                if v.created {
                    p.push_str(" (created)");
                }
                [p, src.to_string(), v.writes.to_string()]
            })
            .collect();
        if rows.is_empty() {
            out.push_str("no volumes: the whole root is read-only\n");
        } else {
            rows.insert(0, ["VOLUME".into(), "SOURCE".into(), "OK WRITES".into()]);
            grid(&mut out, &rows);
        }
        if !self.failing_writes.is_empty() {
            out.push('\n');
            let mut rows: Vec<[String; 5]> = vec![[
                "FAILING PATH".into(),
                "OPS".into(),
                "FAILED".into(),
                "PROCESS".into(),
                "MOUNT".into(),
            ]];
            for w in &self.failing_writes {
                let ops: Vec<String> = w.ops.iter().map(|o| o.as_str().to_string()).collect();
                let procs: Vec<String> = w
                    .processes
                    .iter()
                    .map(|p| RawPath::from(p.as_str()).to_string())
                    .collect();
                rows.push([
                    w.path.to_string(),
                    ops.join(","),
                    w.failed.to_string(),
                    procs.join(","),
                    w.mount
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "?".into()),
                ]);
            }
            grid(&mut out, &rows);
        }
        for w in &self.warnings {
            // Built from escaped paths already.
            let _ = writeln!(out, "warning: {w}");
        }
        let c = &self.counters;
        if c.dropped > 0 || c.pending_full > 0 {
            let _ = writeln!(
                out,
                "warning: the recorder lost {} events: some failing writes may be missing",
                c.dropped + c.pending_full
            );
        }
        let _ = writeln!(
            out,
            "{}: {} volumes, {} failing writes{}",
            if self.passed() {
                "verified"
            } else {
                "not verified"
            },
            self.volumes.len(),
            self.failing_writes.len(),
            match self.exit_code {
                Some(code) => format!(" (command exited {code})"),
                None => String::new(),
            }
        );
        out
    }
}

fn grid<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                // Padded by hand: `{:<w$}` panics on widths beyond u16::MAX.
                line.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Mount, Target, Write};

    fn write(path: &[u8], results: &[(&str, u64)]) -> Write {
        Write {
            path: RawPath::from_bytes(path.to_vec()),
            ops: vec![OpName::Create],
            count: results.iter().map(|(_, n)| n).sum(),
            results: results.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            processes: vec!["sh\x1b[2J".into()],
            mount: Some(RawPath::from("/")),
            ..Default::default()
        }
    }

    fn report(writes: Vec<Write>) -> Report {
        Report {
            version: 1,
            tool: Default::default(),
            recording: Default::default(),
            counters: Default::default(),
            targets: vec![Target {
                writes,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn writes_through_var_run_count_for_a_run_volume() {
        let r = report(vec![
            write(b"/var/run/x.pid", &[("ok", 1)]),
            write(b"/run/y.sock", &[("ok", 2)]),
        ]);
        let o = Outcome::from_report(
            &r,
            &[(RawPath::from("/run"), VolumeSource::Suggested, false)],
        );
        assert_eq!(o.volumes[0].writes, 3);
    }

    #[test]
    fn a_volume_that_hides_host_content_is_a_warning() {
        let r = report(vec![write(b"/etc/app.conf", &[("ok", 1)])]);
        let o = Outcome::from_report(
            &r,
            &[
                (RawPath::from("/etc"), VolumeSource::Given, false),
                (
                    RawPath::from("/var/lib/demo"),
                    VolumeSource::Suggested,
                    true,
                ),
            ],
        )
        .hidden_content(|p| (p.as_bytes() == b"/etc").then_some(146));
        assert!(o.passed());
        let t = o.render_table();
        assert!(
            t.contains("warning: the tmpfs at /etc hides 146 entries the host has there"),
            "{t}"
        );
        assert!(
            t.ends_with("verified: 2 volumes, 0 failing writes\n"),
            "{t}"
        );
        let j = serde_json::to_value(&o).unwrap();
        assert_eq!(j["volumes"][0]["hidden_entries"], 146);
        assert!(j["volumes"][1].get("hidden_entries").is_none());
        assert_eq!(j["warnings"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn failing_writes_and_volume_counts() {
        let r = report(vec![
            write(b"/var/cache/x", &[("ok", 3)]),
            write(b"/etc/app.conf", &[("EROFS", 2), ("ok", 0)]),
            write(b"/var/run/x.pid", &[("EEXIST", 1)]),
        ]);
        let o = Outcome::from_report(
            &r,
            &[(RawPath::from("/var/cache"), VolumeSource::Suggested, false)],
        );
        assert!(!o.passed());
        assert_eq!(o.failing_writes.len(), 1);
        assert_eq!(o.failing_writes[0].path, RawPath::from("/etc/app.conf"));
        assert_eq!(o.failing_writes[0].failed, 2);
        assert_eq!(o.volumes[0].writes, 3);
        let t = o.render_table();
        assert!(
            t.contains("not verified: 1 volumes, 1 failing writes"),
            "{t}"
        );
    }

    #[test]
    fn table_escapes_hostile_paths_and_process_names() {
        let r = report(vec![write(b"/etc/a\nb\x1b[31m\xff", &[("EROFS", 1)])]);
        let o = Outcome::from_report(&r, &[]);
        let t = o.render_table();
        assert!(t.contains("/etc/a\\nb\\x1b[31m\\xff"), "{t}");
        assert!(t.contains("sh\\x1b[2J"), "{t}");
        assert!(
            !t.contains('\x1b'),
            "no raw escape reaches the terminal: {t:?}"
        );
        assert_eq!(t.lines().filter(|l| l.starts_with("/etc")).count(), 1);
        let json = serde_json::to_string(&o).unwrap();
        assert!(
            json.contains("base64"),
            "invalid UTF-8 is kept exactly: {json}"
        );
    }

    #[test]
    fn very_long_paths_do_not_break_the_table() {
        let long = format!("/{}", "x".repeat(70_000));
        let r = report(vec![write(long.as_bytes(), &[("EROFS", 1)])]);
        let t = Outcome::from_report(&r, &[]).render_table();
        assert!(t.contains(&long));
    }

    #[test]
    fn passes_when_nothing_failed() {
        let r = report(vec![write(b"/tmp/x", &[("ok", 1)])]);
        let o = Outcome::from_report(&r, &[(RawPath::from("/tmp"), VolumeSource::Given, false)]);
        assert!(o.passed());
        assert!(o
            .render_table()
            .ends_with("verified: 1 volumes, 0 failing writes\n"));
    }

    #[test]
    fn recorded_mounts_become_volumes_when_the_host_lacks_them() {
        let mut r = report(vec![
            Write {
                mount: Some(RawPath::from("/tmp")),
                ..write(b"/tmp/upload-1", &[("ok", 1)])
            },
            Write {
                mount: Some(RawPath::from("/etc/hosts")),
                ..write(b"/etc/hosts", &[("ok", 1)])
            },
            Write {
                mount: Some(RawPath::from("/dev")),
                ..write(b"/dev/null", &[("ok", 1)])
            },
        ]);
        r.targets[0].mounts = vec![
            Mount {
                mount_point: "/tmp".into(),
                fs_type: "tmpfs".into(),
                source: String::new(),
                read_only: false,
            },
            Mount {
                mount_point: "/etc/hosts".into(),
                fs_type: "ext4".into(),
                source: String::new(),
                read_only: false,
            },
            Mount {
                mount_point: "/dev".into(),
                fs_type: "tmpfs".into(),
                source: String::new(),
                read_only: false,
            },
        ];
        let s = Suggestions::default();
        let dirs = volume_dirs(std::slice::from_ref(&r), &s, |_| false);
        assert_eq!(
            dirs.into_iter().collect::<Vec<_>>(),
            vec![(RawPath::from("/tmp"), VolumeSource::RecordedMount)]
        );
        assert!(volume_dirs(&[r], &s, |_| true).is_empty());
    }
}
