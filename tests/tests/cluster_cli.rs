//! `writepath suggest` and `writepath patch` against a cluster, through the binary: the
//! kubeconfig points at the in-process API server (no kube-apiserver can run here), which holds
//! the WritePathReports two agents published for one Deployment and the live Deployment.

use std::process::Command;

use serde_json::{json, Value};
use writepath::cluster::{crd, testserver::TestServer};
use writepath::report::{ContainerRef, OpName, Report, Target, WorkloadRef, Write};
use writepath_tests::writepath_bin;

fn published(node: &str, path: &str) -> Value {
    let w = WorkloadRef {
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "web".into(),
    };
    let report = Report {
        version: 1,
        targets: vec![Target {
            workload: Some(w.clone()),
            container: Some(ContainerRef {
                id: format!("{node}-id"),
                runtime: "containerd".into(),
                name: Some("app".into()),
                kind: Some("container".into()),
            }),
            writes: vec![Write {
                path: path.into(),
                ops: vec![OpName::Create],
                count: 3,
                results: [("ok".to_string(), 3)].into(),
                first_seen: "2026-01-01T00:00:00Z".into(),
                last_seen: "2026-01-01T00:01:00Z".into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    serde_json::to_value(crd::build(&w, node, report)).unwrap()
}

#[test]
fn suggest_and_patch_from_the_agents_reports() {
    if !writepath_bin().exists() {
        assert!(!writepath_tests::in_ci(), "no writepath binary in CI");
        eprintln!("skipping test - no binary at {}", writepath_bin().display());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(TestServer::start());
    let reports = "apis/writepath.dev/v1alpha1/writepathreports";
    server.put(reports, published("node-1", "/var/cache/web/blob"));
    server.put(reports, published("node-2", "/run/web/web.pid"));
    server.put(
        "apis/apps/v1/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "app", "image": "web:1"}]}}},
               "status": {"replicas": 2}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(writepath_bin())
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };

    let (code, out, err) = run(&["suggest", "-n", "shop", "deploy/web", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("read 2 reports from 2 nodes"), "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["containers"].as_array().unwrap().len(), 1, "{out}");
    assert!(
        out.contains("/var/cache/web") && out.contains("/run/web"),
        "{out}"
    );

    let (code, out, err) = run(&["patch", "-n", "shop", "deploy/web", "--format", "strategic"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("readOnlyRootFilesystem: true"), "{out}");
    assert!(out.contains("mountPath: /var/cache/web"), "{out}");
    assert!(out.contains("mountPath: /run/web"), "{out}");

    // With -f, the file is patched with the cluster's suggestions.
    let manifest = dir.path().join("web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: web:1\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "patch",
        "-n",
        "shop",
        "deploy/web",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("readOnlyRootFilesystem: true"), "{out}");

    let (code, _, err) = run(&["suggest", "-n", "shop", "deploy/nope"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("Deployment nope"), "{err}");
    let (code, _, err) = run(&["suggest", "-n", "shop", "service/web"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid workload"), "{err}");
    // The file-based form still works without a cluster.
    let (code, _, err) = run(&["suggest", "--report", "/nonexistent.json"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent.json"), "{err}");
}
