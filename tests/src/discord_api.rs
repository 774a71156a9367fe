//! A fake Discord REST API and gateway on loopback ports, and a harness that runs the bot's
//! real interactions endpoint against them with correctly signed interactions.
//!
//! The fake serves the routes keycheck calls: `/users/@me`, `/oauth2/applications/@me`,
//! command registration, interaction callbacks, webhook edits and follow-ups, channel
//! messages, and threads started from messages. It also serves `GET /gateway` and
//! `/gateway/bot`, which point serenity at the fake gateway, so that serenity never falls
//! back to Discord's. It records every call in order, assigns snowflake IDs, and can
//! respond to the next calls of a route with a 429 and `retry_after` or with a Discord
//! error. Any other route gets a recorded 404. It never forwards anything.
//!
//! serenity 0.12.5 sends every REST call through its rate limiter, which builds the URL
//! `https://discord.com/api/v10/…` itself: `HttpBuilder::proxy` rewrites the URL only when
//! the rate limiter is disabled (`Request::build` gets no proxy from
//! `Ratelimiter::perform`). So the fake also listens for TLS with a certificate for
//! discord.com from a test authority (`tests/fixtures/discord-tls`), and [`FakeDiscord::http`]
//! builds serenity's client on a reqwest client that trusts that authority alone and
//! resolves discord.com to the fake's loopback port. Rate limits then go through
//! serenity's real rate limiter, and a misrouted call fails instead of leaving the machine.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signer, SigningKey};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The bot token the harness gives the bot. The fake rejects any other.
pub const BOT_TOKEN: &str = "keycheck-test-discord-bot-token";
/// The bot user's ID, as `/users/@me` returns it.
pub const BOT_USER_ID: u64 = 1_100_000_000_000_000_001;
/// The application's ID, as `/oauth2/applications/@me` returns it.
pub const APPLICATION_ID: u64 = 1_100_000_000_000_000_002;
/// The guild of every test interaction and message.
pub const GUILD_ID: u64 = 1_100_000_000_000_000_003;
/// The ID `/keycheck` has once registered.
pub const COMMAND_ID: u64 = 1_100_000_000_000_000_004;
/// The seed of the test application's Ed25519 key pair.
const SIGNING_SEED: [u8; 32] = [42; 32];

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The HTTP method, such as `POST`, or `GATEWAY` for a gateway message.
    pub method: String,
    /// The path with its IDs, such as `/api/v10/channels/123/messages`.
    pub path: String,
    /// The method and route template, such as `POST /channels/{id}/messages`, or
    /// `GATEWAY IDENTIFY`.
    pub route: String,
    /// The JSON body, `Null` when there is none.
    pub body: Value,
    /// The HTTP status of the fake's response.
    pub status: u16,
    /// The JSON of the fake's response, `Null` for 204.
    pub response: Value,
}

impl Call {
    /// Returns a string field of the body at a JSON pointer, such as `/data/content`.
    pub fn text(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }

    /// Returns the ID segment of the path at `index`, counting `/api/v10/` segments from
    /// 0: index 1 of `/channels/123/messages` is 123.
    pub fn path_id(&self, index: usize) -> Option<u64> {
        self.path.trim_start_matches("/api/v10/").split('/').nth(index)?.parse().ok()
    }
}

/// The response the fake sends instead of success.
#[derive(Clone, Debug)]
pub enum Failure {
    /// HTTP 429 with `Retry-After` and a body with `retry_after`, in seconds.
    RateLimited { retry_after: f64 },
    /// An error status with Discord's JSON error, such as 403 and 50013.
    Error { status: u16, code: u64, message: String },
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    next_id: u64,
    failures: HashMap<String, VecDeque<Failure>>,
    /// The message ID of each interaction token's original response.
    originals: HashMap<String, u64>,
    gateway_url: String,
    /// How many gateway sessions were sent Ready.
    ready: usize,
}

