//! The Slack bot: `/keycheck` commands and alerts in watched channels, each turned into an
//! investigation whose steps are posted as replies in one thread.
//!
//! Events arrive over Socket Mode (`socket`) or the HTTP Events API (`http`). Both hand
//! them to [`SlackBot`], which responds at once and does the work in a spawned task. The
//! modules split the work by concern: `signature` verifies HTTP requests, `command`
//! parses the command text, `access` decides who may run it, `message` reads alert
//! messages, `dedupe` stops repeated runs, `thread` posts an investigation, `blocks`
//! renders messages within Block Kit's limits, `api` calls the Web API, and
//! `interaction` offers the containment buttons and handles their clicks.

pub mod access;
pub mod action_view;
pub mod api;
pub mod blocks;
pub mod command;
pub use crate::dedupe;
pub mod http;
pub mod interaction;
pub mod manifest;
pub mod message;
pub mod signature;
pub mod socket;
pub mod thread;
pub mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use keycheck_core::alert::{self, Alert};
use keycheck_core::geo::Geo;
use keycheck_core::playbook::{AlertContext, Investigation, Origin, PlaybookConfig};
use keycheck_core::render::Renderer;
use serde_json::Value;
use tracing::{Instrument, debug, info, info_span, warn};

use keycheck_core::approval::{Actor, Platform};
use keycheck_core::store::Store;

use self::access::{Access, AccessPolicy, GroupMembers};
use self::api::{BotIdentity, Message, RetryPolicy, SlackApi};
use self::command::CommandRequest;
use self::dedupe::{Claim, Dedupe, ThreadRecord};
use self::thread::{RunError, Start};
use self::view::{HelpView, NoticeView, RootContext};
use crate::config::Config;
use crate::containment::{Containment, RemediatorFactory};
use crate::serve::EvidenceFactory;
use crate::user_error::internal_error;

/// How long a delivered event or command is remembered, so that a retry of it is
/// recognised. Slack's Events API retries an event up to three times within about five
/// minutes, so two hours leaves a wide margin.
pub const EVENT_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// How long a duplicate waits for the first investigation's thread to be posted before it
/// replies without a link.
const THREAD_WAIT: Duration = Duration::from_secs(5);

/// The secrets of the Slack app, read from the environment by `serve`.
#[derive(Clone)]
pub struct SlackSecrets {
    /// The bot token, `xoxb-…` (`SLACK_BOT_TOKEN`).
    pub bot_token: String,
    /// The app-level token for Socket Mode, `xapp-…` (`SLACK_APP_TOKEN`).
    pub app_token: Option<String>,
    /// The signing secret for the HTTP Events API (`SLACK_SIGNING_SECRET`).
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for SlackSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackSecrets(…)")
    }
}

/// A `/keycheck` invocation, from either transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlashCommand {
    /// The workspace ID.
    pub team_id: String,
    /// The channel the command was typed in.
    pub channel_id: String,
    /// The user who typed it.
    pub user_id: String,
    /// The user's name, when Slack sent it.
    pub user_name: Option<String>,
    /// The command, such as `/keycheck`.
    pub command: String,
    /// The text after the command.
    pub text: String,
    /// The invocation's unique ID, which a redelivery repeats.
    pub trigger_id: String,
    /// The URL that reaches the user for 30 minutes, even in a channel the bot is not in.
    pub response_url: Option<String>,
}

/// The components of the bot besides the configuration.
pub struct BotParts {
    /// The evidence source of every investigation and post-deactivation check.
    pub evidence: Arc<dyn EvidenceFactory>,
    /// The deduplication state.
    pub dedupe: Arc<dyn Dedupe>,
    /// The store of pending containment actions and the audit log.
    pub store: Store,
    /// The AWS clients that plan and run containment actions.
    pub remediators: Arc<dyn RemediatorFactory>,
    /// The retry policy of Web API calls.
    pub retry: RetryPolicy,
}

/// The running bot: configuration, Web API client and shared state.
pub struct SlackBot {
    settings: crate::config::SlackSettings,
    api: SlackApi,
    identity: BotIdentity,
    renderer: Renderer,
    geo: Arc<Geo>,
    playbook: PlaybookConfig,
    default_window: Duration,
    default_window_text: String,
    access: AccessPolicy,
    /// The containment service behind the buttons, or `None` when containment is off
    /// (see [`containment`]).
    containment: Option<Arc<Containment>>,
    /// The user groups of clickers, for the approval policy.
    approval_groups: GroupMembers,
    parts: BotParts,
    started: AtomicUsize,
    running: AtomicUsize,
}

