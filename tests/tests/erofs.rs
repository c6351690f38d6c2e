//! A workload that already runs with a read-only root and misses a volume: its EROFS failures
//! are in the report (per path and per target), `record` warns about them, and `suggest`
//! turns them into "missing volume: DIR failed N times".

use std::process::Command;

use writepath_tests::container::{Bundle, Tmpfs};
use writepath_tests::*;

/// nginx-like writes with no `set -e`: every write below /var/cache/nginx fails on the
/// read-only root and the script carries on, as a retrying server would.
const MISSING_CACHE: &str = "\
    for d in client_temp proxy_temp fastcgi_temp; do mkdir -p /var/cache/nginx/$d; done; \
    for i in 1 2 3; do echo body > /var/cache/nginx/body-000$i; done; \
    echo $$ > /tmp/nginx.pid; \
    true";

#[test]
fn erofs_failures_become_missing_volumes() {
    if !privileged("erofs_failures_become_missing_volumes") {
        return;
    }
    let cg = TempCgroup::new("erofs");
    let bundle = Bundle::new(
        "erofs",
        MISSING_CACHE,
        &[Tmpfs { path: "/tmp" }],
        true,
        &cg.runc_path("ctr"),
    );
    let rec = Recording::start(&cg.dir);
    let (status, out) = bundle.run();
    assert!(status.success(), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let (report, stderr) = rec.stop_with_stderr();

    // In the report: per path and per target.
    let w = write_of(&report, b"/var/cache/nginx/client_temp").expect("mkdir recorded");
    assert!(w.read_only_failures() >= 1, "{:?}", w.results);
    let target = report
        .targets
        .iter()
        .find(|t| !t.writes.is_empty())
        .expect("a target with writes");
    assert!(
        target.read_only_failures() >= 6,
        "3 mkdir + 3 creates refused: {}",
        target.read_only_failures()
    );
    assert!(
        write_of(&report, b"/tmp/nginx.pid")
            .is_some_and(|w| w.read_only_failures() == 0 && w.results.contains_key("ok")),
        "the tmpfs write succeeded"
    );
    // record warns.
    assert!(
        stderr.contains("already failed with EROFS"),
        "record warns: {stderr}"
    );

    // suggest: the missing volume, with its failure count.
    let d = scratch_dir("erofs");
    let file = d.path().join("r.json");
    report.save(&file).unwrap();
    let out = Command::new(writepath_bin())
        .arg("suggest")
        .arg("--report")
        .arg(&file)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let line = table
        .lines()
        .find(|l| l.contains("missing volume: /var/cache/nginx failed"))
        .unwrap_or_else(|| panic!("missing volume line: {table}"));
    let n: u64 = line
        .split_whitespace()
        .rev()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("count in {line}"));
    assert_eq!(n, target.read_only_failures(), "{line}");
}
