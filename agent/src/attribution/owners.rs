//! Pod → owning workload, through `ownerReferences`: ReplicaSet → Deployment, Job → CronJob,
//! StatefulSet, DaemonSet, and the bare Pod. Pure: the parents (ReplicaSets and Jobs) come from
//! an [`OwnerLookup`], which the daemon fills from the API and tests fill by hand.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::report::WorkloadRef;

/// The controller of an object, as its controlling owner reference names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    /// Kind (`Deployment`, `CronJob`, …).
    pub kind: String,
    /// Name, in the object's namespace.
    pub name: String,
}

/// What the API said about a parent object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The object exists; its controller, if any.
    Found(Option<Controller>),
    /// The object does not exist (deleted, or the pod is an orphan).
    Missing,
    /// Not known yet (not fetched, or the API failed): resolve again later.
    Unavailable,
}

/// Answers "who controls this ReplicaSet/Job".
pub trait OwnerLookup {
    /// The controller of `kind` `namespace/name`.
    fn controller_of(&self, kind: &str, namespace: &str, name: &str) -> Lookup;
}

/// A resolved owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The workload.
    pub workload: WorkloadRef,
    /// False when a parent lookup was unavailable: the answer is the best so far and should be
    /// resolved again.
    pub complete: bool,
}

/// The controlling owner reference of an object (the one with `controller: true`, else the
/// only one).
pub fn controller_ref(owners: &[OwnerReference]) -> Option<Controller> {
    let r = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or(match owners {
            [only] => Some(only),
            _ => None,
        })?;
    Some(Controller {
        kind: r.kind.clone(),
        name: r.name.clone(),
    })
}

/// The parent object resolution needs from the API (a ReplicaSet or a Job), if any.
pub fn parent_to_fetch(pod: &Pod) -> Option<(String, String)> {
    let c = controller_ref(pod.metadata.owner_references.as_deref().unwrap_or_default())?;
    matches!(c.kind.as_str(), "ReplicaSet" | "Job").then_some((c.kind, c.name))
}

/// The workload owning `pod`.
///
/// - No owner (a bare pod, or an orphan whose owner let it go): the Pod itself.
/// - A static pod's mirror (owned by its Node): the Pod.
/// - ReplicaSet: its Deployment; a missing ReplicaSet with the Deployment's `pod-template-hash`
///   naming scheme (`<deployment>-<hash>`) still gives the Deployment, else the ReplicaSet.
/// - Job: its CronJob, else the Job (also when the Job is gone).
/// - StatefulSet, DaemonSet and any other controller kind: that controller.
pub fn workload_of(pod: &Pod, lookup: &impl OwnerLookup) -> Resolved {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let resolved = |kind: &str, name: &str, complete: bool| Resolved {
        workload: WorkloadRef {
            kind: kind.to_string(),
            namespace: namespace.clone(),
            name: name.to_string(),
        },
        complete,
    };
    let Some(owner) = controller_ref(pod.metadata.owner_references.as_deref().unwrap_or_default())
    else {
        return resolved("Pod", &pod_name, true);
    };
    match owner.kind.as_str() {
        "Node" => resolved("Pod", &pod_name, true),
        "ReplicaSet" => match lookup.controller_of("ReplicaSet", &namespace, &owner.name) {
            Lookup::Found(Some(c)) if c.kind == "Deployment" => resolved(&c.kind, &c.name, true),
            Lookup::Found(Some(c)) => resolved(&c.kind, &c.name, true),
            Lookup::Found(None) => resolved("ReplicaSet", &owner.name, true),
            Lookup::Missing => match deployment_by_hash(pod, &owner.name) {
                Some(d) => resolved("Deployment", d, true),
                None => resolved("ReplicaSet", &owner.name, true),
            },
            Lookup::Unavailable => match deployment_by_hash(pod, &owner.name) {
                Some(d) => resolved("Deployment", d, false),
                None => resolved("ReplicaSet", &owner.name, false),
            },
        },
        "Job" => match lookup.controller_of("Job", &namespace, &owner.name) {
            Lookup::Found(Some(c)) => resolved(&c.kind, &c.name, true),
            Lookup::Found(None) | Lookup::Missing => resolved("Job", &owner.name, true),
            Lookup::Unavailable => resolved("Job", &owner.name, false),
        },
        kind => resolved(kind, &owner.name, true),
    }
}

