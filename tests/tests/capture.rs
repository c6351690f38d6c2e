//! Capture tests on the real kernel: every syscall family, absolute and relative paths,
//! results, cgroup filtering and dedup. Each runs the real `writepath record --cgroup` and a
//! syscall driver inside a temporary cgroup, then reads the JSON report.

use std::path::Path;

use writepath::report::{OpName, Report};
use writepath_tests::*;

const DRIVER: &str = env!("CARGO_BIN_EXE_syscall-driver");

/// Records the driver running `ops` in a fresh cgroup.
fn record_ops(name: &str, ops: &[String]) -> Report {
    record_ops_with(name, ops, &[])
}

/// As [`record_ops`], with extra `writepath record` arguments.
fn record_ops_with(name: &str, ops: &[String], extra: &[&str]) -> Report {
    let cg = TempCgroup::new(name);
    let rec = Recording::start_with(&cg.dir, extra);
    let args: Vec<&str> = ops.iter().map(String::as_str).collect();
    let status = run_in(&cg.dir, Path::new(DRIVER), &args);
    assert!(status.success(), "driver failed: {status}");
    rec.stop()
}

fn p(dir: &Path, name: &str) -> String {
    format!("{}/{name}", dir.display())
}

#[test]
fn open_family_with_write_intent_only() {
    if !privileged("open_family_with_write_intent_only") {
        return;
    }
    let d = scratch_dir("open");
    let dp = d.path();
    std::fs::write(dp.join("existing"), b"x").unwrap();
    std::fs::write(dp.join("readme"), b"x").unwrap();
    let ops = vec![
        format!("open:{}", p(dp, "open")),
        format!("openat:{}", p(dp, "openat")),
        format!("openat2:{}", p(dp, "openat2")),
        format!("creat:{}", p(dp, "creat")),
        format!("append:{}", p(dp, "append")),
        format!("open-rdwr:{}", p(dp, "existing")),
        format!("open-trunc:{}", p(dp, "existing")),
        format!("tmpfile:{}", dp.display()),
        format!("open-ro:{}", p(dp, "readme")),
        format!("openat-ro:{}", p(dp, "readme")),
        format!("openat2-ro:{}", p(dp, "readme")),
    ];
    let r = record_ops("open", &ops);
    assert_recorded(&r, &p(dp, "open"), OpName::Create);
    assert_recorded(&r, &p(dp, "openat"), OpName::Create);
    assert_recorded(&r, &p(dp, "openat2"), OpName::Create);
    let creat = assert_recorded(&r, &p(dp, "creat"), OpName::Create);
    assert!(
        creat.ops.contains(&OpName::Truncate),
        "creat truncates: {:?}",
        creat.ops
    );
    assert_recorded(&r, &p(dp, "append"), OpName::Append);
    let existing = assert_recorded(&r, &p(dp, "existing"), OpName::OpenWrite);
    assert!(existing.ops.contains(&OpName::Truncate));
    assert_recorded(&r, &dp.display().to_string(), OpName::Tmpfile);
    assert!(
        write_of(&r, p(dp, "readme").as_bytes()).is_none(),
        "read-only opens must not be recorded"
    );
    let w = write_of(&r, p(dp, "open").as_bytes()).unwrap();
    assert_eq!(w.results.get("ok"), Some(&1), "{:?}", w.results);
    assert_eq!(w.processes, vec!["syscall-driver".to_string()]);
}

