//! Quarantine: attach AWS's `AWSCompromisedKeyQuarantineV3` managed policy, or the
//! configured one, to the user that owns the leaked key or the role whose session it is.
//!
//! The V3 policy (AWS managed policy reference, version v2) denies actions that run up
//! charges or let an attacker persist, such as `ec2:RunInstances`, `iam:CreateUser`,
//! `iam:CreateAccessKey`, `iam:PutUserPolicy` and `lambda:CreateFunction`, to every
//! credential of the principal, its other keys and sessions included. A policy that is
//! already attached is reported, not attached again.

use aws_sdk_iam::operation::RequestId;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::error::AwsFailure;
use super::iam::{self, Iam};
use super::{Change, Outcome, Principal, PrincipalKind, RemediationError, Remediator, Target};
use crate::approval::ActionKind;
use crate::evidence::live::operations::{
    IAM_ATTACH_ROLE_POLICY, IAM_ATTACH_USER_POLICY, IAM_LIST_ATTACHED_ROLE_POLICIES,
    IAM_LIST_ATTACHED_USER_POLICIES,
};
use crate::key::{AccessKeyId, KeyKind};

/// The change quarantine will make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinePlan {
    pub investigation_id: String,
    pub key_id: AccessKeyId,
    pub account_id: String,
    /// The user or role the policy is attached to.
    pub principal: Principal,
    /// The managed policy to attach.
    pub policy_arn: String,
    /// Whether the policy was already attached when the plan was made.
    pub already_attached: bool,
}

impl QuarantinePlan {
    /// Describes the plan, one sentence a line.
    pub fn describe(&self) -> Vec<String> {
        if self.already_attached {
            return vec![format!(
                "Change nothing: {} is already attached to {}.",
                self.policy_arn, self.principal
            )];
        }
        let attach = match self.principal.kind {
            PrincipalKind::User => "iam:AttachUserPolicy",
            PrincipalKind::Role => "iam:AttachRolePolicy",
        };
        vec![
            format!(
                "Attach the managed policy {} to {} with {attach}, and change nothing else.",
                self.policy_arn, self.principal
            ),
            "It applies to every credential of the principal, not only the leaked key; detaching the policy undoes it.".to_string(),
        ]
    }
}

/// Decides the plan from the principal and the managed policies attached to it now.
pub fn plan(
    target: &Target,
    principal: Principal,
    policy_arn: &str,
    attached: &[String],
) -> QuarantinePlan {
    QuarantinePlan {
        investigation_id: target.investigation_id.clone(),
        key_id: target.key.clone(),
        account_id: target.account_id.clone(),
        principal,
        policy_arn: policy_arn.to_string(),
        already_attached: attached.iter().any(|arn| arn == policy_arn),
    }
}

/// Reads the principal and its attached policies and plans the quarantine.
pub(super) async fn read_plan(
    remediator: &Remediator,
    target: &Target,
) -> Result<QuarantinePlan, RemediationError> {
    let principal = principal_of(remediator, target).await?;
    let clients = remediator.clients(&principal.account_id).await?;
    let attached = attached_policies(clients.iam(), &principal).await?;
    Ok(plan(
        target,
        principal,
        &remediator.config().quarantine_policy_arn,
        &attached,
    ))
}

/// Returns the principal to quarantine: for a long-term key the user IAM names as its
/// owner now, for a temporary key the principal the investigation found.
async fn principal_of(
    remediator: &Remediator,
    target: &Target,
) -> Result<Principal, RemediationError> {
    if target.key.kind() == KeyKind::Temporary {
        return target
            .owner
            .clone()
            .ok_or_else(|| RemediationError::OwnerUnknown {
                key_id: target.key.to_string(),
            });
    }
    let clients = remediator.clients(&target.account_id).await?;
    let ownership = iam::read_ownership(clients.iam(), &target.key, &target.account_id).await?;
    Ok(Principal::user(&target.account_id, &ownership.user))
}

/// Lists the ARNs of the managed policies attached to `principal`.
async fn attached_policies(
    iam_client: &Iam,
    principal: &Principal,
) -> Result<Vec<String>, RemediationError> {
    let attached: Vec<aws_sdk_iam::types::AttachedPolicy> = match principal.kind {
        PrincipalKind::User => iam_client
            .list_attached_user_policies()
            .user_name(&principal.name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| RemediationError::ListAttachedUserPolicies {
                user: principal.clone(),
                failure: AwsFailure::from_sdk(
                    &IAM_LIST_ATTACHED_USER_POLICIES,
                    &principal.name,
                    &error,
                ),
            })?,
        PrincipalKind::Role => iam_client
            .list_attached_role_policies()
            .role_name(&principal.name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| RemediationError::ListAttachedRolePolicies {
                role: principal.clone(),
                failure: AwsFailure::from_sdk(
                    &IAM_LIST_ATTACHED_ROLE_POLICIES,
                    &principal.name,
                    &error,
                ),
            })?,
    };
    Ok(attached
        .into_iter()
        .filter_map(|policy| policy.policy_arn)
        .collect())
}

