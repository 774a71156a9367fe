//! The Slack Web API as keycheck calls it: through slack-morphism's client, with every
//! outgoing string redacted, 429 answers retried after `Retry-After`, and failures logged
//! with the method and Slack's error code.
//!
//! Request and response bodies stay `serde_json::Value`, because the messages are Block
//! Kit JSON rendered from templates and need no typed model in between.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tracing::{debug, warn};

use crate::metrics::{self, ChatCallOutcome};

/// The HTTP connector: HTTPS to Slack, plain HTTP allowed for a loopback test server.
pub type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// A message ready to send: the notification text and the Block Kit blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Text for notifications and clients that cannot show blocks.
    pub text: String,
    /// Block Kit blocks, within Slack's limits (see `blocks::enforce_limits`).
    pub blocks: Vec<Value>,
}

impl Message {
    /// Creates a message of one plain mrkdwn section.
    pub fn text(text: impl Into<String>) -> Message {
        let text = text.into();
        Message {
            blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})],
            text,
        }
    }
}

/// When and how often a rate-limited or failed call is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Delay after a 429 answer that has no `Retry-After` header.
    pub default_delay: Duration,
    /// Attempts per call, the first included, before the call fails.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            default_delay: Duration::from_secs(1),
            max_attempts: 30,
        }
    }
}

/// A failed Web API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Slack answered `ok: false` with an error code such as `not_in_channel`.
    #[error("Slack {method} failed: {code}")]
    Slack { method: &'static str, code: String },
    /// Slack kept answering 429.
    #[error("Slack {method} was still rate limited after {attempts} attempts")]
    RateLimited { method: &'static str, attempts: u32 },
    /// The request did not reach Slack, or the answer was not Slack's JSON.
    #[error("Slack {method} failed: {message}")]
    Transport { method: &'static str, message: String },
}

impl ApiError {
    /// Returns Slack's error code, when Slack answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Slack { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Who the bot is, from `auth.test`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot's user ID, such as `U0KEYCHECK`.
    pub user_id: String,
    /// The bot's bot ID, such as `B0KEYCHECK`, which its messages carry as `bot_id`.
    pub bot_id: Option<String>,
    /// The workspace ID.
    pub team_id: Option<String>,
    /// The workspace URL, such as `https://example.slack.com/`.
    pub url: Option<String>,
}

/// The Web API client of one bot token.
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi").field("retry", &self.retry).finish_non_exhaustive()
    }
}

/// Builds the connector for `api_url`, such as `https://slack.com/api`.
pub fn connector(api_url: &str) -> Connector {
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        Err(error) => {
            warn!(%error, "no usable system CA certificates; using the bundled web PKI roots");
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        }
    };
    let https = builder.https_or_http().enable_http1().enable_http2().build();
    SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url.trim_end_matches('/'))
}

impl SlackApi {
    /// Creates a client for `api_url` with the bot token `bot_token` (`xoxb-…`).
    pub fn new(api_url: &str, bot_token: &str, retry: RetryPolicy) -> SlackApi {
        SlackApi {
            client: Arc::new(SlackClient::new(connector(api_url))),
            token: SlackApiToken::new(bot_token.to_string().into()),
            retry,
        }
    }

    /// Returns the underlying slack-morphism client, for the Socket Mode listener.
    pub fn client(&self) -> Arc<SlackClient<Connector>> {
        Arc::clone(&self.client)
    }

    /// Calls a POST method with a JSON body whose strings are redacted first.
    pub async fn post(&self, method: &'static str, mut body: Value) -> Result<Value, ApiError> {
        redact_strings(&mut body);
        self.with_retries(method, || async {
            let session = self.client.open_session(&self.token);
            session.http_session_api.http_post::<Value, Value>(method, &body, None).await
        })
        .await
    }

    /// Calls a GET method with query parameters.
    pub async fn get(&self, method: &'static str, params: &[(&str, &str)]) -> Result<Value, ApiError> {
        let params: Vec<(&str, Option<&str>)> = params.iter().map(|(name, value)| (*name, Some(*value))).collect();
        self.with_retries(method, || async {
            let session = self.client.open_session(&self.token);
            session.http_session_api.http_get::<Value, _, &str>(method, &params, None).await
        })
        .await
    }

    /// Posts a message to a slash command's `response_url`, which reaches the user even
    /// in a channel the bot is not a member of.
    pub async fn respond(&self, response_url: &str, mut body: Value) -> Result<(), ApiError> {
        const METHOD: &str = "response_url";
        redact_strings(&mut body);
        let url: url::Url = response_url.parse().map_err(|error: url::ParseError| ApiError::Transport {
            method: METHOD,
            message: format!("invalid response_url: {error}"),
        })?;
        self.with_retries(METHOD, || async {
            let span = tracing::debug_span!("slack response_url");
            let context = SlackClientApiCallContext {
                rate_control_params: None,
                token: None,
                tracing_span: &span,
                is_sensitive_url: true,
            };
            self.client.http_api.connector.http_post_uri::<Value, Value>(url.clone(), &body, context).await
        })
        .await
        .map(drop)
    }

