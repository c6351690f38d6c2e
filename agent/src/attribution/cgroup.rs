//! cgroup path → pod UID, QoS class and container id/runtime, for the paths kubelet and the
//! container runtimes make: containerd, CRI-O and Docker (cri-dockerd), with the cgroupfs and
//! systemd drivers, on cgroup v1, v2 and hybrid hosts.
//!
//! Pure string parsing, no I/O: the daemon reads the path (the cgroup id's directory below the
//! cgroup2 mount, or a `/proc/<pid>/cgroup` line) and hands it here.

/// The QoS class of a pod, from its cgroup's parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    /// Directly below `kubepods`: requests equal limits.
    Guaranteed,
    /// Below `kubepods/burstable`.
    Burstable,
    /// Below `kubepods/besteffort`.
    BestEffort,
}

/// The container runtime, as far as the cgroup path tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// containerd (`cri-containerd-<id>.scope` with systemd).
    Containerd,
    /// CRI-O (`crio-<id>`).
    CriO,
    /// Docker (`docker-<id>.scope`, or `/docker/<id>` outside Kubernetes).
    Docker,
    /// A bare 64-hex directory (cgroupfs driver): containerd or cri-dockerd; the pod status's
    /// `containerID` scheme tells which.
    Unknown,
}

impl Runtime {
    /// The name used in reports ("containerd", "cri-o", "docker", "" when unknown).
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Unknown => "",
        }
    }

    /// The runtime named by a pod status `containerID` scheme (`containerd://…`).
    pub fn from_scheme(scheme: &str) -> Runtime {
        match scheme {
            "containerd" => Runtime::Containerd,
            "cri-o" | "crio" => Runtime::CriO,
            "docker" => Runtime::Docker,
            _ => Runtime::Unknown,
        }
    }
}

/// What a cgroup path says about the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Pod UID (with dashes, as in `metadata.uid`), when the path is a pod's.
    pub pod_uid: Option<String>,
    /// QoS class, when the path is a pod's.
    pub qos: Option<Qos>,
    /// The container, when the path is a container's (not the pod's own cgroup).
    pub container: Option<ContainerCgroup>,
}

/// A container's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// The 64-hex container id.
    pub id: String,
    /// The runtime the path names.
    pub runtime: Runtime,
}

