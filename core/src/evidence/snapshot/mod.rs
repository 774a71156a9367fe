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
//! keycheck-evidence.json               keycheck's own, written by `keycheck snapshot collect`:
//!                                      the records it read live and the errors of the calls
//!                                      that failed (see `collected`)
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
pub mod collected;
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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::events::{self, EventQuery, EventSet};
use super::{
    AccountInfo, AccountSource, AnalyzerFinding, CredentialReportRow, Evidence, EvidenceError,
    HealthEvent, KeyLocationSearch, KeyRecord, Search, SecurityFinding, Subject, UserRecord, Window,
};
use crate::key::{AccessKeyId, AccountDecoding};

use collected::{CollectedEvidence, EvidenceKind};
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

    /// Returns the ignored files whose extension marks them as evidence, which could not
    /// be read. Other ignored files, such as notes, are not evidence.
    fn unread_evidence_files(&self) -> impl Iterator<Item = &IgnoredFile> {
        self.inventory
            .ignored
            .iter()
            .filter(|file| source::has_read_extension(&file.path))
    }

    /// Returns the snapshot's `metadata.json`, when it has one.
    pub fn metadata(&self) -> Option<&SnapshotMetadata> {
        self.contents.metadata.as_ref()
    }

    /// Returns `keycheck-evidence.json`, when the snapshot has one.
    pub fn collected(&self) -> Option<&CollectedEvidence> {
        self.contents.collected.as_ref()
    }

    /// Returns what `keycheck-evidence.json` contains for a request about `key`, or
    /// `None` when there is no such file, it was collected for another key, or it
    /// contains nothing of that kind. A kind that failed during the collection gives way to
    /// exports of that kind added to the folder since.
    fn collected_for_key<T>(
        &self,
        key: &AccessKeyId,
        kind: EvidenceKind,
        read: impl FnOnce(&CollectedEvidence) -> Option<T>,
    ) -> Option<Result<T, EvidenceError>> {
        let answer = self.contents.collected.as_ref()?.lookup_for_key(key, kind, read)?;
        if answer.is_err() && self.has_exports(kind) {
            return None;
        }
        Some(answer)
    }

    /// Returns the records `keycheck-evidence.json` contains for a search about `key`,
    /// together with the sources the collection could not search. The rules of
    /// `collected_for_key` apply.
    fn collected_search<T>(
        &self,
        key: &AccessKeyId,
        kind: EvidenceKind,
        read: impl FnOnce(&CollectedEvidence) -> Option<Vec<T>>,
    ) -> Option<Result<Search<T>, EvidenceError>> {
        let answer = self.collected_for_key(key, kind, read)?;
        let failures = self.contents.collected.as_ref()?.partial_failures_of(kind);
        Some(answer.map(|found| Search { found, failures }))
    }

    /// Returns what `keycheck-evidence.json` contains for a kind that belongs to the
    /// account rather than the key, with the same rules as `collected_for_key`.
    fn collected_for_account<T>(
        &self,
        kind: EvidenceKind,
        lookup: impl FnOnce(&CollectedEvidence) -> Option<Result<T, EvidenceError>>,
    ) -> Option<Result<T, EvidenceError>> {
        let answer = lookup(self.contents.collected.as_ref()?)?;
        if answer.is_err() && self.has_exports(kind) {
            return None;
        }
        Some(answer)
    }

    /// Returns how many CloudTrail records the collection of `key` could not parse, which
    /// are not in the snapshot's files.
    fn collected_skipped_records(&self, key: &AccessKeyId) -> usize {
        let collected = self.contents.collected.as_ref().filter(|c| &c.key_id == key);
        collected
            .and_then(|c| c.cloudtrail.as_ref())
            .map_or(0, |read| read.skipped_records)
    }

    /// Returns the errors of the parts of the event store that the collection of `key`
    /// could not read. The snapshot lacks their events too.
    fn collected_trail_failures(&self, key: &AccessKeyId) -> Vec<EvidenceError> {
        let collected = self.contents.collected.as_ref().filter(|c| &c.key_id == key);
        collected.map_or_else(Vec::new, |c| c.partial_failures_of(EvidenceKind::Cloudtrail))
    }

    /// Returns true when files other than `keycheck-evidence.json` hold evidence of `kind`.
    fn has_exports(&self, kind: EvidenceKind) -> bool {
        let contents = &self.contents;
        match kind {
            EvidenceKind::Account => false,
            EvidenceKind::AccessKey => contents.iam.has_key_records(),
            EvidenceKind::Users => contents.iam.has_any(),
            EvidenceKind::CredentialReport => contents.iam.credential_report().is_some(),
            EvidenceKind::Cloudtrail => !self.trail.is_empty(),
            EvidenceKind::SecurityHub => contents.security_hub.is_some(),
            EvidenceKind::Guardduty => contents.guardduty.is_some(),
            EvidenceKind::Health => contents.health.is_some(),
            EvidenceKind::AccessAnalyzer => contents.access_analyzer.is_some(),
            EvidenceKind::KeyLocations => contents.storage.is_some(),
        }
    }

    /// Returns `query` with its window ending where the collection's window ended, when
    /// `keycheck-evidence.json` was collected for the key and the query leaves the window
    /// open, because the live investigation ended its window there. Returns the
    /// collection's failure when it could not read CloudTrail and no CloudTrail file was
    /// added since.
    fn query_in_collected_window(&self, query: &EventQuery) -> Result<EventQuery, EvidenceError> {
        let collected = self.collected_for_key(&query.key, EvidenceKind::Cloudtrail, |c| {
            c.cloudtrail.as_ref().map(|read| read.window)
        });
        match collected {
            Some(Err(error)) => Err(error),
            Some(Ok(window)) if query.window.is_none() => Ok(EventQuery {
                window: Some(Window::ending_at(window.end, query.window_length)),
                ..query.clone()
            }),
            _ => Ok(query.clone()),
        }
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
        if let Some(answer) = self.collected_for_key(key, EvidenceKind::Account, |c| c.account.clone()) {
            return answer;
        }
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
        let collected = self.collected_for_key(key, EvidenceKind::AccessKey, |c| Some(c.access_key.clone()));
        if let Some(answer) = collected {
            return answer;
        }
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
        if let Some(answer) = self.collected_for_account(EvidenceKind::Users, |c| c.user(user_name)) {
            return answer;
        }
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
        let collected = self.collected_for_account(EvidenceKind::CredentialReport, |c| {
            c.lookup(EvidenceKind::CredentialReport, |c| c.credential_report.clone())
        });
        if let Some(answer) = collected {
            return answer;
        }
        self.contents.iam.credential_report().ok_or_else(|| {
            not_in_snapshot(
                "IAM credential report",
                "aws iam get-credential-report output",
                "iam/credential-report.json",
            )
        })
    }

    async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError> {
        let query = &self.query_in_collected_window(query)?;
        if self.trail.is_empty() {
            let unread: Vec<&IgnoredFile> = self.unread_evidence_files().collect();
            if let Some(first) = unread.first() {
                // The folder has files, but none could be read as CloudTrail. The error
                // names them, because a request to add CloudTrail files would mislead.
                return Err(EvidenceError::NotAvailable {
                    what: "CloudTrail".to_string(),
                    hint: format!(
                        "none of the {} files that could hold it was readable, for example {}: {}",
                        unread.len(),
                        first.path,
                        first.reason
                    ),
                });
            }
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
        // Files read in part or not at all, by label: every scan reads the same files.
        let mut problems: BTreeMap<String, String> = BTreeMap::new();
        let mut scans = 0u32;
        loop {
            let outcome = trail::scan(&self.trail, needles).await;
            scans += 1;
            skipped_records += outcome.skipped_records;
            problems.extend(outcome.problems);
            for (label, reason) in outcome.partly_read {
                problems.entry(label).or_insert(reason);
            }
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
        set.skipped_records = skipped_records + self.collected_skipped_records(&query.key);
        set.failures = self.collected_trail_failures(&query.key);
        set.scans = scans;
        set.source = match problems.len() {
            0 => self.inventory.cloudtrail_summary(),
            n => format!("{} ({n} not fully readable)", self.inventory.cloudtrail_summary()),
        };
        // A file that could not be read at all may have held the key's calls, so the
        // report names it, as it names the files read in part.
        let ignored = self
            .unread_evidence_files()
            .map(|file| (file.path.clone(), file.reason.clone()));
        set.failures.extend(
            ignored
                .chain(problems)
                .map(|(path, reason)| EvidenceError::File { path, reason }),
        );
        Ok(set)
    }

    async fn security_hub_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        let collected = self.collected_search(&subject.key, EvidenceKind::SecurityHub, |c| c.security_hub.clone());
        if let Some(answer) = collected {
            return answer;
        }
        let Some(findings) = &self.contents.security_hub else {
            return Err(not_in_snapshot(
                "Security Hub export",
                "aws securityhub get-findings output",
                "securityhub/*.json",
            ));
        };
        Ok(Search::complete(findings_naming(findings, subject)))
    }

    async fn guardduty_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        let collected = self.collected_search(&subject.key, EvidenceKind::Guardduty, |c| c.guardduty.clone());
        if let Some(answer) = collected {
            return answer;
        }
        let Some(findings) = &self.contents.guardduty else {
            return Err(not_in_snapshot(
                "GuardDuty export",
                "aws guardduty get-findings output",
                "guardduty/*.json",
            ));
        };
        Ok(Search::complete(findings_naming(findings, subject)))
    }

    async fn health_events(&self, subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError> {
        let collected = self.collected_for_key(&subject.key, EvidenceKind::Health, |c| c.health.clone());
        if let Some(answer) = collected {
            return answer;
        }
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

    async fn access_analyzer_findings(&self, subject: &Subject) -> Result<Search<AnalyzerFinding>, EvidenceError> {
        let collected =
            self.collected_search(&subject.key, EvidenceKind::AccessAnalyzer, |c| c.access_analyzer.clone());
        if let Some(answer) = collected {
            return answer;
        }
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
        Ok(Search::complete(active.map(|(_, finding)| finding.clone()).collect()))
    }

    async fn key_locations(&self, subject: &Subject) -> Result<KeyLocationSearch, EvidenceError> {
        let collected = self.collected_search(&subject.key, EvidenceKind::KeyLocations, |c| c.key_locations.clone());
        if let Some(answer) = collected {
            return answer;
        }
        let Some(items) = &self.contents.storage else {
            return Err(not_in_snapshot(
                "key storage export",
                "aws secretsmanager list-secrets, ssm describe-parameters or lambda list-functions output",
                "storage/*.json",
            ));
        };
        Ok(Search::complete(
            items.iter().filter_map(|item| item.location(subject)).collect(),
        ))
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
