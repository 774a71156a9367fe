//! keycheck's configuration: one TOML file, plus environment variables for secrets.
//!
//! Every field is documented here; the configuration reference is generated from these
//! comments. Unknown fields are rejected so that a typo does not silently keep a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use keycheck_core::geo::GeoConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// AWS access for live investigation and containment: region, profile, the role to
    /// assume in each account, CloudTrail log groups.
    #[serde(default)]
    pub aws: keycheck_core::evidence::live::LiveConfig,
    /// Containment: the secret name of a rotated key, the quarantine policy, the name of
    /// the policy that revokes sessions, the delay of the post-deactivation check.
    #[serde(default)]
    pub contain: keycheck_core::remediation::ContainConfig,
    /// Offline geolocation of source IP addresses.
    #[serde(default)]
    pub geo: GeoConfig,
    /// Settings of investigations.
    #[serde(default)]
    pub playbook: PlaybookSettings,
    /// Folder of handlebars templates that replace the built-in ones, with the same
    /// relative names (`terminal/step.hbs`, `slack/step.hbs`, …).
    pub templates: Option<PathBuf>,
    /// The Slack bot run by `keycheck serve`.
    #[serde(default)]
    pub slack: SlackSettings,
    /// The Discord bot run by `keycheck serve` when `DISCORD_TOKEN` is set.
    #[serde(default)]
    pub discord: DiscordSettings,
    /// The evidence source of the bot.
    #[serde(default)]
    pub evidence: EvidenceSettings,
    /// The state store of the bot: claimed events, running investigations, pending actions.
    #[serde(default)]
    pub store: StoreSettings,
    /// The listener of the Prometheus metrics of `keycheck serve`.
    #[serde(default)]
    pub metrics: MetricsSettings,
}

/// Settings of investigations.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookSettings {
    /// Length of the investigated window, such as `24h` or `7d`.
    pub window: String,
    /// How long one step may take before it is reported as timed out, such as `120s`.
    pub step_timeout: String,
    /// How far before the window the key's history is read, which "new" calls and
    /// addresses are measured against, such as `14d`.
    pub history: String,
    /// The window to widen to when nothing correlates in the requested one, such as `7d`,
    /// or `never`. Widening reuses the history already fetched, so it must not exceed
    /// `window` plus `history`.
    pub widen_to: String,
}

impl Default for PlaybookSettings {
    fn default() -> Self {
        PlaybookSettings {
            window: "24h".to_string(),
            step_timeout: "120s".to_string(),
            history: "14d".to_string(),
            widen_to: "7d".to_string(),
        }
    }
}

impl PlaybookSettings {
    /// Returns the window length.
    pub fn window(&self) -> Duration {
        parse_duration_field("playbook.window", &self.window).expect("validated on load")
    }

    /// Returns the step timeout.
    pub fn step_timeout(&self) -> Duration {
        parse_duration_field("playbook.step_timeout", &self.step_timeout).expect("validated on load")
    }

    /// Returns the history length.
    pub fn history(&self) -> Duration {
        parse_duration_field("playbook.history", &self.history).expect("validated on load")
    }

    /// Returns the window to widen to, or `None` when widening is off.
    pub fn widen_to(&self) -> Option<Duration> {
        if self.widen_to.as_str() == "never" {
            return None;
        }
        Some(parse_duration_field("playbook.widen_to", &self.widen_to).expect("validated on load"))
    }
}

/// The transport that brings events from Slack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlackMode {
    /// Socket Mode: the bot opens a WebSocket to Slack, so it needs no public URL. Needs
    /// `SLACK_BOT_TOKEN` and `SLACK_APP_TOKEN`.
    #[default]
    Socket,
    /// The HTTP Events API: Slack sends signed requests to `listen`. Needs
    /// `SLACK_BOT_TOKEN` and `SLACK_SIGNING_SECRET`.
    Http,
}

