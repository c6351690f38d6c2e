//! Scenario tests of [`suggest`](super::suggest): small reports built in code, one rule each.

use crate::path::RawPath;
use crate::report::{
    CgroupRef, ContainerRef, DirectoryContent, Mount, OpName, PodRef, Report, Symlink, Target,
    WorkloadRef, Write, REPORT_VERSION,
};
use crate::suggest::{suggest, ContainerSuggestions, Purpose, VolumeKind};

fn w(path: &str, ops: &[OpName]) -> Write {
    let mut w = Write {
        path: RawPath::from(path),
        ops: ops.to_vec(),
        count: 1,
        ..Default::default()
    };
    w.results.insert("ok".into(), 1);
    w.first_seen = "2026-11-27T10:00:00Z".into();
    w.last_seen = "2026-11-27T10:00:01Z".into();
    w
}

fn dir(path: &str, existed: bool, entries: u64) -> DirectoryContent {
    DirectoryContent {
        path: RawPath::from(path),
        existed,
        image_entries: entries,
        sample: Vec::new(),
    }
}

fn target(writes: Vec<Write>, directories: Vec<DirectoryContent>) -> Target {
    Target {
        cgroup: CgroupRef {
            path: "/writepath/run-1".into(),
            id: 7,
        },
        mounts: vec![Mount {
            mount_point: RawPath::from("/"),
            fs_type: "overlay".into(),
            source: String::new(),
            read_only: false,
        }],
        writes,
        directories,
        ..Default::default()
    }
}

fn report(targets: Vec<Target>) -> Report {
    Report {
        version: REPORT_VERSION,
        tool: Default::default(),
        recording: Default::default(),
        counters: Default::default(),
        targets,
    }
}

fn one(t: Target) -> ContainerSuggestions {
    let mut s = suggest(&[report(vec![t])]);
    assert_eq!(s.containers.len(), 1);
    s.containers.remove(0)
}

fn mounts(c: &ContainerSuggestions) -> Vec<String> {
    c.volumes.iter().map(|v| v.mount_path.to_string()).collect()
}

#[test]
fn ten_thousand_random_names_are_one_directory() {
    let mut writes = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..10_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        writes.push(w(
            &format!("/tmp/tmp{state:016x}"),
            &[OpName::Create, OpName::Unlink],
        ));
    }
    // Random directories too, with files inside.
    writes.push(w("/tmp/tmpdir8f3a2c91", &[OpName::Mkdir, OpName::Rmdir]));
    writes.push(w("/tmp/tmpdir8f3a2c91/f", &[OpName::Create]));
    let c = one(target(writes, vec![dir("/tmp", true, 0)]));
    assert_eq!(mounts(&c), ["/tmp"]);
    assert_eq!(c.volumes[0].evidence.paths, 10_002);
    assert_eq!(c.volumes[0].evidence.sample_paths.len(), 5);
    assert_eq!(c.volumes[0].purpose, Purpose::Temp);
}

#[test]
fn generated_directories_collapse_even_into_a_directory_with_content() {
    let mut writes = Vec::new();
    for i in 0..50 {
        writes.push(w(&format!("/srv/jobs/run-{i:06}"), &[OpName::Mkdir]));
        writes.push(w(&format!("/srv/jobs/run-{i:06}/out"), &[OpName::Create]));
    }
    let c = one(target(writes, vec![dir("/srv/jobs", true, 2)]));
    assert_eq!(mounts(&c), ["/srv/jobs"]);
    let sh = c.volumes[0].shadowing.as_ref().expect("shadowing");
    assert_eq!(sh.image_entries, 2);
}

#[test]
fn shadowing_says_how_many_entries_and_offers_the_init_copy() {
    let mut d = dir("/etc/app", true, 12);
    d.sample = vec![RawPath::from("app.conf"), RawPath::from("plugins")];
    let c = one(target(
        vec![
            w(
                "/etc/app/app.conf.tmp",
                &[OpName::Create, OpName::RenameFrom],
            ),
            w("/etc/app/app.conf", &[OpName::RenameTo]),
        ],
        vec![d],
    ));
    assert_eq!(mounts(&c), ["/etc/app"]);
    let sh = c.volumes[0].shadowing.as_ref().expect("shadowing");
    assert_eq!(sh.image_entries, 12);
    assert_eq!(
        sh.sample,
        [RawPath::from("app.conf"), RawPath::from("plugins")]
    );
    assert_eq!(sh.remedies, ["init-container-copy"]);
}

