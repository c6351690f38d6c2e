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
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        validate(&file);
    }
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
