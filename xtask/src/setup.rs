//! `cargo xtask setup`: installs what the build and the tests need, idempotently. Each step
//! checks first and only acts when something is missing; a second run changes nothing and
//! says so. Steps and versions follow what is verified to work on Debian 12 x86_64:
//! LLVM 22 (Debian), bpf-linker 0.13.0 built against it, an LLVM-22 nightly with rust-src
//! for the eBPF crate, runc and busybox-static for container tests, bpftrace for the
//! benchmark's comparisons, qemu and cpio for the kernel matrix, kubernetes-validate.

use std::process::Command;

use anyhow::{bail, Context as _};

use crate::run_cmd;

const LLVM_MAJOR: &str = "22";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// An LLVM-22 nightly, used when the installed `nightly` has moved to another LLVM.
const PINNED_NIGHTLY: &str = "nightly-2026-05-20";
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "build-essential",
    "runc",
    "busybox-static",
    "python3-pip",
    "bpftrace",
    "qemu-system-x86",
    "cpio",
];

/// What setup found: the toolchain to build the eBPF crate with.
pub struct Toolchain {
    /// Value for `AYA_BPF_TOOLCHAIN`.
    pub bpf_toolchain: String,
}

/// Runs every step; returns the toolchain to use.
pub fn run() -> anyhow::Result<Toolchain> {
    let mut changed = Vec::new();
    apt(&mut changed)?;
    let bpf_toolchain = nightly(&mut changed)?;
    bpf_linker(&mut changed)?;
    tracefs(&mut changed)?;
    python_tools(&mut changed)?;
    tools_present()?;
    if changed.is_empty() {
        println!("xtask setup: everything already in place, nothing to do");
    } else {
        println!("xtask setup: done ({})", changed.join(", "));
    }
    Ok(Toolchain { bpf_toolchain })
}

/// What the local cluster (`cargo xtask cluster up`) needs beyond the build and the tests:
/// etcd, containerd, the CNI plugins, iptables and conntrack (kube-proxy), umoci and skopeo (the
/// images), openssl (the certificates), and Go to build the Kubernetes components.
const CLUSTER_PACKAGES: &[&str] = &[
    "etcd-server",
    "containerd",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "umoci",
    "skopeo",
    "openssl",
    "curl",
];

/// Installs the cluster's Debian packages (idempotent) and checks that Go is there.
pub fn cluster_packages() -> anyhow::Result<()> {
    let mut changed = Vec::new();
    install(CLUSTER_PACKAGES, &mut changed)?;
    if !changed.is_empty() {
        println!("xtask setup: done ({})", changed.join(", "));
    }
    let go = Command::new("go").arg("version").output();
    match go {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!(
            "go is not installed: the cluster's Kubernetes components are built from the Go module \
             proxy with Go 1.24 or newer"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn apt(changed: &mut Vec<String>) -> anyhow::Result<()> {
    install(APT_PACKAGES, changed)
}

fn install(packages: &[&str], changed: &mut Vec<String>) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        })
        .collect();
    if missing.is_empty() {
        println!("xtask setup: Debian packages present");
        return Ok(());
    }
    if !is_root() {
        bail!(
            "xtask setup needs root to install Debian packages: {}",
            missing.join(" ")
        );
    }
    println!("xtask setup: apt-get install {}", missing.join(" "));
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))
        .context("apt-get update failed: is the Debian mirror reachable?")?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )?;
    changed.push(format!("installed {}", missing.join(" ")));
    Ok(())
}

