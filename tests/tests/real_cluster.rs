//! The mission on a real Kubernetes cluster (`cargo xtask cluster up`: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kubelet + containerd + runc, kube-proxy, CNI): the
//! agent's DaemonSet from `deploy/local`, the demo service as a Deployment, the agent's
//! reports, `writepath suggest` and `patch` applied with `kubectl`, the rollout under a
//! read-only root, and `writepath policy` enforced by the real API server.
//!
//! `cargo xtask test` brings the cluster up, imports the images (`cargo xtask image`) and runs
//! this file with `WRITEPATH_REAL_CLUSTER=1`, `KUBECONFIG` and `WRITEPATH_XTASK` set, one test
//! at a time (they share the node's agent, and some restart it or the control plane). Without
//! a cluster the tests are skipped loudly; with `CI=true` they fail.
//!
//! Every test works in namespaces of its own, deleted at the end.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use writepath_tests::{in_ci, writepath_bin};

mod real_cluster {
    use super::*;

    /// The cluster's endpoints, or None (skip) outside CI.
    fn cluster(test: &str) -> Option<()> {
        let ready = std::env::var_os("WRITEPATH_REAL_CLUSTER").is_some()
            && std::env::var_os("KUBECONFIG").is_some();
        if ready {
            return Some(());
        }
        let why = "no real cluster (cargo xtask test brings one up: cargo xtask cluster up, \
                   cargo xtask image, then WRITEPATH_REAL_CLUSTER=1 with KUBECONFIG)";
        assert!(!in_ci(), "{test}: {why}");
        eprintln!("skipping test {test} - {why}");
        None
    }

    struct Out {
        ok: bool,
        stdout: String,
        stderr: String,
    }

    fn run(cmd: &mut Command, stdin: Option<&str>) -> Out {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn kubectl(args: &[&str]) -> Out {
        run(Command::new("kubectl").args(args), None)
    }

    fn kubectl_stdin(args: &[&str], input: &str) -> Out {
        run(Command::new("kubectl").args(args), Some(input))
    }

    /// kubectl that must succeed.
    fn k(args: &[&str]) -> String {
        let out = kubectl(args);
        assert!(out.ok, "kubectl {} failed: {}", args.join(" "), out.stderr);
        out.stdout
    }

    fn writepath(args: &[&str]) -> Out {
        run(Command::new(writepath_bin()).args(args), None)
    }

    fn xtask(args: &[&str]) {
        let bin =
            std::env::var_os("WRITEPATH_XTASK").expect("WRITEPATH_XTASK (set by cargo xtask test)");
        let out = run(Command::new(&bin).args(args), None);
        assert!(
            out.ok,
            "xtask {} failed: {}{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
    }

    /// Polls `f` every half second until it gives a value; panics naming `what` after `timeout`.
    fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// A namespace made for one test run (`<prefix>-<pid>`: the agent keeps what it saw of a
    /// workload by namespace and name, so a name is never reused), deleted on drop.
    struct Namespace(String);

    impl Namespace {
        fn new(prefix: &str, labels: &[(&str, &str)]) -> Namespace {
            let name = &format!("{prefix}-{}", std::process::id());
            k(&["create", "namespace", name]);
            for (key, value) in labels {
                k(&["label", "namespace", name, &format!("{key}={value}")]);
            }
            Namespace(name.to_string())
        }
    }

    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
        }
    }

    /// Installs the agent (idempotent) and waits until its pod is Ready, so that it sees the
    /// workloads of the test from their first write.
    fn agent_ready() {
        k(&[
            "apply",
            "-k",
            &root().join("deploy/local").display().to_string(),
        ]);
        k(&[
            "rollout",
            "status",
            "-n",
            "writepath-system",
            "daemonset/writepath-agent",
            "--timeout=180s",
        ]);
    }

