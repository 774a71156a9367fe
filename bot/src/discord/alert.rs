//! Alerts in watched channels. A message that names an access key, in a GuardDuty,
//! Security Hub or AWS Health alert or in plain text, starts an investigation in a thread
//! on that message. When the key is already under investigation, the bot replies with a
//! link to that thread instead. When an alert names several keys, the first is
//! investigated and the root message lists the others.
//!
//! Messages of people, webhooks and other bots count alike, but keycheck's own messages
//! never do. Each message is claimed once in the store, so several replicas on the gateway
//! start one investigation between them.

use std::sync::Arc;

use chrono::Utc;
use keycheck_core::alert::{self, Alert};
use keycheck_core::playbook::{AlertContext, Investigation, Origin};
use serde_json::json;
use serenity::model::channel::Message;
use serenity::model::id::{ChannelId, MessageId};
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::api::Call;
use super::interaction::{claim, duplicate_notice};
use super::message::{self, IncomingMessage};
use super::thread::{self, Anchor, RunError, Start};
use super::view::{NoticeView, RootContext, escape_markdown, user_mention};
use super::{DiscordBot, EVENT_TTL};
use crate::dedupe::{Claim, ThreadRecord};
use crate::user_error::internal_error;

/// Reads a message from the gateway and investigates the alert it carries.
pub(super) async fn handle(bot: Arc<DiscordBot>, message: Message) {
    let incoming = match message::read(&message, &bot.identity) {
        Ok(incoming) => incoming,
        Err(skipped) => {
            debug!(message_id = message.id.get(), reason = ?skipped, "ignored a message");
            return;
        }
    };
    let watched = bot.settings.watched_channels.iter().any(|id| *id == incoming.channel_id.to_string());
    if !watched {
        debug!(message_id = incoming.message_id, channel_id = incoming.channel_id, "ignored a message outside the watched channels");
        return;
    }
    let Some(alert) = alert::recognise(&incoming.text) else {
        debug!(message_id = incoming.message_id, channel_id = incoming.channel_id, "ignored a message that names no access key");
        return;
    };
    match bot.parts.dedupe.claim_event(&format!("discord:message:{}", incoming.message_id), EVENT_TTL).await {
        Ok(true) => {}
        Ok(false) => {
            debug!(message_id = incoming.message_id, "ignored a message another delivery already handled");
            return;
        }
        Err(error) => {
            let error = error.context(format!("claiming Discord message {}", incoming.message_id));
            internal_error(&error, "cannot record an alert message, so it is dropped");
            return;
        }
    }

    let investigation = alert_investigation(&bot, &incoming, &alert);
    let span = info_span!("discord_alert", investigation_id = %investigation.id, key_id = %investigation.key, channel_id = incoming.channel_id, message_id = incoming.message_id);
    run_alert(bot, incoming, alert, investigation).instrument(span).await;
}

async fn run_alert(bot: Arc<DiscordBot>, incoming: IncomingMessage, alert: Alert, investigation: Investigation) {
    info!(source = %alert.source, keys = alert.key_ids.len(), "recognised an alert");
    let record = ThreadRecord {
        investigation_id: investigation.id.clone(),
        channel: incoming.channel_id.to_string(),
        thread_ts: None,
        started_at: Utc::now(),
        abandoned: false,
    };
    match claim(&bot, &investigation, incoming.guild_id, record).await {
        Ok(Claim::New) => {}
        Ok(Claim::Existing(existing)) => {
            let notice = duplicate_notice(&bot, &investigation, existing).await;
            reply(&bot, &incoming, notice).await;
            return;
        }
        Err(error) => {
            let text = internal_error(&error, "cannot claim the investigation");
            reply(&bot, &incoming, NoticeView::plain(&text)).await;
            return;
        }
    }

    let key = investigation.key.clone();
    let investigation_id = investigation.id.clone();
    let start = Start {
        investigation,
        guild_id: incoming.guild_id,
        anchor: Anchor::Alert {
            channel_id: incoming.channel_id,
            message_id: incoming.message_id,
        },
        context: RootContext {
            requester: requester(&alert, &incoming),
            note: crate::chat::alert_note(&alert),
        },
    };
    let error = match thread::run(&bot, start).await {
        Ok(()) => return,
        Err(RunError::CannotPost(error)) => anyhow::Error::new(error).context("cannot start a thread on the alert"),
        Err(RunError::Other(error)) => error,
    };
    internal_error(&error, "the investigation of an alert could not start");
    if let Err(error) = bot.parts.dedupe.abandon(&key, &DiscordBot::scope(incoming.guild_id), &investigation_id).await {
        warn!(error = format!("{error:#}"), "cannot mark the investigation as abandoned");
    }
}

fn alert_investigation(bot: &DiscordBot, incoming: &IncomingMessage, alert: &Alert) -> Investigation {
    let mut investigation = Investigation::new(
        alert.key_ids[0].clone(),
        Origin::Alert {
            platform: "discord".to_string(),
            channel: incoming.channel_id.to_string(),
            source: alert.source.to_string(),
        },
    );
    investigation.window_length = chrono::Duration::from_std(bot.default_window).unwrap_or_else(|_| chrono::Duration::hours(24));
    investigation.alert = Some(AlertContext {
        source: alert.source.to_string(),
        finding_type: alert.finding_type.clone(),
        first_seen: alert.first_seen,
        source_ips: alert.source_ips.clone(),
    });
    investigation
}

/// Returns who or what started the investigation, as Discord markdown: the alert's kind
/// and its poster.
fn requester(alert: &Alert, incoming: &IncomingMessage) -> String {
    let what = match &alert.finding_type {
        Some(finding_type) => format!("{} alert ({finding_type})", alert.source),
        None => format!("{} alert", alert.source),
    };
    let poster = if incoming.automated {
        "posted by an integration".to_string()
    } else {
        format!("posted by {}", user_mention(incoming.author_id))
    };
    format!("{} {poster}", escape_markdown(&what))
}

/// Replies to the alert message, for a duplicate or a failure before the thread existed.
async fn reply(bot: &DiscordBot, incoming: &IncomingMessage, notice: NoticeView) {
    let mut message = bot.notice(notice);
    message["message_reference"] = json!({"message_id": incoming.message_id.to_string(), "fail_if_not_exists": false});
    let call = Call::CreateMessage { channel_id: ChannelId::new(incoming.channel_id) };
    if let Err(error) = bot.api.call(call, Some(message)).await {
        error!(error = %error, reply_to = %MessageId::new(incoming.message_id), "cannot reply to the alert message");
    }
}
