//! The agent's counters and gauges, served as Prometheus text on `/metrics`, with `/healthz`
//! (the recording loop is alive) and `/readyz` (probes attached and the pod list loaded).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::report::Counters;

/// Longest silence of the recording loop before `/healthz` fails.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Errors of the metrics server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("failed to listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        "metrics_bind"
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shared metrics state.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    watched_containers: AtomicU64,
    unattributed: AtomicU64,
    pending_reports: AtomicU64,
    published: AtomicU64,
    publish_errors: Mutex<BTreeMap<&'static str, u64>>,
    heartbeat: Mutex<Option<Instant>>,
    attached: AtomicBool,
    /// The capture design in use and the kernel release, once attached.
    capture: Mutex<Option<(String, String)>>,
    /// Why the capture programs could not be loaded, when they could not.
    capture_error: Mutex<Option<String>>,
    pods_ready: AtomicBool,
}

impl Metrics {
    /// Records the kernel and userspace counters.
    pub fn set_counters(&self, c: &Counters) {
        if let Ok(mut m) = self.counters.lock() {
            *m = c.clone();
        }
    }

    /// Containers seen in the watched subtree this run; targets not attributed to a pod yet.
    pub fn set_targets(&self, containers: u64, unattributed: u64) {
        self.watched_containers.store(containers, Ordering::Relaxed);
        self.unattributed.store(unattributed, Ordering::Relaxed);
    }

    /// Reports waiting to be published.
    pub fn set_pending(&self, n: u64) {
        self.pending_reports.store(n, Ordering::Relaxed);
    }

    /// Counts a publish round.
    pub fn add_published(&self, n: u64, errors: &[&'static str]) {
        self.published.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut m) = self.publish_errors.lock() {
            for e in errors {
                *m.entry(e).or_default() += 1;
            }
        }
    }

    /// The recording loop is alive.
    pub fn beat(&self) {
        if let Ok(mut h) = self.heartbeat.lock() {
            *h = Some(Instant::now());
        }
    }

    /// Probes attached.
    /// The programs of `design` are attached on Linux `kernel`.
    pub fn set_attached(&self, design: &str, kernel: &str) {
        if let Ok(mut c) = self.capture.lock() {
            *c = Some((design.to_string(), kernel.to_string()));
        }
        self.attached.store(true, Ordering::Relaxed);
    }

    /// No capture design loads: `/readyz` says why (one line).
    pub fn set_capture_failed(&self, reason: &str) {
        if let Ok(mut e) = self.capture_error.lock() {
            *e = Some(reason.to_string());
        }
    }

    /// What `/readyz` answers: ready, or why not (one line).
    pub fn readiness(&self) -> std::result::Result<String, String> {
        if let Some(e) = self.capture_error.lock().ok().and_then(|e| e.clone()) {
            return Err(format!("not ready: {e}"));
        }
        let capture = self.capture.lock().ok().and_then(|c| c.clone());
        match capture {
            None => Err("not ready: capture programs not attached yet".into()),
            Some(_) if !self.pods_ready.load(Ordering::Relaxed) => {
                Err("not ready: pod list not loaded yet".into())
            }
            Some((design, kernel)) => Ok(format!("ok: {design} design on Linux {kernel}")),
        }
    }

    /// Pod list loaded.
    pub fn set_pods_ready(&self, ready: bool) {
        self.pods_ready.store(ready, Ordering::Relaxed);
    }

    /// Whether the loop beat within [`STALL_LIMIT`].
    pub fn healthy(&self) -> bool {
        self.heartbeat
            .lock()
            .ok()
            .and_then(|h| *h)
            .is_some_and(|h| h.elapsed() < STALL_LIMIT)
    }

