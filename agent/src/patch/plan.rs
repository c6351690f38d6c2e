//! Which suggestions go to which manifest document and container.
//!
//! A suggestion that names its workload goes to the document of that kind and name (a
//! document without a namespace matches any namespace); one that names none goes to the
//! manifest's only workload. Within the pod spec, a named container is found by name;
//! an unnamed one is the pod's only container (or only init container, for init
//! suggestions). `--container NAME` keeps only the suggestions for NAME and unnamed ones, and
//! applies them to NAME.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::workload::{self, Class, Object};
use super::{Error, Result};
use crate::suggest::{ContainerSuggestions, Suggestions, VolumeSuggestion};

/// The two container lists the patch edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum List {
    /// `containers`.
    Containers,
    /// `initContainers`.
    InitContainers,
}

impl List {
    /// The pod spec field.
    pub fn field(self) -> &'static str {
        match self {
            List::Containers => "containers",
            List::InitContainers => "initContainers",
        }
    }
}

/// The changes for one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerPlan {
    /// Which list it is in.
    pub list: List,
    /// Its index there.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// The volumes it needs, sorted by mount path, one per path.
    pub volumes: Vec<VolumeSuggestion>,
}

/// The changes for one document.
#[derive(Clone, Debug, PartialEq)]
pub struct DocPlan {
    /// The object.
    pub object: Object,
    /// Its containers to change, containers before init containers, in list order.
    pub containers: Vec<ContainerPlan>,
}

