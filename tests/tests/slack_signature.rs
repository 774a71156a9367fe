//! Request signatures on the bot's real HTTP listener: Slack's documented example
//! verifies, and forged, stale, replayed, truncated and unsigned requests get 401 and
//! start nothing (the fake Slack Web API records no call).

use std::time::Duration;

use keycheck_bot::slack::signature::{self, SigningSecret};
use keycheck_tests::slack_api::{SIGNING_SECRET, SlackHarness, command_body, now, sign, transcript};
use serde_json::Value;

fn corpus_vector() -> Option<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/slack/slack_signing_test_vector.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("the test vector is JSON")),
        Err(_) => {
            println!("corpus file {} not found: skipping", path.display());
            None
        }
    }
}

#[test]
fn slack_documented_example_verifies() {
    let Some(vector) = corpus_vector() else { return };
    let field = |name: &str| vector[name].as_str().unwrap_or_else(|| panic!("{name} missing from the vector")).to_string();
    let secret = SigningSecret::new(&field("signing_secret"));
    let timestamp = field("x_slack_request_timestamp");
    let body = field("raw_body");
    let expected = field("expected_x_slack_signature");

    assert_eq!(signature::sign(&secret, &timestamp, body.as_bytes()), expected);
    assert_eq!(sign(&field("signing_secret"), &timestamp, body.as_bytes()), expected, "the test signer agrees");

    let mut headers = axum::http::HeaderMap::new();
    headers.insert(signature::SIGNATURE_HEADER, expected.parse().unwrap());
    headers.insert(signature::TIMESTAMP_HEADER, timestamp.parse().unwrap());
    let at: i64 = timestamp.parse().unwrap();
    let signed = signature::check_headers(&headers, at + 10).expect("headers of the example are valid");
    assert_eq!(signature::check_body(&secret, &signed, body.as_bytes()), Ok(()));

    let mut tampered = body.clone().into_bytes();
    tampered[0] ^= 1;
    assert_eq!(signature::check_body(&secret, &signed, &tampered), Err(signature::SignatureError::Mismatch));
    // The example's own timestamp is years old, so at any real time it is stale.
    assert_eq!(signature::check_headers(&headers, signature::unix_now()).unwrap_err(), signature::SignatureError::Stale);
}

