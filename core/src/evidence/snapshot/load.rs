//! Recognising each file of a snapshot by its content and reading it into the records.
//!
//! CloudTrail files are recognised from their first few kilobytes and left on disk, since
//! a trail export may run to gigabytes and is read again at each scan. Every other file is
//! small enough to parse whole once: each JSON document in it (JSON lines and arrays hold
//! several) is classified by its fields and read into the snapshot's records.

use serde_json::Value;
use tracing::debug;

use super::SnapshotMetadata;
use super::classify::{Class, classify, is_cloudtrail_head, is_digest_head};
use super::collected::{self, CollectedEvidence, is_collected_head};
use super::finding::{
    merge_health, parse_access_analyzer, parse_asff, parse_guardduty, parse_health,
};
use super::iam::IamData;
use super::inventory::{FileKind, Inventory};
use super::json::{field, text, time_field};
use super::source::SourceFile;
use super::storage::{StoredItem, parse_storage};
use crate::cloudtrail::{self, Shape};
use crate::evidence::{AnalyzerFinding, HealthEvent, SecurityFinding};

/// Largest non-CloudTrail file parsed whole, decompressed. IAM authorization details of a
/// large account run to tens of megabytes.
const PARSE_LIMIT: u64 = 256 * 1024 * 1024;

/// Everything read from a snapshot's files. A kind's list is `None` when no file of that
/// kind exists, and empty when files exist but hold no records.
#[derive(Debug, Default)]
pub(super) struct Contents {
    pub metadata: Option<SnapshotMetadata>,
    /// `keycheck-evidence.json`, read before the AWS CLI exports of each kind.
    pub collected: Option<CollectedEvidence>,
    pub iam: IamData,
    pub guardduty: Option<Vec<SecurityFinding>>,
    pub security_hub: Option<Vec<SecurityFinding>>,
    pub health: Option<Vec<HealthEvent>>,
    pub access_analyzer: Option<Vec<(Option<String>, AnalyzerFinding)>>,
    pub storage: Option<Vec<StoredItem>>,
    pub trail: Vec<SourceFile>,
}

/// Recognises and reads every file, recording what it found in `inventory`.
pub(super) fn load(files: Vec<SourceFile>, inventory: &mut Inventory) -> Contents {
    let mut contents = Contents::default();
    for file in files {
        let outcome = recognise(&file);
        match outcome {
            Recognised::Trail => {
                inventory.add(FileKind::CloudTrail, 0);
                inventory.cloudtrail_files += 1;
                inventory.cloudtrail_bytes += file.size;
                contents.trail.push(file);
            }
            Recognised::ReportCsv(csv) => match contents.iam.add_credential_report_csv(&csv) {
                Ok(rows) => inventory.add(FileKind::CredentialReport, rows),
                Err(reason) => inventory.ignore(&file.label, reason),
            },
            Recognised::Documents(documents) => {
                contents.read_documents(&file, documents, inventory)
            }
            Recognised::Ignored(reason) => {
                debug!(file = %file.label, reason = %reason, "snapshot file ignored");
                inventory.ignore(&file.label, reason);
            }
        }
    }
    if let Some(health) = contents.health.take() {
        contents.health = Some(merge_health(health));
    }
    contents
}

/// Content a file turned out to hold.
enum Recognised {
    /// CloudTrail events, read at each scan.
    Trail,
    /// The credential report as CSV text.
    ReportCsv(String),
    /// JSON documents with at least one of a kind the snapshot reads, each with its kind.
    Documents(Vec<(FileKind, Value)>),
    Ignored(String),
}