/// The `[slack]` table. Tokens and the signing secret come from environment variables
/// (`SLACK_BOT_TOKEN`, `SLACK_APP_TOKEN`, `SLACK_SIGNING_SECRET`), never from this file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// `socket` (default, no public URL needed) or `http` (the HTTP Events API).
    pub mode: SlackMode,
    /// Address the HTTP listener binds, such as `127.0.0.1:3000` or `0.0.0.0:3000`. In
    /// `http` mode it serves `/slack/commands`, `/slack/events`, `/slack/interactions` and
    /// `/healthz`, and in `socket` mode only `/healthz`. In both it also serves `/metrics`
    /// unless `metrics.listen` names another address.
    pub listen: String,
    /// Base URL of the Slack Web API, without a trailing slash.
    pub api_url: String,
    /// Channel IDs (such as `C0123456789`) where `/keycheck` may run. Empty: every channel.
    pub allowed_channels: Vec<String>,
    /// User IDs (such as `U0123456789`) who may run `/keycheck`. When this and
    /// `allowed_user_groups` are both empty, everyone may.
    pub allowed_users: Vec<String>,
    /// User group IDs (such as `S0123456789`) whose members may run `/keycheck`.
    pub allowed_user_groups: Vec<String>,
    /// Channel IDs whose messages are read for alerts that name an access key.
    pub watched_channels: Vec<String>,
    /// How long after an investigation of a key starts a second alert or command for the
    /// same key links to its thread instead of starting another run, such as `30m`.
    pub duplicate_window: String,
    /// The users and user groups that may request and approve the containment actions
    /// offered under a diagnosis (`[slack.approvals]`), by Slack user ID (`U…`) and user
    /// group ID (`S…`).
    pub approvals: ApprovalSettings,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            mode: SlackMode::Socket,
            listen: "127.0.0.1:3000".to_string(),
            api_url: "https://slack.com/api".to_string(),
            allowed_channels: Vec::new(),
            allowed_users: Vec::new(),
            allowed_user_groups: Vec::new(),
            watched_channels: Vec::new(),
            duplicate_window: "30m".to_string(),
            approvals: ApprovalSettings::default(),
        }
    }
}

impl SlackSettings {
    /// Returns the duplicate window.
    pub fn duplicate_window(&self) -> Duration {
        parse_duration_field("slack.duplicate_window", &self.duplicate_window).expect("validated on load")
    }

    /// Returns the listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen.parse().expect("validated on load")
    }

    fn validate(&self) -> anyhow::Result<()> {
        parse_duration_field("slack.duplicate_window", &self.duplicate_window)?;
        self.listen.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "slack.listen = {:?} is not a socket address: write an IP address and a port, such as 127.0.0.1:3000",
                self.listen
            )
        })?;
        let api_url = self.api_url.trim_end_matches('/');
        anyhow::ensure!(
            api_url.starts_with("https://") || api_url.starts_with("http://"),
            "slack.api_url = {:?} is not an http or https URL: write one such as https://slack.com/api",
            self.api_url
        );
        check_ids("slack.allowed_channels", &self.allowed_channels, &['C', 'G'], "channel", "C0123456789")?;
        check_ids("slack.watched_channels", &self.watched_channels, &['C', 'G'], "channel", "C0123456789")?;
        check_ids("slack.allowed_users", &self.allowed_users, &['U', 'W'], "user", "U0123456789")?;
        check_ids("slack.allowed_user_groups", &self.allowed_user_groups, &['S'], "user group", "S0123456789")?;
        let (approvals, example) = ("user or user group", "U0123456789 or S0123456789");
        check_ids("slack.approvals.requesters", &self.approvals.requesters, &['U', 'W', 'S'], approvals, example)?;
        check_ids("slack.approvals.approvers", &self.approvals.approvers, &['U', 'W', 'S'], approvals, example)?;
        self.approvals.validate("slack.approvals")?;
        Ok(())
    }
}

/// The requesters and approvers of containment actions, and how long a request waits.
/// Each chat table contains one with that platform's IDs, such as `[slack.approvals]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSettings {
    /// User IDs and group IDs whose members may click an action button (Deactivate,
    /// Rotate, Revoke sessions, Quarantine, Dismiss) to request approval.
    pub requesters: Vec<String>,
    /// User IDs and group IDs whose members may approve or reject a requested action.
    /// Empty (the default): keycheck offers no containment buttons.
    pub approvers: Vec<String>,
    /// Whether the approver must be someone other than the requester (default `true`).
    /// With `false`, an approver's click on an action button runs it at once.
    pub two_person_rule: bool,
    /// How long a requested action waits for an approver before it expires, such as `30m`.
    pub expiry: String,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            requesters: Vec::new(),
            approvers: Vec::new(),
            two_person_rule: true,
            expiry: "30m".to_string(),
        }
    }
}

impl ApprovalSettings {
    /// Returns whether containment buttons are offered, which needs at least one approver.
    pub fn enabled(&self) -> bool {
        !self.approvers.is_empty()
    }

