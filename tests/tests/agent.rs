//! The DaemonSet agent end to end on this machine: the `writepath agent` binary watches a
//! kubelet-style pod cgroup, real runc containers run in it with `cgroupsPath`
//! `…/kubepods/burstable/pod<uid>/<64-hex id>`, pod and owner metadata come from the
//! in-process API server (no kube-apiserver can run here), and the published WritePathReport
//! for the Deployment holds the container's writes. Then the agent is killed (SIGKILL) and
//! restarted: nothing it observed before is lost, and a container already running when it
//! starts is marked partial.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use writepath::cluster::testserver::TestServer;
use writepath_tests::container::{Bundle, Tmpfs};
use writepath_tests::*;

const UID: &str = "3f2a9c1e-7b4d-4e8a-9c6f-1a2b3c4d5e6f";
const NODE: &str = "test-node";
const REPORTS: &str = "apis/writepath.dev/v1alpha1/writepathreports";

fn container_id(n: u8) -> String {
    format!("{n:x}").repeat(64)
}

fn pod(ids: &[(&str, String)]) -> Value {
    pod_with_init(ids, &[])
}

fn pod_with_init(ids: &[(&str, String)], init: &[(&str, String)]) -> Value {
    let statuses = |list: &[(&str, String)]| -> Vec<Value> {
        list.iter()
            .map(|(name, id)| {
                json!({"name": name, "containerID": format!("containerd://{id}"), "image": "busybox",
                       "imageID": "", "ready": true, "restartCount": 0})
            })
            .collect()
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d4b9c-abcde", "namespace": "shop", "uid": UID,
            "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                "uid": "rs-uid", "controller": true}]},
        "spec": {"nodeName": NODE, "containers": ids.iter().map(|(name, _)| json!({
            "name": name, "image": "busybox",
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]})).collect::<Vec<_>>(),
            "initContainers": init.iter().map(|(name, _)| json!({"name": name, "image": "busybox"}))
                .collect::<Vec<_>>()},
        "status": {"containerStatuses": statuses(ids), "initContainerStatuses": statuses(init)}
    })
}

struct Agent {
    child: Child,
    metrics: String,
}

impl Agent {
    fn start(kubeconfig: &Path, state: &Path, kubepods: &Path) -> Agent {
        Agent::start_with(kubeconfig, state, kubepods, "1s")
    }

    fn start_with(kubeconfig: &Path, state: &Path, kubepods: &Path, interval: &str) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = format!("127.0.0.1:{port}");
        let child = Command::new(writepath_bin())
            .args(["agent", "--node-name", NODE, "--publish-interval", interval])
            .arg("--state-dir")
            .arg(state)
            .arg("--kubepods-cgroup")
            .arg(kubepods)
            .args(["--metrics-address", &metrics])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let mut agent = Agent { child, metrics };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&agent.metrics, "/readyz").0 != 200 {
            if let Ok(Some(status)) = agent.child.try_wait() {
                let mut err = String::new();
                agent
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("agent exited ({status}):\n{err}");
            }
            assert!(Instant::now() < deadline, "agent not ready in 30s");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Keep draining its logs so it never blocks on a full pipe.
        let stderr = agent.child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("agent: {line}");
            }
        });
        agent
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare HTTP/1.0 GET on the loopback metrics port: (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Waits for the Deployment's report to satisfy `check`; returns it.
fn published(server: &TestServer, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = server.get(REPORTS, "shop", &format!("deployment-web-{NODE}")) {
            if check(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; have {:#}",
            server
                .get(REPORTS, "shop", &format!("deployment-web-{NODE}"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn targets(v: &Value) -> Vec<Value> {
    v["spec"]["report"]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn target_of<'a>(targets: &'a [Value], id: &str) -> Option<&'a Value> {
    targets.iter().find(|t| t["container"]["id"] == id)
}

fn write_of<'a>(target: &'a Value, path: &str) -> Option<&'a Value> {
    target["writes"]
        .as_array()?
        .iter()
        .find(|w| w["path"] == path)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
}

/// What each agent test starts from: the in-process API server on a runtime of its own, a
/// kubeconfig for it, and a kubelet-style `kubepods` cgroup (`rel`: its path below the cgroup2
/// root).
struct Fixture {
    rt: tokio::runtime::Runtime,
    server: TestServer,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
    _cg: TempCgroup,
    kubepods: std::path::PathBuf,
    rel: String,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(TestServer::start());
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
        let cg = TempCgroup::new(name);
        let kubepods = cg.dir.join("kubepods");
        std::fs::create_dir_all(&kubepods).unwrap();
        let root = writepath::capture::loader::cgroup2_root().unwrap();
        let rel = kubepods.strip_prefix(&root).unwrap().display().to_string();
        Fixture {
            rt,
            server,
            dir,
            kubeconfig,
            _cg: cg,
            kubepods,
            rel,
        }
    }
}

/// The ReplicaSet of Deployment `web` that the test pods name as their owner.
fn put_replicaset(server: &TestServer) {
    server.put(
        "apis/apps/v1/replicasets",
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-7d4b9c", "namespace": "shop",
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                   "uid": "d-uid", "controller": true}]}}),
    );
}