impl SlackBot {
    /// Builds the bot and learns who it is from `auth.test`.
    pub async fn connect(config: &Config, secrets: &SlackSecrets, parts: BotParts) -> anyhow::Result<Arc<SlackBot>> {
        let api = SlackApi::new(&config.slack.api_url, &secrets.bot_token, parts.retry.clone());
        let identity = api
            .auth_test()
            .await
            .context("cannot authenticate with Slack: check SLACK_BOT_TOKEN and slack.api_url")?;
        info!(user_id = %identity.user_id, bot_id = identity.bot_id.as_deref().unwrap_or("-"), team_id = identity.team_id.as_deref().unwrap_or("-"), "connected to Slack");

        let renderer = Renderer::with_overrides(config.templates.as_deref())?;
        let geo = Arc::new(Geo::open(&config.geo).context("cannot open the geolocation databases")?);
        let playbook = crate::chat::playbook_config(&config.playbook)?;
        let containment = containment(config, &parts, &identity)?;
        Ok(Arc::new(SlackBot {
            settings: config.slack.clone(),
            api,
            identity,
            renderer,
            geo,
            playbook,
            default_window: config.playbook.window(),
            default_window_text: config.playbook.window.clone(),
            access: AccessPolicy::new(&config.slack),
            containment,
            approval_groups: GroupMembers::with_ttl(access::APPROVAL_GROUP_CACHE_TTL),
            parts,
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }))
    }

    /// Returns the Web API client.
    pub fn api(&self) -> &SlackApi {
        &self.api
    }

    /// Returns who the bot is.
    pub fn identity(&self) -> &BotIdentity {
        &self.identity
    }

    /// Returns how many investigations started since the bot started.
    pub fn investigations_started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Returns how many investigations are running now.
    pub fn investigations_running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Handles a `/keycheck` command and returns the ephemeral reply to send with the
    /// acknowledgement, if any. The investigation itself runs in a spawned task, so this
    /// returns within milliseconds.
    pub async fn handle_command(self: &Arc<Self>, command: SlashCommand) -> Option<Message> {
        let request = match command::parse(&command.text) {
            Ok(request) => request,
            Err(error) => return self.notice(NoticeView::plain(&error.0)),
        };
        let CommandRequest::Investigate { key, window, secret_pasted } = request else {
            return self.help(&command.command);
        };

        let check_groups = match self.access.check(&command.user_id, &command.channel_id) {
            Access::Allowed => false,
            Access::CheckGroups => true,
            Access::Refused(text) => {
                info!(user_id = %command.user_id, channel = %command.channel_id, "rejected /keycheck: channel or user not allowed");
                return self.notice(NoticeView::mrkdwn(&text, text.clone()));
            }
        };

        let mut investigation = Investigation::new(
            key,
            Origin::Command {
                platform: "slack".to_string(),
                user: command.user_name.clone().unwrap_or_else(|| command.user_id.clone()),
                channel: command.channel_id.clone(),
            },
        );
        investigation.window_length = chrono::Duration::from_std(window.unwrap_or(self.default_window))
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        let span = info_span!("slack_command", investigation_id = %investigation.id, key_id = %investigation.key, user_id = %command.user_id, channel = %command.channel_id);
        let bot = Arc::clone(self);
        tokio::spawn(async move { bot.run_command(command, investigation, check_groups).await }.instrument(span));

        if secret_pasted {
            return self.notice(NoticeView::plain(
                "You pasted a secret access key next to the key ID. keycheck did not store or echo it, but it passed through Slack: treat it as exposed and rotate the key. The investigation follows in this channel.",
            ));
        }
        None
    }

