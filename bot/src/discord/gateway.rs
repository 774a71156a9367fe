//! The gateway: serenity's client opens a WebSocket to Discord and its event handler hands
//! interactions and messages to the bot.
//!
//! The gateway needs no public URL. It is the only way messages arrive, so it runs in
//! `http` mode too when channels are watched. Reading the content of others' messages
//! needs the Message Content privileged intent. The bot requests it, with Guild Messages,
//! only when `watched_channels` is not empty, so an application without it still serves
//! `/keycheck`.

use std::sync::{Arc, OnceLock};

use serenity::all::{ClientBuilder, Context, EventHandler, GatewayIntents, Interaction, Message, Ready};
use serenity::gateway::ShardManager;
use serenity::http::{Http, RatelimitInfo};
use tokio::task::JoinHandle;
use tracing::{error, info};

use super::{DiscordBot, DiscordParts, api};
use crate::config::Config;

/// A running gateway connection.
pub struct Gateway {
    /// The bot its events go to.
    pub bot: Arc<DiscordBot>,
    shard_manager: Arc<ShardManager>,
    task: JoinHandle<()>,
}

impl Gateway {
    /// Closes the connection and waits for the client to stop.
    pub async fn stop(self) {
        self.shard_manager.shutdown_all().await;
        let _ = self.task.await;
    }
}

/// Returns the intents to ask for: none for interactions alone, Guild Messages and
/// Message Content to read alerts in watched channels.
pub fn intents(config: &Config) -> GatewayIntents {
    if config.discord.watched_channels.is_empty() {
        GatewayIntents::empty()
    } else {
        GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT
    }
}

/// Builds the bot on `http`, connects to the gateway and returns the running connection.
/// Events are handled until [`Gateway::stop`].
pub async fn start(config: &Config, http: Http, parts: DiscordParts) -> anyhow::Result<Gateway> {
    let slot = Arc::new(OnceLock::new());
    let handler = Handler { bot: Arc::clone(&slot) };
    let intents = intents(config);
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .map_err(|error| anyhow::anyhow!("cannot build the Discord gateway client: {error}"))?;

    let bot = DiscordBot::connect(config, Arc::clone(&client.http), parts).await?;
    let _ = slot.set(Arc::clone(&bot));
    let shard_manager = Arc::clone(&client.shard_manager);
    let task = tokio::spawn(async move {
        if let Err(error) = client.start().await {
            error!(error = %error, "the Discord gateway connection stopped: when channels are watched, check that the Message Content intent is enabled on the application's Bot page");
        }
    });
    info!(intents = ?intents, "connecting to the Discord gateway");
    Ok(Gateway { bot, shard_manager, task })
}

/// Hands gateway events to the bot once it is built.
struct Handler {
    bot: Arc<OnceLock<Arc<DiscordBot>>>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _context: Context, ready: Ready) {
        info!(user_id = ready.user.id.get(), guilds = ready.guilds.len(), "connected to the Discord gateway");
    }

    async fn interaction_create(&self, _context: Context, interaction: Interaction) {
        if let Some(bot) = self.bot.get() {
            bot.handle_interaction(interaction).await;
        }
    }

    async fn message(&self, _context: Context, message: Message) {
        if let Some(bot) = self.bot.get() {
            bot.handle_message(message);
        }
    }

    async fn ratelimit(&self, data: RatelimitInfo) {
        api::log_rate_limit(&data);
    }
}
