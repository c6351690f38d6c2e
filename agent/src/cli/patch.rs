//! `writepath patch`: reads the suggestions (from reports or a suggestions file) and a
//! manifest, prints the patch. The manifest is only changed with `--in-place`, atomically,
//! and never when anything fails.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::ValueEnum;

use crate::patch::{self, Format, Options};
use crate::suggest::Suggestions;

/// Arguments of `writepath patch`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["report", "suggestions", "workload"])))]
#[command(
    after_help = "Examples:\n  writepath patch --report app.json -f deploy.yaml\n  writepath patch -n shop deploy/web -o strategic    (the agents' reports and the live object)"
)]
pub struct Args {
    /// Report written by `writepath record`; repeat it (or give several files after one
    /// --report) to merge runs, replicas, nodes.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub report: Vec<PathBuf>,
    /// A suggestions document (JSON or YAML, as `writepath suggest -o json` prints).
    #[arg(long, value_name = "FILE")]
    pub suggestions: Option<PathBuf>,
    /// In the cluster: the workload whose agents' reports give the suggestions
    /// (`deploy/web`, …); without -f its live object is the manifest.
    #[arg(value_name = "KIND/NAME", conflicts_with_all = ["report", "suggestions"])]
    pub workload: Option<String>,
    /// In the cluster: the workload's namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, value_name = "NS", requires = "workload")]
    pub namespace: Option<String>,
    /// The manifest to patch (multi-document YAML; `-` reads standard input). Required with
    /// --report and --suggestions.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "MANIFEST",
        required_unless_present = "workload"
    )]
    pub filename: Option<PathBuf>,
    /// Only patch this container.
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// What to print (default: manifest).
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<PatchFormat>,
    /// Deprecated spelling of -o/--output.
    #[arg(long, value_enum, hide = true, conflicts_with = "output")]
    pub format: Option<PatchFormat>,
    /// Rewrite MANIFEST instead of printing it (-o manifest only; atomic).
    #[arg(long)]
    pub in_place: bool,
    /// Also set runAsNonRoot, allowPrivilegeEscalation: false, capabilities.drop [ALL] and
    /// seccompProfile RuntimeDefault where the manifest does not set them.
    #[arg(long)]
    pub harden: bool,
    /// For directories whose image content an emptyDir would hide, add an init container that
    /// copies that content into the volume (needs `sh` and `cp` in the image).
    #[arg(long)]
    pub copy_image_content: bool,
}

/// `-o` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PatchFormat {
    /// The manifest, rewritten.
    Manifest,
    /// A strategic merge patch for `kubectl patch --type strategic --patch-file`.
    Strategic,
    /// An RFC 6902 JSON patch for `kubectl patch --type json --patch-file`.
    Json6902,
    /// kustomize `patches:` entries (target and inline patch).
    Kustomize,
}

impl From<PatchFormat> for Format {
    fn from(f: PatchFormat) -> Format {
        match f {
            PatchFormat::Manifest => Format::Manifest,
            PatchFormat::Strategic => Format::Strategic,
            PatchFormat::Json6902 => Format::Json6902,
            PatchFormat::Kustomize => Format::Kustomize,
        }
    }
}

impl Args {
    /// What to print: `-o`, else the deprecated `--format`, else the manifest.
    fn output(&self) -> PatchFormat {
        self.output.or(self.format).unwrap_or(PatchFormat::Manifest)
    }
}

/// Runs `writepath patch`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.format.is_some() {
        eprintln!("writepath: note: --format is deprecated, use -o/--output");
    }
    let output = args.output();
    let selection = super::cluster::Selection {
        namespace: args.namespace.clone(),
        all_namespaces: false,
        workload: args.workload.clone(),
    };
    let filename = args.filename.clone().unwrap_or_default();
    let live = args.filename.is_none();
    let stdin = filename.as_os_str() == "-";
    if args.in_place && live {
        anyhow::bail!("--in-place needs a manifest file (-f)");
    }
    if args.in_place && output != PatchFormat::Manifest {
        anyhow::bail!("--in-place only works with -o manifest");
    }
    if args.in_place && stdin {
        anyhow::bail!("--in-place needs a manifest file, not standard input");
    }
    let suggestions = load_suggestions(&args)?;
    let (origin, text) = if live {
        let workload =
            crate::cluster::gather::parse_workload(args.workload.as_deref().unwrap_or(""))?;
        let text = super::cluster::manifest(&selection, &workload)?;
        (format!("{} {}", workload.kind, workload.name), text)
    } else if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read the manifest from standard input")?;
        ("<stdin>".to_string(), text)
    } else {
        let origin = filename.display().to_string();
        let text = std::fs::read_to_string(&filename)
            .with_context(|| format!("failed to read manifest {origin}"))?;
        (origin, text)
    };
    let opts = Options {
        format: output.into(),
        container: args.container.clone(),
        harden: args.harden,
        copy_image_content: args.copy_image_content,
    };
    let patched = patch::patch(&text, &origin, &suggestions, &opts)?;
    for note in &patched.notes {
        eprintln!("writepath: note: {note}");
    }
    if output == PatchFormat::Manifest && !patched.preserves_bytes {
        eprintln!(
            "writepath: note: {origin} uses YAML features (directives, `...`, content after `---`) that are not reproduced byte for byte; every document is re-emitted"
        );
    }
    for object in &patched.unchanged {
        eprintln!("writepath: {object} already has everything the suggestions ask for");
    }
    if args.in_place {
        // A symlinked manifest (a shared base, a checked-in link) is patched where it lives:
        // the rename happens beside the file the link points to, and the link stays.
        let target = std::fs::canonicalize(&filename)
            .with_context(|| format!("failed to resolve manifest {origin}"))?;
        let written = if filename.is_symlink() {
            format!("{} (the target of {origin})", target.display())
        } else {
            origin.clone()
        };
        if patched.text != text {
            crate::fsutil::write_atomic(&target, patched.text.as_bytes())
                .with_context(|| format!("failed to write manifest {written}"))?;
        }
        eprintln!(
            "writepath: patched {} in {written}",
            patched.objects.join(", ")
        );
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(patched.text.as_bytes())
            .context("failed to write to standard output")?;
        out.flush().context("failed to write to standard output")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The suggestions, from `--suggestions` or computed from `--report`.
fn load_suggestions(args: &Args) -> anyhow::Result<Suggestions> {
    if let Some(path) = &args.suggestions {
        return read_suggestions(path);
    }
    if args.workload.is_some() {
        let reports = super::cluster::reports(&super::cluster::Selection {
            namespace: args.namespace.clone(),
            all_namespaces: false,
            workload: args.workload.clone(),
        })?;
        return Ok(crate::suggest::suggest(&reports));
    }
    let reports = crate::suggest::load_reports(&args.report)?;
    Ok(crate::suggest::suggest(&reports))
}

/// Reads a suggestions document (JSON is YAML, so one parser reads both).
fn read_suggestions(path: &Path) -> anyhow::Result<Suggestions> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read suggestions {origin}"))?;
    let suggestions: Suggestions = serde_yaml::from_str(&text).map_err(|e| match e.location() {
        Some(l) => anyhow::anyhow!(
            "{origin}:{}:{}: not a valid suggestions document: {e}",
            l.line(),
            l.column()
        ),
        None => anyhow::anyhow!("{origin}: not a valid suggestions document: {e}"),
    })?;
    Ok(suggestions)
}
