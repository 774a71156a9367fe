//! One investigation posted in one thread. The root message comes first, and the thread
//! starts from it (or from the alert). Each step follows as a message with an embed the
//! moment it finishes, then the diagnosis. Last, the root message is edited with the
//! verdict, the severity and the containment buttons.
//!
//! Messages go out one at a time, in the order the playbook reports them, so a
//! rate-limited message delays the ones after it but never overtakes or loses them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use keycheck_core::playbook::{self, Investigation, Outcome, Progress};
use keycheck_core::render::{DiagnosisView, StepView};
use keycheck_core::report::StepReport;
use serde_json::{Value, json};
use serenity::model::id::{ChannelId, MessageId};
use tracing::{error, info, warn};

use super::api::{ApiError, Call, THREAD_ALREADY_EXISTS, snowflake};
use super::view::{DiagnosisMessageView, NoticeView, RootContext, RootView, StepMessageView, escape_markdown};
use super::{DiscordBot, embeds};
use crate::user_error::internal_error;

/// How long a thread stays active without messages, in minutes: one day.
const AUTO_ARCHIVE_MINUTES: u64 = 1440;

/// The place of an investigation's root message.
#[derive(Clone, Debug)]
pub enum Anchor {
    /// The deferred response to `/keycheck`, reached with the interaction's token. The
    /// thread starts from it, unless the command ran in a thread (`in_thread`), which then
    /// takes the messages, because Discord starts no thread inside a thread.
    Interaction { token: String, channel_id: u64, in_thread: bool },
    /// A new message in the channel, from which the thread starts, or which starts the
    /// messages in a thread. Used when the interaction's response is ephemeral.
    Channel { channel_id: u64, in_thread: bool },
    /// An alert message: the thread starts from it, and the root message is the thread's
    /// first message.
    Alert { channel_id: u64, message_id: u64 },
}

/// The investigation to post, with its place and requester.
pub struct Start {
    /// The investigation, claimed by the caller.
    pub investigation: Investigation,
    /// The guild, which scopes containment actions.
    pub guild_id: u64,
    /// The place of the root message.
    pub anchor: Anchor,
    /// The requester and note shown in the root message.
    pub context: RootContext,
}

/// The reason an investigation has no thread.
#[derive(Debug)]
pub enum RunError {
    /// Discord rejected the root message or the thread because the bot may not see the
    /// channel, post in it or start threads in it.
    CannotPost(ApiError),
    /// Anything else before the thread existed.
    Other(anyhow::Error),
}

/// The posted root message, and how to edit it.
#[derive(Clone, Debug)]
enum Root {
    /// The interaction's response: edited through the token while it is valid (15
    /// minutes), then through the channel.
    Original { token: String, channel_id: u64, message_id: u64 },
    /// A message the bot posted in a channel or thread.
    Message { channel_id: u64, message_id: u64 },
}

impl Root {
    fn channel_id(&self) -> u64 {
        match self {
            Root::Original { channel_id, .. } | Root::Message { channel_id, .. } => *channel_id,
        }
    }

    fn message_id(&self) -> u64 {
        match self {
            Root::Original { message_id, .. } | Root::Message { message_id, .. } => *message_id,
        }
    }
}

/// Decrements the running count when the investigation ends, however it ends.
struct Running<'a>(&'a DiscordBot);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `start.investigation` and posts it. Returns an error only when no thread could be
/// posted. Later failures are reported in the thread or, when posting fails, in the log.
pub async fn run(bot: &Arc<DiscordBot>, start: Start) -> Result<(), RunError> {
    let Start { investigation, guild_id, anchor, context } = start;
    let evidence = bot.parts.evidence.open(&investigation.id).map_err(RunError::Other)?;
    let root_view = RootView::running(&investigation, &evidence.describe(), &context);
    let root_message = embeds::render(&bot.renderer, "root", &root_view).map_err(RunError::Other)?;
    let (root, thread_id) = post_root(bot, anchor, root_message, &thread_name(&investigation)).await?;
    let (channel, root_id, thread) = (root.channel_id().to_string(), root.message_id().to_string(), thread_id.to_string());
    if let Err(error) = bot.parts.dedupe.set_thread(&investigation.id, &channel, &root_id, &thread).await {
        warn!(error = format!("{error:#}"), "cannot record the investigation's thread");
    }

    bot.started.fetch_add(1, Ordering::SeqCst);
    bot.running.fetch_add(1, Ordering::SeqCst);
    let _running = Running(bot);
    let mut metrics = crate::metrics::track_investigation(&investigation.origin);
    info!(thread_id, root_message_id = root.message_id(), "investigation posted");

    let key = investigation.key.to_string();
    let investigation_id = investigation.id.clone();
    let post = Poster { bot, thread_id };
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
    let place = Place { guild_id, thread_id };
    update_root(bot, &root, root_view, &outcome, &key, &investigation_id, place).await;
    info!(verdict = diagnosis.verdict.label(), severity = diagnosis.severity.label(), "investigation finished");
    Ok(())
}

