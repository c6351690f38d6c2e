//! The bundled demo (`cargo xtask demo`): a small service in a real runc container, recorded
//! with `writepath record --cgroup`, and the result printed.
//!
//! The service reads its config, writes a pid file, logs, a cache, upload temp files with
//! random names, and saves its state with temp-then-rename; `/tmp` is a tmpfs (a volume the
//! pod already has).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use writepath_tests::container::{Bundle, Tmpfs};
use writepath_tests::{writepath_bin, TempCgroup};

const SERVICE: &str = r#"
cat /etc/app.conf > /dev/null
echo $$ > /run/demo.pid
mkdir -p /var/log/demo
for i in 1 2 3 4 5; do echo "request $i" >> /var/log/demo/access.log; done
mkdir -p /var/cache/app/blobs
for i in $(seq 1 20); do echo blob > /var/cache/app/blobs/blob-$i; done
for i in $(seq 1 30); do f=/tmp/upload-$RANDOM$RANDOM; echo data > $f; rm $f; done
mkdir -p /var/lib/demo
echo '{"version": 1}' > /var/lib/demo/state.json.tmp && mv /var/lib/demo/state.json.tmp /var/lib/demo/state.json
sleep 0.5
rm /run/demo.pid
"#;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("writepath-demo: must run as root (it loads eBPF programs and runs a container)");
        std::process::exit(2);
    }
    let cg = TempCgroup::new("demo");
    let root = writepath::capture::loader::cgroup2_root().expect("cgroup2");
    let rel = cg
        .dir
        .strip_prefix(&root)
        .expect("below cgroup2")
        .display()
        .to_string();
    let bundle = Bundle::new(
        "demo",
        SERVICE,
        &[Tmpfs { path: "/tmp" }],
        false,
        &format!("/{rel}/app"),
    );
    let out_dir = std::env::current_dir().expect("cwd").join("target/demo");
    std::fs::create_dir_all(&out_dir).expect("target/demo");
    let report = out_dir.join("report.json");
    let ready = out_dir.join("ready");
    let _ = std::fs::remove_file(&ready);

    println!("== writepath demo: recording a service in a runc container (busybox rootfs)\n");
    let mut recorder = Command::new(writepath_bin())
        .args(["record", "--cgroup"])
        .arg(&cg.dir)
        .arg("--ready-file")
        .arg(&ready)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::inherit())
        .spawn()
        .expect("start writepath record");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        if let Ok(Some(status)) = recorder.try_wait() {
            eprintln!("writepath-demo: writepath record exited early ({status})");
            std::process::exit(2);
        }
        if Instant::now() > deadline {
            eprintln!("writepath-demo: writepath record not ready after 60s");
            std::process::exit(2);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, output) = bundle.run();
    if !status.success() {
        eprintln!("writepath-demo: the container failed ({status}): {output}");
    }
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let status = recorder.wait().expect("wait writepath");
    println!("\n== report: {}", report.display());
    std::process::exit(if status.success() { 0 } else { 2 });
}
