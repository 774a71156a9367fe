//! `/keycheck` against the moto emulator: the bot's real HTTP listener, the live evidence
//! source pointed at moto through the test proxy, and the fake Slack Web API recording
//! the thread. Needs `moto_server` on `PATH`, like the other live tests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use keycheck_bot::serve::EvidenceFactory;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::{LiveConfig, QueryMode};
use keycheck_tests::live;
use keycheck_tests::slack_api::{Call, FakeSlack, SlackHarness, transcript};

/// Builds a live evidence source per investigation, as `keycheck serve` does.
struct LiveFactory(LiveConfig);

impl EvidenceFactory for LiveFactory {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
        Ok(Arc::new(live::build_evidence(self.0.clone(), investigation_id)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_on_moto_posts_thread() {
    let incident = live::seed_incident().await;
    let proxy = live::start_proxy().await;
    let config = live::live_config(&proxy.endpoint(), &incident, QueryMode::LogsInsights);
    let key = incident.leaked_key.clone();

    // The bot and its investigations run on a thread with a large stack: the dev-profile
    // Security Hub deserializer overflows a default worker stack.
    let calls = live::on_large_stack(move || async move {
        let fake = FakeSlack::start().await;
        let harness = SlackHarness::start_with_evidence(fake, "", "[evidence]\nsource = \"demo\"\n", Some(Arc::new(LiveFactory(config)))).await;
        let answer = harness.command(&key, "U0ALICE", "C0INCIDENT", "t.live").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.elapsed < Duration::from_secs(3), "acknowledged after {:?}", answer.elapsed);
        harness
            .fake
            .wait_for("the root message update", Duration::from_secs(180), |calls| calls.iter().any(|c| c.method == "chat.update"))
            .await
    })
    .await;

    let chat: Vec<&Call> = calls.iter().filter(|c| c.method != "auth.test").collect();
    let shown = transcript(&calls);
    let methods: Vec<&str> = chat.iter().map(|c| c.method.as_str()).collect();
    let posts = methods.iter().filter(|m| **m == "chat.postMessage").count();
    // Root, ten steps, possibly a widening notice and re-run steps, the diagnosis.
    assert!(posts >= 12, "{shown}");
    assert_eq!(methods.last(), Some(&"chat.update"), "{shown}");
    assert_eq!(methods.iter().filter(|m| **m == "chat.update").count(), 1, "{shown}");

    let root = chat[0];
    assert_eq!(root.method, "chat.postMessage", "{shown}");
    assert!(root.field("text").unwrap_or_default().contains(&incident.leaked_key), "{shown}");
    let root_ts = root.answer["ts"].as_str().unwrap();
    for reply in &chat[1..chat.len() - 1] {
        assert_eq!(reply.field("thread_ts"), Some(root_ts), "{shown}");
    }
    let steps: BTreeSet<u8> = chat[1..]
        .iter()
        .filter_map(|c| c.field("text")?.strip_prefix("Step ")?.split('.').next()?.parse().ok())
        .collect();
    assert_eq!(steps, (0..=9).collect::<BTreeSet<u8>>(), "every step is posted:\n{shown}");
    let diagnosis = chat.iter().find(|c| c.field("text").is_some_and(|t| t.starts_with("Diagnosis:"))).expect("a diagnosis");
    assert!(diagnosis.field("text").unwrap().contains("compromised"), "the seeded incident is a compromise:\n{shown}");
    let update = chat.last().unwrap();
    assert_eq!(update.field("ts"), Some(root_ts), "{shown}");
}