#[test]
fn a_deeper_created_directory_is_preferred_to_a_parent_with_content() {
    let c = one(target(
        vec![
            w("/app/cache", &[OpName::Mkdir]),
            w("/app/cache/thumbs", &[OpName::Mkdir]),
            w("/app/cache/thumbs/a.png", &[OpName::Create]),
            w("/app/state", &[OpName::Mkdir]),
            w("/app/state/x", &[OpName::Create]),
        ],
        vec![
            dir("/app", true, 40),
            dir("/app/cache", false, 0),
            dir("/app/state", false, 0),
        ],
    ));
    assert_eq!(mounts(&c), ["/app/cache", "/app/state"]);
    assert!(c.volumes.iter().all(|v| v.shadowing.is_none()));
}

#[test]
fn created_directories_in_an_empty_image_directory_share_it() {
    let c = one(target(
        vec![
            w("/var/cache/app/a", &[OpName::Mkdir]),
            w("/var/cache/app/b", &[OpName::Mkdir]),
            w("/var/cache/app/b/f", &[OpName::Create]),
        ],
        vec![dir("/var/cache/app", true, 0)],
    ));
    assert_eq!(mounts(&c), ["/var/cache/app"]);
}

#[test]
fn symlinked_directory_gives_one_suggestion() {
    // Written through both names; the report does not list the link: the well-known alias.
    let c = one(target(
        vec![
            w("/var/run/app/app.pid", &[OpName::Create]),
            w("/run/app/app.sock", &[OpName::Bind]),
        ],
        vec![dir("/run/app", true, 0)],
    ));
    assert_eq!(mounts(&c), ["/run/app"]);
    assert_eq!(c.volumes[0].purpose, Purpose::Run);
    assert_eq!(c.volumes[0].evidence.paths, 2);
}

#[test]
fn recorded_symlinks_are_followed() {
    let mut t = target(
        vec![
            w("/opt/app/work/job.tmp", &[OpName::Create, OpName::Unlink]),
            w("/srv/work/other", &[OpName::Create]),
        ],
        vec![dir("/srv/work", true, 0)],
    );
    t.symlinks = vec![Symlink {
        path: RawPath::from("/opt/app/work"),
        target: RawPath::from("../../srv/work"),
    }];
    let c = one(t);
    assert_eq!(mounts(&c), ["/srv/work"]);
}

#[test]
fn never_root_nor_a_system_tree() {
    let c = one(target(
        vec![
            w("/app.pid", &[OpName::Create]),
            w("/etc/passwd+", &[OpName::Create, OpName::RenameFrom]),
            w("/etc/passwd", &[OpName::RenameTo]),
            w("/usr/local/lib/libhack.so", &[OpName::Create]),
            w("/var/lib/app/state.db", &[OpName::Create]),
        ],
        vec![],
    ));
    assert_eq!(mounts(&c), ["/var/lib/app"]);
    assert!(matches!(
        c.volumes[0].volume,
        VolumeKind::PersistentVolumeClaim { .. }
    ));
    let unresolved: Vec<(String, String, String)> = c
        .unresolved
        .iter()
        .map(|u| {
            (
                u.path.to_string(),
                u.directory.to_string(),
                u.reason.clone(),
            )
        })
        .collect();
    let want = [
        ("/app.pid", "/", "root:/"),
        ("/etc/passwd", "/etc", "system-tree:/etc"),
        ("/etc/passwd+", "/etc", "system-tree:/etc"),
        (
            "/usr/local/lib/libhack.so",
            "/usr/local/lib",
            "system-tree:/usr/local/lib",
        ),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(unresolved, want);
}

#[test]
fn erofs_failures_are_counted_as_a_missing_volume() {
    let mut a = w("/tmp/x", &[OpName::Create]);
    a.results = [("EROFS".to_string(), 7)].into();
    a.count = 7;
    let c = one(target(vec![a], vec![]));
    assert_eq!(mounts(&c), ["/tmp"]);
    assert_eq!(c.volumes[0].failed_writes, 7);
    let table = crate::suggest::table::render_table(&suggest(&[report(vec![target(
        vec![{
            let mut a = w("/tmp/x", &[OpName::Create]);
            a.results = [("EROFS".to_string(), 7)].into();
            a
        }],
        vec![],
    )])]));
    assert!(
        table.contains("missing volume: /tmp failed 7 times"),
        "{table}"
    );
}

#[test]
fn writes_on_existing_mounts_are_excluded_with_the_reason() {
    let mut t = target(
        vec![
            w("/data/x", &[OpName::Create]),
            w("/etc/hosts", &[OpName::OpenWrite]),
            w("/dev/shm/sem.x", &[OpName::Create]),
            w(
                "/var/run/secrets/kubernetes.io/serviceaccount/..data",
                &[OpName::Create],
            ),
        ],
        vec![],
    );
    t.mounts.push(Mount {
        mount_point: RawPath::from("/data"),
        fs_type: "ext4".into(),
        source: String::new(),
        read_only: false,
    });
    let c = one(t);
    assert!(c.volumes.is_empty(), "{:?}", mounts(&c));
    let reasons: Vec<&str> = c.excluded.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "volume:/data",
            "dev-shm:/dev/shm",
            "kubelet:/etc/hosts",
            "serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount"
        ]
    );
}

