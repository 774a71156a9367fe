//! Scanning a snapshot's CloudTrail files for the records that contain given strings.
//!
//! A scan reads every CloudTrail file once, on the blocking thread pool, several files at
//! a time, and parses only the records that contain one of the needles (an access key ID,
//! an ARN). The event fetch runs one scan for the key and its owner, then one more for
//! each round of sessions minted from the key.

use std::sync::Arc;

use futures::StreamExt;
use tracing::warn;

use super::source::{SourceFile, TRAIL_LIMIT};
use crate::cloudtrail::{self, Event, Shape};

/// The events one scan found, and what it could not read.
#[derive(Debug, Default)]
pub(super) struct ScanOutcome {
    pub events: Vec<Event>,
    /// Records the CloudTrail reader could not parse.
    pub skipped_records: usize,
    /// Files that could not be read or held no CloudTrail, each with the reason.
    pub problems: Vec<(String, String)>,
    /// Files read in part, each with how many records were skipped and the first reason.
    pub partly_read: Vec<(String, String)>,
}

/// Scans every file for records containing any of `needles`. Files are read in parallel
/// on the blocking thread pool, and the outcome lists events in file order.
pub(super) async fn scan(files: &Arc<[SourceFile]>, needles: Vec<Vec<u8>>) -> ScanOutcome {
    let needles = Arc::new(needles);
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());

    let reads = (0..files.len()).map(|index| {
        let files = Arc::clone(files);
        let needles = Arc::clone(&needles);
        async move {
            let label = files[index].label.clone();
            let result =
                tokio::task::spawn_blocking(move || scan_file(&files[index], &needles)).await;
            result
                .unwrap_or_else(|error| Err(format!("scan task failed: {error}")))
                .map(|read| (label.clone(), read))
                .map_err(|reason| (label, reason))
        }
    });
    let mut results = futures::stream::iter(reads).buffered(parallel);

    let mut outcome = ScanOutcome::default();
    while let Some(result) = results.next().await {
        match result {
            Ok((label, read)) => {
                if let Some(first) = read.skipped.first() {
                    let count = read.skipped.len();
                    let records = if count == 1 { "record" } else { "records" };
                    warn!(file = %label, skipped = count, first = %first.reason, "CloudTrail records skipped");
                    outcome
                        .partly_read
                        .push((label, format!("{count} {records} skipped, the first: {}", first.reason)));
                }
                outcome.skipped_records += read.skipped.len();
                outcome.events.extend(read.events);
            }
            Err((label, reason)) => {
                warn!(file = %label, reason = %reason, "CloudTrail file not read");
                outcome.problems.push((label, reason));
            }
        }
    }
    outcome
}

/// Reads one file and parses the records that contain a needle. Runs on a blocking thread.
fn scan_file(file: &SourceFile, needles: &[Vec<u8>]) -> Result<cloudtrail::ReadOutcome, String> {
    let content = file.read(TRAIL_LIMIT)?;
    let needles: Vec<&[u8]> = needles.iter().map(Vec::as_slice).collect();
    let outcome = cloudtrail::scan_bytes(&content, &needles);
    match outcome.shape {
        Shape::Unrecognized => Err("no CloudTrail events in a shape the reader knows".into()),
        _ => Ok(outcome),
    }
}
