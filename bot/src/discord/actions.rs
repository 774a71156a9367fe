//! Containment in Discord: the action buttons under a verdict, and the clicks on them and
//! on the approval requests, which arrive as message component interactions.
//!
//! `crate::containment`, shared with Slack, makes the decisions and keeps the store and the
//! audit log. This module turns a click into an approval click, with the clicker's role IDs
//! from the interaction, and shows the reply: the approval request or a result in the
//! investigation's thread, or a rejection visible only to the clicker.
//!
//! Discord threads are channels of their own, so the channel of every action is the
//! investigation's thread. The root message of a command sits in the parent channel, and
//! its thread has the message's ID, so a click on it counts as a click in that thread.

use std::sync::Arc;

use keycheck_core::approval::{Actor, Button, ChatChannel, Click, PendingAction, Platform};
use keycheck_core::playbook::Outcome;
use serde_json::{Value, json};
use serenity::model::application::ComponentInteraction;
use serenity::model::channel::ChannelType;
use serenity::model::id::ChannelId;
use tracing::{Instrument, error, info, info_span};

use super::action_view::{ActionResultView, ApprovalView, decision, offer_buttons, parse_custom_id, unavailable_note};
use super::api::Call;
use super::embeds;
use super::view::{ButtonView, NoticeView};
use super::{DiscordBot, EPHEMERAL};
use crate::containment::{ClickReply, Containment, PostCheck, plan_lines};
use crate::user_error::internal_error;

/// One click on a keycheck button.
#[derive(Clone, Debug)]
struct ButtonClick {
    interaction_id: u64,
    token: String,
    guild_id: u64,
    /// The investigation's thread: the click's channel when it is a thread, else the
    /// thread started from the clicked message.
    thread_id: u64,
    user_id: u64,
    user_name: String,
    roles: Vec<String>,
    button: Button,
    /// The action ID, or whatever a forged `custom_id` carried.
    value: String,
}

fn read_click(component: &ComponentInteraction) -> ButtonClick {
    let in_thread = component.channel.as_ref().is_some_and(|channel| {
        matches!(channel.kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread)
    });
    let thread_id = if in_thread { component.channel_id.get() } else { component.message.id.get() };
    let (button, value) = parse_custom_id(&component.data.custom_id);
    ButtonClick {
        interaction_id: component.id.get(),
        token: component.token.clone(),
        guild_id: component.guild_id.map(|id| id.get()).unwrap_or_default(),
        thread_id,
        user_id: component.user.id.get(),
        user_name: component.user.global_name.clone().unwrap_or_else(|| component.user.name.clone()),
        roles: component
            .member
            .as_ref()
            .map(|member| member.roles.iter().map(|role| role.get().to_string()).collect())
            .unwrap_or_default(),
        button,
        value: value.to_string(),
    }
}

/// Offers the containment actions of a finished investigation in its thread and returns
/// the buttons for the root message, with a note on the recommended actions that have
/// none. Without containment configured, or when offering fails, there are no buttons.
pub(super) async fn offer(bot: &DiscordBot, outcome: &Outcome, guild_id: u64, thread_id: u64) -> (Vec<ButtonView>, Option<String>) {
    let Some(containment) = &bot.containment else {
        return (Vec::new(), None);
    };
    let place = ChatChannel {
        platform: Platform::Discord,
        workspace: guild_id.to_string(),
        channel: thread_id.to_string(),
    };
    match containment.offer(outcome, &place).await {
        Ok(offer) => (offer_buttons(&offer), unavailable_note(&offer)),
        Err(error) => {
            let text = internal_error(&error, "cannot offer the containment actions");
            (Vec::new(), Some(format!("The containment buttons could not be prepared: {text}.")))
        }
    }
}

/// Handles a click: acknowledges it at once without changing the message, then decides
/// it and shows the result in a spawned task, because an approved action calls AWS.
pub(super) async fn handle_component(bot: &Arc<DiscordBot>, component: ComponentInteraction) {
    let click = read_click(&component);
    let Some(containment) = bot.containment.clone() else {
        info!(user_id = click.user_id, "rejected a click: containment is not configured on this bot");
        let text = "keycheck's containment buttons are turned off on this bot, so nothing was changed. An admin turns them on with [discord.approvals].";
        bot.respond_ephemeral(click.interaction_id, &click.token, NoticeView::plain(text)).await;
        return;
    };
    let call = Call::InteractionCallback {
        interaction_id: click.interaction_id.into(),
        token: &click.token,
    };
    if let Err(error) = bot.api.call(call, Some(json!({"type": 6}))).await {
        error!(error = %error, "cannot acknowledge a click within Discord's 3 seconds");
        return;
    }
    let span = info_span!("discord_click", user_id = click.user_id, thread_id = click.thread_id, button = ?click.button);
    let bot = Arc::clone(bot);
    tokio::spawn(async move { decide_click(&bot, &containment, click).await }.instrument(span));
}

async fn decide_click(bot: &Arc<DiscordBot>, containment: &Arc<Containment>, click: ButtonClick) {
    let approval_click = Click {
        actor: Actor {
            platform: Platform::Discord,
            user_id: click.user_id.to_string(),
            display_name: click.user_name.clone(),
        },
        groups: click.roles.clone(),
        channel: ChatChannel {
            platform: Platform::Discord,
            workspace: click.guild_id.to_string(),
            channel: click.thread_id.to_string(),
        },
        button: click.button,
    };
    let reply = match containment.click(&click.value, &approval_click).await {
        Ok(reply) => reply,
        Err(error) => {
            let text = internal_error(&error, "a containment click failed");
            tell_clicker(bot, &click, NoticeView::plain(&format!("Nothing was changed: {text}"))).await;
            return;
        }
    };
    show_reply(bot, containment, &click, reply).await;
}

