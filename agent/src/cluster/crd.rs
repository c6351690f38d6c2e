//! The `WritePathReport` custom resource (group `writepath.dev`, version `v1alpha1`): one per
//! workload and node, holding that node's [`Report`] for the workload's containers. The CRD in
//! `deploy/base/crd.yaml` is generated from this type (a test keeps the two equal).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::{Report, WorkloadRef};

/// Label: the node that published the report.
pub const LABEL_NODE: &str = "writepath.dev/node";
/// Label: the workload's kind.
pub const LABEL_KIND: &str = "writepath.dev/workload-kind";
/// Label: the workload's name (hashed when it is not a valid label value).
pub const LABEL_NAME: &str = "writepath.dev/workload-name";
/// Largest serialized report published in one object; etcd refuses objects over 1.5 MiB.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// One node's observations of one workload.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "writepath.dev",
    version = "v1alpha1",
    kind = "WritePathReport",
    plural = "writepathreports",
    shortname = "wpr",
    namespaced,
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.workload.kind"}"#,
    printcolumn = r#"{"name":"Workload","type":"string","jsonPath":".spec.workload.name"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"Updated","type":"string","jsonPath":".spec.report.recording.finished_at"}"#
)]
pub struct WritePathReportSpec {
    /// The node whose agent recorded this.
    pub node: String,
    /// The workload (in the object's namespace).
    pub workload: WorkloadSpec,
    /// The writepath report (the JSON report format, `version` field included) with the
    /// workload's targets on this node.
    #[schemars(schema_with = "report_schema")]
    pub report: Report,
}

/// A workload of the report's namespace.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet or Pod.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// The report is the versioned JSON report format, documented with the report; the API server
/// keeps it as it is.
fn report_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "The writepath JSON report (see docs/agent.md).",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// The object name for a workload on a node: `<kind>-<name>-<node>`, lowercased, cut and
/// suffixed with a hash when longer than a name may be.
pub fn object_name(workload: &WorkloadRef, node: &str) -> String {
    let raw = format!("{}-{}-{}", workload.kind, workload.name, node).to_ascii_lowercase();
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches(|c| c == '-' || c == '.').to_string();
    if clean.len() <= 253 && clean == raw {
        return clean;
    }
    let mut cut: String = clean.chars().take(240).collect();
    while cut.ends_with(['-', '.']) {
        cut.pop();
    }
    format!("{cut}-{:08x}", fnv(&raw) as u32)
}

/// A label value for `value`: itself when valid, else a cut prefix and a hash.
pub fn label_value(value: &str) -> String {
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric());
    if valid {
        return value.to_string();
    }
    let prefix: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(50)
        .collect();
    format!("{prefix}-{:08x}", fnv(value) as u32)
}

/// FNV-1a, 64-bit: a stable hash for names (not for security).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The object publishing `report` for `workload` from `node`.
pub fn build(workload: &WorkloadRef, node: &str, report: Report) -> WritePathReport {
    let mut object = WritePathReport::new(
        &object_name(workload, node),
        WritePathReportSpec {
            node: node.to_string(),
            workload: WorkloadSpec {
                kind: workload.kind.clone(),
                name: workload.name.clone(),
            },
            report: fit(report, MAX_REPORT_BYTES),
        },
    );
    object.metadata.namespace = Some(workload.namespace.clone());
    object.metadata.labels = Some(
        [
            (LABEL_NODE.to_string(), label_value(node)),
            (LABEL_KIND.to_string(), label_value(&workload.kind)),
            (LABEL_NAME.to_string(), label_value(&workload.name)),
        ]
        .into(),
    );
    object
}

