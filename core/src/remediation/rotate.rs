//! Rotation: create a new access key for the leaked key's user, store its secret in
//! Secrets Manager, then deactivate the leaked key.
//!
//! The new secret access key lives in a [`SecretText`] from the `iam:CreateAccessKey`
//! response until the Secrets Manager request is built, and is dropped then. The calls
//! that carry the secret run with tracing switched off: with `LOG_SENSITIVE_BODIES=true`
//! the SDK logs the response bodies it otherwise redacts at `trace` level, and it logs each
//! request at `trace` level too. When the secret cannot be stored, the new key is deleted
//! (or, if that fails, deactivated), because its secret is lost and no one could use it.

use aws_sdk_iam::operation::RequestId;
use aws_sdk_secretsmanager::types::Tag;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument::WithSubscriber;
use tracing::subscriber::NoSubscriber;
use tracing::{error, info, warn};

use super::error::{AwsFailure, NewKeyCleanup};
use super::iam::{self, Iam, KeyState};
use super::secret::{self, NameValues, SecretText};
use super::{Change, Outcome, Principal, RemediationError, Remediator, Target};
use crate::approval::ActionKind;
use crate::evidence::KeyStatus;
use crate::evidence::live::error::is_not_found;
use crate::evidence::live::operations::{
    IAM_CREATE_ACCESS_KEY, IAM_UPDATE_ACCESS_KEY, SECRETSMANAGER_CREATE_SECRET,
    SECRETSMANAGER_DESCRIBE_SECRET, SECRETSMANAGER_PUT_SECRET_VALUE, SECRETSMANAGER_TAG_RESOURCE,
};
use crate::key::AccessKeyId;

type SecretsManager = aws_sdk_secretsmanager::Client;

/// Tag on the secret: the investigation that rotated the key.
pub const TAG_INVESTIGATION: &str = "keycheck:investigation-id";
/// Tag on the secret: the leaked key that the new key replaces.
pub const TAG_REPLACED_KEY: &str = "keycheck:replaced-access-key-id";
/// Tag on the secret: the new key it holds.
pub const TAG_NEW_KEY: &str = "keycheck:access-key-id";

/// IAM's limit of access keys per user, inactive keys included.
const MAX_KEYS_PER_USER: usize = 2;

/// The changes rotation will make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatePlan {
    pub investigation_id: String,
    /// The leaked key, which the new key replaces.
    pub key_id: AccessKeyId,
    pub account_id: String,
    /// The IAM user that owns the key and gets the new one.
    pub user_name: String,
    /// The leaked key's status when the plan was made.
    pub status: KeyStatus,
    /// The Secrets Manager name of the new secret, with `{new_key_id}` still in it when
    /// the configured name contains the new key ID.
    pub secret_name: String,
    /// Whether a secret of that name exists, in which case rotation writes a new version of
    /// it. `None` when the name depends on the new key ID, so the secret cannot exist yet.
    pub secret_exists: Option<bool>,
}

impl RotatePlan {
    /// Returns the user that owns the key.
    pub fn user(&self) -> Principal {
        Principal::user(&self.account_id, &self.user_name)
    }

    /// Describes the plan, one sentence a line.
    pub fn describe(&self) -> Vec<String> {
        let shown_name = secret::final_name(&self.secret_name, "<new key ID>");
        let secret = match self.secret_exists {
            Some(true) => {
                format!("as a new version of the existing Secrets Manager secret {shown_name}")
            }
            _ => format!("in a new Secrets Manager secret {shown_name}"),
        };
        let mut lines = vec![
            format!(
                "Create a new access key for {} with iam:CreateAccessKey.",
                self.user()
            ),
            format!(
                "Store its secret access key {secret}, tagged with investigation {} and the replaced key {}. Nothing else ever shows the secret.",
                self.investigation_id, self.key_id
            ),
        ];
        lines.push(match self.status {
            KeyStatus::Inactive => format!("Leave the old key {} inactive, as it is.", self.key_id),
            _ => format!(
                "Then set the old key {} to Inactive. Workloads that use it fail until they read the new key from the secret.",
                self.key_id
            ),
        });
        lines.push(
            "If the secret cannot be stored, delete the new key again and leave the old key as it is."
                .to_string(),
        );
        lines
    }
}

