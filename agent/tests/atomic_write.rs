//! A crash in the middle of writing never leaves a corrupt file: a process rewriting a report
//! in a loop with `fsutil::write_atomic` is killed with SIGKILL at varying moments, and the
//! file is always one whole version, never a mix or a cut. A corrupt file (written by
//! something else) is then set aside by `fsutil::read_or_set_aside`, not lost.
//!
//! The writer is this test binary itself, re-run with `WP_ATOMIC_FILE` set ([`writer`]).

use std::process::Command;
use std::time::Duration;

const SIZE: usize = 4 << 20;

/// Not a test of its own: the writer, when this binary is re-run with `WP_ATOMIC_FILE`.
#[test]
fn writer() {
    let Some(file) = std::env::var_os("WP_ATOMIC_FILE") else {
        return;
    };
    let file = std::path::PathBuf::from(file);
    for i in 0u64.. {
        let byte = b'a' + (i % 26) as u8;
        writepath::fsutil::write_atomic(&file, &vec![byte; SIZE]).unwrap();
    }
}

fn whole_version(bytes: &[u8]) -> bool {
    bytes.len() == SIZE && bytes.iter().all(|b| *b == bytes[0])
}

#[test]
fn killed_writer_never_leaves_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let exe = std::env::current_exe().unwrap();
    for delay_ms in [5u64, 13, 29, 47, 71, 97, 131, 173] {
        let mut child = Command::new(&exe)
            .args(["--exact", "writer", "--nocapture", "--test-threads=1"])
            .env("WP_ATOMIC_FILE", &file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                whole_version(&bytes),
                "killed after {delay_ms} ms: {} bytes, not one whole version",
                bytes.len()
            );
        }
        // What a reader at start-up does: a whole version parses, nothing is set aside.
        let parsed = writepath::fsutil::read_or_set_aside(&file, |b| {
            if whole_version(b) {
                Ok(b[0])
            } else {
                Err("mixed versions")
            }
        });
        assert!(parsed.is_ok(), "{parsed:?}");
    }
    assert!(file.exists(), "at least one version was written");

    // A file cut short by a non-atomic writer: set aside, with an error, kept.
    std::fs::write(&file, b"aaaa").unwrap();
    let err = writepath::fsutil::read_or_set_aside(&file, |b| {
        if whole_version(b) {
            Ok(())
        } else {
            Err("cut short")
        }
    })
    .unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    assert!(!file.exists());
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(kept[0].path()).unwrap(), b"aaaa");
}
