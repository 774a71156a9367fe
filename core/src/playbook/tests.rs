//! The playbook runner on literal snapshots: streaming order, widening, and a failing or
//! slow evidence call confined to its step.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::diagnosis::Verdict;
use crate::evidence::snapshot::Snapshot;
use crate::evidence::{AwsErrorKind, EventQuery};
use crate::report::Status;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

fn event(time: &str, source: &str, name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut event = json!({
        "eventVersion": "1.09",
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "eventID": format!("{name}-{time}"),
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "accessKeyId": KEY,
            "accountId": "111122223333",
            "arn": "arn:aws:iam::111122223333:user/ci",
            "userName": "ci"
        }
    });
    if let (Some(target), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    event
}

/// A key that stopped CloudTrail three days before its last, harmless call.
fn old_evasion_snapshot() -> Snapshot {
    let records = json!({"Records": [
        event("2026-11-19T10:00:00Z", "s3.amazonaws.com", "ListBuckets", json!({})),
        event("2026-11-20T10:00:00Z", "cloudtrail.amazonaws.com", "StopLogging", json!({"requestParameters": {"name": "main"}})),
        event("2026-11-23T09:00:00Z", "s3.amazonaws.com", "ListBuckets", json!({})),
        event("2026-11-23T10:00:00Z", "s3.amazonaws.com", "ListBuckets", json!({})),
    ]});
    let files = vec![("cloudtrail/trail.json".to_string(), serde_json::to_vec(&records).unwrap())];
    Snapshot::from_files("test snapshot", files).unwrap()
}

fn investigation() -> Investigation {
    Investigation::new(KEY.parse().unwrap(), Origin::Cli)
}

async fn run_collecting(evidence: Arc<dyn Evidence>, investigation: Investigation, config: PlaybookConfig) -> (Vec<Progress>, Outcome) {
    let mut messages = Vec::new();
    let outcome = run_to_end(investigation, evidence, Arc::new(Geo::none()), config, |m| messages.push(m.clone())).await;
    (messages, outcome)
}

#[tokio::test]
async fn run_streams_every_step_then_diagnosis() {
    let (messages, outcome) = run_collecting(Arc::new(old_evasion_snapshot()), investigation(), PlaybookConfig::default()).await;
    let started = messages.iter().filter(|m| matches!(m, Progress::Started(_))).count();
    let finished: Vec<StepId> = messages
        .iter()
        .filter_map(|m| match m {
            Progress::Finished(report) => Some(report.step),
            _ => None,
        })
        .collect();
    assert!(started >= 10, "{started} started");
    assert!(finished.len() >= 10, "{finished:?}");
    assert!(matches!(messages.last(), Some(Progress::Diagnosed(_))));
    assert_eq!(outcome.reports.len(), 10);
    let steps: Vec<StepId> = outcome.reports.iter().map(|r| r.step).collect();
    assert_eq!(steps, StepId::ALL.to_vec(), "reports in playbook order");
}

#[tokio::test]
async fn nothing_correlates_widens_window() {
    let (messages, outcome) = run_collecting(Arc::new(old_evasion_snapshot()), investigation(), PlaybookConfig::default()).await;
    let widened: Vec<&String> = messages
        .iter()
        .filter_map(|m| match m {
            Progress::Widened(note) => Some(note),
            _ => None,
        })
        .collect();
    assert_eq!(widened.len(), 1, "{messages:?}");
    assert!(widened[0].contains("widened to 7 days"), "{}", widened[0]);
    assert_eq!(outcome.diagnosis.verdict, Verdict::Compromised, "{:#?}", outcome.diagnosis);
    assert!(outcome.diagnosis.widened[0].contains("same CloudTrail fetch"));
    let activity = outcome.reports.iter().find(|r| r.step == StepId::Activity).unwrap();
    assert!(activity.summary.starts_with("7-day window (widened)"), "{}", activity.summary);
}

#[tokio::test]
async fn fixed_window_never_widens() {
    let mut investigation = investigation();
    let end = "2026-11-23T10:00:00Z".parse().unwrap();
    investigation.window = Some(Window::ending_at(end, chrono::Duration::hours(24)));
    let (messages, outcome) = run_collecting(Arc::new(old_evasion_snapshot()), investigation, PlaybookConfig::default()).await;
    assert!(!messages.iter().any(|m| matches!(m, Progress::Widened(_))));
    assert_eq!(outcome.diagnosis.verdict, Verdict::NoEvidence);
    assert!(outcome.diagnosis.widened.iter().all(|w| !w.contains("widened to")));
}