/// The fake REST API and gateway.
pub struct FakeDiscord {
    http_addr: SocketAddr,
    tls_addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    dispatches: broadcast::Sender<(String, Value)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeDiscord {
    /// Starts the REST API over HTTP and TLS, and the gateway, on 127.0.0.1 and free ports.
    pub async fn start() -> FakeDiscord {
        crate::install_crypto_provider();
        let state = Arc::new(Mutex::new(FakeState {
            next_id: 1_300_000_000_000_000_000,
            ..FakeState::default()
        }));
        let router = Router::new().fallback(rest).with_state(Arc::clone(&state));
        let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Discord API");
        let http_addr = http_listener.local_addr().expect("fake Discord API address");
        let rest_task = tokio::spawn(async move {
            axum::serve(http_listener, router).await.expect("fake Discord API serves");
        });

        let tls_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Discord TLS port");
        let tls_addr = tls_listener.local_addr().expect("fake Discord TLS address");
        let tls_task = tokio::spawn(serve_tls(tls_listener, http_addr));

        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Discord gateway");
        let gateway_addr = gateway_listener.local_addr().expect("fake gateway address");
        state.lock().unwrap().gateway_url = format!("ws://{gateway_addr}");
        let (dispatches, _) = broadcast::channel(256);
        let gateway_task = tokio::spawn(serve_gateway(gateway_listener, Arc::clone(&state), dispatches.clone()));

        FakeDiscord {
            http_addr,
            tls_addr,
            state,
            dispatches,
            tasks: vec![rest_task, tls_task, gateway_task],
        }
    }

    /// Returns the fake's plain-HTTP base URL, for `HttpBuilder::proxy` with the rate
    /// limiter disabled.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Builds serenity's REST client for [`BOT_TOKEN`] with its rate limiter on, sending
    /// every call to this fake: discord.com resolves to the fake's TLS port, whose
    /// certificate only this client trusts, and no system proxy is used.
    pub fn http(&self) -> serenity::http::Http {
        let ca = std::fs::read(fixture("ca.der")).expect("the test CA certificate");
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_der(&ca).expect("the test CA is DER"))
            .resolve("discord.com", self.tls_addr)
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the test HTTP client builds");
        serenity::http::HttpBuilder::new(BOT_TOKEN).client(client).build()
    }

    /// Responds to the next `count` calls of `route` (such as `POST /channels/{id}/messages`)
    /// with `failure`.
    pub fn fail_next(&self, route: &str, count: usize, failure: Failure) {
        let mut state = self.state.lock().unwrap();
        let queue = state.failures.entry(route.to_string()).or_default();
        queue.extend(std::iter::repeat_n(failure, count));
    }

