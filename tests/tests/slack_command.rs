//! `/keycheck` end to end: signed requests to the bot's real HTTP listener, the bot
//! running the playbook on the demo evidence, and the fake Slack Web API recording what
//! the bot posts. A failing test prints every call the fake received.

use std::collections::BTreeSet;
use std::time::Duration;

use keycheck_core::demo;
use keycheck_tests::slack_api::{Call, Failure, SlackHarness, transcript};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const CHANNEL: &str = "C0INCIDENT";
const USER: &str = "U0ALICE";

/// Returns the text of every block of a posted message, one a line.
fn blocks_text(call: &Call) -> String {
    let mut lines = Vec::new();
    collect_text(call.body.get("blocks").unwrap_or(&Value::Null), &mut lines);
    lines.join("\n")
}

fn collect_text(value: &Value, lines: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get("text") {
                lines.push(text.clone());
            }
            map.values().for_each(|item| collect_text(item, lines));
        }
        Value::Array(items) => items.iter().for_each(|item| collect_text(item, lines)),
        _ => {}
    }
}

/// Waits for the root message's update, the last call of a finished run.
async fn wait_finished(harness: &SlackHarness) -> Vec<Call> {
    harness
        .fake
        .wait_for("the root message update", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.update"))
        .await
}

/// Returns the step number of a step reply, from its notification text `Step N. …`.
fn step_number(call: &Call) -> Option<u8> {
    let text = call.field("text")?;
    let rest = text.strip_prefix("Step ")?;
    rest.split('.').next()?.parse().ok()
}

#[tokio::test]
async fn command_posts_root_steps_diagnosis_update() {
    let harness = SlackHarness::start("").await;
    let key = demo::key().to_string();

    let answer = harness.command(&format!("{key} --window 7d"), USER, CHANNEL, "t.1").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.is_empty(), "an accepted command is acknowledged with an empty body: {answer:?}");
    assert!(answer.elapsed < Duration::from_secs(3), "acknowledged after {:?}", answer.elapsed);

    let calls = wait_finished(&harness).await;
    let chat: Vec<Call> = calls.into_iter().filter(|c| c.method != "auth.test").collect();
    let shown = transcript(&chat);

    // Root message, ten step replies, the diagnosis, the update: nothing else, nothing twice.
    let methods: Vec<&str> = chat.iter().map(|c| c.method.as_str()).collect();
    let mut expected = vec!["chat.postMessage"; 12];
    expected.push("chat.update");
    assert_eq!(methods, expected, "{shown}");

    let root = &chat[0];
    let root_ts = root.answer["ts"].as_str().expect("root ts").to_string();
    assert_eq!(root.field("channel"), Some(CHANNEL), "{shown}");
    assert_eq!(root.field("thread_ts"), None, "the root message starts the thread:\n{shown}");
    let root_text = blocks_text(root);
    assert!(root_text.contains(&key), "root names the key:\n{root_text}");
    assert!(root_text.contains(demo::account_id()), "root names the account:\n{root_text}");
    assert!(root_text.contains(&format!("<@{USER}>")), "root names who asked:\n{root_text}");

    // Every reply is in the root's thread, and the fake's ts values rise in post order.
    let replies = &chat[1..12];
    for reply in replies {
        assert_eq!(reply.field("thread_ts"), Some(root_ts.as_str()), "{shown}");
        assert_eq!(reply.field("channel"), Some(CHANNEL), "{shown}");
    }
    let posted_ts: Vec<&str> = chat[..12].iter().map(|c| c.answer["ts"].as_str().unwrap()).collect();
    let mut sorted = posted_ts.clone();
    sorted.sort();
    assert_eq!(posted_ts, sorted, "{shown}");

    // Steps: step 0 first (the others need its account), then 1–9 once each in completion order.
    let steps: Vec<Option<u8>> = replies[..10].iter().map(step_number).collect();
    assert_eq!(steps[0], Some(0), "{shown}");
    let rest: BTreeSet<u8> = steps[1..].iter().map(|s| s.expect("a numbered step reply")).collect();
    assert_eq!(rest, (1..=9).collect::<BTreeSet<u8>>(), "{shown}");
    for reply in &replies[..10] {
        let text = blocks_text(reply);
        assert!(text.contains(&format!("*Step {}.", step_number(reply).unwrap())), "numbered and titled:\n{text}");
    }

    let diagnosis = &replies[10];
    assert!(diagnosis.field("text").unwrap_or_default().starts_with("Diagnosis: compromised"), "{shown}");

    // The update replaces the root message with the verdict and severity.
    let update = &chat[12];
    assert_eq!(update.field("ts"), Some(root_ts.as_str()), "{shown}");
    assert_eq!(update.field("channel"), Some(CHANNEL), "{shown}");
    let update_text = blocks_text(update);
    assert!(update_text.contains("COMPROMISED"), "{update_text}");
    let severity = update_text.to_lowercase();
    assert!(severity.contains("· critical") || severity.contains("· high"), "{update_text}");
    assert_eq!(harness.server.bot.investigations_started(), 1);
}

