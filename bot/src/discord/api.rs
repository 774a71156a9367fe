//! The Discord REST API as keycheck calls it, through serenity's `Http` client. Its rate
//! limiter waits out every 429 response (`Retry-After`) and tries again. Every outgoing
//! string is redacted, mentions are switched off, and failures are logged with the route
//! and Discord's error code.
//!
//! Bodies stay `serde_json::Value`: messages are JSON rendered from the templates, and a
//! response is read only for the IDs keycheck needs, so a field Discord adds or drops
//! never breaks a call. Logs and errors name a route template, never the URL, because
//! interaction routes carry the interaction token, which lets anyone post as keycheck for
//! 15 minutes.

use std::sync::Arc;

use serenity::http::{Http, HttpError, LightMethod, Request, Route};
use serenity::model::id::{ApplicationId, ChannelId, GuildId, InteractionId, MessageId};
use serde_json::{Value, json};
use tracing::warn;

use crate::chat::redact_strings;
use crate::metrics::{self, ChatCallOutcome};

/// Discord's error code for an interaction token that expired (after 15 minutes) or
/// never existed.
pub const INVALID_WEBHOOK_TOKEN: isize = 50027;
/// Discord's error code for a webhook that does not exist, which an expired interaction
/// token can also give.
pub const UNKNOWN_WEBHOOK: isize = 10015;
/// Discord's error code for a message that already has a thread.
pub const THREAD_ALREADY_EXISTS: isize = 160004;
/// Discord's error codes that mean the bot may not see or post in a channel.
pub const CANNOT_POST: [isize; 3] = [50001, 50013, 10003];

/// One REST call keycheck makes.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    /// `GET /users/@me`: the bot user.
    CurrentUser,
    /// `GET /oauth2/applications/@me`: the application.
    CurrentApplication,
    /// Replaces the application's global commands.
    RegisterGlobalCommands { application_id: ApplicationId },
    /// Replaces the application's commands in one guild.
    RegisterGuildCommands { application_id: ApplicationId, guild_id: GuildId },
    /// Responds to an interaction, within 3 seconds of its creation.
    InteractionCallback { interaction_id: InteractionId, token: &'a str },
    /// Edits the response to an interaction, while its token is valid.
    EditOriginal { application_id: ApplicationId, token: &'a str },
    /// Sends a follow-up message to an interaction, while its token is valid.
    Followup { application_id: ApplicationId, token: &'a str },
    /// Starts a public thread from a message.
    StartThread { channel_id: ChannelId, message_id: MessageId },
    /// Posts a message in a channel or thread.
    CreateMessage { channel_id: ChannelId },
    /// Edits a message the bot posted.
    EditMessage { channel_id: ChannelId, message_id: MessageId },
}

impl<'a> Call<'a> {
    /// Returns the route template, without IDs or tokens, for logs and metrics.
    pub fn route(&self) -> &'static str {
        match self {
            Call::CurrentUser => "GET /users/@me",
            Call::CurrentApplication => "GET /oauth2/applications/@me",
            Call::RegisterGlobalCommands { .. } => "PUT /applications/{application.id}/commands",
            Call::RegisterGuildCommands { .. } => "PUT /applications/{application.id}/guilds/{guild.id}/commands",
            Call::InteractionCallback { .. } => "POST /interactions/{interaction.id}/{interaction.token}/callback",
            Call::EditOriginal { .. } => "PATCH /webhooks/{application.id}/{interaction.token}/messages/@original",
            Call::Followup { .. } => "POST /webhooks/{application.id}/{interaction.token}",
            Call::StartThread { .. } => "POST /channels/{channel.id}/messages/{message.id}/threads",
            Call::CreateMessage { .. } => "POST /channels/{channel.id}/messages",
            Call::EditMessage { .. } => "PATCH /channels/{channel.id}/messages/{message.id}",
        }
    }

    fn request(self) -> (Route<'a>, LightMethod) {
        match self {
            Call::CurrentUser => (Route::UserMe, LightMethod::Get),
            Call::CurrentApplication => (Route::Oauth2ApplicationCurrent, LightMethod::Get),
            Call::RegisterGlobalCommands { application_id } => (Route::Commands { application_id }, LightMethod::Put),
            Call::RegisterGuildCommands { application_id, guild_id } => {
                (Route::GuildCommands { application_id, guild_id }, LightMethod::Put)
            }
            Call::InteractionCallback { interaction_id, token } => {
                (Route::InteractionResponse { interaction_id, token }, LightMethod::Post)
            }
            Call::EditOriginal { application_id, token } => {
                (Route::WebhookOriginalInteractionResponse { application_id, token }, LightMethod::Patch)
            }
            Call::Followup { application_id, token } => {
                (Route::WebhookFollowupMessages { application_id, token }, LightMethod::Post)
            }
            Call::StartThread { channel_id, message_id } => {
                (Route::ChannelMessageThreads { channel_id, message_id }, LightMethod::Post)
            }
            Call::CreateMessage { channel_id } => (Route::ChannelMessages { channel_id }, LightMethod::Post),
            Call::EditMessage { channel_id, message_id } => {
                (Route::ChannelMessage { channel_id, message_id }, LightMethod::Patch)
            }
        }
    }

    /// Returns where the body's message is: the body itself, its `data` for an
    /// interaction callback, or nowhere for calls that send no message.
    fn message_pointer(&self) -> Option<&'static str> {
        match self {
            Call::InteractionCallback { .. } => Some("/data"),
            Call::EditOriginal { .. } | Call::Followup { .. } | Call::CreateMessage { .. } | Call::EditMessage { .. } => {
                Some("")
            }
            _ => None,
        }
    }
}

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Discord responded with an error status and its JSON error, such as 50013 Missing
    /// Permissions.
    #[error("Discord {route} failed: HTTP {status}, error code {code}: {message}")]
    Discord {
        route: &'static str,
        status: u16,
        code: isize,
        message: String,
    },
    /// The request did not reach Discord, or its response was not JSON.
    #[error("Discord {route} failed: {message}")]
    Transport { route: &'static str, message: String },
}