    /// Returns the approval policy of these settings.
    pub fn policy(&self) -> keycheck_core::approval::ApprovalPolicy {
        keycheck_core::approval::ApprovalPolicy {
            requesters: self.requesters.clone(),
            approvers: self.approvers.clone(),
            two_person_rule: self.two_person_rule,
            expiry: humantime::parse_duration(&self.expiry).expect("validated on load"),
        }
    }

    /// Checks the expiry, and that someone can request an action when approvers are set.
    /// `table` names the table in errors, such as `slack.approvals`.
    fn validate(&self, table: &str) -> anyhow::Result<()> {
        parse_duration_field(&format!("{table}.expiry"), &self.expiry)?;
        anyhow::ensure!(
            !(self.enabled() && self.two_person_rule && self.requesters.is_empty()),
            "{table}.requesters is empty while {table}.two_person_rule is on, so nobody can request the actions the approvers would approve: list the responders' user or group IDs, or set two_person_rule = false for one-click approval"
        );
        Ok(())
    }
}

/// Checks that every entry of a list is a Slack ID with one of `prefixes`, because
/// Slack events carry IDs, and a name such as `#security` would never match.
fn check_ids(field: &str, ids: &[String], prefixes: &[char], what: &str, example: &str) -> anyhow::Result<()> {
    for (index, id) in ids.iter().enumerate() {
        let well_formed = id.len() >= 3
            && id.starts_with(prefixes)
            && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        anyhow::ensure!(
            well_formed,
            "{field}[{index}] = {id:?} is not a Slack {what} ID: write the ID, such as {example}, which Slack shows in the {what}'s details"
        );
    }
    Ok(())
}

/// The transport over which the Discord bot receives interactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscordMode {
    /// The gateway: the bot opens a WebSocket to Discord, so it needs no public URL.
    /// Needs `DISCORD_TOKEN`.
    #[default]
    Gateway,
    /// The interactions endpoint: Discord sends signed interactions to `listen`, which
    /// must be the application's Interactions Endpoint URL. Needs `DISCORD_TOKEN` and
    /// `DISCORD_PUBLIC_KEY`. Messages only arrive over the gateway, so the bot still
    /// opens it when `watched_channels` is not empty.
    Http,
}

/// The `[discord]` table. The bot token and the application's public key come from
/// environment variables (`DISCORD_TOKEN`, `DISCORD_PUBLIC_KEY`), never from this file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    /// `gateway` (default, no public URL needed) or `http` (the interactions endpoint).
    pub mode: DiscordMode,
    /// Address the interactions endpoint binds in `http` mode, such as `0.0.0.0:3001`. It
    /// serves `POST /discord/interactions` and `GET /healthz`.
    pub listen: String,
    /// Guild IDs (snowflakes such as `123456789012345678`) to register `/keycheck` in,
    /// where it is available at once. Empty: `/keycheck` is registered globally, in every
    /// guild the application is installed in.
    pub guilds: Vec<String>,
    /// Channel IDs whose messages are read for alerts that name an access key. Reading
    /// other users' messages needs the Message Content privileged intent, which must be
    /// turned on in the application's Bot page of the Discord Developer Portal.
    pub watched_channels: Vec<String>,
    /// Channel IDs where `/keycheck` may run. Empty: every channel.
    pub allowed_channels: Vec<String>,
    /// User IDs who may run `/keycheck`. When this and `allowed_roles` are both empty,
    /// everyone who can see the command may.
    pub allowed_users: Vec<String>,
    /// Role IDs whose members may run `/keycheck`.
    pub allowed_roles: Vec<String>,
    /// How long after an investigation of a key starts a second alert or command for the
    /// same key links to its thread instead of starting another run, such as `30m`.
    pub duplicate_window: String,
    /// The users and roles that may request and approve the containment actions offered
    /// under a diagnosis (`[discord.approvals]`), by Discord user ID and role ID.
    pub approvals: ApprovalSettings,
}

impl Default for DiscordSettings {
    fn default() -> Self {
        DiscordSettings {
            mode: DiscordMode::Gateway,
            listen: "127.0.0.1:3001".to_string(),
            guilds: Vec::new(),
            watched_channels: Vec::new(),
            allowed_channels: Vec::new(),
            allowed_users: Vec::new(),
            allowed_roles: Vec::new(),
            duplicate_window: "30m".to_string(),
            approvals: ApprovalSettings::default(),
        }
    }
}

