//! An in-process Kubernetes API server for tests: no kube-apiserver can run on our machines,
//! so the kube-facing code is tested through the real kube client against this HTTP server on
//! 127.0.0.1. It speaks the real paths (`/api/v1/…`, `/apis/GROUP/VERSION/…`, namespaced and
//! cluster-wide), lists with field and label selectors, watches from a `resourceVersion` with
//! bookmarks (and `410 Gone` after [`TestServer::compact`]), creates, replaces (409 on a stale
//! `resourceVersion`, 409 on creating an existing name), merge-patches and deletes any
//! resource, and injects failures ([`TestServer::fail`]) and dropped watches
//! ([`TestServer::drop_watches`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

/// A scripted failure: the next `times` requests matching `method` and `path_contains` get
/// `status`.
#[derive(Clone, Debug)]
struct Fault {
    method: Option<Method>,
    path_contains: String,
    status: u16,
    times: usize,
    /// With `status` 0: a stall; requests arriving before this instant are answered (normally)
    /// only then.
    until: Option<tokio::time::Instant>,
}

/// One stored change, for watches.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Store {
    rv: u64,
    /// (collection, namespace, name) → object. A collection is `api/v1/pods` or
    /// `apis/GROUP/VERSION/RESOURCE`.
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<Change>,
    /// Watches from before this resourceVersion get 410 Gone.
    compacted: u64,
    faults: Vec<Fault>,
    requests: Vec<String>,
}

/// The server. Dropping it stops accepting connections.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    store: Arc<Mutex<Store>>,
    changed: watch::Sender<u64>,
    drop_gen: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

impl TestServer {
    /// Starts a server on 127.0.0.1 (an ephemeral port) on the current tokio runtime.
    pub async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let store = Arc::new(Mutex::new(Store::default()));
        let (changed, _) = watch::channel(0);
        let (drop_gen, _) = watch::channel(0);
        let ctx = Ctx {
            store: store.clone(),
            changed: changed.clone(),
            drop_gen: drop_gen.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(ctx.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer {
            url,
            store,
            changed,
            drop_gen,
            task,
        }
    }

    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    /// A kubeconfig file content pointing at this server (for the binary).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\nusers:\n- name: test\n  user: {{}}\n",
            self.url
        )
    }

    /// Creates or replaces `object` in `collection` (e.g. `api/v1/pods`), as a controller
    /// would; watchers see ADDED or MODIFIED.
    pub fn put(&self, collection: &str, object: Value) -> Value {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut s = lock(&self.store);
        let stored = s.upsert(collection, &ns, object);
        drop(s);
        self.changed.send_modify(|g| *g += 1);
        stored
    }

    /// Deletes an object; watchers see DELETED.
    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        let mut s = lock(&self.store);
        s.remove(collection, namespace, name);
        drop(s);
        self.changed.send_modify(|g| *g += 1);
    }

    /// The stored object, if any.
    pub fn get(&self, collection: &str, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.store)
            .objects
            .get(&(collection.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Every stored object of a collection.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        lock(&self.store)
            .objects
            .iter()
            .filter(|((c, _, _), _)| c == collection)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The next `times` requests with `method` (any when `None`) whose path and query contain
    /// `path_contains` fail with `status`.
    pub fn fail(&self, method: Option<Method>, path_contains: &str, status: u16, times: usize) {
        lock(&self.store).faults.push(Fault {
            method,
            path_contains: path_contains.into(),
            status,
            times,
            until: None,
        });
    }

    /// For the next `duration`, requests whose path and query contain `path_contains` are not
    /// answered (a stalled API server: the connection is accepted, the answer does not come);
    /// they are answered normally once it has passed.
    pub fn stall(&self, path_contains: &str, duration: Duration) {
        lock(&self.store).faults.push(Fault {
            method: None,
            path_contains: path_contains.into(),
            status: 0,
            times: usize::MAX,
            until: Some(tokio::time::Instant::now() + duration),
        });
    }

    /// Ends every open watch (as an apiserver restart or a load balancer timeout does).
    pub fn drop_watches(&self) {
        self.drop_gen.send_modify(|g| *g += 1);
    }

    /// Forgets the change history: watches from an older resourceVersion get 410 Gone.
    pub fn compact(&self) {
        let mut s = lock(&self.store);
        s.compacted = s.rv;
        s.history.clear();
    }

    /// Requests served so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.store).requests.clone()
    }
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    fn upsert(&mut self, collection: &str, ns: &str, mut object: Value) -> Value {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        self.rv += 1;
        let key = (collection.to_string(), ns.to_string(), name.clone());
        let existed = self.objects.contains_key(&key);
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        if meta["uid"].is_null() {
            meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", self.rv));
        }
        if meta["creationTimestamp"].is_null() {
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        self.objects.insert(key, object.clone());
        self.history.push(Change {
            rv: self.rv,
            collection: collection.into(),
            namespace: ns.into(),
            kind: if existed { "MODIFIED" } else { "ADDED" },
            object: object.clone(),
        });
        object
    }

    fn remove(&mut self, collection: &str, ns: &str, name: &str) -> Option<Value> {
        let mut object = self
            .objects
            .remove(&(collection.into(), ns.into(), name.into()))?;
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.history.push(Change {
            rv: self.rv,
            collection: collection.into(),
            namespace: ns.into(),
            kind: "DELETED",
            object: object.clone(),
        });
        Some(object)
    }
}

/// A parsed request path.
struct Target {
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix_len, rest) = match *parts.first()? {
        "api" => (2, &parts[2.min(parts.len())..]),
        "apis" => (3, &parts[3.min(parts.len())..]),
        _ => return None,
    };
    let prefix = parts.get(..prefix_len)?.join("/");
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (resource, name) = match rest {
        [resource] => (*resource, None),
        [resource, name] => (*resource, Some(name.to_string())),
        _ => return None,
    };
    Some(Target {
        collection: format!("{prefix}/{resource}"),
        namespace,
        name,
    })
}

fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `object` matches `fieldSelector` and `labelSelector` (equality terms only).
fn matches(object: &Value, q: &BTreeMap<String, String>) -> bool {
    let terms = |s: Option<&String>| -> Vec<(String, String)> {
        s.map(|s| {
            s.split(',')
                .filter_map(|t| t.split_once('='))
                .map(|(k, v)| {
                    (
                        k.trim_end_matches('=').to_string(),
                        v.trim_start_matches('=').to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let fields_ok = terms(q.get("fieldSelector")).iter().all(|(k, v)| {
        let mut cur = object;
        for part in k.split('.') {
            cur = &cur[part];
        }
        cur.as_str() == Some(v.as_str())
    });
    let labels_ok = terms(q.get("labelSelector"))
        .iter()
        .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v.as_str()));
    fields_ok && labels_ok
}

#[derive(Clone)]
struct Ctx {
    store: Arc<Mutex<Store>>,
    changed: watch::Sender<u64>,
    drop_gen: watch::Sender<u64>,
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .unwrap_or_default()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

impl Ctx {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let full = format!(
            "{method} {path}{}",
            req.uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        let stalled_until = {
            let mut s = lock(&self.store);
            s.requests.push(full.clone());
            let now = tokio::time::Instant::now();
            match s.faults.iter_mut().find(|f| {
                f.times > 0
                    && f.until.is_none_or(|u| u > now)
                    && f.method.as_ref().is_none_or(|m| *m == method)
                    && full.contains(&f.path_contains)
            }) {
                Some(f) => {
                    f.times -= 1;
                    if f.status != 0 {
                        let code = f.status;
                        return status(code, "InternalError", "injected failure");
                    }
                    f.until
                }
                None => None,
            }
        };
        if let Some(until) = stalled_until {
            tokio::time::sleep_until(until).await;
        }
        let q = query(&req);
        let Some(target) = parse_path(&path) else {
            return status(404, "NotFound", "no such path");
        };
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return status(400, "BadRequest", "unreadable body"),
        };
        let ns = target.namespace.clone().unwrap_or_default();
        match (&method, &target.name) {
            (&Method::GET, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                self.watch(target, q)
            }
            (&Method::GET, None) => {
                let s = lock(&self.store);
                let items: Vec<Value> = s
                    .objects
                    .iter()
                    .filter(|((c, n, _), _)| {
                        *c == target.collection && (target.namespace.is_none() || *n == ns)
                    })
                    .map(|(_, v)| v.clone())
                    .filter(|v| matches(v, &q))
                    .collect();
                json_response(
                    StatusCode::OK,
                    &json!({"apiVersion": "v1", "kind": "List",
                            "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
                )
            }
            (&Method::GET, Some(name)) => {
                match lock(&self.store)
                    .objects
                    .get(&(target.collection.clone(), ns, name.clone()))
                {
                    Some(v) => json_response(StatusCode::OK, v),
                    None => status(404, "NotFound", &format!("{name} not found")),
                }
            }
            (&Method::POST, None) => {
                let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "not json");
                };
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let mut s = lock(&self.store);
                if s.objects
                    .contains_key(&(target.collection.clone(), ns.clone(), name.clone()))
                {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                let stored = s.upsert(&target.collection, &ns, object);
                drop(s);
                self.changed.send_modify(|g| *g += 1);
                json_response(StatusCode::CREATED, &stored)
            }
            (&Method::PUT, Some(name)) => {
                let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "not json");
                };
                let mut s = lock(&self.store);
                let key = (target.collection.clone(), ns.clone(), name.clone());
                let Some(current) = s.objects.get(&key) else {
                    return status(404, "NotFound", &format!("{name} not found"));
                };
                let given = object["metadata"]["resourceVersion"].as_str();
                if given.is_some() && given != current["metadata"]["resourceVersion"].as_str() {
                    return status(409, "Conflict", "the object has been modified");
                }
                let stored = s.upsert(&target.collection, &ns, object);
                drop(s);
                self.changed.send_modify(|g| *g += 1);
                json_response(StatusCode::OK, &stored)
            }
            (&Method::PATCH, Some(name)) if content_type.starts_with("application/apply-patch") => {
                // Server-side apply, as a single field manager that owns every field sees it:
                // the object is created, or its labels and spec are replaced. Like the real
                // server, a field manager is required.
                if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return status(400, "BadRequest", "fieldManager is required for apply");
                }
                let Ok(applied) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "not json");
                };
                let mut s = lock(&self.store);
                let key = (target.collection.clone(), ns.clone(), name.clone());
                let (code, object) = match s.objects.get(&key).cloned() {
                    None => (StatusCode::CREATED, applied),
                    Some(mut current) => {
                        current["metadata"]["labels"] = applied["metadata"]["labels"].clone();
                        current["spec"] = applied["spec"].clone();
                        (StatusCode::OK, current)
                    }
                };
                let stored = s.upsert(&target.collection, &ns, object);
                drop(s);
                self.changed.send_modify(|g| *g += 1);
                json_response(code, &stored)
            }
            (&Method::PATCH, Some(name)) => {
                let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "not json");
                };
                let mut s = lock(&self.store);
                let key = (target.collection.clone(), ns.clone(), name.clone());
                let Some(mut current) = s.objects.get(&key).cloned() else {
                    return status(404, "NotFound", &format!("{name} not found"));
                };
                merge_patch(&mut current, &patch);
                let stored = s.upsert(&target.collection, &ns, current);
                drop(s);
                self.changed.send_modify(|g| *g += 1);
                json_response(StatusCode::OK, &stored)
            }
            (&Method::DELETE, Some(name)) => {
                let mut s = lock(&self.store);
                let removed = s.remove(&target.collection, &ns, name);
                drop(s);
                self.changed.send_modify(|g| *g += 1);
                match removed {
                    Some(v) => json_response(StatusCode::OK, &v),
                    None => status(404, "NotFound", &format!("{name} not found")),
                }
            }
            _ => status(405, "MethodNotAllowed", "unsupported"),
        }
    }

    /// A watch: past changes after `resourceVersion`, then new ones as they come, bookmarks
    /// when asked, until `timeoutSeconds`, [`TestServer::drop_watches`] or the client leaves.
    fn watch(&self, target: Target, q: BTreeMap<String, String>) -> Response<Body> {
        let from: u64 = q
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(300));
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
        let store = self.store.clone();
        let mut changed = self.changed.subscribe();
        let mut dropped = self.drop_gen.subscribe();
        dropped.mark_unchanged();
        let kind_name = target
            .collection
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        tokio::spawn(async move {
            let line = |v: Value| Ok(Frame::data(Bytes::from(format!("{v}\n"))));
            let mut sent = from;
            let compacted = lock(&store).compacted;
            if from != 0 && from < compacted {
                let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "reason": "Expired", "code": 410,
                    "message": format!("too old resource version: {from} ({compacted})")}});
                let _ = tx.send(line(gone)).await;
                return;
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let mut bookmark_tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                let (events, rv) = {
                    let s = lock(&store);
                    let events: Vec<Value> = s
                        .history
                        .iter()
                        .filter(|c| {
                            c.rv > sent
                                && c.collection == target.collection
                                && target.namespace.as_ref().is_none_or(|n| *n == c.namespace)
                                && matches(&c.object, &q)
                        })
                        .map(|c| json!({"type": c.kind, "object": c.object}))
                        .collect();
                    (events, s.rv)
                };
                for e in events {
                    if tx.send(line(e)).await.is_err() {
                        return;
                    }
                }
                sent = sent.max(rv);
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = dropped.changed() => return,
                    _ = tokio::time::sleep_until(deadline) => return,
                    _ = bookmark_tick.tick(), if bookmarks => {
                        let b = json!({"type": "BOOKMARK", "object": {"kind": kind_name, "apiVersion": "v1",
                            "metadata": {"resourceVersion": sent.to_string()}}});
                        if tx.send(line(b)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(http_body_util::BodyExt::boxed(StreamBody::new(stream)))
            .unwrap_or_default()
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}