/// Attaches the policy, after checking again whether it is attached.
pub(super) async fn execute(
    remediator: &Remediator,
    plan: &QuarantinePlan,
) -> Result<Outcome, RemediationError> {
    let principal = &plan.principal;
    let clients = remediator.clients(&principal.account_id).await?;
    let mut outcome = Outcome::new(ActionKind::Quarantine, &plan.key_id, &plan.investigation_id);

    let attached = attached_policies(clients.iam(), principal).await?;
    if attached.iter().any(|arn| *arn == plan.policy_arn) {
        info!(key_id = %plan.key_id, action = "quarantine", principal = %principal.arn(), policy_arn = %plan.policy_arn, "quarantine policy already attached, nothing changed");
        outcome.notes.push(format!(
            "{} is already attached to {principal}: nothing changed",
            plan.policy_arn
        ));
        return Ok(outcome);
    }

    let request_id = attach(clients.iam(), principal, &plan.policy_arn).await?;
    let at = Utc::now();
    info!(
        key_id = %plan.key_id,
        action = "quarantine",
        principal = %principal.arn(),
        policy_arn = %plan.policy_arn,
        request_id = request_id.as_deref().unwrap_or("none"),
        "quarantine policy attached"
    );
    let operation = match principal.kind {
        PrincipalKind::User => IAM_ATTACH_USER_POLICY.id(),
        PrincipalKind::Role => IAM_ATTACH_ROLE_POLICY.id(),
    };
    outcome.changes.push(Change {
        operation,
        description: format!("attached {} to {principal}", plan.policy_arn),
        request_id,
        at,
    });
    Ok(outcome)
}

async fn attach(
    iam_client: &Iam,
    principal: &Principal,
    policy_arn: &str,
) -> Result<Option<String>, RemediationError> {
    match principal.kind {
        PrincipalKind::User => iam_client
            .attach_user_policy()
            .user_name(&principal.name)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|output| output.request_id().map(str::to_string))
            .map_err(|error| RemediationError::AttachUserPolicy {
                user: principal.clone(),
                policy_arn: policy_arn.to_string(),
                failure: AwsFailure::from_sdk(&IAM_ATTACH_USER_POLICY, &principal.name, &error),
            }),
        PrincipalKind::Role => iam_client
            .attach_role_policy()
            .role_name(&principal.name)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|output| output.request_id().map(str::to_string))
            .map_err(|error| RemediationError::AttachRolePolicy {
                role: principal.clone(),
                policy_arn: policy_arn.to_string(),
                failure: AwsFailure::from_sdk(&IAM_ATTACH_ROLE_POLICY, &principal.name, &error),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::{DEFAULT_QUARANTINE_POLICY_ARN, Plan};

    fn target() -> Target {
        Target {
            investigation_id: "kc-0123456789".to_string(),
            key: "AKIAAAAAAAAAAAAAAAAA".parse().unwrap(),
            account_id: "111122223333".to_string(),
            owner: None,
            sessions: Vec::new(),
        }
    }

    #[test]
    fn plan_attaches_to_user() {
        let alice = Principal::user("111122223333", "alice");
        let attached = ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()];
        let plan = plan(&target(), alice, DEFAULT_QUARANTINE_POLICY_ARN, &attached);
        assert!(!plan.already_attached);
        let text = plan.describe().join("\n");
        assert!(text.contains("Attach the managed policy arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3 to IAM user alice in account 111122223333 with iam:AttachUserPolicy"), "{text}");
        assert_eq!(
            Plan::Quarantine(plan).principal(),
            "arn:aws:iam::111122223333:user/alice"
        );
    }

    #[test]
    fn plan_already_attached_changes_nothing() {
        let role = Principal::role("111122223333", "deploy");
        let attached = [DEFAULT_QUARANTINE_POLICY_ARN.to_string()];
        let plan = plan(&target(), role, DEFAULT_QUARANTINE_POLICY_ARN, &attached);
        assert!(plan.already_attached);
        assert!(
            plan.describe()[0].starts_with("Change nothing"),
            "{:?}",
            plan.describe()
        );
        assert!(Plan::Quarantine(plan).changes_nothing());
    }
}