#[test]
fn directories_nodes_and_removal() {
    if !privileged("directories_nodes_and_removal") {
        return;
    }
    let d = scratch_dir("dirs");
    let dp = d.path();
    let ops = vec![
        format!("mkdir:{}", p(dp, "a")),
        format!("mkdirat:{}", p(dp, "b")),
        format!("mknod:{}", p(dp, "fifo")),
        format!("mknodat:{}", p(dp, "fifo2")),
        format!("rmdir:{}", p(dp, "a")),
        format!("unlinkat-dir:{}", p(dp, "b")),
        format!("unlink:{}", p(dp, "fifo")),
        format!("unlinkat:{}", p(dp, "fifo2")),
        format!("mkdir:{}", p(dp, "missing/parent")),
    ];
    let r = record_ops("dirs", &ops);
    let a = assert_recorded(&r, &p(dp, "a"), OpName::Mkdir);
    assert!(a.ops.contains(&OpName::Rmdir));
    let b = assert_recorded(&r, &p(dp, "b"), OpName::Mkdir);
    assert!(
        b.ops.contains(&OpName::Rmdir),
        "unlinkat(AT_REMOVEDIR) is an rmdir: {:?}",
        b.ops
    );
    assert!(assert_recorded(&r, &p(dp, "fifo"), OpName::Mknod)
        .ops
        .contains(&OpName::Unlink));
    assert!(assert_recorded(&r, &p(dp, "fifo2"), OpName::Mknod)
        .ops
        .contains(&OpName::Unlink));
    let failed = assert_recorded(&r, &p(dp, "missing/parent"), OpName::Mkdir);
    assert_eq!(
        failed.results.get("ENOENT"),
        Some(&1),
        "failed calls keep their result: {:?}",
        failed.results
    );
}

#[test]
fn rename_link_symlink_record_both_paths() {
    if !privileged("rename_link_symlink_record_both_paths") {
        return;
    }
    let d = scratch_dir("rename");
    let dp = d.path();
    for f in ["r1", "r2", "r3", "l1"] {
        std::fs::write(dp.join(f), b"x").unwrap();
    }
    let ops = vec![
        format!("rename:{}:{}", p(dp, "r1"), p(dp, "r1.new")),
        format!("renameat:{}:{}", p(dp, "r2"), p(dp, "r2.new")),
        format!("renameat2:{}:{}", p(dp, "r3"), p(dp, "r3.new")),
        format!("link:{}:{}", p(dp, "l1"), p(dp, "l1.hard")),
        format!("linkat:{}:{}", p(dp, "l1"), p(dp, "l1.hard2")),
        format!("symlink:../target/x:{}", p(dp, "sym")),
        format!("symlinkat:/abs/target:{}", p(dp, "sym2")),
    ];
    let r = record_ops("rename", &ops);
    for (from, to) in [("r1", "r1.new"), ("r2", "r2.new"), ("r3", "r3.new")] {
        let f = assert_recorded(&r, &p(dp, from), OpName::RenameFrom);
        let t = assert_recorded(&r, &p(dp, to), OpName::RenameTo);
        assert_eq!(t.related[0].to_string(), p(dp, from));
        assert_eq!(f.related[0].to_string(), p(dp, to));
    }
    let h = assert_recorded(&r, &p(dp, "l1.hard"), OpName::Link);
    assert_eq!(h.related[0].to_string(), p(dp, "l1"));
    assert_recorded(&r, &p(dp, "l1.hard2"), OpName::Link);
    let s = assert_recorded(&r, &p(dp, "sym"), OpName::Symlink);
    assert_eq!(
        s.related[0].to_string(),
        "../target/x",
        "symlink content is kept as written"
    );
    assert_recorded(&r, &p(dp, "sym2"), OpName::Symlink);
}

#[test]
fn metadata_truncate_xattr_and_sockets() {
    if !privileged("metadata_truncate_xattr_and_sockets") {
        return;
    }
    let d = scratch_dir("meta");
    let dp = d.path();
    std::fs::write(dp.join("f"), b"hello").unwrap();
    let f = p(dp, "f");
    let ops = vec![
        format!("truncate:{f}"),
        format!("chmod:{f}"),
        format!("fchmodat:{f}"),
        format!("chown:{f}"),
        format!("lchown:{f}"),
        format!("fchownat:{f}"),
        format!("utimensat:{f}"),
        format!("utimes:{f}"),
        format!("setxattr:{f}"),
        format!("removexattr:{f}"),
        format!("bind:{}", p(dp, "sock")),
        "bind-abstract:writepath-abstract".to_string(),
    ];
    let r = record_ops("meta", &ops);
    let w = assert_recorded(&r, &f, OpName::Truncate);
    for op in [
        OpName::Chmod,
        OpName::Chown,
        OpName::Utimes,
        OpName::Setxattr,
        OpName::Removexattr,
    ] {
        assert!(w.ops.contains(&op), "{op:?} missing from {:?}", w.ops);
    }
    assert_eq!(w.count, 10, "each call counted: {:?}", w.results);
    assert_recorded(&r, &p(dp, "sock"), OpName::Bind);
    assert!(
        all_writes(&r)
            .iter()
            .all(|w| !w.path.to_string().contains("writepath-abstract")),
        "abstract sockets have no path"
    );
    assert!(
        r.counters.not_a_path >= 1,
        "the abstract bind is counted: {:?}",
        r.counters
    );
}

