//! Tests of the demonstration incident: the files themselves (determinism, parsing, keys,
//! addresses, no secrets), the story's numbers, and what the snapshot reader makes of it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use chrono::Duration;
use regex::Regex;
use serde_json::Value;

use super::story::{self, ALICE, BACKDOOR, BOB, CI_DEPLOY};
use super::*;
use crate::diagnosis::Verdict;
use crate::evidence::snapshot::FileKind;
use crate::evidence::{EventQuery, Evidence, KeyLocationKind, KeyStatus, Subject};
use crate::geo::Geo;
use crate::key::{AccountDecoding, looks_like_secret_key};
use crate::playbook::{self, Investigation, Origin, PlaybookConfig};
use crate::report::Status;

/// The records per phase that the story is designed with.
const PHASE_COUNTS: [(Phase, usize); 14] = [
    // 14 days and the incident morning, 00:07 to 11:07: 348 runs of 4 calls.
    (Phase::Runner, 1392),
    // The 10 weekdays of the 14 days before the incident.
    (Phase::Developer, 10),
    (Phase::Responder, 5),
    (Phase::Recon, 13),
    (Phase::DeniedBurst, 16),
    (Phase::Escalation, 4),
    (Phase::BackdoorUse, 2),
    (Phase::SecretsRead, 6),
    (Phase::SessionMinted, 1),
    (Phase::ExternalSharing, 2),
    (Phase::SessionUse, 3),
    (Phase::RoleAccountCopy, 1),
    (Phase::OtherAccount, 5),
    (Phase::DefenseEvasion, 1),
];

/// The attacker's calls with the leaked key itself: every incident phase that uses it.
const ATTACKER_KEY_CALLS: usize = 13 + 16 + 4 + 6 + 1 + 2 + 1;
/// The runner's calls inside the default 24-hour window, which ends at the runner's last
/// call at 11:08:23: the 24 runs from 12:07 the day before.
const RUNNER_CALLS_IN_WINDOW: usize = 24 * 4;

fn json_of(path: &str, bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|error| panic!("{path} is not JSON: {error}"))
}

fn file(path: &str) -> Vec<u8> {
    files()
        .into_iter()
        .find(|(name, _)| name == path)
        .unwrap_or_else(|| panic!("no file {path}"))
        .1
}

fn subject() -> Subject {
    Subject {
        key: key(),
        account_id: Some(account_id().to_string()),
        owner_name: Some(CI_DEPLOY.name.to_string()),
        owner_arn: Some(CI_DEPLOY.arn()),
    }
}

#[test]
fn files_are_deterministic() {
    let first = files();
    let second = files();
    let names: Vec<&String> = first.iter().map(|(name, _)| name).collect();
    assert_eq!(first.len(), second.len(), "{names:?}");
    for ((name, bytes), (other_name, other_bytes)) in first.iter().zip(&second) {
        assert_eq!(name, other_name);
        assert!(bytes == other_bytes, "{name} differs between two calls");
    }
}

#[test]
fn key_decodes_to_account() {
    assert_eq!(
        key().decode_account(),
        AccountDecoding::Decoded {
            account_id: account_id().to_string()
        }
    );
    assert_eq!(account_id(), "111122223333");
}

#[test]
fn every_key_decodes_to_its_account() {
    let expected: BTreeMap<String, &str> = BTreeMap::from([
        (CI_DEPLOY.access_key(), story::ACCOUNT),
        (ALICE.access_key(), story::ACCOUNT),
        (BOB.access_key(), story::ACCOUNT),
        (BACKDOOR.access_key(), story::ACCOUNT),
        (story::session_key(), story::ACCOUNT),
        (story::role_session_key(), story::PRODUCTION_ACCOUNT),
    ]);
    let pattern = Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b").expect("valid regex");

    let mut found = BTreeSet::new();
    for (name, bytes) in files() {
        let text = String::from_utf8(bytes).unwrap_or_else(|_| panic!("{name} is not UTF-8"));
        found.extend(pattern.find_iter(&text).map(|m| m.as_str().to_string()));
    }
    let expected_keys: BTreeSet<String> = expected.keys().cloned().collect();
    assert_eq!(found, expected_keys, "key IDs in the files");

    for (key_id, account) in expected {
        let key: AccessKeyId = key_id.parse().unwrap_or_else(|error| panic!("{key_id}: {error}"));
        assert_eq!(
            key.decode_account(),
            AccountDecoding::Decoded {
                account_id: account.to_string()
            },
            "{key_id}"
        );
    }
}

