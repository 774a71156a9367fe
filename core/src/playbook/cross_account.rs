//! Step 8: role assumptions by the key and its sessions, moves into other accounts, role
//! chaining, and denied attempts.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::cloudtrail::Event;
use crate::evidence::EventSet;
use crate::playbook::brief::evidence_item;
use crate::playbook::{StepContext, evidence_failure};
use crate::report::{CrossAccountFacts, Finding, RoleAssumption, Status, StepData, StepId, StepReport};

/// The role ARN in a denied AssumeRole's error message, which CloudTrail records without
/// request parameters: `… not authorized to perform: sts:AssumeRole on resource: arn:…`.
static DENIED_ROLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"on resource: (arn:aws[\w-]*:iam::(\d{12}):role/[\w+=,.@/-]+)").expect("valid regex"));

/// The account ID inside an IAM role ARN.
static ROLE_ACCOUNT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^arn:aws[\w-]*:iam::(\d{12}):role/").expect("valid regex"));

pub(super) async fn run(context: &StepContext) -> StepReport {
    let events = match context.events().await {
        Ok(events) => events,
        Err(error) => return evidence_failure(StepId::CrossAccount, &error),
    };
    let own_account = context.account_id().map(str::to_string).or_else(|| {
        events.key_calls().chain(events.history_calls()).find_map(|e| e.user_identity.account_id.clone())
    });
    let facts = assumptions(&events, own_account.as_deref());
    report(facts, &events)
}

/// Collects the role assumptions made with the key and its sessions in the window.
pub(crate) fn assumptions(events: &EventSet, own_account: Option<&str>) -> CrossAccountFacts {
    let root = events.key.as_str();
    let mut facts = CrossAccountFacts::default();
    let mut other_accounts = BTreeSet::new();

    for event in events.key_and_session_calls() {
        if event.event_source != "sts.amazonaws.com" || !event.event_name.starts_with("AssumeRole") {
            continue;
        }
        let assumption = assumption_of(event, own_account);
        if assumption.caller_key_id.as_deref() != Some(root) {
            facts.chained = true;
        }
        if assumption.cross_account {
            if let Some(account) = &assumption.target_account {
                other_accounts.insert(account.clone());
            }
        }
        facts.assumptions.push(assumption);
    }

    // Sessions also reach other accounts without AssumeRole when a resource policy allows
    // them; CloudTrail records the call in the resource's account.
    for event in events.key_and_session_calls() {
        let Some(recipient) = event.recipient_account_id.as_deref() else {
            continue;
        };
        if own_account.is_some_and(|own| own != recipient) {
            other_accounts.insert(recipient.to_string());
        }
    }
    facts.other_accounts = other_accounts.into_iter().collect();
    facts
}

fn assumption_of(event: &Event, own_account: Option<&str>) -> RoleAssumption {
    let requested = event.request_string("roleArn").map(str::to_string);
    let from_error = event
        .error_message
        .as_deref()
        .and_then(|m| DENIED_ROLE.captures(m))
        .map(|c| c[1].to_string());
    let role_arn = requested.or(from_error);
    let target_account = role_arn
        .as_deref()
        .and_then(|arn| ROLE_ACCOUNT.captures(arn))
        .map(|c| c[1].to_string());
    let caller_account = own_account.map(str::to_string).or_else(|| event.user_identity.account_id.clone());
    let cross_account = match (&target_account, &caller_account) {
        (Some(target), Some(caller)) => target != caller,
        _ => false,
    };
    RoleAssumption {
        time: event.event_time,
        role_arn,
        target_account,
        cross_account,
        denied: event.is_access_denied(),
        error_code: event.error_code.clone(),
        caller_key_id: event.access_key_id().map(str::to_string),
        minted_key_id: event.minted_access_key_id().map(str::to_string),
        event_id: event.event_id.clone(),
    }
}

fn report(facts: CrossAccountFacts, events: &EventSet) -> StepReport {
    let mut findings = Vec::new();
    for assumption in &facts.assumptions {
        let role = assumption.role_arn.as_deref().unwrap_or("an unrecorded role");
        let scope = if assumption.cross_account { "another account's role" } else { "role" };
        let (level, outcome) = match (assumption.denied, &assumption.error_code, assumption.cross_account) {
            (true, _, _) => (Status::Warning, "denied".to_string()),
            (false, Some(code), _) => (Status::Warning, format!("failed: {code}")),
            (false, None, true) => (Status::Critical, "succeeded".to_string()),
            (false, None, false) => (Status::Warning, "succeeded".to_string()),
        };
        let minted = assumption
            .minted_key_id
            .as_deref()
            .map(|k| format!(", minted {k}"))
            .unwrap_or_default();
        let event = events
            .events
            .iter()
            .find(|e| e.event_id.is_some() && e.event_id == assumption.event_id);
        findings.push(
            Finding::new(level, format!("AssumeRole into {scope} {role}: {outcome}{minted}"))
                .with_evidence(event.map(evidence_item)),
        );
    }
    if facts.chained {
        findings.push(Finding::new(Status::Warning, "role chaining: a session minted from the key assumed another role"));
    }
    if !facts.other_accounts.is_empty() {
        findings.push(Finding::new(
            Status::Critical,
            format!("reached or tried other accounts: {}", facts.other_accounts.join(", ")),
        ));
    }

    findings.sort_by(|a, b| b.level.cmp(&a.level));
    let status = findings.iter().map(|f| f.level).max().unwrap_or(Status::Ok);
    let denied = facts.assumptions.iter().filter(|a| a.denied).count();
    let summary = if facts.assumptions.is_empty() && facts.other_accounts.is_empty() {
        "no role assumptions or calls into other accounts".to_string()
    } else {
        format!(
            "{} AssumeRole calls ({denied} denied), {} other accounts",
            facts.assumptions.len(),
            facts.other_accounts.len()
        )
    };
    let mut report = StepReport::new(StepId::CrossAccount, status, summary, StepData::CrossAccount(facts));
    report.findings = findings;
    report
}
