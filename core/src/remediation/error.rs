//! The errors of the containment actions: one variant per AWS operation and per failed
//! precondition, each naming what failed, on which value, and what to do next.
//!
//! No variant contains a secret access key: rotation drops the new secret before it builds
//! any error, and AWS error messages never echo one.

use std::fmt;

use aws_sdk_iam::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::config::ContainConfigError;
use super::target::Principal;
use crate::approval::ActionKind;
use crate::evidence::live::error::aws_error;
use crate::evidence::live::operations::Operation;
use crate::evidence::{AwsErrorKind, EvidenceError};

/// One failed AWS call: the operation, the IAM permission it needs, and what AWS returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsFailure {
    /// The operation as `service:Operation`, such as `iam:UpdateAccessKey`.
    pub operation: String,
    /// The IAM permission the operation needs.
    pub permission: String,
    /// The class of failure.
    pub kind: AwsErrorKind,
    /// The AWS error code, such as `AccessDenied` or `LimitExceeded`, when AWS returned one.
    pub code: Option<String>,
    /// The error in one line, such as `access denied (AccessDenied: User … is not authorized …)`.
    pub reason: String,
    /// The request ID AWS returned with the error.
    pub request_id: Option<String>,
}

impl AwsFailure {
    /// Builds the failure of a call of `operation` about `target` from the SDK's error.
    pub(crate) fn from_sdk<E>(
        operation: &Operation,
        target: &str,
        error: &SdkError<E, HttpResponse>,
    ) -> AwsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (kind, reason) = match aws_error(operation, target, error) {
            EvidenceError::Aws { kind, reason, .. } => (kind, reason),
            other => (AwsErrorKind::Other, other.to_string()),
        };
        AwsFailure {
            operation: operation.id(),
            permission: operation.action.to_string(),
            kind,
            code: error.code().map(str::to_string),
            reason,
            request_id: error.request_id().map(str::to_string),
        }
    }

    /// Builds the failure of a call that succeeded but returned something unusable.
    pub(crate) fn bad_response(operation: &Operation, reason: &str) -> AwsFailure {
        AwsFailure {
            operation: operation.id(),
            permission: operation.action.to_string(),
            kind: AwsErrorKind::Other,
            code: None,
            reason: reason.to_string(),
            request_id: None,
        }
    }
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        match self.kind {
            AwsErrorKind::AccessDenied => write!(
                f,
                ": give keycheck {} (`keycheck iam-policy --purpose contain` prints the policy)",
                self.permission
            )?,
            AwsErrorKind::Throttled => f.write_str(": try again in a minute")?,
            AwsErrorKind::Timeout => f.write_str(": check that AWS is reachable and try again")?,
            _ => {}
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " (request ID {request_id})")?;
        }
        Ok(())
    }
}

/// The cleanup of the new key of a rotation whose secret could not be stored. No one has
/// that key's secret, so keycheck removes the key rather than leave it usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewKeyCleanup {
    /// The new key was deleted, so the user has the keys it had before.
    Deleted {
        key_id: String,
        request_id: Option<String>,
    },
    /// Deleting the new key failed, so it was deactivated instead.
    Deactivated {
        key_id: String,
        user: String,
        delete_failure: AwsFailure,
    },
    /// Both failed: the new key is still active.
    Failed {
        key_id: String,
        user: String,
        delete_failure: AwsFailure,
        deactivate_failure: AwsFailure,
    },
}

impl NewKeyCleanup {
    /// Returns whether the new key is still active.
    pub fn left_active(&self) -> bool {
        matches!(self, NewKeyCleanup::Failed { .. })
    }
}

impl fmt::Display for NewKeyCleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewKeyCleanup::Deleted { key_id, .. } => write!(
                f,
                "keycheck deleted the new key {key_id}, so no key with an unknown secret is left behind"
            ),
            NewKeyCleanup::Deactivated {
                key_id,
                user,
                delete_failure,
            } => write!(
                f,
                "deleting the new key {key_id} failed ({delete_failure}), so keycheck deactivated it: delete it with `aws iam delete-access-key --user-name {user} --access-key-id {key_id}`"
            ),
            NewKeyCleanup::Failed {
                key_id,
                user,
                delete_failure,
                deactivate_failure,
            } => write!(
                f,
                "the new key {key_id} is still active and nobody holds its secret, because deleting it failed ({delete_failure}) and deactivating it failed ({deactivate_failure}): delete it now with `aws iam delete-access-key --user-name {user} --access-key-id {key_id}`"
            ),
        }
    }
}

