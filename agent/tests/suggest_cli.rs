//! `writepath suggest` through the built binary: formats, merging, and input errors (exit 2,
//! naming the file and line).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use writepath::suggest::Suggestions;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/reports")
        .join(name)
}

fn suggest(args: &[&str], reports: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_writepath"));
    cmd.arg("suggest");
    for r in reports {
        cmd.arg("--report").arg(r);
    }
    cmd.args(args).output().expect("run writepath")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_output_is_the_suggestions_document() {
    let o = suggest(&["-o", "json"], &[&fixture("nginx.json")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Suggestions = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(s.version, 1);
    let paths: Vec<String> = s.containers[0]
        .volumes
        .iter()
        .map(|v| v.mount_path.to_string())
        .collect();
    assert_eq!(paths, ["/etc/nginx/conf.d", "/run", "/var/cache/nginx"]);
    let raw: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        raw["containers"][0]["volumes"][0]["volume"]["type"],
        "emptyDir"
    );
    assert_eq!(raw["containers"][0]["workload"]["kind"], "Deployment");
}

#[test]
fn yaml_output_parses_to_the_same_document() {
    let json = suggest(&["-o", "json"], &[&fixture("postgres.json")]);
    let yaml = suggest(&["--output", "yaml"], &[&fixture("postgres.json")]);
    assert!(yaml.status.success(), "{}", stderr(&yaml));
    let from_yaml: Suggestions = serde_yaml::from_slice(&yaml.stdout).expect("yaml");
    let from_json: Suggestions = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(from_yaml, from_json);
    assert!(String::from_utf8_lossy(&yaml.stdout).contains("type: persistentVolumeClaim"));
}

#[test]
fn table_is_the_default_and_readable() {
    let o = suggest(&[], &[&fixture("python.json")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with("Deployment ml/api, container api\n"),
        "{text}"
    );
    assert!(text.contains("MOUNT PATH"), "{text}");
    assert!(text.contains("/root/.cache"), "{text}");
    assert!(text.contains("PYTHONDONTWRITEBYTECODE=1"), "{text}");
    assert!(text.contains("optional:python-bytecode"), "{text}");
}

#[test]
fn several_reports_merge_by_workload_and_container() {
    let dir = tempfile::tempdir().unwrap();
    // The same Deployment seen by two agents: replica 1 wrote the cache, replica 2 the pid file.
    let text = std::fs::read_to_string(fixture("nginx.json")).unwrap();
    let mut one: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut two = one.clone();
    let keep = |v: &mut serde_json::Value, prefix: &str| {
        let writes = v["targets"][0]["writes"].as_array_mut().unwrap();
        writes.retain(|w| w["path"].as_str().unwrap().starts_with(prefix));
    };
    keep(&mut one, "/var/cache/nginx");
    keep(&mut two, "/var/run");
    two["targets"][0]["pod"]["name"] = "web-7d9c6b5f4-zzzzz".into();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&a, one.to_string()).unwrap();
    std::fs::write(&b, two.to_string()).unwrap();
    let alone = suggest(&["-o", "json"], &[&a]);
    let alone: Suggestions = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(alone.containers[0].volumes.len(), 1);
    let o = suggest(&["-o", "json"], &[&a, &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Suggestions = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.containers.len(), 1);
    let paths: Vec<String> = s.containers[0]
        .volumes
        .iter()
        .map(|v| v.mount_path.to_string())
        .collect();
    assert_eq!(paths, ["/run", "/var/cache/nginx"]);
}

#[test]
fn malformed_report_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"version\": 1,\n  \"targets\": [\n    {\"cgroup\": 3}\n  ]\n}\n",
    )
    .unwrap();
    let o = suggest(&[], &[&fixture("redis.json"), &bad]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:4:", bad.display())), "{err}");
    assert!(o.stdout.is_empty(), "nothing printed on error");
}

#[test]
fn empty_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let o = suggest(&[], &[&empty]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty.json:1:"), "{}", stderr(&o));
}

#[test]
fn report_without_targets_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none.json");
    std::fs::write(&none, r#"{"version": 1, "targets": []}"#).unwrap();
    let o = suggest(&[], &[&none]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("none.json: report has no targets"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_file_and_missing_flag_exit_2() {
    let o = suggest(&[], &[Path::new("/nonexistent/r.json")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/r.json"), "{}", stderr(&o));
    let o = suggest(&[], &[]);
    assert_eq!(o.status.code(), Some(2), "--report is required");
}

#[test]
fn hostile_paths_are_escaped_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r.json");
    let report = serde_json::json!({
        "version": 1,
        "targets": [{
            "cgroup": {"path": "/x", "id": 1},
            "writes": [{
                "path": "/srv/evil\u{1b}[2J\ndir/f",
                "ops": ["create"], "count": 1, "results": {"ok": 1},
                "first_seen": "2026-11-27T10:00:00Z", "last_seen": "2026-11-27T10:00:00Z"
            }]
        }]
    });
    std::fs::write(&r, report.to_string()).unwrap();
    let o = suggest(&[], &[&r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("/srv/evil\\x1b[2J\\ndir"), "{text}");
}

#[test]
fn writes_failing_on_a_read_only_root_show_as_missing_volumes() {
    let o = suggest(&[], &[&fixture("nginx-readonly.json")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("missing volume: /run failed 3 times"),
        "{text}"
    );
    assert!(
        text.contains("missing volume: /etc/nginx/conf.d failed 3 times"),
        "{text}"
    );
    assert!(!text.contains("missing volume: /var/cache/nginx"), "{text}");
}

/// Other writepath documents given as reports are named for what they are, with what to give
/// instead; version 0 is not "newer".
#[test]
fn other_documents_and_version_0_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let suggestions = dir.path().join("suggestions.json");
    let o = suggest(&["-o", "json"], &[&fixture("redis.json")]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&suggestions, &o.stdout).unwrap();
    let o = suggest(&[], &[&suggestions]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("not a writepath report but the output of `writepath suggest -o json`"),
        "{err}"
    );
    assert!(!err.contains("no targets"), "{err}");

    let object = dir.path().join("object.json");
    std::fs::write(&object, r#"{"apiVersion": "writepath.dev/v1alpha1", "kind": "WritePathReport", "metadata": {"name": "x"}}"#).unwrap();
    let err = stderr(&suggest(&[], &[&object]));
    assert!(err.contains("a WritePathReport object"), "{err}");

    let v0 = dir.path().join("v0.json");
    std::fs::write(&v0, r#"{"version": 0, "targets": []}"#).unwrap();
    let o = suggest(&[], &[&v0]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("version 0 is not a report version"), "{err}");
    assert!(!err.contains("newer"), "{err}");
}

/// `writepath suggest … | head -1`: a closed pipe ends the output quietly, not with an error.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read as _;
    // 2 000 workloads: far more output than a pipe buffers, so the writer meets the closed end.
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("nginx.json")).unwrap()).unwrap();
    let target = report["targets"][0].clone();
    let targets: Vec<serde_json::Value> = (0..2000)
        .map(|i| {
            let mut t = target.clone();
            t["workload"]["name"] = format!("web{i}").into();
            t["cgroup"]["id"] = (100_000 + i).into();
            t
        })
        .collect();
    report["targets"] = targets.into();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, serde_json::to_vec(&report).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_writepath"))
        .args(["suggest", "-o", "yaml", "--report"])
        .arg(&big)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close our end before the output is done.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("error"), "{err}");
    assert!(out.status.success(), "{:?} {err}", out.status);
}

/// A version-1 report from a newer writepath may hold operations and results this one does
/// not know (fields and values are only ever added): it is read, the unknown operation is
/// taken as a write that needs its directory, and it is shown as `unknown`.
#[test]
fn unknown_values_in_a_version_1_report_are_read() {
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("nginx.json")).unwrap()).unwrap();
    let writes = report["targets"][0]["writes"].as_array_mut().unwrap();
    let mut w = writes[0].clone();
    w["path"] = "/srv/exploded/file".into();
    w["ops"] = serde_json::json!(["explode"]);
    w["results"] = serde_json::json!({"ENEWERRNO": 3});
    writes.push(w);
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("newer.json");
    std::fs::write(&r, serde_json::to_vec(&report).unwrap()).unwrap();
    let o = suggest(&["-o", "json"], &[&r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("/srv/exploded"),
        "the unknown write still needs its directory: {text}"
    );
    let table = suggest(&[], &[&r]);
    assert!(table.status.success(), "{}", stderr(&table));
}
