//! Helpers shared by the patch and policy integration tests: running the binary, finding the
//! external tools (kubectl, kubernetes-validate), building suggestions, comparing YAML.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use writepath::path::RawPath;
use writepath::report::WorkloadRef;
use writepath::suggest::{
    ContainerSuggestions, Evidence, Purpose, Shadowing, Suggestions, VolumeKind, VolumeSuggestion,
};

/// Kubernetes version the schemas are checked against.
pub const K8S_VERSION: &str = "1.32.0";

/// A fixture manifest.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

/// Runs `writepath ARGS`.
pub fn writepath(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writepath"))
        .args(args)
        .output()
        .expect("failed to run writepath")
}

/// Runs `writepath ARGS` and returns its stdout, failing the test on a non-zero exit.
pub fn writepath_ok(args: &[&str]) -> String {
    let out = writepath(args);
    assert!(
        out.status.success(),
        "writepath {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is not UTF-8")
}

/// Whether `tool` can run. With `CI=true` a missing tool fails the test; elsewhere it prints
/// a loud skip message and the caller returns.
pub fn have_tool(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required in CI but cannot run");
        }
        eprintln!("!!!!! skipping test - {tool} is not installed !!!!!");
    }
    ok
}

/// Whether kubectl is there (see [`have_tool`]).
pub fn have_kubectl() -> bool {
    have_tool("kubectl", &["version", "--client"])
}

/// Whether kubernetes-validate is there (see [`have_tool`]).
pub fn have_validator() -> bool {
    have_tool("kubernetes-validate", &["--version"])
}

/// Runs a tool and returns its stdout, failing the test on a non-zero exit.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is not UTF-8")
}

/// Checks `file` against the Kubernetes schemas, strictly.
pub fn validate(file: &Path) {
    validate_for(file, K8S_VERSION);
}

/// Checks `file` against the schemas of Kubernetes `version`, strictly.
pub fn validate_for(file: &Path, version: &str) {
    run_ok(
        Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(file),
    );
}

/// Every non-empty document of a YAML stream, as JSON values (so key order does not matter).
pub fn docs(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            serde_json::Value::deserialize(d).unwrap_or_else(|e| panic!("bad YAML: {e}\n{text}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The only document of a YAML text.
pub fn one_doc(text: &str) -> serde_json::Value {
    let mut all = docs(text);
    assert_eq!(all.len(), 1, "expected one document:\n{text}");
    all.remove(0)
}

/// A suggested emptyDir.
pub fn empty_dir(
    path: &str,
    name: &str,
    medium: Option<&str>,
    size: Option<&str>,
) -> VolumeSuggestion {
    VolumeSuggestion {
        mount_path: RawPath::from(path),
        name: name.into(),
        volume: VolumeKind::EmptyDir {
            medium: medium.map(Into::into),
            size_limit: size.map(Into::into),
        },
        purpose: Purpose::Temp,
        evidence: Evidence {
            paths: 1,
            sample_paths: vec![RawPath::from(format!("{path}/x").as_str())],
            ops: Vec::new(),
            count: 1,
            first_seen: "2026-01-01T00:00:00Z".into(),
            last_seen: "2026-01-01T00:00:00Z".into(),
        },
        shadowing: None,
        shadowing_unknown: false,
        failed_writes: 0,
        alternatives: Vec::new(),
    }
}

/// The suggestions the fixtures are patched with: for `app`, /tmp (its name collides with the
/// fixture's configMap volume `tmp`), a shadowed /var/cache/nginx in memory, and /data on a
/// claim; for `sidecar`, /shared (already mounted) and /var/run; for the `init` init
/// container, /work.
pub fn web_suggestions(kind: &str) -> Suggestions {
    let workload = Some(WorkloadRef {
        kind: kind.into(),
        namespace: "shop".into(),
        name: "web".into(),
    });
    let mut cache = empty_dir(
        "/var/cache/nginx",
        "var-cache-nginx",
        Some("Memory"),
        Some("64Mi"),
    );
    cache.shadowing = Some(Shadowing {
        image_entries: 2,
        sample: vec![RawPath::from("/var/cache/nginx/README")],
        remedies: vec!["init-container-copy".into()],
    });
    let mut data = empty_dir("/data", "data", None, None);
    data.volume = VolumeKind::PersistentVolumeClaim {
        claim_name: "web-data".into(),
    };
    data.purpose = Purpose::Data;
    Suggestions {
        version: 1,
        containers: vec![
            ContainerSuggestions {
                workload: workload.clone(),
                container: Some("app".into()),
                container_kind: "container".into(),
                volumes: vec![data, empty_dir("/tmp", "tmp", None, None), cache],
                ..Default::default()
            },
            ContainerSuggestions {
                workload: workload.clone(),
                container: Some("sidecar".into()),
                container_kind: "container".into(),
                volumes: vec![
                    empty_dir("/shared", "shared", None, None),
                    empty_dir("/var/run", "var-run", None, None),
                ],
                ..Default::default()
            },
            ContainerSuggestions {
                workload,
                container: Some("init".into()),
                container_kind: "init".into(),
                volumes: vec![empty_dir("/work", "work", None, Some("1Gi"))],
                ..Default::default()
            },
        ],
    }
}

/// Writes suggestions as JSON into `dir` and returns the file.
pub fn write_suggestions(dir: &Path, s: &Suggestions) -> PathBuf {
    let file = dir.join("suggestions.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(s).expect("suggestions serialize"),
    )
    .expect("write suggestions");
    file
}
