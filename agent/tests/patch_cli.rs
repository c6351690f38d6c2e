//! `writepath patch` from the command line: input errors exit 2 and write nothing,
//! `--in-place` is atomic and idempotent, untouched documents keep their bytes, names never
//! collide, mounted paths are not mounted twice, several workloads patch at once.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use writepath::report::WorkloadRef;
use writepath::suggest::{ContainerSuggestions, Suggestions};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs writepath expecting exit 2; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = writepath(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "writepath {args:?} should exit 2: {out:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout when failing: {out:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn for_workload(kind: &str, name: &str, container: Option<&str>) -> ContainerSuggestions {
    ContainerSuggestions {
        workload: Some(WorkloadRef {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
        }),
        container: container.map(str::to_string),
        container_kind: "container".into(),
        volumes: vec![empty_dir("/tmp", "tmp", Some("Memory"), Some("16Mi"))],
        ..Default::default()
    }
}

#[test]
fn input_errors_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("Deployment"));

    let bad = dir.path().join("bad.yaml");
    let bad_text =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: [unclosed\n";
    std::fs::write(&bad, bad_text).expect("write");
    let err = fails(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&bad),
        "--in-place",
    ]);
    assert!(
        err.contains(&format!("{}:", bad.display())) && err.contains("invalid YAML"),
        "{err}"
    );
    assert!(
        err.contains(":6:") || err.contains(":5:"),
        "names the line: {err}"
    );
    assert_eq!(std::fs::read_to_string(&bad).expect("read"), bad_text);

    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
    )
    .expect("write");
    let unnamed = Suggestions {
        version: 1,
        containers: vec![ContainerSuggestions::default()],
    };
    let unnamed = write_suggestions(&dir.path().join("x").tap_mkdir(), &unnamed);
    let err = fails(&["patch", "--suggestions", s(&unnamed), "-f", s(&unknown)]);
    assert!(
        err.contains("document 1") && err.contains("Service"),
        "{err}"
    );

    let deploy = fixture("deployment.yaml");
    let before = std::fs::read(&deploy).expect("read");
    let err = fails(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&deploy),
        "--container",
        "ghost",
    ]);
    assert!(err.contains("no container named ghost"), "{err}");

    let other = write_suggestions(
        &dir.path().join("other").tap_mkdir(),
        &Suggestions {
            version: 1,
            containers: vec![for_workload("Deployment", "api", Some("app"))],
        },
    );
    let err = fails(&[
        "patch",
        "--suggestions",
        s(&other),
        "-f",
        s(&deploy),
        "--in-place",
    ]);
    assert!(err.contains("Deployment shop/api"), "{err}");
    assert_eq!(
        std::fs::read(&deploy).expect("read"),
        before,
        "fixture untouched"
    );

    let err = fails(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&dir.path().join("missing.yaml")),
    ]);
    assert!(err.contains("missing.yaml"), "{err}");

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"version\": 1,\n \"containers\": [{]}").expect("write");
    let err = fails(&["patch", "--suggestions", s(&garbage), "-f", s(&deploy)]);
    assert!(err.contains("garbage.json:2:"), "{err}");

    let report = dir.path().join("report.json");
    std::fs::write(&report, "{\"version\": 1,\n \"targets\": [}").expect("write");
    let err = fails(&["patch", "--report", s(&report), "-f", s(&deploy)]);
    assert!(err.contains("report.json:2:"), "{err}");

    let err = fails(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&deploy),
        "--in-place",
        "--format",
        "strategic",
    ]);
    assert!(err.contains("--in-place"), "{err}");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}

#[test]
fn in_place_rewrites_atomically_and_idempotently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("StatefulSet"));
    let file = dir.path().join("sts.yaml");
    std::fs::copy(fixture("statefulset.yaml"), &file).expect("copy");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let printed = writepath_ok(&["patch", "--suggestions", s(&sugg), "-f", s(&file)]);
    assert_eq!(
        std::fs::read(&file).expect("read"),
        std::fs::read(fixture("statefulset.yaml")).expect("read"),
        "printing leaves the file alone"
    );
    assert_eq!(
        writepath_ok(&[
            "patch",
            "--suggestions",
            s(&sugg),
            "-f",
            s(&file),
            "--in-place"
        ]),
        ""
    );
    let once = std::fs::read_to_string(&file).expect("read");
    assert_eq!(once, printed);
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the manifest keeps its mode");
    writepath_ok(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&file),
        "--in-place",
    ]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        once,
        "twice = once"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
}

