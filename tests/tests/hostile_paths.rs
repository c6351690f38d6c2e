//! Paths with a newline, a terminal escape sequence and invalid UTF-8, end to end: every table
//! (`record`, `suggest`, `verify`) prints them escaped on one line with no raw control byte, and
//! every JSON output (`record`, `suggest`, `verify`) gives back the exact bytes.

use std::os::unix::ffi::OsStrExt as _;
use std::process::{Command, Output};

use writepath::path::RawPath;
use writepath::report::Report;
use writepath_tests::*;

/// The hostile name: a newline, an escape sequence that would turn the terminal red, a byte
/// that is not UTF-8.
const NAME: &[u8] = b"a\nb\x1b[31mc\xffd";
/// How tables show it.
const SHOWN: &str = "a\\nb\\x1b[31mc\\xffd";

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(writepath_bin()).args(args).output().unwrap()
}

#[track_caller]
fn assert_safe_table(out: &[u8], what: &str) {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: raw control character in {text:?}"
    );
    assert!(text.contains(SHOWN), "{what}: escaped name missing: {text}");
    for l in text.lines().filter(|l| l.contains(SHOWN)) {
        assert!(!l.starts_with("b\\x1b"), "{what}: row split: {l}");
    }
}

#[test]
fn hostile_names_print_escaped_and_round_trip_in_json() {
    if !privileged("hostile_names_print_escaped_and_round_trip_in_json") {
        return;
    }
    let tag = letter_tag();
    let dir = format!("/var/tmp/wp-hostile-{tag}");
    std::fs::create_dir_all(&dir).unwrap();
    let _rm = RemoveOnDrop(vec![dir.clone()]);
    let mut full = format!("{dir}/").into_bytes();
    full.extend_from_slice(NAME);
    let full_os = std::ffi::OsStr::from_bytes(&full);
    // `touch` with the name as one argument: no shell quoting involved.
    let touch: Vec<&std::ffi::OsStr> = vec!["/bin/busybox".as_ref(), "touch".as_ref(), full_os];

    // record, JSON: exact bytes.
    let d = scratch_dir("hostile");
    let report = d.path().join("r.json");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "record".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
        "--".as_ref(),
    ];
    args.extend(&touch);
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    let r = Report::from_json(&String::from_utf8(out.stdout).unwrap(), "stdout").unwrap();
    assert!(
        write_of(&r, &full).is_some(),
        "exact bytes in the JSON report"
    );
    assert!(write_of(&Report::load(&report).unwrap(), &full).is_some());

    // record, table.
    let mut args: Vec<&std::ffi::OsStr> = vec!["record".as_ref(), "--".as_ref()];
    args.extend(&touch);
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    assert_safe_table(&out.stdout, "record table");

    // suggest: table escaped, JSON exact.
    let out = run(&["suggest".as_ref(), "--report".as_ref(), report.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    assert_safe_table(&out.stdout, "suggest table");
    let out = run(&[
        "suggest".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
    ]);
    let s: writepath::suggest::Suggestions = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        s.containers
            .iter()
            .flat_map(|c| &c.volumes)
            .flat_map(|v| &v.evidence.sample_paths)
            .any(|p| p.as_bytes() == full.as_slice()),
        "exact bytes in the suggestions' evidence: {s:?}"
    );

    // verify with no volume: the write fails; table escaped, JSON exact.
    let mut args: Vec<&std::ffi::OsStr> = vec!["verify".as_ref(), "--".as_ref()];
    args.extend(&touch);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_safe_table(&out.stdout, "verify table");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "verify".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "--".as_ref(),
    ];
    args.extend(&touch);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p: RawPath = serde_json::from_value(v["failing_writes"][0]["path"].clone()).unwrap();
    assert_eq!(
        p.as_bytes(),
        full.as_slice(),
        "exact bytes in verify's JSON"
    );
}
