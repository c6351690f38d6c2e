//! The agent's validated configuration, resolved from the command line before anything has a
//! side effect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::attribution::pods::Scope;

/// Errors in the agent's settings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No node name: the downward API's `spec.nodeName` must be passed.
    #[error(
        "no node name: set --node-name or WRITEPATH_NODE_NAME (the downward API's spec.nodeName)"
    )]
    NoNodeName,
    /// The node name is not a DNS subdomain.
    #[error("invalid node name {0:?}")]
    NodeName(String),
    /// The state directory must be absolute.
    #[error("state directory {0} is not an absolute path")]
    StateDir(String),
    /// Publishing more often than this would load the API server.
    #[error("publish interval {0:?} is shorter than the minimum of 1s")]
    Interval(Duration),
    /// The metrics address is not `HOST:PORT`.
    #[error("invalid metrics address {0:?} (want HOST:PORT, e.g. 0.0.0.0:9477)")]
    MetricsAddress(String),
    /// A namespace name is not a DNS label.
    #[error("invalid namespace {0:?}")]
    Namespace(String),
    /// The label selector is empty or malformed.
    #[error("invalid label selector {0:?}")]
    Selector(String),
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        "config"
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the agent was asked to do, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// This node's name (pods are watched with `spec.nodeName=` it).
    pub node_name: String,
    /// Where observations are persisted.
    pub state_dir: PathBuf,
    /// Which namespaces are recorded.
    pub scope: Scope,
    /// Label selector for the pods.
    pub selector: Option<String>,
    /// Shortest time between two publications of one workload's report.
    pub publish_interval: Duration,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_address: SocketAddr,
    /// The cgroup to watch (kubelet's pod hierarchy); detected when `None`.
    pub kubepods_cgroup: Option<PathBuf>,
    /// Distinct paths kept per container before new ones collapse into their directory.
    pub path_budget: usize,
    /// The capture design (`auto`: the best this kernel loads).
    pub hook: crate::capture::loader::Hook,
}

/// The raw settings, as the command line gives them.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    /// `--node-name`.
    pub node_name: Option<String>,
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `--namespace` (repeatable, comma-separated).
    pub namespaces: Vec<String>,
    /// `--exclude-namespace`.
    pub exclude_namespaces: Vec<String>,
    /// `--selector`.
    pub selector: Option<String>,
    /// `--publish-interval`.
    pub publish_interval: Duration,
    /// `--metrics-address`.
    pub metrics_address: String,
    /// `--kubepods-cgroup`.
    pub kubepods_cgroup: Option<PathBuf>,
    /// `--path-budget`.
    pub path_budget: usize,
    /// `--hook`.
    pub hook: crate::capture::loader::Hook,
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Config {
    /// Checks the raw settings.
    pub fn resolve(raw: Raw) -> Result<Config> {
        let node = raw
            .node_name
            .filter(|n| !n.trim().is_empty())
            .ok_or(Error::NoNodeName)?;
        if node.len() > 253 || !node.split('.').all(is_dns_label) {
            return Err(Error::NodeName(node));
        }
        if !raw.state_dir.is_absolute() {
            return Err(Error::StateDir(raw.state_dir.display().to_string()));
        }
        if raw.publish_interval < Duration::from_secs(1) {
            return Err(Error::Interval(raw.publish_interval));
        }
        let metrics_address = raw
            .metrics_address
            .parse()
            .map_err(|_| Error::MetricsAddress(raw.metrics_address.clone()))?;
        let clean = |list: Vec<String>| -> Result<Vec<String>> {
            list.into_iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .map(|n| {
                    if is_dns_label(&n) {
                        Ok(n)
                    } else {
                        Err(Error::Namespace(n))
                    }
                })
                .collect()
        };
        let scope = Scope {
            include: clean(raw.namespaces)?,
            exclude: clean(raw.exclude_namespaces)?,
        };
        let selector = match raw.selector {
            None => None,
            Some(s) if s.trim().is_empty() || s.contains(",,") || s.starts_with(',') => {
                return Err(Error::Selector(s))
            }
            Some(s) => Some(s),
        };
        Ok(Config {
            node_name: node,
            state_dir: raw.state_dir,
            scope,
            selector,
            publish_interval: raw.publish_interval,
            metrics_address,
            kubepods_cgroup: raw.kubepods_cgroup,
            path_budget: raw.path_budget.max(1),
            hook: raw.hook,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> Raw {
        Raw {
            node_name: Some("node-1.example".into()),
            state_dir: "/var/lib/writepath".into(),
            namespaces: vec![],
            exclude_namespaces: vec!["kube-system".into()],
            selector: None,
            publish_interval: Duration::from_secs(60),
            metrics_address: "0.0.0.0:9477".into(),
            kubepods_cgroup: None,
            path_budget: 1000,
            hook: crate::capture::loader::Hook::Auto,
        }
    }

    #[test]
    fn valid_settings() {
        let c = Config::resolve(raw()).unwrap();
        assert_eq!(c.node_name, "node-1.example");
        assert!(!c.scope.admits("kube-system"));
        assert_eq!(c.metrics_address.port(), 9477);
    }

    #[test]
    fn every_mistake_is_named() {
        let cases: Vec<(Raw, &str)> = vec![
            (
                Raw {
                    node_name: None,
                    ..raw()
                },
                "no node name",
            ),
            (
                Raw {
                    node_name: Some(" ".into()),
                    ..raw()
                },
                "no node name",
            ),
            (
                Raw {
                    node_name: Some("Node_1".into()),
                    ..raw()
                },
                "invalid node name",
            ),
            (
                Raw {
                    state_dir: "state".into(),
                    ..raw()
                },
                "not an absolute path",
            ),
            (
                Raw {
                    publish_interval: Duration::from_millis(10),
                    ..raw()
                },
                "shorter than",
            ),
            (
                Raw {
                    metrics_address: "9477".into(),
                    ..raw()
                },
                "invalid metrics address",
            ),
            (
                Raw {
                    namespaces: vec!["Shop".into()],
                    ..raw()
                },
                "invalid namespace",
            ),
            (
                Raw {
                    selector: Some(",app=web".into()),
                    ..raw()
                },
                "invalid label selector",
            ),
        ];
        for (r, want) in cases {
            let e = Config::resolve(r).unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }
}
