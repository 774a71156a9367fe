//! `keycheck snapshot collect`: read a key's evidence live from AWS and write it as a
//! snapshot folder, so that a responder can keep it before CloudTrail logs and findings
//! expire, and investigate it offline later with `keycheck investigate KEY --snapshot DIR`.
//!
//! The collection runs the playbook itself, over a recorder that wraps the live evidence
//! source. The snapshot therefore contains the results of exactly the calls an
//! investigation makes, with the arguments the playbook derives: the owner from the key
//! record or from CloudTrail, the subject of each findings search. No separate list of
//! calls exists to drift from the playbook's. It writes three files:
//!
//! - `metadata.json`: account, key, `collected_at`, the window, and the source.
//! - `cloudtrail/events.json`: the CloudTrail events read, as an S3 log file
//!   (`{"Records": […]}`, one event a line), only when CloudTrail could be read.
//! - `keycheck-evidence.json`: every other record as the `Evidence` trait returned it,
//!   and the error text of each kind of evidence whose call failed, so that an offline
//!   re-run reports why that part is missing.
//!
//! A failed call never stops the collection. Nothing is written until every file is
//! built, has had its secrets redacted, and was checked to contain no secret.

mod recorder;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use keycheck_core::cloudtrail::{self, Event};
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::LiveEvidence;
use keycheck_core::evidence::snapshot::SnapshotMetadata;
use keycheck_core::evidence::snapshot::collected::{self, CollectedEvidence};
use keycheck_core::geo::Geo;
use keycheck_core::playbook::{self, Investigation, Outcome, PlaybookConfig};
use keycheck_core::redact;

use crate::config::Config;
use recorder::{Recorded, Recorder};

/// The `source` written to `metadata.json`.
pub const SOURCE: &str = "keycheck snapshot collect";

/// Path of the CloudTrail events file inside the snapshot folder.
pub const EVENTS_FILE: &str = "cloudtrail/events.json";

/// The snapshot's metadata file.
pub const METADATA_FILE: &str = "metadata.json";

/// Arguments of `keycheck snapshot collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The access key ID (AKIA… or ASIA…).
    pub key: String,

    /// Folder to write the snapshot to; it must not exist or be empty.
    #[arg(long)]
    pub out: PathBuf,

    /// Length of the investigated window, such as 24h or 7d. Default: playbook.window
    /// of the configuration, else 24h. The key's history before the window
    /// (playbook.history, 14 days by default) is collected too.
    #[arg(long, value_parser = crate::cli::parse_duration)]
    pub window: Option<std::time::Duration>,

    /// End of the window (RFC 3339, such as 2026-05-01T12:00:00Z). Default: now.
    #[arg(long)]
    pub end: Option<DateTime<Utc>>,
}

/// The result of a collection: the files written and the live investigation behind them.
#[derive(Debug)]
pub struct Collection {
    /// The folder written.
    pub out: PathBuf,
    /// The live investigation the collection ran.
    pub outcome: Outcome,
    /// The content of `keycheck-evidence.json`.
    pub evidence: CollectedEvidence,
    /// How many CloudTrail events `cloudtrail/events.json` holds, or `None` when
    /// CloudTrail could not be read and the file was not written.
    pub events: Option<usize>,
    /// The files written, as paths inside the folder, in the order written.
    pub files: Vec<String>,
    /// How many secret values were replaced by placeholders before writing, by kind of
    /// secret, such as `[redacted session token]`.
    pub redacted: BTreeMap<&'static str, usize>,
}

