//! `/metrics` after a live `/keycheck` against the moto emulator: the bot's real HTTP
//! listener, the live evidence source behind the fault-injecting proxy, and the fake Slack
//! Web API. The AWS call counters must name the operations the proxy saw, and a throttled
//! attempt that the SDK retried must show as a throttle. Needs `moto_server` on `PATH`,
//! like the other live tests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use keycheck_bot::serve::EvidenceFactory;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::{LiveConfig, QueryMode};
use keycheck_tests::live;
use keycheck_tests::proxy::{Fault, Rule};
use keycheck_tests::slack_api::{FakeSlack, SlackHarness, transcript};

/// Builds a live evidence source per investigation, as `keycheck serve` does.
struct LiveFactory(LiveConfig);

impl EvidenceFactory for LiveFactory {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
        Ok(Arc::new(live::build_evidence(self.0.clone(), investigation_id)))
    }
}

/// Returns the value of `series` in a scrape in the Prometheus text format, or 0.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_command_moves_aws_call_metrics() {
    let incident = live::seed_incident().await;
    let proxy = live::start_proxy().await;
    let config = live::live_config(&proxy.endpoint(), &incident, QueryMode::LogsInsights);
    let key = incident.leaked_key.clone();
    // The SDK retries a throttled attempt, so the call still succeeds.
    proxy.add_rule(Rule::new("iam:ListAccessKeys", Fault::Throttling).times(1));

    // The bot and its investigations run on a thread with a large stack: the dev-profile
    // Security Hub deserializer overflows a default worker stack.
    let (calls, metrics) = live::on_large_stack(move || async move {
        let fake = FakeSlack::start().await;
        let factory = Arc::new(LiveFactory(config));
        let harness = SlackHarness::start_with_evidence(fake, "", "[evidence]\nsource = \"demo\"\n", Some(factory)).await;
        let answer = harness.command(&key, "U0ALICE", "C0INCIDENT", "t.live.metrics").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let calls = harness
            .fake
            .wait_for("the root message update", Duration::from_secs(180), |calls| calls.iter().any(|c| c.method == "chat.update"))
            .await;
        let response = harness.http.get(harness.url("/metrics")).send().await.expect("the listener responds");
        (calls, response.text().await.unwrap())
    })
    .await;
    let details = format!("Slack calls:\n{}\n\nmetrics:\n{metrics}", transcript(&calls));

    assert_eq!(value(&metrics, "keycheck_investigations_started_total{origin=\"command\"}"), 1.0, "{details}");
    let finished = value(&metrics, "keycheck_investigations_finished_total{origin=\"command\",verdict=\"compromised\"}");
    assert_eq!(finished, 1.0, "{details}");

    let throttles = value(&metrics, "keycheck_aws_throttles_total{service=\"iam\",operation=\"ListAccessKeys\"}");
    assert_eq!(throttles, 1.0, "one injected throttle:\n{details}");
    let listed = value(&metrics, "keycheck_aws_calls_total{service=\"iam\",operation=\"ListAccessKeys\",outcome=\"ok\"}");
    assert!(listed >= 1.0, "the retried call succeeded:\n{details}");
    let resolved = value(&metrics, "keycheck_aws_calls_total{service=\"sts\",operation=\"GetAccessKeyInfo\",outcome=\"ok\"}");
    assert!(resolved >= 1.0, "step 0 resolves the account:\n{details}");

    // Every operation the proxy received is counted under its service and name.
    let seen: BTreeSet<String> = proxy.operations().into_iter().collect();
    assert!(seen.len() > 5, "the investigation called AWS: {seen:?}");
    for operation in &seen {
        let (service, name) = operation.split_once(':').expect("proxy operations are service:Operation");
        let labels = format!("keycheck_aws_calls_total{{service=\"{service}\",operation=\"{name}\",outcome=");
        assert!(metrics.contains(&labels), "{operation} is not counted:\n{details}");
    }
}
