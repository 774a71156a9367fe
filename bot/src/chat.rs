//! Pieces the Slack and Discord adapters share: the window a responder may ask for, the
//! playbook settings of a bot, the redaction of outgoing JSON, and texts about an
//! investigation that read the same on every platform.
//!
//! Nothing here uses a chat platform's types or markup, so each adapter formats these
//! values for its own messages.

use std::time::Duration;

use anyhow::Context;
use keycheck_core::alert::Alert;
use keycheck_core::key::AccountDecoding;
use keycheck_core::playbook::{Investigation, Outcome, PlaybookConfig};
use keycheck_core::redact::redact;
use keycheck_core::report::StepData;
use serde_json::Value;

use crate::config::PlaybookSettings;
use crate::user_error::UserError;

/// The minimum window a responder may request.
pub const MIN_WINDOW: Duration = Duration::from_secs(60 * 60);

/// The maximum window a responder may request, because CloudTrail's event history keeps 90 days.
pub const MAX_WINDOW: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Parses the window a responder requested, such as `7d`. `option` names the option in
/// the error, as the platform spells it (`--window` on Slack, `window` on Discord). The
/// error shows at most the first 20 characters of `value`.
pub fn parse_window(option: &str, value: &str) -> Result<Duration, UserError> {
    let shown: String = value.chars().take(20).collect();
    let window = humantime::parse_duration(value)
        .map_err(|_| UserError::new(format!("{option} {shown} is not a length: write one such as 90m, 24h or 7d")))?;
    if window < MIN_WINDOW || window > MAX_WINDOW {
        return Err(UserError::new(format!(
            "{option} {shown} is out of range: use at least 1h and at most 90d, the CloudTrail event history"
        )));
    }
    Ok(window)
}

/// Builds the playbook configuration of a bot from the `[playbook]` table.
pub fn playbook_config(settings: &PlaybookSettings) -> anyhow::Result<PlaybookConfig> {
    Ok(PlaybookConfig {
        step_timeout: settings.step_timeout(),
        history: chrono::Duration::from_std(settings.history()).context("playbook.history is too long")?,
        widen_to: settings
            .widen_to()
            .map(chrono::Duration::from_std)
            .transpose()
            .context("playbook.widen_to is too long")?,
    })
}

/// Redacts secrets in every string in `value`, object keys included.
pub fn redact_strings(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(redacted) = redact(text) {
                *text = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => {
            let needs_new_keys = map.keys().any(|key| matches!(redact(key), std::borrow::Cow::Owned(_)));
            if needs_new_keys {
                let entries = std::mem::take(map);
                for (key, item) in entries {
                    map.insert(redact(&key).into_owned(), item);
                }
            }
            map.values_mut().for_each(redact_strings);
        }
        _ => {}
    }
}

/// Returns the account of a running investigation as decoded from its key ID, or a
/// placeholder when the key ID does not decode.
pub fn decoded_account(investigation: &Investigation) -> String {
    match investigation.key.decode_account() {
        AccountDecoding::Decoded { account_id } => format!("{account_id} (decoded from the key ID)"),
        AccountDecoding::NotBase32 => "unknown until step 0 resolves it".to_string(),
    }
}

/// Returns the account ID that step 0 resolved, or `None` when it resolved none.
pub fn resolved_account(outcome: &Outcome) -> Option<String> {
    outcome.reports.iter().find_map(|report| match &report.data {
        StepData::Resolve(info) => info.account_id.clone(),
        _ => None,
    })
}

/// Returns the note an alert's investigation carries: the other keys the alert names,
/// and a warning when the alert also contained a secret access key.
pub fn alert_note(alert: &Alert) -> Option<String> {
    let mut notes = Vec::new();
    if alert.key_ids.len() > 1 {
        let others: Vec<&str> = alert.key_ids[1..].iter().map(|key| key.as_str()).collect();
        notes.push(format!(
            "This alert also names {}: run /keycheck with each to investigate it.",
            others.join(", ")
        ));
    }
    if alert.secret_pasted {
        notes.push("The alert message also contains a secret access key: treat it as exposed.".to_string());
    }
    (!notes.is_empty()).then(|| notes.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redact_strings_reaches_nested_values() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let mut value = json!({
            "text": format!("key AKIAIOSFODNN7EXAMPLE secret {secret}"),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("aws_secret_access_key = {secret}")}}],
        });
        redact_strings(&mut value);
        let text = value.to_string();
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    }

    #[test]
    fn parse_window_error_names_option() {
        assert_eq!(parse_window("window", "7d"), Ok(Duration::from_secs(7 * 86_400)));
        let error = parse_window("window", "soon").unwrap_err();
        assert!(error.0.starts_with("window soon is not a length"), "{error}");
        let error = parse_window("--window", "1s").unwrap_err();
        assert!(error.0.starts_with("--window 1s is out of range"), "{error}");
        assert!(parse_window("window", "91d").is_err());
    }
}
