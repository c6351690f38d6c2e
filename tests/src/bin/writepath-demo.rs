//! The bundled demo (`cargo xtask demo`): a small service in a real runc container, recorded
//! with `writepath record --cgroup`; the suggestions and the patch for a bundled Deployment are
//! printed; then the round trip: the same container runs again with a read-only root and a
//! tmpfs at exactly the suggested paths, recorded again, and every write must succeed
//! ("verified: N volumes, 0 failing writes").
//!
//! The service reads its config, writes a pid file, logs, a cache, upload temp files with
//! random names, and saves its state with temp-then-rename; `/tmp` is a tmpfs (a volume the
//! pod already has).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use writepath::report::Report;
use writepath_tests::container::{Bundle, Tmpfs};
use writepath_tests::{writepath_bin, TempCgroup};

/// The service script (also the demo image's, `cargo xtask image`); run here once, with no argument.
const SERVICE: &str = include_str!("../../fixtures/demo/service.sh");

/// The Deployment the patch is printed for.
const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo/deployment.yaml");

fn fail(msg: &str) -> ! {
    eprintln!("writepath-demo: {msg}");
    std::process::exit(2);
}

/// Runs the bundle while `writepath record --cgroup` watches `cg`; returns the container's
/// success and the report.
fn record_run(bundle: &Bundle, cg: &Path, report: &Path, print_table: bool) -> (bool, Report) {
    let ready = report.with_extension("ready");
    let _ = std::fs::remove_file(&ready);
    let mut recorder = Command::new(writepath_bin())
        .args(["record", "--cgroup"])
        .arg(cg)
        .arg("--ready-file")
        .arg(&ready)
        .arg("--report")
        .arg(report)
        .args(if print_table {
            &[][..]
        } else {
            &["-o", "json"][..]
        })
        .stdout(if print_table {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start writepath record: {e}")));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        if let Ok(Some(status)) = recorder.try_wait() {
            fail(&format!("writepath record exited early ({status})"));
        }
        if Instant::now() > deadline {
            fail("writepath record not ready after 60s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, output) = bundle.run();
    if !status.success() {
        eprintln!("writepath-demo: the container failed ({status}): {output}");
    }
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let recorded = recorder.wait().map(|s| s.success()).unwrap_or(false);
    if !recorded {
        fail("writepath record failed");
    }
    let report = Report::load(report).unwrap_or_else(|e| fail(&format!("{e}")));
    (status.success(), report)
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        fail("must run as root (it loads eBPF programs and runs a container)");
    }
    let cg = TempCgroup::new("demo");
    let cgroup_path = cg.runc_path("app");
    let out_dir: PathBuf = std::env::current_dir().expect("cwd").join("target/demo");
    std::fs::create_dir_all(&out_dir).expect("target/demo");
    let report_path = out_dir.join("report.json");

    // 1. Record the service with a writable root.
    println!("== writepath demo: recording a service in a runc container (busybox rootfs)\n");
    let bundle = Bundle::new(
        "demo",
        SERVICE,
        &[Tmpfs { path: "/tmp" }],
        false,
        &cgroup_path,
    );
    let (ok, report) = record_run(&bundle, &cg.dir, &report_path, true);
    drop(bundle);
    if !ok {
        fail("the service failed with a writable root; nothing to verify");
    }
    println!("\n== report: {}", report_path.display());

    // 2. The patch for the bundled Deployment.
    println!(
        "\n== writepath patch --report {} -f {MANIFEST}\n",
        report_path.display()
    );
    let status = Command::new(writepath_bin())
        .arg("patch")
        .arg("--report")
        .arg(&report_path)
        .args(["-f", MANIFEST])
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run writepath patch: {e}")));
    if !status.success() {
        fail("writepath patch failed");
    }

    // 3. The round trip: read-only root, a tmpfs at exactly the suggested paths.
    let suggestions = writepath::suggest::suggest(std::slice::from_ref(&report));
    let volumes: Vec<String> = suggestions
        .containers
        .iter()
        .flat_map(|c| c.volumes.iter().map(|v| v.mount_path.to_string()))
        .collect();
    println!(
        "\n== verifying: the same container with a read-only root and {} volumes ({})\n",
        volumes.len(),
        volumes.join(", ")
    );
    let mut tmpfs = vec![Tmpfs { path: "/tmp" }];
    tmpfs.extend(volumes.iter().map(|v| Tmpfs { path: v }));
    let ro = Bundle::new("demo-ro", SERVICE, &tmpfs, true, &cgroup_path);
    let (ok, verified) = record_run(&ro, &cg.dir, &out_dir.join("verify.json"), false);
    drop(ro);
    let failing: Vec<String> = verified
        .targets
        .iter()
        .flat_map(|t| &t.writes)
        .filter(|w| w.read_only_failures() > 0)
        .map(|w| format!("  {} failed {} times", w.path, w.read_only_failures()))
        .collect();
    for f in &failing {
        println!("{f}");
    }
    println!(
        "{}: {} volumes, {} failing writes (container {})",
        if failing.is_empty() && ok {
            "verified"
        } else {
            "not verified"
        },
        volumes.len(),
        failing.len(),
        if ok { "succeeded" } else { "failed" }
    );
    std::process::exit(if failing.is_empty() && ok { 0 } else { 1 });
}