fn recognise(file: &SourceFile) -> Recognised {
    let head = match file.head() {
        Ok(head) => head,
        Err(reason) => return Recognised::Ignored(reason),
    };
    let head = trim_start(&head);
    if head.is_empty() {
        return Recognised::Ignored("empty file".into());
    }
    if is_digest_head(head) {
        return Recognised::Ignored(DIGEST_REASON.into());
    }
    if is_cloudtrail_head(head) && !is_collected_head(head) {
        return Recognised::Trail;
    }

    let content = match file.read(PARSE_LIMIT) {
        Ok(content) => content,
        Err(reason) => return Recognised::Ignored(reason),
    };
    if head.starts_with(b"user,arn,") {
        return match String::from_utf8(content) {
            Ok(csv) => Recognised::ReportCsv(csv),
            Err(_) => Recognised::Ignored("credential report CSV is not UTF-8 text".into()),
        };
    }
    if file.label.to_ascii_lowercase().ends_with(".csv") {
        return Recognised::Ignored(
            "CSV file that is not an IAM credential report (whose header starts user,arn,)".into(),
        );
    }
    recognise_json(file, &content)
}

/// Reason given for CloudTrail digest files.
const DIGEST_REASON: &str = "CloudTrail digest file, which lists log files but holds no events";

fn recognise_json(file: &SourceFile, content: &[u8]) -> Recognised {
    let documents = match parse_documents(content) {
        Ok(documents) => documents,
        Err(reason) => return recognise_unparsed(content, reason),
    };

    let mut recognised = Vec::new();
    let mut has_trail = false;
    let mut has_digest = false;
    for document in documents {
        match classify(&document, &file.label) {
            Some(Class::Kind(FileKind::CloudTrail)) => has_trail = true,
            Some(Class::Kind(kind)) => recognised.push((kind, document)),
            Some(Class::Digest) => has_digest = true,
            None => {}
        }
    }
    if has_trail {
        return Recognised::Trail;
    }
    if !recognised.is_empty() {
        return Recognised::Documents(recognised);
    }
    if has_digest {
        return Recognised::Ignored(DIGEST_REASON.into());
    }
    recognise_unparsed(content, unrecognised_reason(content))
}

/// Gives the CloudTrail reader the last word on a file nothing else recognised, because it
/// reads shapes (and damaged files) that the classifier here does not.
fn recognise_unparsed(content: &[u8], reason: String) -> Recognised {
    let outcome = cloudtrail::read_bytes(content);
    match outcome.shape {
        Shape::Unrecognized | Shape::Empty | Shape::Digest => Recognised::Ignored(reason),
        _ if outcome.events.is_empty() => Recognised::Ignored(reason),
        _ => Recognised::Trail,
    }
}

fn unrecognised_reason(content: &[u8]) -> String {
    let first = parse_documents(content)
        .ok()
        .and_then(|documents| documents.into_iter().next());
    let Some(first) = first.filter(Value::is_object) else {
        return "not a recognised export".to_string();
    };
    if let Some(code) = field(&first, "Error").and_then(|error| text(error, "Code")) {
        return format!("an AWS error response ({code}), not an export");
    }
    let fields: Vec<&str> = first
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .take(5)
        .map(String::as_str)
        .collect();
    format!(
        "not a recognised export (top-level fields: {})",
        fields.join(", ")
    )
}

/// Parses one JSON document, JSON lines, or any sequence of whitespace-separated
/// documents. A top-level array counts as one document per element, and botocore placebo
/// recordings (`{"status_code": …, "data": {…}}`) count as their `data`.
fn parse_documents(content: &[u8]) -> Result<Vec<Value>, String> {
    let content = content.strip_prefix(b"\xef\xbb\xbf").unwrap_or(content);
    let mut documents = Vec::new();
    for document in serde_json::Deserializer::from_slice(content).into_iter::<Value>() {
        let document = document.map_err(|error| format!("invalid JSON: {error}"))?;
        match unwrap_recording(document) {
            Value::Array(elements) => documents.extend(elements),
            document => documents.push(document),
        }
    }
    Ok(documents)
}

