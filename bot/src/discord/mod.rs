//! The Discord bot: `/keycheck` application commands and alerts in watched channels, each
//! turned into an investigation whose steps are posted in one thread, and containment
//! buttons under the verdict.
//!
//! Interactions arrive over the gateway (`gateway`) or the HTTP interactions endpoint
//! (`http`, behind the Ed25519 check of `signature`), and messages only over the gateway.
//! Both hand them to [`DiscordBot`], which responds to Discord within its 3 seconds and
//! does the work in a spawned task. The modules split the work by concern:
//!
//! - `command` defines and parses `/keycheck`, `access` declares who may run it, and
//!   `interaction` handles the command.
//! - `message` reads alert messages, and `alert` investigates them.
//! - `thread` posts an investigation.
//! - `actions` offers the containment buttons and handles their clicks.
//! - `view`, `action_view` and `embeds` render messages within Discord's limits.
//! - `api` calls the REST API through serenity, and `server` starts the transports.
//!
//! Deduplication (`crate::dedupe`) and containment (`crate::containment`) are shared with
//! the Slack adapter.

pub mod access;
pub mod action_view;
pub mod actions;
pub mod alert;
pub mod api;
pub mod command;
pub mod embeds;
pub mod gateway;
pub mod http;
pub mod interaction;
pub mod message;
pub mod server;
pub mod signature;
pub mod thread;
pub mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use keycheck_core::approval::{Actor, Platform};
use keycheck_core::geo::Geo;
use keycheck_core::playbook::PlaybookConfig;
use keycheck_core::render::Renderer;
use keycheck_core::store::Store;
use serde_json::Value;
use serenity::http::Http;
use serenity::model::application::Interaction;
use serenity::model::channel::Message;
use serenity::model::id::{ApplicationId, GuildId};
use tracing::{error, info};

use self::access::AccessPolicy;
use self::api::{ApiError, Call, DiscordApi, snowflake};
use self::view::NoticeView;
use crate::config::{Config, DiscordSettings, EvidenceSource};
use crate::containment::{Containment, RemediatorFactory};
use crate::dedupe::Dedupe;
use crate::serve::EvidenceFactory;
use crate::user_error::{UserError, internal_error};

/// How long a delivered interaction or message is remembered, so that a second delivery of
/// it (another replica's gateway connection, a replayed request) is recognised.
pub const EVENT_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// The ephemeral flag of an interaction response, which makes it visible only to the user
/// who acted.
pub const EPHEMERAL: u64 = 1 << 6;

/// The secrets of the Discord application, read from the environment by `serve`.
#[derive(Clone)]
pub struct DiscordSecrets {
    /// The bot token (`DISCORD_TOKEN`).
    pub token: String,
    /// The application's public key, 64 hex digits (`DISCORD_PUBLIC_KEY`), for the HTTP
    /// interactions endpoint.
    pub public_key: Option<String>,
}

impl std::fmt::Debug for DiscordSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscordSecrets(…)")
    }
}

/// The bot's user and application, read from `GET /users/@me` and
/// `GET /oauth2/applications/@me`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The bot user's ID, the author of its channel messages.
    pub user_id: u64,
    /// The application's ID, which its interaction responses carry as `application_id`
    /// and `webhook_id`.
    pub application_id: u64,
    /// The bot user's name.
    pub name: String,
}

/// The components of the bot besides the configuration.
pub struct DiscordParts {
    /// The evidence source of every investigation and post-deactivation check.
    pub evidence: Arc<dyn EvidenceFactory>,
    /// The deduplication state.
    pub dedupe: Arc<dyn Dedupe>,
    /// The store of pending containment actions and the audit log.
    pub store: Store,
    /// The AWS clients that plan and run containment actions.
    pub remediators: Arc<dyn RemediatorFactory>,
}

