//! Patch rendering: suggestions into manifests (`writepath patch`).
//!
//! [`patch`] is pure: manifest text and [`Suggestions`] in, the chosen [`Format`] out.
//! [`document`] keeps the YAML stream (and the bytes of untouched documents), [`workload`]
//! finds each kind's pod spec, [`plan`] matches suggestions to documents and containers,
//! [`podspec`] edits a pod spec, [`names`] makes volume names, and [`render`] derives the
//! strategic, RFC 6902 and kustomize patches from the edited objects.

use std::collections::BTreeMap;

use crate::suggest::Suggestions;

pub mod document;
pub mod names;
pub mod plan;
pub mod podspec;
pub mod render;
pub mod workload;

/// What to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The whole manifest, rewritten.
    #[default]
    Manifest,
    /// A strategic merge patch (`kubectl patch --type strategic`).
    Strategic,
    /// An RFC 6902 JSON patch (`kubectl patch --type json`).
    Json6902,
    /// kustomize `patches:` entries with their targets.
    Kustomize,
}

/// How to patch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// What to print.
    pub format: Format,
    /// Only this container (`--container`).
    pub container: Option<String>,
    /// Also set runAsNonRoot, allowPrivilegeEscalation, capabilities and seccompProfile.
    pub harden: bool,
    /// Add the init container that copies image content into shadowing emptyDirs.
    pub copy_image_content: bool,
}

/// The result of [`patch`].
#[derive(Clone, Debug, PartialEq)]
pub struct Patched {
    /// The text to print.
    pub text: String,
    /// Things the user should know (skipped suggestions, claims to create, …).
    pub notes: Vec<String>,
    /// The objects patched, e.g. `Deployment prod/web`.
    pub objects: Vec<String>,
    /// Objects among them that needed no change (already patched).
    pub unchanged: Vec<String>,
    /// Whether untouched documents of the manifest come out byte for byte.
    pub preserves_bytes: bool,
}

