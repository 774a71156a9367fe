//! `keycheck serve`: runs the chat bot until it is stopped.
//!
//! Secrets come from environment variables only: `SLACK_BOT_TOKEN` always,
//! `SLACK_APP_TOKEN` in Socket Mode, `SLACK_SIGNING_SECRET` in HTTP mode. This module
//! builds the bot's parts from the configuration and starts the transport; the Slack
//! behaviour itself lives in `slack`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use keycheck_core::demo;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::{LiveConfig, LiveEvidence};
use keycheck_core::evidence::snapshot::Snapshot;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{Config, EvidenceSource, SlackMode};
use crate::slack::api::RetryPolicy;
use crate::dedupe::StoreDedupe;
use keycheck_core::approval::Platform;
use keycheck_core::store::{Store, display_url};
use crate::slack::signature::{SigningSecret, Verifier};
use crate::slack::{self, BotParts, SlackBot, SlackSecrets};
use crate::containment::LiveRemediators;

/// Opens the evidence an investigation reads.
pub trait EvidenceFactory: Send + Sync {
    /// Returns the evidence source for the investigation `investigation_id`.
    fn open(&self, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>>;
}

/// One evidence source shared by every investigation: the demo or a snapshot, which
/// are read-only.
pub struct SharedEvidence(pub Arc<dyn Evidence>);

impl EvidenceFactory for SharedEvidence {
    fn open(&self, _investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
        Ok(Arc::clone(&self.0))
    }
}

/// A live evidence source per investigation, from the `[aws]` table, so that each
/// investigation's AWS calls carry its ID.
pub struct LiveFactory(pub LiveConfig);

impl EvidenceFactory for LiveFactory {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
        let evidence = LiveEvidence::new(self.0.clone(), investigation_id)
            .context("cannot build the live evidence source from the [aws] table")?;
        Ok(Arc::new(evidence))
    }
}

/// Returns the evidence factory of `[evidence] source`.
pub fn evidence_factory(config: &Config) -> anyhow::Result<Arc<dyn EvidenceFactory>> {
    match &config.evidence.source {
        EvidenceSource::Demo => {
            let snapshot = demo::snapshot().context("cannot build the demonstration incident")?;
            Ok(Arc::new(SharedEvidence(Arc::new(snapshot))))
        }
        EvidenceSource::Snapshot(folder) => {
            let snapshot = Snapshot::open(folder)
                .with_context(|| format!("evidence.source: cannot open snapshot {}", folder.display()))?;
            Ok(Arc::new(SharedEvidence(Arc::new(snapshot))))
        }
        EvidenceSource::Live => Ok(Arc::new(LiveFactory(config.aws.clone()))),
    }
}

/// Reads the secrets `mode` needs from the environment, naming any that is missing.
pub fn secrets_from_env(mode: SlackMode) -> anyhow::Result<SlackSecrets> {
    let read = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let bot_token = read("SLACK_BOT_TOKEN")
        .context("SLACK_BOT_TOKEN is not set: export the bot token (xoxb-…) from the app's OAuth & Permissions page")?;
    let secrets = SlackSecrets {
        bot_token,
        app_token: read("SLACK_APP_TOKEN"),
        signing_secret: read("SLACK_SIGNING_SECRET"),
    };
    match mode {
        SlackMode::Socket => anyhow::ensure!(
            secrets.app_token.is_some(),
            "SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…) with connections:write, or set slack.mode = \"http\""
        ),
        SlackMode::Http => anyhow::ensure!(
            secrets.signing_secret.is_some(),
            "SLACK_SIGNING_SECRET is not set: the HTTP Events API needs the signing secret from the app's Basic Information page"
        ),
    }
    Ok(secrets)
}

/// Builds the bot's parts from the configuration: the evidence source, the store, and the
/// remediators of the containment buttons.
pub async fn bot_parts(config: &Config) -> anyhow::Result<BotParts> {
    let store = Store::open(&config.store.database_url)
        .await
        .with_context(|| format!("store.database_url = {:?}: cannot open the store", display_url(&config.store.database_url)))?;
    Ok(BotParts {
        evidence: evidence_factory(config)?,
        dedupe: Arc::new(StoreDedupe::new(store.clone(), Platform::Slack)),
        store,
        remediators: Arc::new(LiveRemediators {
            aws: config.aws.clone(),
            contain: config.contain.clone(),
        }),
        retry: RetryPolicy::default(),
    })
}