/// Returns the thread's name: keycheck and the key, within Discord's 100 characters.
fn thread_name(investigation: &Investigation) -> String {
    format!("keycheck {} · {}", investigation.key, investigation.id)
}

/// Posts the root message and starts the thread, and returns both.
async fn post_root(bot: &DiscordBot, anchor: Anchor, message: Value, name: &str) -> Result<(Root, u64), RunError> {
    let thread_body = json!({"name": name, "auto_archive_duration": AUTO_ARCHIVE_MINUTES});
    match anchor {
        Anchor::Interaction { token, channel_id, in_thread } => {
            let call = Call::EditOriginal {
                application_id: bot.identity.application_id.into(),
                token: &token,
            };
            let posted = bot.api.call(call, Some(message)).await.map_err(cannot_post)?;
            let message_id = posted_id(&posted)?;
            let thread_id = match in_thread {
                true => channel_id,
                false => start_thread(bot, channel_id, message_id, thread_body).await?,
            };
            Ok((Root::Original { token, channel_id, message_id }, thread_id))
        }
        Anchor::Channel { channel_id, in_thread } => {
            let call = Call::CreateMessage { channel_id: ChannelId::new(channel_id) };
            let posted = bot.api.call(call, Some(message)).await.map_err(cannot_post)?;
            let message_id = posted_id(&posted)?;
            if in_thread {
                return Ok((Root::Message { channel_id, message_id }, channel_id));
            }
            match start_thread(bot, channel_id, message_id, thread_body).await {
                Ok(thread_id) => Ok((Root::Message { channel_id, message_id }, thread_id)),
                Err(error) => {
                    let text = "keycheck could not start a thread on this message, so the investigation did not run.";
                    let root = Root::Message { channel_id, message_id };
                    edit_root(bot, &root, bot.notice(NoticeView::plain(text))).await;
                    Err(error)
                }
            }
        }
        Anchor::Alert { channel_id, message_id } => {
            let thread_id = start_thread(bot, channel_id, message_id, thread_body).await?;
            let call = Call::CreateMessage { channel_id: ChannelId::new(thread_id) };
            let posted = bot.api.call(call, Some(message)).await.map_err(cannot_post)?;
            let root_id = posted_id(&posted)?;
            Ok((Root::Message { channel_id: thread_id, message_id: root_id }, thread_id))
        }
    }
}

/// Starts a public thread from a message. A message that already has a thread (started by
/// a person, or by another replica) keeps it: its thread has the message's ID.
async fn start_thread(bot: &DiscordBot, channel_id: u64, message_id: u64, body: Value) -> Result<u64, RunError> {
    let call = Call::StartThread {
        channel_id: ChannelId::new(channel_id),
        message_id: MessageId::new(message_id),
    };
    match bot.api.call(call, Some(body)).await {
        Ok(thread) => snowflake(&thread, "id").ok_or_else(|| RunError::Other(anyhow::anyhow!("Discord returned a thread without an ID"))),
        Err(error) if error.code() == Some(THREAD_ALREADY_EXISTS) => {
            info!(message_id, "the message already has a thread; posting in it");
            Ok(message_id)
        }
        Err(error) => Err(cannot_post(error)),
    }
}

fn cannot_post(error: ApiError) -> RunError {
    if error.is_cannot_post() {
        RunError::CannotPost(error)
    } else {
        RunError::Other(error.into())
    }
}

