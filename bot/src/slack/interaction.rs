//! Containment in Slack: the action buttons under a verdict, and the clicks on them and
//! on the approval requests, which arrive as `block_actions` interactions over HTTP
//! (`/slack/interactions`) or Socket Mode.
//!
//! The decisions and the store are `containment`'s business. This module turns a
//! payload into an approval click, with the clicker's user groups from
//! `usergroups.users.list`, and shows the reply: the approval request or a result in the
//! investigation's thread, or a refusal shown only to the clicker.

use std::sync::Arc;

use keycheck_core::approval::{Actor, Button, ChatChannel, Click, Platform};
use keycheck_core::playbook::Outcome;
use serde_json::{Value, json};
use tracing::{Instrument, debug, info, info_span, warn};

use super::SlackBot;
use super::action_view::{
    APPROVE_ACTION, ActionResultView, ApprovalView, REJECT_ACTION, REQUEST_ACTION_PREFIX, ROOT_ACTIONS_BLOCK,
    decision, offer_buttons, unavailable_note,
};
use super::api::Message;
use super::blocks;
use super::view::{ButtonView, NoticeView, user_mention};
use crate::containment::{ClickReply, Containment, PostCheck, plan_lines};
use crate::user_error::internal_error;

/// One click on a keycheck button, read from a `block_actions` payload.
#[derive(Clone, Debug, PartialEq)]
pub struct ButtonClick {
    /// The workspace the click came from.
    pub team_id: String,
    /// The channel of the message whose button was clicked.
    pub channel_id: String,
    pub user_id: String,
    /// The user's name, when Slack sent it.
    pub user_name: Option<String>,
    pub button: Button,
    /// The button's value: the action ID, or whatever a forged payload put there.
    pub value: String,
    /// The `ts` of the message whose button was clicked.
    pub message_ts: Option<String>,
    /// The thread to reply in: the message's thread, or the message itself.
    pub thread_ts: Option<String>,
    /// The URL that shows a reply to the clicker alone.
    pub response_url: Option<String>,
    /// The clicked message as Slack sent it, for removing its buttons.
    pub message: Option<Value>,
}

/// Reads the clicks on keycheck's buttons from an interaction payload. Other
/// interactions and other apps' buttons give none.
pub fn read_clicks(payload: &Value) -> Vec<ButtonClick> {
    if payload.get("type").and_then(Value::as_str) != Some("block_actions") {
        return Vec::new();
    }
    let text = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str).map(str::to_string);
    let team_id = text("/team/id").or_else(|| text("/user/team_id")).unwrap_or_default();
    let channel_id = text("/channel/id").or_else(|| text("/container/channel_id")).unwrap_or_default();
    let user_id = text("/user/id").unwrap_or_default();
    let message_ts = text("/message/ts").or_else(|| text("/container/message_ts"));
    let thread_ts = text("/message/thread_ts").or_else(|| message_ts.clone());
    let user_name = text("/user/name").or_else(|| text("/user/username"));

    let Some(actions) = payload.get("actions").and_then(Value::as_array) else {
        return Vec::new();
    };
    actions
        .iter()
        .filter_map(|action| {
            let action_id = action.get("action_id").and_then(Value::as_str)?;
            let button = button_of(action_id)?;
            Some(ButtonClick {
                team_id: team_id.clone(),
                channel_id: channel_id.clone(),
                user_id: user_id.clone(),
                user_name: user_name.clone(),
                button,
                value: action.get("value").and_then(Value::as_str).unwrap_or_default().to_string(),
                message_ts: message_ts.clone(),
                thread_ts: thread_ts.clone(),
                response_url: text("/response_url"),
                message: payload.get("message").cloned(),
            })
        })
        .filter(|click| !click.user_id.is_empty() && !click.channel_id.is_empty())
        .collect()
}

/// Returns the button that a keycheck `action_id` names, or `None` for another app's.
fn button_of(action_id: &str) -> Option<Button> {
    match action_id {
        APPROVE_ACTION => Some(Button::Approve),
        REJECT_ACTION => Some(Button::Reject),
        _ if action_id.starts_with(REQUEST_ACTION_PREFIX) => Some(Button::Request),
        _ => None,
    }
}

/// Offers the containment actions of a finished investigation in `channel` and returns
/// the buttons for the root message, with a note on the recommended actions that have
/// none. There are no buttons when containment is not configured or offering fails.
pub(super) async fn offer(bot: &SlackBot, outcome: &Outcome, channel: &str) -> (Vec<ButtonView>, Option<String>) {
    let Some(containment) = &bot.containment else {
        return (Vec::new(), None);
    };
    let place = ChatChannel {
        platform: Platform::Slack,
        workspace: bot.scope(),
        channel: channel.to_string(),
    };
    match containment.offer(outcome, &place).await {
        Ok(offer) => (offer_buttons(&offer), unavailable_note(&offer)),
        Err(error) => {
            let text = internal_error(&error, "cannot offer the containment actions");
            (Vec::new(), Some(format!("The containment buttons could not be prepared: {text}.")))
        }
    }
}