    async fn run_command(self: Arc<Self>, command: SlashCommand, investigation: Investigation, check_groups: bool) {
        // The claim runs here rather than before the acknowledgement, so a store write never
        // delays it. The store's claim is atomic, so of several deliveries exactly one runs.
        let event_key = format!("slack:command:{}", command.trigger_id);
        match self.parts.dedupe.claim_event(&event_key, EVENT_TTL).await {
            Ok(true) => {}
            Ok(false) => {
                debug!(trigger_id = %command.trigger_id, "ignored a redelivered command");
                return;
            }
            Err(error) => {
                let text = internal_error(&error, "cannot record a command");
                self.tell_user(&command, NoticeView::plain(&text)).await;
                return;
            }
        }

        if check_groups {
            let allowed = self.access.in_allowed_group(&self.api, &command.user_id).await;
            let refusal = match allowed {
                Ok(true) => None,
                Ok(false) => Some(access::refusal()),
                Err(error) => Some(internal_error(&error.into(), "cannot read the allowed user groups")),
            };
            if let Some(text) = refusal {
                info!("rejected /keycheck: not in an allowed user group");
                self.tell_user(&command, NoticeView::plain(&text)).await;
                return;
            }
        }

        let record = ThreadRecord {
            investigation_id: investigation.id.clone(),
            channel: command.channel_id.clone(),
            thread_ts: None,
            started_at: Utc::now(),
            abandoned: false,
        };
        match self.claim(&investigation, record).await {
            Ok(Claim::New) => {}
            Ok(Claim::Existing(existing)) => {
                let notice = self.duplicate_notice(&investigation, existing).await;
                self.tell_user(&command, notice).await;
                return;
            }
            Err(error) => {
                let text = internal_error(&error, "cannot claim the investigation");
                self.tell_user(&command, NoticeView::plain(&text)).await;
                return;
            }
        }

        let key = investigation.key.clone();
        let investigation_id = investigation.id.clone();
        let start = Start {
            investigation,
            channel: command.channel_id.clone(),
            alert_ts: None,
            context: RootContext {
                requester_mrkdwn: view::user_mention(&command.user_id),
                note: None,
            },
        };
        let result = thread::run(&self, start).await;
        let notice = match result {
            Ok(()) => return,
            Err(RunError::CannotPost(error)) => {
                info!(error_code = error.code().unwrap_or("-"), "cannot post in the channel; telling the user how to invite keycheck");
                NoticeView::plain(&format!(
                    "keycheck cannot post in this channel ({}). Invite it with `/invite @keycheck`, then run {} again.",
                    error.code().unwrap_or("no access"),
                    command.command
                ))
            }
            Err(RunError::Other(error)) => NoticeView::plain(&internal_error(&error, "the investigation could not start")),
        };
        if let Err(error) = self.parts.dedupe.abandon(&key, &self.scope(), &investigation_id).await {
            warn!(error = format!("{error:#}"), "cannot mark the investigation as abandoned");
        }
        self.tell_user(&command, notice).await;
    }

    /// Shows `notice` to the user who typed `command`: through the command's
    /// `response_url`, which works in channels keycheck is not in, else as an ephemeral
    /// message.
    async fn tell_user(&self, command: &SlashCommand, notice: NoticeView) {
        let Some(message) = self.notice(notice) else { return };
        if let Some(url) = &command.response_url {
            let mut body = serde_json::json!({"response_type": "ephemeral", "text": message.text, "blocks": message.blocks});
            api::redact_strings(&mut body);
            match self.api.respond(url, body).await {
                Ok(()) => return,
                Err(error) => warn!(error = %error, "cannot reply through response_url; trying chat.postEphemeral"),
            }
        }
        if let Err(error) = self.api.post_ephemeral(&command.channel_id, &command.user_id, &message).await {
            warn!(error = %error, "cannot show an ephemeral message to the user");
        }
    }

    /// Handles an interaction payload (a `block_actions` click on a containment button)
    /// in a spawned task, so the caller acknowledges it at once.
    pub fn handle_interaction(self: &Arc<Self>, payload: Value) {
        let bot = Arc::clone(self);
        tokio::spawn(interaction::handle(bot, payload));
    }

    /// Handles an `event_callback` payload in a spawned task, which drops repeated
    /// deliveries of one event (same `event_id`).
    pub async fn handle_event(self: &Arc<Self>, callback: Value) {
        let bot = Arc::clone(self);
        tokio::spawn(async move { bot.claim_and_run_event(callback).await });
    }

    async fn claim_and_run_event(self: Arc<Self>, callback: Value) {
        let event_id = callback.get("event_id").and_then(Value::as_str).unwrap_or_default().to_string();
        if !event_id.is_empty() {
            match self.parts.dedupe.claim_event(&format!("slack:event:{event_id}"), EVENT_TTL).await {
                Ok(true) => {}
                Ok(false) => {
                    debug!(event_id = %event_id, "ignored a redelivered event");
                    return;
                }
                Err(error) => {
                    internal_error(&error, "cannot record an event; dropping it");
                    return;
                }
            }
        }
        let Some(event) = callback.get("event").cloned() else {
            debug!(event_id = %event_id, "ignored an event callback without an event");
            return;
        };
        self.run_alert(event_id, event).await;
    }

