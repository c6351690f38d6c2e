//! Gives each observed target its identity: cgroup path → container id → pod (from the node's
//! pod index) → container name and volume mounts → owning workload (ReplicaSet and Job parents
//! read from the API, cached). Identities are pinned once complete, so a container stays
//! attributed after its pod is gone.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;

use crate::attribution::cgroup::{self, Runtime};
use crate::attribution::owners::{self, Lookup, OwnerLookup};
use crate::attribution::pods::{self, PodIndex, Scope};
use crate::report::{ContainerRef, Mount, PodRef, Target, WorkloadRef};

/// Who a target is.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The container.
    pub container: ContainerRef,
    /// Its pod.
    pub pod: PodRef,
    /// The pod's workload.
    pub workload: WorkloadRef,
    /// The pod spec's volume mounts of the container.
    pub mounts: Vec<Mount>,
}

/// The outcome for one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Pod and workload known.
    Attributed,
    /// The pod's namespace is out of scope: not recorded.
    Excluded,
    /// Not a pod's container, or the pod is not known (yet).
    Unknown,
}

/// Parent lookups cached from the API.
#[derive(Default)]
struct OwnerCache(HashMap<(String, String, String), Lookup>);

impl OwnerLookup for OwnerCache {
    fn controller_of(&self, kind: &str, namespace: &str, name: &str) -> Lookup {
        self.0
            .get(&(kind.to_string(), namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or(Lookup::Unavailable)
    }
}

/// Attribution state of the agent.
pub struct Attributor {
    client: kube::Client,
    pods: PodIndex,
    scope: Scope,
    owners: OwnerCache,
    pinned: HashMap<String, Identity>,
}

impl Attributor {
    /// An attributor reading pods from `pods` and parents through `client`.
    pub fn new(client: kube::Client, pods: PodIndex, scope: Scope) -> Attributor {
        Attributor {
            client,
            pods,
            scope,
            owners: OwnerCache::default(),
            pinned: HashMap::new(),
        }
    }

    /// Fills `target`'s container, pod, workload and pod-spec mounts.
    pub async fn attribute(&mut self, target: &mut Target) -> Outcome {
        let Some(info) = cgroup::parse(&target.cgroup.path) else {
            return Outcome::Unknown;
        };
        let Some(c) = info.container else {
            return Outcome::Unknown;
        };
        if let Some(id) = self.pinned.get(&c.id) {
            if !self.scope.admits(&id.pod.namespace) {
                return Outcome::Excluded;
            }
            apply(target, id.clone());
            return Outcome::Attributed;
        }
        if target.container.is_none() {
            target.container = Some(ContainerRef {
                id: c.id.clone(),
                runtime: c.runtime.as_str().to_string(),
                name: None,
                kind: None,
            });
        }
        let Some(pod) = info
            .pod_uid
            .as_deref()
            .and_then(|uid| self.pods.by_uid(uid))
        else {
            return Outcome::Unknown;
        };
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        if !self.scope.admits(&namespace) {
            return Outcome::Excluded;
        }
        if let Some((kind, name)) = owners::parent_to_fetch(&pod) {
            self.fetch_parent(&kind, &namespace, &name).await;
        }
        let resolved = owners::workload_of(&pod, &self.owners);
        let found = pods::container_of(&pod, &c.id);
        let runtime = match (c.runtime, found.as_ref().map(|f| f.runtime)) {
            (Runtime::Unknown, Some(r)) => r,
            (r, _) => r,
        };
        let identity = Identity {
            container: ContainerRef {
                id: c.id.clone(),
                runtime: match runtime {
                    Runtime::Unknown => "cri".to_string(),
                    r => r.as_str().to_string(),
                },
                name: found.as_ref().map(|f| f.name.clone()),
                kind: found.as_ref().map(|f| f.kind.to_string()),
            },
            pod: PodRef {
                namespace,
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
            },
            workload: resolved.workload,
            mounts: found.map(|f| f.mounts).unwrap_or_default(),
        };
        if resolved.complete && identity.container.name.is_some() {
            self.pinned.insert(c.id, identity.clone());
        }
        apply(target, identity);
        Outcome::Attributed
    }

    async fn fetch_parent(&mut self, kind: &str, namespace: &str, name: &str) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        if matches!(
            self.owners.0.get(&key),
            Some(Lookup::Found(_) | Lookup::Missing)
        ) {
            return;
        }
        let result = match kind {
            "ReplicaSet" => Api::<ReplicaSet>::namespaced(self.client.clone(), namespace)
                .get_opt(name)
                .await
                .map(|o| o.map(|o| o.metadata.owner_references.unwrap_or_default())),
            _ => Api::<Job>::namespaced(self.client.clone(), namespace)
                .get_opt(name)
                .await
                .map(|o| o.map(|o| o.metadata.owner_references.unwrap_or_default())),
        };
        let lookup = match result {
            Ok(Some(refs)) => Lookup::Found(owners::controller_ref(&refs)),
            Ok(None) => Lookup::Missing,
            Err(e) => {
                tracing::warn!(kind, namespace, name, error = %e, "failed to read owner; will retry");
                return;
            }
        };
        self.owners.0.insert(key, lookup);
    }
}

fn apply(target: &mut Target, id: Identity) {
    for m in id.mounts {
        if !target.mounts.iter().any(|x| x.mount_point == m.mount_point) {
            target.mounts.push(m);
        }
    }
    target.container = Some(id.container);
    target.pod = Some(id.pod);
    target.workload = Some(id.workload);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::cluster::testserver::TestServer;
    use crate::report::CgroupRef;

    const UID: &str = "0b6a3b8e-1b8a-4d0f-9f0a-6a9b6a0d3e2f";

    fn id(n: char) -> String {
        n.to_string().repeat(64)
    }

    fn pod(ns: &str, uid: &str, container: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7d4b9c-x", "namespace": ns, "uid": uid,
                "labels": {"pod-template-hash": "7d4b9c"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c", "uid": "r", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}]},
            "status": {"containerStatuses": [{"name": "app", "containerID": format!("containerd://{container}"),
                "image": "", "imageID": "", "ready": true, "restartCount": 0}]}})
    }

