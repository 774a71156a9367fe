//! Runs whole live investigations against the emulator through the proxy, and keeps what
//! a test compares: the outcome, every AWS call the proxy saw, and the evidence source's
//! own call counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keycheck_core::evidence::live::{LiveConfig, LiveEvidence, OperationCalls, QueryMode};
use keycheck_core::geo::Geo;
use keycheck_core::playbook::{self, Investigation, Origin, Outcome, PlaybookConfig};
use keycheck_core::AccessKeyId;

use crate::aws::{Clients, REGION};
use crate::moto;
use crate::outcome::{PrintOnFailure, describe};
use crate::proxy::{Call, Proxy, format_calls};
use crate::seed::{self, Incident};

/// How long one AWS call may take, retries included, in tests. Far above the emulator's
/// latency and short enough that a hung call fails its step quickly.
pub const TEST_OPERATION_TIMEOUT: Duration = Duration::from_secs(4);

/// How long one step may take in tests; above every AWS timeout, so that a step reports
/// the AWS failure rather than its own timeout.
pub const TEST_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// One finished live investigation.
#[derive(Debug)]
pub struct LiveRun {
    /// The incident investigated.
    pub incident: Incident,
    /// The query mode used.
    pub query: QueryMode,
    /// The playbook's outcome.
    pub outcome: Outcome,
    /// Every AWS call the proxy received during the investigation.
    pub calls: Vec<Call>,
    /// The evidence source's own counts of its calls.
    pub call_stats: Vec<OperationCalls>,
    /// The investigation's wall time.
    pub wall: Duration,
}

impl LiveRun {
    /// Returns a guard that prints the incident, the calls and the report if the test fails.
    pub fn print_on_failure(&self) -> PrintOnFailure {
        let mut guard = PrintOnFailure::new();
        guard.set("seeded incident", self.incident.describe_events());
        guard.set(&format!("report ({:?})", self.query), describe(&self.outcome));
        guard.set("AWS calls through the proxy", format_calls(&self.calls));
        guard
    }
}

/// Returns the settings that point the live source at `endpoint`, read the incident's log
/// group in `query` mode, and search only the test region.
pub fn live_config(endpoint: &str, incident: &Incident, query: QueryMode) -> LiveConfig {
    crate::aws::assert_loopback(endpoint);
    LiveConfig {
        region: Some(REGION.to_string()),
        log_groups: vec![incident.log_group.clone()],
        regions: vec![REGION.to_string()],
        query,
        endpoint_url: Some(endpoint.to_string()),
        call_timeout: Duration::from_secs(2),
        operation_timeout: TEST_OPERATION_TIMEOUT,
        query_timeout: Duration::from_secs(10),
        region_timeout: Duration::from_secs(20),
        ..LiveConfig::default()
    }
}

/// Seeds a fresh incident into the shared emulator.
///
/// # Panics
///
/// Panics when the emulator cannot be started or seeded.
pub async fn seed_incident() -> Incident {
    let moto = moto::shared().await;
    let clients = Clients::new(&moto.endpoint());
    match seed::seed_incident(&clients).await {
        Ok(incident) => incident,
        Err(error) => panic!("{error}\n--- moto_server log ---\n{}", moto.log_tail()),
    }
}

/// Starts a proxy in front of the shared emulator.
pub async fn start_proxy() -> Proxy {
    let moto = moto::shared().await;
    Proxy::start(&moto.endpoint()).await.expect("the test proxy starts on a loopback port")
}

/// The stack of the thread that runs an investigation. In the dev profile, the Security
/// Hub deserializer `aws_sdk_securityhub::protocol_serde::shape_resource_details::de_resource_details`
/// has a stack frame of about 6.3 MiB (measured on aws-sdk-securityhub 1.137), so parsing
/// one finding with resource details overflows the 2 MiB of a test or Tokio worker thread.
pub const INVESTIGATION_STACK_BYTES: usize = 32 * 1024 * 1024;

/// Runs the future that `make` builds on a thread of its own, with a stack of
/// [`INVESTIGATION_STACK_BYTES`] and a current-thread Tokio runtime, and returns its
/// output. Everything the future spawns runs on that thread too. A panic in it is raised
/// again here.
pub async fn on_large_stack<F, Fut, T>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name("keycheck-investigation".to_string())
        .stack_size(INVESTIGATION_STACK_BYTES)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime for the investigation");
            runtime.block_on(make())
        })
        .expect("the investigation thread starts");
    // Joining blocks, so it runs on Tokio's blocking pool while this runtime keeps serving
    // the proxy that the investigation calls.
    let joined = tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("the join task runs");
    match joined {
        Ok(output) => output,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs the whole playbook on the incident's leaked key with the live source pointed at
/// `proxy`, and collects what the proxy saw.
///
/// # Panics
///
/// Panics when the live source cannot be built from `config`.
pub async fn investigate(proxy: &Proxy, incident: &Incident, config: LiveConfig) -> LiveRun {
    let key: AccessKeyId = incident.leaked_key.parse().expect("the emulator issues valid key IDs");
    let query = config.query;
    let already = proxy.calls().len();

    let (outcome, call_stats, wall) = on_large_stack(move || async move {
        let investigation = Investigation::new(key, Origin::Cli);
        let evidence = build_evidence(config, &investigation.id);
        let stats = evidence.call_stats();
        let playbook_config = PlaybookConfig {
            step_timeout: TEST_STEP_TIMEOUT,
            ..PlaybookConfig::default()
        };
        let started = Instant::now();
        let outcome =
            playbook::run_to_end(investigation, Arc::new(evidence), Arc::new(Geo::none()), playbook_config, |_| {}).await;
        (outcome, stats.operations(), started.elapsed())
    })
    .await;

    LiveRun {
        incident: incident.clone(),
        query,
        outcome,
        calls: proxy.calls().split_off(already),
        call_stats,
        wall,
    }
}

/// Builds the live evidence source with the static test credentials.
///
/// # Panics
///
/// Panics when the source cannot be built.
pub fn build_evidence(config: LiveConfig, investigation_id: &str) -> LiveEvidence {
    crate::install_crypto_provider();
    LiveEvidence::with_credentials(config, investigation_id, crate::aws::test_credentials())
        .unwrap_or_else(|e| panic!("cannot build the live evidence source: {e}"))
}

/// Seeds an incident and investigates it in `query` mode through a fresh proxy.
pub async fn investigate_new_incident(query: QueryMode) -> LiveRun {
    let incident = seed_incident().await;
    let proxy = start_proxy().await;
    let config = live_config(&proxy.endpoint(), &incident, query);
    investigate(&proxy, &incident, config).await
}