/// Matches `suggestions` to the documents of a manifest. `only` is `--container`. Things
/// skipped on purpose are described in `notes`.
pub fn plan(
    origin: &str,
    docs: &[Value],
    suggestions: &Suggestions,
    only: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<DocPlan>> {
    if suggestions.containers.is_empty() {
        return Err(Error::Empty);
    }
    let classes: Vec<Class> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| workload::classify(i, d))
        .collect();
    let objects: Vec<&Object> = classes
        .iter()
        .filter_map(|c| match c {
            Class::Workload(o) => Some(o),
            _ => None,
        })
        .collect();
    let found = || describe(&objects);

    let mut plans: BTreeMap<(usize, List, usize), ContainerPlan> = BTreeMap::new();
    let mut objects_by_index: BTreeMap<usize, Object> = BTreeMap::new();
    let mut unmatched: Vec<String> = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for cs in &suggestions.containers {
        if cs.container_kind == "ephemeral" {
            let name = cs.container.as_deref().unwrap_or("(unnamed)");
            notes.push(format!("skipped the suggestions for ephemeral container {name}: manifests do not declare ephemeral containers"));
            continue;
        }
        if let Some(name) = &cs.container {
            named.push(name.clone());
        }
        let object = match &cs.workload {
            Some(w) => {
                let wanted = format!("{} {}/{}", w.kind, w.namespace, w.name);
                if workload::Kind::parse(&w.kind).is_none() {
                    if let Some(index) = classes
                        .iter()
                        .position(|c| matches!(c, Class::Other { kind } if *kind == w.kind))
                    {
                        return Err(Error::UnknownKind {
                            origin: origin.into(),
                            document: index + 1,
                            kind: w.kind.clone(),
                        });
                    }
                }
                let candidates: Vec<&&Object> = objects
                    .iter()
                    .filter(|o| o.kind_name == w.kind && o.name == w.name)
                    .filter(|o| {
                        o.namespace
                            .as_deref()
                            .is_none_or(|ns| w.namespace.is_empty() || ns == w.namespace)
                    })
                    .collect();
                let exact: Vec<&&Object> = candidates
                    .iter()
                    .copied()
                    .filter(|o| o.namespace.as_deref() == Some(w.namespace.as_str()))
                    .collect();
                match (candidates.as_slice(), exact.as_slice()) {
                    ([], _) => {
                        unmatched.push(wanted);
                        continue;
                    }
                    ([one], _) | (_, [one]) => (**one).clone(),
                    _ => {
                        return Err(Error::AmbiguousWorkload {
                            origin: origin.into(),
                            wanted,
                            found: found(),
                        })
                    }
                }
            }
            None => match objects.as_slice() {
                [one] => (*one).clone(),
                [] => return Err(no_workload(origin, &classes)),
                _ => {
                    return Err(Error::UnnamedWorkload {
                        origin: origin.into(),
                        found: found(),
                    })
                }
            },
        };
        let spec = workload::pod_spec(&docs[object.index], object.kind).ok_or_else(|| {
            Error::Malformed {
                origin: origin.into(),
                document: object.index + 1,
                object: object.to_string(),
                what: format!("no pod spec at {}", object.kind.pod_spec_path().join(".")),
            }
        })?;
        if let (Some(only), Some(name)) = (only, &cs.container) {
            if only != name {
                // Not for the chosen container; still, the chosen one must exist.
                let cs_only = ContainerSuggestions {
                    container: None,
                    ..cs.clone()
                };
                container(origin, &object, spec, &cs_only, Some(only))?;
                continue;
            }
        }
        let (list, index, name) = container(origin, &object, spec, cs, only)?;
        for env in &cs.env {
            notes.push(format!(
                "{object}: container {name}: setting {}={} would also avoid writes ({}); the patch does not set it",
                env.name, env.value, env.reason
            ));
        }
        if cs.partial {
            notes.push(format!(
                "{object}: container {name}: recording started after the container did, so start-up writes may be missing"
            ));
        }
        let entry = plans
            .entry((object.index, list, index))
            .or_insert_with(|| ContainerPlan {
                list,
                index,
                name,
                volumes: Vec::new(),
            });
        for v in &cs.volumes {
            if !entry.volumes.iter().any(|e| e.mount_path == v.mount_path) {
                entry.volumes.push(v.clone());
            }
        }
        entry
            .volumes
            .sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        objects_by_index.insert(object.index, object);
    }

    if plans.is_empty() {
        if let Some(only) = only {
            if unmatched.is_empty() {
                named.sort();
                named.dedup();
                return Err(Error::NoSuggestions {
                    name: only.into(),
                    found: list_or_none(&named),
                });
            }
        }
        if unmatched.is_empty() {
            return Err(Error::Empty);
        }
        return Err(Error::OtherWorkload {
            origin: origin.into(),
            wanted: unmatched.join(", "),
            found: found(),
        });
    }
    for wanted in unmatched {
        notes.push(format!(
            "skipped the suggestions for {wanted}: {origin} does not have it"
        ));
    }
    let mut out: Vec<DocPlan> = Vec::new();
    for ((index, _, _), cp) in plans {
        match out.last_mut() {
            Some(last) if last.object.index == index => last.containers.push(cp),
            _ => {
                let Some(object) = objects_by_index.get(&index) else {
                    continue;
                };
                out.push(DocPlan {
                    object: object.clone(),
                    containers: vec![cp],
                });
            }
        }
    }
    Ok(out)
}

