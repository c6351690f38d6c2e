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
use crate::report::OpName;
use crate::suggest::{VolumeKind, VolumeSuggestion};

/// Where the copy init container mounts each volume it fills.
const COPY_ROOT: &str = "/writepath-copy";

/// Volume sources that are read-only whatever the mount says.
const READ_ONLY_SOURCES: [&str; 4] = ["configMap", "secret", "downwardAPI", "projected"];

/// The storage a new `volumeClaimTemplates` entry asks for (a note asks to set the real size:
/// a recording does not measure how much data a directory will hold).
pub const CLAIM_TEMPLATE_SIZE: &str = "1Gi";

/// A StatefulSet's `volumeClaimTemplates`: each replica gets its own claim from each entry,
/// so data directories go there rather than into one `persistentVolumeClaim` volume that all
/// replicas would share.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimTemplates {
    /// The names of the entries the manifest has. The controller gives each replica a volume
    /// of that name, replacing a pod-template volume of the same name, so no new volume may
    /// take one.
    pub existing: Vec<String>,
    /// The entries to append.
    pub added: Vec<Value>,
}

impl ClaimTemplates {
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.existing.iter().cloned().chain(
            self.added
                .iter()
                .filter_map(|t| t.get("metadata")?.get("name")?.as_str().map(str::to_string)),
        )
    }
}

/// Applies `plans` to `spec`, the pod spec of `object` (document `origin`). `claims` is the
/// object's `volumeClaimTemplates` for a StatefulSet, `None` for other kinds.
pub fn apply(
    origin: &str,
    object: &Object,
    spec: &mut Mapping,
    plans: &[ContainerPlan],
    opts: &Options,
    mut claims: Option<&mut ClaimTemplates>,
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
        if let Some(claims) = claims.as_deref() {
            taken.extend(claims.names());
        }
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
                if let Some(m) = existing {
                    if let Some(why) = read_only_because(m, &volumes_now) {
                        notes.push(format!(
                            "{who}: {path} must be writable (the recording shows {}) but {why}, so it is not mounted again and those writes fail with EROFS: {}",
                            evidence(v),
                            read_only_fix(path, m, &volumes_now)
                        ));
                        continue;
                    }
                }
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
            match (&v.volume, claims.as_deref_mut()) {
                (VolumeKind::PersistentVolumeClaim { .. }, Some(claims)) => {
                    claims.added.push(claim_template(&name));
                    notes.push(format!(
                        "{who}: {path} keeps data, so it gets volumeClaimTemplates entry {name} and each replica its own claim ({name}-{}-0, {name}-{}-1, …): it asks for {CLAIM_TEMPLATE_SIZE} ReadWriteOnce from the default StorageClass, set the size and storageClassName the data needs. A live StatefulSet's volumeClaimTemplates cannot be changed: create it anew (kubectl delete statefulset {} --cascade=orphan, then apply)",
                        object.name, object.name, object.name
                    ));
                }
                _ => new_volumes.push(volume(&name, &v.volume, &who, notes)),
            }
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
            harden(sc, &pod_sc, &plan.volumes, &who, notes).map_err(&malformed)?;
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
    /// The read-only source it is (`configMap`, …), if it is one.
    read_only_source: Option<&'static str>,
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
                read_only_source: READ_ONLY_SOURCES
                    .iter()
                    .copied()
                    .find(|s| m.contains_key(*s)),
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
                .any(|v| v.name == m.volume && v.read_only_source.is_some())
        })
        .max_by_key(|m| m.path.len())
        .map(|m| m.path.as_str())
}

/// Why an existing mount cannot take writes, if it cannot.
fn read_only_because(mount: &MountInfo, volumes: &[VolumeInfo]) -> Option<String> {
    let source = volumes
        .iter()
        .find(|v| v.name == mount.volume)
        .and_then(|v| v.read_only_source);
    match source {
        Some(source) => Some(format!(
            "it is mounted from {source} volume {}, which is read-only",
            mount.volume
        )),
        None if mount.read_only => Some(format!(
            "volume {} is mounted there with readOnly: true",
            mount.volume
        )),
        None => None,
    }
}