#[test]
fn relative_paths_resolve_against_cwd_and_dirfd() {
    if !privileged("relative_paths_resolve_against_cwd_and_dirfd") {
        return;
    }
    let d = scratch_dir("rel");
    let dp = d.path();
    std::fs::create_dir_all(dp.join("cwd/sub")).unwrap();
    std::fs::create_dir_all(dp.join("fd")).unwrap();
    std::fs::write(dp.join("fd/old"), b"x").unwrap();
    let ops = vec![
        format!("cd:{}", p(dp, "cwd")),
        "open:rel-open".to_string(),
        "mkdir:sub/../made".to_string(),
        "open:./sub/./deep".to_string(),
        format!("dirfd:{}", p(dp, "fd")),
        "openat:at-open".to_string(),
        "mkdirat:at-dir".to_string(),
        "renameat:old:new".to_string(),
        "symlinkat:anything:at-sym".to_string(),
        "unlinkat:at-open".to_string(),
    ];
    let r = record_ops("rel", &ops);
    assert_recorded(&r, &p(dp, "cwd/rel-open"), OpName::Create);
    assert_recorded(&r, &p(dp, "cwd/made"), OpName::Mkdir);
    assert_recorded(&r, &p(dp, "cwd/sub/deep"), OpName::Create);
    let at = assert_recorded(&r, &p(dp, "fd/at-open"), OpName::Create);
    assert!(at.ops.contains(&OpName::Unlink));
    assert_recorded(&r, &p(dp, "fd/at-dir"), OpName::Mkdir);
    assert_recorded(&r, &p(dp, "fd/old"), OpName::RenameFrom);
    assert_recorded(&r, &p(dp, "fd/new"), OpName::RenameTo);
    assert_recorded(&r, &p(dp, "fd/at-sym"), OpName::Symlink);
    for w in all_writes(&r) {
        assert!(
            !w.issues.iter().any(|i| i.starts_with("base")),
            "{}: {:?}",
            w.path,
            w.issues
        );
    }
}

#[test]
fn odd_names_long_paths_symlinked_dirs_and_dotdot() {
    if !privileged("odd_names_long_paths_symlinked_dirs_and_dotdot") {
        return;
    }
    let d = scratch_dir("odd");
    let dp = d.path();
    // A directory chain whose file path is exactly 4095 bytes (PATH_MAX with the NUL).
    let mut deep = dp.to_path_buf();
    let base_len = dp.display().to_string().len();
    let mut len = base_len;
    while len + 201 + 10 < 4095 {
        deep.push("d".repeat(200));
        len += 201;
    }
    std::fs::create_dir_all(&deep).unwrap();
    let name_len = 4095 - len - 1;
    let long_file = format!("{}/{}", deep.display(), "f".repeat(name_len));
    assert_eq!(long_file.len(), 4095);
    let too_long = format!("{}/{}", deep.display(), "g".repeat(name_len + 10));
    std::fs::create_dir_all(dp.join("real")).unwrap();
    std::os::unix::fs::symlink(dp.join("real"), dp.join("link")).unwrap();
    let ops = vec![
        format!("open:{}", p(dp, "caf\\xe9-\\xff")),
        format!("open:{}", p(dp, "new\nline")),
        format!("open:{long_file}"),
        format!("open:{too_long}"),
        format!("open:{}", p(dp, "link/through-link")),
        format!("open:{}", p(dp, "real/../dotdot")),
    ];
    let r = record_ops("odd", &ops);
    let mut raw = dp.display().to_string().into_bytes();
    raw.extend_from_slice(b"/caf\xe9-\xff");
    let w = write_of(&r, &raw).expect("non-UTF-8 name recorded byte for byte");
    assert!(w.ops.contains(&OpName::Create));
    assert_recorded(&r, &p(dp, "new\nline"), OpName::Create);
    let long = assert_recorded(&r, &long_file, OpName::Create);
    assert!(
        long.issues.is_empty(),
        "a 4095-byte path is whole: {:?}",
        long.issues
    );
    let cut = all_writes(&r)
        .into_iter()
        .find(|w| w.issues.contains(&"truncated".to_string()))
        .expect("the over-long path is reported as truncated");
    assert_eq!(cut.results.get("ENAMETOOLONG"), Some(&1));
    assert!(r.counters.path_errors >= 1);
    // Paths are kept as the process named them: through the link, `..` folded lexically.
    assert_recorded(&r, &p(dp, "link/through-link"), OpName::Create);
    assert_recorded(&r, &p(dp, "dotdot"), OpName::Create);
}

