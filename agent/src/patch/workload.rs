//! Workload kinds writepath patches, where each keeps its pod spec, and how a manifest
//! document names its object.

use std::fmt;

use serde_yaml::{Mapping, Value};

/// The kinds whose pod spec writepath can patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `v1` Pod: `spec`.
    Pod,
    /// `apps/v1` Deployment: `spec.template.spec`.
    Deployment,
    /// `apps/v1` StatefulSet: `spec.template.spec`.
    StatefulSet,
    /// `apps/v1` DaemonSet: `spec.template.spec`.
    DaemonSet,
    /// `apps/v1` ReplicaSet: `spec.template.spec`.
    ReplicaSet,
    /// `batch/v1` Job: `spec.template.spec`.
    Job,
    /// `batch/v1` CronJob: `spec.jobTemplate.spec.template.spec`.
    CronJob,
}

/// The supported kinds, for messages.
pub const SUPPORTED: &str = "Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob";

impl Kind {
    /// The kind named `name`, if writepath patches it.
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "Pod" => Kind::Pod,
            "Deployment" => Kind::Deployment,
            "StatefulSet" => Kind::StatefulSet,
            "DaemonSet" => Kind::DaemonSet,
            "ReplicaSet" => Kind::ReplicaSet,
            "Job" => Kind::Job,
            "CronJob" => Kind::CronJob,
            _ => return None,
        })
    }

    /// The keys leading from the object to its pod spec.
    pub fn pod_spec_path(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &["spec"],
            Kind::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &["spec", "template", "spec"],
        }
    }
}

/// What a manifest document is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// An empty document.
    Empty,
    /// A workload writepath can patch.
    Workload(Object),
    /// Anything else (a Service, a ConfigMap, a kind writepath does not know); `kind` is
    /// empty when the document has none.
    Other {
        /// The document's kind.
        kind: String,
    },
}

/// A workload object found in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Index of its document in the stream (0-based; messages say `document {index + 1}`).
    pub index: usize,
    /// Its kind.
    pub kind: Kind,
    /// The kind as written.
    pub kind_name: String,
    /// `apiVersion` as written.
    pub api_version: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind_name, ns, self.name),
            None => write!(f, "{} {}", self.kind_name, self.name),
        }
    }
}

/// Classifies the document at `index`.
pub fn classify(index: usize, doc: &Value) -> Class {
    let Some(map) = doc.as_mapping() else {
        return if doc.is_null() {
            Class::Empty
        } else {
            Class::Other {
                kind: String::new(),
            }
        };
    };
    let kind_name = str_at(map, "kind").unwrap_or_default().to_string();
    let Some(kind) = Kind::parse(&kind_name) else {
        return Class::Other { kind: kind_name };
    };
    let meta = map.get("metadata").and_then(Value::as_mapping);
    Class::Workload(Object {
        index,
        kind,
        kind_name,
        api_version: str_at(map, "apiVersion").unwrap_or_default().to_string(),
        name: meta
            .and_then(|m| str_at(m, "name"))
            .unwrap_or_default()
            .to_string(),
        namespace: meta
            .and_then(|m| str_at(m, "namespace"))
            .map(str::to_string),
    })
}

/// The string at `key`, if it is one.
pub fn str_at<'a>(map: &'a Mapping, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// The pod spec of a workload document, if the document has one where its kind keeps it.
pub fn pod_spec_mut(doc: &mut Value, kind: Kind) -> Option<&mut Mapping> {
    let mut at = doc;
    for key in kind.pod_spec_path() {
        at = at.as_mapping_mut()?.get_mut(*key)?;
    }
    at.as_mapping_mut()
}

/// The names of a StatefulSet's `volumeClaimTemplates` (none when absent).
pub fn claim_template_names(doc: &Value) -> Result<Vec<String>, String> {
    let Some(templates) = doc
        .get("spec")
        .and_then(|s| s.get("volumeClaimTemplates"))
        .filter(|t| !t.is_null())
    else {
        return Ok(Vec::new());
    };
    let templates = templates
        .as_sequence()
        .ok_or("spec.volumeClaimTemplates is not a list")?;
    templates
        .iter()
        .map(|t| {
            t.get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| "an entry of spec.volumeClaimTemplates has no metadata.name".into())
        })
        .collect()
}

/// A StatefulSet's `volumeClaimTemplates` list, created when absent or null.
pub fn claim_templates_mut(doc: &mut Value) -> Option<&mut Vec<Value>> {
    let spec = doc.as_mapping_mut()?.get_mut("spec")?.as_mapping_mut()?;
    let slot = spec
        .entry("volumeClaimTemplates".into())
        .or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Sequence(Vec::new());
    }
    slot.as_sequence_mut()
}

/// Read-only [`pod_spec_mut`].
pub fn pod_spec(doc: &Value, kind: Kind) -> Option<&Mapping> {
    let mut at = doc;
    for key in kind.pod_spec_path() {
        at = at.as_mapping()?.get(*key)?;
    }
    at.as_mapping()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_pod_spec_of_every_kind() {
        let cases = [
            ("Pod", "spec: {containers: []}"),
            ("Deployment", "spec: {template: {spec: {containers: []}}}"),
            ("StatefulSet", "spec: {template: {spec: {containers: []}}}"),
            ("DaemonSet", "spec: {template: {spec: {containers: []}}}"),
            ("ReplicaSet", "spec: {template: {spec: {containers: []}}}"),
            ("Job", "spec: {template: {spec: {containers: []}}}"),
            (
                "CronJob",
                "spec: {jobTemplate: {spec: {template: {spec: {containers: []}}}}}",
            ),
        ];
        for (kind, body) in cases {
            let text = format!(
                "kind: {kind}\napiVersion: v1\nmetadata: {{name: x, namespace: n}}\n{body}\n"
            );
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            let Class::Workload(obj) = classify(3, &doc) else {
                panic!("{kind} not a workload")
            };
            assert_eq!(
                (obj.index, obj.name.as_str(), obj.namespace.as_deref()),
                (3, "x", Some("n"))
            );
            let spec = pod_spec(&doc, obj.kind).unwrap_or_else(|| panic!("{kind}"));
            assert!(spec.contains_key("containers"), "{kind}");
        }
    }

    #[test]
    fn other_documents() {
        let svc: Value = serde_yaml::from_str("kind: Service\nmetadata: {name: s}").unwrap();
        assert_eq!(
            classify(0, &svc),
            Class::Other {
                kind: "Service".into()
            }
        );
        assert_eq!(classify(0, &Value::Null), Class::Empty);
        let list: Value = serde_yaml::from_str("[1, 2]").unwrap();
        assert_eq!(
            classify(0, &list),
            Class::Other {
                kind: String::new()
            }
        );
    }
}
