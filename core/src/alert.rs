//! Recognition of alerts forwarded into chat: which access keys they name, and what
//! the finding reports about them (user, account, finding type, time, remote addresses).
//!
//! Input is whatever a chat message carries: plain text, text that quotes an alert
//! (Slack-escaped, in code fences, truncated), attachments flattened to text, or JSON.
//! The recognised shapes are:
//!
//! - GuardDuty findings: EventBridge event, `get-findings` output, a single finding;
//! - Security Hub findings in ASFF: EventBridge event, `get-findings` output, a single
//!   finding, including GuardDuty findings imported into Security Hub;
//! - AWS Health events: EventBridge event, `describe-events`, `describe-event-details`
//!   and `describe-affected-entities` output;
//! - CloudTrail events;
//! - SNS notifications and Lambda SNS or SQS records that wrap any of these;
//! - text that names an access key ID in its canonical uppercase form.
//!
//! This module only reads. It calls no AWS API and does not decide whether a key is
//! compromised: a recognised alert is where an investigation starts. No input makes it
//! panic, and its work is linear in the size of the input.

mod facts;
mod shapes;
mod text;

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::key::AccessKeyId;
use crate::redact;
use facts::Facts;

/// The origin of an alert: the AWS service that produced it, or message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    /// An Amazon GuardDuty finding.
    GuardDuty,
    /// An AWS Security Hub finding in ASFF, including GuardDuty findings imported into
    /// Security Hub.
    SecurityHub,
    /// An AWS Health event, such as `AWS_RISK_CREDENTIALS_EXPOSED`.
    Health,
    /// Text or JSON of no known alert shape that names an access key ID, including
    /// CloudTrail events and IAM API output.
    Text,
}

impl fmt::Display for AlertSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertSource::GuardDuty => "GuardDuty",
            AlertSource::SecurityHub => "Security Hub",
            AlertSource::Health => "AWS Health",
            AlertSource::Text => "message text",
        })
    }
}

/// An alert that names at least one access key ID, with the details it gives about the
/// key.
///
/// When a message contains several findings (a `get-findings` page, an SNS batch), the
/// alert lists the key IDs of all of them. The other fields come from the first finding
/// that names a key, completed by findings about the same key and by parts of the
/// message that name no key (the envelope, the prose around a quoted finding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The service that produced the alert.
    pub source: AlertSource,
    /// The access key IDs named, without duplicates, in order of appearance. Never
    /// empty.
    ///
    /// NOTE: keys named by different fields of one JSON object follow the field order
    /// of `serde_json::Map`: document order with serde_json's `preserve_order` feature
    /// (which `aws-smithy-http-client` turns on in this workspace), name order without.
    pub key_ids: Vec<AccessKeyId>,
    /// The IAM user name (GuardDuty `userName`, ASFF `PrincipalName` or `UserName`).
    pub user_name: Option<String>,
    /// The principal's unique ID, such as `AIDACKCEVSQ6C2EXAMPLE`.
    pub principal_id: Option<String>,
    /// The ARN of the IAM or STS principal, when the alert gives one.
    pub principal_arn: Option<String>,
    /// The 12-digit account ID the finding belongs to.
    pub account_id: Option<String>,
    /// The finding type: a GuardDuty type such as
    /// `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`, an AWS
    /// Health `eventTypeCode` such as `AWS_RISK_CREDENTIALS_EXPOSED`, or the first ASFF
    /// `Types` entry.
    pub finding_type: Option<String>,
    /// The finding ID, finding ARN or AWS Health event ARN.
    pub finding_id: Option<String>,
    /// The finding's title.
    pub title: Option<String>,
    /// The severity label (`Low`, `Medium`, `High`, `Critical`, `Informational`), with
    /// GuardDuty's numeric score in brackets: `High (8)`.
    pub severity: Option<String>,
    /// The region the finding or event was reported in.
    pub region: Option<String>,
    /// When the activity was first seen (GuardDuty `eventFirstSeen`, ASFF
    /// `FirstObservedAt`, AWS Health `startTime`).
    pub first_seen: Option<DateTime<Utc>>,
    /// When the activity was last seen (GuardDuty `eventLastSeen`, ASFF
    /// `LastObservedAt`, AWS Health `lastUpdatedTime`).
    pub last_seen: Option<DateTime<Utc>>,
    /// Remote IP addresses named by the finding, without duplicates.
    pub source_ips: Vec<String>,
    /// True when the message also contained a secret access key, which must then be
    /// treated as exposed in chat as well.
    pub secret_pasted: bool,
}

