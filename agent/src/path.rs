//! Paths as the container sees them: raw bytes (Linux paths need not be UTF-8), joined and
//! normalized lexically, escaped only when printed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A path as raw bytes. Serialized as a JSON string when it is valid UTF-8, else as
/// `{"base64": "..."}` so every byte round-trips.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RawPath(Vec<u8>);

impl RawPath {
    /// Wraps bytes as they are.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the path starts with `/`.
    pub fn is_absolute(&self) -> bool {
        self.0.first() == Some(&b'/')
    }

    /// The path as UTF-8, if it is.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The components between slashes, without empty ones.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'/').filter(|c| !c.is_empty())
    }

    /// The parent directory of a normalized absolute path (`/` is its own parent).
    pub fn parent(&self) -> RawPath {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(0) | None => RawPath::from_bytes(b"/".to_vec()),
            Some(i) => RawPath::from_bytes(self.0[..i].to_vec()),
        }
    }

    /// The last component (empty for `/`).
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// Whether `self` is `dir` or lies below it (component-wise: `/var/lib` is not below
    /// `/var/li`).
    pub fn starts_with(&self, dir: &RawPath) -> bool {
        let d = dir.as_bytes();
        if d == b"/" {
            return self.is_absolute();
        }
        self.0.starts_with(d) && (self.0.len() == d.len() || self.0[d.len()] == b'/')
    }

    /// Depth in components (`/` is 0, `/a/b` is 2).
    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// Joins a path to a base directory and normalizes the result: an absolute `name` ignores
    /// the base; `.` and empty components go; `..` removes the previous component and never
    /// climbs above `/`. Purely lexical: symlinks are the caller's business.
    pub fn resolve(base: &RawPath, name: &[u8]) -> RawPath {
        fn push_all<'a>(bytes: &'a [u8], parts: &mut Vec<&'a [u8]>) {
            for c in bytes.split(|b| *b == b'/') {
                match c {
                    b"" | b"." => {}
                    b".." => {
                        parts.pop();
                    }
                    c => parts.push(c),
                }
            }
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        if name.first() != Some(&b'/') {
            push_all(base.as_bytes(), &mut parts);
        }
        push_all(name, &mut parts);
        let mut out = Vec::with_capacity(name.len() + base.0.len() + 1);
        for c in &parts {
            out.push(b'/');
            out.extend_from_slice(c);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        RawPath(out)
    }

    /// Builds a path from base components listed leaf first (`b"b\0a\0"` is `/a/b`), the form
    /// the kernel walk emits.
    pub fn from_leaf_first(components: &[u8]) -> RawPath {
        let names: Vec<&[u8]> = components
            .split(|b| *b == 0)
            .filter(|c| !c.is_empty())
            .collect();
        let mut out = Vec::new();
        for name in names.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(name);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        RawPath(out)
    }
}

impl fmt::Display for RawPath {
    /// Safe for terminals: invalid UTF-8 bytes, control characters and backslashes are escaped
    /// (`\xNN`, `\n`, `\\`), so a hostile name cannot move the cursor or forge table rows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    '\r' => f.write_str("\\r")?,
                    c if c.is_control() => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            write!(f, "\\x{b:02x}")?;
                        }
                    }
                    c => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl From<&str> for RawPath {
    fn from(s: &str) -> Self {
        RawPath(s.as_bytes().to_vec())
    }
}

impl Serialize for RawPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        match self.to_str() {
            Some(text) => s.serialize_str(text),
            None => {
                use serde::ser::SerializeMap as _;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "base64",
                    &base64::engine::general_purpose::STANDARD.encode(&self.0),
                )?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Bytes { base64: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(RawPath(t.into_bytes())),
            Repr::Bytes { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.as_bytes())
                .map(RawPath)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("/", b"tmp/a", "/tmp/a"),
            ("/work", b"a", "/work/a"),
            ("/work", b"/abs/x", "/abs/x"),
            ("/work/sub", b"../x", "/work/x"),
            ("/", b"../../x", "/x"),
            ("/a", b"./b/./c//d/", "/a/b/c/d"),
            ("/a", b"", "/a"),
            ("/a/b", b"..", "/a"),
            ("/", b"..", "/"),
        ];
        for (base, name, want) in cases {
            let got = RawPath::resolve(&RawPath::from(*base), name);
            assert_eq!(
                got,
                RawPath::from(*want),
                "resolve({base:?}, {:?})",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn non_utf8_survives_resolution_and_json() {
        let name = b"caf\xe9/\xff\xfe".to_vec();
        let p = RawPath::resolve(&RawPath::from("/tmp"), &name);
        assert_eq!(p.as_bytes(), b"/tmp/caf\xe9/\xff\xfe");
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("base64"), "{json}");
        let back: RawPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let text: RawPath = serde_json::from_str("\"/var/log\"").unwrap();
        assert_eq!(text, RawPath::from("/var/log"));
    }

    #[test]
    fn display_escapes_terminal_hazards() {
        let p = RawPath::from_bytes(b"/tmp/a\nb\x1b[31m\\\xff".to_vec());
        assert_eq!(p.to_string(), "/tmp/a\\nb\\x1b[31m\\\\\\xff");
    }

    #[test]
    fn leaf_first_components() {
        assert_eq!(RawPath::from_leaf_first(b"b\0a\0"), RawPath::from("/a/b"));
        assert_eq!(RawPath::from_leaf_first(b""), RawPath::from("/"));
    }

    #[test]
    fn prefix_is_component_wise() {
        let p = RawPath::from("/var/lib/x");
        assert!(p.starts_with(&RawPath::from("/var/lib")));
        assert!(p.starts_with(&RawPath::from("/")));
        assert!(!p.starts_with(&RawPath::from("/var/li")));
        assert_eq!(p.parent(), RawPath::from("/var/lib"));
        assert_eq!(RawPath::from("/x").parent(), RawPath::from("/"));
        assert_eq!(p.file_name(), b"x");
        assert_eq!(p.depth(), 3);
    }
}
