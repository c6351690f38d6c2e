//! `cargo xtask image`: OCI images built without a daemon or a registry, imported into the
//! local cluster's containerd.
//!
//! A root filesystem laid out in a directory becomes an OCI image with `umoci` (init, new,
//! unpack, copy, repack, config), then a `docker-archive` tarball with `skopeo` (the format
//! `ctr images import` names most reliably), which `ctr` imports into containerd's `k8s.io`
//! namespace — where the kubelet finds it with `imagePullPolicy: Never`.
//!
//! Images:
//! - [`AGENT_IMAGE`]: the release `writepath` binary and the shared libraries `ldd` names, an
//!   empty `/tmp` and `/var/lib/writepath` (both volumes in the DaemonSet), no shell. It runs as
//!   uid 0: the agent needs CAP_BPF and CAP_PERFMON, and Kubernetes grants added capabilities
//!   only to uid 0 (a non-root container gets them in its bounding set, not as effective ones).
//! - [`DEMO_IMAGE`]: busybox-static and the demo service (`tests/fixtures/demo/service.sh`),
//!   the workload `cargo xtask demo` records in runc, here as a Deployment.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context as _};

use crate::{run_cmd, workspace_root};

/// The agent's image, as the local overlay (`deploy/local/`) names it.
pub const AGENT_IMAGE: &str = concat!("localhost/writepath:", env!("CARGO_PKG_VERSION"));
/// The demo service's image.
pub const DEMO_IMAGE: &str = concat!("localhost/writepath-demo:", env!("CARGO_PKG_VERSION"));

/// An image's runtime configuration.
pub struct Config {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
    pub env: Vec<String>,
}

/// Builds the agent and demo images, writes them to `target/images/*.tar` and imports them into
/// the cluster's containerd.
pub fn run() -> anyhow::Result<()> {
    ensure!(
        crate::cluster::status_quiet(),
        "the cluster is not up: run `cargo xtask cluster up` first (images are imported into its containerd)"
    );
    let bin = crate::setup_and_build(true, &["writepath"])?;
    agent(&bin.join("writepath"))?;
    demo()?;
    Ok(())
}

/// Builds and imports the agent image from the release binary `writepath`.
pub fn agent(writepath: &Path) -> anyhow::Result<()> {
    let root = crate::cluster::tempdir("agent-image")?;
    let rootfs = root.join("rootfs");
    for dir in ["usr/local/bin", "tmp", "var/lib/writepath", "etc"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(writepath, rootfs.join("usr/local/bin/writepath"))
        .with_context(|| format!("copying {}", writepath.display()))?;
    copy_libraries(writepath, &rootfs)?;
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/:/usr/sbin/nologin\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    build_and_import(
        &root,
        AGENT_IMAGE,
        &Config {
            entrypoint: vec!["/usr/local/bin/writepath".into()],
            cmd: vec!["agent".into()],
            user: "0:0".into(),
            env: vec![],
        },
    )?;
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

/// Builds and imports the demo service's image.
pub fn demo() -> anyhow::Result<()> {
    let root = crate::cluster::tempdir("demo-image")?;
    let rootfs = root.join("rootfs");
    for dir in [
        "bin",
        "etc/demo",
        "root",
        "run",
        "tmp",
        "var/log",
        "var/cache",
        "var/lib",
    ] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .context("/bin/busybox (Debian's busybox-static, from cargo xtask setup)")?;
    let applets = String::from_utf8(
        Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .context("busybox --list")?
            .stdout,
    )?;
    for applet in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    let fixtures = workspace_root().join("tests/fixtures/demo");
    std::fs::copy(
        fixtures.join("service.sh"),
        rootfs.join("etc/demo/service.sh"),
    )?;
    std::fs::write(rootfs.join("etc/app.conf"), "listen = 8080\n")?;
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    build_and_import(
        &root,
        DEMO_IMAGE,
        &Config {
            entrypoint: vec!["/bin/sh".into(), "/etc/demo/service.sh".into()],
            cmd: vec!["serve".into()],
            user: "0:0".into(),
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
        },
    )?;
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

/// The shared libraries `ldd` names for `binary`, copied to the same paths under `rootfs`.
fn copy_libraries(binary: &Path, rootfs: &Path) -> anyhow::Result<()> {
    let out = Command::new("ldd").arg(binary).output().context("ldd")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        let Some(path) = path else { continue };
        let target = rootfs.join(path.strip_prefix("/")?);
        std::fs::create_dir_all(target.parent().expect("absolute"))?;
        // The real file, not the symlink chain: the image has no /lib symlink farm.
        std::fs::copy(std::fs::canonicalize(&path)?, &target)
            .with_context(|| format!("copying {}", path.display()))?;
    }
    Ok(())
}

/// `dir/rootfs` → an OCI image named `name`, saved as `target/images/<name>.tar` and imported
/// into the cluster's containerd.
pub fn build_and_import(dir: &Path, name: &str, config: &Config) -> anyhow::Result<()> {
    let layout = dir.join("oci");
    let bundle = dir.join("bundle");
    let image = format!("{}:latest", layout.display());
    let umoci = |args: &[&str]| -> anyhow::Result<()> {
        run_cmd(Command::new("umoci").args(args).stdout(Stdio::null()))
            .with_context(|| format!("umoci {} for {name}", args[0]))
    };
    umoci(&["init", "--layout", &layout.display().to_string()])?;
    umoci(&["new", "--image", &image])?;
    umoci(&["unpack", "--image", &image, &bundle.display().to_string()])?;
    run_cmd(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.join("rootfs").display()))
            .arg(bundle.join("rootfs")),
    )?;
    umoci(&["repack", "--image", &image, &bundle.display().to_string()])?;
    let mut args: Vec<String> = vec!["config".into(), "--image".into(), image.clone()];
    for e in &config.entrypoint {
        args.push(format!("--config.entrypoint={e}"));
    }
    for c in &config.cmd {
        args.push(format!("--config.cmd={c}"));
    }
    for e in &config.env {
        args.push(format!("--config.env={e}"));
    }
    args.push(format!("--config.user={}", config.user));
    args.push("--config.workingdir=/".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    umoci(&refs)?;
    let out_dir = crate::target_dir().join("images");
    std::fs::create_dir_all(&out_dir)?;
    let file_name = name.rsplit('/').next().unwrap_or(name).replace(':', "-");
    let archive = out_dir.join(format!("{file_name}.tar"));
    let _ = std::fs::remove_file(&archive);
    run_cmd(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{image}"))
            .arg(format!("docker-archive:{}:{name}", archive.display())),
    )
    .with_context(|| format!("skopeo copy for {name}"))?;
    run_cmd(
        crate::cluster::ctr()
            .args(["images", "import"])
            .arg(&archive)
            .stdout(Stdio::null()),
    )
    .with_context(|| format!("ctr images import {}", archive.display()))?;
    ensure!(
        crate::cluster::has_image(name),
        "containerd does not list {name} after importing {}",
        archive.display()
    );
    eprintln!("xtask image: {name} ({})", archive.display());
    Ok(())
}
