//! Helpers for the privileged tests: preconditions, temporary cgroups, a recording of the real
//! `writepath` binary, processes started inside a cgroup, and report queries.
//!
//! Every privileged test calls [`privileged`] first: outside CI a missing precondition (not
//! root, no cgroup2, no binary) skips the test loudly; with `CI=true` it fails the test.

pub mod container;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use writepath::path::RawPath;
use writepath::report::{OpName, Report, Write};

/// Whether we run in CI (where a missing precondition is a failure).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks what privileged tests need. Returns false (after printing why) when the test should
/// be skipped; panics instead when running in CI.
pub fn privileged(test: &str) -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("not root".to_string());
    }
    if writepath::capture::loader::cgroup2_root().is_err() {
        missing.push("no cgroup2 hierarchy".to_string());
    }
    if !writepath_bin().exists() {
        missing.push(format!(
            "no binary at {} (cargo build -p writepath)",
            writepath_bin().display()
        ));
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    assert!(!in_ci(), "{test}: precondition missing in CI: {why}");
    eprintln!("skipping test {test} - {why}");
    false
}

/// Checks that the command-line tool `name` is installed. Returns false (after saying so) when
/// the test should be skipped; panics instead when running in CI.
pub fn tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if found {
        return true;
    }
    assert!(
        !in_ci(),
        "{name} is not installed (cargo xtask setup installs it)"
    );
    eprintln!("skipping test - {name} is not installed");
    false
}

/// The `writepath` binary: `$WRITEPATH_BIN`, else beside the test's target directory.
pub fn writepath_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WRITEPATH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // Tests run from target/<profile>/deps/, binaries from target/<profile>/.
    let mut dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    dir.join("writepath")
}

/// A cgroup v2 directory made for one test, removed (with anything left in it killed) on drop.
pub struct TempCgroup {
    /// The directory.
    pub dir: PathBuf,
}

impl TempCgroup {
    /// Makes `<cgroup2>/writepath-test/<name>-<pid>`.
    pub fn new(name: &str) -> TempCgroup {
        let root = writepath::capture::loader::cgroup2_root().expect("cgroup2");
        let dir = root
            .join("writepath-test")
            .join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TempCgroup { dir }
    }

    /// A runc `cgroupsPath` for a container in a child `leaf` of this cgroup: the path below the
    /// cgroup2 root, as runc's cgroupfs driver takes it.
    pub fn runc_path(&self, leaf: &str) -> String {
        let root = writepath::capture::loader::cgroup2_root().expect("cgroup2");
        let rel = self
            .dir
            .strip_prefix(&root)
            .expect("below the cgroup2 root");
        format!("/{}/{leaf}", rel.display())
    }

    /// Makes a child cgroup (removed with its parent).
    pub fn child(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        d
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.dir);
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a program as a member of `cgroup` and waits for it.
pub fn run_in(cgroup: &Path, program: &Path, args: &[&str]) -> ExitStatus {
    spawn_in(cgroup, program, args).wait().expect("wait")
}

/// Starts a program as a member of `cgroup` (it joins before exec).
pub fn spawn_in(cgroup: &Path, program: &Path, args: &[&str]) -> Child {
    let procs = cgroup.join("cgroup.procs");
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: only std::fs calls that map to open/write/close before exec.
    unsafe {
        cmd.pre_exec(move || std::fs::write(&procs, b"0"));
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()))
}

/// A running `writepath record --cgroup`.
pub struct Recording {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// stderr of the recorder, once stopped.
    pub stderr: String,
}

impl Recording {
    /// Starts recording `cgroup` and returns once the recorder says it is recording.
    pub fn start(cgroup: &Path) -> Recording {
        Self::start_with(cgroup, &[])
    }

    /// As [`Self::start`], with extra arguments.
    pub fn start_with(cgroup: &Path, extra: &[&str]) -> Recording {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready");
        let report = dir.path().join("report.json");
        let child = Command::new(writepath_bin())
            .arg("record")
            .arg("--cgroup")
            .arg(cgroup)
            .arg("--ready-file")
            .arg(&ready)
            .arg("--report")
            .arg(&report)
            .args(["-o", "json"])
            .args(extra)
            .stdout(Stdio::null())
            // A file, not a pipe: a verifier log can be larger than a pipe holds, and a
            // recorder blocked writing it would never exit.
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn writepath");
        let mut rec = Recording {
            child: Some(child),
            dir,
            stderr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Some(status) = rec.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let err = rec.take_stderr();
                panic!("writepath record exited before it was ready ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "writepath record not ready after 60s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        rec
    }

    fn take_stderr(&mut self) -> String {
        let text = std::fs::read(self.dir.path().join("stderr")).unwrap_or_default();
        // The verifier's log can be long; its end says what failed.
        let start = text.len().saturating_sub(4000);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Stops the recording with SIGINT and returns its report and the recorder's stderr.
    pub fn stop_with_stderr(mut self) -> (Report, String) {
        let report = self.stop_inner();
        (report, std::mem::take(&mut self.stderr))
    }

    /// Stops the recording with SIGINT and returns its report.
    pub fn stop(mut self) -> Report {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Report {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let status = child.wait().expect("wait writepath");
        self.child = Some(child);
        self.stderr = self.take_stderr();
        assert!(
            status.success(),
            "writepath record failed ({status}): {}",
            self.stderr
        );
        Report::load(&self.dir.path().join("report.json")).expect("report")
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every write of every target in the report.
pub fn all_writes(report: &Report) -> Vec<&Write> {
    report
        .targets
        .iter()
        .flat_map(|t| t.writes.iter())
        .collect()
}

/// The write of exactly `path` (bytes), if recorded.
pub fn write_of<'a>(report: &'a Report, path: &[u8]) -> Option<&'a Write> {
    all_writes(report)
        .into_iter()
        .find(|w| w.path.as_bytes() == path)
}

/// Asserts `path` was recorded with `op` (and returns it).
#[track_caller]
pub fn assert_recorded<'a>(report: &'a Report, path: &str, op: OpName) -> &'a Write {
    let Some(w) = write_of(report, path.as_bytes()) else {
        let seen: Vec<String> = all_writes(report)
            .iter()
            .map(|w| w.path.to_string())
            .collect();
        panic!("{path} not recorded; recorded: {seen:#?}");
    };
    assert!(
        w.ops.contains(&op),
        "{path}: expected {op:?} in {:?}",
        w.ops
    );
    w
}

/// Asserts nothing under `prefix` was recorded.
#[track_caller]
pub fn assert_none_under(report: &Report, prefix: &str) {
    let p = RawPath::from(prefix);
    let hits: Vec<String> = all_writes(report)
        .iter()
        .filter(|w| w.path.starts_with(&p))
        .map(|w| w.path.to_string())
        .collect();
    assert!(
        hits.is_empty(),
        "unexpected writes under {prefix}: {hits:?}"
    );
}

/// A scratch directory for a test's files, removed on drop.
pub fn scratch_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("wp-{name}-"))
        .tempdir_in("/tmp")
        .expect("tempdir")
}

/// A per-process tag made of letters only (the suggestion engine treats digits in names as
/// generated names, which would change what tests expect).
pub fn letter_tag() -> String {
    std::process::id()
        .to_string()
        .bytes()
        .map(|b| char::from(b'a' + (b - b'0')))
        .collect()
}

/// Removes directory trees on drop.
pub struct RemoveOnDrop(pub Vec<String>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
