//! Real runc containers for tests and the demo: a busybox-static root filesystem, an OCI
//! bundle from `runc spec`, placed in a cgroup we choose (kubelet-style `cgroupsPath`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Where Debian's busybox-static lives.
pub const BUSYBOX: &str = "/bin/busybox";

/// An OCI bundle in a temporary directory, deleted (and its container with it) on drop.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// Container id given to runc.
    pub id: String,
}

/// A tmpfs mount in the container, as an emptyDir would be.
pub struct Tmpfs<'a> {
    /// Mount point in the container.
    pub path: &'a str,
}

impl Bundle {
    /// Builds a bundle whose process runs `/bin/sh -c script` in a busybox root filesystem with
    /// the usual image directories, `tmpfs` mounts at `tmpfs`, and the given root read-only flag.
    /// `cgroup` is a path below the cgroup2 root (runc's cgroupfs `cgroupsPath`).
    pub fn new(
        name: &str,
        script: &str,
        tmpfs: &[Tmpfs<'_>],
        readonly_root: bool,
        cgroup: &str,
    ) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix(&format!("wp-bundle-{name}-"))
            .tempdir_in("/tmp")
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        make_rootfs(&rootfs);
        let status = Command::new("runc")
            .arg("spec")
            .current_dir(dir.path())
            .status()
            .expect("runc spec");
        assert!(status.success(), "runc spec failed");
        let config_path = dir.path().join("config.json");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        config["root"] = json!({ "path": "rootfs", "readonly": readonly_root });
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["/bin/sh", "-c", script]);
        config["process"]["env"] = json!(["PATH=/bin:/sbin:/usr/bin", "HOME=/root"]);
        config["linux"]["cgroupsPath"] = json!(cgroup);
        let mounts = config["mounts"].as_array_mut().unwrap();
        for t in tmpfs {
            mounts.push(json!({
                "destination": t.path, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", "size=16m"]
            }));
        }
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let id = format!("wp-{name}-{}", std::process::id());
        Bundle { dir, id }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root filesystem on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Runs the container to completion; returns its exit status and combined output.
    pub fn run(&self) -> (std::process::ExitStatus, String) {
        let out = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .output()
            .expect("runc run");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

/// A minimal image: busybox and its applets, and the directories images usually have (with
/// some content in /etc and /var/cache, like a real image).
pub fn make_rootfs(root: &Path) {
    for d in [
        "bin",
        "sbin",
        "etc",
        "tmp",
        "var/log/nginx",
        "var/cache/app",
        "var/cache/nginx",
        "var/lib",
        "run",
        "usr/share/nginx/html",
        "root",
        "proc",
        "sys",
        "dev",
        "usr/bin",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copy {BUSYBOX}: {e} (install busybox-static)"));
    for applet in [
        "sh", "mkdir", "touch", "echo", "cat", "sleep", "mv", "rm", "ln", "ls", "sed", "true",
        "date", "cp", "mkfifo", "test", "seq", "chmod", "id",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/app.conf"), "listen 8080\n").unwrap();
    std::fs::write(root.join("var/cache/app/seed.db"), "image content\n").unwrap();
    std::fs::write(
        root.join("usr/share/nginx/html/index.html"),
        "<h1>hi</h1>\n",
    )
    .unwrap();
    // As in Debian-based images.
    std::os::unix::fs::symlink("../run", root.join("var/run")).unwrap();
}
