//! The HTTP Events API listener: `/slack/commands`, `/slack/events` and
//! `/slack/interactions`, each behind signature verification, and `/healthz`.
//!
//! Every Slack route responds at once; the work runs in tasks the bot spawns. A request
//! whose signature does not verify gets 401 before its body is parsed.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::api::{self, Message};
use super::signature::{self, Verifier};
use super::{SlackBot, SlashCommand};

/// Builds the router: the Slack routes verified with `verifier`, and `/healthz`.
pub fn router(bot: Arc<SlackBot>, verifier: Arc<Verifier>) -> Router {
    let slack = Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/events", post(events))
        .route("/slack/interactions", post(interactions))
        .route_layer(middleware::from_fn_with_state(verifier, signature::require_signature))
        .with_state(bot);
    Router::new().merge(slack).merge(health_router())
}

/// Builds the router of `/healthz` alone, for Socket Mode.
pub fn health_router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// The form fields of a slash command request that keycheck reads.
#[derive(Debug, Deserialize)]
struct CommandForm {
    #[serde(default)]
    team_id: String,
    channel_id: String,
    user_id: String,
    user_name: Option<String>,
    #[serde(default)]
    command: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    trigger_id: String,
    response_url: Option<String>,
}

async fn commands(State(bot): State<Arc<SlackBot>>, Form(form): Form<CommandForm>) -> Response {
    let command = SlashCommand {
        team_id: form.team_id,
        channel_id: form.channel_id,
        user_id: form.user_id,
        user_name: form.user_name,
        command: form.command,
        text: form.text,
        trigger_id: form.trigger_id,
        response_url: form.response_url,
    };
    match bot.handle_command(command).await {
        Some(message) => Json(ephemeral(&message)).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// Returns the body of an ephemeral reply to a slash command.
pub fn ephemeral(message: &Message) -> Value {
    let mut body = json!({"response_type": "ephemeral", "text": message.text, "blocks": message.blocks});
    api::redact_strings(&mut body);
    body
}

async fn events(State(bot): State<Arc<SlackBot>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        warn!(bytes = body.len(), "a signed event request is not JSON");
        return StatusCode::BAD_REQUEST.into_response();
    };
    let retry = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()).unwrap_or("0");
    match payload.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let challenge = payload.get("challenge").and_then(Value::as_str).unwrap_or_default();
            Json(json!({"challenge": challenge})).into_response()
        }
        Some("event_callback") => {
            let event_id = payload.get("event_id").and_then(Value::as_str).unwrap_or("-");
            debug!(event_id, retry_num = retry, "event received");
            bot.handle_event(payload).await;
            StatusCode::OK.into_response()
        }
        Some("app_rate_limited") => {
            warn!("Slack dropped events because this app exceeded its event rate limit");
            StatusCode::OK.into_response()
        }
        other => {
            debug!(payload_type = other.unwrap_or("-"), "ignored an event payload of an unknown type");
            StatusCode::OK.into_response()
        }
    }
}

/// Acknowledges an interaction at once and hands its payload to the bot, which handles
/// clicks on the containment buttons in a task of its own.
async fn interactions(State(bot): State<Arc<SlackBot>>, Form(form): Form<std::collections::HashMap<String, String>>) -> StatusCode {
    let Some(payload) = form.get("payload").and_then(|payload| serde_json::from_str::<Value>(payload).ok()) else {
        warn!("a signed interaction request has no JSON payload");
        return StatusCode::BAD_REQUEST;
    };
    let kind = payload.get("type").and_then(Value::as_str).unwrap_or("-");
    debug!(interaction = kind, "interaction received");
    bot.handle_interaction(payload);
    StatusCode::OK
}
