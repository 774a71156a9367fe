//! Interaction signatures on the bot's real interactions endpoint: a correctly signed
//! interaction is served, and forged, wrong-key, truncated, unsigned, non-hex,
//! body-changed, empty-signature, stale and replayed ones get 401 and start nothing (the
//! fake Discord API records no call).

use std::time::Duration;

use ed25519_dalek::SigningKey;
use keycheck_tests::discord_api::{DiscordHarness, command_interaction, keycheck_options, now, sign, signing_key, transcript};

const CHANNEL: u64 = 1_200_000_000_000_000_001;
const USER: u64 = 1_400_000_000_000_000_001;

/// One rejected request: its name, headers and body.
struct Case {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn case(name: &'static str, headers: Vec<(&'static str, String)>, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        headers,
        body: body.into(),
    }
}

fn signed(signature: String, timestamp: &str) -> Vec<(&'static str, String)> {
    vec![("x-signature-ed25519", signature), ("x-signature-timestamp", timestamp.to_string())]
}

#[tokio::test]
async fn invalid_signatures_rejected_and_start_nothing() {
    let harness = DiscordHarness::start("").await;
    let body = command_interaction(1_500_000_000_000_000_001, USER, &[], CHANNEL, keycheck_options("AKIARTX3GSDSRDEMOADB", None)).to_string();
    let ping = r#"{"type":1,"id":"1","application_id":"1","token":"t","version":1}"#;
    let now_text = now();
    let now_number: i64 = now_text.parse().unwrap();
    let key = signing_key();
    let good = sign(&key, &now_text, body.as_bytes());
    let wrong_key = SigningKey::from_bytes(&[7; 32]);
    let forged_bytes = {
        let mut bytes = data_encoding::HEXLOWER.decode(good.as_bytes()).unwrap();
        bytes[10] ^= 0x01;
        data_encoding::HEXLOWER.encode(&bytes)
    };
    let stale = (now_number - 301).to_string();
    let future = (now_number + 600).to_string();
    let oversized = format!("{}{}", &body[..body.len() - 1], format_args!(",\"padding\":\"{}\"}}", "a".repeat(2 * 1024 * 1024)));

    let cases = vec![
        case("unsigned", vec![], body.clone()),
        case("signature without timestamp", vec![("x-signature-ed25519", good.clone())], body.clone()),
        case("timestamp without signature", vec![("x-signature-timestamp", now_text.clone())], body.clone()),
        case("empty signature", signed(String::new(), &now_text), body.clone()),
        case("empty timestamp", signed(good.clone(), ""), body.clone()),
        case("forged: one signature bit flipped", signed(forged_bytes, &now_text), body.clone()),
        case("all-zero signature", signed("0".repeat(128), &now_text), body.clone()),
        case("signed with another key", signed(sign(&wrong_key, &now_text, body.as_bytes()), &now_text), body.clone()),
        case("truncated signature", signed(good[..good.len() - 2].to_string(), &now_text), body.clone()),
        case("signature with an extra byte", signed(format!("{good}00"), &now_text), body.clone()),
        case("non-hex signature", signed("zz".repeat(64), &now_text), body.clone()),
        case("body changed after signing", signed(good.clone(), &now_text), body.replace("AKIARTX3GSDSRDEMOADB", "AKIAIOSFODNN7EXAMPLE")),
        case("truncated body", signed(good.clone(), &now_text), body[..body.len() / 2].to_string()),
        case("signature of the body alone", signed(sign(&key, "", body.as_bytes()), &now_text), body.clone()),
        case("timestamp changed after signing", signed(good.clone(), &(now_number - 1).to_string()), body.clone()),
        case("stale by one second past five minutes", signed(sign(&key, &stale, body.as_bytes()), &stale), body.clone()),
        case("ten minutes in the future", signed(sign(&key, &future, body.as_bytes()), &future), body.clone()),
        case("non-numeric timestamp", signed(sign(&key, "17e8", body.as_bytes()), "17e8"), body.clone()),
        case("oversized body", signed(sign(&key, &now_text, oversized.as_bytes()), &now_text), oversized.clone()),
        case("unsigned ping", vec![], ping),
        case("ping with another key's signature", signed(sign(&wrong_key, &now_text, ping.as_bytes()), &now_text), ping),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let response = harness.send_raw(&case.headers, case.body.clone()).await;
        if response.status != 401 {
            let headers: Vec<String> = case.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            failures.push(format!("{}: sent {headers:?} with {} body bytes, got {} {:?}", case.name, case.body.len(), response.status, response.body));
        }
    }
    assert!(failures.is_empty(), "{} requests were not rejected:\n{}", failures.len(), failures.join("\n"));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = harness.fake.chat_calls();
    assert!(calls.is_empty(), "a rejected request reached Discord:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn correctly_signed_interaction_served() {
    let harness = DiscordHarness::start("").await;
    let body = command_interaction(1_500_000_000_000_000_002, USER, &[], CHANNEL, keycheck_options("AKIAIOSFODNN7EXAMPL", None)).to_string();
    let timestamp = now();
    let response = harness.send_raw(&signed(sign(&signing_key(), &timestamp, body.as_bytes()), &timestamp), body.into_bytes()).await;
    assert_eq!(response.status, 202, "{response:?}");
    let calls = harness.fake.chat_calls();
    assert_eq!(calls.len(), 1, "the malformed key gets one ephemeral reply:\n{}", transcript(&calls));
    assert_eq!(calls[0].body["data"]["flags"], 64, "{}", transcript(&calls));
}
