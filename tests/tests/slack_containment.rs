//! Containment from Slack end to end. The bot's real HTTP listener gets correctly signed
//! `/keycheck` commands and button clicks. It investigates the incident seeded into the
//! moto emulator, offers the containment buttons under the verdict and runs the approval
//! flow, and each test reads the changes back from IAM. Every AWS call goes through the
//! fault proxy, which counts them, and every Slack call goes to the fake Web API, which
//! records them.
//!
//! Each test body runs on SQLite and, when `KEYCHECK_TEST_DATABASE_URL` names a
//! PostgreSQL server, again on a fresh schema of it. A failing test prints the fake's
//! call transcript and the AWS calls. Needs `moto_server` on `PATH`.
//!
//! The log lines of this test binary are captured at `trace` level from every crate, so
//! the rotation test can check that the new secret is in none of them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use keycheck_bot::containment::{RemediatorFactory, plan_lines};
use keycheck_bot::serve::{EvidenceFactory, HttpServer};
use keycheck_core::approval::{ActionId, ActionState, PendingAction, Refusal};
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::{LiveConfig, QueryMode};
use keycheck_core::remediation::{ContainConfig, Plan, Remediator};
use keycheck_core::render::escape_slack;
use keycheck_core::store::{AuditEntry, AuditEvent, Store, is_postgres_url};
use keycheck_tests::aws::{Clients, test_credentials};
use keycheck_tests::live;
use keycheck_tests::proxy::{Proxy, format_calls};
use keycheck_tests::seed::Incident;
use keycheck_tests::slack_api::{BOT_TOKEN, Call, FakeSlack, SIGNING_SECRET, TEAM_ID, now, sign, transcript};
use serde_json::{Value, json};
use sqlx::Row;
use tracing_subscriber::fmt::MakeWriter;

const CHANNEL: &str = "C0INCIDENT";
const OTHER_CHANNEL: &str = "C0ELSEWHERE";
const OTHER_TEAM: &str = "T0ELSEWHERE";
/// A requester.
const RESPONDER: &str = "U0RESPONDER";
/// A requester and an approver, listed by user ID.
const LEAD: &str = "U0LEAD";
/// An approver through the approver user group.
const SECOND_LEAD: &str = "U0LEADTWO";
/// Neither requester nor approver.
const OUTSIDER: &str = "U0OUTSIDER";
const LEADS_GROUP: &str = "S0LEADS";

/// How long a test waits for the bot's next message.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The approval settings most tests use: two-person rule on, 30 minutes to approve.
const APPROVALS: &str = "requesters = [\"U0RESPONDER\", \"U0LEAD\"]\napprovers = [\"U0LEAD\", \"S0LEADS\"]\n";

/// The AWS operations that change something. A refused click must cause none.
const CHANGING_OPERATIONS: &[&str] = &[
    "iam:UpdateAccessKey",
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:TagResource",
];

/// The stack of every thread that runs a bot. The dev-profile Security Hub deserializer
/// needs more than a default thread's 2 MiB (see `live::INVESTIGATION_STACK_BYTES`).
const STACK_BYTES: usize = live::INVESTIGATION_STACK_BYTES;

// ---------------------------------------------------------------------------------------
// Log capture

/// Every log line this test binary writes, from every crate at every level.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture_logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(buffer.clone())
            .try_init()
            .expect("no other global subscriber in this test binary");
        buffer
    })
}

fn captured_logs() -> String {
    let bytes = capture_logs().0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------------------
// Runtime and backends

/// Runs the future `make` builds on a multi-threaded runtime whose threads, and the thread
/// that drives it, have large stacks, and raises its panic here.
fn run<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    capture_logs();
    let thread = std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(STACK_BYTES)
                .enable_all()
                .build()
                .expect("a Tokio runtime");
            runtime.block_on(make());
        })
        .expect("the test thread starts");
    if let Err(panic) = thread.join() {
        resume_unwind(panic);
    }
}

const DATABASE_URL_VAR: &str = "KEYCHECK_TEST_DATABASE_URL";

/// Runs `body` with the URL of a new SQLite file, then with a fresh PostgreSQL schema when
/// `KEYCHECK_TEST_DATABASE_URL` names a server. A failure names the backend.
async fn each_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let folder = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", folder.path().join("keycheck.db").display());
    eprintln!("{test}: running on SQLite at {url}");
    body(url).await;

    let Ok(server) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("{test}: skipped on PostgreSQL because {DATABASE_URL_VAR} is not set");
        return;
    };
    if !is_postgres_url(&server) {
        eprintln!("{test}: skipped on PostgreSQL because {DATABASE_URL_VAR} is not a postgres:// URL");
        return;
    }
    let connected = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&server)
        .await;
    let admin = match connected {
        Ok(admin) => admin,
        Err(error) => {
            eprintln!("{test}: skipped on PostgreSQL because the server of {DATABASE_URL_VAR} cannot be reached: {error}");
            return;
        }
    };
    let schema = format!("keycheck_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.expect("creating the test schema");
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
    eprintln!("{test}: running on PostgreSQL in schema {schema}");

    let outcome = AssertUnwindSafe(body(url)).catch_unwind().await;

    if let Err(error) = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await {
        eprintln!("{test}: dropping schema {schema} failed: {error}");
    }
    admin.close().await;
    if let Err(panic) = outcome {
        eprintln!("{test}: failed on PostgreSQL");
        resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------------------
// The scene: moto, the proxy, the fake Slack API and the bot

/// Live evidence through the proxy, with the static test credentials.
struct MotoEvidence(LiveConfig);

impl EvidenceFactory for MotoEvidence {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
        Ok(Arc::new(live::build_evidence(self.0.clone(), investigation_id)))
    }
}

/// Remediators through the proxy, with the static test credentials.
struct MotoRemediators(LiveConfig);

impl RemediatorFactory for MotoRemediators {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Remediator> {
        keycheck_tests::install_crypto_provider();
        Ok(Remediator::with_credentials(self.0.clone(), ContainConfig::default(), investigation_id, test_credentials())?)
    }
}

/// The bot's settings that vary between tests.
#[derive(Clone)]
struct Settings {
    /// Lines of `[slack.approvals]`.
    approvals: String,
    /// `contain.post_check_delay`.
    post_check_delay: &'static str,
}

impl Settings {
    fn new(approvals: &str) -> Settings {
        Settings {
            approvals: approvals.to_string(),
            post_check_delay: "1h",
        }
    }
}

/// The buttons under a verdict.
#[derive(Clone, Debug)]
struct Offer {
    /// The root message's `ts`, which is the thread.
    root_ts: String,
    /// The button values by label.
    buttons: BTreeMap<String, String>,
    /// The root message update, whose blocks a dismissal click carries.
    root: Call,
}

impl Offer {
    fn value(&self, label: &str) -> String {
        self.buttons
            .get(label)
            .cloned()
            .unwrap_or_else(|| panic!("no {label} button under the verdict; buttons: {:?}", self.buttons))
    }
}

/// Where a click comes from and what it carries.
struct ClickSpec<'a> {
    user: &'a str,
    action_id: String,
    value: String,
    team: &'a str,
    channel: &'a str,
    /// The clicked message's `ts`.
    message_ts: &'a str,
    /// The thread of the clicked message, when it is a reply.
    thread_ts: Option<&'a str>,
    /// The clicked message's blocks.
    blocks: Option<Value>,
}

