//! `cargo xtask cluster up | down | status`: a real one-node Kubernetes cluster on this machine.
//!
//! Every part is the real thing, built or installed by the project:
//! - kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy built from
//!   the released `k8s.io/kubernetes` Go module ([`K8S_VERSION`]) into a cache outside the
//!   checkout (`~/.cache/writepath/cluster/`), so a second `up` (or a fresh clone on the same
//!   machine) never rebuilds them;
//! - etcd, containerd, runc, the CNI plugins (bridge, host-local, loopback) and iptables from
//!   Debian's packages (`cargo xtask setup`);
//! - the pod sandbox ("pause") image built here from the `pause.c` of the same Kubernetes module
//!   (no registry is reachable, so no image is ever pulled).
//!
//! The control plane runs with Node,RBAC authorization and the default admission chain
//! (ValidatingAdmissionPolicy included), certificates are made locally with `openssl`. Each
//! component is a process of its own (a new session, its log in `<state>/logs/`), so the cluster
//! outlives the `cargo xtask` that started it.
//!
//! `down` stops everything and undoes what the parts did to the host: it unmounts what the
//! kubelet and containerd mounted, removes the cgroups, the CNI bridge and network namespaces,
//! restores iptables and the sysctls to the values saved at `up`, and deletes the state.
//! [`HostSnapshot`] is what the test compares before `up` and after `down`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};

use crate::run_cmd;

/// The Kubernetes release built. 1.34 is the newest that still runs on cgroup v1 without
/// opting out of `failCgroupV1` (this host's cgroups are hybrid: v1 controllers, cgroup2 beside).
pub const K8S_VERSION: &str = "1.34.4";
/// The components built from `k8s.io/kubernetes/cmd/…`.
const COMPONENTS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
];
/// The sandbox image containerd runs for every pod; built by [`pause_image`].
pub const PAUSE_IMAGE: &str = "localhost/writepath/pause:3.10";

/// Where the cluster keeps its state (certificates, etcd, kubelet and containerd roots, logs).
pub const STATE_DIR: &str = "/var/lib/writepath-cluster";
/// Where it keeps sockets and runtime state.
pub const RUN_DIR: &str = "/run/writepath-cluster";
const ETCD_CLIENT_PORT: u16 = 12379;
const ETCD_PEER_PORT: u16 = 12380;
const APISERVER_PORT: u16 = 6443;
const SERVICE_CIDR: &str = "10.96.0.0/16";
const POD_CIDR: &str = "10.88.0.0/16";
const POD_SUBNET: &str = "10.88.0.0/24";
const CNI_BRIDGE: &str = "wp-cni0";
/// Sysctls the kubelet, kube-proxy or the bridge plugin may change; saved at `up`, restored at
/// `down`.
const SYSCTLS: &[&str] = &[
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/conf/all/forwarding",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
];

/// Host paths the kubelet, containerd, CNI or the DaemonSet's hostPath volumes make outside the
/// cluster's own directories (some are fixed in the components: the kubelet's device-plugin
/// socket, containerd's shim sockets, the pods' network namespaces, the pod log directories).
/// `down` removes those that did not exist before `up`.
const HOST_PATHS: &[&str] = &[
    "/var/lib/cni",
    "/var/lib/kubelet",
    "/var/lib/writepath",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/run/netns",
];

/// What `up` tells the caller: shell-evaluable lines.
pub struct Endpoints {
    pub kubeconfig: PathBuf,
    pub containerd_address: PathBuf,
}

impl Endpoints {
    fn current() -> Endpoints {
        Endpoints {
            kubeconfig: state().join("admin.kubeconfig"),
            containerd_address: containerd_socket(),
        }
    }

    /// `KUBECONFIG=…` and `CONTAINERD_ADDRESS=…`, one per line.
    pub fn lines(&self) -> String {
        format!(
            "KUBECONFIG={}\nCONTAINERD_ADDRESS={}\n",
            self.kubeconfig.display(),
            self.containerd_address.display()
        )
    }
}

fn state() -> PathBuf {
    PathBuf::from(STATE_DIR)
}

fn run_dir() -> PathBuf {
    PathBuf::from(RUN_DIR)
}

pub fn containerd_socket() -> PathBuf {
    run_dir().join("containerd/containerd.sock")
}

/// `~/.cache/writepath/cluster` (or `$WRITEPATH_CLUSTER_CACHE`): the Go builds, kept across
/// clones.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WRITEPATH_CLUSTER_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("writepath/cluster")
}

/// The directory holding the built Kubernetes binaries.
pub fn bin_dir() -> PathBuf {
    cache_dir().join(format!("kubernetes-v{K8S_VERSION}/bin"))
}