/// One rejected request: its name, path, headers and body.
struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn case(name: &'static str, path: &'static str, headers: Vec<(&'static str, String)>, body: impl Into<Vec<u8>>) -> Case {
    Case { name, path, headers, body: body.into() }
}

fn signed_headers(timestamp: &str, signature: String) -> Vec<(&'static str, String)> {
    vec![("x-slack-request-timestamp", timestamp.to_string()), ("x-slack-signature", signature)]
}

#[tokio::test]
async fn invalid_requests_rejected_and_start_nothing() {
    let harness = SlackHarness::start("watched_channels = [\"C0ALERTS\"]\n").await;
    let body = command_body("AKIARTX3GSDSRDEMOADB", "U0ALICE", "C0INCIDENT", "t.forged", &harness.fake.response_url("forged"));
    let event = serde_json::json!({
        "type": "event_callback", "team_id": "T0TEST", "event_id": "Ev0FORGED",
        "event": {"type": "message", "channel": "C0ALERTS", "ts": "1.1", "user": "U0EVE", "text": "AKIARTX3GSDSRDEMOADB leaked"}
    })
    .to_string();
    let now_text = now();
    let now_number: i64 = now_text.parse().unwrap();
    let good = sign(SIGNING_SECRET, &now_text, body.as_bytes());
    let stale = (now_number - 301).to_string();
    let future = (now_number + 600).to_string();
    let oversized = format!("{body}&padding={}", "a".repeat(2 * 1024 * 1024));

    let cases = vec![
        case("unsigned", "/slack/commands", vec![], body.clone()),
        case("signature without timestamp", "/slack/commands", vec![("x-slack-signature", good.clone())], body.clone()),
        case("timestamp without signature", "/slack/commands", vec![("x-slack-request-timestamp", now_text.clone())], body.clone()),
        case("empty signature", "/slack/commands", signed_headers(&now_text, String::new()), body.clone()),
        case("empty timestamp", "/slack/commands", signed_headers("", good.clone()), body.clone()),
        case("forged with another secret", "/slack/commands", signed_headers(&now_text, sign("not-the-secret", &now_text, body.as_bytes())), body.clone()),
        case("replayed signature with a changed body", "/slack/commands", signed_headers(&now_text, good.clone()), body.replace("U0ALICE", "U0EVE")),
        case("replayed signature on the events route", "/slack/events", signed_headers(&now_text, good.clone()), event.clone()),
        case("truncated body", "/slack/commands", signed_headers(&now_text, good.clone()), body[..body.len() / 2].to_string()),
        case("truncated signature", "/slack/commands", signed_headers(&now_text, good[..good.len() - 1].to_string()), body.clone()),
        case("signature of the body alone", "/slack/commands", signed_headers(&now_text, sign(SIGNING_SECRET, "", body.as_bytes())), body.clone()),
        case("wrong version", "/slack/commands", signed_headers(&now_text, good.replace("v0=", "v1=")), body.clone()),
        case("no version", "/slack/commands", signed_headers(&now_text, good.replace("v0=", "")), body.clone()),
        case("non-hex signature", "/slack/commands", signed_headers(&now_text, format!("v0={}", "z".repeat(64))), body.clone()),
        case("stale by one second past five minutes", "/slack/commands", signed_headers(&stale, sign(SIGNING_SECRET, &stale, body.as_bytes())), body.clone()),
        case("ten minutes in the future", "/slack/commands", signed_headers(&future, sign(SIGNING_SECRET, &future, body.as_bytes())), body.clone()),
        case("non-numeric timestamp", "/slack/commands", signed_headers("1700000000abc", sign(SIGNING_SECRET, "1700000000abc", body.as_bytes())), body.clone()),
        case("negative timestamp", "/slack/commands", signed_headers("-1", sign(SIGNING_SECRET, "-1", body.as_bytes())), body.clone()),
        case("timestamp signed but header changed", "/slack/commands", signed_headers(&(now_number - 1).to_string(), good.clone()), body.clone()),
        case("oversized body", "/slack/commands", signed_headers(&now_text, sign(SIGNING_SECRET, &now_text, oversized.as_bytes())), oversized.clone()),
        case("signed event with a forged signature", "/slack/events", signed_headers(&now_text, sign("attacker", &now_text, event.as_bytes())), event.clone()),
        case("unsigned interaction", "/slack/interactions", vec![], "payload=%7B%7D"),
        case("unsigned url_verification", "/slack/events", vec![], r#"{"type":"url_verification","challenge":"x"}"#),
    ];
    assert!(cases.len() >= 20);

    let mut failures = Vec::new();
    for case in &cases {
        let content_type = if case.path == "/slack/events" { "application/json" } else { "application/x-www-form-urlencoded" };
        let answer = harness.send_raw(case.path, content_type, &case.headers, case.body.clone()).await;
        if answer.status != 401 {
            let headers: Vec<String> = case.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            failures.push(format!("{}: sent {} {:?} with {} body bytes, got {} {:?}", case.name, case.path, headers, case.body.len(), answer.status, answer.body));
        }
    }
    assert!(failures.is_empty(), "{} requests were not rejected:\n{}", failures.len(), failures.join("\n"));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = harness.fake.chat_calls();
    assert!(calls.is_empty(), "a rejected request reached Slack:\n{}", transcript(&calls));
    assert_eq!(harness.server.bot.investigations_started(), 0);
}

#[tokio::test]
async fn signed_url_verification_returns_challenge() {
    let harness = SlackHarness::start("").await;
    let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let answer = harness.send_signed("/slack/events", "application/json", body, &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}
