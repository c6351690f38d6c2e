//! Every workload kind × every patch format, proven by kubectl itself: the strategic and
//! RFC 6902 patches applied with `kubectl patch --local`, and the kustomize entries applied with
//! `kubectl kustomize`, give exactly the object `--format manifest` prints; applying a patch
//! twice gives the same object as once; and the result passes the Kubernetes schemas.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The workload kinds and their fixture files.
pub const KINDS: [(&str, &str); 7] = [
    ("Pod", "pod.yaml"),
    ("Deployment", "deployment.yaml"),
    ("StatefulSet", "statefulset.yaml"),
    ("DaemonSet", "daemonset.yaml"),
    ("ReplicaSet", "replicaset.yaml"),
    ("Job", "job.yaml"),
    ("CronJob", "cronjob.yaml"),
];

/// `kubectl patch --local` of `file` with `patch` (`kind`: strategic or json).
fn kubectl_patch(file: &Path, kind: &str, patch: &Path) -> serde_json::Value {
    one_doc(&run_ok(
        Command::new("kubectl")
            .args(["patch", "--local", "-o", "yaml", "--type", kind, "-f"])
            .arg(file)
            .arg("--patch-file")
            .arg(patch),
    ))
}

/// `kubectl kustomize` of `resource` with the printed `patches:` entries.
fn kubectl_kustomize(dir: &Path, resource: &Path, entries: &str) -> serde_json::Value {
    let kdir = dir.join("kustomize");
    std::fs::create_dir_all(&kdir).expect("mkdir");
    std::fs::copy(resource, kdir.join("resource.yaml")).expect("copy resource");
    let mut k = one_doc(entries);
    k["resources"] = serde_json::json!(["resource.yaml"]);
    std::fs::write(
        kdir.join("kustomization.yaml"),
        serde_yaml::to_string(&k).expect("yaml"),
    )
    .expect("write");
    one_doc(&run_ok(Command::new("kubectl").arg("kustomize").arg(&kdir)))
}

fn check_kind(kind: &str, fixture_name: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions(kind));
    let sugg = sugg.to_str().expect("utf-8 path");
    let input = fixture(fixture_name);
    let input_s = input.to_str().expect("utf-8 path");
    let run = |format: &str, file: &str| {
        let mut args = vec![
            "patch",
            "--suggestions",
            sugg,
            "-f",
            file,
            "--format",
            format,
        ];
        args.extend_from_slice(extra);
        writepath_ok(&args)
    };
    let ctx = format!("{kind} {extra:?}");

    let manifest_text = run("manifest", input_s);
    let manifest = one_doc(&manifest_text);
    let patched = dir.path().join("patched.yaml");
    std::fs::write(&patched, &manifest_text).expect("write");
    validate(&patched);

    // The manifest format is idempotent: patching its output changes nothing.
    assert_eq!(
        run("manifest", patched.to_str().expect("utf-8")),
        manifest_text,
        "{ctx}: manifest twice"
    );
    assert_ne!(
        one_doc(&std::fs::read_to_string(&input).expect("read")),
        manifest,
        "{ctx}: nothing changed"
    );

    for (format, kubectl_type) in [("strategic", "strategic"), ("json6902", "json")] {
        let patch = dir.path().join(format!("{format}.patch"));
        std::fs::write(&patch, run(format, input_s)).expect("write patch");
        let once = kubectl_patch(&input, kubectl_type, &patch);
        assert_eq!(
            once, manifest,
            "{ctx}: {format} via kubectl differs from the manifest format"
        );
        let once_file = dir.path().join(format!("{format}.once.yaml"));
        std::fs::write(&once_file, serde_yaml::to_string(&once).expect("yaml")).expect("write");
        let twice = kubectl_patch(&once_file, kubectl_type, &patch);
        assert_eq!(
            twice, manifest,
            "{ctx}: {format} applied twice differs from once"
        );
    }

    let entries = run("kustomize", input_s);
    assert_eq!(
        kubectl_kustomize(dir.path(), &input, &entries),
        manifest,
        "{ctx}: kustomize differs"
    );
}

#[test]
fn every_kind_and_format_matches_the_manifest_format() {
    if !have_kubectl() || !have_validator() {
        return;
    }
    for (kind, file) in KINDS {
        check_kind(kind, file, &[]);
    }
}

#[test]
fn every_kind_and_format_matches_with_harden_and_copy() {
    if !have_kubectl() || !have_validator() {
        return;
    }
    for (kind, file) in KINDS {
        check_kind(kind, file, &["--harden", "--copy-image-content"]);
    }
}

#[test]
fn container_flag_patches_only_that_container() {
    if !have_kubectl() || !have_validator() {
        return;
    }
    check_kind("Deployment", "deployment.yaml", &["--container", "sidecar"]);
    let out = writepath_ok(&[
        "patch",
        "--suggestions",
        write_suggestions(
            tempfile::tempdir().expect("tmp").keep().as_path(),
            &web_suggestions("Deployment"),
        )
        .to_str()
        .expect("utf-8"),
        "-f",
        fixture("deployment.yaml").to_str().expect("utf-8"),
        "--container",
        "sidecar",
    ]);
    let doc = one_doc(&out);
    let containers = &doc["spec"]["template"]["spec"]["containers"];
    assert!(containers[0]
        .get("securityContext")
        .and_then(|s| s.get("readOnlyRootFilesystem"))
        .is_none());
    assert_eq!(
        containers[1]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
}
