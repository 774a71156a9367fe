//! Snapshot tests of rendered reports: the demonstration incident in the terminal and
//! Markdown formats and the shape of its JSON, one Stratus Red Team key, and a bare folder
//! with one CloudTrail file, where most steps have no evidence.
//!
//! Each outcome is made deterministic before rendering: the investigation has a fixed ID
//! and start time, and `finished_at` is set to a fixed time. The templates print no step
//! durations. The JSON format prints `duration_ms`, so the JSON snapshot keeps only the
//! structure and the determinism check drops that field. Folder paths in the evidence
//! source depend on the machine and are replaced by a fixed placeholder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keycheck_core::demo;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::snapshot::Snapshot;
use keycheck_core::geo::Geo;
use keycheck_core::playbook::{self, Investigation, Origin, Outcome, PlaybookConfig};
use keycheck_core::render::{Family, Renderer, ReportView};
use keycheck_core::report::StepId;
use keycheck_core::AccessKeyId;
use serde_json::{Value, json};

/// The investigation ID every rendered report shows.
const INVESTIGATION_ID: &str = "kc-0000000000";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

/// Runs the playbook on `key` with a fixed ID and start time, and sets the finish time.
async fn investigate(evidence: Arc<dyn Evidence>, key: AccessKeyId, started_at: DateTime<Utc>) -> Outcome {
    let investigation = Investigation {
        id: INVESTIGATION_ID.to_string(),
        key,
        origin: Origin::Cli,
        window: None,
        window_length: Duration::hours(24),
        alert: None,
        started_at,
    };
    let mut outcome = playbook::run_to_end(
        investigation,
        evidence,
        Arc::new(Geo::none()),
        PlaybookConfig::default(),
        |_| {},
    )
    .await;
    outcome.finished_at = started_at + Duration::seconds(3);
    outcome
}

async fn demo_outcome() -> Outcome {
    let snapshot = demo::snapshot().expect("the demonstration snapshot opens");
    // A few minutes after the demonstration snapshot was collected, at 11:30.
    investigate(Arc::new(snapshot), demo::key(), at("2024-11-14T11:35:00Z")).await
}

/// Renders the whole report in `family`, as `keycheck investigate --format` prints it.
fn render(outcome: &Outcome, family: Family) -> String {
    let renderer = Renderer::new();
    let rendered = match family {
        Family::Json => renderer.render(family, "report", outcome),
        _ => renderer.render(family, "report", &ReportView::new(outcome)),
    };
    rendered.unwrap_or_else(|error| panic!("rendering {family:?} failed: {error}"))
}

/// Replaces a folder path, which differs between machines, with `placeholder`.
fn without_path(text: &str, folder: &Path, placeholder: &str) -> String {
    text.replace(&folder.display().to_string(), placeholder)
}

/// Returns the JSON document without the step durations, which are wall times.
fn without_durations(json: &str) -> Value {
    let mut value: Value = serde_json::from_str(json).unwrap_or_else(|error| panic!("{error}:\n{json}"));
    for report in value["reports"].as_array_mut().expect("reports is an array") {
        report.as_object_mut().expect("a report is an object").remove("duration_ms");
    }
    value
}

/// Returns the field names of a JSON object, sorted, so that the snapshot does not depend
/// on whether `serde_json` keeps document order.
fn fields(value: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("expected an object, got {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

/// Summarises the JSON report's structure: its top-level fields, the investigation, each
/// step with its status and kind of data, and the diagnosis's fields and headings.
fn json_structure(json: &str) -> Value {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|error| panic!("{error}:\n{json}"));
    let steps: Vec<Value> = value["reports"]
        .as_array()
        .expect("reports is an array")
        .iter()
        .map(|report| {
            json!({
                "step": report["step"],
                "status": report["status"],
                "data": report["data"]["kind"],
                "fields": fields(report),
            })
        })
        .collect();
    let diagnosis = &value["diagnosis"];
    let headings: Vec<&Value> = diagnosis["sections"]
        .as_array()
        .expect("sections is an array")
        .iter()
        .map(|section| &section["heading"])
        .collect();
    json!({
        "fields": fields(&value),
        "investigation": value["investigation"],
        "evidence_source": value["evidence_source"],
        "finished_at": value["finished_at"],
        "reports": steps,
        "diagnosis": {
            "fields": fields(diagnosis),
            "verdict": diagnosis["verdict"],
            "severity": diagnosis["severity"],
            "headings": headings,
        },
    })
}

#[tokio::test]
async fn demo_renders_terminal() {
    let outcome = demo_outcome().await;
    insta::assert_snapshot!("demo_terminal", render(&outcome, Family::Terminal));
}

#[tokio::test]
async fn demo_renders_markdown() {
    let outcome = demo_outcome().await;
    insta::assert_snapshot!("demo_markdown", render(&outcome, Family::Markdown));
}

#[tokio::test]
async fn demo_json_structure() {
    let outcome = demo_outcome().await;
    let json = render(&outcome, Family::Json);

    let structure = json_structure(&json);
    let steps = structure["reports"].as_array().expect("reports is an array");
    assert_eq!(steps.len(), StepId::ALL.len(), "{structure:#}");
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!("demo_json_structure", structure);
    });
}

