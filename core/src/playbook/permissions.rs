//! Step 4: what the owner can do: admin, wildcards, privilege-escalation actions, and
//! whether AWS's quarantine policy is already attached.

use crate::playbook::{StepContext, evidence_failure};
use crate::policy;
use crate::report::{Finding, PermissionFacts, RiskyGrant, Status, StepData, StepId, StepReport};

pub(super) async fn run(context: &StepContext) -> StepReport {
    let owner = context.owner().await;
    let user = match &owner.user {
        Ok(Some(user)) => user,
        Ok(None) => {
            // NOTE: role sessions (ASIA keys minted by AssumeRole) are not analysed yet:
            // the evidence interface reads user policies only.
            let who = owner.subject.owner_arn.as_deref().or(owner.subject.owner_name.as_deref());
            return StepReport::not_available(
                StepId::Permissions,
                match who {
                    Some(who) => format!("no IAM user record for {who}, so its policies were not read"),
                    None => "the owner is unknown, so no policies were read".to_string(),
                },
            );
        }
        Err(error) => return evidence_failure(StepId::Permissions, error),
    };

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

    let facts = PermissionFacts {
        principal: user.arn.clone().or_else(|| Some(user.user_name.clone())),
        policies: user.policies.iter().map(|p| p.display_name()).collect(),
        admin: !analysis.admin.is_empty(),
        wildcard_grants: analysis.wildcard_grants.iter().map(risky).collect(),
        escalation_actions: analysis.escalation.iter().map(risky).collect(),
        quarantine_policy: analysis.quarantine.clone(),
        unreadable_policies: analysis.unreadable.clone(),
    };
    report(facts, &analysis.admin)
}

fn risky(grant: &policy::Grant) -> RiskyGrant {
    RiskyGrant {
        policy: grant.policy.clone(),
        grant: format!("{} on {}", grant.action, grant.resource),
        reason: grant.reason.clone(),
    }
}

fn report(facts: PermissionFacts, admin_policies: &[String]) -> StepReport {
    let mut findings = Vec::new();
    if facts.admin {
        findings.push(Finding::new(
            Status::Critical,
            format!("full administrator: {} allow every action on every resource", admin_policies.join(", ")),
        ));
    }
    if !facts.escalation_actions.is_empty() {
        let actions: Vec<String> = facts
            .escalation_actions
            .iter()
            .map(|g| format!("{} ({})", g.grant, g.policy))
            .collect();
        findings.push(Finding::new(
            Status::Critical,
            format!("can escalate privileges or persist: {}", actions.join(", ")),
        ));
    }
    if !facts.wildcard_grants.is_empty() {
        let grants: Vec<String> = facts
            .wildcard_grants
            .iter()
            .map(|g| format!("{} ({})", g.grant, g.policy))
            .collect();
        findings.push(Finding::new(Status::Warning, format!("wildcard grants: {}", grants.join(", "))));
    }
    if let Some(quarantine) = &facts.quarantine_policy {
        findings.push(Finding::new(
            Status::Ok,
            format!("AWS quarantine policy {quarantine} is attached: most actions are already denied"),
        ));
    }
    if !facts.unreadable_policies.is_empty() {
        findings.push(Finding::new(
            Status::Warning,
            format!(
                "documents not available for {}, so the analysis is partial",
                facts.unreadable_policies.join(", ")
            ),
        ));
    }

    let status = Status::of_findings(findings.iter().map(|f| f.level));
    let summary = if facts.admin {
        format!("administrator through {} policies", facts.policies.len())
    } else if !facts.escalation_actions.is_empty() {
        format!("{} privilege-escalation actions allowed", facts.escalation_actions.len())
    } else if facts.policies.is_empty() {
        "no policies attached: the key can do almost nothing".to_string()
    } else {
        format!("{} policies, no admin or escalation found", facts.policies.len())
    };
    let summary = match &facts.quarantine_policy {
        Some(q) => format!("{summary}; quarantined by {q}"),
        None => summary,
    };
    let gaps = facts
        .unreadable_policies
        .iter()
        .map(|p| format!("the document of {p} is not available"))
        .collect();
    let mut report = StepReport::new(StepId::Permissions, status, summary, StepData::Permissions(facts));
    report.findings = findings;
    report.gaps = gaps;
    report
}
