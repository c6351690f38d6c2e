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
