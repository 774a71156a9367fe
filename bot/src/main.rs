//! The `keycheck` command: investigate a leaked AWS access key from the terminal, or run
//! the chat bot.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = keycheck_bot::cli::Cli::parse();
    keycheck_bot::cli::main(cli)
}
