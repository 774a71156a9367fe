//! JSON logs of the bot name the investigation on every line it logs during one. The
//! subscriber that `keycheck --log-format json` installs captures the output of a
//! `/keycheck` command and of an alert. Each runs through the bot's real HTTP listener on
//! the demo evidence.
//!
//! The subscriber is process-wide, so this file contains a single test.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keycheck_bot::cli::LogFormat;
use keycheck_core::demo;
use keycheck_tests::slack_api::{Call, FakeSlack, SlackHarness};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Log output kept in memory. Each event arrives in one `write`, so lines never interleave.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Returns the lines written so far and clears them.
    fn take_lines(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes).expect("log output is UTF-8").lines().map(str::to_string).collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'writer> MakeWriter<'writer> for Captured {
    type Writer = Captured;

    fn make_writer(&'writer self) -> Captured {
        self.clone()
    }
}

/// One parsed log line.
struct Line {
    raw: String,
    json: Value,
}

impl Line {
    fn target(&self) -> &str {
        self.json["target"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.json["fields"]["message"].as_str().unwrap_or_default()
    }

    /// Returns the `investigation_id` of the spans the line was logged in.
    fn investigation_ids(&self) -> Vec<&str> {
        let spans = self.json["spans"].as_array().map(Vec::as_slice).unwrap_or_default();
        spans.iter().filter_map(|span| span["investigation_id"].as_str()).collect()
    }
}

fn parse(lines: Vec<String>) -> Vec<Line> {
    lines
        .into_iter()
        .map(|raw| {
            let json = serde_json::from_str(&raw).unwrap_or_else(|error| panic!("a log line is not JSON ({error}): {raw}"));
            Line { raw, json }
        })
        .collect()
}

/// Checks the lines of one investigation and returns its ID: exactly one ID appears, every
/// keycheck line from the first to the last line that names it names it too, and the
/// lines that mark its course are among them.
fn check_investigation(lines: &[Line], case: &str) -> String {
    let all_lines = || lines.iter().map(|line| line.raw.as_str()).collect::<Vec<_>>().join("\n");
    let mut ids: Vec<&str> = lines.iter().flat_map(Line::investigation_ids).collect();
    ids.sort_unstable();
    ids.dedup();
    let [id] = ids.as_slice() else {
        panic!("{case}: expected one investigation ID in the log, found {ids:?}:\n{}", all_lines());
    };

    let naming: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].investigation_ids().contains(id)).collect();
    let (first, last) = (naming[0], naming[naming.len() - 1]);
    for line in &lines[first..=last] {
        if !line.target().starts_with("keycheck") {
            continue;
        }
        let ids = line.investigation_ids();
        assert!(ids.contains(id), "{case}: a line logged during {id} does not name it: {}\nall lines:\n{}", line.raw, all_lines());
    }

    let inside: Vec<&Line> = lines[first..=last].iter().collect();
    let count = |message: &str| inside.iter().filter(|line| line.message() == message).count();
    assert_eq!(count("investigation started"), 1, "{case}: the playbook's start:\n{}", all_lines());
    assert_eq!(count("step finished"), 10, "{case}: each step's end:\n{}", all_lines());
    assert_eq!(count("investigation posted"), 1, "{case}: the Slack thread's start:\n{}", all_lines());
    assert_eq!(count("investigation finished"), 2, "{case}: the playbook's and the thread's end:\n{}", all_lines());
    let posted = inside.iter().filter(|line| line.message() == "posted a message").count();
    assert!(posted >= 12, "{case}: the Web API client's debug lines of each post:\n{}", all_lines());

    let account = inside
        .iter()
        .find(|line| line.message() == "step finished" && line.json["fields"]["step"] == "key")
        .and_then(|line| line.json["spans"].as_array()?.iter().find_map(|span| span["account_id"].as_str()));
    assert_eq!(account, Some(demo::account_id()), "{case}: the account resolved by step 0 is on later lines:\n{}", all_lines());
    id.to_string()
}

async fn wait_finished(harness: &SlackHarness) -> Vec<Call> {
    harness
        .fake
        .wait_for("the root message update", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.update"))
        .await
}

/// Waits until the log has been quiet for a moment, so that the lines logged after the
/// last Slack call are captured too.
async fn settle(captured: &Captured) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let more = captured.take_lines();
        if more.is_empty() {
            return lines;
        }
        lines.extend(more);
    }
}

#[tokio::test]
async fn investigation_id_on_every_line() {
    let captured = Captured::default();
    let filter = EnvFilter::new("keycheck_core=debug,keycheck_bot=debug,keycheck_tests=debug,warn");
    let subscriber = keycheck_bot::logging::subscriber(LogFormat::Json, filter, captured.clone(), false);
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this test binary");

    // A command.
    let harness = SlackHarness::start("").await;
    captured.take_lines();
    harness.command(&demo::key().to_string(), "U0ALICE", "C0INCIDENT", "t.logs").await;
    let calls = wait_finished(&harness).await;
    let lines = parse(settle(&captured).await);
    let id = check_investigation(&lines, "a /keycheck command");
    let update = calls.iter().find(|c| c.method == "chat.update").unwrap();
    assert!(update.body.to_string().contains(&id), "the root message shows the ID {id} the log names: {}", update.body);

    // An alert in a watched channel, on a bot of its own so that it is not a duplicate.
    let fake = FakeSlack::start().await;
    let harness = SlackHarness::start_with(fake, "watched_channels = [\"C0ALERTS\"]", "[evidence]\nsource = \"demo\"\n").await;
    captured.take_lines();
    let text = format!("GuardDuty finding UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS for access key {}", demo::key());
    let event = json!({"type": "message", "channel": "C0ALERTS", "ts": "1700000100.000100", "user": "U0ANALYST", "text": text});
    let answer = harness.event("Ev0LOGS", event, None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    wait_finished(&harness).await;
    let lines = parse(settle(&captured).await);
    check_investigation(&lines, "an alert");
}
