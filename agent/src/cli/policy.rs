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
    let text = policy::render(&opts)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("failed to write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