fn llvm_major(toolchain: &str) -> Option<String> {
    let out = Command::new("rustup")
        .args(["run", toolchain, "rustc", "-vV"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("LLVM version: "))?;
    Some(
        line["LLVM version: ".len()..]
            .split('.')
            .next()?
            .to_string(),
    )
}

fn nightly(changed: &mut Vec<String>) -> anyhow::Result<String> {
    let wanted = std::env::var("AYA_BPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    let toolchain = if llvm_major(&wanted).as_deref() == Some(LLVM_MAJOR) {
        wanted
    } else {
        if llvm_major(PINNED_NIGHTLY).as_deref() != Some(LLVM_MAJOR) {
            println!("xtask setup: {wanted} is not an LLVM {LLVM_MAJOR} nightly; installing {PINNED_NIGHTLY}");
            run_cmd(Command::new("rustup").args([
                "toolchain", "install", PINNED_NIGHTLY, "--profile", "minimal", "--component", "rust-src",
                "--no-self-update",
            ]))
            .with_context(|| format!("could not install {PINNED_NIGHTLY}: set AYA_BPF_TOOLCHAIN to an installed LLVM-{LLVM_MAJOR} nightly"))?;
            changed.push(format!("installed {PINNED_NIGHTLY}"));
        }
        PINNED_NIGHTLY.to_string()
    };
    let components = Command::new("rustup")
        .args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            &toolchain,
        ])
        .output()
        .context("rustup not found")?;
    if !String::from_utf8_lossy(&components.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        run_cmd(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            &toolchain,
        ]))?;
        changed.push(format!("added rust-src to {toolchain}"));
    }
    println!("xtask setup: eBPF toolchain {toolchain} (LLVM {LLVM_MAJOR})");
    Ok(toolchain)
}

fn bpf_linker(changed: &mut Vec<String>) -> anyhow::Result<()> {
    let version = Command::new("bpf-linker").arg("--version").output();
    let ok_version =
        version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION));
    let linked = Command::new("sh")
        .args([
            "-c",
            &format!("ldd \"$(command -v bpf-linker)\" | grep -q libLLVM.so.{LLVM_MAJOR}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if ok_version && linked {
        println!("xtask setup: bpf-linker {BPF_LINKER_VERSION} (LLVM {LLVM_MAJOR}) present");
        return Ok(());
    }
    println!(
        "xtask setup: cargo install bpf-linker {BPF_LINKER_VERSION} against LLVM {LLVM_MAJOR}"
    );
    let llvm = format!("/usr/lib/llvm-{LLVM_MAJOR}");
    let path = format!("{llvm}/bin:{}", std::env::var("PATH").unwrap_or_default());
    // --no-default-features: the default llvm-23 feature links against libLLVM 22 and fails.
    run_cmd(
        Command::new("cargo")
            .env("PATH", path)
            .env("LLVM_PREFIX", &llvm)
            .args([
                "+stable",
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
            ])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{LLVM_MAJOR}"),
            ]),
    )
    .context("bpf-linker did not build: is crates.io reachable and llvm-22-dev installed?")?;
    changed.push("installed bpf-linker".into());
    Ok(())
}

fn tracefs(changed: &mut Vec<String>) -> anyhow::Result<()> {
    if std::path::Path::new("/sys/kernel/tracing/events/syscalls").is_dir() {
        return Ok(());
    }
    if !is_root() {
        bail!("tracefs is not mounted at /sys/kernel/tracing and mounting it needs root");
    }
    run_cmd(Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]))?;
    changed.push("mounted tracefs".into());
    Ok(())
}

fn python_tools(changed: &mut Vec<String>) -> anyhow::Result<()> {
    if Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    println!("xtask setup: pip install kubernetes-validate");
    let python = if Command::new("python3").arg("--version").output().is_ok() {
        "python3"
    } else {
        "python"
    };
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "install", "--quiet", "kubernetes-validate"]);
    // Debian's system Python refuses pip without this; a user Python ignores it.
    cmd.env("PIP_BREAK_SYSTEM_PACKAGES", "1");
    run_cmd(&mut cmd).context("pip install kubernetes-validate failed: is PyPI reachable?")?;
    changed.push("installed kubernetes-validate".into());
    Ok(())
}

fn tools_present() -> anyhow::Result<()> {
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    bail!("kubectl is not installed (the patch tests use it as the oracle); install kubectl 1.32+")
}

/// cargo-fuzz and the nightly it runs on, installed when missing (only `cargo xtask fuzz` needs
/// them, so plain `setup` does not install them). Returns the nightly toolchain name.
pub fn cargo_fuzz() -> anyhow::Result<String> {
    let toolchain = std::env::var("AYA_BPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        println!("xtask setup: cargo install cargo-fuzz");
        run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
            .context("could not install cargo-fuzz from crates.io")?;
    }
    let nightly = Command::new("rustup")
        .args(["run", &toolchain, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        bail!("cargo fuzz needs a nightly toolchain: install one, or set AYA_BPF_TOOLCHAIN to it");
    }
    Ok(toolchain)
}
