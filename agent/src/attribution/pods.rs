//! The pods of this node: a kube reflector on `spec.nodeName=$NODE` (managed fields stripped),
//! plus the pods deleted recently, so a short-lived pod's containers are still attributed after
//! it is gone. Pure helpers find a container by its runtime id in a pod's statuses and give the
//! pod spec's volume mounts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, VolumeMount};
use kube::runtime::{reflector, watcher, WatchStreamExt as _};
use kube::ResourceExt as _;

use crate::path::RawPath;
use crate::report::Mount;

use super::cgroup::Runtime;

/// How long a deleted pod is kept for attribution.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);
/// `Mount::fs_type` of a mount taken from the pod spec's `volumeMounts` (not a mount table).
pub const POD_SPEC_FS_TYPE: &str = "pod-spec-volume";

/// A container of a pod, found by its runtime id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodContainer {
    /// Name in the pod spec.
    pub name: String,
    /// "container", "init" or "ephemeral".
    pub kind: &'static str,
    /// The runtime the status's `containerID` scheme names.
    pub runtime: Runtime,
    /// The container's `volumeMounts`, as [`Mount`]s with `fs_type` [`POD_SPEC_FS_TYPE`] and
    /// `source` `volume:<name>`.
    pub mounts: Vec<Mount>,
}

/// Finds the container whose status `containerID` (`<runtime>://<id>`) has `id`, among the
/// containers, init containers and ephemeral containers. Also matches the last terminated
/// instance (a restarted container's previous id).
pub fn container_of(pod: &Pod, id: &str) -> Option<PodContainer> {
    let status = pod.status.as_ref()?;
    let groups: [(&Option<Vec<ContainerStatus>>, &'static str); 3] = [
        (&status.container_statuses, "container"),
        (&status.init_container_statuses, "init"),
        (&status.ephemeral_container_statuses, "ephemeral"),
    ];
    for (statuses, kind) in groups {
        for s in statuses.iter().flatten() {
            let ids = [
                s.container_id.as_deref(),
                s.last_state
                    .as_ref()
                    .and_then(|l| l.terminated.as_ref())
                    .and_then(|t| t.container_id.as_deref()),
            ];
            for full in ids.into_iter().flatten() {
                let (scheme, cid) = full.split_once("://").unwrap_or(("", full));
                if cid == id {
                    return Some(PodContainer {
                        name: s.name.clone(),
                        kind,
                        runtime: Runtime::from_scheme(scheme),
                        mounts: volume_mounts(pod, &s.name, kind),
                    });
                }
            }
        }
    }
    None
}

/// The `volumeMounts` of a container of the pod spec, as report mounts.
pub fn volume_mounts(pod: &Pod, container: &str, kind: &str) -> Vec<Mount> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mounts: Option<&Vec<VolumeMount>> = match kind {
        "init" => spec
            .init_containers
            .iter()
            .flatten()
            .find(|c| c.name == container)
            .and_then(|c| c.volume_mounts.as_ref()),
        "ephemeral" => spec
            .ephemeral_containers
            .iter()
            .flatten()
            .find(|c| c.name == container)
            .and_then(|c| c.volume_mounts.as_ref()),
        _ => spec
            .containers
            .iter()
            .find(|c| c.name == container)
            .and_then(|c| c.volume_mounts.as_ref()),
    };
    mounts
        .into_iter()
        .flatten()
        .map(|m| Mount {
            mount_point: RawPath::from(m.mount_path.as_str()),
            fs_type: POD_SPEC_FS_TYPE.to_string(),
            source: format!("volume:{}", m.name),
            read_only: m.read_only.unwrap_or(false),
        })
        .collect()
}

/// Which namespaces are recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only these (all when empty).
    pub include: Vec<String>,
    /// Never these (applies after `include`).
    pub exclude: Vec<String>,
}

impl Scope {
    /// Whether pods of `namespace` are recorded.
    pub fn admits(&self, namespace: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|n| n == namespace))
            && !self.exclude.iter().any(|n| n == namespace)
    }
}

/// Pods deleted recently, by UID, with the time they were deleted.
type Tombstones = Arc<Mutex<HashMap<String, (Arc<Pod>, Instant)>>>;

/// The node's pods: the reflector's store and recently deleted pods.
#[derive(Clone)]
pub struct PodIndex {
    store: reflector::Store<Pod>,
    deleted: Tombstones,
    ready: Arc<std::sync::atomic::AtomicBool>,
}

