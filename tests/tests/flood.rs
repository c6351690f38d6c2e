//! A flood of 1 000 000 distinct paths keeps the recorder bounded: beyond the path budget, new
//! paths collapse into their directory, every collapse is counted (kept + collapsed + lost ==
//! what was written, no silent loss), the report stays small, and the recorder's peak RSS stays
//! under [`RSS_BOUND_KIB`].
//!
//! The flood is made by this test binary itself, re-run as the recorded command with
//! `WP_FLOOD_DIR` set (see [`flood_driver`]): a million `open(O_CREAT)` calls on distinct names
//! in a directory that does not exist, so each fails with ENOENT without creating a file.

use std::process::Command;

use writepath::report::Report;
use writepath_tests::*;

const FLOOD: u64 = 1_000_000;
const BUDGET: usize = 10_000;
/// Peak RSS allowed for the recorder (and the flood driver), KiB: about 70 MiB for a debug
/// build that loaded its programs (BTF, the 16 MiB ring buffer), plus the dedup keys it may
/// remember (`record::MAX_KEYS`, about 35 MiB) and the budget's paths. Measured: 124 MiB;
/// before the keys were bounded the same flood took 585 MiB.
const RSS_BOUND_KIB: i64 = 160 * 1024;

/// Not a test of its own: the flood, when this binary runs as the recorded command.
#[test]
fn flood_driver() {
    let Some(dir) = std::env::var_os("WP_FLOOD_DIR") else {
        return;
    };
    let dir = dir.into_string().expect("utf-8 dir");
    for i in 0..FLOOD {
        let p = std::ffi::CString::new(format!("{dir}/f{i:07}")).unwrap();
        // SAFETY: a valid C string; the result is only checked.
        let fd = unsafe { libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600) };
        assert!(fd < 0, "the directory must not exist");
    }
}

#[test]
fn a_million_distinct_paths_stay_bounded_and_counted() {
    if !privileged("a_million_distinct_paths_stay_bounded_and_counted") {
        return;
    }
    let d = scratch_dir("flood");
    let dir = d.path().join("missing");
    let report = d.path().join("r.json");
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(writepath_bin())
        .arg("record")
        .arg("--report")
        .arg(&report)
        .args(["--path-budget", &BUDGET.to_string(), "-o", "json", "--"])
        .arg(&exe)
        .args(["--exact", "flood_driver", "--nocapture", "--test-threads=1"])
        .env("WP_FLOOD_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // SAFETY: getrusage with a valid out-pointer.
    let max_rss_kib = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru), 0);
        ru.ru_maxrss
    };
    let r = Report::load(&report).unwrap();
    assert_eq!(r.recording.exit_code, Some(0), "the driver ran to the end");
    let prefix = writepath::path::RawPath::from(dir.to_str().unwrap());
    let flood: Vec<_> = all_writes(&r)
        .into_iter()
        .filter(|w| w.path.starts_with(&prefix))
        .collect();
    let kept = flood
        .iter()
        .filter(|w| !w.issues.iter().any(|i| i == "collapsed"))
        .count();
    let collapsed_entries: Vec<_> = flood
        .iter()
        .filter(|w| w.issues.iter().any(|i| i == "collapsed"))
        .collect();
    let c = &r.counters;
    let lost = c.dropped + c.pending_full + c.pending_missing;
    let total: u64 = flood.iter().map(|w| w.count).sum();
    let size = std::fs::metadata(&report).unwrap().len();
    eprintln!(
        "flood: {kept} kept, {} collapsed, {lost} lost, {} deduplicated, {} writes in report, \
         report {size} bytes, peak RSS {max_rss_kib} KiB",
        c.collapsed,
        c.deduplicated,
        flood.len()
    );
    assert!(
        kept <= BUDGET,
        "{kept} distinct paths kept, budget {BUDGET}"
    );
    assert_eq!(
        collapsed_entries.len(),
        1,
        "all collapse into the one directory"
    );
    assert_eq!(collapsed_entries[0].path, prefix);
    assert_eq!(
        collapsed_entries[0].count, c.collapsed,
        "the collapsed entry counts every collapse"
    );
    assert_eq!(
        total + lost,
        FLOOD,
        "kept + collapsed + lost account for every call (no silent loss)"
    );
    assert!(
        size < 16 * 1024 * 1024,
        "the report stays small: {size} bytes"
    );
    assert!(
        max_rss_kib < RSS_BOUND_KIB,
        "peak RSS {max_rss_kib} KiB over the {RSS_BOUND_KIB} KiB bound"
    );
}
