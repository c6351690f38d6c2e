//! One flag style across the commands (kubectl's): `-o` for output, `-c` for the container,
//! the same `--report` rule for `suggest` and `patch`, `kind: List` manifests, shell
//! completion, and messages that say what is wrong and what to do. No root needed.

#[expect(
    dead_code,
    reason = "the flag tests use only a few of the shared helpers"
)]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use writepath::suggest::{ContainerSuggestions, Suggestions};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn report(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/reports")
        .join(name)
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
fn patch_output_flag_and_deprecated_format_alias() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("Deployment"));
    let m = fixture("deployment.yaml");
    let base = ["patch", "--suggestions", s(&sugg), "-f", s(&m)];
    for format in ["manifest", "strategic", "json6902", "kustomize"] {
        let short = writepath(&[&base[..], &["-o", format]].concat());
        let long = writepath(&[&base[..], &["--output", format]].concat());
        let old = writepath(&[&base[..], &["--format", format]].concat());
        assert!(short.status.success(), "-o {format}: {}", stderr(&short));
        assert_eq!(short.stdout, long.stdout, "{format}");
        assert!(old.status.success(), "--format {format}: {}", stderr(&old));
        assert_eq!(short.stdout, old.stdout, "--format still works: {format}");
        assert!(
            stderr(&old).contains("deprecated") && stderr(&old).contains("-o"),
            "{}",
            stderr(&old)
        );
        assert!(!stderr(&short).contains("deprecated"), "{}", stderr(&short));
    }
    let strategic = writepath_ok(&[&base[..], &["-o", "strategic"]].concat());
    let manifest = writepath_ok(&base);
    assert_ne!(strategic, manifest, "-o chooses what is printed");
    // --format is not advertised any more; -o is.
    let help = writepath_ok(&["patch", "--help"]);
    assert!(help.contains("-o, --output"), "{help}");
    assert!(!help.contains("--format"), "{help}");
}

#[test]
fn patch_short_container_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &unnamed_suggestions());
    let m = fixture("deployment.yaml");
    let base = ["patch", "--suggestions", s(&sugg), "-f", s(&m)];
    let short = writepath_ok(&[&base[..], &["-c", "sidecar"]].concat());
    let long = writepath_ok(&[&base[..], &["--container", "sidecar"]].concat());
    assert_eq!(short, long);
    let doc = one_doc(&short);
    let containers = doc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "sidecar")
        .expect("sidecar");
    assert_eq!(
        sidecar["securityContext"]["readOnlyRootFilesystem"], true,
        "{short}"
    );
}

#[test]
fn suggest_and_patch_read_reports_the_same_way() {
    let (a, b) = (report("nginx.json"), report("redis.json"));
    let repeated = writepath_ok(&[
        "suggest",
        "-o",
        "json",
        "--report",
        s(&a),
        "--report",
        s(&b),
    ]);
    let after_one = writepath_ok(&["suggest", "-o", "json", "--report", s(&a), s(&b)]);
    assert_eq!(
        repeated, after_one,
        "suggest: both forms merge the same reports"
    );
    let s_: Suggestions = serde_json::from_str(&repeated).expect("json");
    assert_eq!(s_.containers.len(), 2, "{repeated}");

    let dir = tempfile::tempdir().expect("tempdir");
    let m = dir.path().join("web.yaml");
    std::fs::write(
        &m,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: nginx, image: nginx}\n",
    )
    .expect("write");
    let repeated = writepath_ok(&["patch", "-f", s(&m), "--report", s(&a), "--report", s(&b)]);
    let after_one = writepath_ok(&["patch", "-f", s(&m), "--report", s(&a), s(&b)]);
    assert_eq!(
        repeated, after_one,
        "patch: both forms merge the same reports"
    );
}

#[test]
fn patch_takes_a_kind_list_and_prints_a_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("Deployment"));
    // What `kubectl get deploy,svc -o yaml` prints: one List holding the objects.
    let deployment = one_doc(&std::fs::read_to_string(fixture("deployment.yaml")).unwrap());
    let service = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    });
    let list = serde_json::json!({
        "apiVersion": "v1", "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [service, deployment]
    });
    let m = dir.path().join("list.yaml");
    std::fs::write(&m, serde_yaml::to_string(&list).unwrap()).expect("write");
    let out = writepath_ok(&["patch", "--suggestions", s(&sugg), "-f", s(&m)]);
    let doc = one_doc(&out);
    assert_eq!(doc["kind"], "List", "{out}");
    assert_eq!(doc["metadata"], list["metadata"], "{out}");
    let items = doc["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{out}");
    assert_eq!(
        items[0], list["items"][0],
        "the Service is untouched: {out}"
    );
    // The item is patched exactly as the same Deployment on its own would be.
    let alone = writepath_ok(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&fixture("deployment.yaml")),
    ]);
    assert_eq!(items[1], one_doc(&alone), "{out}");
    assert_ne!(items[1], list["items"][1], "{out}");
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

#[test]
fn plain_suggest_without_a_cluster_points_at_report_files() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_writepath"))
        .arg("suggest")
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .expect("run writepath");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("--report FILE"), "{err}");
    assert!(err.contains("kubeconfig"), "the cause is kept: {err}");
}

#[test]
fn policy_prints_yaml_by_default_and_json_with_o() {
    let yaml = writepath_ok(&["policy", "--action", "Warn"]);
    assert_eq!(
        yaml,
        writepath_ok(&["policy", "--action", "Warn", "-o", "yaml"])
    );
    let json = writepath_ok(&["policy", "--action", "Warn", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&json).expect("one JSON document");
    assert_eq!(list["kind"], "List", "{json}");
    assert_eq!(
        list["items"].as_array().cloned().unwrap_or_default(),
        docs(&yaml),
        "the same objects"
    );
    assert_eq!(writepath(&["policy", "-o", "table"]).status.code(), Some(2));
}

#[test]
fn completion_scripts_for_bash_zsh_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let script = writepath_ok(&["completion", shell]);
        for word in ["record", "suggest", "patch", "policy", "verify", "--output"] {
            assert!(script.contains(word), "{shell} script completes {word}");
        }
    }
    assert_eq!(
        writepath(&["completion", "nosuchshell"]).status.code(),
        Some(2)
    );
}

/// Logs on a pipe (not a terminal) carry no colour codes, and NO_COLOR is honoured.
#[test]
fn logs_on_a_pipe_have_no_colour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    \
         insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  \
         context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
    )
    .unwrap();
    for no_color in [None, Some("1")] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_writepath"));
        cmd.args(["suggest", "-n", "shop", "deploy/web"])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "debug")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("run writepath");
        let err = stderr(&out);
        assert!(
            err.contains("DEBUG") || err.contains("ERROR"),
            "logs were written: {err}"
        );
        assert!(
            !err.contains('\u{1b}'),
            "no ANSI escapes on a pipe: {err:?}"
        );
    }
}
