//! A real runc container, recorded through its cgroup: its writes come back with the paths the
//! container sees, on the mounts it has.

use writepath::report::OpName;
use writepath_tests::container::{Bundle, Tmpfs};
use writepath_tests::*;

#[test]
fn runc_container_writes_are_reported_with_container_paths() {
    if !privileged("runc_container_writes_are_reported_with_container_paths") {
        return;
    }
    assert!(
        std::path::Path::new("/usr/sbin/runc").exists() || which("runc"),
        "runc is required (cargo xtask setup installs it)"
    );
    let cg = TempCgroup::new("runc");
    let script = "echo started >> /var/log/app.log; \
                  echo tmp > /tmp/scratch; \
                  mkdir -p /var/cache/app/blobs && echo b > /var/cache/app/blobs/1; \
                  cd /tmp && touch relative-in-container; \
                  sleep 0.5";
    let bundle = Bundle::new(
        "runc",
        script,
        &[Tmpfs { path: "/tmp" }],
        false,
        &cg.runc_path("ctr"),
    );
    let rec = Recording::start(&cg.dir);
    let (status, out) = bundle.run();
    assert!(status.success(), "container failed: {out}");
    let r = rec.stop();

    assert_recorded(&r, "/var/log/app.log", OpName::Append);
    assert_recorded(&r, "/tmp/scratch", OpName::Create);
    assert_recorded(&r, "/var/cache/app/blobs", OpName::Mkdir);
    assert_recorded(&r, "/var/cache/app/blobs/1", OpName::Create);
    assert_recorded(&r, "/tmp/relative-in-container", OpName::Create);
    let host_prefix = bundle.path().display().to_string();
    for w in all_writes(&r) {
        assert!(
            !w.path.to_string().starts_with(&host_prefix),
            "host path leaked: {} by {:?}",
            w.path,
            w.processes
        );
    }
    let log = write_of(&r, b"/var/log/app.log").unwrap();
    assert_eq!(
        log.mount.as_ref().map(ToString::to_string).as_deref(),
        Some("/"),
        "lands on the root fs"
    );
    let tmp = write_of(&r, b"/tmp/scratch").unwrap();
    assert_eq!(
        tmp.mount.as_ref().map(ToString::to_string).as_deref(),
        Some("/tmp"),
        "lands on the tmpfs"
    );
    assert!(
        r.counters.runtime_setup > 0,
        "runc init writes are counted apart: {:?}",
        r.counters
    );
    // What the image had in the directories written to.
    let t = r.targets.iter().find(|t| !t.writes.is_empty()).unwrap();
    let cache = t
        .directories
        .iter()
        .find(|d| d.path.to_string() == "/var/cache/app")
        .unwrap_or_else(|| panic!("cache dir examined: {:#?}", t));
    assert!(
        cache.existed && cache.image_entries == 1,
        "seed.db is image content: {cache:?}"
    );
    let blobs = t
        .directories
        .iter()
        .find(|d| d.path.to_string() == "/var/cache/app/blobs")
        .expect("blobs examined");
    assert!(!blobs.existed, "blobs was made by the container: {blobs:?}");
}

/// A container that writes once and exits at once (its cgroup is gone before the recorder's
/// next drain) keeps its cgroup's name: the target is the container's cgroup, not `?`.
#[test]
fn a_container_gone_right_after_its_write_keeps_its_cgroup() {
    if !privileged("a_container_gone_right_after_its_write_keeps_its_cgroup") {
        return;
    }
    let cg = TempCgroup::new("short");
    let cgroups_path = cg.runc_path("ctr");
    let bundle = Bundle::new(
        "short",
        "echo once > /var/log/once.log",
        &[],
        false,
        &cgroups_path,
    );
    let rec = Recording::start(&cg.dir);
    let (status, out) = bundle.run();
    assert!(status.success(), "container failed: {out}");
    let r = rec.stop();
    let t = r
        .targets
        .iter()
        .find(|t| {
            t.writes
                .iter()
                .any(|w| w.path.to_string() == "/var/log/once.log")
        })
        .unwrap_or_else(|| panic!("the write is recorded: {:#?}", r.targets));
    assert!(
        t.cgroup.path.ends_with("/ctr"),
        "the target is named by its cgroup ({cgroups_path}): {:?}",
        t.cgroup
    );
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
}
