//! Prometheus metrics of `keycheck serve`: investigations, playbook steps, AWS calls, chat
//! API calls and approvals, served as `/metrics` in the Prometheus text format (0.0.4).
//!
//! One registry serves the whole process ([`global`]), because the AWS call recorder of
//! `keycheck-core` and every chat adapter report to it from wherever they run. Adapters
//! call the recording functions: [`track_investigation`] for each investigation,
//! [`record_chat_call`] and [`record_chat_rate_limited`] for each chat API call,
//! [`record_containment_event`] for each click and containment action the audit log records.
//! [`install`] connects the AWS call recorder. This module decides nothing, and logs only
//! when its listener starts.
//!
//! `docs/operations.md` lists every metric with what to do when it moves.

use std::net::SocketAddr;
use std::sync::{LazyLock, Once};
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keycheck_core::approval::ActionKind;
use keycheck_core::diagnosis::Verdict;
use keycheck_core::evidence::live::{CallName, CallObserver, CallOutcome};
use keycheck_core::playbook::{Origin, Progress};
use keycheck_core::report::{Status, StepId, StepReport};
use keycheck_core::store::AuditEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Upper bounds, in seconds, of the step duration buckets. A step times out after
/// `playbook.step_timeout`, 120 s by default, so the last bounds catch timeouts.
const STEP_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Upper bounds, in seconds, of the investigation duration buckets.
const INVESTIGATION_BUCKETS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0];

