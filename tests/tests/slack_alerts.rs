//! Alerts in watched channels, end to end: message events signed and sent to the bot's
//! HTTP listener, recognised by `keycheck_core::alert`, and investigated in the alert's
//! thread. Corpus samples are read from `../shared/corpus` and skipped with a notice when
//! it is absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keycheck_tests::slack_api::{Call, SlackHarness, transcript};
use serde_json::{Value, json};

const WATCHED: &str = "C0ALERTS";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The folders of the corpus whose files are alerts, API output or forwarded messages,
/// as in the alert recogniser's own corpus test.
const FOLDERS: [&str; 6] = ["awscli-examples", "c7n", "health", "securityhub", "slack-forwarding", "cloudwatch-logs"];

/// The corpus files that name access keys, with the key an investigation must start for:
/// the first key the file names. Every other file of [`FOLDERS`] and every GuardDuty
/// sample of `sekoia` names none.
const NAMING_A_KEY: [(&str, &str); 6] = [
    ("awscli-examples/guardduty_get-findings.output1.json", "ASIASZ4SI7REEEXAMPLE"),
    ("awscli-examples/guardduty_get-findings.rst", "ASIASZ4SI7REEEXAMPLE"),
    ("awscli-examples/iam_list-access-keys.output1.json", "AKIAIOSFODNN7EXAMPLE"),
    ("awscli-examples/iam_list-access-keys.rst", "AKIAIOSFODNN7EXAMPLE"),
    ("c7n/placebo__test_iam_user_access_key_multi__iam.ListAccessKeys_1.json", "AKIAIYJPJRH5H6NADJEA"),
    ("c7n/placebo__test_security_hub_mode_action_insight__securityhub.GetFindings_1.json", "AKIAIPRJCJL6BOF6DPMA"),
];

fn corpus() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if path.is_dir() {
        Some(path)
    } else {
        println!("corpus not found at {}: skipping", path.display());
        None
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Lists the sample files, relative to the corpus.
fn samples(corpus: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for folder in FOLDERS {
        collect(&corpus.join(folder), &mut files);
    }
    collect(&corpus.join("sekoia"), &mut files);
    let mut relative: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(corpus).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.starts_with("sekoia/") || p.starts_with("sekoia/aws-guardduty__"))
        .collect();
    relative.sort();
    relative
}

/// How a sample is posted: as a person's text, an integration's attachment, or blocks.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Text,
    Attachment,
    Blocks,
}

fn message_event(text: &str, ts: &str, shape: Shape) -> Value {
    match shape {
        Shape::Text => json!({"type": "message", "channel": WATCHED, "ts": ts, "user": "U0ANALYST", "text": text}),
        Shape::Attachment => json!({
            "type": "message", "subtype": "bot_message", "channel": WATCHED, "ts": ts, "bot_id": "B0SNS", "text": "",
            "attachments": [{"color": "danger", "title": "Forwarded alert", "text": text, "fallback": "alert"}]
        }),
        Shape::Blocks => json!({
            "type": "message", "channel": WATCHED, "ts": ts, "bot_id": "B0CHATBOT", "app_id": "A0CHATBOT", "text": "AWS notification",
            "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_preformatted", "elements": [{"type": "text", "text": text}]}]}]
        }),
    }
}

/// Waits for the first post in the alert's thread: the investigation's root message.
async fn root_reply(harness: &SlackHarness, alert_ts: &str) -> Call {
    let calls = harness
        .fake
        .wait_for("the root reply in the alert's thread", TIMEOUT, |calls| {
            calls.iter().any(|c| c.method == "chat.postMessage" && c.field("thread_ts") == Some(alert_ts))
        })
        .await;
    calls.into_iter().find(|c| c.method == "chat.postMessage").unwrap()
}

