//! The offline evidence source: a folder of exported evidence (or the same files held in
//! memory, as the built-in demonstration incident is) read through the `Evidence` trait.
//!
//! Files are recognised by their content, anywhere under the folder and at any depth.
//! Only names ending `.json`, `.json.gz`, `.gz`, `.jsonl`, `.log`, `.csv` or `.txt` are
//! read; gzip is recognised by its magic bytes. The folder names below are the
//! recommended layout, not a requirement: a bare folder of CloudTrail files works.
//!
//! ```text
//! metadata.json                        optional, keycheck's own: {"account_id", "collected_at",
//!                                      "key_id", "window_start", "window_end", "source"}
//! cloudtrail/**                        CloudTrail: S3 log files ({"Records": […]}, gzip or not),
//!                                      JSON arrays, JSON lines, CloudWatch Logs exports,
//!                                      `aws cloudtrail lookup-events` output, EventBridge events
//! iam/authorization-details.json       aws iam get-account-authorization-details; policy documents
//!                                      as JSON objects, or URL-encoded strings as the API returns them
//! iam/credential-report.json           aws iam get-credential-report ({"Content": base64 CSV}),
//!   or iam/credential-report.csv       or the decoded CSV (header starts "user,arn,user_creation_time")
//! iam/access-keys/<user>.json          aws iam list-access-keys
//! iam/access-key-last-used/<key>.json  aws iam get-access-key-last-used; the output does not name
//!                                      the key, so add an "AccessKeyId" field or name the file after it
//! iam/mfa-devices/<user>.json          aws iam list-mfa-devices; an empty list names no user, so
//!                                      the file name says whose it is
//! iam/login-profiles/<user>.json       aws iam get-login-profile
//! guardduty/*.json                     aws guardduty get-findings, a single finding, or EventBridge
//!                                      "GuardDuty Finding" events (one, an array, or JSON lines)
//! securityhub/*.json                   aws securityhub get-findings (ASFF), or EventBridge
//!                                      "Security Hub Findings - Imported" events
//! health/*.json                        aws health describe-events, describe-event-details,
//!                                      describe-affected-entities, or EventBridge "AWS Health Event"
//! access-analyzer/*.json               aws accessanalyzer list-findings or list-findings-v2
//! storage/*.json                       where the key may be stored: aws secretsmanager list-secrets,
//!                                      aws ssm describe-parameters, aws lambda list-functions,
//!                                      aws codebuild batch-get-projects,
//!                                      aws ecs describe-task-definition
//! ```
//!
//! An empty list of findings or events does not say which service wrote it, so there the
//! folder name (`guardduty`, `securityhub`, `health`, `access-analyzer`) decides. Botocore
//! placebo recordings (`{"status_code": …, "data": {…}}`) are read as their `data`.
//!
//! A file that cannot be read or is not recognised is listed in the `Inventory` with the
//! reason, and it never stops the snapshot from opening. A kind of evidence with no file
//! at all is `EvidenceError::NotAvailable`, so a step reports "not in the snapshot" rather
//! than "none found".
//!
//! CloudTrail files are recognised when the snapshot opens but read only when the events
//! are fetched, by scanning for the records that contain the key ID or the owner's ARN.
//! Every other file is parsed once when the snapshot opens.

mod classify;
pub mod finding;
pub(crate) mod iam;
mod inventory;
mod json;
mod load;
mod source;
pub(crate) mod storage;
mod trail;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::events::{self, EventQuery, EventSet};
use super::{
    AccountInfo, AccountSource, AnalyzerFinding, CredentialReportRow, Evidence, EvidenceError,
    HealthEvent, KeyLocation, KeyRecord, SecurityFinding, Subject, UserRecord,
};
use crate::key::{AccessKeyId, AccountDecoding};

pub use inventory::{FileKind, IgnoredFile, Inventory};
use load::Contents;
use source::{Origin, SourceFile};

