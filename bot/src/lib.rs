//! The `keycheck` binary's library: the command line, configuration, and the chat
//! adapters that turn `keycheck-core` into a Slack and Discord bot.

pub mod cli;
pub mod collect;
pub mod config;
pub mod contain;
pub mod healthcheck;
pub mod iam_policy;
pub mod investigate;
pub mod serve;
pub mod slack;
pub mod user_error;
