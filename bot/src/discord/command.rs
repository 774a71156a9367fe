//! The `/keycheck` application command: its definition as registered with Discord, and
//! the parsing of its options.
//!
//! The command's help is its doc comment: [`keycheck_description!`] contains the text
//! once, and both the doc comment of [`Keycheck`] and the description Discord shows come from
//! it. This module only parses, and `access` decides who may run the command.

use std::time::Duration;

use keycheck_core::AccessKeyId;
use keycheck_core::key::parse_key_input;
use serde_json::{Value, json};
use serenity::model::application::{CommandDataOption, CommandDataOptionValue};

use crate::user_error::UserError;

/// The command's name.
pub const NAME: &str = "keycheck";

/// The description of `/keycheck`, at most 100 characters as Discord requires.
macro_rules! keycheck_description {
    () => {
        "Investigate a leaked AWS access key: each step is posted in a thread, then the diagnosis"
    };
}

/// The description of the `key` option.
macro_rules! key_description {
    () => {
        "The access key ID, such as AKIAIOSFODNN7EXAMPLE. Never paste the secret access key."
    };
}

/// The description of the `window` option.
macro_rules! window_description {
    () => {
        "How far back to read activity, such as 24h or 7d (at least 1h, at most 90d)"
    };
}

#[doc = keycheck_description!()]
///
/// Options:
#[doc = concat!("- `key` (required): ", key_description!())]
#[doc = concat!("- `window`: ", window_description!())]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keycheck {
    /// The access key ID.
    pub key: AccessKeyId,
    /// The window length, when the `window` option was given.
    pub window: Option<Duration>,
    /// True when a secret access key was pasted in the `key` option.
    pub secret_pasted: bool,
}

/// Returns the command definitions to register: a bulk overwrite with `/keycheck` alone.
/// It is offered in guilds only (interaction context 0) and to guild installs only
/// (integration type 0), because its thread is for the whole team.
pub fn definitions() -> Value {
    json!([{
        "name": NAME,
        "type": 1,
        "description": keycheck_description!(),
        "contexts": [0],
        "integration_types": [0],
        "options": [
            {"type": 3, "name": "key", "description": key_description!(), "required": true, "max_length": 200},
            {"type": 3, "name": "window", "description": window_description!(), "required": false, "max_length": 20}
        ]
    }])
}

impl Keycheck {
    /// Parses the options of a `/keycheck` interaction. The error's text states what is
    /// wrong and never repeats a pasted secret.
    pub fn from_options(options: &[CommandDataOption]) -> Result<Keycheck, UserError> {
        let text = |name: &str| {
            options.iter().find(|option| option.name == name).and_then(|option| match &option.value {
                CommandDataOptionValue::String(value) => Some(value.as_str()),
                _ => None,
            })
        };
        Keycheck::parse(text("key"), text("window"))
    }

    /// Parses the `key` and `window` option values.
    pub fn parse(key: Option<&str>, window: Option<&str>) -> Result<Keycheck, UserError> {
        let key = key
            .filter(|key| !key.trim().is_empty())
            .ok_or_else(|| UserError::new("the key option is missing: give the access key ID, such as AKIAIOSFODNN7EXAMPLE"))?;
        let input = parse_key_input(key).map_err(|error| UserError::new(error.to_string()))?;
        let window = match window.map(str::trim).filter(|window| !window.is_empty()) {
            Some(window) => Some(crate::chat::parse_window("window", window)?),
            None => None,
        };
        Ok(Keycheck {
            key: input.key,
            window,
            secret_pasted: input.secret_pasted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn key_and_window_parsed() {
        let parsed = Keycheck::parse(Some(KEY), Some("7d")).unwrap();
        assert_eq!(parsed.key.as_str(), KEY);
        assert_eq!(parsed.window, Some(Duration::from_secs(7 * 86_400)));
        assert!(!parsed.secret_pasted);
        assert_eq!(Keycheck::parse(Some(&KEY.to_lowercase()), None).unwrap().key.as_str(), KEY);
    }

    #[test]
    fn secret_next_to_key_flagged_not_echoed() {
        let parsed = Keycheck::parse(Some(&format!("{KEY} {SECRET}")), None).unwrap();
        assert!(parsed.secret_pasted);
        let error = Keycheck::parse(Some(SECRET), None).unwrap_err();
        assert!(!error.0.contains("wJalr"), "{error}");
    }

    #[test]
    fn each_mistake_says_what_is_wrong() {
        let cases = [
            (Some("AKIAIOSFODNN7EXAMPL"), None, "has 19 characters"),
            (Some("AIDACKCEVSQ6C2EXAMPLE"), None, "an IAM user ID"),
            (None, None, "key option is missing"),
            (Some(KEY), Some("soon"), "window soon is not a length"),
            (Some(KEY), Some("365d"), "out of range"),
        ];
        for (key, window, expected) in cases {
            let error = Keycheck::parse(key, window).unwrap_err();
            assert!(error.0.contains(expected), "{key:?} {window:?} gave {error}");
        }
    }

    #[test]
    fn descriptions_fit_discord() {
        let definitions = definitions();
        let command = &definitions[0];
        let mut descriptions = vec![command["description"].as_str().unwrap()];
        for option in command["options"].as_array().unwrap() {
            descriptions.push(option["description"].as_str().unwrap());
        }
        for description in descriptions {
            assert!((1..=100).contains(&description.chars().count()), "{description}");
        }
    }
}