/// The reason a containment action could not be planned or executed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemediationError {
    /// The containment settings are invalid.
    #[error(transparent)]
    Config(#[from] ContainConfigError),

    /// The `[aws]` settings are invalid.
    #[error(transparent)]
    AwsConfig(#[from] crate::evidence::live::ConfigError),

    /// The AWS settings are invalid, or keycheck has no way into the account.
    #[error("keycheck cannot reach account {account_id}: {source}")]
    Access {
        account_id: String,
        source: EvidenceError,
    },

    /// Reading the key's account, owner or sessions through the evidence source failed.
    #[error("reading {what} of {key_id} failed: {source}")]
    Evidence {
        key_id: String,
        what: &'static str,
        source: EvidenceError,
    },

    /// The account that owns the key is unknown.
    #[error(
        "the account that owns {key_id} is unknown, so keycheck cannot tell where to act: check the key ID, and that keycheck may call sts:GetAccessKeyInfo"
    )]
    AccountUnknown { key_id: String },

    /// The action kind changes nothing in AWS.
    #[error("{kind} changes nothing in AWS, so it has no plan")]
    NotAnAction { kind: ActionKind },

    /// IAM has no such key in the account.
    #[error(
        "access key {key_id} not found in account {account_id}: check the key ID and the account, or the key was deleted already"
    )]
    KeyNotFound { key_id: String, account_id: String },

    /// The key belongs to the root user, whose keys no other principal can change.
    #[error(
        "access key {key_id} belongs to the root user of account {account_id}, whose keys only the root user can change: sign in as the root user and deactivate it under Security credentials"
    )]
    RootKey { key_id: String, account_id: String },

    /// The action needs a long-term key, and this one is temporary.
    #[error(
        "{key_id} is a temporary (ASIA) key, which IAM cannot {action}: revoke its sessions with `keycheck contain revoke-sessions {key_id}`, and it expires on its own"
    )]
    TemporaryKey {
        key_id: String,
        action: &'static str,
    },

    /// The principal behind a temporary key could not be found.
    #[error(
        "the user or role behind temporary key {key_id} is unknown, because CloudTrail holds none of its calls and not the call that issued it: find the principal in CloudTrail by hand and revoke its sessions in the IAM console"
    )]
    OwnerUnknown { key_id: String },

    /// A long-term key minted no session that CloudTrail shows.
    #[error(
        "CloudTrail shows no session issued with {key_id}, so there is nothing to revoke: deactivate the key instead, and check that keycheck reads the account's CloudTrail"
    )]
    NoSessions { key_id: String },

    /// Sessions were issued with the key, but the user or role of none of them is known.
    #[error(
        "CloudTrail shows sessions issued with {key_id} ({}), but not which user or role they belong to: find the role each assumed in CloudTrail and revoke its sessions in the IAM console",
        sessions.join(", ")
    )]
    SessionPrincipalsUnknown {
        key_id: String,
        sessions: Vec<String>,
    },

    /// The user has two access keys, the most IAM allows, so rotation cannot create one.
    #[error(
        "IAM user {user} already has two access keys ({}), and IAM allows two, inactive ones included, so rotation cannot create a new one: {advice}",
        keys.join(", ")
    )]
    TooManyKeys {
        user: String,
        /// The user's keys with their status, such as `AKIA… (Active)`.
        keys: Vec<String>,
        /// The advice on which key to delete or deactivate first, with the command.
        advice: String,
    },

    /// The configured secret name does not fit this user.
    #[error(
        "secret name {name:?} for IAM user {user} is not a Secrets Manager name, which allows only A-Z a-z 0-9 / _ + = . @ -: set contain.secret_name without {{user}}"
    )]
    InvalidSecretName { name: String, user: String },

    #[error("iam:GetAccessKeyLastUsed failed for access key {key_id}: {failure}")]
    GetAccessKeyLastUsed { key_id: String, failure: AwsFailure },

    #[error("iam:ListAccessKeys failed for IAM user {user}: {failure}")]
    ListAccessKeys { user: String, failure: AwsFailure },

    #[error("iam:UpdateAccessKey failed for access key {key_id} of IAM user {user}: {failure}")]
    UpdateAccessKey {
        key_id: String,
        user: String,
        failure: AwsFailure,
    },

    #[error("iam:CreateAccessKey failed for IAM user {user}, so nothing was changed: {failure}")]
    CreateAccessKey { user: String, failure: AwsFailure },

    #[error("secretsmanager:DescribeSecret failed for secret {name}: {failure}")]
    DescribeSecret { name: String, failure: AwsFailure },

    #[error(
        "secretsmanager:CreateSecret failed for secret {name}, so the old key {old_key_id} stays as it was: {failure}; {cleanup}"
    )]
    CreateSecret {
        name: String,
        old_key_id: String,
        failure: AwsFailure,
        cleanup: NewKeyCleanup,
    },

    #[error(
        "secretsmanager:PutSecretValue failed for existing secret {name}, so the old key {old_key_id} stays as it was: {failure}; {cleanup}"
    )]
    PutSecretValue {
        name: String,
        old_key_id: String,
        failure: AwsFailure,
        cleanup: NewKeyCleanup,
    },

    /// Rotation stored the new key, then failed to deactivate the old one.
    #[error(
        "rotation of {old_key_id} is half done: the new key {new_key_id} is stored in {secret_arn}, but iam:UpdateAccessKey failed to deactivate the old key: {failure}: deactivate it with `keycheck contain deactivate {old_key_id}`"
    )]
    DeactivateAfterRotation {
        old_key_id: String,
        new_key_id: String,
        secret_arn: String,
        failure: AwsFailure,
    },

    #[error("iam:GetUserPolicy failed for policy {policy_name} of {user}: {failure}")]
    GetUserPolicy {
        user: Principal,
        policy_name: String,
        failure: AwsFailure,
    },

    #[error("iam:GetRolePolicy failed for policy {policy_name} of {role}: {failure}")]
    GetRolePolicy {
        role: Principal,
        policy_name: String,
        failure: AwsFailure,
    },

    #[error(
        "iam:PutUserPolicy failed for policy {policy_name} of {user}: {failure}{}",
        done_note(revoked)
    )]
    PutUserPolicy {
        user: Principal,
        policy_name: String,
        /// Principals whose sessions were revoked before this call failed.
        revoked: Vec<String>,
        failure: AwsFailure,
    },

    #[error(
        "iam:PutRolePolicy failed for policy {policy_name} of {role}: {failure}{}",
        done_note(revoked)
    )]
    PutRolePolicy {
        role: Principal,
        policy_name: String,
        /// Principals whose sessions were revoked before this call failed.
        revoked: Vec<String>,
        failure: AwsFailure,
    },

    #[error("iam:ListAttachedUserPolicies failed for {user}: {failure}")]
    ListAttachedUserPolicies {
        user: Principal,
        failure: AwsFailure,
    },

    #[error("iam:ListAttachedRolePolicies failed for {role}: {failure}")]
    ListAttachedRolePolicies {
        role: Principal,
        failure: AwsFailure,
    },

    #[error("iam:AttachUserPolicy failed for policy {policy_arn} on {user}: {failure}")]
    AttachUserPolicy {
        user: Principal,
        policy_arn: String,
        failure: AwsFailure,
    },

    #[error("iam:AttachRolePolicy failed for policy {policy_arn} on {role}: {failure}")]
    AttachRolePolicy {
        role: Principal,
        policy_arn: String,
        failure: AwsFailure,
    },
}

