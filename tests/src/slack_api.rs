//! A fake Slack Web API on a loopback port, and a harness that runs the bot's real HTTP
//! listener against it with correctly signed requests.
//!
//! The fake serves the methods keycheck calls (`auth.test`, `chat.postMessage`,
//! `chat.update`, `chat.postEphemeral`, `chat.getPermalink`, `usergroups.users.list`,
//! `apps.connections.open`) and slash-command `response_url` posts, records every call in
//! order, assigns message `ts` values, and can answer the next calls of a method with a
//! 429 or an error code. It never forwards anything: no request leaves the machine.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};

/// The bot token the harness gives the bot; the fake rejects any other.
pub const BOT_TOKEN: &str = "xoxb-test-token";
/// The signing secret the harness gives the bot.
pub const SIGNING_SECRET: &str = "keycheck-test-signing-secret";
/// The bot's user ID, as `auth.test` returns it.
pub const BOT_USER_ID: &str = "U0KEYCHECK";
/// The bot's bot ID, as `auth.test` returns it.
pub const BOT_ID: &str = "B0KEYCHECK";
/// The workspace ID.
pub const TEAM_ID: &str = "T0TEST";
/// The workspace URL.
pub const WORKSPACE_URL: &str = "https://keycheck-test.slack.com/";

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The Web API method, such as `chat.postMessage`, or `response_url`.
    pub method: String,
    /// The JSON body, or the query parameters of a GET as a JSON object.
    pub body: Value,
    /// The HTTP status of the fake's response.
    pub status: u16,
    /// The JSON of the fake's response.
    pub answer: Value,
}

impl Call {
    /// Returns a string field of the body.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    /// Returns true when the fake answered `ok: true`.
    pub fn ok(&self) -> bool {
        self.answer.get("ok").and_then(Value::as_bool).unwrap_or(false)
    }
}

/// What the fake answers instead of success.
#[derive(Clone, Debug)]
pub enum Failure {
    /// HTTP 429 with `Retry-After: seconds`, or without the header.
    RateLimited { retry_after: Option<u64> },
    /// `{"ok": false, "error": code}`, such as `not_in_channel`.
    Error(String),
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    next_ts: u64,
    failures: HashMap<String, VecDeque<Failure>>,
    user_groups: HashMap<String, Vec<String>>,
    socket_url: Option<String>,
}

/// The fake Web API.
pub struct FakeSlack {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSlack {
    /// Starts the fake on 127.0.0.1 and a free port.
    pub async fn start() -> FakeSlack {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new()
            .route("/api/{method}", any(api))
            .route("/response/{name}", post(response_url))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Slack API");
        let addr = listener.local_addr().expect("fake Slack API address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake Slack API serves");
        });
        FakeSlack { addr, state, task }
    }

    /// Returns the Web API base URL to configure as `slack.api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Returns a slash command `response_url` that this fake records as `response_url`.
    pub fn response_url(&self, name: &str) -> String {
        format!("http://{}/response/{name}", self.addr)
    }

    /// Answers the next `count` calls of `method` with `failure`.
    pub fn fail_next(&self, method: &str, count: usize, failure: Failure) {
        let mut state = self.state.lock().unwrap();
        let queue = state.failures.entry(method.to_string()).or_default();
        queue.extend(std::iter::repeat_n(failure, count));
    }

    /// Sets the members of user group `group`.
    pub fn set_user_group(&self, group: &str, users: &[&str]) {
        let mut state = self.state.lock().unwrap();
        state.user_groups.insert(group.to_string(), users.iter().map(|u| u.to_string()).collect());
    }

    /// Sets the WebSocket URL `apps.connections.open` hands out, such as `ws://127.0.0.1:PORT/`.
    pub fn set_socket_url(&self, url: &str) {
        self.state.lock().unwrap().socket_url = Some(url.to_string());
    }

    /// Returns every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Returns the calls of `method`, in order.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.method == method).collect()
    }

    /// Returns the calls other than `auth.test`, which the bot makes once at start.
    pub fn chat_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.method != "auth.test").collect()
    }

    /// Waits until `done` holds for the calls, and returns them. Panics with the
    /// transcript of every call when `timeout` passes first.
    pub async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let started = Instant::now();
        loop {
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            if started.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; calls so far:\n{}", transcript(&calls));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Formats calls one a line with their bodies, for failure messages.
pub fn transcript(calls: &[Call]) -> String {
    calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let mut body = call.body.to_string();
            if body.len() > 600 {
                let cut = (0..=600).rev().find(|i| body.is_char_boundary(*i)).unwrap_or(0);
                body.truncate(cut);
                body.push('…');
            }
            format!("{index:>3}. {} -> {} {}\n     {body}", call.method, call.status, call.answer)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn api(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Object(query.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| json!({"unparsed": String::from_utf8_lossy(&body)}))
    };
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {BOT_TOKEN}") || v.starts_with("Bearer xapp-"));

    let mut state = state.lock().unwrap();
    let failure = state.failures.get_mut(&method).and_then(VecDeque::pop_front);
    let (status, answer, retry_after) = match (authorized, failure) {
        (false, _) => (200, json!({"ok": false, "error": "not_authed"}), None),
        (true, Some(Failure::RateLimited { retry_after })) => (429, json!({"ok": false, "error": "ratelimited"}), retry_after),
        (true, Some(Failure::Error(code))) => (200, json!({"ok": false, "error": code}), None),
        (true, None) => (200, success(&mut state, &method, &body), None),
    };
    state.calls.push(Call {
        method,
        body,
        status,
        answer: answer.clone(),
    });
    drop(state);

    let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.to_string().parse().unwrap());
    }
    response
}

