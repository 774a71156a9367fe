//! Command-line parsing and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;

/// Investigate and contain a leaked AWS access key.
#[derive(Debug, Parser)]
#[command(name = "keycheck", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Secrets come from environment variables, never from this file.
    #[arg(long, global = true, env = "KEYCHECK_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format on standard error. KEYCHECK_LOG sets the level, such as info or debug
    /// (default: info for `serve`, warn for the other commands).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the investigation playbook on a key and print the report.
    ///
    /// Exit status: 0 when the report has a verdict, 1 when AWS could not be reached, 2 for
    /// invalid input, 3 when the verdict is inconclusive (the key's CloudTrail activity
    /// could not be read).
    Investigate(InvestigateArgs),
    /// Contain a key: deactivate it, rotate it, revoke its sessions or quarantine its owner.
    /// Prints the plan, prompts for confirmation, executes it, and writes the audit log.
    Contain(crate::contain::ContainArgs),
    /// Print the audit log of containment actions, oldest first.
    Audit(crate::contain::AuditArgs),
    /// Work with exported evidence folders.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Print the least-privilege IAM policies keycheck needs: investigation (read only) and containment.
    IamPolicy(crate::iam_policy::IamPolicyArgs),
    /// Exit 0 when a running `keycheck serve` responds 2xx on /healthz, for container health checks.
    Healthcheck(crate::healthcheck::HealthcheckArgs),
    /// Run the chat bots: Slack when SLACK_BOT_TOKEN is set (with SLACK_APP_TOKEN or
    /// SLACK_SIGNING_SECRET, as `[slack] mode` needs), Discord when DISCORD_TOKEN is set
    /// (with DISCORD_PUBLIC_KEY when `[discord] mode = "http"`), or both.
    Serve,
    /// Print the configuration reference (Markdown): every table and key of keycheck.toml,
    /// with its type, default and description.
    ConfigReference,
    /// Print the Slack app manifest (YAML) to create or update the Slack app from.
    SlackManifest {
        /// Base URL of the HTTP Events API listener, such as https://keycheck.example.com;
        /// without it the manifest is for Socket Mode.
        #[arg(long, value_parser = parse_https_url)]
        http_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write the built-in demonstration incident as a snapshot folder, to see the layout.
    Demo {
        /// Folder to create; it must not exist or be empty.
        #[arg(long)]
        out: PathBuf,
    },
    /// Read a key's evidence live from AWS and write it as a snapshot folder, to keep it
    /// before logs expire and investigate it offline later.
    Collect(crate::collect::CollectArgs),
}

/// Output format of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The threaded report with progress, for people.
    Terminal,
    /// One JSON document, for machines.
    Json,
    /// Markdown, for tickets.
    Markdown,
}

#[derive(Debug, Args)]
pub struct InvestigateArgs {
    /// The access key ID (AKIA… or ASIA…). With --demo it defaults to the demonstration key.
    pub key: Option<String>,

    /// Read exported evidence from this folder instead of calling AWS.
    #[arg(long, conflicts_with = "demo")]
    pub snapshot: Option<PathBuf>,

    /// Use the built-in demonstration incident.
    #[arg(long)]
    pub demo: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Terminal)]
    pub format: Format,

    /// Length of the investigated window, such as 24h or 7d.
    #[arg(long, value_parser = parse_window)]
    pub window: Option<std::time::Duration>,

    /// End of the window (RFC 3339, such as 2026-05-01T12:00:00Z). Default: now when live;
    /// the key's last recorded call on a snapshot.
    #[arg(long, value_parser = parse_end)]
    pub end: Option<chrono::DateTime<chrono::Utc>>,

    /// Folder of templates that replace the built-in ones (same names as in templates/).
    #[arg(long)]
    pub templates: Option<PathBuf>,

    /// Do not print progress while steps run.
    #[arg(long)]
    pub quiet: bool,
}

pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}: write a duration such as 24h, 7d or 90m"))
}

/// Parses `--window`, within the range the bots accept (1h to 90d).
fn parse_window(text: &str) -> Result<std::time::Duration, String> {
    crate::chat::parse_window("--window", text).map_err(|error| error.0)
}

/// Parses `--end` as an RFC 3339 time.
fn parse_end(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.to_utc())
        .map_err(|error| format!("{error}: write an RFC 3339 time such as 2026-05-01T12:00:00Z"))
}

/// Parses `--http-url`: an https URL with a host, which the manifest quotes as is.
fn parse_https_url(text: &str) -> Result<String, String> {
    // The URL parser drops tabs and line breaks, so they are rejected before it runs:
    // they would otherwise end up in the YAML of the manifest.
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains a space or a control character".to_string());
    }
    let url = url::Url::parse(text).map_err(|error| format!("{error}: write a URL such as https://keycheck.example.com"))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err("Slack sends requests only to https URLs: write one such as https://keycheck.example.com".to_string());
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Runs the parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    crate::investigate::install_crypto_provider();
    // The bot logs every investigation and change it makes, so it logs at info by
    // default. The other commands print their results and log only problems.
    let default_level = if matches!(cli.command, Command::Serve) { "info" } else { "warn" };
    crate::logging::init(cli.log_format, default_level);

    let config = match load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("keycheck: {error:#}");
            return ExitCode::from(2);
        }
    };
    // Investigations run on the worker threads. In the dev profile the Security Hub finding
    // deserializer of aws-sdk-securityhub 1.137 has a stack frame of about 6.3 MiB, which
    // overflows Tokio's default 2 MiB worker stack, so workers get 32 MiB of address space.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("keycheck: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Investigate(args) => crate::investigate::run(args, &config).await,
            Command::Contain(args) => crate::contain::run(args, &config).await,
            Command::Audit(args) => crate::contain::run_audit(args, &config).await,
            Command::Snapshot(SnapshotCommand::Demo { out }) => crate::investigate::write_demo(&out),
            Command::Snapshot(SnapshotCommand::Collect(args)) => crate::collect::run(args, &config).await,
            Command::Serve => crate::serve::run(&config).await,
            Command::ConfigReference => {
                print!("{}", crate::config_reference::markdown());
                Ok(ExitCode::SUCCESS)
            }
            Command::SlackManifest { http_url } => {
                print!("{}", crate::slack::manifest::manifest(http_url.as_deref()));
                Ok(ExitCode::SUCCESS)
            }
            Command::IamPolicy(args) => crate::iam_policy::run(&args),
            Command::Healthcheck(args) => crate::healthcheck::run(&args, &config),
        }
    });
    match result {
        Ok(code) => code,
        // A reader such as `head` closed standard output early, which is not a failure
        // of the command.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keycheck: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    }
}
