//! The secret access key that rotation creates, in a type that is hard to leak by accident,
//! and the Secrets Manager name and value it is stored under.
//!
//! [`SecretText`] prints a placeholder in `Debug` and `Display`, and implements neither
//! `Clone` nor `Serialize`, so the secret cannot reach a log line, an error, an outcome or
//! the store without a deliberate call of [`SecretText::expose`]. Only the Secrets
//! Manager request calls it.
//!
//! NOTE: dropping a `SecretText` frees its memory without overwriting it, and the SDK keeps
//! its own copies in the response and request buffers until they are freed, so the secret
//! stays in process memory for an unknown time after rotation.

use std::fmt;

use serde_json::json;

use super::config::is_secret_name;
use super::error::RemediationError;

/// Text that must not be shown: a secret access key, or a secret value that contains one.
pub(crate) struct SecretText(String);

impl SecretText {
    pub(crate) fn new(text: String) -> SecretText {
        SecretText(text)
    }

    /// Returns the secret itself, for the one request that stores it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(redacted)")
    }
}

impl fmt::Display for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// A stand-in new key ID, for checking a secret name before the key exists.
const SAMPLE_KEY_ID: &str = "AKIAAAAAAAAAAAAAAAAA";

/// The values a secret name template's placeholders become, except the new key ID, which
/// is known only once the key exists.
pub(crate) struct NameValues<'a> {
    pub user: &'a str,
    pub old_key_id: &'a str,
    pub account_id: &'a str,
    pub investigation_id: &'a str,
}

/// Fills every placeholder of `template` but `{new_key_id}`, which stays for
/// [`final_name`].
///
/// Fails when the name, with any new key ID, is not a valid Secrets Manager name, such as
/// for a user name with a comma.
pub(crate) fn planned_name(
    template: &str,
    values: &NameValues<'_>,
) -> Result<String, RemediationError> {
    let name = template
        .replace("{user}", values.user)
        .replace("{old_key_id}", values.old_key_id)
        .replace("{account_id}", values.account_id)
        .replace("{investigation_id}", values.investigation_id);
    if !is_secret_name(&final_name(&name, SAMPLE_KEY_ID)) {
        return Err(RemediationError::InvalidSecretName {
            name,
            user: values.user.to_string(),
        });
    }
    Ok(name)
}

/// Returns the secret name of a planned name once the new key ID is known.
pub(crate) fn final_name(planned: &str, new_key_id: &str) -> String {
    planned.replace("{new_key_id}", new_key_id)
}

/// Returns whether the planned name is already final, so that the plan can check whether
/// the secret exists.
pub(crate) fn is_final(planned: &str) -> bool {
    !planned.contains("{new_key_id}")
}

/// Builds the secret value: a JSON object with the new key ID and secret access key, the
/// user, and the key it replaces, in the field names the AWS CLI's `create-access-key`
/// output uses.
pub(crate) fn secret_value(
    user: &str,
    new_key_id: &str,
    secret_access_key: &SecretText,
    old_key_id: &str,
) -> SecretText {
    let value = json!({
        "UserName": user,
        "AccessKeyId": new_key_id,
        "SecretAccessKey": secret_access_key.expose(),
        "ReplacesAccessKeyId": old_key_id,
    });
    SecretText::new(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn secret_text_never_prints() {
        let secret = SecretText::new(SECRET.to_string());
        let value = secret_value("alice", "AKIANEW", &secret, "AKIAOLD");
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{value:?}"),
            format!("{value}"),
        ] {
            assert!(!shown.contains(SECRET), "{shown}");
        }
        let stored: serde_json::Value = serde_json::from_str(value.expose()).unwrap();
        assert_eq!(stored["SecretAccessKey"], SECRET);
        assert_eq!(stored["AccessKeyId"], "AKIANEW");
        assert_eq!(stored["ReplacesAccessKeyId"], "AKIAOLD");
    }

    fn values<'a>(user: &'a str) -> NameValues<'a> {
        NameValues {
            user,
            old_key_id: "AKIAOLD",
            account_id: "111122223333",
            investigation_id: "kc-0123456789",
        }
    }

    #[test]
    fn name_filled_in_two_steps() {
        let planned = planned_name(
            "keycheck/{account_id}/{user}/{new_key_id}",
            &values("alice"),
        )
        .unwrap();
        assert_eq!(planned, "keycheck/111122223333/alice/{new_key_id}");
        assert!(!is_final(&planned));
        assert_eq!(
            final_name(&planned, "AKIANEW"),
            "keycheck/111122223333/alice/AKIANEW"
        );

        let fixed =
            planned_name("keycheck/{investigation_id}/{old_key_id}", &values("alice")).unwrap();
        assert!(is_final(&fixed));
    }

    #[test]
    fn user_with_comma_rejected() {
        let error = planned_name("keycheck/{user}/{new_key_id}", &values("ops,admin")).unwrap_err();
        assert!(error.to_string().contains("ops,admin"), "{error}");
    }
}
