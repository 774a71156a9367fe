//! `/keycheck` from the interaction to its thread. The bot parses the options, runs the
//! declared checks and responds to Discord within its 3 seconds. It then claims the
//! investigation and posts it, or links the thread of the investigation that already runs
//! for the key.
//!
//! A rejected user or a malformed key gets an ephemeral message and nothing else.
//! Everything after the deferred response happens in a spawned task.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keycheck_core::playbook::{Investigation, Origin};
use serde_json::{Value, json};
use serenity::model::application::CommandInteraction;
use serenity::model::channel::ChannelType;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::access::Invoker;
use super::api::Call;
use super::command::{self, Keycheck};
use super::thread::{self, Anchor, RunError, Start};
use super::view::{NoticeView, RootContext, channel_mention, escape_markdown, user_mention};
use super::{DiscordBot, DiscordError, EPHEMERAL, EVENT_TTL};
use crate::dedupe::{Claim, ThreadRecord};
use crate::user_error::{UserError, internal_error};

/// How long a duplicate waits for the first investigation's thread to be posted before it
/// replies without a link.
const THREAD_WAIT: Duration = Duration::from_secs(5);

/// The parts of a `/keycheck` interaction that the spawned task needs.
#[derive(Clone, Debug)]
struct Invocation {
    interaction_id: u64,
    token: String,
    guild_id: u64,
    channel_id: u64,
    user_id: u64,
    /// True when the command ran in a thread, which then takes the investigation's
    /// messages.
    in_thread: bool,
    /// True when the response is ephemeral because a secret was pasted, so the root
    /// message goes to the channel and notices go out as ephemeral follow-ups.
    secret_pasted: bool,
}

/// Returns who ran the command, and where.
fn invoker(command: &CommandInteraction) -> Invoker {
    let in_thread = command.channel.as_ref().is_some_and(|channel| {
        matches!(channel.kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread)
    });
    Invoker {
        guild_id: command.guild_id.map(|id| id.get()),
        channel_id: command.channel_id.get(),
        parent_channel_id: command
            .channel
            .as_ref()
            .filter(|_| in_thread)
            .and_then(|channel| channel.parent_id)
            .map(|id| id.get()),
        user_id: command.user.id.get(),
        roles: command
            .member
            .as_ref()
            .map(|member| member.roles.iter().map(|role| role.get()).collect())
            .unwrap_or_default(),
    }
}

/// Handles a `/keycheck` interaction: responds at once, and runs the investigation in a
/// spawned task.
pub(super) async fn handle_command(bot: &Arc<DiscordBot>, command: CommandInteraction) {
    let interaction_id = command.id.get();
    if command.data.name != command::NAME {
        info!(command = %command.data.name, user_id = command.user.id.get(), "rejected an unknown command");
        let error = UserError::new(format!("keycheck has no command /{}: use /keycheck", command.data.name));
        bot.reject(interaction_id, &command.token, error.into()).await;
        return;
    }
    let request = match Keycheck::from_options(&command.data.options) {
        Ok(request) => request,
        Err(error) => {
            info!(user_id = command.user.id.get(), "rejected /keycheck: invalid options");
            bot.reject(interaction_id, &command.token, error.into()).await;
            return;
        }
    };
    let invoker = invoker(&command);
    if let Some((check, reason)) = bot.access.refusal(&invoker) {
        info!(user_id = invoker.user_id, channel_id = invoker.channel_id, check, "rejected /keycheck");
        bot.reject(interaction_id, &command.token, DiscordError::Rejected { check, reason }).await;
        return;
    }

    let invocation = Invocation {
        interaction_id,
        token: command.token.clone(),
        guild_id: invoker.guild_id.unwrap_or_default(),
        channel_id: invoker.channel_id,
        user_id: invoker.user_id,
        in_thread: invoker.parent_channel_id.is_some(),
        secret_pasted: request.secret_pasted,
    };
    if !acknowledge(bot, &invocation).await {
        return;
    }

    let mut investigation = Investigation::new(
        request.key,
        Origin::Command {
            platform: "discord".to_string(),
            user: command.user.global_name.clone().unwrap_or_else(|| command.user.name.clone()),
            channel: invocation.channel_id.to_string(),
        },
    );
    investigation.window_length = chrono::Duration::from_std(request.window.unwrap_or(bot.default_window))
        .unwrap_or_else(|_| chrono::Duration::hours(24));
    let span = info_span!("discord_command", investigation_id = %investigation.id, key_id = %investigation.key, user_id = invocation.user_id, channel_id = invocation.channel_id, guild_id = invocation.guild_id);
    let bot = Arc::clone(bot);
    tokio::spawn(async move { run_command(bot, invocation, investigation).await }.instrument(span));
}