/// keycheck's own `metadata.json`, written by the tool or person that collected the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotMetadata {
    /// The account the evidence was collected from.
    pub account_id: Option<String>,
    /// When the evidence was collected; the investigated window ends here when the key
    /// has no recorded call.
    pub collected_at: Option<DateTime<Utc>>,
    /// The access key the snapshot was collected for.
    pub key_id: Option<String>,
    /// Start of the period the export covers.
    pub window_start: Option<DateTime<Utc>>,
    /// End of the period the export covers.
    pub window_end: Option<DateTime<Utc>>,
    /// Free-text name of the collector, such as a tool or a person.
    pub source: Option<String>,
}

/// Exported evidence read from a folder or from memory. Implements `Evidence`.
#[derive(Debug)]
pub struct Snapshot {
    label: String,
    contents: Contents,
    trail: Arc<[SourceFile]>,
    inventory: Inventory,
}

impl Snapshot {
    /// Opens the snapshot in `dir`: walks it and recognises every file. Blocks while it
    /// reads the IAM, finding and storage files whole and the first kilobytes of every
    /// CloudTrail file.
    ///
    /// Fails only when `dir` is not a readable folder. Unreadable and unrecognised files
    /// are listed in `inventory().ignored`.
    pub fn open(dir: &Path) -> Result<Snapshot, EvidenceError> {
        let path_text = dir.display().to_string();
        let metadata = std::fs::metadata(dir).map_err(|error| EvidenceError::File {
            path: path_text.clone(),
            reason: match error.kind() {
                std::io::ErrorKind::NotFound => {
                    "no such folder (pass the folder that holds the exported evidence)".to_string()
                }
                _ => error.to_string(),
            },
        })?;
        if !metadata.is_dir() {
            return Err(EvidenceError::File {
                path: path_text,
                reason: "not a folder (pass the folder that holds the exported evidence)".into(),
            });
        }

        let mut inventory = Inventory::default();
        let files = source::walk(dir, &mut inventory);
        Ok(Snapshot::build(path_text, files, inventory))
    }

    /// Builds a snapshot from files held in memory, each a path inside the snapshot (such
    /// as `iam/mfa-devices/alice.json`) with its bytes, recognised as `open` recognises
    /// files on disk. Names with an extension the snapshot does not read are listed as
    /// ignored. It does not fail today, and returns a `Result` to match `open`.
    pub fn from_files(
        label: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<Snapshot, EvidenceError> {
        let mut inventory = Inventory::default();
        let mut sources: Vec<SourceFile> = Vec::new();
        for (name, bytes) in files {
            if !source::has_read_extension(&name) {
                inventory.ignore(&name, "not a .json, .jsonl, .gz, .log, .csv or .txt file");
                continue;
            }
            sources.push(SourceFile {
                label: name,
                size: bytes.len() as u64,
                origin: Origin::Memory(Arc::from(bytes)),
            });
        }
        sources.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(Snapshot::build(label.to_string(), sources, inventory))
    }

    fn build(label: String, files: Vec<SourceFile>, mut inventory: Inventory) -> Snapshot {
        let mut contents = load::load(files, &mut inventory);
        inventory.ignored.sort_by(|a, b| a.path.cmp(&b.path));
        let trail: Arc<[SourceFile]> = std::mem::take(&mut contents.trail).into();
        tracing::info!(snapshot = %label, inventory = %inventory.summary(), "snapshot opened");
        Snapshot {
            label,
            contents,
            trail,
            inventory,
        }
    }

    /// Returns what the snapshot recognised: files and records per kind, CloudTrail
    /// volume, and the files it ignored with the reason.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Returns the snapshot's `metadata.json`, when it has one.
    pub fn metadata(&self) -> Option<&SnapshotMetadata> {
        self.contents.metadata.as_ref()
    }

    /// Scans the CloudTrail files for the key and returns the account its calls name.
    async fn account_from_events(&self, key: &AccessKeyId) -> Option<String> {
        let outcome = trail::scan(&self.trail, vec![key.as_str().as_bytes().to_vec()]).await;
        outcome
            .events
            .iter()
            .filter(|e| e.access_key_id() == Some(key.as_str()))
            .find_map(|e| {
                e.user_identity
                    .account_id
                    .clone()
                    .or_else(|| e.recipient_account_id.clone())
            })
    }

    /// Returns the end of the window when the key has no recorded call: the metadata's
    /// `collected_at`, else its `window_end`, else the newest event read, else now.
    fn default_end(&self, events: &[crate::cloudtrail::Event]) -> DateTime<Utc> {
        let metadata = self.contents.metadata.as_ref();
        metadata
            .and_then(|m| m.collected_at.or(m.window_end))
            .or_else(|| events.iter().map(|e| e.event_time).max())
            .unwrap_or_else(Utc::now)
    }
}

/// Builds the error for a kind of evidence the snapshot has no file of, with the export
/// that would provide it.
fn not_in_snapshot(what: &str, export: &str, folder: &str) -> EvidenceError {
    EvidenceError::NotAvailable {
        what: what.to_string(),
        hint: format!("add {export} to the snapshot as {folder}"),
    }
}

#[async_trait]
impl Evidence for Snapshot {
    fn describe(&self) -> String {
        format!("snapshot {}", self.label)
    }

