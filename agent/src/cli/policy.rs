//! `writepath policy`: prints the ValidatingAdmissionPolicy and binding of [`crate::policy`].

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::ValueEnum;

use crate::policy::{self, Action, Options};

/// Arguments of `writepath policy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only enforce in namespaces with this label (KEY=VALUE). kube-system is always left out.
    #[arg(long, value_name = "KEY=VALUE")]
    pub namespace_label: Option<String>,
    /// What the API server does with a violation (repeatable; Deny and Warn exclude each other).
    #[arg(long, value_enum, default_value = "Deny")]
    pub action: Vec<PolicyAction>,
    /// Output format: two YAML documents, or one JSON `kind: List` holding both objects.
    #[arg(short = 'o', long, value_enum, default_value_t = PolicyOutput::Yaml)]
    pub output: PolicyOutput,
}

/// `policy -o` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyOutput {
    /// The policy and its binding as two YAML documents.
    Yaml,
    /// A `kind: List` with both objects, as `kubectl get -o json` prints several.
    Json,
}

/// `--action` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum PolicyAction {
    /// Reject the request.
    Deny,
    /// Accept it with a warning.
    Warn,
    /// Accept it and record an audit annotation.
    Audit,
}

impl From<PolicyAction> for Action {
    fn from(a: PolicyAction) -> Action {
        match a {
            PolicyAction::Deny => Action::Deny,
            PolicyAction::Warn => Action::Warn,
            PolicyAction::Audit => Action::Audit,
        }
    }
}

/// Runs `writepath policy`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = Options {
        namespace_label: args
            .namespace_label
            .as_deref()
            .map(policy::parse_label)
            .transpose()?,
        actions: args.action.into_iter().map(Action::from).collect(),
    };
    let mut text = policy::render(&opts)?;
    if args.output == PolicyOutput::Json {
        text = to_json_list(&text)?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("failed to write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// The YAML documents of `yaml` as one JSON `kind: List` (what `kubectl apply -f` takes).
fn to_json_list(yaml: &str) -> anyhow::Result<String> {
    use serde::Deserialize as _;
    let mut items = Vec::new();
    for de in serde_yaml::Deserializer::from_str(yaml) {
        let doc = serde_json::Value::deserialize(de).context("failed to read the policy back")?;
        if !doc.is_null() {
            items.push(doc);
        }
    }
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
    let mut text = serde_json::to_string_pretty(&list).context("failed to render json")?;
    text.push('\n');
    Ok(text)
}