    async fn run_alert(self: Arc<Self>, event_id: String, event: Value) {
        let message = match message::read(&event, &self.identity.user_id, self.identity.bot_id.as_deref()) {
            Ok(message) => message,
            Err(skipped) => {
                debug!(event_id = %event_id, reason = ?skipped, "ignored a message event");
                return;
            }
        };
        if !self.settings.watched_channels.contains(&message.channel) {
            debug!(event_id = %event_id, channel = %message.channel, "ignored a message outside the watched channels");
            return;
        }
        let Some(alert) = alert::recognise(&message.text) else {
            debug!(event_id = %event_id, channel = %message.channel, "ignored a message that names no access key");
            return;
        };

        let investigation = self.alert_investigation(&message, &alert);
        let span = info_span!("slack_alert", investigation_id = %investigation.id, key_id = %investigation.key, channel = %message.channel, event_id = %event_id);
        async {
            info!(source = %alert.source, keys = alert.key_ids.len(), "recognised an alert");
            let record = ThreadRecord {
                investigation_id: investigation.id.clone(),
                channel: message.channel.clone(),
                thread_ts: Some(message.ts.clone()),
                started_at: Utc::now(),
                abandoned: false,
            };
            match self.claim(&investigation, record).await {
                Ok(Claim::New) => {}
                Ok(Claim::Existing(existing)) => {
                    let notice = self.duplicate_notice(&investigation, existing).await;
                    self.reply_in_thread(&message.channel, &message.ts, notice).await;
                    return;
                }
                Err(error) => {
                    let text = internal_error(&error, "cannot claim the investigation");
                    self.reply_in_thread(&message.channel, &message.ts, NoticeView::plain(&text)).await;
                    return;
                }
            }

            let key = investigation.key.clone();
            let investigation_id = investigation.id.clone();
            let start = Start {
                investigation,
                channel: message.channel.clone(),
                alert_ts: Some(message.ts.clone()),
                context: RootContext {
                    requester_mrkdwn: alert_requester(&alert, &message),
                    note: crate::chat::alert_note(&alert),
                },
            };
            let error = match thread::run(&self, start).await {
                Ok(()) => return,
                Err(RunError::CannotPost(error)) => anyhow::Error::new(error).context("cannot post in the alert's channel"),
                Err(RunError::Other(error)) => error,
            };
            let text = internal_error(&error, "the investigation of an alert could not start");
            if let Err(error) = self.parts.dedupe.abandon(&key, &self.scope(), &investigation_id).await {
                warn!(error = format!("{error:#}"), "cannot mark the investigation as abandoned");
            }
            self.reply_in_thread(&message.channel, &message.ts, NoticeView::plain(&text)).await;
        }
        .instrument(span)
        .await
    }

    fn alert_investigation(&self, message: &message::IncomingMessage, alert: &Alert) -> Investigation {
        let mut investigation = Investigation::new(
            alert.key_ids[0].clone(),
            Origin::Alert {
                platform: "slack".to_string(),
                channel: message.channel.clone(),
                source: alert.source.to_string(),
            },
        );
        investigation.window_length =
            chrono::Duration::from_std(self.default_window).unwrap_or_else(|_| chrono::Duration::hours(24));
        investigation.alert = Some(AlertContext {
            source: alert.source.to_string(),
            finding_type: alert.finding_type.clone(),
            first_seen: alert.first_seen,
            source_ips: alert.source_ips.clone(),
        });
        investigation
    }

    /// Claims the investigation of its key in this workspace for the duplicate window. An
    /// existing investigation that was abandoned before it posted does not block a new one.
    async fn claim(&self, investigation: &Investigation, record: ThreadRecord) -> anyhow::Result<Claim> {
        let claim = self
            .parts
            .dedupe
            .claim_investigation(&investigation.key, &self.scope(), self.settings.duplicate_window(), record)
            .await?;
        match claim {
            Claim::Existing(existing) if existing.abandoned => {
                debug!(abandoned = %existing.investigation_id, "the earlier investigation never posted; running again");
                Ok(Claim::New)
            }
            claim => Ok(claim),
        }
    }

    /// Returns the deduplication scope: the workspace, so that one key has one thread
    /// however many channels ask.
    pub(crate) fn scope(&self) -> String {
        self.identity.team_id.clone().unwrap_or_else(|| "workspace".to_string())
    }

