//! The fixture reports of real workloads (`tests/fixtures/reports/NAME.json`) against the
//! hand-written expert answers beside them (`NAME.expected.json`, each with a `why`): the engine
//! must produce exactly the expected set of directories, with the expected volume kind,
//! purpose and shadowing, the expected environment variables, and the expected exclusions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use writepath::report::Report;
use writepath::suggest::{
    suggest, ContainerSuggestions, Suggestions, VolumeKind, VolumeSuggestion,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/reports")
}

#[derive(Debug, Deserialize)]
struct Expected {
    why: String,
    containers: Vec<ExpectedContainer>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct ExpectedContainer {
    container: String,
    volumes: Vec<ExpectedVolume>,
    env: Vec<String>,
    unresolved: Vec<String>,
    excluded: BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct ExpectedVolume {
    mount_path: String,
    volume: String,
    purpose: String,
    shadowed_entries: u64,
    /// Calls that already failed with EROFS (0 when absent).
    #[serde(default)]
    failed_writes: u64,
    #[serde(skip)]
    why: (),
}

fn volume_kind(v: &VolumeSuggestion) -> String {
    match &v.volume {
        VolumeKind::EmptyDir { medium, size_limit } => {
            let mut s = "emptyDir".to_string();
            if let Some(m) = medium {
                s.push_str(&format!(" medium={m}"));
            }
            if let Some(l) = size_limit {
                s.push_str(&format!(" sizeLimit={l}"));
            }
            s
        }
        VolumeKind::PersistentVolumeClaim { .. } => "persistentVolumeClaim".into(),
    }
}

fn project(c: &ContainerSuggestions) -> ExpectedContainer {
    let mut excluded = BTreeMap::new();
    for e in &c.excluded {
        *excluded.entry(e.reason.clone()).or_insert(0) += 1;
    }
    ExpectedContainer {
        container: c.container.clone().unwrap_or_default(),
        volumes: c
            .volumes
            .iter()
            .map(|v| ExpectedVolume {
                mount_path: v.mount_path.to_string(),
                volume: volume_kind(v),
                purpose: serde_json::to_value(v.purpose)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
                shadowed_entries: v.shadowing.as_ref().map_or(0, |s| s.image_entries),
                failed_writes: v.failed_writes,
                why: (),
            })
            .collect(),
        env: c
            .env
            .iter()
            .map(|e| format!("{}={}", e.name, e.value))
            .collect(),
        unresolved: c.unresolved.iter().map(|u| u.path.to_string()).collect(),
        excluded,
    }
}

fn check(name: &str) -> Suggestions {
    let dir = fixtures();
    let report = Report::load(&dir.join(format!("{name}.json"))).unwrap();
    let text = std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap();
    let expected: Expected = serde_json::from_str(&text).unwrap();
    assert!(
        !expected.why.is_empty(),
        "{name}: the expected answer must say why"
    );
    let got = suggest(&[report]);
    let projected: Vec<ExpectedContainer> = got.containers.iter().map(project).collect();
    assert_eq!(
        projected, expected.containers,
        "{name}: engine answer differs from the expert answer"
    );
    for c in &got.containers {
        for v in &c.volumes {
            assert!(
                v.evidence.paths > 0 && !v.evidence.sample_paths.is_empty(),
                "{name}: {} lacks evidence",
                v.mount_path
            );
            assert!(!v.evidence.first_seen.is_empty() && !v.evidence.last_seen.is_empty());
            if let Some(sh) = &v.shadowing {
                assert!(
                    sh.remedies.iter().any(|r| r == "init-container-copy"),
                    "{name}: {:?}",
                    sh.remedies
                );
            }
        }
    }
    got
}

#[test]
fn nginx() {
    check("nginx");
}

#[test]
fn postgres() {
    let got = check("postgres");
    let data = &got.containers[0].volumes[1];
    assert!(
        matches!(&data.volume, VolumeKind::PersistentVolumeClaim { claim_name } if claim_name == "var-lib-postgresql-data")
    );
}

#[test]
fn nginx_on_a_read_only_root() {
    check("nginx-readonly");
}

#[test]
fn redis() {
    check("redis");
}

#[test]
fn jvm() {
    let got = check("jvm");
    let tmp = &got.containers[0].volumes[1];
    assert!(
        tmp.alternatives
            .iter()
            .any(|a| a.contains("-Djava.io.tmpdir")),
        "{:?}",
        tmp.alternatives
    );
    let logs = &got.containers[0].volumes[0];
    assert!(
        logs.alternatives.iter().any(|a| a.contains("stdout")),
        "{:?}",
        logs.alternatives
    );
}

#[test]
fn node() {
    let got = check("node");
    let npm = &got.containers[0].volumes[0];
    assert!(
        npm.alternatives
            .iter()
            .any(|a| a.contains("npm_config_cache")),
        "{:?}",
        npm.alternatives
    );
}

#[test]
fn python() {
    check("python");
}

#[test]
fn every_fixture_has_an_expected_answer() {
    let mut reports = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name
            .strip_suffix(".json")
            .filter(|s| !s.ends_with(".expected"))
        {
            reports += 1;
            assert!(
                fixtures().join(format!("{stem}.expected.json")).exists(),
                "{stem} has no expected answer"
            );
        }
    }
    assert!(reports >= 7, "only {reports} fixture reports");
}