/// Decides the plan from the key's owner and that user's keys, as IAM lists them, and the
/// secret name filled in for this key.
///
/// Fails with `KeyNotFound` when `keys` lacks the key, and with `TooManyKeys` when the
/// user has no room for a new key.
pub fn plan(
    target: &Target,
    user_name: &str,
    keys: &[KeyState],
    secret_name: String,
    secret_exists: Option<bool>,
) -> Result<RotatePlan, RemediationError> {
    let Some(this) = keys.iter().find(|key| key.key_id == target.key.as_str()) else {
        return Err(RemediationError::KeyNotFound {
            key_id: target.key.to_string(),
            account_id: target.account_id.clone(),
        });
    };
    check_room(user_name, &target.key, keys)?;
    Ok(RotatePlan {
        investigation_id: target.investigation_id.clone(),
        key_id: target.key.clone(),
        account_id: target.account_id.clone(),
        user_name: user_name.to_string(),
        status: this.status,
        secret_name,
        secret_exists,
    })
}

/// Checks that the user can get one more key.
fn check_room(user: &str, leaked: &AccessKeyId, keys: &[KeyState]) -> Result<(), RemediationError> {
    if keys.len() < MAX_KEYS_PER_USER {
        return Ok(());
    }
    let other = keys.iter().find(|key| key.key_id != leaked.as_str());
    let delete = |key_id: &str| {
        format!("`aws iam delete-access-key --user-name {user} --access-key-id {key_id}`")
    };
    let advice = match other {
        Some(other) if other.status == KeyStatus::Inactive => format!(
            "delete the inactive key {} first with {}, then rotate again",
            other.key_id,
            delete(&other.key_id)
        ),
        Some(other) => format!(
            "delete or deactivate one first: the other key {} is active and may be in use, so either delete it if nothing uses it ({}) and rotate again, or deactivate the leaked key now with `keycheck contain deactivate {leaked}` and replace it by hand",
            other.key_id,
            delete(&other.key_id)
        ),
        None => format!("delete one first with {}", delete("<key ID>")),
    };
    Err(RemediationError::TooManyKeys {
        user: user.to_string(),
        keys: iam::describe_keys(keys.iter()),
        advice,
    })
}

/// Reads the key's owner, that user's keys and the secret from AWS and plans the rotation.
pub(super) async fn read_plan(
    remediator: &Remediator,
    target: &Target,
) -> Result<RotatePlan, RemediationError> {
    iam::require_long_term(&target.key, "rotate")?;
    let clients = remediator.clients(&target.account_id).await?;
    let ownership = iam::read_ownership(clients.iam(), &target.key, &target.account_id).await?;

    let values = NameValues {
        user: &ownership.user,
        old_key_id: target.key.as_str(),
        account_id: &target.account_id,
        investigation_id: &target.investigation_id,
    };
    let secret_name = secret::planned_name(&remediator.config().secret_name, &values)?;
    let secret_exists = match secret::is_final(&secret_name) {
        true => Some(secret_exists(clients.secrets_manager(), &secret_name).await?),
        false => None,
    };
    plan(
        target,
        &ownership.user,
        &ownership.keys,
        secret_name,
        secret_exists,
    )
}

async fn secret_exists(secrets: &SecretsManager, name: &str) -> Result<bool, RemediationError> {
    match secrets.describe_secret().secret_id(name).send().await {
        Ok(_) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) => Err(RemediationError::DescribeSecret {
            name: name.to_string(),
            failure: AwsFailure::from_sdk(&SECRETSMANAGER_DESCRIBE_SECRET, name, &error),
        }),
    }
}