/// Sends the response Discord needs within 3 seconds: a deferred public response, from
/// which the thread starts, or, when a secret was pasted, an ephemeral warning, so that
/// the command with its options stays visible to its user alone. Returns false when
/// Discord rejects the response, which ends the interaction.
async fn acknowledge(bot: &DiscordBot, invocation: &Invocation) -> bool {
    let body = if invocation.secret_pasted {
        let notice = NoticeView::plain(
            "You pasted a secret access key next to the key ID. keycheck did not store or echo it, but it passed through Discord: treat it as exposed and rotate the key. The investigation follows in this channel.",
        );
        let mut data = bot.notice(notice);
        data["flags"] = Value::from(EPHEMERAL);
        json!({"type": 4, "data": data})
    } else {
        json!({"type": 5})
    };
    let call = Call::InteractionCallback {
        interaction_id: invocation.interaction_id.into(),
        token: &invocation.token,
    };
    match bot.api.call(call, Some(body)).await {
        Ok(_) => true,
        Err(error) => {
            error!(error = %error, "cannot respond to /keycheck within Discord's 3 seconds");
            false
        }
    }
}

async fn run_command(bot: Arc<DiscordBot>, invocation: Invocation, investigation: Investigation) {
    // The claims run here rather than before the response, so a store write never delays
    // it. The store's claims are atomic, so of several deliveries exactly one runs.
    let event_key = format!("discord:interaction:{}", invocation.interaction_id);
    match bot.parts.dedupe.claim_event(&event_key, EVENT_TTL).await {
        Ok(true) => {}
        Ok(false) => {
            debug!("ignored a repeated delivery of a /keycheck interaction");
            return;
        }
        Err(error) => {
            tell_user(&bot, &invocation, DiscordError::Internal(error), "cannot record a /keycheck interaction").await;
            return;
        }
    }

    let record = ThreadRecord {
        investigation_id: investigation.id.clone(),
        channel: invocation.channel_id.to_string(),
        thread_ts: None,
        started_at: Utc::now(),
        abandoned: false,
    };
    match claim(&bot, &investigation, invocation.guild_id, record).await {
        Ok(Claim::New) => {}
        Ok(Claim::Existing(existing)) => {
            let notice = duplicate_notice(&bot, &investigation, existing).await;
            show(&bot, &invocation, notice).await;
            return;
        }
        Err(error) => {
            tell_user(&bot, &invocation, DiscordError::Internal(error), "cannot claim the investigation").await;
            return;
        }
    }

    let key = investigation.key.clone();
    let investigation_id = investigation.id.clone();
    let anchor = if invocation.secret_pasted {
        Anchor::Channel {
            channel_id: invocation.channel_id,
            in_thread: invocation.in_thread,
        }
    } else {
        Anchor::Interaction {
            token: invocation.token.clone(),
            channel_id: invocation.channel_id,
            in_thread: invocation.in_thread,
        }
    };
    let start = Start {
        investigation,
        guild_id: invocation.guild_id,
        anchor,
        context: RootContext {
            requester: user_mention(invocation.user_id),
            note: None,
        },
    };
    let notice = match thread::run(&bot, start).await {
        Ok(()) => return,
        Err(RunError::CannotPost(error)) => {
            info!(error_code = error.code().unwrap_or_default(), "cannot post or start a thread in the channel");
            NoticeView::plain(
                "keycheck cannot post or start a thread in this channel. Give it View Channel, Send Messages, Create Public Threads and Send Messages in Threads here, then run /keycheck again.",
            )
        }
        Err(RunError::Other(error)) => NoticeView::plain(&internal_error(&error, "the investigation could not start")),
    };
    if let Err(error) = bot.parts.dedupe.abandon(&key, &DiscordBot::scope(invocation.guild_id), &investigation_id).await {
        warn!(error = format!("{error:#}"), "cannot mark the investigation as abandoned");
    }
    show(&bot, &invocation, notice).await;
}

