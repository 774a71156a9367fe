//! Alerts in watched Discord channels, end to end. The bot in gateway mode connects
//! serenity's client to the fake gateway, which dispatches `MESSAGE_CREATE` events. The
//! bot recognises alerts with `keycheck_core::alert` and investigates each in a thread on
//! its message. Corpus samples are read from `../shared/corpus` and skipped with a notice
//! when it is absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keycheck_tests::discord_api::{
    APPLICATION_ID, BOT_USER_ID, Call, DiscordHarness, FakeDiscord, gateway_message, keycheck_author, person, transcript, webhook_author,
};
use serde_json::{Value, json};

const WATCHED: u64 = 1_200_000_000_000_000_077;
const ELSEWHERE: u64 = 1_200_000_000_000_000_078;
const TIMEOUT: Duration = Duration::from_secs(60);
const START_THREAD: &str = "POST /channels/{id}/messages/{id}/threads";
const CREATE_MESSAGE: &str = "POST /channels/{id}/messages";

/// The folders of the corpus whose files are alerts, API output or forwarded messages,
/// as in the alert recogniser's own corpus test.
const FOLDERS: [&str; 6] = ["awscli-examples", "c7n", "health", "securityhub", "slack-forwarding", "cloudwatch-logs"];

/// The corpus files that name access keys, with the key an investigation must start for:
/// the first key the file names, as the recogniser's corpus expectations list them. Every
/// other file of [`FOLDERS`] and every GuardDuty sample of `sekoia` names none.
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

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Lists the sample files, relative to the corpus.
fn samples(corpus: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for folder in FOLDERS {
        collect_files(&corpus.join(folder), &mut files);
    }
    collect_files(&corpus.join("sekoia"), &mut files);
    let mut relative: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(corpus).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.starts_with("sekoia/") || p.starts_with("sekoia/aws-guardduty__"))
        .collect();
    relative.sort();
    relative
}

/// How a sample is posted: as a person's content, a webhook's embed descriptions, or a
/// bot's embed fields.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Content,
    WebhookEmbeds,
    BotFields,
}

/// Splits `text` at line ends into pieces of at most `max` characters, so that no key ID
/// is cut in two.
fn pieces(text: &str, max: usize) -> Vec<String> {
    let mut pieces = vec![String::new()];
    for line in text.lines() {
        for part in line.chars().collect::<Vec<_>>().chunks(max - 1) {
            let part: String = part.iter().collect();
            let last = pieces.last_mut().unwrap();
            if last.chars().count() + part.chars().count() + 1 > max {
                pieces.push(part);
            } else {
                if !last.is_empty() {
                    last.push('\n');
                }
                last.push_str(&part);
            }
        }
    }
    pieces
}

/// Returns the `MESSAGE_CREATE` payload of `text` posted in `channel` in `shape`, within
/// Discord's limits: 2,000 characters of content, 4,096 a description, 1,024 a field.
fn alert_message(message_id: u64, channel: u64, text: &str, shape: Shape) -> Value {
    match shape {
        Shape::Content if text.chars().count() <= 2000 => gateway_message(message_id, channel, person(1_400_000_000_000_000_009, "analyst"), text, json!([])),
        Shape::Content | Shape::WebhookEmbeds => {
            let embeds: Vec<Value> = pieces(text, 4096)
                .into_iter()
                .map(|piece| json!({"type": "rich", "title": "Forwarded alert", "description": piece, "color": 15158332}))
                .collect();
            let mut message = gateway_message(message_id, channel, webhook_author(1_700_000_000_000_000_001, "SNS to Discord"), "", Value::Array(embeds));
            message["webhook_id"] = json!("1700000000000000001");
            message
        }
        Shape::BotFields => {
            let fields: Vec<Value> = pieces(text, 1024)
                .into_iter()
                .map(|piece| json!({"name": "Finding", "value": piece, "inline": false}))
                .collect();
            let embeds: Vec<Value> = fields.chunks(25).map(|chunk| json!({"type": "rich", "title": "AWS alert", "fields": chunk})).collect();
            let mut author = person(1_700_000_000_000_000_002, "SIEM");
            author["bot"] = json!(true);
            gateway_message(message_id, channel, author, "AWS security notification", Value::Array(embeds))
        }
    }
}

/// Starts the bot in gateway mode watching [`WATCHED`], and waits until it is connected.
async fn start_watching() -> DiscordHarness {
    let table = format!("mode = \"gateway\"\nwatched_channels = [\"{WATCHED}\"]\n");
    let harness = DiscordHarness::start_with(FakeDiscord::start().await, &table, "[evidence]\nsource = \"demo\"\n").await;
    harness.fake.wait_ready(TIMEOUT).await;
    harness
}