    /// Returns every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Returns the calls other than the start-up calls (`/gateway`, `/users/@me`,
    /// `/oauth2/applications/@me`, command registration) and gateway messages.
    pub fn chat_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|call| !is_start_up(call)).collect()
    }

    /// Returns the routes of [`FakeDiscord::chat_calls`], in order.
    pub fn chat_routes(&self) -> Vec<String> {
        self.chat_calls().into_iter().map(|call| call.route).collect()
    }

    /// Waits until `done` returns true for the calls, and returns them. Panics with the
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

    /// Waits until a gateway client identified with the bot token and was sent Ready, so
    /// that the dispatches after it reach the bot.
    pub async fn wait_ready(&self, timeout: Duration) {
        let started = Instant::now();
        while self.state.lock().unwrap().ready == 0 {
            if started.elapsed() > timeout {
                panic!("no gateway client identified within {timeout:?}; calls so far:\n{}", transcript(&self.calls()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a dispatch event, such as `MESSAGE_CREATE`, to every gateway client.
    pub fn dispatch(&self, event: &str, data: Value) {
        let receivers = self.dispatches.send((event.to_string(), data)).unwrap_or(0);
        assert!(receivers > 0, "no gateway client is connected to receive {event}");
    }
}

fn is_start_up(call: &Call) -> bool {
    call.method == "GATEWAY"
        || matches!(
            call.route.as_str(),
            "GET /gateway" | "GET /gateway/bot" | "GET /users/@me" | "GET /oauth2/applications/@me"
        )
        || call.route.ends_with("/commands")
}

/// Returns the path of a file in `tests/fixtures/discord-tls`.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/discord-tls").join(name)
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
            format!("{index:>3}. {} -> {} {}\n     {} {body}", call.route, call.status, call.response, call.path)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Returns the method and route template of a REST path: IDs become `{id}`, and the
/// segment after an interaction or webhook ID, a token, becomes `{token}`.
pub fn route_of(method: &Method, path: &str) -> String {
    let path = path.strip_prefix("/api/v10").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut shown = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let token = index >= 3 && matches!(segments[index - 2], "interactions" | "webhooks");
        if token {
            shown.push("{token}");
        } else if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            shown.push("{id}");
        } else {
            shown.push(segment);
        }
    }
    format!("{method} {}", shown.join("/"))
}

async fn rest(State(state): State<Arc<Mutex<FakeState>>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let route = route_of(&method, &path);
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| json!({"unparsed": String::from_utf8_lossy(&body)}))
    };
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {BOT_TOKEN}"));

    let mut state = state.lock().unwrap();
    let failure = state.failures.get_mut(&route).and_then(VecDeque::pop_front);
    let (status, response_body, retry_after) = match (authorized, failure) {
        (false, _) => (401, json!({"message": "401: Unauthorized", "code": 0}), None),
        (true, Some(Failure::RateLimited { retry_after })) => (
            429,
            json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
            Some(retry_after),
        ),
        (true, Some(Failure::Error { status, code, message })) => (status, json!({"message": message, "code": code}), None),
        (true, None) => success(&mut state, &route, &path, &body),
    };
    state.calls.push(Call {
        method: method.to_string(),
        path,
        route,
        body,
        status,
        response: response_body.clone(),
    });
    drop(state);

    let status = StatusCode::from_u16(status).unwrap();
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, axum::Json(response_body)).into_response()
    };
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.to_string().parse().unwrap());
        response.headers_mut().insert("x-ratelimit-scope", "user".parse().unwrap());
    }
    response
}

/// Returns the status and response body of a call that succeeds, or 404 for a route the fake
/// does not serve.
fn success(state: &mut FakeState, route: &str, path: &str, body: &Value) -> (u16, Value, Option<f64>) {
    let ids: Vec<u64> = path.split('/').filter_map(|segment| segment.parse().ok()).collect();
    let token = || path.split('/').nth(5).unwrap_or_default().to_string();
    let response_body = match route {
        "GET /gateway" => json!({"url": state.gateway_url}),
        "GET /gateway/bot" => json!({
            "url": state.gateway_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        }),
        "GET /users/@me" => bot_user(),
        "GET /oauth2/applications/@me" => json!({
            "id": APPLICATION_ID.to_string(), "name": "keycheck", "icon": null, "description": "", "bot_public": false,
            "bot_require_code_grant": false, "verify_key": public_key_hex(), "team": null, "flags": 0, "bot": bot_user()
        }),
        "PUT /applications/{id}/commands" | "PUT /applications/{id}/guilds/{id}/commands" => {
            let mut commands = body.as_array().cloned().unwrap_or_default();
            for command in &mut commands {
                command["id"] = json!(COMMAND_ID.to_string());
                command["application_id"] = json!(APPLICATION_ID.to_string());
                command["version"] = json!("1");
            }
            Value::Array(commands)
        }
        "POST /interactions/{id}/{token}/callback" => return (204, Value::Null, None),
        "PATCH /webhooks/{id}/{token}/messages/@original" => {
            let token = token();
            let id = match state.originals.get(&token) {
                Some(id) => *id,
                None => {
                    let id = next_id(state);
                    state.originals.insert(token, id);
                    id
                }
            };
            message(id, 0, body, true)
        }
        "POST /webhooks/{id}/{token}" => {
            let id = next_id(state);
            message(id, 0, body, true)
        }
        "POST /channels/{id}/messages/{id}/threads" => json!({
            "id": ids[1].to_string(), "type": 11, "guild_id": GUILD_ID.to_string(), "parent_id": ids[0].to_string(),
            "name": body.get("name"), "owner_id": BOT_USER_ID.to_string(), "message_count": 0, "member_count": 1,
            "thread_metadata": {"archived": false, "auto_archive_duration": body.get("auto_archive_duration"), "archive_timestamp": "2026-12-04T10:00:00.000000+00:00", "locked": false}
        }),
        "POST /channels/{id}/messages" => {
            let id = next_id(state);
            message(id, ids[0], body, false)
        }
        "PATCH /channels/{id}/messages/{id}" => message(ids[1], ids[0], body, false),
        _ => return (404, json!({"message": "404: Not Found", "code": 0}), None),
    };
    (200, response_body, None)
}