/// Reports an error to the user who ran the command.
async fn tell_user(bot: &DiscordBot, invocation: &Invocation, error: DiscordError, context: &str) {
    if invocation.secret_pasted {
        show(bot, invocation, error.notice(context)).await;
        return;
    }
    bot.report(&invocation.token, error, context).await;
}

/// Shows `notice` in place of the deferred response, or, when the response was an
/// ephemeral warning, as an ephemeral follow-up.
async fn show(bot: &DiscordBot, invocation: &Invocation, notice: NoticeView) {
    if !invocation.secret_pasted {
        bot.edit_original(&invocation.token, notice).await;
        return;
    }
    let mut message = bot.notice(notice);
    message["flags"] = Value::from(EPHEMERAL);
    let call = Call::Followup {
        application_id: bot.identity.application_id.into(),
        token: &invocation.token,
    };
    if let Err(error) = bot.api.call(call, Some(message)).await {
        error!(error = %error, "cannot send a follow-up to the user");
    }
}

/// Claims the investigation of its key in the guild for the duplicate window. An existing
/// investigation that was abandoned before it posted does not block a new one.
pub(super) async fn claim(
    bot: &DiscordBot,
    investigation: &Investigation,
    guild_id: u64,
    record: ThreadRecord,
) -> anyhow::Result<Claim> {
    let scope = DiscordBot::scope(guild_id);
    let claim = bot
        .parts
        .dedupe
        .claim_investigation(&investigation.key, &scope, bot.settings.duplicate_window(), record)
        .await?;
    match claim {
        Claim::Existing(existing) if existing.abandoned => {
            debug!(abandoned = %existing.investigation_id, "the earlier investigation never posted; running again");
            Ok(Claim::New)
        }
        claim => Ok(claim),
    }
}

/// Builds the reply to a second request for a key under investigation: a link to the
/// thread of the first.
pub(super) async fn duplicate_notice(bot: &DiscordBot, investigation: &Investigation, mut existing: ThreadRecord) -> NoticeView {
    let waited = tokio::time::Instant::now();
    while existing.thread_ts.is_none() && waited.elapsed() < THREAD_WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match bot.parts.dedupe.thread_of(&existing.investigation_id).await {
            Ok(Some(record)) => existing = record,
            Ok(None) => break,
            Err(error) => {
                warn!(existing = %existing.investigation_id, error = format!("{error:#}"), "cannot read the running investigation's thread, so the reply links its channel");
                break;
            }
        }
    }
    let minutes = (Utc::now() - existing.started_at).num_minutes();
    let when = if minutes < 1 { "less than a minute ago".to_string() } else { format!("{minutes} min ago") };
    info!(existing = %existing.investigation_id, "linked a duplicate request to the running investigation");
    let key = escape_markdown(investigation.key.as_str());
    let id = escape_markdown(&existing.investigation_id);
    let place = match existing.thread_ts.as_deref().and_then(|thread| thread.parse::<u64>().ok()) {
        Some(thread) => format!("see the thread {}", channel_mention(thread)),
        None => match existing.channel.parse::<u64>() {
            Ok(channel) => format!("in {}", channel_mention(channel)),
            Err(_) => "in another channel".to_string(),
        },
    };
    NoticeView::markdown(format!("{key} is already under investigation ({id}, started {when}): {place}"))
}