/// Everything that stops a command or a click, each handled in one place:
/// [`DiscordBot::reject`] before the response is deferred, [`DiscordBot::report`] after.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// Something the user can fix, such as a malformed key ID. Its text is shown to that
    /// user alone, word for word.
    #[error("{0}")]
    User(#[from] UserError),
    /// A check of `/keycheck` rejected the user. The text gives the reason and where to
    /// run the command instead.
    #[error("{reason}")]
    Rejected { check: &'static str, reason: String },
    /// A Discord call failed. The user sees only `internal error (ref …)`, and the log
    /// gets the route and, when Discord sent one, its error code.
    #[error(transparent)]
    Discord(#[from] ApiError),
    /// Any other failure inside keycheck. The user sees only `internal error (ref …)`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl DiscordError {
    /// Returns the notice shown to the user: a user error's text as it is, a rejection
    /// with its channel mentions, and for anything else `internal error (ref …)`, after
    /// logging the error's chain with `context`.
    fn notice(self, context: &str) -> NoticeView {
        match self {
            DiscordError::User(error) => NoticeView::plain(&error.0),
            DiscordError::Rejected { reason, .. } => NoticeView::markdown(reason),
            DiscordError::Discord(error) => NoticeView::plain(&internal_error(&error.into(), context)),
            DiscordError::Internal(error) => NoticeView::plain(&internal_error(&error, context)),
        }
    }
}

/// The running bot: configuration, REST client and shared state.
pub struct DiscordBot {
    settings: DiscordSettings,
    api: DiscordApi,
    identity: Identity,
    renderer: Renderer,
    geo: Arc<Geo>,
    playbook: PlaybookConfig,
    default_window: Duration,
    access: AccessPolicy,
    /// The containment buttons, or `None` when `[discord.approvals]` names no approver.
    containment: Option<Arc<Containment>>,
    parts: DiscordParts,
    started: AtomicUsize,
    running: AtomicUsize,
}

impl DiscordBot {
    /// Builds the bot: learns who it is, and registers `/keycheck` in the configured
    /// guilds, or globally when none is configured.
    pub async fn connect(config: &Config, http: Arc<Http>, parts: DiscordParts) -> anyhow::Result<Arc<DiscordBot>> {
        let api = DiscordApi::new(Arc::clone(&http));
        let identity = identify(&api).await?;
        http.set_application_id(ApplicationId::new(identity.application_id));
        info!(user_id = identity.user_id, application_id = identity.application_id, name = %identity.name, "connected to Discord");
        register_commands(&api, &identity, &config.discord.guilds).await;

        let renderer = Renderer::with_overrides(config.templates.as_deref())?;
        let geo = Arc::new(Geo::open(&config.geo).context("cannot open the geolocation databases")?);
        let containment = containment(config, &parts, &identity)?;
        Ok(Arc::new(DiscordBot {
            settings: config.discord.clone(),
            api,
            identity,
            renderer,
            geo,
            playbook: crate::chat::playbook_config(&config.playbook)?,
            default_window: config.playbook.window(),
            access: AccessPolicy::new(&config.discord),
            containment,
            parts,
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }))
    }

    /// Returns the REST client.
    pub fn api(&self) -> &DiscordApi {
        &self.api
    }

    /// Returns who the bot is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Returns how many investigations started since the bot started.
    pub fn investigations_started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Returns how many investigations are running now.
    pub fn investigations_running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Handles an interaction from either transport. It responds to Discord before it
    /// returns, within milliseconds, and runs the work in a spawned task. The HTTP
    /// endpoint responds to a ping itself, because only that transport sends one.
    pub async fn handle_interaction(self: &Arc<Self>, interaction: Interaction) {
        match interaction {
            Interaction::Command(command) => interaction::handle_command(self, command).await,
            Interaction::Component(component) => actions::handle_component(self, component).await,
            other => tracing::debug!(kind = ?other.kind(), "ignored an interaction keycheck does not offer"),
        }
    }

    /// Handles a message from the gateway in a spawned task.
    pub fn handle_message(self: &Arc<Self>, message: Message) {
        let bot = Arc::clone(self);
        tokio::spawn(async move { alert::handle(bot, message).await });
    }

    /// Returns the deduplication scope of a guild, so that one key has one thread however
    /// many channels of the guild ask.
    fn scope(guild_id: u64) -> String {
        guild_id.to_string()
    }

    /// Renders a notice. A render failure is logged, and the user gets a plain
    /// `internal error (ref …)` instead.
    fn notice(&self, notice: NoticeView) -> Value {
        match embeds::render(&self.renderer, "notice", &notice) {
            Ok(message) => message,
            Err(error) => embeds::plain(&internal_error(&error, "cannot render a notice")),
        }
    }

    /// Responds to an interaction that has no response yet with `notice`, visible only to
    /// the user.
    async fn respond_ephemeral(&self, interaction_id: u64, token: &str, notice: NoticeView) {
        let mut data = self.notice(notice);
        data["flags"] = Value::from(EPHEMERAL);
        let body = serde_json::json!({"type": 4, "data": data});
        let call = Call::InteractionCallback {
            interaction_id: interaction_id.into(),
            token,
        };
        if let Err(error) = self.api.call(call, Some(body)).await {
            error!(interaction_id, error = %error, "cannot respond to an interaction");
        }
    }

    /// Shows why a command or click was rejected to its user alone, as the response to an
    /// interaction that has no response yet.
    async fn reject(&self, interaction_id: u64, token: &str, error: DiscordError) {
        let notice = error.notice("an interaction failed");
        self.respond_ephemeral(interaction_id, token, notice).await;
    }

    /// Reports an error after the response was deferred, by editing the deferred response.
    async fn report(&self, token: &str, error: DiscordError, context: &str) {
        self.edit_original(token, error.notice(context)).await;
    }

    /// Replaces the deferred response of an interaction with `notice`.
    async fn edit_original(&self, token: &str, notice: NoticeView) {
        let call = Call::EditOriginal {
            application_id: self.identity.application_id.into(),
            token,
        };
        if let Err(error) = self.api.call(call, Some(self.notice(notice))).await {
            error!(error = %error, "cannot edit the interaction's response");
        }
    }
}

/// Reads the bot user and the application.
async fn identify(api: &DiscordApi) -> anyhow::Result<Identity> {
    let user = api
        .call(Call::CurrentUser, None)
        .await
        .context("cannot authenticate with Discord: check DISCORD_TOKEN, the token of the application's bot")?;
    let application = api
        .call(Call::CurrentApplication, None)
        .await
        .context("cannot read the Discord application of DISCORD_TOKEN")?;
    Ok(Identity {
        user_id: snowflake(&user, "id").context("GET /users/@me returned no user ID")?,
        application_id: snowflake(&application, "id").context("GET /oauth2/applications/@me returned no application ID")?,
        name: user.get("username").and_then(Value::as_str).unwrap_or("keycheck").to_string(),
    })
}

/// Registers `/keycheck` in each of `guilds`, or globally when the list is empty. A
/// failure is logged and the bot goes on, because a command registered earlier still
/// works.
async fn register_commands(api: &DiscordApi, identity: &Identity, guilds: &[String]) {
    let application_id = ApplicationId::new(identity.application_id);
    let definitions = command::definitions();
    if guilds.is_empty() {
        match api.call(Call::RegisterGlobalCommands { application_id }, Some(definitions)).await {
            Ok(_) => info!("registered /keycheck globally"),
            Err(error) => error!(error = %error, "cannot register /keycheck globally: check that the application has the applications.commands scope"),
        }
        return;
    }
    for guild in guilds {
        let Ok(guild_id) = guild.parse::<u64>() else { continue };
        let call = Call::RegisterGuildCommands {
            application_id,
            guild_id: GuildId::new(guild_id),
        };
        match api.call(call, Some(definitions.clone())).await {
            Ok(_) => info!(guild_id, "registered /keycheck in the guild"),
            Err(error) => error!(guild_id, error = %error, "cannot register /keycheck in the guild: invite the application to it with the applications.commands scope"),
        }
    }
}

/// Builds the containment service of `[discord.approvals]`, or returns `None` when it
/// names no approver or the bot runs on the demonstration incident, which is in no AWS
/// account.
fn containment(config: &Config, parts: &DiscordParts, identity: &Identity) -> anyhow::Result<Option<Arc<Containment>>> {
    let approvals = &config.discord.approvals;
    if !approvals.enabled() {
        info!("Discord containment buttons off: discord.approvals names no approver");
        return Ok(None);
    }
    if config.evidence.source == EvidenceSource::Demo {
        info!("Discord containment buttons off: the demonstration incident is in no AWS account");
        return Ok(None);
    }
    let bot = Actor {
        platform: Platform::Discord,
        user_id: identity.user_id.to_string(),
        display_name: identity.name.clone(),
    };
    let containment = Containment::new(
        parts.store.clone(),
        approvals.policy(),
        Arc::clone(&parts.remediators),
        Arc::clone(&parts.evidence),
        config.contain.post_check_delay().context("invalid contain.post_check_delay")?,
        bot,
    );
    info!(two_person_rule = approvals.two_person_rule, expiry = %approvals.expiry, "Discord containment buttons on");
    Ok(Some(Arc::new(containment)))
}