fn done_note(revoked: &[String]) -> String {
    if revoked.is_empty() {
        return String::new();
    }
    format!(" (sessions already revoked for {})", revoked.join(", "))
}

impl RemediationError {
    /// Returns the failed AWS call, for the errors that have one.
    pub fn aws_failure(&self) -> Option<&AwsFailure> {
        use RemediationError::*;
        match self {
            GetAccessKeyLastUsed { failure, .. }
            | ListAccessKeys { failure, .. }
            | UpdateAccessKey { failure, .. }
            | CreateAccessKey { failure, .. }
            | DescribeSecret { failure, .. }
            | CreateSecret { failure, .. }
            | PutSecretValue { failure, .. }
            | DeactivateAfterRotation { failure, .. }
            | GetUserPolicy { failure, .. }
            | GetRolePolicy { failure, .. }
            | PutUserPolicy { failure, .. }
            | PutRolePolicy { failure, .. }
            | ListAttachedUserPolicies { failure, .. }
            | ListAttachedRolePolicies { failure, .. }
            | AttachUserPolicy { failure, .. }
            | AttachRolePolicy { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// Returns the request ID AWS returned with the failed call, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.aws_failure()?.request_id.as_deref()
    }

    /// Returns a short code for the audit log's result column: the AWS error code of a
    /// failed call (such as `AccessDenied`), else the name of the failed precondition
    /// (such as `too_many_keys`).
    pub fn code(&self) -> String {
        use RemediationError::*;
        if let Some(failure) = self.aws_failure() {
            return failure
                .code
                .clone()
                .unwrap_or_else(|| format!("{:?}", failure.kind).to_lowercase());
        }
        let code = match self {
            Config(_) | AwsConfig(_) => "invalid_configuration",
            Access { .. } => "no_access",
            Evidence { .. } => "evidence_failed",
            AccountUnknown { .. } => "account_unknown",
            NotAnAction { .. } => "not_an_action",
            KeyNotFound { .. } => "key_not_found",
            RootKey { .. } => "root_key",
            TemporaryKey { .. } => "temporary_key",
            OwnerUnknown { .. } => "owner_unknown",
            NoSessions { .. } => "no_sessions",
            SessionPrincipalsUnknown { .. } => "session_principals_unknown",
            TooManyKeys { .. } => "too_many_keys",
            InvalidSecretName { .. } => "invalid_secret_name",
            _ => "failed",
        };
        code.to_string()
    }

    /// Returns whether the action was refused before it changed anything because of the
    /// key's state, not because an AWS call failed.
    pub fn is_precondition(&self) -> bool {
        use RemediationError::*;
        matches!(
            self,
            KeyNotFound { .. }
                | RootKey { .. }
                | TemporaryKey { .. }
                | OwnerUnknown { .. }
                | NoSessions { .. }
                | SessionPrincipalsUnknown { .. }
                | TooManyKeys { .. }
                | InvalidSecretName { .. }
                | NotAnAction { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::live::operations::IAM_UPDATE_ACCESS_KEY;

    fn denied() -> AwsFailure {
        AwsFailure {
            operation: IAM_UPDATE_ACCESS_KEY.id(),
            permission: IAM_UPDATE_ACCESS_KEY.action.to_string(),
            kind: AwsErrorKind::AccessDenied,
            code: Some("AccessDenied".to_string()),
            reason: "access denied (AccessDenied: not authorized)".to_string(),
            request_id: Some("req-1".to_string()),
        }
    }

    #[test]
    fn access_denied_names_permission() {
        let error = RemediationError::UpdateAccessKey {
            key_id: "AKIAIOSFODNN7EXAMPLE".to_string(),
            user: "alice".to_string(),
            failure: denied(),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("iam:UpdateAccessKey failed for access key AKIAIOSFODNN7EXAMPLE of IAM user alice: access denied"),
            "{message}"
        );
        assert!(
            message.contains("give keycheck iam:UpdateAccessKey"),
            "{message}"
        );
        assert!(message.contains("request ID req-1"), "{message}");
        assert_eq!(error.code(), "AccessDenied");
        assert_eq!(error.request_id(), Some("req-1"));
    }

    #[test]
    fn cleanup_says_what_happened() {
        let deleted = NewKeyCleanup::Deleted {
            key_id: "AKIANEW".to_string(),
            request_id: None,
        };
        assert!(deleted.to_string().contains("deleted the new key AKIANEW"));
        assert!(!deleted.left_active());

        let failed = NewKeyCleanup::Failed {
            key_id: "AKIANEW".to_string(),
            user: "alice".to_string(),
            delete_failure: denied(),
            deactivate_failure: denied(),
        };
        assert!(failed.left_active());
        assert!(failed.to_string().contains("still active"));
    }
}
