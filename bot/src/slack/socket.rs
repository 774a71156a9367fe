//! Socket Mode: slack-morphism's `SlackClientSocketModeListener` opens WebSockets to
//! Slack with the app-level token, and its callbacks hand commands and events to the bot.
//!
//! Socket Mode needs no public URL and no signature check: the WebSocket itself is
//! authenticated by the app token.

use std::sync::Arc;

use rvstruct::ValueStruct;
use slack_morphism::prelude::*;
use tracing::{error, warn};

use super::api::{Connector, Message};
use super::{SlackBot, SlashCommand};

/// A running Socket Mode listener.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<Connector>,
}

impl SocketMode {
    /// Closes the WebSockets.
    pub async fn stop(&self) {
        self.listener.shutdown().await;
    }
}

/// Connects to Slack in Socket Mode with the app-level token `app_token` and returns the
/// running listener. Events are handled until [`SocketMode::stop`].
pub async fn start(bot: Arc<SlackBot>, app_token: &str) -> anyhow::Result<SocketMode> {
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_command)
        .with_push_events(on_push_event)
        .with_interaction_events(on_interaction);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(bot.api().client())
            .with_error_handler(on_error)
            .with_user_state(Arc::clone(&bot)),
    );
    let listener = SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), environment, callbacks);
    let token = SlackApiToken::new(app_token.to_string().into());
    listener
        .listen_for(&token)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open a Socket Mode connection: {error}; check SLACK_APP_TOKEN (xapp-…) and that Socket Mode is enabled for the app"))?;
    listener.start().await;
    Ok(SocketMode { listener })
}

async fn bot_of(state: &SlackClientEventsUserState) -> Option<Arc<SlackBot>> {
    state.read().await.get_user_state::<Arc<SlackBot>>().cloned()
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackClient<Connector>>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let Some(bot) = bot_of(&state).await else {
        return Err("the Socket Mode listener has no bot state".into());
    };
    let command = SlashCommand {
        team_id: event.team_id.value().clone(),
        channel_id: event.channel_id.value().clone(),
        user_id: event.user_id.value().clone(),
        user_name: None,
        command: event.command.value().clone(),
        text: event.text.unwrap_or_default(),
        trigger_id: event.trigger_id.value().clone(),
        response_url: Some(event.response_url.value().to_string()),
    };
    let reply = bot.handle_command(command).await;
    Ok(command_response(reply.as_ref()))
}

/// Builds the acknowledgement's payload: the ephemeral reply, or nothing.
///
/// NOTE: an accepted command is acknowledged with an empty payload, which Slack shows as
/// nothing; this relies on Slack treating `{}` like an empty HTTP response.
fn command_response(reply: Option<&Message>) -> SlackCommandEventResponse {
    let Some(message) = reply else {
        return SlackCommandEventResponse::new(SlackMessageContent::new());
    };
    let mut body = super::http::ephemeral(message);
    let blocks: Option<Vec<SlackBlock>> = body.get_mut("blocks").and_then(|blocks| serde_json::from_value(blocks.take()).ok());
    let text = body.get("text").and_then(|text| text.as_str()).unwrap_or_default().to_string();
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text).opt_blocks(blocks))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}

/// Hands an event to the bot.
///
/// NOTE: slack-morphism parses the event into its model before this callback runs, and
/// converting it back to JSON drops attachment fields the model lacks (`pretext`,
/// `author_name`, `footer`). An alert whose key appears only there is recognised over
/// HTTP but not over Socket Mode.
async fn on_push_event(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<Connector>>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let Some(bot) = bot_of(&state).await else {
        return Err("the Socket Mode listener has no bot state".into());
    };
    match serde_json::to_value(&event) {
        Ok(callback) => bot.handle_event(callback).await,
        Err(error) => warn!(%error, "cannot read a Socket Mode event"),
    }
    Ok(())
}

/// Hands an interaction to the bot, which handles clicks on the containment buttons in a
/// task of its own, so the envelope is acknowledged at once.
///
/// NOTE: as with events, slack-morphism parses the interaction into its model first, so a
/// clicked message whose blocks its model cannot read fails before this callback runs.
async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackClient<Connector>>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let Some(bot) = bot_of(&state).await else {
        return Err("the Socket Mode listener has no bot state".into());
    };
    match serde_json::to_value(&event) {
        Ok(payload) => bot.handle_interaction(payload),
        Err(error) => warn!(%error, "cannot convert a Socket Mode interaction to JSON"),
    }
    Ok(())
}

/// Logs a listener error by its kind. slack-morphism's protocol errors carry the payload
/// that failed to parse, which may be a whole message, so their text is not logged.
fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackClient<Connector>>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    use slack_morphism::errors::SlackClientError;
    match err.downcast_ref::<SlackClientError>() {
        Some(SlackClientError::ProtocolError(_)) => error!(kind = "protocol", "Socket Mode listener error: a payload did not parse"),
        Some(SlackClientError::ApiError(api)) => error!(kind = "api", error_code = %api.code, "Socket Mode listener error"),
        Some(other) => error!(kind = "client", error = %other, "Socket Mode listener error"),
        None => error!(kind = "other", error = %err, "Socket Mode listener error"),
    }
    HttpStatusCode::OK
}