/// `<deployment>` when the ReplicaSet is named `<deployment>-<pod-template-hash>`.
fn deployment_by_hash<'a>(pod: &Pod, replica_set: &'a str) -> Option<&'a str> {
    let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash")?;
    replica_set
        .strip_suffix(hash.as_str())?
        .strip_suffix('-')
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Api(BTreeMap<(String, String), Lookup>);

    impl OwnerLookup for Api {
        fn controller_of(&self, kind: &str, _ns: &str, name: &str) -> Lookup {
            self.0
                .get(&(kind.to_string(), name.to_string()))
                .cloned()
                .unwrap_or(Lookup::Missing)
        }
    }

    fn api(entries: &[(&str, &str, Lookup)]) -> Api {
        Api(entries
            .iter()
            .map(|(k, n, l)| ((k.to_string(), n.to_string()), l.clone()))
            .collect())
    }

    fn found(kind: &str, name: &str) -> Lookup {
        Lookup::Found(Some(Controller {
            kind: kind.into(),
            name: name.into(),
        }))
    }

    fn pod(owners: &[(&str, &str, Option<bool>)], hash: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("web-7d4b9c-x2x9z".into());
        p.metadata.namespace = Some("shop".into());
        p.metadata.owner_references = Some(
            owners
                .iter()
                .map(|(kind, name, controller)| OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: kind.to_string(),
                    name: name.to_string(),
                    uid: "u".into(),
                    controller: *controller,
                    block_owner_deletion: None,
                })
                .collect(),
        );
        if let Some(h) = hash {
            p.metadata.labels = Some([("pod-template-hash".to_string(), h.to_string())].into());
        }
        p
    }

    fn check(p: &Pod, lookup: &Api, kind: &str, name: &str, complete: bool) {
        let r = workload_of(p, lookup);
        assert_eq!(
            (
                r.workload.kind.as_str(),
                r.workload.name.as_str(),
                r.complete
            ),
            (kind, name, complete)
        );
        assert_eq!(r.workload.namespace, "shop");
    }

    #[test]
    fn every_owner_kind() {
        let rs = pod(&[("ReplicaSet", "web-7d4b9c", Some(true))], Some("7d4b9c"));
        check(
            &rs,
            &api(&[("ReplicaSet", "web-7d4b9c", found("Deployment", "web"))]),
            "Deployment",
            "web",
            true,
        );
        // A ReplicaSet made by hand (no controller).
        check(
            &rs,
            &api(&[("ReplicaSet", "web-7d4b9c", Lookup::Found(None))]),
            "ReplicaSet",
            "web-7d4b9c",
            true,
        );
        let job = pod(&[("Job", "backup-29001234", Some(true))], None);
        check(
            &job,
            &api(&[("Job", "backup-29001234", found("CronJob", "backup"))]),
            "CronJob",
            "backup",
            true,
        );
        check(
            &job,
            &api(&[("Job", "backup-29001234", Lookup::Found(None))]),
            "Job",
            "backup-29001234",
            true,
        );
        let sts = pod(&[("StatefulSet", "db", Some(true))], None);
        check(&sts, &api(&[]), "StatefulSet", "db", true);
        let ds = pod(&[("DaemonSet", "fluentd", Some(true))], None);
        check(&ds, &api(&[]), "DaemonSet", "fluentd", true);
        let bare = pod(&[], None);
        check(&bare, &api(&[]), "Pod", "web-7d4b9c-x2x9z", true);
        let mirror = pod(&[("Node", "node-1", Some(true))], None);
        check(&mirror, &api(&[]), "Pod", "web-7d4b9c-x2x9z", true);
        let custom = pod(&[("Rollout", "canary", Some(true))], None);
        check(&custom, &api(&[]), "Rollout", "canary", true);
    }

    #[test]
    fn orphans_and_missing_owners() {
        // Orphaned: the owner reference was removed (kubectl delete --cascade=orphan keeps the
        // pod but drops the reference only for the controller; a non-controller reference
        // alone among several is ignored).
        let orphan = pod(&[("ConfigMap", "a", None), ("Secret", "b", None)], None);
        check(&orphan, &api(&[]), "Pod", "web-7d4b9c-x2x9z", true);
        // The ReplicaSet is gone: the hash naming still finds the Deployment.
        let rs = pod(&[("ReplicaSet", "web-7d4b9c", Some(true))], Some("7d4b9c"));
        check(&rs, &api(&[]), "Deployment", "web", true);
        // Gone and not named like a Deployment's.
        let rs2 = pod(&[("ReplicaSet", "handmade", Some(true))], Some("7d4b9c"));
        check(&rs2, &api(&[]), "ReplicaSet", "handmade", true);
        // The Job is gone (ttlSecondsAfterFinished): the Job.
        let job = pod(&[("Job", "backup-29001234", Some(true))], None);
        check(&job, &api(&[]), "Job", "backup-29001234", true);
        // The API is unreachable: the best answer, marked for another try.
        let unavailable = api(&[("ReplicaSet", "web-7d4b9c", Lookup::Unavailable)]);
        check(&rs, &unavailable, "Deployment", "web", false);
        let unavailable = api(&[("Job", "backup-29001234", Lookup::Unavailable)]);
        check(&job, &unavailable, "Job", "backup-29001234", false);
    }

    #[test]
    fn parents_to_fetch() {
        let rs = pod(&[("ReplicaSet", "web-1", Some(true))], None);
        assert_eq!(
            parent_to_fetch(&rs),
            Some(("ReplicaSet".into(), "web-1".into()))
        );
        assert_eq!(
            parent_to_fetch(&pod(&[("StatefulSet", "db", Some(true))], None)),
            None
        );
        assert_eq!(parent_to_fetch(&pod(&[], None)), None);
    }
}
