//! `/keycheck` on Discord end to end. Correctly signed interactions go to the bot's real
//! interactions endpoint, the bot runs the playbook on the demo evidence, and the fake
//! Discord REST API records what the bot sends through serenity's client and rate
//! limiter. A failing test prints every call the fake received.

use std::collections::BTreeSet;
use std::time::Duration;

use keycheck_core::demo;
use keycheck_tests::discord_api::{
    APPLICATION_ID, Call, DiscordHarness, Failure, FakeDiscord, GUILD_ID, channel, command_interaction, interaction_token,
    keycheck_options, transcript,
};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);
const CHANNEL: u64 = 1_200_000_000_000_000_001;
const USER: u64 = 1_400_000_000_000_000_001;

const CALLBACK: &str = "POST /interactions/{id}/{token}/callback";
const EDIT_ORIGINAL: &str = "PATCH /webhooks/{id}/{token}/messages/@original";
const FOLLOWUP: &str = "POST /webhooks/{id}/{token}";
const START_THREAD: &str = "POST /channels/{id}/messages/{id}/threads";
const CREATE_MESSAGE: &str = "POST /channels/{id}/messages";

/// Returns every text of a message body (content, titles, descriptions, fields,
/// footers), one a line.
fn message_text(body: &Value) -> String {
    let mut lines = Vec::new();
    collect_text(body, &mut lines);
    lines.join("\n")
}

fn collect_text(value: &Value, lines: &mut Vec<String>) {
    match value {
        Value::String(text) => lines.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_text(item, lines)),
        Value::Object(map) => map.values().for_each(|item| collect_text(item, lines)),
        _ => {}
    }
}

/// Returns the step number of a step message, from its embed title `… Step N. …`.
fn step_number(call: &Call) -> Option<u8> {
    let title = call.text("/embeds/0/title")?;
    let rest = title.split("Step ").nth(1)?;
    rest.split('.').next()?.parse().ok()
}

/// Waits for the last edit of the original response: the verdict.
async fn wait_verdict(harness: &DiscordHarness) -> Vec<Call> {
    harness
        .fake
        .wait_for("the verdict edit", TIMEOUT, |calls| {
            calls
                .iter()
                .any(|c| c.route == EDIT_ORIGINAL && c.text("/embeds/0/title").is_some_and(|t| t.contains("COMPROMISED")))
        })
        .await
}

#[tokio::test]
async fn command_defers_threads_steps_and_edits() {
    let harness = DiscordHarness::start("").await;
    let key = demo::key().to_string();
    let interaction_id = 1_500_000_000_000_000_001;

    let response = harness
        .interaction(&command_interaction(interaction_id, USER, &[], CHANNEL, keycheck_options(&key, Some("7d"))))
        .await;
    assert_eq!(response.status, 202, "{response:?}");
    assert!(response.elapsed < Duration::from_secs(3), "responded after {:?}", response.elapsed);

    wait_verdict(&harness).await;
    let chat = harness.fake.chat_calls();
    let shown = transcript(&chat);

    // The deferral, the root, the thread, ten steps, the diagnosis, the verdict: nothing
    // else, nothing twice, in this order.
    let routes: Vec<&str> = chat.iter().map(|c| c.route.as_str()).collect();
    let mut expected = vec![CALLBACK, EDIT_ORIGINAL, START_THREAD];
    expected.extend([CREATE_MESSAGE; 11]);
    expected.push(EDIT_ORIGINAL);
    assert_eq!(routes, expected, "{shown}");

    let deferral = &chat[0];
    assert_eq!(deferral.body, json!({"type": 5}), "a deferred channel message:\n{shown}");
    assert_eq!(deferral.path_id(1), Some(interaction_id), "{shown}");
    assert!(deferral.path.contains(&interaction_token(interaction_id)), "{shown}");
    assert!(chat.iter().all(|c| c.status < 300), "every call succeeded:\n{shown}");

    let root = &chat[1];
    assert_eq!(root.path_id(1), Some(APPLICATION_ID), "{shown}");
    let root_text = message_text(&root.body);
    assert!(root_text.contains(&key), "the root names the key:\n{root_text}");
    assert!(root_text.contains(demo::account_id()), "the root names the account:\n{root_text}");
    assert!(root_text.contains(&format!("<@{USER}>")), "the root names who asked:\n{root_text}");
    assert_eq!(root.body["allowed_mentions"], json!({"parse": []}), "nobody is pinged:\n{shown}");
    let root_id: u64 = root.response["id"].as_str().unwrap().parse().unwrap();

    // The thread starts from the response message, in the command's channel.
    let thread = &chat[2];
    assert_eq!(thread.path_id(1), Some(CHANNEL), "{shown}");
    assert_eq!(thread.path_id(3), Some(root_id), "the thread starts from the response:\n{shown}");
    assert!(thread.text("/name").unwrap_or_default().contains(&key), "{shown}");
    let thread_id: u64 = thread.response["id"].as_str().unwrap().parse().unwrap();

    // Every message is in the thread: step 0 first, then 1–9 once each in completion order.
    let messages = &chat[3..14];
    for message in messages {
        assert_eq!(message.path_id(1), Some(thread_id), "{shown}");
        assert!(message.body["embeds"].as_array().is_some_and(|e| !e.is_empty()), "each message has an embed:\n{shown}");
    }
    let steps: Vec<Option<u8>> = messages[..10].iter().map(step_number).collect();
    assert_eq!(steps[0], Some(0), "{shown}");
    let rest: BTreeSet<u8> = steps[1..].iter().map(|s| s.expect("a numbered step message")).collect();
    assert_eq!(rest, (1..=9).collect::<BTreeSet<u8>>(), "{shown}");
    for message in &messages[..10] {
        let title = message.text("/embeds/0/title").unwrap();
        assert!(title.contains(&format!("Step {}. ", step_number(message).unwrap())), "numbered and titled: {title}");
    }
    let diagnosis = message_text(&messages[10].body);
    assert!(diagnosis.contains("Diagnosis: compromised"), "{diagnosis}");

    // The original response is edited with the verdict and the severity.
    let verdict = &chat[14];
    let title = verdict.text("/embeds/0/title").unwrap_or_default();
    assert!(title.contains("COMPROMISED"), "{title}");
    assert!(title.contains("CRITICAL") || title.contains("HIGH"), "{title}");
    assert_eq!(harness.server.bot.investigations_started(), 1);
}

