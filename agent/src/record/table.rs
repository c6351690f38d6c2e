//! The `record` table: one row per written path, for people.

use std::io::Write;

use crate::path::RawPath;
use crate::report::Report;

/// A string from the report, safe for a terminal (escaped like paths).
fn esc(s: &str) -> String {
    RawPath::from(s).to_string()
}

/// Prints the report as a table, then the kernel counters.
pub fn print(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for t in &report.targets {
        writeln!(
            out,
            "TARGET {} (cgroup id {})",
            if t.cgroup.path.is_empty() {
                "?".to_string()
            } else {
                esc(&t.cgroup.path)
            },
            t.cgroup.id
        )?;
        if t.writes.is_empty() {
            writeln!(out, "  no writes recorded")?;
            continue;
        }
        let rows: Vec<[String; 5]> = t
            .writes
            .iter()
            .map(|w| {
                let ops = w
                    .ops
                    .iter()
                    .map(|o| o.as_str().to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let results = w
                    .results
                    .iter()
                    .map(|(k, v)| {
                        if w.results.len() == 1 {
                            esc(k)
                        } else {
                            format!("{}:{v}", esc(k))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let mount = w
                    .mount
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "?".into());
                let mut path = w.path.to_string();
                if !w.issues.is_empty() {
                    path.push_str(&format!(" [{}]", esc(&w.issues.join(","))));
                }
                [path, ops, w.count.to_string(), results, mount]
            })
            .collect();
        let header = ["PATH", "OPS", "COUNT", "RESULT", "MOUNT"];
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [&str; 5], out: &mut dyn Write| -> std::io::Result<()> {
            write!(out, " ")?;
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    write!(out, " {c}")?;
                } else {
                    // Padded by hand: `{:<w$}` panics on widths beyond u16::MAX (a path
                    // from a report can be that long).
                    let pad = widths[i].saturating_sub(c.chars().count());
                    write!(out, " {c}{}", " ".repeat(pad))?;
                }
            }
            writeln!(out)
        };
        line(header, out)?;
        for r in &rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]], out)?;
        }
    }
    let c = &report.counters;
    writeln!(
        out,
        "kernel: seen {} filtered {} deduplicated {} emitted {} dropped {}",
        c.seen, c.filtered, c.deduplicated, c.emitted, c.dropped
    )?;
    Ok(())
}
