//! The patch formats, each derived from an object before and after the edit, so that every
//! format gives exactly the object the `manifest` format prints.
//!
//! - strategic: the changed fields, lists merged by their Kubernetes merge keys, with
//!   `$setElementOrder` so new entries land where the manifest format puts them (after the
//!   existing ones).
//! - json6902: `replace`/`add` of changed scalars and maps, whole-list `add` for lists that
//!   grew, and a `test` of each container's name before touching it by index. Applying it
//!   twice gives the same object as once.
//! - kustomize: the json6902 patch inline in a `patches:` entry with its target (kustomize
//!   does not honour `$setElementOrder`, so a strategic patch there would reorder lists).

use serde_yaml::{Mapping, Value};

use super::workload::Object;
use super::{document, Error, Result};

/// Merge keys of the pod-spec lists, as Kubernetes' strategic merge defines them.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "hostAliases"
        | "resourceClaims"
        | "schedulingGates" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

/// The strategic merge patch turning `before` into `after`, led by the object's
/// `apiVersion`, `kind` and `metadata.name`/`namespace` so kustomize and people can tell
/// what it is for.
pub fn strategic(object: &Object, before: &Value, after: &Value) -> Value {
    let mut out = Mapping::new();
    out.insert("apiVersion".into(), object.api_version.as_str().into());
    out.insert("kind".into(), object.kind_name.as_str().into());
    let mut meta = Mapping::new();
    meta.insert("name".into(), object.name.as_str().into());
    if let Some(ns) = &object.namespace {
        meta.insert("namespace".into(), ns.as_str().into());
    }
    out.insert("metadata".into(), Value::Mapping(meta));
    if let (Some(b), Some(a)) = (before.as_mapping(), after.as_mapping()) {
        for (k, v) in smp_map(b, a) {
            out.entry(k).or_insert(v);
        }
    }
    Value::Mapping(out)
}

