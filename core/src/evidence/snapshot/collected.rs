//! keycheck's own evidence file, `keycheck-evidence.json`, which `keycheck snapshot
//! collect` writes: every record it read live through the `Evidence` trait, as the trait
//! returned it, the error text of every call that failed, and the errors of the regions
//! and services a search could not read while others responded.
//!
//! A snapshot reads this file before any AWS CLI export of the same kind. A kind that
//! failed during the collection is returned as `EvidenceError::NotAvailable` carrying
//! the original error, so an offline re-run reports why the data is missing instead
//! of reporting that none exists. Exports of that kind added to the folder since are read
//! instead of the failure.
//!
//! Records about the key (its account, its IAM record, the findings and events about
//! it) are returned only for the key the file was collected for. The credential report
//! and user records belong to the account, so they are returned for any key. CloudTrail
//! events are not in this file: the collection writes them as a CloudTrail log file
//! next to it, where the usual reader finds them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::evidence::{
    AccountInfo, AnalyzerFinding, CredentialReportRow, EvidenceError, HealthEvent, KeyLocation,
    KeyRecord, SecurityFinding, UserRecord, Window,
};
use crate::key::AccessKeyId;

/// The file's conventional name in a snapshot. The reader recognises the file by its
/// content, whatever its name.
pub const FILE_NAME: &str = "keycheck-evidence.json";

/// The field that marks the file, holding its format version. It is the first field
/// written, so the first bytes of the file show it.
pub const FORMAT_FIELD: &str = "keycheck_evidence";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A kind of evidence, as one `Evidence` method returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// `resolve_account`: the account that owns the key.
    Account,
    /// `access_key`: the key's IAM record.
    AccessKey,
    /// `user`: IAM user records.
    Users,
    /// `credential_report`: the IAM credential report.
    CredentialReport,
    /// `events`: the CloudTrail events of the key, its owner and its sessions.
    Cloudtrail,
    /// `security_hub_findings`.
    SecurityHub,
    /// `guardduty_findings`.
    Guardduty,
    /// `health_events`.
    Health,
    /// `access_analyzer_findings`.
    AccessAnalyzer,
    /// `key_locations`: where the key is stored.
    KeyLocations,
}

impl EvidenceKind {
    /// Every kind, in the order the playbook first reads them.
    pub const ALL: [EvidenceKind; 10] = [
        EvidenceKind::Account,
        EvidenceKind::AccessKey,
        EvidenceKind::Users,
        EvidenceKind::CredentialReport,
        EvidenceKind::Cloudtrail,
        EvidenceKind::SecurityHub,
        EvidenceKind::Guardduty,
        EvidenceKind::Health,
        EvidenceKind::AccessAnalyzer,
        EvidenceKind::KeyLocations,
    ];

    /// Returns the kind as shown to responders, as the subject of "is not available".
    pub fn label(self) -> &'static str {
        match self {
            EvidenceKind::Account => "the key's account",
            EvidenceKind::AccessKey => "the key's IAM record",
            EvidenceKind::Users => "the owner's IAM user record",
            EvidenceKind::CredentialReport => "the IAM credential report",
            EvidenceKind::Cloudtrail => "CloudTrail",
            EvidenceKind::SecurityHub => "Security Hub",
            EvidenceKind::Guardduty => "GuardDuty",
            EvidenceKind::Health => "AWS Health",
            EvidenceKind::AccessAnalyzer => "IAM Access Analyzer",
            EvidenceKind::KeyLocations => "the key-storage search",
        }
    }

    /// Returns the name the kind has in the file, such as `guardduty`.
    pub fn name(self) -> &'static str {
        match self {
            EvidenceKind::Account => "account",
            EvidenceKind::AccessKey => "access_key",
            EvidenceKind::Users => "users",
            EvidenceKind::CredentialReport => "credential_report",
            EvidenceKind::Cloudtrail => "cloudtrail",
            EvidenceKind::SecurityHub => "security_hub",
            EvidenceKind::Guardduty => "guardduty",
            EvidenceKind::Health => "health",
            EvidenceKind::AccessAnalyzer => "access_analyzer",
            EvidenceKind::KeyLocations => "key_locations",
        }
    }
}

/// The collection's CloudTrail read: the parts of an `EventSet` other than its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudTrailRead {
    /// The investigated window. An offline re-run without `--end` ends its window where
    /// this one ends, as the live investigation did.
    pub window: Window,
    /// Start of the key's history read before the window.
    pub history_start: DateTime<Utc>,
    /// Records the live read could not parse. They are not in the CloudTrail file, so an
    /// offline re-run adds this count to its own.
    #[serde(default)]
    pub skipped_records: usize,
    /// Origin of the events, such as `log group aws-cloudtrail-logs`.
    #[serde(default)]
    pub source: String,
}

