//! The HTTP interactions endpoint: `POST /discord/interactions` behind the Ed25519 check
//! of `signature`, and `GET /healthz`.
//!
//! A request whose signature does not verify gets 401 before its body is parsed. A ping,
//! which Discord sends when the endpoint URL is saved, gets a pong in the response body,
//! as Discord requires. The bot responds to every other interaction through the callback
//! route, the same way as over the gateway, and the request then gets 202 with no body.
//!
//! NOTE: Discord documents the response body as the usual response over HTTP. Users of
//! the API report that the callback route works for HTTP interactions of every type but
//! ping. This has not been tried against Discord itself.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use axum::{Router, middleware};
use serde_json::{Value, json};
use serenity::model::application::Interaction;
use tracing::{debug, warn};

use super::DiscordBot;
use super::signature::{self, Verifier};

/// The path Discord posts interactions to: the Interactions Endpoint URL ends with it.
pub const INTERACTIONS_PATH: &str = "/discord/interactions";

/// Builds the router: the interactions endpoint verified with `verifier`, and `/healthz`.
pub fn router(bot: Arc<DiscordBot>, verifier: Arc<Verifier>) -> Router {
    let interactions = Router::new()
        .route(INTERACTIONS_PATH, post(interactions))
        .route_layer(middleware::from_fn_with_state(verifier, signature::require_signature))
        .with_state(bot);
    Router::new().merge(interactions).merge(crate::slack::http::health_router())
}

async fn interactions(State(bot): State<Arc<DiscordBot>>, body: Bytes) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        warn!(bytes = body.len(), "a signed interaction is not JSON");
        return StatusCode::BAD_REQUEST.into_response();
    };
    if payload.get("type").and_then(Value::as_u64) == Some(1) {
        debug!("responded to Discord's ping");
        return Json(json!({"type": 1})).into_response();
    }
    let interaction: Interaction = match serde_json::from_value(payload) {
        Ok(interaction) => interaction,
        Err(error) => {
            warn!(error = %error, "a signed interaction does not parse as a Discord interaction");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    bot.handle_interaction(interaction).await;
    StatusCode::ACCEPTED.into_response()
}