fn unwrap_recording(document: Value) -> Value {
    let is_recording = document.get("status_code").is_some_and(Value::is_number)
        && document.get("data").is_some_and(Value::is_object);
    match document {
        Value::Object(mut object) if is_recording => object.remove("data").unwrap_or_default(),
        document => document,
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

impl Contents {
    /// Reads the recognised documents of one file into the records, noting in the
    /// inventory what each kind held, or why the file was not usable.
    fn read_documents(
        &mut self,
        file: &SourceFile,
        documents: Vec<(FileKind, Value)>,
        inventory: &mut Inventory,
    ) {
        let mut read: Vec<(FileKind, usize)> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for (kind, document) in documents {
            match self.read_document(file, kind, &document) {
                Ok(records) => match read.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, total)) => *total += records,
                    None => read.push((kind, records)),
                },
                Err(reason) => problems.push(reason),
            }
        }
        if read.is_empty() {
            let reason = problems
                .into_iter()
                .next()
                .unwrap_or_else(|| "not a recognised export".into());
            inventory.ignore(&file.label, reason);
            return;
        }
        for (kind, records) in read {
            inventory.add(kind, records);
        }
    }

    fn read_document(
        &mut self,
        file: &SourceFile,
        kind: FileKind,
        document: &Value,
    ) -> Result<usize, String> {
        match kind {
            FileKind::Metadata => {
                if self.metadata.is_some() {
                    return Err("a second metadata file; the first one is used".into());
                }
                self.metadata = Some(read_metadata(document));
                Ok(1)
            }
            FileKind::AuthorizationDetails => Ok(self.iam.add_authorization_details(document)),
            FileKind::CredentialReport => self.iam.add_credential_report_json(document),
            FileKind::AccessKeys => Ok(self.iam.add_access_keys(document)),
            FileKind::AccessKeyLastUsed => self.iam.add_last_used(document, file.stem()),
            FileKind::MfaDevices => self
                .iam
                .add_mfa_devices(document, file.stem_in("mfa-devices")),
            FileKind::LoginProfile => self
                .iam
                .add_login_profile(document, file.stem_in("login-profiles")),
            FileKind::GuardDuty => Ok(extend(&mut self.guardduty, parse_guardduty(document))),
            FileKind::SecurityHub => Ok(extend(&mut self.security_hub, parse_asff(document))),
            FileKind::Health => Ok(extend(&mut self.health, parse_health(document))),
            FileKind::AccessAnalyzer => Ok(extend(
                &mut self.access_analyzer,
                parse_access_analyzer(document),
            )),
            FileKind::Storage => Ok(extend(&mut self.storage, parse_storage(document))),
            FileKind::CollectedEvidence => {
                if self.collected.is_some() {
                    return Err("a second keycheck evidence file; the first one is used".into());
                }
                let evidence = collected::parse(document)?;
                let records = evidence.record_count();
                self.collected = Some(evidence);
                Ok(records)
            }
            // CloudTrail documents make the whole file a trail file before this is reached.
            FileKind::CloudTrail => Ok(0),
        }
    }
}

fn extend<T>(list: &mut Option<Vec<T>>, records: Vec<T>) -> usize {
    let count = records.len();
    list.get_or_insert_with(Vec::new).extend(records);
    count
}

fn read_metadata(document: &Value) -> SnapshotMetadata {
    SnapshotMetadata {
        account_id: text(document, "account_id"),
        collected_at: time_field(document, "collected_at"),
        key_id: text(document, "key_id"),
        window_start: time_field(document, "window_start"),
        window_end: time_field(document, "window_end"),
        source: text(document, "source"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_documents_reads_lines_arrays_and_recordings() {
        let lines = b"{\"a\": 1}\n{\"b\": 2}\n";
        assert_eq!(parse_documents(lines).unwrap().len(), 2);
        let array = b"[{\"a\": 1}, {\"b\": 2}, {\"c\": 3}]";
        assert_eq!(parse_documents(array).unwrap().len(), 3);
        let recording = br#"{"status_code": 200, "data": {"MFADevices": []}}"#;
        assert_eq!(
            parse_documents(recording).unwrap(),
            vec![json!({"MFADevices": []})]
        );
        let broken = b"{\"a\": 1}\n{\"b\": ";
        assert!(
            parse_documents(broken)
                .unwrap_err()
                .starts_with("invalid JSON")
        );
    }
}