/// Waits for the thread on `message_id` and the root message posted in it.
async fn root_in_thread(harness: &DiscordHarness, message_id: u64) -> Call {
    let calls = harness
        .fake
        .wait_for("the root message in the alert's thread", TIMEOUT, |calls| {
            calls.iter().any(|c| c.route == CREATE_MESSAGE && c.path_id(1) == Some(message_id))
        })
        .await;
    calls.into_iter().find(|c| c.route == CREATE_MESSAGE && c.path_id(1) == Some(message_id)).unwrap()
}

#[tokio::test]
async fn gateway_identifies_with_message_intents() {
    let harness = start_watching().await;
    let calls = harness.fake.calls();
    let shown = transcript(&calls);
    let routes: Vec<&str> = calls.iter().map(|c| c.route.as_str()).collect();
    assert!(routes.contains(&"GET /gateway"), "serenity asked the fake for the gateway:\n{shown}");
    let identify = calls.iter().find(|c| c.route == "GATEWAY IDENTIFY").unwrap();
    let intents = identify.body["d"]["intents"].as_u64().unwrap();
    let guild_messages = 1 << 9;
    let message_content = 1 << 15;
    assert_eq!(intents & guild_messages, guild_messages, "{shown}");
    assert_eq!(intents & message_content, message_content, "{shown}");
}

