//! Step 7: access granted to principals outside the account: IAM Access Analyzer
//! findings, and the key's own calls that shared a resource or opened it to the world.

use crate::evidence::EvidenceError;
use crate::playbook::brief::{brief, evidence_item};
use crate::playbook::{StepContext, evidence_failure};
use crate::report::{counted, ExternalAccessFacts, Finding, Status, StepData, StepId, StepReport};
use crate::tactics::{Tactic, classify};

pub(super) async fn run(context: &StepContext) -> StepReport {
    let (analyzer, events) = tokio::join!(
        context.access_analyzer_findings(),
        context.events(),
    );

    let mut facts = ExternalAccessFacts::default();
    let mut findings = Vec::new();
    let mut gaps = Vec::new();
    match analyzer {
        Ok(search) => {
            facts.analyzer_available = true;
            facts.analyzer_findings = search.found.iter().filter(|f| f.status == "ACTIVE").cloned().collect();
            for error in &search.failures {
                findings.push(Finding::new(
                    Status::Warning,
                    format!("Access Analyzer partly searched, so its findings there are not listed: {error}"),
                ));
                gaps.push(format!("IAM Access Analyzer: {error}"));
            }
        }
        Err(EvidenceError::NotAvailable { what, .. }) => {
            findings.push(Finding::new(Status::NotAvailable, format!("not checked: {what} is not available")));
            gaps.push(format!("{what} is not available"));
        }
        Err(error) if events.is_err() => return evidence_failure(StepId::ExternalAccess, &error),
        Err(error) => {
            findings.push(Finding::new(Status::Warning, format!("not checked: {error}")));
            gaps.push(error.to_string());
        }
    }

    match &events {
        Ok(events) => {
            let grants: Vec<_> = events
                .key_and_session_calls()
                .filter(|e| !e.is_error() && classify(&e.event_source, &e.event_name) == Some(Tactic::Exfiltration))
                .collect();
            for grant in &grants {
                findings.push(
                    Finding::new(Status::Critical, format!("shared or opened: {}", crate::playbook::brief::describe(&brief(grant))))
                        .with_evidence([evidence_item(grant)]),
                );
            }
            facts.grants = grants.into_iter().map(brief).collect();
        }
        Err(error) if !facts.analyzer_available => return evidence_failure(StepId::ExternalAccess, error),
        Err(error) => {
            findings.push(Finding::new(Status::Warning, format!("CloudTrail not checked: {error}")));
            gaps.push(format!("CloudTrail: {error}"));
        }
    }

    for finding in &facts.analyzer_findings {
        let who = finding.principal.as_deref().unwrap_or("an external principal");
        let public = if finding.is_public { " (public)" } else { "" };
        findings.push(Finding::new(
            Status::Warning,
            format!("Access Analyzer: {} {} is shared with {who}{public}", finding.resource_type, finding.resource),
        ));
    }

    findings.sort_by_key(|finding| finding.level.finding_rank());
    let status = Status::of_findings(findings.iter().map(|f| f.level));
    let summary = match (facts.grants.len(), facts.analyzer_findings.len()) {
        (0, 0) => "no resources shared outside the account".to_string(),
        (grants, analyzer) => format!(
            "{} by the key, {}",
            counted(grants, "sharing call", "sharing calls"),
            counted(analyzer, "active Access Analyzer finding", "active Access Analyzer findings")
        ),
    };
    let mut report = StepReport::new(StepId::ExternalAccess, status, summary, StepData::ExternalAccess(facts));
    report.findings = findings;
    report.gaps = gaps;
    report
}
