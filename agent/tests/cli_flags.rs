//! One flag style across the commands (kubectl's): `-o` for output, `-c` for the container,
//! the same `--report` rule for `suggest` and `patch`, `kind: List` manifests, shell
//! completion, and messages that say what is wrong and what to do. No root needed.

#[expect(
    dead_code,
    reason = "the flag tests use only a few of the shared helpers"
)]
mod common;

use std::path::Path;

use common::*;
use writepath::suggest::{ContainerSuggestions, Suggestions};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Suggestions for one container of no workload (a `writepath record` outside Kubernetes).
fn unnamed_suggestions() -> Suggestions {
    Suggestions {
        version: 1,
        containers: vec![ContainerSuggestions {
            container_kind: "container".into(),
            cgroups: vec!["/writepath/record-1".into()],
            volumes: vec![empty_dir("/tmp", "tmp", None, None)],
            ..Default::default()
        }],
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unnamed_suggestions_and_several_workloads_say_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &unnamed_suggestions());
    let out = writepath(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&fixture("multi.yaml")),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        !err.contains("a workload the suggestions do not name"),
        "{err}"
    );
    assert!(err.contains("multi.yaml"), "names the file: {err}");
    assert!(
        err.contains("name no workload"),
        "says what is wrong: {err}"
    );
    assert!(
        err.contains("only the workload that was recorded"),
        "says what to do: {err}"
    );
}
