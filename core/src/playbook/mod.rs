//! The investigation playbook: ten steps, each an async function from the shared context
//! to a `StepReport`, and `run`, which runs them concurrently and streams their reports in
//! completion order, followed by the diagnosis.
//!
//! Step 0 runs first because later steps need the account. After it, the CloudTrail fetch
//! and the lookup of the key's owner start together, and every evidence call starts as
//! soon as what it needs is known. The searches that name the owner wait for the owner's
//! name only, not for the owner's user record or CloudTrail. Every step waits only for
//! what it reads. A step that fails or times out still produces a report, and the others
//! go on.

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

pub(crate) use activity::burst_keys_note;
pub(crate) use brief::describe as describe_brief;
pub use key::SubjectFacts;

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
    AccountInfo, AnalyzerFinding, CredentialReportRow, Evidence, EvidenceError, EventQuery,
    EventSet, HealthEvent, KeyLocationSearch, KeyRecord, Search, SecurityFinding, Subject, UserRecord,
    Window,
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
    /// The window the playbook widens to when nothing correlates in the requested one, or
    /// `None` to never widen. The wider window is cut from the same CloudTrail fetch (its
    /// history part), so widening costs no further scan.
    pub widen_to: Option<chrono::Duration>,
}

impl Default for PlaybookConfig {
    fn default() -> Self {
        PlaybookConfig {
            step_timeout: Duration::from_secs(120),
            history: chrono::Duration::days(14),
            widen_to: Some(chrono::Duration::days(7)),
        }
    }
}

/// Steps that read CloudTrail and are re-run on the widened window. The others read only
/// IAM and findings, which the window does not change.
const WIDENED_STEPS: [StepId; 5] = [
    StepId::Activity,
    StepId::Mfa,
    StepId::ExternalAccess,
    StepId::CrossAccount,
    StepId::Secrets,
];

/// A message from a running playbook.
#[derive(Clone, Debug)]
pub enum Progress {
    /// A step started.
    Started(StepId),
    /// A step finished; reports arrive in completion order.
    Finished(Box<StepReport>),
    /// Nothing correlated, so the steps that read CloudTrail run again on a wider window;
    /// their reports follow as `Finished` and replace the first ones.
    Widened(String),
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
type GuardDutyResult = Result<Arc<Search<SecurityFinding>>, EvidenceError>;

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

/// A result computed once per investigation and awaited by every step that needs it.
type Once<T> = Shared<BoxFuture<'static, T>>;

/// An evidence call's result, shared between steps.
type SharedResult<T> = Result<Arc<T>, EvidenceError>;

/// Everything a step reads: the investigation, the evidence, and the shared results of
/// evidence calls, each made once. Cloning is cheap; a clone with other events is how the
/// widened pass re-runs steps without calling AWS again.
#[derive(Clone)]
pub struct StepContext {
    /// The investigation.
    pub investigation: Investigation,
    /// The evidence source.
    pub evidence: Arc<dyn Evidence>,
    /// Geolocation of source addresses.
    pub geo: Arc<Geo>,
    /// Step 0's result.
    pub account: Option<AccountInfo>,
    events: Once<EventsResult>,
    owner: Once<OwnerResult>,
    guardduty: Once<GuardDutyResult>,
    security_hub: Once<SharedResult<Search<SecurityFinding>>>,
    health: Once<SharedResult<Vec<HealthEvent>>>,
    analyzer: Once<SharedResult<Search<AnalyzerFinding>>>,
    key_locations: Once<SharedResult<KeyLocationSearch>>,
    credential_report: Once<SharedResult<Vec<CredentialReportRow>>>,
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

    /// Returns the Security Hub findings naming the subject.
    pub async fn security_hub_findings(&self) -> SharedResult<Search<SecurityFinding>> {
        self.security_hub.clone().await
    }

    /// Returns the AWS Health events naming the subject.
    pub async fn health_events(&self) -> SharedResult<Vec<HealthEvent>> {
        self.health.clone().await
    }

    /// Returns the account's active IAM Access Analyzer findings.
    pub async fn access_analyzer_findings(&self) -> SharedResult<Search<AnalyzerFinding>> {
        self.analyzer.clone().await
    }

    /// Returns the places that store the key.
    pub async fn key_locations(&self) -> SharedResult<KeyLocationSearch> {
        self.key_locations.clone().await
    }

    /// Returns the account's IAM credential report.
    pub async fn credential_report(&self) -> SharedResult<Vec<CredentialReportRow>> {
        self.credential_report.clone().await
    }

    /// Returns the account ID from step 0, when known.
    pub fn account_id(&self) -> Option<&str> {
        self.account.as_ref()?.account_id.as_deref()
    }