    fn agent_pod() -> Value {
        let pods: Value = serde_json::from_str(&k(&[
            "get",
            "pods",
            "-n",
            "writepath-system",
            "-l",
            "app.kubernetes.io/name=writepath-agent",
            "-o",
            "json",
        ]))
        .unwrap();
        pods["items"]
            .as_array()
            .and_then(|p| {
                p.iter()
                    .find(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .cloned()
            })
            .expect("an agent pod")
    }

    /// The demo Deployment (`deploy/local/demo-web.yaml`) in namespace `ns` as `name`.
    fn demo_deployment(ns: &str, name: &str, replicas: u32) -> String {
        let text = std::fs::read_to_string(root().join("deploy/local/demo-web.yaml")).unwrap();
        let deployment = text
            .split("\n---\n")
            .nth(1)
            .expect("the Deployment document");
        deployment
            .replace("namespace: demo", &format!("namespace: {ns}"))
            .replace("name: web", &format!("name: {name}"))
            .replace("app: web", &format!("app: {name}"))
            .replace("replicas: 2", &format!("replicas: {replicas}"))
    }

    fn rollout(ns: &str, what: &str) {
        k(&["rollout", "status", "-n", ns, what, "--timeout=180s"]);
    }

    /// `writepath suggest -n NS deploy/NAME -o json`, once its volumes hold every path of
    /// `written` (the agent publishes every 10 s in the local overlay).
    fn suggestions_covering(ns: &str, workload: &str, written: &[&str]) -> Value {
        wait_for(
            &format!("suggestions for {workload} holding {written:?}"),
            Duration::from_secs(120),
            || {
                let out = writepath(&["suggest", "-n", ns, workload, "-o", "json"]);
                if !out.ok {
                    return None;
                }
                let v: Value = serde_json::from_str(&out.stdout).ok()?;
                let paths = mount_paths(&v);
                written
                    .iter()
                    .all(|w| paths.iter().any(|p| Path::new(w).starts_with(p)))
                    .then_some(v)
            },
        )
    }

    fn mount_paths(suggestions: &Value) -> Vec<String> {
        suggestions["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["volumes"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v["mount_path"].as_str().map(str::to_string))
            .collect()
    }

    fn pods(ns: &str, app: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(&k(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            &format!("app={app}"),
            "-o",
            "json",
        ]))
        .unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// The paths the demo service writes outside /tmp, each of which one suggested volume must
    /// hold: written by hand from `tests/fixtures/demo/service.sh`.
    /// (`/var/lib/demo` holds state saved by temp-then-rename: data, on a claim.)
    const DEMO_WRITES: &[&str] = &[
        "/run/demo.pid",
        "/var/log/demo/access.log",
        "/var/cache/app/blobs/blob-1",
        "/var/lib/demo/state.json",
        "/var/lib/demo/state.json.tmp",
    ];

    #[test]
    fn mission_record_suggest_patch_rollout_and_enforce() {
        if cluster("mission").is_none() {
            return;
        }
        agent_ready();

        // The agent runs with its real securityContext: not privileged, read-only root, only
        // its capabilities.
        let pod = agent_pod();
        let sc = &pod["spec"]["containers"][0]["securityContext"];
        assert_ne!(sc["privileged"], Value::Bool(true), "{sc}");
        assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true), "{sc}");
        assert_eq!(sc["allowPrivilegeEscalation"], Value::Bool(false), "{sc}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{sc}"
        );
        let added: Vec<&str> = sc["capabilities"]["add"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for cap in &added {
            assert!(
                [
                    "BPF",
                    "PERFMON",
                    "SYS_PTRACE",
                    "DAC_READ_SEARCH",
                    "SYS_RESOURCE"
                ]
                .contains(cap),
                "unexpected capability {cap}"
            );
        }
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], Value::Bool(true), "{status}");

        // The demo service, two replicas, recorded from their first write.
        let ns = Namespace::new("e2e-mission", &[("writepath.dev/e2e", "enforce")]);
        let out = kubectl_stdin(&["apply", "-f", "-"], &demo_deployment(&ns.0, "web", 2));
        assert!(out.ok, "{}", out.stderr);
        rollout(&ns.0, "deployment/web");

