//! Each diagnosis rule, firing and not firing, on hand-built step reports.

use chrono::{TimeZone, Utc};

use super::*;
use crate::evidence::{AnalyzerFinding, FindingSource, KeyRecord, SecurityFinding};
use crate::geo::Geo;
use crate::playbook::{AlertContext, Investigation, Origin};
use crate::report::{
    ActivityFacts, Cadence, CrossAccountFacts, DeniedBurst, EventBrief, ExternalAccessFacts, GuardDutyFacts, KeyFacts,
    MfaFacts, MintedSession, PermissionFacts, RiskyGrant, RoleAssumption, SecretFacts, SourceCount,
    StepData, StepId, StepReport,
};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn investigation() -> Investigation {
    Investigation::new("AKIAIOSFODNN7EXAMPLE".parse().unwrap(), Origin::Cli)
}

fn call(minute: i64, call: &str, source: &str, error: Option<&str>, target: Option<&str>) -> EventBrief {
    EventBrief {
        time: at(minute),
        call: call.to_string(),
        source: Some(source.to_string()),
        region: Some("us-east-1".to_string()),
        error_code: error.map(str::to_string),
        key_id: Some("AKIAIOSFODNN7EXAMPLE".to_string()),
        event_id: Some(format!("event-{minute}")),
        target: target.map(str::to_string),
    }
}

fn activity(timeline: Vec<EventBrief>) -> ActivityFacts {
    ActivityFacts {
        window_start: at(-24 * 60),
        window_end: at(60),
        history_available: false,
        history_start: None,
        total_calls: timeline.len(),
        failed_calls: 0,
        denied_calls: 0,
        calls: Vec::new(),
        sources: Vec::new(),
        countries: Vec::new(),
        user_agents: Vec::new(),
        regions: Vec::new(),
        cadence: Cadence::Unknown,
        median_gap_seconds: None,
        timeline,
        denied_bursts: Vec::new(),
        minted_sessions: Vec::new(),
        session_calls: Vec::new(),
        geolocation: String::new(),
        skipped_records: 0,
    }
}

fn report(step: StepId, data: StepData) -> StepReport {
    StepReport::new(step, Status::Ok, "test", data)
}

fn active_key() -> StepReport {
    report(
        StepId::Key,
        StepData::Key(KeyFacts {
            record: Some(KeyRecord {
                key_id: "AKIAIOSFODNN7EXAMPLE".to_string(),
                user_name: "ci-deploy".to_string(),
                status: KeyStatus::Active,
                created: None,
                last_used: None,
            }),
            ..KeyFacts::default()
        }),
    )
}

fn headings(diagnosis: &Diagnosis) -> Vec<&str> {
    diagnosis.sections.iter().map(|s| s.heading.as_str()).collect()
}

fn section<'a>(diagnosis: &'a Diagnosis, heading: &str) -> &'a Section {
    diagnosis
        .sections
        .iter()
        .find(|s| s.heading == heading)
        .unwrap_or_else(|| panic!("no section {heading:?} in {:?}", headings(diagnosis)))
}

#[test]
fn nothing_correlates_gives_no_evidence() {
    let reports = vec![active_key(), report(StepId::Activity, StepData::Activity(activity(vec![call(0, "s3:ListBuckets", "198.51.100.20", None, None)])))];
    let diagnosis = diagnose(&investigation(), &reports);
    assert_eq!(diagnosis.verdict, Verdict::NoEvidence);
    assert_eq!(diagnosis.severity, Severity::Info);
    assert!(diagnosis.actions.iter().any(|a| a.text.contains("7-day")), "{:?}", diagnosis.actions);
    assert!(!diagnosis.actions.iter().any(|a| a.kind == ActionKind::Deactivate));
}

#[test]
fn unread_activity_gives_inconclusive() {
    let reports = vec![active_key()];
    let diagnosis = diagnose(&investigation(), &reports);
    assert_eq!(diagnosis.verdict, Verdict::Inconclusive);
    assert_eq!(diagnosis.severity, Severity::Medium, "the key still works");
    assert!(diagnosis.summary.contains("could not be read"), "{}", diagnosis.summary);
    assert!(
        diagnosis.actions.iter().any(|a| a.text.starts_with("CloudTrail could not be read")),
        "{:?}",
        diagnosis.actions
    );
}

