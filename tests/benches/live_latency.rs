//! Live investigation latency: how close an investigation comes to its critical path when
//! every AWS call is slow, how many CloudTrail scans it runs, and which AWS calls it makes.
//!
//! A proxy in front of the moto emulator delays every AWS call by a fixed time. Each run
//! seeds a fresh incident and investigates it; the proxy records every call. The critical
//! path is computed from the data dependencies between the calls (see
//! `keycheck_tests::critical_path`), and the ratio of wall time to it says how much of the
//! possible concurrency the playbook uses: 1.0 is the best any implementation can do.
//!
//! Usage: `cargo bench -p keycheck-tests --bench live_latency -- [--delay-ms N] [--runs N]`.

use std::collections::BTreeMap;
use std::time::Duration;

use keycheck_core::evidence::live::QueryMode;
use keycheck_tests::aws::Clients;
use keycheck_tests::critical_path::{CriticalPath, LIVE_INVESTIGATION, critical_path, rounds};
use keycheck_tests::live::{self, LiveRun};
use keycheck_tests::moto::Moto;
use keycheck_tests::proxy::{Call, Fault, Proxy};
use keycheck_tests::seed;

/// The ratio of wall time to critical path the playbook aims to stay under.
const TARGET_RATIO: f64 = 1.25;

/// How the critical path is computed, as printed with the results.
const MODEL: &str = "Critical path: the longest chain of AWS calls in which each call needs the response of the one before it, \
the shortest wall time any implementation could reach. sts:GetAccessKeyInfo and sts:GetCallerIdentity come first and may overlap, \
because every other call needs credentials for the key's account. The key's record (iam:GetAccessKeyLastUsed) comes next and names the owner. \
The owner's record (GetUser, ListMFADevices, GetLoginProfile, the policy lists, ListAccessKeys) may then be read at once, then the policy documents. \
Security Hub, GuardDuty and the key-storage searches need the owner's name. Without configured regions they also search the regions CloudTrail names, once CloudTrail is read, but this benchmark configures its one region. \
The CloudTrail scans need only the account: \
the follow-up scan for minted sessions needs the first scan's result, so their calls, query polls included, count one after another. \
Pages of one request count one after another; independent requests, regions and fan-outs over known items overlap. \
\"By delays\" weighs every call by the injected delay; \"by call times\" weighs each call by the time the proxy took to respond, emulator time included. \
Wall time runs from the start of the playbook to its diagnosis. The table in keycheck_tests::critical_path lists every stage. \
Rounds number the calls as they ran: a call's round is one more than the highest round among the calls that had finished when it started, \
so the highest round is the number of calls the investigation ran one after another.";

/// The `ListAnalyzers` response of an account without an IAM Access Analyzer analyzer.
const NO_ANALYZERS: &str = r#"{"analyzers":[]}"#;

struct Options {
    delay: Duration,
    runs: usize,
}

fn options() -> Options {
    let mut options = Options {
        delay: Duration::from_millis(50),
        runs: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--delay-ms" => {
                let value = args.next().and_then(|v| v.parse().ok()).expect("--delay-ms takes a number of milliseconds");
                options.delay = Duration::from_millis(value);
            }
            "--runs" => options.runs = args.next().and_then(|v| v.parse().ok()).expect("--runs takes a number"),
            // `cargo bench` adds `--bench`; other harness flags do not apply here.
            _ => {}
        }
    }
    options
}

/// One measured investigation.
struct Measurement {
    wall: Duration,
    by_delay: CriticalPath,
    by_call_time: CriticalPath,
    scans: usize,
    calls: Vec<Call>,
    /// The round of each call, in the order of `calls`.
    rounds: Vec<usize>,
}

impl Measurement {
    fn of(run: &LiveRun, delay: Duration) -> Measurement {
        let call_time = |call: &Call| call.finished.unwrap_or(call.started).saturating_sub(call.started);
        Measurement {
            wall: run.wall,
            by_delay: critical_path(LIVE_INVESTIGATION, &run.calls, |_| delay),
            by_call_time: critical_path(LIVE_INVESTIGATION, &run.calls, call_time),
            scans: scans(&run.calls),
            calls: run.calls.clone(),
            rounds: rounds(&run.calls),
        }
    }

    fn round_count(&self) -> usize {
        self.rounds.iter().copied().max().unwrap_or(0)
    }

    fn ratio(&self, path: &CriticalPath) -> f64 {
        self.wall.as_secs_f64() / path.total.as_secs_f64().max(f64::EPSILON)
    }
}

