//! `deploy/` builds with `kubectl kustomize`, validates against the Kubernetes API schemas
//! (`kubernetes-validate --strict`), and keeps the security properties the agent promises.
//! Without the tools the test is skipped loudly; with `CI=true` their absence is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--help").output().is_ok();
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "{name} is required in CI");
        eprintln!("skipping test - {name} not installed");
    }
    found
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn built() -> String {
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(root().join("deploy"))
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/ failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kustomize_builds_and_validates() {
    if !tool("kubectl") || !tool("kubernetes-validate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("writepath.yaml");
    std::fs::write(&file, built()).unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.32.0"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "validation failed:\n{text}");
    for kind in [
        "customresourcedefinition/writepathreports.writepath.dev",
        "daemonset/writepath-agent",
        "clusterrole/writepath-agent",
        "serviceaccount/writepath-agent",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{kind} not validated:\n{text}"
        );
    }
}

#[test]
fn daemonset_is_least_privilege() {
    if !tool("kubectl") {
        return;
    }
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&built())
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    let added: Vec<&str> = sc["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for cap in ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"] {
        assert!(added.contains(&cap), "{cap} missing");
    }
    assert!(!added.contains(&"SYS_ADMIN"), "never CAP_SYS_ADMIN");
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let env = c["env"].as_sequence().unwrap();
    let node = env
        .iter()
        .find(|e| e["name"] == "WRITEPATH_NODE_NAME")
        .expect("node name");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    for (path, ro) in [
        ("/sys/fs/cgroup", true),
        ("/host/proc", true),
        ("/var/lib/writepath", false),
    ] {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("{path} not mounted"));
        assert_eq!(m["readOnly"].as_bool().unwrap_or(false), ro, "{path}");
    }
    // RBAC: writes only to its own reports.
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "writepath-agent")
        .unwrap();
    for rule in role["rules"].as_sequence().unwrap() {
        let writes = rule["verbs"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| ["create", "update", "patch", "delete"].contains(&v.as_str().unwrap()));
        if writes {
            assert_eq!(rule["resources"][0], "writepathreports", "{rule:?}");
            assert_eq!(rule["apiGroups"][0], "writepath.dev");
        }
    }
}
