//! Tests of live `keycheck investigate` and `keycheck snapshot collect`, run as a separate
//! process against an endpoint that refuses every connection: a loopback port that was
//! free a moment before. The report must still be complete, name the AWS operation of
//! every failed step, tell the responder what to do, and print no credential.
//!
//! The process gets a cleared environment: static test credentials (or none), no
//! profile files, the instance metadata service disabled, and every AWS client pointed at
//! the closed port by `[aws] endpoint_url`, so nothing leaves the machine.

use std::fmt;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The access key ID of the test credentials, AWS's documentation example.
const TEST_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";

/// The secret access key of the test credentials, AWS's documentation example.
const TEST_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The key under investigation.
const KEY: &str = "AKIAQWERTYUIOPASDFGH";

/// One finished run of the binary: what was run and what came back.
struct Run {
    args: Vec<String>,
    config: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ran: keycheck {}", self.args.join(" "))?;
        writeln!(f, "--- configuration ---\n{}", self.config)?;
        writeln!(f, "exit code: {:?}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Returns a loopback port that nothing listens on: bound, read, and released.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("the bound address").port();
    drop(listener);
    port
}

/// Writes a configuration that points every AWS client at `port` on loopback, with one
/// short attempt per call so that the run ends quickly.
fn write_config(dir: &Path, port: u16) -> String {
    let config = format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nmax_attempts = 1\ncall_timeout = \"2s\"\noperation_timeout = \"3s\"\n\n[playbook]\nstep_timeout = \"30s\"\n"
    );
    std::fs::write(dir.join("keycheck.toml"), &config).expect("the configuration file");
    config
}

/// Runs the binary in `dir` with a cleared environment, the configuration written there,
/// and the test credentials when `with_credentials` is set.
fn keycheck(dir: &Path, with_credentials: bool, args: &[&str]) -> Run {
    let config = write_config(dir, closed_port());
    for name in ["aws-config", "aws-credentials"] {
        std::fs::write(dir.join(name), "").expect("an empty AWS profile file");
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_keycheck"));
    command
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("keycheck.toml"))
        .args(args)
        .env_clear()
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if with_credentials {
        command.env("AWS_ACCESS_KEY_ID", TEST_KEY_ID).env("AWS_SECRET_ACCESS_KEY", TEST_SECRET);
    }
    let output = command.output().expect("the keycheck binary starts");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        config,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_no_credential(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(TEST_SECRET), "{name} shows the secret access key\n{run}");
        assert!(!text.contains(TEST_KEY_ID), "{name} shows keycheck's own access key ID\n{run}");
        assert!(!keycheck_core::redact::contains_secret(text), "{name} contains a secret\n{run}");
    }
}

#[test]
fn live_unreachable_reports_every_step() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = keycheck(dir.path(), true, &["investigate", KEY, "--format", "json"]);
    assert_eq!(run.code, Some(1), "AWS could not be reached\n{run}");

    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{run}"));
    assert_eq!(report["diagnosis"]["verdict"], "inconclusive", "{run}");
    assert!(report["evidence_source"].as_str().is_some_and(|s| s.starts_with("live")), "{run}");
    let steps = report["reports"].as_array().unwrap_or_else(|| panic!("no reports\n{run}"));
    assert_eq!(steps.len(), 10, "{run}");
    for step in steps {
        let name = step["step"].as_str().unwrap_or("?");
        if name == "permissions" {
            // With no owner known, step 4 has no policies to read and calls nothing.
            assert_eq!(step["status"], "not_available", "step {name}\n{run}");
            continue;
        }
        assert_eq!(step["status"], "error", "step {name}\n{run}");
        let operation = step["failure"]["operation"].as_str().unwrap_or_default();
        let (service, action) = operation.split_once(':').unwrap_or_default();
        assert!(!service.is_empty(), "step {name} names no service in {operation:?}\n{run}");
        assert!(action.starts_with(char::is_uppercase), "step {name} names no action in {operation:?}\n{run}");
        assert!(step["summary"].as_str().unwrap_or_default().contains(operation), "step {name}\n{run}");
    }
}

#[test]
fn live_unreachable_says_what_to_do() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = keycheck(dir.path(), true, &["investigate", KEY, "--quiet"]);

    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("== Diagnosis:"), "the terminal report is complete\n{run}");
    assert!(run.stderr.contains("keycheck: AWS did not answer: check the network"), "{run}");
    assert_no_credential(&run);
}

#[test]
fn live_without_credentials_names_fix() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = keycheck(dir.path(), false, &["investigate", KEY, "--quiet"]);

    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("Diagnosis: INCONCLUSIVE"), "nothing read is not called clean\n{run}");
    let fix = "no AWS credentials found: set AWS_PROFILE";
    assert!(run.stdout.contains(fix), "the report says why each step failed\n{run}");
    assert!(run.stderr.contains(&format!("keycheck: {fix}")), "{run}");
    assert!(!run.stdout.contains("Attempted:"), "the SDK's list of providers is not repeated\n{run}");
}

#[test]
fn collect_unreachable_writes_nothing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = keycheck(dir.path(), true, &["snapshot", "collect", KEY, "--out", "incident"]);

    assert_eq!(run.code, Some(1), "nothing could be collected\n{run}");
    assert!(run.stderr.contains("no evidence could be read from AWS, so nothing was written"), "{run}");
    assert!(run.stderr.contains("AWS did not answer: check the network"), "{run}");
    assert!(run.stderr.contains("the key's account failed: sts:"), "step 0's error is named\n{run}");
    assert!(!dir.path().join("incident").exists(), "the folder is left free for the next attempt\n{run}");
    assert_no_credential(&run);
}

#[test]
fn collect_rejects_non_empty_folder() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(dir.path().join("incident")).expect("the output folder");
    std::fs::write(dir.path().join("incident/notes.txt"), "keep").expect("a file in it");
    let run = keycheck(dir.path(), true, &["snapshot", "collect", KEY, "--out", "incident"]);

    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("is not empty: pass a new folder to --out"), "{run}");
}