#[test]
fn defense_evasion_success_is_compromise() {
    let reports = vec![
        active_key(),
        report(
            StepId::Activity,
            StepData::Activity(activity(vec![call(0, "cloudtrail:StopLogging", "198.51.100.20", None, Some("main-trail"))])),
        ),
    ];
    let diagnosis = diagnose(&investigation(), &reports);
    assert_eq!(diagnosis.verdict, Verdict::Compromised);
    assert_eq!(diagnosis.severity, Severity::Critical);
    let claims = &section(&diagnosis, "Defense evasion").claims;
    assert!(claims[0].text.contains("cloudtrail:StopLogging"), "{claims:?}");
    assert!(diagnosis.actions.iter().any(|a| a.text.contains("restore logging")));
}

#[test]
fn denied_defense_evasion_only_suspicious() {
    let reports = vec![report(
        StepId::Activity,
        StepData::Activity(activity(vec![call(0, "cloudtrail:StopLogging", "198.51.100.20", Some("AccessDenied"), None)])),
    )];
    let diagnosis = diagnose(&investigation(), &reports);
    assert_eq!(diagnosis.verdict, Verdict::Suspicious);
    assert!(section(&diagnosis, "Defense evasion").claims[0].text.contains("1 failed"));
}

#[test]
fn persistence_calls_listed_with_targets() {
    let reports = vec![report(
        StepId::Activity,
        StepData::Activity(activity(vec![
            call(1, "iam:CreateUser", "203.0.113.45", None, Some("support-backup")),
            call(2, "iam:CreateLoginProfile", "203.0.113.45", None, Some("support-backup")),
        ])),
    )];
    let diagnosis = diagnose(&investigation(), &reports);
    let persistence = section(&diagnosis, "Persistence");
    assert_eq!(persistence.claims.len(), 2);
    assert!(persistence.claims.iter().any(|c| c.text == "iam:CreateUser ×1: support-backup"));
    assert!(diagnosis.actions.iter().any(|a| a.text.contains("iam:CreateUser support-backup")));
}

#[test]
fn repeated_persistence_listed_once() {
    let reports = vec![report(
        StepId::Activity,
        StepData::Activity(activity(vec![
            call(1, "iam:CreateUser", "203.0.113.45", None, Some("backdoor")),
            call(2, "iam:CreateUser", "203.0.113.45", None, Some("backdoor")),
            call(3, "iam:CreateUser", "203.0.113.45", None, Some("backdoor")),
            call(4, "iam:CreateLoginProfile", "203.0.113.45", None, Some("backdoor")),
        ])),
    )];
    let diagnosis = diagnose(&investigation(), &reports);
    let action = diagnosis
        .actions
        .iter()
        .find(|a| a.text.starts_with("remove what the attacker created"))
        .expect("a clean-up action");
    assert_eq!(
        action.text,
        "remove what the attacker created: iam:CreateUser backdoor (×3), iam:CreateLoginProfile backdoor"
    );
}

#[test]
fn temporary_key_revoke_names_no_minted_count() {
    let investigation = Investigation::new("ASIAIOSFODNN7EXAMPLE".parse().unwrap(), Origin::Cli);
    let reports = vec![report(
        StepId::Activity,
        StepData::Activity(activity(vec![call(1, "iam:CreateUser", "203.0.113.45", None, Some("x"))])),
    )];
    let diagnosis = diagnose(&investigation, &reports);
    let revoke = diagnosis
        .actions
        .iter()
        .find(|a| a.kind == ActionKind::RevokeSessions)
        .expect("a revoke action");
    assert!(revoke.text.contains("is temporary and cannot be deactivated"), "{}", revoke.text);
    assert!(!revoke.text.contains("minted"), "{}", revoke.text);
}

#[test]
fn new_source_with_high_risk_call_is_compromise() {
    let mut facts = activity(vec![call(1, "iam:AttachUserPolicy", "203.0.113.45", None, Some("support-backup"))]);
    facts.history_available = true;
    facts.sources = vec![SourceCount {
        source: "203.0.113.45".to_string(),
        location: Geo::none().lookup("203.0.113.45"),
        count: 1,
        first: at(1),
        new: true,
        cadence: Cadence::Unknown,
    }];
    let diagnosis = diagnose(&investigation(), &[active_key(), report(StepId::Activity, StepData::Activity(facts.clone()))]);
    assert_eq!(diagnosis.verdict, Verdict::Compromised);
    assert!(headings(&diagnosis).contains(&"Activity outside the key's history"));

    facts.sources[0].new = false;
    let diagnosis = diagnose(&investigation(), &[active_key(), report(StepId::Activity, StepData::Activity(facts))]);
    assert_eq!(diagnosis.verdict, Verdict::Suspicious, "a known source makes it only suspicious");
    assert!(!headings(&diagnosis).contains(&"Activity outside the key's history"));
}

