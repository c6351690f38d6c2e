//! `writepath verify` usage errors exit 2 before anything runs (no root needed).

#[expect(
    dead_code,
    reason = "the verify usage tests use only the command runner of the shared helpers"
)]
mod common;

use common::*;

fn exit2(args: &[&str]) -> String {
    let out = writepath(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "writepath {args:?} should exit 2: {out:?}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn verify_usage_errors_exit_2() {
    exit2(&["verify"]);
    exit2(&["verify", "--mount", "/tmp"]);
    let err = exit2(&["verify", "--report", "/nonexistent/r.json", "--", "true"]);
    assert!(err.contains("/nonexistent/r.json"), "names the file: {err}");
    let err = exit2(&["verify", "--mount", "relative/dir", "--", "true"]);
    assert!(err.contains("absolute"), "{err}");
    let err = exit2(&["verify", "--mount", "/", "--", "true"]);
    assert!(err.contains("whole root"), "{err}");
    let err = exit2(&["verify", "-o", "xml", "--", "true"]);
    assert!(err.contains("table") && err.contains("yaml"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 1,\n \"targets\": [}").unwrap();
    let err = exit2(&["verify", "--report", bad.to_str().unwrap(), "--", "true"]);
    assert!(err.contains("bad.json:2:"), "names file and line: {err}");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = exit2(&["verify", "--mount", file.to_str().unwrap(), "--", "true"]);
    assert!(err.contains("not a directory"), "{err}");
}