#[tokio::test]
async fn corpus_alerts_start_investigation_for_their_key() {
    let Some(corpus) = corpus() else { return };
    let shapes = [Shape::Text, Shape::Attachment, Shape::Blocks];
    for (index, (file, key)) in NAMING_A_KEY.iter().enumerate() {
        let text = std::fs::read_to_string(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let shape = shapes[index % shapes.len()];
        let harness = SlackHarness::start(&format!("watched_channels = [\"{WATCHED}\"]\n")).await;
        let ts = format!("1690000000.{index:06}");
        let answer = harness.event(&format!("Ev{index}"), message_event(&text, &ts, shape), None).await;
        assert_eq!(answer.status, 200, "{file}: {answer:?}");

        let root = root_reply(&harness, &ts).await;
        let calls = harness.fake.chat_calls();
        assert_eq!(root.field("channel"), Some(WATCHED), "{file}:\n{}", transcript(&calls));
        assert!(
            root.field("text").unwrap_or_default().contains(key),
            "{file} posted as {shape:?}: expected an investigation of {key}:\n{}",
            transcript(&calls)
        );
    }
}

#[tokio::test]
async fn corpus_samples_without_key_start_nothing() {
    let Some(corpus) = corpus() else { return };
    let harness = SlackHarness::start(&format!("watched_channels = [\"{WATCHED}\"]\n")).await;
    let keyed: Vec<&str> = NAMING_A_KEY.iter().map(|(file, _)| *file).collect();
    let mut sent = Vec::new();
    for (index, file) in samples(&corpus).iter().enumerate() {
        if keyed.contains(&file.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let shape = [Shape::Text, Shape::Attachment, Shape::Blocks][index % 3];
        let answer = harness.event(&format!("EvNone{index}"), message_event(&text, &format!("1680000000.{index:06}"), shape), None).await;
        assert_eq!(answer.status, 200, "{file}: {answer:?}");
        sent.push(file.clone());
    }
    assert!(sent.len() >= 40, "only {} samples without a key were found", sent.len());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = harness.fake.chat_calls();
    assert!(calls.is_empty(), "samples without a key started something:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn alert_investigation_replies_in_alert_thread() {
    let harness = SlackHarness::start(&format!("watched_channels = [\"{WATCHED}\"]\n")).await;
    let key = keycheck_core::demo::key().to_string();
    let text = format!(
        "GuardDuty finding UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS for access key {key}, first seen 2026-12-03T08:00:00Z from 203.0.113.50"
    );
    harness.event("EvThread", message_event(&text, "1690000000.000001", Shape::Text), None).await;
    let calls = harness
        .fake
        .wait_for("the root update", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.update"))
        .await;
    let chat: Vec<&Call> = calls.iter().filter(|c| c.method != "auth.test").collect();
    let shown = transcript(&calls);
    let posts: Vec<&&Call> = chat.iter().filter(|c| c.method == "chat.postMessage").collect();
    assert_eq!(posts.len(), 12, "{shown}");
    for post in &posts {
        assert_eq!(post.field("thread_ts"), Some("1690000000.000001"), "every post is in the alert's thread:\n{shown}");
    }
    let root_ts = posts[0].answer["ts"].as_str().unwrap();
    let update = chat.last().unwrap();
    assert_eq!(update.method, "chat.update", "{shown}");
    assert_eq!(update.field("ts"), Some(root_ts), "the first reply is updated with the verdict:\n{shown}");
    assert!(posts[0].body.to_string().contains("alert"), "{shown}");
}

#[tokio::test]
async fn ten_retried_deliveries_start_one_investigation() {
    let harness = SlackHarness::start(&format!("watched_channels = [\"{WATCHED}\"]\n")).await;
    let key = keycheck_core::demo::key().to_string();
    let event = message_event(&format!("leaked key {key}"), "1690000000.000002", Shape::Text);
    let sends = (0..10).map(|attempt| {
        let retry = (attempt > 0).then_some(attempt);
        harness.event("EvRetried", event.clone(), retry)
    });
    for answer in futures::future::join_all(sends).await {
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let calls = harness
        .fake
        .wait_for("the root update", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.update"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls_after = harness.fake.chat_calls();
    assert_eq!(harness.server.bot.investigations_started(), 1, "{}", transcript(&calls_after));
    assert_eq!(calls_after.iter().filter(|c| c.method == "chat.postMessage").count(), 12, "{}", transcript(&calls));
    assert_eq!(calls_after.iter().filter(|c| c.method == "chat.update").count(), 1);
}

#[tokio::test]
async fn second_alert_for_same_key_links_first_thread() {
    let harness = SlackHarness::start(&format!("watched_channels = [\"{WATCHED}\"]\n")).await;
    let key = keycheck_core::demo::key().to_string();
    harness.event("EvFirst", message_event(&format!("GuardDuty: {key}"), "1690000000.000010", Shape::Text), None).await;
    root_reply(&harness, "1690000000.000010").await;
    harness
        .event("EvSecond", message_event(&format!("AWS Health: exposed key {key}"), "1690000000.000020", Shape::Attachment), None)
        .await;

    let calls = harness
        .fake
        .wait_for("the link in the second alert's thread", TIMEOUT, |calls| {
            calls.iter().any(|c| c.method == "chat.postMessage" && c.field("thread_ts") == Some("1690000000.000020"))
        })
        .await;
    let link = calls
        .iter()
        .find(|c| c.method == "chat.postMessage" && c.field("thread_ts") == Some("1690000000.000020"))
        .unwrap();
    let text = link.body.to_string();
    assert!(text.contains("already under investigation"), "{}", transcript(&calls));
    assert!(text.contains("archives/C0ALERTS/p1690000000000010"), "links the first alert's thread:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 1);
}

#[tokio::test]
async fn ignored_messages_start_nothing() {
    let harness = SlackHarness::start(&format!("watched_channels = [\"{WATCHED}\"]\n")).await;
    let key = keycheck_core::demo::key().to_string();
    let text = format!("key {key} leaked");
    let events = [
        json!({"type": "message", "subtype": "message_changed", "channel": WATCHED, "ts": "1.1", "message": {"text": text, "ts": "1.0"}}),
        json!({"type": "message", "subtype": "message_deleted", "channel": WATCHED, "ts": "1.2", "previous_message": {"text": text}}),
        json!({"type": "message", "channel": WATCHED, "ts": "1.3", "user": "U0KEYCHECK", "text": text}),
        json!({"type": "message", "subtype": "bot_message", "channel": WATCHED, "ts": "1.4", "bot_id": "B0KEYCHECK", "text": text}),
        json!({"type": "message", "channel": "C0ELSEWHERE", "ts": "1.5", "user": "U0ANALYST", "text": text}),
        json!({"type": "message", "channel": WATCHED, "ts": "1.7", "thread_ts": "1.6", "user": "U0ANALYST", "text": text}),
        json!({"type": "reaction_added", "user": "U0ANALYST", "reaction": "eyes", "item": {"type": "message", "channel": WATCHED, "ts": "1.1"}}),
    ];
    for (index, event) in events.into_iter().enumerate() {
        let answer = harness.event(&format!("EvIgnored{index}"), event, None).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = harness.fake.chat_calls();
    assert!(calls.is_empty(), "{}", transcript(&calls));
}