/// Recognises an alert in chat text and returns the details it gives about the access
/// keys it names, or `None` when the text names no valid access key ID, in which case nothing
/// should start.
///
/// JSON quoted in the text is read by shape. The key fields of a known shape win over
/// key IDs written elsewhere in the same finding, and GuardDuty sample placeholders such
/// as `GeneratedFindingAccessKeyId` never count. Truncated or broken JSON still gives its
/// key IDs and its `"field": "value"` pairs. In free text only the canonical uppercase
/// form counts (`AKIA…` or `ASIA…`, 20 characters, as a whole word), so no lowercase
/// word of prose is taken for a key.
pub fn recognise(text: &str) -> Option<Alert> {
    let text = text::normalise_chat_text(text);
    let mut found = Vec::new();
    text::facts_from_text(&text, 0, &mut found);
    merge(found, redact::contains_secret_access_key(&text))
}

/// Recognises an alert in a JSON document, such as an EventBridge event, an SNS
/// notification or API output, with the same rules as [`recognise`].
pub fn recognise_json(value: &serde_json::Value) -> Option<Alert> {
    let mut found = Vec::new();
    shapes::facts_from_value(value, 0, &mut found);
    merge(found, json_contains_secret_access_key(value, 0))
}

/// Merges the facts of a message's pieces into one alert, or returns `None` when no
/// piece names a key.
///
/// The primary piece is the first that names a key and has a known source, or else
/// the first that names a key. Its fields win, and related pieces (see [`is_related`])
/// fill the gaps. Other pieces add only their key IDs, so the user or time of a finding
/// about another key is not attributed to the primary one.
fn merge(found: Vec<Facts>, secret_pasted: bool) -> Option<Alert> {
    let primary = found
        .iter()
        .position(|facts| !facts.key_ids.is_empty() && facts.source.is_some())
        .or_else(|| found.iter().position(|facts| !facts.key_ids.is_empty()))?;

    let primary_facts = &found[primary];
    let related: Vec<&Facts> = std::iter::once(primary_facts)
        .chain(found.iter().enumerate().filter_map(|(index, facts)| {
            (index != primary && is_related(primary_facts, facts)).then_some(facts)
        }))
        .collect();

    let mut seen_keys = HashSet::new();
    let key_ids: Vec<AccessKeyId> = found
        .iter()
        .flat_map(|facts| &facts.key_ids)
        .filter(|key| seen_keys.insert(*key))
        .cloned()
        .collect();
    let mut seen_ips = HashSet::new();
    let source_ips: Vec<String> = related
        .iter()
        .flat_map(|facts| &facts.source_ips)
        .filter(|ip| seen_ips.insert(*ip))
        .cloned()
        .collect();
    let first =
        |get: fn(&Facts) -> &Option<String>| related.iter().find_map(|facts| get(facts).clone());

    Some(Alert {
        source: related
            .iter()
            .find_map(|facts| facts.source)
            .unwrap_or(AlertSource::Text),
        key_ids,
        user_name: first(|facts| &facts.user_name),
        principal_id: first(|facts| &facts.principal_id),
        principal_arn: first(|facts| &facts.principal_arn),
        account_id: first(|facts| &facts.account_id),
        finding_type: first(|facts| &facts.finding_type),
        finding_id: first(|facts| &facts.finding_id),
        title: first(|facts| &facts.title),
        severity: first(|facts| &facts.severity),
        region: first(|facts| &facts.region),
        first_seen: related.iter().filter_map(|facts| facts.first_seen).min(),
        last_seen: related.iter().filter_map(|facts| facts.last_seen).max(),
        source_ips,
        secret_pasted,
    })
}

/// Returns true when `other` may fill gaps in `primary`. It may when it names the same
/// key, or when it names no key and is context rather than a finding of its own: an
/// envelope, prose, or a finding quoted next to a key that only the prose names.
fn is_related(primary: &Facts, other: &Facts) -> bool {
    if other.key_ids.is_empty() {
        return other.source.is_none() || primary.source.is_none();
    }
    other.key_ids.iter().any(|key| primary.names_key(key))
}

/// Returns true when a string in `value` contains a secret access key, or a field named
/// like `SecretAccessKey` has a value.
fn json_contains_secret_access_key(value: &serde_json::Value, depth: usize) -> bool {
    use serde_json::Value;

    const MAX_DEPTH: usize = 48;
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::String(text) => redact::contains_secret_access_key(text),
        Value::Array(items) => items
            .iter()
            .any(|item| json_contains_secret_access_key(item, depth + 1)),
        Value::Object(map) => map.iter().any(|(name, item)| {
            let secret_field = matches!(
                facts::normalised_field_name(name).as_str(),
                "secretaccesskey" | "awssecretaccesskey" | "secretkey" | "awssecretkey"
            );
            let has_value = item.as_str().is_some_and(|text| !text.trim().is_empty());
            (secret_field && has_value) || json_contains_secret_access_key(item, depth + 1)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