    async fn resolve_account(&self, key: &AccessKeyId) -> Result<AccountInfo, EvidenceError> {
        let decoded = match key.decode_account() {
            AccountDecoding::Decoded { account_id } => Some(account_id),
            AccountDecoding::NotBase32 => None,
        };

        let metadata_account = self
            .contents
            .metadata
            .as_ref()
            .and_then(|m| m.account_id.clone());
        let (account_id, source, from) = if let Some(account) = metadata_account {
            (Some(account), AccountSource::Snapshot, "metadata")
        } else if let Some(account) = self.contents.iam.account_of_key(key.as_str()) {
            (Some(account), AccountSource::Snapshot, "IAM records")
        } else if let Some(account) = self.account_from_events(key).await {
            (Some(account), AccountSource::Snapshot, "CloudTrail events")
        } else if let Some(account) = decoded.clone() {
            (Some(account), AccountSource::KeyDecoding, "key ID")
        } else {
            (None, AccountSource::Unknown, "")
        };

        let note = match (&account_id, &decoded) {
            (Some(account), Some(decoded))
                if account != decoded && source == AccountSource::Snapshot =>
            {
                Some(format!(
                    "account {account} (from the snapshot's {from}) differs from account {decoded}, which the key ID decodes to"
                ))
            }
            _ => None,
        };
        Ok(AccountInfo {
            account_id,
            source,
            decoded_account_id: decoded,
            credentials_available: true,
            access: Some("snapshot".to_string()),
            note,
        })
    }

    async fn access_key(&self, key: &AccessKeyId) -> Result<Option<KeyRecord>, EvidenceError> {
        let iam = &self.contents.iam;
        if !iam.has_key_records() {
            return Err(not_in_snapshot(
                "IAM access key list",
                "aws iam list-access-keys output",
                "iam/access-keys/<user>.json",
            ));
        }
        // NOTE: when the snapshot lists the keys of some users only, a key of another user
        // is reported as missing, because the lists cannot tell the two cases apart.
        Ok(iam.key_record(key.as_str()))
    }

    async fn user(&self, user_name: &str) -> Result<Option<UserRecord>, EvidenceError> {
        let iam = &self.contents.iam;
        if !iam.has_any() {
            return Err(not_in_snapshot(
                "IAM data",
                "aws iam get-account-authorization-details output",
                "iam/authorization-details.json",
            ));
        }
        Ok(iam.user_record(user_name))
    }

    async fn credential_report(&self) -> Result<Vec<CredentialReportRow>, EvidenceError> {
        self.contents.iam.credential_report().ok_or_else(|| {
            not_in_snapshot(
                "IAM credential report",
                "aws iam get-credential-report output",
                "iam/credential-report.json",
            )
        })
    }

