//! The admission policy (`writepath policy`): a ValidatingAdmissionPolicy and its binding
//! (`admissionregistration.k8s.io/v1`, Kubernetes 1.30+) that require
//! `securityContext.readOnlyRootFilesystem: true` on every container, init container and
//! ephemeral container of Pods and of every workload kind with a pod template, naming the
//! offending containers in the message.
//!
//! It checks only requests that can bring a container in: Pods on CREATE (a Pod's containers
//! cannot change afterwards, so an UPDATE such as a finalizer removal is never refused), the
//! ephemeral containers an UPDATE of `pods/ephemeralcontainers` adds, and the workload kinds
//! on CREATE and UPDATE (their pod template is what changes). The namespace label is checked
//! as the API server checks label selectors, so a policy it prints is never refused for it.

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
    /// `--namespace-label` is not `KEY=VALUE` with a key and value Kubernetes accepts.
    #[error("--namespace-label {label:?}: {reason}")]
    BadLabel {
        /// The flag's value.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Deny and Warn together, which Kubernetes rejects.
    #[error("actions Deny and Warn cannot be combined (Kubernetes rejects the binding)")]
    DenyAndWarn,
    /// Serializing failed.
    #[error("failed to render the policy")]
    Render(#[source] serde_yaml::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest label name, and longest label value (Kubernetes `validation.LabelValueMaxLength`).
const MAX_LABEL_NAME: usize = 63;

/// Longest DNS subdomain, the prefix of a label key.
const MAX_SUBDOMAIN: usize = 253;

/// Parses `KEY=VALUE` and checks both as the API server checks a label selector: KEY is an
/// optional DNS-subdomain prefix (at most 253 characters) and `/`, then a name of at most 63
/// characters of `[A-Za-z0-9._-]` starting and ending with an alphanumeric; VALUE is empty or
/// such a name.
pub fn parse_label(text: &str) -> Result<(String, String)> {
    let bad = |reason: String| Error::BadLabel {
        label: text.to_string(),
        reason,
    };
    let Some((key, value)) = text.split_once('=') else {
        return Err(bad("not KEY=VALUE".into()));
    };
    check_label_key(key).map_err(|r| bad(format!("key {key:?} {r}")))?;
    check_label_name(value, "value")
        .or_else(|r| if value.is_empty() { Ok(()) } else { Err(r) })
        .map_err(|r| bad(format!("value {value:?} {r}")))?;
    Ok((key.to_string(), value.to_string()))
}

/// A label key: `[prefix/]name` (Kubernetes `IsQualifiedName`).
fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_subdomain(prefix).map_err(|r| format!("has a prefix {prefix:?} that {r}"))?;
        if name.contains('/') {
            return Err("has more than one '/'".into());
        }
    }
    check_label_name(name, "name")
}

