//! The manifest as a YAML stream: parsed once for its values (errors name file, line and
//! column), and split at its `---` lines so that documents the patch does not touch are
//! written back byte for byte.
//!
//! A rewritten document keeps the comment lines it starts with; comments inside it are lost.
//!
//! A `kind: List` document (what `kubectl get -o yaml` prints for several objects) stands for
//! its items: each item is a document to patch, and the List is written back as a List.
//!
//! The split is cross-checked against the parser: when the two disagree (directives, content
//! on a `---` line, anything unusual), every document is re-emitted from its parsed value
//! instead, which keeps each one semantically identical but not byte-identical.

use std::collections::BTreeMap;

use serde::Deserialize as _;
use serde_yaml::Value;

use super::{Error, Result};

/// A parsed multi-document manifest.
#[derive(Debug)]
pub struct Manifest {
    /// The stream's documents, in order (an empty document is `Null`; a List is one).
    stream: Vec<Value>,
    /// The documents to patch: the stream's, with each `kind: List` replaced by its items.
    docs: Vec<Value>,
    /// For each of `docs`: its index in `stream`, and its index in that List's items.
    places: Vec<(usize, Option<usize>)>,
    /// The source cut at its document markers, when the cut matches `stream`.
    segments: Option<Vec<Segment>>,
}

/// The items of a `kind: List` document, or `None` for any other document.
fn list_items(doc: &Value) -> Option<&Vec<Value>> {
    match (doc.get("kind"), doc.get("items")) {
        (Some(Value::String(kind)), Some(Value::Sequence(items))) if kind == "List" => Some(items),
        _ => None,
    }
}

/// A piece of the source: an optional `---` line and what follows up to the next one.
#[derive(Debug)]
struct Segment {
    /// The marker line with its line ending, or empty for text before the first marker.
    marker: String,
    /// The rest, up to the next marker line.
    body: String,
    /// Index into `docs` when this segment holds a document.
    doc: Option<usize>,
}

impl Manifest {
    /// Parses `text`; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let mut stream = Vec::new();
        for de in serde_yaml::Deserializer::from_str(text) {
            let mut value = Value::deserialize(de).map_err(|e| yaml_error(origin, &e))?;
            // `<<: *anchor` merge keys, as kubectl reads them.
            value.apply_merge().map_err(|e| yaml_error(origin, &e))?;
            stream.push(value);
        }
        let segments = split(text).and_then(|segments| matches(segments, &stream));
        let mut docs = Vec::new();
        let mut places = Vec::new();
        for (i, doc) in stream.iter().enumerate() {
            match list_items(doc) {
                Some(items) => {
                    for (k, item) in items.iter().enumerate() {
                        docs.push(item.clone());
                        places.push((i, Some(k)));
                    }
                }
                None => {
                    docs.push(doc.clone());
                    places.push((i, None));
                }
            }
        }
        Ok(Manifest {
            stream,
            docs,
            places,
            segments,
        })
    }

    /// The documents.
    pub fn docs(&self) -> &[Value] {
        &self.docs
    }

    /// Whether untouched documents are written back byte for byte.
    pub fn preserves_bytes(&self) -> bool {
        self.segments.is_some()
    }

    /// The manifest with the documents in `replaced` (by index into [`Manifest::docs`])
    /// swapped for new values; a List holding one of them is written back as a List.
    pub fn render(&self, replaced: &BTreeMap<usize, Value>) -> Result<String> {
        let mut in_stream: BTreeMap<usize, Value> = BTreeMap::new();
        for (index, value) in replaced {
            let Some(&(doc, item)) = self.places.get(*index) else {
                continue;
            };
            match item {
                None => {
                    in_stream.insert(doc, value.clone());
                }
                Some(k) => {
                    let list = in_stream
                        .entry(doc)
                        .or_insert_with(|| self.stream[doc].clone());
                    if let Some(slot) = list.get_mut("items").and_then(|items| items.get_mut(k)) {
                        *slot = value.clone();
                    }
                }
            }
        }
        let replaced = &in_stream;
        let mut out = String::new();
        match &self.segments {
            Some(segments) => {
                for seg in segments {
                    out.push_str(&seg.marker);
                    match seg.doc.and_then(|i| replaced.get(&i)) {
                        Some(value) => {
                            out.push_str(leading_comments(&seg.body));
                            out.push_str(&to_yaml(value)?);
                        }
                        None => out.push_str(&seg.body),
                    }
                }
            }
            None => {
                for (i, doc) in self.stream.iter().enumerate() {
                    if i > 0 {
                        out.push_str("---\n");
                    }
                    out.push_str(&to_yaml(replaced.get(&i).unwrap_or(doc))?);
                }
            }
        }
        Ok(out)
    }
}