fn next_id(state: &mut FakeState) -> u64 {
    state.next_id += 1;
    state.next_id
}

fn bot_user() -> Value {
    json!({"id": BOT_USER_ID.to_string(), "username": "keycheck", "discriminator": "0", "global_name": null, "avatar": null, "bot": true, "flags": 0})
}

/// Builds the message Discord returns for a posted or edited message.
fn message(id: u64, channel_id: u64, body: &Value, from_webhook: bool) -> Value {
    let mut message = json!({
        "id": id.to_string(), "channel_id": channel_id.to_string(), "type": 0,
        "author": bot_user(), "content": body.get("content").cloned().unwrap_or(json!("")),
        "embeds": body.get("embeds").cloned().unwrap_or(json!([])),
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "timestamp": "2026-12-04T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "pinned": false,
        "flags": body.get("flags").cloned().unwrap_or(json!(0))
    });
    if from_webhook {
        message["webhook_id"] = json!(APPLICATION_ID.to_string());
        message["application_id"] = json!(APPLICATION_ID.to_string());
    }
    message
}

/// Accepts TLS connections for discord.com and relays each to the plain-HTTP fake.
async fn serve_tls(listener: TcpListener, http_addr: SocketAddr) {
    let certificate = std::fs::read(fixture("server.der")).expect("the fake's certificate");
    let key = std::fs::read(fixture("server-key.der")).expect("the fake's private key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(certificate)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .expect("the fake's certificate and key match");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(stream).await else { return };
            let Ok(mut plain) = TcpStream::connect(http_addr).await else { return };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

/// Serves the gateway: Hello, then Ready after an Identify with the bot token, heartbeat
/// acknowledgements, and every dispatch sent through [`FakeDiscord::dispatch`].
async fn serve_gateway(listener: TcpListener, state: Arc<Mutex<FakeState>>, dispatches: broadcast::Sender<(String, Value)>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = Arc::clone(&state);
        let receiver = dispatches.subscribe();
        tokio::spawn(gateway_session(stream, state, receiver));
    }
}

async fn gateway_session(stream: TcpStream, state: Arc<Mutex<FakeState>>, mut dispatches: broadcast::Receiver<(String, Value)>) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else { return };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41_250}, "s": null, "t": null});
    if socket.send(WsMessage::text(hello.to_string())).await.is_err() {
        return;
    }
    let mut sequence = 0u64;
    loop {
        tokio::select! {
            frame = socket.next() => {
                let Some(Ok(frame)) = frame else { return };
                let Ok(text) = frame.to_text() else { continue };
                let Ok(payload) = serde_json::from_str::<Value>(text) else { continue };
                match payload.get("op").and_then(Value::as_u64) {
                    Some(1) => {
                        let ack = json!({"op": 11, "d": null, "s": null, "t": null});
                        if socket.send(WsMessage::text(ack.to_string())).await.is_err() { return; }
                    }
                    Some(2) => {
                        // serenity 0.12.5 identifies with the REST form, `Bot TOKEN`, which
                        // Discord's gateway accepts as well as the bare token.
                        let token = payload.pointer("/d/token").and_then(Value::as_str).unwrap_or_default();
                        let token = token.strip_prefix("Bot ").unwrap_or(token).to_string();
                        let mut recorded = payload.clone();
                        recorded["d"]["token"] = json!("(hidden)");
                        {
                            let mut state = state.lock().unwrap();
                            state.calls.push(Call {
                                method: "GATEWAY".to_string(),
                                path: "identify".to_string(),
                                route: "GATEWAY IDENTIFY".to_string(),
                                body: recorded,
                                status: if token == BOT_TOKEN { 200 } else { 401 },
                                response: Value::Null,
                            });
                        }
                        if token != BOT_TOKEN {
                            let _ = socket.close(None).await;
                            return;
                        }
                        sequence += 1;
                        let gateway_url = state.lock().unwrap().gateway_url.clone();
                        let ready = json!({"op": 0, "s": sequence, "t": "READY", "d": {
                            "v": 10, "user": bot_user(), "guilds": [{"id": GUILD_ID.to_string(), "unavailable": true}],
                            "session_id": "fake-session", "resume_gateway_url": gateway_url,
                            "application": {"id": APPLICATION_ID.to_string(), "flags": 0}
                        }});
                        if socket.send(WsMessage::text(ready.to_string())).await.is_err() { return; }
                        state.lock().unwrap().ready += 1;
                    }
                    _ => {}
                }
            }
            dispatch = dispatches.recv() => {
                let Ok((event, data)) = dispatch else { return };
                sequence += 1;
                let frame = json!({"op": 0, "s": sequence, "t": event, "d": data});
                if socket.send(WsMessage::text(frame.to_string())).await.is_err() { return; }
            }
        }
    }
}

