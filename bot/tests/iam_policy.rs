//! Tests of `keycheck iam-policy`, run as a separate process: the policies committed under
//! deploy/terraform/policies/ must be byte for byte what the binary prints, because
//! Terraform attaches those files to keycheck's roles.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// One finished run of the binary: what was run and what came back.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ran: keycheck {}", self.args.join(" "))?;
        writeln!(f, "exit code: {:?}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs the `keycheck` binary with `args`, without the configuration and log settings of
/// the environment the tests run in.
fn keycheck(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_keycheck"))
        .args(args)
        .env_remove("KEYCHECK_CONFIG")
        .env_remove("KEYCHECK_LOG")
        .output()
        .expect("the keycheck binary starts");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn committed_policy_path(purpose: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../deploy/terraform/policies/{purpose}.json"))
}

/// Returns the first line where `expected` and `actual` differ, numbered from 1, with
/// both versions of it.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for number in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) => break,
            (left, right) if left == right => continue,
            (left, right) => {
                return format!(
                    "first difference at line {number}:\n  committed: {}\n  printed:   {}",
                    left.unwrap_or("<end of file>"),
                    right.unwrap_or("<end of output>")
                );
            }
        }
    }
    "the lines are equal; the files differ in line endings or a final newline".to_string()
}

#[test]
fn committed_policies_match_output() {
    for purpose in ["investigate", "contain"] {
        let run = keycheck(&["iam-policy", "--purpose", purpose, "--format", "json"]);
        assert_eq!(run.code, Some(0), "{run}");

        let path = committed_policy_path(purpose);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "cannot read {}: {error}\nrun `keycheck iam-policy --purpose {purpose} --format json > deploy/terraform/policies/{purpose}.json`",
                path.display()
            )
        });
        assert!(
            committed == run.stdout,
            "deploy/terraform/policies/{purpose}.json differs from what keycheck prints: {}\n\
             run `keycheck iam-policy --purpose {purpose} --format json > deploy/terraform/policies/{purpose}.json`",
            first_difference(&committed, &run.stdout)
        );
    }
}

#[test]
fn json_output_is_one_iam_document() {
    for purpose in ["investigate", "contain"] {
        let run = keycheck(&["iam-policy", "--purpose", purpose, "--format", "json"]);
        assert_eq!(run.code, Some(0), "{run}");

        let document: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}):\n{run}"));
        assert_eq!(document["Version"], "2012-10-17", "{run}");
        let statements = document["Statement"].as_array().expect("a Statement list");
        assert!(!statements.is_empty(), "{run}");
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "{run}");
            assert!(statement["Sid"].is_string(), "{run}");
            assert!(statement["Action"].is_array(), "{run}");
            assert!(
                statement["Resource"].is_string() || statement["Resource"].is_array(),
                "{run}"
            );
        }
    }
}

#[test]
fn text_output_labels_both_policies() {
    let run = keycheck(&["iam-policy"]);

    assert_eq!(run.code, Some(0), "{run}");
    let investigation = run
        .stdout
        .find("# Investigation policy")
        .expect("an investigation label");
    let containment = run
        .stdout
        .find("# Containment policy")
        .expect("a containment label");
    assert!(investigation < containment, "{run}");
    assert!(
        run.stdout[containment..].contains("iam:UpdateAccessKey"),
        "{run}"
    );
    assert!(
        !run.stdout[investigation..containment].contains("iam:UpdateAccessKey"),
        "{run}"
    );
}

#[test]
fn json_without_purpose_rejected() {
    let run = keycheck(&["iam-policy", "--format", "json"]);

    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("--purpose"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
}

#[test]
fn assume_role_scoped_to_given_roles() {
    let role = "arn:aws:iam::111122223333:role/keycheck-investigate";
    let run = keycheck(&[
        "iam-policy",
        "--purpose",
        "investigate",
        "--format",
        "json",
        "--assume-role",
        role,
    ]);

    assert_eq!(run.code, Some(0), "{run}");
    let document: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let assume: Vec<&Value> = document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["Action"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a == "sts:AssumeRole"))
        })
        .collect();
    assert_eq!(assume.len(), 1, "{run}");
    assert_eq!(assume[0]["Resource"], role, "{run}");
}

#[test]
fn assume_role_rejects_user_arn() {
    let run = keycheck(&[
        "iam-policy",
        "--assume-role",
        "arn:aws:iam::111122223333:user/alice",
    ]);

    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("is not an IAM role ARN"), "{run}");
}