#[tokio::test]
async fn malformed_key_gets_ephemeral_error_only() {
    let harness = DiscordHarness::start("").await;
    let cases = [
        (keycheck_options("AKIAIOSFODNN7EXAMPL", None), "has 19 characters"),
        (keycheck_options("AIDACKCEVSQ6C2EXAMPLE", None), "an IAM user ID"),
        (keycheck_options("AKIAIOSFODNN7EXAMPLE", Some("forever")), "window forever is not a length"),
    ];
    for (index, (options, _)) in cases.iter().enumerate() {
        let id = 1_500_000_000_000_000_100 + index as u64;
        let response = harness.interaction(&command_interaction(id, USER, &[], CHANNEL, options.clone())).await;
        assert_eq!(response.status, 202, "{options}: {response:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let chat = harness.fake.chat_calls();
    let shown = transcript(&chat);
    assert_eq!(chat.len(), cases.len(), "one response per command and nothing else:\n{shown}");
    for (call, (_, expected)) in chat.iter().zip(cases.iter()) {
        assert_eq!(call.route, CALLBACK, "{shown}");
        assert_eq!(call.body["type"], 4, "a message response:\n{shown}");
        assert_eq!(call.body["data"]["flags"], 64, "ephemeral:\n{shown}");
        let content = call.text("/data/content").unwrap_or_default();
        assert!(content.contains(expected), "expected {expected:?} in {content:?}");
    }
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn pasted_secret_warned_never_echoed() {
    let harness = DiscordHarness::start("").await;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let options = keycheck_options(&format!("{} {secret}", demo::key()), None);
    let response = harness.interaction(&command_interaction(1_500_000_000_000_000_200, USER, &[], CHANNEL, options)).await;
    assert_eq!(response.status, 202, "{response:?}");

    let calls = harness
        .fake
        .wait_for("the verdict edit", TIMEOUT, |calls| {
            calls.iter().any(|c| c.route == "PATCH /channels/{id}/messages/{id}" && message_text(&c.body).contains("COMPROMISED"))
        })
        .await;
    let shown = transcript(&calls);
    let warning = calls.iter().find(|c| c.route == CALLBACK).expect("the ephemeral warning");
    assert_eq!(warning.body["data"]["flags"], 64, "the warning is ephemeral, so the command stays private:\n{shown}");
    assert!(warning.text("/data/content").unwrap_or_default().contains("treat it as exposed"), "{shown}");
    assert!(!calls.iter().any(|c| c.route == EDIT_ORIGINAL), "the ephemeral warning is not the root:\n{shown}");
    let root = calls.iter().find(|c| c.route == CREATE_MESSAGE).expect("a root message");
    assert_eq!(root.path_id(1), Some(CHANNEL), "the root goes to the channel:\n{shown}");
    for call in &calls {
        assert!(!call.body.to_string().contains("wJalrXUtnFEMI"), "the secret was sent:\n{shown}");
    }
}

#[tokio::test]
async fn second_command_links_first_thread() {
    let harness = DiscordHarness::start("").await;
    let key = demo::key().to_string();
    harness
        .interaction(&command_interaction(1_500_000_000_000_000_300, USER, &[], CHANNEL, keycheck_options(&key, None)))
        .await;
    let calls = harness
        .fake
        .wait_for("the first thread", TIMEOUT, |calls| calls.iter().any(|c| c.route == START_THREAD))
        .await;
    let thread_id = calls.iter().find(|c| c.route == START_THREAD).unwrap().response["id"].as_str().unwrap().to_string();

    let second = 1_500_000_000_000_000_301;
    harness
        .interaction(&command_interaction(second, USER, &[], CHANNEL, keycheck_options(&key.to_lowercase(), None)))
        .await;
    let token = interaction_token(second);
    let calls = harness
        .fake
        .wait_for("the link to the first thread", TIMEOUT, |calls| {
            calls.iter().any(|c| c.route == EDIT_ORIGINAL && c.path.contains(&token))
        })
        .await;
    let link = calls.iter().find(|c| c.route == EDIT_ORIGINAL && c.path.contains(&token)).unwrap();
    let content = link.text("/content").unwrap_or_default();
    assert!(content.contains("already under investigation"), "{}", transcript(&calls));
    assert!(content.contains(&format!("<#{thread_id}>")), "links the first thread: {content}");
    wait_verdict(&harness).await;
    let threads = harness.fake.calls().iter().filter(|c| c.route == START_THREAD).count();
    assert_eq!(threads, 1, "{}", transcript(&harness.fake.calls()));
    assert_eq!(harness.server.bot.investigations_started(), 1);
}

#[tokio::test]
async fn rejected_outside_allowed_channels_and_roles() {
    let allowed_channel = 1_200_000_000_000_000_009;
    let allowed_role = 1_600_000_000_000_000_001;
    let table = format!("allowed_channels = [\"{allowed_channel}\"]\nallowed_roles = [\"{allowed_role}\"]\n");
    let harness = DiscordHarness::start(&table).await;
    let key = demo::key().to_string();

    harness
        .interaction(&command_interaction(1_500_000_000_000_000_400, USER, &[allowed_role], CHANNEL, keycheck_options(&key, None)))
        .await;
    harness
        .interaction(&command_interaction(1_500_000_000_000_000_401, USER, &[7], allowed_channel, keycheck_options(&key, None)))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let chat = harness.fake.chat_calls();
    let shown = transcript(&chat);
    assert_eq!(chat.len(), 2, "{shown}");
    let channel_refusal = chat[0].text("/data/content").unwrap_or_default();
    assert!(channel_refusal.contains("not enabled in this channel"), "{shown}");
    assert!(channel_refusal.contains(&format!("<#{allowed_channel}>")), "{shown}");
    let role_refusal = chat[1].text("/data/content").unwrap_or_default();
    assert!(role_refusal.contains("not allowed to run /keycheck"), "{shown}");
    for call in &chat {
        assert_eq!(call.body["data"]["flags"], 64, "{shown}");
    }
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn rate_limited_messages_retried_in_order() {
    let harness = DiscordHarness::start("").await;
    harness.fake.fail_next(CREATE_MESSAGE, 3, Failure::RateLimited { retry_after: 0.2 });
    harness.fake.fail_next(START_THREAD, 1, Failure::RateLimited { retry_after: 0.1 });
    harness
        .interaction(&command_interaction(1_500_000_000_000_000_500, USER, &[], CHANNEL, keycheck_options(demo::key().as_str(), None)))
        .await;
    wait_verdict(&harness).await;

    let chat = harness.fake.chat_calls();
    let shown = transcript(&chat);
    let limited = chat.iter().filter(|c| c.status == 429).count();
    assert_eq!(limited, 4, "{shown}");
    let posted: Vec<&Call> = chat.iter().filter(|c| c.route == CREATE_MESSAGE && c.status == 200).collect();
    assert_eq!(posted.len(), 11, "nothing dropped:\n{shown}");
    let steps: Vec<Option<u8>> = posted[..10].iter().map(|c| step_number(c)).collect();
    assert_eq!(steps[0], Some(0), "{shown}");
    assert!(steps.iter().all(Option::is_some), "{shown}");
    assert!(message_text(&posted[10].body).contains("Diagnosis"), "the diagnosis comes last:\n{shown}");
}

#[tokio::test]
async fn ping_gets_pong() {
    let harness = DiscordHarness::start("").await;
    let ping = json!({"type": 1, "id": "1500000000000000600", "application_id": APPLICATION_ID.to_string(), "token": "ping-token", "version": 1});
    let response = harness.interaction(&ping).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json(), json!({"type": 1}));
    assert!(harness.fake.chat_calls().is_empty(), "{}", transcript(&harness.fake.chat_calls()));
}

#[tokio::test]
async fn start_registers_command_per_guild() {
    let harness = DiscordHarness::start(&format!("guilds = [\"{GUILD_ID}\"]\n")).await;
    let calls = harness.fake.calls();
    let shown = transcript(&calls);
    let registration = calls
        .iter()
        .find(|c| c.route == "PUT /applications/{id}/guilds/{id}/commands")
        .unwrap_or_else(|| panic!("no guild registration:\n{shown}"));
    assert_eq!(registration.path_id(1), Some(APPLICATION_ID), "{shown}");
    assert_eq!(registration.path_id(3), Some(GUILD_ID), "{shown}");
    let command = &registration.body[0];
    assert_eq!(command["name"], "keycheck", "{shown}");
    let options: Vec<(&str, bool)> = command["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["required"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(options, [("key", true), ("window", false)], "{shown}");
    assert!(!calls.iter().any(|c| c.route == "PUT /applications/{id}/commands"), "not global too:\n{shown}");

    let global = DiscordHarness::start("").await;
    let calls = global.fake.calls();
    assert!(calls.iter().any(|c| c.route == "PUT /applications/{id}/commands"), "{}", transcript(&calls));
    assert!(!calls.iter().any(|c| c.route.contains("/guilds/")), "{}", transcript(&calls));
    assert!(!calls.iter().any(|c| c.route == FOLLOWUP), "{}", transcript(&calls));
}

#[tokio::test]
async fn command_in_thread_posts_in_that_thread() {
    let harness = DiscordHarness::start("").await;
    let thread = 1_210_000_000_000_000_001;
    let mut interaction = command_interaction(1_500_000_000_000_000_700, USER, &[], thread, keycheck_options(demo::key().as_str(), None));
    interaction["channel"] = channel(thread, Some(CHANNEL));
    harness.interaction(&interaction).await;
    wait_verdict(&harness).await;

    let chat = harness.fake.chat_calls();
    let shown = transcript(&chat);
    assert!(!chat.iter().any(|c| c.route == START_THREAD), "Discord starts no thread inside a thread:\n{shown}");
    let posts: Vec<&Call> = chat.iter().filter(|c| c.route == CREATE_MESSAGE).collect();
    assert_eq!(posts.len(), 11, "{shown}");
    for post in posts {
        assert_eq!(post.path_id(1), Some(thread), "{shown}");
    }
}

#[tokio::test]
async fn command_over_gateway_follows_same_path() {
    let harness = DiscordHarness::start_with(FakeDiscord::start().await, "mode = \"gateway\"\n", "[evidence]\nsource = \"demo\"\n").await;
    harness.fake.wait_ready(TIMEOUT).await;
    let identify = harness.fake.calls().into_iter().find(|c| c.route == "GATEWAY IDENTIFY").unwrap();
    assert_eq!(identify.body["d"]["intents"], 0, "no intents without watched channels");

    let interaction = command_interaction(1_500_000_000_000_000_800, USER, &[], CHANNEL, keycheck_options(demo::key().as_str(), None));
    harness.fake.dispatch("INTERACTION_CREATE", interaction);
    wait_verdict(&harness).await;

    let chat = harness.fake.chat_calls();
    let routes: Vec<&str> = chat.iter().map(|c| c.route.as_str()).collect();
    let mut expected = vec![CALLBACK, EDIT_ORIGINAL, START_THREAD];
    expected.extend([CREATE_MESSAGE; 11]);
    expected.push(EDIT_ORIGINAL);
    assert_eq!(routes, expected, "{}", transcript(&chat));
    assert_eq!(chat[0].body, json!({"type": 5}), "{}", transcript(&chat));
}
