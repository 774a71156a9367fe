//! Step 5: which Security Hub and GuardDuty findings, and which AWS Health events, name
//! the key or its owner.

use crate::evidence::{EvidenceError, Search, SecurityFinding};
use crate::playbook::StepContext;
use crate::report::{counted, EvidenceItem, Finding, FindingFacts, Status, StepData, StepFailure, StepId, StepReport};

pub(super) async fn run(context: &StepContext) -> StepReport {
    let (security_hub, guardduty, health) = tokio::join!(
        context.security_hub_findings(),
        context.guardduty_findings(),
        context.health_events(),
    );

    let mut facts = FindingFacts::default();
    let mut failures = Vec::new();
    let mut partial = Vec::new();
    match security_hub {
        Ok(search) => facts.security_hub = searched("Security Hub", &search, &mut partial),
        Err(error) => note_error("Security Hub", error, &mut facts, &mut failures),
    }
    match guardduty {
        Ok(search) => facts.guardduty = searched("GuardDuty", &search, &mut partial),
        Err(error) => note_error("GuardDuty", error, &mut facts, &mut failures),
    }
    match health {
        Ok(found) => facts.health = found.as_ref().clone(),
        Err(error) => note_error("AWS Health", error, &mut facts, &mut failures),
    }
    report(facts, failures, partial)
}

/// Returns what a search found, and adds each region or filter it could not search to
/// `partial`, such as `Security Hub: securityhub:GetFindings failed for eu-west-1: …`.
fn searched(source: &str, search: &Search<SecurityFinding>, partial: &mut Vec<String>) -> Vec<SecurityFinding> {
    partial.extend(search.failures.iter().map(|error| format!("{source}: {error}")));
    search.found.clone()
}

fn note_error(source: &str, error: EvidenceError, facts: &mut FindingFacts, failures: &mut Vec<StepFailure>) {
    facts.unavailable.push(format!("{source}: {error}"));
    if let EvidenceError::Aws { operation, permission, reason, .. } = error {
        failures.push(StepFailure {
            operation,
            permission: Some(permission),
            message: reason,
        });
    }
}

fn finding_line(finding: &SecurityFinding) -> Finding {
    let level = match finding.severity.to_ascii_uppercase().as_str() {
        "CRITICAL" | "HIGH" => Status::Critical,
        "MEDIUM" => Status::Warning,
        _ => Status::Warning,
    };
    let seen = finding
        .first_seen
        .map(|t| format!(", first seen {}", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    Finding::new(
        level,
        format!("{:?} {} {}: {}{seen}", finding.source, finding.severity, finding.finding_type, finding.title),
    )
    .with_evidence([EvidenceItem {
        time: finding.first_seen,
        id: Some(finding.id.clone()),
        text: finding.title.clone(),
    }])
}

/// Builds the report. `failures` are the services that failed entirely, and `partial` the
/// regions or filters that failed in a service that otherwise responded.
fn report(facts: FindingFacts, failures: Vec<StepFailure>, partial: Vec<String>) -> StepReport {
    let mut findings: Vec<Finding> = facts
        .guardduty
        .iter()
        .chain(&facts.security_hub)
        .map(finding_line)
        .collect();
    for event in &facts.health {
        findings.push(
            Finding::new(
                Status::Critical,
                format!(
                    "AWS Health {}{}",
                    event.event_type_code,
                    event
                        .start_time
                        .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default()
                ),
            )
            .with_evidence([EvidenceItem {
                time: event.start_time,
                id: event.arn.clone(),
                text: event.description.clone().unwrap_or_else(|| event.event_type_code.clone()),
            }]),
        );
    }
    for unavailable in &facts.unavailable {
        findings.push(Finding::new(Status::NotAvailable, format!("not checked: {unavailable}")));
    }
    for missed in &partial {
        findings.push(Finding::new(Status::Warning, format!("partly searched, so findings there are not listed: {missed}")));
    }
    findings.sort_by_key(|finding| finding.level.finding_rank());

    let total = facts.guardduty.len() + facts.security_hub.len() + facts.health.len();
    if facts.unavailable.len() == 3 {
        if let Some(failure) = failures.into_iter().next() {
            let mut report = StepReport::failed(StepId::Findings, failure);
            report.findings = findings;
            return report;
        }
        let mut report = StepReport::not_available(
            StepId::Findings,
            "no Security Hub, GuardDuty or AWS Health data in the evidence",
        );
        report.findings = findings;
        return report;
    }

    let status = Status::of_findings(findings.iter().map(|f| f.level));
    let summary = if total == 0 {
        "no findings name the key or its owner".to_string()
    } else {
        format!(
            "{}, {} and {} name the key or its owner",
            counted(facts.guardduty.len(), "GuardDuty finding", "GuardDuty findings"),
            counted(facts.security_hub.len(), "Security Hub finding", "Security Hub findings"),
            counted(facts.health.len(), "Health event", "Health events")
        )
    };
    let mut gaps = facts.unavailable.clone();
    gaps.extend(partial);
    let mut report = StepReport::new(StepId::Findings, status, summary, StepData::Findings(facts));
    report.findings = findings;
    report.gaps = gaps;
    report
}