#[test]
fn secrets_read_section() {
    let reports = vec![report(
        StepId::Activity,
        StepData::Activity(activity(vec![
            call(1, "secretsmanager:GetSecretValue", "203.0.113.45", None, Some("prod/db")),
            call(2, "secretsmanager:GetSecretValue", "203.0.113.45", None, Some("ci/token")),
        ])),
    ), report(StepId::Secrets, StepData::Secrets(SecretFacts {
        distinct_secrets: vec!["ci/token".to_string(), "prod/db".to_string()],
        ..SecretFacts::default()
    }))];
    let diagnosis = diagnose(&investigation(), &reports);
    let claims = &section(&diagnosis, "Secrets read").claims;
    assert_eq!(claims[0].text, "secretsmanager:GetSecretValue ×2: prod/db, ci/token");
    assert!(diagnosis.actions.iter().any(|a| a.text.contains("rotate the secrets that were read: ci/token, prod/db")));
}

#[test]
fn denied_burst_section_fires_and_not() {
    let mut facts = activity(vec![call(0, "ec2:GetPasswordData", "203.0.113.45", Some("Client.UnauthorizedOperation"), None)]);
    let diagnosis = diagnose(&investigation(), &[report(StepId::Activity, StepData::Activity(facts.clone()))]);
    assert!(!headings(&diagnosis).contains(&"Denied-call bursts (enumeration)"));

    facts.denied_bursts = vec![DeniedBurst {
        start: at(0),
        end: at(1),
        count: 30,
        calls: vec![("ec2:GetPasswordData".to_string(), 30)],
        keys: vec!["AKIAIOSFODNN7EXAMPLE".to_string()],
    }];
    let diagnosis = diagnose(&investigation(), &[report(StepId::Activity, StepData::Activity(facts))]);
    let burst = section(&diagnosis, "Denied-call bursts (enumeration)");
    assert!(burst.claims[0].text.starts_with("30 denied calls"), "{:?}", burst.claims);
}

#[test]
fn minted_sessions_recommend_revocation() {
    let mut facts = activity(vec![call(0, "sts:GetSessionToken", "203.0.113.45", None, None)]);
    facts.minted_sessions = vec![MintedSession {
        key_id: "ASIAIOSFODNN7EXAMPLE".to_string(),
        call: "sts:GetSessionToken".to_string(),
        time: at(0),
        parent_key_id: Some("AKIAIOSFODNN7EXAMPLE".to_string()),
        role_arn: None,
        event_id: None,
    }];
    let diagnosis = diagnose(&investigation(), &[active_key(), report(StepId::Activity, StepData::Activity(facts))]);
    assert!(headings(&diagnosis).contains(&"Temporary credentials minted"));
    assert!(diagnosis.actions.iter().any(|a| a.kind == ActionKind::RevokeSessions));
}

#[test]
fn cross_account_success_is_strong_denied_is_weak() {
    let assumption = RoleAssumption {
        time: at(5),
        role_arn: Some("arn:aws:iam::444455556666:role/deploy".to_string()),
        target_account: Some("444455556666".to_string()),
        cross_account: true,
        denied: true,
        error_code: Some("AccessDenied".to_string()),
        caller_key_id: Some("AKIAIOSFODNN7EXAMPLE".to_string()),
        minted_key_id: None,
        event_id: None,
    };
    let denied = CrossAccountFacts {
        assumptions: vec![assumption.clone()],
        chained: false,
        other_accounts: vec!["444455556666".to_string()],
    };
    let activity_report = report(StepId::Activity, StepData::Activity(activity(vec![call(5, "sts:AssumeRole", "203.0.113.45", Some("AccessDenied"), None)])));
    let diagnosis = diagnose(&investigation(), &[activity_report.clone(), report(StepId::CrossAccount, StepData::CrossAccount(denied))]);
    let section_text = &section(&diagnosis, "Cross-account activity and role assumption").claims[0].text;
    assert!(section_text.contains("denied"), "{section_text}");
    assert_eq!(diagnosis.verdict, Verdict::Suspicious);

    let succeeded = CrossAccountFacts {
        assumptions: vec![RoleAssumption { denied: false, error_code: None, ..assumption }],
        chained: false,
        other_accounts: vec!["444455556666".to_string()],
    };
    let diagnosis = diagnose(&investigation(), &[activity_report, report(StepId::CrossAccount, StepData::CrossAccount(succeeded))]);
    assert_eq!(diagnosis.verdict, Verdict::Compromised);
}