/// The `verdict` label of an investigation that ended without a diagnosis.
const NO_VERDICT: &str = "none";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    origin: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    platform: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepErrorLabels {
    step: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCallLabels {
    service: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsOperationLabels {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChatCallLabels {
    platform: String,
    method: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChatMethodLabels {
    platform: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
    outcome: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The result of one chat API call, after the adapter's retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatCallOutcome {
    /// The platform accepted the call.
    Ok,
    /// The platform responded with an error, or the request did not reach it.
    Error,
    /// The platform still responded 429 when the adapter gave up.
    RateLimited,
}

impl ChatCallOutcome {
    fn label(self) -> &'static str {
        match self {
            ChatCallOutcome::Ok => "ok",
            ChatCallOutcome::Error => "error",
            ChatCallOutcome::RateLimited => "rate_limited",
        }
    }
}

/// A registry with every keycheck metric. The process uses [`global`], and tests may
/// build their own.
pub struct Metrics {
    registry: Registry,
    investigations_started: Family<OriginLabels, Counter>,
    investigations_finished: Family<FinishedLabels, Counter>,
    investigations_running: Gauge,
    investigation_duration: HistogramFamily<OriginLabels>,
    step_duration: HistogramFamily<StepLabels>,
    step_errors: Family<StepErrorLabels, Counter>,
    aws_calls: Family<AwsCallLabels, Counter>,
    aws_throttles: Family<AwsOperationLabels, Counter>,
    chat_calls: Family<ChatCallLabels, Counter>,
    chat_rate_limited: Family<ChatMethodLabels, Counter>,
    approvals: Family<ActionLabels, Counter>,
    rejected_requests: Family<RejectedLabels, Counter>,
    containment_actions: Family<ActionLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(…)")
    }
}

fn step_histogram() -> Histogram {
    Histogram::new(STEP_BUCKETS)
}

fn investigation_histogram() -> Histogram {
    Histogram::new(INVESTIGATION_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates a registry with every metric registered and no observation.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::with_prefix("keycheck"),
            investigations_started: Family::default(),
            investigations_finished: Family::default(),
            investigations_running: Gauge::default(),
            investigation_duration: Family::new_with_constructor(investigation_histogram as fn() -> Histogram),
            step_duration: Family::new_with_constructor(step_histogram as fn() -> Histogram),
            step_errors: Family::default(),
            aws_calls: Family::default(),
            aws_throttles: Family::default(),
            chat_calls: Family::default(),
            chat_rate_limited: Family::default(),
            approvals: Family::default(),
            rejected_requests: Family::default(),
            containment_actions: Family::default(),
        };
        metrics.preset_series();
        metrics.register()
    }

    /// Creates the series whose labels are known in advance at zero, so that `rate()` and
    /// `increase()` see the first event of each rather than a series appearing at 1.
    fn preset_series(&self) {
        for origin in ["command", "alert", "cli"] {
            let _ = self.investigations_started.get_or_create(&OriginLabels { origin });
            for verdict in ["compromised", "suspicious", "no_evidence", "inconclusive", NO_VERDICT] {
                let _ = self.investigations_finished.get_or_create(&FinishedLabels { origin, verdict });
            }
        }
        for step in StepId::ALL {
            for reason in ["error", "timeout"] {
                let _ = self.step_errors.get_or_create(&StepErrorLabels { step: step.name(), reason });
            }
        }
    }

    fn register(mut self) -> Metrics {
        let registry = &mut self.registry;
        registry.register(
            "build",
            "The running keycheck's version as a label, with the value 1",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "investigations_started",
            "Investigations started, by origin: command (a chat command), alert (an alert in a watched channel) or cli",
            self.investigations_started.clone(),
        );
        registry.register(
            "investigations_finished",
            "Investigations finished, by origin and verdict: compromised, suspicious, no_evidence, inconclusive, or none when the playbook stopped without a diagnosis",
            self.investigations_finished.clone(),
        );
        registry.register(
            "investigations_running",
            "Investigations running now in this process",
            self.investigations_running.clone(),
        );
        registry.register_with_unit(
            "investigation_duration",
            "Time from an investigation's start to its diagnosis, by origin",
            Unit::Seconds,
            self.investigation_duration.clone(),
        );

        registry.register_with_unit(
            "step_duration",
            "Time each playbook step took, by step, including a widened re-run",
            Unit::Seconds,
            self.step_duration.clone(),
        );
        registry.register(
            "step_errors",
            "Playbook steps that reported an error, by step and reason: timeout (the step ran past playbook.step_timeout) or error (an AWS call or the evidence failed)",
            self.step_errors.clone(),
        );

        registry.register(
            "aws_calls",
            "AWS API calls after the SDK's retries, by service, operation and outcome: ok, throttled or error",
            self.aws_calls.clone(),
        );
        registry.register(
            "aws_throttles",
            "HTTP attempts of AWS API calls that AWS throttled, retried or not, by service and operation",
            self.aws_throttles.clone(),
        );

        registry.register(
            "chat_api_calls",
            "Chat platform API calls after retries, by platform, method and outcome: ok, error or rate_limited",
            self.chat_calls.clone(),
        );
        registry.register(
            "chat_api_rate_limited",
            "HTTP 429 responses from a chat platform's API, by platform and method, including the last one of a call that keycheck gave up on",
            self.chat_rate_limited.clone(),
        );

        registry.register(
            "rejected_requests",
            "Requests to the HTTP listener rejected for a missing, stale or invalid signature, by platform and reason",
            self.rejected_requests.clone(),
        );
        registry.register(
            "approvals",
            "Containment actions requested, approved, rejected, dismissed or expired, and clicks refused, by action and outcome",
            self.approvals.clone(),
        );
        registry.register(
            "containment_actions",
            "Containment actions run against AWS, by action and outcome: done or failed",
            self.containment_actions.clone(),
        );
        self
    }

    /// Returns every metric in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// Starts recording the investigation from `origin`. See [`InvestigationMetrics`].
    pub fn track_investigation(&self, origin: &Origin) -> InvestigationMetrics<'_> {
        let origin = origin.label();
        self.investigations_started.get_or_create(&OriginLabels { origin }).inc();
        self.investigations_running.inc();
        InvestigationMetrics {
            metrics: self,
            origin,
            started: Instant::now(),
            finished: false,
        }
    }

    fn record_step(&self, report: &StepReport) {
        let step = report.step.name();
        let seconds = report.duration_ms as f64 / 1000.0;
        self.step_duration.get_or_create(&StepLabels { step }).observe(seconds);
        if report.status == Status::Error {
            let timed_out = report.failure.as_ref().is_some_and(|failure| failure.operation == "timeout");
            let reason = if timed_out { "timeout" } else { "error" };
            self.step_errors.get_or_create(&StepErrorLabels { step, reason }).inc();
        }
    }

    /// Counts one chat API call of `platform` (`slack`, `discord`) and `method` (such as
    /// `chat.postMessage`) with its outcome after retries.
    pub fn record_chat_call(&self, platform: &str, method: &str, outcome: ChatCallOutcome) {
        let labels = ChatCallLabels {
            platform: platform.to_string(),
            method: method.to_string(),
            outcome: outcome.label(),
        };
        self.chat_calls.get_or_create(&labels).inc();
    }

    /// Counts one request to the HTTP listener of `platform` rejected for its signature,
    /// with the `reason` label of the signature error.
    pub fn record_rejected_request(&self, platform: &'static str, reason: &'static str) {
        self.rejected_requests.get_or_create(&RejectedLabels { platform, reason }).inc();
    }

    /// Counts one 429 response to a chat API call, whether it was retried or not.
    pub fn record_chat_rate_limited(&self, platform: &str, method: &str) {
        let labels = ChatMethodLabels {
            platform: platform.to_string(),
            method: method.to_string(),
        };
        self.chat_rate_limited.get_or_create(&labels).inc();
    }

    /// Counts one containment event as the audit log records it: a click's effect on an
    /// action (`requested`, `approved`, `rejected`, `dismissed`, `expired`, `refused`) in
    /// `keycheck_approvals_total`, or an action's result (`executed`, `failed`) in
    /// `keycheck_containment_actions_total`. `action` is `None` for a click on a button
    /// whose action is unknown. Offers and the start of an execution are not counted.
    pub fn record_containment_event(&self, action: Option<ActionKind>, event: AuditEvent) {
        let action = action.map_or("unknown", ActionKind::as_str);
        match event {
            AuditEvent::Offered | AuditEvent::Executing => {}
            AuditEvent::Executed | AuditEvent::Failed => {
                let outcome = if event == AuditEvent::Executed { "done" } else { "failed" };
                self.containment_actions.get_or_create(&ActionLabels { action, outcome }).inc();
            }
            AuditEvent::Requested
            | AuditEvent::Approved
            | AuditEvent::Rejected
            | AuditEvent::Dismissed
            | AuditEvent::Expired
            | AuditEvent::Refused => {
                let outcome = event.as_str();
                self.approvals.get_or_create(&ActionLabels { action, outcome }).inc();
            }
        }
    }

    fn record_aws_attempt(&self, call: &CallName<'_>, throttled: bool) {
        if !throttled {
            return;
        }
        let (service, operation) = aws_labels(call);
        self.aws_throttles.get_or_create(&AwsOperationLabels { service, operation }).inc();
    }

    fn record_aws_call(&self, call: &CallName<'_>, outcome: CallOutcome) {
        let (service, operation) = aws_labels(call);
        let outcome = match outcome {
            CallOutcome::Ok => "ok",
            CallOutcome::Throttled => "throttled",
            CallOutcome::Error => "error",
        };
        self.aws_calls.get_or_create(&AwsCallLabels { service, operation, outcome }).inc();
    }
}