/// One emulator incident, one proxy, one fake Slack API and one or two bots sharing a store.
struct Scene {
    incident: Incident,
    clients: Clients,
    proxy: Proxy,
    fake: FakeSlack,
    database_url: String,
    aws: LiveConfig,
    bot: Option<HttpServer>,
    http: reqwest::Client,
    clicks: AtomicUsize,
}

impl Drop for Scene {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- Slack calls ---\n{}", transcript(&self.fake.calls()));
            eprintln!("--- AWS calls through the proxy ---\n{}", format_calls(&self.proxy.calls()));
            eprintln!("--- seeded incident ---\n{}", self.incident.describe_events());
        }
    }
}

impl Scene {
    /// Seeds a fresh incident and starts the bot with `settings` on the store at
    /// `database_url`.
    async fn new(database_url: &str, settings: &Settings) -> Scene {
        let incident = live::seed_incident().await;
        let moto = keycheck_tests::moto::shared().await;
        let proxy = live::start_proxy().await;
        let aws = live::live_config(&proxy.endpoint(), &incident, QueryMode::LogsInsights);
        let fake = FakeSlack::start().await;
        fake.set_user_group(LEADS_GROUP, &[SECOND_LEAD]);
        let mut scene = Scene {
            incident,
            clients: Clients::new(&moto.endpoint()),
            proxy,
            fake,
            database_url: database_url.to_string(),
            aws,
            bot: None,
            http: reqwest::Client::builder().no_proxy().build().expect("HTTP client"),
            clicks: AtomicUsize::new(0),
        };
        scene.bot = Some(scene.start_bot(settings).await);
        scene
    }