/// How to make a read-only mount at `path` writable.
fn read_only_fix(path: &str, mount: &MountInfo, volumes: &[VolumeInfo]) -> String {
    let read_only_source = volumes
        .iter()
        .any(|v| v.name == mount.volume && v.read_only_source.is_some());
    if read_only_source {
        let sub = if path == "/" {
            format!("/{}", mount.volume)
        } else {
            format!("{path}/{}", mount.volume)
        };
        format!(
            "mount {} at a subdirectory (e.g. {sub}, and point the program there) or mount only the files it needs with subPath, then add an emptyDir at {path} (writepath patch adds it once {path} is free)",
            mount.volume
        )
    } else {
        format!(
            "drop readOnly: true from that mount if the writes belong in volume {}, or mount it elsewhere and add an emptyDir at {path}",
            mount.volume
        )
    }
}

/// What the recording shows for a suggestion: "create, rename-to (4 calls, e.g. /tmp/x)".
fn evidence(v: &VolumeSuggestion) -> String {
    let ops = if v.evidence.ops.is_empty() {
        "writes".to_string()
    } else {
        v.evidence
            .ops
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let calls = if v.evidence.count == 1 {
        "call"
    } else {
        "calls"
    };
    match v.evidence.sample_paths.first() {
        Some(sample) => format!("{ops}, {} {calls}, e.g. {sample}", v.evidence.count),
        None => format!("{ops}, {} {calls}", v.evidence.count),
    }
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

/// A `volumeClaimTemplates` entry named `name`.
fn claim_template(name: &str) -> Value {
    map([
        ("metadata", map([("name", name.into())])),
        (
            "spec",
            map([
                ("accessModes", Value::Sequence(vec!["ReadWriteOnce".into()])),
                (
                    "resources",
                    map([("requests", map([("storage", CLAIM_TEMPLATE_SIZE.into())]))]),
                ),
            ]),
        ),
    ])
}

/// The mount paths of the suggestions whose evidence has `op`, for notes.
fn dirs_with(volumes: &[VolumeSuggestion], op: OpName) -> Vec<String> {
    volumes
        .iter()
        .filter(|v| v.evidence.ops.contains(&op))
        .map(|v| v.mount_path.to_string())
        .collect()
}

/// Whether capability `cap` is in a `capabilities.add` list (with or without `CAP_`).
fn has_cap(add: &[Value], cap: &str) -> bool {
    add.iter().any(|c| {
        c.as_str().is_some_and(|c| {
            c.strip_prefix("CAP_")
                .unwrap_or(c)
                .eq_ignore_ascii_case(cap)
        })
    })
}

/// Adds the `--harden` baseline to a container's securityContext without overriding what the
/// container (or, for pod-level fields, the pod) already sets.
///
/// The recording decides what root in the container still needs. `chown` is root's
/// (CAP_CHOWN) alone: when the container may run as root (no non-zero `runAsUser`), it keeps
/// CHOWN beside `drop: [ALL]`, and FOWNER when it also `chmod`s (changing the mode of a file
/// it gave to another user); `runAsNonRoot: true` is then left out, since it would stop a
/// root container from starting. Each choice is said in a note.
fn harden(
    sc: &mut Mapping,
    pod_sc: &Mapping,
    volumes: &[VolumeSuggestion],
    who: &str,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let run_as_user = sc
        .get("runAsUser")
        .or_else(|| pod_sc.get("runAsUser"))
        .and_then(Value::as_i64);
    let maybe_root = run_as_user.is_none_or(|u| u == 0);
    let chown = dirs_with(volumes, OpName::Chown);
    let chmod = dirs_with(volumes, OpName::Chmod);
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
        let mut keep: Vec<(&str, String)> = Vec::new();
        if maybe_root && !chown.is_empty() {
            keep.push((
                "CHOWN",
                format!("the recording shows chown in {}", chown.join(", ")),
            ));
            if !chmod.is_empty() {
                keep.push((
                    "FOWNER",
                    format!(
                        "the recording shows chmod in {} beside chown: changing the mode of a file another user owns needs it",
                        chmod.join(", ")
                    ),
                ));
            }
        } else if maybe_root && !chmod.is_empty() {
            notes.push(format!(
                "{who}: the recording shows chmod in {}: with capabilities.drop [ALL] it works on files the process owns, and fails with EPERM on files of another user (add FOWNER to capabilities.add then)",
                chmod.join(", ")
            ));
        }
        if !keep.is_empty() {
            let add = child_seq(caps, "add")?;
            for (cap, why) in keep {
                if !has_cap(add, cap) {
                    add.push(cap.into());
                }
                notes.push(format!(
                    "{who}: kept {cap} in capabilities.add beside drop [ALL]: {why}, which root may do only with {cap}; remove it once the image gives those files the owner and mode they need"
                ));
            }
            notes.push(format!(
                "{who}: the recording shows file writes only: if the program also switches to another user (as nginx's workers do) it needs SETUID and SETGID, and to write files of other users DAC_OVERRIDE; add them to capabilities.add or it fails with EPERM"
            ));
        }
    }
    let non_root_set = sc.contains_key("runAsNonRoot") || pod_sc.contains_key("runAsNonRoot");
    if !non_root_set {
        if run_as_user == Some(0) {
            notes.push(format!(
                "{who}: runAsNonRoot left unset: runAsUser is 0, and the kubelet refuses to start a root container with runAsNonRoot: true"
            ));
        } else if maybe_root && !chown.is_empty() {
            notes.push(format!(
                "{who}: runAsNonRoot left unset: the recording shows chown in {}, which only root does, so the container runs as root and runAsNonRoot: true would stop it from starting; set runAsUser to a non-root user the image supports, then runAsNonRoot: true",
                chown.join(", ")
            ));
        } else {
            sc.insert("runAsNonRoot".into(), Value::Bool(true));
        }
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
        apply("m", &object(), &mut spec, &[plan], opts, None, &mut notes).unwrap();
        (spec, notes)
    }

    /// [`run`] for a StatefulSet `web` with claim templates named `existing`; `plans` are
    /// (container index, volumes).
    fn run_sts(
        spec: &str,
        plans: Vec<(usize, Vec<VolumeSuggestion>)>,
        existing: &[&str],
    ) -> (Mapping, ClaimTemplates, Vec<String>) {
        let mut spec: Mapping = serde_yaml::from_str(spec).unwrap();
        let plans: Vec<ContainerPlan> = plans
            .into_iter()
            .map(|(index, volumes)| ContainerPlan {
                list: List::Containers,
                index,
                name: format!("c{index}"),
                volumes,
            })
            .collect();
        let mut claims = ClaimTemplates {
            existing: existing.iter().map(|n| n.to_string()).collect(),
            added: Vec::new(),
        };
        let object = Object {
            kind: super::super::workload::Kind::StatefulSet,
            kind_name: "StatefulSet".into(),
            api_version: "apps/v1".into(),
            name: "web".into(),
            ..object()
        };
        let mut notes = Vec::new();
        apply(
            "m",
            &object,
            &mut spec,
            &plans,
            &Options::default(),
            Some(&mut claims),
            &mut notes,
        )
        .unwrap();
        (spec, claims, notes)
    }

    fn claim(path: &str, name: &str) -> VolumeSuggestion {
        let mut v = vs(path, name);
        v.volume = VolumeKind::PersistentVolumeClaim {
            claim_name: format!("web-{name}"),
        };
        v.purpose = Purpose::Data;
        v
    }

    fn with_ops(mut v: VolumeSuggestion, ops: &[OpName]) -> VolumeSuggestion {
        v.evidence.ops = ops.to_vec();
        v.evidence.count = 5;
        v.evidence.sample_paths = vec![RawPath::from(format!("{}/x", v.mount_path).as_str())];
        v
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
    fn statefulset_data_gets_a_claim_template_per_replica_named_apart_from_existing_ones() {
        let (spec, claims, notes) = run_sts(
            "containers: [{name: c0, volumeMounts: [{name: data, mountPath: /archive}]}, {name: c1}]
volumes: [{name: tmp, emptyDir: {}}]",
            vec![
                (0, vec![claim("/data", "data"), vs("/tmp/x", "tmp")]),
                (1, vec![claim("/data", "data")]),
            ],
            &["data"],
        );
        // No pod-template volume for the data: one would be one claim shared by every replica.
        let vols = spec["volumes"].as_sequence().unwrap();
        assert!(
            vols.iter()
                .all(|v| v.get("persistentVolumeClaim").is_none()),
            "{vols:?}"
        );
        assert_eq!(
            vols.iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["tmp", "tmp-2"],
            "only the emptyDir is a volume"
        );
        let template = |name: &str| {
            Value::Mapping(y(&format!(
                "{{metadata: {{name: {name}}}, spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}}}"
            )))
        };
        // `data` is the manifest's template already: the new ones are data-2 and, for the
        // second container, data-3.
        assert_eq!(claims.added, vec![template("data-2"), template("data-3")]);
        assert_eq!(
            spec["containers"][0]["volumeMounts"][1],
            Value::Mapping(y("{name: data-2, mountPath: /data}"))
        );
        assert_eq!(
            spec["containers"][1]["volumeMounts"][0],
            Value::Mapping(y("{name: data-3, mountPath: /data}"))
        );
        let note = notes
            .iter()
            .find(|n| n.contains("volumeClaimTemplates entry data-2"))
            .unwrap_or_else(|| panic!("{notes:?}"));
        assert!(note.contains("data-2-web-0"), "{note}");
        assert!(
            note.contains("1Gi") && note.contains("storageClassName"),
            "{note}"
        );
        assert!(note.contains("--cascade=orphan"), "{note}");

        // A volume never takes the name of a claim template, whatever its kind.
        let (spec, claims, _) = run_sts(
            "containers: [{name: c0}]",
            vec![(0, vec![vs("/data", "data")])],
            &["data"],
        );
        assert_eq!(spec["volumes"][0]["name"], "data-2");
        assert!(claims.added.is_empty());

        // Other kinds keep the persistentVolumeClaim volume (one claim, as a Deployment has).
        let (spec, _) = run(
            "containers: [{name: app}]",
            vec![claim("/data", "data")],
            &Options::default(),
        );
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "web-data"
        );
    }

    #[test]
    fn a_needed_directory_on_a_read_only_mount_is_said_so_with_the_fix() {
        let tmp = with_ops(vs("/tmp", "tmp"), &[OpName::Create, OpName::RenameTo]);
        let (spec, notes) = run(
            "containers: [{name: app, volumeMounts: [{name: cfg, mountPath: /tmp}, {name: cache, mountPath: /var/cache/app, readOnly: true}]}]
volumes: [{name: cfg, configMap: {name: c}}, {name: cache, emptyDir: {}}]",
            vec![
                tmp,
                with_ops(vs("/var/cache/app", "cache"), &[OpName::Mkdir]),
            ],
            &Options::default(),
        );
        assert_eq!(
            spec["containers"][0]["volumeMounts"]
                .as_sequence()
                .unwrap()
                .len(),
            2,
            "nothing mounted over the user's mounts"
        );
        assert_eq!(spec["volumes"].as_sequence().unwrap().len(), 2);
        assert_eq!(notes.len(), 2, "{notes:?}");
        let cfg = &notes[0];
        for part in [
            "/tmp must be writable",
            "create, rename-to, 5 calls, e.g. /tmp/x",
            "configMap volume cfg, which is read-only",
            "EROFS",
            "/tmp/cfg",
            "subPath",
            "add an emptyDir at /tmp",
        ] {
            assert!(cfg.contains(part), "{part}: {cfg}");
        }
        let ro = &notes[1];
        assert!(
            ro.contains("/var/cache/app must be writable")
                && ro.contains("volume cache is mounted there with readOnly: true")
                && ro.contains("drop readOnly: true"),
            "{ro}"
        );

        // A writable mount there already serves the writes: nothing to say.
        let (_, notes) = run(
            "containers: [{name: app, volumeMounts: [{name: t, mountPath: /tmp/}]}]
volumes: [{name: t, emptyDir: {}}]",
            vec![vs("/tmp", "tmp")],
            &Options::default(),
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn harden_keeps_the_capabilities_root_needs_for_what_it_was_seen_doing() {
        let harden = Options {
            harden: true,
            ..Options::default()
        };
        let nginx = || {
            vec![
                with_ops(
                    vs("/var/cache/nginx", "cache"),
                    &[OpName::Mkdir, OpName::Chown],
                ),
                with_ops(vs("/var/run", "run"), &[OpName::Create]),
            ]
        };
        // nginx as root: chown of its temp directories needs CHOWN.
        let (spec, notes) = run("containers: [{name: app, image: nginx}]", nginx(), &harden);
        let sc = &spec["containers"][0]["securityContext"];
        assert_eq!(
            sc["capabilities"],
            Value::Mapping(y("{drop: [ALL], add: [CHOWN]}"))
        );
        assert!(
            sc.get("runAsNonRoot").is_none(),
            "a root container with runAsNonRoot: true never starts"
        );
        let all = notes.join(
            "
",
        );
        for part in [
            "kept CHOWN in capabilities.add beside drop [ALL]: the recording shows chown in /var/cache/nginx",
            "SETUID and SETGID",
            "runAsNonRoot left unset: the recording shows chown in /var/cache/nginx",
        ] {
            assert!(all.contains(part), "{part}: {all}");
        }

        // chmod after chown: FOWNER too; an add list the container has is kept and extended.
        let mut vols = nginx();
        vols[0].evidence.ops.push(OpName::Chmod);
        let (spec, notes) = run(
            "containers: [{name: app, securityContext: {capabilities: {add: [NET_BIND_SERVICE, CAP_CHOWN]}}}]",
            vols,
            &harden,
        );
        assert_eq!(
            spec["containers"][0]["securityContext"]["capabilities"],
            Value::Mapping(y(
                "{add: [NET_BIND_SERVICE, CAP_CHOWN, FOWNER], drop: [ALL]}"
            ))
        );
        assert!(notes.iter().any(|n| n.contains("kept FOWNER")), "{notes:?}");

        // chmod alone: nothing kept, but what breaks is said.
        let (spec, notes) = run(
            "containers: [{name: app}]",
            vec![with_ops(vs("/var/run", "run"), &[OpName::Chmod])],
            &harden,
        );
        let sc = &spec["containers"][0]["securityContext"];
        assert_eq!(sc["capabilities"], Value::Mapping(y("{drop: [ALL]}")));
        assert_eq!(sc["runAsNonRoot"], true);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("chmod in /var/run") && n.contains("FOWNER")),
            "{notes:?}"
        );

        // Running as a non-root user: capabilities do nothing for it, drop them all.
        let (spec, notes) = run(
            "securityContext: {runAsUser: 101}
containers: [{name: app}]",
            nginx(),
            &harden,
        );
        let sc = &spec["containers"][0]["securityContext"];
        assert_eq!(sc["capabilities"], Value::Mapping(y("{drop: [ALL]}")));
        assert_eq!(sc["runAsNonRoot"], true);
        assert!(notes.is_empty(), "{notes:?}");

        // runAsUser 0 and runAsNonRoot: true cannot go together.
        let (spec, notes) = run(
            "containers: [{name: app, securityContext: {runAsUser: 0}}]",
            vec![],
            &harden,
        );
        assert!(spec["containers"][0]["securityContext"]
            .get("runAsNonRoot")
            .is_none());
        assert!(
            notes.iter().any(|n| n.contains("runAsUser is 0")),
            "{notes:?}"
        );
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
            None,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NonUtf8Path { .. }), "{err}");
    }
}