fn smp_map(before: &Mapping, after: &Mapping) -> Mapping {
    let mut out = Mapping::new();
    for (k, a) in after {
        match before.get(k) {
            None => {
                out.insert(k.clone(), a.clone());
            }
            Some(b) if b == a => {}
            Some(b) => match (b, a) {
                (Value::Mapping(bm), Value::Mapping(am)) => {
                    out.insert(k.clone(), Value::Mapping(smp_map(bm, am)));
                }
                (Value::Sequence(bs), Value::Sequence(asq)) => match k.as_str().and_then(merge_key)
                {
                    Some(mk) => {
                        let order = asq.iter().map(|item| key_only(item, mk)).collect();
                        let field = k.as_str().unwrap_or_default();
                        out.insert(
                            format!("$setElementOrder/{field}").into(),
                            Value::Sequence(order),
                        );
                        out.insert(k.clone(), Value::Sequence(smp_list(bs, asq, mk)));
                    }
                    None => {
                        out.insert(k.clone(), a.clone());
                    }
                },
                _ => {
                    out.insert(k.clone(), a.clone());
                }
            },
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

/// The entries of a merge-keyed list that are new or changed (changed ones reduced to their
/// key and their changes).
fn smp_list(before: &[Value], after: &[Value], mk: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for a in after {
        let key = a.get(mk);
        let old = key.and_then(|key| before.iter().find(|b| b.get(mk) == Some(key)));
        match (old, a.as_mapping()) {
            (Some(b), _) if b == a => {}
            (Some(Value::Mapping(bm)), Some(am)) => {
                let mut item = Mapping::new();
                if let Some(key) = key {
                    item.insert(mk.into(), key.clone());
                }
                for (k, v) in smp_map(bm, am) {
                    item.entry(k).or_insert(v);
                }
                out.push(Value::Mapping(item));
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

fn key_only(item: &Value, mk: &str) -> Value {
    let mut m = Mapping::new();
    if let Some(key) = item.get(mk) {
        m.insert(mk.into(), key.clone());
    }
    Value::Mapping(m)
}

/// The RFC 6902 operations turning `before` into `after`.
pub fn json6902(before: &Value, after: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    json_diff(before, after, "", &mut ops);
    ops
}

fn json_diff(before: &Value, after: &Value, at: &str, ops: &mut Vec<Value>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Mapping(b), Value::Mapping(a)) => {
            for (k, av) in a {
                let path = format!("{at}/{}", pointer_token(k));
                match b.get(k) {
                    None => ops.push(op("add", &path, Some(av))),
                    Some(bv) => json_diff(bv, av, &path, ops),
                }
            }
            for k in b.keys() {
                if !a.contains_key(k) {
                    ops.push(op("remove", &format!("{at}/{}", pointer_token(k)), None));
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                if bv == av {
                    continue;
                }
                let path = format!("{at}/{i}");
                let name = bv.get("name").filter(|n| n.is_string());
                if let Some(name) = name.filter(|n| av.get("name") == Some(*n)) {
                    ops.push(op("test", &format!("{path}/name"), Some(name)));
                }
                json_diff(bv, av, &path, ops);
            }
        }
        _ => ops.push(op("replace", at, Some(after))),
    }
}

fn op(kind: &str, path: &str, value: Option<&Value>) -> Value {
    let mut m = Mapping::new();
    m.insert("op".into(), kind.into());
    m.insert("path".into(), path.into());
    if let Some(v) = value {
        m.insert("value".into(), v.clone());
    }
    Value::Mapping(m)
}

/// A map key as a JSON pointer token (`~` → `~0`, `/` → `~1`).
fn pointer_token(key: &Value) -> String {
    let text = match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    };
    text.replace('~', "~0").replace('/', "~1")
}

/// JSON text of a value (pretty).
pub fn to_json(value: &Value) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|source| Error::RenderJson { source })
}

/// A kustomize `patches:` entry: the object as target, the json6902 operations inline.
pub fn kustomize_entry(object: &Object, ops: &[Value]) -> Result<Value> {
    let mut target = Mapping::new();
    match object.api_version.split_once('/') {
        Some((group, version)) => {
            target.insert("group".into(), group.into());
            target.insert("version".into(), version.into());
        }
        None => {
            target.insert("version".into(), object.api_version.as_str().into());
        }
    }
    target.insert("kind".into(), object.kind_name.as_str().into());
    target.insert("name".into(), object.name.as_str().into());
    if let Some(ns) = &object.namespace {
        target.insert("namespace".into(), ns.as_str().into());
    }
    let patch = document::to_yaml(&Value::Sequence(ops.to_vec()))?;
    let mut entry = Mapping::new();
    entry.insert("target".into(), Value::Mapping(target));
    entry.insert("patch".into(), patch.into());
    Ok(Value::Mapping(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::workload::Kind;

    fn y(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn object() -> Object {
        Object {
            index: 0,
            kind: Kind::Pod,
            kind_name: "Pod".into(),
            api_version: "v1".into(),
            name: "p".into(),
            namespace: Some("n".into()),
        }
    }

    const BEFORE: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nspec:\n  containers:\n  - {name: a, image: x, volumeMounts: [{name: c, mountPath: /c}]}\n  - {name: b, image: y}\n  volumes: [{name: c, configMap: {name: c}}]\n";
    const AFTER: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nspec:\n  containers:\n  - {name: a, image: x, volumeMounts: [{name: c, mountPath: /c}, {name: tmp, mountPath: /tmp}], securityContext: {readOnlyRootFilesystem: true}}\n  - {name: b, image: y}\n  volumes: [{name: c, configMap: {name: c}}, {name: tmp, emptyDir: {}}]\n";

    #[test]
    fn strategic_patch_has_changes_keys_and_order() {
        let got = strategic(&object(), &y(BEFORE), &y(AFTER));
        let want = y("apiVersion: v1
kind: Pod
metadata: {name: p, namespace: n}
spec:
  $setElementOrder/containers: [{name: a}, {name: b}]
  containers:
  - name: a
    $setElementOrder/volumeMounts: [{mountPath: /c}, {mountPath: /tmp}]
    volumeMounts: [{name: tmp, mountPath: /tmp}]
    securityContext: {readOnlyRootFilesystem: true}
  $setElementOrder/volumes: [{name: c}, {name: tmp}]
  volumes: [{name: tmp, emptyDir: {}}]
");
        assert_eq!(got, want, "{}", serde_yaml::to_string(&got).unwrap());
    }

    #[test]
    fn json_patch_tests_names_and_replaces_grown_lists() {
        let got = json6902(&y(BEFORE), &y(AFTER));
        let want = y(r#"
- {op: test, path: /spec/containers/0/name, value: a}
- {op: replace, path: /spec/containers/0/volumeMounts, value: [{name: c, mountPath: /c}, {name: tmp, mountPath: /tmp}]}
- {op: add, path: /spec/containers/0/securityContext, value: {readOnlyRootFilesystem: true}}
- {op: replace, path: /spec/volumes, value: [{name: c, configMap: {name: c}}, {name: tmp, emptyDir: {}}]}
"#);
        assert_eq!(Value::Sequence(got), want);
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer_token(&"a/b~c".into()), "a~1b~0c");
    }

    #[test]
    fn kustomize_target_splits_api_version() {
        let mut o = object();
        o.api_version = "apps/v1".into();
        o.kind_name = "Deployment".into();
        let e = kustomize_entry(&o, &[]).unwrap();
        assert_eq!(
            e["target"],
            y("{group: apps, version: v1, kind: Deployment, name: p, namespace: n}")
        );
    }
}
