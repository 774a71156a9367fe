//! Socket Mode end to end: `apps.connections.open` on the fake Web API hands the bot a
//! `ws://127.0.0.1` address, where a fake Socket Mode server sends envelopes and records
//! the bot's acknowledgements. Redelivered envelopes start nothing twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use keycheck_bot::slack::{SlackBot, SlackSecrets};
use keycheck_tests::slack_api::{BOT_TOKEN, FakeSlack, TEAM_ID, transcript};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// A fake Socket Mode server: every connection gets `hello`, then every envelope sent
/// through [`SocketServer::send`]; every text frame the bot sends back is recorded.
struct SocketServer {
    url: String,
    envelopes: broadcast::Sender<String>,
    received: Arc<Mutex<Vec<Value>>>,
    connections: Arc<Mutex<usize>>,
}

impl SocketServer {
    async fn start() -> SocketServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/link", listener.local_addr().unwrap());
        let (envelopes, _) = broadcast::channel::<String>(64);
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let server = SocketServer { url, envelopes: envelopes.clone(), received: Arc::clone(&received), connections: Arc::clone(&connections) };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(socket) = tokio_tungstenite::accept_async(stream).await else { continue };
                *connections.lock().unwrap() += 1;
                let mut outgoing = envelopes.subscribe();
                let received = Arc::clone(&received);
                tokio::spawn(async move {
                    let (mut sink, mut stream) = socket.split();
                    let hello = json!({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}, "connection_info": {"app_id": "A0KEYCHECK"}});
                    let _ = sink.send(Message::text(hello.to_string())).await;
                    loop {
                        tokio::select! {
                            envelope = outgoing.recv() => match envelope {
                                Ok(text) => { let _ = sink.send(Message::text(text)).await; }
                                Err(_) => break,
                            },
                            frame = stream.next() => match frame {
                                Some(Ok(Message::Text(text))) => {
                                    if let Ok(value) = serde_json::from_str::<Value>(text.as_str()) {
                                        received.lock().unwrap().push(value);
                                    }
                                }
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                });
            }
        });
        server
    }

    /// Sends `envelope` on one open connection: Slack delivers each envelope once per
    /// attempt, on any of the app's connections.
    async fn send(&self, envelope: Value) {
        let started = Instant::now();
        while *self.connections.lock().unwrap() == 0 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // With two connections each gets the frame; dedupe makes the second a redelivery.
        let _ = self.envelopes.send(envelope.to_string());
    }

    fn acks(&self, envelope_id: &str) -> Vec<Value> {
        self.received.lock().unwrap().iter().filter(|v| v["envelope_id"] == envelope_id).cloned().collect()
    }
}

async fn start_bot(fake: &FakeSlack) -> (Arc<SlackBot>, keycheck_bot::slack::socket::SocketMode, tempfile::TempDir) {
    keycheck_tests::install_crypto_provider();
    let store = tempfile::tempdir().unwrap();
    let text = format!(
        "[slack]\nmode = \"socket\"\napi_url = \"{}\"\nwatched_channels = [\"C0ALERTS\"]\n[evidence]\nsource = \"demo\"\n[store]\ndatabase_url = \"sqlite://{}\"\n",
        fake.api_url(),
        store.path().join("keycheck.db").display()
    );
    let config: keycheck_bot::config::Config = text.parse().unwrap();
    let secrets = SlackSecrets { bot_token: BOT_TOKEN.to_string(), app_token: Some("xapp-test".to_string()), signing_secret: None };
    let parts = keycheck_bot::serve::bot_parts(&config).await.unwrap();
    let bot = SlackBot::connect(&config, &secrets, parts).await.unwrap();
    let socket = keycheck_bot::slack::socket::start(Arc::clone(&bot), "xapp-test").await.unwrap();
    (bot, socket, store)
}

async fn wait_until(what: &str, fake: &FakeSlack, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > Duration::from_secs(30) {
            panic!("timed out waiting for {what}; calls:\n{}", transcript(&fake.calls()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_command_and_alert_run_once() {
    let fake = FakeSlack::start().await;
    let server = SocketServer::start().await;
    fake.set_socket_url(&server.url);
    let (bot, socket, _store) = start_bot(&fake).await;
    let key = keycheck_core::demo::key().to_string();

    let command = json!({
        "type": "slash_commands", "envelope_id": "env-command", "accepts_response_payload": true,
        "payload": {
            "team_id": TEAM_ID, "channel_id": "C0INCIDENT", "user_id": "U0ALICE", "command": "/keycheck",
            "text": key, "response_url": fake.response_url("socket"), "trigger_id": "trigger.socket"
        }
    });
    server.send(command.clone()).await;
    wait_until("the command's acknowledgement", &fake, || !server.acks("env-command").is_empty()).await;
    fake.wait_for("the root update", Duration::from_secs(60), |calls| calls.iter().any(|c| c.method == "chat.update")).await;

    // A redelivery of the same envelope is acknowledged and starts nothing.
    server.send(command).await;
    let help = json!({
        "type": "slash_commands", "envelope_id": "env-help", "accepts_response_payload": true,
        "payload": {
            "team_id": TEAM_ID, "channel_id": "C0INCIDENT", "user_id": "U0ALICE", "command": "/keycheck",
            "text": "help", "response_url": fake.response_url("help"), "trigger_id": "trigger.help"
        }
    });
    server.send(help).await;
    wait_until("the help acknowledgement", &fake, || !server.acks("env-help").is_empty()).await;
    let help_ack = &server.acks("env-help")[0];
    assert_eq!(help_ack["payload"]["response_type"], "ephemeral", "{help_ack}");
    assert!(help_ack.to_string().contains("--window"), "{help_ack}");

    let alert = json!({
        "type": "events_api", "envelope_id": "env-alert", "accepts_response_payload": false,
        "payload": {
            "team_id": TEAM_ID, "api_app_id": "A0KEYCHECK", "type": "event_callback", "event_id": "Ev0SOCKET", "event_time": 1_700_000_000,
            "event": {"type": "message", "channel": "C0ALERTS", "user": "U0ANALYST", "ts": "1690000000.000300", "text": "GuardDuty names AKIAIOSFODNN7EXAMPLE"}
        }
    });
    server.send(alert.clone()).await;
    server.send(alert).await;
    fake.wait_for("the alert's root update", Duration::from_secs(60), |calls| {
        calls.iter().filter(|c| c.method == "chat.update").count() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|c| c.method == "apps.connections.open").count() >= 1, true, "{}", transcript(&calls));
    assert_eq!(bot.investigations_started(), 2, "one per command and alert:\n{}", transcript(&calls));
    assert_eq!(calls.iter().filter(|c| c.method == "chat.update").count(), 2, "{}", transcript(&calls));
    assert!(!server.acks("env-alert").is_empty(), "the alert envelope was acknowledged");
    let alert_root = calls
        .iter()
        .find(|c| c.method == "chat.postMessage" && c.field("thread_ts") == Some("1690000000.000300"))
        .expect("the alert's investigation posts in its thread");
    assert!(alert_root.field("text").unwrap().contains("AKIAIOSFODNN7EXAMPLE"), "{}", transcript(&calls));
    socket.stop().await;
}
