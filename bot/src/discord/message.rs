//! Reading of Discord messages for alerts: which to ignore, and the text of the others with
//! their embeds flattened, for `keycheck_core::alert::recognise`.
//!
//! Alerts reach Discord as a person's pasted text, a webhook's embeds (an SNS-to-Discord
//! function, a SIEM), another bot's message, or a forwarded message whose content sits in
//! a snapshot. Every string they carry ends up on its own line of the flattened text, so
//! the shape of the message does not matter to recognition.

use serenity::model::channel::{Embed, Message, MessageType};

use super::Identity;

/// A message worth reading for alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The guild ID.
    pub guild_id: u64,
    /// The channel ID.
    pub channel_id: u64,
    /// The message ID, from which its thread starts.
    pub message_id: u64,
    /// The author's user ID, which is the webhook's ID for a webhook message.
    pub author_id: u64,
    /// True when a bot or a webhook posted it.
    pub automated: bool,
    /// The content, embeds and forwarded snapshots as one text.
    pub text: String,
}

/// The reason a message is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A direct message, which no watched channel is.
    NotInGuild,
    /// A system message (a join, a pin, a thread start) or a reply, which belongs to a
    /// conversation about an alert rather than being a new one.
    Kind(String),
    /// keycheck's own message, or a response to one of its interactions.
    OwnMessage,
}

/// Reads a message from the gateway. `identity` is keycheck's bot user and application.
pub fn read(message: &Message, identity: &Identity) -> Result<IncomingMessage, Skipped> {
    let own_webhook = message.webhook_id.is_some_and(|id| id.get() == identity.application_id);
    let own_application = message.application_id.is_some_and(|id| id.get() == identity.application_id);
    if message.author.id.get() == identity.user_id || own_webhook || own_application {
        return Err(Skipped::OwnMessage);
    }
    if message.kind != MessageType::Regular {
        return Err(Skipped::Kind(format!("{:?}", message.kind)));
    }
    let Some(guild_id) = message.guild_id else {
        return Err(Skipped::NotInGuild);
    };
    Ok(IncomingMessage {
        guild_id: guild_id.get(),
        channel_id: message.channel_id.get(),
        message_id: message.id.get(),
        author_id: message.author.id.get(),
        automated: message.author.bot || message.webhook_id.is_some(),
        text: flatten(message),
    })
}

/// Returns the message's content, then every text of its embeds and of the messages it
/// forwards, one a line.
pub fn flatten(message: &Message) -> String {
    let mut lines = Vec::new();
    push(&mut lines, &message.content);
    for embed in &message.embeds {
        embed_lines(embed, &mut lines);
    }
    for snapshot in &message.message_snapshots {
        push(&mut lines, &snapshot.content);
        for embed in &snapshot.embeds {
            embed_lines(embed, &mut lines);
        }
    }
    lines.join("\n")
}

fn embed_lines(embed: &Embed, lines: &mut Vec<String>) {
    if let Some(author) = &embed.author {
        push(lines, &author.name);
    }
    for text in [&embed.title, &embed.url, &embed.description].into_iter().flatten() {
        push(lines, text);
    }
    for field in &embed.fields {
        push(lines, &field.name);
        push(lines, &field.value);
    }
    if let Some(footer) = &embed.footer {
        push(lines, &footer.text);
    }
}

fn push(lines: &mut Vec<String>, text: &str) {
    if !text.is_empty() {
        lines.push(text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const BOT_USER: u64 = 900_000_000_000_000_001;
    const APPLICATION: u64 = 900_000_000_000_000_002;

    fn identity() -> Identity {
        Identity {
            user_id: BOT_USER,
            application_id: APPLICATION,
            name: "keycheck".to_string(),
        }
    }

    fn message(extra: Value) -> Message {
        let mut message = json!({
            "id": "1100000000000000001", "channel_id": "1200000000000000001", "guild_id": "1300000000000000001",
            "author": {"id": "1400000000000000001", "username": "analyst", "discriminator": "0", "avatar": null},
            "content": "", "timestamp": "2026-12-04T10:00:00.000000+00:00", "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": false, "type": 0
        });
        for (name, value) in extra.as_object().unwrap() {
            message[name] = value.clone();
        }
        serde_json::from_value(message).expect("a gateway message parses")
    }

    #[test]
    fn embed_texts_flattened() {
        let incoming = read(
            &message(json!({
                "webhook_id": "1500000000000000001",
                "author": {"id": "1500000000000000001", "username": "GuardDuty", "discriminator": "0000", "avatar": null, "bot": true},
                "embeds": [{
                    "title": "GuardDuty finding", "description": "Credentials used from a remote account",
                    "author": {"name": "AWS"}, "fields": [{"name": "Access key", "value": "AKIAIOSFODNN7EXAMPLE", "inline": true}],
                    "footer": {"text": "first seen 2026-12-04"}, "color": 16711680
                }]
            })),
            &identity(),
        )
        .unwrap();
        for expected in ["GuardDuty finding", "remote account", "Access key", "AKIAIOSFODNN7EXAMPLE", "first seen"] {
            assert!(incoming.text.contains(expected), "{expected} missing from {:?}", incoming.text);
        }
        assert!(incoming.automated);
        assert!(!incoming.text.contains("16711680"), "{:?}", incoming.text);
    }

    #[test]
    fn forwarded_snapshot_read() {
        let incoming = read(
            &message(json!({"message_snapshots": [{"message": {
                "content": "leaked AKIAIOSFODNN7EXAMPLE", "timestamp": "2026-12-04T09:00:00.000000+00:00",
                "edited_timestamp": null, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "type": 0
            }}]})),
            &identity(),
        )
        .unwrap();
        assert_eq!(incoming.text, "leaked AKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn own_system_and_direct_messages_skipped() {
        let own_user = json!({"id": BOT_USER.to_string(), "username": "keycheck", "discriminator": "0", "avatar": null, "bot": true});
        let cases = [
            (json!({"author": own_user}), Skipped::OwnMessage),
            (json!({"webhook_id": APPLICATION.to_string()}), Skipped::OwnMessage),
            (json!({"application_id": APPLICATION.to_string()}), Skipped::OwnMessage),
            (json!({"type": 19}), Skipped::Kind("InlineReply".to_string())),
            (json!({"type": 18}), Skipped::Kind("ThreadCreated".to_string())),
            (json!({"guild_id": null}), Skipped::NotInGuild),
        ];
        for (extra, expected) in cases {
            assert_eq!(read(&message(extra.clone()), &identity()), Err(expected), "{extra}");
        }
    }
}
