//! `/metrics` of `keycheck serve`, scraped over HTTP. The bot's real HTTP listener runs one
//! investigation of the demo incident from a signed `/keycheck`, while the fake Slack Web
//! API rate-limits one reply. The counters must move by exactly what that run did.
//! Then the same with `[metrics] listen` set, where `/metrics` moves to its own listener.
//!
//! The registry is process-wide, so this file contains one test per concern and compares
//! values before and after, never absolute counts of counters other tests could touch.

use std::collections::BTreeMap;
use std::time::Duration;

use keycheck_core::demo;
use keycheck_core::report::StepId;
use keycheck_tests::slack_api::{FakeSlack, Failure, SlackHarness, transcript};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Samples of one scrape, by series (`name{labels}` as encoded), and the raw text.
struct Scrape {
    samples: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    /// Returns the value of `series`, or 0 when the scrape lacks it.
    fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

/// Parses the Prometheus text format: one `series value` a line, `#` lines skipped.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample line: {line:?}"));
            let value = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
            (series.to_string(), value)
        })
        .collect()
}

/// Scrapes `url`, checking the status and the content type.
async fn scrape(http: &reqwest::Client, url: &str) -> Scrape {
    let response = http.get(url).send().await.unwrap_or_else(|error| panic!("GET {url} failed: {error}"));
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "GET {url}: content type {content_type}");
    let text = response.text().await.unwrap();
    Scrape { samples: parse(&text), text }
}

/// Scrapes until `done` returns true or [`TIMEOUT`] passes, because the bot counts a chat
/// call after the fake responded, a moment after the fake recorded it.
async fn scrape_until(http: &reqwest::Client, url: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = std::time::Instant::now();
    loop {
        let scrape = scrape(http, url).await;
        if done(&scrape) || started.elapsed() > TIMEOUT {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts that `series` rose by exactly `expected` between two scrapes.
fn assert_moved(before: &Scrape, after: &Scrape, series: &str, expected: f64) {
    let moved = after.value(series) - before.value(series);
    assert_eq!(moved, expected, "{series} moved by {moved}, expected {expected}; after the run:\n{}", after.text);
}

#[tokio::test]
async fn metrics_move_after_one_investigation() {
    let harness = SlackHarness::start("").await;
    let url = harness.url("/metrics");
    let before = scrape(&harness.http, &url).await;

    let unsigned = harness
        .http
        .post(harness.url("/slack/commands"))
        .body("command=%2Fkeycheck&text=AKIAIOSFODNN7EXAMPLE")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401, "an unsigned request is rejected");
    harness.fake.fail_next("chat.postMessage", 1, Failure::RateLimited { retry_after: Some(1) });
    let answer = harness.command(&demo::key().to_string(), "U0ALICE", "C0INCIDENT", "t.metrics").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let calls = harness
        .fake
        .wait_for("the root message update", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.update"))
        .await;
    let update = "keycheck_chat_api_calls_total{platform=\"slack\",method=\"chat.update\",outcome=\"ok\"}";
    let after = scrape_until(&harness.http, &url, |scrape| scrape.value(update) > before.value(update)).await;
    println!("Slack calls of the run:\n{}", transcript(&calls));

    assert_moved(&before, &after, "keycheck_investigations_started_total{origin=\"command\"}", 1.0);
    let rejected = "keycheck_rejected_requests_total{platform=\"slack\",reason=\"missing_signature\"}";
    assert_moved(&before, &after, rejected, 1.0);
    assert_moved(&before, &after, "keycheck_investigations_started_total{origin=\"alert\"}", 0.0);
    assert_moved(
        &before,
        &after,
        "keycheck_investigations_finished_total{origin=\"command\",verdict=\"compromised\"}",
        1.0,
    );
    assert_moved(&before, &after, "keycheck_investigations_finished_total{origin=\"command\",verdict=\"none\"}", 0.0);
    assert_eq!(after.value("keycheck_investigations_running"), 0.0, "{}", after.text);
    assert_moved(&before, &after, "keycheck_investigation_duration_seconds_count{origin=\"command\"}", 1.0);

    for step in StepId::ALL {
        let series = format!("keycheck_step_duration_seconds_count{{step=\"{}\"}}", step.name());
        assert_moved(&before, &after, &series, 1.0);
        let errors = format!("keycheck_step_errors_total{{step=\"{}\",reason=\"error\"}}", step.name());
        assert_moved(&before, &after, &errors, 0.0);
    }
    let bucket = after
        .samples
        .keys()
        .any(|series| series.starts_with("keycheck_step_duration_seconds_bucket{") && series.contains("step=\"activity\""));
    assert!(bucket, "no step duration buckets for the activity step:\n{}", after.text);

    // The root message, ten steps and the diagnosis. The first attempt got a 429.
    let posts = "keycheck_chat_api_calls_total{platform=\"slack\",method=\"chat.postMessage\",outcome=\"ok\"}";
    assert_moved(&before, &after, posts, 12.0);
    assert_moved(&before, &after, update, 1.0);
    let limited = "keycheck_chat_api_rate_limited_total{platform=\"slack\",method=\"chat.postMessage\"}";
    assert_moved(&before, &after, limited, 1.0);

    // The demo evidence calls no AWS API.
    let aws_calls: f64 = after
        .samples
        .iter()
        .filter(|(series, _)| series.starts_with("keycheck_aws_calls_total"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(aws_calls, 0.0, "{}", after.text);
}

#[tokio::test]
async fn metrics_listen_serves_separately() {
    let fake = FakeSlack::start().await;
    let extra = "[evidence]\nsource = \"demo\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let harness = SlackHarness::start_with(fake, "", extra).await;

    let on_slack_listener = harness.http.get(harness.url("/metrics")).send().await.unwrap();
    assert_eq!(on_slack_listener.status().as_u16(), 404, "/metrics must leave the Slack listener");
    let health = harness.http.get(harness.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "/healthz stays on the Slack listener for the probes");

    let config: keycheck_bot::config::Config = extra.parse().unwrap();
    let listener = keycheck_bot::metrics::start_listener(&config)
        .await
        .expect("the metrics listener binds")
        .expect("metrics.listen differs from slack.listen");
    let base = format!("http://{}", listener.addr);
    let scrape = scrape(&harness.http, &format!("{base}/metrics")).await;
    assert!(scrape.text.contains("# HELP keycheck_investigations_started_total "), "{}", scrape.text);
    let health = harness.http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
