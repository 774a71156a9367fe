//! The investigation playbook: ten steps, each an async function from the shared context
//! to a `StepReport`, and `run`, which runs them concurrently and streams their reports in
//! completion order, followed by the diagnosis.
//!
//! Step 0 runs first because later steps need the account. After it, the CloudTrail fetch
//! and step 1 start together; every other step waits only for what it reads. A step that
//! fails or times out still produces a report, and the others go on.

mod activity;
mod brief;
mod cross_account;
mod external_access;
mod findings;
mod guardduty;
mod key;
mod mfa;
mod permissions;
mod resolve;
mod secrets;

pub(crate) use brief::describe as describe_brief;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use crate::cloudtrail::IdentityType;
use crate::diagnosis::{self, Diagnosis};
use crate::evidence::{
    AccountInfo, Evidence, EvidenceError, EventQuery, EventSet, KeyRecord, SecurityFinding,
    Subject, UserRecord, Window,
};
use crate::geo::Geo;
use crate::key::AccessKeyId;
use crate::report::{MintedSession, StepFailure, StepId, StepReport};

/// The person, command or alert that started an investigation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// The command line.
    Cli,
    /// A `/keycheck` command in chat.
    Command { platform: String, user: String, channel: String },
    /// An alert forwarded into a watched channel.
    Alert { platform: String, channel: String, source: String },
}

impl Origin {
    /// Returns the origin as a short label for logs and metrics: `cli`, `command` or `alert`.
    pub fn label(&self) -> &'static str {
        match self {
            Origin::Cli => "cli",
            Origin::Command { .. } => "command",
            Origin::Alert { .. } => "alert",
        }
    }
}

/// Context from the alert that started the investigation, for the diagnosis.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertContext {
    /// The alerting service, such as `GuardDuty` or `AWS Health`.
    pub source: String,
    /// The finding or event type.
    pub finding_type: Option<String>,
    /// Time the alert gives for the first sight of the activity.
    pub first_seen: Option<DateTime<Utc>>,
    /// Remote IPs the alert names.
    pub source_ips: Vec<String>,
}

/// One investigation: the key and the settings it runs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Investigation {
    /// Opaque ID that appears in logs, chat and the store.
    pub id: String,
    /// The key under investigation.
    pub key: AccessKeyId,
    /// Origin of the investigation.
    pub origin: Origin,
    /// A fixed window, or `None` to let the evidence source choose the end.
    pub window: Option<Window>,
    /// Window length when the source chooses the end.
    #[serde(with = "duration_seconds")]
    pub window_length: chrono::Duration,
    /// The alert that started it, if any.
    pub alert: Option<AlertContext>,
    /// When the investigation started.
    pub started_at: DateTime<Utc>,
}

impl Investigation {
    /// Creates an investigation of `key` with a 24-hour window and a fresh ID.
    pub fn new(key: AccessKeyId, origin: Origin) -> Investigation {
        Investigation {
            id: new_investigation_id(),
            key,
            origin,
            window: None,
            window_length: chrono::Duration::hours(24),
            alert: None,
            started_at: Utc::now(),
        }
    }
}

/// Returns a new investigation ID: `kc-` and 10 hex digits, short enough to quote in chat.
pub fn new_investigation_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("kc-{}", &id[..10])
}

/// Limits that keep one slow AWS call from holding up the whole report.
#[derive(Clone, Debug)]
pub struct PlaybookConfig {
    /// How long each step may take, including the wait for shared evidence.
    pub step_timeout: Duration,
    /// How far before the window the key's history is read.
    pub history: chrono::Duration,
}

impl Default for PlaybookConfig {
    fn default() -> Self {
        PlaybookConfig {
            step_timeout: Duration::from_secs(120),
            history: chrono::Duration::days(14),
        }
    }
}

/// A message from a running playbook.
#[derive(Clone, Debug)]
pub enum Progress {
    /// A step started.
    Started(StepId),
    /// A step finished; reports arrive in completion order.
    Finished(Box<StepReport>),
    /// Every step finished; this is the last message.
    Diagnosed(Box<Outcome>),
}

/// The result of a whole investigation.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The investigation.
    pub investigation: Investigation,
    /// Description of the evidence source.
    pub evidence_source: String,
    /// Every step's report, in playbook order.
    pub reports: Vec<StepReport>,
    /// The diagnosis over the reports.
    pub diagnosis: Diagnosis,
    /// When the investigation finished.
    pub finished_at: DateTime<Utc>,
}

type EventsResult = Result<Arc<EventSet>, EvidenceError>;
type OwnerResult = Arc<OwnerFacts>;
type GuardDutyResult = Result<Arc<Vec<SecurityFinding>>, EvidenceError>;

