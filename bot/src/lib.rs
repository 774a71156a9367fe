//! The `keycheck` binary's library: the command line, configuration, and the chat
//! adapters that turn `keycheck-core` into a Slack and Discord bot.

pub mod cli;
pub mod config;
pub mod investigate;