    fn target(uid: &str, container: &str) -> Target {
        Target {
            cgroup: CgroupRef {
                path: format!("/kubepods/burstable/pod{uid}/{container}"),
                id: 1,
            },
            ..Default::default()
        }
    }

    async fn attributor(server: &TestServer) -> Attributor {
        let (index, task) = pods::watch(server.client(), "n1", None);
        tokio::spawn(task);
        tokio::time::timeout(Duration::from_secs(10), index.wait_ready())
            .await
            .unwrap();
        Attributor::new(
            server.client(),
            index,
            Scope {
                include: vec![],
                exclude: vec!["kube-system".into()],
            },
        )
    }

    #[tokio::test]
    async fn attributes_through_pod_and_replicaset_and_keeps_it() {
        let server = TestServer::start().await;
        server.put("api/v1/pods", pod("shop", UID, &id('a')));
        server.put(
            "apis/apps/v1/replicasets",
            json!({"metadata": {"name": "web-7d4b9c", "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-v2", "uid": "d", "controller": true}]}}),
        );
        let mut a = attributor(&server).await;
        // The ReplicaSet read fails once: the hash naming gives a provisional answer.
        server.fail(None, "replicasets", 500, 1);
        let mut t = target(UID, &id('a'));
        assert_eq!(a.attribute(&mut t).await, Outcome::Attributed);
        assert_eq!(
            t.workload.as_ref().unwrap().name,
            "web",
            "provisional, from the hash"
        );
        // Next time the ReplicaSet is read: its Deployment is the real owner.
        let mut t = target(UID, &id('a'));
        assert_eq!(a.attribute(&mut t).await, Outcome::Attributed);
        let w = t.workload.clone().unwrap();
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("Deployment", "web-v2"));
        let c = t.container.clone().unwrap();
        assert_eq!(
            (c.name.as_deref(), c.kind.as_deref(), c.runtime.as_str()),
            (Some("app"), Some("container"), "containerd")
        );
        assert_eq!(t.pod.as_ref().unwrap().uid, UID);
        assert!(t
            .mounts
            .iter()
            .any(|m| m.mount_point == crate::path::RawPath::from("/cache")
                && m.fs_type == pods::POD_SPEC_FS_TYPE));
        // Pod and ReplicaSet gone: the identity stays pinned.
        server.delete("api/v1/pods", "shop", "web-7d4b9c-x");
        server.delete("apis/apps/v1/replicasets", "shop", "web-7d4b9c");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut again = target(UID, &id('a'));
        assert_eq!(a.attribute(&mut again).await, Outcome::Attributed);
        assert_eq!(again.workload, t.workload);
    }

    #[tokio::test]
    async fn job_pods_belong_to_their_cronjob() {
        let server = TestServer::start().await;
        let uid = "22222222-3333-4444-5555-666666666666";
        let mut p = pod("ops", uid, &id('e'));
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job",
            "name": "backup-29001234", "uid": "j", "controller": true}]);
        server.put("api/v1/pods", p);
        server.put(
            "apis/batch/v1/jobs",
            json!({"metadata": {"name": "backup-29001234", "namespace": "ops",
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "backup", "uid": "c", "controller": true}]}}),
        );
        let mut a = attributor(&server).await;
        let mut t = target(uid, &id('e'));
        assert_eq!(a.attribute(&mut t).await, Outcome::Attributed);
        let w = t.workload.unwrap();
        assert_eq!(
            (w.kind.as_str(), w.namespace.as_str(), w.name.as_str()),
            ("CronJob", "ops", "backup")
        );
        assert!(server
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /apis/batch/v1/namespaces/ops/jobs/backup-29001234")));
    }

    #[tokio::test]
    async fn excluded_and_unknown() {
        let server = TestServer::start().await;
        let sys = "11111111-2222-3333-4444-555555555555";
        server.put("api/v1/pods", pod("kube-system", sys, &id('b')));
        let mut a = attributor(&server).await;
        let mut t = target(sys, &id('b'));
        assert_eq!(a.attribute(&mut t).await, Outcome::Excluded);
        // A pod the index does not know (yet): the container id is kept, no pod.
        let mut t = target(UID, &id('c'));
        assert_eq!(a.attribute(&mut t).await, Outcome::Unknown);
        assert_eq!(t.container.as_ref().unwrap().id, id('c'));
        assert!(t.pod.is_none());
        // Not a container cgroup at all.
        let mut t = Target {
            cgroup: CgroupRef {
                path: "/kubepods/burstable".into(),
                id: 2,
            },
            ..Default::default()
        };
        assert_eq!(a.attribute(&mut t).await, Outcome::Unknown);
        assert!(t.container.is_none());
    }
}