#[test]
fn guardduty_finding_sets_baseline() {
    let finding = SecurityFinding {
        source: FindingSource::GuardDuty,
        id: "gd-1".to_string(),
        finding_type: "PenTest:IAMUser/KaliLinux".to_string(),
        title: "API was invoked from a Kali Linux computer".to_string(),
        severity: "MEDIUM".to_string(),
        first_seen: Some(at(0)),
        last_seen: Some(at(30)),
        account_id: None,
        region: None,
        key_ids: vec!["AKIAIOSFODNN7EXAMPLE".to_string()],
        user_names: Vec::new(),
        source_ips: Vec::new(),
        api_call: None,
    };
    let guardduty = GuardDutyFacts {
        credential_findings: vec![finding],
        first_detection: Some(at(0)),
        first_detection_source: Some("GuardDuty PenTest:IAMUser/KaliLinux".to_string()),
    };
    let reports = vec![
        active_key(),
        report(StepId::Activity, StepData::Activity(activity(vec![call(90, "iam:CreateUser", "203.0.113.45", None, Some("x"))]))),
        report(StepId::Guardduty, StepData::Guardduty(guardduty)),
    ];
    let diagnosis = diagnose(&investigation(), &reports);
    assert_eq!(diagnosis.verdict, Verdict::Compromised);
    assert_eq!(diagnosis.first_detection, Some(at(0)));
    let entry = diagnosis.timeline.iter().find(|e| e.text.contains("iam:CreateUser")).unwrap();
    assert_eq!(entry.offset, "+1h30m");
}

#[test]
fn mfa_gap_fires_only_when_enforced() {
    let mut mfa = MfaFacts {
        calls_without_mfa: 4,
        ..MfaFacts::default()
    };
    let diagnosis = diagnose(&investigation(), &[report(StepId::Mfa, StepData::Mfa(mfa.clone()))]);
    assert!(!headings(&diagnosis).contains(&"MFA gaps"));
    assert_eq!(diagnosis.verdict, Verdict::Inconclusive, "no activity was read");

    mfa.mfa_enforced_by_policy = true;
    mfa.enforcing_policies = vec!["RequireMFA (inline)".to_string()];
    let diagnosis = diagnose(&investigation(), &[report(StepId::Mfa, StepData::Mfa(mfa))]);
    assert!(section(&diagnosis, "MFA gaps").claims[0].text.contains("4 calls ran without MFA although RequireMFA"));
    assert_eq!(diagnosis.verdict, Verdict::Suspicious);
}

#[test]
fn admin_owner_raises_severity_and_suggests_quarantine() {
    let permissions = PermissionFacts {
        admin: true,
        escalation_actions: vec![RiskyGrant {
            policy: "p".to_string(),
            grant: "iam:* on *".to_string(),
            reason: "r".to_string(),
        }],
        ..PermissionFacts::default()
    };
    let reports = vec![
        active_key(),
        report(StepId::Activity, StepData::Activity(activity(vec![call(0, "s3:ListBuckets", "203.0.113.45", Some("AccessDenied"), None)]))),
        report(StepId::Permissions, StepData::Permissions(permissions)),
        report(StepId::Secrets, StepData::Secrets(SecretFacts::default())),
    ];
    let mut investigation = investigation();
    investigation.alert = Some(AlertContext {
        source: "AWS Health".to_string(),
        finding_type: Some("AWS_RISK_CREDENTIALS_EXPOSED".to_string()),
        first_seen: Some(at(0)),
        source_ips: Vec::new(),
    });
    let diagnosis = diagnose(&investigation, &reports);
    assert_eq!(diagnosis.verdict, Verdict::Compromised);
    assert_eq!(diagnosis.severity, Severity::Critical);
    assert!(diagnosis.actions.iter().any(|a| a.kind == ActionKind::Quarantine));
    assert_eq!(diagnosis.actions[0].kind, ActionKind::Deactivate);
}

#[test]
fn inactive_key_not_deactivated_again() {
    let mut key = active_key();
    if let StepData::Key(facts) = &mut key.data {
        facts.record.as_mut().unwrap().status = KeyStatus::Inactive;
    }
    let reports = vec![key, report(StepId::Activity, StepData::Activity(activity(vec![call(0, "cloudtrail:StopLogging", "203.0.113.45", None, None)])))];
    let diagnosis = diagnose(&investigation(), &reports);
    assert!(!diagnosis.actions.iter().any(|a| a.kind == ActionKind::Deactivate));
    assert_eq!(diagnosis.severity, Severity::High, "an inactive key lowers the severity");
}

