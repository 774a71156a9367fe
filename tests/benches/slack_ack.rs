//! Acknowledgement latency of `/keycheck` on the bot's real HTTP listener.
//!
//! Starts the fake Slack Web API and `keycheck serve`'s HTTP listener in-process, with demo
//! evidence and a SQLite store in a temporary folder. Then it sends 200 signed `/keycheck`
//! commands one after another, each for a different access key ID, so that every one
//! starts a full investigation in the background. It prints the p50, p99 and maximum time
//! from sending a command to receiving its acknowledgement. Slack gives up after 3 seconds; the target
//! is a p99 under 100 ms. Run with `cargo bench -p keycheck-tests --bench slack_ack`.

use std::time::Duration;

use keycheck_tests::slack_api::SlackHarness;

const COMMANDS: usize = 200;

/// Returns the `index`-th test key ID: `AKIA` and 16 base32 characters.
fn key(index: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut suffix = String::new();
    let mut value = index as u64 * 2_654_435_761 + 12_345;
    for _ in 0..16 {
        suffix.push(ALPHABET[(value % 32) as usize] as char);
        value = value / 32 + 7_919 * (index as u64 + 1);
    }
    format!("AKIA{suffix}")
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let harness = SlackHarness::start("").await;
    let mut latencies = Vec::with_capacity(COMMANDS);
    for index in 0..COMMANDS {
        let answer = harness.command(&key(index), "U0BENCH", "C0BENCH", &format!("bench.{index}")).await;
        assert_eq!(answer.status, 200, "command {index} was not acknowledged: {answer:?}");
        latencies.push(answer.elapsed);
    }

    // Let the background investigations finish before the process exits.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let done = harness.fake.calls_to("chat.update").len();
        if done == COMMANDS && harness.server.bot.investigations_running() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = harness.server.bot.investigations_started();

    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    println!("slack_ack: {COMMANDS} signed /keycheck commands, one at a time, each starting an investigation");
    println!("  investigations started: {started}");
    println!("  p50  {:>8.2} ms", percentile(&latencies, 0.50).as_secs_f64() * 1000.0);
    println!("  p99  {:>8.2} ms", percentile(&latencies, 0.99).as_secs_f64() * 1000.0);
    println!("  max  {:>8.2} ms", latencies[latencies.len() - 1].as_secs_f64() * 1000.0);
    println!("  mean {:>8.2} ms", mean.as_secs_f64() * 1000.0);
    println!("  Slack's limit: 3000 ms; target p99: 100 ms");
}