#[test]
fn collisions_existing_mounts_and_init_containers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("Pod"));
    let doc = one_doc(&writepath_ok(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&fixture("pod.yaml")),
    ]));
    let spec = &doc["spec"];
    let names: Vec<&str> = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "tmp",
            "shared",
            "data",
            "tmp-2",
            "var-cache-nginx",
            "var-run",
            "work"
        ]
    );
    assert_eq!(
        spec["volumes"][0]["configMap"]["name"], "web-extra",
        "existing volume kept"
    );
    assert_eq!(spec["volumes"][3]["emptyDir"], serde_json::json!({}));
    assert_eq!(
        spec["volumes"][2]["persistentVolumeClaim"]["claimName"],
        "web-data"
    );
    let app = &spec["containers"][0];
    assert_eq!(
        app["volumeMounts"][2],
        serde_json::json!({"name": "tmp-2", "mountPath": "/tmp"})
    );
    assert_eq!(
        app["securityContext"]["capabilities"]["add"],
        serde_json::json!(["NET_BIND_SERVICE"]),
        "kept"
    );
    let sidecar_mounts = spec["containers"][1]["volumeMounts"]
        .as_array()
        .expect("mounts");
    let shared = sidecar_mounts
        .iter()
        .filter(|m| m["mountPath"] == "/shared")
        .count();
    assert_eq!(shared, 1, "an already mounted path is not mounted twice");
    assert_eq!(
        spec["initContainers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(
        spec["initContainers"][0]["volumeMounts"][0]["mountPath"],
        "/work"
    );
    assert!(
        spec["initContainers"].as_array().expect("inits").len() == 1,
        "no copy container unless asked"
    );
}

#[test]
fn multi_document_manifest_keeps_untouched_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = Suggestions {
        version: 1,
        containers: vec![
            for_workload("Deployment", "web", None),
            for_workload("CronJob", "report", Some("report")),
        ],
    };
    let sugg = write_suggestions(dir.path(), &sugg);
    let input = std::fs::read_to_string(fixture("multi.yaml")).expect("read");
    let out = writepath_ok(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&fixture("multi.yaml")),
    ]);
    let pieces: Vec<&str> = out.split("\n---\n").collect();
    let originals: Vec<&str> = input.split("\n---\n").collect();
    assert_eq!(pieces.len(), 4, "{out}");
    assert_eq!(pieces[0], originals[0], "the Service keeps its bytes");
    assert_eq!(pieces[2], originals[2], "the ConfigMap keeps its bytes");
    let parsed = docs(&out);
    assert_eq!(
        parsed[1]["spec"]["template"]["spec"]["containers"][0]["securityContext"]
            ["readOnlyRootFilesystem"],
        true
    );
    let job = &parsed[3]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(job["volumes"][0]["emptyDir"]["medium"], "Memory");
    assert_eq!(job["containers"][0]["volumeMounts"][0]["mountPath"], "/tmp");

    // The output, patched again, is unchanged; from standard input too.
    let again = dir.path().join("again.yaml");
    std::fs::write(&again, &out).expect("write");
    assert_eq!(
        writepath_ok(&["patch", "--suggestions", s(&sugg), "-f", s(&again)]),
        out
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_writepath"))
        .args(["patch", "--suggestions", s(&sugg), "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
        .expect("feed");
    let piped = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8(piped.stdout).expect("utf-8"), out);

    if !have_kubectl() || !have_validator() {
        return;
    }
    validate(&again);
    // Both workloads through kustomize at once.
    let entries = writepath_ok(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&fixture("multi.yaml")),
        "--format",
        "kustomize",
    ]);
    let kdir = dir.path().join("k");
    std::fs::create_dir_all(&kdir).expect("mkdir");
    std::fs::copy(fixture("multi.yaml"), kdir.join("all.yaml")).expect("copy");
    let mut k = one_doc(&entries);
    assert_eq!(k["patches"].as_array().expect("patches").len(), 2);
    k["resources"] = serde_json::json!(["all.yaml"]);
    std::fs::write(
        kdir.join("kustomization.yaml"),
        serde_yaml::to_string(&k).expect("yaml"),
    )
    .expect("write");
    let built = run_ok(Command::new("kubectl").arg("kustomize").arg(&kdir));
    let mut built = docs(&built);
    let mut want = docs(&out);
    let key = |v: &serde_json::Value| format!("{}/{}", v["kind"], v["metadata"]["name"]);
    built.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(built, want);

    // The strategic and JSON streams hold one patch per object, in document order; each,
    // applied with kubectl to its object, gives that object as the manifest format prints it.
    let originals = docs(&input);
    for (format, kind) in [("strategic", "strategic"), ("json6902", "json")] {
        let stream = writepath_ok(&[
            "patch",
            "--suggestions",
            s(&sugg),
            "-f",
            s(&fixture("multi.yaml")),
            "--format",
            format,
        ]);
        let patches = docs(&stream);
        assert_eq!(patches.len(), 2, "{stream}");
        for (patch, index) in patches.iter().zip([1, 3]) {
            let object = dir.path().join(format!("object-{index}.yaml"));
            std::fs::write(
                &object,
                serde_yaml::to_string(&originals[index]).expect("yaml"),
            )
            .expect("write");
            let patch_file = dir.path().join(format!("{format}-{index}.patch"));
            std::fs::write(&patch_file, serde_json::to_string(patch).expect("json"))
                .expect("write");
            let got = run_ok(
                Command::new("kubectl")
                    .args(["patch", "--local", "-o", "yaml", "--type", kind, "-f"])
                    .arg(&object)
                    .arg("--patch-file")
                    .arg(&patch_file),
            );
            assert_eq!(
                one_doc(&got),
                parsed[index],
                "{format}, document {}",
                index + 1
            );
        }
    }
}