impl DiscordSettings {
    /// Returns the duplicate window.
    pub fn duplicate_window(&self) -> Duration {
        parse_duration_field("discord.duplicate_window", &self.duplicate_window).expect("validated on load")
    }

    /// Returns the listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen.parse().expect("validated on load")
    }

    fn validate(&self) -> anyhow::Result<()> {
        parse_duration_field("discord.duplicate_window", &self.duplicate_window)?;
        self.listen.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "discord.listen = {:?} is not a socket address: write an IP address and a port, such as 127.0.0.1:3001",
                self.listen
            )
        })?;
        check_snowflakes("discord.guilds", &self.guilds, "guild")?;
        check_snowflakes("discord.watched_channels", &self.watched_channels, "channel")?;
        check_snowflakes("discord.allowed_channels", &self.allowed_channels, "channel")?;
        check_snowflakes("discord.allowed_users", &self.allowed_users, "user")?;
        check_snowflakes("discord.allowed_roles", &self.allowed_roles, "role")?;
        check_snowflakes("discord.approvals.requesters", &self.approvals.requesters, "user or role")?;
        check_snowflakes("discord.approvals.approvers", &self.approvals.approvers, "user or role")?;
        self.approvals.validate("discord.approvals")?;
        Ok(())
    }
}

/// Checks that every entry of a list is a Discord ID: a snowflake of 17 to 20 digits,
/// because events carry IDs, and a name such as `#security` would never match.
fn check_snowflakes(field: &str, ids: &[String], what: &str) -> anyhow::Result<()> {
    for (index, id) in ids.iter().enumerate() {
        let well_formed =
            (17..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u64>().is_ok_and(|n| n > 0);
        anyhow::ensure!(
            well_formed,
            "{field}[{index}] = {id:?} is not a Discord {what} ID: write the ID, such as 123456789012345678, which Discord copies with Copy ID in developer mode"
        );
    }
    Ok(())
}

/// The evidence source of the bot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// AWS itself, through the credentials and roles of the `[aws]` table.
    #[default]
    Live,
    /// The built-in demonstration incident, to try the bot without AWS.
    Demo,
    /// A folder of exported evidence: `source = { snapshot = "/path/to/folder" }`.
    Snapshot(PathBuf),
}

/// The `[evidence]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceSettings {
    /// `"live"` (default), `"demo"`, or `{ snapshot = "DIR" }`.
    pub source: EvidenceSource,
}

/// The `[store]` table.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://PATH` (default `sqlite://keycheck.db`, a file beside the working
    /// directory) or `postgres://…` for several replicas sharing state.
    pub database_url: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            database_url: "sqlite://keycheck.db".to_string(),
        }
    }
}

impl StoreSettings {
    fn validate(&self) -> anyhow::Result<()> {
        let url = self.database_url.as_str();
        anyhow::ensure!(
            url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "store.database_url = {:?} is neither sqlite: nor postgres://: write one such as sqlite://keycheck.db",
            keycheck_core::store::display_url(url)
        );
        Ok(())
    }
}

/// The `[metrics]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Address of a separate listener for `/metrics` and `/healthz`, such as
    /// `0.0.0.0:9090`, so that the Slack endpoints and the metrics can be exposed
    /// differently. Unset: `/metrics` is served beside `/healthz` on `slack.listen`.
    pub listen: Option<String>,
}

impl MetricsSettings {
    /// Returns the address of the separate metrics listener, or `None` when `/metrics` is
    /// served on `slack_listen`.
    pub fn separate_listen(&self, slack_listen: SocketAddr) -> Option<SocketAddr> {
        let listen = self.listen.as_deref()?.parse().expect("validated on load");
        (listen != slack_listen).then_some(listen)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let Some(listen) = &self.listen else { return Ok(()) };
        listen.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "metrics.listen = {listen:?} is not a socket address: write an IP address and a port, such as 0.0.0.0:9090, or remove it to serve /metrics on slack.listen"
            )
        })?;
        Ok(())
    }
}

