//! Step 1: does the key exist, who owns it, is it active, and when and where was it last
//! used. For a temporary key, which call minted it and from which key.
//!
//! The owner found here is shared with the steps that read the owner's MFA, policies and
//! findings, so `find_owner` runs once and `run` only reports on it.

use crate::cloudtrail::{Event, IdentityType};
use crate::evidence::{
    Evidence, EvidenceError, KeyRecord, KeyStatus, Subject, UserRecord,
};
use crate::key::{AccessKeyId, KeyKind};
use crate::playbook::{OwnerFacts, StepContext, evidence_failure};
use crate::report::{
    EvidenceItem, Finding, KeyFacts, MintedSession, Status, StepData, StepId, StepReport,
};

use super::EventsResult;

/// Finds the key's IAM record and owner, falling back to CloudTrail when IAM records are
/// missing or the key is temporary.
pub(super) async fn find_owner(
    evidence: &dyn Evidence,
    key: &AccessKeyId,
    account_id: Option<String>,
    events: impl Future<Output = EventsResult>,
) -> OwnerFacts {
    let record = match key.kind() {
        KeyKind::LongTerm => evidence.access_key(key).await,
        KeyKind::Temporary => Ok(None),
    };

    let mut subject = Subject {
        key: key.clone(),
        account_id,
        owner_name: None,
        owner_arn: None,
    };
    let mut principal_type = None;
    let mut minted_by = None;

    if let Ok(Some(record)) = &record {
        subject.owner_name = Some(record.user_name.clone());
        principal_type = Some(IdentityType::IamUser);
    }

    // CloudTrail names the principal behind the key even when IAM has no record: a
    // temporary key, a deleted key, or a snapshot without IAM data.
    let events = events.await;
    if let Ok(events) = &events {
        if let Some(call) = events.key_calls().chain(events.history_calls()).next() {
            subject.owner_arn = call.principal_arn().map(str::to_string);
            principal_type = Some(call.user_identity.identity_type.clone());
            if subject.owner_name.is_none() {
                subject.owner_name = call.user_name().map(str::to_string);
            }
        }
        if let Some(minting) = events.minting_event() {
            minted_by = Some(minted_session_of(minting, key));
            if subject.owner_name.is_none() && minting.event_name == "GetSessionToken" {
                subject.owner_name = minting.user_name().map(str::to_string);
            }
        }
        if subject.account_id.is_none() {
            subject.account_id = events
                .key_calls()
                .find_map(|e| e.user_identity.account_id.clone());
        }
    }

    let user = match (&subject.owner_name, &principal_type) {
        (Some(name), Some(IdentityType::IamUser) | None) => evidence.user(name).await,
        _ => Ok(None),
    };
    if subject.owner_arn.is_none() {
        if let Ok(Some(user)) = &user {
            subject.owner_arn = user.arn.clone();
        }
    }

    OwnerFacts {
        subject,
        user,
        record,
        principal_type,
        minted_by,
        events_error: events.err(),
    }
}

fn minted_session_of(minting: &Event, key: &AccessKeyId) -> MintedSession {
    MintedSession {
        key_id: key.to_string(),
        call: minting.call_name(),
        time: minting.event_time,
        parent_key_id: minting.access_key_id().map(str::to_string),
        role_arn: minting.request_string("roleArn").map(str::to_string),
        event_id: minting.event_id.clone(),
    }
}