#[test]
fn in_place_through_a_symlink_patches_the_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("StatefulSet"));
    // link.yaml -> chain.yaml -> manifests/sts.yaml (relative links, as a repository keeps them)
    let real_dir = dir.path().join("manifests").tap_mkdir();
    let real = real_dir.join("sts.yaml");
    std::fs::copy(fixture("statefulset.yaml"), &real).expect("copy");
    let chain = dir.path().join("chain.yaml");
    std::os::unix::fs::symlink("manifests/sts.yaml", &chain).expect("symlink");
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink("chain.yaml", &link).expect("symlink");

    let printed = writepath_ok(&["patch", "--suggestions", s(&sugg), "-f", s(&link)]);
    let out = writepath(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&link),
        "--in-place",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&real.display().to_string()),
        "says which file it wrote: {stderr}"
    );
    for (l, target) in [(&link, "chain.yaml"), (&chain, "manifests/sts.yaml")] {
        let meta = std::fs::symlink_metadata(l).expect("lstat");
        assert!(
            meta.file_type().is_symlink(),
            "{} is still a link",
            l.display()
        );
        assert_eq!(
            std::fs::read_link(l).expect("readlink"),
            std::path::Path::new(target)
        );
    }
    assert_eq!(
        std::fs::read_to_string(&real).expect("read"),
        printed,
        "the target is patched"
    );
    let beside_target: Vec<_> = std::fs::read_dir(&real_dir).expect("ls").collect();
    assert_eq!(
        beside_target.len(),
        1,
        "no temporary file left: {beside_target:?}"
    );
    let beside_link: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(
        beside_link.len(),
        4,
        "suggestions, manifests/, chain, link: {beside_link:?}"
    );

    // A link to nothing is an input error naming the link.
    let dangling = dir.path().join("dangling.yaml");
    std::os::unix::fs::symlink("nowhere.yaml", &dangling).expect("symlink");
    let err = fails(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&dangling),
        "--in-place",
    ]);
    assert!(err.contains("dangling.yaml"), "{err}");
    assert!(
        std::fs::symlink_metadata(&dangling)
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "left alone"
    );
}

