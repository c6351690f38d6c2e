//! Edits to one pod spec: the suggested volumes and mounts, `readOnlyRootFilesystem: true`,
//! the `--harden` baseline, and the `--copy-image-content` init container.
//!
//! Everything here only adds: existing volumes, mounts and securityContext fields are kept
//! (the one value it overrides is `readOnlyRootFilesystem`), so running it on its own output
//! changes nothing.

use std::collections::BTreeSet;

use serde_yaml::{Mapping, Value};

use super::names;
use super::plan::{ContainerPlan, List};
use super::workload::{str_at, Object};
use super::{Error, Options, Result};
use crate::suggest::VolumeKind;

/// Where the copy init container mounts each volume it fills.
const COPY_ROOT: &str = "/writepath-copy";

/// Volume sources that are read-only whatever the mount says.
const READ_ONLY_SOURCES: [&str; 4] = ["configMap", "secret", "downwardAPI", "projected"];

/// Applies `plans` to `spec`, the pod spec of `object` (document `origin`).
pub fn apply(
    origin: &str,
    object: &Object,
    spec: &mut Mapping,
    plans: &[ContainerPlan],
    opts: &Options,
    notes: &mut Vec<String>,
) -> Result<()> {
    let malformed = |what: String| Error::Malformed {
        origin: origin.into(),
        document: object.index + 1,
        object: object.to_string(),
        what,
    };
    for plan in plans {
        let who = format!("{object}: container {}", plan.name);
        let volumes_now = read_volumes(spec).map_err(&malformed)?;
        let container = container(spec, plan).ok_or_else(|| {
            malformed(format!(
                "{}[{}] is not a map",
                plan.list.field(),
                plan.index
            ))
        })?;
        let mounts_now = read_mounts(container).map_err(&malformed)?;

        let mut taken: BTreeSet<String> = volumes_now.iter().map(|v| v.name.clone()).collect();
        let mut new_volumes: Vec<Value> = Vec::new();
        let mut new_mounts: Vec<Value> = Vec::new();
        let mut copies: Vec<(String, String)> = Vec::new();
        let mut mounted: Vec<String> = mounts_now.iter().map(|m| m.path.clone()).collect();
        for v in &plan.volumes {
            let path = v.mount_path.to_str().ok_or_else(|| Error::NonUtf8Path {
                path: v.mount_path.to_string(),
            })?;
            let path = trim_slash(path);
            let shadowed = opts.copy_image_content && v.shadowing.is_some();
            if mounted.iter().any(|m| m == path) {
                // Already mounted (by an earlier run, or by the user): the copy still applies
                // when that mount is an emptyDir, so that adding --copy-image-content later works.
                let existing = mounts_now.iter().find(|m| m.path == path);
                if let Some(m) = existing.filter(|_| shadowed) {
                    if volumes_now
                        .iter()
                        .any(|vol| vol.name == m.volume && vol.empty_dir)
                    {
                        copies.push((m.volume.clone(), path.to_string()));
                    }
                }
                continue;
            }
            if let Some(parent) = writable_parent(path, &mounts_now, &volumes_now) {
                notes.push(format!("{who}: {path} is already writable through the mount at {parent}; not mounted again"));
                continue;
            }
            let base = if names::is_label(&v.name) {
                v.name.clone()
            } else {
                names::from_mount_path(path)
            };
            let name = names::unique(&base, &taken);
            taken.insert(name.clone());
            new_volumes.push(volume(&name, &v.volume, &who, notes));
            new_mounts.push(map([
                ("name", Value::from(name.as_str())),
                ("mountPath", Value::from(path)),
            ]));
            mounted.push(path.to_string());
            match &v.volume {
                VolumeKind::EmptyDir { .. } if shadowed => copies.push((name, path.to_string())),
                VolumeKind::PersistentVolumeClaim { .. } if shadowed => notes.push(format!(
                    "{who}: image content at {path} is not copied into claim volume {name}: that would overwrite its data at every start"
                )),
                _ => {}
            }
        }

        let pod_sc = spec
            .get("securityContext")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let container = container_mut(spec, plan).ok_or_else(|| {
            malformed(format!(
                "{}[{}] is not a map",
                plan.list.field(),
                plan.index
            ))
        })?;
        if !new_mounts.is_empty() {
            child_seq(container, "volumeMounts")
                .map_err(&malformed)?
                .extend(new_mounts);
        }
        let sc = child_map(container, "securityContext").map_err(&malformed)?;
        sc.insert("readOnlyRootFilesystem".into(), Value::Bool(true));
        if opts.harden {
            harden(sc, &pod_sc, &who, notes).map_err(&malformed)?;
        }
        let copy = if copies.is_empty() {
            None
        } else if plan.list == List::InitContainers {
            notes.push(format!(
                "{who}: --copy-image-content is not done for init containers; the emptyDir at {} hides what the image has there",
                copies.iter().map(|c| c.1.as_str()).collect::<Vec<_>>().join(", ")
            ));
            None
        } else {
            copy_container(container, &plan.name, &copies, &who, notes)
        };

        if !new_volumes.is_empty() {
            child_seq(spec, "volumes")
                .map_err(&malformed)?
                .extend(new_volumes);
        }
        if let Some(init) = copy {
            let inits = child_seq(spec, "initContainers").map_err(&malformed)?;
            // The copy container is derived from the suggestions alone, so it is replaced
            // (with the same content on a second run) rather than added twice.
            let name = init.get("name").cloned();
            match inits.iter_mut().find(|c| c.get("name") == name.as_ref()) {
                Some(existing) => *existing = init,
                None => inits.push(init),
            }
        }
    }
    Ok(())
}