    /// Returns a copy of the context whose CloudTrail events are `events`.
    fn with_events(&self, events: EventSet) -> StepContext {
        let events: EventsResult = Ok(Arc::new(events));
        StepContext {
            events: futures::future::ready(events).boxed().shared(),
            ..self.clone()
        }
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
    // `account_id` is recorded once step 0 resolves it, so lines logged before that lack it.
    let span = info_span!(
        "investigation",
        investigation_id = %investigation.id,
        key_id = %investigation.key,
        account_id = tracing::field::Empty,
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
    if let Some(account_id) = account.as_ref().and_then(|info| info.account_id.as_deref()) {
        tracing::Span::current().record("account_id", account_id);
    }
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
    let mut diagnosis = diagnosis::diagnose(&context.investigation, &reports);
    if diagnosis.verdict == diagnosis::Verdict::NoEvidence {
        if let Some((widened, note)) = widened_context(&context, &config).await {
            info!(note = %note, "widening the window");
            let _ = sender.send(Progress::Widened(note.clone())).await;
            let widened = Arc::new(widened);
            let mut running: FuturesUnordered<BoxFuture<'static, StepReport>> = FuturesUnordered::new();
            for step in WIDENED_STEPS {
                let _ = sender.send(Progress::Started(step)).await;
                running.push(spawn_step(step, Arc::clone(&widened), config.step_timeout));
            }
            while let Some(mut report) = running.next().await {
                report.summary = format!("{} (widened): {}", window_label(&widened), report.summary);
                let _ = sender.send(Progress::Finished(Box::new(report.clone()))).await;
                reports.retain(|r| r.step != report.step);
                reports.push(report);
            }
            reports.sort_by_key(|r| r.step);
            diagnosis = diagnosis::diagnose(&context.investigation, &reports);
            diagnosis.widened.insert(0, note);
        }
    }
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

/// Returns a context whose events cover the wider window, with a note saying what was
/// widened, or `None` when the window was fixed, is already as wide, or CloudTrail failed.
async fn widened_context(context: &StepContext, config: &PlaybookConfig) -> Option<(StepContext, String)> {
    let wider = config.widen_to?;
    if context.investigation.window.is_some() || wider <= context.investigation.window_length {
        return None;
    }
    let events = context.events().await.ok()?;
    let widened = events.rewindow(wider);
    let note = format!(
        "nothing correlated in the {}-hour window, so it was widened to {} days, {} to {}, from the same CloudTrail fetch",
        context.investigation.window_length.num_hours(),
        wider.num_days(),
        widened.window.start.format("%Y-%m-%d %H:%M"),
        widened.window.end.format("%Y-%m-%d %H:%M UTC"),
    );
    let mut context = context.with_events(widened);
    context.investigation.window_length = wider;
    Some((context, note))
}

fn window_label(context: &StepContext) -> String {
    format!("{}-day window", context.investigation.window_length.num_days().max(1))
}

/// Builds the shared context, starting the CloudTrail fetch, the owner lookups and every
/// evidence call, each as soon as what it needs is known, so that every step can wait on
/// them.
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
    let subject = spawn_shared({
        let evidence = Arc::clone(&evidence);
        let key = investigation.key.clone();
        let events = events.clone();
        async move { Arc::new(key::find_subject(evidence.as_ref(), &key, account_id, events).await) }
    });
    let owner = spawn_shared({
        let evidence = Arc::clone(&evidence);
        let key = investigation.key.clone();
        let subject = subject.clone();
        let events = events.clone();
        async move { Arc::new(key::find_owner(evidence.as_ref(), &key, subject, events).await) }
    });

    let guardduty = spawn_subject_call(&evidence, &subject, |evidence, subject| async move {
        evidence.guardduty_findings(&subject).await
    });
    let security_hub = spawn_subject_call(&evidence, &subject, |evidence, subject| async move {
        evidence.security_hub_findings(&subject).await
    });
    let health = spawn_subject_call(&evidence, &subject, |evidence, subject| async move {
        evidence.health_events(&subject).await
    });
    let analyzer = spawn_subject_call(&evidence, &subject, |evidence, subject| async move {
        evidence.access_analyzer_findings(&subject).await
    });
    let key_locations = spawn_subject_call(&evidence, &subject, |evidence, subject| async move {
        evidence.key_locations(&subject).await
    });
    let credential_report = spawn_shared({
        let evidence = Arc::clone(&evidence);
        async move { evidence.credential_report().await.map(Arc::new) }
    });

    StepContext {
        investigation,
        evidence,
        geo,
        account,
        events,
        owner,
        guardduty,
        security_hub,
        health,
        analyzer,
        key_locations,
        credential_report,
    }
}

/// Spawns an evidence call that names the key's owner, shared between steps. It starts
/// once the owner's name is known, without waiting for the owner's user record.
fn spawn_subject_call<T, F, Fut>(
    evidence: &Arc<dyn Evidence>,
    subject: &Once<Arc<SubjectFacts>>,
    call: F,
) -> Once<SharedResult<T>>
where
    T: Send + Sync + 'static,
    F: FnOnce(Arc<dyn Evidence>, Subject) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, EvidenceError>> + Send + 'static,
{
    let evidence = Arc::clone(evidence);
    let subject = subject.clone();
    spawn_shared(async move {
        let subject = subject.await.subject.clone();
        call(evidence, subject).await.map(Arc::new)
    })
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

/// Names a source that a search could not read, such as `secretsmanager:ListSecrets for
/// us-east-1`, for a step's summary and facts. The step's finding shows the whole error.
pub(crate) fn failed_source(error: &EvidenceError) -> String {
    match error {
        EvidenceError::Aws { operation, target, .. } => format!("{operation} for {target}"),
        EvidenceError::NotAvailable { what, .. } => what.clone(),
        EvidenceError::File { path, .. } => path.clone(),
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

#[cfg(test)]
mod tests;