fn parse_duration_field(field: &str, value: &str) -> anyhow::Result<Duration> {
    let duration = humantime::parse_duration(value)
        .with_context(|| format!("{field} = {value:?} is not a duration: write one such as 24h, 7d or 90s"))?;
    anyhow::ensure!(!duration.is_zero(), "{field} must be longer than zero");
    Ok(duration)
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        text.parse()
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }

    /// Checks every value that serde cannot check, naming the field and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        parse_duration_field("playbook.window", &self.playbook.window)?;
        parse_duration_field("playbook.step_timeout", &self.playbook.step_timeout)?;
        parse_duration_field("playbook.history", &self.playbook.history)?;
        if self.playbook.widen_to.as_str() != "never" {
            let widen_to = parse_duration_field("playbook.widen_to", &self.playbook.widen_to)?;
            anyhow::ensure!(
                widen_to <= self.playbook.window() + self.playbook.history(),
                "playbook.widen_to = {:?} reaches further back than playbook.window plus playbook.history, which is all that is fetched: lower it or raise playbook.history",
                self.playbook.widen_to
            );
        }
        self.aws.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.contain.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.slack.validate()?;
        self.discord.validate()?;
        self.store.validate()?;
        self.metrics.validate()?;
        Ok(())
    }
}

impl FromStr for Config {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|error| toml_error(text, &error))?;
        config.validate()?;
        Ok(config)
    }
}

