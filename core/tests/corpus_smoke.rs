//! Smoke test over the CloudTrail and Sekoia corpus folders: each folder is opened as one
//! snapshot, and the whole playbook runs and renders for every access key ID found in its
//! files and for one key that appears nowhere. Nothing may panic, time out or fail to render.
//!
//! A panicking step does not stop the playbook: its report becomes an error whose operation
//! is `internal`. So the test checks every report for that operation as well as for panics
//! of the test itself. The exact counts of events read per file are tested beside the
//! CloudTrail readers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keycheck_core::AccessKeyId;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::snapshot::Snapshot;
use keycheck_core::geo::Geo;
use keycheck_core::playbook::{self, Investigation, Origin, PlaybookConfig};
use keycheck_core::render::{Family, Renderer, ReportView};
use regex::bytes::Regex;

/// Corpus folders read as snapshots, with every folder below them.
const ROOTS: &[&str] = &["cloudtrail", "sekoia"];

/// A key ID that no corpus file contains, so that every folder runs at least once, also the
/// Sekoia folder, whose files contain no valid key ID.
const ABSENT_KEY: &str = "AKIAQQQQQQQQQQQQQQQQ";

/// Operations a step report names when the step did not finish: it panicked, or it ran
/// out of time.
const STOPPED_OPERATIONS: &[&str] = &["internal", "timeout"];

fn corpus_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if root.is_dir() {
        return Some(root);
    }
    println!("skipping: corpus folder {} is absent", root.display());
    None
}

/// Returns `folder` and every folder below it that directly contains a file.
fn folders_with_files(folder: &Path, found: &mut Vec<PathBuf>) {
    let mut has_file = false;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
        .map(|entry| entry.expect("readable folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            folders_with_files(&path, found);
        } else {
            has_file = true;
        }
    }
    if has_file {
        found.push(folder.to_path_buf());
    }
}

/// Returns every text in the folder's files that parses as an access key ID.
fn key_ids_in(folder: &Path) -> BTreeSet<AccessKeyId> {
    let pattern = Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b").expect("valid pattern");
    let mut keys = BTreeSet::new();
    for entry in std::fs::read_dir(folder).expect("readable folder") {
        let path = entry.expect("readable folder entry").path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        for found in pattern.find_iter(&bytes) {
            let text = std::str::from_utf8(found.as_bytes()).expect("ASCII match");
            if let Ok(key) = text.parse() {
                keys.insert(key);
            }
        }
    }
    keys
}

#[tokio::test]
async fn corpus_folders_investigate_without_panic() {
    let Some(root) = corpus_root() else { return };
    let mut folders = Vec::new();
    for name in ROOTS {
        folders_with_files(&root.join(name), &mut folders);
    }
    let renderer = Renderer::new();
    // Each step gets long enough for a slow machine, but a hang still shows as a timeout.
    let config = PlaybookConfig {
        step_timeout: Duration::from_secs(60),
        ..PlaybookConfig::default()
    };

    let mut failures = Vec::new();
    let mut runs = 0;
    for folder in &folders {
        let snapshot = match Snapshot::open(folder) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                failures.push(format!("{}: the snapshot did not open: {error}", folder.display()));
                continue;
            }
        };
        let evidence: Arc<dyn Evidence> = Arc::new(snapshot);
        let mut keys = key_ids_in(folder);
        keys.insert(ABSENT_KEY.parse().expect("valid key ID"));

        for key in keys {
            let ran = format!("investigate {key} --snapshot {}", folder.display());
            let outcome = playbook::run_to_end(
                Investigation::new(key, Origin::Cli),
                Arc::clone(&evidence),
                Arc::new(Geo::none()),
                config.clone(),
                |_| {},
            )
            .await;
            runs += 1;

            for report in &outcome.reports {
                let Some(failure) = &report.failure else { continue };
                if STOPPED_OPERATIONS.contains(&failure.operation.as_str()) {
                    failures.push(format!("{ran}: step {} did not finish: {}", report.step, report.summary));
                }
            }
            let view = ReportView::new(&outcome);
            let rendered = [
                renderer.render(Family::Terminal, "report", &view),
                renderer.render(Family::Markdown, "report", &view),
                renderer.render(Family::Json, "report", &outcome),
            ];
            for error in rendered.into_iter().filter_map(Result::err) {
                failures.push(format!("{ran}: {error}"));
            }
        }
    }

    println!("{runs} investigations over {} folders", folders.len());
    assert!(runs > folders.len(), "too few keys found in {}: {runs} runs", root.display());
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}