/// A key that `iam:CreateAccessKey` just created.
#[derive(Debug)]
struct NewKey {
    key_id: String,
    secret: SecretText,
    request_id: Option<String>,
    at: DateTime<Utc>,
}

/// The secret that now contains the new key.
struct StoredSecret {
    arn: String,
    /// The operation that wrote it: `CreateSecret`, or `PutSecretValue` for an existing secret.
    operation: String,
    request_id: Option<String>,
    at: DateTime<Utc>,
    /// The failure of tagging an existing secret, if tagging failed.
    tag_failure: Option<AwsFailure>,
}

/// The failed call that kept the secret from being stored.
enum StoreFailure {
    Create(AwsFailure),
    Put(AwsFailure),
}

/// Rotates the key, after checking again that the key exists and its user has room.
pub(super) async fn execute(
    remediator: &Remediator,
    plan: &RotatePlan,
) -> Result<Outcome, RemediationError> {
    iam::require_long_term(&plan.key_id, "rotate")?;
    let clients = remediator.clients(&plan.account_id).await?;
    let iam_client = clients.iam();
    let ownership = iam::read_ownership(iam_client, &plan.key_id, &plan.account_id).await?;
    let user = ownership.user.as_str();
    check_room(user, &plan.key_id, &ownership.keys)?;
    let mut outcome = Outcome::new(ActionKind::Rotate, &plan.key_id, &plan.investigation_id);

    let new_key = create_key(iam_client, user).await?;
    let new_key_id = new_key.key_id.clone();
    info!(
        key_id = %plan.key_id,
        action = "rotate",
        user,
        new_key_id = %new_key_id,
        request_id = new_key.request_id.as_deref().unwrap_or("none"),
        "access key created"
    );
    outcome.changes.push(Change {
        operation: IAM_CREATE_ACCESS_KEY.id(),
        description: format!("created access key {new_key_id} for IAM user {user}"),
        request_id: new_key.request_id.clone(),
        at: new_key.at,
    });

    let name = secret::final_name(&plan.secret_name, &new_key_id);
    let stored = match store_secret(clients.secrets_manager(), plan, user, &name, new_key).await {
        Ok(stored) => stored,
        Err(failure) => {
            let cleanup = remove_new_key(iam_client, &plan.key_id, user, &new_key_id).await;
            let old_key_id = plan.key_id.to_string();
            return Err(match failure {
                StoreFailure::Create(failure) => RemediationError::CreateSecret {
                    name,
                    old_key_id,
                    failure,
                    cleanup,
                },
                StoreFailure::Put(failure) => RemediationError::PutSecretValue {
                    name,
                    old_key_id,
                    failure,
                    cleanup,
                },
            });
        }
    };
    info!(
        key_id = %plan.key_id,
        action = "rotate",
        new_key_id = %new_key_id,
        secret_arn = %stored.arn,
        operation = %stored.operation,
        request_id = stored.request_id.as_deref().unwrap_or("none"),
        "new access key stored in Secrets Manager"
    );
    outcome.changes.push(Change {
        operation: stored.operation.clone(),
        description: format!("stored access key {new_key_id} in secret {}", stored.arn),
        request_id: stored.request_id.clone(),
        at: stored.at,
    });
    if let Some(failure) = &stored.tag_failure {
        warn!(key_id = %plan.key_id, action = "rotate", secret_arn = %stored.arn, error = %failure, "tagging the existing secret failed");
        outcome.notes.push(format!(
            "the existing secret {} was not tagged: {failure}",
            stored.arn
        ));
    }
    outcome.new_key_id = Some(new_key_id.clone());
    outcome.secret_arn = Some(stored.arn.clone());

    deactivate_old_key(
        iam_client,
        plan,
        &ownership,
        &new_key_id,
        &stored.arn,
        &mut outcome,
    )
    .await?;
    Ok(outcome)
}