#[test]
fn reports_of_replicas_merge_into_one_container() {
    let k8s = |pod: &str, writes: Vec<Write>| Target {
        workload: Some(WorkloadRef {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "cart".into(),
        }),
        pod: Some(PodRef {
            namespace: "shop".into(),
            name: pod.into(),
            uid: pod.into(),
        }),
        container: Some(ContainerRef {
            id: pod.into(),
            runtime: "containerd".into(),
            name: Some("app".into()),
            kind: None,
        }),
        ..target(writes, vec![dir("/var/cache/cart", true, 0)])
    };
    let a = report(vec![k8s("cart-1", vec![w("/tmp/a", &[OpName::Create])])]);
    let b = report(vec![
        k8s(
            "cart-2",
            vec![
                w("/tmp/a", &[OpName::Create]),
                w("/var/cache/cart/x", &[OpName::Create]),
            ],
        ),
        Target {
            container: None,
            ..target(vec![w("/srv/other/y", &[OpName::Create])], vec![])
        },
    ]);
    let s = suggest(&[a, b]);
    assert_eq!(s.containers.len(), 2);
    let cart = s
        .containers
        .iter()
        .find(|c| c.workload.is_some())
        .expect("workload");
    assert_eq!(cart.container.as_deref(), Some("app"));
    assert_eq!(mounts(cart), ["/tmp", "/var/cache/cart"]);
    assert_eq!(cart.volumes[0].evidence.count, 2);
    assert!(cart.cgroups.is_empty());
    let other = s
        .containers
        .iter()
        .find(|c| c.workload.is_none())
        .expect("cgroup target");
    assert_eq!(other.cgroups, ["/writepath/run-1"]);
    assert_eq!(mounts(other), ["/srv/other"]);
}

#[test]
fn small_hot_temp_directory_gets_memory_with_a_size_limit() {
    let mut writes = Vec::new();
    for i in 0..500 {
        let mut x = w(&format!("/tmp/s{i}"), &[OpName::Create, OpName::Unlink]);
        x.count = 4;
        x.size = Some(40 << 10);
        writes.push(x);
    }
    let c = one(target(writes.clone(), vec![]));
    // 500 files of 40 KiB: about 20 MiB, twice that rounded up to a power of two.
    assert_eq!(
        c.volumes[0].volume,
        VolumeKind::EmptyDir {
            medium: Some("Memory".into()),
            size_limit: Some("64Mi".into())
        }
    );
    // One size unknown: no memory medium.
    writes[3].size = None;
    let c = one(target(writes, vec![]));
    assert_eq!(
        c.volumes[0].volume,
        VolumeKind::EmptyDir {
            medium: None,
            size_limit: None
        }
    );
}

#[test]
fn non_utf8_paths_survive_into_the_suggestion() {
    let mut x = w("/", &[OpName::Create]);
    x.path = RawPath::from_bytes(b"/srv/caf\xe9/f".to_vec());
    let c = one(target(vec![x], vec![]));
    assert_eq!(c.volumes[0].mount_path.as_bytes(), b"/srv/caf\xe9");
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("base64"), "{json}");
}

#[test]
fn lost_events_are_a_warning() {
    let mut r = report(vec![target(vec![w("/tmp/x", &[OpName::Create])], vec![])]);
    assert!(suggest(std::slice::from_ref(&r)).containers[0]
        .warnings
        .is_empty());
    r.counters.dropped = 3;
    let s = suggest(&[r]);
    let warnings = &s.containers[0].warnings;
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("lost 3 events"), "{warnings:?}");
    let table = crate::suggest::table::render_table(&s);
    assert!(
        table.contains("  warning: the recorder lost 3 events"),
        "{table}"
    );
}