/// Shows what a click did: in the thread for every change, to the clicker alone for a
/// rejected click.
async fn show_reply(bot: &Arc<DiscordBot>, containment: &Arc<Containment>, click: &ButtonClick, reply: ClickReply) {
    match reply {
        ClickReply::Requested(request) => {
            post_in_thread(bot, click, "approval", &ApprovalView::open(&request)).await;
        }
        ClickReply::Executed(execution) => {
            let result = if execution.outcome.changes.is_empty() { ": nothing needed changing" } else { ": done" };
            close_request(bot, containment, click, &execution.action, decision("✅", "Approved", &execution.approved_by, result)).await;
            post_in_thread(bot, click, "action_result", &ActionResultView::executed(&execution)).await;
            if let Some(check) = execution.post_check {
                schedule_post_check(bot, containment, click, check);
            }
        }
        ClickReply::Failed(failure) => {
            close_request(bot, containment, click, &failure.action, decision("❌", "Approved", &failure.approved_by, ": failed")).await;
            post_in_thread(bot, click, "action_result", &ActionResultView::failed(&failure)).await;
        }
        ClickReply::Rejected { action, by } => {
            close_request(bot, containment, click, &action, decision("🚫", "Rejected", &by, "")).await;
            post_in_thread(bot, click, "action_result", &ActionResultView::rejected(&action, &by)).await;
        }
        ClickReply::Dismissed { action, by, closed } => {
            edit_clicked(bot, click, json!({"components": []}), "cannot remove the action buttons from the root message").await;
            post_in_thread(bot, click, "action_result", &ActionResultView::dismissed(&action, &by, &closed)).await;
        }
        ClickReply::Refused(refusal) => {
            tell_clicker(bot, click, NoticeView::plain(&refusal.message())).await;
        }
    }
}

/// Replaces an approval request whose Approve or Reject was clicked with its closed form,
/// which has no buttons. A click on the root message's buttons (one-click approval)
/// leaves the root as it is.
async fn close_request(bot: &DiscordBot, containment: &Containment, click: &ButtonClick, action: &PendingAction, decision: String) {
    if click.button == Button::Request {
        return;
    }
    let view = ApprovalView::closed(action, &plan_lines(action), containment.policy().two_person_rule, Some(decision));
    match embeds::render(&bot.renderer, "approval", &view) {
        Ok(message) => edit_clicked(bot, click, message, "cannot remove the buttons of a decided approval request").await,
        Err(error) => {
            internal_error(&error, "cannot render a decided approval request");
        }
    }
}

/// Edits the message whose button was clicked, through the click's token.
async fn edit_clicked(bot: &DiscordBot, click: &ButtonClick, message: Value, failure: &str) {
    let call = Call::EditOriginal {
        application_id: bot.identity.application_id.into(),
        token: &click.token,
    };
    if let Err(error) = bot.api.call(call, Some(message)).await {
        error!(error = %error, "{failure}");
    }
}

/// Runs the post-deactivation check when it is due and posts its summary in the thread.
fn schedule_post_check(bot: &Arc<DiscordBot>, containment: &Arc<Containment>, click: &ButtonClick, check: PostCheck) {
    let bot = Arc::clone(bot);
    let containment = Arc::clone(containment);
    let click = click.clone();
    let span = info_span!("post_check", action_id = %check.action_id, key_id = %check.key_id, due_at = %check.due_at);
    info!(parent: &span, "post-deactivation check scheduled");
    tokio::spawn(
        async move {
            let view = match containment.run_post_check(&check).await {
                Ok(report) => ActionResultView::post_check(&check, &report),
                Err(error) => {
                    let text = internal_error(&error, "the post-deactivation check failed");
                    ActionResultView::post_check_failed(&check, &text)
                }
            };
            post_in_thread(&bot, &click, "action_result", &view).await;
        }
        .instrument(span),
    );
}

/// Renders template `name` with `view` and posts it in the click's thread.
async fn post_in_thread<T: serde::Serialize>(bot: &DiscordBot, click: &ButtonClick, name: &str, view: &T) {
    let message = match embeds::render(&bot.renderer, name, view) {
        Ok(message) => message,
        Err(error) => embeds::plain(&internal_error(&error, "cannot render a containment message")),
    };
    let call = Call::CreateMessage { channel_id: ChannelId::new(click.thread_id) };
    if let Err(error) = bot.api.call(call, Some(message)).await {
        error!(error = %error, template = name, "a containment message could not be posted in the thread");
    }
}

/// Shows `notice` to the clicker alone, as an ephemeral follow-up to the acknowledged
/// click.
async fn tell_clicker(bot: &DiscordBot, click: &ButtonClick, notice: NoticeView) {
    let mut message = bot.notice(notice);
    message["flags"] = Value::from(EPHEMERAL);
    let call = Call::Followup {
        application_id: bot.identity.application_id.into(),
        token: &click.token,
    };
    if let Err(error) = bot.api.call(call, Some(message)).await {
        error!(error = %error, user_id = click.user_id, "cannot show a notice to the clicker");
    }
}