/// Creates a key for `user`. The call runs without tracing, because its response contains
/// the secret access key and the SDK logs response bodies when `LOG_SENSITIVE_BODIES` is set.
async fn create_key(iam_client: &Iam, user: &str) -> Result<NewKey, RemediationError> {
    let output = iam_client
        .create_access_key()
        .user_name(user)
        .send()
        .with_subscriber(NoSubscriber::default())
        .await
        .map_err(|error| RemediationError::CreateAccessKey {
            user: user.to_string(),
            failure: AwsFailure::from_sdk(&IAM_CREATE_ACCESS_KEY, user, &error),
        })?;
    let request_id = output.request_id().map(str::to_string);
    let Some(aws_sdk_iam::types::AccessKey {
        access_key_id,
        secret_access_key,
        ..
    }) = output.access_key
    else {
        // NOTE: a response without the key gives no key ID to delete; IAM always returns
        // one on success, so this path is not expected to leave a key behind.
        return Err(RemediationError::CreateAccessKey {
            user: user.to_string(),
            failure: AwsFailure::bad_response(
                &IAM_CREATE_ACCESS_KEY,
                "the response held no access key",
            ),
        });
    };
    Ok(NewKey {
        key_id: access_key_id,
        secret: SecretText::new(secret_access_key),
        request_id,
        at: Utc::now(),
    })
}

/// Stores the new key's secret under `name`: a new secret, or a new version of an
/// existing one. Consumes `new_key`, so its secret is dropped here.
///
/// The requests that carry the secret run without tracing, because the SDK logs every
/// request at `trace` level. With aws-smithy-runtime 1.16 that log shows the body as
/// `BoxBody`, but nothing promises it stays so. The SDK's debug logs of these calls are
/// lost with it, and the errors they return are still reported.
async fn store_secret(
    secrets: &SecretsManager,
    plan: &RotatePlan,
    user: &str,
    name: &str,
    new_key: NewKey,
) -> Result<StoredSecret, StoreFailure> {
    let value = secret::secret_value(user, &new_key.key_id, &new_key.secret, plan.key_id.as_str());
    drop(new_key.secret);
    let tags = secret_tags(plan, &new_key.key_id);

    let created = secrets
        .create_secret()
        .name(name)
        .description(format!(
            "Access key {} of IAM user {user}, created by keycheck in investigation {} to replace {}",
            new_key.key_id, plan.investigation_id, plan.key_id
        ))
        .secret_string(value.expose())
        .set_tags(Some(tags.clone()))
        .send()
        .with_subscriber(NoSubscriber::default())
        .await;
    let error = match created {
        Ok(output) => {
            return Ok(StoredSecret {
                arn: output.arn.clone().unwrap_or_else(|| name.to_string()),
                operation: SECRETSMANAGER_CREATE_SECRET.id(),
                request_id: output.request_id().map(str::to_string),
                at: Utc::now(),
                tag_failure: None,
            });
        }
        Err(error) => error,
    };
    let exists = error
        .as_service_error()
        .is_some_and(|service_error| service_error.is_resource_exists_exception());
    if !exists {
        return Err(StoreFailure::Create(AwsFailure::from_sdk(
            &SECRETSMANAGER_CREATE_SECRET,
            name,
            &error,
        )));
    }

    let put = secrets
        .put_secret_value()
        .secret_id(name)
        .secret_string(value.expose())
        .send()
        .with_subscriber(NoSubscriber::default())
        .await
        .map_err(|error| {
            StoreFailure::Put(AwsFailure::from_sdk(
                &SECRETSMANAGER_PUT_SECRET_VALUE,
                name,
                &error,
            ))
        })?;
    drop(value);
    let arn = put.arn.clone().unwrap_or_else(|| name.to_string());
    let stored_at = Utc::now();
    let tag_failure = secrets
        .tag_resource()
        .secret_id(&arn)
        .set_tags(Some(tags))
        .send()
        .await
        .err()
        .map(|error| AwsFailure::from_sdk(&SECRETSMANAGER_TAG_RESOURCE, &arn, &error));
    Ok(StoredSecret {
        arn,
        operation: SECRETSMANAGER_PUT_SECRET_VALUE.id(),
        request_id: put.request_id().map(str::to_string),
        at: stored_at,
        tag_failure,
    })
}

