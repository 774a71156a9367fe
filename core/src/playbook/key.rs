//! Step 1: does the key exist, who owns it, is it active, and when and where was it last
//! used. For a temporary key, which call minted it and from which key.
//!
//! The key's owner is found in two stages, each run once per investigation and shared.
//! `find_subject` finds the owner's name, which the searches of steps 5, 6, 7 and 9 need.
//! It asks IAM for a long-term key without waiting for CloudTrail, and otherwise reads the
//! key's first CloudTrail event. `find_owner` then reads the key's IAM record and the
//! owner's user record while CloudTrail is fetched, for steps 1, 3 and 4. `run` only
//! reports.

use std::sync::Arc;

use crate::cloudtrail::{Event, IdentityType};
use crate::evidence::{
    EventSet, Evidence, EvidenceError, KeyRecord, KeyStatus, Subject, UserRecord,
};
use crate::key::{AccessKeyId, KeyKind};
use crate::playbook::{OwnerFacts, StepContext, evidence_failure};
use crate::report::{counted, 
    EvidenceItem, Finding, KeyFacts, MintedSession, Status, StepData, StepId, StepReport,
};

use super::EventsResult;

/// The key's owner, as far as it is known before the owner's user record is read.
#[derive(Clone, Debug)]
pub struct SubjectFacts {
    /// The key, its account and its owner's name, and the owner's ARN when CloudTrail
    /// named it.
    pub subject: Subject,
    /// The kind of principal behind the key: `IamUser` when IAM names the owner, else the
    /// kind CloudTrail records for the key's first call.
    pub principal_type: Option<IdentityType>,
}

/// Finds the key's owner as early as it can be known, from IAM's record of a long-term key.
/// Otherwise waits for `events`, because CloudTrail names the principal behind a temporary
/// key, a deleted key, or a key in a snapshot without IAM data.
pub(super) async fn find_subject(
    evidence: &dyn Evidence,
    key: &AccessKeyId,
    account_id: Option<String>,
    events: impl Future<Output = EventsResult>,
) -> SubjectFacts {
    let mut facts = SubjectFacts {
        subject: Subject {
            key: key.clone(),
            account_id,
            owner_name: None,
            owner_arn: None,
        },
        principal_type: None,
    };

    if key.kind() == KeyKind::LongTerm {
        // An error here is reported by step 1, which reads the same record.
        if let Ok(Some(user_name)) = evidence.access_key_owner(key).await {
            facts.subject.owner_name = Some(user_name);
            facts.principal_type = Some(IdentityType::IamUser);
            return facts;
        }
    }

    if let Ok(events) = events.await {
        learn_from_events(&mut facts, &events, key);
    }
    facts
}

/// Reads the key's IAM record and the owner's user record while CloudTrail is fetched,
/// and completes what `find_subject` found with what CloudTrail shows.
pub(super) async fn find_owner(
    evidence: &dyn Evidence,
    key: &AccessKeyId,
    subject: impl Future<Output = Arc<SubjectFacts>>,
    events: impl Future<Output = EventsResult>,
) -> OwnerFacts {
    let record = async {
        match key.kind() {
            KeyKind::LongTerm => evidence.access_key(key).await,
            KeyKind::Temporary => Ok(None),
        }
    };
    let user = async {
        let known = subject.await;
        let user = match (&known.subject.owner_name, &known.principal_type) {
            (Some(name), Some(IdentityType::IamUser) | None) => evidence.user(name).await,
            _ => Ok(None),
        };
        (known, user)
    };
    let (record, (known, user), events) = tokio::join!(record, user, events);

    let mut facts = SubjectFacts::clone(&known);
    let mut minted_by = None;
    if let Ok(events) = &events {
        minted_by = learn_from_events(&mut facts, events, key);
    }
    // When CloudTrail shows that the principal is not an IAM user, such as the root user,
    // the user record read by name describes someone else.
    let user = match &facts.principal_type {
        Some(IdentityType::IamUser) | None => user,
        Some(_) => Ok(None),
    };
    let SubjectFacts { mut subject, principal_type } = facts;
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

/// Fills in what CloudTrail shows about the principal behind the key: its ARN and kind
/// from the key's first call, and its name and account where still unknown. Returns the
/// call that minted the key, for a temporary key.
fn learn_from_events(facts: &mut SubjectFacts, events: &EventSet, key: &AccessKeyId) -> Option<MintedSession> {
    let subject = &mut facts.subject;
    if let Some(call) = events.key_calls().chain(events.history_calls()).next() {
        subject.owner_arn = call.principal_arn().map(str::to_string);
        facts.principal_type = Some(call.user_identity.identity_type.clone());
        if subject.owner_name.is_none() {
            subject.owner_name = call.user_name().map(str::to_string);
        }
    }
    let minted_by = events.minting_event().map(|minting| {
        if subject.owner_name.is_none() && minting.event_name == "GetSessionToken" {
            subject.owner_name = minting.user_name().map(str::to_string);
        }
        minted_session_of(minting, key)
    });
    if subject.account_id.is_none() {
        subject.account_id = events
            .key_calls()
            .find_map(|e| e.user_identity.account_id.clone());
    }
    minted_by
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
        let text = match last_used.date {
            Some(date) => {
                let service = last_used.service.as_deref().unwrap_or("an unrecorded service");
                let region = last_used.region.as_deref().unwrap_or("an unrecorded region");
                format!("last used {}, {service} in {region}", date.format("%Y-%m-%d %H:%M UTC"))
            }
            None => "never used, according to IAM's last-used record".to_string(),
        };
        findings.push(Finding::new(Status::Ok, text));
    }
    if !other_keys.is_empty() {
        let list: Vec<String> = other_keys
            .iter()
            .map(|k| format!("{} ({})", k.key_id, status_word(k.status)))
            .collect();
        findings.push(Finding::new(
            Status::Ok,
            format!(
                "the owner has {}: {}",
                counted(other_keys.len(), "other key", "other keys"),
                list.join(", ")
            ),
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
        (None, None) => "owner unknown".to_string(),
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
