//! The agent's publisher: keeps one `WritePathReport` per workload and node up to date in the
//! API. Objects whose content changed are queued; [`Publisher::flush`] writes them with
//! server-side apply (one request, field manager `writepath-agent`, forced: the agent owns its
//! reports), and keeps failed ones queued with exponential backoff
//! and jitter (the latest content wins, nothing is dropped while the API is away). Every
//! request has a deadline ([`REQUEST_TIMEOUT`]): a stalled API server is a failure like any
//! other. An object whose namespace is gone is set aside for [`GONE_RETRY`] (its workload went
//! with it; the report is not retried every interval).
//!
//! [`spawn`] runs a publisher on a task of its own, fed the latest objects through a channel:
//! the agent's recording loop never waits for the API.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::Api;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::crd::WritePathReport;

/// First retry delay after a failure.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Deadline of one publication (its reads and writes together).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an object whose namespace was gone is set aside before one more try.
pub const GONE_RETRY: Duration = Duration::from_secs(600);
/// How often the publisher task looks for due retries while objects are queued.
const RETRY_POLL: Duration = Duration::from_secs(1);
/// Field manager name in the objects' managedFields.
pub const FIELD_MANAGER: &str = "writepath-agent";

/// Errors publishing one object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused or failed the request.
    #[error("failed to publish {namespace}/{name}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Object name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer in time.
    #[error("failed to publish {namespace}/{name}: no answer within {after:?}")]
    Timeout {
        /// Namespace.
        namespace: String,
        /// Object name.
        name: String,
        /// The deadline.
        after: Duration,
    },
}

/// Every label [`Error::metric_label`] gives, and `namespace_gone` (an object set aside): the
/// publish-errors metric's `reason` values.
pub const METRIC_LABELS: &[&str] = &[
    "server",
    "forbidden",
    "rejected",
    "transport",
    "timeout",
    "namespace_gone",
];

impl Error {
    /// A short label for the publish-errors metric (one of [`METRIC_LABELS`]).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api {
                source: kube::Error::Api(e),
                ..
            } if e.code >= 500 => "server",
            Error::Api {
                source: kube::Error::Api(e),
                ..
            } if e.code == 403 || e.code == 401 => "forbidden",
            Error::Api {
                source: kube::Error::Api(_),
                ..
            } => "rejected",
            Error::Api { .. } => "transport",
            Error::Timeout { .. } => "timeout",
        }
    }
}

impl Error {
    /// Whether the object's namespace does not exist (deleted with its workload).
    fn namespace_gone(&self) -> bool {
        matches!(self, Error::Api { source: kube::Error::Api(e), namespace, .. }
            if e.code == 404 && e.message.contains(&format!("namespaces \"{namespace}\" not found")))
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

struct Pending {
    object: WritePathReport,
    attempts: u32,
    next_try: Instant,
}

/// Queue and state of published objects.
pub struct Publisher {
    client: kube::Client,
    pending: BTreeMap<(String, String), Pending>,
    /// The spec last published per object (no republish when nothing changed).
    published: BTreeMap<(String, String), serde_json::Value>,
    /// Objects whose namespace was gone, and when: set aside for [`GONE_RETRY`].
    gone: BTreeMap<(String, String), Instant>,
    /// Deadline of one publication.
    timeout: Duration,
}

/// What one flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Objects written.
    pub published: usize,
    /// Failures, by metric label.
    pub errors: Vec<&'static str>,
}

impl Publisher {
    /// A publisher using `client`.
    pub fn new(client: kube::Client) -> Publisher {
        Publisher {
            client,
            pending: BTreeMap::new(),
            published: BTreeMap::new(),
            gone: BTreeMap::new(),
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// Sets the deadline of one publication (default [`REQUEST_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Publisher {
        self.timeout = timeout;
        self
    }

    /// Queues `object` when its content differs from what was last published (the report's
    /// `finished_at` alone is not a change). A queued older version is replaced.
    pub fn offer(&mut self, object: WritePathReport) {
        let key = key(&object);
        let content = comparable(&object);
        let set_aside = self
            .gone
            .get(&key)
            .is_some_and(|at| at.elapsed() < GONE_RETRY);
        if self.published.get(&key) == Some(&content) || set_aside {
            self.pending.remove(&key);
            return;
        }
        match self.pending.get_mut(&key) {
            Some(p) => p.object = object,
            None => {
                self.pending.insert(
                    key,
                    Pending {
                        object,
                        attempts: 0,
                        next_try: Instant::now(),
                    },
                );
            }
        }
    }

    /// Objects waiting to be published.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Publishes every queued object whose retry time has come.
    pub async fn flush(&mut self) -> Flushed {
        let mut done = Flushed::default();
        let now = Instant::now();
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_try <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            let result =
                match tokio::time::timeout(self.timeout, put(&self.client, &p.object)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::Timeout {
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        after: self.timeout,
                    }),
                };
            match result {
                Ok(()) => {
                    let content = comparable(&p.object);
                    self.pending.remove(&key);
                    self.gone.remove(&key);
                    self.published.insert(key, content);
                    done.published += 1;
                }
                Err(e) if e.namespace_gone() => {
                    tracing::info!(namespace = %key.0, name = %key.1, retry_in = ?GONE_RETRY, "namespace gone; report set aside");
                    self.pending.remove(&key);
                    self.gone.insert(key, Instant::now());
                    done.errors.push("namespace_gone");
                }
                Err(e) => {
                    p.attempts += 1;
                    let delay = backoff(p.attempts);
                    p.next_try = Instant::now() + delay;
                    tracing::warn!(error = %e, cause = %error_chain(&e), retry_in = ?delay, "publish failed");
                    done.errors.push(e.metric_label());
                }
            }
        }
        done
    }
}

