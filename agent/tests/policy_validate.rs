//! `writepath policy`: the ValidatingAdmissionPolicy and binding pass the Kubernetes schemas,
//! carry the chosen actions and namespace label, and bad flags exit 2.

#[expect(
    dead_code,
    reason = "the policy tests use only a few of the shared helpers"
)]
mod common;

use common::*;

#[test]
fn policy_and_binding_validate() {
    let text = writepath_ok(&[
        "policy",
        "--namespace-label",
        "writepath.dev/enforce=true",
        "--action",
        "Warn",
        "--action",
        "Audit",
    ]);
    let objects = docs(&text);
    assert_eq!(objects.len(), 2, "{text}");
    assert_eq!(objects[0]["kind"], "ValidatingAdmissionPolicy");
    assert_eq!(objects[1]["kind"], "ValidatingAdmissionPolicyBinding");
    assert_eq!(
        objects[1]["spec"]["policyName"],
        objects[0]["metadata"]["name"]
    );
    assert_eq!(
        objects[1]["spec"]["validationActions"],
        serde_json::json!(["Warn", "Audit"])
    );
    assert_eq!(
        objects[1]["spec"]["matchResources"]["namespaceSelector"]["matchLabels"],
        serde_json::json!({"writepath.dev/enforce": "true"})
    );
    let messages: Vec<&str> = objects[0]["spec"]["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .map(|v| v["messageExpression"].as_str().expect("messageExpression"))
        .collect();
    assert_eq!(
        messages.len(),
        3,
        "containers, init containers, ephemeral containers"
    );
    let default = docs(&writepath_ok(&["policy"]));
    assert_eq!(
        default[1]["spec"]["validationActions"],
        serde_json::json!(["Deny"])
    );

    if !have_validator() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("policy.yaml", text),
        ("default.yaml", writepath_ok(&["policy"])),
        (
            "prefixed.yaml",
            writepath_ok(&["policy", "--namespace-label", "team.example.com/ro-root="]),
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        validate(&file);
        // The API the policy is written for: admissionregistration.k8s.io/v1 as of 1.34.
        validate_for(&file, "1.34.0");
    }
}

#[test]
fn namespace_labels_the_api_server_rejects_exit_2_naming_the_label() {
    for (label, why) in [
        ("novalue", "not KEY=VALUE"),
        ("=b", "empty name"),
        ("Team.Example.com/ro=true", "prefix \"Team.Example.com\""),
        ("ro root=true", "' '"),
        ("ro=yes please", "' '"),
        ("ro=-yes", "start and end"),
        ("a/b/c=true", "more than one '/'"),
    ] {
        let out = writepath(&["policy", "--namespace-label", label]);
        assert_eq!(out.status.code(), Some(2), "{label}: {out:?}");
        assert!(out.stdout.is_empty(), "{label}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("--namespace-label {label:?}")) && err.contains(why),
            "{label}: {err}"
        );
    }
    let long = format!("ro={}", "v".repeat(64));
    let out = writepath(&["policy", "--namespace-label", &long]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 63"));
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["policy", "--action", "Deny", "--action", "Warn"][..],
        &["policy", "--namespace-label", "novalue"],
        &["policy", "--action", "Block"],
    ] {
        let out = writepath(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
