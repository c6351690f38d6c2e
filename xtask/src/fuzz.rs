//! `cargo xtask fuzz`: run every fuzz target (or the ones named) for a bounded time with
//! cargo-fuzz on nightly, starting from the committed seeds and regressions, and print the
//! executions per target. A crash fails the task and names the input to commit under
//! `fuzz/regressions/<target>/` once fixed (docs/hardening.md).

use std::process::Command;

use anyhow::{bail, Context as _};

use crate::{setup, workspace_root};

/// Every target of `fuzz/Cargo.toml`.
pub const TARGETS: &[&str] = &["decode", "mountinfo", "report", "manifest", "paths"];

/// Runs `targets` (all when empty) for `seconds` each.
pub fn run(targets: &[String], seconds: u64) -> anyhow::Result<()> {
    let tc = setup::cargo_fuzz()?;
    let fuzz = workspace_root().join("fuzz");
    let chosen: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        for t in targets {
            if !TARGETS.contains(&t.as_str()) {
                bail!("unknown fuzz target {t} (known: {})", TARGETS.join(", "));
            }
        }
        targets.iter().map(String::as_str).collect()
    };
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for t in chosen {
        let corpus = fuzz.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("failed to create {}", corpus.display()))?;
        println!("xtask fuzz: {t} for {seconds}s");
        let out = Command::new("cargo")
            .current_dir(&fuzz)
            .env("AYA_BPF_TOOLCHAIN", &tc)
            .args([
                &format!("+{tc}"),
                "fuzz",
                "run",
                "--sanitizer",
                "none",
                "--debug-assertions",
                t,
            ])
            .arg(&corpus)
            .arg(fuzz.join("seeds").join(t))
            .arg(fuzz.join("regressions").join(t))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-max_len=65536",
                "-print_final_stats=1",
            ])
            .output()
            .context("failed to run cargo fuzz")?;
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log
            .lines()
            .find_map(|l| {
                l.strip_prefix("Done ")
                    .and_then(|r| r.split_whitespace().next())
            })
            .or_else(|| {
                log.lines()
                    .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
                    .map(str::trim)
            })
            .unwrap_or("?")
            .to_string();
        let ok = out.status.success();
        if !ok {
            let artifact = log
                .lines()
                .find(|l| l.contains("Test unit written to"))
                .unwrap_or("(no artifact line)")
                .to_string();
            eprintln!("{log}");
            failed.push(format!("{t}: {artifact}"));
        }
        summary.push((t, runs, ok));
    }
    println!("\nTARGET      EXECUTIONS  RESULT");
    for (t, runs, ok) in &summary {
        println!("{t:<11} {runs:>10}  {}", if *ok { "ok" } else { "FAILED" });
    }
    if !failed.is_empty() {
        bail!(
            "fuzzing found failures; fix them and commit each input under fuzz/regressions/<target>/:\n{}",
            failed.join("\n")
        );
    }
    Ok(())
}
