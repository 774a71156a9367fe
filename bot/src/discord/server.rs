//! Starting the Discord bot for `keycheck serve`: its secrets from the environment, its
//! parts, serenity's REST client, and the transports of `[discord] mode`.
//!
//! In `gateway` mode the gateway carries interactions and messages. In `http` mode the
//! interactions endpoint carries interactions, and the gateway runs beside it only when
//! channels are watched, because messages arrive nowhere else.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use keycheck_core::approval::Platform;
use keycheck_core::store::{Store, display_url};
use serenity::http::{Http, HttpBuilder};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

use super::gateway::{self, Gateway};
use super::signature::{PublicKey, Verifier};
use super::{DiscordBot, DiscordParts, DiscordSecrets, api};
use crate::config::{Config, DiscordMode};
use crate::containment::LiveRemediators;
use crate::dedupe::StoreDedupe;

/// Reads the Discord secrets from the environment: `None` when `DISCORD_TOKEN` is unset,
/// so the Discord bot stays off, and an error naming the variable when `http` mode lacks
/// `DISCORD_PUBLIC_KEY`.
pub fn secrets_from_env(config: &Config) -> anyhow::Result<Option<DiscordSecrets>> {
    secrets_from(config, |name| std::env::var(name).ok())
}

/// Reads the Discord secrets through `read`, which returns an environment variable's
/// value. An empty value counts as unset.
fn secrets_from(config: &Config, read: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<DiscordSecrets>> {
    let read = |name: &str| read(name).filter(|value| !value.trim().is_empty());
    let Some(token) = read("DISCORD_TOKEN") else {
        return Ok(None);
    };
    let secrets = DiscordSecrets {
        token,
        public_key: read("DISCORD_PUBLIC_KEY"),
    };
    if config.discord.mode == DiscordMode::Http {
        anyhow::ensure!(
            secrets.public_key.is_some(),
            "DISCORD_PUBLIC_KEY is not set: the interactions endpoint (discord.mode = \"http\") needs the Public Key from the application's General Information page"
        );
    }
    Ok(Some(secrets))
}

/// Builds serenity's REST client for the bot token, with its rate limiter, which waits
/// out every 429 and retries. Rate limit waits are logged with the route.
pub fn http_client(token: &str) -> Http {
    let mut http = HttpBuilder::new(token).build();
    if let Some(ratelimiter) = &mut http.ratelimiter {
        ratelimiter.set_ratelimit_callback(Box::new(|info| api::log_rate_limit(&info)));
    }
    http
}

/// Builds the bot's parts from the configuration: the evidence source, the store, and the
/// remediators of the containment buttons.
pub async fn parts(config: &Config) -> anyhow::Result<DiscordParts> {
    let store = Store::open(&config.store.database_url)
        .await
        .with_context(|| format!("store.database_url = {:?}: cannot open the store", display_url(&config.store.database_url)))?;
    Ok(DiscordParts {
        evidence: crate::serve::evidence_factory(config)?,
        dedupe: Arc::new(StoreDedupe::new(store.clone(), Platform::Discord)),
        store,
        remediators: Arc::new(LiveRemediators {
            aws: config.aws.clone(),
            contain: config.contain.clone(),
        }),
    })
}

/// The running Discord bot with its transports.
pub struct DiscordServer {
    /// The bot.
    pub bot: Arc<DiscordBot>,
    /// The address of the interactions endpoint, in `http` mode.
    pub addr: Option<SocketAddr>,
    endpoint: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    gateway: Option<Gateway>,
}

impl DiscordServer {
    /// Stops the transports and waits for them.
    pub async fn stop(self) {
        if let Some((shutdown, task)) = self.endpoint {
            let _ = shutdown.send(());
            let _ = task.await;
        }
        if let Some(gateway) = self.gateway {
            gateway.stop().await;
        }
    }
}

/// Starts the Discord bot on `http`, serenity's client for the bot token. In `http` mode
/// the interactions endpoint serves on `listener`, or on a new listener bound to
/// `discord.listen` when it is `None`.
pub async fn start(
    config: &Config,
    secrets: &DiscordSecrets,
    http: Http,
    parts: DiscordParts,
    listener: Option<TcpListener>,
) -> anyhow::Result<DiscordServer> {
    let watching = !config.discord.watched_channels.is_empty();
    match config.discord.mode {
        DiscordMode::Gateway => {
            let gateway = gateway::start(config, http, parts).await?;
            Ok(DiscordServer {
                bot: Arc::clone(&gateway.bot),
                addr: None,
                endpoint: None,
                gateway: Some(gateway),
            })
        }
        DiscordMode::Http => {
            let public_key = secrets
                .public_key
                .as_deref()
                .context("DISCORD_PUBLIC_KEY is not set: the interactions endpoint needs it")?;
            let verifier = Verifier::new(PublicKey::from_hex(public_key)?);
            let (bot, gateway) = if watching {
                let gateway = gateway::start(config, http, parts).await?;
                (Arc::clone(&gateway.bot), Some(gateway))
            } else {
                (DiscordBot::connect(config, Arc::new(http), parts).await?, None)
            };
            let listener = match listener {
                Some(listener) => listener,
                None => {
                    let listen = config.discord.listen();
                    TcpListener::bind(listen)
                        .await
                        .with_context(|| format!("discord.listen = {listen}: cannot bind; pick a free address and port"))?
                }
            };
            let addr = listener.local_addr()?;
            let router = super::http::router(Arc::clone(&bot), verifier);
            let (shutdown, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(crate::slack::http::serve(listener, router, async move {
                let _ = stopped.await;
            }));
            info!(%addr, path = super::http::INTERACTIONS_PATH, "Discord interactions endpoint listening");
            Ok(DiscordServer {
                bot,
                addr: Some(addr),
                endpoint: Some((shutdown, task)),
                gateway,
            })
        }
    }
}

/// Starts the Discord bot of `keycheck serve` from the configuration and `secrets`.
pub async fn start_from_config(config: &Config, secrets: &DiscordSecrets) -> anyhow::Result<DiscordServer> {
    let parts = parts(config).await?;
    start(config, secrets, http_client(&secrets.token), parts, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    }

    #[test]
    fn discord_off_without_token() {
        let config: Config = "".parse().unwrap();
        assert!(secrets_from(&config, read(&[])).unwrap().is_none());
        assert!(secrets_from(&config, read(&[("DISCORD_TOKEN", "  ")])).unwrap().is_none());
    }

    #[test]
    fn gateway_mode_needs_token_only() {
        let config: Config = "".parse().unwrap();
        let secrets = secrets_from(&config, read(&[("DISCORD_TOKEN", "t")])).unwrap().expect("a token turns Discord on");
        assert_eq!(secrets.token, "t");
        assert!(secrets.public_key.is_none());
    }

    #[test]
    fn http_mode_names_missing_public_key() {
        let config: Config = "[discord]\nmode = \"http\"\n".parse().unwrap();
        let error = secrets_from(&config, read(&[("DISCORD_TOKEN", "t")])).unwrap_err().to_string();
        assert!(error.contains("DISCORD_PUBLIC_KEY"), "{error}");
        const BOTH: [(&str, &str); 2] = [("DISCORD_TOKEN", "t"), ("DISCORD_PUBLIC_KEY", "ab")];
        let secrets = secrets_from(&config, read(&BOTH)).unwrap().expect("a token turns Discord on");
        assert_eq!(secrets.public_key.as_deref(), Some("ab"));
    }
}