fn success(state: &mut FakeState, method: &str, body: &Value) -> Value {
    let channel = body.get("channel").and_then(Value::as_str).unwrap_or_default().to_string();
    match method {
        "auth.test" => json!({
            "ok": true, "url": WORKSPACE_URL, "team": "keycheck-test", "user": "keycheck",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID
        }),
        "chat.postMessage" => {
            let ts = next_ts(state);
            json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": body.get("text"), "ts": ts}})
        }
        "chat.update" => json!({"ok": true, "channel": channel, "ts": body.get("ts")}),
        "chat.postEphemeral" => json!({"ok": true, "message_ts": next_ts(state)}),
        "chat.getPermalink" => {
            let ts = body.get("message_ts").and_then(Value::as_str).unwrap_or_default().replace('.', "");
            json!({"ok": true, "channel": channel, "permalink": format!("{WORKSPACE_URL}archives/{channel}/p{ts}")})
        }
        "usergroups.users.list" => {
            let group = body.get("usergroup").and_then(Value::as_str).unwrap_or_default();
            match state.user_groups.get(group) {
                Some(users) => json!({"ok": true, "users": users}),
                None => json!({"ok": false, "error": "no_such_subteam"}),
            }
        }
        "apps.connections.open" => match &state.socket_url {
            Some(url) => json!({"ok": true, "url": url}),
            None => json!({"ok": false, "error": "invalid_auth"}),
        },
        _ => json!({"ok": false, "error": "unknown_method"}),
    }
}

fn next_ts(state: &mut FakeState) -> String {
    state.next_ts += 1;
    format!("1700000000.{:06}", state.next_ts * 100)
}

async fn response_url(State(state): State<Arc<Mutex<FakeState>>>, Path(name): Path<String>, body: Bytes) -> Response {
    let mut body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert("response_url_name".to_string(), Value::String(name));
    }
    state.lock().unwrap().calls.push(Call {
        method: "response_url".to_string(),
        body,
        status: 200,
        answer: json!({"ok": true}),
    });
    ([(header::CONTENT_TYPE, "text/plain")], "ok").into_response()
}

/// Returns Slack's `v0=` signature of `body` at `timestamp` under `secret`, computed here
/// independently of the bot's code.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &message);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// Returns the current Unix time in seconds, as text.
pub fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// The bot's HTTP listener started in-process against a [`FakeSlack`].
pub struct SlackHarness {
    /// The fake Web API.
    pub fake: FakeSlack,
    /// The running listener and bot.
    pub server: keycheck_bot::serve::HttpServer,
    /// The HTTP client that sends Slack's requests.
    pub http: reqwest::Client,
    _store: tempfile::TempDir,
}

/// A response of the listener.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub elapsed: Duration,
}

impl Answer {
    /// Returns the body as JSON, or `Null` when it is empty or not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl SlackHarness {
    /// Starts the fake and the bot in HTTP mode, with demo evidence and a SQLite store in a
    /// temporary folder. `slack_table` adds lines to `[slack]`.
    pub async fn start(slack_table: &str) -> SlackHarness {
        let fake = FakeSlack::start().await;
        SlackHarness::start_with(fake, slack_table, "[evidence]\nsource = \"demo\"\n").await
    }

