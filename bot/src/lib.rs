//! The `keycheck` binary's library: the command line, configuration, and the chat
//! adapters that turn `keycheck-core` into a Slack and Discord bot.

pub mod chat;
pub mod cli;
pub mod collect;
pub mod config;
pub mod config_reference;
pub mod contain;
pub mod containment;
pub mod dedupe;
pub mod discord;
pub mod healthcheck;
pub mod iam_policy;
pub mod investigate;
pub mod logging;
pub mod metrics;
pub mod serve;
pub mod slack;
pub mod user_error;