/// Returns the test application's signing key.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&SIGNING_SEED)
}

/// Returns the test application's public key in the form of `DISCORD_PUBLIC_KEY`: 64 hex
/// digits.
pub fn public_key_hex() -> String {
    data_encoding::HEXLOWER.encode(signing_key().verifying_key().as_bytes())
}

/// Returns Discord's `X-Signature-Ed25519` of `body` at `timestamp` under `key`, computed
/// here independently of the bot's code.
pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    data_encoding::HEXLOWER.encode(&key.sign(&message).to_bytes())
}

/// Returns the current Unix time in seconds, as text.
pub fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// The bot's interactions endpoint started in-process against a [`FakeDiscord`].
pub struct DiscordHarness {
    /// The fake REST API and gateway.
    pub fake: FakeDiscord,
    /// The running bot and its endpoint.
    pub server: keycheck_bot::discord::server::DiscordServer,
    /// The HTTP client that sends Discord's requests to the endpoint.
    pub client: reqwest::Client,
    _store: tempfile::TempDir,
}

/// A response of the bot's interactions endpoint.
#[derive(Debug)]
pub struct EndpointResponse {
    pub status: u16,
    pub body: String,
    pub elapsed: Duration,
}

impl EndpointResponse {
    /// Returns the body as JSON, or `Null` when it is empty or not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl DiscordHarness {
    /// Starts the fake and the bot in `http` mode, with demo evidence and a SQLite store in
    /// a temporary folder. `discord_table` adds lines to `[discord]`, and a `mode` line in it
    /// sets the mode, such as `mode = "gateway"`.
    pub async fn start(discord_table: &str) -> DiscordHarness {
        DiscordHarness::start_with(FakeDiscord::start().await, discord_table, "[evidence]\nsource = \"demo\"\n").await
    }

    /// Starts the bot against `fake` with `discord_table` in `[discord]` and `extra`
    /// appended to the configuration.
    pub async fn start_with(fake: FakeDiscord, discord_table: &str, extra: &str) -> DiscordHarness {
        DiscordHarness::start_custom(fake, discord_table, extra, |_| {}).await
    }