    /// Starts the bot against `fake` with `slack_table` in `[slack]` and `extra` appended.
    pub async fn start_with(fake: FakeSlack, slack_table: &str, extra: &str) -> SlackHarness {
        SlackHarness::start_with_evidence(fake, slack_table, extra, None).await
    }

    /// Starts the bot like [`SlackHarness::start_with`], reading evidence from `evidence`
    /// instead of the configured source when it is given.
    pub async fn start_with_evidence(
        fake: FakeSlack,
        slack_table: &str,
        extra: &str,
        evidence: Option<Arc<dyn keycheck_bot::serve::EvidenceFactory>>,
    ) -> SlackHarness {
        crate::install_crypto_provider();
        let store = tempfile::tempdir().expect("temporary store folder");
        let text = format!(
            "[slack]\nmode = \"http\"\napi_url = \"{}\"\n{slack_table}\n{extra}\n[store]\ndatabase_url = \"sqlite://{}\"\n",
            fake.api_url(),
            store.path().join("keycheck.db").display()
        );
        let config: keycheck_bot::config::Config =
            text.parse().unwrap_or_else(|error| panic!("test configuration invalid: {error:#}\n{text}"));
        let secrets = keycheck_bot::slack::SlackSecrets {
            bot_token: BOT_TOKEN.to_string(),
            app_token: None,
            signing_secret: Some(SIGNING_SECRET.to_string()),
        };
        let mut parts = keycheck_bot::serve::bot_parts(&config).await.expect("bot parts");
        parts.retry.default_delay = Duration::from_millis(200);
        if let Some(evidence) = evidence {
            parts.evidence = evidence;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the bot listener");
        let server = keycheck_bot::serve::start_http(&config, &secrets, parts, listener)
            .await
            .unwrap_or_else(|error| panic!("the bot did not start: {error:#}"));
        SlackHarness {
            fake,
            server,
            http: reqwest::Client::builder().no_proxy().build().expect("HTTP client"),
            _store: store,
        }
    }

    /// Returns the listener's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// Sends `body` to `path` with the given headers, and returns the answer.
    pub async fn send_raw(&self, path: &str, content_type: &str, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
        let mut request = self.http.post(self.url(path)).header("content-type", content_type).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let started = Instant::now();
        let response = request.send().await.expect("the listener answers");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Answer {
            status,
            body,
            elapsed: started.elapsed(),
        }
    }

    /// Sends `body` to `path`, signed now with the test signing secret.
    pub async fn send_signed(&self, path: &str, content_type: &str, body: &[u8], extra: &[(&str, String)]) -> Answer {
        let timestamp = now();
        let mut headers = vec![
            ("x-slack-request-timestamp", timestamp.clone()),
            ("x-slack-signature", sign(SIGNING_SECRET, &timestamp, body)),
        ];
        headers.extend(extra.iter().cloned());
        self.send_raw(path, content_type, &headers, body.to_vec()).await
    }

    /// Sends a signed `/keycheck` command with `text` from `user` in `channel`.
    pub async fn command(&self, text: &str, user: &str, channel: &str, trigger_id: &str) -> Answer {
        let body = command_body(text, user, channel, trigger_id, &self.fake.response_url(trigger_id));
        self.send_signed("/slack/commands", "application/x-www-form-urlencoded", body.as_bytes(), &[]).await
    }

    /// Sends a signed `event_callback` with `event`, and the retry header when `retry` is set.
    pub async fn event(&self, event_id: &str, event: Value, retry: Option<u32>) -> Answer {
        let body = json!({
            "token": "unused", "team_id": TEAM_ID, "api_app_id": "A0KEYCHECK", "type": "event_callback",
            "event_id": event_id, "event_time": 1_700_000_000, "event": event
        })
        .to_string();
        let extra: Vec<(&str, String)> = match retry {
            Some(number) => vec![("x-slack-retry-num", number.to_string()), ("x-slack-retry-reason", "http_timeout".to_string())],
            None => Vec::new(),
        };
        self.send_signed("/slack/events", "application/json", body.as_bytes(), &extra).await
    }
}

/// Returns the form body of a slash command as Slack sends it.
pub fn command_body(text: &str, user: &str, channel: &str, trigger_id: &str, response_url: &str) -> String {
    let pairs = [
        ("token", "unused-verification-token"),
        ("team_id", TEAM_ID),
        ("team_domain", "keycheck-test"),
        ("channel_id", channel),
        ("channel_name", "incident"),
        ("user_id", user),
        ("user_name", "alice"),
        ("command", "/keycheck"),
        ("text", text),
        ("api_app_id", "A0KEYCHECK"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ];
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
