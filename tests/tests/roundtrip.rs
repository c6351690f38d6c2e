//! The promise, end to end on a real read-only root: record a container that writes like
//! nginx, take the suggested volumes, and run it again with `root.readonly` and a tmpfs at
//! exactly those paths: it works. Take one volume away: it fails with EROFS.

use writepath_tests::container::{Bundle, Tmpfs};
use writepath_tests::*;

/// Writes like nginx at start-up: a pid file through the /var/run symlink, temp directories
/// under /var/cache/nginx, and its logs. Any failed write stops it (`set -e`).
const NGINX_LIKE: &str = "set -e; \
    echo $$ > /var/run/nginx.pid; \
    for d in client_temp proxy_temp fastcgi_temp uwsgi_temp scgi_temp; do mkdir -p /var/cache/nginx/$d; done; \
    echo body > /var/cache/nginx/client_temp/0000000001; \
    echo '127.0.0.1 GET /' >> /var/log/nginx/access.log; \
    echo 'start' >> /var/log/nginx/error.log; \
    cat /usr/share/nginx/html/index.html > /dev/null; \
    rm /var/run/nginx.pid; \
    sleep 0.3";

#[test]
fn suggested_volumes_make_a_read_only_root_work() {
    if !privileged("suggested_volumes_make_a_read_only_root_work") {
        return;
    }
    let cg = TempCgroup::new("roundtrip");
    let cgroup_path = cg.runc_path("ctr");

    // 1. Record with a writable root.
    let bundle = Bundle::new("rt-record", NGINX_LIKE, &[], false, &cgroup_path);
    let rec = Recording::start(&cg.dir);
    let (status, out) = bundle.run();
    assert!(status.success(), "recording run failed: {out}");
    let report = rec.stop();
    drop(bundle);

    // 2. The suggestions.
    let suggestions = writepath::suggest::suggest(std::slice::from_ref(&report));
    let mounts: Vec<String> = suggestions
        .containers
        .iter()
        .flat_map(|c| c.volumes.iter().map(|v| v.mount_path.to_string()))
        .collect();
    eprintln!("suggested mounts: {mounts:?}");
    assert!(!mounts.is_empty(), "something to suggest: {suggestions:#?}");
    assert!(
        !mounts
            .iter()
            .any(|m| m == "/" || m == "/var" || m == "/usr"),
        "nothing broad: {mounts:?}"
    );
    assert!(
        mounts.iter().any(|m| m == "/run"),
        "/var/run resolves to /run: {mounts:?}"
    );

    // 3. Read-only root + exactly those volumes: it runs.
    let tmpfs: Vec<Tmpfs<'_>> = mounts.iter().map(|m| Tmpfs { path: m }).collect();
    let ro = Bundle::new("rt-ro", NGINX_LIKE, &tmpfs, true, &cgroup_path);
    let (status, out) = ro.run();
    assert!(
        status.success(),
        "read-only run with {mounts:?} failed: {out}"
    );
    drop(ro);

    // 4. Without any one of them: it fails with EROFS.
    for left_out in 0..mounts.len() {
        let fewer: Vec<Tmpfs<'_>> = mounts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != left_out)
            .map(|(_, m)| Tmpfs { path: m })
            .collect();
        let b = Bundle::new("rt-missing", NGINX_LIKE, &fewer, true, &cgroup_path);
        let (status, out) = b.run();
        assert!(
            !status.success(),
            "without {} the run should fail",
            mounts[left_out]
        );
        assert!(
            out.contains("Read-only file system"),
            "without {}: {out}",
            mounts[left_out]
        );
    }
}
