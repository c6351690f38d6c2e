//! The admission policy (`writepath policy`): a ValidatingAdmissionPolicy and its binding
//! (`admissionregistration.k8s.io/v1`, Kubernetes 1.30+) that require
//! `securityContext.readOnlyRootFilesystem: true` on every container, init container and
//! ephemeral container of Pods and of every workload kind with a pod template, naming the
//! offending containers in the message.

use serde_yaml::{Mapping, Value};

/// Name of the policy and of its binding.
pub const NAME: &str = "writepath-read-only-root-filesystem";

/// Namespaces the binding always leaves out.
pub const EXCLUDED_NAMESPACES: [&str; 1] = ["kube-system"];

/// What the API server does with a violation (`validationActions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Reject the request.
    Deny,
    /// Accept it with a warning to the client.
    Warn,
    /// Accept it and record the violation in the audit log.
    Audit,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "Deny",
            Action::Warn => "Warn",
            Action::Audit => "Audit",
        }
    }
}

/// How to bind the policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Only namespaces with this label (`KEY=VALUE`).
    pub namespace_label: Option<(String, String)>,
    /// The actions; empty means `[Deny]`.
    pub actions: Vec<Action>,
}

/// Errors of `writepath policy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--namespace-label` is not `KEY=VALUE`.
    #[error("namespace label {0:?} is not KEY=VALUE with a non-empty KEY")]
    BadLabel(String),
    /// Deny and Warn together, which Kubernetes rejects.
    #[error("actions Deny and Warn cannot be combined (Kubernetes rejects the binding)")]
    DenyAndWarn,
    /// Serializing failed.
    #[error("failed to render the policy")]
    Render(#[source] serde_yaml::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses `KEY=VALUE`.
pub fn parse_label(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(Error::BadLabel(text.to_string())),
    }
}

/// The pod spec of the object under review, for every matched kind.
const POD_SPEC: &str = "object.kind == 'Pod' ? object.spec : (object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)";

/// CEL for "the names of the entries of LIST without a read-only root".
fn offenders(list: &str) -> String {
    let pred = "!has(c.securityContext) || !has(c.securityContext.readOnlyRootFilesystem) || c.securityContext.readOnlyRootFilesystem != true";
    let field = format!("variables.podSpec.{list}");
    if list == "containers" {
        format!("{field}.filter(c, {pred}).map(c, c.name)")
    } else {
        format!("has({field}) ? {field}.filter(c, {pred}).map(c, c.name) : []")
    }
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
}

fn list<const N: usize>(items: [&str; N]) -> Value {
    Value::Sequence(items.into_iter().map(s).collect())
}

/// The ValidatingAdmissionPolicy.
pub fn policy() -> Value {
    let rule = |group: &str, version: &str, ops: Value, resources: Value| {
        map([
            ("apiGroups", list([group])),
            ("apiVersions", list([version])),
            ("operations", ops),
            ("resources", resources),
        ])
    };
    let cu = || list(["CREATE", "UPDATE"]);
    let variables = [("podSpec", POD_SPEC.to_string())]
        .into_iter()
        .chain([
            ("badContainers", offenders("containers")),
            ("badInitContainers", offenders("initContainers")),
            ("badEphemeralContainers", offenders("ephemeralContainers")),
        ])
        .map(|(name, expr)| map([("name", s(name)), ("expression", s(&expr))]))
        .collect();
    let validation = |var: &str, what: &str, one: &str| {
        map([
            ("expression", s(&format!("size(variables.{var}) == 0"))),
            (
                "messageExpression",
                s(&format!(
                    "'{what} ' + variables.{var}.join(', ') + ' must set securityContext.readOnlyRootFilesystem: true'"
                )),
            ),
            ("message", s(&format!("every {one} must set securityContext.readOnlyRootFilesystem: true"))),
        ])
    };
    map([
        ("apiVersion", s("admissionregistration.k8s.io/v1")),
        ("kind", s("ValidatingAdmissionPolicy")),
        ("metadata", map([("name", s(NAME))])),
        (
            "spec",
            map([
                ("failurePolicy", s("Fail")),
                (
                    "matchConstraints",
                    map([(
                        "resourceRules",
                        Value::Sequence(vec![
                            rule(
                                "",
                                "v1",
                                cu(),
                                list([
                                    "pods",
                                    "pods/ephemeralcontainers",
                                    "replicationcontrollers",
                                ]),
                            ),
                            rule(
                                "apps",
                                "v1",
                                cu(),
                                list(["deployments", "statefulsets", "daemonsets", "replicasets"]),
                            ),
                            rule("batch", "v1", cu(), list(["jobs", "cronjobs"])),
                        ]),
                    )]),
                ),
                ("variables", Value::Sequence(variables)),
                (
                    "validations",
                    Value::Sequence(vec![
                        validation("badContainers", "container(s)", "container"),
                        validation("badInitContainers", "init container(s)", "init container"),
                        validation(
                            "badEphemeralContainers",
                            "ephemeral container(s)",
                            "ephemeral container",
                        ),
                    ]),
                ),
            ]),
        ),
    ])
}