/// Counts CloudTrail scans: Logs Insights queries started, and FilterLogEvents or
/// LookupEvents first pages (requests without a next token).
fn scans(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| match c.operation.as_str() {
            "logs:StartQuery" => true,
            "logs:FilterLogEvents" | "cloudtrail:LookupEvents" => !c.request.contains("extToken"),
            _ => false,
        })
        .count()
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn measure(moto: &Moto, query: QueryMode, options: &Options) -> Vec<Measurement> {
    let clients = Clients::new(&moto.endpoint());
    let mut measurements = Vec::new();
    // The first run warms up the emulator's backends and the client connections.
    for index in 0..=options.runs {
        let incident = seed::seed_incident(&clients).await.expect("the incident is seeded");
        let proxy = Proxy::start(&moto.endpoint()).await.expect("the proxy starts");
        proxy.set_delay(options.delay);
        // moto has no Access Analyzer and returns 500, which the SDK retries with backoff.
        // The fixed response is what an account without an analyzer returns.
        proxy.fail("access-analyzer:ListAnalyzers", Fault::Respond { status: 200, body: NO_ANALYZERS });
        let config = live::live_config(&proxy.endpoint(), &incident, query);
        let run = live::investigate(&proxy, &incident, config).await;
        if index > 0 {
            measurements.push(Measurement::of(&run, options.delay));
        }
    }
    measurements
}

fn print_runs(query: QueryMode, measurements: &[Measurement], delay: Duration) {
    println!("\n## {query:?}\n");
    println!("| run | wall | critical path (delays) | ratio | critical path (call times) | ratio | rounds | scans | AWS calls |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (index, m) in measurements.iter().enumerate() {
        println!(
            "| {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} |",
            index + 1,
            ms(m.wall),
            ms(m.by_delay.total),
            m.ratio(&m.by_delay),
            ms(m.by_call_time.total),
            m.ratio(&m.by_call_time),
            m.round_count(),
            m.scans,
            m.calls.len()
        );
    }

    let mut ratios: Vec<f64> = measurements.iter().map(|m| m.ratio(&m.by_delay)).collect();
    let mut call_ratios: Vec<f64> = measurements.iter().map(|m| m.ratio(&m.by_call_time)).collect();
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    let median_ratio = median(&mut ratios);
    let median_call_ratio = median(&mut call_ratios);
    let verdict = if median_ratio <= TARGET_RATIO { "meets" } else { "misses" };
    println!(
        "\nmedian wall / critical path: {median_ratio:.2} by delays ({verdict} the target {TARGET_RATIO}), worst {worst:.2}; {median_call_ratio:.2} by call times"
    );

    let last = measurements.last().expect("at least one run");
    let depth = last.by_delay.total.as_millis() / delay.as_millis().max(1);
    println!("\ncritical path of the last run (by delays): {}, {depth} calls one after another:", ms(last.by_delay.total));
    for stage in &last.by_delay.stages {
        println!("- {}: {} ({} calls)", stage.name, ms(stage.cost), stage.calls);
    }
    if !last.by_delay.unmodelled.is_empty() {
        println!("- operations the model does not list (counted as parallel): {:?}", last.by_delay.unmodelled);
    }

    println!("\ntimeline of the last run (from its first call), {} rounds:\n", last.round_count());
    println!("| round | start | end | operation | status |");
    println!("|---|---|---|---|---|");
    let origin = last.calls.first().map_or(Duration::ZERO, |c| c.started);
    for (call, round) in last.calls.iter().zip(&last.rounds) {
        let end = call.finished.map_or("pending".to_string(), |f| ms(f.saturating_sub(origin)));
        let status = call.status.map_or("none".to_string(), |s| s.to_string());
        println!("| {round} | {} | {end} | {} | {status} |", ms(call.started.saturating_sub(origin)), call.operation);
    }

    let mut by_operation: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &last.calls {
        *by_operation.entry(call.operation.as_str()).or_default() += 1;
    }
    println!("\nAWS calls of the last run by operation ({} in all):\n", last.calls.len());
    println!("| operation | calls |");
    println!("|---|---|");
    for (operation, count) in by_operation {
        println!("| {operation} | {count} |");
    }
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a Tokio runtime");
    runtime.block_on(async {
        let moto = Moto::start().await.unwrap_or_else(|e| panic!("{e}"));
        println!("# Live investigation latency\n");
        println!(
            "Each AWS call is delayed {} at a loopback proxy in front of moto {}; {} measured runs per query mode after one warm-up run, each on a freshly seeded incident.",
            ms(options.delay),
            keycheck_tests::moto::MOTO_VERSION,
            options.runs
        );
        println!("{MODEL}");
        for query in [QueryMode::LogsInsights, QueryMode::FilterLogEvents] {
            let measurements = measure(&moto, query, &options).await;
            print_runs(query, &measurements, options.delay);
        }
    });
}