    async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError> {
        if self.trail.is_empty() {
            return Err(not_in_snapshot(
                "CloudTrail",
                "CloudTrail log files",
                "cloudtrail/*.json.gz",
            ));
        }
        let root = query.key.as_str();
        let mut needles = vec![root.as_bytes().to_vec()];
        if let Some(arn) = &query.owner_arn {
            needles.push(arn.as_bytes().to_vec());
        }

        let mut scanned_keys: BTreeSet<String> = BTreeSet::from([root.to_string()]);
        let mut events = Vec::new();
        let mut skipped_records = 0;
        let mut problems = BTreeSet::new();
        let mut scans = 0u32;
        loop {
            let outcome = trail::scan(&self.trail, needles).await;
            scans += 1;
            skipped_records += outcome.skipped_records;
            problems.extend(outcome.problems.into_iter().map(|(label, _)| label));
            events.extend(outcome.events);

            // Each later scan looks for the calls of sessions minted in the rounds before.
            if scans as usize > events::MAX_MINTING_DEPTH {
                break;
            }
            let minted = events::minted_sessions(&events, root);
            let new_keys: Vec<String> = minted
                .into_iter()
                .map(|session| session.key_id)
                .filter(|key_id| scanned_keys.insert(key_id.clone()))
                .collect();
            if new_keys.is_empty() {
                break;
            }
            needles = new_keys.into_iter().map(String::into_bytes).collect();
        }

        let default_end = self.default_end(&events);
        let mut set = EventSet::build(query, events, default_end);
        set.skipped_records = skipped_records;
        set.scans = scans;
        set.source = match problems.len() {
            0 => self.inventory.cloudtrail_summary(),
            n => format!("{} ({n} not readable)", self.inventory.cloudtrail_summary()),
        };
        Ok(set)
    }

    async fn security_hub_findings(
        &self,
        subject: &Subject,
    ) -> Result<Vec<SecurityFinding>, EvidenceError> {
        let Some(findings) = &self.contents.security_hub else {
            return Err(not_in_snapshot(
                "Security Hub export",
                "aws securityhub get-findings output",
                "securityhub/*.json",
            ));
        };
        Ok(findings_naming(findings, subject))
    }

    async fn guardduty_findings(
        &self,
        subject: &Subject,
    ) -> Result<Vec<SecurityFinding>, EvidenceError> {
        let Some(findings) = &self.contents.guardduty else {
            return Err(not_in_snapshot(
                "GuardDuty export",
                "aws guardduty get-findings output",
                "guardduty/*.json",
            ));
        };
        Ok(findings_naming(findings, subject))
    }

    async fn health_events(&self, subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError> {
        let Some(events) = &self.contents.health else {
            return Err(not_in_snapshot(
                "AWS Health export",
                "aws health describe-events and describe-affected-entities output",
                "health/*.json",
            ));
        };
        let mut naming: Vec<HealthEvent> = events
            .iter()
            .filter(|e| finding::health_event_names(e, subject))
            .cloned()
            .collect();
        naming.sort_by_key(|e| e.start_time);
        Ok(naming)
    }

    async fn access_analyzer_findings(
        &self,
        subject: &Subject,
    ) -> Result<Vec<AnalyzerFinding>, EvidenceError> {
        let Some(findings) = &self.contents.access_analyzer else {
            return Err(not_in_snapshot(
                "IAM Access Analyzer export",
                "aws accessanalyzer list-findings output",
                "access-analyzer/*.json",
            ));
        };
        let account = subject.account_id.as_deref();
        let active = findings.iter().filter(|(owner, finding)| {
            let is_active =
                finding.status.is_empty() || finding.status.eq_ignore_ascii_case("ACTIVE");
            let same_account = match (owner.as_deref(), account) {
                (Some(owner), Some(account)) => owner == account,
                _ => true,
            };
            is_active && same_account
        });
        Ok(active.map(|(_, finding)| finding.clone()).collect())
    }

    async fn key_locations(&self, subject: &Subject) -> Result<Vec<KeyLocation>, EvidenceError> {
        let Some(items) = &self.contents.storage else {
            return Err(not_in_snapshot(
                "key storage export",
                "aws secretsmanager list-secrets, ssm describe-parameters or lambda list-functions output",
                "storage/*.json",
            ));
        };
        Ok(items
            .iter()
            .filter_map(|item| item.location(subject))
            .collect())
    }
}

/// Returns the findings that name the subject, oldest first.
fn findings_naming(findings: &[SecurityFinding], subject: &Subject) -> Vec<SecurityFinding> {
    let mut naming: Vec<SecurityFinding> = findings
        .iter()
        .filter(|f| f.names(subject))
        .cloned()
        .collect();
    naming.sort_by_key(|f| f.first_seen);
    naming
}