impl ApiError {
    /// Returns Discord's error code, when Discord responded with one.
    pub fn code(&self) -> Option<isize> {
        match self {
            ApiError::Discord { code, .. } => Some(*code),
            ApiError::Transport { .. } => None,
        }
    }

    /// Returns true when the bot may not see or post in the channel.
    pub fn is_cannot_post(&self) -> bool {
        self.code().is_some_and(|code| CANNOT_POST.contains(&code))
    }

    /// Returns true when the interaction token no longer works, so the message must be
    /// reached through its channel instead.
    pub fn is_expired_token(&self) -> bool {
        match self {
            ApiError::Discord { status, code, .. } => {
                *code == INVALID_WEBHOOK_TOKEN || *code == UNKNOWN_WEBHOOK || *status == 401
            }
            ApiError::Transport { .. } => false,
        }
    }
}

/// The REST client of one bot token.
#[derive(Clone)]
pub struct DiscordApi {
    http: Arc<Http>,
}

impl std::fmt::Debug for DiscordApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscordApi(…)")
    }
}

impl DiscordApi {
    /// Uses `http`, which carries the bot token and the rate limiter.
    pub fn new(http: Arc<Http>) -> DiscordApi {
        DiscordApi { http }
    }

    /// Returns serenity's client.
    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// Sends `call` with `body` and returns Discord's JSON response, `Null` for an empty
    /// one. A message body is redacted and gets `allowed_mentions` with no mention types,
    /// so text from CloudTrail or an alert cannot ping `@everyone`, unless the body sets
    /// its own `allowed_mentions`.
    pub async fn call(&self, call: Call<'_>, body: Option<Value>) -> Result<Value, ApiError> {
        let route = call.route();
        let bytes = body.map(|mut body| {
            prepare_body(&call, &mut body);
            serde_json::to_vec(&body).expect("a JSON value always serializes")
        });
        let (path, method) = call.request();

        let result = self.http.request(Request::new(path, method).body(bytes)).await;
        let response_bytes = match result {
            Ok(response) => response.bytes().await.map_err(|error| ApiError::Transport {
                route,
                message: format!("the response could not be read: {}", error.without_url()),
            }),
            Err(error) => Err(api_error(route, error)),
        };
        let parsed = response_bytes.and_then(|bytes| match bytes.is_empty() {
            true => Ok(Value::Null),
            false => serde_json::from_slice(&bytes).map_err(|error| ApiError::Transport {
                route,
                message: format!("the response is not JSON: {error}"),
            }),
        });

        match &parsed {
            Ok(_) => metrics::record_chat_call("discord", route, ChatCallOutcome::Ok),
            Err(error) => {
                let outcome = match error {
                    ApiError::Discord { status: 429, .. } => ChatCallOutcome::RateLimited,
                    _ => ChatCallOutcome::Error,
                };
                metrics::record_chat_call("discord", route, outcome);
                match error {
                    ApiError::Discord { status, code, message, .. } => {
                        warn!(route, status, error_code = code, error = %message, "Discord rejected a call");
                    }
                    ApiError::Transport { message, .. } => warn!(route, error = %message, "a Discord call failed"),
                }
            }
        }
        parsed
    }
}