/// The delay before attempt `attempts + 1`: doubling from [`BACKOFF_START`] up to
/// [`BACKOFF_MAX`], with ±25% jitter so that a fleet of agents does not retry in step.
fn backoff(attempts: u32) -> Duration {
    let base = BACKOFF_START
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
        .min(BACKOFF_MAX);
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// A [`Publisher`] on a task of its own: [`PublishQueue::offer`] hands it the latest objects
/// and returns at once.
pub struct PublishQueue {
    batch: watch::Sender<Vec<WritePathReport>>,
    stop: oneshot::Sender<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts `publisher` on a task; `on_flush` is told what each round did and how many objects
/// are still queued.
pub fn spawn(
    mut publisher: Publisher,
    on_flush: impl Fn(&Flushed, usize) + Send + 'static,
) -> PublishQueue {
    let (batch, mut batch_rx) = watch::channel(Vec::<WritePathReport>::new());
    let (stop, mut stop_rx) = oneshot::channel::<oneshot::Sender<()>>();
    let task = tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                changed = batch_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    None
                }
                _ = tokio::time::sleep(RETRY_POLL), if publisher.pending() > 0 => None,
                reply = &mut stop_rx => reply.ok(),
            };
            for object in batch_rx.borrow_and_update().iter() {
                publisher.offer(object.clone());
            }
            let f = publisher.flush().await;
            on_flush(&f, publisher.pending());
            if let Some(reply) = stopping {
                let _ = reply.send(());
                return;
            }
        }
    });
    PublishQueue { batch, stop, task }
}

impl PublishQueue {
    /// Replaces what is to be published with `objects` (one per workload); never waits.
    pub fn offer(&self, objects: Vec<WritePathReport>) {
        self.batch.send_replace(objects);
    }