#[test]
fn blind_spots_list_failed_steps() {
    let failed = StepReport::failed(
        StepId::Findings,
        crate::report::StepFailure {
            operation: "securityhub:GetFindings".to_string(),
            permission: Some("securityhub:GetFindings".to_string()),
            message: "access denied".to_string(),
        },
    );
    let diagnosis = diagnose(&investigation(), &[failed, StepReport::not_available(StepId::ExternalAccess, "no analyzer")]);
    assert_eq!(diagnosis.blind_spots.len(), 2);
    assert!(diagnosis.blind_spots[0].contains("securityhub:GetFindings"));
    assert!(diagnosis.summary.contains("2 things could not be checked"));
}

#[test]
fn offset_formats() {
    assert_eq!(offset(Duration::minutes(0)), "+0m");
    assert_eq!(offset(Duration::minutes(133)), "+2h13m");
    assert_eq!(offset(Duration::minutes(-(24 * 60 + 4 * 60))), "-1d4h");
}

#[test]
fn new_read_only_call_from_known_source_is_no_signal() {
    let mut facts = activity(vec![call(0, "s3:ListBuckets", "198.51.100.20", None, None)]);
    facts.history_available = true;
    facts.calls = vec![crate::report::CallCount {
        call: "s3:ListBuckets".to_string(),
        count: 1,
        errors: 0,
        denied: 0,
        first: at(0),
        last: at(0),
        new: true,
    }];
    let diagnosis = diagnose(&investigation(), &[report(StepId::Activity, StepData::Activity(facts.clone()))]);
    assert_eq!(diagnosis.verdict, Verdict::NoEvidence);
    assert_eq!(section(&diagnosis, "Activity outside the key's history").level, Status::Ok);

    facts.calls[0].call = "iam:CreateUser".to_string();
    let diagnosis = diagnose(&investigation(), &[report(StepId::Activity, StepData::Activity(facts))]);
    assert_eq!(section(&diagnosis, "Activity outside the key's history").level, Status::Warning);
    assert_eq!(diagnosis.verdict, Verdict::Suspicious);
}

fn shared_bucket(created: DateTime<Utc>) -> StepReport {
    let finding = AnalyzerFinding {
        id: "analyzer-finding-1".to_string(),
        resource: "arn:aws:s3:::payroll-exports".to_string(),
        resource_type: "AWS::S3::Bucket".to_string(),
        principal: Some("999988887777".to_string()),
        is_public: false,
        actions: vec!["s3:GetObject".to_string()],
        status: "ACTIVE".to_string(),
        created: Some(created),
    };
    let facts = ExternalAccessFacts {
        analyzer_findings: vec![finding],
        grants: Vec::new(),
        analyzer_available: true,
    };
    report(StepId::ExternalAccess, StepData::ExternalAccess(facts))
}

#[test]
fn old_untouched_sharing_no_signal() {
    let routine = activity(vec![call(0, "s3:ListBuckets", "198.51.100.20", None, None)]);
    let reports = vec![
        active_key(),
        report(StepId::Activity, StepData::Activity(routine)),
        shared_bucket(at(-90 * 24 * 60)),
    ];
    let diagnosis = diagnose(&investigation(), &reports);
    assert_eq!(diagnosis.verdict, Verdict::NoEvidence);
    assert!(headings(&diagnosis).contains(&"External access"), "the finding is still listed");
}

#[test]
fn recent_or_touched_sharing_signals() {
    let routine = activity(vec![call(0, "s3:ListBuckets", "198.51.100.20", None, None)]);
    let reports = vec![
        active_key(),
        report(StepId::Activity, StepData::Activity(routine)),
        shared_bucket(at(-60)),
    ];
    assert_eq!(diagnose(&investigation(), &reports).verdict, Verdict::Suspicious, "created in the window");

    let touched = activity(vec![call(0, "s3:GetObject", "198.51.100.20", None, Some("payroll-exports"))]);
    let reports = vec![
        active_key(),
        report(StepId::Activity, StepData::Activity(touched)),
        shared_bucket(at(-90 * 24 * 60)),
    ];
    assert_eq!(diagnose(&investigation(), &reports).verdict, Verdict::Suspicious, "a bucket the key read");
}