fn posted_id(message: &Value) -> Result<u64, RunError> {
    snowflake(message, "id").ok_or_else(|| RunError::Other(anyhow::anyhow!("Discord returned a message without an ID")))
}

/// Posts messages in one thread, reporting failures in the log or, for render failures,
/// in the thread.
struct Poster<'a> {
    bot: &'a DiscordBot,
    thread_id: u64,
}

impl Poster<'_> {
    async fn step(&self, report: &StepReport) {
        let view = StepMessageView::new(&StepView::new(report));
        match embeds::render(&self.bot.renderer, "step", &view) {
            Ok(message) => self.send(message, report.step.name()).await,
            Err(error) => {
                let text = internal_error(&error, "cannot render a step");
                self.notice(NoticeView::plain(&format!("Step {}. {}: {text}", report.step.number(), report.step.title()))).await;
            }
        }
    }

    async fn diagnosis(&self, outcome: &Outcome, investigation_id: &str) {
        let view = DiagnosisMessageView::new(&DiagnosisView::new(&outcome.diagnosis), investigation_id);
        match embeds::render(&self.bot.renderer, "diagnosis", &view) {
            Ok(message) => self.send(message, "diagnosis").await,
            Err(error) => {
                let text = internal_error(&error, "cannot render the diagnosis");
                self.notice(NoticeView::plain(&format!("Diagnosis: {text}"))).await;
            }
        }
    }

    async fn notice(&self, notice: NoticeView) {
        self.send(self.bot.notice(notice), "notice").await;
    }

    async fn send(&self, message: Value, what: &str) {
        let call = Call::CreateMessage { channel_id: ChannelId::new(self.thread_id) };
        if let Err(error) = self.bot.api.call(call, Some(message)).await {
            error!(error = %error, thread_id = self.thread_id, message = what, "cannot post a message in the thread");
        }
    }
}

/// The guild and thread of an investigation, where its containment actions are offered.
#[derive(Clone, Copy, Debug)]
struct Place {
    guild_id: u64,
    thread_id: u64,
}

async fn update_root(
    bot: &DiscordBot,
    root: &Root,
    view: RootView,
    outcome: &Outcome,
    key: &str,
    investigation_id: &str,
    place: Place,
) {
    let (buttons, not_offered) = super::actions::offer(bot, outcome, place.guild_id, place.thread_id).await;
    let diagnosis = DiagnosisView::new(&outcome.diagnosis);
    let account = crate::chat::resolved_account(outcome);
    let mut view = view.finished(key, &diagnosis, account.as_deref(), investigation_id, buttons);
    if let Some(not_offered) = not_offered {
        let description = view.description.take().unwrap_or_default();
        view.description = Some(format!("{description}\n\n{}", escape_markdown(&not_offered)));
    }
    match embeds::render(&bot.renderer, "root", &view) {
        Ok(message) => edit_root(bot, root, message).await,
        Err(error) => {
            internal_error(&error, "cannot render the root message");
        }
    }
}

/// Edits the root message. An interaction's response is edited through its token, and
/// through its channel once the token expired, 15 minutes after the command.
async fn edit_root(bot: &DiscordBot, root: &Root, message: Value) {
    let (channel_id, message_id) = match root {
        Root::Original { token, channel_id, message_id } => {
            let call = Call::EditOriginal {
                application_id: bot.identity.application_id.into(),
                token,
            };
            match bot.api.call(call, Some(message.clone())).await {
                Ok(_) => return,
                Err(error) if error.is_expired_token() => {
                    info!("the interaction token expired, so the root message is edited through its channel");
                    (*channel_id, *message_id)
                }
                Err(error) => {
                    error!(error = %error, message_id = *message_id, "cannot edit the root message");
                    return;
                }
            }
        }
        Root::Message { channel_id, message_id } => (*channel_id, *message_id),
    };
    let call = Call::EditMessage {
        channel_id: ChannelId::new(channel_id),
        message_id: MessageId::new(message_id),
    };
    if let Err(error) = bot.api.call(call, Some(message)).await {
        error!(error = %error, channel_id, message_id, "cannot edit the root message");
    }
}