/// Serializes one value as a YAML document (no leading `---`).
pub fn to_yaml(value: &Value) -> Result<String> {
    serde_yaml::to_string(value).map_err(|source| Error::Render {
        what: "YAML",
        source,
    })
}

/// Maps a parser error to [`Error::Yaml`] with its position.
fn yaml_error(origin: &str, e: &serde_yaml::Error) -> Error {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    Error::Yaml {
        origin: origin.to_string(),
        line,
        column,
        message: e.to_string(),
    }
}

/// Whether a line is a document start marker (`---` alone or followed by blanks).
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Cuts the source at its marker lines. `None` when it holds what the cut cannot handle:
/// directives (`%YAML`), end markers (`...`) or content after a `---` on its line.
fn split(text: &str) -> Option<Vec<Segment>> {
    let mut segments = vec![Segment {
        marker: String::new(),
        body: String::new(),
        doc: None,
    }];
    for line in text.split_inclusive('\n') {
        if line.starts_with('%') || line.starts_with("...") {
            return None;
        }
        if is_marker(line) {
            let rest = line[3..].trim();
            if !(rest.is_empty() || rest.starts_with('#')) {
                return None;
            }
            segments.push(Segment {
                marker: line.to_string(),
                body: String::new(),
                doc: None,
            });
        } else if let Some(last) = segments.last_mut() {
            last.body.push_str(line);
        }
    }
    Some(segments)
}

/// The comment and blank lines a document starts with (kept when the document is rewritten).
fn leading_comments(body: &str) -> &str {
    let mut end = 0;
    for line in body.split_inclusive('\n') {
        let t = line.trim();
        if !(t.is_empty() || t.starts_with('#')) {
            break;
        }
        end += line.len();
    }
    &body[..end]
}