    /// Starts the bot like [`DiscordHarness::start_with`], after `customize` changed its
    /// parts, such as the remediators.
    pub async fn start_custom(
        fake: FakeDiscord,
        discord_table: &str,
        extra: &str,
        customize: impl FnOnce(&mut keycheck_bot::discord::DiscordParts),
    ) -> DiscordHarness {
        crate::install_crypto_provider();
        let store = tempfile::tempdir().expect("temporary store folder");
        // `http` mode unless the table sets another.
        let mode = if discord_table.contains("mode =") { "" } else { "mode = \"http\"\n" };
        let text = format!(
            "[discord]\n{mode}listen = \"127.0.0.1:0\"\n{discord_table}\n{extra}\n[store]\ndatabase_url = \"sqlite://{}\"\n",
            store.path().join("keycheck.db").display()
        );
        let config: keycheck_bot::config::Config =
            text.parse().unwrap_or_else(|error| panic!("test configuration invalid: {error:#}\n{text}"));
        let secrets = keycheck_bot::discord::DiscordSecrets {
            token: BOT_TOKEN.to_string(),
            public_key: Some(public_key_hex()),
        };
        let mut parts = keycheck_bot::discord::server::parts(&config).await.expect("bot parts");
        customize(&mut parts);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the bot's endpoint");
        let server = keycheck_bot::discord::server::start(&config, &secrets, fake.http(), parts, Some(listener))
            .await
            .unwrap_or_else(|error| panic!("the bot did not start: {error:#}\ncalls:\n{}", transcript(&fake.calls())));
        DiscordHarness {
            fake,
            server,
            client: reqwest::Client::builder().no_proxy().build().expect("HTTP client"),
            _store: store,
        }
    }

    /// Returns the URL of the bot's SQLite store, to open it beside the bot.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self._store.path().join("keycheck.db").display())
    }

    /// Returns the endpoint's URL.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.server.addr.expect("http mode has an endpoint"), keycheck_bot::discord::http::INTERACTIONS_PATH)
    }

    /// Sends `body` to the endpoint with the given headers, and returns the response.
    pub async fn send_raw(&self, headers: &[(&str, String)], body: Vec<u8>) -> EndpointResponse {
        let mut request = self.client.post(self.url()).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let started = Instant::now();
        let response = request.send().await.expect("the endpoint responds");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        EndpointResponse {
            status,
            body,
            elapsed: started.elapsed(),
        }
    }

    /// Sends `payload` signed now with the test application's key.
    pub async fn interaction(&self, payload: &Value) -> EndpointResponse {
        let body = payload.to_string().into_bytes();
        let timestamp = now();
        let headers = [
            ("x-signature-ed25519", sign(&signing_key(), &timestamp, &body)),
            ("x-signature-timestamp", timestamp),
        ];
        self.send_raw(&headers, body).await
    }
}

/// Returns a guild member as interactions carry it.
pub fn member(user_id: u64, name: &str, roles: &[u64]) -> Value {
    json!({
        "user": {"id": user_id.to_string(), "username": name, "global_name": name, "discriminator": "0", "avatar": null},
        "roles": roles.iter().map(|role| role.to_string()).collect::<Vec<_>>(),
        "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0, "pending": false,
        "permissions": "2147483647", "nick": null, "avatar": null, "premium_since": null
    })
}

/// Returns a text channel, or a public thread of `parent`, as interactions carry it.
pub fn channel(channel_id: u64, parent: Option<u64>) -> Value {
    match parent {
        None => json!({"id": channel_id.to_string(), "type": 0, "guild_id": GUILD_ID.to_string(), "name": "incident", "permissions": "2147483647", "flags": 0}),
        Some(parent) => json!({
            "id": channel_id.to_string(), "type": 11, "guild_id": GUILD_ID.to_string(), "name": "keycheck thread",
            "parent_id": parent.to_string(), "permissions": "2147483647", "flags": 0,
            "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "archive_timestamp": "2026-12-04T10:00:00.000000+00:00", "locked": false}
        }),
    }
}