/// The content of `keycheck-evidence.json`.
///
/// A list is `None` when the collection did not read that kind, either because the
/// playbook never requested it or because the call failed. Failed calls are listed in
/// `unavailable`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectedEvidence {
    /// The format version, [`FORMAT_VERSION`].
    pub keycheck_evidence: u32,
    /// The access key the evidence was collected for.
    pub key_id: AccessKeyId,
    /// When the collection finished.
    pub collected_at: DateTime<Utc>,
    /// The CloudTrail read, without the events, which are in the CloudTrail file.
    #[serde(default)]
    pub cloudtrail: Option<CloudTrailRead>,
    /// Step 0's result: the account that owns the key.
    #[serde(default)]
    pub account: Option<AccountInfo>,
    /// The key's IAM record. `None` with no `access_key` entry in `unavailable` means IAM
    /// has no such key, or that the key is temporary and has no IAM record to read.
    #[serde(default)]
    pub access_key: Option<KeyRecord>,
    /// The IAM users read, such as the key's owner.
    #[serde(default)]
    pub users: Vec<UserRecord>,
    /// Names of users requested but not found in IAM.
    #[serde(default)]
    pub users_not_found: Vec<String>,
    /// The IAM credential report.
    #[serde(default)]
    pub credential_report: Option<Vec<CredentialReportRow>>,
    /// Security Hub findings that name the key or its owner.
    #[serde(default)]
    pub security_hub: Option<Vec<SecurityFinding>>,
    /// GuardDuty findings that name the key or its owner.
    #[serde(default)]
    pub guardduty: Option<Vec<SecurityFinding>>,
    /// AWS Health events that name the key or its owner.
    #[serde(default)]
    pub health: Option<Vec<HealthEvent>>,
    /// Active IAM Access Analyzer findings of the account.
    #[serde(default)]
    pub access_analyzer: Option<Vec<AnalyzerFinding>>,
    /// Places that store the key.
    #[serde(default)]
    pub key_locations: Option<Vec<KeyLocation>>,
    /// The error text of each kind whose call failed during the collection.
    #[serde(default)]
    pub unavailable: BTreeMap<EvidenceKind, String>,
    /// For each kind read by a search over several sources (regions, services, request
    /// filters), the errors of the sources that failed while others responded. An offline
    /// re-run reports them as the live run did, because the records of those sources are
    /// missing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partial_failures: BTreeMap<EvidenceKind, Vec<EvidenceError>>,
}

impl CollectedEvidence {
    /// Creates an empty record of a collection for `key_id`.
    pub fn new(key_id: AccessKeyId, collected_at: DateTime<Utc>) -> CollectedEvidence {
        CollectedEvidence {
            keycheck_evidence: FORMAT_VERSION,
            key_id,
            collected_at,
            cloudtrail: None,
            account: None,
            access_key: None,
            users: Vec::new(),
            users_not_found: Vec::new(),
            credential_report: None,
            security_hub: None,
            guardduty: None,
            health: None,
            access_analyzer: None,
            key_locations: None,
            unavailable: BTreeMap::new(),
            partial_failures: BTreeMap::new(),
        }
    }

    /// Returns the errors of the sources of `kind` that failed while others responded.
    pub fn partial_failures_of(&self, kind: EvidenceKind) -> Vec<EvidenceError> {
        self.partial_failures.get(&kind).cloned().unwrap_or_default()
    }

    /// Counts the records held, for the snapshot inventory.
    pub fn record_count(&self) -> usize {
        let lists = [
            self.credential_report.as_ref().map_or(0, Vec::len),
            self.security_hub.as_ref().map_or(0, Vec::len),
            self.guardduty.as_ref().map_or(0, Vec::len),
            self.health.as_ref().map_or(0, Vec::len),
            self.access_analyzer.as_ref().map_or(0, Vec::len),
            self.key_locations.as_ref().map_or(0, Vec::len),
        ];
        usize::from(self.account.is_some())
            + usize::from(self.access_key.is_some())
            + self.users.len()
            + lists.iter().sum::<usize>()
    }

    /// Returns the error an offline re-run reports for a kind that failed during the
    /// collection, with the original error text, or `None` when the kind did not fail.
    ///
    /// The original error goes into `what`, because some steps show only `what` of a
    /// `NotAvailable` error.
    pub fn failure(&self, kind: EvidenceKind) -> Option<EvidenceError> {
        let reason = self.unavailable.get(&kind)?;
        Some(EvidenceError::NotAvailable {
            what: format!(
                "{} (keycheck snapshot collect at {}: {reason})",
                kind.label(),
                self.collected_at.format("%Y-%m-%d %H:%M UTC")
            ),
            hint: "the snapshot holds the collection's error instead of the data".to_string(),
        })
    }