fn log(msg: impl AsRef<str>) {
    eprintln!("xtask cluster: {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------
// Building the components.

/// Builds the Kubernetes components (once per version) and the pause binary.
pub fn ensure_built() -> anyhow::Result<()> {
    let bin = bin_dir();
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .copied()
        .filter(|c| !bin.join(c).is_file())
        .collect();
    if !missing.is_empty() {
        build_kubernetes(&missing)?;
    }
    if !bin.join("pause").is_file() {
        build_pause()?;
    }
    Ok(())
}

/// `k8s.io/kubernetes` cannot be `go install`ed: its go.mod replaces the `k8s.io/*` staging
/// modules with directories the module archive does not carry. A small module of our own
/// requires it and points every such replace at the published `k8s.io/<name> v0.<minor>.<patch>`
/// of the same release.
fn build_kubernetes(missing: &[&str]) -> anyhow::Result<()> {
    let src = cache_dir().join(format!("kubernetes-v{K8S_VERSION}/src"));
    std::fs::create_dir_all(&src)?;
    let staging_version = format!("v0.{}", K8S_VERSION.split_once('.').expect("1.x.y").1);
    // The upstream go.mod, read from the module cache once it is downloaded.
    run_cmd(
        Command::new("go")
            .current_dir(&src)
            .env("GOFLAGS", "-mod=mod")
            .args([
                "mod",
                "download",
                "-json",
                &format!("k8s.io/kubernetes@v{K8S_VERSION}"),
            ])
            .stdout(Stdio::null()),
    )
    .context("go mod download k8s.io/kubernetes failed: is the Go module proxy reachable?")?;
    let gomodcache = String::from_utf8(
        Command::new("go")
            .args(["env", "GOMODCACHE"])
            .output()
            .context("go not found: Go 1.24+ is needed to build Kubernetes")?
            .stdout,
    )?;
    let upstream = PathBuf::from(gomodcache.trim()).join(format!(
        "cache/download/k8s.io/kubernetes/@v/v{K8S_VERSION}.mod"
    ));
    let upstream = std::fs::read_to_string(&upstream)
        .with_context(|| format!("reading {}", upstream.display()))?;
    let mut gomod = format!(
        "// Generated by cargo xtask cluster: builds Kubernetes v{K8S_VERSION} from its module.\n\
         module writepath.local/cluster\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes v{K8S_VERSION}\n\nreplace (\n"
    );
    for line in upstream.lines() {
        if let Some((name, target)) = line.trim().split_once(" => ") {
            if target.starts_with("./staging/") {
                gomod.push_str(&format!("\t{name} => {name} {staging_version}\n"));
            }
        }
    }
    gomod.push_str(")\n");
    std::fs::write(src.join("go.mod"), gomod)?;
    let mut tools = String::from("//go:build tools\n\npackage tools\n\nimport (\n");
    for c in COMPONENTS {
        tools.push_str(&format!("\t_ \"k8s.io/kubernetes/cmd/{c}\"\n"));
    }
    tools.push_str(")\n");
    std::fs::write(src.join("tools.go"), tools)?;
    run_cmd(
        Command::new("go")
            .current_dir(&src)
            .env("GOFLAGS", "-mod=mod")
            .args(["mod", "tidy"]),
    )
    .context("go mod tidy for the Kubernetes build failed")?;
    let (major, rest) = K8S_VERSION.split_once('.').expect("1.x.y");
    let minor = rest.split('.').next().expect("x");
    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion=v{K8S_VERSION} \
         -X k8s.io/component-base/version.gitMajor={major} \
         -X k8s.io/component-base/version.gitMinor={minor} \
         -X k8s.io/component-base/version.gitTreeState=clean"
    );
    let started = Instant::now();
    log(format!(
        "building Kubernetes v{K8S_VERSION} ({}) from the Go module proxy; the first build takes \
         about 4 minutes on 2 cores, later ones reuse {}",
        missing.join(", "),
        bin_dir().display()
    ));
    let out = bin_dir();
    std::fs::create_dir_all(&out)?;
    let tmp_out = cache_dir().join(format!("kubernetes-v{K8S_VERSION}/bin.partial"));
    std::fs::create_dir_all(&tmp_out)?;
    let mut cmd = Command::new("go");
    cmd.current_dir(&src)
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(format!("{}/", tmp_out.display()));
    for c in missing {
        cmd.arg(format!("k8s.io/kubernetes/cmd/{c}"));
    }
    run_cmd(&mut cmd).context("building Kubernetes failed")?;
    // Moved into place only once built: an interrupted build leaves nothing half-made in bin/.
    for c in missing {
        std::fs::rename(tmp_out.join(c), out.join(c))?;
    }
    log(format!("built in {:.0?}", started.elapsed()));
    Ok(())
}

/// The pause binary from the same Kubernetes module's `build/pause/linux/pause.c`, linked
/// statically so the image needs nothing else.
fn build_pause() -> anyhow::Result<()> {
    let gomodcache = String::from_utf8(
        Command::new("go")
            .args(["env", "GOMODCACHE"])
            .output()?
            .stdout,
    )?;
    let source = PathBuf::from(gomodcache.trim()).join(format!(
        "k8s.io/kubernetes@v{K8S_VERSION}/build/pause/linux/pause.c"
    ));
    if !source.is_file() {
        run_cmd(
            Command::new("go")
                .args([
                    "mod",
                    "download",
                    &format!("k8s.io/kubernetes@v{K8S_VERSION}"),
                ])
                .env("GOFLAGS", "-mod=mod")
                .current_dir(std::env::temp_dir()),
        )?;
    }
    std::fs::create_dir_all(bin_dir())?;
    let tmp = bin_dir().join("pause.partial");
    run_cmd(
        Command::new("gcc")
            .args(["-Os", "-Wall", "-static", "-DVERSION=v3.10-writepath", "-o"])
            .arg(&tmp)
            .arg(&source),
    )
    .with_context(|| format!("compiling {}", source.display()))?;
    run_cmd(Command::new("strip").arg(&tmp))?;
    std::fs::rename(&tmp, bin_dir().join("pause"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Certificates and configuration.

/// The node's name (the host name) and address (the source address of the default route).
pub struct Node {
    pub name: String,
    pub ip: String,
}

impl Node {
    pub fn detect() -> anyhow::Result<Node> {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?
            .trim()
            .to_lowercase();
        let route = output(Command::new("ip").args(["-4", "route", "get", "1.1.1.1"]))?;
        let ip = route
            .split_whitespace()
            .skip_while(|w| *w != "src")
            .nth(1)
            .context("no IPv4 default route: the node needs an address")?
            .to_string();
        Ok(Node { name, ip })
    }
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A certificate signed by the cluster CA.
struct Cert<'a> {
    name: &'a str,
    subject: String,
    usage: &'a str,
    sans: Vec<String>,
}

fn pki(node: &Node) -> anyhow::Result<()> {
    let dir = state().join("pki");
    if dir.join("done").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    let openssl = |args: &[&str]| {
        run_cmd(
            Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .stderr(Stdio::null()),
        )
    };
    openssl(&["genrsa", "-out", "ca.key", "2048"])?;
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=writepath-cluster-ca",
        "-days",
        "3650",
        "-out",
        "ca.crt",
    ])?;
    openssl(&["genrsa", "-out", "sa.key", "2048"])?;
    openssl(&["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    let mut apiserver_sans: Vec<String> = [
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:localhost",
        "IP:127.0.0.1",
        "IP:10.96.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    apiserver_sans.push(format!("IP:{}", node.ip));
    apiserver_sans.push(format!("DNS:{}", node.name));
    let certs = [
        Cert {
            name: "apiserver",
            subject: "/CN=kube-apiserver".into(),
            usage: "serverAuth",
            sans: apiserver_sans,
        },
        Cert {
            name: "apiserver-kubelet-client",
            subject: "/O=system:masters/CN=kube-apiserver-kubelet-client".into(),
            usage: "clientAuth",
            sans: vec![],
        },
        Cert {
            name: "admin",
            subject: "/O=system:masters/CN=writepath-admin".into(),
            usage: "clientAuth",
            sans: vec![],
        },
        Cert {
            name: "controller-manager",
            subject: "/CN=system:kube-controller-manager".into(),
            usage: "clientAuth",
            sans: vec![],
        },
        Cert {
            name: "scheduler",
            subject: "/CN=system:kube-scheduler".into(),
            usage: "clientAuth",
            sans: vec![],
        },
        Cert {
            name: "kube-proxy",
            subject: "/CN=system:kube-proxy".into(),
            usage: "clientAuth",
            sans: vec![],
        },
        Cert {
            name: "kubelet",
            subject: format!("/O=system:nodes/CN=system:node:{}", node.name),
            usage: "clientAuth",
            sans: vec![],
        },
        Cert {
            name: "kubelet-serving",
            subject: format!("/CN={}", node.name),
            usage: "serverAuth",
            sans: vec![
                format!("IP:{}", node.ip),
                format!("DNS:{}", node.name),
                "IP:127.0.0.1".into(),
            ],
        },
    ];
    for c in &certs {
        let key = format!("{}.key", c.name);
        let csr = format!("{}.csr", c.name);
        let crt = format!("{}.crt", c.name);
        let ext = format!("{}.ext", c.name);
        let mut extensions = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={}\n",
            c.usage
        );
        if !c.sans.is_empty() {
            extensions.push_str(&format!("subjectAltName={}\n", c.sans.join(",")));
        }
        std::fs::write(dir.join(&ext), extensions)?;
        openssl(&["genrsa", "-out", &key, "2048"])?;
        openssl(&[
            "req", "-new", "-key", &key, "-subj", &c.subject, "-out", &csr,
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ])?;
    }
    std::fs::write(dir.join("done"), "")?;
    Ok(())
}

fn kubeconfig(user: &str, server: &str) -> anyhow::Result<PathBuf> {
    let pki = state().join("pki");
    let path = state().join(format!("{user}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: writepath\n  cluster:\n    server: {server}\n    \
         certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate: {crt}\n    \
         client-key: {key}\ncontexts:\n- name: writepath\n  context:\n    cluster: writepath\n    user: {user}\n\
         current-context: writepath\n",
        ca = pki.join("ca.crt").display(),
        crt = pki.join(format!("{user}.crt")).display(),
        key = pki.join(format!("{user}.key")).display(),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

fn containerd_config() -> anyhow::Result<PathBuf> {
    let path = state().join("containerd/config.toml");
    std::fs::create_dir_all(path.parent().expect("dir"))?;
    let text = format!(
        r#"# Generated by cargo xtask cluster.
version = 2
root = "{state}/containerd/root"
state = "{run}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{state}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_cdi = false
  # Kubelet asks for a negative oom_score_adj for sandboxes (-998) and critical pods; lowering
  # it needs CAP_SYS_RESOURCE, which root on machines like ours does not have (runc then fails
  # with "failed to update /proc/self/oom_score_adj: Permission denied"). This keeps the value
  # at containerd's own as a lower bound, as for rootless containerd.
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "/usr/sbin/runc"
  Root = "{run}/runc"
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{state}/cni/net.d"
"#,
        state = STATE_DIR,
        run = RUN_DIR,
        sock = containerd_socket().display(),
    );
    std::fs::write(&path, text)?;
    let cni = state().join("cni/net.d");
    std::fs::create_dir_all(&cni)?;
    std::fs::write(
        cni.join("10-writepath.conflist"),
        format!(
            r#"{{
  "cniVersion": "0.4.0",
  "name": "writepath",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{CNI_BRIDGE}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{ "subnet": "{POD_SUBNET}" }}]],
        "routes": [{{ "dst": "0.0.0.0/0" }}],
        "dataDir": "{state}/cni/ipam"
      }}
    }}
  ]
}}
"#,
            state = STATE_DIR
        ),
    )?;
    Ok(path)
}