/// A volume of the pod spec, as far as the patch cares.
struct VolumeInfo {
    name: String,
    read_only_source: bool,
    empty_dir: bool,
}

/// A mount of a container.
struct MountInfo {
    path: String,
    volume: String,
    read_only: bool,
}

fn read_volumes(spec: &Mapping) -> Result<Vec<VolumeInfo>, String> {
    let Some(seq) = seq_at(spec, "volumes")? else {
        return Ok(Vec::new());
    };
    seq.iter()
        .map(|v| {
            let m = v.as_mapping().ok_or("an entry of volumes is not a map")?;
            Ok(VolumeInfo {
                name: str_at(m, "name")
                    .ok_or("an entry of volumes has no name")?
                    .to_string(),
                read_only_source: READ_ONLY_SOURCES.iter().any(|s| m.contains_key(*s)),
                empty_dir: m.contains_key("emptyDir"),
            })
        })
        .collect()
}

fn read_mounts(container: &Mapping) -> Result<Vec<MountInfo>, String> {
    let Some(seq) = seq_at(container, "volumeMounts")? else {
        return Ok(Vec::new());
    };
    seq.iter()
        .map(|v| {
            let m = v
                .as_mapping()
                .ok_or("an entry of volumeMounts is not a map")?;
            Ok(MountInfo {
                path: trim_slash(
                    str_at(m, "mountPath").ok_or("an entry of volumeMounts has no mountPath")?,
                )
                .to_string(),
                volume: str_at(m, "name").unwrap_or_default().to_string(),
                read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

/// The sequence at `key`: `None` when absent or null, an error when something else.
fn seq_at<'a>(map: &'a Mapping, key: &str) -> Result<Option<&'a Vec<Value>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} is not a list")),
    }
}

/// An existing writable mount above `path`, if any: writes below it already succeed.
fn writable_parent<'a>(
    path: &str,
    mounts: &'a [MountInfo],
    volumes: &[VolumeInfo],
) -> Option<&'a str> {
    mounts
        .iter()
        .filter(|m| {
            m.path == "/"
                || path
                    .strip_prefix(m.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .filter(|m| !m.read_only)
        .filter(|m| {
            !volumes
                .iter()
                .any(|v| v.name == m.volume && v.read_only_source)
        })
        .max_by_key(|m| m.path.len())
        .map(|m| m.path.as_str())
}

fn trim_slash(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/"
    } else {
        t
    }
}

fn container<'a>(spec: &'a Mapping, plan: &ContainerPlan) -> Option<&'a Mapping> {
    spec.get(plan.list.field())?
        .as_sequence()?
        .get(plan.index)?
        .as_mapping()
}