/// Redacts the body and switches mentions off in the message it carries.
fn prepare_body(call: &Call<'_>, body: &mut Value) {
    redact_strings(body);
    let Some(pointer) = call.message_pointer() else { return };
    if let Some(Value::Object(message)) = body.pointer_mut(pointer) {
        message.entry("allowed_mentions").or_insert_with(|| json!({"parse": []}));
    }
}

fn api_error(route: &'static str, error: serenity::Error) -> ApiError {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => ApiError::Discord {
            route,
            status: response.status_code.as_u16(),
            code: response.error.code,
            message: response.error.message,
        },
        // reqwest's own message names the URL, and with it the interaction token.
        serenity::Error::Http(HttpError::Request(error)) => ApiError::Transport {
            route,
            message: error.without_url().to_string(),
        },
        other => ApiError::Transport {
            route,
            message: other.to_string(),
        },
    }
}

/// Returns the route template of a path serenity's rate limiter reports, such as
/// `/api/v10/interactions/{id}/{token}/callback`: numbers become `{id}`, and the segment
/// after an interaction or webhook ID, which is a token, becomes `{token}`.
pub fn route_template(path: &str) -> String {
    let path = path.split_once("/api/v10").map_or(path, |(_, rest)| rest);
    let path = path.split('?').next().unwrap_or_default();
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/') {
        let previous_two = segments.len().checked_sub(2).and_then(|index| segments.get(index)).map(String::as_str);
        let after_id = segments.last().is_some_and(|last| last == "{id}");
        let is_token = after_id && matches!(previous_two, Some("interactions" | "webhooks"));
        let shown = if is_token {
            "{token}".to_string()
        } else if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            "{id}".to_string()
        } else {
            segment.to_string()
        };
        segments.push(shown);
    }
    segments.join("/")
}

/// Logs and counts a wait of serenity's rate limiter, which then retries the call.
pub fn log_rate_limit(info: &serenity::http::RatelimitInfo) {
    let route = format!("{} {}", info.method.reqwest_method(), route_template(&info.path));
    metrics::record_chat_rate_limited("discord", &route);
    warn!(route = %route, retry_after_ms = info.timeout.as_millis() as u64, global = info.global, "Discord rate limited a call; retrying after the wait");
}

/// Returns the snowflake in field `name` of a Discord object, such as a message's `id`.
pub fn snowflake(value: &Value, name: &str) -> Option<u64> {
    value.get(name)?.as_str()?.parse().ok().filter(|id| *id != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_template_hides_ids_and_tokens() {
        let cases = [
            (
                "https://discord.com/api/v10/interactions/1234567890/aW50ZXJhY3Rpb246dG9rZW4/callback",
                "/interactions/{id}/{token}/callback",
            ),
            (
                "https://discord.com/api/v10/webhooks/42/secret-token/messages/@original",
                "/webhooks/{id}/{token}/messages/@original",
            ),
            ("https://discord.com/api/v10/channels/42/messages/43/threads", "/channels/{id}/messages/{id}/threads"),
            ("/api/v10/channels/42/messages?limit=1", "/channels/{id}/messages"),
        ];
        for (path, expected) in cases {
            assert_eq!(route_template(path), expected, "{path}");
        }
    }

    #[test]
    fn message_body_gets_no_mentions_and_redaction() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let mut body = json!({"type": 4, "data": {"content": format!("@everyone {secret}")}});
        let call = Call::InteractionCallback {
            interaction_id: InteractionId::new(1),
            token: "t",
        };
        prepare_body(&call, &mut body);
        assert_eq!(body["data"]["allowed_mentions"], json!({"parse": []}));
        assert!(!body.to_string().contains(secret), "{body}");

        let mut kept = json!({"content": "x", "allowed_mentions": {"users": ["1"]}});
        prepare_body(&Call::CreateMessage { channel_id: ChannelId::new(1) }, &mut kept);
        assert_eq!(kept["allowed_mentions"], json!({"users": ["1"]}));
    }
}