/// Facts step 1 established about the key's owner, shared with the steps that need them.
#[derive(Debug)]
pub struct OwnerFacts {
    /// The subject as far as it is known.
    pub subject: Subject,
    /// The owner's IAM user record, when the owner is a user and the record could be read.
    pub user: Result<Option<UserRecord>, EvidenceError>,
    /// The key's IAM record; `Ok(None)` when IAM has no such key.
    pub record: Result<Option<KeyRecord>, EvidenceError>,
    /// The kind of principal that used the key, from CloudTrail or IAM.
    pub principal_type: Option<IdentityType>,
    /// For a temporary key: the call that minted it.
    pub minted_by: Option<MintedSession>,
    /// The error that stopped CloudTrail from being read, if any.
    pub events_error: Option<EvidenceError>,
}

/// Everything a step reads: the investigation, the evidence, and the shared results of
/// other steps, each computed once.
pub struct StepContext {
    /// The investigation.
    pub investigation: Investigation,
    /// The evidence source.
    pub evidence: Arc<dyn Evidence>,
    /// Geolocation of source addresses.
    pub geo: Arc<Geo>,
    /// Step 0's result.
    pub account: Option<AccountInfo>,
    events: Shared<BoxFuture<'static, EventsResult>>,
    owner: Shared<BoxFuture<'static, OwnerResult>>,
    guardduty: Shared<BoxFuture<'static, GuardDutyResult>>,
}

impl StepContext {
    /// Returns the investigation's CloudTrail events, fetched once and shared.
    pub async fn events(&self) -> EventsResult {
        self.events.clone().await
    }

    /// Returns what step 1 established about the owner; waits for step 1.
    pub async fn owner(&self) -> OwnerResult {
        self.owner.clone().await
    }

    /// Returns the GuardDuty findings naming the subject, fetched once for steps 5 and 6.
    pub async fn guardduty_findings(&self) -> GuardDutyResult {
        self.guardduty.clone().await
    }

    /// Returns the account ID from step 0, when known.
    pub fn account_id(&self) -> Option<&str> {
        self.account.as_ref()?.account_id.as_deref()
    }
}

/// Runs the playbook and sends progress on the returned channel: `Started` and `Finished`
/// for each step in completion order, then one `Diagnosed`.
pub fn run(
    investigation: Investigation,
    evidence: Arc<dyn Evidence>,
    geo: Arc<Geo>,
    config: PlaybookConfig,
) -> mpsc::Receiver<Progress> {
    let (sender, receiver) = mpsc::channel(32);
    let span = info_span!(
        "investigation",
        investigation_id = %investigation.id,
        key_id = %investigation.key,
        origin = investigation.origin.label(),
    );
    tokio::spawn(
        async move {
            let outcome = run_steps(investigation, evidence, geo, config, &sender).await;
            let _ = sender.send(Progress::Diagnosed(Box::new(outcome))).await;
        }
        .instrument(span),
    );
    receiver
}

/// Runs the playbook to the end and returns the outcome, calling `on_progress` for each
/// message as it happens.
pub async fn run_to_end(
    investigation: Investigation,
    evidence: Arc<dyn Evidence>,
    geo: Arc<Geo>,
    config: PlaybookConfig,
    mut on_progress: impl FnMut(&Progress),
) -> Outcome {
    let mut receiver = run(investigation, evidence, geo, config);
    while let Some(progress) = receiver.recv().await {
        on_progress(&progress);
        if let Progress::Diagnosed(outcome) = progress {
            return *outcome;
        }
    }
    // The runner task only stops early when it panicked.
    panic!("the playbook task stopped without a diagnosis; see the log for its panic");
}

async fn run_steps(
    investigation: Investigation,
    evidence: Arc<dyn Evidence>,
    geo: Arc<Geo>,
    config: PlaybookConfig,
    sender: &mpsc::Sender<Progress>,
) -> Outcome {
    info!("investigation started");
    let mut reports = Vec::with_capacity(StepId::ALL.len());

    let _ = sender.send(Progress::Started(StepId::Resolve)).await;
    let resolve = timed(StepId::Resolve, config.step_timeout, resolve::run(&investigation, evidence.as_ref())).await;
    let account = match &resolve.data {
        crate::report::StepData::Resolve(info) => Some(info.clone()),
        _ => None,
    };
    let _ = sender.send(Progress::Finished(Box::new(resolve.clone()))).await;
    reports.push(resolve);

    let context = Arc::new(build_context(investigation, evidence, geo, account, &config));
    let mut running: FuturesUnordered<BoxFuture<'static, StepReport>> = FuturesUnordered::new();
    for step in &StepId::ALL[1..] {
        let _ = sender.send(Progress::Started(*step)).await;
        running.push(spawn_step(*step, Arc::clone(&context), config.step_timeout));
    }
    while let Some(report) = running.next().await {
        let _ = sender.send(Progress::Finished(Box::new(report.clone()))).await;
        reports.push(report);
    }

    reports.sort_by_key(|r| r.step);
    let diagnosis = diagnosis::diagnose(&context.investigation, &reports);
    info!(
        verdict = diagnosis.verdict.label(),
        severity = diagnosis.severity.label(),
        "investigation finished"
    );
    Outcome {
        investigation: context.investigation.clone(),
        evidence_source: context.evidence.describe(),
        reports,
        diagnosis,
        finished_at: Utc::now(),
    }
}