impl PodIndex {
    /// The pod with this UID, live or deleted within [`TOMBSTONE_TTL`].
    pub fn by_uid(&self, uid: &str) -> Option<Arc<Pod>> {
        if let Some(p) = self
            .store
            .state()
            .into_iter()
            .find(|p| p.metadata.uid.as_deref() == Some(uid))
        {
            return Some(p);
        }
        let deleted = self.deleted.lock().ok()?;
        deleted.get(uid).map(|(p, _)| p.clone())
    }

    /// Whether the first full list has arrived.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until the first full list has arrived.
    pub async fn wait_ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }
}

/// Starts watching the pods of `node` (with `selector`, a label selector, when given). The
/// returned future runs the watch until dropped; API errors are retried with backoff.
pub fn watch(
    client: kube::Client,
    node: &str,
    selector: Option<&str>,
) -> (PodIndex, impl std::future::Future<Output = ()>) {
    let (store, writer) = reflector::store();
    let index = PodIndex {
        store,
        deleted: Arc::default(),
        ready: Arc::default(),
    };
    let mut config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    if let Some(s) = selector {
        config = config.labels(s);
    }
    let api: kube::Api<Pod> = kube::Api::all(client);
    let deleted = index.deleted.clone();
    let ready = index.ready.clone();
    let task = async move {
        let stream = watcher(api, config)
            .default_backoff()
            .modify(|p| p.managed_fields_mut().clear())
            .reflect(writer);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Delete(pod)) => {
                    if let (Some(uid), Ok(mut d)) = (pod.metadata.uid.clone(), deleted.lock()) {
                        d.retain(|_, (_, at)| at.elapsed() < TOMBSTONE_TTL);
                        d.insert(uid, (Arc::new(pod), Instant::now()));
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    ready.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
            }
        }
    };
    (index, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5d1f3c2b8a7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c";

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1"},
            "spec": {
                "containers": [{"name": "app", "volumeMounts": [
                    {"name": "cache", "mountPath": "/var/cache/app"},
                    {"name": "cfg", "mountPath": "/etc/app", "readOnly": true}
                ]}],
                "initContainers": [{"name": "migrate", "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}],
                "ephemeralContainers": [{"name": "debugger"}]
            },
            "status": {
                "containerStatuses": [{"name": "app", "containerID": format!("containerd://{}", "a".repeat(64)),
                    "image": "", "imageID": "", "ready": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 1, "containerID": format!("containerd://{ID}")}}}],
                "initContainerStatuses": [{"name": "migrate", "containerID": format!("cri-o://{}", "b".repeat(64)),
                    "image": "", "imageID": "", "ready": false, "restartCount": 0}],
                "ephemeralContainerStatuses": [{"name": "debugger", "containerID": format!("docker://{}", "c".repeat(64)),
                    "image": "", "imageID": "", "ready": false, "restartCount": 0}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn finds_containers_of_every_kind() {
        let p = pod();
        let app = container_of(&p, &"a".repeat(64)).unwrap();
        assert_eq!(
            (app.name.as_str(), app.kind, app.runtime),
            ("app", "container", Runtime::Containerd)
        );
        assert_eq!(app.mounts.len(), 2);
        assert_eq!(app.mounts[0].mount_point, RawPath::from("/var/cache/app"));
        assert_eq!(app.mounts[0].source, "volume:cache");
        assert!(app.mounts[1].read_only);
        // The previous instance of a restarted container.
        assert_eq!(container_of(&p, ID).unwrap().name, "app");
        let init = container_of(&p, &"b".repeat(64)).unwrap();
        assert_eq!(
            (init.name.as_str(), init.kind, init.runtime),
            ("migrate", "init", Runtime::CriO)
        );
        assert_eq!(init.mounts[0].mount_point, RawPath::from("/cache"));
        let eph = container_of(&p, &"c".repeat(64)).unwrap();
        assert_eq!(
            (eph.name.as_str(), eph.kind, eph.runtime),
            ("debugger", "ephemeral", Runtime::Docker)
        );
        assert!(eph.mounts.is_empty());
        assert_eq!(container_of(&p, &"d".repeat(64)), None);
    }

    #[test]
    fn namespace_scope() {
        let s = Scope {
            include: vec![],
            exclude: vec!["kube-system".into()],
        };
        assert!(s.admits("shop"));
        assert!(!s.admits("kube-system"));
        let s = Scope {
            include: vec!["shop".into(), "kube-system".into()],
            exclude: vec!["kube-system".into()],
        };
        assert!(s.admits("shop"));
        assert!(!s.admits("kube-system"));
        assert!(!s.admits("other"));
    }
}

#[cfg(test)]
mod api_tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::cluster::testserver::TestServer;

    const PODS: &str = "api/v1/pods";

    fn pod(name: &str, uid: &str, node: &str, id: &str) -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "uid": uid, "labels": {"app": "web"},
                         "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"nodeName": node, "containers": [{"name": "app"}]},
            "status": {"containerStatuses": [{"name": "app", "containerID": format!("containerd://{id}"),
                "image": "", "imageID": "", "ready": true, "restartCount": 0}]}
        })
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..100 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// List, then watch from the list's resourceVersion: new pods, deletions (kept as
    /// tombstones), dropped watches, 500s and 410 Gone (relist) all end with a correct index.
    #[tokio::test]
    async fn node_pods_through_list_watch_and_failures() {
        let server = TestServer::start().await;
        server.put(PODS, pod("web-1", "u1", "node-1", &"a".repeat(64)));
        server.put(PODS, pod("other-node", "u9", "node-2", &"9".repeat(64)));
        let (index, task) = watch(server.client(), "node-1", Some("app=web"));
        let task = tokio::spawn(task);
        tokio::time::timeout(Duration::from_secs(10), index.wait_ready())
            .await
            .expect("initial list");
        assert!(index.is_ready());
        let p = index.by_uid("u1").expect("listed pod");
        assert!(
            p.metadata
                .managed_fields
                .as_ref()
                .is_none_or(|m| m.is_empty()),
            "managed fields stripped"
        );
        assert!(
            index.by_uid("u9").is_none(),
            "pods of other nodes are not listed"
        );

        // A new pod arrives through the watch.
        server.put(PODS, pod("web-2", "u2", "node-1", &"b".repeat(64)));
        eventually("watched pod", || index.by_uid("u2").is_some()).await;

        // The watch is dropped and the next watch attempt fails: the watcher resumes.
        server.drop_watches();
        server.fail(None, "watch=true", 500, 1);
        server.put(PODS, pod("web-3", "u3", "node-1", &"c".repeat(64)));
        eventually("pod after a dropped watch", || index.by_uid("u3").is_some()).await;

        // A short-lived pod: deleted, still attributable.
        server.delete(PODS, "shop", "web-2");
        eventually("deleted pod", || {
            index
                .store
                .state()
                .iter()
                .all(|p| p.metadata.uid.as_deref() != Some("u2"))
        })
        .await;
        let gone = index.by_uid("u2").expect("tombstone");
        assert_eq!(container_of(&gone, &"b".repeat(64)).unwrap().name, "app");

        // History compacted while the watch is down: 410 Gone, relist, nothing missed.
        server.compact();
        server.drop_watches();
        server.put(PODS, pod("web-4", "u4", "node-1", &"d".repeat(64)));
        eventually("pod after 410", || index.by_uid("u4").is_some()).await;

        let requests = server.requests();
        assert!(
            requests
                .iter()
                .any(|r| r.contains("fieldSelector=spec.nodeName%3Dnode-1")
                    && r.contains("labelSelector=app%3Dweb")),
            "{requests:#?}"
        );
        assert!(
            requests.iter().any(|r| r.contains("watch=true")
                && r.contains("resourceVersion=")
                && r.contains("allowWatchBookmarks=true")),
            "{requests:#?}"
        );
        task.abort();
    }

    /// A bookmark carries the resourceVersion of changes the watch filtered out; after a
    /// dropped watch the watcher resumes from it (no relist, no replay).
    #[tokio::test]
    async fn bookmarks_move_the_resume_point() {
        let server = TestServer::start().await;
        server.put(PODS, pod("web-1", "u1", "node-1", &"a".repeat(64)));
        let (index, task) = watch(server.client(), "node-1", None);
        let task = tokio::spawn(task);
        tokio::time::timeout(Duration::from_secs(10), index.wait_ready())
            .await
            .expect("initial list");
        // Changes on another node: invisible to this watch, except through bookmarks.
        server.put(PODS, pod("x", "u8", "node-2", &"8".repeat(64)));
        let latest = server.put(PODS, pod("y", "u9", "node-2", &"9".repeat(64)));
        let rv = latest["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let before = server.requests().len();
        server.drop_watches();
        let resumed = format!("resourceVersion={rv}");
        eventually("a watch resumed from the bookmark", || {
            server.requests()[before..]
                .iter()
                .any(|r| r.contains("watch=true") && r.contains(&resumed))
        })
        .await;
        assert!(
            !server.requests()[before..]
                .iter()
                .any(|r| r.starts_with("GET /api/v1/pods?") && !r.contains("watch=true")),
            "no relist after a dropped watch: {:#?}",
            &server.requests()[before..]
        );
        task.abort();
    }
}