#[test]
fn statefulset_data_becomes_a_claim_template_not_a_shared_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sugg = write_suggestions(dir.path(), &web_suggestions("StatefulSet"));
    let out = writepath(&[
        "patch",
        "--suggestions",
        s(&sugg),
        "-f",
        s(&fixture("statefulset.yaml")),
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let doc = one_doc(&text);
    let spec = &doc["spec"]["template"]["spec"];
    assert!(
        spec["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .all(|v| v.get("persistentVolumeClaim").is_none()),
        "no claim shared by every replica: {}",
        spec["volumes"]
    );
    // The fixture's own claim template is `data` (mounted at /archive): the new one is data-2.
    let templates = doc["spec"]["volumeClaimTemplates"]
        .as_array()
        .expect("volumeClaimTemplates");
    let names: Vec<&str> = templates
        .iter()
        .map(|t| t["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["data", "data-2"]);
    assert_eq!(
        templates[0]["spec"]["resources"]["requests"]["storage"],
        "5Gi"
    );
    assert_eq!(
        templates[1]["spec"],
        serde_json::json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
    );
    let app = &spec["containers"][0];
    assert!(
        app["volumeMounts"]
            .as_array()
            .expect("mounts")
            .contains(&serde_json::json!({"name": "data-2", "mountPath": "/data"})),
        "{}",
        app["volumeMounts"]
    );
    assert!(
        stderr.contains("volumeClaimTemplates entry data-2") && stderr.contains("data-2-web-0"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("must exist before the pod starts"),
        "{stderr}"
    );

    // Patching the output again changes nothing, and the result is a valid StatefulSet.
    let patched = dir.path().join("patched.yaml");
    std::fs::write(&patched, &text).expect("write");
    assert_eq!(
        writepath_ok(&["patch", "--suggestions", s(&sugg), "-f", s(&patched)]),
        text
    );
    if have_validator() {
        validate(&patched);
        validate_for(&patched, "1.34.0");
    }
}

#[test]
fn a_needed_directory_on_a_config_map_is_noted_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("deploy.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        volumeMounts:
        - {name: settings, mountPath: /tmp}
      volumes:
      - name: settings
        configMap: {name: web-settings}
",
    )
    .expect("write");
    let sugg = write_suggestions(
        dir.path(),
        &Suggestions {
            version: 1,
            containers: vec![for_workload("Deployment", "web", Some("app"))],
        },
    );
    let out = writepath(&["patch", "--suggestions", s(&sugg), "-f", s(&manifest)]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let note = stderr
        .lines()
        .find(|l| l.contains("/tmp must be writable"))
        .unwrap_or_else(|| panic!("the write to /tmp is not dropped silently: {stderr}"));
    assert!(
        note.starts_with("writepath: note: Deployment shop/web: container app:"),
        "{note}"
    );
    assert!(
        note.contains("configMap volume settings")
            && note.contains("subPath")
            && note.contains("add an emptyDir at /tmp"),
        "{note}"
    );
    let doc = one_doc(&String::from_utf8(out.stdout).expect("utf-8"));
    let spec = &doc["spec"]["template"]["spec"];
    assert_eq!(spec["volumes"].as_array().expect("volumes").len(), 1);
    assert_eq!(
        spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
}

#[test]
fn harden_keeps_chown_for_nginx_running_as_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("deploy.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
",
    )
    .expect("write");
    // The recorded nginx: its master (root) makes /var/cache/nginx/*_temp and chowns them.
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/reports/nginx.json");
    let out = writepath(&[
        "patch",
        "--report",
        s(&report),
        "-f",
        s(&manifest),
        "--harden",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let doc = one_doc(&text);
    let sc = &doc["spec"]["template"]["spec"]["containers"][0]["securityContext"];
    assert_eq!(
        sc["capabilities"],
        serde_json::json!({"drop": ["ALL"], "add": ["CHOWN"]}),
        "{text}"
    );
    assert!(sc.get("runAsNonRoot").is_none(), "{text}");
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert!(
        stderr.contains("kept CHOWN in capabilities.add beside drop [ALL]: the recording shows chown in /var/cache/nginx"),
        "{stderr}"
    );
    assert!(stderr.contains("SETUID and SETGID"), "{stderr}");
    if have_validator() {
        let patched = dir.path().join("patched.yaml");
        std::fs::write(&patched, &text).expect("write");
        validate(&patched);
    }
}
