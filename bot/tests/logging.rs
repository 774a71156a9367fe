//! `--log-format json` as the `keycheck` binary writes it: every line one JSON object, and
//! every line logged during an investigation carries the investigation's ID in its spans.

use std::process::Command;

use clap::Parser;
use keycheck_bot::cli::{Cli, LogFormat};
use serde_json::Value;

#[test]
fn log_format_flag_reaches_serve() {
    let cli = Cli::try_parse_from(["keycheck", "serve", "--log-format", "json"]).expect("the flag is global");
    assert_eq!(cli.log_format, LogFormat::Json);
    let cli = Cli::try_parse_from(["keycheck", "--log-format", "json", "serve"]).expect("before the command too");
    assert_eq!(cli.log_format, LogFormat::Json);
}

#[test]
fn json_lines_carry_investigation_id() {
    let output = Command::new(env!("CARGO_BIN_EXE_keycheck"))
        .args(["--log-format", "json", "investigate", "--demo", "--quiet", "--format", "json"])
        .env_remove("KEYCHECK_CONFIG")
        .env("KEYCHECK_LOG", "keycheck_core=debug,info")
        .output()
        .expect("the keycheck binary starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}:\n{stderr}", output.status.code());

    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    let id = report["investigation"]["id"].as_str().expect("the report names its investigation");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}\n{stderr}")))
        .collect();
    let playbook_lines: Vec<&Value> = lines
        .iter()
        .filter(|line| line["target"].as_str().is_some_and(|target| target.starts_with("keycheck_core::playbook")))
        .collect();
    assert!(playbook_lines.len() >= 12, "start, ten steps, finish:\n{stderr}");
    for line in playbook_lines {
        let spans = line["spans"].as_array().unwrap_or_else(|| panic!("no span list: {line}"));
        let named = spans.iter().any(|span| span["investigation_id"] == id);
        assert!(named, "a playbook line does not name {id}: {line}");
    }
}

#[test]
fn text_logs_uncoloured_off_terminal() {
    let output = Command::new(env!("CARGO_BIN_EXE_keycheck"))
        .args(["investigate", "--demo", "--quiet", "--format", "json"])
        .env_remove("KEYCHECK_CONFIG")
        .env("KEYCHECK_LOG", "info")
        .output()
        .expect("the keycheck binary starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}:\n{stderr}", output.status.code());
    assert!(stderr.contains("step finished"), "info lines are logged:\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "a log collector would receive escape codes:\n{stderr}");
}
