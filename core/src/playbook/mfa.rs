//! Step 3: does the owner have MFA and a console password, does a policy enforce MFA,
//! which users of the account lack MFA, and which of the key's calls ran without MFA.

use crate::evidence::{CredentialReportRow, EvidenceError, UserRecord};
use crate::key::KeyKind;
use crate::playbook::brief::brief;
use crate::playbook::{StepContext, evidence_failure};
use crate::policy;
use crate::report::{counted, Finding, MfaFacts, Status, StepData, StepId, StepReport};

/// How many example calls without MFA a report keeps.
const EXAMPLES: usize = 5;

pub(super) async fn run(context: &StepContext) -> StepReport {
    let owner = context.owner().await;
    let report_rows = context.credential_report().await;
    let events = context.events().await;

    let user = match &owner.user {
        Ok(user) => user.clone(),
        Err(EvidenceError::NotAvailable { .. }) => None,
        Err(error) => return evidence_failure(StepId::Mfa, error),
    };
    let rows = match &report_rows {
        Ok(rows) => Some(rows.as_slice()),
        Err(EvidenceError::NotAvailable { .. }) => None,
        Err(error) => return evidence_failure(StepId::Mfa, error),
    };
    if user.is_none() && rows.is_none() && events.is_err() {
        return StepReport::not_available(
            StepId::Mfa,
            "no IAM user record, credential report or CloudTrail events to judge MFA from",
        );
    }

    let mut facts = owner_mfa(user.as_ref(), rows, owner.subject.owner_name.as_deref());
    if let Some(rows) = rows {
        facts.credential_report_available = true;
        facts.users_without_mfa = users_without_mfa(rows);
    }
    if let Ok(events) = &events {
        // A call signed with a long-term key never carries MFA; CloudTrail records
        // mfaAuthenticated only for sessions.
        let long_term = context.investigation.key.kind() == KeyKind::LongTerm;
        let without: Vec<_> = events
            .key_calls()
            .filter(|e| e.mfa_authenticated() == Some(false) || (long_term && e.mfa_authenticated().is_none()))
            .collect();
        facts.calls_without_mfa = without.len();
        facts.calls_without_mfa_examples = without.iter().take(EXAMPLES).map(|e| brief(e)).collect();
    }
    report(facts, context.investigation.key.kind() == KeyKind::LongTerm)
}

fn owner_mfa(user: Option<&UserRecord>, rows: Option<&[CredentialReportRow]>, owner: Option<&str>) -> MfaFacts {
    let row = owner.and_then(|name| rows?.iter().find(|r| r.user == name));
    let mut facts = MfaFacts {
        user_name: owner.map(str::to_string),
        owner_has_mfa: user
            .and_then(|u| u.mfa_devices.as_ref().map(|d| !d.is_empty()))
            .or_else(|| row.and_then(|r| r.mfa_active)),
        owner_has_console_password: user
            .and_then(|u| u.console_password)
            .or_else(|| row.and_then(|r| r.password_enabled)),
        ..MfaFacts::default()
    };
    if let Some(user) = user {
        let inputs: Vec<policy::PolicyInput> = user
            .policies
            .iter()
            .map(|p| policy::PolicyInput {
                name: &p.name,
                arn: p.arn.as_deref(),
                document: p.document.as_ref(),
            })
            .collect();
        let analysis = policy::analyze(&inputs);
        facts.policies_read = true;
        facts.mfa_enforced_by_policy = !analysis.mfa_enforcing.is_empty();
        facts.enforcing_policies = analysis.mfa_enforcing;
        let forms: Vec<policy::MfaEnforcement> = user
            .policies
            .iter()
            .filter_map(|p| p.document.as_ref())
            .flat_map(policy::mfa_enforcement)
            .collect();
        facts.enforcement_misses_long_term_keys =
            !forms.is_empty() && !forms.iter().any(|form| form.stops_long_term_key());
    }
    facts
}