/// A label name or non-empty value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both
/// ends.
fn check_label_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("has an empty {what}"));
    }
    if name.len() > MAX_LABEL_NAME {
        return Err(format!(
            "is {} characters long; a label {what} has at most {MAX_LABEL_NAME}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "has {c:?}; a label {what} holds only letters, digits, '-', '_' and '.'"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Err(format!(
            "must start and end with a letter or digit (a label {what})"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated parts of lowercase
/// alphanumerics and `-`, each starting and ending with an alphanumeric.
fn check_subdomain(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("is empty".into());
    }
    if text.len() > MAX_SUBDOMAIN {
        return Err(format!(
            "is {} characters long; a DNS subdomain has at most {MAX_SUBDOMAIN}",
            text.len()
        ));
    }
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    if !text.split('.').all(part_ok) {
        return Err("is not a DNS subdomain (lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit)".into());
    }
    Ok(())
}

/// The pod spec of the object under review, for every matched kind.
const POD_SPEC: &str = "object.kind == 'Pod' ? object.spec : (object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)";

/// Whether the request adds ephemeral containers (an UPDATE of `pods/ephemeralcontainers`,
/// `kubectl debug`): then only the added ephemeral containers are checked, not the containers
/// the Pod already had. `subResource` is absent from other requests, hence the `has`.
const EPHEMERAL_UPDATE: &str =
    "has(request.subResource) && request.subResource == 'ephemeralcontainers'";

/// CEL: a container `c` without a read-only root.
const NOT_READ_ONLY: &str = "!has(c.securityContext) || !has(c.securityContext.readOnlyRootFilesystem) || c.securityContext.readOnlyRootFilesystem != true";

/// CEL for "the names of the entries of LIST without a read-only root" that the request
/// brings in.
fn offenders(list: &str) -> String {
    let field = format!("variables.podSpec.{list}");
    match list {
        "containers" => format!(
            "variables.ephemeralUpdate ? [] : {field}.filter(c, {NOT_READ_ONLY}).map(c, c.name)"
        ),
        // Ephemeral containers cannot be set on CREATE nor in a pod template, and those a
        // Pod has cannot change: only the ones this UPDATE adds are checked.
        "ephemeralContainers" => format!(
            "(variables.ephemeralUpdate && has({field})) ? {field}.filter(c, ({NOT_READ_ONLY}) && !(has(oldObject.spec.ephemeralContainers) && oldObject.spec.ephemeralContainers.exists(o, o.name == c.name))).map(c, c.name) : []"
        ),
        _ => format!(
            "(variables.ephemeralUpdate || !has({field})) ? [] : {field}.filter(c, {NOT_READ_ONLY}).map(c, c.name)"
        ),
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
    let variables = [
        ("podSpec", POD_SPEC.to_string()),
        ("ephemeralUpdate", EPHEMERAL_UPDATE.to_string()),
    ]
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
                            // A Pod's containers are fixed at CREATE: matching its UPDATEs
                            // would refuse metadata changes (a finalizer removed, a label
                            // set) of Pods that predate the policy.
                            rule("", "v1", list(["CREATE"]), list(["pods"])),
                            rule(
                                "",
                                "v1",
                                list(["UPDATE"]),
                                list(["pods/ephemeralcontainers"]),
                            ),
                            rule("", "v1", cu(), list(["replicationcontrollers"])),
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
        assert_eq!(parse_label("a=b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(parse_label("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_label("=b").is_err());
        assert!(parse_label("ab").is_err());
    }

    #[test]
    fn labels_are_checked_like_the_api_server_does() {
        let name63 = format!("a{}z", "b".repeat(61));
        let prefix253 = format!("{}.io", "d".repeat(250));
        let good = [
            "writepath.dev/enforce=true".to_string(),
            "enforce=".into(),
            "Env_1.x-y=Prod_2.a-B".into(),
            "a.b-c.d/n=v".into(),
            "x=1".into(),
            format!("{name63}={name63}"),
            format!("{prefix253}/k=v"),
        ];
        for label in &good {
            assert!(
                parse_label(label).is_ok(),
                "{label}: {:?}",
                parse_label(label)
            );
        }
        let bad = [
            ("a=b=c", "value \"b=c\""),
            ("a b=c", "' '"),
            ("a=b c", "value"),
            ("-a=b", "start and end"),
            ("a-=b", "start and end"),
            ("a=-b", "value \"-b\""),
            ("a=b.", "start and end"),
            ("Example.com/a=b", "prefix \"Example.com\""),
            ("ex_ample.com/a=b", "DNS subdomain"),
            ("a..b/c=d", "DNS subdomain"),
            ("/a=b", "prefix \"\" that is empty"),
            ("a/=b", "empty name"),
            ("a/b/c=d", "more than one '/'"),
            ("k=\u{e9}", "'\u{e9}'"),
            ("", "not KEY=VALUE"),
        ];
        for (label, why) in bad {
            let err = parse_label(label).expect_err(label).to_string();
            assert!(
                err.starts_with(&format!("--namespace-label {label:?}: ")),
                "{label}: {err}"
            );
            assert!(err.contains(why), "{label}: {err}");
        }
        let long_name = format!("{name63}x=v");
        let err = parse_label(&long_name).unwrap_err().to_string();
        assert!(
            err.contains("64 characters") && err.contains("at most 63"),
            "{err}"
        );
        let long_value = format!("k={name63}x");
        let err = parse_label(&long_value).unwrap_err().to_string();
        assert!(err.contains("value") && err.contains("at most 63"), "{err}");
        let long_prefix = format!("{prefix253}x/k=v");
        let err = parse_label(&long_prefix).unwrap_err().to_string();
        assert!(err.contains("at most 253"), "{err}");
    }

    /// The operations each resource is matched on.
    fn matched_operations(p: &Value) -> Vec<(String, Vec<String>)> {
        let strings = |v: &Value| -> Vec<String> {
            v.as_sequence()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect()
        };
        let mut out = Vec::new();
        for rule in p["spec"]["matchConstraints"]["resourceRules"]
            .as_sequence()
            .unwrap()
        {
            for r in strings(&rule["resources"]) {
                out.push((r, strings(&rule["operations"])));
            }
        }
        out
    }

    #[test]
    fn pods_are_matched_on_create_only_and_workloads_on_create_and_update() {
        let ops = matched_operations(&policy());
        let of = |r: &str| {
            let found: Vec<&Vec<String>> =
                ops.iter().filter(|(x, _)| x == r).map(|(_, o)| o).collect();
            assert_eq!(found.len(), 1, "{r} in one rule: {ops:?}");
            found[0].clone()
        };
        assert_eq!(
            of("pods"),
            ["CREATE"],
            "a Pod's UPDATE never adds a container"
        );
        assert_eq!(of("pods/ephemeralcontainers"), ["UPDATE"]);
        for r in [
            "replicationcontrollers",
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
            "jobs",
            "cronjobs",
        ] {
            assert_eq!(of(r), ["CREATE", "UPDATE"], "{r}");
        }
        assert!(
            !ops.iter().any(|(r, _)| r == "*" || r == "pods/*"),
            "{ops:?}"
        );
    }

    #[test]
    fn adding_an_ephemeral_container_checks_only_the_added_ones() {
        let p = policy();
        let vars: Vec<(String, String)> = p["spec"]["variables"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["expression"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expr = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| panic!("no variable {name}"))
        };
        let position = |name: &str| vars.iter().position(|(n, _)| n == name).unwrap();
        assert!(expr("ephemeralUpdate").contains("request.subResource == 'ephemeralcontainers'"));
        assert!(
            expr("ephemeralUpdate").starts_with("has(request.subResource)"),
            "subResource is absent from requests for the resource itself"
        );
        for v in [
            "badContainers",
            "badInitContainers",
            "badEphemeralContainers",
        ] {
            assert!(position("ephemeralUpdate") < position(v), "{v}");
        }
        assert!(expr("badContainers").starts_with("variables.ephemeralUpdate ? []"));
        assert!(expr("badInitContainers").starts_with("(variables.ephemeralUpdate ||"));
        let eph = expr("badEphemeralContainers");
        assert!(eph.starts_with("(variables.ephemeralUpdate &&"), "{eph}");
        assert!(
            eph.contains("oldObject.spec.ephemeralContainers.exists(o, o.name == c.name)"),
            "{eph}"
        );
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