#[test]
fn only_watched_cgroup_and_its_children() {
    if !privileged("only_watched_cgroup_and_its_children") {
        return;
    }
    let d = scratch_dir("filter");
    let dp = d.path();
    let watched = TempCgroup::new("watched");
    let child = watched.child("child");
    let other = TempCgroup::new("other");
    let rec = Recording::start(&watched.dir);
    let mut outside = spawn_in(
        &other.dir,
        Path::new(DRIVER),
        &[&format!("open:{}", p(dp, "outside"))],
    );
    let inside = run_in(
        &watched.dir,
        Path::new(DRIVER),
        &[&format!("open:{}", p(dp, "inside"))],
    );
    let nested = run_in(
        &child,
        Path::new(DRIVER),
        &[&format!("open:{}", p(dp, "nested"))],
    );
    assert!(outside.wait().unwrap().success() && inside.success() && nested.success());
    let r = rec.stop();
    assert_recorded(&r, &p(dp, "inside"), OpName::Create);
    assert_recorded(&r, &p(dp, "nested"), OpName::Create);
    assert!(
        write_of(&r, p(dp, "outside").as_bytes()).is_none(),
        "other cgroups are filtered"
    );
    assert!(
        r.targets.iter().any(|t| t.cgroup.path.ends_with("/child")),
        "child cgroup is its own target"
    );
}