    /// A last round with what was offered, waiting at most `within`; then the task ends.
    pub async fn finish(self, within: Duration) {
        let (reply, done) = oneshot::channel();
        if self.stop.send(reply).is_ok() {
            let _ = tokio::time::timeout(within, done).await;
        }
        self.task.abort();
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = String::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn key(o: &WritePathReport) -> (String, String) {
    (
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

fn comparable(o: &WritePathReport) -> serde_json::Value {
    let mut v = serde_json::to_value(&o.spec).unwrap_or_default();
    if let Some(r) = v.pointer_mut("/report/recording") {
        r["finished_at"] = serde_json::Value::Null;
    }
    v
}

/// Writes the object with server-side apply: one request, whether the object exists or not;
/// forced, since the agent owns its reports (a field another manager set is taken over).
pub async fn put(client: &kube::Client, object: &WritePathReport) -> Result<()> {
    let (namespace, name) = key(object);
    let api: Api<WritePathReport> = Api::namespaced(client.clone(), &namespace);
    let mut o = object.clone();
    o.metadata.resource_version = None;
    o.metadata.managed_fields = None;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&o),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Api {
        namespace,
        name,
        source,
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::cluster::crd;
    use crate::cluster::testserver::TestServer;
    use crate::report::{Report, Target, WorkloadRef, Write};

    const COLLECTION: &str = "apis/writepath.dev/v1alpha1/writepathreports";

    fn object(paths: &[&str]) -> WritePathReport {
        let w = WorkloadRef {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        };
        let report = Report {
            version: 1,
            targets: vec![Target {
                workload: Some(w.clone()),
                writes: paths
                    .iter()
                    .map(|p| Write {
                        path: (*p).into(),
                        count: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        crd::build(&w, "node-1", report)
    }

    fn stored_paths(server: &TestServer) -> Vec<String> {
        let v = server
            .get(COLLECTION, "shop", "deployment-web-node-1")
            .expect("published");
        v["spec"]["report"]["targets"][0]["writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["path"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn creates_then_replaces_and_skips_unchanged() {
        let server = TestServer::start().await;
        let mut p = Publisher::new(server.client());
        p.offer(object(&["/tmp/a"]));
        assert_eq!(
            p.flush().await,
            Flushed {
                published: 1,
                errors: vec![]
            }
        );
        assert_eq!(stored_paths(&server), ["/tmp/a"]);
        let v = server
            .get(COLLECTION, "shop", "deployment-web-node-1")
            .unwrap();
        assert_eq!(v["metadata"]["labels"][crd::LABEL_KIND], "Deployment");
        p.offer(object(&["/tmp/a"]));
        assert_eq!(p.pending(), 0, "unchanged content is not republished");
        p.offer(object(&["/tmp/a", "/tmp/b"]));
        assert_eq!(p.flush().await.published, 1);
        assert_eq!(stored_paths(&server), ["/tmp/a", "/tmp/b"]);
        let methods: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|r| r.contains("writepathreports"))
            .map(|r| r.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(
            methods,
            ["PATCH", "PATCH"],
            "one server-side apply per write"
        );
        assert!(
            server
                .requests()
                .iter()
                .all(|r| !r.contains("writepathreports")
                    || r.contains("fieldManager=writepath-agent")),
            "{:?}",
            server.requests()
        );
    }

    #[tokio::test]
    async fn apply_takes_over_what_someone_else_wrote() {
        let server = TestServer::start().await;
        let client = server.client();
        put(&client, &object(&["/tmp/a"])).await.unwrap();
        // Someone else changed the report in between: the agent's next apply wins, in one
        // request, with no read and no conflict.
        let mut other = server
            .get(COLLECTION, "shop", "deployment-web-node-1")
            .unwrap();
        other["spec"]["report"]["targets"][0]["writes"] =
            serde_json::json!([{"path": "/x", "count": 1}]);
        server.put(COLLECTION, other);
        let before = server.requests().len();
        put(&client, &object(&["/tmp/b"])).await.unwrap();
        assert_eq!(stored_paths(&server), ["/tmp/b"]);
        assert_eq!(server.requests().len() - before, 1);
    }

    #[tokio::test]
    async fn outages_are_retried_with_backoff_and_lose_nothing() {
        let server = TestServer::start().await;
        let mut p = Publisher::new(server.client());
        server.fail(None, "writepathreports", 500, 1);
        p.offer(object(&["/tmp/a"]));
        let f = p.flush().await;
        assert_eq!(
            (f.published, f.errors.as_slice()),
            (0, ["server"].as_slice())
        );
        assert_eq!(p.pending(), 1);
        // Not yet due: backoff.
        assert_eq!(p.flush().await, Flushed::default());
        // Newer content while the API is away replaces the queued one.
        p.offer(object(&["/tmp/a", "/tmp/b"]));
        // The first retry comes within BACKOFF_START ± 25% (jitter).
        tokio::time::sleep(BACKOFF_START.mul_f64(1.25) + Duration::from_millis(100)).await;
        assert_eq!(p.flush().await.published, 1);
        assert_eq!(stored_paths(&server), ["/tmp/a", "/tmp/b"]);
        assert_eq!(p.pending(), 0);
    }

    #[tokio::test]
    async fn a_stalled_server_is_a_timeout_and_nothing_is_lost() {
        let server = TestServer::start().await;
        let mut p = Publisher::new(server.client()).with_timeout(Duration::from_millis(300));
        server.stall("writepathreports", Duration::from_secs(2));
        p.offer(object(&["/tmp/a"]));
        let started = Instant::now();
        let f = p.flush().await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the deadline holds"
        );
        assert_eq!(
            (f.published, f.errors.as_slice()),
            (0, ["timeout"].as_slice())
        );
        assert_eq!(p.pending(), 1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(p.flush().await.published, 1);
        assert_eq!(stored_paths(&server), ["/tmp/a"]);
    }

    #[tokio::test]
    async fn the_queue_never_waits_for_the_server() {
        let server = TestServer::start().await;
        server.stall("writepathreports", Duration::from_secs(2));
        let rounds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = rounds.clone();
        let queue = spawn(
            Publisher::new(server.client()).with_timeout(Duration::from_millis(500)),
            move |_, _| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        );
        let started = Instant::now();
        for i in 0..100 {
            queue.offer(vec![object(&[&format!("/tmp/{i}")])]);
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "offer never waits"
        );
        // Once the server answers, the latest content is published.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server
            .get(COLLECTION, "shop", "deployment-web-node-1")
            .is_none()
        {
            assert!(Instant::now() < deadline, "never published");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        queue.finish(Duration::from_secs(2)).await;
        assert_eq!(stored_paths(&server), ["/tmp/99"]);
        assert!(rounds.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for attempt in 1..12 {
            let base = BACKOFF_START
                .saturating_mul(2u32.pow(attempt - 1))
                .min(BACKOFF_MAX);
            let d = backoff(attempt);
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..20).map(|_| backoff(3).as_millis()).collect();
        assert!(spread.len() > 1, "jittered: {spread:?}");
    }
}