    /// Looks up a request about `key` for a kind that depends on the key. Returns the
    /// failure, the value `read` returns, or `None` when the file was collected for
    /// another key or contains nothing of that kind.
    pub(super) fn lookup_for_key<T>(
        &self,
        key: &AccessKeyId,
        kind: EvidenceKind,
        read: impl FnOnce(&CollectedEvidence) -> Option<T>,
    ) -> Option<Result<T, EvidenceError>> {
        if &self.key_id != key {
            return None;
        }
        self.lookup(kind, read)
    }

    /// Looks up a kind. Returns the failure, the value `read` returns, or `None` when the
    /// file contains nothing of that kind.
    pub(super) fn lookup<T>(
        &self,
        kind: EvidenceKind,
        read: impl FnOnce(&CollectedEvidence) -> Option<T>,
    ) -> Option<Result<T, EvidenceError>> {
        if let Some(error) = self.failure(kind) {
            return Some(Err(error));
        }
        read(self).map(Ok)
    }

    /// Looks up a user. Returns the record, `Ok(None)` for a user the collection found
    /// missing, the failure, or `None` when the file does not mention the user.
    pub(super) fn user(&self, user_name: &str) -> Option<Result<Option<UserRecord>, EvidenceError>> {
        if let Some(user) = self.users.iter().find(|u| u.user_name == user_name) {
            return Some(Ok(Some(user.clone())));
        }
        if self.users_not_found.iter().any(|name| name == user_name) {
            return Some(Ok(None));
        }
        self.failure(EvidenceKind::Users).map(Err)
    }
}

/// Returns true when a file's first bytes, after leading whitespace, open the object of
/// this file. The check keeps the file from being taken for CloudTrail when a record
/// (a policy document, a tag) happens to contain `eventVersion`.
pub(super) fn is_collected_head(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(b"{") else {
        return false;
    };
    let rest = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    rest.starts_with(format!("\"{FORMAT_FIELD}\"").as_bytes())
}

/// Parses one JSON document of this kind, checking its format version first.
pub(super) fn parse(document: &Value) -> Result<CollectedEvidence, String> {
    let version = document.get(FORMAT_FIELD).and_then(Value::as_u64);
    if version != Some(u64::from(FORMAT_VERSION)) {
        let found = document
            .get(FORMAT_FIELD)
            .map_or_else(|| "none".to_string(), Value::to_string);
        return Err(format!(
            "keycheck evidence file of format version {found}, but this build reads version {FORMAT_VERSION}"
        ));
    }
    serde_json::from_value(document.clone())
        .map_err(|error| format!("invalid keycheck evidence file: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn head_recognised_after_whitespace() {
        assert!(is_collected_head(b"{\"keycheck_evidence\": 1, \"key_id\""));
        assert!(is_collected_head(b"{\n  \"keycheck_evidence\": 1"));
        assert!(!is_collected_head(b"{\"Records\": [{\"keycheck_evidence\": 1"));
        assert!(!is_collected_head(b"[{\"keycheck_evidence\": 1}]"));
    }

    #[test]
    fn other_version_rejected_with_both_numbers() {
        let error = parse(&json!({"keycheck_evidence": 2, "key_id": "AKIAQWERTYUIOPASDFGH"})).unwrap_err();
        assert!(error.contains("version 2"), "{error}");
        assert!(error.contains("reads version 1"), "{error}");
    }

    #[test]
    fn failure_keeps_original_reason() {
        let key: AccessKeyId = "AKIAQWERTYUIOPASDFGH".parse().unwrap();
        let collected_at = "2026-05-01T12:00:00Z".parse().unwrap();
        let mut collected = CollectedEvidence::new(key, collected_at);
        collected.unavailable.insert(
            EvidenceKind::Guardduty,
            "guardduty:ListDetectors failed for us-east-1: access denied (needs guardduty:ListDetectors)".into(),
        );

        let Some(EvidenceError::NotAvailable { what, .. }) = collected.failure(EvidenceKind::Guardduty) else {
            panic!("a failed kind is not available");
        };
        assert_eq!(
            what,
            "GuardDuty (keycheck snapshot collect at 2026-05-01 12:00 UTC: guardduty:ListDetectors failed for us-east-1: access denied (needs guardduty:ListDetectors))"
        );
        assert!(collected.failure(EvidenceKind::SecurityHub).is_none());
    }

    #[test]
    fn kind_names_match_serde() {
        for kind in EvidenceKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.name()));
        }
    }
}