        // The report and the suggestions: each write the service makes outside /tmp lies in
        // exactly one suggested volume; /tmp is already a volume.
        let suggestions = suggestions_covering(&ns.0, "deploy/web", DEMO_WRITES);
        let paths = mount_paths(&suggestions);
        assert!(
            !paths.iter().any(|p| p == "/tmp"),
            "/tmp is already a volume: {paths:?}"
        );
        for w in DEMO_WRITES {
            let holders: Vec<&String> = paths
                .iter()
                .filter(|p| Path::new(w).starts_with(p.as_str()))
                .collect();
            assert_eq!(
                holders.len(),
                1,
                "{w} must be in exactly one volume of {paths:?}"
            );
        }
        assert!(
            !paths.iter().any(|p| p == "/" || p == "/var"),
            "no volume over the whole root or /var: {paths:?}"
        );
        // Two replicas on the node, one workload: one container entry.
        assert_eq!(
            suggestions["containers"].as_array().map(Vec::len),
            Some(1),
            "the replicas are merged: {suggestions}"
        );

        // Before the patch, the policy refuses what is not read-only...
        let policy = writepath(&[
            "policy",
            "--action",
            "Deny",
            "--namespace-label",
            "writepath.dev/e2e=enforce",
        ]);
        assert!(policy.ok, "{}", policy.stderr);