/// An HTTP listener started in-process.
pub struct HttpServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The bot behind it.
    pub bot: Arc<SlackBot>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Stops accepting requests and waits for the server to stop.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.await.unwrap_or_else(|error| Err(std::io::Error::other(error)))
    }
}

/// Connects the bot and serves the HTTP Events API on `listener`. The server runs in a
/// spawned task until [`HttpServer::stop`].
pub async fn start_http(config: &Config, secrets: &SlackSecrets, parts: BotParts, listener: TcpListener) -> anyhow::Result<HttpServer> {
    let signing_secret = secrets
        .signing_secret
        .as_deref()
        .context("SLACK_SIGNING_SECRET is not set: the HTTP Events API needs it")?;
    crate::metrics::install();
    let bot = SlackBot::connect(config, secrets, parts).await?;
    let verifier = Verifier::new(SigningSecret::new(signing_secret));
    let mut router = slack::http::router(Arc::clone(&bot), verifier);
    if config.metrics.separate_listen(config.slack.listen()).is_none() {
        router = router.merge(crate::metrics::metrics_router());
    }
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(slack::http::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    info!(%addr, "HTTP Events API listening");
    Ok(HttpServer {
        addr,
        bot,
        shutdown: Some(shutdown),
        task,
    })
}

/// Runs `keycheck serve` until SIGINT or SIGTERM: the Slack bot when `SLACK_BOT_TOKEN`
/// is set, the Discord bot when `DISCORD_TOKEN` is set, or both.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let slack = std::env::var("SLACK_BOT_TOKEN").is_ok_and(|token| !token.trim().is_empty());
    let discord_secrets = crate::discord::server::secrets_from_env(config)?;
    anyhow::ensure!(
        slack || discord_secrets.is_some(),
        "neither SLACK_BOT_TOKEN nor DISCORD_TOKEN is set: export the bot token of the Slack app, of the Discord application, or both"
    );
    crate::metrics::install();
    let discord = match &discord_secrets {
        Some(secrets) => Some(crate::discord::server::start_from_config(config, secrets).await?),
        None => None,
    };
    let result = if slack { run_slack(config).await } else { run_health(config).await };
    if let Some(discord) = discord {
        discord.stop().await;
    }
    result
}

/// Serves `/healthz` on `slack.listen` until SIGINT or SIGTERM, for a process that runs
/// the Discord bot alone. It serves `/metrics` there too unless `metrics.listen` names
/// another address.
async fn run_health(config: &Config) -> anyhow::Result<ExitCode> {
    let listen = config.slack.listen();
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("slack.listen = {listen}: cannot bind; pick a free address and port"))?;
    let metrics_listener = crate::metrics::start_listener(config).await?;
    let router = match &metrics_listener {
        Some(_) => slack::http::health_router(),
        None => crate::metrics::router(),
    };
    let health = tokio::spawn(slack::http::serve(listener, router, std::future::pending()));
    info!(%listen, "HTTP listener for /healthz started without Slack, because SLACK_BOT_TOKEN is not set");
    shutdown_signal().await;
    info!("stopping");
    health.abort();
    drop(metrics_listener);
    Ok(ExitCode::SUCCESS)
}

/// Runs the Slack bot until SIGINT or SIGTERM.
async fn run_slack(config: &Config) -> anyhow::Result<ExitCode> {
    let secrets = secrets_from_env(config.slack.mode)?;
    let parts = bot_parts(config).await?;
    let listen = config.slack.listen();
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("slack.listen = {listen}: cannot bind; pick a free address and port"))?;
    crate::metrics::install();
    let metrics_listener = crate::metrics::start_listener(config).await?;

    match config.slack.mode {
        SlackMode::Http => {
            let server = start_http(config, &secrets, parts, listener).await?;
            shutdown_signal().await;
            info!("stopping");
            server.stop().await.context("the HTTP listener failed")?;
        }
        SlackMode::Socket => {
            let bot = SlackBot::connect(config, &secrets, parts).await?;
            let (health_router, routes) = match &metrics_listener {
                Some(_) => (slack::http::health_router(), "/healthz"),
                None => (crate::metrics::router(), "/healthz and /metrics"),
            };
            let health = tokio::spawn(slack::http::serve(listener, health_router, std::future::pending()));
            info!(%listen, routes, "HTTP listener started; connecting to Slack in Socket Mode");
            let app_token = secrets.app_token.as_deref().expect("checked by secrets_from_env");
            let socket = slack::socket::start(bot, app_token).await?;
            shutdown_signal().await;
            info!("stopping");
            socket.stop().await;
            health.abort();
        }
    }
    drop(metrics_listener);
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
