//! The `writepath record` contract: the ready line, command mode, exit codes, signals.

use std::process::Command;
use std::time::{Duration, Instant};

use writepath::report::{OpName, Report};
use writepath_tests::*;

#[test]
fn record_command_mode_reports_and_announces_itself() {
    if !privileged("record_command_mode_reports_and_announces_itself") {
        return;
    }
    let d = scratch_dir("cli");
    let f = d.path().join("from-child");
    let script = format!(
        "sh -c 'echo x > {0}.grandchild' & echo x > {0}; wait; exit 3",
        f.display()
    );
    let out = Command::new(writepath_bin())
        .args(["record", "-o", "json", "--", "sh", "-c", &script])
        .output()
        .expect("run writepath");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(
        stderr
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("writepath: recording")),
        "first stderr line announces the recording: {stderr}"
    );
    let r =
        Report::from_json(&String::from_utf8_lossy(&out.stdout), "stdout").expect("JSON report");
    assert_eq!(r.version, 1);
    assert_eq!(r.recording.mode, "command");
    assert_eq!(
        r.recording.exit_code,
        Some(3),
        "the command's own exit code is kept"
    );
    assert_recorded(&r, &f.display().to_string(), OpName::Create);
    assert_recorded(&r, &format!("{}.grandchild", f.display()), OpName::Create);
    assert!(
        !std::path::Path::new(&r.recording.cgroup).exists(),
        "the record cgroup is removed"
    );
}