/// Finds the container `cs` is for.
fn container(
    origin: &str,
    object: &Object,
    spec: &Mapping,
    cs: &ContainerSuggestions,
    only: Option<&str>,
) -> Result<(List, usize, String)> {
    let malformed = |what: String| Error::Malformed {
        origin: origin.into(),
        document: object.index + 1,
        object: object.to_string(),
        what,
    };
    let mut names: BTreeMap<List, Vec<String>> = BTreeMap::new();
    for list in [List::Containers, List::InitContainers] {
        let entries = match spec.get(list.field()) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(seq)) => seq
                .iter()
                .map(|c| {
                    c.as_mapping()
                        .and_then(|m| workload::str_at(m, "name"))
                        .map(str::to_string)
                        .ok_or_else(|| {
                            malformed(format!("an entry of {} has no name", list.field()))
                        })
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(malformed(format!("{} is not a list", list.field()))),
        };
        names.insert(list, entries);
    }
    let preferred = if cs.container_kind == "init" {
        List::InitContainers
    } else {
        List::Containers
    };
    let other = if preferred == List::Containers {
        List::InitContainers
    } else {
        List::Containers
    };
    let all = || {
        let mut v: Vec<String> = names.values().flatten().cloned().collect();
        v.sort();
        list_or_none(&v)
    };
    match only.or(cs.container.as_deref()) {
        Some(wanted) => {
            for list in [preferred, other] {
                if let Some(i) = names[&list].iter().position(|n| n == wanted) {
                    return Ok((list, i, wanted.to_string()));
                }
            }
            Err(Error::NoContainer {
                origin: origin.into(),
                document: object.index + 1,
                object: object.to_string(),
                name: wanted.into(),
                found: all(),
            })
        }
        None => match names[&preferred].as_slice() {
            [one] => Ok((preferred, 0, one.clone())),
            [] => Err(Error::Malformed {
                origin: origin.into(),
                document: object.index + 1,
                object: object.to_string(),
                what: format!(
                    "its pod template has no {} to patch",
                    if preferred == List::InitContainers {
                        "init containers"
                    } else {
                        "containers"
                    }
                ),
            }),
            _ => Err(Error::AmbiguousContainer {
                origin: origin.into(),
                document: object.index + 1,
                object: object.to_string(),
                found: all(),
            }),
        },
    }
}

/// The error for a manifest without any workload.
fn no_workload(origin: &str, classes: &[Class]) -> Error {
    for (i, class) in classes.iter().enumerate() {
        if let Class::Other { kind } = class {
            let kind = if kind.is_empty() {
                "(none)".to_string()
            } else {
                kind.clone()
            };
            return Error::UnknownKind {
                origin: origin.into(),
                document: i + 1,
                kind,
            };
        }
    }
    Error::NoWorkload {
        origin: origin.into(),
    }
}

