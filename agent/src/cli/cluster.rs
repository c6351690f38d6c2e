//! The cluster forms of `suggest` and `patch`: gather the agents' `WritePathReport`s through
//! the kubeconfig kubectl would use, with a progress indicator on stderr.

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;

use crate::cluster::gather::{self, Progress, WorkloadArg};
use crate::report::Report;

/// Where to look in the cluster.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// `-n`: the namespace (default: the kubeconfig context's).
    pub namespace: Option<String>,
    /// `-A`: every namespace.
    pub all_namespaces: bool,
    /// `KIND/NAME`.
    pub workload: Option<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// The kubernetes client could not be configured (no kubeconfig, not in a cluster): the
/// context of that error, so callers can tell it from other failures.
#[derive(Debug)]
pub struct NoClient;

impl std::fmt::Display for NoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed to configure the kubernetes client (kubeconfig or in-cluster)")
    }
}

async fn client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.context(NoClient)
}

/// Gathers the reports of the selection, merging all nodes and replicas.
pub fn reports(sel: &Selection) -> anyhow::Result<Vec<Report>> {
    let workload = sel
        .workload
        .as_deref()
        .map(gather::parse_workload)
        .transpose()?;
    runtime()?.block_on(async {
        let client = client().await?;
        let namespace = if sel.all_namespaces {
            None
        } else {
            Some(
                sel.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        let tty = std::io::stderr().is_terminal();
        let mut last = Progress {
            reports: 0,
            nodes: 0,
        };
        let mut show = |p: &Progress| {
            last = p.clone();
            if tty {
                let mut e = std::io::stderr().lock();
                let _ = write!(
                    e,
                    "\rwritepath: gathering reports… {} from {} nodes",
                    p.reports, p.nodes
                );
                let _ = e.flush();
            }
        };
        if tty {
            eprint!("writepath: gathering reports…");
        }
        let result =
            gather::gather(&client, namespace.as_deref(), workload.as_ref(), &mut show).await;
        if tty {
            eprintln!();
        }
        let reports = result?;
        eprintln!(
            "writepath: read {} reports from {} nodes",
            last.reports, last.nodes
        );
        Ok(reports)
    })
}

/// The live workload's manifest, for `patch KIND/NAME` without `-f`.
pub fn manifest(sel: &Selection, workload: &WorkloadArg) -> anyhow::Result<String> {
    runtime()?.block_on(async {
        let client = client().await?;
        let namespace = sel
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        Ok(gather::fetch_manifest(&client, &namespace, workload).await?)
    })
}
