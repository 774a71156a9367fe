//! IAM calls shared by the actions on a long-term key: who owns the key and which keys that
//! user has now, a key's status change, and the deletion of a key that rotation could not
//! store.

use aws_sdk_iam::operation::RequestId;
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{AwsFailure, RemediationError};
use crate::evidence::KeyStatus;
use crate::evidence::live::error::is_not_found;
use crate::evidence::live::operations::{
    IAM_DELETE_ACCESS_KEY, IAM_GET_ACCESS_KEY_LAST_USED, IAM_LIST_ACCESS_KEYS,
    IAM_UPDATE_ACCESS_KEY,
};
use crate::key::AccessKeyId;

pub(super) type Iam = aws_sdk_iam::Client;

/// One access key of a user, as `iam:ListAccessKeys` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub key_id: String,
    pub status: KeyStatus,
    pub created: Option<DateTime<Utc>>,
}

/// The user that owns a key, and that user's keys now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ownership {
    pub user: String,
    pub keys: Vec<KeyState>,
}

impl Ownership {
    /// Returns the status of `key_id` among the user's keys.
    pub fn status_of(&self, key_id: &str) -> Option<KeyStatus> {
        self.keys
            .iter()
            .find(|key| key.key_id == key_id)
            .map(|key| key.status)
    }
}

/// Reads the user that owns `key` and that user's keys.
///
/// Fails with `KeyNotFound` when IAM has no such key in the account, and with `RootKey`
/// when the key is the root user's.
pub(super) async fn read_ownership(
    iam: &Iam,
    key: &AccessKeyId,
    account_id: &str,
) -> Result<Ownership, RemediationError> {
    let not_found = || RemediationError::KeyNotFound {
        key_id: key.to_string(),
        account_id: account_id.to_string(),
    };

    // NOTE: IAM does not document its error for a key ID it has no record of. moto returns
    // `NoSuchEntity`, which is read as "not found"; any other error is reported as it is.
    let last_used = match iam
        .get_access_key_last_used()
        .access_key_id(key.as_str())
        .send()
        .await
    {
        Ok(output) => output,
        Err(error) if is_not_found(&error) => return Err(not_found()),
        Err(error) => {
            return Err(RemediationError::GetAccessKeyLastUsed {
                key_id: key.to_string(),
                failure: AwsFailure::from_sdk(&IAM_GET_ACCESS_KEY_LAST_USED, key.as_str(), &error),
            });
        }
    };
    let Some(user) = last_used.user_name else {
        return Err(RemediationError::RootKey {
            key_id: key.to_string(),
            account_id: account_id.to_string(),
        });
    };

    let keys = list_keys(iam, &user).await?;
    if !keys.iter().any(|state| state.key_id == key.as_str()) {
        // The key was deleted between the two calls.
        return Err(not_found());
    }
    Ok(Ownership { user, keys })
}

/// Lists the access keys of `user`.
pub(super) async fn list_keys(iam: &Iam, user: &str) -> Result<Vec<KeyState>, RemediationError> {
    let listed: Vec<aws_sdk_iam::types::AccessKeyMetadata> = iam
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| RemediationError::ListAccessKeys {
            user: user.to_string(),
            failure: AwsFailure::from_sdk(&IAM_LIST_ACCESS_KEYS, user, &error),
        })?;
    Ok(listed
        .into_iter()
        .filter_map(|metadata| {
            Some(KeyState {
                key_id: metadata.access_key_id?,
                status: match metadata.status {
                    Some(StatusType::Active) => KeyStatus::Active,
                    Some(StatusType::Inactive) => KeyStatus::Inactive,
                    _ => KeyStatus::Unknown,
                },
                created: metadata
                    .create_date
                    .and_then(|date| DateTime::from_timestamp(date.secs(), date.subsec_nanos())),
            })
        })
        .collect())
}

/// Sets key `key_id` of `user` to Inactive and returns the request ID. The user name is
/// always sent, because without it IAM changes a key of the caller.
pub(super) async fn deactivate_key(
    iam: &Iam,
    user: &str,
    key_id: &str,
) -> Result<Option<String>, AwsFailure> {
    let output = iam
        .update_access_key()
        .user_name(user)
        .access_key_id(key_id)
        .status(StatusType::Inactive)
        .send()
        .await
        .map_err(|error| AwsFailure::from_sdk(&IAM_UPDATE_ACCESS_KEY, key_id, &error))?;
    Ok(output.request_id().map(str::to_string))
}

/// Deletes key `key_id` of `user` and returns the request ID.
pub(super) async fn delete_key(
    iam: &Iam,
    user: &str,
    key_id: &str,
) -> Result<Option<String>, AwsFailure> {
    let output = iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|error| AwsFailure::from_sdk(&IAM_DELETE_ACCESS_KEY, key_id, &error))?;
    Ok(output.request_id().map(str::to_string))
}

/// Rejects a temporary key for an action that only long-term keys have, such as
/// deactivation.
pub(super) fn require_long_term(
    key: &AccessKeyId,
    action: &'static str,
) -> Result<(), RemediationError> {
    if key.kind() == crate::key::KeyKind::Temporary {
        return Err(RemediationError::TemporaryKey {
            key_id: key.to_string(),
            action,
        });
    }
    Ok(())
}

/// Describes the other keys of the user, for plans: `AKIA… (Active)`.
pub(super) fn describe_keys<'a>(keys: impl Iterator<Item = &'a KeyState>) -> Vec<String> {
    keys.map(|key| format!("{} ({})", key.key_id, status_word(key.status)))
        .collect()
}

/// Returns the status as IAM writes it.
pub(super) fn status_word(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "Active",
        KeyStatus::Inactive => "Inactive",
        KeyStatus::Gone => "deleted",
        KeyStatus::Unknown => "status unknown",
    }
}