#[tokio::test]
async fn widening_off_keeps_first_answer() {
    let config = PlaybookConfig {
        widen_to: None,
        ..PlaybookConfig::default()
    };
    let (_, outcome) = run_collecting(Arc::new(old_evasion_snapshot()), investigation(), config).await;
    assert_eq!(outcome.diagnosis.verdict, Verdict::NoEvidence);
}

/// Wraps a snapshot and makes one kind of call fail or hang.
struct Faulty {
    inner: Snapshot,
    fault: Fault,
}

#[derive(Clone, Copy)]
enum Fault {
    DenyCredentialReport,
    HangAnalyzer,
}

#[async_trait]
impl Evidence for Faulty {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn resolve_account(&self, key: &AccessKeyId) -> Result<AccountInfo, EvidenceError> {
        self.inner.resolve_account(key).await
    }
    async fn access_key(&self, key: &AccessKeyId) -> Result<Option<KeyRecord>, EvidenceError> {
        self.inner.access_key(key).await
    }
    async fn user(&self, name: &str) -> Result<Option<UserRecord>, EvidenceError> {
        self.inner.user(name).await
    }
    async fn credential_report(&self) -> Result<Vec<CredentialReportRow>, EvidenceError> {
        if let Fault::DenyCredentialReport = self.fault {
            return Err(EvidenceError::Aws {
                operation: "iam:GetCredentialReport".to_string(),
                permission: "iam:GetCredentialReport".to_string(),
                target: "account".to_string(),
                kind: AwsErrorKind::AccessDenied,
                reason: "access denied".to_string(),
            });
        }
        self.inner.credential_report().await
    }
    async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError> {
        self.inner.events(query).await
    }
    async fn security_hub_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        self.inner.security_hub_findings(subject).await
    }
    async fn guardduty_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        self.inner.guardduty_findings(subject).await
    }
    async fn health_events(&self, subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError> {
        self.inner.health_events(subject).await
    }
    async fn access_analyzer_findings(&self, subject: &Subject) -> Result<Search<AnalyzerFinding>, EvidenceError> {
        if let Fault::HangAnalyzer = self.fault {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        self.inner.access_analyzer_findings(subject).await
    }
    async fn key_locations(&self, subject: &Subject) -> Result<KeyLocationSearch, EvidenceError> {
        self.inner.key_locations(subject).await
    }
}

#[tokio::test]
async fn denied_call_fails_only_its_step() {
    let evidence = Faulty {
        inner: old_evasion_snapshot(),
        fault: Fault::DenyCredentialReport,
    };
    let (_, outcome) = run_collecting(Arc::new(evidence), investigation(), PlaybookConfig::default()).await;
    let mfa = outcome.reports.iter().find(|r| r.step == StepId::Mfa).unwrap();
    assert_eq!(mfa.status, Status::Error, "{mfa:#?}");
    assert_eq!(mfa.failure.as_ref().unwrap().permission.as_deref(), Some("iam:GetCredentialReport"));
    let errors = outcome.reports.iter().filter(|r| r.status == Status::Error).count();
    assert_eq!(errors, 1, "only the MFA step fails");
    assert!(outcome.diagnosis.blind_spots.iter().any(|b| b.contains("iam:GetCredentialReport")));
}

#[tokio::test]
async fn slow_call_times_out_its_step() {
    let evidence = Faulty {
        inner: old_evasion_snapshot(),
        fault: Fault::HangAnalyzer,
    };
    let config = PlaybookConfig {
        step_timeout: Duration::from_secs(1),
        widen_to: None,
        ..PlaybookConfig::default()
    };
    let (_, outcome) = run_collecting(Arc::new(evidence), investigation(), config).await;
    let external = outcome.reports.iter().find(|r| r.step == StepId::ExternalAccess).unwrap();
    assert_eq!(external.status, Status::Error, "{external:#?}");
    assert!(external.summary.contains("timed out after 1 seconds"), "{}", external.summary);
    assert_eq!(outcome.reports.len(), 10);
}