/// Runs `keycheck snapshot collect`.
pub async fn run(args: CollectArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let key = match crate::investigate::parse_key(&args.key) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("keycheck: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Err(error) = crate::investigate::ensure_new_folder(&args.out) {
        eprintln!("keycheck: {error:#}");
        return Ok(ExitCode::from(2));
    }
    let investigation = crate::investigate::new_investigation(key, args.window, args.end, config)?;
    let evidence = match LiveEvidence::new(config.aws.clone(), &investigation.id) {
        Ok(evidence) => evidence,
        Err(error) => {
            eprintln!("keycheck: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    let geo = Arc::new(Geo::open(&config.geo).context("cannot open the geolocation databases")?);
    let playbook_config = crate::investigate::playbook_config(config)?;

    eprintln!("keycheck: collecting the evidence of {} from AWS…", investigation.key);
    let collection = collect(investigation, Arc::new(evidence), geo, playbook_config, &args.out).await?;
    println!("{}", summary(&collection));
    Ok(ExitCode::SUCCESS)
}

/// Runs the playbook on `investigation` over `evidence`, recording every evidence call,
/// and writes what it read as a snapshot folder at `out`.
///
/// Fails when `out` exists and is not empty, when no kind of evidence could be read (as
/// when AWS is unreachable), when a file would contain a secret even after redaction, or
/// when a file cannot be written. Only in the last case may part of the folder have been
/// written. A failed evidence call is not an error: its text goes to
/// `keycheck-evidence.json`.
pub async fn collect(
    investigation: Investigation,
    evidence: Arc<dyn Evidence>,
    geo: Arc<Geo>,
    config: PlaybookConfig,
    out: &Path,
) -> anyhow::Result<Collection> {
    crate::investigate::ensure_new_folder(out)?;

    let key = investigation.key.clone();
    let recorder = Arc::new(Recorder::new(evidence, key.clone()));
    let grace = config.step_timeout;
    let outcome = playbook::run_to_end(investigation, recorder.clone(), geo, config, |_| {}).await;
    let Recorded {
        evidence: mut collected,
        events,
        read,
    } = recorder.finish(grace).await;
    if read.is_empty() {
        return Err(nothing_read(&collected, out));
    }
    collected.collected_at = Utc::now();

    let mut files = vec![(METADATA_FILE.to_string(), pretty_json(&metadata(&collected))?)];
    if let Some(events) = &events {
        files.push((EVENTS_FILE.to_string(), events_file(events)?));
    }
    files.push((collected::FILE_NAME.to_string(), pretty_json(&collected)?));

    let mut redacted = BTreeMap::new();
    for (name, text) in &mut files {
        *text = without_secrets(name, text, &mut redacted)?;
    }
    let text_of = |wanted: &str| files.iter().find(|(name, _)| name == wanted).map(|(_, text)| text.as_str());
    if let Some(events) = &events {
        check_events_read_back(text_of(EVENTS_FILE).unwrap_or_default(), events.len())?;
    }
    // The records as the file contains them after redaction, which the summary shows.
    let collected: CollectedEvidence = serde_json::from_str(text_of(collected::FILE_NAME).unwrap_or_default())
        .with_context(|| format!("{} does not read back after redaction; nothing was written", collected::FILE_NAME))?;

    for (name, text) in &files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    tracing::info!(key_id = %key, out = %out.display(), unavailable = collected.unavailable.len(), "snapshot collected");

    Ok(Collection {
        out: out.to_path_buf(),
        outcome,
        evidence: collected,
        events: events.map(|events| events.len()),
        files: files.into_iter().map(|(name, _)| name).collect(),
        redacted,
    })
}

/// Builds the error of a collection that read nothing, with what to do about the first
/// failure (step 0's, when it failed). A folder of errors only would be no evidence, and
/// it would be in the way of the next attempt, so nothing is written.
fn nothing_read(collected: &CollectedEvidence, out: &Path) -> anyhow::Error {
    let Some((kind, error)) = collected.unavailable.iter().next() else {
        return anyhow::anyhow!("no evidence could be read from AWS, so nothing was written to {}", out.display());
    };
    let hint = crate::investigate::access_hint(error).map(|hint| format!("{hint}. ")).unwrap_or_default();
    anyhow::anyhow!(
        "no evidence could be read from AWS, so nothing was written to {}. {hint}{} failed: {error}",
        out.display(),
        kind.label()
    )
}

/// Builds `metadata.json` from what was collected.
fn metadata(collected: &CollectedEvidence) -> SnapshotMetadata {
    SnapshotMetadata {
        account_id: collected.account.as_ref().and_then(|a| a.account_id.clone()),
        collected_at: Some(collected.collected_at),
        key_id: Some(collected.key_id.to_string()),
        window_start: collected.cloudtrail.as_ref().map(|read| read.window.start),
        window_end: collected.cloudtrail.as_ref().map(|read| read.window.end),
        source: Some(SOURCE.to_string()),
    }
}

fn pretty_json(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot serialize the collected evidence")?;
    text.push('\n');
    Ok(text)
}

/// Writes events as a CloudTrail log file in the shape S3 stores, one event a line so
/// that the file can be searched line by line.
fn events_file(events: &[Event]) -> anyhow::Result<String> {
    let mut text = String::from("{\"Records\": [\n");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            text.push_str(",\n");
        }
        text.push_str(&serde_json::to_string(event).context("cannot serialize a CloudTrail event")?);
    }
    text.push_str("\n]}\n");
    Ok(text)
}

/// Replaces every secret in a file's text with a placeholder, counting them by kind, and
/// checks that the result is still JSON and contains no secret.
///
/// The response elements of `AssumeRole` and `GetSessionToken` events can include the
/// session token the call returned, so a collection that follows minted sessions may
/// need this.
fn without_secrets(name: &str, text: &str, counts: &mut BTreeMap<&'static str, usize>) -> anyhow::Result<String> {
    for found in redact::find_secrets(text) {
        *counts.entry(found.kind.placeholder()).or_default() += 1;
    }
    let redacted = redact::redact(text).into_owned();
    if let Err(error) = serde_json::from_str::<serde_json::Value>(&redacted) {
        anyhow::bail!(
            "{name} contains a secret that cannot be redacted without breaking its JSON ({error}); nothing was written"
        );
    }
    if redact::contains_secret(&redacted) {
        anyhow::bail!("{name} still contains a secret after redaction; nothing was written");
    }
    Ok(redacted)
}

/// Checks that the CloudTrail file reads back through keycheck's own reader with every
/// event and no skipped record, so that the snapshot gives the events back offline.
fn check_events_read_back(text: &str, expected: usize) -> anyhow::Result<()> {
    let outcome = cloudtrail::read_bytes(text.as_bytes());
    anyhow::ensure!(
        outcome.events.len() == expected && outcome.skipped.is_empty(),
        "{EVENTS_FILE} reads back as {} events with {} skipped records instead of {expected} events; nothing was written",
        outcome.events.len(),
        outcome.skipped.len()
    );
    Ok(())
}

/// Describes a finished collection for the terminal: the files, what could not be read
/// and why, what was redacted, the live verdict, and the command that re-runs it offline.
pub fn summary(collection: &Collection) -> String {
    let evidence = &collection.evidence;
    let out = collection.out.display();
    let account = evidence
        .account
        .as_ref()
        .and_then(|a| a.account_id.as_deref())
        .map(|account| format!(" (account {account})"))
        .unwrap_or_default();
    let mut lines = vec![format!("collected the evidence of {}{account} into {out}:", evidence.key_id)];

    lines.push(format!("  {METADATA_FILE}"));
    if let (Some(count), Some(read)) = (collection.events, &evidence.cloudtrail) {
        lines.push(format!(
            "  {EVENTS_FILE}  {count} CloudTrail events from {}; window {} to {}",
            read.source,
            read.window.start.format("%Y-%m-%d %H:%M"),
            read.window.end.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    lines.push(format!("  {}  {}", collected::FILE_NAME, contents_line(evidence)));

    if !evidence.unavailable.is_empty() {
        lines.push("not available (the reason is kept for the offline re-run):".to_string());
        for (kind, error) in &evidence.unavailable {
            lines.push(format!("  {}: {error}", kind.label()));
        }
    }
    if !evidence.partial_failures.is_empty() {
        lines.push("partly read (the failures are kept for the offline re-run):".to_string());
        for (kind, errors) in &evidence.partial_failures {
            for error in errors {
                lines.push(format!("  {}: {error}", kind.label()));
            }
        }
    }
    for (placeholder, count) in &collection.redacted {
        lines.push(format!("replaced {} with {placeholder} before writing", plural(*count, "secret value")));
    }
    let diagnosis = &collection.outcome.diagnosis;
    lines.push(format!(
        "live verdict: {}, severity {}",
        diagnosis.verdict.label(),
        diagnosis.severity.label().to_lowercase()
    ));
    lines.push(format!(
        "investigate it offline with: keycheck investigate {} --snapshot {out}",
        evidence.key_id
    ));
    lines.join("\n")
}

/// Lists the records of `keycheck-evidence.json`, such as `account, key record, 1 user
/// record, 2 credential report rows, 1 Security Hub finding`.
fn contents_line(evidence: &CollectedEvidence) -> String {
    let counted: [(Option<usize>, &str); 6] = [
        (evidence.credential_report.as_ref().map(Vec::len), "credential report row"),
        (evidence.security_hub.as_ref().map(Vec::len), "Security Hub finding"),
        (evidence.guardduty.as_ref().map(Vec::len), "GuardDuty finding"),
        (evidence.health.as_ref().map(Vec::len), "AWS Health event"),
        (evidence.access_analyzer.as_ref().map(Vec::len), "Access Analyzer finding"),
        (evidence.key_locations.as_ref().map(Vec::len), "key location"),
    ];
    let mut parts = Vec::new();
    if evidence.account.is_some() {
        parts.push("account".to_string());
    }
    if evidence.access_key.is_some() {
        parts.push("key record".to_string());
    }
    parts.push(plural(evidence.users.len(), "user record"));
    for (count, noun) in counted {
        if let Some(count) = count {
            parts.push(plural(count, noun));
        }
    }
    parts.join(", ")
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: serde_json::Value) -> Event {
        let outcome = cloudtrail::read_bytes(value.to_string().as_bytes());
        assert_eq!(outcome.events.len(), 1, "{value}");
        outcome.events.into_iter().next().unwrap()
    }

    #[test]
    fn events_file_reads_back_unchanged() {
        let events = vec![
            event(json!({"eventVersion": "1.09", "eventTime": "2026-05-01T10:00:00Z", "eventSource": "s3.amazonaws.com",
                "eventName": "ListBuckets", "eventID": "e1", "sourceIPAddress": "203.0.113.7",
                "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAQWERTYUIOPASDFGH", "userName": "dana"}})),
            event(json!({"eventVersion": "1.09", "eventTime": "2026-05-01T10:05:00Z", "eventSource": "iam.amazonaws.com",
                "eventName": "CreateUser", "eventID": "e2", "errorCode": "AccessDenied",
                "requestParameters": {"userName": "backdoor"},
                "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAQWERTYUIOPASDFGH"}})),
        ];

        let text = events_file(&events).unwrap();
        let outcome = cloudtrail::read_bytes(text.as_bytes());
        assert_eq!(outcome.events, events, "{text}");
        assert!(outcome.skipped.is_empty());
        assert_eq!(text.lines().count(), 4, "one event a line between the brackets: {text}");
    }

    #[test]
    fn empty_events_file_reads_as_cloudtrail() {
        let text = events_file(&[]).unwrap();
        let outcome = cloudtrail::read_bytes(text.as_bytes());
        assert!(outcome.events.is_empty());
        check_events_read_back(&text, 0).unwrap();
    }

    #[test]
    fn session_token_redacted_and_counted() {
        let minted = event(json!({"eventVersion": "1.09", "eventTime": "2026-05-01T10:00:00Z",
            "eventSource": "sts.amazonaws.com", "eventName": "GetSessionToken", "eventID": "e1",
            "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAQWERTYUIOPASDFGH"},
            "responseElements": {"credentials": {"accessKeyId": "ASIAZXCVBNMLKJHGFDSA", "sessionToken": "opaque-session-token-value"}}}));
        let text = events_file(std::slice::from_ref(&minted)).unwrap();

        let mut counts = BTreeMap::new();
        let redacted = without_secrets(EVENTS_FILE, &text, &mut counts).unwrap();
        assert!(!redacted.contains("opaque-session-token-value"), "{redacted}");
        assert_eq!(counts.get("[redacted session token]"), Some(&1), "{counts:?}");
        let back = cloudtrail::read_bytes(redacted.as_bytes());
        assert_eq!(back.events.len(), 1);
        assert_eq!(back.events[0].minted_access_key_id(), Some("ASIAZXCVBNMLKJHGFDSA"), "the minted key ID stays");
    }

    #[test]
    fn unredactable_secret_rejected() {
        // A bare number after a `token` field is replaced by an unquoted placeholder,
        // which is no longer JSON, so the file must not be written.
        let text = r#"{"token": 123456789}"#;
        let error = without_secrets("x.json", text, &mut BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("x.json"), "{error}");
        assert!(error.contains("nothing was written"), "{error}");
    }

    #[tokio::test]
    async fn demo_collection_reads_back_alike() {
        let folder = tempfile::tempdir().unwrap();
        let out = folder.path().join("incident");
        let snapshot = keycheck_core::demo::snapshot().unwrap();
        let investigation = Investigation::new(keycheck_core::demo::key(), playbook::Origin::Cli);
        let geo = Arc::new(Geo::none());
        let collection = collect(investigation, Arc::new(snapshot), geo.clone(), PlaybookConfig::default(), &out)
            .await
            .unwrap();

        let offline = keycheck_core::evidence::snapshot::Snapshot::open(&out).unwrap();
        assert!(offline.inventory().ignored.is_empty(), "{:?}", offline.inventory().ignored);
        let investigation = Investigation::new(keycheck_core::demo::key(), playbook::Origin::Cli);
        let outcome = playbook::run_to_end(investigation, Arc::new(offline), geo, PlaybookConfig::default(), |_| {}).await;
        for (collected, reread) in collection.outcome.reports.iter().zip(&outcome.reports) {
            assert_eq!(reread.status, collected.status, "step {}", collected.step);
            assert_eq!(reread.data, collected.data, "step {}", collected.step);
        }
        assert_eq!(outcome.diagnosis.verdict, collection.outcome.diagnosis.verdict);
        assert_eq!(outcome.diagnosis.severity, collection.outcome.diagnosis.severity);
    }

    #[test]
    fn read_back_check_counts_events() {
        let error = check_events_read_back("{\"Records\": []}", 3).unwrap_err().to_string();
        assert!(error.contains("0 events"), "{error}");
        assert!(error.contains("instead of 3"), "{error}");
    }
}