/// The ValidatingAdmissionPolicyBinding.
pub fn binding(opts: &Options) -> Result<Value> {
    let mut actions = if opts.actions.is_empty() {
        vec![Action::Deny]
    } else {
        opts.actions.clone()
    };
    actions.sort();
    actions.dedup();
    if actions.contains(&Action::Deny) && actions.contains(&Action::Warn) {
        return Err(Error::DenyAndWarn);
    }
    let mut selector = Mapping::new();
    if let Some((k, v)) = &opts.namespace_label {
        selector.insert(s("matchLabels"), map([(k.as_str(), s(v))]));
    }
    selector.insert(
        s("matchExpressions"),
        Value::Sequence(vec![map([
            ("key", s("kubernetes.io/metadata.name")),
            ("operator", s("NotIn")),
            ("values", list(EXCLUDED_NAMESPACES)),
        ])]),
    );
    Ok(map([
        ("apiVersion", s("admissionregistration.k8s.io/v1")),
        ("kind", s("ValidatingAdmissionPolicyBinding")),
        ("metadata", map([("name", s(NAME))])),
        (
            "spec",
            map([
                ("policyName", s(NAME)),
                (
                    "validationActions",
                    Value::Sequence(actions.iter().map(|a| s(a.as_str())).collect()),
                ),
                (
                    "matchResources",
                    map([("namespaceSelector", Value::Mapping(selector))]),
                ),
            ]),
        ),
    ]))
}

/// Both objects as a two-document YAML stream.
pub fn render(opts: &Options) -> Result<String> {
    let policy = serde_yaml::to_string(&policy()).map_err(Error::Render)?;
    let binding = serde_yaml::to_string(&binding(opts)?).map_err(Error::Render)?;
    Ok(format!(
        "# writepath: require readOnlyRootFilesystem on every container\n{policy}---\n{binding}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_actions_and_selector() {
        let opts = Options {
            namespace_label: Some(parse_label("writepath=enforce").unwrap()),
            actions: vec![Action::Warn, Action::Audit, Action::Warn],
        };
        let b = binding(&opts).unwrap();
        assert_eq!(b["spec"]["validationActions"], list(["Warn", "Audit"]));
        assert_eq!(
            b["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]["writepath"],
            "enforce"
        );
        assert_eq!(
            binding(&Options::default()).unwrap()["spec"]["validationActions"],
            list(["Deny"])
        );
        let both = Options {
            actions: vec![Action::Deny, Action::Warn],
            ..Options::default()
        };
        assert!(matches!(binding(&both), Err(Error::DenyAndWarn)));
    }

    #[test]
    fn labels_parse() {
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_label("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_label("=b").is_err());
        assert!(parse_label("ab").is_err());
    }

    #[test]
    fn policy_covers_every_container_list_and_names_offenders() {
        let p = policy();
        let vars = serde_yaml::to_string(&p["spec"]["variables"]).unwrap();
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            assert!(
                vars.contains(&format!("variables.podSpec.{list}.filter")),
                "{list}"
            );
        }
        for v in p["spec"]["validations"].as_sequence().unwrap() {
            assert!(v["messageExpression"]
                .as_str()
                .unwrap()
                .contains(".join(', ')"));
        }
        let rules = serde_yaml::to_string(&p["spec"]["matchConstraints"]).unwrap();
        for r in [
            "pods",
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
            "jobs",
            "cronjobs",
        ] {
            assert!(rules.contains(&format!("- {r}")), "{r}");
        }
    }
}
