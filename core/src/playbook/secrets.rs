//! Step 9: which secrets and parameters the key or its sessions read, and where the key
//! itself is stored, so that rotating it does not break a workload.

use std::collections::BTreeSet;

use crate::evidence::{EvidenceError, KeyLocation};
use crate::playbook::brief::{brief, describe, evidence_item, target_of};
use crate::playbook::{StepContext, evidence_failure, failed_source};
use crate::report::{counted, Finding, SecretFacts, Status, StepData, StepId, StepReport};
use crate::tactics::{Tactic, classify};

pub(super) async fn run(context: &StepContext) -> StepReport {
    let (locations, events) = tokio::join!(context.key_locations(), context.events());

    let mut facts = SecretFacts::default();
    let mut findings = Vec::new();
    let mut gaps = Vec::new();
    match &events {
        Ok(events) => {
            let reads: Vec<_> = events
                .key_and_session_calls()
                .filter(|e| classify(&e.event_source, &e.event_name) == Some(Tactic::SecretsRead))
                .collect();
            let distinct: BTreeSet<String> = reads.iter().filter(|e| !e.is_error()).filter_map(|e| target_of(e)).collect();
            let succeeded = reads.iter().filter(|e| !e.is_error()).count();
            if succeeded > 0 {
                findings.push(
                    Finding::new(
                        Status::Critical,
                        format!("{succeeded} successful reads of {} secrets or parameters", distinct.len()),
                    )
                    .with_evidence(reads.iter().filter(|e| !e.is_error()).map(|e| evidence_item(e))),
                );
            }
            let failed = reads.len() - succeeded;
            if failed > 0 {
                findings.push(Finding::new(Status::Warning, format!("{} failed", counted(failed, "attempted read", "attempted reads"))));
            }
            facts.reads = reads.into_iter().map(brief).collect();
            facts.distinct_secrets = distinct.into_iter().collect();
        }
        Err(error) => {
            findings.push(Finding::new(Status::Warning, format!("CloudTrail not checked: {error}")));
            gaps.push(format!("CloudTrail: {error}"));
        }
    }

    match locations {
        Ok(search) => {
            facts.storage_search_available = true;
            facts.key_locations = with_readers(search.found.clone(), &facts);
            // A source that failed may store a copy of the key that rotation would break.
            for failure in &search.failures {
                findings.push(Finding::new(
                    Status::Warning,
                    format!("stored copies of the key not searched, so check there before rotating: {failure}"),
                ));
                gaps.push(format!("where the key is stored: {failure}"));
                facts.storage_not_searched.push(failed_source(failure));
            }
        }
        Err(EvidenceError::NotAvailable { what, .. }) => {
            findings.push(Finding::new(Status::NotAvailable, format!("where the key is stored was not checked: {what} is not available")));
            gaps.push(format!("where the key is stored: {what} is not available"));
        }
        Err(error) if events.is_err() => return evidence_failure(StepId::Secrets, &error),
        Err(error) => {
            findings.push(Finding::new(Status::Warning, format!("key storage not checked: {error}")));
            gaps.push(format!("where the key is stored: {error}"));
        }
    }
    for location in &facts.key_locations {
        let readers = if location.readers.is_empty() {
            String::new()
        } else {
            format!("; read by {}", location.readers.join("; "))
        };
        findings.push(Finding::new(
            Status::Warning,
            format!(
                "the key is stored in {:?} {} (matched by {}): update it before rotating{readers}",
                location.kind, location.name, location.matched_by
            ),
        ));
    }

    findings.sort_by_key(|finding| finding.level.finding_rank());
    let status = Status::of_findings(findings.iter().map(|f| f.level));
    let storage_note = if !facts.storage_search_available {
        " (storage not searched)".to_string()
    } else if !facts.storage_not_searched.is_empty() {
        format!(" (not searched: {})", facts.storage_not_searched.join(", "))
    } else {
        String::new()
    };
    let summary = format!(
        "{} ({} distinct); key stored in {}{storage_note}",
        counted(facts.reads.len(), "secret or parameter read", "secret or parameter reads"),
        facts.distinct_secrets.len(),
        counted(facts.key_locations.len(), "place", "places"),
    );
    let mut report = StepReport::new(StepId::Secrets, status, summary, StepData::Secrets(facts));
    report.findings = findings;
    report.gaps = gaps;
    report
}

/// Adds to each location the reads of it that the event set holds.
fn with_readers(mut locations: Vec<KeyLocation>, facts: &SecretFacts) -> Vec<KeyLocation> {
    for location in &mut locations {
        let name = secret_name(&location.name);
        for read in &facts.reads {
            let Some(target) = &read.target else { continue };
            if secret_name(target) == name {
                location.readers.push(describe(read));
            }
        }
    }
    locations
}

/// Returns the name of a secret or parameter given by name or ARN. A Secrets Manager ARN
/// ends in the name plus a hyphen and six random characters, which requests that name the
/// secret do not carry; an SSM parameter ARN holds the name after `parameter`.
fn secret_name(id: &str) -> &str {
    if let Some((_, name)) = id.split_once(":secret:") {
        return match name.rsplit_once('-') {
            Some((base, suffix)) if suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) => base,
            _ => name,
        };
    }
    if let Some((_, name)) = id.split_once(":parameter") {
        return name;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_name_strips_arn_and_suffix() {
        assert_eq!(secret_name("arn:aws:secretsmanager:us-east-1:111122223333:secret:ci/deploy-Ab12Cd"), "ci/deploy");
        assert_eq!(secret_name("ci/deploy"), "ci/deploy");
        assert_eq!(secret_name("arn:aws:ssm:us-east-1:111122223333:parameter/prod/db"), "/prod/db");
        assert_eq!(secret_name("arn:aws:secretsmanager:us-east-1:111122223333:secret:plain"), "plain");
    }
}
