//! Settings of the containment actions: where a rotated key's secret goes, which policy
//! quarantines an owner, the name of the inline policy that revokes sessions, and when the
//! bot checks again after a deactivation.
//!
//! The bot reads this as the `[contain]` table of its TOML file, so errors name fields as
//! `contain.<field>`. AWS credentials and roles come from the `[aws]` table, the same
//! settings the live investigation uses.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The name of the TOML table that contains these settings, used in error messages.
pub const CONFIG_TABLE: &str = "contain";

/// AWS's managed policy for a principal whose credentials leaked. It denies the actions an
/// attacker uses to persist or escalate, and leaves the rest of the principal's permissions.
pub const DEFAULT_QUARANTINE_POLICY_ARN: &str =
    "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";

/// The inline policy name that revokes sessions.
pub const DEFAULT_REVOKE_POLICY_NAME: &str = "keycheck-revoke-sessions";

/// The Secrets Manager name of a rotated key's secret.
pub const DEFAULT_SECRET_NAME: &str = "keycheck/rotated/{user}/{new_key_id}";

/// The placeholders a secret name may contain, and what each becomes.
pub const SECRET_NAME_PLACEHOLDERS: &[(&str, &str)] = &[
    ("{user}", "the IAM user name"),
    ("{new_key_id}", "the new access key ID"),
    ("{old_key_id}", "the replaced access key ID"),
    ("{account_id}", "the 12-digit account ID"),
    ("{investigation_id}", "the investigation ID"),
];

/// Secrets Manager's limit on the length of a secret name.
const MAX_SECRET_NAME_LEN: usize = 512;

/// Settings of the containment actions.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ContainConfig {
    /// Secrets Manager name for the secret of a rotated key, with the placeholders
    /// `{user}`, `{new_key_id}`, `{old_key_id}`, `{account_id}` and `{investigation_id}`.
    /// Default: `keycheck/rotated/{user}/{new_key_id}`. The policy `keycheck iam-policy`
    /// prints allows only names under `keycheck/`.
    pub secret_name: String,
    /// Managed policy that quarantine attaches to the key's owner. Default:
    /// `arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3`. The policy `keycheck
    /// iam-policy` prints allows attaching only `AWSCompromisedKeyQuarantine*`.
    pub quarantine_policy_arn: String,
    /// Name of the inline deny policy that revokes sessions. Default:
    /// `keycheck-revoke-sessions`. A policy of this name on the user or role is replaced.
    pub revoke_policy_name: String,
    /// How long after a deactivation the bot checks whether the key or its sessions are
    /// still used, such as `30m`.
    pub post_check_delay: String,
}

impl Default for ContainConfig {
    fn default() -> Self {
        ContainConfig {
            secret_name: DEFAULT_SECRET_NAME.to_string(),
            quarantine_policy_arn: DEFAULT_QUARANTINE_POLICY_ARN.to_string(),
            revoke_policy_name: DEFAULT_REVOKE_POLICY_NAME.to_string(),
            post_check_delay: "30m".to_string(),
        }
    }
}

/// A containment setting that is invalid, with the field it is in and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {CONFIG_TABLE}.{field}: {problem}")]
pub struct ContainConfigError {
    /// The field, such as `secret_name`.
    pub field: &'static str,
    /// The problem, and the value to write instead.
    pub problem: String,
}

impl ContainConfig {
    /// Checks every setting and returns the first invalid one.
    pub fn validate(&self) -> Result<(), ContainConfigError> {
        check_secret_name(&self.secret_name)?;
        check_policy_arn(&self.quarantine_policy_arn)?;
        check_policy_name(&self.revoke_policy_name)?;
        self.parse_post_check_delay()?;
        Ok(())
    }

    /// Returns the delay before the post-deactivation check.
    ///
    /// Fails when the setting is not a duration, or is zero.
    pub fn post_check_delay(&self) -> Result<Duration, ContainConfigError> {
        self.parse_post_check_delay()
    }