/// The volume's JSON, to check fields added after the first format.
fn json_of(c: &ContainerSuggestions, mount: &str) -> serde_json::Value {
    let v = c
        .volumes
        .iter()
        .find(|v| v.mount_path.to_string() == mount)
        .unwrap_or_else(|| panic!("no volume at {mount}: {:?}", mounts(c)));
    serde_json::to_value(v).unwrap()
}

/// The IMAGE CONTENT cell of the table row of `mount`.
fn image_content_cell(c: &ContainerSuggestions, mount: &str) -> String {
    let table = crate::suggest::table::render_table(&crate::suggest::Suggestions {
        version: 1,
        containers: vec![c.clone()],
    });
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{mount} ")))
        .unwrap_or_else(|| panic!("no row for {mount} in\n{table}"));
    row.split_whitespace().skip(6).collect::<Vec<_>>().join(" ")
}

#[test]
fn image_content_the_recorder_could_not_see_is_unknown_not_empty() {
    // The writer was gone before the recorder could look at /root: no directories.
    let unseen = one(target(
        vec![w("/root/.bash_history", &[OpName::Append])],
        vec![],
    ));
    assert_eq!(mounts(&unseen), ["/root"]);
    assert_eq!(image_content_cell(&unseen, "/root"), "unknown");
    assert_eq!(json_of(&unseen, "/root")["shadowing_unknown"], true);
    assert!(unseen.volumes[0].shadowing.is_none());
    let table = crate::suggest::table::render_table(&crate::suggest::Suggestions {
        version: 1,
        containers: vec![unseen.clone()],
    });
    assert!(
        table.contains("/root: unknown (the recorder could not look at it in the image)"),
        "{table}"
    );

    // Seen and empty: nothing hidden, and known.
    let empty = one(target(
        vec![w("/root/.bash_history", &[OpName::Append])],
        vec![dir("/root", true, 0)],
    ));
    assert_eq!(image_content_cell(&empty, "/root"), "-");
    assert!(json_of(&empty, "/root").get("shadowing_unknown").is_none());

    // Seen with content: the count.
    let full = one(target(
        vec![w("/root/.bash_history", &[OpName::Append])],
        vec![dir("/root", true, 10)],
    ));
    assert_eq!(image_content_cell(&full, "/root"), "hides 10 image entries");

    // A directory the workload made itself held nothing of the image, seen or not.
    let made = one(target(
        vec![
            w("/srv/app", &[OpName::Mkdir]),
            w("/srv/app/state", &[OpName::Create]),
        ],
        vec![],
    ));
    assert_eq!(mounts(&made), ["/srv/app"]);
    assert_eq!(image_content_cell(&made, "/srv/app"), "-");
}

#[test]
fn writes_through_a_link_the_workload_made_need_the_link_target_directory() {
    // symlink("/tmp/x", "lnk") in /app, then open("lnk", O_WRONLY|O_CREAT): one recorded path
    // with both operations. Making the link needs /app; the open writes /tmp/x.
    let mut lnk = w("/app/lnk", &[OpName::Create, OpName::Symlink]);
    lnk.related = vec![RawPath::from("/tmp/x")];
    let c = one(target(
        vec![lnk],
        vec![dir("/app", true, 2), dir("/tmp", true, 0)],
    ));
    assert_eq!(mounts(&c), ["/app", "/tmp"]);
    // A relative link content resolves against the link's directory.
    let mut rel = w("/app/lnk", &[OpName::Create, OpName::Symlink]);
    rel.related = vec![RawPath::from("../var/tmp/x")];
    let c = one(target(
        vec![rel],
        vec![dir("/app", true, 2), dir("/var/tmp", true, 0)],
    ));
    assert_eq!(mounts(&c), ["/app", "/var/tmp"]);
}

fn purpose_at(c: &ContainerSuggestions, mount: &str) -> Purpose {
    c.volumes
        .iter()
        .find(|v| v.mount_path.to_string() == mount)
        .unwrap_or_else(|| panic!("no volume at {mount}: {:?}", mounts(c)))
        .purpose
}

fn offers_tmpdir(c: &ContainerSuggestions, mount: &str) -> bool {
    c.volumes
        .iter()
        .find(|v| v.mount_path.to_string() == mount)
        .unwrap()
        .alternatives
        .iter()
        .any(|a| a.contains("TMPDIR"))
}