/// Whether a piece of YAML has nothing but blanks and comments.
fn is_blank(body: &str) -> bool {
    body.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

/// Assigns documents to segments and checks each segment parses to its document.
fn matches(mut segments: Vec<Segment>, docs: &[Value]) -> Option<Vec<Segment>> {
    let mut next = 0;
    for (i, seg) in segments.iter_mut().enumerate() {
        // Text before the first marker is a document only when it has content.
        if i == 0 && is_blank(&seg.body) {
            continue;
        }
        let value = if is_blank(&seg.body) {
            Value::Null
        } else {
            let mut value = serde_yaml::from_str::<Value>(&seg.body).ok()?;
            value.apply_merge().ok()?;
            value
        };
        if docs.get(next) != Some(&value) {
            return None;
        }
        seg.doc = Some(next);
        next += 1;
    }
    (next == docs.len()).then_some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace_all(m: &Manifest, with: &str) -> BTreeMap<usize, Value> {
        let v: Value = serde_yaml::from_str(with).unwrap();
        (0..m.docs().len())
            .filter(|i| !m.docs()[*i].is_null())
            .map(|i| (i, v.clone()))
            .collect()
    }

    #[test]
    fn untouched_documents_keep_their_bytes() {
        let text = "# leading comment\nkind: A   # trailing\n---\n# only a comment\nkind:  B\n--- # marker comment\n\nkind: C\n";
        let m = Manifest::parse(text, "m.yaml").unwrap();
        assert!(m.preserves_bytes());
        assert_eq!(m.docs().len(), 3);
        assert_eq!(m.render(&BTreeMap::new()).unwrap(), text);
        let mut one = BTreeMap::new();
        one.insert(1, serde_yaml::from_str::<Value>("kind: X").unwrap());
        let out = m.render(&one).unwrap();
        assert_eq!(
            out,
            "# leading comment\nkind: A   # trailing\n---\n# only a comment\nkind: X\n--- # marker comment\n\nkind: C\n"
        );
    }

    #[test]
    fn leading_marker_and_empty_documents() {
        for text in [
            "---\nkind: A\n",
            "---\nkind: A\n---\n---\nkind: B\n",
            "kind: A\n---\n",
        ] {
            let m = Manifest::parse(text, "m.yaml").unwrap();
            assert_eq!(m.render(&BTreeMap::new()).unwrap(), text, "{text:?}");
            let out = m.render(&replace_all(&m, "kind: Z")).unwrap();
            let again = Manifest::parse(&out, "out").unwrap();
            let kinds: Vec<_> = again.docs().iter().filter(|d| !d.is_null()).collect();
            assert!(kinds.iter().all(|d| d["kind"] == "Z"), "{out}");
        }
    }

    #[test]
    fn unusual_streams_fall_back_to_values() {
        let text = "%YAML 1.2\n---\nkind: A\n...\n";
        let m = Manifest::parse(text, "m.yaml").unwrap();
        assert!(!m.preserves_bytes());
        assert_eq!(m.docs().len(), 1);
        let out = m.render(&BTreeMap::new()).unwrap();
        assert_eq!(out, "kind: A\n");
    }

    #[test]
    fn merge_keys_are_applied() {
        let text = "base: &b {image: x, name: a}\nkind: Pod\nspec:\n  containers:\n  - <<: *b\n    name: app\n";
        let m = Manifest::parse(text, "m.yaml").unwrap();
        assert!(m.preserves_bytes());
        let c = &m.docs()[0]["spec"]["containers"][0];
        assert_eq!(
            (c["image"].as_str(), c["name"].as_str()),
            (Some("x"), Some("app"))
        );
    }

    #[test]
    fn list_items_are_documents_and_the_list_is_kept() {
        let text = "kind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n- kind: Deployment\n  metadata: {name: a}\n- kind: Deployment\n  metadata: {name: b}\n";
        let m = Manifest::parse(text, "m.yaml").unwrap();
        let names: Vec<_> = m
            .docs()
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["s", "a", "b"], "the List's items are the documents");
        assert_eq!(m.render(&BTreeMap::new()).unwrap(), text);
        let mut one = BTreeMap::new();
        let mut b = m.docs()[2].clone();
        b["patched"] = Value::Bool(true);
        one.insert(2, b);
        let out = m.render(&one).unwrap();
        let again = Manifest::parse(&out, "out").unwrap();
        assert_eq!(again.stream.len(), 2, "still a Service and a List: {out}");
        assert_eq!(again.stream[0], m.stream[0], "{out}");
        assert_eq!(again.stream[1]["kind"], "List", "{out}");
        assert_eq!(
            again.stream[1]["metadata"], m.stream[1]["metadata"],
            "{out}"
        );
        assert_eq!(again.docs()[1], m.docs()[1], "{out}");
        assert_eq!(again.docs()[2]["patched"], Value::Bool(true), "{out}");
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let err = Manifest::parse("kind: A\n---\nkind: B\nspec: [1,\n", "bad.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.yaml:"), "{msg}");
        match err {
            Error::Yaml { line, .. } => assert!(line >= 4, "{msg}"),
            other => panic!("{other}"),
        }
    }
}