fn secret_tags(plan: &RotatePlan, new_key_id: &str) -> Vec<Tag> {
    [
        (TAG_INVESTIGATION, plan.investigation_id.as_str()),
        (TAG_REPLACED_KEY, plan.key_id.as_str()),
        (TAG_NEW_KEY, new_key_id),
    ]
    .into_iter()
    .map(|(key, value)| Tag::builder().key(key).value(value).build())
    .collect()
}

/// Removes a new key whose secret could not be stored: deletes it, or deactivates it when
/// the deletion fails.
async fn remove_new_key(
    iam_client: &Iam,
    old_key_id: &AccessKeyId,
    user: &str,
    new_key_id: &str,
) -> NewKeyCleanup {
    let delete_failure = match iam::delete_key(iam_client, user, new_key_id).await {
        Ok(request_id) => {
            info!(
                key_id = %old_key_id,
                action = "rotate",
                new_key_id,
                request_id = request_id.as_deref().unwrap_or("none"),
                "new access key deleted because its secret could not be stored"
            );
            return NewKeyCleanup::Deleted {
                key_id: new_key_id.to_string(),
                request_id,
            };
        }
        Err(failure) => failure,
    };
    match iam::deactivate_key(iam_client, user, new_key_id).await {
        Ok(request_id) => {
            warn!(
                key_id = %old_key_id,
                action = "rotate",
                new_key_id,
                request_id = request_id.as_deref().unwrap_or("none"),
                error = %delete_failure,
                "new access key deactivated because its secret could not be stored and deleting it failed"
            );
            NewKeyCleanup::Deactivated {
                key_id: new_key_id.to_string(),
                user: user.to_string(),
                delete_failure,
            }
        }
        Err(deactivate_failure) => {
            error!(
                key_id = %old_key_id,
                action = "rotate",
                new_key_id,
                user,
                delete_error = %delete_failure,
                deactivate_error = %deactivate_failure,
                "new access key left active: its secret could not be stored, and deleting and deactivating it failed"
            );
            NewKeyCleanup::Failed {
                key_id: new_key_id.to_string(),
                user: user.to_string(),
                delete_failure,
                deactivate_failure,
            }
        }
    }
}