/// Handles an interaction payload by deciding each click on a keycheck button in turn
/// and showing the reply. Runs in a task the caller spawns after acknowledging the payload.
pub(super) async fn handle(bot: Arc<SlackBot>, payload: Value) {
    let clicks = read_clicks(&payload);
    if clicks.is_empty() {
        let kind = payload.get("type").and_then(Value::as_str).unwrap_or("-");
        debug!(interaction = kind, "ignored an interaction without a keycheck button");
        return;
    }
    for click in clicks {
        let span = info_span!("slack_click", user_id = %click.user_id, channel = %click.channel_id, button = ?click.button);
        handle_click(&bot, click).instrument(span).await;
    }
}

async fn handle_click(bot: &Arc<SlackBot>, click: ButtonClick) {
    let Some(containment) = &bot.containment else {
        info!("click refused: containment is not configured on this bot");
        let text = "keycheck's containment buttons are turned off on this bot, so nothing was changed. An admin turns them on with [slack.approvals].";
        tell_clicker(bot, &click, NoticeView::plain(text)).await;
        return;
    };
    let policy = containment.policy();
    let candidates: Vec<String> = policy.requesters.iter().chain(&policy.approvers).cloned().collect();
    let groups = match bot.approval_groups.groups_of(&bot.api, &click.user_id, &candidates).await {
        Ok(groups) => groups,
        Err(error) => {
            let text = internal_error(&error.into(), "cannot read the clicker's user groups");
            tell_clicker(bot, &click, NoticeView::plain(&format!("Nothing was changed: {text}"))).await;
            return;
        }
    };
    let approval_click = Click {
        actor: Actor {
            platform: Platform::Slack,
            user_id: click.user_id.clone(),
            display_name: click.user_name.clone().unwrap_or_else(|| click.user_id.clone()),
        },
        groups,
        channel: ChatChannel {
            platform: Platform::Slack,
            workspace: click.team_id.clone(),
            channel: click.channel_id.clone(),
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
/// refusal.
async fn show_reply(bot: &Arc<SlackBot>, containment: &Arc<Containment>, click: &ButtonClick, reply: ClickReply) {
    match reply {
        ClickReply::Requested(request) => {
            post_in_thread(bot, click, "approval", &ApprovalView::open(&request)).await;
        }
        ClickReply::Executed(execution) => {
            let result = if execution.outcome.changes.is_empty() { ": nothing needed changing" } else { ": done" };
            close_request(bot, click, &execution.action, decision("✅", "Approved", &execution.approved_by, result)).await;
            post_in_thread(bot, click, "action_result", &ActionResultView::executed(&execution)).await;
            if let Some(check) = execution.post_check {
                schedule_post_check(bot, containment, click, check);
            }
        }
        ClickReply::Failed(failure) => {
            close_request(bot, click, &failure.action, decision("❌", "Approved", &failure.approved_by, ": failed")).await;
            post_in_thread(bot, click, "action_result", &ActionResultView::failed(&failure)).await;
        }
        ClickReply::Rejected { action, by } => {
            close_request(bot, click, &action, decision("🚫", "Rejected", &by, "")).await;
            post_in_thread(bot, click, "action_result", &ActionResultView::rejected(&action, &by)).await;
        }
        ClickReply::Dismissed { action, by, closed } => {
            remove_root_buttons(bot, click, &by).await;
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
async fn close_request(bot: &SlackBot, click: &ButtonClick, action: &keycheck_core::approval::PendingAction, decision_mrkdwn: String) {
    if click.button == Button::Request {
        return;
    }
    let Some(message_ts) = &click.message_ts else { return };
    let two_person_rule = bot.containment.as_ref().is_some_and(|containment| containment.policy().two_person_rule);
    let view = ApprovalView::closed(action, &plan_lines(action), two_person_rule, decision_mrkdwn);
    match blocks::render(&bot.renderer, "approval", &view) {
        Ok(message) => {
            if let Err(error) = bot.api.update_message(&click.channel_id, message_ts, &message).await {
                warn!(error = %error, "cannot remove the buttons of a decided approval request");
            }
        }
        Err(error) => {
            internal_error(&error, "cannot render a decided approval request");
        }
    }
}

/// Removes the action buttons from the root message after a dismissal, keeping the rest
/// of the message as Slack sent it, and notes who dismissed them.
async fn remove_root_buttons(bot: &SlackBot, click: &ButtonClick, by: &Actor) {
    let (Some(message), Some(message_ts)) = (&click.message, &click.message_ts) else {
        return;
    };
    let Some(blocks) = message.get("blocks").and_then(Value::as_array) else {
        return;
    };
    let mut kept: Vec<Value> = blocks
        .iter()
        .filter(|block| block.get("block_id").and_then(Value::as_str) != Some(ROOT_ACTIONS_BLOCK))
        .cloned()
        .collect();
    let note = format!("Containment dismissed by {}: nothing was changed in AWS.", user_mention(&by.user_id));
    kept.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}));
    let mut updated = Message {
        text: message.get("text").and_then(Value::as_str).unwrap_or("keycheck").to_string(),
        blocks: kept,
    };
    blocks::enforce_limits(&mut updated);
    if let Err(error) = bot.api.update_message(&click.channel_id, message_ts, &updated).await {
        warn!(error = %error, "cannot remove the action buttons from the root message");
    }
}

/// Runs the post-deactivation check when it is due and posts its summary in the thread.
fn schedule_post_check(bot: &Arc<SlackBot>, containment: &Arc<Containment>, click: &ButtonClick, check: PostCheck) {
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
async fn post_in_thread<T: serde::Serialize>(bot: &SlackBot, click: &ButtonClick, name: &str, view: &T) {
    let message = match blocks::render(&bot.renderer, name, view) {
        Ok(message) => message,
        Err(error) => Message::text(internal_error(&error, "cannot render a containment message")),
    };
    if let Err(error) = bot.api.post_message(&click.channel_id, click.thread_ts.as_deref(), &message).await {
        tracing::error!(error = %error, template = name, "a containment message could not be posted in the thread");
    }
}

/// Shows `notice` to the clicker alone: through the click's `response_url`, else as an
/// ephemeral message.
async fn tell_clicker(bot: &SlackBot, click: &ButtonClick, notice: NoticeView) {
    let Some(message) = bot.notice(notice) else { return };
    if let Some(url) = &click.response_url {
        let body = json!({"response_type": "ephemeral", "replace_original": false, "text": message.text, "blocks": message.blocks});
        match bot.api.respond(url, body).await {
            Ok(()) => return,
            Err(error) => warn!(error = %error, "cannot reply through response_url; trying chat.postEphemeral"),
        }
    }
    if let Err(error) = bot.api.post_ephemeral(&click.channel_id, &click.user_id, &message).await {
        warn!(error = %error, "cannot show an ephemeral message to the clicker");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(action_id: &str, thread_ts: Option<&str>) -> Value {
        let mut message = json!({"type": "message", "ts": "1700000000.000200", "text": "root"});
        if let Some(thread_ts) = thread_ts {
            message["thread_ts"] = json!(thread_ts);
        }
        json!({
            "type": "block_actions",
            "team": {"id": "T0TEST", "domain": "test"},
            "user": {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0TEST"},
            "api_app_id": "A0KEYCHECK",
            "container": {"type": "message", "message_ts": "1700000000.000200", "channel_id": "C0INCIDENT", "is_ephemeral": false},
            "trigger_id": "1.2.3",
            "channel": {"id": "C0INCIDENT", "name": "incident"},
            "message": message,
            "response_url": "https://hooks.slack.com/actions/T0TEST/1/abc",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "AZaz09-_AZaz09-_AZaz09", "action_ts": "1700000001.000000"}]
        })
    }

    #[test]
    fn request_click_read_from_root() {
        let clicks = read_clicks(&payload("keycheck_request_deactivate", None));
        assert_eq!(clicks.len(), 1);
        let click = &clicks[0];
        assert_eq!(click.button, Button::Request);
        assert_eq!(click.team_id, "T0TEST");
        assert_eq!(click.channel_id, "C0INCIDENT");
        assert_eq!(click.user_id, "U0ALICE");
        assert_eq!(click.value, "AZaz09-_AZaz09-_AZaz09");
        assert_eq!(click.thread_ts.as_deref(), Some("1700000000.000200"));
        assert_eq!(click.response_url.as_deref(), Some("https://hooks.slack.com/actions/T0TEST/1/abc"));
    }

    #[test]
    fn approve_click_replies_in_parent_thread() {
        let clicks = read_clicks(&payload(APPROVE_ACTION, Some("1700000000.000100")));
        assert_eq!(clicks[0].button, Button::Approve);
        assert_eq!(clicks[0].thread_ts.as_deref(), Some("1700000000.000100"));
        assert_eq!(clicks[0].message_ts.as_deref(), Some("1700000000.000200"));
        assert_eq!(read_clicks(&payload(REJECT_ACTION, None))[0].button, Button::Reject);
    }

    #[test]
    fn other_interactions_give_no_click() {
        assert!(read_clicks(&payload("another_app_button", None)).is_empty());
        let mut shortcut = payload(APPROVE_ACTION, None);
        shortcut["type"] = json!("shortcut");
        assert!(read_clicks(&shortcut).is_empty());
    }
}