/// Describes a TOML error by line and column, without the quoted line that toml's own
/// message shows: that line may hold a token or password put in the file by mistake.
fn toml_error(text: &str, error: &toml::de::Error) -> anyhow::Error {
    let message = keycheck_core::redact::redact(error.message().trim_end()).into_owned();
    let Some(span) = error.span() else {
        return anyhow::anyhow!("invalid configuration: {message}");
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |start| start.chars().count()) + 1;
    anyhow::anyhow!("invalid configuration at line {line}, column {column}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_error_hides_the_line() {
        let text = "[slack]\nbot_token = \"xoxb-1234567890-abcdefghijklmnop\"\n";
        let message = text.parse::<Config>().unwrap_err().to_string();
        assert!(message.contains("line 2, column 1"), "{message}");
        assert!(message.contains("bot_token"), "{message}");
        assert!(!message.contains("xoxb-1234567890"), "{message}");
    }

    #[test]
    fn empty_config_uses_defaults() {
        let config: Config = "".parse().unwrap();
        assert_eq!(config.playbook.window(), Duration::from_secs(24 * 3600));
        assert!(config.geo.country_db.is_none());
    }

    #[test]
    fn unknown_field_rejected_with_its_name() {
        let error = "[playbook]\nwindw = \"7d\"\n".parse::<Config>().unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("windw"), "{message}");
    }

    #[test]
    fn bad_duration_names_field_and_fix() {
        let error = "[playbook]\nwindow = \"seven days\"\n".parse::<Config>().unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("playbook.window"), "{message}");
        assert!(message.contains("24h"), "{message}");
    }

    #[test]
    fn slack_defaults_to_socket_mode() {
        let config: Config = "".parse().unwrap();
        assert_eq!(config.slack.mode, SlackMode::Socket);
        assert_eq!(config.slack.duplicate_window(), Duration::from_secs(30 * 60));
        assert_eq!(config.slack.api_url, "https://slack.com/api");
        assert_eq!(config.evidence.source, EvidenceSource::Live);
        assert_eq!(config.store.database_url, "sqlite://keycheck.db");
    }

    #[test]
    fn slack_table_parses_every_field() {
        let text = r#"
            [slack]
            mode = "http"
            listen = "0.0.0.0:8080"
            api_url = "http://127.0.0.1:9/api"
            allowed_channels = ["C0123456789"]
            allowed_users = ["U0123456789"]
            allowed_user_groups = ["S0123456789"]
            watched_channels = ["G0123456789"]
            duplicate_window = "1h"

            [evidence]
            source = { snapshot = "/tmp/incident" }

            [store]
            database_url = "postgres://keycheck@db/keycheck"
        "#;
        let config: Config = text.parse().unwrap();
        assert_eq!(config.slack.mode, SlackMode::Http);
        assert_eq!(config.slack.listen().port(), 8080);
        assert_eq!(config.slack.duplicate_window(), Duration::from_secs(3600));
        assert_eq!(config.evidence.source, EvidenceSource::Snapshot(PathBuf::from("/tmp/incident")));
    }

    #[test]
    fn discord_table_parses_every_field() {
        let text = r#"
            [discord]
            mode = "http"
            listen = "0.0.0.0:8081"
            guilds = ["123456789012345678"]
            watched_channels = ["223456789012345678"]
            allowed_channels = ["323456789012345678"]
            allowed_users = ["423456789012345678"]
            allowed_roles = ["523456789012345678"]
            duplicate_window = "1h"
        "#;
        let config: Config = text.parse().unwrap();
        assert_eq!(config.discord.mode, DiscordMode::Http);
        assert_eq!(config.discord.listen().port(), 8081);
        assert_eq!(config.discord.guilds, ["123456789012345678"]);
        assert_eq!(config.discord.duplicate_window(), Duration::from_secs(3600));

        let defaults: Config = "".parse().unwrap();
        assert_eq!(defaults.discord.mode, DiscordMode::Gateway);
        assert!(defaults.discord.guilds.is_empty());
    }

    #[test]
    fn evidence_demo_parses() {
        let config: Config = "[evidence]\nsource = \"demo\"\n".parse().unwrap();
        assert_eq!(config.evidence.source, EvidenceSource::Demo);
    }

    #[test]
    fn slack_approvals_parse_and_default() {
        let defaults: Config = "".parse().unwrap();
        assert!(!defaults.slack.approvals.enabled());
        let policy = defaults.slack.approvals.policy();
        assert!(policy.two_person_rule);
        assert_eq!(policy.expiry, Duration::from_secs(30 * 60));

        let text = "[slack.approvals]\nrequesters = [\"S0RESPONDERS\"]\napprovers = [\"U0LEAD\", \"S0LEADS\"]\ntwo_person_rule = false\nexpiry = \"10m\"\n";
        let config: Config = text.parse().unwrap();
        let policy = config.slack.approvals.policy();
        assert!(config.slack.approvals.enabled());
        assert_eq!(policy.requesters, ["S0RESPONDERS"]);
        assert_eq!(policy.approvers, ["U0LEAD", "S0LEADS"]);
        assert!(!policy.two_person_rule);
        assert_eq!(policy.expiry, Duration::from_secs(600));
    }

    #[test]
    fn slack_approvals_errors_name_the_field() {
        let cases = [
            ("[slack.approvals]\napprovers = [\"@lead\"]\ntwo_person_rule = false\n", "slack.approvals.approvers[0]"),
            ("[slack.approvals]\nrequesters = [\"C0123\"]\n", "slack.approvals.requesters[0]"),
            ("[slack.approvals]\nexpiry = \"later\"\n", "slack.approvals.expiry"),
            ("[slack.approvals]\nexpiry = \"0s\"\n", "slack.approvals.expiry"),
            ("[slack.approvals]\napprovers = [\"U0LEAD\"]\n", "slack.approvals.requesters is empty"),
            ("[slack.approvals]\napprover = [\"U0LEAD\"]\n", "approver"),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", text.parse::<Config>().unwrap_err());
            assert!(message.contains(expected), "input {text:?} gave {message}");
        }
    }

    #[test]
    fn slack_errors_name_the_field() {
        let cases = [
            ("[slack]\nmode = \"webhook\"\n", "webhook"),
            ("[slack]\nlisten = \"localhost\"\n", "slack.listen"),
            ("[slack]\napi_url = \"slack.com/api\"\n", "slack.api_url"),
            ("[slack]\nallowed_channels = [\"#security\"]\n", "slack.allowed_channels[0]"),
            ("[slack]\nallowed_user_groups = [\"U0123\", \"sec\"]\n", "slack.allowed_user_groups[0]"),
            ("[slack]\nduplicate_window = \"soon\"\n", "slack.duplicate_window"),
            ("[slack]\nwatch_channels = []\n", "watch_channels"),
            ("[store]\ndatabase_url = \"mysql://x\"\n", "store.database_url"),
            ("[evidence]\nsource = \"s3\"\n", "s3"),
            ("[metrics]\nlisten = \"9090\"\n", "metrics.listen"),
            ("[discord]\nmode = \"webhook\"\n", "webhook"),
            ("[discord]\nlisten = \"3001\"\n", "discord.listen"),
            ("[discord]\nguilds = [\"security\"]\n", "discord.guilds[0]"),
            ("[discord]\nwatched_channels = [\"123456789012345678\", \"#alerts\"]\n", "discord.watched_channels[1]"),
            ("[discord]\nallowed_roles = [\"12345\"]\n", "discord.allowed_roles[0]"),
            ("[discord]\nallowed_users = [\"00000000000000000\"]\n", "discord.allowed_users[0]"),
            ("[discord]\nduplicate_window = \"a while\"\n", "discord.duplicate_window"),
            ("[discord]\ntoken = \"secret\"\n", "token"),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", text.parse::<Config>().unwrap_err());
            assert!(message.contains(expected), "input {text:?} gave {message}");
        }
    }
}
