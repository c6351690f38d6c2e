//! Names the patch adds to a pod spec: volume and init-container names that are valid
//! DNS-1123 labels (at most 63 lowercase alphanumerics or `-`, starting and ending with an
//! alphanumeric), deterministic, and never equal to a name the pod already uses.

use std::collections::BTreeSet;

/// Longest DNS-1123 label.
pub const MAX_LABEL: usize = 63;

/// Name used when nothing usable is left of the wanted one.
const FALLBACK: &str = "writepath";

/// Turns any text into a DNS-1123 label: lowercase, runs of other characters become one `-`,
/// no `-` at either end, at most `max` characters. Never empty.
pub fn sanitize(wanted: &str, max: usize) -> String {
    let mut out = String::with_capacity(wanted.len().min(max));
    for c in wanted.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max.max(1));
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        let mut fallback = FALLBACK.to_string();
        fallback.truncate(max.max(1));
        return fallback;
    }
    out
}

/// A volume name derived from a mount path (`/var/cache/nginx` → `var-cache-nginx`), for
/// suggestions that carry no usable name.
pub fn from_mount_path(mount_path: &str) -> String {
    sanitize(mount_path, MAX_LABEL)
}

/// Whether `name` is a DNS-1123 label.
pub fn is_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The first of `base`, `base-2`, `base-3`, … that is not in `taken`, cutting `base` so the
/// result stays a label of at most 63 characters. `base` is sanitized first.
pub fn unique(base: &str, taken: &BTreeSet<String>) -> String {
    let base = sanitize(base, MAX_LABEL);
    if !taken.contains(&base) {
        return base;
    }
    // `taken` is finite, so some suffix is free.
    let mut n: u64 = 2;
    loop {
        let suffix = format!("-{n}");
        let stem = sanitize(&base, MAX_LABEL - suffix.len());
        let candidate = format!("{stem}{suffix}");
        if !taken.contains(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        let cases = [
            ("var-cache-nginx", "var-cache-nginx"),
            ("/var/cache/nginx", "var-cache-nginx"),
            ("Tmp_Dir..x", "tmp-dir-x"),
            ("--", "writepath"),
            ("", "writepath"),
            ("é/tmp", "tmp"),
        ];
        for (input, want) in cases {
            let got = sanitize(input, MAX_LABEL);
            assert_eq!(got, want, "{input}");
            assert!(is_label(&got), "{got}");
        }
    }

    #[test]
    fn long_names_are_cut_to_a_label() {
        let long = format!("/{}", "a/".repeat(60));
        let got = from_mount_path(&long);
        assert!(got.len() <= MAX_LABEL && is_label(&got), "{got}");
    }

    #[test]
    fn unique_skips_taken_names_deterministically() {
        let mut taken: BTreeSet<String> = ["tmp".to_string(), "tmp-2".to_string()].into();
        assert_eq!(unique("tmp", &taken), "tmp-3");
        assert_eq!(unique("tmp", &taken), "tmp-3");
        taken.clear();
        assert_eq!(unique("tmp", &taken), "tmp");
        let long = "x".repeat(63);
        taken.insert(long.clone());
        let got = unique(&long, &taken);
        assert_eq!(got.len(), 63);
        assert!(got.ends_with("-2") && is_label(&got), "{got}");
    }

    #[test]
    fn cut_never_leaves_a_trailing_dash() {
        let base = format!("{}-b", "a".repeat(60));
        let taken: BTreeSet<String> = [sanitize(&base, MAX_LABEL)].into();
        let got = unique(&base, &taken);
        assert!(is_label(&got), "{got}");
    }
}