/// Parses a cgroup path (below the hierarchy's mount, e.g.
/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`).
/// Returns `None` for paths that are neither a pod's nor a container's, and for a runtime's
/// helper cgroups (CRI-O's `crio-conmon-<id>.scope`).
pub fn parse(path: &str) -> Option<CgroupInfo> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut info = CgroupInfo {
        pod_uid: None,
        qos: None,
        container: None,
    };
    let mut pod_at = None;
    for (i, part) in parts.iter().enumerate() {
        if let Some(uid) = pod_uid(part) {
            info.pod_uid = Some(uid);
            info.qos = Some(qos_of(&parts[..i]));
            pod_at = Some(i);
            break;
        }
    }
    let container_part = match pod_at {
        Some(i) => parts.get(i + 1),
        // Outside Kubernetes: Docker's `/docker/<id>` and `/system.slice/docker-<id>.scope`.
        None => parts.last(),
    };
    if let Some(part) = container_part {
        match container_id(part) {
            Some(c) => info.container = Some(c),
            None if pod_at.is_some() => return None,
            None => {}
        }
        if pod_at.is_none() {
            // A bare 64-hex name outside a pod is only a container below `docker/`.
            let parent = parts.len().checked_sub(2).and_then(|i| parts.get(i));
            if info.container.as_ref().map(|c| c.runtime) == Some(Runtime::Unknown) {
                if parent == Some(&"docker") {
                    if let Some(c) = info.container.as_mut() {
                        c.runtime = Runtime::Docker;
                    }
                } else {
                    info.container = None;
                }
            }
        }
    }
    if info.pod_uid.is_none() && info.container.is_none() {
        return None;
    }
    Some(info)
}

/// The cgroup path in `/proc/<pid>/cgroup` text: the unified (`0::`) line when it names a pod
/// or container (v2 and hybrid hosts), else the first v1 controller line that does (`memory`,
/// `pids`, `cpu,cpuacct`, … on v1 hosts, where the unified line is `/`).
pub fn path_from_proc_cgroup(text: &str) -> Option<&str> {
    let mut v1 = None;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(hier), Some(ctrl), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if parse(path).is_none() {
            continue;
        }
        if hier == "0" && ctrl.is_empty() {
            return Some(path);
        }
        if v1.is_none() && !ctrl.starts_with("name=") {
            v1 = Some(path);
        }
    }
    v1
}

/// The pod UID of a path component: `pod<uid>` (cgroupfs) or `…-pod<uid_with_underscores>.slice`
/// (systemd, which cannot have `-` inside a unit name's component).
fn pod_uid(part: &str) -> Option<String> {
    let (raw, systemd) = match part.strip_suffix(".slice") {
        Some(unit) => (unit.rsplit_once("-pod").map(|(_, u)| u)?, true),
        None => (part.strip_prefix("pod")?, false),
    };
    let uid = if systemd {
        raw.replace('_', "-")
    } else {
        raw.to_string()
    };
    is_uid(&uid).then_some(uid)
}

/// A UUID (8-4-4-4-12 hex) as Kubernetes generates pod UIDs; static pods have a 32-hex hash.
fn is_uid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let hex = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_hexdigit());
    if groups.len() == 1 {
        return groups[0].len() == 32 && hex(groups[0]);
    }
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && hex(g))
}

fn qos_of(parents: &[&str]) -> Qos {
    match parents.last().copied().unwrap_or("") {
        p if p.ends_with("burstable") || p.ends_with("burstable.slice") => Qos::Burstable,
        p if p.ends_with("besteffort") || p.ends_with("besteffort.slice") => Qos::BestEffort,
        _ => Qos::Guaranteed,
    }
}

/// The container id and runtime of a container cgroup's directory name.
fn container_id(part: &str) -> Option<ContainerCgroup> {
    let unit = part.strip_suffix(".scope").unwrap_or(part);
    let (runtime, id) = if let Some(id) = unit.strip_prefix("cri-containerd-") {
        (Runtime::Containerd, id)
    } else if let Some(id) = unit.strip_prefix("crio-") {
        if id.starts_with("conmon-") {
            return None;
        }
        (Runtime::CriO, id)
    } else if let Some(id) = unit.strip_prefix("docker-") {
        (Runtime::Docker, id)
    } else {
        (Runtime::Unknown, unit)
    };
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| ContainerCgroup {
        id: id.to_string(),
        runtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5d1f3c2b8a7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c";
    const UID: &str = "0b6a3b8e-1b8a-4d0f-9f0a-6a9b6a0d3e2f";
    const UID_: &str = "0b6a3b8e_1b8a_4d0f_9f0a_6a9b6a0d3e2f";

    fn container(path: &str) -> (Option<String>, Option<Qos>, Option<(String, Runtime)>) {
        let i = parse(path).unwrap_or_else(|| panic!("{path}: not parsed"));
        (i.pod_uid, i.qos, i.container.map(|c| (c.id, c.runtime)))
    }

    /// Real layouts, one row per runtime × driver (the v1 controller directories and the v2 /
    /// hybrid unified hierarchy use the same paths below their mount).
    #[test]
    fn kubelet_paths_of_every_runtime_and_driver() {
        use Qos::*;
        use Runtime::*;
        let rows: Vec<(String, Qos, Runtime)> = vec![
            // containerd, cgroupfs driver.
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Burstable, Unknown),
            (format!("/kubepods/besteffort/pod{UID}/{ID}"), BestEffort, Unknown),
            (format!("/kubepods/pod{UID}/{ID}"), Guaranteed, Unknown),
            // containerd, systemd driver.
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                Burstable,
                Containerd,
            ),
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                BestEffort,
                Containerd,
            ),
            (
                format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                Guaranteed,
                Containerd,
            ),
            // kind / nested kubelet (`--cgroup-root=/kubelet`), systemd driver.
            (
                format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                BestEffort,
                Containerd,
            ),
            // CRI-O, systemd driver (its default) and cgroupfs driver.
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID}.scope"),
                Burstable,
                CriO,
            ),
            (format!("/kubepods/besteffort/pod{UID}/crio-{ID}"), BestEffort, CriO),
            // Docker via cri-dockerd, systemd and cgroupfs drivers.
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{ID}.scope"),
                BestEffort,
                Docker,
            ),
            (format!("/kubepods/pod{UID}/{ID}"), Guaranteed, Unknown),
        ];
        for (path, qos, runtime) in rows {
            assert_eq!(
                container(&path),
                (
                    Some(UID.to_string()),
                    Some(qos),
                    Some((ID.to_string(), runtime))
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn pod_cgroups_and_helpers() {
        let pod = parse(&format!("/kubepods/burstable/pod{UID}")).unwrap();
        assert_eq!(pod.pod_uid.as_deref(), Some(UID));
        assert_eq!(pod.container, None);
        // CRI-O's conmon runs in the pod's slice but is not a container.
        assert_eq!(
            parse(&format!(
                "/kubepods.slice/kubepods-pod{UID_}.slice/crio-conmon-{ID}.scope"
            )),
            None
        );
        for not_pod in [
            "/",
            "/kubepods",
            "/kubepods.slice/kubepods-burstable.slice",
            "/system.slice/containerd.service",
            "/user.slice/user-1000.slice/session-2.scope",
            "/kubepods/burstable/podnot-a-uid/x",
        ] {
            assert_eq!(parse(not_pod), None, "{not_pod}");
        }
    }

    #[test]
    fn static_pod_uid_is_a_hash() {
        let uid = "6a1e7b4d2c9f8e3a5b0c1d2e3f4a5b6c";
        let i = parse(&format!("/kubepods/burstable/pod{uid}/{ID}")).unwrap();
        assert_eq!(i.pod_uid.as_deref(), Some(uid));
    }

    #[test]
    fn docker_outside_kubernetes() {
        for path in [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
        ] {
            assert_eq!(
                container(&path),
                (None, None, Some((ID.to_string(), Runtime::Docker))),
                "{path}"
            );
        }
        // A 64-hex name elsewhere is not known to be a container.
        assert_eq!(parse(&format!("/somewhere/{ID}")), None);
    }

    /// `/proc/<pid>/cgroup` of a container process on each kind of host.
    #[test]
    fn proc_cgroup_of_v1_v2_and_hybrid_hosts() {
        let sd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
        );
        let v2 = format!("0::{sd}\n");
        let hybrid = format!("12:memory:{sd}\n11:pids:{sd}\n1:name=systemd:{sd}\n0::{sd}\n");
        let fs = format!("/kubepods/besteffort/pod{UID}/{ID}");
        // Pure v1: the unified line is `/`.
        let v1 = format!(
            "12:pids:{fs}\n11:cpu,cpuacct:{fs}\n4:memory:{fs}\n1:name=systemd:{fs}\n0::/\n"
        );
        assert_eq!(path_from_proc_cgroup(&v2), Some(sd.as_str()));
        assert_eq!(path_from_proc_cgroup(&hybrid), Some(sd.as_str()));
        assert_eq!(path_from_proc_cgroup(&v1), Some(fs.as_str()));
        assert_eq!(path_from_proc_cgroup("0::/user.slice\n"), None);
    }

    /// Samples read from /proc/<pid>/cgroup on the local cluster of `cargo xtask cluster up`
    /// (kubelet 1.34 with containerd 1.6 and runc 1.1, cgroupfs driver, hybrid cgroups: the
    /// `0::` line of the unified hierarchy): the demo service (BestEffort), the agent
    /// (Burstable) and its pod's sandbox. Parsed by the general rule, without a special case.
    #[test]
    fn samples_from_the_local_cluster() {
        for (path, uid, qos, id) in [
            (
                "/kubepods/besteffort/pod58378f76-c3e7-41eb-926c-b34f7e01b621/6f9de650ec1e661484a4dba14c4073e025dea45cd057e36a030e15337272aeff",
                "58378f76-c3e7-41eb-926c-b34f7e01b621",
                Qos::BestEffort,
                "6f9de650ec1e661484a4dba14c4073e025dea45cd057e36a030e15337272aeff",
            ),
            (
                "/kubepods/burstable/pod86c50115-283a-441d-ac2a-71e35721b18b/62fc08bab126d5f525f8224b422d41d29d49f37454bfbb607640cb6028c94474",
                "86c50115-283a-441d-ac2a-71e35721b18b",
                Qos::Burstable,
                "62fc08bab126d5f525f8224b422d41d29d49f37454bfbb607640cb6028c94474",
            ),
            (
                "/kubepods/burstable/pod86c50115-283a-441d-ac2a-71e35721b18b/6e3aa9826b1565679e0a7f09a4327337d52f1bc242df8b7089bb6a91a70552eb",
                "86c50115-283a-441d-ac2a-71e35721b18b",
                Qos::Burstable,
                "6e3aa9826b1565679e0a7f09a4327337d52f1bc242df8b7089bb6a91a70552eb",
            ),
        ] {
            assert_eq!(
                container(path),
                (Some(uid.to_string()), Some(qos), Some((id.to_string(), Runtime::Unknown))),
                "{path}"
            );
        }
    }
}