#[test]
fn erofs_failures_are_captured() {
    if !privileged("erofs_failures_are_captured") {
        return;
    }
    let d = scratch_dir("erofs");
    let mnt = d.path().join("ro");
    std::fs::create_dir_all(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success(), "mount read-only tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _u = Unmount(&mnt);
    let m = mnt.display().to_string();
    let r = record_ops(
        "erofs",
        &[format!("open:{m}/file"), format!("mkdir:{m}/dir")],
    );
    let w = assert_recorded(&r, &format!("{m}/file"), OpName::Create);
    assert_eq!(w.results.get("EROFS"), Some(&1), "{:?}", w.results);
    assert_eq!(
        w.mount.as_ref().map(|m| m.to_string()),
        Some(m.clone()),
        "landed on the ro mount"
    );
    let dir = assert_recorded(&r, &format!("{m}/dir"), OpName::Mkdir);
    assert_eq!(dir.results.get("EROFS"), Some(&1));
    let t = r.targets.iter().find(|t| !t.writes.is_empty()).unwrap();
    assert!(
        t.mounts
            .iter()
            .any(|x| x.mount_point.to_string() == m && x.read_only),
        "mount table has the ro tmpfs"
    );
}

#[test]
fn repeated_writes_are_deduplicated_in_the_kernel() {
    if !privileged("repeated_writes_are_deduplicated_in_the_kernel") {
        return;
    }
    let d = scratch_dir("dedup");
    let f = p(d.path(), "hot");
    let r = record_ops("dedup", &[format!("repeat-open:{f}:100000")]);
    let w = assert_recorded(&r, &f, OpName::Create);
    let c = &r.counters;
    assert_eq!(w.count, 100_000, "every call is counted: {c:?}");
    assert_eq!(w.results.get("ok"), Some(&100_000));
    assert!(c.emitted < 100, "user space got few records: {c:?}");
    assert!(
        c.deduplicated >= 99_900,
        "the rest was folded in the kernel: {c:?}"
    );
    assert_eq!(c.dropped, 0);
    assert!(
        c.seen >= c.filtered + c.deduplicated + c.emitted,
        "counters add up: {c:?}"
    );
}

/// Every syscall kind in every form it has: an absolute path, a path relative to the cwd, and
/// (for the `*at` syscalls) a path relative to a directory fd. Both paths of the two-path
/// syscalls are checked.
#[test]
fn every_syscall_kind_absolute_cwd_relative_and_dirfd_relative() {
    if !privileged("every_syscall_kind_absolute_cwd_relative_and_dirfd_relative") {
        return;
    }
    every_syscall_kind(&[]);
}

/// The same table with the sys_enter/sys_exit pair, where this kernel allows it (5.17+).
#[test]
fn every_syscall_kind_with_the_enter_exit_pair() {
    if !privileged("every_syscall_kind_with_the_enter_exit_pair") || !design_loads_here("pair") {
        return;
    }
    every_syscall_kind(&["--hook", "pair"]);
}

/// The same table with the compat design (bounded loops, no `bpf_loop`), which every
/// supported kernel allows.
#[test]
fn every_syscall_kind_with_the_compat_design() {
    if !privileged("every_syscall_kind_with_the_compat_design") {
        return;
    }
    every_syscall_kind(&["--hook", "compat"]);
}

/// `--hook auto` (the default) picks the best design the kernel allows, and the report and the
/// `writepath: recording` line name it. Where the kernel matrix knows which design a kernel
/// must get (`WRITEPATH_EXPECT_DESIGN`), a silent fall back to a worse one fails here.
#[test]
fn the_design_in_use_is_the_best_this_kernel_allows_and_is_named() {
    if !privileged("the_design_in_use_is_the_best_this_kernel_allows_and_is_named") {
        return;
    }
    let k = kernel_report();
    let chosen = k["chosen"]
        .as_str()
        .expect("some design loads here")
        .to_string();
    let best_allowed = k["designs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["loads"] == true)
        .map(|d| d["design"].as_str().unwrap().to_string());
    assert_eq!(Some(chosen.clone()), best_allowed, "{k:#}");
    if let Ok(expected) = std::env::var("WRITEPATH_EXPECT_DESIGN") {
        assert_eq!(chosen, expected, "auto fell back on this kernel: {k:#}");
    }
    let d = scratch_dir("design");
    let cg = TempCgroup::new("design");
    let rec = Recording::start(&cg.dir);
    let target = p(d.path(), "f");
    let status = run_in(&cg.dir, Path::new(DRIVER), &[&format!("open:{target}")]);
    assert!(status.success());
    let (r, stderr) = rec.stop_with_stderr();
    assert_recorded(&r, &target, OpName::Create);
    assert_eq!(r.recording.hook, chosen, "report names the design");
    assert!(
        stderr.contains(&format!("{chosen} design")),
        "the recording line names the design: {stderr}"
    );
    assert_eq!(r.counters.probe_errors, 0, "{:?}", r.counters);
}

/// Every program of every design that loads here leaves the verifier far from its limit: at
/// most half of the 1M processed instructions, so a kernel that prunes a little worse still
/// loads it. Kernels before 5.16 do not report the count (docs/kernels.md).
#[test]
fn every_program_stays_under_half_the_verifier_limit() {
    if !privileged("every_program_stays_under_half_the_verifier_limit") {
        return;
    }
    let k = kernel_report();
    let mut checked = 0;
    for d in k["designs"].as_array().unwrap() {
        for prog in d["programs"].as_array().unwrap() {
            if let Some(n) = prog["verified_insns"].as_u64() {
                assert!(
                    n <= 500_000,
                    "{} of {} processed {n} instructions",
                    prog["program"],
                    d["design"]
                );
                checked += 1;
            }
        }
    }
    assert!(k["chosen"].is_string(), "no design loads: {k:#}");
    let reports_count = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| {
            let mut it = r.trim().split(['.', '-']).map(|x| x.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .is_some_and(|v| v >= (5, 16));
    if reports_count {
        assert!(checked > 0, "5.16+ reports verified_insns: {k:#}");
    }
}

/// Without BTF the designs that need it are not tried: `auto` falls back to a tracepoint
/// design that does not (relative paths are then resolved in userspace and flagged), or, where
/// the kernel has none of those either (5.10: no `bpf_loop`, no ancestor helper), fails with
/// one line.
#[test]
fn without_btf_a_design_that_needs_none_is_chosen() {
    if !privileged("without_btf_a_design_that_needs_none_is_chosen") {
        return;
    }
    let no_btf = [("WRITEPATH_VMLINUX_BTF", "/nonexistent/vmlinux")];
    let k = kernel_report_with(&no_btf);
    assert_eq!(k["features"]["btf"], false, "{k:#}");
    for d in k["designs"].as_array().unwrap() {
        if matches!(d["design"].as_str(), Some("fexit" | "exit-only")) {
            assert_eq!(d["loads"], false, "{d:#}");
            assert!(d["error"].as_str().unwrap().contains("BTF"), "{d:#}");
        }
    }
    let d = scratch_dir("nobtf");
    let target = p(d.path(), "f");
    let mut cmd = std::process::Command::new(writepath_bin());
    cmd.envs(no_btf).args([
        "record",
        "-o",
        "json",
        "--",
        DRIVER,
        &format!("open:{target}"),
    ]);
    let out = cmd.output().expect("run writepath");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match k["chosen"].as_str() {
        Some(design) => {
            assert!(matches!(design, "pair" | "compat"), "{k:#}");
            assert!(out.status.success(), "{stderr}");
            let r = Report::from_json(&String::from_utf8_lossy(&out.stdout), "stdout").unwrap();
            assert_eq!(r.recording.hook, design);
            assert_recorded(&r, &target, OpName::Create);
        }
        None => {
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("cannot capture on Linux"), "{stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        }
    }
}

/// `writepath kernel -o json`.
fn kernel_report() -> serde_json::Value {
    kernel_report_with(&[])
}

/// `writepath kernel -o json` with extra environment.
fn kernel_report_with(env: &[(&str, &str)]) -> serde_json::Value {
    let out = std::process::Command::new(writepath_bin())
        .envs(env.iter().copied())
        .args(["kernel", "-o", "json"])
        .output()
        .expect("run writepath kernel");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "writepath kernel -o json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Whether `design` loads on this kernel; says so when it does not.
fn design_loads_here(design: &str) -> bool {
    let k = kernel_report();
    let loads = k["designs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["design"] == design && d["loads"] == true);
    if !loads {
        eprintln!("the {design} design does not load on this kernel, its table is not run: {k}");
    }
    loads
}

fn every_syscall_kind(extra: &[&str]) {
    // (driver op, op recorded on the first path, needs an existing file, takes a dirfd)
    let one_path: &[(&str, OpName, bool, bool)] = &[
        ("open", OpName::Create, false, false),
        ("openat", OpName::Create, false, true),
        ("openat2", OpName::Create, false, true),
        ("creat", OpName::Create, false, false),
        ("mkdir", OpName::Mkdir, false, false),
        ("mkdirat", OpName::Mkdir, false, true),
        ("mknod", OpName::Mknod, false, false),
        ("mknodat", OpName::Mknod, false, true),
        ("truncate", OpName::Truncate, true, false),
        ("chmod", OpName::Chmod, true, false),
        ("fchmodat", OpName::Chmod, true, true),
        ("chown", OpName::Chown, true, false),
        ("lchown", OpName::Chown, true, false),
        ("fchownat", OpName::Chown, true, true),
        ("utimensat", OpName::Utimes, true, true),
        ("utimes", OpName::Utimes, true, false),
        ("setxattr", OpName::Setxattr, true, false),
        ("removexattr", OpName::Removexattr, true, false),
        ("unlink", OpName::Unlink, true, false),
        ("unlinkat", OpName::Unlink, true, true),
        ("bind", OpName::Bind, false, false),
    ];
    // (driver op, op on the new path, op on the old path (None: content, not a path), dirfd)
    let two_paths: &[(&str, OpName, Option<OpName>, bool)] = &[
        ("rename", OpName::RenameTo, Some(OpName::RenameFrom), false),
        ("renameat", OpName::RenameTo, Some(OpName::RenameFrom), true),
        (
            "renameat2",
            OpName::RenameTo,
            Some(OpName::RenameFrom),
            true,
        ),
        ("link", OpName::Link, None, false),
        ("linkat", OpName::Link, None, true),
    ];
    let d = scratch_dir("forms");
    let base = d.path();
    let dirs = [
        ("abs", base.join("abs")),
        ("cwd", base.join("cwd")),
        ("fd", base.join("fd")),
    ];
    for (_, dir) in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut ops = vec![format!("cd:{}", dirs[1].1.display())];
    let mut expect: Vec<(String, OpName)> = Vec::new();
    let mut per_form = |form: &str, dir: &std::path::Path, ops: &mut Vec<String>| {
        let name = |n: &str| match form {
            "abs" => format!("{}/{n}", dir.display()),
            _ => n.to_string(),
        };
        let full = |n: &str| format!("{}/{n}", dir.display());
        for (op, recorded, existing, at) in one_path {
            if form == "fd" && !at {
                continue;
            }
            let file = format!("{op}-{form}");
            if *existing {
                std::fs::write(dir.join(&file), b"x").unwrap();
            }
            ops.push(format!("{op}:{}", name(&file)));
            expect.push((full(&file), *recorded));
        }
        for (op, new_op, old_op, at) in two_paths {
            if form == "fd" && !at {
                continue;
            }
            let (old, new) = (format!("{op}-{form}-old"), format!("{op}-{form}-new"));
            std::fs::write(dir.join(&old), b"x").unwrap();
            ops.push(format!("{op}:{}:{}", name(&old), name(&new)));
            expect.push((full(&new), *new_op));
            if let Some(o) = old_op {
                expect.push((full(&old), *o));
            }
        }
        // symlink: the first argument is the link's content, kept as written.
        if form != "fd" {
            ops.push(format!(
                "symlink:content-{form}:{}",
                name(&format!("symlink-{form}"))
            ));
            expect.push((full(&format!("symlink-{form}")), OpName::Symlink));
        }
        ops.push(format!(
            "symlinkat:content-{form}:{}",
            name(&format!("symlinkat-{form}"))
        ));
        expect.push((full(&format!("symlinkat-{form}")), OpName::Symlink));
    };
    // cwd-relative first (the *at calls use AT_FDCWD until `dirfd:` is given), then the dirfd
    // form, then absolute paths (which ignore the dirfd).
    per_form("cwd", &dirs[1].1, &mut ops);
    ops.push(format!("dirfd:{}", dirs[2].1.display()));
    per_form("fd", &dirs[2].1, &mut ops);
    per_form("abs", &dirs[0].1, &mut ops);

    let r = record_ops_with(
        if extra.is_empty() {
            "forms"
        } else {
            "forms-pair"
        },
        &ops,
        extra,
    );
    let mut missing = Vec::new();
    for (path, op) in &expect {
        match write_of(&r, path.as_bytes()) {
            Some(w) if w.ops.contains(op) => {
                assert!(w.issues.is_empty(), "{path}: {:?}", w.issues);
            }
            Some(w) => missing.push(format!("{path}: {op:?} not in {:?}", w.ops)),
            None => missing.push(format!("{path}: not recorded")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} expectations failed:\n{}",
        missing.len(),
        expect.len(),
        missing.join("\n")
    );
    assert!(
        expect.len() > 70,
        "the table covers every form: {}",
        expect.len()
    );
}

/// Issue 11 #3: a writer that exits right after its write is gone before the recorder drains
/// its record; what the written directory held must still be seen (10 entries here), and the
/// suggestion must not say it hides nothing.
#[test]
fn image_content_is_seen_when_the_writer_exits_at_once() {
    if !privileged("image_content_is_seen_when_the_writer_exits_at_once") {
        return;
    }
    let d = scratch_dir("shadow");
    let dp = d.path();
    for i in 0..10 {
        std::fs::write(dp.join(format!("dotfile{i}")), b"x").unwrap();
    }
    let r = record_ops("shadow", &[format!("open:{}", p(dp, "new"))]);
    assert_recorded(&r, &p(dp, "new"), OpName::Create);
    let dir = dp.display().to_string();
    let content = r.targets[0]
        .directories
        .iter()
        .find(|c| c.path.to_string() == dir)
        .unwrap_or_else(|| panic!("{dir} not examined: {:?}", r.targets[0].directories));
    assert!(content.existed);
    assert_eq!(content.image_entries, 10, "{content:?}");
    let s = writepath::suggest::suggest(std::slice::from_ref(&r));
    let v = s.containers[0]
        .volumes
        .iter()
        .find(|v| v.mount_path.to_string() == dir)
        .unwrap_or_else(|| panic!("no volume at {dir}: {:?}", s.containers[0].volumes));
    assert_eq!(v.shadowing.as_ref().map(|s| s.image_entries), Some(10));
}
