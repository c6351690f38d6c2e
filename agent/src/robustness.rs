//! The properties every parser of outside input keeps, one check per fuzz target. The
//! cargo-fuzz targets in `fuzz/` call these on generated input; a unit test replays every file
//! of `fuzz/regressions/<target>/` (inputs that once broke a property) and `fuzz/seeds/<target>/`
//! through them, so a fixed crash stays fixed in a plain `cargo test`. See `docs/hardening.md`.
//!
//! The parsers must never panic on any input; these checks panic (that is how a fuzzer sees a
//! failure) when a parser panics or a property does not hold.

use crate::path::RawPath;

/// The fuzz targets, by name (the directory names under `fuzz/regressions/`).
pub const TARGETS: &[&str] = &["decode", "mountinfo", "report", "manifest", "paths"];

/// Runs the check of `target` on `data`. Unknown targets are ignored (returns false).
pub fn check(target: &str, data: &[u8]) -> bool {
    match target {
        "decode" => decode(data),
        "mountinfo" => mountinfo(data),
        "report" => report(data),
        "manifest" => manifest(data),
        "paths" => paths(data),
        _ => return false,
    }
    true
}

/// What a printed cell must never hold: raw control characters reach the terminal.
fn assert_printable(text: &str, what: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what} printed a raw control character: {text:?}"
    );
}

/// Ring-buffer records: [`crate::decode::decode`] returns a value or an error, and the paths
/// it yields resolve to absolute, normalized paths.
pub fn decode(data: &[u8]) {
    let Ok(w) = crate::decode::decode(data) else {
        return;
    };
    let base = w
        .base
        .as_deref()
        .map(RawPath::from_leaf_first)
        .unwrap_or_else(|| RawPath::from("/"));
    check_normalized(&RawPath::resolve(&base, &w.path));
    if let Some(p2) = &w.path2 {
        let base2 = w
            .base2
            .as_deref()
            .map(RawPath::from_leaf_first)
            .unwrap_or_else(|| RawPath::from("/"));
        check_normalized(&RawPath::resolve(&base2, p2));
    }
    let _ = w.comm();
}

/// `/proc/<pid>/mountinfo` text: every parsed mount point is absolute, each appears once, and
/// every absolute path lands on some mount when `/` is there.
pub fn mountinfo(data: &[u8]) {
    let mounts = crate::record::mounts::parse_mountinfo(data);
    let mut seen = std::collections::HashSet::new();
    for m in &mounts {
        assert!(m.mount_point.is_absolute(), "{:?}", m.mount_point);
        assert!(seen.insert(m.mount_point.clone()), "duplicate mount point");
    }
    if mounts.iter().any(|m| m.mount_point.as_bytes() == b"/") {
        assert!(crate::record::mounts::landing(&mounts, &RawPath::from("/x/y")).is_some());
    }
}

/// Report JSON: a report that parses serializes back to the same report, and the suggestion
/// engine, its table, the record table and verify's outcome handle it without panicking and
/// print no raw control character.
pub fn report(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = crate::report::Report::from_json(text, "fuzz") else {
        return;
    };
    let again = serde_json::to_string(&r).expect("a parsed report serializes");
    let back = crate::report::Report::from_json(&again, "fuzz").expect("and parses again");
    assert_eq!(back, r, "report JSON round trip");

    let s = crate::suggest::suggest(std::slice::from_ref(&r));
    assert_printable(&crate::suggest::table::render_table(&s), "suggest table");
    for view in [
        crate::record::table::View::Grouped,
        crate::record::table::View::Wide,
    ] {
        let mut table = Vec::new();
        crate::record::table::print(&r, view, &mut table).expect("print to memory");
        assert_printable(&String::from_utf8_lossy(&table), "record table");
    }
    let o = crate::verify::Outcome::from_report(&r, &[]);
    assert_printable(&o.render_table(), "verify table");
    serde_json::to_string(&o).expect("outcome serializes");
}

/// The fixed suggestions manifests are patched with.
fn sample_suggestions() -> crate::suggest::Suggestions {
    use crate::suggest::*;
    let vol =
        |p: &str, name: &str| VolumeSuggestion::empty_dir(RawPath::from(p), name, Purpose::Temp);
    Suggestions {
        version: SUGGESTIONS_VERSION,
        containers: vec![ContainerSuggestions {
            container: Some("app".into()),
            container_kind: "container".into(),
            volumes: vec![vol("/tmp", "tmp"), vol("/var/cache/app", "var-cache-app")],
            ..Default::default()
        }],
    }
}

/// Manifests (YAML, possibly many documents): [`crate::patch::patch`] returns a patch or an
/// error for any text, in every format. The first byte picks the format and options.
pub fn manifest(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = match sel % 4 {
        0 => crate::patch::Format::Manifest,
        1 => crate::patch::Format::Strategic,
        2 => crate::patch::Format::Json6902,
        _ => crate::patch::Format::Kustomize,
    };
    let opts = crate::patch::Options {
        format,
        container: (sel & 0x10 != 0).then(|| "app".to_string()),
        harden: sel & 0x20 != 0,
        copy_image_content: sel & 0x40 != 0,
    };
    let _ = crate::patch::patch(text, "fuzz.yaml", &sample_suggestions(), &opts);
}

/// Path bytes from the kernel: resolving gives an absolute normalized path, display escapes
/// every control character and invalid byte, and JSON keeps every byte.
pub fn paths(data: &[u8]) {
    let (base, name) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"/"[..], data),
    };
    let base = RawPath::resolve(&RawPath::from("/"), base);
    check_normalized(&base);
    let p = RawPath::resolve(&base, name);
    check_normalized(&p);
    for raw in [RawPath::from_bytes(data.to_vec()), p] {
        let shown = raw.to_string();
        assert!(
            !shown.chars().any(char::is_control),
            "display escapes control characters: {shown:?}"
        );
        let json = serde_json::to_string(&raw).expect("paths serialize");
        let back: RawPath = serde_json::from_str(&json).expect("and parse");
        assert_eq!(back, raw, "JSON keeps every byte");
    }
}

fn check_normalized(p: &RawPath) {
    assert!(p.is_absolute(), "{p:?}");
    let b = p.as_bytes();
    assert!(b == b"/" || !b.ends_with(b"/"), "{p:?}");
    for c in b[1..].split(|x| *x == b'/') {
        assert!(
            b == b"/" || (!c.is_empty() && c != b"." && c != b".."),
            "not normalized: {p:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input that ever broke a property, and the seed corpus, still passes.
    #[test]
    fn fuzz_regressions_replay() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut replayed = 0;
        for (kind, target) in ["regressions", "seeds"]
            .iter()
            .flat_map(|k| TARGETS.iter().map(move |t| (k, t)))
        {
            let dir = fuzz.join(kind).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                let name = e.path().display().to_string();
                let r = std::panic::catch_unwind(|| check(target, &data));
                assert!(r.is_ok(), "{name} breaks {target}");
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no inputs under {}", fuzz.display());
    }

    #[test]
    fn checks_hold_on_small_inputs() {
        for t in TARGETS {
            for data in [
                &b""[..],
                b"\0",
                b"/",
                b"\xff\xfe",
                b"{\"version\": 1}",
                b"- \n",
            ] {
                assert!(check(t, data));
            }
        }
        assert!(!check("nope", b""));
    }
}