/// "Deployment web (document 1), …" or "no workload".
fn describe(objects: &[&Object]) -> String {
    if objects.is_empty() {
        return "no workload".into();
    }
    objects
        .iter()
        .map(|o| format!("{o} (document {})", o.index + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::WorkloadRef;

    fn docs(text: &str) -> Vec<Value> {
        use serde::Deserialize as _;
        serde_yaml::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect()
    }

    fn cs(workload: Option<(&str, &str, &str)>, container: Option<&str>) -> ContainerSuggestions {
        ContainerSuggestions {
            workload: workload.map(|(kind, ns, name)| WorkloadRef {
                kind: kind.into(),
                namespace: ns.into(),
                name: name.into(),
            }),
            container: container.map(str::to_string),
            container_kind: "container".into(),
            ..Default::default()
        }
    }

    fn sugg(list: Vec<ContainerSuggestions>) -> Suggestions {
        Suggestions {
            version: 1,
            containers: list,
        }
    }

    const TWO: &str = "kind: Service\nmetadata: {name: web}\n---\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec: {template: {spec: {initContainers: [{name: init}], containers: [{name: app}, {name: side}]}}}\n---\nkind: Pod\nmetadata: {name: solo}\nspec: {containers: [{name: only}]}\n";

    #[test]
    fn matches_by_workload_and_container_name() {
        let d = docs(TWO);
        let s = sugg(vec![
            cs(Some(("Deployment", "prod", "web")), Some("side")),
            cs(Some(("Pod", "x", "solo")), None),
        ]);
        let p = plan("m", &d, &s, None, &mut Vec::new()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].object.index,
                p[0].containers[0].index,
                p[0].containers[0].name.as_str()
            ),
            (1, 1, "side")
        );
        assert_eq!(
            (p[1].object.index, p[1].containers[0].name.as_str()),
            (2, "only")
        );
    }

    #[test]
    fn init_containers_are_found() {
        let d = docs(TWO);
        let mut c = cs(Some(("Deployment", "prod", "web")), None);
        c.container_kind = "init".into();
        let p = plan("m", &d, &sugg(vec![c]), None, &mut Vec::new()).unwrap();
        assert_eq!(p[0].containers[0].list, List::InitContainers);
    }

    #[test]
    fn a_workload_without_containers_is_said_so() {
        let d = docs(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n\
             spec: {template: {spec: {containers: []}}}\n",
        );
        let unnamed = sugg(vec![cs(Some(("Deployment", "prod", "web")), None)]);
        let err = plan("m", &d, &unnamed, None, &mut Vec::new()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("has no containers to patch"), "{text}");
        assert!(!text.contains("several"), "{text}");
    }

    #[test]
    fn errors() {
        let d = docs(TWO);
        let other = sugg(vec![cs(Some(("Deployment", "prod", "api")), None)]);
        assert!(matches!(
            plan("m", &d, &other, None, &mut Vec::new()),
            Err(Error::OtherWorkload { .. })
        ));
        let wrong_ns = sugg(vec![cs(Some(("Deployment", "dev", "web")), Some("app"))]);
        assert!(matches!(
            plan("m", &d, &wrong_ns, None, &mut Vec::new()),
            Err(Error::OtherWorkload { .. })
        ));
        let unnamed = sugg(vec![cs(Some(("Deployment", "prod", "web")), None)]);
        assert!(matches!(
            plan("m", &d, &unnamed, None, &mut Vec::new()),
            Err(Error::AmbiguousContainer { .. })
        ));
        let missing = sugg(vec![cs(Some(("Deployment", "prod", "web")), Some("nope"))]);
        assert!(matches!(
            plan("m", &d, &missing, None, &mut Vec::new()),
            Err(Error::NoContainer { .. })
        ));
        let no_workload = sugg(vec![cs(None, None)]);
        let err = plan("m", &d, &no_workload, None, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::UnnamedWorkload { .. }), "{err}");
        // It says what is wrong (the suggestions name no workload, the manifest has several)
        // and what to do.
        let msg = err.to_string();
        assert!(msg.contains("name no workload"), "{msg}");
        assert!(msg.contains("prod/web") && msg.contains("solo"), "{msg}");
        assert!(msg.contains("only the workload"), "{msg}");
        let svc = docs("kind: Service\nmetadata: {name: s}\n");
        let err = plan("m", &svc, &no_workload, None, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("document 1") && err.to_string().contains("Service"),
            "{err}"
        );
        assert!(matches!(
            plan("m", &d, &sugg(vec![]), None, &mut Vec::new()),
            Err(Error::Empty)
        ));
    }

    #[test]
    fn container_flag_selects() {
        let d = docs(TWO);
        let s = sugg(vec![cs(Some(("Deployment", "prod", "web")), None)]);
        let p = plan("m", &d, &s, Some("side"), &mut Vec::new()).unwrap();
        assert_eq!(p[0].containers[0].name, "side");
        let named = sugg(vec![cs(Some(("Deployment", "prod", "web")), Some("app"))]);
        let err = plan("m", &d, &named, Some("side"), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::NoSuggestions { .. }), "{err}");
        let err = plan("m", &d, &s, Some("ghost"), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::NoContainer { .. }), "{err}");
    }

    #[test]
    fn ephemeral_containers_are_skipped() {
        let d = docs(TWO);
        let mut eph = cs(Some(("Pod", "", "solo")), Some("debugger"));
        eph.container_kind = "ephemeral".into();
        let mut notes = Vec::new();
        let err = plan("m", &d, &sugg(vec![eph.clone()]), None, &mut notes).unwrap_err();
        assert!(matches!(err, Error::Empty), "{err}");
        let p = plan(
            "m",
            &d,
            &sugg(vec![eph, cs(Some(("Pod", "", "solo")), None)]),
            None,
            &mut notes,
        )
        .unwrap();
        assert_eq!(p[0].containers.len(), 1);
        assert!(notes.iter().any(|n| n.contains("debugger")), "{notes:?}");
    }

    #[test]
    fn suggestions_for_absent_workloads_are_noted() {
        let d = docs(TWO);
        let s = sugg(vec![
            cs(Some(("Pod", "", "solo")), None),
            cs(Some(("Deployment", "prod", "api")), None),
        ]);
        let mut notes = Vec::new();
        let p = plan("m", &d, &s, None, &mut notes).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(notes.len(), 1, "{notes:?}");
    }
}