/// Builds the shared context, starting the CloudTrail fetch and step 1's owner lookup so
/// that every step can wait on them.
fn build_context(
    investigation: Investigation,
    evidence: Arc<dyn Evidence>,
    geo: Arc<Geo>,
    account: Option<AccountInfo>,
    config: &PlaybookConfig,
) -> StepContext {
    let query = EventQuery {
        key: investigation.key.clone(),
        owner_arn: None,
        window: investigation.window,
        window_length: investigation.window_length,
        history: config.history,
    };
    let events = spawn_shared({
        let evidence = Arc::clone(&evidence);
        async move { evidence.events(&query).await.map(Arc::new) }
    });

    let account_id = account.as_ref().and_then(|a| a.account_id.clone());
    let owner = spawn_shared({
        let evidence = Arc::clone(&evidence);
        let key = investigation.key.clone();
        let events = events.clone();
        async move { Arc::new(key::find_owner(evidence.as_ref(), &key, account_id, events).await) }
    });

    let guardduty = spawn_shared({
        let evidence = Arc::clone(&evidence);
        let owner = owner.clone();
        async move {
            let owner = owner.await;
            evidence.guardduty_findings(&owner.subject).await.map(Arc::new)
        }
    });

    StepContext {
        investigation,
        evidence,
        geo,
        account,
        events,
        owner,
        guardduty,
    }
}

/// Spawns a future on the runtime and returns a handle every step can await; the work
/// runs once however many steps wait for it.
fn spawn_shared<T>(future: impl Future<Output = T> + Send + 'static) -> Shared<BoxFuture<'static, T>>
where
    T: Clone + Send + Sync + 'static,
{
    let handle = tokio::spawn(future.in_current_span());
    async move {
        match handle.await {
            Ok(value) => value,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    .boxed()
    .shared()
}

fn spawn_step(step: StepId, context: Arc<StepContext>, timeout: Duration) -> BoxFuture<'static, StepReport> {
    let span = info_span!("step", step = step.name());
    let handle = tokio::spawn(
        async move {
            let context = context.as_ref();
            let report = match step {
                StepId::Resolve => unreachable!("step 0 runs before the others"),
                StepId::Key => timed(step, timeout, key::run(context)).await,
                StepId::Activity => timed(step, timeout, activity::run(context)).await,
                StepId::Mfa => timed(step, timeout, mfa::run(context)).await,
                StepId::Permissions => timed(step, timeout, permissions::run(context)).await,
                StepId::Findings => timed(step, timeout, findings::run(context)).await,
                StepId::Guardduty => timed(step, timeout, guardduty::run(context)).await,
                StepId::ExternalAccess => timed(step, timeout, external_access::run(context)).await,
                StepId::CrossAccount => timed(step, timeout, cross_account::run(context)).await,
                StepId::Secrets => timed(step, timeout, secrets::run(context)).await,
            };
            report
        }
        .instrument(span),
    );
    async move {
        match handle.await {
            Ok(report) => report,
            Err(error) => {
                warn!(step = step.name(), %error, "step task failed");
                StepReport::failed(
                    step,
                    StepFailure {
                        operation: "internal".to_string(),
                        permission: None,
                        message: format!("the step stopped unexpectedly: {error}"),
                    },
                )
            }
        }
    }
    .boxed()
}

/// Runs one step under its timeout and records its duration.
async fn timed(step: StepId, timeout: Duration, work: impl Future<Output = StepReport>) -> StepReport {
    let started = Instant::now();
    let mut report = match tokio::time::timeout(timeout, work).await {
        Ok(report) => report,
        Err(_) => {
            warn!(step = step.name(), timeout_seconds = timeout.as_secs(), "step timed out");
            StepReport::failed(
                step,
                StepFailure {
                    operation: "timeout".to_string(),
                    permission: None,
                    message: format!("timed out after {} seconds", timeout.as_secs()),
                },
            )
        }
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    info!(step = step.name(), status = report.status.label(), duration_ms = report.duration_ms, "step finished");
    report
}

/// Turns an evidence error into the report of the step that needed the evidence.
pub(crate) fn evidence_failure(step: StepId, error: &EvidenceError) -> StepReport {
    match error {
        EvidenceError::NotAvailable { what, hint } => {
            StepReport::not_available(step, format!("{what} is not available: {hint}"))
        }
        EvidenceError::Aws {
            operation,
            permission,
            reason,
            ..
        } => StepReport::failed(
            step,
            StepFailure {
                operation: operation.clone(),
                permission: Some(permission.clone()),
                message: format!("{operation} failed: {reason}"),
            },
        ),
        EvidenceError::File { .. } => StepReport::failed(
            step,
            StepFailure {
                operation: "read evidence".to_string(),
                permission: None,
                message: error.to_string(),
            },
        ),
    }
}

mod duration_seconds {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &chrono::Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<chrono::Duration, D::Error> {
        Ok(chrono::Duration::seconds(i64::deserialize(deserializer)?))
    }
}
