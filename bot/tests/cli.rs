//! Tests of the `keycheck` command line, run as a separate process: the demonstration
//! incident in each output format, rejected key IDs and configuration, a missing snapshot
//! folder, and a demonstration snapshot written to disk and read back.

use std::fmt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// A secret access key in the shape AWS issues. This one is AWS's documentation example.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

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

fn parse_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{run}"))
}

#[test]
fn demo_prints_verdict() {
    let run = keycheck(&["investigate", "--demo"]);

    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("== Diagnosis: COMPROMISED, severity CRITICAL =="), "{run}");
    assert!(run.stdout.contains("step 9. Secrets read and key storage"), "{run}");
}

#[test]
fn demo_json_has_ten_steps() {
    let run = keycheck(&["investigate", "--demo", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{run}");

    let report = parse_json(&run);
    let steps: Vec<&str> = report["reports"]
        .as_array()
        .unwrap_or_else(|| panic!("no reports array:\n{run}"))
        .iter()
        .map(|r| r["step"].as_str().unwrap_or("?"))
        .collect();
    let expected = [
        "resolve",
        "key",
        "activity",
        "mfa",
        "permissions",
        "findings",
        "guardduty",
        "external_access",
        "cross_account",
        "secrets",
    ];
    assert_eq!(steps, expected, "{run}");
    assert_eq!(report["diagnosis"]["verdict"], "compromised", "{run}");
    assert_eq!(report["investigation"]["key"], keycheck_core::demo::key().as_str(), "{run}");
}

#[test]
fn demo_markdown_has_headings() {
    let run = keycheck(&["investigate", "--demo", "--format", "markdown"]);
    assert_eq!(run.code, Some(0), "{run}");

    let key = keycheck_core::demo::key();
    let lines: Vec<&str> = run.stdout.lines().collect();
    let headings = [
        format!("# keycheck: {key}"),
        "## 🚨 Diagnosis: compromised (CRITICAL)".to_string(),
        "### Recommended actions".to_string(),
        "## Steps".to_string(),
    ];
    let missing: Vec<&String> = headings.iter().filter(|h| !lines.contains(&h.as_str())).collect();
    assert!(missing.is_empty(), "missing headings {missing:?}\n{run}");

    // A step heading is `### `, the status emoji, and the step's number and title.
    let missing_steps: Vec<String> = keycheck_core::report::StepId::ALL
        .iter()
        .map(|step| format!("Step {}. {}", step.number(), step.title()))
        .filter(|title| !lines.iter().any(|l| l.starts_with("### ") && l.ends_with(title.as_str())))
        .collect();
    assert!(missing_steps.is_empty(), "missing step headings {missing_steps:?}\n{run}");
}

#[test]
fn malformed_keys_rejected() {
    let cases = [
        ("AKIA123", "has 7 characters, but an access key ID has 20"),
        ("AIDAJQABLZS4A3QDU576", "is an IAM user ID (AIDA prefix), not an access key ID"),
        (SECRET, "looks like a secret access key"),
    ];
    for (input, message) in cases {
        let run = keycheck(&["investigate", input, "--demo"]);
        assert_eq!(run.code, Some(2), "{run}");
        assert!(run.stderr.contains(message), "expected {message:?} on stderr\n{run}");
        assert!(run.stdout.is_empty(), "nothing is printed on stdout for a rejected key\n{run}");
    }
}

#[test]
fn pasted_secret_never_echoed() {
    // Alone, the secret is rejected. Next to the key ID, it is ignored and the key is
    // investigated.
    let alone = keycheck(&["investigate", SECRET, "--demo"]);
    let key = keycheck_core::demo::key();
    let beside = keycheck(&["investigate", &format!("{key} {SECRET}"), "--demo"]);

    assert_eq!(alone.code, Some(2), "{alone}");
    assert_eq!(beside.code, Some(0), "{beside}");
    assert!(beside.stderr.contains("a secret access key was pasted next to the key ID"), "{beside}");
    for run in [&alone, &beside] {
        assert!(!run.stdout.contains(SECRET), "the secret is on stdout\n{run}");
        assert!(!run.stderr.contains(SECRET), "the secret is on stderr\n{run}");
        assert!(!run.stderr.contains(&SECRET[..20]), "part of the secret is on stderr\n{run}");
    }
}

#[test]
fn missing_snapshot_folder_named() {
    let parent = tempfile::tempdir().expect("temporary folder");
    let missing = parent.path().join("no-such-export");
    let folder = missing.to_str().expect("UTF-8 path");
    let run = keycheck(&["investigate", "AKIAIOSFODNN7EXAMPLE", "--snapshot", folder]);

    assert_ne!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains(folder), "the error does not name {folder}\n{run}");
    assert!(run.stderr.contains("no such folder"), "{run}");
}

#[test]
fn written_demo_snapshot_reads_like_demo() {
    let parent = tempfile::tempdir().expect("temporary folder");
    let out = parent.path().join("demo");
    let folder = out.to_str().expect("UTF-8 path");
    let key = keycheck_core::demo::key();

    let written = keycheck(&["snapshot", "demo", "--out", folder]);
    assert_eq!(written.code, Some(0), "{written}");
    assert!(Path::new(folder).join("metadata.json").is_file(), "no metadata.json\n{written}");

    let from_folder = keycheck(&["investigate", key.as_str(), "--snapshot", folder, "--format", "json"]);
    let built_in = keycheck(&["investigate", "--demo", "--format", "json"]);
    assert_eq!(from_folder.code, Some(0), "{from_folder}");
    assert_eq!(built_in.code, Some(0), "{built_in}");

    let (from_folder_json, built_in_json) = (parse_json(&from_folder), parse_json(&built_in));
    assert_eq!(from_folder_json["diagnosis"]["verdict"], "compromised", "{from_folder}");
    assert_eq!(
        from_folder_json["diagnosis"], built_in_json["diagnosis"],
        "the written snapshot diagnoses differently from --demo\n{from_folder}\n\n{built_in}"
    );
    let summaries = |report: &Value| -> Vec<(Value, Value, Value)> {
        report["reports"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| (s["step"].clone(), s["status"].clone(), s["summary"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(summaries(&from_folder_json), summaries(&built_in_json));
}

#[test]
fn snapshot_demo_rejects_non_empty_folder() {
    let parent = tempfile::tempdir().expect("temporary folder");
    std::fs::write(parent.path().join("notes.txt"), "keep me").expect("write a file");
    let folder = parent.path().to_str().expect("UTF-8 path");

    let run = keycheck(&["snapshot", "demo", "--out", folder]);

    assert_ne!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("is not empty"), "{run}");
    let content = std::fs::read_to_string(parent.path().join("notes.txt")).expect("the file is still there");
    assert_eq!(content, "keep me", "the existing file was overwritten");
}

#[test]
fn bad_config_field_named() {
    let cases = [
        ("[playbook]\nwindw = \"7d\"\n", "windw"),
        ("[playbook]\nwindow = \"seven days\"\n", "playbook.window"),
        ("[geo]\ncountry_database = \"GeoLite2-Country.mmdb\"\n", "country_database"),
    ];
    for (text, field) in cases {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("keycheck.toml");
        std::fs::write(&path, text).expect("write the configuration");

        let run = keycheck(&["--config", path.to_str().expect("UTF-8 path"), "investigate", "--demo"]);

        assert_eq!(run.code, Some(2), "configuration:\n{text}\n{run}");
        assert!(run.stderr.contains(field), "the error does not name {field}\nconfiguration:\n{text}\n{run}");
        assert!(run.stdout.is_empty(), "configuration:\n{text}\n{run}");
    }
}

#[test]
fn invalid_options_rejected_with_fix() {
    let cases: [(&[&str], &str); 5] = [
        (&["investigate", "--demo", "--window", "0"], "out of range: use at least 1h"),
        (&["investigate", "--demo", "--end", "yesterday"], "write an RFC 3339 time such as"),
        (&["slack-manifest", "--http-url", "https://a.example.com\nevil: true"], "control character"),
        (&["slack-manifest", "--http-url", "http://keycheck.example.com"], "only to https URLs"),
        (&["slack-manifest", "--http-url", "not a url"], "space or a control character"),
    ];
    for (args, message) in cases {
        let run = keycheck(args);
        assert_eq!(run.code, Some(2), "{args:?}\n{run}");
        assert!(run.stderr.contains(message), "expected {message:?} for {args:?}\n{run}");
        assert!(run.stdout.is_empty(), "{args:?}\n{run}");
    }
    let run = keycheck(&["slack-manifest", "--http-url", "https://keycheck.example.com/"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("https://keycheck.example.com/slack/commands"), "{run}");
}

#[test]
fn audit_without_store_creates_nothing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let output = Command::new(env!("CARGO_BIN_EXE_keycheck"))
        .arg("audit")
        .current_dir(dir.path())
        .env_remove("KEYCHECK_CONFIG")
        .env_remove("KEYCHECK_LOG")
        .output()
        .expect("the keycheck binary starts");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no audit log at keycheck.db"), "{stderr}");
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "audit created {created:?}");
}