        // The patch, applied as a user would.
        let patch = writepath(&["patch", "-n", &ns.0, "deploy/web"]);
        assert!(patch.ok, "writepath patch failed: {}", patch.stderr);
        // The service's state (/var/lib/demo, saved by temp-then-rename) is data: the patch
        // names a claim and says it must exist first. The user makes it, as
        // deploy/local/demo-state.yaml does for namespace demo (this cluster has no
        // provisioner).
        assert!(
            patch
                .stderr
                .contains("PersistentVolumeClaim var-lib-demo, which must exist"),
            "the patch says which claim to make: {}",
            patch.stderr
        );
        let state = std::fs::read_to_string(root().join("deploy/local/demo-state.yaml"))
            .unwrap()
            .replace("namespace: demo", &format!("namespace: {}", ns.0))
            .replace("demo-var-lib-demo", &format!("{}-var-lib-demo", ns.0));
        let made = kubectl_stdin(&["apply", "-f", "-"], &state);
        assert!(made.ok, "{}", made.stderr);
        let applied = kubectl_stdin(&["apply", "-f", "-"], &patch.stdout);
        assert!(
            applied.ok,
            "kubectl apply of the patch failed: {}\n{}",
            applied.stderr, patch.stdout
        );
        rollout(&ns.0, "deployment/web");
        // Let each new pod run its serving loop a few times (a failing write ends it).
        std::thread::sleep(Duration::from_secs(8));
        let web = pods(&ns.0, "web");
        let running: Vec<&Value> = web
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        assert_eq!(running.len(), 2, "two replicas after the rollout");
        for p in &running {
            let c = &p["spec"]["containers"][0];
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"],
                Value::Bool(true),
                "{c}"
            );
            let s = &p["status"]["containerStatuses"][0];
            assert_eq!(s["ready"], Value::Bool(true), "{s}");
            assert_eq!(
                s["restartCount"],
                Value::from(0),
                "a write failed and the service exited: {s}"
            );
            let name = p["metadata"]["name"].as_str().unwrap();
            let logs = k(&["logs", "-n", &ns.0, name]);
            assert!(
                !logs.contains("Read-only file system"),
                "EROFS in {name}'s log:\n{logs}"
            );
            assert!(logs.contains("demo: serving"), "{name} is serving:\n{logs}");
        }

        // The policy, enforced by the real API server.
        let applied = kubectl_stdin(&["apply", "-f", "-"], &policy.stdout);
        assert!(
            applied.ok,
            "the policy is refused: {}\n{}",
            applied.stderr, policy.stdout
        );
        let outside = Namespace::new("e2e-outside", &[]);
        // The policy takes effect once the API server has compiled it: until then a create is
        // admitted (and undone, so that each attempt is a new CREATE).
        let mut attempt = 0;
        let refused = wait_for(
            "the policy to refuse an unpatched Deployment",
            Duration::from_secs(60),
            || {
                attempt += 1;
                let name = format!("plain-{attempt}");
                let out = kubectl_stdin(&["create", "-f", "-"], &demo_deployment(&ns.0, &name, 1));
                if out.ok {
                    let _ = kubectl(&["delete", "deployment", "-n", &ns.0, &name, "--wait=false"]);
                    return None;
                }
                Some(out.stderr)
            },
        );
        assert!(
            refused.contains("writepath-read-only-root-filesystem")
                && refused.contains(
                    "container(s) app must set securityContext.readOnlyRootFilesystem: true"
                ),
            "refused with the policy's message: {refused}"
        );
        let pod = kubectl(&[
            "run",
            "plain-pod",
            "-n",
            &ns.0,
            "--image=localhost/writepath-demo:0.1.0",
            "--image-pull-policy=Never",
            "--restart=Never",
        ]);
        assert!(
            !pod.ok && pod.stderr.contains("readOnlyRootFilesystem"),
            "a bare Pod is refused too: {}",
            pod.stderr
        );
        // The patched workload is admitted: a restart makes new pods through the policy.
        k(&["rollout", "restart", "-n", &ns.0, "deployment/web"]);
        rollout(&ns.0, "deployment/web");
        // A namespace outside the selector is untouched.
        let out = kubectl_stdin(
            &["apply", "-f", "-"],
            &demo_deployment(&outside.0, "plain", 1),
        );
        assert!(
            out.ok,
            "outside the selector an unpatched Deployment is admitted: {}",
            out.stderr
        );
        rollout(&outside.0, "deployment/plain");
        let _ = kubectl_stdin(&["delete", "-f", "-", "--wait=false"], &policy.stdout);
        let _ = kubectl(&[
            "delete",
            "pv",
            &format!("{}-var-lib-demo", ns.0),
            "--wait=false",
        ]);
    }

    /// A Deployment `name` of one replica whose container runs `script` (busybox sh) on a
    /// writable root, with `init` as an init container's script when given.
    fn script_deployment(ns: &str, name: &str, script: &str, init: Option<&str>) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap();
        let init = init
            .map(|i| {
                format!(
                    "      initContainers:\n      - name: seed\n        image: localhost/writepath-demo:0.1.0\n        \
                     imagePullPolicy: Never\n        command: [/bin/sh, -c, {}]\n",
                    quote(i)
                )
            })
            .unwrap_or_default();
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  \
             replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      \
             labels:\n        app: {name}\n    spec:\n      terminationGracePeriodSeconds: 1\n{init}      \
             containers:\n      - name: app\n        image: localhost/writepath-demo:0.1.0\n        \
             imagePullPolicy: Never\n        command: [/bin/sh, -c, {}]\n",
            quote(script)
        )
    }

    /// Writes `/var/lib/counter/f-1`, `f-2`, … twice a second, each a new file.
    const COUNTER: &str = "mkdir -p /var/lib/counter; i=0; while :; do i=$((i+1)); echo $i > /var/lib/counter/f-$i; sleep 0.5; done";

    /// The paths in the workload's published reports (every node, every target).
    fn reported_paths(ns: &str) -> Vec<String> {
        let v: Value =
            serde_json::from_str(&k(&["get", "writepathreports", "-n", ns, "-o", "json"])).unwrap();
        let mut paths = Vec::new();
        for item in v["items"].as_array().into_iter().flatten() {
            for t in item["spec"]["report"]["targets"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for w in t["writes"].as_array().into_iter().flatten() {
                    if let Some(p) = w["path"].as_str() {
                        paths.push(p.to_string());
                    }
                }
            }
        }
        paths
    }

    /// The counter files reported: their numbers, sorted.
    fn counter_files(ns: &str) -> Vec<u64> {
        let mut n: Vec<u64> = reported_paths(ns)
            .iter()
            .filter_map(|p| p.strip_prefix("/var/lib/counter/f-")?.parse().ok())
            .collect();
        n.sort_unstable();
        n.dedup();
        n
    }

    fn agent_restarts() -> (String, u64) {
        let pod = agent_pod();
        (
            pod["metadata"]["uid"].as_str().unwrap().to_string(),
            pod["status"]["containerStatuses"][0]["restartCount"]
                .as_u64()
                .unwrap(),
        )
    }

    /// Waits until the report holds counter files beyond `beyond`; returns them.
    fn counter_beyond(ns: &str, beyond: u64) -> Vec<u64> {
        wait_for(
            &format!("counter files beyond f-{beyond} in the report"),
            Duration::from_secs(150),
            || {
                let files = counter_files(ns);
                files
                    .last()
                    .is_some_and(|&last| last > beyond)
                    .then_some(files)
            },
        )
    }

    #[test]
    fn api_server_and_etcd_restarts_lose_no_write() {
        if cluster("restarts").is_none() {
            return;
        }
        agent_ready();
        let before = agent_restarts();
        let ns = Namespace::new("e2e-restart", &[]);
        let out = kubectl_stdin(
            &["apply", "-f", "-"],
            &script_deployment(&ns.0, "counter", COUNTER, None),
        );
        assert!(out.ok, "{}", out.stderr);
        rollout(&ns.0, "deployment/counter");
        let first = counter_beyond(&ns.0, 3);
        let outage_from = *first.last().unwrap();
        // The control plane goes away under the agent, twice.
        xtask(&["cluster", "restart", "kube-apiserver"]);
        xtask(&["cluster", "restart", "etcd"]);
        // Every file the counter wrote, through both outages, is published once the API is back
        // (the counter writes two a second: 20 more are well after the outage).
        let files = counter_beyond(&ns.0, outage_from + 20);
        let last = *files.last().unwrap();
        let missing: Vec<u64> = (1..=last)
            .filter(|i| files.binary_search(i).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "writes lost across the restarts: f-{missing:?} of 1..={last}"
        );
        assert_eq!(
            agent_restarts(),
            before,
            "the agent recovered without a restart"
        );
    }

    #[test]
    fn agent_killed_resumes_from_its_state() {
        if cluster("kill -9").is_none() {
            return;
        }
        agent_ready();
        let ns = Namespace::new("e2e-kill", &[]);
        let out = kubectl_stdin(
            &["apply", "-f", "-"],
            &script_deployment(&ns.0, "counter", COUNTER, None),
        );
        assert!(out.ok, "{}", out.stderr);
        rollout(&ns.0, "deployment/counter");
        let published = counter_beyond(&ns.0, 5);
        let (uid, restarts) = agent_restarts();
        // kill -9 of the agent's process (the container's, not any other writepath here).
        let pid = agent_pid(&uid);
        // SAFETY: kill with a pid read from /proc.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        wait_for(
            "the kubelet to restart the agent",
            Duration::from_secs(120),
            || {
                let (u, r) = agent_restarts();
                (u == uid
                    && r > restarts
                    && agent_pod()["status"]["containerStatuses"][0]["ready"] == Value::Bool(true))
                .then_some(())
            },
        );
        // Everything published before the kill is still there, and the new process records.
        let last_before = *published.last().unwrap();
        let files = counter_beyond(&ns.0, last_before + 10);
        let lost: Vec<&u64> = published
            .iter()
            .filter(|i| files.binary_search(i).is_err())
            .collect();
        assert!(
            lost.is_empty(),
            "observations lost by the restart: f-{lost:?}"
        );
    }

    /// The host pid of the agent container's process: `writepath agent` in a cgroup of the pod.
    fn agent_pid(pod_uid: &str) -> i32 {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cgroup.contains(&format!("pod{pod_uid}"))
                && cmdline.starts_with(b"/usr/local/bin/writepath\0agent")
            {
                return pid;
            }
        }
        panic!("no agent process for pod {pod_uid}");
    }

    #[test]
    fn init_container_writes_are_the_init_containers() {
        if cluster("init container").is_none() {
            return;
        }
        agent_ready();
        let ns = Namespace::new("e2e-init", &[]);
        let out = kubectl_stdin(
            &["apply", "-f", "-"],
            &script_deployment(
                &ns.0,
                "seeded",
                "while :; do echo tick >> /var/log/app.log; sleep 1; done",
                Some("mkdir -p /var/lib/seed && echo ready > /var/lib/seed/ready"),
            ),
        );
        assert!(out.ok, "{}", out.stderr);
        rollout(&ns.0, "deployment/seeded");
        let v = suggestions_covering(
            &ns.0,
            "deploy/seeded",
            &["/var/lib/seed/ready", "/var/log/app.log"],
        );
        let containers = v["containers"].as_array().unwrap();
        let holds = |c: &Value, path: &str| {
            c["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["mount_path"].as_str())
                .any(|m| Path::new(path).starts_with(m))
        };
        let seed = containers
            .iter()
            .find(|c| c["container"] == "seed")
            .unwrap_or_else(|| panic!("the init container has its own entry: {v}"));
        assert_eq!(seed["container_kind"], "init", "{seed}");
        assert!(holds(seed, "/var/lib/seed/ready"), "{seed}");
        assert!(
            !holds(seed, "/var/log/app.log"),
            "the app's writes are not the init container's: {seed}"
        );
        let app = containers
            .iter()
            .find(|c| c["container"] == "app")
            .expect("app");
        assert_eq!(app["container_kind"], "container");
        assert!(
            holds(app, "/var/log/app.log") && !holds(app, "/var/lib/seed/ready"),
            "{app}"
        );
    }

    #[test]
    fn the_agents_service_account_can_do_what_it_needs_and_nothing_more() {
        if cluster("rbac").is_none() {
            return;
        }
        agent_ready();
        let sa = "system:serviceaccount:writepath-system:writepath-agent";
        let can = |verb: &str, resource: &str, ns: Option<&str>| -> bool {
            let mut args = vec!["auth", "can-i", verb, resource, "--as", sa];
            match ns {
                Some(n) => args.extend(["-n", n]),
                None => args.push("--all-namespaces"),
            }
            let out = kubectl(&args);
            out.stdout.trim() == "yes"
        };
        // What the agent does: watch the node's pods, read their owners, publish reports.
        for (verb, resource) in [
            ("list", "pods"),
            ("watch", "pods"),
            ("get", "pods"),
            ("get", "replicasets.apps"),
            ("get", "jobs.batch"),
            ("create", "writepathreports.writepath.dev"),
            ("patch", "writepathreports.writepath.dev"),
        ] {
            assert!(
                can(verb, resource, None),
                "the agent must be able to {verb} {resource}"
            );
        }
        // And nothing else.
        for (verb, resource) in [
            ("delete", "pods"),
            ("create", "pods"),
            ("patch", "pods"),
            ("create", "pods/exec"),
            ("get", "secrets"),
            ("list", "secrets"),
            ("get", "configmaps"),
            ("list", "nodes"),
            ("update", "deployments.apps"),
            ("patch", "deployments.apps"),
            ("list", "replicasets.apps"),
            ("delete", "writepathreports.writepath.dev"),
            ("get", "writepathreports.writepath.dev"),
            ("update", "writepathreports.writepath.dev"),
            ("create", "clusterroles.rbac.authorization.k8s.io"),
            (
                "create",
                "validatingadmissionpolicies.admissionregistration.k8s.io",
            ),
            ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ] {
            assert!(
                !can(verb, resource, Some("default")),
                "the agent must not be able to {verb} {resource}"
            );
        }
    }

    #[test]
    fn the_largest_report_the_agent_publishes_fits_and_a_larger_one_would_not() {
        use writepath::cluster::crd;
        use writepath::report::{Report, Target, Write};
        if cluster("report size").is_none() {
            return;
        }
        agent_ready();
        let ns = Namespace::new("e2e-size", &[]);
        // 40 000 distinct 120-byte paths: about 3 MiB of report, what a flood of names gives.
        let writes: Vec<Write> = (0..40_000)
            .map(|i| Write {
                path: format!("/var/cache/app/{:0>100}/{i:06}", "d")
                    .as_str()
                    .into(),
                count: 1,
                ..Default::default()
            })
            .collect();
        let report = Report {
            version: 1,
            targets: vec![Target {
                writes,
                ..Default::default()
            }],
            ..Default::default()
        };
        let workload = writepath::report::WorkloadRef {
            namespace: ns.0.clone(),
            kind: "Deployment".into(),
            name: "flood".into(),
        };
        // What the agent publishes: folded to fit.
        let fitted = crd::build(&workload, "node-1", report.clone());
        let json = serde_json::to_string(&fitted).unwrap();
        assert!(
            json.len() <= crd::MAX_REPORT_BYTES + 4096,
            "{} bytes",
            json.len()
        );
        let out = kubectl_stdin(&["create", "-f", "-"], &json);
        assert!(
            out.ok,
            "the real API server refuses the largest report: {}",
            out.stderr
        );
        let stored = k(&["get", "writepathreports", "-n", &ns.0, "-o", "json"]);
        let total: u64 = serde_json::from_str::<Value>(&stored).unwrap()["items"][0]["spec"]
            ["report"]["targets"][0]["writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(total, 40_000, "the stored report still counts every write");
        // Unfitted, the same report is refused: the bound is needed.
        let mut raw = fitted.clone();
        raw.metadata.name = Some("unfitted".into());
        raw.spec.report = report;
        let out = kubectl_stdin(
            &["create", "-f", "-"],
            &serde_json::to_string(&raw).unwrap(),
        );
        assert!(
            !out.ok,
            "a {}-byte report was accepted: the bound could be higher",
            serde_json::to_string(&raw).unwrap().len()
        );
        assert!(
            out.stderr.contains("too large")
                || out.stderr.contains("exceeded")
                || out.stderr.contains("limit"),
            "refused for its size: {}",
            out.stderr
        );
    }

    /// The agent's metrics, from its pod's address.
    fn agent_metrics() -> String {
        let ip = agent_pod()["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let out = run(
            Command::new("curl").args([
                "-sf",
                "--max-time",
                "5",
                &format!("http://{ip}:9477/metrics"),
            ]),
            None,
        );
        out.stdout
    }

    fn metric(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    #[test]
    fn reports_of_a_deleted_namespace_are_not_retried_for_ever() {
        if cluster("deleted namespace").is_none() {
            return;
        }
        agent_ready();
        let ns = Namespace::new("e2e-gone", &[]);
        let out = kubectl_stdin(
            &["apply", "-f", "-"],
            &script_deployment(&ns.0, "counter", COUNTER, None),
        );
        assert!(out.ok, "{}", out.stderr);
        rollout(&ns.0, "deployment/counter");
        counter_beyond(&ns.0, 3);
        k(&[
            "delete",
            "namespace",
            &ns.0,
            "--wait=true",
            "--timeout=120s",
        ]);
        // The agent finds the namespace gone (the API's NotFound), says so once and stops
        // trying: nothing stays queued.
        wait_for(
            "the agent to give the gone namespace's report up",
            Duration::from_secs(90),
            || {
                let m = agent_metrics();
                let gone = metric(
                    &m,
                    "writepath_publish_errors_total{reason=\"namespace_gone\"}",
                )?;
                let pending = metric(&m, "writepath_pending_reports")?;
                (gone >= 1.0 && pending == 0.0).then_some(())
            },
        );
    }
}