    /// Starts a bot on the scene's store and fake, as another replica or a restart would.
    async fn start_bot(&self, settings: &Settings) -> HttpServer {
        let text = format!(
            "[slack]\nmode = \"http\"\napi_url = \"{}\"\n\n[slack.approvals]\n{}\n[contain]\npost_check_delay = \"{}\"\n\n[store]\ndatabase_url = \"{}\"\n",
            self.fake.api_url(),
            settings.approvals,
            settings.post_check_delay,
            self.database_url
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
        parts.evidence = Arc::new(MotoEvidence(self.aws.clone()));
        parts.remediators = Arc::new(MotoRemediators(self.aws.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the bot listener");
        keycheck_bot::serve::start_http(&config, &secrets, parts, listener)
            .await
            .unwrap_or_else(|error| panic!("the bot did not start: {error:#}"))
    }

    fn bot(&self) -> &HttpServer {
        self.bot.as_ref().expect("a running bot")
    }

    async fn store(&self) -> Store {
        Store::open(&self.database_url).await.expect("the test opens the bot's store")
    }

    /// Sends a signed form `body` to `path` of `server`.
    async fn send(&self, server: &HttpServer, path: &str, body: String) -> u16 {
        let timestamp = now();
        let signature = sign(SIGNING_SECRET, &timestamp, body.as_bytes());
        let response = self
            .http
            .post(format!("http://{}{path}", server.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .expect("the bot's listener responds");
        response.status().as_u16()
    }

    /// Runs `/keycheck` on the leaked key and returns the buttons under the verdict.
    async fn investigate(&self) -> Offer {
        let body = keycheck_tests::slack_api::command_body(
            &self.incident.leaked_key,
            RESPONDER,
            CHANNEL,
            &format!("trigger.{}", self.incident.suffix),
            &self.fake.response_url("command"),
        );
        assert_eq!(self.send(self.bot(), "/slack/commands", body).await, 200);
        let calls = self
            .fake
            .wait_for("the root message update", TIMEOUT, |calls| calls.iter().any(|c| c.method == "chat.update"))
            .await;
        let root = calls.iter().find(|c| c.method == "chat.update").unwrap().clone();
        let root_ts = root.field("ts").expect("the update names the root").to_string();
        let mut buttons = BTreeMap::new();
        for block in root.body["blocks"].as_array().into_iter().flatten() {
            if block["block_id"] != "keycheck_actions" {
                continue;
            }
            for button in block["elements"].as_array().into_iter().flatten() {
                let label = button["text"]["text"].as_str().unwrap_or_default().to_string();
                buttons.insert(label, button["value"].as_str().unwrap_or_default().to_string());
            }
        }
        Offer { root_ts, buttons, root }
    }

    /// Sends the click of `spec` to `server` and returns the name of its `response_url`.
    async fn click_on(&self, server: &HttpServer, spec: &ClickSpec<'_>) -> String {
        let name = format!("click-{}", self.clicks.fetch_add(1, Ordering::SeqCst));
        let mut message = json!({"type": "message", "ts": spec.message_ts, "user": "U0KEYCHECK", "text": "keycheck"});
        if let Some(thread_ts) = spec.thread_ts {
            message["thread_ts"] = json!(thread_ts);
        }
        if let Some(blocks) = &spec.blocks {
            message["blocks"] = blocks.clone();
        }
        let payload = json!({
            "type": "block_actions",
            "team": {"id": spec.team, "domain": "keycheck-test"},
            "user": {"id": spec.user, "username": spec.user.to_lowercase(), "name": spec.user.to_lowercase(), "team_id": spec.team},
            "api_app_id": "A0KEYCHECK",
            "token": "unused",
            "container": {"type": "message", "message_ts": spec.message_ts, "channel_id": spec.channel, "is_ephemeral": false},
            "trigger_id": format!("trigger.{name}"),
            "channel": {"id": spec.channel, "name": "incident"},
            "message": message,
            "response_url": self.fake.response_url(&name),
            "actions": [{
                "type": "button", "action_id": spec.action_id, "block_id": "blocks",
                "text": {"type": "plain_text", "text": "button"}, "value": spec.value, "action_ts": "1700000001.000000"
            }]
        });
        let body = format!("payload={}", percent_encode(&payload.to_string()));
        let status = self.send(server, "/slack/interactions", body).await;
        assert_eq!(status, 200, "the click was not acknowledged");
        name
    }

    /// Returns the click on the root message's `label` button by `user` in the
    /// investigation's channel.
    fn root_click<'a>(&self, offer: &'a Offer, user: &'a str, label: &str) -> ClickSpec<'a> {
        ClickSpec {
            user,
            action_id: format!("keycheck_request_{}", label.to_lowercase().replace(' ', "_")),
            value: offer.value(label),
            team: TEAM_ID,
            channel: CHANNEL,
            message_ts: &offer.root_ts,
            thread_ts: None,
            blocks: Some(offer.root.body["blocks"].clone()),
        }
    }

    /// Returns the click on `action_id` (`keycheck_approve` or `keycheck_reject`) of an
    /// approval request by `user`.
    fn request_click<'a>(&self, offer: &'a Offer, request: &'a Call, user: &'a str, action_id: &str) -> ClickSpec<'a> {
        ClickSpec {
            user,
            action_id: action_id.to_string(),
            value: approval_value(request),
            team: TEAM_ID,
            channel: CHANNEL,
            message_ts: request.answer["ts"].as_str().expect("the request's ts"),
            thread_ts: Some(&offer.root_ts),
            blocks: None,
        }
    }

    /// Sends `spec` to the running bot and waits for the next thread message whose text
    /// starts with `expected`.
    async fn click_expecting_post(&self, spec: &ClickSpec<'_>, expected: &str) -> Call {
        self.click_on_expecting_post(self.bot(), spec, expected).await
    }

    async fn click_on_expecting_post(&self, server: &HttpServer, spec: &ClickSpec<'_>, expected: &str) -> Call {
        let matches = |call: &Call| call.method == "chat.postMessage" && call.field("text").is_some_and(|text| text.starts_with(expected));
        let before = self.fake.calls().iter().filter(|c| matches(c)).count();
        self.click_on(server, spec).await;
        let calls = self
            .fake
            .wait_for(&format!("a post starting with {expected:?}"), TIMEOUT, |calls| {
                calls.iter().filter(|c| matches(c)).count() > before
            })
            .await;
        calls.into_iter().filter(|c| matches(c)).nth(before).unwrap()
    }

    /// Sends `spec` to `server` and returns the text shown to the clicker alone.
    async fn click_expecting_refusal(&self, server: &HttpServer, spec: &ClickSpec<'_>) -> String {
        let name = self.click_on(server, spec).await;
        let reply = |calls: &[Call]| {
            calls
                .iter()
                .find(|c| c.method == "response_url" && c.field("response_url_name") == Some(name.as_str()))
                .cloned()
        };
        let calls = self.fake.wait_for(&format!("the reply to {name}"), TIMEOUT, |calls| reply(calls).is_some()).await;
        let call = reply(&calls).unwrap();
        assert_eq!(call.field("response_type"), Some("ephemeral"), "a refusal is shown to the clicker alone: {}", call.body);
        call.field("text").unwrap_or_default().to_string()
    }

    /// Returns the AWS operations the proxy received from index `from` on.
    fn operations_since(&self, from: usize) -> Vec<String> {
        self.proxy.operations().split_off(from)
    }

    fn count_operation(&self, operation: &str) -> usize {
        self.proxy.operations().iter().filter(|o| *o == operation).count()
    }
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Returns the action ID an approval request's Approve button carries.
fn approval_value(request: &Call) -> String {
    request.body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["block_id"] == "keycheck_approval")
        .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
        .find(|button| button["action_id"] == "keycheck_approve")
        .and_then(|button| button["value"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("the approval request has no Approve button: {}", request.body))
}

/// Returns the text of every block of a posted message, one a line.
fn blocks_text(call: &Call) -> String {
    let mut lines = Vec::new();
    collect_text(call.body.get("blocks").unwrap_or(&Value::Null), &mut lines);
    lines.join("\n")
}

fn collect_text(value: &Value, lines: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get("text") {
                lines.push(text.clone());
            }
            map.values().for_each(|item| collect_text(item, lines));
        }
        Value::Array(items) => items.iter().for_each(|item| collect_text(item, lines)),
        _ => {}
    }
}

/// Returns the plan section of an approval request, as posted.
fn posted_plan(request: &Call) -> String {
    request.body["blocks"][1]["text"]["text"].as_str().unwrap_or_default().to_string()
}

/// Returns the plan of `action` as the approval request must show it: the sentences of
/// the stored plan, which is what runs, as bullets escaped for Slack.
fn expected_plan(action: &PendingAction) -> String {
    let lines: Vec<String> = plan_lines(action).iter().map(|line| format!("• {line}")).collect();
    escape_slack(&lines.join("\n"))
}

/// Reads the stored action behind a button value.
async fn stored_action(store: &Store, value: &str) -> PendingAction {
    let id = ActionId::parse(value).unwrap_or_else(|| panic!("{value:?} is not an action ID"));
    store.action(&id).await.expect("the store reads").unwrap_or_else(|| panic!("no stored action {id}"))
}

/// Returns the audit entries of `action`, oldest first.
async fn audit_of(store: &Store, action: &PendingAction) -> Vec<AuditEntry> {
    let entries = store.audit(Some(&action.key_id)).await.expect("the audit log reads");
    entries.into_iter().filter(|entry| entry.action_id.as_ref() == Some(&action.id)).collect()
}

fn events(entries: &[AuditEntry]) -> Vec<AuditEvent> {
    entries.iter().map(|entry| entry.event).collect()
}

// ---------------------------------------------------------------------------------------
// IAM read back

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct IamState {
    /// Access key ID to status.
    keys: BTreeMap<String, String>,
    /// Attached managed policy ARNs.
    attached: BTreeSet<String>,
    /// Inline policy names.
    inline: BTreeSet<String>,
}

async fn iam_state(clients: &Clients, user: &str) -> IamState {
    let iam = &clients.iam;
    let keys = iam.list_access_keys().user_name(user).send().await.expect("ListAccessKeys");
    let attached = iam.list_attached_user_policies().user_name(user).send().await.expect("ListAttachedUserPolicies");
    let inline = iam.list_user_policies().user_name(user).send().await.expect("ListUserPolicies");
    IamState {
        keys: keys
            .access_key_metadata()
            .iter()
            .map(|key| {
                let status = key.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                (key.access_key_id().unwrap_or_default().to_string(), status)
            })
            .collect(),
        attached: attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect(),
        inline: inline.policy_names().iter().cloned().collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Reading every table of the store

/// Returns every row of every table of the store at `url`, one line a row.
async fn dump_store(url: &str) -> String {
    let mut lines = Vec::new();
    if is_postgres_url(url) {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("PostgreSQL");
        let tables: Vec<String> = sqlx::query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()")
            .fetch_all(&pool)
            .await
            .expect("the table list")
            .iter()
            .map(|row| row.get(0))
            .collect();
        for table in &tables {
            let rows = sqlx::query(&format!("SELECT row_to_json(t)::text FROM \"{table}\" t")).fetch_all(&pool).await.expect("the rows");
            lines.extend(rows.iter().map(|row| format!("{table}: {}", row.get::<String, _>(0))));
        }
        pool.close().await;
    } else {
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await.expect("SQLite");
        let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .expect("the table list")
            .iter()
            .map(|row| row.get(0))
            .collect();
        for table in &tables {
            let columns: Vec<String> = sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&pool)
                .await
                .expect("the columns")
                .iter()
                .map(|row| format!("quote(\"{}\")", row.get::<String, _>(0)))
                .collect();
            let query = format!("SELECT json_array({}) FROM \"{table}\"", columns.join(", "));
            let rows = sqlx::query(&query).fetch_all(&pool).await.expect("the rows");
            lines.extend(rows.iter().map(|row| format!("{table}: {}", row.get::<String, _>(0))));
        }
        pool.close().await;
        // The database file and its write-ahead log, for text in free pages.
        let path = url.trim_start_matches("sqlite://");
        for file in [path.to_string(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                lines.push(format!("file {file}: {}", String::from_utf8_lossy(&bytes)));
            }
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------
// Deactivate, with the offer and the post-deactivation check

#[test]
fn deactivate_runs_plan_and_post_check() {
    run(|| {
        each_backend("deactivate_runs_plan_and_post_check", |url| async move {
            let settings = Settings {
                post_check_delay: "1s",
                ..Settings::new(APPROVALS)
            };
            let scene = Scene::new(&url, &settings).await;
            let user = scene.incident.user_name.clone();
            let offer = scene.investigate().await;

            // The seeded owner has two keys, so rotation is not offered, and the root gives the reason.
            let labels: Vec<&str> = offer.buttons.keys().map(String::as_str).collect();
            assert_eq!(labels, ["Deactivate", "Dismiss", "Quarantine", "Revoke sessions"], "{:?}", offer.root.body);
            for value in offer.buttons.values() {
                assert!(ActionId::parse(value).is_some(), "a button value is only an action ID: {value:?}");
            }
            let root_text = blocks_text(&offer.root);
            assert!(root_text.contains("Rotate is not offered"), "{root_text}");
            assert!(root_text.contains("already has two access keys"), "{root_text}");

            let before = iam_state(&scene.clients, &user).await;
            let changes_before = scene.operations_since(0).len();
            let request = scene.click_expecting_post(&scene.root_click(&offer, RESPONDER, "Deactivate"), "Approval requested: Deactivate").await;
            assert_eq!(request.field("thread_ts"), Some(offer.root_ts.as_str()), "the request is posted in the thread");
            let requested_ops = scene.operations_since(changes_before);
            assert!(
                requested_ops.iter().all(|op| !CHANGING_OPERATIONS.contains(&op.as_str())),
                "a request changed AWS: {requested_ops:?}"
            );

            let store = scene.store().await;
            let action = stored_action(&store, &offer.value("Deactivate")).await;
            assert_eq!(posted_plan(&request), expected_plan(&action), "the posted plan is the stored plan");
            let Ok(Plan::Deactivate(plan)) = Plan::from_json(&action.plan) else {
                panic!("not a deactivation plan: {}", action.plan);
            };
            assert_eq!(plan.key_id.as_str(), scene.incident.leaked_key);

            // An approver by user group approves, and the click runs exactly what the plan describes.
            let approve = scene.request_click(&offer, &request, SECOND_LEAD, "keycheck_approve");
            let result = scene.click_expecting_post(&approve, "Deactivate done").await;
            let after = iam_state(&scene.clients, &user).await;
            let mut expected = before.clone();
            expected.keys.insert(plan.key_id.to_string(), "Inactive".to_string());
            for other in &plan.other_keys {
                assert_eq!(before.keys.get(&other.key_id), Some(&format!("{:?}", other.status)), "{plan:?}");
            }
            assert_eq!(after, expected, "IAM after the deactivation; plan: {:?}", plan.describe());
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 1);

            let result_text = blocks_text(&result);
            assert!(result_text.contains(&format!("<@{SECOND_LEAD}>")), "{result_text}");
            assert!(result_text.contains("request ID"), "the result names the AWS request ID: {result_text}");
            let closed = scene
                .fake
                .wait_for("the approval request closed", TIMEOUT, |calls| {
                    calls.iter().any(|c| c.method == "chat.update" && c.field("ts") == request.answer["ts"].as_str())
                })
                .await;
            let update = closed.iter().rev().find(|c| c.method == "chat.update").unwrap();
            assert!(!update.body.to_string().contains("keycheck_approve"), "the decided request keeps no buttons: {}", update.body);

            let action = stored_action(&store, &offer.value("Deactivate")).await;
            assert_eq!(action.state, ActionState::Done);
            assert_eq!(action.requested_by.as_ref().map(|a| a.user_id.as_str()), Some(RESPONDER));
            assert_eq!(action.decided_by.as_ref().map(|a| a.user_id.as_str()), Some(SECOND_LEAD));
            let audit = audit_of(&store, &action).await;
            assert_eq!(
                events(&audit),
                [AuditEvent::Offered, AuditEvent::Requested, AuditEvent::Approved, AuditEvent::Executing, AuditEvent::Executed],
                "{audit:#?}"
            );
            assert_eq!(audit[1].actor.user_id, RESPONDER);
            assert_eq!(audit[2].actor.user_id, SECOND_LEAD);
            let executed = &audit[4];
            assert!(executed.aws_request_id.as_deref().is_some_and(|id| !id.is_empty()), "{executed:?}");
            assert_eq!(executed.result.as_deref(), Some("ok"));

            // The post-deactivation check runs after contain.post_check_delay and posts in the thread.
            let check = scene
                .fake
                .wait_for("the post-deactivation check", TIMEOUT, |calls| {
                    calls.iter().any(|c| c.field("text").is_some_and(|t| t.starts_with("Post-deactivation check")))
                })
                .await;
            let check = check.iter().find(|c| c.field("text").is_some_and(|t| t.starts_with("Post-deactivation check"))).unwrap();
            assert_eq!(check.field("thread_ts"), Some(offer.root_ts.as_str()), "the check is posted in the thread");
            let check_text = blocks_text(check);
            assert!(check_text.contains("since its deactivation"), "{check_text}");
            assert!(check_text.contains(&scene.incident.leaked_key), "{check_text}");
            store.close().await;
        })
    });
}

// ---------------------------------------------------------------------------------------
// Rotate

#[test]
fn rotate_hides_new_secret_everywhere() {
    run(|| {
        each_backend("rotate_hides_new_secret_everywhere", |url| async move {
            let scene = Scene::new(&url, &Settings::new(APPROVALS)).await;
            let user = scene.incident.user_name.clone();
            // IAM allows two keys per user, so rotation needs room for one more.
            scene
                .clients
                .iam
                .delete_access_key()
                .user_name(&user)
                .access_key_id(&scene.incident.second_key)
                .send()
                .await
                .expect("DeleteAccessKey of the second key");
            let offer = scene.investigate().await;
            let before = iam_state(&scene.clients, &user).await;

            let request = scene.click_expecting_post(&scene.root_click(&offer, RESPONDER, "Rotate"), "Approval requested: Rotate").await;
            let store = scene.store().await;
            let action = stored_action(&store, &offer.value("Rotate")).await;
            assert_eq!(posted_plan(&request), expected_plan(&action), "the posted plan is the stored plan");
            let Ok(Plan::Rotate(plan)) = Plan::from_json(&action.plan) else {
                panic!("not a rotation plan: {}", action.plan);
            };

            let approve = scene.request_click(&offer, &request, LEAD, "keycheck_approve");
            let result = scene.click_expecting_post(&approve, "Rotate done").await;
            let fields: Vec<String> = result.body["blocks"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|block| block["fields"].as_array().cloned().unwrap_or_default())
                .filter_map(|field| field["text"].as_str().map(str::to_string))
                .collect();
            assert_eq!(fields.len(), 2, "the result shows the new key and the secret: {}", result.body);
            let new_key = fields[0].split('`').nth(1).expect("the new key ID in backticks").to_string();
            let secret_arn = fields[1].split('`').nth(1).expect("the secret ARN in backticks").to_string();

            // IAM: the old key inactive, one new active key, nothing else.
            let after = iam_state(&scene.clients, &user).await;
            let mut expected = before.clone();
            expected.keys.insert(plan.key_id.to_string(), "Inactive".to_string());
            expected.keys.insert(new_key.clone(), "Active".to_string());
            assert_eq!(after, expected, "IAM after the rotation; plan: {:?}", plan.describe());

            // The secret is readable from Secrets Manager under the planned name.
            let stored = scene.clients.secrets.get_secret_value().secret_id(&secret_arn).send().await.expect("GetSecretValue");
            assert_eq!(stored.name(), Some(plan.secret_name.replace("{new_key_id}", &new_key).as_str()));
            let value: Value = serde_json::from_str(stored.secret_string().expect("a string secret")).expect("a JSON secret");
            assert_eq!(value["AccessKeyId"], new_key.as_str());
            let secret = value["SecretAccessKey"].as_str().expect("the secret access key").to_string();
            assert_eq!(secret.len(), 40, "a secret access key has 40 characters");

            // ... and appears in no payload sent to Slack, no log line, no table of the store.
            let audit = audit_of(&store, &action).await;
            assert_eq!(events(&audit).last(), Some(&AuditEvent::Executed), "{audit:#?}");
            store.close().await;
            let slack: String = scene.fake.calls().iter().map(|call| format!("{} {}\n", call.method, call.body)).collect();
            assert!(slack.contains(&new_key), "the check reads the Slack payloads");
            assert_no_secret(&slack, &secret, "a payload sent to the Slack API");
            let logs = captured_logs();
            assert!(logs.contains(&new_key), "the check reads the captured logs");
            assert_no_secret(&logs, &secret, "the log");
            let dump = dump_store(&url).await;
            assert!(dump.contains(&secret_arn), "the check reads the store's tables");
            assert_no_secret(&dump, &secret, "the store");
        })
    });
}

/// Asserts that neither `secret` nor its first half appears in `text`.
fn assert_no_secret(text: &str, secret: &str, place: &str) {
    assert!(!text.contains(secret), "the new secret access key appears in {place}");
    assert!(!text.contains(&secret[..20]), "the first half of the new secret access key appears in {place}");
}

// ---------------------------------------------------------------------------------------
// Quarantine

#[test]
fn quarantine_attaches_planned_policy() {
    run(|| {
        each_backend("quarantine_attaches_planned_policy", |url| async move {
            let scene = Scene::new(&url, &Settings::new(APPROVALS)).await;
            let user = scene.incident.user_name.clone();
            let offer = scene.investigate().await;
            let before = iam_state(&scene.clients, &user).await;

            let request = scene.click_expecting_post(&scene.root_click(&offer, RESPONDER, "Quarantine"), "Approval requested: Quarantine").await;
            let store = scene.store().await;
            let action = stored_action(&store, &offer.value("Quarantine")).await;
            assert_eq!(posted_plan(&request), expected_plan(&action), "the posted plan is the stored plan");
            let Ok(Plan::Quarantine(plan)) = Plan::from_json(&action.plan) else {
                panic!("not a quarantine plan: {}", action.plan);
            };
            assert_eq!(plan.principal.name, user);

            scene.click_expecting_post(&scene.request_click(&offer, &request, LEAD, "keycheck_approve"), "Quarantine done").await;
            let after = iam_state(&scene.clients, &user).await;
            let mut expected = before.clone();
            expected.attached.insert(plan.policy_arn.clone());
            assert_eq!(after, expected, "IAM after the quarantine; plan: {:?}", plan.describe());
            assert_eq!(scene.count_operation("iam:AttachUserPolicy"), 1);
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 0);
            store.close().await;
        })
    });
}

// ---------------------------------------------------------------------------------------
// Refused clicks

#[test]
fn refused_clicks_change_nothing() {
    run(|| {
        each_backend("refused_clicks_change_nothing", |url| async move {
            let scene = Scene::new(&url, &Settings::new(APPROVALS)).await;
            let user = scene.incident.user_name.clone();
            let offer = scene.investigate().await;
            let before = iam_state(&scene.clients, &user).await;
            let store = scene.store().await;

            // Deactivate is requested through a replica whose requests expire after a
            // second, so it is overdue when the first bot gets the Approve click.
            let short_expiry = Settings::new(&format!("{APPROVALS}expiry = \"1s\"\n"));
            let replica = scene.start_bot(&short_expiry).await;
            let deactivate_request = scene
                .click_on_expecting_post(&replica, &scene.root_click(&offer, RESPONDER, "Deactivate"), "Approval requested: Deactivate")
                .await;
            // The lead requests Revoke sessions, to approve it themselves.
            let revoke_request = scene
                .click_expecting_post(&scene.root_click(&offer, LEAD, "Revoke sessions"), "Approval requested: Revoke sessions")
                .await;
            // Quarantine runs, so that a second Approve finds it done.
            let quarantine_request = scene
                .click_expecting_post(&scene.root_click(&offer, RESPONDER, "Quarantine"), "Approval requested: Quarantine")
                .await;
            scene
                .click_expecting_post(&scene.request_click(&offer, &quarantine_request, SECOND_LEAD, "keycheck_approve"), "Quarantine done")
                .await;
            let quarantined = iam_state(&scene.clients, &user).await;
            tokio::time::sleep(Duration::from_millis(1200)).await;

            let approve_deactivate = |user: &'static str| scene.request_click(&offer, &deactivate_request, user, "keycheck_approve");
            let unknown_id = ActionId::generate().to_string();
            let cases: Vec<(&str, ClickSpec, Refusal)> = vec![
                ("user who is not an approver", approve_deactivate(OUTSIDER), Refusal::NotApprover),
                (
                    "requester approves own request",
                    scene.request_click(&offer, &revoke_request, LEAD, "keycheck_approve"),
                    Refusal::OwnRequest,
                ),
                (
                    "expired approval",
                    approve_deactivate(LEAD),
                    Refusal::Expired {
                        expired_at: stored_action(&store, &offer.value("Deactivate")).await.expires_at.unwrap(),
                    },
                ),
                (
                    "second Approve on a done action",
                    scene.request_click(&offer, &quarantine_request, LEAD, "keycheck_approve"),
                    Refusal::Closed { state: ActionState::Done },
                ),
                (
                    "action ID that does not exist",
                    ClickSpec { value: unknown_id.clone(), ..approve_deactivate(LEAD) },
                    Refusal::UnknownAction,
                ),
                ("click from another channel", ClickSpec { channel: OTHER_CHANNEL, ..approve_deactivate(LEAD) }, Refusal::WrongChannel),
                ("click from another workspace", ClickSpec { team: OTHER_TEAM, ..approve_deactivate(LEAD) }, Refusal::WrongChannel),
            ];

            let mut failures = Vec::new();
            for (name, spec, refusal) in &cases {
                let calls_before = scene.proxy.calls().len();
                let audit_before = store.audit(None).await.expect("the audit log").len();
                let shown = scene.click_expecting_refusal(scene.bot(), spec).await;

                let aws_calls = scene.proxy.calls().split_off(calls_before);
                let changes: Vec<&str> = aws_calls
                    .iter()
                    .map(|call| call.operation.as_str())
                    .filter(|operation| CHANGING_OPERATIONS.contains(operation))
                    .collect();
                let audit = store.audit(None).await.expect("the audit log").split_off(audit_before);
                let refused: Vec<&AuditEntry> = audit.iter().filter(|entry| entry.event == AuditEvent::Refused).collect();

                let mut problems = Vec::new();
                if shown != refusal.message() {
                    problems.push(format!("shown {shown:?}, expected {:?}", refusal.message()));
                }
                if !changes.is_empty() {
                    problems.push(format!("changed AWS: {changes:?}"));
                }
                if !aws_calls.is_empty() {
                    problems.push(format!("called AWS:\n{}", format_calls(&aws_calls)));
                }
                match refused.as_slice() {
                    [entry] => {
                        if entry.actor.user_id != spec.user || entry.result.as_deref() != Some(refusal.code()) {
                            problems.push(format!("audit entry has the wrong actor or reason: {entry:?}"));
                        }
                        if !entry.detail.contains(refusal.code()) {
                            problems.push(format!("audit detail lacks the reason: {}", entry.detail));
                        }
                    }
                    other => problems.push(format!("{} refused entries in the audit log: {audit:#?}", other.len())),
                }
                if !problems.is_empty() {
                    failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
                }
            }
            assert!(failures.is_empty(), "{} of {} refused clicks failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

            // Only the approved quarantine changed IAM, because the deactivation expired.
            assert_eq!(iam_state(&scene.clients, &user).await, quarantined);
            assert_eq!(before.keys, quarantined.keys);
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 0);
            let deactivate = stored_action(&store, &offer.value("Deactivate")).await;
            assert_eq!(deactivate.state, ActionState::Expired);
            assert!(events(&audit_of(&store, &deactivate).await).contains(&AuditEvent::Expired));
            let unknown = store.audit(None).await.unwrap();
            assert!(
                unknown.iter().any(|entry| entry.action_id.is_none() && entry.detail.contains(&unknown_id)),
                "the refusal of an unknown action ID records the value it carried"
            );
            replica.stop().await.expect("the replica stops");
            store.close().await;
        })
    });
}

// ---------------------------------------------------------------------------------------
// Races, restarts, one-click approval, dismissal

#[test]
fn simultaneous_approvals_run_once() {
    run(|| {
        each_backend("simultaneous_approvals_run_once", |url| async move {
            let scene = Scene::new(&url, &Settings::new(APPROVALS)).await;
            let offer = scene.investigate().await;
            let request = scene.click_expecting_post(&scene.root_click(&offer, RESPONDER, "Deactivate"), "Approval requested: Deactivate").await;

            let first = scene.request_click(&offer, &request, LEAD, "keycheck_approve");
            let second = scene.request_click(&offer, &request, SECOND_LEAD, "keycheck_approve");
            let (first_name, second_name) = tokio::join!(scene.click_on(scene.bot(), &first), scene.click_on(scene.bot(), &second));

            // One click runs and posts the result, and the other is refused.
            let names = [first_name.as_str(), second_name.as_str()];
            let is_result = |call: &Call| call.field("text").is_some_and(|t| t.starts_with("Deactivate done") || t.starts_with("Deactivate failed"));
            let is_refusal = |call: &Call| call.method == "response_url" && names.contains(&call.field("response_url_name").unwrap_or_default());
            let calls = scene
                .fake
                .wait_for("an answer to each click", TIMEOUT, |calls| {
                    calls.iter().filter(|c| is_result(c) || is_refusal(c)).count() >= 2
                })
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 1, "{}", format_calls(&scene.proxy.calls()));
            assert_eq!(calls.iter().filter(|c| is_result(c)).count(), 1, "{}", transcript(&calls));
            let refusals: Vec<&Call> = calls.iter().filter(|c| is_refusal(c)).collect();
            assert_eq!(refusals.len(), 1, "{}", transcript(&calls));
            let refusal = refusals[0];
            let text = refusal.field("text").unwrap_or_default();
            assert!(text.contains("This click changed nothing"), "{text}");

            let store = scene.store().await;
            let action = stored_action(&store, &offer.value("Deactivate")).await;
            assert_eq!(action.state, ActionState::Done);
            let audit = audit_of(&store, &action).await;
            let count = |event| audit.iter().filter(|entry| entry.event == event).count();
            assert_eq!(count(AuditEvent::Approved), 1, "{audit:#?}");
            assert_eq!(count(AuditEvent::Executing), 1, "{audit:#?}");
            assert_eq!(count(AuditEvent::Executed), 1, "{audit:#?}");
            assert_eq!(count(AuditEvent::Refused), 1, "{audit:#?}");
            store.close().await;
        })
    });
}

#[test]
fn restart_between_request_and_approval() {
    run(|| {
        each_backend("restart_between_request_and_approval", |url| async move {
            let mut scene = Scene::new(&url, &Settings::new(APPROVALS)).await;
            let user = scene.incident.user_name.clone();
            let offer = scene.investigate().await;
            let request = scene.click_expecting_post(&scene.root_click(&offer, RESPONDER, "Deactivate"), "Approval requested: Deactivate").await;

            let old = scene.bot.take().unwrap();
            let old_addr = old.addr;
            old.stop().await.expect("the first bot stops");
            let gone = scene.http.post(format!("http://{old_addr}/slack/interactions")).send().await;
            assert!(gone.is_err(), "the stopped bot still answers");
            scene.bot = Some(scene.start_bot(&Settings::new(APPROVALS)).await);

            let approve = scene.request_click(&offer, &request, LEAD, "keycheck_approve");
            scene.click_expecting_post(&approve, "Deactivate done").await;
            let after = iam_state(&scene.clients, &user).await;
            assert_eq!(after.keys.get(&scene.incident.leaked_key).map(String::as_str), Some("Inactive"));
            assert_eq!(after.keys.get(&scene.incident.second_key).map(String::as_str), Some("Active"));

            // A repeated Approve to the restarted bot changes nothing.
            let again = scene.click_expecting_refusal(scene.bot(), &approve).await;
            assert_eq!(again, Refusal::Closed { state: ActionState::Done }.message());
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 1);
            let store = scene.store().await;
            let action = stored_action(&store, &offer.value("Deactivate")).await;
            assert_eq!(action.state, ActionState::Done);
            assert_eq!(events(&audit_of(&store, &action).await).iter().filter(|e| **e == AuditEvent::Executed).count(), 1);
            store.close().await;
        })
    });
}

#[test]
fn one_click_approval_runs_action() {
    run(|| {
        each_backend("one_click_approval_runs_action", |url| async move {
            let settings = Settings::new("approvers = [\"U0LEAD\"]\ntwo_person_rule = false\n");
            let scene = Scene::new(&url, &settings).await;
            let user = scene.incident.user_name.clone();
            let offer = scene.investigate().await;

            // Someone who is no approver gets a refusal, and nothing runs.
            let refused = scene.click_expecting_refusal(scene.bot(), &scene.root_click(&offer, OUTSIDER, "Deactivate")).await;
            assert_eq!(refused, Refusal::NotRequester.message());
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 0);

            // One approver click runs the action, without an approval request.
            scene.click_expecting_post(&scene.root_click(&offer, LEAD, "Deactivate"), "Deactivate done").await;
            let after = iam_state(&scene.clients, &user).await;
            assert_eq!(after.keys.get(&scene.incident.leaked_key).map(String::as_str), Some("Inactive"));
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 1);
            let posts = scene.fake.calls_to("chat.postMessage");
            assert!(
                !posts.iter().any(|c| c.field("text").is_some_and(|t| t.starts_with("Approval requested"))),
                "one-click approval posts no approval request:\n{}",
                transcript(&posts)
            );

            let store = scene.store().await;
            let action = stored_action(&store, &offer.value("Deactivate")).await;
            assert_eq!(action.state, ActionState::Done);
            assert_eq!(action.requested_by.as_ref().map(|a| a.user_id.as_str()), Some(LEAD));
            assert_eq!(action.decided_by.as_ref().map(|a| a.user_id.as_str()), Some(LEAD));
            let audit = audit_of(&store, &action).await;
            assert_eq!(
                events(&audit),
                [AuditEvent::Offered, AuditEvent::Refused, AuditEvent::Approved, AuditEvent::Executing, AuditEvent::Executed],
                "{audit:#?}"
            );
            assert!(audit[2].detail.contains("one click"), "{}", audit[2].detail);
            store.close().await;
        })
    });
}