/// Returns a `/keycheck` application command interaction, as Discord posts it.
pub fn command_interaction(interaction_id: u64, user_id: u64, roles: &[u64], channel_id: u64, options: Value) -> Value {
    json!({
        "type": 2, "id": interaction_id.to_string(), "application_id": APPLICATION_ID.to_string(),
        "token": interaction_token(interaction_id), "version": 1,
        "guild_id": GUILD_ID.to_string(), "channel_id": channel_id.to_string(), "channel": channel(channel_id, None),
        "member": member(user_id, "alice", roles),
        "data": {"id": COMMAND_ID.to_string(), "name": "keycheck", "type": 1, "options": options},
        "app_permissions": "2147483647", "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID.to_string()}, "context": 0, "attachment_size_limit": 10_485_760
    })
}

/// Returns the options of `/keycheck` with `key` and, when given, `window`.
pub fn keycheck_options(key: &str, window: Option<&str>) -> Value {
    let mut options = vec![json!({"name": "key", "type": 3, "value": key})];
    if let Some(window) = window {
        options.push(json!({"name": "window", "type": 3, "value": window}));
    }
    Value::Array(options)
}

/// Returns a click on a button with `custom_id` of message `message_id`, posted by the
/// bot in `channel_id`, which is a thread of `parent` when one is given.
pub fn component_interaction(
    interaction_id: u64,
    user_id: u64,
    roles: &[u64],
    channel_id: u64,
    parent: Option<u64>,
    message_id: u64,
    custom_id: &str,
) -> Value {
    let clicked = json!({
        "id": message_id.to_string(), "channel_id": channel_id.to_string(), "type": 0, "author": bot_user(),
        "content": "", "embeds": [], "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Deactivate", "custom_id": custom_id}]}],
        "timestamp": "2026-12-04T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "attachments": [], "pinned": false, "flags": 0
    });
    json!({
        "type": 3, "id": interaction_id.to_string(), "application_id": APPLICATION_ID.to_string(),
        "token": interaction_token(interaction_id), "version": 1,
        "guild_id": GUILD_ID.to_string(), "channel_id": channel_id.to_string(), "channel": channel(channel_id, parent),
        "member": member(user_id, "clicker", roles), "message": clicked,
        "data": {"custom_id": custom_id, "component_type": 2},
        "app_permissions": "2147483647", "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID.to_string()}, "context": 0, "attachment_size_limit": 10_485_760
    })
}

/// Returns the token of test interaction `interaction_id`.
pub fn interaction_token(interaction_id: u64) -> String {
    format!("aW50ZXJhY3Rpb246{interaction_id}dG9rZW4")
}

/// Returns a `MESSAGE_CREATE` payload of a guild message with `content` and `embeds`.
/// `author` is a user object, such as one that [`webhook_author`] or [`person`] builds.
pub fn gateway_message(message_id: u64, channel_id: u64, author: Value, content: &str, embeds: Value) -> Value {
    json!({
        "id": message_id.to_string(), "channel_id": channel_id.to_string(), "guild_id": GUILD_ID.to_string(),
        "author": author, "content": content, "embeds": embeds, "type": 0,
        "timestamp": "2026-12-04T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "pinned": false, "flags": 0
    })
}

/// Returns the author of a person's message.
pub fn person(user_id: u64, name: &str) -> Value {
    json!({"id": user_id.to_string(), "username": name, "global_name": name, "discriminator": "0", "avatar": null})
}

/// Returns the author of a webhook's message, whose ID is the webhook's ID.
pub fn webhook_author(webhook_id: u64, name: &str) -> Value {
    json!({"id": webhook_id.to_string(), "username": name, "discriminator": "0000", "avatar": null, "bot": true})
}

/// Returns keycheck's own bot user as a message author.
pub fn keycheck_author() -> Value {
    bot_user()
}