#[test]
fn agent_publishes_attributed_writes_and_survives_restart() {
    if !privileged("agent_publishes_attributed_writes_and_survives_restart") {
        return;
    }
    assert!(
        which("runc"),
        "runc is required (cargo xtask setup installs it)"
    );
    let f = Fixture::new("agent");
    let _guard = f.rt.enter();
    let (server, kubeconfig, kubepods, rel) = (&f.server, &f.kubeconfig, &f.kubepods, &f.rel);
    let state = f.dir.path().join("state");
    let cgroup_of = |id: &str| format!("/{rel}/burstable/pod{UID}/{id}");

    let (app, sidecar) = (container_id(1), container_id(2));
    put_replicaset(server);
    server.put(
        "api/v1/pods",
        pod(&[("app", app.clone()), ("sidecar", sidecar.clone())]),
    );

    // First run: a container of the pod writes to its root, to a tmpfs and to a pod volume.
    let agent = Agent::start(kubeconfig, &state, kubepods);
    let script = "echo started >> /var/log/app.log; \
                  mkdir -p /var/cache/app/blobs && echo b > /var/cache/app/blobs/1; \
                  echo t > /tmp/t; mkdir -p /data && echo d > /data/out; sleep 0.3";
    let bundle = Bundle::new(
        "agent-app",
        script,
        &[Tmpfs { path: "/tmp" }],
        false,
        &cgroup_of(&app),
    );
    let (status, out) = bundle.run();
    assert!(status.success(), "container failed: {out}");
    let v = published(server, "the app container's writes", |v| {
        target_of(&targets(v), &app)
            .is_some_and(|t| write_of(t, "/var/cache/app/blobs/1").is_some())
    });
    assert_eq!(v["spec"]["node"], NODE);
    assert_eq!(
        v["spec"]["workload"],
        json!({"kind": "Deployment", "name": "web"})
    );
    assert_eq!(
        v["metadata"]["labels"]["writepath.dev/workload-name"],
        "web"
    );
    let ts = targets(&v);
    let t = target_of(&ts, &app).unwrap();
    assert_eq!(t["container"]["name"], "app");
    assert_eq!(t["container"]["kind"], "container");
    assert_eq!(t["container"]["runtime"], "containerd");
    assert_eq!(t["pod"]["uid"], UID);
    assert_eq!(t["pod"]["name"], "web-7d4b9c-abcde");
    assert_eq!(t["workload"]["kind"], "Deployment");
    assert_eq!(t["partial"], false, "started after the agent");
    assert!(write_of(t, "/var/log/app.log").is_some());
    assert_eq!(write_of(t, "/tmp/t").unwrap()["mount"], "/tmp");
    assert!(
        t["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mount_point"] == "/data"
                && m["fs_type"] == writepath::attribution::pods::POD_SPEC_FS_TYPE),
        "pod spec volume mount recorded: {t:#}"
    );
    // The suggestion engine sees /data as a volume and /var/cache/app as needing one.
    let report: writepath::report::Report =
        serde_json::from_value(v["spec"]["report"].clone()).unwrap();
    let s = writepath::suggest::suggest(&[report]);
    let text = serde_json::to_string(&s).unwrap();
    assert!(text.contains("/var/cache/app"), "{text}");
    assert!(text.contains("volume:/data"), "{text}");
    let (code, metrics) = http_get(&agent.metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("writepath_watched_containers ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(metrics.contains("writepath_published_total"), "{metrics}");
    // The design in use is named by the metrics, /readyz and the published report.
    let design = metrics
        .lines()
        .find_map(|l| l.strip_prefix("writepath_capture_info{design=\""))
        .and_then(|l| l.split('"').next())
        .unwrap_or_else(|| panic!("no writepath_capture_info: {metrics}"))
        .to_string();
    let (code, ready) = http_get(&agent.metrics, "/readyz");
    assert_eq!(code, 200);
    assert!(
        ready.contains(&format!("ok: {design} design on Linux")),
        "{ready}"
    );
    assert_eq!(v["spec"]["report"]["recording"]["hook"], design.as_str());

    // Killed mid-recording; the object is removed from the API too, so what the next run
    // publishes can only come from its state directory.
    agent.kill();
    server.delete(REPORTS, "shop", &format!("deployment-web-{NODE}"));

    // A container already running when the agent comes back: partial.
    let side_script = "echo early > /var/lib/early; sleep 4; echo late > /var/lib/late; sleep 0.3";
    let side = Bundle::new("agent-side", side_script, &[], false, &cgroup_of(&sidecar));
    let runner = std::thread::spawn(move || {
        let r = side.run();
        (side, r)
    });
    let root = writepath::capture::loader::cgroup2_root().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new(&format!(
        "{}/{}",
        root.display(),
        cgroup_of(&sidecar).trim_start_matches('/')
    ))
    .exists()
    {
        assert!(Instant::now() < deadline, "sidecar cgroup never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent = Agent::start(kubeconfig, &state, kubepods);
    let v = published(server, "both runs' writes", |v| {
        let ts = targets(v);
        target_of(&ts, &app).is_some_and(|t| write_of(t, "/var/cache/app/blobs/1").is_some())
            && target_of(&ts, &sidecar).is_some_and(|t| write_of(t, "/var/lib/late").is_some())
    });
    let (_side, (status, out)) = runner.join().unwrap();
    assert!(status.success(), "sidecar failed: {out}");
    let ts = targets(&v);
    let app_t = target_of(&ts, &app).unwrap();
    for p in [
        "/var/log/app.log",
        "/var/cache/app/blobs",
        "/tmp/t",
        "/data/out",
    ] {
        assert!(
            write_of(app_t, p).is_some(),
            "{p} lost across the restart: {app_t:#}"
        );
    }
    let side_t = target_of(&ts, &sidecar).unwrap();
    assert_eq!(side_t["container"]["name"], "sidecar");
    assert_eq!(side_t["partial"], true, "running before the agent started");
    assert!(
        write_of(side_t, "/var/lib/early").is_none(),
        "written before the agent ran"
    );
    drop(agent);
    drop(bundle);
}

/// The API server stalls (accepts connections, never answers) for longer than the kubelet's
/// patience with `/healthz`: the agent keeps draining and recording, `/healthz` keeps
/// answering 200, and once the server answers again the report holds every write made during
/// the stall. (With the publisher awaited in the recording loop, the loop stood still for the
/// whole stall and `/healthz` failed after 30 s.)
#[test]
fn a_stalled_api_server_never_holds_up_the_recording() {
    if !privileged("a_stalled_api_server_never_holds_up_the_recording") {
        return;
    }
    let f = Fixture::new("stall");
    let _guard = f.rt.enter();
    let (server, kubeconfig, kubepods, rel) = (&f.server, &f.kubeconfig, &f.kubepods, &f.rel);
    let dir = &f.dir;
    let app = container_id(7);
    put_replicaset(server);
    server.put("api/v1/pods", pod(&[("app", app.clone())]));
    let agent = Agent::start(kubeconfig, &dir.path().join("state"), kubepods);

    // The reports' endpoint stalls for 40 s (STALL_LIMIT is 30 s); the pods' watch still works.
    let stall = Duration::from_secs(40);
    server.stall("writepathreports", stall);
    let stalled_at = Instant::now();
    const FILES: u32 = 300;
    let script = format!(
        "i=0; while [ $i -lt {FILES} ]; do i=$((i+1)); echo $i > /var/tmp/f-$i; sleep 0.1; done"
    );
    let bundle = Bundle::new(
        "stall",
        &script,
        &[],
        false,
        &format!("/{rel}/burstable/pod{UID}/{app}"),
    );
    let writer = std::thread::spawn(move || {
        let (status, out) = bundle.run();
        assert!(status.success(), "container failed: {out}");
    });
    let emitted = |body: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix("writepath_events_emitted_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut last = 0;
    let mut grew = 0;
    while stalled_at.elapsed() < stall - Duration::from_secs(2) {
        let (code, body) = http_get(&agent.metrics, "/healthz");
        assert_eq!(
            code,
            200,
            "/healthz failed {:?} into the stall: {body}",
            stalled_at.elapsed()
        );
        let (_, metrics) = http_get(&agent.metrics, "/metrics");
        let n = emitted(&metrics);
        if n > last {
            grew += 1;
        }
        last = n;
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        grew >= 20,
        "the recording went on during the stall (grew {grew} times)"
    );
    writer.join().unwrap();
    // After the stall: one report with every file.
    let v = published(server, "every file written during the stall", |v| {
        target_of(&targets(v), &app)
            .is_some_and(|t| (1..=FILES).all(|i| write_of(t, &format!("/var/tmp/f-{i}")).is_some()))
    });
    assert_eq!(v["spec"]["workload"]["name"], "web");
    agent.kill();
}