#[test]
fn approver_removed_from_group_refused_at_once() {
    run(|| {
        each_backend("approver_removed_from_group_refused_at_once", |url| async move {
            let settings = Settings::new("approvers = [\"S0LEADS\"]\ntwo_person_rule = false\n");
            let scene = Scene::new(&url, &settings).await;
            let offer = scene.investigate().await;

            // A member of the approver group runs an action with one click.
            scene.click_expecting_post(&scene.root_click(&offer, SECOND_LEAD, "Quarantine"), "Quarantine done").await;
            assert_eq!(scene.count_operation("iam:AttachUserPolicy"), 1);

            // Removed from the group, the same person is refused on the next click, although
            // keycheck read the group's members moments ago.
            scene.fake.set_user_group(LEADS_GROUP, &[]);
            let refused = scene.click_expecting_refusal(scene.bot(), &scene.root_click(&offer, SECOND_LEAD, "Deactivate")).await;
            assert_eq!(refused, Refusal::NotRequester.message());
            assert_eq!(scene.count_operation("iam:UpdateAccessKey"), 0);
        })
    });
}

#[test]
fn reject_and_dismiss_change_nothing() {
    run(|| {
        each_backend("reject_and_dismiss_change_nothing", |url| async move {
            let scene = Scene::new(&url, &Settings::new(APPROVALS)).await;
            let user = scene.incident.user_name.clone();
            let offer = scene.investigate().await;
            let before = iam_state(&scene.clients, &user).await;
            let store = scene.store().await;

            // An approver rejects a request: a note in the thread, and the request loses its buttons.
            let request = scene
                .click_expecting_post(&scene.root_click(&offer, RESPONDER, "Revoke sessions"), "Approval requested: Revoke sessions")
                .await;
            let reject = scene.request_click(&offer, &request, LEAD, "keycheck_reject");
            let note = scene.click_expecting_post(&reject, "Revoke sessions rejected").await;
            assert_eq!(note.field("thread_ts"), Some(offer.root_ts.as_str()));
            assert!(blocks_text(&note).contains(&format!("<@{LEAD}>")), "{}", note.body);
            let calls = scene
                .fake
                .wait_for("the rejected request closed", TIMEOUT, |calls| {
                    calls.iter().any(|c| c.method == "chat.update" && c.field("ts") == request.answer["ts"].as_str())
                })
                .await;
            let closed = calls.iter().rev().find(|c| c.method == "chat.update").unwrap();
            assert!(!closed.body.to_string().contains("keycheck_approve"), "the rejected request keeps no buttons: {}", closed.body);
            let revoke = stored_action(&store, &offer.value("Revoke sessions")).await;
            assert_eq!(revoke.state, ActionState::Rejected);
            assert_eq!(revoke.decided_by.as_ref().map(|a| a.user_id.as_str()), Some(LEAD));
            assert_eq!(events(&audit_of(&store, &revoke).await).last(), Some(&AuditEvent::Rejected));
            let approve_after = scene.click_expecting_refusal(scene.bot(), &scene.request_click(&offer, &request, SECOND_LEAD, "keycheck_approve")).await;
            assert_eq!(approve_after, Refusal::Closed { state: ActionState::Rejected }.message());

            // Dismiss closes every action still offered and removes the buttons from the root.
            let note = scene.click_expecting_post(&scene.root_click(&offer, RESPONDER, "Dismiss"), "Containment of").await;
            assert!(blocks_text(&note).contains("nothing was changed in AWS"), "{}", note.body);
            let root = scene
                .fake
                .calls_to("chat.update")
                .into_iter()
                .filter(|c| c.field("ts") == Some(offer.root_ts.as_str()))
                .last()
                .unwrap();
            assert!(!root.body.to_string().contains("keycheck_actions"), "the dismissed root keeps no buttons: {}", root.body);
            for label in ["Deactivate", "Quarantine", "Dismiss"] {
                let action = stored_action(&store, &offer.value(label)).await;
                assert_eq!(action.state, ActionState::Dismissed, "{label}");
            }
            assert_eq!(stored_action(&store, &offer.value("Revoke sessions")).await.state, ActionState::Rejected);
            let refused = scene.click_expecting_refusal(scene.bot(), &scene.root_click(&offer, RESPONDER, "Deactivate")).await;
            assert_eq!(refused, Refusal::Closed { state: ActionState::Dismissed }.message());

            assert_eq!(iam_state(&scene.clients, &user).await, before);
            let changes: Vec<String> = scene
                .operations_since(0)
                .into_iter()
                .filter(|operation| CHANGING_OPERATIONS.contains(&operation.as_str()))
                .collect();
            assert!(changes.is_empty(), "{changes:?}");
            store.close().await;
        })
    });
}