    fn parse_post_check_delay(&self) -> Result<Duration, ContainConfigError> {
        let text = self.post_check_delay.as_str();
        let delay = humantime::parse_duration(text).map_err(|error| {
            invalid(
                "post_check_delay",
                format!("{text:?} is not a duration such as \"30m\": {error}"),
            )
        })?;
        if delay.is_zero() {
            return Err(invalid(
                "post_check_delay",
                "must be longer than zero, such as \"30m\"",
            ));
        }
        Ok(delay)
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ContainConfigError {
    ContainConfigError {
        field,
        problem: problem.into(),
    }
}

/// Returns whether `name` is a valid Secrets Manager secret name: 1 to 512 of the
/// characters `A-Z a-z 0-9 / _ + = . @ -`.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    (1..=MAX_SECRET_NAME_LEN).contains(&name.len()) && name.chars().all(allowed)
}

fn check_secret_name(template: &str) -> Result<(), ContainConfigError> {
    // Every known placeholder becomes a value of valid characters, so checking the
    // template with placeholders replaced by a sample checks every name it makes, except
    // for user names with a comma, which IAM allows and Secrets Manager does not.
    let mut sample = template.to_string();
    for (placeholder, _) in SECRET_NAME_PLACEHOLDERS {
        sample = sample.replace(placeholder, "x");
    }
    if let Some(start) = sample.find('{') {
        let end = sample[start..]
            .find('}')
            .map_or(sample.len(), |e| start + e + 1);
        let names: Vec<&str> = SECRET_NAME_PLACEHOLDERS.iter().map(|(p, _)| *p).collect();
        return Err(invalid(
            "secret_name",
            format!(
                "unknown placeholder {} in {template:?}: use {}",
                &sample[start..end],
                names.join(", ")
            ),
        ));
    }
    if !is_secret_name(&sample) {
        return Err(invalid(
            "secret_name",
            format!(
                "{template:?} is not a Secrets Manager name: use 1 to {MAX_SECRET_NAME_LEN} of A-Z a-z 0-9 / _ + = . @ -, such as \"{DEFAULT_SECRET_NAME}\""
            ),
        ));
    }
    if !template.contains("{new_key_id}") && !template.contains("{old_key_id}") {
        return Err(invalid(
            "secret_name",
            format!(
                "{template:?} names no key, so a second rotation of the same user would overwrite the first secret: add {{new_key_id}}"
            ),
        ));
    }
    Ok(())
}

fn check_policy_arn(arn: &str) -> Result<(), ContainConfigError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws"
            || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
        && parts[5].starts_with("policy/")
        && parts[5].len() > "policy/".len();
    if valid {
        return Ok(());
    }
    Err(invalid(
        "quarantine_policy_arn",
        format!("{arn:?} is not a managed policy ARN such as \"{DEFAULT_QUARANTINE_POLICY_ARN}\""),
    ))
}

/// Checks an inline policy name against IAM's rule: 1 to 128 of `A-Z a-z 0-9 + = , . @ _ -`.
fn check_policy_name(name: &str) -> Result<(), ContainConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if (1..=128).contains(&name.len()) && name.chars().all(allowed) {
        return Ok(());
    }
    Err(invalid(
        "revoke_policy_name",
        format!(
            "{name:?} is not an IAM policy name: use 1 to 128 of A-Z a-z 0-9 + = , . @ _ -, such as \"{DEFAULT_REVOKE_POLICY_NAME}\""
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = ContainConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.post_check_delay(), Ok(Duration::from_secs(30 * 60)));
    }

    #[test]
    fn toml_fields_parse() {
        let config: ContainConfig = serde_json::from_str(
            r#"{"secret_name": "keycheck/{account_id}/{user}/{new_key_id}", "post_check_delay": "10m"}"#,
        )
        .unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.post_check_delay(), Ok(Duration::from_secs(600)));
        assert_eq!(config.revoke_policy_name, DEFAULT_REVOKE_POLICY_NAME);
    }

    #[test]
    fn unknown_field_rejected() {
        let error = serde_json::from_str::<ContainConfig>(r#"{"secret": "x"}"#).unwrap_err();
        assert!(error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn invalid_values_name_field() {
        let cases = [
            (
                ContainConfig {
                    secret_name: "keycheck/{usr}/{new_key_id}".to_string(),
                    ..ContainConfig::default()
                },
                "contain.secret_name: unknown placeholder {usr}",
            ),
            (
                ContainConfig {
                    secret_name: "keycheck rotated/{new_key_id}".to_string(),
                    ..ContainConfig::default()
                },
                "is not a Secrets Manager name",
            ),
            (
                ContainConfig {
                    secret_name: "keycheck/{user}".to_string(),
                    ..ContainConfig::default()
                },
                "names no key",
            ),
            (
                ContainConfig {
                    quarantine_policy_arn: "AWSCompromisedKeyQuarantineV3".to_string(),
                    ..ContainConfig::default()
                },
                "contain.quarantine_policy_arn",
            ),
            (
                ContainConfig {
                    revoke_policy_name: "revoke sessions".to_string(),
                    ..ContainConfig::default()
                },
                "contain.revoke_policy_name",
            ),
            (
                ContainConfig {
                    post_check_delay: "soon".to_string(),
                    ..ContainConfig::default()
                },
                "contain.post_check_delay",
            ),
            (
                ContainConfig {
                    post_check_delay: "0s".to_string(),
                    ..ContainConfig::default()
                },
                "longer than zero",
            ),
        ];
        for (config, expected) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{config:?} gave {message}");
        }
    }

    #[test]
    fn customer_managed_policy_accepted() {
        let config = ContainConfig {
            quarantine_policy_arn: "arn:aws:iam::111122223333:policy/security/quarantine"
                .to_string(),
            ..ContainConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }
}
