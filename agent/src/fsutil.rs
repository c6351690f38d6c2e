//! Small filesystem helpers shared by everything that writes files: [`write_atomic`] so a
//! crash never leaves a half-written file, and [`read_or_set_aside`] so a corrupt file found
//! at start-up is moved away with an error instead of being silently lost or overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Errors reading a state file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file exists but could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file did not parse; it was renamed to `set_aside` and is kept there.
    #[error("{path} is corrupt ({reason}); kept as {set_aside}")]
    Corrupt {
        /// The file.
        path: String,
        /// Where it is now.
        set_aside: String,
        /// What the parser said.
        reason: String,
    },
    /// The file did not parse, and it could not be moved out of the way either.
    #[error("{path} is corrupt ({reason}) and could not be set aside")]
    SetAside {
        /// The file.
        path: String,
        /// What the parser said.
        reason: String,
        /// Why the rename failed.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short label for failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::Corrupt { .. } => "corrupt",
            Error::SetAside { .. } => "set_aside",
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads and parses a file that writepath wrote itself (a report, an agent state file).
///
/// - The file does not exist: `Ok(None)` (first start).
/// - It parses: `Ok(Some(value))`.
/// - It does not parse: it is renamed to `<file>.corrupt-<UTC timestamp>` (never replacing an
///   earlier one) and [`Error::Corrupt`] names both, so the caller can log it and start afresh
///   while the evidence stays on disk. Nothing is deleted.
pub fn read_or_set_aside<T, E: std::fmt::Display>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let reason = match parse(&bytes) {
        Ok(v) => return Ok(Some(v)),
        Err(e) => e.to_string(),
    };
    match set_aside(path, std::time::SystemTime::now()) {
        Ok(to) => Err(Error::Corrupt {
            path: path.display().to_string(),
            set_aside: to.display().to_string(),
            reason,
        }),
        Err(source) => Err(Error::SetAside {
            path: path.display().to_string(),
            reason,
            source,
        }),
    }
}

/// Renames `path` to `<path>.corrupt-<YYYYMMDDTHHMMSSZ>` (then `…-1`, `…-2` if taken), without
/// ever replacing an existing file.
fn set_aside(path: &Path, now: std::time::SystemTime) -> std::io::Result<PathBuf> {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{stamp}"));
    let base = PathBuf::from(name);
    for n in 0..1000u32 {
        let to = if n == 0 {
            base.clone()
        } else {
            let mut s = base.as_os_str().to_owned();
            s.push(format!("-{n}"));
            PathBuf::from(s)
        };
        match nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            path,
            nix::fcntl::AT_FDCWD,
            &to,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => return Ok(to),
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::EEXIST))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
/// Readers see the old file or the new one, never a part. The file keeps the mode it had, or
/// gets 0644 when new (the temporary file starts as 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => std::fs::Permissions::from_mode(0o644),
    };
    tmp.as_file().set_permissions(mode)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn parse_json(b: &[u8]) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(b)
    }

    #[test]
    fn missing_file_is_a_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let got = read_or_set_aside(&dir.path().join("state.json"), parse_json).unwrap();
        assert!(got.is_none());
    }

    #[test]
    fn good_file_parses_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("state.json");
        write_atomic(&f, br#"{"a": 1}"#).unwrap();
        let got = read_or_set_aside(&f, parse_json).unwrap().unwrap();
        assert_eq!(got["a"], 1);
        assert!(f.exists());
    }

    #[test]
    fn corrupt_file_is_set_aside_with_an_error_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("state.json");
        // A write cut short by a crash of something that did not write atomically.
        std::fs::write(&f, br#"{"targets": [{"path": "/va"#).unwrap();
        let err = read_or_set_aside(&f, parse_json).unwrap_err();
        let Error::Corrupt {
            set_aside, reason, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert!(!f.exists(), "the corrupt file is out of the way");
        let kept = std::path::Path::new(set_aside);
        assert_eq!(
            std::fs::read(kept).unwrap(),
            br#"{"targets": [{"path": "/va"#,
            "kept byte for byte"
        );
        let name = kept.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("state.json.corrupt-20"), "{name}");
        assert!(name.ends_with('Z'), "{name}");
        assert!(!reason.is_empty());
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert_eq!(err.metric_label(), "corrupt");

        // A second corrupt file in the same second does not replace the first.
        std::fs::write(&f, b"\xff\xfe").unwrap();
        let err2 = read_or_set_aside(&f, parse_json).unwrap_err();
        let Error::Corrupt { set_aside: s2, .. } = &err2 else {
            panic!("{err2}");
        };
        assert_ne!(s2, set_aside);
        assert!(kept.exists() && std::path::Path::new(s2).exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn set_aside_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.json");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..3 {
            std::fs::write(&f, b"x").unwrap();
            names.insert(set_aside(&f, t).unwrap());
        }
        let names: Vec<String> = names
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                "r.json.corrupt-20270115T080000Z",
                "r.json.corrupt-20270115T080000Z-1",
                "r.json.corrupt-20270115T080000Z-2"
            ]
        );
    }

    #[test]
    fn replaces_whole_file_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.yaml");
        write_atomic(&f, b"one").unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