/// Returns the `service` and `operation` labels of an AWS call: the IAM action's prefix
/// and the operation, such as `iam` and `ListAccessKeys`. A call without an IAM action,
/// which is one missing from `keycheck_core::evidence::live::operations::OPERATIONS`, gets
/// the SDK's service name in lowercase, with spaces as underscores.
fn aws_labels(call: &CallName<'_>) -> (String, String) {
    let service = match call.action.and_then(|action| action.split_once(':')) {
        Some((prefix, _)) => prefix.to_string(),
        None => call.sdk_service.to_lowercase().replace(' ', "_"),
    };
    (service, call.operation.to_string())
}

/// Records one investigation's metrics from its progress messages: started on creation,
/// each finished step's duration and error, and the verdict. Dropping it before
/// [`Progress::Diagnosed`] counts the investigation as finished with verdict `none`, so
/// that an investigation that panicked or was abandoned does not stay running.
#[derive(Debug)]
pub struct InvestigationMetrics<'a> {
    metrics: &'a Metrics,
    origin: &'static str,
    started: Instant,
    finished: bool,
}

impl InvestigationMetrics<'_> {
    /// Records `progress`. Call it for every message the playbook sends.
    pub fn observe(&mut self, progress: &Progress) {
        match progress {
            Progress::Started(_) | Progress::Widened(_) => {}
            Progress::Finished(report) => self.metrics.record_step(report),
            Progress::Diagnosed(outcome) => self.finish(verdict_label(outcome.diagnosis.verdict)),
        }
    }

    fn finish(&mut self, verdict: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        let metrics = self.metrics;
        let origin = self.origin;
        metrics.investigations_finished.get_or_create(&FinishedLabels { origin, verdict }).inc();
        metrics.investigations_running.dec();
        let seconds = self.started.elapsed().as_secs_f64();
        metrics.investigation_duration.get_or_create(&OriginLabels { origin }).observe(seconds);
    }
}