    /// Builds the answer to a second request for a key under investigation: a link to the
    /// thread of the first.
    async fn duplicate_notice(&self, investigation: &Investigation, mut existing: ThreadRecord) -> NoticeView {
        let key = investigation.key.to_string();
        let waited = tokio::time::Instant::now();
        while existing.thread_ts.is_none() && waited.elapsed() < THREAD_WAIT {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.parts.dedupe.thread_of(&existing.investigation_id).await {
                Ok(Some(record)) => existing = record,
                _ => break,
            }
        }
        let minutes = (Utc::now() - existing.started_at).num_minutes();
        let when = if minutes < 1 { "less than a minute ago".to_string() } else { format!("{minutes} min ago") };
        info!(existing = %existing.investigation_id, "linked a duplicate request to the running investigation");
        let Some(thread_ts) = &existing.thread_ts else {
            let text = format!("{key} is already under investigation ({}, started {when}) in {}.", existing.investigation_id, view::channel_mention(&existing.channel));
            return NoticeView::mrkdwn(&text, text.clone());
        };
        let url = match self.api.permalink(&existing.channel, thread_ts).await {
            Ok(url) => url,
            Err(_) => constructed_permalink(self.identity.url.as_deref(), &existing.channel, thread_ts),
        };
        let text = format!("{key} is already under investigation ({}, started {when}): {url}", existing.investigation_id);
        let body = format!(
            "`{key}` is already under investigation ({}, started {when}): {}",
            existing.investigation_id,
            view::link(&url, "see the thread")
        );
        NoticeView::mrkdwn(&text, body)
    }

    async fn reply_in_thread(&self, channel: &str, thread_ts: &str, notice: NoticeView) {
        let Some(message) = self.notice(notice) else { return };
        if let Err(error) = self.api.post_message(channel, Some(thread_ts), &message).await {
            warn!(error = %error, "cannot reply in the alert's thread");
        }
    }

    /// Renders a notice; a render failure is logged and gives a plain message.
    fn notice(&self, notice: NoticeView) -> Option<Message> {
        match blocks::render(&self.renderer, "notice", &notice) {
            Ok(message) => Some(message),
            Err(error) => Some(Message::text(internal_error(&error, "cannot render a notice"))),
        }
    }

    fn help(&self, command: &str) -> Option<Message> {
        let view = HelpView {
            command: if command.is_empty() { "/keycheck".to_string() } else { command.to_string() },
            default_window: self.default_window_text.clone(),
            duplicate_window: self.settings.duplicate_window.clone(),
            example_key: "AKIAIOSFODNN7EXAMPLE".to_string(),
        };
        match blocks::render(&self.renderer, "help", &view) {
            Ok(message) => Some(message),
            Err(error) => Some(Message::text(internal_error(&error, "cannot render the help"))),
        }
    }
}

/// Builds the containment service of `[slack.approvals]`, or returns `None` when it names
/// no approver or the bot runs on the demonstration incident, which is in no AWS account.
fn containment(config: &Config, parts: &BotParts, identity: &BotIdentity) -> anyhow::Result<Option<Arc<Containment>>> {
    let approvals = &config.slack.approvals;
    if !approvals.enabled() {
        info!("containment buttons off: slack.approvals names no approver");
        return Ok(None);
    }
    if config.evidence.source == crate::config::EvidenceSource::Demo {
        info!("containment buttons off: the demonstration incident is in no AWS account");
        return Ok(None);
    }
    let bot = Actor {
        platform: Platform::Slack,
        user_id: identity.user_id.clone(),
        display_name: "keycheck".to_string(),
    };
    let containment = Containment::new(
        parts.store.clone(),
        approvals.policy(),
        Arc::clone(&parts.remediators),
        Arc::clone(&parts.evidence),
        config.contain.post_check_delay().context("invalid contain.post_check_delay")?,
        bot,
    );
    info!(two_person_rule = approvals.two_person_rule, expiry = %approvals.expiry, "containment buttons on");
    Ok(Some(Arc::new(containment)))
}

/// Builds a message link without calling Slack: `{workspace}/archives/{channel}/p{ts}`.
pub fn constructed_permalink(workspace_url: Option<&str>, channel: &str, ts: &str) -> String {
    let base = workspace_url.unwrap_or("https://slack.com/").trim_end_matches('/');
    format!("{base}/archives/{channel}/p{}", ts.replace('.', ""))
}

fn alert_requester(alert: &Alert, message: &message::IncomingMessage) -> String {
    let poster = match (&message.user, &message.bot_id) {
        (Some(user), _) => format!("posted by {}", view::user_mention(user)),
        (None, Some(_)) => "posted by an integration".to_string(),
        (None, None) => "posted in this channel".to_string(),
    };
    let what = match &alert.finding_type {
        Some(finding_type) => format!("{} alert ({})", alert.source, finding_type),
        None => format!("{} alert", alert.source),
    };
    format!("{} {poster}", keycheck_core::render::escape_slack(&what))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructed_permalink_drops_dot() {
        assert_eq!(
            constructed_permalink(Some("https://example.slack.com/"), "C1", "1700000000.000100"),
            "https://example.slack.com/archives/C1/p1700000000000100"
        );
    }
}
