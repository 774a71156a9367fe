//! The inventory of a snapshot: files and records per kind, CloudTrail volume, and every
//! file it ignored with the reason, so that a responder can see what the investigation
//! could and could not read.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The kinds of evidence file a snapshot recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// keycheck's own `metadata.json`.
    Metadata,
    /// CloudTrail events in any shape the CloudTrail reader reads.
    CloudTrail,
    /// `aws iam get-account-authorization-details` output.
    AuthorizationDetails,
    /// The IAM credential report, as `get-credential-report` output or CSV.
    CredentialReport,
    /// `aws iam list-access-keys` output.
    AccessKeys,
    /// `aws iam get-access-key-last-used` output.
    AccessKeyLastUsed,
    /// `aws iam list-mfa-devices` output.
    MfaDevices,
    /// `aws iam get-login-profile` output.
    LoginProfile,
    /// GuardDuty findings.
    GuardDuty,
    /// Security Hub findings (ASFF).
    SecurityHub,
    /// AWS Health events.
    Health,
    /// IAM Access Analyzer findings.
    AccessAnalyzer,
    /// Secrets, parameters and workload configurations that may store the key.
    Storage,
    /// `keycheck-evidence.json`, written by `keycheck snapshot collect`.
    CollectedEvidence,
}

impl FileKind {
    /// Returns the kind as shown to responders.
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Metadata => "snapshot metadata",
            FileKind::CloudTrail => "CloudTrail",
            FileKind::AuthorizationDetails => "IAM authorization details",
            FileKind::CredentialReport => "IAM credential report",
            FileKind::AccessKeys => "IAM access key lists",
            FileKind::AccessKeyLastUsed => "IAM access key last use",
            FileKind::MfaDevices => "IAM MFA device lists",
            FileKind::LoginProfile => "IAM login profiles",
            FileKind::GuardDuty => "GuardDuty findings",
            FileKind::SecurityHub => "Security Hub findings",
            FileKind::Health => "AWS Health events",
            FileKind::AccessAnalyzer => "IAM Access Analyzer findings",
            FileKind::Storage => "key storage listings",
            FileKind::CollectedEvidence => "evidence collected by keycheck",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A file the snapshot did not read, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IgnoredFile {
    /// The file's path inside the snapshot.
    pub path: String,
    /// The reason it was ignored, such as `invalid JSON at line 3 column 7`.
    pub reason: String,
}

/// Summary of the files a snapshot recognised when it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// Files recognised, per kind. A file that mixes kinds (JSON lines of EventBridge
    /// events, say) counts once for each kind it holds.
    pub files: BTreeMap<FileKind, usize>,
    /// Records read, per kind: users, groups, roles and policies of the authorization
    /// details, report rows, keys, devices, findings, events and stored items. CloudTrail
    /// files are not parsed when the snapshot opens, so CloudTrail has no record count.
    pub records: BTreeMap<FileKind, usize>,
    /// Files not read, with the reason, in path order.
    pub ignored: Vec<IgnoredFile>,
    /// How many CloudTrail files the snapshot holds.
    pub cloudtrail_files: usize,
    /// Their size in bytes as stored (compressed for `.gz` files).
    pub cloudtrail_bytes: u64,
}

impl Inventory {
    /// Returns how many files of a kind were recognised.
    pub fn files_of(&self, kind: FileKind) -> usize {
        self.files.get(&kind).copied().unwrap_or(0)
    }

    /// Returns how many records of a kind were read.
    pub fn records_of(&self, kind: FileKind) -> usize {
        self.records.get(&kind).copied().unwrap_or(0)
    }

    /// Returns true when a file of the kind was recognised, even one with no records.
    pub fn has(&self, kind: FileKind) -> bool {
        self.files_of(kind) > 0
    }

    /// Describes the CloudTrail files in a few words, such as `12 CloudTrail files, 3.4 MB`.
    pub fn cloudtrail_summary(&self) -> String {
        let files = count(self.cloudtrail_files, "CloudTrail file");
        format!("{files}, {}", format_size(self.cloudtrail_bytes))
    }

    /// Describes the whole inventory in one line, for the command line and logs.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.cloudtrail_files > 0 {
            parts.push(self.cloudtrail_summary());
        }
        for (kind, files) in &self.files {
            if *kind == FileKind::CloudTrail {
                continue;
            }
            let records = self.records_of(*kind);
            parts.push(match kind {
                FileKind::Metadata => kind.label().to_string(),
                _ => format!(
                    "{} ({}, {})",
                    kind.label(),
                    count(*files, "file"),
                    count(records, "record")
                ),
            });
        }
        if parts.is_empty() {
            parts.push("no recognised evidence".to_string());
        }
        if !self.ignored.is_empty() {
            parts.push(format!("{} ignored", count(self.ignored.len(), "file")));
        }
        parts.join("; ")
    }

    pub(super) fn add(&mut self, kind: FileKind, records: usize) {
        *self.files.entry(kind).or_default() += 1;
        *self.records.entry(kind).or_default() += records;
    }

    pub(super) fn ignore(&mut self, path: &str, reason: impl Into<String>) {
        self.ignored.push(IgnoredFile {
            path: path.to_string(),
            reason: reason.into(),
        });
    }
}

/// Writes a count with its noun, adding an `s` unless the count is one: `1 file`, `3 files`.
fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Formats a byte count in decimal units: `512 bytes`, `14.2 KB`, `3.4 MB`, `1.2 GB`.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    for (unit, size) in UNITS {
        if bytes as f64 >= size {
            return format!("{:.1} {unit}", bytes as f64 / size);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_size_units() {
        assert_eq!(format_size(512), "512 bytes");
        assert_eq!(format_size(14_200), "14.2 KB");
        assert_eq!(format_size(3_400_000), "3.4 MB");
        assert_eq!(format_size(1_250_000_000), "1.2 GB");
    }

    #[test]
    fn summary_lists_kinds_and_ignored() {
        let mut inventory = Inventory::default();
        inventory.add(FileKind::CloudTrail, 0);
        inventory.cloudtrail_files = 1;
        inventory.cloudtrail_bytes = 2_000;
        inventory.add(FileKind::GuardDuty, 3);
        inventory.ignore("notes.txt", "not a recognised export");
        assert_eq!(
            inventory.summary(),
            "1 CloudTrail file, 2.0 KB; GuardDuty findings (1 file, 3 records); 1 file ignored"
        );
    }
}