#[test]
fn every_file_parses() {
    for (name, bytes) in files() {
        if name.ends_with(".json") {
            json_of(&name, &bytes);
            continue;
        }
        assert!(name.ends_with(".csv"), "{name} is neither JSON nor CSV");
        let text = String::from_utf8(bytes).expect("CSV is UTF-8");
        let mut lines = text.lines();
        let columns = lines.next().expect("CSV header").split(',').count();
        assert_eq!(columns, 22, "{name} header");
        for (index, line) in lines.enumerate() {
            assert_eq!(line.split(',').count(), columns, "{name} row {}: {line}", index + 1);
        }
    }
}

#[test]
fn files_follow_snapshot_layout() {
    let names: Vec<String> = files().into_iter().map(|(name, _)| name).collect();
    let fixed = [
        "metadata.json",
        "iam/authorization-details.json",
        "iam/credential-report.csv",
        "guardduty/findings.json",
        "securityhub/findings.json",
        "health/events.json",
        "access-analyzer/findings.json",
        "storage/secrets.json",
        "storage/lambda-functions.json",
    ];
    for name in fixed {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    for user in [ALICE, BOB, CI_DEPLOY, BACKDOOR] {
        let access_keys = format!("iam/access-keys/{}.json", user.name);
        assert!(names.contains(&access_keys), "{access_keys} missing");
        let last_used = format!("iam/access-key-last-used/{}.json", user.access_key());
        assert!(names.contains(&last_used), "{last_used} missing");
        let mfa = format!("iam/mfa-devices/{}.json", user.name);
        assert!(names.contains(&mfa), "{mfa} missing");
    }
    let login_profiles: Vec<&String> = names.iter().filter(|n| n.starts_with("iam/login-profiles/")).collect();
    assert_eq!(
        login_profiles,
        [
            "iam/login-profiles/alice.json",
            "iam/login-profiles/bob.json",
            "iam/login-profiles/support-backup.json"
        ],
        "only users with a console password have a login profile"
    );
    assert!(
        names.iter().filter(|n| n.starts_with("cloudtrail/")).count() >= 15,
        "{names:?}"
    );
}

#[test]
fn phase_counts_match_story() {
    let records = records();
    let mut counts: BTreeMap<Phase, usize> = BTreeMap::new();
    for record in &records {
        *counts.entry(record.phase).or_default() += 1;
    }
    for (phase, expected) in PHASE_COUNTS {
        assert_eq!(counts.get(&phase).copied().unwrap_or(0), expected, "{phase:?}");
    }
    let total: usize = PHASE_COUNTS.iter().map(|(_, count)| count).sum();
    assert_eq!(records.len(), total);
    assert!(total <= 1500, "{total} records keep the demonstration fast");
}

#[test]
fn cloudtrail_files_hold_every_record() {
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (name, bytes) in files().into_iter().filter(|(name, _)| name.starts_with("cloudtrail/")) {
        let log = json_of(&name, &bytes);
        let records = log["Records"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no Records list"));
        for record in records {
            count += 1;
            let id = record["eventID"].as_str().expect("eventID").to_string();
            assert!(ids.insert(id.clone()), "{name}: duplicate eventID {id}");
            for field in [
                "eventVersion",
                "eventTime",
                "eventSource",
                "eventName",
                "awsRegion",
                "sourceIPAddress",
                "userAgent",
                "requestID",
                "readOnly",
                "eventType",
                "managementEvent",
                "recipientAccountId",
                "eventCategory",
                "userIdentity",
            ] {
                assert!(record.get(field).is_some(), "{name}: {field} missing in {record}");
            }
            assert!(
                record.get("requestParameters").is_some(),
                "{name}: requestParameters missing"
            );
            assert!(
                record.get("responseElements").is_some(),
                "{name}: responseElements missing"
            );
        }
    }
    assert_eq!(count, records().len());
}

#[test]
fn addresses_are_documentation_ranges() {
    let documentation = [
        Ipv4Addr::new(192, 0, 2, 0),
        Ipv4Addr::new(198, 51, 100, 0),
        Ipv4Addr::new(203, 0, 113, 0),
    ];
    let pattern = Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").expect("valid regex");
    for (name, bytes) in files() {
        let text = String::from_utf8(bytes).expect("UTF-8");
        for found in pattern.find_iter(&text) {
            let address: Ipv4Addr = found
                .as_str()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {} is no address", found.as_str()));
            let network = Ipv4Addr::from(u32::from(address) & 0xffff_ff00);
            assert!(
                documentation.contains(&network),
                "{name}: {address} is outside RFC 5737"
            );
        }
    }
}

#[test]
fn no_secret_values() {
    let forbidden_fields = [
        "\"secretAccessKey\"",
        "\"SecretAccessKey\"",
        "\"sessionToken\"",
        "\"SessionToken\"",
        "\"password\"",
    ];
    let token = Regex::new(r"[A-Za-z0-9+/]{40,}").expect("valid regex");
    for (name, bytes) in files() {
        let text = String::from_utf8(bytes).expect("UTF-8");
        for field in forbidden_fields {
            assert!(!text.contains(field), "{name} contains {field}");
        }
        for found in token.find_iter(&text) {
            assert!(
                !looks_like_secret_key(found.as_str()),
                "{name}: {} looks like a secret access key",
                found.as_str()
            );
        }
    }
}

#[test]
fn incident_timeline() {
    let records = records();
    let leaked = key().to_string();
    let attacker: Vec<&trail::Record> = records
        .iter()
        .filter(|r| r.access_key_id() == Some(leaked.as_str()) && r.user_agent() == story::KALI_AGENT)
        .collect();
    assert_eq!(attacker.len(), ATTACKER_KEY_CALLS);
    assert_eq!(attacker[0].time, story::incident_at(9, 31, 12), "first attacker call");
    assert!(
        attacker[0].time > story::exposure_reported(),
        "the attacker comes after the Health event"
    );
    assert_eq!(
        attacker.last().expect("calls").time,
        story::incident_at(10, 11, 58),
        "last attacker call"
    );

    let burst: Vec<&trail::Record> = records.iter().filter(|r| r.phase == Phase::DeniedBurst).collect();
    assert!(
        burst.iter().all(|r| r.error_code().is_some()),
        "every burst call is denied"
    );
    let span = burst.last().expect("burst").time - burst[0].time;
    assert!(span <= Duration::minutes(2), "burst spans {span}");
    let gaps = burst.windows(2).map(|pair| pair[1].time - pair[0].time);
    assert!(gaps.into_iter().all(|gap| gap <= Duration::seconds(10)));

    let runner_last = records
        .iter()
        .filter(|r| r.phase == Phase::Runner)
        .map(|r| r.time)
        .max();
    assert_eq!(
        runner_last,
        Some(story::incident_at(11, 8, 23)),
        "the runner's last call"
    );
}

#[test]
fn iam_exports_match_trail() {
    let details = json_of("authorization-details", &file("iam/authorization-details.json"));
    let users = details["UserDetailList"].as_array().expect("users");
    let names: Vec<&str> = users.iter().filter_map(|u| u["UserName"].as_str()).collect();
    assert_eq!(names, ["alice", "bob", "ci-deploy", "support-backup"]);
    let backdoor = &users[3];
    assert_eq!(
        backdoor["AttachedManagedPolicies"][0]["PolicyArn"],
        incident::ADMINISTRATOR_ACCESS
    );
    assert_eq!(backdoor["CreateDate"], story::cli_time(story::backdoor_created()));

    let ci_deploy = &users[2];
    let statements = ci_deploy["UserPolicyList"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("statements");
    assert!(
        statements.iter().any(|s| s["Action"] == "iam:*"),
        "the over-broad policy grants iam:*"
    );

    let last_used = json_of("last used", &file(&format!("iam/access-key-last-used/{}.json", key())));
    assert_eq!(
        last_used["AccessKeyLastUsed"]["LastUsedDate"],
        "2024-11-14T11:08:00+00:00"
    );
}

#[tokio::test]
async fn snapshot_recognises_every_file() {
    let snapshot = snapshot().expect("the demonstration snapshot opens");
    let inventory = snapshot.inventory();
    assert!(inventory.ignored.is_empty(), "ignored files: {:#?}", inventory.ignored);

    let cloudtrail_files = files()
        .iter()
        .filter(|(name, _)| name.starts_with("cloudtrail/"))
        .count();
    assert_eq!(inventory.cloudtrail_files, cloudtrail_files, "{}", inventory.summary());
    let expected_files = [
        (FileKind::Metadata, 1),
        (FileKind::AuthorizationDetails, 1),
        (FileKind::CredentialReport, 1),
        (FileKind::AccessKeys, 4),
        (FileKind::AccessKeyLastUsed, 4),
        (FileKind::MfaDevices, 4),
        (FileKind::LoginProfile, 3),
        (FileKind::GuardDuty, 1),
        (FileKind::SecurityHub, 1),
        (FileKind::Health, 1),
        (FileKind::AccessAnalyzer, 1),
        (FileKind::Storage, 2),
    ];
    for (kind, count) in expected_files {
        assert_eq!(inventory.files_of(kind), count, "{kind}: {}", inventory.summary());
    }
    let expected_records = [
        (FileKind::CredentialReport, 5),
        (FileKind::GuardDuty, 3),
        (FileKind::SecurityHub, 3),
        (FileKind::Health, 1),
        (FileKind::AccessAnalyzer, 2),
        (FileKind::Storage, 6),
    ];
    for (kind, count) in expected_records {
        assert_eq!(inventory.records_of(kind), count, "{kind}: {}", inventory.summary());
    }

    let metadata = snapshot.metadata().expect("metadata.json");
    assert_eq!(metadata.key_id.as_deref(), Some(key().as_str()));
    assert_eq!(metadata.collected_at, Some(story::collected_at()));
}

#[tokio::test]
async fn snapshot_key_and_user_match_story() {
    let snapshot = snapshot().expect("the demonstration snapshot opens");

    let account = snapshot.resolve_account(&key()).await.expect("account");
    assert_eq!(account.account_id.as_deref(), Some(account_id()));
    assert_eq!(account.note, None, "metadata and key decoding agree");

    let record = snapshot
        .access_key(&key())
        .await
        .expect("key records")
        .expect("the key exists");
    assert_eq!(record.user_name, "ci-deploy");
    assert_eq!(record.status, KeyStatus::Active);
    assert_eq!(record.created, Some(story::leaked_key_created()));
    let last_used = record.last_used.expect("last use");
    assert_eq!(last_used.service.as_deref(), Some("ecs"));
    assert_eq!(last_used.region.as_deref(), Some("eu-west-1"));

    let user = snapshot
        .user("ci-deploy")
        .await
        .expect("IAM data")
        .expect("the user exists");
    assert_eq!(user.console_password, Some(false));
    assert_eq!(user.mfa_devices, Some(Vec::new()));
    assert_eq!(user.access_keys.len(), 1);
    let policies: Vec<String> = user.policies.iter().map(|p| p.display_name()).collect();
    assert_eq!(policies, ["ci-deploy-pipeline (inline)"]);

    let admin = snapshot.user("alice").await.expect("IAM data").expect("alice exists");
    assert_eq!(admin.mfa_devices.map(|d| d.len()), Some(1));
    assert!(
        admin
            .policies
            .iter()
            .any(|p| p.name == "AdministratorAccess" && p.document.is_some())
    );

    let report = snapshot.credential_report().await.expect("credential report");
    let without_mfa: Vec<&str> = report
        .iter()
        .filter(|r| r.mfa_active == Some(false))
        .map(|r| r.user.as_str())
        .collect();
    assert_eq!(without_mfa, ["bob", "ci-deploy", "support-backup"]);
}

#[tokio::test]
async fn snapshot_events_match_story() {
    let snapshot = snapshot().expect("the demonstration snapshot opens");
    let events = snapshot.events(&EventQuery::new(key())).await.expect("events");

    assert_eq!(
        events.window.end,
        story::incident_at(11, 8, 23),
        "window ends at the key's last call"
    );
    assert_eq!(events.key_calls().count(), RUNNER_CALLS_IN_WINDOW + ATTACKER_KEY_CALLS);
    assert_eq!(events.history_calls().count(), 1392 - RUNNER_CALLS_IN_WINDOW);
    assert_eq!(
        events.session_calls().count(),
        3 + 5,
        "the minted session's and the role session's calls"
    );
    assert_eq!(events.skipped_records, 0);

    let minted: Vec<(&str, &str)> = events
        .minted
        .iter()
        .map(|m| (m.key_id.as_str(), m.call.as_str()))
        .collect();
    let session = story::session_key();
    let role_session = story::role_session_key();
    assert_eq!(
        minted,
        [
            (session.as_str(), "sts:GetSessionToken"),
            (role_session.as_str(), "sts:AssumeRole")
        ]
    );
    assert_eq!(events.minted[0].parent_key_id.as_deref(), Some(key().as_str()));
    assert_eq!(events.minted[1].parent_key_id.as_deref(), Some(session.as_str()));
    assert_eq!(
        events.minted[1].role_arn.as_deref(),
        Some(story::deploy_role_arn().as_str())
    );

    let denied: Vec<_> = events.key_calls().filter(|e| e.is_access_denied()).collect();
    let burst: Vec<_> = denied
        .iter()
        .filter(|e| story::incident_at(9, 35, 0) <= e.event_time && e.event_time < story::incident_at(9, 37, 0))
        .collect();
    assert_eq!(burst.len(), 16, "the denied burst");
    assert_eq!(denied.len(), 16 + 2, "the burst, the payments secret and StopLogging");

    let names: BTreeSet<String> = events.key_calls().map(|e| e.call_name()).collect();
    for call in [
        "iam:CreateUser",
        "iam:AttachUserPolicy",
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "sts:GetSessionToken",
        "s3:PutBucketPolicy",
        "cloudtrail:StopLogging",
    ] {
        assert!(names.contains(call), "{call} missing from the key's calls");
    }
    let production_calls = events
        .session_calls()
        .filter(|e| e.recipient_account_id.as_deref() == Some(story::PRODUCTION_ACCOUNT));
    assert_eq!(production_calls.count(), 5);

    let backdoor_key = BACKDOOR.access_key();
    assert!(
        events
            .events
            .iter()
            .all(|e| e.access_key_id() != Some(backdoor_key.as_str())),
        "the backdoor key's calls do not name the leaked key"
    );
}

#[tokio::test]
async fn snapshot_findings_match_story() {
    let snapshot = snapshot().expect("the demonstration snapshot opens");
    let subject = subject();

    let guardduty = snapshot.guardduty_findings(&subject).await.expect("GuardDuty findings").found;
    let types: Vec<&str> = guardduty.iter().map(|f| f.finding_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "PenTest:IAMUser/KaliLinux",
            "Discovery:IAMUser/AnomalousBehavior",
            "Persistence:IAMUser/AnomalousBehavior"
        ]
    );
    assert_eq!(guardduty[0].first_seen, Some(story::incident_at(9, 31, 12)));
    assert_eq!(guardduty[0].source_ips, [story::ATTACKER_IP]);

    let security_hub = snapshot
        .security_hub_findings(&subject)
        .await
        .expect("Security Hub findings")
        .found;
    assert_eq!(
        security_hub.len(),
        2,
        "the imported GuardDuty finding and IAM.3; IAM.5 names another user"
    );

    let health = snapshot.health_events(&subject).await.expect("Health events");
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].event_type_code, "AWS_RISK_CREDENTIALS_EXPOSED");
    assert_eq!(health[0].start_time, Some(story::exposure_reported()));

    let analyzer = snapshot
        .access_analyzer_findings(&subject)
        .await
        .expect("Access Analyzer findings")
        .found;
    assert_eq!(analyzer.len(), 1, "only the active finding");
    assert_eq!(analyzer[0].principal.as_deref(), Some("AWS 999988887777"));

    let locations = snapshot.key_locations(&subject).await.expect("key storage").found;
    let found: Vec<(KeyLocationKind, &str)> = locations.iter().map(|l| (l.kind, l.name.as_str())).collect();
    assert_eq!(
        found,
        [
            (KeyLocationKind::LambdaEnvironment, storage::KEY_FUNCTION),
            (KeyLocationKind::SecretsManagerSecret, incident::STORED_KEY_SECRET)
        ]
    );
    assert_eq!(
        locations[0].matched_by,
        format!("environment variable {}", storage::KEY_VARIABLE)
    );
    assert_eq!(locations[1].matched_by, "description, tag iam-user");
}

#[tokio::test]
async fn playbook_diagnoses_compromise() {
    let evidence: Arc<dyn Evidence> = Arc::new(snapshot().expect("the demonstration snapshot opens"));
    let investigation = Investigation::new(key(), Origin::Cli);
    let outcome = playbook::run_to_end(
        investigation,
        evidence,
        Arc::new(Geo::none()),
        PlaybookConfig::default(),
        |_| {},
    )
    .await;

    let steps: Vec<String> = outcome
        .reports
        .iter()
        .map(|r| format!("{:?} {:?}: {}", r.step, r.status, r.summary))
        .collect();
    for report in &outcome.reports {
        assert!(
            !matches!(report.status, Status::Error | Status::NotAvailable),
            "every step has its evidence in the demonstration: {steps:#?}"
        );
    }
    let diagnosis = &outcome.diagnosis;
    assert_eq!(
        diagnosis.verdict,
        Verdict::Compromised,
        "{}\n{steps:#?}",
        diagnosis.summary
    );
    assert!(diagnosis.blind_spots.is_empty(), "{:?}", diagnosis.blind_spots);
    assert_eq!(
        diagnosis.first_detection,
        Some(story::exposure_reported()),
        "the Health event comes first"
    );
}
