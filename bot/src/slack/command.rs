//! Parsing of the text after `/keycheck`: `help`, or an access key ID with an optional
//! `--window`.
//!
//! This module only parses. Whether the person may run the command, and what runs, is
//! decided in `access` and the bot.

use std::time::Duration;

use keycheck_core::AccessKeyId;
use keycheck_core::key::parse_key_input;

use crate::user_error::UserError;

/// The request in the text after `/keycheck`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandRequest {
    /// `/keycheck`, `/keycheck help`: show usage.
    Help,
    /// `/keycheck KEY [--window 7d]`: investigate a key.
    Investigate {
        /// The access key ID.
        key: AccessKeyId,
        /// The window length when `--window` was given.
        window: Option<Duration>,
        /// True when a secret access key was pasted next to the key ID.
        secret_pasted: bool,
    },
}

/// Parses the text after `/keycheck`. The error's text states what is wrong and never
/// repeats a pasted secret.
pub fn parse(text: &str) -> Result<CommandRequest, UserError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("help") || text == "-h" || text == "--help" {
        return Ok(CommandRequest::Help);
    }

    let mut window = None;
    let mut rest = Vec::new();
    let mut tokens = text.split_whitespace();
    while let Some(token) = tokens.next() {
        if let Some(value) = token.strip_prefix("--window=") {
            window = Some(parse_window(value)?);
        } else if token == "--window" {
            let value = tokens
                .next()
                .ok_or_else(|| UserError::new("--window needs a length, such as --window 7d"))?;
            window = Some(parse_window(value)?);
        } else if token.starts_with("--") {
            let name: String = token.chars().take(20).collect();
            return Err(UserError::new(format!(
                "unknown option {name}: the only option is --window, such as /keycheck AKIA… --window 7d"
            )));
        } else {
            rest.push(token);
        }
    }

    let input = parse_key_input(&rest.join(" ")).map_err(|error| UserError::new(error.to_string()))?;
    Ok(CommandRequest::Investigate {
        key: input.key,
        window,
        secret_pasted: input.secret_pasted,
    })
}

fn parse_window(value: &str) -> Result<Duration, UserError> {
    crate::chat::parse_window("--window", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn investigate(text: &str) -> (AccessKeyId, Option<Duration>, bool) {
        match parse(text) {
            Ok(CommandRequest::Investigate { key, window, secret_pasted }) => (key, window, secret_pasted),
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn help_forms() {
        for text in ["", "  ", "help", "HELP", "--help"] {
            assert_eq!(parse(text), Ok(CommandRequest::Help), "{text:?}");
        }
    }

    #[test]
    fn key_with_window_in_either_order() {
        let day = Duration::from_secs(86_400);
        assert_eq!(investigate(KEY), (KEY.parse().unwrap(), None, false));
        assert_eq!(investigate(&format!("{KEY} --window 7d")).1, Some(day * 7));
        assert_eq!(investigate(&format!("--window=2d {KEY}")).1, Some(day * 2));
        assert_eq!(investigate(&KEY.to_lowercase()).0.as_str(), KEY);
    }

    #[test]
    fn secret_next_to_key_flagged_not_echoed() {
        let (key, _, secret_pasted) = investigate(&format!("{KEY} {SECRET}"));
        assert_eq!(key.as_str(), KEY);
        assert!(secret_pasted);

        let error = parse(SECRET).unwrap_err();
        assert!(!error.0.contains("wJalr"), "{error}");
        assert!(error.0.contains("treat the secret as exposed"), "{error}");
    }

    #[test]
    fn each_mistake_says_what_is_wrong() {
        let cases = [
            ("AKIAIOSFODNN7EXAMPL", "has 19 characters"),
            ("AIDACKCEVSQ6C2EXAMPLE", "an IAM user ID"),
            (&format!("{KEY} --window"), "--window needs a length"),
            (&format!("{KEY} --window soon"), "is not a length"),
            (&format!("{KEY} --window 1s"), "out of range"),
            (&format!("{KEY} --window 365d"), "out of range"),
            (&format!("{KEY} --since 2d"), "unknown option --since"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.0.contains(expected), "{text:?} gave {error}");
        }
    }
}