#[tokio::test]
async fn help_is_ephemeral_and_posts_nothing() {
    let harness = SlackHarness::start("").await;
    for text in ["help", ""] {
        let answer = harness.command(text, USER, CHANNEL, &format!("t.help.{text}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let body = answer.json();
        assert_eq!(body["response_type"], "ephemeral", "{answer:?}");
        assert!(answer.body.contains("--window"), "{answer:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(harness.fake.chat_calls().is_empty(), "{}", transcript(&harness.fake.chat_calls()));
}

#[tokio::test]
async fn malformed_key_gets_ephemeral_error() {
    let harness = SlackHarness::start("").await;
    let cases = [
        ("AKIAIOSFODNN7EXAMPL", "has 19 characters"),
        ("AIDACKCEVSQ6C2EXAMPLE", "an IAM user ID"),
        ("AKIAIOSFODNN7EXAMPLE --window forever", "is not a length"),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let answer = harness.command(text, USER, CHANNEL, &format!("t.bad.{index}")).await;
        assert_eq!(answer.status, 200, "{text}: {answer:?}");
        assert_eq!(answer.json()["response_type"], "ephemeral", "{text}: {answer:?}");
        assert!(answer.body.contains(expected), "{text}: expected {expected:?} in {answer:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(harness.fake.chat_calls().is_empty(), "{}", transcript(&harness.fake.chat_calls()));
}

#[tokio::test]
async fn pasted_secret_warned_never_echoed() {
    let harness = SlackHarness::start("").await;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let answer = harness.command(&format!("{} {secret}", demo::key()), USER, CHANNEL, "t.secret").await;
    assert_eq!(answer.json()["response_type"], "ephemeral", "{answer:?}");
    assert!(answer.body.contains("treat it as exposed"), "{answer:?}");
    assert!(!answer.body.contains(secret), "{answer:?}");

    let calls = wait_finished(&harness).await;
    for call in &calls {
        assert!(!call.body.to_string().contains(secret), "the secret was sent:\n{}", transcript(&calls));
        assert!(!call.body.to_string().contains("wJalrXUtnFEMI"), "{}", transcript(&calls));
    }
}

#[tokio::test]
async fn refused_outside_allowed_channels_and_users() {
    let harness = SlackHarness::start("allowed_channels = [\"C0SECURITY\"]\nallowed_users = [\"U0ALICE\"]\n").await;
    let key = demo::key().to_string();

    let answer = harness.command(&key, USER, "C0RANDOM", "t.channel").await;
    assert_eq!(answer.json()["response_type"], "ephemeral", "{answer:?}");
    assert!(answer.body.contains("not enabled in this channel"), "{answer:?}");
    assert!(answer.body.contains("<#C0SECURITY>"), "{answer:?}");

    let answer = harness.command(&key, "U0MALLORY", "C0SECURITY", "t.user").await;
    assert_eq!(answer.json()["response_type"], "ephemeral", "{answer:?}");
    assert!(answer.body.contains("not allowed to run /keycheck"), "{answer:?}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(harness.fake.chat_calls().is_empty(), "{}", transcript(&harness.fake.chat_calls()));
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn user_group_member_allowed_others_refused() {
    let harness = SlackHarness::start("allowed_user_groups = [\"S0RESPONDERS\"]\n").await;
    harness.fake.set_user_group("S0RESPONDERS", &["U0BOB"]);
    let key = demo::key().to_string();

    let answer = harness.command(&key, "U0MALLORY", CHANNEL, "t.group.1").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let calls = harness
        .fake
        .wait_for("the refusal", TIMEOUT, |calls| calls.iter().any(|c| c.method == "response_url"))
        .await;
    let refusal = calls.iter().find(|c| c.method == "response_url").unwrap();
    assert_eq!(refusal.body["response_type"], "ephemeral", "{}", transcript(&calls));
    assert!(refusal.body.to_string().contains("not allowed to run /keycheck"), "{}", transcript(&calls));
    assert!(calls.iter().any(|c| c.method == "usergroups.users.list" && c.field("usergroup") == Some("S0RESPONDERS")));
    assert!(!calls.iter().any(|c| c.method == "chat.postMessage"), "{}", transcript(&calls));

    harness.command(&key, "U0BOB", CHANNEL, "t.group.2").await;
    let calls = wait_finished(&harness).await;
    let lookups = calls.iter().filter(|c| c.method == "usergroups.users.list").count();
    assert_eq!(lookups, 1, "group members are cached:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 1);
}

#[tokio::test]
async fn not_in_channel_explains_invite() {
    let harness = SlackHarness::start("").await;
    harness.fake.fail_next("chat.postMessage", 1, Failure::Error("not_in_channel".to_string()));
    let answer = harness.command(&demo::key().to_string(), USER, "G0PRIVATE", "t.invite").await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let calls = harness
        .fake
        .wait_for("the invite notice", TIMEOUT, |calls| calls.iter().any(|c| c.method == "response_url"))
        .await;
    let notice = calls.iter().find(|c| c.method == "response_url").unwrap();
    let text = notice.body.to_string();
    assert!(text.contains("/invite @keycheck"), "{}", transcript(&calls));
    assert!(text.contains("not_in_channel"), "{}", transcript(&calls));
    assert_eq!(notice.body["response_type"], "ephemeral");
    assert_eq!(harness.server.bot.investigations_started(), 0);

    // After the invitation, the same command runs instead of linking to the failed attempt.
    harness.command(&demo::key().to_string(), USER, "G0PRIVATE", "t.invite.2").await;
    let calls = wait_finished(&harness).await;
    assert_eq!(harness.server.bot.investigations_started(), 1, "{}", transcript(&calls));
}

#[tokio::test]
async fn rate_limited_replies_all_arrive_in_order() {
    let harness = SlackHarness::start("").await;
    harness.fake.fail_next("chat.postMessage", 2, Failure::RateLimited { retry_after: Some(1) });
    let started = std::time::Instant::now();
    harness.command(&demo::key().to_string(), USER, CHANNEL, "t.429").await;

    let calls = wait_finished(&harness).await;
    let posts: Vec<&Call> = calls.iter().filter(|c| c.method == "chat.postMessage").collect();
    let shown = transcript(&calls);
    assert_eq!(posts.iter().filter(|c| c.status == 429).count(), 2, "{shown}");
    let delivered: Vec<&&Call> = posts.iter().filter(|c| c.status == 200).collect();
    assert_eq!(delivered.len(), 12, "root, ten steps and the diagnosis all arrive:\n{shown}");
    assert!(started.elapsed() >= Duration::from_secs(2), "the bot waited Retry-After twice");

    // The two 429s hit the root message; it was sent again until it arrived, before any reply.
    assert_eq!(posts[0].status, 429, "{shown}");
    assert_eq!(posts[1].status, 429, "{shown}");
    assert_eq!(posts[2].field("thread_ts"), None, "{shown}");
    let root_ts = posts[2].answer["ts"].as_str().unwrap();
    let steps: Vec<u8> = delivered[1..11].iter().map(|c| step_number(c).expect("step reply")).collect();
    assert_eq!(steps[0], 0, "{shown}");
    assert_eq!(steps.iter().collect::<BTreeSet<_>>().len(), 10, "{shown}");
    for reply in &delivered[1..] {
        assert_eq!(reply.field("thread_ts"), Some(root_ts), "{shown}");
    }
}

#[tokio::test]
async fn rate_limited_step_retried_without_header() {
    let harness = SlackHarness::start("").await;
    harness.command(&demo::key().to_string(), USER, CHANNEL, "t.429b").await;
    harness
        .fake
        .wait_for("the root message", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.postMessage"))
        .await;
    harness.fake.fail_next("chat.postMessage", 2, Failure::RateLimited { retry_after: None });

    let calls = wait_finished(&harness).await;
    let delivered = calls.iter().filter(|c| c.method == "chat.postMessage" && c.status == 200).count();
    assert_eq!(delivered, 12, "{}", transcript(&calls));
}

#[tokio::test]
async fn second_command_links_running_thread() {
    let harness = SlackHarness::start("").await;
    let key = demo::key().to_string();
    harness.command(&key, USER, CHANNEL, "t.dup.1").await;
    let calls = wait_finished(&harness).await;
    let root_ts = calls.iter().find(|c| c.method == "chat.postMessage").unwrap().answer["ts"].as_str().unwrap().to_string();

    let answer = harness.command(&key, "U0BOB", "C0OTHER", "t.dup.2").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let calls = harness
        .fake
        .wait_for("the duplicate link", TIMEOUT, |calls| calls.iter().any(|c| c.method == "response_url"))
        .await;
    let link = calls.iter().find(|c| c.method == "response_url").unwrap().body.to_string();
    assert!(link.contains("already under investigation"), "{}", transcript(&calls));
    assert!(link.contains(&format!("p{}", root_ts.replace('.', ""))), "links the thread {root_ts}:\n{}", transcript(&calls));
    assert!(calls.iter().any(|c| c.method == "chat.getPermalink" && c.field("message_ts") == Some(root_ts.as_str())));
    assert_eq!(harness.server.bot.investigations_started(), 1);
    assert_eq!(calls.iter().filter(|c| c.method == "chat.postMessage").count(), 12, "{}", transcript(&calls));
}

#[tokio::test]
async fn redelivered_command_runs_once() {
    let harness = SlackHarness::start("").await;
    for _ in 0..3 {
        harness.command(&demo::key().to_string(), USER, CHANNEL, "t.same").await;
    }
    let calls = wait_finished(&harness).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(harness.server.bot.investigations_started(), 1, "{}", transcript(&calls));
    assert!(!harness.fake.calls().iter().any(|c| c.method == "response_url"), "a redelivery is silent");
}

#[tokio::test]
async fn healthz_answers_without_signature() {
    let harness = SlackHarness::start("").await;
    let response = harness.http.get(harness.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
}
