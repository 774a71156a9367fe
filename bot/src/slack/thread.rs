//! One investigation posted in one thread: the root message, each step as a reply the
//! moment it finishes, the diagnosis, and the root message updated with the verdict.
//!
//! Replies go out one at a time, in the order the playbook reports them, so a rate-limited
//! reply delays the ones after it but never overtakes or loses them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use keycheck_core::playbook::{self, Investigation, Outcome, Progress};
use keycheck_core::render::view::DiagnosisView;
use keycheck_core::render::StepView;
use keycheck_core::report::StepReport;
use tracing::{info, warn};

use super::api::{ApiError, Message};
use super::blocks;
use super::view::{NoticeView, RootContext, RootView, SlackDiagnosisView, SlackStepView};
use super::SlackBot;
use crate::user_error::internal_error;

/// Error codes of `chat.postMessage` that mean the bot may not post in the channel.
const CANNOT_POST: [&str; 4] = ["not_in_channel", "channel_not_found", "is_archived", "restricted_action"];

/// The investigation to post, with its channel and requester.
pub struct Start {
    /// The investigation, claimed by the caller.
    pub investigation: Investigation,
    /// The channel ID.
    pub channel: String,
    /// For an alert: the alert message's `ts`, whose thread the replies go to. For a
    /// command: `None`, and the root message starts the thread.
    pub alert_ts: Option<String>,
    /// The requester and note shown in the root message.
    pub context: RootContext,
}

/// The reason an investigation posted nothing.
#[derive(Debug)]
pub enum RunError {
    /// Slack refused the root message: the bot is not in the channel, or may not post there.
    CannotPost(ApiError),
    /// Anything else before the root message was posted.
    Other(anyhow::Error),
}

/// Decrements the running count when the investigation ends, however it ends.
struct Running<'a>(&'a SlackBot);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `start.investigation` and posts it. Returns an error only when nothing was
/// posted; failures after the root message are reported in the thread.
pub async fn run(bot: &Arc<SlackBot>, start: Start) -> Result<(), RunError> {
    let Start { investigation, channel, alert_ts, context } = start;
    let evidence = bot.parts.evidence.open(&investigation.id).map_err(RunError::Other)?;
    let evidence_source = evidence.describe();

    let root_view = RootView::running(&investigation, &evidence_source, &context);
    let root = blocks::render(&bot.renderer, "root", &root_view).map_err(RunError::Other)?;
    let root_ts = match bot.api.post_message(&channel, alert_ts.as_deref(), &root).await {
        Ok(ts) => ts,
        Err(error) if error.code().is_some_and(|code| CANNOT_POST.contains(&code)) => return Err(RunError::CannotPost(error)),
        Err(error) => return Err(RunError::Other(error.into())),
    };
    let thread_ts = alert_ts.clone().unwrap_or_else(|| root_ts.clone());
    if let Err(error) = bot.parts.dedupe.set_thread(&investigation.id, &channel, &root_ts, &thread_ts).await {
        warn!(error = format!("{error:#}"), "cannot record the investigation's thread");
    }

    bot.started.fetch_add(1, Ordering::SeqCst);
    bot.running.fetch_add(1, Ordering::SeqCst);
    let _running = Running(bot);
    info!(root_ts = %root_ts, thread_ts = %thread_ts, "investigation posted");

    let key = investigation.key.to_string();
    let investigation_id = investigation.id.clone();
    let post = Poster { bot, channel: &channel, thread_ts: &thread_ts };
    let mut metrics = crate::metrics::track_investigation(&investigation.origin);
    let mut progress = playbook::run(investigation, evidence, Arc::clone(&bot.geo), bot.playbook.clone());
    let mut outcome = None;
    while let Some(message) = progress.recv().await {
        metrics.observe(&message);
        match message {
            Progress::Started(_) => {}
            Progress::Finished(report) => post.step(&report).await,
            Progress::Widened(note) => post.notice(NoticeView::plain(&format!("🔁 {note}"))).await,
            Progress::Diagnosed(done) => {
                outcome = Some(*done);
                break;
            }
        }
    }

    let Some(outcome) = outcome else {
        let text = internal_error(&anyhow::anyhow!("the playbook stopped without a diagnosis"), "investigation failed");
        post.notice(NoticeView::plain(&text)).await;
        return Ok(());
    };
    post.diagnosis(&outcome, &investigation_id).await;
    let diagnosis = &outcome.diagnosis;
    if let Err(error) = bot.parts.dedupe.finish(&investigation_id, diagnosis.verdict, diagnosis.severity).await {
        warn!(error = format!("{error:#}"), "cannot record the verdict");
    }
    update_root(bot, &channel, &root_ts, root_view, &outcome, &key, &investigation_id).await;
    info!(verdict = outcome.diagnosis.verdict.label(), severity = outcome.diagnosis.severity.label(), "investigation finished");
    Ok(())
}

/// Posts replies in one thread, reporting failures in the log or, for render failures,
/// in the thread.
struct Poster<'a> {
    bot: &'a SlackBot,
    channel: &'a str,
    thread_ts: &'a str,
}

impl Poster<'_> {
    async fn step(&self, report: &StepReport) {
        let view = SlackStepView::new(&StepView::new(report));
        match blocks::render(&self.bot.renderer, "step", &view) {
            Ok(message) => self.send(&message, report.step.name()).await,
            Err(error) => {
                let text = internal_error(&error, "cannot render a step");
                self.notice(NoticeView::plain(&format!("Step {}. {}: {text}", report.step.number(), report.step.title()))).await;
            }
        }
    }

    async fn diagnosis(&self, outcome: &Outcome, investigation_id: &str) {
        let view = SlackDiagnosisView::new(&DiagnosisView::new(&outcome.diagnosis), investigation_id);
        match blocks::render(&self.bot.renderer, "diagnosis", &view) {
            Ok(message) => self.send(&message, "diagnosis").await,
            Err(error) => {
                let text = internal_error(&error, "cannot render the diagnosis");
                self.notice(NoticeView::plain(&format!("Diagnosis: {text}"))).await;
            }
        }
    }

    async fn notice(&self, notice: NoticeView) {
        if let Some(message) = self.bot.notice(notice) {
            self.send(&message, "notice").await;
        }
    }

    async fn send(&self, message: &Message, what: &str) {
        if let Err(error) = self.bot.api.post_message(self.channel, Some(self.thread_ts), message).await {
            tracing::error!(error = %error, reply = what, "a reply could not be posted in the thread");
        }
    }
}

async fn update_root(
    bot: &SlackBot,
    channel: &str,
    root_ts: &str,
    view: RootView,
    outcome: &Outcome,
    key: &str,
    investigation_id: &str,
) {
    let (buttons, not_offered) = super::interaction::offer(bot, outcome, channel).await;
    let diagnosis = DiagnosisView::new(&outcome.diagnosis);
    let mut view = view.finished(key, &diagnosis, crate::chat::resolved_account(outcome).as_deref(), investigation_id, buttons);
    if let Some(not_offered) = not_offered {
        view.note = Some(match view.note.take() {
            Some(note) => format!("{note}\n{not_offered}"),
            None => not_offered,
        });
    }
    let message = match blocks::render(&bot.renderer, "root", &view) {
        Ok(message) => message,
        Err(error) => {
            internal_error(&error, "cannot render the root message");
            return;
        }
    };
    if let Err(error) = bot.api.update_message(channel, root_ts, &message).await {
        tracing::error!(error = %error, "the root message could not be updated with the verdict");
    }
}