/// Shrinks a report until its JSON fits in `max` bytes: first the image-content samples, then
/// the writes of each target folded into their directories, deepest first (each fold counted in
/// `counters.collapsed`). A report already small enough is returned unchanged.
pub fn fit(mut report: Report, max: usize) -> Report {
    let size = |r: &Report| serde_json::to_vec(r).map(|v| v.len()).unwrap_or(usize::MAX);
    if size(&report) <= max {
        return report;
    }
    for t in &mut report.targets {
        for d in &mut t.directories {
            d.sample.clear();
        }
    }
    while size(&report) > max {
        let mut folded = 0;
        for t in &mut report.targets {
            let Some(depth) = t
                .writes
                .iter()
                .map(|w| w.path.as_bytes().split(|b| *b == b'/').count())
                .max()
            else {
                continue;
            };
            if depth <= 2 {
                continue;
            }
            let mut merged: std::collections::BTreeMap<crate::path::RawPath, crate::report::Write> =
                Default::default();
            for w in std::mem::take(&mut t.writes) {
                let deep = w.path.as_bytes().split(|b| *b == b'/').count() == depth;
                let mut w = w;
                if deep {
                    w.path = w.path.parent();
                    if !w.issues.iter().any(|i| i == "collapsed") {
                        w.issues.push("collapsed".into());
                    }
                    folded += 1;
                }
                match merged.get_mut(&w.path) {
                    Some(m) => merge_write(m, w),
                    None => {
                        merged.insert(w.path.clone(), w);
                    }
                }
            }
            t.writes = merged.into_values().collect();
        }
        if folded == 0 {
            break;
        }
        report.counters.collapsed += folded;
    }
    report
}

/// Adds `w`'s evidence to `into` (same path).
pub fn merge_write(into: &mut crate::report::Write, w: crate::report::Write) {
    into.count += w.count;
    for (k, v) in w.results {
        *into.results.entry(k).or_default() += v;
    }
    for op in w.ops {
        if !into.ops.contains(&op) {
            into.ops.push(op);
        }
    }
    into.ops.sort();
    if !w.first_seen.is_empty() && (into.first_seen.is_empty() || w.first_seen < into.first_seen) {
        into.first_seen = w.first_seen;
    }
    if w.last_seen > into.last_seen {
        into.last_seen = w.last_seen;
    }
    for list in [
        (&mut into.processes, w.processes),
        (&mut into.issues, w.issues),
    ] {
        for x in list.1 {
            if !list.0.contains(&x) {
                list.0.push(x);
            }
        }
        list.0.sort();
    }
    for r in w.related {
        if !into.related.contains(&r) {
            into.related.push(r);
        }
    }
    into.related.sort();
    into.size = into.size.max(w.size);
    if into.mount.is_none() {
        into.mount = w.mount;
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt as _;

    use super::*;
    use crate::report::{Target, Write};

    /// `deploy/base/crd.yaml` is this type's CRD. `WRITEPATH_BLESS=1` rewrites the file.
    #[test]
    fn committed_crd_is_the_generated_one() {
        let generated = format!(
            "# Generated from agent/src/cluster/crd.rs (WRITEPATH_BLESS=1 cargo test -p writepath crd); do not edit.\n{}",
            serde_yaml::to_string(&WritePathReport::crd()).unwrap()
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/base/crd.yaml");
        if std::env::var_os("WRITEPATH_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "deploy/base/crd.yaml differs from the generated CRD; run WRITEPATH_BLESS=1 cargo test -p writepath crd"
        );
    }

    #[test]
    fn names_are_valid_and_stable() {
        let w = WorkloadRef {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        };
        assert_eq!(object_name(&w, "node-1"), "deployment-web-node-1");
        let long = WorkloadRef {
            name: "x".repeat(300),
            ..w.clone()
        };
        let n = object_name(&long, "node-1");
        assert!(n.len() <= 253, "{}", n.len());
        assert_eq!(n, object_name(&long, "node-1"));
        assert_ne!(n, object_name(&long, "node-2"));
        assert_eq!(label_value("web"), "web");
        let l = label_value(&"y".repeat(80));
        assert!(l.len() <= 63);
        let o = build(&w, "Node_1", Report::default());
        assert_eq!(o.metadata.namespace.as_deref(), Some("shop"));
        assert!(o
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("deployment-web-node-1-"));
    }

    #[test]
    fn oversized_reports_fold_into_directories() {
        let writes = (0..5000)
            .map(|i| Write {
                path: format!("/var/cache/app/blobs/{i:05}/data").as_str().into(),
                count: 1,
                ..Default::default()
            })
            .collect();
        let r = Report {
            version: 1,
            targets: vec![Target {
                writes,
                ..Default::default()
            }],
            ..Default::default()
        };
        let big = serde_json::to_vec(&r).unwrap().len();
        let small = fit(r, big / 10);
        assert!(serde_json::to_vec(&small).unwrap().len() <= big / 10);
        let total: u64 = small.targets[0].writes.iter().map(|w| w.count).sum();
        assert_eq!(total, 5000, "no observation lost by folding");
        assert!(small.counters.collapsed > 0);
    }
}