    /// Whether the agent records and attributes.
    pub fn ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in samples {
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let c = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        let one = |v: u64| vec![(String::new(), v)];
        metric(
            "writepath_events_seen_total",
            "counter",
            "Write syscalls seen in the kernel, all cgroups.",
            one(c.seen),
        );
        metric(
            "writepath_events_emitted_total",
            "counter",
            "Records sent to userspace.",
            one(c.emitted),
        );
        metric(
            "writepath_probe_errors_total",
            "counter",
            "Watched calls a program could not finish (a kernel read failed): lost, counted.",
            one(c.probe_errors),
        );
        let capture = self.capture.lock().ok().and_then(|c| c.clone());
        metric(
            "writepath_capture_info",
            "gauge",
            "The capture design in use on this node's kernel (docs/kernels.md).",
            capture
                .map(|(design, kernel)| {
                    vec![(format!("{{design=\"{design}\",kernel=\"{kernel}\"}}"), 1)]
                })
                .unwrap_or_default(),
        );
        metric(
            "writepath_events_dropped_total",
            "counter",
            "Records lost because the ring buffer was full.",
            one(c.dropped),
        );
        metric(
            "writepath_events_deduplicated_total",
            "counter",
            "Calls folded into an earlier record by the in-kernel dedup.",
            one(c.deduplicated),
        );
        metric(
            "writepath_events_lost_total",
            "counter",
            "Calls lost because the in-flight table was full.",
            one(c.pending_full),
        );
        metric(
            "writepath_decode_errors_total",
            "counter",
            "Records userspace could not decode.",
            one(c.decode_errors),
        );
        metric(
            "writepath_watched_containers",
            "gauge",
            "Containers observed in the watched cgroup subtree this run.",
            one(self.watched_containers.load(Ordering::Relaxed)),
        );
        metric(
            "writepath_unattributed_targets",
            "gauge",
            "Observed cgroups not (yet) attributed to a pod.",
            one(self.unattributed.load(Ordering::Relaxed)),
        );
        metric(
            "writepath_pending_reports",
            "gauge",
            "WritePathReports waiting to be published.",
            one(self.pending_reports.load(Ordering::Relaxed)),
        );
        metric(
            "writepath_published_total",
            "counter",
            "WritePathReports written to the API.",
            one(self.published.load(Ordering::Relaxed)),
        );
        let errors = self
            .publish_errors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let mut samples: Vec<(String, u64)> = crate::cluster::publish::METRIC_LABELS
            .iter()
            .map(|r| {
                (
                    format!("{{reason=\"{r}\"}}"),
                    errors.get(r).copied().unwrap_or(0),
                )
            })
            .collect();
        samples.sort();
        metric(
            "writepath_publish_errors_total",
            "counter",
            "Failed WritePathReport writes, by reason.",
            samples,
        );
        out
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address` until dropped.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
) -> Result<impl std::future::Future<Output = ()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind { address, source })?;
    Ok(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, Infallible>(respond(req.uri().path(), &metrics)) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn respond(path: &str, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body, ctype) = match path {
        "/metrics" => (
            StatusCode::OK,
            metrics.render(),
            "text/plain; version=0.0.4",
        ),
        "/healthz" if metrics.healthy() => (StatusCode::OK, "ok\n".into(), "text/plain"),
        "/healthz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "recording loop stalled\n".into(),
            "text/plain",
        ),
        "/readyz" => match metrics.readiness() {
            Ok(why) => (StatusCode::OK, format!("{why}\n"), "text/plain"),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{why}\n"),
                "text/plain",
            ),
        },
        _ => (StatusCode::NOT_FOUND, "not found\n".into(), "text/plain"),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let m = Metrics::default();
        m.set_counters(&Counters {
            emitted: 7,
            dropped: 2,
            deduplicated: 40,
            ..Default::default()
        });
        m.set_targets(3, 1);
        m.add_published(2, &["server", "server", "timeout"]);
        let t = m.render();
        for line in [
            "writepath_events_emitted_total 7",
            "writepath_events_dropped_total 2",
            "writepath_events_deduplicated_total 40",
            "writepath_watched_containers 3",
            "writepath_published_total 2",
            "writepath_publish_errors_total{reason=\"server\"} 2",
            "writepath_publish_errors_total{reason=\"timeout\"} 1",
            "# TYPE writepath_events_dropped_total counter",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
        }
    }

    #[tokio::test]
    async fn health_endpoints() {
        let m = Arc::new(Metrics::default());
        let server = serve("127.0.0.1:0".parse().unwrap(), m.clone()).await;
        // Port 0 cannot be asked back from the future; check the handler directly instead.
        drop(server);
        assert_eq!(
            respond("/healthz", &m).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.beat();
        assert_eq!(respond("/healthz", &m).status(), StatusCode::OK);
        assert_eq!(
            respond("/readyz", &m).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.set_attached("fexit", "6.1.0");
        m.set_pods_ready(true);
        assert_eq!(respond("/readyz", &m).status(), StatusCode::OK);
        assert_eq!(respond("/metrics", &m).status(), StatusCode::OK);
        assert_eq!(respond("/nope", &m).status(), StatusCode::NOT_FOUND);
    }
}