/// Two runs of the demonstration render the same bytes, apart from the JSON format's step
/// durations.
#[tokio::test]
async fn demo_renders_identically_twice() {
    let first = demo_outcome().await;
    let second = demo_outcome().await;

    for family in [Family::Terminal, Family::Markdown] {
        let (a, b) = (render(&first, family), render(&second, family));
        if a != b {
            let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            panic!("{family:?} output differs between two runs, first at line {line:?}:\n{a}\n---\n{b}");
        }
    }
    let (a, b) = (render(&first, Family::Json), render(&second, Family::Json));
    assert_eq!(without_durations(&a), without_durations(&b), "JSON output differs between two runs");
}

#[tokio::test]
async fn stratus_key_renders_terminal() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cloudtrail/stratus");
    if !folder.is_dir() {
        println!("skipping: Stratus corpus folder {} is absent", folder.display());
        return;
    }
    let snapshot = Snapshot::open(&folder).unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
    // The key that assumes a role, whose session then makes 30 denied GetPasswordData calls.
    let key: AccessKeyId = "AKIAWOGXN38MFN92ING5".parse().expect("valid key ID");
    let outcome = investigate(Arc::new(snapshot), key, at("2024-07-31T09:00:00Z")).await;

    let text = without_path(&render(&outcome, Family::Terminal), &folder, "[stratus folder]");
    insta::assert_snapshot!("stratus_get_password_data_terminal", text);
}

/// Three quiet calls of one key, as an S3 CloudTrail log file.
fn quiet_trail() -> Value {
    let call = |number: u32, time: &str, source: &str, name: &str| {
        json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEUSERID0001",
                "arn": "arn:aws:iam::581039954779:user/report-reader",
                "accountId": "581039954779",
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                "userName": "report-reader"
            },
            "eventTime": time,
            "eventSource": source,
            "eventName": name,
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.debian.12",
            "requestParameters": null,
            "responseElements": null,
            "requestID": format!("00000000-0000-4000-8000-{number:012}"),
            "eventID": format!("10000000-0000-4000-8000-{number:012}"),
            "readOnly": true,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": "581039954779",
            "eventCategory": "Management"
        })
    };
    json!({
        "Records": [
            call(1, "2024-05-06T08:00:00Z", "sts.amazonaws.com", "GetCallerIdentity"),
            call(2, "2024-05-06T08:00:05Z", "s3.amazonaws.com", "ListBuckets"),
            call(3, "2024-05-06T08:01:10Z", "ce.amazonaws.com", "GetCostAndUsage"),
        ]
    })
}

fn bare_folder() -> (tempfile::TempDir, PathBuf) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let path = folder.path().join("581039954779_CloudTrail_eu-west-1_20240506T0805Z_quiet.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&quiet_trail()).expect("JSON")).expect("write trail file");
    let root = folder.path().to_path_buf();
    (folder, root)
}

async fn bare_folder_outcome(folder: &Path) -> Outcome {
    let snapshot = Snapshot::open(folder).unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
    let key: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().expect("valid key ID");
    investigate(Arc::new(snapshot), key, at("2024-05-06T09:00:00Z")).await
}

fn step_lines(outcome: &Outcome) -> Vec<String> {
    outcome
        .reports
        .iter()
        .map(|r| format!("step {} {}: {}", r.step.number(), r.status.label(), r.summary))
        .collect()
}

#[tokio::test]
async fn bare_folder_renders_terminal() {
    let (_guard, folder) = bare_folder();
    let outcome = bare_folder_outcome(&folder).await;

    let text = without_path(&render(&outcome, Family::Terminal), &folder, "[snapshot folder]");
    assert!(text.contains("Not seen:"), "the report does not list what it could not see:\n{text}");
    insta::assert_snapshot!("bare_folder_terminal", text);
}

/// A folder with only CloudTrail lacks the evidence of every step but 0, 2 and 8, wholly or
/// in part, and the diagnosis lists each of those steps as a blind spot.
#[tokio::test]
async fn bare_folder_blind_spots_name_each_step() {
    let (_guard, folder) = bare_folder();
    let outcome = bare_folder_outcome(&folder).await;

    // Step 1 lacks the IAM key records, 3 the MFA devices, policies and credential report,
    // 4 the authorization details, 5 and 6 the findings, 7 Access Analyzer, 9 the key
    // storage listings.
    let lacking = [
        StepId::Key,
        StepId::Mfa,
        StepId::Permissions,
        StepId::Findings,
        StepId::Guardduty,
        StepId::ExternalAccess,
        StepId::Secrets,
    ];
    let blind_spots = &outcome.diagnosis.blind_spots;
    let unlisted: Vec<&str> = lacking
        .iter()
        .filter(|step| {
            let prefix = format!("step {} (", step.number());
            !blind_spots.iter().any(|spot| spot.starts_with(&prefix))
        })
        .map(|step| step.name())
        .collect();
    assert!(
        unlisted.is_empty(),
        "steps without their evidence but not among the blind spots: {unlisted:?}\nblind spots: {blind_spots:#?}\nsteps: {:#?}",
        step_lines(&outcome)
    );
}