#[tokio::test]
async fn corpus_alerts_start_investigation_for_their_key() {
    let Some(corpus) = corpus() else { return };
    let shapes = [Shape::Content, Shape::WebhookEmbeds, Shape::BotFields];
    for (index, (file, key)) in NAMING_A_KEY.iter().enumerate() {
        let text = std::fs::read_to_string(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let shape = shapes[index % shapes.len()];
        let harness = start_watching().await;
        let message_id = 1_800_000_000_000_000_000 + index as u64;
        harness.fake.dispatch("MESSAGE_CREATE", alert_message(message_id, WATCHED, &text, shape));

        let root = root_in_thread(&harness, message_id).await;
        let calls = harness.fake.chat_calls();
        let thread = calls.iter().find(|c| c.route == START_THREAD).expect("a thread");
        assert_eq!(thread.path_id(1), Some(WATCHED), "{file}:\n{}", transcript(&calls));
        assert_eq!(thread.path_id(3), Some(message_id), "the thread starts on the alert:\n{}", transcript(&calls));
        let title = root.text("/embeds/0/title").unwrap_or_default();
        assert!(title.contains(key), "{file} posted as {shape:?}: expected an investigation of {key}:\n{}", transcript(&calls));
        let threads = calls.iter().filter(|c| c.route == START_THREAD).count();
        assert_eq!(threads, 1, "{file}:\n{}", transcript(&calls));
    }
}

#[tokio::test]
async fn corpus_samples_without_key_start_nothing() {
    let Some(corpus) = corpus() else { return };
    let harness = start_watching().await;
    let keyed: Vec<&str> = NAMING_A_KEY.iter().map(|(file, _)| *file).collect();
    let mut sent = Vec::new();
    for (index, file) in samples(&corpus).iter().enumerate() {
        if keyed.contains(&file.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let shape = [Shape::Content, Shape::WebhookEmbeds, Shape::BotFields][index % 3];
        harness.fake.dispatch("MESSAGE_CREATE", alert_message(1_810_000_000_000_000_000 + index as u64, WATCHED, &text, shape));
        sent.push(file.clone());
    }
    assert!(sent.len() >= 40, "only {} samples without a key were found", sent.len());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = harness.fake.chat_calls();
    assert!(calls.is_empty(), "samples without a key started something:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn alert_investigated_in_thread_on_its_message() {
    let harness = start_watching().await;
    let key = keycheck_core::demo::key().to_string();
    let text = format!(
        "GuardDuty finding UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS for access key {key}, first seen 2026-12-03T08:00:00Z from 203.0.113.50"
    );
    let message_id = 1_820_000_000_000_000_001;
    harness.fake.dispatch("MESSAGE_CREATE", alert_message(message_id, WATCHED, &text, Shape::WebhookEmbeds));
    let calls = harness
        .fake
        .wait_for("the root edit", TIMEOUT, |calls| calls.iter().any(|c| c.route == "PATCH /channels/{id}/messages/{id}"))
        .await;
    let chat: Vec<&Call> = calls.iter().filter(|c| c.method != "GATEWAY" && !c.route.starts_with("GET") && !c.route.starts_with("PUT")).collect();
    let shown = transcript(&calls);

    // The thread on the alert, the root, ten steps and the diagnosis in it, the root edit.
    let routes: Vec<&str> = chat.iter().map(|c| c.route.as_str()).collect();
    let mut expected = vec![START_THREAD];
    expected.extend([CREATE_MESSAGE; 12]);
    expected.push("PATCH /channels/{id}/messages/{id}");
    assert_eq!(routes, expected, "{shown}");
    let thread_id: u64 = chat[0].response["id"].as_str().unwrap().parse().unwrap();
    for post in &chat[1..13] {
        assert_eq!(post.path_id(1), Some(thread_id), "every post is in the alert's thread:\n{shown}");
    }
    let root_id: u64 = chat[1].response["id"].as_str().unwrap().parse().unwrap();
    let edit = chat[13];
    assert_eq!(edit.path_id(1), Some(thread_id), "{shown}");
    assert_eq!(edit.path_id(3), Some(root_id), "the root message is edited with the verdict:\n{shown}");
    assert!(edit.text("/embeds/0/title").unwrap_or_default().contains("COMPROMISED"), "{shown}");
    let requested_by = chat[1].body["embeds"][0]["fields"].to_string();
    assert!(requested_by.contains("alert posted by an integration"), "the root names the alert's poster:\n{shown}");
}

#[tokio::test]
async fn second_alert_for_same_key_links_first_thread() {
    let harness = start_watching().await;
    let key = keycheck_core::demo::key().to_string();
    let first = 1_830_000_000_000_000_001;
    harness.fake.dispatch("MESSAGE_CREATE", alert_message(first, WATCHED, &format!("GuardDuty: {key}"), Shape::Content));
    root_in_thread(&harness, first).await;

    let second = 1_830_000_000_000_000_002;
    harness.fake.dispatch("MESSAGE_CREATE", alert_message(second, WATCHED, &format!("AWS Health: exposed key {key}"), Shape::BotFields));
    let calls = harness
        .fake
        .wait_for("the reply to the second alert", TIMEOUT, |calls| {
            calls.iter().any(|c| c.route == CREATE_MESSAGE && c.body["message_reference"]["message_id"] == second.to_string())
        })
        .await;
    let reply = calls.iter().find(|c| c.body["message_reference"]["message_id"] == second.to_string()).unwrap();
    let content = reply.text("/content").unwrap_or_default();
    assert!(content.contains("already under investigation"), "{}", transcript(&calls));
    assert!(content.contains(&format!("<#{first}>")), "links the first alert's thread:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 1);
}

#[tokio::test]
async fn own_and_other_messages_start_nothing() {
    let harness = start_watching().await;
    let key = keycheck_core::demo::key().to_string();
    let text = format!("key {key} leaked");
    let mut own_webhook = gateway_message(1_840_000_000_000_000_002, WATCHED, webhook_author(APPLICATION_ID, "keycheck"), &text, json!([]));
    own_webhook["webhook_id"] = json!(APPLICATION_ID.to_string());
    let mut own_application = gateway_message(1_840_000_000_000_000_003, WATCHED, person(1_400_000_000_000_000_005, "someone"), &text, json!([]));
    own_application["application_id"] = json!(APPLICATION_ID.to_string());
    let mut reply = gateway_message(1_840_000_000_000_000_004, WATCHED, person(1_400_000_000_000_000_005, "analyst"), &text, json!([]));
    reply["type"] = json!(19);
    reply["message_reference"] = json!({"message_id": "1840000000000000001", "channel_id": WATCHED.to_string()});
    let mut thread_started = gateway_message(1_840_000_000_000_000_005, WATCHED, person(1_400_000_000_000_000_005, "analyst"), &text, json!([]));
    thread_started["type"] = json!(18);
    let mut direct = gateway_message(1_840_000_000_000_000_006, WATCHED, person(1_400_000_000_000_000_005, "analyst"), &text, json!([]));
    direct.as_object_mut().unwrap().remove("guild_id");
    let messages = [
        gateway_message(1_840_000_000_000_000_001, WATCHED, keycheck_author(), &text, json!([])),
        own_webhook,
        own_application,
        reply,
        thread_started,
        direct,
        gateway_message(1_840_000_000_000_000_007, ELSEWHERE, person(1_400_000_000_000_000_005, "analyst"), &text, json!([])),
        gateway_message(1_840_000_000_000_000_008, WATCHED, person(1_400_000_000_000_000_005, "analyst"), "no key here: AKIA is a prefix", json!([])),
    ];
    for message in messages {
        harness.fake.dispatch("MESSAGE_CREATE", message);
    }
    // A message that does start an investigation, dispatched last. Each message is
    // handled in its own task, so the wait after its thread gives the earlier ones time to
    // finish.
    let control = 1_840_000_000_000_000_009;
    harness.fake.dispatch("MESSAGE_CREATE", alert_message(control, WATCHED, &text, Shape::Content));
    root_in_thread(&harness, control).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let calls = harness.fake.chat_calls();
    let threads: Vec<&Call> = calls.iter().filter(|c| c.route == START_THREAD).collect();
    assert_eq!(threads.len(), 1, "only the control message started a thread:\n{}", transcript(&calls));
    assert_eq!(threads[0].path_id(3), Some(control), "{}", transcript(&calls));
    assert!(!calls.iter().any(|c| c.body.get("message_reference").is_some()), "no message got a reply:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 1);
    assert_ne!(BOT_USER_ID, APPLICATION_ID, "the own-user and own-application cases test different IDs");
}