impl Drop for InvestigationMetrics<'_> {
    fn drop(&mut self) {
        self.finish(NO_VERDICT);
    }
}

fn verdict_label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Compromised => "compromised",
        Verdict::Suspicious => "suspicious",
        Verdict::NoEvidence => "no_evidence",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// Forwards the AWS calls that `keycheck-core`'s call recorder records to a registry.
struct AwsCallMetrics(&'static Metrics);

impl CallObserver for AwsCallMetrics {
    fn attempt(&self, call: &CallName<'_>, throttled: bool) {
        self.0.record_aws_attempt(call, throttled);
    }

    fn finished(&self, call: &CallName<'_>, outcome: CallOutcome) {
        self.0.record_aws_call(call, outcome);
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Returns the process's registry.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Connects `keycheck-core`'s AWS call recorder to the process's registry. Later calls
/// do nothing.
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        keycheck_core::evidence::live::set_call_observer(Box::new(AwsCallMetrics(global())));
    });
}

/// Starts recording an investigation from `origin` in the process's registry.
pub fn track_investigation(origin: &Origin) -> InvestigationMetrics<'static> {
    global().track_investigation(origin)
}

/// Counts one chat API call in the process's registry; see [`Metrics::record_chat_call`].
pub fn record_chat_call(platform: &str, method: &str, outcome: ChatCallOutcome) {
    global().record_chat_call(platform, method, outcome);
}

/// Counts one rejected request in the process's registry; see
/// [`Metrics::record_rejected_request`].
pub fn record_rejected_request(platform: &'static str, reason: &'static str) {
    global().record_rejected_request(platform, reason);
}

/// Counts one 429 response in the process's registry; see
/// [`Metrics::record_chat_rate_limited`].
pub fn record_chat_rate_limited(platform: &str, method: &str) {
    global().record_chat_rate_limited(platform, method);
}

/// Counts one audited containment event in the process's registry; see
/// [`Metrics::record_containment_event`]. Call it once the audit entry is written.
pub fn record_containment_event(action: Option<ActionKind>, event: AuditEvent) {
    global().record_containment_event(action, event);
}

/// Builds the router of `/metrics` alone, from the process's registry, to merge into a
/// router that serves `/healthz` already.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(scrape))
}

/// Builds the router of `/metrics` and `/healthz`.
pub fn router() -> Router {
    metrics_router().merge(crate::slack::http::health_router())
}