/// Returns users with a console password or an active key but no MFA device.
fn users_without_mfa(rows: &[CredentialReportRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.mfa_active == Some(false))
        .filter(|r| {
            r.password_enabled == Some(true)
                || r.access_key_1_active == Some(true)
                || r.access_key_2_active == Some(true)
        })
        .map(|r| r.user.clone())
        .collect()
}

fn report(facts: MfaFacts, long_term: bool) -> StepReport {
    let mut findings = Vec::new();
    let mut gaps = Vec::new();
    if !facts.credential_report_available {
        gaps.push("the IAM credential report is not available, so other users' MFA was not checked".to_string());
    }
    if !facts.policies_read {
        gaps.push("the owner's policies are not available, so MFA enforcement is unknown".to_string());
    }
    let owner = facts.user_name.clone().unwrap_or_else(|| "the owner".to_string());

    match facts.owner_has_mfa {
        Some(false) => findings.push(Finding::new(Status::Warning, format!("{owner} has no MFA device"))),
        Some(true) => findings.push(Finding::new(Status::Ok, format!("{owner} has an MFA device"))),
        None => findings.push(Finding::new(Status::NotAvailable, format!("whether {owner} has MFA is unknown"))),
    }
    if facts.owner_has_console_password == Some(true) && facts.owner_has_mfa == Some(false) {
        findings.push(Finding::new(
            Status::Critical,
            format!("{owner} can sign in to the console with a password alone"),
        ));
    }
    if facts.mfa_enforced_by_policy {
        let level = if facts.calls_without_mfa > 0 { Status::Warning } else { Status::Ok };
        findings.push(Finding::new(
            level,
            format!(
                "MFA is enforced by {}; {} calls of this key ran without MFA",
                facts.enforcing_policies.join(", "),
                facts.calls_without_mfa
            ),
        ));
    } else if facts.calls_without_mfa > 0 && facts.policies_read {
        findings.push(Finding::new(
            Status::Ok,
            format!("no policy requires MFA; {} calls of this key ran without it", facts.calls_without_mfa),
        ));
    } else if facts.calls_without_mfa > 0 {
        findings.push(Finding::new(
            Status::Ok,
            format!(
                "{} calls of this key ran without MFA; the owner's policies were not available to tell whether MFA is required",
                facts.calls_without_mfa
            ),
        ));
    }
    if facts.enforcement_misses_long_term_keys && long_term {
        findings.push(Finding::new(
            Status::Warning,
            "the MFA policy uses a Bool condition, which requests signed with a long-term key do not match: it does not stop this key (use BoolIfExists)",
        ));
    }
    if !facts.users_without_mfa.is_empty() {
        findings.push(Finding::new(
            Status::Warning,
            format!(
                "{} of the account {} a password or active key but no MFA: {}",
                counted(facts.users_without_mfa.len(), "user", "users"),
                if facts.users_without_mfa.len() == 1 { "has" } else { "have" },
                facts.users_without_mfa.join(", ")
            ),
        ));
    } else if !facts.credential_report_available {
        findings.push(Finding::new(Status::Ok, "the credential report is not available, so other users were not checked"));
    }

    let status = Status::of_findings(findings.iter().map(|f| f.level));
    let summary = match (facts.owner_has_mfa, facts.mfa_enforced_by_policy) {
        (Some(false), false) => format!("{owner} has no MFA and no policy enforces it"),
        (Some(false), true) => format!("{owner} has no MFA device, though a policy enforces MFA"),
        (Some(true), true) => format!("{owner} has MFA and a policy enforces it"),
        (Some(true), false) => format!("{owner} has MFA, but no policy enforces it for API calls"),
        (None, _) => format!("MFA of {owner} unknown"),
    };
    let mut report = StepReport::new(StepId::Mfa, status, summary, StepData::Mfa(facts));
    report.findings = findings;
    report.gaps = gaps;
    report
}
