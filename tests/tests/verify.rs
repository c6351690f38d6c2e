//! `writepath verify` on the real kernel: record a command, verify it with the suggested
//! volumes under a read-only root (exit 0, "verified: N volumes, 0 failing writes"), verify it
//! with too few (exit 1, the failing write named with its operation and process), and prove
//! the host's mount table and files are untouched.

use std::process::Command;

use writepath_tests::*;

/// The host's mounts at or below `prefixes`: (id, mount point, fs type) from our mountinfo.
/// Only these: other tests and other users of the machine mount things concurrently.
fn host_mounts(prefixes: &[&str]) -> Vec<(String, String, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((f[0].to_string(), f[4].to_string(), f[sep + 1].to_string()))
        })
        .filter(|(_, point, _)| {
            prefixes
                .iter()
                .any(|p| point == p || point.starts_with(&format!("{p}/")))
        })
        .collect()
}

#[test]
fn verify_proves_suggestions_and_leaves_the_host_alone() {
    if !privileged("verify_proves_suggestions_and_leaves_the_host_alone") {
        return;
    }
    // Letters, not digits: the suggestion engine treats numbered names as generated ones.
    let tag = letter_tag();
    // An existing directory the command writes below, and one it creates itself.
    let existing = format!("/var/tmp/wp-verify-{tag}");
    let created = format!("/var/lib/wp-verify-{tag}");
    let _cleanup = RemoveOnDrop(vec![existing.clone(), created.clone()]);
    std::fs::create_dir_all(format!("{existing}/cache")).unwrap();
    let script = format!(
        "set -e; mkdir -p {existing}/cache/blobs; echo x > {existing}/cache/blobs/1; \
         mkdir -p {created}/state; echo s > {created}/state/db.tmp; \
         mv {created}/state/db.tmp {created}/state/db; rm -rf {created}/state"
    );
    let d = scratch_dir("verify");
    let report = d.path().join("r.json");
    let out = Command::new(writepath_bin())
        .arg("record")
        .arg("--report")
        .arg(&report)
        .args(["-o", "json", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "record: {out:?}");
    // The application creates this directory: it must not exist when verifying.
    std::fs::remove_dir_all(&created).unwrap();
    std::fs::remove_dir_all(format!("{existing}/cache/blobs")).unwrap();

    // Where verify mounts: the volumes, and /var/lib for the overlay of the created one.
    let watched = ["/var/lib", existing.as_str()];
    let before = host_mounts(&watched);
    let out = Command::new(writepath_bin())
        .arg("verify")
        .arg("--report")
        .arg(&report)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("verified: 2 volumes, 0 failing writes (command exited 0)"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{created} (created)")), "{stdout}");
    assert!(
        stderr
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("writepath: recording")),
        "{stderr}"
    );
    assert_eq!(
        host_mounts(&watched),
        before,
        "the host's mount table is unchanged"
    );
    assert!(
        !std::path::Path::new(&created).exists(),
        "the created directory never reached the host"
    );
    assert!(
        !std::path::Path::new(&format!("{existing}/cache/blobs")).exists(),
        "writes into the volume stay in its tmpfs"
    );

    // One volume short: the failing write is named, exit 1.
    let out = Command::new(writepath_bin())
        .args(["verify", "-o", "json", "--mount"])
        .arg(format!("{existing}/cache"))
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json outcome");
    let failing = v["failing_writes"].as_array().unwrap();
    assert_eq!(failing.len(), 1, "{v:#}");
    assert_eq!(failing[0]["path"], created.as_str());
    assert_eq!(failing[0]["ops"][0], "mkdir");
    assert_eq!(failing[0]["processes"][0], "mkdir");
    assert_eq!(failing[0]["results"]["EROFS"], 1);
    assert_eq!(v["exit_code"], 1, "set -e stopped the script");
    assert_eq!(host_mounts(&watched), before);

    // No volume at all: writes to the existing directory fail too, relative ones included.
    let out = Command::new(writepath_bin())
        .args(["verify", "--"])
        .args(["sh", "-c", "cd /var/tmp && echo x > rel-wp-verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("/var/tmp/rel-wp-verify"), "{stdout}");
    assert!(
        stdout.contains("not verified: 0 volumes, 1 failing writes"),
        "{stdout}"
    );
    assert!(!std::path::Path::new("/var/tmp/rel-wp-verify").exists());
}

#[test]
fn verify_keeps_mounts_below_an_overlaid_directory() {
    if !privileged("verify_keeps_mounts_below_an_overlaid_directory") {
        return;
    }
    let tag = letter_tag();
    let base = format!("/var/tmp/wp-verify-sub-{tag}");
    let inner = format!("{base}/inner");
    std::fs::create_dir_all(&inner).unwrap();
    /// Unmounts and removes on drop.
    struct Undo(String, String);
    impl Drop for Undo {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.1).status();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _undo = Undo(base.clone(), inner.clone());
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "wp-verify-inner"])
        .arg(&inner)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(format!("{inner}/seed"), "seed").unwrap();

    // A new directory beside the mount: its parent gets an overlay, and the mount below the
    // parent must still be there, with its content, on top of the overlay.
    let before = host_mounts(&[&base]);
    assert_eq!(before.len(), 1, "{before:?}");
    let script = format!(
        "set -e; test \"$(cat {inner}/seed)\" = seed; echo n > {base}/new/file; \
         grep -q ' {inner} .* - tmpfs wp-verify-inner ' /proc/self/mountinfo"
    );
    let out = Command::new(writepath_bin())
        .args(["verify", "--mount"])
        .arg(format!("{base}/new"))
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{out:?}");
    assert!(
        stdout.contains("verified: 1 volumes, 0 failing writes (command exited 0)"),
        "{stdout}"
    );
    assert_eq!(
        host_mounts(&[&base]),
        before,
        "the host's mount table is unchanged"
    );
    assert!(!std::path::Path::new(&format!("{base}/new")).exists());
    assert!(!std::path::Path::new(&format!("{base}/.writepath-upper")).exists());
}

/// Issue 11 #10: a `--mount` over a directory with content hides it from the command; verify
/// passes (nothing failed) but says what the command did not see.
#[test]
fn verify_warns_when_a_volume_hides_host_content() {
    if !privileged("verify_warns_when_a_volume_hides_host_content") {
        return;
    }
    let d = scratch_dir("verify-hidden");
    let dir = d.path().display().to_string();
    for name in ["a", "b", "c"] {
        std::fs::write(d.path().join(name), b"x").unwrap();
    }
    let script = format!("ls -A {dir} | wc -l > /dev/stderr; echo x > {dir}/new");
    let out = Command::new(writepath_bin())
        .args(["verify", "--mount", &dir, "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{out:?}");
    assert!(
        stdout.contains(&format!(
            "warning: the tmpfs at {dir} hides 3 entries the host has there"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("verified: 1 volumes, 0 failing writes"),
        "{stdout}"
    );
    // The command saw the empty tmpfs, and the host's directory is untouched.
    assert!(!d.path().join("new").exists());
}