/// The separate listener of `/metrics` and `/healthz`, started by [`start_listener`].
#[derive(Debug)]
pub struct MetricsListener {
    /// The address it listens on.
    pub addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `metrics.listen` and serves `/metrics` and `/healthz` there in a spawned task,
/// until the returned listener is dropped. Returns `None` when `metrics.listen` is unset
/// or equals `slack.listen`, where the Slack listener serves `/metrics` itself.
pub async fn start_listener(config: &Config) -> anyhow::Result<Option<MetricsListener>> {
    let Some(listen) = config.metrics.separate_listen(config.slack.listen()) else {
        return Ok(None);
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("metrics.listen = {listen}: cannot bind; pick a free address and port"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(crate::slack::http::serve(listener, router(), std::future::pending()));
    tracing::info!(%addr, "serving /metrics and /healthz");
    Ok(Some(MetricsListener { addr, task }))
}

async fn scrape() -> Response {
    let body = global().encode();
    (StatusCode::OK, [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use keycheck_core::report::StepFailure;

    use super::*;

    /// Returns the value of the sample `series` (name and labels as encoded), or `None`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn report(step: StepId, status: Status, operation: Option<&str>, duration_ms: u64) -> StepReport {
        let mut report = match operation {
            Some(operation) => StepReport::failed(
                step,
                StepFailure {
                    operation: operation.to_string(),
                    permission: None,
                    message: "failed".to_string(),
                },
            ),
            None => StepReport::not_available(step, "nothing to read"),
        };
        report.status = status;
        report.duration_ms = duration_ms;
        report
    }

    #[test]
    fn encode_lists_every_metric_family() {
        let metrics = Metrics::new();
        // A family shows in the output once it has a series, so give each one.
        let call = CallName {
            sdk_service: "STS",
            operation: "GetAccessKeyInfo",
            action: Some("sts:GetAccessKeyInfo"),
        };
        metrics.record_aws_attempt(&call, true);
        metrics.record_aws_call(&call, CallOutcome::Ok);
        metrics.record_chat_rate_limited("slack", "chat.update");
        metrics.record_chat_call("slack", "chat.update", ChatCallOutcome::Ok);
        metrics.record_containment_event(Some(ActionKind::Rotate), AuditEvent::Rejected);
        metrics.record_containment_event(Some(ActionKind::Rotate), AuditEvent::Failed);
        let mut tracker = metrics.track_investigation(&Origin::Cli);
        tracker.observe(&Progress::Finished(Box::new(report(StepId::Key, Status::Ok, None, 5))));
        drop(tracker);

        let text = metrics.encode();
        for name in [
            "keycheck_build_info",
            "keycheck_investigations_started_total",
            "keycheck_investigations_finished_total",
            "keycheck_investigations_running",
            "keycheck_investigation_duration_seconds",
            "keycheck_step_duration_seconds",
            "keycheck_step_errors_total",
            "keycheck_aws_calls_total",
            "keycheck_aws_throttles_total",
            "keycheck_chat_api_calls_total",
            "keycheck_chat_api_rate_limited_total",
            "keycheck_approvals_total",
            "keycheck_containment_actions_total",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}:\n{text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "no TYPE for {name}:\n{text}");
        }
        assert_eq!(
            sample(&text, "keycheck_investigations_started_total{origin=\"alert\"}"),
            Some(0.0),
            "{text}"
        );
    }

    #[test]
    fn tracker_records_steps_and_verdict() {
        let metrics = Metrics::new();
        let origin = Origin::Command {
            platform: "slack".to_string(),
            user: "U0ALICE".to_string(),
            channel: "C0INCIDENT".to_string(),
        };
        let mut tracker = metrics.track_investigation(&origin);
        let running = metrics.encode();
        assert_eq!(sample(&running, "keycheck_investigations_running"), Some(1.0), "{running}");

        tracker.observe(&Progress::Finished(Box::new(report(StepId::Mfa, Status::Ok, None, 1500))));
        tracker.observe(&Progress::Finished(Box::new(report(StepId::Key, Status::Error, Some("timeout"), 120_000))));
        tracker.observe(&Progress::Finished(Box::new(report(
            StepId::Key,
            Status::Error,
            Some("iam:ListAccessKeys"),
            20,
        ))));
        drop(tracker);

        let text = metrics.encode();
        let expected = [
            ("keycheck_investigations_started_total{origin=\"command\"}", 1.0),
            ("keycheck_investigations_finished_total{origin=\"command\",verdict=\"none\"}", 1.0),
            ("keycheck_investigations_running", 0.0),
            ("keycheck_step_duration_seconds_count{step=\"mfa\"}", 1.0),
            ("keycheck_step_duration_seconds_sum{step=\"mfa\"}", 1.5),
            ("keycheck_step_duration_seconds_count{step=\"key\"}", 2.0),
            ("keycheck_step_errors_total{step=\"key\",reason=\"timeout\"}", 1.0),
            ("keycheck_step_errors_total{step=\"key\",reason=\"error\"}", 1.0),
            ("keycheck_step_errors_total{step=\"mfa\",reason=\"error\"}", 0.0),
        ];
        for (series, value) in expected {
            assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
        }
    }

    #[test]
    fn aws_calls_labelled_by_action() {
        let metrics = Metrics::new();
        let listed = CallName {
            sdk_service: "IAM",
            operation: "ListAccessKeys",
            action: Some("iam:ListAccessKeys"),
        };
        let unlisted = CallName {
            sdk_service: "CloudWatch Logs",
            operation: "DeleteLogGroup",
            action: None,
        };
        metrics.record_aws_attempt(&listed, true);
        metrics.record_aws_attempt(&listed, false);
        metrics.record_aws_call(&listed, CallOutcome::Ok);
        metrics.record_aws_call(&unlisted, CallOutcome::Throttled);

        let text = metrics.encode();
        let expected = [
            ("keycheck_aws_throttles_total{service=\"iam\",operation=\"ListAccessKeys\"}", 1.0),
            ("keycheck_aws_calls_total{service=\"iam\",operation=\"ListAccessKeys\",outcome=\"ok\"}", 1.0),
            (
                "keycheck_aws_calls_total{service=\"cloudwatch_logs\",operation=\"DeleteLogGroup\",outcome=\"throttled\"}",
                1.0,
            ),
        ];
        for (series, value) in expected {
            assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
        }
    }

    #[test]
    fn chat_and_approvals_counted() {
        let metrics = Metrics::new();
        metrics.record_chat_rate_limited("discord", "create_message");
        metrics.record_chat_call("discord", "create_message", ChatCallOutcome::Ok);
        metrics.record_containment_event(Some(ActionKind::Deactivate), AuditEvent::Requested);
        metrics.record_containment_event(Some(ActionKind::Deactivate), AuditEvent::Expired);
        metrics.record_containment_event(Some(ActionKind::Rotate), AuditEvent::Refused);
        metrics.record_containment_event(None, AuditEvent::Refused);
        metrics.record_containment_event(Some(ActionKind::Deactivate), AuditEvent::Executing);
        metrics.record_containment_event(Some(ActionKind::Deactivate), AuditEvent::Executed);

        let text = metrics.encode();
        let expected = [
            ("keycheck_chat_api_rate_limited_total{platform=\"discord\",method=\"create_message\"}", 1.0),
            ("keycheck_chat_api_calls_total{platform=\"discord\",method=\"create_message\",outcome=\"ok\"}", 1.0),
            ("keycheck_approvals_total{action=\"deactivate\",outcome=\"requested\"}", 1.0),
            ("keycheck_approvals_total{action=\"deactivate\",outcome=\"expired\"}", 1.0),
            ("keycheck_approvals_total{action=\"rotate\",outcome=\"refused\"}", 1.0),
            ("keycheck_approvals_total{action=\"unknown\",outcome=\"refused\"}", 1.0),
            ("keycheck_containment_actions_total{action=\"deactivate\",outcome=\"done\"}", 1.0),
        ];
        for (series, value) in expected {
            assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
        }
    }
}
