//! The `suggest` table: suggestions laid out for people. Every string from a report is escaped
//! (see [`RawPath`]'s `Display`), so a hostile path cannot move the cursor or forge rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::path::RawPath;
use crate::suggest::model::{ContainerSuggestions, Suggestions, VolumeKind, VolumeSuggestion};

/// Renders the suggestions as text tables, one section per container.
pub fn render_table(s: &Suggestions) -> String {
    let mut out = String::new();
    if s.containers.is_empty() {
        out.push_str("no containers in the reports\n");
    }
    for (i, c) in s.containers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        container(&mut out, c);
    }
    out
}

/// Escapes text from a report for a terminal.
fn esc(text: &str) -> String {
    RawPath::from(text).to_string()
}

fn heading(c: &ContainerSuggestions) -> String {
    let mut h = match &c.workload {
        Some(w) => format!("{} {}/{}", esc(&w.kind), esc(&w.namespace), esc(&w.name)),
        None if !c.cgroups.is_empty() => {
            format!(
                "cgroup {}",
                c.cgroups
                    .iter()
                    .map(|g| esc(g))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        None => "(unidentified target)".to_string(),
    };
    if let Some(name) = &c.container {
        let kind = if c.container_kind == "container" {
            "container".to_string()
        } else {
            format!("{} container", esc(&c.container_kind))
        };
        let _ = write!(h, ", {kind} {}", esc(name));
    }
    h
}

fn volume_cell(v: &VolumeSuggestion) -> String {
    match &v.volume {
        VolumeKind::EmptyDir { medium, size_limit } => {
            let mut s = "emptyDir".to_string();
            if let Some(m) = medium {
                let _ = write!(s, " medium={}", esc(m));
            }
            if let Some(l) = size_limit {
                let _ = write!(s, " sizeLimit={}", esc(l));
            }
            s
        }
        VolumeKind::PersistentVolumeClaim { claim_name } => format!("pvc {}", esc(claim_name)),
    }
}

fn purpose_name(v: &VolumeSuggestion) -> String {
    serde_json::to_value(v.purpose)
        .ok()
        .and_then(|p| p.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn container(out: &mut String, c: &ContainerSuggestions) {
    let _ = writeln!(out, "{}", heading(c));
    for w in &c.warnings {
        let _ = writeln!(out, "  warning: {}", esc(w));
    }
    if c.partial {
        out.push_str(
            "  note: recording started after the container did; start-up writes may be missing\n",
        );
    }
    if c.volumes.is_empty() {
        out.push_str("  no volume needed\n");
    } else {
        let mut rows = vec![[
            "MOUNT PATH",
            "VOLUME",
            "PURPOSE",
            "PATHS",
            "CALLS",
            "FAILED",
            "IMAGE CONTENT",
        ]
        .map(String::from)
        .to_vec()];
        for v in &c.volumes {
            let hidden = match &v.shadowing {
                Some(sh) => format!("hides {}", entries(sh.image_entries)),
                None if v.shadowing_unknown => "unknown".to_string(),
                None => "-".to_string(),
            };
            rows.push(vec![
                v.mount_path.to_string(),
                volume_cell(v),
                purpose_name(v),
                v.evidence.paths.to_string(),
                v.evidence.count.to_string(),
                v.failed_writes.to_string(),
                hidden,
            ]);
        }
        grid(out, &rows);
    }
    for v in c.volumes.iter().filter(|v| v.failed_writes > 0) {
        let _ = writeln!(
            out,
            "  missing volume: {} failed {} times",
            v.mount_path, v.failed_writes
        );
    }
    if !c.volumes.is_empty() {
        out.push_str("  evidence:\n");
        for v in &c.volumes {
            let ops: Vec<String> = v
                .evidence
                .ops
                .iter()
                .map(|o| o.as_str().to_string())
                .collect();
            let samples: Vec<String> = v
                .evidence
                .sample_paths
                .iter()
                .map(RawPath::to_string)
                .collect();
            let _ = writeln!(
                out,
                "    {}: {}; {} .. {}; e.g. {}",
                v.mount_path,
                ops.join(", "),
                esc(&v.evidence.first_seen),
                esc(&v.evidence.last_seen),
                samples.join(", ")
            );
        }
    }
    let shadowed: Vec<&VolumeSuggestion> = c
        .volumes
        .iter()
        .filter(|v| v.shadowing.is_some() || v.shadowing_unknown)
        .collect();
    if !shadowed.is_empty() {
        out.push_str(
            "  image content an emptyDir would hide:
",
        );
        for v in shadowed {
            let Some(sh) = &v.shadowing else {
                let _ = writeln!(
                    out,
                    "    {}: unknown (the recorder could not look at it in the image); check the image before mounting an emptyDir here",
                    v.mount_path
                );
                continue;
            };
            let sample: Vec<String> = sh.sample.iter().map(RawPath::to_string).collect();
            let remedies: Vec<String> = sh.remedies.iter().map(|r| remedy(r)).collect();
            let _ = writeln!(
                out,
                "    {}: {}{}; {}",
                v.mount_path,
                entries(sh.image_entries),
                if sample.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", sample.join(", "))
                },
                remedies.join(", or ")
            );
        }
    }
    let alternatives: Vec<(&VolumeSuggestion, &String)> = c
        .volumes
        .iter()
        .flat_map(|v| v.alternatives.iter().map(move |a| (v, a)))
        .collect();
    if !alternatives.is_empty() {
        out.push_str("  alternatives:\n");
        for (v, a) in alternatives {
            let _ = writeln!(out, "    {}: {}", v.mount_path, esc(a));
        }
    }
    if !c.env.is_empty() {
        out.push_str("  environment:\n");
        for e in &c.env {
            let _ = writeln!(
                out,
                "    {}={}: {}",
                esc(&e.name),
                esc(&e.value),
                esc(&e.reason)
            );
        }
    }
    if !c.unresolved.is_empty() {
        out.push_str("  no volume can serve these writes (change the image or the application):\n");
        for u in &c.unresolved {
            let failed = if u.failed_writes > 0 {
                format!(", failed {} times", u.failed_writes)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "    {}  {}  {} calls{failed}",
                u.path,
                esc(&u.reason),
                u.count
            );
        }
    }
    if !c.excluded.is_empty() {
        let mut by_reason: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for e in &c.excluded {
            let entry = by_reason.entry(e.reason.as_str()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.saturating_add(e.count);
        }
        out.push_str("  need no volume:\n");
        for (reason, (paths, calls)) in by_reason {
            let _ = writeln!(out, "    {}  {paths} paths, {calls} calls", esc(reason));
        }
    }
}

/// "1 image entry", "N image entries".
fn entries(n: u64) -> String {
    if n == 1 {
        "1 image entry".to_string()
    } else {
        format!("{n} image entries")
    }
}

/// A shadowing remedy in words.
fn remedy(r: &str) -> String {
    match r.split_once(':') {
        _ if r == "init-container-copy" => {
            "copy it in with an init container before the app starts (init-container-copy)"
                .to_string()
        }
        Some(("deeper", dir)) => format!("mount the deeper directory {} instead", esc(dir)),
        _ => esc(r),
    }
}

/// Writes rows as left-aligned columns, indented by two spaces.
fn grid(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}