pub(super) async fn run(context: &StepContext) -> StepReport {
    let owner = context.owner().await;
    let key = &context.investigation.key;

    if let Err(error) = &owner.record {
        if !matches!(error, EvidenceError::NotAvailable { .. }) || owner.subject.owner_name.is_none() {
            return evidence_failure(StepId::Key, error);
        }
    }

    let record = owner.record.as_ref().ok().and_then(|r| r.clone());
    let user = owner.user.as_ref().ok().and_then(|u| u.clone());
    let other_keys = other_keys(user.as_ref(), key);
    let mut findings = Vec::new();

    let (status, summary) = match key.kind() {
        KeyKind::LongTerm => long_term_summary(&owner, record.as_ref(), &mut findings),
        KeyKind::Temporary => temporary_summary(&owner, &mut findings),
    };

    if let Some(last_used) = record.as_ref().and_then(|r| r.last_used.as_ref()) {
        let when = last_used
            .date
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".to_string());
        let service = last_used.service.as_deref().unwrap_or("no service");
        let region = last_used.region.as_deref().unwrap_or("no region");
        findings.push(Finding::new(Status::Ok, format!("last used {when}, {service} in {region}")));
    }
    if !other_keys.is_empty() {
        let list: Vec<String> = other_keys
            .iter()
            .map(|k| format!("{} ({})", k.key_id, status_word(k.status)))
            .collect();
        findings.push(Finding::new(
            Status::Ok,
            format!("the owner has {} other key(s): {}", other_keys.len(), list.join(", ")),
        ));
    }
    let mut gaps = Vec::new();
    if let Err(EvidenceError::NotAvailable { what, .. }) = &owner.record {
        findings.push(Finding::new(
            Status::Ok,
            "IAM key records are not in the evidence; the owner comes from CloudTrail",
        ));
        gaps.push(format!("{what} is not available, so the key's status is unknown"));
    }
    if key.kind() == KeyKind::Temporary && owner.minted_by.is_none() {
        gaps.push("the call that minted this temporary key is not in the CloudTrail read".to_string());
    }

    let facts = KeyFacts {
        record,
        principal_arn: owner.subject.owner_arn.clone(),
        owner_name: owner.subject.owner_name.clone(),
        minted_by: owner.minted_by.clone(),
        other_keys,
    };
    let mut report = StepReport::new(StepId::Key, status, summary, StepData::Key(facts));
    report.findings = findings;
    report.gaps = gaps;
    report
}

fn long_term_summary(
    owner: &OwnerFacts,
    record: Option<&KeyRecord>,
    findings: &mut Vec<Finding>,
) -> (Status, String) {
    let owner_text = owner_text(owner);
    if owner.principal_type == Some(IdentityType::Root) {
        findings.push(Finding::new(
            Status::Critical,
            "this is a root user access key: it can do anything in the account and cannot be limited by IAM policies",
        ));
    }
    let Some(record) = record else {
        return match &owner.record {
            Ok(None) => (
                Status::Warning,
                format!(
                    "no such key in the account's IAM records: it was deleted, or belongs to another account ({owner_text})"
                ),
            ),
            _ => (Status::Warning, format!("key status unknown; {owner_text}")),
        };
    };

    let created = record
        .created
        .map(|c| format!(", created {}", c.format("%Y-%m-%d")))
        .unwrap_or_default();
    match record.status {
        KeyStatus::Active => (
            Status::Critical,
            format!("active: the key still works. Owner: {owner_text}{created}"),
        ),
        KeyStatus::Inactive => (
            Status::Ok,
            format!("inactive: the key no longer authenticates. Owner: {owner_text}{created}"),
        ),
        KeyStatus::Gone | KeyStatus::Unknown => (
            Status::Warning,
            format!("status unknown. Owner: {owner_text}{created}"),
        ),
    }
}

fn temporary_summary(owner: &OwnerFacts, findings: &mut Vec<Finding>) -> (Status, String) {
    let owner_text = owner_text(owner);
    let Some(minted) = &owner.minted_by else {
        return (
            Status::Warning,
            format!(
                "temporary key; the call that minted it is not in the evidence. Principal: {owner_text}"
            ),
        );
    };
    let parent = minted.parent_key_id.as_deref().unwrap_or("an unknown key");
    let role = minted
        .role_arn
        .as_deref()
        .map(|r| format!(" for {r}"))
        .unwrap_or_default();
    findings.push(
        Finding::new(
            Status::Warning,
            format!("minted by {parent} with {}{role}", minted.call),
        )
        .with_evidence([EvidenceItem {
            time: Some(minted.time),
            id: minted.event_id.clone(),
            text: format!("{} by {parent}", minted.call),
        }]),
    );
    (
        Status::Warning,
        format!(
            "temporary key minted {} by {parent} ({}); it works until it expires. Principal: {owner_text}",
            minted.time.format("%Y-%m-%d %H:%M UTC"),
            minted.call
        ),
    )
}

fn owner_text(owner: &OwnerFacts) -> String {
    match (&owner.subject.owner_name, &owner.subject.owner_arn) {
        (_, Some(arn)) => arn.clone(),
        (Some(name), None) => name.clone(),
        (None, None) => "unknown".to_string(),
    }
}

fn other_keys(user: Option<&UserRecord>, key: &AccessKeyId) -> Vec<KeyRecord> {
    user.map(|u| {
        u.access_keys
            .iter()
            .filter(|k| k.key_id != key.as_str())
            .cloned()
            .collect()
    })
    .unwrap_or_default()
}

fn status_word(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Inactive => "inactive",
        KeyStatus::Gone => "gone",
        KeyStatus::Unknown => "status unknown",
    }
}
