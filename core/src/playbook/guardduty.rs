//! Step 6: GuardDuty's credential-compromise detections for the key, and the first
//! detection time, which is the baseline of the diagnosis timeline.

use chrono::{DateTime, Utc};

use crate::evidence::{EvidenceError, SecurityFinding};
use crate::playbook::{StepContext, evidence_failure};
use crate::report::{EvidenceItem, Finding, GuardDutyFacts, Status, StepData, StepId, StepReport};

/// GuardDuty finding types that mean a credential is being used by someone else, as the
/// GuardDuty User Guide's IAM finding types list them. Matched on the part after the
/// tactic prefix, so every `…:IAMUser/AnomalousBehavior` counts.
const CREDENTIAL_FINDING_TYPES: &[&str] = &[
    "IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "IAMUser/InstanceCredentialExfiltration.InsideAWS",
    "IAMUser/MaliciousIPCaller",
    "IAMUser/MaliciousIPCaller.Custom",
    "IAMUser/TorIPCaller",
    "IAMUser/AnomalousBehavior",
    "IAMUser/KaliLinux",
    "IAMUser/ParrotLinux",
    "IAMUser/PentooLinux",
    "IAMUser/CloudTrailLoggingDisabled",
    "IAMUser/PasswordPolicyChange",
    "IAMUser/RootCredentialUsage",
    "IAMUser/ConsoleLoginSuccess.B",
    "IAMUser/NetworkPermissions",
    "IAMUser/ResourcePermissions",
    "IAMUser/UserPermissions",
];

/// Returns true for GuardDuty finding types that indicate a compromised credential.
pub(crate) fn is_credential_finding(finding_type: &str) -> bool {
    let resource_part = finding_type.split_once(':').map_or(finding_type, |(_, rest)| rest);
    CREDENTIAL_FINDING_TYPES.iter().any(|t| resource_part == *t)
}

pub(super) async fn run(context: &StepContext) -> StepReport {
    let (guardduty, health) = tokio::join!(
        context.guardduty_findings(),
        context.health_events(),
    );
    let (findings, not_searched): (Vec<SecurityFinding>, &[EvidenceError]) = match &guardduty {
        Ok(search) => (
            search.found.iter().filter(|f| is_credential_finding(&f.finding_type)).cloned().collect(),
            &search.failures,
        ),
        Err(EvidenceError::NotAvailable { .. }) if context.investigation.alert.is_some() => (Vec::new(), &[]),
        Err(error) => return evidence_failure(StepId::Guardduty, error),
    };

    let mut candidates: Vec<(DateTime<Utc>, String)> = findings
        .iter()
        .filter_map(|f| f.first_seen.map(|t| (t, format!("GuardDuty {}", f.finding_type))))
        .collect();
    if let Ok(events) = &health {
        candidates.extend(
            events
                .iter()
                .filter_map(|e| e.start_time.map(|t| (t, format!("AWS Health {}", e.event_type_code)))),
        );
    }
    if let Some(alert) = &context.investigation.alert {
        if let Some(first_seen) = alert.first_seen {
            let what = alert.finding_type.as_deref().unwrap_or("alert");
            candidates.push((first_seen, format!("{} {what} (the alert)", alert.source)));
        }
    }
    let first = candidates.into_iter().min_by_key(|(t, _)| *t);

    let facts = GuardDutyFacts {
        credential_findings: findings,
        first_detection: first.as_ref().map(|(t, _)| *t),
        first_detection_source: first.map(|(_, s)| s),
    };
    report(facts, not_searched)
}

/// Builds the report. `not_searched` are the errors of the regions, detectors or criteria
/// that could not be searched, and they raise an otherwise clean step to a warning.
fn report(facts: GuardDutyFacts, not_searched: &[EvidenceError]) -> StepReport {
    let mut findings: Vec<Finding> = facts
        .credential_findings
        .iter()
        .map(|f| {
            Finding::new(Status::Critical, format!("{} ({})", f.finding_type, f.severity)).with_evidence([
                EvidenceItem {
                    time: f.first_seen,
                    id: Some(f.id.clone()),
                    text: f.title.clone(),
                },
            ])
        })
        .collect();
    let status = match (findings.is_empty(), not_searched.is_empty()) {
        (false, _) => Status::Critical,
        (true, false) => Status::Warning,
        (true, true) => Status::Ok,
    };
    let summary = match (&facts.first_detection, &facts.first_detection_source, findings.len()) {
        (Some(time), Some(source), _) => format!(
            "first detection {} by {source}; {} credential-compromise findings",
            time.format("%Y-%m-%d %H:%M UTC"),
            findings.len()
        ),
        (_, _, 0) => "no credential-compromise detections".to_string(),
        (_, _, count) => format!("{count} credential-compromise findings"),
    };
    for error in not_searched {
        findings.push(Finding::new(
            Status::Warning,
            format!("partly searched, so detections there are not listed: {error}"),
        ));
    }
    let mut report = StepReport::new(StepId::Guardduty, status, summary, StepData::Guardduty(facts));
    report.findings = findings;
    report.gaps = not_searched.iter().map(|error| format!("GuardDuty: {error}")).collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_types_recognised() {
        assert!(is_credential_finding("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"));
        assert!(is_credential_finding("Discovery:IAMUser/AnomalousBehavior"));
        assert!(is_credential_finding("PenTest:IAMUser/KaliLinux"));
        assert!(!is_credential_finding("Recon:EC2/PortProbeUnprotectedPort"));
        assert!(!is_credential_finding("UnauthorizedAccess:EC2/SSHBruteForce"));
    }
}