/// Sets the leaked key to Inactive once its replacement is stored, unless it already is.
async fn deactivate_old_key(
    iam_client: &Iam,
    plan: &RotatePlan,
    ownership: &iam::Ownership,
    new_key_id: &str,
    secret_arn: &str,
    outcome: &mut Outcome,
) -> Result<(), RemediationError> {
    let user = ownership.user.as_str();
    if ownership.status_of(plan.key_id.as_str()) == Some(KeyStatus::Inactive) {
        outcome
            .notes
            .push(format!("the old key {} was already inactive", plan.key_id));
        return Ok(());
    }
    let request_id = iam::deactivate_key(iam_client, user, plan.key_id.as_str())
        .await
        .map_err(|failure| RemediationError::DeactivateAfterRotation {
            old_key_id: plan.key_id.to_string(),
            new_key_id: new_key_id.to_string(),
            secret_arn: secret_arn.to_string(),
            failure,
        })?;
    let at = Utc::now();
    info!(
        key_id = %plan.key_id,
        action = "rotate",
        user,
        request_id = request_id.as_deref().unwrap_or("none"),
        "old access key deactivated"
    );
    outcome.changes.push(Change {
        operation: IAM_UPDATE_ACCESS_KEY.id(),
        description: format!(
            "set the old access key {} of IAM user {user} to Inactive",
            plan.key_id
        ),
        request_id,
        at,
    });
    outcome.deactivated_at = Some(at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAKED: &str = "AKIAAAAAAAAAAAAAAAAA";
    const OTHER: &str = "AKIABBBBBBBBBBBBBBBB";

    fn target() -> Target {
        Target {
            investigation_id: "kc-0123456789".to_string(),
            key: LEAKED.parse().unwrap(),
            account_id: "111122223333".to_string(),
            owner: None,
            sessions: Vec::new(),
        }
    }

    fn key(key_id: &str, status: KeyStatus) -> KeyState {
        KeyState {
            key_id: key_id.to_string(),
            status,
            created: None,
        }
    }

    fn name() -> String {
        "keycheck/rotated/alice/{new_key_id}".to_string()
    }

    #[test]
    fn plan_with_one_key() {
        let plan = plan(
            &target(),
            "alice",
            &[key(LEAKED, KeyStatus::Active)],
            name(),
            None,
        )
        .unwrap();
        let text = plan.describe().join("\n");
        assert!(
            text.contains("Create a new access key for IAM user alice in account 111122223333"),
            "{text}"
        );
        assert!(
            text.contains("in a new Secrets Manager secret keycheck/rotated/alice/<new key ID>"),
            "{text}"
        );
        assert!(
            text.contains("tagged with investigation kc-0123456789"),
            "{text}"
        );
        assert!(
            text.contains(&format!("Then set the old key {LEAKED} to Inactive")),
            "{text}"
        );
    }

    #[test]
    fn plan_existing_secret_gets_version() {
        let fixed = "keycheck/rotated/alice".to_string();
        let plan = plan(
            &target(),
            "alice",
            &[key(LEAKED, KeyStatus::Inactive)],
            fixed,
            Some(true),
        )
        .unwrap();
        let text = plan.describe().join("\n");
        assert!(
            text.contains(
                "as a new version of the existing Secrets Manager secret keycheck/rotated/alice"
            ),
            "{text}"
        );
        assert!(text.contains("inactive, as it is"), "{text}");
    }

    #[test]
    fn two_keys_refused() {
        let keys = [
            key(LEAKED, KeyStatus::Active),
            key(OTHER, KeyStatus::Active),
        ];
        let error = plan(&target(), "alice", &keys, name(), None).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, RemediationError::TooManyKeys { .. }),
            "{message}"
        );
        assert!(message.contains("already has two access keys"), "{message}");
        assert!(
            message.contains("delete or deactivate one first"),
            "{message}"
        );
        assert!(
            message.contains(&format!("--access-key-id {OTHER}")),
            "{message}"
        );
        assert!(
            message.contains(&format!("keycheck contain deactivate {LEAKED}")),
            "{message}"
        );
    }

    #[test]
    fn two_keys_suggests_inactive_one() {
        let keys = [
            key(OTHER, KeyStatus::Inactive),
            key(LEAKED, KeyStatus::Active),
        ];
        let message = plan(&target(), "alice", &keys, name(), None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&format!("delete the inactive key {OTHER} first")),
            "{message}"
        );
    }

    #[test]
    fn tags_name_investigation_and_keys() {
        let plan = plan(
            &target(),
            "alice",
            &[key(LEAKED, KeyStatus::Active)],
            name(),
            None,
        )
        .unwrap();
        let tags: Vec<(String, String)> = secret_tags(&plan, "AKIANEWNEWNEWNEWNEW1")
            .into_iter()
            .map(|tag| {
                (
                    tag.key().unwrap_or_default().to_string(),
                    tag.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert!(tags.contains(&(TAG_INVESTIGATION.to_string(), "kc-0123456789".to_string())));
        assert!(tags.contains(&(TAG_REPLACED_KEY.to_string(), LEAKED.to_string())));
        assert!(tags.contains(&(TAG_NEW_KEY.to_string(), "AKIANEWNEWNEWNEWNEW1".to_string())));
    }
}