fn container_mut<'a>(spec: &'a mut Mapping, plan: &ContainerPlan) -> Option<&'a mut Mapping> {
    spec.get_mut(plan.list.field())?
        .as_sequence_mut()?
        .get_mut(plan.index)?
        .as_mapping_mut()
}

/// The map at `key`, created when absent or null.
fn child_map<'a>(map: &'a mut Mapping, key: &str) -> Result<&'a mut Mapping, String> {
    let slot = map.entry(key.into()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Mapping(Mapping::new());
    }
    slot.as_mapping_mut()
        .ok_or_else(|| format!("{key} is not a map"))
}

/// The sequence at `key`, created when absent or null.
fn child_seq<'a>(map: &'a mut Mapping, key: &str) -> Result<&'a mut Vec<Value>, String> {
    let slot = map.entry(key.into()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Sequence(Vec::new());
    }
    slot.as_sequence_mut()
        .ok_or_else(|| format!("{key} is not a list"))
}

/// A map from pairs, in order.
fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// The `volumes` entry for a suggestion.
fn volume(name: &str, kind: &VolumeKind, who: &str, notes: &mut Vec<String>) -> Value {
    match kind {
        VolumeKind::EmptyDir { medium, size_limit } => {
            let mut dir = Mapping::new();
            if let Some(m) = medium {
                dir.insert("medium".into(), m.as_str().into());
            }
            if let Some(s) = size_limit {
                dir.insert("sizeLimit".into(), s.as_str().into());
            }
            map([("name", name.into()), ("emptyDir", Value::Mapping(dir))])
        }
        VolumeKind::PersistentVolumeClaim { claim_name } => {
            let claim = if claim_name.is_empty() {
                name.to_string()
            } else {
                claim_name.clone()
            };
            notes.push(format!(
                "{who}: volume {name} uses PersistentVolumeClaim {claim}, which must exist before the pod starts"
            ));
            map([
                ("name", name.into()),
                ("persistentVolumeClaim", map([("claimName", claim.into())])),
            ])
        }
    }
}