#[test]
fn record_table_and_report_file() {
    if !privileged("record_table_and_report_file") {
        return;
    }
    let d = scratch_dir("table");
    let report = d.path().join("r.json");
    let f = d.path().join("bad\x1bname");
    let out = Command::new(writepath_bin())
        .arg("record")
        .arg("--report")
        .arg(&report)
        .args(["--", "sh", "-c"])
        .arg(format!("touch '{}'", f.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("PATH") && table.contains("RESULT") && table.contains("MOUNT"),
        "{table}"
    );
    assert!(
        table.contains("bad\\x1bname"),
        "escape sequences are escaped: {table}"
    );
    assert!(
        !table.contains('\x1b'),
        "no raw escape reaches the terminal"
    );
    assert!(table.contains("kernel: seen"), "{table}");
    let r = Report::load(&report).expect("report file");
    assert!(write_of(&r, f.display().to_string().as_bytes()).is_some());
}

#[test]
fn record_usage_errors_exit_2() {
    // No privileges needed: these fail before anything is loaded.
    let bin = writepath_bin();
    if !bin.exists() {
        assert!(!in_ci(), "no writepath binary in CI");
        eprintln!("skipping test - no binary at {}", bin.display());
        return;
    }
    let none = Command::new(&bin).arg("record").output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("nothing to record"));
    let both = Command::new(&bin)
        .args(["record", "--cgroup", "/x", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        both.status.code(),
        Some(2),
        "--cgroup and a command conflict"
    );
    let dur = Command::new(&bin)
        .args(["record", "--duration", "1s", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(dur.status.code(), Some(2), "--duration needs --cgroup");
}

#[test]
fn record_cgroup_errors_name_the_directory() {
    if !privileged("record_cgroup_errors_name_the_directory") {
        return;
    }
    let out = Command::new(writepath_bin())
        .args(["record", "--cgroup", "/nonexistent/cg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cg"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not "No such file or directory": what is wrong with the directory, and where cgroup v2 is.
    for (dir, says) in [
        ("/nonexistent/cg", "does not exist"),
        ("/tmp", "has no cgroup.procs; cgroup v2 is mounted at"),
        ("/etc/hostname", "is not a directory"),
    ] {
        let out = Command::new(writepath_bin())
            .args(["record", "--duration", "1s", "--cgroup", dir])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{dir} is not a cgroup v2 directory: it {says}")),
            "{stderr}"
        );
        assert!(!stderr.contains("os error"), "{stderr}");
    }
}

#[test]
fn record_cgroup_stops_after_duration_or_removal() {
    if !privileged("record_cgroup_stops_after_duration_or_removal") {
        return;
    }
    let cg = TempCgroup::new("duration");
    let start = Instant::now();
    let out = Command::new(writepath_bin())
        .args(["record", "-o", "json", "--duration", "1s", "--cgroup"])
        .arg(&cg.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let r = Report::from_json(&String::from_utf8_lossy(&out.stdout), "stdout").unwrap();
    assert_eq!(r.recording.mode, "cgroup");

    // Removal of the watched cgroup ends the recording too.
    let gone = TempCgroup::new("removed");
    let rec = std::process::Command::new(writepath_bin())
        .args(["record", "-o", "json", "--cgroup"])
        .arg(&gone.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    drop(gone);
    let out = rec.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Root is not needed: a non-root user with CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH
/// (tracefs is root's alone) records; without them `record` exits 2 with one line naming what
/// is missing.
#[test]
fn records_as_a_non_root_user_with_capabilities_only() {
    if !privileged("records_as_a_non_root_user_with_capabilities_only") || !tool("setpriv") {
        return;
    }
    let as_nobody = |caps: &str| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
        if !caps.is_empty() {
            cmd.args(["--inh-caps", caps, "--ambient-caps", caps]);
        }
        cmd.arg(writepath_bin());
        cmd
    };
    let cg = TempCgroup::new("caps");
    // A place uid 65534 may create its ready file in.
    let ready = std::env::temp_dir().join(format!("wp-caps-ready-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let rec = as_nobody("+bpf,+perfmon,+dac_read_search")
        .args(["record", "-o", "json", "--ready-file"])
        .arg(&ready)
        .arg("--cgroup")
        .arg(&cg.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = scratch_dir("caps");
    let target = d.path().join("written");
    let driver = env!("CARGO_BIN_EXE_syscall-driver");
    let status = run_in(
        &cg.dir,
        std::path::Path::new(driver),
        &[&format!("open:{}", target.display())],
    );
    assert!(status.success());
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
    let out = rec.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&ready);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r = Report::from_json(&String::from_utf8_lossy(&out.stdout), "stdout").expect("report");
    assert_recorded(&r, &target.display().to_string(), OpName::Create);

    for (caps, says) in [
        ("", "needs root, or CAP_BPF and CAP_PERFMON"),
        ("+bpf,+perfmon", "needs root or CAP_DAC_READ_SEARCH"),
    ] {
        let out = as_nobody(caps)
            .args(["record", "--", "true"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "caps {caps:?}: {stderr}");
        assert!(stderr.contains(says), "caps {caps:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

/// `record -o json`: stdout is the report and nothing else; CMD's own output goes to stderr.
#[test]
fn record_json_stdout_holds_only_the_report() {
    if !privileged("record_json_stdout_holds_only_the_report") {
        return;
    }
    let out = Command::new(writepath_bin())
        // What it prints (hello-42) is not in its command line, which the report keeps.
        .args([
            "record",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            "echo hello-$((40 + 2))",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    Report::from_json(&stdout, "stdout").unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(!stdout.contains("hello-42"), "{stdout}");
    assert!(
        stderr.contains("hello-42"),
        "the command's output is kept: {stderr}"
    );
}

/// A `--report` that cannot be written is refused before the command runs (exit 2, the path
/// named), so a long recording is never made for nothing.
#[test]
fn record_report_path_is_checked_before_the_command_runs() {
    if !privileged("record_report_path_is_checked_before_the_command_runs") {
        return;
    }
    let d = scratch_dir("reportpath");
    let marker = d.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let missing = d.path().join("no/such/dir/r.json");
    for (report, says) in [
        (missing.as_path(), "does not exist"),
        (d.path(), "is a directory"),
    ] {
        let out = Command::new(writepath_bin())
            .args(["record", "--report"])
            .arg(report)
            .args(["--", "sh", "-c", &touch])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&report.display().to_string()), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!marker.exists(), "the command must not have run");
    }
}

/// A command that does not exist is refused at once, before any program is loaded.
#[test]
fn record_refuses_a_missing_command_before_loading_anything() {
    if !privileged("record_refuses_a_missing_command_before_loading_anything") {
        return;
    }
    for cmd in ["/nonexistent/tool", "no-such-tool-on-path"] {
        let out = Command::new(writepath_bin())
            .args(["record", "--", cmd])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("cannot run {cmd}")), "{stderr}");
        assert!(
            !stderr.contains("writepath: recording"),
            "nothing was attached: {stderr}"
        );
    }
}

/// SIGTERM (or SIGINT) to `record -- CMD` is forwarded to CMD; what is still running after the
/// grace period is killed; the report is written and the record cgroup removed.
#[test]
fn record_forwards_signals_kills_leftovers_and_still_reports() {
    if !privileged("record_forwards_signals_kills_leftovers_and_still_reports") {
        return;
    }
    let d = scratch_dir("signals");
    for (sig, script) in [
        // Exits on the forwarded signal: the shell's trap writes a file, then exits.
        (libc::SIGTERM, "trap 'echo bye > {d}/trapped; exit 0' TERM; echo x > {d}/before; while :; do sleep 0.1; done"),
        // Ignores it, and leaves a grandchild behind: both are killed after the grace period.
        (libc::SIGINT, "trap '' INT TERM; (trap '' INT TERM; sleep 300) & echo x > {d}/before; while :; do sleep 0.1; done"),
    ] {
        let _ = std::fs::remove_file(d.path().join("before"));
        let script = script.replace("{d}", &d.path().display().to_string());
        let ready = d.path().join("ready");
        let _ = std::fs::remove_file(&ready);
        let rec = Command::new(writepath_bin())
            .args(["record", "-o", "json", "--grace", "2s", "--ready-file"])
            .arg(&ready)
            .args(["--", "sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.path().join("before").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(rec.id() as i32, sig) };
        let started = Instant::now();
        let mut rec = rec;
        while rec.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = rec.kill();
                panic!("signal {sig}: record did not end within 60 s of the signal");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = rec.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "signal {sig}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(30), "signal {sig}: {stderr}");
        let r = Report::from_json(&String::from_utf8_lossy(&out.stdout), "stdout").unwrap();
        assert_recorded(&r, &d.path().join("before").display().to_string(), OpName::Create);
        if sig == libc::SIGTERM {
            assert_recorded(&r, &d.path().join("trapped").display().to_string(), OpName::Create);
        }
        assert!(
            !std::path::Path::new(&r.recording.cgroup).exists(),
            "signal {sig}: the record cgroup is removed (nothing left in it): {stderr}"
        );
    }
}

/// The default table groups the writes per directory (counts, a few samples); `-o wide`
/// lists every path; both show CMD's exit code.
#[test]
fn record_table_groups_per_directory_and_wide_lists_every_path() {
    if !privileged("record_table_groups_per_directory_and_wide_lists_every_path") {
        return;
    }
    let d = scratch_dir("grouped");
    let many = d.path().join("many");
    let files: Vec<String> = (0..40)
        .map(|i| format!("{}/file-{i}", many.display()))
        .collect();
    let script = format!(
        "mkdir {}; touch {}; exit 7",
        many.display(),
        files.join(" ")
    );
    let run = |extra: &[&str]| {
        let out = Command::new(writepath_bin())
            .arg("record")
            .args(extra)
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let grouped = run(&[]);
    let row = grouped
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&many.display().to_string()))
        .unwrap_or_else(|| panic!("a row for {}: {grouped}", many.display()));
    assert_eq!(
        row.split_whitespace().nth(1),
        Some(files.len().to_string().as_str()),
        "the row counts the directory's paths: {row}"
    );
    // The writes table ends at the first blank line; the suggestions follow.
    let writes_table = grouped.split("\n\n").next().unwrap_or_default();
    let listed = files
        .iter()
        .filter(|f| writes_table.contains(f.as_str()))
        .count();
    assert_eq!(listed, 0, "not every path is printed: {grouped}");
    assert!(grouped.contains("-o wide"), "{grouped}");
    assert!(
        grouped.lines().count() < files.len(),
        "fewer lines than paths: {grouped}"
    );

    let wide = run(&["-o", "wide"]);
    for f in &files {
        assert!(wide.contains(f.as_str()), "{f}: {wide}");
    }
    for table in [&grouped, &wide] {
        assert!(
            table
                .lines()
                .any(|l| l.contains("exit") && l.ends_with(" 7")),
            "CMD's exit code is shown: {table}"
        );
    }
}

/// `-o yaml` is listed in the help, so it works: the report as YAML, and nothing else on
/// stdout.
#[test]
fn record_and_verify_print_yaml() {
    if !privileged("record_and_verify_print_yaml") {
        return;
    }
    let d = scratch_dir("yaml");
    let f = d.path().join("out");
    let out = Command::new(writepath_bin())
        .args(["record", "-o", "yaml", "--", "sh", "-c"])
        .arg(format!("echo hello-$((40 + 2)); echo x > {}", f.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Report = serde_yaml::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(r.version, 1);
    assert_recorded(&r, &f.display().to_string(), OpName::Create);
    assert!(!stdout.contains("hello-42"), "{stdout}");
    assert!(stderr.contains("hello-42"), "{stderr}");

    let outcome = |format: &str| {
        let out = Command::new(writepath_bin())
            .args(["verify", "-o", format, "--mount"])
            .arg(d.path())
            .args(["--", "sh", "-c"])
            .arg(format!("echo x > {}", f.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "verify -o {format}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let yaml: serde_json::Value = serde_yaml::from_str(&outcome("yaml")).expect("yaml");
    let json: serde_json::Value = serde_json::from_str(&outcome("json")).expect("json");
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(!keys(&json).is_empty());
    assert_eq!(keys(&yaml), keys(&json), "the same outcome document");
}

/// Writes that fail with EROFS on a mount that is read-only itself need no volume (the
/// suggestions say so): the warning must not send the reader to a "missing volume".
#[test]
fn record_read_only_warning_matches_the_suggestions() {
    if !privileged("record_read_only_warning_matches_the_suggestions") || !tool("unshare") {
        return;
    }
    let d = scratch_dir("romount");
    let ro = d.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    // A private mount namespace: the read-only bind mount never reaches the host.
    let script = format!(
        "mount --bind {0} {0} && mount -o remount,bind,ro {0} && exec \"$0\" record -- sh -c 'touch {0}/a; echo x > {0}/b'",
        ro.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(writepath_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("EROFS"))
        .unwrap_or_else(|| panic!("an EROFS warning: {stderr}"));
    assert!(
        stdout.contains("no volume needed") && !stdout.contains("missing volume"),
        "{stdout}"
    );
    assert!(!warning.contains("missing volume"), "{warning}");
    assert!(warning.contains("read-only"), "{warning}");
}