    /// Runs `call` with retries, and counts the call and each of its 429 responses in the
    /// metrics.
    async fn with_retries<F, Fut>(&self, method: &'static str, call: F) -> Result<Value, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Value, SlackClientError>>,
    {
        let result = self.retry_loop(method, call).await;
        let outcome = match &result {
            Ok(_) => ChatCallOutcome::Ok,
            Err(ApiError::RateLimited { .. }) => ChatCallOutcome::RateLimited,
            Err(_) => ChatCallOutcome::Error,
        };
        metrics::record_chat_call("slack", method, outcome);
        result
    }

    async fn retry_loop<F, Fut>(&self, method: &'static str, call: F) -> Result<Value, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Value, SlackClientError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let last = attempt >= self.retry.max_attempts;
            match error {
                SlackClientError::RateLimitError(limit) => {
                    metrics::record_chat_rate_limited("slack", method);
                    let delay = limit.retry_after.unwrap_or(self.retry.default_delay);
                    if last {
                        warn!(method, attempts = attempt, "Slack API still rate limited; giving up");
                        return Err(ApiError::RateLimited { method, attempts: attempt });
                    }
                    warn!(method, attempt, retry_after_ms = delay.as_millis() as u64, "Slack API rate limited; retrying");
                    tokio::time::sleep(delay).await;
                }
                SlackClientError::ApiError(api) => {
                    warn!(method, error_code = %api.code, "Slack API call failed");
                    return Err(ApiError::Slack { method, code: api.code });
                }
                SlackClientError::HttpError(http) if http.status_code.is_server_error() && attempt < 3 => {
                    warn!(method, attempt, status = http.status_code.as_u16(), "Slack API server error; retrying");
                    tokio::time::sleep(self.retry.default_delay * attempt).await;
                }
                SlackClientError::HttpProtocolError(ref protocol) if attempt < 3 => {
                    warn!(method, attempt, error = %protocol, "Slack API unreachable; retrying");
                    tokio::time::sleep(self.retry.default_delay * attempt).await;
                }
                other => {
                    let message = transport_message(&other);
                    warn!(method, error = %message, "Slack API call failed");
                    return Err(ApiError::Transport { method, message });
                }
            }
        }
    }

    /// Calls `auth.test` and returns who the bot is.
    pub async fn auth_test(&self) -> Result<BotIdentity, ApiError> {
        let answer = self.get("auth.test", &[]).await?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_string);
        let Some(user_id) = field("user_id") else {
            return Err(ApiError::Transport {
                method: "auth.test",
                message: "the response has no user_id".to_string(),
            });
        };
        Ok(BotIdentity {
            user_id,
            bot_id: field("bot_id"),
            team_id: field("team_id"),
            url: field("url"),
        })
    }

    /// Posts a message to `channel`, in the thread of `thread_ts` when given, and returns
    /// the new message's `ts`.
    pub async fn post_message(&self, channel: &str, thread_ts: Option<&str>, message: &Message) -> Result<String, ApiError> {
        let mut body = json!({
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(thread_ts) = thread_ts {
            body["thread_ts"] = json!(thread_ts);
        }
        let answer = self.post("chat.postMessage", body).await?;
        let ts = answer.get("ts").and_then(Value::as_str).ok_or_else(|| ApiError::Transport {
            method: "chat.postMessage",
            message: "the response has no ts".to_string(),
        })?;
        debug!(channel, ts, thread_ts, "posted a message");
        Ok(ts.to_string())
    }

    /// Replaces the message `ts` in `channel`.
    pub async fn update_message(&self, channel: &str, ts: &str, message: &Message) -> Result<(), ApiError> {
        let body = json!({"channel": channel, "ts": ts, "text": message.text, "blocks": message.blocks});
        self.post("chat.update", body).await.map(drop)
    }

    /// Shows `message` to `user` only, in `channel`.
    pub async fn post_ephemeral(&self, channel: &str, user: &str, message: &Message) -> Result<(), ApiError> {
        let body = json!({"channel": channel, "user": user, "text": message.text, "blocks": message.blocks});
        self.post("chat.postEphemeral", body).await.map(drop)
    }

    /// Returns the permalink of message `ts` in `channel`.
    pub async fn permalink(&self, channel: &str, ts: &str) -> Result<String, ApiError> {
        let answer = self.get("chat.getPermalink", &[("channel", channel), ("message_ts", ts)]).await?;
        answer
            .get("permalink")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::Transport {
                method: "chat.getPermalink",
                message: "the response has no permalink".to_string(),
            })
    }

    /// Returns the user IDs of the members of user group `group`.
    pub async fn user_group_members(&self, group: &str) -> Result<Vec<String>, ApiError> {
        let answer = self.get("usergroups.users.list", &[("usergroup", group)]).await?;
        let users = answer.get("users").and_then(Value::as_array).ok_or_else(|| ApiError::Transport {
            method: "usergroups.users.list",
            message: "the response has no users".to_string(),
        })?;
        Ok(users.iter().filter_map(Value::as_str).map(str::to_string).collect())
    }
}

/// Describes a transport failure without the response body, which may echo the request.
fn transport_message(error: &SlackClientError) -> String {
    match error {
        SlackClientError::HttpError(http) => format!("HTTP status {}", http.status_code),
        SlackClientError::HttpProtocolError(protocol) => protocol.to_string(),
        SlackClientError::ProtocolError(_) => "the response is not valid JSON".to_string(),
        SlackClientError::EndOfStream(_) => "the connection closed early".to_string(),
        other => other.to_string(),
    }
}

pub use crate::chat::redact_strings;