/// Adds the `--harden` baseline to a container's securityContext without overriding what the
/// container (or, for pod-level fields, the pod) already sets.
fn harden(
    sc: &mut Mapping,
    pod_sc: &Mapping,
    who: &str,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    if !sc.contains_key("allowPrivilegeEscalation") {
        let privileged = sc
            .get("privileged")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let sys_admin = sc
            .get("capabilities")
            .and_then(|c| c.get("add"))
            .and_then(Value::as_sequence)
            .is_some_and(|add| {
                add.iter()
                    .any(|c| matches!(c.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN")))
            });
        if privileged || sys_admin {
            notes.push(format!(
                "{who}: allowPrivilegeEscalation left unset: Kubernetes rejects false with privileged or SYS_ADMIN"
            ));
        } else {
            sc.insert("allowPrivilegeEscalation".into(), Value::Bool(false));
        }
    }
    let caps = child_map(sc, "capabilities")?;
    if !caps.contains_key("drop") {
        caps.insert("drop".into(), Value::Sequence(vec!["ALL".into()]));
    }
    if !sc.contains_key("runAsNonRoot") && !pod_sc.contains_key("runAsNonRoot") {
        sc.insert("runAsNonRoot".into(), Value::Bool(true));
    }
    if !sc.contains_key("seccompProfile") && !pod_sc.contains_key("seccompProfile") {
        sc.insert(
            "seccompProfile".into(),
            map([("type", "RuntimeDefault".into())]),
        );
    }
    Ok(())
}

/// The init container that copies what the image has at each shadowed path into its
/// emptyDir before the app starts: same image, same securityContext, `cp -a` into the volume
/// mounted under [`COPY_ROOT`]. Needs `sh` and `cp` in the image.
fn copy_container(
    app: &Mapping,
    app_name: &str,
    copies: &[(String, String)],
    who: &str,
    notes: &mut Vec<String>,
) -> Option<Value> {
    let Some(image) = app.get("image").filter(|i| i.is_string()) else {
        notes.push(format!("{who}: no image, so no copy init container"));
        return None;
    };
    let script = copies
        .iter()
        .map(|(vol, path)| {
            format!(
                "cp -a {}/. {}/",
                shell_quote(path),
                shell_quote(&format!("{COPY_ROOT}/{vol}"))
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    let mounts = copies
        .iter()
        .map(|(vol, _)| {
            map([
                ("name", vol.as_str().into()),
                ("mountPath", format!("{COPY_ROOT}/{vol}").into()),
            ])
        })
        .collect();
    let mut init = Mapping::new();
    init.insert(
        "name".into(),
        names::sanitize(&format!("writepath-copy-{app_name}"), names::MAX_LABEL).into(),
    );
    init.insert("image".into(), image.clone());
    if let Some(policy) = app.get("imagePullPolicy") {
        init.insert("imagePullPolicy".into(), policy.clone());
    }
    init.insert(
        "command".into(),
        Value::Sequence(vec!["sh".into(), "-c".into(), script.into()]),
    );
    if let Some(sc) = app.get("securityContext") {
        init.insert("securityContext".into(), sc.clone());
    }
    init.insert("volumeMounts".into(), Value::Sequence(mounts));
    Some(Value::Mapping(init))
}

/// Quotes a word for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::RawPath;
    use crate::suggest::{Purpose, Shadowing, VolumeSuggestion};

    fn vs(path: &str, name: &str) -> VolumeSuggestion {
        VolumeSuggestion::empty_dir(RawPath::from(path), name, Purpose::Temp)
    }

    fn object() -> Object {
        Object {
            index: 0,
            kind: super::super::workload::Kind::Pod,
            kind_name: "Pod".into(),
            api_version: "v1".into(),
            name: "p".into(),
            namespace: None,
        }
    }

    fn run(spec: &str, volumes: Vec<VolumeSuggestion>, opts: &Options) -> (Mapping, Vec<String>) {
        let mut spec: Mapping = serde_yaml::from_str(spec).unwrap();
        let plan = ContainerPlan {
            list: List::Containers,
            index: 0,
            name: "app".into(),
            volumes,
        };
        let mut notes = Vec::new();
        apply("m", &object(), &mut spec, &[plan], opts, &mut notes).unwrap();
        (spec, notes)
    }

    fn y(text: &str) -> Mapping {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn adds_volumes_mounts_and_read_only_root() {
        let mut cache = vs("/var/cache/nginx", "var-cache-nginx");
        cache.volume = VolumeKind::EmptyDir {
            medium: Some("Memory".into()),
            size_limit: Some("64Mi".into()),
        };
        let (spec, _) = run(
            "containers: [{name: app, image: nginx, securityContext: {runAsUser: 101}}]",
            vec![cache, vs("/tmp", "tmp")],
            &Options::default(),
        );
        assert_eq!(
            spec,
            y("containers:
- name: app
  image: nginx
  securityContext: {runAsUser: 101, readOnlyRootFilesystem: true}
  volumeMounts: [{name: var-cache-nginx, mountPath: /var/cache/nginx}, {name: tmp, mountPath: /tmp}]
volumes:
- {name: var-cache-nginx, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
- {name: tmp, emptyDir: {}}
")
        );
    }

    #[test]
    fn keeps_existing_mounts_and_avoids_name_collisions() {
        let (spec, notes) = run(
            "containers: [{name: app, volumeMounts: [{name: tmp, mountPath: /data}, {name: cfg, mountPath: /etc/app}, {name: logs, mountPath: /var/log/}]}]
volumes: [{name: tmp, emptyDir: {}}, {name: cfg, configMap: {name: c}}, {name: logs, emptyDir: {}}]",
            vec![vs("/data", "data"), vs("/etc/app/state", "tmp"), vs("/var/log", "var-log"), vs("/data/sub", "sub")],
            &Options::default(),
        );
        let mounts = spec["containers"][0]["volumeMounts"].as_sequence().unwrap();
        assert_eq!(mounts.len(), 4, "{mounts:?}");
        assert_eq!(
            mounts[3],
            Value::Mapping(y("{name: tmp-2, mountPath: /etc/app/state}"))
        );
        let vols = spec["volumes"].as_sequence().unwrap();
        assert_eq!(vols[3]["name"], "tmp-2");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("/data/sub"), "{notes:?}");
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let mut shadowed = vs("/etc/nginx/conf.d", "etc-nginx-conf-d");
        shadowed.shadowing = Some(Shadowing {
            image_entries: 2,
            sample: Vec::new(),
            remedies: Vec::new(),
        });
        let opts = Options {
            harden: true,
            copy_image_content: true,
            ..Options::default()
        };
        let vols = vec![vs("/tmp", "tmp"), shadowed];
        let (once, _) = run(
            "containers: [{name: app, image: nginx}]",
            vols.clone(),
            &opts,
        );
        let text = serde_yaml::to_string(&once).unwrap();
        let (twice, _) = run(&text, vols, &opts);
        assert_eq!(once, twice);
        let inits = once["initContainers"].as_sequence().unwrap();
        assert_eq!(inits.len(), 1);
        assert_eq!(inits[0]["name"], "writepath-copy-app");
        assert_eq!(inits[0]["image"], "nginx");
        assert_eq!(
            inits[0]["command"][2],
            "cp -a '/etc/nginx/conf.d'/. '/writepath-copy/etc-nginx-conf-d'/"
        );
        assert_eq!(inits[0]["securityContext"]["readOnlyRootFilesystem"], true);
    }

    #[test]
    fn copy_can_be_added_on_a_later_run_and_never_into_claims() {
        let mut shadowed = vs("/etc/nginx/conf.d", "etc-nginx-conf-d");
        shadowed.shadowing = Some(Shadowing {
            image_entries: 2,
            sample: Vec::new(),
            remedies: Vec::new(),
        });
        let mut claim = vs("/var/lib/app", "var-lib-app");
        claim.volume = VolumeKind::PersistentVolumeClaim {
            claim_name: "app".into(),
        };
        claim.shadowing = shadowed.shadowing.clone();
        let vols = vec![shadowed, claim];
        let (plain, _) = run(
            "containers: [{name: app, image: nginx}]",
            vols.clone(),
            &Options::default(),
        );
        assert!(plain.get("initContainers").is_none());
        let copy = Options {
            copy_image_content: true,
            ..Options::default()
        };
        let (later, _) = run(&serde_yaml::to_string(&plain).unwrap(), vols.clone(), &copy);
        let (at_once, notes) = run("containers: [{name: app, image: nginx}]", vols, &copy);
        assert_eq!(later, at_once);
        let inits = at_once["initContainers"].as_sequence().unwrap();
        assert_eq!(inits.len(), 1);
        assert_eq!(
            inits[0]["volumeMounts"].as_sequence().unwrap().len(),
            1,
            "emptyDir only"
        );
        assert!(
            notes.iter().any(|n| n.contains("not copied into claim")),
            "{notes:?}"
        );
    }

    #[test]
    fn harden_keeps_what_is_set() {
        let (spec, _) = run(
            "securityContext: {runAsNonRoot: false}
containers: [{name: app, securityContext: {readOnlyRootFilesystem: false, allowPrivilegeEscalation: true, capabilities: {add: [NET_BIND_SERVICE]}, seccompProfile: {type: Unconfined}}}]",
            vec![],
            &Options { harden: true, ..Options::default() },
        );
        assert_eq!(
            spec["containers"][0]["securityContext"],
            Value::Mapping(y("{readOnlyRootFilesystem: true, allowPrivilegeEscalation: true, capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}, seccompProfile: {type: Unconfined}}"))
        );
        let (spec, notes) = run(
            "containers: [{name: app, securityContext: {privileged: true}}]",
            vec![],
            &Options {
                harden: true,
                ..Options::default()
            },
        );
        let sc = &spec["containers"][0]["securityContext"];
        assert!(sc.get("allowPrivilegeEscalation").is_none());
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn non_utf8_paths_are_an_error() {
        let mut spec: Mapping = serde_yaml::from_str("containers: [{name: app}]").unwrap();
        let mut bad = vs("/tmp", "tmp");
        bad.mount_path = RawPath::from_bytes(b"/tmp/\xff".to_vec());
        let plan = ContainerPlan {
            list: List::Containers,
            index: 0,
            name: "app".into(),
            volumes: vec![bad],
        };
        let err = apply(
            "m",
            &object(),
            &mut spec,
            &[plan],
            &Options::default(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NonUtf8Path { .. }), "{err}");
    }
}