#[test]
fn purpose_comes_from_what_is_written_not_only_from_the_directory_name() {
    let tmp = || dir("/var/tmp", true, 0);
    // A git repository cloned into /var/tmp: the workload can clone it again.
    let git = one(target(
        vec![
            w("/var/tmp/repo", &[OpName::Mkdir]),
            w("/var/tmp/repo/.git", &[OpName::Mkdir]),
            w("/var/tmp/repo/.git/HEAD", &[OpName::Create]),
            w("/var/tmp/repo/.git/config", &[OpName::Create]),
            w(
                "/var/tmp/repo/.git/objects/pack/pack-1a2b.pack",
                &[OpName::Create],
            ),
            w("/var/tmp/repo/README.md", &[OpName::Create]),
        ],
        vec![tmp()],
    ));
    assert_eq!(mounts(&git), ["/var/tmp"]);
    assert_eq!(purpose_at(&git, "/var/tmp"), Purpose::Cache);
    assert!(!offers_tmpdir(&git, "/var/tmp"));

    // A SQLite database with its rollback journal: data.
    let sqlite = one(target(
        vec![
            w("/var/tmp/app.db", &[OpName::Create]),
            w("/var/tmp/app.db-journal", &[OpName::Create, OpName::Unlink]),
        ],
        vec![tmp()],
    ));
    assert_eq!(purpose_at(&sqlite, "/var/tmp"), Purpose::Data);
    assert!(matches!(
        sqlite.volumes[0].volume,
        VolumeKind::PersistentVolumeClaim { .. }
    ));
    assert!(!offers_tmpdir(&sqlite, "/var/tmp"));
    // Even without an extension the journal gives the database away.
    let journal = one(target(
        vec![
            w("/var/tmp/state", &[OpName::Create]),
            w("/var/tmp/state-wal", &[OpName::Create]),
            w("/var/tmp/state-shm", &[OpName::Create]),
        ],
        vec![tmp()],
    ));
    assert_eq!(purpose_at(&journal, "/var/tmp"), Purpose::Data);

    // A Python virtual environment: installed packages, rebuilt by pip.
    let venv = one(target(
        vec![
            w("/var/tmp/venv", &[OpName::Mkdir]),
            w("/var/tmp/venv/pyvenv.cfg", &[OpName::Create]),
            w("/var/tmp/venv/bin", &[OpName::Mkdir]),
            w("/var/tmp/venv/bin/python3", &[OpName::Symlink]),
            w(
                "/var/tmp/venv/lib/python3.11/site-packages/six.py",
                &[OpName::Create],
            ),
        ],
        vec![tmp()],
    ));
    assert_eq!(purpose_at(&venv, "/var/tmp"), Purpose::Cache);
    assert!(!offers_tmpdir(&venv, "/var/tmp"));

    // State saved with temp-then-rename: it is meant to last, data.
    let mut tmpfile = w(
        "/var/lib/demo/state.json.tmp",
        &[OpName::Create, OpName::RenameFrom],
    );
    tmpfile.related = vec![RawPath::from("/var/lib/demo/state.json")];
    let mut state = w("/var/lib/demo/state.json", &[OpName::RenameTo]);
    state.related = vec![RawPath::from("/var/lib/demo/state.json.tmp")];
    let demo = one(target(
        vec![w("/var/lib/demo", &[OpName::Mkdir]), tmpfile, state],
        vec![dir("/var/lib", true, 12)],
    ));
    assert_eq!(mounts(&demo), ["/var/lib/demo"]);
    assert_eq!(purpose_at(&demo, "/var/lib/demo"), Purpose::Data);

    // Real temporary files in /tmp stay temp, with TMPDIR offered.
    let temp = one(target(
        vec![w("/tmp/tmpa81f3c", &[OpName::Create, OpName::Unlink])],
        vec![dir("/tmp", true, 0)],
    ));
    assert_eq!(purpose_at(&temp, "/tmp"), Purpose::Temp);
    assert!(offers_tmpdir(&temp, "/tmp"));
    // nginx's client_temp is temp, but nginx does not read TMPDIR.
    let nginx = one(target(
        vec![
            w("/var/cache/nginx/client_temp", &[OpName::Mkdir]),
            w(
                "/var/cache/nginx/client_temp/0000000001",
                &[OpName::Create, OpName::Unlink],
            ),
        ],
        vec![dir("/var/cache/nginx", true, 0)],
    ));
    assert_eq!(mounts(&nginx), ["/var/cache/nginx"]);
    assert!(!offers_tmpdir(&nginx, "/var/cache/nginx"));
}