// ---------------------------------------------------------------------------------------
// Socket Mode

/// A fake Socket Mode server. Each connection gets `hello`, then every envelope sent
/// through `envelopes`, and every text frame the bot sends back is recorded.
struct SocketServer {
    url: String,
    envelopes: tokio::sync::broadcast::Sender<String>,
    received: Arc<Mutex<Vec<Value>>>,
    connections: Arc<AtomicUsize>,
}

impl SocketServer {
    async fn start() -> SocketServer {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/link", listener.local_addr().unwrap());
        let (envelopes, _) = tokio::sync::broadcast::channel::<String>(16);
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let server = SocketServer {
            url,
            envelopes: envelopes.clone(),
            received: Arc::clone(&received),
            connections: Arc::clone(&connections),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(socket) = tokio_tungstenite::accept_async(stream).await else { continue };
                let mut outgoing = envelopes.subscribe();
                connections.fetch_add(1, Ordering::SeqCst);
                let received = Arc::clone(&received);
                tokio::spawn(async move {
                    let (mut sink, mut stream) = socket.split();
                    let hello = json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0KEYCHECK"}});
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

    fn acknowledged(&self, envelope_id: &str) -> bool {
        self.received.lock().unwrap().iter().any(|value| value["envelope_id"] == envelope_id)
    }
}

#[test]
fn socket_mode_click_answered_and_audited() {
    run(|| {
        each_backend("socket_mode_click_answered_and_audited", |url| async move {
            keycheck_tests::install_crypto_provider();
            let fake = FakeSlack::start().await;
            fake.set_user_group(LEADS_GROUP, &[SECOND_LEAD]);
            let server = SocketServer::start().await;
            fake.set_socket_url(&server.url);
            let text = format!(
                "[slack]\nmode = \"socket\"\napi_url = \"{}\"\n\n[slack.approvals]\n{APPROVALS}\n[store]\ndatabase_url = \"{url}\"\n",
                fake.api_url()
            );
            let config: keycheck_bot::config::Config = text.parse().expect("a valid configuration");
            let secrets = keycheck_bot::slack::SlackSecrets {
                bot_token: BOT_TOKEN.to_string(),
                app_token: Some("xapp-test".to_string()),
                signing_secret: None,
            };
            let parts = keycheck_bot::serve::bot_parts(&config).await.expect("bot parts");
            let bot = keycheck_bot::slack::SlackBot::connect(&config, &secrets, parts).await.expect("the bot connects");
            let socket = keycheck_bot::slack::socket::start(bot, "xapp-test").await.expect("Socket Mode starts");
            let started = std::time::Instant::now();
            while server.connections.load(Ordering::SeqCst) == 0 && started.elapsed() < TIMEOUT {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }

            // An Approve click whose action ID names no stored action.
            let unknown = ActionId::generate().to_string();
            let envelope = json!({
                "type": "interactive", "envelope_id": "env-click", "accepts_response_payload": false,
                "payload": {
                    "type": "block_actions",
                    "team": {"id": TEAM_ID, "domain": "keycheck-test"},
                    "user": {"id": LEAD, "username": "lead", "name": "lead", "team_id": TEAM_ID},
                    "api_app_id": "A0KEYCHECK",
                    "token": "unused",
                    "container": {"type": "message", "message_ts": "1700000000.000300", "channel_id": CHANNEL, "is_ephemeral": false},
                    "trigger_id": "trigger.socket-click",
                    "channel": {"id": CHANNEL, "name": "incident"},
                    "message": {"type": "message", "ts": "1700000000.000300", "thread_ts": "1700000000.000100", "text": "Approval requested"},
                    "response_url": fake.response_url("socket-click"),
                    "actions": [{"type": "button", "action_id": "keycheck_approve", "block_id": "keycheck_approval", "value": unknown, "action_ts": "1700000001.000000"}]
                }
            });
            let _ = server.envelopes.send(envelope.to_string());

            let calls = fake
                .wait_for("the refusal", TIMEOUT, |calls| {
                    calls.iter().any(|c| c.method == "response_url" && c.field("response_url_name") == Some("socket-click"))
                })
                .await;
            let refusal = calls.iter().find(|c| c.method == "response_url").unwrap();
            assert_eq!(refusal.field("response_type"), Some("ephemeral"), "{}", refusal.body);
            assert_eq!(refusal.field("text"), Some(Refusal::UnknownAction.message().as_str()), "{}", refusal.body);
            assert!(server.acknowledged("env-click"), "the envelope was not acknowledged");

            let store = Store::open(&url).await.expect("the store opens");
            let audit = store.audit(None).await.expect("the audit log");
            let entry = audit.iter().find(|entry| entry.event == AuditEvent::Refused).unwrap_or_else(|| panic!("no refusal in {audit:#?}"));
            assert_eq!(entry.actor.user_id, LEAD);
            assert_eq!(entry.action_id, None);
            assert!(entry.detail.contains(&unknown), "{}", entry.detail);
            assert!(entry.detail.contains(&format!("slack {TEAM_ID}/{CHANNEL}")), "{}", entry.detail);
            store.close().await;
            socket.stop().await;
        })
    });
}