fn kubelet_config(node: &Node) -> anyhow::Result<PathBuf> {
    let pki = state().join("pki");
    let path = state().join("kubelet-config.yaml");
    let text = format!(
        r#"# Generated by cargo xtask cluster.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
tlsCertFile: {pki}/kubelet-serving.crt
tlsPrivateKeyFile: {pki}/kubelet-serving.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{sock}
failSwapOn: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
# Images here are imported, never pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
protectKernelDefaults: false
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
"#,
        ip = node.ip,
        ca = pki.join("ca.crt").display(),
        pki = pki.display(),
        sock = containerd_socket().display(),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// A component run as a daemon: its pid in `<run>/<name>.pid`, its log in `<state>/logs/`.
struct Daemon {
    name: &'static str,
}

impl Daemon {
    fn pid_file(&self) -> PathBuf {
        run_dir().join(format!("{}.pid", self.name))
    }

    fn log_file(&self) -> PathBuf {
        state().join(format!("logs/{}.log", self.name))
    }

    fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // The process must still be this component (a pid may have been reused).
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let base = exe.file_name()?.to_string_lossy().into_owned();
        (base == self.name).then_some(pid)
    }

    fn running(&self) -> bool {
        self.pid().is_some()
    }

    fn start(&self, program: &Path, args: &[String]) -> anyhow::Result<()> {
        if self.running() {
            return Ok(());
        }
        std::fs::create_dir_all(state().join("logs"))?;
        std::fs::create_dir_all(run_dir())?;
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .current_dir("/");
        // SAFETY: setsid is async-signal-safe; the daemon leaves our session and process group
        // so it outlives cargo xtask and ^C of it.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        std::fs::write(self.pid_file(), child.id().to_string())?;
        log(format!(
            "started {} (pid {}, log {})",
            self.name,
            child.id(),
            self.log_file().display()
        ));
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`; waits until it is gone.
    fn stop(&self, grace: Duration) {
        let Some(pid) = self.pid() else {
            let _ = std::fs::remove_file(self.pid_file());
            return;
        };
        // SAFETY: kill with a pid we read and checked above.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            reap();
            std::thread::sleep(Duration::from_millis(100));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            while Path::new(&format!("/proc/{pid}/exe")).exists() {
                reap();
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_file(self.pid_file());
        log(format!("stopped {}", self.name));
    }

    /// The last lines of its log, for an error.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Reaps any of our children that exited (daemons started by this process).
fn reap() {
    // SAFETY: waitpid with WNOHANG on any child.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

const ETCD: Daemon = Daemon { name: "etcd" };
const APISERVER: Daemon = Daemon {
    name: "kube-apiserver",
};
const CONTROLLER_MANAGER: Daemon = Daemon {
    name: "kube-controller-manager",
};
const SCHEDULER: Daemon = Daemon {
    name: "kube-scheduler",
};
const CONTAINERD: Daemon = Daemon { name: "containerd" };
const KUBELET: Daemon = Daemon { name: "kubelet" };
const KUBE_PROXY: Daemon = Daemon { name: "kube-proxy" };
/// In start order; stopped in reverse.
const DAEMONS: &[&Daemon] = &[
    &ETCD,
    &APISERVER,
    &CONTROLLER_MANAGER,
    &SCHEDULER,
    &CONTAINERD,
    &KUBELET,
    &KUBE_PROXY,
];

fn wait_for(
    what: &str,
    daemon: &Daemon,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if !daemon.running() {
            bail!(
                "{} exited while waiting for {what}; its log ends:\n{}",
                daemon.name,
                daemon.tail()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{what}: not after {timeout:?}; {}'s log ends:\n{}",
                daemon.name,
                daemon.tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `kubectl` with the admin kubeconfig.
pub fn kubectl() -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", state().join("admin.kubeconfig"));
    cmd
}

fn apiserver_ready() -> bool {
    succeeds(kubectl().args(["get", "--raw", "/readyz"]))
}

fn node_ready(node: &Node) -> bool {
    kubectl()
        .args([
            "get",
            "node",
            &node.name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout == b"True")
}

// ---------------------------------------------------------------------------------------------
// up / down / status.

/// Brings the cluster up (idempotent) and returns where to reach it.
pub fn up() -> anyhow::Result<Endpoints> {
    ensure!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0")),
        "cargo xtask cluster up must run as root (it runs a kubelet and containerd)"
    );
    crate::setup::run()?;
    crate::setup::cluster_packages()?;
    ensure_built()?;
    let node = Node::detect()?;
    let started = Instant::now();
    std::fs::create_dir_all(state())?;
    std::fs::create_dir_all(run_dir())?;
    save_host_state()?;
    pki(&node)?;
    let bin = bin_dir();
    let pki = state().join("pki");
    let p = |name: &str| pki.join(name).display().to_string();
    let server = format!("https://{}:{APISERVER_PORT}", node.ip);

    ETCD.start(
        Path::new("/usr/bin/etcd"),
        &[
            "--name=writepath".into(),
            format!("--data-dir={}/etcd", STATE_DIR),
            format!("--listen-client-urls=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
            format!("--advertise-client-urls=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
            format!("--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}"),
            format!("--initial-cluster=writepath=http://127.0.0.1:{ETCD_PEER_PORT}"),
            "--listen-metrics-urls=".into(),
        ],
    )?;
    wait_for("etcd to answer", &ETCD, Duration::from_secs(30), || {
        succeeds(Command::new("curl").args([
            "-sf",
            &format!("http://127.0.0.1:{ETCD_CLIENT_PORT}/health"),
        ]))
    })?;

    APISERVER.start(
        &bin.join("kube-apiserver"),
        &[
            format!("--advertise-address={}", node.ip),
            "--bind-address=0.0.0.0".into(),
            format!("--secure-port={APISERVER_PORT}"),
            format!("--etcd-servers=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!(
                "--kubelet-client-certificate={}",
                p("apiserver-kubelet-client.crt")
            ),
            format!("--kubelet-client-key={}", p("apiserver-kubelet-client.key")),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=Node,RBAC".into(),
            // The node's name resolves to 127.0.0.1 here; the kubelet listens on the node IP.
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
        ],
    )?;
    let admin = kubeconfig("admin", &server)?;
    wait_for(
        "kube-apiserver to be ready",
        &APISERVER,
        Duration::from_secs(120),
        apiserver_ready,
    )?;

    let cm = kubeconfig("controller-manager", &server)?;
    CONTROLLER_MANAGER.start(
        &bin.join("kube-controller-manager"),
        &[
            format!("--kubeconfig={}", cm.display()),
            format!("--authentication-kubeconfig={}", cm.display()),
            format!("--authorization-kubeconfig={}", cm.display()),
            format!("--service-account-private-key-file={}", p("sa.key")),
            format!("--root-ca-file={}", p("ca.crt")),
            format!("--cluster-signing-cert-file={}", p("ca.crt")),
            format!("--cluster-signing-key-file={}", p("ca.key")),
            "--use-service-account-credentials=true".into(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--profiling=false".into(),
        ],
    )?;
    let sched = kubeconfig("scheduler", &server)?;
    SCHEDULER.start(
        &bin.join("kube-scheduler"),
        &[
            format!("--kubeconfig={}", sched.display()),
            format!("--authentication-kubeconfig={}", sched.display()),
            format!("--authorization-kubeconfig={}", sched.display()),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--profiling=false".into(),
        ],
    )?;

    let containerd_conf = containerd_config()?;
    CONTAINERD.start(
        Path::new("/usr/bin/containerd"),
        &[format!("--config={}", containerd_conf.display())],
    )?;
    wait_for(
        "containerd's socket",
        &CONTAINERD,
        Duration::from_secs(30),
        || succeeds(ctr().args(["version"])),
    )?;
    pause_image()?;

    let kubelet_conf = kubelet_config(&node)?;
    let kubelet_kc = kubeconfig("kubelet", &server)?;
    KUBELET.start(
        &bin.join("kubelet"),
        &[
            format!("--config={}", kubelet_conf.display()),
            format!("--kubeconfig={}", kubelet_kc.display()),
            format!("--root-dir={}/kubelet", STATE_DIR),
            format!("--cert-dir={}/kubelet-pki", STATE_DIR),
            format!("--hostname-override={}", node.name),
            format!("--node-ip={}", node.ip),
        ],
    )?;
    let proxy_kc = kubeconfig("kube-proxy", &server)?;
    KUBE_PROXY.start(
        &bin.join("kube-proxy"),
        &[
            format!("--kubeconfig={}", proxy_kc.display()),
            format!("--hostname-override={}", node.name),
            format!("--cluster-cidr={POD_CIDR}"),
            "--proxy-mode=iptables".into(),
            // Leave the host's conntrack settings alone.
            "--conntrack-max-per-core=0".into(),
            "--conntrack-tcp-timeout-established=0".into(),
            "--conntrack-tcp-timeout-close-wait=0".into(),
            "--metrics-bind-address=127.0.0.1:10249".into(),
            "--healthz-bind-address=127.0.0.1:10256".into(),
        ],
    )?;
    wait_for(
        "the node to be Ready",
        &KUBELET,
        Duration::from_secs(180),
        || node_ready(&node),
    )?;
    let _ = admin;
    log(format!(
        "node {} Ready ({:.0?})",
        node.name,
        started.elapsed()
    ));
    Ok(Endpoints::current())
}

/// `ctr` on the cluster's containerd, in the namespace the kubelet's images live in.
pub fn ctr() -> Command {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address")
        .arg(containerd_socket())
        .args(["--namespace", "k8s.io"]);
    cmd
}

/// Whether the cluster's containerd already has `image`.
pub fn has_image(image: &str) -> bool {
    ctr().args(["images", "ls", "-q"]).output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l == image)
    })
}

fn pause_image() -> anyhow::Result<()> {
    if has_image(PAUSE_IMAGE) {
        return Ok(());
    }
    let root = tempdir("pause")?;
    let rootfs = root.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    std::fs::copy(bin_dir().join("pause"), rootfs.join("pause"))?;
    crate::image::build_and_import(
        &root,
        PAUSE_IMAGE,
        &crate::image::Config {
            entrypoint: vec!["/pause".into()],
            cmd: vec![],
            user: "65535:65535".into(),
            env: vec![],
        },
    )?;
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

pub fn tempdir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("writepath-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Stops everything and restores the host.
pub fn down() -> anyhow::Result<()> {
    let started = Instant::now();
    // The kubelet first, so it does not restart what we stop; then every pod's containers.
    KUBE_PROXY.stop(Duration::from_secs(5));
    KUBELET.stop(Duration::from_secs(10));
    kill_containers();
    CONTAINERD.stop(Duration::from_secs(10));
    kill_shims();
    for d in [&SCHEDULER, &CONTROLLER_MANAGER, &APISERVER, &ETCD] {
        d.stop(Duration::from_secs(10));
    }
    unmount_below(&[state(), run_dir()]);
    remove_network();
    remove_cgroups();
    restore_host_state();
    if state().exists() {
        std::fs::remove_dir_all(state())
            .with_context(|| format!("removing {}", state().display()))?;
    }
    if run_dir().exists() {
        std::fs::remove_dir_all(run_dir())
            .with_context(|| format!("removing {}", run_dir().display()))?;
    }
    log(format!("down ({:.0?})", started.elapsed()));
    Ok(())
}

/// Every container runc runs for the cluster's containerd, killed and deleted.
fn kill_containers() {
    let root = run_dir().join("runc/k8s.io");
    if !root.is_dir() {
        return;
    }
    let Ok(list) = output(
        Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"]),
    ) else {
        return;
    };
    for id in list.lines().filter(|l| !l.is_empty()) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["kill", id, "KILL"])
            .stderr(Stdio::null())
            .status();
    }
    std::thread::sleep(Duration::from_millis(500));
    for id in list.lines().filter(|l| !l.is_empty()) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", id])
            .stderr(Stdio::null())
            .status();
    }
}

/// containerd-shim-runc-v2 processes whose socket or state is under our run directory.
fn kill_shims() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("/usr/bin/containerd-shim") && cmdline.contains(RUN_DIR) {
            // SAFETY: kill with a pid read from /proc.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Unmounts every mount point below `dirs`, deepest first (lazily: a busy mount goes when its
/// last user does).
fn unmount_below(dirs: &[PathBuf]) {
    for _ in 0..3 {
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mount)
            .filter(|p| dirs.iter().any(|d| Path::new(p).starts_with(d)))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&p)
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn unescape_mount(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn remove_network() {
    // The network namespaces containerd's CNI made for pods.
    if let Ok(entries) = std::fs::read_dir("/var/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("cni-") {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(e.path())
                    .stderr(Stdio::null())
                    .status();
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = Command::new("ip")
        .args(["link", "delete", CNI_BRIDGE])
        .stderr(Stdio::null())
        .status();
    // kube-proxy's own clean-up of its rules (iptables is then restored as saved).
    let proxy = bin_dir().join("kube-proxy");
    if proxy.is_file() {
        let _ = Command::new(proxy)
            .args(["--cleanup", "--proxy-mode=iptables"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The cgroups the kubelet and runc made (`kubepods` in every hierarchy), deepest first.
fn remove_cgroups() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if !fields.get(sep + 1).is_some_and(|t| t.starts_with("cgroup")) {
            continue;
        }
        let root = PathBuf::from(unescape_mount(fields[4]));
        for top in ["kubepods", "kubepods.slice"] {
            let dir = root.join(top);
            if dir.is_dir() {
                remove_cgroup_tree(&dir);
            }
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    // A cgroup with a process still in it (should not happen once everything is killed) stays,
    // and the host comparison then names it.
    for _ in 0..20 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Saved once per `up` (a second `up` keeps the first one's, taken before anything ran).
fn saved_dir() -> PathBuf {
    state().join("host")
}

fn save_host_state() -> anyhow::Result<()> {
    let dir = saved_dir();
    if dir.join("done").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    let mut sysctls = String::new();
    for s in SYSCTLS {
        if let Ok(v) = std::fs::read_to_string(format!("/proc/sys/{s}")) {
            sysctls.push_str(&format!("{s}={}\n", v.trim()));
        }
    }
    std::fs::write(dir.join("sysctl"), sysctls)?;
    for tool in ["iptables", "ip6tables"] {
        std::fs::write(
            dir.join(tool),
            output(&mut Command::new(format!("{tool}-save")))?,
        )?;
    }
    let absent: Vec<&str> = HOST_PATHS
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    std::fs::write(dir.join("absent-paths"), absent.join("\n"))?;
    std::fs::write(dir.join("done"), "")?;
    Ok(())
}

fn restore_host_state() {
    let dir = saved_dir();
    if let Ok(sysctls) = std::fs::read_to_string(dir.join("sysctl")) {
        for line in sysctls.lines() {
            if let Some((k, v)) = line.split_once('=') {
                let _ = std::fs::write(format!("/proc/sys/{k}"), v);
            }
        }
    }
    for tool in ["iptables", "ip6tables"] {
        let Ok(saved) = std::fs::read_to_string(dir.join(tool)) else {
            continue;
        };
        // Every table now present is emptied of what the cluster added, then the saved rules are
        // put back.
        if let Ok(now) = output(&mut Command::new(format!("{tool}-save"))) {
            for table in now.lines().filter_map(|l| l.strip_prefix('*')) {
                let _ = Command::new(tool).args(["-t", table, "-F"]).status();
                let _ = Command::new(tool).args(["-t", table, "-X"]).status();
            }
        }
        let mut restore = Command::new(format!("{tool}-restore"));
        restore.stdin(Stdio::piped());
        if let Ok(mut child) = restore.spawn() {
            use std::io::Write as _;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(saved.as_bytes());
            }
            let _ = child.wait();
        }
    }
    for path in std::fs::read_to_string(dir.join("absent-paths"))
        .unwrap_or_default()
        .lines()
    {
        if HOST_PATHS.contains(&path) {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Stops `component` (SIGTERM, as a crash-free restart would) and brings the cluster up again.
pub fn restart(component: &str) -> anyhow::Result<()> {
    let Some(daemon) = DAEMONS.iter().find(|d| d.name == component) else {
        let names: Vec<&str> = DAEMONS.iter().map(|d| d.name).collect();
        bail!("no component {component}: one of {}", names.join(", "));
    };
    ensure!(
        daemon.running(),
        "{component} is not running: is the cluster up?"
    );
    daemon.stop(Duration::from_secs(10));
    up().map(|_| ())
}

/// Whether every component runs (no output).
pub fn status_quiet() -> bool {
    DAEMONS.iter().all(|d| d.running())
}

/// `cargo xtask cluster status`: each component, the node, and the endpoints.
pub fn status() -> anyhow::Result<bool> {
    let mut all = true;
    for d in DAEMONS {
        match d.pid() {
            Some(pid) => println!("{:<24} running (pid {pid})", d.name),
            None => {
                all = false;
                println!("{:<24} stopped", d.name);
            }
        }
    }
    if all {
        let node = Node::detect()?;
        let ready = node_ready(&node);
        println!(
            "{:<24} {}",
            format!("node/{}", node.name),
            if ready { "Ready" } else { "NotReady" }
        );
        all &= ready;
    }
    if all {
        print!("{}", Endpoints::current().lines());
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------------------
// What "the host as it was" means, for the test.

/// The host state `down` must restore: mount points, cgroups (two levels deep in every
/// hierarchy), network links and namespaces, iptables rules, the saved sysctls, and which of
/// [`HOST_PATHS`] exist.
#[derive(PartialEq, Eq, Debug)]
pub struct HostSnapshot {
    items: BTreeSet<String>,
}

impl HostSnapshot {
    pub fn take() -> anyhow::Result<HostSnapshot> {
        let mut items = BTreeSet::new();
        for line in std::fs::read_to_string("/proc/self/mountinfo")?.lines() {
            if let Some(p) = line.split(' ').nth(4) {
                items.insert(format!("mount {}", unescape_mount(p)));
            }
        }
        for entry in std::fs::read_dir("/sys/fs/cgroup")?.flatten() {
            let h = entry.path();
            for sub in std::fs::read_dir(&h).into_iter().flatten().flatten() {
                if sub.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = sub.file_name().to_string_lossy().into_owned();
                    // The tests' own temporary cgroups come and go.
                    if !name.starts_with("writepath-test") {
                        items.insert(format!("cgroup {}", sub.path().display()));
                    }
                }
            }
        }
        for line in output(Command::new("ip").args(["-o", "link", "show"]))?.lines() {
            if let Some(name) = line.split(": ").nth(1) {
                items.insert(format!("link {}", name.split('@').next().unwrap_or(name)));
            }
        }
        for e in std::fs::read_dir("/var/run/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            items.insert(format!("netns {}", e.file_name().to_string_lossy()));
        }
        for tool in ["iptables-save", "ip6tables-save"] {
            for line in output(&mut Command::new(tool))?.lines() {
                // Rules and user chains; not comments, counters or empty built-in tables.
                if line.starts_with("-A ") || (line.starts_with(':') && !is_builtin_chain(line)) {
                    items.insert(format!("{tool} {line}"));
                }
            }
        }
        for s in SYSCTLS {
            if let Ok(v) = std::fs::read_to_string(format!("/proc/sys/{s}")) {
                items.insert(format!("sysctl {s}={}", v.trim()));
            }
        }
        for p in HOST_PATHS {
            if Path::new(p).exists() {
                items.insert(format!("path {p}"));
            }
        }
        Ok(HostSnapshot { items })
    }

    /// What is in `self` and not in `later`, and the reverse, as `- item` / `+ item` lines.
    pub fn diff(&self, later: &HostSnapshot) -> Vec<String> {
        let mut out: Vec<String> = self
            .items
            .difference(&later.items)
            .map(|i| format!("- {i}"))
            .collect();
        out.extend(
            later
                .items
                .difference(&self.items)
                .map(|i| format!("+ {i}")),
        );
        out
    }
}

fn is_builtin_chain(line: &str) -> bool {
    let name = line[1..].split(' ').next().unwrap_or("");
    matches!(
        name,
        "INPUT" | "OUTPUT" | "FORWARD" | "PREROUTING" | "POSTROUTING"
    )
}
