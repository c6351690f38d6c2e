//! The CLI's side of the cluster: reads the `WritePathReport`s of all nodes (and so of all
//! replicas) for a namespace or a workload, and fetches a live workload as a manifest for
//! `writepath patch KIND/NAME`. Progress goes to a callback (the CLI prints it on stderr).

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Api;

use super::crd::{self, WritePathReport};
use crate::report::{Report, REPORT_VERSION};

/// Errors gathering reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `KIND/NAME` is malformed or names an unknown kind.
    #[error("invalid workload {0:?}: want KIND/NAME, KIND one of deployment, statefulset, daemonset, replicaset, job, cronjob, pod")]
    Target(String),
    /// Listing the reports failed.
    #[error("failed to list writepathreports in {scope}")]
    List {
        /// Namespace or "all namespaces".
        scope: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
    /// A published report is from a newer writepath.
    #[error("writepathreport {namespace}/{name}: report version {found} is newer than this writepath understands ({REPORT_VERSION})")]
    Version {
        /// Namespace.
        namespace: String,
        /// Object name.
        name: String,
        /// Its version.
        found: u32,
    },
    /// Nothing was published for the selection.
    #[error("no writepathreports for {0} (is the agent installed, and has the workload run?)")]
    NoReports(String),
    /// Reading the live workload failed.
    #[error("failed to read {kind} {namespace}/{name}")]
    Get {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Target(_) => "target",
            Error::List { .. } => "list",
            Error::Version { .. } => "version",
            Error::NoReports(_) => "no_reports",
            Error::Get { .. } => "get",
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A workload named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadArg {
    /// Canonical kind (`Deployment`).
    pub kind: &'static str,
    /// Name.
    pub name: String,
}

/// Parses `KIND/NAME` as kubectl does (`deploy/web`, `deployment.apps/web`, `sts/db`).
pub fn parse_workload(arg: &str) -> Result<WorkloadArg> {
    let bad = || Error::Target(arg.to_string());
    let (kind, name) = arg.split_once('/').ok_or_else(bad)?;
    if name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    let kind = kind.split('.').next().unwrap_or("").to_ascii_lowercase();
    let kind = match kind.as_str() {
        "deployment" | "deployments" | "deploy" => "Deployment",
        "statefulset" | "statefulsets" | "sts" => "StatefulSet",
        "daemonset" | "daemonsets" | "ds" => "DaemonSet",
        "replicaset" | "replicasets" | "rs" => "ReplicaSet",
        "job" | "jobs" => "Job",
        "cronjob" | "cronjobs" | "cj" => "CronJob",
        "pod" | "pods" | "po" => "Pod",
        _ => return Err(bad()),
    };
    Ok(WorkloadArg {
        kind,
        name: name.to_string(),
    })
}

/// Progress of [`gather`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Reports read so far.
    pub reports: usize,
    /// Distinct nodes among them.
    pub nodes: usize,
}

/// Reads the reports of `namespace` (all namespaces when `None`), of `workload` only when
/// given, from every node. Pages through the list, calling `progress` after each page.
pub async fn gather(
    client: &kube::Client,
    namespace: Option<&str>,
    workload: Option<&WorkloadArg>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Vec<Report>> {
    let (api, scope): (Api<WritePathReport>, String) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            format!("namespace {ns}"),
        ),
        None => (Api::all(client.clone()), "all namespaces".to_string()),
    };
    let mut params = ListParams::default().limit(100);
    if let Some(w) = workload {
        params = params.labels(&format!(
            "{}={},{}={}",
            crd::LABEL_KIND,
            crd::label_value(w.kind),
            crd::LABEL_NAME,
            crd::label_value(&w.name)
        ));
    }
    let mut reports = Vec::new();
    let mut nodes = std::collections::BTreeSet::new();
    loop {
        let page = api.list(&params).await.map_err(|source| Error::List {
            scope: scope.clone(),
            source: Box::new(source),
        })?;
        for object in page.items {
            if let Some(w) = workload {
                if object.spec.workload.kind != w.kind || object.spec.workload.name != w.name {
                    continue;
                }
            }
            let report = object.spec.report;
            if report.version > REPORT_VERSION {
                return Err(Error::Version {
                    namespace: object.metadata.namespace.unwrap_or_default(),
                    name: object.metadata.name.unwrap_or_default(),
                    found: report.version,
                });
            }
            nodes.insert(object.spec.node);
            reports.push(report);
        }
        progress(&Progress {
            reports: reports.len(),
            nodes: nodes.len(),
        });
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    if reports.is_empty() {
        let what = match workload {
            Some(w) => format!("{} {}", w.kind, w.name),
            None => scope,
        };
        return Err(Error::NoReports(what));
    }
    Ok(reports)
}

/// The live workload as a YAML manifest (status, managedFields and server-set metadata left
/// out), for `writepath patch KIND/NAME`.
pub async fn fetch_manifest(
    client: &kube::Client,
    namespace: &str,
    workload: &WorkloadArg,
) -> Result<String> {
    let (group, version) = match workload.kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => ("apps", "v1"),
        "Job" | "CronJob" => ("batch", "v1"),
        _ => ("", "v1"),
    };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, workload.kind));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let err = |source| Error::Get {
        kind: workload.kind.to_string(),
        namespace: namespace.to_string(),
        name: workload.name.clone(),
        source: Box::new(source),
    };
    let mut object = api.get(&workload.name).await.map_err(err)?;
    let m = &mut object.metadata;
    m.managed_fields = None;
    m.resource_version = None;
    m.uid = None;
    m.creation_timestamp = None;
    m.generation = None;
    m.owner_references = None;
    if let Some(a) = m.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a.remove("deployment.kubernetes.io/revision");
    }
    let mut value = serde_json::to_value(&object).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.remove("status");
    }
    Ok(serde_yaml::to_string(&value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::testserver::TestServer;
    use crate::report::{Target, WorkloadRef, Write};

    #[test]
    fn workload_args() {
        assert_eq!(parse_workload("deploy/web").unwrap().kind, "Deployment");
        assert_eq!(parse_workload("deployment.apps/web").unwrap().name, "web");
        assert_eq!(parse_workload("STS/db").unwrap().kind, "StatefulSet");
        assert_eq!(parse_workload("cj/backup").unwrap().kind, "CronJob");
        for bad in ["web", "service/web", "deploy/", "deploy/a/b"] {
            assert!(parse_workload(bad).is_err(), "{bad}");
        }
    }

    fn object(node: &str, name: &str, path: &str) -> serde_json::Value {
        let w = WorkloadRef {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: name.into(),
        };
        let report = Report {
            version: 1,
            targets: vec![Target {
                workload: Some(w.clone()),
                container: Some(crate::report::ContainerRef {
                    id: format!("{node}-{path}"),
                    runtime: "containerd".into(),
                    name: Some("app".into()),
                    kind: Some("container".into()),
                }),
                writes: vec![Write {
                    path: path.into(),
                    ops: vec![crate::report::OpName::Create],
                    count: 1,
                    results: [("ok".to_string(), 1)].into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        serde_json::to_value(crd::build(&w, node, report)).unwrap()
    }

    #[tokio::test]
    async fn merges_reports_of_all_nodes_for_one_workload() {
        let server = TestServer::start().await;
        let c = "apis/writepath.dev/v1alpha1/writepathreports";
        server.put(c, object("node-1", "web", "/var/cache/web/a"));
        server.put(c, object("node-2", "web", "/run/web/pid"));
        server.put(c, object("node-1", "api", "/tmp/x"));
        let client = server.client();
        let mut seen = Vec::new();
        let web = parse_workload("deploy/web").unwrap();
        let reports = gather(&client, Some("shop"), Some(&web), &mut |p| {
            seen.push(p.clone())
        })
        .await
        .unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(
            seen.last().unwrap(),
            &Progress {
                reports: 2,
                nodes: 2
            }
        );
        let s = crate::suggest::suggest(&reports);
        assert_eq!(
            s.containers.len(),
            1,
            "one container of one workload across nodes"
        );
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("/var/cache/web") && text.contains("/run/web"),
            "{text}"
        );
        // The whole namespace; and a workload without reports is an error naming it.
        let all = gather(&client, Some("shop"), None, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        let none = parse_workload("sts/db").unwrap();
        let e = gather(&client, Some("shop"), Some(&none), &mut |_| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("StatefulSet db"), "{e}");
        // A list failure is reported, not taken for "no reports".
        server.fail(None, "writepathreports", 500, 1);
        let e = gather(&client, None, None, &mut |_| {}).await.unwrap_err();
        assert_eq!(e.metric_label(), "list");
    }

    /// The TLS stack is configured (a crypto provider is built in): an https client is made and
    /// fails with a connection error, not a panic. Real clusters are always https.
    #[tokio::test]
    async fn https_client_builds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
        let client = kube::Client::try_from(config).expect("https client");
        let e = gather(&client, Some("shop"), None, &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(e.metric_label(), "list", "{e}");
    }

    #[tokio::test]
    async fn live_workload_as_manifest() {
        let server = TestServer::start().await;
        server.put(
            "apis/apps/v1/deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop",
                                "managedFields": [{"manager": "kubectl"}]},
                   "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
                   "status": {"replicas": 2}}),
        );
        let text = fetch_manifest(
            &server.client(),
            "shop",
            &parse_workload("deploy/web").unwrap(),
        )
        .await
        .unwrap();
        assert!(
            text.contains("kind: Deployment") && text.contains("image: nginx"),
            "{text}"
        );
        for gone in ["status:", "managedFields", "resourceVersion", "uid:"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
    }
}