/// Errors of `writepath patch`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is not valid YAML.
    #[error("{origin}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        /// The manifest.
        origin: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A document the suggestions point at has a kind writepath cannot patch.
    #[error("{origin}: document {document} has kind {kind}, which writepath cannot patch (it patches {})", workload::SUPPORTED)]
    UnknownKind {
        /// The manifest.
        origin: String,
        /// 1-based document index.
        document: usize,
        /// The kind.
        kind: String,
    },
    /// The manifest has no document at all to patch.
    #[error("{origin}: no workload to patch (it patches {})", workload::SUPPORTED)]
    NoWorkload {
        /// The manifest.
        origin: String,
    },
    /// None of the workloads the suggestions are for is in the manifest.
    #[error("{origin}: the suggestions are for {wanted}, but the manifest has {found}")]
    OtherWorkload {
        /// The manifest.
        origin: String,
        /// The workloads of the suggestions.
        wanted: String,
        /// The manifest's workloads.
        found: String,
    },
    /// Several documents could be the one the suggestions are for.
    #[error("{origin}: several objects could be {wanted}: the manifest has {found}; set metadata.namespace on them, or patch a manifest that holds only one")]
    AmbiguousWorkload {
        /// The manifest.
        origin: String,
        /// What the suggestions name.
        wanted: String,
        /// The manifest's workloads.
        found: String,
    },
    /// The suggestions name no workload (recorded outside Kubernetes) and the manifest holds
    /// several.
    #[error("{origin}: the suggestions name no workload (they were recorded outside Kubernetes, by `writepath record`), and the manifest has several: {found}; patch a manifest that holds only the workload that was recorded, or record it in the cluster (`writepath suggest KIND/NAME`)")]
    UnnamedWorkload {
        /// The manifest.
        origin: String,
        /// The manifest's workloads.
        found: String,
    },
    /// A document is not shaped as its kind should be.
    #[error("{origin}: document {document} ({object}): {what}")]
    Malformed {
        /// The manifest.
        origin: String,
        /// 1-based document index.
        document: usize,
        /// The object.
        object: String,
        /// What is wrong.
        what: String,
    },
    /// No container has the wanted name.
    #[error(
        "{origin}: document {document} ({object}) has no container named {name} (it has: {found})"
    )]
    NoContainer {
        /// The manifest.
        origin: String,
        /// 1-based document index.
        document: usize,
        /// The object.
        object: String,
        /// The wanted name.
        name: String,
        /// The containers it has.
        found: String,
    },
    /// Suggestions name no container and the pod has several.
    #[error("{origin}: document {document} ({object}) has several containers ({found}) and the suggestions name none: choose one with --container")]
    AmbiguousContainer {
        /// The manifest.
        origin: String,
        /// 1-based document index.
        document: usize,
        /// The object.
        object: String,
        /// The containers it has.
        found: String,
    },
    /// `--container` names a container no suggestion is for.
    #[error("no suggestions for container {name} (the suggestions are for: {found})")]
    NoSuggestions {
        /// The `--container` value.
        name: String,
        /// The containers the suggestions name.
        found: String,
    },
    /// The suggestions document is empty.
    #[error("the suggestions hold no container writepath can patch")]
    Empty,
    /// A mount path that a manifest cannot hold.
    #[error("mount path {path} is not valid UTF-8, so it cannot be written in a manifest")]
    NonUtf8Path {
        /// The path, escaped.
        path: String,
    },
    /// Serializing YAML failed.
    #[error("failed to render {what}")]
    Render {
        /// What was rendered.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
    /// Serializing JSON failed.
    #[error("failed to render the JSON patch")]
    RenderJson {
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Applies `suggestions` to the manifest `text` (named `origin` in messages) and renders the
/// result in `opts.format`. Pure: no I/O.
pub fn patch(
    text: &str,
    origin: &str,
    suggestions: &Suggestions,
    opts: &Options,
) -> Result<Patched> {
    let manifest = document::Manifest::parse(text, origin)?;
    let mut notes = Vec::new();
    let plans = plan::plan(
        origin,
        manifest.docs(),
        suggestions,
        opts.container.as_deref(),
        &mut notes,
    )?;

    let mut replaced: BTreeMap<usize, serde_yaml::Value> = BTreeMap::new();
    let mut changes = Vec::new();
    for doc_plan in &plans {
        let object = &doc_plan.object;
        let before = &manifest.docs()[object.index];
        let mut after = before.clone();
        let malformed = |what: String| Error::Malformed {
            origin: origin.into(),
            document: object.index + 1,
            object: object.to_string(),
            what,
        };
        let mut claims = match object.kind {
            workload::Kind::StatefulSet => Some(podspec::ClaimTemplates {
                existing: workload::claim_template_names(&after).map_err(malformed)?,
                added: Vec::new(),
            }),
            _ => None,
        };
        let spec = workload::pod_spec_mut(&mut after, object.kind)
            .ok_or_else(|| malformed("no pod spec".into()))?;
        podspec::apply(
            origin,
            object,
            spec,
            &doc_plan.containers,
            opts,
            claims.as_mut(),
            &mut notes,
        )?;
        if let Some(claims) = claims.filter(|c| !c.added.is_empty()) {
            workload::claim_templates_mut(&mut after)
                .ok_or_else(|| malformed("spec.volumeClaimTemplates is not a list".into()))?
                .extend(claims.added);
        }
        if after != *before {
            replaced.insert(object.index, after.clone());
        }
        changes.push((object, before, after));
    }

    let objects = changes.iter().map(|(o, _, _)| o.to_string()).collect();
    let unchanged: Vec<String> = changes
        .iter()
        .filter(|(_, b, a)| *b == a)
        .map(|(o, _, _)| o.to_string())
        .collect();
    let many = changes.len() > 1;
    let text = match opts.format {
        Format::Manifest => manifest.render(&replaced)?,
        Format::Strategic => {
            let mut out = String::new();
            for (i, (object, before, after)) in changes.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&format!(
                    "# writepath: strategic merge patch for {object}\n"
                ));
                out.push_str(&document::to_yaml(&render::strategic(
                    object, before, after,
                ))?);
            }
            out
        }
        Format::Json6902 => {
            let mut out = String::new();
            for (i, (object, before, after)) in changes.iter().enumerate() {
                if many {
                    if i > 0 {
                        out.push_str("---\n");
                    }
                    out.push_str(&format!("# writepath: JSON patch for {object}\n"));
                }
                out.push_str(&render::to_json(&serde_yaml::Value::Sequence(
                    render::json6902(before, after),
                ))?);
                out.push('\n');
            }
            out
        }
        Format::Kustomize => {
            let mut entries = Vec::new();
            for (object, before, after) in &changes {
                let ops = render::json6902(before, after);
                if !ops.is_empty() {
                    entries.push(render::kustomize_entry(object, &ops)?);
                }
            }
            let mut root = serde_yaml::Mapping::new();
            root.insert("patches".into(), serde_yaml::Value::Sequence(entries));
            format!(
                "# writepath: add these entries to the patches: list of your kustomization.yaml\n{}",
                document::to_yaml(&serde_yaml::Value::Mapping(root))?
            )
        }
    };
    Ok(Patched {
        text,
        notes,
        objects,
        unchanged,
        preserves_bytes: manifest.preserves_bytes(),
    })
}
