//! Symbolic-link aliases: one canonical name for every written path, so `/var/run/nginx.pid`
//! and `/run/nginx.pid` land in one suggestion.
//!
//! The recorder keeps paths as the program named them; it does not resolve symlinks. Aliases
//! come from three places, later ones overriding earlier ones:
//! 1. the well-known links of every current distribution image (Debian, Ubuntu, Alpine,
//!    RHEL/UBI, Fedora, distroless): `/var/run -> /run` and `/var/lock -> /run/lock`;
//! 2. links the workload created itself (a `symlink` write and its content in `related`);
//! 3. links the recorder read in the image (`Target.symlinks`).

use std::collections::BTreeMap;

use crate::path::RawPath;
use crate::report::{OpName, Write};

/// Links every image is assumed to have.
const WELL_KNOWN: &[(&str, &str)] = &[("/var/run", "/run"), ("/var/lock", "/run/lock")];

/// How many links one path may pass through (the kernel's own limit is 40).
const MAX_HOPS: usize = 16;

/// Known links, absolute and normalized on both sides.
#[derive(Clone, Debug, Default)]
pub struct Aliases {
    links: BTreeMap<RawPath, RawPath>,
}

impl Aliases {
    /// Builds the alias table from the well-known links, the writes and the recorded links.
    pub fn new<'a>(
        writes: impl IntoIterator<Item = &'a Write>,
        recorded: &BTreeMap<RawPath, RawPath>,
    ) -> Aliases {
        let mut links = BTreeMap::new();
        for (from, to) in WELL_KNOWN {
            links.insert(RawPath::from(*from), RawPath::from(*to));
        }
        for w in writes {
            if w.ops.contains(&OpName::Symlink) && w.path.is_absolute() {
                if let Some(content) = w.related.first() {
                    links.insert(
                        w.path.clone(),
                        RawPath::resolve(&w.path.parent(), content.as_bytes()),
                    );
                }
            }
        }
        for (from, content) in recorded {
            if from.is_absolute() {
                links.insert(
                    from.clone(),
                    RawPath::resolve(&from.parent(), content.as_bytes()),
                );
            }
        }
        // `/` is never a link, and a link onto itself would only loop.
        links.retain(|from, to| from != to && from.as_bytes() != b"/");
        Aliases { links }
    }

    /// The canonical name of `path`. Links on its directories are always followed; a link at
    /// the path itself only when `follow_leaf` (operations like `open` follow it, `rename`,
    /// `unlink` or `mkdir` act on the link).
    pub fn canonical(&self, path: &RawPath, follow_leaf: bool) -> RawPath {
        let mut current = path.clone();
        for _ in 0..MAX_HOPS {
            let Some((from, to)) = self.longest_link(&current, follow_leaf) else {
                break;
            };
            let rest = &current.as_bytes()[from.as_bytes().len()..];
            let mut joined = to.as_bytes().to_vec();
            joined.extend_from_slice(rest);
            current = RawPath::resolve(&RawPath::from("/"), &joined);
        }
        current
    }

    /// The longest link that is a proper ancestor of `path`, or `path` itself when
    /// `follow_leaf`.
    fn longest_link(&self, path: &RawPath, follow_leaf: bool) -> Option<(&RawPath, &RawPath)> {
        self.links
            .iter()
            .filter(|(from, _)| path.starts_with(from) && (follow_leaf || *from != path))
            .max_by_key(|(from, _)| from.as_bytes().len())
    }
}

/// Whether the operations of a write follow a link at the written path itself (open-like
/// calls do; calls that create, remove or rename the name act on the link).
pub fn follows_leaf(w: &Write) -> bool {
    !w.ops.is_empty() && w.ops.iter().all(|op| follows_leaf_op(*op))
}

/// Whether one operation follows a link at the written path itself.
pub fn follows_leaf_op(op: OpName) -> bool {
    matches!(
        op,
        OpName::OpenWrite
            | OpName::Append
            | OpName::Create
            | OpName::Truncate
            | OpName::Chmod
            | OpName::Chown
            | OpName::Utimes
            | OpName::Setxattr
            | OpName::Removexattr
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RawPath {
        RawPath::from(s)
    }

    #[test]
    fn well_known_links_apply() {
        let a = Aliases::new([], &BTreeMap::new());
        assert_eq!(
            a.canonical(&p("/var/run/nginx.pid"), false),
            p("/run/nginx.pid")
        );
        assert_eq!(a.canonical(&p("/var/lock/x"), false), p("/run/lock/x"));
        assert_eq!(a.canonical(&p("/var/running"), false), p("/var/running"));
        assert_eq!(a.canonical(&p("/run/x"), false), p("/run/x"));
    }

    #[test]
    fn recorded_links_resolve_relative_content_and_leaf_only_when_followed() {
        let mut recorded = BTreeMap::new();
        recorded.insert(p("/var/log/nginx/error.log"), p("/dev/stderr"));
        recorded.insert(p("/app/cache"), p("../tmp/cache"));
        let a = Aliases::new([], &recorded);
        assert_eq!(
            a.canonical(&p("/var/log/nginx/error.log"), true),
            p("/dev/stderr")
        );
        assert_eq!(
            a.canonical(&p("/var/log/nginx/error.log"), false),
            p("/var/log/nginx/error.log")
        );
        assert_eq!(
            a.canonical(&p("/app/cache/x/y"), false),
            p("/tmp/cache/x/y")
        );
    }

    #[test]
    fn loops_stop() {
        let mut recorded = BTreeMap::new();
        recorded.insert(p("/a"), p("/b"));
        recorded.insert(p("/b"), p("/a"));
        let a = Aliases::new([], &recorded);
        let out = a.canonical(&p("/a/x"), false);
        assert!(out == p("/a/x") || out == p("/b/x"), "{out}");
    }

    #[test]
    fn links_made_by_the_workload_count() {
        let w = Write {
            path: p("/app/tmp"),
            ops: vec![OpName::Symlink],
            related: vec![p("/tmp/app")],
            ..Default::default()
        };
        let a = Aliases::new([&w], &BTreeMap::new());
        assert_eq!(a.canonical(&p("/app/tmp/f"), false), p("/tmp/app/f"));
    }
}
