//! Reading of Slack message events: which to ignore, and the text of the others with
//! their attachments and blocks flattened, for `keycheck_core::alert::recognise`.
//!
//! Alerts reach Slack in many shapes: a person pastes a finding, AWS Chatbot posts blocks
//! or attachments, an SNS-to-Slack function posts attachments with fields, a webhook
//! posts plain text. Every string they carry ends up on its own line of the flattened
//! text, so the shape of the message does not matter to recognition.

use serde_json::Value;

/// A message event worth reading for alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The channel ID.
    pub channel: String,
    /// The message's `ts`, which its thread is named by.
    pub ts: String,
    /// The posting user's ID, when a person or an app user posted it.
    pub user: Option<String>,
    /// The posting bot's ID, when an app or integration posted it.
    pub bot_id: Option<String>,
    /// The text, attachments and blocks as one text.
    pub text: String,
}

/// The reason a message event is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// The event is not a message, or lacks a channel or `ts`.
    NotAMessage,
    /// An edit, a deletion, a join or another subtype that is no new alert.
    Subtype(String),
    /// A reply in a thread: a conversation about an alert, not a new one.
    ThreadReply,
    /// keycheck's own message.
    OwnMessage,
}

/// Message subtypes that can carry a new alert: none (a person), `bot_message` (an
/// integration or webhook) and `file_share` (a pasted snippet's comment).
const READ_SUBTYPES: [&str; 2] = ["bot_message", "file_share"];

/// Reads a message event (the `event` of an `event_callback`). `own_user` and `own_bot`
/// are keycheck's IDs from `auth.test`.
pub fn read(event: &Value, own_user: &str, own_bot: Option<&str>) -> Result<IncomingMessage, Skipped> {
    let field = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_string);
    if field("type").as_deref() != Some("message") {
        return Err(Skipped::NotAMessage);
    }
    if let Some(subtype) = field("subtype")
        && !READ_SUBTYPES.contains(&subtype.as_str())
    {
        return Err(Skipped::Subtype(subtype));
    }
    let (Some(channel), Some(ts)) = (field("channel"), field("ts")) else {
        return Err(Skipped::NotAMessage);
    };
    let user = field("user");
    let bot_id = field("bot_id");
    let own = user.as_deref() == Some(own_user) || (own_bot.is_some() && bot_id.as_deref() == own_bot);
    if own {
        return Err(Skipped::OwnMessage);
    }
    if field("thread_ts").is_some_and(|thread_ts| thread_ts != ts) {
        return Err(Skipped::ThreadReply);
    }
    Ok(IncomingMessage {
        channel,
        ts,
        user,
        bot_id,
        text: flatten(event),
    })
}

/// Returns the message's text, then every string of its attachments and blocks, one a line.
pub fn flatten(event: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(text) = event.get("text").and_then(Value::as_str) {
        lines.push(text.to_string());
    }
    for name in ["attachments", "blocks"] {
        if let Some(value) = event.get(name) {
            collect_strings(value, 0, &mut lines);
        }
    }
    lines.join("\n")
}

/// Keys whose values are layout or identifiers, never alert content.
const LAYOUT_KEYS: [&str; 9] = [
    "type", "block_id", "action_id", "style", "color", "image_url", "thumb_url", "service_icon", "mrkdwn_in",
];

fn collect_strings(value: &Value, depth: usize, lines: &mut Vec<String>) {
    const MAX_DEPTH: usize = 32;
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::String(text) if !text.is_empty() => lines.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, depth + 1, lines)),
        Value::Object(map) => {
            for (key, item) in map {
                if !LAYOUT_KEYS.contains(&key.as_str()) {
                    collect_strings(item, depth + 1, lines);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn person_message_read() {
        let event = json!({"type": "message", "channel": "C1", "ts": "1.1", "user": "U1", "text": "key AKIAIOSFODNN7EXAMPLE leaked"});
        let message = read(&event, "U0BOT", Some("B0BOT")).unwrap();
        assert_eq!(message.text, "key AKIAIOSFODNN7EXAMPLE leaked");
        assert_eq!(message.user.as_deref(), Some("U1"));
    }

    #[test]
    fn attachments_and_blocks_flattened() {
        let event = json!({
            "type": "message", "subtype": "bot_message", "channel": "C1", "ts": "1.1", "bot_id": "B0CHATBOT",
            "attachments": [{"color": "danger", "pretext": "GuardDuty finding", "fields": [{"title": "Access key", "value": "AKIAIOSFODNN7EXAMPLE"}]}],
            "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "first seen 2024-01-01"}]}]}]
        });
        let message = read(&event, "U0BOT", Some("B0BOT")).unwrap();
        for expected in ["GuardDuty finding", "Access key", "AKIAIOSFODNN7EXAMPLE", "first seen 2024-01-01"] {
            assert!(message.text.contains(expected), "{expected} missing from {:?}", message.text);
        }
        assert!(!message.text.contains("danger"), "{:?}", message.text);
    }

    #[test]
    fn edits_joins_replies_and_own_messages_skipped() {
        let cases = [
            (json!({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "1.1"}), Skipped::Subtype("message_changed".into())),
            (json!({"type": "message", "subtype": "message_deleted", "channel": "C1", "ts": "1.1"}), Skipped::Subtype("message_deleted".into())),
            (json!({"type": "message", "subtype": "channel_join", "channel": "C1", "ts": "1.1"}), Skipped::Subtype("channel_join".into())),
            (json!({"type": "message", "channel": "C1", "ts": "1.2", "thread_ts": "1.1", "user": "U1"}), Skipped::ThreadReply),
            (json!({"type": "message", "channel": "C1", "ts": "1.1", "user": "U0BOT"}), Skipped::OwnMessage),
            (json!({"type": "message", "subtype": "bot_message", "channel": "C1", "ts": "1.1", "bot_id": "B0BOT"}), Skipped::OwnMessage),
            (json!({"type": "reaction_added", "channel": "C1", "ts": "1.1"}), Skipped::NotAMessage),
        ];
        for (event, expected) in cases {
            assert_eq!(read(&event, "U0BOT", Some("B0BOT")), Err(expected), "{event}");
        }
    }
}
